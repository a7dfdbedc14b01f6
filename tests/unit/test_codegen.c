/*
 * test_codegen.c - the code generator against C references.
 *
 * Each test builds an IrModel by hand (no front end involved), compiles it
 * with cg_generate at O3 for the host, JIT-compiles it and calls the kernels
 * directly on small random arrays, next to a plain C reference of the step
 * semantics (docs/language.md section 10).  The comparison is bit for bit:
 * the kernels promise IEEE arithmetic in a fixed order, with no contraction,
 * so any difference is a bug.
 *
 * The reference computes in doubles that hold values of the model precision:
 * every operation goes through the helpers below, which round to float in
 * single precision (exactly what float arithmetic does).  Expressions of the
 * model are evaluated by a small interpreter over the same IR (ref_eval), so
 * one reference integrator serves every model; the CUBA test also has a
 * literal loop written out by hand.
 *
 * Order: the IR builders, the reference, the kernel harness, the models,
 * the tests.
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
#pragma STDC FP_CONTRACT OFF   /* the reference must not fuse either (gcc: off in ISO mode) */
#endif

/* ---- IR builders ------------------------------------------------------------- */

#define POOL_MAX 4096
static IrExpr pool[POOL_MAX];
static int npool;

static IrExpr *ex(IrExprKind kind)
{
    cr_assert(npool < POOL_MAX, "expression pool exhausted");
    IrExpr *e = &pool[npool++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->index = -1;
    return e;
}

static IrExpr *K(double v) { IrExpr *e = ex(IR_CONST); e->value = v; return e; }
static IrExpr *P(int k) { IrExpr *e = ex(IR_PARAM); e->index = k; return e; }
static IrExpr *S(int k) { IrExpr *e = ex(IR_STATE); e->index = k; return e; }

static IrExpr *bin(OpKind op, IrExpr *a, IrExpr *b)
{
    IrExpr *e = ex(IR_BINARY);
    e->op = op;
    e->a = a;
    e->b = b;
    e->is_bool = !(op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV || op == OP_POW);
    return e;
}
static IrExpr *ADD(IrExpr *a, IrExpr *b) { return bin(OP_ADD, a, b); }
static IrExpr *SUB(IrExpr *a, IrExpr *b) { return bin(OP_SUB, a, b); }
static IrExpr *MUL(IrExpr *a, IrExpr *b) { return bin(OP_MUL, a, b); }
static IrExpr *DIV(IrExpr *a, IrExpr *b) { return bin(OP_DIV, a, b); }

static IrExpr *un(OpKind op, IrExpr *a)
{
    IrExpr *e = ex(IR_UNARY);
    e->op = op;
    e->a = a;
    e->is_bool = op == OP_NOT;
    return e;
}

static IrExpr *call(EngramBuiltin fn, IrExpr *a, IrExpr *b, IrExpr *c)
{
    IrExpr *e = ex(IR_CALL);
    e->fn = fn;
    e->a = a;
    e->b = b;
    e->c = c;
    return e;
}

/* A model under construction: fixed-size tables are enough for tests. */
typedef struct TModel {
    IrModel m;
    IrParam params[48];
    IrPop pops[4];
    IrState states[4][8];
    IrPort ports[4][4];
    IrAssign reset[4][4];
    int lin[4][8];
    IrExpr *coef[4][72];
    IrProj projs[2];
    double values[48];        /* the resolved parameter table passed to kernels */
    char size_names[4][64];   /* "PATH.size" of each population */
} TModel;

static TModel tm;

static int add_param(const char *path, double v)
{
    int k = tm.m.nparams++;
    tm.params[k] = (IrParam){.path = path, .value = K(v)};
    tm.values[k] = v;
    return k;
}

static void model_begin(int precision)
{
    memset(&tm, 0, sizeof tm);
    npool = 0;
    tm.m.name = "test";
    memset(tm.m.sha256, '0', 64);
    tm.m.precision = precision;
    tm.m.params = tm.params;
    tm.m.pops = tm.pops;
    tm.m.projs = tm.projs;
    tm.m.dt_param = add_param("dt", 0.1);
    tm.m.duration_param = add_param("duration", 100);
    tm.m.seed_param = add_param("seed", 1);
}

static IrPop *add_pop(const char *path, EngramMethod method)
{
    int i = tm.m.npops++;
    IrPop *p = &tm.pops[i];
    snprintf(tm.size_names[i], sizeof tm.size_names[i], "%s.size", path);
    *p = (IrPop){.path = path, .model = "M", .kind = ENGRAM_POP_NEURON, .method = method,
                 .states = tm.states[i], .ports = tm.ports[i], .reset = tm.reset[i],
                 .lin_vars = tm.lin[i], .coef = tm.coef[i], .refractory_param = -1,
                 .rate_param = -1, .times_param = -1, .indices_param = -1, .record_spikes = true};
    p->size_param = add_param(tm.size_names[i], 10);
    return p;
}

static int add_state(IrPop *p, const char *name, IrExpr *ode, bool held)
{
    int s = p->nstates++;
    p->states[s] = (IrState){.name = name, .ode = ode, .held = held, .init = K(0)};
    return s;
}

static void add_port(IrPop *p, const char *name, int state)
{
    p->ports[p->nports++] = (IrPort){.name = name, .state = state};
}

static void add_reset(IrPop *p, int state, AssignOp op, IrExpr *value)
{
    p->reset[p->nreset++] = (IrAssign){.state = state, .op = op, .value = value};
}

/* ---- reference arithmetic in the model precision ------------------------------------ */

static int prec;   /* 4 or 8 */

static double rd(double x) { return prec == 4 ? (double)(float)x : x; }
static double add(double a, double b) { return prec == 4 ? (double)((float)a + (float)b) : a + b; }
static double sub(double a, double b) { return prec == 4 ? (double)((float)a - (float)b) : a - b; }
static double mul(double a, double b) { return prec == 4 ? (double)((float)a * (float)b) : a * b; }
static double dvd(double a, double b) { return prec == 4 ? (double)((float)a / (float)b) : a / b; }

static double fn1(EngramBuiltin fn, double x)
{
    float f = (float)x;
    bool s = prec == 4;
    switch (fn) {
    case ENGRAM_FN_EXP:   return s ? expf(f) : exp(x);
    case ENGRAM_FN_LOG:   return s ? logf(f) : log(x);
    case ENGRAM_FN_LOG10: return s ? log10f(f) : log10(x);
    case ENGRAM_FN_SQRT:  return s ? sqrtf(f) : sqrt(x);
    case ENGRAM_FN_ABS:   return s ? fabsf(f) : fabs(x);
    case ENGRAM_FN_FLOOR: return s ? floorf(f) : floor(x);
    case ENGRAM_FN_CEIL:  return s ? ceilf(f) : ceil(x);
    case ENGRAM_FN_ROUND: return s ? roundf(f) : round(x);
    case ENGRAM_FN_SIN:   return s ? sinf(f) : sin(x);
    case ENGRAM_FN_COS:   return s ? cosf(f) : cos(x);
    default:              return s ? tanhf(f) : tanh(x);
    }
}

/* NaN-propagating min and max, as the kernels define them. */
static double rmin(double a, double b) { return isnan(a) ? a : a < b ? a : b; }
static double rmax(double a, double b) { return isnan(a) ? a : a > b ? a : b; }
static double rpow(double a, double b) { return prec == 4 ? powf((float)a, (float)b) : pow(a, b); }

typedef struct RefEnv {
    const double *params;
    const double *x;
    double t, dt;
} RefEnv;

static double ref_eval(const RefEnv *env, const IrExpr *e);

/* The kernels divide by a value that is the same for every neuron (numbers,
 * parameters, dt) as a multiplication by its reciprocal (docs/language.md
 * section 2). */
static bool ref_invariant(const IrExpr *e)
{
    switch (e->kind) {
    case IR_CONST: case IR_PARAM: case IR_DT: return true;
    case IR_UNARY: return e->op != OP_NOT && ref_invariant(e->a);
    case IR_BINARY: return ref_invariant(e->a) && ref_invariant(e->b);
    default: return false;
    }
}

static double ref_binary(const RefEnv *env, const IrExpr *e)
{
    if (e->op == OP_POW && e->b->kind == IR_CONST && e->b->value == 2.0) {
        double a = ref_eval(env, e->a);
        return mul(a, a);
    }
    double a = ref_eval(env, e->a), b = ref_eval(env, e->b);
    switch (e->op) {
    case OP_ADD: return add(a, b);
    case OP_SUB: return sub(a, b);
    case OP_MUL: return mul(a, b);
    case OP_DIV: return ref_invariant(e->b) ? mul(a, dvd(1.0, b)) : dvd(a, b);
    case OP_POW: return rpow(a, b);
    case OP_LT:  return a < b;
    case OP_LE:  return a <= b;
    case OP_GT:  return a > b;
    case OP_GE:  return a >= b;
    case OP_EQ:  return a == b;
    case OP_NE:  return a != b;
    case OP_AND: return a != 0 && b != 0;
    default:     return a != 0 || b != 0;
    }
}

static double ref_call(const RefEnv *env, const IrExpr *e)
{
    double a = ref_eval(env, e->a);
    switch (e->fn) {
    case ENGRAM_FN_MIN: return rmin(a, ref_eval(env, e->b));
    case ENGRAM_FN_MAX: return rmax(a, ref_eval(env, e->b));
    case ENGRAM_FN_POW: return rpow(a, ref_eval(env, e->b));
    case ENGRAM_FN_CLIP: return rmin(rmax(a, ref_eval(env, e->b)), ref_eval(env, e->c));
    default: return fn1(e->fn, a);
    }
}

static double ref_eval(const RefEnv *env, const IrExpr *e)
{
    switch (e->kind) {
    case IR_CONST: return rd(e->value);
    case IR_PARAM: return rd(env->params[e->index]);
    case IR_STATE: return env->x[e->index];
    case IR_TIME:  return env->t;
    case IR_DT:    return env->dt;
    case IR_UNARY: return e->op == OP_NOT ? (double)(ref_eval(env, e->a) == 0) : -ref_eval(env, e->a);
    case IR_BINARY: return ref_binary(env, e);
    case IR_CALL:  return ref_call(env, e);
    default: cr_assert_fail("unexpected IR kind %d in a kernel expression", e->kind);
    }
    return 0;
}

/* ---- reference step ---------------------------------------------------------------------- */

typedef struct StepIn {
    const double *params;
    const double *prop;    /* 2 matrices, or NULL */
    double t, dt;
    int32_t ref_steps;
} StepIn;

/* k[s] = rhs of state s (0 for held states while refractory); has[s] if it has an ODE. */
static void ref_rhs(const IrPop *p, const StepIn *in, const double *x, double t, bool isref,
                    double *k)
{
    RefEnv env = {in->params, x, t, rd(in->dt)};
    for (int s = 0; s < p->nstates; s++) {
        k[s] = 0;
        if (p->states[s].ode)
            k[s] = (p->states[s].held && isref) ? rd(0) : ref_eval(&env, p->states[s].ode);
    }
}

static void ref_axpy(const IrPop *p, const double *x, double h, const double *k, double *out)
{
    for (int s = 0; s < p->nstates; s++)
        out[s] = p->states[s].ode ? add(x[s], mul(h, k[s])) : x[s];
}

static void ref_rk4(const IrPop *p, const StepIn *in, const double *x, bool isref, double *nx)
{
    double h = rd(in->dt), h2 = mul(h, 0.5), h6 = dvd(h, 6.0);
    double t0 = rd(in->t), th = rd(in->t + in->dt * 0.5), t1 = rd(in->t + in->dt);
    double k[8], acc[8], tmp[8];
    ref_rhs(p, in, x, t0, isref, k);
    memcpy(acc, k, sizeof acc);
    ref_axpy(p, x, h2, k, tmp);
    ref_rhs(p, in, tmp, th, isref, k);
    for (int s = 0; s < p->nstates; s++)
        acc[s] = add(acc[s], mul(2.0, k[s]));
    ref_axpy(p, x, h2, k, tmp);
    ref_rhs(p, in, tmp, th, isref, k);
    for (int s = 0; s < p->nstates; s++)
        acc[s] = add(acc[s], mul(2.0, k[s]));
    ref_axpy(p, x, h, k, tmp);
    ref_rhs(p, in, tmp, t1, isref, k);
    for (int s = 0; s < p->nstates; s++)
        nx[s] = p->states[s].ode ? add(x[s], mul(h6, add(acc[s], k[s]))) : x[s];
}

static void ref_exact(const IrPop *p, const StepIn *in, const double *x, bool isref, double *nx)
{
    int n = p->nlinear, m = n * (n + 1);
    const double *M = in->prop + (isref ? m : 0);
    memcpy(nx, x, sizeof(double) * (size_t)p->nstates);
    for (int r = 0; r < n; r++) {
        double acc = mul(rd(M[r * (n + 1)]), x[p->lin_vars[0]]);
        for (int c = 1; c < n; c++)
            acc = add(acc, mul(rd(M[r * (n + 1) + c]), x[p->lin_vars[c]]));
        nx[p->lin_vars[r]] = add(acc, rd(M[r * (n + 1) + n]));
    }
}

static void ref_integrate(const IrPop *p, const StepIn *in, const double *x, bool isref, double *nx)
{
    double h = rd(in->dt), k[8], tmp[8];
    double t0 = rd(in->t), th = rd(in->t + in->dt * 0.5);
    switch (p->method) {
    case ENGRAM_METHOD_EXACT:
        ref_exact(p, in, x, isref, nx);
        break;
    case ENGRAM_METHOD_EULER:
        ref_rhs(p, in, x, t0, isref, k);
        ref_axpy(p, x, h, k, nx);
        break;
    case ENGRAM_METHOD_RK2:
        ref_rhs(p, in, x, t0, isref, k);
        ref_axpy(p, x, mul(h, 0.5), k, tmp);
        ref_rhs(p, in, tmp, th, isref, k);
        ref_axpy(p, x, h, k, nx);
        break;
    case ENGRAM_METHOD_RK4:
        ref_rk4(p, in, x, isref, nx);
        break;
    default:
        memcpy(nx, x, sizeof(double) * (size_t)p->nstates);
    }
    for (int s = 0; s < p->nstates; s++)
        if (p->states[s].held && isref)
            nx[s] = x[s];
}

/* One step for neurons [0, n): state[s][i], input[q][i] hold model-precision values. */
static void ref_step(const IrPop *p, const StepIn *in, int n, double **state, double **input,
                     int32_t *refr, uint8_t *spiked)
{
    for (int i = 0; i < n; i++) {
        double x[8], nx[8];
        for (int s = 0; s < p->nstates; s++)
            x[s] = state[s][i];
        bool isref = refr[i] > 0;
        ref_integrate(p, in, x, isref, nx);
        for (int q = 0; q < p->nports; q++) {
            int s = p->ports[q].state;
            if (!(p->states[s].held && isref))
                nx[s] = add(nx[s], input[q][i]);
            input[q][i] = 0;
        }
        RefEnv env = {in->params, nx, rd(in->t), rd(in->dt)};
        bool spike = !isref && p->threshold && ref_eval(&env, p->threshold) != 0;
        for (int k = 0; spike && k < p->nreset; k++) {
            const IrAssign *as = &p->reset[k];
            double v = ref_eval(&env, as->value), *xs = &nx[as->state];
            *xs = as->op == ASSIGN_ADD ? add(*xs, v) : as->op == ASSIGN_SUB ? sub(*xs, v)
                : as->op == ASSIGN_MUL ? mul(*xs, v) : v;
        }
        refr[i] = spike ? in->ref_steps : isref ? refr[i] - 1 : 0;
        spiked[i] = spike;
        for (int s = 0; s < p->nstates; s++)
            state[s][i] = nx[s];
    }
}

/* ---- kernel harness --------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(double lo, double hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1.0p-53;
}

/* Model-precision arrays: what the kernel sees. */
static void *arr_new(int n) { return calloc((size_t)n + 1, (size_t)prec); }
static double arr_get(const void *a, int i) { return prec == 4 ? ((const float *)a)[i] : ((const double *)a)[i]; }
static void arr_set(void *a, int i, double v)
{
    if (prec == 4)
        ((float *)a)[i] = (float)v;
    else
        ((double *)a)[i] = v;
}

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

static DiagCtx diag;

static CgJit *jit_model(int opt_level)
{
    diag_init(&diag);
    CgOptions opt = {.cpu = NULL, .opt_level = opt_level, .verify = true};
    CgModule *cm = cg_generate(&diag, &tm.m, &opt);
    if (!cm)
        diag_flush(&diag, stderr);
    cr_assert_not_null(cm, "cg_generate failed");
    CgJit *j = cg_jit_open(&diag, cm);
    if (!j)
        diag_flush(&diag, stderr);
    cr_assert_not_null(j, "cg_jit_open failed");
    return j;
}

static void jit_done(CgJit *j)
{
    cg_jit_close(j);
    diag_free(&diag);
}

static EngramPopKernel pop_kernel(CgJit *j, int pop)
{
    char name[64];
    snprintf(name, sizeof name, "engram_pop_%d_update", pop);
    void *f = cg_jit_lookup(&diag, j, name);
    cr_assert_not_null(f, "%s not found", name);
    EngramPopKernel k;
    memcpy(&k, &f, sizeof k);   /* object to function pointer without a cast warning */
    return k;
}

typedef struct Ranges {
    double lo[8], hi[8];       /* initial state values */
    double in_hi[4];           /* inputs per port in [0, in_hi) */
    double nan_frac;           /* fraction of neurons with a NaN first state */
} Ranges;

typedef struct Run {
    int n;
    void *kst[8], *kin[4];     /* kernel arrays */
    double *rst[8], *rin[4];   /* reference arrays */
    int32_t *krefr, *rrefr;
    uint8_t *kspk, *rspk;
    int spikes, refractory;
} Run;

static void run_init(Run *r, const IrPop *p, int n, const Ranges *rg)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    for (int s = 0; s < p->nstates; s++) {
        r->kst[s] = arr_new(n);
        r->rst[s] = calloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++) {
            double v = rd(urand(rg->lo[s], rg->hi[s]));
            if (s == 0 && urand(0, 1) < rg->nan_frac)
                v = NAN;
            arr_set(r->kst[s], i, v);
            r->rst[s][i] = v;
        }
    }
    for (int q = 0; q < p->nports; q++) {
        r->kin[q] = arr_new(n);
        r->rin[q] = calloc((size_t)n, sizeof(double));
    }
    r->krefr = calloc((size_t)n, sizeof(int32_t));
    r->rrefr = calloc((size_t)n, sizeof(int32_t));
    r->kspk = calloc((size_t)n, 1);
    r->rspk = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++)
        r->krefr[i] = r->rrefr[i] = urand(0, 1) < 0.25 ? (int32_t)urand(1, 4) : 0;
}

