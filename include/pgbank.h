/*
 * pgbank.h - the whole public API of libpgbank.
 *
 * pgbank moves money in PostgreSQL without races.  It offers:
 *   - an asynchronous engine: a pool of non-blocking libpq connections that
 *     runs many money operations at once from one thread, driven by its own
 *     default loop or by any event loop of the application (curl multi style);
 *   - the seed's four withdrawal strategies (two of them unsafe, kept to
 *     demonstrate the race) and the safe ones beyond it;
 *   - schema creation, connection-string handling and a private PostgreSQL
 *     server for when no database is named.
 *
 * Conventions
 *   - Every name starts with pgbank_ / PGBANK_.  Handles are opaque.
 *   - Functions that can fail return 0 on success and a negative
 *     PGBANK_E* code on failure (see pgbank_strerror()).  When a function
 *     that takes a callback returns an error, the callback is never called.
 *   - Business outcomes (insufficient funds, no such account, ...) are
 *     results, not errors: they arrive in pgbank_result.status.
 *   - Enumerations are append-only: new values go at the end, so programs
 *     built against an older header keep working.  Feature macros
 *     (PGBANK_HAS_*) say what this header offers.
 *   - Money is an int64_t count of minor units (cents).  The column may be
 *     PostgreSQL integer or bigint; amounts outside the column's range are
 *     rejected before anything is sent.
 *
 * Threads
 *   An engine belongs to one thread at a time: every pgbank_engine_*,
 *   pgbank_submit() and pgbank_execute() call on it, and its callbacks (which
 *   run inside those calls), happen on the thread that drives it; the
 *   library takes no lock.  Several engines may run on several threads at
 *   once, one each (one per event loop).  The blocking functions that take a
 *   connection string (schema, history, audit, the private server) open a
 *   connection of their own and may be called from any thread.  Like libpq,
 *   pgbank reads the PG* environment variables; do not change them while
 *   another thread connects.
 */
#ifndef PGBANK_H
#define PGBANK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PGBANK_VERSION_MAJOR 0
#define PGBANK_VERSION_MINOR 1
#define PGBANK_VERSION_PATCH 0
#define PGBANK_VERSION "0.1.0"

/* Feature macros. */
#define PGBANK_HAS_LOOP_CALLBACKS 1
#define PGBANK_HAS_PRIVATE_SERVER 1

/* The library's version string, e.g. "0.1.0". */
const char *pgbank_version(void);

/* ------------------------------------------------------------------------
 * Errors: API misuse and system failures.  Negative codes, one table.
 * ------------------------------------------------------------------------ */
#define PGBANK_ERRNO_MAP(X)                                                   \
    X(EINVAL, -1, "invalid argument")                                         \
    X(ENOMEM, -2, "out of memory")                                            \
    X(ECONNINFO, -3, "invalid connection string")                             \
    X(ECONNECT, -4, "could not connect to the database")                      \
    X(ESHUTDOWN, -5, "the engine is shutting down")                           \
    X(ESERVER, -6, "the private server failed")                               \
    X(ESCHEMA, -7, "the database schema is missing or of the wrong shape")    \
    X(EDB, -8, "database error")                                              \
    X(ETIMEDOUT, -9, "timed out")                                             \
    X(ESYS, -10, "system call failed")                                        \
    X(ENOTFOUND, -11, "not found")

typedef enum pgbank_errno {
#define PGBANK__ERRNO_ENUM(name, val, msg) PGBANK_##name = (val),
    PGBANK_ERRNO_MAP(PGBANK__ERRNO_ENUM)
#undef PGBANK__ERRNO_ENUM
} pgbank_errno;

/* A short message for a PGBANK_E* code ("unknown error" for others). */
const char *pgbank_strerror(int err);
/* The code's name, e.g. "EINVAL" ("UNKNOWN" for others). */
const char *pgbank_err_name(int err);

/* ------------------------------------------------------------------------
 * Strategies.  Names are the ones used everywhere: API, CLI, docs, reports.
 * ------------------------------------------------------------------------ */
