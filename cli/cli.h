/*
 * cli.h - the command-line tool's private header: the invocation context,
 * the command table, option parsing, connection resolution and output.
 *
 * Adding a command: write `const cli_command cli_cmd_NAME` in a cli/cmd_*.c
 * file, declare it below and list it in main.c's table.
 */
#ifndef PGBANK_CLI_H
#define PGBANK_CLI_H

#include "pgbank.h"

#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Exit codes: one table, also printed by `pgbank --help`. */
enum {
    CLI_EXIT_OK = 0,      /* done */
    CLI_EXIT_REFUSED = 1, /* refused by the bank's rules */
    CLI_EXIT_USAGE = 2,   /* bad usage or invalid input; nothing was sent */
    CLI_EXIT_FAILURE = 3, /* database, connection or server failure */
    /* Not an exit code: help was printed, stop and exit 0. */
    CLI_DONE = -1
};

#define CLI_PATH_MAX 4096

/* One invocation: global options and what the command resolved. */
typedef struct cli {
    /* Global options (before or after the command). */
    const char *db;       /* --db, else NULL */
    const char *data_dir; /* --data-dir, else NULL */
    int echo;             /* --echo */
    int json;             /* --json */
    int unnamed_statements; /* --unnamed-statements (PgBouncer) */
    /* The command being run, for messages: "withdraw", "account open". */
    const char *command;
    const struct cli_command *cmd;
    /* The connection string every message is scrubbed with (NULL: none). */
    const char *scrub;
    /* $PGBANK_PARSE_ONLY (tests): commands stop once their command line is
     * parsed and validated; see cli_parsed(). */
    int parse_only;
} cli;

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `pgbank --help` */
    const char *usage;   /* the command's full help text */
    /* argv holds the arguments after the command name.  Returns an exit
     * code (or CLI_DONE). */
    int (*run)(cli *c, int argc, char **argv);
} cli_command;

extern const cli_command cli_cmd_server;
extern const cli_command cli_cmd_init;
extern const cli_command cli_cmd_account;
extern const cli_command cli_cmd_balance;
extern const cli_command cli_cmd_withdraw;
extern const cli_command cli_cmd_deposit;
extern const cli_command cli_cmd_transfer;
extern const cli_command cli_cmd_history;
extern const cli_command cli_cmd_audit;
extern const cli_command cli_cmd_race;
extern const cli_command cli_cmd_bench;
extern const cli_command cli_cmd_chaos;
extern const cli_command cli_cmd_help;

/* The command named `name`, or NULL. */
const cli_command *cli_command_find(const char *name);
/* Prints the general usage (commands, global options, exit codes). */
void cli_print_usage(FILE *f);

/* --- Options ------------------------------------------------------------ */

/* A command's option: --NAME VALUE / --NAME=VALUE, or a flag --NAME. */
typedef struct cli_opt {
    const char *name;   /* without the leading "--" */
    const char **value; /* receives the value; NULL for a flag */
    int *flag;          /* set to 1 for a flag */
} cli_opt;

/* Parses a command's arguments: its own options (`opts`, ended by a zeroed
 * entry; may be NULL), the global ones, and up to `maxpos` positional
 * arguments into pos[] (count in *npos).  "-h"/"--help" print the
 * command's usage, "-V"/"--version" the version.  Returns 0, CLI_DONE, or CLI_EXIT_USAGE after printing
 * the problem. */
int cli_parse(cli *c, int argc, char **argv, const cli_opt *opts,
              char **pos, int maxpos, int *npos);

/* Every command calls this once its options and arguments are parsed and
 * validated, before it connects, starts a server or writes a file.  With
 * $PGBANK_PARSE_ONLY set (c->parse_only) it says so on stderr and returns
 * CLI_DONE: the command stops there and pgbank exits 0.  Otherwise 0. */
int cli_parsed(const cli *c);

/* Parses one global option at argv[*i] (advancing *i past a separate
 * value).  Returns 1 when it was one, 0 when not, CLI_EXIT_USAGE after a
 * message.  Used by main() before the command and by cli_parse(). */
int cli_parse_global(cli *c, int argc, char **argv, int *i);

/* "pgbank CMD: <problem>" + "Try 'pgbank CMD --help'." on stderr.
 * Returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...) CLI_PRINTF(2, 3);

/* Strict numbers.  `what` names the value in messages ("amount",
 * "account id", "balance").  Return 0, or CLI_EXIT_USAGE after printing
 * "pgbank: invalid <what> '<s>': <reason>" (and a JSON object with --json). */
int cli_parse_amount(const cli *c, const char *what, const char *s,
                     int64_t *out);           /* > 0 */
int cli_parse_balance(const cli *c, const char *s, int64_t *out); /* >= 0 */
int cli_parse_account(const cli *c, const char *s, int64_t *out); /* > 0 */

/* An option's whole number within [min, max]; an int one; seconds above 0
 * and at most max_s, with an optional fraction ("10", "0.5"), in ns.
 * Return 0, or CLI_EXIT_USAGE after naming the option and the problem. */
int cli_parse_range(const cli *c, const char *opt, const char *s, int64_t min, int64_t max,
                    int64_t *out);
int cli_parse_count(const cli *c, const char *opt, const char *s, int min, int max, int *out);
int cli_parse_seconds(const cli *c, const char *opt, const char *s, int64_t max_s, int64_t *ns);

