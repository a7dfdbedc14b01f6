/*
 * test_lower.c - lower.c and ir.c: the linear-system analysis behind
 * `method exact` (coefficients checked numerically), the choice of method,
 * the parameter table of small models (paths, dependency order, flags,
 * values in internal units), populations, projections, drives and sources
 * as the runtime will read them, SHA-256, and the IR dump.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema_internal.h"

/* ---- harness ------------------------------------------------------------- */

static DiagCtx D;
static Arena A;
static char *out;

static void fini(void)
{
    free(out);
    out = NULL;
    arena_free(&A);
    diag_free(&D);
}

static IrModel *compile(const char *text)
{
    diag_init(&D);
    arena_init(&A);
    int file = diag_add_text(&D, "t.engram", text, strlen(text));
    SemaOptions opt = {"stdlib", 8};
    IrModel *m = sema_compile_loaded(&D, &A, file, &opt);
    size_t len;
    FILE *mem = open_memstream(&out, &len);
    diag_flush(&D, mem);
    fclose(mem);
    return m;
}

static IrModel *compile_ok(const char *text)
{
    IrModel *m = compile(text);
    cr_assert_not_null(m, "errors:\n%s", out);
    return m;
}

static const char *first_error(void)
{
    static char buf[512];
    const char *p = out ? strstr(out, "error: ") : NULL;
    buf[0] = '\0';
    if (p)
        snprintf(buf, sizeof buf, "%.*s", (int)strcspn(p + 7, "\n"), p + 7);
    return buf;
}

/* Parameter values from their defaults, as the runtime resolves them. */
static bool param_value(void *ctx, int i, double *out_v)
{
    const IrModel *m = ctx;
    return i >= 0 && i < m->nparams && ir_eval(m->params[i].value, param_value, ctx, out_v);
}

static double value_of(const IrModel *m, const char *path)
{
    int i = ir_param_find(m, path);
    cr_assert_geq(i, 0, "no param %s", path);
    double v;
    cr_assert(param_value((void *)m, i, &v), "%s is not constant", path);
    return v;
}

static double eval(const IrModel *m, const IrExpr *e)
{
    if (!e)
        return 0;   /* a NULL coefficient is zero */
    double v;
    cr_assert(ir_eval(e, param_value, (void *)m, &v));
    return v;
}

static void close_to(double got, double want)
{
    cr_assert(fabs(got - want) <= 1e-12 * fmax(1, fabs(want)), "got %.17g, want %.17g", got, want);
}

TestSuite(lower, .fini = fini);

/* ---- linear systems ------------------------------------------------------ */

static const char *lif =
    "model t\n"
    "neuron LIF {\n"
    "  param tau_m = 20 ms\n  param tau_e = 5 ms\n  param tau_i = 10 ms\n"
    "  param v_th = -50 mV\n  param v_reset = -60 mV\n  param E_l = -49 mV\n  param t_ref = 5 ms\n"
    "  state v = uniform(v_reset, v_th)\n  state ge = 0 mV\n  state gi = 0 mV\n"
    "  dv/dt = (ge + gi - (v - E_l)) / tau_m\n"
    "  dge/dt = -ge / tau_e\n  dgi/dt = -gi / tau_i\n"
    "  threshold v > v_th\n  reset { v = v_reset }\n  refractory t_ref\n"
    "  input exc -> ge\n  input inh -> gi\n"
    "}\n"
    "region net { population E = 8 LIF(tau_m = 10 ms) }\n";

Test(lower, lif_coefficients)
{
    IrModel *m = compile_ok(lif);
    const IrPop *p = &m->pops[0];
    cr_assert_eq(p->method, ENGRAM_METHOD_EXACT);
    cr_assert_eq(p->nlinear, 3);
    for (int r = 0; r < 3; r++)
        cr_assert_eq(p->lin_vars[r], r);
    /* rows v, ge, gi; columns v, ge, gi, b; the population's tau_m = 10 ms */
    double want[3][4] = {
        {-1.0 / 10, 1.0 / 10, 1.0 / 10, -49.0 / 10},
        {0, -1.0 / 5, 0, 0},
        {0, 0, -1.0 / 10, 0},
    };
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            close_to(eval(m, p->coef[r * 4 + c]), want[r][c]);
    cr_assert_null(p->coef[1 * 4 + 0], "zero entries stay NULL");
    cr_assert(engram_dim_eq(p->coef[0]->dim, engram_dim(-1, 0, 0)), "A[v][v] is 1/ms");
    cr_assert(engram_dim_eq(p->coef[3]->dim, engram_dim(-1, 1, 0)), "b[v] is mV/ms");
}

