/*
 * test_libuv_adapter.c - include/pgbank_libuv.h against the throwaway
 * server: the engine runs inside a libuv loop, a connection killed by the
 * server is followed to its replacement socket (REMOVE, then a new watch
 * after the engine's backoff timer), and detaching leaves nothing in the
 * loop (uv_loop_close() succeeds; the sanitizer build checks the memory).
 */
#include "testlib.h"

#include "pgbank_libuv.h"

#include <libpq-fe.h>
#include <unistd.h>

static const char *conninfo;
static char app_conninfo[1200]; /* conninfo + an application_name of ours */

typedef struct counter {
    int done, ok;
    uv_loop_t *loop;
    int stop_at;
} counter;

static void on_done(pgbank_op *op)
{
    counter *c = (counter *)op->user_data;
    c->done++;
    if (op->result.status == PGBANK_OK)
        c->ok++;
    if (c->done == c->stop_at)
        uv_stop(c->loop);
}

static void on_watchdog(uv_timer_t *t)
{
    int *fired = (int *)t->data;
    *fired = 1;
    uv_stop(t->loop);
}

static pgbank_engine *engine(const char *ci, int connections)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.connections = connections;
    o.pipeline_depth = 8;
    pgbank_engine *eng = NULL;
    char err[256];
    if (pgbank_engine_new(&eng, &o, err, sizeof err) != 0) {
        fprintf(stderr, "engine: %s\n", err);
        exit(1);
    }
    return eng;
}

static int adapter_sockets(const pgbank_libuv *a)
{
    int n = 0;
    for (const pgbank_libuv__sock *s = a->socks; s; s = s->next)
        n++;
    return n;
}

/* Runs the loop one event at a time until cond holds or 10 s pass. */
#define RUN_UNTIL(loop, cond)                                                 \
    do {                                                                      \
        uv_timer_t wd_;                                                       \
        int fired_ = 0;                                                       \
        uv_timer_init((loop), &wd_);                                          \
        wd_.data = &fired_;                                                   \
        uv_timer_start(&wd_, on_watchdog, 10000, 0);                          \
        while (!(cond) && !fired_)                                            \
            uv_run((loop), UV_RUN_ONCE);                                      \
        CHECK(!fired_);                                                       \
        uv_close((uv_handle_t *)&wd_, NULL);                                  \
        uv_run((loop), UV_RUN_NOWAIT);                                        \
    } while (0)

static void on_wait_over(uv_timer_t *t) { (void)t; }

/* Runs the loop for ms milliseconds. */
static void run_for(uv_loop_t *loop, int ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_wait_over, (uint64_t)ms, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Closes the adapter and the loop; the loop must be empty afterwards. */
static void finish_loop(pgbank_libuv *a, pgbank_engine *eng, uv_loop_t *loop)
{
    pgbank_libuv_detach(a);
    uv_run(loop, UV_RUN_DEFAULT);
    pgbank_engine_free(eng);
    CHECK_I64(uv_loop_close(loop), 0);
}

static void withdrawals_complete_inside_the_libuv_loop(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    pgbank_engine *eng = engine(conninfo, 4);
    pgbank_libuv *a = NULL;
    CHECK(pgbank_libuv_attach(eng, &loop, &a) == 0);
    CHECK(pgbank_libuv_attach(NULL, &loop, &a) == PGBANK_EINVAL);

    counter c = {0, 0, &loop, 1};
    pgbank_op acct;
    pgbank_op_init(&acct, PGBANK_OP_OPEN);
    acct.amount = 100;
    acct.done = on_done;
    acct.user_data = &c;
    CHECK(pgbank_submit(eng, &acct) == 0);
    RUN_UNTIL(&loop, c.done == 1);
    CHECK_STATUS(&acct, PGBANK_OK);
    CHECK(adapter_sockets(a) >= 1); /* the pool's sockets are watched */

    enum { N = 120 };
    static pgbank_op ops[N];
    counter w = {0, 0, &loop, N};
    for (int i = 0; i < N; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].account = acct.result.account;
        ops[i].amount = 1;
        ops[i].done = on_done;
        ops[i].user_data = &w;
        CHECK(pgbank_submit(eng, &ops[i]) == 0);
    }
    RUN_UNTIL(&loop, w.done == N);
    CHECK_I64(w.ok, 100); /* 100 of 1 from 100; the other 20 refused */
    CHECK_I64(pgbank_engine_pending(eng), 0);
    CHECK_I64(pgbank_libuv_error(a), 0);
    finish_loop(a, eng, &loop);
}