/* A strategy's name: the first len bytes of name.  opt names the option in
 * the message (NULL: none).  Returns 0, or CLI_EXIT_USAGE after "unknown
 * strategy 'NAME' [in OPT] (known: explicit, begin, ...)". */
int cli_parse_strategy(const cli *c, const char *opt, const char *name, size_t len,
                       pgbank_strategy *out);

/* --- Messages ----------------------------------------------------------- */

/* "pgbank: <message>" on stderr, scrubbed of the password; with --json and
 * a non-zero code also {"status":"invalid input" (code 2) or "database
 * error", "sqlstate":"", "message":...} on stdout.  Returns `code`. */
int cli_error(const cli *c, int code, const char *fmt, ...) CLI_PRINTF(3, 4);

/* Replaces the password of the current connection string in msg. */
void cli_scrub(const cli *c, char *msg, size_t size);

/* One JSON object on stdout, written field by field. */
typedef struct cli_json {
    FILE *f;
    int fields;
    int array; /* 1: the values of an array (keys are NULL) */
} cli_json;

void cli_json_begin(cli_json *j);
void cli_json_str(cli_json *j, const char *key, const char *val);
void cli_json_int(cli_json *j, const char *key, int64_t val);
void cli_json_bool(cli_json *j, const char *key, int val);
/* A number with `decimals` digits after the point; null when not finite
 * (a ratio to nothing). */
void cli_json_num(cli_json *j, const char *key, int decimals, double val);
void cli_json_null(cli_json *j, const char *key);
void cli_json_end(cli_json *j);
/* Nesting: cli_json_object() and cli_json_array() write `"key":{` or
 * `"key":[` and make child the writer of what is inside, closed with
 * cli_json_close(child).  Inside an array every key is NULL. */
void cli_json_object(cli_json *j, const char *key, cli_json *child);
void cli_json_array(cli_json *j, const char *key, cli_json *child);
void cli_json_close(cli_json *j);
/* Or by hand: cli_json_key() writes `"key":` and the caller the value,
 * e.g. "[", objects opened with cli_json_begin() and closed with
 * cli_json_close() (no newline), "]". */
void cli_json_key(cli_json *j, const char *key);

/* A failure as one JSON object on stdout (--json only; no-op otherwise):
 * {"status":..., "sqlstate":..., "message":...}.  sqlstate may be NULL. */
void cli_json_failure(const cli *c, const char *status, const char *sqlstate,
                      const char *message);

/* --- The database ------------------------------------------------------- */

/* Where the command's database is, resolved once per invocation. */
typedef struct cli_db {
    char *conninfo;                  /* libpq-usable; owned */
    int embedded;                    /* 1: the private server */
    char data_dir[CLI_PATH_MAX];     /* the private server's, if embedded */
    char where[CLI_PATH_MAX + 64];   /* for messages; password-free */
    pgbank_engine *eng;              /* after cli_db_open_engine() */
    int connections;                 /* the engine's pool size */
} cli_db;

/* The private server's directory: --data-dir, else the default. */
int cli_data_dir(const cli *c, char *buf, size_t len);

/* Resolves the database: --db / DATABASE_URL, else libpq's PG* variables,
 * else the private server (started on demand; with auto_init its schema is
 * created now, idempotently, ~15 ms).  Sets c->scrub.  Returns 0 or an exit
 * code after printing the problem; call cli_db_close() in every case. */
int cli_db_resolve(cli *c, cli_db *db, int auto_init);

/* Creates db->eng on the resolved database: `connections` connections
 * (opened on pgbank_engine_connect() or the first operation), statement
 * echo wired to --echo.  Returns 0 or an exit code after a message. */
int cli_db_open_engine(cli *c, cli_db *db, int connections);

/* The options of an engine on db: its connection string, statement echo
 * (--echo) and unnamed statements (--unnamed-statements).  Commands that
 * set up an engine of their own start from these. */
void cli_engine_options(cli *c, const cli_db *db, pgbank_options *opt);
/* The same for a connection string of the command's own (a schema of its
 * own appended, say). */
void cli_engine_options_for(cli *c, const char *conninfo, pgbank_options *opt);

/* pgbank_engine_new() with the tool's messages: "invalid connection
 * string" (exit 2) or "could not create the engine" (exit 3).  Returns 0
 * or an exit code. */
int cli_engine_new(cli *c, const pgbank_options *opt, pgbank_engine **out);

/* cli_db_resolve() without auto_init + an engine of one connection: what a
 * command running one operation needs. */
int cli_db_open(cli *c, cli_db *db);

/* Runs one operation.  Returns 0 when op->result holds the outcome
 * (connection failures included: DB_ERROR with SQLSTATE class 08), or an
 * exit code after printing the problem.  On the private server a missing
 * schema is created and the operation run again. */
int cli_db_execute(cli *c, cli_db *db, pgbank_op *op);

/* Frees the engine and the connection string; safe on a zeroed cli_db. */
void cli_db_close(cli *c, cli_db *db);

/* The exit code for an operation's status (the table above): 0 ok; 1
 * refused by the bank's rules (insufficient funds, no such account,
 * conflict); 2 invalid input or amount; 3 every failure (database error,
 * unknown outcome, retries exhausted, shut down). */
int cli_exit_code(pgbank_status s);

/* Prints an operation's failure (statuses other than OK and the refusals
 * a command words itself) to stderr, and as JSON with --json.  Returns the
 * status's exit code. */
int cli_report_failure(const cli *c, const pgbank_op *op);

#endif
