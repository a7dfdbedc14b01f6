/*
 * test_codegen_plastic.c - the kernels and tables of plastic projections
 * (docs/language.md section 12) against C references written from the spec.
 *
 * Each test builds an IrModel with a rule by hand, JIT-compiles it at O3,
 * sets up the plastic state (EngramPlasticState) the way the runtime will,
 * calls the delivery, on-post and every kernels for scripted or random spike
 * trains, and compares weights, traces, *_last and rings bit for bit with a
 * reference that computes in the model precision (rd/add/mul below) in the
 * documented order:
 *
 *   D = n * dt, E = exp(a * D), x' = x * E (+ (b / a) * (E - 1)), or x + b * D if a == 0
 *
 * Closed forms (the STDP window, clock-driven decay) are checked as well,
 * with a tolerance, so that the reference itself is anchored to the maths.
 *
 * Order: IR builders, the rules, the harness, references, tests.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "engram_rt.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- IR builders ------------------------------------------------------------- */

static IrExpr pool[1024];
static int npool;

static IrExpr *ex(IrExprKind kind, int index)
{
    cr_assert(npool < 1024, "expression pool exhausted");
    IrExpr *e = &pool[npool++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->index = index;
    return e;
}

static IrExpr *K(double v) { IrExpr *e = ex(IR_CONST, -1); e->value = v; return e; }
static IrExpr *P(int k) { return ex(IR_PARAM, k); }
static IrExpr *bin(OpKind op, IrExpr *a, IrExpr *b)
{
    IrExpr *e = ex(IR_BINARY, -1);
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}
static IrExpr *ADD(IrExpr *a, IrExpr *b) { return bin(OP_ADD, a, b); }
static IrExpr *MUL(IrExpr *a, IrExpr *b) { return bin(OP_MUL, a, b); }
static IrExpr *DIV(IrExpr *a, IrExpr *b) { return bin(OP_DIV, a, b); }

typedef struct TModel {
    IrModel m;
    IrParam params[64];
    double values[64];
    IrPop pops[2];
    IrState states[2][2];
    IrPort ports[2][1];
    IrProj projs[2];
    IrRule rule;
    IrVar syn[2], pre[2], post[2];
    IrRuleAssign stmts[24];
    int nstmts;
    IrModulator mods[1];
    IrRelease rels[2];
    IrWeightRec wrecs[1];
} TModel;

static TModel tm;
static int prec;

static int add_param(const char *path, double v)
{
    int k = tm.m.nparams++;
    tm.params[k] = (IrParam){.path = path, .value = K(v)};
    tm.values[k] = v;
    return k;
}

static void add_pop(const char *path)
{
    int i = tm.m.npops++;
    IrPop *p = &tm.pops[i];
    *p = (IrPop){.path = path, .model = "M", .kind = ENGRAM_POP_NEURON, .method = ENGRAM_METHOD_EXACT,
                 .states = tm.states[i], .ports = tm.ports[i], .refractory_param = -1,
                 .rate_param = -1, .times_param = -1, .indices_param = -1};
    p->size_param = add_param(i == 0 ? "A.size" : "B.size", 8);
    p->states[p->nstates++] = (IrState){.name = "v", .init = K(0)};
    p->ports[p->nports++] = (IrPort){.name = "exc", .state = 0};
}

/* Two populations A -> B; a projection that gets the rule when `plastic`. */
static void model_begin(int precision, bool plastic)
{
    memset(&tm, 0, sizeof tm);
    npool = 0;
    prec = precision;
    tm.m.name = "plastic";
    memset(tm.m.sha256, '0', 64);
    tm.m.precision = precision;
    tm.m.params = tm.params;
    tm.m.pops = tm.pops;
    tm.m.projs = tm.projs;
    tm.m.modulators = tm.mods;
    tm.m.releases = tm.rels;
    tm.m.weight_recs = tm.wrecs;
    tm.m.dt_param = add_param("dt", 0.1);
    tm.m.duration_param = add_param("duration", 100);
    tm.m.seed_param = add_param("seed", 1);
    add_pop("A");
    add_pop("B");
    tm.projs[tm.m.nprojs++] = (IrProj){
        .name = "A->B", .src = 0, .dst = 1, .port = 0, .rule = ENGRAM_CONNECT_RANDOM,
        .rule_param = add_param("A->B.p", 0.5),
        .weight = {ENGRAM_DIST_CONST, {add_param("A->B.weight", 0.5), -1, -1, -1}},
        .delay = {ENGRAM_DIST_CONST, {add_param("A->B.delay", 0.3), -1, -1, -1}},
        .plasticity = plastic ? &tm.rule : NULL};
    tm.rule = (IrRule){.name = "R", .syn_vars = tm.syn, .pre = tm.pre, .post = tm.post,
                       .every_param = -1, .w_lo_param = -1, .w_hi_param = -1};
    if (plastic)
        tm.rule.plastic_param = add_param("A->B.plastic", 1);
}

/* dx/dt = a x + b as the IR has it (either may be NULL). */
static void add_var(IrVar *vars, int *n, const char *name, IrExpr *a, IrExpr *b)
{
    vars[(*n)++] = (IrVar){.name = name, .init = K(0), .lin_a = a, .lin_b = b};
}

static IrRuleAssign *stmt(IrTargetKind target, int index, AssignOp op, IrExpr *value)
{
    IrRuleAssign *s = &tm.stmts[tm.nstmts++];
    *s = (IrRuleAssign){.target = target, .index = index, .op = op, .value = value};
    return s;
}

/* Appends a statement to a handler part (statements of one part are contiguous). */
#define HANDLER_ADD(part, count, ...)       \
    do {                                    \
        IrRuleAssign *s_ = stmt(__VA_ARGS__); \
        if ((count)++ == 0)                 \
            (part) = s_;                    \
    } while (0)

/* ---- the rules ----------------------------------------------------------------- */

typedef struct Stdp {
    int tau_pre, tau_post, a_plus, a_minus, w_lo, w_hi, tau_c, dopamine;
} Stdp;

/* Pair STDP: dx/dt = -x/tau_pre, dy/dt = -y/tau_post;
 * on pre:  w -= A_minus * y; after x += 1
 * on post: before y += 1; w += A_plus * x;  bounds [w_lo, w_hi]. */
static Stdp rule_stdp(void)
{
    Stdp k = {.tau_pre = add_param("A->B.tau_pre", 20), .tau_post = add_param("A->B.tau_post", 30),
              .a_plus = add_param("A->B.A_plus", 0.01), .a_minus = add_param("A->B.A_minus", 0.012),
              .w_lo = add_param("A->B.w_lo", 0), .w_hi = add_param("A->B.w_max", 1)};
    IrRule *r = &tm.rule;
    add_var(tm.pre, &r->npre, "x", DIV(K(-1), P(k.tau_pre)), NULL);
    add_var(tm.post, &r->npost, "y", DIV(K(-1), P(k.tau_post)), NULL);
    r->has_on_pre = r->has_on_post = true;
    HANDLER_ADD(r->on_pre.syn, r->on_pre.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_SUB,
                MUL(P(k.a_minus), ex(IR_POST_TRACE, 0)));
    HANDLER_ADD(r->on_pre.after, r->on_pre.nafter, IR_TGT_PRE, 0, ASSIGN_ADD, K(1));
    HANDLER_ADD(r->on_post.before, r->on_post.nbefore, IR_TGT_POST, 0, ASSIGN_ADD, K(1));
    HANDLER_ADD(r->on_post.syn, r->on_post.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_ADD,
                MUL(P(k.a_plus), ex(IR_PRE_TRACE, 0)));
    r->w_lo_param = k.w_lo;
    r->w_hi_param = k.w_hi;
    return k;
}

/* Reward-modulated STDP: the pairings go to an eligibility c (dc/dt =
 * -c/tau_c, lazy) and every 1 ms: w += c * dopamine * dt. */
static Stdp rule_rstdp(void)
{
    Stdp k = rule_stdp();
    IrRule *r = &tm.rule;
    k.tau_c = add_param("A->B.tau_c", 50);
    tm.mods[0] = (IrModulator){.name = "dopamine", .baseline_param = add_param("dopamine.baseline", 0),
                               .tau_param = add_param("dopamine.tau", 200)};
    k.dopamine = tm.m.nmodulators++;
    add_var(tm.syn, &r->nsyn_vars, "c", DIV(K(-1), P(k.tau_c)), NULL);
    r->on_pre.syn->target = IR_TGT_SYNVAR;    /* c -= A_minus * y */
    r->on_pre.syn->index = 0;
    r->on_post.syn->target = IR_TGT_SYNVAR;   /* c += A_plus * x */
    r->on_post.syn->index = 0;
    r->has_every = true;
    r->every_param = add_param("A->B.every", 1);
    HANDLER_ADD(r->every.syn, r->every.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_ADD,
                MUL(MUL(ex(IR_SYNVAR, 0), ex(IR_MODULATOR, k.dopamine)), ex(IR_DT, -1)));
    return k;
}

/* Pair STDP with `on pre arrival`, in the form lower.c gives it: the pre
 * trace x is synapse variable 0 (dx/dt = -x/tau_pre, per synapse);
 * on pre, per synapse at the spike's arrival: w -= A_minus * y; x += 1
 * on post: before y += 1; w += A_plus * x;  bounds [w_lo, w_hi]. */
static Stdp rule_arrival(void)
{
    Stdp k = {.tau_pre = add_param("A->B.tau_pre", 20), .tau_post = add_param("A->B.tau_post", 30),
              .a_plus = add_param("A->B.A_plus", 0.01), .a_minus = add_param("A->B.A_minus", 0.012),
              .w_lo = add_param("A->B.w_lo", 0), .w_hi = add_param("A->B.w_max", 1)};
    IrRule *r = &tm.rule;
    add_var(tm.syn, &r->nsyn_vars, "x", DIV(K(-1), P(k.tau_pre)), NULL);
    add_var(tm.post, &r->npost, "y", DIV(K(-1), P(k.tau_post)), NULL);
    r->has_on_pre = r->has_on_post = r->pre_arrival = true;
    HANDLER_ADD(r->on_pre.syn, r->on_pre.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_SUB,
                MUL(P(k.a_minus), ex(IR_POST_TRACE, 0)));
    HANDLER_ADD(r->on_pre.syn, r->on_pre.nsyn, IR_TGT_SYNVAR, 0, ASSIGN_ADD, K(1));
    HANDLER_ADD(r->on_post.before, r->on_post.nbefore, IR_TGT_POST, 0, ASSIGN_ADD, K(1));
    HANDLER_ADD(r->on_post.syn, r->on_post.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_ADD,
                MUL(P(k.a_plus), ex(IR_SYNVAR, 0)));
    r->w_lo_param = k.w_lo;
    r->w_hi_param = k.w_hi;
    return k;
}

/* ---- harness ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static double urand(double lo, double hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1.0p-53;
}

static void *arr_new(int n) { return calloc((size_t)n + 1, (size_t)prec); }
static double arr_get(const void *a, int i) { return prec == 4 ? ((const float *)a)[i] : ((const double *)a)[i]; }
static void arr_set(void *a, int i, double v)
{
    if (prec == 4)
        ((float *)a)[i] = (float)v;
    else
        ((double *)a)[i] = v;
}

static double rd(double x) { return prec == 4 ? (double)(float)x : x; }
static double add(double a, double b) { return prec == 4 ? (double)((float)a + (float)b) : a + b; }
static double sub(double a, double b) { return prec == 4 ? (double)((float)a - (float)b) : a - b; }
static double mul(double a, double b) { return prec == 4 ? (double)((float)a * (float)b) : a * b; }
static double dvd(double a, double b) { return prec == 4 ? (double)((float)a / (float)b) : a / b; }
static double rexp(double x) { return prec == 4 ? (double)expf((float)x) : exp(x); }
static double rmin(double a, double b) { return isnan(a) ? a : a < b ? a : b; }
static double rmax(double a, double b) { return isnan(a) ? a : a > b ? a : b; }

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

enum { MAXN = 8, MAXSYN = 64, SLOTS = 8 };

/* One projection's arrays, kernel side, and the reference's copies. */
typedef struct Net {
    int nsrc, ntgt, nsyn;
    uint64_t row[MAXN + 1], prow[MAXN + 1];
    uint32_t psyn[MAXSYN];
    uint32_t col[MAXSYN], psrc[MAXSYN];
    uint16_t delay[MAXSYN];
    void *w, *syn[2], *pre[2], *post[2], *ring, *pre_st[1], *post_st[1], *decay;
    int32_t syn_last[MAXSYN], pre_last[MAXN], post_last[MAXN];
    double mods[1];
    EngramPlasticState ps;
    EngramDeliverArgs a;
    EngramDeliverKernel deliver, on_post, arrive;
    EngramEveryKernel every;
    uint32_t ev_src[MAXSYN];   /* the arrive kernel's events */
    uint64_t ev_syn[MAXSYN];
    /* reference */
    double rw[MAXSYN], rsyn[MAXSYN], rpre[MAXN], rpost[MAXN], rring[SLOTS * MAXN];
    int32_t rsyn_last[MAXSYN], rpre_last[MAXN], rpost_last[MAXN];
} Net;

static DiagCtx diag;

static CgJit *jit_model(void)
{
    diag_init(&diag);
    CgOptions opt = {.cpu = NULL, .opt_level = 3, .verify = true};
    CgModule *cm = cg_generate(&diag, &tm.m, &opt);
    if (!cm)
        diag_flush(&diag, stderr);
    cr_assert_not_null(cm, "cg_generate failed");
    CgJit *j = cg_jit_open(&diag, cm);
    cr_assert_not_null(j, "cg_jit_open failed");
    return j;
}

static void jit_done(CgJit *j)
{
    cg_jit_close(j);
    diag_free(&diag);
}

static void *lookup(CgJit *j, const char *name)
{
    void *f = cg_jit_lookup(&diag, j, name);
    cr_assert_not_null(f, "%s not found", name);
    return f;
}

/* Random connectivity with probability p (at least one synapse per source
 * when full), random delays, weights in [0.2, 0.8]; CSR by source and by target. */
static void net_init(Net *n, CgJit *j, int nsrc, int ntgt, double p)
{
    memset(n, 0, sizeof *n);
    n->nsrc = nsrc, n->ntgt = ntgt;
    for (int s = 0; s < nsrc; s++) {
        n->row[s] = (uint64_t)n->nsyn;
        for (int t = 0; t < ntgt; t++)
            if (p >= 1 || urand(0, 1) < p) {
                n->col[n->nsyn] = (uint32_t)t;
                n->delay[n->nsyn] = (uint16_t)urand(1, SLOTS);
                n->nsyn++;
            }
    }
    n->row[nsrc] = (uint64_t)n->nsyn;
    int e = 0;
    for (int t = 0; t < ntgt; t++) {
        n->prow[t] = (uint64_t)e;
        for (int s = 0; s < nsrc; s++)
            for (uint64_t k = n->row[s]; k < n->row[s + 1]; k++)
                if (n->col[k] == (uint32_t)t) {
                    n->psyn[e] = k;
                    n->psrc[e++] = (uint32_t)s;
                }
    }
    n->prow[ntgt] = (uint64_t)e;
    n->w = arr_new(MAXSYN);
    n->ring = arr_new(SLOTS * MAXN);
    for (int v = 0; v < 2; v++) {
        n->syn[v] = arr_new(MAXSYN);
        n->pre[v] = arr_new(MAXN);
        n->post[v] = arr_new(MAXN);
    }
    n->pre_st[0] = arr_new(MAXN);
    n->post_st[0] = arr_new(MAXN);
    for (int k = 0; k < n->nsyn; k++) {
        n->rw[k] = rd(urand(0.2, 0.8));
        arr_set(n->w, k, n->rw[k]);
    }
    /* the decay cache as the runtime makes it: 6 variables at most, keys NaN */
    n->decay = arr_new(6 * (ENGRAM_DECAY_STEPS + 1));
    for (int v = 0; v < 6; v++)
        arr_set(n->decay, v * (ENGRAM_DECAY_STEPS + 1), NAN);
    n->ps = (EngramPlasticState){.syn = n->syn, .syn_last = n->syn_last, .pre = n->pre,
                                 .pre_last = n->pre_last, .post = n->post, .post_last = n->post_last,
                                 .pre_state = n->pre_st, .post_state = n->post_st, .post_row = n->prow,
                                 .post_syn = n->psyn, .post_src = n->psrc, .modulators = n->mods,
                                 .plastic = 1, .decay = n->decay};
    n->a = (EngramDeliverArgs){.row = n->row, .col = n->col, .weight = n->w, .delay = n->delay,
                               .ring = n->ring, .ntgt = ntgt, .ring_slots = SLOTS,
                               .params = tm.values, .plastic = &n->ps, .dt = tm.values[tm.m.dt_param],
                               .nsrc = nsrc};
    void *f = lookup(j, "engram_proj_0_deliver");
    memcpy(&n->deliver, &f, sizeof f);
    if (tm.rule.has_on_post) {
        f = lookup(j, "engram_proj_0_on_post");
        memcpy(&n->on_post, &f, sizeof f);
    }
    if (tm.rule.has_every) {
        f = lookup(j, "engram_proj_0_every");
        memcpy(&n->every, &f, sizeof f);
    }
    if (tm.rule.pre_arrival) {
        f = lookup(j, "engram_proj_0_arrive");
        memcpy(&n->arrive, &f, sizeof f);
    }
}

static void net_free(Net *n)
{
    free(n->w);
    free(n->ring);
    free(n->decay);
    for (int v = 0; v < 2; v++) {
        free(n->syn[v]);
        free(n->pre[v]);
        free(n->post[v]);
    }
    free(n->pre_st[0]);
    free(n->post_st[0]);
}

static void net_at(Net *n, int64_t step, const uint32_t *spikes, int count)
{
    n->a.step = step;
    n->a.t = (double)step * n->a.dt;
    n->a.spikes = spikes;
    n->a.nspikes = count;
}

static void net_pre(Net *n, int64_t step, const uint32_t *spikes, int count)
{
    net_at(n, step, spikes, count);
    n->deliver(&n->a);
}

static void net_post(Net *n, int64_t step, const uint32_t *spikes, int count)
{
    net_at(n, step, spikes, count);
    n->on_post(&n->a);
}

/* The arrive kernel for the synapses whose spike (sent at step - delay)
 * arrives at `step`, given the sources that spiked at each earlier step. */
static int net_arrive(Net *n, int64_t step, uint32_t sent[][MAXN], const int *nsent)
{
    int ne = 0;
    for (int d = 1; d <= step && d < SLOTS; d++)
        for (int i = 0; i < nsent[step - d]; i++) {
            uint32_t s = sent[step - d][i];
            for (uint64_t q = n->row[s]; q < n->row[s + 1]; q++)
                if (n->delay[q] == d) {
                    n->ev_src[ne] = s;
                    n->ev_syn[ne++] = q;
                }
        }
    net_at(n, step, n->ev_src, ne);
    n->a.synapses = n->ev_syn;
    n->arrive(&n->a);
    n->a.synapses = NULL;
    return ne;
}

static void net_every(Net *n, int64_t step)
{
    net_at(n, step, NULL, 0);
    n->every(&n->a, 0, n->nsrc);
}

static void net_compare(const Net *n, const char *when)
{
    for (int k = 0; k < n->nsyn; k++) {
        cr_assert(same(arr_get(n->w, k), n->rw[k]), "%s: w[%d] kernel %.17g reference %.17g", when, k,
                  arr_get(n->w, k), n->rw[k]);
        cr_assert(same(arr_get(n->syn[0], k), n->rsyn[k]), "%s: c[%d] kernel %.17g reference %.17g",
                  when, k, arr_get(n->syn[0], k), n->rsyn[k]);
        cr_assert_eq(n->syn_last[k], n->rsyn_last[k], "%s: syn_last[%d]", when, k);
    }
    for (int s = 0; s < n->nsrc; s++) {
        cr_assert(same(arr_get(n->pre[0], s), n->rpre[s]), "%s: x[%d] kernel %.17g reference %.17g",
                  when, s, arr_get(n->pre[0], s), n->rpre[s]);
        cr_assert_eq(n->pre_last[s], n->rpre_last[s], "%s: pre_last[%d]", when, s);
    }
    for (int t = 0; t < n->ntgt; t++) {
        cr_assert(same(arr_get(n->post[0], t), n->rpost[t]), "%s: y[%d] kernel %.17g reference %.17g",
                  when, t, arr_get(n->post[0], t), n->rpost[t]);
        cr_assert_eq(n->post_last[t], n->rpost_last[t], "%s: post_last[%d]", when, t);
    }
    for (int k = 0; k < SLOTS * n->ntgt; k++)
        cr_assert(same(arr_get(n->ring, k), n->rring[k]), "%s: ring[%d] kernel %.17g reference %.17g",
                  when, k, arr_get(n->ring, k), n->rring[k]);
}

/* ---- references --------------------------------------------------------------------------- */

static double par(int k) { return rd(tm.values[k]); }

/* x brought from step `last` to `step` with dx/dt = a x (exact, lazy). */
static double ref_decay(double x, int64_t step, int32_t last, double a)
{
    double d = mul(rd((double)(step - last)), rd(tm.values[tm.m.dt_param]));
    return mul(x, rexp(mul(a, d)));
}

static double ref_rate(int tau) { return dvd(rd(-1), par(tau)); }

static double ref_clip(const Stdp *k, double w) { return rmin(rmax(w, par(k->w_lo)), par(k->w_hi)); }

/* Eligibility c of synapse q up to date (rstdp), syn_last = step. */
static double *ref_c(Net *n, const Stdp *k, int q, int64_t step)
{
    n->rsyn[q] = ref_decay(n->rsyn[q], step, n->rsyn_last[q], ref_rate(k->tau_c));
    n->rsyn_last[q] = (int32_t)step;
    return &n->rsyn[q];
}

/* on pre of (r-)STDP, written out from the spec. */
static void ref_pre(Net *n, const Stdp *k, bool rstdp, int64_t step, const uint32_t *spikes, int count)
{
    for (int i = 0; i < count; i++) {
        int s = (int)spikes[i];
        n->rpre[s] = ref_decay(n->rpre[s], step, n->rpre_last[s], ref_rate(k->tau_pre));
        n->rpre_last[s] = (int32_t)step;
        for (uint64_t q = n->row[s]; q < n->row[s + 1]; q++) {
            int j = (int)n->col[q];
            double *slot = &n->rring[((step + n->delay[q]) % SLOTS) * n->ntgt + j];
            *slot = add(*slot, n->rw[q]);
            double y = ref_decay(n->rpost[j], step, n->rpost_last[j], ref_rate(k->tau_post));
            double dw = mul(par(k->a_minus), y);
            if (rstdp) {
                double *c = ref_c(n, k, (int)q, step);
                *c = sub(*c, dw);
            } else
                n->rw[q] = sub(n->rw[q], dw);
            n->rw[q] = ref_clip(k, n->rw[q]);
        }
        n->rpre[s] = add(n->rpre[s], rd(1));
    }
}

static void ref_post(Net *n, const Stdp *k, bool rstdp, int64_t step, const uint32_t *spikes, int count)
{
    for (int i = 0; i < count; i++) {
        int j = (int)spikes[i];
        n->rpost[j] = ref_decay(n->rpost[j], step, n->rpost_last[j], ref_rate(k->tau_post));
        n->rpost_last[j] = (int32_t)step;
        n->rpost[j] = add(n->rpost[j], rd(1));
        for (int s = 0; s < n->nsrc; s++)
            for (uint64_t q = n->row[s]; q < n->row[s + 1]; q++) {
                if (n->col[q] != (uint32_t)j)
                    continue;
                double x = ref_decay(n->rpre[s], step, n->rpre_last[s], ref_rate(k->tau_pre));
                double dw = mul(par(k->a_plus), x);
                if (rstdp) {
                    double *c = ref_c(n, k, (int)q, step);
                    *c = add(*c, dw);
                } else
                    n->rw[q] = add(n->rw[q], dw);
                n->rw[q] = ref_clip(k, n->rw[q]);
            }
    }
}

/* every: reads c up to date, stores only w (c and syn_last keep their step). */
static void ref_every(Net *n, const Stdp *k, int64_t step)
{
    for (int q = 0; q < n->nsyn; q++) {
        double c = ref_decay(n->rsyn[q], step, n->rsyn_last[q], ref_rate(k->tau_c));
        n->rw[q] = ref_clip(k, add(n->rw[q], mul(mul(c, rd(n->mods[0])), rd(tm.values[tm.m.dt_param]))));
    }
}

/* on pre at arrival (rule_arrival): events (source, synapse) whose spike arrives now. */
static void ref_arrive(Net *n, const Stdp *k, int64_t step, const uint32_t *src, const uint64_t *syn,
                       int count)
{
    (void)src;
    for (int e = 0; e < count; e++) {
        int q = (int)syn[e], j = (int)n->col[q];
        double y = ref_decay(n->rpost[j], step, n->rpost_last[j], ref_rate(k->tau_post));
        double x = ref_decay(n->rsyn[q], step, n->rsyn_last[q], ref_rate(k->tau_pre));
        n->rw[q] = ref_clip(k, sub(n->rw[q], mul(par(k->a_minus), y)));
        n->rsyn[q] = add(x, rd(1));
        n->rsyn_last[q] = (int32_t)step;
    }
}

/* on post of rule_arrival: x read per synapse (not stored: on post assigns no
 * synapse variable). */
static void ref_post_arrival(Net *n, const Stdp *k, int64_t step, const uint32_t *spikes, int count)
{
    for (int i = 0; i < count; i++) {
        int j = (int)spikes[i];
        n->rpost[j] = add(ref_decay(n->rpost[j], step, n->rpost_last[j], ref_rate(k->tau_post)), rd(1));
        n->rpost_last[j] = (int32_t)step;
        for (uint64_t e = n->prow[j]; e < n->prow[j + 1]; e++) {
            int q = (int)n->psyn[e];
            double x = ref_decay(n->rsyn[q], step, n->rsyn_last[q], ref_rate(k->tau_pre));
            n->rw[q] = ref_clip(k, add(n->rw[q], mul(par(k->a_plus), x)));
        }
    }
}

/* Delivery only (the static kernel with per-synapse weights). */
static void ref_deliver(Net *n, int64_t step, const uint32_t *spikes, int count)
{
    for (int i = 0; i < count; i++)
        for (uint64_t q = n->row[spikes[i]]; q < n->row[spikes[i] + 1]; q++) {
            double *slot = &n->rring[((step + n->delay[q]) % SLOTS) * n->ntgt + n->col[q]];
            *slot = add(*slot, n->rw[q]);
        }
}

/* ---- tests: STDP ---------------------------------------------------------------------------- */

/* One pre-post pair dt_steps apart (post - pre) on a single synapse. */
static void stdp_window_case(int precision)
{
    model_begin(precision, true);
    Stdp k = rule_stdp();
    CgJit *j = jit_model();
    const int deltas[] = {-60, -25, -7, -1, 0, 1, 7, 25, 60};
    for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
        Net n;
        net_init(&n, j, 1, 1, 1.0);
        int64_t t_pre = 100 + (deltas[d] < 0 ? -deltas[d] : 0), t_post = t_pre + deltas[d];
        uint32_t zero = 0;
        double w0 = n.rw[0];
        for (int64_t step = 90; step <= 200; step++) {   /* pre before post within a step */
            if (step == t_pre) {
                net_pre(&n, step, &zero, 1);
                ref_pre(&n, &k, false, step, &zero, 1);
            }
            if (step == t_post) {
                net_post(&n, step, &zero, 1);
                ref_post(&n, &k, false, step, &zero, 1);
            }
        }
        char when[32];
        snprintf(when, sizeof when, "delta %d", deltas[d]);
        net_compare(&n, when);
        /* the classic window: A+ e^(-dt/tau+) for post after pre, -A- e^(dt/tau-) before */
        double ms = deltas[d] * 0.1;
        double expect = ms >= 0 ? 0.01 * exp(-ms / 20) : -0.012 * exp(ms / 30);
        double tol = precision == 4 ? 1e-6 : 1e-13;
        cr_assert(fabs((arr_get(n.w, 0) - w0) - expect) < tol, "delta %d: dw %.10g, window %.10g",
                  deltas[d], arr_get(n.w, 0) - w0, expect);
        net_free(&n);
    }
    jit_done(j);
}

