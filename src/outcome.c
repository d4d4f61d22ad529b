/*
 * outcome.c - what an outcome code (sql.h: what the server functions return
 * and pgbank_keys stores) means for an operation: its status and its
 * message.  The message is derived from stable data (the code, the
 * operation's own parameters, the balance seen), never stored as wording,
 * so rewording it here never breaks a replayed key.
 */
#include "engine.h"

#include <stdio.h>

pgbank_status pgbank__outcome_status(int outcome)
{
    switch (outcome) {
    case OUTCOME_OK: return PGBANK_OK;
    case OUTCOME_INSUFFICIENT_FUNDS: return PGBANK_INSUFFICIENT_FUNDS;
    case OUTCOME_NO_SUCH_ACCOUNT:
    case OUTCOME_NO_SUCH_DESTINATION: return PGBANK_NO_SUCH_ACCOUNT;
    case OUTCOME_OVERFLOW: return PGBANK_INVALID_AMOUNT;
    case OUTCOME_CONFLICT: return PGBANK_CONFLICT;
    default: return PGBANK_DB_ERROR;
    }
}

pgbank_status pgbank__op_outcome(pgbank_engine *eng, pgbank_op *op, int outcome)
{
    char m[160];
    const char *state = "";
    OP(op)->outcome = outcome;
    switch (outcome) {
    case OUTCOME_OK:
        m[0] = '\0';
        break;
    case OUTCOME_INSUFFICIENT_FUNDS:
        if (OP(op)->flags & OPF_BALANCE_HIDDEN)
            snprintf(m, sizeof m, "requested %lld; this role may not read the balance",
                     (long long)op->amount);
        else
            snprintf(m, sizeof m, "balance %lld, requested %lld", (long long)op->result.balance,
                     (long long)op->amount);
        break;
    case OUTCOME_NO_SUCH_ACCOUNT:
    case OUTCOME_NO_SUCH_DESTINATION:
        snprintf(m, sizeof m, "account %lld does not exist",
                 (long long)(outcome == OUTCOME_NO_SUCH_DESTINATION ? op->to_account
                                                                     : op->account));
        break;
    case OUTCOME_OVERFLOW:
        state = PGBANK_SQLSTATE_NUMERIC_OUT_OF_RANGE;
        snprintf(m, sizeof m, "the new balance would not fit the balance column");
        break;
    case OUTCOME_CONFLICT:
        snprintf(m, sizeof m, "the key was used before with other parameters");
        break;
    default:
        snprintf(m, sizeof m, "the server returned an unknown outcome code %d", outcome);
        break;
    }
    pgbank__op_set_message(eng, op, state, m);
    return pgbank__outcome_status(outcome);
}
