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
 *
 * The lab works in a schema of its own (lab/schema.c), dropped at the end:
 * the unsafe strategies lose money there on purpose, never in the user's
 * bank.  Each run is one load of the lab harness (lab/load.c): its clients,
 * the run's deadline and its answers; this file says what a scenario is and
 * what the balances prove, race_report.c prints it.
 */
#include "internal.h"
#include "plot.h"
#include "race.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Scenarios.
 * ------------------------------------------------------------------------ */

/* The hot account holds more than any run can take (and fits the seed's
 * integer column), so a refusal there would be a bug, not a rule. */
const race_scenario race_scenarios[SC_COUNT] = {
    {"double spend", 100, 80},
    {"lost update", 1000, 10},
    {"contention", 1000000000, 1},
};

#define MAX_CLIENTS 200
#define MAX_RUNS 100000
/* How long one run may take beyond its own duration before it counts as a
 * database failure (a run normally takes milliseconds). */
#define RUN_SLACK_MS 120000

/* ------------------------------------------------------------------------
 * A run: the lab's load with race's hooks.
 * ------------------------------------------------------------------------ */

/* One run in flight: what its clients were told. */
typedef struct race_run {
    int n;
    pgbank_gate gate;
    int gated;
    int round_left; /* gated contention: completions the round awaits */
    int64_t paid;   /* the sum of the amounts reported ok */
    int ok;
} race_run;

/* A round: every client once, all sharing one gate, so all of them read
 * before any of them writes. */
static void start_round(lab_load *L, race_run *r)
{
    pgbank_gate_init(&r->gate, r->n);
    r->round_left = r->n;
    for (int i = 0; i < r->n && !L->stopping; i++)
        lab_client_start(L, &L->clients[i]);
}

static int race_done(lab_load *L, lab_client *cl, int64_t now)
{
    race_run *r = L->arg;
    if (cl->op.result.status == PGBANK_OK) {
        r->ok++;
        r->paid += cl->op.amount;
    }
    if (!r->gated)
        return LAB_NEXT; /* contention: a closed loop until the deadline */
    if (--r->round_left == 0 && !lab_load_stopping(L, now))
        start_round(L, r); /* the round is over: the next one starts */
    return LAB_STOP;
}

static const lab_hooks race_hooks = {NULL, race_done, NULL, NULL, NULL};

