/*
 * schema.c - `pgbank init`: creates pgbank's schema, or upgrades an older
 * one in place, idempotently, in one transaction serialised against
 * concurrent inits; and the application role.  The server functions and
 * triggers are in schema_sql.c.
 *
 * Versions: 1 accounts and pgbank_meta; 2 the journal and idempotency keys;
 * 3 the batch function; 4 the database as the boundary: functions written
 * for a hostile caller, keyed operations through pgbank_keyed(), outcomes
 * stored as stable codes (pgbank_keys.outcome replaces the worded status),
 * changes made outside pgbank journaled as 'external', balance >= 0 on an
 * adopted table too.
 *
 * Column types: pgbank's own accounts table uses bigint minor units
 * (cents): integer would cap a balance at 21,474,836.47 and the sum of many
 * balances overflows it sooner; bigint holds 92 quadrillion and stays exact
 * (never floating point for money).  A table the seed's SQLAlchemy model
 * created (id integer primary key, balance integer not null) is adopted as
 * it is: the engine reads the column types and rejects amounts that do not
 * fit before sending anything.
 */
#include "schema.h"
#include "sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Concurrent inits: the second waits, then finds everything there. */
#define INIT_LOCK_KEY "7405162"

/* The application role's session limits (docs/SECURITY.md): a statement
 * (a batch of up to PGBANK__BATCH_CAP operations takes well under a
 * second) and a transaction left open cannot hold row locks for long. */
#define APP_STATEMENT_TIMEOUT "5s"
#define APP_IDLE_TIMEOUT "5s"

PGBANK__API void pgbank_schema_options_init(pgbank_schema_options *o)
{
    memset(o, 0, sizeof *o);
    o->journal = 1;
}

