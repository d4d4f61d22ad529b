/*
 * pgbank_libuv.h - runs a pgbank engine inside an application's libuv loop.
 *
 * Header-only (like hiredis's adapters/libuv.h): libpgbank itself links no
 * event library; a program that includes this header links libuv itself
 * (`pkg-config --cflags --libs pgbank libuv`).  uv.h needs POSIX
 * declarations: under a strict -std=c11, define _POSIX_C_SOURCE 200809L
 * (or build with -std=gnu11) before including anything.
 *
 *     uv_loop_t *loop = uv_default_loop();
 *     pgbank_libuv *uvb;
 *     pgbank_libuv_attach(eng, loop, &uvb);   // before the first operation
 *     ... pgbank_submit(eng, &op) ...          // callbacks run from the loop
 *     uv_run(loop, UV_RUN_DEFAULT);
 *     pgbank_libuv_detach(uvb);                // closes the adapter's handles
 *     uv_run(loop, UV_RUN_DEFAULT);            // lets their close callbacks run
 *     pgbank_engine_free(eng);
 *     uv_loop_close(loop);                     // 0: nothing was left behind
 *
 * How it maps the engine's callbacks (pgbank_engine_set_loop()) to libuv:
 *   - socket callback: one uv_poll_t per watched fd.  PGBANK_POLL_REMOVE
 *     stops and closes it; a later call for the same fd number makes a new
 *     one (libpq may replace a connection's socket while connecting, and a
 *     reconnect gets a new one).  uv_poll_start() re-registers the fd each
 *     time it is called, so a changed interest always reaches the kernel.
 *   - timer callback: one uv_timer_t, restarted on every change, stopped
 *     on -1.
 *   - libuv's poll and timer callbacks call pgbank_engine_socket_action(),
 *     from where the operations' completion callbacks run.
 *
 * The engine keeps watching its open connections even when idle (the
 * server may close them), so uv_run() does not return by itself while the
 * pool is open: call uv_stop() when your work is done, then detach.
 */
#ifndef PGBANK_LIBUV_H
#define PGBANK_LIBUV_H

#include "pgbank.h"

#include <stdlib.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pgbank_libuv pgbank_libuv;

/* One watched socket.  Private to this header. */
typedef struct pgbank_libuv__sock {
    uv_poll_t poll; /* first: the handle is the allocation */
    int fd;
    pgbank_libuv *adapter;
    struct pgbank_libuv__sock *next;
} pgbank_libuv__sock;

/* The adapter's state, allocated by pgbank_libuv_attach() and freed once
 * pgbank_libuv_detach() has closed its handles.  Fields are private. */
struct pgbank_libuv {
    uv_timer_t timer; /* first: freed in its close callback */
    pgbank_engine *eng;
    uv_loop_t *loop;
    pgbank_libuv__sock *socks;
    /* The first libuv error the adapter met (0: none); see
     * pgbank_libuv_error(). */
    int error;
};

static inline void pgbank_libuv__fail(pgbank_libuv *a, int uverr)
{
    if (!a->error)
        a->error = uverr;
}

static inline void pgbank_libuv__on_poll(uv_poll_t *handle, int status,
                                         int events)
{
    pgbank_libuv__sock *s = (pgbank_libuv__sock *)handle->data;
    int what = 0;
    if (status < 0) {
        /* An error on the socket: let libpq find out what it is. */
        what = PGBANK_POLL_IN | PGBANK_POLL_OUT;
    } else {
        if (events & (UV_READABLE | UV_DISCONNECT))
            what |= PGBANK_POLL_IN;
        if (events & UV_WRITABLE)
            what |= PGBANK_POLL_OUT;
    }
    /* May close this very handle (REMOVE): s is not touched afterwards. */
    pgbank_engine_socket_action(s->adapter->eng, s->fd, what);
}

static inline void pgbank_libuv__on_timer(uv_timer_t *handle)
{
    pgbank_libuv *a = (pgbank_libuv *)handle->data;
    pgbank_engine_socket_action(a->eng, PGBANK_SOCKET_TIMEOUT, 0);
}

static inline void pgbank_libuv__free_sock(uv_handle_t *handle)
{
    free(handle->data);
}

static inline void pgbank_libuv__free_adapter(uv_handle_t *handle)
{
    free(handle->data);
}

/* Stops watching s and unlinks it; its memory goes in the close callback. */
static inline void pgbank_libuv__close_sock(pgbank_libuv *a,
                                            pgbank_libuv__sock *s)
{
    pgbank_libuv__sock **p = &a->socks;
    while (*p && *p != s)
        p = &(*p)->next;
    if (*p)
        *p = s->next;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, pgbank_libuv__free_sock);
}

