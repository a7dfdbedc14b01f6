/*
 * test_units_check.c - dimension analysis and name binding in check.c
 * (docs/language.md sections 2, 4, 5): good expressions with the dimension
 * and internal value they lower to, bad ones with the exact message and
 * hint, and the places where a unit is required.
 *
 * Each case compiles a small model from memory (sema_compile_loaded) and
 * reads either the lowered parameter table or the first diagnostic.
 * Tests run from the repository root (ctest sets the working directory).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema_internal.h"

/* ---- harness ------------------------------------------------------------- */

typedef struct Compiled {
    DiagCtx d;
    Arena a;
    IrModel *m;
    char *out;       /* everything diag_flush printed */
} Compiled;

static Compiled C;

static void fini(void)
{
    free(C.out);
    arena_free(&C.a);
    diag_free(&C.d);
    memset(&C, 0, sizeof C);
}

static IrModel *compile(const char *text)
{
    diag_init(&C.d);
    arena_init(&C.a);
    int file = diag_add_text(&C.d, "t.engram", text, strlen(text));
    SemaOptions opt = {"stdlib", 8};
    C.m = sema_compile_loaded(&C.d, &C.a, file, &opt);
    size_t len;
    FILE *mem = open_memstream(&C.out, &len);
    diag_flush(&C.d, mem);
    fclose(mem);
    return C.m;
}

/* The text after "error: " (or "hint: ") of the first such line. */
static char *line_after(const char *tag)
{
    static char buf[512];
    const char *p = C.out ? strstr(C.out, tag) : NULL;
    buf[0] = '\0';
    if (!p)
        return buf;
    p += strlen(tag);
    size_t n = strcspn(p, "\n");
    snprintf(buf, sizeof buf, "%.*s", (int)n, p);
    return buf;
}

static void expect_error(const char *text, const char *msg)
{
    cr_assert_null(compile(text), "compiled without errors:\n%s", text);
    cr_assert_str_eq(line_after("error: "), msg, "full output:\n%s", C.out);
}

static void expect_hint(const char *hint)
{
    cr_assert_str_eq(line_after("hint: "), hint, "full output:\n%s", C.out);
}

static bool param_value(void *ctx, int i, double *out)
{
    const IrModel *m = ctx;
    return i >= 0 && i < m->nparams && ir_eval(m->params[i].value, param_value, ctx, out);
}

/* A model-level `param x = EXPR` lowers with this dimension and value. */
static void expect_param(const char *expr, EngramDim dim, double value)
{
    char text[512];
    snprintf(text, sizeof text, "model t\nparam y = 3\nparam x = %s\n", expr);
    IrModel *m = compile(text);
    cr_assert_not_null(m, "%s: %s", expr, C.out);
    int i = ir_param_find(m, "x");
    cr_assert_geq(i, 0);
    cr_assert(engram_dim_eq(m->params[i].dim, dim), "%s: dim (%d,%d,%d)", expr,
              m->params[i].dim.time, m->params[i].dim.voltage, m->params[i].dim.current);
    double v;
    cr_assert(param_value(m, i, &v), "%s: not constant", expr);
    cr_assert(fabs(v - value) <= 1e-12 * fmax(1, fabs(value)), "%s = %.17g, want %.17g", expr, v, value);
}

static void expect_param_error(const char *expr, const char *msg)
{
    char text[512];
    snprintf(text, sizeof text, "model t\nparam y = 3\nparam x = %s\n", expr);
    expect_error(text, msg);
}

/* A neuron with one item replaced: the body around it is valid. */
static void neuron_error(const char *item, const char *msg)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model t\n"
             "neuron N {\n"
             "  param tau = 10 ms\n  param v_th = -50 mV\n  param g = 2 nS\n"
             "  state v = -70 mV\n  state w = 0 pA\n"
             "  %s\n"
             "  threshold v > v_th\n"
             "}\n"
             "region r { population a = 1 N }\n", item);
    expect_error(text, msg);
}