static void run_free(Run *r, const IrPop *p)
{
    for (int s = 0; s < p->nstates; s++) {
        free(r->kst[s]);
        free(r->rst[s]);
    }
    for (int q = 0; q < p->nports; q++) {
        free(r->kin[q]);
        free(r->rin[q]);
    }
    free(r->krefr);
    free(r->rrefr);
    free(r->kspk);
    free(r->rspk);
}

static void run_compare(Run *r, const IrPop *p, int step)
{
    for (int i = 0; i < r->n; i++) {
        for (int s = 0; s < p->nstates; s++)
            cr_assert(same(arr_get(r->kst[s], i), r->rst[s][i]),
                      "step %d neuron %d %s: kernel %.17g, reference %.17g", step, i,
                      p->states[s].name, arr_get(r->kst[s], i), r->rst[s][i]);
        for (int q = 0; q < p->nports; q++)
            cr_assert(arr_get(r->kin[q], i) == 0.0, "input slot %d of neuron %d not zeroed", q, i);
        cr_assert_eq(r->krefr[i], r->rrefr[i], "step %d neuron %d: refr %d vs %d", step, i,
                     r->krefr[i], r->rrefr[i]);
        cr_assert_eq(r->kspk[i], r->rspk[i], "step %d neuron %d: spiked %d vs %d", step, i,
                     r->kspk[i], r->rspk[i]);
        r->spikes += r->rspk[i];
        r->refractory += r->rrefr[i] > 0;
    }
}

