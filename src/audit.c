/*
 * audit.c - reading the journal back: an account's history, and the audit
 * that checks every balance against its journal.  Blocking, on a connection
 * of its own, in one REPEATABLE READ snapshot so the checks agree.
 */
#include "internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs a query; on failure fills err (scrubbed) and returns NULL. */
static PGresult *query(PGconn *pg, const char *ci, const char *sql, int n,
                       const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (ss && (strcmp(ss, "42P01") == 0))
        pgbank__fail(0, err, errlen, "%s: the journal is missing, run 'pgbank init'",
                     m ? m : "undefined table");
    else
        pgbank__fail(0, err, errlen, "%s (SQLSTATE %s)", m ? m : PQerrorMessage(pg),
                     ss ? ss : "?");
    pgbank_conninfo_scrub(ci, err, errlen);
    PQclear(r);
    return NULL;
}

static int64_t i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

PGBANK__API int pgbank_history(const char *conninfo, int64_t account, int limit,
                               pgbank_history_fn fn, void *arg, char *err, size_t errlen)
{
    char *ci;
    int rc;
    PGconn *pg = pgbank__connect_blocking(conninfo, &ci, err, errlen, &rc);
    if (!pg) {
        free(ci);
        return rc;
    }
    char a[24], l[24];
    snprintf(a, sizeof a, "%lld", (long long)account);
    snprintf(l, sizeof l, "%d", limit > 0 ? limit : 0);
    const char *p[2] = {a, limit > 0 ? l : NULL};
    PGresult *r = query(pg, ci, "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)", 1, p,
                        err, errlen);
    if (!r) {
        rc = PGBANK_EDB;
    } else if (PQgetvalue(r, 0, 0)[0] != 't') {
        rc = pgbank__fail(PGBANK_ENOTFOUND, err, errlen, "account %lld does not exist",
                          (long long)account);
        PQclear(r);
        r = NULL;
    } else {
        PQclear(r);
        r = query(pg, ci,
                  "SELECT seq, account, op, amount, balance_after, COALESCE(key, ''),"
                  " COALESCE(strategy, ''),"
                  " to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                  " FROM pgbank_journal WHERE account = $1 ORDER BY seq DESC LIMIT $2",
                  2, p, err, errlen);
        if (!r)
            rc = PGBANK_EDB;
    }
    for (int i = 0; r && i < PQntuples(r); i++) {
        pgbank_journal_entry e = {i64(r, i, 0), i64(r, i, 1), PQgetvalue(r, i, 2), i64(r, i, 3),
                                  i64(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6),
                                  PQgetvalue(r, i, 7)};
        fn(arg, &e);
    }
    PQclear(r);
    PQfinish(pg);
    free(ci);
    return rc;
}

PGBANK__API int pgbank_audit(const char *conninfo, pgbank_audit_report *rep,
                             pgbank_audit_fn on_problem, void *arg, char *err, size_t errlen)
{
    char *ci;
    int rc;
    memset(rep, 0, sizeof *rep);
    PGconn *pg = pgbank__connect_blocking(conninfo, &ci, err, errlen, &rc);
    if (!pg) {
        free(ci);
        return rc;
    }
    PGresult *t = NULL, *j = NULL, *bad = NULL;
    PGresult *b = query(pg, ci, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err,
                        errlen);
    int begun = b != NULL;
    PQclear(b);
    if (begun &&
        (t = query(pg, ci,
                   "SELECT count(*), COALESCE(sum(balance), 0),"
                   " count(*) FILTER (WHERE balance < 0) FROM accounts",
                   0, NULL, err, errlen)) &&
        (j = query(pg, ci,
                   "SELECT COALESCE(sum(amount) FILTER (WHERE op = 'open'), 0),"
                   " COALESCE(sum(amount) FILTER (WHERE op <> 'open' AND amount > 0), 0),"
                   " COALESCE(-sum(amount) FILTER (WHERE op <> 'open' AND amount < 0), 0)"
                   " FROM pgbank_journal",
                   0, NULL, err, errlen)) &&
        (bad = query(pg, ci,
                     "WITH j AS (SELECT account, sum(amount) AS net FROM pgbank_journal"
                     "           GROUP BY account)"
                     " SELECT COALESCE(a.id, j.account), COALESCE(a.balance, 0),"
                     "        COALESCE(j.net, 0)"
                     " FROM accounts a FULL JOIN j ON j.account = a.id"
                     " WHERE COALESCE(a.balance, 0) <> COALESCE(j.net, 0)"
                     "    OR COALESCE(a.balance, 0) < 0"
                     " ORDER BY 1",
                     0, NULL, err, errlen))) {
        rep->accounts = i64(t, 0, 0);
        rep->total_balance = i64(t, 0, 1);
        rep->negative = i64(t, 0, 2);
        rep->opening_total = i64(j, 0, 0);
        rep->deposits = i64(j, 0, 1);
        rep->withdrawals = i64(j, 0, 2);
        for (int i = 0; i < PQntuples(bad); i++) {
            int64_t id = i64(bad, i, 0), bal = i64(bad, i, 1), want = i64(bad, i, 2);
            if (bal != want) {
                rep->mismatched++;
                if (bal > want)
                    rep->money_lost += bal - want;
                else
                    rep->money_created += want - bal;
            }
            if (on_problem)
                on_problem(arg, id, bal, want);
        }
        int holds = rep->mismatched == 0 && rep->negative == 0 &&
                    rep->total_balance ==
                        rep->opening_total + rep->deposits - rep->withdrawals;
        rc = holds ? 1 : 0;
    } else {
        rc = PGBANK_EDB;
    }
    PQclear(t);
    PQclear(j);
    PQclear(bad);
    PQfinish(pg);
    free(ci);
    return rc;
}
