/*
 * chaos_model.c - the bank `pgbank chaos` believes in, and the verdict
 * (see chaos_model.h).
 */
#include "chaos_model.h"

#include <stdlib.h>
#include <string.h>

int chaos_model_init(chaos_model *m, int naccounts, int unkeyed)
{
    memset(m, 0, sizeof *m);
    m->unkeyed = unkeyed;
    m->naccounts = naccounts;
    m->accounts = calloc((size_t)(naccounts > 0 ? naccounts : 1), sizeof *m->accounts);
    return m->accounts ? 0 : -1;
}

void chaos_model_free(chaos_model *m)
{
    free(m->accounts);
    free(m->ops);
    m->accounts = NULL;
    m->ops = NULL;
}

void chaos_model_open(chaos_model *m, int i, int64_t id, int64_t balance)
{
    m->accounts[i].id = id;
    m->accounts[i].balance = balance;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const chaos_account *)a)->id, y = ((const chaos_account *)b)->id;
    return (x > y) - (x < y);
}

void chaos_model_ready(chaos_model *m)
{
    qsort(m->accounts, (size_t)m->naccounts, sizeof *m->accounts, by_id);
}

int chaos_model_index(const chaos_model *m, int64_t id)
{
    int lo = 0, hi = m->naccounts - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (m->accounts[mid].id == id)
            return mid;
        if (m->accounts[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int64_t chaos_model_op(chaos_model *m, pgbank_op_kind kind, int from, int to, int64_t amount)
{
    if (m->nops == m->capops) {
        size_t cap = m->capops ? m->capops * 2 : 4096;
        chaos_op *ops = realloc(m->ops, cap * sizeof *ops);
        if (!ops) {
            m->nomem = 1;
            return -1;
        }
        m->ops = ops;
        m->capops = cap;
    }
    chaos_op *op = &m->ops[m->nops];
    memset(op, 0, sizeof *op);
    op->kind = (unsigned char)kind;
    op->from = from;
    op->to = to;
    op->amount = amount;
    return (int64_t)m->nops++;
}

/* What an applied operation does to the balances. */
static void apply(chaos_model *m, const chaos_op *op)
{
    if (op->kind == PGBANK_OP_DEPOSIT) {
        m->accounts[op->from].balance += op->amount;
    } else {
        m->accounts[op->from].balance -= op->amount;
        if (op->kind == PGBANK_OP_TRANSFER)
            m->accounts[op->to].balance += op->amount;
    }
}

int chaos_model_answer(chaos_model *m, int64_t idx, pgbank_status st, int replayed)
{
    chaos_op *op = &m->ops[idx];
    switch (st) {
    case PGBANK_OK:
        m->ok++;
        m->replayed += replayed != 0;
        apply(m, op);
        break;
    case PGBANK_INSUFFICIENT_FUNDS: m->refused++; break;
    case PGBANK_NO_SUCH_ACCOUNT: m->no_account++; break;
    case PGBANK_CONFLICT: m->conflicts++; break;
    case PGBANK_INVALID_AMOUNT:
    case PGBANK_INVALID_INPUT: m->invalid++; break;
    case PGBANK_UNKNOWN_OUTCOME:
        m->unknown++;
        m->unknown_ops += op->unknowns == 0;
        if (op->unknowns < 255)
            op->unknowns++;
        if (m->unkeyed)
            break; /* final: without a key it is never sent again */
        return 0;
    default:
        return 0; /* database error, retries exhausted: nothing applied, again */
    }
    op->answered = (unsigned char)(1 + st);
    /* Every unknown outcome this operation met is settled by this answer
     * to its key: a crash right after a restart can give one operation
     * several, so they are counted one by one, as `unknown` counts them. */
    if (!m->unkeyed)
        m->unknown_resolved += op->unknowns;
    return 1;
}

void chaos_model_journal(chaos_model *m, int64_t idx, int64_t rows)
{
    if (idx < 0 || (size_t)idx >= m->nops) {
        m->stray_rows += rows;
        return;
    }
    m->ops[idx].journal = (unsigned char)(rows > 200 ? 200 : rows);
}

void chaos_model_stray(chaos_model *m, int64_t rows) { m->stray_rows += rows; }

/* Every operation's journal rows: one per account an acknowledged
 * operation touched, none for a refusal or a failure, never two; an
 * unknown outcome's, all or none, and the model then takes what the
 * journal says. */
void chaos_model_settle(chaos_model *m)
{
    for (size_t i = 0; i < m->nops; i++) {
        const chaos_op *op = &m->ops[i];
        int full = op->kind == PGBANK_OP_TRANSFER ? 2 : 1;
        if (!op->answered) {
            m->without_result++;
            continue;
        }
        if (op->answered == 1 + PGBANK_UNKNOWN_OUTCOME) {
            if (op->journal == full) {
                m->unknown_applied++;
                apply(m, op);
            } else if (op->journal > full) {
                m->applied_twice++;
            } else if (op->journal > 0) {
                m->torn++;
            }
            continue;
        }
        int want = op->answered == 1 + PGBANK_OK ? full : 0;
        if (op->journal > want && want > 0)
            m->applied_twice++;
        else if (op->journal > want)
            m->applied_not_acked++;
        else if (op->journal < want)
            m->acked_not_applied++;
    }
}

void chaos_model_balance(chaos_model *m, int64_t id, int64_t balance, int *seen)
{
    int k = chaos_model_index(m, id);
    int64_t want = k >= 0 ? m->accounts[k].balance : 0;
    *seen += k >= 0;
    if (balance < 0)
        m->negative++;
    /* Above the model: money paid out that was never debited (the bank
     * lost it); below: money taken that no acknowledged operation
     * explains.  The audit's convention. */
    if (balance > want)
        m->money_lost += balance - want;
    else
        m->money_created += want - balance;
}

int chaos_model_failed(const chaos_model *m)
{
    return m->money_lost || m->money_created || m->negative || m->missing ||
           m->without_result || m->applied_not_acked || m->acked_not_applied ||
           m->applied_twice || m->torn || m->stray_rows || m->no_account || m->conflicts ||
           m->invalid;
}
