/*
 * test_money.c - beyond the seed, against the throwaway server: deposits,
 * transfers (opposite transfers from many clients never deadlock),
 * serializable retries under contention, idempotency keys (replay,
 * conflict, refusals remembered, a backend killed around COMMIT resolved
 * exactly once), the journal, and the audit that catches lost updates.
 */
#include "testlib.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *conninfo;
/* How long a serializable operation may keep retrying.  On Citus a
 * transfer between workers is a two-phase commit, several times longer,
 * so under contention the losers of each round retry for longer
 * (docs/SCALING.md): the budget is the client's, the money the same. */
static int retry_budget_ms = 30000;
static char schema_ci[1400]; /* a private schema for the audit tests */

static pgbank_engine *engine_on(const char *ci, int connections, pgbank_log_fn echo)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.connections = connections;
    o.echo = echo;
    o.retry_max = 200;
    o.retry_budget_ms = retry_budget_ms;
    return test_engine_opts(&o);
}

static pgbank_engine *engine(int connections) { return engine_on(conninfo, connections, NULL); }

static int64_t sql_int(const char *ci, const char *sql)
{
    PGconn *pg = PQconnectdb(ci);
    PGresult *r = PQexec(pg, sql);
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fprintf(stderr, "sql_int: %s", PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return v;
}

static const pgbank_strategy safe[] = {PGBANK_FOR_UPDATE, PGBANK_ATOMIC, PGBANK_SERIALIZABLE};
#define NSAFE 3

static void test_deposits_add_money_with_every_safe_strategy(void)
{
    pgbank_engine *eng = engine(1);
    for (int k = 0; k < NSAFE; k++) {
        int64_t id = test_open(eng, 10);
        pgbank_op op = test_run(eng, PGBANK_OP_DEPOSIT, safe[k], id, 0, 50, NULL);
        CHECK_STATUS(&op, PGBANK_OK);
        CHECK_I64(op.result.balance, 60);
        op = test_run(eng, PGBANK_OP_DEPOSIT, safe[k], 987654321, 0, 5, NULL);
        CHECK_STATUS(&op, PGBANK_NO_SUCH_ACCOUNT);
        op = test_run(eng, PGBANK_OP_DEPOSIT, safe[k], id, 0, 0, NULL);
        CHECK_STATUS(&op, PGBANK_INVALID_AMOUNT);
        op = test_run(eng, PGBANK_OP_DEPOSIT, safe[k], id, 0, INT64_MAX - 10, NULL);
        CHECK_STATUS(&op, PGBANK_INVALID_AMOUNT); /* the balance would overflow */
        CHECK_I64(test_balance(eng, id), 60);
    }
    pgbank_engine_free(eng);
}

static void test_transfers_move_money_or_change_nothing(void)
{
    pgbank_engine *eng = engine(1);
    for (int k = 0; k < NSAFE; k++) {
        for (int order = 0; order < 2; order++) { /* lower id first, and higher id first */
            int64_t x = test_open(eng, 100), y = test_open(eng, 0);
            int64_t a = order ? y : x, b = order ? x : y; /* a holds 100 */
            if (order) {
                test_run(eng, PGBANK_OP_TRANSFER, PGBANK_ATOMIC, x, y, 100, NULL);
            }
            pgbank_op op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], a, b, 30, NULL);
            CHECK_STATUS(&op, PGBANK_OK);
            CHECK_I64(op.result.balance, 70);
            CHECK_I64(op.result.to_balance, 30);
            op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], a, b, 500, NULL);
            CHECK_STATUS(&op, PGBANK_INSUFFICIENT_FUNDS);
            CHECK_I64(op.result.balance, 70);
            op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], a, a, 5, NULL);
            CHECK_STATUS(&op, PGBANK_INVALID_INPUT);
            op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], a, 987654321, 5, NULL);
            CHECK_STATUS(&op, PGBANK_NO_SUCH_ACCOUNT);
            op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], 987654321, a, 5, NULL);
            CHECK_STATUS(&op, PGBANK_NO_SUCH_ACCOUNT);
            CHECK_I64(test_balance(eng, a), 70);
            CHECK_I64(test_balance(eng, b), 30);
        }
    }
    pgbank_engine_free(eng);
}