/* Runs `steps` steps of population `pop` in kernel and reference and
 * compares everything after each; returns the number of spikes seen. */
static int run_pop(CgJit *j, int pop, int n, int steps, const Ranges *rg, const double *prop,
                   int32_t ref_steps)
{
    const IrPop *p = &tm.pops[pop];
    EngramPopKernel kernel = pop_kernel(j, pop);
    Run r;
    run_init(&r, p, n, rg);
    for (int step = 0; step < steps; step++) {
        for (int q = 0; q < p->nports; q++)
            for (int i = 0; i < n; i++) {
                double v = rd(urand(0, rg->in_hi[q]));
                arr_set(r.kin[q], i, v);
                r.rin[q][i] = v;
            }
        double dt = tm.values[tm.m.dt_param], t = step * dt;
        EngramPopArgs a = {.state = r.kst, .input = r.kin, .params = tm.values, .prop = prop,
                           .refr = r.krefr, .spiked = r.kspk, .t = t, .dt = dt,
                           .ref_steps = ref_steps};
        kernel(&a, 0, n);
        StepIn in = {tm.values, prop, t, dt, ref_steps};
        ref_step(p, &in, n, r.rst, r.rin, r.rrefr, r.rspk);
        run_compare(&r, p, step);
    }
    int spikes = r.spikes;
    cr_assert_gt(r.refractory, 0, "no neuron was ever refractory: the test tests too little");
    run_free(&r, p);
    return spikes;
}