typedef enum pgbank_strategy {
    /* UNSAFE FOR MONEY.  Seed section 2: BEGIN; SELECT balance; check in C;
     * UPDATE ... SET balance = <value computed in the client>; COMMIT or
     * ROLLBACK.  Loses updates under concurrency (READ COMMITTED). */
    PGBANK_EXPLICIT = 0,
    /* UNSAFE FOR MONEY.  Seed section 3: the same read-modify-write inside a
     * scoped transaction that commits on success, rolls back on error. */
    PGBANK_BEGIN = 1,
    /* Seed section 4: SELECT ... FOR UPDATE locks the row, then check and
     * update.  Safe. */
    PGBANK_FOR_UPDATE = 2,
    /* Seed section 5: one UPDATE ... WHERE balance >= $amount RETURNING
     * balance.  Safe; one statement, one round trip. */
    PGBANK_ATOMIC = 3,
    /* Beyond the seed: the read-modify-write at SERIALIZABLE isolation,
     * retried as a whole transaction on 40001/40P01 with jittered
     * exponential backoff, within a budget of tries and time.  Safe. */
    PGBANK_SERIALIZABLE = 4,
    /* Beyond the seed: the operations pending at a moment go to the server
     * together, in one round trip and one commit, through the server-side
     * function pgbank_batch() that `pgbank init` installs.  Each operation
     * gets its own result, exactly as if they ran one by one in arrival
     * order; accounts are locked in id order (concurrent batches never
     * deadlock) and the operations on one account coalesce into one row
     * update.  Batch size follows load: an operation that finds a batch slot
     * free goes at once; under pressure the waiting ones go together.  Safe.
     * Carries withdraw, deposit and transfer; a keyed one goes alone, in its
     * turn, through pgbank_keyed() (claim, apply and record in one call):
     * what an application role (pgbank_schema_options.app_role) uses. */
    PGBANK_BATCH = 5
} pgbank_strategy;

#define PGBANK_STRATEGY_COUNT 6
#define PGBANK_HAS_BATCH 1
#define PGBANK_HAS_LANES 1
/* The lanes an engine has when pgbank_options.lanes is 0: measured on a
 * 2-core server (docs/BENCHMARKS.md), more lanes than cores add
 * connections and no speed. */
#define PGBANK_DEFAULT_LANES 2
#define PGBANK_HAS_SERIALIZABLE 1
#define PGBANK_HAS_IDEMPOTENCY_KEYS 1
#define PGBANK_HAS_JOURNAL 1

/* "explicit", "begin", "for-update", "atomic"; NULL for an unknown value. */
const char *pgbank_strategy_name(pgbank_strategy s);
/* Parses a strategy name.  Returns 0, or PGBANK_EINVAL for an unknown name. */
int pgbank_strategy_parse(const char *name, pgbank_strategy *out);
/* 1 when the strategy never loses or creates money under concurrency. */
int pgbank_strategy_is_safe(pgbank_strategy s);

/* ------------------------------------------------------------------------
 * Operations and results.
 * ------------------------------------------------------------------------ */
typedef enum pgbank_op_kind {
    PGBANK_OP_WITHDRAW = 0, /* take amount from account */
    PGBANK_OP_DEPOSIT = 1,  /* add amount to account */
    PGBANK_OP_TRANSFER = 2, /* move amount from account to to_account */
    PGBANK_OP_BALANCE = 3,  /* read the balance of account */
    PGBANK_OP_OPEN = 4      /* open a new account holding amount (>= 0) */
} pgbank_op_kind;

#define PGBANK_STATUS_MAP(X)                                                  \
    X(OK, "ok")                                                               \
    X(INSUFFICIENT_FUNDS, "insufficient funds")                               \
    X(NO_SUCH_ACCOUNT, "no such account")                                     \
    X(INVALID_AMOUNT, "invalid amount")                                       \
    X(CONFLICT, "conflict")                                                   \
    X(RETRIES_EXHAUSTED, "retries exhausted")                                 \
    X(UNKNOWN_OUTCOME, "unknown outcome")                                     \
    X(DB_ERROR, "database error")                                             \
    X(SHUT_DOWN, "shut down")                                                 \
    X(INVALID_INPUT, "invalid input")

/* How an operation ended.  Exactly one per accepted operation. */
typedef enum pgbank_status {
#define PGBANK__STATUS_ENUM(name, text) PGBANK_##name,
    PGBANK_STATUS_MAP(PGBANK__STATUS_ENUM)
#undef PGBANK__STATUS_ENUM
    PGBANK__STATUS_COUNT
} pgbank_status;

