/*
 * result.c - result codes, error codes, strategy names and the strict number
 * parser: the small tables every other part and the CLI share.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

PGBANK__API const char *pgbank_version(void) { return PGBANK_VERSION; }

PGBANK__API const char *pgbank_strerror(int err)
{
    switch (err) {
#define PGBANK__ERRNO_MSG(name, val, msg) case val: return msg;
        PGBANK_ERRNO_MAP(PGBANK__ERRNO_MSG)
#undef PGBANK__ERRNO_MSG
    default: return "unknown error";
    }
}

PGBANK__API const char *pgbank_err_name(int err)
{
    switch (err) {
#define PGBANK__ERRNO_NAME(name, val, msg) case val: return #name;
        PGBANK_ERRNO_MAP(PGBANK__ERRNO_NAME)
#undef PGBANK__ERRNO_NAME
    default: return "UNKNOWN";
    }
}

static const char *const status_names[] = {
#define PGBANK__STATUS_TEXT(name, text) text,
    PGBANK_STATUS_MAP(PGBANK__STATUS_TEXT)
#undef PGBANK__STATUS_TEXT
};

PGBANK__API const char *pgbank_status_name(pgbank_status s)
{
    if ((int)s < 0 || s >= PGBANK__STATUS_COUNT)
        return "?";
    return status_names[s];
}

static const struct {
    const char *name;
    int safe;
} strategies[PGBANK_STRATEGY_COUNT] = {
    [PGBANK_EXPLICIT] = {"explicit", 0},
    [PGBANK_BEGIN] = {"begin", 0},
    [PGBANK_FOR_UPDATE] = {"for-update", 1},
    [PGBANK_ATOMIC] = {"atomic", 1},
    [PGBANK_SERIALIZABLE] = {"serializable", 1},
    [PGBANK_BATCH] = {"batch", 1},
};

PGBANK__API const char *pgbank_strategy_name(pgbank_strategy s)
{
    if ((int)s < 0 || (int)s >= PGBANK_STRATEGY_COUNT)
        return NULL;
    return strategies[s].name;
}

PGBANK__API int pgbank_strategy_parse(const char *name, pgbank_strategy *out)
{
    if (!name)
        return PGBANK_EINVAL;
    for (int i = 0; i < PGBANK_STRATEGY_COUNT; i++) {
        if (strcmp(name, strategies[i].name) == 0) {
            *out = (pgbank_strategy)i;
            return 0;
        }
    }
    return PGBANK_EINVAL;
}

PGBANK__API int pgbank_strategy_is_safe(pgbank_strategy s)
{
    if ((int)s < 0 || (int)s >= PGBANK_STRATEGY_COUNT)
        return 0;
    return strategies[s].safe;
}

PGBANK__API int pgbank_parse_int64(const char *s, int64_t *out)
{
    if (!s || !out)
        return PGBANK_EINVAL;
    const char *p = s;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p < '0' || *p > '9')
        return PGBANK_EINVAL;
    /* Accumulate as a negative number so INT64_MIN parses too. */
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return PGBANK_EINVAL;
        int d = *p - '0';
        if (v < (INT64_MIN + d) / 10)
            return PGBANK_EINVAL;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return PGBANK_EINVAL;
        v = -v;
    }
    *out = v;
    return 0;
}
