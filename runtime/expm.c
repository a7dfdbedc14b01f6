/*
 * expm.c - the matrix exponential, for exact propagators.
 *
 * A linear ODE system x' = A x + b with constant coefficients advances one
 * step by exp(A dt) (with b folded into an augmented matrix [[A, b], [0, 0]]).
 * The simulator computes it at start-up, after --set overrides, so it runs
 * rarely and on small matrices (n <= ENGRAM_EXPM_MAX_N); we favour accuracy
 * and simplicity over speed: always the degree-13 Padé approximant with
 * scaling and squaring (Higham, "The scaling and squaring method for the
 * matrix exponential revisited", SIAM J. Matrix Anal. Appl. 26, 2005), which
 * handles repeated eigenvalues (tau_m == tau_syn) with no special case.
 *
 * Order: small matrix helpers, the linear solve, the Padé step, engram_expm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_core.h"

/* Higham's theta_13: the largest 1-norm for which Padé 13 is accurate to
 * double precision without scaling. */
#define PADE13_THETA 5.371920351148152

/* Coefficients b_0..b_13 of the [13/13] Padé approximant of exp. */
static const double pade13[14] = {
    64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
    129060195264000.0,   10559470521600.0,    670442572800.0,     33522128640.0,
    1323241920.0,        40840800.0,          960960.0,           16380.0,
    182.0,               1.0,
};

/* ---- helpers on row-major n x n matrices -------------------------------- */

static void mat_mul(int n, const double *a, const double *b, double *c)
{
    for (int i = 0; i < n; i++) {
        double *ci = c + i * n;
        for (int j = 0; j < n; j++)
            ci[j] = 0.0;
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++)
                ci[j] += aik * b[k * n + j];
        }
    }
}

/* out = c6*A6 + c4*A4 + c2*A2 + c0*I */
static void mat_comb(int n, double *out, const double *a6, const double *a4, const double *a2,
                     const double c[4])
{
    for (int i = 0; i < n * n; i++)
        out[i] = c[3] * a6[i] + c[2] * a4[i] + c[1] * a2[i];
    for (int i = 0; i < n; i++)
        out[i * n + i] += c[0];
}

static double norm1(int n, const double *a)
{
    double best = 0.0;
    for (int j = 0; j < n; j++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += fabs(a[i * n + j]);
        if (s > best)
            best = s;
    }
    return best;
}

static bool all_finite(int n, const double *a)
{
    for (int i = 0; i < n * n; i++)
        if (!isfinite(a[i]))
            return false;
    return true;
}

/* ---- linear solve -------------------------------------------------------- */

static void swap_rows(int n, double *m, int i, int j)
{
    for (int k = 0; k < n; k++) {
        double t = m[i * n + k];
        m[i * n + k] = m[j * n + k];
        m[j * n + k] = t;
    }
}

/* Solves P X = Q in place (Q becomes X) by Gaussian elimination with partial
 * pivoting; P is destroyed.  Returns -1 when P is singular. */
static int solve(int n, double *p, double *q)
{
    for (int col = 0; col < n; col++) {
        int piv = col;
        for (int i = col + 1; i < n; i++)
            if (fabs(p[i * n + col]) > fabs(p[piv * n + col]))
                piv = i;
        if (p[piv * n + col] == 0.0)
            return -1;
        if (piv != col) {
            swap_rows(n, p, col, piv);
            swap_rows(n, q, col, piv);
        }
        for (int i = col + 1; i < n; i++) {
            double f = p[i * n + col] / p[col * n + col];
            for (int j = col; j < n; j++)
                p[i * n + j] -= f * p[col * n + j];
            for (int j = 0; j < n; j++)
                q[i * n + j] -= f * q[col * n + j];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int k = i + 1; k < n; k++)
            for (int j = 0; j < n; j++)
                q[i * n + j] -= p[i * n + k] * q[k * n + j];
        for (int j = 0; j < n; j++)
            q[i * n + j] /= p[i * n + i];
    }
    return 0;
}

/* ---- Padé 13 ----------------------------------------------------------- */

/* r13(A) = (V - U)^{-1} (V + U) with U odd and V even in A (Higham 2005,
 * eq. 10.3); the result goes to e.  w is scratch for 6 matrices. */
static int pade13_eval(int n, const double *a, double *e, double *w)
{
    size_t nn = (size_t)n * (size_t)n;
    double *a2 = w, *a4 = w + nn, *a6 = w + 2 * nn, *u = w + 3 * nn, *v = w + 4 * nn;
    double *t = w + 5 * nn;
    const double *b = pade13;
    mat_mul(n, a, a, a2);
    mat_mul(n, a2, a2, a4);
    mat_mul(n, a4, a2, a6);
    mat_comb(n, t, a6, a4, a2, (const double[4]){0.0, b[9], b[11], b[13]});
    mat_mul(n, a6, t, u);
    mat_comb(n, t, a6, a4, a2, (const double[4]){b[1], b[3], b[5], b[7]});
    for (size_t i = 0; i < nn; i++)
        t[i] += u[i];
    mat_mul(n, a, t, u);
    mat_comb(n, t, a6, a4, a2, (const double[4]){0.0, b[8], b[10], b[12]});
    mat_mul(n, a6, t, v);
    mat_comb(n, t, a6, a4, a2, (const double[4]){b[0], b[2], b[4], b[6]});
    for (size_t i = 0; i < nn; i++) {
        v[i] += t[i];
        e[i] = v[i] + u[i]; /* right-hand side */
        t[i] = v[i] - u[i]; /* matrix */
    }
    return solve(n, t, e);
}

/* ---- the exponential ----------------------------------------------------- */

/* Number of squarings s so that ||A / 2^s||_1 <= theta_13. */
static int squarings(double norm)
{
    if (norm <= PADE13_THETA)
        return 0;
    int s = (int)ceil(log2(norm / PADE13_THETA));
    return s < 0 ? 0 : s;
}

int engram_expm(int n, const double *A, double *E)
{
    if (n < 1 || n > ENGRAM_EXPM_MAX_N || !A || !E || !all_finite(n, A))
        return -1;
    size_t nn = (size_t)n * (size_t)n;
    double *w = malloc(8 * nn * sizeof *w); /* scaled A, result, 6 scratch */
    if (!w)
        return -1;
    double *as = w, *r = w + nn;
    int s = squarings(norm1(n, A));
    double scale = ldexp(1.0, -s);
    for (size_t i = 0; i < nn; i++)
        as[i] = A[i] * scale;
    int rc = pade13_eval(n, as, r, w + 2 * nn);
    for (int i = 0; i < s && rc == 0; i++) {
        mat_mul(n, r, r, as); /* as is free now: use it as the product */
        memcpy(r, as, nn * sizeof *r);
    }
    if (rc == 0 && !all_finite(n, r))
        rc = -1;
    if (rc == 0)
        memcpy(E, r, nn * sizeof *E);
    free(w);
    return rc;
}
