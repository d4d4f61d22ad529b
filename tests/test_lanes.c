/*
 * test_lanes.c - the batch strategy's lanes keep every account's arrival
 * order: many closed-loop clients submit withdrawals, deposits and
 * transfers (within a lane and across lanes, some keyed, some on accounts
 * that do not exist, small balances so that refusals are common) to an
 * engine with several lanes; every operation's arrival (the order of the
 * pgbank_submit() calls) and result are recorded; then the sequence is
 * replayed serially, one operation at a time, on a model of the accounts,
 * and every result must be the one the model gives, and every final
 * balance the model's.
 */
#include "internal.h"
#include "testlib.h"

#include <libpq-fe.h>

#define NACC 48
#define MISSING_ID 999999999
#define CLIENTS 64

typedef struct rec {
    pgbank_op op;
    char key[32];
    int64_t arrival; /* its place in the sequence of submissions */
} rec;

typedef struct run {
    pgbank_engine *eng;
    rec *recs;
    int64_t nrecs, next, total, done;
    int64_t ids[NACC];
    uint64_t rng;
} run;

static const char *ci;

static int64_t pick_id(run *r)
{
    if (pgbank__rand_below(&r->rng, 100) == 0)
        return MISSING_ID;
    return r->ids[pgbank__rand_below(&r->rng, NACC)];
}

static void submit_next(run *r);

static void on_done(pgbank_op *op)
{
    run *r = op->user_data;
    r->done++;
    submit_next(r);
}

static void submit_next(run *r)
{
    if (r->next >= r->total)
        return;
    rec *x = &r->recs[r->next];
    uint64_t k = pgbank__rand_below(&r->rng, 10);
    pgbank_op_init(&x->op, k < 4 ? PGBANK_OP_WITHDRAW : k < 6 ? PGBANK_OP_DEPOSIT
                                                            : PGBANK_OP_TRANSFER);
    x->op.strategy = PGBANK_BATCH;
    x->op.account = pick_id(r);
    do {
        x->op.to_account = pick_id(r);
    } while (x->op.kind == PGBANK_OP_TRANSFER && x->op.to_account == x->op.account);
    if (x->op.kind != PGBANK_OP_TRANSFER)
        x->op.to_account = 0;
    x->op.amount = 1 + (int64_t)pgbank__rand_below(&r->rng, 60);
    if (pgbank__rand_below(&r->rng, 20) == 0) {
        snprintf(x->key, sizeof x->key, "lanes-%lld-%lld", (long long)r->rng % 100000,
                 (long long)r->next);
        x->op.key = x->key;
    }
    x->op.done = on_done;
    x->op.user_data = r;
    x->arrival = r->next++;
    CHECK(pgbank_submit(r->eng, &x->op) == 0);
}

/* The one-by-one replay: what pgbank_batch() promises for each operation. */
typedef struct model {
    int64_t id[NACC], bal[NACC];
} model;

static int64_t *find(model *m, int64_t id)
{
    for (int i = 0; i < NACC; i++)
        if (m->id[i] == id)
            return &m->bal[i];
    return NULL;
}

static void expect(model *m, const pgbank_op *op, pgbank_status *st, int64_t *bal, int64_t *to)
{
    int64_t *a = find(m, op->account), *b = find(m, op->to_account);
    *bal = *to = 0;
    if (!a) {
        *st = PGBANK_NO_SUCH_ACCOUNT;
        return;
    }
    switch (op->kind) {
    case PGBANK_OP_WITHDRAW:
        if (*a >= op->amount) {
            *a -= op->amount;
            *st = PGBANK_OK;
        } else {
            *st = PGBANK_INSUFFICIENT_FUNDS;
        }
        *bal = *a;
        break;
    case PGBANK_OP_DEPOSIT:
        *a += op->amount;
        *st = PGBANK_OK;
        *bal = *a;
        break;
    default:
        if (!b) {
            *st = PGBANK_NO_SUCH_ACCOUNT;
        } else if (*a < op->amount) {
            *st = PGBANK_INSUFFICIENT_FUNDS;
            *bal = *a;
        } else {
            *a -= op->amount;
            *b += op->amount;
            *st = PGBANK_OK;
            *bal = *a;
            *to = *b;
        }
        break;
    }
}

