/*
 * ops.c - each operation as a small state machine of SQL steps, one Sync per
 * step (pipeline mode: a step's statements travel in one round trip).
 *
 * Read-modify-write strategies (explicit, begin, for-update, serializable):
 *       BEGIN; SELECT balance [FOR UPDATE]      -- ST_READ
 *       (check in C; compute the new balance)
 *       UPDATE SET balance = <new>; journal; COMMIT   -- ST_WRITE, or ROLLBACK
 *   explicit and begin (UNSAFE FOR MONEY) write the absolute value computed
 *   in the client, as the seed's ORM does: two transactions that both read
 *   100 both write 20, and one withdrawal is lost.  They send the same SQL;
 *   the seed's sections 2 and 3 differ only in who ends the transaction.
 *   for-update locks the row(s) in id order, so the second reader waits.
 *   serializable lets PostgreSQL detect the conflict (40001) and retries the
 *   whole transaction with jittered exponential backoff.
 * atomic:
 *       UPDATE ... SET balance = balance - $2 WHERE id = $1 AND balance >= $2
 *       RETURNING balance -- one statement; the WHERE clause is re-checked on
 *       the newest row version.  No row: a follow-up SELECT says why.  A
 *       transfer (or a keyed operation) runs such guarded statements inside
 *       one transaction, rows touched in id order so two opposite transfers
 *       never deadlock.
 * Idempotency keys: BEGIN; INSERT the key ON CONFLICT DO NOTHING (a second
 * claimant waits for the first to commit) -- ST_KEY; then the work, and the
 * outcome recorded under the key before COMMIT, refusals included.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statement parameters as text, built per step. */
typedef struct {
    char buf[8][24];
    const char *v[8];
} params;

static const char *num(params *p, int i, int64_t x)
{
    snprintf(p->buf[i], sizeof p->buf[i], "%lld", (long long)x);
    return p->v[i] = p->buf[i];
}

static const char *kind_name(pgbank_op_kind k)
{
    static const char *const names[] = {"withdraw", "deposit", "transfer", "balance", "open"};
    return (int)k >= 0 && k <= PGBANK_OP_OPEN ? names[k] : "?";
}

int pgbank__op_is_multistep(const pgbank_op *op)
{
    if (!pgbank__op_moves_money(op) || op->strategy == PGBANK_BATCH)
        return 0;
    return op->strategy != PGBANK_ATOMIC || op->kind == PGBANK_OP_TRANSFER || op->key;
}

static int read_writes_unlocked(const pgbank_op *op)
{
    return op->strategy == PGBANK_EXPLICIT || op->strategy == PGBANK_BEGIN ||
           op->strategy == PGBANK_SERIALIZABLE;
}

static int gated(const pgbank_op *op)
{
    return OP(op)->gate && read_writes_unlocked(op) && OP(op)->retries == 0;
}

static pgbank__sql_id begin_for(const pgbank_op *op)
{
    return op->strategy == PGBANK_SERIALIZABLE ? SQL_BEGIN_SERIALIZABLE : SQL_BEGIN;
}

/* New balances of a read-modify-write, from the values read. */
static int64_t new_from(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_DEPOSIT ? OP(op)->seen + op->amount : OP(op)->seen - op->amount;
}

static int64_t new_to(const pgbank_op *op) { return OP(op)->seen2 + op->amount; }

/* The outcome recorded under the operation's key: a stable code (sql.h)
 * and the balances, from which a replay rebuilds its result and message. */
static int send_key_set(pgbank__conn *c, const pgbank_op *op, int outcome, int64_t bal,
                        int64_t to_bal)
{
    params p;
    p.v[0] = op->key;
    num(&p, 1, outcome);
    num(&p, 2, bal);
    if (op->kind == PGBANK_OP_TRANSFER)
        num(&p, 3, to_bal);
    else
        p.v[3] = NULL;
    num(&p, 4, op->account);
    return pgbank__conn_send(c, SQL_KEY_SET, p.v);
}

