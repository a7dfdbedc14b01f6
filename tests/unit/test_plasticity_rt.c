/*
 * test_plasticity_rt.c - the runtime side of plasticity, modulators and
 * weight recording (docs/language.md sections 12-14) on hand-built models:
 * blobs made with the blob writer and C kernels that follow the ABI of
 * engram_rt.h.
 *
 * The rule is Brian2's pair STDP with lazily decayed exponential traces:
 *
 *   on pre:  deliver w; apre = apre e^(-dt k / tau_pre) + A_pre;
 *            per synapse: w = clip(w + apost (decayed), 0, w_max)
 *   on post: apost = apost e^(-dt k / tau_post) + A_post;
 *            per synapse: w = clip(w + apre (decayed), 0, w_max)
 *   every T: per synapse: calls += 1; w += gain * modulators[0]
 *
 * Spike timing is scripted: spike-times sources drive a LIF population
 * (threshold 10 mV, v_inf 0) through a 100 mV one-to-one projection with a
 * 2 ms delay, so target neuron i spikes exactly in step (source step + 20).
 *
 * `on pre arrival` (runtime/arrival.c) is checked with an arrive kernel that
 * logs every (step, source, target) it is handed, against the recorded
 * source spikes and the synapses' delays.
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

/* Param indices the rule's kernels read (set by the builder). */
static struct {
    uint32_t tau_pre, tau_post, a_pre, a_post, w_max, gain;
} G;

#define LIF_KERNEL(NAME, T)                                                          \
    static void NAME(const EngramPopArgs *a, int64_t begin, int64_t end)             \
    {                                                                                \
        T *v = a->state[0];                                                          \
        T *in = a->input[0];                                                         \
        const double *P = a->prop;                                                   \
        for (int64_t i = begin; i < end; i++) {                                      \
            a->spiked[i] = 0;                                                        \
            v[i] = (T)(P[0] * v[i] + P[1]);                                          \
            v[i] += in[i];                                                           \
            in[i] = 0;                                                               \
            if (v[i] >= V_TH) {                                                      \
                a->spiked[i] = 1;                                                    \
                v[i] = 0;                                                            \
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

static double decayed(double x, int32_t *last, int64_t step, double dt, double tau)
{
    double v = x * exp(-(double)(step - *last) * dt / tau);
    *last = (int32_t)step;
    return v;
}

static double clip(double w, double hi)
{
    return w < 0 ? 0 : (w > hi ? hi : w);
}

#define STDP_PRE_KERNEL(NAME, T)                                                     \
    static void NAME(const EngramDeliverArgs *a)                                     \
    {                                                                                \
        DELIVER_BODY(T)                                                              \
        const EngramPlasticState *ps = a->plastic;                                   \
        if (!ps || !ps->plastic)                                                     \
            return;                                                                  \
        const double *p = a->params;                                                 \
        T *w = a->weight, *apre = ps->pre[0], *apost = ps->post[0];                  \
        for (int64_t k = 0; k < a->nspikes; k++) {                                   \
            uint32_t s = a->spikes[k];                                               \
            apre[s] = (T)(decayed(apre[s], &ps->pre_last[s], a->step, a->dt,         \
                                  p[G.tau_pre]) + p[G.a_pre]);                       \
            for (uint64_t j = a->row[s]; j < a->row[s + 1]; j++) {                   \
                uint32_t t = a->col[j];                                              \
                apost[t] = (T)decayed(apost[t], &ps->post_last[t], a->step, a->dt,   \
                                      p[G.tau_post]);                                \
                w[j] = (T)clip(w[j] + apost[t], p[G.w_max]);                         \
            }                                                                        \
        }                                                                            \
    }

#define DELIVER_BODY(T)                                                              \
    {                                                                                \
        T *ring = a->ring;                                                           \
        const T *wd = a->weight;                                                     \
        for (int64_t k = 0; k < a->nspikes; k++) {                                   \
            uint32_t s = a->spikes[k];                                               \
            for (uint64_t j = a->row[s]; j < a->row[s + 1]; j++) {                   \
                int64_t d = a->delay ? a->delay[j] : a->delay_steps;                 \
                ring[((a->step + d) % a->ring_slots) * a->ntgt + a->col[j]] += wd[j];\
            }                                                                        \
        }                                                                            \
    }

#define STDP_POST_KERNEL(NAME, T)                                                    \
    static void NAME(const EngramDeliverArgs *a)                                     \
    {                                                                                \
        const EngramPlasticState *ps = a->plastic;                                   \
        const double *p = a->params;                                                 \
        T *w = a->weight, *apre = ps->pre[0], *apost = ps->post[0];                  \
        for (int64_t k = 0; k < a->nspikes; k++) {                                   \
            uint32_t t = a->spikes[k];                                               \
            apost[t] = (T)(decayed(apost[t], &ps->post_last[t], a->step, a->dt,      \
                                   p[G.tau_post]) + p[G.a_post]);                    \
            for (uint64_t q = ps->post_row[t]; q < ps->post_row[t + 1]; q++) {       \
                uint32_t j = ps->post_syn[q];                                        \
                uint32_t s = ps->post_src[q];                                        \
                apre[s] = (T)decayed(apre[s], &ps->pre_last[s], a->step, a->dt,      \
                                     p[G.tau_pre]);                                  \
                w[j] = (T)clip(w[j] + apre[s], p[G.w_max]);                          \
            }                                                                        \
        }                                                                            \
    }

#define EVERY_KERNEL(NAME, T)                                                        \
    static void NAME(const EngramDeliverArgs *a, int64_t begin, int64_t end)         \
    {                                                                                \
        const EngramPlasticState *ps = a->plastic;                                   \
        T *w = a->weight, *calls = ps->syn[1];                                       \
        for (int64_t s = begin; s < end; s++)                                        \
            for (uint64_t j = a->row[s]; j < a->row[s + 1]; j++) {                   \
                calls[j] += 1;                                                       \
                w[j] = (T)(w[j] + a->params[G.gain] * ps->modulators[0]);            \
            }                                                                        \
    }

LIF_KERNEL(lif_d, double)
LIF_KERNEL(lif_f, float)
DELIVER_KERNEL(deliver_d, double)
DELIVER_KERNEL(deliver_f, float)
STDP_PRE_KERNEL(pre_d, double)
STDP_PRE_KERNEL(pre_f, float)
STDP_POST_KERNEL(post_d, double)
STDP_POST_KERNEL(post_f, float)
EVERY_KERNEL(every_d, double)
EVERY_KERNEL(every_f, float)

/* The arrive kernel of the arrival tests: logs what it is handed (from any
 * thread).  It does not look at a->plastic: the runtime must not call it
 * while the handlers are off. */
#define ARR_MAXLOG 200000
typedef struct ArrEvent {
    int64_t step;
    uint32_t src, tgt;
} ArrEvent;
static ArrEvent arr_log[ARR_MAXLOG];
static int arr_n;

static void arrive_log(const EngramDeliverArgs *a)
{
    for (int64_t e = 0; e < a->nspikes; e++) {
        int i = __atomic_fetch_add(&arr_n, 1, __ATOMIC_RELAXED);
        if (i < ARR_MAXLOG)
            arr_log[i] = (ArrEvent){a->step, a->spikes[e], a->col[a->synapses[e]]};
    }
}

enum { K_LIF, K_DELIVER, K_PRE, K_POST, K_EVERY, K_ARRIVE, K_PER_PREC };
static const EngramKernelFn kernels[] = {
    (EngramKernelFn)lif_d, (EngramKernelFn)deliver_d, (EngramKernelFn)pre_d,
    (EngramKernelFn)post_d, (EngramKernelFn)every_d, (EngramKernelFn)arrive_log,
    (EngramKernelFn)lif_f, (EngramKernelFn)deliver_f, (EngramKernelFn)pre_f,
    (EngramKernelFn)post_f, (EngramKernelFn)every_f, (EngramKernelFn)arrive_log,
};

/* ---- model builder (after test_engine.c) --------------------------------------------- */

typedef struct Builder {
    EngramBlobWriter *w;
    int precision;
    uint32_t dt, duration, seed;
    uint32_t next_stream;
} Builder;

static uint32_t kid(const Builder *b, int k)
{
    return (uint32_t)(b->precision == 8 ? k : k + K_PER_PREC);
}

static EngramCode code_const(EngramBlobWriter *w, double v)
{
    EngramCode c = {engram_blob_insn_count(w), 1};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, v});
    return c;
}

static uint32_t param(Builder *b, const char *name, const char *unit, uint32_t flags, double value)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(b->w, name);
    p.unit = engram_blob_string(b->w, unit);
    p.flags = flags;
    p.value = code_const(b->w, value);
    return engram_blob_param(b->w, &p);
}

