/*
 * test_citus.c - pgbank on a Citus cluster: the client's shard map agrees
 * with Citus's, init distributes the schema, and the batch strategy's lanes
 * (one per set of shards, each batch run on its shard's worker) keep every
 * result exact under concurrency.
 *
 * Needs a Citus coordinator: PGBANK_TEST_DATABASE_URL (the suite's external
 * mode sets it).  Without it the test exits 77, which CTest counts as
 * skipped (tests/citus.cmake).  Works in a schema of its own, dropped at the
 * end, so the database's own pgbank schema is never touched.
 */
#include "engine.h"
#include "testlib.h"

#include <libpq-fe.h>

#define SCHEMA "pgbank_test_citus"

static const char *url;
static char conninfo[2048]; /* url, with search_path = SCHEMA */
static PGconn *pg;

static PGresult *q(const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(pg));
        t_failures++;
    }
    return r;
}

/* hashint8 in C equals worker_hash(bigint) for ids of every kind. */
static void the_client_hashes_ids_as_citus_does(void)
{
    PGresult *r = q("SELECT v::text, worker_hash(v)::text FROM (SELECT generate_series(-2000, 2000)"
                    "::bigint AS v UNION ALL SELECT unnest(ARRAY[2147483647, 2147483648, -2147483648,"
                    " -2147483649, 4294967296, 9223372036854775807, -9223372036854775808,"
                    " 1234567890123, -987654321987]::bigint[])) s",
                    0, NULL);
    int bad = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t v = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        int32_t want = (int32_t)strtol(PQgetvalue(r, i, 1), NULL, 10);
        if (pgbank__hash_int8(v) != want && bad++ < 5)
            fprintf(stderr, "hash of %" PRId64 ": %d, worker_hash says %d\n", v,
                    pgbank__hash_int8(v), want);
    }
    CHECK(PQntuples(r) > 4000);
    CHECK_I64(bad, 0);
    PQclear(r);
}

/* init distributes the schema, twice without harm, as Citus reports. */
static void init_distributes_the_schema_and_runs_again(void)
{
    char err[1024];
    pgbank_schema_options o;
    pgbank_schema_options_init(&o);
    o.distributed = 1;
    CHECK_I64(pgbank_schema_create(conninfo, &o, err, sizeof err), 0);
    CHECK_I64(pgbank_schema_create(conninfo, &o, err, sizeof err), 0);
    PGresult *r = q("SELECT logicalrelid::text, partkey IS NOT NULL,"
                    " colocationid = (SELECT colocationid FROM pg_dist_partition"
                    "  WHERE logicalrelid = '" SCHEMA ".accounts'::regclass)"
                    " FROM pg_dist_partition WHERE logicalrelid::text LIKE '" SCHEMA ".%'"
                    " ORDER BY 1",
                    0, NULL);
    CHECK_I64(PQntuples(r), 3);
    for (int i = 0; i < PQntuples(r); i++)
        CHECK(PQgetvalue(r, i, 1)[0] == 't' && PQgetvalue(r, i, 2)[0] == 't');
    PQclear(r);
    r = q("SELECT string_agg(objid::regprocedure::text, ' ' ORDER BY objid::regprocedure::text)"
          " FROM pg_dist_object"
          " WHERE distribution_argument_index IS NOT NULL"
          " AND objid::regprocedure::text LIKE '" SCHEMA ".pgbank_%'",
          0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0),
              SCHEMA ".pgbank_atomic_one(smallint,bigint,bigint) " SCHEMA
                     ".pgbank_batch_one(smallint,bigint,bigint) " SCHEMA
                     ".pgbank_batch_route(bigint,smallint[],bigint[],bigint[],bigint[])");
    PQclear(r);
}

/* Accounts 1..n holding `balance` each, journaled as openings. */
static int open_accounts(pgbank_engine *eng, int n, int64_t balance)
{
    for (int i = 0; i < n; i++) {
        pgbank_op op = {.kind = PGBANK_OP_OPEN, .strategy = PGBANK_ATOMIC, .amount = balance};
        if (pgbank_execute(eng, &op) != 0 || op.result.status != PGBANK_OK)
            return -1;
    }
    return 0;
}