static void test_opposite_transfers_from_many_clients_never_deadlock(void)
{
    for (int k = 0; k < NSAFE; k++) {
        pgbank_engine *eng = engine(16);
        CHECK(pgbank_engine_wait_connected(eng, 20000) == 0);
        int64_t a = test_open(eng, 1000), b = test_open(eng, 1000);
        static pgbank_op ops[400];
        tally t = {0, 0, 0, 0};
        for (int i = 0; i < 400; i++) {
            pgbank_op_init(&ops[i], PGBANK_OP_TRANSFER);
            ops[i].strategy = safe[k];
            ops[i].account = i % 2 ? a : b;
            ops[i].to_account = i % 2 ? b : a;
            ops[i].amount = 1 + i % 7;
            ops[i].done = tally_done;
            ops[i].user_data = &t;
            CHECK(pgbank_submit(eng, &ops[i]) == 0);
        }
        CHECK(pgbank_engine_run(eng, retry_budget_ms * 4) == 0);
        CHECK_I64(t.other, 0); /* no deadlock (40P01), no error */
        CHECK_I64(t.ok + t.refused, 400);
        CHECK_I64(test_balance(eng, a) + test_balance(eng, b), 2000);
        pgbank_engine_free(eng);
    }
}

static void test_serializable_under_contention_ends_exact(void)
{
    pgbank_engine *eng = engine(50);
    CHECK(pgbank_engine_wait_connected(eng, 20000) == 0);
    int64_t id = test_open(eng, 1000);
    pgbank_gate gate;
    pgbank_gate_init(&gate, 50); /* every read before any write: the worst case */
    static pgbank_op ops[50];
    tally t = {0, 0, 0, 0};
    for (int i = 0; i < 50; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = PGBANK_SERIALIZABLE;
        ops[i].account = id;
        ops[i].amount = 10;
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit_gated(eng, &ops[i], &gate) == 0);
    }
    CHECK(pgbank_engine_run(eng, 120000) == 0);
    int retries = 0;
    for (int i = 0; i < 50; i++)
        retries += ops[i].result.retries;
    CHECK_I64(t.ok, 50);
    CHECK_I64(test_balance(eng, id), 500);
    CHECK(retries >= 49); /* all but one lost the first round */
    printf("  50 serializable withdrawals, all read first: exact, %d retries\n", retries);
    pgbank_engine_free(eng);
}

static void test_a_keyed_withdrawal_replays_and_a_reused_key_conflicts(void)
{
    pgbank_engine *eng = engine(1);
    for (int k = 0; k < NSAFE; k++) {
        char key[64], key2[64];
        snprintf(key, sizeof key, "replay-%d-%lld", k, (long long)pgbank_engine_pending(eng) + (long long)getpid());
        snprintf(key2, sizeof key2, "refusal-%d-%d", k, (int)getpid());
        int64_t id = test_open(eng, 100);
        pgbank_op op = test_run(eng, PGBANK_OP_WITHDRAW, safe[k], id, 0, 10, key);
        CHECK_STATUS(&op, PGBANK_OK);
        CHECK_I64(op.result.balance, 90);
        CHECK_I64(op.result.replayed, 0);
        op = test_run(eng, PGBANK_OP_WITHDRAW, safe[k], id, 0, 10, key);
        CHECK_STATUS(&op, PGBANK_OK);
        CHECK_I64(op.result.balance, 90);
        CHECK_I64(op.result.replayed, 1);
        op = test_run(eng, PGBANK_OP_WITHDRAW, safe[k], id, 0, 11, key);
        CHECK_STATUS(&op, PGBANK_CONFLICT);
        CHECK_I64(test_balance(eng, id), 90);
        /* A refusal is remembered: money arriving later cannot flip it. */
        op = test_run(eng, PGBANK_OP_WITHDRAW, safe[k], id, 0, 500, key2);
        CHECK_STATUS(&op, PGBANK_INSUFFICIENT_FUNDS);
        test_run(eng, PGBANK_OP_DEPOSIT, PGBANK_ATOMIC, id, 0, 1000, NULL);
        op = test_run(eng, PGBANK_OP_WITHDRAW, safe[k], id, 0, 500, key2);
        CHECK_STATUS(&op, PGBANK_INSUFFICIENT_FUNDS);
        CHECK_I64(op.result.replayed, 1);
        CHECK(strstr(op.result.message, "requested 500") != NULL); /* and says why */
        CHECK_I64(test_balance(eng, id), 1090);
        /* Keyed transfers too. */
        int64_t to = test_open(eng, 0);
        snprintf(key, sizeof key, "transfer-%d-%d", k, (int)getpid());
        op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], id, to, 90, key);
        CHECK_STATUS(&op, PGBANK_OK);
        op = test_run(eng, PGBANK_OP_TRANSFER, safe[k], id, to, 90, key);
        CHECK_STATUS(&op, PGBANK_OK);
        CHECK_I64(op.result.replayed, 1);
        CHECK_I64(op.result.to_balance, 90);
        CHECK_I64(test_balance(eng, to), 90);
    }
    pgbank_engine_free(eng);
}

/* --- a backend killed around a keyed operation's COMMIT -------------------- */

