/*
 * test_engine.c - the engine and the seed's four withdrawals against the
 * throwaway server: every strategy's success, refusal and bad input; 50
 * concurrent withdrawals from one thread (the safe strategies end exact, the
 * unsafe ones lose updates when every read comes before any write); shutdown
 * with operations in flight; a connection killed mid-transaction; the engine
 * driven from the test's own poll loop; 64 connections from one thread.
 */
#include "sqlstate.h"
#include "testlib.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

static const char *conninfo;

static pgbank_engine *engine(int connections) { return test_engine(conninfo, connections); }
static pgbank_op withdraw(pgbank_engine *eng, pgbank_strategy s, int64_t id, int64_t amount)
{
    return test_run(eng, PGBANK_OP_WITHDRAW, s, id, 0, amount, NULL);
}

static int statements_sent;
static void count_echo(void *arg, const char *line)
{
    (void)arg;
    (void)line;
    statements_sent++;
}

/* --- every strategy, one operation at a time ------------------------------ */

static void test_each_strategy_withdraws_refuses_and_rejects(void)
{
    pgbank_engine *eng = engine(1);
    for (int s = 0; s < PGBANK_STRATEGY_COUNT; s++) {
        int64_t id = test_open(eng, 100);
        pgbank_op op = withdraw(eng, (pgbank_strategy)s, id, 80);
        CHECK_STATUS(&op, PGBANK_OK);
        CHECK_I64(op.result.balance, 20);
        op = withdraw(eng, (pgbank_strategy)s, id, 80);
        CHECK_STATUS(&op, PGBANK_INSUFFICIENT_FUNDS);
        CHECK_I64(op.result.balance, 20);
        CHECK_I64(test_balance(eng, id), 20);
        op = withdraw(eng, (pgbank_strategy)s, 987654321, 10);
        CHECK_STATUS(&op, PGBANK_NO_SUCH_ACCOUNT);
        op = withdraw(eng, (pgbank_strategy)s, id, 20); /* down to exactly zero */
        CHECK_STATUS(&op, PGBANK_OK);
        CHECK_I64(op.result.balance, 0);
    }
    pgbank_engine_free(eng);
}

static void test_invalid_amounts_are_rejected_before_anything_is_sent(void)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = conninfo;
    o.connections = 1;
    o.echo = count_echo;
    pgbank_engine *eng = NULL;
    CHECK(pgbank_engine_new(&eng, &o, NULL, 0) == 0);
    int64_t id = test_open(eng, 100);
    int64_t bad[] = {0, -5, INT64_MIN};
    for (int s = 0; s < PGBANK_STRATEGY_COUNT; s++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int before = statements_sent;
            pgbank_op op = withdraw(eng, (pgbank_strategy)s, id, bad[i]);
            CHECK_STATUS(&op, PGBANK_INVALID_AMOUNT);
            CHECK_I64(statements_sent, before);
        }
    }
    CHECK_I64(test_balance(eng, id), 100);
    pgbank_engine_free(eng);
}

/* The seed's own table: integer columns, created by its model, no init. */
static void test_the_seeds_integer_table_works_and_bounds_amounts(void)
{
    PGconn *pg = PQconnectdb(conninfo);
    CHECK(PQstatus(pg) == CONNECTION_OK);
    PQclear(PQexec(pg, "DROP SCHEMA IF EXISTS seedtest CASCADE"));
    PGresult *r = PQexec(pg, "CREATE SCHEMA seedtest;"
                             "CREATE TABLE seedtest.accounts (id integer PRIMARY KEY,"
                             " balance integer NOT NULL);" TEST_DISTRIBUTE_IF_CITUS(
                                 "seedtest.accounts", "id") ";"
                             "INSERT INTO seedtest.accounts VALUES (1, 100)");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    char ci[1200];
    snprintf(ci, sizeof ci, "%s options='-csearch_path=seedtest'", conninfo);
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.connections = 1;
    pgbank_engine *eng = NULL;
    CHECK(pgbank_engine_new(&eng, &o, NULL, 0) == 0);
    CHECK_I64(test_balance(eng, 1), 100);
    for (int s = 0; s < PGBANK_STRATEGY_COUNT; s++) {
        pgbank_op op = withdraw(eng, (pgbank_strategy)s, 1, 3000000000LL);
        CHECK_STATUS(&op, PGBANK_INVALID_AMOUNT);
        op = withdraw(eng, (pgbank_strategy)s, 5000000000LL, 1);
        CHECK_STATUS(&op, PGBANK_NO_SUCH_ACCOUNT);
    }
    pgbank_op op = withdraw(eng, PGBANK_ATOMIC, 1, 80);
    CHECK_STATUS(&op, PGBANK_OK);
    CHECK_I64(op.result.balance, 20);
    int64_t id = test_open(eng, 7); /* no id default: numbered by max + 1 */
    CHECK_I64(id, 2);
    pgbank_engine_free(eng);
    PQclear(PQexec(pg, "DROP SCHEMA seedtest CASCADE"));
    PQfinish(pg);
}

