/*
 * zipf.c - Zipf-distributed account ids by rejection-inversion (Hörmann
 * and Derflinger 1996, as in Apache Commons RNG; see lab.h): 10 million
 * accounts cost no table and no memory.  Rank 1 (the hottest) is account 1,
 * as with pgbench's random_zipfian().
 */
#include "lab.h"

#include "internal.h"

#include <math.h>

static double helper1(double x) /* log1p(x) / x */
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x) /* expm1(x) / x */
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

/* H(x): the integral of the hat function x^-s. */
static double hint(const lab_zipf *z, double x)
{
    double lx = log(x);
    return helper2((1 - z->s) * lx) * lx;
}

static double h(const lab_zipf *z, double x) { return exp(-z->s * log(x)); }

static double hinv(const lab_zipf *z, double x)
{
    double t = x * (1 - z->s);
    if (t < -1)
        t = -1;
    return exp(helper1(t) * x);
}

void lab_zipf_init(lab_zipf *z, int64_t n, double s)
{
    z->s = s;
    z->n = (double)n;
    z->h_x1 = hint(z, 1.5) - 1;
    z->h_n = hint(z, z->n + 0.5);
    z->squeeze = 2 - hinv(z, hint(z, 2.5) - h(z, 2));
}

int64_t lab_zipf_draw(const lab_zipf *z, uint64_t *rng)
{
    for (;;) {
        double u = z->h_n + pgbank__rand_unit(rng) * (z->h_x1 - z->h_n);
        double x = hinv(z, u);
        double k = floor(x + 0.5);
        if (k < 1)
            k = 1;
        else if (k > z->n)
            k = z->n;
        if (k - x <= z->squeeze || u >= hint(z, k + 0.5) - h(z, k))
            return (int64_t)k;
    }
}
