/*
 * codegen_expr.c - IR expressions to LLVM values inside a kernel.
 *
 * An expression is evaluated per neuron, in the model precision (float or
 * double), from the values in a CgEnv: the loop-invariant parameters loaded
 * before the loop, the neuron's current state values, and the stage time.
 * Numbers and truth values are kept apart: comparisons and logic produce i1,
 * and a truth value used as a number becomes 0 or 1.
 *
 * No instruction gets fast-math flags: results must be the IEEE ones, the
 * same on every CPU, and NaN must survive so that the runtime can report a
 * diverging neuron.  The one rewrite: a division by an invariant value is a
 * multiplication by its reciprocal (cg_div).  Builtins map to LLVM intrinsics (which the vectoriser
 * understands) except tanh, which has none in our LLVM and calls libm.
 *
 * Order: helpers, builtins, numbers, truth values, the parameter scan.
 */
#include <string.h>

#include "codegen_internal.h"

/* ---- helpers ------------------------------------------------------------------ */

LLVMValueRef cg_intrinsic(CgCtx *c, const char *name, LLVMValueRef *args, unsigned n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef ty = c->t_real;
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, &ty, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, &ty, 1);
    return LLVMBuildCall2(c->b, fty, fn, args, n, "");
}

/* Calls a one-argument libm function: `dname` in double precision, `fname` in float. */
static LLVMValueRef cg_libm1(CgCtx *c, const char *dname, const char *fname, LLVMValueRef x)
{
    const char *name = c->m->precision == 4 ? fname : dname;
    LLVMTypeRef fty = LLVMFunctionType(c->t_real, &c->t_real, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(c->mod, name, fty);
        cg_add_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
    }
    return LLVMBuildCall2(c->b, fty, fn, &x, 1, "");
}

LLVMValueRef cg_min(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
    /* a < b ? a : b returns b when either is NaN; a NaN `a` is put back. */
    LLVMValueRef lt = LLVMBuildFCmp(c->b, LLVMRealOLT, a, b, "");
    LLVMValueRef r = LLVMBuildSelect(c->b, lt, a, b, "");
    LLVMValueRef a_nan = LLVMBuildFCmp(c->b, LLVMRealUNO, a, a, "");
    return LLVMBuildSelect(c->b, a_nan, a, r, "min");
}

LLVMValueRef cg_max(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef gt = LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, "");
    LLVMValueRef r = LLVMBuildSelect(c->b, gt, a, b, "");
    LLVMValueRef a_nan = LLVMBuildFCmp(c->b, LLVMRealUNO, a, a, "");
    return LLVMBuildSelect(c->b, a_nan, a, r, "max");
}

/* x ^ y.  x ^ 2 is x * x: exact, vectorises, and what LLVM would make of
 * pow(x, 2) anyway; everything else is llvm.pow (libm's pow). */
static LLVMValueRef cg_pow(CgCtx *c, const CgEnv *env, const IrExpr *x, const IrExpr *y)
{
    LLVMValueRef xv = cg_expr_num(c, env, x);
    if (y->kind == IR_CONST && y->value == 2.0)
        return LLVMBuildFMul(c->b, xv, xv, "sq");
    LLVMValueRef args[2] = {xv, cg_expr_num(c, env, y)};
    return cg_intrinsic(c, "llvm.pow", args, 2);
}

/* ---- builtins ------------------------------------------------------------------ */

static const char *const cg_unary_intrinsic[ENGRAM_FN_COUNT] = {
    [ENGRAM_FN_EXP] = "llvm.exp",     [ENGRAM_FN_LOG] = "llvm.log",
    [ENGRAM_FN_LOG10] = "llvm.log10", [ENGRAM_FN_SQRT] = "llvm.sqrt",
    [ENGRAM_FN_ABS] = "llvm.fabs",    [ENGRAM_FN_FLOOR] = "llvm.floor",
    [ENGRAM_FN_CEIL] = "llvm.ceil",   [ENGRAM_FN_ROUND] = "llvm.round",
    [ENGRAM_FN_SIN] = "llvm.sin",     [ENGRAM_FN_COS] = "llvm.cos",
};

