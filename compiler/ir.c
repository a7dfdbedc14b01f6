/*
 * ir.c - small services on the network IR (ir.h): node constructors and a
 * mapping copy used by check and lower, constant evaluation (range checks at
 * compile time, unit tests), the builtin-function table, parameter lookup by
 * path, and the readable dump behind `engramc check --dump-ir`.
 *
 * Order: constructors, copy, evaluation, builtins, lookup, printing (params,
 * populations, projections with their rules, modulators, releases, weight
 * records).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sema_internal.h"

/* ---- constructors -------------------------------------------------------- */

IrExpr *ir_new(Arena *a, IrExprKind kind, EngramDim dim, SrcSpan span)
{
    IrExpr *e = arena_alloc(a, sizeof *e);
    e->kind = kind;
    e->dim = dim;
    e->span = span;
    return e;
}

IrExpr *ir_const(Arena *a, double v, EngramDim dim, SrcSpan span)
{
    IrExpr *e = ir_new(a, IR_CONST, dim, span);
    e->value = v;
    return e;
}

IrExpr *ir_param(Arena *a, int index, EngramDim dim, SrcSpan span)
{
    IrExpr *e = ir_new(a, IR_PARAM, dim, span);
    e->index = index;
    return e;
}

IrExpr *ir_binary(Arena *a, OpKind op, IrExpr *x, IrExpr *y, EngramDim dim, SrcSpan span)
{
    IrExpr *e = ir_new(a, IR_BINARY, dim, span);
    e->op = op;
    e->a = x;
    e->b = y;
    e->is_bool = op >= OP_LT && op <= OP_OR;
    return e;
}

IrExpr *ir_unary(Arena *a, OpKind op, IrExpr *x, SrcSpan span)
{
    IrExpr *e = ir_new(a, IR_UNARY, x->dim, span);
    e->op = op;
    e->a = x;
    e->is_bool = op == OP_NOT;
    return e;
}

/* ---- copy ---------------------------------------------------------------- */

IrExpr *ir_copy_map(Arena *a, const IrExpr *e, const int *local, int nlocal, const int *global)
{
    if (!e)
        return NULL;
    IrExpr *c = arena_alloc(a, sizeof *c);
    *c = *e;
    if (c->kind == IR_PARAM) {
        /* a local index with no mapping stays as it is: lower reports it */
        if (c->index < 0 && local && -c->index - 1 < nlocal)
            c->index = local[-c->index - 1];
        if (c->index >= 0 && global)
            c->index = global[c->index];
    }
    c->a = ir_copy_map(a, e->a, local, nlocal, global);
    c->b = ir_copy_map(a, e->b, local, nlocal, global);
    c->c = ir_copy_map(a, e->c, local, nlocal, global);
    c->d = ir_copy_map(a, e->d, local, nlocal, global);
    return c;
}

bool ir_reads(const IrExpr *e, IrExprKind kind)
{
    if (!e)
        return false;
    if (e->kind == kind)
        return true;
    return ir_reads(e->a, kind) || ir_reads(e->b, kind) || ir_reads(e->c, kind) ||
           ir_reads(e->d, kind);
}

/* ---- evaluation ---------------------------------------------------------- */

static double apply_builtin(EngramBuiltin fn, const double *x)
{
    switch (fn) {
    case ENGRAM_FN_EXP: return exp(x[0]);
    case ENGRAM_FN_LOG: return log(x[0]);
    case ENGRAM_FN_LOG10: return log10(x[0]);
    case ENGRAM_FN_SQRT: return sqrt(x[0]);
    case ENGRAM_FN_ABS: return fabs(x[0]);
    case ENGRAM_FN_FLOOR: return floor(x[0]);
    case ENGRAM_FN_CEIL: return ceil(x[0]);
    case ENGRAM_FN_ROUND: return round(x[0]);
    case ENGRAM_FN_SIN: return sin(x[0]);
    case ENGRAM_FN_COS: return cos(x[0]);
    case ENGRAM_FN_TANH: return tanh(x[0]);
    case ENGRAM_FN_MIN: return x[0] < x[1] ? x[0] : x[1];
    case ENGRAM_FN_MAX: return x[0] > x[1] ? x[0] : x[1];
    case ENGRAM_FN_POW: return pow(x[0], x[1]);
    case ENGRAM_FN_CLIP: return x[0] < x[1] ? x[1] : x[0] > x[2] ? x[2] : x[0];
    case ENGRAM_FN_COUNT: break;
    }
    return NAN;
}

