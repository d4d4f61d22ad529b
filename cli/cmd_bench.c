/*
 * cmd_bench.c - `pgbank bench`: what a strategy costs, measured on the
 * user's own server, side by side with pgbench running the same SQL on the
 * same accounts in the same run.
 *
 * One run:
 *   1. setup: the schema pgbank_bench is dropped and created again (the
 *      user's own tables are never touched), pgbank's schema is made in it
 *      and N accounts are filled by one INSERT ... SELECT generate_series
 *      with the primary key built afterwards (10 million in well under a
 *      minute), each holding 10^11 so a withdrawal of 1 is never refused.
 *      pgbank's journal is dropped there unless --journal: pgbench's
 *      UPDATE writes no journal, and the comparison must run the same SQL
 *      (pgbank_batch() journals only where the journal exists).
 *   2. measure: one engine, one thread, the built-in loop.  C clients each
 *      keep D withdrawals of 1 outstanding (a closed loop: a completion
 *      submits the next withdrawal at once), on accounts drawn uniformly or
 *      from a Zipf distribution.  Every completion is timed into a
 *      log-linear histogram; a line per second goes to stderr.
 *   3. check: the sum of the balances fell by exactly the withdrawals
 *      reported ok ("money check: ok"), else exit 1.
 *   4. --vs-pgbench: pgbench runs two equivalent scripts on the same
 *      accounts, for the same time and clients, one thread (-j 1):
 *      one UPDATE per commit, and ten per commit in a pipeline.
 * Every measured phase starts after VACUUM and CHECKPOINT (db_settle), so
 * none pays for another's dead rows or full-page writes.  The schema is
 * dropped at the end.
 */
#include "cli.h"
#include "hist.h"
#include "plot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_SCHEMA "pgbank_bench"
/* Every account's opening balance: 10^11 minor units; 10^7 accounts sum
 * to 10^18, still inside int64_t. */
#define BENCH_BALANCE INT64_C(100000000000)
#define MAX_ACCOUNTS 10000000
#define MAX_CLIENTS 1024
#define MAX_DEPTH 1024
#define MAX_INFLIGHT 262144
#define ZIPF_S 1.1
/* How long the operations in flight at the deadline may take to finish. */
#define DRAIN_MS 60000
#define CONNECT_MS 60000
/* Session advisory lock: one benchmark at a time per database. */
#define BENCH_LOCK_KEY "7405163"

/* ------------------------------------------------------------------------
 * Settings.
 * ------------------------------------------------------------------------ */

typedef struct bench_settings {
    pgbank_strategy strategy;
    int clients;
    int depth;
    int connections;
    int64_t accounts;
    int64_t duration_ns;
    const char *duration_arg;
    int zipf;
    int vs_pgbench;
    int journal;
    int batch_max;
    int batch_inflight;
    const char *plot;
} bench_settings;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double secs(int64_t ns) { return (double)ns / 1e9; }

/* ------------------------------------------------------------------------
 * Picking accounts: a xorshift64* generator, uniform ids by
 * multiply-shift, Zipf ids by rejection-inversion (Hörmann and Derflinger
 * 1996, as in Apache Commons RNG): exact for any N, O(1) memory, a log and
 * an exp per draw, so 10 million accounts cost no table and no RSS.  Rank
 * 1 (the hottest) is account 1, as with pgbench's random_zipfian().
 * ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static double rng_unit(uint64_t *s) /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct zipf {
    double s, n;
    double h_x1, h_n, squeeze;
} zipf;

static double zipf_helper1(double x) /* log1p(x) / x */
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double zipf_helper2(double x) /* expm1(x) / x */
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

/* H(x): the integral of the hat function x^-s. */
static double zipf_hint(const zipf *z, double x)
{
    double lx = log(x);
    return zipf_helper2((1 - z->s) * lx) * lx;
}

static double zipf_h(const zipf *z, double x) { return exp(-z->s * log(x)); }

static double zipf_hinv(const zipf *z, double x)
{
    double t = x * (1 - z->s);
    if (t < -1)
        t = -1;
    return exp(zipf_helper1(t) * x);
}

static void zipf_init(zipf *z, int64_t n, double s)
{
    z->s = s;
    z->n = (double)n;
    z->h_x1 = zipf_hint(z, 1.5) - 1;
    z->h_n = zipf_hint(z, z->n + 0.5);
    z->squeeze = 2 - zipf_hinv(z, zipf_hint(z, 2.5) - zipf_h(z, 2));
}

static int64_t zipf_draw(const zipf *z, uint64_t *rng)
{
    for (;;) {
        double u = z->h_n + rng_unit(rng) * (z->h_x1 - z->h_n);
        double x = zipf_hinv(z, u);
        double k = floor(x + 0.5);
        if (k < 1)
            k = 1;
        else if (k > z->n)
            k = z->n;
        if (k - x <= z->squeeze || u >= zipf_hint(z, k + 0.5) - zipf_h(z, k))
            return (int64_t)k;
    }
}

/* ------------------------------------------------------------------------
 * The measurement.
 * ------------------------------------------------------------------------ */

typedef struct bench_run bench_run;

typedef struct bench_slot {
    pgbank_op op;
    int64_t t0;
    bench_run *run;
} bench_slot;

typedef struct bench_second {
    double t_s;         /* end of the interval, seconds since the start */
    double ops_per_sec; /* ok withdrawals per second in the interval */
    double p50_ms, p99_ms;
    int64_t failures;
} bench_second;

struct bench_run {
    const bench_settings *set;
    pgbank_engine *eng;
    bench_slot *slots;
    int nslots;
    uint64_t rng;
    zipf z;
    int64_t start_ns, deadline_ns, end_ns;
    int stopping;
    /* Outcomes. */
    int64_t ok;
    int64_t failures; /* every other outcome */
    int64_t by_status[PGBANK__STATUS_COUNT];
    int64_t not_submitted;
    int64_t db_failures; /* the database failed: database error, unknown
                          * outcome, shut down, not submitted */
    int64_t unknown;     /* unknown outcome: may or may not be applied */
    int stopped_slots;   /* slots that stopped on a database failure */
    char first_failure[320];
    cli_hist total, sec;
    int64_t sec_ok, sec_failures;
    int64_t sec_start_ns;
    bench_second *timeline;
    size_t nsec, capsec;
    int nomem;
    /* Client cost. */
    double cpu_us_per_op;
    double rss_mb;
};

static int64_t pick_account(bench_run *r)
{
    if (r->set->zipf)
        return zipf_draw(&r->z, &r->rng);
    uint64_t x = rng_next(&r->rng) >> 32;
    return 1 + (int64_t)((x * (uint64_t)r->set->accounts) >> 32);
}

static void run_failure(bench_run *r, const char *status, const char *msg, int db)
{
    r->failures++;
    r->sec_failures++;
    r->db_failures += db;
    if (!r->first_failure[0])
        snprintf(r->first_failure, sizeof r->first_failure, "%s%s%s", status,
                 msg[0] ? ": " : "", msg);
}

static void slot_submit(bench_run *r, bench_slot *s, int64_t now)
{
    s->op.account = pick_account(r);
    s->t0 = now;
    int rc = pgbank_submit(r->eng, &s->op);
    if (rc != 0) {
        r->not_submitted++;
        r->stopped_slots++;
        run_failure(r, "not submitted", pgbank_strerror(rc), 1);
    }
}

