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
 * distributions, log-factorial, the discrete distributions, then Poisson
 * draws of many generators at once.
 */
#include <math.h>
#include <stdlib.h>

#include "rt_core.h"

/* x86-64 with GCC or clang: the many-generator loops get AVX2 and AVX-512
 * versions, chosen at run time (the simulator may run on another CPU than
 * the one that built it). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RNG_X86 1
#endif

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

/* ---- Poisson draws of many generators at once -------------------------------------- */

/* The search of poisson_inversion_from stops at the first k with u < cdf_k,
 * p_k = 0 or k = 1000; the table holds cdf_0 .. cdf_{kmax-1}, the sums at
 * which it may go on.  The sums never decrease, so the count for u is the
 * number of entries <= u. */
int engram_poisson_inv_init(EngramPoissonInv *t, double lambda)
{
    t->cdf = NULL;
    t->kmax = t->nfast = 0;
    if (!(lambda > 0.0 && lambda < 10.0))
        return ENGRAM_CORE_EINVAL;
    double *cdf = malloc((1000 + 4) * sizeof *cdf);
    if (!cdf)
        return ENGRAM_CORE_ENOMEM;
    double p = exp(-lambda), sum = p;
    uint32_t k = 0;
    while (p > 0.0 && k < 1000) {
        cdf[k] = sum;
        k++;
        p *= lambda / (double)k;
        sum += p;
    }
    for (uint32_t j = k; j < k + 4; j++)
        cdf[j] = INFINITY;   /* never <= u: groups of 4 may run past kmax */
    t->cdf = cdf;
    t->kmax = k;
    /* every draw is compared with the entries up to the first above 0.999,
     * rounded up to a group of 4 */
    uint32_t f = 0;
    while (f < k && cdf[f] <= 0.999)
        f++;
    t->nfast = ((f < k ? f + 1 : k) + 3) / 4 * 4;
    return ENGRAM_CORE_OK;
}

void engram_poisson_inv_free(EngramPoissonInv *t)
{
    free(t->cdf);
    t->cdf = NULL;
    t->kmax = t->nfast = 0;
}

/* The count for uniform u, from `from` on (the entries before it are <= u). */
static double inv_search(const EngramPoissonInv *t, double u, uint32_t from)
{
    uint32_t j = from;
    while (j < t->kmax && u >= t->cdf[j])
        j++;
    return (double)j;
}

/* One generator at a time: engram_rng_uniform, then the table (whose
 * entries past kmax, +inf, are never counted). */
static void inv_draw_scalar(const EngramPoissonInv *t, uint64_t seed, uint32_t stream,
                            uint32_t index0, uint64_t counter0, uint32_t n, double *k)
{
    for (uint32_t i = 0; i < n; i++) {
        EngramRng r;
        engram_rng_init(&r, seed, stream, index0 + i, counter0);
        k[i] = inv_search(t, engram_rng_uniform(&r), 0);
    }
}

#ifdef RNG_X86
/* Philox4x32-10 on 64-bit lanes that hold 32-bit words: mul_epu32 reads the
 * low halves only, so the high halves may hold anything until the words are
 * masked at the end.  swap exchanges the halves (the high word of a product
 * comes down by a shuffle, which leaves the shift port to the multiplies). */
#define PHILOX_LANES(V, set1, mul, swap, xor)                                              \
    V x0 = set1(stream), x1 = idx, x2 = set1(c2), x3 = set1(c3);                          \
    for (int round = 0; round < 10; round++) {                                            \
        V p0 = mul(x0, set1(PHILOX_M0)), p1 = mul(x2, set1(PHILOX_M1));                   \
        x0 = xor(xor(swap(p1), x1), set1(ka[round]));                                     \
        x2 = xor(xor(swap(p0), x3), set1(kb[round]));                                     \
        x1 = p1;                                                                          \
        x3 = p0;                                                                          \
    }
#define SWAP256(p) _mm256_shuffle_epi32((p), 0xb1)
#define SWAP512(p) _mm512_shuffle_epi32((p), _MM_PERM_CDAB)