static int kill_armed;   /* 1: terminate the backend when COMMIT is about to go */
static int commit_seen;  /* COMMIT statements echoed */

static void terminate_engine_backends(void)
{
    PGconn *pg = PQconnectdb(conninfo);
    PQclear(PQexec(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE application_name = 'pgbank' AND pid <> pg_backend_pid()"));
    PQfinish(pg);
}

static void kill_on_commit(void *arg, const char *line)
{
    (void)arg;
    if (strncmp(line, "COMMIT", 6) != 0)
        return;
    commit_seen++;
    if (kill_armed) {
        kill_armed = 0;
        terminate_engine_backends();
        usleep(100000); /* let the backend go before the COMMIT reaches it */
    }
}

static int completions;
static void note_done(pgbank_op *op)
{
    (void)op;
    completions++;
}

static void check_once(pgbank_engine *eng, int64_t id, const char *key, int64_t want_balance)
{
    char sql[300];
    CHECK_I64(test_balance(eng, id), want_balance);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pgbank_journal WHERE key = '%s'", key);
    CHECK_I64(sql_int(conninfo, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pgbank_keys WHERE key = '%s' AND outcome = 0",
             key);
    CHECK_I64(sql_int(conninfo, sql), 1);
}

static void test_a_backend_killed_before_commit_lands_is_applied_exactly_once(void)
{
    pgbank_engine *eng = engine_on(conninfo, 1, kill_on_commit);
    int64_t id = test_open(eng, 100);
    char key[64];
    snprintf(key, sizeof key, "kill-before-%d", (int)getpid());
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_WITHDRAW);
    op.strategy = PGBANK_FOR_UPDATE;
    op.account = id;
    op.amount = 30;
    op.key = key;
    op.done = note_done;
    completions = 0;
    commit_seen = 0;
    kill_armed = 1;
    CHECK(pgbank_submit(eng, &op) == 0);
    CHECK(pgbank_engine_run(eng, 30000) == 0);
    CHECK_I64(completions, 1);
    CHECK_STATUS(&op, PGBANK_OK);
    CHECK_I64(op.result.balance, 70);
    CHECK(commit_seen >= 2); /* the first COMMIT died with its backend; the re-run committed */
    check_once(eng, id, key, 70);
    pgbank_engine_free(eng);
}

/* The engine in the test's own loop, so the test can cut the reply to a
 * COMMIT that the server has already applied. */
static int engine_fd = -1;
static void one_socket(void *arg, int fd, int what)
{
    (void)arg;
    engine_fd = (what & PGBANK_POLL_REMOVE) ? -1 : fd;
}
static void no_timer(void *arg, long ms)
{
    (void)arg;
    (void)ms;
}

static void test_a_reply_lost_after_commit_is_resolved_by_key_exactly_once(void)
{
    pgbank_engine *eng = engine_on(conninfo, 1, kill_on_commit);
    int64_t id = test_open(eng, 100);
    char key[64], sql[200];
    snprintf(key, sizeof key, "kill-after-%d", (int)getpid());
    CHECK(pgbank_engine_set_loop(eng, one_socket, no_timer, NULL) == 0);
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_WITHDRAW);
    op.strategy = PGBANK_ATOMIC;
    op.account = id;
    op.amount = 30;
    op.key = key;
    op.done = note_done;
    completions = 0;
    commit_seen = 0;
    kill_armed = 0;
    CHECK(pgbank_submit(eng, &op) == 0);
    int cut = 0;
    for (int rounds = 0; pgbank_engine_pending(eng) > 0 && rounds < 200000; rounds++) {
        if (commit_seen && !cut) {
            /* COMMIT is on its way: wait until the server has applied it,
             * kill the backend, and lose the reply the client never read. */
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM pgbank_keys WHERE key = '%s' AND outcome = 0", key);
            for (int i = 0; i < 500 && sql_int(conninfo, sql) != 1; i++)
                usleep(2000);
            terminate_engine_backends();
            int sv[2];
            CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
            close(sv[1]);
            CHECK(dup2(sv[0], engine_fd) >= 0); /* reads now see EOF: the reply is gone */
            close(sv[0]);
            cut = 1;
        }
        struct pollfd p = {.fd = engine_fd, .events = POLLIN | POLLOUT};
        int rc = engine_fd >= 0 ? poll(&p, 1, 20) : 0;
        if (rc > 0)
            pgbank_engine_socket_action(eng, engine_fd,
                                        ((p.revents & (POLLIN | POLLHUP | POLLERR)) ? PGBANK_POLL_IN : 0) |
                                            ((p.revents & POLLOUT) ? PGBANK_POLL_OUT : 0));
        else
            pgbank_engine_socket_action(eng, PGBANK_SOCKET_TIMEOUT, 0);
    }
    CHECK(cut);
    CHECK_I64(completions, 1);
    CHECK_STATUS(&op, PGBANK_OK);
    CHECK_I64(op.result.replayed, 0); /* its own outcome, found by its key */
    CHECK_I64(op.result.balance, 70);
    CHECK(pgbank_engine_set_loop(eng, NULL, NULL, NULL) == 0);
    check_once(eng, id, key, 70);
    pgbank_engine_free(eng);
}

/* --- journal and audit, in a schema of their own -------------------------------- */

static void history_row(void *arg, const pgbank_journal_entry *e)
{
    int64_t *sum = arg;
    *sum += e->amount;
}

static void test_the_journal_and_audit_hold_after_safe_strategies(void)
{
    pgbank_engine *eng = engine_on(schema_ci, 8, NULL);
    int64_t a = test_open(eng, 500), b = test_open(eng, 0);
    for (int k = 0; k < NSAFE; k++) {
        test_run(eng, PGBANK_OP_WITHDRAW, safe[k], a, 0, 7, NULL);
        test_run(eng, PGBANK_OP_DEPOSIT, safe[k], b, 0, 5, NULL);
        test_run(eng, PGBANK_OP_TRANSFER, safe[k], a, b, 20, NULL);
    }
    int64_t sum = 0;
    char err[256];
    CHECK(pgbank_history(schema_ci, a, 0, history_row, &sum, err, sizeof err) == 0);
    CHECK_I64(sum, test_balance(eng, a));
    CHECK(pgbank_history(schema_ci, 987654321, 0, history_row, &sum, err, sizeof err) ==
          PGBANK_ENOTFOUND);
    pgbank_audit_report rep;
    CHECK_I64(pgbank_audit(schema_ci, &rep, NULL, NULL, err, sizeof err), 1);
    CHECK_I64(rep.mismatched, 0);
    CHECK_I64(rep.total_balance, 500 + 15 - 21);
    CHECK_I64(rep.deposits, 15 + 60);
    CHECK_I64(rep.withdrawals, 21 + 60);
    pgbank_engine_free(eng);
}

static void test_the_audit_fails_after_unsafe_strategies_lose_money(void)
{
    pgbank_engine *eng = engine_on(schema_ci, 10, NULL);
    CHECK(pgbank_engine_wait_connected(eng, 20000) == 0);
    int64_t id = test_open(eng, 1000);
    pgbank_gate gate;
    pgbank_gate_init(&gate, 10);
    pgbank_op ops[10];
    tally t = {0, 0, 0, 0};
    for (int i = 0; i < 10; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = PGBANK_EXPLICIT;
        ops[i].account = id;
        ops[i].amount = 10;
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit_gated(eng, &ops[i], &gate) == 0);
    }
    CHECK(pgbank_engine_run(eng, 30000) == 0);
    CHECK_I64(t.ok, 10);
    pgbank_audit_report rep;
    char err[256];
    CHECK_I64(pgbank_audit(schema_ci, &rep, NULL, NULL, err, sizeof err), 0);
    CHECK_I64(rep.mismatched, 1);
    CHECK_I64(rep.money_lost, 90); /* 100 reported and journaled, 10 debited */
    pgbank_engine_free(eng);
}