/* One row's write of a read-modify-write: the absolute value computed in
 * the client, and (with the journal) the signed amount the operation meant
 * to move. */
static int send_set(pgbank__conn *c, const pgbank_op *op, int64_t account, int64_t value,
                    const char *what, int64_t meant)
{
    params p;
    num(&p, 0, account);
    num(&p, 1, value);
    if (!c->eng->journal)
        return pgbank__conn_send(c, SQL_SET_BALANCE, p.v);
    p.v[2] = what;
    num(&p, 3, meant);
    p.v[4] = pgbank_strategy_name(op->strategy);
    p.v[5] = op->key;
    return pgbank__conn_send(c, SQL_SET_BALANCE_J, p.v);
}

/* The read-modify-write's write: every row in id order, the key's record,
 * COMMIT.  The unsafe strategies journal the amount they meant to move. */
static int send_write(pgbank__conn *c, pgbank_op *op)
{
    int rc;
    int64_t a = new_from(op);
    if (op->kind == PGBANK_OP_TRANSFER) {
        int64_t b = new_to(op);
        if (op->account < op->to_account) {
            rc = send_set(c, op, op->account, a, "transfer out", -op->amount);
            if (rc == 0)
                rc = send_set(c, op, op->to_account, b, "transfer in", op->amount);
        } else {
            rc = send_set(c, op, op->to_account, b, "transfer in", op->amount);
            if (rc == 0)
                rc = send_set(c, op, op->account, a, "transfer out", -op->amount);
        }
    } else {
        rc = send_set(c, op, op->account, a, kind_name(op->kind),
                      op->kind == PGBANK_OP_DEPOSIT ? op->amount : -op->amount);
    }
    if (rc == 0 && op->key)
        rc = send_key_set(c, op, OUTCOME_OK, a, op->kind == PGBANK_OP_TRANSFER ? new_to(op) : 0);
    if (rc == 0)
        rc = pgbank__conn_send(c, SQL_COMMIT, NULL);
    return rc;
}

/* A guarded debit or an unguarded credit, journaled when the journal exists. */
static int send_change(pgbank__conn *c, const pgbank_op *op, int debit, int64_t account,
                       const char *what)
{
    params p;
    num(&p, 0, account);
    num(&p, 1, op->amount);
    if (!c->eng->journal)
        return pgbank__conn_send(c, debit ? SQL_DEBIT : SQL_CREDIT, p.v);
    p.v[2] = what;
    p.v[3] = op->key;
    p.v[4] = pgbank_strategy_name(op->strategy);
    return pgbank__conn_send(c, debit ? SQL_DEBIT_J : SQL_CREDIT_J, p.v);
}

/* The atomic transaction's statements, rows in id order. */
static int send_atomic_tx(pgbank__conn *c, pgbank_op *op)
{
    switch (op->kind) {
    case PGBANK_OP_WITHDRAW:
        return send_change(c, op, 1, op->account, "withdraw");
    case PGBANK_OP_DEPOSIT:
        return send_change(c, op, 0, op->account, "deposit");
    default:
        if (op->account < op->to_account) {
            int rc = send_change(c, op, 1, op->account, "transfer out");
            return rc ? rc : send_change(c, op, 0, op->to_account, "transfer in");
        } else {
            int rc = send_change(c, op, 0, op->to_account, "transfer in");
            return rc ? rc : send_change(c, op, 1, op->account, "transfer out");
        }
    }
}

static const pgbank__sink ops_sink;

/* Puts op's step in flight on c; a multi-step transaction keeps c to itself
 * until the operation ends. */
static void push(pgbank__conn *c, pgbank_op *op)
{
    OP(op)->conn = c;
    OP(op)->node.sink = &ops_sink;
    if (pgbank__op_is_multistep(op))
        c->exclusive = 1;
    pgbank__conn_push(c, &OP(op)->node);
}

/* The operation leaves its connection for good. */
static void done(pgbank__conn *c, pgbank_op *op, pgbank_status st)
{
    c->exclusive = 0;
    pgbank__engine_complete(c->eng, op, st);
}

