/*
 * main.c - the pgbank command: global options, the command table and
 * dispatch, `pgbank --help`, `pgbank help [COMMAND]` and --version.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Every command, in the order `pgbank --help` lists them. */
static const cli_command *const commands[] = {
    &cli_cmd_server, &cli_cmd_init,     &cli_cmd_account,
    &cli_cmd_balance, &cli_cmd_withdraw, &cli_cmd_deposit, &cli_cmd_transfer,
    &cli_cmd_history, &cli_cmd_audit, &cli_cmd_race, &cli_cmd_bench, &cli_cmd_chaos,
    &cli_cmd_help,
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

const cli_command *cli_command_find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

void cli_print_usage(FILE *f)
{
    fputs("pgbank moves money in PostgreSQL without races.\n"
          "\n"
          "Usage: pgbank [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
          "\n"
          "Commands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n"
          "Global options (before or after the command):\n"
          "  --db URL        the database: postgresql://, postgres://,\n"
          "                  postgresql+asyncpg:// or key=value (else\n"
          "                  $DATABASE_URL, else libpq's PGHOST/PGHOSTADDR/\n"
          "                  PGDATABASE/PGSERVICE, else the private server)\n"
          "  --data-dir DIR  the private server's directory (else\n"
          "                  $PGBANK_DATA_DIR, $XDG_STATE_HOME/pgbank or\n"
          "                  ~/.local/state/pgbank)\n"
          "  --echo          print every SQL statement and its parameters to\n"
          "                  stderr\n"
          "  --json          print results as one JSON object on stdout\n"
          "  --unnamed-statements\n"
          "                  never use named prepared statements: needed\n"
          "                  behind PgBouncer in transaction pooling mode\n"
          "  -h, --help      show help (also: pgbank help COMMAND)\n"
          "  -V, --version   show the version\n"
          "\n"
          "Exit codes:\n"
          "  0  done\n"
          "  1  refused by the bank's rules (insufficient funds, no such\n"
          "     account, conflict); audit: a check failed\n"
          "  2  bad usage or invalid input (nothing was sent to the database)\n"
          "  3  database, connection or private-server failure\n"
          "\n"
          "Example:\n"
          "  id=$(pgbank account open --balance 100)\n"
          "  pgbank withdraw \"$id\" 80 --strategy for-update\n"
          "  to=$(pgbank account open)\n"
          "  pgbank transfer \"$id\" \"$to\" 15 --key order-1234\n"
          "  pgbank history \"$to\"\n"
          "  pgbank audit\n"
          "\n"
          "The password of a connection string is never printed.\n", f);
}

static int run_help(cli *c, int argc, char **argv)
{
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(c, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    if (npos == 0) {
        if (cli_parsed(c))
            return CLI_EXIT_OK;
        cli_print_usage(stdout);
        return CLI_EXIT_OK;
    }
    const cli_command *cmd = cli_command_find(pos[0]);
    if (!cmd) {
        fprintf(stderr, "pgbank: unknown command '%s'\nTry 'pgbank --help'.\n",
                pos[0]);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_parsed(c)) != 0)
        return CLI_EXIT_OK;
    fputs(cmd->usage, stdout);
    return CLI_EXIT_OK;
}

const cli_command cli_cmd_help = {
    "help", "show help for pgbank or for one command",
    "Usage: pgbank help [COMMAND]\n"
    "\n"
    "Shows the general help, or the help of COMMAND (the same as\n"
    "'pgbank COMMAND --help').\n"
    "\n"
    "Example:\n"
    "  pgbank help withdraw\n",
    run_help,
};

/* Global options before the command; *next gets the index of the command
 * (argc when there is none).  Returns 0, CLI_DONE (version printed) or
 * CLI_EXIT_USAGE after a message. */
static int parse_leading_globals(cli *c, int argc, char **argv, int *help,
                                 int *next)
{
    int i = 1;
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = 1;
            i++;
            continue;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("pgbank %s\n", pgbank_version());
            return CLI_DONE;
        }
        int rc = cli_parse_global(c, argc, argv, &i);
        if (rc == 0) {
            fprintf(stderr, "pgbank: unknown option '%s'\n"
                            "Try 'pgbank --help'.\n", a);
            return CLI_EXIT_USAGE;
        }
        if (rc != 1)
            return rc;
    }
    *next = i;
    return 0;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    c.command = "";
    /* For tests (man page, ENVIRONMENT): every command stops after parsing. */
    const char *parse_only = getenv("PGBANK_PARSE_ONLY");
    c.parse_only = parse_only && *parse_only && strcmp(parse_only, "0") != 0;
    int help = 0, i = argc;
    int rc = parse_leading_globals(&c, argc, argv, &help, &i);
    if (rc)
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    if (i >= argc) {
        cli_print_usage(help ? stdout : stderr);
        return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    const cli_command *cmd = cli_command_find(argv[i]);
    if (!cmd) {
        fprintf(stderr, "pgbank: unknown command '%s'\n\n", argv[i]);
        cli_print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    c.cmd = cmd;
    c.command = cmd->name;
    if (help) {
        fputs(cmd->usage, stdout);
        return CLI_EXIT_OK;
    }
    rc = cmd->run(&c, argc - i - 1, argv + i + 1);
    return rc == CLI_DONE ? CLI_EXIT_OK : rc;
}
