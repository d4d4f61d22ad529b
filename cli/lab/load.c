/*
 * load.c - the lab's one client loop (see lab.h): clients submit, their
 * completions are tallied and decide what the client does next (its next
 * operation, the same one again after a backoff, or nothing), a deadline
 * stops new work, a drain waits for what is in flight.  Race, bench and
 * chaos differ only in their hooks.  Also Ctrl-C: the signal handlers that
 * let a lab stop cleanly.
 */
#include "lab.h"

#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The engine's loop runs in slices of at most this, so an interruption is
 * noticed promptly whatever the deadline. */
#define SLICE_NS ((int64_t)100 * 1000000)

/* ------------------------------------------------------------------------
 * Interruption.
 * ------------------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;
static volatile pid_t child; /* a program to stop with us */
static struct sigaction old_int, old_term;
static int caught;

static void on_signal(int sig)
{
    if (!interrupted)
        interrupted = sig;
    pid_t p = child;
    if (p > 0)
        kill(p, SIGTERM);
    lab_cancel_running();
}

void lab_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* The second signal finds the default action: it kills. */
    sa.sa_flags = (int)SA_RESETHAND;
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    caught = 1;
}

void lab_signals_restore(void)
{
    if (!caught)
        return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    caught = 0;
}

int lab_interrupted(void) { return interrupted; }

int lab_interrupt_exit(void) { return 128 + interrupted; }

void lab_signals_child(pid_t pid) { child = pid; }

int lab_finish(const char *cmd, int rc)
{
    if (!interrupted)
        return rc;
    fprintf(stderr, "pgbank %s: interrupted by %s; nothing is reported, and the lab's "
            "schema is dropped\n", cmd, interrupted == SIGINT ? "SIGINT" : "SIGTERM");
    return lab_interrupt_exit();
}

/* ------------------------------------------------------------------------
 * Tally.
 * ------------------------------------------------------------------------ */

static void failure(lab_tally *t, const char *status, const char *msg, int db)
{
    t->failures++;
    t->db_failures += db;
    if (!t->first_failure[0])
        snprintf(t->first_failure, sizeof t->first_failure, "%s%s%s", status,
                 msg[0] ? ": " : "", msg);
}

static int is_db_failure(pgbank_status st)
{
    return st == PGBANK_DB_ERROR || st == PGBANK_UNKNOWN_OUTCOME || st == PGBANK_SHUT_DOWN;
}

static void tally_answer(lab_load *L, const lab_client *cl, int64_t now)
{
    lab_tally *t = L->tally;
    pgbank_status st = cl->op.result.status;
    int known = (int)st >= 0 && st < PGBANK__STATUS_COUNT;
    if (known)
        t->by_status[st]++;
    if (known && (L->answers >> st) & 1u) {
        L->iv_ok += st == PGBANK_OK;
    } else {
        L->iv_failures++;
        failure(t, pgbank_status_name(st), cl->op.result.message, is_db_failure(st));
    }
    if (L->latency_all || st == PGBANK_OK)
        cli_hist_record(&L->iv_hist, (uint64_t)(now - cl->t0 + 500) / 1000);
}

void lab_tally_merge(lab_tally *dst, const lab_tally *src)
{
    for (int i = 0; i < PGBANK__STATUS_COUNT; i++)
        dst->by_status[i] += src->by_status[i];
    dst->not_submitted += src->not_submitted;
    dst->failures += src->failures;
    dst->db_failures += src->db_failures;
    if (!dst->first_failure[0])
        memcpy(dst->first_failure, src->first_failure, sizeof dst->first_failure);
    cli_hist_merge(&dst->hist, &src->hist);
}

double lab_per_sec(int64_t count, int64_t ns)
{
    return ns > 0 ? (double)count * 1e9 / (double)ns : 0.0;
}

/* ------------------------------------------------------------------------
 * Clients.
 * ------------------------------------------------------------------------ */

int lab_load_init(lab_load *L, int capacity)
{
    memset(L, 0, sizeof *L);
    L->clients = calloc((size_t)(capacity > 0 ? capacity : 1), sizeof *L->clients);
    if (!L->clients)
        return -1;
    L->capacity = L->nclients = capacity;
    for (int i = 0; i < capacity; i++) {
        L->clients[i].load = L;
        L->clients[i].index = i;
    }
    L->answers = 1u << PGBANK_OK;
    return 0;
}

void lab_load_free(lab_load *L)
{
    free(L->clients);
    L->clients = NULL;
}

int lab_load_stopping(const lab_load *L, int64_t now)
{
    return L->stopping || L->aborted || now >= L->deadline_ns;
}

void lab_load_abort(lab_load *L) { L->aborted = 1; }

void lab_load_detach(lab_load *L) { L->detached = 1; }

void lab_engine_close(lab_load *L, pgbank_engine **eng)
{
    lab_load_detach(L);
    pgbank_engine_free(*eng);
    *eng = NULL;
}

static void on_done(pgbank_op *op);