/* "ok", "insufficient funds", ...; "?" for an unknown value. */
const char *pgbank_status_name(pgbank_status s);

typedef struct pgbank_result {
    pgbank_status status;
    /* OK: the new balance of `account` (the source for a transfer; the
     * current balance for PGBANK_OP_BALANCE).  INSUFFICIENT_FUNDS: the
     * balance seen when the operation was refused. */
    int64_t balance;
    /* Transfer OK: the new balance of to_account. */
    int64_t to_balance;
    /* PGBANK_OP_OPEN OK: the id of the new account. */
    int64_t account;
    /* 1 when the operation's idempotency key had been used before with the
     * same parameters: this is the original outcome, and nothing changed. */
    int replayed;
    /* How many times the transaction was retried (serializable). */
    int retries;
    /* Database error: the SQLSTATE (40001, ...), else "". */
    char sqlstate[6];
    /* Human-readable detail (the server's message for a database error);
     * never contains a password.  "" when there is nothing to add. */
    char message[256];
} pgbank_result;

typedef struct pgbank_op pgbank_op;

/* The size of pgbank_op's private part (bytes). */
#define PGBANK_OP_PRIVATE_SIZE 160

/* A gate orchestrates an interleaving, for the race lab and tests: every
 * operation of a read-modify-write strategy (explicit, begin) that carries
 * the gate stops after its read, holding its transaction open, until
 * `expected` operations have read; then all go on to write.  So every read
 * happens before any write, the worst case for a lost update.  Strategies
 * whose read locks (for-update) or that have no read (atomic) pass through a
 * gate unchanged: they are safe exactly because no such interleaving can
 * happen.  An operation that ends before reaching the gate counts as arrived.
 * An operation held at the gate keeps its connection (its transaction is
 * open): the pool needs at least `expected` connections, or the ones still
 * queued can never start.  Set it up with pgbank_gate_init(), hand it to
 * pgbank_submit_gated(); it must outlive its operations. */
typedef struct pgbank_gate {
    int expected;
    int arrived;
} pgbank_gate;

/* Prepares a gate for `expected` operations. */
void pgbank_gate_init(pgbank_gate *gate, int expected);

/* Completion callback: called exactly once for every accepted operation,
 * from inside the engine's loop (pgbank_engine_socket_action(),
 * pgbank_engine_run(), pgbank_engine_free()).  op->result is filled in.
 * The callback may submit new operations and may reuse or free `op`. */
typedef void (*pgbank_done_fn)(pgbank_op *op);

/* An operation: owned by the caller, who must keep it at a fixed address
 * from pgbank_submit() until its callback has run.  Set the "in" fields
 * (pgbank_op_init() gives safe defaults), leave the private ones alone. */
struct pgbank_op {
    /* In. */
    pgbank_op_kind kind;
    pgbank_strategy strategy;
    int64_t account;    /* the account (source of a transfer) */
    int64_t to_account; /* destination of a transfer */
    int64_t amount;     /* > 0; for PGBANK_OP_OPEN the opening balance, >= 0 */
    pgbank_done_fn done;
    void *user_data;
    /* Idempotency key (withdraw, deposit, transfer), or NULL.  The same key
     * with the same parameters returns the original result (replayed = 1)
     * and changes nothing; with other parameters it is PGBANK_CONFLICT.
     * Refusals are remembered too.  A keyed operation whose connection dies
     * is resolved by its key after reconnecting: applied exactly once.  At
     * most 200 bytes; must stay valid until the callback. */
    const char *key;
    /* Out: valid from the callback on. */
    pgbank_result result;
    /* Private to the engine: never read or write it. */
    union {
        int64_t align_;
        void *ptr_;
        unsigned char bytes[PGBANK_OP_PRIVATE_SIZE];
    } priv;
};

/* Zeroes *op and sets the defaults (strategy PGBANK_ATOMIC). */
void pgbank_op_init(pgbank_op *op, pgbank_op_kind kind);

/* sizeof(pgbank_op) in the library: a binding that lays the structure out
 * itself (Python's ctypes) checks it against its own. */
size_t pgbank_op_size(void);

/* Frees memory the library returned for the caller to free
 * (pgbank_conninfo_normalize(), ...); NULL is a harmless no-op.  The same
 * as free(), for callers that do not share the library's C runtime. */
void pgbank_free(void *p);