/* Queues one step on the connection: its statements, then a Sync.  The
 * operation is put in the connection's in-flight list first, so a send that
 * breaks the connection still ends it exactly once. */
static int step(pgbank__conn *c, pgbank_op *op, int state)
{
    pgbank_engine *eng = c->eng;
    OP(op)->state = state;
    OP(op)->flags &= ~(OPF_FOUND | OPF_FOUND2 | OPF_NOROW | OPF_ERROR | OPF_KEY_MATCH);
    OP(op)->nres = 0;
    OP(op)->ntuples = 0;
    push(c, op);
    params p;
    int rc = 0, in_tx = OP(op)->flags & OPF_IN_TX;
    switch (state) {
    case ST_KEY:
        OP(op)->flags |= OPF_IN_TX;
        p.v[0] = op->key;
        p.v[1] = kind_name(op->kind);
        num(&p, 2, op->account);
        if (op->kind == PGBANK_OP_TRANSFER)
            num(&p, 3, op->to_account);
        else
            p.v[3] = NULL;
        num(&p, 4, op->amount);
        rc = pgbank__conn_send(c, begin_for(op), NULL);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_KEY_CLAIM, p.v);
        break;
    case ST_KEY_READ:
        p.v[0] = op->key;
        num(&p, 1, op->account);
        rc = pgbank__conn_send(c, SQL_KEY_READ, p.v);
        break;
    case ST_READ:
        OP(op)->flags |= OPF_IN_TX;
        if (!in_tx)
            rc = pgbank__conn_send(c, begin_for(op), NULL);
        num(&p, 0, op->account);
        num(&p, 1, op->to_account);
        if (rc == 0 && op->kind == PGBANK_OP_TRANSFER &&
            (op->strategy == PGBANK_FOR_UPDATE || eng->route_fn)) {
            /* one row at a time, in id order (sql.c) */
            pgbank__sql_id q =
                op->strategy == PGBANK_FOR_UPDATE ? SQL_SELECT_ROW_FOR_UPDATE : SQL_SELECT_ROW;
            int lo = op->account < op->to_account ? 0 : 1;
            rc = pgbank__conn_send(c, q, p.v + lo);
            if (rc == 0)
                rc = pgbank__conn_send(c, q, p.v + (1 - lo));
        } else if (rc == 0 && op->kind == PGBANK_OP_TRANSFER)
            rc = pgbank__conn_send(c, SQL_SELECT_PAIR, p.v);
        else if (rc == 0)
            rc = pgbank__conn_send(
                c, op->strategy == PGBANK_FOR_UPDATE ? SQL_SELECT_FOR_UPDATE : SQL_SELECT_BALANCE,
                p.v);
        break;
    case ST_WRITE:
        OP(op)->flags |= OPF_WRITE_SENT;
        rc = send_write(c, op);
        break;
    case ST_REFUSE_KEY:
        OP(op)->flags |= OPF_WRITE_SENT;
        rc = send_key_set(c, op, OP(op)->outcome, op->result.balance, op->result.to_balance);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_COMMIT, NULL);
        break;
    case ST_ROLLBACK:
        rc = pgbank__conn_send(c, SQL_ROLLBACK, NULL);
        break;
    case ST_ATOMIC:
        OP(op)->flags |= OPF_WRITE_SENT;
        rc = send_change(c, op, op->kind == PGBANK_OP_WITHDRAW, op->account, kind_name(op->kind));
        break;
    case ST_ATOMIC_ONE:
        OP(op)->flags |= OPF_WRITE_SENT;
        OP(op)->flags &= ~OPF_BALANCE_HIDDEN;
        p.v[0] = op->kind == PGBANK_OP_WITHDRAW ? "0" : "1";
        num(&p, 1, op->account);
        num(&p, 2, op->amount);
        rc = pgbank__conn_send(c, SQL_ATOMIC_ONE, p.v);
        break;
    case ST_ATOMIC_TX:
        OP(op)->flags |= OPF_IN_TX;
        OP(op)->flags &= ~(OPF_DEBIT_OK | OPF_CREDIT_OK);
        if (!in_tx)
            rc = pgbank__conn_send(c, SQL_BEGIN, NULL);
        if (rc == 0 && op->key && op->kind == PGBANK_OP_TRANSFER)
            rc = pgbank__conn_send(c, SQL_SAVEPOINT, NULL);
        if (rc == 0)
            rc = send_atomic_tx(c, op);
        break;
    case ST_ATOMIC_TX_SEEN:
        if (op->key && op->kind == PGBANK_OP_TRANSFER)
            rc = pgbank__conn_send(c, SQL_ROLLBACK_TO_SAVEPOINT, NULL);
        /* fall through */
    case ST_ATOMIC_SEEN:
    case ST_BALANCE:
        num(&p, 0, op->account);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_SELECT_BALANCE, p.v);
        break;
    case ST_COMMIT:
        OP(op)->flags |= OPF_WRITE_SENT;
        if (op->key)
            rc = send_key_set(c, op, OUTCOME_OK, op->result.balance, op->result.to_balance);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_COMMIT, NULL);
        break;
    case ST_OPEN:
        OP(op)->flags |= OPF_WRITE_SENT;
        num(&p, 0, op->amount);
        rc = pgbank__conn_send(
            c, eng->journal ? SQL_OPEN_J : eng->id_has_default ? SQL_OPEN : SQL_OPEN_NO_DEFAULT,
            p.v);
        break;
    default:
        return -1;
    }
    if (rc == 0)
        rc = pgbank__conn_sync(c);
    return rc;
}