/* The engine's shard of every account is Citus's. */
static void the_engine_finds_each_accounts_shard(void)
{
    pgbank_options opt;
    pgbank_options_init(&opt);
    opt.conninfo = conninfo;
    char err[512];
    pgbank_engine *eng = NULL;
    CHECK_I64(pgbank_engine_new(&eng, &opt, err, sizeof err), 0);
    if (!eng)
        return;
    CHECK_I64(open_accounts(eng, 64, 1000), 0);
    /* a batched operation makes the engine read the shards */
    pgbank_op op = {.kind = PGBANK_OP_DEPOSIT, .strategy = PGBANK_BATCH, .account = 1,
                    .amount = 1};
    CHECK_I64(pgbank_execute(eng, &op), 0);
    CHECK_STATUS(&op, PGBANK_OK);
    CHECK(eng->route_fn && eng->shards_known && eng->nshards > 1);
    PGresult *sh = q("SELECT shardid FROM pg_dist_shard WHERE logicalrelid ="
                     " '" SCHEMA ".accounts'::regclass ORDER BY shardminvalue::int",
                     0, NULL);
    PGresult *r = q("SELECT id, get_shard_id_for_distribution_column('" SCHEMA ".accounts', id)"
                    " FROM " SCHEMA ".accounts ORDER BY id",
                    0, NULL);
    CHECK_I64(PQntuples(r), 64);
    CHECK_I64(PQntuples(sh), eng->nshards);
    for (int i = 0; i < PQntuples(r) && PQntuples(sh) == eng->nshards; i++) {
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        int k = pgbank__shard_of(eng, id);
        CHECK_STR(PQgetvalue(sh, k, 0), PQgetvalue(r, i, 1));
    }
    PQclear(r);
    PQclear(sh);
    pgbank_engine_free(eng);
}

static const char *sqlstate_of(PGresult *r)
{
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return ss ? ss : "";
}

/* The SQLSTATE of `sql` ($1 = arg) run by a fresh role that may use the
 * schema and was granted nothing else; the role is dropped after. */
static char nobody_state[6];
static const char *sqlstate_as_nobody(const char *sql, const char *arg)
{
    PQclear(q("DROP ROLE IF EXISTS pgbank_test_citus_nobody", 0, NULL));
    PQclear(q("CREATE ROLE pgbank_test_citus_nobody LOGIN", 0, NULL));
    PQclear(q("GRANT USAGE ON SCHEMA " SCHEMA " TO pgbank_test_citus_nobody", 0, NULL));
    PQclear(q("SET ROLE pgbank_test_citus_nobody", 0, NULL));
    PGresult *r = PQexecParams(pg, sql, 1, NULL, &arg, NULL, NULL, 0);
    snprintf(nobody_state, sizeof nobody_state, "%s", sqlstate_of(r));
    PQclear(r);
    PQclear(q("RESET ROLE", 0, NULL));
    PQclear(q("REVOKE ALL ON SCHEMA " SCHEMA " FROM pgbank_test_citus_nobody", 0, NULL));
    PQclear(q("DROP ROLE pgbank_test_citus_nobody", 0, NULL));
    return nobody_state;
}

/* pgbank_batch_route() for a hostile caller: no right without a grant, and
 * for its owner no account outside the routing account's shard, no NULL;
 * a refusal changes nothing. */
static void the_routed_batch_refuses_hostile_callers(void)
{
    PGresult *r = q("SELECT id, get_shard_id_for_distribution_column('" SCHEMA ".accounts', id)"
                    " FROM " SCHEMA ".accounts ORDER BY id",
                    0, NULL);
    char a[24] = "", b[24] = "";
    for (int i = 1; i < PQntuples(r) && !b[0]; i++)
        if (strcmp(PQgetvalue(r, i, 1), PQgetvalue(r, 0, 1)) != 0) {
            snprintf(a, sizeof a, "%s", PQgetvalue(r, 0, 0));
            snprintf(b, sizeof b, "%s", PQgetvalue(r, i, 0));
        }
    PQclear(r);
    CHECK(b[0] != '\0');
    r = q("SELECT sum(balance)::text FROM " SCHEMA ".accounts", 0, NULL);
    char before[32];
    snprintf(before, sizeof before, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char arr[64];
    snprintf(arr, sizeof arr, "{%s,%s}", a, b);
    const char *p[2] = {a, arr};
    r = PQexecParams(pg, "SELECT * FROM " SCHEMA ".pgbank_batch_route($1::bigint, '{0,1}',"
                         " $2::bigint[], '{NULL,NULL}', '{1,1}')",
                     2, NULL, p, NULL, NULL, 0);
    CHECK_STR(sqlstate_of(r), "22023");
    PQclear(r);
    r = PQexec(pg, "SELECT * FROM " SCHEMA ".pgbank_batch_route(NULL, '{0}', '{1}', '{NULL}',"
                   " '{1}')");
    CHECK_STR(sqlstate_of(r), "22023");
    PQclear(r);
    CHECK_STR(sqlstate_as_nobody("SELECT * FROM " SCHEMA ".pgbank_batch_route($1::bigint, '{0}',"
                                 " ARRAY[$1::bigint], '{NULL}', '{1}')",
                                 a),
              "42501");
    r = q("SELECT sum(balance)::text FROM " SCHEMA ".accounts", 0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), before);
    PQclear(r);
}