Test(codegen_plastic, stdp_window_double) { stdp_window_case(8); }
Test(codegen_plastic, stdp_window_float) { stdp_window_case(4); }

/* Random trains on a random network: every array after every step. */
static void stdp_trains_case(int precision, bool rstdp)
{
    model_begin(precision, true);
    Stdp k = rstdp ? rule_rstdp() : rule_stdp();
    if (!rstdp)
        tm.values[k.a_plus] = 0.3, tm.values[k.a_minus] = 0.35;   /* reach the bounds */
    CgJit *j = jit_model();
    Net n;
    net_init(&n, j, 7, 6, 0.5);
    int changed = 0;
    for (int64_t step = 0; step < 400; step++) {
        uint32_t pre[MAXN], post[MAXN];
        int npre = 0, npost = 0;
        for (int s = 0; s < n.nsrc; s++)
            if (urand(0, 1) < 0.08)
                pre[npre++] = (uint32_t)s;
        for (int t = 0; t < n.ntgt; t++)
            if (urand(0, 1) < 0.08)
                post[npost++] = (uint32_t)t;
        n.mods[0] = urand(-1, 2);
        n.a.delay = step % 3 == 0 ? NULL : n.delay;   /* homogeneous delay now and then */
        n.a.delay_steps = 2;
        if (!n.a.delay)
            for (int q = 0; q < n.nsyn; q++)
                n.delay[q] = 2;
        net_pre(&n, step, pre, npre);
        ref_pre(&n, &k, rstdp, step, pre, npre);
        net_post(&n, step, post, npost);
        ref_post(&n, &k, rstdp, step, post, npost);
        if (rstdp && step % 10 == 0) {
            net_every(&n, step);
            ref_every(&n, &k, step);
        }
        char when[32];
        snprintf(when, sizeof when, "step %d", (int)step);
        net_compare(&n, when);
        if (!n.a.delay)
            for (int q = 0; q < n.nsyn; q++)
                n.delay[q] = (uint16_t)(1 + q % (SLOTS - 1));
    }
    for (int q = 0; q < n.nsyn; q++)
        changed += n.rw[q] == 0 || n.rw[q] == 1;
    if (!rstdp)
        cr_assert_gt(changed, 0, "no weight reached a bound: the test tests too little");
    net_free(&n);
    jit_done(j);
}

