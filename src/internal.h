/*
 * internal.h - helpers shared by the library's parts; not installed.
 * Internal non-static functions carry the double prefix pgbank__.
 */
#ifndef PGBANK_INTERNAL_H
#define PGBANK_INTERNAL_H

#include "pgbank.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define PGBANK__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define PGBANK__API __attribute__((visibility("default")))
#else
#define PGBANK__PRINTF(a, b)
#define PGBANK__API
#endif

/* util.c: the one clock, sleep and random generator of the project (the
 * command line's lab uses them too). */
/* Monotonic clock in nanoseconds. */
int64_t pgbank__now_ns(void);
/* Sleeps ms milliseconds (through signals). */
void pgbank__sleep_ms(int ms);
/* A seed that differs between calls and processes. */
uint64_t pgbank__rand_seed(void);
/* splitmix64: the next 64 random bits of *state. */
uint64_t pgbank__rand_next(uint64_t *state);
/* Uniform in [0, 1). */
double pgbank__rand_unit(uint64_t *state);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t pgbank__rand_below(uint64_t *state, uint64_t n);

/* Copies src into dst (size n > 0), always NUL-terminated, truncating. */
void pgbank__strlcpy(char *dst, const char *src, size_t n);

/* A growing NUL-terminated string (start it zeroed; free s); nomem is set
 * once an allocation failed, and every later append is then ignored. */
typedef struct pgbank__buf {
    char *s;
    size_t len, cap;
    int nomem;
} pgbank__buf;
/* Appends n bytes of p. */
void pgbank__buf_put(pgbank__buf *b, const char *p, size_t n);

/* snprintf into err (when err && errlen), returns `code`. */
int pgbank__fail(int code, char *err, size_t errlen, const char *fmt, ...)
    PGBANK__PRINTF(4, 5);

/* conninfo.c: a connection string's secrets (and $PGPASSWORD's), found once
 * so that scrubbing a message later allocates nothing.  NULL when out of
 * memory: scrubbing with NULL withholds the whole message. */
struct pgbank__scrubber;
struct pgbank__scrubber *pgbank__scrubber_new(const char *conninfo);
void pgbank__scrubber_free(struct pgbank__scrubber *s);
/* Replaces every secret in msg by "****". */
void pgbank__scrubber_apply(const struct pgbank__scrubber *s, char *msg, size_t msgsize);

/* A blocking libpq connection for the administrative parts (init, audit,
 * history): *ci receives the normalised connection string (free() it, also
 * on failure).  NULL on failure, with *rc set and a password-free reason in
 * err. */
struct pg_conn;
struct pg_conn *pgbank__connect_blocking(const char *conninfo, char **ci, char *err,
                                         size_t errlen, int *rc);

#endif
