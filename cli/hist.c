/*
 * hist.c - the log-linear latency histogram (see hist.h).
 *
 * Index of a value v (µs), with P = CLI_HIST_PRECISION and H = 2^(P-1):
 *   v < 2H:  v itself (exact buckets 0 .. 2H-1)
 *   else:    b = the position of v's top bit (b >= P), shift = b - (P-1),
 *            mantissa = v >> shift in [H, 2H),
 *            index = (b - P + 2) * H + (mantissa - H)
 * so buckets are contiguous: 2H maps to 2H, and each power of two adds H.
 */
#include "hist.h"

#include <string.h>

#define HALF (1u << (CLI_HIST_PRECISION - 1))
#define MAX_VALUE ((UINT64_C(1) << CLI_HIST_MAX_BITS) - 1)

static int top_bit(uint64_t v)
{
#if defined(__GNUC__)
    return 63 - __builtin_clzll(v);
#else
    int b = 0;
    while (v >>= 1)
        b++;
    return b;
#endif
}

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * HALF)
        return (unsigned)v;
    if (v > MAX_VALUE)
        v = MAX_VALUE;
    int b = top_bit(v);
    int shift = b - (CLI_HIST_PRECISION - 1);
    unsigned mantissa = (unsigned)(v >> shift);
    return (unsigned)(b - CLI_HIST_PRECISION + 2) * HALF + (mantissa - HALF);
}

/* The highest value bucket i holds. */
static uint64_t bucket_top(unsigned i)
{
    if (i < 2 * HALF)
        return i;
    unsigned group = i / HALF; /* b - P + 2 */
    int b = (int)group + CLI_HIST_PRECISION - 2;
    int shift = b - (CLI_HIST_PRECISION - 1);
    uint64_t mantissa = HALF + i % HALF;
    return ((mantissa + 1) << shift) - 1;
}

void cli_hist_reset(cli_hist *h)
{
    memset(h, 0, sizeof *h);
}

void cli_hist_record(cli_hist *h, uint64_t us)
{
    h->buckets[bucket_of(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

void cli_hist_merge(cli_hist *dst, const cli_hist *src)
{
    for (unsigned i = 0; i < CLI_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t cli_hist_percentile(const cli_hist *h, double pct)
{
    if (h->count == 0)
        return 0;
    double want = pct / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < CLI_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}

double cli_hist_percentile_ms(const cli_hist *h, double pct)
{
    return (double)cli_hist_percentile(h, pct) / 1000.0;
}

double cli_hist_mean_ms(const cli_hist *h)
{
    return h->count ? (double)h->sum_us / (double)h->count / 1000.0 : 0.0;
}
