/*
 * core.c - the services every part of the engine uses and that use no other
 * part: ending an operation (its callback runs later, from the done list),
 * the messages it carries (scrubbed of the connection's secrets), the
 * queue's requeue and delay lists, what happens to an operation whose
 * connection died, and the validation of an operation against the schema.
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

void pgbank__op_set_message(pgbank_engine *eng, pgbank_op *op, const char *sqlstate,
                            const char *msg)
{
    pgbank__strlcpy(op->result.sqlstate, sqlstate ? sqlstate : "", sizeof op->result.sqlstate);
    pgbank__strlcpy(op->result.message, msg ? msg : "", sizeof op->result.message);
    size_t n = strlen(op->result.message);
    while (n && (op->result.message[n - 1] == '\n' || op->result.message[n - 1] == ' '))
        op->result.message[--n] = '\0';
    pgbank__scrubber_apply(eng->scrub, op->result.message, sizeof op->result.message);
}

void pgbank__engine_set_error(pgbank_engine *eng, const char *msg)
{
    pgbank__strlcpy(eng->error, msg, sizeof eng->error);
    pgbank__scrubber_apply(eng->scrub, eng->error, sizeof eng->error);
}

void pgbank__gate_count(pgbank_engine *eng, pgbank_op *op)
{
    pgbank__op_private *p = OP(op);
    if (!OP(op)->gate || (p->flags & OPF_ARRIVED))
        return;
    p->flags |= OPF_ARRIVED;
    if (++OP(op)->gate->arrived >= OP(op)->gate->expected)
        eng->gates_full = 1;
}

/* The operation's result is final: its callback runs from the done list,
 * after the engine has finished the work at hand (from its loop: never from
 * inside pgbank_submit, never twice).  An operation that ends before reaching its
 * gate counts as arrived, so the others are not held forever. */
void pgbank__engine_complete(pgbank_engine *eng, pgbank_op *op, pgbank_status st)
{
    pgbank__op_private *p = OP(op);
    op->result.status = st;
    op->result.retries = p->retries;
    p->conn = NULL;
    p->next = NULL;
    pgbank__gate_count(eng, op);
    if (eng->done_tail)
        OP(eng->done_tail)->next = op;
    else
        eng->done_head = op;
    eng->done_tail = op;
}

void pgbank__op_fail(pgbank_engine *eng, pgbank_op *op, const char *sqlstate, const char *msg,
                     pgbank_status st)
{
    pgbank__op_set_message(eng, op, sqlstate, msg);
    if (OP(op)->flags & OPF_INDOUBT) {
        /* A keyed operation whose COMMIT was sent before its connection
         * died, and no connection to resolve it by its key. */
        char m[300];
        snprintf(m, sizeof m, "connection lost after the commit was sent (%s)",
                 op->result.message);
        pgbank__op_set_message(eng, op, PGBANK_SQLSTATE_CONNECTION_FAILURE, m);
        st = PGBANK_UNKNOWN_OUTCOME;
    }
    pgbank__engine_complete(eng, op, st);
}

int pgbank__op_refuse_invalid(pgbank_engine *eng, pgbank_op *op)
{
    pgbank_status st;
    const char *bad = pgbank__op_invalid(eng, op, &st);
    if (!bad)
        return 0;
    pgbank__op_set_message(eng, op, "", bad);
    pgbank__engine_complete(eng, op, st);
    return 1;
}

void pgbank__engine_fail_queue(pgbank_engine *eng, const char *sqlstate, const char *msg)
{
    pgbank_op *op;
    while ((op = eng->queue_head) != NULL) {
        eng->queue_head = OP(op)->next;
        pgbank__op_fail(eng, op, sqlstate, msg, PGBANK_DB_ERROR);
    }
    eng->queue_tail = NULL;
}

/* A keyed operation to run again (its connection died): first in line. */
void pgbank__engine_requeue(pgbank_engine *eng, pgbank_op *op)
{
    OP(op)->conn = NULL;
    OP(op)->next = eng->queue_head;
    eng->queue_head = op;
    if (!eng->queue_tail)
        eng->queue_tail = op;
}

