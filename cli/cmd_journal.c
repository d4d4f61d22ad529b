/*
 * cmd_journal.c - the commands that read the journal back: `pgbank history`
 * (one account's entries, newest first) and `pgbank audit` (every balance
 * against its journal, and the bank's totals).  Both run on a connection of
 * their own through pgbank_history() / pgbank_audit(); what they print is
 * collected first, so a failure never leaves half a table or half a JSON
 * object behind.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The database for a journal command: on the private server the schema is
 * created when missing (the user never has to init it); elsewhere a missing
 * journal is reported with "run 'pgbank init'". */
static int resolve(cli *c, cli_db *db)
{
    return cli_db_resolve(c, db, 1);
}

/* A library error code as an exit code, after the message (libpq's end
 * with a newline). */
static int journal_failure(const cli *c, const cli_db *db, int err, char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    const char *why = msg[0] ? msg : pgbank_strerror(err);
    switch (err) {
    case PGBANK_ECONNINFO:
        return cli_error(c, CLI_EXIT_USAGE, "invalid connection string: %s",
                         why);
    case PGBANK_ECONNECT:
        return cli_error(c, CLI_EXIT_FAILURE, "could not connect to the "
                         "database: %s", why);
    default:
        return cli_error(c, CLI_EXIT_FAILURE, "could not read the journal "
                         "in %s: %s", db->where, why);
    }
}

/* ------------------------------------------------------------------------
 * history
 * ------------------------------------------------------------------------ */

#define HISTORY_DEFAULT_LIMIT 20
#define HISTORY_MAX_LIMIT 1000000

/* One journal entry, copied out of the callback. */
typedef struct hist_row {
    int64_t seq, amount, balance_after;
    char *op, *key, *strategy, *at;
    char *by, *app; /* external changes: role and application_name */
} hist_row;

typedef struct hist_rows {
    hist_row *v;
    size_t n, cap;
    int nomem;
} hist_rows;

static char *dup_str(const char *s, int *nomem)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *nomem = 1;
    return d;
}

static void collect_entry(void *arg, const pgbank_journal_entry *e)
{
    hist_rows *rows = arg;
    if (rows->nomem)
        return;
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 32;
        hist_row *v = realloc(rows->v, cap * sizeof *v);
        if (!v) {
            rows->nomem = 1;
            return;
        }
        rows->v = v;
        rows->cap = cap;
    }
    hist_row *r = &rows->v[rows->n++];
    r->seq = e->seq;
    r->amount = e->amount;
    r->balance_after = e->balance_after;
    r->op = dup_str(e->op, &rows->nomem);
    r->key = dup_str(e->key, &rows->nomem);
    r->by = dup_str(e->role[0] ? e->role : "", &rows->nomem);
    r->app = dup_str(e->application, &rows->nomem);
    r->strategy = dup_str(e->strategy, &rows->nomem);
    r->at = dup_str(e->at, &rows->nomem);
}

static void free_rows(hist_rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        free(rows->v[i].op);
        free(rows->v[i].key);
        free(rows->v[i].strategy);
        free(rows->v[i].at);
        free(rows->v[i].by);
        free(rows->v[i].app);
    }
    free(rows->v);
}

static void history_json(int64_t account, const hist_rows *rows)
{
    cli_json j, e;
    cli_json_begin(&j);
    cli_json_str(&j, "status", "ok");
    cli_json_int(&j, "account", account);
    cli_json_key(&j, "entries");
    fputc('[', stdout);
    for (size_t i = 0; i < rows->n; i++) {
        const hist_row *r = &rows->v[i];
        if (i)
            fputc(',', stdout);
        cli_json_begin(&e);
        cli_json_int(&e, "seq", r->seq);
        cli_json_str(&e, "time", r->at);
        cli_json_str(&e, "op", r->op);
        cli_json_int(&e, "amount", r->amount);
        cli_json_int(&e, "balance_after", r->balance_after);
        cli_json_str(&e, "strategy", r->strategy);
        cli_json_str(&e, "key", r->key);
        if (r->by[0]) {
            cli_json_str(&e, "role", r->by);
            cli_json_str(&e, "application", r->app);
        }
        cli_json_close(&e);
    }
    fputc(']', stdout);
    cli_json_end(&j);
}

static int width_of(const char *s, int w)
{
    int n = (int)strlen(s);
    return n > w ? n : w;
}

static int width_of_int(int64_t v, int sign, int w)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, sign ? "%+lld" : "%lld", (long long)v);
    return n > w ? n : w;
}

/* The "strategy" column: how pgbank made the change, or, for a change made
 * outside pgbank, who made it. */