static void submit(lab_load *L, lab_client *cl)
{
    cl->op.done = on_done;
    cl->op.user_data = cl;
    cl->state = LAB_FLIGHT;
    cl->t0 = pgbank__now_ns();
    int rc = pgbank_submit_gated(L->eng, &cl->op, cl->gate);
    if (rc != 0) {
        /* The callback will never run.  The engine refuses only misuse or
         * a shutdown: nothing more can be learnt from this load. */
        cl->state = LAB_IDLE;
        L->tally->not_submitted++;
        L->stopping = 1;
        failure(L->tally, "not submitted", pgbank_strerror(rc), 1);
    }
}

void lab_client_start(lab_load *L, lab_client *cl)
{
    if (L->hooks && L->hooks->next && L->hooks->next(L, cl) != 0) {
        cl->state = LAB_IDLE;
        return;
    }
    submit(L, cl);
}

static void on_done(pgbank_op *op)
{
    lab_client *cl = op->user_data;
    lab_load *L = cl->load;
    cl->state = LAB_IDLE;
    if (L->detached)
        return;
    int64_t now = pgbank__now_ns();
    tally_answer(L, cl, now);
    L->last_done_ns = now;
    int next = L->hooks && L->hooks->done ? L->hooks->done(L, cl, now) : LAB_NEXT;
    if (next == LAB_RETRY)
        cl->state = LAB_WAIT;
    else if (next == LAB_NEXT && cl->state == LAB_IDLE && !lab_load_stopping(L, now))
        lab_client_start(L, cl); /* a closed loop: this client goes on at once */
}

/* Sends again the clients whose wait is over.  Returns how many are still
 * busy (in flight or waiting); *next_wake gets the earliest wait's end. */
static int wake_clients(lab_load *L, int64_t now, int64_t *next_wake)
{
    int active = 0;
    *next_wake = 0;
    for (int i = 0; i < L->nclients; i++) {
        lab_client *cl = &L->clients[i];
        if (cl->state == LAB_WAIT && cl->wake_ns <= now) {
            L->resubmitted++;
            submit(L, cl);
        }
        if (cl->state != LAB_IDLE)
            active++;
        if (cl->state == LAB_WAIT && (!*next_wake || cl->wake_ns < *next_wake))
            *next_wake = cl->wake_ns;
    }
    return active;
}

/* Closes the interval that ends at `now`: the tick, then its latencies
 * join the run's. */
static void end_interval(lab_load *L, int64_t now)
{
    if (L->hooks && L->hooks->tick && now > L->iv_start_ns)
        L->hooks->tick(L, now);
    cli_hist_merge(&L->tally->hist, &L->iv_hist);
    cli_hist_reset(&L->iv_hist);
    L->iv_ok = L->iv_failures = 0;
    L->iv_start_ns = now;
}

int lab_load_run(lab_load *L)
{
    int64_t now = pgbank__now_ns();
    L->start_ns = L->iv_start_ns = now;
    L->deadline_ns = now + L->duration_ns;
    L->stopping = L->aborted = L->detached = 0;
    L->last_done_ns = 0;
    cli_hist_reset(&L->iv_hist);
    L->iv_ok = L->iv_failures = 0;
    int64_t next_tick = L->interval_ns > 0 ? now + L->interval_ns : 0;
    int64_t drain_end = 0;
    int rc = 0;
    for (int i = 0; i < L->nclients && !L->stopping; i++)
        lab_client_start(L, &L->clients[i]);
    for (;;) {
        now = pgbank__now_ns();
        if (next_tick && now >= next_tick && now < L->deadline_ns) {
            end_interval(L, now);
            next_tick += L->interval_ns;
            continue;
        }
        if (!drain_end && (lab_load_stopping(L, now) || lab_interrupted())) {
            L->stopping = 1;
            drain_end = now + L->drain_ns;
        }
        int64_t next_wake;
        int active = wake_clients(L, now, &next_wake);
        int64_t want = L->hooks && L->hooks->step ? L->hooks->step(L, now) : 0;
        if (L->aborted)
            break;
        /* Nothing in flight, nothing waiting: before the deadline that means
         * every client stopped, and nothing more can happen. */
        if (active == 0 && !(L->hooks && L->hooks->busy && L->hooks->busy(L)))
            break;
        if (drain_end && now >= drain_end) {
            rc = LAB_TIMED_OUT;
            break;
        }
        int64_t until = drain_end ? drain_end : L->deadline_ns;
        if (next_tick && !drain_end && next_tick < until)
            until = next_tick;
        if (next_wake && next_wake < until)
            until = next_wake;
        if (want && want < until)
            until = want;
        if (until > now + SLICE_NS)
            until = now + SLICE_NS;
        int ms = (int)((until - now + 999999) / 1000000);
        if (ms < 1)
            ms = 1;
        if (pgbank_engine_pending(L->eng) > 0) {
            int e = pgbank_engine_run(L->eng, ms);
            if (e != 0 && e != PGBANK_ETIMEDOUT) {
                rc = e;
                break;
            }
        } else {
            pgbank__sleep_ms(ms);
        }
    }
    L->end_ns = pgbank__now_ns();
    end_interval(L, L->last_done_ns > L->iv_start_ns ? L->last_done_ns : L->end_ns);
    return rc;
}
