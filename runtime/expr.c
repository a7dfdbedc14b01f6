/*
 * expr.c - the runtime's bytecode: a stack machine over doubles that
 * evaluates parameter defaults, initial values and propagator coefficients
 * (engram_rt.h, EngramInsn).  Kernels are native code; this is only for the
 * values computed once at setup, so clarity beats speed here.
 *
 * engram_code_check runs once per expression when the blob is validated and
 * proves the stack never under- or overflows, so engram_eval can use a
 * fixed array without checks of its own beyond a cheap guard.
 *
 * Order: builtins, checking, evaluation.
 */
#include <math.h>
#include <string.h>

#include "rt_engine.h"

/* ---- builtins ------------------------------------------------------------ */

int engram_builtin_arity(uint32_t fn)
{
    if (fn <= ENGRAM_FN_TANH)
        return 1;
    if (fn <= ENGRAM_FN_POW)
        return 2;
    if (fn == ENGRAM_FN_CLIP)
        return 3;
    return -1;
}

double engram_builtin(uint32_t fn, const double *a)
{
    switch ((EngramBuiltin)fn) {
    case ENGRAM_FN_EXP: return exp(a[0]);
    case ENGRAM_FN_LOG: return log(a[0]);
    case ENGRAM_FN_LOG10: return log10(a[0]);
    case ENGRAM_FN_SQRT: return sqrt(a[0]);
    case ENGRAM_FN_ABS: return fabs(a[0]);
    case ENGRAM_FN_FLOOR: return floor(a[0]);
    case ENGRAM_FN_CEIL: return ceil(a[0]);
    case ENGRAM_FN_ROUND: return round(a[0]);
    case ENGRAM_FN_SIN: return sin(a[0]);
    case ENGRAM_FN_COS: return cos(a[0]);
    case ENGRAM_FN_TANH: return tanh(a[0]);
    case ENGRAM_FN_MIN: return a[1] < a[0] ? a[1] : a[0];
    case ENGRAM_FN_MAX: return a[1] > a[0] ? a[1] : a[0];
    case ENGRAM_FN_POW: return pow(a[0], a[1]);
    case ENGRAM_FN_CLIP: return a[0] < a[1] ? a[1] : (a[0] > a[2] ? a[2] : a[0]);
    case ENGRAM_FN_COUNT: break;
    }
    return NAN;
}

/* ---- checking -------------------------------------------------------------- */

/* Net stack effect of an instruction and how many operands it needs. */
static int insn_pops(const EngramInsn *x)
{
    switch ((EngramOpcode)x->op) {
    case ENGRAM_OP_CONST: case ENGRAM_OP_PARAM: case ENGRAM_OP_INDEX: case ENGRAM_OP_DT:
    case ENGRAM_OP_VAR: case ENGRAM_OP_MEASURE:
        return 0;
    case ENGRAM_OP_NEG: case ENGRAM_OP_NOT:
        return 1;
    case ENGRAM_OP_CALL:
        return engram_builtin_arity(x->arg);
    case ENGRAM_OP_UNIFORM: case ENGRAM_OP_NORMAL:
        return 2;
    case ENGRAM_OP_NORMAL_CLIP:
        return 4;
    case ENGRAM_OP_COUNT:
        return -1;
    default:
        return 2;   /* binary operators */
    }
}

const char *engram_code_check(const EngramInsn *insns, uint32_t ninsns, EngramCode code,
                              uint32_t nparams_visible, unsigned allow)
{
    if (code.count == 0)
        return (allow & ENGRAM_CODE_ALLOW_EMPTY) ? NULL : "empty expression";
    if (code.first > ninsns || code.count > ninsns - code.first)
        return "expression outside the instruction table";
    int depth = 0;
    for (uint32_t k = 0; k < code.count; k++) {
        const EngramInsn *x = &insns[code.first + k];
        if (x->op >= ENGRAM_OP_COUNT)
            return "unknown opcode";
        if (x->op == ENGRAM_OP_CALL && x->arg >= ENGRAM_FN_COUNT)
            return "unknown builtin function";
        if (x->op == ENGRAM_OP_PARAM && x->arg >= nparams_visible)
            return "parameter index out of range";
        if (x->op == ENGRAM_OP_INDEX && !(allow & ENGRAM_CODE_ALLOW_INDEX))
            return "neuron index outside an initial value";
        if ((x->op == ENGRAM_OP_UNIFORM || x->op == ENGRAM_OP_NORMAL ||
             x->op == ENGRAM_OP_NORMAL_CLIP) && !(allow & ENGRAM_CODE_ALLOW_DRAWS))
            return "random draw outside an initial value";
        if ((x->op == ENGRAM_OP_VAR || x->op == ENGRAM_OP_MEASURE) &&
            !(allow & ENGRAM_CODE_ALLOW_PROTO))
            return "protocol variable or measure outside a protocol";
        int pops = insn_pops(x);
        if (pops < 0 || depth < pops)
            return "stack underflow";
        depth = depth - pops + 1;
        if (depth > ENGRAM_EXPR_STACK)
            return "expression too deep";
    }
    return depth == 1 ? NULL : "expression does not leave exactly one value";
}