/* The first step of the work itself (after the key is claimed, if any). */
static int start_work(pgbank__conn *c, pgbank_op *op)
{
    switch (op->kind) {
    case PGBANK_OP_BALANCE:
        return step(c, op, ST_BALANCE);
    case PGBANK_OP_OPEN:
        return step(c, op, ST_OPEN);
    default:
        if (op->strategy != PGBANK_ATOMIC)
            return step(c, op, ST_READ);
        if (pgbank__op_is_multistep(op))
            return step(c, op, ST_ATOMIC_TX);
        /* Citus: the journaled statement would commit in two phases. */
        return step(c, op, c->eng->atomic_one_fn && c->eng->journal ? ST_ATOMIC_ONE : ST_ATOMIC);
    }
}

int pgbank__op_start(pgbank__conn *c, pgbank_op *op)
{
    if (!OP(op)->first_try_ns)
        OP(op)->first_try_ns = pgbank__now_ns();
    if (op->key && pgbank__op_moves_money(op)) {
        if (!c->eng->journal) {
            pgbank__op_set_message(c->eng, op, PGBANK_SQLSTATE_UNDEFINED_TABLE,
                                   "idempotency keys need pgbank's journal: run 'pgbank init'");
            done(c, op, PGBANK_DB_ERROR);
            return 0;
        }
        return step(c, op, ST_KEY);
    }
    return start_work(c, op);
}

/* Which change a tuple result of ST_ATOMIC_TX answers: 1 debit, 0 credit. */
static int atomic_tx_is_debit(const pgbank_op *op, int k)
{
    if (op->kind != PGBANK_OP_TRANSFER)
        return op->kind == PGBANK_OP_WITHDRAW;
    return (op->account < op->to_account) ? k == 0 : k == 1;
}

