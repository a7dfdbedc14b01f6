/*
 * test_plasticity_sema.c - sema_plasticity.c and the plasticity parts of
 * lower.c and ir.c (docs/language.md sections 12-14): a rule's use becomes
 * projection params (paths, units, flags, defaults read as the projection's
 * copies), one rule serves weights of any unit, traces take their
 * dimension from use, handlers split into before / per synapse / after,
 * trace ODEs give lin_a and lin_b (checked numerically), bounds and every
 * intervals, modulators, releases, weight records, and the errors of each.
 *
 * Models are compiled from text (the stdlib LIF, LIFCond and Poisson);
 * rules are written into the model file itself.
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

static void compile_fails(const char *text)
{
    IrModel *m = compile(text);
    cr_assert_null(m, "expected errors");
}

static bool has_error(const char *text)
{
    return out && strstr(out, text) != NULL;
}

static int count_of(const char *text)
{
    int n = 0;
    for (const char *p = out; p && (p = strstr(p, text)) != NULL; p++)
        n++;
    return n;
}

static bool param_value(void *ctx, int i, double *out_v)
{
    const IrModel *m = ctx;
    return i >= 0 && i < m->nparams && ir_eval(m->params[i].value, param_value, ctx, out_v);
}

static int param_of(const IrModel *m, const char *path)
{
    int i = ir_param_find(m, path);
    cr_assert_geq(i, 0, "no param %s", path);
    return i;
}

static double value_of(const IrModel *m, const char *path)
{
    double v;
    cr_assert(param_value((void *)m, param_of(m, path), &v), "%s is not constant", path);
    return v;
}

static double eval(const IrModel *m, const IrExpr *e)
{
    double v;
    cr_assert_not_null(e);
    cr_assert(ir_eval(e, param_value, (void *)m, &v));
    return v;
}

static void close_to(double got, double want)
{
    cr_assert(fabs(got - want) <= 1e-12 * fmax(1, fabs(want)), "got %.17g, want %.17g", got, want);
}

static bool dim_is(EngramDim d, int t, int v, int c)
{
    return engram_dim_eq(d, engram_dim(t, v, c));
}

static const IrProj *proj_named(const IrModel *m, const char *name)
{
    for (int i = 0; i < m->nprojs; i++)
        if (strcmp(m->projs[i].name, name) == 0)
            return &m->projs[i];
    cr_assert_fail("no projection %s", name);
    return NULL;
}

TestSuite(plasticity, .fini = fini);

/* ---- models ---------------------------------------------------------------- */

#define HEAD "model t\nuse std.neurons (LIF, LIFCond, Poisson)\n"
#define POPS "region R {\n  population a = 10 LIFCond\n  population b = 20 LIF\n" \
             "  population s = 5 Poisson\n}\n"
#define STDP \
    "plasticity STDP {\n" \
    "  param w_max : weight\n" \
    "  param A_plus : weight = 0.01 * w_max\n" \
    "  param A_minus : weight = 1.05 * A_plus\n" \
    "  param tau_plus = 20 ms\n  param tau_minus = 25 ms\n" \
    "  pre x = 0\n  post y = 0\n" \
    "  dx/dt = -x / tau_plus\n  dy/dt = -y / tau_minus\n" \
    "  bounds 0, w_max\n" \
    "  on pre { x += 1\n w -= A_minus * y }\n" \
    "  on post { w += A_plus * x\n y += 1 }\n" \
    "}\n"

static const char *stdp_model =
    HEAD STDP POPS
    "project ee: R.a -> R.a { connect random(p = 0.1) weight 0.5 nS port exc\n"
    "  plasticity STDP(w_max = 2 nS, tau_plus = 15 ms) }\n"
    "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc\n"
    "  plasticity STDP(w_max = 1 mV) }\n";

/* ---- a rule's use ---------------------------------------------------------- */