/* --- concurrency through one engine in one thread --------------------------- */


/* n withdrawals of `amount` from one account holding `start`, all at once. */
static tally race(pgbank_strategy s, int n, int64_t start, int64_t amount, int64_t *final)
{
    pgbank_engine *eng = engine(n);
    CHECK(pgbank_engine_wait_connected(eng, 20000) == 0); /* a cold pool hides the race */
    int64_t id = test_open(eng, start);
    tally t = {0, 0, 0, 0};
    pgbank_gate gate;
    pgbank_gate_init(&gate, n);
    pgbank_op *ops = calloc((size_t)n, sizeof *ops);
    for (int i = 0; i < n; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = s;
        ops[i].account = id;
        ops[i].amount = amount;
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit_gated(eng, &ops[i], &gate) == 0);
    }
    CHECK(pgbank_engine_run(eng, 60000) == 0);
    *final = test_balance(eng, id);
    pgbank_engine_free(eng);
    free(ops);
    return t;
}

static void test_safe_strategies_end_exact_under_50_concurrent_withdrawals(void)
{
    pgbank_strategy safe[] = {PGBANK_FOR_UPDATE, PGBANK_ATOMIC};
    for (int k = 0; k < 2; k++) {
        for (int run = 0; run < 3; run++) {
            int64_t final;
            tally t = race(safe[k], 50, 1000, 10, &final);
            CHECK_I64(t.ok, 50);
            CHECK_I64(t.other, 0);
            CHECK_I64(final, 500);
        }
    }
}

static void test_unsafe_strategies_lose_updates_when_reads_come_before_writes(void)
{
    pgbank_strategy unsafe[] = {PGBANK_EXPLICIT, PGBANK_BEGIN};
    for (int k = 0; k < 2; k++) {
        int64_t final;
        tally t = race(unsafe[k], 50, 1000, 10, &final);
        /* Every withdrawal reports success, yet the account lost far less. */
        CHECK_I64(t.ok, 50);
        CHECK_I64(t.other, 0);
        CHECK(final > 500);
        CHECK_I64(final, 990); /* all read 1000, all wrote 990 */
        printf("  %s: 50 withdrawals of 10 reported, balance 1000 -> %lld: %lld lost\n",
               pgbank_strategy_name(unsafe[k]), (long long)final, (long long)(final - 500));
    }
}

static void test_double_spend_is_refused_by_safe_strategies(void)
{
    pgbank_strategy safe[] = {PGBANK_FOR_UPDATE, PGBANK_ATOMIC};
    for (int k = 0; k < 2; k++) {
        int64_t final;
        tally t = race(safe[k], 10, 100, 80, &final);
        CHECK_I64(t.ok, 1);
        CHECK_I64(t.refused, 9);
        CHECK_I64(final, 20);
    }
    int64_t final;
    tally t = race(PGBANK_EXPLICIT, 10, 100, 80, &final);
    CHECK_I64(t.ok, 10); /* ten payouts of 80 from 100: the seed's race */
    CHECK_I64(final, 20);
}

/* --- shutdown and connection loss ------------------------------------------------ */

static int completions;
static pgbank_status last_status;
static void note_done(pgbank_op *op)
{
    completions++;
    last_status = op->result.status;
}

