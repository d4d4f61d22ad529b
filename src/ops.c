/*
 * ops.c - each operation as a small state machine of SQL steps, one Sync per
 * step.  The strategies are the seed's:
 *
 *   explicit, begin (UNSAFE FOR MONEY)
 *       BEGIN; SELECT balance              -- step ST_READ
 *       (check in C; new = seen - amount)
 *       UPDATE SET balance = new; COMMIT   -- step ST_WRITE   (or ROLLBACK)
 *     The absolute value computed in the client is what the seed's ORM
 *     writes: two transactions that both read 100 both write 20, and one
 *     withdrawal is lost.  Both strategies send the same SQL; the seed's
 *     sections 2 and 3 differ only in who ends the transaction.
 *   for-update
 *       BEGIN; SELECT balance ... FOR UPDATE; then as above.  The row lock
 *       makes the second reader wait for the first one's COMMIT.
 *   atomic
 *       UPDATE ... SET balance = balance - $2 WHERE id = $1 AND balance >= $2
 *       RETURNING balance -- one statement; the WHERE clause is re-checked on
 *       the newest row version.  No row: a follow-up SELECT says why.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pgbank__op_is_multistep(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_WITHDRAW && op->strategy != PGBANK_ATOMIC;
}

static int gated(const pgbank_op *op)
{
    return op->gate && (op->strategy == PGBANK_EXPLICIT || op->strategy == PGBANK_BEGIN);
}

/* Queues one step on the connection: its statements, then a Sync.  The
 * operation is put in the connection's in-flight list first, so a send that
 * breaks the connection still ends it exactly once. */
static int step(pgbank__conn *c, pgbank_op *op, int state)
{
    op->priv.state = state;
    op->priv.flags &= ~(OPF_FOUND | OPF_NOROW);
    op->priv.nres = 0;
    pgbank__conn_push(c, op);
    int64_t p[2] = {op->account, op->amount};
    int rc = 0;
    switch (state) {
    case ST_READ:
        op->priv.flags |= OPF_IN_TX;
        rc = pgbank__conn_send(c, SQL_BEGIN, 0, NULL);
        if (rc == 0)
            rc = pgbank__conn_send(
                c, op->strategy == PGBANK_FOR_UPDATE ? SQL_SELECT_FOR_UPDATE : SQL_SELECT_BALANCE,
                1, p);
        break;
    case ST_WRITE:
        p[1] = op->priv.seen - op->amount; /* the absolute value, as the ORM writes it */
        op->priv.flags |= OPF_WRITE_SENT;
        rc = pgbank__conn_send(c, SQL_SET_BALANCE, 2, p);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_COMMIT, 0, NULL);
        break;
    case ST_ROLLBACK:
        rc = pgbank__conn_send(c, SQL_ROLLBACK, 0, NULL);
        break;
    case ST_ATOMIC:
        op->priv.flags |= OPF_WRITE_SENT;
        rc = pgbank__conn_send(c, SQL_WITHDRAW_ATOMIC, 2, p);
        break;
    case ST_ATOMIC_SEEN:
    case ST_BALANCE:
        rc = pgbank__conn_send(c, SQL_SELECT_BALANCE, 1, p);
        break;
    case ST_OPEN:
        op->priv.flags |= OPF_WRITE_SENT;
        p[0] = op->amount;
        rc = pgbank__conn_send(c, c->eng->id_has_default ? SQL_OPEN : SQL_OPEN_NO_DEFAULT, 1, p);
        break;
    default:
        return -1;
    }
    if (rc == 0)
        rc = pgbank__conn_sync(c);
    return rc;
}

int pgbank__op_start(pgbank__conn *c, pgbank_op *op)
{
    switch (op->kind) {
    case PGBANK_OP_WITHDRAW:
        return step(c, op, op->strategy == PGBANK_ATOMIC ? ST_ATOMIC : ST_READ);
    case PGBANK_OP_BALANCE:
        return step(c, op, ST_BALANCE);
    case PGBANK_OP_OPEN:
        return step(c, op, ST_OPEN);
    default:
        return -1;
    }
}

void pgbank__op_result(pgbank__conn *c, pgbank_op *op, PGresult *r)
{
    op->priv.nres++;
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
        if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
            op->priv.flags |= OPF_FOUND;
            op->priv.seen = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        }
        break;
    case PGRES_COMMAND_OK:
        if (strncmp(PQcmdStatus(r), "UPDATE", 6) == 0 && strcmp(PQcmdTuples(r), "0") == 0)
            op->priv.flags |= OPF_NOROW;
        break;
    case PGRES_PIPELINE_ABORTED:
        break;
    default:
        if (!(op->priv.flags & OPF_ERROR)) {
            const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            pgbank__op_set_message(c->eng, op, ss ? ss : "XX000", m ? m : PQresultErrorMessage(r));
            op->priv.flags |= OPF_ERROR;
        }
        break;
    }
}

/* Ends the operation; a transaction left open or failed is rolled back
 * first, the result staying what was decided. */
static int finish(pgbank__conn *c, pgbank_op *op, pgbank_status st)
{
    /* Tracked by hand: in pipeline mode PQtransactionStatus() says "active"
     * between Syncs. */
    if ((op->priv.flags & OPF_IN_TX) && op->priv.state != ST_ROLLBACK) {
        op->priv.flags &= ~OPF_IN_TX;
        op->result.status = st;
        op->priv.flags |= OPF_DEFER;
        op->priv.flags &= ~OPF_WRITE_SENT; /* nothing is committed by a ROLLBACK */
        return step(c, op, ST_ROLLBACK);
    }
    pgbank__engine_complete(c->eng, op, st);
    return 0;
}