static void bench_done(pgbank_op *op)
{
    bench_slot *s = op->user_data;
    bench_run *r = s->run;
    int64_t now = now_ns();
    pgbank_status st = op->result.status;
    if (st == PGBANK_OK) {
        r->ok++;
        r->sec_ok++;
        cli_hist_record(&r->sec, (uint64_t)(now - s->t0 + 500) / 1000);
    } else {
        if ((int)st >= 0 && st < PGBANK__STATUS_COUNT)
            r->by_status[st]++;
        int db = st == PGBANK_DB_ERROR || st == PGBANK_UNKNOWN_OUTCOME ||
                 st == PGBANK_SHUT_DOWN;
        r->unknown += st == PGBANK_UNKNOWN_OUTCOME;
        run_failure(r, pgbank_status_name(st), op->result.message, db);
        if (db) {
            /* Like a pgbench client on an error, this slot stops: a broken
             * setup ends the run at once instead of spinning on errors. */
            r->end_ns = now;
            r->stopped_slots++;
            return;
        }
    }
    r->end_ns = now;
    if (r->stopping || now >= r->deadline_ns)
        return;
    slot_submit(r, s, now); /* a closed loop: the slot goes on at once */
}

/* Closes the interval that ends now: one timeline row, one stderr line. */
static void run_tick(bench_run *r, int64_t now)
{
    int64_t len = now - r->sec_start_ns;
    if (len <= 0)
        return;
    if (r->nsec == r->capsec) {
        size_t cap = r->capsec ? r->capsec * 2 : 64;
        bench_second *t = realloc(r->timeline, cap * sizeof *t);
        if (!t) {
            r->nomem = 1;
            return;
        }
        r->timeline = t;
        r->capsec = cap;
    }
    bench_second *row = &r->timeline[r->nsec++];
    row->t_s = secs(now - r->start_ns);
    row->ops_per_sec = (double)r->sec_ok / secs(len);
    row->p50_ms = cli_hist_percentile_ms(&r->sec, 50);
    row->p99_ms = cli_hist_percentile_ms(&r->sec, 99);
    row->failures = r->sec_failures;
    fprintf(stderr, "pgbank bench: %5.1f s  %10.0f ops/s  p50 %.3f ms  p99 %.3f ms  "
            "failures %lld\n", row->t_s, row->ops_per_sec, row->p50_ms, row->p99_ms,
            (long long)row->failures);
    cli_hist_merge(&r->total, &r->sec);
    cli_hist_reset(&r->sec);
    r->sec_ok = 0;
    r->sec_failures = 0;
    r->sec_start_ns = now;
}

static double cpu_us(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec * 1e6 + (double)ru->ru_utime.tv_usec +
           (double)ru->ru_stime.tv_sec * 1e6 + (double)ru->ru_stime.tv_usec;
}

/* Runs the closed loop until the deadline, then lets what is in flight
 * finish.  Returns 0, or an exit code after a message. */
static int run_measure(cli *c, bench_run *r)
{
    const bench_settings *set = r->set;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    r->start_ns = r->sec_start_ns = now_ns();
    r->deadline_ns = r->start_ns + set->duration_ns;
    int64_t next_tick = r->start_ns + 1000000000;
    for (int i = 0; i < r->nslots; i++)
        slot_submit(r, &r->slots[i], now_ns());
    for (;;) {
        int64_t now = now_ns();
        if (now >= next_tick && now < r->deadline_ns) {
            run_tick(r, now);
            next_tick += 1000000000;
            continue;
        }
        if (now >= r->deadline_ns)
            r->stopping = 1;
        if (pgbank_engine_pending(r->eng) == 0)
            break;
        int64_t until = r->stopping ? r->deadline_ns + (int64_t)DRAIN_MS * 1000000
                                    : (next_tick < r->deadline_ns ? next_tick
                                                                  : r->deadline_ns);
        if (r->stopping && now >= until)
            return cli_error(c, CLI_EXIT_FAILURE, "%zu withdrawals were still unanswered "
                             "%d s after the end of the run",
                             pgbank_engine_pending(r->eng), DRAIN_MS / 1000);
        int ms = (int)((until - now + 999999) / 1000000);
        int rc = pgbank_engine_run(r->eng, ms < 1 ? 1 : ms);
        if (rc != 0 && rc != PGBANK_ETIMEDOUT)
            return cli_error(c, CLI_EXIT_FAILURE, "the engine's loop failed: %s",
                             pgbank_strerror(rc));
    }
    getrusage(RUSAGE_SELF, &ru1);
    if (!r->end_ns)
        r->end_ns = now_ns();
    run_tick(r, r->end_ns > r->sec_start_ns ? r->end_ns : now_ns());
    if (r->nomem)
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    r->cpu_us_per_op = r->ok ? (cpu_us(&ru1) - cpu_us(&ru0)) / (double)r->ok : 0;
    r->rss_mb = (double)ru1.ru_maxrss / 1024.0; /* Linux: kilobytes */
    return 0;
}

static double run_ops_per_sec(const bench_run *r)
{
    int64_t len = r->end_ns - r->start_ns;
    return len > 0 ? (double)r->ok / secs(len) : 0.0;
}

/* ------------------------------------------------------------------------
 * The database: the bench schema, set up and checked over plain libpq.
 * ------------------------------------------------------------------------ */

typedef struct bench_db {
    cli *c;
    cli_db db;        /* the user's database, resolved as every command does */
    char *conninfo;   /* the same with search_path = pgbank_bench */
    char *pgbench_conninfo; /* the same without the password */
    char *password;   /* for pgbench's PGPASSWORD; NULL when none */
    PGconn *pg;       /* setup, statistics, money check */
    int schema_made;
} bench_db;

/* A growing string. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int nomem;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
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

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* key='value' with ' and \ escaped, as libpq's key=value syntax wants. */
static void sb_param(sbuf *b, const char *key, const char *val)
{
    if (b->len)
        sb_str(b, " ");
    sb_str(b, key);
    sb_str(b, "='");
    for (const char *p = val; *p; p++) {
        if (*p == '\'' || *p == '\\')
            sb_str(b, "\\");
        sb_add(b, p, 1);
    }
    sb_str(b, "'");
}

/* The user's connection string (key=value or URI) as key=value, with
 * -csearch_path=pgbank_bench added to its options (or to $PGOPTIONS), so
 * everything pgbank and pgbench send lands in the bench schema.  With
 * password_out, the password is left out of the string and returned. */