static double apply_binary(OpKind op, double x, double y)
{
    switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    case OP_DIV: return x / y;
    case OP_POW: return pow(x, y);
    case OP_LT: return x < y;
    case OP_LE: return x <= y;
    case OP_GT: return x > y;
    case OP_GE: return x >= y;
    case OP_EQ: return x == y;
    case OP_NE: return x != y;
    case OP_AND: return x != 0 && y != 0;
    case OP_OR: return x != 0 || y != 0;
    case OP_NOT: case OP_NEG: break;
    }
    return NAN;
}

bool ir_eval(const IrExpr *e, IrParamFn param, void *ctx, double *out)
{
    double x[3] = {0, 0, 0};
    if (!e)
        return false;
    switch (e->kind) {
    case IR_CONST:
        *out = e->value;
        return true;
    case IR_PARAM:
        return param && param(ctx, e->index, out);
    case IR_UNARY:
        if (!ir_eval(e->a, param, ctx, &x[0]))
            return false;
        *out = e->op == OP_NOT ? (double)(x[0] == 0) : -x[0];
        return true;
    case IR_BINARY:
        if (!ir_eval(e->a, param, ctx, &x[0]) || !ir_eval(e->b, param, ctx, &x[1]))
            return false;
        *out = apply_binary(e->op, x[0], x[1]);
        return true;
    case IR_CALL: {
        const IrExpr *args[3] = {e->a, e->b, e->c};
        for (int i = 0; i < 3 && args[i]; i++)
            if (!ir_eval(args[i], param, ctx, &x[i]))
                return false;
        *out = apply_builtin(e->fn, x);
        return true;
    }
    default:
        return false;   /* state, time, dt, index, draws: not constants */
    }
}

/* ---- builtins ------------------------------------------------------------ */

static const BuiltinFn builtins[] = {
    {"exp", ENGRAM_FN_EXP, 1},     {"log", ENGRAM_FN_LOG, 1},     {"log10", ENGRAM_FN_LOG10, 1},
    {"sqrt", ENGRAM_FN_SQRT, 1},   {"abs", ENGRAM_FN_ABS, 1},     {"floor", ENGRAM_FN_FLOOR, 1},
    {"ceil", ENGRAM_FN_CEIL, 1},   {"round", ENGRAM_FN_ROUND, 1}, {"sin", ENGRAM_FN_SIN, 1},
    {"cos", ENGRAM_FN_COS, 1},     {"tanh", ENGRAM_FN_TANH, 1},   {"min", ENGRAM_FN_MIN, 2},
    {"max", ENGRAM_FN_MAX, 2},     {"pow", ENGRAM_FN_POW, 2},     {"clip", ENGRAM_FN_CLIP, 3},
};

const char *const ir_builtin_names[] = {
    "exp", "log", "log10", "sqrt", "abs", "floor", "ceil", "round", "sin", "cos", "tanh",
    "min", "max", "pow", "clip", "uniform", "normal", NULL,
};

const BuiltinFn *ir_builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

const char *ir_builtin_name(EngramBuiltin fn)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (builtins[i].fn == fn)
            return builtins[i].name;
    return "?";
}

/* ---- lookup -------------------------------------------------------------- */

int ir_param_find(const IrModel *m, const char *path)
{
    if (!m || !path)
        return -1;
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].path && strcmp(m->params[i].path, path) == 0)
            return i;
    return -1;
}

/* ---- printing ------------------------------------------------------------ */