/* ------------------------------------------------------------------------
 * The lab.
 * ------------------------------------------------------------------------ */

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
            pgbank_strategy_name(cell->strategy), race_scenarios[cell->scenario].name,
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
    int rc = pgbank_execute(lab->eng, op);
    if (rc)
        return cli_error(lab->c, CLI_EXIT_FAILURE, "could not run the operation: %s",
                         pgbank_strerror(rc));
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
    const race_scenario *sc = &race_scenarios[cell->scenario];
    pgbank_op open;
    pgbank_op_init(&open, PGBANK_OP_OPEN);
    open.amount = sc->balance;
    int rc = lab_execute(lab, &open);
    if (rc)
        return rc;
    int64_t account = open.result.account;

    race_run r;
    memset(&r, 0, sizeof r);
    r.n = scenario_clients(set, cell->scenario);
    r.gated = set->deterministic;
    int repeat = cell->scenario == SC_CONTENTION;
    lab_load *L = &lab->load;
    L->nclients = r.n;
    L->arg = &r;
    L->tally = &cell->tally;
    L->duration_ns = repeat ? set->duration_ns : 0;
    for (int i = 0; i < r.n; i++) {
        pgbank_op *op = &L->clients[i].op;
        pgbank_op_init(op, PGBANK_OP_WITHDRAW);
        op->strategy = cell->strategy;
        op->account = account;
        op->amount = sc->amount;
        L->clients[i].gate = r.gated ? &r.gate : NULL;
    }
    if (r.gated) {
        pgbank_gate_init(&r.gate, r.n);
        r.round_left = r.n;
    }
    rc = lab_load_run(L);
    cell->wall_ns += L->end_ns - L->start_ns;
    if (rc != 0) {
        progress_clear(lab);
        lab_engine_close(L, &lab->eng); /* what is in flight is no longer the run's */
        return cli_error(lab->c, CLI_EXIT_FAILURE, "a %s run of %s did not finish: %s",
                         sc->name, pgbank_strategy_name(cell->strategy),
                         rc == LAB_TIMED_OUT ? "timed out" : pgbank_strerror(rc));
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

/* The lab's schema, and an engine on it with a connection for every
 * operation a run can have in flight (a gated operation holds its
 * connection until its round's reads are done), all connected before the
 * first run. */
static int lab_connect(race_lab *lab)
{
    cli *c = lab->c;
    int rc = cli_db_resolve(c, &lab->db, 0);
    if (rc || (rc = lab_schema_open(c, &lab->db, "race", NULL, &lab->schema)) != 0)
        return rc;
    pgbank_options opt;
    lab_engine_options(&lab->schema, &opt); /* --echo, --unnamed-statements */
    opt.connections = lab->nclients + 2;
    if ((rc = lab_engine_open(&lab->schema, &opt, 30000, &lab->eng)) != 0)
        return rc;
    lab->load.eng = lab->eng;
    lab->load.hooks = &race_hooks;
    lab->load.answers = 1u << PGBANK_OK | 1u << PGBANK_INSUFFICIENT_FUNDS;
    lab->load.latency_all = 1;
    lab->load.drain_ns = (int64_t)RUN_SLACK_MS * 1000000;
    return 0;
}

static int lab_measure(race_lab *lab)
{
    int64_t start = pgbank__now_ns();
    for (int i = 0; i < lab->ncells; i++) {
        race_cell *cell = &lab->cells[i];
        for (int run = 0; run < lab->set->runs; run++) {
            progress(lab, cell, run);
            int rc = lab_run(lab, cell);
            if (rc || lab_interrupted()) {
                progress_clear(lab);
                return rc;
            }
        }
    }
    progress_clear(lab);
    lab->elapsed_ns = pgbank__now_ns() - start;
    return 0;
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
        if (n == 0)
            return cli_usage_error(c, "--strategies: empty name in '%s'",
                                   list);
        pgbank_strategy s;
        int rc = cli_parse_strategy(c, "--strategies", p, n, &s);
        if (rc)
            return rc;
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

/* The engine first: freeing it completes what it still holds, and the
 * completions must find the load; then the schema goes. */
static void lab_close(race_lab *lab)
{
    lab_engine_close(&lab->load, &lab->eng);
    lab_schema_close(&lab->schema);
    cli_db_close(lab->c, &lab->db);
}

static int report(race_lab *lab, const char *gnuplot)
{
    cli *c = lab->c;
    const race_settings *set = lab->set;
    if (c->json)
        race_print_json(lab);
    else
        race_print_table(lab);
    int bug = race_report_safe_anomalies(lab);
    int failed = race_report_failures(lab);
    int rc = bug ? CLI_EXIT_REFUSED : failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    if (!set->plot)
        return rc;
    /* The measurement stands whatever becomes of its picture: a plot that
     * cannot be drawn now is said, the exit code stays. */
    char err[512] = "";
    if (race_plot(lab, gnuplot, set->plot, err, sizeof err) != 0)
        fprintf(stderr, "pgbank race: could not draw the plot: %s\n", err);
    else
        fprintf(stderr, "pgbank race: plot written to %s\n", set->plot);
    return rc;
}

static int run_race(cli *c, int argc, char **argv)
{
    race_settings set;
    int rc = parse_settings(c, argc, argv, &set);
    if (rc || (rc = cli_parsed(c)) != 0)
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
    if (!lab.cells || lab_load_init(&lab.load, lab.nclients) != 0) {
        free(lab.cells);
        lab_load_free(&lab.load);
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    }
    for (int i = 0; i < lab.ncells; i++) {
        lab.cells[i].strategy = set.strategies[i / SC_COUNT];
        lab.cells[i].scenario = i % SC_COUNT;
    }
    lab_signals_catch();
    if ((rc = lab_connect(&lab)) == 0 && (rc = lab_measure(&lab)) == 0 && !lab_interrupted()) {
        /* Nothing of the lab outlives the measurement (db.where stays). */
        lab_close(&lab);
        rc = report(&lab, gnuplot);
    }
    lab_close(&lab);
    rc = lab_finish("race", rc);
    lab_signals_restore();
    lab_load_free(&lab.load);
    free(lab.cells);
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
    "The lab works in a schema of its own, pgbank_race_<n>, reached through\n"
    "options=-csearch_path and dropped at the end: your accounts and journal\n"
    "are never touched, and `pgbank audit` of your bank still holds.  A schema\n"
    "left by a run that was killed is dropped by the next lab run.  Behind a\n"
    "pooler in transaction mode (PgBouncer) a connection cannot keep a schema:\n"
    "point --db at the server itself.  Ctrl-C (SIGINT) or SIGTERM stops the\n"
    "lab after the run in progress: nothing is reported, the schema is\n"
    "dropped, the exit code is 130 (143 for SIGTERM).  A second one kills.\n"
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
