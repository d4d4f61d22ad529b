/*
 * batch.c - the batch strategy: the operations waiting in the queue go to
 * the server together, as arrays, through pgbank_batch() (schema_sql.c):
 * one round trip, one commit, one result per operation.  Batch size follows
 * load: at most opt.batch_inflight batches are in flight; an operation that
 * finds a slot free leaves at once (a batch of one, through
 * pgbank_batch_one()), the ones that arrive while the slots are busy leave
 * together with the next free slot.  A keyed operation leaves alone, in its
 * turn, through pgbank_keyed().
 *
 * A batch is a pgbank__batch owned here: its node in the connection's
 * pipeline, its operations, and the array text built in a buffer of its own
 * that is reused, so no memory is allocated per operation.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a batch was sent. */
enum { BATCH_ARRAYS = 1, BATCH_ONE, BATCH_KEYED };

struct pgbank__batch {
    pgbank__node node;       /* in flight on a connection */
    pgbank__batch *next_free;
    pgbank_op *head, *tail;  /* its operations, in arrival order */
    int n;
    int mode;                /* BATCH_* */
    char *buf;               /* the arrays' text */
    size_t bufcap;
};

#define BATCH_OF_NODE(n) ((pgbank__batch *)(void *)((char *)(n) - offsetof(pgbank__batch, node)))

static const pgbank__sink batch_sink;

int pgbank__batch_setup(pgbank_engine *eng)
{
    int n = eng->opt.batch_inflight;
    eng->batches = calloc((size_t)n, sizeof *eng->batches);
    if (!eng->batches)
        return PGBANK_ENOMEM;
    for (int i = 0; i < n; i++) {
        eng->batches[i].node.sink = &batch_sink;
        eng->batches[i].next_free = i + 1 < n ? &eng->batches[i + 1] : NULL;
    }
    eng->free_batch = &eng->batches[0];
    return 0;
}

void pgbank__batch_teardown(pgbank_engine *eng)
{
    for (int i = 0; eng->batches && i < eng->opt.batch_inflight; i++)
        free(eng->batches[i].buf);
    free(eng->batches);
    eng->batches = NULL;
}

int pgbank__batch_ready(const pgbank_engine *eng)
{
    return eng->free_batch != NULL;
}

static int batch_kind(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_WITHDRAW  ? SQL_KIND_WITHDRAW
           : op->kind == PGBANK_OP_DEPOSIT ? SQL_KIND_DEPOSIT
                                           : SQL_KIND_TRANSFER;
}

int pgbank__is_batched(const pgbank_op *op)
{
    return op->strategy == PGBANK_BATCH &&
           (op->kind == PGBANK_OP_WITHDRAW || op->kind == PGBANK_OP_DEPOSIT ||
            op->kind == PGBANK_OP_TRANSFER);
}