int main(void)
{
    conninfo = test_conninfo();
    if (test_is_citus(conninfo))
        retry_budget_ms = 120000;
    RUN(test_deposits_add_money_with_every_safe_strategy);
    RUN(test_transfers_move_money_or_change_nothing);
    RUN(test_opposite_transfers_from_many_clients_never_deadlock);
    RUN(test_serializable_under_contention_ends_exact);
    RUN(test_a_keyed_withdrawal_replays_and_a_reused_key_conflicts);
    RUN(test_a_backend_killed_before_commit_lands_is_applied_exactly_once);
    RUN(test_a_reply_lost_after_commit_is_resolved_by_key_exactly_once);

    PGconn *pg = PQconnectdb(conninfo);
    PQclear(PQexec(pg, "DROP SCHEMA IF EXISTS audittest CASCADE"));
    PQclear(PQexec(pg, "CREATE SCHEMA audittest"));
    snprintf(schema_ci, sizeof schema_ci, "%s options='-csearch_path=audittest'", conninfo);
    char err[512];
    CHECK(pgbank_schema_init(schema_ci, err, sizeof err) == 0);
    RUN(test_the_journal_and_audit_hold_after_safe_strategies);
    RUN(test_the_audit_fails_after_unsafe_strategies_lose_money);
    PQclear(PQexec(pg, "DROP SCHEMA audittest CASCADE"));
    PQfinish(pg);
    TEST_EXIT();
}