static void key_compare(pgbank_engine *eng, pgbank_op *op, PGresult *r)
{
    OP(op)->flags |= OPF_FOUND;
    const char *kop = PQgetvalue(r, 0, 0);
    int64_t acc = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t to = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    int64_t amount = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    const char *outcome = PQgetvalue(r, 0, 4);
    int same = strcmp(kop, kind_name(op->kind)) == 0 && acc == op->account &&
               amount == op->amount && (op->kind != PGBANK_OP_TRANSFER || to == op->to_account);
    if (!same) {
        char m[256];
        if (strcmp(kop, "transfer") == 0)
            snprintf(m, sizeof m, "key already used for transfer of %lld from account %lld to %lld",
                     (long long)amount, (long long)acc, (long long)to);
        else
            snprintf(m, sizeof m, "key already used for %s of %lld on account %lld", kop,
                     (long long)amount, (long long)acc);
        pgbank__op_set_message(eng, op, "", m);
        return;
    }
    OP(op)->flags |= OPF_KEY_MATCH;
    op->result.balance = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    op->result.to_balance = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    /* The recorded outcome's code, never its wording (schema 4). */
    op->result.status = pgbank__op_outcome(eng, op, atoi(outcome));
}

static void op_result(pgbank__conn *c, pgbank__node *n, PGresult *r)
{
    pgbank_op *op = OP_OF_NODE(n);
    OP(op)->nres++;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        if (!(OP(op)->flags & OPF_ERROR)) {
            const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            pgbank__op_set_message(c->eng, op, ss ? ss : PGBANK_SQLSTATE_INTERNAL_ERROR, m ? m : PQresultErrorMessage(r));
            OP(op)->flags |= OPF_ERROR;
        }
        return;
    }
    if (st == PGRES_COMMAND_OK) {
        if (strncmp(PQcmdStatus(r), "UPDATE", 6) == 0 && strcmp(PQcmdTuples(r), "0") == 0)
            OP(op)->flags |= OPF_NOROW;
        return;
    }
    int rows = PQntuples(r);
    switch (OP(op)->state) {
    case ST_KEY_READ:
        if (rows > 0)
            key_compare(c->eng, op, r);
        return;
    case ST_READ:
        if (op->kind == PGBANK_OP_TRANSFER) {
            for (int i = 0; i < rows; i++) {
                int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
                int64_t bal = strtoll(PQgetvalue(r, i, 1), NULL, 10);
                if (id == op->account) {
                    OP(op)->flags |= OPF_FOUND;
                    OP(op)->seen = bal;
                } else if (id == op->to_account) {
                    OP(op)->flags |= OPF_FOUND2;
                    OP(op)->seen2 = bal;
                }
            }
            return;
        }
        break;
    case ST_ATOMIC_ONE:
        if (rows > 0) {
            OP(op)->flags |= OPF_FOUND;
            OP(op)->outcome = atoi(PQgetvalue(r, 0, 0));
            if (PQgetisnull(r, 0, 1))
                OP(op)->flags |= OPF_BALANCE_HIDDEN;
            else
                OP(op)->seen = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        }
        return;
    case ST_ATOMIC_TX: {
        /* Tuple results arrive in statement order: which change is this? */
        int debit = atomic_tx_is_debit(op, OP(op)->ntuples++);
        if (rows > 0) {
            int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            if (debit || op->kind == PGBANK_OP_DEPOSIT) {
                OP(op)->flags |= debit ? OPF_DEBIT_OK : OPF_CREDIT_OK;
                OP(op)->seen = v;
            } else {
                OP(op)->flags |= OPF_CREDIT_OK;
                OP(op)->seen2 = v;
            }
        }
        return;
    }
    default:
        break;
    }
    if (rows > 0 && !PQgetisnull(r, 0, 0)) {
        OP(op)->flags |= OPF_FOUND;
        OP(op)->seen = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
}

/* Ends the operation; a transaction still open is rolled back first, the
 * result staying what was decided. */
static int finish(pgbank__conn *c, pgbank_op *op, pgbank_status st)
{
    if ((OP(op)->flags & OPF_IN_TX) && OP(op)->state != ST_ROLLBACK) {
        OP(op)->flags &= ~(OPF_IN_TX | OPF_WRITE_SENT); /* a ROLLBACK commits nothing */
        op->result.status = st;
        OP(op)->flags |= OPF_DEFER;
        return step(c, op, ST_ROLLBACK);
    }
    done(c, op, st);
    return 0;
}

/* A refusal by the bank's rules (an outcome code; `seen`, the balance that
 * was too low).  Under a key it is recorded and committed, so a retry with
 * the same key gets the same answer. */
