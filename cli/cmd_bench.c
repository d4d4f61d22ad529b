/*
 * cmd_bench.c - `pgbank bench`: what a strategy costs, measured on the
 * user's own server, side by side with pgbench running the same SQL on the
 * same accounts in the same run.
 *
 * One run:
 *   1. setup: a schema of the run's own (pgbank_bench_<n>, lab/schema.c:
 *      the user's tables are never touched, the schema is dropped at the
 *      end) holds pgbank's tables and N accounts (pgbank_accounts_load():
 *      10 million in well under a minute), each holding 10^11 so a
 *      withdrawal of 1 is never refused.  pgbank's journal is kept, as in a
 *      real bank; --no-journal leaves it out (pgbank_schema_options.journal),
 *      so that pgbank runs the SQL pgbench runs.
 *   2. measure: one engine, one thread, the built-in loop, the lab's load
 *      (lab/load.c): C clients each keep D withdrawals of 1 outstanding (a
 *      closed loop: a completion submits the next withdrawal at once), on
 *      accounts drawn uniformly or from a Zipf distribution.  Every
 *      completion is timed into a log-linear histogram; a line per second
 *      goes to stderr.
 *   3. check: the sum of the balances fell by exactly the withdrawals
 *      reported ok ("money check: ok"), else exit 1.
 *   4. --vs-pgbench: pgbench runs two equivalent scripts on the same
 *      accounts, for the same time and clients, one thread (lab/pgbench.c).
 * Every measured phase starts after VACUUM and CHECKPOINT (lab_settle), so
 * none pays for another's dead rows or full-page writes.
 */
#include "cli.h"
#include "hist.h"
#include "internal.h"
#include "lab/lab.h"
#include "lab/pgbench.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
/* Session advisory lock: one benchmark at a time per database, so that
 * none measures another's load. */
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
    int lanes; /* 0: the engine's default */
    const char *plot;
} bench_settings;

static double secs(int64_t ns) { return (double)ns / 1e9; }

/* ------------------------------------------------------------------------
 * The measurement: the lab's load with bench's hooks.
 * ------------------------------------------------------------------------ */

typedef struct bench_second {
    double t_s;         /* end of the interval, seconds since the start */
    double ops_per_sec; /* ok withdrawals per second in the interval */
    double p50_ms, p99_ms;
    int64_t failures;
} bench_second;

typedef struct bench_run {
    const bench_settings *set;
    lab_load load;
    lab_tally tally;
    uint64_t rng;
    lab_zipf z;
    int stopped_slots; /* slots that stopped on a database failure */
    int64_t end_ns;    /* the last answer */
    bench_second *timeline;
    size_t nsec, capsec;
    int nomem;
    /* Client cost. */
    double cpu_us_per_op;
    double rss_mb;
    pgbank_engine_stats stats; /* the engine's counters at the end */
} bench_run;

static int64_t run_ok(const bench_run *r) { return r->tally.by_status[PGBANK_OK]; }

static double run_ops_per_sec(const bench_run *r)
{
    return lab_per_sec(run_ok(r), r->end_ns - r->load.start_ns);
}

static int bench_next(lab_load *L, lab_client *cl)
{
    bench_run *r = L->arg;
    cl->op.account = r->set->zipf ? lab_zipf_draw(&r->z, &r->rng)
                                  : 1 + (int64_t)pgbank__rand_below(
                                            &r->rng, (uint64_t)r->set->accounts);
    return 0;
}

static int bench_done(lab_load *L, lab_client *cl, int64_t now)
{
    bench_run *r = L->arg;
    (void)now;
    pgbank_status st = cl->op.result.status;
    if (st == PGBANK_DB_ERROR || st == PGBANK_UNKNOWN_OUTCOME || st == PGBANK_SHUT_DOWN) {
        /* Like a pgbench client on an error, this slot stops: a broken
         * setup ends the run at once instead of spinning on errors. */
        r->stopped_slots++;
        return LAB_STOP;
    }
    return LAB_NEXT;
}