static char *bench_conninfo(const char *conninfo, char **password_out, char *err,
                            size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        snprintf(err, errlen, "%s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    sbuf b = {0};
    const char *user_options = getenv("PGOPTIONS");
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "options") == 0) {
            user_options = o->val;
            continue;
        }
        if (password_out && strcmp(o->keyword, "password") == 0) {
            *password_out = strdup(o->val);
            if (!*password_out)
                b.nomem = 1;
            continue;
        }
        sb_param(&b, o->keyword, o->val);
    }
    sbuf opt = {0};
    if (user_options && *user_options) {
        sb_str(&opt, user_options);
        sb_str(&opt, " ");
    }
    sb_str(&opt, "-csearch_path=" BENCH_SCHEMA);
    if (!opt.nomem)
        sb_param(&b, "options", opt.s);
    PQconninfoFree(opts);
    free(opt.s);
    if (b.nomem || opt.nomem) {
        free(b.s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return b.s;
}

/* Runs one statement on the setup connection.  Returns 0, or an exit code
 * after "pgbank: could not WHAT: <server message>". */
static int db_exec(bench_db *d, const char *what, const char *sql, int nparams,
                   const char *const *params, PGresult **out)
{
    PGresult *res = PQexecParams(d->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        PQclear(res);
        return cli_error(d->c, CLI_EXIT_FAILURE, "could not %s: %s", what,
                         msg[0] ? msg : PQerrorMessage(d->pg));
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int db_connect(bench_db *d)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {d->conninfo, "pgbank bench", NULL};
    d->pg = PQconnectdbParams(keys, vals, 1);
    if (!d->pg || PQstatus(d->pg) != CONNECTION_OK)
        return cli_error(d->c, CLI_EXIT_FAILURE, "could not connect to %s: %s",
                         d->db.where, d->pg ? PQerrorMessage(d->pg) : "out of memory");
    PGresult *res;
    int rc = db_exec(d, "take the benchmark lock",
                     "SELECT pg_try_advisory_lock(" BENCH_LOCK_KEY ")", 0, NULL, &res);
    if (rc)
        return rc;
    int got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!got)
        return cli_error(d->c, CLI_EXIT_FAILURE, "another pgbank bench is running on %s; "
                         "try again when it is done", d->db.where);
    return db_exec(d, "set up the session", "SET client_min_messages = warning", 0, NULL,
                   NULL);
}

/* A fresh pgbank_bench schema holding accounts 1..N. */
static int db_setup(bench_db *d, const bench_settings *set)
{
    cli *c = d->c;
    char err[1024];
    int rc;
    if ((rc = db_exec(d, "drop the old benchmark schema",
                      "DROP SCHEMA IF EXISTS " BENCH_SCHEMA " CASCADE", 0, NULL, NULL)) ||
        (rc = db_exec(d, "create the benchmark schema", "CREATE SCHEMA " BENCH_SCHEMA, 0,
                      NULL, NULL)))
        return rc;
    d->schema_made = 1;
    err[0] = '\0';
    pgbank_schema_options o;
    pgbank_schema_options_init(&o);
    o.journal = set->journal;
    if (pgbank_schema_create(d->conninfo, &o, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create pgbank's schema in "
                         BENCH_SCHEMA ": %s", err);
    if (pgbank_accounts_load(d->conninfo, set->accounts, BENCH_BALANCE, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the benchmark accounts: %s", err);
    return 0;
}

/* Every measured phase (pgbank, each pgbench script) starts from the same
 * state: the dead row versions of the previous phase vacuumed away, and a
 * fresh checkpoint, so that no phase pays for another's full-page writes
 * (the first change of a page after a checkpoint logs the whole page) or
 * meets a checkpoint the previous phase's WAL triggered.  CHECKPOINT needs
 * superuser or pg_checkpoint: skipped quietly otherwise. */
static int db_settle(bench_db *d)
{
    int rc = db_exec(d, "vacuum the benchmark accounts", "VACUUM accounts", 0, NULL, NULL);
    if (rc == 0)
        PQclear(PQexec(d->pg, "CHECKPOINT"));
    return rc;
}

/* The database's committed transactions so far (pg_stat_database).
 * Returns -1 when the statistics cannot be read. */
static int64_t db_commits(bench_db *d)
{
    PGresult *res = PQexec(d->pg, "SELECT xact_commit FROM pg_stat_database"
                                  " WHERE datname = current_database()");
    int64_t v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* The same once the backends that just closed have flushed their counts:
 * a server process reports its statistics at most once a second while it
 * runs, and at exit. */
static int64_t db_commits_settled(bench_db *d)
{
    int64_t prev = db_commits(d);
    for (int i = 0; i < 30; i++) {
        sleep_ms(100);
        int64_t v = db_commits(d);
        if (v == prev && i >= 2)
            break;
        prev = v;
    }
    return prev;
}

/* How much the balances fell in all: N * opening balance - sum.  Returns
 * 0, or an exit code. */
static int db_debited(bench_db *d, const bench_settings *set, int64_t *debited,
                      int64_t *negative)
{
    char total[48];
    snprintf(total, sizeof total, "%lld", (long long)(set->accounts * BENCH_BALANCE));
    const char *p[1] = {total};
    PGresult *res;
    int rc = db_exec(d, "read the balances",
                     "SELECT ($1::numeric - sum(balance))::bigint,"
                     " count(*) FILTER (WHERE balance < 0) FROM accounts",
                     1, p, &res);
    if (rc)
        return rc;
    *debited = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *negative = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

static void db_close(bench_db *d)
{
    if (d->pg && d->schema_made)
        PQclear(PQexec(d->pg, "DROP SCHEMA IF EXISTS " BENCH_SCHEMA " CASCADE"));
    if (d->pg)
        PQfinish(d->pg);
    d->pg = NULL;
    free(d->conninfo);
    free(d->pgbench_conninfo);
    if (d->password)
        memset(d->password, 0, strlen(d->password));
    free(d->password);
    cli_db_close(d->c, &d->db);
}

/* ------------------------------------------------------------------------
 * Child programs (pgbench, gnuplot, pg_config): fork + exec, never a shell.
 * ------------------------------------------------------------------------ */

/* Runs argv with stdout into out (up to len - 1 bytes); returns the exit
 * status, or -1 when it could not run. */
static int capture(char *const argv[], char *out, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    for (;;) {
        char tmp[512];
        ssize_t n = read(fds[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && got + 1 < len; i++)
            out[got++] = tmp[i];
    }
    out[got] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* pgbench: $PGBANK_PGBENCH, else `pg_config --bindir`, else $PATH, else
 * the newest /usr/lib/postgresql/N/bin.  Returns 1 when found. */
static int find_pgbench(char *out, size_t len)
{
    const char *env = getenv("PGBANK_PGBENCH");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return cli_is_executable(out);
    }
    char bindir[4096];
    char *const pgc[] = {"pg_config", "--bindir", NULL};
    if (capture(pgc, bindir, sizeof bindir) == 0) {
        bindir[strcspn(bindir, "\r\n")] = '\0';
        if ((size_t)snprintf(out, len, "%s/pgbench", bindir) < len && cli_is_executable(out))
            return 1;
    }
    if (cli_find_in_path("pgbench", out, len))
        return 1;
    glob_t g;
    int found = 0, best = -1;
    if (glob("/usr/lib/postgresql/*/bin/pgbench", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
            if (v > best && cli_is_executable(g.gl_pathv[i])) {
                best = v;
                snprintf(out, len, "%s", g.gl_pathv[i]);
                found = 1;
            }
        }
        globfree(&g);
    }
    return found;
}

/* ------------------------------------------------------------------------
 * pgbench on the same accounts.
 * ------------------------------------------------------------------------ */

enum { PGB_ONE, PGB_TEN, PGB_COUNT };

static const char *const pgb_names[PGB_COUNT] = {"one_per_commit", "ten_per_commit_pipeline"};
static const int pgb_per_tx[PGB_COUNT] = {1, 10};

typedef struct pgb_result {
    int ran;            /* pgbench produced a throughput */
    char error[512];    /* why not, or what went wrong */
    int duration_s;
    double tps;
    double ops_per_sec; /* withdrawals per second: tps x withdrawals per tx */
    double latency_avg_ms;
    double p50_ms, p99_ms, p999_ms;
    int64_t transactions;
    int64_t failed;          /* failed transactions (deadlocks, ...) */
    int64_t deadlocks;
    int64_t aborted_clients; /* pgbench < 15 aborts a client on an error */
    double cpu_us_per_op;
    double rss_mb;
    int64_t commits;
    int64_t debited;
} pgb_result;

typedef struct pgb_suite {
    int wanted;
    int found;
    char path[4096];
    int major;
    char dir[64]; /* temp dir for scripts and logs */
    pgb_result res[PGB_COUNT];
} pgb_suite;

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* The two scripts: the atomic strategy's statement, one per commit, and
 * ten per commit in one pipeline (ids not in lock order: concurrent
 * transactions can deadlock, which pgbench counts as failures). */
static void pgb_script(int which, const bench_settings *set, char *out, size_t len)
{
    char dist[96];
    if (set->zipf)
        snprintf(dist, sizeof dist, "random_zipfian(1, %lld, %.1f)", (long long)set->accounts,
                 ZIPF_S);
    else
        snprintf(dist, sizeof dist, "random(1, %lld)", (long long)set->accounts);
    static const char update[] =
        "UPDATE accounts SET balance = balance - 1 WHERE id = :id%d AND balance >= 1"
        " RETURNING balance;\n";
    size_t o = 0;
    int n = pgb_per_tx[which];
    for (int i = 1; i <= n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "\\set id%d %s\n", i, dist);
    if (which == PGB_TEN && o < len)
        o += (size_t)snprintf(out + o, len - o, "\\startpipeline\nBEGIN;\n");
    for (int i = 1; i <= n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, update, i);
    if (which == PGB_TEN && o < len)
        snprintf(out + o, len - o, "COMMIT;\n\\endpipeline\n");
}

static void pgb_version(pgb_suite *s)
{
    char out[256];
    char *const argv[] = {s->path, "--version", NULL};
    s->major = 0;
    if (capture(argv, out, sizeof out) == 0) {
        const char *p = strstr(out, ") ");
        s->major = p ? atoi(p + 2) : 0;
    }
}

/* The last non-empty line of a file, for error messages. */
static void last_line(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0])
            snprintf(out, len, "%.*s", (int)(len - 1), line);
    }
    fclose(f);
}

/* pgbench's summary: tps, average latency, transactions, failures. */
static void pgb_parse_summary(pgb_result *r, const char *out_path, const char *err_path)
{
    FILE *f = fopen(out_path, "r");
    char line[1024];
    if (f) {
        while (fgets(line, sizeof line, f)) {
            double d;
            long long v;
            if (sscanf(line, "tps = %lf", &d) == 1) {
                r->tps = d;
                r->ran = 1;
            } else if (sscanf(line, "latency average = %lf", &d) == 1) {
                r->latency_avg_ms = d;
            } else if (sscanf(line, "number of transactions actually processed: %lld", &v) ==
                       1) {
                r->transactions = v;
            } else if (sscanf(line, "number of failed transactions: %lld", &v) == 1) {
                r->failed = v;
            } else if (sscanf(line, "number of deadlock failures: %lld", &v) == 1) {
                r->deadlocks = v;
            }
        }
        fclose(f);
    }
    f = fopen(err_path, "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strstr(line, "aborted"))
                r->aborted_clients++;
        fclose(f);
    }
}

/* Percentiles from pgbench's per-transaction log (--log): one line per
 * transaction, "client tx time_us script epoch us", time_us being a word
 * ("failed", "deadlock", ...) for a transaction that failed. */
static void pgb_parse_logs(pgb_result *r, const char *dir, const char *prefix)
{
    cli_hist *h = calloc(1, sizeof *h);
    DIR *dp = opendir(dir);
    if (!h || !dp) {
        free(h);
        if (dp)
            closedir(dp);
        return;
    }
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0 || e->d_name[plen] != '.')
            continue;
        char path[4096], line[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            long client, tx;
            char time[32];
            if (sscanf(line, "%ld %ld %31s", &client, &tx, time) != 3)
                continue;
            char *end;
            long long us = strtoll(time, &end, 10);
            if (*end == '\0' && us >= 0)
                cli_hist_record(h, (uint64_t)us);
        }
        fclose(f);
    }
    closedir(dp);
    r->p50_ms = cli_hist_percentile_ms(h, 50);
    r->p99_ms = cli_hist_percentile_ms(h, 99);
    r->p999_ms = cli_hist_percentile_ms(h, 99.9);
    free(h);
}

/* Runs pgbench with the script `which`; waits at most its duration plus a
 * minute.  Fills s->res[which]. */
static void pgb_run(bench_db *d, const bench_settings *set, pgb_suite *s, int which)
{
    pgb_result *r = &s->res[which];
    const char *name = pgb_names[which];
    char script[4096], path[4200], out_path[4200], err_path[4200], prefix[4200];
    char c_arg[16], t_arg[16], pf_arg[4300];
    pgb_script(which, set, script, sizeof script);
    snprintf(path, sizeof path, "%s/%s.sql", s->dir, name);
    snprintf(out_path, sizeof out_path, "%s/%s.out", s->dir, name);
    snprintf(err_path, sizeof err_path, "%s/%s.err", s->dir, name);
    snprintf(prefix, sizeof prefix, "%s/%s", s->dir, name);
    if (write_text(path, script) != 0) {
        snprintf(r->error, sizeof r->error, "could not write %.300s: %s", path,
                 strerror(errno));
        return;
    }
    if (which == PGB_TEN && s->major && s->major < 14) {
        snprintf(r->error, sizeof r->error, "pgbench %d has no pipeline mode (needs 14 or "
                 "later): skipped", s->major);
        return;
    }
    /* pgbench -T takes whole seconds. */
    r->duration_s = (int)((set->duration_ns + 999999999) / 1000000000);
    snprintf(c_arg, sizeof c_arg, "%d", set->clients);
    snprintf(t_arg, sizeof t_arg, "%d", r->duration_s);
    snprintf(pf_arg, sizeof pf_arg, "--log-prefix=%s", prefix);
    const char *argv[20];
    int n = 0;
    argv[n++] = s->path;
    argv[n++] = "-n";
    argv[n++] = "-c";
    argv[n++] = c_arg;
    argv[n++] = "-j";
    argv[n++] = "1";
    argv[n++] = "-T";
    argv[n++] = t_arg;
    argv[n++] = "-M";
    argv[n++] = "prepared";
    argv[n++] = "-f";
    argv[n++] = path;
    argv[n++] = "--log";
    argv[n++] = pf_arg;
    if (s->major >= 15)
        argv[n++] = "--failures-detailed";
    argv[n++] = d->pgbench_conninfo;
    argv[n] = NULL;

    int64_t debited0 = 0, debited1 = 0, neg = 0;
    if (db_debited(d, set, &debited0, &neg) != 0)
        debited0 = -1;
    if (db_settle(d) != 0) {
        snprintf(r->error, sizeof r->error, "could not vacuum the accounts before pgbench");
        return;
    }
    int64_t commits0 = db_commits_settled(d);
    fprintf(stderr, "pgbank bench: pgbench %s, %d clients, %d s...\n", name, set->clients,
            r->duration_s);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "could not start pgbench: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        if (d->password)
            setenv("PGPASSWORD", d->password, 1);
        execv(s->path, (char *const *)argv);
        _exit(127);
    }
    struct rusage ru;
    int status = 0;
    int64_t limit = now_ns() + (int64_t)(r->duration_s + 60) * 1000000000;
    int killed = 0;
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &ru);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            memset(&ru, 0, sizeof ru);
            break;
        }
        if (now_ns() > limit && killed < 2) {
            kill(pid, killed ? SIGKILL : SIGTERM);
            killed++;
            limit = now_ns() + 5000000000LL;
        }
        sleep_ms(20);
    }
    pgb_parse_summary(r, out_path, err_path);
    pgb_parse_logs(r, s->dir, name);
    r->commits = db_commits_settled(d);
    r->commits = commits0 >= 0 && r->commits >= 0 ? r->commits - commits0 : -1;
    if (debited0 >= 0 && db_debited(d, set, &debited1, &neg) == 0)
        r->debited = debited1 - debited0;
    r->ops_per_sec = r->tps * pgb_per_tx[which];
    int64_t ops = r->transactions * pgb_per_tx[which];
    r->cpu_us_per_op = ops ? cpu_us(&ru) / (double)ops : 0;
    r->rss_mb = (double)ru.ru_maxrss / 1024.0;
    char why[300];
    last_line(err_path, why, sizeof why);
    if (killed)
        snprintf(r->error, sizeof r->error, "pgbench did not finish in time and was stopped");
    else if (!r->ran)
        snprintf(r->error, sizeof r->error, "pgbench failed (exit %d)%s%s",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, why[0] ? ": " : "", why);
    else if (r->aborted_clients)
        snprintf(r->error, sizeof r->error, "%lld pgbench clients aborted: %s",
                 (long long)r->aborted_clients, why);
    cli_scrub(d->c, r->error, sizeof r->error);
}

