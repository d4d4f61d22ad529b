/*
 * test_boundary.c - the database as the boundary, attacked: each scenario
 * performs an attack on pgbank's server-side code as a hostile caller
 * would, through plain libpq, and asserts that it failed with nothing
 * changed (docs/SECURITY.md lists them).  Then a valid call still works and
 * the audit holds.
 *
 * Cast: the owner (the tests' database's superuser, who runs init, so the
 * SECURITY DEFINER functions run as a superuser: the worst case); the
 * application role "bnd_app" made by init --app-role; "bnd_mallory", a
 * member of the application role who may also CREATE in pgbank's schema and
 * plants look-alikes of the built-ins the functions use.
 */
#include "sqlstate.h"
#include "testlib.h"

#include <libpq-fe.h>
#include <unistd.h>

#define SCHEMA "bnd"
static const char *base;
static int citus; /* a Citus coordinator: no triggers journal outside changes */
static char owner_role[64]; /* current_user of the owner's connections */
static char owner_ci[1400], app_ci[1500], mallory_ci[1500];

/* Runs sql on a fresh connection; returns its SQLSTATE (00000 when it
 * succeeded) and the first value into out (when given). */
static const char *try_sql(const char *ci, const char *sql, char *out, size_t outlen)
{
    static char state[6];
    PGconn *pg = PQconnectdb(ci);
    PGresult *r = PQexec(pg, sql);
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s", ss ? ss : (PQstatus(pg) == CONNECTION_OK ? PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION : PGBANK_SQLSTATE_CONNECTION_UNABLE));
    if (out && outlen) {
        out[0] = '\0';
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(pg);
    return state;
}

static int64_t owner_int(const char *sql)
{
    char v[64];
    const char *st = try_sql(owner_ci, sql, v, sizeof v);
    if (strcmp(st, PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION) != 0)
        fprintf(stderr, "owner_int(%s): SQLSTATE %s\n", sql, st);
    return v[0] ? strtoll(v, NULL, 10) : -1;
}

static void owner_exec(const char *sql)
{
    const char *st = try_sql(owner_ci, sql, NULL, 0);
    if (strcmp(st, PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION) != 0)
        fprintf(stderr, "owner_exec(%s): SQLSTATE %s\n", sql, st);
}

static int64_t open_account(int64_t balance)
{
    pgbank_engine *eng = test_engine(owner_ci, 1);
    int64_t id = test_open(eng, balance);
    pgbank_engine_free(eng);
    return id;
}

/* What must not move when an attack fails: every balance and the journal. */
typedef struct snapshot {
    int64_t total, rows, journal;
} snapshot;

static snapshot snap(void)
{
    snapshot s;
    s.total = owner_int("SELECT coalesce(sum(balance), 0) FROM " SCHEMA ".accounts");
    s.rows = owner_int("SELECT count(*) FROM " SCHEMA ".accounts");
    s.journal = owner_int("SELECT count(*) FROM " SCHEMA ".pgbank_journal");
    return s;
}

#define CHECK_UNCHANGED(before)                                                                    \
    do {                                                                                           \
        snapshot after_ = snap();                                                                  \
        CHECK_I64(after_.total, (before).total);                                                   \
        CHECK_I64(after_.rows, (before).rows);                                                     \
        CHECK_I64(after_.journal, (before).journal);                                               \
    } while (0)

/* An attack as the application role: refused with `want`, nothing moved. */
static void refused_as_app(const char *sql, const char *want)
{
    snapshot before = snap();
    const char *got = try_sql(app_ci, sql, NULL, 0);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "  attack: %s\n", sql);
    CHECK_STR(got, want);
    CHECK_UNCHANGED(before);
}

static int audit_holds(void)
{
    pgbank_audit_report rep;
    char err[256];
    int rc = pgbank_audit(owner_ci, &rep, NULL, NULL, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "audit: %s\n", err);
    return rc == 1;
}

/* --- item 8: the functions trust nothing -------------------------------- */

