/*
 * sql.c - the text of every statement the engine sends.  The strategies'
 * statements are the seed's, translated from SQLAlchemy to SQL:
 *   session.get(Account, id)          -> SELECT ... WHERE id = $1
 *   .with_for_update()                -> ... FOR UPDATE
 *   acc.balance -= amount; commit()   -> UPDATE ... SET balance = $2 (the
 *                                        value computed in the client)
 *   update(...).where(balance >= X)   -> the guarded UPDATE ... RETURNING
 */
#include "sql.h"

const pgbank__sql pgbank__sql_table[SQL__COUNT] = {
    [SQL_BEGIN] = {"pgbank_begin", "BEGIN", 0},
    [SQL_COMMIT] = {"pgbank_commit", "COMMIT", 0},
    [SQL_ROLLBACK] = {"pgbank_rollback", "ROLLBACK", 0},
    /* The accounts table's shape: balance type, id type, whether id has a
     * default.  No row: the table is missing. */
    [SQL_PROBE] = {"pgbank_probe",
                   "SELECT format_type(b.atttypid, NULL), format_type(i.atttypid, NULL),"
                   " i.attidentity <> '' OR i.atthasdef"
                   " FROM pg_attribute b JOIN pg_attribute i ON i.attrelid = b.attrelid"
                   " AND i.attname = 'id' AND NOT i.attisdropped"
                   " WHERE b.attrelid = to_regclass('accounts') AND b.attname = 'balance'"
                   " AND NOT b.attisdropped",
                   0},
    [SQL_SELECT_BALANCE] = {"pgbank_select_balance",
                            "SELECT balance FROM accounts WHERE id = $1", 1},
    [SQL_SELECT_FOR_UPDATE] = {"pgbank_select_for_update",
                               "SELECT balance FROM accounts WHERE id = $1 FOR UPDATE", 1},
    [SQL_SET_BALANCE] = {"pgbank_set_balance",
                         "UPDATE accounts SET balance = $2 WHERE id = $1", 2},
    [SQL_WITHDRAW_ATOMIC] = {"pgbank_withdraw_atomic",
                             "UPDATE accounts SET balance = balance - $2"
                             " WHERE id = $1 AND balance >= $2 RETURNING balance",
                             2},
    [SQL_OPEN] = {"pgbank_open",
                  "INSERT INTO accounts (balance) VALUES ($1) RETURNING id", 1},
    [SQL_OPEN_NO_DEFAULT] = {"pgbank_open_no_default",
                             "INSERT INTO accounts (id, balance)"
                             " SELECT COALESCE(max(id), 0) + 1, $1 FROM accounts RETURNING id",
                             1},
};
