/*
 * schema_sql.c - pgbank's server-side code: the functions that move money
 * for the batch strategy and for an application role, and the triggers
 * that journal every balance change made outside pgbank.
 *
 * Every function is written for a hostile caller (an application role that
 * may call nothing else, or anyone with EXECUTE):
 *   - SECURITY DEFINER with `search_path = pg_catalog, pg_temp`: built-ins
 *     resolve in pg_catalog, never to a look-alike planted in a schema the
 *     caller may CREATE in, and functions are never looked up in pg_temp;
 *     every table is schema-qualified (@S), so nothing is looked up at all;
 *   - every argument is validated in SQL before anything changes: NULLs,
 *     kinds, amounts (from 1 to the balance column's maximum, derived here
 *     from the column's type, never taken from the caller), array shape
 *     (one dimension, starting at 1, equal lengths) and size (@CAP);
 *     a refused call raises invalid_parameter_value (22023) or
 *     program_limit_exceeded (54000) and changes nothing;
 *   - EXECUTE is revoked from PUBLIC in the same transaction as the CREATE.
 * docs/SECURITY.md lists each defense and the test that attacks it.
 *
 * pgbank's own writes mark their transaction (set_config('pgbank.own',
 * 'on', true)); a write without the mark is somebody else's (psql, the
 * seed's Python, another service), and the statement-level triggers at the
 * end of this file journal it as op 'external' with the session's role and
 * application_name.  The mark can be forged by a writer that sets it on
 * purpose: such a change is then not journaled, and `pgbank audit` reports
 * the account as mismatched.
 */
#include "schema.h"
#include "sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A caller that may not read the balances (the application role) does not
 * learn them from refusals either: a refusal's balance is returned to it as
 * NULL.  session_user: inside a SECURITY DEFINER function current_user is
 * the owner. */
#define MAY_READ "has_table_privilege(session_user, @ACC, 'SELECT')"
#define HIDE_REFUSED_BALANCES                                                                      \
    "  IF NOT " MAY_READ " THEN\n"                                                                 \
    "    FOR i IN 1 .. n LOOP\n"                                                                   \
    "      IF status[i] <> @O_OK THEN bal[i] := NULL; to_bal[i] := NULL; END IF;\n"                \
    "    END LOOP;\n"                                                                              \
    "  END IF;\n"

/* The batch: locks every account of the batch in id order, applies the
 * operations one by one in arrival order on the balances held in memory
 * (a refusal never affects another operation), writes each changed account
 * once, and journals every operation that succeeded. */
