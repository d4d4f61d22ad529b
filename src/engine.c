/*
 * engine.c - the pool: accepts operations, queues them, hands them to ready
 * connections, runs completion callbacks (exactly one per accepted
 * operation), and tells the application's event loop which sockets to watch
 * and when to wake the engine (curl multi style).
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGBANK__API void pgbank_options_init(pgbank_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->connections = 4;
    opt->connect_timeout_ms = 10000;
    opt->pipeline_depth = 1;
    opt->retry_max = 30;
    opt->retry_budget_ms = 10000;
    opt->batch_max = 4096;
    opt->batch_inflight = 1;
}

PGBANK__API void pgbank_op_init(pgbank_op *op, pgbank_op_kind kind)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->strategy = PGBANK_ATOMIC;
}

PGBANK__API void pgbank_gate_init(pgbank_gate *gate, int expected)
{
    gate->expected = expected;
    gate->arrived = 0;
}

PGBANK__API int pgbank_engine_new(pgbank_engine **out, const pgbank_options *opt, char *err,
                                  size_t errlen)
{
    if (!out || !opt)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "no options given");
    *out = NULL;
    if (opt->connections < 1 || opt->connections > 1024)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "connections must be between 1 and 1024 (got %d)", opt->connections);
    char *conninfo = pgbank_conninfo_normalize(opt->conninfo ? opt->conninfo : "", err, errlen);
    if (!conninfo)
        return PGBANK_ECONNINFO;
    pgbank_engine *eng = calloc(1, sizeof *eng);
    pgbank__conn *conns = calloc((size_t)opt->connections, sizeof *conns);
    struct pollfd *pollfds = calloc((size_t)opt->connections, sizeof *pollfds);
    int *pollidx = calloc((size_t)opt->connections, sizeof *pollidx);
    if (!eng || !conns || !pollfds || !pollidx) {
        free(eng);
        free(conns);
        free(pollfds);
        free(pollidx);
        free(conninfo);
        return pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
    }
    eng->opt = *opt;
    eng->opt.conninfo = NULL; /* only the normalised copy is kept */
    if (eng->opt.connect_timeout_ms <= 0)
        eng->opt.connect_timeout_ms = 10000;
    if (eng->opt.pipeline_depth < 1)
        eng->opt.pipeline_depth = 1;
    if (eng->opt.retry_max < 0)
        eng->opt.retry_max = 0;
    if (eng->opt.retry_budget_ms <= 0)
        eng->opt.retry_budget_ms = 10000;
    if (eng->opt.batch_max < 1)
        eng->opt.batch_max = 4096;
    if (eng->opt.batch_inflight < 1)
        eng->opt.batch_inflight = 1;
    eng->rng = pgbank__rand_seed();
    eng->conninfo = conninfo;
    eng->conns = conns;
    eng->nconns = opt->connections;
    eng->pollfds = pollfds;
    eng->pollidx = pollidx;
    eng->told_timeout = -1;
    for (int i = 0; i < eng->nconns; i++) {
        conns[i].eng = eng;
        conns[i].fd = conns[i].told_fd = -1;
        conns[i].state = CONN_IDLE;
    }
    *out = eng;
    return 0;
}

PGBANK__API const char *pgbank_engine_error(const pgbank_engine *eng)
{
    return eng ? eng->error : "";
}

void pgbank__engine_set_error(pgbank_engine *eng, const char *msg)
{
    pgbank__strlcpy(eng->error, msg, sizeof eng->error);
    pgbank_conninfo_scrub(eng->conninfo, eng->error, sizeof eng->error);
}

PGBANK__API size_t pgbank_engine_pending(const pgbank_engine *eng)
{
    return eng ? eng->pending : 0;
}

PGBANK__API void pgbank_engine_get_stats(const pgbank_engine *eng, pgbank_engine_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!eng)
        return;
    st->batches = eng->batches_sent;
    st->batched_ops = eng->batched_ops;
}

static void engine_open_pool(pgbank_engine *eng)
{
    eng->want_pool = 1;
    for (int i = 0; i < eng->nconns; i++)
        if (eng->conns[i].state == CONN_IDLE)
            pgbank__conn_open(&eng->conns[i]);
}

PGBANK__API int pgbank_engine_connect(pgbank_engine *eng)
{
    if (!eng)
        return PGBANK_EINVAL;
    engine_open_pool(eng);
    pgbank__engine_after(eng);
    return 0;
}

/* --- completions ---------------------------------------------------------- */