static LLVMValueRef cg_call(CgCtx *c, const CgEnv *env, const IrExpr *e)
{
    if ((unsigned)e->fn < ENGRAM_FN_COUNT && cg_unary_intrinsic[e->fn]) {
        LLVMValueRef x = cg_expr_num(c, env, e->a);
        return cg_intrinsic(c, cg_unary_intrinsic[e->fn], &x, 1);
    }
    switch (e->fn) {
    case ENGRAM_FN_TANH:
        return cg_libm1(c, "tanh", "tanhf", cg_expr_num(c, env, e->a));
    case ENGRAM_FN_MIN:
        return cg_min(c, cg_expr_num(c, env, e->a), cg_expr_num(c, env, e->b));
    case ENGRAM_FN_MAX:
        return cg_max(c, cg_expr_num(c, env, e->a), cg_expr_num(c, env, e->b));
    case ENGRAM_FN_POW:
        return cg_pow(c, env, e->a, e->b);
    case ENGRAM_FN_CLIP: {
        /* clip(x, lo, hi) = min(max(x, lo), hi): hi wins when lo > hi. */
        LLVMValueRef x = cg_expr_num(c, env, e->a);
        LLVMValueRef lo = cg_expr_num(c, env, e->b);
        LLVMValueRef hi = cg_expr_num(c, env, e->c);
        return cg_min(c, cg_max(c, x, lo), hi);
    }
    default:
        cg_error(c, e->span, "unknown builtin function #%d in a kernel", (int)e->fn);
        return cg_const_real(c, 0);
    }
}

/* ---- numbers --------------------------------------------------------------------- */

/* Whether `e` has the same value for every neuron and synapse of one kernel
 * call: numbers, parameters and dt, and arithmetic on them. */
static bool cg_expr_invariant(const IrExpr *e)
{
    switch (e->kind) {
    case IR_CONST: case IR_PARAM: case IR_DT:
        return true;
    case IR_UNARY:
        return e->op != OP_NOT && cg_expr_invariant(e->a);
    case IR_BINARY:
        return cg_expr_invariant(e->a) && cg_expr_invariant(e->b);
    default:
        return false;
    }
}

/* a / b.  When b is invariant this is a * (1 / b): LLVM hoists the
 * reciprocal out of the loop, and a division costs 10-20 multiplications
 * (COBA's update had four, by g_L, tau_m, tau_e and tau_i).  It is a fixed
 * rewrite, not a fast-math licence: every lane, neuron, thread and rank gets
 * the same reciprocal, so results stay bit-identical between them; they may
 * differ from a true division in the last bit (docs/language.md section 2). */
static LLVMValueRef cg_div(CgCtx *c, const IrExpr *divisor, LLVMValueRef a, LLVMValueRef b)
{
    if (!cg_expr_invariant(divisor))
        return LLVMBuildFDiv(c->b, a, b, "");
    LLVMValueRef recip = LLVMBuildFDiv(c->b, cg_const_real(c, 1.0), b, "recip");
    return LLVMBuildFMul(c->b, a, recip, "");
}

static LLVMValueRef cg_arith(CgCtx *c, const CgEnv *env, const IrExpr *e)
{
    if (e->op == OP_POW)
        return cg_pow(c, env, e->a, e->b);
    LLVMValueRef a = cg_expr_num(c, env, e->a);
    LLVMValueRef b = cg_expr_num(c, env, e->b);
    switch (e->op) {
    case OP_ADD: return LLVMBuildFAdd(c->b, a, b, "");
    case OP_SUB: return LLVMBuildFSub(c->b, a, b, "");
    case OP_MUL: return LLVMBuildFMul(c->b, a, b, "");
    case OP_DIV: return cg_div(c, e->b, a, b);
    default:
        cg_error(c, e->span, "operator %d is not arithmetic", (int)e->op);
        return a;
    }
}

static bool cg_op_is_arith(OpKind op)
{
    return op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV || op == OP_POW;
}