Test(lower, held_variables_are_read_by_the_threshold)
{
    IrModel *m = compile_ok(lif);
    cr_assert(m->pops[0].states[0].held);
    cr_assert_not(m->pops[0].states[1].held);
    cr_assert_not(m->pops[0].states[2].held);
}

Test(lower, state_without_ode_joins_with_a_zero_row)
{
    IrModel *m = compile_ok("model t\nneuron N { param tau = 10 ms\n state v = 0 mV\n state I = 0 mV\n"
                            " state c = 0\n dv/dt = (I - v) / tau\n input exc -> I }\n"
                            "region r { population a = 1 N }\n");
    const IrPop *p = &m->pops[0];
    cr_assert_eq(p->nlinear, 2, "v and I; c is not read");
    cr_assert_eq(p->lin_vars[1], 1);
    for (int c = 0; c < 3; c++)
        cr_assert_null(p->coef[1 * 3 + c]);
    close_to(eval(m, p->coef[0 * 3 + 1]), 0.1);
}

Test(lower, products_by_constants_either_side)
{
    IrModel *m = compile_ok("model t\nneuron N { param k = 2 / 1 ms\n state x = 1 mV\n state y = 0 mV\n"
                            " dx/dt = k * (y - x) * 3 - -x * k\n dy/dt = x / (4 ms) - 2 * dt * y / 1 ms^2 }\n"
                            "region r { population a = 1 N }\n");
    const IrPop *p = &m->pops[0];
    close_to(eval(m, p->coef[0]), -6 + 2);      /* d(dx)/dx = -3k + k */
    close_to(eval(m, p->coef[1]), 6);
    close_to(eval(m, p->coef[3]), 0.25);
    cr_assert_null(p->coef[5], "no affine term");
}

Test(lower, nonlinear_needs_a_method)
{
    cr_assert_null(compile("model t\nneuron Q { state v = 1 mV\n dv/dt = v * v / (1 mV * 1 ms) }\n"
                           "region r { population a = 1 Q }\n"));
    cr_assert_str_eq(first_error(), "the ODEs of neuron 'Q' are not linear (this is a product of "
                     "state variables), so they cannot be integrated exactly");
    cr_assert(strstr(out, "hint: add `method rk2` (or `euler`, `rk4`) to neuron 'Q'"), "%s", out);
}

Test(lower, nonlinear_reasons)
{
    static const struct { const char *rhs, *why; } cases[] = {
        {"exp(v / 1 mV) * 1 mV / 1 ms", "exp() of a state variable"},
        {"1 mV / v * 1 mV / 1 ms", "a division by a state variable"},
        {"-v / 1 ms + t * 1 mV / 1 ms^2", "a dependence on the time t"},
        {"(v / 1 mV)^2 * 1 mV / 1 ms", "a power of a state variable"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], want[256];
        snprintf(text, sizeof text, "model t\nneuron Q { state v = 1 mV\n dv/dt = %s\n method exact }\n",
                 cases[i].rhs);
        cr_assert_null(compile(text), "%s", cases[i].rhs);
        snprintf(want, sizeof want, "method exact needs linear ODEs with constant coefficients, "
                 "but this is %s", cases[i].why);
        cr_assert_str_eq(first_error(), want);
        fini();
    }
}

Test(lower, explicit_methods)
{
    IrModel *m = compile_ok("model t\nneuron Q { state v = 1 mV\n dv/dt = v * v / (1 mV * 1 ms)\n method rk4 }\n"
                            "neuron L { state v = 1 mV\n dv/dt = -v / 1 ms\n method euler }\n"
                            "neuron Z { state v = 1 mV }\n"
                            "region r { population a = 1 Q\n population b = 1 L\n population c = 1 Z }\n");
    cr_assert_eq(m->pops[0].method, ENGRAM_METHOD_RK4);
    cr_assert_eq(m->pops[0].nlinear, 0);
    cr_assert_eq(m->pops[1].method, ENGRAM_METHOD_EULER);
    cr_assert_eq(m->pops[2].method, ENGRAM_METHOD_NONE);
    fini();
    cr_assert_null(compile("model t\nneuron Q { state v = 1 mV\n dv/dt = -v / 1 ms\n method rk3 }\n"));
    cr_assert_str_eq(first_error(), "unknown method 'rk3'");
    cr_assert(strstr(out, "hint: did you mean 'rk2'?"), "%s", out);
}

/* ---- the parameter table ------------------------------------------------- */

