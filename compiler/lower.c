/*
 * lower.c - the last semantic phase: from the checked tables to the flat
 * network IR (ir.h), plus the linear-system analysis behind `method exact`
 * and the pipeline entry points (sema_compile_file).
 *
 * Linearity.  A neuron's ODEs can be integrated exactly when every
 * right-hand side is affine in the state variables with coefficients made
 * of params and constants.  lin_split() decomposes an expression by
 * structural recursion, the way one takes partial derivatives by hand:
 * a state contributes coefficient 1 to its own column, sums add, negation
 * negates, a product may have a state on one side only, a quotient only in
 * the numerator, and anything else that touches a state (or t) is not
 * linear.  States without an ODE that the ODEs read join the system with a
 * zero row (they are constant between events), so the propagator stays
 * exact when an input jumps such a variable.
 *
 * Lowering.  Parameters are put in dependency order (a depth-first walk in
 * declaration order, so the table reads like the model), cycles reported.
 * Then every population, projection and drive is written with parameter
 * references renumbered to table positions: a population's neuron template
 * reads its own copies of the params (sema_internal.h explains the two
 * index spaces).
 *
 * The same analysis, on one variable, gives the coefficients of the traces
 * and synapse variables of plasticity rules: dx/dt = a*x + b.  A rule
 * whose `on pre` runs at arrival gets its pre traces as synapse variables
 * (lower_arrival): each synapse sees the presynaptic train after its own
 * delay.
 *
 * Order: linear analysis, parameter order, populations, plasticity and
 * neuromodulation, links, entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "sema_internal.h"

/* ---- linear analysis ----------------------------------------------------- */

typedef struct LinCtx {
    Sema *S;
    SemaNeuron *n;
    int *col;              /* state index -> column of the system, -1 if outside */
    int ncols;
    const IrExpr *bad;     /* what broke linearity */
    const char *why;
} LinCtx;

/* An affine form: sum_c coef[c] * x_c + b; NULL entries are zero. */
typedef struct Lin {
    IrExpr **coef;
    IrExpr *b;
} Lin;

static bool lin_fail(LinCtx *L, const IrExpr *e, const char *why)
{
    if (!L->bad) {
        L->bad = e;
        L->why = why;
    }
    return false;
}

static Lin lin_zero(LinCtx *L)
{
    Lin r = {arena_alloc(L->S->a, (size_t)(L->ncols + 1) * sizeof(IrExpr *)), NULL};
    return r;
}

static bool is_one(const IrExpr *e)
{
    return e && e->kind == IR_CONST && e->value == 1 && engram_dim_is_none(e->dim);
}

static IrExpr *lin_neg(LinCtx *L, IrExpr *x)
{
    if (!x)
        return NULL;
    if (x->kind == IR_CONST)
        return ir_const(L->S->a, -x->value, x->dim, x->span);
    if (x->kind == IR_UNARY && x->op == OP_NEG)
        return x->a;
    return ir_unary(L->S->a, OP_NEG, x, x->span);
}

static IrExpr *lin_add(LinCtx *L, IrExpr *x, IrExpr *y, bool sub)
{
    if (!y)
        return x;
    if (!x)
        return sub ? lin_neg(L, y) : y;
    return ir_binary(L->S->a, sub ? OP_SUB : OP_ADD, x, y, x->dim, x->span);
}

/* x * k or x / k, where k holds no state. */
static IrExpr *lin_scale(LinCtx *L, IrExpr *x, IrExpr *k, bool div)
{
    if (!x)
        return NULL;
    if (is_one(k))
        return x;
    if (is_one(x) && !div)
        return k;
    EngramDim d = div ? engram_dim_div(x->dim, k->dim) : engram_dim_mul(x->dim, k->dim);
    return ir_binary(L->S->a, div ? OP_DIV : OP_MUL, x, k, d, x->span);
}

static const IrExpr *find_kind(const IrExpr *e, IrExprKind kind)
{
    if (!e || e->kind == kind)
        return e;
    const IrExpr *f = find_kind(e->a, kind);
    if (!f)
        f = find_kind(e->b, kind);
    if (!f)
        f = find_kind(e->c, kind);
    if (!f)
        f = find_kind(e->d, kind);
    return f;
}

