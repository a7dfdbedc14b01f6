/*
 * test_rng.c - Philox4x32-10 against the Random123 known-answer vectors,
 * the counter discipline of EngramRng, determinism, and the distributions:
 * moments within 5 standard errors, and chi-square against the exact
 * probabilities where the method is meant to be exact.  Seeds are fixed, so
 * every run draws the same numbers; the 5-sigma bounds make a false alarm
 * from an unlucky seed about a one-in-a-million event.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "rt_core.h"

/* ---- Philox ------------------------------------------------------------- */

static void assert_kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                       uint32_t k1, const uint32_t want[4])
{
    const uint32_t ctr[4] = {c0, c1, c2, c3}, key[2] = {k0, k1};
    uint32_t out[4];
    engram_philox4x32(key, ctr, out);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i], want[i], "word %d: %08x, want %08x", i, out[i], want[i]);
}

/* Random123 kat_vectors: philox4x32 10 CTR[4] KEY[2] -> OUT[4]. */
Test(philox, known_answers)
{
    assert_kat(0, 0, 0, 0, 0, 0, (const uint32_t[4]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    assert_kat(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
               (const uint32_t[4]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    assert_kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
               (const uint32_t[4]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

/* The stream hands out block (seed, {stream, index, c lo, c hi}) word by
 * word, then moves to counter + 1, carrying into the high word. */
Test(rng, stream_walks_the_counter)
{
    EngramRng r;
    uint64_t seed = 0x0123456789abcdefull;
    engram_rng_init(&r, seed, 7, 42, 0xffffffffull);
    const uint32_t key[2] = {0x89abcdef, 0x01234567};
    uint32_t want[4];
    engram_philox4x32(key, (const uint32_t[4]){7, 42, 0xffffffff, 0}, want);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(engram_rng_u32(&r), want[i]);
    engram_philox4x32(key, (const uint32_t[4]){7, 42, 0, 1}, want);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(engram_rng_u32(&r), want[i]);
}

Test(rng, synapse_generator_uses_rank_as_high_counter)
{
    EngramRng a, b;
    engram_rng_init_synapse(&a, 5, 3, 11, 9);
    engram_rng_init(&b, 5, 3, 11, (uint64_t)9 << 32);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(engram_rng_u32(&a), engram_rng_u32(&b));
}

static uint64_t first_word_pair(uint64_t seed, uint32_t stream, uint32_t index, uint64_t c0)
{
    EngramRng r;
    engram_rng_init(&r, seed, stream, index, c0);
    uint64_t hi = engram_rng_u32(&r);
    return hi << 32 | engram_rng_u32(&r);
}

Test(rng, deterministic_and_streams_differ)
{
    uint64_t base = first_word_pair(1, 2, 3, 4);
    cr_assert_eq(first_word_pair(1, 2, 3, 4), base);
    cr_assert_neq(first_word_pair(2, 2, 3, 4), base);
    cr_assert_neq(first_word_pair(1ull << 32 | 1, 2, 3, 4), base); /* high key word counts */
    cr_assert_neq(first_word_pair(1, 9, 3, 4), base);
    cr_assert_neq(first_word_pair(1, 2, 9, 4), base);
    cr_assert_neq(first_word_pair(1, 2, 3, 5), base);
}

/* ---- helpers for distribution tests -------------------------------------- */

/* Mean and variance of n draws; asserts both within 5 standard errors.
 * var_of_var is the variance of one squared deviation, (mu4 - sigma^4). */
typedef double (*DrawFn)(EngramRng *r, const double *arg);

static void assert_moments(const char *what, DrawFn draw, const double *arg, int n, double mean,
                           double var, double var_of_var)
{
    EngramRng r;
    engram_rng_init(&r, 20240601, 1, 2, 0);
    double sum = 0.0, sum2 = 0.0;
    double *x = malloc((size_t)n * sizeof *x);
    cr_assert_not_null(x);
    for (int i = 0; i < n; i++) {
        x[i] = draw(&r, arg);
        sum += x[i];
    }
    double m = sum / n;
    for (int i = 0; i < n; i++)
        sum2 += (x[i] - m) * (x[i] - m);
    free(x);
    double v = sum2 / (n - 1);
    cr_assert(fabs(m - mean) <= 5.0 * sqrt(var / n), "%s: mean %g, want %g", what, m, mean);
    cr_assert(fabs(v - var) <= 5.0 * sqrt(var_of_var / n) + 1e-12,
              "%s: variance %g, want %g", what, v, var);
}

/* Chi-square of n draws of a discrete law against its pmf.  Bins are the
 * values lo..hi whose expected count is at least 20, plus the two tails
 * (merged into the edge bins when they expect fewer than 5). */
typedef uint64_t (*DiscreteFn)(EngramRng *r, const double *arg);
typedef double (*PmfFn)(uint64_t k, const double *arg);

enum { MAXBIN = 4096 };

static void assert_chi_square(const char *what, DiscreteFn draw, PmfFn pmf, const double *arg,
                              int n)
{
    double expect[MAXBIN] = {0};
    long seen[MAXBIN] = {0};
    uint64_t lo = 0, hi;
    double below = 0.0, inside = 0.0;
    for (; pmf(lo, arg) * n < 20.0; lo++)
        below += pmf(lo, arg);
    for (hi = lo; hi - lo < MAXBIN - 3 && pmf(hi + 1, arg) * n >= 20.0; hi++)
        ;
    int nb = (int)(hi - lo) + 3; /* [0] below lo, [1..] lo..hi, [nb-1] above hi */
    for (uint64_t k = lo; k <= hi; k++) {
        expect[k - lo + 1] = pmf(k, arg) * n;
        inside += pmf(k, arg);
    }
    expect[0] = below * n;
    expect[nb - 1] = fmax(0.0, 1.0 - inside - below) * n;
    EngramRng r;
    engram_rng_init(&r, 77, 5, 6, 0);
    for (int i = 0; i < n; i++) {
        uint64_t k = draw(&r, arg);
        seen[k < lo ? 0 : k > hi ? nb - 1 : (int)(k - lo) + 1]++;
    }
    int first = 0, last = nb - 1;
    if (expect[0] < 5.0) { /* too few for chi-square: pool with the edge */
        expect[1] += expect[0];
        seen[1] += seen[0];
        first = 1;
    }
    if (expect[nb - 1] < 5.0) {
        expect[nb - 2] += expect[nb - 1];
        seen[nb - 2] += seen[nb - 1];
        last = nb - 2;
    }
    double chi2 = 0.0;
    for (int b = first; b <= last; b++)
        chi2 += (seen[b] - expect[b]) * (seen[b] - expect[b]) / expect[b];
    int dof = last - first;
    cr_assert(dof >= 1, "%s: too few bins", what);
    cr_assert(chi2 <= dof + 5.0 * sqrt(2.0 * dof), "%s(%g): chi2 %.1f for %d dof", what, arg[0],
              chi2, dof);
}

/* ---- uniforms -------------------------------------------------------------- */

static double draw_uniform(EngramRng *r, const double *arg)
{
    (void)arg;
    return engram_rng_uniform(r);
}

Test(rng, uniform_range_and_moments)
{
    EngramRng r;
    engram_rng_init(&r, 3, 0, 0, 0);
    for (int i = 0; i < 100000; i++) {
        double u = engram_rng_uniform(&r), v = engram_rng_uniform_pos(&r);
        cr_assert(u >= 0.0 && u < 1.0);
        cr_assert(v > 0.0 && v <= 1.0);
    }
    assert_moments("uniform", draw_uniform, NULL, 200000, 0.5, 1.0 / 12, 1.0 / 80 - 1.0 / 144);
}

Test(rng, uniform_histogram_chi_square)
{
    enum { BINS = 100, N = 1000000 };
    long count[BINS] = {0};
    EngramRng r;
    engram_rng_init(&r, 99, 1, 1, 0);
    for (int i = 0; i < N; i++)
        count[(int)(engram_rng_uniform(&r) * BINS)]++;
    double e = (double)N / BINS, chi2 = 0.0;
    for (int b = 0; b < BINS; b++)
        chi2 += (count[b] - e) * (count[b] - e) / e;
    cr_assert(chi2 <= 99 + 5.0 * sqrt(2.0 * 99), "chi2 %.1f", chi2);
}

Test(rng, below_is_uniform)
{
    enum { N = 700000 };
    long count[7] = {0};
    EngramRng r;
    engram_rng_init(&r, 5, 1, 1, 0);
    for (int i = 0; i < N; i++)
        count[engram_rng_below(&r, 7)]++;
    double chi2 = 0.0;
    for (int b = 0; b < 7; b++)
        chi2 += (count[b] - N / 7.0) * (count[b] - N / 7.0) / (N / 7.0);
    cr_assert(chi2 <= 6 + 5.0 * sqrt(12.0), "chi2 %.1f", chi2);
    cr_assert_eq(engram_rng_below(&r, 0), 0);
    cr_assert_eq(engram_rng_below(&r, 1), 0);
}

/* ---- continuous --------------------------------------------------------------- */

static double draw_normal(EngramRng *r, const double *arg)
{
    (void)arg;
    return engram_rng_normal(r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(rng, normal_moments_and_ks)
{
    assert_moments("normal", draw_normal, NULL, 200000, 0.0, 1.0, 2.0);
    enum { N = 100000 };
    double *x = malloc(N * sizeof *x);
    cr_assert_not_null(x);
    EngramRng r;
    engram_rng_init(&r, 12, 3, 4, 0);
    for (int i = 0; i < N; i++)
        x[i] = engram_rng_normal(&r);
    qsort(x, N, sizeof *x, cmp_double);
    double d = 0.0;
    for (int i = 0; i < N; i++) {
        double cdf = 0.5 * erfc(-x[i] / sqrt(2.0));
        d = fmax(d, fmax(fabs(cdf - (double)i / N), fabs((double)(i + 1) / N - cdf)));
    }
    free(x);
    /* Kolmogorov: P(sqrt(N) D > 1.95) ~ 0.001 */
    cr_assert(sqrt((double)N) * d < 1.95, "KS statistic %g", sqrt((double)N) * d);
}

static double draw_exponential(EngramRng *r, const double *arg)
{
    return engram_rng_exponential(r, arg[0]);
}

Test(rng, exponential)
{
    double rate = 2.5;
    assert_moments("exponential", draw_exponential, &rate, 200000, 1 / rate, 1 / (rate * rate),
                   8 / pow(rate, 4));
    EngramRng r;
    engram_rng_init(&r, 1, 1, 1, 0);
    cr_assert(isinf(engram_rng_exponential(&r, 0.0)));
    cr_assert(isnan(engram_rng_exponential(&r, -1.0)));
    cr_assert(isnan(engram_rng_exponential(&r, NAN)));
}

/* ---- Poisson -------------------------------------------------------------------- */

static uint64_t draw_poisson_u(EngramRng *r, const double *arg)
{
    return engram_rng_poisson(r, arg[0]);
}

static double draw_poisson(EngramRng *r, const double *arg)
{
    return (double)engram_rng_poisson(r, arg[0]);
}

static double pmf_poisson(uint64_t k, const double *arg)
{
    double lam = arg[0];
    return exp(-lam + (double)k * log(lam) - lgamma((double)k + 1.0));
}

Test(rng, poisson_moments)
{
    const double lambdas[] = {0.05, 0.5, 3.0, 9.99, 10.0, 25.0, 100.0, 1e4, 1e6, 1e12};
    for (size_t i = 0; i < sizeof lambdas / sizeof lambdas[0]; i++) {
        double lam = lambdas[i];
        assert_moments("poisson", draw_poisson, &lam, 100000, lam, lam, lam + 2 * lam * lam);
    }
}

/* Both sides of the switch between inversion and PTRS, and deep in PTRS. */
Test(rng, poisson_exact_pmf)
{
    const double lambdas[] = {0.3, 3.0, 9.5, 10.0, 15.0, 60.0, 400.0};
    for (size_t i = 0; i < sizeof lambdas / sizeof lambdas[0]; i++)
        assert_chi_square("poisson", draw_poisson_u, pmf_poisson, &lambdas[i], 400000);
}

Test(rng, poisson_edges)
{
    EngramRng r;
    engram_rng_init(&r, 1, 1, 1, 0);
    cr_assert_eq(engram_rng_poisson(&r, 0.0), 0);
    cr_assert_eq(engram_rng_poisson(&r, -3.0), 0);
    cr_assert_eq(engram_rng_poisson(&r, NAN), 0);
    cr_assert_eq(engram_rng_poisson(&r, INFINITY), UINT64_MAX);
    cr_assert_eq(engram_rng_poisson(&r, 1e30), UINT64_MAX);
}

/* ---- binomial -------------------------------------------------------------------- */

static uint64_t draw_binomial_u(EngramRng *r, const double *arg)
{
    return engram_rng_binomial(r, (uint64_t)arg[0], arg[1]);
}

static double draw_binomial(EngramRng *r, const double *arg)
{
    return (double)engram_rng_binomial(r, (uint64_t)arg[0], arg[1]);
}

static double pmf_binomial(uint64_t k, const double *arg)
{
    double n = arg[0], p = arg[1], kk = (double)k;
    if (kk > n)
        return 0.0;
    return exp(lgamma(n + 1) - lgamma(kk + 1) - lgamma(n - kk + 1) + kk * log(p) +
               (n - kk) * log1p(-p));
}

Test(rng, binomial_moments)
{
    const double cases[][2] = {{10, 0.3},   {1000, 0.002}, {100, 0.5},   {1000, 0.9},
                               {1e9, 0.3},  {50, 0.999},   {1e6, 1e-6},  {4000000000.0, 0.5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double n = cases[i][0], p = cases[i][1], q = 1 - p;
        double var = n * p * q;
        /* fourth central moment of the binomial: npq(1 + 3(n-2)pq) */
        double mu4 = n * p * q * (1 + 3 * (n - 2) * p * q);
        assert_moments("binomial", draw_binomial, cases[i], 100000, n * p, var, mu4 - var * var);
    }
}

Test(rng, binomial_exact_pmf)
{
    const double cases[][2] = {{50, 0.1}, {20, 0.45}, {100, 0.3}, {1000, 0.05}, {60, 0.8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_chi_square("binomial", draw_binomial_u, pmf_binomial, cases[i], 400000);
}

Test(rng, binomial_edges)
{
    EngramRng r;
    engram_rng_init(&r, 1, 1, 1, 0);
    cr_assert_eq(engram_rng_binomial(&r, 0, 0.5), 0);
    cr_assert_eq(engram_rng_binomial(&r, 10, 0.0), 0);
    cr_assert_eq(engram_rng_binomial(&r, 10, -1.0), 0);
    cr_assert_eq(engram_rng_binomial(&r, 10, NAN), 0);
    cr_assert_eq(engram_rng_binomial(&r, 10, 1.0), 10);
    cr_assert_eq(engram_rng_binomial(&r, UINT64_MAX, 1.0), UINT64_MAX);
    for (int i = 0; i < 1000; i++)
        cr_assert_leq(engram_rng_binomial(&r, 7, 0.7), 7);
}

/* ---- geometric --------------------------------------------------------------------- */

static uint64_t draw_geometric_u(EngramRng *r, const double *arg)
{
    return engram_rng_geometric(r, arg[0]);
}

static double draw_geometric(EngramRng *r, const double *arg)
{
    return (double)engram_rng_geometric(r, arg[0]);
}

static double pmf_geometric(uint64_t k, const double *arg)
{
    return arg[0] * pow(1 - arg[0], (double)k);
}

Test(rng, geometric)
{
    const double ps[] = {0.9, 0.3, 0.01};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double p = ps[i], q = 1 - p;
        double var = q / (p * p);
        /* fourth central moment of the failures count: q(p^2 + 9q)/p^4 */
        double mu4 = q * (p * p + 9 * q) / pow(p, 4);
        assert_moments("geometric", draw_geometric, &ps[i], 200000, q / p, var, mu4 - var * var);
        assert_chi_square("geometric", draw_geometric_u, pmf_geometric, &ps[i], 200000);
    }
    EngramRng r;
    engram_rng_init(&r, 1, 1, 1, 0);
    cr_assert_eq(engram_rng_geometric(&r, 1.0), 0);
    cr_assert_eq(engram_rng_geometric(&r, 0.0), UINT64_MAX);
    cr_assert_eq(engram_rng_geometric(&r, NAN), UINT64_MAX);
    cr_assert_geq(engram_rng_geometric(&r, 1e-300), 1000000); /* saturates, never wraps */
}

/* The precomputed variants draw exactly what the plain ones draw, so callers
 * may switch between them without changing a single spike. */
Test(rng, precomputed_variants_draw_the_same)
{
    const double ps[] = {1e-6, 0.02, 0.3, 0.999};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        EngramRng a, b;
        engram_rng_init(&a, 9, 2, 5, 0);
        engram_rng_init(&b, 9, 2, 5, 0);
        for (int i = 0; i < 1000; i++)
            cr_assert_eq(engram_rng_geometric(&a, ps[k]), engram_rng_geometric_log(&b, log1p(-ps[k])));
    }
    const double lambdas[] = {0.002, 0.5, 2.0, 9.9, 10.0, 40.0};
    for (size_t k = 0; k < sizeof lambdas / sizeof lambdas[0]; k++) {
        EngramRng a, b;
        engram_rng_init(&a, 3, 1, 7, 0);
        engram_rng_init(&b, 3, 1, 7, 0);
        for (int i = 0; i < 1000; i++)
            cr_assert_eq(engram_rng_poisson(&a, lambdas[k]),
                         engram_rng_poisson_small(&b, lambdas[k], exp(-lambdas[k])));
    }
}

/* The batched Poisson draws of drives (one generator per neuron) give the
 * count engram_rng_poisson_small gives, generator by generator, on every
 * code path (one block at a time, AVX2, AVX-512 where the CPU has them),
 * for any batch length and offset (vector tails), for rates where the
 * search goes past the table's fixed part, and for 64-bit seeds and
 * counters. */
Test(rng, poisson_batches_draw_the_same)
{
    const double lambdas[] = {1e-9, 0.002, 0.3, 2.0, 5.5, 9.99};
    const uint64_t seeds[] = {1, 0x9e3779b97f4a7c15u};
    const uint32_t lens[] = {0, 1, 3, 4, 7, 8, 9, 31, 256};
    double k[256];
    for (size_t l = 0; l < sizeof lambdas / sizeof *lambdas; l++) {
        EngramPoissonInv t;
        cr_assert_eq(engram_poisson_inv_init(&t, lambdas[l]), ENGRAM_CORE_OK);
        cr_assert_leq(t.nfast, t.kmax + 3);
        for (int isa = 0; isa <= 2; isa++)
            for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++)
                for (size_t n = 0; n < sizeof lens / sizeof *lens; n++)
                    for (uint64_t step = 0; step < 40; step++) {
                        uint64_t ctr = (step << 32) | (step & 3);
                        uint32_t index0 = (uint32_t)(step * 977 + n);
                        engram_poisson_inv_draw_isa(&t, isa, seeds[s], 7, index0, ctr, lens[n], k);
                        for (uint32_t i = 0; i < lens[n]; i++) {
                            EngramRng r;
                            engram_rng_init(&r, seeds[s], 7, index0 + i, ctr);
                            uint64_t want = engram_rng_poisson_small(&r, lambdas[l], exp(-lambdas[l]));
                            cr_assert_eq(k[i], (double)want,
                                         "lambda %g isa %d seed %zu len %u step %llu neuron %u: "
                                         "%g, want %llu", lambdas[l], isa, s, lens[n],
                                         (unsigned long long)step, i, k[i],
                                         (unsigned long long)want);
                        }
                    }
        engram_poisson_inv_free(&t);
    }
    EngramPoissonInv t;
    cr_assert_eq(engram_poisson_inv_init(&t, 10.0), ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_poisson_inv_init(&t, 0.0), ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_poisson_inv_init(&t, NAN), ENGRAM_CORE_EINVAL);
    cr_assert_null(t.cdf);
}
