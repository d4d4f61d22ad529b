/*
 * pgbench.h - pgbench on the lab's accounts, for `pgbank bench
 * --vs-pgbench`: two scripts doing pgbank's atomic withdrawal (one UPDATE
 * per commit; ten per commit in a pipeline), on the same server, accounts,
 * clients and duration, one thread; their throughput, latency percentiles
 * (from pgbench's per-transaction log, in the same histogram as pgbank's),
 * client CPU and memory, server commits, and what the balances lost.
 */
#ifndef PGBANK_CLI_LAB_PGBENCH_H
#define PGBANK_CLI_LAB_PGBENCH_H

#include "lab.h"

enum { LAB_PGB_ONE, LAB_PGB_TEN, LAB_PGB_COUNT };

typedef struct lab_pgb_result {
    int ran;         /* pgbench produced a throughput */
    char error[512]; /* why not, or what went wrong */
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
    int64_t commits; /* -1: unknown */
    int64_t debited;
} lab_pgb_result;

/* What the scripts run: the same as pgbank's measurement. */
typedef struct lab_pgb_settings {
    int clients;
    int64_t duration_ns;
    int64_t accounts;
    int zipf; /* random_zipfian(1, accounts, zipf_s), else random() */
    double zipf_s;
    int64_t opening_total; /* the accounts' opening balances, summed */
    int journal; /* each withdrawal writes its journal row, as pgbank's atomic one does */
} lab_pgb_settings;

typedef struct lab_pgbench {
    int wanted;
    int found;
    char path[4096];
    int major;
    char dir[64]; /* temporary: scripts and logs */
    lab_pgb_result res[LAB_PGB_COUNT];
} lab_pgbench;

/* pgbench: $PGBANK_PGBENCH, else where PostgreSQL's programs are
 * (pgbank__pg_bindir: pg_config --bindir, $PATH, the newest
 * /usr/lib/postgresql/N/bin).  Returns 1 when found (its path in p->path). */
int lab_pgbench_find(lab_pgbench *p);

/* Runs both scripts, each after lab_settle(), on the lab's schema (the
 * password goes to pgbench in PGPASSWORD, never on its command line).
 * Fills p->res; an interruption stops pgbench and skips the rest. */
void lab_pgbench_run(lab_schema *s, const lab_pgb_settings *set, lab_pgbench *p);

/* The "pgbench" member of bench's JSON report and the two ratios:
 * `mine` is pgbank's withdrawals per second. */
void lab_pgbench_json(cli_json *j, const lab_pgbench *p, double mine);

/* The same as text, after pgbank's report. */
void lab_pgbench_print(const lab_pgbench *p, int clients, const char *strategy, double mine);

/* The scripts' names, as in reports: "one_per_commit", ... */
extern const char *const lab_pgb_names[LAB_PGB_COUNT];

#endif
