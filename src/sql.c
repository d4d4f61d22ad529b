/*
 * sql.c - the text of every statement the engine sends.  The strategies'
 * statements are the seed's, translated from SQLAlchemy to SQL:
 *   session.get(Account, id)          -> SELECT ... WHERE id = $1
 *   .with_for_update()                -> ... FOR UPDATE
 *   acc.balance -= amount; commit()   -> UPDATE ... SET balance = $2 (the
 *                                        value computed in the client)
 *   update(...).where(balance >= X)   -> the guarded UPDATE ... RETURNING
 * Every single-account statement is routable by id alone (see
 * docs/SCALING.md); no statement modifies the same table twice.
 */
#include "sql.h"

/* pgbank's own writes mark their transaction, so the triggers that journal
 * changes made outside pgbank (schema 4) leave them alone: a condition
 * that is always true, evaluated once before the rows are changed.  As a
 * subquery (an InitPlan), not a function call on the row: Citus refuses
 * a volatile function in the WHERE clause of a modification of a
 * distributed table, and evaluates the subquery on the coordinator. */
#define OWN " AND (SELECT set_config('pgbank.own', 'on', true)) = 'on'"

/* The journal is a chain per account (schema 5): the changed row takes
 * the next journal number as its newest (jseq) and keeps its previous one
 * (jprev, set from the row being updated, so it is right even when the
 * UPDATE waited for a concurrent one); the journal row links the two.
 * nextval() as a subquery, for the reason given at OWN (every UPDATE that
 * uses CHAIN changes one row: one number). */
#define CHAIN ", jseq = (SELECT nextval('pgbank_journal_seq')), jprev = jseq"
#define JOURNAL_INSERT                                                                             \
    "INSERT INTO pgbank_journal (seq, account, prev, op, amount, balance_after, strategy, key) "

