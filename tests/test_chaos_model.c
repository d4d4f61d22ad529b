/*
 * test_chaos_model.c - the bookkeeping of `pgbank chaos` (cli/chaos_model.c)
 * fed the answers faults produce, in the orders they produce them, and the
 * journal rows and balances a database could show: what it concludes
 * must be what happened.  No database: the model is pure arithmetic, and
 * the end-to-end runs are tests/cli_chaos.sh.
 */
#include "chaos_model.h"
#include "testlib.h"

#define OPENING 10000

/* Two accounts, ids 7 and 3 (opened out of order), 10000 each. */
static void two_accounts(chaos_model *m, int unkeyed)
{
    CHECK(chaos_model_init(m, 2, unkeyed) == 0);
    chaos_model_open(m, 0, 7, OPENING);
    chaos_model_open(m, 1, 3, OPENING);
    chaos_model_ready(m);
    CHECK_I64(chaos_model_index(m, 3), 0);
    CHECK_I64(chaos_model_index(m, 7), 1);
    CHECK_I64(chaos_model_index(m, 5), -1);
}

/* The database as the model now expects it, read back. */
static void database_agrees(chaos_model *m, int64_t bal3, int64_t bal7)
{
    int seen = 0;
    chaos_model_settle(m);
    chaos_model_balance(m, 3, bal3, &seen);
    chaos_model_balance(m, 7, bal7, &seen);
    CHECK_I64(seen, 2);
}

/* The flake this test was written for: a crash leaves a keyed operation
 * in doubt (unknown outcome), the server comes back, the same key goes
 * again and is in flight when the next crash comes (a second unknown
 * outcome), then it is answered.  Two unknown outcomes, both resolved by
 * the key: `unknown` and `unknown_resolved` count the same things. */
static void a_key_that_meets_two_unknown_outcomes_resolves_both(void)
{
    chaos_model m;
    two_accounts(&m, 0);
    int64_t op = chaos_model_op(&m, PGBANK_OP_WITHDRAW, 0, 1, 250);
    CHECK(op == 0);
    CHECK_I64(chaos_model_answer(&m, op, PGBANK_UNKNOWN_OUTCOME, 0), 0);
    CHECK_I64(chaos_model_answer(&m, op, PGBANK_DB_ERROR, 0), 0);
    CHECK_I64(chaos_model_answer(&m, op, PGBANK_DB_ERROR, 0), 0);
    CHECK_I64(chaos_model_answer(&m, op, PGBANK_UNKNOWN_OUTCOME, 0), 0);
    CHECK_I64(chaos_model_answer(&m, op, PGBANK_RETRIES_EXHAUSTED, 0), 0);
    CHECK_I64(chaos_model_answer(&m, op, PGBANK_OK, 0), 1);
    CHECK_I64(m.unknown, 2);
    CHECK_I64(m.unknown_resolved, 2);
    CHECK_I64(m.unknown_ops, 1);
    CHECK_I64(m.ok, 1);
    chaos_model_journal(&m, op, 1); /* applied once, whatever was sent */
    database_agrees(&m, OPENING - 250, OPENING); /* account index 0 is id 3 */
    CHECK(!chaos_model_failed(&m));
    CHECK_I64(m.money_lost + m.money_created + m.applied_twice + m.acked_not_applied, 0);
    chaos_model_free(&m);
}

static void answers_are_counted_once_each(void)
{
    chaos_model m;
    two_accounts(&m, 0);
    int64_t a = chaos_model_op(&m, PGBANK_OP_TRANSFER, 1, 0, 100);
    int64_t b = chaos_model_op(&m, PGBANK_OP_DEPOSIT, 0, 1, 40);
    int64_t c = chaos_model_op(&m, PGBANK_OP_WITHDRAW, 1, 0, 20000);
    int64_t d = chaos_model_op(&m, PGBANK_OP_WITHDRAW, 0, 1, 1);
    CHECK_I64(chaos_model_answer(&m, a, PGBANK_UNKNOWN_OUTCOME, 0), 0);
    CHECK_I64(chaos_model_answer(&m, a, PGBANK_OK, 0), 1); /* the first attempt's ok */
    CHECK_I64(chaos_model_answer(&m, b, PGBANK_OK, 1), 1); /* a replay */
    CHECK_I64(chaos_model_answer(&m, c, PGBANK_INSUFFICIENT_FUNDS, 0), 1);
    CHECK_I64(m.ok, 2);
    CHECK_I64(m.replayed, 1);
    CHECK_I64(m.refused, 1);
    CHECK_I64(m.unknown, 1);
    CHECK_I64(m.unknown_resolved, 1);
    chaos_model_journal(&m, a, 2); /* a transfer: both sides */
    chaos_model_journal(&m, b, 1);
    /* d never got an answer (the drain ran out) */
    database_agrees(&m, OPENING + 40 + 100, OPENING - 100);
    CHECK_I64(m.without_result, 1);
    CHECK(chaos_model_failed(&m));
    (void)d;
    chaos_model_free(&m);
}

