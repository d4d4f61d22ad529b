/*
 * schema.c - `pgbank init`: creates pgbank's schema idempotently, in one
 * transaction, serialised against concurrent inits.
 *
 * Column types: pgbank's own accounts table uses bigint minor units
 * (cents): integer would cap a balance at 21,474,836.47 and the sum of many
 * balances overflows it sooner; bigint holds 92 quadrillion and stays exact
 * (never floating point for money).  A table the seed's SQLAlchemy model
 * created (id integer primary key, balance integer not null) is adopted as
 * it is: the engine reads the column types and rejects amounts that do not
 * fit before sending anything.
 */
#include "internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PGconn *pg;
    const char *conninfo;
    char *err;
    size_t errlen;
} init_ctx;

/* Runs one statement; on error fills err (password-free) and returns -1. */
static int run(init_ctx *x, const char *sql, int nparams, const char *const *params,
               PGresult **out)
{
    PGresult *r = PQexecParams(x->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        pgbank__fail(PGBANK_EDB, x->err, x->errlen, "%s%s%s%s", PQresultErrorMessage(r),
                     ss ? "(SQLSTATE " : "", ss ? ss : "", ss ? ")" : "");
        PQclear(r);
        return -1;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static int is_int_type(const char *t)
{
    return strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0;
}

/* An existing accounts table: check its shape, give id a default if it has
 * none (so `account open` can number new accounts), record the adoption. */
static int adopt_accounts(init_ctx *x)
{
    PGresult *r;
    if (run(x,
            "SELECT (SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'id' AND NOT attisdropped),"
            "       (SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'balance' AND NOT attisdropped),"
            "       (SELECT atthasdef OR attidentity <> '' FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'id' AND NOT attisdropped),"
            "       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            "          AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisunique"
            "          AND i.indnatts = 1 AND a.attname = 'id')"
            "  FROM pg_class c WHERE c.oid = to_regclass('accounts')",
            0, NULL, &r) < 0)
        return -1;
    const char *idt = PQgetvalue(r, 0, 0), *balt = PQgetvalue(r, 0, 1);
    if (!is_int_type(idt) || !is_int_type(balt) || PQgetvalue(r, 0, 3)[0] != 't') {
        pgbank__fail(PGBANK_ESCHEMA, x->err, x->errlen,
                     "table \"accounts\" exists but has the wrong shape (id %s, balance %s%s): "
                     "pgbank needs id integer or bigint as its primary key and balance integer "
                     "or bigint",
                     *idt ? idt : "missing", *balt ? balt : "missing",
                     PQgetvalue(r, 0, 3)[0] == 't' ? "" : ", id not unique");
        PQclear(r);
        return -2;
    }
    int has_default = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    if (!has_default &&
        (run(x, "CREATE SEQUENCE IF NOT EXISTS accounts_id_seq OWNED BY accounts.id", 0, NULL,
             NULL) < 0 ||
         run(x, "SELECT setval('accounts_id_seq', GREATEST(COALESCE(max(id), 0), 1),"
                " max(id) IS NOT NULL) FROM accounts",
             0, NULL, NULL) < 0 ||
         run(x, "ALTER TABLE accounts ALTER COLUMN id SET DEFAULT nextval('accounts_id_seq')", 0,
             NULL, NULL) < 0))
        return -1;
    return run(x,
               "INSERT INTO pgbank_meta (key, value) VALUES ('accounts', 'adopted')"
               " ON CONFLICT (key) DO NOTHING",
               0, NULL, NULL);
}

/* Schema 2: the journal and the idempotency keys.  When the journal is new,
 * every account already there gets an "open" row with its balance, so the
 * audit starts from what exists. */
static int init_journal(init_ctx *x)
{
    PGresult *r;
    if (run(x, "SELECT to_regclass('pgbank_journal') IS NULL", 0, NULL, &r) < 0)
        return -1;
    int fresh = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (fresh &&
        (run(x,
             "CREATE TABLE pgbank_journal ("
             " seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
             " account bigint NOT NULL,"
             " op text NOT NULL,"
             " amount bigint NOT NULL,"
             " balance_after bigint NOT NULL,"
             " strategy text,"
             " key text,"
             " at timestamptz NOT NULL DEFAULT clock_timestamp())",
             0, NULL, NULL) < 0 ||
         run(x, "CREATE INDEX pgbank_journal_account ON pgbank_journal (account, seq)", 0, NULL,
             NULL) < 0 ||
         run(x,
             "INSERT INTO pgbank_journal (account, op, amount, balance_after)"
             " SELECT id, 'open', balance, balance FROM accounts ORDER BY id",
             0, NULL, NULL) < 0))
        return -1;
    return run(x,
               "CREATE TABLE IF NOT EXISTS pgbank_keys ("
               " key text PRIMARY KEY,"
               " op text NOT NULL,"
               " account bigint NOT NULL,"
               " to_account bigint,"
               " amount bigint NOT NULL,"
               " status text NOT NULL,"
               " balance bigint,"
               " to_balance bigint,"
               " at timestamptz NOT NULL DEFAULT clock_timestamp())",
               0, NULL, NULL);
}

static int init_tx(init_ctx *x)
{
    PGresult *r;
    /* Two inits at once: the second waits, then finds everything there. */
    if (run(x, "SELECT pg_advisory_xact_lock(7405162)", 0, NULL, NULL) < 0 ||
        run(x,
            "CREATE TABLE IF NOT EXISTS pgbank_meta ("
            " key text PRIMARY KEY,"
            " value text NOT NULL)",
            0, NULL, NULL) < 0 ||
        run(x, "SELECT to_regclass('accounts') IS NULL", 0, NULL, &r) < 0)
        return -1;
    int missing = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (missing) {
        if (run(x,
                "CREATE TABLE accounts ("
                " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                " balance bigint NOT NULL"
                "  CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0))",
                0, NULL, NULL) < 0 ||
            run(x,
                "INSERT INTO pgbank_meta (key, value) VALUES ('accounts', 'created')"
                " ON CONFLICT (key) DO NOTHING",
                0, NULL, NULL) < 0)
            return -1;
    } else {
        int rc = adopt_accounts(x);
        if (rc < 0)
            return rc;
    }
    if (init_journal(x) < 0)
        return -1;
    char version[16];
    snprintf(version, sizeof version, "%d", PGBANK_SCHEMA_VERSION);
    const char *p[1] = {version};
    return run(x,
               "INSERT INTO pgbank_meta (key, value) VALUES ('schema_version', $1)"
               " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
               1, p, NULL);
}

PGBANK__API int pgbank_schema_init(const char *conninfo, char *err, size_t errlen)
{
    char *ci = pgbank_conninfo_normalize(conninfo ? conninfo : "", err, errlen);
    if (!ci)
        return PGBANK_ECONNINFO;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {ci, "pgbank", NULL};
    init_ctx x = {PQconnectdbParams(keys, vals, 1), ci, err, errlen};
    int rc = 0;
    if (!x.pg || PQstatus(x.pg) != CONNECTION_OK) {
        rc = pgbank__fail(PGBANK_ECONNECT, err, errlen, "%s",
                          x.pg ? PQerrorMessage(x.pg) : "out of memory");
    } else if (run(&x, "SET client_min_messages = warning", 0, NULL, NULL) < 0 ||
               run(&x, "BEGIN", 0, NULL, NULL) < 0) {
        rc = PGBANK_EDB;
    } else {
        int r = init_tx(&x);
        if (r < 0) {
            PQclear(PQexec(x.pg, "ROLLBACK"));
            rc = r == -2 ? PGBANK_ESCHEMA : PGBANK_EDB;
        } else if (run(&x, "COMMIT", 0, NULL, NULL) < 0) {
            rc = PGBANK_EDB;
        }
    }
    if (rc && err && errlen) {
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        pgbank_conninfo_scrub(ci, err, errlen);
    }
    PQfinish(x.pg);
    free(ci);
    return rc;
}