static char *put_i64(char *p, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* An operation alone in the queue while no batch is in flight goes through
 * pgbank_batch_one(): the same result, without the arrays' fixed cost, so a
 * quiet system answers at the atomic strategy's latency; a keyed operation
 * at the front goes through pgbank_keyed().  Either takes a batch slot like
 * any batch, so arrival order holds.  Transfers take the array path. */
static pgbank_op *solo_candidate(const pgbank_engine *eng, int busy)
{
    pgbank_op *found = NULL;
    for (pgbank_op *op = eng->queue_head; op; op = OP(op)->next) {
        if (!pgbank__is_batched(op))
            continue;
        if (op->key)
            return found ? NULL : op;
        if (found || busy)
            return NULL; /* two or more, or a busy system: a batch */
        found = op;
    }
    return found && found->kind != PGBANK_OP_TRANSFER ? found : NULL;
}

static void unlink_op(pgbank_engine *eng, pgbank_op *op, pgbank_op *prev)
{
    if (prev)
        OP(prev)->next = OP(op)->next;
    else
        eng->queue_head = OP(op)->next;
    if (eng->queue_tail == op)
        eng->queue_tail = prev;
    OP(op)->next = NULL;
}

/* Adds op to b, or ends it at once when the schema says it is invalid. */
static int take(pgbank_engine *eng, pgbank__batch *b, pgbank_op *op)
{
    pgbank_status st;
    const char *bad = pgbank__op_invalid(eng, op, &st);
    if (bad) {
        pgbank__op_set_message(eng, op, "", bad);
        pgbank__engine_complete(eng, op, st);
        return 0;
    }
    OP(op)->flags = OPF_WRITE_SENT;
    OP(op)->state = ST_BATCH;
    OP(op)->next = NULL;
    if (b->tail)
        OP(b->tail)->next = op;
    else
        b->head = op;
    b->tail = op;
    b->n++;
    return 1;
}

static int send_solo(pgbank__conn *c, pgbank__batch *b)
{
    pgbank_op *op = b->head;
    char v[4][24];
    snprintf(v[0], sizeof v[0], "%d", batch_kind(op));
    snprintf(v[1], sizeof v[1], "%lld", (long long)op->account);
    snprintf(v[2], sizeof v[2], "%lld", (long long)op->to_account);
    snprintf(v[3], sizeof v[3], "%lld", (long long)op->amount);
    if (op->key) {
        b->mode = BATCH_KEYED;
        const char *p[5] = {v[0], v[1], op->kind == PGBANK_OP_TRANSFER ? v[2] : NULL, v[3],
                            op->key};
        return pgbank__conn_send(c, SQL_KEYED, p);
    }
    b->mode = BATCH_ONE;
    const char *p[3] = {v[0], v[1], v[3]};
    return pgbank__conn_send(c, SQL_BATCH_ONE, p);
}

static int send_arrays(pgbank__conn *c, pgbank__batch *b)
{
    /* Four arrays of at most 21 characters per element. */
    size_t need = (size_t)b->n * 4 * 22 + 64;
    if (b->bufcap < need) {
        char *nb = realloc(b->buf, need * 2);
        if (!nb)
            return -1;
        b->buf = nb;
        b->bufcap = need * 2;
    }
    char *p = b->buf;
    const char *v[4];
    for (int a = 0; a < 4; a++) {
        v[a] = p;
        *p++ = '{';
        for (pgbank_op *op = b->head; op; op = OP(op)->next) {
            if (op != b->head)
                *p++ = ',';
            switch (a) {
            case 0: p = put_i64(p, batch_kind(op)); break;
            case 1: p = put_i64(p, op->account); break;
            case 2:
                if (op->kind == PGBANK_OP_TRANSFER) {
                    p = put_i64(p, op->to_account);
                } else {
                    memcpy(p, "NULL", 4);
                    p += 4;
                }
                break;
            default: p = put_i64(p, op->amount); break;
            }
        }
        *p++ = '}';
        *p++ = '\0';
    }
    b->mode = BATCH_ARRAYS;
    return pgbank__conn_send(c, SQL_BATCH, v);
}

int pgbank__batch_send(pgbank__conn *c)
{
    pgbank_engine *eng = c->eng;
    pgbank__batch *b = eng->free_batch;
    if (!b)
        return 0;
    b->head = b->tail = NULL;
    b->n = 0;
    pgbank_op *solo = solo_candidate(eng, eng->batches_busy > 0);
    if (solo) {
        pgbank_op *prev = NULL;
        for (pgbank_op *op = eng->queue_head; op != solo; op = OP(op)->next)
            prev = op;
        unlink_op(eng, solo, prev);
        take(eng, b, solo);
    } else {
        pgbank_op *op = eng->queue_head, *prev = NULL;
        while (op && b->n < eng->opt.batch_max) {
            pgbank_op *next = OP(op)->next;
            if (!pgbank__is_batched(op)) {
                prev = op;
                op = next;
                continue;
            }
            if (op->key)
                break; /* it goes alone, after this batch: arrival order holds */
            unlink_op(eng, op, prev);
            take(eng, b, op);
            op = next;
        }
    }
    if (b->n == 0)
        return 0;
    eng->free_batch = b->next_free;
    b->next_free = NULL;
    eng->batches_busy++;
    eng->batches_sent++;
    eng->batched_ops += (uint64_t)b->n;
    c->exclusive = 1; /* a batch has its connection to itself */
    pgbank__conn_push(c, &b->node);
    int rc = solo ? send_solo(c, b) : send_arrays(c, b);
    return rc < 0 ? -1 : pgbank__conn_sync(c);
}

/* Reads the next element of a text array ("{1,NULL,-3}"); *isnull for NULL. */
static const char *next_elem(const char *p, int64_t *out, int *isnull)
{
    while (*p == '{' || *p == ',')
        p++;
    *isnull = 0;
    *out = 0;
    if (strncmp(p, "NULL", 4) == 0) {
        *isnull = 1;
        return p + 4;
    }
    char *end;
    *out = strtoll(p, &end, 10);
    return end;
}

static void batch_result(pgbank__conn *c, pgbank__node *n, PGresult *r)
{
    pgbank__batch *b = BATCH_OF_NODE(n);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (st != PGRES_TUPLES_OK) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        for (pgbank_op *op = b->head; op; op = OP(op)->next) {
            pgbank__op_set_message(c->eng, op, ss ? ss : PGBANK_SQLSTATE_INTERNAL_ERROR,
                                   m ? m : PQresultErrorMessage(r));
            OP(op)->flags |= OPF_ERROR;
        }
        return;
    }
    if (PQntuples(r) != 1)
        return;
    if (b->mode != BATCH_ARRAYS) {
        pgbank_op *op = b->head;
        OP(op)->flags |= OPF_FOUND;
        OP(op)->outcome = atoi(PQgetvalue(r, 0, 0));
        op->result.balance = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        if (PQgetisnull(r, 0, 1))
            OP(op)->flags |= OPF_BALANCE_HIDDEN;
        if (b->mode == BATCH_KEYED) {
            op->result.to_balance = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
            op->result.replayed = PQgetvalue(r, 0, 3)[0] == 't';
        }
        return;
    }
    const char *s = PQgetvalue(r, 0, 0), *bl = PQgetvalue(r, 0, 1), *t = PQgetvalue(r, 0, 2);
    for (pgbank_op *op = b->head; op; op = OP(op)->next) {
        int64_t code, bal, to_bal;
        int n1, n2, n3;
        s = next_elem(s, &code, &n1);
        bl = next_elem(bl, &bal, &n2);
        t = next_elem(t, &to_bal, &n3);
        OP(op)->flags |= OPF_FOUND;
        OP(op)->outcome = (int)code;
        op->result.balance = n2 ? 0 : bal;
        op->result.to_balance = n3 ? 0 : to_bal;
        if (n2 && code == OUTCOME_INSUFFICIENT_FUNDS)
            OP(op)->flags |= OPF_BALANCE_HIDDEN;
    }
}

