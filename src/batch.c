/*
 * batch.c - the batch strategy: operations go to the server together, as
 * arrays, through pgbank_batch() (schema_fn.c): one round trip, one commit,
 * one result per operation, as if they ran one by one in arrival order.
 *
 * Lanes.  Every account belongs to one lane (pgbank__lane_of); each lane
 * has a connection of its own and a queue of the operations on its
 * accounts, in arrival order.  A lane sends its waiting operations as one
 * batch whenever it has a batch slot free (opt.batch_inflight per lane,
 * pipelined on its connection), so batch size follows load: an operation
 * that finds its lane idle leaves at once (alone, through
 * pgbank_batch_one()), the ones that arrive meanwhile leave together.
 * Batches of different lanes never touch the same row: they run in
 * parallel on the server without waiting for each other's row locks.
 *
 * Order, per account, is arrival order: a lane's batches run one after the
 * other on its one connection, each applying its operations in order.  A
 * keyed operation leaves alone, in its turn, through pgbank_keyed().  A
 * transfer between two lanes ("a crossing") sits in both lanes' queues: it
 * leaves when it is first in both and both lanes are idle, alone, on its
 * first lane's connection (the server locks its two rows in id order), and
 * both lanes hold everything behind it until it is done (docs/LANES.md).
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
    pgbank__node node; /* in flight on a connection */
    pgbank__batch *next_free;
    pgbank__lane *lane;     /* whose batch */
    pgbank_op *head, *tail; /* its operations, in arrival order */
    int n;
    int mode;  /* BATCH_* */
    char *buf; /* the arrays' text */
    size_t bufcap;
    /* The fast path's answer: each account's balance before the batch
     * (by id), then the running balance as its operations are added up. */
    int64_t *acct, *run;
    size_t nacct, acctcap;
};

#define BATCH_OF_NODE(n) ((pgbank__batch *)(void *)((char *)(n) - offsetof(pgbank__batch, node)))

static const pgbank__sink batch_sink;

int pgbank__batch_setup(pgbank_engine *eng)
{
    int n = eng->nlanes * eng->opt.batch_inflight;
    eng->lanes = calloc((size_t)eng->nlanes, sizeof *eng->lanes);
    eng->batches = calloc((size_t)n, sizeof *eng->batches);
    if (!eng->lanes || !eng->batches)
        return PGBANK_ENOMEM;
    for (int i = 0; i < eng->nlanes; i++)
        eng->lanes[i].conn = &eng->conns[eng->npool + i];
    for (int i = 0; i < n; i++) {
        eng->batches[i].node.sink = &batch_sink;
        eng->batches[i].next_free = i + 1 < n ? &eng->batches[i + 1] : NULL;
    }
    eng->free_batch = &eng->batches[0];
    return 0;
}

void pgbank__batch_teardown(pgbank_engine *eng)
{
    for (int i = 0; eng->batches && i < eng->nlanes * eng->opt.batch_inflight; i++) {
        free(eng->batches[i].buf);
        free(eng->batches[i].acct);
        free(eng->batches[i].run);
    }
    free(eng->batches);
    free(eng->lanes);
    eng->batches = NULL;
    eng->lanes = NULL;
}

int pgbank__is_batched(const pgbank_op *op)
{
    return op->strategy == PGBANK_BATCH &&
           (op->kind == PGBANK_OP_WITHDRAW || op->kind == PGBANK_OP_DEPOSIT ||
            op->kind == PGBANK_OP_TRANSFER);
}

/* Citus: a transfer between two shards (it cannot run on one worker). */
static int spans_shards(const pgbank_engine *eng, const pgbank_op *op)
{
    return eng->nshards && op->kind == PGBANK_OP_TRANSFER &&
           pgbank__shard_of(eng, op->account) != pgbank__shard_of(eng, op->to_account);
}

/* --- the lanes' queues ------------------------------------------------------ */