static void test_shutdown_completes_every_operation_once(void)
{
    pgbank_engine *eng = engine(4);
    CHECK(pgbank_engine_wait_connected(eng, 20000) == 0);
    int64_t id = test_open(eng, 100);
    pgbank_gate gate;
    pgbank_gate_init(&gate, 3); /* only 2 come: they hold their transactions open */
    pgbank_op ops[6];
    for (int i = 0; i < 6; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = i < 2 ? PGBANK_EXPLICIT : PGBANK_ATOMIC;
        ops[i].account = id;
        ops[i].amount = 1;
        ops[i].done = note_done;
    }
    completions = 0;
    CHECK(pgbank_submit_gated(eng, &ops[0], &gate) == 0);
    CHECK(pgbank_submit_gated(eng, &ops[1], &gate) == 0);
    CHECK(pgbank_engine_run(eng, 500) == PGBANK_ETIMEDOUT);
    CHECK_I64(gate.arrived, 2);
    for (int i = 2; i < 6; i++)
        CHECK(pgbank_submit(eng, &ops[i]) == 0); /* queued or in flight */
    pgbank_engine_free(eng);
    CHECK_I64(completions, 6);
    CHECK(ops[0].result.status == PGBANK_SHUT_DOWN);
    CHECK(ops[1].result.status == PGBANK_SHUT_DOWN);
    pgbank_engine *check = engine(1);
    int64_t left = test_balance(check, id);
    int64_t taken = 0;
    for (int i = 2; i < 6; i++)
        if (ops[i].result.status == PGBANK_UNKNOWN_OUTCOME)
            taken++; /* may or may not have been applied */
    CHECK(left <= 100 && left >= 100 - taken);
    pgbank_engine_free(check);
}

static void test_a_killed_connection_ends_the_operation_once_and_applies_nothing(void)
{
    pgbank_engine *eng = engine(2);
    CHECK(pgbank_engine_wait_connected(eng, 20000) == 0);
    int64_t id = test_open(eng, 100);
    pgbank_gate gate;
    pgbank_gate_init(&gate, 2);
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_WITHDRAW);
    op.strategy = PGBANK_EXPLICIT;
    op.account = id;
    op.amount = 30;
    op.done = note_done;
    completions = 0;
    CHECK(pgbank_submit_gated(eng, &op, &gate) == 0);
    CHECK(pgbank_engine_run(eng, 300) == PGBANK_ETIMEDOUT); /* held at the gate, in a transaction */
    PGconn *pg = PQconnectdb(conninfo);
    PGresult *r = PQexec(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE application_name = 'pgbank' AND state LIKE 'idle in transaction%'");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
    PQclear(r);
    PQfinish(pg);
    CHECK(pgbank_engine_run(eng, 10000) == 0);
    CHECK_I64(completions, 1);
    CHECK_STATUS(&op, PGBANK_DB_ERROR);
    CHECK_STR(op.result.sqlstate, PGBANK_SQLSTATE_CONNECTION_FAILURE);
    CHECK_I64(test_balance(eng, id), 100); /* the engine reconnected; nothing applied */
    pgbank_engine_free(eng);
}

/* --- the engine in the application's own loop ---------------------------------------- */

typedef struct {
    struct pollfd fds[128];
    int nfds;
    long timeout;
} app_loop;

static void app_socket(void *arg, int fd, int what)
{
    app_loop *l = arg;
    int i;
    for (i = 0; i < l->nfds && l->fds[i].fd != fd; i++)
        ;
    if (what & PGBANK_POLL_REMOVE) {
        if (i < l->nfds)
            l->fds[i] = l->fds[--l->nfds];
        return;
    }
    if (i == l->nfds)
        l->nfds++;
    l->fds[i].fd = fd;
    l->fds[i].events = (short)(((what & PGBANK_POLL_IN) ? POLLIN : 0) |
                               ((what & PGBANK_POLL_OUT) ? POLLOUT : 0));
}

static void app_timer(void *arg, long ms)
{
    ((app_loop *)arg)->timeout = ms;
}