Test(codegen_plastic, stdp_random_trains_double) { stdp_trains_case(8, false); }
Test(codegen_plastic, stdp_random_trains_float) { stdp_trains_case(4, false); }
Test(codegen_plastic, eligibility_every_double) { stdp_trains_case(8, true); }
Test(codegen_plastic, eligibility_every_float) { stdp_trains_case(4, true); }

/* ---- tests: on pre at arrival ------------------------------------------------------------------- */

/* Pre sent at step 100 over a delay of 7 steps (0.7 ms), post at step 104:
 * pre before post when the spike is sent (STDP would potentiate), post 0.3 ms
 * before pre where it arrives (step 107): depression, A- e^(-0.3/tau_post).
 * A second post at step 110 pairs with the arrival: A+ e^(-0.3/tau_pre). */
static void arrival_pair_case(int precision)
{
    model_begin(precision, true);
    Stdp k = rule_arrival();
    CgJit *j = jit_model();
    Net n;
    net_init(&n, j, 1, 1, 1.0);
    n.delay[0] = 7;
    uint32_t zero = 0, sent[120][MAXN] = {{0}};
    int nsent[120] = {0};
    sent[100][0] = 0, nsent[100] = 1;
    double w0 = n.rw[0], tol = precision == 4 ? 1e-6 : 1e-13, w;
    for (int64_t step = 90; step < 115; step++) {
        if (step == 100) {
            net_pre(&n, step, &zero, 1);
            ref_deliver(&n, step, &zero, 1);
            cr_assert(same(arr_get(n.w, 0), w0) && n.syn_last[0] == 0,
                      "the handler ran when the spike was sent");
            cr_assert(same(arr_get(n.ring, (107 % SLOTS) * 1), w0), "not delivered for step 107");
        }
        int ne = net_arrive(&n, step, sent, nsent);
        ref_arrive(&n, &k, step, n.ev_src, n.ev_syn, ne);
        cr_assert_eq(ne, step == 107 ? 1 : 0);
        if (step == 104 || step == 110) {
            net_post(&n, step, &zero, 1);
            ref_post_arrival(&n, &k, step, &zero, 1);
        }
        if (step == 107) {
            w = arr_get(n.w, 0);
            cr_assert(fabs((w - w0) + 0.012 * exp(-0.3 / 30)) < tol,
                      "post 0.3 ms before the arrival: dw %.10g, want %.10g", w - w0,
                      -0.012 * exp(-0.3 / 30));
        }
        char when[32];
        snprintf(when, sizeof when, "step %d", (int)step);
        net_compare(&n, when);
    }
    cr_assert_eq(n.syn_last[0], 107);
    w = arr_get(n.w, 0);
    double want = w0 - 0.012 * exp(-0.3 / 30) + 0.01 * exp(-0.3 / 20);
    cr_assert(fabs(w - want) < tol, "after the second post: w %.10g, want %.10g", w, want);
    net_free(&n);
    jit_done(j);
}

