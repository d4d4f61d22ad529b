/*
 * schema.c - the lab's schema and its control connection (see lab.h).
 *
 * A run's life: the control connection opens on the run's connection
 * string (the user's, options=-csearch_path=pgbank_<kind>_<n>); schemas of
 * that pattern whose advisory lock (LAB_LOCK_CLASS, n) anyone can take
 * belong to runs that were killed, and are dropped; the run takes its own
 * lock, creates its schema and pgbank's tables in it; at the end it drops
 * the schema.  Everything the run's engine sends lands in that schema.
 */
#include "lab.h"

#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S "10"

/* What a signal cancels: the statement running on the control connection
 * (PQcancel is safe in a signal handler).  Swapped with signals blocked. */
static PGcancel *volatile running;

void lab_cancel_running(void)
{
    PGcancel *cn = running;
    char buf[256];
    if (cn)
        PQcancel(cn, buf, sizeof buf);
}

static void set_running(PGcancel *cn)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    PGcancel *prev = running;
    running = cn;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (prev && prev != cn)
        PQfreeCancel(prev);
}

/* The control connection's notices ("schema does not exist, skipping")
 * are of no interest. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* libpq's multi-line messages as one line, without the password. */
static void one_line(const lab_schema *s, char *err, size_t errlen)
{
    size_t len = strlen(err);
    while (len && (err[len - 1] == '\n' || err[len - 1] == ' '))
        err[--len] = '\0';
    for (char *p = err; *p; p++)
        if (*p == '\n')
            *p = ' ';
    cli_scrub(s->c, err, errlen);
}

static void close_ctl(lab_schema *s)
{
    if (s->cancel == running)
        set_running(NULL); /* frees it once the handler cannot use it */
    else if (s->cancel)
        PQfreeCancel(s->cancel); /* never handed to the handler */
    s->cancel = NULL;
    PQfinish(s->ctl);
    s->ctl = NULL;
}

static int ctl_connect(lab_schema *s, char *err, size_t errlen)
{
    close_ctl(s);
    char app[80];
    snprintf(app, sizeof app, "%s-control", s->appname);
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {s->conninfo, app, CONNECT_TIMEOUT_S, NULL};
    s->ctl = PQconnectdbParams(keys, vals, 1);
    if (!s->ctl || PQstatus(s->ctl) != CONNECTION_OK) {
        snprintf(err, errlen, "%s", s->ctl ? PQerrorMessage(s->ctl) : "out of memory");
        one_line(s, err, errlen);
        return -1;
    }
    PQsetNoticeProcessor(s->ctl, quiet, NULL);
    s->cancel = PQgetCancel(s->ctl);
    if (!s->closing)
        set_running(s->cancel);
    return 0;
}

/* One statement, no reconnection.  *lost (may be NULL) is set when the
 * connection, not the statement, failed: the server's own errors carry a
 * SQLSTATE, libpq's do not (and a crash can leave the status looking OK). */
static PGresult *exec_once(lab_schema *s, const char *sql, int n, const char *const *params,
                           char *err, size_t errlen, int *lost)
{
    PGresult *r = PQexecParams(s->ctl, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(err, errlen, "%s%s%s%s", PQerrorMessage(s->ctl), ss ? " (SQLSTATE " : "",
             ss ? ss : "", ss ? ")" : "");
    one_line(s, err, errlen);
    if (lost)
        *lost = !ss || PQstatus(s->ctl) != CONNECTION_OK;
    PQclear(r);
    return NULL;
}

/* Takes the advisory lock (LAB_LOCK_CLASS, n) without waiting: 1 got it,
 * 0 someone holds it, -1 error. */
static int try_lock(lab_schema *s, int n, int unlock, char *err, size_t errlen)
{
    char cls[16], num[16];
    snprintf(cls, sizeof cls, "%d", LAB_LOCK_CLASS);
    snprintf(num, sizeof num, "%d", n);
    const char *p[2] = {cls, num};
    PGresult *r = exec_once(s,
                            unlock ? "SELECT pg_advisory_unlock($1::int, $2::int)"
                                   : "SELECT pg_try_advisory_lock($1::int, $2::int)",
                            2, p, err, errlen, NULL);
    if (!r)
        return -1;
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return got;
}

PGresult *lab_query(lab_schema *s, const char *sql, int nparams, const char *const *params,
                    char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!s->ctl || PQstatus(s->ctl) != CONNECTION_OK) {
            if (ctl_connect(s, err, errlen) != 0)
                continue;
            /* A new session: the lock went with the old one. */
            int got = s->made ? try_lock(s, s->n, 0, err, errlen) : 1;
            if (got == 0)
                snprintf(err, errlen, "another run took the lock of schema %s", s->name);
            if (got != 1)
                return NULL;
        }
        int lost = 0;
        PGresult *r = exec_once(s, sql, nparams, params, err, errlen, &lost);
        if (r || !lost)
            return r; /* done, or the statement failed, not the connection */
        close_ctl(s);
    }
    return NULL;
}

