/*
 * floor.c - what this machine can do at best for spike delivery, single thread.
 *
 *   floor [--quick] [--reps N] [--only stream|sweep|net]   -> one JSON document on stdout
 *
 * Three measurements:
 *
 * stream   Streaming memory bandwidth over arrays far larger than the caches:
 *          read (sum of a u32 array), read+write (copy b -> a; 2 x size bytes,
 *          write-allocate not counted) and the STREAM triad a = b + s c on doubles
 *          (3 x size bytes, counted the STREAM way, comparable with
 *          shared/bench/limits).  GB/s = 1e9 bytes per second.
 *
 * scatter  Random scatter-add, the access pattern of spike delivery: a synapse
 *          table stored CSR-like as two streamed arrays, u32 col[k] and f32 w[k]
 *          (8 bytes per synapse), cut into rows of K synapses (a row = the
 *          out-going synapses of one presynaptic neuron); rows are visited in a
 *          random order (the spikes of random neurons) and every synapse does
 *              target[col[k]] += w[k]
 *          into a target array of T floats or doubles (a neuron's input slot)
 *          with col uniformly random in [0, T).  "ns per event" = time / synapses
 *          visited.  A 4-byte variant ("w4": col only, constant weight, the
 *          layout of a projection with one weight) is measured for the network
 *          shapes too.
 *
 *   sweep  T from 4 Ki to 64 Mi elements (16 KiB ... 512 MiB of target), with
 *          a table of 64 Mi synapses (512 MiB, larger than any cache) read
 *          front to back (rows in order: the synapse arrays purely streamed):
 *          how the cost of the random target access alone rises as the target
 *          array leaves L1, L2, L3.
 *   net    shaped like the benchmark networks: T = N neurons and a table of
 *          N x K synapses (so both the table and the target grow with N, as in
 *          CUBA/COBA with the in-degree fixed at 80): N = 4000, 16000, 64000,
 *          256000 with K = 80, and Brunel's N = 12500 with K = 1250.  Rows are
 *          visited as a simulator visits them: per time step, the rows of
 *          max(1, N / 500) random neurons (20 Hz at dt = 0.1 ms) in ascending
 *          order (a sorted spike list).  This is the per-size floor the
 *          harness compares against.
 *
 * Every figure is the median of REPS timed repetitions after one untimed
 * warm-up (min and max given too).  Timing: CLOCK_MONOTONIC.
 *
 * Build: gcc -O3 -march=native -o floor floor.c     (bench/run.sh does this)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- random numbers (splitmix64; quality is ample for index generation) ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static inline uint64_t rnd64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint32_t rnd_below(uint64_t n)
{
    return (uint32_t)(((rnd64() >> 32) * n) >> 32);
}

/* ---- helpers ---------------------------------------------------------------- */

static void *xalloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "floor: out of memory (%zu bytes)\n", bytes);
        exit(4);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

typedef struct Stat {
    double med, min, max;
} Stat;

static Stat stats(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    Stat s = {n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), t[0], t[n - 1]};
    return s;
}

static volatile double sink;   /* keeps results alive */

/* ---- stream ----------------------------------------------------------------- */

static void stream(size_t mib, int reps, int first)
{
    size_t n32 = mib << 18;                 /* u32 elements in mib MiB */
    size_t n64 = mib << 17;                 /* doubles in mib MiB */
    uint32_t *a = xalloc(mib << 20), *b = xalloc(mib << 20);
    double *c = xalloc(mib << 20);
    for (size_t i = 0; i < n32; i++) {
        a[i] = (uint32_t)i;
        b[i] = (uint32_t)(i * 7);
    }
    for (size_t i = 0; i < n64; i++)
        c[i] = 0.5;
    double *t = malloc(sizeof(double) * (size_t)(reps + 1));
    double bytes = (double)(mib << 20);

    /* read: integer sum vectorises without reassociation concerns */
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        uint64_t s = 0;
        for (size_t i = 0; i < n32; i++)
            s += b[i];
        t[r] = now() - t0;
        sink += (double)s;
    }
    Stat rd = stats(t + 1, reps);
    /* read + write: copy */
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < n32; i++)
            a[i] = b[i] + 1;
        t[r] = now() - t0;
        sink += a[n32 / 3];
    }
    Stat cp = stats(t + 1, reps);
    /* STREAM triad on doubles (a, b reused as doubles: 3 arrays of mib MiB) */
    double *x = (double *)(void *)a, *y = (double *)(void *)b;
    for (size_t i = 0; i < n64; i++)
        y[i] = 1.0;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < n64; i++)
            x[i] = y[i] + 3.0 * c[i];
        t[r] = now() - t0;
        sink += x[n64 / 5];
    }
    Stat tr = stats(t + 1, reps);
    printf("%s\n  \"stream\": {\"mib_per_array\": %zu, \"reps\": %d,\n"
           "    \"read_gbs\": %.2f, \"read_gbs_best\": %.2f,\n"
           "    \"copy_gbs\": %.2f, \"copy_gbs_best\": %.2f,\n"
           "    \"triad_gbs\": %.2f, \"triad_gbs_best\": %.2f,\n"
           "    \"note\": \"read: bytes read / s; copy: (read + written) / s; triad: 3 arrays x size / s; "
           "1 GB = 1e9 B; write-allocate traffic not counted\"}",
           first ? "" : ",", mib, reps, bytes / rd.med / 1e9, bytes / rd.min / 1e9,
           2 * bytes / cp.med / 1e9, 2 * bytes / cp.min / 1e9, 3 * bytes / tr.med / 1e9,
           3 * bytes / tr.min / 1e9);
    free(a);
    free(b);
    free(c);
    free(t);
}