static void test_bad_arguments_to_pgbank_batch_are_refused_and_change_nothing(void)
{
    int64_t id = open_account(100), to = open_account(0);
    char sql[600];
    const char *cases[] = {
        /* a negative withdrawal would raise the balance */
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0}', '{%1$lld}', '{NULL}', '{-1000}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0}', '{%1$lld}', '{NULL}', '{0}')",
        /* kind 3 used to move money without the journal's transfer-in row */
        "SELECT * FROM " SCHEMA ".pgbank_batch('{3}', '{%1$lld}', '{%2$lld}', '{10}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{-1}', '{%1$lld}', '{NULL}', '{10}')",
        /* shifted arrays used to apply 50 and journal -7 */
        "SELECT * FROM " SCHEMA ".pgbank_batch('[2:3]={0,0}', '[2:3]={%1$lld,%1$lld}',"
        " '[2:3]={NULL,NULL}', '[2:3]={50,7}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0,0}', '{%1$lld,%1$lld}', '{NULL,NULL}',"
        " '[2:3]={50,7}')",
        /* unequal lengths */
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0,0}', '{%1$lld}', '{NULL}', '{5}')",
        /* two dimensions */
        "SELECT * FROM " SCHEMA ".pgbank_batch('{{0},{0}}', '{{%1$lld},{%1$lld}}',"
        " '{{NULL},{NULL}}', '{{5},{5}}')",
        /* NULLs */
        "SELECT * FROM " SCHEMA ".pgbank_batch(NULL, '{%1$lld}', '{NULL}', '{5}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0}', '{%1$lld}', '{NULL}', '{NULL}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{NULL}', '{%1$lld}', '{NULL}', '{5}')",
        /* a transfer to itself, a transfer without destination, a
         * withdrawal with one */
        "SELECT * FROM " SCHEMA ".pgbank_batch('{2}', '{%1$lld}', '{%1$lld}', '{5}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{2}', '{%1$lld}', '{NULL}', '{5}')",
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0}', '{%1$lld}', '{%2$lld}', '{5}')",
        /* one bad operation among good ones: the whole call is refused */
        "SELECT * FROM " SCHEMA ".pgbank_batch('{0,0,0}', '{%1$lld,%1$lld,%1$lld}',"
        " '{NULL,NULL,NULL}', '{10,-10,10}')",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(sql, sizeof sql, cases[i], (long long)id, (long long)to);
        refused_as_app(sql, PGBANK_SQLSTATE_INVALID_PARAMETER_VALUE);
    }
    /* The largest amount used to read any balance (a refusal says what the
     * balance was): a role that may not read balances gets NULL. */
    char v[64];
    snprintf(sql, sizeof sql,
             "SELECT status[1] || ':' || coalesce(bal[1]::text, 'hidden') FROM " SCHEMA
             ".pgbank_batch('{0}', '{%lld}', '{NULL}', '{9223372036854775807}')",
             (long long)id);
    CHECK_STR(try_sql(app_ci, sql, v, sizeof v), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    CHECK_STR(v, "1:hidden");
    snprintf(sql, sizeof sql,
             "SELECT status || ':' || coalesce(bal::text, 'hidden') FROM " SCHEMA
             ".pgbank_batch_one(0::smallint, %lld, 9223372036854775807)",
             (long long)id);
    CHECK_STR(try_sql(app_ci, sql, v, sizeof v), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    CHECK_STR(v, "1:hidden");
    CHECK_STR(try_sql(owner_ci, sql, v, sizeof v), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    CHECK_STR(v, "1:100"); /* the owner may read it */
    /* The size cap: one call may not lock every account for long. */
    snprintf(sql, sizeof sql,
             "SELECT * FROM " SCHEMA ".pgbank_batch(array_fill(0::smallint, ARRAY[100001]),"
             " array_fill(%lld::bigint, ARRAY[100001]), array_fill(NULL::bigint, ARRAY[100001]),"
             " array_fill(1::bigint, ARRAY[100001]))",
             (long long)id);
    refused_as_app(sql, PGBANK_SQLSTATE_PROGRAM_LIMIT_EXCEEDED);
    /* A valid call still works: the fast path answers with the account's
     * balance before the batch (100), the caller adds the withdrawal. */
    snprintf(sql, sizeof sql,
             "SELECT coalesce(status[1]::text, 'fast') || ':' || accts[1] || ':' || starts[1]"
             " FROM " SCHEMA ".pgbank_batch('{0}', '{%lld}', '{NULL}', '{30}')",
             (long long)id);
    CHECK_STR(try_sql(app_ci, sql, v, sizeof v), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    char want[64];
    snprintf(want, sizeof want, "fast:%lld:100", (long long)id);
    CHECK_STR(v, want);
    CHECK(audit_holds());
}

static void test_bad_arguments_to_the_single_and_keyed_functions_are_refused(void)
{
    int64_t id = open_account(100);
    char sql[400];
    const char *cases[] = {
        /* used to debit without any funds check */
        "SELECT * FROM " SCHEMA ".pgbank_batch_one(1::smallint, %lld, -5)",
        "SELECT * FROM " SCHEMA ".pgbank_batch_one(0::smallint, %lld, -5)",
        "SELECT * FROM " SCHEMA ".pgbank_batch_one(2::smallint, %lld, 5)",
        "SELECT * FROM " SCHEMA ".pgbank_batch_one(NULL, %lld, 5)",
        "SELECT * FROM " SCHEMA ".pgbank_keyed(0::smallint, %lld, NULL, -5, 'k1')",
        "SELECT * FROM " SCHEMA ".pgbank_keyed(0::smallint, %lld, NULL, 5, '')",
        "SELECT * FROM " SCHEMA ".pgbank_keyed(0::smallint, %lld, NULL, 5, NULL)",
        "SELECT * FROM " SCHEMA ".pgbank_keyed(2::smallint, %lld, NULL, 5, 'k2')",
        "SELECT * FROM " SCHEMA ".pgbank_keyed(9::smallint, %lld, NULL, 5, 'k3')",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(sql, sizeof sql, cases[i], (long long)id);
        refused_as_app(sql, PGBANK_SQLSTATE_INVALID_PARAMETER_VALUE);
    }
    /* Refused keyed calls claimed no key. */
    CHECK_I64(owner_int("SELECT count(*) FROM " SCHEMA ".pgbank_keys WHERE key LIKE 'k_'"), 0);
    char v[64];
    snprintf(sql, sizeof sql,
             "SELECT status || ':' || bal FROM " SCHEMA ".pgbank_batch_one(0::smallint, %lld, 40)",
             (long long)id);
    CHECK_STR(try_sql(app_ci, sql, v, sizeof v), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    CHECK_STR(v, "0:60");
    CHECK(audit_holds());
}

/* --- item 7: look-alikes planted where the caller may CREATE ----------- */

static void test_look_alike_builtins_planted_in_the_schema_never_run(void)
{
    /* Every built-in the functions call, with a more specific signature
     * than pg_catalog's (which is how the attack won before), each
     * recording that it ran and trying to make mallory a superuser. */
    static const char *const plant[] = {
        "CREATE FUNCTION " SCHEMA ".cardinality(bigint[]) RETURNS int LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('cardinality');"
        " ALTER ROLE bnd_mallory SUPERUSER; RETURN pg_catalog.cardinality($1); END$$",
        "CREATE FUNCTION " SCHEMA ".cardinality(smallint[]) RETURNS int LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('cardinality2');"
        " RETURN pg_catalog.cardinality($1); END$$",
        "CREATE FUNCTION " SCHEMA ".array_ndims(bigint[]) RETURNS int LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('array_ndims');"
        " RETURN pg_catalog.array_ndims($1); END$$",
        "CREATE FUNCTION " SCHEMA ".array_lower(bigint[], int) RETURNS int LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('array_lower');"
        " RETURN pg_catalog.array_lower($1, $2); END$$",
        "CREATE FUNCTION " SCHEMA ".unnest(bigint[]) RETURNS SETOF bigint LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('unnest');"
        " RETURN QUERY SELECT pg_catalog.unnest($1); END$$",
        "CREATE FUNCTION " SCHEMA ".octet_length(text) RETURNS int LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('octet_length');"
        " RETURN pg_catalog.octet_length($1); END$$",
        "CREATE FUNCTION " SCHEMA ".set_config(text, text, bool) RETURNS text LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('set_config');"
        " RETURN pg_catalog.set_config($1, $2, $3); END$$",
        "CREATE FUNCTION " SCHEMA ".quote_ident(name) RETURNS text LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('quote_ident');"
        " RETURN pg_catalog.quote_ident($1::text); END$$",
        "CREATE FUNCTION " SCHEMA ".format(text, text, text, bigint) RETURNS text LANGUAGE"
        " plpgsql AS $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('format');"
        " RETURN pg_catalog.format($1, $2, $3, $4); END$$",
        "CREATE FUNCTION " SCHEMA ".pg_advisory_xact_lock(integer) RETURNS void LANGUAGE plpgsql"
        " AS $$BEGIN INSERT INTO " SCHEMA ".pwned VALUES ('pg_advisory_xact_lock');"
        " ALTER ROLE bnd_mallory SUPERUSER; END$$",
    };
    /* Accounts opened first: the owner's own session below has mallory's
     * schema in its search_path. */
    int64_t id = open_account(500), to = open_account(0);
    const char *st = try_sql(mallory_ci, "CREATE TABLE " SCHEMA ".pwned (what text)", NULL, 0);
    CHECK_STR(st, PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    try_sql(mallory_ci, "GRANT ALL ON " SCHEMA ".pwned TO PUBLIC", NULL, 0);
    for (size_t i = 0; i < sizeof plant / sizeof plant[0]; i++) {
        st = try_sql(mallory_ci, plant[i], NULL, 0);
        if (strcmp(st, PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION) != 0)
            fprintf(stderr, "  could not plant: %s\n", plant[i]);
        CHECK_STR(st, PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    }
    /* mallory calls every function with the planted schema first in her
     * path; the owner then runs init, the audit and the history the same
     * way (init and the audit may run as a superuser). */
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT * FROM " SCHEMA ".pgbank_batch('{0,2}', '{%lld,%lld}', '{NULL,%lld}',"
             " '{10,20}')",
             (long long)id, (long long)id, (long long)to);
    CHECK_STR(try_sql(mallory_ci, sql, NULL, 0), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    snprintf(sql, sizeof sql, "SELECT * FROM " SCHEMA ".pgbank_batch_one(0::smallint, %lld, 5)",
             (long long)id);
    CHECK_STR(try_sql(mallory_ci, sql, NULL, 0), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    snprintf(sql, sizeof sql,
             "SELECT * FROM " SCHEMA ".pgbank_keyed(0::smallint, %lld, NULL, 5, 'planted')",
             (long long)id);
    CHECK_STR(try_sql(mallory_ci, sql, NULL, 0), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    /* Changes made outside pgbank (as mallory, a member of no writer) go
     * through the trigger function: an UPDATE by the owner fires it.  On
     * Citus there is no trigger (docs/SCALING.md), nothing to plant into. */
    if (!citus) {
        snprintf(sql, sizeof sql,
                 "UPDATE " SCHEMA ".accounts SET balance = balance + 1 WHERE id = %lld",
                 (long long)to);
        owner_exec(sql);
    }
    char err[512];
    CHECK_I64(pgbank_schema_init(owner_ci, err, sizeof err), 0);
    CHECK(audit_holds());
    CHECK_I64(owner_int("SELECT count(*) FROM " SCHEMA ".pwned"), 0);
    CHECK_I64(owner_int("SELECT count(*) FROM pg_roles WHERE rolname = 'bnd_mallory'"
                        " AND rolsuper"),
              0);
    char v[64];
    try_sql(owner_ci, "SELECT string_agg(what, ',') FROM " SCHEMA ".pwned", v, sizeof v);
    if (v[0])
        fprintf(stderr, "  planted functions that ran: %s\n", v);
    for (size_t i = 0; i < sizeof plant / sizeof plant[0]; i++) {
        /* drop them again: other scenarios run after */
        const char *name = strchr(plant[i], '.') + 1;
        char drop[200];
        snprintf(drop, sizeof drop, "DROP FUNCTION " SCHEMA ".%.*s", (int)(strchr(name, ')') - name + 1),
                 name);
        try_sql(mallory_ci, drop, NULL, 0);
    }
    try_sql(mallory_ci, "DROP TABLE " SCHEMA ".pwned", NULL, 0);
}

/* --- item 9: the application role is what it says --------------------- */

static void test_init_refuses_an_application_role_that_could_do_more(void)
{
    char err[512];
    owner_exec("DROP ROLE IF EXISTS bnd_super");
    owner_exec("CREATE ROLE bnd_super SUPERUSER");
    owner_exec("DROP ROLE IF EXISTS bnd_files");
    owner_exec("CREATE ROLE bnd_files LOGIN IN ROLE pg_write_server_files");
    owner_exec("DROP ROLE IF EXISTS bnd_creator");
    owner_exec("CREATE ROLE bnd_creator LOGIN");
    owner_exec("GRANT CREATE ON SCHEMA " SCHEMA " TO bnd_creator");
    const char *roles[] = {owner_role /* the owner, the current user */, "bnd_super", "bnd_files",
                           "bnd_creator", "bnd_mallory" /* may CREATE in the schema */};
    int64_t before = owner_int("SELECT count(*) FROM information_schema.role_routine_grants"
                               " WHERE routine_schema = '" SCHEMA "'");
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        int rc = pgbank_schema_init_app_role(owner_ci, roles[i], err, sizeof err);
        if (rc != PGBANK_ESCHEMA)
            fprintf(stderr, "  role %s: rc %d (%s)\n", roles[i], rc, err);
        CHECK_I64(rc, PGBANK_ESCHEMA);
        CHECK(strstr(err, roles[i]) != NULL);
    }
    /* Nothing was granted to any of them. */
    CHECK_I64(owner_int("SELECT count(*) FROM information_schema.role_routine_grants"
                        " WHERE routine_schema = '" SCHEMA "'"),
              before);
    /* The owner kept its rights: a withdrawal as the owner still works. */
    pgbank_engine *eng = test_engine(owner_ci, 1);
    int64_t id = test_open(eng, 50);
    pgbank_op op = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_ATOMIC, id, 0, 10, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    pgbank_engine_free(eng);
    owner_exec("REVOKE CREATE ON SCHEMA " SCHEMA " FROM bnd_creator");
    owner_exec("DROP ROLE bnd_super");
    owner_exec("DROP ROLE bnd_files");
    owner_exec("DROP ROLE bnd_creator");
}

static void test_the_application_role_has_timeouts_and_keys_but_no_tables(void)
{
    char v[200];
    try_sql(owner_ci,
            "SELECT string_agg(s, ',' ORDER BY s) FROM pg_db_role_setting d,"
            " unnest(d.setconfig) s WHERE d.setrole = 'bnd_app'::regrole",
            v, sizeof v);
    CHECK_STR(v, "idle_in_transaction_session_timeout=5s,statement_timeout=5s");
    CHECK_STR(try_sql(app_ci, "SELECT * FROM " SCHEMA ".accounts", NULL, 0), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(try_sql(app_ci, "UPDATE " SCHEMA ".accounts SET balance = 1", NULL, 0), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(try_sql(app_ci, "DELETE FROM " SCHEMA ".pgbank_keys", NULL, 0), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(try_sql(app_ci, "SELECT " SCHEMA ".pgbank_external()", NULL, 0), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    /* Keyed requests through the engine, as the application role: exactly
     * once, replayed, conflicts refused. */
    int64_t id = open_account(100);
    pgbank_engine *eng = test_engine(app_ci, 1);
    pgbank_op a = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, id, 0, 30, "app-key-1");
    CHECK_STATUS(&a, PGBANK_OK);
    CHECK_I64(a.result.balance, 70);
    CHECK_I64(a.result.replayed, 0);
    pgbank_op b = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, id, 0, 30, "app-key-1");
    CHECK_STATUS(&b, PGBANK_OK);
    CHECK_I64(b.result.balance, 70);
    CHECK_I64(b.result.replayed, 1);
    pgbank_op c = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, id, 0, 31, "app-key-1");
    CHECK_STATUS(&c, PGBANK_CONFLICT);
    pgbank_op d = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, id, 0, 500, "app-key-2");
    CHECK_STATUS(&d, PGBANK_INSUFFICIENT_FUNDS);
    CHECK(strstr(d.result.message, "may not read the balance") != NULL);
    pgbank_op e = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, id, 0, 500, "app-key-2");
    CHECK_STATUS(&e, PGBANK_INSUFFICIENT_FUNDS); /* remembered */
    CHECK_I64(e.result.replayed, 1);
    int64_t to = open_account(0);
    pgbank_op t = test_run(eng, PGBANK_OP_TRANSFER, PGBANK_BATCH, id, to, 20, "app-key-3");
    CHECK_STATUS(&t, PGBANK_OK);
    CHECK_I64(t.result.balance, 50);
    CHECK_I64(t.result.to_balance, 20);
    pgbank_engine_free(eng);
    CHECK(audit_holds());
}

static void test_an_idle_application_transaction_cannot_hold_row_locks(void)
{
    int64_t id = open_account(100);
    PGconn *app = PQconnectdb(app_ci);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT * FROM " SCHEMA ".pgbank_batch('{0}', '{%lld}', '{NULL}', '{1}')",
             (long long)id);
    PQclear(PQexec(app, "BEGIN"));
    PGresult *r = PQexec(app, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    /* The row is locked by the open transaction; the server ends it. */
    sleep(7);
    snprintf(sql, sizeof sql,
             "SET lock_timeout = '2s'; UPDATE " SCHEMA ".accounts SET balance = balance"
             " WHERE id = %lld",
             (long long)id);
    CHECK_STR(try_sql(owner_ci, sql, NULL, 0), PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    r = PQexec(app, "SELECT 1");
    CHECK(PQresultStatus(r) != PGRES_TUPLES_OK); /* its session was terminated */
    PQclear(r);
    PQfinish(app);
    char v[32];
    snprintf(sql, sizeof sql, "SELECT balance FROM " SCHEMA ".accounts WHERE id = %lld",
             (long long)id);
    try_sql(owner_ci, sql, v, sizeof v);
    CHECK_STR(v, "100"); /* rolled back */
}

/* --- item 11: the audit's arithmetic never overflows ------------------- */

static void test_the_audit_adds_beyond_int64_exactly(void)
{
    pgbank_engine *eng = test_engine(owner_ci, 1);
    int64_t id = test_open(eng, 0);
    int64_t big = INT64_C(9000000000000000000);
    pgbank_op op = test_run(eng, PGBANK_OP_DEPOSIT, PGBANK_ATOMIC, id, 0, big, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    op = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_ATOMIC, id, 0, big, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    op = test_run(eng, PGBANK_OP_DEPOSIT, PGBANK_ATOMIC, id, 0, big, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    pgbank_engine_free(eng);
    pgbank_audit_report rep;
    char err[256];
    CHECK_I64(pgbank_audit(owner_ci, &rep, NULL, NULL, err, sizeof err), 1);
    CHECK_I64(rep.mismatched, 0);
    CHECK_I64(rep.clamped, 1); /* money in: 1.8e19, shown clamped, checked exactly */
    /* Leave the schema's totals small for the scenarios after this one. */
    char sql[200];
    snprintf(sql, sizeof sql, "DELETE FROM " SCHEMA ".accounts WHERE id = %lld", (long long)id);
    owner_exec(sql);
    snprintf(sql, sizeof sql, "DELETE FROM " SCHEMA ".pgbank_journal WHERE account = %lld",
             (long long)id);
    owner_exec(sql);
    CHECK(audit_holds());
}

/* --- item 13: changes made outside pgbank are journaled ---------------- */

typedef struct mismatch_list {
    int64_t id[8];
    int n;
} mismatch_list;

static void note_mismatch(void *arg, int64_t account, int64_t balance, int64_t expected)
{
    (void)balance;
    (void)expected;
    mismatch_list *m = arg;
    if (m->n < 8)
        m->id[m->n] = account;
    m->n++;
}

static int listed(const mismatch_list *m, int64_t id)
{
    for (int i = 0; i < m->n && i < 8; i++)
        if (m->id[i] == id)
            return 1;
    return 0;
}

static void test_changes_made_outside_pgbank_are_journaled_as_external(void)
{
    int64_t a = open_account(100), b = open_account(100);
    char sql[400];
    /* psql, the seed's ORM (an absolute value), an INSERT and a DELETE by
     * someone else. */
    snprintf(sql, sizeof sql,
             "SET application_name = 'seed-app'; UPDATE " SCHEMA ".accounts"
             " SET balance = balance - 3 WHERE id = %lld",
             (long long)a);
    owner_exec(sql);
    snprintf(sql, sizeof sql, "UPDATE " SCHEMA ".accounts SET balance = 20 WHERE id = %lld",
             (long long)b);
    owner_exec(sql);
    owner_exec("INSERT INTO " SCHEMA ".accounts (balance) VALUES (7)");
    snprintf(sql, sizeof sql, "DELETE FROM " SCHEMA ".accounts WHERE id = %lld", (long long)b);
    owner_exec(sql);
    if (citus) {
        /* No trigger journals them on Citus: the audit reports the three
         * accounts psql changed (the deleted one too), and none is
         * journaled. */
        CHECK_I64(owner_int("SELECT count(*) FROM " SCHEMA ".pgbank_journal WHERE op = 'external'"),
                  0);
        int64_t added = owner_int("SELECT id FROM " SCHEMA ".accounts WHERE balance = 7"
                                  " AND NOT EXISTS (SELECT 1 FROM " SCHEMA ".pgbank_journal j"
                                  " WHERE j.account = accounts.id)");
        mismatch_list m = {{0}, 0};
        pgbank_audit_report rep;
        char err[256];
        CHECK_I64(pgbank_audit(owner_ci, &rep, note_mismatch, &m, err, sizeof err), 0);
        CHECK_I64(rep.mismatched, 3);
        CHECK_I64(rep.external, 0);
        CHECK_I64(m.n, 3);
        CHECK(listed(&m, a) && listed(&m, b) && listed(&m, added));
        /* Put them right (as pgbank's own journal would have), so the
         * scenarios after this one start from an audit that holds. */
        snprintf(sql, sizeof sql,
                 "UPDATE " SCHEMA ".accounts SET balance = balance + 3 WHERE id = %lld;"
                 " DELETE FROM " SCHEMA ".accounts WHERE id = %lld",
                 (long long)a, (long long)added);
        owner_exec(sql);
        snprintf(sql, sizeof sql, "DELETE FROM " SCHEMA ".pgbank_journal WHERE account = %lld",
                 (long long)b);
        owner_exec(sql);
        CHECK(audit_holds());
        printf("  on Citus: not journaled (no triggers there); the audit named all three accounts\n");
        return;
    }
    snprintf(sql, sizeof sql,
             "SELECT string_agg(amount || '@' || balance_after || '@' || db_role || '@'"
             " || application, ',' ORDER BY seq) FROM " SCHEMA ".pgbank_journal"
             " WHERE op = 'external' AND account IN (%lld, %lld)",
             (long long)a, (long long)b);
    char v[300];
    try_sql(owner_ci, sql, v, sizeof v);
    char want[300];
    snprintf(want, sizeof want, "-3@97@%1$s@seed-app,-80@20@%1$s@,-20@0@%1$s@", owner_role);
    CHECK_STR(v, want);
    CHECK_I64(owner_int("SELECT count(*) FROM " SCHEMA ".pgbank_journal WHERE op = 'external'"
                        " AND amount = 7"),
              1);
    /* pgbank's own operations are never external. */
    pgbank_engine *eng = test_engine(owner_ci, 1);
    pgbank_op op = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_EXPLICIT, a, 0, 7, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    op = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, a, 0, 7, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    op = test_run(eng, PGBANK_OP_DEPOSIT, PGBANK_FOR_UPDATE, a, 0, 7, "own-key");
    CHECK_STATUS(&op, PGBANK_OK);
    pgbank_engine_free(eng);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM " SCHEMA ".pgbank_journal WHERE op = 'external'"
             " AND account = %lld",
             (long long)a);
    CHECK_I64(owner_int(sql), 1);
    pgbank_audit_report rep;
    char err[256];
    CHECK_I64(pgbank_audit(owner_ci, &rep, NULL, NULL, err, sizeof err), 1);
    CHECK(rep.external >= 4);
    snprintf(want, sizeof want, "%s (seed-app) x 1", owner_role);
    CHECK(strstr(rep.external_by, want) != NULL);
}

static void test_an_adopted_seed_table_gets_balance_at_least_zero(void)
{
    char ci[1500], err[512];
    snprintf(ci, sizeof ci, "%s options='-csearch_path=bnd_seed'", base);
    owner_exec("DROP SCHEMA IF EXISTS bnd_seed CASCADE");
    owner_exec("CREATE SCHEMA bnd_seed");
    owner_exec("CREATE TABLE bnd_seed.accounts (id integer PRIMARY KEY, balance integer NOT NULL)");
    owner_exec("INSERT INTO bnd_seed.accounts VALUES (1, 100), (2, -400)");
    CHECK_I64(pgbank_schema_init(ci, err, sizeof err), PGBANK_ESCHEMA);
    CHECK(strstr(err, "account 2, balance -400") != NULL);
    CHECK_I64(owner_int("SELECT count(*) FROM pg_class WHERE relname = 'pgbank_journal'"
                        " AND relnamespace = 'bnd_seed'::regnamespace"),
              0); /* refused: nothing made */
    owner_exec("UPDATE bnd_seed.accounts SET balance = 0 WHERE id = 2");
    CHECK_I64(pgbank_schema_init(ci, err, sizeof err), 0);
    /* The database now refuses a negative balance, whoever writes. */
    CHECK_STR(try_sql(ci, "UPDATE bnd_seed.accounts SET balance = -400 WHERE id = 2", NULL, 0),
              PGBANK_SQLSTATE_CHECK_VIOLATION);
    pgbank_engine *eng = test_engine(ci, 1);
    pgbank_op op = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, 1, 0, 500, NULL);
    CHECK_STATUS(&op, PGBANK_INSUFFICIENT_FUNDS);
    pgbank_engine_free(eng);
    owner_exec("DROP SCHEMA bnd_seed CASCADE");
}

/* Keys recorded by schema 3 stored their outcome as its wording ("insufficient
 * funds") and it was parsed back: rewording a status broke every replay.
 * Init upgrades them to stable codes, and they replay the same. */
static void test_keys_stored_by_schema_3_replay_after_the_upgrade(void)
{
    char ci[1500], err[512];
    snprintf(ci, sizeof ci, "%s options='-csearch_path=bnd_v3'", base);
    owner_exec("DROP SCHEMA IF EXISTS bnd_v3 CASCADE");
    owner_exec("CREATE SCHEMA bnd_v3");
    owner_exec("CREATE TABLE bnd_v3.pgbank_meta (key text PRIMARY KEY, value text NOT NULL)");
    owner_exec("INSERT INTO bnd_v3.pgbank_meta VALUES ('schema_version', '3'),"
               " ('accounts', 'created')");
    owner_exec("CREATE TABLE bnd_v3.accounts (id bigint GENERATED BY DEFAULT AS IDENTITY"
               " PRIMARY KEY, balance bigint NOT NULL CONSTRAINT accounts_balance_nonnegative"
               " CHECK (balance >= 0))");
    owner_exec("CREATE TABLE bnd_v3.pgbank_journal (seq bigint GENERATED ALWAYS AS IDENTITY"
               " PRIMARY KEY, account bigint NOT NULL, op text NOT NULL, amount bigint NOT NULL,"
               " balance_after bigint NOT NULL, strategy text, key text,"
               " at timestamptz NOT NULL DEFAULT now())");
    owner_exec("CREATE TABLE bnd_v3.pgbank_keys (key text PRIMARY KEY, op text NOT NULL,"
               " account bigint NOT NULL, to_account bigint, amount bigint NOT NULL,"
               " status text NOT NULL, balance bigint, to_balance bigint, message text,"
               " at timestamptz NOT NULL DEFAULT clock_timestamp())");
    owner_exec("INSERT INTO bnd_v3.accounts (id, balance) VALUES (1, 20)");
    owner_exec("INSERT INTO bnd_v3.pgbank_journal (account, op, amount, balance_after, key)"
               " VALUES (1, 'open', 100, 100, NULL), (1, 'withdraw', -80, 20, 'v3-ok')");
    owner_exec("INSERT INTO bnd_v3.pgbank_keys (key, op, account, amount, status, balance,"
               " message) VALUES ('v3-ok', 'withdraw', 1, 80, 'ok', 20, ''),"
               " ('v3-refused', 'withdraw', 1, 80, 'insufficient funds', 20,"
               " 'balance 20, requested 80')");
    CHECK_I64(pgbank_schema_init(ci, err, sizeof err), 0);
    char v[64];
    try_sql(ci, "SELECT string_agg(key || '=' || outcome, ',' ORDER BY key) FROM pgbank_keys",
            v, sizeof v);
    CHECK_STR(v, "v3-ok=0,v3-refused=1");
    pgbank_engine *eng = test_engine(ci, 1);
    pgbank_op a = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_ATOMIC, 1, 0, 80, "v3-ok");
    CHECK_STATUS(&a, PGBANK_OK);
    CHECK_I64(a.result.replayed, 1);
    CHECK_I64(a.result.balance, 20);
    pgbank_op b = test_run(eng, PGBANK_OP_WITHDRAW, PGBANK_BATCH, 1, 0, 80, "v3-refused");
    CHECK_STATUS(&b, PGBANK_INSUFFICIENT_FUNDS);
    CHECK_I64(b.result.replayed, 1);
    CHECK_STR(b.result.message, "balance 20, requested 80");
    CHECK_I64(test_balance(eng, 1), 20);
    pgbank_engine_free(eng);
    try_sql(ci, "SELECT value FROM pgbank_meta WHERE key = 'schema_version'", v, sizeof v);
    CHECK_I64(strtoll(v, NULL, 10), PGBANK_SCHEMA_VERSION);
    owner_exec("DROP SCHEMA bnd_v3 CASCADE");
}

int main(void)
{
    base = test_conninfo();
    citus = test_is_citus(base);
    snprintf(owner_ci, sizeof owner_ci, "%s options='-csearch_path=" SCHEMA "'", base);
    snprintf(app_ci, sizeof app_ci, "%s options='-csearch_path=" SCHEMA "' user=bnd_app", base);
    snprintf(mallory_ci, sizeof mallory_ci,
             "%s options='-csearch_path=" SCHEMA ",public' user=bnd_mallory", base);
    PGconn *pg = PQconnectdb(base);
    if (strcmp(try_sql(base, "SELECT current_user", owner_role, sizeof owner_role), "00000") != 0 ||
        !owner_role[0]) {
        fprintf(stderr, "cannot connect to the tests' database\n");
        return 1;
    }
    PQclear(PQexec(pg, "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE"));
    PQclear(PQexec(pg, "DROP OWNED BY bnd_app"));
    PQclear(PQexec(pg, "DROP OWNED BY bnd_mallory"));
    PQclear(PQexec(pg, "DROP ROLE IF EXISTS bnd_app"));
    PQclear(PQexec(pg, "DROP ROLE IF EXISTS bnd_mallory"));
    PQclear(PQexec(pg, "CREATE SCHEMA " SCHEMA));
    char err[512];
    if (pgbank_schema_init_app_role(owner_ci, "bnd_app", err, sizeof err) != 0) {
        fprintf(stderr, "init --app-role: %s\n", err);
        return 1;
    }
    PQclear(PQexec(pg, "CREATE ROLE bnd_mallory LOGIN IN ROLE bnd_app"));
    PQclear(PQexec(pg, "GRANT CREATE ON SCHEMA " SCHEMA " TO bnd_mallory"));
    RUN(test_bad_arguments_to_pgbank_batch_are_refused_and_change_nothing);
    RUN(test_bad_arguments_to_the_single_and_keyed_functions_are_refused);
    RUN(test_look_alike_builtins_planted_in_the_schema_never_run);
    RUN(test_init_refuses_an_application_role_that_could_do_more);
    RUN(test_the_application_role_has_timeouts_and_keys_but_no_tables);
    RUN(test_an_idle_application_transaction_cannot_hold_row_locks);
    RUN(test_the_audit_adds_beyond_int64_exactly);
    RUN(test_changes_made_outside_pgbank_are_journaled_as_external);
    RUN(test_an_adopted_seed_table_gets_balance_at_least_zero);
    RUN(test_keys_stored_by_schema_3_replay_after_the_upgrade);
    PQclear(PQexec(pg, "DROP SCHEMA " SCHEMA " CASCADE"));
    PQclear(PQexec(pg, "DROP OWNED BY bnd_app"));
    PQclear(PQexec(pg, "DROP OWNED BY bnd_mallory"));
    PQclear(PQexec(pg, "DROP ROLE bnd_mallory"));
    PQclear(PQexec(pg, "DROP ROLE bnd_app"));
    PQfinish(pg);
    TEST_EXIT();
}
