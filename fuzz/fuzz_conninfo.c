/*
 * fuzz_conninfo.c - connection strings: pgbank_conninfo_normalize,
 * pgbank_conninfo_redact and pgbank_conninfo_scrub on any input never
 * overrun a buffer, always NUL-terminate, and never let a password through:
 *   - every password libpq would use (password=, sslpassword=, a URI's
 *     userinfo, percent-decoded or not) is gone from redact's display and
 *     from normalize's error whenever it appears in the input only once
 *     (a password like "host" that also spells other parts of the string
 *     cannot be told apart by position);
 *   - scrub removes every occurrence of it from any message;
 *   - the normalised string, parsed again, carries the same passwords.
 */
#include "fuzz.h"

#include "pgbank.h"

#include <libpq-fe.h>

#define MAX_INPUT 4096

typedef struct {
    char *v[8];
    int n;
} pwlist;

static void pw_add(pwlist *l, const char *p, size_t len)
{
    if (l->n == 8 || len == 0)
        return;
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, p, len);
    s[len] = '\0';
    l->v[l->n++] = s;
}

static void pw_free(pwlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

/* The passwords libpq reads from a (normalised) connection string. */
static void parsed_passwords(const char *conninfo, pwlist *l)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val && (strcmp(o->keyword, "password") == 0 ||
                       strcmp(o->keyword, "sslpassword") == 0))
            pw_add(l, o->val, strlen(o->val));
    PQconninfoFree(opts);
}

/* A URI's userinfo password as written ("scheme://user:PASS@host"), also
 * when the string is malformed and libpq cannot say. */
static void uri_password(const char *s, pwlist *l)
{
    /* A URI starts with its scheme (after blanks); elsewhere "://" is just
     * text inside some key=value. */
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    size_t n = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
           (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    if (strncmp(s + n, "://", 3) != 0)
        return;
    const char *auth = s + n + 3;
    size_t span = strcspn(auth, "/?");
    const char *at = NULL;
    for (size_t i = 0; i < span; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon)
        pw_add(l, colon + 1, (size_t)(at - colon - 1));
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return len ? n : 0;
}

/* Whether the passwords read from a and b (libpq's, and a URI's as written)
 * are the same list. */
static int same_passwords(const char *a, const char *b)
{
    pwlist la = {{0}, 0}, lb = {{0}, 0};
    parsed_passwords(a, &la);
    parsed_passwords(b, &lb);
    uri_password(a, &la);
    uri_password(b, &lb);
    int same = la.n == lb.n;
    for (int i = 0; same && i < la.n; i++)
        same = strcmp(la.v[i], lb.v[i]) == 0;
    pw_free(&la);
    pw_free(&lb);
    return same;
}

/* Whether a leak of pw in a display of `in` can be told from chance: pw
 * appears once in `in`, and that once is the password's own spelling
 * (respelling it there changes the password).  A password written
 * percent-encoded or escaped ("p%61ss") whose decoded form also spells
 * something else ("sslpassword" as a host) proves nothing when that
 * something else is shown. */
static int distinctive(const char *in, const char *pw)
{
    size_t len = strlen(pw);
    if (len < 4 || strchr(pw, '*') || occurrences(in, pw) != 1)
        return 0;
    char *other = strdup(in);
    if (!other)
        abort();
    char *at = other + (strstr(in, pw) - in);
    for (size_t i = 0; i < len; i++)
        at[i] = at[i] == 'q' ? 'x' : 'q';
    int own = !same_passwords(in, other);
    free(other);
    return own;
}

/* The fixed words of normalize's errors (pgbank's and libpq's): a
 * password that spells part of them ("postgr", "string") proves nothing
 * when it shows up there. */
static const char *const phrases[] = {
    "invalid connection string: unsupported scheme (pgbank needs postgresql://, "
    "postgres:// or key=value)",
    "ambiguous '@' in the URI (it could hide part of a password); inside a user name, "
    "password or parameter value write '@' as %40 and '/' as %2F",
    "error in or just after the password (not shown; quote a password with spaces as "
    "password='...', and in a URI write % & @ / as %XX)",
    "invalid connection option", "missing \"=\" after", "in connection info string",
    "unterminated quoted string in connection info string",
    "end of string reached when looking for matching \"]\" in IPv6 host address in URI",
    "IPv6 host address may not be empty in URI", "invalid URI propagated to internal parser",
    "routine", "invalid percent-encoded token", "forbidden value %00 in percent-encoded value",
    "extra key/value separator \"=\" in URI query parameter",
    "missing key/value separator \"=\" in URI query parameter",
    "invalid URI query parameter", "unexpected spaces found in", "use %20 instead",
    "unexpected character at position in URI (expected \":\" or \"/\")", "out of memory",
};

static int in_phrases(const char *pw)
{
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (strstr(phrases[i], pw))
            return 1;
    return 0;
}

static void check_terminated(const char *what, const char *buf, size_t size)
{
    if (!memchr(buf, '\0', size))
        fuzz_fail("%s: not NUL-terminated within its %zu bytes", what, size);
}

static void no_leak(const char *what, const char *text, const char *in, const pwlist *l,
                    int message)
{
    for (int i = 0; i < l->n; i++)
        if (distinctive(in, l->v[i]) && !(message && in_phrases(l->v[i])) &&
            strstr(text, l->v[i]))
            fuzz_fail("%s leaks the password \"%s\" of \"%s\": \"%s\"", what, l->v[i], in,
                      text);
}

static void check_redact(const char *in, const pwlist *l)
{
    static const size_t sizes[] = {1, 2, 5, 16, 64, MAX_INPUT * 4 + 8};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k];
        char *out = malloc(size);
        if (!out)
            abort();
        memset(out, 'Z', size);
        pgbank_conninfo_redact(in, out, size);
        check_terminated("redact", out, size);
        no_leak("redact", out, in, l, 0);
        free(out);
    }
}