static int refuse(pgbank__conn *c, pgbank_op *op, int outcome, int64_t seen)
{
    if (outcome == OUTCOME_INSUFFICIENT_FUNDS)
        op->result.balance = seen;
    pgbank_status st = pgbank__op_outcome(c->eng, op, outcome);
    op->result.status = st;
    if (op->key && pgbank__op_moves_money(op) && (OP(op)->flags & OPF_IN_TX)) {
        OP(op)->flags |= OPF_DEFER;
        return step(c, op, ST_REFUSE_KEY);
    }
    return finish(c, op, st);
}

/* Read done, for a read-modify-write: check in C, then write (or hold at the
 * gate until every gated operation has read). */
static int after_read(pgbank__conn *c, pgbank_op *op)
{
    int64_t max = c->eng->balance_max;
    int f = OP(op)->flags;
    if (!(f & OPF_FOUND))
        return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
    if (op->kind == PGBANK_OP_TRANSFER && !(f & OPF_FOUND2))
        return refuse(c, op, OUTCOME_NO_SUCH_DESTINATION, 0);
    if (op->kind != PGBANK_OP_DEPOSIT && OP(op)->seen < op->amount)
        return refuse(c, op, OUTCOME_INSUFFICIENT_FUNDS, OP(op)->seen);
    int64_t credited = op->kind == PGBANK_OP_DEPOSIT    ? OP(op)->seen
                       : op->kind == PGBANK_OP_TRANSFER ? OP(op)->seen2
                                                        : 0;
    if (op->kind != PGBANK_OP_WITHDRAW && credited > max - op->amount) {
        pgbank__op_set_message(c->eng, op, PGBANK_SQLSTATE_NUMERIC_OUT_OF_RANGE,
                               "the new balance would not fit the balance column");
        return finish(c, op, PGBANK_INVALID_AMOUNT);
    }
    if (gated(op)) {
        /* Held with its transaction open: it keeps its connection (a node
         * with no Sync: the connection knows it is busy, and a connection
         * that dies loses it). */
        OP(op)->state = ST_GATE;
        push(c, op);
        OP(op)->next = c->eng->held;
        c->eng->held = op;
        pgbank__gate_count(c->eng, op);
        return 0;
    }
    return step(c, op, ST_WRITE);
}

/* Releases the operations held at every gate that has all its operations
 * (each goes on to its write, on the connection it kept). */
void pgbank__ops_release_gates(pgbank_engine *eng)
{
    eng->gates_full = 0;
    pgbank_op **pp = &eng->held;
    while (*pp) {
        pgbank_op *op = *pp;
        if (OP(op)->gate->arrived < OP(op)->gate->expected) {
            pp = &OP(op)->next;
            continue;
        }
        *pp = OP(op)->next;
        OP(op)->next = NULL;
        pgbank__conn *c = OP(op)->conn;
        pgbank__conn_take(c, &OP(op)->node);
        if (step(c, op, ST_WRITE) < 0)
            pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_FAILURE, PQerrorMessage(c->pg));
    }
}

/* serializable: 40001/40P01 retries the whole transaction after a jittered
 * exponential backoff, within the budget of tries and time. */