static void test_every_account_sees_its_operations_in_arrival_order(void)
{
    run r;
    memset(&r, 0, sizeof r);
    r.rng = pgbank__rand_seed();
    model m;
    pgbank_engine *setup = test_engine(ci, 1);
    for (int i = 0; i < NACC; i++) {
        m.bal[i] = (int64_t)pgbank__rand_below(&r.rng, 200);
        m.id[i] = r.ids[i] = test_open(setup, m.bal[i]);
    }
    pgbank_engine_free(setup);

    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.connections = 1;
    o.lanes = 4;
    o.batch_inflight = 2;
    r.eng = test_engine_opts(&o);
    /* On a database named from outside (a Citus coordinator, where every
     * batch is a routed call and a crossing a distributed transaction) a
     * quarter as many: the order checks are the same. */
    int external = getenv("PGBANK_TEST_DATABASE_URL") && *getenv("PGBANK_TEST_DATABASE_URL");
    r.total = external ? 5000 : 20000;
    r.recs = calloc((size_t)r.total, sizeof *r.recs);
    for (int c = 0; c < CLIENTS; c++)
        submit_next(&r);
    /* A bound against hanging, not a speed: a Citus coordinator on a busy
     * 2-core machine needs minutes. */
    CHECK(pgbank_engine_run(r.eng, 400000) == 0);
    CHECK_I64(r.done, r.total);
    pgbank_engine_stats st;
    pgbank_engine_get_stats(r.eng, &st);
    CHECK_I64(st.lanes, 4);
    printf("  %lld operations in %llu batches, %llu crossings\n", (long long)r.total,
           (unsigned long long)st.batches, (unsigned long long)st.crossings);
    CHECK(st.crossings > 100);                   /* transfers between lanes ran */
    /* Operations did travel together.  On a database named from outside
     * (a Citus coordinator) a lane's batch holds one shard's operations
     * only, so batches are smaller there: fewer than one per operation. */
    if (external)
        CHECK(st.batches < (uint64_t)r.total);
    else
        CHECK(st.batches < (uint64_t)r.total * 3 / 4);
    pgbank_engine_free(r.eng);

    int64_t wrong = 0, refused = 0;
    for (int64_t i = 0; i < r.total; i++) {
        const pgbank_op *op = &r.recs[i].op;
        pgbank_status want;
        int64_t bal, to;
        expect(&m, op, &want, &bal, &to);
        int same = op->result.status == want &&
                   (want != PGBANK_OK || (op->result.balance == bal &&
                                          (op->kind != PGBANK_OP_TRANSFER || op->result.to_balance == to))) &&
                   (want != PGBANK_INSUFFICIENT_FUNDS || op->result.balance == bal);
        if (want != PGBANK_OK)
            refused++;
        if (!same && wrong++ < 5)
            fprintf(stderr,
                    "  operation %lld (%d of %lld to %lld, amount %lld%s): got %s %lld/%lld,"
                    " the one-by-one replay gives %s %lld/%lld\n",
                    (long long)r.recs[i].arrival, (int)op->kind, (long long)op->account,
                    (long long)op->to_account, (long long)op->amount, op->key ? ", keyed" : "",
                    pgbank_status_name(op->result.status), (long long)op->result.balance,
                    (long long)op->result.to_balance, pgbank_status_name(want), (long long)bal,
                    (long long)to);
    }
    CHECK_I64(wrong, 0);
    CHECK(refused > r.total / 40); /* the comparison did cover refusals */
    pgbank_engine *check = test_engine(ci, 1);
    for (int i = 0; i < NACC; i++)
        CHECK_I64(test_balance(check, m.id[i]), m.bal[i]);
    pgbank_engine_free(check);
    pgbank_audit_report rep;
    char err[256];
    CHECK_I64(pgbank_audit(ci, &rep, NULL, NULL, err, sizeof err), 1);
    free(r.recs);
}

