/*
 * test_batch.c - the batch strategy against the throwaway server: results
 * exactly as if the operations ran one by one in arrival order, a refusal
 * never affecting another; many operations share a round trip; a hot
 * account never overdraws; opposite transfers in concurrent batches never
 * deadlock; the journal and the audit hold.
 */
#include "testlib.h"

#include <libpq-fe.h>

static char ci[1400];

static pgbank_engine *engine(int connections, int inflight)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.connections = connections;
    o.batch_inflight = inflight;
    return test_engine_opts(&o);
}

static void nothing(pgbank_op *op) { (void)op; }

static void set(pgbank_op *op, pgbank_op_kind k, int64_t a, int64_t b, int64_t amount)
{
    pgbank_op_init(op, k);
    op->strategy = PGBANK_BATCH;
    op->account = a;
    op->to_account = b;
    op->amount = amount;
    op->done = nothing;
}

static void test_a_batch_answers_each_operation_as_if_they_ran_one_by_one(void)
{
    pgbank_engine *eng = engine(2, 1);
    CHECK(pgbank_engine_wait_connected(eng, 20000) == 0);
    int64_t a = test_open(eng, 100), b = test_open(eng, 0);
    pgbank_op ops[10];
    set(&ops[0], PGBANK_OP_WITHDRAW, a, 0, 30);     /* ok 70 (alone: the slot was free) */
    set(&ops[1], PGBANK_OP_WITHDRAW, a, 0, 80);     /* insufficient, 70 */
    set(&ops[2], PGBANK_OP_WITHDRAW, a, 0, 50);     /* ok 20: the refusal took nothing */
    set(&ops[3], PGBANK_OP_DEPOSIT, a, 0, 10);      /* ok 30 */
    set(&ops[4], PGBANK_OP_TRANSFER, a, b, 25);     /* ok 5 / 25 */
    set(&ops[5], PGBANK_OP_TRANSFER, a, b, 10);     /* insufficient, 5 */
    set(&ops[6], PGBANK_OP_WITHDRAW, 987654321, 0, 1); /* no such account */
    set(&ops[7], PGBANK_OP_TRANSFER, b, 987654321, 1); /* no such destination */
    set(&ops[8], PGBANK_OP_TRANSFER, b, a, 25);     /* ok 0 / 30 */
    set(&ops[9], PGBANK_OP_WITHDRAW, a, 0, 0);      /* invalid amount */
    for (int i = 0; i < 10; i++)
        CHECK(pgbank_submit(eng, &ops[i]) == 0);
    CHECK(pgbank_engine_run(eng, 30000) == 0);
    CHECK_STATUS(&ops[0], PGBANK_OK);
    CHECK_I64(ops[0].result.balance, 70);
    CHECK_STATUS(&ops[1], PGBANK_INSUFFICIENT_FUNDS);
    CHECK_I64(ops[1].result.balance, 70);
    CHECK_STATUS(&ops[2], PGBANK_OK);
    CHECK_I64(ops[2].result.balance, 20);
    CHECK_STATUS(&ops[3], PGBANK_OK);
    CHECK_I64(ops[3].result.balance, 30);
    CHECK_STATUS(&ops[4], PGBANK_OK);
    CHECK_I64(ops[4].result.balance, 5);
    CHECK_I64(ops[4].result.to_balance, 25);
    CHECK_STATUS(&ops[5], PGBANK_INSUFFICIENT_FUNDS);
    CHECK_I64(ops[5].result.balance, 5);
    CHECK_STATUS(&ops[6], PGBANK_NO_SUCH_ACCOUNT);
    CHECK_STATUS(&ops[7], PGBANK_NO_SUCH_ACCOUNT);
    CHECK(strstr(ops[7].result.message, "987654321") != NULL);
    CHECK_STATUS(&ops[8], PGBANK_OK);
    CHECK_I64(ops[8].result.balance, 0);
    CHECK_I64(ops[8].result.to_balance, 30);
    CHECK_STATUS(&ops[9], PGBANK_INVALID_AMOUNT);
    CHECK_I64(test_balance(eng, a), 30);
    CHECK_I64(test_balance(eng, b), 0);
    pgbank_engine_stats st;
    pgbank_engine_get_stats(eng, &st);
    CHECK_I64(st.batched_ops, 9);
    CHECK(st.batches >= 2 && st.batches < 9); /* the waiting ones went together */
    pgbank_engine_free(eng);
}