/* Closes the second that ends now: one timeline row, one stderr line. */
static void bench_tick(lab_load *L, int64_t now)
{
    bench_run *r = L->arg;
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
    row->t_s = secs(now - L->start_ns);
    row->ops_per_sec = lab_per_sec(L->iv_ok, now - L->iv_start_ns);
    row->p50_ms = cli_hist_percentile_ms(&L->iv_hist, 50);
    row->p99_ms = cli_hist_percentile_ms(&L->iv_hist, 99);
    row->failures = L->iv_failures;
    fprintf(stderr, "pgbank bench: %5.1f s  %10.0f ops/s  p50 %.3f ms  p99 %.3f ms  "
            "failures %lld\n", row->t_s, row->ops_per_sec, row->p50_ms, row->p99_ms,
            (long long)row->failures);
}

static const lab_hooks bench_hooks = {bench_next, bench_done, NULL, bench_tick, NULL};

static double cpu_us(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec * 1e6 + (double)ru->ru_utime.tv_usec +
           (double)ru->ru_stime.tv_sec * 1e6 + (double)ru->ru_stime.tv_usec;
}

/* Runs the closed loop until the deadline, then lets what is in flight
 * finish.  Returns 0, or an exit code after a message. */
static int run_measure(cli *c, bench_run *r)
{
    lab_load *L = &r->load;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int rc = lab_load_run(L);
    getrusage(RUSAGE_SELF, &ru1);
    r->end_ns = L->last_done_ns ? L->last_done_ns : L->end_ns;
    if (rc == LAB_TIMED_OUT)
        return cli_error(c, CLI_EXIT_FAILURE, "%zu withdrawals were still unanswered "
                         "%d s after the end of the run", pgbank_engine_pending(L->eng),
                         DRAIN_MS / 1000);
    if (rc != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "the engine's loop failed: %s",
                         pgbank_strerror(rc));
    if (r->nomem)
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    r->cpu_us_per_op = run_ok(r) ? (cpu_us(&ru1) - cpu_us(&ru0)) / (double)run_ok(r) : 0;
    r->rss_mb = (double)ru1.ru_maxrss / 1024.0; /* Linux: kilobytes */
    return 0;
}

/* ------------------------------------------------------------------------
 * The plot: throughput and p50/p99 per second (cli/plot.h runs gnuplot).
 * ------------------------------------------------------------------------ */

static int plot_write(const char *gnuplot, const char *file, const bench_settings *set,
                      const bench_run *r, const lab_pgbench *s, char *err, size_t errlen)
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
    for (int i = 0; s && s->wanted && i < LAB_PGB_COUNT; i++)
        if (s->res[i].ran)
            fprintf(f, ", %.1f with lines dt 2 lw 2 title 'pgbench %s (%.0f/s)'",
                    s->res[i].ops_per_sec, lab_pgb_names[i], s->res[i].ops_per_sec);
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
    const lab_pgbench *pgb;
    const char *where;
    int64_t commits; /* -1: unknown */
    int64_t debited;
    int64_t negative;
    int money_ok;
    int64_t setup_ns;
} bench_report;

static double ops_per_commit(int64_t ops, int64_t commits)
{
    return commits > 0 ? (double)ops / (double)commits : NAN;
}

/* Slots that stopped: after a database failure, or never submitted. */
static int64_t stopped_slots(const bench_run *r)
{
    return r->stopped_slots + r->tally.not_submitted;
}