/* pgbank_atomic_one() for a hostile caller: no right without a grant (init
 * grants it to nobody; the owner's atomic strategy uses it); for its owner
 * no kind but 0 and 1, no NULL, no amount below 1; a deposit that would
 * overflow is refused; nothing refused changes a balance.  And what it does
 * right: a withdrawal, journaled as 'atomic'. */
static void the_atomic_function_refuses_hostile_callers(void)
{
    PGresult *r = q("SELECT sum(balance)::text FROM " SCHEMA ".accounts", 0, NULL);
    char before[32];
    snprintf(before, sizeof before, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    static const char *const bad[] = {
        "SELECT * FROM " SCHEMA ".pgbank_atomic_one(0::smallint, 1, -5)",
        "SELECT * FROM " SCHEMA ".pgbank_atomic_one(1::smallint, 1, -5)",
        "SELECT * FROM " SCHEMA ".pgbank_atomic_one(2::smallint, 1, 5)",
        "SELECT * FROM " SCHEMA ".pgbank_atomic_one(NULL, 1, 5)",
        "SELECT * FROM " SCHEMA ".pgbank_atomic_one(0::smallint, NULL, 5)",
        "SELECT * FROM " SCHEMA ".pgbank_atomic_one(0::smallint, 1, NULL)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = PQexec(pg, bad[i]);
        if (strcmp(sqlstate_of(r), "22023") != 0) {
            fprintf(stderr, "%s: SQLSTATE '%s', want 22023\n", bad[i], sqlstate_of(r));
            t_failures++;
        }
        PQclear(r);
    }
    CHECK_STR(sqlstate_as_nobody("SELECT * FROM " SCHEMA ".pgbank_atomic_one(0::smallint,"
                                 " $1::bigint, 1)",
                                 "1"),
              "42501");
    /* a deposit that would not fit: refused (outcome 3), not wrapped */
    r = q("SELECT status::text FROM " SCHEMA ".pgbank_atomic_one(1::smallint, 1,"
          " 9223372036854775807)",
          0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), "3");
    PQclear(r);
    r = q("SELECT sum(balance)::text FROM " SCHEMA ".accounts", 0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), before);
    PQclear(r);
    r = q("SELECT status::text, bal::text FROM " SCHEMA ".pgbank_atomic_one(0::smallint, 1, 3)",
          0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    r = q("SELECT strategy, amount::text FROM " SCHEMA ".pgbank_entries WHERE account = 1"
          " ORDER BY seq DESC LIMIT 1",
          0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), "atomic");
    CHECK_STR(PQgetvalue(r, 0, 1), "-3");
    PQclear(r);
}

typedef struct closed_loop {
    pgbank_engine *eng;
    pgbank_op ops[64];
    int left;      /* operations still to submit */
    int ok, refused, other;
    int64_t moved; /* withdrawn, net */
    uint64_t rng;
} closed_loop;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void submit_next(closed_loop *cl, pgbank_op *op);

static void on_done(pgbank_op *op)
{
    closed_loop *cl = op->user_data;
    if (op->result.status == PGBANK_OK) {
        cl->ok++;
        if (op->kind == PGBANK_OP_WITHDRAW)
            cl->moved += op->amount;
        else if (op->kind == PGBANK_OP_DEPOSIT)
            cl->moved -= op->amount;
    } else if (op->result.status == PGBANK_INSUFFICIENT_FUNDS) {
        cl->refused++;
    } else {
        if (cl->other++ < 3)
            fprintf(stderr, "%s: %s\n", pgbank_status_name(op->result.status),
                    op->result.message);
    }
    if (cl->left > 0)
        submit_next(cl, op);
}