const pgbank__sql pgbank__sql_table[SQL__COUNT] = {
    [SQL_BEGIN] = {"pgbank_begin", "BEGIN", 0, 0},
    [SQL_BEGIN_SERIALIZABLE] = {"pgbank_begin_serializable",
                                "BEGIN ISOLATION LEVEL SERIALIZABLE", 0, 0},
    [SQL_COMMIT] = {"pgbank_commit", "COMMIT", 0, 0},
    [SQL_ROLLBACK] = {"pgbank_rollback", "ROLLBACK", 0, 0},
    [SQL_SAVEPOINT] = {"pgbank_savepoint", "SAVEPOINT pgbank_work", 0, 0},
    [SQL_ROLLBACK_TO_SAVEPOINT] = {"pgbank_rollback_to", "ROLLBACK TO SAVEPOINT pgbank_work", 0,
                                   0},
    /* balance type, id type, whether id has a default, the journal's shape
     * (0 none: the seed's table without init; 1 schema 5's chain, with the
     * keys' outcome codes; 2 an older one, which `pgbank init` upgrades),
     * whether the batch functions exist, whether pgbank_keyed() does,
     * whether pgbank_batch_route() does (the schema is distributed over
     * Citus: init made it), whether pgbank_atomic_one() does (made there
     * too; a schema distributed by an older init lacks it, and atomic there
     * keeps its one statement).
     * No row: the accounts table is missing. */
    [SQL_PROBE] = {"pgbank_probe",
                   "SELECT format_type(b.atttypid, NULL), format_type(i.atttypid, NULL),"
                   " i.attidentity <> '' OR i.atthasdef,"
                   " CASE WHEN to_regclass('pgbank_journal') IS NULL THEN 0"
                   " WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
                   " to_regclass('pgbank_journal') AND attname = 'prev' AND NOT attisdropped)"
                   " AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
                   " to_regclass('pgbank_keys') AND attname = 'outcome' AND NOT attisdropped)"
                   " THEN 1 ELSE 2 END,"
                   " to_regprocedure('pgbank_batch(smallint[],bigint[],bigint[],bigint[])')"
                   " IS NOT NULL"
                   " AND to_regprocedure('pgbank_batch_one(smallint,bigint,bigint)') IS NOT NULL,"
                   " to_regprocedure('pgbank_keyed(smallint,bigint,bigint,bigint,text)')"
                   " IS NOT NULL,"
                   " to_regprocedure('pgbank_batch_route(bigint,smallint[],bigint[],bigint[],"
                   "bigint[])') IS NOT NULL,"
                   " to_regprocedure('pgbank_atomic_one(smallint,bigint,bigint)') IS NOT NULL"
                   " FROM pg_attribute b JOIN pg_attribute i ON i.attrelid = b.attrelid"
                   " AND i.attname = 'id' AND NOT i.attisdropped"
                   " WHERE b.attrelid = to_regclass('accounts') AND b.attname = 'balance'"
                   " AND NOT b.attisdropped",
                   0, 0},
    [SQL_SELECT_BALANCE] = {"pgbank_select_balance",
                            "SELECT balance FROM accounts WHERE id = $1", 1, 0},
    [SQL_SELECT_FOR_UPDATE] = {"pgbank_select_for_update",
                               "SELECT balance FROM accounts WHERE id = $1 FOR UPDATE", 1, 0},
    [SQL_SELECT_PAIR] = {"pgbank_select_pair",
                         "SELECT id, balance FROM accounts WHERE id IN ($1, $2) ORDER BY id", 2,
                         0},
    /* for-update transfers lock their two rows one statement each, in id
     * order: no deadlock, and each statement routable to one shard (Citus
     * refuses a FOR UPDATE that spans shards). */
    [SQL_SELECT_ROW_FOR_UPDATE] = {"pgbank_select_row_for_update",
                                   "SELECT id, balance FROM accounts WHERE id = $1 FOR UPDATE", 1,
                                   0},
    /* On Citus a transfer's read-modify-write reads its two rows one
     * statement each too, each routed to its shard: the two-row read spans
     * shards, and inside a SERIALIZABLE transaction Citus made it wait on
     * the coordinator for concurrent writers of those shards
     * (citus_lock_waits showed serializable transfers' reads blocked by
     * other transfers' UPDATEs there). */
    [SQL_SELECT_ROW] = {"pgbank_select_row", "SELECT id, balance FROM accounts WHERE id = $1", 1,
                        0},
    [SQL_SET_BALANCE] = {"pgbank_set_balance",
                         "UPDATE accounts SET balance = $2 WHERE id = $1" OWN, 2, 0},
    [SQL_DEBIT] = {"pgbank_debit",
                   "UPDATE accounts SET balance = balance - $2"
                   " WHERE id = $1 AND balance >= $2" OWN " RETURNING balance",
                   2, 0},
    [SQL_CREDIT] = {"pgbank_credit",
                    "UPDATE accounts SET balance = balance + $2 WHERE id = $1" OWN
                    " RETURNING balance",
                    2, 0},
    [SQL_OPEN] = {"pgbank_open",
                  "INSERT INTO accounts (balance) SELECT $1 WHERE true" OWN " RETURNING id", 1,
                  0},
    [SQL_OPEN_NO_DEFAULT] = {"pgbank_open_no_default",
                             "INSERT INTO accounts (id, balance)"
                             " SELECT COALESCE(max(id), 0) + 1, $1 FROM accounts"
                             " HAVING true" OWN " RETURNING id",
                             1, 0},
    /* $1 id, $2 amount, $3 journal op, $4 key, $5 strategy */
    [SQL_DEBIT_J] = {"pgbank_debit_j",
                     "WITH u AS (UPDATE accounts SET balance = balance - $2" CHAIN
                     " WHERE id = $1 AND balance >= $2" OWN
                     " RETURNING id, balance, jseq, jprev) " JOURNAL_INSERT
                     "SELECT jseq, id, jprev, $3::text, -$2::bigint, balance, $5::text, $4::text"
                     " FROM u RETURNING balance_after",
                     5, SQL_NEEDS_JOURNAL},
    [SQL_CREDIT_J] = {"pgbank_credit_j",
                      "WITH u AS (UPDATE accounts SET balance = balance + $2" CHAIN
                      " WHERE id = $1" OWN " RETURNING id, balance, jseq, jprev) " JOURNAL_INSERT
                      "SELECT jseq, id, jprev, $3::text, $2::bigint, balance, $5::text, $4::text"
                      " FROM u RETURNING balance_after",
                      5, SQL_NEEDS_JOURNAL},
    /* The read-modify-write strategies' write: the absolute value computed
     * in the client, journaled with the amount the operation meant to move
     * (so the audit shows what an unsafe strategy lost).  $1 id, $2 new
     * balance, $3 journal op, $4 signed amount meant, $5 strategy, $6 key */
    [SQL_SET_BALANCE_J] = {"pgbank_set_balance_j",
                           "WITH u AS (UPDATE accounts SET balance = $2" CHAIN " WHERE id = $1" OWN
                           " RETURNING id, balance, jseq, jprev) " JOURNAL_INSERT
                           "SELECT jseq, id, jprev, $3::text, $4::bigint, balance, $5::text,"
                           " $6::text FROM u",
                           6, SQL_NEEDS_JOURNAL},
    [SQL_OPEN_J] = {"pgbank_open_j",
                    "WITH a AS (INSERT INTO accounts (balance, jseq)"
                    " SELECT $1, nextval('pgbank_journal_seq') WHERE true" OWN
                    " RETURNING id, balance, jseq) " JOURNAL_INSERT
                    "SELECT jseq, id, NULL, 'open', balance, balance, NULL, NULL FROM a"
                    " RETURNING account",
                    1, SQL_NEEDS_JOURNAL},
    /* Keys.  The table's one unique constraint is its primary key: (key)
     * on one server, (key, account) on Citus, where the keys live with
     * their accounts and a key is unique per account (docs/SCALING.md).
     * So the claim names no conflict target, the read prefers the key's
     * row of this account (on one server the key's only row, maybe
     * another account's: a conflict), and the outcome is set on the row
     * of this account (routable on Citus).
     * $1 key, $2 op, $3 account, $4 to_account, $5 amount */
    [SQL_KEY_CLAIM] = {"pgbank_key_claim",
                       "INSERT INTO pgbank_keys (key, op, account, to_account, amount)"
                       " VALUES ($1, $2, $3, $4, $5)"
                       " ON CONFLICT DO NOTHING RETURNING 1",
                       5, SQL_NEEDS_JOURNAL},
    /* $1 key, $2 account */
    [SQL_KEY_READ] = {"pgbank_key_read",
                      "SELECT op, account, COALESCE(to_account, 0), amount, outcome,"
                      " COALESCE(balance, 0), COALESCE(to_balance, 0)"
                      " FROM pgbank_keys WHERE key = $1 ORDER BY account <> $2::bigint LIMIT 1",
                      2, SQL_NEEDS_JOURNAL},
    /* $1 key, $2 outcome code (sql.h), $3 balance, $4 to_balance, $5 account */
    [SQL_KEY_SET] = {"pgbank_key_set",
                     "UPDATE pgbank_keys SET outcome = $2, balance = $3, to_balance = $4"
                     " WHERE key = $1 AND account = $5",
                     5, SQL_NEEDS_JOURNAL},
    /* $1 kinds (SQL_KIND_*), $2 accounts, $3 destinations, $4 amounts */
    [SQL_BATCH] = {"pgbank_batch",
                   "SELECT status, bal, to_bal, accts, starts FROM pgbank_batch($1::smallint[],"
                   " $2::bigint[], $3::bigint[], $4::bigint[])",
                   4, SQL_NEEDS_BATCH},
    /* $1 kind, $2 account, $3 amount */
    [SQL_BATCH_ONE] = {"pgbank_batch_one",
                       "SELECT status, bal FROM pgbank_batch_one($1::smallint, $2::bigint,"
                       " $3::bigint)",
                       3, SQL_NEEDS_BATCH},
    /* $1 kind, $2 account, $3 destination, $4 amount, $5 key */
    [SQL_KEYED] = {"pgbank_keyed",
                   "SELECT status, bal, to_bal, replayed FROM pgbank_keyed($1::smallint,"
                   " $2::bigint, $3::bigint, $4::bigint, $5::text)",
                   5, SQL_NEEDS_KEYED},
    /* Citus: the hash value each shard of the accounts starts at, in
     * order; an account's shard is the last one starting at or below
     * hashint8(id) (pgbank__shard_of).  Sent only where
     * pgbank_batch_route() exists: the catalog is Citus's. */
    [SQL_SHARDS] = {"pgbank_shards",
                    "SELECT shardminvalue FROM pg_dist_shard"
                    " WHERE logicalrelid = to_regclass('accounts') ORDER BY shardminvalue::int",
                    0, SQL_NEEDS_ROUTE},
    /* $1 the routing account, then SQL_BATCH's four arrays */
    [SQL_BATCH_ROUTE] = {"pgbank_batch_route",
                         "SELECT status, bal, to_bal, accts, starts FROM pgbank_batch_route("
                         "$1::bigint, $2::smallint[], $3::bigint[], $4::bigint[], $5::bigint[])",
                         5, SQL_NEEDS_ROUTE},
    /* $1 kind (0 withdraw, 1 deposit), $2 account, $3 amount */
    [SQL_ATOMIC_ONE] = {"pgbank_atomic_one",
                        "SELECT status, bal FROM pgbank_atomic_one($1::smallint, $2::bigint,"
                        " $3::bigint)",
                        3, SQL_NEEDS_ATOMIC_ONE},
};