static void print_json(const bench_report *rep)
{
    const bench_settings *set = rep->set;
    const bench_run *r = rep->r;
    const cli_hist *h = &r->tally.hist;
    cli_json j, by;
    cli_json_begin(&j);
    cli_json_str(&j, "strategy", pgbank_strategy_name(set->strategy));
    cli_json_bool(&j, "safe", pgbank_strategy_is_safe(set->strategy));
    cli_json_int(&j, "clients", set->clients);
    cli_json_int(&j, "depth", set->depth);
    cli_json_int(&j, "in_flight", set->clients * set->depth);
    cli_json_int(&j, "connections", set->connections);
    cli_json_int(&j, "lanes", r->stats.lanes);
    cli_json_int(&j, "batches", (int64_t)r->stats.batches);
    cli_json_num(&j, "ops_per_batch", 1,
                 r->stats.batches ? (double)r->stats.batched_ops / (double)r->stats.batches : 0.0);
    cli_json_int(&j, "lane_crossings", (int64_t)r->stats.crossings);
    cli_json_int(&j, "accounts", set->accounts);
    cli_json_str(&j, "distribution", set->zipf ? "zipf" : "uniform");
    cli_json_bool(&j, "journal", set->journal);
    cli_json_num(&j, "duration_s", 3, secs(set->duration_ns));
    cli_json_num(&j, "elapsed_s", 3, secs(r->end_ns - r->load.start_ns));
    cli_json_num(&j, "setup_s", 3, secs(rep->setup_ns));
    cli_json_int(&j, "ops", run_ok(r));
    cli_json_num(&j, "ops_per_sec", 1, run_ops_per_sec(r));
    cli_json_num(&j, "p50_ms", 3, cli_hist_percentile_ms(h, 50));
    cli_json_num(&j, "p90_ms", 3, cli_hist_percentile_ms(h, 90));
    cli_json_num(&j, "p99_ms", 3, cli_hist_percentile_ms(h, 99));
    cli_json_num(&j, "p999_ms", 3, cli_hist_percentile_ms(h, 99.9));
    cli_json_num(&j, "max_ms", 3, (double)h->max_us / 1000.0);
    cli_json_num(&j, "mean_ms", 3, cli_hist_mean_ms(h));
    cli_json_num(&j, "client_cpu_us_per_op", 3, r->cpu_us_per_op);
    cli_json_num(&j, "peak_rss_mb", 1, r->rss_mb);
    cli_json_int(&j, "failures", r->tally.failures);
    cli_json_int(&j, "stopped_slots", stopped_slots(r));
    cli_json_object(&j, "failures_by_status", &by);
    for (int i = 0; i < PGBANK__STATUS_COUNT; i++)
        if (i != PGBANK_OK && r->tally.by_status[i])
            cli_json_int(&by, pgbank_status_name((pgbank_status)i), r->tally.by_status[i]);
    if (r->tally.not_submitted)
        cli_json_int(&by, "not submitted", r->tally.not_submitted);
    cli_json_close(&by);
    if (rep->commits >= 0)
        cli_json_int(&j, "server_commits", rep->commits);
    else
        cli_json_null(&j, "server_commits");
    cli_json_num(&j, "ops_per_commit", 2, ops_per_commit(run_ok(r), rep->commits));
    cli_json_int(&j, "debited", rep->debited);
    cli_json_str(&j, "money_check", rep->money_ok ? "ok" : "failed");
    if (rep->pgb->wanted)
        lab_pgbench_json(&j, rep->pgb, run_ops_per_sec(r));
    if (r->tally.first_failure[0])
        cli_json_str(&j, "first_failure", r->tally.first_failure);
    cli_json_end(&j);
}

static void print_text(const bench_report *rep)
{
    const bench_settings *set = rep->set;
    const bench_run *r = rep->r;
    const cli_hist *h = &r->tally.hist;
    printf("pgbank bench: %s, %d client%s x depth %d (%d in flight), %d connection%s, "
           "%lld account%s (%s), %s, %.1f s, on %s\n",
           pgbank_strategy_name(set->strategy), set->clients, set->clients == 1 ? "" : "s",
           set->depth, set->clients * set->depth, set->connections,
           set->connections == 1 ? "" : "s", (long long)set->accounts,
           set->accounts == 1 ? "" : "s", set->zipf ? "zipf s=1.1" : "uniform",
           set->journal ? "journal" : "no journal", secs(set->duration_ns), rep->where);
    printf("  withdrawals     %lld ok, %lld failed\n", (long long)run_ok(r),
           (long long)r->tally.failures);
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
               (long long)rep->commits, ops_per_commit(run_ok(r), rep->commits));
    else
        printf("  server commits  unknown (pg_stat_database not readable)\n");
    for (int i = 0; i < PGBANK__STATUS_COUNT; i++)
        if (i != PGBANK_OK && r->tally.by_status[i])
            printf("  %-15s %lld\n", pgbank_status_name((pgbank_status)i),
                   (long long)r->tally.by_status[i]);
    if (r->tally.not_submitted)
        printf("  not submitted   %lld\n", (long long)r->tally.not_submitted);
    if (rep->money_ok)
        printf("money check: ok (the balances fell by %lld, the withdrawals reported ok)\n",
               (long long)rep->debited);
    else
        printf("money check: FAILED (the balances fell by %lld, the withdrawals reported ok "
               "are %lld%s)\n", (long long)rep->debited, (long long)run_ok(r),
               rep->negative ? "; some balances are negative" : "");
    if (rep->pgb->wanted)
        lab_pgbench_print(rep->pgb, set->clients, pgbank_strategy_name(set->strategy),
                          run_ops_per_sec(r));
}

