/*
 * lab.h - the lab harness: what `pgbank race`, `pgbank bench` and
 * `pgbank chaos` share, so that each command is a thin user of it (as every
 * pgbench script runs through one client loop and one report path).
 *
 *   schema.c  the lab's schema: every run works in a schema of its own,
 *             pgbank_<kind>_<n>, which its connections reach through
 *             options=-csearch_path, so the user's tables are never
 *             touched.  A control connection holds a session advisory lock
 *             (LAB_LOCK_CLASS, n) while the run lives; the schema is dropped
 *             at the end, also after a failure or Ctrl-C, and a run that was
 *             killed outright leaves one whose lock is free: the next run
 *             drops it.  Also the control connection's queries and the one
 *             function that opens an engine on the lab's schema.
 *   load.c    load generation: closed-loop clients, a deadline, a drain,
 *             answers tallied by status, latencies in a histogram (hist.h),
 *             a tick per interval; and Ctrl-C (SIGINT, SIGTERM).
 *   zipf.c    Zipf-distributed account ids (random numbers: pgbank__rand_*
 *             of src/util.c, the project's one generator).
 *   pgbench.c pgbench on the lab's accounts (pgbench.h).
 */
#ifndef PGBANK_CLI_LAB_H
#define PGBANK_CLI_LAB_H

#include "cli.h"
#include "hist.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------------
 * Interruption: the first SIGINT or SIGTERM asks the lab to stop (a load
 * drains, a statement on the control connection is cancelled, a child
 * program is stopped); the command drops its schema and exits 128 + the
 * signal, or as it documents.  The second one kills at once (the schema is
 * then left to the next run).
 * ------------------------------------------------------------------------ */

/* Installs the handlers (and clears a previous interruption). */
void lab_signals_catch(void);
/* Puts back what was there before lab_signals_catch(). */
void lab_signals_restore(void);
/* 0, or the signal that interrupted the lab. */
int lab_interrupted(void);
/* The exit code of an interrupted command: 128 + the signal (130, 143). */
int lab_interrupt_exit(void);
/* What an interrupted command returns, after "pgbank CMD: interrupted ..."
 * on stderr; `rc` when it was not interrupted. */
int lab_finish(const char *cmd, int rc);
/* A child program to stop (SIGTERM) on interruption; 0 for none. */
void lab_signals_child(pid_t pid);
/* Cancels the statement running on the lab's control connection (from the
 * signal handler; schema.c). */
void lab_cancel_running(void);

/* ------------------------------------------------------------------------
 * The lab's schema.
 * ------------------------------------------------------------------------ */

/* The first key of every lab's advisory lock (the second is its n). */
#define LAB_LOCK_CLASS 7405164

typedef struct lab_schema {
    cli *c;
    const cli_db *db; /* the user's database, resolved by the command */
    char kind[16];    /* "race", "bench", "chaos" */
    char name[64];    /* pgbank_<kind>_<n> */
    int n;            /* the second key of its lock */
    char appname[64]; /* pgbank-<kind>-<n>: the run's engine connections */
    char *conninfo;   /* the user's, search_path = name, application_name */
    PGconn *ctl;      /* holds the lock: setup, checks, faults */
    PGcancel *cancel; /* for an interruption */
    int made;         /* the schema exists: drop it at the end */
    int keep;         /* leave it at the end (chaos --keep) */
    int closing;      /* dropping it: a signal cancels nothing any more */
} lab_schema;

/* Drops the schemas killed runs left, creates this run's schema with
 * pgbank's tables in it (pgbank_schema_create() with opt; NULL for the
 * defaults), and keeps its lock.  Returns 0, or an exit code after a
 * message (call lab_schema_close() in every case). */
int lab_schema_open(cli *c, const cli_db *db, const char *kind, const pgbank_schema_options *opt,
                    lab_schema *s);

/* Drops the schema (unless keep), closes the control connection, frees.
 * Safe on a zeroed or half-opened lab_schema. */
void lab_schema_close(lab_schema *s);

/* Runs sql on the control connection, reconnecting once when it died (a
 * crashed server leaves it looking healthy until it is used; the lock is
 * taken again).  Returns the result (PQclear it), or NULL with a one-line,
 * password-free reason in err. */
PGresult *lab_query(lab_schema *s, const char *sql, int nparams, const char *const *params,
                    char *err, size_t errlen);

/* lab_query() for the setup: "pgbank: could not WHAT: reason" on failure.
 * Returns 0 (the result in *out when out is not NULL), or an exit code. */
int lab_exec(lab_schema *s, const char *what, const char *sql, int nparams,
             const char *const *params, PGresult **out);

/* How much the balances of the lab's accounts fell in all (opening total -
 * sum), and how many are negative.  Returns 0, or an exit code. */
int lab_debited(lab_schema *s, int64_t opening_total, int64_t *debited, int64_t *negative);

/* VACUUM accounts, then CHECKPOINT (skipped without the right): every
 * measured phase starts without the previous one's dead rows or its
 * pending full-page writes.  Returns 0, or an exit code. */
int lab_settle(lab_schema *s);

/* The database's committed transactions (pg_stat_database), once the
 * backends that just closed have reported theirs; -1 when unreadable. */
int64_t lab_commits(lab_schema *s);

/* The options of an engine on the lab's schema: its connection string,
 * --echo and --unnamed-statements; the command sets the rest. */
void lab_engine_options(const lab_schema *s, pgbank_options *opt);

/* Creates the engine and opens every connection of its pool before
 * returning (a cold pool staggers the first operations).  Returns 0, or an
 * exit code after a message. */
int lab_engine_open(lab_schema *s, const pgbank_options *opt, int timeout_ms,
                    pgbank_engine **out);

