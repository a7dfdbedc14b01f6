/*
 * test_engine.c - the simulation engine on hand-built models: blobs made
 * with the blob writer and C kernels that follow the kernel ABI of
 * engram_rt.h, run through engram_main (or the internal API of rt_engine.h
 * where the test needs to look inside).
 *
 * The LIF kernel here integrates dv/dt = (v_inf - v) / tau_m exactly with the
 * runtime's propagator and has a fixed threshold of 10 mV and reset to 0.
 * From v = 0 with v_inf = 20 mV and tau_m = 10 ms, v after n steps of 0.1 ms
 * is 20 (1 - exp(-n / 100)), which first reaches 10 at n = 70: the neuron
 * spikes in step 69, 139, ... (period 70 steps) without refractoriness.
 */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"
#include "engram_rt.h"
#include "rt_engine.h"

/* ---- kernels ---------------------------------------------------------------- */

#define V_TH 10.0
#define V_RESET 0.0

#define LIF_KERNEL(NAME, T)                                                          \
    static void NAME(const EngramPopArgs *a, int64_t begin, int64_t end)             \
    {                                                                                \
        T *v = a->state[0];                                                          \
        T *in = a->input[0];                                                         \
        const double *P = a->prop, *R = a->prop + 2;                                 \
        for (int64_t i = begin; i < end; i++) {                                      \
            a->spiked[i] = 0;                                                        \
            if (a->refr[i] > 0) {                                                    \
                v[i] = (T)(R[0] * v[i] + R[1]);                                      \
                a->refr[i]--;                                                        \
                in[i] = 0;                                                           \
                continue;                                                            \
            }                                                                        \
            v[i] = (T)(P[0] * v[i] + P[1]);                                          \
            v[i] += in[i];                                                           \
            in[i] = 0;                                                               \
            if (v[i] >= V_TH) {                                                      \
                a->spiked[i] = 1;                                                    \
                v[i] = (T)V_RESET;                                                   \
                a->refr[i] = a->ref_steps;                                           \
            }                                                                        \
        }                                                                            \
    }

#define DELIVER_KERNEL(NAME, T)                                                      \
    static void NAME(const EngramDeliverArgs *a)                                     \
    {                                                                                \
        T *ring = a->ring;                                                           \
        const T *w = a->weight;                                                      \
        for (int64_t k = 0; k < a->nspikes; k++) {                                   \
            uint32_t s = a->spikes[k];                                               \
            for (uint64_t j = a->row[s]; j < a->row[s + 1]; j++) {                   \
                int64_t d = a->delay ? a->delay[j] : a->delay_steps;                 \
                int64_t slot = (a->step + d) % a->ring_slots;                        \
                ring[slot * a->ntgt + a->col[j]] += w ? w[j] : (T)a->weight_value;   \
            }                                                                        \
        }                                                                            \
    }

LIF_KERNEL(lif_d, double)
LIF_KERNEL(lif_f, float)
DELIVER_KERNEL(deliver_d, double)
DELIVER_KERNEL(deliver_f, float)

/* A kernel that makes v blow up (for the divergence check). */
static void blowup(const EngramPopArgs *a, int64_t begin, int64_t end)
{
    double *v = a->state[0];
    for (int64_t i = begin; i < end; i++) {
        a->spiked[i] = 0;
        v[i] = (i == 3 && a->t >= 12.0) ? NAN : v[i];
    }
}

static const EngramKernelFn kernels[] = {
    (EngramKernelFn)lif_d, (EngramKernelFn)deliver_d,
    (EngramKernelFn)lif_f, (EngramKernelFn)deliver_f,
    (EngramKernelFn)blowup,
};

/* ---- model builder ------------------------------------------------------------- */

typedef struct Builder {
    EngramBlobWriter *w;
    int precision;
    uint32_t dt, duration, seed;
    uint32_t next_stream;
} Builder;

static EngramCode code_const(EngramBlobWriter *w, double v)
{
    EngramCode c = {engram_blob_insn_count(w), 1};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, v});
    return c;
}

static uint32_t param(Builder *b, const char *name, const char *unit, int t, int v, int c,
                      uint32_t flags, double value)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(b->w, name);
    p.unit = engram_blob_string(b->w, unit);
    p.dim_time = (int8_t)t;
    p.dim_voltage = (int8_t)v;
    p.dim_current = (int8_t)c;
    p.flags = flags;
    p.value = code_const(b->w, value);
    return engram_blob_param(b->w, &p);
}

static uint32_t list_param(Builder *b, const char *name, const char *unit, int t,
                           const double *vals, uint32_t n)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(b->w, name);
    p.unit = engram_blob_string(b->w, unit);
    p.dim_time = (int8_t)t;
    p.flags = ENGRAM_PARAM_LIST;
    p.list_first = UINT32_MAX;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = engram_blob_list_value(b->w, vals[k]);
        if (k == 0)
            p.list_first = i;
    }
    if (n == 0)
        p.list_first = 0;
    p.list_count = n;
    return engram_blob_param(b->w, &p);
}

static void builder_init(Builder *b, int precision, double duration_ms)
{
    memset(b, 0, sizeof *b);
    b->w = engram_blob_writer_new();
    b->precision = precision;
    b->dt = param(b, "dt", "ms", 1, 0, 0, ENGRAM_PARAM_POSITIVE, 0.1);
    b->duration = param(b, "duration", "ms", 1, 0, 0, ENGRAM_PARAM_NONNEG, duration_ms);
    b->seed = param(b, "seed", "1", 0, 0, 0, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, 1);
    b->next_stream = 10;
}

static char *path_of(char *buf, const char *pop, const char *what)
{
    sprintf(buf, "%s.%s", pop, what);
    return buf;
}

