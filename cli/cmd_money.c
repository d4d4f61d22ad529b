/*
 * cmd_money.c - the commands that touch accounts: init, account open,
 * balance, and the money operations withdraw, deposit and transfer.  Each
 * validates its input before connecting, runs one operation through the
 * engine and prints one line (or one JSON object).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * init
 * ------------------------------------------------------------------------ */

/* Warnings from init go to stderr, one line each, as they come. */
static void init_warning(void *arg, const char *message)
{
    const cli *c = arg;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", message);
    cli_scrub(c, msg, sizeof msg);
    fprintf(stderr, "pgbank init: warning: %s\n", msg);
}

static int run_init(cli *c, int argc, char **argv)
{
    const char *app_role = NULL;
    int no_journal = 0, distributed = 0;
    const cli_opt opts[] = {{"app-role", &app_role, NULL},
                            {"no-journal", NULL, &no_journal},
                            {"distributed", NULL, &distributed},
                            {NULL, NULL, NULL}};
    int npos, rc = cli_parse(c, argc, argv, opts, NULL, 0, &npos);
    if (rc)
        return rc;
    if (app_role && (!app_role[0] || strlen(app_role) > 63))
        return cli_usage_error(c, "invalid --app-role '%s': a role name of 1 to 63 bytes",
                               app_role);
    if ((rc = cli_parsed(c)) != 0)
        return rc;
    cli_db db;
    char err[1024];
    if ((rc = cli_db_resolve(c, &db, 0)) == 0) {
        pgbank_schema_options o;
        pgbank_schema_options_init(&o);
        o.app_role = app_role;
        o.journal = !no_journal;
        o.distributed = distributed;
        o.warn = init_warning;
        o.warn_arg = c;
        err[0] = '\0';
        int r = pgbank_schema_create(db.conninfo, &o, err, sizeof err);
        if (r == PGBANK_ESCHEMA) {
            rc = cli_error(c, CLI_EXIT_FAILURE, "%s refuses pgbank's schema: %s", db.where, err);
        } else if (r != 0) {
            rc = cli_error(c, CLI_EXIT_FAILURE, "could not create the schema in %s: %s",
                           db.where, err);
        } else if (c->json) {
            cli_json j;
            cli_json_begin(&j);
            cli_json_str(&j, "status", "ok");
            cli_json_int(&j, "schema_version", PGBANK_SCHEMA_VERSION);
            cli_json_str(&j, "database", db.where);
            if (app_role)
                cli_json_str(&j, "app_role", app_role);
            cli_json_bool(&j, "journal", !no_journal);
            cli_json_end(&j);
        } else {
            printf("schema version %d ready in %s\n", PGBANK_SCHEMA_VERSION, db.where);
            if (app_role)
                printf("role \"%s\" may move money only through pgbank's functions\n",
                       app_role);
        }
    }
    cli_db_close(c, &db);
    return rc;
}

