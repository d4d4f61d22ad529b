/*
 * sql.h - every statement the library sends, in one place.  Values always
 * travel as parameters ($1, $2); no value is ever formatted into SQL text.
 */
#ifndef PGBANK_SQL_H
#define PGBANK_SQL_H

/* The outcome codes pgbank's server functions return and pgbank_keys
 * stores (schema 4): stable numbers, part of the schema.  A stored outcome
 * never depends on how a status is worded; new codes go at the end. */
#define PGBANK__OUTCOME_MAP(X)                                                                     \
    X(OK, 0)                  /* applied */                                                       \
    X(INSUFFICIENT_FUNDS, 1)  /* the (source) balance is below the amount */                      \
    X(NO_SUCH_ACCOUNT, 2)     /* the (source) account does not exist */                           \
    X(OVERFLOW, 3)            /* the new balance would not fit the balance column */              \
    X(NO_SUCH_DESTINATION, 4) /* a transfer's destination does not exist */                       \
    X(CONFLICT, 5)            /* the key was used before with other parameters (never stored) */

typedef enum pgbank__outcome {
#define PGBANK__OUTCOME_ENUM(name, code) OUTCOME_##name = (code),
    PGBANK__OUTCOME_MAP(PGBANK__OUTCOME_ENUM)
#undef PGBANK__OUTCOME_ENUM
} pgbank__outcome;

/* The operation kinds of the server functions (pgbank_batch, pgbank_keyed). */
enum { SQL_KIND_WITHDRAW = 0, SQL_KIND_DEPOSIT = 1, SQL_KIND_TRANSFER = 2 };

/* The most operations one pgbank_batch() call takes (the server refuses
 * more with program_limit_exceeded); the engine's batch_max is capped to it. */
#define PGBANK__BATCH_CAP 100000

typedef enum pgbank__sql_id {
    SQL_BEGIN,
    SQL_BEGIN_SERIALIZABLE,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_SAVEPOINT,
    SQL_ROLLBACK_TO_SAVEPOINT,
    SQL_PROBE,                 /* the schema's shape, asked once per connection */
    SQL_SELECT_BALANCE,        /* the seed's session.get() */
    SQL_SELECT_FOR_UPDATE,     /* the seed's with_for_update() */
    SQL_SELECT_PAIR,           /* a transfer's two accounts, in id order */
    SQL_SELECT_ROW_FOR_UPDATE, /* one of a for-update transfer's rows, locked */
    SQL_SELECT_ROW,            /* one of a transfer's rows, read (on Citus) */
    SQL_SET_BALANCE,           /* the absolute value computed in C */
    SQL_DEBIT,                 /* atomic: the seed's guarded UPDATE ... RETURNING */
    SQL_CREDIT,
    SQL_OPEN,                  /* a new account, id from the column default */
    SQL_OPEN_NO_DEFAULT,       /* a seed table with no id default: next id by max+1 */
    /* With the journal (schema 2): the same changes, journaled in the same
     * statement or transaction. */
    SQL_DEBIT_J,
    SQL_CREDIT_J,
    SQL_OPEN_J,
    SQL_SET_BALANCE_J, /* the read-modify-write's write, journaled */
    SQL_KEY_CLAIM, /* idempotency: claim a key, or find it taken */
    SQL_KEY_READ,
    SQL_KEY_SET,
    SQL_BATCH,     /* many operations, one round trip, one commit (schema 3) */
    SQL_BATCH_ONE, /* a batch of one withdrawal or deposit, without the arrays */
    SQL_KEYED,     /* one keyed operation through pgbank_keyed() (schema 4) */
    SQL_SHARDS,       /* Citus: where the accounts' shards start (never prepared) */
    SQL_BATCH_ROUTE,  /* Citus: a batch of one shard, run on its worker */
    SQL_ATOMIC_ONE,   /* Citus: an atomic withdrawal or deposit, run on its worker */
    SQL__COUNT
} pgbank__sql_id;

enum {
    SQL_NEEDS_JOURNAL = 1,
    SQL_NEEDS_BATCH = 2,
    SQL_NEEDS_KEYED = 4,
    SQL_NEEDS_ROUTE = 8,
    SQL_NEEDS_ATOMIC_ONE = 16
};

typedef struct pgbank__sql {
    const char *name; /* prepared statement name */
    const char *text;
    int nparams;
    int needs; /* SQL_NEEDS_*: what must exist before it can be prepared */
} pgbank__sql;

extern const pgbank__sql pgbank__sql_table[SQL__COUNT];

#endif