static const char batch_fn[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_batch(kinds smallint[], ids bigint[],"
    " to_ids bigint[], amounts bigint[],"
    " OUT status smallint[], OUT bal bigint[], OUT to_bal bigint[])\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "DECLARE\n"
    "  n int;\n"
    "  acc bigint[]; cur bigint[]; orig bigint[]; ai int[]; ti int[];\n"
    "  i int; a int; t int; amt bigint; k smallint;\n"
    "BEGIN\n"
    "  IF kinds IS NULL OR ids IS NULL OR to_ids IS NULL OR amounts IS NULL THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch: no argument may be NULL'\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  n := cardinality(ids);\n"
    "  IF cardinality(kinds) <> n OR cardinality(to_ids) <> n OR cardinality(amounts) <> n THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch: the four arrays must have the same length'\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  IF n > @CAP THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch: at most @CAP operations per call, got %', n\n"
    "      USING ERRCODE = 'program_limit_exceeded';\n"
    "  END IF;\n"
    "  IF n = 0 THEN\n"
    "    status := '{}'; bal := '{}'; to_bal := '{}'; RETURN;\n"
    "  END IF;\n"
    "  IF array_ndims(kinds) <> 1 OR array_ndims(ids) <> 1 OR array_ndims(to_ids) <> 1\n"
    "     OR array_ndims(amounts) <> 1 OR array_lower(kinds, 1) <> 1 OR array_lower(ids, 1) <> 1\n"
    "     OR array_lower(to_ids, 1) <> 1 OR array_lower(amounts, 1) <> 1 THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch: the arrays must be one-dimensional and start at 1'\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  PERFORM set_config('pgbank.own', 'on', true);\n"
    "  SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}'),"
    "         coalesce(array_agg(s.balance ORDER BY s.id), '{}') INTO acc, cur\n"
    "    FROM (SELECT x.id, x.balance FROM @S.accounts x WHERE x.id = ANY (ids || to_ids)"
    "          ORDER BY x.id FOR UPDATE) s;\n"
    "  SELECT array_agg(p.pos::int ORDER BY o.ord), array_agg(q.pos::int ORDER BY o.ord)"
    "    INTO ai, ti\n"
    "    FROM unnest(ids, to_ids) WITH ORDINALITY o(id, to_id, ord)\n"
    "    LEFT JOIN unnest(acc) WITH ORDINALITY p(id, pos) ON p.id = o.id\n"
    "    LEFT JOIN unnest(acc) WITH ORDINALITY q(id, pos) ON q.id = o.to_id;\n"
    "  status := array_fill(@O_OK::smallint, ARRAY[n]);\n"
    "  bal := array_fill(NULL::bigint, ARRAY[n]);\n"
    "  to_bal := bal;\n"
    "  orig := cur;\n"
    "  FOR i IN 1 .. n LOOP\n"
    "    k := kinds[i]; amt := amounts[i];\n"
    "    IF k IS NULL OR k < 0 OR k > 2 OR ids[i] IS NULL THEN\n"
    "      RAISE EXCEPTION 'pgbank_batch: operation %: unknown kind % or no account"
    " (kinds: 0 withdraw, 1 deposit, 2 transfer)', i, k"
    " USING ERRCODE = 'invalid_parameter_value';\n"
    "    END IF;\n"
    "    IF amt IS NULL OR amt <= 0 OR amt > @MAX THEN\n"
    "      RAISE EXCEPTION 'pgbank_batch: operation %: the amount must be from 1 to @MAX, got %',"
    " i, amt USING ERRCODE = 'invalid_parameter_value';\n"
    "    END IF;\n"
    "    IF (k = 2) <> (to_ids[i] IS NOT NULL) OR to_ids[i] = ids[i] THEN\n"
    "      RAISE EXCEPTION 'pgbank_batch: operation %: only a transfer has a destination,"
    " and it must differ from the source', i USING ERRCODE = 'invalid_parameter_value';\n"
    "    END IF;\n"
    "    a := ai[i];\n"
    "    IF a IS NULL THEN\n"
    "      status[i] := @O_NO_SUCH_ACCOUNT;\n"
    "    ELSIF k = 0 THEN\n"
    "      IF cur[a] >= amt THEN cur[a] := cur[a] - amt;"
    " ELSE status[i] := @O_INSUFFICIENT_FUNDS; END IF;\n"
    "      bal[i] := cur[a];\n"
    "    ELSIF k = 1 THEN\n"
    "      IF cur[a] > @MAX - amt THEN status[i] := @O_OVERFLOW;"
    " ELSE cur[a] := cur[a] + amt; END IF;\n"
    "      bal[i] := cur[a];\n"
    "    ELSE\n"
    "      t := ti[i];\n"
    "      IF t IS NULL THEN status[i] := @O_NO_SUCH_DESTINATION;\n"
    "      ELSIF cur[a] < amt THEN status[i] := @O_INSUFFICIENT_FUNDS; bal[i] := cur[a];\n"
    "      ELSIF cur[t] > @MAX - amt THEN status[i] := @O_OVERFLOW;\n"
    "      ELSE cur[a] := cur[a] - amt; cur[t] := cur[t] + amt;"
    " bal[i] := cur[a]; to_bal[i] := cur[t];\n"
    "      END IF;\n"
    "    END IF;\n"
    "  END LOOP;\n"
    "  UPDATE @S.accounts x SET balance = v.b FROM unnest(acc, cur, orig) v(id, b, o)\n"
    "   WHERE x.id = v.id AND v.b <> v.o;\n"
    HIDE_REFUSED_BALANCES
    "@J{"
    "  INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, strategy)\n"
    "  SELECT j.account, j.op, j.amount, j.after, 'batch' FROM (\n"
    "    SELECT o.ord, 0 AS sub, o.id AS account,\n"
    "           CASE WHEN o.k = 0 THEN 'withdraw' WHEN o.k = 1 THEN 'deposit'"
    " ELSE 'transfer out' END AS op,\n"
    "           CASE WHEN o.k = 1 THEN o.amt ELSE -o.amt END AS amount, o.b AS after\n"
    "      FROM unnest(kinds, ids, amounts, status, bal) WITH ORDINALITY o(k, id, amt, st, b, ord)\n"
    "     WHERE o.st = @O_OK\n"
    "    UNION ALL\n"
    "    SELECT o.ord, 1, o.to_id, 'transfer in', o.amt, o.tb\n"
    "      FROM unnest(kinds, to_ids, amounts, status, to_bal)"
    " WITH ORDINALITY o(k, to_id, amt, st, tb, ord)\n"
    "     WHERE o.st = @O_OK AND o.k = 2) j\n"
    "  ORDER BY j.ord, j.sub;\n"
    "@J}"
    "END\n"
    "$f$";

/* A batch of one withdrawal or deposit: the guarded UPDATE and its journal
 * row, without the arrays' fixed cost, so a quiet system answers as fast as
 * the atomic strategy. */
static const char batch_one_fn[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_batch_one(p_kind smallint, p_id bigint,"
    " p_amount bigint, OUT status smallint, OUT bal bigint)\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "BEGIN\n"
    "  IF p_kind IS NULL OR p_kind < 0 OR p_kind > 1 OR p_id IS NULL THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch_one: kind must be 0 (withdraw) or 1 (deposit) and the"
    " account given, got kind %', p_kind USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  IF p_amount IS NULL OR p_amount <= 0 OR p_amount > @MAX THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch_one: the amount must be from 1 to @MAX, got %', p_amount\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  PERFORM set_config('pgbank.own', 'on', true);\n"
    "  IF p_kind = 0 THEN\n"
    "    UPDATE @S.accounts x SET balance = x.balance - p_amount"
    "     WHERE x.id = p_id AND x.balance >= p_amount RETURNING x.balance INTO bal;\n"
    "  ELSE\n"
    "    UPDATE @S.accounts x SET balance = x.balance + p_amount"
    "     WHERE x.id = p_id AND x.balance <= @MAX - p_amount RETURNING x.balance INTO bal;\n"
    "  END IF;\n"
    "  IF FOUND THEN\n"
    "@J{"
    "    INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, strategy)\n"
    "    VALUES (p_id, CASE WHEN p_kind = 0 THEN 'withdraw' ELSE 'deposit' END,\n"
    "            CASE WHEN p_kind = 0 THEN -p_amount ELSE p_amount END, bal, 'batch');\n"
    "@J}"
    "    status := @O_OK;\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  SELECT x.balance INTO bal FROM @S.accounts x WHERE x.id = p_id;\n"
    "  status := CASE WHEN NOT FOUND THEN @O_NO_SUCH_ACCOUNT"
    " WHEN p_kind = 0 THEN @O_INSUFFICIENT_FUNDS ELSE @O_OVERFLOW END;\n"
    "  IF NOT " MAY_READ " THEN bal := NULL; END IF;\n"
    "END\n"
    "$f$";

/* One keyed operation, exactly once, in the caller's transaction: claim the
 * key (a concurrent claimant waits for this one to commit), apply the
 * operation with guarded statements (a transfer locks its two rows one at a
 * time in id order: no deadlock, and no multi-row FOR UPDATE), and record
 * the outcome under the key, refusals included.  A key seen before returns
 * its recorded outcome (replayed), or OUTCOME_CONFLICT when its parameters
 * differ.  This is how an application role, which has no right on the
 * tables, makes keyed requests. */
static const char keyed_fn[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_keyed(p_kind smallint, p_id bigint, p_to bigint,"
    " p_amount bigint, p_key text,"
    " OUT status smallint, OUT bal bigint, OUT to_bal bigint, OUT replayed boolean)\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "DECLARE\n"
    "  opname text; r record; lo bigint; hi bigint; b_lo bigint; b_hi bigint;"
    " src bigint; dst bigint;\n"
    "BEGIN\n"
    "  IF p_kind IS NULL OR p_kind < 0 OR p_kind > 2 OR p_id IS NULL THEN\n"
    "    RAISE EXCEPTION 'pgbank_keyed: unknown kind % or no account"
    " (kinds: 0 withdraw, 1 deposit, 2 transfer)', p_kind"
    " USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  IF p_amount IS NULL OR p_amount <= 0 OR p_amount > @MAX THEN\n"
    "    RAISE EXCEPTION 'pgbank_keyed: the amount must be from 1 to @MAX, got %', p_amount\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  IF (p_kind = 2) <> (p_to IS NOT NULL) OR p_to = p_id THEN\n"
    "    RAISE EXCEPTION 'pgbank_keyed: only a transfer has a destination, and it must differ"
    " from the source' USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  IF p_key IS NULL OR octet_length(p_key) < 1 OR octet_length(p_key) > 200 THEN\n"
    "    RAISE EXCEPTION 'pgbank_keyed: an idempotency key must be 1 to 200 bytes'\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  opname := CASE WHEN p_kind = 0 THEN 'withdraw' WHEN p_kind = 1 THEN 'deposit'"
    " ELSE 'transfer' END;\n"
    "  replayed := false;\n"
    "  PERFORM set_config('pgbank.own', 'on', true);\n"
    "  INSERT INTO @S.pgbank_keys (key, op, account, to_account, amount)\n"
    "  VALUES (p_key, opname, p_id, p_to, p_amount) ON CONFLICT (key) DO NOTHING;\n"
    "  IF NOT FOUND THEN\n"
    "    SELECT k.op, k.account, k.to_account, k.amount, k.outcome, k.balance, k.to_balance"
    "      INTO r FROM @S.pgbank_keys k WHERE k.key = p_key;\n"
    "    IF r.op <> opname OR r.account <> p_id OR r.to_account IS DISTINCT FROM p_to"
    "       OR r.amount <> p_amount THEN\n"
    "      status := @O_CONFLICT;\n"
    "      RETURN;\n"
    "    END IF;\n"
    "    status := r.outcome; bal := r.balance; to_bal := r.to_balance; replayed := true;\n"
    "    IF status <> @O_OK AND NOT " MAY_READ " THEN bal := NULL; to_bal := NULL; END IF;\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  IF p_kind = 0 THEN\n"
    "    UPDATE @S.accounts x SET balance = x.balance - p_amount"
    "     WHERE x.id = p_id AND x.balance >= p_amount RETURNING x.balance INTO bal;\n"
    "    IF FOUND THEN\n"
    "      status := @O_OK;\n"
    "      INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, strategy, key)\n"
    "      VALUES (p_id, 'withdraw', -p_amount, bal, 'batch', p_key);\n"
    "    ELSE\n"
    "      SELECT x.balance INTO bal FROM @S.accounts x WHERE x.id = p_id;\n"
    "      status := CASE WHEN FOUND THEN @O_INSUFFICIENT_FUNDS ELSE @O_NO_SUCH_ACCOUNT END;\n"
    "    END IF;\n"
    "  ELSIF p_kind = 1 THEN\n"
    "    UPDATE @S.accounts x SET balance = x.balance + p_amount"
    "     WHERE x.id = p_id AND x.balance <= @MAX - p_amount RETURNING x.balance INTO bal;\n"
    "    IF FOUND THEN\n"
    "      status := @O_OK;\n"
    "      INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, strategy, key)\n"
    "      VALUES (p_id, 'deposit', p_amount, bal, 'batch', p_key);\n"
    "    ELSE\n"
    "      PERFORM 1 FROM @S.accounts x WHERE x.id = p_id;\n"
    "      status := CASE WHEN FOUND THEN @O_OVERFLOW ELSE @O_NO_SUCH_ACCOUNT END;\n"
    "    END IF;\n"
    "  ELSE\n"
    "    lo := least(p_id, p_to); hi := greatest(p_id, p_to);\n"
    "    SELECT x.balance INTO b_lo FROM @S.accounts x WHERE x.id = lo FOR UPDATE;\n"
    "    SELECT x.balance INTO b_hi FROM @S.accounts x WHERE x.id = hi FOR UPDATE;\n"
    "    src := CASE WHEN lo = p_id THEN b_lo ELSE b_hi END;\n"
    "    dst := CASE WHEN lo = p_id THEN b_hi ELSE b_lo END;\n"
    "    IF src IS NULL THEN status := @O_NO_SUCH_ACCOUNT;\n"
    "    ELSIF dst IS NULL THEN status := @O_NO_SUCH_DESTINATION;\n"
    "    ELSIF src < p_amount THEN status := @O_INSUFFICIENT_FUNDS; bal := src;\n"
    "    ELSIF dst > @MAX - p_amount THEN status := @O_OVERFLOW;\n"
    "    ELSE\n"
    "      UPDATE @S.accounts x SET balance = x.balance - p_amount WHERE x.id = p_id"
    "       RETURNING x.balance INTO bal;\n"
    "      UPDATE @S.accounts x SET balance = x.balance + p_amount WHERE x.id = p_to"
    "       RETURNING x.balance INTO to_bal;\n"
    "      INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, strategy, key)\n"
    "      VALUES (p_id, 'transfer out', -p_amount, bal, 'batch', p_key),\n"
    "             (p_to, 'transfer in', p_amount, to_bal, 'batch', p_key);\n"
    "      status := @O_OK;\n"
    "    END IF;\n"
    "  END IF;\n"
    "  UPDATE @S.pgbank_keys k SET outcome = status, balance = bal, to_balance = to_bal"
    "   WHERE k.key = p_key;\n"
    "  IF status <> @O_OK AND NOT " MAY_READ " THEN bal := NULL; to_bal := NULL; END IF;\n"
    "END\n"
    "$f$";

/* Changes made outside pgbank, journaled by the database.  SECURITY
 * DEFINER: the writer (the seed's application, say) needs no right on the
 * journal.  Who made the change: the session's login role and its
 * application_name. */
static const char external_fn[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_external() RETURNS trigger\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "BEGIN\n"
    "  IF TG_OP = 'UPDATE' THEN\n"
    "    INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, db_role, application)\n"
    "    SELECT coalesce(n.id, o.id), 'external', coalesce(n.balance, 0) - coalesce(o.balance, 0),\n"
    "           coalesce(n.balance, 0), session_user, current_setting('application_name')\n"
    "      FROM pgbank_new n FULL JOIN pgbank_old o ON o.id = n.id\n"
    "     WHERE n.balance IS DISTINCT FROM o.balance ORDER BY 1;\n"
    "  ELSIF TG_OP = 'INSERT' THEN\n"
    "    INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, db_role, application)\n"
    "    SELECT n.id, 'external', n.balance, n.balance, session_user,"
    " current_setting('application_name') FROM pgbank_new n ORDER BY 1;\n"
    "  ELSIF TG_OP = 'DELETE' THEN\n"
    "    INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, db_role, application)\n"
    "    SELECT o.id, 'external', -o.balance, 0, session_user,"
    " current_setting('application_name') FROM pgbank_old o ORDER BY 1;\n"
    "  ELSE\n"
    "    INSERT INTO @S.pgbank_journal (account, op, amount, balance_after, db_role, application)\n"
    "    SELECT x.id, 'external', -x.balance, 0, session_user,"
    " current_setting('application_name') FROM @S.accounts x ORDER BY 1;\n"
    "  END IF;\n"
    "  RETURN NULL;\n"
    "END\n"
    "$f$";

/* One trigger per event: transition tables allow only one.  pgbank's own
 * statements (marked) skip the function call entirely. */
#define NOT_PGBANK " WHEN (pg_catalog.current_setting('pgbank.own', true) IS DISTINCT FROM 'on')"
static const char *const external_triggers[] = {
    "DROP TRIGGER IF EXISTS pgbank_external_update ON @S.accounts",
    "CREATE TRIGGER pgbank_external_update AFTER UPDATE ON @S.accounts"
    " REFERENCING OLD TABLE AS pgbank_old NEW TABLE AS pgbank_new FOR EACH STATEMENT" NOT_PGBANK
    " EXECUTE FUNCTION @S.pgbank_external()",
    "DROP TRIGGER IF EXISTS pgbank_external_insert ON @S.accounts",
    "CREATE TRIGGER pgbank_external_insert AFTER INSERT ON @S.accounts"
    " REFERENCING NEW TABLE AS pgbank_new FOR EACH STATEMENT" NOT_PGBANK
    " EXECUTE FUNCTION @S.pgbank_external()",
    "DROP TRIGGER IF EXISTS pgbank_external_delete ON @S.accounts",
    "CREATE TRIGGER pgbank_external_delete AFTER DELETE ON @S.accounts"
    " REFERENCING OLD TABLE AS pgbank_old FOR EACH STATEMENT" NOT_PGBANK
    " EXECUTE FUNCTION @S.pgbank_external()",
    "DROP TRIGGER IF EXISTS pgbank_external_truncate ON @S.accounts",
    "CREATE TRIGGER pgbank_external_truncate BEFORE TRUNCATE ON @S.accounts"
    " FOR EACH STATEMENT" NOT_PGBANK " EXECUTE FUNCTION @S.pgbank_external()",
    NULL,
};

const char *const pgbank__app_functions[] = {
    "pgbank_batch(smallint[], bigint[], bigint[], bigint[])",
    "pgbank_batch_one(smallint, bigint, bigint)",
    "pgbank_keyed(smallint, bigint, bigint, bigint, text)",
    NULL,
};

/* Signatures of earlier schema versions, dropped on upgrade (schema 3 took
 * the balance maximum from the caller). */
static const char *const obsolete[] = {
    "DROP FUNCTION IF EXISTS @S.pgbank_batch(smallint[], bigint[], bigint[], bigint[], bigint)",
    "DROP FUNCTION IF EXISTS @S.pgbank_batch_one(smallint, bigint, bigint, bigint)",
    NULL,
};

/* --- templates ------------------------------------------------------------ */

typedef struct buf {
    char *s;
    size_t len, cap;
    int nomem;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->nomem = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static const struct {
    const char *name;
    int code;
} outcomes[] = {
#define PGBANK__OUTCOME_NAME(name, code) {#name, code},
    PGBANK__OUTCOME_MAP(PGBANK__OUTCOME_NAME)
#undef PGBANK__OUTCOME_NAME
};

/* The value of placeholder `name` (len bytes), into out; 0 when unknown. */
static int placeholder(const pgbank__init *x, const char *name, size_t len, char *out,
                       size_t outlen)
{
    if (len == 1 && name[0] == 'S') {
        snprintf(out, outlen, "%s", x->schema);
        return 1;
    }
    if (len == 3 && memcmp(name, "ACC", 3) == 0) {
        snprintf(out, outlen, "%s", x->accounts_lit);
        return 1;
    }
    if (len == 3 && memcmp(name, "MAX", 3) == 0) {
        snprintf(out, outlen, "%lld", (long long)x->balance_max);
        return 1;
    }
    if (len == 3 && memcmp(name, "CAP", 3) == 0) {
        snprintf(out, outlen, "%d", PGBANK__BATCH_CAP);
        return 1;
    }
    if (len > 2 && memcmp(name, "O_", 2) == 0) {
        for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
            if (strlen(outcomes[i].name) == len - 2 && memcmp(outcomes[i].name, name + 2, len - 2) == 0) {
                snprintf(out, outlen, "%d", outcomes[i].code);
                return 1;
            }
        }
    }
    return 0;
}

static char *render(const pgbank__init *x, const char *t)
{
    buf b = {0};
    int skip = 0; /* inside @J{ ... @J} without a journal */
    while (*t) {
        const char *at = strchr(t, '@');
        if (!at) {
            if (!skip)
                put(&b, t, strlen(t));
            break;
        }
        if (!skip)
            put(&b, t, (size_t)(at - t));
        const char *name = at + 1;
        size_t len = 0;
        while ((name[len] >= 'A' && name[len] <= 'Z') || name[len] == '_')
            len++;
        if (len == 1 && name[0] == 'J' && (name[1] == '{' || name[1] == '}')) {
            skip = name[1] == '{' && !x->journal;
            t = name + 2;
            continue;
        }
        char val[400];
        if (!placeholder(x, name, len, val, sizeof val)) {
            free(b.s);
            return NULL; /* a template error, caught by the tests */
        }
        if (!skip)
            put(&b, val, strlen(val));
        t = name + len;
    }
    if (b.nomem) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

int pgbank__init_exec(pgbank__init *x, const char *tmpl, int nparams, const char *const *params,
                      PGresult **out)
{
    char *sql = render(x, tmpl);
    if (!sql)
        return pgbank__fail(-1, x->err, x->errlen, "internal error: a statement template");
    int rc = pgbank__init_run(x, sql, nparams, params, out);
    free(sql);
    return rc;
}

int pgbank__init_run_template(pgbank__init *x, const char *tmpl)
{
    return pgbank__init_exec(x, tmpl, 0, NULL, NULL);
}

int pgbank__init_functions(pgbank__init *x)
{
    for (int i = 0; obsolete[i]; i++)
        if (pgbank__init_run_template(x, obsolete[i]) < 0)
            return -1;
    if (pgbank__init_run_template(x, batch_fn) < 0 ||
        pgbank__init_run_template(x, batch_one_fn) < 0)
        return -1;
    if (x->journal) {
        if (pgbank__init_run_template(x, keyed_fn) < 0 ||
            pgbank__init_run_template(x, external_fn) < 0)
            return -1;
        for (int i = 0; external_triggers[i]; i++)
            if (pgbank__init_run_template(x, external_triggers[i]) < 0)
                return -1;
        if (pgbank__init_run_template(
                x, "REVOKE ALL ON FUNCTION @S.pgbank_external() FROM PUBLIC") < 0)
            return -1;
    }
    char sql[256];
    for (int i = 0; pgbank__app_functions[i]; i++) {
        if (!x->journal && strncmp(pgbank__app_functions[i], "pgbank_keyed", 12) == 0)
            continue;
        snprintf(sql, sizeof sql, "REVOKE ALL ON FUNCTION @S.%s FROM PUBLIC",
                 pgbank__app_functions[i]);
        if (pgbank__init_run_template(x, sql) < 0)
            return -1;
    }
    return 0;
}