void pgbank__op_set_message(pgbank_engine *eng, pgbank_op *op, const char *sqlstate,
                            const char *msg)
{
    pgbank__strlcpy(op->result.sqlstate, sqlstate ? sqlstate : "", sizeof op->result.sqlstate);
    pgbank__strlcpy(op->result.message, msg ? msg : "", sizeof op->result.message);
    size_t n = strlen(op->result.message);
    while (n && (op->result.message[n - 1] == '\n' || op->result.message[n - 1] == ' '))
        op->result.message[--n] = '\0';
    pgbank_conninfo_scrub(eng->conninfo, op->result.message, sizeof op->result.message);
}

/* The operation's result is final: its callback runs from the done list,
 * after the engine has finished the work at hand (never from inside
 * pgbank_submit, never twice). */
void pgbank__engine_complete(pgbank_engine *eng, pgbank_op *op, pgbank_status st)
{
    op->result.status = st;
    op->result.retries = op->priv.retries;
    op->priv.conn = NULL;
    op->priv.next = NULL;
    if (op->gate && !(op->priv.flags & OPF_ARRIVED))
        pgbank__gate_arrive(eng, op);
    if (eng->done_tail)
        eng->done_tail->priv.next = op;
    else
        eng->done_head = op;
    eng->done_tail = op;
}

static void engine_run_callbacks(pgbank_engine *eng)
{
    pgbank_op *op;
    while ((op = eng->done_head) != NULL) {
        eng->done_head = op->priv.next;
        if (!eng->done_head)
            eng->done_tail = NULL;
        op->priv.next = NULL;
        op->priv.flags |= OPF_COMPLETED;
        eng->pending--;
        eng->in_callbacks++;
        if (op->done)
            op->done(op); /* may reuse or free op: not touched after this */
        eng->in_callbacks--;
    }
}

void pgbank__engine_fail_queue(pgbank_engine *eng, const char *sqlstate, const char *msg)
{
    pgbank_op *op;
    while ((op = eng->queue_head) != NULL) {
        eng->queue_head = op->priv.next;
        pgbank__op_set_message(eng, op, sqlstate, msg);
        if (op->priv.flags & OPF_INDOUBT) {
            /* A keyed operation whose COMMIT was sent before its connection
             * died, and no connection to resolve it by its key. */
            char m[300];
            snprintf(m, sizeof m, "connection lost after the commit was sent (%s)",
                     op->result.message);
            pgbank__op_set_message(eng, op, PGBANK_SQLSTATE_CONNECTION_FAILURE, m);
            pgbank__engine_complete(eng, op, PGBANK_UNKNOWN_OUTCOME);
        } else {
            pgbank__engine_complete(eng, op, PGBANK_DB_ERROR);
        }
    }
    eng->queue_tail = NULL;
}

/* A keyed operation to run again (its connection died): first in line. */
void pgbank__engine_requeue(pgbank_engine *eng, pgbank_op *op)
{
    op->priv.conn = NULL;
    op->priv.next = eng->queue_head;
    eng->queue_head = op;
    if (!eng->queue_tail)
        eng->queue_tail = op;
}

/* A serializable retry waits for its backoff; the timer moves it back. */
void pgbank__engine_delay(pgbank_engine *eng, pgbank_op *op, int64_t wake_ns)
{
    op->priv.conn = NULL;
    op->priv.wake_ns = wake_ns;
    op->priv.next = eng->delayed;
    eng->delayed = op;
}

/* --- dispatch --------------------------------------------------------------- */

/* A ready connection for op: an idle one first; a single-statement operation
 * may also join a pipeline that is not held by a transaction. */
static pgbank__conn *engine_pick(pgbank_engine *eng, const pgbank_op *op)
{
    int multi = pgbank__op_is_multistep(op);
    int batched = pgbank__is_batched(op); /* a batch has its connection to itself */
    pgbank__conn *best = NULL;
    for (int k = 0; k < eng->nconns; k++) {
        int i = (eng->next_conn + k) % eng->nconns;
        pgbank__conn *c = &eng->conns[i];
        if (c->state != CONN_READY)
            continue;
        if (c->inflight == 0) {
            eng->next_conn = (i + 1) % eng->nconns;
            return c;
        }
        if (multi || batched || c->batch || c->inflight >= eng->opt.pipeline_depth ||
            pgbank__op_is_multistep(c->head))
            continue;
        if (!best || c->inflight < best->inflight)
            best = c;
    }
    return best;
}

