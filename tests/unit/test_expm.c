/*
 * test_expm.c - the matrix exponential against closed forms: diagonal and
 * nilpotent matrices, rotations, the propagator of a LIF neuron with an
 * exponential synapse (including tau_m == tau_syn, where the closed form
 * changes shape), the augmented matrix of an affine system, and identities
 * (exp(A) exp(-A) = I, exp(A s) exp(A t) = exp(A (s+t))) on larger inputs.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "rt_core.h"

#define MAXN ENGRAM_EXPM_MAX_N

/* |got - want| <= tol * max(1, |want|), entry by entry. */
static void assert_matrix(int n, const double *got, const double *want, double tol)
{
    for (int i = 0; i < n * n; i++) {
        double scale = fmax(1.0, fabs(want[i]));
        cr_assert(fabs(got[i] - want[i]) <= tol * scale, "entry (%d,%d): %.17g, want %.17g",
                  i / n, i % n, got[i], want[i]);
    }
}

static void expm_ok(int n, const double *a, double *e)
{
    cr_assert_eq(engram_expm(n, a, e), 0, "expm failed");
}

Test(expm, diagonal)
{
    double a[9] = {-0.5, 0, 0, 0, 2.0, 0, 0, 0, -30.0}, e[9];
    double want[9] = {exp(-0.5), 0, 0, 0, exp(2.0), 0, 0, 0, exp(-30.0)};
    expm_ok(3, a, e);
    assert_matrix(3, e, want, 1e-14);
}

Test(expm, zero_and_scalar)
{
    double z[4] = {0}, e[4], id[4] = {1, 0, 0, 1};
    expm_ok(2, z, e);
    assert_matrix(2, e, id, 0.0);
    double a = -1e-3, x;
    expm_ok(1, &a, &x);
    cr_assert(fabs(x - exp(-1e-3)) <= 1e-16);
}

Test(expm, rotation)
{
    for (double th = 0.1; th < 40.0; th *= 3.0) {
        double a[4] = {0, -th, th, 0}, e[4];
        double want[4] = {cos(th), -sin(th), sin(th), cos(th)};
        expm_ok(2, a, e);
        assert_matrix(2, e, want, 1e-12);
    }
}

/* A Jordan block with eigenvalue lam: exp = e^lam * sum N^k / k!. */
Test(expm, jordan_block)
{
    double lam = -2.0, a[16] = {0}, e[16], want[16] = {0};
    for (int i = 0; i < 4; i++) {
        a[i * 4 + i] = lam;
        if (i < 3)
            a[i * 4 + i + 1] = 1.0;
    }
    const double inv_fact[4] = {1, 1, 0.5, 1.0 / 6};
    for (int i = 0; i < 4; i++)
        for (int j = i; j < 4; j++)
            want[i * 4 + j] = exp(lam) * inv_fact[j - i];
    expm_ok(4, a, e);
    assert_matrix(4, e, want, 1e-14);
}

/* LIF membrane with an exponentially decaying synaptic current, state (v, I):
 *   dv/dt = -v/tau_m + I/C,  dI/dt = -I/tau_s.
 * exp(A h) = [[e^{-h/tau_m}, P], [0, e^{-h/tau_s}]] with
 *   P = (e^{-h/tau_m} - e^{-h/tau_s}) / (C (1/tau_s - 1/tau_m)),
 * which tends to (h/C) e^{-h/tau} when tau_m == tau_s == tau. */
static void lif_propagator(double tau_m, double tau_s, double c, double h, double e[4])
{
    double a[4] = {-h / tau_m, h / c, 0.0, -h / tau_s};
    expm_ok(2, a, e);
}

Test(expm, lif_exponential_synapse)
{
    double tau_m = 20.0, tau_s = 5.0, c = 250.0, h = 0.1, e[4];
    lif_propagator(tau_m, tau_s, c, h, e);
    double p = (exp(-h / tau_m) - exp(-h / tau_s)) / (c * (1 / tau_s - 1 / tau_m));
    double want[4] = {exp(-h / tau_m), p, 0.0, exp(-h / tau_s)};
    assert_matrix(2, e, want, 1e-15);
    cr_assert(fabs(e[1] - p) <= 1e-13 * p, "coupling %.17g, want %.17g", e[1], p);
}

