/*
 * cmd_money.c - the commands that touch accounts: init, account open,
 * balance, withdraw.  Each validates its input before connecting, runs one
 * operation through the engine and prints one line (or one JSON object).
 */
#include "cli.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * init
 * ------------------------------------------------------------------------ */

static int run_init(cli *c, int argc, char **argv)
{
    int npos, rc = cli_parse(c, argc, argv, NULL, NULL, 0, &npos);
    if (rc)
        return rc;
    cli_db db;
    char err[1024];
    if ((rc = cli_db_resolve(c, &db, 0)) == 0) {
        err[0] = '\0';
        if (pgbank_schema_init(db.conninfo, err, sizeof err) != 0) {
            rc = cli_error(c, CLI_EXIT_FAILURE, "could not create the schema "
                           "in %s: %s", db.where, err);
        } else if (c->json) {
            cli_json j;
            cli_json_begin(&j);
            cli_json_str(&j, "status", "ok");
            cli_json_int(&j, "schema_version", PGBANK_SCHEMA_VERSION);
            cli_json_str(&j, "database", db.where);
            cli_json_end(&j);
        } else {
            printf("schema version %d ready in %s\n", PGBANK_SCHEMA_VERSION,
                   db.where);
        }
    }
    cli_db_close(c, &db);
    return rc;
}

const cli_command cli_cmd_init = {
    "init", "create the schema (idempotent)",
    "Usage: pgbank init [--db URL]\n"
    "\n"
    "Creates pgbank's schema in the database: the accounts table (an\n"
    "existing table of the seed's shape, accounts(id integer primary key,\n"
    "balance integer not null), is adopted as it is), the schema version\n"
    "and what the operations need.  Running it again changes nothing.\n"
    "The private server gets its schema automatically; a database named by\n"
    "--db or DATABASE_URL only through this command.\n"
    "\n"
    "Example:\n"
    "  pgbank --db postgresql://alice@db.example.com/bank init\n",
    run_init,
};

/* ------------------------------------------------------------------------
 * Running one operation.
 * ------------------------------------------------------------------------ */

typedef int (*print_fn)(const cli *c, const pgbank_op *op);

/* Connects, runs op and prints its outcome with `print` while the
 * connection string is still there to scrub messages with.  Returns the
 * exit code. */
static int run_op(cli *c, pgbank_op *op, print_fn print)
{
    cli_db db;
    int rc = cli_db_open(c, &db);
    if (rc == 0)
        rc = cli_db_execute(c, &db, op);
    if (rc == 0)
        rc = print(c, op);
    cli_db_close(c, &db);
    return rc;
}

static int ok_json(const pgbank_op *op, int with_amount)
{
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "status", "ok");
    cli_json_int(&j, "account", op->kind == PGBANK_OP_OPEN
                                    ? op->result.account : op->account);
    if (with_amount)
        cli_json_int(&j, "amount", op->amount);
    cli_json_int(&j, "balance", op->result.balance);
    if (op->kind == PGBANK_OP_WITHDRAW)
        cli_json_str(&j, "strategy", pgbank_strategy_name(op->strategy));
    cli_json_end(&j);
    return CLI_EXIT_OK;
}

static int no_such_account(const cli *c, const pgbank_op *op,
                           const char *prefix, FILE *f)
{
    if (c->json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "status", "no such account");
        cli_json_int(&j, "account", op->account);
        cli_json_end(&j);
    }
    if (!c->json || f == stderr)
        fprintf(f, "%sno such account %lld\n", prefix,
                (long long)op->account);
    return pgbank_status_exit_code(op->result.status);
}

/* ------------------------------------------------------------------------
 * account open
 * ------------------------------------------------------------------------ */

static int print_opened(const cli *c, const pgbank_op *op)
{
    if (op->result.status != PGBANK_OK)
        return cli_report_failure(c, op);
    if (c->json)
        return ok_json(op, 0);
    printf("%lld\n", (long long)op->result.account);
    return CLI_EXIT_OK;
}

static int run_account(cli *c, int argc, char **argv)
{
    const char *balance_arg = "0";
    const cli_opt opts[] = {{"balance", &balance_arg, NULL}, {NULL, NULL, NULL}};
    char *pos[1];
    int npos, rc = cli_parse(c, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos == 0)
        return cli_usage_error(c, "missing subcommand (open)");
    if (strcmp(pos[0], "open") != 0)
        return cli_usage_error(c, "unknown subcommand '%s'", pos[0]);
    c->command = "account open";
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_OPEN);
    if ((rc = cli_parse_balance(c, balance_arg, &op.amount)) != 0)
        return rc;
    return run_op(c, &op, print_opened);
}

const cli_command cli_cmd_account = {
    "account", "open an account",
    "Usage: pgbank account open [--balance N]\n"
    "\n"
    "Opens a new account holding N (a whole number >= 0, default 0) and\n"
    "prints its id alone on stdout.\n"
    "\n"
    "Options:\n"
    "  --balance N   the opening balance, in minor units (cents)\n"
    "\n"
    "Example:\n"
    "  id=$(pgbank account open --balance 100)\n",
    run_account,
};

/* ------------------------------------------------------------------------
 * balance
 * ------------------------------------------------------------------------ */

static int print_balance(const cli *c, const pgbank_op *op)
{
    if (op->result.status == PGBANK_NO_SUCH_ACCOUNT)
        return no_such_account(c, op, "pgbank: ", stderr);
    if (op->result.status != PGBANK_OK)
        return cli_report_failure(c, op);
    if (c->json)
        return ok_json(op, 0);
    printf("%lld\n", (long long)op->result.balance);
    return CLI_EXIT_OK;
}