/* ---- models ---------------------------------------------------------------------------------------- */

enum { CUBA_V, CUBA_GE, CUBA_GI };

/* Current-based LIF, exact: dv/dt = (ge + gi - (v - El)) / taum, dge/dt = -ge/taue, dgi/dt = -gi/taui. */
static IrPop *model_cuba(void)
{
    int taum = add_param("E.taum", 20), el = add_param("E.El", -60), vt = add_param("E.vt", -50);
    int vr = add_param("E.vr", -60), taue = add_param("E.taue", 5), taui = add_param("E.taui", 10);
    IrPop *p = add_pop("E", ENGRAM_METHOD_EXACT);
    p->refractory_param = add_param("E.tref", 0.5);
    add_state(p, "v", DIV(SUB(ADD(S(CUBA_GE), S(CUBA_GI)), SUB(S(CUBA_V), P(el))), P(taum)), true);
    add_state(p, "ge", DIV(un(OP_NEG, S(CUBA_GE)), P(taue)), false);
    add_state(p, "gi", DIV(un(OP_NEG, S(CUBA_GI)), P(taui)), false);
    add_port(p, "exc", CUBA_GE);
    add_port(p, "inh", CUBA_GI);
    p->threshold = bin(OP_GT, S(CUBA_V), P(vt));
    add_reset(p, CUBA_V, ASSIGN_SET, P(vr));
    p->nlinear = 3;
    for (int r = 0; r < 3; r++)
        p->lin_vars[r] = r;
    IrExpr **c = p->coef;   /* rows v, ge, gi of [A | b] */
    c[0] = DIV(K(-1), P(taum)); c[1] = DIV(K(1), P(taum)); c[2] = DIV(K(1), P(taum));
    c[3] = DIV(P(el), P(taum));
    c[5] = DIV(K(-1), P(taue));
    c[10] = DIV(K(-1), P(taui));
    return p;
}

/* A propagator pair that behaves like the CUBA model (Euler matrices), so
 * that neurons spike; the refractory one has the held v row as identity. */
static void cuba_prop(double *prop)
{
    const double dt = 0.1, taum = 20, el = -60, taue = 5, taui = 10;
    double P[12] = {1 - dt / taum, dt / taum, dt / taum, el * dt / taum,
                    0, 1 - dt / taue, 0, 0,
                    0, 0, 1 - dt / taui, 0};
    memcpy(prop, P, sizeof P);
    memcpy(prop + 12, P, sizeof P);
    double vrow[4] = {1, 0, 0, 0};
    memcpy(prop + 12, vrow, sizeof vrow);
}

enum { COBA_V, COBA_GE, COBA_GI };

/* Conductance-based LIF: dv/dt = (gl (El - v) + ge (Ee - v) + gi (Ei - v) + I) / C. */
static IrPop *model_coba(EngramMethod method)
{
    int gl = add_param("C.gl", 10), el = add_param("C.El", -60), ee = add_param("C.Ee", 0);
    int ei = add_param("C.Ei", -80), cm = add_param("C.C", 200), iext = add_param("C.I", 150);
    int taue = add_param("C.taue", 5), taui = add_param("C.taui", 10);
    int vt = add_param("C.vt", -50), vr = add_param("C.vr", -60);
    IrPop *p = add_pop("C", method);
    IrExpr *leak = MUL(P(gl), SUB(P(el), S(COBA_V)));
    IrExpr *exc = MUL(S(COBA_GE), SUB(P(ee), S(COBA_V)));
    IrExpr *inh = MUL(S(COBA_GI), SUB(P(ei), S(COBA_V)));
    add_state(p, "v", DIV(ADD(ADD(ADD(leak, exc), inh), P(iext)), P(cm)), true);
    add_state(p, "ge", DIV(un(OP_NEG, S(COBA_GE)), P(taue)), false);
    add_state(p, "gi", DIV(un(OP_NEG, S(COBA_GI)), P(taui)), false);
    add_port(p, "exc", COBA_GE);
    add_port(p, "inh", COBA_GI);
    p->threshold = bin(OP_GT, S(COBA_V), P(vt));
    add_reset(p, COBA_V, ASSIGN_SET, P(vr));
    return p;
}

enum { IZH_V, IZH_U };

/* Izhikevich: dv/dt = 0.04 v^2 + 5 v + 140 - u + I, du/dt = a (b v - u); reset v = c, u += d. */
static IrPop *model_izhikevich(EngramMethod method)
{
    int a = add_param("I.a", 0.02), b = add_param("I.b", 0.2), c = add_param("I.c", -65);
    int d = add_param("I.d", 8), iext = add_param("I.I", 10);
    IrPop *p = add_pop("I", method);
    IrExpr *quad = MUL(K(0.04), bin(OP_POW, S(IZH_V), K(2)));
    IrExpr *dv = ADD(SUB(ADD(ADD(quad, MUL(K(5), S(IZH_V))), K(140)), S(IZH_U)), P(iext));
    add_state(p, "v", dv, true);
    add_state(p, "u", MUL(P(a), SUB(MUL(P(b), S(IZH_V)), S(IZH_U))), false);
    add_port(p, "exc", IZH_V);   /* a voltage jump into a held variable */
    p->threshold = bin(OP_GE, S(IZH_V), K(30));
    add_reset(p, IZH_V, ASSIGN_SET, P(c));
    add_reset(p, IZH_U, ASSIGN_ADD, P(d));
    return p;
}