static const EngramDim NONE = {0, 0, 0}, MS = {1, 0, 0}, MV = {0, 1, 0}, PA = {0, 0, 1};

TestSuite(units_check, .fini = fini);

/* ---- good expressions ---------------------------------------------------- */

Test(units_check, quantities_convert_to_internal_units)
{
    expect_param("1 s", MS, 1000);
    fini();
    expect_param("10 Hz", engram_dim(-1, 0, 0), 0.01);
    fini();
    expect_param("2 nA", PA, 2000);
    fini();
    expect_param("0.5 V", MV, 500);
}

Test(units_check, products_combine_dimensions)
{
    expect_param("10 nS * 5 mV", PA, 50);           /* nS * mV = pA */
    fini();
    expect_param("20 ms / 4 ms", NONE, 5);
    fini();
    expect_param("200 pF / 10 nS", MS, 20);         /* pF / nS = ms */
    fini();
    expect_param("1 mV / 1 Gohm", PA, 1);
}

Test(units_check, bare_zero_takes_any_dimension)
{
    expect_param("5 mV + 0", MV, 5);
    fini();
    expect_param("0 - 2 ms", MS, -2);
    fini();
    expect_param("max(0, 3 pA)", PA, 3);
}

Test(units_check, powers_and_roots)
{
    expect_param("(2 mV)^2 / 1 mV", MV, 4);
    fini();
    expect_param("(2 ms)^-1 * 1 ms", NONE, 0.5);
    fini();
    expect_param("sqrt(4 mV * 1 mV)", MV, 2);
    fini();
    expect_param("2 ^ y", NONE, 8);
    fini();
    expect_param("pow(3 ms, 2) / 1 ms", MS, 9);
}

Test(units_check, builtins_keep_or_need_dimensionless)
{
    expect_param("abs(-3 mV)", MV, 3);
    fini();
    expect_param("clip(5 mV, 0, 2 mV)", MV, 2);
    fini();
    expect_param("exp(0)", NONE, 1);
    fini();
    expect_param("round(2.6)", NONE, 3);
    fini();
    expect_param("min(1 ms, 2 ms)", MS, 1);
}

Test(units_check, params_reference_later_params)
{
    IrModel *m = compile("model t\nparam a = b * 2\nparam b = 3 ms\n");
    cr_assert_not_null(m, "%s", C.out);
    double v;
    cr_assert(param_value(m, ir_param_find(m, "a"), &v));
    cr_assert_float_eq(v, 6, 1e-12);
    cr_assert(engram_dim_eq(m->params[ir_param_find(m, "a")].dim, MS));
}

/* ---- bad expressions ----------------------------------------------------- */

Test(units_check, add_needs_same_dimension)
{
    expect_param_error("1 mV + 2 nS", "cannot add mV and nS");
    fini();
    expect_param_error("1 mV - 2 ms", "cannot subtract ms from mV");
    fini();
    expect_param_error("1 mV + 1", "cannot add mV and 1");
}

Test(units_check, comparisons_need_same_dimension)
{
    neuron_error("dw/dt = -w / tau\n  let c = v > 3 ms", "cannot compare mV and ms");
}

Test(units_check, transcendental_needs_dimensionless)
{
    expect_param_error("exp(1 mV)", "exp() needs a dimensionless argument, got mV");
    fini();
    expect_param_error("log(2 ms)", "log() needs a dimensionless argument, got ms");
}

Test(units_check, sqrt_needs_even_powers)
{
    expect_param_error("sqrt(4 mV)", "sqrt() of mV has no unit (its powers are not even)");
}

Test(units_check, power_of_quantity_needs_integer_literal)
{
    expect_param_error("(2 mV)^y", "the power of a value with a unit (mV) must be an integer literal");
    fini();
    expect_param_error("(2 mV)^0.5", "the power of a value with a unit (mV) must be an integer literal");
    fini();
    expect_param_error("2 ^ (1 ms)", "an exponent must be dimensionless, got ms");
    fini();
    expect_param_error("(1 mV)^30", "the unit of this expression has powers above 24");
}