void pgbank__engine_dispatch(pgbank_engine *eng)
{
    while (eng->queue_head) {
        pgbank_op *op = eng->queue_head;
        if (pgbank__is_batched(op)) {
            if (eng->batches_inflight >= eng->opt.batch_inflight)
                break;
            pgbank__conn *c = engine_pick(eng, op);
            if (!c)
                break;
            if (!eng->batch_fn || (op->key && !eng->keyed_fn)) {
                /* The server functions come with `pgbank init`. */
                pgbank_status st = PGBANK_DB_ERROR;
                const char *bad = pgbank__op_invalid(eng, op, &st);
                if (!bad)
                    st = PGBANK_DB_ERROR;
                pgbank__op_set_message(eng, op, bad ? "" : PGBANK_SQLSTATE_UNDEFINED_FUNCTION,
                                       bad ? bad
                                       : op->key ? "a keyed batch operation needs pgbank_keyed()"
                                                   " (schema 4): run 'pgbank init'"
                                                 : "the batch strategy needs pgbank_batch(): run "
                                                   "'pgbank init'");
                eng->queue_head = op->priv.next;
                if (!eng->queue_head)
                    eng->queue_tail = NULL;
                pgbank__engine_complete(eng, op, st);
                continue;
            }
            if (pgbank__batch_send(c) < 0)
                pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_FAILURE, c->pg ? PQerrorMessage(c->pg) : "out of memory");
            continue;
        }
        pgbank__conn *c = engine_pick(eng, op);
        if (!c)
            break;
        eng->queue_head = op->priv.next;
        if (!eng->queue_head)
            eng->queue_tail = NULL;
        op->priv.next = NULL;
        pgbank_status st;
        const char *bad = pgbank__op_invalid(eng, op, &st);
        if (bad) {
            pgbank__op_set_message(eng, op, "", bad);
            pgbank__engine_complete(eng, op, st);
            continue;
        }
        if (pgbank__op_start(c, op) < 0)
            pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_FAILURE, PQerrorMessage(c->pg));
    }
}

PGBANK__API int pgbank_submit(pgbank_engine *eng, pgbank_op *op)
{
    if (!eng || !op)
        return PGBANK_EINVAL;
    if (eng->closing)
        return PGBANK_ESHUTDOWN;
    if ((int)op->kind < 0 || op->kind > PGBANK_OP_OPEN)
        return PGBANK_EINVAL;
    if ((int)op->strategy < 0 || (int)op->strategy >= PGBANK_STRATEGY_COUNT)
        return PGBANK_EINVAL;
    memset(&op->priv, 0, sizeof op->priv);
    memset(&op->result, 0, sizeof op->result);
    op->priv.submitted_ns = pgbank__now_ns();
    eng->pending++;
    if (op->kind != PGBANK_OP_BALANCE && op->kind != PGBANK_OP_OPEN && op->amount <= 0) {
        /* Rejected before anything is sent, whatever the column type. */
        pgbank__op_set_message(eng, op, "", "the amount must be positive");
        pgbank__engine_complete(eng, op, PGBANK_INVALID_AMOUNT);
        pgbank__engine_after(eng);
        return 0;
    }
    if (eng->queue_tail)
        eng->queue_tail->priv.next = op;
    else
        eng->queue_head = op;
    eng->queue_tail = op;
    if (!eng->want_pool)
        engine_open_pool(eng);
    if (eng->in_callbacks)
        return 0; /* dispatched once the callbacks are done: resubmissions travel together */
    pgbank__engine_dispatch(eng);
    pgbank__engine_after(eng);
    return 0;
}

/* --- timers and the application's loop ---------------------------------------- */

int64_t pgbank__engine_next_deadline(pgbank_engine *eng)
{
    if (eng->done_head)
        return pgbank__now_ns();
    int64_t next = 0;
    for (pgbank_op *op = eng->delayed; op; op = op->priv.next)
        if (!next || op->priv.wake_ns < next)
            next = op->priv.wake_ns;
    for (int i = 0; i < eng->nconns; i++) {
        int64_t d = eng->conns[i].deadline_ns;
        if (d && (!next || d < next))
            next = d;
    }
    return next;
}

void pgbank__engine_timers(pgbank_engine *eng)
{
    int64_t now = pgbank__now_ns();
    for (int i = 0; i < eng->nconns; i++)
        pgbank__conn_timeout(&eng->conns[i], now);
    /* Retries whose backoff is over go back to the queue (at the end: the
     * operations that waited in line keep their turn). */
    pgbank_op **pp = &eng->delayed;
    while (*pp) {
        pgbank_op *op = *pp;
        if (op->priv.wake_ns > now) {
            pp = &op->priv.next;
            continue;
        }
        *pp = op->priv.next;
        op->priv.next = NULL;
        if (eng->queue_tail)
            eng->queue_tail->priv.next = op;
        else
            eng->queue_head = op;
        eng->queue_tail = op;
    }
}

