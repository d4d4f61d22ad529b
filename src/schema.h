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
    char seq_lit[320];      /* '<schema>.pgbank_journal_seq', the same */
    char batch_lit[400];    /* the batch function's signature, the same */
    char journal_lit[320];  /* '<schema>.pgbank_journal', the same */
    char keys_lit[320];     /* '<schema>.pgbank_keys', the same */
    int64_t balance_max;    /* the balance column's largest value */
    int journal;            /* the journal and the keys exist (or are being made) */
    int distributed;        /* a Citus coordinator: the tables are (to be) distributed */
} pgbank__init;

/* Runs one statement; on error fills err (password-free) and returns -1. */
int pgbank__init_run(pgbank__init *x, const char *sql, int nparams, const char *const *params,
                     PGresult **out);

/* A statement from a template (schema_sql.c says what its placeholders
 * become).  Runs it like pgbank__init_run(); the second form takes no parameters and
 * returns nothing. */
int pgbank__init_exec(pgbank__init *x, const char *tmpl, int nparams, const char *const *params,
                      PGresult **out);
int pgbank__init_run_template(pgbank__init *x, const char *tmpl);

/* schema_sql.c: the server functions (batch, batch of one, keyed) and the
 * triggers that journal changes made outside pgbank, created or replaced;
 * EXECUTE revoked from PUBLIC. */
int pgbank__init_functions(pgbank__init *x);

/* schema.c: on Citus, the names of pgbank's triggers on accounts, which a
 * distributed table cannot have (NULL-terminated). */
extern const char *const pgbank__trigger_names[];

/* schema_fn.c: the server-side code's templates. */
extern const char pgbank__fn_batch[];
extern const char pgbank__fn_batch_one[];
extern const char pgbank__fn_batch_route[]; /* Citus only */
#define PGBANK__BATCH_ROUTE_SIGNATURE                                                              \
    "pgbank_batch_route(bigint, smallint[], bigint[], bigint[], bigint[])"
extern const char pgbank__fn_atomic_one[]; /* Citus only; the owner's alone */
#define PGBANK__ATOMIC_ONE_SIGNATURE "pgbank_atomic_one(smallint, bigint, bigint)"
extern const char pgbank__fn_keyed[];
extern const char pgbank__fn_external[];
extern const char *const pgbank__external_triggers[]; /* NULL-terminated */
extern const char pgbank__journal_view[];
extern const char *const pgbank__obsolete_functions[]; /* NULL-terminated */
/* The functions an application role is granted (NULL-terminated
 * signatures, for GRANT EXECUTE ON FUNCTION @S.<signature>). */
extern const char *const pgbank__app_functions[];
/* On Citus, the functions distributed with the accounts: a signature and
 * the argument that routes a call (ended by a NULL signature). */
typedef struct pgbank__routed_function {
    const char *signature, *route;
} pgbank__routed_function;
extern const pgbank__routed_function pgbank__routed_functions[];

#endif
