/*
 * engine.h - the engine's private structures and the interfaces between its
 * parts, which stand in layers (each calls only the ones below it):
 *
 *   engine.c  the public engine: pool, queue, dispatch, loop callbacks
 *   loop.c    the built-in poll loop and the blocking calls on it
 *   ops.c     each operation's SQL steps          batch.c  the batch strategy
 *   conn.c    one connection's state machine and its pipeline
 *   core.c    completions, the queue's shared services, validation
 *
 * A connection knows nothing of operations or batches: each Sync's worth of
 * work in flight on it is a pgbank__node whose sink (ops.c's, batch.c's) it
 * hands the results to, then the Sync, or the news that the connection died.
 */
#ifndef PGBANK_ENGINE_H
#define PGBANK_ENGINE_H

#include "internal.h"
#include "sql.h"
#include "sqlstate.h"

#include <libpq-fe.h>
#include <poll.h>

typedef struct pgbank__conn pgbank__conn;
typedef struct pgbank__node pgbank__node;

/* Who consumes a node's results. */
typedef struct pgbank__sink {
    /* One result of the node's statements (not the Sync). */
    void (*result)(pgbank__conn *c, pgbank__node *n, PGresult *r);
    /* The node's Sync arrived: its work is over on this connection.
     * Returns 0, -1 when the connection broke (conn.c fails it), -2 when
     * the connection was closed on purpose. */
    int (*synced)(pgbank__conn *c, pgbank__node *n);
    /* The connection died with the node in flight. */
    void (*lost)(pgbank__conn *c, pgbank__node *n, const char *msg);
} pgbank__sink;

struct pgbank__node {
    pgbank__node *next;
    const pgbank__sink *sink;
};

/* One connection, advanced by conn.c. */
typedef enum pgbank__conn_state {
    CONN_IDLE,       /* no socket: never opened, or closed for good */
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_PROBING,    /* pipeline mode; the accounts table's shape asked */
    CONN_PREPARING,  /* the statements being prepared */
    CONN_READY,      /* takes operations */
    CONN_BROKEN      /* failed; reopens at deadline_ns */
} pgbank__conn_state;

struct pgbank__conn {
    pgbank_engine *eng;
    PGconn *pg;
    pgbank__conn_state state;
    int fd;                 /* PQsocket(), -1 when none */
    int want;               /* PGBANK_POLL_* the connection waits for */
    int told_fd, told_want; /* what the application's loop was last told */
    pgbank__node *head, *tail; /* work in flight, in the order of its Syncs */
    int inflight;           /* nodes in flight */
    /* The connection is not to be shared: a multi-step transaction, an
     * operation held at its gate, or a batch owns it. */
    int exclusive;
    int wanted;     /* opened on purpose: reopens after a failure */
    int in_cmd;     /* a command's results are being read (a NULL ends them) */
    int after_sync; /* the last result was a Sync (libpq may add a NULL) */
    int setup_failed;
    int shards_asked; /* SQL_SHARDS sent during the setup */
    char setup_state[6];
    char setup_msg[256];
    int64_t deadline_ns; /* connect timeout, or reopen time when broken */
    int backoff_ms;
};

typedef struct pgbank__batch pgbank__batch;

/* A lane of the batch strategy (batch.c): the accounts that map to it, a
 * connection of its own and the stream of batches on it.  Batches of
 * different lanes never touch the same row, so they never wait for each
 * other's row locks; one lane's batches run one after the other, in
 * arrival order, on its one connection. */
typedef struct pgbank__lane {
    pgbank__conn *conn;     /* eng->conns[eng->npool + its index] */
    pgbank_op *head, *tail; /* its operations waiting, in arrival order */
    int busy;               /* its batches in flight */
} pgbank__lane;