Test(codegen_plastic, arrival_pair_double) { arrival_pair_case(8); }
Test(codegen_plastic, arrival_pair_float) { arrival_pair_case(4); }

/* Random trains, random delays: deliver when sent, the handler at arrival,
 * on post; every array after every step; then the same with PROJ.plastic 0. */
static void arrival_trains_case(int precision)
{
    model_begin(precision, true);
    Stdp k = rule_arrival();
    tm.values[k.a_plus] = 0.3, tm.values[k.a_minus] = 0.35;   /* reach the bounds */
    CgJit *j = jit_model();
    Net n;
    net_init(&n, j, 7, 6, 0.5);
    static uint32_t sent[400][MAXN];
    static int nsent[400];
    int events = 0, bounded = 0;
    for (int64_t step = 0; step < 400; step++) {
        uint32_t post[MAXN];
        int npost = 0;
        nsent[step] = 0;
        for (int s = 0; s < n.nsrc; s++)
            if (urand(0, 1) < 0.1)
                sent[step][nsent[step]++] = (uint32_t)s;
        for (int t = 0; t < n.ntgt; t++)
            if (urand(0, 1) < 0.1)
                post[npost++] = (uint32_t)t;
        net_pre(&n, step, sent[step], nsent[step]);
        ref_deliver(&n, step, sent[step], nsent[step]);
        int ne = net_arrive(&n, step, sent, nsent);
        ref_arrive(&n, &k, step, n.ev_src, n.ev_syn, ne);
        events += ne;
        net_post(&n, step, post, npost);
        ref_post_arrival(&n, &k, step, post, npost);
        char when[32];
        snprintf(when, sizeof when, "step %d", (int)step);
        net_compare(&n, when);
    }
    for (int q = 0; q < n.nsyn; q++)
        bounded += n.rw[q] == 0 || n.rw[q] == 1;
    cr_assert(events > 100 && bounded > 0, "%d arrivals, %d weights at a bound: weak test", events,
              bounded);
    n.ps.plastic = 0;   /* the spikes of steps 393-399 arrive at step 400: nothing moves */
    cr_assert_gt(net_arrive(&n, 400, sent, nsent), 0);
    net_compare(&n, "PROJ.plastic = 0");
    net_free(&n);
    jit_done(j);
}

