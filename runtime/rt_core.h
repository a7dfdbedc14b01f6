/*
 * rt_core.h - internal header for the runtime's numeric core: the
 * counter-based random number generator (rng.c), the matrix exponential that
 * builds exact propagators (expm.c) and connectivity generation with the
 * synapse CSR (connect.c).  Not seen by generated code (that is engram_rt.h).
 *
 * Everything here is pure or works on caller-owned state: no globals, so any
 * number of threads or ranks may call it at once.  Functions that can fail
 * return 0 on success or a negative ENGRAM_CORE_E* code.
 *
 * Sections: status codes, random numbers, matrix exponential, connectivity.
 */
#ifndef ENGRAM_RT_CORE_H
#define ENGRAM_RT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- status codes ---------------------------------------------------- */

enum {
    ENGRAM_CORE_OK = 0,
    ENGRAM_CORE_EINVAL = -1, /* bad argument: NaN, out of range, size mismatch */
    ENGRAM_CORE_ENOMEM = -2, /* allocation failed or a size overflowed */
    ENGRAM_CORE_ERANGE = -3, /* more synapses than a 32-bit index holds */
};

/* ---- random numbers (rng.c) ------------------------------------------ */

/* One Philox4x32-10 block (Salmon et al. 2011): out = bijection_key(ctr). */
void engram_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

/* A stream of words from Philox: key = seed, counter = {stream, index,
 * counter lo, counter hi}.  Each block of 4 words increments the 64-bit
 * counter, so one (seed, stream, index) owns 2^64 blocks. */
typedef struct EngramRng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int avail; /* words of buf not yet handed out (they go buf[0] first) */
} EngramRng;

void engram_rng_init(EngramRng *r, uint64_t seed, uint32_t stream, uint32_t index,
                     uint64_t counter0);

/* The generator for per-synapse draws (weights, delays): index = target and
 * the synapse's rank k among its target's sources picks counter k << 32, so
 * every synapse owns 2^32 blocks and draws never overlap between synapses. */
void engram_rng_init_synapse(EngramRng *r, uint64_t seed, uint32_t stream,
                             uint32_t target, uint32_t rank);

uint32_t engram_rng_u32(EngramRng *r);
double engram_rng_uniform(EngramRng *r);     /* [0,1), 53 bits from two words */
double engram_rng_uniform_pos(EngramRng *r); /* (0,1] */
uint32_t engram_rng_below(EngramRng *r, uint32_t n); /* uniform in [0,n), unbiased; 0 if n == 0 */
double engram_rng_normal(EngramRng *r);      /* N(0,1), Box-Muller: 4 words per call */
double engram_rng_exponential(EngramRng *r, double rate); /* mean 1/rate; rate 0 -> inf; rate < 0 or NaN -> NaN */
uint64_t engram_rng_poisson(EngramRng *r, double lambda); /* exact; lambda <= 0 or NaN -> 0 */
uint64_t engram_rng_binomial(EngramRng *r, uint64_t n, double p); /* exact; p clamped to [0,1], NaN -> 0 */
/* Failures before the first success, p in (0,1]; p <= 0 or NaN -> UINT64_MAX
 * ("never"), and draws beyond 2^64 saturate to UINT64_MAX. */
uint64_t engram_rng_geometric(EngramRng *r, double p);
/* The same draws as engram_rng_geometric for p in (0, 1), given log1p(-p)
 * computed once (connectivity draws millions with one p). */
uint64_t engram_rng_geometric_log(EngramRng *r, double log1p_neg_p);
/* The same draws as engram_rng_poisson, given exp(-lambda) computed once
 * (drives draw once per neuron and step with one lambda). */
uint64_t engram_rng_poisson_small(EngramRng *r, double lambda, double exp_neg_lambda);

/* Poisson(lambda), 0 < lambda < 10, by a table of the inversion that
 * engram_rng_poisson_small does: the same count for the same first uniform,
 * without its sequential search. */
typedef struct EngramPoissonInv {
    double *cdf;        /* kmax sums P(K <= k), added up exactly as the search adds them,
                           then 4 x +inf */
    uint32_t kmax;      /* the search gives up here (the terms underflow, or k = 1000) */
    uint32_t nfast;     /* entries compared for every draw (a multiple of 4); beyond them,
                           a search */
} EngramPoissonInv;

/* ENGRAM_CORE_EINVAL unless 0 < lambda < 10; ENGRAM_CORE_ENOMEM. */
int engram_poisson_inv_init(EngramPoissonInv *t, double lambda);
void engram_poisson_inv_free(EngramPoissonInv *t);
/* k[i] = the count that engram_rng_poisson_small(lambda) draws from the
 * generator (seed, stream, index0 + i, counter0), as a double, for i < n:
 * the same counts, many Philox blocks at once (AVX2, AVX-512 where the CPU
 * has them). */
void engram_poisson_inv_draw_n(const EngramPoissonInv *t, uint64_t seed, uint32_t stream,
                               uint32_t index0, uint64_t counter0, uint32_t n, double *k);
/* The same with the widest code path capped (tests): 0 one block at a
 * time, 1 AVX2, 2 AVX-512; a path the CPU lacks falls back to the next. */
void engram_poisson_inv_draw_isa(const EngramPoissonInv *t, int isa, uint64_t seed,
                                 uint32_t stream, uint32_t index0, uint64_t counter0, uint32_t n,
                                 double *k);

/* ---- matrix exponential (expm.c) ------------------------------------- */

#define ENGRAM_EXPM_MAX_N 32 /* largest ODE system (+1 for the affine term) we integrate exactly */

