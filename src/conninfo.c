/*
 * conninfo.c - connection strings: the seed's SQLAlchemy URL made usable by
 * libpq, and the password kept out of everything pgbank shows.
 *
 * The password is found two ways, on purpose.  libpq's own parser says what
 * the password is when the string is well formed.  A deliberately generous
 * scanner (mark_secrets) marks every byte that might belong to a password,
 * even in a malformed string where libpq's answer is wrong or missing.
 * Displays and error messages are built only from text with those bytes
 * masked: libpq's parse errors quote the input, so a typo next to a
 * password would otherwise print it.
 */
#include "internal.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MASK "****"

static const char *skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* Length of the URI scheme at s ("postgresql+asyncpg" in
 * "postgresql+asyncpg://..."), or 0 when s does not start with one. */
static size_t scheme_len(const char *s)
{
    size_t n = 0;
    if (!isalpha((unsigned char)s[0]))
        return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' ||
           s[n] == '.')
        n++;
    return strncmp(s + n, "://", 3) == 0 ? n : 0;
}

static int is_uri(const char *s) { return scheme_len(skip_space(s)) > 0; }

/* libpq's connection keywords (PostgreSQL 17), and "ssl", which URIs also
 * accept.  Only these end a password value early: in "password=ab cd=x"
 * the "cd=x" is taken as more password, since it cannot be an option.  A
 * keyword a newer libpq adds is merely masked along with the password. */
static const char *const keywords[] = {
    "application_name", "channel_binding", "client_encoding", "connect_timeout",
    "dbname", "fallback_application_name", "gssdelegation", "gssencmode",
    "gsslib", "host", "hostaddr", "keepalives", "keepalives_count",
    "keepalives_idle", "keepalives_interval", "krbsrvname", "load_balance_hosts",
    "options", "passfile", "password", "port", "replication", "require_auth",
    "requirepeer", "service", "ssl", "ssl_max_protocol_version",
    "ssl_min_protocol_version", "sslcert", "sslcertmode", "sslcompression",
    "sslcrl", "sslcrldir", "sslkey", "sslmode", "sslnegotiation", "sslpassword",
    "sslrootcert", "sslsni", "target_session_attrs", "tcp_user_timeout", "user",
};

/* Whether p starts a new option: a libpq keyword, (spaces,) '='. */
static int at_key(const char *p, int allow_space)
{
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
        n++;
    const char *q = allow_space ? skip_space(p + n) : p + n;
    if (n == 0 || *q != '=')
        return 0;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i]) == n && strncmp(p, keywords[i], n) == 0)
            return 1;
    return 0;
}

/* End of a password value that starts at s[j].  Generous: the value runs
 * on to the next libpq keyword, so that "password=abc def host=x" hides
 * "def" too (libpq would call it a keyword and quote it in its error), and
 * a quote anywhere opens a quoted stretch ("password='ab'cd' host=x"). */
static size_t value_end(const char *s, size_t j, int uri)
{
    size_t k = j;
    if (uri) {
        while (s[k] && !(s[k] == '&' && at_key(s + k + 1, 0)))
            k++;
        return k;
    }
    while (s[k]) {
        if (s[k] == '\'') {
            for (k++; s[k] && s[k] != '\''; k++)
                if (s[k] == '\\' && s[k + 1])
                    k++;
            if (s[k])
                k++;
            continue;
        }
        if (isspace((unsigned char)s[k])) {
            size_t m = k;
            while (isspace((unsigned char)s[m]))
                m++;
            if (!s[m] || at_key(s + m, 1))
                break;
            k = m;
            continue;
        }
        if (s[k] == '\\' && s[k + 1])
            k++;
        k++;
    }
    return k;
}

/* The password span [*b, *e) of a URI's userinfo: after its first ':' up
 * to the '@' that ends it.  libpq takes the first '@' before the first '/';
 * the generous reading takes the last '@' anywhere, since an unencoded '@'
 * or '/' in a password is a common mistake.  0 when there is none. */
static int uri_password(const char *s, int generous, const char **b,
                        const char **e)
{
    const char *p = skip_space(s);
    const char *auth = p + scheme_len(p) + 3;
    const char *at = generous ? strrchr(auth, '@')
                              : memchr(auth, '@', strcspn(auth, "/"));
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return 0;
    *b = colon + 1;
    *e = at;
    return 1;
}