/* A part with no state: the affine term, unless it reads the time. */
static bool lin_const(LinCtx *L, IrExpr *e, Lin *out)
{
    const IrExpr *t = find_kind(e, IR_TIME);
    if (t)
        return lin_fail(L, t, "a dependence on the time t");
    *out = lin_zero(L);
    out->b = e;
    return true;
}

static bool lin_split(LinCtx *L, IrExpr *e, Lin *out);

static bool lin_sum(LinCtx *L, IrExpr *e, Lin *out)
{
    Lin x, y;
    if (!lin_split(L, e->a, &x) || !lin_split(L, e->b, &y))
        return false;
    bool sub = e->op == OP_SUB;
    for (int c = 0; c < L->ncols; c++)
        x.coef[c] = lin_add(L, x.coef[c], y.coef[c], sub);
    x.b = lin_add(L, x.b, y.b, sub);
    *out = x;
    return true;
}

static bool lin_product(LinCtx *L, IrExpr *e, Lin *out)
{
    bool sa = ir_reads(e->a, IR_STATE), sb = ir_reads(e->b, IR_STATE);
    bool div = e->op == OP_DIV;
    if (div && sb)
        return lin_fail(L, e, "a division by a state variable");
    if (sa && sb)
        return lin_fail(L, e, "a product of state variables");
    IrExpr *k = sa || div ? e->b : e->a;
    if (find_kind(k, IR_TIME))
        return lin_fail(L, find_kind(k, IR_TIME), "a dependence on the time t");
    Lin x;
    if (!lin_split(L, sa || div ? e->a : e->b, &x))
        return false;
    for (int c = 0; c < L->ncols; c++)
        x.coef[c] = lin_scale(L, x.coef[c], k, div);
    x.b = lin_scale(L, x.b, k, div);
    *out = x;
    return true;
}

static bool lin_split(LinCtx *L, IrExpr *e, Lin *out)
{
    if (!e)
        return lin_fail(L, NULL, "an invalid expression");
    if (!ir_reads(e, IR_STATE))
        return lin_const(L, e, out);
    switch (e->kind) {
    case IR_STATE:
        *out = lin_zero(L);
        if (e->index < 0 || e->index >= L->n->nstates || L->col[e->index] < 0)
            return lin_fail(L, e, "a variable outside the system");
        out->coef[L->col[e->index]] = ir_const(L->S->a, 1, engram_dim(0, 0, 0), e->span);
        return true;
    case IR_UNARY:
        if (e->op != OP_NEG || !lin_split(L, e->a, out))
            return e->op != OP_NEG ? lin_fail(L, e, "a condition on a state variable") : false;
        for (int c = 0; c < L->ncols; c++)
            out->coef[c] = lin_neg(L, out->coef[c]);
        out->b = lin_neg(L, out->b);
        return true;
    case IR_BINARY:
        if (e->op == OP_ADD || e->op == OP_SUB)
            return lin_sum(L, e, out);
        if (e->op == OP_MUL || e->op == OP_DIV)
            return lin_product(L, e, out);
        if (e->op == OP_POW)
            return lin_fail(L, e, "a power of a state variable");
        return lin_fail(L, e, "a condition on a state variable");
    case IR_CALL:
        return lin_fail(L, e, arena_printf(L->S->a, "%s() of a state variable", ir_builtin_name(e->fn)));
    default:
        return lin_fail(L, e, "not an equation term");
    }
}

static void mark_read(const IrExpr *e, int *col)
{
    if (!e)
        return;
    if (e->kind == IR_STATE && e->index >= 0)
        col[e->index] = 1;
    mark_read(e->a, col);
    mark_read(e->b, col);
    mark_read(e->c, col);
    mark_read(e->d, col);
}

/* The system's variables: states with an ODE and states the ODEs read. */
static int lin_columns(SemaNeuron *n, int *col, int *vars)
{
    for (int k = 0; k < n->nstates; k++)
        col[k] = n->states[k].ode ? 1 : 0;
    for (int k = 0; k < n->nstates; k++)
        mark_read(n->states[k].ode, col);
    int nc = 0;
    for (int k = 0; k < n->nstates; k++) {
        if (col[k]) {
            vars[nc] = k;
            col[k] = nc++;
        } else {
            col[k] = -1;
        }
    }
    return nc;
}