static uint32_t list_param(Builder *b, const char *name, const char *unit, const double *vals,
                           uint32_t n)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(b->w, name);
    p.unit = engram_blob_string(b->w, unit);
    p.flags = ENGRAM_PARAM_LIST;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = engram_blob_list_value(b->w, vals[k]);
        if (k == 0)
            p.list_first = i;
    }
    p.list_count = n;
    return engram_blob_param(b->w, &p);
}

static void builder_init(Builder *b, int precision, double duration_ms)
{
    memset(b, 0, sizeof *b);
    b->w = engram_blob_writer_new();
    b->precision = precision;
    b->dt = param(b, "dt", "ms", ENGRAM_PARAM_POSITIVE, 0.1);
    b->duration = param(b, "duration", "ms", ENGRAM_PARAM_NONNEG, duration_ms);
    b->seed = param(b, "seed", "1", ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, 1);
    b->next_stream = 10;
}

static char *path_of(char *buf, const char *pop, const char *what)
{
    sprintf(buf, "%s.%s", pop, what);
    return buf;
}

/* LIF with v_inf = 0 and tau_m = 10 ms: only inputs make it spike. */
static uint32_t add_lif(Builder *b, const char *path, double size)
{
    char nm[128];
    EngramBlobWriter *w = b->w;
    uint32_t psize = param(b, path_of(nm, path, "size"), "1",
                           ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE, size);
    uint32_t ptau = param(b, path_of(nm, path, "tau_m"), "ms", ENGRAM_PARAM_POSITIVE, 10.0);
    EngramStateDesc st = {engram_blob_string(w, "v"), engram_blob_string(w, "mV"),
                          code_const(w, 0.0), 1};
    uint32_t first_state = engram_blob_state(w, &st);
    EngramPortDesc port = {engram_blob_string(w, "exc"), 0};
    uint32_t first_port = engram_blob_port(w, &port);
    uint32_t first_lin = engram_blob_lin_var(w, 0);
    EngramCode a = {engram_blob_insn_count(w), 3};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, -1.0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_PARAM, ptau, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_DIV, 0, 0});
    uint32_t first_coef = engram_blob_coef(w, a);
    engram_blob_coef(w, code_const(w, 0.0));
    EngramPopDesc p = {0};
    p.name = engram_blob_string(w, path);
    p.model = engram_blob_string(w, "TestLIF");
    p.kind = ENGRAM_POP_NEURON;
    p.size_param = psize;
    p.first_state = first_state;
    p.nstates = 1;
    p.first_port = first_port;
    p.nports = 1;
    p.update_kernel = kid(b, K_LIF);
    p.method = ENGRAM_METHOD_EXACT;
    p.nlinear = 1;
    p.first_lin_var = first_lin;
    p.first_coef = first_coef;
    p.refractory_param = p.rate_param = p.times_param = p.indices_param = ENGRAM_NONE;
    p.record_spikes = 1;
    p.stream = b->next_stream++;
    return engram_blob_pop(w, &p);
}

static uint32_t add_times(Builder *b, const char *path, double size, const double *times,
                          const double *idx, uint32_t n)
{
    char nm[128];
    EngramPopDesc p = {0};
    p.size_param = param(b, path_of(nm, path, "size"), "1",
                         ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE, size);
    p.times_param = list_param(b, path_of(nm, path, "times"), "ms", times, n);
    p.indices_param = list_param(b, path_of(nm, path, "indices"), "1", idx, n);
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

static uint32_t add_poisson(Builder *b, const char *path, double size, double rate_hz)
{
    char nm[128];
    EngramPopDesc p = {0};
    p.size_param = param(b, path_of(nm, path, "size"), "1",
                         ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE, size);
    p.rate_param = param(b, path_of(nm, path, "rate"), "1/ms", ENGRAM_PARAM_NONNEG,
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

/* A projection with weight const w_lo (uniform [w_lo, w_hi) when w_hi > w_lo)
 * and a constant delay; static. */
static EngramProjDesc proj_desc(Builder *b, const char *name, uint32_t src, uint32_t dst,
                                EngramConnKind rule, double p_or_k, double w_lo, double w_hi,
                                double delay)
{
    char nm[128];
    EngramProjDesc pj = {0};
    pj.name = engram_blob_string(b->w, name);
    pj.src_pop = src;
    pj.dst_pop = dst;
    pj.rule = rule;
    pj.rule_param = ENGRAM_NONE;
    if (rule == ENGRAM_CONNECT_RANDOM)
        pj.rule_param = param(b, path_of(nm, name, "p"), "1", ENGRAM_PARAM_PROB, p_or_k);
    if (w_hi > w_lo) {
        pj.weight.kind = ENGRAM_DIST_UNIFORM;
        pj.weight.arg[0] = param(b, path_of(nm, name, "weight.low"), "mV", 0, w_lo);
        pj.weight.arg[1] = param(b, path_of(nm, name, "weight.high"), "mV", 0, w_hi);
    } else {
        pj.weight.kind = ENGRAM_DIST_CONST;
        pj.weight.arg[0] = param(b, path_of(nm, name, "weight"), "mV", 0, w_lo);
    }
    pj.delay.kind = ENGRAM_DIST_CONST;
    pj.delay.arg[0] = param(b, path_of(nm, name, "delay"), "ms", 0, delay);
    pj.deliver_kernel = kid(b, K_DELIVER);
    pj.on_post_kernel = pj.every_kernel = ENGRAM_NONE;
    pj.plastic_param = pj.every_param = pj.w_lo_param = pj.w_hi_param = ENGRAM_NONE;
    pj.stream = b->next_stream;
    b->next_stream += 4;
    return pj;
}

static uint32_t add_var(Builder *b, const char *name, EngramCode init)
{
    EngramVarDesc v = {engram_blob_string(b->w, name), engram_blob_string(b->w, "1"), init};
    return engram_blob_var(b->w, &v);
}

/* Makes pj plastic with the STDP rule: synapse vars c (= 10 INDEX + U(0,1))
 * and calls (0), pre trace apre, post traces apost and tag (= 2 INDEX + 1). */
static void make_stdp(Builder *b, EngramProjDesc *pj, double every_ms)
{
    char nm[128];
    /* the rule's params go by a fixed prefix "P." whatever the projection's name */
    G.tau_pre = param(b, "P.tau_pre", "ms", ENGRAM_PARAM_POSITIVE, 20.0);
    G.tau_post = param(b, "P.tau_post", "ms", ENGRAM_PARAM_POSITIVE, 10.0);
    G.a_pre = param(b, "P.A_pre", "mV", 0, 0.1);
    G.a_post = param(b, "P.A_post", "mV", 0, -0.12);
    G.w_max = param(b, "P.w_max", "mV", 0, 2.0);
    G.gain = param(b, "P.gain", "mV", 0, 0.0);
    pj->plastic = 1;
    pj->plastic_param = param(b, path_of(nm, "P", "plastic"), "1", 0, 1);
    pj->w_lo_param = param(b, "P.w_min", "mV", 0, 0.0);
    pj->w_hi_param = G.w_max;
    pj->deliver_kernel = kid(b, K_PRE);
    pj->on_post_kernel = kid(b, K_POST);
    if (every_ms > 0) {
        pj->every_kernel = kid(b, K_EVERY);
        pj->every_param = param(b, "P.every", "ms", ENGRAM_PARAM_POSITIVE, every_ms);
    }
    EngramBlobWriter *w = b->w;
    EngramCode c = {engram_blob_insn_count(w), 7};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_INDEX, 0, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, 10});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_MUL, 0, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, 1});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_UNIFORM, 0, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_ADD, 0, 0});
    EngramCode tag = {engram_blob_insn_count(w), 5};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_INDEX, 0, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, 2});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_MUL, 0, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, 1});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_ADD, 0, 0});
    pj->first_var = add_var(b, "c", c);
    add_var(b, "calls", code_const(w, 0));
    add_var(b, "apre", code_const(w, 0));
    add_var(b, "apost", code_const(w, 0));
    add_var(b, "tag", tag);
    pj->nsyn_vars = 2;
    pj->npre = 1;
    pj->npost = 2;
    pj->lazy_syn = 0;
}