/* A LIF population; refractory < 0: none. */
static uint32_t add_lif(Builder *b, const char *path, double size, double v_inf, double tau,
                        double refractory)
{
    char nm[128];
    EngramBlobWriter *w = b->w;
    uint32_t psize = param(b, path_of(nm, path, "size"), "1", 0, 0, 0,
                           ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE, size);
    uint32_t ptau = param(b, path_of(nm, path, "tau_m"), "ms", 1, 0, 0, ENGRAM_PARAM_POSITIVE, tau);
    uint32_t pinf = param(b, path_of(nm, path, "v_inf"), "mV", 0, 1, 0, 0, v_inf);
    uint32_t pref = refractory < 0 ? ENGRAM_NONE
                                   : param(b, path_of(nm, path, "t_ref"), "ms", 1, 0, 0,
                                           ENGRAM_PARAM_NONNEG, refractory);
    EngramStateDesc st = {engram_blob_string(w, "v"), engram_blob_string(w, "mV"),
                          code_const(w, 0.0), 1};
    uint32_t first_state = engram_blob_state(w, &st);
    EngramPortDesc port = {engram_blob_string(w, "exc"), 0};
    uint32_t first_port = engram_blob_port(w, &port);
    uint32_t first_lin = engram_blob_lin_var(w, 0);
    /* A = -1/tau, b = v_inf/tau */
    EngramCode a = {engram_blob_insn_count(w), 3};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, -1.0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_PARAM, ptau, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_DIV, 0, 0});
    EngramCode bc = {engram_blob_insn_count(w), 3};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_PARAM, pinf, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_PARAM, ptau, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_DIV, 0, 0});
    uint32_t first_coef = engram_blob_coef(w, a);
    engram_blob_coef(w, bc);
    EngramPopDesc p = {0};
    p.name = engram_blob_string(w, path);
    p.model = engram_blob_string(w, "TestLIF");
    p.kind = ENGRAM_POP_NEURON;
    p.size_param = psize;
    p.first_state = first_state;
    p.nstates = 1;
    p.first_port = first_port;
    p.nports = 1;
    p.update_kernel = b->precision == 8 ? 0 : 2;
    p.method = ENGRAM_METHOD_EXACT;
    p.nlinear = 1;
    p.first_lin_var = first_lin;
    p.first_coef = first_coef;
    p.refractory_param = pref;
    p.rate_param = p.times_param = p.indices_param = ENGRAM_NONE;
    p.record_spikes = 1;
    p.stream = b->next_stream++;
    return engram_blob_pop(w, &p);
}

static uint32_t add_poisson(Builder *b, const char *path, double size, double rate_hz)
{
    char nm[128];
    EngramPopDesc p = {0};
    p.size_param = param(b, path_of(nm, path, "size"), "1", 0, 0, 0,
                         ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE, size);
    p.rate_param = param(b, path_of(nm, path, "rate"), "1/ms", -1, 0, 0, ENGRAM_PARAM_NONNEG,
                         rate_hz / 1000.0);
    p.name = engram_blob_string(b->w, path);
    p.model = engram_blob_string(b->w, "Poisson");
    p.kind = ENGRAM_POP_POISSON;
    p.update_kernel = ENGRAM_NONE;
    p.method = ENGRAM_METHOD_NONE;
    p.refractory_param = p.times_param = p.indices_param = ENGRAM_NONE;
    p.record_spikes = 1;
    p.stream = b->next_stream++;
    return engram_blob_pop(b->w, &p);
}

static uint32_t add_times(Builder *b, const char *path, double size, const double *times,
                          const double *idx, uint32_t n)
{
    char nm[128];
    EngramPopDesc p = {0};
    p.size_param = param(b, path_of(nm, path, "size"), "1", 0, 0, 0,
                         ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE, size);
    p.times_param = list_param(b, path_of(nm, path, "times"), "ms", 1, times, n);
    p.indices_param = idx ? list_param(b, path_of(nm, path, "indices"), "1", 0, idx, n)
                          : ENGRAM_NONE;
    p.name = engram_blob_string(b->w, path);
    p.model = engram_blob_string(b->w, "SpikeTimes");
    p.kind = ENGRAM_POP_SPIKE_TIMES;
    p.update_kernel = ENGRAM_NONE;
    p.method = ENGRAM_METHOD_NONE;
    p.refractory_param = p.rate_param = ENGRAM_NONE;
    p.record_spikes = 1;
    p.stream = b->next_stream++;
    return engram_blob_pop(b->w, &p);
}

/* A projection with a constant weight (mV) and delay (ms), or uniform ones
 * when the *_hi bound is > the low one. */
static uint32_t add_proj(Builder *b, const char *name, uint32_t src, uint32_t dst,
                         EngramConnKind rule, double p_or_k, double w_lo, double w_hi,
                         double d_lo, double d_hi)
{
    char nm[128];
    EngramProjDesc pj = {0};
    pj.name = engram_blob_string(b->w, name);
    pj.src_pop = src;
    pj.dst_pop = dst;
    pj.port = 0;
    pj.rule = rule;
    pj.rule_param = ENGRAM_NONE;
    if (rule == ENGRAM_CONNECT_RANDOM)
        pj.rule_param = param(b, path_of(nm, name, "p"), "1", 0, 0, 0, ENGRAM_PARAM_PROB, p_or_k);
    if (rule == ENGRAM_CONNECT_FIXED_INDEGREE)
        pj.rule_param = param(b, path_of(nm, name, "k"), "1", 0, 0, 0,
                              ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, p_or_k);
    if (w_hi > w_lo) {
        pj.weight.kind = ENGRAM_DIST_UNIFORM;
        pj.weight.arg[0] = param(b, path_of(nm, name, "weight.low"), "mV", 0, 1, 0, 0, w_lo);
        pj.weight.arg[1] = param(b, path_of(nm, name, "weight.high"), "mV", 0, 1, 0, 0, w_hi);
    } else {
        pj.weight.kind = ENGRAM_DIST_CONST;
        pj.weight.arg[0] = param(b, path_of(nm, name, "weight"), "mV", 0, 1, 0, 0, w_lo);
    }
    if (d_hi > d_lo) {
        pj.delay.kind = ENGRAM_DIST_UNIFORM;
        pj.delay.arg[0] = param(b, path_of(nm, name, "delay.low"), "ms", 1, 0, 0, 0, d_lo);
        pj.delay.arg[1] = param(b, path_of(nm, name, "delay.high"), "ms", 1, 0, 0, 0, d_hi);
    } else {
        pj.delay.kind = ENGRAM_DIST_CONST;
        pj.delay.arg[0] = param(b, path_of(nm, name, "delay"), "ms", 1, 0, 0, 0, d_lo);
    }
    pj.deliver_kernel = b->precision == 8 ? 1 : 3;
    pj.stream = b->next_stream;
    b->next_stream += 3;
    return engram_blob_proj(b->w, &pj);
}

