/*
 * audit.c - reading the journal back: an account's history, and the audit
 * that checks every balance against its journal.  Blocking, on a connection
 * of its own; the audit reads in one REPEATABLE READ snapshot so the checks
 * agree, and does all its arithmetic in SQL numeric, so no sum overflows.
 * A batch's journal row holds its operations (schema 5): the audit reads
 * them one by one (ENTRIES below), history through the pgbank_entries
 * view.
 *
 * Both may run as a superuser: after finding the schema (the first of the
 * search_path, as everywhere in pgbank), the session's search_path becomes
 * pg_catalog, pg_temp and every table is qualified, so nothing planted in a
 * schema of the user's search path runs as them.
 */
#include "internal.h"
#include "sqlstate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    PGconn *pg;
    char *ci;
    char schema[130]; /* quote_ident(current_schema()) */
    char *err;
    size_t errlen;
} reader;

/* Runs a query; on failure fills err (scrubbed) and returns NULL. */
static PGresult *query(reader *d, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(d->pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (pgbank__sqlstate_is(ss, PGBANK_SQLSTATE_UNDEFINED_TABLE))
        pgbank__fail(0, d->err, d->errlen, "%s: the journal is missing, run 'pgbank init'",
                     m ? m : "undefined table");
    else
        pgbank__fail(0, d->err, d->errlen, "%s (SQLSTATE %s)", m ? m : PQerrorMessage(d->pg),
                     ss ? ss : "?");
    pgbank_conninfo_scrub(d->ci, d->err, d->errlen);
    PQclear(r);
    return NULL;
}

/* A statement with "@." replaced by the schema's qualifier. */
static PGresult *query_q(reader *d, const char *tmpl, int n, const char *const *params)
{
    char sql[4096];
    size_t o = 0;
    for (const char *t = tmpl; *t && o + sizeof d->schema + 2 < sizeof sql; t++) {
        if (t[0] == '@' && t[1] == '.') {
            o += (size_t)snprintf(sql + o, sizeof sql - o, "%s.", d->schema);
            t++;
        } else {
            sql[o++] = *t;
        }
    }
    sql[o] = '\0';
    return query(d, sql, n, params);
}

/* Connects and opens the transaction every read runs in (`begin`); the
 * search_path becomes pg_catalog, pg_temp for that transaction only (a
 * pooler in transaction mode hands the server connection on afterwards). */
static int open_reader(reader *d, const char *conninfo, const char *begin, char *err,
                       size_t errlen)
{
    int rc;
    memset(d, 0, sizeof *d);
    d->err = err;
    d->errlen = errlen;
    d->pg = pgbank__connect_blocking(conninfo, &d->ci, err, errlen, &rc);
    if (!d->pg)
        return rc;
    PGresult *r = query(d, begin, 0, NULL);
    if (!r)
        return PGBANK_EDB;
    PQclear(r);
    r = query(d,
              "SELECT pg_catalog.quote_ident(pg_catalog.current_schema()),"
              " pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)",
              0, NULL);
    if (!r)
        return PGBANK_EDB;
    if (PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return pgbank__fail(PGBANK_ESCHEMA, err, errlen,
                            "none of the search_path's schemas exists: run 'pgbank init'");
    }
    pgbank__strlcpy(d->schema, PQgetvalue(r, 0, 0), sizeof d->schema);
    PQclear(r);
    return 0;
}

static void close_reader(reader *d)
{
    PQfinish(d->pg);
    free(d->ci);
}

/* A numeric value as int64_t, clamped to its range (*clamped set then). */
static int64_t num(PGresult *r, int row, int col, int *clamped)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const char *s = PQgetvalue(r, row, col);
    int64_t v;
    if (pgbank_parse_int64(s, &v) == 0)
        return v;
    if (clamped)
        *clamped = 1;
    return s[0] == '-' ? INT64_MIN : INT64_MAX;
}

/* An account's journal, newest first: its chain walked back from the
 * account's newest row (accounts.jseq) through each row's predecessor (a
 * batch's row keeps one per account it changed), each step one primary-key
 * lookup; a batch's row gives the account's entries of that batch (the
 * pgbank_entries view).  $1 account, $2 how many entries (NULL: all). */
