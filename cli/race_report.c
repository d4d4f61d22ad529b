/*
 * race_report.c - what `pgbank race` measured (race.h): the seed's summary
 * table filled in, the same as one JSON object, the failures on stderr, and
 * --plot's picture (anomalous runs and money lost or created per strategy
 * and scenario).
 */
#include "plot.h"
#include "race.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * The table and the JSON object.
 * ------------------------------------------------------------------------ */

/* The cell's ok and refused withdrawals. */
static int64_t cell_ok(const race_cell *cell)
{
    return cell->tally.by_status[PGBANK_OK];
}

static int64_t cell_refused(const race_cell *cell)
{
    return cell->tally.by_status[PGBANK_INSUFFICIENT_FUNDS];
}

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

/* The nearest-rank percentile of the answers' latencies, in ms. */
static double percentile_ms(const race_cell *cell, int pct)
{
    return cli_hist_percentile_ms(&cell->tally.hist, pct);
}

/* Answered withdrawals per second of run time. */
static double ops_per_sec(const race_cell *cell)
{
    return lab_per_sec(cell_ok(cell) + cell_refused(cell), cell->wall_ns);
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

void race_print_json(const race_lab *lab)
{
    const race_settings *set = lab->set;
    cli_json j, results, o;
    cli_json_begin(&j);
    cli_json_str(&j, "mode", set->deterministic ? "deterministic" : "natural");
    cli_json_int(&j, "runs", set->runs);
    cli_json_int(&j, "clients", set->clients);
    cli_json_int(&j, "hot_clients", set->hot_clients);
    cli_json_num(&j, "duration_s", 3, (double)set->duration_ns / 1e9);
    cli_json_num(&j, "elapsed_s", 3, (double)lab->elapsed_ns / 1e9);
    cli_json_array(&j, "results", &results);
    for (int i = 0; i < lab->ncells; i++) {
        const race_cell *cell = &lab->cells[i];
        char v[64];
        verdict(cell, v, sizeof v);
        cli_json_object(&results, NULL, &o);
        cli_json_str(&o, "strategy", pgbank_strategy_name(cell->strategy));
        cli_json_str(&o, "lock", lock_name(cell->strategy));
        cli_json_bool(&o, "safe", pgbank_strategy_is_safe(cell->strategy));
        cli_json_str(&o, "scenario", race_scenarios[cell->scenario].name);
        cli_json_int(&o, "runs", cell->runs);
        cli_json_int(&o, "anomalous_runs", cell->anomalous);
        cli_json_int(&o, "money_lost", cell->lost);
        cli_json_int(&o, "money_created", cell->created);
        cli_json_int(&o, "overdraft_runs", cell->overdraft);
        cli_json_str(&o, "verdict", v);
        cli_json_num(&o, "ops_per_sec", 1, ops_per_sec(cell));
        cli_json_num(&o, "p50_ms", 3, percentile_ms(cell, 50));
        cli_json_num(&o, "p99_ms", 3, percentile_ms(cell, 99));
        cli_json_int(&o, "succeeded", cell_ok(cell));
        cli_json_int(&o, "refused", cell_refused(cell));
        cli_json_int(&o, "failed", cell->tally.failures);
        cli_json_close(&o);
    }
    cli_json_close(&results);
    cli_json_end(&j);
}

void race_print_table(const race_lab *lab)
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
               race_scenarios[cell->scenario].name, anom, m, over, v,
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
        failed += lab->cells[i].tally.failures;
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
int race_report_failures(const race_lab *lab)
{
    int64_t failed = 0;
    for (int i = 0; i < lab->ncells; i++) {
        const race_cell *cell = &lab->cells[i];
        if (!cell->tally.failures)
            continue;
        failed += cell->tally.db_failures;
        cli_error(lab->c, 0, "%s, %s: %lld withdrawals failed (first: %s)",
                  pgbank_strategy_name(cell->strategy),
                  race_scenarios[cell->scenario].name, (long long)cell->tally.failures,
                  cell->tally.first_failure);
    }
    return failed != 0;
}

/* 1 when a strategy pgbank calls safe lost or created money: a bug. */
int race_report_safe_anomalies(const race_lab *lab)
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
                  cell->runs, race_scenarios[cell->scenario].name);
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
                sc, col, scenario_colors[sc], race_scenarios[sc].name);
    fprintf(f, "$D using 1:%d:%d with labels font ',8' offset 0,0.6 notitle, "
               "NaN with boxes fc rgb '#f8dcdc' title 'unsafe strategy', "
               "NaN with boxes fc rgb '#e3f2e3' title 'safe strategy'\n",
            col, label);
}

int race_plot(const race_lab *lab, const char *gnuplot, const char *file, char *err,
              size_t errlen)
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