static void remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        char path[4200];
        while ((e = readdir(dp)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

static void pgb_suite_run(bench_db *d, const bench_settings *set, pgb_suite *s)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(s->dir, sizeof s->dir, "%s/pgbank-bench.XXXXXX", tmp);
    if (!mkdtemp(s->dir)) {
        for (int i = 0; i < PGB_COUNT; i++)
            snprintf(s->res[i].error, sizeof s->res[i].error,
                     "could not create a temporary directory: %s", strerror(errno));
        return;
    }
    pgb_version(s);
    for (int i = 0; i < PGB_COUNT; i++)
        pgb_run(d, set, s, i);
    remove_dir(s->dir);
}

/* ------------------------------------------------------------------------
 * The plot: throughput and p50/p99 per second (cli/plot.h runs gnuplot).
 * ------------------------------------------------------------------------ */

static int plot_write(const char *gnuplot, const char *file, const bench_settings *set,
                      const bench_run *r, const pgb_suite *s, char *err, size_t errlen)
{
    cli_plot p;
    if (cli_plot_begin(&p, gnuplot, err, errlen) != 0)
        return -1;
    FILE *f = p.script;
    fputs(CLI_PLOT_TERMINAL(1100, 800) "$D << EOD\n", f);
    for (size_t i = 0; i < r->nsec; i++)
        fprintf(f, "%.3f %.1f %.3f %.3f\n", r->timeline[i].t_s, r->timeline[i].ops_per_sec,
                r->timeline[i].p50_ms, r->timeline[i].p99_ms);
    fprintf(f, "EOD\n"
               "set multiplot layout 2,1 title 'pgbank bench: %s, %d clients x depth %d, "
               "%lld account%s (%s), %.1f s'\n"
               "set grid\n"
               "set key outside right center\n"
               "set lmargin at screen 0.08\n"
               "set rmargin at screen 0.66\n"
               "set xrange [0:*]\n"
               "set xlabel 'seconds'\n"
               "set ylabel 'withdrawals/s'\n"
               "set yrange [0:*]\n"
               "set format y '%%.0f'\n",
            pgbank_strategy_name(set->strategy), set->clients, set->depth,
            (long long)set->accounts, set->accounts == 1 ? "" : "s",
            set->zipf ? "zipf" : "uniform", secs(set->duration_ns));
    fprintf(f, "plot $D using 1:2 with linespoints lw 2 pt 7 title 'pgbank %s (%.0f/s)'",
            pgbank_strategy_name(set->strategy), run_ops_per_sec(r));
    for (int i = 0; s && s->wanted && i < PGB_COUNT; i++)
        if (s->res[i].ran)
            fprintf(f, ", %.1f with lines dt 2 lw 2 title 'pgbench %s (%.0f/s)'",
                    s->res[i].ops_per_sec, pgb_names[i], s->res[i].ops_per_sec);
    fprintf(f, "\n"
               "set ylabel 'latency (ms)'\n"
               "set logscale y\n"
               "set yrange [*:*]\n"
               "set format y '%%g'\n"
               "plot $D using 1:3 with linespoints lw 2 pt 7 title 'p50', "
               "$D using 1:4 with linespoints lw 2 pt 5 title 'p99'\n"
               "unset multiplot\n");
    return cli_plot_end(&p, file, err, errlen);
}

/* ------------------------------------------------------------------------
 * Reporting.
 * ------------------------------------------------------------------------ */

typedef struct bench_report {
    const bench_settings *set;
    const bench_run *r;
    const pgb_suite *pgb;
    const char *where;
    int64_t commits; /* -1: unknown */
    int64_t debited;
    int64_t negative;
    int money_ok;
    int64_t setup_ns;
} bench_report;

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* A number, or null when not finite (a ratio to nothing). */
static void json_num(const char *fmt, double v)
{
    if (isfinite(v))
        printf(fmt, v);
    else
        fputs("null", stdout);
}

static double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

static double ops_per_commit(int64_t ops, int64_t commits)
{
    return commits > 0 ? (double)ops / (double)commits : NAN;
}

static void print_json(const bench_report *rep)
{
    const bench_settings *set = rep->set;
    const bench_run *r = rep->r;
    const cli_hist *h = &r->total;
    printf("{\"strategy\":\"%s\",\"safe\":%s,\"clients\":%d,\"depth\":%d,"
           "\"in_flight\":%d,\"connections\":%d,\"accounts\":%lld,\"distribution\":\"%s\","
           "\"journal\":%s,\"duration_s\":%.3f,\"elapsed_s\":%.3f,\"setup_s\":%.3f,"
           "\"ops\":%lld,\"ops_per_sec\":%.1f,",
           pgbank_strategy_name(set->strategy),
           pgbank_strategy_is_safe(set->strategy) ? "true" : "false", set->clients,
           set->depth, set->clients * set->depth, set->connections,
           (long long)set->accounts, set->zipf ? "zipf" : "uniform",
           set->journal ? "true" : "false", secs(set->duration_ns),
           secs(r->end_ns - r->start_ns), secs(rep->setup_ns), (long long)r->ok,
           run_ops_per_sec(r));
    printf("\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
           "\"max_ms\":%.3f,\"mean_ms\":%.3f,\"client_cpu_us_per_op\":%.3f,"
           "\"peak_rss_mb\":%.1f,\"failures\":%lld,\"stopped_slots\":%d,"
           "\"failures_by_status\":{",
           cli_hist_percentile_ms(h, 50), cli_hist_percentile_ms(h, 90),
           cli_hist_percentile_ms(h, 99), cli_hist_percentile_ms(h, 99.9),
           (double)h->max_us / 1000.0, cli_hist_mean_ms(h), r->cpu_us_per_op, r->rss_mb,
           (long long)r->failures, r->stopped_slots);
    int first = 1;
    for (int i = 0; i < PGBANK__STATUS_COUNT; i++) {
        if (!r->by_status[i])
            continue;
        printf("%s\"%s\":%lld", first ? "" : ",", pgbank_status_name((pgbank_status)i),
               (long long)r->by_status[i]);
        first = 0;
    }
    if (r->not_submitted)
        printf("%s\"not submitted\":%lld", first ? "" : ",", (long long)r->not_submitted);
    printf("},\"server_commits\":");
    if (rep->commits >= 0)
        printf("%lld", (long long)rep->commits);
    else
        fputs("null", stdout);
    printf(",\"ops_per_commit\":");
    json_num("%.2f", ops_per_commit(r->ok, rep->commits));
    printf(",\"debited\":%lld,\"money_check\":\"%s\"", (long long)rep->debited,
           rep->money_ok ? "ok" : "failed");
    const pgb_suite *s = rep->pgb;
    if (s->wanted && !s->found) {
        printf(",\"pgbench\":{\"found\":false,\"message\":\"pgbench not found\"}");
    } else if (s->wanted) {
        printf(",\"pgbench\":{\"found\":true,\"path\":");
        json_string(s->path);
        for (int i = 0; i < PGB_COUNT; i++) {
            const pgb_result *p = &s->res[i];
            printf(",\"%s\":{\"ran\":%s,\"ops_per_sec\":", pgb_names[i],
                   p->ran ? "true" : "false");
            json_num("%.1f", p->ran ? p->ops_per_sec : NAN);
            printf(",\"tps\":");
            json_num("%.1f", p->ran ? p->tps : NAN);
            printf(",\"p50_ms\":");
            json_num("%.3f", p->ran ? p->p50_ms : NAN);
            printf(",\"p99_ms\":");
            json_num("%.3f", p->ran ? p->p99_ms : NAN);
            printf(",\"p999_ms\":");
            json_num("%.3f", p->ran ? p->p999_ms : NAN);
            printf(",\"latency_avg_ms\":");
            json_num("%.3f", p->ran ? p->latency_avg_ms : NAN);
            printf(",\"duration_s\":%d,\"transactions\":%lld,\"withdrawals_per_tx\":%d,"
                   "\"failures\":%lld,\"deadlocks\":%lld,\"aborted_clients\":%lld,"
                   "\"client_cpu_us_per_op\":",
                   p->duration_s, (long long)p->transactions, pgb_per_tx[i],
                   (long long)p->failed, (long long)p->deadlocks,
                   (long long)p->aborted_clients);
            json_num("%.3f", p->ran ? p->cpu_us_per_op : NAN);
            printf(",\"peak_rss_mb\":%.1f,\"server_commits\":", p->rss_mb);
            if (p->ran && p->commits >= 0)
                printf("%lld", (long long)p->commits);
            else
                fputs("null", stdout);
            printf(",\"ops_per_commit\":");
            json_num("%.2f", p->ran ? ops_per_commit(p->transactions * pgb_per_tx[i],
                                                     p->commits)
                                    : NAN);
            printf(",\"debited\":%lld", (long long)p->debited);
            if (p->error[0]) {
                printf(",\"error\":");
                json_string(p->error);
            }
            printf("}");
        }
        printf("}");
        double mine = run_ops_per_sec(r);
        printf(",\"ratio_vs_one_per_commit\":");
        json_num("%.2f", s->res[PGB_ONE].ran ? ratio(mine, s->res[PGB_ONE].ops_per_sec) : NAN);
        printf(",\"ratio_vs_ten_per_commit_pipeline\":");
        json_num("%.2f", s->res[PGB_TEN].ran ? ratio(mine, s->res[PGB_TEN].ops_per_sec) : NAN);
    }
    if (r->first_failure[0]) {
        printf(",\"first_failure\":");
        json_string(r->first_failure);
    }
    printf("}\n");
    fflush(stdout);
}

static void print_text(const bench_report *rep)
{
    const bench_settings *set = rep->set;
    const bench_run *r = rep->r;
    const cli_hist *h = &r->total;
    printf("pgbank bench: %s, %d client%s x depth %d (%d in flight), %d connection%s, "
           "%lld account%s (%s), %.1f s, on %s\n",
           pgbank_strategy_name(set->strategy), set->clients, set->clients == 1 ? "" : "s",
           set->depth, set->clients * set->depth, set->connections,
           set->connections == 1 ? "" : "s", (long long)set->accounts,
           set->accounts == 1 ? "" : "s", set->zipf ? "zipf s=1.1" : "uniform",
           secs(set->duration_ns), rep->where);
    printf("  withdrawals     %lld ok, %lld failed\n", (long long)r->ok,
           (long long)r->failures);
    printf("  throughput      %.1f withdrawals/s\n", run_ops_per_sec(r));
    printf("  latency (ms)    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
           cli_hist_percentile_ms(h, 50), cli_hist_percentile_ms(h, 90),
           cli_hist_percentile_ms(h, 99), cli_hist_percentile_ms(h, 99.9),
           (double)h->max_us / 1000.0);
    printf("  client CPU      %.2f us per withdrawal (user+sys of this process)\n",
           r->cpu_us_per_op);
    printf("  peak RSS        %.1f MB\n", r->rss_mb);
    if (rep->commits >= 0)
        printf("  server commits  %lld (%.2f withdrawals per commit)\n",
               (long long)rep->commits, ops_per_commit(r->ok, rep->commits));
    else
        printf("  server commits  unknown (pg_stat_database not readable)\n");
    for (int i = 0; i < PGBANK__STATUS_COUNT; i++)
        if (r->by_status[i])
            printf("  %-15s %lld\n", pgbank_status_name((pgbank_status)i),
                   (long long)r->by_status[i]);
    if (r->not_submitted)
        printf("  not submitted   %lld\n", (long long)r->not_submitted);
    if (rep->money_ok)
        printf("money check: ok (the balances fell by %lld, the withdrawals reported ok)\n",
               (long long)rep->debited);
    else
        printf("money check: FAILED (the balances fell by %lld, the withdrawals reported ok "
               "are %lld%s)\n", (long long)rep->debited, (long long)r->ok,
               rep->negative ? "; some balances are negative" : "");
    const pgb_suite *s = rep->pgb;
    if (!s->wanted)
        return;
    if (!s->found) {
        printf("\npgbench: not found (skipped)\n");
        return;
    }
    printf("\npgbench (%s), same server and accounts, %d clients, -j 1, -M prepared:\n",
           s->path, set->clients);
    for (int i = 0; i < PGB_COUNT; i++) {
        const pgb_result *p = &s->res[i];
        if (!p->ran) {
            printf("  %-24s  %s\n", pgb_names[i], p->error);
            continue;
        }
        printf("  %-24s  %10.1f withdrawals/s  p50 %.3f ms  p99 %.3f ms  client CPU %.2f "
               "us/withdrawal  %.2f per commit  failures %lld\n",
               pgb_names[i], p->ops_per_sec, p->p50_ms, p->p99_ms, p->cpu_us_per_op,
               ops_per_commit(p->transactions * pgb_per_tx[i], p->commits),
               (long long)(p->failed + p->aborted_clients));
        if (p->error[0])
            printf("  %-24s  (%s)\n", "", p->error);
    }
    double mine = run_ops_per_sec(r);
    for (int i = 0; i < PGB_COUNT; i++)
        if (s->res[i].ran)
            printf("  pgbank %s / pgbench %s: %.2fx\n", pgbank_strategy_name(set->strategy),
                   pgb_names[i], ratio(mine, s->res[i].ops_per_sec));
}

/* ------------------------------------------------------------------------
 * Options.
 * ------------------------------------------------------------------------ */

static int parse_settings(cli *c, int argc, char **argv, bench_settings *set)
{
    const char *strategy = "atomic", *clients = "16", *depth = NULL, *accounts = "10000";
    const char *distribution = "uniform", *connections = NULL, *batch_max = NULL;
    const char *batch_inflight = NULL;
    memset(set, 0, sizeof *set);
    set->duration_arg = "10";
    const cli_opt opts[] = {
        {"strategy", &strategy, NULL},
        {"clients", &clients, NULL},
        {"duration", &set->duration_arg, NULL},
        {"accounts", &accounts, NULL},
        {"distribution", &distribution, NULL},
        {"depth", &depth, NULL},
        {"connections", &connections, NULL},
        {"batch-max", &batch_max, NULL},
        {"batch-inflight", &batch_inflight, NULL},
        {"plot", &set->plot, NULL},
        {"vs-pgbench", NULL, &set->vs_pgbench},
        {"journal", NULL, &set->journal},
        {NULL, NULL, NULL}};
    int npos, rc = cli_parse(c, argc, argv, opts, NULL, 0, &npos);
    if (rc)
        return rc;
    if (pgbank_strategy_parse(strategy, &set->strategy) != 0) {
        char known[256] = "";
        for (int i = 0; i < PGBANK_STRATEGY_COUNT; i++) {
            const char *k = pgbank_strategy_name((pgbank_strategy)i);
            size_t used = strlen(known);
            if (k)
                snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", k);
        }
        return cli_usage_error(c, "unknown strategy '%s' (known: %s)", strategy, known);
    }
    if (strcmp(distribution, "zipf") == 0)
        set->zipf = 1;
    else if (strcmp(distribution, "uniform") != 0)
        return cli_usage_error(c, "unknown distribution '%s': uniform or zipf",
                               distribution);
    int64_t v = 0;
    if ((rc = cli_parse_range(c, "--clients", clients, 1, MAX_CLIENTS, &v)) != 0)
        return rc;
    set->clients = (int)v;
    /* batch exists for many operations waiting at once: with one per client
     * it would only ever send batches of one.  Its clients keep 64 each in
     * flight unless told otherwise; every other strategy is a closed loop. */
    if (!depth)
        depth = set->strategy == PGBANK_BATCH ? "64" : "1";
    if ((rc = cli_parse_range(c, "--depth", depth, 1, MAX_DEPTH, &v)) != 0)
        return rc;
    set->depth = (int)v;
    if ((rc = cli_parse_range(c, "--accounts", accounts, 1, MAX_ACCOUNTS, &set->accounts)) != 0)
        return rc;
    set->connections = set->clients;
    if (connections) {
        if ((rc = cli_parse_range(c, "--connections", connections, 1, MAX_CLIENTS, &v)) != 0)
            return rc;
        set->connections = (int)v;
    }
    if (batch_max) {
        if ((rc = cli_parse_range(c, "--batch-max", batch_max, 1, 1000000, &v)) != 0)
            return rc;
        set->batch_max = (int)v;
    }
    if (batch_inflight) {
        if ((rc = cli_parse_range(c, "--batch-inflight", batch_inflight, 1, MAX_CLIENTS, &v)) != 0)
            return rc;
        set->batch_inflight = (int)v;
    }
    if ((int64_t)set->clients * set->depth > MAX_INFLIGHT)
        return cli_usage_error(c, "--clients x --depth is %lld: at most %d withdrawals may "
                               "be in flight", (long long)set->clients * set->depth,
                               MAX_INFLIGHT);
    if (set->plot && !set->plot[0])
        return cli_usage_error(c, "--plot needs a file name");
    return cli_parse_seconds(c, "--duration", set->duration_arg, 86400, &set->duration_ns);
}

/* ------------------------------------------------------------------------
 * The command.
 * ------------------------------------------------------------------------ */

/* The engine: `connections` connections (pipeline depth D for the
 * single-statement strategies), all open before the clock starts. */
static int open_engine(cli *c, bench_db *d, const bench_settings *set, pgbank_engine **out)
{
    pgbank_options opt;
    cli_engine_options_for(c, d->conninfo, &opt); /* --echo, --unnamed-statements */
    opt.connections = set->connections;
    opt.pipeline_depth = set->depth;
    if (set->batch_max)
        opt.batch_max = set->batch_max;
    if (set->batch_inflight)
        opt.batch_inflight = set->batch_inflight;
    char err[1024] = "";
    int rc = pgbank_engine_new(out, &opt, err, sizeof err);
    if (rc)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the engine: %s",
                         err[0] ? err : pgbank_strerror(rc));
    rc = pgbank_engine_wait_connected(*out, CONNECT_MS);
    if (rc) {
        const char *why = pgbank_engine_error(*out);
        return cli_error(c, CLI_EXIT_FAILURE, "could not open %d connections to %s: %s",
                         set->connections, d->db.where, why[0] ? why : pgbank_strerror(rc));
    }
    return 0;
}