Test(plasticity, stdp_params_are_projection_params)
{
    IrModel *m = compile_ok(stdp_model);
    close_to(value_of(m, "ee.w_max"), 2);
    close_to(value_of(m, "ee.A_plus"), 0.02);
    close_to(value_of(m, "ee.A_minus"), 0.021);
    close_to(value_of(m, "ee.tau_plus"), 15);
    close_to(value_of(m, "ee.tau_minus"), 25);
    close_to(value_of(m, "ee.plastic"), 1);
    cr_assert(dim_is(m->params[param_of(m, "ee.w_max")].dim, 0, -1, 1), "nS");
    cr_assert(dim_is(m->params[param_of(m, "ee.A_minus")].dim, 0, -1, 1), "nS");
    cr_assert(dim_is(m->params[param_of(m, "ee.tau_plus")].dim, 1, 0, 0), "ms");
    cr_assert(m->params[param_of(m, "ee.plastic")].flags & ENGRAM_PARAM_NONNEG);
    /* a default reads this projection's copy of the other param */
    const IrExpr *a = m->params[param_of(m, "ee.A_minus")].value;
    cr_assert(ir_reads(a, IR_PARAM));
    cr_assert_lt(param_of(m, "ee.A_plus"), param_of(m, "ee.A_minus"), "dependency order");
}

Test(plasticity, stdp_rule_ir)
{
    IrModel *m = compile_ok(stdp_model);
    const IrRule *r = proj_named(m, "ee")->plasticity;
    cr_assert_not_null(r);
    cr_assert_str_eq(r->name, "STDP");
    cr_assert_eq(r->nsyn_vars, 0);
    cr_assert_eq(r->npre, 1);
    cr_assert_eq(r->npost, 1);
    cr_assert_str_eq(r->pre[0].name, "x");
    cr_assert(dim_is(r->pre[0].dim, 0, 0, 0), "x += 1: dimensionless");
    /* dx/dt = -x / tau_plus: a = -1/15 per ms, b = 0 */
    close_to(eval(m, r->pre[0].lin_a), -1.0 / 15);
    close_to(eval(m, r->pre[0].lin_b), 0);
    close_to(eval(m, r->post[0].lin_a), -1.0 / 25);
    cr_assert(dim_is(r->pre[0].lin_a->dim, -1, 0, 0), "1/ms");
    cr_assert_eq(r->plastic_param, param_of(m, "ee.plastic"));
    cr_assert_eq(r->w_lo_param, param_of(m, "ee.w_lo"));
    cr_assert_eq(r->w_hi_param, param_of(m, "ee.w_hi"));
    cr_assert_eq(r->every_param, -1);
    cr_assert(r->has_on_pre && r->has_on_post && !r->has_every && !r->pre_arrival);
}

Test(plasticity, handlers_split_before_syn_after)
{
    IrModel *m = compile_ok(stdp_model);
    const IrRule *r = proj_named(m, "ee")->plasticity;
    /* on pre { x += 1; w -= ... }: the trace before the synapse loop */
    cr_assert_eq(r->on_pre.nbefore, 1);
    cr_assert_eq(r->on_pre.nsyn, 1);
    cr_assert_eq(r->on_pre.nafter, 0);
    cr_assert_eq(r->on_pre.before[0].target, IR_TGT_PRE);
    cr_assert_eq(r->on_pre.before[0].index, 0);
    cr_assert_eq(r->on_pre.before[0].op, ASSIGN_ADD);
    cr_assert_eq(r->on_pre.syn[0].target, IR_TGT_WEIGHT);
    cr_assert_eq(r->on_pre.syn[0].op, ASSIGN_SUB);
    cr_assert(ir_reads(r->on_pre.syn[0].value, IR_POST_TRACE));
    /* on post { w += ...; y += 1 }: the trace after it */
    cr_assert_eq(r->on_post.nbefore, 0);
    cr_assert_eq(r->on_post.nsyn, 1);
    cr_assert_eq(r->on_post.nafter, 1);
    cr_assert_eq(r->on_post.after[0].target, IR_TGT_POST);
    cr_assert(ir_reads(r->on_post.syn[0].value, IR_PRE_TRACE));
    cr_assert(dim_is(r->on_post.syn[0].value->dim, 0, -1, 1), "w in nS");
}

/* `on pre arrival`: the pre trace becomes a synapse variable (after c), and
 * the whole on-pre handler runs per synapse, in the order written. */