/* ------------------------------------------------------------------------
 * The engine.
 * ------------------------------------------------------------------------ */
typedef struct pgbank_engine pgbank_engine;

/* Echo: one line per statement sent, with its parameters (like the seed's
 * echo=True).  The line never contains a password. */
typedef void (*pgbank_log_fn)(void *arg, const char *line);

typedef struct pgbank_options {
    /* A libpq connection string (key=value), a postgresql:// or postgres://
     * URI, or the seed's postgresql+asyncpg:// form.  NULL or "": libpq's
     * defaults (PG* environment variables, service files). */
    const char *conninfo;
    /* Number of connections in the pool (default 4, at most 1024). */
    int connections;
    /* 1: never use named prepared statements, only unnamed ones (what
     * PgBouncer's transaction pooling needs).  Default 0. */
    int unnamed_statements;
    /* Statement echo; NULL for none. */
    pgbank_log_fn echo;
    void *echo_arg;
    /* How long a connection attempt may take, in ms (default 10000). */
    int connect_timeout_ms;
    /* Single-statement operations (atomic, balance, open) in flight at once
     * on one connection, in pipeline mode, one Sync each (default 1). */
    int pipeline_depth;
    /* serializable: retry budget, by count (default 30) and by time since
     * the first try (default 10000 ms).  Backoff: jittered, exponential
     * from 1 ms up to 100 ms. */
    int retry_max;
    int retry_budget_ms;
    /* batch: at most this many operations per batch (default 4096; at
     * most 100,000, what the server takes in one call). */
    int batch_max;
    /* batch: batches in flight at once on each lane's connection (default
     * 1): they run one after the other on the server, the next one already
     * sent while the previous one runs. */
    int batch_inflight;
    /* batch: the number of lanes (default PGBANK_DEFAULT_LANES, at most
     * 64).  Every account belongs to one lane (a hash of its id); each lane
     * has a connection of its own (opened in addition to `connections`, on
     * the first batched operation) and its own stream of batches, so the
     * batches of different lanes never touch the same row and run in
     * parallel on the server without waiting for each other's row locks.
     * Results are exactly those of running the operations one by one in
     * arrival order, for every account: a lane sends its operations in
     * arrival order, and a transfer between two lanes waits until both are
     * idle, runs alone, and holds both until it is done
     * (docs/LANES.md). */
    int lanes;
} pgbank_options;

/* Fills *opt with the defaults. */
void pgbank_options_init(pgbank_options *opt);

/* Creates an engine.  The options are copied (opt and its strings may be
 * freed once this returns; the echo callback and its argument must live as
 * long as the engine).  Nothing is sent yet: connections open on
 * pgbank_engine_connect() or on the first operation.  Returns 0 and sets
 * *out, or a negative code (PGBANK_ECONNINFO for a malformed string; the
 * reason is in `err`, password-free, when err is not NULL). */
int pgbank_engine_new(pgbank_engine **out, const pgbank_options *opt,
                      char *err, size_t errlen);

/* Completes every pending operation with PGBANK_SHUT_DOWN (running their
 * callbacks), closes the connections and frees the engine.  Calling it with
 * NULL is a harmless no-op.  Not callable from a completion callback. */
void pgbank_engine_free(pgbank_engine *eng);

/* Starts opening every connection of the pool now (operations otherwise open
 * them lazily, which staggers their start).  Non-blocking.  Returns 0, or
 * PGBANK_EINVAL for a NULL engine; connection failures show later, in the
 * operations' results and pgbank_engine_error(). */
int pgbank_engine_connect(pgbank_engine *eng);

/* Runs the default loop until every connection of the pool is ready, or
 * timeout_ms passes (-1: the options' connect timeout).  Returns 0, or
 * PGBANK_ECONNECT (the database could not be reached), PGBANK_ESCHEMA (it
 * was reached but has no usable accounts table: run pgbank_schema_init()),
 * PGBANK_ETIMEDOUT; the reason is in pgbank_engine_error(). */
int pgbank_engine_wait_connected(pgbank_engine *eng, int timeout_ms);

/* The last connection-level error message, password-free; "" if none. */
const char *pgbank_engine_error(const pgbank_engine *eng);

