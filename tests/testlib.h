/*
 * testlib.h - the tests' tiny harness: CHECK macros that count failures and
 * a RUN macro that prints one line per scenario ("name... ok").
 * Database tests get their database from test_conninfo(): the throwaway
 * server in PGBANK_DATA_DIR, which CTest's "db" fixture starts before them
 * and removes after them, or the database named by PGBANK_TEST_DATABASE_URL
 * (tests/with_server.sh decides which).
 */
#ifndef PGBANK_TESTLIB_H
#define PGBANK_TESTLIB_H

#include "pgbank.h"

#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                   \
            t_failures++;                                                     \
        }                                                                     \
    } while (0)

#define CHECK_I64(got, want)                                                  \
    do {                                                                      \
        int64_t g_ = (int64_t)(got), w_ = (int64_t)(want);                    \
        if (g_ != w_) {                                                       \
            fprintf(stderr, "%s:%d: %s is %" PRId64 ", expected %" PRId64    \
                    "\n", __FILE__, __LINE__, #got, g_, w_);                  \
            t_failures++;                                                     \
        }                                                                     \
    } while (0)

#define CHECK_STR(got, want)                                                  \
    do {                                                                      \
        const char *g_ = (got), *w_ = (want);                                 \
        if (!g_ || strcmp(g_, w_) != 0) {                                     \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n",         \
                    __FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_);        \
            t_failures++;                                                     \
        }                                                                     \
    } while (0)

#define CHECK_STATUS(op, want)                                                \
    do {                                                                      \
        if ((op)->result.status != (want)) {                                  \
            fprintf(stderr, "%s:%d: status is \"%s\" (%s), expected \"%s\"\n", \
                    __FILE__, __LINE__,                                       \
                    pgbank_status_name((op)->result.status),                  \
                    (op)->result.message, pgbank_status_name(want));          \
            t_failures++;                                                     \
        }                                                                     \
    } while (0)

/* Runs one scenario and prints "name... ok" or "name... FAILED". */
#define RUN(fn)                                                               \
    do {                                                                      \
        int before_ = t_failures;                                             \
        fn();                                                                 \
        printf("%s... %s\n", #fn, t_failures == before_ ? "ok" : "FAILED");   \
        fflush(stdout);                                                       \
    } while (0)

#define TEST_EXIT() return t_failures ? 1 : 0

/* SQL that distributes a table the test made itself (a seed table, say) by
 * a column, as its owner would on a Citus coordinator; elsewhere it does
 * nothing.  Both arguments are literals in the SQL text. */
#define TEST_DISTRIBUTE_IF_CITUS(table, column)                                            \
    "DO $d$BEGIN IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN"     \
    " PERFORM create_distributed_table('" table "', '" column "'); END IF; END$d$"

/* The database named from outside as key=value pairs, so that a test may
 * append its own ("%s options='-csearch_path=x'", "%s user=y": a later
 * keyword wins).  Exits 2 on a malformed string. */
static inline void test_conninfo_pairs(const char *url, char *buf, size_t len)
{
    char err[256], *msg = NULL;
    char *norm = pgbank_conninfo_normalize(url, err, sizeof err);
    PQconninfoOption *opts = norm ? PQconninfoParse(norm, &msg) : NULL;
    if (!opts) {
        fprintf(stderr, "PGBANK_TEST_DATABASE_URL is not a connection string: %s\n",
                norm ? (msg ? msg : "out of memory") : err);
        exit(2);
    }
    size_t o = 0;
    buf[0] = '\0';
    for (PQconninfoOption *p = opts; p->keyword; p++) {
        if (!p->val)
            continue;
        o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s='", o ? " " : "", p->keyword);
        for (const char *c = p->val; *c; c++)
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%c",
                                  *c == '\'' || *c == '\\' ? "\\" : "", *c);
        o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "'");
    }
    PQconninfoFree(opts);
    pgbank_free(norm);
    if (o >= len) {
        fprintf(stderr, "PGBANK_TEST_DATABASE_URL is too long\n");
        exit(2);
    }
}

/* The tests' database's connection string (static buffer): the database
 * named by PGBANK_TEST_DATABASE_URL, else the throwaway server's. */
static inline const char *test_conninfo(void)
{
    static char buf[1024];
    const char *url = getenv("PGBANK_TEST_DATABASE_URL");
    if (url && *url) {
        test_conninfo_pairs(url, buf, sizeof buf);
        return buf;
    }
    const char *dir = getenv("PGBANK_DATA_DIR");
    if (!dir || pgbank_server_conninfo(dir, buf, sizeof buf) != 0) {
        fprintf(stderr, "PGBANK_DATA_DIR does not name a private server\n");
        exit(2);
    }
    return buf;
}

/* 1 when the database behind conninfo is a Citus coordinator (the citus
 * extension is installed), 0 otherwise; exits 2 when it cannot be asked.
 * Only where Citus means something else on purpose (docs/SCALING.md says
 * what) does a test expect something else there. */
static inline int test_is_citus(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);
    PGresult *r = PQexec(pg, "SELECT count(*) FROM pg_extension WHERE extname = 'citus'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cannot ask the tests' database for Citus: %s", PQerrorMessage(pg));
        exit(2);
    }
    int yes = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    PQclear(r);
    PQfinish(pg);
    return yes;
}