/* The engine's socket callback. */
static inline void pgbank_libuv__on_socket(void *arg, int fd, int what)
{
    pgbank_libuv *a = (pgbank_libuv *)arg;
    pgbank_libuv__sock *s = a->socks;
    while (s && s->fd != fd)
        s = s->next;
    if (what & PGBANK_POLL_REMOVE) {
        if (s)
            pgbank_libuv__close_sock(a, s);
        return;
    }
    if (!s) {
        s = (pgbank_libuv__sock *)calloc(1, sizeof *s);
        if (!s) {
            pgbank_libuv__fail(a, UV_ENOMEM);
            return;
        }
        int rc = uv_poll_init(a->loop, &s->poll, fd);
        if (rc < 0) {
            free(s);
            pgbank_libuv__fail(a, rc);
            return;
        }
        s->poll.data = s;
        s->fd = fd;
        s->adapter = a;
        s->next = a->socks;
        a->socks = s;
    }
    int events = 0;
    if (what & PGBANK_POLL_IN)
        events |= UV_READABLE;
    if (what & PGBANK_POLL_OUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&s->poll, events, pgbank_libuv__on_poll);
    if (rc < 0)
        pgbank_libuv__fail(a, rc);
}

/* The engine's timer callback. */
static inline void pgbank_libuv__on_engine_timer(void *arg, long timeout_ms)
{
    pgbank_libuv *a = (pgbank_libuv *)arg;
    if (timeout_ms < 0) {
        uv_timer_stop(&a->timer);
        return;
    }
    int rc = uv_timer_start(&a->timer, pgbank_libuv__on_timer,
                            (uint64_t)timeout_ms, 0);
    if (rc < 0)
        pgbank_libuv__fail(a, rc);
}

/* Hands `eng` to `loop`: from now on the engine runs from uv_run(), and its
 * completion callbacks run from there.  Call it before the engine's first
 * operation or connect, from the loop's thread.  Do not also call
 * pgbank_engine_run()/pgbank_execute() while attached: they drive the
 * engine's own loop.
 * Returns 0 and sets *out (pass it to pgbank_libuv_detach()), or
 * PGBANK_EINVAL (a NULL argument), PGBANK_ENOMEM, or PGBANK_ESYS (libuv
 * refused the timer); on failure nothing changed. */
static inline int pgbank_libuv_attach(pgbank_engine *eng, uv_loop_t *loop,
                                      pgbank_libuv **out)
{
    if (!eng || !loop || !out)
        return PGBANK_EINVAL;
    *out = NULL;
    pgbank_libuv *a = (pgbank_libuv *)calloc(1, sizeof *a);
    if (!a)
        return PGBANK_ENOMEM;
    if (uv_timer_init(loop, &a->timer) < 0) {
        free(a);
        return PGBANK_ESYS;
    }
    a->timer.data = a;
    a->eng = eng;
    a->loop = loop;
    int rc = pgbank_engine_set_loop(eng, pgbank_libuv__on_socket,
                                    pgbank_libuv__on_engine_timer, a);
    if (rc < 0) {
        uv_close((uv_handle_t *)&a->timer, pgbank_libuv__free_adapter);
        return rc;
    }
    *out = a;
    return 0;
}

/* The first libuv error the adapter met (a negative UV_* code, see
 * uv_strerror()), or 0.  A socket that could not be watched leaves its
 * operations waiting until the engine's timeouts end them. */
static inline int pgbank_libuv_error(const pgbank_libuv *a)
{
    return a ? a->error : 0;
}

/* Gives the engine back its built-in loop and closes every handle of the
 * adapter; their memory, and the adapter's, is freed from their close
 * callbacks, so run the loop once more (uv_run() returns when they are
 * done) before uv_loop_close().  Call it before pgbank_engine_free(), not
 * after (the adapter calls the engine); operations still pending then
 * complete with PGBANK_SHUT_DOWN in pgbank_engine_free(), or progress on the
 * built-in loop (pgbank_engine_run()).  Not from inside one of the engine's
 * completion callbacks: call uv_stop() there and detach after uv_run()
 * returns.  NULL is a harmless no-op. */
static inline void pgbank_libuv_detach(pgbank_libuv *a)
{
    if (!a)
        return;
    if (a->eng)
        pgbank_engine_set_loop(a->eng, NULL, NULL, NULL);
    a->eng = NULL;
    while (a->socks)
        pgbank_libuv__close_sock(a, a->socks);
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, pgbank_libuv__free_adapter);
}

#ifdef __cplusplus
}
#endif
#endif /* PGBANK_LIBUV_H */