struct pgbank_engine {
    pgbank_options opt;
    char *conninfo;
    struct pgbank__scrubber *scrub; /* the connection's secrets, found once */
    pgbank__conn *conns;
    int nconns;   /* every connection: the pool, then one per lane */
    int npool;    /* the pool's, for every strategy but batch */
    struct pollfd *pollfds; /* the built-in loop's arrays, one slot per connection */
    int *pollidx;
    int next_conn;                    /* where the dispatcher's scan starts */
    pgbank_op *queue_head, *queue_tail; /* accepted, not yet on a connection */
    pgbank_op *done_head, *done_tail;   /* ended, callback not yet run */
    pgbank_op *delayed;                 /* serializable retries waiting for their backoff */
    pgbank_op *held;                    /* operations held at their gate (ops.c) */
    int gates_full;                     /* a gate has all its operations: release them */
    size_t pending;
    int want_pool;  /* the pool's connections are opened (after connect or a submit) */
    int want_lanes; /* the lanes' are (after connect or a batched submit) */
    int closing;   /* pgbank_engine_free() is running */
    int in_callbacks; /* completion callbacks are running */
    int holding;      /* pgbank_engine_hold(): nothing new is sent */
    /* Application loop (NULL: the built-in loop). */
    pgbank_socket_fn on_socket;
    pgbank_timer_fn on_timer;
    void *loop_arg;
    long told_timeout;
    /* The accounts table's shape, from the first probe. */
    int probed;
    int64_t balance_max;
    int64_t id_max;
    int id_has_default;
    int journal;  /* pgbank_journal and pgbank_keys exist */
    int batch_fn; /* pgbank_batch() and pgbank_batch_one() exist */
    int keyed_fn; /* pgbank_keyed() exists */
    int route_fn; /* pgbank_batch_route() exists: Citus, lanes follow the shards */
    int atomic_one_fn; /* pgbank_atomic_one() exists: Citus, atomic runs on the worker */
    /* Citus: where each shard of the accounts starts (hash values, in
     * order), read once, by the first connection that probes; batched
     * operations wait in `unlaned` until it is known (their lane depends
     * on it, and must never change). */
    int32_t *shard_min;
    int nshards;
    int shards_known;
    pgbank_op *unlaned_head, *unlaned_tail;
    int schema_error; /* the last connection failed on the schema, not the network */
    int all_down;     /* no connection is left: engine_after fails what waits */
    char down_state[6];
    /* The batch strategy (batch.c). */
    pgbank__lane *lanes;
    int nlanes;
    pgbank__batch *batches;    /* opt.batch_inflight per lane */
    pgbank__batch *free_batch; /* the ones not in flight */
    uint64_t batches_sent, batched_ops, crossings;
    uint64_t rng; /* jitter */
    char error[512];
};

/* An operation's private part: pgbank_op.priv, seen through OP(). */
typedef struct pgbank__op_private {
    pgbank_op *next;    /* in the engine's queue, a lane's, a batch, the held or delayed list */
    pgbank_op *next2;   /* a transfer between two lanes: in its second lane's queue */
    int lane, lane2;    /* the batch strategy's lanes (lane2 -1: one lane) */
    pgbank__node node;  /* in flight on a connection (ops.c's sink) */
    pgbank__conn *conn; /* the connection it runs on */
    int state;          /* ST_*: the step in flight */
    int flags;          /* OPF_* */
    int nres;           /* results of the step so far */
    int ntuples;        /* tuple results of the step so far */
    int tries;          /* atomic re-reads; attempts after a lost connection */
    int retries;        /* serializable retries */
    int outcome;        /* an outcome code (refusals, keys) */
    int64_t seen;       /* the balance read (or the new account's id) */
    int64_t seen2;      /* a transfer's destination balance */
    int64_t submitted_ns;
    int64_t first_try_ns;
    int64_t wake_ns; /* a delayed retry's time */
    pgbank_gate *gate; /* pgbank_submit_gated()'s, or NULL */
} pgbank__op_private;

_Static_assert(sizeof(pgbank__op_private) <= sizeof(((pgbank_op *)0)->priv),
               "pgbank_op.priv is too small for the engine's private part");

#define OP(op) ((pgbank__op_private *)(void *)(op)->priv.bytes)
#define OP_OF_NODE(n)                                                                              \
    ((pgbank_op *)(void *)((char *)(n) - offsetof(pgbank__op_private, node) -                     \
                           offsetof(pgbank_op, priv)))