/* The round keys of the block loop of engram_philox4x32. */
static void philox_keys(uint64_t seed, uint32_t ka[10], uint32_t kb[10])
{
    ka[0] = (uint32_t)seed;
    kb[0] = (uint32_t)(seed >> 32);
    for (int i = 1; i < 10; i++) {
        ka[i] = ka[i - 1] + PHILOX_W0;
        kb[i] = kb[i - 1] + PHILOX_W1;
    }
}

/* x0, x1 (the first two words) as rng_u53 / 2^53 = x0 2^-32 + (x1 >> 11) 2^-53,
 * each part converted exactly through the exponent of 2^52. */
#define HALF_MASK 0xffffffffll
#define TWO52_BITS 0x4330000000000000ll
#define TWO52 4503599627370496.0

__attribute__((target("avx2"))) static inline __m256d uniform_avx2(__m256i x0, __m256i x1)
{
    const __m256i low = _mm256_set1_epi64x(HALF_MASK), e52 = _mm256_set1_epi64x(TWO52_BITS);
    __m256d hi = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(x0, low), e52));
    __m256d lo = _mm256_castsi256_pd(
        _mm256_or_si256(_mm256_srli_epi64(_mm256_and_si256(x1, low), 11), e52));
    hi = _mm256_mul_pd(_mm256_sub_pd(hi, _mm256_set1_pd(TWO52)), _mm256_set1_pd(0x1p-32));
    lo = _mm256_mul_pd(_mm256_sub_pd(lo, _mm256_set1_pd(TWO52)), _mm256_set1_pd(0x1p-53));
    return _mm256_add_pd(hi, lo);
}

__attribute__((target("avx512f"))) static inline __m512d uniform_avx512(__m512i x0, __m512i x1)
{
    const __m512i low = _mm512_set1_epi64(HALF_MASK), e52 = _mm512_set1_epi64(TWO52_BITS);
    __m512d hi = _mm512_castsi512_pd(_mm512_or_si512(_mm512_and_si512(x0, low), e52));
    __m512d lo = _mm512_castsi512_pd(
        _mm512_or_si512(_mm512_srli_epi64(_mm512_and_si512(x1, low), 11), e52));
    hi = _mm512_mul_pd(_mm512_sub_pd(hi, _mm512_set1_pd(TWO52)), _mm512_set1_pd(0x1p-32));
    lo = _mm512_mul_pd(_mm512_sub_pd(lo, _mm512_set1_pd(TWO52)), _mm512_set1_pd(0x1p-53));
    return _mm512_add_pd(hi, lo);
}

/* The lanes whose count reached nfast go on searching one at a time. */
static void inv_finish_lanes(const EngramPoissonInv *t, unsigned over, const double *u, double *k)
{
    for (int l = 0; over; l++, over >>= 1)
        if (over & 1)
            k[l] = inv_search(t, u[l], t->nfast);
}

/* The counts: the table entries <= u, compared in groups of 4, counted
 * with integer adds (a short dependency chain), converted exactly. */