/* Sets mask[i] for every byte of s that may be part of a password: the URI
 * userinfo after its ':' (up to the LAST '@', since an unencoded '@' in a
 * password is a common mistake), and the value of every "password=" (any
 * case, so "sslpassword=" too, wherever it is). */
static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A URI's query keys are percent-decoded by libpq ("pass%77ord" is
 * "password"): every parameter whose decoded key names a password has its
 * value marked, whatever the spelling. */
static void mark_query_secrets(const char *s, unsigned char *mask)
{
    const char *q = strchr(s, '?');
    while (q && *q) {
        const char *k = q + 1, *eq = k, *amp;
        while (*eq && *eq != '=' && *eq != '&')
            eq++;
        amp = eq;
        while (*amp && *amp != '&')
            amp++;
        char key[64];
        size_t n = 0;
        for (const char *p = k; p < eq && n + 1 < sizeof key; p++) {
            int hi, lo;
            if (*p == '%' && p + 2 < eq && (hi = hexval(p[1])) >= 0 &&
                (lo = hexval(p[2])) >= 0) {
                key[n++] = (char)(hi * 16 + lo);
                p += 2;
            } else {
                key[n++] = *p;
            }
        }
        key[n] = '\0';
        for (size_t i = 0; i < n; i++)
            key[i] = (char)tolower((unsigned char)key[i]);
        if (*eq == '=' && strstr(key, "password"))
            memset(mask + (eq + 1 - s), 1, (size_t)(amp - (eq + 1)));
        q = *amp ? amp : NULL;
    }
}

static void mark_secrets(const char *s, unsigned char *mask)
{
    size_t len = strlen(s);
    int uri = is_uri(s);
    const char *b, *e;
    if (uri && uri_password(s, 1, &b, &e))
        memset(mask + (b - s), 1, (size_t)(e - b));
    for (size_t i = 0; i + 8 <= len; i++) {
        if (strncasecmp(s + i, "password", 8) != 0)
            continue;
        size_t j = i + 8;
        while (isspace((unsigned char)s[j]))
            j++;
        if (s[j] != '=')
            continue;
        j++;
        if (!uri)
            while (isspace((unsigned char)s[j]))
                j++;
        size_t end = value_end(s, j, uri);
        memset(mask + j, 1, end - j);
    }
    if (uri)
        mark_query_secrets(s, mask);
}

/* s with every run of possibly-secret bytes replaced by "****" (malloc'd). */
static char *mask_alloc(const char *s)
{
    size_t len = strlen(s);
    unsigned char *mask = calloc(len + 1, 1);
    char *out = malloc(len * 4 + 5); /* a 1-byte run can grow to 4 */
    if (!mask || !out) {
        free(mask);
        free(out);
        return NULL;
    }
    mark_secrets(s, mask);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (!mask[i]) {
            out[o++] = s[i++];
            continue;
        }
        memcpy(out + o, MASK, 4);
        o += 4;
        while (i < len && mask[i])
            i++;
    }
    out[o] = '\0';
    free(mask);
    return out;
}

/* --- Candidate passwords for scrubbing ----------------------------------- */

typedef struct strlist {
    char **v;
    size_t n, cap;
    int oom;
} strlist;

static void add_n(strlist *l, const char *p, size_t len)
{
    if (len == 0 || l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) {
        l->oom = 1;
        return;
    }
    memcpy(c, p, len);
    c[len] = '\0';
    l->v[l->n++] = c;
}

/* Adds p, and the percent-decoded and percent-encoded forms (both hex
 * cases) that a URI or a message quoting one might carry. */
static void add_forms(strlist *l, const char *p, size_t len)
{
    if (len == 0)
        return;
    add_n(l, p, len);
    char *buf = malloc(len * 3 + 1);
    if (!buf) {
        l->oom = 1;
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < len &&
            (hi = hexval((unsigned char)p[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)p[i + 2])) >= 0) {
            buf[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            buf[o++] = p[i];
        }
    }
    if (o != len || memcmp(buf, p, len) != 0)
        add_n(l, buf, o);
    for (int lower = 0; lower < 2; lower++) {
        static const char hex[2][17] = {"0123456789ABCDEF", "0123456789abcdef"};
        o = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
                buf[o++] = (char)c;
            } else {
                buf[o++] = '%';
                buf[o++] = hex[lower][c >> 4];
                buf[o++] = hex[lower][c & 15];
            }
        }
        if (o != len)
            add_n(l, buf, o);
    }
    free(buf);
}