/* E = exp(A), both row-major n x n (E may alias A).  Returns 0, or -1 when
 * n is outside [1, ENGRAM_EXPM_MAX_N], A holds NaN/inf, the result overflows
 * or memory runs out. */
int engram_expm(int n, const double *A, double *E);

/* ---- connectivity (connect.c) ---------------------------------------- */

/* Same values as EngramConnKind in engram_rt.h, so the engine can cast. */
typedef enum EngramConnRule {
    ENGRAM_CONN_RANDOM = 0,     /* p_or_k = p: each pair independently */
    ENGRAM_CONN_FIXED_INDEGREE, /* p_or_k = k: k distinct sources per target */
    ENGRAM_CONN_ONE_TO_ONE,
    ENGRAM_CONN_ALL_TO_ALL,
} EngramConnRule;

typedef struct EngramU32Vec {
    uint32_t *data;
    size_t len, cap;
} EngramU32Vec;

int engram_u32vec_reserve(EngramU32Vec *v, size_t extra); /* room for len + extra */
int engram_u32vec_push(EngramU32Vec *v, uint32_t x);
void engram_u32vec_free(EngramU32Vec *v); /* leaves an empty, reusable vector */

/* Appends to out the sorted, distinct sources of `target`.  Drawn from
 * RNG(seed, stream, target, 0..), so the list depends on nothing but its
 * arguments: not on which targets were done before, nor by whom.
 * random: p in [0,1], geometric skipping (O(#synapses)); fixed_indegree: k
 * (finite, >= 0, rounded to nearest) capped at the available sources;
 * one_to_one needs nsrc == ntgt.  When same_population && !autapses the
 * target is never its own source (so one_to_one onto itself is empty).
 * Returns 0, ENGRAM_CORE_EINVAL (bad p/k, target >= ntgt, size mismatch) or
 * ENGRAM_CORE_ENOMEM; on error out->len is as it was. */
int engram_connect_sources(EngramConnRule rule, double p_or_k, uint64_t seed, uint32_t stream,
                           uint32_t nsrc, uint32_t ntgt, uint32_t target, bool same_population,
                           bool autapses, EngramU32Vec *out);

/* The same arguments as one value, to pass through the CSR builder. */
typedef struct EngramConnSpec {
    EngramConnRule rule;
    double p_or_k;
    uint64_t seed;
    uint32_t stream;
    uint32_t nsrc, ntgt;
    bool same_population, autapses;
    /* ensemble endpoints: when windowed, only sources [src_lo, src_hi) and
     * targets [tgt_lo, tgt_hi) take part; the rule runs as if over those
     * ranges alone (one_to_one pairs them in order) */
    bool windowed;
    uint32_t src_lo, src_hi, tgt_lo, tgt_hi;
} EngramConnSpec;

/* Produces the sorted, distinct sources of one target by appending to out.
 * Must be a pure function of (ctx, target): the builder calls it twice. */
typedef int (*EngramSourcesFn)(void *ctx, uint32_t target, EngramU32Vec *out);

/* An EngramSourcesFn over an EngramConnSpec (ctx points to the spec). */
int engram_connect_spec_sources(void *spec, uint32_t target, EngramU32Vec *out);

/* Number of synapses of the given targets, without storing them (for
 * --dry-run memory estimates): O(1) per target for all rules but random. */
int engram_connect_count(const EngramConnSpec *spec, const uint32_t *targets, size_t ntargets,
                         uint64_t *nsyn);

/* Synapses in source-major order: those of source s are row[s]..row[s+1]-1,
 * their targets col[] ascending within the row.  Offsets are 64-bit because
 * one projection may hold more than 2^32 synapses. */
typedef struct EngramCsr {
    uint64_t *row;             /* nsrc + 1 */
    uint32_t *col;             /* nsyn: target of each synapse */
    uint32_t *syn_target_rank; /* nsyn, optional: k such that the synapse is the
                                  k-th source of its target (target-major order);
                                  weights/delays use engram_rng_init_synapse(col, k) */
    uint64_t *tgt_row;         /* ntgt + 1, optional (with tgt_order) */
    uint32_t *tgt_order;       /* nsyn, optional: the post-side index, the synapses
                                  of target t are tgt_order[tgt_row[t]..tgt_row[t+1]-1],
                                  ascending source (for `on post` handlers); 32-bit,
                                  so nsyn < 2^32 with it */
    uint32_t nsrc, ntgt;
    uint64_t nsyn;
} EngramCsr;

enum {
    ENGRAM_CSR_RANK = 1u << 0,       /* fill syn_target_rank */
    ENGRAM_CSR_POST_INDEX = 1u << 1, /* fill tgt_row and tgt_order */
};

/* Builds the CSR of the synapses onto `targets` (any order, no duplicates,
 * each < ntgt): a rank passes only the targets it owns; NULL means all of
 * 0..ntgt-1 (ntargets is then ignored).  col[] holds global target ids.  Calls sources(ctx, t, ...) twice per target: once to count,
 * once to fill, so nothing is held in target-major order.  The result does
 * not depend on the order of `targets`.  ENGRAM_CORE_ERANGE: the post-side
 * index was asked for more than 2^32 - 1 synapses.  On error *out is zeroed. */
int engram_csr_build(uint32_t nsrc, uint32_t ntgt, const uint32_t *targets, size_t ntargets,
                     EngramSourcesFn sources, void *ctx, unsigned flags, EngramCsr *out);

void engram_csr_free(EngramCsr *csr); /* frees the arrays and zeroes *csr */

#endif