static uint32_t add_modulator(Builder *b, const char *name, double baseline, double tau)
{
    char nm[128];
    EngramModulatorDesc m = {0};
    m.name = engram_blob_string(b->w, name);
    m.unit = engram_blob_string(b->w, "1");
    m.baseline_param = param(b, path_of(nm, name, "baseline"), "1", 0, baseline);
    m.tau_param = param(b, path_of(nm, name, "tau"), "ms", 0, tau);
    return engram_blob_modulator(b->w, &m);
}

static uint32_t add_per_spike(Builder *b, const char *name, uint32_t mod, double amount,
                              uint32_t src)
{
    char nm[128];
    EngramReleaseDesc r = {0};
    r.name = engram_blob_string(b->w, name);
    r.kind = ENGRAM_RELEASE_PER_SPIKE;
    r.modulator = mod;
    r.amount_param = param(b, path_of(nm, name, "amount"), "1", 0, amount);
    r.src_pop = src;
    r.src_index_param = r.dst_pop = r.dst_index_param = r.window_param = ENGRAM_NONE;
    r.delay.kind = ENGRAM_DIST_CONST;
    r.delay.arg[0] = r.delay.arg[1] = r.delay.arg[2] = r.delay.arg[3] = ENGRAM_NONE;
    r.stream = b->next_stream++;
    return engram_blob_release(b->w, &r);
}

/* delay_lo < 0: no delay; delay_hi > delay_lo: uniform. */
static uint32_t add_when(Builder *b, const char *name, uint32_t mod, double amount,
                         uint32_t dst, double dst_i, uint32_t src, double src_i, double window,
                         double delay_lo, double delay_hi)
{
    char nm[128];
    EngramReleaseDesc r = {0};
    r.name = engram_blob_string(b->w, name);
    r.kind = ENGRAM_RELEASE_WHEN;
    r.modulator = mod;
    r.amount_param = param(b, path_of(nm, name, "amount"), "1", 0, amount);
    r.src_pop = src;
    r.src_index_param = param(b, path_of(nm, name, "src_index"), "1", 0, src_i);
    r.dst_pop = dst;
    r.dst_index_param = param(b, path_of(nm, name, "dst_index"), "1", 0, dst_i);
    r.window_param = param(b, path_of(nm, name, "window"), "ms", 0, window);
    r.delay.kind = ENGRAM_DIST_CONST;
    r.delay.arg[0] = r.delay.arg[1] = r.delay.arg[2] = r.delay.arg[3] = ENGRAM_NONE;
    if (delay_lo >= 0 && delay_hi > delay_lo) {
        r.delay.kind = ENGRAM_DIST_UNIFORM;
        r.delay.arg[0] = param(b, path_of(nm, name, "delay.low"), "ms", 0, delay_lo);
        r.delay.arg[1] = param(b, path_of(nm, name, "delay.high"), "ms", 0, delay_hi);
    } else if (delay_lo >= 0) {
        r.delay.arg[0] = param(b, path_of(nm, name, "delay"), "ms", 0, delay_lo);
    }
    r.stream = b->next_stream++;
    return engram_blob_release(b->w, &r);
}

static void add_weight_rec(Builder *b, uint32_t proj, double every_ms, uint32_t per_synapse)
{
    char nm[64];
    snprintf(nm, sizeof nm, "rec%u.every", proj);
    EngramWeightRecDesc r = {proj, param(b, nm, "ms", 0, every_ms), per_synapse};
    engram_blob_weight_rec(b->w, &r);
}

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

/* ---- models --------------------------------------------------------------------------- */

#define W0 1.0

/* Pre/post pairs on two synapses: pre source A (A[0] at 1 ms, A[1] at 5 ms),
 * B (both at 1 ms) -> T with 100 mV after 2 ms, so T[0] and T[1] spike at
 * 3 ms: synapse 0 sees pre 2 ms before post, synapse 1 post 2 ms before pre.
 * Projection 1 ("P": A -> T one_to_one, weight W0) is plastic. */
static void model_stdp(EngramProgram *prog, int precision, double duration, double every_ms,
                       bool record, double w0)
{
    Builder b;
    builder_init(&b, precision, duration);
    double ta[] = {1.0, 5.0}, ia[] = {0, 1}, tb[] = {1.0, 1.0}, ib[] = {0, 1};
    uint32_t A = add_times(&b, "R.A", 2, ta, ia, 2);
    uint32_t B = add_times(&b, "R.B", 2, tb, ib, 2);
    uint32_t T = add_lif(&b, "R.T", 2);
    EngramProjDesc drive = proj_desc(&b, "drive", B, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, 100, 0, 2.0);
    engram_blob_proj(b.w, &drive);
    EngramProjDesc pj = proj_desc(&b, "P", A, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, w0, 0, 1.0);
    make_stdp(&b, &pj, every_ms);
    uint32_t P = engram_blob_proj(b.w, &pj);
    add_modulator(&b, "da", 0.5, 1e9);
    if (record)
        add_weight_rec(&b, P, 1.0, 0);
    finish(&b, "stdp", prog);
}

/* ---- running ------------------------------------------------------------------------------- */

static char tmp_root[256];

static void make_tmp(void)
{
    test_tmp_make(tmp_root, sizeof tmp_root, "plastic");
}

static void rm_tmp(void)
{
    test_tmp_remove(tmp_root);
}

TestSuite(plastic, .init = make_tmp, .fini = rm_tmp);

