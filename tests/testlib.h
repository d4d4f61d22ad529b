/*
 * testlib.h - the tests' tiny harness: CHECK macros that count failures and
 * a RUN macro that prints one line per scenario ("name... ok").
 * Database tests get the throwaway server from PGBANK_DATA_DIR, which CTest's
 * "db" fixture starts before them and removes after them.
 */
#ifndef PGBANK_TESTLIB_H
#define PGBANK_TESTLIB_H

#include "pgbank.h"

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

/* The throwaway server's connection string (static buffer). */
static inline const char *test_conninfo(void)
{
    static char buf[1024];
    const char *dir = getenv("PGBANK_DATA_DIR");
    if (!dir || pgbank_server_conninfo(dir, buf, sizeof buf) != 0) {
        fprintf(stderr, "PGBANK_DATA_DIR does not name a private server\n");
        exit(2);
    }
    return buf;
}

#endif