/* ------------------------------------------------------------------------
 * Options.
 * ------------------------------------------------------------------------ */

static int parse_settings(cli *c, int argc, char **argv, bench_settings *set)
{
    const char *strategy = "atomic", *clients = "16", *depth = NULL, *accounts = "10000";
    const char *distribution = "uniform", *connections = NULL, *batch_max = NULL;
    const char *batch_inflight = NULL, *lanes = NULL;
    int journal = 0, no_journal = 0;
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
        {"lanes", &lanes, NULL},
        {"plot", &set->plot, NULL},
        {"vs-pgbench", NULL, &set->vs_pgbench},
        {"journal", NULL, &journal},
        {"no-journal", NULL, &no_journal},
        {NULL, NULL, NULL}};
    int npos, rc = cli_parse(c, argc, argv, opts, NULL, 0, &npos);
    if (rc)
        return rc;
    if (journal && no_journal)
        return cli_usage_error(c, "--journal and --no-journal contradict each other");
    if ((rc = cli_parse_strategy(c, NULL, strategy, strlen(strategy), &set->strategy)) != 0)
        return rc;
    /* The journal is on, as in a real bank: --journal is what it always
     * is now, kept for the command lines that said it. */
    set->journal = !no_journal;
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
    if (lanes) {
        if ((rc = cli_parse_range(c, "--lanes", lanes, 1, 64, &v)) != 0)
            return rc;
        set->lanes = (int)v;
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
static int open_engine(lab_schema *s, const bench_settings *set, pgbank_engine **out)
{
    pgbank_options opt;
    lab_engine_options(s, &opt); /* --echo, --unnamed-statements */
    opt.connections = set->connections;
    opt.pipeline_depth = set->depth;
    if (set->batch_max)
        opt.batch_max = set->batch_max;
    if (set->batch_inflight)
        opt.batch_inflight = set->batch_inflight;
    if (set->lanes)
        opt.lanes = set->lanes;
    return lab_engine_open(s, &opt, CONNECT_MS, out);
}

/* The lab's schema, with or without the journal, and N accounts, the
 * benchmark's lock taken. */
static int setup(cli *c, lab_schema *s, const cli_db *db, const bench_settings *set)
{
    pgbank_schema_options o;
    pgbank_schema_options_init(&o);
    o.journal = set->journal;
    int rc = lab_schema_open(c, db, "bench", &o, s);
    PGresult *res;
    if (rc || (rc = lab_exec(s, "take the benchmark lock",
                             "SELECT pg_try_advisory_lock(" BENCH_LOCK_KEY ")", 0, NULL,
                             &res)) != 0)
        return rc;
    int got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!got)
        return cli_error(c, CLI_EXIT_FAILURE, "another pgbank bench is running on %s; "
                         "try again when it is done", db->where);
    fprintf(stderr, "pgbank bench: setting up %lld account%s in schema %s...\n",
            (long long)set->accounts, set->accounts == 1 ? "" : "s", s->name);
    char err[1024] = "";
    if (pgbank_accounts_load(s->conninfo, set->accounts, BENCH_BALANCE, err, sizeof err) != 0) {
        cli_scrub(c, err, sizeof err);
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the benchmark accounts: %s",
                         err);
    }
    return 0;
}

/* The load: clients x depth slots, each a closed loop of withdrawals of 1. */
static int prepare_run(bench_run *r, const bench_settings *set)
{
    if (lab_load_init(&r->load, set->clients * set->depth) != 0)
        return -1;
    lab_load *L = &r->load;
    L->hooks = &bench_hooks;
    L->arg = r;
    L->tally = &r->tally;
    L->duration_ns = set->duration_ns;
    L->drain_ns = (int64_t)DRAIN_MS * 1000000;
    L->interval_ns = 1000000000;
    r->rng = pgbank__rand_seed();
    if (set->zipf)
        lab_zipf_init(&r->z, set->accounts, ZIPF_S);
    for (int i = 0; i < L->nclients; i++) {
        pgbank_op *op = &L->clients[i].op;
        pgbank_op_init(op, PGBANK_OP_WITHDRAW);
        op->strategy = set->strategy;
        op->amount = 1;
    }
    return 0;
}

