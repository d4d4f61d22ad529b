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

static int moves_money(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_WITHDRAW || op->kind == PGBANK_OP_DEPOSIT ||
           op->kind == PGBANK_OP_TRANSFER;
}

int pgbank__op_is_multistep(const pgbank_op *op)
{
    if (!moves_money(op) || op->strategy == PGBANK_BATCH)
        return 0;
    return op->strategy != PGBANK_ATOMIC || op->kind == PGBANK_OP_TRANSFER || op->key;
}

const char *pgbank__op_invalid(const pgbank_engine *eng, const pgbank_op *op, pgbank_status *st)
{
    *st = PGBANK_INVALID_AMOUNT;
    if (moves_money(op)) {
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

static int read_writes_unlocked(const pgbank_op *op)
{
    return op->strategy == PGBANK_EXPLICIT || op->strategy == PGBANK_BEGIN ||
           op->strategy == PGBANK_SERIALIZABLE;
}

static int gated(const pgbank_op *op)
{
    return op->gate && read_writes_unlocked(op) && op->priv.retries == 0;
}

static pgbank__sql_id begin_for(const pgbank_op *op)
{
    return op->strategy == PGBANK_SERIALIZABLE ? SQL_BEGIN_SERIALIZABLE : SQL_BEGIN;
}

/* New balances of a read-modify-write, from the values read. */
static int64_t new_from(const pgbank_op *op)
{
    return op->kind == PGBANK_OP_DEPOSIT ? op->priv.seen + op->amount : op->priv.seen - op->amount;
}

static int64_t new_to(const pgbank_op *op) { return op->priv.seen2 + op->amount; }

static int send_journal(pgbank__conn *c, const pgbank_op *op, int64_t account, const char *what,
                        int64_t change, int64_t after)
{
    params p;
    num(&p, 0, account);
    p.v[1] = what;
    num(&p, 2, change);
    num(&p, 3, after);
    p.v[4] = pgbank_strategy_name(op->strategy);
    p.v[5] = op->key;
    return pgbank__conn_send(c, SQL_JOURNAL, p.v);
}

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
    return pgbank__conn_send(c, SQL_KEY_SET, p.v);
}

/* The read-modify-write's write: every row in id order, its journal rows,
 * the key's record, COMMIT. */
static int send_write(pgbank__conn *c, pgbank_op *op)
{
    pgbank_engine *eng = c->eng;
    params p;
    int rc;
    int64_t a = new_from(op);
    if (op->kind == PGBANK_OP_TRANSFER) {
        int64_t b = new_to(op);
        int from_first = op->account < op->to_account;
        num(&p, 0, from_first ? op->account : op->to_account);
        num(&p, 1, from_first ? a : b);
        num(&p, 2, from_first ? op->to_account : op->account);
        num(&p, 3, from_first ? b : a);
        rc = pgbank__conn_send(c, SQL_SET_BALANCE, p.v);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_SET_BALANCE, p.v + 2);
        if (rc == 0 && eng->journal)
            rc = send_journal(c, op, op->account, "transfer out", -op->amount, a);
        if (rc == 0 && eng->journal)
            rc = send_journal(c, op, op->to_account, "transfer in", op->amount, b);
    } else {
        num(&p, 0, op->account);
        num(&p, 1, a);
        rc = pgbank__conn_send(c, SQL_SET_BALANCE, p.v);
        /* The unsafe strategies journal the amount they meant to move. */
        if (rc == 0 && eng->journal)
            rc = send_journal(c, op, op->account, kind_name(op->kind),
                              op->kind == PGBANK_OP_DEPOSIT ? op->amount : -op->amount, a);
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

/* Queues one step on the connection: its statements, then a Sync.  The
 * operation is put in the connection's in-flight list first, so a send that
 * breaks the connection still ends it exactly once. */
static int step(pgbank__conn *c, pgbank_op *op, int state)
{
    pgbank_engine *eng = c->eng;
    op->priv.state = state;
    op->priv.flags &= ~(OPF_FOUND | OPF_FOUND2 | OPF_NOROW | OPF_ERROR | OPF_KEY_MATCH);
    op->priv.nres = 0;
    op->priv.ntuples = 0;
    pgbank__conn_push(c, op);
    params p;
    int rc = 0, in_tx = op->priv.flags & OPF_IN_TX;
    switch (state) {
    case ST_KEY:
        op->priv.flags |= OPF_IN_TX;
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
        rc = pgbank__conn_send(c, SQL_KEY_READ, p.v);
        break;
    case ST_READ:
        op->priv.flags |= OPF_IN_TX;
        if (!in_tx)
            rc = pgbank__conn_send(c, begin_for(op), NULL);
        num(&p, 0, op->account);
        num(&p, 1, op->to_account);
        if (rc == 0 && op->kind == PGBANK_OP_TRANSFER)
            rc = pgbank__conn_send(c, op->strategy == PGBANK_FOR_UPDATE ? SQL_SELECT_PAIR_FOR_UPDATE
                                                                         : SQL_SELECT_PAIR,
                                   p.v);
        else if (rc == 0)
            rc = pgbank__conn_send(
                c, op->strategy == PGBANK_FOR_UPDATE ? SQL_SELECT_FOR_UPDATE : SQL_SELECT_BALANCE,
                p.v);
        break;
    case ST_WRITE:
        op->priv.flags |= OPF_WRITE_SENT;
        rc = send_write(c, op);
        break;
    case ST_REFUSE_KEY:
        op->priv.flags |= OPF_WRITE_SENT;
        rc = send_key_set(c, op, op->priv.outcome, op->result.balance, op->result.to_balance);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_COMMIT, NULL);
        break;
    case ST_ROLLBACK:
        rc = pgbank__conn_send(c, SQL_ROLLBACK, NULL);
        break;
    case ST_ATOMIC:
        op->priv.flags |= OPF_WRITE_SENT;
        rc = send_change(c, op, op->kind == PGBANK_OP_WITHDRAW, op->account, kind_name(op->kind));
        break;
    case ST_ATOMIC_TX:
        op->priv.flags |= OPF_IN_TX;
        op->priv.flags &= ~(OPF_DEBIT_OK | OPF_CREDIT_OK);
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
        op->priv.flags |= OPF_WRITE_SENT;
        if (op->key)
            rc = send_key_set(c, op, OUTCOME_OK, op->result.balance, op->result.to_balance);
        if (rc == 0)
            rc = pgbank__conn_send(c, SQL_COMMIT, NULL);
        break;
    case ST_OPEN:
        op->priv.flags |= OPF_WRITE_SENT;
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
        return step(c, op, pgbank__op_is_multistep(op) ? ST_ATOMIC_TX : ST_ATOMIC);
    }
}

int pgbank__op_start(pgbank__conn *c, pgbank_op *op)
{
    if (!op->priv.first_try_ns)
        op->priv.first_try_ns = pgbank__now_ns();
    if (op->key && moves_money(op)) {
        if (!c->eng->journal) {
            pgbank__op_set_message(c->eng, op, PGBANK_SQLSTATE_UNDEFINED_TABLE,
                                   "idempotency keys need pgbank's journal: run 'pgbank init'");
            pgbank__engine_complete(c->eng, op, PGBANK_DB_ERROR);
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
    op->priv.flags |= OPF_FOUND;
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
    op->priv.flags |= OPF_KEY_MATCH;
    op->result.balance = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    op->result.to_balance = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    /* The recorded outcome's code, never its wording (schema 4). */
    op->result.status = pgbank__op_outcome(eng, op, atoi(outcome));
}

void pgbank__op_result(pgbank__conn *c, pgbank_op *op, PGresult *r)
{
    op->priv.nres++;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        if (!(op->priv.flags & OPF_ERROR)) {
            const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            pgbank__op_set_message(c->eng, op, ss ? ss : PGBANK_SQLSTATE_INTERNAL_ERROR, m ? m : PQresultErrorMessage(r));
            op->priv.flags |= OPF_ERROR;
        }
        return;
    }
    if (st == PGRES_COMMAND_OK) {
        if (strncmp(PQcmdStatus(r), "UPDATE", 6) == 0 && strcmp(PQcmdTuples(r), "0") == 0)
            op->priv.flags |= OPF_NOROW;
        return;
    }
    int rows = PQntuples(r);
    switch (op->priv.state) {
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
                    op->priv.flags |= OPF_FOUND;
                    op->priv.seen = bal;
                } else if (id == op->to_account) {
                    op->priv.flags |= OPF_FOUND2;
                    op->priv.seen2 = bal;
                }
            }
            return;
        }
        break;
    case ST_ATOMIC_TX: {
        /* Tuple results arrive in statement order: which change is this? */
        int debit = atomic_tx_is_debit(op, op->priv.ntuples++);
        if (rows > 0) {
            int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            if (debit || op->kind == PGBANK_OP_DEPOSIT) {
                op->priv.flags |= debit ? OPF_DEBIT_OK : OPF_CREDIT_OK;
                op->priv.seen = v;
            } else {
                op->priv.flags |= OPF_CREDIT_OK;
                op->priv.seen2 = v;
            }
        }
        return;
    }
    default:
        break;
    }
    if (rows > 0 && !PQgetisnull(r, 0, 0)) {
        op->priv.flags |= OPF_FOUND;
        op->priv.seen = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
}

