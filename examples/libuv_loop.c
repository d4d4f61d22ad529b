/*
 * libuv_loop.c - the engine inside the application's own libuv loop, through
 * the header-only adapter pgbank_libuv.h.  The loop stays the application's:
 * here it also runs a watchdog timer of its own.
 *
 *   cc -std=c11 libuv_loop.c $(pkg-config --cflags --libs pgbank libuv)
 *   ./a.out CONNINFO [N]          # "" or -: $DATABASE_URL
 *
 * Opens an account holding N (default 500), then submits N + 5 withdrawals
 * of 1 at once from inside the loop: N succeed, 5 are refused, and the
 * balance read at the end is 0.  The loop is stopped when all completed.
 */
/* uv.h needs the POSIX declarations (pthread types, sockets) that a strict
 * -std=c11 hides: ask for them before the first system header. */
#define _POSIX_C_SOURCE 200809L

#include <pgbank.h>
#include <pgbank_libuv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define EXTRA 5

typedef struct app {
    uv_loop_t *loop;
    uv_timer_t watchdog;
    pgbank_engine *eng;
    int64_t n;
    pgbank_op open, balance;
    pgbank_op *withdrawals; /* n + EXTRA, caller-owned until their callbacks */
    int64_t done, ok, refused, failed;
    int code;
} app;

static void stop(app *a, int code)
{
    a->code = code;
    uv_stop(a->loop);
}

static void on_balance(pgbank_op *op)
{
    app *a = (app *)op->user_data;
    if (op->result.status != PGBANK_OK) {
        fprintf(stderr, "libuv_loop: balance: %s\n", pgbank_status_name(op->result.status));
        stop(a, 3);
        return;
    }
    printf("final balance %lld\n", (long long)op->result.balance);
    stop(a, op->result.balance == 0 && a->ok == a->n && a->refused == EXTRA ? 0 : 1);
}

static void on_withdrawn(pgbank_op *op)
{
    app *a = (app *)op->user_data;
    if (op->result.status == PGBANK_OK)
        a->ok++;
    else if (op->result.status == PGBANK_INSUFFICIENT_FUNDS)
        a->refused++;
    else if (a->failed++ == 0)
        fprintf(stderr, "libuv_loop: withdraw: %s %s\n",
                pgbank_status_name(op->result.status), op->result.message);
    if (++a->done < a->n + EXTRA)
        return;
    printf("%lld withdrawals of 1 through libuv: %lld ok, %lld refused: insufficient "
           "funds, %lld failed\n",
           (long long)(a->n + EXTRA), (long long)a->ok, (long long)a->refused,
           (long long)a->failed);
    /* A callback may submit the next operation. */
    pgbank_op_init(&a->balance, PGBANK_OP_BALANCE);
    a->balance.account = a->open.result.account;
    a->balance.done = on_balance;
    a->balance.user_data = a;
    if (pgbank_submit(a->eng, &a->balance) < 0)
        stop(a, 3);
}

static void on_opened(pgbank_op *op)
{
    app *a = (app *)op->user_data;
    if (op->result.status != PGBANK_OK) {
        fprintf(stderr, "libuv_loop: could not open an account: %s %s\n",
                pgbank_status_name(op->result.status), op->result.message);
        stop(a, 3);
        return;
    }
    printf("opened account %lld with %lld\n", (long long)op->result.account, (long long)a->n);
    for (int64_t i = 0; i < a->n + EXTRA; i++) {
        pgbank_op *w = &a->withdrawals[i];
        pgbank_op_init(w, PGBANK_OP_WITHDRAW);
        w->account = op->result.account;
        w->amount = 1;
        w->done = on_withdrawn;
        w->user_data = a;
        if (pgbank_submit(a->eng, w) < 0) {
            stop(a, 3);
            return;
        }
    }
}

static void on_watchdog(uv_timer_t *t)
{
    app *a = (app *)t->data;
    fprintf(stderr, "libuv_loop: timed out with %lld of %lld withdrawals done\n",
            (long long)a->done, (long long)(a->n + EXTRA));
    stop(a, 3);
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    a.n = 500;
    if (argc < 2 || argc > 3 || (argc == 3 && (pgbank_parse_int64(argv[2], &a.n) != 0 ||
                                                a.n < 1 || a.n > 1000000))) {
        fputs("usage: libuv_loop CONNINFO [N]\n", stderr);
        return 2;
    }
    pgbank_options opt;
    pgbank_options_init(&opt);
    opt.conninfo = argv[1][0] && strcmp(argv[1], "-") != 0 ? argv[1] : getenv("DATABASE_URL");
    opt.connections = 4;
    opt.pipeline_depth = 16;
    char err[256];
    if (pgbank_engine_new(&a.eng, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "libuv_loop: %s\n", err);
        return 2;
    }
    a.withdrawals = calloc((size_t)(a.n + EXTRA), sizeof *a.withdrawals);
    if (!a.withdrawals) {
        pgbank_engine_free(a.eng);
        return 3;
    }

    a.loop = uv_default_loop();
    pgbank_libuv *adapter;
    if (pgbank_libuv_attach(a.eng, a.loop, &adapter) != 0) {
        fputs("libuv_loop: could not attach the engine to libuv\n", stderr);
        pgbank_engine_free(a.eng);
        free(a.withdrawals);
        return 3;
    }
    uv_timer_init(a.loop, &a.watchdog);
    a.watchdog.data = &a;
    uv_timer_start(&a.watchdog, on_watchdog, 60000, 0);

    pgbank_op_init(&a.open, PGBANK_OP_OPEN);
    a.open.amount = a.n;
    a.open.done = on_opened;
    a.open.user_data = &a;
    a.code = 3;
    if (pgbank_submit(a.eng, &a.open) == 0)
        uv_run(a.loop, UV_RUN_DEFAULT); /* until a callback calls uv_stop() */

    /* Clean up: close the adapter's handles and our own, let their close
     * callbacks run, and check that nothing is left in the loop. */
    if (pgbank_libuv_error(adapter))
        fprintf(stderr, "libuv_loop: libuv: %s\n", uv_strerror(pgbank_libuv_error(adapter)));
    pgbank_libuv_detach(adapter);
    uv_close((uv_handle_t *)&a.watchdog, NULL);
    uv_run(a.loop, UV_RUN_DEFAULT);
    pgbank_engine_free(a.eng); /* nothing pending: no callback runs */
    free(a.withdrawals);
    int rc = uv_loop_close(a.loop);
    if (rc != 0) {
        fprintf(stderr, "libuv_loop: the loop still holds handles: %s\n", uv_strerror(rc));
        return 3;
    }
    return a.code;
}
