/*
 * schema.c - `pgbank init`: creates pgbank's schema idempotently, in one
 * transaction, serialised against concurrent inits.
 *
 * Column types: pgbank's own accounts table uses bigint minor units
 * (cents): integer would cap a balance at 21,474,836.47 and the sum of many
 * balances overflows it sooner; bigint holds 92 quadrillion and stays exact
 * (never floating point for money).  A table the seed's SQLAlchemy model
 * created (id integer primary key, balance integer not null) is adopted as
 * it is: the engine reads the column types and rejects amounts that do not
 * fit before sending anything.
 */
#include "internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PGconn *pg;
    const char *conninfo;
    char *err;
    size_t errlen;
} init_ctx;

/* Runs one statement; on error fills err (password-free) and returns -1. */
static int run(init_ctx *x, const char *sql, int nparams, const char *const *params,
               PGresult **out)
{
    PGresult *r = PQexecParams(x->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        pgbank__fail(PGBANK_EDB, x->err, x->errlen, "%s%s%s%s", PQresultErrorMessage(r),
                     ss ? "(SQLSTATE " : "", ss ? ss : "", ss ? ")" : "");
        PQclear(r);
        return -1;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static int is_int_type(const char *t)
{
    return strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0;
}

/* An existing accounts table: check its shape, give id a default if it has
 * none (so `account open` can number new accounts), record the adoption. */
static int adopt_accounts(init_ctx *x)
{
    PGresult *r;
    if (run(x,
            "SELECT (SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'id' AND NOT attisdropped),"
            "       (SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'balance' AND NOT attisdropped),"
            "       (SELECT atthasdef OR attidentity <> '' FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'id' AND NOT attisdropped),"
            "       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            "          AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisunique"
            "          AND i.indnatts = 1 AND a.attname = 'id')"
            "  FROM pg_class c WHERE c.oid = to_regclass('accounts')",
            0, NULL, &r) < 0)
        return -1;
    const char *idt = PQgetvalue(r, 0, 0), *balt = PQgetvalue(r, 0, 1);
    if (!is_int_type(idt) || !is_int_type(balt) || PQgetvalue(r, 0, 3)[0] != 't') {
        pgbank__fail(PGBANK_ESCHEMA, x->err, x->errlen,
                     "table \"accounts\" exists but has the wrong shape (id %s, balance %s%s): "
                     "pgbank needs id integer or bigint as its primary key and balance integer "
                     "or bigint",
                     *idt ? idt : "missing", *balt ? balt : "missing",
                     PQgetvalue(r, 0, 3)[0] == 't' ? "" : ", id not unique");
        PQclear(r);
        return -2;
    }
    int has_default = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    if (!has_default &&
        (run(x, "CREATE SEQUENCE IF NOT EXISTS accounts_id_seq OWNED BY accounts.id", 0, NULL,
             NULL) < 0 ||
         run(x, "SELECT setval('accounts_id_seq', GREATEST(COALESCE(max(id), 0), 1),"
                " max(id) IS NOT NULL) FROM accounts",
             0, NULL, NULL) < 0 ||
         run(x, "ALTER TABLE accounts ALTER COLUMN id SET DEFAULT nextval('accounts_id_seq')", 0,
             NULL, NULL) < 0))
        return -1;
    return run(x,
               "INSERT INTO pgbank_meta (key, value) VALUES ('accounts', 'adopted')"
               " ON CONFLICT (key) DO NOTHING",
               0, NULL, NULL);
}

/* Schema 2: the journal and the idempotency keys.  When the journal is new,
 * every account already there gets an "open" row with its balance, so the
 * audit starts from what exists. */
static int init_journal(init_ctx *x)
{
    PGresult *r;
    if (run(x, "SELECT to_regclass('pgbank_journal') IS NULL", 0, NULL, &r) < 0)
        return -1;
    int fresh = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (fresh &&
        (run(x,
             "CREATE TABLE pgbank_journal ("
             " seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
             " account bigint NOT NULL,"
             " op text NOT NULL,"
             " amount bigint NOT NULL,"
             " balance_after bigint NOT NULL,"
             " strategy text,"
             " key text,"
             " at timestamptz NOT NULL DEFAULT now())", /* the transaction's time */
             0, NULL, NULL) < 0 ||
         run(x, "CREATE INDEX pgbank_journal_account ON pgbank_journal (account, seq)", 0, NULL,
             NULL) < 0 ||
         run(x,
             "INSERT INTO pgbank_journal (account, op, amount, balance_after)"
             " SELECT id, 'open', balance, balance FROM accounts ORDER BY id",
             0, NULL, NULL) < 0))
        return -1;
    return run(x,
               "CREATE TABLE IF NOT EXISTS pgbank_keys ("
               " key text PRIMARY KEY,"
               " op text NOT NULL,"
               " account bigint NOT NULL,"
               " to_account bigint,"
               " amount bigint NOT NULL,"
               " status text NOT NULL,"
               " balance bigint,"
               " to_balance bigint,"
               " message text,"
               " at timestamptz NOT NULL DEFAULT clock_timestamp())",
               0, NULL, NULL) < 0
               ? -1
               : run(x, "ALTER TABLE pgbank_keys ADD COLUMN IF NOT EXISTS message text", 0, NULL,
                     NULL);
}

/* Schema 3: the batch function.  Locks every account of the batch in id
 * order, applies the operations one by one in arrival order on the balances
 * held in memory (a refusal never affects another operation), writes each
 * changed account once, and journals every operation that succeeded (where
 * the journal exists: a benchmark may drop it to run pgbench's SQL).
 * Status codes: 0 ok, 1 insufficient funds, 2 no such account (source),
 * 3 the new balance would overflow, 4 no such account (destination). */
static const char batch_function[] =
    "CREATE OR REPLACE FUNCTION pgbank_batch(kinds smallint[], ids bigint[], to_ids bigint[],"
    "  amounts bigint[], maxbal bigint,"
    "  OUT status smallint[], OUT bal bigint[], OUT to_bal bigint[])"
    " LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    "  n int := coalesce(cardinality(ids), 0);\n"
    "  acc bigint[]; cur bigint[]; orig bigint[]; ai int[]; ti int[];\n"
    "  i int; a int; t int; amt bigint; k smallint;\n"
    "BEGIN\n"
    "  SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}'),"
    "         coalesce(array_agg(s.balance ORDER BY s.id), '{}') INTO acc, cur\n"
    "    FROM (SELECT id, balance FROM accounts WHERE id = ANY (ids || to_ids)"
    "          ORDER BY id FOR UPDATE) s;\n"
    "  SELECT array_agg(p.pos::int ORDER BY o.ord), array_agg(q.pos::int ORDER BY o.ord)"
    "    INTO ai, ti\n"
    "    FROM unnest(ids, to_ids) WITH ORDINALITY o(id, to_id, ord)\n"
    "    LEFT JOIN unnest(acc) WITH ORDINALITY p(id, pos) ON p.id = o.id\n"
    "    LEFT JOIN unnest(acc) WITH ORDINALITY q(id, pos) ON q.id = o.to_id;\n"
    "  status := array_fill(0::smallint, ARRAY[n]);\n"
    "  bal := array_fill(NULL::bigint, ARRAY[n]);\n"
    "  to_bal := bal;\n"
    "  orig := cur;\n"
    "  FOR i IN 1 .. n LOOP\n"
    "    a := ai[i]; amt := amounts[i]; k := kinds[i];\n"
    "    IF a IS NULL THEN\n"
    "      status[i] := 2;\n"
    "    ELSIF k = 0 THEN\n"
    "      IF cur[a] >= amt THEN cur[a] := cur[a] - amt; ELSE status[i] := 1; END IF;\n"
    "      bal[i] := cur[a];\n"
    "    ELSIF k = 1 THEN\n"
    "      IF cur[a] > maxbal - amt THEN status[i] := 3; ELSE cur[a] := cur[a] + amt; END IF;\n"
    "      bal[i] := cur[a];\n"
    "    ELSE\n"
    "      t := ti[i];\n"
    "      IF t IS NULL THEN status[i] := 4;\n"
    "      ELSIF cur[a] < amt THEN status[i] := 1; bal[i] := cur[a];\n"
    "      ELSIF cur[t] > maxbal - amt THEN status[i] := 3;\n"
    "      ELSE cur[a] := cur[a] - amt; cur[t] := cur[t] + amt;"
    " bal[i] := cur[a]; to_bal[i] := cur[t];\n"
    "      END IF;\n"
    "    END IF;\n"
    "  END LOOP;\n"
    "  IF n = 0 THEN RETURN; END IF;\n"
    "  UPDATE accounts SET balance = v.b FROM unnest(acc, cur, orig) v(id, b, o)\n"
    "   WHERE accounts.id = v.id AND v.b <> v.o;\n"
    "  IF to_regclass('pgbank_journal') IS NULL THEN RETURN; END IF;\n"
    "  INSERT INTO pgbank_journal (account, op, amount, balance_after, strategy)\n"
    "  SELECT j.account, j.op, j.amount, j.after, 'batch' FROM (\n"
    "    SELECT o.ord, 0 AS sub, o.id AS account,\n"
    "           CASE o.k WHEN 0 THEN 'withdraw' WHEN 1 THEN 'deposit' ELSE 'transfer out' END AS op,\n"
    "           CASE o.k WHEN 1 THEN o.amt ELSE -o.amt END AS amount, o.b AS after\n"
    "      FROM unnest(kinds, ids, amounts, status, bal) WITH ORDINALITY o(k, id, amt, st, b, ord)\n"
    "     WHERE o.st = 0\n"
    "    UNION ALL\n"
    "    SELECT o.ord, 1, o.to_id, 'transfer in', o.amt, o.tb\n"
    "      FROM unnest(kinds, to_ids, amounts, status, to_bal)"
    " WITH ORDINALITY o(k, to_id, amt, st, tb, ord)\n"
    "     WHERE o.st = 0 AND o.k = 2) j\n"
    "  ORDER BY j.ord, j.sub;\n"
    "END\n"
    "$f$";

/* The server-side functions run as their owner with a fixed search_path
 * (the schema init ran in), so a role allowed only to EXECUTE them can move
 * money through them without any right on the tables, and cannot redirect
 * them to tables of its own. */
static const char secure_functions[] =
    "DO $d$ BEGIN"
    " EXECUTE format('ALTER FUNCTION pgbank_batch(smallint[], bigint[], bigint[], bigint[], bigint)"
    " SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());"
    " REVOKE ALL ON FUNCTION pgbank_batch(smallint[], bigint[], bigint[], bigint[], bigint)"
    " FROM PUBLIC;"
    " EXECUTE format('ALTER FUNCTION pgbank_batch_one(smallint, bigint, bigint, bigint)"
    " SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());"
    " REVOKE ALL ON FUNCTION pgbank_batch_one(smallint, bigint, bigint, bigint) FROM PUBLIC;"
    " END $d$";

/* A batch of one withdrawal or deposit: the guarded UPDATE and its journal
 * row, without the arrays' fixed cost, so a quiet system answers as fast as
 * the atomic strategy.  Same status codes as pgbank_batch(). */
static const char batch_one_function[] =
    "CREATE OR REPLACE FUNCTION pgbank_batch_one(p_kind smallint, p_id bigint, p_amount bigint,"
    "  p_max bigint, OUT status smallint, OUT bal bigint)"
    " LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    "  IF p_kind = 0 THEN\n"
    "    UPDATE accounts SET balance = balance - p_amount"
    "     WHERE id = p_id AND balance >= p_amount RETURNING balance INTO bal;\n"
    "  ELSE\n"
    "    UPDATE accounts SET balance = balance + p_amount"
    "     WHERE id = p_id AND balance <= p_max - p_amount RETURNING balance INTO bal;\n"
    "  END IF;\n"
    "  IF FOUND THEN\n"
    "    IF to_regclass('pgbank_journal') IS NULL THEN status := 0; RETURN; END IF;\n"
    "    INSERT INTO pgbank_journal (account, op, amount, balance_after, strategy)\n"
    "    VALUES (p_id, CASE p_kind WHEN 0 THEN 'withdraw' ELSE 'deposit' END,\n"
    "            CASE p_kind WHEN 0 THEN -p_amount ELSE p_amount END, bal, 'batch');\n"
    "    status := 0;\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  SELECT balance INTO bal FROM accounts WHERE id = p_id;\n"
    "  status := CASE WHEN NOT FOUND THEN 2 WHEN p_kind = 0 THEN 1 ELSE 3 END;\n"
    "END\n"
    "$f$";

static int init_tx(init_ctx *x)
{
    PGresult *r;
    /* Two inits at once: the second waits, then finds everything there. */
    if (run(x, "SELECT pg_advisory_xact_lock(7405162)", 0, NULL, NULL) < 0 ||
        run(x,
            "CREATE TABLE IF NOT EXISTS pgbank_meta ("
            " key text PRIMARY KEY,"
            " value text NOT NULL)",
            0, NULL, NULL) < 0 ||
        run(x, "SELECT to_regclass('accounts') IS NULL", 0, NULL, &r) < 0)
        return -1;
    int missing = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (missing) {
        if (run(x,
                "CREATE TABLE accounts ("
                " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                " balance bigint NOT NULL"
                "  CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0))"
                /* room on each page, so a balance update stays a HOT update
                 * (no index entry to write) */
                " WITH (fillfactor = 80)",
                0, NULL, NULL) < 0 ||
            run(x,
                "INSERT INTO pgbank_meta (key, value) VALUES ('accounts', 'created')"
                " ON CONFLICT (key) DO NOTHING",
                0, NULL, NULL) < 0)
            return -1;
    } else {
        int rc = adopt_accounts(x);
        if (rc < 0)
            return rc;
    }
    if (init_journal(x) < 0 || run(x, batch_function, 0, NULL, NULL) < 0 ||
        run(x, batch_one_function, 0, NULL, NULL) < 0 ||
        run(x, secure_functions, 0, NULL, NULL) < 0)
        return -1;
    char version[16];
    snprintf(version, sizeof version, "%d", PGBANK_SCHEMA_VERSION);
    const char *p[1] = {version};
    return run(x,
               "INSERT INTO pgbank_meta (key, value) VALUES ('schema_version', $1)"
               " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
               1, p, NULL);
}

/* --app-role: a login role that may only call the functions.  Identifiers
 * cannot travel as parameters; the role name is quoted by libpq's
 * PQescapeIdentifier, the one place a name enters SQL text. */
static int grant_app_role(init_ctx *x, const char *role)
{
    char *id = PQescapeIdentifier(x->pg, role, strlen(role));
    if (!id)
        return pgbank__fail(-1, x->err, x->errlen, "invalid role name");
    const char *p[1] = {role};
    PGresult *r;
    char sql[600];
    int rc = run(x, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, p, &r);
    if (rc == 0) {
        int exists = PQntuples(r) > 0;
        PQclear(r);
        const char *stmts[] = {
            "CREATE ROLE %s LOGIN",
            "REVOKE ALL ON accounts, pgbank_journal, pgbank_keys, pgbank_meta FROM %s",
            "GRANT EXECUTE ON FUNCTION pgbank_batch(smallint[], bigint[], bigint[], bigint[], bigint) TO %s",
            "GRANT EXECUTE ON FUNCTION pgbank_batch_one(smallint, bigint, bigint, bigint) TO %s",
        };
        for (size_t i = exists ? 1 : 0; rc == 0 && i < sizeof stmts / sizeof stmts[0]; i++) {
            snprintf(sql, sizeof sql, stmts[i], id);
            rc = run(x, sql, 0, NULL, NULL);
        }
        if (rc == 0) {
            const char *q[1] = {id};
            rc = run(x, "SELECT format('GRANT USAGE ON SCHEMA %I TO ', current_schema()) || $1", 1,
                     q, &r);
            if (rc == 0) {
                pgbank__strlcpy(sql, PQgetvalue(r, 0, 0), sizeof sql);
                PQclear(r);
                rc = run(x, sql, 0, NULL, NULL);
            }
        }
    }
    PQfreemem(id);
    return rc;
}

/* Runs body(x, arg) in one transaction on a connection of its own:
 * COMMIT when it returns 0, ROLLBACK otherwise (-2: PGBANK_ESCHEMA, else
 * PGBANK_EDB).  The reason, password-free, is in err. */
static int in_init_tx(const char *conninfo, int (*body)(init_ctx *, const char *),
                      const char *arg, char *err, size_t errlen)
{
    char *ci;
    int rc;
    PGconn *pg = pgbank__connect_blocking(conninfo, &ci, err, errlen, &rc);
    if (!pg) {
        free(ci);
        return rc;
    }
    init_ctx x = {pg, ci, err, errlen};
    if (run(&x, "BEGIN", 0, NULL, NULL) < 0 ||
        run(&x, "SET LOCAL client_min_messages = warning", 0, NULL, NULL) < 0) {
        rc = PGBANK_EDB;
    } else {
        int r = body(&x, arg);
        if (r < 0) {
            PQclear(PQexec(pg, "ROLLBACK"));
            rc = r == -2 ? PGBANK_ESCHEMA : PGBANK_EDB;
        } else if (run(&x, "COMMIT", 0, NULL, NULL) < 0) {
            rc = PGBANK_EDB;
        }
    }
    if (rc && err && errlen) {
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        pgbank_conninfo_scrub(ci, err, errlen);
    }
    PQfinish(pg);
    free(ci);
    return rc;
}

static int init_body(init_ctx *x, const char *unused)
{
    (void)unused;
    return init_tx(x);
}

static int init_and_grant_body(init_ctx *x, const char *role)
{
    int rc = init_tx(x);
    return rc < 0 ? rc : grant_app_role(x, role);
}

PGBANK__API int pgbank_schema_init(const char *conninfo, char *err, size_t errlen)
{
    return in_init_tx(conninfo, init_body, NULL, err, errlen);
}

PGBANK__API int pgbank_schema_init_app_role(const char *conninfo, const char *role, char *err,
                                            size_t errlen)
{
    if (!role || !*role || strlen(role) > 63)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "a role name must be 1 to 63 bytes");
    return in_init_tx(conninfo, init_and_grant_body, role, err, errlen);
}
