/*
 * cmd_race.c - `pgbank race`, the race lab: proves the seed's summary table
 * by measurement.  Every chosen strategy runs three scenarios, each R times
 * on fresh accounts, and the money every run lost or created is counted
 * from the balances, never taken from what the operations said:
 *
 *   double spend  balance 100, K concurrent withdrawals of 80
 *   lost update   balance 1000, 50 concurrent withdrawals of 10
 *   contention    H clients withdraw 1 from one hot account for D seconds
 *
 * Operations truly overlap: one engine holds a connection for every
 * operation of a run and is fully connected before the first run (a cold
 * pool staggers the operations and hides the race); a run submits all its
 * operations, then runs the engine's loop.
 *
 * Deterministic mode gives every operation of a run (of a round, for
 * contention) one pgbank_gate, so every explicit/begin read happens before
 * any write: the worst interleaving, reproduced every time.  for-update and
 * atomic pass a gate untouched and so meet the same burst all at once.
 * Natural mode fires the operations with no gate, as an application would.
 */
#include "cli.h"
#include "plot.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Settings and scenarios.
 * ------------------------------------------------------------------------ */

enum { SC_DOUBLE_SPEND, SC_LOST_UPDATE, SC_CONTENTION, SC_COUNT };

typedef struct race_scenario {
    const char *name; /* as in reports and JSON */
    int64_t balance;  /* the fresh account's opening balance */
    int64_t amount;   /* every withdrawal */
} race_scenario;

/* The hot account holds more than any run can take (and fits the seed's
 * integer column), so a refusal there would be a bug, not a rule. */
static const race_scenario scenarios[SC_COUNT] = {
    {"double spend", 100, 80},
    {"lost update", 1000, 10},
    {"contention", 1000000000, 1},
};

#define LOST_UPDATE_CLIENTS 50
#define MAX_CLIENTS 200
#define MAX_RUNS 100000
/* How long one run may take beyond its own duration before it counts as a
 * database failure (a run normally takes milliseconds). */
#define RUN_SLACK_MS 120000

typedef struct race_settings {
    pgbank_strategy strategies[PGBANK_STRATEGY_COUNT];
    int nstrategies;
    int runs;
    int deterministic;
    int clients;     /* double spend: concurrent withdrawals */
    int hot_clients; /* contention: clients on the hot account */
    int64_t duration_ns;
    const char *duration_arg;
    const char *plot; /* --plot FILE.png, else NULL */
} race_settings;

/* ------------------------------------------------------------------------
 * Measurements: one cell per strategy x scenario.
 * ------------------------------------------------------------------------ */

typedef struct race_cell {
    pgbank_strategy strategy;
    int scenario;
    int runs, anomalous, overdraft;
    int64_t lost, created;        /* money, summed over runs */
    int64_t ok, refused, failed;  /* operations by outcome */
    int64_t db_failed;            /* of failed: the database failed */
    char failure[320];            /* the first failed operation, described */
    int64_t wall_ns;              /* first submit to last completion, summed */
    int64_t *lat;                 /* every operation's submit-to-callback time */
    size_t nlat, caplat;
    int nomem;
} race_cell;

typedef struct race_run race_run;

typedef struct race_client {
    pgbank_op op;
    int64_t t0; /* when op was submitted */
    race_run *run;
} race_client;

