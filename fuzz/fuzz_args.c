/*
 * fuzz_args.c - the command line: cli_parse() (global and command options
 * in both --opt=value and --opt value forms, flags, "--", positional
 * arguments), the strict number parsers behind amounts, balances and
 * account ids, and pgbank_strategy_parse, compiled from cli/args.c and
 * cli/output.c with a fake command table: nothing is run.
 *
 * Input: the arguments, separated by NUL bytes.  Checks: cli_parse answers
 * 0, CLI_DONE or CLI_EXIT_USAGE; never more positional arguments than
 * allowed, each one an argument as given; an accepted --db or --data-dir is
 * non-empty; an accepted amount/id is > 0 and a balance >= 0, each exactly
 * what strtoll reads from a plain decimal; a parsed strategy's name is the
 * text that was parsed.
 */
#include "fuzz.h"

#include "cli.h"

#include <errno.h>

#define MAX_ARGS 64

static int run_nothing(cli *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    (void)argv;
    return 0;
}

static const cli_command fuzz_command = {
    "fuzz", "a command that only parses",
    "Usage: pgbank fuzz [A] [B] [C] [--strategy NAME] [--balance N] [--flag]\n", run_nothing};

static int plain_decimal(const char *s, long long *v)
{
    const char *p = *s == '-' ? s + 1 : s;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    errno = 0;
    *v = strtoll(s, NULL, 10);
    return errno == 0;
}

static void check_number(const cli *c, const char *s)
{
    int64_t v;
    long long want;
    int plain = plain_decimal(s, &want);
    if (cli_parse_amount(c, "amount", s, &v) == 0 && (!plain || v != want || v <= 0))
        fuzz_fail("amount \"%s\" accepted as %lld", s, (long long)v);
    if (cli_parse_account(c, s, &v) == 0 && (!plain || v != want || v <= 0))
        fuzz_fail("account id \"%s\" accepted as %lld", s, (long long)v);
    if (cli_parse_balance(c, s, &v) == 0 && (!plain || v != want || v < 0))
        fuzz_fail("balance \"%s\" accepted as %lld", s, (long long)v);
    if (plain && want > 0 && cli_parse_amount(c, "amount", s, &v) != 0)
        fuzz_fail("amount \"%s\" refused", s);
}

static void check_strategy(const char *s)
{
    pgbank_strategy st;
    if (pgbank_strategy_parse(s, &st) != 0)
        return;
    const char *name = pgbank_strategy_name(st);
    if (!name || strcmp(name, s) != 0)
        fuzz_fail("strategy \"%s\" parsed as \"%s\"", s, name ? name : "(null)");
}

static int is_arg(char **argv, int argc, const char *p)
{
    for (int i = 0; i < argc; i++)
        if (argv[i] == p)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size > 4096)
        return 0;
    /* Split at NUL bytes: "withdraw\0 1\0 80" is three arguments. */
    char *buf = malloc(size + 1), *argv[MAX_ARGS + 1];
    if (!buf)
        abort();
    if (size)
        memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    for (size_t i = 0; i <= size && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;

    cli c;
    memset(&c, 0, sizeof c);
    c.cmd = &fuzz_command;
    c.command = "fuzz";
    c.json = size > 0 && (data[0] & 1);
    const char *strategy = NULL, *balance = NULL;
    int flag = 0, npos = -1;
    const cli_opt opts[] = {{"strategy", &strategy, NULL},
                            {"balance", &balance, NULL},
                            {"flag", NULL, &flag},
                            {NULL, NULL, NULL}};
    char *pos[3];
    int rc = cli_parse(&c, argc, argv, opts, pos, 3, &npos);
    if (rc != 0 && rc != CLI_DONE && rc != CLI_EXIT_USAGE)
        fuzz_fail("cli_parse returned %d", rc);
    if (npos < 0 || npos > 3)
        fuzz_fail("cli_parse returned %d positional arguments", npos);
    for (int i = 0; i < npos; i++)
        if (!is_arg(argv, argc, pos[i]))
            fuzz_fail("positional argument %d is not one of the arguments", i);
    if (rc == 0) {
        if (c.db && !*c.db)
            fuzz_fail("an empty --db accepted");
        if (c.data_dir && !*c.data_dir)
            fuzz_fail("an empty --data-dir accepted");
        if (flag != 0 && flag != 1)
            fuzz_fail("a flag set to %d", flag);
        for (int i = 0; i < npos; i++)
            check_number(&c, pos[i]);
        if (balance)
            check_number(&c, balance);
        if (strategy)
            check_strategy(strategy);
    }
    /* Every argument through the number and strategy parsers, whatever
     * cli_parse made of it. */
    for (int i = 0; i < argc; i++) {
        check_number(&c, argv[i]);
        check_strategy(argv[i]);
    }
    /* Global options alone, as main() parses them before the command. */
    cli g;
    memset(&g, 0, sizeof g);
    g.command = "";
    for (int i = 0; i < argc;) {
        int before = i, r = cli_parse_global(&g, argc, argv, &i);
        if (r != 0 && r != 1 && r != CLI_EXIT_USAGE)
            fuzz_fail("cli_parse_global returned %d", r);
        if (r == 1 && i <= before)
            fuzz_fail("cli_parse_global accepted without moving on");
        if (r != 1)
            break;
    }
    free(buf);
    return 0;
}