/* Every run the generous scanner marks in s, as written, and unquoted. */
static void add_marked_runs(strlist *l, const char *s)
{
    size_t len = strlen(s);
    unsigned char *mask = calloc(len + 1, 1);
    if (!mask) {
        l->oom = 1;
        return;
    }
    mark_secrets(s, mask);
    for (size_t i = 0; i < len;) {
        if (!mask[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && mask[j])
            j++;
        if (s[i] != '\'') {
            add_forms(l, s + i, j - i);
            i = j;
            continue;
        }
        /* 'quoted': as written, without the quotes, and as libpq reads it
         * (escapes undone, up to the closing quote).  '' is no password. */
        size_t inner = j - i - 1 - (j - i >= 2 && s[j - 1] == '\'' ? 1 : 0);
        char *u = malloc(j - i);
        size_t o = 0;
        if (!u) {
            l->oom = 1;
            break;
        }
        for (size_t k = i + 1; k < j && s[k] != '\''; k++) {
            if (s[k] == '\\' && k + 1 < j)
                k++;
            u[o++] = s[k];
        }
        if (inner > 0) {
            add_forms(l, s + i, j - i);
            add_forms(l, s + i + 1, inner);
            add_forms(l, u, o);
        }
        free(u);
        i = j;
    }
    free(mask);
}

static char *rewrite(const char *in, char *err, size_t errlen);

static void add_parsed(strlist *l, const char *conninfo)
{
    char *norm = rewrite(conninfo, NULL, 0);
    if (!norm)
        return;
    PQconninfoOption *opts = PQconninfoParse(norm, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val && (strcmp(o->keyword, "password") == 0 ||
                       strcmp(o->keyword, "sslpassword") == 0))
            add_forms(l, o->val, strlen(o->val));
    PQconninfoFree(opts);
    free(norm);
}

static int by_length_desc(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* A connection string's secrets, collected once (the engine keeps one, so
 * scrubbing a message allocates nothing), longest first: one pass then
 * never matches inside a "****" written for another. */
struct pgbank__scrubber {
    strlist l;
};

struct pgbank__scrubber *pgbank__scrubber_new(const char *conninfo)
{
    struct pgbank__scrubber *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (conninfo && *conninfo) {
        add_marked_runs(&s->l, conninfo);
        add_parsed(&s->l, conninfo);
    }
    const char *env = getenv("PGPASSWORD");
    if (env)
        add_forms(&s->l, env, strlen(env));
    if (s->l.n)
        qsort(s->l.v, s->l.n, sizeof *s->l.v, by_length_desc);
    return s;
}

void pgbank__scrubber_free(struct pgbank__scrubber *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->l.n; i++)
        free(s->l.v[i]);
    free(s->l.v);
    free(s);
}

void pgbank__scrubber_apply(const struct pgbank__scrubber *s, char *msg, size_t msgsize)
{
    if (!msg || msgsize == 0)
        return;
    msg[msgsize - 1] = '\0';
    if (!s || s->l.oom) {
        /* Could not check it: show nothing rather than risk the secret. */
        pgbank__strlcpy(msg, "(message withheld: out of memory)", msgsize);
        return;
    }
    if (s->l.n == 0)
        return;
    char local[2048];
    char *out = msgsize <= sizeof local ? local : malloc(msgsize);
    if (!out) {
        pgbank__strlcpy(msg, "(message withheld: out of memory)", msgsize);
        return;
    }
    size_t o = 0;
    for (const char *p = msg; *p && o < msgsize - 1;) {
        size_t i;
        for (i = 0; i < s->l.n; i++) {
            size_t n = strlen(s->l.v[i]);
            if (strncmp(p, s->l.v[i], n) == 0) {
                for (size_t k = 0; k < 4 && o < msgsize - 1; k++)
                    out[o++] = '*';
                p += n;
                break;
            }
        }
        if (i == s->l.n)
            out[o++] = *p++;
    }
    out[o] = '\0';
    memcpy(msg, out, o + 1);
    if (out != local)
        free(out);
}

PGBANK__API void pgbank_conninfo_scrub(const char *conninfo, char *msg, size_t msgsize)
{
    struct pgbank__scrubber *s = pgbank__scrubber_new(conninfo);
    pgbank__scrubber_apply(s, msg, msgsize);
    pgbank__scrubber_free(s);
}