static const char history_sql[] =
    "WITH RECURSIVE h AS ("
    "  SELECT j.seq, CASE WHEN j.op = 'batch'"
    "   THEN j.prevs[array_position(j.accounts, $1::bigint)] ELSE j.prev END AS prev, 1 AS depth"
    "   FROM @.pgbank_journal j WHERE j.seq = (SELECT a.jseq FROM @.accounts a WHERE a.id = $1)"
    "  UNION ALL"
    "  SELECT j.seq, CASE WHEN j.op = 'batch'"
    "   THEN j.prevs[array_position(j.accounts, $1::bigint)] ELSE j.prev END, h.depth + 1"
    "   FROM @.pgbank_journal j JOIN h ON j.seq = h.prev"
    "   WHERE $2::int IS NULL OR h.depth < $2::int)"
    " SELECT e.seq, e.account, e.op, e.amount, e.balance_after, COALESCE(e.key, ''),"
    "  COALESCE(e.strategy, ''),"
    "  to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    "  COALESCE(e.db_role, ''), COALESCE(e.application, '')"
    " FROM h JOIN @.pgbank_entries e ON e.seq = h.seq AND e.account = $1"
    " ORDER BY h.depth, e.part DESC LIMIT $2::int";

/* On Citus, where a recursive CTE over a distributed table is refused, the
 * chain is walked from here, one row per round trip: by (seq, account),
 * routed to the account's shard; a batch's row, stored under the batch's
 * first account, by its number alone (every shard looks it up in its
 * primary key, which starts with seq).  Then the entries of the rows
 * found, in chain order.  $1 account, $2 a row's number. */
static const char chain_step_sql[] =
    "SELECT CASE WHEN j.op = 'batch' THEN j.prevs[array_position(j.accounts, $1::bigint)]"
    " ELSE j.prev END FROM @.pgbank_journal j WHERE j.seq = $2::bigint AND j.account = $1::bigint";
static const char chain_step_batch_sql[] =
    "SELECT j.prevs[array_position(j.accounts, $1::bigint)] FROM @.pgbank_journal j"
    " WHERE j.seq = $2::bigint AND j.op = 'batch' AND $1::bigint = ANY (j.accounts)";
/* $1 account, $2 the chain's numbers, newest first, $3 how many entries */
static const char chain_entries_sql[] =
    "SELECT e.seq, e.account, e.op, e.amount, e.balance_after, COALESCE(e.key, ''),"
    "  COALESCE(e.strategy, ''),"
    "  to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    "  COALESCE(e.db_role, ''), COALESCE(e.application, '')"
    " FROM @.pgbank_entries e WHERE e.seq = ANY ($2::bigint[]) AND e.account = $1::bigint"
    " ORDER BY array_position($2::bigint[], e.seq), e.part DESC LIMIT $3::int";

/* The chain's numbers as an array literal ("{7,5,1}"), newest first; at
 * most `limit` rows (0: all).  NULL on failure (err filled). */