Test(codegen_plastic, arrival_random_trains_double) { arrival_trains_case(8); }
Test(codegen_plastic, arrival_random_trains_float) { arrival_trains_case(4); }

/* ---- tests: lazy integration ------------------------------------------------------------------- */

/* dx/dt = ka x + kb (params); on pre: x += 1; on post: w = x.  The lazy
 * value read at sparse post spikes against a clock-driven integration. */
static void lazy_case(int precision, double ka, double kb)
{
    model_begin(precision, true);
    IrRule *r = &tm.rule;
    int pa = add_param("A->B.ka", ka), pb = add_param("A->B.kb", kb);
    add_var(tm.pre, &r->npre, "x", P(pa), P(pb));
    r->has_on_pre = r->has_on_post = true;
    HANDLER_ADD(r->on_pre.after, r->on_pre.nafter, IR_TGT_PRE, 0, ASSIGN_ADD, K(1));
    HANDLER_ADD(r->on_post.syn, r->on_post.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_SET, ex(IR_PRE_TRACE, 0));
    CgJit *j = jit_model();
    Net n;
    net_init(&n, j, 1, 1, 1.0);
    uint32_t zero = 0;
    double clock = 0, dt = 0.1, step_e = exp(ka * dt);
    for (int64_t step = 0; step < 3000; step++) {
        if (step > 0)   /* clock-driven: one exact step at a time, in double */
            clock = ka == 0 ? clock + kb * dt : clock * step_e + kb / ka * (step_e - 1);
        if (step % 97 == 5) {
            net_pre(&n, step, &zero, 1);
            clock += 1;
        }
        if (step % 41 == 40) {
            net_post(&n, step, &zero, 1);
            double tol = (precision == 4 ? 1e-5 : 1e-11) * fmax(1, fabs(clock));
            cr_assert(fabs(arr_get(n.w, 0) - clock) < tol, "step %d: lazy %.17g, clock %.17g",
                      (int)step, arr_get(n.w, 0), clock);
        }
    }
    cr_assert_eq(n.pre_last[0], 2915, "pre_last is the step of the last pre spike");
    cr_assert_eq(n.post_last[0], 0, "no post trace: post_last untouched");
    net_free(&n);
    jit_done(j);
}