/* Accepts an operation.  Returns 0: op->done will be called exactly once,
 * later, from the engine's loop (never from inside pgbank_submit(), even
 * for an operation refused at once, such as an amount of 0).
 * Returns PGBANK_EINVAL (no callback, unknown kind or strategy) or
 * PGBANK_ESHUTDOWN: the callback will never be called.  Invalid amounts are
 * not errors: they complete with PGBANK_INVALID_AMOUNT without touching the
 * database. */
int pgbank_submit(pgbank_engine *eng, pgbank_op *op);

/* pgbank_submit() for the race lab and tests: op stops at `gate` (see
 * pgbank_gate; NULL is plain pgbank_submit()).  Same return values. */
int pgbank_submit_gated(pgbank_engine *eng, pgbank_op *op, pgbank_gate *gate);

/* Number of accepted operations whose callback has not run yet. */
size_t pgbank_engine_pending(const pgbank_engine *eng);

/* Number of the engine's connections that are open and ready (the pool's
 * and the lanes'): for an application loop, which cannot use
 * pgbank_engine_wait_connected(), to see the pool come up after
 * pgbank_engine_connect().  0 for NULL. */
int pgbank_engine_connected(const pgbank_engine *eng);

/* hold = 1: operations accepted from now on wait in the engine, nothing new
 * is sent; hold = 0: they are sent, together (with the batch strategy, as
 * one batch per lane).  For an application that submits many operations
 * one call at a time (an asyncio loop iteration, say) and wants them to
 * travel together: pgbank_submit() otherwise sends an operation at once
 * when a connection or a batch slot is free.  Operations already sent go
 * on; callbacks run as usual.  Returns 0, or PGBANK_EINVAL for NULL. */
int pgbank_engine_hold(pgbank_engine *eng, int hold);

/* Counters since the engine was created. */
typedef struct pgbank_engine_stats {
    uint64_t batches;     /* batches sent (batch strategy) */
    uint64_t batched_ops; /* operations sent in them */
    uint64_t crossings;   /* transfers between two lanes (each ran alone) */
    int lanes;            /* the engine's lanes */
} pgbank_engine_stats;

/* Fills *st.  Calling it with a NULL engine zeroes *st. */
void pgbank_engine_get_stats(const pgbank_engine *eng, pgbank_engine_stats *st);

/* --- Driving the engine from any event loop (curl multi style) ---------- */
#define PGBANK_POLL_IN 1
#define PGBANK_POLL_OUT 2
#define PGBANK_POLL_REMOVE 4
/* Pass as fd to pgbank_engine_socket_action() when the timer fires. */
#define PGBANK_SOCKET_TIMEOUT (-1)

/* Called when the engine wants `fd` watched for `what` (PGBANK_POLL_IN
 * and/or PGBANK_POLL_OUT), or no longer watched (PGBANK_POLL_REMOVE). */
typedef void (*pgbank_socket_fn)(void *arg, int fd, int what);
/* Called when the engine's wake-up time changes: call
 * pgbank_engine_socket_action(eng, PGBANK_SOCKET_TIMEOUT, 0) after
 * timeout_ms (0: as soon as possible).  -1 removes the timer. */
typedef void (*pgbank_timer_fn)(void *arg, long timeout_ms);

/* Hands the engine to the application's loop, at any time: the callbacks
 * are then told about every socket already open.  NULL callbacks give the
 * engine back to the default loop (the old loop is not told; it is being
 * detached).  A socket is always removed (PGBANK_POLL_REMOVE) before it is
 * closed, so a number reused by a new connection is announced afresh.
 * Returns 0, or PGBANK_EINVAL (NULL engine, or only one of the two
 * callbacks given): the previous loop then stays. */
int pgbank_engine_set_loop(pgbank_engine *eng, pgbank_socket_fn on_socket,
                           pgbank_timer_fn on_timer, void *arg);

/* Tells the engine that `fd` is ready for `events` (PGBANK_POLL_*), or that
 * the timer fired (fd = PGBANK_SOCKET_TIMEOUT).  Completion callbacks run
 * from here.  Returns 0 or a negative code. */
int pgbank_engine_socket_action(pgbank_engine *eng, int fd, int events);

/* --- The built-in loop (poll) -------------------------------------------- */

/* Runs the default loop until no operation is pending, or timeout_ms passes
 * (-1: no limit).  Returns 0, PGBANK_ETIMEDOUT or another negative code. */
int pgbank_engine_run(pgbank_engine *eng, int timeout_ms);