const cli_command cli_cmd_init = {
    "init", "create or upgrade the schema (idempotent)",
    "Usage: pgbank init [--app-role NAME] [--no-journal] [--distributed]\n"
    "\n"
    "Creates pgbank's schema in the database, or upgrades an older one in\n"
    "place: the accounts table with CHECK (balance >= 0) (an existing table\n"
    "of the seed's shape, accounts(id integer primary key, balance integer\n"
    "not null), is adopted and given the CHECK), the journal, the\n"
    "idempotency keys, the server functions, the triggers that journal\n"
    "changes made outside pgbank as 'external', and the schema version.\n"
    "Running it again changes nothing.  The private server gets its schema\n"
    "automatically; a database named by --db or DATABASE_URL only through\n"
    "this command.  Warnings (every role may CREATE in the schema, say) go\n"
    "to stderr.\n"
    "\n"
    "Options:\n"
    "  --app-role NAME  also make NAME (a login role, created if missing)\n"
    "                   the application role: it may only call pgbank's\n"
    "                   functions (the batch strategy, keys included), has\n"
    "                   no right on any table, and gets a 5 s\n"
    "                   statement_timeout and idle_in_transaction_session_-\n"
    "                   timeout.  Refused when NAME is the current user, a\n"
    "                   superuser, the owner of the tables or the database, a\n"
    "                   member of a privileged role, or may CREATE in the\n"
    "                   schema (docs/SECURITY.md).\n"
    "  --no-journal     no journal and no keys (benchmarks against plain SQL)\n"
    "  --distributed    distribute the schema over a Citus cluster (refused\n"
    "                   without Citus).  Without it this happens anyway on a\n"
    "                   Citus coordinator: accounts by id, the journal and\n"
    "                   the keys with their accounts (a key is then unique\n"
    "                   per account), no triggers (changes made outside\n"
    "                   pgbank are not journaled; docs/SCALING.md)\n"
    "  --json           {\"status\":\"ok\",\"schema_version\":N,\"database\":...}\n"
    "\n"
    "Exit codes: 0 ready; 3 the database refused (the message says why).\n"
    "\n"
    "Examples:\n"
    "  pgbank --db postgresql://alice@db.example.com/bank init\n"
    "  pgbank --db postgresql://alice@db.example.com/bank init --app-role bank_app\n",
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

/* account open and balance: {"status":"ok","account":...,"balance":...}. */
static int ok_json(const pgbank_op *op)
{
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "status", "ok");
    cli_json_int(&j, "account", op->kind == PGBANK_OP_OPEN
                                    ? op->result.account : op->account);
    cli_json_int(&j, "balance", op->result.balance);
    cli_json_end(&j);
    return CLI_EXIT_OK;
}

/* balance of an unknown account: on stderr (stdout holds only balances). */
static int no_such_account(const cli *c, const pgbank_op *op)
{
    if (c->json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "status", "no such account");
        cli_json_int(&j, "account", op->account);
        cli_json_end(&j);
    }
    fprintf(stderr, "pgbank: no such account %lld\n", (long long)op->account);
    return cli_exit_code(op->result.status);
}

/* ------------------------------------------------------------------------
 * account open
 * ------------------------------------------------------------------------ */