/* One run in flight: its clients, its gate and what they were told. */
struct race_run {
    race_cell *cell;
    pgbank_engine *eng;
    race_client *clients;
    int n;
    pgbank_gate gate;
    int gated;
    int repeat;       /* contention: go on until the deadline */
    int64_t deadline; /* contention: no new operation after this */
    int round_left;   /* gated contention: completions the round awaits */
    int stopped;      /* a submit failed: start nothing more */
    int64_t paid;     /* the sum of the amounts reported ok */
    int ok;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cell_latency(race_cell *cell, int64_t ns)
{
    if (cell->nlat == cell->caplat) {
        size_t cap = cell->caplat ? cell->caplat * 2 : 1024;
        int64_t *lat = realloc(cell->lat, cap * sizeof *lat);
        if (!lat) {
            cell->nomem = 1;
            return;
        }
        cell->lat = lat;
        cell->caplat = cap;
    }
    cell->lat[cell->nlat++] = ns;
}

static void cell_failure(race_cell *cell, const char *status, const char *msg,
                         int db)
{
    cell->failed++;
    cell->db_failed += db;
    if (!cell->failure[0])
        snprintf(cell->failure, sizeof cell->failure, "%s%s%s", status,
                 msg[0] ? ": " : "", msg);
}

static void run_submit(race_run *r, race_client *cl)
{
    cl->t0 = now_ns();
    int rc = pgbank_submit(r->eng, &cl->op);
    if (rc != 0) {
        r->stopped = 1;
        cell_failure(r->cell, "not submitted", pgbank_strerror(rc), 1);
    }
}

/* Submits every client once; with a gate, the round's operations share
 * it, so all of them read before any of them writes. */
static void run_round(race_run *r)
{
    if (r->gated)
        pgbank_gate_init(&r->gate, r->n);
    r->round_left = r->n;
    for (int i = 0; i < r->n && !r->stopped; i++)
        run_submit(r, &r->clients[i]);
}

static void race_done(pgbank_op *op)
{
    race_client *cl = op->user_data;
    race_run *r = cl->run;
    race_cell *cell = r->cell;
    int64_t now = now_ns();
    cell_latency(cell, now - cl->t0);
    switch (op->result.status) {
    case PGBANK_OK:
        cell->ok++;
        r->ok++;
        r->paid += op->amount;
        break;
    case PGBANK_INSUFFICIENT_FUNDS:
        cell->refused++;
        break;
    default:
        /* Retries exhausted is an answer (try later), not a failure of the
         * database: it is counted, the exit status stays 0. */
        cell_failure(cell, pgbank_status_name(op->result.status),
                     op->result.message,
                     op->result.status == PGBANK_DB_ERROR ||
                         op->result.status == PGBANK_UNKNOWN_OUTCOME ||
                         op->result.status == PGBANK_SHUT_DOWN);
        break;
    }
    if (!r->repeat || r->stopped || now >= r->deadline)
        return;
    if (!r->gated)
        run_submit(r, cl); /* a closed loop: this client goes on */
    else if (--r->round_left == 0)
        run_round(r); /* the round is over: the next one starts */
}

/* ------------------------------------------------------------------------
 * The lab.
 * ------------------------------------------------------------------------ */

typedef struct race_lab {
    cli *c;
    const race_settings *set;
    cli_db db;
    race_cell *cells;
    int ncells;
    race_client *clients;
    int nclients;
    int tty;
    int progress_shown;
    int64_t elapsed_ns;
} race_lab;

static int scenario_clients(const race_settings *set, int sc)
{
    switch (sc) {
    case SC_DOUBLE_SPEND: return set->clients;
    case SC_LOST_UPDATE: return LOST_UPDATE_CLIENTS;
    default: return set->hot_clients;
    }
}

static void progress(race_lab *lab, const race_cell *cell, int run)
{
    if (!lab->tty)
        return;
    fprintf(stderr, "\rpgbank race: %-10s %-12s run %d/%d   ",
            pgbank_strategy_name(cell->strategy), scenarios[cell->scenario].name,
            run + 1, lab->set->runs);
    fflush(stderr);
    lab->progress_shown = 1;
}

static void progress_clear(race_lab *lab)
{
    if (lab->progress_shown)
        fprintf(stderr, "\r%60s\r", "");
    lab->progress_shown = 0;
}

/* Runs one operation to the end on the lab's engine (blocking). */
static int lab_execute(race_lab *lab, pgbank_op *op)
{
    int rc = cli_db_execute(lab->c, &lab->db, op);
    if (rc)
        return rc; /* pgbank_execute() refused it: cannot happen here */
    if (op->result.status == PGBANK_OK)
        return 0;
    progress_clear(lab);
    cli_report_failure(lab->c, op); /* one line: the database's reason */
    return CLI_EXIT_FAILURE;
}

/* One run of cell's scenario on a fresh account. */
static int lab_run(race_lab *lab, race_cell *cell)
{
    const race_settings *set = lab->set;
    const race_scenario *sc = &scenarios[cell->scenario];
    pgbank_op open;
    pgbank_op_init(&open, PGBANK_OP_OPEN);
    open.amount = sc->balance;
    int rc = lab_execute(lab, &open);
    if (rc)
        return rc;
    int64_t account = open.result.account;

    race_run r;
    memset(&r, 0, sizeof r);
    r.cell = cell;
    r.eng = lab->db.eng;
    r.clients = lab->clients;
    r.n = scenario_clients(set, cell->scenario);
    r.gated = set->deterministic;
    r.repeat = cell->scenario == SC_CONTENTION;
    for (int i = 0; i < r.n; i++) {
        race_client *cl = &r.clients[i];
        pgbank_op_init(&cl->op, PGBANK_OP_WITHDRAW);
        cl->op.strategy = cell->strategy;
        cl->op.account = account;
        cl->op.amount = sc->amount;
        cl->op.done = race_done;
        cl->op.user_data = cl;
        cl->op.gate = r.gated ? &r.gate : NULL;
        cl->run = &r;
    }
    int64_t start = now_ns();
    r.deadline = start + (r.repeat ? set->duration_ns : 0);
    int64_t limit_ms = RUN_SLACK_MS + (r.repeat ? set->duration_ns / 1000000 : 0);
    run_round(&r);
    rc = pgbank_engine_run(r.eng, (int)limit_ms);
    cell->wall_ns += now_ns() - start;
    if (rc != 0) {
        progress_clear(lab);
        /* Freeing the engine completes the operations it still holds, and
         * their callbacks write into r: free it while r exists. */
        rc = cli_error(lab->c, CLI_EXIT_FAILURE, "a %s run of %s did not "
                       "finish: %s", sc->name,
                       pgbank_strategy_name(cell->strategy),
                       rc == PGBANK_ETIMEDOUT ? "timed out" : pgbank_strerror(rc));
        pgbank_engine_free(lab->db.eng);
        lab->db.eng = NULL;
        return rc;
    }

    pgbank_op bal;
    pgbank_op_init(&bal, PGBANK_OP_BALANCE);
    bal.account = account;
    if ((rc = lab_execute(lab, &bal)) != 0)
        return rc;
    int64_t debited = sc->balance - bal.result.balance;
    if (r.paid > debited)
        cell->lost += r.paid - debited;
    else
        cell->created += debited - r.paid;
    int anomalous = r.paid != debited || bal.result.balance < 0 ||
                    (cell->scenario == SC_DOUBLE_SPEND && r.ok > 1);
    cell->anomalous += anomalous;
    cell->overdraft += r.paid > sc->balance || bal.result.balance < 0;
    cell->runs++;
    return 0;
}

/* The engine: a connection for every operation a run can have in flight
 * (a gated operation holds its connection until its round's reads are
 * done), all connected before the first run. */
static int lab_connect(race_lab *lab)
{
    cli *c = lab->c;
    int rc = cli_db_resolve(c, &lab->db, 1);
    if (rc)
        return rc;
    pgbank_options opt;
    cli_engine_options(c, &lab->db, &opt); /* conninfo, --echo, --unnamed-statements */
    opt.connections = lab->nclients + 2;
    char err[1024] = "";
    rc = pgbank_engine_new(&lab->db.eng, &opt, err, sizeof err);
    if (rc == PGBANK_ECONNINFO)
        return cli_error(c, CLI_EXIT_USAGE, "invalid connection string: %s",
                         err);
    if (rc)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the engine: "
                         "%s", err[0] ? err : pgbank_strerror(rc));
    rc = pgbank_engine_connect(lab->db.eng);
    if (rc == 0)
        rc = pgbank_engine_wait_connected(lab->db.eng, 30000);
    if (rc) {
        const char *why = pgbank_engine_error(lab->db.eng);
        return cli_error(c, CLI_EXIT_FAILURE, "could not connect the %d "
                         "connections the race needs to %s: %s",
                         opt.connections, lab->db.where,
                         why[0] ? why : pgbank_strerror(rc));
    }
    return 0;
}