/* The next operation after op in lane l's queue. */
static pgbank_op *lane_next(const pgbank__lane *l, const pgbank_engine *eng, pgbank_op *op)
{
    return OP(op)->lane2 >= 0 && &eng->lanes[OP(op)->lane2] == l ? OP(op)->next2 : OP(op)->next;
}

static void set_lane_next(const pgbank__lane *l, const pgbank_engine *eng, pgbank_op *op,
                          pgbank_op *next)
{
    if (OP(op)->lane2 >= 0 && &eng->lanes[OP(op)->lane2] == l)
        OP(op)->next2 = next;
    else
        OP(op)->next = next;
}

static void lane_append(pgbank__lane *l, pgbank_engine *eng, pgbank_op *op)
{
    set_lane_next(l, eng, op, NULL);
    if (l->tail)
        set_lane_next(l, eng, l->tail, op);
    else
        l->head = op;
    l->tail = op;
}

static void lane_prepend(pgbank__lane *l, pgbank_engine *eng, pgbank_op *op)
{
    set_lane_next(l, eng, op, l->head);
    l->head = op;
    if (!l->tail)
        l->tail = op;
}

/* Takes the first operation out of lane l's queue. */
static pgbank_op *lane_pop(pgbank__lane *l, pgbank_engine *eng)
{
    pgbank_op *op = l->head;
    if (!op)
        return NULL;
    l->head = lane_next(l, eng, op);
    if (!l->head)
        l->tail = NULL;
    set_lane_next(l, eng, op, NULL);
    return op;
}

/* Puts op in its lane(s). */
static void enlane(pgbank_engine *eng, pgbank_op *op)
{
    pgbank__op_private *p = OP(op);
    p->lane = pgbank__lane_of(eng, op->account);
    p->lane2 = -1;
    if (op->kind == PGBANK_OP_TRANSFER) {
        int other = pgbank__lane_of(eng, op->to_account);
        if (other != p->lane)
            p->lane2 = other;
    }
    lane_append(&eng->lanes[p->lane], eng, op);
    if (p->lane2 >= 0)
        lane_append(&eng->lanes[p->lane2], eng, op);
}

/* Lanes follow the shards on Citus, which the first probe tells: until
 * then operations wait, in arrival order, outside the lanes. */
static int lanes_known(const pgbank_engine *eng)
{
    return eng->probed && (!eng->route_fn || eng->shards_known);
}

static void enlane_waiting(pgbank_engine *eng)
{
    pgbank_op *op;
    while ((op = eng->unlaned_head) != NULL) {
        eng->unlaned_head = OP(op)->next;
        if (!eng->unlaned_head)
            eng->unlaned_tail = NULL;
        OP(op)->next = NULL;
        enlane(eng, op);
    }
}

void pgbank__batch_enqueue(pgbank_engine *eng, pgbank_op *op)
{
    if (lanes_known(eng) && !eng->unlaned_head) {
        enlane(eng, op);
        return;
    }
    OP(op)->next = NULL;
    if (eng->unlaned_tail)
        OP(eng->unlaned_tail)->next = op;
    else
        eng->unlaned_head = op;
    eng->unlaned_tail = op;
}

void pgbank__batch_requeue(pgbank_engine *eng, pgbank_op *op)
{
    lane_prepend(&eng->lanes[OP(op)->lane], eng, op);
    if (OP(op)->lane2 >= 0)
        lane_prepend(&eng->lanes[OP(op)->lane2], eng, op);
}

static int crossing(const pgbank_op *op)
{
    return OP(op)->lane2 >= 0;
}

/* --- sending ----------------------------------------------------------------- */