static const char *how(const hist_row *r, char *buf, size_t len)
{
    if (r->by[0]) {
        snprintf(buf, len, "by %s (%s)", r->by, r->app[0] ? r->app : "no application name");
        return buf;
    }
    return r->strategy[0] ? r->strategy : "-";
}

static void history_table(int64_t account, int limit, const hist_rows *rows)
{
    char label[200];
    if (rows->n == 0) {
        printf("account %lld has no journal entries\n", (long long)account);
        return;
    }
    int wseq = 3, wat = 4, wop = 2, wamt = 6, wbal = 13, wst = 8;
    for (size_t i = 0; i < rows->n; i++) {
        const hist_row *r = &rows->v[i];
        wseq = width_of_int(r->seq, 0, wseq);
        wat = width_of(r->at, wat);
        wop = width_of(r->op, wop);
        wamt = width_of_int(r->amount, 1, wamt);
        wbal = width_of_int(r->balance_after, 0, wbal);
        wst = width_of(how(r, label, sizeof label), wst);
    }
    printf("account %lld, newest first", (long long)account);
    if (limit > 0 && rows->n == (size_t)limit)
        printf(" (the newest %d; --limit 0 shows all)", limit);
    printf(":\n");
    printf("%*s  %-*s  %-*s  %*s  %*s  %-*s  %s\n", wseq, "seq", wat, "time",
           wop, "op", wamt, "amount", wbal, "balance after", wst, "strategy",
           "key");
    for (size_t i = 0; i < rows->n; i++) {
        const hist_row *r = &rows->v[i];
        char amount[32];
        snprintf(amount, sizeof amount, "%+lld", (long long)r->amount);
        printf("%*lld  %-*s  %-*s  %*s  %*lld  %-*s  %s\n", wseq,
               (long long)r->seq, wat, r->at, wop, r->op, wamt, amount, wbal,
               (long long)r->balance_after, wst, how(r, label, sizeof label),
               r->key[0] ? r->key : "-");
    }
}

static int history_not_found(const cli *c, int64_t account)
{
    if (c->json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "status", "no such account");
        cli_json_int(&j, "account", account);
        cli_json_end(&j);
    }
    fprintf(stderr, "pgbank: no such account %lld\n", (long long)account);
    return CLI_EXIT_REFUSED;
}

static int run_history(cli *c, int argc, char **argv)
{
    const char *limit_arg = NULL;
    const cli_opt opts[] = {{"limit", &limit_arg, NULL}, {NULL, NULL, NULL}};
    char *pos[1];
    int npos, rc = cli_parse(c, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos < 1)
        return cli_usage_error(c, "missing ACCOUNT");
    int64_t account, limit = HISTORY_DEFAULT_LIMIT;
    if ((rc = cli_parse_account(c, pos[0], &account)) != 0)
        return rc;
    if (limit_arg && (pgbank_parse_int64(limit_arg, &limit) != 0 ||
                      limit < 0 || limit > HISTORY_MAX_LIMIT))
        return cli_usage_error(c, "invalid --limit '%s': a whole number "
                               "from 1 to %d, or 0 for every entry",
                               limit_arg, HISTORY_MAX_LIMIT);
    if ((rc = cli_parsed(c)) != 0)
        return rc;
    cli_db db;
    hist_rows rows;
    memset(&rows, 0, sizeof rows);
    if ((rc = resolve(c, &db)) == 0) {
        char err[1024] = "";
        int r = pgbank_history(db.conninfo, account, (int)limit,
                               collect_entry, &rows, err, sizeof err);
        if (r == PGBANK_ENOTFOUND)
            rc = history_not_found(c, account);
        else if (r != 0)
            rc = journal_failure(c, &db, r, err);
        else if (rows.nomem)
            rc = cli_error(c, CLI_EXIT_FAILURE, "out of memory");
        else if (c->json)
            history_json(account, &rows);
        else
            history_table(account, (int)limit, &rows);
    }
    cli_db_close(c, &db);
    free_rows(&rows);
    return rc;
}