const IrExpr *sema_linearize(Sema *S, SemaNeuron *n, const char **why)
{
    int *col = arena_alloc(S->a, (size_t)(n->nstates + 1) * sizeof *col);
    int *vars = arena_alloc(S->a, (size_t)(n->nstates + 1) * sizeof *vars);
    LinCtx L = {S, n, col, lin_columns(n, col, vars), NULL, NULL};
    int N = L.ncols;
    if (N == 0)
        return NULL;
    if (N > SEMA_MAX_LINEAR) {
        *why = "one of more than " "31" " coupled variables, too many to integrate exactly";
        return n->states[vars[0]].ode ? n->states[vars[0]].ode : n->states[vars[0]].init;
    }
    IrExpr **coef = arena_alloc(S->a, (size_t)(N * (N + 1) + 1) * sizeof *coef);
    for (int r = 0; r < N; r++) {
        IrExpr *ode = n->states[vars[r]].ode;
        Lin row;
        if (!ode)
            continue;   /* a zero row: constant between events */
        if (!lin_split(&L, ode, &row)) {
            *why = L.why;
            return L.bad ? L.bad : ode;
        }
        for (int c = 0; c < N; c++)
            coef[r * (N + 1) + c] = row.coef[c];
        coef[r * (N + 1) + N] = row.b;
    }
    n->lin_vars = vars;
    n->nlinear = N;
    n->coef = coef;
    return NULL;
}

/* The rule variable (kind, index) as state 0 of a one-variable system. */
static IrExpr *as_state0(Arena *a, const IrExpr *e, IrExprKind kind, int index)
{
    if (!e)
        return NULL;
    IrExpr *c = arena_alloc(a, sizeof *c);
    *c = *e;
    if (e->kind == kind && e->index == index) {
        c->kind = IR_STATE;
        c->index = 0;
    }
    c->a = as_state0(a, e->a, kind, index);
    c->b = as_state0(a, e->b, kind, index);
    c->c = as_state0(a, e->c, kind, index);
    c->d = as_state0(a, e->d, kind, index);
    return c;
}

/* What else a rule ODE may not read: it is integrated lazily, between
 * events, from its own value alone. */
static const IrExpr *find_dynamic(const IrExpr *e, const char **why)
{
    if (!e)
        return NULL;
    switch (e->kind) {
    case IR_WEIGHT: *why = "a dependence on the weight w"; return e;
    case IR_SYNVAR: case IR_PRE_TRACE: case IR_POST_TRACE:
        *why = "a dependence on another variable of the rule";
        return e;
    case IR_PRE_STATE: case IR_POST_STATE: *why = "a dependence on the state of a neuron"; return e;
    case IR_MODULATOR: *why = "a dependence on a modulator"; return e;
    default: break;
    }
    const IrExpr *f = find_dynamic(e->a, why);
    if (!f)
        f = find_dynamic(e->b, why);
    if (!f)
        f = find_dynamic(e->c, why);
    if (!f)
        f = find_dynamic(e->d, why);
    return f;
}

const IrExpr *sema_linearize_var(Sema *S, const IrExpr *rhs, IrExprKind kind, int index,
                                 IrExpr **a, IrExpr **b, const char **why)
{
    IrExpr *x = as_state0(S->a, rhs, kind, index);
    const IrExpr *bad = find_dynamic(x, why);
    if (bad)
        return bad;
    SemaNeuron one = {0};
    one.nstates = 1;
    int col[1] = {0};
    LinCtx L = {S, &one, col, 1, NULL, NULL};
    Lin row;
    if (!lin_split(&L, x, &row)) {
        *why = L.why;
        return L.bad ? L.bad : rhs;
    }
    *a = row.coef[0] ? row.coef[0] : ir_const(S->a, 0, engram_dim(-1, 0, 0), rhs->span);
    *b = row.b ? row.b : ir_const(S->a, 0, rhs->dim, rhs->span);
    return NULL;
}

/* ---- parameter order ----------------------------------------------------- */

typedef struct Lower {
    Sema *S;
    IrModel *m;
    int *rank;           /* sid -> position in the table */
    int **deps;          /* per sid, the sids its value reads; -1 terminated */
} Lower;

