/*
 * util.c - the small helpers every part shares, defined once: the clock,
 * sleeping, a random generator, bounded string copies and error messages.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t pgbank__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pgbank__buf_put(pgbank__buf *b, const char *p, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->nomem = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void pgbank__strlcpy(char *dst, const char *src, size_t n)
{
    if (n == 0)
        return;
    size_t len = src ? strlen(src) : 0;
    if (len >= n)
        len = n - 1;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

int pgbank__fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void pgbank__sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t pgbank__rand_seed(void)
{
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return s ^ (++counter * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)pgbank__now_ns() << 17);
}

/* splitmix64 (Steele, Lea and Flood 2014): any state, zero included, gives
 * a full-period, well-mixed sequence; one add and three multiply-xorshifts. */
uint64_t pgbank__rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double pgbank__rand_unit(uint64_t *state)
{
    return (double)(pgbank__rand_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t pgbank__rand_below(uint64_t *state, uint64_t n)
{
    /* Lemire's multiply-shift: no division, bias below 2^-64 * n. */
    return n ? (uint64_t)(((unsigned __int128)pgbank__rand_next(state) * n) >> 64) : 0;
}