static const char *small =
    "model small\n"
    "param g = 4\n"
    "param J = 0.1 mV\n"
    "neuron N {\n  param tau = 20 ms\n  param tau_s = tau / 4\n  param v_th = 10 mV\n"
    "  state v = 0 mV\n  dv/dt = -v / tau\n  threshold v > v_th\n  refractory 2 * tau_s\n"
    "  input exc -> v\n}\n"
    "neuron Src builtin poisson { param rate = 5 Hz }\n"
    "region R {\n  population E = 10 * g N(tau = 10 ms)\n  population P = 3 Src(rate = 2 kHz)\n}\n"
    "project ff: R.P -> R.E { connect fixed_indegree(k = 2) weight uniform(0 mV, J) delay 1.5 ms port exc }\n"
    "project R.E -> R.E { connect random(p = 0.1) weight normal(J, 0.01 mV, min = 0 mV) port exc autapses true }\n"
    "drive R.E poisson(rate = 10 Hz, count = 100) weight -g * J port exc\n"
    "simulation { dt = 0.05 ms\n duration = 2 s\n seed = 42 }\n"
    "record spikes R.E\n";

Test(lower, param_paths_in_declaration_order)
{
    IrModel *m = compile_ok(small);
    static const char *const want[] = {
        "g", "J", "dt", "duration", "seed",
        "R.E.size", "R.E.tau", "R.E.tau_s", "R.E.v_th", "R.E.refractory",
        "R.P.size", "R.P.rate",
        "ff.k", "ff.weight.low", "ff.weight.high", "ff.delay",
        "R.E->R.E.p", "R.E->R.E.weight.mean", "R.E->R.E.weight.sd", "R.E->R.E.weight.min",
        "R.E->R.E.delay",
        "poisson->R.E.rate", "poisson->R.E.count", "poisson->R.E.weight",
    };
    cr_assert_eq(m->nparams, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < m->nparams; i++)
        cr_assert_str_eq(m->params[i].path, want[i], "param %d", i);
}

Test(lower, param_values_in_internal_units)
{
    IrModel *m = compile_ok(small);
    close_to(value_of(m, "R.E.size"), 40);
    close_to(value_of(m, "R.E.tau"), 10);          /* the override */
    close_to(value_of(m, "R.E.tau_s"), 2.5);       /* the default reads the population's tau */
    close_to(value_of(m, "R.E.refractory"), 5);
    close_to(value_of(m, "R.P.rate"), 2);          /* 2 kHz = 2 / ms */
    close_to(value_of(m, "ff.weight.high"), 0.1);
    close_to(value_of(m, "ff.delay"), 1.5);
    close_to(value_of(m, "R.E->R.E.delay"), 0.05); /* one step by default */
    close_to(value_of(m, "poisson->R.E.rate"), 0.01);
    close_to(value_of(m, "poisson->R.E.weight"), -0.4);
    close_to(value_of(m, "duration"), 2000);
    close_to(value_of(m, "seed"), 42);
}

Test(lower, param_flags)
{
    IrModel *m = compile_ok(small);
    uint32_t size = ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG | ENGRAM_PARAM_SIZE;
    cr_assert_eq(m->params[ir_param_find(m, "R.E.size")].flags, size);
    cr_assert_eq(m->params[ir_param_find(m, "dt")].flags, ENGRAM_PARAM_POSITIVE);
    cr_assert_eq(m->params[ir_param_find(m, "seed")].flags, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG);
    cr_assert_eq(m->params[ir_param_find(m, "R.E->R.E.p")].flags, ENGRAM_PARAM_PROB);
    cr_assert_eq(m->params[ir_param_find(m, "ff.k")].flags, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG);
    cr_assert(m->params[ir_param_find(m, "R.E->R.E.weight.sd")].flags & ENGRAM_PARAM_NONNEG);
}

Test(lower, params_read_only_earlier_params)
{
    IrModel *m = compile_ok("model t\nparam a = b * 2\nparam b = c + 1\nparam c = 1\n"
                            "simulation { duration = a * 1 s }\n");
    for (int i = 0; i < m->nparams; i++) {
        int deps[8], n = 0;
        const IrExpr *stack[32];
        int top = 0;
        if (m->params[i].value)
            stack[top++] = m->params[i].value;
        while (top > 0) {
            const IrExpr *e = stack[--top];
            if (e->kind == IR_PARAM && n < 8)
                deps[n++] = e->index;
            const IrExpr *kids[4] = {e->a, e->b, e->c, e->d};
            for (int k = 0; k < 4; k++)
                if (kids[k] && top < 32)
                    stack[top++] = kids[k];
        }
        for (int k = 0; k < n; k++)
            cr_assert_lt(deps[k], i, "%s reads a later param", m->params[i].path);
    }
    cr_assert_lt(ir_param_find(m, "c"), ir_param_find(m, "b"));
    cr_assert_lt(ir_param_find(m, "b"), ir_param_find(m, "a"));
    close_to(value_of(m, "duration"), 4000);
}