/* scrub must remove every occurrence, however often it appears. */
static void check_scrub(const char *in, const pwlist *l)
{
    for (int i = 0; i <= l->n; i++) {
        const char *pw = i < l->n ? l->v[i] : "";
        size_t size = strlen(in) * 2 + strlen(pw) * 2 + 128;
        char *msg = malloc(size);
        if (!msg)
            abort();
        snprintf(msg, size, "FATAL: password \"%s\" failed for \"%s\" (%s)", pw, in, pw);
        pgbank_conninfo_scrub(in, msg, size);
        check_terminated("scrub", msg, size);
        if (*pw && !strchr(pw, '*') && strstr(msg, pw))
            fuzz_fail("scrub leaves the password \"%s\" of \"%s\" in \"%s\"", pw, in, msg);
        free(msg);
        /* A tiny buffer: truncated, terminated, no overrun. */
        char small[8];
        snprintf(small, sizeof small, "%s", in);
        pgbank_conninfo_scrub(in, small, sizeof small);
        check_terminated("scrub (8 bytes)", small, sizeof small);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size > MAX_INPUT)
        return 0;
    /* PGPASSWORD would be scrubbed too and blur the checks. */
    unsetenv("PGPASSWORD");
    char *in = fuzz_cstr(data, size);
    pwlist parsed = {{0}, 0}, seen = {{0}, 0};
    char err[256];
    memset(err, 'Z', sizeof err);
    char *norm = pgbank_conninfo_normalize(in, err, sizeof err);
    check_terminated("normalize's error", err, sizeof err);
    if (norm) {
        parsed_passwords(norm, &parsed);
        /* Normalising keeps what libpq reads as the password. */
        char *again = pgbank_conninfo_normalize(norm, NULL, 0);
        if (!again)
            fuzz_fail("the normalised \"%s\" (from \"%s\") is refused", norm, in);
        pwlist twice = {{0}, 0};
        parsed_passwords(again, &twice);
        if (twice.n != parsed.n)
            fuzz_fail("normalising \"%s\" twice changes its passwords", in);
        for (int i = 0; i < parsed.n; i++)
            if (strcmp(parsed.v[i], twice.v[i]) != 0)
                fuzz_fail("normalising \"%s\" twice changes a password", in);
        pw_free(&twice);
        free(again);
    }
    /* What a reader would take for the password, even in a malformed
     * string: the URI userinfo's, as written. */
    for (int i = 0; i < parsed.n; i++)
        pw_add(&seen, parsed.v[i], strlen(parsed.v[i]));
    uri_password(in, &seen);
    if (!norm)
        no_leak("normalize's error", err, in, &seen, 1);
    check_redact(in, &seen);
    /* scrub works from what libpq parses: a string libpq cannot parse
     * never reaches a server, so no server message can quote it. */
    check_scrub(in, &parsed);
    /* NULL inputs are harmless. */
    char out[8];
    pgbank_conninfo_redact(NULL, out, sizeof out);
    pgbank_conninfo_scrub(NULL, out, sizeof out);
    pw_free(&parsed);
    pw_free(&seen);
    free(norm);
    free(in);
    return 0;
}