/* ---- evaluation ---------------------------------------------------------------- */

void engram_eval_ctx_init(EngramEvalCtx *c, const double *params, double dt)
{
    memset(c, 0, sizeof *c);
    c->params = params;
    c->dt = dt;
}

void engram_eval_ctx_key(EngramEvalCtx *c, uint64_t seed, uint32_t stream, uint32_t index,
                         uint64_t counter)
{
    c->seed = seed;
    c->stream = stream;
    c->key_index = index;
    c->counter = counter;
    c->rng_started = false;
}

static EngramRng *ctx_rng(EngramEvalCtx *c)
{
    if (!c->rng_started) {
        engram_rng_init(&c->rng, c->seed, c->stream, c->key_index, c->counter);
        c->rng_started = true;
    }
    return &c->rng;
}

static double binary(uint32_t op, double a, double b)
{
    switch ((EngramOpcode)op) {
    case ENGRAM_OP_ADD: return a + b;
    case ENGRAM_OP_SUB: return a - b;
    case ENGRAM_OP_MUL: return a * b;
    case ENGRAM_OP_DIV: return a / b;
    case ENGRAM_OP_POW: return pow(a, b);
    case ENGRAM_OP_LT: return a < b;
    case ENGRAM_OP_LE: return a <= b;
    case ENGRAM_OP_GT: return a > b;
    case ENGRAM_OP_GE: return a >= b;
    case ENGRAM_OP_EQ: return a == b;
    case ENGRAM_OP_NE: return a != b;
    case ENGRAM_OP_AND: return (a != 0) && (b != 0);
    case ENGRAM_OP_OR: return (a != 0) || (b != 0);
    default: return NAN;
    }
}

double engram_eval(const EngramInsn *insns, EngramCode code, EngramEvalCtx *c)
{
    double st[ENGRAM_EXPR_STACK];
    int sp = 0;
    if (code.count == 0)
        return 0.0;
    for (uint32_t k = 0; k < code.count; k++) {
        const EngramInsn *x = &insns[code.first + k];
        int pops = insn_pops(x);
        if (pops < 0 || pops > sp || sp - pops >= ENGRAM_EXPR_STACK)
            return NAN;   /* unchecked code: never reached after engram_code_check */
        double *a = &st[sp - pops];
        double v;
        switch ((EngramOpcode)x->op) {
        case ENGRAM_OP_CONST: v = x->imm; break;
        case ENGRAM_OP_PARAM: v = c->params[x->arg]; break;
        case ENGRAM_OP_INDEX: v = c->index; break;
        case ENGRAM_OP_DT: v = c->dt; break;
        case ENGRAM_OP_VAR: v = x->arg < c->nvars ? c->vars[x->arg] : NAN; break;
        case ENGRAM_OP_MEASURE: v = x->arg < c->nmeasures ? c->measures[x->arg] : NAN; break;
        case ENGRAM_OP_NEG: v = -a[0]; break;
        case ENGRAM_OP_NOT: v = a[0] == 0; break;
        case ENGRAM_OP_CALL: v = engram_builtin(x->arg, a); break;
        case ENGRAM_OP_UNIFORM:
            v = a[0] + (a[1] - a[0]) * engram_rng_uniform(ctx_rng(c));
            break;
        case ENGRAM_OP_NORMAL:
            v = a[0] + a[1] * engram_rng_normal(ctx_rng(c));
            break;
        case ENGRAM_OP_NORMAL_CLIP:
            v = a[0] + a[1] * engram_rng_normal(ctx_rng(c));
            if (!isnan(a[2]) && v < a[2])
                v = a[2];
            if (!isnan(a[3]) && v > a[3])
                v = a[3];
            break;
        default:
            v = binary(x->op, a[0], a[1]);
            break;
        }
        sp -= pops;
        st[sp++] = v;
    }
    return sp == 1 ? st[0] : NAN;
}
