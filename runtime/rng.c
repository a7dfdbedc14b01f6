/*
 * rng.c - counter-based random numbers.
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011) maps a 128-bit counter and a 64-bit key to 128
 * random bits with no state in between, so the draw for (seed, stream, index,
 * step) is the same whichever thread or rank asks for it.  EngramRng walks
 * the counter to hand out words; the distributions below are built on it and
 * are exact (no approximations that show in the moments): uniforms, Box-Muller
 * normals, inversion or transformed rejection (Hörmann 1993) for Poisson and
 * binomial, inversion for geometric and exponential.
 *
 * Order: the Philox block, the word stream, uniforms, continuous
 * distributions, log-factorial, then the discrete distributions.
 */
#include <math.h>

#include "rt_core.h"

/* Round multipliers and Weyl key increments, from the Random123 reference. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

#define TWO_PI 6.283185307179586476925286766559
#define TWO_POW_M53 (1.0 / 9007199254740992.0)
#define TWO_POW_64 18446744073709551616.0

static void philox_round(uint32_t x[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k[0];
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k[1];
    x[0] = y0;
    x[1] = (uint32_t)p1;
    x[2] = y2;
    x[3] = (uint32_t)p0;
}

void engram_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4])
{
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int i = 0; i < 10; i++) {
        if (i > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = x[i];
}

/* ---- the word stream --------------------------------------------------- */

void engram_rng_init(EngramRng *r, uint64_t seed, uint32_t stream, uint32_t index,
                     uint64_t counter0)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = stream;
    r->ctr[1] = index;
    r->ctr[2] = (uint32_t)counter0;
    r->ctr[3] = (uint32_t)(counter0 >> 32);
    r->avail = 0;
}

void engram_rng_init_synapse(EngramRng *r, uint64_t seed, uint32_t stream,
                             uint32_t target, uint32_t rank)
{
    engram_rng_init(r, seed, stream, target, (uint64_t)rank << 32);
}

uint32_t engram_rng_u32(EngramRng *r)
{
    if (r->avail <= 0) {
        engram_philox4x32(r->key, r->ctr, r->buf);
        /* 64-bit increment of words 2..3; wraps after 2^64 blocks */
        if (++r->ctr[2] == 0)
            r->ctr[3]++;
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

static uint64_t rng_u53(EngramRng *r)
{
    uint64_t hi = engram_rng_u32(r);
    uint64_t lo = engram_rng_u32(r);
    return ((hi << 32) | lo) >> 11;
}

double engram_rng_uniform(EngramRng *r)
{
    return (double)rng_u53(r) * TWO_POW_M53;
}

double engram_rng_uniform_pos(EngramRng *r)
{
    return (double)(rng_u53(r) + 1) * TWO_POW_M53;
}

/* Lemire's multiply-and-reject: unbiased without a division on most draws. */
uint32_t engram_rng_below(EngramRng *r, uint32_t n)
{
    if (n == 0)
        return 0;
    uint64_t m = (uint64_t)engram_rng_u32(r) * n;
    if ((uint32_t)m < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while ((uint32_t)m < threshold)
            m = (uint64_t)engram_rng_u32(r) * n;
    }
    return (uint32_t)(m >> 32);
}

/* ---- continuous distributions ------------------------------------------ */

/* Box-Muller, keeping only the cosine half: EngramRng has no room to cache
 * the sine, and a fixed 4 words per normal keeps the counter arithmetic of
 * callers simple. */
double engram_rng_normal(EngramRng *r)
{
    double u1 = engram_rng_uniform_pos(r); /* (0,1]: log never sees 0 */
    double u2 = engram_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

double engram_rng_exponential(EngramRng *r, double rate)
{
    if (!(rate >= 0.0))
        return NAN;
    if (rate == 0.0)
        return INFINITY;
    return -log(engram_rng_uniform_pos(r)) / rate;
}

/* ---- log k! ------------------------------------------------------------ */

/* log(k!) without lgamma(), which writes the global signgam in glibc.
 * Exact products below 16 (15! < 2^53), Stirling's series above, whose
 * first omitted term is under 1e-14 there. */
static double log_factorial(double k)
{
    if (k < 16.0) {
        double f = 1.0;
        for (double i = 2.0; i <= k; i += 1.0)
            f *= i;
        return log(f);
    }
    double x = k + 1.0, x2 = x * x;
    double series = (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * x2)) / x2) / x2) / x;
    return (x - 0.5) * log(x) - x + 0.91893853320467274178 + series;
}

/* ---- discrete distributions -------------------------------------------- */

/* A non-negative whole double as a count; converting 2^64 or more is UB. */
static uint64_t saturate_u64(double k)
{
    return k >= TWO_POW_64 ? UINT64_MAX : (uint64_t)k;
}