/* Tells the application's loop what changed: sockets and wake-up time. */
static void engine_tell_loop(pgbank_engine *eng)
{
    if (!eng->on_socket)
        return;
    /* Removals first, then additions: a number freed by one connection may
     * already belong to another. */
    for (int i = 0; i < eng->nconns; i++) {
        pgbank__conn *c = &eng->conns[i];
        int want = c->fd >= 0 ? c->want : 0;
        if (c->told_fd >= 0 && (c->told_fd != c->fd || !want)) {
            eng->on_socket(eng->loop_arg, c->told_fd, PGBANK_POLL_REMOVE);
            c->told_fd = -1;
            c->told_want = 0;
        }
    }
    for (int i = 0; i < eng->nconns; i++) {
        pgbank__conn *c = &eng->conns[i];
        int want = c->fd >= 0 ? c->want : 0;
        if (!want || (c->told_fd == c->fd && c->told_want == want))
            continue;
        eng->on_socket(eng->loop_arg, c->fd, want);
        c->told_fd = c->fd;
        c->told_want = want;
    }
    if (eng->on_timer) {
        int64_t d = pgbank__engine_next_deadline(eng);
        long ms = -1;
        if (d) {
            int64_t left = d - pgbank__now_ns();
            ms = left <= 0 ? 0 : (long)((left + 999999) / 1000000);
        }
        if (ms != eng->told_timeout || ms == 0) {
            eng->told_timeout = ms;
            eng->on_timer(eng->loop_arg, ms);
        }
    }
}

/* After any work: run callbacks (they may submit more), dispatch, then tell
 * the loop what to watch. */
void pgbank__engine_after(pgbank_engine *eng)
{
    do {
        engine_run_callbacks(eng);
        pgbank__engine_dispatch(eng);
    } while (eng->done_head);
    engine_tell_loop(eng);
}

PGBANK__API int pgbank_engine_set_loop(pgbank_engine *eng, pgbank_socket_fn on_socket,
                                       pgbank_timer_fn on_timer, void *arg)
{
    if (!eng || (!on_socket) != (!on_timer))
        return PGBANK_EINVAL;
    eng->on_socket = on_socket;
    eng->on_timer = on_timer;
    eng->loop_arg = arg;
    eng->told_timeout = -2;
    for (int i = 0; i < eng->nconns; i++) {
        eng->conns[i].told_fd = -1;
        eng->conns[i].told_want = 0;
    }
    engine_tell_loop(eng);
    return 0;
}

PGBANK__API int pgbank_engine_socket_action(pgbank_engine *eng, int fd, int events)
{
    if (!eng)
        return PGBANK_EINVAL;
    if (fd == PGBANK_SOCKET_TIMEOUT) {
        pgbank__engine_timers(eng);
    } else {
        for (int i = 0; i < eng->nconns; i++) {
            if (eng->conns[i].fd == fd) {
                pgbank__conn_handle(&eng->conns[i], events);
                break;
            }
        }
    }
    pgbank__engine_after(eng);
    return 0;
}

PGBANK__API void pgbank_engine_free(pgbank_engine *eng)
{
    if (!eng)
        return;
    eng->closing = 1;
    /* Queued operations never reached the database. */
    pgbank_op *op;
    while ((op = eng->queue_head) != NULL) {
        eng->queue_head = op->priv.next;
        pgbank__op_set_message(eng, op, "", "the engine was shut down before the operation ran");
        pgbank__engine_complete(eng, op, PGBANK_SHUT_DOWN);
    }
    eng->queue_tail = NULL;
    while ((op = eng->delayed) != NULL) {
        eng->delayed = op->priv.next;
        pgbank__op_set_message(eng, op, "", "shut down while waiting to retry");
        pgbank__engine_complete(eng, op, PGBANK_SHUT_DOWN);
    }
    for (int i = 0; i < eng->nconns; i++) {
        pgbank__conn *c = &eng->conns[i];
        pgbank__conn_close(c); /* tells the loop to forget its socket */
        free(c->buf);
        c->batch = 0;
        while ((op = c->head) != NULL) {
            c->head = op->priv.next;
            if (op->priv.flags & OPF_WRITE_SENT) {
                pgbank__op_set_message(eng, op, "",
                                       "shut down after COMMIT was sent: it may have been applied");
                pgbank__engine_complete(eng, op, PGBANK_UNKNOWN_OUTCOME);
            } else {
                pgbank__op_set_message(eng, op, "",
                                       "shut down: the transaction was rolled back");
                pgbank__engine_complete(eng, op, PGBANK_SHUT_DOWN);
            }
        }
    }
    engine_run_callbacks(eng);
    if (eng->on_timer)
        eng->on_timer(eng->loop_arg, -1);
    free(eng->conns);
    free(eng->pollfds);
    free(eng->pollidx);
    free(eng->conninfo);
    free(eng);
}