/* Every builtin and every operator, in ODEs, threshold and reset. */
static IrPop *model_builtins(void)
{
    int g = add_param("B.g", 0.5);
    IrPop *p = add_pop("B", ENGRAM_METHOD_EULER);
    IrExpr *a = S(0), *b = S(1), *c = S(2);
    IrExpr *da = ADD(ADD(ADD(SUB(ADD(call(ENGRAM_FN_EXP, un(OP_NEG, call(ENGRAM_FN_ABS, a, NULL, NULL)), NULL, NULL),
                                     call(ENGRAM_FN_LOG, ADD(K(1), MUL(b, b)), NULL, NULL)),
                                 call(ENGRAM_FN_SQRT, call(ENGRAM_FN_ABS, c, NULL, NULL), NULL, NULL)),
                             MUL(call(ENGRAM_FN_FLOOR, a, NULL, NULL), K(0.01))),
                         MUL(call(ENGRAM_FN_CEIL, b, NULL, NULL), K(0.02))),
                     MUL(call(ENGRAM_FN_ROUND, c, NULL, NULL), P(g)));
    IrExpr *db = ADD(ADD(ADD(MUL(call(ENGRAM_FN_SIN, a, NULL, NULL), call(ENGRAM_FN_COS, b, NULL, NULL)),
                             call(ENGRAM_FN_TANH, c, NULL, NULL)),
                         call(ENGRAM_FN_LOG10, ADD(K(2), call(ENGRAM_FN_ABS, a, NULL, NULL)), NULL, NULL)),
                     call(ENGRAM_FN_POW, ADD(call(ENGRAM_FN_ABS, b, NULL, NULL), K(1)), K(1.5), NULL));
    IrExpr *logic = bin(OP_OR, bin(OP_AND, bin(OP_GT, a, b), un(OP_NOT, bin(OP_LT, c, K(0)))),
                        bin(OP_EQ, b, c));
    IrExpr *dc = ADD(ADD(ADD(call(ENGRAM_FN_MIN, a, b, NULL), call(ENGRAM_FN_MAX, b, c, NULL)),
                         call(ENGRAM_FN_CLIP, c, K(-1), K(1))), logic);
    add_state(p, "a", da, false);
    add_state(p, "b", db, true);
    add_state(p, "c", ADD(dc, bin(OP_POW, call(ENGRAM_FN_ABS, a, NULL, NULL), DIV(K(1), K(3)))), false);
    add_port(p, "in", 1);
    p->threshold = bin(OP_OR, bin(OP_GT, a, K(1.5)), bin(OP_NE, c, c));
    add_reset(p, 0, ASSIGN_SET, K(0));
    add_reset(p, 1, ASSIGN_MUL, K(0.5));
    add_reset(p, 2, ASSIGN_SUB, ADD(S(0), K(1)));   /* reads a after its reset */
    return p;
}

/* ---- tests: update kernels against the reference -------------------------------------------------- */

static void cuba_case(int precision)
{
    model_begin(precision);
    prec = precision;
    model_cuba();
    double prop[24];
    cuba_prop(prop);
    CgJit *j = jit_model(3);
    Ranges rg = {.lo = {-60, 0, -5}, .hi = {-49, 5, 0}, .in_hi = {2, 0.5}};
    int spikes = run_pop(j, 0, 67, 30, &rg, prop, 5);
    cr_assert_gt(spikes, 0, "no spikes: threshold and reset untested");
    jit_done(j);
}

Test(codegen, cuba_exact_double) { cuba_case(8); }
Test(codegen, cuba_exact_float) { cuba_case(4); }

/* The same model against a loop written out by hand, with no interpreter.
 * The kernel reads only the entries the structure lets be nonzero, and no
 * refractory row (v is held; ge and gi reach no held variable): the others
 * are NaN here, so reading one would show. */
Test(codegen, cuba_exact_literal_loop)
{
    model_begin(8);
    prec = 8;
    model_cuba();
    double prop[24];
    cuba_prop(prop);
    for (int j = 0; j < 24; j++)   /* any matrices will do: make them distinct */
        prop[j] = j == 0 || j == 1 || j == 2 || j == 3 || j == 5 || j == 10
                      ? prop[j] + urand(-0.01, 0.01) : NAN;
    CgJit *jit = jit_model(3);
    EngramPopKernel kernel = pop_kernel(jit, 0);
    enum { N = 41 };
    double v[N], ge[N], gi[N], exc[N], inh[N], rv[N], rge[N], rgi[N];
    int32_t refr[N], rrefr[N];
    uint8_t spk[N];
    for (int i = 0; i < N; i++) {
        rv[i] = v[i] = urand(-60, -49);
        rge[i] = ge[i] = urand(0, 3);
        rgi[i] = gi[i] = urand(-3, 0);
        rrefr[i] = refr[i] = i % 4 == 0 ? 2 : 0;
    }
    const double vt = -50, vr = -60;
    for (int step = 0; step < 10; step++) {
        double rexc[N], rinh[N];
        for (int i = 0; i < N; i++) {
            rexc[i] = exc[i] = urand(0, 2);
            rinh[i] = inh[i] = urand(0, 1);
        }
        void *st[3] = {v, ge, gi}, *in[2] = {exc, inh};
        EngramPopArgs a = {.state = st, .input = in, .params = tm.values, .prop = prop,
                           .refr = refr, .spiked = spk, .t = step * 0.1, .dt = 0.1, .ref_steps = 3};
        kernel(&a, 0, N);
        for (int i = 0; i < N; i++) {
            bool isref = rrefr[i] > 0;
            const double *M = prop;
            double nv = M[0] * rv[i] + M[1] * rge[i] + M[2] * rgi[i] + M[3];
            double nge = M[5] * rge[i];
            double ngi = M[10] * rgi[i];
            if (isref)
                nv = rv[i];            /* v is held */
            nge += rexc[i];
            ngi += rinh[i];
            bool spike = !isref && nv > vt;
            if (spike)
                nv = vr;
            rrefr[i] = spike ? 3 : isref ? rrefr[i] - 1 : 0;
            rv[i] = nv, rge[i] = nge, rgi[i] = ngi;
            cr_assert(same(v[i], rv[i]) && same(ge[i], rge[i]) && same(gi[i], rgi[i]),
                      "step %d neuron %d differs", step, i);
            cr_assert_eq(refr[i], rrefr[i]);
            cr_assert_eq(spk[i], spike);
            cr_assert(exc[i] == 0 && inh[i] == 0);
        }
    }
    jit_done(jit);
}

