/*
 * schema_sql.c - installs pgbank's server-side code (the texts are in
 * schema_fn.c): renders a template for the schema at hand and runs it.
 * Placeholders: @S the schema, @ACC, @JOURNAL, @KEYS and @SEQ the accounts
 * table, the journal, the keys and the journal's sequence as string
 * literals (for regclass arguments), @MAX the
 * balance column's maximum, @CAP the batch cap, @O_<NAME> an outcome code
 * (sql.h); "@J{ ... @J}" is kept only where the journal exists, "@N{ ...
 * @N}" only where it does not, "@D{ ... @D}" only on Citus (distributed),
 * "@L{ ... @L}" only elsewhere (these sections do not nest).
 */
#include "schema.h"
#include "sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- templates ------------------------------------------------------------ */

static const struct {
    const char *name;
    int code;
} outcomes[] = {
#define PGBANK__OUTCOME_NAME(name, code) {#name, code},
    PGBANK__OUTCOME_MAP(PGBANK__OUTCOME_NAME)
#undef PGBANK__OUTCOME_NAME
};

/* The value of placeholder `name` (len bytes), into out; 0 when unknown. */
static int placeholder(const pgbank__init *x, const char *name, size_t len, char *out,
                       size_t outlen)
{
    if (len == 1 && name[0] == 'S') {
        snprintf(out, outlen, "%s", x->schema);
        return 1;
    }
    if (len == 3 && memcmp(name, "ACC", 3) == 0) {
        snprintf(out, outlen, "%s", x->accounts_lit);
        return 1;
    }
    if (len == 11 && memcmp(name, "S_LIT_BATCH", 11) == 0) {
        snprintf(out, outlen, "%s", x->batch_lit);
        return 1;
    }
    if (len == 7 && memcmp(name, "JOURNAL", 7) == 0) {
        snprintf(out, outlen, "%s", x->journal_lit);
        return 1;
    }
    if (len == 4 && memcmp(name, "KEYS", 4) == 0) {
        snprintf(out, outlen, "%s", x->keys_lit);
        return 1;
    }
    if (len == 3 && memcmp(name, "SEQ", 3) == 0) {
        snprintf(out, outlen, "%s", x->seq_lit);
        return 1;
    }
    if (len == 3 && memcmp(name, "MAX", 3) == 0) {
        snprintf(out, outlen, "%lld", (long long)x->balance_max);
        return 1;
    }
    if (len == 3 && memcmp(name, "CAP", 3) == 0) {
        snprintf(out, outlen, "%d", PGBANK__BATCH_CAP);
        return 1;
    }
    if (len > 2 && memcmp(name, "O_", 2) == 0) {
        for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
            if (strlen(outcomes[i].name) == len - 2 && memcmp(outcomes[i].name, name + 2, len - 2) == 0) {
                snprintf(out, outlen, "%d", outcomes[i].code);
                return 1;
            }
        }
    }
    return 0;
}