Test(plasticity, arrival_pre_traces_become_synapse_variables)
{
    IrModel *m = compile_ok(
        HEAD POPS
        "plasticity Arr {\n"
        "  param w_max : weight\n  param tau = 20 ms\n"
        "  synapse c = 0\n  pre x = 0\n  post y = 0\n"
        "  dc/dt = -c / (1 s)\n  dx/dt = -x / tau\n  dy/dt = -y / tau\n"
        "  on pre arrival { x = 1\n c -= 0.1 * y }\n"
        "  on post { c += 0.1 * x\n y = 1 }\n"
        "  every 1 ms { w += c * x * w_max }\n"
        "}\n"
        "project ee: R.a -> R.a { connect random(p = 0.1) weight 0.5 nS delay uniform(1 ms, 5 ms)\n"
        "  port exc\n  plasticity Arr(w_max = 2 nS) }\n");
    const IrRule *r = proj_named(m, "ee")->plasticity;
    cr_assert(r->pre_arrival && r->has_on_pre);
    cr_assert_eq(r->npre, 0);
    cr_assert_eq(r->nsyn_vars, 2);
    cr_assert_str_eq(r->syn_vars[0].name, "c");
    cr_assert_str_eq(r->syn_vars[1].name, "x");
    close_to(eval(m, r->syn_vars[1].lin_a), -1.0 / 20);
    cr_assert(r->on_pre.nbefore == 0 && r->on_pre.nafter == 0 && r->on_pre.nsyn == 2);
    cr_assert(r->on_pre.syn[0].target == IR_TGT_SYNVAR && r->on_pre.syn[0].index == 1, "x = 1 first");
    cr_assert(r->on_pre.syn[1].target == IR_TGT_SYNVAR && r->on_pre.syn[1].index == 0);
    cr_assert(!ir_reads(r->on_post.syn[0].value, IR_PRE_TRACE) &&
              ir_reads(r->on_post.syn[0].value, IR_SYNVAR), "on post reads x per synapse");
    cr_assert(!ir_reads(r->every.syn[0].value, IR_PRE_TRACE));
    cr_assert_eq(r->on_post.nafter, 1, "post traces stay per neuron");
}

Test(plasticity, one_rule_for_conductance_and_voltage_weights)
{
    IrModel *m = compile_ok(stdp_model);
    const IrProj *v = proj_named(m, "R.a->R.b");
    cr_assert(dim_is(m->params[param_of(m, "R.a->R.b.w_max")].dim, 0, 1, 0), "mV");
    cr_assert(dim_is(m->params[param_of(m, "R.a->R.b.w_hi")].dim, 0, 1, 0), "mV");
    close_to(value_of(m, "R.a->R.b.A_plus"), 0.01);
    close_to(value_of(m, "R.a->R.b.tau_plus"), 20);
    cr_assert(dim_is(v->plasticity->on_pre.syn[0].value->dim, 0, 1, 0), "w in mV");
    close_to(eval(m, v->plasticity->pre[0].lin_a), -1.0 / 20);
}

Test(plasticity, bounds_default_to_the_projection_copies)
{
    IrModel *m = compile_ok(stdp_model);
    close_to(value_of(m, "ee.w_lo"), 0);
    close_to(value_of(m, "ee.w_hi"), 2);
    const IrExpr *hi = m->params[param_of(m, "ee.w_hi")].value;
    cr_assert_eq(hi->kind, IR_PARAM);
    cr_assert_eq(hi->index, param_of(m, "ee.w_max"));
}

Test(plasticity, weight_param_without_default_must_be_given)
{
    compile_fails(HEAD STDP POPS
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc\n"
                  "  plasticity STDP(A_plus = 0.1 mV) }\n");
    cr_assert(has_error("rule 'STDP' needs the argument 'w_max' (a weight: a voltage (mV)"), "%s", out);
    cr_assert(has_error("declared here without a default"), "%s", out);
}

Test(plasticity, weight_argument_in_the_wrong_unit)
{
    compile_fails(HEAD STDP POPS
                  "project R.a -> R.a { connect random(p = 0.1) weight 0.5 nS port exc\n"
                  "  plasticity STDP(w_max = 2 mV) }\n");
    cr_assert(has_error("expected a conductance (nS), got a voltage (mV)"), "%s", out);
    cr_assert(has_error("'w_max' is declared `: weight`"), "%s", out);
}

/* ---- variables ------------------------------------------------------------- */

