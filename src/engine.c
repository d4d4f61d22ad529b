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

static void engine_tell_loop(pgbank_engine *eng);

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
    opt->lanes = PGBANK_DEFAULT_LANES;
}

PGBANK__API size_t pgbank_op_size(void) { return sizeof(pgbank_op); }

PGBANK__API void pgbank_free(void *p) { free(p); }

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
    int lanes = opt->lanes ? opt->lanes : PGBANK_DEFAULT_LANES;
    if (lanes < 1 || lanes > 64)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "lanes must be between 1 and 64 (got %d)",
                            opt->lanes);
    int total = opt->connections + lanes;
    char *conninfo = pgbank_conninfo_normalize(opt->conninfo ? opt->conninfo : "", err, errlen);
    if (!conninfo)
        return PGBANK_ECONNINFO;
    pgbank_engine *eng = calloc(1, sizeof *eng);
    pgbank__conn *conns = calloc((size_t)total, sizeof *conns);
    struct pollfd *pollfds = calloc((size_t)total, sizeof *pollfds);
    int *pollidx = calloc((size_t)total, sizeof *pollidx);
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
    if (eng->opt.batch_max > PGBANK__BATCH_CAP)
        eng->opt.batch_max = PGBANK__BATCH_CAP; /* what the server takes */
    if (eng->opt.batch_inflight < 1)
        eng->opt.batch_inflight = 1;
    eng->opt.lanes = lanes;
    eng->nlanes = lanes;
    eng->rng = pgbank__rand_seed();
    eng->conninfo = conninfo;
    eng->scrub = pgbank__scrubber_new(conninfo);
    eng->conns = conns;
    eng->npool = opt->connections;
    eng->nconns = total;
    eng->pollfds = pollfds;
    eng->pollidx = pollidx;
    eng->told_timeout = -1;
    for (int i = 0; i < eng->nconns; i++) {
        conns[i].eng = eng;
        conns[i].fd = conns[i].told_fd = -1;
        conns[i].state = CONN_IDLE;
    }
    if (!eng->scrub || pgbank__batch_setup(eng) != 0) {
        pgbank_engine_free(eng);
        return pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
    }
    *out = eng;
    return 0;
}

PGBANK__API const char *pgbank_engine_error(const pgbank_engine *eng)
{
    return eng ? eng->error : "";
}

PGBANK__API size_t pgbank_engine_pending(const pgbank_engine *eng)
{
    return eng ? eng->pending : 0;
}

PGBANK__API int pgbank_engine_connected(const pgbank_engine *eng)
{
    int n = 0;
    for (int i = 0; eng && i < eng->nconns; i++)
        n += eng->conns[i].state == CONN_READY;
    return n;
}

PGBANK__API int pgbank_engine_hold(pgbank_engine *eng, int hold)
{
    if (!eng)
        return PGBANK_EINVAL;
    eng->holding = hold != 0;
    if (!eng->holding && !eng->in_callbacks) {
        pgbank__engine_dispatch(eng);
        engine_tell_loop(eng);
    }
    return 0;
}

PGBANK__API void pgbank_engine_get_stats(const pgbank_engine *eng, pgbank_engine_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!eng)
        return;
    st->batches = eng->batches_sent;
    st->batched_ops = eng->batched_ops;
    st->crossings = eng->crossings;
    st->lanes = eng->nlanes;
}

/* Opens connections [from, to) that are not open yet; they are wanted from
 * then on (a failed one reopens). */
static void engine_open(pgbank_engine *eng, int from, int to)
{
    for (int i = from; i < to; i++) {
        eng->conns[i].wanted = 1;
        if (eng->conns[i].state == CONN_IDLE)
            pgbank__conn_open(&eng->conns[i]);
    }
}

static void engine_open_pool(pgbank_engine *eng)
{
    eng->want_pool = 1;
    engine_open(eng, 0, eng->npool);
}

static void engine_open_lanes(pgbank_engine *eng)
{
    eng->want_lanes = 1;
    engine_open(eng, eng->npool, eng->nconns);
}

PGBANK__API int pgbank_engine_connect(pgbank_engine *eng)
{
    if (!eng)
        return PGBANK_EINVAL;
    engine_open_pool(eng);
    engine_open_lanes(eng);
    pgbank__engine_after(eng);
    return 0;
}

/* --- completions ----------------------------------------------------------- */

static void engine_run_callbacks(pgbank_engine *eng)
{
    pgbank_op *op;
    while ((op = eng->done_head) != NULL) {
        eng->done_head = OP(op)->next;
        if (!eng->done_head)
            eng->done_tail = NULL;
        OP(op)->next = NULL;
        OP(op)->flags |= OPF_COMPLETED;
        eng->pending--;
        eng->in_callbacks++;
        if (op->done)
            op->done(op); /* may reuse or free op: not touched after this */
        eng->in_callbacks--;
    }
}

/* --- dispatch --------------------------------------------------------------- */

/* A ready connection for op: an idle one first; a single-statement operation
 * may also join a pipeline that no transaction or batch holds. */
static pgbank__conn *engine_pick(pgbank_engine *eng, const pgbank_op *op)
{
    int alone = pgbank__op_is_multistep(op) || pgbank__is_batched(op);
    pgbank__conn *best = NULL;
    for (int k = 0; k < eng->npool; k++) {
        int i = (eng->next_conn + k) % eng->npool;
        pgbank__conn *c = &eng->conns[i];
        if (c->state != CONN_READY || c->exclusive)
            continue;
        if (c->inflight == 0) {
            eng->next_conn = (i + 1) % eng->npool;
            return c;
        }
        if (alone || c->inflight >= eng->opt.pipeline_depth)
            continue;
        if (!best || c->inflight < best->inflight)
            best = c;
    }
    return best;
}

