/*
 * test_parse.c - the strict parsers and small tables the CLI relies on:
 * pgbank_parse_int64, strategy names, and the exit code of each status.
 */
#include "testlib.h"
#include "cli.h"

static void int64_accepts_whole_decimal_numbers(void)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"0", 0},
        {"80", 80},
        {"-5", -5},
        {"-0", 0},
        {"007", 7},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = 12345;
        CHECK_I64(pgbank_parse_int64(ok[i].s, &v), 0);
        CHECK_I64(v, ok[i].v);
    }
}

static void int64_rejects_everything_else(void)
{
    static const char *const bad[] = {
        "", "abc", " 5", "5 ", "+5", "1e3", "99999999999999999999999",
        "9223372036854775808", "-9223372036854775809", "-", "--5", "0x10",
        "5abc", "5.0", "1,000", "\t5", "5\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 12345;
        int rc = pgbank_parse_int64(bad[i], &v);
        if (rc != PGBANK_EINVAL)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK_I64(rc, PGBANK_EINVAL);
        CHECK_I64(v, 12345); /* untouched on failure */
    }
    int64_t v;
    CHECK_I64(pgbank_parse_int64(NULL, &v), PGBANK_EINVAL);
    CHECK_I64(pgbank_parse_int64("5", NULL), PGBANK_EINVAL);
}

static void strategy_names_round_trip(void)
{
    static const struct {
        pgbank_strategy s;
        const char *name;
        int safe;
    } table[] = {
        {PGBANK_EXPLICIT, "explicit", 0},   {PGBANK_BEGIN, "begin", 0},
        {PGBANK_FOR_UPDATE, "for-update", 1}, {PGBANK_ATOMIC, "atomic", 1},
        {PGBANK_SERIALIZABLE, "serializable", 1}, {PGBANK_BATCH, "batch", 1},
    };
    /* A new strategy must be added here too. */
    CHECK_I64(sizeof table / sizeof table[0], PGBANK_STRATEGY_COUNT);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        pgbank_strategy s = (pgbank_strategy)-1;
        CHECK_STR(pgbank_strategy_name(table[i].s), table[i].name);
        CHECK_I64(pgbank_strategy_parse(table[i].name, &s), 0);
        CHECK_I64(s, table[i].s);
        CHECK_I64(pgbank_strategy_is_safe(table[i].s), table[i].safe);
    }
    pgbank_strategy s = PGBANK_ATOMIC;
    CHECK_I64(pgbank_strategy_parse("for_update", &s), PGBANK_EINVAL);
    CHECK_I64(pgbank_strategy_parse("ATOMIC", &s), PGBANK_EINVAL);
    CHECK_I64(pgbank_strategy_parse("", &s), PGBANK_EINVAL);
    CHECK_I64(pgbank_strategy_parse(NULL, &s), PGBANK_EINVAL);
    CHECK_I64(s, PGBANK_ATOMIC);
    CHECK(pgbank_strategy_name((pgbank_strategy)PGBANK_STRATEGY_COUNT) == NULL);
    CHECK(pgbank_strategy_name((pgbank_strategy)-1) == NULL);
    CHECK(!pgbank_strategy_is_safe((pgbank_strategy)PGBANK_STRATEGY_COUNT));
}

static void each_status_has_its_exit_code(void)
{
    static const struct {
        pgbank_status s;
        int code;
        const char *name;
    } table[] = {
        {PGBANK_OK, 0, "ok"},
        {PGBANK_INSUFFICIENT_FUNDS, 1, "insufficient funds"},
        {PGBANK_NO_SUCH_ACCOUNT, 1, "no such account"},
        {PGBANK_CONFLICT, 1, "conflict"},
        {PGBANK_INVALID_AMOUNT, 2, "invalid amount"},
        {PGBANK_RETRIES_EXHAUSTED, 3, "retries exhausted"},
        {PGBANK_UNKNOWN_OUTCOME, 3, "unknown outcome"},
        {PGBANK_DB_ERROR, 3, "database error"},
        {PGBANK_SHUT_DOWN, 3, "shut down"},
        {PGBANK_INVALID_INPUT, 2, "invalid input"},
    };
    /* A new status must be added here too. */
    CHECK_I64(sizeof table / sizeof table[0], PGBANK__STATUS_COUNT);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK_STR(pgbank_status_name(table[i].s), table[i].name);
        CHECK_I64(cli_exit_code(table[i].s), table[i].code);
    }
    CHECK_STR(pgbank_status_name(PGBANK__STATUS_COUNT), "?");
}

static void error_codes_have_names_and_messages(void)
{
    CHECK_STR(pgbank_err_name(PGBANK_ECONNINFO), "ECONNINFO");
    CHECK_STR(pgbank_strerror(PGBANK_ESERVER), "the private server failed");
    CHECK_STR(pgbank_err_name(-999), "UNKNOWN");
    CHECK_STR(pgbank_strerror(1), "unknown error");
    CHECK_STR(pgbank_version(), PGBANK_VERSION);
}

int main(void)
{
    RUN(int64_accepts_whole_decimal_numbers);
    RUN(int64_rejects_everything_else);
    RUN(strategy_names_round_trip);
    RUN(each_status_has_its_exit_code);
    RUN(error_codes_have_names_and_messages);
    TEST_EXIT();
}