/* A row that reaches a held variable reads the refractory propagator while
 * refractory: v held, w driven by v (w' = (v - w) / tau), g on its own.
 * Structural zeros (g's column in v and w, v and w in g, g's affine term)
 * and the refractory rows of v and g are NaN: never read. */
Test(codegen, exact_refractory_rows)
{
    model_begin(8);
    prec = 8;
    int tau = add_param("A.tau", 10), vt = add_param("A.vt", 1), vr = add_param("A.vr", 0);
    IrPop *p = add_pop("A", ENGRAM_METHOD_EXACT);
    p->refractory_param = add_param("A.tref", 0.3);
    add_state(p, "v", DIV(SUB(K(2), S(0)), P(tau)), true);
    add_state(p, "w", DIV(SUB(S(0), S(1)), P(tau)), false);
    add_state(p, "g", DIV(un(OP_NEG, S(2)), P(tau)), false);
    add_port(p, "in", 2);
    p->threshold = bin(OP_GT, S(0), P(vt));
    add_reset(p, 0, ASSIGN_SET, P(vr));
    p->nlinear = 3;
    for (int r = 0; r < 3; r++)
        p->lin_vars[r] = r;
    IrExpr **c = p->coef;   /* rows v, w, g of [A | b] */
    c[0] = DIV(K(-1), P(tau)); c[3] = DIV(K(2), P(tau));
    c[4] = DIV(K(1), P(tau)); c[5] = DIV(K(-1), P(tau));
    c[10] = DIV(K(-1), P(tau));
    double prop[24];
    bool used[24] = {[0] = true, [3] = true, [4] = true, [5] = true, [7] = true, [10] = true,
                     [16] = true, [17] = true, [19] = true};   /* 12 + (4, 5, 7): w, refractory */
    for (int j = 0; j < 24; j++)
        prop[j] = used[j] ? urand(0.5, 1.0) : NAN;
    CgJit *jit = jit_model(3);
    EngramPopKernel kernel = pop_kernel(jit, 0);
    enum { N = 37 };
    double v[N], w[N], g[N], in[N], rv[N], rw[N], rg[N];
    int32_t refr[N], rrefr[N];
    uint8_t spk[N];
    for (int i = 0; i < N; i++) {
        rv[i] = v[i] = urand(0, 1.2);
        rw[i] = w[i] = urand(-1, 1);
        rg[i] = g[i] = urand(-1, 1);
        rrefr[i] = refr[i] = i % 3 == 0 ? 2 : 0;
    }
    for (int step = 0; step < 8; step++) {
        double rin[N];
        for (int i = 0; i < N; i++)
            rin[i] = in[i] = urand(0, 0.5);
        void *st[3] = {v, w, g}, *inp[1] = {in};
        EngramPopArgs a = {.state = st, .input = inp, .params = tm.values, .prop = prop,
                           .refr = refr, .spiked = spk, .t = step * 0.1, .dt = 0.1, .ref_steps = 2};
        kernel(&a, 0, N);
        for (int i = 0; i < N; i++) {
            bool isref = rrefr[i] > 0;
            const double *W = prop + (isref ? 12 : 0);
            double nv = isref ? rv[i] : prop[0] * rv[i] + prop[3];
            double nw = (W[4] * rv[i] + W[5] * rw[i]) + W[7];
            double ng = prop[10] * rg[i] + rin[i];
            bool spike = !isref && nv > 1;
            if (spike)
                nv = 0;
            rrefr[i] = spike ? 2 : isref ? rrefr[i] - 1 : 0;
            rv[i] = nv, rw[i] = nw, rg[i] = ng;
            cr_assert(same(v[i], rv[i]) && same(w[i], rw[i]) && same(g[i], rg[i]),
                      "step %d neuron %d differs: %g %g %g / %g %g %g", step, i, v[i], w[i], g[i],
                      rv[i], rw[i], rg[i]);
            cr_assert_eq(refr[i], rrefr[i]);
            cr_assert_eq(spk[i], spike);
            cr_assert(in[i] == 0);
        }
    }
    jit_done(jit);
}

static void coba_case(int precision, EngramMethod method)
{
    model_begin(precision);
    prec = precision;
    model_coba(method);
    CgJit *j = jit_model(3);
    Ranges rg = {.lo = {-62, 0, 0}, .hi = {-49, 10, 20}, .in_hi = {3, 5}};
    int spikes = run_pop(j, 0, 53, 30, &rg, NULL, 20);
    cr_assert_gt(spikes, 0);
    jit_done(j);
}

Test(codegen, coba_euler_double) { coba_case(8, ENGRAM_METHOD_EULER); }
Test(codegen, coba_euler_float) { coba_case(4, ENGRAM_METHOD_EULER); }
Test(codegen, coba_rk2_double) { coba_case(8, ENGRAM_METHOD_RK2); }
Test(codegen, coba_rk2_float) { coba_case(4, ENGRAM_METHOD_RK2); }

static void izhikevich_case(int precision)
{
    model_begin(precision);
    prec = precision;
    model_izhikevich(ENGRAM_METHOD_RK4);
    CgJit *j = jit_model(3);
    Ranges rg = {.lo = {-70, -15}, .hi = {35, 5}, .in_hi = {4}};
    int spikes = run_pop(j, 0, 45, 40, &rg, NULL, 2);
    cr_assert_gt(spikes, 0);
    jit_done(j);
}

Test(codegen, izhikevich_rk4_double) { izhikevich_case(8); }
Test(codegen, izhikevich_rk4_float) { izhikevich_case(4); }

static void builtins_case(int precision, int opt_level)
{
    model_begin(precision);
    prec = precision;
    model_builtins();
    CgJit *j = jit_model(opt_level);
    Ranges rg = {.lo = {-3, -3, -3}, .hi = {3, 3, 3}, .in_hi = {0.5}, .nan_frac = 0.1};
    run_pop(j, 0, 39, 10, &rg, NULL, 1);
    jit_done(j);
}

Test(codegen, builtins_double) { builtins_case(8, 3); }
Test(codegen, builtins_float) { builtins_case(4, 3); }
Test(codegen, builtins_unoptimised) { builtins_case(8, 0); }