static int retry_or_give_up(pgbank__conn *c, pgbank_op *op)
{
    pgbank_engine *eng = c->eng;
    int64_t now = pgbank__now_ns();
    if (OP(op)->retries >= eng->opt.retry_max ||
        now - OP(op)->first_try_ns > (int64_t)eng->opt.retry_budget_ms * 1000000) {
        char m[400], state[6];
        snprintf(m, sizeof m, "gave up after %d retries: %s", OP(op)->retries,
                 op->result.message);
        memcpy(state, op->result.sqlstate, sizeof state);
        pgbank__op_set_message(eng, op, state, m);
        return finish(c, op, PGBANK_RETRIES_EXHAUSTED);
    }
    if (OP(op)->flags & OPF_IN_TX) {
        OP(op)->flags &= ~(OPF_IN_TX | OPF_WRITE_SENT);
        OP(op)->flags |= OPF_RETRY;
        return step(c, op, ST_ROLLBACK);
    }
    OP(op)->flags &= ~OPF_RETRY;
    OP(op)->retries++;
    int shift = OP(op)->retries < 7 ? OP(op)->retries : 7;
    int64_t base_us = 1000LL << shift; /* 2 ms, 4 ms, ... 128 ms */
    if (base_us > 100000)
        base_us = 100000;
    int64_t jitter_us = (int64_t)pgbank__rand_below(&eng->rng, (uint64_t)base_us);
    c->exclusive = 0;
    pgbank__engine_delay(eng, op, now + (base_us / 2 + jitter_us) * 1000);
    return 0;
}

static int after_atomic_tx(pgbank__conn *c, pgbank_op *op)
{
    int f = OP(op)->flags;
    int debit_needed = op->kind != PGBANK_OP_DEPOSIT;
    int credit_needed = op->kind != PGBANK_OP_WITHDRAW;
    int ok = (!debit_needed || (f & OPF_DEBIT_OK)) && (!credit_needed || (f & OPF_CREDIT_OK));
    if (ok) {
        op->result.balance = OP(op)->seen;
        op->result.to_balance = OP(op)->seen2;
        return step(c, op, ST_COMMIT);
    }
    if (op->kind == PGBANK_OP_DEPOSIT)
        return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
    return step(c, op, ST_ATOMIC_TX_SEEN); /* why did it fail? */
}

static int after_atomic_tx_seen(pgbank__conn *c, pgbank_op *op)
{
    int f = OP(op)->flags;
    if (op->kind == PGBANK_OP_TRANSFER && (f & OPF_DEBIT_OK))
        return refuse(c, op, OUTCOME_NO_SUCH_DESTINATION, 0);
    if (!(f & OPF_FOUND))
        return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
    if (op->kind == PGBANK_OP_TRANSFER && !(f & OPF_CREDIT_OK) && OP(op)->seen >= op->amount)
        return refuse(c, op, OUTCOME_NO_SUCH_DESTINATION, 0);
    return refuse(c, op, OUTCOME_INSUFFICIENT_FUNDS, OP(op)->seen);
}

