/*
 * hist.h - a latency histogram for `pgbank bench`: log-linear buckets in
 * the manner of HdrHistogram, microsecond resolution, fixed size, no
 * allocation.  Values below 128 µs are exact; above, every power of two is
 * split into 64 buckets, so a reported percentile is within 1/64 (1.6%)
 * of the true value.  Recording is a few instructions (one clz), so the
 * benchmark can record every operation without skewing the client CPU it
 * reports.
 */
#ifndef PGBANK_CLI_HIST_H
#define PGBANK_CLI_HIST_H

#include <stdint.h>

/* Sub-buckets per power of two: 2^(HIST_PRECISION - 1). */
#define CLI_HIST_PRECISION 7
/* Up to 2^36 µs (19 hours); larger values land in the last bucket. */
#define CLI_HIST_MAX_BITS 36
#define CLI_HIST_BUCKETS                                                      \
    ((CLI_HIST_MAX_BITS - CLI_HIST_PRECISION + 2) << (CLI_HIST_PRECISION - 1))

typedef struct cli_hist {
    uint64_t count;     /* values recorded */
    uint64_t max_us;    /* the largest, exactly */
    uint64_t sum_us;    /* for the mean */
    uint64_t buckets[CLI_HIST_BUCKETS];
} cli_hist;

/* Empties *h (a zeroed cli_hist is empty too). */
void cli_hist_reset(cli_hist *h);

/* Records one value, in microseconds. */
void cli_hist_record(cli_hist *h, uint64_t us);

/* Adds every value of src to dst. */
void cli_hist_merge(cli_hist *dst, const cli_hist *src);

/* The value at percentile pct (0 < pct <= 100; nearest rank), in µs: the
 * highest value its bucket holds (never above the recorded maximum).  0 for
 * an empty histogram. */
uint64_t cli_hist_percentile(const cli_hist *h, double pct);

/* The same in milliseconds, for reports. */
double cli_hist_percentile_ms(const cli_hist *h, double pct);

/* The mean in milliseconds (0 when empty). */
double cli_hist_mean_ms(const cli_hist *h);

#endif