/* Inversion by sequential search; lambda < 10 keeps it to ~lambda steps. */
static uint64_t poisson_inversion_from(EngramRng *r, double lambda, double exp_neg_lambda)
{
    double u = engram_rng_uniform(r);
    double p = exp_neg_lambda, cdf = p;
    uint64_t k = 0;
    /* p underflows long before k reaches 1000 for lambda < 10 */
    while (u >= cdf && p > 0.0 && k < 1000) {
        k++;
        p *= lambda / (double)k;
        cdf += p;
    }
    return k;
}

static uint64_t poisson_inversion(EngramRng *r, double lambda)
{
    return poisson_inversion_from(r, lambda, exp(-lambda));
}

/* PTRS, Hörmann, "The transformed rejection method for generating Poisson
 * random variables", Insurance: Math. Econ. 12 (1993); exact for lambda >= 10. */
static uint64_t poisson_ptrs(EngramRng *r, double lambda)
{
    double slam = sqrt(lambda), loglam = log(lambda);
    double b = 0.931 + 2.53 * slam;
    double a = -0.059 + 0.02483 * b;
    double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        double u = engram_rng_uniform(r) - 0.5;
        double v = engram_rng_uniform(r);
        double us = 0.5 - fabs(u);
        double k = floor((2.0 * a / us + b) * u + lambda + 0.43);
        if (us >= 0.07 && v <= vr)
            return saturate_u64(k);
        if (k < 0.0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + log(inv_alpha) - log(a / (us * us) + b)
            <= -lambda + k * loglam - log_factorial(k))
            return saturate_u64(k);
    }
}

uint64_t engram_rng_poisson(EngramRng *r, double lambda)
{
    if (!(lambda > 0.0))
        return 0;
    if (lambda >= TWO_POW_64) /* the count would not fit */
        return UINT64_MAX;
    return lambda < 10.0 ? poisson_inversion(r, lambda) : poisson_ptrs(r, lambda);
}

uint64_t engram_rng_geometric(EngramRng *r, double p)
{
    if (!(p > 0.0))
        return UINT64_MAX;
    if (p >= 1.0)
        return 0;
    return engram_rng_geometric_log(r, log1p(-p));
}

/* P(K >= k) = P(U <= (1-p)^k) = (1-p)^k for U uniform on (0,1]; the caller
 * passes log1p(-p), with p in (0, 1), computed once for many draws. */
uint64_t engram_rng_geometric_log(EngramRng *r, double log1p_neg_p)
{
    return saturate_u64(floor(log(engram_rng_uniform_pos(r)) / log1p_neg_p));
}

uint64_t engram_rng_poisson_small(EngramRng *r, double lambda, double exp_neg_lambda)
{
    if (!(lambda > 0.0))
        return 0;
    return lambda < 10.0 ? poisson_inversion_from(r, lambda, exp_neg_lambda)
                         : engram_rng_poisson(r, lambda);
}

/* Small n*p: count successes by skipping failures, O(n*p + 1) draws. */
static uint64_t binomial_skip(EngramRng *r, uint64_t n, double p)
{
    uint64_t k = 0, pos = 0; /* pos: trials used so far */
    for (;;) {
        uint64_t gap = engram_rng_geometric(r, p);
        if (gap >= n - pos)
            return k;
        pos += gap + 1;
        k++;
    }
}

/* BTRS, Hörmann, "The generation of binomial random variates", J. Stat.
 * Comput. Simul. 46 (1993); exact, for n*p >= 10 and p <= 1/2. */
static uint64_t binomial_btrs(EngramRng *r, uint64_t n, double p)
{
    double dn = (double)n, q = 1.0 - p;
    double spq = sqrt(dn * p * q);
    double b = 1.15 + 2.53 * spq;
    double a = -0.0873 + 0.0248 * b + 0.01 * p;
    double c = dn * p + 0.5;
    double vr = 0.92 - 4.2 / b;
    double alpha = (2.83 + 5.1 / b) * spq;
    double lpq = log(p / q);
    double m = floor((dn + 1.0) * p);
    double h = log_factorial(m) + log_factorial(dn - m);
    for (;;) {
        double u = engram_rng_uniform(r) - 0.5;
        double v = engram_rng_uniform(r);
        double us = 0.5 - fabs(u);
        double k = floor((2.0 * a / us + b) * u + c);
        if (k < 0.0 || k > dn)
            continue;
        if (us >= 0.07 && v <= vr)
            return (uint64_t)k;
        v = log(v * alpha / (a / (us * us) + b));
        if (v <= h - log_factorial(k) - log_factorial(dn - k) + (k - m) * lpq)
            return (uint64_t)k;
    }
}

uint64_t engram_rng_binomial(EngramRng *r, uint64_t n, double p)
{
    if (!(p > 0.0) || n == 0)
        return 0;
    if (p >= 1.0)
        return n;
    if (p > 0.5) /* both methods want the smaller tail */
        return n - engram_rng_binomial(r, n, 1.0 - p);
    if ((double)n * p < 10.0)
        return binomial_skip(r, n, p);
    return binomial_btrs(r, n, p);
}