/* Asks the server to end every backend carrying our application_name. */
static int kill_our_backends(void)
{
    PGconn *pg = PQconnectdb(conninfo);
    int killed = -1;
    if (PQstatus(pg) == CONNECTION_OK) {
        char name[64];
        snprintf(name, sizeof name, "pgbank-libuv-test-%ld", (long)getpid());
        const char *params[1] = {name};
        PGresult *r = PQexecParams(pg,
                                   "SELECT count(pg_terminate_backend(pid)) FROM "
                                   "pg_stat_activity WHERE application_name = $1",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            killed = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(pg);
    return killed;
}

static void a_killed_connection_is_replaced_and_the_next_operation_runs(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    pgbank_engine *eng = engine(app_conninfo, 1);
    pgbank_libuv *a = NULL;
    CHECK(pgbank_libuv_attach(eng, &loop, &a) == 0);

    counter c = {0, 0, &loop, 1};
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_OPEN);
    op.amount = 7;
    op.done = on_done;
    op.user_data = &c;
    CHECK(pgbank_submit(eng, &op) == 0);
    RUN_UNTIL(&loop, c.done == 1);
    CHECK_STATUS(&op, PGBANK_OK);
    int64_t id = op.result.account;
    CHECK_I64(adapter_sockets(a), 1);

    /* The server ends the connection: the engine sees EOF through the
     * adapter and opens a new connection, whose socket (often with the same
     * number) the adapter must watch; the next operation runs on it. */
    CHECK_I64(kill_our_backends(), 1);
    run_for(&loop, 300);
    CHECK_I64(adapter_sockets(a), 1);

    counter c2 = {0, 0, &loop, 1};
    pgbank_op_init(&op, PGBANK_OP_BALANCE);
    op.account = id;
    op.done = on_done;
    op.user_data = &c2;
    CHECK(pgbank_submit(eng, &op) == 0);
    RUN_UNTIL(&loop, c2.done == 1);
    CHECK_STATUS(&op, PGBANK_OK);
    CHECK_I64(op.result.balance, 7);
    CHECK_I64(pgbank_libuv_error(a), 0);
    finish_loop(a, eng, &loop);
}

/* A fake server on a unix socket, in the same loop: it accepts every
 * connection and closes it at once, so each connection attempt gets a
 * socket, then EOF. */
static void on_fake_closed(uv_handle_t *h) { free(h); }

static void on_fake_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_pipe_t *client = malloc(sizeof *client);
    if (!client)
        return;
    uv_pipe_init(server->loop, client, 0);
    if (uv_accept(server, (uv_stream_t *)client) == 0)
        (*(int *)server->data)++;
    uv_close((uv_handle_t *)client, on_fake_closed);
}

static void a_refused_connection_is_removed_and_retried_on_a_new_socket(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    char dir[] = "/tmp/pgbank-uv-XXXXXX", path[64], ci[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/.s.PGSQL.5432", dir);
    snprintf(ci, sizeof ci, "host=%s port=5432 user=x dbname=x", dir);
    uv_pipe_t server;
    int accepted = 0;
    uv_pipe_init(&loop, &server, 0);
    server.data = &accepted;
    CHECK(uv_pipe_bind(&server, path) == 0);
    CHECK(uv_listen((uv_stream_t *)&server, 16, on_fake_connection) == 0);

    pgbank_engine *eng = engine(ci, 1);
    pgbank_libuv *a = NULL;
    CHECK(pgbank_libuv_attach(eng, &loop, &a) == 0);
    counter c = {0, 0, &loop, -1};
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_BALANCE);
    op.account = 1;
    op.done = on_done;
    op.user_data = &c;
    CHECK(pgbank_submit(eng, &op) == 0);
    /* Watched, dropped (REMOVE), watched again after the backoff timer,
     * dropped again: the adapter follows every change. */
    RUN_UNTIL(&loop, adapter_sockets(a) == 1);
    RUN_UNTIL(&loop, adapter_sockets(a) == 0);
    RUN_UNTIL(&loop, adapter_sockets(a) == 1);
    RUN_UNTIL(&loop, adapter_sockets(a) == 0 && accepted >= 2);
    /* With no connection alive, the operation failed, exactly once. */
    CHECK_I64(c.done, 1);
    CHECK_STATUS(&op, PGBANK_DB_ERROR);
    CHECK_I64(pgbank_libuv_error(a), 0);
    uv_close((uv_handle_t *)&server, NULL);
    finish_loop(a, eng, &loop);
    unlink(path);
    rmdir(dir);
}

static void detach_with_operations_pending_leaves_them_to_shutdown(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    pgbank_engine *eng = engine(conninfo, 2);
    pgbank_libuv *a = NULL;
    CHECK(pgbank_libuv_attach(eng, &loop, &a) == 0);
    counter c = {0, 0, &loop, -1};
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_BALANCE);
    op.account = 1;
    op.done = on_done;
    op.user_data = &c;
    CHECK(pgbank_submit(eng, &op) == 0); /* the loop never runs it */
    pgbank_libuv_detach(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_I64(c.done, 0);
    pgbank_engine_free(eng); /* completes it: exactly once */
    CHECK_I64(c.done, 1);
    CHECK_STATUS(&op, PGBANK_SHUT_DOWN);
    CHECK_I64(uv_loop_close(&loop), 0);
    pgbank_libuv_detach(NULL); /* harmless */
}

int main(void)
{
    conninfo = test_conninfo();
    snprintf(app_conninfo, sizeof app_conninfo, "%s application_name=pgbank-libuv-test-%ld",
             conninfo, (long)getpid());
    RUN(withdrawals_complete_inside_the_libuv_loop);
    RUN(a_killed_connection_is_replaced_and_the_next_operation_runs);
    RUN(a_refused_connection_is_removed_and_retried_on_a_new_socket);
    RUN(detach_with_operations_pending_leaves_them_to_shutdown);
    TEST_EXIT();
}