static uint32_t add_drive(Builder *b, const char *name, uint32_t dst, double rate_hz,
                          double count, double weight)
{
    char nm[128];
    EngramDriveDesc d = {0};
    d.name = engram_blob_string(b->w, name);
    d.dst_pop = dst;
    d.port = 0;
    d.rate_param = param(b, path_of(nm, name, "rate"), "1/ms", -1, 0, 0, ENGRAM_PARAM_NONNEG,
                         rate_hz / 1000.0);
    d.count_param = param(b, path_of(nm, name, "count"), "1", 0, 0, 0,
                          ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, count);
    d.weight_param = param(b, path_of(nm, name, "weight"), "mV", 0, 1, 0, 0, weight);
    d.stream = b->next_stream++;
    return engram_blob_drive(b->w, &d);
}

/* Finishes the blob into prog (free with free_prog). */
static void finish(Builder *b, const char *name, EngramProgram *prog)
{
    EngramModelDesc h = {0};
    h.name = engram_blob_string(b->w, name);
    h.precision = (uint32_t)b->precision;
    snprintf(h.source_sha256, sizeof h.source_sha256, "%064d", 7);
    snprintf(h.compiler_version, sizeof h.compiler_version, "test-1.0");
    h.dt_param = b->dt;
    h.duration_param = b->duration;
    h.seed_param = b->seed;
    h.nkernels = sizeof kernels / sizeof kernels[0];
    uint64_t size = 0;
    uint8_t *blob = engram_blob_finish(b->w, &h, &size);
    cr_assert(blob != NULL);
    engram_blob_writer_free(b->w);
    b->w = NULL;
    prog->blob = blob;
    prog->blob_size = size;
    prog->kernels = kernels;
}

/* ---- running ---------------------------------------------------------------------- */

static char tmp_root[256];

static void make_tmp(void)
{
    test_tmp_make(tmp_root, sizeof tmp_root, "engine");
}

static void rm_tmp(void)
{
    test_tmp_remove(tmp_root);
}

TestSuite(engine, .init = make_tmp, .fini = rm_tmp);

/* Runs engram_main with the given flags (NULL-terminated) and --out DIR. */
static int run_sim(const EngramProgram *prog, const char *out, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "sim";
    if (out) {
        argv[argc++] = "--out";
        argv[argc++] = (char *)out;
    }
    va_list ap;
    va_start(ap, out);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return engram_main(prog, argc, argv);
}