Test(lower, population_param_cycle)
{
    cr_assert_null(compile("model t\nneuron N { state v = 0 mV }\n"
                           "region r { population a = r.b.size N\n population b = r.a.size N }\n"));
    cr_assert_str_eq(first_error(), "parameter cycle: r.a.size -> r.b.size -> r.a.size");
}

/* ---- populations and links ----------------------------------------------- */

Test(lower, populations_and_links)
{
    IrModel *m = compile_ok(small);
    cr_assert_eq(m->npops, 2);
    const IrPop *e = &m->pops[0], *p = &m->pops[1];
    cr_assert_str_eq(e->path, "R.E");
    cr_assert_eq(e->size_param, ir_param_find(m, "R.E.size"));
    cr_assert_eq(e->refractory_param, ir_param_find(m, "R.E.refractory"));
    cr_assert(e->record_spikes);
    cr_assert_not(p->record_spikes);
    cr_assert_eq(p->kind, ENGRAM_POP_POISSON);
    cr_assert_eq(p->rate_param, ir_param_find(m, "R.P.rate"));
    cr_assert_eq(p->nstates, 0);
    /* threshold reads the population's v_th copy by global index */
    cr_assert_eq(e->threshold->b->kind, IR_PARAM);
    cr_assert_eq(e->threshold->b->index, ir_param_find(m, "R.E.v_th"));
    cr_assert_eq(e->threshold->a->kind, IR_STATE);

    cr_assert_eq(m->nprojs, 2);
    const IrProj *ff = &m->projs[0], *rec = &m->projs[1];
    cr_assert_str_eq(ff->name, "ff");
    cr_assert_eq(ff->src, 1);
    cr_assert_eq(ff->dst, 0);
    cr_assert_eq(ff->rule, ENGRAM_CONNECT_FIXED_INDEGREE);
    cr_assert_eq(ff->weight.kind, ENGRAM_DIST_UNIFORM);
    cr_assert_eq(ff->weight.arg[1], ir_param_find(m, "ff.weight.high"));
    cr_assert_eq(ff->delay.kind, ENGRAM_DIST_CONST);
    cr_assert_not(ff->autapses);
    cr_assert_str_eq(rec->name, "R.E->R.E");
    cr_assert(rec->autapses);
    cr_assert_eq(rec->weight.kind, ENGRAM_DIST_NORMAL);
    cr_assert_eq(rec->weight.arg[2], ir_param_find(m, "R.E->R.E.weight.min"));
    cr_assert_eq(rec->weight.arg[3], -1);

    cr_assert_eq(m->ndrives, 1);
    cr_assert_str_eq(m->drives[0].name, "poisson->R.E");
    cr_assert_eq(m->drives[0].count_param, ir_param_find(m, "poisson->R.E.count"));
    cr_assert_eq(m->dt_param, ir_param_find(m, "dt"));
    cr_assert_str_eq(m->name, "small");
}

Test(lower, spike_times_lists)
{
    IrModel *m = compile_ok("model t\nuse std.neurons (SpikeTimes)\n"
                            "neuron Gen builtin spike_times { param times = [1 ms] }\n"
                            "region r { population a = 2 SpikeTimes(times = [1 ms, 0.5 s], indices = [1, 0])\n"
                            " population b = 1 Gen(times = [2 ms, 3 ms]) }\n");
    const IrPop *a = &m->pops[0], *b = &m->pops[1];
    cr_assert_eq(a->kind, ENGRAM_POP_SPIKE_TIMES);
    const IrParam *t = &m->params[a->times_param];
    cr_assert(t->flags & ENGRAM_PARAM_LIST);
    cr_assert_eq(t->nlist, 2);
    close_to(t->list[1], 500);
    cr_assert_eq(m->params[a->indices_param].nlist, 2);
    close_to(m->params[a->indices_param].list[0], 1);
    /* indices absent: all zero, as many as the times */
    cr_assert_geq(b->indices_param, 0);
    cr_assert_eq(m->params[b->indices_param].nlist, 2);
    close_to(m->params[b->indices_param].list[1], 0);
    fini();
    cr_assert_null(compile("model t\nuse std.neurons (SpikeTimes)\n"
                           "region r { population a = 2 SpikeTimes(times = [1 ms], indices = [2]) }\n"));
    cr_assert_str_eq(first_error(), "neuron index 2 is outside r.a (size 2)");
}

