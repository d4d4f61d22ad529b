/*
 * sql.h - every statement the library sends, in one place.  Values always
 * travel as parameters ($1, $2); no value is ever formatted into SQL text.
 */
#ifndef PGBANK_SQL_H
#define PGBANK_SQL_H

typedef enum pgbank__sql_id {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_PROBE,             /* balance column type, id default: set up per connection */
    SQL_SELECT_BALANCE,    /* explicit, begin: the seed's session.get() */
    SQL_SELECT_FOR_UPDATE, /* for-update: the seed's with_for_update() */
    SQL_SET_BALANCE,       /* explicit, begin, for-update: absolute value computed in C */
    SQL_WITHDRAW_ATOMIC,   /* atomic: the seed's guarded UPDATE ... RETURNING */
    SQL_OPEN,              /* a new account, id from the column default */
    SQL_OPEN_NO_DEFAULT,   /* a seed table with no id default: next id by max+1 */
    SQL__COUNT
} pgbank__sql_id;

typedef struct pgbank__sql {
    const char *name; /* prepared statement name */
    const char *text;
    int nparams;
} pgbank__sql;

extern const pgbank__sql pgbank__sql_table[SQL__COUNT];

#endif