/* --- helpers for the engine tests ------------------------------------------ */

/* An engine with the default options but `connections`; exits on error. */
static inline pgbank_engine *test_engine_opts(const pgbank_options *o)
{
    pgbank_engine *eng = NULL;
    char err[256];
    if (pgbank_engine_new(&eng, o, err, sizeof err) != 0) {
        fprintf(stderr, "engine: %s\n", err);
        exit(1);
    }
    return eng;
}

static inline pgbank_engine *test_engine(const char *conninfo, int connections)
{
    pgbank_options o;
    pgbank_options_init(&o);
    o.conninfo = conninfo;
    o.connections = connections;
    return test_engine_opts(&o);
}

/* One operation, blocking. */
static inline pgbank_op test_run(pgbank_engine *eng, pgbank_op_kind kind, pgbank_strategy s,
                                 int64_t account, int64_t to, int64_t amount, const char *key)
{
    pgbank_op op;
    pgbank_op_init(&op, kind);
    op.strategy = s;
    op.account = account;
    op.to_account = to;
    op.amount = amount;
    op.key = key;
    CHECK(pgbank_execute(eng, &op) == 0);
    return op;
}

static inline int64_t test_open(pgbank_engine *eng, int64_t balance)
{
    pgbank_op op = test_run(eng, PGBANK_OP_OPEN, PGBANK_ATOMIC, 0, 0, balance, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    return op.result.account;
}

static inline int64_t test_balance(pgbank_engine *eng, int64_t id)
{
    pgbank_op op = test_run(eng, PGBANK_OP_BALANCE, PGBANK_ATOMIC, id, 0, 0, NULL);
    CHECK_STATUS(&op, PGBANK_OK);
    return op.result.balance;
}

/* Outcomes of many asynchronous operations: set op->user_data to a tally
 * and op->done to tally_done. */
typedef struct {
    int ok, refused, other;
    int64_t paid;
} tally;

static inline void tally_done(pgbank_op *op)
{
    tally *t = op->user_data;
    if (op->result.status == PGBANK_OK) {
        t->ok++;
        t->paid += op->amount;
    } else if (op->result.status == PGBANK_INSUFFICIENT_FUNDS) {
        t->refused++;
    } else {
        fprintf(stderr, "  unexpected: %s (%s %s)\n", pgbank_status_name(op->result.status),
                op->result.sqlstate, op->result.message);
        t->other++;
    }
}

#endif
