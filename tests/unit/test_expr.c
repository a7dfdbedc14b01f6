/*
 * test_expr.c - the runtime bytecode: arithmetic, logic, builtins, params,
 * INDEX and DT, random draws keyed by (seed, stream, index, counter), and
 * engram_code_check on unsound code.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "engram_rt.h"
#include "rt_engine.h"

/* A little assembler: a code run in a static buffer. */
typedef struct Prog {
    EngramInsn in[256];
    uint32_t n;
} Prog;

static void op(Prog *p, uint32_t code, uint32_t arg, double imm)
{
    p->in[p->n++] = (EngramInsn){code, arg, imm};
}
static void k(Prog *p, double v) { op(p, ENGRAM_OP_CONST, 0, v); }

static double run(Prog *p, EngramEvalCtx *ctx)
{
    EngramCode c = {0, p->n};
    const char *why = engram_code_check(p->in, p->n, c, 8,
                                        ENGRAM_CODE_ALLOW_INDEX | ENGRAM_CODE_ALLOW_DRAWS);
    cr_assert_null(why, "%s", why);
    return engram_eval(p->in, c, ctx);
}

static double eval_simple(Prog *p)
{
    EngramEvalCtx ctx;
    double params[8] = {0};
    engram_eval_ctx_init(&ctx, params, 0.1);
    return run(p, &ctx);
}

Test(expr, arithmetic)
{
    Prog p = {0};
    k(&p, 2); k(&p, 3); op(&p, ENGRAM_OP_ADD, 0, 0); k(&p, 4); op(&p, ENGRAM_OP_MUL, 0, 0);
    cr_assert_eq(eval_simple(&p), 20);
    p.n = 0;
    k(&p, 7); k(&p, 2); op(&p, ENGRAM_OP_SUB, 0, 0); k(&p, 2); op(&p, ENGRAM_OP_DIV, 0, 0);
    op(&p, ENGRAM_OP_NEG, 0, 0);
    cr_assert_eq(eval_simple(&p), -2.5);
    p.n = 0;
    k(&p, 2); k(&p, 10); op(&p, ENGRAM_OP_POW, 0, 0);
    cr_assert_eq(eval_simple(&p), 1024);
    p.n = 0;
    k(&p, 1); k(&p, 0); op(&p, ENGRAM_OP_DIV, 0, 0);
    cr_assert(isinf(eval_simple(&p)));
}