/* The decay cache (EngramPlasticState.decay): a read n steps after the
 * last update gives exactly exp(a (n dt)) in the model precision, from the
 * table below ENGRAM_DECAY_STEPS and from exp above it; a new value of a
 * refills the table. */
static void decay_cache_case(int precision)
{
    model_begin(precision, true);
    IrRule *r = &tm.rule;
    int pa = add_param("A->B.ka", -1.0 / 20);
    add_var(tm.pre, &r->npre, "x", P(pa), NULL);
    r->has_on_pre = r->has_on_post = true;
    HANDLER_ADD(r->on_pre.after, r->on_pre.nafter, IR_TGT_PRE, 0, ASSIGN_SET, K(1));
    HANDLER_ADD(r->on_post.syn, r->on_post.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_SET, ex(IR_PRE_TRACE, 0));
    CgJit *j = jit_model();
    Net n;
    net_init(&n, j, 1, 1, 1.0);
    uint32_t zero = 0;
    const int64_t gaps[] = {1, 2, 100, ENGRAM_DECAY_STEPS - 1, ENGRAM_DECAY_STEPS,
                            ENGRAM_DECAY_STEPS + 1, 3 * ENGRAM_DECAY_STEPS};
    const double kas[] = {-1.0 / 20, -1.0 / 7};
    int64_t step = 0;
    for (int q = 0; q < 2; q++) {
        tm.values[pa] = kas[q];
        for (size_t g = 0; g < sizeof gaps / sizeof *gaps; g++) {
            net_pre(&n, step, &zero, 1);
            net_post(&n, step + gaps[g], &zero, 1);
            double want;
            if (precision == 4) {
                float a = (float)kas[q], dt = (float)tm.values[tm.m.dt_param];
                want = expf(a * ((float)gaps[g] * dt));
            } else {
                want = exp(kas[q] * ((double)gaps[g] * tm.values[tm.m.dt_param]));
            }
            cr_assert(arr_get(n.w, 0) == want, "a %g, %d steps: %.17g, want %.17g", kas[q],
                      (int)gaps[g], arr_get(n.w, 0), want);
            step += gaps[g] + 1;
        }
    }
    net_free(&n);
    jit_done(j);
}

Test(codegen_plastic, decay_cache_exact_double) { decay_cache_case(8); }
Test(codegen_plastic, decay_cache_exact_float) { decay_cache_case(4); }

Test(codegen_plastic, lazy_decay_matches_clock_double) { lazy_case(8, -1.0 / 20, 0); }
Test(codegen_plastic, lazy_decay_matches_clock_float) { lazy_case(4, -1.0 / 20, 0); }
Test(codegen_plastic, lazy_affine_matches_clock) { lazy_case(8, -1.0 / 15, 0.02); }
Test(codegen_plastic, lazy_ramp_when_a_is_zero) { lazy_case(8, 0, 0.003); }

/* ---- tests: what a rule reads; the plastic switch -------------------------------------------------- */