static int refuse(pgbank__conn *c, pgbank_op *op, pgbank_status st, int64_t seen)
{
    op->result.balance = seen;
    if (st == PGBANK_INSUFFICIENT_FUNDS) {
        char m[128];
        snprintf(m, sizeof m, "balance %lld, requested %lld", (long long)seen,
                 (long long)op->amount);
        pgbank__op_set_message(c->eng, op, "", m);
    } else {
        char m[64];
        snprintf(m, sizeof m, "account %lld does not exist", (long long)op->account);
        pgbank__op_set_message(c->eng, op, "", m);
    }
    return finish(c, op, st);
}

/* Read done, for a read-modify-write: check in C, then write (or hold at the
 * gate until every gated operation has read). */
static int after_read(pgbank__conn *c, pgbank_op *op)
{
    if (!(op->priv.flags & OPF_FOUND))
        return refuse(c, op, PGBANK_NO_SUCH_ACCOUNT, 0);
    if (op->priv.seen < op->amount)
        return refuse(c, op, PGBANK_INSUFFICIENT_FUNDS, op->priv.seen);
    if (gated(op)) {
        op->priv.state = ST_GATE;
        pgbank__conn_push(c, op); /* keeps the connection and its transaction */
        pgbank__gate_arrive(c->eng, op);
        return 0;
    }
    return step(c, op, ST_WRITE);
}

/* Releases every operation held at the gate once all have read. */
void pgbank__gate_arrive(pgbank_engine *eng, pgbank_op *op)
{
    pgbank_gate *g = op->gate;
    op->priv.flags |= OPF_ARRIVED;
    if (++g->arrived < g->expected)
        return;
    for (int i = 0; i < eng->nconns; i++) {
        pgbank__conn *c = &eng->conns[i];
        pgbank_op *held = c->head;
        if (!held || held->gate != g || held->priv.state != ST_GATE)
            continue;
        c->head = c->tail = NULL;
        c->inflight = 0;
        if (step(c, held, ST_WRITE) < 0)
            pgbank__conn_fail(c, "08006", PQerrorMessage(c->pg));
    }
}

int pgbank__op_synced(pgbank__conn *c, pgbank_op *op)
{
    int flags = op->priv.flags;
    if (op->priv.state == ST_ROLLBACK) {
        pgbank__engine_complete(c->eng, op, (flags & OPF_DEFER) ? op->result.status : PGBANK_DB_ERROR);
        return 0;
    }
    if (flags & OPF_ERROR) {
        op->priv.flags &= ~OPF_WRITE_SENT; /* the server answered: nothing is in doubt */
        return finish(c, op, PGBANK_DB_ERROR);
    }
    switch (op->priv.state) {
    case ST_READ:
        return after_read(c, op);
    case ST_WRITE:
        op->priv.flags &= ~(OPF_WRITE_SENT | OPF_IN_TX); /* COMMIT succeeded */
        if (flags & OPF_NOROW)
            return refuse(c, op, PGBANK_NO_SUCH_ACCOUNT, 0);
        op->result.balance = op->priv.seen - op->amount;
        return finish(c, op, PGBANK_OK);
    case ST_ATOMIC:
        op->priv.flags &= ~OPF_WRITE_SENT;
        if (flags & OPF_FOUND) {
            op->result.balance = op->priv.seen;
            return finish(c, op, PGBANK_OK);
        }
        return step(c, op, ST_ATOMIC_SEEN);
    case ST_ATOMIC_SEEN:
        if (!(flags & OPF_FOUND))
            return refuse(c, op, PGBANK_NO_SUCH_ACCOUNT, 0);
        if (op->priv.seen >= op->amount && ++op->priv.tries < 3)
            return step(c, op, ST_ATOMIC); /* the balance rose meanwhile: try again */
        return refuse(c, op, PGBANK_INSUFFICIENT_FUNDS, op->priv.seen);
    case ST_BALANCE:
        if (!(flags & OPF_FOUND))
            return refuse(c, op, PGBANK_NO_SUCH_ACCOUNT, 0);
        op->result.balance = op->priv.seen;
        return finish(c, op, PGBANK_OK);
    case ST_OPEN:
        op->priv.flags &= ~OPF_WRITE_SENT;
        op->result.account = op->priv.seen;
        op->result.balance = op->amount;
        return finish(c, op, PGBANK_OK);
    default:
        return finish(c, op, PGBANK_DB_ERROR);
    }
}

/* The connection died with op in flight: if a write that commits on its own
 * (or COMMIT) was sent, nobody knows whether it was applied. */
void pgbank__op_lost(pgbank__conn *c, pgbank_op *op, const char *msg)
{
    char m[256];
    if (op->priv.flags & OPF_WRITE_SENT) {
        snprintf(m, sizeof m, "connection lost after the commit was sent (%s)", msg);
        pgbank__op_set_message(c->eng, op, "08006", m);
        pgbank__engine_complete(c->eng, op, PGBANK_UNKNOWN_OUTCOME);
    } else if (op->priv.flags & OPF_DEFER) {
        /* Decided (a refusal): the lost rollback changes nothing. */
        pgbank__engine_complete(c->eng, op, op->result.status);
    } else {
        snprintf(m, sizeof m, "connection lost before commit, nothing applied (%s)", msg);
        pgbank__op_set_message(c->eng, op, "08006", m);
        pgbank__engine_complete(c->eng, op, PGBANK_DB_ERROR);
    }
}