static int run_bench(cli *c, int argc, char **argv)
{
    bench_settings set;
    int rc = parse_settings(c, argc, argv, &set);
    if (rc)
        return rc;
    char gnuplot[CLI_PATH_MAX] = "";
    if (set.plot && (rc = cli_plot_check(c, set.plot, gnuplot, sizeof gnuplot)) != 0)
        return rc;
    if (!pgbank_strategy_is_safe(set.strategy))
        fprintf(stderr, "pgbank bench: WARNING: %s is UNSAFE FOR MONEY (lost updates at READ "
                "COMMITTED); measured for comparison only, and the money check will likely "
                "fail\n", pgbank_strategy_name(set.strategy));

    bench_db d;
    memset(&d, 0, sizeof d);
    d.c = c;
    bench_run *r = calloc(1, sizeof *r);
    pgb_suite *pgb = calloc(1, sizeof *pgb);
    if (!r || !pgb) {
        free(r);
        free(pgb);
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    }
    r->set = &set;
    pgb->wanted = set.vs_pgbench;
    bench_report rep;
    memset(&rep, 0, sizeof rep);
    rep.set = &set;
    rep.r = r;
    rep.pgb = pgb;
    rep.commits = -1;

    char err[1024];
    if ((rc = cli_db_resolve(c, &d.db, 0)) != 0)
        goto out;
    rep.where = d.db.where;
    if (!(d.conninfo = bench_conninfo(d.db.conninfo, NULL, err, sizeof err)) ||
        !(d.pgbench_conninfo = bench_conninfo(d.db.conninfo, &d.password, err, sizeof err))) {
        rc = cli_error(c, CLI_EXIT_USAGE, "invalid connection string: %s", err);
        goto out;
    }
    if ((rc = db_connect(&d)) != 0)
        goto out;
    fprintf(stderr, "pgbank bench: setting up %lld account%s in schema " BENCH_SCHEMA "...\n",
            (long long)set.accounts, set.accounts == 1 ? "" : "s");
    int64_t t0 = now_ns();
    if ((rc = db_setup(&d, &set)) != 0)
        goto out;
    rep.setup_ns = now_ns() - t0;
    fprintf(stderr, "pgbank bench: %lld account%s ready in %.1f s; %s, %d clients x depth %d, "
            "%d connections, %s s\n", (long long)set.accounts, set.accounts == 1 ? "" : "s",
            secs(rep.setup_ns),
            pgbank_strategy_name(set.strategy), set.clients, set.depth, set.connections,
            set.duration_arg);

    r->nslots = set.clients * set.depth;
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    if (!r->slots) {
        rc = cli_error(c, CLI_EXIT_FAILURE, "out of memory");
        goto out;
    }
    r->rng = (uint64_t)now_ns() | 1;
    if (set.zipf)
        zipf_init(&r->z, set.accounts, ZIPF_S);
    for (int i = 0; i < r->nslots; i++) {
        bench_slot *s = &r->slots[i];
        pgbank_op_init(&s->op, PGBANK_OP_WITHDRAW);
        s->op.strategy = set.strategy;
        s->op.amount = 1;
        s->op.done = bench_done;
        s->op.user_data = s;
        s->run = r;
    }
    if ((rc = db_settle(&d)) != 0 || (rc = open_engine(c, &d, &set, &r->eng)) != 0)
        goto out;
    int64_t commits0 = db_commits_settled(&d);
    rc = run_measure(c, r);
    /* Closing the connections ends their server processes, which flushes
     * their statistics. */
    pgbank_engine_free(r->eng);
    r->eng = NULL;
    if (rc)
        goto out;
    int64_t commits1 = db_commits_settled(&d);
    rep.commits = commits0 >= 0 && commits1 >= 0 ? commits1 - commits0 : -1;
    if ((rc = db_debited(&d, &set, &rep.debited, &rep.negative)) != 0)
        goto out;
    /* An unknown outcome may or may not have been applied. */
    rep.money_ok = rep.negative == 0 && rep.debited >= r->ok &&
                   rep.debited <= r->ok + r->unknown;
    if (pgb->wanted) {
        pgb->found = find_pgbench(pgb->path, sizeof pgb->path);
        if (pgb->found)
            pgb_suite_run(&d, &set, pgb);
        else
            fprintf(stderr, "pgbank bench: pgbench not found (looked at $PGBANK_PGBENCH, "
                            "pg_config --bindir, $PATH, /usr/lib/postgresql/*/bin): install "
                            "it (Debian/Ubuntu: the postgresql or postgresql-client "
                            "package); measuring pgbank alone\n");
    }
    if (c->json)
        print_json(&rep);
    else
        print_text(&rep);
    if (r->first_failure[0])
        cli_error(c, 0, "%lld withdrawals failed (first: %s)", (long long)r->failures,
                  r->first_failure);
    if (r->stopped_slots)
        cli_error(c, 0, "%d of the %d withdrawals kept in flight stopped after a database "
                  "failure (as a pgbench client aborts)", r->stopped_slots, r->nslots);
    if (!rep.money_ok) {
        cli_error(c, 0, "money check failed: the balances fell by %lld but %lld withdrawals "
                  "were reported ok%s", (long long)rep.debited, (long long)r->ok,
                  pgbank_strategy_is_safe(set.strategy)
                      ? ": this is a pgbank bug"
                      : " (expected of an unsafe strategy)");
        rc = CLI_EXIT_REFUSED;
    } else if (r->db_failures) {
        rc = CLI_EXIT_FAILURE;
    }
    if (set.plot) {
        err[0] = '\0';
        if (plot_write(gnuplot, set.plot, &set, r, pgb, err, sizeof err) != 0) {
            cli_error(c, 0, "could not draw the plot: %s", err);
            if (!rc)
                rc = CLI_EXIT_FAILURE;
        } else {
            fprintf(stderr, "pgbank bench: plot written to %s\n", set.plot);
        }
    }
out:
    if (r->eng)
        pgbank_engine_free(r->eng);
    db_close(&d);
    free(r->slots);
    free(r->timeline);
    free(r);
    free(pgb);
    return rc;
}