static void collect_deps(const IrExpr *e, int *out, int *n, int cap)
{
    if (!e)
        return;
    if (e->kind == IR_PARAM && e->index >= 0 && *n < cap)
        out[(*n)++] = e->index;
    collect_deps(e->a, out, n, cap);
    collect_deps(e->b, out, n, cap);
    collect_deps(e->c, out, n, cap);
    collect_deps(e->d, out, n, cap);
}

static int count_nodes(const IrExpr *e)
{
    return e ? 1 + count_nodes(e->a) + count_nodes(e->b) + count_nodes(e->c) + count_nodes(e->d) : 0;
}

static void build_deps(Lower *L)
{
    Sema *S = L->S;
    L->deps = arena_alloc(S->a, (size_t)(S->nparams + 1) * sizeof *L->deps);
    for (int sid = 0; sid < S->nparams; sid++) {
        int cap = count_nodes(S->params[sid].value), n = 0;
        L->deps[sid] = arena_alloc(S->a, (size_t)(cap + 1) * sizeof(int));
        collect_deps(S->params[sid].value, L->deps[sid], &n, cap);
        L->deps[sid][n] = -1;
    }
}

static void report_param_cycle(Lower *L, const int *stack, int depth, int again)
{
    Sema *S = L->S;
    int start = depth - 1;
    while (start > 0 && stack[start] != again)
        start--;
    size_t len = strlen(S->params[again].path) + 1;
    for (int i = start; i < depth; i++)
        len += strlen(S->params[stack[i]].path) + 4;
    char *msg = arena_alloc(S->a, len), *o = msg;
    for (int i = start; i < depth; i++)
        o += sprintf(o, "%s -> ", S->params[stack[i]].path);
    strcpy(o, S->params[again].path);
    sema_error(S, S->params[again].span, "parameter cycle: %s", msg);
}

/* Depth-first post-order, iterative (a chain of thousands of params must
 * not exhaust the C stack).  state: 0 new, 1 on the stack, 2 placed. */
static bool order_params(Lower *L, int *order)
{
    Sema *S = L->S;
    int n = S->nparams, placed = 0, errors = S->d->nerrors;
    int *state = arena_alloc(S->a, (size_t)(n + 1) * sizeof *state);
    int *stack = arena_alloc(S->a, (size_t)(n + 1) * sizeof *stack);
    int *next = arena_alloc(S->a, (size_t)(n + 1) * sizeof *next);
    for (int root = 0; root < n; root++) {
        if (state[root])
            continue;
        int depth = 0;
        stack[depth++] = root;
        state[root] = 1;
        next[root] = 0;
        while (depth > 0) {
            int sid = stack[depth - 1], dep = L->deps[sid][next[sid]];
            if (dep < 0 || dep >= n) {
                order[placed++] = sid;
                state[sid] = 2;
                depth--;
                continue;
            }
            next[sid]++;
            if (state[dep] == 1)
                report_param_cycle(L, stack, depth, dep);
            if (state[dep] == 0) {
                state[dep] = 1;
                next[dep] = 0;
                stack[depth++] = dep;
            }
        }
    }
    return S->d->nerrors == errors;
}

static void lower_params(Lower *L, const int *order)
{
    Sema *S = L->S;
    IrModel *m = L->m;
    m->nparams = S->nparams;
    m->params = arena_alloc(S->a, (size_t)(S->nparams + 1) * sizeof *m->params);
    for (int i = 0; i < S->nparams; i++)
        L->rank[order[i]] = i;
    for (int i = 0; i < S->nparams; i++) {
        const SParam *sp = &S->params[order[i]];
        IrParam *p = &m->params[i];
        p->path = sp->path;
        p->dim = sp->dim;
        p->flags = sp->flags;
        p->value = ir_copy_map(S->a, sp->value, NULL, 0, L->rank);
        p->list = sp->list;
        p->nlist = sp->nlist;
        p->span = sp->span;
    }
}

/* ---- populations --------------------------------------------------------- */

static int rank_of(const Lower *L, int sid)
{
    return sid >= 0 && sid < L->S->nparams ? L->rank[sid] : -1;
}

static IrExpr *pop_expr(Lower *L, const SemaPop *p, const IrExpr *e)
{
    return ir_copy_map(L->S->a, e, p->param_sid, p->neuron->nparams, L->rank);
}