/* Ends the operation; a transaction still open is rolled back first, the
 * result staying what was decided. */
static int finish(pgbank__conn *c, pgbank_op *op, pgbank_status st)
{
    if ((op->priv.flags & OPF_IN_TX) && op->priv.state != ST_ROLLBACK) {
        op->priv.flags &= ~(OPF_IN_TX | OPF_WRITE_SENT); /* a ROLLBACK commits nothing */
        op->result.status = st;
        op->priv.flags |= OPF_DEFER;
        return step(c, op, ST_ROLLBACK);
    }
    pgbank__engine_complete(c->eng, op, st);
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
    if (op->key && moves_money(op) && (op->priv.flags & OPF_IN_TX)) {
        op->priv.flags |= OPF_DEFER;
        return step(c, op, ST_REFUSE_KEY);
    }
    return finish(c, op, st);
}

/* Read done, for a read-modify-write: check in C, then write (or hold at the
 * gate until every gated operation has read). */
static int after_read(pgbank__conn *c, pgbank_op *op)
{
    int64_t max = c->eng->balance_max;
    int f = op->priv.flags;
    if (!(f & OPF_FOUND))
        return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
    if (op->kind == PGBANK_OP_TRANSFER && !(f & OPF_FOUND2))
        return refuse(c, op, OUTCOME_NO_SUCH_DESTINATION, 0);
    if (op->kind != PGBANK_OP_DEPOSIT && op->priv.seen < op->amount)
        return refuse(c, op, OUTCOME_INSUFFICIENT_FUNDS, op->priv.seen);
    int64_t credited = op->kind == PGBANK_OP_DEPOSIT    ? op->priv.seen
                       : op->kind == PGBANK_OP_TRANSFER ? op->priv.seen2
                                                        : 0;
    if (op->kind != PGBANK_OP_WITHDRAW && credited > max - op->amount) {
        pgbank__op_set_message(c->eng, op, PGBANK_SQLSTATE_NUMERIC_OUT_OF_RANGE,
                               "the new balance would not fit the balance column");
        return finish(c, op, PGBANK_INVALID_AMOUNT);
    }
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
            pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_FAILURE, PQerrorMessage(c->pg));
    }
}