static int lab_measure(race_lab *lab)
{
    int64_t start = now_ns();
    for (int i = 0; i < lab->ncells; i++) {
        race_cell *cell = &lab->cells[i];
        for (int run = 0; run < lab->set->runs; run++) {
            progress(lab, cell, run);
            int rc = lab_run(lab, cell);
            if (rc)
                return rc;
        }
        if (cell->nomem) {
            progress_clear(lab);
            return cli_error(lab->c, CLI_EXIT_FAILURE, "out of memory");
        }
    }
    progress_clear(lab);
    lab->elapsed_ns = now_ns() - start;
    return 0;
}

/* ------------------------------------------------------------------------
 * Reporting.
 * ------------------------------------------------------------------------ */

/* The lock column, named as in the seed's table. */
static const char *lock_name(pgbank_strategy s)
{
    switch (s) {
    case PGBANK_EXPLICIT:
    case PGBANK_BEGIN: return "none";
    case PGBANK_FOR_UPDATE: return "row lock";
    case PGBANK_ATOMIC: return "atomic UPDATE";
    case PGBANK_SERIALIZABLE: return "SSI + retry";
    case PGBANK_BATCH: return "id-order rows";
    default: return "-";
    }
}

/* The seed's "race risk" column; "-" for strategies beyond the seed. */
static const char *seed_risk(pgbank_strategy s)
{
    switch (s) {
    case PGBANK_EXPLICIT:
    case PGBANK_BEGIN: return "high";
    case PGBANK_FOR_UPDATE:
    case PGBANK_ATOMIC: return "none";
    default: return "-";
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile, in ms (the latencies must be sorted). */
static double percentile_ms(const race_cell *cell, int pct)
{
    if (cell->nlat == 0)
        return 0.0;
    size_t rank = (cell->nlat * (size_t)pct + 99) / 100;
    if (rank < 1)
        rank = 1;
    return (double)cell->lat[rank - 1] / 1e6;
}

static double ops_per_sec(const race_cell *cell)
{
    if (cell->wall_ns <= 0)
        return 0.0;
    return (double)(cell->ok + cell->refused) * 1e9 / (double)cell->wall_ns;
}

static void verdict(const race_cell *cell, char *buf, size_t len)
{
    if (cell->anomalous)
        snprintf(buf, len, "race observed");
    else
        snprintf(buf, len, "none observed in %d run%s", cell->runs,
                 cell->runs == 1 ? "" : "s");
}

static void money(const race_cell *cell, char *buf, size_t len)
{
    if (cell->lost && cell->created)
        snprintf(buf, len, "lost %lld, created %lld", (long long)cell->lost,
                 (long long)cell->created);
    else if (cell->lost)
        snprintf(buf, len, "lost %lld", (long long)cell->lost);
    else if (cell->created)
        snprintf(buf, len, "created %lld", (long long)cell->created);
    else
        snprintf(buf, len, "0");
}

static void print_json(const race_lab *lab)
{
    const race_settings *set = lab->set;
    printf("{\"mode\":\"%s\",\"runs\":%d,\"clients\":%d,\"hot_clients\":%d,"
           "\"duration_s\":%.3f,\"elapsed_s\":%.3f,\"results\":[",
           set->deterministic ? "deterministic" : "natural", set->runs,
           set->clients, set->hot_clients, (double)set->duration_ns / 1e9,
           (double)lab->elapsed_ns / 1e9);
    for (int i = 0; i < lab->ncells; i++) {
        const race_cell *cell = &lab->cells[i];
        char v[64];
        verdict(cell, v, sizeof v);
        /* Strategy, lock, scenario and verdict names are plain ASCII. */
        printf("%s{\"strategy\":\"%s\",\"lock\":\"%s\",\"safe\":%s,"
               "\"scenario\":\"%s\",\"runs\":%d,\"anomalous_runs\":%d,"
               "\"money_lost\":%lld,\"money_created\":%lld,"
               "\"overdraft_runs\":%d,\"verdict\":\"%s\","
               "\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"succeeded\":%lld,\"refused\":%lld,\"failed\":%lld}",
               i ? "," : "", pgbank_strategy_name(cell->strategy),
               lock_name(cell->strategy),
               pgbank_strategy_is_safe(cell->strategy) ? "true" : "false",
               scenarios[cell->scenario].name, cell->runs, cell->anomalous,
               (long long)cell->lost, (long long)cell->created,
               cell->overdraft, v, ops_per_sec(cell), percentile_ms(cell, 50),
               percentile_ms(cell, 99), (long long)cell->ok,
               (long long)cell->refused, (long long)cell->failed);
    }
    printf("]}\n");
    fflush(stdout);
}

static void print_table(const race_lab *lab)
{
    const race_settings *set = lab->set;
    printf("pgbank race: %d run%s of each scenario per strategy, %s mode, "
           "on %s\n", set->runs, set->runs == 1 ? "" : "s",
           set->deterministic ? "deterministic" : "natural", lab->db.where);
    printf("  double spend  balance 100, %d concurrent withdrawals of 80 "
           "(correct: 1 ok, 20 left)\n", set->clients);
    printf("  lost update   balance 1000, %d concurrent withdrawals of 10 "
           "(correct: %d ok, 500 left)\n", LOST_UPDATE_CLIENTS,
           LOST_UPDATE_CLIENTS);
    printf("  contention    %d clients take 1 at a time from one account, "
           "%s s per run\n", set->hot_clients, set->duration_arg);
    if (set->deterministic)
        printf("                (in rounds: one withdrawal per client, the "
               "next round when all are answered)\n");
    else
        printf("                (each client withdraws again as soon as it "
               "is answered)\n");
    if (set->deterministic)
        printf("  deterministic: a gate holds every read made without a lock "
               "(explicit, begin)\n  until all have read; for-update and "
               "atomic pass it and meet the burst at once\n");
    int sw = 8; /* the strategy column fits the longest name */
    for (int i = 0; i < set->nstrategies; i++) {
        int n = (int)strlen(pgbank_strategy_name(set->strategies[i]));
        sw = n > sw ? n : sw;
    }
    printf("\n%-*s  %-13s  %-4s  %-12s  %9s  %-19s  %9s  %-24s  %7s  %s\n",
           sw, "strategy", "lock", "risk", "scenario", "anomalous",
           "money lost/created", "overdraft", "verdict", "ops/s",
           "p50/p99 ms");
    printf("%.*s  %-13s  %-4s  %-12s  %9s  %-19s  %9s  %-24s  %7s  %s\n",
           sw, "------------------------------------------------",
           "-------------", "----", "------------", "---------",
           "-------------------", "---------", "------------------------",
           "-------", "-----------");
    for (int i = 0; i < lab->ncells; i++) {
        const race_cell *cell = &lab->cells[i];
        char anom[32], over[32], m[64], v[64];
        snprintf(anom, sizeof anom, "%d/%d", cell->anomalous, cell->runs);
        snprintf(over, sizeof over, "%d/%d", cell->overdraft, cell->runs);
        money(cell, m, sizeof m);
        verdict(cell, v, sizeof v);
        printf("%-*s  %-13s  %-4s  %-12s  %9s  %-19s  %9s  %-24s  %7.0f  "
               "%.1f/%.1f\n", sw, pgbank_strategy_name(cell->strategy),
               lock_name(cell->strategy), seed_risk(cell->strategy),
               scenarios[cell->scenario].name, anom, m, over, v,
               ops_per_sec(cell), percentile_ms(cell, 50),
               percentile_ms(cell, 99));
    }
    printf("\nrisk: the seed's race risk (-: not in the seed).  anomalous: runs "
           "whose balance\ndisagrees with the withdrawals reported ok (or, "
           "double spend, more than one\nsuccess).  overdraft: runs that "
           "paid out more than the account held.  ops/s:\nanswered "
           "withdrawals per second of run time; p50/p99: each withdrawal "
           "from\nsubmit to its answer.\n");
    int unsafe = 0;
    for (int i = 0; i < set->nstrategies; i++) {
        if (pgbank_strategy_is_safe(set->strategies[i]))
            continue;
        printf("%s%s", unsafe++ ? ", " : "\n",
               pgbank_strategy_name(set->strategies[i]));
    }
    if (unsafe)
        printf(": UNSAFE FOR MONEY (lost updates at READ COMMITTED); use "
               "for-update or atomic.\n");
    int64_t failed = 0;
    for (int i = 0; i < lab->ncells; i++)
        failed += lab->cells[i].failed;
    if (!failed)
        printf("No withdrawal ended otherwise than ok or insufficient "
               "funds.\n");
    else
        printf("%lld withdrawals ended otherwise than ok or insufficient "
               "funds (details on stderr).\n", (long long)failed);
    printf("Measured in %.1f s.\n", (double)lab->elapsed_ns / 1e9);
}

/* Failed operations are part of the report (table, JSON and stderr).
 * Returns 1 when the database failed under some of them. */
static int report_failures(const race_lab *lab)
{
    int64_t failed = 0;
    for (int i = 0; i < lab->ncells; i++) {
        const race_cell *cell = &lab->cells[i];
        if (!cell->failed)
            continue;
        failed += cell->db_failed;
        cli_error(lab->c, 0, "%s, %s: %lld withdrawals failed (first: %s)",
                  pgbank_strategy_name(cell->strategy),
                  scenarios[cell->scenario].name, (long long)cell->failed,
                  cell->failure);
    }
    return failed != 0;
}

/* 1 when a strategy pgbank calls safe lost or created money: a bug. */
static int report_safe_anomalies(const race_lab *lab)
{
    int bad = 0;
    for (int i = 0; i < lab->ncells; i++) {
        const race_cell *cell = &lab->cells[i];
        if (!cell->anomalous || !pgbank_strategy_is_safe(cell->strategy))
            continue;
        bad = 1;
        cli_error(lab->c, 0, "strategy '%s' is meant to be safe, yet %d of "
                  "%d %s runs went wrong: this is a pgbank bug",
                  pgbank_strategy_name(cell->strategy), cell->anomalous,
                  cell->runs, scenarios[cell->scenario].name);
    }
    return bad;
}

/* ------------------------------------------------------------------------
 * The plot (--plot FILE.png): anomalous runs per strategy and scenario on
 * top, the money lost or created below; unsafe strategies on red, safe
 * ones on green.  The data goes inline into gnuplot's script (plot.h).
 * ------------------------------------------------------------------------ */

static const char *const scenario_colors[SC_COUNT] = {"#4477aa", "#ccbb44",
                                                      "#aa3377"};

static double anomalous_pct(const race_cell *cell)
{
    return cell->runs ? 100.0 * cell->anomalous / cell->runs : 0.0;
}

/* The bars' x: strategy i's cluster is centred on i. */
#define PLOT_BAR 0.27

/* The background, the x tics and the bars shared by both panels. */
static void plot_frame(FILE *f, const race_lab *lab)
{
    const race_settings *set = lab->set;
    fprintf(f, "unset object\n"
               "set xrange [-0.6:%f]\n"
               "set xtics nomirror scale 0 (",
            set->nstrategies - 0.4);
    for (int i = 0; i < set->nstrategies; i++) {
        pgbank_strategy s = set->strategies[i];
        char tic[96];
        snprintf(tic, sizeof tic, "%s\n%s", pgbank_strategy_name(s),
                 pgbank_strategy_is_safe(s) ? "safe" : "UNSAFE");
        fprintf(f, "%s", i ? ", " : "");
        cli_plot_string(f, tic);
        fprintf(f, " %d", i);
    }
    fprintf(f, ")\n");
    for (int i = 0; i < set->nstrategies; i++)
        fprintf(f, "set object %d rect from %f, graph 0 to %f, graph 1 "
                   "fc rgb '%s' fs solid 1.0 noborder behind\n",
                i + 1, i - 0.48, i + 0.48,
                pgbank_strategy_is_safe(set->strategies[i]) ? "#e3f2e3"
                                                             : "#f8dcdc");
}

/* The bars of column `col` (1 per scenario), their labels from column
 * `label`, and the backgrounds' key entries. */
static void plot_bars(FILE *f, int col, int label)
{
    fprintf(f, "plot ");
    for (int sc = 0; sc < SC_COUNT; sc++)
        fprintf(f, "$D index %d using 1:%d with boxes lc rgb '%s' title '%s', ",
                sc, col, scenario_colors[sc], scenarios[sc].name);
    fprintf(f, "$D using 1:%d:%d with labels font ',8' offset 0,0.6 notitle, "
               "NaN with boxes fc rgb '#f8dcdc' title 'unsafe strategy', "
               "NaN with boxes fc rgb '#e3f2e3' title 'safe strategy'\n",
            col, label);
}

static int plot_draw(const race_lab *lab, const char *gnuplot,
                     const char *file, char *err, size_t errlen)
{
    const race_settings *set = lab->set;
    cli_plot p;
    if (cli_plot_begin(&p, gnuplot, err, errlen) != 0)
        return -1;
    FILE *f = p.script;
    fprintf(f, CLI_PLOT_TERMINAL(1100, 900));
    /* One block per scenario: x, % anomalous, money, their labels. */
    int64_t most = 0;
    fprintf(f, "$D << EOD\n");
    for (int sc = 0; sc < SC_COUNT; sc++) {
        for (int i = 0; i < lab->ncells; i++) {
            const race_cell *cell = &lab->cells[i];
            if (cell->scenario != sc)
                continue;
            int64_t wrong = cell->lost + cell->created;
            most = wrong > most ? wrong : most;
            char m[64];
            if (cell->created)
                money(cell, m, sizeof m);
            else
                snprintf(m, sizeof m, "%lld", (long long)cell->lost);
            fprintf(f, "%.3f %.2f %lld \"%.0f%%\" \"%s\"\n",
                    i / SC_COUNT + (sc - 1) * PLOT_BAR, anomalous_pct(cell),
                    (long long)wrong, anomalous_pct(cell), m);
        }
        fprintf(f, "\n\n");
    }
    fprintf(f, "EOD\n");
    char title[CLI_PATH_MAX + 256];
    snprintf(title, sizeof title, "pgbank race: %d run%s of each scenario "
             "per strategy, %s mode\non %s", set->runs, set->runs == 1 ? "" : "s",
             set->deterministic ? "deterministic" : "natural", lab->db.where);
    fprintf(f, "set multiplot layout 2,1 title ");
    cli_plot_string(f, title);
    fprintf(f, " font ',12'\n"
               "set style fill solid 0.9 border rgb '#333333'\n"
               "set boxwidth %.2f\n"
               "set key outside right center vertical samplen 2\n"
               "set lmargin 12\n"
               "set rmargin 24\n"
               "set xlabel 'strategy' offset 0,-0.6\n",
            PLOT_BAR);
    plot_frame(f, lab);
    fprintf(f, "set title 'Anomalous runs: the balance disagrees with the "
               "withdrawals reported ok (0%% is correct)'\n"
               "set ylabel 'anomalous runs (%% of runs)'\n"
               "set yrange [0:118]\n"
               "set ytics 0,20,100\n");
    plot_bars(f, 2, 4);
    double top = most ? (double)most * 1.18 : 10.0;
    fprintf(f, "set title 'Money lost or created, summed over the runs "
               "(0 is correct)'\n"
               "set ylabel 'money lost or created'\n"
               "set yrange [0:%f]\n"
               "set ytics autofreq\n"
               "set format y '%%.0f'\n"
               "unset key\n", /* the same as above */
            top);
    plot_bars(f, 3, 5);
    fprintf(f, "unset multiplot\n");
    return cli_plot_end(&p, file, err, errlen);
}

/* ------------------------------------------------------------------------
 * Options.
 * ------------------------------------------------------------------------ */

static int parse_strategies(const cli *c, const char *list, race_settings *set)
{
    set->nstrategies = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char name[64];
        if (n == 0)
            return cli_usage_error(c, "--strategies: empty name in '%s'",
                                   list);
        snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), p);
        pgbank_strategy s;
        if (n >= sizeof name || pgbank_strategy_parse(name, &s) != 0) {
            char known[256] = "";
            for (int i = 0; i < PGBANK_STRATEGY_COUNT; i++) {
                const char *k = pgbank_strategy_name((pgbank_strategy)i);
                size_t used = strlen(known);
                if (k)
                    snprintf(known + used, sizeof known - used, "%s%s",
                             used ? ", " : "", k);
            }
            return cli_usage_error(c, "unknown strategy '%.*s' in "
                                   "--strategies (known: %s)", (int)n, p,
                                   known);
        }
        int seen = 0;
        for (int i = 0; i < set->nstrategies; i++)
            seen |= set->strategies[i] == s;
        if (!seen)
            set->strategies[set->nstrategies++] = s;
        if (!end)
            return 0;
        p = end + 1;
    }
}