static int run_sim(const EngramProgram *prog, const char *out, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "sim";
    argv[argc++] = "--out";
    argv[argc++] = (char *)out;
    argv[argc++] = "--quiet";
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

static char *slurp(const char *dir, const char *file, size_t *len)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
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

/* Numbers of the JSON array that follows `key` after `from` in s. */
static size_t json_array(const char *s, const char *from, const char *key, double *out,
                         size_t max)
{
    const char *p = from ? strstr(s, from) : s;
    cr_assert(p, "no %s", from);
    p = strstr(p, key);
    cr_assert(p, "no %s after %s", key, from);
    p = strchr(p, '[');
    size_t n = 0;
    for (p++; *p && *p != ']' && n < max;) {
        char *end;
        out[n++] = strtod(p, &end);
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return n;
}

static double json_value(const char *s, const char *from, const char *key)
{
    const char *p = from ? strstr(s, from) : s;
    cr_assert(p, "no %s", from);
    p = strstr(p, key);
    cr_assert(p, "no %s after %s in\n%s", key, from, s);
    return strtod(p + strlen(key), NULL);
}

/* Model, params and network through the internal API; sets are NAME=VALUE. */
typedef struct Net {
    EngramModel m;
    double pv[256];
    EngramNetwork net;
} Net;

static void net_build(Net *n, const EngramProgram *prog, const char *set)
{
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&n->m, prog, &err), 0, "%s", err.msg);
    EngramOverride ov = {0};
    if (set) {
        const char *eq = strchr(set, '=');
        ov = (EngramOverride){set, set, (size_t)(eq - set), eq + 1};
    }
    cr_assert_eq(engram_params_resolve(&n->m, &ov, set ? 1 : 0, n->pv, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_network_build(&n->net, &n->m, n->pv, &err), 0, "%s", err.msg);
}

static void net_run(Net *n)
{
    EngramError err = {0};
    EngramSimOptions so = {0};
    cr_assert_eq(engram_simulate(&n->net, &so, &err), 0, "%s", err.msg);
}

static double wload(const EngramProjRt *pr, int prec, uint64_t j)
{
    return engram_value_load(pr->weight, prec, j);
}

/* ---- tests: STDP ------------------------------------------------------------------------------ */

static void check_stdp_pair(int precision, double tol)
{
    EngramProgram prog;
    model_stdp(&prog, precision, 10.0, 0, false, W0);
    Net n;
    net_build(&n, &prog, NULL);
    net_run(&n);
    EngramProjRt *pr = &n.net.projs[1];
    cr_assert(pr->plastic && pr->handlers_on);
    cr_assert_eq(pr->csr.nsyn, 2);
    /* both targets spiked once, at 3 ms (step 30) */
    cr_assert_eq(n.net.pops[2].total_spikes, 2);
    double want0 = W0 + 0.1 * exp(-2.0 / 20.0);     /* pre 2 ms before post: LTP */
    double want1 = W0 - 0.12 * exp(-2.0 / 10.0);    /* post 2 ms before pre: LTD */
    cr_assert_float_eq(wload(pr, precision, 0), want0, tol, "w0 = %.17g", wload(pr, precision, 0));
    cr_assert_float_eq(wload(pr, precision, 1), want1, tol, "w1 = %.17g", wload(pr, precision, 1));
    /* lazily decayed traces: apre[0] was brought to step 30, k = 20 steps after
     * its spike; apost[1] to step 50 by the pre spike of A[1] */
    cr_assert_eq(pr->pre_last[0], 30);
    cr_assert_float_eq(engram_value_load(pr->pre[0], precision, 0), 0.1 * exp(-0.1 * 20 / 20.0),
                       tol);
    cr_assert_eq(pr->post_last[1], 50);
    cr_assert_float_eq(engram_value_load(pr->post[0], precision, 1),
                       -0.12 * exp(-0.1 * 20 / 10.0), tol);
    cr_assert_eq(pr->pre_last[1], 50);
    cr_assert_float_eq(engram_value_load(pr->pre[0], precision, 1), 0.1, tol);
    engram_network_free(&n.net);
    test_prog_free(&prog);
}

Test(plastic, stdp_pair_double)
{
    check_stdp_pair(8, 1e-14);
}

Test(plastic, stdp_pair_float)
{
    check_stdp_pair(4, 1e-6);
}

Test(plastic, state_layout_and_initial_values)
{
    EngramProgram prog;
    model_stdp(&prog, 8, 0.0, 0, false, W0);
    Net n;
    net_build(&n, &prog, NULL);
    EngramProjRt *st = &n.net.projs[0], *pr = &n.net.projs[1];
    /* static: no plastic state, homogeneous weight */
    cr_assert(!st->plastic && !st->weight && !st->syn && !st->csr.tgt_row);
    /* plastic: per-synapse weight W0 although the weight is a constant */
    cr_assert(pr->weight && pr->syn && pr->pre && pr->post && pr->post_src);
    cr_assert_null(pr->syn_last);   /* lazy_syn = 0 */
    for (int j = 0; j < 2; j++)
        cr_assert_eq(((double *)pr->weight)[j], W0);
    const EngramPlasticState *ps = &pr->ps;
    cr_assert_eq(ps->syn, (void *const *)pr->syn);
    cr_assert_null(ps->pre_state);   /* the source is a spike-times population */
    cr_assert_eq(ps->post_state, (void *const *)n.net.pops[2].state);
    cr_assert_eq(ps->modulators, n.net.mods.level);
    cr_assert_float_eq(ps->modulators[0], 0.5, 0);   /* starts at baseline */
    cr_assert_eq(ps->plastic, 1);
    /* c = 10 INDEX + U(0,1) keyed (seed, stream + 3, target, rank << 32) */
    for (uint32_t j = 0; j < 2; j++) {
        EngramRng r;
        engram_rng_init(&r, 1, pr->desc->stream + 3, pr->csr.col[j], 0);
        double want = 10.0 * j + engram_rng_uniform(&r);
        cr_assert_eq(((double *)pr->syn[0])[j], want);
        cr_assert_eq(((double *)pr->syn[1])[j], 0.0);
    }
    /* tag = 2 INDEX + 1 over targets; *_last start at 0 */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(((double *)pr->post[1])[i], 2.0 * i + 1);
        cr_assert_eq(pr->pre_last[i], 0);
        cr_assert_eq(pr->post_last[i], 0);
    }
    engram_network_free(&n.net);
    test_prog_free(&prog);
}

/* The post-side index on random connectivity: every synapse once, under its
 * target, sources ascending, post_src = the synapse's row. */
Test(plastic, post_index)
{
    Builder b;
    builder_init(&b, 8, 0.0);
    uint32_t S = add_poisson(&b, "R.S", 50, 10.0);
    uint32_t T = add_lif(&b, "R.T", 40);
    EngramProjDesc pj = proj_desc(&b, "P", S, T, ENGRAM_CONNECT_RANDOM, 0.3, 0.5, 1.0, 1.0);
    make_stdp(&b, &pj, 0);
    engram_blob_proj(b.w, &pj);
    EngramProgram prog;
    finish(&b, "idx", &prog);
    Net n;
    net_build(&n, &prog, NULL);
    const EngramProjRt *pr = &n.net.projs[0];
    const EngramPlasticState *ps = &pr->ps;
    uint64_t nsyn = pr->csr.nsyn;
    cr_assert(nsyn > 300);
    uint8_t *seen = calloc(nsyn, 1);
    cr_assert_eq(ps->post_row[0], 0);
    cr_assert_eq(ps->post_row[40], nsyn);
    for (uint32_t t = 0; t < 40; t++)
        for (uint64_t q = ps->post_row[t]; q < ps->post_row[t + 1]; q++) {
            uint32_t j = ps->post_syn[q];
            uint32_t s = ps->post_src[q];
            cr_assert(j < nsyn && !seen[j]);
            seen[j] = 1;
            cr_assert_eq(pr->csr.col[j], t);
            cr_assert(pr->csr.row[s] <= j && j < pr->csr.row[s + 1]);
            if (q > ps->post_row[t])
                cr_assert(ps->post_src[q - 1] < s);
        }
    free(seen);
    /* the estimate counts the plastic state */
    EngramEstimate est;
    EngramError err = {0};
    cr_assert_eq(engram_estimate(&n.m, n.pv, &est, &err), 0);
    double e = 0.3 * 50 * 40;
    cr_assert(est.proj_bytes[0] >= (uint64_t)(e * (4 + 8 + 4 + 2 * 8 + 8 + 4)));
    engram_estimate_free(&est);
    engram_network_free(&n.net);
    test_prog_free(&prog);
}

Test(plastic, set_plastic_zero_freezes_weights)
{
    EngramProgram prog;
    model_stdp(&prog, 8, 10.0, 0.5, false, W0);
    Net n;
    net_build(&n, &prog, "P.plastic=0");
    cr_assert(!n.net.projs[1].handlers_on);
    cr_assert_eq(n.net.projs[1].ps.plastic, 0);
    net_run(&n);
    const EngramProjRt *pr = &n.net.projs[1];
    for (int j = 0; j < 2; j++) {
        cr_assert_eq(((double *)pr->weight)[j], W0);
        cr_assert_eq(((double *)pr->syn[1])[j], 0.0);   /* every never ran */
        cr_assert_eq(((double *)pr->pre[0])[j], 0.0);   /* nor the handlers */
    }
    engram_network_free(&n.net);
    test_prog_free(&prog);
    /* spikes are still delivered: with a 50 mV weight A alone makes T fire */
    Builder b;
    builder_init(&b, 8, 10.0);
    double ta[] = {1.0}, ia[] = {0};
    uint32_t A = add_times(&b, "R.A", 1, ta, ia, 1);
    uint32_t T = add_lif(&b, "R.T", 1);
    EngramProjDesc pj = proj_desc(&b, "P", A, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, 50, 0, 1.0);
    make_stdp(&b, &pj, 0);
    engram_blob_proj(b.w, &pj);
    finish(&b, "frozen", &prog);
    char *dir = out_dir("frozen");
    cr_assert_eq(run_sim(&prog, dir, "--set", "P.plastic=0", NULL), 0);
    char *s = slurp(dir, "summary.json", NULL);
    cr_assert(strstr(s, "\"R.T\": {\"model\": \"TestLIF\", \"source\": false, \"size\": 1, "
                        "\"spikes\": 1"), "%s", s);
    cr_assert_eq(json_value(s, "\"projections\"", "\"mean\": "), 50.0);
    free(s);
    test_prog_free(&prog);
}