static char *out_dir(const char *name)
{
    static char buf[4][320];
    static int k;
    char *s = buf[k++ % 4];
    snprintf(s, 320, "%s/%s", tmp_root, name);
    return s;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

/* Reads /spikes/<pop> of DIR/spikes.h5: timestamps and node_ids. */
static size_t read_spikes(const char *dir, const char *pop, double **ts, uint64_t **ids)
{
    char path[400], grp[200];
    snprintf(path, sizeof path, "%s/spikes.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "cannot open %s", path);
    snprintf(grp, sizeof grp, "/spikes/%s/timestamps", pop);
    hid_t d = H5Dopen2(f, grp, H5P_DEFAULT);
    cr_assert(d >= 0);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    *ts = malloc(((size_t)n + 1) * sizeof **ts);
    if (n)
        cr_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *ts) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    snprintf(grp, sizeof grp, "/spikes/%s/node_ids", pop);
    d = H5Dopen2(f, grp, H5P_DEFAULT);
    cr_assert(d >= 0);
    *ids = malloc(((size_t)n + 1) * sizeof **ids);
    if (n)
        cr_assert(H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, *ids) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    return (size_t)n;
}

/* ---- models ---------------------------------------------------------------------- */

/* One LIF population driven by a constant v_inf. */
static void model_const_lif(EngramProgram *prog, int precision, double refractory)
{
    Builder b;
    builder_init(&b, precision, 1000.0);
    add_lif(&b, "V1.exc", 10, 20.0, 10.0, refractory);
    finish(&b, "const_lif", prog);
}

/* src (spike at 1 ms) -> a -> b, one_to_one, weight 100 mV, delay 2 ms. */
static void model_chain(EngramProgram *prog)
{
    Builder b;
    builder_init(&b, 8, 20.0);
    double t[] = {1.0}, idx[] = {0};
    uint32_t src = add_times(&b, "R.src", 1, t, idx, 1);
    uint32_t a = add_lif(&b, "R.a", 1, 0.0, 10.0, -1);
    uint32_t c = add_lif(&b, "R.b", 1, 0.0, 10.0, -1);
    add_proj(&b, "R.src->R.a", src, a, ENGRAM_CONNECT_ONE_TO_ONE, 0, 100, 0, 2.0, 0);
    add_proj(&b, "R.a->R.b", a, c, ENGRAM_CONNECT_ONE_TO_ONE, 0, 100, 0, 2.0, 0);
    finish(&b, "chain", prog);
}

/* Poisson source (1000 x 20 Hz) -> LIF (200) random p = 0.1 with uniform
 * weights and delays, and a drive on the LIF population. */
static void model_net(EngramProgram *prog, int precision)
{
    Builder b;
    builder_init(&b, precision, 1000.0);
    uint32_t src = add_poisson(&b, "In.noise", 1000, 20.0);
    uint32_t exc = add_lif(&b, "V1.exc", 200, 5.0, 10.0, 2.0);
    add_proj(&b, "ff", src, exc, ENGRAM_CONNECT_RANDOM, 0.1, 0.0, 1.0, 0.5, 3.0);
    add_proj(&b, "rec", exc, exc, ENGRAM_CONNECT_FIXED_INDEGREE, 10, 0.5, 0, 1.5, 0);
    add_drive(&b, "bg", exc, 10.0, 50, 0.2);
    finish(&b, "net", prog);
}

/* ---- tests: dynamics ------------------------------------------------------------ */

Test(engine, const_lif_fires_at_the_analytic_period)
{
    EngramProgram prog;
    model_const_lif(&prog, 8, -1);
    char *dir = out_dir("lif");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    double *ts;
    uint64_t *ids;
    size_t n = read_spikes(dir, "V1.exc", &ts, &ids);
    /* steps 69 + 70 m <= 9999: 142 spikes per neuron, 10 neurons */
    cr_assert_eq(n, 1420);
    cr_assert_float_eq(ts[0], 6.9, 1e-9);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(ids[k], k % 10);          /* all in sync, ties by id */
        cr_assert_float_eq(ts[k], 6.9 + 7.0 * (double)(k / 10), 1e-9);
    }
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

Test(engine, refractory_period_holds_v)
{
    EngramProgram prog;
    model_const_lif(&prog, 8, 2.0);
    char *dir = out_dir("lif_ref");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    double *ts;
    uint64_t *ids;
    size_t n = read_spikes(dir, "V1.exc", &ts, &ids);
    /* t_ref = 2 ms holds v for the 19 steps after the spike step (k dt < t_ref,
     * as Brian2): period 89 steps, 69 + 89 m <= 9999 */
    cr_assert_eq(n, 1120);
    cr_assert_float_eq(ts[10], 6.9 + 8.9, 1e-9);
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

Test(engine, float_precision_matches_the_period)
{
    EngramProgram prog;
    model_const_lif(&prog, 4, -1);
    char *dir = out_dir("lif_f");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    double *ts;
    uint64_t *ids;
    cr_assert_eq(read_spikes(dir, "V1.exc", &ts, &ids), 1420);
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

Test(engine, set_changes_tau_and_size)
{
    EngramProgram prog;
    model_const_lif(&prog, 8, -1);
    char *dir = out_dir("lif_set");
    /* tau 20 ms: n = ceil(200 ln 2) = 139 steps; 138 + 139 m <= 4999 (m < 35) in 500 ms */
    cr_assert_eq(run_sim(&prog, dir, "--quiet", "--set", "V1.exc.tau_m=20ms", "--set",
                         "V1.exc.size=3", "--duration", "0.5 s", NULL), 0);
    double *ts;
    uint64_t *ids;
    size_t n = read_spikes(dir, "V1.exc", &ts, &ids);
    cr_assert_eq(n, 3 * 35, "got %zu", n);
    cr_assert_float_eq(ts[0], 13.8, 1e-9);
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

Test(engine, delays_chain_two_ms_apart)
{
    EngramProgram prog;
    model_chain(&prog);
    char *dir = out_dir("chain");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    double *ts;
    uint64_t *ids;
    cr_assert_eq(read_spikes(dir, "R.src", &ts, &ids), 1);
    cr_assert_float_eq(ts[0], 1.0, 1e-9);
    free(ts);
    free(ids);
    cr_assert_eq(read_spikes(dir, "R.a", &ts, &ids), 1);
    cr_assert_float_eq(ts[0], 3.0, 1e-9);
    free(ts);
    free(ids);
    cr_assert_eq(read_spikes(dir, "R.b", &ts, &ids), 1);
    cr_assert_float_eq(ts[0], 5.0, 1e-9);
    free(ts);
    free(ids);
    /* a longer delay moves both */
    cr_assert_eq(run_sim(&prog, dir, "--quiet", "--set", "R.a->R.b.delay=3.5ms", NULL), 0);
    cr_assert_eq(read_spikes(dir, "R.b", &ts, &ids), 1);
    cr_assert_float_eq(ts[0], 6.5, 1e-9);
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

Test(engine, poisson_source_rate)
{
    EngramProgram prog;
    model_net(&prog, 8);
    char *dir = out_dir("net");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    double *ts;
    uint64_t *ids;
    size_t n = read_spikes(dir, "In.noise", &ts, &ids);
    /* 1000 neurons x 20 Hz x 1 s = 20000 +- 141 */
    cr_assert(n > 19300 && n < 20700, "got %zu spikes", n);
    for (size_t k = 1; k < n; k++)
        cr_assert(ts[k] > ts[k - 1] || (ts[k] == ts[k - 1] && ids[k] > ids[k - 1]));
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

/* Drive only: each input event (weight 20 mV) makes a spike, so a neuron
 * spikes in the steps where k > 0: nsteps (1 - exp(-count rate dt)). */
Test(engine, drive_rate)
{
    Builder b;
    builder_init(&b, 8, 1000.0);
    uint32_t p = add_lif(&b, "V1.exc", 1000, 0.0, 10.0, -1);
    add_drive(&b, "poisson->V1.exc", p, 10.0, 1, 20.0);
    EngramProgram prog;
    finish(&b, "drive", &prog);
    char *dir = out_dir("drive");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    double *ts;
    uint64_t *ids;
    size_t n = read_spikes(dir, "V1.exc", &ts, &ids);
    double expect = 1000 * 10000 * (1 - exp(-0.001));
    cr_assert(fabs((double)n - expect) < 0.05 * expect, "got %zu, expected %g", n, expect);
    free(ts);
    free(ids);
    /* count 0: nothing */
    cr_assert_eq(run_sim(&prog, dir, "--quiet", "--set", "poisson->V1.exc.count=0", NULL), 0);
    cr_assert_eq(read_spikes(dir, "V1.exc", &ts, &ids), 0);
    free(ts);
    free(ids);
    test_prog_free(&prog);
}

/* ---- tests: determinism and outputs ----------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

Test(engine, same_seed_gives_identical_bytes)
{
    EngramProgram prog;
    model_net(&prog, 4);
    char *d1 = out_dir("s1"), *d2 = out_dir("s2"), *d3 = out_dir("s3");
    char f1[400], f2[400], f3[400];
    cr_assert_eq(run_sim(&prog, d1, "--quiet", "--seed", "5", NULL), 0);
    sleep(1);   /* object timestamps, if any were written, would now differ */
    cr_assert_eq(run_sim(&prog, d2, "--quiet", "--seed", "5", NULL), 0);
    cr_assert_eq(run_sim(&prog, d3, "--quiet", "--seed", "6", NULL), 0);
    snprintf(f1, sizeof f1, "%s/spikes.h5", d1);
    snprintf(f2, sizeof f2, "%s/spikes.h5", d2);
    snprintf(f3, sizeof f3, "%s/spikes.h5", d3);
    cr_assert(same_file(f1, f2));
    cr_assert(!same_file(f1, f3));
    /* the summaries agree outside "timing" */
    snprintf(f1, sizeof f1, "%s/summary.json", d1);
    snprintf(f2, sizeof f2, "%s/summary.json", d2);
    char *s1 = read_file(f1, NULL), *s2 = read_file(f2, NULL);
    *strstr(s1, "\"timing\"") = '\0';
    *strstr(s2, "\"timing\"") = '\0';
    cr_assert_str_eq(s1, s2);
    free(s1);
    free(s2);
    test_prog_free(&prog);
}

Test(engine, sonata_layout)
{
    EngramProgram prog;
    model_chain(&prog);
    char *dir = out_dir("layout");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/spikes.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    uint32_t magic = 0, version[2] = {9, 9};
    hid_t a = H5Aopen(f, "magic", H5P_DEFAULT);
    cr_assert(a >= 0);
    H5Aread(a, H5T_NATIVE_UINT32, &magic);
    H5Aclose(a);
    cr_assert_eq(magic, 0x0A7A);
    a = H5Aopen(f, "version", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_UINT32, version);
    H5Aclose(a);
    cr_assert(version[0] == 0 && version[1] == 1);
    hid_t g = H5Gopen2(f, "/spikes/R.a", H5P_DEFAULT);
    cr_assert(g >= 0);
    a = H5Aopen(g, "sorting", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    cr_assert_eq(H5Tget_class(t), H5T_ENUM);
    int8_t v = -1;
    H5Aread(a, t, &v);
    char name[16] = "";
    H5Tenum_nameof(t, &v, name, sizeof name);
    cr_assert_str_eq(name, "by_time");
    H5Tclose(t);
    H5Aclose(a);
    hid_t d = H5Dopen2(g, "timestamps", H5P_DEFAULT);
    t = H5Dget_type(d);
    cr_assert(H5Tequal(t, H5T_IEEE_F64LE) > 0);
    H5Tclose(t);
    a = H5Aopen(d, "units", H5P_DEFAULT);
    t = H5Aget_type(a);
    char *units = NULL;
    H5Aread(a, t, &units);
    cr_assert_str_eq(units, "ms");
    H5free_memory(units);
    H5Tclose(t);
    H5Aclose(a);
    H5Dclose(d);
    d = H5Dopen2(g, "node_ids", H5P_DEFAULT);
    t = H5Dget_type(d);
    cr_assert(H5Tequal(t, H5T_STD_U64LE) > 0);
    H5Tclose(t);
    H5Dclose(d);
    H5Gclose(g);
    H5Fclose(f);
    test_prog_free(&prog);
}

Test(engine, summary_fields)
{
    EngramProgram prog;
    model_net(&prog, 8);
    char *dir = out_dir("summary");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", "--duration", "200ms", NULL), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *s = read_file(path, NULL);
    cr_assert(s);
    const char *keys[] = {"\"engram_version\"", "\"model\": {\"name\": \"net\"", "\"sha256\"",
                          "\"seed\": 1", "\"dt_ms\": 0.1", "\"duration_ms\": 200",
                          "\"In.noise\": {\"model\": \"Poisson\", \"source\": true, \"size\": 1000",
                          "\"V1.exc\": {\"model\": \"TestLIF\", \"source\": false",
                          "\"rate_hz\"", "\"synapses\": {\"total\": ", "\"ff\": ", "\"rec\": 2000",
                          "\"V1.exc.tau_m\": {\"value\": 10, \"unit\": \"ms\"}",
                          "\"duration\": {\"value\": 200, \"unit\": \"ms\"}",
                          "\"timing\": {\"setup_s\"", "\"threads\": 1", "\"ranks\": 1",
                          "\"host\"", "\"date\""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        cr_assert(strstr(s, keys[k]), "summary.json lacks %s:\n%s", keys[k], s);
    free(s);
    /* no temporary files left behind */
    char cmd[500];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q tmp", dir);
    cr_assert_neq(system(cmd), 0);
    test_prog_free(&prog);
}

Test(engine, spike_times_lists_in_summary)
{
    EngramProgram prog;
    model_chain(&prog);
    char *dir = out_dir("lists");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *s = read_file(path, NULL);
    cr_assert(strstr(s, "\"R.src.times\": {\"value\": [1], \"unit\": \"ms\"}"), "%s", s);
    free(s);
    test_prog_free(&prog);
}

/* ---- tests: command line and errors ---------------------------------------------------------- */

Test(engine, exit_codes)
{
    EngramProgram prog;
    model_const_lif(&prog, 8, -1);
    char *dir = out_dir("codes");
    cr_assert_eq(run_sim(&prog, dir, "--bogus", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "stray", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--seed", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--duration", "1000", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--duration", "1 mV", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--seed", "1.5", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--seed", "-1", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--set", "nope=3", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--set", "V1.exc.tau_m", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--max-memory", "lots", NULL), ENGRAM_EXIT_USAGE);
    cr_assert_eq(run_sim(&prog, dir, "--max-memory", "1K", NULL), ENGRAM_EXIT_RESOURCE);
    cr_assert_eq(run_sim(&prog, dir, "--help", NULL), 0);
    cr_assert_eq(run_sim(&prog, dir, "--version", NULL), 0);
    cr_assert_eq(run_sim(&prog, dir, "--dry-run", NULL), 0);
    cr_assert_eq(run_sim(&prog, dir, "--dry-run", "--max-memory", "1K", NULL), 0);
    /* the dry run builds nothing and writes nothing */
    struct stat st;
    cr_assert_neq(stat(dir, &st), 0);
    /* an output folder below a file: I/O error */
    char file[400], below[420];
    snprintf(file, sizeof file, "%s/afile", tmp_root);
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(below, sizeof below, "%s/sub", file);
    cr_assert_eq(run_sim(&prog, below, "--quiet", NULL), ENGRAM_EXIT_IO);
    /* a bad blob */
    uint8_t *bad = aligned_alloc(16, 1024);
    memcpy(bad, prog.blob, 1024 < prog.blob_size ? 1024 : prog.blob_size);
    EngramProgram broken = {bad, 100, kernels};
    cr_assert_eq(run_sim(&broken, dir, "--quiet", NULL), ENGRAM_EXIT_MODEL);
    free(bad);
    test_prog_free(&prog);
}

Test(engine, out_dir_is_created_and_reused)
{
    EngramProgram prog;
    model_chain(&prog);
    char *dir = out_dir("deep/er/folder");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    char keep[400];
    snprintf(keep, sizeof keep, "%s/mine.txt", dir);
    FILE *f = fopen(keep, "w");
    fputs("x", f);
    fclose(f);
    cr_assert_eq(run_sim(&prog, dir, "--quiet", NULL), 0);
    struct stat st;
    cr_assert_eq(stat(keep, &st), 0);
    test_prog_free(&prog);
}

Test(engine, numeric_divergence_is_reported)
{
    Builder b;
    builder_init(&b, 8, 100.0);
    uint32_t p = add_lif(&b, "V1.exc", 10, 0.0, 10.0, -1);
    (void)p;
    EngramProgram prog;
    /* patch the update kernel to the one that blows up */
    EngramModelDesc h = {0};
    h.name = engram_blob_string(b.w, "diverge");
    h.precision = 8;
    h.dt_param = b.dt;
    h.duration_param = b.duration;
    h.seed_param = b.seed;
    h.nkernels = 5;
    uint64_t size;
    uint8_t *blob = engram_blob_finish(b.w, &h, &size);
    engram_blob_writer_free(b.w);
    EngramPopDesc *pd = (EngramPopDesc *)(blob + ((EngramModelDesc *)blob)->pops_off);
    pd[0].update_kernel = 4;
    prog = (EngramProgram){blob, size, kernels};

    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double *pv = calloc(m.hdr->nparams, sizeof *pv);
    cr_assert_eq(engram_params_resolve(&m, NULL, 0, pv, &err), 0);
    EngramNetwork net;
    cr_assert_eq(engram_network_build(&net, &m, pv, &err), 0);
    EngramSimOptions so = {.progress = false};
    cr_assert_eq(engram_simulate(&net, &so, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "numeric divergence in V1.exc neuron 3 variable v at t = 20 ms"),
              "%s", err.msg);
    engram_network_free(&net);
    free(pv);
    free(blob);
}

/* ---- tests: parameters ---------------------------------------------------------------------- */

static int resolve(const EngramProgram *prog, const char *flag, const char *name,
                   const char *value, double *pv, EngramError *err)
{
    EngramModel m;
    cr_assert_eq(engram_model_open(&m, prog, err), 0);
    EngramOverride ov = {flag, name, strlen(name), value};
    return engram_params_resolve(&m, &ov, 1, pv, err);
}

Test(engine, set_messages)
{
    EngramProgram prog;
    model_net(&prog, 8);
    double pv[64];
    EngramError err = {0};
    cr_assert_eq(resolve(&prog, "--set V1.exc.tau_m=20", "V1.exc.tau_m", "20", pv, &err),
                 ENGRAM_EXIT_USAGE);
    cr_assert_str_eq(err.msg,
                     "--set V1.exc.tau_m=20: expected a time (ms), got a dimensionless number");
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set V1.exc.tau_m=20mV", "V1.exc.tau_m", "20mV", pv, &err),
                 ENGRAM_EXIT_USAGE);
    cr_assert_str_eq(err.msg, "--set V1.exc.tau_m=20mV: expected a time (ms), got a voltage (mV)");
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set V1.exc.tau=2ms", "V1.exc.tau", "2ms", pv, &err),
                 ENGRAM_EXIT_USAGE);
    cr_assert(strstr(err.msg, "unknown parameter 'V1.exc.tau'; did you mean 'V1.exc.tau_m'?"),
              "%s", err.msg);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set tau_m=2ms", "tau_m", "2ms", pv, &err), ENGRAM_EXIT_USAGE);
    cr_assert(strstr(err.msg, "did you mean 'V1.exc.tau_m'?"), "%s", err.msg);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set V1.exc.size=2.5", "V1.exc.size", "2.5", pv, &err),
                 ENGRAM_EXIT_USAGE);
    cr_assert(strstr(err.msg, "whole number"), "%s", err.msg);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set ff.p=1.5", "ff.p", "1.5", pv, &err), ENGRAM_EXIT_USAGE);
    cr_assert(strstr(err.msg, "probability"), "%s", err.msg);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set V1.exc.size=-3", "V1.exc.size", "-3", pv, &err),
                 ENGRAM_EXIT_USAGE);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set In.noise.rate=5Hz", "In.noise.rate", "5Hz", pv, &err), 0);
    cr_assert_float_eq(pv[0], 0.1, 1e-12);   /* dt */
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set dt=0ms", "dt", "0ms", pv, &err), ENGRAM_EXIT_USAGE);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set dt=0.1 msec", "dt", "0.1 msec", pv, &err),
                 ENGRAM_EXIT_USAGE);
    cr_assert(strstr(err.msg, "did you mean 'ms'"), "%s", err.msg);
    test_prog_free(&prog);
}

Test(engine, set_units_are_converted)
{
    EngramProgram prog;
    model_net(&prog, 8);
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double pv[64];
    EngramOverride ov[] = {
        {"--set In.noise.rate=5Hz", "In.noise.rate", 13, "5Hz"},
        {"--set V1.exc.tau_m=0.02s", "V1.exc.tau_m", 12, "0.02s"},
    };
    cr_assert_eq(engram_params_resolve(&m, ov, 2, pv, &err), 0);
    cr_assert_float_eq(pv[engram_param_find(&m, "In.noise.rate", 13)], 0.005, 1e-15);
    cr_assert_float_eq(pv[engram_param_find(&m, "V1.exc.tau_m", 12)], 20.0, 1e-12);
    test_prog_free(&prog);
}

/* A size derived from a model-level param that a --set made negative. */
Test(engine, derived_values_are_rechecked)
{
    Builder b;
    builder_init(&b, 8, 10.0);
    uint32_t n = param(&b, "N", "1", 0, 0, 0, 0, 10);
    /* V1.exc.size = N * 2 */
    EngramParamDesc p = {0};
    p.name = engram_blob_string(b.w, "V1.exc.size");
    p.unit = engram_blob_string(b.w, "1");
    p.flags = ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE;
    p.value.first = engram_blob_insn_count(b.w);
    p.value.count = 3;
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_PARAM, n, 0});
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_CONST, 0, 2});
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_MUL, 0, 0});
    uint32_t size = engram_blob_param(b.w, &p);
    EngramStateDesc st = {engram_blob_string(b.w, "v"), engram_blob_string(b.w, "mV"),
                          code_const(b.w, 0.0), 0};
    EngramPopDesc pd = {0};
    pd.name = engram_blob_string(b.w, "V1.exc");
    pd.model = engram_blob_string(b.w, "X");
    pd.size_param = size;
    pd.first_state = engram_blob_state(b.w, &st);
    pd.nstates = 1;
    EngramPortDesc port = {engram_blob_string(b.w, "exc"), 0};
    pd.first_port = engram_blob_port(b.w, &port);
    pd.nports = 1;
    pd.update_kernel = 0;
    pd.method = ENGRAM_METHOD_EULER;
    pd.refractory_param = pd.rate_param = pd.times_param = pd.indices_param = ENGRAM_NONE;
    engram_blob_pop(b.w, &pd);
    EngramProgram prog;
    finish(&b, "derived", &prog);
    double pv[16];
    EngramError err = {0};
    cr_assert_eq(resolve(&prog, "--set N=-5", "N", "-5", pv, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "V1.exc.size = -10 must be >= 0"), "%s", err.msg);
    err = (EngramError){0};
    cr_assert_eq(resolve(&prog, "--set N=4", "N", "4", pv, &err), 0);
    cr_assert_float_eq(pv[size], 8.0, 1e-12);
    test_prog_free(&prog);
}

