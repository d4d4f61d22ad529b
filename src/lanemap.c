/*
 * lanemap.c - which lane an account belongs to: the one place that knows
 * how accounts are spread (docs/LANES.md).  On one PostgreSQL a hash of the
 * id spreads them evenly; on Citus a lane is a set of whole shards, found
 * with PostgreSQL's own hash of a bigint against the shard map the engine
 * read from pg_dist_shard, so every batch of one shard can run on the
 * worker holding it.
 */
#include "engine.h"

#include <stdint.h>

/* PostgreSQL's hash_uint32() (Bob Jenkins's lookup3, common/hashfn.c). */
static uint32_t rot32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

int32_t pgbank__hash_int8(int64_t v)
{
    /* hashint8(): the high half folded into the low one, so that a value
     * that fits in int4 hashes as hashint4 does. */
    uint32_t lo = (uint32_t)(uint64_t)v, hi = (uint32_t)((uint64_t)v >> 32);
    lo ^= v >= 0 ? hi : ~hi;
    uint32_t a, b, c;
    a = b = c = 0x9e3779b9u + (uint32_t)sizeof(uint32_t) + 3923095u;
    a += lo;
    c ^= b; c -= rot32(b, 14);
    a ^= c; a -= rot32(c, 11);
    b ^= a; b -= rot32(a, 25);
    c ^= b; c -= rot32(b, 16);
    a ^= c; a -= rot32(c, 4);
    b ^= a; b -= rot32(a, 14);
    c ^= b; c -= rot32(b, 24);
    return (int32_t)c;
}

int pgbank__shard_of(const pgbank_engine *eng, int64_t account)
{
    if (eng->nshards == 0)
        return 0;
    int32_t h = pgbank__hash_int8(account);
    int lo = 0, hi = eng->nshards - 1; /* the last shard starting at or below h */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (eng->shard_min[mid] <= h)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

int pgbank__lane_of(const pgbank_engine *eng, int64_t account)
{
    /* Citus: a lane is a set of whole shards, so that every batch of one
     * shard can be sent to the worker holding it (lane_send). */
    if (eng->nshards)
        return pgbank__shard_of(eng, account) % eng->nlanes;
    /* Fibonacci hashing: consecutive ids spread evenly over the lanes. */
    uint64_t h = (uint64_t)account * UINT64_C(0x9E3779B97F4A7C15);
    return (int)((h >> 32) % (uint64_t)eng->nlanes);
}