static char *walk_chain(reader *d, const char *account, int limit)
{
    size_t cap = 256, len = 1;
    char *out = malloc(cap);
    if (!out) {
        pgbank__fail(0, d->err, d->errlen, "out of memory");
        return NULL;
    }
    out[0] = '{';
    const char *p[2] = {account, NULL};
    PGresult *r = query_q(d, "SELECT jseq FROM @.accounts WHERE id = $1::bigint", 1, p);
    char seq[24] = "";
    if (r && PQntuples(r) && !PQgetisnull(r, 0, 0))
        pgbank__strlcpy(seq, PQgetvalue(r, 0, 0), sizeof seq);
    int ok = r != NULL;
    PQclear(r);
    for (int n = 0; ok && seq[0] && (limit <= 0 || n < limit); n++) {
        if (len + sizeof seq + 2 > cap) {
            char *bigger = realloc(out, cap *= 2);
            if (!bigger) {
                ok = 0;
                pgbank__fail(0, d->err, d->errlen, "out of memory");
                break;
            }
            out = bigger;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", n ? "," : "", seq);
        p[1] = seq;
        r = query_q(d, chain_step_sql, 2, p);
        if (r && PQntuples(r) == 0) {
            PQclear(r);
            r = query_q(d, chain_step_batch_sql, 2, p);
        }
        ok = r != NULL;
        if (ok && PQntuples(r) && !PQgetisnull(r, 0, 0))
            pgbank__strlcpy(seq, PQgetvalue(r, 0, 0), sizeof seq);
        else
            seq[0] = '\0';
        PQclear(r);
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

PGBANK__API int pgbank_history(const char *conninfo, int64_t account, int limit,
                               pgbank_history_fn fn, void *arg, char *err, size_t errlen)
{
    reader d;
    int rc = open_reader(&d, conninfo, "BEGIN READ ONLY", err, errlen);
    char a[24], l[24];
    snprintf(a, sizeof a, "%lld", (long long)account);
    snprintf(l, sizeof l, "%d", limit > 0 ? limit : 0);
    const char *p[2] = {a, limit > 0 ? l : NULL};
    PGresult *r = NULL;
    if (rc == 0 && !(r = query_q(&d,
                                 "SELECT EXISTS (SELECT 1 FROM @.accounts WHERE id = $1),"
                                 " to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL",
                                 1, p)))
        rc = PGBANK_EDB;
    if (rc == 0 && PQgetvalue(r, 0, 0)[0] != 't') {
        rc = pgbank__fail(PGBANK_ENOTFOUND, err, errlen, "account %lld does not exist",
                          (long long)account);
    }
    int citus = rc == 0 && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    r = NULL;
    if (rc == 0 && citus) {
        char *chain = walk_chain(&d, a, limit);
        const char *q[3] = {a, chain, p[1]};
        if (!chain || !(r = query_q(&d, chain_entries_sql, 3, q)))
            rc = PGBANK_EDB;
        free(chain);
    } else if (rc == 0 && !(r = query_q(&d, history_sql, 2, p))) {
        rc = PGBANK_EDB;
    }
    for (int i = 0; r && i < PQntuples(r); i++) {
        pgbank_journal_entry e = {num(r, i, 0, NULL), num(r, i, 1, NULL), PQgetvalue(r, i, 2),
                                  num(r, i, 3, NULL), num(r, i, 4, NULL), PQgetvalue(r, i, 5),
                                  PQgetvalue(r, i, 6), PQgetvalue(r, i, 7), PQgetvalue(r, i, 8),
                                  PQgetvalue(r, i, 9)};
        fn(arg, &e);
    }
    PQclear(r);
    close_reader(&d);
    return rc;
}

/* Every balance change the journal records, one row each (account,
 * signed amount, op): single rows as they are, a batch's operations
 * unnested (each transfer twice, out and in). */
#define ENTRIES                                                                                    \
    "e AS (SELECT account, amount, op FROM @.pgbank_journal WHERE op <> 'batch'"                  \
    " UNION ALL SELECT o.id, CASE WHEN o.k = 1 THEN o.m ELSE -o.m END, 'batch'"                  \
    "  FROM @.pgbank_journal j CROSS JOIN LATERAL unnest(j.kinds, j.ids, j.amounts) o(k, id, m)"  \
    "  WHERE j.op = 'batch'"                                                                       \
    " UNION ALL SELECT o.t, o.m, 'batch'"                                                          \
    "  FROM @.pgbank_journal j CROSS JOIN LATERAL unnest(j.kinds, j.to_ids, j.amounts) o(k, t, m)" \
    "  WHERE j.op = 'batch' AND o.k = 2)"

/* The totals, one row: accounts, total balance, negative balances, opening
 * total, money in, money out, external changes and their net, and whether
 * total = opening + in - out + external (numeric: exact). */
static const char totals_sql[] =
    "WITH a AS (SELECT count(*) AS n, COALESCE(sum(balance), 0) AS total,"
    "                  count(*) FILTER (WHERE balance < 0) AS neg FROM @.accounts),"
    " " ENTRIES ","
    " j AS (SELECT COALESCE(sum(amount) FILTER (WHERE op = 'open'), 0) AS opening,"
    "              COALESCE(sum(amount) FILTER (WHERE op NOT IN ('open', 'external')"
    "                                             AND amount > 0), 0) AS money_in,"
    "              COALESCE(-sum(amount) FILTER (WHERE op NOT IN ('open', 'external')"
    "                                              AND amount < 0), 0) AS money_out,"
    "              count(*) FILTER (WHERE op = 'external') AS ext,"
    "              COALESCE(sum(amount) FILTER (WHERE op = 'external'), 0) AS ext_net"
    "         FROM e)"
    " SELECT a.n, a.total, a.neg, j.opening, j.money_in, j.money_out, j.ext, j.ext_net,"
    "        a.total = j.opening + j.money_in - j.money_out + j.ext_net,"
    "        (SELECT string_agg(format('%s (%s) x %s', s.r, s.app, s.n), ', ' ORDER BY s.n DESC)"
    "           FROM (SELECT COALESCE(db_role, '?') AS r,"
    "                        COALESCE(NULLIF(application, ''), 'no application name') AS app,"
    "                        count(*) AS n FROM @.pgbank_journal WHERE op = 'external'"
    "                  GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5) s)"
    " FROM a, j";

/* Every account whose balance differs from its journal, or is negative. */
#define PER_ACCOUNT                                                                                \
    "WITH " ENTRIES ", j AS (SELECT account, sum(amount) AS net FROM e GROUP BY account),"       \
    " p AS (SELECT COALESCE(a.id, j.account) AS id, COALESCE(a.balance, 0) AS bal,"              \
    "              COALESCE(j.net, 0) AS net"                                                      \
    "         FROM @.accounts a FULL JOIN j ON j.account = a.id"                                  \
    "        WHERE COALESCE(a.balance, 0) <> COALESCE(j.net, 0) OR COALESCE(a.balance, 0) < 0)"

static const char problems_sql[] = PER_ACCOUNT " SELECT id, bal, net FROM p ORDER BY id";

static const char mismatch_sql[] =
    PER_ACCOUNT " SELECT count(*) FILTER (WHERE bal <> net),"
                " COALESCE(sum(bal - net) FILTER (WHERE bal > net), 0),"
                " COALESCE(sum(net - bal) FILTER (WHERE net > bal), 0) FROM p";

PGBANK__API int pgbank_audit(const char *conninfo, pgbank_audit_report *rep,
                             pgbank_audit_fn on_problem, void *arg, char *err, size_t errlen)
{
    reader d;
    memset(rep, 0, sizeof *rep);
    int rc = open_reader(&d, conninfo, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
                         errlen);
    if (rc != 0) {
        close_reader(&d);
        return rc;
    }
    PGresult *t = NULL, *m = NULL, *bad = NULL;
    if ((t = query_q(&d, totals_sql, 0, NULL)) && (m = query_q(&d, mismatch_sql, 0, NULL)) &&
        (bad = query_q(&d, problems_sql, 0, NULL))) {
        int *cl = &rep->clamped;
        rep->accounts = num(t, 0, 0, cl);
        rep->total_balance = num(t, 0, 1, cl);
        rep->negative = num(t, 0, 2, cl);
        rep->opening_total = num(t, 0, 3, cl);
        rep->deposits = num(t, 0, 4, cl);
        rep->withdrawals = num(t, 0, 5, cl);
        rep->external = num(t, 0, 6, cl);
        rep->external_net = num(t, 0, 7, cl);
        int totals_agree = PQgetvalue(t, 0, 8)[0] == 't';
        pgbank__strlcpy(rep->external_by, PQgetvalue(t, 0, 9), sizeof rep->external_by);
        rep->mismatched = num(m, 0, 0, cl);
        rep->money_lost = num(m, 0, 1, cl);
        rep->money_created = num(m, 0, 2, cl);
        for (int i = 0; on_problem && i < PQntuples(bad); i++)
            on_problem(arg, num(bad, i, 0, NULL), num(bad, i, 1, NULL), num(bad, i, 2, NULL));
        rc = rep->mismatched == 0 && rep->negative == 0 && totals_agree ? 1 : 0;
    } else {
        rc = PGBANK_EDB;
    }
    PQclear(t);
    PQclear(m);
    PQclear(bad);
    close_reader(&d);
    return rc;
}