Test(engine, delay_shorter_than_dt_is_an_error)
{
    EngramProgram prog;
    model_chain(&prog);
    char *dir = out_dir("shortdelay");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", "--set", "R.a->R.b.delay=0.05ms", NULL),
                 ENGRAM_EXIT_MODEL);
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double pv[64];
    EngramOverride ov = {"--set", "R.a->R.b.delay", 14, "0.05ms"};
    cr_assert_eq(engram_params_resolve(&m, &ov, 1, pv, &err), 0);
    EngramEstimate est;
    cr_assert_eq(engram_estimate(&m, pv, &est, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "delay 0.05 ms is shorter than dt 0.1 ms"), "%s", err.msg);
    test_prog_free(&prog);
}

Test(engine, one_to_one_size_mismatch)
{
    EngramProgram prog;
    model_chain(&prog);
    char *dir = out_dir("mismatch");
    cr_assert_eq(run_sim(&prog, dir, "--quiet", "--set", "R.b.size=2", NULL), ENGRAM_EXIT_MODEL);
    test_prog_free(&prog);
}

/* ---- tests: the network inside ------------------------------------------------------------- */

Test(engine, network_structure)
{
    EngramProgram prog;
    model_net(&prog, 8);
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double pv[64];
    cr_assert_eq(engram_params_resolve(&m, NULL, 0, pv, &err), 0);
    EngramEstimate est;
    cr_assert_eq(engram_estimate(&m, pv, &est, &err), 0);
    cr_assert_float_eq(est.proj_synapses[0], 0.1 * 1000 * 200, 1e-9);
    cr_assert(!est.proj_exact[0]);
    cr_assert_float_eq(est.proj_synapses[1], 10 * 200, 1e-9);
    cr_assert(est.proj_exact[1]);
    EngramNetwork net;
    cr_assert_eq(engram_network_build(&net, &m, pv, &err), 0, "%s", err.msg);
    EngramProjRt *ff = &net.projs[0], *rec = &net.projs[1];
    cr_assert(fabs((double)ff->csr.nsyn - 20000) < 600);
    cr_assert_eq(rec->csr.nsyn, 2000);
    cr_assert(ff->weight && ff->delay && !rec->weight && !rec->delay);
    cr_assert_float_eq(rec->weight_value, 0.5, 1e-12);
    cr_assert_eq(rec->delay_steps, 15);
    for (uint64_t j = 0; j < ff->csr.nsyn; j++) {
        double w = ((double *)ff->weight)[j];
        cr_assert(w >= 0 && w < 1);
        cr_assert(ff->delay[j] >= 5 && ff->delay[j] <= 30);
    }
    /* the ring holds the longest delay + 1 */
    cr_assert_eq(net.pops[1].rings[0].slots, ff->max_delay + 1);
    cr_assert_eq(ff->max_delay, 30);
    /* exact propagator: exp(-dt/tau) and v_inf (1 - exp(-dt/tau)); refractory: identity */
    double e = exp(-0.01);
    cr_assert_float_eq(net.pops[1].prop[0], e, 1e-14);
    cr_assert_float_eq(net.pops[1].prop[1], 5.0 * (1 - e), 1e-13);
    cr_assert_float_eq(net.pops[1].prop[2], 1.0, 1e-15);
    cr_assert_float_eq(net.pops[1].prop[3], 0.0, 1e-15);
    cr_assert_eq(net.pops[1].ref_steps, 19);   /* 2 ms: the 19 steps after the spike */
    engram_network_free(&net);
    engram_estimate_free(&est);
    test_prog_free(&prog);
}