Test(units_check, min_max_clip_need_same_dimension)
{
    expect_param_error("min(1 mV, 2 nS)", "min() mixes mV and nS");
    fini();
    expect_param_error("clip(1 mV, 0 mV, 2 ms)", "clip() mixes mV and ms");
}

Test(units_check, calls_arity_and_names)
{
    expect_param_error("exp(1, 2)", "exp() takes 1 argument, got 2");
    fini();
    expect_param_error("clip(1, 2)", "clip() takes 3 arguments, got 2");
    fini();
    expect_param_error("expp(1)", "unknown function 'expp'");
    expect_hint("did you mean 'exp'?");
}

Test(units_check, unknown_name_suggests)
{
    expect_param_error("yy + 1", "unknown name 'yy'");
    expect_hint("did you mean 'y'?");
}

Test(units_check, logic_needs_conditions)
{
    neuron_error("dw/dt = -w / tau\n  let c = v and v > v_th",
                 "'and' needs a condition (true/false), got a voltage (mV)");
}

Test(units_check, arithmetic_refuses_conditions)
{
    neuron_error("dw/dt = -w / tau\n  let c = (v > v_th) + 1", "expected a number, got a condition (true/false)");
}

Test(units_check, distributions_only_where_allowed)
{
    expect_param_error("uniform(1, 2)", "uniform() draws random values; it is only allowed in "
                       "initial values, weights and delays");
}

/* ---- where a unit is required -------------------------------------------- */

Test(units_check, unitless_override_of_time_param)
{
    expect_error("model t\nneuron N { param tau = 20 ms\n state v = 0 mV\n dv/dt = -v / tau }\n"
                 "region r { population a = 10 N(tau = 20) }\n",
                 "expected a time (ms), got a dimensionless number");
    expect_hint("write 20 ms");
}

Test(units_check, unitless_dt_and_delay)
{
    expect_error("model t\nsimulation { dt = 0.1 }\n", "expected a time (ms), got a dimensionless number");
    expect_hint("write 0.1 ms");
    fini();
    expect_error("model t\nneuron N { state v = 0 mV\n dv/dt = -v / 10 ms\n input exc -> v }\n"
                 "region r { population a = 10 N }\n"
                 "project r.a -> r.a { connect all_to_all weight 1 mV delay 2 port exc }\n",
                 "expected a time (ms), got a dimensionless number");
    expect_hint("write 2 ms");
}

Test(units_check, weight_has_the_port_variable_dimension)
{
    expect_error("model t\nneuron N { state v = 0 mV\n state ge = 0 mV\n dv/dt = (ge - v) / 10 ms\n"
                 " dge/dt = -ge / 5 ms\n input exc -> ge }\n"
                 "region r { population a = 10 N }\n"
                 "project r.a -> r.a { connect all_to_all weight 1 nS port exc }\n",
                 "expected a voltage (mV), got a conductance (nS)");
    expect_hint("port 'exc' of N adds the weight to 'ge'");
}

Test(units_check, drive_rate_is_a_frequency)
{
    expect_error("model t\nneuron N { state v = 0 mV\n dv/dt = -v / 10 ms\n input exc -> v }\n"
                 "region r { population a = 10 N }\n"
                 "drive r.a poisson(rate = 20, count = 10) weight 0.1 mV port exc\n",
                 "expected a frequency (Hz), got a dimensionless number");
    expect_hint("write 20 Hz");
}

Test(units_check, population_size_is_dimensionless)
{
    expect_error("model t\nneuron N { state v = 0 mV\n dv/dt = -v / 10 ms }\n"
                 "region r { population a = 10 ms N }\n",
                 "expected a dimensionless number, got a time (ms)");
}

/* ---- neuron items -------------------------------------------------------- */