static int parse_settings(cli *c, int argc, char **argv, race_settings *set)
{
    const char *strategies = NULL, *runs = "20", *mode = "deterministic";
    const char *clients = "10", *hot = "16";
    memset(set, 0, sizeof *set);
    set->duration_arg = "0.5";
    const cli_opt opts[] = {
        {"strategies", &strategies, NULL}, {"runs", &runs, NULL},
        {"mode", &mode, NULL},             {"clients", &clients, NULL},
        {"hot-clients", &hot, NULL},       {"duration", &set->duration_arg, NULL},
        {"plot", &set->plot, NULL},        {NULL, NULL, NULL}};
    int npos, rc = cli_parse(c, argc, argv, opts, NULL, 0, &npos);
    if (rc)
        return rc;
    if (strategies) {
        if ((rc = parse_strategies(c, strategies, set)) != 0)
            return rc;
    } else {
        for (int i = 0; i < PGBANK_STRATEGY_COUNT; i++)
            if (pgbank_strategy_name((pgbank_strategy)i)) /* a gap: skip */
                set->strategies[set->nstrategies++] = (pgbank_strategy)i;
    }
    if (strcmp(mode, "deterministic") == 0)
        set->deterministic = 1;
    else if (strcmp(mode, "natural") != 0)
        return cli_usage_error(c, "invalid --mode '%s': deterministic or "
                               "natural", mode);
    if ((rc = cli_parse_count(c, "--runs", runs, 1, MAX_RUNS, &set->runs)) ||
        (rc = cli_parse_count(c, "--clients", clients, 2, MAX_CLIENTS,
                          &set->clients)) ||
        (rc = cli_parse_count(c, "--hot-clients", hot, 2, MAX_CLIENTS,
                          &set->hot_clients)) ||
        (rc = cli_parse_seconds(c, "--duration", set->duration_arg, 3600, &set->duration_ns)))
        return rc;
    return 0;
}