static void lower_states(Lower *L, const SemaPop *p, IrPop *ip)
{
    const SemaNeuron *n = p->neuron;
    Arena *a = L->S->a;
    ip->nstates = n->nstates;
    ip->states = arena_alloc(a, (size_t)(n->nstates + 1) * sizeof *ip->states);
    for (int k = 0; k < n->nstates; k++) {
        const NState *st = &n->states[k];
        ip->states[k] = (IrState){st->name, st->dim, pop_expr(L, p, st->init), pop_expr(L, p, st->ode),
                                  st->held};
    }
    ip->nports = n->nports;
    ip->ports = arena_alloc(a, (size_t)(n->nports + 1) * sizeof *ip->ports);
    for (int k = 0; k < n->nports; k++)
        ip->ports[k] = (IrPort){n->ports[k].name, n->ports[k].state};
}

static void lower_events(Lower *L, const SemaPop *p, IrPop *ip)
{
    const SemaNeuron *n = p->neuron;
    Arena *a = L->S->a;
    ip->threshold = pop_expr(L, p, n->threshold);
    ip->nreset = n->nreset;
    ip->reset = arena_alloc(a, (size_t)(n->nreset + 1) * sizeof *ip->reset);
    for (int r = 0; r < n->nreset; r++)
        ip->reset[r] = (IrAssign){n->reset[r].state, n->reset[r].op, pop_expr(L, p, n->reset[r].value)};
    ip->refractory_param = rank_of(L, p->refr_sid);
    ip->method = n->method;
    if (n->method != ENGRAM_METHOD_EXACT || n->nlinear == 0)
        return;
    int N = n->nlinear;
    ip->nlinear = N;
    ip->lin_vars = n->lin_vars;
    ip->coef = arena_alloc(a, (size_t)(N * (N + 1) + 1) * sizeof *ip->coef);
    for (int i = 0; i < N * (N + 1); i++)
        ip->coef[i] = pop_expr(L, p, n->coef[i]);
}

static int pop_param_rank(const Lower *L, const SemaPop *p, const char *name)
{
    for (int k = 0; k < p->neuron->nparams; k++)
        if (strcmp(p->neuron->params[k].name, name) == 0)
            return rank_of(L, p->param_sid[k]);
    return -1;
}

static void lower_pop(Lower *L, const SemaPop *p, IrPop *ip)
{
    const SemaNeuron *n = p->neuron;
    ip->path = p->path;
    ip->model = n->name;
    ip->kind = n->kind;
    ip->size_param = rank_of(L, p->size_sid);
    ip->refractory_param = ip->rate_param = ip->times_param = ip->indices_param = -1;
    ip->method = ENGRAM_METHOD_NONE;
    ip->record_spikes = p->record;
    ip->span = p->decl->span;
    if (n->kind == ENGRAM_POP_POISSON) {
        ip->rate_param = pop_param_rank(L, p, "rate");
    } else if (n->kind == ENGRAM_POP_SPIKE_TIMES) {
        ip->times_param = pop_param_rank(L, p, "times");
        ip->indices_param = ir_param_find(L->m, arena_printf(L->S->a, "%s.indices", p->path));
    } else {
        lower_states(L, p, ip);
        lower_events(L, p, ip);
    }
}

/* ---- plasticity ---------------------------------------------------------- */

static IrExpr *map_expr(const Lower *L, const IrExpr *e)
{
    return ir_copy_map(L->S->a, e, NULL, 0, L->rank);
}

/* The variables of one kind, in the order of their indices. */
static IrVar *lower_vars(const Lower *L, const RuleInst *ri, IrExprKind kind, int n)
{
    const SemaRule *r = ri->rule;
    IrVar *out = arena_alloc(L->S->a, (size_t)(n + 1) * sizeof *out);
    for (int k = 0; k < r->nvars; k++) {
        if (r->vars[k].kind != kind)
            continue;
        const IrVar *v = &ri->vars[k];
        out[r->vars[k].index] = (IrVar){v->name, v->dim, map_expr(L, v->init), map_expr(L, v->lin_a),
                                        map_expr(L, v->lin_b)};
    }
    return out;
}

static IrRuleAssign *lower_assigns(const Lower *L, const IrRuleAssign *in, int n)
{
    IrRuleAssign *out = arena_alloc(L->S->a, (size_t)(n + 1) * sizeof *out);
    for (int i = 0; i < n; i++) {
        out[i] = in[i];
        out[i].value = map_expr(L, in[i].value);
    }
    return out;
}

