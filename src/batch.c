/*
 * batch.c - the batch strategy: the operations waiting in the queue go to
 * the server together, as arrays, through pgbank_batch() (schema.c): one
 * round trip, one commit, one result per operation.  Batch size follows
 * load: at most opt.batch_inflight batches are in flight; an operation that
 * finds a slot free leaves at once (a batch of one), the ones that arrive
 * while the slots are busy leave together with the next free slot.  The
 * array text is built in a buffer owned by the connection and reused, so
 * no memory is allocated per operation.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Takes the batched operations from the queue, in arrival order, validates
 * them, and sends one batch on connection c.  Returns -1 when the
 * connection broke (its operations are ended by the caller's conn_fail). */
/* An operation alone in the queue while no batch is in flight goes through
 * pgbank_batch_one(): the same result, without the arrays' fixed cost, so a
 * quiet system answers at the atomic strategy's latency.  It takes the
 * batch slot like any batch, so arrival order holds.  Transfers always take
 * the array path. */
static pgbank_op *solo_candidate(pgbank_engine *eng)
{
    pgbank_op *found = NULL;
    for (pgbank_op *op = eng->queue_head; op; op = op->priv.next) {
        if (!pgbank__is_batched(op))
            continue;
        if (op->key)
            return found ? NULL : op; /* a keyed operation goes alone, in its turn */
        if (found || eng->batches_inflight > 0)
            return NULL; /* two or more, or a busy system: a batch */
        found = op;
    }
    return found && found->kind != PGBANK_OP_TRANSFER ? found : NULL;
}

static void unlink_op(pgbank_engine *eng, pgbank_op *op)
{
    pgbank_op **pp = &eng->queue_head, *prev = NULL;
    while (*pp != op) {
        prev = *pp;
        pp = &(*pp)->priv.next;
    }
    *pp = op->priv.next;
    if (eng->queue_tail == op)
        eng->queue_tail = prev;
    op->priv.next = NULL;
}