PGBANK__API void pgbank_conninfo_redact(const char *conninfo, char *out,
                                        size_t outlen)
{
    if (!out || outlen == 0)
        return;
    if (!conninfo) {
        out[0] = '\0';
        return;
    }
    char *m = mask_alloc(conninfo);
    pgbank__strlcpy(out, m ? m : "(hidden)", outlen);
    free(m);
}

/* --- Normalisation -------------------------------------------------------- */

/* Appends n bytes at *o; the caller sized out for the worst case. */
static void put(char *out, size_t *o, const char *p, size_t n)
{
    memcpy(out + *o, p, n);
    *o += n;
    out[*o] = '\0';
}

/* asyncpg spells libpq's sslmode "ssl" (and accepts true/false); other
 * drivers' parameters are left for libpq to accept or reject. */
static void map_driver_query(char *out, size_t *o, const char *q, size_t qlen)
{
    const char *end = q + qlen;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t n = amp ? (size_t)(amp - q) : (size_t)(end - q);
        if (n > 4 && strncmp(q, "ssl=", 4) == 0) {
            const char *v = q + 4;
            size_t vn = n - 4;
            put(out, o, "sslmode=", 8);
            if (vn == 4 && strncasecmp(v, "true", 4) == 0)
                put(out, o, "require", 7);
            else if (vn == 5 && strncasecmp(v, "false", 5) == 0)
                put(out, o, "disable", 7);
            else
                put(out, o, v, vn);
        } else {
            put(out, o, q, n);
        }
        if (!amp)
            break;
        put(out, o, "&", 1);
        q = amp + 1;
    }
}

/* The libpq-usable form of `in` (malloc'd), not yet validated. */
static char *rewrite(const char *in, char *err, size_t errlen)
{
    const char *p = skip_space(in);
    size_t n = scheme_len(p);
    char *out;
    if (n == 0) {
        out = strdup(in); /* key=value: libpq's own syntax */
        if (!out)
            pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
        return out;
    }
    const char *plus = memchr(p, '+', n);
    size_t base = plus ? (size_t)(plus - p) : n;
    if (!((base == 10 && strncasecmp(p, "postgresql", 10) == 0) ||
          (base == 8 && strncasecmp(p, "postgres", 8) == 0))) {
        pgbank__fail(PGBANK_ECONNINFO, err, errlen,
                     "invalid connection string: unsupported scheme \"%.*s://\" "
                     "(pgbank needs postgresql://, postgres:// or key=value)",
                     (int)(n > 40 ? 40 : n), p);
        return NULL;
    }
    const char *rest = p + n + 3;
    size_t rlen = strlen(rest);
    while (rlen && isspace((unsigned char)rest[rlen - 1]))
        rlen--;
    /* The query may grow: "ssl=true" becomes "sslmode=require". */
    out = malloc(n + 3 + rlen * 2 + 16);
    if (!out) {
        pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    size_t o = 0;
    if ((n == 8 && strncmp(p, "postgres", 8) == 0) ||
        (n == 10 && strncmp(p, "postgresql", 10) == 0))
        put(out, &o, p, n); /* as written */
    else
        put(out, &o, "postgresql", 10);
    put(out, &o, "://", 3);
    const char *q = plus ? memchr(rest, '?', rlen) : NULL;
    size_t head = q ? (size_t)(q - rest) + 1 : rlen;
    put(out, &o, rest, head);
    if (q)
        map_driver_query(out, &o, q + 1, rlen - head);
    return out;
}

/* Whether libpq and the generous reading disagree on where a URI's
 * password ends: then the string has an unencoded '@' or '/' somewhere,
 * and whatever libpq would make of it (a host "rest-of-password@host", a
 * port "half-of-password") would end up quoted in an error message. */
static int ambiguous_password(const char *uri)
{
    const char *b1 = NULL, *e1 = NULL, *b2 = NULL, *e2 = NULL;
    int strict = uri_password(uri, 0, &b1, &e1);
    int generous = uri_password(uri, 1, &b2, &e2);
    if (!generous)
        return 0;
    return !strict || b1 != b2 || e1 != e2;
}

/* Values libpq checks only when it connects: caught here, so a typo is
 * bad input (nothing sent), not a connection failure.  Neither value can
 * hold the password, so it is safe to quote. */
static int bad_value(const PQconninfoOption *opts, char *err, size_t errlen)
{
    static const char *const sslmodes[] = {"disable", "allow", "prefer", "require",
                                           "verify-ca", "verify-full"};
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "sslmode") == 0) {
            size_t i = 0;
            while (i < sizeof sslmodes / sizeof *sslmodes && strcmp(o->val, sslmodes[i]) != 0)
                i++;
            if (i == sizeof sslmodes / sizeof *sslmodes) {
                pgbank__fail(PGBANK_ECONNINFO, err, errlen,
                             "invalid connection string: sslmode \"%.40s\" is not one of "
                             "disable, allow, prefer, require, verify-ca, verify-full",
                             o->val);
                return 1;
            }
        } else if (strcmp(o->keyword, "port") == 0) {
            /* a port, or a comma-separated list of them (empty items allowed) */
            for (const char *p = o->val; *p;) {
                long v = 0;
                const char *start = p;
                while (*p >= '0' && *p <= '9' && v <= 65535)
                    v = v * 10 + (*p++ - '0');
                if ((*p && *p != ',') || v > 65535 || (p != start && v == 0)) {
                    pgbank__fail(PGBANK_ECONNINFO, err, errlen,
                                 "invalid connection string: port \"%.40s\" is not a "
                                 "number from 1 to 65535",
                                 o->val);
                    return 1;
                }
                if (*p == ',')
                    p++;
            }
        }
    }
    return 0;
}