/* on pre: w = post.v + 2 * pre.v + t + dopamine (no bounds, no traces). */
Test(codegen_plastic, rule_reads_states_time_modulators)
{
    model_begin(8, true);
    IrRule *r = &tm.rule;
    tm.mods[0] = (IrModulator){.name = "da", .baseline_param = add_param("da.baseline", 0),
                               .tau_param = add_param("da.tau", 100)};
    tm.m.nmodulators = 1;
    r->has_on_pre = true;
    IrExpr *v = ADD(ADD(ADD(ex(IR_POST_STATE, 0), MUL(K(2), ex(IR_PRE_STATE, 0))), ex(IR_TIME, -1)),
                    ex(IR_MODULATOR, 0));
    HANDLER_ADD(r->on_pre.syn, r->on_pre.nsyn, IR_TGT_WEIGHT, -1, ASSIGN_SET, v);
    CgJit *j = jit_model();
    Net n;
    net_init(&n, j, 3, 4, 1.0);
    for (int i = 0; i < 4; i++) {
        arr_set(n.pre_st[0], i, 10.0 * i);
        arr_set(n.post_st[0], i, 0.5 * i);
    }
    n.mods[0] = 0.25;
    uint32_t spikes[2] = {0, 2};
    net_pre(&n, 7, spikes, 2);
    for (int s = 0; s < 3; s++)
        for (uint64_t q = n.row[s]; q < n.row[s + 1]; q++) {
            double want = s == 1 ? n.rw[q] : 0.5 * n.col[q] + 2 * 10.0 * s + 7 * 0.1 + 0.25;
            cr_assert(same(arr_get(n.w, (int)q), want), "w[%d] = %.17g, want %.17g", (int)q,
                      arr_get(n.w, (int)q), want);
        }
    net_free(&n);
    jit_done(j);
}

/* PROJ.plastic = 0 (or no plastic state): spikes are delivered, nothing moves. */
Test(codegen_plastic, plastic_off_freezes_everything)
{
    for (int precision = 4; precision <= 8; precision += 4) {
        model_begin(precision, true);
        Stdp k = rule_rstdp();
        CgJit *j = jit_model();
        Net n;
        net_init(&n, j, 5, 5, 0.6);
        n.ps.plastic = 0;
        uint32_t spikes[3] = {0, 2, 4};
        for (int pass = 0; pass < 2; pass++) {
            net_pre(&n, 12, spikes, 3);
            for (int i = 0; i < 3; i++)
                for (uint64_t q = n.row[spikes[i]]; q < n.row[spikes[i] + 1]; q++) {
                    double *slot = &n.rring[((12 + n.delay[q]) % SLOTS) * n.ntgt + n.col[q]];
                    *slot = add(*slot, n.rw[q]);
                }
            net_post(&n, 12, spikes, 3);
            net_every(&n, 12);
            net_compare(&n, pass ? "no plastic state" : "plastic = 0");
            n.a.plastic = NULL;
        }
        (void)k;
        net_free(&n);
        jit_done(j);
    }
}

/* ---- tests: IR properties, errors -------------------------------------------------------------------- */