/* The batch's slot is free again; its operations are the caller's. */
static pgbank_op *release(pgbank_engine *eng, pgbank__conn *c, pgbank__batch *b)
{
    pgbank_op *ops = b->head;
    b->head = b->tail = NULL;
    b->n = 0;
    b->next_free = eng->free_batch;
    eng->free_batch = b;
    eng->batches_busy--;
    c->exclusive = 0;
    return ops;
}

/* The batch committed (or failed as a whole): every operation ends. */
static int batch_synced(pgbank__conn *c, pgbank__node *n)
{
    pgbank_engine *eng = c->eng;
    pgbank_op *op = release(eng, c, BATCH_OF_NODE(n));
    while (op) {
        pgbank_op *next = OP(op)->next;
        int f = OP(op)->flags;
        if (f & OPF_ERROR) {
            int overflow = pgbank__sqlstate_is(op->result.sqlstate,
                                               PGBANK_SQLSTATE_NUMERIC_OUT_OF_RANGE);
            pgbank__engine_complete(eng, op, overflow ? PGBANK_INVALID_AMOUNT : PGBANK_DB_ERROR);
        } else if (!(f & OPF_FOUND)) {
            pgbank__op_set_message(eng, op, "", "the batch returned no result");
            pgbank__engine_complete(eng, op, PGBANK_DB_ERROR);
        } else {
            /* A keyed operation re-run after its connection died reports
             * its own first attempt's outcome: not a replay. */
            if (f & OPF_RESOLVING)
                op->result.replayed = 0;
            pgbank__engine_complete(eng, op, pgbank__op_outcome(eng, op, OP(op)->outcome));
        }
        op = next;
    }
    return 0;
}

static void batch_lost(pgbank__conn *c, pgbank__node *n, const char *msg)
{
    pgbank_engine *eng = c->eng;
    pgbank_op *op = release(eng, c, BATCH_OF_NODE(n));
    while (op) {
        pgbank_op *next = OP(op)->next;
        pgbank__op_lost(eng, op, msg);
        op = next;
    }
}

static const pgbank__sink batch_sink = {batch_result, batch_synced, batch_lost};