__attribute__((target("avx2"))) static void inv_draw_avx2(const EngramPoissonInv *t,
                                                          uint64_t seed, uint32_t stream,
                                                          uint32_t index0, uint64_t counter0,
                                                          uint32_t n, double *k)
{
    uint32_t ka[10], kb[10], c2 = (uint32_t)counter0, c3 = (uint32_t)(counter0 >> 32);
    philox_keys(seed, ka, kb);
    const __m256i lanes = _mm256_set_epi64x(3, 2, 1, 0), e52 = _mm256_set1_epi64x(TWO52_BITS);
    const double *cdf = t->cdf;
    uint32_t i = 0, nfast = t->nfast;
    for (; i + 4 <= n; i += 4) {
        __m256i idx = _mm256_add_epi64(_mm256_set1_epi64x(index0 + i), lanes);
        PHILOX_LANES(__m256i, _mm256_set1_epi64x, _mm256_mul_epu32, SWAP256, _mm256_xor_si256)
        __m256d u = uniform_avx2(x0, x1);
        __m256i cnt = _mm256_setzero_si256();   /* a true compare is all ones: -1 */
        for (uint32_t j = 0; j < nfast; j += 4)
            for (uint32_t g = j; g < j + 4; g++) {
                __m256d le = _mm256_cmp_pd(u, _mm256_set1_pd(cdf[g]), _CMP_GE_OQ);
                cnt = _mm256_sub_epi64(cnt, _mm256_castpd_si256(le));
            }
        __m256d c = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(cnt, e52)),
                                  _mm256_set1_pd(TWO52));
        _mm256_storeu_pd(k + i, c);
        if (nfast < t->kmax) {
            double us[4];
            _mm256_storeu_pd(us, u);
            inv_finish_lanes(t, (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(
                                    c, _mm256_set1_pd((double)nfast), _CMP_GE_OQ)),
                             us, k + i);
        }
    }
    inv_draw_scalar(t, seed, stream, index0 + i, counter0, n - i, k + i);
}

__attribute__((target("avx512f"))) static void inv_draw_avx512(const EngramPoissonInv *t,
                                                               uint64_t seed, uint32_t stream,
                                                               uint32_t index0, uint64_t counter0,
                                                               uint32_t n, double *k)
{
    uint32_t ka[10], kb[10], c2 = (uint32_t)counter0, c3 = (uint32_t)(counter0 >> 32);
    philox_keys(seed, ka, kb);
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i one = _mm512_set1_epi64(1), e52 = _mm512_set1_epi64(TWO52_BITS);
    const double *cdf = t->cdf;
    uint32_t i = 0, nfast = t->nfast;
    for (; i + 8 <= n; i += 8) {
        __m512i idx = _mm512_add_epi64(_mm512_set1_epi64(index0 + i), lanes);
        PHILOX_LANES(__m512i, _mm512_set1_epi64, _mm512_mul_epu32, SWAP512, _mm512_xor_si512)
        __m512d u = uniform_avx512(x0, x1);
        __m512i cnt = _mm512_setzero_si512();
        for (uint32_t j = 0; j < nfast; j += 4)
            for (uint32_t g = j; g < j + 4; g++) {
                __mmask8 le = _mm512_cmp_pd_mask(u, _mm512_set1_pd(cdf[g]), _CMP_GE_OQ);
                cnt = _mm512_mask_add_epi64(cnt, le, cnt, one);
            }
        __m512d c = _mm512_sub_pd(_mm512_castsi512_pd(_mm512_or_si512(cnt, e52)),
                                  _mm512_set1_pd(TWO52));
        _mm512_storeu_pd(k + i, c);
        if (nfast < t->kmax) {
            double us[8];
            _mm512_storeu_pd(us, u);
            inv_finish_lanes(t, _mm512_cmp_pd_mask(c, _mm512_set1_pd((double)nfast), _CMP_GE_OQ),
                             us, k + i);
        }
    }
    inv_draw_scalar(t, seed, stream, index0 + i, counter0, n - i, k + i);
}
#endif

void engram_poisson_inv_draw_isa(const EngramPoissonInv *t, int isa, uint64_t seed,
                                 uint32_t stream, uint32_t index0, uint64_t counter0, uint32_t n,
                                 double *k)
{
#ifdef RNG_X86
    if (isa >= 2 && __builtin_cpu_supports("avx512f"))
        inv_draw_avx512(t, seed, stream, index0, counter0, n, k);
    else if (isa >= 1 && __builtin_cpu_supports("avx2"))
        inv_draw_avx2(t, seed, stream, index0, counter0, n, k);
    else
#endif
        inv_draw_scalar(t, seed, stream, index0, counter0, n, k);
    (void)isa;
}

void engram_poisson_inv_draw_n(const EngramPoissonInv *t, uint64_t seed, uint32_t stream,
                               uint32_t index0, uint64_t counter0, uint32_t n, double *k)
{
    engram_poisson_inv_draw_isa(t, 2, seed, stream, index0, counter0, n, k);
}