/* ------------------------------------------------------------------------
 * The command.
 * ------------------------------------------------------------------------ */

static void lab_free(race_lab *lab)
{
    /* The engine first: freeing it completes what it still holds, and the
     * completions write into the clients and cells. */
    cli_db_close(lab->c, &lab->db);
    for (int i = 0; i < lab->ncells; i++)
        free(lab->cells[i].lat);
    free(lab->cells);
    free(lab->clients);
}

static int run_race(cli *c, int argc, char **argv)
{
    race_settings set;
    int rc = parse_settings(c, argc, argv, &set);
    if (rc)
        return rc;
    /* --plot: gnuplot and the file are checked before anything runs. */
    char gnuplot[CLI_PATH_MAX] = "";
    if (set.plot && (rc = cli_plot_check(c, set.plot, gnuplot,
                                         sizeof gnuplot)) != 0)
        return rc;
    race_lab lab;
    memset(&lab, 0, sizeof lab);
    lab.c = c;
    lab.set = &set;
    lab.tty = isatty(2);
    lab.ncells = set.nstrategies * SC_COUNT;
    lab.nclients = LOST_UPDATE_CLIENTS;
    if (set.clients > lab.nclients)
        lab.nclients = set.clients;
    if (set.hot_clients > lab.nclients)
        lab.nclients = set.hot_clients;
    lab.cells = calloc((size_t)lab.ncells, sizeof *lab.cells);
    lab.clients = calloc((size_t)lab.nclients, sizeof *lab.clients);
    if (!lab.cells || !lab.clients) {
        lab_free(&lab);
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    }
    for (int i = 0; i < lab.ncells; i++) {
        lab.cells[i].strategy = set.strategies[i / SC_COUNT];
        lab.cells[i].scenario = i % SC_COUNT;
    }
    if ((rc = lab_connect(&lab)) == 0 && (rc = lab_measure(&lab)) == 0) {
        for (int i = 0; i < lab.ncells; i++)
            qsort(lab.cells[i].lat, lab.cells[i].nlat, sizeof(int64_t),
                  cmp_i64);
        if (c->json)
            print_json(&lab);
        else
            print_table(&lab);
        int bug = report_safe_anomalies(&lab);
        int failed = report_failures(&lab);
        rc = bug ? CLI_EXIT_REFUSED : failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
        if (set.plot) {
            /* The measurement stands whatever becomes of its picture: a
             * plot that cannot be drawn now is said, the exit code stays. */
            char err[512] = "";
            cli_db_close(c, &lab.db); /* gnuplot inherits no connection */
            if (plot_draw(&lab, gnuplot, set.plot, err, sizeof err) != 0)
                fprintf(stderr, "pgbank race: could not draw the plot: %s\n",
                        err);
            else
                fprintf(stderr, "pgbank race: plot written to %s\n",
                        set.plot);
        }
    }
    lab_free(&lab);
    return rc;
}