static int op_synced(pgbank__conn *c, pgbank__node *n)
{
    pgbank_op *op = OP_OF_NODE(n);
    int flags = OP(op)->flags;
    int state = OP(op)->state;
    if (state == ST_ROLLBACK) {
        if (flags & OPF_RETRY)
            return retry_or_give_up(c, op);
        done(c, op, (flags & OPF_DEFER) ? op->result.status : PGBANK_DB_ERROR);
        return 0;
    }
    if (flags & OPF_ERROR) {
        /* The server answered: nothing is in doubt.  A transaction block
         * that failed mid-pipeline stays open (aborted) until ROLLBACK, so
         * IN_TX stays set; if COMMIT itself failed, the extra ROLLBACK only
         * draws a warning. */
        OP(op)->flags &= ~OPF_WRITE_SENT;
        if (op->strategy == PGBANK_SERIALIZABLE && pgbank__sqlstate_retryable(op->result.sqlstate))
            return retry_or_give_up(c, op);
        if (pgbank__sqlstate_is(op->result.sqlstate, PGBANK_SQLSTATE_NUMERIC_OUT_OF_RANGE))
            return finish(c, op, PGBANK_INVALID_AMOUNT); /* the new balance overflows the column */
        return finish(c, op, PGBANK_DB_ERROR);
    }
    switch (state) {
    case ST_KEY:
        if (flags & OPF_FOUND)
            return start_work(c, op); /* claimed: do the work in this transaction */
        return step(c, op, ST_KEY_READ);
    case ST_KEY_READ:
        if (!(flags & OPF_FOUND)) {
            pgbank__op_set_message(c->eng, op, "", "the idempotency key vanished");
            return finish(c, op, PGBANK_DB_ERROR);
        }
        if (!(flags & OPF_KEY_MATCH))
            return finish(c, op, PGBANK_CONFLICT);
        /* The original outcome.  When resolving our own lost attempt it is
         * not a replay: it is this operation's result. */
        op->result.replayed = !(flags & OPF_RESOLVING);
        return finish(c, op, op->result.status);
    case ST_READ:
        return after_read(c, op);
    case ST_WRITE:
        OP(op)->flags &= ~(OPF_WRITE_SENT | OPF_IN_TX); /* COMMIT succeeded */
        op->result.balance = new_from(op);
        if (op->kind == PGBANK_OP_TRANSFER)
            op->result.to_balance = new_to(op);
        return finish(c, op, PGBANK_OK);
    case ST_REFUSE_KEY:
    case ST_COMMIT:
        OP(op)->flags &= ~(OPF_WRITE_SENT | OPF_IN_TX);
        return finish(c, op, state == ST_COMMIT ? PGBANK_OK : op->result.status);
    case ST_ATOMIC:
        OP(op)->flags &= ~OPF_WRITE_SENT;
        if (flags & OPF_FOUND) {
            op->result.balance = OP(op)->seen;
            return finish(c, op, PGBANK_OK);
        }
        if (op->kind == PGBANK_OP_DEPOSIT)
            return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
        return step(c, op, ST_ATOMIC_SEEN);
    case ST_ATOMIC_SEEN:
        if (!(flags & OPF_FOUND))
            return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
        if (OP(op)->seen >= op->amount && ++OP(op)->tries < 3)
            return step(c, op, ST_ATOMIC); /* the balance rose meanwhile: try again */
        return refuse(c, op, OUTCOME_INSUFFICIENT_FUNDS, OP(op)->seen);
    case ST_ATOMIC_ONE:
        OP(op)->flags &= ~OPF_WRITE_SENT;
        if (!(flags & OPF_FOUND)) {
            pgbank__op_set_message(c->eng, op, "", "pgbank_atomic_one() returned no row");
            return finish(c, op, PGBANK_DB_ERROR);
        }
        if (OP(op)->outcome == OUTCOME_OK) {
            op->result.balance = OP(op)->seen;
            return finish(c, op, PGBANK_OK);
        }
        /* The refusal's balance is read after the guard failed: one that
         * rose meanwhile is tried again, as ST_ATOMIC_SEEN does. */
        if (OP(op)->outcome == OUTCOME_INSUFFICIENT_FUNDS && !(flags & OPF_BALANCE_HIDDEN) &&
            OP(op)->seen >= op->amount && ++OP(op)->tries < 3)
            return step(c, op, ST_ATOMIC_ONE);
        return refuse(c, op, OP(op)->outcome, OP(op)->seen);
    case ST_ATOMIC_TX:
        return after_atomic_tx(c, op);
    case ST_ATOMIC_TX_SEEN:
        return after_atomic_tx_seen(c, op);
    case ST_BALANCE:
        if (!(flags & OPF_FOUND))
            return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
        op->result.balance = OP(op)->seen;
        return finish(c, op, PGBANK_OK);
    case ST_OPEN:
        OP(op)->flags &= ~OPF_WRITE_SENT;
        op->result.account = OP(op)->seen;
        op->result.balance = op->amount;
        return finish(c, op, PGBANK_OK);
    default:
        return finish(c, op, PGBANK_DB_ERROR);
    }
}

/* The connection died with op in flight (core.c decides what it means). */
static void op_lost(pgbank__conn *c, pgbank__node *n, const char *msg)
{
    pgbank_op *op = OP_OF_NODE(n);
    if (OP(op)->state == ST_GATE) {
        pgbank_op **pp = &c->eng->held;
        while (*pp && *pp != op)
            pp = &OP(*pp)->next;
        if (*pp)
            *pp = OP(op)->next;
    }
    pgbank__op_lost(c->eng, op, msg);
}

static const pgbank__sink ops_sink = {op_result, op_synced, op_lost};
