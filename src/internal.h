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
/* A blocking libpq connection for the administrative parts (init, audit,
 * history): *ci receives the normalised connection string (free() it, also
 * on failure).  NULL on failure, with *rc set and a password-free reason in
 * err. */
struct pg_conn;
struct pg_conn *pgbank__connect_blocking(const char *conninfo, char **ci, char *err,
                                         size_t errlen, int *rc);

#endif

/* Monotonic clock in nanoseconds. */
int64_t pgbank__now_ns(void);

/* Copies src into dst (size n > 0), always NUL-terminated, truncating. */
void pgbank__strlcpy(char *dst, const char *src, size_t n);

/* snprintf into err (when err && errlen), returns `code`. */
int pgbank__fail(int code, char *err, size_t errlen, const char *fmt, ...)
    PGBANK__PRINTF(4, 5);

/* A blocking libpq connection for the administrative parts (init, audit,
 * history): *ci receives the normalised connection string (free() it, also
 * on failure).  NULL on failure, with *rc set and a password-free reason in
 * err. */
struct pg_conn;
struct pg_conn *pgbank__connect_blocking(const char *conninfo, char **ci, char *err,
                                         size_t errlen, int *rc);

#endif