static char *render(const pgbank__init *x, const char *t)
{
    pgbank__buf b = {0};
    int skip = 0; /* inside a section that is left out */
    while (*t) {
        const char *at = strchr(t, '@');
        if (!at) {
            if (!skip)
                pgbank__buf_put(&b, t, strlen(t));
            break;
        }
        if (!skip)
            pgbank__buf_put(&b, t, (size_t)(at - t));
        const char *name = at + 1;
        size_t len = 0;
        while ((name[len] >= 'A' && name[len] <= 'Z') || name[len] == '_')
            len++;
        if (len == 1 && strchr("JNDL", name[0]) && (name[1] == '{' || name[1] == '}')) {
            int keep = name[0] == 'J'   ? x->journal
                       : name[0] == 'N' ? !x->journal
                       : name[0] == 'D' ? x->distributed
                                        : !x->distributed;
            skip = name[1] == '{' && !keep;
            t = name + 2;
            continue;
        }
        char val[400];
        if (!placeholder(x, name, len, val, sizeof val)) {
            free(b.s);
            return NULL; /* a template error, caught by the tests */
        }
        if (!skip)
            pgbank__buf_put(&b, val, strlen(val));
        t = name + len;
    }
    if (b.nomem) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

int pgbank__init_exec(pgbank__init *x, const char *tmpl, int nparams, const char *const *params,
                      PGresult **out)
{
    char *sql = render(x, tmpl);
    if (!sql)
        return pgbank__fail(-1, x->err, x->errlen, "internal error: a statement template");
    int rc = pgbank__init_run(x, sql, nparams, params, out);
    free(sql);
    return rc;
}

int pgbank__init_run_template(pgbank__init *x, const char *tmpl)
{
    return pgbank__init_exec(x, tmpl, 0, NULL, NULL);
}

/* pgbank_batch() of schema 4 returned fewer columns: a function's result
 * cannot change in place, so it is dropped and made again, and EXECUTE
 * given back to the roles that had it (the application role). */
static int replace_old_batch(pgbank__init *x, char *grantees, size_t len)
{
    PGresult *r;
    grantees[0] = '\0';
    if (pgbank__init_exec(x,
                          "SELECT coalesce(string_agg(quote_ident(g.rolname), ', '), ''),"
                          " count(*) OVER () FROM pg_proc p"
                          " LEFT JOIN LATERAL (SELECT r.rolname FROM aclexplode(p.proacl) a"
                          "  JOIN pg_roles r ON r.oid = a.grantee"
                          "  WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) g"
                          " ON true"
                          " WHERE p.oid = to_regprocedure(@S_LIT_BATCH)"
                          " AND pg_get_function_result(p.oid) NOT LIKE '%starts%' GROUP BY p.oid",
                          0, NULL, &r) < 0)
        return -1;
    int old = PQntuples(r) > 0;
    if (old)
        pgbank__strlcpy(grantees, PQgetvalue(r, 0, 0), len);
    PQclear(r);
    if (old && pgbank__init_run_template(
                   x, "DROP FUNCTION @S.pgbank_batch(smallint[], bigint[], bigint[], bigint[])") < 0)
        return -1;
    return 0;
}

int pgbank__init_functions(pgbank__init *x)
{
    char grantees[1024];
    for (int i = 0; pgbank__obsolete_functions[i]; i++)
        if (pgbank__init_run_template(x, pgbank__obsolete_functions[i]) < 0)
            return -1;
    if (replace_old_batch(x, grantees, sizeof grantees) < 0)
        return -1;
    if (pgbank__init_run_template(x, pgbank__fn_batch) < 0 ||
        pgbank__init_run_template(x, pgbank__fn_batch_one) < 0 ||
        (x->distributed && (pgbank__init_run_template(x, pgbank__fn_batch_route) < 0 ||
                            pgbank__init_run_template(x, pgbank__fn_atomic_one) < 0)))
        return -1;
    if (x->journal) {
        if (pgbank__init_run_template(x, pgbank__fn_keyed) < 0 ||
            pgbank__init_run_template(x, pgbank__fn_external) < 0 ||
            pgbank__init_run_template(x, pgbank__journal_view) < 0 ||
            pgbank__init_run_template(x, "REVOKE ALL ON @S.pgbank_entries FROM PUBLIC") < 0)
            return -1;
        /* A distributed table has no triggers (schema.c). */
        for (int i = 0; !x->distributed && pgbank__external_triggers[i]; i++)
            if (pgbank__init_run_template(x, pgbank__external_triggers[i]) < 0)
                return -1;
        if (pgbank__init_run_template(
                x, "REVOKE ALL ON FUNCTION @S.pgbank_external() FROM PUBLIC") < 0)
            return -1;
    }
    char sql[1400];
    if (grantees[0]) {
        snprintf(sql, sizeof sql,
                 "GRANT EXECUTE ON FUNCTION @S.pgbank_batch(smallint[], bigint[], bigint[],"
                 " bigint[]) TO %s",
                 grantees);
        if (pgbank__init_run_template(x, sql) < 0)
            return -1;
    }
    for (int i = 0; pgbank__app_functions[i]; i++) {
        if (!x->journal && strncmp(pgbank__app_functions[i], "pgbank_keyed", 12) == 0)
            continue;
        snprintf(sql, sizeof sql, "REVOKE ALL ON FUNCTION @S.%s FROM PUBLIC",
                 pgbank__app_functions[i]);
        if (pgbank__init_run_template(x, sql) < 0)
            return -1;
    }
    /* On Citus, a function that works on the accounts of one shard group
     * runs on the worker that holds them: a call is sent there whole, by
     * its routing argument, and commits there without two-phase commit.
     * Nobody may call one without a grant (the Citus-only ones are not
     * among the application's functions above). */
    for (int i = 0; x->distributed && pgbank__routed_functions[i].signature; i++) {
        snprintf(sql, sizeof sql, "REVOKE ALL ON FUNCTION @S.%s FROM PUBLIC",
                 pgbank__routed_functions[i].signature);
        if (pgbank__init_run_template(x, sql) < 0)
            return -1;
        snprintf(sql, sizeof sql,
                 "SELECT create_distributed_function('@S.%s', '%s', colocate_with := @ACC)",
                 pgbank__routed_functions[i].signature, pgbank__routed_functions[i].route);
        if (pgbank__init_run_template(x, sql) < 0)
            return -1;
    }
    return 0;
}