/* Measures pgbank, checks the money, then pgbench when wanted. */
static int measure(cli *c, lab_schema *s, const bench_settings *set, bench_run *r,
                   lab_pgbench *pgb, bench_report *rep)
{
    pgbank_engine *eng = NULL;
    int rc = lab_settle(s);
    if (rc || (rc = open_engine(s, set, &eng)) != 0) {
        pgbank_engine_free(eng);
        return rc;
    }
    int64_t commits0 = lab_commits(s);
    r->load.eng = eng;
    rc = run_measure(c, r);
    pgbank_engine_get_stats(eng, &r->stats);
    /* Closing the connections ends their server processes, which flushes
     * their statistics; what is still in flight is no longer the run's. */
    lab_engine_close(&r->load, &eng);
    if (rc || lab_interrupted())
        return rc;
    int64_t commits1 = lab_commits(s);
    rep->commits = commits0 >= 0 && commits1 >= 0 ? commits1 - commits0 : -1;
    if ((rc = lab_debited(s, set->accounts * BENCH_BALANCE, &rep->debited, &rep->negative)))
        return rc;
    /* An unknown outcome may or may not have been applied. */
    int64_t ok = run_ok(r), unknown = r->tally.by_status[PGBANK_UNKNOWN_OUTCOME];
    rep->money_ok = rep->negative == 0 && rep->debited >= ok && rep->debited <= ok + unknown;
    if (!pgb->wanted)
        return 0;
    pgb->found = lab_pgbench_find(pgb);
    if (!pgb->found) {
        fprintf(stderr, "pgbank bench: pgbench not found (looked at $PGBANK_PGBENCH, "
                        "pg_config --bindir, $PATH, /usr/lib/postgresql/*/bin): install "
                        "it (Debian/Ubuntu: the postgresql or postgresql-client "
                        "package); measuring pgbank alone\n");
        return 0;
    }
    lab_pgb_settings ps = {set->clients, set->duration_ns, set->accounts, set->zipf, ZIPF_S,
                           set->accounts * BENCH_BALANCE, set->journal};
    lab_pgbench_run(s, &ps, pgb);
    return 0;
}

/* The report, the verdict and the plot.  Returns the exit code. */
static int conclude(cli *c, const bench_settings *set, const bench_report *rep,
                    const char *gnuplot)
{
    const bench_run *r = rep->r;
    int rc = 0;
    if (c->json)
        print_json(rep);
    else
        print_text(rep);
    if (r->tally.first_failure[0])
        cli_error(c, 0, "%lld withdrawals failed (first: %s)", (long long)r->tally.failures,
                  r->tally.first_failure);
    if (stopped_slots(r))
        cli_error(c, 0, "%lld of the %d withdrawals kept in flight stopped after a database "
                  "failure (as a pgbench client aborts)", (long long)stopped_slots(r),
                  r->load.nclients);
    if (!rep->money_ok) {
        cli_error(c, 0, "money check failed: the balances fell by %lld but %lld withdrawals "
                  "were reported ok%s", (long long)rep->debited, (long long)run_ok(r),
                  pgbank_strategy_is_safe(set->strategy)
                      ? ": this is a pgbank bug"
                      : " (expected of an unsafe strategy)");
        rc = CLI_EXIT_REFUSED;
    } else if (r->tally.db_failures) {
        rc = CLI_EXIT_FAILURE;
    }
    if (set->plot) {
        char err[1024] = "";
        if (plot_write(gnuplot, set->plot, set, r, rep->pgb, err, sizeof err) != 0) {
            cli_error(c, 0, "could not draw the plot: %s", err);
            if (!rc)
                rc = CLI_EXIT_FAILURE;
        } else {
            fprintf(stderr, "pgbank bench: plot written to %s\n", set->plot);
        }
    }
    return rc;
}