Test(expm, lif_degenerate_tau_equal)
{
    double tau = 10.0, c = 250.0;
    for (double h = 0.1; h <= 100.0; h *= 10.0) {
        double e[4];
        lif_propagator(tau, tau, c, h, e);
        /* (h/C) e^{-h/tau} = (tau/C) * (h/tau) e^{-h/tau} */
        double p = (tau / c) * (h / tau) * exp(-h / tau);
        double want[4] = {exp(-h / tau), p, 0.0, exp(-h / tau)};
        assert_matrix(2, e, want, 1e-14);
        cr_assert(fabs(e[1] - p) <= 1e-12 * p, "h=%g: coupling %.17g, want %.17g", h, e[1], p);
        /* nearly equal time constants: no cancellation in the coupling */
        lif_propagator(tau * (1 + 1e-9), tau, c, h, e);
        cr_assert(fabs(e[1] - p) <= 1e-8 * p, "h=%g near-degenerate: %.17g vs %.17g", h, e[1], p);
    }
}

/* x' = A x + b through the augmented matrix M = [[A, b], [0, 0]] (times t):
 * exp(M t) = [[e^{At}, A^{-1}(e^{At} - I) b], [0, 1]].  Here A is the LIF
 * matrix above with a leak towards E_L and a constant current:
 *   dv/dt = (E_L - v)/tau_m + I/C, dI/dt = -I/tau_s + I0/tau_s. */
Test(expm, affine_augmented)
{
    double tau_m = 20.0, tau_s = 5.0, c = 250.0, el = -70.0, i0 = 300.0, t = 3.7;
    double m[9] = {-t / tau_m, t / c, t * el / tau_m,
                   0.0, -t / tau_s, t * i0 / tau_s,
                   0.0, 0.0, 0.0};
    double e[9];
    expm_ok(3, m, e);
    /* closed form: I(t) -> I0 with tau_s; v(t) from the LIF solution */
    double v0 = -65.0, cur0 = 50.0;
    double em = exp(-t / tau_m), es = exp(-t / tau_s);
    double vinf = el + i0 * tau_m / c;
    double ix = cur0 - i0; /* transient of I */
    double coup = (em - es) / (c * (1 / tau_s - 1 / tau_m));
    double v_want = vinf + (v0 - vinf) * em + ix * coup;
    double i_want = i0 + ix * es;
    double v_got = e[0] * v0 + e[1] * cur0 + e[2];
    double i_got = e[3] * v0 + e[4] * cur0 + e[5];
    cr_assert(fabs(v_got - v_want) <= 1e-12 * fabs(v_want), "v %.17g, want %.17g", v_got, v_want);
    cr_assert(fabs(i_got - i_want) <= 1e-12 * fabs(i_want), "I %.17g, want %.17g", i_got, i_want);
    double last_row[3] = {0.0, 0.0, 1.0};
    for (int j = 0; j < 3; j++)
        cr_assert(fabs(e[6 + j] - last_row[j]) <= 1e-15);
}

/* The general formula with A invertible: A^{-1}(e^{At} - I) b, checked on a
 * 2x2 with complex eigenvalues. */
