/*
 * conninfo_edit.c - a connection string with one parameter set or removed,
 * or a schema added to its options: the string is parsed by libpq (after
 * pgbank_conninfo_normalize()) and rebuilt as key='value' pairs, so every
 * other parameter, the password included, passes through unchanged.
 */
#include "internal.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

/* key='value' in libpq's key=value syntax: ' and \ escaped by a \. */
static void sb_param(pgbank__buf *b, const char *key, const char *a, const char *sep, const char *c)
{
    if (b->len)
        pgbank__buf_put(b, " ", 1);
    pgbank__buf_put(b, key, strlen(key));
    pgbank__buf_put(b, "='", 2);
    const char *parts[3] = {a, sep, c};
    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i]; p && *p; p++) {
            if (*p == '\'' || *p == '\\')
                pgbank__buf_put(b, "\\", 1);
            pgbank__buf_put(b, p, 1);
        }
    }
    pgbank__buf_put(b, "'", 1);
}

/* The string rebuilt as key=value with `keyword` set to value (removed when
 * value is NULL).  append: value goes after the keyword's current value
 * (for "options" with no value in the string, after $PGOPTIONS, which an
 * explicit options would otherwise hide), separated by a space. */
static char *edit(const char *conninfo, const char *keyword, const char *value, int append,
                  char *err, size_t errlen)
{
    if (!keyword || !*keyword) {
        pgbank__fail(PGBANK_EINVAL, err, errlen, "no connection keyword given");
        return NULL;
    }
    char *norm = pgbank_conninfo_normalize(conninfo ? conninfo : "", err, errlen);
    if (!norm)
        return NULL;
    /* normalize() has just parsed it: a failure now can only be memory. */
    PQconninfoOption *opts = PQconninfoParse(norm, NULL);
    free(norm);
    if (!opts) {
        pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    pgbank__buf b = {0};
    const char *old = NULL;
    int known = 0;
    pgbank__buf_put(&b, "", 0);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, keyword) == 0) {
            known = 1;
            old = o->val;
            continue;
        }
        if (o->val)
            sb_param(&b, o->keyword, o->val, NULL, NULL);
    }
    if (append && !old && strcmp(keyword, "options") == 0)
        old = getenv("PGOPTIONS");
    if (append && old && !*old)
        old = NULL;
    if (known && value)
        sb_param(&b, keyword, append ? old : NULL, append && old ? " " : NULL, value);
    PQconninfoFree(opts);
    if (!known) {
        free(b.s);
        pgbank__fail(PGBANK_EINVAL, err, errlen,
                     "\"%.64s\" is not a connection keyword libpq knows", keyword);
        return NULL;
    }
    if (b.nomem) {
        free(b.s);
        pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    return b.s;
}

PGBANK__API char *pgbank_conninfo_set(const char *conninfo, const char *keyword,
                                      const char *value, char *err, size_t errlen)
{
    return edit(conninfo, keyword, value, 0, err, errlen);
}

PGBANK__API char *pgbank_conninfo_with_schema(const char *conninfo, const char *schema,
                                              char *err, size_t errlen)
{
    /* Only names that need no quoting, inside `options` or in SQL. */
    size_t n = schema ? strlen(schema) : 0;
    int ok = n > 0 && n <= 63 && !(schema[0] >= '0' && schema[0] <= '9');
    for (size_t i = 0; ok && i < n; i++)
        ok = (schema[i] >= 'a' && schema[i] <= 'z') || (schema[i] >= '0' && schema[i] <= '9') ||
             schema[i] == '_';
    if (!ok) {
        pgbank__fail(PGBANK_EINVAL, err, errlen,
                     "invalid schema name: 1 to 63 of a-z, 0-9 and _, not starting with a digit");
        return NULL;
    }
    char opt[96];
    snprintf(opt, sizeof opt, "-csearch_path=%s", schema);
    return edit(conninfo, "options", opt, 1, err, errlen);
}
