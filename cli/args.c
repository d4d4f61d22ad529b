/*
 * args.c - command-line parsing: global and per-command options in either
 * form (--opt=value, --opt value), positional arguments, and the strict
 * validation of ids and amounts that happens before anything is sent.
 */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

int cli_usage_error(const cli *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *cmd = c->cmd ? c->cmd->name : NULL;
    if (cmd)
        fprintf(stderr, "pgbank %s: %s\nTry 'pgbank %s --help'.\n",
                c->command, msg, cmd);
    else
        fprintf(stderr, "pgbank: %s\nTry 'pgbank --help'.\n", msg);
    return CLI_EXIT_USAGE;
}

/* Is `arg` "--name" or "--name=..."?  *inline_value gets what follows '='. */
static int match_option(const char *arg, const char *name,
                        const char **inline_value)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
        return 0;
    if (arg[2 + n] == '\0') {
        *inline_value = NULL;
        return 1;
    }
    if (arg[2 + n] == '=') {
        *inline_value = arg + 3 + n;
        return 1;
    }
    return 0;
}

/* Takes the value of option `name` at argv[*i] (inline or the next
 * argument) and advances *i past it. */
static int take_value(const cli *c, int argc, char **argv, int *i,
                      const char *name, const char *inline_value,
                      const char **out)
{
    if (inline_value) {
        *out = inline_value;
        *i += 1;
        return 0;
    }
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
        return cli_usage_error(c, "option '--%s' needs a value", name);
    *out = argv[*i + 1];
    *i += 2;
    return 0;
}

static int take_flag(const cli *c, int *i, const char *name,
                     const char *inline_value, int *flag)
{
    if (inline_value)
        return cli_usage_error(c, "option '--%s' takes no value", name);
    *flag = 1;
    *i += 1;
    return 0;
}

int cli_parse_global(cli *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    int rc;
    if (match_option(a, "db", &v)) {
        if ((rc = take_value(c, argc, argv, i, "db", v, &c->db)) != 0)
            return rc;
        if (c->db[0] == '\0')
            return cli_usage_error(c, "option '--db' needs a non-empty "
                                      "connection string");
        return 1;
    }
    if (match_option(a, "data-dir", &v)) {
        if ((rc = take_value(c, argc, argv, i, "data-dir", v, &c->data_dir)))
            return rc;
        if (c->data_dir[0] == '\0')
            return cli_usage_error(c, "option '--data-dir' needs a "
                                      "non-empty directory");
        return 1;
    }
    if (match_option(a, "echo", &v))
        return (rc = take_flag(c, i, "echo", v, &c->echo)) ? rc : 1;
    if (match_option(a, "json", &v))
        return (rc = take_flag(c, i, "json", v, &c->json)) ? rc : 1;
    if (match_option(a, "unnamed-statements", &v))
        return (rc = take_flag(c, i, "unnamed-statements", v,
                               &c->unnamed_statements)) ? rc : 1;
    return 0;
}

/* "-5" is a (negative, later refused) number, not an option. */
static int is_option(const char *a)
{
    return a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9');
}

static int parse_command_option(cli *c, int argc, char **argv, int *i,
                                const cli_opt *opts)
{
    const char *v;
    for (const cli_opt *o = opts; o && o->name; o++) {
        if (!match_option(argv[*i], o->name, &v))
            continue;
        if (o->value)
            return take_value(c, argc, argv, i, o->name, v, o->value);
        return take_flag(c, i, o->name, v, o->flag);
    }
    return cli_usage_error(c, "unknown option '%s'", argv[*i]);
}

int cli_parse(cli *c, int argc, char **argv, const cli_opt *opts,
              char **pos, int maxpos, int *npos)
{
    int only_positional = 0;
    *npos = 0;
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = 1;
            i++;
            continue;
        }
        if (!only_positional && is_option(a)) {
            if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                fputs(c->cmd->usage, stdout);
                return CLI_DONE;
            }
            /* Global, like --help: before or after the command. */
            if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
                printf("pgbank %s\n", pgbank_version());
                return CLI_DONE;
            }
            int rc = cli_parse_global(c, argc, argv, &i);
            if (rc == 1)
                continue;
            if (rc != 0)
                return rc;
            if ((rc = parse_command_option(c, argc, argv, &i, opts)) != 0)
                return rc;
            continue;
        }
        if (*npos >= maxpos)
            return cli_usage_error(c, "unexpected argument '%s'", a);
        pos[(*npos)++] = argv[i++];
    }
    return 0;
}