/* Operation flags (OP(op)->flags). */
enum {
    OPF_WRITE_SENT = 1 << 0, /* a write that commits was sent: loss => unknown outcome */
    OPF_FOUND = 1 << 1,      /* the step's statement returned a row (value in seen) */
    OPF_ERROR = 1 << 2,      /* a statement failed: sqlstate/message in result */
    OPF_NOROW = 1 << 3,      /* an UPDATE matched no row */
    OPF_ARRIVED = 1 << 4,    /* counted at its gate */
    OPF_COMPLETED = 1 << 5,  /* the result is final */
    OPF_DEFER = 1 << 6,      /* status decided; the rollback is in flight */
    OPF_IN_TX = 1 << 7,      /* BEGIN was sent and no COMMIT/ROLLBACK has ended it */
    OPF_FOUND2 = 1 << 8,     /* the transfer's destination row was seen (seen2) */
    OPF_KEY_MATCH = 1 << 9,  /* a stored key matches this operation's parameters */
    OPF_RETRY = 1 << 10,     /* rolling back to retry (serializable) */
    OPF_RESOLVING = 1 << 11, /* a keyed operation re-run after its connection died */
    OPF_INDOUBT = 1 << 12,   /* ... and its COMMIT had been sent */
    OPF_DEBIT_OK = 1 << 13,  /* atomic transaction: the guarded debit matched */
    OPF_CREDIT_OK = 1 << 14, /* atomic transaction: the credit matched */
    OPF_BALANCE_HIDDEN = 1 << 15, /* a refusal's balance this role may not read */
    OPF_CROSSING = 1 << 16   /* a transfer between two lanes, in flight */
};

/* Operation states (OP(op)->state): the SQL step in flight. */
enum {
    ST_QUEUED = 0,
    ST_READ,        /* BEGIN; SELECT balance [FOR UPDATE] */
    ST_GATE,        /* read done, held at the gate (transaction open) */
    ST_WRITE,       /* UPDATE ... SET balance = computed; COMMIT */
    ST_ROLLBACK,    /* ROLLBACK after a refusal or an error */
    ST_ATOMIC,      /* the guarded UPDATE ... RETURNING */
    ST_ATOMIC_SEEN, /* after a refusal: SELECT balance, to say why */
    ST_ATOMIC_ONE,  /* Citus: pgbank_atomic_one(), status and balance */
    ST_BALANCE,     /* SELECT balance */
    ST_OPEN,        /* INSERT ... RETURNING id */
    ST_KEY,         /* BEGIN; claim the idempotency key */
    ST_KEY_READ,    /* the key was taken: read what it recorded */
    ST_REFUSE_KEY,  /* record a refusal under the key; COMMIT */
    ST_ATOMIC_TX,   /* BEGIN; guarded single statements in id order */
    ST_ATOMIC_TX_SEEN, /* a guard failed: [ROLLBACK TO SAVEPOINT;] SELECT balance */
    ST_COMMIT,      /* [record the key;] COMMIT */
    ST_BATCH        /* in a batch (batch.c) */
};

/* --- core.c: services every part uses ---------------------------------- */
void pgbank__engine_complete(pgbank_engine *eng, pgbank_op *op, pgbank_status st);
void pgbank__engine_set_error(pgbank_engine *eng, const char *msg);
void pgbank__engine_fail_queue(pgbank_engine *eng, const char *sqlstate, const char *msg);
/* Ends op with status st and the message; an operation in doubt (its COMMIT
 * sent before its connection died) ends as an unknown outcome instead. */
void pgbank__op_fail(pgbank_engine *eng, pgbank_op *op, const char *sqlstate, const char *msg,
                     pgbank_status st);
/* Ends op at once when the probed schema says it is invalid: returns 1
 * then, else 0. */
int pgbank__op_refuse_invalid(pgbank_engine *eng, pgbank_op *op);
void pgbank__engine_requeue(pgbank_engine *eng, pgbank_op *op);
void pgbank__engine_delay(pgbank_engine *eng, pgbank_op *op, int64_t wake_ns);
void pgbank__op_set_message(pgbank_engine *eng, pgbank_op *op, const char *sqlstate, const char *msg);
/* Counts op at its gate (once); sets eng->gates_full when the gate is full. */
void pgbank__gate_count(pgbank_engine *eng, pgbank_op *op);
/* The operation's connection died in flight: a keyed one runs again (its
 * key decides), else unknown outcome when a commit may have happened. */