/* serializable: 40001/40P01 retries the whole transaction after a jittered
 * exponential backoff, within the budget of tries and time. */
static int retry_or_give_up(pgbank__conn *c, pgbank_op *op)
{
    pgbank_engine *eng = c->eng;
    int64_t now = pgbank__now_ns();
    if (op->priv.retries >= eng->opt.retry_max ||
        now - op->priv.first_try_ns > (int64_t)eng->opt.retry_budget_ms * 1000000) {
        char m[400], state[6];
        snprintf(m, sizeof m, "gave up after %d retries: %s", op->priv.retries,
                 op->result.message);
        memcpy(state, op->result.sqlstate, sizeof state);
        pgbank__op_set_message(eng, op, state, m);
        return finish(c, op, PGBANK_RETRIES_EXHAUSTED);
    }
    if (op->priv.flags & OPF_IN_TX) {
        op->priv.flags &= ~(OPF_IN_TX | OPF_WRITE_SENT);
        op->priv.flags |= OPF_RETRY;
        return step(c, op, ST_ROLLBACK);
    }
    op->priv.flags &= ~OPF_RETRY;
    op->priv.retries++;
    int shift = op->priv.retries < 7 ? op->priv.retries : 7;
    int64_t base_us = 1000LL << shift; /* 2 ms, 4 ms, ... 128 ms */
    if (base_us > 100000)
        base_us = 100000;
    int64_t jitter_us = (int64_t)pgbank__rand_below(&eng->rng, (uint64_t)base_us);
    pgbank__engine_delay(eng, op, now + (base_us / 2 + jitter_us) * 1000);
    return 0;
}