PGBANK__API char *pgbank_conninfo_normalize(const char *in, char *err,
                                            size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!in || !*in) {
        char *e = strdup("");
        if (!e)
            pgbank__fail(PGBANK_ENOMEM, err, errlen, "out of memory");
        return e;
    }
    char *out = rewrite(in, err, errlen);
    if (!out)
        return NULL;
    if (is_uri(out) && ambiguous_password(out)) {
        pgbank__fail(PGBANK_ECONNINFO, err, errlen,
                     "invalid connection string: ambiguous '@' in the URI (it "
                     "could hide part of a password); inside a user name, "
                     "password or parameter value write '@' as %%40 and '/' as %%2F");
        free(out);
        return NULL;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(out, &perr);
    if (opts) {
        int bad = bad_value(opts, err, errlen);
        PQconninfoFree(opts);
        PQfreemem(perr);
        if (bad) {
            free(out);
            return NULL;
        }
        return out;
    }
    PQfreemem(perr); /* it may quote the password: never shown */

    /* Ask libpq again about the masked string: its complaint then quotes
     * only text that cannot hold the password. */
    char *masked = mask_alloc(out);
    char *merr = NULL;
    PQconninfoOption *mopts = masked ? PQconninfoParse(masked, &merr) : NULL;
    if (mopts) {
        pgbank__fail(PGBANK_ECONNINFO, err, errlen,
                     "invalid connection string: error in or just after the "
                     "password (not shown; quote a password with spaces as "
                     "password='...', and in a URI write %% & @ / as %%XX)");
    } else if (merr) {
        size_t n = strcspn(merr, "\n");
        pgbank__fail(PGBANK_ECONNINFO, err, errlen,
                     "invalid connection string: %.*s", (int)n, merr);
    } else {
        pgbank__fail(PGBANK_ECONNINFO, err, errlen, "invalid connection string");
    }
    PQconninfoFree(mopts);
    PQfreemem(merr);
    free(masked);
    pgbank_conninfo_scrub(in, err, errlen);
    free(out);
    return NULL;
}

PGconn *pgbank__connect_blocking(const char *conninfo, char **ci, char *err, size_t errlen,
                                 int *rc)
{
    *ci = pgbank_conninfo_normalize(conninfo ? conninfo : "", err, errlen);
    if (!*ci) {
        *rc = PGBANK_ECONNINFO;
        return NULL;
    }
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {*ci, "pgbank", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        *rc = pgbank__fail(PGBANK_ECONNECT, err, errlen, "%s",
                           pg ? PQerrorMessage(pg) : "out of memory");
        size_t n = err && errlen ? strlen(err) : 0;
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        pgbank_conninfo_scrub(*ci, err, errlen);
        PQfinish(pg);
        return NULL;
    }
    *rc = 0;
    return pg;
}