static void test_a_hot_account_never_overdraws_under_batches(void)
{
    pgbank_engine *eng = engine(4, 2);
    int64_t id = test_open(eng, 1000);
    static pgbank_op ops[3000];
    tally t = {0, 0, 0, 0};
    for (int i = 0; i < 3000; i++) {
        set(&ops[i], PGBANK_OP_WITHDRAW, id, 0, 1);
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit(eng, &ops[i]) == 0);
    }
    CHECK(pgbank_engine_run(eng, 60000) == 0);
    CHECK_I64(t.ok, 1000);
    CHECK_I64(t.refused, 2000);
    CHECK_I64(test_balance(eng, id), 0);
    /* the first 1000 in arrival order succeeded */
    for (int i = 0; i < 3000; i++)
        CHECK(ops[i].result.status == (i < 1000 ? PGBANK_OK : PGBANK_INSUFFICIENT_FUNDS));
    pgbank_engine_stats st;
    pgbank_engine_get_stats(eng, &st);
    printf("  3000 withdrawals in %llu batches\n", (unsigned long long)st.batches);
    CHECK(st.batches < 1000);
    pgbank_engine_free(eng);
}

static void test_opposite_transfers_in_concurrent_batches_never_deadlock(void)
{
    pgbank_engine *e1 = engine(2, 2), *e2 = engine(2, 2);
    int64_t ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = test_open(e1, 1000);
    static pgbank_op ops[4000];
    tally t = {0, 0, 0, 0};
    for (int i = 0; i < 4000; i++) {
        int64_t from = ids[i % 6], to = ids[(i * 7 + 3) % 6];
        if (from == to)
            to = ids[(i + 1) % 6];
        set(&ops[i], PGBANK_OP_TRANSFER, (i % 2) ? from : to, (i % 2) ? to : from, 1 + i % 5);
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit(i % 2 ? e1 : e2, &ops[i]) == 0);
    }
    /* Drive both engines until everything has completed. */
    for (int rounds = 0; rounds < 100000 && (pgbank_engine_pending(e1) || pgbank_engine_pending(e2));
         rounds++) {
        pgbank_engine_run(e1, 5);
        pgbank_engine_run(e2, 5);
    }
    CHECK_I64(t.other, 0);
    CHECK_I64(t.ok + t.refused, 4000);
    int64_t total = 0;
    for (int i = 0; i < 6; i++)
        total += test_balance(e1, ids[i]);
    CHECK_I64(total, 6000);
    pgbank_engine_free(e1);
    pgbank_engine_free(e2);
}

static void test_batch_passes_the_race_and_the_audit(void)
{
    pgbank_engine *eng = engine(4, 2);
    int64_t id = test_open(eng, 1000);
    pgbank_gate gate;
    pgbank_gate_init(&gate, 50);
    pgbank_op ops[50];
    tally t = {0, 0, 0, 0};
    for (int i = 0; i < 50; i++) {
        set(&ops[i], PGBANK_OP_WITHDRAW, id, 0, 10);
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit_gated(eng, &ops[i], &gate) == 0);
    }
    CHECK(pgbank_engine_run(eng, 30000) == 0);
    CHECK_I64(t.ok, 50);
    CHECK_I64(test_balance(eng, id), 500);
    pgbank_audit_report rep;
    char err[256];
    CHECK_I64(pgbank_audit(ci, &rep, NULL, NULL, err, sizeof err), 1);
    CHECK_I64(rep.mismatched, 0);
    CHECK_I64(rep.negative, 0);
    pgbank_engine_free(eng);
}

int main(void)
{
    const char *base = test_conninfo();
    PGconn *pg = PQconnectdb(base);
    PQclear(PQexec(pg, "DROP SCHEMA IF EXISTS batchtest CASCADE"));
    PQclear(PQexec(pg, "CREATE SCHEMA batchtest"));
    snprintf(ci, sizeof ci, "%s options='-csearch_path=batchtest'", base);
    char err[512];
    if (pgbank_schema_init(ci, err, sizeof err) != 0) {
        fprintf(stderr, "init: %s\n", err);
        return 1;
    }
    RUN(test_a_batch_answers_each_operation_as_if_they_ran_one_by_one);
    RUN(test_a_hot_account_never_overdraws_under_batches);
    RUN(test_opposite_transfers_in_concurrent_batches_never_deadlock);
    RUN(test_batch_passes_the_race_and_the_audit);
    PQclear(PQexec(pg, "DROP SCHEMA batchtest CASCADE"));
    PQfinish(pg);
    TEST_EXIT();
}