int lab_exec(lab_schema *s, const char *what, const char *sql, int nparams,
             const char *const *params, PGresult **out)
{
    char err[1024] = "";
    PGresult *r = lab_query(s, sql, nparams, params, err, sizeof err);
    if (!r && lab_interrupted())
        return lab_interrupt_exit(); /* the statement was cancelled for it */
    if (!r)
        return cli_error(s->c, CLI_EXIT_FAILURE, "could not %s: %s", what, err);
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* "DROP SCHEMA IF EXISTS name CASCADE" or "CREATE SCHEMA name".  DDL takes
 * an identifier, never a parameter: the name is quoted by libpq (and is
 * made of [a-z0-9_] anyway). */
static int schema_ddl(lab_schema *s, const char *name, int create, char *err, size_t errlen)
{
    char sql[256];
    char *q = s->ctl ? PQescapeIdentifier(s->ctl, name, strlen(name)) : NULL;
    if (!q) {
        snprintf(err, errlen, "could not quote the schema name");
        return -1;
    }
    snprintf(sql, sizeof sql, create ? "CREATE SCHEMA %s" : "DROP SCHEMA IF EXISTS %s CASCADE",
             q);
    PQfreemem(q);
    PGresult *r = lab_query(s, sql, 0, NULL, err, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

/* Drops the lab schemas of runs that were killed: nobody holds their lock. */
static void sweep(lab_schema *s)
{
    char err[512];
    PGresult *r = exec_once(s,
                            "SELECT nspname, substring(nspname from '[0-9]+$')::int"
                            " FROM pg_namespace"
                            " WHERE nspname ~ '^pgbank_(race|bench|chaos)_[0-9]{1,9}$'",
                            0, NULL, err, sizeof err, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        int n = atoi(PQgetvalue(r, i, 1));
        if (try_lock(s, n, 0, err, sizeof err) != 1)
            continue; /* a live run's */
        if (schema_ddl(s, name, 0, err, sizeof err) == 0)
            fprintf(stderr, "pgbank %s: dropped schema %s, left by a lab run that was "
                    "killed\n", s->kind, name);
        else
            cli_error(s->c, 0, "could not drop schema %s, left by a lab run that was "
                      "killed: %s", name, err);
        try_lock(s, n, 1, err, sizeof err);
    }
    PQclear(r);
}

/* The run's names and connection string for number n. */
static int name_run(lab_schema *s, int n, char *err, size_t errlen)
{
    s->n = n;
    snprintf(s->name, sizeof s->name, "pgbank_%s_%d", s->kind, n);
    snprintf(s->appname, sizeof s->appname, "pgbank-%s-%d", s->kind, n);
    free(s->conninfo);
    char *ci = pgbank_conninfo_with_schema(s->db->conninfo, s->name, err, errlen);
    s->conninfo = ci ? pgbank_conninfo_set(ci, "application_name", s->appname, err, errlen)
                     : NULL;
    free(ci);
    return s->conninfo ? 0 : -1;
}

/* The connection failed or ignored options=-csearch_path: say what the
 * lab needs, and why a pooler cannot give it. */
static int pooler_hint(lab_schema *s, const char *err)
{
    return cli_error(s->c, CLI_EXIT_FAILURE,
                     "could not open the lab's schema %s on %s: %s; the lab works in a "
                     "schema of its own, chosen when a connection opens "
                     "(options=-csearch_path=...), which a pooler in transaction mode "
                     "(PgBouncer) cannot keep: point --db at the server itself",
                     s->name, s->db->where, err);
}

/* Connects as run n; 1 when its lock was taken, 0 when n is in use. */
static int claim(lab_schema *s, int n, int first)
{
    char err[1024];
    if (name_run(s, n, err, sizeof err) != 0)
        return -cli_error(s->c, CLI_EXIT_USAGE, "invalid connection string: %s", err);
    if (ctl_connect(s, err, sizeof err) != 0) {
        if (strstr(err, "startup parameter") || s->c->unnamed_statements)
            return -pooler_hint(s, err);
        return -cli_error(s->c, CLI_EXIT_FAILURE, "could not connect to %s: %s",
                          s->db->where, err);
    }
    PGresult *r = exec_once(s, "SELECT current_setting('search_path')", 0, NULL, err,
                            sizeof err, NULL);
    int ours = r && strcmp(PQgetvalue(r, 0, 0), s->name) == 0;
    PQclear(r);
    if (!ours)
        return -pooler_hint(s, "the connection ignored options=-csearch_path");
    if (first)
        sweep(s);
    int got = try_lock(s, n, 0, err, sizeof err);
    if (got < 0)
        return -cli_error(s->c, CLI_EXIT_FAILURE, "could not take the lab's lock: %s", err);
    return got;
}

int lab_schema_open(cli *c, const cli_db *db, const char *kind, const pgbank_schema_options *opt,
                    lab_schema *s)
{
    memset(s, 0, sizeof *s);
    s->c = c;
    s->db = db;
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    /* Our pid names the run; another client's run (another machine) may
     * hold that number: then a random one. */
    uint64_t rng = pgbank__rand_seed();
    int n = (int)(getpid() & 0x7fffffff), got = 0;
    for (int tries = 0; tries < 20 && got == 0; tries++) {
        if (tries)
            n = 1 + (int)pgbank__rand_below(&rng, 999999999);
        if ((got = claim(s, n, tries == 0)) < 0)
            return -got;
    }
    if (!got)
        return cli_error(c, CLI_EXIT_FAILURE, "could not find a free name for the lab's schema");
    char err[1024] = "";
    /* A schema of our number that is not ours: its run was killed. */
    if (schema_ddl(s, s->name, 0, err, sizeof err) != 0 ||
        schema_ddl(s, s->name, 1, err, sizeof err) != 0) {
        if (lab_interrupted())
            return lab_interrupt_exit();
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the schema %s in %s: %s",
                         s->name, db->where, err);
    }
    s->made = 1;
    if (pgbank_schema_create(s->conninfo, opt, err, sizeof err) != 0) {
        cli_scrub(c, err, sizeof err);
        return cli_error(c, CLI_EXIT_FAILURE, "could not create pgbank's tables in schema %s: "
                         "%s", s->name, err);
    }
    return lab_interrupted() ? lab_interrupt_exit() : 0;
}

void lab_schema_close(lab_schema *s)
{
    /* From here a signal cancels nothing: the drop must happen. */
    s->closing = 1;
    if (s->cancel == running) {
        set_running(NULL);
        s->cancel = NULL;
    }
    if (s->made && !s->keep) {
        char err[512];
        if (schema_ddl(s, s->name, 0, err, sizeof err) != 0)
            cli_error(s->c, 0, "could not drop the schema %s: %s", s->name, err);
    }
    s->made = 0;
    close_ctl(s);
    free(s->conninfo);
    s->conninfo = NULL;
}

/* ------------------------------------------------------------------------
 * Measurements on the lab's accounts.
 * ------------------------------------------------------------------------ */

int lab_debited(lab_schema *s, int64_t opening_total, int64_t *debited, int64_t *negative)
{
    char total[32];
    snprintf(total, sizeof total, "%lld", (long long)opening_total);
    const char *p[1] = {total};
    PGresult *r;
    int rc = lab_exec(s, "read the balances",
                      "SELECT ($1::numeric - coalesce(sum(balance), 0))::bigint,"
                      " count(*) FILTER (WHERE balance < 0) FROM accounts",
                      1, p, &r);
    if (rc)
        return rc;
    *debited = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *negative = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

int lab_settle(lab_schema *s)
{
    int rc = lab_exec(s, "vacuum the accounts", "VACUUM accounts", 0, NULL, NULL);
    char err[256];
    if (rc == 0) /* needs superuser or pg_checkpoint: quietly skipped without */
        PQclear(lab_query(s, "CHECKPOINT", 0, NULL, err, sizeof err));
    return rc;
}

static int64_t commits_now(lab_schema *s)
{
    char err[256];
    PGresult *r = lab_query(s,
                            "SELECT xact_commit FROM pg_stat_database"
                            " WHERE datname = current_database()",
                            0, NULL, err, sizeof err);
    int64_t v = -1;
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

int64_t lab_commits(lab_schema *s)
{
    /* A server process reports its statistics at most once a second while
     * it runs, and at exit: wait until the count stops moving. */
    int64_t prev = commits_now(s);
    for (int i = 0; i < 30; i++) {
        pgbank__sleep_ms(100);
        int64_t v = commits_now(s);
        if (v == prev && i >= 2)
            break;
        prev = v;
    }
    return prev;
}

/* ------------------------------------------------------------------------
 * The engine.
 * ------------------------------------------------------------------------ */

void lab_engine_options(const lab_schema *s, pgbank_options *opt)
{
    cli_engine_options_for(s->c, s->conninfo, opt);
}

int lab_engine_open(lab_schema *s, const pgbank_options *opt, int timeout_ms,
                    pgbank_engine **out)
{
    int rc = cli_engine_new(s->c, opt, out);
    if (rc)
        return rc;
    rc = pgbank_engine_connect(*out);
    if (rc == 0)
        rc = pgbank_engine_wait_connected(*out, timeout_ms);
    if (rc) {
        const char *why = pgbank_engine_error(*out);
        return cli_error(s->c, CLI_EXIT_FAILURE, "could not open %d connections to %s: %s",
                         opt->connections, s->db->where, why[0] ? why : pgbank_strerror(rc));
    }
    return 0;
}