static const char *every_model =
    HEAD
    "modulator dopamine { baseline = 0.002; tau = 200 ms }\n"
    "plasticity DA {\n"
    "  param w_max : weight\n  param A : weight = w_max / 40\n"
    "  param tau_c = 1 s\n  param T = 2 ms\n"
    "  let gain = dopamine * T / 10 ms\n"
    "  synapse c = 0\n  synapse r = uniform(0, 1) * i\n"
    "  pre x = 0\n  post y = 0\n"
    "  dc/dt = -c / tau_c + A / 1 s\n"
    "  dx/dt = -x / 20 ms\n  dy/dt = -y / 20 ms\n"
    "  bounds -w_max, w_max\n"
    "  on pre { c -= A * y\n x = 1 }\n"
    "  on post { y = 1\n c += A * x * post.v / 1 mV }\n"
    "  every T { w = clip(w + c * gain, 0, w_max)\n r *= 0.5 }\n"
    "}\n"
    POPS
    "project d: R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc\n"
    "  plasticity DA(w_max = 1 mV) }\n";

Test(plasticity, synapse_variables_and_every)
{
    IrModel *m = compile_ok(every_model);
    const IrRule *r = proj_named(m, "d")->plasticity;
    cr_assert_eq(r->nsyn_vars, 2);
    cr_assert_str_eq(r->syn_vars[0].name, "c");
    cr_assert(dim_is(r->syn_vars[0].dim, 0, 1, 0), "c -= A * y: c takes the weight's unit");
    close_to(eval(m, r->syn_vars[0].lin_a), -1.0 / 1000);
    close_to(eval(m, r->syn_vars[0].lin_b), (1.0 / 40) / 1000);
    cr_assert_null(r->syn_vars[1].lin_a, "r has no ODE");
    cr_assert_eq(r->syn_vars[1].init->kind, IR_BINARY);
    cr_assert(ir_reads(r->syn_vars[1].init, IR_UNIFORM));
    cr_assert(ir_reads(r->syn_vars[1].init, IR_INDEX), "i is the synapse id");
    cr_assert_eq(r->every_param, param_of(m, "d.every"));
    close_to(value_of(m, "d.every"), 2);
    cr_assert(m->params[r->every_param].flags & ENGRAM_PARAM_POSITIVE);
    close_to(value_of(m, "d.w_lo"), -1);
    cr_assert(r->has_every);
    cr_assert_eq(r->every.nsyn, 2);
    cr_assert_eq(r->every.syn[0].target, IR_TGT_WEIGHT);
    cr_assert(ir_reads(r->every.syn[0].value, IR_MODULATOR), "the let is inlined");
    cr_assert_eq(r->every.syn[1].target, IR_TGT_SYNVAR);
    cr_assert_eq(r->every.syn[1].index, 1);
    cr_assert_eq(r->every.syn[1].op, ASSIGN_MUL);
}

Test(plasticity, neuron_state_of_either_side)
{
    IrModel *m = compile_ok(every_model);
    const IrRule *r = proj_named(m, "d")->plasticity;
    cr_assert_eq(r->on_post.nbefore, 1);
    const IrExpr *e = r->on_post.syn[0].value;
    cr_assert(ir_reads(e, IR_POST_STATE));
    /* post.v is state 0 of LIF */
    const IrExpr *s = e;
    while (s && s->kind != IR_POST_STATE)
        s = s->a && ir_reads(s->a, IR_POST_STATE) ? s->a : s->b;
    cr_assert_not_null(s);
    cr_assert_eq(s->index, 0);
    cr_assert(dim_is(s->dim, 0, 1, 0));
}