static IrHandler lower_handler(const Lower *L, const IrHandler *h)
{
    IrHandler r = *h;
    r.before = lower_assigns(L, h->before, h->nbefore);
    r.syn = lower_assigns(L, h->syn, h->nsyn);
    r.after = lower_assigns(L, h->after, h->nafter);
    return r;
}

/* Pre traces of `on pre arrival` become synapse variables: a trace as seen
 * at the synapse, where spikes arrive after that synapse's delay. */
static void arrival_expr(IrExpr *e, int nsyn)
{
    if (!e)
        return;
    if (e->kind == IR_PRE_TRACE) {
        e->kind = IR_SYNVAR;
        e->index += nsyn;
    }
    arrival_expr(e->a, nsyn);
    arrival_expr(e->b, nsyn);
    arrival_expr(e->c, nsyn);
    arrival_expr(e->d, nsyn);
}

static void arrival_assigns(IrRuleAssign *as, int n, int nsyn)
{
    for (int i = 0; i < n; i++) {
        if (as[i].target == IR_TGT_PRE) {
            as[i].target = IR_TGT_SYNVAR;
            as[i].index += nsyn;
        }
        arrival_expr(as[i].value, nsyn);
    }
}

static void arrival_handler(IrHandler *h, int nsyn)
{
    arrival_assigns(h->before, h->nbefore, nsyn);
    arrival_assigns(h->syn, h->nsyn, nsyn);
    arrival_assigns(h->after, h->nafter, nsyn);
}

/* The whole of on_pre runs per synapse, in the order written (sema keeps the
 * per-spike statements before or after the per-synapse ones). */
static void lower_arrival(const Lower *L, IrRule *ir)
{
    int nsyn = ir->nsyn_vars, n = nsyn + ir->npre;
    IrVar *vars = arena_alloc(L->S->a, (size_t)(n + 1) * sizeof *vars);
    for (int k = 0; k < nsyn; k++)
        vars[k] = ir->syn_vars[k];
    for (int k = 0; k < ir->npre; k++)
        vars[nsyn + k] = ir->pre[k];
    ir->syn_vars = vars;
    ir->nsyn_vars = n;
    ir->npre = 0;
    arrival_handler(&ir->on_pre, nsyn);
    arrival_handler(&ir->on_post, nsyn);
    arrival_handler(&ir->every, nsyn);
    IrHandler *h = &ir->on_pre;
    int m = h->nbefore + h->nsyn + h->nafter;
    IrRuleAssign *all = arena_alloc(L->S->a, (size_t)(m + 1) * sizeof *all);
    IrRuleAssign *parts[3] = {h->before, h->syn, h->after};
    int counts[3] = {h->nbefore, h->nsyn, h->nafter}, at = 0;
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < counts[p]; i++)
            all[at++] = parts[p][i];
    *h = (IrHandler){.syn = all, .nsyn = m};
    ir->pre_arrival = true;
}

static IrRule *lower_rule(const Lower *L, const RuleInst *ri)
{
    const SemaRule *r = ri->rule;
    IrRule *ir = arena_alloc(L->S->a, sizeof *ir);
    ir->name = r->name;
    ir->nsyn_vars = r->nsyn;
    ir->npre = r->npre;
    ir->npost = r->npost;
    ir->syn_vars = lower_vars(L, ri, IR_SYNVAR, r->nsyn);
    ir->pre = lower_vars(L, ri, IR_PRE_TRACE, r->npre);
    ir->post = lower_vars(L, ri, IR_POST_TRACE, r->npost);
    ir->has_on_pre = r->on_pre.stmt != NULL;
    ir->has_on_post = r->on_post.stmt != NULL;
    ir->has_every = r->every.stmt != NULL;
    ir->on_pre = lower_handler(L, &ri->on_pre);
    ir->on_post = lower_handler(L, &ri->on_post);
    ir->every = lower_handler(L, &ri->every);
    ir->every_param = rank_of(L, ri->every_sid);
    ir->w_lo_param = rank_of(L, ri->w_lo_sid);
    ir->w_hi_param = rank_of(L, ri->w_hi_sid);
    ir->plastic_param = rank_of(L, ri->plastic_sid);
    if (r->on_pre.stmt && r->on_pre.stmt->variant)
        lower_arrival(L, ir);
    return ir;
}