int pgbank__batch_send(pgbank__conn *c)
{
    pgbank_engine *eng = c->eng;
    pgbank_op *solo = solo_candidate(eng);
    if (solo) {
        unlink_op(eng, solo);
        pgbank_status st;
        const char *bad = pgbank__op_invalid(eng, solo, &st);
        if (bad) {
            pgbank__op_set_message(eng, solo, "", bad);
            pgbank__engine_complete(eng, solo, st);
            return 0;
        }
        solo->priv.flags = OPF_WRITE_SENT;
        solo->priv.state = ST_BATCH;
        pgbank__conn_push(c, solo);
        char v[4][24];
        snprintf(v[0], sizeof v[0], "%d", batch_kind(solo));
        snprintf(v[1], sizeof v[1], "%lld", (long long)solo->account);
        snprintf(v[2], sizeof v[2], "%lld", (long long)solo->to_account);
        snprintf(v[3], sizeof v[3], "%lld", (long long)solo->amount);
        c->batch = 1;
        c->solo = solo->key ? BATCH_KEYED : BATCH_ONE;
        eng->batches_inflight++;
        eng->batches_sent++;
        eng->batched_ops++;
        int rc;
        if (solo->key) {
            const char *p[5] = {v[0], v[1], solo->kind == PGBANK_OP_TRANSFER ? v[2] : NULL, v[3],
                                solo->key};
            rc = pgbank__conn_send(c, SQL_KEYED, p);
        } else {
            const char *p[3] = {v[0], v[1], v[3]};
            rc = pgbank__conn_send(c, SQL_BATCH_ONE, p);
        }
        return rc < 0 ? -1 : pgbank__conn_sync(c);
    }
    int n = 0;
    pgbank_op **pp = &eng->queue_head, *prev = NULL;
    while (*pp && n < eng->opt.batch_max) {
        pgbank_op *op = *pp;
        if (!pgbank__is_batched(op)) {
            prev = op;
            pp = &op->priv.next;
            continue;
        }
        if (op->key)
            break; /* it goes alone, after this batch: arrival order holds */
        *pp = op->priv.next; /* unlink */
        if (eng->queue_tail == op)
            eng->queue_tail = prev;
        pgbank_status st;
        const char *bad = pgbank__op_invalid(eng, op, &st);
        if (bad) {
            pgbank__op_set_message(eng, op, "", bad);
            pgbank__engine_complete(eng, op, st);
            continue;
        }
        op->priv.flags = OPF_WRITE_SENT;
        op->priv.state = ST_BATCH;
        pgbank__conn_push(c, op);
        n++;
    }
    if (n == 0)
        return 0;
    /* Four arrays of at most 21 characters per element. */
    size_t need = (size_t)n * 4 * 22 + 64;
    if (c->bufcap < need) {
        char *nb = realloc(c->buf, need * 2);
        if (!nb)
            return -1;
        c->buf = nb;
        c->bufcap = need * 2;
    }
    char *p = c->buf;
    const char *v[4];
    for (int a = 0; a < 4; a++) {
        v[a] = p;
        *p++ = '{';
        for (pgbank_op *op = c->head; op; op = op->priv.next) {
            if (op != c->head)
                *p++ = ',';
            switch (a) {
            case 0: p = put_i64(p, batch_kind(op)); break;
            case 1: p = put_i64(p, op->account); break;
            case 2:
                if (op->kind == PGBANK_OP_TRANSFER)
                    p = put_i64(p, op->to_account);
                else {
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
    c->batch = n;
    c->solo = BATCH_ARRAYS;
    eng->batches_inflight++;
    eng->batches_sent++;
    eng->batched_ops += (uint64_t)n;
    if (pgbank__conn_send(c, SQL_BATCH, v) < 0)
        return -1;
    return pgbank__conn_sync(c);
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

void pgbank__batch_result(pgbank__conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (st != PGRES_TUPLES_OK) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        for (pgbank_op *op = c->head; op; op = op->priv.next) {
            pgbank__op_set_message(c->eng, op, ss ? ss : PGBANK_SQLSTATE_INTERNAL_ERROR,
                                   m ? m : PQresultErrorMessage(r));
            op->priv.flags |= OPF_ERROR;
        }
        return;
    }
    if (PQntuples(r) != 1)
        return;
    if (c->solo != BATCH_ARRAYS) {
        pgbank_op *op = c->head;
        op->priv.flags |= OPF_FOUND;
        op->priv.outcome = atoi(PQgetvalue(r, 0, 0));
        op->result.balance = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        if (PQgetisnull(r, 0, 1))
            op->priv.flags |= OPF_BALANCE_HIDDEN;
        if (c->solo == BATCH_KEYED) {
            op->result.to_balance = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
            op->result.replayed = PQgetvalue(r, 0, 3)[0] == 't';
        }
        return;
    }
    const char *s = PQgetvalue(r, 0, 0), *b = PQgetvalue(r, 0, 1), *t = PQgetvalue(r, 0, 2);
    for (pgbank_op *op = c->head; op; op = op->priv.next) {
        int64_t code, bal, to_bal;
        int n1, n2, n3;
        s = next_elem(s, &code, &n1);
        b = next_elem(b, &bal, &n2);
        t = next_elem(t, &to_bal, &n3);
        op->priv.flags |= OPF_FOUND;
        op->priv.outcome = (int)code;
        op->result.balance = n2 ? 0 : bal;
        if (n2 && code == OUTCOME_INSUFFICIENT_FUNDS)
            op->priv.flags |= OPF_BALANCE_HIDDEN;
        op->result.to_balance = n3 ? 0 : to_bal;
    }
}

/* The batch committed (or failed as a whole): every operation ends. */
int pgbank__batch_synced(pgbank__conn *c)
{
    pgbank_engine *eng = c->eng;
    pgbank_op *op;
    c->batch = 0;
    c->solo = 0;
    eng->batches_inflight--;
    while ((op = c->head) != NULL) {
        c->head = op->priv.next;
        c->inflight--;
        int f = op->priv.flags;
        if (f & OPF_ERROR) {
            int overflow = pgbank__sqlstate_is(op->result.sqlstate,
                                               PGBANK_SQLSTATE_NUMERIC_OUT_OF_RANGE);
            pgbank__engine_complete(eng, op, overflow ? PGBANK_INVALID_AMOUNT : PGBANK_DB_ERROR);
            continue;
        }
        if (!(f & OPF_FOUND)) {
            pgbank__op_set_message(eng, op, "", "the batch returned no result");
            pgbank__engine_complete(eng, op, PGBANK_DB_ERROR);
            continue;
        }
        /* A keyed operation re-run after its connection died reports its
         * own first attempt's outcome: not a replay. */
        if (f & OPF_RESOLVING)
            op->result.replayed = 0;
        pgbank__engine_complete(eng, op, pgbank__op_outcome(eng, op, op->priv.outcome));
    }
    c->tail = NULL;
    c->inflight = 0;
    return 0;
}