int cli_parsed(const cli *c)
{
    if (!c->parse_only)
        return 0;
    fprintf(stderr, "pgbank %s: command line accepted (PGBANK_PARSE_ONLY: nothing was "
                    "sent)\n", c->command);
    return CLI_DONE;
}

/* ------------------------------------------------------------------------
 * Numbers.
 * ------------------------------------------------------------------------ */

/* An optional '-' and digits only: a whole number, maybe too large. */
static int looks_whole(const char *s)
{
    if (*s == '-')
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int invalid_number(const cli *c, const char *what, const char *s,
                          const char *reason)
{
    /* The value is quoted with its control characters shown as '?', so the
     * message stays one line whatever was typed. */
    char shown[64];
    size_t n = 0;
    for (const char *p = s; *p && n + 4 < sizeof shown; p++)
        shown[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
    if (strlen(s) > n) {
        memcpy(shown + n, "...", 3);
        n += 3;
    }
    shown[n] = '\0';
    char msg[512];
    snprintf(msg, sizeof msg, "invalid %s '%s': %s", what, shown, reason);
    fprintf(stderr, "pgbank: %s\n", msg);
    cli_json_failure(c, strcmp(what, "account id") == 0 ? "invalid input"
                                                        : "invalid amount",
                     NULL, msg);
    return CLI_EXIT_USAGE;
}

/* Parses s and requires it to be >= min. */
static int parse_at_least(const cli *c, const char *what, const char *s,
                          int64_t min, const char *below, int64_t *out)
{
    if (pgbank_parse_int64(s, out) != 0)
        return invalid_number(c, what, s,
                              looks_whole(s) ? "out of range"
                                             : "not a whole number");
    if (*out < min)
        return invalid_number(c, what, s, below);
    return 0;
}

int cli_parse_amount(const cli *c, const char *what, const char *s,
                     int64_t *out)
{
    return parse_at_least(c, what, s, 1, "must be positive", out);
}

int cli_parse_balance(const cli *c, const char *s, int64_t *out)
{
    return parse_at_least(c, "balance", s, 0, "must not be negative", out);
}

int cli_parse_account(const cli *c, const char *s, int64_t *out)
{
    return parse_at_least(c, "account id", s, 1, "must be positive", out);
}

int cli_parse_range(const cli *c, const char *opt, const char *s, int64_t min, int64_t max,
                    int64_t *out)
{
    int64_t v = 0;
    if (pgbank_parse_int64(s, &v) != 0 || v < min || v > max)
        return cli_usage_error(c, "invalid %s '%s': a whole number from %lld to %lld", opt, s,
                               (long long)min, (long long)max);
    *out = v;
    return 0;
}

int cli_parse_count(const cli *c, const char *opt, const char *s, int min, int max, int *out)
{
    int64_t v = 0;
    int rc = cli_parse_range(c, opt, s, min, max, &v);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

int cli_parse_seconds(const cli *c, const char *opt, const char *s, int64_t max_s, int64_t *ns)
{
    int64_t whole = 0, frac = 0, scale = 1000000000;
    const char *p = s;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        whole = whole * 10 + (*p - '0');
        if (whole > max_s)
            break;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    *ns = whole * 1000000000 + frac;
    if (!digits || *p || *ns <= 0 || *ns > max_s * 1000000000)
        return cli_usage_error(c, "invalid %s '%s': seconds above 0 and at most %lld, "
                               "like 10 or 0.5", opt, s, (long long)max_s);
    return 0;
}

/* ------------------------------------------------------------------------
 * Strategies.
 * ------------------------------------------------------------------------ */

int cli_parse_strategy(const cli *c, const char *opt, const char *name, size_t len,
                       pgbank_strategy *out)
{
    /* Matches the names the library has (its table may have gaps while
     * strategies are being added), and lists them when none matches. */
    char known[256] = "";
    for (int i = 0; i < PGBANK_STRATEGY_COUNT; i++) {
        const char *k = pgbank_strategy_name((pgbank_strategy)i);
        if (!k)
            continue;
        if (strlen(k) == len && strncmp(k, name, len) == 0) {
            *out = (pgbank_strategy)i;
            return 0;
        }
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                 known[0] ? ", " : "", k);
    }
    return cli_usage_error(c, "unknown strategy '%.*s'%s%s (known: %s)",
                           (int)(len > 64 ? 64 : len), name, opt ? " in " : "",
                           opt ? opt : "", known);
}