static void submit_next(closed_loop *cl, pgbank_op *op)
{
    cl->left--;
    uint64_t x = next_rand(&cl->rng);
    memset(op, 0, sizeof *op);
    op->strategy = PGBANK_BATCH;
    op->account = 1 + (int64_t)(x % 64);
    op->amount = 1 + (int64_t)((x >> 8) % 40);
    switch ((x >> 16) % 4) {
    case 0: op->kind = PGBANK_OP_DEPOSIT; break;
    case 1:
        op->kind = PGBANK_OP_TRANSFER;
        op->to_account = 1 + (int64_t)((x >> 24) % 64);
        if (op->to_account == op->account)
            op->to_account = op->account % 64 + 1;
        break;
    default: op->kind = PGBANK_OP_WITHDRAW; break;
    }
    op->done = on_done;
    op->user_data = cl;
    if (pgbank_submit(cl->eng, op) != 0)
        cl->other++;
}

/* 64 clients, 6,000 batched withdrawals, deposits and transfers (within and
 * between shards): every one answered, the money adds up, the audit holds. */
static void batches_run_on_their_shards_and_the_money_adds_up(void)
{
    pgbank_options opt;
    pgbank_options_init(&opt);
    opt.conninfo = conninfo;
    opt.lanes = 2;
    char err[512];
    closed_loop cl;
    memset(&cl, 0, sizeof cl);
    cl.rng = 0x9E3779B97F4A7C15u;
    cl.left = 6000;
    CHECK_I64(pgbank_engine_new(&cl.eng, &opt, err, sizeof err), 0);
    if (!cl.eng)
        return;
    PGresult *r = q("SELECT sum(balance) FROM " SCHEMA ".accounts", 0, NULL);
    int64_t before = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    for (int i = 0; i < 64; i++)
        submit_next(&cl, &cl.ops[i]);
    CHECK_I64(pgbank_engine_run(cl.eng, 600000), 0);
    pgbank_engine_stats st;
    pgbank_engine_get_stats(cl.eng, &st);
    pgbank_engine_free(cl.eng);
    CHECK_I64(cl.ok + cl.refused + cl.other, 6000);
    CHECK_I64(cl.other, 0);
    CHECK(cl.ok > 3000);
    CHECK(st.batches < 6000); /* operations did travel together */
    r = q("SELECT sum(balance) FROM " SCHEMA ".accounts", 0, NULL);
    CHECK_I64(strtoll(PQgetvalue(r, 0, 0), NULL, 10), before - cl.moved);
    PQclear(r);
    pgbank_audit_report rep;
    CHECK_I64(pgbank_audit(conninfo, &rep, NULL, NULL, err, sizeof err), 1);
    printf("  %d ok, %d refused, %" PRIu64 " batches\n", cl.ok, cl.refused,
           (uint64_t)st.batches);
}

int main(void)
{
    url = getenv("PGBANK_TEST_DATABASE_URL");
    if (!url || !*url) {
        printf("PGBANK_TEST_DATABASE_URL is not set: no Citus cluster to test (skipped)\n");
        return 77;
    }
    pg = PQconnectdb(url);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(pg));
        return 1;
    }
    PGresult *r = q("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')", 0, NULL);
    int citus = PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!citus) {
        printf("the database of PGBANK_TEST_DATABASE_URL has no Citus (skipped)\n");
        PQfinish(pg);
        return 77;
    }
    /* The URL's options, plus the search_path (libpq takes the last
     * occurrence of a keyword in a key=value string, so the URL is
     * expanded first). */
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    size_t len = 0;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val && strcmp(o->keyword, "options") != 0)
            len += (size_t)snprintf(conninfo + len, sizeof conninfo - len, "%s='%s' ",
                                    o->keyword, o->val);
    snprintf(conninfo + len, sizeof conninfo - len, "options='-csearch_path=" SCHEMA "'");
    PQconninfoFree(opts);
    PQclear(q("SET client_min_messages = warning", 0, NULL));
    PQclear(q("DROP SCHEMA IF EXISTS " SCHEMA " CASCADE", 0, NULL));
    PQclear(q("CREATE SCHEMA " SCHEMA, 0, NULL));
    RUN(the_client_hashes_ids_as_citus_does);
    RUN(init_distributes_the_schema_and_runs_again);
    RUN(the_engine_finds_each_accounts_shard);
    RUN(the_routed_batch_refuses_hostile_callers);
    RUN(the_atomic_function_refuses_hostile_callers);
    RUN(batches_run_on_their_shards_and_the_money_adds_up);
    PQclear(q("DROP SCHEMA IF EXISTS " SCHEMA " CASCADE", 0, NULL));
    PQfinish(pg);
    TEST_EXIT();
}