const cli_command cli_cmd_bench = {
    "bench", "measure a strategy's throughput and latency, side by side with pgbench",
    "Usage: pgbank bench [--strategy S] [--clients C] [--duration T] [--accounts N]\n"
    "                    [--distribution uniform|zipf] [--depth D] [--connections K]\n"
    "                    [--vs-pgbench] [--plot FILE.png] [--journal] [--json]\n"
    "\n"
    "Measures what withdrawing costs with strategy S on your own server.  The\n"
    "schema pgbank_bench is created afresh (your tables are not touched) with\n"
    "N accounts holding 10^11 each; C clients each keep D withdrawals of 1\n"
    "outstanding for T seconds, on accounts picked uniformly or by Zipf's law\n"
    "(s = 1.1: account 1 is the hottest).  One engine, one thread.  The schema\n"
    "is dropped at the end.\n"
    "\n"
    "Options:\n"
    "  --strategy S        explicit, begin, for-update, atomic (default),\n"
    "                      serializable or batch; explicit and begin are UNSAFE\n"
    "                      FOR MONEY and measured for comparison only\n"
    "  --clients C         clients (default 16, 1 to 1024)\n"
    "  --duration T        seconds of measurement (default 10; fractions allowed)\n"
    "  --accounts N        accounts (default 10000, 1 to 10000000; 1 is a single\n"
    "                      hot account)\n"
    "  --distribution X    uniform (default) or zipf\n"
    "  --depth D           withdrawals each client keeps in flight (default 1: a\n"
    "                      closed loop, like a pgbench client; 64 for batch, which\n"
    "                      needs operations waiting to group).  C x D withdrawals\n"
    "                      are outstanding at any time; atomic pipelines up to D\n"
    "                      of them on one connection, batch groups them into\n"
    "                      batches; the multi-statement strategies queue them\n"
    "  --connections K     the engine's pool (default C)\n"
    "  --batch-max M, --batch-inflight B\n"
    "                      batch: operations per batch, batches in flight\n"
    "                      (default: the library's)\n"
    "  --vs-pgbench        then run pgbench on the same server and accounts, same\n"
    "                      clients and duration (-j 1, -M prepared), with two\n"
    "                      scripts doing the same withdrawal:\n"
    "                        one_per_commit: one UPDATE ... WHERE balance >= 1\n"
    "                          RETURNING balance per transaction\n"
    "                        ten_per_commit_pipeline: ten of them in BEGIN..COMMIT\n"
    "                          inside \\startpipeline..\\endpipeline (ids not in\n"
    "                          lock order: deadlocks are counted as failures)\n"
    "                      and print the ratios.  pgbench is looked for in\n"
    "                      $PGBANK_PGBENCH, pg_config --bindir, $PATH and\n"
    "                      /usr/lib/postgresql/*/bin\n"
    "  --plot FILE.png     draw throughput and p50/p99 latency per second with\n"
    "                      gnuplot (gnuplot-nox; or $PGBANK_GNUPLOT)\n"
    "  --journal           keep pgbank's journal (one more row written per\n"
    "                      withdrawal); by default the bench schema has none, so\n"
    "                      pgbank and pgbench run the same SQL (every strategy,\n"
    "                      batch included)\n"
    "  --json              one object: strategy, clients, depth, accounts,\n"
    "                      duration_s, ops, ops_per_sec, p50_ms, p90_ms, p99_ms,\n"
    "                      p999_ms, client_cpu_us_per_op, peak_rss_mb, failures,\n"
    "                      server_commits, ops_per_commit, money_check, and with\n"
    "                      --vs-pgbench \"pgbench\":{\"one_per_commit\":{...},\n"
    "                      \"ten_per_commit_pipeline\":{...}} and the ratios\n"
    "\n"
    "A line per second goes to stderr (ops/s, p50, p99, failures).  The report\n"
    "gives withdrawals/s, latency percentiles from a log-linear histogram\n"
    "(1.6% resolution), the client's CPU per withdrawal (user + sys of this\n"
    "process / withdrawals), its peak RSS, and the server's commits\n"
    "(pg_stat_database) so withdrawals per commit show.  Then the money check:\n"
    "the balances must have fallen by exactly the withdrawals reported ok.\n"
    "\n"
    "Exit codes: 0 measured and the money check held; 1 the money check\n"
    "failed; 2 bad usage (or --plot without gnuplot), nothing was run;\n"
    "3 database failure, or withdrawals that failed in the database.\n"
    "\n"
    "Examples:\n"
    "  pgbank bench\n"
    "  pgbank bench --strategy atomic --clients 16 --duration 10 --accounts 10000 "
    "--vs-pgbench\n"
    "  pgbank bench --strategy for-update --clients 64 --accounts 1\n"
    "  pgbank bench --strategy batch --clients 16 --depth 64 --distribution zipf\n"
    "  pgbank bench --json --duration 30 --plot bench.png\n",
    run_bench,
};
