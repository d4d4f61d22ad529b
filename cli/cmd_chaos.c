/*
 * cmd_chaos.c - `pgbank chaos`: a bank test in the spirit of Jepsen's.
 *
 * C clients (one engine, one connection each, C operations in flight) run
 * keyed withdrawals, deposits and transfers with every safe strategy that
 * takes keys (for-update, atomic, serializable) on N fresh accounts, while
 * faults are injected at random intervals:
 *   terminate  every backend of the run's engine is killed with
 *              pg_terminate_backend() from a separate plain connection;
 *   crash      (private server only) the postmaster gets SIGQUIT, which is
 *              what `pg_ctl stop -m immediate` sends, and is started again
 *              by a child process while the clients keep going.
 * The client side of exactly-once: an operation that ends in "unknown
 * outcome", "database error" or "retries exhausted" is resubmitted with the
 * same key and the same parameters, after a short jittered backoff, until
 * it gets a definite answer (ok, insufficient funds; no such account and
 * conflict would be bugs here).  Each key is one operation in the model,
 * however many times it was sent and whether its ok was a replay.
 *
 * With --unkeyed the operations carry no key (and batch joins the
 * strategies), and the other half of the promise is tested: an "unknown outcome" is final (an operation without a
 * key is never re-sent: it may have been applied), while a "database
 * error" means nothing was applied, so the client may send it again.
 * Every unkeyed operation moves a distinct amount (its number + 1), which
 * makes the journal a ledger of operations: each one must be found there
 * once if acknowledged, never if refused or failed, and at most once if
 * its outcome is unknown (and then the model takes what the journal says).
 *
 * At the deadline nothing new is submitted and the faults stop; operations
 * still unanswered are driven to an answer within the drain timeout.  Then
 * the database is compared with the model: every operation's journal rows
 * (applied exactly once, and only when acknowledged), every balance, and
 * the audit.  The run lives in a schema of its own (pgbank_chaos_<pid>, through
 * options=-csearch_path), so other accounts in the database can neither
 * spoil nor be spoiled by it; the schema is dropped unless --keep.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OPENING_BALANCE 10000 /* per account, in minor units */
/* Unkeyed amounts grow with the operation's number: room for millions. */
#define OPENING_BALANCE_UNKEYED 1000000000000LL
#define MAX_AMOUNT 1000       /* amounts are 1..MAX_AMOUNT */
#define MAX_CLIENTS 256
#define MAX_ACCOUNTS 10000
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 500
/* How long a crashed server may take to exit, and a restart to finish. */
#define CRASH_EXIT_LIMIT_NS ((int64_t)30 * 1000000000)
#define RESTART_TRIES 3

enum { FAULT_TERMINATE = 1, FAULT_CRASH = 2 };

typedef struct chaos_settings {
    int64_t duration_ns;
    int64_t drain_ns;
    const char *duration_arg;
    int clients;
    int accounts;
    uint64_t seed;
    int faults; /* FAULT_* bits */
    int faults_given;
    int keep;
    int unkeyed;
} chaos_settings;

/* One logical operation (one key): its kind and how it ended. */
typedef struct chaos_rec {
    unsigned char kind;
    unsigned char answered; /* 1 + pgbank_status once definite, else 0 */
    unsigned char journal;  /* journal rows carrying its key (amount) */
    int from, to;           /* account indexes */
    int64_t amount;
} chaos_rec;

enum { CL_IDLE, CL_FLIGHT, CL_WAIT };

typedef struct chaos chaos;

typedef struct chaos_client {
    pgbank_op op;
    chaos *ch;
    char key[32];
    int64_t idx; /* the logical operation, -1 before the first */
    int from, to; /* account indexes */
    int state;
    int unknowns; /* unknown outcomes this operation has met */
    int backoff_ms;
    int64_t wake_ns;
} chaos_client;

enum { CRASH_NONE, CRASH_EXITING, CRASH_RESTARTING };

struct chaos {
    cli *c;
    const chaos_settings *set;
    cli_db db;
    char schema[64];
    char appname[64];
    char *ci;      /* the run's conninfo: its schema, its application_name */
    PGconn *ctl;   /* plain blocking connection: setup, faults, checks */
    int schema_made;
    pgbank_engine *eng;
    int64_t *ids;   /* account ids, ascending */
    int64_t *model; /* the balance each account should hold */
    chaos_client *clients;
    chaos_rec *recs;
    size_t nrecs, caprecs;
    uint64_t rng;
    int draining, closing, nomem, tty;
    char fatal[512];
    int64_t start_ns, deadline_ns, end_ns;
    /* Answers. */
    int64_t ok, refused, no_account, conflicts, invalid, replayed;
    int64_t unknown, unknown_resolved, unknown_ops, db_errors, exhausted, retried;
    char last_transient[300];
    /* Faults. */
    int faults; /* FAULT_* bits this database allows */
    int fault_seq;
    int64_t next_fault_ns;
    int64_t faults_terminate, faults_crash, backends_killed, fault_failures;
    int64_t downtime_ns;
    char fault_error[300];
    int crash_state, restart_tries;
    pid_t restart_pid;
    int64_t crash_t0;
    /* Verdict. */
    int64_t money_lost, money_created, negative, without_result;
    int64_t applied_not_acked, acked_not_applied, applied_twice, torn, stray_rows;
    int64_t unknown_applied;
    int audit_holds;
    pgbank_audit_report audit;
    int64_t progress_ns;
};

/* Ctrl-C (or SIGTERM) ends the load early: the run drains and is checked
 * as if its time were up, and its schema is dropped.  A second one kills. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* splitmix64: reproducible operation choices for a given --seed. */
