/*
 * fuzz_amount.c - pgbank_parse_int64, the strict number parser behind every
 * amount, balance and account id: it must accept exactly an optional '-'
 * and decimal digits within int64_t (no spaces, no '+', no hex, no
 * exponent, no trailing bytes), agree with strtoll on every such input,
 * and round-trip what it accepts through "%lld".
 */
#include "fuzz.h"

#include "pgbank.h"

#include <errno.h>
#include <inttypes.h>

/* An optional '-' and one or more ASCII digits, nothing else. */
static int decimal_syntax(const char *s)
{
    if (*s == '-')
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static void check_string(const char *s)
{
    int64_t v = 424242;
    int rc = pgbank_parse_int64(s, &v);
    if (!decimal_syntax(s)) {
        if (rc == 0)
            fuzz_fail("accepted \"%s\" as %" PRId64 ": not a plain decimal", s, v);
        return;
    }
    errno = 0;
    char *end = NULL;
    long long want = strtoll(s, &end, 10);
    int range = errno == ERANGE;
    if (range && rc == 0)
        fuzz_fail("accepted \"%s\" as %" PRId64 ": outside int64_t", s, v);
    if (!range && rc != 0)
        fuzz_fail("refused \"%s\" (rc %d): strtoll reads %lld", s, rc, want);
    if (rc == 0 && v != (int64_t)want)
        fuzz_fail("\"%s\" parsed as %" PRId64 ", strtoll says %lld", s, v, want);
    if (rc == 0) {
        char buf[32];
        int64_t back = 0;
        snprintf(buf, sizeof buf, "%" PRId64, v);
        if (pgbank_parse_int64(buf, &back) != 0 || back != v)
            fuzz_fail("%" PRId64 " does not round-trip through \"%s\"", v, buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *s = fuzz_cstr(data, size);
    check_string(s);
    /* Every int64_t, written canonically, comes back unchanged. */
    if (size >= 8) {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = u << 8 | data[i];
        char buf[32];
        int64_t x = (int64_t)u, back = 0;
        snprintf(buf, sizeof buf, "%" PRId64, x);
        if (pgbank_parse_int64(buf, &back) != 0 || back != x)
            fuzz_fail("%" PRId64 " does not round-trip through \"%s\"", x, buf);
    }
    /* NULL never crashes it. */
    int64_t v;
    if (pgbank_parse_int64(NULL, &v) == 0)
        fuzz_fail("NULL accepted");
    free(s);
    return 0;
}