Test(lower, initial_values_are_per_neuron_draws)
{
    IrModel *m = compile_ok("model t\nneuron N { param lo = -1 mV\n state v = uniform(lo, 1 mV) + i * 0.5 mV\n"
                            " state w = normal(0 pA, 1 pA, min = -2 pA) }\nregion r { population a = 4 N }\n");
    const IrExpr *v = m->pops[0].states[0].init;
    cr_assert_eq(v->kind, IR_BINARY);
    cr_assert_eq(v->a->kind, IR_UNIFORM);
    cr_assert_eq(v->a->a->index, ir_param_find(m, "r.a.lo"));
    cr_assert_eq(v->b->a->kind, IR_INDEX);
    const IrExpr *w = m->pops[0].states[1].init;
    cr_assert_eq(w->kind, IR_NORMAL);
    cr_assert_not_null(w->c);
    cr_assert_null(w->d);
}

/* ---- ranges -------------------------------------------------------------- */

Test(lower, constant_ranges)
{
    static const struct { const char *item, *msg; } cases[] = {
        {"connect random(p = 1.5) weight 1 mV port exc",
         "a connection probability must be between 0 and 1, got 1.5"},
        {"connect fixed_indegree(k = 2.5) weight 1 mV port exc",
         "an in-degree must be a whole number >= 0, got 2.5"},
        {"connect all_to_all weight 1 mV delay 0.05 ms port exc",
         "a delay of 0.05 ms is shorter than the time step dt = 0.1 ms"},
        {"connect one_to_one weight 1 mV port exc",
         "one_to_one needs populations of equal size, but r.a has 3 neurons and r.b has 4"},
        {"connect all_to_all weight uniform(2 mV, 1 mV) port exc", "uniform(): low is above high"},
        {"connect all_to_all weight 1 mV port exci", "neuron 'N' has no port 'exci'"},
        {"connect randm(0.1) weight 1 mV port exc", "unknown connection rule 'randm'"},
        {"connect random(q = 0.1) weight 1 mV port exc", "random() has no argument 'q'"},
        {"weight 1 mV port exc", "projection has no connect rule"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "model t\nneuron N { state v = 0 mV\n input exc -> v }\n"
                 "region r { population a = 3 N\n population b = 4 N }\n"
                 "project r.a -> r.b { %s }\n", cases[i].item);
        cr_assert_null(compile(text), "%s", cases[i].item);
        cr_assert_str_eq(first_error(), cases[i].msg);
        fini();
    }
    cr_assert_null(compile("model t\nneuron N { state v = 0 mV }\nregion r { population a = -3 N }\n"));
    cr_assert_str_eq(first_error(), "a population size must be at least 0, got -3");
    fini();
    cr_assert_null(compile("model t\nsimulation { dt = -0.1 ms }\n"));
    cr_assert_str_eq(first_error(), "dt must be positive, got -0.1 ms");
}

Test(lower, sources_cannot_receive)
{
    cr_assert_null(compile("model t\nuse std.neurons (Poisson)\nneuron N { state v = 0 mV\n input exc -> v }\n"
                           "region r { population a = 3 N\n population p = 4 Poisson }\n"
                           "project r.a -> r.p { connect all_to_all weight 1 mV port exc }\n"));
    cr_assert_str_eq(first_error(), "r.p is a source (builtin poisson) and cannot receive input");
}

/* ---- services ------------------------------------------------------------ */

Test(lower, sha256_known_vectors)
{
    char hex[65];
    sema_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sema_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sema_sha256_hex(two, strlen(two), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(lower, model_hash_and_precision)
{
    IrModel *m = compile_ok("model t\n");
    char hex[65];
    sema_sha256_hex("model t\n", 8, hex);
    cr_assert_str_eq(m->sha256, hex);
    cr_assert_eq(m->precision, 8);
}

Test(lower, dump_names_everything)
{
    IrModel *m = compile_ok(small);
    char *text = NULL;
    size_t len;
    FILE *mem = open_memstream(&text, &len);
    ir_dump(mem, m);
    fclose(mem);
    cr_assert(strstr(text, "population 0 R.E (N, neuron) size R.E.size method exact record"), "%s", text);
    cr_assert(strstr(text, "  threshold (v > R.E.v_th)"), "%s", text);
    cr_assert(strstr(text, "projection 0 ff: R.P -> R.E port exc rule fixed_indegree ff.k"), "%s", text);
    cr_assert(strstr(text, "  7 R.E.tau_s [ms] = (R.E.tau / 4)"), "%s", text);
    free(text);
}