static int run_bench(cli *c, int argc, char **argv)
{
    bench_settings set;
    int rc = parse_settings(c, argc, argv, &set);
    if (rc || (rc = cli_parsed(c)) != 0)
        return rc;
    char gnuplot[CLI_PATH_MAX] = "";
    if (set.plot && (rc = cli_plot_check(c, set.plot, gnuplot, sizeof gnuplot)) != 0)
        return rc;
    if (!pgbank_strategy_is_safe(set.strategy))
        fprintf(stderr, "pgbank bench: WARNING: %s is UNSAFE FOR MONEY (lost updates at READ "
                "COMMITTED); measured for comparison only, and the money check will likely "
                "fail\n", pgbank_strategy_name(set.strategy));
    bench_run *r = calloc(1, sizeof *r);
    lab_pgbench *pgb = calloc(1, sizeof *pgb);
    if (!r || !pgb || prepare_run(r, &set) != 0) {
        if (r)
            lab_load_free(&r->load);
        free(r);
        free(pgb);
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    }
    r->set = &set;
    pgb->wanted = set.vs_pgbench;
    bench_report rep = {&set, r, pgb, "", -1, 0, 0, 0, 0};
    cli_db db;
    lab_schema s;
    memset(&s, 0, sizeof s);
    lab_signals_catch();
    if ((rc = cli_db_resolve(c, &db, 0)) == 0) {
        rep.where = db.where;
        int64_t t0 = pgbank__now_ns();
        if ((rc = setup(c, &s, &db, &set)) == 0) {
            rep.setup_ns = pgbank__now_ns() - t0;
            fprintf(stderr, "pgbank bench: %lld account%s ready in %.1f s; %s, %d clients x "
                    "depth %d, %d connections, %s s\n", (long long)set.accounts,
                    set.accounts == 1 ? "" : "s", secs(rep.setup_ns),
                    pgbank_strategy_name(set.strategy), set.clients, set.depth,
                    set.connections, set.duration_arg);
            rc = measure(c, &s, &set, r, pgb, &rep);
        }
    }
    lab_schema_close(&s);
    if (rc == 0 && !lab_interrupted())
        rc = conclude(c, &set, &rep, gnuplot);
    rc = lab_finish("bench", rc);
    cli_db_close(c, &db);
    lab_signals_restore();
    lab_load_free(&r->load);
    free(r->timeline);
    free(r);
    free(pgb);
    return rc;
}

const cli_command cli_cmd_bench = {
    "bench", "measure a strategy's throughput and latency, side by side with pgbench",
    "Usage: pgbank bench [--strategy S] [--clients C] [--duration T] [--accounts N]\n"
    "                    [--distribution uniform|zipf] [--depth D] [--connections K]\n"
    "                    [--lanes L] [--vs-pgbench] [--plot FILE.png] [--no-journal]\n"
    "                    [--json]\n"
    "\n"
    "Measures what withdrawing costs with strategy S on your own server.  A\n"
    "schema of the run's own, pgbank_bench_<n>, is created (your tables are not\n"
    "touched) with pgbank's tables, its journal included, and N accounts\n"
    "holding 10^11 each; C clients each keep D withdrawals of 1 outstanding for\n"
    "T seconds, on accounts picked uniformly or by Zipf's law (s = 1.1: account\n"
    "1 is the hottest).  One engine, one thread.  The schema is dropped at the\n"
    "end, also on failure or Ctrl-C (exit 130, 143 for SIGTERM, nothing\n"
    "reported; loading the accounts, once begun, finishes first); one left by\n"
    "a run that was killed is dropped by the next lab run.  One benchmark at a\n"
    "time per database.\n"
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
    "  --lanes L           batch: the engine's lanes, 1 to 64 (default: the\n"
    "                      library's, PGBANK_DEFAULT_LANES); accounts are split\n"
    "                      among them and each lane's batches run in parallel\n"
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
    "  --no-journal        drop pgbank's journal from the bench schema, so that\n"
    "                      pgbank runs the SQL pgbench's scripts run (every\n"
    "                      strategy, batch included); by default it is kept and\n"
    "                      every withdrawal writes its row, as in a real bank\n"
    "                      (pgbench's scripts then run pgbank's journaled\n"
    "                      withdrawal, one journal row each, like pgbank).\n"
    "                      --journal (the default) is accepted as before\n"
    "  --json              one object: strategy, clients, depth, accounts,\n"
    "                      journal, lanes, batches, ops_per_batch,\n"
    "                      lane_crossings, duration_s, ops, ops_per_sec, p50_ms, p90_ms,\n"
    "                      p99_ms, p999_ms, client_cpu_us_per_op, peak_rss_mb,\n"
    "                      failures, server_commits, ops_per_commit, money_check,\n"
    "                      and with\n"
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
    "  pgbank bench --strategy batch --clients 16 --lanes 1 --vs-pgbench\n"
    "  pgbank bench --json --duration 30 --plot bench.png\n",
    run_bench,
};