/* Initial values drawn per neuron: deterministic, and keyed by the neuron. */
Test(engine, initial_values_are_drawn_per_neuron)
{
    Builder b;
    builder_init(&b, 8, 10.0);
    char nm[64];
    uint32_t size = param(&b, "P.x.size", "1", 0, 0, 0, ENGRAM_PARAM_SIZE, 100);
    (void)nm;
    EngramCode init = {engram_blob_insn_count(b.w), 3};
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_CONST, 0, -70});
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_CONST, 0, -50});
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_UNIFORM, 0, 0});
    EngramStateDesc st = {engram_blob_string(b.w, "v"), engram_blob_string(b.w, "mV"), init, 0};
    EngramCode idx = {engram_blob_insn_count(b.w), 1};
    engram_blob_insn(b.w, (EngramInsn){ENGRAM_OP_INDEX, 0, 0});
    EngramStateDesc st2 = {engram_blob_string(b.w, "i"), engram_blob_string(b.w, "1"), idx, 0};
    EngramPopDesc pd = {0};
    pd.name = engram_blob_string(b.w, "P.x");
    pd.model = engram_blob_string(b.w, "X");
    pd.size_param = size;
    pd.first_state = engram_blob_state(b.w, &st);
    engram_blob_state(b.w, &st2);
    pd.nstates = 2;
    pd.update_kernel = 0;
    pd.method = ENGRAM_METHOD_EULER;
    pd.refractory_param = pd.rate_param = pd.times_param = pd.indices_param = ENGRAM_NONE;
    pd.stream = 3;
    engram_blob_pop(b.w, &pd);
    EngramProgram prog;
    finish(&b, "init", &prog);
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double pv[16];
    cr_assert_eq(engram_params_resolve(&m, NULL, 0, pv, &err), 0);
    EngramNetwork n1, n2;
    cr_assert_eq(engram_network_build(&n1, &m, pv, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_network_build(&n2, &m, pv, &err), 0);
    const double *v1 = n1.pops[0].state[0], *v2 = n2.pops[0].state[0];
    const double *i1 = n1.pops[0].state[1];
    double mean = 0;
    for (int k = 0; k < 100; k++) {
        cr_assert(v1[k] >= -70 && v1[k] < -50);
        cr_assert_eq(v1[k], v2[k]);
        cr_assert_eq(i1[k], k);
        mean += v1[k] / 100;
    }
    cr_assert(v1[0] != v1[1]);
    cr_assert(fabs(mean + 60) < 2.5);
    /* neuron k's value does not depend on the size */
    pv[size] = 50;
    EngramNetwork n3;
    cr_assert_eq(engram_network_build(&n3, &m, pv, &err), 0);
    for (int k = 0; k < 50; k++)
        cr_assert_eq(((double *)n3.pops[0].state[0])[k], v1[k]);
    engram_network_free(&n1);
    engram_network_free(&n2);
    engram_network_free(&n3);
    test_prog_free(&prog);
}