/* every 0.5 ms = 5 steps over 100 steps: steps 0, 5, ..., 95, 20 calls;
 * with gain g and a modulator at 0.5 (tau huge), w gains 20 g 0.5. */
Test(plastic, every_kernel_is_clocked)
{
    EngramProgram prog;
    model_stdp(&prog, 8, 10.0, 0.5, false, W0);
    Net n;
    net_build(&n, &prog, "P.gain=0.001");
    cr_assert_eq(n.net.projs[1].every_steps, 5);
    net_run(&n);
    const EngramProjRt *pr = &n.net.projs[1];
    for (int j = 0; j < 2; j++)
        cr_assert_eq(((double *)pr->syn[1])[j], 20.0);
    double w0 = W0 + 0.1 * exp(-2.0 / 20.0);
    /* the every increments land before and after the STDP step; the sum is the same */
    cr_assert_float_eq(((double *)pr->weight)[0], w0 + 20 * 0.001 * 0.5, 1e-12);
    engram_network_free(&n.net);
    test_prog_free(&prog);
}

/* ---- tests: modulators ------------------------------------------------------------------------------ */

/* Spikes of S: 3 at step 10, 1 at step 40.  da: baseline 0.2, tau 5 ms; 0.3 per spike. */
static void model_per_spike(EngramProgram *prog, double duration)
{
    Builder b;
    builder_init(&b, 8, duration);
    double t[] = {1.0, 1.0, 1.0, 4.0}, idx[] = {0, 1, 2, 1};
    uint32_t S = add_times(&b, "R.S", 3, t, idx, 4);
    uint32_t da = add_modulator(&b, "da", 0.2, 5.0);
    add_per_spike(&b, "release0", da, 0.3, S);
    finish(&b, "mod", prog);
}

Test(plastic, modulator_decay_and_per_spike_release)
{
    EngramProgram prog;
    model_per_spike(&prog, 10.0);
    Net n;
    net_build(&n, &prog, NULL);
    cr_assert_eq(n.net.mods.level[0], 0.2);
    net_run(&n);
    /* the recurrence, step by step: decay, then amount x spikes */
    double f = exp(-0.1 / 5.0), m = 0.2, sum = 0;
    for (int s = 0; s < 100; s++) {
        m = 0.2 + (m - 0.2) * f;
        m += s == 10 ? 0.9 : (s == 40 ? 0.3 : 0.0);
        sum += m;
    }
    cr_assert_float_eq(n.net.mods.level[0], m, 1e-15);
    /* closed form: 0.2 + 0.9 f^89 + 0.3 f^59 */
    cr_assert_float_eq(m, 0.2 + 0.9 * pow(f, 89) + 0.3 * pow(f, 59), 1e-12);
    cr_assert_eq(n.net.mods.rels[0].applied, 4);
    engram_network_free(&n.net);
    char *dir = out_dir("mod");
    cr_assert_eq(run_sim(&prog, dir, NULL), 0);
    char *s = slurp(dir, "summary.json", NULL);
    cr_assert_float_eq(json_value(s, "\"modulators\"", "\"final\": "), m, 1e-15);
    cr_assert_float_eq(json_value(s, "\"modulators\"", "\"mean\": "), sum / 100, 1e-15);
    cr_assert(strstr(s, "\"releases\": {\"release0\": 4}"), "%s", s);
    free(s);
    test_prog_free(&prog);
}

/* D[2] fires at 2.0, 3.0, 3.5 ms, D[0] at 2.0 ms; S[1] at 1.0 ms; window 2 ms:
 * events at steps 20 and 30 (Izhikevich: both count), not 35. */
static void model_when(EngramProgram *prog, double delay_lo, double delay_hi)
{
    Builder b;
    builder_init(&b, 8, 20.0);
    double ts[] = {1.0, 0.5}, is[] = {1, 0};
    double td[] = {2.0, 3.0, 3.5, 2.0}, id[] = {2, 2, 2, 0};
    uint32_t S = add_times(&b, "R.S", 3, ts, is, 2);
    uint32_t D = add_times(&b, "R.D", 3, td, id, 4);
    uint32_t da = add_modulator(&b, "da", 0.0, 1e12);
    add_when(&b, "release0", da, 0.5, D, 2, S, 1, 2.0, delay_lo, delay_hi);
    finish(&b, "when", prog);
}

static uint64_t applied_after(const EngramProgram *prog, const char *duration, double *level)
{
    Net n;
    net_build(&n, prog, NULL);
    EngramError err = {0};
    n.pv[n.m.hdr->duration_param] = strtod(duration, NULL);
    engram_network_free(&n.net);
    cr_assert_eq(engram_network_build(&n.net, &n.m, n.pv, &err), 0, "%s", err.msg);
    net_run(&n);
    uint64_t a = n.net.mods.rels[0].applied;
    if (level)
        *level = n.net.mods.level[0];
    engram_network_free(&n.net);
    return a;
}

Test(plastic, release_when_fires_with_the_delay)
{
    EngramProgram prog;
    model_when(&prog, 5.0, 0);   /* 5 ms = 50 steps: due at steps 70 and 80 */
    double level;
    cr_assert_eq(applied_after(&prog, "7.0", NULL), 0);   /* steps 0..69 */
    cr_assert_eq(applied_after(&prog, "7.1", &level), 1);
    cr_assert_float_eq(level, 0.5, 1e-9);
    cr_assert_eq(applied_after(&prog, "8.0", NULL), 1);
    cr_assert_eq(applied_after(&prog, "8.1", &level), 2);
    cr_assert_float_eq(level, 1.0, 1e-9);
    cr_assert_eq(applied_after(&prog, "20", NULL), 2);
    test_prog_free(&prog);
    /* no delay: applied in the step of the dst spike */
    model_when(&prog, -1, 0);
    cr_assert_eq(applied_after(&prog, "2.0", NULL), 0);
    cr_assert_eq(applied_after(&prog, "2.1", NULL), 1);
    cr_assert_eq(applied_after(&prog, "3.1", NULL), 2);
    cr_assert_eq(applied_after(&prog, "20", NULL), 2);
    test_prog_free(&prog);
}

Test(plastic, release_when_uniform_delay_is_drawn_per_event)
{
    EngramProgram prog;
    model_when(&prog, 1.0, 3.0);
    const EngramReleaseDesc *rd =
        ENGRAM_TABLE(prog.blob, EngramReleaseDesc,
                     ((const EngramModelDesc *)prog.blob)->releases_off);
    int64_t due[2];
    for (int e = 0; e < 2; e++) {
        EngramRng r;
        engram_rng_init(&r, 1, rd->stream, 0, (uint64_t)e);
        double d = 1.0 + 2.0 * engram_rng_uniform(&r);
        due[e] = (e ? 30 : 20) + (int64_t)floor(d / 0.1 + 0.5);
    }
    cr_assert_neq(due[0] - 20, due[1] - 30);   /* two draws, not one */
    int64_t lo = due[0] < due[1] ? due[0] : due[1], hi = due[0] < due[1] ? due[1] : due[0];
    char dur[32];
    snprintf(dur, sizeof dur, "%.1f", (double)lo * 0.1);   /* steps 0 .. lo - 1 */
    cr_assert_eq(applied_after(&prog, dur, NULL), 0);
    snprintf(dur, sizeof dur, "%.1f", (double)(lo + 1) * 0.1);
    cr_assert_eq(applied_after(&prog, dur, NULL), lo == hi ? 2 : 1);
    snprintf(dur, sizeof dur, "%.1f", (double)hi * 0.1);
    cr_assert_eq(applied_after(&prog, dur, NULL), lo == hi ? 0 : 1);
    snprintf(dur, sizeof dur, "%.1f", (double)(hi + 1) * 0.1);
    cr_assert_eq(applied_after(&prog, dur, NULL), 2);
    cr_assert_eq(applied_after(&prog, "20", NULL), 2);
    test_prog_free(&prog);
}