Test(plasticity, trace_ode_must_be_linear_in_itself)
{
    compile_fails(HEAD POPS
                  "plasticity N { pre x = 0\n synapse c = 0 mV\n dx/dt = -x * x / 10 ms\n"
                  "  dc/dt = (w - c) / 10 ms\n on pre { x += 1\n w += c } }\n"
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n");
    cr_assert(has_error("the ODE of pre trace 'x' must be linear in 'x' alone"), "%s", out);
    cr_assert(has_error("a dependence on the weight w"), "%s", out);
    cr_assert(has_error("`every` block"), "%s", out);
}

Test(plasticity, mixed_trace_updates_are_refused)
{
    compile_fails(HEAD POPS
                  "plasticity N { param w_max : weight\n pre x = 0\n post y = 0\n"
                  "  on pre { x += 1\n w += w_max * y\n x *= 0.5 } }\n"
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc "
                  "plasticity N(w_max = 1 mV) }\n");
    cr_assert(has_error("must all come before or all after the per-synapse statements"), "%s", out);
}

Test(plasticity, handler_targets)
{
    compile_fails(HEAD POPS
                  "plasticity N { param A = 1\n pre x = 0\n post y = 0\n"
                  "  on pre { A += 1\n y += 1 }\n every 1 ms { x += 1 } }\n"
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n");
    cr_assert(has_error("cannot assign to param 'A'"), "%s", out);
    cr_assert(has_error("`on pre` cannot assign the post trace 'y'"), "%s", out);
    cr_assert(has_error("an `every` block updates synapses; it cannot assign the pre trace 'x'"), "%s", out);
}

Test(plasticity, per_spike_statements_read_one_side)
{
    compile_fails(HEAD POPS
                  "plasticity N { pre x = 0\n post y = 0\n on pre { x += y\n w += 0 mV } }\n"
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n");
    cr_assert(has_error("runs once per presynaptic spike, not per synapse, so it cannot read the post "
                        "trace 'y'"), "%s", out);
}

Test(plasticity, source_populations_have_no_state)
{
    compile_fails(HEAD POPS
                  "plasticity N { on pre { w += 0.1 mV * pre.v / 1 mV } }\n"
                  "project R.s -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n");
    cr_assert(has_error("pre.v: the presynaptic population R.s is a source"), "%s", out);
}

Test(plasticity, unknown_modulator_is_suggested)
{
    compile_fails(HEAD POPS
                  "modulator dopamine { baseline = 0; tau = 200 ms }\n"
                  "plasticity N { every 1 ms { w += 0.1 mV * dopamin } }\n"
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n"
                  "project R.b -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n");
    cr_assert(has_error("unknown name 'dopamin'"), "%s", out);
    cr_assert(has_error("did you mean 'dopamine'?"), "%s", out);
    cr_assert_eq(count_of("unknown name 'dopamin'"), 1, "one message for two uses:\n%s", out);
}

Test(plasticity, unknown_rule)
{
    compile_fails(HEAD STDP POPS
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity STPD }\n");
    cr_assert(has_error("unknown plasticity rule 'STPD'"), "%s", out);
    cr_assert(has_error("did you mean 'STDP'?"), "%s", out);
}

Test(plasticity, every_shorter_than_dt)
{
    compile_fails(HEAD POPS
                  "plasticity N { every 0.01 ms { w *= 0.99 } }\n"
                  "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc plasticity N }\n");
    cr_assert(has_error("an `every` interval of 0.01 ms is shorter than the time step"), "%s", out);
}

/* ---- modulators, releases, weight records ----------------------------------- */

static const char *release_model =
    HEAD POPS
    "param reward = 0.5\n"
    "modulator dopamine { baseline = 0.002; tau = 200 ms }\n"
    "modulator ach { tau = 1 s }\n"
    "release ach 0.01 per spike of R.s\n"
    "release dopamine reward when R.b[2] fires within 20 ms after R.a[1] delay uniform(1 s, 3 s)\n"
    "release dopamine 0.1 when R.b[0] fires within 5 ms after R.a[0]\n"
    "project ee: R.a -> R.a { connect random(p = 0.1) weight 0.5 nS port exc }\n"
    "project R.a -> R.b { connect random(p = 0.1) weight 0.5 mV port exc }\n"
    "record weights ee every 1 s synapses\n"
    "record weights R.a -> R.b\n";

Test(plasticity, modulators)
{
    IrModel *m = compile_ok(release_model);
    cr_assert_eq(m->nmodulators, 2);
    const IrModulator *d = &m->modulators[0];
    cr_assert_str_eq(d->name, "dopamine");
    cr_assert_eq(d->baseline_param, param_of(m, "dopamine.baseline"));
    cr_assert_eq(d->tau_param, param_of(m, "dopamine.tau"));
    close_to(value_of(m, "dopamine.baseline"), 0.002);
    close_to(value_of(m, "dopamine.tau"), 200);
    cr_assert(m->params[d->tau_param].flags & ENGRAM_PARAM_POSITIVE);
    close_to(value_of(m, "ach.baseline"), 0);
    close_to(value_of(m, "ach.tau"), 1000);
}

Test(plasticity, releases)
{
    IrModel *m = compile_ok(release_model);
    cr_assert_eq(m->nreleases, 3);
    const IrRelease *r = &m->releases[0];
    cr_assert_eq(r->kind, ENGRAM_RELEASE_PER_SPIKE);
    cr_assert_eq(r->modulator, 1);
    cr_assert_eq(r->src, 2);
    cr_assert_eq(r->dst, -1);
    cr_assert_eq(r->amount_param, param_of(m, "release0.amount"));
    r = &m->releases[1];
    cr_assert_eq(r->kind, ENGRAM_RELEASE_WHEN);
    cr_assert_eq(r->modulator, 0);
    cr_assert_eq(r->src, 0);
    cr_assert_eq(r->dst, 1);
    close_to(value_of(m, "release1.amount"), 0.5);
    close_to(value_of(m, "release1.src_index"), 1);
    close_to(value_of(m, "release1.dst_index"), 2);
    close_to(value_of(m, "release1.window"), 20);
    cr_assert(m->params[r->src_index_param].flags & ENGRAM_PARAM_INTEGER);
    cr_assert_eq(r->delay.kind, ENGRAM_DIST_UNIFORM);
    cr_assert_eq(r->delay.arg[0], param_of(m, "release1.delay.low"));
    close_to(value_of(m, "release1.delay.high"), 3000);
    cr_assert_eq(m->releases[2].delay.kind, ENGRAM_DIST_CONST);
    cr_assert_eq(m->releases[2].delay.arg[0], -1, "no delay");
}

Test(plasticity, release_errors)
{
    compile_fails(HEAD POPS
                  "modulator da { baseline = 0; tau = 100 ms; gain = 1 }\n"
                  "release dopa 1 per spike of R.a\n"
                  "release da 1 mV per spike of R.a\n"
                  "release da 1 when R.b[20] fires within 20 ms after R.a[0]\n");
    cr_assert(has_error("unknown modulator setting 'gain'"), "%s", out);
    cr_assert(has_error("unknown modulator 'dopa'"), "%s", out);
    cr_assert(has_error("expected a dimensionless number, got a voltage (mV)"), "%s", out);
    cr_assert(has_error("neuron index 20 is outside R.b (size 20)"), "%s", out);
}

Test(plasticity, weight_records)
{
    IrModel *m = compile_ok(release_model);
    cr_assert_eq(m->nweight_recs, 2);
    cr_assert_eq(m->weight_recs[0].proj, 0);
    cr_assert(m->weight_recs[0].per_synapse);
    close_to(value_of(m, "ee.record_every"), 1000);
    cr_assert_eq(m->weight_recs[1].proj, 1);
    cr_assert_not(m->weight_recs[1].per_synapse);
    close_to(value_of(m, "R.a->R.b.record_every"), 100);
    cr_assert_eq(m->weight_recs[1].every_param, param_of(m, "R.a->R.b.record_every"));
}

Test(plasticity, weight_record_of_an_unknown_projection)
{
    compile_fails(HEAD POPS
                  "project ee: R.a -> R.a { connect random(p = 0.1) weight 0.5 nS port exc }\n"
                  "record weights ef\n");
    cr_assert(has_error("unknown projection 'ef'"), "%s", out);
    cr_assert(has_error("did you mean 'ee'?"), "%s", out);
}

Test(plasticity, dump_shows_rules_and_modulators)
{
    IrModel *m = compile_ok(every_model);
    char *text = NULL;
    size_t len;
    FILE *mem = open_memstream(&text, &len);
    ir_dump(mem, m);
    fclose(mem);
    cr_assert_not_null(strstr(text, "plasticity DA plastic d.plastic bounds d.w_lo, d.w_hi every d.every"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "synapse 0 c [mV]"), "%s", text);
    cr_assert_not_null(strstr(text, "before post_trace[0] = 1"), "%s", text);
    cr_assert_not_null(strstr(text, "modulator 0 dopamine [1]"), "%s", text);
    free(text);
}