const cli_command cli_cmd_history = {
    "history", "show an account's journal, newest first",
    "Usage: pgbank history ACCOUNT [--limit N]\n"
    "\n"
    "Prints the journal of account ACCOUNT, newest first: every change of\n"
    "its balance, written in the same transaction as the change.  Columns:\n"
    "  seq            the journal's sequence number\n"
    "  time           when it was committed (UTC, ISO 8601)\n"
    "  op             open, withdraw, deposit, transfer out, transfer in,\n"
    "                 external (a change made outside pgbank, e.g. from psql)\n"
    "  amount         the signed change (-10: money out)\n"
    "  balance after  the balance the operation left\n"
    "  strategy       how it was made; for a change made outside pgbank\n"
    "                 (op external), who made it: role and application name\n"
    "  key            its idempotency key, or -\n"
    "Exits 1 when there is no such account.\n"
    "\n"
    "Options:\n"
    "  --limit N   at most N entries (default 20; 0: every entry)\n"
    "  --json      one object: {\"status\":\"ok\",\"account\":ID,\n"
    "              \"entries\":[{\"seq\",\"time\",\"op\",\"amount\",\n"
    "              \"balance_after\",\"strategy\",\"key\"[,\"role\",\n"
    "              \"application\"]},...]}\n"
    "\n"
    "Examples:\n"
    "  pgbank history 2\n"
    "  pgbank history 2 --limit 0 --json\n",
    run_history,
};

/* ------------------------------------------------------------------------
 * audit
 * ------------------------------------------------------------------------ */

/* How many problem accounts the text report lists (JSON lists them all). */
#define AUDIT_LIST_MAX 50

typedef struct audit_problem {
    int64_t account, balance, expected;
} audit_problem;

typedef struct audit_problems {
    audit_problem *v;
    size_t n, cap;
    int nomem;
} audit_problems;

static void collect_problem(void *arg, int64_t account, int64_t balance,
                            int64_t expected)
{
    audit_problems *p = arg;
    if (p->nomem)
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        audit_problem *v = realloc(p->v, cap * sizeof *v);
        if (!v) {
            p->nomem = 1;
            return;
        }
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (audit_problem){account, balance, expected};
}

/* What the totals should come to: opening balances + in - out + external
 * changes (wrapping only when the report is clamped; the verdict never
 * depends on it: the library computes it exactly). */
static int64_t expected_total(const pgbank_audit_report *rep)
{
    return (int64_t)((uint64_t)rep->opening_total + (uint64_t)rep->deposits -
                     (uint64_t)rep->withdrawals + (uint64_t)rep->external_net);
}

static void audit_json(int ok, const pgbank_audit_report *rep,
                       const audit_problems *p)
{
    cli_json j, e;
    cli_json_begin(&j);
    cli_json_str(&j, "status", ok ? "ok" : "failed");
    cli_json_int(&j, "accounts", rep->accounts);
    cli_json_int(&j, "total_balance", rep->total_balance);
    cli_json_int(&j, "opening_total", rep->opening_total);
    cli_json_int(&j, "money_in", rep->deposits);
    cli_json_int(&j, "money_out", rep->withdrawals);
    cli_json_int(&j, "expected_total", expected_total(rep));
    cli_json_int(&j, "mismatched", rep->mismatched);
    cli_json_int(&j, "negative", rep->negative);
    cli_json_int(&j, "money_lost", rep->money_lost);
    cli_json_int(&j, "money_created", rep->money_created);
    cli_json_int(&j, "external", rep->external);
    cli_json_int(&j, "external_net", rep->external_net);
    cli_json_str(&j, "external_by", rep->external_by);
    cli_json_bool(&j, "clamped", rep->clamped);
    cli_json_key(&j, "problems");
    fputc('[', stdout);
    for (size_t i = 0; i < p->n; i++) {
        const audit_problem *a = &p->v[i];
        if (i)
            fputc(',', stdout);
        cli_json_begin(&e);
        cli_json_int(&e, "account", a->account);
        cli_json_int(&e, "balance", a->balance);
        cli_json_int(&e, "journal_says", a->expected);
        cli_json_int(&e, "difference", a->balance - a->expected);
        cli_json_bool(&e, "negative", a->balance < 0);
        cli_json_close(&e);
    }
    fputc(']', stdout);
    cli_json_end(&j);
}

/* The problem accounts for which `want` holds, as a small table. */
static void list_problems(const audit_problems *p, int mismatched)
{
    size_t shown = 0, total = 0;
    for (size_t i = 0; i < p->n; i++) {
        const audit_problem *a = &p->v[i];
        if (mismatched ? a->balance == a->expected : a->balance >= 0)
            continue;
        if (total++ == 0)
            printf("    %12s  %12s  %12s  %12s\n", "account", "balance",
                   "journal says", "difference");
        if (shown >= AUDIT_LIST_MAX)
            continue;
        shown++;
        char diff[32];
        snprintf(diff, sizeof diff, "%+lld",
                 (long long)(a->balance - a->expected));
        printf("    %12lld  %12lld  %12lld  %12s\n", (long long)a->account,
               (long long)a->balance, (long long)a->expected, diff);
    }
    if (total > shown)
        printf("    ... and %zu more (--json lists every one)\n",
               total - shown);
}