/* Blocking call for one operation: submits op and runs the default loop
 * until it completes (other pending operations progress too).  op->done may
 * be NULL.  Returns 0 with op->result filled in, or a negative code from
 * pgbank_submit(). */
int pgbank_execute(pgbank_engine *eng, pgbank_op *op);

/* ------------------------------------------------------------------------
 * Schema.
 * ------------------------------------------------------------------------ */

/* Options of pgbank_schema_create(); pgbank_schema_options_init() gives the
 * defaults. */
typedef struct pgbank_schema_options {
    /* NULL, or a login role (created when missing) that may only EXECUTE
     * pgbank's server functions (pgbank_batch, pgbank_batch_one,
     * pgbank_keyed): no right on any table, statement_timeout and
     * idle_in_transaction_session_timeout of 5 s.  An application connected
     * as it moves money with the batch strategy, keyed operations included.
     * Refused (PGBANK_ESCHEMA) when the role is the current user, a
     * superuser, may create roles or databases, owns the accounts table or
     * the database, is a member of a privileged role, or may CREATE in the
     * schema: restricting such a role would be a pretence. */
    const char *app_role;
    /* 1 (the default): the journal, the idempotency keys and the journaling
     * of changes made outside pgbank.  0: none of them, for benchmarks that
     * compare pgbank with plain SQL on the same table (an existing journal
     * is kept). */
    int journal;
    /* Called with one line for each warning (every role may CREATE in the
     * schema, say); NULL: warnings are dropped. */
    void (*warn)(void *arg, const char *message);
    void *warn_arg;
    /* 0 (the default): distribute the schema when the database is a Citus
     * coordinator (the citus extension is installed), else create it as on
     * one server.  1: distribute it, refused (PGBANK_ESCHEMA) without Citus.
     * -1: never look for Citus.
     * Distributed, accounts are spread by id, and the journal and the keys
     * live with their accounts (docs/SCALING.md). */
    int distributed;
} pgbank_schema_options;

/* Fills *o with the defaults (journal on, no application role). */
void pgbank_schema_options_init(pgbank_schema_options *o);

/* Creates pgbank's schema in the first existing schema of the connection's
 * search_path, or upgrades an older one in place, idempotently, in one
 * transaction: the accounts table (bigint minor units, CHECK (balance >=
 * 0); an existing table of the seed's shape, integer columns, is adopted
 * and given the CHECK), the schema-version record, the journal and keys,
 * the server functions and the triggers that journal changes made outside
 * pgbank.  Blocking.  opt may be NULL (the defaults).  Returns 0,
 * PGBANK_ESCHEMA (the database refuses pgbank's schema: the reason says
 * what to do), or another negative code; the reason, password-free, is in
 * err. */
int pgbank_schema_create(const char *conninfo, const pgbank_schema_options *opt, char *err,
                         size_t errlen);

/* pgbank_schema_create() with the defaults. */
int pgbank_schema_init(const char *conninfo, char *err, size_t errlen);

/* pgbank_schema_create() with opt.app_role = role. */
int pgbank_schema_init_app_role(const char *conninfo, const char *role, char *err, size_t errlen);

/* Fills an empty accounts table that pgbank created with accounts 1..count,
 * each holding `balance`, fast (the primary key is built after the rows,
 * then the table is analyzed), and journals their opening: what benchmarks
 * and labs start from.  Returns 0, PGBANK_EINVAL (count < 1 or balance <
 * 0), PGBANK_ESCHEMA (the table is not empty, or was adopted), or another
 * negative code with the reason in err. */
int pgbank_accounts_load(const char *conninfo, int64_t count, int64_t balance, char *err,
                         size_t errlen);

/* The schema version this library creates: 1 accounts and pgbank_meta;
 * 2 adds the journal (pgbank_journal) and idempotency keys (pgbank_keys);
 * 3 adds the batch function pgbank_batch(); 4 makes the database the
 * boundary: server functions validate every argument, keyed operations go
 * through pgbank_keyed(), outcomes are stored as stable codes, and changes
 * made outside pgbank are journaled as "external"; 5 makes the journal a
 * chain per account (each row names the account's previous one, the
 * account its newest), with no per-account index, and lets one journal row
 * hold an account's several operations of one batch. */
#define PGBANK_SCHEMA_VERSION 5
#define PGBANK_HAS_SCHEMA_OPTIONS 1