Test(engine, size_parsing)
{
    uint64_t x;
    cr_assert(engram_parse_size("2G", &x) && x == 2ull << 30);
    cr_assert(engram_parse_size("512M", &x) && x == 512ull << 20);
    cr_assert(engram_parse_size("1.5GiB", &x) && x == 3ull << 29);
    cr_assert(engram_parse_size("1000", &x) && x == 1000);
    cr_assert(engram_parse_size("4kB", &x) && x == 4096);
    cr_assert(!engram_parse_size("", &x));
    cr_assert(!engram_parse_size("2X", &x));
    cr_assert(!engram_parse_size("-1G", &x));
    cr_assert(!engram_parse_size("G", &x));
}

/* Normal weights clipped at min = 0; fixed in-degree gives every target k sources. */
Test(engine, normal_weights_and_fixed_indegree)
{
    Builder b;
    builder_init(&b, 8, 10.0);
    uint32_t src = add_poisson(&b, "In.p", 300, 5.0);
    uint32_t dst = add_lif(&b, "V1.e", 100, 0.0, 10.0, -1);
    char nm[64];
    EngramProjDesc pj = {0};
    pj.name = engram_blob_string(b.w, "nw");
    pj.src_pop = src;
    pj.dst_pop = dst;
    pj.rule = ENGRAM_CONNECT_FIXED_INDEGREE;
    pj.rule_param = param(&b, "nw.k", "1", 0, 0, 0, ENGRAM_PARAM_INTEGER, 50);
    pj.weight.kind = ENGRAM_DIST_NORMAL;
    pj.weight.arg[0] = param(&b, path_of(nm, "nw", "weight.mean"), "mV", 0, 1, 0, 0, 0.2);
    pj.weight.arg[1] = param(&b, path_of(nm, "nw", "weight.sd"), "mV", 0, 1, 0, 0, 0.3);
    pj.weight.arg[2] = param(&b, path_of(nm, "nw", "weight.min"), "mV", 0, 1, 0, 0, 0.0);
    pj.weight.arg[3] = ENGRAM_NONE;
    pj.delay.kind = ENGRAM_DIST_CONST;
    pj.delay.arg[0] = param(&b, path_of(nm, "nw", "delay"), "ms", 1, 0, 0, 0, 1.0);
    pj.deliver_kernel = 1;
    pj.stream = 40;
    engram_blob_proj(b.w, &pj);
    EngramProgram prog;
    finish(&b, "nw", &prog);
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double pv[32];
    cr_assert_eq(engram_params_resolve(&m, NULL, 0, pv, &err), 0);
    EngramNetwork net;
    cr_assert_eq(engram_network_build(&net, &m, pv, &err), 0, "%s", err.msg);
    const EngramProjRt *pr = &net.projs[0];
    cr_assert_eq(pr->csr.nsyn, 50 * 100);
    uint32_t indeg[100] = {0};
    int zeros = 0;
    double sum = 0;
    for (uint64_t j = 0; j < pr->csr.nsyn; j++) {
        indeg[pr->csr.col[j]]++;
        double w = ((const double *)pr->weight)[j];
        cr_assert(w >= 0);
        zeros += w == 0;
        sum += w;
    }
    for (int t = 0; t < 100; t++)
        cr_assert_eq(indeg[t], 50);
    /* P(w < 0) = P(z < -2/3) ~ 0.25; E[max(w, 0)] = mu Phi(mu/sd) + sd phi(mu/sd) ~ 0.2453 */
    cr_assert(zeros > 1000 && zeros < 1500, "%d clipped", zeros);
    cr_assert(fabs(sum / 5000 - 0.2453) < 0.01, "mean %g", sum / 5000);
    cr_assert_eq(pr->delay_steps, 10);
    engram_network_free(&net);
    test_prog_free(&prog);
}