/* ---- tests: weights.h5 and summary.json ------------------------------------------------------------ */

static hid_t open_ds(hid_t f, const char *path, hsize_t *dims, int *rank)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    cr_assert(d >= 0, "no %s", path);
    hid_t s = H5Dget_space(d);
    *rank = H5Sget_simple_extent_ndims(s);
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    return d;
}

Test(plastic, weights_h5_layout)
{
    Builder b;
    builder_init(&b, 8, 6.0);
    double ta[] = {1.0, 5.0}, ia[] = {0, 1}, tb[] = {1.0, 1.0}, ib[] = {0, 1};
    uint32_t A = add_times(&b, "R.A", 2, ta, ia, 2);
    uint32_t B = add_times(&b, "R.B", 2, tb, ib, 2);
    uint32_t T = add_lif(&b, "R.T", 2);
    uint32_t L = add_lif(&b, "R.L", 60);
    uint32_t M = add_lif(&b, "R.M", 200);
    EngramProjDesc dr = proj_desc(&b, "drive", B, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, 100, 0, 2.0);
    engram_blob_proj(b.w, &dr);
    EngramProjDesc pj = proj_desc(&b, "R.A->R.T", A, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, W0, 0, 1.0);
    make_stdp(&b, &pj, 0);
    uint32_t P = engram_blob_proj(b.w, &pj);
    EngramProjDesc big = proj_desc(&b, "odd/name%", M, L, ENGRAM_CONNECT_ALL_TO_ALL, 0, 0.5, 0, 1.0);
    uint32_t Q = engram_blob_proj(b.w, &big);
    add_weight_rec(&b, P, 1.0, 0);
    add_weight_rec(&b, Q, 2.5, 0);   /* 12000 synapses: mean only */
    EngramProgram prog;
    finish(&b, "wrec", &prog);
    char *dir = out_dir("w");
    cr_assert_eq(run_sim(&prog, dir, NULL), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/weights.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    hsize_t dims[2];
    int rank;
    /* 60 steps, every 10: samples at 0, 1, ..., 5 ms and the final one at 6 ms */
    double times[8], mean[8], w[16];
    hid_t d = open_ds(f, "/R.A->R.T/times", dims, &rank);
    cr_assert(rank == 1 && dims[0] == 7);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, times);
    H5Dclose(d);
    for (int k = 0; k < 7; k++)
        cr_assert_float_eq(times[k], k * 1.0, 1e-12);
    d = open_ds(f, "/R.A->R.T/weights", dims, &rank);
    cr_assert(rank == 2 && dims[0] == 7 && dims[1] == 2);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    H5Dclose(d);
    d = open_ds(f, "/R.A->R.T/mean", dims, &rank);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mean);
    H5Dclose(d);
    double ltp = W0 + 0.1 * exp(-0.1), ltd = W0 - 0.12 * exp(-0.2);
    for (int k = 0; k < 7; k++) {
        /* the post spike at step 30 shows from the sample at 4 ms on; the
         * pre spike of A[1] at step 50 only in the final sample */
        cr_assert_float_eq(w[2 * k], k >= 4 ? ltp : W0, 1e-14, "sample %d: %.17g %.17g", k, w[2 * k], ltp);
        cr_assert_float_eq(w[2 * k + 1], k >= 6 ? ltd : W0, 1e-14, "sample %d", k);
        cr_assert_float_eq(mean[k], (w[2 * k] + w[2 * k + 1]) / 2, 1e-15);
    }
    uint64_t src[2], tgt[2];
    d = open_ds(f, "/R.A->R.T/source", dims, &rank);
    H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, src);
    H5Dclose(d);
    d = open_ds(f, "/R.A->R.T/target", dims, &rank);
    H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, tgt);
    H5Dclose(d);
    cr_assert(src[0] == 0 && src[1] == 1 && tgt[0] == 0 && tgt[1] == 1);
    /* the unit attribute */
    hid_t g = H5Gopen2(f, "/R.A->R.T", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "unit", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char *unit = NULL;
    cr_assert(H5Aread(a, t, &unit) >= 0);
    cr_assert_str_eq(unit, "mV");
    H5free_memory(unit);
    H5Tclose(t);
    H5Aclose(a);
    H5Gclose(g);
    /* the big static projection: escaped name, mean only, 60 / 25 -> 3 + 1 samples */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    d = open_ds(f, "/odd%2Fname%25/mean", dims, &rank);
    cr_assert_eq(dims[0], 4);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mean);
    H5Dclose(d);
    cr_assert_eq(mean[3], 0.5);
    cr_assert(H5Lexists(f, "/odd%2Fname%25/weights", H5P_DEFAULT) <= 0);
    H5Fclose(f);
    /* summary.json: projections with histograms */
    char *s = slurp(dir, "summary.json", NULL);
    /* 4 target + 8 weight + 2 x 8 synapse variables + 4 + 4 post-side index, no syn_last */
    const char *pp = "\"R.A->R.T\": {\"synapses\": 2, \"bytes_per_synapse\": 36, \"plastic\": true";
    cr_assert(strstr(s, pp), "%s", s);
    double edges[32], counts[32];
    cr_assert_eq(json_array(s, pp, "\"edges\"", edges, 32), 21);
    cr_assert_eq(json_array(s, pp, "\"counts\"", counts, 32), 20);
    cr_assert_eq(edges[0], 0.0);   /* bounds [w_min, w_max] = [0, 2] */
    cr_assert_eq(edges[20], 2.0);
    cr_assert_float_eq(edges[5], 0.5, 1e-15);
    int bin_ltp = (int)(ltp / 0.1), bin_ltd = (int)(ltd / 0.1);
    for (int k = 0; k < 20; k++)
        cr_assert_eq(counts[k], (k == bin_ltp) + (k == bin_ltd), "bin %d", k);
    cr_assert_float_eq(json_value(s, pp, "\"min\": "), ltd, 1e-15);
    cr_assert_float_eq(json_value(s, pp, "\"max\": "), ltp, 1e-15);
    /* static, homogeneous: every synapse in the middle bin of [w - 0.5, w + 0.5] */
    const char *qq = "\"odd/name%\": {\"synapses\": 12000, \"bytes_per_synapse\": 4, \"plastic\": false";
    cr_assert(strstr(s, qq), "%s", s);
    cr_assert_eq(json_array(s, qq, "\"edges\"", edges, 32), 21);
    cr_assert_eq(json_array(s, qq, "\"counts\"", counts, 32), 20);
    cr_assert_eq(edges[0], 0.0);
    cr_assert_eq(edges[20], 1.0);
    cr_assert_eq(counts[10], 12000);
    cr_assert(strstr(s, "\"drive\": {\"synapses\": 2, \"bytes_per_synapse\": "), "%s", s);
    /* valid JSON where python3 is around */
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "command -v python3 >/dev/null || exit 0; python3 -c 'import json,sys; "
             "json.load(open(sys.argv[1]))' '%s/summary.json'", dir);
    cr_assert_eq(system(cmd), 0);
    free(s);
    test_prog_free(&prog);
}

/* A random plastic network: uniform initial weights, drawn synapse variables,
 * Poisson input; two runs give the same weights.h5, byte for byte. */
