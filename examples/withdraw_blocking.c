/*
 * withdraw_blocking.c - the smallest use of libpgbank: one withdrawal, made
 * with the blocking call pgbank_execute().
 *
 *   cc -std=c11 withdraw_blocking.c $(pkg-config --cflags --libs pgbank)
 *   ./a.out "postgresql://alice@db.example.com/bank" 1 80
 *   ./a.out "" open:100 80 for-update     # "" or -: $DATABASE_URL
 *
 * Exits with pgbank's exit codes: 0 done, 1 refused (insufficient funds,
 * no such account), 2 bad usage or invalid input, 3 database failure.
 */
#include <pgbank.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fputs("usage: withdraw_blocking CONNINFO ACCOUNT AMOUNT [STRATEGY]\n"
          "  CONNINFO  a libpq connection string or postgresql:// URL;\n"
          "            \"\" or \"-\" for $DATABASE_URL\n"
          "  ACCOUNT   an account id, or open:BALANCE to open one first\n"
          "  STRATEGY  explicit, begin, for-update or atomic (default)\n",
          stderr);
    return 2;
}

/* pgbank's command-line exit codes for an outcome. */
static int exit_code(pgbank_status s)
{
    switch (s) {
    case PGBANK_OK: return 0;
    case PGBANK_INSUFFICIENT_FUNDS:
    case PGBANK_NO_SUCH_ACCOUNT:
    case PGBANK_CONFLICT: return 1;
    case PGBANK_INVALID_AMOUNT:
    case PGBANK_INVALID_INPUT: return 2;
    default: return 3;
    }
}

/* Runs op and reports a failure to run it at all (not a refusal). */
static int execute(pgbank_engine *eng, pgbank_op *op)
{
    int rc = pgbank_execute(eng, op);
    if (rc < 0) {
        fprintf(stderr, "withdraw_blocking: %s\n", pgbank_strerror(rc));
        return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5)
        return usage();
    const char *conninfo = argv[1];
    if (conninfo[0] == '\0' || strcmp(conninfo, "-") == 0)
        conninfo = getenv("DATABASE_URL");

    /* Validate everything before connecting. */
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_WITHDRAW);
    int64_t opening = -1;
    if (strncmp(argv[2], "open:", 5) == 0) {
        if (pgbank_parse_int64(argv[2] + 5, &opening) != 0 || opening < 0)
            return usage();
    } else if (pgbank_parse_int64(argv[2], &op.account) != 0) {
        return usage();
    }
    if (pgbank_parse_int64(argv[3], &op.amount) != 0)
        return usage();
    if (argc == 5 && pgbank_strategy_parse(argv[4], &op.strategy) != 0)
        return usage();

    pgbank_options opt;
    pgbank_options_init(&opt);
    opt.conninfo = conninfo;
    opt.connections = 1;
    char err[256];
    pgbank_engine *eng;
    if (pgbank_engine_new(&eng, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "withdraw_blocking: %s\n", err);
        return 2;
    }

    int code = 0;
    if (opening >= 0) {
        pgbank_op acct;
        pgbank_op_init(&acct, PGBANK_OP_OPEN);
        acct.amount = opening;
        if ((code = execute(eng, &acct)) != 0)
            goto out;
        if (acct.result.status != PGBANK_OK) {
            fprintf(stderr, "withdraw_blocking: could not open an account: %s%s%s\n",
                    pgbank_status_name(acct.result.status),
                    acct.result.message[0] ? ": " : "", acct.result.message);
            code = exit_code(acct.result.status);
            goto out;
        }
        op.account = acct.result.account;
        printf("opened account %lld with %lld\n", (long long)op.account,
               (long long)opening);
    }

    if ((code = execute(eng, &op)) != 0)
        goto out;
    const pgbank_result *r = &op.result;
    switch (r->status) {
    case PGBANK_OK:
        printf("withdrew %lld from account %lld, new balance %lld\n",
               (long long)op.amount, (long long)op.account, (long long)r->balance);
        break;
    case PGBANK_INSUFFICIENT_FUNDS:
        printf("refused: insufficient funds (balance %lld, requested %lld)\n",
               (long long)r->balance, (long long)op.amount);
        break;
    case PGBANK_NO_SUCH_ACCOUNT:
        printf("refused: no such account %lld\n", (long long)op.account);
        break;
    default: /* invalid amount, database error, ... */
        printf("failed: %s", pgbank_status_name(r->status));
        if (r->sqlstate[0])
            printf(" [%s]", r->sqlstate);
        if (r->message[0])
            printf(": %s", r->message);
        putchar('\n');
        break;
    }
    code = exit_code(r->status);
out:
    pgbank_engine_free(eng);
    return code;
}
