/*
 * test_security.c - least privilege: `init --app-role` gives a role that can
 * move money only through pgbank's SECURITY DEFINER functions and cannot
 * read or write the tables; and no statement carries a value in its text.
 */
#include "sqlstate.h"
#include "testlib.h"

#include <libpq-fe.h>

static const char *base;
static char owner_ci[1400], app_ci[1500];

static const char *sqlstate_of(const char *ci, const char *sql)
{
    static char state[6];
    PGconn *pg = PQconnectdb(ci);
    PGresult *r = PQexec(pg, sql);
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s", ss ? ss : PGBANK_SQLSTATE_SUCCESSFUL_COMPLETION);
    PQclear(r);
    PQfinish(pg);
    return state;
}

static void test_the_app_role_moves_money_only_through_the_functions(void)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = owner_ci;
    o.connections = 1;
    pgbank_engine *owner = NULL;
    CHECK(pgbank_engine_new(&owner, &o, NULL, 0) == 0);
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_OPEN);
    op.amount = 100;
    CHECK(pgbank_execute(owner, &op) == 0);
    int64_t id = op.result.account;

    o.conninfo = app_ci;
    pgbank_engine *app = NULL;
    CHECK(pgbank_engine_new(&app, &o, NULL, 0) == 0);
    pgbank_op_init(&op, PGBANK_OP_WITHDRAW);
    op.strategy = PGBANK_BATCH;
    op.account = id;
    op.amount = 30;
    CHECK(pgbank_execute(app, &op) == 0);
    CHECK_STATUS(&op, PGBANK_OK);
    CHECK_I64(op.result.balance, 70);
    /* Direct statements on the tables are refused. */
    op.strategy = PGBANK_ATOMIC;
    CHECK(pgbank_execute(app, &op) == 0);
    CHECK_STATUS(&op, PGBANK_DB_ERROR);
    CHECK_STR(op.result.sqlstate, PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(sqlstate_of(app_ci, "SELECT * FROM accounts"), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(sqlstate_of(app_ci, "UPDATE accounts SET balance = 1000000"), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(sqlstate_of(app_ci, "INSERT INTO pgbank_journal (account, op, amount, balance_after)"
                                  " VALUES (1, 'forged', 5, 5)"),
              PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    CHECK_STR(sqlstate_of(app_ci, "DELETE FROM pgbank_keys"), PGBANK_SQLSTATE_INSUFFICIENT_PRIVILEGE);
    pgbank_op_init(&op, PGBANK_OP_BALANCE);
    op.account = id;
    CHECK(pgbank_execute(owner, &op) == 0);
    CHECK_I64(op.result.balance, 70);
    pgbank_engine_free(app);
    pgbank_engine_free(owner);
}

static void test_init_with_the_same_app_role_twice_is_harmless(void)
{
    char err[512];
    CHECK_I64(pgbank_schema_init_app_role(owner_ci, "pgbank_app_test", err, sizeof err), 0);
    CHECK_I64(pgbank_schema_init_app_role(owner_ci, "", err, sizeof err), PGBANK_EINVAL);
}

int main(void)
{
    base = test_conninfo();
    PGconn *pg = PQconnectdb(base);
    PQclear(PQexec(pg, "DROP SCHEMA IF EXISTS approle CASCADE"));
    PQclear(PQexec(pg, "DROP OWNED BY pgbank_app_test"));
    PQclear(PQexec(pg, "DROP ROLE IF EXISTS pgbank_app_test"));
    PQclear(PQexec(pg, "CREATE SCHEMA approle"));
    snprintf(owner_ci, sizeof owner_ci, "%s options='-csearch_path=approle'", base);
    snprintf(app_ci, sizeof app_ci, "%s user=pgbank_app_test", owner_ci);
    char err[512];
    if (pgbank_schema_init_app_role(owner_ci, "pgbank_app_test", err, sizeof err) != 0) {
        fprintf(stderr, "init --app-role: %s\n", err);
        return 1;
    }
    RUN(test_the_app_role_moves_money_only_through_the_functions);
    RUN(test_init_with_the_same_app_role_twice_is_harmless);
    PQclear(PQexec(pg, "DROP SCHEMA approle CASCADE"));
    PQclear(PQexec(pg, "DROP OWNED BY pgbank_app_test"));
    PQclear(PQexec(pg, "DROP ROLE pgbank_app_test"));
    PQfinish(pg);
    TEST_EXIT();
}