/* ---- scatter-add ---------------------------------------------------------------- */

typedef struct Table {
    uint32_t *col;
    float *w;
    size_t nsyn;
    uint32_t T;   /* col range */
} Table;

static void table_fill(Table *tb, size_t nsyn, uint32_t T)
{
    if (tb->nsyn < nsyn) {
        free(tb->col);
        free(tb->w);
        tb->col = xalloc(nsyn * sizeof *tb->col);
        tb->w = xalloc(nsyn * sizeof *tb->w);
    }
    tb->nsyn = nsyn;
    tb->T = T;
    for (size_t k = 0; k < nsyn; k++) {
        tb->col[k] = rnd_below(T);
        tb->w[k] = (float)(1e-6 * (double)(rnd64() >> 44));
    }
}

/* One kernel per (target type, weight layout): the loops the compiler emits. */
#define SCATTER_KERNEL(NAME, TY, WEXPR)                                                    \
    static void NAME(TY *restrict tgt, const uint32_t *restrict col,                      \
                     const float *restrict w, const uint32_t *order, size_t nspk,         \
                     size_t K)                                                            \
    {                                                                                     \
        (void)w;                                                                          \
        for (size_t s = 0; s < nspk; s++) {                                               \
            size_t base = (size_t)order[s] * K;                                           \
            const uint32_t *c = col + base;                                               \
            const float *wp = w + base;                                                   \
            (void)wp;                                                                     \
            for (size_t k = 0; k < K; k++)                                                \
                tgt[c[k]] += WEXPR;                                                       \
        }                                                                                 \
    }
SCATTER_KERNEL(scatter_f_w8, float, wp[k])
SCATTER_KERNEL(scatter_d_w8, double, (double)wp[k])
SCATTER_KERNEL(scatter_f_w4, float, 0.25f)
SCATTER_KERNEL(scatter_d_w4, double, 0.25)

typedef struct Case {
    const char *family, *label;
    uint32_t T;
    size_t nsyn, K;
} Case;