static int run_balance(cli *c, int argc, char **argv)
{
    char *pos[1];
    int npos, rc = cli_parse(c, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos < 1)
        return cli_usage_error(c, "missing ACCOUNT");
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_BALANCE);
    if ((rc = cli_parse_account(c, pos[0], &op.account)) != 0)
        return rc;
    return run_op(c, &op, print_balance);
}

const cli_command cli_cmd_balance = {
    "balance", "print an account's balance",
    "Usage: pgbank balance ACCOUNT\n"
    "\n"
    "Prints the balance of account ACCOUNT alone on stdout.  Exits 1 when\n"
    "there is no such account.\n"
    "\n"
    "Example:\n"
    "  pgbank balance 1\n",
    run_balance,
};

/* ------------------------------------------------------------------------
 * withdraw
 * ------------------------------------------------------------------------ */

/* Matches the names the library has (its table may have gaps while
 * strategies are being added), and lists them when none matches. */
static int parse_strategy(const cli *c, const char *name, pgbank_strategy *s)
{
    char known[256] = "";
    for (int i = 0; i < PGBANK_STRATEGY_COUNT; i++) {
        const char *n = pgbank_strategy_name((pgbank_strategy)i);
        if (!n)
            continue;
        if (strcmp(n, name) == 0) {
            *s = (pgbank_strategy)i;
            return 0;
        }
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                 known[0] ? ", " : "", n);
    }
    return cli_usage_error(c, "unknown strategy '%s' (%s)", name, known);
}

static void warn_if_unsafe(pgbank_strategy s)
{
    if (pgbank_strategy_is_safe(s))
        return;
    fprintf(stderr, "pgbank: warning: strategy '%s' is unsafe for money: "
                    "concurrent withdrawals lose updates (use for-update or "
                    "atomic)\n", pgbank_strategy_name(s));
}

static int insufficient_funds(const cli *c, const pgbank_op *op)
{
    if (c->json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "status", "insufficient funds");
        cli_json_int(&j, "account", op->account);
        cli_json_int(&j, "requested", op->amount);
        cli_json_int(&j, "balance", op->result.balance);
        cli_json_str(&j, "strategy", pgbank_strategy_name(op->strategy));
        cli_json_end(&j);
    } else {
        printf("rolled back: insufficient funds (balance %lld, requested "
               "%lld)\n", (long long)op->result.balance,
               (long long)op->amount);
    }
    return pgbank_status_exit_code(op->result.status);
}

static int print_withdrawal(const cli *c, const pgbank_op *op)
{
    switch (op->result.status) {
    case PGBANK_OK:
        if (c->json)
            return ok_json(op, 1);
        printf("withdrew %lld from account %lld, new balance %lld\n",
               (long long)op->amount, (long long)op->account,
               (long long)op->result.balance);
        return CLI_EXIT_OK;
    case PGBANK_INSUFFICIENT_FUNDS:
        return insufficient_funds(c, op);
    case PGBANK_NO_SUCH_ACCOUNT:
        return no_such_account(c, op, "rolled back: ", stdout);
    default:
        return cli_report_failure(c, op);
    }
}

static int run_withdraw(cli *c, int argc, char **argv)
{
    const char *strategy = "atomic";
    const cli_opt opts[] = {{"strategy", &strategy, NULL}, {NULL, NULL, NULL}};
    char *pos[2];
    int npos, rc = cli_parse(c, argc, argv, opts, pos, 2, &npos);
    if (rc)
        return rc;
    if (npos < 2)
        return cli_usage_error(c, npos ? "missing AMOUNT"
                                       : "missing ACCOUNT and AMOUNT");
    pgbank_op op;
    pgbank_op_init(&op, PGBANK_OP_WITHDRAW);
    if ((rc = cli_parse_account(c, pos[0], &op.account)) != 0 ||
        (rc = cli_parse_amount(c, "amount", pos[1], &op.amount)) != 0 ||
        (rc = parse_strategy(c, strategy, &op.strategy)) != 0)
        return rc;
    warn_if_unsafe(op.strategy);
    return run_op(c, &op, print_withdrawal);
}

const cli_command cli_cmd_withdraw = {
    "withdraw", "take money from an account",
    "Usage: pgbank withdraw ACCOUNT AMOUNT [--strategy NAME]\n"
    "\n"
    "Withdraws AMOUNT (a whole number > 0) from account ACCOUNT, or refuses\n"
    "and rolls back when the balance is too small (exit 1).\n"
    "\n"
    "Options:\n"
    "  --strategy NAME   how the withdrawal is made (default atomic):\n"
    "      explicit    BEGIN; SELECT; check; UPDATE SET balance = <value>;\n"
    "                  COMMIT or ROLLBACK.  UNSAFE FOR MONEY: loses updates.\n"
    "      begin       the same in a scoped transaction.  UNSAFE FOR MONEY.\n"
    "      for-update  SELECT ... FOR UPDATE locks the row, then UPDATE.\n"
    "      atomic      one UPDATE ... WHERE balance >= AMOUNT RETURNING.\n"
    "    beyond the seed:\n"
    "      serializable  the read-modify-write at SERIALIZABLE, retried on\n"
    "                    serialization failures.\n"
    "      batch         concurrent operations applied together in one\n"
    "                    round trip and one commit.\n"
    "\n"
    "Output:\n"
    "  withdrew 80 from account 1, new balance 20\n"
    "  rolled back: insufficient funds (balance 20, requested 80)\n"
    "  rolled back: no such account 7\n"
    "\n"
    "Example:\n"
    "  pgbank withdraw 1 80 --strategy for-update\n",
    run_withdraw,
};