Test(expr, comparisons_and_logic)
{
    struct { uint32_t op; double a, b, want; } cases[] = {
        {ENGRAM_OP_LT, 1, 2, 1}, {ENGRAM_OP_LT, 2, 2, 0}, {ENGRAM_OP_LE, 2, 2, 1},
        {ENGRAM_OP_GT, 3, 2, 1}, {ENGRAM_OP_GE, 1, 2, 0}, {ENGRAM_OP_EQ, 2, 2, 1},
        {ENGRAM_OP_NE, 2, 2, 0}, {ENGRAM_OP_AND, 1, 0, 0}, {ENGRAM_OP_AND, 2, -1, 1},
        {ENGRAM_OP_OR, 0, 0, 0}, {ENGRAM_OP_OR, 0, 5, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Prog p = {0};
        k(&p, cases[i].a); k(&p, cases[i].b); op(&p, cases[i].op, 0, 0);
        cr_assert_eq(eval_simple(&p), cases[i].want, "case %zu", i);
    }
    Prog p = {0};
    k(&p, 0); op(&p, ENGRAM_OP_NOT, 0, 0);
    cr_assert_eq(eval_simple(&p), 1);
}

Test(expr, builtins)
{
    struct { uint32_t fn; double a, b, c, want; } cases[] = {
        {ENGRAM_FN_EXP, 0, 0, 0, 1}, {ENGRAM_FN_LOG, 1, 0, 0, 0}, {ENGRAM_FN_LOG10, 100, 0, 0, 2},
        {ENGRAM_FN_SQRT, 16, 0, 0, 4}, {ENGRAM_FN_ABS, -3, 0, 0, 3},
        {ENGRAM_FN_FLOOR, -1.5, 0, 0, -2}, {ENGRAM_FN_CEIL, 1.2, 0, 0, 2},
        {ENGRAM_FN_ROUND, 2.5, 0, 0, 3}, {ENGRAM_FN_SIN, 0, 0, 0, 0}, {ENGRAM_FN_COS, 0, 0, 0, 1},
        {ENGRAM_FN_TANH, 0, 0, 0, 0}, {ENGRAM_FN_MIN, 3, 2, 0, 2}, {ENGRAM_FN_MAX, 3, 2, 0, 3},
        {ENGRAM_FN_POW, 3, 2, 0, 9}, {ENGRAM_FN_CLIP, 5, 0, 1, 1}, {ENGRAM_FN_CLIP, -5, 0, 1, 0},
        {ENGRAM_FN_CLIP, 0.5, 0, 1, 0.5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Prog p = {0};
        int ar = engram_builtin_arity(cases[i].fn);
        double args[3] = {cases[i].a, cases[i].b, cases[i].c};
        for (int j = 0; j < ar; j++)
            k(&p, args[j]);
        op(&p, ENGRAM_OP_CALL, cases[i].fn, 0);
        cr_assert_float_eq(eval_simple(&p), cases[i].want, 1e-12, "builtin %u", cases[i].fn);
    }
    cr_assert_eq(engram_builtin_arity(ENGRAM_FN_COUNT), -1);
}

Test(expr, params_index_dt)
{
    double params[8] = {0, 20.0, 3.0};
    EngramEvalCtx ctx;
    engram_eval_ctx_init(&ctx, params, 0.25);
    ctx.index = 7;
    Prog p = {0};
    op(&p, ENGRAM_OP_PARAM, 1, 0); op(&p, ENGRAM_OP_PARAM, 2, 0); op(&p, ENGRAM_OP_DIV, 0, 0);
    op(&p, ENGRAM_OP_INDEX, 0, 0); op(&p, ENGRAM_OP_ADD, 0, 0);
    op(&p, ENGRAM_OP_DT, 0, 0); op(&p, ENGRAM_OP_MUL, 0, 0);
    cr_assert_float_eq(run(&p, &ctx), (20.0 / 3.0 + 7) * 0.25, 1e-12);
    EngramCode empty = {0, 0};
    cr_assert_eq(engram_eval(p.in, empty, &ctx), 0.0);
}

static double draw(Prog *p, uint64_t seed, uint32_t stream, uint32_t index, uint64_t counter)
{
    EngramEvalCtx ctx;
    double params[8] = {0};
    engram_eval_ctx_init(&ctx, params, 0.1);
    engram_eval_ctx_key(&ctx, seed, stream, index, counter);
    return run(p, &ctx);
}

Test(expr, draws_are_keyed)
{
    Prog u = {0};
    k(&u, -70); k(&u, -50); op(&u, ENGRAM_OP_UNIFORM, 0, 0);
    double a = draw(&u, 1, 2, 3, 0);
    cr_assert(a >= -70 && a < -50);
    cr_assert_eq(draw(&u, 1, 2, 3, 0), a);
    cr_assert_neq(draw(&u, 2, 2, 3, 0), a);
    cr_assert_neq(draw(&u, 1, 3, 3, 0), a);
    cr_assert_neq(draw(&u, 1, 2, 4, 0), a);
    cr_assert_neq(draw(&u, 1, 2, 3, 1ull << 32), a);
    /* two draws in one expression use successive counters: they differ */
    Prog two = {0};
    k(&two, 0); k(&two, 1); op(&two, ENGRAM_OP_UNIFORM, 0, 0);
    k(&two, 0); k(&two, 1); op(&two, ENGRAM_OP_UNIFORM, 0, 0);
    op(&two, ENGRAM_OP_SUB, 0, 0);
    cr_assert_neq(draw(&two, 1, 2, 3, 0), 0.0);
}

Test(expr, normal_moments_and_clip)
{
    Prog n = {0};
    k(&n, 5); k(&n, 2); op(&n, ENGRAM_OP_NORMAL, 0, 0);
    double sum = 0, sq = 0;
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        double v = draw(&n, 9, 1, (uint32_t)i, 0);
        sum += v;
        sq += v * v;
    }
    double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    cr_assert(fabs(mean - 5) < 0.05, "mean %g", mean);
    cr_assert(fabs(sd - 2) < 0.05, "sd %g", sd);
    Prog c = {0};
    k(&c, 0); k(&c, 1); k(&c, -0.5); k(&c, NAN); op(&c, ENGRAM_OP_NORMAL_CLIP, 0, 0);
    bool clipped = false;
    for (int i = 0; i < 1000; i++) {
        double v = draw(&c, 9, 1, (uint32_t)i, 0);
        cr_assert(v >= -0.5);
        clipped |= v == -0.5;
    }
    cr_assert(clipped);
}

static const char *check(Prog *p, uint32_t nparams, unsigned allow)
{
    return engram_code_check(p->in, p->n, (EngramCode){0, p->n}, nparams, allow);
}

Test(expr, check_rejects_unsound_code)
{
    Prog p = {0};
    op(&p, ENGRAM_OP_ADD, 0, 0);
    cr_assert_not_null(check(&p, 1, 0));                 /* underflow */
    p.n = 0;
    k(&p, 1); k(&p, 2);
    cr_assert_not_null(check(&p, 1, 0));                 /* two values left */
    p.n = 0;
    for (int i = 0; i < ENGRAM_EXPR_STACK; i++)
        k(&p, i);
    for (int i = 1; i < ENGRAM_EXPR_STACK; i++)
        op(&p, ENGRAM_OP_ADD, 0, 0);
    cr_assert_null(check(&p, 1, 0));                     /* exactly the limit */
    p.n = 0;
    for (int i = 0; i <= ENGRAM_EXPR_STACK; i++)
        k(&p, i);
    for (int i = 0; i < ENGRAM_EXPR_STACK; i++)
        op(&p, ENGRAM_OP_ADD, 0, 0);
    cr_assert_not_null(check(&p, 1, 0));                 /* one too deep */
    p.n = 0;
    op(&p, ENGRAM_OP_COUNT, 0, 0);
    cr_assert_not_null(check(&p, 1, 0));                 /* opcode */
    p.n = 0;
    k(&p, 1); op(&p, ENGRAM_OP_CALL, ENGRAM_FN_COUNT, 0);
    cr_assert_not_null(check(&p, 1, 0));                 /* builtin */
    p.n = 0;
    op(&p, ENGRAM_OP_PARAM, 3, 0);
    cr_assert_not_null(check(&p, 3, 0));                 /* param not visible */
    cr_assert_null(check(&p, 4, 0));
    p.n = 0;
    op(&p, ENGRAM_OP_INDEX, 0, 0);
    cr_assert_not_null(check(&p, 1, 0));
    cr_assert_null(check(&p, 1, ENGRAM_CODE_ALLOW_INDEX));
    p.n = 0;
    k(&p, 0); k(&p, 1); op(&p, ENGRAM_OP_UNIFORM, 0, 0);
    cr_assert_not_null(check(&p, 1, 0));
    cr_assert_null(check(&p, 1, ENGRAM_CODE_ALLOW_DRAWS));
    p.n = 0;
    cr_assert_not_null(check(&p, 1, 0));                 /* empty */
    cr_assert_null(check(&p, 1, ENGRAM_CODE_ALLOW_EMPTY));
    /* out of the table */
    cr_assert_not_null(engram_code_check(p.in, 2, (EngramCode){1, 2}, 1, 0));
    cr_assert_not_null(engram_code_check(p.in, 2, (EngramCode){UINT32_MAX, 2}, 1, 0));
}

Test(expr, eval_guards_unchecked_code)
{
    Prog p = {0};
    op(&p, ENGRAM_OP_ADD, 0, 0);
    EngramEvalCtx ctx;
    double params[1] = {0};
    engram_eval_ctx_init(&ctx, params, 0.1);
    cr_assert(isnan(engram_eval(p.in, (EngramCode){0, 1}, &ctx)));
}