Test(plastic, determinism)
{
    Builder b;
    builder_init(&b, 8, 200.0);
    uint32_t S = add_poisson(&b, "R.S", 100, 40.0);
    uint32_t T = add_lif(&b, "R.T", 50);
    EngramProjDesc pj = proj_desc(&b, "P", S, T, ENGRAM_CONNECT_RANDOM, 0.2, 2.0, 4.0, 1.0);
    make_stdp(&b, &pj, 5.0);
    uint32_t P = engram_blob_proj(b.w, &pj);
    uint32_t da = add_modulator(&b, "da", 0.0, 50.0);
    add_per_spike(&b, "release0", da, 0.01, T);
    add_weight_rec(&b, P, 10.0, 1);
    EngramProgram prog;
    finish(&b, "det", &prog);
    char *d1 = out_dir("d1"), *d2 = out_dir("d2");
    cr_assert_eq(run_sim(&prog, d1, "--set", "P.gain=0.01", NULL), 0);
    sleep(1);
    cr_assert_eq(run_sim(&prog, d2, "--set", "P.gain=0.01", NULL), 0);
    size_t n1, n2;
    char *a = slurp(d1, "weights.h5", &n1), *c = slurp(d2, "weights.h5", &n2);
    cr_assert(a && c);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, c, n1), 0);
    free(a);
    free(c);
    /* and the rule did something */
    char *s = slurp(d1, "summary.json", NULL);
    double mean = json_value(s, "\"projections\"", "\"mean\": ");
    cr_assert(fabs(mean - 2.0) > 1e-3, "mean %g", mean);   /* clipped at w_max = 2 from [2, 4) */
    cr_assert(json_value(s, "\"releases\"", "\"release0\": ") > 0);
    free(s);
    test_prog_free(&prog);
}

Test(plastic, dry_run_shows_plastic_state_and_recordings)
{
    EngramProgram prog;
    model_stdp(&prog, 8, 1000.0, 0, true, W0);
    char path[400];
    snprintf(path, sizeof path, "%s/dry.txt", tmp_root);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = freopen(path, "w", stdout);
    cr_assert(f);
    char *argv[] = {"sim", "--dry-run", NULL};
    int rc = engram_main(&prog, 2, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    cr_assert_eq(rc, 0);
    char *s = slurp(tmp_root, "dry.txt", NULL);
    cr_assert(strstr(s, "plastic"), "%s", s);
    cr_assert(strstr(s, "weight recordings:"), "%s", s);
    free(s);
    /* 10000 steps every 10: 1001 samples of (time, mean, 2 weights) + ids */
    Net n;
    net_build(&n, &prog, NULL);
    EngramEstimate est;
    EngramError err = {0};
    cr_assert_eq(engram_estimate(&n.m, n.pv, &est, &err), 0);
    cr_assert_eq(est.wrec_bytes[0], 1001 * (16 + 16) + 32);
    cr_assert_eq(n.net.wrecs[0].cap, 1001);
    engram_estimate_free(&est);
    engram_network_free(&n.net);
    test_prog_free(&prog);
}

/* ---- tests: validation ------------------------------------------------------------------------------ */

typedef void (*Edit)(uint8_t *b, EngramModelDesc *d);

static EngramProjDesc *proj1(uint8_t *b, EngramModelDesc *d) { return (EngramProjDesc *)(b + d->projs_off) + 1; }
static void e_on_post(uint8_t *b, EngramModelDesc *d) { proj1(b, d)->on_post_kernel = 99; }
static void e_every(uint8_t *b, EngramModelDesc *d) { proj1(b, d)->every_param = ENGRAM_NONE; }
static void e_vars(uint8_t *b, EngramModelDesc *d) { proj1(b, d)->npost = 3; }
static void e_first_var(uint8_t *b, EngramModelDesc *d) { proj1(b, d)->first_var = 1; }
static void e_bounds(uint8_t *b, EngramModelDesc *d) { proj1(b, d)->w_hi_param = 9999; }
static void e_plastic_flag(uint8_t *b, EngramModelDesc *d) { proj1(b, d)->plastic = 2; }
static void e_var_init(uint8_t *b, EngramModelDesc *d)
{
    ((EngramVarDesc *)(b + d->vars_off))[0].init.first = d->ninsns;
}
static void e_var_param(uint8_t *b, EngramModelDesc *d)
{
    EngramVarDesc *v = (EngramVarDesc *)(b + d->vars_off);
    EngramInsn *in = (EngramInsn *)(b + d->insns_off);
    in[v[1].init.first] = (EngramInsn){ENGRAM_OP_PARAM, d->nparams, 0};
}
static void e_mod_tau(uint8_t *b, EngramModelDesc *d) { ((EngramModulatorDesc *)(b + d->modulators_off))->tau_param = d->nparams; }
static void e_rel_mod(uint8_t *b, EngramModelDesc *d) { ((EngramReleaseDesc *)(b + d->releases_off))->modulator = 5; }
static void e_rel_delay(uint8_t *b, EngramModelDesc *d) { ((EngramReleaseDesc *)(b + d->releases_off))->delay.kind = ENGRAM_DIST_UNIFORM; }
static void e_rel_pop(uint8_t *b, EngramModelDesc *d) { ((EngramReleaseDesc *)(b + d->releases_off))->dst_pop = 77; }
static void e_wrec_proj(uint8_t *b, EngramModelDesc *d) { ((EngramWeightRecDesc *)(b + d->weight_recs_off))->proj = 9; }
static void e_wrec_twice(uint8_t *b, EngramModelDesc *d)
{
    EngramWeightRecDesc *r = (EngramWeightRecDesc *)(b + d->weight_recs_off);
    r[1].proj = r[0].proj;
}
static void e_nvars(uint8_t *b, EngramModelDesc *d) { (void)b; d->nvars = 1u << 30; }

Test(plastic, validation_rejects_bad_tables)
{
    Builder b;
    builder_init(&b, 8, 10.0);
    double ta[] = {1.0}, ia[] = {0};
    uint32_t A = add_times(&b, "R.A", 1, ta, ia, 1);
    uint32_t T = add_lif(&b, "R.T", 1);
    EngramProjDesc st = proj_desc(&b, "S", A, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, 1, 0, 1.0);
    uint32_t S = engram_blob_proj(b.w, &st);
    EngramProjDesc pj = proj_desc(&b, "P", A, T, ENGRAM_CONNECT_ONE_TO_ONE, 0, 1, 0, 1.0);
    make_stdp(&b, &pj, 1.0);
    uint32_t P = engram_blob_proj(b.w, &pj);
    uint32_t da = add_modulator(&b, "da", 0, 10);
    add_when(&b, "release0", da, 1, T, 0, A, 0, 5, 1, 0);
    add_weight_rec(&b, P, 1.0, 0);
    add_weight_rec(&b, S, 1.0, 1);
    EngramProgram prog;
    finish(&b, "val", &prog);
    cr_assert_null(engram_blob_validate(prog.blob, prog.blob_size));
    const Edit edits[] = {e_on_post, e_every, e_vars, e_first_var, e_bounds, e_plastic_flag,
                          e_var_init, e_var_param, e_mod_tau, e_rel_mod, e_rel_delay, e_rel_pop,
                          e_wrec_proj, e_wrec_twice, e_nvars};
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
        uint8_t *c = aligned_alloc(16, (prog.blob_size + 15) & ~(uint64_t)15);
        memcpy(c, prog.blob, prog.blob_size);
        edits[k](c, (EngramModelDesc *)c);
        cr_assert_not_null(engram_blob_validate(c, prog.blob_size), "edit %zu accepted", k);
        free(c);
    }
    /* a static projection's plastic fields are not looked at (zeroed descs stay valid) */
    uint8_t *c = aligned_alloc(16, (prog.blob_size + 15) & ~(uint64_t)15);
    memcpy(c, prog.blob, prog.blob_size);
    EngramProjDesc *p0 = (EngramProjDesc *)(c + ((EngramModelDesc *)c)->projs_off);
    p0->on_post_kernel = p0->every_kernel = 0;
    p0->nsyn_vars = 7;
    cr_assert_null(engram_blob_validate(c, prog.blob_size));
    free(c);
    /* run-time checks: a modulator's tau must be > 0; a release's neuron must exist */
    char *dir = out_dir("val");
    cr_assert_eq(run_sim(&prog, dir, "--set", "da.tau=0", NULL), ENGRAM_EXIT_MODEL);
    cr_assert_eq(run_sim(&prog, dir, "--set", "release0.dst_index=3", NULL), ENGRAM_EXIT_MODEL);
    Net n;
    net_build(&n, &prog, NULL);
    engram_network_free(&n.net);
    n.pv[pj.every_param] = 0.01;   /* under half a step: one step */
    EngramError err = {0};
    cr_assert_eq(engram_network_build(&n.net, &n.m, n.pv, &err), 0, "%s", err.msg);
    cr_assert_eq(n.net.projs[1].every_steps, 1);
    engram_network_free(&n.net);
    n.pv[pj.every_param] = 0;
    cr_assert_eq(engram_network_build(&n.net, &n.m, n.pv, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "P.every"), "%s", err.msg);
    cr_assert_eq(run_sim(&prog, dir, "--set", "P.w_min=5", NULL), ENGRAM_EXIT_MODEL);
    cr_assert_eq(run_sim(&prog, dir, NULL), 0);
    test_prog_free(&prog);
}