static void test_the_engine_runs_from_the_applications_own_poll_loop(void)
{
    pgbank_engine *eng = engine(4);
    int64_t id = test_open(eng, 1000);
    app_loop l = {.nfds = 0, .timeout = -1};
    CHECK(pgbank_engine_set_loop(eng, app_socket, app_timer, &l) == 0);
    tally t = {0, 0, 0, 0};
    pgbank_op ops[40];
    for (int i = 0; i < 40; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = (pgbank_strategy)(i % 2 ? PGBANK_ATOMIC : PGBANK_FOR_UPDATE);
        ops[i].account = id;
        ops[i].amount = 10;
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit(eng, &ops[i]) == 0);
    }
    int rounds = 0;
    while (pgbank_engine_pending(eng) > 0 && rounds++ < 100000) {
        struct pollfd fds[128];
        int n = l.nfds;
        memcpy(fds, l.fds, sizeof fds[0] * (size_t)n);
        int rc = poll(fds, (nfds_t)n, l.timeout < 0 ? 1000 : (int)l.timeout);
        if (rc == 0 && l.timeout >= 0)
            pgbank_engine_socket_action(eng, PGBANK_SOCKET_TIMEOUT, 0);
        for (int i = 0; i < n; i++) {
            if (!fds[i].revents)
                continue;
            int ev = ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ? PGBANK_POLL_IN : 0) |
                     ((fds[i].revents & POLLOUT) ? PGBANK_POLL_OUT : 0);
            pgbank_engine_socket_action(eng, fds[i].fd, ev);
        }
    }
    CHECK_I64(t.ok, 40);
    CHECK_I64(l.nfds, 4);
    CHECK(pgbank_engine_set_loop(eng, NULL, NULL, NULL) == 0);
    CHECK_I64(test_balance(eng, id), 600);
    pgbank_engine_free(eng);
}

static void test_one_thread_drives_64_connections(void)
{
    pgbank_engine *eng = engine(64);
    CHECK(pgbank_engine_wait_connected(eng, 30000) == 0);
    int64_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = test_open(eng, 10000);
    tally t = {0, 0, 0, 0};
    static pgbank_op ops[640];
    for (int i = 0; i < 640; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = (pgbank_strategy)(i % 2 ? PGBANK_ATOMIC : PGBANK_FOR_UPDATE);
        ops[i].account = ids[i % 8];
        ops[i].amount = 1;
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit(eng, &ops[i]) == 0);
    }
    CHECK(pgbank_engine_run(eng, 60000) == 0);
    CHECK_I64(t.ok, 640);
    for (int i = 0; i < 8; i++)
        CHECK_I64(test_balance(eng, ids[i]), 10000 - 80);
    pgbank_engine_free(eng);
}

static void test_a_missing_table_is_a_clear_database_error(void)
{
    char ci[1200];
    snprintf(ci, sizeof ci, "%s options='-csearch_path=nowhere'", conninfo);
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.connections = 1;
    pgbank_engine *eng = NULL;
    CHECK(pgbank_engine_new(&eng, &o, NULL, 0) == 0);
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_BALANCE);
    op.account = 1;
    CHECK(pgbank_execute(eng, &op) == 0);
    CHECK_STATUS(&op, PGBANK_DB_ERROR);
    CHECK(strstr(op.result.message, "pgbank init") != NULL);
    pgbank_engine_free(eng);
}

int main(void)
{
    conninfo = test_conninfo();
    RUN(test_each_strategy_withdraws_refuses_and_rejects);
    RUN(test_invalid_amounts_are_rejected_before_anything_is_sent);
    RUN(test_the_seeds_integer_table_works_and_bounds_amounts);
    RUN(test_safe_strategies_end_exact_under_50_concurrent_withdrawals);
    RUN(test_unsafe_strategies_lose_updates_when_reads_come_before_writes);
    RUN(test_double_spend_is_refused_by_safe_strategies);
    RUN(test_shutdown_completes_every_operation_once);
    RUN(test_a_killed_connection_ends_the_operation_once_and_applies_nothing);
    RUN(test_the_engine_runs_from_the_applications_own_poll_loop);
    RUN(test_one_thread_drives_64_connections);
    RUN(test_a_missing_table_is_a_clear_database_error);
    TEST_EXIT();
}
