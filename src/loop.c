/*
 * loop.c - the built-in event loop (poll(2)) and what is built on it:
 * pgbank_engine_run(), pgbank_engine_wait_connected() and the blocking
 * pgbank_execute().  It drives the connections directly; an application
 * loop uses pgbank_engine_set_loop() and pgbank_engine_socket_action().
 */
#include "engine.h"

#include <errno.h>
#include <poll.h>

/* One round: wait for sockets or the next deadline (at most max_ms, -1: no
 * limit), handle what is ready, run callbacks. */
static int loop_once(pgbank_engine *eng, int max_ms)
{
    /* Arrays sized for the pool once, at engine creation: no allocation here. */
    struct pollfd *fds = eng->pollfds;
    int *idx = eng->pollidx;
    int n = 0;
    for (int i = 0; i < eng->nconns; i++) {
        pgbank__conn *c = &eng->conns[i];
        if (c->fd < 0 || !c->want)
            continue;
        fds[n].fd = c->fd;
        fds[n].events = (short)(((c->want & PGBANK_POLL_IN) ? POLLIN : 0) |
                                ((c->want & PGBANK_POLL_OUT) ? POLLOUT : 0));
        fds[n].revents = 0;
        idx[n++] = i;
    }
    int timeout = max_ms;
    int64_t d = pgbank__engine_next_deadline(eng);
    if (d) {
        int64_t left = d - pgbank__now_ns();
        int ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    int rc = poll(fds, (nfds_t)n, timeout);
    if (rc < 0 && errno != EINTR)
        return PGBANK_ESYS;
    for (int k = 0; rc > 0 && k < n; k++) {
        if (!fds[k].revents)
            continue;
        pgbank__conn *c = &eng->conns[idx[k]];
        if (c->fd != fds[k].fd)
            continue; /* closed or replaced while handling an earlier socket */
        int ev = 0;
        if (fds[k].revents & (POLLIN | POLLERR | POLLHUP))
            ev |= PGBANK_POLL_IN;
        if (fds[k].revents & (POLLOUT | POLLERR))
            ev |= PGBANK_POLL_OUT;
        pgbank__conn_handle(c, ev);
    }
    pgbank__engine_timers(eng);
    pgbank__engine_after(eng);
    return 0;
}

static int ms_left(int64_t end_ns)
{
    if (!end_ns)
        return -1;
    int64_t left = end_ns - pgbank__now_ns();
    return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

PGBANK__API int pgbank_engine_run(pgbank_engine *eng, int timeout_ms)
{
    if (!eng)
        return PGBANK_EINVAL;
    int64_t end = timeout_ms >= 0 ? pgbank__now_ns() + (int64_t)timeout_ms * 1000000 : 0;
    pgbank__engine_after(eng);
    while (eng->pending > 0) {
        if (end && pgbank__now_ns() >= end)
            return PGBANK_ETIMEDOUT;
        int rc = loop_once(eng, ms_left(end));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int all_ready(const pgbank_engine *eng)
{
    for (int i = 0; i < eng->nconns; i++)
        if (eng->conns[i].state != CONN_READY)
            return 0;
    return 1;
}

static int any_live(const pgbank_engine *eng)
{
    for (int i = 0; i < eng->nconns; i++)
        if (eng->conns[i].state != CONN_BROKEN && eng->conns[i].state != CONN_IDLE)
            return 1;
    return 0;
}

PGBANK__API int pgbank_engine_wait_connected(pgbank_engine *eng, int timeout_ms)
{
    if (!eng)
        return PGBANK_EINVAL;
    if (timeout_ms < 0)
        timeout_ms = eng->opt.connect_timeout_ms;
    int64_t end = pgbank__now_ns() + (int64_t)timeout_ms * 1000000;
    pgbank_engine_connect(eng);
    while (!all_ready(eng)) {
        if (!any_live(eng)) /* every connection failed: the reason is in eng->error */
            return eng->schema_error ? PGBANK_ESCHEMA : PGBANK_ECONNECT;
        if (pgbank__now_ns() >= end)
            return PGBANK_ETIMEDOUT;
        int rc = loop_once(eng, ms_left(end));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void execute_noop(pgbank_op *op) { (void)op; }

PGBANK__API int pgbank_execute(pgbank_engine *eng, pgbank_op *op)
{
    if (!op)
        return PGBANK_EINVAL;
    pgbank_done_fn user_done = op->done;
    if (!user_done)
        op->done = execute_noop;
    int rc = pgbank_submit(eng, op);
    while (rc == 0 && !(OP(op)->flags & OPF_COMPLETED))
        rc = loop_once(eng, -1);
    if (!user_done)
        op->done = NULL;
    return rc;
}
