/*
 * many_ops.c - many withdrawals in flight at once from one thread: each is
 * submitted with a completion callback, and the engine's built-in loop
 * (pgbank_engine_run()) carries them over a pool of connections.  Then it
 * checks that the money adds up.
 *
 *   cc -std=c11 many_ops.c $(pkg-config --cflags --libs pgbank)
 *   ./a.out CONNINFO [WITHDRAWALS [ACCOUNTS [BALANCE]]]   # "" or -: $DATABASE_URL
 *
 * By default 1000 atomic withdrawals of 1 are spread round-robin over 4 new
 * accounts holding 200 each: 250 tries per account, so exactly 200 succeed
 * and 50 are refused on each, and every account ends at 0.
 */
#include <pgbank.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What happened to one account's withdrawals, filled in by the callback. */
typedef struct tally {
    int64_t id;
    int64_t opening;
    int64_t tries;
    int64_t ok;
    int64_t refused; /* insufficient funds */
    int64_t failed;  /* anything else */
    int64_t final;
} tally;

static void on_withdrawn(pgbank_op *op)
{
    tally *t = (tally *)op->user_data;
    switch (op->result.status) {
    case PGBANK_OK:
        t->ok++;
        break;
    case PGBANK_INSUFFICIENT_FUNDS:
        t->refused++;
        break;
    default:
        if (t->failed++ == 0)
            fprintf(stderr, "many_ops: account %lld: %s %s\n", (long long)t->id,
                    pgbank_status_name(op->result.status), op->result.message);
        break;
    }
}

static void on_done(pgbank_op *op) { (void)op; }

static int parse_arg(int argc, char **argv, int i, int64_t def, int64_t *out)
{
    *out = def;
    if (argc <= i)
        return 0;
    if (pgbank_parse_int64(argv[i], out) != 0 || *out < 1 || *out > 10000000) {
        fprintf(stderr, "many_ops: invalid number '%s'\n", argv[i]);
        return -1;
    }
    return 0;
}

/* Submits n operations and runs the loop until all have completed. */
static int run_all(pgbank_engine *eng, pgbank_op *ops, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int rc = pgbank_submit(eng, &ops[i]);
        if (rc < 0) {
            fprintf(stderr, "many_ops: submit: %s\n", pgbank_strerror(rc));
            return -1;
        }
    }
    int rc = pgbank_engine_run(eng, 120000);
    if (rc < 0) {
        fprintf(stderr, "many_ops: run: %s %s\n", pgbank_strerror(rc),
                pgbank_engine_error(eng));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int64_t n, naccounts, balance;
    if (argc < 2 || argc > 5) {
        fputs("usage: many_ops CONNINFO [WITHDRAWALS [ACCOUNTS [BALANCE]]]\n", stderr);
        return 2;
    }
    if (parse_arg(argc, argv, 2, 1000, &n) || parse_arg(argc, argv, 3, 4, &naccounts) ||
        parse_arg(argc, argv, 4, 200, &balance))
        return 2;

    pgbank_options opt;
    pgbank_options_init(&opt);
    opt.conninfo = argv[1][0] && strcmp(argv[1], "-") != 0 ? argv[1] : getenv("DATABASE_URL");
    opt.connections = 4;
    opt.pipeline_depth = 16; /* single-statement operations share connections */
    char err[256];
    pgbank_engine *eng;
    if (pgbank_engine_new(&eng, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "many_ops: %s\n", err);
        return 2;
    }

    /* Operations are caller-owned and must stay put until their callback:
     * one array for the run. */
    int code = 3;
    tally *t = calloc((size_t)naccounts, sizeof *t);
    pgbank_op *ops = calloc((size_t)(n > naccounts ? n : naccounts), sizeof *ops);
    if (!t || !ops) {
        fputs("many_ops: out of memory\n", stderr);
        goto out;
    }

    /* 1. Open the accounts, all at once. */
    for (int64_t a = 0; a < naccounts; a++) {
        pgbank_op_init(&ops[a], PGBANK_OP_OPEN);
        ops[a].amount = balance;
        ops[a].done = on_done;
    }
    if (run_all(eng, ops, naccounts) < 0)
        goto out;
    for (int64_t a = 0; a < naccounts; a++) {
        if (ops[a].result.status != PGBANK_OK) {
            fprintf(stderr, "many_ops: could not open an account: %s %s\n",
                    pgbank_status_name(ops[a].result.status), ops[a].result.message);
            goto out;
        }
        t[a].id = ops[a].result.account;
        t[a].opening = balance;
    }
    printf("opened %lld accounts holding %lld each\n", (long long)naccounts,
           (long long)balance);

    /* 2. Every withdrawal in flight at once; callbacks keep the count. */
    for (int64_t i = 0; i < n; i++) {
        tally *ta = &t[i % naccounts];
        pgbank_op_init(&ops[i], PGBANK_OP_WITHDRAW);
        ops[i].strategy = PGBANK_ATOMIC;
        ops[i].account = ta->id;
        ops[i].amount = 1;
        ops[i].done = on_withdrawn;
        ops[i].user_data = ta;
        ta->tries++;
    }
    if (run_all(eng, ops, n) < 0)
        goto out;
    printf("%lld withdrawals of 1 submitted at once, run over %d connections\n",
           (long long)n, opt.connections);

    /* 3. Read the balances back and check that the money adds up. */
    for (int64_t a = 0; a < naccounts; a++) {
        pgbank_op_init(&ops[a], PGBANK_OP_BALANCE);
        ops[a].account = t[a].id;
        ops[a].done = on_done;
    }
    if (run_all(eng, ops, naccounts) < 0)
        goto out;
    int64_t opened = 0, left = 0, ok = 0, refused = 0, failed = 0;
    int adds_up = 1;
    for (int64_t a = 0; a < naccounts; a++) {
        if (ops[a].result.status != PGBANK_OK) {
            fprintf(stderr, "many_ops: balance of %lld: %s\n", (long long)t[a].id,
                    pgbank_status_name(ops[a].result.status));
            goto out;
        }
        tally *ta = &t[a];
        ta->final = ops[a].result.balance;
        int64_t expect_ok = ta->tries < ta->opening ? ta->tries : ta->opening;
        int good = ta->final == ta->opening - ta->ok && ta->ok == expect_ok &&
                   ta->ok + ta->refused + ta->failed == ta->tries;
        adds_up &= good;
        printf("account %lld: %lld - %lld withdrawn = %lld (%lld refused: insufficient "
               "funds)%s\n",
               (long long)ta->id, (long long)ta->opening, (long long)ta->ok,
               (long long)ta->final, (long long)ta->refused, good ? "" : "  WRONG");
        opened += ta->opening;
        left += ta->final;
        ok += ta->ok;
        refused += ta->refused;
        failed += ta->failed;
    }
    if (failed) {
        printf("%lld withdrawals failed\n", (long long)failed);
        goto out;
    }
    if (!adds_up || opened - ok != left) {
        printf("the balances do NOT add up: %lld opened, %lld withdrawn, %lld left\n",
               (long long)opened, (long long)ok, (long long)left);
        code = 1;
        goto out;
    }
    printf("%lld withdrawn, %lld refused; the balances add up: %lld - %lld = %lld\n",
           (long long)ok, (long long)refused, (long long)opened, (long long)ok,
           (long long)left);
    code = 0;
out:
    pgbank_engine_free(eng);
    free(ops);
    free(t);
    return code;
}
