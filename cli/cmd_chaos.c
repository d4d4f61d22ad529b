/*
 * cmd_chaos.c - `pgbank chaos`: a bank test in the spirit of Jepsen's.
 *
 * C clients (one engine, one connection each, C operations in flight) run
 * keyed withdrawals, deposits and transfers with every safe strategy that
 * takes keys (for-update, atomic, serializable) on N fresh accounts, while
 * faults are injected at random intervals (lab/faults.c): backends
 * terminated, and on the private server crashes with a restart.
 * The client side of exactly-once: an operation that ends in "unknown
 * outcome", "database error" or "retries exhausted" is resubmitted with the
 * same key and the same parameters, after a short jittered backoff, until
 * it gets a definite answer (ok, insufficient funds; no such account and
 * conflict would be bugs here).  Each key is one operation in the model
 * (chaos_model.c), however many times it was sent and whether its ok was a
 * replay.
 *
 * With --unkeyed the operations carry no key (and batch joins the
 * strategies), and the other half of the promise is tested: an "unknown
 * outcome" is final (an operation without a key is never re-sent: it may
 * have been applied), while a "database error" means nothing was applied,
 * so the client may send it again.  Every unkeyed operation moves a
 * distinct amount (its number + 1), which makes the journal a ledger of
 * operations: each one must be found there once if acknowledged, never if
 * refused or failed, and at most once if its outcome is unknown (and then
 * the model takes what the journal says).
 *
 * The clients are the lab's load (lab/load.c): at the deadline nothing new
 * is submitted and the faults stop; operations still unanswered are driven
 * to an answer within the drain timeout.  Then the database is compared
 * with the model: every operation's journal rows, every balance, and the
 * audit.  The run lives in a schema of its own (pgbank_chaos_<n>,
 * lab/schema.c), so other accounts in the database can neither spoil nor be
 * spoiled by it; the schema is dropped unless --keep.
 */
#include "chaos_model.h"
#include "cli.h"
#include "internal.h"
#include "lab/faults.h"
#include "lab/lab.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OPENING_BALANCE 10000 /* per account, in minor units */
/* Unkeyed amounts grow with the operation's number: room for millions. */
#define OPENING_BALANCE_UNKEYED 1000000000000LL
#define MAX_AMOUNT 1000       /* amounts are 1..MAX_AMOUNT */
#define MAX_CLIENTS 256
#define MAX_ACCOUNTS 10000
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 500

typedef struct chaos_settings {
    int64_t duration_ns;
    int64_t drain_ns;
    const char *duration_arg;
    int clients;
    int accounts;
    uint64_t seed;
    int faults; /* LAB_FAULT_* bits */
    int faults_given;
    int keep;
    int unkeyed;
} chaos_settings;

/* What a client is doing, beside its lab_client. */
typedef struct chaos_client {
    char key[32];
    int64_t op; /* its operation in the model */
    int backoff_ms;
} chaos_client;

typedef struct chaos {
    cli *c;
    const chaos_settings *set;
    cli_db db;
    lab_schema schema;
    pgbank_engine *eng;
    lab_load load;
    lab_tally tally;
    lab_faults faults;
    chaos_model model;
    chaos_client *clients;
    uint64_t rng; /* --seed: the operations' choices */
    int tty;
    char fatal[512];
    char last_transient[300];
    int64_t progress_ns;
    int audit_holds;
    pgbank_audit_report audit;
} chaos;