static int after_atomic_tx(pgbank__conn *c, pgbank_op *op)
{
    int f = op->priv.flags;
    int debit_needed = op->kind != PGBANK_OP_DEPOSIT;
    int credit_needed = op->kind != PGBANK_OP_WITHDRAW;
    int ok = (!debit_needed || (f & OPF_DEBIT_OK)) && (!credit_needed || (f & OPF_CREDIT_OK));
    if (ok) {
        op->result.balance = op->priv.seen;
        op->result.to_balance = op->priv.seen2;
        return step(c, op, ST_COMMIT);
    }
    if (op->kind == PGBANK_OP_DEPOSIT)
        return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
    return step(c, op, ST_ATOMIC_TX_SEEN); /* why did it fail? */
}

static int after_atomic_tx_seen(pgbank__conn *c, pgbank_op *op)
{
    int f = op->priv.flags;
    if (op->kind == PGBANK_OP_TRANSFER && (f & OPF_DEBIT_OK))
        return refuse(c, op, OUTCOME_NO_SUCH_DESTINATION, 0);
    if (!(f & OPF_FOUND))
        return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
    if (op->kind == PGBANK_OP_TRANSFER && !(f & OPF_CREDIT_OK) && op->priv.seen >= op->amount)
        return refuse(c, op, OUTCOME_NO_SUCH_DESTINATION, 0);
    return refuse(c, op, OUTCOME_INSUFFICIENT_FUNDS, op->priv.seen);
}

int pgbank__op_synced(pgbank__conn *c, pgbank_op *op)
{
    int flags = op->priv.flags;
    int state = op->priv.state;
    if (state == ST_ROLLBACK) {
        if (flags & OPF_RETRY)
            return retry_or_give_up(c, op);
        pgbank__engine_complete(c->eng, op, (flags & OPF_DEFER) ? op->result.status : PGBANK_DB_ERROR);
        return 0;
    }
    if (flags & OPF_ERROR) {
        /* The server answered: nothing is in doubt.  A transaction block
         * that failed mid-pipeline stays open (aborted) until ROLLBACK, so
         * IN_TX stays set; if COMMIT itself failed, the extra ROLLBACK only
         * draws a warning. */
        op->priv.flags &= ~OPF_WRITE_SENT;
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
        op->priv.flags &= ~(OPF_WRITE_SENT | OPF_IN_TX); /* COMMIT succeeded */
        op->result.balance = new_from(op);
        if (op->kind == PGBANK_OP_TRANSFER)
            op->result.to_balance = new_to(op);
        return finish(c, op, PGBANK_OK);
    case ST_REFUSE_KEY:
    case ST_COMMIT:
        op->priv.flags &= ~(OPF_WRITE_SENT | OPF_IN_TX);
        return finish(c, op, state == ST_COMMIT ? PGBANK_OK : op->result.status);
    case ST_ATOMIC:
        op->priv.flags &= ~OPF_WRITE_SENT;
        if (flags & OPF_FOUND) {
            op->result.balance = op->priv.seen;
            return finish(c, op, PGBANK_OK);
        }
        if (op->kind == PGBANK_OP_DEPOSIT)
            return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
        return step(c, op, ST_ATOMIC_SEEN);
    case ST_ATOMIC_SEEN:
        if (!(flags & OPF_FOUND))
            return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
        if (op->priv.seen >= op->amount && ++op->priv.tries < 3)
            return step(c, op, ST_ATOMIC); /* the balance rose meanwhile: try again */
        return refuse(c, op, OUTCOME_INSUFFICIENT_FUNDS, op->priv.seen);
    case ST_ATOMIC_TX:
        return after_atomic_tx(c, op);
    case ST_ATOMIC_TX_SEEN:
        return after_atomic_tx_seen(c, op);
    case ST_BALANCE:
        if (!(flags & OPF_FOUND))
            return refuse(c, op, OUTCOME_NO_SUCH_ACCOUNT, 0);
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

/* The connection died with op in flight.  A keyed operation is run again
 * after reconnecting: its key makes that exactly once (the key says whether
 * the lost attempt committed).  Without a key, if a write that commits (or
 * COMMIT) was sent, nobody knows whether it was applied: unknown outcome. */
void pgbank__op_lost(pgbank__conn *c, pgbank_op *op, const char *msg)
{
    pgbank_engine *eng = c->eng;
    char m[700];
    int f = op->priv.flags;
    if (op->key && moves_money(op) && op->priv.tries < 100) {
        op->priv.tries++;
        op->priv.flags = (f & (OPF_ARRIVED | OPF_RESOLVING | OPF_INDOUBT)) | OPF_RESOLVING |
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