Test(units_check, ode_rhs_is_variable_per_time)
{
    neuron_error("dv/dt = -v", "dv/dt must be in mV/ms (the unit of v per time), got mV");
    expect_hint("divide by a time constant, e.g. (...) / tau");
}

Test(units_check, threshold_is_a_condition)
{
    expect_error("model t\nneuron N { state v = 0 mV\n dv/dt = -v / 10 ms\n threshold v }\n",
                 "the threshold must be a condition such as `v > v_th`, got a voltage (mV)");
}

Test(units_check, reset_matches_state_dimension)
{
    neuron_error("reset { v = 5 nS }", "expected a voltage (mV), got a conductance (nS)");
    fini();
    neuron_error("reset { w *= 2 mV }", "expected a dimensionless number, got a voltage (mV)");
    fini();
    neuron_error("reset { tau = 1 ms }", "cannot assign to param 'tau': a reset assigns state variables");
}

Test(units_check, refractory_is_a_time)
{
    neuron_error("refractory 2", "expected a time (ms), got a dimensionless number");
    expect_hint("write 2 ms");
}

Test(units_check, builtin_names_by_context)
{
    neuron_error("param p = t * 1", "the time t can only be used in equations (ODEs, threshold, reset)");
    fini();
    neuron_error("dw/dt = i * 1 pA / 1 ms", "the neuron index i can only be used in initial values");
    fini();
    neuron_error("param p = v * 2", "a param default cannot read the state variable 'v'");
    fini();
    neuron_error("state u = v", "an initial value cannot read the state variable 'v'");
}

Test(units_check, input_port_needs_a_state)
{
    neuron_error("input exc -> tau", "port 'exc' must feed a state variable, but 'tau' is a param");
    fini();
    neuron_error("input exc -> vv", "unknown state variable 'vv'");
    expect_hint("did you mean 'v'?");
}

Test(units_check, state_starting_at_bare_zero_takes_its_dimension_from_use)
{
    IrModel *m = compile("model t\nneuron N { state v = -70 mV\n state ge = 0\n state x = 0\n"
                         " dv/dt = (ge - v) / 10 ms\n dge/dt = -ge / 5 ms\n input exc -> ge }\n"
                         "region r { population a = 2 N }\n");
    cr_assert_not_null(m, "%s", C.out);
    cr_assert(engram_dim_eq(m->pops[0].states[1].dim, MV));
    cr_assert(engram_dim_eq(m->pops[0].states[1].init->dim, MV));
    cr_assert(engram_dim_eq(m->pops[0].states[2].dim, NONE), "unused: dimensionless");
}

Test(units_check, lets_are_inlined_and_cycles_reported)
{
    IrModel *m = compile("model t\nneuron N { param tau = 10 ms\n state v = 0 mV\n"
                         " let decay = -v / tau\n dv/dt = decay }\nregion r { population a = 2 N }\n");
    cr_assert_not_null(m, "%s", C.out);
    cr_assert_eq(m->pops[0].states[0].ode->kind, IR_BINARY);
    cr_assert_eq(m->pops[0].states[0].ode->op, OP_DIV);
    fini();
    neuron_error("let a = b\n  let b = a\n  dw/dt = a", "let 'a' refers to itself: a -> b -> a");
}

Test(units_check, param_cycle_reported_once)
{
    expect_error("model t\nparam a = b + 1\nparam b = a * 2\n", "param 'a' depends on itself: a -> b -> a");
    const char *second = strstr(strstr(C.out, "error: ") + 1, "error: ");
    cr_assert_null(second, "one error only:\n%s", C.out);
}

Test(units_check, several_errors_per_run)
{
    cr_assert_null(compile("model t\nparam a = 1 mV + 1 ms\nparam b = exp(2 mV)\nparam c = a + b\n"
                           "simulation { dt = 0 ms }\n"));
    int n = 0;
    for (const char *p = C.out; (p = strstr(p, "error: ")); p++)
        n++;
    cr_assert_eq(n, 3, "want 3 errors (c is poisoned quietly):\n%s", C.out);
}