/* Splitting [0, n) among callers (threads) must not change a bit. */
Test(codegen, split_range_is_invariant)
{
    model_begin(8);
    prec = 8;
    model_coba(ENGRAM_METHOD_RK2);
    CgJit *j = jit_model(3);
    EngramPopKernel kernel = pop_kernel(j, 0);
    enum { N = 50 };
    double s1[3][N], s2[3][N], in1[2][N], in2[2][N];
    int32_t r1[N], r2[N];
    uint8_t k1[N], k2[N];
    for (int i = 0; i < N; i++) {
        s1[0][i] = s2[0][i] = urand(-62, -49);
        s1[1][i] = s2[1][i] = urand(0, 10);
        s1[2][i] = s2[2][i] = urand(0, 10);
        in1[0][i] = in2[0][i] = urand(0, 3);
        in1[1][i] = in2[1][i] = urand(0, 3);
        r1[i] = r2[i] = i % 3;
    }
    void *st1[3] = {s1[0], s1[1], s1[2]}, *st2[3] = {s2[0], s2[1], s2[2]};
    void *i1[2] = {in1[0], in1[1]}, *i2[2] = {in2[0], in2[1]};
    EngramPopArgs a1 = {.state = st1, .input = i1, .params = tm.values, .refr = r1, .spiked = k1,
                        .t = 1.0, .dt = 0.1, .ref_steps = 4};
    EngramPopArgs a2 = a1;
    a2.state = st2, a2.input = i2, a2.refr = r2, a2.spiked = k2;
    kernel(&a1, 0, N);
    kernel(&a2, 0, 17);
    kernel(&a2, 17, 18);
    kernel(&a2, 18, N);
    kernel(&a2, 30, 30);   /* empty range: nothing happens */
    cr_assert(memcmp(s1, s2, sizeof s1) == 0 && memcmp(r1, r2, sizeof r1) == 0 &&
              memcmp(k1, k2, sizeof k1) == 0 && memcmp(in1, in2, sizeof in1) == 0);
    jit_done(j);
}

/* ---- tests: delivery ------------------------------------------------------------------------------ */

static void add_proj(int src, int dst, int port)
{
    IrProj *pr = &tm.projs[tm.m.nprojs++];
    *pr = (IrProj){.name = "E->E", .src = src, .dst = dst, .port = port,
                   .rule = ENGRAM_CONNECT_RANDOM, .rule_param = add_param("E->E.p", 0.1),
                   .weight = {ENGRAM_DIST_CONST, {add_param("E->E.weight", 0.5), -1, -1, -1}},
                   .delay = {ENGRAM_DIST_CONST, {add_param("E->E.delay", 0.3), -1, -1, -1}}};
}

static void deliver_case(int precision, bool per_w, bool per_d)
{
    model_begin(precision);
    prec = precision;
    model_cuba();
    add_proj(0, 0, 0);
    CgJit *j = jit_model(3);
    void *f = cg_jit_lookup(&diag, j, "engram_proj_0_deliver");
    cr_assert_not_null(f);
    EngramDeliverKernel kernel;
    memcpy(&kernel, &f, sizeof kernel);

    enum { NSRC = 23, NTGT = 19, SLOTS = 5, MAXSYN = NSRC * NTGT };
    uint64_t row[NSRC + 1];
    uint32_t col[MAXSYN], spikes[NSRC];
    uint16_t delay[MAXSYN];
    double rw[MAXSYN], rring[SLOTS * NTGT];
    void *w = arr_new(MAXSYN), *ring = arr_new(SLOTS * NTGT);
    int nsyn = 0, nspikes = 0;
    for (int s = 0; s < NSRC; s++) {
        row[s] = (uint64_t)nsyn;
        for (int t = 0; t < NTGT; t++)
            if (urand(0, 1) < 0.3) {
                col[nsyn] = (uint32_t)t;
                delay[nsyn] = (uint16_t)urand(1, SLOTS);
                rw[nsyn] = rd(urand(-1, 1));
                arr_set(w, nsyn, rw[nsyn]);
                nsyn++;
            }
        if (urand(0, 1) < 0.5)
            spikes[nspikes++] = (uint32_t)s;
    }
    row[NSRC] = (uint64_t)nsyn;
    for (int k = 0; k < SLOTS * NTGT; k++) {
        rring[k] = rd(urand(-1, 1));
        arr_set(ring, k, rring[k]);
    }
    EngramDeliverArgs a = {.spikes = spikes, .nspikes = nspikes, .row = row, .col = col,
                           .weight = per_w ? w : NULL, .delay = per_d ? delay : NULL,
                           .ring = ring, .ntgt = NTGT, .ring_slots = SLOTS, .step = 13,
                           .params = tm.values, .weight_value = 0.37, .delay_steps = 3};
    kernel(&a);
    for (int n = 0; n < nspikes; n++)
        for (uint64_t k = row[spikes[n]]; k < row[spikes[n] + 1]; k++) {
            int slot = (int)((13 + (per_d ? delay[k] : 3)) % SLOTS);
            double *x = &rring[slot * NTGT + col[k]];
            *x = add(*x, per_w ? rw[k] : rd(0.37));
        }
    for (int k = 0; k < SLOTS * NTGT; k++)
        cr_assert(same(arr_get(ring, k), rring[k]), "ring[%d]: kernel %.17g, reference %.17g", k,
                  arr_get(ring, k), rring[k]);
    a.nspikes = 0;   /* no spikes: nothing moves */
    kernel(&a);
    for (int k = 0; k < SLOTS * NTGT; k++)
        cr_assert(same(arr_get(ring, k), rring[k]));
    free(w);
    free(ring);
    jit_done(j);
}

Test(codegen, deliver_weights_delays_double) { deliver_case(8, true, true); }
Test(codegen, deliver_weights_delays_float) { deliver_case(4, true, true); }
Test(codegen, deliver_homogeneous_double) { deliver_case(8, false, false); }
Test(codegen, deliver_homogeneous_float) { deliver_case(4, false, false); }
Test(codegen, deliver_weights_only) { deliver_case(8, true, false); }
Test(codegen, deliver_delays_only) { deliver_case(4, false, true); }

/* ---- tests: the blob and the kernel table ------------------------------------------------------------- */