static IrDist lower_dist(const Lower *L, const SemaDist *d);

static void lower_neuromodulation(Lower *L)
{
    Sema *S = L->S;
    IrModel *m = L->m;
    m->nmodulators = S->nmodulators;
    m->modulators = arena_alloc(S->a, (size_t)(S->nmodulators + 1) * sizeof *m->modulators);
    for (int i = 0; i < S->nmodulators; i++) {
        const SemaModulator *sm = &S->modulators[i];
        m->modulators[i] = (IrModulator){sm->name, sm->dim, rank_of(L, sm->baseline_sid),
                                         rank_of(L, sm->tau_sid), sm->decl->span};
    }
    m->nreleases = S->nreleases;
    m->releases = arena_alloc(S->a, (size_t)(S->nreleases + 1) * sizeof *m->releases);
    for (int i = 0; i < S->nreleases; i++) {
        const SemaRelease *r = &S->releases[i];
        bool when = r->decl->release_kind == RELEASE_WHEN;
        m->releases[i] = (IrRelease){
            when ? ENGRAM_RELEASE_WHEN : ENGRAM_RELEASE_PER_SPIKE, r->modulator,
            rank_of(L, r->amount_sid), (int)(r->src - S->pops), rank_of(L, r->src_index_sid),
            when ? (int)(r->dst - S->pops) : -1, rank_of(L, r->dst_index_sid),
            rank_of(L, r->window_sid), lower_dist(L, &r->delay), r->decl->span};
    }
    m->nweight_recs = S->nwrecs;
    m->weight_recs = arena_alloc(S->a, (size_t)(S->nwrecs + 1) * sizeof *m->weight_recs);
    for (int i = 0; i < S->nwrecs; i++)
        m->weight_recs[i] = (IrWeightRec){S->wrecs[i].proj, rank_of(L, S->wrecs[i].every_sid),
                                          S->wrecs[i].decl->per_synapse};
}

/* ---- links --------------------------------------------------------------- */

static IrDist lower_dist(const Lower *L, const SemaDist *d)
{
    IrDist r = {d->kind, {-1, -1, -1, -1}};
    for (int k = 0; k < 4; k++)
        r.arg[k] = rank_of(L, d->sid[k]);
    return r;
}

static void lower_links(Lower *L)
{
    Sema *S = L->S;
    IrModel *m = L->m;
    m->nprojs = S->nprojs;
    m->projs = arena_alloc(S->a, (size_t)(S->nprojs + 1) * sizeof *m->projs);
    for (int i = 0; i < S->nprojs; i++) {
        const SemaProj *p = &S->projs[i];
        m->projs[i] = (IrProj){p->name, (int)(p->src - S->pops), (int)(p->dst - S->pops), p->port,
                               p->rule, rank_of(L, p->rule_sid), p->autapses,
                               lower_dist(L, &p->weight), lower_dist(L, &p->delay), p->decl->span,
                               p->plastic ? lower_rule(L, p->plastic) : NULL,
                               p->src_ens >= 0, p->dst_ens >= 0, p->src_group, p->src_ens,
                               p->dst_group, p->dst_ens};
    }
    m->ndrives = S->ndrives;
    m->drives = arena_alloc(S->a, (size_t)(S->ndrives + 1) * sizeof *m->drives);
    for (int i = 0; i < S->ndrives; i++) {
        const SemaDrive *v = &S->drives[i];
        m->drives[i] = (IrDrive){v->name, (int)(v->dst - S->pops), v->port, rank_of(L, v->rate_sid),
                                 rank_of(L, v->count_sid), rank_of(L, v->weight_sid), v->decl->span};
    }
}

/* Everything lowered must be whole: check guarantees it when it reports no
 * error, and this keeps a broken table from reaching codegen regardless. */
static bool links_ok(const Sema *S)
{
    for (int i = 0; i < S->nprojs; i++)
        if (!S->projs[i].ok || !S->projs[i].src || !S->projs[i].dst)
            return false;
    for (int i = 0; i < S->ndrives; i++)
        if (!S->drives[i].ok || !S->drives[i].dst)
            return false;
    for (int i = 0; i < S->npops; i++)
        if (!S->pops[i].neuron || S->pops[i].neuron->poisoned)
            return false;
    for (int i = 0; i < S->nmodulators; i++)
        if (!S->modulators[i].ok)
            return false;
    for (int i = 0; i < S->nreleases; i++) {
        const SemaRelease *r = &S->releases[i];
        if (!r->ok || !r->src || (r->decl->release_kind == RELEASE_WHEN && !r->dst))
            return false;
    }
    for (int i = 0; i < S->nwrecs; i++)
        if (S->wrecs[i].proj < 0)
            return false;
    return true;
}