/* An account's history after lanes: the chain holds every operation, newest
 * first, each balance after the previous one plus its amount. */
static int64_t hist_prev_bal, hist_count, hist_bad;
static void on_entry(void *arg, const pgbank_journal_entry *e)
{
    (void)arg;
    /* Newest first: an entry's balance after is what the newer one found. */
    if (hist_count++ > 0 && e->balance_after != hist_prev_bal)
        hist_bad++;
    hist_prev_bal = e->balance_after - e->amount;
}

static void test_history_walks_the_chain_of_a_hot_account(void)
{
    pgbank_engine *eng = test_engine(ci, 1);
    int64_t id = test_open(eng, 1000000);
    pgbank_engine_free(eng);
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    o.lanes = 2;
    eng = test_engine_opts(&o);
    static pgbank_op ops[3000];
    tally t = {0, 0, 0, 0};
    for (int i = 0; i < 3000; i++) {
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = PGBANK_BATCH;
        ops[i].account = id;
        ops[i].amount = 1 + i % 7;
        ops[i].done = tally_done;
        ops[i].user_data = &t;
        CHECK(pgbank_submit(eng, &ops[i]) == 0);
    }
    CHECK(pgbank_engine_run(eng, 60000) == 0);
    CHECK_I64(t.ok, 3000);
    pgbank_engine_free(eng);
    /* Every operation once in the history, each balance after one step
     * below the one before it (newest first). */
    char err[256];
    hist_count = hist_bad = 0;
    CHECK_I64(pgbank_history(ci, id, 0, on_entry, NULL, err, sizeof err), 0);
    CHECK_I64(hist_count, 3001); /* the opening and 3000 withdrawals */
    CHECK_I64(hist_prev_bal, 0); /* before the opening: nothing */
    CHECK_I64(hist_bad, 0);
    /* ... in far fewer journal rows than operations. */
    PGconn *pg = PQconnectdb(ci);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pgbank_journal WHERE account = %lld",
             (long long)id);
    PGresult *res = PQexec(pg, sql);
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && strtoll(PQgetvalue(res, 0, 0), NULL, 10) < 3001);
    PQclear(res);
    PQfinish(pg);
}

static void test_lanes_are_checked(void)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = ci;
    CHECK_I64(o.lanes, PGBANK_DEFAULT_LANES);
    o.lanes = 65;
    pgbank_engine *eng = NULL;
    char err[200];
    CHECK_I64(pgbank_engine_new(&eng, &o, err, sizeof err), PGBANK_EINVAL);
    CHECK(strstr(err, "lanes") != NULL);
}

int main(void)
{
    static char schema_ci[1400];
    const char *base = test_conninfo();
    snprintf(schema_ci, sizeof schema_ci, "%s options='-csearch_path=lanes_test'", base);
    ci = schema_ci;
    PGconn *pg = PQconnectdb(base);
    PQclear(PQexec(pg, "DROP SCHEMA IF EXISTS lanes_test CASCADE"));
    PQclear(PQexec(pg, "CREATE SCHEMA lanes_test"));
    char err[512];
    if (pgbank_schema_init(ci, err, sizeof err) != 0) {
        fprintf(stderr, "init: %s\n", err);
        return 1;
    }
    RUN(test_every_account_sees_its_operations_in_arrival_order);
    RUN(test_history_walks_the_chain_of_a_hot_account);
    RUN(test_lanes_are_checked);
    PQclear(PQexec(pg, "DROP SCHEMA lanes_test CASCADE"));
    PQfinish(pg);
    TEST_EXIT();
}
