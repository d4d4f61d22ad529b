/*
 * schema.h - what the parts of `pgbank init` share (schema.c creates and
 * upgrades the tables and the application role, schema_sql.c the server
 * functions and triggers).  Not installed.
 */
#ifndef PGBANK_SCHEMA_H
#define PGBANK_SCHEMA_H

#include "internal.h"

#include <libpq-fe.h>

/* One `pgbank init` at work, in one transaction on its own connection. */
typedef struct pgbank__init {
    PGconn *pg;
    const char *conninfo; /* normalised; scrubs messages */
    char *err;
    size_t errlen;
    const pgbank_schema_options *opt;
    char schema[140];       /* current_schema(), as an identifier ("x" quoted when needed) */
    char accounts_lit[300]; /* '<schema>.accounts' as a string literal, for regclass text */
    int64_t balance_max;    /* the balance column's largest value */
    int journal;            /* the journal and the keys exist (or are being made) */
} pgbank__init;

/* Runs one statement; on error fills err (password-free) and returns -1. */
int pgbank__init_run(pgbank__init *x, const char *sql, int nparams, const char *const *params,
                     PGresult **out);

/* A statement from a template: "@S" becomes the schema's identifier, "@ACC"
 * the accounts table's qualified name as a string literal, "@MAX"
 * the balance column's maximum, "@CAP" the batch cap, "@O_<NAME>" an outcome
 * code (sql.h), and "@J{ ... @J}" is kept only where the journal exists.
 * Runs it like pgbank__init_run(); the second form takes no parameters and
 * returns nothing. */
int pgbank__init_exec(pgbank__init *x, const char *tmpl, int nparams, const char *const *params,
                      PGresult **out);
int pgbank__init_run_template(pgbank__init *x, const char *tmpl);

/* schema_sql.c: the server functions (batch, batch of one, keyed) and the
 * triggers that journal changes made outside pgbank, created or replaced;
 * EXECUTE revoked from PUBLIC. */
int pgbank__init_functions(pgbank__init *x);

/* The functions an application role is granted (NULL-terminated
 * signatures, for GRANT EXECUTE ON FUNCTION @S.<signature>). */
extern const char *const pgbank__app_functions[];

#endif