static int batch_kind(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_WITHDRAW  ? SQL_KIND_WITHDRAW
           : op->kind == PGBANK_OP_DEPOSIT ? SQL_KIND_DEPOSIT
                                           : SQL_KIND_TRANSFER;
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

/* Adds op to b, or ends it at once when the schema says it is invalid. */
static void take(pgbank_engine *eng, pgbank__batch *b, pgbank_op *op)
{
    if (pgbank__op_refuse_invalid(eng, op))
        return;
    OP(op)->flags = (OP(op)->flags & (OPF_RESOLVING | OPF_INDOUBT | OPF_CROSSING)) | OPF_WRITE_SENT;
    OP(op)->state = ST_BATCH;
    OP(op)->next = NULL;
    if (b->tail)
        OP(b->tail)->next = op;
    else
        b->head = op;
    b->tail = op;
    b->n++;
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

/* The arrays' text form, for the echo only (nothing is built when echo is
 * off).  Returns -1 when out of memory. */
static int text_arrays(pgbank__batch *b, char *p, const char **v)
{
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
    return 0;
}

static char *put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

static char *put_be64(char *p, uint64_t v)
{
    p = put_be32(p, (uint32_t)(v >> 32));
    return put_be32(p, (uint32_t)v);
}

/* A one-dimensional array of n elements in PostgreSQL's binary format
 * (array_recv): the header, then each element's length (-1 for NULL) and
 * big-endian value.  The server reads it without parsing text. */
static char *array_header(char *p, int n, int hasnull, uint32_t elemtype)
{
    p = put_be32(p, 1);
    p = put_be32(p, (uint32_t)hasnull);
    p = put_be32(p, elemtype);
    p = put_be32(p, (uint32_t)n);
    return put_be32(p, 1);
}

/* Citus: every account of b is in one shard, so pgbank_batch_route() can
 * run it on that shard's worker. */
static int routable(const pgbank_engine *eng, const pgbank__batch *b)
{
    if (!eng->nshards || !eng->route_fn)
        return 0;
    int shard = pgbank__shard_of(eng, b->head->account);
    for (pgbank_op *op = b->head; op; op = OP(op)->next)
        if (pgbank__shard_of(eng, op->account) != shard ||
            (op->kind == PGBANK_OP_TRANSFER && pgbank__shard_of(eng, op->to_account) != shard))
            return 0;
    return 1;
}

#define INT2_OID 21u
#define INT8_OID 20u

static int send_arrays(pgbank__conn *c, pgbank__batch *b)
{
    /* Four binary arrays of at most 12 bytes per element, and their text
     * form for the echo (21 characters per element) when it is on. */
    int echo = c->eng->opt.echo != NULL;
    size_t need = (size_t)b->n * 4 * 12 + 4 * 24 + (echo ? (size_t)b->n * 4 * 22 + 64 : 0);
    if (b->bufcap < need) {
        char *nb = realloc(b->buf, need * 2);
        if (!nb)
            return -1;
        b->buf = nb;
        b->bufcap = need * 2;
    }
    char *p = b->buf;
    const char *v[4];
    int len[4];
    int hasnull = 0;
    for (pgbank_op *op = b->head; op; op = OP(op)->next)
        hasnull |= op->kind != PGBANK_OP_TRANSFER;
    for (int a = 0; a < 4; a++) {
        char *start = p;
        v[a] = p;
        p = array_header(p, b->n, a == 2 && hasnull, a == 0 ? INT2_OID : INT8_OID);
        for (pgbank_op *op = b->head; op; op = OP(op)->next) {
            switch (a) {
            case 0:
                p = put_be32(p, 2);
                p[0] = 0;
                p[1] = (char)batch_kind(op);
                p += 2;
                break;
            case 1:
                p = put_be32(p, 8);
                p = put_be64(p, (uint64_t)op->account);
                break;
            case 2:
                if (op->kind == PGBANK_OP_TRANSFER) {
                    p = put_be32(p, 8);
                    p = put_be64(p, (uint64_t)op->to_account);
                } else {
                    p = put_be32(p, UINT32_MAX); /* -1: NULL */
                }
                break;
            default:
                p = put_be32(p, 8);
                p = put_be64(p, (uint64_t)op->amount);
                break;
            }
        }
        len[a] = (int)(p - start);
    }
    const char *shown[5] = {"", "", "", "", ""};
    if (echo)
        text_arrays(b, p, shown + 1);
    b->mode = BATCH_ARRAYS;
    if (!routable(c->eng, b))
        return pgbank__conn_send_binary(c, SQL_BATCH, v, len, shown + 1);
    /* Citus: all on one shard, sent to its worker, routed by the first
     * account (the arrays stay as built, after it). */
    char route[8], route_text[24];
    put_be64(route, (uint64_t)b->head->account);
    const char *rv[5] = {route, v[0], v[1], v[2], v[3]};
    int rlen[5] = {8, len[0], len[1], len[2], len[3]};
    if (echo) {
        snprintf(route_text, sizeof route_text, "%lld", (long long)b->head->account);
        shown[0] = route_text;
    }
    return pgbank__conn_send_binary(c, SQL_BATCH_ROUTE, rv, rlen, shown);
}

/* Puts b in flight on its lane's connection.  Returns -1 when the
 * connection broke. */
static int launch(pgbank_engine *eng, pgbank__batch *b, int solo)
{
    pgbank__conn *c = b->lane->conn;
    eng->free_batch = b->next_free;
    b->next_free = NULL;
    b->lane->busy++;
    eng->batches_sent++;
    eng->batched_ops += (uint64_t)b->n;
    c->exclusive = 1; /* a lane's connection carries only its batches */
    pgbank__conn_push(c, &b->node);
    int rc = solo ? send_solo(c, b) : send_arrays(c, b);
    return rc < 0 ? -1 : pgbank__conn_sync(c);
}

/* The schema lacks what the batch strategy needs: the lane's operations end. */
static int lane_unusable(pgbank_engine *eng, pgbank__lane *l)
{
    pgbank_op *op = l->head;
    int key = op->key != NULL;
    if (eng->batch_fn && (!key || eng->keyed_fn))
        return 0;
    lane_pop(l, eng);
    if (crossing(op)) { /* out of its other lane's queue too */
        pgbank__lane *o = &eng->lanes[OP(op)->lane == l - eng->lanes ? OP(op)->lane2 : OP(op)->lane];
        pgbank_op **pp = &o->head, *prev = NULL;
        while (*pp && *pp != op) {
            prev = *pp;
            pp = OP(prev)->lane2 >= 0 && &eng->lanes[OP(prev)->lane2] == o ? &OP(prev)->next2
                                                                              : &OP(prev)->next;
        }
        if (*pp) {
            *pp = lane_next(o, eng, op);
            if (o->tail == op)
                o->tail = prev;
        }
    }
    pgbank_status st = PGBANK_DB_ERROR;
    const char *bad = pgbank__op_invalid(eng, op, &st);
    pgbank__op_set_message(eng, op, bad ? "" : PGBANK_SQLSTATE_UNDEFINED_FUNCTION,
                           bad ? bad
                           : key ? "a keyed batch operation needs pgbank_keyed() (schema 4 or"
                                   " later): run 'pgbank init'"
                                 : "the batch strategy needs pgbank_batch(): run 'pgbank init'");
    pgbank__engine_complete(eng, op, bad ? st : PGBANK_DB_ERROR);
    return 1;
}

/* Citus: the batch of the shard of l's first operation: that shard's
 * operations, in order, up to the first keyed operation, crossing or
 * transfer between shards (which must keep their places); operations of
 * the lane's other shards are left in place for the next batches.  Each
 * account is in one shard, so each still sees its operations in arrival
 * order. */
static void take_shard(pgbank_engine *eng, pgbank__lane *l, pgbank__batch *b)
{
    int shard = pgbank__shard_of(eng, l->head->account);
    pgbank_op *prev = NULL, *op = l->head;
    while (op && b->n < eng->opt.batch_max && !op->key && !crossing(op) &&
           !spans_shards(eng, op)) {
        pgbank_op *next = OP(op)->next; /* not a crossing: its one lane's link */
        if (pgbank__shard_of(eng, op->account) != shard) {
            prev = op;
        } else {
            if (prev)
                OP(prev)->next = next;
            else
                l->head = next;
            if (l->tail == op)
                l->tail = prev;
            OP(op)->next = NULL;
            take(eng, b, op);
        }
        op = next;
    }
}

/* What lane l can send now, if anything.  Returns -1 when its connection
 * broke (the caller fails it). */
static int lane_send(pgbank_engine *eng, pgbank__lane *l)
{
    pgbank__conn *c = l->conn;
    while (l->head && c->state == CONN_READY && eng->free_batch &&
           l->busy < eng->opt.batch_inflight) {
        if (lane_unusable(eng, l))
            continue;
        pgbank_op *head = l->head;
        pgbank__batch *b = eng->free_batch;
        b->lane = l;
        b->head = b->tail = NULL;
        b->n = 0;
        if (crossing(head)) {
            /* Alone, when first in both lanes and both idle; it stays in
             * the other lane's queue, holding it, until it is done. */
            pgbank__lane *home = &eng->lanes[OP(head)->lane];
            pgbank__lane *other = &eng->lanes[OP(head)->lane2];
            if (l != home || other->head != head || home->busy || other->busy ||
                (OP(head)->flags & OPF_CROSSING))
                return 0;
            lane_pop(home, eng);
            OP(head)->flags |= OPF_CROSSING;
            take(eng, b, head);
            if (b->n == 0) { /* invalid: ended; release the other lane */
                lane_pop(other, eng);
                continue;
            }
            eng->crossings++;
            if (launch(eng, b, head->key != NULL) < 0)
                return -1;
            return 0;
        }
        int solo = head->key != NULL ||
                   (l->busy == 0 && head->kind != PGBANK_OP_TRANSFER &&
                    (lane_next(l, eng, head) == NULL));
        if (solo || spans_shards(eng, head)) {
            /* (Citus: a transfer between two shards of one lane goes alone,
             * as a distributed transaction, like a crossing.) */
            take(eng, b, lane_pop(l, eng));
        } else if (eng->nshards) {
            take_shard(eng, l, b);
        } else {
            while (l->head && b->n < eng->opt.batch_max && !l->head->key && !crossing(l->head))
                take(eng, b, lane_pop(l, eng));
        }
        if (b->n == 0)
            continue; /* all invalid: ended */
        if (launch(eng, b, solo) < 0)
            return -1;
    }
    return 0;
}

void pgbank__batch_dispatch(pgbank_engine *eng)
{
    if (eng->unlaned_head && lanes_known(eng))
        enlane_waiting(eng);
    for (int i = 0; i < eng->nlanes; i++) {
        pgbank__lane *l = &eng->lanes[i];
        if (l->head && lane_send(eng, l) < 0)
            pgbank__conn_fail(l->conn, PGBANK_SQLSTATE_CONNECTION_FAILURE,
                              l->conn->pg ? PQerrorMessage(l->conn->pg) : "out of memory");
    }
}

void pgbank__batch_fail_queued(pgbank_engine *eng, pgbank_status st, const char *sqlstate,
                               const char *msg)
{
    pgbank_op *w;
    while ((w = eng->unlaned_head) != NULL) { /* never sent */
        eng->unlaned_head = OP(w)->next;
        if (!eng->unlaned_head)
            eng->unlaned_tail = NULL;
        OP(w)->next = NULL;
        pgbank__op_set_message(eng, w, sqlstate, msg);
        pgbank__engine_complete(eng, w, st);
    }
    for (int i = 0; i < eng->nlanes; i++) {
        pgbank__lane *l = &eng->lanes[i];
        pgbank_op *op;
        while ((op = lane_pop(l, eng)) != NULL) {
            if (crossing(op) && OP(op)->lane != i)
                continue; /* ended from its first lane */
            if (crossing(op) && (OP(op)->flags & OPF_CROSSING))
                continue; /* in flight: its batch ends it */
            pgbank__op_fail(eng, op, sqlstate, msg, st);
        }
    }
}

/* --- results ----------------------------------------------------------------- */

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

/* The slot of account id in b's answer (sorted by id), or -1. */
static long acct_slot(const pgbank__batch *b, int64_t id)
{
    size_t lo = 0, hi = b->nacct;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->acct[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->nacct && b->acct[lo] == id ? (long)lo : -1;
}

/* The fast path applied every operation: each one's result is its
 * account's balance before the batch plus the running sum of the account's
 * operations up to it, added up here in arrival order. */
static void fast_results(pgbank_engine *eng, pgbank__batch *b, const char *accts,
                         const char *starts)
{
    size_t need = (size_t)b->n * 2;
    if (b->acctcap < need) {
        int64_t *a = realloc(b->acct, need * sizeof *a), *r = a ? realloc(b->run, need * sizeof *r) : NULL;
        if (a)
            b->acct = a;
        if (!a || !r) {
            for (pgbank_op *op = b->head; op; op = OP(op)->next) {
                pgbank__op_set_message(eng, op, PGBANK_SQLSTATE_INTERNAL_ERROR,
                                       "out of memory reading the batch's results");
                OP(op)->flags |= OPF_ERROR;
            }
            return;
        }
        b->run = r;
        b->acctcap = need;
    }
    b->nacct = 0;
    int64_t v;
    int isnull;
    for (;;) {
        while (*accts == '{' || *accts == ',')
            accts++;
        if (!*accts || *accts == '}' || b->nacct >= b->acctcap)
            break;
        accts = next_elem(accts, &v, &isnull);
        starts = next_elem(starts, &b->run[b->nacct], &isnull);
        b->acct[b->nacct++] = v;
    }
    for (pgbank_op *op = b->head; op; op = OP(op)->next) {
        long a = acct_slot(b, op->account);
        long t = op->kind == PGBANK_OP_TRANSFER ? acct_slot(b, op->to_account) : 0;
        if (a < 0 || t < 0) {
            pgbank__op_set_message(eng, op, PGBANK_SQLSTATE_INTERNAL_ERROR,
                                   "the batch's answer lacks an account of the operation");
            OP(op)->flags |= OPF_ERROR;
            continue;
        }
        OP(op)->flags |= OPF_FOUND;
        OP(op)->outcome = OUTCOME_OK;
        if (op->kind == PGBANK_OP_DEPOSIT) {
            b->run[a] += op->amount;
        } else {
            b->run[a] -= op->amount;
            if (op->kind == PGBANK_OP_TRANSFER) {
                b->run[t] += op->amount;
                op->result.to_balance = b->run[t];
            }
        }
        op->result.balance = b->run[a];
    }
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
    if (PQgetisnull(r, 0, 0)) {
        fast_results(c->eng, b, PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4));
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

/* The batch's slot is free again and its lane's connection too when it was
 * the last; a crossing leaves its other lane's queue.  Returns its
 * operations. */
static pgbank_op *release(pgbank_engine *eng, pgbank__conn *c, pgbank__batch *b)
{
    pgbank_op *ops = b->head;
    pgbank__lane *l = b->lane;
    if (ops && (OP(ops)->flags & OPF_CROSSING)) {
        pgbank__lane *other = &eng->lanes[OP(ops)->lane2];
        if (other->head == ops)
            lane_pop(other, eng);
        OP(ops)->flags &= ~OPF_CROSSING;
    }
    b->head = b->tail = NULL;
    b->n = 0;
    b->next_free = eng->free_batch;
    eng->free_batch = b;
    if (--l->busy == 0)
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

/* The lane's connection died with the batch in flight.  Its operations end
 * as lost (a keyed one runs again: back to the front of its lane, before
 * everything that arrived after it, so arrival order holds). */
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