/* ------------------------------------------------------------------------
 * Load: clients in a closed loop until a deadline, then a drain.
 * ------------------------------------------------------------------------ */

enum { LAB_IDLE, LAB_FLIGHT, LAB_WAIT };

/* What a client does after an answer (lab_hooks.done). */
enum {
    LAB_NEXT,  /* its next operation at once, unless the load is stopping */
    LAB_RETRY, /* the same operation again at cl->wake_ns, even while draining */
    LAB_STOP   /* nothing more (the hook may restart it with lab_client_start) */
};

/* lab_load_run() returns this when operations were still in flight when
 * the drain ran out. */
#define LAB_TIMED_OUT 1

typedef struct lab_load lab_load;

typedef struct lab_client {
    pgbank_op op;    /* done and user_data belong to the harness */
    pgbank_gate *gate; /* the gate op is submitted with (pgbank_submit_gated), or NULL */
    lab_load *load;
    int index;       /* into the command's own per-client arrays */
    int state;       /* LAB_IDLE, LAB_FLIGHT, LAB_WAIT */
    int64_t t0;      /* when op was submitted */
    int64_t wake_ns; /* LAB_WAIT: when it is sent again */
} lab_client;

/* Answers counted by status; what is not an answer is a failure. */
typedef struct lab_tally {
    int64_t by_status[PGBANK__STATUS_COUNT];
    int64_t not_submitted; /* pgbank_submit() refused: the load stopped */
    int64_t failures;      /* statuses outside the load's answers, and refusals */
    int64_t db_failures;   /* of those: database error, unknown outcome, shut down */
    char first_failure[320];
    cli_hist hist; /* latencies, µs (lab_load.latency_all) */
} lab_tally;

/* What a command plugs into the loop; any hook may be NULL. */
typedef struct lab_hooks {
    /* Prepares cl->op for the client's next operation.  Non-zero: the
     * client stays idle. */
    int (*next)(lab_load *L, lab_client *cl);
    /* An answer, already tallied.  Returns LAB_NEXT, LAB_RETRY (after
     * setting cl->wake_ns) or LAB_STOP. */
    int (*done)(lab_load *L, lab_client *cl, int64_t now);
    /* Every turn of the loop (faults, progress).  Returns when it wants the
     * next turn, 0 for no wish. */
    int64_t (*step)(lab_load *L, int64_t now);
    /* At the end of every interval_ns, and of the run: the interval's
     * figures are in L->iv_*. */
    void (*tick)(lab_load *L, int64_t now);
    /* Non-zero while the drain must wait for the command (a crashed server
     * being restarted). */
    int (*busy)(lab_load *L);
} lab_hooks;

struct lab_load {
    /* Set by the command (lab_load_init() gives the defaults). */
    pgbank_engine *eng;
    lab_client *clients; /* nclients of capacity */
    int nclients, capacity;
    const lab_hooks *hooks;
    void *arg;           /* the command's state, for the hooks */
    lab_tally *tally;    /* where answers are counted */
    unsigned answers;    /* bit per status that is an answer (default: ok) */
    int latency_all;     /* 1: time every answer; 0 (default): ok ones only */
    int64_t duration_ns; /* the deadline after the start (0: one operation each) */
    int64_t drain_ns;    /* what is in flight may take this long after it */
    int64_t interval_ns; /* > 0: hooks->tick every interval */
    /* Kept by the harness. */
    int64_t start_ns, deadline_ns, last_done_ns, end_ns;
    int stopping, aborted, detached;
    int64_t resubmitted; /* LAB_RETRY operations sent again */
    int64_t iv_start_ns, iv_ok, iv_failures;
    cli_hist iv_hist;
};

/* Allocates `capacity` clients (nclients = capacity) and sets the
 * defaults.  Returns 0, or -1 when out of memory. */
int lab_load_init(lab_load *L, int capacity);
void lab_load_free(lab_load *L);

/* Starts every client, runs until the deadline (or an interruption), then
 * lets what is in flight finish within drain_ns.  Returns 0,
 * LAB_TIMED_OUT, or a negative PGBANK_E* code of the engine's loop. */
int lab_load_run(lab_load *L);

/* Prepares (hooks->next) and submits cl's next operation. */
void lab_client_start(lab_load *L, lab_client *cl);

/* Whether no new operation may start: the deadline passed, an
 * interruption, a refused submission. */
int lab_load_stopping(const lab_load *L, int64_t now);

/* From a hook: end the run now, without a drain. */
void lab_load_abort(lab_load *L);

/* Before the engine is freed while operations are in flight: their
 * completions (shut down) are ignored, nothing is resubmitted. */
void lab_load_detach(lab_load *L);

/* Frees *eng (and sets it to NULL) with L detached first: what the engine
 * still holds completes as shut down, and is no longer the run's. */
void lab_engine_close(lab_load *L, pgbank_engine **eng);

/* count per second of ns (0 when ns <= 0). */
double lab_per_sec(int64_t count, int64_t ns);

/* Adds src's counts to dst (the first failure kept, if any). */
void lab_tally_merge(lab_tally *dst, const lab_tally *src);

/* ------------------------------------------------------------------------
 * Zipf: ids 1..n, P(k) proportional to k^-s (k = 1 the hottest), by
 * rejection-inversion (Hörmann and Derflinger 1996, as in Apache Commons
 * RNG): exact for any n, O(1) memory, a log and an exp per draw.
 * ------------------------------------------------------------------------ */

typedef struct lab_zipf {
    double s, n;
    double h_x1, h_n, squeeze;
} lab_zipf;

void lab_zipf_init(lab_zipf *z, int64_t n, double s);
/* A draw, with the random state of pgbank__rand_next(). */
int64_t lab_zipf_draw(const lab_zipf *z, uint64_t *rng);

#endif