static LLVMValueRef cg_leaf(CgCtx *c, const CgEnv *env, const IrExpr *e)
{
    switch (e->kind) {
    case IR_CONST:
        return cg_const_real(c, e->value);
    case IR_PARAM:
        if (e->index >= 0 && e->index < c->m->nparams && env->params[e->index])
            return env->params[e->index];
        cg_error(c, e->span, "parameter #%d is not available in this kernel", e->index);
        return cg_const_real(c, 0);
    case IR_STATE:
        if (e->index >= 0 && e->index < env->nstates)
            return env->states[e->index];
        cg_error(c, e->span, "state variable #%d is not available here", e->index);
        return cg_const_real(c, 0);
    case IR_TIME:
        return env->time;
    case IR_DT:
        return env->dt;
    case IR_INDEX:
        if (env->index)
            return LLVMBuildSIToFP(c->b, env->index, c->t_real, "i");
        cg_error(c, e->span, "the neuron index 'i' is only allowed in initial values");
        return cg_const_real(c, 0);
    case IR_WEIGHT: case IR_SYNVAR: case IR_PRE_TRACE: case IR_POST_TRACE:
    case IR_PRE_STATE: case IR_POST_STATE: case IR_MODULATOR:
        return cg_rule_leaf(c, env, e);
    default:
        cg_error(c, e->span, "random draws are only allowed in initial values, weights and delays");
        return cg_const_real(c, 0);
    }
}

LLVMValueRef cg_expr_num(CgCtx *c, const CgEnv *env, const IrExpr *e)
{
    if (e->is_bool || (e->kind == IR_UNARY && e->op == OP_NOT) ||
        (e->kind == IR_BINARY && !cg_op_is_arith(e->op)))
        return LLVMBuildUIToFP(c->b, cg_expr_bool(c, env, e), c->t_real, "");
    switch (e->kind) {
    case IR_UNARY:
        return LLVMBuildFNeg(c->b, cg_expr_num(c, env, e->a), "");
    case IR_BINARY:
        return cg_arith(c, env, e);
    case IR_CALL:
        return cg_call(c, env, e);
    default:
        return cg_leaf(c, env, e);
    }
}

/* ---- truth values ------------------------------------------------------------------ */

static LLVMRealPredicate cg_pred(OpKind op)
{
    switch (op) {
    case OP_LT: return LLVMRealOLT;
    case OP_LE: return LLVMRealOLE;
    case OP_GT: return LLVMRealOGT;
    case OP_GE: return LLVMRealOGE;
    case OP_EQ: return LLVMRealOEQ;
    default:    return LLVMRealUNE;  /* !=: true when either side is NaN, as in C */
    }
}

LLVMValueRef cg_expr_bool(CgCtx *c, const CgEnv *env, const IrExpr *e)
{
    if (e->kind == IR_UNARY && e->op == OP_NOT)
        return LLVMBuildNot(c->b, cg_expr_bool(c, env, e->a), "not");
    if (e->kind == IR_BINARY && (e->op == OP_AND || e->op == OP_OR)) {
        /* Both sides are pure, so evaluating both keeps the loop branch-free. */
        LLVMValueRef a = cg_expr_bool(c, env, e->a);
        LLVMValueRef b = cg_expr_bool(c, env, e->b);
        return e->op == OP_AND ? LLVMBuildAnd(c->b, a, b, "and") : LLVMBuildOr(c->b, a, b, "or");
    }
    if (e->kind == IR_BINARY && !cg_op_is_arith(e->op)) {
        LLVMValueRef a = cg_expr_num(c, env, e->a);
        LLVMValueRef b = cg_expr_num(c, env, e->b);
        return LLVMBuildFCmp(c->b, cg_pred(e->op), a, b, "cmp");
    }
    if (e->kind == IR_CONST)
        return LLVMConstInt(c->t_i1, e->value != 0.0, 0);
    /* A number as a condition: non-zero (C's rule). */
    LLVMValueRef x = cg_expr_num(c, env, e);
    return LLVMBuildFCmp(c->b, LLVMRealUNE, x, cg_const_real(c, 0), "nz");
}

/* ---- parameter scan ------------------------------------------------------------------ */

void cg_expr_params(const IrExpr *e, bool *used, int nparams)
{
    if (!e)
        return;
    if (e->kind == IR_PARAM && e->index >= 0 && e->index < nparams)
        used[e->index] = true;
    cg_expr_params(e->a, used, nparams);
    cg_expr_params(e->b, used, nparams);
    cg_expr_params(e->c, used, nparams);
    cg_expr_params(e->d, used, nparams);
}