static bool vars_complete(DiagCtx *d, const IrProj *p, const IrVar *v, int n)
{
    for (int k = 0; k < n; k++) {
        if (!v[k].init || (!v[k].lin_a) != (!v[k].lin_b)) {
            diag_error_noloc(d, "internal error: variable '%s' of projection '%s' is incomplete",
                             v[k].name, p->name);
            return false;
        }
    }
    return true;
}

/* The IR contract codegen relies on: every settable param has a value,
 * every state an initial value.  check guarantees it when it reports no
 * error; a hole here is a compiler bug, reported rather than passed on. */
static bool ir_complete(DiagCtx *d, const IrModel *m)
{
    for (int i = 0; i < m->nparams; i++) {
        if (!m->params[i].value && !(m->params[i].flags & ENGRAM_PARAM_LIST)) {
            diag_error_noloc(d, "internal error: parameter '%s' has no value", m->params[i].path);
            return false;
        }
    }
    for (int i = 0; i < m->npops; i++) {
        for (int k = 0; k < m->pops[i].nstates; k++) {
            if (!m->pops[i].states[k].init) {
                diag_error_noloc(d, "internal error: %s.%s has no initial value", m->pops[i].path,
                                 m->pops[i].states[k].name);
                return false;
            }
        }
    }
    for (int i = 0; i < m->nprojs; i++) {
        const IrRule *r = m->projs[i].plasticity;
        if (r && (!vars_complete(d, &m->projs[i], r->syn_vars, r->nsyn_vars) ||
                  !vars_complete(d, &m->projs[i], r->pre, r->npre) ||
                  !vars_complete(d, &m->projs[i], r->post, r->npost)))
            return false;
    }
    return true;
}

IrModel *sema_lower(Sema *S, int file)
{
    if (!links_ok(S)) {
        diag_error_noloc(S->d, "internal error: a declaration failed its checks without a message");
        return NULL;
    }
    Lower L = {S, arena_alloc(S->a, sizeof(IrModel)), NULL, NULL};
    L.rank = arena_alloc(S->a, (size_t)(S->nparams + 1) * sizeof *L.rank);
    int *order = arena_alloc(S->a, (size_t)(S->nparams + 1) * sizeof *order);
    build_deps(&L);
    if (!order_params(&L, order))
        return NULL;
    IrModel *m = L.m;
    lower_params(&L, order);
    m->npops = S->npops;
    m->pops = arena_alloc(S->a, (size_t)(S->npops + 1) * sizeof *m->pops);
    for (int i = 0; i < S->npops; i++)
        lower_pop(&L, &S->pops[i], &m->pops[i]);
    lower_links(&L);
    lower_neuromodulation(&L);
    sema_lower_protocols(S, m, L.rank);
    m->dt_param = rank_of(&L, S->dt_sid);
    m->duration_param = rank_of(&L, S->duration_sid);
    m->seed_param = rank_of(&L, S->seed_sid);
    m->name = S->main->ast->model_name;
    m->precision = S->precision;
    const SourceFile *src = diag_file(S->d, file);
    sema_sha256_hex(src ? src->text : "", src ? src->size : 0, m->sha256);
    return ir_complete(S->d, m) ? m : NULL;
}

/* ---- entry --------------------------------------------------------------- */

IrModel *sema_compile_loaded(DiagCtx *d, Arena *a, int file, const SemaOptions *opt)
{
    Sema S;
    sema_init(&S, d, a, opt);
    if (!sema_resolve(&S, file))
        return NULL;
    if (!sema_check(&S))
        return NULL;
    return sema_lower(&S, file);
}

IrModel *sema_compile_file(DiagCtx *d, Arena *a, const char *path, const SemaOptions *opt)
{
    int file = diag_load_file(d, path, NULL);
    if (file < 0)
        return NULL;
    return sema_compile_loaded(d, a, file, opt);
}
