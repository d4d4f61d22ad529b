/*
 * engine.h - the engine's private structures, shared by its parts:
 * conn.c (one connection's state machine), engine.c (pool, queue, dispatch,
 * completions, loop callbacks), loop.c (the built-in poll loop) and ops.c
 * (each operation's SQL steps).
 */
#ifndef PGBANK_ENGINE_H
#define PGBANK_ENGINE_H

#include "internal.h"
#include "sql.h"
#include "sqlstate.h"

#include <libpq-fe.h>
#include <poll.h>

/* One connection, advanced by conn.c. */
typedef enum pgbank__conn_state {
    CONN_IDLE,       /* no socket: never opened, or closed for good */
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_PROBING,    /* pipeline mode; the accounts table's shape asked */
    CONN_PREPARING,  /* the statements being prepared */
    CONN_READY,      /* takes operations */
    CONN_BROKEN      /* failed; reopens at deadline_ns */
} pgbank__conn_state;

typedef struct pgbank__conn {
    pgbank_engine *eng;
    PGconn *pg;
    pgbank__conn_state state;
    int fd;                 /* PQsocket(), -1 when none */
    int want;               /* PGBANK_POLL_* the connection waits for */
    int told_fd, told_want; /* what the application's loop was last told */
    pgbank_op *head, *tail; /* operations in flight, in the order of their Syncs */
    int inflight;
    int exclusive; /* a multi-step transaction owns the connection */
    int in_cmd;     /* a command's results are being read (a NULL ends them) */
    int after_sync; /* the last result was a Sync (libpq may add a NULL) */
    int setup_failed;
    char setup_state[6];
    char setup_msg[256];
    int64_t deadline_ns; /* connect timeout, or reopen time when broken */
    int backoff_ms;
    int batch;     /* operations in the batch in flight (batch.c), 0 if none */
    int solo;      /* how it was sent: BATCH_ARRAYS, BATCH_ONE or BATCH_KEYED */
    char *buf;     /* the batch's array text, reused */
    size_t bufcap;
} pgbank__conn;

struct pgbank_engine {
    pgbank_options opt;
    char *conninfo;
    pgbank__conn *conns;
    int nconns;
    struct pollfd *pollfds; /* the built-in loop's arrays, one slot per connection */
    int *pollidx;
    int next_conn;                    /* where the dispatcher's scan starts */
    pgbank_op *queue_head, *queue_tail; /* accepted, not yet on a connection */
    pgbank_op *done_head, *done_tail;   /* ended, callback not yet run */
    size_t pending;
    int want_pool; /* keep every connection open (after connect or a submit) */
    int closing;   /* pgbank_engine_free() is running */
    int in_callbacks; /* completion callbacks are running */
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
    int schema_error; /* the last connection failed on the schema, not the network */
    pgbank_op *delayed; /* serializable retries waiting for their backoff */
    int batches_inflight;
    uint64_t batches_sent, batched_ops;
    uint64_t rng;       /* jitter */
    char error[512];
};

/* How the batch in flight on a connection was sent. */
enum { BATCH_ARRAYS = 1, BATCH_ONE, BATCH_KEYED };

/* Operation flags (op->priv.flags). */
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
    OPF_BALANCE_HIDDEN = 1 << 15 /* a refusal's balance this role may not read */
};

/* Operation states (op->priv.state): the SQL step in flight. */
enum {
    ST_QUEUED = 0,
    ST_READ,        /* BEGIN; SELECT balance [FOR UPDATE] */
    ST_GATE,        /* read done, held at the gate (transaction open) */
    ST_WRITE,       /* UPDATE ... SET balance = computed; COMMIT */
    ST_ROLLBACK,    /* ROLLBACK after a refusal or an error */
    ST_ATOMIC,      /* the guarded UPDATE ... RETURNING */
    ST_ATOMIC_SEEN, /* after a refusal: SELECT balance, to say why */
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

/* conn.c */
void pgbank__conn_open(pgbank__conn *c);
void pgbank__conn_handle(pgbank__conn *c, int events);
void pgbank__conn_timeout(pgbank__conn *c, int64_t now);
void pgbank__conn_close(pgbank__conn *c);
int pgbank__conn_send(pgbank__conn *c, pgbank__sql_id id, const char *const *values);
int pgbank__conn_sync(pgbank__conn *c);
void pgbank__conn_fail(pgbank__conn *c, const char *sqlstate, const char *msg);

/* engine.c */
void pgbank__engine_dispatch(pgbank_engine *eng);
void pgbank__engine_complete(pgbank_engine *eng, pgbank_op *op, pgbank_status st);
void pgbank__engine_after(pgbank_engine *eng);
void pgbank__engine_timers(pgbank_engine *eng);
int64_t pgbank__engine_next_deadline(pgbank_engine *eng);
void pgbank__engine_set_error(pgbank_engine *eng, const char *msg);
void pgbank__engine_fail_queue(pgbank_engine *eng, const char *sqlstate, const char *msg);
void pgbank__engine_requeue(pgbank_engine *eng, pgbank_op *op);
void pgbank__engine_delay(pgbank_engine *eng, pgbank_op *op, int64_t wake_ns);
void pgbank__op_set_message(pgbank_engine *eng, pgbank_op *op, const char *sqlstate, const char *msg);

/* outcome.c: an outcome code's status; and, for an operation, its status
 * with result.message (and sqlstate) set from the code, priv.outcome kept. */
pgbank_status pgbank__outcome_status(int outcome);
pgbank_status pgbank__op_outcome(pgbank_engine *eng, pgbank_op *op, int outcome);

/* batch.c */
int pgbank__is_batched(const pgbank_op *op);
int pgbank__batch_send(pgbank__conn *c);
void pgbank__batch_result(pgbank__conn *c, PGresult *r);
int pgbank__batch_synced(pgbank__conn *c);

/* ops.c */
int pgbank__op_is_multistep(const pgbank_op *op);
const char *pgbank__op_invalid(const pgbank_engine *eng, const pgbank_op *op, pgbank_status *st);
int pgbank__op_start(pgbank__conn *c, pgbank_op *op);
void pgbank__op_result(pgbank__conn *c, pgbank_op *op, PGresult *r);
int pgbank__op_synced(pgbank__conn *c, pgbank_op *op);
void pgbank__conn_push(pgbank__conn *c, pgbank_op *op);
void pgbank__op_lost(pgbank__conn *c, pgbank_op *op, const char *msg);
void pgbank__gate_arrive(pgbank_engine *eng, pgbank_op *op);

#endif