Test(expm, affine_formula)
{
    double a[4] = {-0.3, 1.2, -0.8, -0.1}, b[2] = {0.7, -1.1}, t = 2.0;
    double m[9] = {a[0] * t, a[1] * t, b[0] * t, a[2] * t, a[3] * t, b[1] * t, 0, 0, 0};
    double at[4] = {a[0] * t, a[1] * t, a[2] * t, a[3] * t}, eat[4], e[9];
    expm_ok(2, at, eat);
    expm_ok(3, m, e);
    double r[2] = {(eat[0] - 1) * b[0] + eat[1] * b[1], eat[2] * b[0] + (eat[3] - 1) * b[1]};
    double det = a[0] * a[3] - a[1] * a[2];
    double want[2] = {(a[3] * r[0] - a[1] * r[1]) / det, (-a[2] * r[0] + a[0] * r[1]) / det};
    cr_assert(fabs(e[2] - want[0]) <= 1e-13 && fabs(e[5] - want[1]) <= 1e-13,
              "(%.17g, %.17g), want (%.17g, %.17g)", e[2], e[5], want[0], want[1]);
    double top[4] = {e[0], e[1], e[3], e[4]};
    assert_matrix(2, top, eat, 1e-14);
}

/* Scaling and squaring: a large stiff norm on a known closed form. */
Test(expm, large_norm_scaling)
{
    double a[4] = {-300.0, 1.0, 0.0, -300.0}, e[4];
    double want[4] = {exp(-300.0), exp(-300.0), 0.0, exp(-300.0)};
    expm_ok(2, a, e);
    for (int i = 0; i < 4; i++)
        cr_assert(fabs(e[i] - want[i]) <= 1e-12 * exp(-300.0), "entry %d: %g, want %g", i, e[i],
                  want[i]);
}

static void mat_mul(int n, const double *a, const double *b, double *c)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
}

/* A fixed pseudo-random matrix with entries in [-w, w]. */
static void fill(int n, double w, double *a)
{
    EngramRng r;
    engram_rng_init(&r, 2024, 0, (uint32_t)n, 0);
    for (int i = 0; i < n * n; i++)
        a[i] = w * (2.0 * engram_rng_uniform(&r) - 1.0);
}

Test(expm, inverse_identity_32)
{
    static double a[MAXN * MAXN], neg[MAXN * MAXN], e[MAXN * MAXN], f[MAXN * MAXN],
        p[MAXN * MAXN], id[MAXN * MAXN];
    int n = MAXN;
    fill(n, 0.5, a);
    for (int i = 0; i < n * n; i++) {
        neg[i] = -a[i];
        id[i] = (i / n == i % n);
    }
    expm_ok(n, a, e);
    expm_ok(n, neg, f);
    mat_mul(n, e, f, p);
    assert_matrix(n, p, id, 1e-11);
}

Test(expm, semigroup)
{
    int n = 6;
    double a[36], as[36], at[36], ast[36], es[36], et[36], est[36], prod[36];
    fill(n, 1.5, a);
    for (int i = 0; i < 36; i++) {
        as[i] = 0.7 * a[i];
        at[i] = 1.9 * a[i];
        ast[i] = 2.6 * a[i];
    }
    expm_ok(n, as, es);
    expm_ok(n, at, et);
    expm_ok(n, ast, est);
    mat_mul(n, es, et, prod);
    assert_matrix(n, prod, est, 1e-11);
}

Test(expm, output_may_alias_input)
{
    double a[4] = {0, -1, 1, 0};
    double want[4] = {cos(1.0), -sin(1.0), sin(1.0), cos(1.0)};
    cr_assert_eq(engram_expm(2, a, a), 0);
    assert_matrix(2, a, want, 1e-14);
}

Test(expm, bad_input)
{
    double a[4] = {0, 0, 0, 0}, e[4];
    cr_assert_eq(engram_expm(0, a, e), -1);
    cr_assert_eq(engram_expm(-3, a, e), -1);
    cr_assert_eq(engram_expm(MAXN + 1, a, e), -1);
    cr_assert_eq(engram_expm(2, NULL, e), -1);
    cr_assert_eq(engram_expm(2, a, NULL), -1);
    a[3] = NAN;
    cr_assert_eq(engram_expm(2, a, e), -1);
    a[3] = INFINITY;
    cr_assert_eq(engram_expm(2, a, e), -1);
    a[3] = 1000.0; /* e^1000 overflows: refused rather than inf */
    cr_assert_eq(engram_expm(2, a, e), -1);
}
