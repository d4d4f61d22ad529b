/*
 * sqlstate.h - every SQLSTATE pgbank names, in one table, and the one
 * classification of them (retryable, connection lost, schema missing).
 * A five-character code appears nowhere else in the source: code compares
 * against these names.  Server-side SQL raises its errors by condition
 * name (RAISE ... USING ERRCODE = 'invalid_parameter_value'), which maps to
 * the same codes.  Internal to pgbank (library and command line).
 */
#ifndef PGBANK_SQLSTATE_H
#define PGBANK_SQLSTATE_H

#include <string.h>

#define PGBANK__SQLSTATE_MAP(X)                                                                    \
    X(SUCCESSFUL_COMPLETION, "00000")        /* no error (tests compare against it) */            \
    X(CONNECTION_FAILURE, "08006")           /* the connection broke */                           \
    X(CONNECTION_UNABLE, "08001")            /* could not connect */                              \
    X(FEATURE_NOT_SUPPORTED, "0A000")        /* e.g. a distributed query the cluster refuses */   \
    X(NUMERIC_OUT_OF_RANGE, "22003")         /* a balance would not fit its column */             \
    X(INVALID_PARAMETER_VALUE, "22023")      /* a server function refused an argument */          \
    X(CHECK_VIOLATION, "23514")              /* balance >= 0 refused a change */                  \
    X(INVALID_SQL_STATEMENT_NAME, "26000")   /* a prepared statement unknown to the server */     \
    X(SERIALIZATION_FAILURE, "40001")        /* retryable */                                      \
    X(DEADLOCK_DETECTED, "40P01")            /* retryable */                                      \
    X(INSUFFICIENT_PRIVILEGE, "42501")       /* e.g. the application role on a table */           \
    X(DATATYPE_MISMATCH, "42804")            /* the accounts table has unusable column types */   \
    X(UNDEFINED_FUNCTION, "42883")           /* a server function is missing */                   \
    X(UNDEFINED_TABLE, "42P01")              /* a table is missing */                             \
    X(DUPLICATE_DATABASE, "42P04")           /* CREATE DATABASE raced another */                  \
    X(DUPLICATE_PREPARED_STATEMENT, "42P05") /* a prepared statement already there */             \
    X(PROGRAM_LIMIT_EXCEEDED, "54000")       /* a batch above the server's cap */                 \
    X(QUERY_CANCELED, "57014")               /* statement_timeout */                              \
    X(INTERNAL_ERROR, "XX000")               /* no SQLSTATE came with the error */

#define PGBANK__SQLSTATE_DEFINE(name, code) static const char PGBANK_SQLSTATE_##name[] = code;
PGBANK__SQLSTATE_MAP(PGBANK__SQLSTATE_DEFINE)
#undef PGBANK__SQLSTATE_DEFINE

/* state equals the named code (NULL and "" never do). */
static inline int pgbank__sqlstate_is(const char *state, const char *code)
{
    return state && strcmp(state, code) == 0;
}

/* A transaction that may succeed when run again: serialization failure or
 * deadlock (pgbench and every SERIALIZABLE client retry exactly these). */
static inline int pgbank__sqlstate_retryable(const char *state)
{
    return pgbank__sqlstate_is(state, PGBANK_SQLSTATE_SERIALIZATION_FAILURE) ||
           pgbank__sqlstate_is(state, PGBANK_SQLSTATE_DEADLOCK_DETECTED);
}

/* Class 08, connection exception: the outcome may be unknown. */
static inline int pgbank__sqlstate_connection(const char *state)
{
    return state && strncmp(state, PGBANK_SQLSTATE_CONNECTION_FAILURE, 2) == 0;
}

/* A table or function pgbank needs does not exist. */
static inline int pgbank__sqlstate_missing_object(const char *state)
{
    return pgbank__sqlstate_is(state, PGBANK_SQLSTATE_UNDEFINED_TABLE) ||
           pgbank__sqlstate_is(state, PGBANK_SQLSTATE_UNDEFINED_FUNCTION);
}

#endif