/* A serializable retry waits for its backoff; the timer moves it back. */
void pgbank__engine_delay(pgbank_engine *eng, pgbank_op *op, int64_t wake_ns)
{
    OP(op)->conn = NULL;
    OP(op)->wake_ns = wake_ns;
    OP(op)->next = eng->delayed;
    eng->delayed = op;
}

int pgbank__op_moves_money(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_WITHDRAW || op->kind == PGBANK_OP_DEPOSIT ||
           op->kind == PGBANK_OP_TRANSFER;
}

/* The connection died with op in flight.  A keyed operation is run again
 * after reconnecting: its key makes that exactly once (the key says whether
 * the lost attempt committed).  Without a key, if a write that commits (or
 * COMMIT) was sent, nobody knows whether it was applied: unknown outcome. */
void pgbank__op_lost(pgbank_engine *eng, pgbank_op *op, const char *msg)
{
    char m[700];
    pgbank__op_private *p = OP(op);
    int f = p->flags;
    if (eng->closing) {
        /* pgbank_engine_free(): no reconnecting, every operation ends now. */
        if (f & (OPF_WRITE_SENT | OPF_INDOUBT)) {
            pgbank__op_set_message(eng, op, "",
                                   "shut down after COMMIT was sent: it may have been applied");
            pgbank__engine_complete(eng, op, PGBANK_UNKNOWN_OUTCOME);
        } else if (f & OPF_DEFER) {
            pgbank__engine_complete(eng, op, op->result.status);
        } else {
            pgbank__op_set_message(eng, op, "", "shut down: the transaction was rolled back");
            pgbank__engine_complete(eng, op, PGBANK_SHUT_DOWN);
        }
        return;
    }
    if (op->key && pgbank__op_moves_money(op) && p->tries < 100) {
        p->tries++;
        p->flags = (f & (OPF_ARRIVED | OPF_RESOLVING | OPF_INDOUBT)) | OPF_RESOLVING |
                   ((f & OPF_WRITE_SENT) ? OPF_INDOUBT : 0);
        pgbank__engine_requeue(eng, op);
        return;
    }
    if ((f & OPF_WRITE_SENT) || (f & OPF_INDOUBT)) {
        snprintf(m, sizeof m, "connection lost after the commit was sent (%s)", msg);
        pgbank__op_set_message(eng, op, PGBANK_SQLSTATE_CONNECTION_FAILURE, m);
        pgbank__engine_complete(eng, op, PGBANK_UNKNOWN_OUTCOME);
    } else if (f & OPF_DEFER) {
        /* Decided (a refusal): the lost rollback changes nothing. */
        pgbank__engine_complete(eng, op, op->result.status);
    } else {
        snprintf(m, sizeof m, "connection lost before commit, nothing applied (%s)", msg);
        pgbank__op_set_message(eng, op, PGBANK_SQLSTATE_CONNECTION_FAILURE, m);
        pgbank__engine_complete(eng, op, PGBANK_DB_ERROR);
    }
}

const char *pgbank__op_invalid(const pgbank_engine *eng, const pgbank_op *op, pgbank_status *st)
{
    *st = PGBANK_INVALID_AMOUNT;
    if (pgbank__op_moves_money(op)) {
        if (op->amount <= 0)
            return "the amount must be positive";
        if (op->amount > eng->balance_max)
            return "the amount does not fit the balance column";
    } else if (op->kind == PGBANK_OP_OPEN) {
        if (op->amount < 0)
            return "the opening balance must not be negative";
        if (op->amount > eng->balance_max)
            return "the opening balance does not fit the balance column";
    }
    *st = PGBANK_INVALID_INPUT;
    if (op->kind == PGBANK_OP_TRANSFER && op->account == op->to_account)
        return "cannot transfer from an account to itself";
    if (op->key && (!*op->key || strlen(op->key) > 200))
        return "an idempotency key must be 1 to 200 bytes";
    *st = PGBANK_NO_SUCH_ACCOUNT;
    if (op->kind != PGBANK_OP_OPEN && (op->account > eng->id_max || op->account < -eng->id_max))
        return "the account id does not fit the id column";
    if (op->kind == PGBANK_OP_TRANSFER &&
        (op->to_account > eng->id_max || op->to_account < -eng->id_max))
        return "the destination account id does not fit the id column";
    return NULL;
}
