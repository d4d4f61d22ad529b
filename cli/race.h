/*
 * race.h - the race lab's parts (cmd_race.c runs it, race_report.c reports
 * it): its scenarios, settings, and one cell of measurements per strategy
 * and scenario.
 */
#ifndef PGBANK_CLI_RACE_H
#define PGBANK_CLI_RACE_H

#include "cli.h"
#include "lab/lab.h"

enum { SC_DOUBLE_SPEND, SC_LOST_UPDATE, SC_CONTENTION, SC_COUNT };

typedef struct race_scenario {
    const char *name; /* as in reports and JSON */
    int64_t balance;  /* the fresh account's opening balance */
    int64_t amount;   /* every withdrawal */
} race_scenario;

extern const race_scenario race_scenarios[SC_COUNT];

#define LOST_UPDATE_CLIENTS 50

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

/* Measurements: one cell per strategy x scenario. */
typedef struct race_cell {
    pgbank_strategy strategy;
    int scenario;
    int runs, anomalous, overdraft;
    int64_t lost, created; /* money, summed over runs */
    lab_tally tally;       /* every withdrawal's answer and latency */
    int64_t wall_ns;       /* first submit to last completion, summed */
} race_cell;

typedef struct race_lab {
    cli *c;
    const race_settings *set;
    cli_db db;
    lab_schema schema;
    pgbank_engine *eng;
    lab_load load;
    race_cell *cells;
    int ncells;
    int nclients;
    int tty;
    int progress_shown;
    int64_t elapsed_ns;
} race_lab;

/* race_report.c: the table or the JSON object on stdout. */
void race_print_table(const race_lab *lab);
void race_print_json(const race_lab *lab);
/* Withdrawals that failed, on stderr; 1 when the database failed. */
int race_report_failures(const race_lab *lab);
/* A strategy meant to be safe that went wrong, on stderr; 1 then. */
int race_report_safe_anomalies(const race_lab *lab);
/* --plot: draws FILE with gnuplot.  Returns 0, or -1 with err. */
int race_plot(const race_lab *lab, const char *gnuplot, const char *file, char *err,
              size_t errlen);

#endif