static int print_opened(const cli *c, const pgbank_op *op)
{
    if (op->result.status != PGBANK_OK)
        return cli_report_failure(c, op);
    if (c->json)
        return ok_json(op);
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
    if ((rc = cli_parse_balance(c, balance_arg, &op.amount)) != 0 || (rc = cli_parsed(c)) != 0)
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
        return no_such_account(c, op);
    if (op->result.status != PGBANK_OK)
        return cli_report_failure(c, op);
    if (c->json)
        return ok_json(op);
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
    if ((rc = cli_parse_account(c, pos[0], &op.account)) != 0 || (rc = cli_parsed(c)) != 0)
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
 * Money: withdraw, deposit, transfer.
 *
 * They share options (--strategy, --key) and outcomes.  A replayed key
 * prints the original outcome with a note and exits as the original did.
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

/* What the library accepts as a key (pgbank_op.key). */
#define KEY_MAX 200

/* --key: checked here so a bad key never reaches the database. */
static int check_key(const cli *c, const pgbank_op *op)
{
    if (!op->key)
        return 0;
    if (op->key[0] == '\0')
        return cli_usage_error(c, "option '--key' needs a non-empty key");
    if (strlen(op->key) > KEY_MAX)
        return cli_usage_error(c, "the key is %zu bytes long; at most %d "
                               "are allowed", strlen(op->key), KEY_MAX);
    return 0;
}

static const char *kind_plural(pgbank_op_kind k)
{
    return k == PGBANK_OP_DEPOSIT    ? "deposits"
           : k == PGBANK_OP_TRANSFER ? "transfers"
                                     : "withdrawals";
}

static void warn_if_unsafe(const pgbank_op *op)
{
    if (pgbank_strategy_is_safe(op->strategy))
        return;
    fprintf(stderr, "pgbank: warning: strategy '%s' is unsafe for money: "
                    "concurrent %s lose updates (use for-update or atomic)\n",
            pgbank_strategy_name(op->strategy), kind_plural(op->kind));
}

/* Parses `pgbank withdraw|deposit|transfer ...`: `nacc` account ids, then
 * the amount, --strategy and --key.  Fills op (of the given kind). */
static int parse_money(cli *c, int argc, char **argv, pgbank_op *op,
                       pgbank_op_kind kind)
{
    const char *strategy = "atomic";
    const cli_opt opts[] = {{"strategy", &strategy, NULL},
                            {"key", &op->key, NULL},
                            {NULL, NULL, NULL}};
    int nacc = kind == PGBANK_OP_TRANSFER ? 2 : 1;
    char *pos[3];
    int npos, rc;
    pgbank_op_init(op, kind);
    if ((rc = cli_parse(c, argc, argv, opts, pos, nacc + 1, &npos)) != 0)
        return rc;
    if (npos < nacc + 1) {
        static const char *const missing[2][3] = {
            {"missing ACCOUNT and AMOUNT", "missing AMOUNT", ""},
            {"missing FROM, TO and AMOUNT", "missing TO and AMOUNT",
             "missing AMOUNT"}};
        return cli_usage_error(c, "%s", missing[nacc - 1][npos]);
    }
    if ((rc = cli_parse_account(c, pos[0], &op->account)) != 0 ||
        (nacc == 2 &&
         (rc = cli_parse_account(c, pos[1], &op->to_account)) != 0) ||
        (rc = cli_parse_amount(c, "amount", pos[nacc], &op->amount)) != 0 ||
        (rc = parse_strategy(c, strategy, &op->strategy)) != 0 ||
        (rc = check_key(c, op)) != 0)
        return rc;
    if (nacc == 2 && op->account == op->to_account)
        return cli_error(c, CLI_EXIT_USAGE, "cannot transfer from account "
                         "%lld to itself: FROM and TO must differ",
                         (long long)op->account);
    warn_if_unsafe(op);
    return 0;
}

/* The fields every money outcome's JSON starts with. */
static void money_json_begin(cli_json *j, const pgbank_op *op,
                             const char *status)
{
    cli_json_begin(j);
    cli_json_str(j, "status", status);
    cli_json_int(j, "account", op->account);
    if (op->kind == PGBANK_OP_TRANSFER)
        cli_json_int(j, "to_account", op->to_account);
}

/* ... and end with. */
static void money_json_end(cli_json *j, const pgbank_op *op)
{
    cli_json_str(j, "strategy", pgbank_strategy_name(op->strategy));
    if (op->strategy == PGBANK_SERIALIZABLE)
        cli_json_int(j, "retries", op->result.retries);
    if (op->key) {
        cli_json_str(j, "key", op->key);
        cli_json_bool(j, "replayed", op->result.replayed);
    }
    cli_json_end(j);
}

/* The notes after an outcome's line: retries, and a replayed key. */
static void print_notes(const pgbank_op *op)
{
    if (op->result.retries > 0)
        printf(" (after %d %s)", op->result.retries,
               op->result.retries == 1 ? "retry" : "retries");
    if (op->result.replayed)
        printf(" (replayed: key %s was already used)", op->key);
    putchar('\n');
}

static int money_ok(const cli *c, const pgbank_op *op)
{
    const pgbank_result *r = &op->result;
    if (c->json) {
        cli_json j;
        money_json_begin(&j, op, "ok");
        cli_json_int(&j, "amount", op->amount);
        cli_json_int(&j, "balance", r->balance);
        if (op->kind == PGBANK_OP_TRANSFER)
            cli_json_int(&j, "to_balance", r->to_balance);
        money_json_end(&j, op);
        return CLI_EXIT_OK;
    }
    switch (op->kind) {
    case PGBANK_OP_DEPOSIT:
        printf("deposited %lld to account %lld, new balance %lld",
               (long long)op->amount, (long long)op->account,
               (long long)r->balance);
        break;
    case PGBANK_OP_TRANSFER:
        printf("transferred %lld from account %lld to account %lld, "
               "balances %lld and %lld", (long long)op->amount,
               (long long)op->account, (long long)op->to_account,
               (long long)r->balance, (long long)r->to_balance);
        break;
    default:
        printf("withdrew %lld from account %lld, new balance %lld",
               (long long)op->amount, (long long)op->account,
               (long long)r->balance);
    }
    print_notes(op);
    return CLI_EXIT_OK;
}

static int insufficient_funds(const cli *c, const pgbank_op *op)
{
    if (c->json) {
        cli_json j;
        money_json_begin(&j, op, "insufficient funds");
        cli_json_int(&j, "requested", op->amount);
        cli_json_int(&j, "balance", op->result.balance);
        money_json_end(&j, op);
    } else {
        /* The library's words: the balance, unless this role may not read
         * it (an application role). */
        printf("rolled back: insufficient funds (%s)", op->result.message);
        print_notes(op);
    }
    return cli_exit_code(op->result.status);
}

/* Which account is missing: the library names it in the message ("account
 * 7 does not exist"), replays included. */
static int64_t missing_account(const pgbank_op *op)
{
    int64_t id;
    char digits[32];
    if (op->kind != PGBANK_OP_TRANSFER)
        return op->account;
    if (sscanf(op->result.message, "account %31[0-9] does not exist",
               digits) == 1 &&
        pgbank_parse_int64(digits, &id) == 0)
        return id;
    return 0;
}

static int no_such_money_account(const cli *c, const pgbank_op *op)
{
    int64_t id = missing_account(op);
    if (c->json) {
        cli_json j;
        money_json_begin(&j, op, "no such account");
        if (op->kind == PGBANK_OP_TRANSFER)
            cli_json_int(&j, "missing", id);
        money_json_end(&j, op);
    } else {
        if (id)
            printf("rolled back: no such account %lld", (long long)id);
        else
            printf("rolled back: no such account (%lld or %lld)",
                   (long long)op->account, (long long)op->to_account);
        print_notes(op);
    }
    return cli_exit_code(op->result.status);
}

/* A key used before for another operation: nothing was done. */
static int key_conflict(const cli *c, const pgbank_op *op)
{
    if (c->json) {
        cli_json j;
        money_json_begin(&j, op, "conflict");
        cli_json_int(&j, "amount", op->amount);
        cli_json_str(&j, "message", op->result.message);
        money_json_end(&j, op);
    } else {
        printf("rejected: conflict (%s)\n", op->result.message[0]
                                               ? op->result.message
                                               : "key already used");
    }
    return cli_exit_code(op->result.status);
}

static int print_money(const cli *c, const pgbank_op *op)
{
    switch (op->result.status) {
    case PGBANK_OK:
        return money_ok(c, op);
    case PGBANK_INSUFFICIENT_FUNDS:
        return insufficient_funds(c, op);
    case PGBANK_NO_SUCH_ACCOUNT:
        return no_such_money_account(c, op);
    case PGBANK_CONFLICT:
        return key_conflict(c, op);
    default:
        /* Retries exhausted, unknown outcome, database errors: exit 3. */
        return cli_report_failure(c, op);
    }
}

static int run_money(cli *c, int argc, char **argv, pgbank_op_kind kind)
{
    pgbank_op op;
    int rc = parse_money(c, argc, argv, &op, kind);
    if (rc == 0)
        rc = cli_parsed(c);
    return rc ? rc : run_op(c, &op, print_money);
}

static int run_withdraw(cli *c, int argc, char **argv)
{
    return run_money(c, argc, argv, PGBANK_OP_WITHDRAW);
}

static int run_deposit(cli *c, int argc, char **argv)
{
    return run_money(c, argc, argv, PGBANK_OP_DEPOSIT);
}

static int run_transfer(cli *c, int argc, char **argv)
{
    return run_money(c, argc, argv, PGBANK_OP_TRANSFER);
}

/* The options part of every money command's help. */
#define MONEY_OPTIONS                                                         \
    "Options:\n"                                                              \
    "  --strategy NAME   how the operation is made (default atomic):\n"       \
    "      explicit    BEGIN; SELECT; check; UPDATE SET balance = <value>;\n" \
    "                  COMMIT or ROLLBACK.  UNSAFE FOR MONEY: loses updates.\n" \
    "      begin       the same in a scoped transaction.  UNSAFE FOR MONEY.\n" \
    "      for-update  SELECT ... FOR UPDATE locks the row(s), then UPDATE.\n" \
    "      atomic      one UPDATE ... WHERE balance >= AMOUNT RETURNING.\n"   \
    "    beyond the seed:\n"                                                  \
    "      serializable  the read-modify-write at SERIALIZABLE, retried on\n" \
    "                    serialization failures; prints (after N retries)\n"  \
    "                    when it was retried, exits 3 when retries run out.\n" \
    "      batch         concurrent operations applied together in one\n"     \
    "                    round trip and one commit (takes no --key).\n"       \
    "  --key KEY         an idempotency key (1 to 200 bytes): the operation\n" \
    "                    happens at most once under KEY.  Run again with the\n" \
    "                    same KEY and the same parameters, it changes nothing\n" \
    "                    and prints the original outcome with \"(replayed:\n" \
    "                    key KEY was already used)\", exiting as the original\n" \
    "                    did; with other parameters it is rejected with a\n"  \
    "                    conflict (exit 1).  Refusals are remembered too.\n"  \
    "  --json            one object: status, account(s), amount, balance(s),\n" \
    "                    strategy, and key/replayed when --key is given\n"

const cli_command cli_cmd_withdraw = {
    "withdraw", "take money from an account",
    "Usage: pgbank withdraw ACCOUNT AMOUNT [--strategy NAME] [--key KEY]\n"
    "\n"
    "Withdraws AMOUNT (a whole number > 0) from account ACCOUNT, or refuses\n"
    "and rolls back when the balance is too small (exit 1).\n"
    "\n"
    MONEY_OPTIONS
    "\n"
    "Output:\n"
    "  withdrew 80 from account 1, new balance 20\n"
    "  rolled back: insufficient funds (balance 20, requested 80)\n"
    "  rolled back: no such account 7\n"
    "  withdrew 10 from account 1, new balance 10 (replayed: key K was "
    "already used)\n"
    "  rejected: conflict (key already used for withdraw of 10 on account 1)\n"
    "\n"
    "Examples:\n"
    "  pgbank withdraw 1 80 --strategy for-update\n"
    "  pgbank withdraw 1 10 --key payout-2024-001\n",
    run_withdraw,
};

const cli_command cli_cmd_deposit = {
    "deposit", "put money into an account",
    "Usage: pgbank deposit ACCOUNT AMOUNT [--strategy NAME] [--key KEY]\n"
    "\n"
    "Deposits AMOUNT (a whole number > 0) into account ACCOUNT.  Exits 1\n"
    "when there is no such account.\n"
    "\n"
    MONEY_OPTIONS
    "\n"
    "Output:\n"
    "  deposited 50 to account 2, new balance 50\n"
    "  rolled back: no such account 7\n"
    "\n"
    "Examples:\n"
    "  pgbank deposit 2 50\n"
    "  pgbank deposit 2 50 --key invoice-77 --json\n",
    run_deposit,
};

const cli_command cli_cmd_transfer = {
    "transfer", "move money from one account to another",
    "Usage: pgbank transfer FROM TO AMOUNT [--strategy NAME] [--key KEY]\n"
    "\n"
    "Moves AMOUNT (a whole number > 0) from account FROM to account TO in\n"
    "one transaction: both balances change, or neither.  Refuses and rolls\n"
    "back when FROM holds too little or either account does not exist\n"
    "(exit 1).  FROM and TO must differ (exit 2, nothing is sent).\n"
    "\n"
    MONEY_OPTIONS
    "\n"
    "Output:\n"
    "  transferred 30 from account 1 to account 2, balances 70 and 30\n"
    "  rolled back: insufficient funds (balance 70, requested 500)\n"
    "  rolled back: no such account 7\n"
    "\n"
    "Examples:\n"
    "  pgbank transfer 1 2 30\n"
    "  pgbank transfer 1 2 30 --strategy for-update --key rent-march\n",
    run_transfer,
};