static int64_t between(chaos *ch, int64_t lo, int64_t hi)
{
    return lo + (int64_t)pgbank__rand_below(&ch->rng, (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------------
 * Clients: a closed loop each; a transient answer resubmits the same op.
 * ------------------------------------------------------------------------ */

/* A new operation with a key of its own. */
static int chaos_next(lab_load *L, lab_client *lc)
{
    /* Every safe strategy; batch carries no keys, so only unkeyed. */
    static const pgbank_strategy safe[] = {PGBANK_FOR_UPDATE, PGBANK_ATOMIC,
                                           PGBANK_SERIALIZABLE, PGBANK_BATCH};
    static const pgbank_op_kind kinds[] = {PGBANK_OP_WITHDRAW, PGBANK_OP_DEPOSIT,
                                           PGBANK_OP_TRANSFER};
    chaos *ch = L->arg;
    chaos_client *cl = &ch->clients[lc->index];
    if (ch->fatal[0] || ch->model.nomem)
        return 1;
    pgbank_op_kind kind = kinds[between(ch, 0, 2)];
    pgbank_strategy strategy = safe[between(ch, 0, ch->set->unkeyed ? 3 : 2)];
    int from = (int)between(ch, 0, ch->set->accounts - 1);
    int to = (int)between(ch, 0, ch->set->accounts - 2);
    if (to >= from)
        to++;
    int64_t amount = between(ch, 1, MAX_AMOUNT);
    if (ch->set->unkeyed) /* unique: the journal names the operation */
        amount = (int64_t)ch->model.nops + 1;
    if ((cl->op = chaos_model_op(&ch->model, kind, from, to, amount)) < 0)
        return 1;
    pgbank_op *op = &lc->op;
    pgbank_op_init(op, kind);
    op->strategy = strategy;
    op->account = ch->model.accounts[from].id;
    op->to_account = kind == PGBANK_OP_TRANSFER ? ch->model.accounts[to].id : 0;
    op->amount = amount;
    if (!ch->set->unkeyed) {
        snprintf(cl->key, sizeof cl->key, "chaos-%lld", (long long)cl->op);
        op->key = cl->key;
    }
    cl->backoff_ms = 0;
    return 0;
}

static int chaos_done(lab_load *L, lab_client *lc, int64_t now)
{
    chaos *ch = L->arg;
    chaos_client *cl = &ch->clients[lc->index];
    const pgbank_result *res = &lc->op.result;
    if (chaos_model_answer(&ch->model, cl->op, res->status, res->replayed))
        return LAB_NEXT;
    snprintf(ch->last_transient, sizeof ch->last_transient, "%s%s%s%s%s",
             pgbank_status_name(res->status), res->sqlstate[0] ? " " : "", res->sqlstate,
             res->message[0] ? ": " : "", res->message);
    /* Same key, same parameters, after a jittered backoff. */
    int b = cl->backoff_ms ? cl->backoff_ms * 2 : BACKOFF_MIN_MS;
    cl->backoff_ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
    lc->wake_ns = now + between(ch, cl->backoff_ms / 2, cl->backoff_ms) * 1000000;
    return LAB_RETRY;
}

static void progress(chaos *ch, int64_t now, int final)
{
    if (!ch->tty || ch->c->json || (!final && now < ch->progress_ns))
        return;
    ch->progress_ns = now + 250000000;
    if (final) {
        fprintf(stderr, "\r%78s\r", "");
        return;
    }
    fprintf(stderr, "\rpgbank chaos: %5.1f s  %lld ops  %lld faults%s   ",
            (double)(now - ch->load.start_ns) / 1e9, (long long)ch->model.nops,
            (long long)(ch->faults.terminations + ch->faults.crashes),
            ch->load.stopping ? "  (draining)" : "");
    fflush(stderr);
}

/* Every turn of the loop: faults, the progress line. */
static int64_t chaos_step(lab_load *L, int64_t now)
{
    chaos *ch = L->arg;
    int64_t want = lab_faults_step(&ch->faults, now, L->stopping);
    progress(ch, now, 0);
    if (ch->faults.fatal[0] && !ch->fatal[0])
        snprintf(ch->fatal, sizeof ch->fatal, "%s", ch->faults.fatal);
    if (ch->fatal[0] || ch->model.nomem)
        lab_load_abort(L);
    return want && want < now + 250000000 ? want : now + 250000000;
}

/* The drain waits for a crashed server to be back. */
static int chaos_busy(lab_load *L)
{
    chaos *ch = L->arg;
    return lab_faults_busy(&ch->faults);
}

static const lab_hooks chaos_hooks = {chaos_next, chaos_done, chaos_step, NULL, chaos_busy};

/* ------------------------------------------------------------------------
 * Setup, run, checks.
 * ------------------------------------------------------------------------ */

static int open_accounts(chaos *ch)
{
    for (int i = 0; i < ch->set->accounts; i++) {
        pgbank_op op;
        pgbank_op_init(&op, PGBANK_OP_OPEN);
        op.amount = ch->set->unkeyed ? OPENING_BALANCE_UNKEYED : OPENING_BALANCE;
        int rc = pgbank_execute(ch->eng, &op);
        if (rc != 0)
            return cli_error(ch->c, CLI_EXIT_FAILURE, "could not open the accounts: %s",
                             pgbank_strerror(rc));
        if (op.result.status != PGBANK_OK) {
            cli_error(ch->c, 0, "could not open the run's accounts:");
            cli_report_failure(ch->c, &op);
            return CLI_EXIT_FAILURE;
        }
        chaos_model_open(&ch->model, i, op.result.account, op.amount);
    }
    chaos_model_ready(&ch->model);
    return 0;
}

static int chaos_setup(chaos *ch)
{
    cli *c = ch->c;
    int rc = cli_db_resolve(c, &ch->db, 0);
    if (rc)
        return rc;
    ch->faults.kinds = ch->set->faults;
    if ((ch->faults.kinds & LAB_FAULT_CRASH) && !ch->db.embedded) {
        if (ch->set->faults_given)
            return cli_usage_error(c, "--faults crash needs the private server (no --db, "
                                      "DATABASE_URL or PG* variables): only its data "
                                      "directory tells where the postmaster is");
        ch->faults.kinds &= ~LAB_FAULT_CRASH; /* by default: what the database allows */
    }
    if ((rc = lab_schema_open(c, &ch->db, "chaos", NULL, &ch->schema)) != 0)
        return rc;
    ch->schema.keep = ch->set->keep;
    ch->faults.schema = &ch->schema;
    ch->faults.data_dir = ch->db.data_dir;
    ch->faults.duration_ns = ch->set->duration_ns;
    ch->faults.rng = &ch->rng;
    pgbank_options opt;
    lab_engine_options(&ch->schema, &opt); /* --echo, --unnamed-statements */
    opt.connections = ch->set->clients;
    opt.connect_timeout_ms = 5000;
    opt.retry_max = 100;
    opt.retry_budget_ms = 20000;
    if ((rc = lab_engine_open(&ch->schema, &opt, 30000, &ch->eng)) != 0)
        return rc;
    return open_accounts(ch);
}

static int chaos_run(chaos *ch)
{
    lab_load *L = &ch->load;
    L->eng = ch->eng;
    L->hooks = &chaos_hooks;
    L->arg = ch;
    L->tally = &ch->tally;
    L->duration_ns = ch->set->duration_ns;
    L->drain_ns = ch->set->drain_ns;
    lab_faults_start(&ch->faults, pgbank__now_ns());
    int rc = lab_load_run(L);
    if (rc < 0 && !ch->fatal[0])
        snprintf(ch->fatal, sizeof ch->fatal, "the engine's loop failed: %s",
                 pgbank_strerror(rc));
    progress(ch, L->end_ns, 1);
    /* The server must be up for the checks. */
    lab_faults_settle(&ch->faults);
    /* Whatever is still pending gets no answer. */
    lab_engine_close(L, &ch->eng);
    if (ch->model.nomem)
        return cli_error(ch->c, CLI_EXIT_FAILURE, "out of memory");
    if (ch->fatal[0])
        return cli_error(ch->c, CLI_EXIT_FAILURE, "%s", ch->fatal);
    return 0;
}

/* Every operation's journal rows, found by its key (or, unkeyed, by its
 * distinct amount), then every balance. */
static int check_database(chaos *ch, char *err, size_t errlen)
{
    const char *sql = ch->set->unkeyed
                          ? "SELECT abs(amount)::text, count(*), count(key) FROM pgbank_entries"
                            " WHERE op <> 'open' GROUP BY 1"
                          : "SELECT key, count(*), 0 FROM pgbank_journal"
                            " WHERE key IS NOT NULL AND key <> '' GROUP BY key";
    PGresult *r = lab_query(&ch->schema, sql, 0, NULL, err, errlen);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        int64_t n = strtoll(PQgetvalue(r, i, 1), NULL, 10), idx = -1;
        if (ch->set->unkeyed) {
            if (pgbank_parse_int64(name, &idx) == 0)
                idx--;
            chaos_model_stray(&ch->model, strtoll(PQgetvalue(r, i, 2), NULL, 10));
        } else if (strncmp(name, "chaos-", 6) != 0 || pgbank_parse_int64(name + 6, &idx) != 0) {
            idx = -1;
        }
        chaos_model_journal(&ch->model, idx, n);
    }
    PQclear(r);
    chaos_model_settle(&ch->model);
    r = lab_query(&ch->schema, "SELECT id, balance FROM accounts ORDER BY id", 0, NULL, err,
                  errlen);
    if (!r)
        return -1;
    int seen = 0;
    for (int i = 0; i < PQntuples(r); i++)
        chaos_model_balance(&ch->model, strtoll(PQgetvalue(r, i, 0), NULL, 10),
                            strtoll(PQgetvalue(r, i, 1), NULL, 10), &seen);
    PQclear(r);
    if (seen < ch->set->accounts) {
        snprintf(err, errlen, "%d of the run's %d accounts are missing",
                 ch->set->accounts - seen, ch->set->accounts);
        return -1;
    }
    return 0;
}

static int chaos_check(chaos *ch)
{
    char err[1024];
    if (check_database(ch, err, sizeof err) != 0)
        return cli_error(ch->c, CLI_EXIT_FAILURE, "could not check the run's accounts in "
                         "schema %s: %s", ch->schema.name, err);
    err[0] = '\0';
    int rc = pgbank_audit(ch->schema.conninfo, &ch->audit, NULL, NULL, err, sizeof err);
    if (rc < 0) {
        cli_scrub(ch->c, err, sizeof err);
        return cli_error(ch->c, CLI_EXIT_FAILURE, "could not audit schema %s: %s",
                         ch->schema.name, err[0] ? err : pgbank_strerror(rc));
    }
    ch->audit_holds = rc == 1;
    return 0;
}

static int chaos_failed(const chaos *ch)
{
    return chaos_model_failed(&ch->model) || !ch->audit_holds;
}

/* ------------------------------------------------------------------------
 * Report.
 * ------------------------------------------------------------------------ */

static int64_t elapsed_ms(const chaos *ch) { return (ch->load.end_ns - ch->load.start_ns) / 1000000; }

static int64_t ops_per_sec(const chaos *ch)
{
    return (int64_t)lab_per_sec((int64_t)ch->model.nops, ch->load.end_ns - ch->load.start_ns);
}

/* Answers the model does not keep: the transient ones, by status. */
static int64_t db_errors(const chaos *ch)
{
    return ch->tally.by_status[PGBANK_DB_ERROR] + ch->tally.by_status[PGBANK_SHUT_DOWN];
}

static int64_t exhausted(const chaos *ch)
{
    return ch->tally.by_status[PGBANK_RETRIES_EXHAUSTED];
}

static void print_json(const chaos *ch)
{
    const chaos_model *m = &ch->model;
    const lab_faults *f = &ch->faults;
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "status", chaos_failed(ch) ? "failed" : "ok");
    char where[sizeof ch->db.where];
    snprintf(where, sizeof where, "%s", ch->db.where);
    cli_scrub(ch->c, where, sizeof where); /* redact misses some forms */
    cli_json_str(&j, "database", where);
    cli_json_str(&j, "schema", ch->schema.name);
    cli_json_str(&j, "mode", ch->set->unkeyed ? "unkeyed" : "keyed");
    cli_json_int(&j, "seed", (int64_t)ch->set->seed);
    cli_json_int(&j, "duration_ms", ch->set->duration_ns / 1000000);
    cli_json_int(&j, "elapsed_ms", elapsed_ms(ch));
    cli_json_int(&j, "interrupted", lab_interrupted() != 0);
    cli_json_int(&j, "clients", ch->set->clients);
    cli_json_int(&j, "accounts", ch->set->accounts);
    cli_json_int(&j, "ops", (int64_t)m->nops);
    cli_json_int(&j, "ops_per_sec", ops_per_sec(ch));
    cli_json_int(&j, "acknowledged", m->ok);
    cli_json_int(&j, "refused", m->refused);
    cli_json_int(&j, "replayed", m->replayed);
    cli_json_int(&j, "unknown", m->unknown);
    cli_json_int(&j, "unknown_resolved", m->unknown_resolved);
    cli_json_int(&j, "unknown_ops", m->unknown_ops);
    cli_json_int(&j, "unknown_applied", m->unknown_applied);
    cli_json_int(&j, "db_errors", db_errors(ch));
    cli_json_int(&j, "retries_exhausted", exhausted(ch));
    cli_json_int(&j, "retried", ch->load.resubmitted);
    cli_json_int(&j, "conflicts", m->conflicts);
    cli_json_int(&j, "no_such_account", m->no_account);
    cli_json_int(&j, "invalid", m->invalid);
    cli_json_int(&j, "faults", f->terminations + f->crashes);
    cli_json_int(&j, "faults_terminate", f->terminations);
    cli_json_int(&j, "faults_crash", f->crashes);
    cli_json_int(&j, "backends_terminated", f->backends_killed);
    cli_json_int(&j, "fault_failures", f->failures);
    cli_json_int(&j, "server_down_ms", f->downtime_ns / 1000000);
    cli_json_int(&j, "money_lost", m->money_lost);
    cli_json_int(&j, "money_created", m->money_created);
    cli_json_int(&j, "negative_balances", m->negative);
    cli_json_int(&j, "ops_without_result", m->without_result);
    cli_json_int(&j, "applied_not_acknowledged", m->applied_not_acked);
    cli_json_int(&j, "acknowledged_not_applied", m->acked_not_applied);
    cli_json_int(&j, "applied_twice", m->applied_twice);
    cli_json_int(&j, "torn", m->torn);
    cli_json_str(&j, "audit", ch->audit_holds ? "ok" : "failed");
    cli_json_int(&j, "total_balance", ch->audit.total_balance);
    cli_json_end(&j);
}

static void print_report(const chaos *ch)
{
    const chaos_settings *set = ch->set;
    char where[sizeof ch->db.where];
    snprintf(where, sizeof where, "%s", ch->db.where);
    cli_scrub(ch->c, where, sizeof where);
    printf("pgbank chaos: %s s, %d clients, %d accounts, %s operations, seed %llu, on %s "
           "(schema %s)\n",
           set->duration_arg, set->clients, set->accounts, set->unkeyed ? "unkeyed" : "keyed",
           (unsigned long long)set->seed, where, ch->schema.name);
    if (lab_interrupted())
        printf("  interrupted  the load stopped early; what was submitted was drained and "
               "checked\n");
    printf("  operations   %lld submitted in %.1f s (%lld/s): %lld acknowledged (%lld of "
           "them replays), %lld refused (insufficient funds)\n",
           (long long)ch->model.nops, (double)elapsed_ms(ch) / 1e3, (long long)ops_per_sec(ch),
           (long long)ch->model.ok, (long long)ch->model.replayed, (long long)ch->model.refused);
    if (set->unkeyed)
        printf("  on the way   %lld unknown outcomes, final (never re-sent without a key; "
               "the journal shows %lld applied), %lld database errors (nothing applied: "
               "sent again), %lld retries exhausted; %lld resubmissions\n",
               (long long)ch->model.unknown, (long long)ch->model.unknown_applied,
               (long long)db_errors(ch), (long long)exhausted(ch),
               (long long)ch->load.resubmitted);
    else
        printf("  on the way   %lld unknown outcomes in %lld operations (%lld resolved by "
               "their key), %lld database errors, %lld retries exhausted; %lld resubmissions "
               "with the same key\n",
               (long long)ch->model.unknown, (long long)ch->model.unknown_ops,
               (long long)ch->model.unknown_resolved,
               (long long)db_errors(ch), (long long)exhausted(ch),
               (long long)ch->load.resubmitted);
    printf("  faults       %lld: %lld backend terminations (%lld backends), %lld server "
           "crashes (down %.1f s in all); %lld failed to inject\n",
           (long long)(ch->faults.terminations + ch->faults.crashes),
           (long long)ch->faults.terminations, (long long)ch->faults.backends_killed,
           (long long)ch->faults.crashes, (double)ch->faults.downtime_ns / 1e9,
           (long long)ch->faults.failures);
    printf("  money        lost %lld, created %lld; negative balances %lld\n",
           (long long)ch->model.money_lost, (long long)ch->model.money_created,
           (long long)ch->model.negative);
    printf("  answers      %lld operations without a definite answer; %lld unexpected "
           "(conflict, no such account, invalid)\n",
           (long long)ch->model.without_result,
           (long long)(ch->model.conflicts + ch->model.no_account + ch->model.invalid));
    printf("  journal      %lld applied but not acknowledged, %lld acknowledged but not "
           "applied, %lld applied twice, %lld half-applied, %lld rows of no operation\n",
           (long long)ch->model.applied_not_acked, (long long)ch->model.acked_not_applied,
           (long long)ch->model.applied_twice, (long long)ch->model.torn,
           (long long)ch->model.stray_rows);
    printf("  audit        %s (%lld accounts, %lld mismatched, total %lld)\n",
           ch->audit_holds ? "holds" : "FAILS", (long long)ch->audit.accounts,
           (long long)ch->audit.mismatched, (long long)ch->audit.total_balance);
    printf("%s\n", chaos_failed(ch)
                       ? "FAILED: money or answers went wrong under faults (details above)"
                       : set->unkeyed
                             ? "ok: every operation answered, applied once when acknowledged, "
                               "never when refused or failed, at most once when unknown"
                             : "ok: every operation answered, applied exactly once when "
                               "acknowledged, nothing lost or created");
}

/* ------------------------------------------------------------------------
 * Options.
 * ------------------------------------------------------------------------ */

static int parse_faults(const cli *c, const char *s, int *out)
{
    *out = 0;
    if (strcmp(s, "none") == 0)
        return 0;
    const char *p = s;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 9 && strncmp(p, "terminate", 9) == 0)
            *out |= LAB_FAULT_TERMINATE;
        else if (n == 5 && strncmp(p, "crash", 5) == 0)
            *out |= LAB_FAULT_CRASH;
        else
            return cli_usage_error(c, "invalid --faults '%s': a comma-separated list of "
                                   "terminate and crash, or none", s);
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

static int parse_settings(cli *c, int argc, char **argv, chaos_settings *set)
{
    const char *clients = "16", *accounts = "10", *seed = NULL, *faults = NULL;
    const char *drain = "60";
    memset(set, 0, sizeof *set);
    set->duration_arg = "20";
    const cli_opt opts[] = {{"duration", &set->duration_arg, NULL},
                            {"clients", &clients, NULL},
                            {"accounts", &accounts, NULL},
                            {"seed", &seed, NULL},
                            {"faults", &faults, NULL},
                            {"drain-timeout", &drain, NULL},
                            {"keep", NULL, &set->keep},
                            {"unkeyed", NULL, &set->unkeyed},
                            {NULL, NULL, NULL}};
    int npos, rc = cli_parse(c, argc, argv, opts, NULL, 0, &npos);
    if (rc)
        return rc;
    if ((rc = cli_parse_seconds(c, "--duration", set->duration_arg, 86400, &set->duration_ns)) ||
        (rc = cli_parse_seconds(c, "--drain-timeout", drain, 3600, &set->drain_ns)) ||
        (rc = cli_parse_count(c, "--clients", clients, 1, MAX_CLIENTS, &set->clients)) ||
        (rc = cli_parse_count(c, "--accounts", accounts, 2, MAX_ACCOUNTS, &set->accounts)))
        return rc;
    if (seed) {
        int64_t v;
        if (pgbank_parse_int64(seed, &v) != 0 || v < 0)
            return cli_usage_error(c, "invalid --seed '%s': a whole number >= 0", seed);
        set->seed = (uint64_t)v;
    } else {
        set->seed = pgbank__rand_seed() & INT64_MAX;
    }
    set->faults = LAB_FAULT_TERMINATE | LAB_FAULT_CRASH;
    if (faults) {
        set->faults_given = 1;
        if ((rc = parse_faults(c, faults, &set->faults)) != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The command.
 * ------------------------------------------------------------------------ */

static void chaos_free(chaos *ch)
{
    lab_engine_close(&ch->load, &ch->eng);
    lab_faults_settle(&ch->faults);
    lab_schema_close(&ch->schema);
    lab_load_free(&ch->load);
    chaos_model_free(&ch->model);
    free(ch->clients);
    cli_db_close(ch->c, &ch->db);
}

static int run_chaos(cli *c, int argc, char **argv)
{
    chaos_settings set;
    int rc = parse_settings(c, argc, argv, &set);
    if (rc || (rc = cli_parsed(c)) != 0)
        return rc;
    chaos ch;
    memset(&ch, 0, sizeof ch);
    ch.c = c;
    ch.set = &set;
    ch.rng = set.seed;
    ch.tty = isatty(2);
    ch.clients = calloc((size_t)set.clients, sizeof *ch.clients);
    if (!ch.clients || lab_load_init(&ch.load, set.clients) != 0 ||
        chaos_model_init(&ch.model, set.accounts, set.unkeyed) != 0) {
        chaos_free(&ch);
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    }
    /* Ctrl-C (or SIGTERM) ends the load early: the run drains and is
     * checked as if its time were up, and its schema is dropped. */
    lab_signals_catch();
    if ((rc = chaos_setup(&ch)) == 0 && (rc = chaos_run(&ch)) == 0 &&
        (rc = chaos_check(&ch)) == 0) {
        if (c->json)
            print_json(&ch);
        else
            print_report(&ch);
        if (chaos_failed(&ch)) {
            if (ch.model.without_result && ch.last_transient[0])
                cli_error(c, 0, "last transient answer: %s", ch.last_transient);
            rc = CLI_EXIT_REFUSED;
        }
        if (ch.faults.failures)
            cli_error(c, 0, "%lld faults could not be injected (last: %s)",
                      (long long)ch.faults.failures, ch.faults.error);
        if (set.keep)
            fprintf(stderr, "pgbank chaos: schema %s kept (options=-csearch_path=%s)\n",
                    ch.schema.name, ch.schema.name);
    }
    chaos_free(&ch);
    lab_signals_restore();
    return rc;
}

const cli_command cli_cmd_chaos = {
    "chaos", "move money under injected faults and check that none is lost",
    "Usage: pgbank chaos [--duration S] [--clients C] [--accounts N] [--seed N]\n"
    "                    [--faults LIST] [--drain-timeout S] [--unkeyed] [--keep]\n"
    "                    [--json]\n"
    "\n"
    "A bank test in the spirit of Jepsen's.  C clients run keyed withdrawals,\n"
    "deposits and transfers (for-update, atomic and serializable, random\n"
    "amounts, random accounts among N fresh ones) for S seconds while faults\n"
    "are injected every 1-4 s:\n"
    "  terminate  the run's backends are killed (pg_terminate_backend)\n"
    "  crash      the private server is crash-stopped (SIGQUIT to the\n"
    "             postmaster, as 'pg_ctl stop -m immediate') and restarted;\n"
    "             only on the private server (its other clients see the\n"
    "             crash too)\n"
    "An operation that ends in 'unknown outcome' or 'database error' is\n"
    "resubmitted with the same idempotency key until it gets a definite\n"
    "answer: that is what exactly-once means for a client.  At the end the\n"
    "database is compared with what the clients were told: money lost or\n"
    "created, negative balances, operations never answered, journal rows of\n"
    "every key (applied once when acknowledged, never otherwise), the audit.\n"
    "The run has a schema of its own, pgbank_chaos_<n>, dropped at the end (one\n"
    "left by a run that was killed is dropped by the next lab run).  Ctrl-C\n"
    "(SIGINT) or SIGTERM ends the load early; the run is still drained, checked\n"
    "and reported (\"interrupted\": 1), and its schema dropped.\n"
    "\n"
    "Options:\n"
    "  --duration S       seconds of load and faults (default 20)\n"
    "  --clients C        concurrent clients, one connection each (default 16,\n"
    "                     1 to 256)\n"
    "  --accounts N       fresh accounts (default 10, 2 to 10000), each opened\n"
    "                     with 10000\n"
    "  --seed N           the operations' random choices (printed; fault times\n"
    "                     follow the clock, so a run is not replayed exactly)\n"
    "  --faults LIST      terminate,crash (default: both; crash only on the\n"
    "                     private server), or none\n"
    "  --drain-timeout S  after the deadline, how long unanswered operations\n"
    "                     may take to get an answer (default 60)\n"
    "  --unkeyed          operations without keys (the batch strategy, which\n"
    "                     takes none, joins in): an unknown outcome is then\n"
    "                     final (never re-sent: it may have been applied), a\n"
    "                     database error is sent again (nothing was applied);\n"
    "                     each operation moves a distinct amount, so the\n"
    "                     journal shows whether it was applied, and how often\n"
    "  --keep             keep the schema for inspection\n"
    "  --json             one object: {\"ops\", \"acknowledged\", \"refused\",\n"
    "                     \"unknown\", \"unknown_resolved\", \"unknown_ops\",\n"
    "                     \"retried\", \"faults\", \"faults_terminate\",\n"
    "                     \"faults_crash\", \"money_lost\", \"money_created\",\n"
    "                     \"negative_balances\", \"ops_without_result\",\n"
    "                     \"audit\", ...}\n"
    "\n"
    "Exit codes: 0 nothing lost, created or left unanswered, and the audit\n"
    "holds; 1 something went wrong (a pgbank bug: details in the report);\n"
    "2 bad usage, nothing was run; 3 database failure (setup, or a crashed\n"
    "server that could not be restarted).\n"
    "\n"
    "Examples:\n"
    "  pgbank chaos --duration 40\n"
    "  pgbank chaos --duration 10 --clients 32 --accounts 3 --json\n"
    "  pgbank --db postgresql://bank@db.example.com/bank chaos --faults terminate\n",
    run_chaos,
};