static const char *op_text(OpKind op)
{
    static const char *const text[] = {
        [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/", [OP_POW] = "^",
        [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=", [OP_EQ] = "==",
        [OP_NE] = "!=", [OP_AND] = "and", [OP_OR] = "or", [OP_NOT] = "not", [OP_NEG] = "-",
    };
    return (unsigned)op < sizeof text / sizeof text[0] && text[op] ? text[op] : "?";
}

static void print_param_ref(FILE *out, int index, const IrModel *m)
{
    if (m && index >= 0 && index < m->nparams)
        fputs(m->params[index].path, out);
    else if (index < 0)
        fprintf(out, "local[%d]", -index - 1);
    else
        fprintf(out, "p[%d]", index);
}

static void print_call_args(FILE *out, const IrExpr *e, const IrModel *m, const IrPop *pop)
{
    const IrExpr *args[4] = {e->a, e->b, e->c, e->d};
    int n = 4;
    while (n > 0 && !args[n - 1])
        n--;
    fputc('(', out);
    for (int i = 0; i < n; i++) {
        if (i)
            fputs(", ", out);
        if (args[i])
            ir_print_expr(out, args[i], m, pop);
        else
            fputs("none", out);
    }
    fputc(')', out);
}

void ir_print_expr(FILE *out, const IrExpr *e, const IrModel *m, const IrPop *pop)
{
    if (!e) {
        fputs("0", out);
        return;
    }
    switch (e->kind) {
    case IR_CONST: fprintf(out, "%.17g", e->value); break;
    case IR_PARAM: print_param_ref(out, e->index, m); break;
    case IR_STATE:
        if (pop && e->index >= 0 && e->index < pop->nstates)
            fputs(pop->states[e->index].name, out);
        else
            fprintf(out, "s[%d]", e->index);
        break;
    case IR_TIME: fputs("t", out); break;
    case IR_DT: fputs("dt", out); break;
    case IR_INDEX: fputs("i", out); break;
    case IR_UNARY:
        fprintf(out, e->op == OP_NOT ? "(not " : "(-");
        ir_print_expr(out, e->a, m, pop);
        fputc(')', out);
        break;
    case IR_BINARY:
        fputc('(', out);
        ir_print_expr(out, e->a, m, pop);
        fprintf(out, " %s ", op_text(e->op));
        ir_print_expr(out, e->b, m, pop);
        fputc(')', out);
        break;
    case IR_CALL: fputs(ir_builtin_name(e->fn), out); print_call_args(out, e, m, pop); break;
    case IR_UNIFORM: fputs("uniform", out); print_call_args(out, e, m, pop); break;
    case IR_NORMAL: fputs("normal", out); print_call_args(out, e, m, pop); break;
    case IR_WEIGHT: fputs("w", out); break;
    case IR_SYNVAR: fprintf(out, "syn[%d]", e->index); break;
    case IR_PRE_TRACE: fprintf(out, "pre_trace[%d]", e->index); break;
    case IR_POST_TRACE: fprintf(out, "post_trace[%d]", e->index); break;
    case IR_PRE_STATE: fprintf(out, "pre.s[%d]", e->index); break;
    case IR_POST_STATE: fprintf(out, "post.s[%d]", e->index); break;
    case IR_VAR: fprintf(out, "var[%d]", e->index); break;
    case IR_MEASURE:
        if (m && e->index >= 0 && e->index < m->nmeasures)
            fputs(m->measures[e->index].name, out);
        else
            fprintf(out, "measure[%d]", e->index);
        break;
    case IR_MODULATOR:
        if (m && e->index >= 0 && e->index < m->nmodulators)
            fputs(m->modulators[e->index].name, out);
        else
            fprintf(out, "modulator[%d]", e->index);
        break;
    }
}

static void print_flags(FILE *out, uint32_t flags)
{
    static const struct { uint32_t bit; const char *name; } names[] = {
        {ENGRAM_PARAM_INTEGER, "integer"}, {ENGRAM_PARAM_NONNEG, "nonneg"},
        {ENGRAM_PARAM_POSITIVE, "positive"}, {ENGRAM_PARAM_PROB, "prob"},
        {ENGRAM_PARAM_LIST, "list"}, {ENGRAM_PARAM_SIZE, "size"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (flags & names[i].bit)
            fprintf(out, " %s", names[i].name);
}

static void dump_params(FILE *out, const IrModel *m)
{
    char unit[64];
    fprintf(out, "params %d\n", m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        const IrParam *p = &m->params[i];
        fprintf(out, "  %d %s [%s] = ", i, p->path, engram_dim_unit(p->dim, unit, sizeof unit));
        if (p->flags & ENGRAM_PARAM_LIST) {
            fputc('[', out);
            for (int k = 0; k < p->nlist; k++)
                fprintf(out, "%s%.17g", k ? ", " : "", p->list[k]);
            fputc(']', out);
        } else {
            ir_print_expr(out, p->value, m, NULL);
        }
        print_flags(out, p->flags);
        fputc('\n', out);
    }
}

static const char *method_name(EngramMethod mth)
{
    switch (mth) {
    case ENGRAM_METHOD_EXACT: return "exact";
    case ENGRAM_METHOD_EULER: return "euler";
    case ENGRAM_METHOD_RK2: return "rk2";
    case ENGRAM_METHOD_RK4: return "rk4";
    case ENGRAM_METHOD_NONE: return "none";
    }
    return "?";
}

static void dump_states(FILE *out, const IrModel *m, const IrPop *p)
{
    char unit[64];
    for (int s = 0; s < p->nstates; s++) {
        const IrState *st = &p->states[s];
        fprintf(out, "  state %d %s [%s] = ", s, st->name, engram_dim_unit(st->dim, unit, sizeof unit));
        ir_print_expr(out, st->init, m, p);
        fputs(st->held ? " held\n" : "\n", out);
        if (st->ode) {
            fprintf(out, "    d%s/dt = ", st->name);
            ir_print_expr(out, st->ode, m, p);
            fputc('\n', out);
        }
    }
    for (int k = 0; k < p->nports; k++)
        fprintf(out, "  port %s -> %s\n", p->ports[k].name,
                p->ports[k].state >= 0 && p->ports[k].state < p->nstates
                    ? p->states[p->ports[k].state].name : "?");
}

static void dump_events(FILE *out, const IrModel *m, const IrPop *p)
{
    static const char *const ops[] = {"=", "+=", "-=", "*="};
    if (p->threshold) {
        fputs("  threshold ", out);
        ir_print_expr(out, p->threshold, m, p);
        fputc('\n', out);
    }
    for (int r = 0; r < p->nreset; r++) {
        const IrAssign *as = &p->reset[r];
        fprintf(out, "  reset %s %s ", as->state >= 0 && as->state < p->nstates
                ? p->states[as->state].name : "?", ops[as->op & 3]);
        ir_print_expr(out, as->value, m, p);
        fputc('\n', out);
    }
    if (p->refractory_param >= 0) {
        fputs("  refractory ", out);
        print_param_ref(out, p->refractory_param, m);
        fputc('\n', out);
    }
}

static void dump_linear(FILE *out, const IrModel *m, const IrPop *p)
{
    if (p->nlinear == 0)
        return;
    fputs("  linear", out);
    for (int r = 0; r < p->nlinear; r++)
        fprintf(out, " %s", p->states[p->lin_vars[r]].name);
    fputc('\n', out);
    for (int r = 0; r < p->nlinear; r++) {
        fprintf(out, "    d%s/dt =", p->states[p->lin_vars[r]].name);
        for (int c = 0; c <= p->nlinear; c++) {
            const IrExpr *k = p->coef[r * (p->nlinear + 1) + c];
            if (!k)
                continue;
            fputs(" + ", out);
            ir_print_expr(out, k, m, p);
            if (c < p->nlinear)
                fprintf(out, " * %s", p->states[p->lin_vars[c]].name);
        }
        fputc('\n', out);
    }
}

static void dump_pop(FILE *out, const IrModel *m, int i)
{
    static const char *const kinds[] = {"neuron", "poisson", "spike_times"};
    const IrPop *p = &m->pops[i];
    fprintf(out, "population %d %s (%s, %s) size ", i, p->path, p->model,
            (unsigned)p->kind < 3 ? kinds[p->kind] : "?");
    print_param_ref(out, p->size_param, m);
    fprintf(out, " method %s%s\n", method_name(p->method), p->record_spikes ? " record" : "");
    if (p->kind == ENGRAM_POP_POISSON) {
        fputs("  rate ", out);
        print_param_ref(out, p->rate_param, m);
        fputc('\n', out);
    } else if (p->kind == ENGRAM_POP_SPIKE_TIMES) {
        fputs("  times ", out);
        print_param_ref(out, p->times_param, m);
        fputs(" indices ", out);
        print_param_ref(out, p->indices_param, m);
        fputc('\n', out);
    }
    dump_states(out, m, p);
    dump_events(out, m, p);
    dump_linear(out, m, p);
}

static void dump_dist(FILE *out, const char *what, const IrDist *d, const IrModel *m)
{
    static const char *const kinds[] = {"const", "uniform", "normal"};
    fprintf(out, " %s %s(", what, (unsigned)d->kind < 3 ? kinds[d->kind] : "?");
    int n = d->kind == ENGRAM_DIST_CONST ? 1 : d->kind == ENGRAM_DIST_UNIFORM ? 2 : 4;
    for (int k = 0; k < n; k++) {
        if (k)
            fputs(", ", out);
        if (d->arg[k] >= 0)
            print_param_ref(out, d->arg[k], m);
        else
            fputs("none", out);
    }
    fputc(')', out);
}

static void dump_rule(FILE *out, const IrModel *m, const IrRule *r);

static void dump_proj(FILE *out, const IrModel *m, int i)
{
    static const char *const rules[] = {"random", "fixed_indegree", "one_to_one", "all_to_all"};
    const IrProj *p = &m->projs[i];
    const IrPop *dst = &m->pops[p->dst];
    fprintf(out, "projection %d %s: %s -> %s port %s rule %s", i, p->name, m->pops[p->src].path,
            dst->path, p->port >= 0 && p->port < dst->nports ? dst->ports[p->port].name : "?",
            (unsigned)p->rule < 4 ? rules[p->rule] : "?");
    if (p->rule_param >= 0) {
        fputc(' ', out);
        print_param_ref(out, p->rule_param, m);
    }
    fputs(p->autapses ? " autapses" : "", out);
    dump_dist(out, "weight", &p->weight, m);
    dump_dist(out, "delay", &p->delay, m);
    fputc('\n', out);
    if (p->plasticity)
        dump_rule(out, m, p->plasticity);
}

/* ---- plasticity and neuromodulation -------------------------------------- */

static void dump_vars(FILE *out, const IrModel *m, const char *what, const IrVar *v, int n)
{
    char unit[64];
    for (int k = 0; k < n; k++) {
        fprintf(out, "    %s %d %s [%s] = ", what, k, v[k].name, engram_dim_unit(v[k].dim, unit, sizeof unit));
        ir_print_expr(out, v[k].init, m, NULL);
        if (v[k].lin_a) {
            fprintf(out, "; d%s/dt = ", v[k].name);
            ir_print_expr(out, v[k].lin_a, m, NULL);
            fprintf(out, " * %s + ", v[k].name);
            ir_print_expr(out, v[k].lin_b, m, NULL);
        }
        fputc('\n', out);
    }
}

static void dump_assigns(FILE *out, const IrModel *m, const char *section, const IrRuleAssign *as, int n)
{
    static const char *const ops[] = {"=", "+=", "-=", "*="};
    static const char *const targets[] = {"w", "syn", "pre_trace", "post_trace"};
    for (int i = 0; i < n; i++) {
        fprintf(out, "      %s %s", section, (unsigned)as[i].target < 4 ? targets[as[i].target] : "?");
        if (as[i].target != IR_TGT_WEIGHT)
            fprintf(out, "[%d]", as[i].index);
        fprintf(out, " %s ", ops[as[i].op & 3]);
        ir_print_expr(out, as[i].value, m, NULL);
        fputc('\n', out);
    }
}

static void dump_handler(FILE *out, const IrModel *m, const char *name, const IrHandler *h, bool has)
{
    if (!has)
        return;
    fprintf(out, "    %s\n", name);
    dump_assigns(out, m, "before", h->before, h->nbefore);
    dump_assigns(out, m, "syn", h->syn, h->nsyn);
    dump_assigns(out, m, "after", h->after, h->nafter);
}

static void dump_rule(FILE *out, const IrModel *m, const IrRule *r)
{
    fprintf(out, "  plasticity %s plastic ", r->name);
    print_param_ref(out, r->plastic_param, m);
    if (r->w_lo_param >= 0) {
        fputs(" bounds ", out);
        print_param_ref(out, r->w_lo_param, m);
        fputs(", ", out);
        print_param_ref(out, r->w_hi_param, m);
    }
    if (r->every_param >= 0) {
        fputs(" every ", out);
        print_param_ref(out, r->every_param, m);
    }
    fputc('\n', out);
    dump_vars(out, m, "synapse", r->syn_vars, r->nsyn_vars);
    dump_vars(out, m, "pre", r->pre, r->npre);
    dump_vars(out, m, "post", r->post, r->npost);
    dump_handler(out, m, r->pre_arrival ? "on pre arrival" : "on pre", &r->on_pre, r->has_on_pre);
    dump_handler(out, m, "on post", &r->on_post, r->has_on_post);
    dump_handler(out, m, "every", &r->every, r->has_every);
}

static void dump_neuromodulation(FILE *out, const IrModel *m)
{
    char unit[64];
    for (int i = 0; i < m->nmodulators; i++) {
        const IrModulator *d = &m->modulators[i];
        fprintf(out, "modulator %d %s [%s] baseline ", i, d->name, engram_dim_unit(d->dim, unit, sizeof unit));
        print_param_ref(out, d->baseline_param, m);
        fputs(" tau ", out);
        print_param_ref(out, d->tau_param, m);
        fputc('\n', out);
    }
    for (int i = 0; i < m->nreleases; i++) {
        const IrRelease *r = &m->releases[i];
        const char *mod = r->modulator >= 0 && r->modulator < m->nmodulators ? m->modulators[r->modulator].name : "?";
        fprintf(out, "release %d %s amount ", i, mod);
        print_param_ref(out, r->amount_param, m);
        fprintf(out, " %s %s", r->kind == ENGRAM_RELEASE_WHEN ? "after" : "per spike of",
                r->src >= 0 && r->src < m->npops ? m->pops[r->src].path : "?");
        if (r->kind == ENGRAM_RELEASE_WHEN) {
            fputc('[', out);
            print_param_ref(out, r->src_index_param, m);
            fprintf(out, "] when %s[", r->dst >= 0 && r->dst < m->npops ? m->pops[r->dst].path : "?");
            print_param_ref(out, r->dst_index_param, m);
            fputs("] within ", out);
            print_param_ref(out, r->window_param, m);
            if (r->delay.arg[0] >= 0)
                dump_dist(out, "delay", &r->delay, m);
        }
        fputc('\n', out);
    }
    for (int i = 0; i < m->nweight_recs; i++) {
        const IrWeightRec *w = &m->weight_recs[i];
        fprintf(out, "record weights %s every ", w->proj >= 0 && w->proj < m->nprojs ? m->projs[w->proj].name : "?");
        print_param_ref(out, w->every_param, m);
        fputs(w->per_synapse ? " synapses\n" : "\n", out);
    }
}

static void dump_drive(FILE *out, const IrModel *m, int i)
{
    const IrDrive *d = &m->drives[i];
    const IrPop *dst = &m->pops[d->dst];
    fprintf(out, "drive %d %s: %s port %s rate ", i, d->name, dst->path,
            d->port >= 0 && d->port < dst->nports ? dst->ports[d->port].name : "?");
    print_param_ref(out, d->rate_param, m);
    fputs(" count ", out);
    print_param_ref(out, d->count_param, m);
    fputs(" weight ", out);
    print_param_ref(out, d->weight_param, m);
    fputc('\n', out);
}

/* ---- ensembles, sequences, measures, protocols ------------------------------------ */

static void dump_target(FILE *out, const IrModel *m, const IrTarget *t)
{
    fputs(t->pop >= 0 && t->pop < m->npops ? m->pops[t->pop].path : "?", out);
    if (t->group >= 0) {
        fputc('[', out);
        ir_print_expr(out, t->index, m, NULL);
        fputc(']', out);
    }
}

static void dump_ensembles(FILE *out, const IrModel *m)
{
    for (int g = 0; g < m->nens_groups; g++) {
        const IrEnsGroup *e = &m->ens_groups[g];
        fprintf(out, "ensembles %s %s", m->pops[e->pop].path,
                e->kind == ENGRAM_ENS_SPLIT ? "split " : "ranges");
        if (e->kind == ENGRAM_ENS_SPLIT)
            print_param_ref(out, e->count_param, m);
        for (int k = 0; k < e->nens; k++) {
            fputs(k ? ", " : " ", out);
            print_param_ref(out, e->range_param[2 * k], m);
            fputs("..", out);
            print_param_ref(out, e->range_param[2 * k + 1], m);
        }
        for (int k = 0; k < e->nnames; k++)
            fprintf(out, "%s%s", k ? " " : " names ", e->names[k] ? e->names[k] : "-");
        fputc('\n', out);
    }
    for (int k = 0; k < m->nsequences; k++) {
        const IrSequence *q = &m->sequences[k];
        fprintf(out, "sequence %s group %d elements", q->name, q->group);
        for (int i = 0; i < q->nelems; i++)
            fprintf(out, " %d", q->elems[i]);
        fputs(" interval ", out);
        print_param_ref(out, q->interval_param, m);
        fputc('\n', out);
    }
    for (int k = 0; k < m->nstimuli; k++)
        fprintf(out, "stimulus %s port %d\n", m->pops[m->stimuli[k].pop].path, m->stimuli[k].port);
    for (int k = 0; k < m->nmeasures; k++)
        fprintf(out, "measure %d %s kind %d protocol %d\n", k, m->measures[k].name,
                (int)m->measures[k].kind, m->measures[k].protocol);
}

static const char *const stmt_names[] = {
    "block", "repeat", "cue", "teach", "current", "rest", "background", "reward", "set",
    "plasticity", "checkpoint", "restore", "measure", "record"};

static void dump_opt(FILE *out, const char *label, const IrExpr *e, const IrModel *m)
{
    if (e) {
        fprintf(out, " %s ", label);
        ir_print_expr(out, e, m, NULL);
    }
}

static void dump_stmt(FILE *out, const IrModel *m, const IrProtocol *p, const IrStmt *s, int level)
{
    fprintf(out, "%*s%s", 2 * level, "", stmt_names[s->kind]);
    if (s->name)
        fprintf(out, " '%s'", s->name);
    if (s->kind == ENGRAM_STMT_BLOCK || s->kind == ENGRAM_STMT_REPEAT)
        fprintf(out, " kind %d", s->block);
    if (s->var >= 0)
        fprintf(out, " var %s", p->vars[s->var]);
    if (s->target.pop >= 0) {
        fputc(' ', out);
        dump_target(out, m, &s->target);
    }
    if (s->ref >= 0)
        fprintf(out, " ref %d", s->ref);
    for (int i = 0; i < s->nlist; i++)
        fprintf(out, "%s%d", i ? "," : " list ", s->list[i]);
    dump_opt(out, "a", s->a, m);
    dump_opt(out, "b", s->b, m);
    dump_opt(out, "when", s->cond, m);
    fputc('\n', out);
    for (int i = 0; i < s->nbody; i++)
        dump_stmt(out, m, p, s->body[i], level + 1);
}

static void dump_protocols(FILE *out, const IrModel *m)
{
    dump_ensembles(out, m);
    for (int k = 0; k < m->nprotocols; k++) {
        fprintf(out, "protocol %s\n", m->protocols[k].name);
        dump_stmt(out, m, &m->protocols[k], m->protocols[k].top, 1);
    }
}

void ir_dump(FILE *out, const IrModel *m)
{
    if (!m)
        return;
    fprintf(out, "model %s\n  sha256 %s\n  precision %d\n", m->name ? m->name : "?", m->sha256,
            m->precision);
    dump_params(out, m);
    for (int i = 0; i < m->npops; i++)
        dump_pop(out, m, i);
    for (int i = 0; i < m->nprojs; i++)
        dump_proj(out, m, i);
    for (int i = 0; i < m->ndrives; i++)
        dump_drive(out, m, i);
    dump_neuromodulation(out, m);
    dump_protocols(out, m);
    fputs("settings dt ", out);
    print_param_ref(out, m->dt_param, m);
    fputs(" duration ", out);
    print_param_ref(out, m->duration_param, m);
    fputs(" seed ", out);
    print_param_ref(out, m->seed_param, m);
    fputc('\n', out);
}