const cli_command cli_cmd_race = {
    "race", "measure which strategies lose or create money under concurrency",
    "Usage: pgbank race [--strategies LIST] [--runs R] [--mode MODE]\n"
    "                   [--clients K] [--hot-clients H] [--duration S]\n"
    "                   [--plot FILE.png] [--json]\n"
    "\n"
    "The race lab: proves the seed's summary table by measurement.  Every\n"
    "strategy runs three scenarios, R times each, on fresh accounts, and the\n"
    "balances say whether money was lost or created:\n"
    "  double spend  balance 100, K concurrent withdrawals of 80; correct:\n"
    "                exactly one succeeds and 20 is left\n"
    "  lost update   balance 1000, 50 concurrent withdrawals of 10; correct:\n"
    "                all succeed and 500 is left\n"
    "  contention    H clients withdraw 1 from one hot account for S seconds\n"
    "                per run; correct: the balance fell by exactly what was\n"
    "                reported withdrawn\n"
    "explicit and begin are UNSAFE FOR MONEY: they are here to show the race.\n"
    "\n"
    "Options:\n"
    "  --strategies LIST  comma-separated strategies, e.g. explicit,atomic\n"
    "                     (default: every strategy pgbank has)\n"
    "  --runs R           runs of each scenario per strategy (default 20)\n"
    "  --mode MODE        deterministic (default): the operations of a run\n"
    "                     share a gate, so every explicit/begin read comes\n"
    "                     before any write; for-update and atomic pass the\n"
    "                     gate and meet the whole burst at once.  Contention\n"
    "                     runs in rounds: one withdrawal per client, the next\n"
    "                     round when the last one is answered.\n"
    "                     natural: no gate, the operations are just fired at\n"
    "                     once (contention: each client withdraws again as\n"
    "                     soon as it is answered), as an application would\n"
    "  --clients K        double spend's concurrent withdrawals (default 10,\n"
    "                     2 to 200)\n"
    "  --hot-clients H    contention's clients (default 16, 2 to 200)\n"
    "  --duration S       seconds per contention run (default 0.5)\n"
    "  --plot FILE.png    also draw the results with gnuplot (gnuplot-nox;\n"
    "                     or $PGBANK_GNUPLOT): anomalous runs (%) per strategy\n"
    "                     and scenario, and the money lost or created, unsafe\n"
    "                     strategies on red, safe ones on green.  Checked\n"
    "                     before anything runs: no gnuplot or an unwritable\n"
    "                     FILE exits 2\n"
    "  --json             one object: {\"mode\":...,\"results\":[{\"strategy\",\n"
    "                     \"scenario\" (\"double spend\", \"lost update\",\n"
    "                     \"contention\"), \"runs\", \"anomalous_runs\",\n"
    "                     \"money_lost\", \"money_created\", \"overdraft_runs\",\n"
    "                     \"verdict\", \"ops_per_sec\", \"p50_ms\", \"p99_ms\",\n"
    "                     \"succeeded\", \"refused\", \"failed\", ...}]}\n"
    "\n"
    "A run is anomalous when the balance disagrees with the withdrawals\n"
    "reported ok (money lost: paid out but not debited; created: debited but\n"
    "not reported), or, in double spend, when more than one succeeded.\n"
    "One engine holds a connection for every concurrent withdrawal (at least\n"
    "52), all opened before the first run.\n"
    "\n"
    "Exit codes: 0 measured, and no strategy meant to be safe showed an\n"
    "anomaly (the unsafe ones are expected to); 1 a safe strategy lost or\n"
    "created money (a pgbank bug); 2 bad usage (--plot included: no gnuplot,\n"
    "FILE not writable), nothing was run; 3 database failure: no connection,\n"
    "a run that did not finish, or withdrawals that ended in a database\n"
    "error or an unknown outcome.  Every withdrawal that ended otherwise\n"
    "than ok or insufficient funds is counted in \"failed\" and described on\n"
    "stderr.  A plot that gnuplot fails to draw after the measurement is\n"
    "said on stderr and changes neither the exit code nor FILE.\n"
    "\n"
    "Examples:\n"
    "  pgbank race\n"
    "  pgbank race --strategies explicit,atomic --runs 5\n"
    "  pgbank race --mode natural --hot-clients 32 --duration 1\n"
    "  pgbank race --json --runs 3 --duration 0.2\n"
    "  pgbank race --runs 5 --plot race.png\n",
    run_race,
};