/* ------------------------------------------------------------------------
 * Journal and audit (blocking, on a connection of their own).
 * ------------------------------------------------------------------------ */

/* One journal row: every balance change writes one in its transaction. */
typedef struct pgbank_journal_entry {
    int64_t seq;
    int64_t account;
    const char *op;       /* "open", "withdraw", "deposit", "transfer out", "transfer in",
                             "external" */
    int64_t amount;       /* signed change the operation meant to make */
    int64_t balance_after;
    const char *key;      /* "" when none */
    const char *strategy; /* "" when none */
    const char *at;       /* timestamp, ISO 8601 */
    /* op "external" (a change made outside pgbank, journaled by the
     * database): the session's login role and application_name; "" else. */
    const char *role;
    const char *application;
} pgbank_journal_entry;

/* Called for each row, newest first; the strings live until it returns. */
typedef void (*pgbank_history_fn)(void *arg, const pgbank_journal_entry *e);

/* The journal of one account, newest first, at most `limit` rows (<= 0:
 * all).  Returns 0, PGBANK_ENOTFOUND (no such account), or another
 * negative code with the reason in `err`. */
int pgbank_history(const char *conninfo, int64_t account, int limit, pgbank_history_fn fn,
                   void *arg, char *err, size_t errlen);

typedef struct pgbank_audit_report {
    int64_t accounts;      /* accounts checked */
    int64_t mismatched;    /* balance != opening balance + sum of its journal */
    int64_t negative;      /* balance < 0 */
    int64_t total_balance; /* sum of all balances */
    int64_t opening_total; /* sum of opening balances (journal "open" rows) */
    int64_t deposits;      /* money in: deposits and transfers in */
    int64_t withdrawals;   /* money out: withdrawals and transfers out (positive) */
    /* Over mismatched accounts: balance above what the journal says (money
     * paid out but never debited: the bank lost it), and below it. */
    int64_t money_lost;
    int64_t money_created;
    /* Changes made outside pgbank (journal rows "external"): how many, their
     * net amount, and who made them ("role (application) x N, ...", the
     * largest groups first, cut to fit).  They count in every check above:
     * the journal records them, so the balances still agree. */
    int64_t external;
    int64_t external_net;
    char external_by[256];
    /* 1 when a total did not fit int64_t and is shown clamped to its range;
     * the checks themselves are computed exactly (numeric, in SQL). */
    int clamped;
} pgbank_audit_report;

/* Called for each account that fails a check. */
typedef void (*pgbank_audit_fn)(void *arg, int64_t account, int64_t balance, int64_t expected);

/* Checks that every balance equals its opening balance plus the sum of its
 * journal, that none is negative, and that total money equals opening
 * totals plus money in minus money out plus external changes.  All
 * arithmetic runs in SQL numeric: no sum overflows.  Returns 1 when everything holds,
 * 0 when something does not (details in *rep and through on_problem), or a
 * negative code with the reason in `err`. */
int pgbank_audit(const char *conninfo, pgbank_audit_report *rep, pgbank_audit_fn on_problem,
                 void *arg, char *err, size_t errlen);

/* ------------------------------------------------------------------------
 * Connection strings.
 * ------------------------------------------------------------------------ */

/* Returns a libpq-usable copy of `in` (free() it): the "+driver" part of
 * "postgresql+asyncpg://" and similar schemes is dropped; key=value strings
 * and postgresql:// / postgres:// URIs pass through.  NULL on a malformed
 * string, with a password-free reason in `err`. */
char *pgbank_conninfo_normalize(const char *in, char *err, size_t errlen);

/* Writes a displayable form of `conninfo` into out (always NUL-terminated):
 * the password, wherever it appears, is replaced by "****". */
void pgbank_conninfo_redact(const char *conninfo, char *out, size_t outlen);

/* Replaces, in place, every occurrence of the password that `conninfo`
 * carries (in the string itself or in PGPASSWORD) by "****".  Use on any
 * message before printing it. */
void pgbank_conninfo_scrub(const char *conninfo, char *msg, size_t msgsize);