void pgbank__engine_dispatch(pgbank_engine *eng)
{
    if (eng->holding)
        return; /* pgbank_engine_hold(): what waits goes on release */
    while (eng->queue_head) {
        pgbank_op *op = eng->queue_head;
        if (pgbank__is_batched(op)) {
            /* A keyed batched operation run again after its connection
             * died: back to its lane. */
            eng->queue_head = OP(op)->next;
            if (!eng->queue_head)
                eng->queue_tail = NULL;
            pgbank__batch_requeue(eng, op);
            continue;
        }
        pgbank__conn *c = engine_pick(eng, op);
        if (!c)
            break;
        eng->queue_head = OP(op)->next;
        if (!eng->queue_head)
            eng->queue_tail = NULL;
        OP(op)->next = NULL;
        if (pgbank__op_refuse_invalid(eng, op))
            continue;
        if (pgbank__op_start(c, op) < 0)
            pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_FAILURE, PQerrorMessage(c->pg));
    }
    pgbank__batch_dispatch(eng);
}

PGBANK__API int pgbank_submit(pgbank_engine *eng, pgbank_op *op)
{
    return pgbank_submit_gated(eng, op, NULL);
}

PGBANK__API int pgbank_submit_gated(pgbank_engine *eng, pgbank_op *op, pgbank_gate *gate)
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
    OP(op)->gate = gate;
    OP(op)->submitted_ns = pgbank__now_ns();
    eng->pending++;
    if (op->kind != PGBANK_OP_BALANCE && op->kind != PGBANK_OP_OPEN && op->amount <= 0) {
        /* Rejected before anything is sent, whatever the column type; its
         * callback runs from the loop, like every other. */
        pgbank__op_set_message(eng, op, "", "the amount must be positive");
        pgbank__engine_complete(eng, op, PGBANK_INVALID_AMOUNT);
        if (!eng->in_callbacks)
            engine_tell_loop(eng);
        return 0;
    }
    if (pgbank__is_batched(op)) {
        pgbank__batch_enqueue(eng, op);
        if (!eng->want_lanes)
            engine_open_lanes(eng);
    } else {
        if (eng->queue_tail)
            OP(eng->queue_tail)->next = op;
        else
            eng->queue_head = op;
        eng->queue_tail = op;
        if (!eng->want_pool)
            engine_open_pool(eng);
    }
    if (eng->in_callbacks)
        return 0; /* dispatched once the callbacks are done: resubmissions travel together */
    pgbank__engine_dispatch(eng);
    engine_tell_loop(eng);
    return 0;
}

/* --- timers and the application's loop ---------------------------------------- */

int64_t pgbank__engine_next_deadline(pgbank_engine *eng)
{
    if (eng->done_head)
        return pgbank__now_ns();
    int64_t next = 0;
    for (pgbank_op *op = eng->delayed; op; op = OP(op)->next)
        if (!next || OP(op)->wake_ns < next)
            next = OP(op)->wake_ns;
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
        if (OP(op)->wake_ns > now) {
            pp = &OP(op)->next;
            continue;
        }
        *pp = OP(op)->next;
        OP(op)->next = NULL;
        if (eng->queue_tail)
            OP(eng->queue_tail)->next = op;
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
    if (eng->all_down) {
        /* No connection left (conn.c): what waits for one fails now. */
        eng->all_down = 0;
        pgbank__engine_fail_queue(eng, eng->down_state, eng->error);
        pgbank__batch_fail_queued(eng, PGBANK_DB_ERROR, eng->down_state, eng->error);
    }
    do {
        if (eng->gates_full)
            pgbank__ops_release_gates(eng);
        engine_run_callbacks(eng);
        pgbank__engine_dispatch(eng);
    } while (eng->done_head || eng->gates_full);
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
        eng->queue_head = OP(op)->next;
        pgbank__op_set_message(eng, op, "", "the engine was shut down before the operation ran");
        pgbank__engine_complete(eng, op, PGBANK_SHUT_DOWN);
    }
    eng->queue_tail = NULL;
    while ((op = eng->delayed) != NULL) {
        eng->delayed = OP(op)->next;
        pgbank__op_set_message(eng, op, "", "shut down while waiting to retry");
        pgbank__engine_complete(eng, op, PGBANK_SHUT_DOWN);
    }
    pgbank__batch_fail_queued(eng, PGBANK_SHUT_DOWN, "",
                              "the engine was shut down before the operation ran");
    /* Work in flight ends as lost, which while closing means shut down
     * (or unknown outcome after a COMMIT was sent); sockets are removed
     * from the application's loop before they close. */
    for (int i = 0; i < eng->nconns; i++)
        pgbank__conn_fail(&eng->conns[i], PGBANK_SQLSTATE_CONNECTION_FAILURE, "shut down");
    engine_run_callbacks(eng);
    if (eng->on_timer)
        eng->on_timer(eng->loop_arg, -1);
    pgbank__batch_teardown(eng);
    free(eng->shard_min);
    pgbank__scrubber_free(eng->scrub);
    free(eng->conns);
    free(eng->pollfds);
    free(eng->pollidx);
    free(eng->conninfo);
    free(eng);
}