void pgbank__op_lost(pgbank_engine *eng, pgbank_op *op, const char *msg);
/* What makes op invalid against the probed schema, or NULL (*st: the status). */
const char *pgbank__op_invalid(const pgbank_engine *eng, const pgbank_op *op, pgbank_status *st);
int pgbank__op_moves_money(const pgbank_op *op);
/* An outcome code's status; for an operation, its status with
 * result.message (and sqlstate) set from the code, OP(op)->outcome kept. */
pgbank_status pgbank__outcome_status(int outcome);
pgbank_status pgbank__op_outcome(pgbank_engine *eng, pgbank_op *op, int outcome);

/* --- conn.c --------------------------------------------------------------- */
void pgbank__conn_open(pgbank__conn *c);
void pgbank__conn_handle(pgbank__conn *c, int events);
void pgbank__conn_timeout(pgbank__conn *c, int64_t now);
void pgbank__conn_close(pgbank__conn *c);
/* Puts n (with its sink set) at the end of the work in flight; takes it
 * out again (work that waits with no Sync in flight, such as an operation
 * held at its gate). */
void pgbank__conn_push(pgbank__conn *c, pgbank__node *n);
void pgbank__conn_take(pgbank__conn *c, pgbank__node *n);
int pgbank__conn_send(pgbank__conn *c, pgbank__sql_id id, const char *const *values);
/* The same with every parameter in binary (lengths given); `shown` is what
 * the echo prints for them (text), read only when echo is on. */
int pgbank__conn_send_binary(pgbank__conn *c, pgbank__sql_id id, const char *const *values,
                             const int *lengths, const char *const *shown);
int pgbank__conn_sync(pgbank__conn *c);
/* The connection broke: every node in flight is lost, it reopens later
 * (never while the engine is closing). */
void pgbank__conn_fail(pgbank__conn *c, const char *sqlstate, const char *msg);
int pgbank__conn_live(const pgbank_engine *eng);

/* --- ops.c ------------------------------------------------------------------ */
int pgbank__op_is_multistep(const pgbank_op *op);
int pgbank__op_start(pgbank__conn *c, pgbank_op *op);
/* Sends the held operations of every full gate on to their write. */
void pgbank__ops_release_gates(pgbank_engine *eng);

/* --- batch.c ---------------------------------------------------------------- */
/* Sets up the lanes (on the last eng->nlanes connections) and their batches. */
int pgbank__batch_setup(pgbank_engine *eng);
void pgbank__batch_teardown(pgbank_engine *eng);
int pgbank__is_batched(const pgbank_op *op);

/* --- lanemap.c -------------------------------------------------------------- */
/* The lane that owns an account: the one seam between the batch strategy
 * and how accounts are spread (a hash of the id; on Citus, whole shards). */
int pgbank__lane_of(const pgbank_engine *eng, int64_t account);
/* PostgreSQL's hashint8(): the hash Citus places a bigint id by. */
int32_t pgbank__hash_int8(int64_t v);
/* Citus: the index of the accounts' shard holding `account` (0 when the
 * shards are not known). */
int pgbank__shard_of(const pgbank_engine *eng, int64_t account);

/* --- batch.c (the lanes' queues) ------------------------------------------- */
/* An accepted batched operation joins its lane's queue (a transfer between
 * two lanes joins both). */
void pgbank__batch_enqueue(pgbank_engine *eng, pgbank_op *op);
/* A keyed batched operation to run again (its connection died): first in
 * its lane(s), before what arrived after it. */
void pgbank__batch_requeue(pgbank_engine *eng, pgbank_op *op);
/* Sends what every lane can send now. */
void pgbank__batch_dispatch(pgbank_engine *eng);
/* Ends every operation waiting in a lane: `st` with `msg` (shut down, or
 * no connection left); in_doubt ones (a keyed operation re-run after its
 * COMMIT was sent) as unknown outcome. */
void pgbank__batch_fail_queued(pgbank_engine *eng, pgbank_status st, const char *sqlstate,
                               const char *msg);

/* --- engine.c --------------------------------------------------------------- */
void pgbank__engine_dispatch(pgbank_engine *eng);
void pgbank__engine_after(pgbank_engine *eng);
void pgbank__engine_timers(pgbank_engine *eng);
int64_t pgbank__engine_next_deadline(pgbank_engine *eng);

#endif