static void scatter_case(const Case *cs, const Table *tb, int reps, size_t events, int first)
{
    size_t nrows = cs->nsyn / cs->K;
    size_t nspk = events / cs->K;
    if (nspk < 1)
        nspk = 1;
    uint32_t *order = xalloc(nspk * sizeof *order);
    if (!strcmp(cs->family, "sweep")) {
        /* rows in table order, wrapping: the table is streamed */
        for (size_t s = 0; s < nspk; s++)
            order[s] = (uint32_t)(s % nrows);
    } else {
        /* steps of m random rows, each step's list ascending */
        size_t m = cs->T / 500 ? cs->T / 500 : 1;
        for (size_t s = 0; s < nspk; s++)
            order[s] = rnd_below(nrows);
        for (size_t s0 = 0; s0 < nspk; s0 += m) {
            size_t len = nspk - s0 < m ? nspk - s0 : m;
            qsort(order + s0, len, sizeof *order, cmp_u32);
        }
    }
    void *tgt = xalloc((size_t)cs->T * 8);
    double *t = malloc(sizeof(double) * (size_t)(reps + 1));
    static const char *elem[2] = {"f32", "f64"};
    static const int wbytes[2] = {8, 4};
    int nw = strcmp(cs->family, "net") == 0 ? 2 : 1;
    for (int e = 0; e < 2; e++)
        for (int wv = 0; wv < nw; wv++) {
            memset(tgt, 0, (size_t)cs->T * 8);
            for (int r = 0; r <= reps; r++) {
                double t0 = now();
                if (e == 0 && wv == 0)
                    scatter_f_w8(tgt, tb->col, tb->w, order, nspk, cs->K);
                else if (e == 1 && wv == 0)
                    scatter_d_w8(tgt, tb->col, tb->w, order, nspk, cs->K);
                else if (e == 0)
                    scatter_f_w4(tgt, tb->col, tb->w, order, nspk, cs->K);
                else
                    scatter_d_w4(tgt, tb->col, tb->w, order, nspk, cs->K);
                t[r] = (now() - t0) / (double)(nspk * cs->K) * 1e9;
            }
            if (e == 0)
                sink += ((float *)tgt)[cs->T / 2];
            else
                sink += ((double *)tgt)[cs->T / 2];
            Stat st = stats(t + 1, reps);
            printf("%s\n    {\"family\": \"%s\", \"label\": \"%s\", \"T\": %u, \"elem\": \"%s\", "
                   "\"bytes_per_syn\": %d, \"target_kib\": %.0f, \"table_syn\": %zu, "
                   "\"table_mib\": %.1f, \"K\": %zu, \"events\": %zu, "
                   "\"ns_per_event\": %.3f, \"ns_min\": %.3f, \"ns_max\": %.3f}",
                   first ? "" : ",", cs->family, cs->label, cs->T, elem[e], wbytes[wv],
                   (double)cs->T * (e ? 8 : 4) / 1024.0, cs->nsyn,
                   (double)cs->nsyn * wbytes[wv] / 1048576.0, cs->K, nspk * cs->K, st.med,
                   st.min, st.max);
            fflush(stdout);
            first = 0;
        }
    free(order);
    free(tgt);
    free(t);
}

int main(int argc, char **argv)
{
    int quick = 0, reps = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--reps N] [--only stream|sweep|net]\n", argv[0]);
            return 2;
        }
    }
    if (reps <= 0)
        reps = quick ? 3 : 7;
    size_t events = quick ? ((size_t)1 << 23) : ((size_t)1 << 25);
    size_t stream_mib = quick ? 256 : 1024;
    size_t sweep_syn = quick ? ((size_t)1 << 25) : ((size_t)1 << 26);

    printf("{\n  \"tool\": \"bench/floor.c\", \"threads\": 1, \"quick\": %s,", quick ? "true" : "false");
    int first = 1;
    if (!only || !strcmp(only, "stream")) {
        stream(stream_mib, reps, first);
        first = 0;
    }
    Table tb = {0};
    if (!only || !strcmp(only, "net")) {
        static const struct { const char *label; uint32_t N; size_t K; } net[] = {
            {"4k", 4000, 80}, {"16k", 16000, 80}, {"64k", 64000, 80},
            {"256k", 256000, 80}, {"brunel", 12500, 1250},
        };
        printf("%s\n  \"scatter_net\": [", first ? "" : ",");
        int f2 = 1;
        for (size_t i = 0; i < sizeof net / sizeof *net; i++) {
            if (quick && net[i].N == 256000)
                continue;
            Case cs = {"net", net[i].label, net[i].N, (size_t)net[i].N * net[i].K, net[i].K};
            table_fill(&tb, cs.nsyn, cs.T);
            scatter_case(&cs, &tb, reps, events, f2);
            f2 = 0;
        }
        printf("\n  ]");
        first = 0;
    }
    if (!only || !strcmp(only, "sweep")) {
        printf("%s\n  \"scatter_sweep\": [", first ? "" : ",");
        int f2 = 1;
        for (uint32_t T = 1u << 12; T <= (1u << 26); T <<= 2) {
            char label[32];
            snprintf(label, sizeof label, "T=%u", T);
            Case cs = {"sweep", label, T, sweep_syn, 80};
            table_fill(&tb, cs.nsyn, cs.T);
            scatter_case(&cs, &tb, reps, events, f2);
            f2 = 0;
        }
        printf("\n  ]");
        first = 0;
    }
    printf("%s\n  \"checksum\": %.6g\n}\n", first ? "" : ",", (double)sink);
    free(tb.col);
    free(tb.w);
    return 0;
}