/* Returns a copy of `conninfo` (any form pgbank_conninfo_normalize()
 * accepts; NULL or "" for libpq's defaults) as a libpq key=value string in
 * which `keyword` is set to `value`, replacing the value it had, or is left
 * out when value is NULL (pgbank_conninfo_set(ci, "password", NULL, ...)
 * gives a string that can be shown on a command line).  Every other
 * parameter is kept as it was.  The caller free()s the result.  NULL on a
 * malformed string, a keyword libpq does not know, or out of memory, with
 * a password-free reason in `err` (when err is not NULL). */
char *pgbank_conninfo_set(const char *conninfo, const char *keyword, const char *value,
                          char *err, size_t errlen);

/* The same, with "-csearch_path=SCHEMA" appended to the string's `options`
 * (or, when it has none, to $PGOPTIONS, which an explicit options would
 * otherwise hide): every unqualified name a connection made with the result
 * uses lands in SCHEMA, which must exist for tables to be created there.
 * SCHEMA is 1 to 63 bytes of a-z, 0-9 and '_', not starting with a digit
 * (a name that needs no quoting).  A pooler in transaction mode (PgBouncer)
 * cannot keep a per-connection setting and refuses or ignores `options`.
 * The caller free()s the result; NULL with the reason in `err` as above
 * (also for an invalid SCHEMA). */
char *pgbank_conninfo_with_schema(const char *conninfo, const char *schema, char *err,
                                  size_t errlen);

/* ------------------------------------------------------------------------
 * The private server (embedded default).
 * ------------------------------------------------------------------------ */

/* The default data directory: $PGBANK_DATA_DIR, else
 * $XDG_STATE_HOME/pgbank, else ~/.local/state/pgbank.  Returns 0 or
 * PGBANK_EINVAL when it does not fit in `buf`. */
int pgbank_server_default_dir(char *buf, size_t len);

/* Starts the private server in data_dir (initdb on first use), or reuses it
 * when it runs already; safe when several processes call it at once.  As
 * root the server runs as the unprivileged "postgres" account (or
 * $PGBANK_SERVER_USER), which owns data_dir and writes every file in it;
 * the directories above it get an ACL entry for that account alone when it
 * cannot pass them.  data_dir must be missing, empty or pgbank's, never a
 * symbolic link, owned by that account (as root) or by the caller, with no
 * group or other permission bits: anything else is refused, unchanged.
 * When the installed postgres program changed under a running server (a
 * package update), the server is restarted once, said on stderr.  Returns
 * 0, or a negative code (PGBANK_ESERVER for a refused directory) with the
 * reason and what to do in `err`. */
int pgbank_server_start(const char *data_dir, char *err, size_t errlen);

/* Stops it (fast shutdown).  Returns 0 also when it was not running. */
int pgbank_server_stop(const char *data_dir, char *err, size_t errlen);

/* 1 running, 0 initialised but stopped, PGBANK_ENOTFOUND not initialised,
 * PGBANK_EINVAL for an unusable data_dir, PGBANK_ESERVER for a data
 * directory pgbank refuses (see above).  Starts nothing. */
int pgbank_server_status(const char *data_dir);

/* Sends signal `sig` (0 to 64; SIGQUIT is PostgreSQL's immediate stop, a
 * crash to its clients) to the private server's postmaster, the pid in
 * data_dir/pgdata/postmaster.pid, with the server account's rights only.
 * Returns at once: the postmaster removes its socket, then that pid file,
 * on its way out; once the pid file is gone pgbank_server_start() brings
 * it back (before, the start fails and may be tried again).  Returns 0,
 * PGBANK_ENOTFOUND when no server runs in data_dir, PGBANK_EINVAL for a
 * bad signal, or another negative code, with the reason in `err`. */
int pgbank_server_kill(const char *data_dir, int sig, char *err, size_t errlen);

/* The libpq connection string (key=value) of the private server, into buf
 * (always NUL-terminated).  Returns 0, or PGBANK_EINVAL (unusable data_dir,
 * or buf too small: buf is then ""). */
int pgbank_server_conninfo(const char *data_dir, char *buf, size_t len);

/* The same as a postgresql:// URI; same return values. */
int pgbank_server_url(const char *data_dir, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Parsing helpers (strict; shared by the CLI and usable by applications).
 * ------------------------------------------------------------------------ */

/* Parses a whole decimal integer: optional leading '-', digits only, no
 * spaces, no '+', no trailing bytes, within int64_t.  Returns 0, or
 * PGBANK_EINVAL. */
int pgbank_parse_int64(const char *s, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* PGBANK_H */