static char *module_ir(void)
{
    diag_init(&diag);
    CgOptions opt = {.cpu = NULL, .opt_level = 3, .verify = true};
    CgModule *cm = cg_generate(&diag, &tm.m, &opt);
    cr_assert_not_null(cm);
    char path[] = "/tmp/test_codegen_plastic_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(cg_write_ir(&diag, cm, path), 0);
    cg_free(cm);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = calloc((size_t)len + 1, 1);
    cr_assert_eq(fread(text, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    unlink(path);
    diag_free(&diag);
    return text;
}

/* The body of `define ... @name(...) { ... }` (without the define line,
 * whose attribute group numbers depend on the rest of the module), malloc'd. */
static char *function_text(const char *ir, const char *name)
{
    char head[96];
    snprintf(head, sizeof head, "@%s(", name);
    const char *f = strstr(ir, head);
    cr_assert_not_null(f, "%s not in the module", name);
    f = strchr(f, '\n');
    cr_assert_not_null(f);
    const char *end = strstr(f, "\n}\n");
    cr_assert_not_null(end);
    return strndup(f, (size_t)(end - f));
}

Test(codegen_plastic, static_kernel_unchanged_and_no_fast_math)
{
    model_begin(4, false);
    char *plain_ir = module_ir();
    char *plain = function_text(plain_ir, "engram_proj_0_deliver");
    /* the same model plus a plastic projection B -> A */
    model_begin(4, false);
    tm.projs[1] = tm.projs[0];
    tm.projs[1].name = "B->A", tm.projs[1].src = 1, tm.projs[1].dst = 0;
    tm.projs[1].plasticity = &tm.rule;
    tm.m.nprojs = 2;
    tm.rule.plastic_param = add_param("B->A.plastic", 1);
    rule_rstdp();
    char *ir = module_ir();
    char *again = function_text(ir, "engram_proj_0_deliver");
    cr_assert_str_eq(plain, again, "a static delivery kernel changed next to a plastic one");
    cr_assert(strstr(ir, "@engram_proj_1_on_post(") && strstr(ir, "@engram_proj_1_every("));
    cr_assert_null(strstr(ir, "fast"), "fast-math flags in the IR");
    cr_assert_null(strstr(ir, "contract"), "contract flags in the IR");
    cr_assert_null(strstr(ir, "fmuladd"), "fused multiply-add in the IR");
    free(plain);
    free(again);
    free(plain_ir);
    free(ir);
}

Test(codegen_plastic, assigning_the_other_sides_trace_is_an_error)
{
    model_begin(8, true);
    rule_stdp();
    tm.rule.on_pre.syn->target = IR_TGT_POST;   /* y -= ... per synapse of a pre spike */
    tm.rule.on_pre.syn->index = 0;
    diag_init(&diag);
    CgOptions opt = {.opt_level = 3};
    cr_assert_null(cg_generate(&diag, &tm.m, &opt));
    cr_assert_gt(diag.nerrors, 0);
    diag_free(&diag);
}

Test(codegen_plastic, weight_outside_the_synapse_loop_is_an_error)
{
    model_begin(8, true);
    rule_stdp();
    tm.rule.on_pre.after->value = ex(IR_WEIGHT, -1);   /* x += w after the loop: which w? */
    diag_init(&diag);
    CgOptions opt = {.opt_level = 3};
    cr_assert_null(cg_generate(&diag, &tm.m, &opt));
    cr_assert_gt(diag.nerrors, 0);
    diag_free(&diag);
}

/* ---- tests: the tables ---------------------------------------------------------------------------- */

Test(codegen_plastic, blob_tables)
{
    model_begin(8, true);
    Stdp k = rule_rstdp();
    tm.syn[0].init = ADD(ex(IR_INDEX, -1), K(0.5));   /* c = i + 0.5: IR_INDEX in a var init */
    tm.projs[1] = (IrProj){.name = "B->A", .src = 1, .dst = 0, .port = 0, .rule = ENGRAM_CONNECT_ONE_TO_ONE,
                           .rule_param = -1,
                           .weight = {ENGRAM_DIST_CONST, {add_param("B->A.weight", 1), -1, -1, -1}},
                           .delay = {ENGRAM_DIST_CONST, {add_param("B->A.delay", 1), -1, -1, -1}}};
    tm.m.nprojs = 2;
    int amount = add_param("release0.amount", 0.5), window = add_param("release1.window", 20);
    tm.rels[0] = (IrRelease){.kind = ENGRAM_RELEASE_PER_SPIKE, .modulator = 0, .amount_param = amount,
                             .src = 0, .src_index_param = -1, .dst = -1, .dst_index_param = -1,
                             .window_param = -1, .delay = {ENGRAM_DIST_CONST, {-1, -1, -1, -1}}};
    tm.rels[1] = (IrRelease){.kind = ENGRAM_RELEASE_WHEN, .modulator = 0, .amount_param = amount,
                             .src = 0, .src_index_param = add_param("release1.src", 1), .dst = 1,
                             .dst_index_param = add_param("release1.dst", 2), .window_param = window,
                             .delay = {ENGRAM_DIST_UNIFORM, {add_param("release1.delay.low", 1000),
                                                             add_param("release1.delay.high", 3000), -1, -1}}};
    tm.m.nreleases = 2;
    tm.wrecs[0] = (IrWeightRec){.proj = 0, .every_param = add_param("wrec0.every", 100), .per_synapse = true};
    tm.m.nweight_recs = 1;
    CgJit *j = jit_model();
    const uint8_t *blob = lookup(j, "engram_model_blob");
    const uint64_t *size = lookup(j, "engram_model_blob_size");
    void *const *kernels = lookup(j, "engram_model_kernels");
    const char *why = engram_blob_validate(blob, *size);
    cr_assert_null(why, "blob invalid: %s", why);
    const EngramModelDesc *d = (const EngramModelDesc *)blob;
    cr_assert_eq(d->nkernels, 6, "2 updates, 2 deliveries, on-post, every");
    const EngramProjDesc *pr = ENGRAM_TABLE(blob, EngramProjDesc, d->projs_off);
    cr_assert_eq(pr[0].plastic, 1);
    cr_assert_eq(pr[0].plastic_param, (uint32_t)tm.rule.plastic_param);
    cr_assert(pr[0].nsyn_vars == 1 && pr[0].npre == 1 && pr[0].npost == 1 && pr[0].lazy_syn == 1);
    cr_assert_eq(kernels[pr[0].deliver_kernel], lookup(j, "engram_proj_0_deliver"));
    cr_assert_eq(kernels[pr[0].on_post_kernel], lookup(j, "engram_proj_0_on_post"));
    cr_assert_eq(kernels[pr[0].every_kernel], lookup(j, "engram_proj_0_every"));
    cr_assert(pr[0].pre_arrival == 0 && pr[0].arrive_kernel == ENGRAM_NONE);
    cr_assert_eq(pr[0].every_param, (uint32_t)tm.rule.every_param);
    cr_assert(pr[0].w_lo_param == (uint32_t)k.w_lo && pr[0].w_hi_param == (uint32_t)k.w_hi);
    cr_assert(pr[1].plastic == 0 && pr[1].on_post_kernel == ENGRAM_NONE && pr[1].every_kernel == ENGRAM_NONE &&
              pr[1].plastic_param == ENGRAM_NONE && pr[1].w_lo_param == ENGRAM_NONE &&
              pr[1].nsyn_vars + pr[1].npre + pr[1].npost == 0);
    cr_assert_eq(kernels[pr[1].deliver_kernel], lookup(j, "engram_proj_1_deliver"));
    cr_assert_eq(d->nvars, 3);
    const EngramVarDesc *vars = ENGRAM_TABLE(blob, EngramVarDesc, d->vars_off);
    const char *names[3] = {"c", "x", "y"};
    for (int v = 0; v < 3; v++)
        cr_assert_str_eq(ENGRAM_STR(blob, d, vars[pr[0].first_var + (uint32_t)v].name), names[v]);
    const EngramInsn *in = ENGRAM_TABLE(blob, EngramInsn, d->insns_off);
    EngramCode c0 = vars[pr[0].first_var].init;
    cr_assert(c0.count == 3 && in[c0.first].op == ENGRAM_OP_INDEX && in[c0.first + 2].op == ENGRAM_OP_ADD);
    cr_assert_eq(d->nmodulators, 1);
    const EngramModulatorDesc *mo = ENGRAM_TABLE(blob, EngramModulatorDesc, d->modulators_off);
    cr_assert_str_eq(ENGRAM_STR(blob, d, mo[0].name), "dopamine");
    cr_assert(mo[0].baseline_param == (uint32_t)tm.mods[0].baseline_param &&
              mo[0].tau_param == (uint32_t)tm.mods[0].tau_param);
    cr_assert_eq(d->nreleases, 2);
    const EngramReleaseDesc *rel = ENGRAM_TABLE(blob, EngramReleaseDesc, d->releases_off);
    cr_assert_str_eq(ENGRAM_STR(blob, d, rel[1].name), "release1");
    cr_assert(rel[0].kind == ENGRAM_RELEASE_PER_SPIKE && rel[0].delay.arg[0] == ENGRAM_NONE);
    cr_assert(rel[1].kind == ENGRAM_RELEASE_WHEN && rel[1].dst_pop == 1 && rel[1].window_param == (uint32_t)window);
    cr_assert_eq(rel[1].delay.kind, ENGRAM_DIST_UNIFORM);
    /* streams: pops 0-1, projections 2-9 (four each), no drives, releases 10 and 11 */
    cr_assert(rel[0].stream == 10 && rel[1].stream == 11, "release streams %u %u", rel[0].stream, rel[1].stream);
    cr_assert_eq(d->nweight_recs, 1);
    const EngramWeightRecDesc *wr = ENGRAM_TABLE(blob, EngramWeightRecDesc, d->weight_recs_off);
    cr_assert(wr[0].proj == 0 && wr[0].per_synapse == 1 && wr[0].every_param == (uint32_t)tm.wrecs[0].every_param);
    jit_done(j);
}

/* The tables of an arrival rule: a fifth kernel, the pre trace among the
 * synapse variables, and a deliver kernel that never looks at the plastic
 * state (the static one). */
Test(codegen_plastic, arrival_blob_tables)
{
    model_begin(8, true);
    rule_arrival();
    CgJit *j = jit_model();
    const uint8_t *blob = lookup(j, "engram_model_blob");
    const uint64_t *size = lookup(j, "engram_model_blob_size");
    void *const *kernels = lookup(j, "engram_model_kernels");
    const char *why = engram_blob_validate(blob, *size);
    cr_assert_null(why, "blob invalid: %s", why);
    const EngramModelDesc *d = (const EngramModelDesc *)blob;
    cr_assert_eq(d->nkernels, 5, "2 updates, deliver, on-post, arrive");
    const EngramProjDesc *pr = ENGRAM_TABLE(blob, EngramProjDesc, d->projs_off);
    cr_assert(pr[0].plastic == 1 && pr[0].pre_arrival == 1);
    cr_assert(pr[0].nsyn_vars == 1 && pr[0].npre == 0 && pr[0].npost == 1 && pr[0].lazy_syn == 1);
    cr_assert_eq(kernels[pr[0].arrive_kernel], lookup(j, "engram_proj_0_arrive"));
    cr_assert_eq(kernels[pr[0].on_post_kernel], lookup(j, "engram_proj_0_on_post"));
    jit_done(j);
    char *ir = module_ir();
    char *del = function_text(ir, "engram_proj_0_deliver");
    cr_assert_null(strstr(del, "exp"), "the deliver kernel of an arrival rule runs a handler:\n%s", del);
    free(del);
    free(ir);
}
