/*
 * fuzz.h - what every fuzz target shares: the libFuzzer entry point (also
 * called by replay.c's main() where libFuzzer is not available), a
 * NUL-terminated copy of the input, quiet stdout/stderr, and a failure
 * report that aborts (libFuzzer and the replay driver call it a crash).
 */
#ifndef PGBANK_FUZZ_H
#define PGBANK_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs one input and returns 0, or aborts through fuzz_fail(). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string (malloc'd; free it), cut at its first NUL. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The parsers print their complaints, and thousands of inputs a second
 * need not.  glibc lets a program point stdout and stderr elsewhere;
 * sanitizer reports and fuzz_fail() write to fd 2 itself, and libFuzzer
 * keeps the stream it captured at start.  FUZZ_VERBOSE=1 keeps the output. */
static inline void fuzz_quiet(void)
{
#ifdef __GLIBC__
    static int done;
    if (done)
        return;
    done = 1;
    if (getenv("FUZZ_VERBOSE"))
        return;
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        stdout = null;
        stderr = null;
    }
#endif
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static inline void fuzz_fail(const char *fmt, ...)
{
    static const char head[] = "check failed: ";
    char msg[4096];
    memcpy(msg, head, sizeof head - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg + sizeof head - 1, sizeof msg - sizeof head, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    n += (int)sizeof head - 1;
    if ((size_t)n > sizeof msg - 2)
        n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    if (write(2, msg, (size_t)n) < 0) {
        /* nothing more to say */
    }
    abort();
}

#endif
