/*
 * sql.h - every statement the library sends, in one place.  Values always
 * travel as parameters ($1, $2); no value is ever formatted into SQL text.
 */
#ifndef PGBANK_SQL_H
#define PGBANK_SQL_H

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
    SQL_SELECT_PAIR_FOR_UPDATE,
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
    SQL_JOURNAL,
    SQL_KEY_CLAIM, /* idempotency: claim a key, or find it taken */
    SQL_KEY_READ,
    SQL_KEY_SET,
    SQL_BATCH,     /* many operations, one round trip, one commit (schema 3) */
    SQL_BATCH_ONE, /* a batch of one withdrawal or deposit, without the arrays */
    SQL__COUNT
} pgbank__sql_id;

enum { SQL_NEEDS_JOURNAL = 1, SQL_NEEDS_BATCH = 2 };

typedef struct pgbank__sql {
    const char *name; /* prepared statement name */
    const char *text;
    int nparams;
    int needs; /* SQL_NEEDS_*: what must exist before it can be prepared */
} pgbank__sql;

extern const pgbank__sql pgbank__sql_table[SQL__COUNT];

#endif
