/*
 * schema_fn.c - the text of pgbank's server-side code (templates rendered by
 * schema_sql.c): the functions that move money for the batch strategy and
 * for an application role, and the triggers that journal every balance
 * change made outside pgbank.
 *
 * Written for a hostile caller (docs/SECURITY.md):
 *   - SECURITY DEFINER with `search_path = pg_catalog, pg_temp`: built-ins
 *     resolve in pg_catalog, never to a look-alike planted in a schema the
 *     caller may CREATE in, functions are never looked up in pg_temp, and
 *     every table and sequence is schema-qualified (@S, @SEQ, @ACC);
 *   - every argument validated in SQL before anything changes: NULLs,
 *     kinds, amounts (from 1 to the balance column's maximum, @MAX, derived
 *     from the column's type when init runs, never taken from the caller),
 *     array shape (one dimension, starting at 1, equal lengths) and size
 *     (@CAP); a refused call raises invalid_parameter_value (22023) or
 *     program_limit_exceeded (54000) and changes nothing;
 *   - a refusal's balance is NULL for a caller that may not read balances.
 *
 * The journal (schema 5) is a chain per account: accounts.jseq names the
 * account's newest journal row and every row names the one before it
 * (prev), so `history` walks the chain through the primary key and no
 * per-account index has to be kept (that index's random inserts cost more
 * than the rest of the journal).  A batch writes one journal row per
 * account it changed: one operation in the row's own columns, several in
 * op_kinds/op_amounts (in order; the row's amount is their sum, its
 * balance_after the balance after the last), so a hot account takes one
 * journal row per batch, not one per withdrawal.
 *
 * pgbank's own writes mark their transaction (set_config('pgbank.own',
 * 'on', true)); a write without the mark is somebody else's, and the
 * triggers journal it as op 'external' with the session's role and
 * application_name.
 */
#include "schema.h"

/* A caller that may not read the balances (the application role) does not
 * learn them from refusals either.  session_user: inside a SECURITY
 * DEFINER function current_user is the owner. */
#define MAY_READ "has_table_privilege(session_user, @ACC, 'SELECT')"

#define OWN "PERFORM set_config('pgbank.own', 'on', true);\n"

/* The journal's kinds of operation, in op_kinds. */
#define JOURNAL_OP_NAME(k)                                                                         \
    "CASE " k " WHEN 0 THEN 'withdraw' WHEN 1 THEN 'deposit' WHEN 2 THEN 'transfer out'"          \
    " ELSE 'transfer in' END"

/* The first operation of the batch that is not one pgbank can run, refused
 * with invalid_parameter_value (nothing is changed). */
#define REFUSE_BAD_OPERATION                                                                       \
    "      SELECT min(u.o) INTO i FROM unnest(kinds, ids, to_ids, amounts) WITH ORDINALITY"       \
    " u(k, a, t, m, o)\n"                                                                          \
    "       WHERE u.k IS NULL OR u.k < 0 OR u.k > 2 OR u.a IS NULL OR u.m IS NULL OR u.m <= 0"    \
    " OR u.m > @MAX OR (u.k = 2) <> (u.t IS NOT NULL) OR u.t IS NOT DISTINCT FROM u.a;\n"                           \
    "      IF i IS NOT NULL THEN\n"                                                               \
    "        RAISE EXCEPTION 'pgbank_batch: operation % (kind %, account %, destination %,"       \
    " amount %) is not one pgbank can run: kinds are 0 withdraw, 1 deposit, 2 transfer;"          \
    " amounts from 1 to @MAX; only a transfer has a destination, other than its source',"        \
    " i, kinds[i], ids[i], to_ids[i], amounts[i] USING ERRCODE = 'invalid_parameter_value';\n"  \
    "      END IF;\n"