static uint64_t rnd(chaos *ch)
{
    uint64_t z = (ch->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rnd_range(chaos *ch, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(ch) % (uint64_t)(hi - lo + 1));
}

/* snprintf that may truncate (messages), without the compiler's worry. */
static void say(char *dst, size_t n, const char *fmt, ...) CLI_PRINTF(3, 4);
static void say(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------
 * Clients: a closed loop each; a transient answer resubmits the same op.
 * ------------------------------------------------------------------------ */

static void client_submit(chaos *ch, chaos_client *cl)
{
    cl->state = CL_FLIGHT;
    int rc = pgbank_submit(ch->eng, &cl->op);
    if (rc != 0) { /* the callback will never run: nothing more to learn */
        say(ch->fatal, sizeof ch->fatal, "the engine refused an operation: %s",
            pgbank_strerror(rc));
        cl->state = CL_IDLE;
    }
}

static int new_rec(chaos *ch, int64_t *idx)
{
    if (ch->nrecs == ch->caprecs) {
        size_t cap = ch->caprecs ? ch->caprecs * 2 : 4096;
        chaos_rec *r = realloc(ch->recs, cap * sizeof *r);
        if (!r) {
            ch->nomem = 1;
            return -1;
        }
        ch->recs = r;
        ch->caprecs = cap;
    }
    *idx = (int64_t)ch->nrecs++;
    memset(&ch->recs[*idx], 0, sizeof ch->recs[*idx]);
    return 0;
}

/* A new logical operation with a key of its own. */
static void client_start(chaos *ch, chaos_client *cl)
{
    /* Every safe strategy; batch carries no keys, so only unkeyed. */
    static const pgbank_strategy safe[] = {PGBANK_FOR_UPDATE, PGBANK_ATOMIC,
                                           PGBANK_SERIALIZABLE, PGBANK_BATCH};
    static const pgbank_op_kind kinds[] = {PGBANK_OP_WITHDRAW, PGBANK_OP_DEPOSIT,
                                           PGBANK_OP_TRANSFER};
    if (new_rec(ch, &cl->idx) != 0) {
        cl->state = CL_IDLE;
        return;
    }
    pgbank_op_kind kind = kinds[rnd(ch) % 3];
    chaos_rec *rec = &ch->recs[cl->idx];
    rec->kind = (unsigned char)kind;
    pgbank_op_init(&cl->op, kind);
    cl->op.strategy = safe[rnd(ch) % (ch->set->unkeyed ? 4 : 3)];
    cl->from = (int)rnd_range(ch, 0, ch->set->accounts - 1);
    cl->to = (int)rnd_range(ch, 0, ch->set->accounts - 2);
    if (cl->to >= cl->from)
        cl->to++;
    cl->op.account = ch->ids[cl->from];
    cl->op.to_account = kind == PGBANK_OP_TRANSFER ? ch->ids[cl->to] : 0;
    if (ch->set->unkeyed) {
        cl->op.amount = cl->idx + 1; /* unique: the journal names the op */
        cl->op.key = NULL;
    } else {
        cl->op.amount = rnd_range(ch, 1, MAX_AMOUNT);
        snprintf(cl->key, sizeof cl->key, "chaos-%lld", (long long)cl->idx);
        cl->op.key = cl->key;
    }
    rec->from = cl->from;
    rec->to = cl->to;
    rec->amount = cl->op.amount;
    cl->op.done = NULL; /* set below: the callback is defined after us */
    cl->unknowns = 0;
    cl->backoff_ms = 0;
}

static void chaos_done(pgbank_op *op);

static void client_next(chaos *ch, chaos_client *cl)
{
    if (ch->draining || ch->nomem || ch->fatal[0]) {
        cl->state = CL_IDLE;
        return;
    }
    client_start(ch, cl);
    if (ch->nomem)
        return;
    cl->op.done = chaos_done;
    cl->op.user_data = cl;
    client_submit(ch, cl);
}

/* What an applied operation does to the model. */
static void model_apply(chaos *ch, const chaos_rec *rec)
{
    if (rec->kind == PGBANK_OP_DEPOSIT) {
        ch->model[rec->from] += rec->amount;
    } else {
        ch->model[rec->from] -= rec->amount;
        if (rec->kind == PGBANK_OP_TRANSFER)
            ch->model[rec->to] += rec->amount;
    }
}

/* A definite answer: the model learns it, once per key. */
static void client_answered(chaos *ch, chaos_client *cl, pgbank_status st)
{
    chaos_rec *rec = &ch->recs[cl->idx];
    rec->answered = (unsigned char)(1 + st);
    /* Every unknown outcome this operation met is settled by this answer to
     * its key.  A crash right after a restart can find the operation in
     * flight again and give it a second one: they are counted one by one,
     * as `unknown` counts them. */
    ch->unknown_resolved += cl->unknowns;
    switch (st) {
    case PGBANK_OK:
        ch->ok++;
        ch->replayed += cl->op.result.replayed != 0;
        model_apply(ch, rec);
        break;
    case PGBANK_INSUFFICIENT_FUNDS: ch->refused++; break;
    case PGBANK_NO_SUCH_ACCOUNT: ch->no_account++; break;
    case PGBANK_CONFLICT: ch->conflicts++; break;
    default: ch->invalid++; break;
    }
}

static void chaos_done(pgbank_op *op)
{
    chaos_client *cl = op->user_data;
    chaos *ch = cl->ch;
    if (ch->closing) { /* the engine is being freed: no answer */
        cl->state = CL_IDLE;
        return;
    }
    pgbank_status st = op->result.status;
    switch (st) {
    case PGBANK_OK:
    case PGBANK_INSUFFICIENT_FUNDS:
    case PGBANK_NO_SUCH_ACCOUNT:
    case PGBANK_CONFLICT:
    case PGBANK_INVALID_AMOUNT:
    case PGBANK_INVALID_INPUT:
        client_answered(ch, cl, st);
        client_next(ch, cl);
        return;
    case PGBANK_UNKNOWN_OUTCOME:
        ch->unknown++;
        ch->unknown_ops += cl->unknowns++ == 0;
        if (ch->set->unkeyed) { /* final: without a key it is never re-sent */
            ch->recs[cl->idx].answered = (unsigned char)(1 + st);
            client_next(ch, cl);
            return;
        }
        break;
    case PGBANK_RETRIES_EXHAUSTED:
        ch->exhausted++;
        break;
    default: /* database error, shut down */
        ch->db_errors++;
        break;
    }
    snprintf(ch->last_transient, sizeof ch->last_transient, "%s%s%s%s%s",
             pgbank_status_name(st), op->result.sqlstate[0] ? " " : "",
             op->result.sqlstate, op->result.message[0] ? ": " : "",
             op->result.message);
    /* Same key, same parameters, after a jittered backoff. */
    int b = cl->backoff_ms ? cl->backoff_ms * 2 : BACKOFF_MIN_MS;
    cl->backoff_ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
    cl->state = CL_WAIT;
    cl->wake_ns = now_ns() + (int64_t)rnd_range(ch, cl->backoff_ms / 2, cl->backoff_ms) *
                                 1000000;
}

/* Resubmits the clients whose backoff is over; returns the next wake-up. */
static int64_t clients_wake(chaos *ch, int64_t now, int *active)
{
    int64_t next = 0;
    *active = 0;
    for (int i = 0; i < ch->set->clients; i++) {
        chaos_client *cl = &ch->clients[i];
        if (cl->state == CL_WAIT && cl->wake_ns <= now) {
            ch->retried++;
            client_submit(ch, cl);
        }
        if (cl->state != CL_IDLE)
            (*active)++;
        if (cl->state == CL_WAIT && (!next || cl->wake_ns < next))
            next = cl->wake_ns;
    }
    return next;
}

/* ------------------------------------------------------------------------
 * The control connection (plain, blocking).
 * ------------------------------------------------------------------------ */

/* The control connection's notices ("schema does not exist, skipping")
 * are of no interest. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs sql on the control connection, reconnecting once if it died (a
 * crash leaves it looking healthy until it is used).  Returns the result
 * (PQclear it) or NULL with the reason in err. */
static PGresult *ctl_exec(chaos *ch, const char *sql, int n, const char *const *params,
                          char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ch->ctl || PQstatus(ch->ctl) != CONNECTION_OK) {
            PQfinish(ch->ctl);
            const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
            char app[80];
            snprintf(app, sizeof app, "%s-control", ch->appname);
            const char *vals[] = {ch->ci, app, "10", NULL};
            ch->ctl = PQconnectdbParams(keys, vals, 1);
            if (!ch->ctl || PQstatus(ch->ctl) != CONNECTION_OK) {
                snprintf(err, errlen, "%s",
                         ch->ctl ? PQerrorMessage(ch->ctl) : "out of memory");
                continue;
            }
            PQsetNoticeProcessor(ch->ctl, quiet, NULL);
        }
        PGresult *r = PQexecParams(ch->ctl, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            return r;
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(err, errlen, "%s%s%s%s", PQerrorMessage(ch->ctl), ss ? "(SQLSTATE " : "",
                 ss ? ss : "", ss ? ")" : "");
        PQclear(r);
        if (ss && PQstatus(ch->ctl) == CONNECTION_OK)
            break; /* the statement failed, not the connection */
        PQfinish(ch->ctl); /* no SQLSTATE: the connection failed */
        ch->ctl = NULL;
    }
    size_t len = strlen(err);
    while (len && (err[len - 1] == '\n' || err[len - 1] == ' '))
        err[--len] = '\0';
    for (char *p = err; *p; p++)
        if (*p == '\n')
            *p = ' ';
    cli_scrub(ch->c, err, errlen);
    return NULL;
}

/* The schema's name, quoted as an SQL identifier, in out. */
static int quoted_schema(chaos *ch, char *out, size_t len)
{
    char *q = PQescapeIdentifier(ch->ctl, ch->schema, strlen(ch->schema));
    if (!q)
        return -1;
    snprintf(out, len, "%s", q);
    PQfreemem(q);
    return 0;
}

/* DDL takes an identifier, never a parameter: the name is quoted by libpq
 * (and is made of [a-z0-9_] anyway). */
static int ctl_schema_ddl(chaos *ch, const char *verb, const char *tail, char *err,
                          size_t errlen)
{
    char q[160], sql[256];
    PGresult *r = ctl_exec(ch, "SELECT 1", 0, NULL, err, errlen); /* connects */
    if (!r)
        return -1;
    PQclear(r);
    if (quoted_schema(ch, q, sizeof q) != 0) {
        snprintf(err, errlen, "could not quote the schema name");
        return -1;
    }
    snprintf(sql, sizeof sql, "%s %s%s", verb, q, tail);
    r = ctl_exec(ch, sql, 0, NULL, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------------------
 * The run's connection string: the user's, plus its schema and name.
 * ------------------------------------------------------------------------ */

static int buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 256) + n;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* key='value' with libpq's quoting (\' and \\). */
static int add_param(char **buf, size_t *len, size_t *cap, const char *key, const char *pre,
                     const char *val)
{
    if ((*len && buf_add(buf, len, cap, " ", 1) != 0) ||
        buf_add(buf, len, cap, key, strlen(key)) != 0 || buf_add(buf, len, cap, "='", 2) != 0)
        return -1;
    for (int part = 0; part < 2; part++) {
        for (const char *p = part ? val : pre; p && *p; p++) {
            if ((*p == '\'' || *p == '\\') && buf_add(buf, len, cap, "\\", 1) != 0)
                return -1;
            if (buf_add(buf, len, cap, p, 1) != 0)
                return -1;
        }
    }
    return buf_add(buf, len, cap, "'", 1);
}

static char *run_conninfo(chaos *ch, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(ch->db.conninfo, &perr);
    if (!opts) {
        snprintf(err, errlen, "%s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    char *buf = NULL, search[160];
    size_t len = 0, cap = 0;
    const char *old_options = NULL;
    int bad = buf_add(&buf, &len, &cap, "", 0);
    for (PQconninfoOption *o = opts; !bad && o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "options") == 0) {
            old_options = o->val;
            continue;
        }
        if (strcmp(o->keyword, "application_name") == 0 ||
            strcmp(o->keyword, "fallback_application_name") == 0)
            continue;
        bad = add_param(&buf, &len, &cap, o->keyword, NULL, o->val);
    }
    snprintf(search, sizeof search, "%s-csearch_path=%s",
             old_options && *old_options ? " " : "", ch->schema);
    if (!bad)
        bad = add_param(&buf, &len, &cap, "options", old_options, search);
    if (!bad)
        bad = add_param(&buf, &len, &cap, "application_name", NULL, ch->appname);
    PQconninfoFree(opts);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------------------
 * Setup: schema, engine, accounts.
 * ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int chaos_open_accounts(chaos *ch)
{
    int n = ch->set->accounts;
    for (int i = 0; i < n; i++) {
        pgbank_op op;
        pgbank_op_init(&op, PGBANK_OP_OPEN);
        op.amount = ch->set->unkeyed ? OPENING_BALANCE_UNKEYED : OPENING_BALANCE;
        int rc = pgbank_execute(ch->eng, &op);
        if (rc != 0)
            return cli_error(ch->c, CLI_EXIT_FAILURE, "could not open the accounts: %s",
                             pgbank_strerror(rc));
        if (op.result.status != PGBANK_OK) {
            cli_error(ch->c, 0, "could not open the run's accounts:");
            cli_report_failure(ch->c, &op);
            return CLI_EXIT_FAILURE;
        }
        ch->ids[i] = op.result.account;
        ch->model[i] = op.amount;
    }
    /* Opened in order, but sorted anyway: account_index() searches. */
    qsort(ch->ids, (size_t)n, sizeof *ch->ids, cmp_i64);
    return 0;
}

static int chaos_setup(chaos *ch)
{
    cli *c = ch->c;
    char err[1024];
    int rc = cli_db_resolve(c, &ch->db, 0);
    if (rc)
        return rc;
    ch->faults = ch->set->faults;
    if ((ch->faults & FAULT_CRASH) && !ch->db.embedded) {
        if (ch->set->faults_given)
            return cli_usage_error(c, "--faults crash needs the private server (no --db, "
                                      "DATABASE_URL or PG* variables): only its data "
                                      "directory tells where the postmaster is");
        ch->faults &= ~FAULT_CRASH; /* by default: what the database allows */
    }
    snprintf(ch->schema, sizeof ch->schema, "pgbank_chaos_%ld", (long)getpid());
    snprintf(ch->appname, sizeof ch->appname, "pgbank-chaos-%ld", (long)getpid());
    if (!(ch->ci = run_conninfo(ch, err, sizeof err)))
        return cli_error(c, CLI_EXIT_USAGE, "invalid connection string: %s", err);
    if (ctl_schema_ddl(ch, "DROP SCHEMA IF EXISTS", " CASCADE", err, sizeof err) != 0 ||
        ctl_schema_ddl(ch, "CREATE SCHEMA", "", err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the schema %s in %s: %s",
                         ch->schema, ch->db.where, err);
    ch->schema_made = 1;
    err[0] = '\0';
    if (pgbank_schema_init(ch->ci, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create pgbank's tables in schema "
                         "%s: %s", ch->schema, err);
    pgbank_options opt;
    cli_engine_options_for(c, ch->ci, &opt); /* --echo, --unnamed-statements */
    opt.connections = ch->set->clients;
    opt.connect_timeout_ms = 5000;
    opt.retry_max = 100;
    opt.retry_budget_ms = 20000;
    err[0] = '\0';
    if ((rc = pgbank_engine_new(&ch->eng, &opt, err, sizeof err)) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the engine: %s",
                         err[0] ? err : pgbank_strerror(rc));
    rc = pgbank_engine_wait_connected(ch->eng, 30000);
    if (rc) {
        const char *why = pgbank_engine_error(ch->eng);
        return cli_error(c, CLI_EXIT_FAILURE, "could not open %d connections to %s: %s",
                         opt.connections, ch->db.where, why[0] ? why : pgbank_strerror(rc));
    }
    return chaos_open_accounts(ch);
}

/* ------------------------------------------------------------------------
 * Faults.
 * ------------------------------------------------------------------------ */

static void fault_failed(chaos *ch, const char *what, const char *why)
{
    ch->fault_failures++;
    say(ch->fault_error, sizeof ch->fault_error, "%s: %s", what, why);
}

static void fault_terminate(chaos *ch)
{
    char err[512];
    const char *p[1] = {ch->appname};
    PGresult *r = ctl_exec(ch,
                           "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                           " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                           1, p, err, sizeof err);
    if (!r) {
        fault_failed(ch, "terminate", err);
        return;
    }
    ch->faults_terminate++;
    ch->backends_killed += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
}

static int pidfile_path(const chaos *ch, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/pgdata/postmaster.pid", ch->db.data_dir);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* SIGQUIT to the postmaster: `pg_ctl stop -m immediate`, no checkpoint. */
static void fault_crash(chaos *ch)
{
    char path[CLI_PATH_MAX + 32], buf[32];
    if (pidfile_path(ch, path, sizeof path) != 0) {
        fault_failed(ch, "crash", "data directory path too long");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    long pid = 0;
    if (n > 0) {
        buf[n] = '\0';
        pid = strtol(buf, NULL, 10);
    }
    if (pid <= 1) {
        fault_failed(ch, "crash", "no postmaster.pid: the server is not running");
        return;
    }
    if (kill((pid_t)pid, SIGQUIT) != 0) {
        fault_failed(ch, "crash", strerror(errno));
        return;
    }
    ch->faults_crash++;
    ch->crash_state = CRASH_EXITING;
    ch->crash_t0 = now_ns();
    ch->restart_tries = 0;
}

/* The restart runs in a child, so the clients meet a server that is down
 * (connections refused, operations ending in database errors and unknown
 * outcomes) rather than one that only paused. */
static void crash_restart(chaos *ch)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        char err[1024];
        int rc = pgbank_server_start(ch->db.data_dir, err, sizeof err);
        if (rc != 0) {
            char line[1200];
            int n = snprintf(line, sizeof line, "pgbank chaos: restart failed: %s\n", err);
            if (n > 0 && write(2, line, (size_t)n) < 0)
                _exit(2);
        }
        _exit(rc == 0 ? 0 : 1);
    }
    if (pid < 0) {
        snprintf(ch->fatal, sizeof ch->fatal, "could not fork to restart the server: %s",
                 strerror(errno));
        return;
    }
    ch->restart_pid = pid;
    ch->restart_tries++;
    ch->crash_state = CRASH_RESTARTING;
}

/* Advances a crash: wait for the postmaster to be gone, then restart. */
static void crash_step(chaos *ch, int block)
{
    char path[CLI_PATH_MAX + 32];
    for (;;) {
        if (ch->crash_state == CRASH_EXITING) {
            /* The postmaster removes its pid file on the way out (it may
             * linger as a zombie, so kill(pid, 0) proves nothing). */
            if (pidfile_path(ch, path, sizeof path) == 0 && access(path, F_OK) != 0) {
                crash_restart(ch);
                continue;
            }
            if (now_ns() - ch->crash_t0 > CRASH_EXIT_LIMIT_NS) {
                snprintf(ch->fatal, sizeof ch->fatal,
                         "the crashed server did not exit within 30 s");
                ch->crash_state = CRASH_NONE;
                return;
            }
        } else if (ch->crash_state == CRASH_RESTARTING) {
            int st;
            pid_t r = waitpid(ch->restart_pid, &st, block ? 0 : WNOHANG);
            if (r == ch->restart_pid || (r < 0 && errno == ECHILD)) {
                int ok = r < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0);
                if (ok || ch->restart_tries >= RESTART_TRIES) {
                    if (!ok)
                        say(ch->fatal, sizeof ch->fatal,
                            "the private server in %s could not be restarted "
                                 "(see its server.log)", ch->db.data_dir);
                    ch->crash_state = CRASH_NONE;
                    ch->downtime_ns += now_ns() - ch->crash_t0;
                    return;
                }
                crash_restart(ch);
                continue;
            }
            if (r < 0 && errno != EINTR) {
                snprintf(ch->fatal, sizeof ch->fatal, "waitpid: %s", strerror(errno));
                ch->crash_state = CRASH_NONE;
                return;
            }
        } else {
            return;
        }
        if (!block)
            return;
        sleep_ms(5);
    }
}

/* Faults come every 1-4 s, shortened for short runs so that a run of a
 * few seconds still sees each kind. */
static int64_t fault_interval(chaos *ch)
{
    int64_t hi = ch->set->duration_ns / 4, lo = ch->set->duration_ns / 8;
    if (hi > (int64_t)4000000000)
        hi = 4000000000;
    if (lo > (int64_t)1000000000)
        lo = 1000000000;
    if (lo < 50000000)
        lo = 50000000;
    if (hi < lo)
        hi = lo;
    return rnd_range(ch, lo, hi);
}

static void fault_inject(chaos *ch)
{
    int kinds = ch->faults, kind;
    if (kinds == (FAULT_TERMINATE | FAULT_CRASH))
        kind = ch->fault_seq == 0 ? FAULT_TERMINATE
               : ch->fault_seq == 1 ? FAULT_CRASH
               : rnd(ch) % 3 == 0  ? FAULT_CRASH
                                   : FAULT_TERMINATE;
    else
        kind = kinds;
    ch->fault_seq++;
    if (kind == FAULT_CRASH)
        fault_crash(ch);
    else
        fault_terminate(ch);
}

/* ------------------------------------------------------------------------
 * The run.
 * ------------------------------------------------------------------------ */

static void progress(chaos *ch, int64_t now, int final)
{
    if (!ch->tty || ch->c->json || (!final && now < ch->progress_ns))
        return;
    ch->progress_ns = now + 250000000;
    if (final) {
        fprintf(stderr, "\r%78s\r", "");
        return;
    }
    fprintf(stderr, "\rpgbank chaos: %5.1f s  %lld ops  %lld faults%s   ",
            (double)(now - ch->start_ns) / 1e9, (long long)ch->nrecs,
            (long long)(ch->faults_terminate + ch->faults_crash),
            ch->draining ? "  (draining)" : "");
    fflush(stderr);
}

static int chaos_run(chaos *ch)
{
    const chaos_settings *set = ch->set;
    ch->start_ns = now_ns();
    ch->deadline_ns = ch->start_ns + set->duration_ns;
    ch->next_fault_ns = ch->faults ? ch->start_ns + fault_interval(ch) : 0;
    for (int i = 0; i < set->clients; i++) {
        chaos_client *cl = &ch->clients[i];
        cl->ch = ch;
        cl->idx = -1;
        client_next(ch, cl);
    }
    int64_t drain_end = 0;
    for (;;) {
        int64_t now = now_ns();
        if (!ch->draining && (now >= ch->deadline_ns || interrupted)) {
            ch->draining = 1;
            drain_end = now + set->drain_ns;
        }
        if (ch->crash_state != CRASH_NONE)
            crash_step(ch, 0);
        if (!ch->draining && ch->next_fault_ns && now >= ch->next_fault_ns) {
            if (ch->crash_state == CRASH_NONE)
                fault_inject(ch);
            ch->next_fault_ns = now_ns() + fault_interval(ch);
        }
        int active;
        int64_t wake = clients_wake(ch, now_ns(), &active);
        progress(ch, now, 0);
        if (ch->fatal[0] || ch->nomem)
            break;
        if (ch->draining && active == 0 && ch->crash_state == CRASH_NONE)
            break;
        if (ch->draining && now >= drain_end)
            break;
        /* Sleep in the engine's loop until the next thing to do. */
        int64_t until = ch->draining ? drain_end : ch->deadline_ns;
        if (wake && wake < until)
            until = wake;
        if (!ch->draining && ch->next_fault_ns && ch->next_fault_ns < until)
            until = ch->next_fault_ns;
        if (ch->crash_state != CRASH_NONE && now + 5000000 < until)
            until = now + 5000000;
        if (now + 250000000 < until)
            until = now + 250000000;
        int ms = (int)((until - now_ns() + 999999) / 1000000);
        if (ms < 1)
            ms = 1;
        if (pgbank_engine_pending(ch->eng) > 0) {
            int rc = pgbank_engine_run(ch->eng, ms);
            if (rc != 0 && rc != PGBANK_ETIMEDOUT) {
                snprintf(ch->fatal, sizeof ch->fatal, "the engine's loop failed: %s",
                         pgbank_strerror(rc));
                break;
            }
        } else {
            sleep_ms(ms);
        }
    }
    ch->end_ns = now_ns();
    progress(ch, ch->end_ns, 1);
    /* The server must be up for the checks. */
    if (ch->crash_state != CRASH_NONE)
        crash_step(ch, 1);
    /* Whatever is still pending gets no answer (and the engine's
     * completions during the free are ignored). */
    ch->closing = 1;
    pgbank_engine_free(ch->eng);
    ch->eng = NULL;
    if (ch->nomem)
        return cli_error(ch->c, CLI_EXIT_FAILURE, "out of memory");
    if (ch->fatal[0])
        return cli_error(ch->c, CLI_EXIT_FAILURE, "%s", ch->fatal);
    return 0;
}

/* ------------------------------------------------------------------------
 * Checks: the database against the model.
 * ------------------------------------------------------------------------ */

static int account_index(const chaos *ch, int64_t id)
{
    int lo = 0, hi = ch->set->accounts - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (ch->ids[mid] == id)
            return mid;
        if (ch->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int check_balances(chaos *ch, char *err, size_t errlen)
{
    PGresult *r = ctl_exec(ch, "SELECT id, balance FROM accounts ORDER BY id", 0, NULL, err,
                           errlen);
    if (!r)
        return -1;
    int seen = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        int64_t bal = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        int k = account_index(ch, id);
        int64_t want = k >= 0 ? ch->model[k] : 0;
        seen += k >= 0;
        if (bal < 0)
            ch->negative++;
        /* Above the model: money paid out that was never debited (the bank
         * lost it); below: money taken that no acknowledged operation
         * explains.  The audit's convention. */
        if (bal > want)
            ch->money_lost += bal - want;
        else
            ch->money_created += want - bal;
    }
    PQclear(r);
    if (seen < ch->set->accounts) {
        snprintf(err, errlen, "%d of the run's %d accounts are missing", ch->set->accounts - seen,
                 ch->set->accounts);
        return -1;
    }
    return 0;
}

/* Every operation's journal rows, found by its key (or, unkeyed, by its
 * distinct amount): one per account an acknowledged operation touched,
 * none for a refusal or a failure, never two; an unknown outcome's, all or
 * none, and the model then takes what the journal says. */
static int check_journal(chaos *ch, char *err, size_t errlen)
{
    const char *sql = ch->set->unkeyed
                          ? "SELECT abs(amount)::text, count(*), count(key) FROM pgbank_entries"
                            " WHERE op <> 'open' GROUP BY 1"
                          : "SELECT key, count(*), 0 FROM pgbank_journal"
                            " WHERE key IS NOT NULL AND key <> '' GROUP BY key";
    PGresult *r = ctl_exec(ch, sql, 0, NULL, err, errlen);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        long long n = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        int64_t idx = -1;
        if (ch->set->unkeyed) {
            if (pgbank_parse_int64(name, &idx) == 0)
                idx--;
            ch->stray_rows += strtoll(PQgetvalue(r, i, 2), NULL, 10);
        } else if (strncmp(name, "chaos-", 6) != 0 || pgbank_parse_int64(name + 6, &idx) != 0) {
            idx = -1;
        }
        if (idx < 0 || (size_t)idx >= ch->nrecs) {
            ch->stray_rows += n;
            continue;
        }
        ch->recs[idx].journal = (unsigned char)(n > 200 ? 200 : n);
    }
    PQclear(r);
    for (size_t i = 0; i < ch->nrecs; i++) {
        const chaos_rec *rec = &ch->recs[i];
        int full = rec->kind == PGBANK_OP_TRANSFER ? 2 : 1;
        if (!rec->answered) {
            ch->without_result++;
            continue;
        }
        if (rec->answered == 1 + PGBANK_UNKNOWN_OUTCOME) {
            if (rec->journal == full) {
                ch->unknown_applied++;
                model_apply(ch, rec);
            } else if (rec->journal > full) {
                ch->applied_twice++;
            } else if (rec->journal > 0) {
                ch->torn++;
            }
            continue;
        }
        int want = rec->answered == 1 + PGBANK_OK ? full : 0;
        if (rec->journal > want && want > 0)
            ch->applied_twice++;
        else if (rec->journal > want)
            ch->applied_not_acked++;
        else if (rec->journal < want)
            ch->acked_not_applied++;
    }
    return 0;
}

static int chaos_check(chaos *ch)
{
    char err[1024];
    if (check_journal(ch, err, sizeof err) != 0 || check_balances(ch, err, sizeof err) != 0)
        return cli_error(ch->c, CLI_EXIT_FAILURE, "could not check the run's accounts in "
                         "schema %s: %s", ch->schema, err);
    err[0] = '\0';
    int rc = pgbank_audit(ch->ci, &ch->audit, NULL, NULL, err, sizeof err);
    if (rc < 0) {
        cli_scrub(ch->c, err, sizeof err);
        return cli_error(ch->c, CLI_EXIT_FAILURE, "could not audit schema %s: %s", ch->schema,
                         err[0] ? err : pgbank_strerror(rc));
    }
    ch->audit_holds = rc == 1;
    return 0;
}

static int chaos_failed(const chaos *ch)
{
    return ch->money_lost || ch->money_created || ch->negative || ch->without_result ||
           ch->applied_not_acked || ch->acked_not_applied || ch->applied_twice || ch->torn ||
           ch->stray_rows || ch->no_account || ch->conflicts || ch->invalid ||
           !ch->audit_holds;
}

/* ------------------------------------------------------------------------
 * Report.
 * ------------------------------------------------------------------------ */

static int64_t elapsed_ms(const chaos *ch) { return (ch->end_ns - ch->start_ns) / 1000000; }

static int64_t ops_per_sec(const chaos *ch)
{
    int64_t ms = elapsed_ms(ch);
    return ms > 0 ? (int64_t)ch->nrecs * 1000 / ms : 0;
}

static void print_json(const chaos *ch)
{
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "status", chaos_failed(ch) ? "failed" : "ok");
    char where[sizeof ch->db.where];
    snprintf(where, sizeof where, "%s", ch->db.where);
    cli_scrub(ch->c, where, sizeof where); /* redact misses some forms */
    cli_json_str(&j, "database", where);
    cli_json_str(&j, "schema", ch->schema);
    cli_json_str(&j, "mode", ch->set->unkeyed ? "unkeyed" : "keyed");
    cli_json_int(&j, "seed", (int64_t)ch->set->seed);
    cli_json_int(&j, "duration_ms", ch->set->duration_ns / 1000000);
    cli_json_int(&j, "elapsed_ms", elapsed_ms(ch));
    cli_json_int(&j, "interrupted", interrupted != 0);
    cli_json_int(&j, "clients", ch->set->clients);
    cli_json_int(&j, "accounts", ch->set->accounts);
    cli_json_int(&j, "ops", (int64_t)ch->nrecs);
    cli_json_int(&j, "ops_per_sec", ops_per_sec(ch));
    cli_json_int(&j, "acknowledged", ch->ok);
    cli_json_int(&j, "refused", ch->refused);
    cli_json_int(&j, "replayed", ch->replayed);
    cli_json_int(&j, "unknown", ch->unknown);
    cli_json_int(&j, "unknown_resolved", ch->unknown_resolved);
    cli_json_int(&j, "unknown_ops", ch->unknown_ops);
    cli_json_int(&j, "unknown_applied", ch->unknown_applied);
    cli_json_int(&j, "db_errors", ch->db_errors);
    cli_json_int(&j, "retries_exhausted", ch->exhausted);
    cli_json_int(&j, "retried", ch->retried);
    cli_json_int(&j, "conflicts", ch->conflicts);
    cli_json_int(&j, "no_such_account", ch->no_account);
    cli_json_int(&j, "invalid", ch->invalid);
    cli_json_int(&j, "faults", ch->faults_terminate + ch->faults_crash);
    cli_json_int(&j, "faults_terminate", ch->faults_terminate);
    cli_json_int(&j, "faults_crash", ch->faults_crash);
    cli_json_int(&j, "backends_terminated", ch->backends_killed);
    cli_json_int(&j, "fault_failures", ch->fault_failures);
    cli_json_int(&j, "server_down_ms", ch->downtime_ns / 1000000);
    cli_json_int(&j, "money_lost", ch->money_lost);
    cli_json_int(&j, "money_created", ch->money_created);
    cli_json_int(&j, "negative_balances", ch->negative);
    cli_json_int(&j, "ops_without_result", ch->without_result);
    cli_json_int(&j, "applied_not_acknowledged", ch->applied_not_acked);
    cli_json_int(&j, "acknowledged_not_applied", ch->acked_not_applied);
    cli_json_int(&j, "applied_twice", ch->applied_twice);
    cli_json_int(&j, "torn", ch->torn);
    cli_json_str(&j, "audit", ch->audit_holds ? "ok" : "failed");
    cli_json_int(&j, "total_balance", ch->audit.total_balance);
    cli_json_end(&j);
}

static void print_report(const chaos *ch)
{
    const chaos_settings *set = ch->set;
    char where[sizeof ch->db.where];
    snprintf(where, sizeof where, "%s", ch->db.where);
    cli_scrub(ch->c, where, sizeof where);
    printf("pgbank chaos: %s s, %d clients, %d accounts, %s operations, seed %llu, on %s "
           "(schema %s)\n",
           set->duration_arg, set->clients, set->accounts, set->unkeyed ? "unkeyed" : "keyed",
           (unsigned long long)set->seed, where, ch->schema);
    if (interrupted)
        printf("  interrupted  the load stopped early; what was submitted was drained and "
               "checked\n");
    printf("  operations   %lld submitted in %.1f s (%lld/s): %lld acknowledged (%lld of "
           "them replays), %lld refused (insufficient funds)\n",
           (long long)ch->nrecs, (double)elapsed_ms(ch) / 1e3, (long long)ops_per_sec(ch),
           (long long)ch->ok, (long long)ch->replayed, (long long)ch->refused);
    if (set->unkeyed)
        printf("  on the way   %lld unknown outcomes, final (never re-sent without a key; "
               "the journal shows %lld applied), %lld database errors (nothing applied: "
               "sent again), %lld retries exhausted; %lld resubmissions\n",
               (long long)ch->unknown, (long long)ch->unknown_applied,
               (long long)ch->db_errors, (long long)ch->exhausted, (long long)ch->retried);
    else
        printf("  on the way   %lld unknown outcomes in %lld operations (%lld resolved by "
               "their key), %lld database errors, %lld retries exhausted; %lld resubmissions "
               "with the same key\n",
               (long long)ch->unknown, (long long)ch->unknown_ops,
               (long long)ch->unknown_resolved,
               (long long)ch->db_errors, (long long)ch->exhausted, (long long)ch->retried);
    printf("  faults       %lld: %lld backend terminations (%lld backends), %lld server "
           "crashes (down %.1f s in all); %lld failed to inject\n",
           (long long)(ch->faults_terminate + ch->faults_crash),
           (long long)ch->faults_terminate, (long long)ch->backends_killed,
           (long long)ch->faults_crash, (double)ch->downtime_ns / 1e9,
           (long long)ch->fault_failures);
    printf("  money        lost %lld, created %lld; negative balances %lld\n",
           (long long)ch->money_lost, (long long)ch->money_created, (long long)ch->negative);
    printf("  answers      %lld operations without a definite answer; %lld unexpected "
           "(conflict, no such account, invalid)\n",
           (long long)ch->without_result,
           (long long)(ch->conflicts + ch->no_account + ch->invalid));
    printf("  journal      %lld applied but not acknowledged, %lld acknowledged but not "
           "applied, %lld applied twice, %lld half-applied, %lld rows of no operation\n",
           (long long)ch->applied_not_acked, (long long)ch->acked_not_applied,
           (long long)ch->applied_twice, (long long)ch->torn, (long long)ch->stray_rows);
    printf("  audit        %s (%lld accounts, %lld mismatched, total %lld)\n",
           ch->audit_holds ? "holds" : "FAILS", (long long)ch->audit.accounts,
           (long long)ch->audit.mismatched, (long long)ch->audit.total_balance);
    printf("%s\n", chaos_failed(ch)
                       ? "FAILED: money or answers went wrong under faults (details above)"
                       : set->unkeyed
                             ? "ok: every operation answered, applied once when acknowledged, "
                               "never when refused or failed, at most once when unknown"
                             : "ok: every operation answered, applied exactly once when "
                               "acknowledged, nothing lost or created");
}

/* ------------------------------------------------------------------------
 * Options.
 * ------------------------------------------------------------------------ */

static int parse_faults(const cli *c, const char *s, int *out)
{
    *out = 0;
    if (strcmp(s, "none") == 0)
        return 0;
    const char *p = s;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 9 && strncmp(p, "terminate", 9) == 0)
            *out |= FAULT_TERMINATE;
        else if (n == 5 && strncmp(p, "crash", 5) == 0)
            *out |= FAULT_CRASH;
        else
            return cli_usage_error(c, "invalid --faults '%s': a comma-separated list of "
                                   "terminate and crash, or none", s);
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

static int parse_settings(cli *c, int argc, char **argv, chaos_settings *set)
{
    const char *clients = "16", *accounts = "10", *seed = NULL, *faults = NULL;
    const char *drain = "60";
    memset(set, 0, sizeof *set);
    set->duration_arg = "20";
    const cli_opt opts[] = {{"duration", &set->duration_arg, NULL},
                            {"clients", &clients, NULL},
                            {"accounts", &accounts, NULL},
                            {"seed", &seed, NULL},
                            {"faults", &faults, NULL},
                            {"drain-timeout", &drain, NULL},
                            {"keep", NULL, &set->keep},
                            {"unkeyed", NULL, &set->unkeyed},
                            {NULL, NULL, NULL}};
    int npos, rc = cli_parse(c, argc, argv, opts, NULL, 0, &npos);
    if (rc)
        return rc;
    if ((rc = cli_parse_seconds(c, "--duration", set->duration_arg, 86400, &set->duration_ns)) ||
        (rc = cli_parse_seconds(c, "--drain-timeout", drain, 3600, &set->drain_ns)) ||
        (rc = cli_parse_count(c, "--clients", clients, 1, MAX_CLIENTS, &set->clients)) ||
        (rc = cli_parse_count(c, "--accounts", accounts, 2, MAX_ACCOUNTS, &set->accounts)))
        return rc;
    if (seed) {
        int64_t v;
        if (pgbank_parse_int64(seed, &v) != 0 || v < 0)
            return cli_usage_error(c, "invalid --seed '%s': a whole number >= 0", seed);
        set->seed = (uint64_t)v;
    } else {
        set->seed = ((uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid()) & INT64_MAX;
    }
    set->faults = FAULT_TERMINATE | FAULT_CRASH;
    if (faults) {
        set->faults_given = 1;
        if ((rc = parse_faults(c, faults, &set->faults)) != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The command.
 * ------------------------------------------------------------------------ */

static void chaos_free(chaos *ch)
{
    ch->closing = 1;
    pgbank_engine_free(ch->eng);
    ch->eng = NULL;
    if (ch->crash_state != CRASH_NONE)
        crash_step(ch, 1);
    if (ch->schema_made && !ch->set->keep) {
        char err[512];
        if (ctl_schema_ddl(ch, "DROP SCHEMA IF EXISTS", " CASCADE", err, sizeof err) != 0)
            cli_error(ch->c, 0, "could not drop the schema %s: %s", ch->schema, err);
    }
    PQfinish(ch->ctl);
    ch->ctl = NULL;
    free(ch->ci);
    free(ch->ids);
    free(ch->model);
    free(ch->clients);
    free(ch->recs);
    cli_db_close(ch->c, &ch->db);
}

static int run_chaos(cli *c, int argc, char **argv)
{
    chaos_settings set;
    int rc = parse_settings(c, argc, argv, &set);
    if (rc)
        return rc;
    chaos ch;
    memset(&ch, 0, sizeof ch);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    ch.c = c;
    ch.set = &set;
    ch.rng = set.seed;
    ch.tty = isatty(2);
    ch.ids = calloc((size_t)set.accounts, sizeof *ch.ids);
    ch.model = calloc((size_t)set.accounts, sizeof *ch.model);
    ch.clients = calloc((size_t)set.clients, sizeof *ch.clients);
    if (!ch.ids || !ch.model || !ch.clients)
        rc = cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    if (rc == 0 && (rc = chaos_setup(&ch)) == 0 && (rc = chaos_run(&ch)) == 0 &&
        (rc = chaos_check(&ch)) == 0) {
        if (c->json)
            print_json(&ch);
        else
            print_report(&ch);
        if (chaos_failed(&ch)) {
            if (ch.without_result && ch.last_transient[0])
                cli_error(c, 0, "last transient answer: %s", ch.last_transient);
            rc = CLI_EXIT_REFUSED;
        }
        if (ch.fault_failures)
            cli_error(c, 0, "%lld faults could not be injected (last: %s)",
                      (long long)ch.fault_failures, ch.fault_error);
        if (set.keep)
            fprintf(stderr, "pgbank chaos: schema %s kept (options=-csearch_path=%s)\n",
                    ch.schema, ch.schema);
    }
    chaos_free(&ch);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

const cli_command cli_cmd_chaos = {
    "chaos", "move money under injected faults and check that none is lost",
    "Usage: pgbank chaos [--duration S] [--clients C] [--accounts N] [--seed N]\n"
    "                    [--faults LIST] [--drain-timeout S] [--unkeyed] [--keep]\n"
    "                    [--json]\n"
    "\n"
    "A bank test in the spirit of Jepsen's.  C clients run keyed withdrawals,\n"
    "deposits and transfers (for-update, atomic and serializable, random\n"
    "amounts, random accounts among N fresh ones) for S seconds while faults\n"
    "are injected every 1-4 s:\n"
    "  terminate  the run's backends are killed (pg_terminate_backend)\n"
    "  crash      the private server is crash-stopped (SIGQUIT to the\n"
    "             postmaster, as 'pg_ctl stop -m immediate') and restarted;\n"
    "             only on the private server (its other clients see the\n"
    "             crash too)\n"
    "An operation that ends in 'unknown outcome' or 'database error' is\n"
    "resubmitted with the same idempotency key until it gets a definite\n"
    "answer: that is what exactly-once means for a client.  At the end the\n"
    "database is compared with what the clients were told: money lost or\n"
    "created, negative balances, operations never answered, journal rows of\n"
    "every key (applied once when acknowledged, never otherwise), the audit.\n"
    "The run has a schema of its own, pgbank_chaos_<pid>, dropped at the end.\n"
    "Ctrl-C ends the load early; the run is still drained and checked.\n"
    "\n"
    "Options:\n"
    "  --duration S       seconds of load and faults (default 20)\n"
    "  --clients C        concurrent clients, one connection each (default 16,\n"
    "                     1 to 256)\n"
    "  --accounts N       fresh accounts (default 10, 2 to 10000), each opened\n"
    "                     with 10000\n"
    "  --seed N           the operations' random choices (printed; fault times\n"
    "                     follow the clock, so a run is not replayed exactly)\n"
    "  --faults LIST      terminate,crash (default: both; crash only on the\n"
    "                     private server), or none\n"
    "  --drain-timeout S  after the deadline, how long unanswered operations\n"
    "                     may take to get an answer (default 60)\n"
    "  --unkeyed          operations without keys (the batch strategy, which\n"
    "                     takes none, joins in): an unknown outcome is then\n"
    "                     final (never re-sent: it may have been applied), a\n"
    "                     database error is sent again (nothing was applied);\n"
    "                     each operation moves a distinct amount, so the\n"
    "                     journal shows whether it was applied, and how often\n"
    "  --keep             keep the schema for inspection\n"
    "  --json             one object: {\"ops\", \"acknowledged\", \"refused\",\n"
    "                     \"unknown\", \"unknown_resolved\", \"unknown_ops\",\n"
    "                     \"retried\", \"faults\", \"faults_terminate\",\n"
    "                     \"faults_crash\", \"money_lost\", \"money_created\",\n"
    "                     \"negative_balances\", \"ops_without_result\",\n"
    "                     \"audit\", ...}\n"
    "\n"
    "Exit codes: 0 nothing lost, created or left unanswered, and the audit\n"
    "holds; 1 something went wrong (a pgbank bug: details in the report);\n"
    "2 bad usage, nothing was run; 3 database failure (setup, or a crashed\n"
    "server that could not be restarted).\n"
    "\n"
    "Examples:\n"
    "  pgbank chaos --duration 40\n"
    "  pgbank chaos --duration 10 --clients 32 --accounts 3 --json\n"
    "  pgbank --db postgresql://bank@db.example.com/bank chaos --faults terminate\n",
    run_chaos,
};