static void audit_table(int ok, const char *where,
                        const pgbank_audit_report *rep,
                        const audit_problems *p)
{
    int64_t want = expected_total(rep);
    printf("audit of %s\n", where);
    printf("  accounts checked     %lld\n", (long long)rep->accounts);
    printf("  total balance        %lld\n", (long long)rep->total_balance);
    printf("  opening total        %lld\n", (long long)rep->opening_total);
    printf("  money in             %lld\n", (long long)rep->deposits);
    printf("  money out            %lld\n", (long long)rep->withdrawals);
    if (rep->external)
        printf("  external changes     %lld (net %+lld), made outside pgbank by %s\n",
               (long long)rep->external, (long long)rep->external_net, rep->external_by);
    else
        printf("  external changes     0\n");
    if (rep->clamped)
        printf("  totals               beyond 64 bits: the figures above are clamped, the "
               "checks are exact\n");
    else if (rep->total_balance == want)
        printf("  totals agree         opening + in - out + external = %lld\n",
               (long long)want);
    else
        printf("  totals DISAGREE      opening + in - out + external = %lld, the "
               "balances hold %+lld more\n", (long long)want,
               (long long)(rep->total_balance - want));
    printf("  mismatched accounts  %lld%s\n", (long long)rep->mismatched,
           rep->mismatched ? " (balance differs from its journal)" : "");
    if (rep->mismatched)
        list_problems(p, 1);
    printf("  negative balances    %lld\n", (long long)rep->negative);
    if (rep->negative)
        list_problems(p, 0);
    printf("  money lost           %lld%s\n", (long long)rep->money_lost,
           rep->money_lost ? " (paid out but never debited)" : "");
    printf("  money created        %lld%s\n", (long long)rep->money_created,
           rep->money_created ? " (debited but never paid out)" : "");
    printf("audit: %s\n", ok ? "ok" : "FAILED");
}

static int run_audit(cli *c, int argc, char **argv)
{
    int npos, rc = cli_parse(c, argc, argv, NULL, NULL, 0, &npos);
    if (rc || (rc = cli_parsed(c)) != 0)
        return rc;
    cli_db db;
    audit_problems p;
    memset(&p, 0, sizeof p);
    if ((rc = resolve(c, &db)) == 0) {
        char err[1024] = "";
        pgbank_audit_report rep;
        int r = pgbank_audit(db.conninfo, &rep, collect_problem, &p, err,
                             sizeof err);
        if (r < 0) {
            rc = journal_failure(c, &db, r, err);
        } else if (p.nomem) {
            rc = cli_error(c, CLI_EXIT_FAILURE, "out of memory");
        } else {
            if (c->json)
                audit_json(r == 1, &rep, &p);
            else
                audit_table(r == 1, db.where, &rep, &p);
            rc = r == 1 ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
        }
    }
    cli_db_close(c, &db);
    free(p.v);
    return rc;
}

const cli_command cli_cmd_audit = {
    "audit", "check every balance against its journal",
    "Usage: pgbank audit\n"
    "\n"
    "Checks, in one snapshot, that every balance equals its opening balance\n"
    "plus the changes its journal records, that no balance is negative, and\n"
    "that the money in the bank equals the opening balances plus money in\n"
    "(deposits, transfers in) minus money out (withdrawals, transfers out)\n"
    "plus the changes made outside pgbank, which the database journals as\n"
    "'external' (with the role and application that made them) and which\n"
    "the report lists apart.  All sums are exact (numeric, in SQL).\n"
    "A balance above its journal means money was paid out but never debited\n"
    "(lost, as the unsafe strategies do under concurrency); below it, money\n"
    "was debited but never paid out (created).\n"
    "\n"
    "Prints the totals, the accounts that fail a check (account, balance,\n"
    "what the journal says, the difference), and a last line 'audit: ok' or\n"
    "'audit: FAILED'.\n"
    "\n"
    "Exit codes: 0 everything holds; 1 something does not; 3 the database\n"
    "could not be read (no journal: run 'pgbank init').\n"
    "\n"
    "Options:\n"
    "  --json   one object: status (\"ok\" or \"failed\"), accounts,\n"
    "           total_balance, opening_total, money_in, money_out,\n"
    "           expected_total, mismatched, negative, money_lost,\n"
    "           money_created, external, external_net, external_by,\n"
    "           clamped, problems: [{account, balance, journal_says,\n"
    "           difference, negative}]\n"
    "\n"
    "Examples:\n"
    "  pgbank audit\n"
    "  pgbank --db postgresql://auditor@db.example.com/bank audit --json\n",
    run_audit,
};