/* An operation answered at once, and the journal rows found for it. */
static void answered(chaos_model *m, pgbank_op_kind kind, int from, int64_t amount,
                     pgbank_status st, int64_t rows)
{
    int64_t op = chaos_model_op(m, kind, from, 1 - from, amount);
    CHECK_I64(chaos_model_answer(m, op, st, 0), 1);
    chaos_model_journal(m, op, rows);
}

static void the_journal_shows_what_went_wrong(void)
{
    chaos_model m;
    two_accounts(&m, 0);
    answered(&m, PGBANK_OP_WITHDRAW, 0, 5, PGBANK_OK, 2);                /* applied twice */
    answered(&m, PGBANK_OP_DEPOSIT, 0, 6, PGBANK_OK, 0);                 /* never applied */
    answered(&m, PGBANK_OP_WITHDRAW, 1, 7, PGBANK_INSUFFICIENT_FUNDS, 1); /* refused, applied */
    answered(&m, PGBANK_OP_TRANSFER, 1, 8, PGBANK_OK, 1);                /* half applied */
    chaos_model_journal(&m, 99, 3); /* no such operation */
    chaos_model_settle(&m);
    CHECK_I64(m.applied_twice, 1);
    CHECK_I64(m.acked_not_applied, 2); /* the deposit, the half transfer */
    CHECK_I64(m.applied_not_acked, 1);
    CHECK_I64(m.stray_rows, 3);
    /* Balances, the audit's convention: above the model is money lost.
     * The model applied every ok: id 3 (index 0) 10000 - 5 + 6 + 8, id 7
     * 10000 - 8. */
    int seen = 0;
    chaos_model_balance(&m, 3, OPENING + 50, &seen);
    chaos_model_balance(&m, 7, -1, &seen);
    chaos_model_balance(&m, 12, 500, &seen); /* not the run's */
    CHECK_I64(seen, 2);
    CHECK_I64(m.negative, 1);
    CHECK_I64(m.money_lost, (50 - 9) + 500);
    CHECK_I64(m.money_created, (OPENING - 8) + 1);
    CHECK(chaos_model_failed(&m));
    chaos_model_free(&m);
}

/* Unkeyed, an unknown outcome is final: never sent again; the journal
 * (each operation moves a distinct amount) says whether it was applied. */
static void unkeyed_unknown_outcomes_are_final_and_the_journal_decides(void)
{
    chaos_model m;
    two_accounts(&m, 1);
    answered(&m, PGBANK_OP_WITHDRAW, 0, 1, PGBANK_UNKNOWN_OUTCOME, 1); /* it was applied */
    answered(&m, PGBANK_OP_DEPOSIT, 1, 2, PGBANK_UNKNOWN_OUTCOME, 0);  /* it was not */
    int64_t retried = chaos_model_op(&m, PGBANK_OP_WITHDRAW, 1, 0, 3);
    CHECK_I64(chaos_model_answer(&m, retried, PGBANK_DB_ERROR, 0), 0);
    CHECK_I64(chaos_model_answer(&m, retried, PGBANK_OK, 0), 1);
    CHECK_I64(m.unknown, 2);
    CHECK_I64(m.unknown_resolved, 0); /* nothing resolves them: no key */
    chaos_model_journal(&m, retried, 1);
    database_agrees(&m, OPENING - 1, OPENING - 3);
    CHECK_I64(m.unknown_applied, 1);
    CHECK(!chaos_model_failed(&m));
    CHECK_I64(m.money_lost + m.money_created, 0);
    chaos_model_free(&m);
}

int main(void)
{
    RUN(a_key_that_meets_two_unknown_outcomes_resolves_both);
    RUN(answers_are_counted_once_each);
    RUN(the_journal_shows_what_went_wrong);
    RUN(unkeyed_unknown_outcomes_are_final_and_the_journal_decides);
    TEST_EXIT();
}