/* ---- tests: on pre at arrival ------------------------------------------------------------------- */

/* Poisson S (30, 100 Hz) -> LIF T (25), random p = 0.4, delays uniform in
 * [0.1, 2.5] ms (1-25 steps), `on pre arrival` with the logging kernel. */
static void model_arrival(EngramProgram *prog, double duration)
{
    Builder b;
    builder_init(&b, 8, duration);
    uint32_t S = add_poisson(&b, "R.S", 30, 100.0);
    uint32_t T = add_lif(&b, "R.T", 25);
    EngramProjDesc pj = proj_desc(&b, "P", S, T, ENGRAM_CONNECT_RANDOM, 0.4, 0.5, 0, 1.0);
    pj.delay.kind = ENGRAM_DIST_UNIFORM;
    pj.delay.arg[0] = param(&b, "P.delay.low", "ms", 0, 0.1);
    pj.delay.arg[1] = param(&b, "P.delay.high", "ms", 0, 2.5);
    pj.plastic = 1;
    pj.plastic_param = param(&b, "P.plastic", "1", 0, 1);
    pj.pre_arrival = 1;
    pj.arrive_kernel = kid(&b, K_ARRIVE);
    engram_blob_proj(b.w, &pj);
    finish(&b, "arrival", prog);
}

static int cmp_event(const void *a, const void *b)
{
    const ArrEvent *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return (x->tgt > y->tgt) - (x->tgt < y->tgt);
}

/* Runs the model on `threads` threads; returns the sorted log (malloc'd) and
 * leaves the network in *n (to be freed). */
static ArrEvent *arrival_run(Net *n, const EngramProgram *prog, const char *set, uint32_t threads,
                             int *count)
{
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&n->m, prog, &err), 0, "%s", err.msg);
    EngramOverride ov = {0};
    if (set) {
        const char *eq = strchr(set, '=');
        ov = (EngramOverride){set, set, (size_t)(eq - set), eq + 1};
    }
    cr_assert_eq(engram_params_resolve(&n->m, &ov, set ? 1 : 0, n->pv, &err), 0, "%s", err.msg);
    EngramLayout lay = {0, 1, threads};
    cr_assert_eq(engram_network_build_layout(&n->net, &n->m, n->pv, &lay, &err), 0, "%s", err.msg);
    arr_n = 0;
    net_run(n);
    cr_assert_lt(arr_n, ARR_MAXLOG);
    ArrEvent *log = malloc(((size_t)arr_n + 1) * sizeof *log);
    memcpy(log, arr_log, (size_t)arr_n * sizeof *log);
    qsort(log, (size_t)arr_n, sizeof *log, cmp_event);
    *count = arr_n;
    return log;
}

/* Every synapse gets each spike of its source once, at the step it was sent
 * + the synapse's delay (while that is a step of the run), and nothing else;
 * the same on 1 and 3 threads; and nothing while P.plastic = 0. */
Test(plastic, arrival_at_send_step_plus_delay)
{
    EngramProgram prog;
    model_arrival(&prog, 100.0);
    Net n;
    int got = 0;
    ArrEvent *log = arrival_run(&n, &prog, NULL, 1, &got);
    const EngramProjRt *pr = &n.net.projs[0];
    const EngramPopRt *src = &n.net.pops[0];
    cr_assert_not_null(pr->delay);
    cr_assert(pr->arrival && pr->arrival->perm && pr->arrival->dmin == 1 &&
              pr->arrival->dmax == 25, "delays %d-%d", pr->arrival->dmin, pr->arrival->dmax);
    cr_assert_eq(pr->arrival->hist->slots, 26);
    ArrEvent *want = malloc((src->rec_len * pr->csr.nsyn + 1) * sizeof *want);
    int nwant = 0;
    for (size_t i = 0; i < src->rec_len; i++) {
        uint32_t s = src->rec_id[i];
        for (uint64_t k = pr->csr.row[s]; k < pr->csr.row[s + 1]; k++)
            if (src->rec_step[i] + pr->delay[k] < n.net.nsteps)
                want[nwant++] = (ArrEvent){src->rec_step[i] + pr->delay[k], s, pr->csr.col[k]};
    }
    qsort(want, (size_t)nwant, sizeof *want, cmp_event);
    cr_assert_gt(nwant, 2000, "only %d arrivals: weak test", nwant);
    cr_assert_eq(got, nwant, "%d arrivals handled, %d due", got, nwant);
    for (int i = 0; i < nwant; i++)
        cr_assert(cmp_event(&log[i], &want[i]) == 0,
                  "arrival %d: step %lld, %u -> %u; due: step %lld, %u -> %u", i,
                  (long long)log[i].step, log[i].src, log[i].tgt, (long long)want[i].step,
                  want[i].src, want[i].tgt);
    engram_network_free(&n.net);

    int got3 = 0;
    ArrEvent *log3 = arrival_run(&n, &prog, NULL, 3, &got3);
    cr_assert_eq(got3, nwant);
    cr_assert_eq(memcmp(log3, want, (size_t)nwant * sizeof *want), 0, "3 threads differ");
    engram_network_free(&n.net);

    int off = -1;
    free(arrival_run(&n, &prog, "P.plastic=0", 2, &off));
    cr_assert_eq(off, 0, "%d arrivals handled with P.plastic = 0", off);
    engram_network_free(&n.net);
    free(log);
    free(log3);
    free(want);
    test_prog_free(&prog);
}

/* The history kept for checkpoints: the spikes that may still arrive. */
Test(plastic, arrival_history_list_and_put)
{
    EngramProgram prog;
    model_arrival(&prog, 30.0);
    Net n;
    int got = 0;
    free(arrival_run(&n, &prog, NULL, 1, &got));
    EngramArrivalHist *h = n.net.projs[0].arrival->hist;
    const EngramPopRt *src = &n.net.pops[0];
    int64_t now = n.net.nsteps;   /* 300 */
    size_t m = engram_arrival_list(h, now, NULL, NULL), due = 0;
    for (size_t i = 0; i < src->rec_len; i++)
        due += src->rec_step[i] > now - h->slots && src->rec_step[i] < now;
    cr_assert(m == due && m > 3, "%zu listed, %zu sent in the last %lld steps", m, due,
              (long long)h->slots - 1);
    int64_t *steps = malloc(m * sizeof *steps);
    uint32_t *srcs = malloc(m * sizeof *srcs);
    engram_arrival_list(h, now, steps, srcs);
    engram_arrival_clear(h);
    cr_assert_eq(engram_arrival_list(h, now, NULL, NULL), 0);
    engram_arrival_put(h, now, now - h->slots, 3);   /* too old to arrive: dropped */
    engram_arrival_put(h, now, now, 3);              /* not sent yet: dropped */
    for (size_t i = 0; i < m; i++)
        engram_arrival_put(h, now, steps[i], srcs[i]);
    int64_t *steps2 = malloc(m * sizeof *steps2);
    uint32_t *srcs2 = malloc(m * sizeof *srcs2);
    cr_assert_eq(engram_arrival_list(h, now, steps2, srcs2), m);
    cr_assert(memcmp(steps, steps2, m * sizeof *steps) == 0 &&
              memcmp(srcs, srcs2, m * sizeof *srcs) == 0);
    for (size_t i = 1; i < m; i++)
        cr_assert(steps[i - 1] < steps[i] || (steps[i - 1] == steps[i] && srcs[i - 1] < srcs[i]));
    free(steps);
    free(srcs);
    free(steps2);
    free(srcs2);
    engram_network_free(&n.net);
    test_prog_free(&prog);
}