/* The batch: each operation's result as if they ran one by one in arrival
 * order (a refusal never affects another operation), every changed account
 * written once, and one journal row for the whole batch (its account: the
 * batch's first, so that on a distributed database the row lives with its
 * accounts): its applied operations as they came (kinds, ids, to_ids,
 * amounts) and, for each
 * account it changed (accounts, by id), the account's previous journal row
 * (prevs: the chain) and its balance after the batch (afters).
 *
 * The fast path, when no operation is refused: each account changes by the
 * sum of its operations, in one guarded UPDATE (re-checked on the newest
 * row version, no lock taken first), and the function returns each
 * account's balance before the batch (accts, starts, by id): an
 * operation's result is that balance plus the running sum of its account's
 * operations up to it, which the caller adds up (status, bal and to_bal
 * are then NULL).  The guards are conservative (the sum of the account's
 * debits, and of its credits, must fit): when one fails, or a deadlock with
 * another writer is detected, the subtransaction is rolled back and the
 * slow path runs: the accounts locked in id order, the operations one by
 * one on the balances held in memory, a result for each in status, bal and
 * to_bal (accts and starts NULL). */
const char pgbank__fn_batch[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_batch(kinds smallint[], ids bigint[],"
    " to_ids bigint[], amounts bigint[],"
    " OUT status smallint[], OUT bal bigint[], OUT to_bal bigint[],"
    " OUT accts bigint[], OUT starts bigint[])\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "DECLARE\n"
    "  n int; fast boolean; bad boolean; jrow bigint; prevs bigint[]; afters bigint[];\n"
    "  acc bigint[]; cur bigint[]; orig bigint[]; ai int[]; ti int[]; allids bigint[];\n"
    "  i int; a int; t int; amt bigint; k smallint; v bigint; b bigint;\n"
    "  jk smallint[]; ja bigint[]; jt bigint[]; jm bigint[];\n"
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
    "  " OWN
    "@J{  jrow := nextval(@SEQ);\n@J}"
    /* Every account of the batch, in id order, as a value: the row
     * filters below name it (x.id = ANY (allids)), so that a distributed
     * database reaches only the shards that hold them. */
    "  allids := ARRAY(SELECT DISTINCT u.id FROM unnest(ids || to_ids) u(id)"
    " WHERE u.id IS NOT NULL ORDER BY u.id);\n"
    /* Citus runs an UPDATE that spans shards on all of them at once, so
     * two such batches lock their rows in no common order and deadlock
     * across workers (which Citus breaks by cancelling one).  A batch that
     * spans shards locks its rows first, one at a time in id order. */
    "@D{"
    "  IF (SELECT count(DISTINCT get_shard_id_for_distribution_column(@ACC, u.id))"
    " FROM unnest(allids) u(id)) > 1 THEN\n"
    "    FOREACH v IN ARRAY allids LOOP\n"
    "      PERFORM 1 FROM @S.accounts x WHERE x.id = v FOR UPDATE;\n"
    "    END LOOP;\n"
    "  END IF;\n"
    "@D}"
    "  BEGIN\n"
    /* One pass over the operations: each account's sum, its debits and
     * credits, and whether an operation is not one pgbank can run (then
     * nothing is updated, and the error is raised below). */
    "    WITH g AS MATERIALIZED (SELECT CASE WHEN s.side = 1 THEN u.a ELSE u.t END AS id,\n"
    "           sum(CASE WHEN s.side = 2 OR u.k = 1 THEN u.m ELSE -u.m END) AS net,\n"
    "           coalesce(sum(u.m) FILTER (WHERE s.side = 1 AND u.k <> 1), 0) AS debits,\n"
    "           coalesce(sum(u.m) FILTER (WHERE s.side = 2 OR u.k = 1), 0) AS credits,\n"
    "           bool_or(s.side = 1 AND (u.k IS NULL OR u.k < 0 OR u.k > 2 OR u.a IS NULL"
    " OR u.m IS NULL OR u.m <= 0 OR u.m > @MAX OR (u.k = 2) <> (u.t IS NOT NULL)"
    " OR u.t IS NOT DISTINCT FROM u.a)) AS bad\n"
    "      FROM unnest(kinds, ids, to_ids, amounts) u(k, a, t, m)\n"
    "      CROSS JOIN LATERAL (VALUES (1), (2)) s(side) WHERE s.side = 1 OR u.k = 2\n"
    "      GROUP BY 1),\n"
    "    u AS (UPDATE @S.accounts x SET balance = x.balance + g.net::bigint"
    "@J{, jseq = jrow, jprev = x.jseq@J}\n"
    "          FROM g WHERE NOT (SELECT bool_or(g3.bad) FROM g g3)"
    " AND x.id = ANY (allids) AND x.id = g.id\n"
    "           AND x.balance - g.debits >= 0 AND x.balance + g.credits <= @MAX\n"
    "          RETURNING x.id, x.balance AS after, x.balance - g.net::bigint AS before"
    "@J{, x.jprev@J})\n"
    "    SELECT (SELECT bool_or(g4.bad) FROM g g4),"
    " (SELECT count(*) FROM u) = (SELECT count(*) FROM g),"
    " array_agg(u.id ORDER BY u.id), array_agg(u.before ORDER BY u.id)"
    "@J{, array_agg(u.jprev ORDER BY u.id), array_agg(u.after ORDER BY u.id)@J}"
    " INTO bad, fast, accts, starts@J{, prevs, afters@J} FROM u;\n"
    "    IF bad THEN\n"
    REFUSE_BAD_OPERATION
    "    END IF;\n"
    "    IF NOT fast THEN\n"
    "      RAISE EXCEPTION 'a refusal: one by one';\n"
    "    END IF;\n"
    "  EXCEPTION WHEN raise_exception OR deadlock_detected THEN\n"
    "    fast := false; accts := NULL; starts := NULL;\n"
    "  END;\n"
    "  IF fast THEN\n"
    "@J{    INSERT INTO @S.pgbank_journal (seq, account, op, strategy, kinds, ids, to_ids,"
    " amounts, accounts, prevs, afters)\n"
    "    VALUES (jrow, accts[1], 'batch', 'batch', kinds, ids, to_ids, amounts, accts, prevs,"
    " afters);\n@J}"
    "    RETURN;\n"
    "  END IF;\n"
    /* After a deadlock the operations were not checked: check them now. */
    "  IF bad IS NULL THEN\n"
    REFUSE_BAD_OPERATION
    "  END IF;\n"
    "@L{"
    "  SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}'),"
    "         coalesce(array_agg(s.balance ORDER BY s.id), '{}') INTO acc, cur\n"
    "    FROM (SELECT x.id, x.balance FROM @S.accounts x"
    " WHERE x.id = ANY (allids) ORDER BY x.id FOR UPDATE) s;\n"
    "@L}"
    /* Citus refuses a FOR UPDATE that spans shards: one row at a time,
     * in the same id order. */
    "@D{"
    "  acc := '{}'; cur := '{}';\n"
    "  FOREACH v IN ARRAY allids LOOP\n"
    "    SELECT x.balance INTO b FROM @S.accounts x WHERE x.id = v FOR UPDATE;\n"
    "    IF FOUND THEN acc := acc || v; cur := cur || b; END IF;\n"
    "  END LOOP;\n"
    "@D}"
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
    "    a := ai[i]; amt := amounts[i]; k := kinds[i];\n"
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
    /* Every account an applied operation touched, once (also when its
     * operations sum to nothing: its chain must reach this batch's row). */
    "  WITH c AS (SELECT DISTINCT v.id FROM unnest(kinds, ids, to_ids, status)"
    " v0(k, a, t, st), LATERAL (VALUES (v0.a), (CASE WHEN v0.k = 2 THEN v0.t END)) v(id)"
    " WHERE v0.st = @O_OK AND v.id IS NOT NULL),\n"
    "  f AS (SELECT c.id, l.b FROM c JOIN unnest(acc, cur) l(id, b) ON l.id = c.id),\n"
    "  u AS (UPDATE @S.accounts x SET balance = f.b@J{, jseq = jrow, jprev = x.jseq@J}"
    " FROM f WHERE x.id = ANY (allids) AND x.id = f.id RETURNING x.id, x.balance@J{, x.jprev@J})\n"
    "  SELECT array_agg(u.id ORDER BY u.id)@J{, array_agg(u.jprev ORDER BY u.id),"
    " array_agg(u.balance ORDER BY u.id)@J} INTO acc@J{, prevs, afters@J} FROM u;\n"
    "@J{"
    "  IF acc IS NOT NULL THEN\n"
    "    SELECT array_agg(v.k ORDER BY v.o), array_agg(v.a ORDER BY v.o),"
    " array_agg(v.t ORDER BY v.o), array_agg(v.m ORDER BY v.o) INTO jk, ja, jt, jm\n"
    "      FROM unnest(kinds, ids, to_ids, amounts, status) WITH ORDINALITY v(k, a, t, m, st, o)"
    " WHERE v.st = @O_OK;\n"
    "    INSERT INTO @S.pgbank_journal (seq, account, op, strategy, kinds, ids, to_ids,"
    " amounts, accounts, prevs, afters)\n"
    "    VALUES (jrow, acc[1], 'batch', 'batch', jk, ja, jt, jm, acc, prevs, afters);\n"
    "  END IF;\n"
    "@J}"
    "  IF NOT " MAY_READ " THEN\n"
    "    FOR i IN 1 .. n LOOP\n"
    "      IF status[i] <> @O_OK THEN bal[i] := NULL; to_bal[i] := NULL; END IF;\n"
    "    END LOOP;\n"
    "  END IF;\n"
    "END\n"
    "$f$";

/* Citus: a batch sent to the worker that holds its accounts.  The call is
 * distributed by p_route (schema_sql.c), so Citus runs it whole on the
 * worker holding p_route's shard, where it commits without two-phase
 * commit.  Every account of the batch must be in p_route's shard (the
 * client groups its batches by shard, batch.c); a batch that is not is
 * refused, changing nothing, so a caller cannot make the worker reach
 * beyond its own shard.  Then it is pgbank_batch(). */
const char pgbank__fn_batch_route[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_batch_route(p_route bigint, kinds smallint[],"
    " ids bigint[], to_ids bigint[], amounts bigint[],"
    " OUT status smallint[], OUT bal bigint[], OUT to_bal bigint[],"
    " OUT accts bigint[], OUT starts bigint[])\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "DECLARE shard bigint; r record;\n"
    "BEGIN\n"
    "  IF p_route IS NULL OR ids IS NULL OR to_ids IS NULL THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch_route: no argument may be NULL'\n"
    "      USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  IF cardinality(ids) > @CAP OR cardinality(to_ids) > @CAP THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch_route: at most @CAP operations per call'\n"
    "      USING ERRCODE = 'program_limit_exceeded';\n"
    "  END IF;\n"
    "  shard := get_shard_id_for_distribution_column(@ACC, p_route);\n"
    "  IF EXISTS (SELECT 1 FROM unnest(ids || to_ids) u(id) WHERE u.id IS NOT NULL"
    " AND get_shard_id_for_distribution_column(@ACC, u.id) <> shard) THEN\n"
    "    RAISE EXCEPTION 'pgbank_batch_route: every account of the batch must be in the shard"
    " of account %', p_route USING ERRCODE = 'invalid_parameter_value';\n"
    "  END IF;\n"
    "  SELECT * INTO r FROM @S.pgbank_batch(kinds, ids, to_ids, amounts);\n"
    "  status := r.status; bal := r.bal; to_bal := r.to_bal; accts := r.accts;"
    " starts := r.starts;\n"
    "END\n"
    "$f$";

/* One guarded change of one account, journaled (used by the functions
 * below): p_delta < 0 a debit that needs the funds, > 0 a credit that must
 * fit; sets bal, and the row's journal entry with op `what`.  The journal
 * number is taken first, into a variable (a number is lost when the guard
 * fails, which the chain does not mind): Citus refuses nextval() in an
 * UPDATE of a distributed table. */
#define GUARDED_CHANGE(cond, sign, what, key, strategy)                                            \
    "@J{    s := nextval(@SEQ);\n@J}"                                                               \
    "    UPDATE @S.accounts x SET balance = x.balance " sign " p_amount"                           \
    "@J{, jseq = s, jprev = x.jseq@J}"                                                             \
    " WHERE x.id = p_id AND " cond " RETURNING x.balance@J{, x.jprev@J}"                          \
    " INTO bal@J{, pv@J};\n"                                                                       \
    "    IF FOUND THEN\n"                                                                          \
    "@J{      INSERT INTO @S.pgbank_journal (seq, account, prev, op, amount, balance_after,"       \
    " strategy, key) VALUES (s, p_id, pv, '" what "', " sign "p_amount, bal, '" strategy "', "     \
    key ");\n@J}"

/* One withdrawal (p_kind 0) or deposit (1) of one account: the guarded
 * UPDATE and its journal row, journaled under `strategy`; the status an
 * outcome code, bal the new balance (or the one that refused it, NULL for
 * a caller that may not read it). */
#define ONE_CHANGE_FUNCTION(name, strategy)                                                        \
    "CREATE OR REPLACE FUNCTION @S." name "(p_kind smallint, p_id bigint,"                         \
    " p_amount bigint, OUT status smallint, OUT bal bigint)\n"                                     \
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"            \
    "DECLARE s bigint; pv bigint;\n"                                                               \
    "BEGIN\n"                                                                                      \
    "  IF p_kind IS NULL OR p_kind < 0 OR p_kind > 1 OR p_id IS NULL THEN\n"                       \
    "    RAISE EXCEPTION '" name ": kind must be 0 (withdraw) or 1 (deposit) and the"              \
    " account given, got kind %', p_kind USING ERRCODE = 'invalid_parameter_value';\n"             \
    "  END IF;\n"                                                                                  \
    "  IF p_amount IS NULL OR p_amount <= 0 OR p_amount > @MAX THEN\n"                             \
    "    RAISE EXCEPTION '" name ": the amount must be from 1 to @MAX, got %', p_amount\n"         \
    "      USING ERRCODE = 'invalid_parameter_value';\n"                                           \
    "  END IF;\n"                                                                                  \
    "  " OWN                                                                                       \
    "  IF p_kind = 0 THEN\n"                                                                       \
    GUARDED_CHANGE("x.balance >= p_amount", "-", "withdraw", "NULL", strategy)                     \
    "      status := @O_OK; RETURN;\n"                                                             \
    "    END IF;\n"                                                                                \
    "  ELSE\n"                                                                                     \
    GUARDED_CHANGE("x.balance <= @MAX - p_amount", "+", "deposit", "NULL", strategy)               \
    "      status := @O_OK; RETURN;\n"                                                             \
    "    END IF;\n"                                                                                \
    "  END IF;\n"                                                                                  \
    "  SELECT x.balance INTO bal FROM @S.accounts x WHERE x.id = p_id;\n"                          \
    "  status := CASE WHEN NOT FOUND THEN @O_NO_SUCH_ACCOUNT"                                      \
    " WHEN p_kind = 0 THEN @O_INSUFFICIENT_FUNDS ELSE @O_OVERFLOW END;\n"                          \
    "  IF NOT " MAY_READ " THEN bal := NULL; END IF;\n"                                           \
    "END\n"                                                                                        \
    "$f$"

/* A batch of one withdrawal or deposit, without the arrays' fixed cost, so
 * a quiet system answers as fast as the atomic strategy. */
const char pgbank__fn_batch_one[] = ONE_CHANGE_FUNCTION("pgbank_batch_one", "batch");

/* Citus: the atomic strategy's single-account withdrawal or deposit.  Its
 * one-statement form (a data-modifying CTE that journals) is planned on
 * the coordinator there and commits in two phases; this function is sent
 * whole to the account's worker and commits there alone.  The same guarded
 * UPDATE, journaled as 'atomic'. */
const char pgbank__fn_atomic_one[] = ONE_CHANGE_FUNCTION("pgbank_atomic_one", "atomic");

/* One keyed operation, exactly once, in the caller's transaction: claim the
 * key (a concurrent claimant waits for this one to commit), apply the
 * operation with guarded statements (a transfer locks its two rows one at a
 * time in id order: no deadlock, and no multi-row FOR UPDATE), and record
 * the outcome under the key, refusals included.  A key seen before returns
 * its recorded outcome (replayed), or OUTCOME_CONFLICT when its parameters
 * differ.  This is how an application role, which has no right on the
 * tables, makes keyed requests. */
const char pgbank__fn_keyed[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_keyed(p_kind smallint, p_id bigint, p_to bigint,"
    " p_amount bigint, p_key text,"
    " OUT status smallint, OUT bal bigint, OUT to_bal bigint, OUT replayed boolean)\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "DECLARE\n"
    "  opname text; r record; lo bigint; hi bigint; b_lo bigint; b_hi bigint;"
    " src bigint; dst bigint; s bigint; pv bigint;\n"
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
    "  " OWN
    "  INSERT INTO @S.pgbank_keys (key, op, account, to_account, amount)\n"
    "  VALUES (p_key, opname, p_id, p_to, p_amount) ON CONFLICT DO NOTHING;\n"
    "  IF NOT FOUND THEN\n"
    "    SELECT k.op, k.account, k.to_account, k.amount, k.outcome, k.balance, k.to_balance"
    "      INTO r FROM @S.pgbank_keys k WHERE k.key = p_key ORDER BY k.account <> p_id LIMIT 1;\n"
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
    GUARDED_CHANGE("x.balance >= p_amount", "-", "withdraw", "p_key", "batch")
    "      status := @O_OK;\n"
    "    ELSE\n"
    "      SELECT x.balance INTO bal FROM @S.accounts x WHERE x.id = p_id;\n"
    "      status := CASE WHEN FOUND THEN @O_INSUFFICIENT_FUNDS ELSE @O_NO_SUCH_ACCOUNT END;\n"
    "    END IF;\n"
    "  ELSIF p_kind = 1 THEN\n"
    GUARDED_CHANGE("x.balance <= @MAX - p_amount", "+", "deposit", "p_key", "batch")
    "      status := @O_OK;\n"
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
    "      s := nextval(@SEQ);\n"
    "      UPDATE @S.accounts x SET balance = x.balance - p_amount,"
    " jseq = s, jprev = x.jseq WHERE x.id = p_id"
    " RETURNING x.balance, x.jprev INTO bal, pv;\n"
    "      INSERT INTO @S.pgbank_journal (seq, account, prev, op, amount, balance_after,"
    " strategy, key) VALUES (s, p_id, pv, 'transfer out', -p_amount, bal, 'batch', p_key);\n"
    "      s := nextval(@SEQ);\n"
    "      UPDATE @S.accounts x SET balance = x.balance + p_amount,"
    " jseq = s, jprev = x.jseq WHERE x.id = p_to"
    " RETURNING x.balance, x.jprev INTO to_bal, pv;\n"
    "      INSERT INTO @S.pgbank_journal (seq, account, prev, op, amount, balance_after,"
    " strategy, key) VALUES (s, p_to, pv, 'transfer in', p_amount, to_bal, 'batch', p_key);\n"
    "      status := @O_OK;\n"
    "    END IF;\n"
    "  END IF;\n"
    "  UPDATE @S.pgbank_keys k SET outcome = status, balance = bal, to_balance = to_bal"
    "   WHERE k.key = p_key AND k.account = p_id;\n"
    "  IF status <> @O_OK AND NOT " MAY_READ " THEN bal := NULL; to_bal := NULL; END IF;\n"
    "END\n"
    "$f$";

/* Changes made outside pgbank, journaled by the database.  SECURITY
 * DEFINER: the writer (the seed's application, say) needs no right on the
 * journal.  Who made the change: the session's login role and its
 * application_name.  The accounts still there get their chain's new head;
 * that UPDATE is marked as pgbank's (not journaled again), and the mark is
 * put back as it was, so the writer's next statement is journaled too. */
#define EXTERNAL_ROWS(from, id, delta, after, prev)                                                \
    "    WITH c AS (SELECT " id " AS id, " delta " AS delta, " after " AS after, " prev            \
    " AS prev FROM " from "),\n"                                                                   \
    "    s AS MATERIALIZED (SELECT c.*, nextval(@SEQ) AS seq FROM c ORDER BY c.id),\n"            \
    "    w AS (INSERT INTO @S.pgbank_journal (seq, account, prev, op, amount, balance_after,"     \
    " db_role, application) SELECT s.seq, s.id, s.prev, 'external', s.delta, s.after,"           \
    " session_user, current_setting('application_name') FROM s)\n"

const char pgbank__fn_external[] =
    "CREATE OR REPLACE FUNCTION @S.pgbank_external() RETURNS trigger\n"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$\n"
    "DECLARE was text := current_setting('pgbank.own', true); cnt bigint;\n"
    "BEGIN\n"
    "  PERFORM set_config('pgbank.own', 'on', true);\n"
    "  IF TG_OP = 'UPDATE' THEN\n"
    EXTERNAL_ROWS("pgbank_new n FULL JOIN pgbank_old o ON o.id = n.id"
                  " WHERE n.balance IS DISTINCT FROM o.balance",
                  "coalesce(n.id, o.id)", "coalesce(n.balance, 0) - coalesce(o.balance, 0)",
                  "coalesce(n.balance, 0)", "coalesce(n.jseq, o.jseq)")
    "    UPDATE @S.accounts x SET jseq = s.seq FROM s WHERE x.id = s.id;\n"
    "  ELSIF TG_OP = 'INSERT' THEN\n"
    EXTERNAL_ROWS("pgbank_new n", "n.id", "n.balance", "n.balance", "NULL::bigint")
    "    UPDATE @S.accounts x SET jseq = s.seq FROM s WHERE x.id = s.id;\n"
    "  ELSIF TG_OP = 'DELETE' THEN\n"
    EXTERNAL_ROWS("pgbank_old o", "o.id", "-o.balance", "0", "o.jseq")
    "    SELECT count(*) INTO cnt FROM s;\n"
    "  ELSE\n"
    EXTERNAL_ROWS("@S.accounts x", "x.id", "-x.balance", "0", "x.jseq")
    "    SELECT count(*) INTO cnt FROM s;\n"
    "  END IF;\n"
    "  PERFORM set_config('pgbank.own', coalesce(was, ''), true);\n"
    "  RETURN NULL;\n"
    "END\n"
    "$f$";

/* One trigger per event: transition tables allow only one.  pgbank's own
 * statements (marked) skip the function call entirely. */
#define NOT_PGBANK " WHEN (pg_catalog.current_setting('pgbank.own', true) IS DISTINCT FROM 'on')"
const char *const pgbank__external_triggers[] = {
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

/* The journal one operation per row, as its readers want it: a batch's
 * row gives one entry per operation and account touched (part: 2 x the
 * operation's place + 0 for its account, 1 for a transfer's destination),
 * each entry's balance after computed back from the account's balance
 * after the batch. */
const char pgbank__journal_view[] =
    "CREATE OR REPLACE VIEW @S.pgbank_entries AS"
    " SELECT j.seq, 0::bigint AS part, j.account, j.prev, j.op, j.amount, j.balance_after,"
    "  j.strategy, j.key, j.at, j.db_role, j.application"
    " FROM @S.pgbank_journal j WHERE j.op <> 'batch'"
    " UNION ALL"
    " SELECT b.seq, b.part, b.account, b.prev, b.op, b.amount,"
    "  b.after - COALESCE(sum(b.amount) OVER (PARTITION BY b.seq, b.account ORDER BY b.part DESC"
    "   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),"
    "  b.strategy, NULL, b.at, NULL, NULL"
    " FROM (SELECT j.seq, e.part, e.account, a.prev, e.op, e.amount, a.after, j.strategy, j.at"
    "   FROM @S.pgbank_journal j"
    "   CROSS JOIN LATERAL (SELECT o.ord * 2 + s.side AS part,"
    "     CASE WHEN s.side = 0 THEN o.id ELSE o.to_id END AS account,"
    "     CASE WHEN s.side = 1 THEN 'transfer in' ELSE " JOURNAL_OP_NAME("o.k") " END AS op,"
    "     CASE WHEN o.k = 1 OR s.side = 1 THEN o.m ELSE -o.m END AS amount"
    "     FROM unnest(j.kinds, j.ids, j.to_ids, j.amounts) WITH ORDINALITY o(k, id, to_id, m, ord),"
    "     (VALUES (0), (1)) s(side) WHERE s.side = 0 OR o.k = 2) e"
    "   JOIN LATERAL unnest(j.accounts, j.prevs, j.afters) a(id, prev, after) ON a.id = e.account"
    "  WHERE j.op = 'batch') b";

const char *const pgbank__app_functions[] = {
    "pgbank_batch(smallint[], bigint[], bigint[], bigint[])",
    "pgbank_batch_one(smallint, bigint, bigint)",
    "pgbank_keyed(smallint, bigint, bigint, bigint, text)",
    NULL,
};

const pgbank__routed_function pgbank__routed_functions[] = {
    {"pgbank_batch_one(smallint, bigint, bigint)", "p_id"},
    {PGBANK__ATOMIC_ONE_SIGNATURE, "p_id"},
    {PGBANK__BATCH_ROUTE_SIGNATURE, "p_route"},
    {NULL, NULL},
};

/* Signatures of earlier schema versions, dropped on upgrade (schema 3 took
 * the balance maximum from the caller). */
const char *const pgbank__obsolete_functions[] = {
    "DROP FUNCTION IF EXISTS @S.pgbank_batch(smallint[], bigint[], bigint[], bigint[], bigint)",
    "DROP FUNCTION IF EXISTS @S.pgbank_batch_one(smallint, bigint, bigint, bigint)",
    NULL,
};