int pgbank__init_run(pgbank__init *x, const char *sql, int nparams, const char *const *params,
                     PGresult **out)
{
    PGresult *r = PQexecParams(x->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
        pgbank__fail(PGBANK_EDB, x->err, x->errlen, "%s%s%s (SQLSTATE %s)",
                     m ? m : PQerrorMessage(x->pg), hint ? "; " : "", hint ? hint : "",
                     ss ? ss : "?");
        PQclear(r);
        return -1;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static void warn(pgbank__init *x, const char *fmt, ...) PGBANK__PRINTF(2, 3);
static void warn(pgbank__init *x, const char *fmt, ...)
{
    if (!x->opt->warn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->opt->warn(x->opt->warn_arg, msg);
}

/* One boolean (or text) answer. */
static int ask(pgbank__init *x, const char *sql, int nparams, const char *const *params,
               char *out, size_t outlen)
{
    PGresult *r;
    if (pgbank__init_run(x, sql, nparams, params, &r) < 0)
        return -1;
    pgbank__strlcpy(out, PQntuples(r) ? PQgetvalue(r, 0, 0) : "", outlen);
    PQclear(r);
    return 0;
}

/* Where init works: the first existing schema of the search path.  From
 * then on the session's search_path is pg_catalog, pg_temp, and every name
 * is qualified: init may run as a superuser, and a look-alike function
 * planted in a schema of the user's search path must never run as it. */
static int find_schema(pgbank__init *x)
{
    char name[128];
    PGresult *r;
    if (ask(x, "SELECT pg_catalog.current_schema()", 0, NULL, name, sizeof name) < 0 ||
        pgbank__init_run(x, "SET LOCAL search_path = pg_catalog, pg_temp", 0, NULL, NULL) < 0)
        return -1;
    if (!name[0])
        return pgbank__fail(-2, x->err, x->errlen,
                            "no schema to create pgbank's tables in: none of the search_path's "
                            "schemas exists");
    const char *p[1] = {name};
    if (pgbank__init_run(x,
                         "SELECT quote_ident($1), has_schema_privilege($1, 'CREATE'),"
                         " has_schema_privilege('public', $1, 'CREATE'),"
                         " quote_literal(quote_ident($1) || '.accounts'),"
                         " quote_literal(quote_ident($1) || '.pgbank_journal_seq'),"
                         " quote_literal(quote_ident($1) || '.pgbank_batch(smallint[], bigint[],"
                         " bigint[], bigint[])'),"
                         " quote_literal(quote_ident($1) || '.pgbank_journal'),"
                         " quote_literal(quote_ident($1) || '.pgbank_keys')",
                         1, p, &r) < 0)
        return -1;
    pgbank__strlcpy(x->schema, PQgetvalue(r, 0, 0), sizeof x->schema);
    int may_create = PQgetvalue(r, 0, 1)[0] == 't';
    int public_creates = PQgetvalue(r, 0, 2)[0] == 't';
    pgbank__strlcpy(x->accounts_lit, PQgetvalue(r, 0, 3), sizeof x->accounts_lit);
    pgbank__strlcpy(x->seq_lit, PQgetvalue(r, 0, 4), sizeof x->seq_lit);
    pgbank__strlcpy(x->batch_lit, PQgetvalue(r, 0, 5), sizeof x->batch_lit);
    pgbank__strlcpy(x->journal_lit, PQgetvalue(r, 0, 6), sizeof x->journal_lit);
    pgbank__strlcpy(x->keys_lit, PQgetvalue(r, 0, 7), sizeof x->keys_lit);
    PQclear(r);
    if (!may_create)
        return pgbank__fail(-2, x->err, x->errlen,
                            "the current user may not CREATE in schema %s: run pgbank init as "
                            "its owner",
                            x->schema);
    if (public_creates)
        warn(x,
             "every role may CREATE in schema %s; pgbank's functions are safe from objects "
             "planted there, but other code may not be: REVOKE CREATE ON SCHEMA %s FROM PUBLIC",
             x->schema, x->schema);
    return 0;
}

/* The same for a statement template (schema.h). */
static int ask_template(pgbank__init *x, const char *tmpl, char *out, size_t outlen)
{
    PGresult *r;
    if (pgbank__init_exec(x, tmpl, 0, NULL, &r) < 0)
        return -1;
    pgbank__strlcpy(out, PQntuples(r) ? PQgetvalue(r, 0, 0) : "", outlen);
    PQclear(r);
    return 0;
}

/* One answer about pgbank's relation `rel` (its qualified name is $1). */
static int ask_rel(pgbank__init *x, const char *sql, const char *rel, char *out, size_t outlen)
{
    char q[200];
    snprintf(q, sizeof q, "%s.%s", x->schema, rel);
    const char *p[1] = {q};
    return ask(x, sql, 1, p, out, outlen);
}

/* Whether the schema's relation rel has all n columns of cols (a list of
 * SQL literals, pgbank's own): 1, 0, or -1. */
static int has_columns(pgbank__init *x, const char *rel, const char *cols, int n)
{
    char sql[256], v[16];
    snprintf(sql, sizeof sql,
             "SELECT count(*) = %d FROM pg_attribute WHERE attname IN (%s)"
             " AND NOT attisdropped AND attrelid = to_regclass($1)",
             n, cols);
    return ask_rel(x, sql, rel, v, sizeof v) < 0 ? -1 : v[0] == 't';
}

static int is_int_type(const char *t)
{
    return strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0;
}

/* Whether Citus distributes the schema's accounts table already: 1, 0, or
 * -1 (the error is in x). */
static int accounts_distributed(pgbank__init *x)
{
    char v[8];
    if (ask_template(x,
                     "SELECT EXISTS (SELECT 1 FROM pg_dist_partition"
                     " WHERE logicalrelid = to_regclass(@ACC))",
                     v, sizeof v) < 0)
        return -1;
    return v[0] == 't';
}

/* An existing accounts table: check its shape, give id a default if it has
 * none (so `account open` can number new accounts), add balance >= 0, and
 * record the adoption. */
static int adopt_accounts(pgbank__init *x)
{
    PGresult *r;
    char q[200];
    snprintf(q, sizeof q, "%s.accounts", x->schema);
    const char *p[1] = {q};
    if (pgbank__init_run(
            x,
            "SELECT (SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'id' AND NOT attisdropped) AS idt,"
            "       (SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'balance' AND NOT attisdropped) AS balt,"
            "       (SELECT atthasdef OR attidentity <> '' FROM pg_attribute WHERE attrelid = c.oid"
            "          AND attname = 'id' AND NOT attisdropped) AS has_default,"
            "       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            "          AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisunique"
            "          AND i.indnatts = 1 AND a.attname = 'id') AS unique_id,"
            "       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid"
            "          AND k.conname = 'accounts_balance_nonnegative') AS checked"
            "  FROM pg_class c WHERE c.oid = to_regclass($1)",
            1, p, &r) < 0)
        return -1;
    const char *idt = PQgetvalue(r, 0, 0), *balt = PQgetvalue(r, 0, 1);
    if (!is_int_type(idt) || !is_int_type(balt) || PQgetvalue(r, 0, 3)[0] != 't') {
        pgbank__fail(-2, x->err, x->errlen,
                     "table \"accounts\" exists but has the wrong shape (id %s, balance %s%s): "
                     "pgbank needs id integer or bigint as its primary key and balance integer "
                     "or bigint",
                     *idt ? idt : "missing", *balt ? balt : "missing",
                     PQgetvalue(r, 0, 3)[0] == 't' ? "" : ", id not unique");
        PQclear(r);
        return -2;
    }
    int has_default = PQgetvalue(r, 0, 2)[0] == 't';
    int checked = PQgetvalue(r, 0, 4)[0] == 't';
    int narrow_id = strcmp(idt, "integer") == 0;
    PQclear(r);
    /* On Citus the journal, the keys and the functions are co-located with
     * accounts by a bigint account: an integer id is widened while the
     * table is still local (the seed's code reads a bigint id the same);
     * Citus changes neither the type nor the default of a distributed
     * table's column, so one distributed already must have them. */
    if (x->distributed && (narrow_id || !has_default)) {
        int already = accounts_distributed(x);
        if (already < 0)
            return -1;
        if (already)
            return pgbank__fail(-2, x->err, x->errlen,
                                "table \"accounts\" is distributed already with id %s%s, which "
                                "Citus cannot change: pgbank needs id bigint with a default; "
                                "undistribute it (SELECT undistribute_table('%s.accounts')) and "
                                "run pgbank init, which widens id and distributes the table itself",
                                idt, has_default ? "" : " without a default", x->schema);
        if (narrow_id &&
            pgbank__init_run_template(x, "ALTER TABLE @S.accounts ALTER COLUMN id TYPE bigint") < 0)
            return -1;
    }
    if (!has_default &&
        (pgbank__init_run_template(
             x, "ALTER TABLE @S.accounts ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY") <
             0 ||
         pgbank__init_exec(x,
                           "SELECT setval(pg_get_serial_sequence($1, 'id'),"
                           " GREATEST(COALESCE(max(id), 0), 1), max(id) IS NOT NULL)"
                           " FROM @S.accounts",
                           1, p, NULL) < 0))
        return -1;
    if (!checked) {
        char bad[128];
        if (ask_template(x,
                         "SELECT count(*) || ' account(s) hold a negative balance (the lowest: "
                         "account ' || (array_agg(id ORDER BY balance))[1] || ', balance '"
                         " || min(balance) || ')' FROM @S.accounts WHERE balance < 0"
                         " HAVING count(*) > 0",
                         bad, sizeof bad) < 0)
            return -1;
        if (bad[0])
            return pgbank__fail(-2, x->err, x->errlen,
                                "table \"accounts\" is adopted, and pgbank adds CHECK (balance >= "
                                "0) to it, but %s: correct them, then run pgbank init again",
                                bad);
        if (pgbank__init_run_template(x, "ALTER TABLE @S.accounts ADD CONSTRAINT"
                                         " accounts_balance_nonnegative CHECK (balance >= 0)") < 0)
            return -1;
    }
    return pgbank__init_run_template(x, "INSERT INTO @S.pgbank_meta (key, value)"
                                        " VALUES ('accounts', 'adopted')"
                                        " ON CONFLICT (key) DO NOTHING");
}

static int init_accounts(pgbank__init *x)
{
    char v[16];
    if (ask_rel(x, "SELECT to_regclass($1) IS NULL", "accounts", v, sizeof v) < 0)
        return -1;
    if (v[0] == 't') {
        if (pgbank__init_run_template(
                x, "CREATE TABLE @S.accounts ("
                   " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                   " balance bigint NOT NULL"
                   "  CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0))"
                   /* room on each page, so a balance update stays a HOT update
                    * (no index entry to write) */
                   " WITH (fillfactor = 80)") < 0 ||
            pgbank__init_run_template(x, "INSERT INTO @S.pgbank_meta (key, value)"
                                         " VALUES ('accounts', 'created')"
                                         " ON CONFLICT (key) DO NOTHING") < 0)
            return -1;
    } else {
        int rc = adopt_accounts(x);
        if (rc < 0)
            return rc;
    }
    char type[32];
    if (ask_rel(x,
                "SELECT format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = to_regclass($1) AND attname = 'balance' AND NOT attisdropped",
                "accounts", type, sizeof type) < 0)
        return -1;
    x->balance_max = strcmp(type, "integer") == 0 ? INT32_MAX : INT64_MAX;
    return 0;
}

/* Every account already there gets an "open" row with its balance (the
 * head of its chain), so the audit starts from what exists. */
static int open_journal(pgbank__init *x)
{
    return pgbank__init_run_template(
        x, "WITH s AS MATERIALIZED (SELECT x.id, x.balance, nextval(@SEQ) AS seq"
           "   FROM @S.accounts x ORDER BY x.id),"
           " w AS (INSERT INTO @S.pgbank_journal (seq, account, op, amount, balance_after)"
           "   SELECT s.seq, s.id, 'open', s.balance, s.balance FROM s)"
           " UPDATE @S.accounts x SET jseq = s.seq FROM s WHERE x.id = s.id");
}

/* A journal of schema 2 to 4 becomes a chain (schema 5): who made an
 * external change (4), each row's predecessor and each account's newest
 * row, a batch's row, and no per-account index. */
static int upgrade_journal(pgbank__init *x)
{
    /* Already schema 5's shape: nothing to alter (and Citus refuses some
     * of the ALTERs below on a distributed table, even as no-ops). */
    int done = has_columns(x, "pgbank_journal", "'prev', 'afters'", 2);
    if (done != 0)
        return done < 0 ? -1 : 0;
    if (pgbank__init_run_template(x, "ALTER TABLE @S.pgbank_journal"
                                     " ADD COLUMN IF NOT EXISTS db_role text,"
                                     " ADD COLUMN IF NOT EXISTS application text,"
                                     " ADD COLUMN IF NOT EXISTS kinds smallint[],"
                                     " ADD COLUMN IF NOT EXISTS ids bigint[], ADD COLUMN"
                                     " IF NOT EXISTS to_ids bigint[], ADD COLUMN IF NOT EXISTS"
                                     " amounts bigint[], ADD COLUMN IF NOT EXISTS accounts"
                                     " bigint[], ADD COLUMN IF NOT EXISTS prevs bigint[],"
                                     " ADD COLUMN IF NOT EXISTS afters bigint[], ALTER COLUMN"
                                     " amount DROP NOT NULL, ALTER COLUMN balance_after"
                                     " DROP NOT NULL") < 0)
        return -1;
    int chained = has_columns(x, "pgbank_journal", "'prev'", 1);
    if (chained != 0)
        return chained < 0 ? -1 : 0;
    return pgbank__init_run_template(
               x, "ALTER TABLE @S.pgbank_journal ADD COLUMN prev bigint,"
                  " ALTER COLUMN seq SET GENERATED BY DEFAULT,"
                  " ADD CONSTRAINT pgbank_journal_shape CHECK ((op = 'batch') = (ids IS NOT NULL)"
                  "  AND (op = 'batch' OR (amount IS NOT NULL AND balance_after IS NOT NULL)))") <
                   0 ||
                   pgbank__init_exec(x,
                                     "ALTER SEQUENCE " /* the identity's, whatever its name */
                                     " @S.pgbank_journal_seq_seq RENAME TO pgbank_journal_seq",
                                     0, NULL, NULL) < 0 ||
                   pgbank__init_run_template(
                       x, "ALTER TABLE @S.accounts ADD COLUMN IF NOT EXISTS jseq bigint,"
                          " ADD COLUMN IF NOT EXISTS jprev bigint") < 0 ||
                   pgbank__init_run_template(
                       x, "UPDATE @S.pgbank_journal j SET prev = c.prev FROM ("
                          " SELECT seq, lag(seq) OVER (PARTITION BY account ORDER BY seq) AS prev"
                          " FROM @S.pgbank_journal) c WHERE c.seq = j.seq AND c.prev IS NOT NULL") <
                       0 ||
                   pgbank__init_run_template(
                       x, "UPDATE @S.accounts x SET jseq = m.seq FROM ("
                          " SELECT account, max(seq) AS seq FROM @S.pgbank_journal GROUP BY account)"
                          " m WHERE m.account = x.id") < 0 ||
                   pgbank__init_run_template(x, "DROP INDEX IF EXISTS @S.pgbank_journal_account") < 0
               ? -1
               : 0;
}

/* The journal and the idempotency keys (schema 2), in the shape of
 * schema 5.  A new journal starts with every account's opening. */
static int init_journal(pgbank__init *x)
{
    char v[16];
    if (ask_rel(x, "SELECT to_regclass($1) IS NULL", "pgbank_journal", v, sizeof v) < 0)
        return -1;
    int fresh = v[0] == 't';
    x->journal = x->opt->journal || !fresh;
    if (!x->journal)
        return 0;
    if (fresh &&
        (pgbank__init_run_template(
             x, "CREATE TABLE @S.pgbank_journal ("
                " seq bigint GENERATED BY DEFAULT AS IDENTITY"
                "  (SEQUENCE NAME @S.pgbank_journal_seq) PRIMARY KEY,"
                /* One change of one account ... */
                " account bigint NOT NULL," /* a batch's row: its first account */
                " prev bigint,"    /* the account's previous row: the chain */
                " op text NOT NULL,"
                " amount bigint,"
                " balance_after bigint,"
                " strategy text,"
                " key text,"
                " at timestamptz NOT NULL DEFAULT now()," /* the transaction's time */
                " db_role text,"
                " application text,"
                /* ... or a batch: its applied operations, as they came, and
                 * each account it changed (by id), the account's previous row
                 * and its balance after the batch. */
                " kinds smallint[], ids bigint[], to_ids bigint[], amounts bigint[],"
                " accounts bigint[], prevs bigint[], afters bigint[],"
                " CONSTRAINT pgbank_journal_shape CHECK ((op = 'batch') = (ids IS NOT NULL)"
                "  AND (op = 'batch' OR (amount IS NOT NULL AND balance_after IS NOT NULL))))") < 0 ||
         pgbank__init_run_template(x, "ALTER TABLE @S.accounts ADD COLUMN IF NOT EXISTS jseq bigint,"
                                      " ADD COLUMN IF NOT EXISTS jprev bigint") < 0 ||
         open_journal(x) < 0))
        return -1;
    if (!fresh && upgrade_journal(x) < 0)
        return -1;
    /* A batch's arrays are stored as they are, out of line: compressing
     * them costs the batch more time than the disk it saves. */
    if (ask_rel(x,
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attname = 'afters'"
                " AND attstorage <> 'e' AND attrelid = to_regclass($1))",
                "pgbank_journal", v, sizeof v) < 0)
        return -1;
    if (v[0] == 't' && pgbank__init_run_template(
            x, "ALTER TABLE @S.pgbank_journal ALTER COLUMN kinds SET STORAGE EXTERNAL,"
               " ALTER COLUMN ids SET STORAGE EXTERNAL, ALTER COLUMN to_ids SET STORAGE EXTERNAL,"
               " ALTER COLUMN amounts SET STORAGE EXTERNAL,"
               " ALTER COLUMN accounts SET STORAGE EXTERNAL,"
               " ALTER COLUMN prevs SET STORAGE EXTERNAL, ALTER COLUMN afters SET STORAGE EXTERNAL") <
        0)
        return -1;
    if (pgbank__init_run_template(x, "CREATE TABLE IF NOT EXISTS @S.pgbank_keys ("
                                     " key text PRIMARY KEY, op text NOT NULL,"
                                     " account bigint NOT NULL, to_account bigint,"
                                     " amount bigint NOT NULL,"
                                     " outcome smallint," /* NULL while being decided */
                                     " balance bigint, to_balance bigint, message text,"
                                     " at timestamptz NOT NULL DEFAULT clock_timestamp())") < 0)
        return -1;
    /* Schema 2 and 3 stored the outcome as its wording ("insufficient
     * funds") and parsed it back: now a stable code. */
    int worded = has_columns(x, "pgbank_keys", "'status'", 1);
    if (worded < 0)
        return -1;
    if (worded &&
        (pgbank__init_run_template(
             x, "ALTER TABLE @S.pgbank_keys ADD COLUMN IF NOT EXISTS outcome smallint,"
                " ADD COLUMN IF NOT EXISTS message text") < 0 ||
         pgbank__init_run_template(
             x, "UPDATE @S.pgbank_keys SET outcome = CASE status"
                " WHEN 'ok' THEN @O_OK WHEN 'insufficient funds' THEN @O_INSUFFICIENT_FUNDS"
                " WHEN 'no such account' THEN @O_NO_SUCH_ACCOUNT"
                " WHEN 'invalid amount' THEN @O_OVERFLOW END") < 0 ||
         pgbank__init_run_template(x, "DELETE FROM @S.pgbank_keys WHERE outcome IS NULL") < 0 ||
         pgbank__init_run_template(x, "ALTER TABLE @S.pgbank_keys DROP COLUMN status") < 0))
        return -1;
    /* Nobody but pgbank's functions and the schema's owner touches them. */
    return pgbank__init_run_template(
        x, "REVOKE ALL ON @S.pgbank_journal, @S.pgbank_keys, @S.pgbank_meta FROM PUBLIC");
}

/* --app-role: a login role that may only call pgbank's functions.  Refused
 * when the role could do more than that anyway (then restricting it would
 * be a pretence) or when restricting it would take rights from the owner. */
static int check_app_role(pgbank__init *x, const char *role)
{
    char q[200];
    snprintf(q, sizeof q, "%s.accounts", x->schema);
    const char *p[2] = {role, q};
    PGresult *r;
    if (pgbank__init_run(
            x,
            "SELECT r.rolname = current_user, r.rolsuper, r.rolcreaterole OR r.rolcreatedb"
            "   OR r.rolbypassrls OR r.rolreplication,"
            " pg_has_role(r.oid, c.relowner, 'MEMBER'),"
            " (SELECT string_agg(p.rolname, ', ') FROM pg_roles p"
            "   WHERE (p.rolname LIKE 'pg\\_%' OR p.rolsuper OR p.rolcreaterole)"
            "     AND p.oid <> r.oid AND pg_has_role(r.oid, p.oid, 'MEMBER')),"
            " has_schema_privilege(r.oid, c.relnamespace, 'CREATE'),"
            " (SELECT d.datdba = r.oid FROM pg_database d WHERE d.datname = current_database())"
            " FROM pg_roles r, pg_class c"
            " WHERE r.rolname = $1 AND c.oid = to_regclass($2)",
            2, p, &r) < 0)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 1; /* no such role yet: it is created below */
    }
    const char *why = NULL;
    char members[300];
    pgbank__strlcpy(members, PQgetvalue(r, 0, 4), sizeof members);
    if (PQgetvalue(r, 0, 0)[0] == 't')
        why = "it is the role running pgbank init";
    else if (PQgetvalue(r, 0, 1)[0] == 't')
        why = "it is a superuser";
    else if (PQgetvalue(r, 0, 2)[0] == 't')
        why = "it may create roles or databases, bypass row security or replicate";
    else if (PQgetvalue(r, 0, 3)[0] == 't')
        why = "it owns table accounts (or is a member of its owner)";
    else if (members[0])
        why = "it is a member of a privileged role";
    else if (PQgetvalue(r, 0, 6)[0] == 't')
        why = "it owns the database";
    else if (PQgetvalue(r, 0, 5)[0] == 't')
        why = "it may CREATE in the schema (REVOKE CREATE ON SCHEMA ... FROM PUBLIC and from it)";
    PQclear(r);
    if (why)
        return pgbank__fail(-2, x->err, x->errlen,
                            "refusing to make role \"%s\" pgbank's application role: %s%s%s%s; "
                            "name a role that exists only to call pgbank's functions",
                            role, why, members[0] ? " (" : "", members,
                            members[0] ? ")" : "");
    return 0;
}

static int grant_app_role(pgbank__init *x, const char *role)
{
    if (!x->journal)
        return pgbank__fail(-2, x->err, x->errlen,
                            "an application role needs the journal and the keys");
    int missing = check_app_role(x, role);
    if (missing < 0)
        return missing;
    char *id = PQescapeIdentifier(x->pg, role, strlen(role));
    if (!id)
        return pgbank__fail(-1, x->err, x->errlen, "invalid role name");
    /* An identifier cannot travel as a parameter: the role name is quoted
     * by libpq's PQescapeIdentifier, the one place a name enters SQL. */
    char sql[700];
    int rc = 0;
    if (missing) {
        snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", id);
        rc = pgbank__init_run(x, sql, 0, NULL, NULL);
    }
    const char *stmts[] = {
        "REVOKE ALL ON @S.accounts, @S.pgbank_journal, @S.pgbank_keys, @S.pgbank_meta FROM %s",
        "GRANT USAGE ON SCHEMA @S TO %s",
        "ALTER ROLE %s SET statement_timeout = '" APP_STATEMENT_TIMEOUT "'",
        "ALTER ROLE %s SET idle_in_transaction_session_timeout = '" APP_IDLE_TIMEOUT "'",
    };
    for (size_t i = 0; rc == 0 && i < sizeof stmts / sizeof stmts[0]; i++) {
        snprintf(sql, sizeof sql, stmts[i], id);
        rc = pgbank__init_run_template(x, sql);
    }
    for (int i = 0; rc == 0 && pgbank__app_functions[i]; i++) {
        snprintf(sql, sizeof sql, "GRANT EXECUTE ON FUNCTION @S.%s TO %s",
                 pgbank__app_functions[i], id);
        rc = pgbank__init_run_template(x, sql);
    }
    if (rc == 0 && x->distributed) {
        snprintf(sql, sizeof sql, "GRANT EXECUTE ON FUNCTION @S." PGBANK__BATCH_ROUTE_SIGNATURE
                                  " TO %s", id);
        rc = pgbank__init_run_template(x, sql);
    }
    PQfreemem(id);
    return rc;
}

/* --- Citus ------------------------------------------------------------------ */

const char *const pgbank__trigger_names[] = {"pgbank_external_update", "pgbank_external_insert",
                                             "pgbank_external_delete",
                                             "pgbank_external_truncate", NULL};

/* Is this a Citus coordinator, and should the schema be distributed?  Its
 * DDL then runs in sequential mode: a transaction that has already used
 * parallel connections to the workers cannot create or alter a
 * distributed function or table (which is what a second init does). */
static int detect_citus(pgbank__init *x)
{
    char v[8];
    if (ask(x, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')", 0, NULL, v,
            sizeof v) < 0)
        return -1;
    x->distributed = v[0] == 't';
    if (!x->distributed && x->opt->distributed == 1)
        return pgbank__fail(-2, x->err, x->errlen,
                            "--distributed needs Citus: the extension citus is not installed in "
                            "this database (CREATE EXTENSION citus, and add the workers)");
    if (x->distributed &&
        pgbank__init_run(x, "SET LOCAL citus.multi_shard_modify_mode = sequential", 0, NULL,
                         NULL) < 0)
        return -1;
    return 0;
}

/* Distributes pgbank's tables the first time init meets them on Citus:
 * accounts by id; the journal and the keys by account, co-located with
 * the accounts, so that everything one account's operation touches is on
 * one shard.  Citus wants the distribution column in every unique key:
 * the journal's becomes (seq, account) (seq first: a batch's row is found
 * by its number) and the keys' (key, account), so a key is unique per
 * account.  The journal numbers come from a sequence Citus gives each
 * node a range of (a column default, not an identity column), so a number
 * drawn on a worker (a routed function) never meets one drawn elsewhere;
 * numbers are then unique but not in time order across nodes, which the
 * chain does not need.  Triggers are not allowed on distributed tables:
 * changes made outside pgbank are not journaled there (the audit reports
 * them as mismatches).  pgbank_meta stays on the coordinator. */
static int distribute_tables(pgbank__init *x)
{
    int already = accounts_distributed(x);
    if (already != 0)
        return already < 0 ? -1 : 0;
    char sql[300];
    for (int i = 0; pgbank__trigger_names[i]; i++) {
        snprintf(sql, sizeof sql, "DROP TRIGGER IF EXISTS %s ON @S.accounts",
                 pgbank__trigger_names[i]);
        if (pgbank__init_run_template(x, sql) < 0)
            return -1;
    }
    if (pgbank__init_run_template(x, "SELECT create_distributed_table(@ACC, 'id')") < 0 ||
        pgbank__init_run_template(x, "SELECT truncate_local_data_after_distributing_table(@ACC)") <
            0)
        return -1;
    if (!x->journal)
        return 0;
    static const char *const journal[] = {
        "ALTER TABLE @S.pgbank_journal DROP CONSTRAINT pgbank_journal_pkey,"
        " ADD CONSTRAINT pgbank_journal_pkey PRIMARY KEY (seq, account)",
        "ALTER TABLE @S.pgbank_journal ALTER COLUMN seq DROP IDENTITY IF EXISTS",
        "CREATE SEQUENCE IF NOT EXISTS @S.pgbank_journal_seq AS bigint"
        " OWNED BY @S.pgbank_journal.seq",
        "SELECT setval(@SEQ, GREATEST(COALESCE(max(seq), 0), 1), max(seq) IS NOT NULL)"
        " FROM @S.pgbank_journal",
        "ALTER TABLE @S.pgbank_journal ALTER COLUMN seq SET DEFAULT nextval(@SEQ)",
        "ALTER TABLE @S.pgbank_keys DROP CONSTRAINT pgbank_keys_pkey,"
        " ADD CONSTRAINT pgbank_keys_pkey PRIMARY KEY (key, account)",
        "SELECT create_distributed_table(@JOURNAL, 'account', colocate_with := @ACC)",
        "SELECT truncate_local_data_after_distributing_table(@JOURNAL)",
        "SELECT create_distributed_table(@KEYS, 'account', colocate_with := @ACC)",
        "SELECT truncate_local_data_after_distributing_table(@KEYS)",
        "REVOKE ALL ON @S.pgbank_journal, @S.pgbank_keys, @S.pgbank_meta FROM PUBLIC",
        NULL,
    };
    for (int i = 0; journal[i]; i++)
        if (pgbank__init_run_template(x, journal[i]) < 0)
            return -1;
    return 0;
}

static int init_tx(pgbank__init *x)
{
    char version[16];
    int rc = pgbank__init_run(x, "SELECT pg_catalog.pg_advisory_xact_lock(" INIT_LOCK_KEY ")", 0, NULL, NULL);
    if (rc < 0 || (rc = find_schema(x)) < 0)
        return rc;
    /* Init's own writes (openings, the chain of an upgraded journal) are
     * pgbank's, not external changes. */
    if (pgbank__init_run(x, "SELECT set_config('pgbank.own', 'on', true)", 0, NULL, NULL) < 0)
        return -1;
    if (x->opt->distributed >= 0 && (rc = detect_citus(x)) < 0)
        return rc;
    if (pgbank__init_run_template(x, "CREATE TABLE IF NOT EXISTS @S.pgbank_meta ("
                                     " key text PRIMARY KEY,"
                                     " value text NOT NULL)") < 0)
        return -1;
    if ((rc = init_accounts(x)) < 0 || (rc = init_journal(x)) < 0 ||
        (x->distributed && (rc = distribute_tables(x)) < 0) ||
        (rc = pgbank__init_functions(x)) < 0)
        return rc;
    if (x->opt->app_role && (rc = grant_app_role(x, x->opt->app_role)) < 0)
        return rc;
    snprintf(version, sizeof version, "%d", PGBANK_SCHEMA_VERSION);
    const char *p[1] = {version};
    char sql[400];
    snprintf(sql, sizeof sql, "INSERT INTO %s.pgbank_meta (key, value)"
                              " VALUES ('schema_version', $1)"
                              " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
             x->schema);
    return pgbank__init_run(x, sql, 1, p, NULL);
}

/* Runs body in one transaction on a connection of its own: COMMIT when it
 * returns 0, ROLLBACK otherwise (-2: PGBANK_ESCHEMA, else PGBANK_EDB).  The
 * reason, password-free, is in err. */
static int in_init_tx(const char *conninfo, const pgbank_schema_options *opt,
                      int (*body)(pgbank__init *, void *), void *arg, char *err, size_t errlen)
{
    char *ci;
    int rc;
    PGconn *pg = pgbank__connect_blocking(conninfo, &ci, err, errlen, &rc);
    if (!pg) {
        free(ci);
        return rc;
    }
    pgbank__init x;
    memset(&x, 0, sizeof x);
    x.pg = pg;
    x.conninfo = ci;
    x.err = err;
    x.errlen = errlen;
    x.opt = opt;
    if (pgbank__init_run(&x, "START TRANSACTION", 0, NULL, NULL) < 0 ||
        pgbank__init_run(&x, "SET LOCAL client_min_messages = warning", 0, NULL, NULL) < 0) {
        rc = PGBANK_EDB;
    } else {
        int r = body(&x, arg);
        if (r < 0) {
            PQclear(PQexec(pg, "ROLLBACK"));
            rc = r == -2 ? PGBANK_ESCHEMA : PGBANK_EDB;
        } else if (pgbank__init_run(&x, "COMMIT", 0, NULL, NULL) < 0) {
            rc = PGBANK_EDB;
        }
    }
    if (rc && err && errlen) {
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        pgbank_conninfo_scrub(ci, err, errlen);
    }
    PQfinish(pg);
    free(ci);
    return rc;
}

static int create_body(pgbank__init *x, void *unused)
{
    (void)unused;
    return init_tx(x);
}

PGBANK__API int pgbank_schema_create(const char *conninfo, const pgbank_schema_options *opt,
                                     char *err, size_t errlen)
{
    pgbank_schema_options defaults;
    if (!opt) {
        pgbank_schema_options_init(&defaults);
        opt = &defaults;
    }
    if (opt->app_role && (!*opt->app_role || strlen(opt->app_role) > 63))
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "a role name must be 1 to 63 bytes");
    return in_init_tx(conninfo, opt, create_body, NULL, err, errlen);
}

PGBANK__API int pgbank_schema_init(const char *conninfo, char *err, size_t errlen)
{
    return pgbank_schema_create(conninfo, NULL, err, errlen);
}

PGBANK__API int pgbank_schema_init_app_role(const char *conninfo, const char *role, char *err,
                                            size_t errlen)
{
    pgbank_schema_options o;
    pgbank_schema_options_init(&o);
    o.app_role = role ? role : "";
    return pgbank_schema_create(conninfo, &o, err, errlen);
}

/* --- bulk loading ---------------------------------------------------------- */

typedef struct load_args {
    int64_t count, balance;
} load_args;

static int load_body(pgbank__init *x, void *arg)
{
    const load_args *a = arg;
    char v[64], n[24], bal[24];
    int rc = find_schema(x);
    if (rc < 0)
        return rc;
    if (ask_template(x,
                     "SELECT coalesce((SELECT value FROM @S.pgbank_meta WHERE key = 'accounts'),"
                     " '') || '/' || (SELECT count(*) FROM (SELECT 1 FROM @S.accounts LIMIT 1) s)",
                     v, sizeof v) < 0)
        return -1;
    if (strcmp(v, "created/0") != 0)
        return pgbank__fail(-2, x->err, x->errlen,
                            "pgbank_accounts_load fills only an empty accounts table that pgbank "
                            "created (found: %s)",
                            v);
    if (ask_rel(x, "SELECT to_regclass($1) IS NOT NULL", "pgbank_journal", v, sizeof v) < 0)
        return -1;
    x->journal = v[0] == 't';
    snprintf(n, sizeof n, "%lld", (long long)a->count);
    snprintf(bal, sizeof bal, "%lld", (long long)a->balance);
    char q[200];
    snprintf(q, sizeof q, "%s.accounts", x->schema);
    const char *p[3] = {bal, n, q};
    /* The primary key is built once the rows are in (much faster than row
     * by row for millions); the rows are pgbank's own, journaled as
     * openings here, and the triggers that journal external changes are
     * off meanwhile (they would only skip them, after keeping a copy of
     * every row).  (On Citus the table has no triggers, and its primary
     * key stays: Citus loads the shards in parallel anyway.) */
    if (pgbank__init_run(x, "SELECT set_config('pgbank.own', 'on', true)", 0, NULL, NULL) < 0 ||
        (rc = detect_citus(x)) < 0)
        return -1;
    if ((!x->distributed &&
         (pgbank__init_run_template(x, "ALTER TABLE @S.accounts DISABLE TRIGGER USER") < 0 ||
          pgbank__init_run_template(x, "ALTER TABLE @S.accounts DROP CONSTRAINT accounts_pkey") <
              0)) ||
        pgbank__init_exec(x,
                          "INSERT INTO @S.accounts (id, balance)"
                          " SELECT g, $1::bigint FROM generate_series(1, $2::bigint) g",
                          2, p, NULL) < 0 ||
        (!x->distributed &&
         pgbank__init_run_template(x, "ALTER TABLE @S.accounts ADD PRIMARY KEY (id)") < 0) ||
        pgbank__init_run(x, "SELECT setval(pg_get_serial_sequence($2, 'id'), $1::bigint)", 2,
                         p + 1, NULL) < 0 ||
        (x->journal && open_journal(x) < 0) ||
        (!x->distributed &&
         pgbank__init_run_template(x, "ALTER TABLE @S.accounts ENABLE TRIGGER USER") < 0))
        return -1;
    return pgbank__init_run_template(x, "ANALYZE @S.accounts");
}

PGBANK__API int pgbank_accounts_load(const char *conninfo, int64_t count, int64_t balance,
                                     char *err, size_t errlen)
{
    if (count < 1 || balance < 0)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "load at least one account, with a balance of 0 or more");
    pgbank_schema_options o;
    pgbank_schema_options_init(&o);
    load_args a = {count, balance};
    return in_init_tx(conninfo, &o, load_body, &a, err, errlen);
}