Test(codegen, blob_and_kernel_table)
{
    model_begin(4);
    prec = 4;
    model_cuba();
    model_coba(ENGRAM_METHOD_EULER);
    add_proj(0, 1, 1);
    int taum = 3;   /* E.taum: the first parameter after dt, duration, seed */
    CgJit *j = jit_model(2);
    const uint8_t *blob = cg_jit_lookup(&diag, j, "engram_model_blob");
    const uint64_t *size = cg_jit_lookup(&diag, j, "engram_model_blob_size");
    void *const *kernels = cg_jit_lookup(&diag, j, "engram_model_kernels");
    cr_assert(blob && size && kernels);
    cr_assert_eq((uintptr_t)blob % 16, 0, "blob not 16-aligned");
    const char *why = engram_blob_validate(blob, *size);
    cr_assert_null(why, "blob invalid: %s", why);
    const EngramModelDesc *d = (const EngramModelDesc *)blob;
    cr_assert_eq(d->precision, 4);
    cr_assert_eq(d->npops, 2);
    cr_assert_eq(d->nprojs, 1);
    cr_assert_eq(d->nkernels, 3);
    cr_assert_eq(d->nparams, (uint32_t)tm.m.nparams);
    cr_assert_str_eq(ENGRAM_STR(blob, d, d->name), "test");
    const EngramPopDesc *pops = ENGRAM_TABLE(blob, EngramPopDesc, d->pops_off);
    const EngramProjDesc *projs = ENGRAM_TABLE(blob, EngramProjDesc, d->projs_off);
    cr_assert_eq(pops[0].method, ENGRAM_METHOD_EXACT);
    cr_assert_eq(pops[0].nlinear, 3);
    cr_assert_eq(pops[1].method, ENGRAM_METHOD_EULER);
    cr_assert_eq(kernels[pops[0].update_kernel], cg_jit_lookup(&diag, j, "engram_pop_0_update"));
    cr_assert_eq(kernels[pops[1].update_kernel], cg_jit_lookup(&diag, j, "engram_pop_1_update"));
    cr_assert_eq(kernels[projs[0].deliver_kernel], cg_jit_lookup(&diag, j, "engram_proj_0_deliver"));
    /* A[v][v] = -1 / taum, as postfix bytecode */
    const EngramCode *coefs = ENGRAM_TABLE(blob, EngramCode, d->coefs_off);
    const EngramInsn *in = ENGRAM_TABLE(blob, EngramInsn, d->insns_off);
    EngramCode c0 = coefs[pops[0].first_coef];
    cr_assert_eq(c0.count, 3);
    cr_assert(in[c0.first].op == ENGRAM_OP_CONST && in[c0.first].imm == -1.0);
    cr_assert(in[c0.first + 1].op == ENGRAM_OP_PARAM && in[c0.first + 1].arg == (uint32_t)taum);
    cr_assert_eq(in[c0.first + 2].op, ENGRAM_OP_DIV);
    const EngramParamDesc *params = ENGRAM_TABLE(blob, EngramParamDesc, d->params_off);
    cr_assert_str_eq(ENGRAM_STR(blob, d, params[taum].name), "E.taum");
    jit_done(j);
}

/* ---- tests: vectorisation, errors ---------------------------------------------------------------------- */

static char *module_ir(void)
{
    diag_init(&diag);
    CgOptions opt = {.cpu = NULL, .opt_level = 3, .verify = true};
    CgModule *cm = cg_generate(&diag, &tm.m, &opt);
    cr_assert_not_null(cm);
    char path[] = "/tmp/test_codegen_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(cg_write_ir(&diag, cm, path), 0);
    cg_free(cm);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = calloc((size_t)n + 1, 1);
    cr_assert_eq(fread(text, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    unlink(path);
    diag_free(&diag);
    return text;
}

/* The body of `define ... @name(` up to its closing brace, searched for `needle`. */
static bool function_has(const char *ir, const char *name, const char *needle)
{
    char head[96];
    snprintf(head, sizeof head, "@%s(", name);
    for (const char *f = strstr(ir, head); f; f = strstr(f + 1, head)) {
        const char *line = f;
        while (line > ir && line[-1] != '\n')
            line--;
        if (strncmp(line, "define ", 7) != 0)
            continue;
        const char *end = strstr(f, "\n}\n");
        const char *hit = strstr(f, needle);
        return hit && (!end || hit < end);
    }
    return false;
}

Test(codegen, update_loops_vectorise)
{
    for (int precision = 4; precision <= 8; precision += 4) {
        model_begin(precision);
        model_cuba();
        model_coba(ENGRAM_METHOD_EULER);
        model_coba(ENGRAM_METHOD_RK2);
        model_izhikevich(ENGRAM_METHOD_RK4);
        char *ir = module_ir();
        for (int p = 0; p < tm.m.npops; p++) {
            char name[64];
            snprintf(name, sizeof name, "engram_pop_%d_update", p);
            cr_assert(function_has(ir, name, "vector.body"), "%s (precision %d) is not vectorised",
                      name, precision);
        }
        cr_assert_null(strstr(ir, "fast"), "fast-math flags in the IR");
        cr_assert_null(strstr(ir, "contract"), "contract flags in the IR");
        cr_assert_null(strstr(ir, "llvm.fmuladd"), "fused multiply-add in the IR");
        free(ir);
    }
}

Test(codegen, random_draw_in_ode_is_an_error)
{
    model_begin(8);
    IrPop *p = model_coba(ENGRAM_METHOD_EULER);
    IrExpr *u = ex(IR_UNIFORM);
    u->a = K(0);
    u->b = K(1);
    p->states[COBA_GE].ode = u;
    diag_init(&diag);
    CgOptions opt = {.opt_level = 3};
    CgModule *cm = cg_generate(&diag, &tm.m, &opt);
    cr_assert_null(cm);
    cr_assert_gt(diag.nerrors, 0);
    diag_free(&diag);
}

Test(codegen, bad_precision_is_an_error)
{
    model_begin(8);
    model_cuba();
    tm.m.precision = 2;
    diag_init(&diag);
    CgOptions opt = {.opt_level = 3};
    cr_assert_null(cg_generate(&diag, &tm.m, &opt));
    cr_assert_gt(diag.nerrors, 0);
    diag_free(&diag);
}

/* ---- tests: the runtime accepts what codegen emits --------------------------------------------------- */

/* The whole path of `engramc run`: tables and kernels through engram_main. */
Test(codegen, jit_run_through_engram_main)
{
    model_begin(8);
    prec = 8;
    tm.params[tm.m.dt_param].dim = engram_dim(1, 0, 0);
    tm.params[tm.m.duration_param].dim = engram_dim(1, 0, 0);
    tm.params[tm.m.seed_param].flags = ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG;
    IrPop *p = model_cuba();
    tm.params[p->size_param].flags = ENGRAM_PARAM_SIZE | ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG;
    p->states[CUBA_V].init = ex(IR_UNIFORM);
    p->states[CUBA_V].init->a = K(-60);
    p->states[CUBA_V].init->b = K(-45);
    add_proj(0, 0, 0);
    char dir[] = "/tmp/test_codegen_run_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    diag_init(&diag);
    CgOptions opt = {.opt_level = 2, .verify = true};
    CgModule *cm = cg_generate(&diag, &tm.m, &opt);
    cr_assert_not_null(cm);
    char *argv[] = {"test", "--out", dir, "--duration", "5 ms", "--quiet", NULL};
    int rc = cg_jit_run(&diag, cm, 6, argv);
    diag_flush(&diag, stderr);
    diag_free(&diag);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(rc, 0, "engram_main returned %d", rc);
}
