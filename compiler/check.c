/*
 * check.c - names, dimensions and ranges (docs/language.md sections 2-9).
 *
 * Every expression of the model is elaborated into a typed IrExpr: names
 * are bound (neuron params, states, lets, model params, the built-ins t, dt
 * and i), lets are inlined, quantities are converted to internal units, and
 * each node gets its physical dimension.  A failed node is "poisoned"
 * (NULL): the error is reported once where it happens and everything built
 * on it stays quiet, so one run reports many independent errors.
 *
 * Neurons are checked once, as templates whose params are local indices
 * (see sema_internal.h); populations then get their own copies of every
 * param in the table of symbolic parameters (SParam), which also holds the
 * model params, the projection and drive arguments and the settings.
 *
 * State dimensions come from initial values.  A state that starts at a bare
 * `0` (which matches any dimension) takes its dimension from how the
 * equations use it: quiet inference passes run the equations, binding such
 * a state when it meets a known dimension (`v + ge`, `ge = w`, an ODE's
 * right-hand side), until nothing changes; what is left is dimensionless.
 *
 * Plasticity rules (sema_plasticity.c) are elaborated with this same
 * machinery: a Scope with ri set resolves rule names first (sema_rule_name),
 * and a flexible rule variable binds through sema_rule_bind.  The wrappers
 * at the end of the file are what that file uses.
 *
 * Order: scopes and typed values, dimension helpers, names, operators,
 * calls, argument binding, the parameter table and constant folding,
 * neurons, populations, projections, drives, settings and records, entry,
 * wrappers shared with sema_plasticity.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema_internal.h"

/* ---- scopes and typed values --------------------------------------------- */

/* Ctx, Scope and TExpr are in sema_internal.h (sema_plasticity.c elaborates
 * rule expressions with the same machinery). */

static const EngramDim DIM_NONE = {0, 0, 0};
static const EngramDim DIM_TIME = {1, 0, 0};

static TExpr poison(void)
{
    return (TExpr){NULL, false, -1};
}

static TExpr typed(IrExpr *e)
{
    return (TExpr){e, false, -1};
}

static Scope scope_make(Sema *S, SemaNeuron *n, Ctx ctx)
{
    Scope sc = {.S = S, .n = n, .ctx = ctx, .dists = ctx == CTX_INIT, .side = RSIDE_ANY};
    return sc;
}

static TExpr elab(Scope *sc, const Expr *x);

/* ---- dimension helpers --------------------------------------------------- */

static const char *dname(EngramDim d, char *buf, size_t n)
{
    return engram_dim_name(d, buf, n);
}

static bool dim_ok(EngramDim d)
{
    return abs(d.time) <= SEMA_MAX_DIM_EXP && abs(d.voltage) <= SEMA_MAX_DIM_EXP &&
           abs(d.current) <= SEMA_MAX_DIM_EXP;
}

/* a * b^sign, with the exponents kept in range (int8_t would wrap). */
static bool dim_combine(Sema *S, EngramDim a, EngramDim b, int sign, SrcSpan span, EngramDim *out)
{
    int t = a.time + sign * b.time, v = a.voltage + sign * b.voltage, c = a.current + sign * b.current;
    if (abs(t) > SEMA_MAX_DIM_EXP || abs(v) > SEMA_MAX_DIM_EXP || abs(c) > SEMA_MAX_DIM_EXP) {
        sema_error(S, span, "the unit of this expression has powers above %d", SEMA_MAX_DIM_EXP);
        return false;
    }
    *out = engram_dim(t, v, c);
    return true;
}

/* A unit name the lexer accepts for a dimension, for "write 20 ms" hints. */
static const char *unit_for(EngramDim d, char *buf, size_t n)
{
    double scale;
    EngramDim got;
    dname(d, buf, n);
    if (engram_unit_lookup(buf, strlen(buf), &scale, &got) && engram_dim_eq(got, d))
        return buf;
    if (engram_dim_eq(d, engram_dim(0, 1, -1)))
        return "Gohm";
    return NULL;
}

/* A number literal, possibly negated: what a "write 20 ms" hint can fix. */
static bool ast_literal(const Expr *x, double *v)
{
    if (x && x->kind == EXPR_NUMBER) {
        *v = x->value;
        return true;
    }
    if (x && x->kind == EXPR_UNARY && x->op == OP_NEG && x->lhs && x->lhs->kind == EXPR_NUMBER) {
        *v = -x->lhs->value;
        return true;
    }
    return false;
}

/* Records a state's dimension learnt during inference. */
static void bind_state(Sema *S, SemaNeuron *n, int k, EngramDim dim)
{
    if (S->rinst) {   /* inside a rule: k is a rule variable */
        if (dim_ok(dim))
            sema_rule_bind(S, k, dim);
        return;
    }
    if (!n || k < 0 || k >= n->nstates || n->states[k].dim_how != SDIM_INFER || !dim_ok(dim))
        return;
    n->states[k].dim = dim;
    n->states[k].dim_how = SDIM_KNOWN;
    S->changed = true;
}

/* Gives a flexible value (bare 0, or a state being inferred) a dimension. */
static void flex_set_dim(IrExpr *e, EngramDim dim)
{
    if (!e)
        return;
    e->dim = dim;
    if (e->kind == IR_UNARY && e->op == OP_NEG)
        flex_set_dim(e->a, dim);
    else if (e->kind == IR_BINARY && (e->op == OP_ADD || e->op == OP_SUB)) {
        flex_set_dim(e->a, dim);
        flex_set_dim(e->b, dim);
    }
}

static void flex_set(Sema *S, SemaNeuron *n, TExpr *t, EngramDim dim)
{
    if (t->bind >= 0)
        bind_state(S, n, t->bind, dim);
    flex_set_dim(t->e, dim);
    t->flex = false;
    t->bind = -1;
}

/* Same dimension, or one side flexible: then it takes the other's. */
static bool unify(Scope *sc, TExpr *l, TExpr *r, EngramDim *out)
{
    if (!l->flex && !r->flex) {
        *out = l->e->dim;
        return engram_dim_eq(l->e->dim, r->e->dim);
    }
    if (l->flex && r->flex) {
        *out = l->e->dim;
        return true;
    }
    TExpr *f = l->flex ? l : r, *k = l->flex ? r : l;
    flex_set(sc->S, sc->n, f, k->e->dim);
    *out = k->e->dim;
    return true;
}

/* Checks a value against the dimension a place needs; a bare 0 takes it.
 * A plain number where a unit is needed gets a "write 20 ms" hint. */
static bool expect_dim(Sema *S, SemaNeuron *n, TExpr *t, EngramDim want, const Expr *ast,
                       const char *why)
{
    char a[96], b[96], u[64];
    if (!t->e)
        return false;
    if (t->e->is_bool) {
        sema_error(S, ast->span, "expected %s, got a condition (true/false)",
                   sema_dim_describe(want, a, sizeof a));
        if (why)
            sema_hint(S, "%s", why);
        return false;
    }
    if (t->flex) {
        flex_set(S, n, t, want);
        return true;
    }
    if (engram_dim_eq(t->e->dim, want))
        return true;
    sema_error(S, ast->span, "expected %s, got %s", sema_dim_describe(want, a, sizeof a),
               sema_dim_describe(t->e->dim, b, sizeof b));
    double v;
    const char *unit = unit_for(want, u, sizeof u);
    if (engram_dim_is_none(t->e->dim) && ast_literal(ast, &v) && unit)
        sema_hint(S, "write %g %s", v, unit);
    else if (why)
        sema_hint(S, "%s", why);
    return false;
}

/* Arithmetic needs numbers, not conditions. */
static bool need_number(Scope *sc, const TExpr *t, const Expr *ast)
{
    if (!t->e)
        return false;
    if (t->e->is_bool) {
        sema_error(sc->S, ast->span, "expected a number, got a condition (true/false)");
        return false;
    }
    return true;
}

/* ---- names --------------------------------------------------------------- */

static int find_local(const SemaNeuron *n, const char *name, int kind)
{
    int v = n ? namemap_get(&n->locals, name) : -1;
    return v >= 0 && v >> LOCAL_SHIFT == kind ? v & ((1 << LOCAL_SHIFT) - 1) : -1;
}

static int find_nparam(const SemaNeuron *n, const char *name)
{
    return find_local(n, name, LOCAL_PARAM);
}

static int find_state(const SemaNeuron *n, const char *name)
{
    return find_local(n, name, LOCAL_STATE);
}

static int find_let(const SemaNeuron *n, const char *name)
{
    return find_local(n, name, LOCAL_LET);
}

static int find_port(const SemaNeuron *n, const char *name)
{
    for (int i = 0; n && i < n->nports; i++)
        if (strcmp(n->ports[i].name, name) == 0)
            return i;
    return -1;
}

static int find_mparam(const Sema *S, const char *name)
{
    return namemap_get(&S->mparam_names, name);
}

/* Defaults that refer ahead recurse (a reads b reads c ...): bounded so a
 * generated model cannot exhaust the C stack. */
static bool busy_full(Sema *S, SrcSpan use)
{
    if (S->nbusy < SEMA_MAX_CHAIN)
        return false;
    sema_error(S, use, "definitions refer ahead more than %d levels deep", SEMA_MAX_CHAIN);
    sema_hint(S, "declare params (and lets) before the ones that use them");
    return true;
}

static void busy_push(Sema *S, const void *owner, int index, const char *name)
{
    BusyEntry *b = SEMA_PUSH(S->a, S->busy, S->nbusy, S->capbusy);
    b->owner = owner;
    b->index = index;
    b->name = name;
}

/* "a -> b -> a": the chain on the busy stack that leads back to name. */
static const char *busy_chain(Sema *S, const void *owner, int index, const char *name)
{
    int start = S->nbusy - 1;
    while (start > 0 && !(S->busy[start].owner == owner && S->busy[start].index == index))
        start--;
    size_t len = strlen(name) + 1;
    for (int i = start; i < S->nbusy; i++)
        len += strlen(S->busy[i].name) + 4;
    char *s = arena_alloc(S->a, len), *o = s;
    for (int i = start; i < S->nbusy; i++)
        o += sprintf(o, "%s -> ", S->busy[i].name);
    strcpy(o, name);
    return s;
}

/* A model param, elaborated on first use so that defaults may refer to
 * params declared later; a reference back to one being elaborated is a cycle. */
static bool ensure_mparam(Sema *S, int k, SrcSpan use)
{
    ModelParam *mp = &S->mparams[k];
    SParam *p = &S->params[mp->sid];
    if (p->visit == VISIT_DONE)
        return p->ok;
    if (p->visit == VISIT_BUSY) {
        sema_error(S, use, "param '%s' depends on itself: %s", mp->name,
                   busy_chain(S, NULL, k, mp->name));
        return false;
    }
    if (busy_full(S, use))
        return false;
    bool quiet = S->silent;
    S->silent = false;   /* a param's own errors are reported whoever asks first */
    p->visit = VISIT_BUSY;
    busy_push(S, NULL, k, mp->name);
    Scope sc = scope_make(S, NULL, CTX_MODEL);
    TExpr t = elab(&sc, p->ast);
    if (need_number(&sc, &t, p->ast)) {
        p->value = t.e;
        p->dim = t.e->dim;
        p->ok = true;
    }
    S->nbusy--;
    p->visit = VISIT_DONE;
    S->silent = quiet;
    return p->ok;
}

/* A neuron param's template default, elaborated on first use likewise. */
static bool ensure_nparam(Sema *S, SemaNeuron *n, int k, SrcSpan use)
{
    NParam *p = &n->params[k];
    if (p->visit == VISIT_DONE)
        return p->ok;
    if (p->visit == VISIT_BUSY) {
        sema_error(S, use, "param '%s' depends on itself: %s", p->name,
                   busy_chain(S, n, k, p->name));
        return false;
    }
    if (busy_full(S, use))
        return false;
    bool quiet = S->silent;
    S->silent = false;
    p->visit = VISIT_BUSY;
    busy_push(S, n, k, p->name);
    Scope sc = scope_make(S, n, CTX_NPARAM);
    TExpr t = elab(&sc, p->ast);
    if (need_number(&sc, &t, p->ast)) {
        if (t.flex)
            flex_set(S, n, &t, DIM_NONE);
        p->value = t.e;
        p->dim = t.e->dim;
        p->ok = true;
    }
    S->nbusy--;
    p->visit = VISIT_DONE;
    S->silent = quiet;
    return p->ok;
}

static const char *ctx_reader(Ctx ctx)
{
    switch (ctx) {
    case CTX_NPARAM: return "a param default";
    case CTX_INIT: return "an initial value";
    case CTX_REFR: return "the refractory period";
    case CTX_MODEL: return "a model-level expression";
    case CTX_EQ: break;
    }
    return "this expression";
}

static TExpr name_state(Scope *sc, const Expr *x, int k)
{
    NState *st = &sc->n->states[k];
    if (sc->ctx != CTX_EQ) {
        sema_error(sc->S, x->span, "%s cannot read the state variable '%s'", ctx_reader(sc->ctx),
                   st->name);
        if (sc->ctx == CTX_INIT)
            sema_hint(sc->S, "initial values may use params, constants, i and uniform()/normal()");
        return poison();
    }
    if (st->dim_how == SDIM_BAD)
        return poison();
    IrExpr *e = ir_new(sc->S->a, IR_STATE, st->dim, x->span);
    e->index = k;
    TExpr t = typed(e);
    if (st->dim_how == SDIM_INFER) {
        t.flex = true;
        t.bind = k;
    }
    return t;
}

static void let_precheck(Sema *S, SemaNeuron *n, int k);

/* Lets are inlined at every use, in the user's scope; their own errors are
 * reported once, by a check of the let on its own. */
static TExpr name_let(Scope *sc, const Expr *x, int k)
{
    NLet *l = &sc->n->lets[k];
    if (!sc->S->silent && l->visit == VISIT_NEW && !busy_full(sc->S, x->span))
        let_precheck(sc->S, sc->n, k);
    if (l->visit == VISIT_NEW && !sc->S->silent)
        return poison();
    if (l->visit == VISIT_BUSY) {
        sema_error(sc->S, x->span, "let '%s' refers to itself: %s", l->name,
                   busy_chain(sc->S, &sc->n->lets, k, l->name));
        return poison();
    }
    if (sc->S->silent ? l->inline_busy : (l->bad || l->inline_busy))
        return poison();
    l->inline_busy = true;
    sc->depth++;
    TExpr t = elab(sc, l->ast);
    sc->depth--;
    l->inline_busy = false;
    return t;
}

static TExpr name_in_neuron(Scope *sc, const Expr *x, const char *name, bool *found)
{
    Sema *S = sc->S;
    int k;
    *found = true;
    if ((k = find_nparam(sc->n, name)) >= 0) {
        if (!ensure_nparam(S, sc->n, k, x->span))
            return poison();
        if (sc->n->params[k].is_list) {
            sema_error(S, x->span, "'%s' is a list and cannot be used in an expression", name);
            return poison();
        }
        return typed(ir_param(S->a, -(k + 1), sc->n->params[k].dim, x->span));
    }
    if ((k = find_state(sc->n, name)) >= 0)
        return name_state(sc, x, k);
    if ((k = find_let(sc->n, name)) >= 0)
        return name_let(sc, x, k);
    *found = false;
    return poison();
}

/* t (equations), dt (everywhere), i (initial values). */
static TExpr name_builtin(Scope *sc, const Expr *x, const char *name, bool *found)
{
    Sema *S = sc->S;
    *found = true;
    if (strcmp(name, "t") == 0) {
        if (sc->ctx == CTX_EQ)
            return typed(ir_new(S->a, IR_TIME, DIM_TIME, x->span));
        sema_error(S, x->span, "the time t can only be used in equations (ODEs, threshold, reset)");
        return poison();
    }
    if (strcmp(name, "dt") == 0) {
        if (sc->ctx == CTX_EQ)
            return typed(ir_new(S->a, IR_DT, DIM_TIME, x->span));
        return typed(ir_param(S->a, S->dt_sid, DIM_TIME, x->span));
    }
    if (strcmp(name, "i") == 0 && (sc->n || sc->ri)) {
        if (sc->ctx == CTX_INIT)
            return typed(ir_new(S->a, IR_INDEX, DIM_NONE, x->span));
        sema_error(S, x->span, "the %s index i can only be used in initial values",
                   sc->ri ? "synapse or neuron" : "neuron");
        return poison();
    }
    *found = false;
    return poison();
}

static void name_unknown(Scope *sc, const Expr *x, const char *name)
{
    Sema *S = sc->S;
    SemaNeuron *n = sc->n;
    if (S->d->max_errors > 0 && S->d->nerrors >= S->d->max_errors) {
        sema_error(S, x->span, "unknown name '%s'", name);   /* counted, not printed */
        return;
    }
    int total = S->nmparams + 3 + (n ? n->nparams + n->nstates + n->nlets : 0), k = 0;
    if (sc->ri)
        total += sema_rule_candidates(sc, NULL);
    const char **c = arena_alloc(S->a, (size_t)total * sizeof *c);
    if (sc->ri)
        k += sema_rule_candidates(sc, c);
    for (int i = 0; n && i < n->nparams; i++)
        c[k++] = n->params[i].name;
    for (int i = 0; n && i < n->nstates; i++)
        c[k++] = n->states[i].name;
    for (int i = 0; n && i < n->nlets; i++)
        c[k++] = n->lets[i].name;
    for (int i = 0; i < S->nmparams; i++)
        c[k++] = S->mparams[i].name;
    c[k++] = "dt";
    sema_error(S, x->span, "unknown name '%s'", name);
    sema_suggest(S, name, c, k);
}

static SemaPop *pop_lookup(Sema *S, const char *region, const char *name)
{
    return sema_find_pop(S, region, name);
}

/* REGION.POP.param or REGION.POP.size, at model level. */
static TExpr name_dotted(Scope *sc, const Expr *x)
{
    Sema *S = sc->S;
    SemaPop *p = x->nparts == 3 ? pop_lookup(S, x->parts[0], x->parts[1]) : NULL;
    if (p && !sc->n && p->size_sid < 0) {
        /* model params are checked before populations exist */
        sema_error(S, x->span, "a model param cannot read a population's params");
        return poison();
    }
    if (sc->n || !p) {
        sema_error(S, x->span, "unknown name '%s'", x->nparts > 0 ? x->parts[0] : "?");
        if (!sc->n && !p)
            sema_hint(S, "a population's param is written REGION.POP.param");
        return poison();
    }
    const char *what = x->parts[2];
    if (strcmp(what, "size") == 0 && p->size_sid >= 0)
        return typed(ir_param(S->a, p->size_sid, DIM_NONE, x->span));
    int k = p->neuron && p->param_sid ? find_nparam(p->neuron, what) : -1;
    if (k < 0 || p->neuron->params[k].is_list) {
        if (p->neuron)   /* an unknown model was reported already */
            sema_error(S, x->span, "population %s (%s) has no param '%s'", p->path,
                       p->neuron->name, what);
        return poison();
    }
    SParam *sp = &S->params[p->param_sid[k]];
    return sp->ok ? typed(ir_param(S->a, p->param_sid[k], sp->dim, x->span)) : poison();
}

static TExpr elab_name(Scope *sc, const Expr *x)
{
    if (x->nparts < 1 || !x->parts)
        return poison();
    bool found = false;
    TExpr t = poison();
    if (sc->ri) {
        t = sema_rule_name(sc, x, &found);
        if (found)
            return t;
    }
    if (sc->proto) {
        t = sema_proto_name(sc, x, &found);
        if (found)
            return t;
    }
    if (x->nparts > 1)
        return name_dotted(sc, x);
    const char *name = x->parts[0];
    if (sc->n) {
        t = name_in_neuron(sc, x, name, &found);
        if (found)
            return t;
    }
    int k = find_mparam(sc->S, name);
    if (k >= 0) {
        if (!ensure_mparam(sc->S, k, x->span))
            return poison();
        SParam *p = &sc->S->params[sc->S->mparams[k].sid];
        return typed(ir_param(sc->S->a, sc->S->mparams[k].sid, p->dim, x->span));
    }
    t = name_builtin(sc, x, name, &found);
    if (!found)
        name_unknown(sc, x, name);
    return t;
}

/* ---- operators ----------------------------------------------------------- */

static TExpr elab_additive(Scope *sc, const Expr *x, TExpr l, TExpr r)
{
    char a[64], b[64];
    bool okl = need_number(sc, &l, x->lhs), okr = need_number(sc, &r, x->rhs);
    if (!okl || !okr)
        return poison();
    EngramDim dim;
    if (!unify(sc, &l, &r, &dim)) {
        if (x->op == OP_ADD)
            sema_error(sc->S, x->span, "cannot add %s and %s", dname(l.e->dim, a, sizeof a),
                       dname(r.e->dim, b, sizeof b));
        else
            sema_error(sc->S, x->span, "cannot subtract %s from %s", dname(r.e->dim, b, sizeof b),
                       dname(l.e->dim, a, sizeof a));
        return poison();
    }
    TExpr t = typed(ir_binary(sc->S->a, x->op, l.e, r.e, dim, x->span));
    t.flex = l.flex && r.flex;
    t.bind = t.flex ? (l.bind >= 0 ? l.bind : r.bind) : -1;
    return t;
}

static TExpr elab_product(Scope *sc, const Expr *x, TExpr l, TExpr r)
{
    bool okl = need_number(sc, &l, x->lhs), okr = need_number(sc, &r, x->rhs);
    /* a state of unknown dimension makes the product unknown (inference) */
    if (!okl || !okr || l.bind >= 0 || r.bind >= 0)
        return poison();
    EngramDim dim;
    if (!dim_combine(sc->S, l.e->dim, r.e->dim, x->op == OP_MUL ? 1 : -1, x->span, &dim))
        return poison();
    return typed(ir_binary(sc->S->a, x->op, l.e, r.e, dim, x->span));
}

/* x ^ n: with a unit, n must be an integer literal (the unit's powers must
 * be known at compile time). */
static TExpr elab_power(Scope *sc, const Expr *x, const Expr *base, const Expr *expo, TExpr l, TExpr r)
{
    char a[64];
    bool okl = need_number(sc, &l, base), okr = need_number(sc, &r, expo);
    if (!okl || !okr || l.bind >= 0 || r.bind >= 0)
        return poison();
    if (r.flex)
        flex_set(sc->S, sc->n, &r, DIM_NONE);
    if (!engram_dim_is_none(r.e->dim)) {
        sema_error(sc->S, expo->span, "an exponent must be dimensionless, got %s",
                   dname(r.e->dim, a, sizeof a));
        return poison();
    }
    EngramDim dim = DIM_NONE;
    if (!l.flex && !engram_dim_is_none(l.e->dim)) {
        double v;
        if (!ast_literal(expo, &v) || v != floor(v) || fabs(v) > 1e6) {
            sema_error(sc->S, expo->span, "the power of a value with a unit (%s) must be an "
                       "integer literal", dname(l.e->dim, a, sizeof a));
            return poison();
        }
        EngramDim one = l.e->dim;
        if (fabs(v) * abs(one.time) > SEMA_MAX_DIM_EXP ||
            fabs(v) * abs(one.voltage) > SEMA_MAX_DIM_EXP ||
            fabs(v) * abs(one.current) > SEMA_MAX_DIM_EXP) {
            sema_error(sc->S, x->span, "the unit of this expression has powers above %d",
                       SEMA_MAX_DIM_EXP);
            return poison();
        }
        dim = engram_dim_pow(one, (int)v);
    } else if (l.flex) {
        flex_set(sc->S, sc->n, &l, DIM_NONE);
    }
    return typed(ir_binary(sc->S->a, OP_POW, l.e, r.e, dim, x->span));
}

static TExpr elab_compare(Scope *sc, const Expr *x, TExpr l, TExpr r)
{
    char a[64], b[64];
    if (!l.e || !r.e)
        return poison();
    EngramDim dim;
    if (l.e->is_bool || r.e->is_bool) {
        if (!(l.e->is_bool && r.e->is_bool && (x->op == OP_EQ || x->op == OP_NE))) {
            sema_error(sc->S, x->span, "cannot compare a condition (true/false) %s",
                       l.e->is_bool && r.e->is_bool ? "by size" : "with a number");
            return poison();
        }
    } else if (!unify(sc, &l, &r, &dim)) {
        sema_error(sc->S, x->span, "cannot compare %s and %s", dname(l.e->dim, a, sizeof a),
                   dname(r.e->dim, b, sizeof b));
        return poison();
    }
    return typed(ir_binary(sc->S->a, x->op, l.e, r.e, DIM_NONE, x->span));
}

static bool need_condition(Scope *sc, const TExpr *t, const Expr *ast, const char *op)
{
    char a[96];
    if (!t->e)
        return false;
    if (!t->e->is_bool) {
        sema_error(sc->S, ast->span, "'%s' needs a condition (true/false), got %s", op,
                   sema_dim_describe(t->e->dim, a, sizeof a));
        return false;
    }
    return true;
}

static TExpr elab_logic(Scope *sc, const Expr *x, TExpr l, TExpr r)
{
    const char *op = x->op == OP_AND ? "and" : "or";
    bool okl = need_condition(sc, &l, x->lhs, op), okr = need_condition(sc, &r, x->rhs, op);
    if (!okl || !okr)
        return poison();
    return typed(ir_binary(sc->S->a, x->op, l.e, r.e, DIM_NONE, x->span));
}

static TExpr elab_unary(Scope *sc, const Expr *x)
{
    TExpr t = elab(sc, x->lhs);
    if (!t.e)
        return poison();
    if (x->op == OP_NOT) {
        if (!need_condition(sc, &t, x->lhs, "not"))
            return poison();
        IrExpr *e = ir_unary(sc->S->a, OP_NOT, t.e, x->span);
        e->dim = DIM_NONE;
        return typed(e);
    }
    if (!need_number(sc, &t, x->lhs))
        return poison();
    TExpr r = typed(ir_unary(sc->S->a, OP_NEG, t.e, x->span));
    r.flex = t.flex;
    r.bind = t.bind;
    return r;
}

static TExpr elab_binary(Scope *sc, const Expr *x)
{
    TExpr l = elab(sc, x->lhs), r = elab(sc, x->rhs);
    switch (x->op) {
    case OP_ADD: case OP_SUB: return elab_additive(sc, x, l, r);
    case OP_MUL: case OP_DIV: return elab_product(sc, x, l, r);
    case OP_POW: return elab_power(sc, x, x->lhs, x->rhs, l, r);
    case OP_AND: case OP_OR: return elab_logic(sc, x, l, r);
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
        return elab_compare(sc, x, l, r);
    case OP_NOT: case OP_NEG: break;
    }
    return poison();
}

/* ---- argument binding ---------------------------------------------------- */

/* Matches call arguments to a signature: positional first, then by name.
 * got[k] receives the argument for names[k]; the first nreq are required. */
static bool bind_args(Sema *S, const char *fname, SrcSpan at, Arg *const *args, int nargs,
                      const char *const *names, int nreq, int nall, const Arg **got)
{
    bool ok = true, named = false;
    int pos = 0;
    for (int k = 0; k < nall; k++)
        got[k] = NULL;
    for (int i = 0; i < nargs; i++) {
        const Arg *a = args[i];
        int slot = -1;
        if (!a || !a->value)
            continue;
        if (!a->name) {
            if (named || pos >= nall) {
                sema_error(S, a->value->span, named ? "a positional argument cannot follow a named one"
                           : "too many arguments for %s() (it takes %d)", fname, nall);
                ok = false;
                continue;
            }
            slot = pos++;
        } else {
            named = true;
            for (int k = 0; k < nall; k++)
                if (strcmp(names[k], a->name) == 0)
                    slot = k;
            if (slot < 0) {
                sema_error(S, a->name_span, "%s() has no argument '%s'", fname, a->name);
                sema_suggest(S, a->name, names, nall);
                ok = false;
                continue;
            }
        }
        if (got[slot]) {
            sema_error(S, a->name ? a->name_span : a->value->span,
                       "argument '%s' of %s() is given twice", names[slot], fname);
            ok = false;
            continue;
        }
        got[slot] = a;
    }
    for (int k = 0; k < nreq; k++) {
        if (!got[k] && ok) {
            sema_error(S, at, "%s() needs the argument '%s'", fname, names[k]);
            ok = false;
        }
    }
    return ok;
}

/* ---- calls --------------------------------------------------------------- */

static const char *const uniform_args[] = {"low", "high"};
static const char *const normal_args[] = {"mean", "sd", "min", "max"};

static bool is_dist_name(const char *callee)
{
    return strcmp(callee, "uniform") == 0 || strcmp(callee, "normal") == 0;
}

/* Binds the arguments of uniform(low, high) / normal(mean, sd, min=, max=). */
static bool dist_bind(Sema *S, const Expr *x, EngramDistKind *kind, const Arg **got)
{
    bool uni = strcmp(x->callee, "uniform") == 0;
    *kind = uni ? ENGRAM_DIST_UNIFORM : ENGRAM_DIST_NORMAL;
    return bind_args(S, x->callee, x->span, x->args, x->nargs, uni ? uniform_args : normal_args,
                     2, uni ? 2 : 4, got);
}

/* uniform()/normal() inside an initial value: one draw per neuron.  All
 * arguments share one dimension. */
static TExpr elab_dist(Scope *sc, const Expr *x)
{
    char a[64], b[64];
    const Arg *got[4] = {0};
    EngramDistKind kind;
    if (!dist_bind(sc->S, x, &kind, got))
        return poison();
    TExpr t[4];
    int first = -1;
    bool ok = true;
    for (int k = 0; k < 4; k++) {
        t[k] = got[k] ? elab(sc, got[k]->value) : poison();
        if (got[k] && !need_number(sc, &t[k], got[k]->value))
            ok = false;
        if (got[k] && t[k].e && !t[k].flex && first < 0)
            first = k;
    }
    EngramDim dim = first >= 0 ? t[first].e->dim : DIM_NONE;
    for (int k = 0; ok && k < 4; k++) {
        if (!got[k])
            continue;
        if (t[k].flex)
            flex_set(sc->S, sc->n, &t[k], dim);
        if (!engram_dim_eq(t[k].e->dim, dim)) {
            sema_error(sc->S, got[k]->value->span, "%s() mixes %s and %s", x->callee,
                       dname(dim, a, sizeof a), dname(t[k].e->dim, b, sizeof b));
            ok = false;
        }
    }
    if (!ok)
        return poison();
    IrExpr *e = ir_new(sc->S->a, kind == ENGRAM_DIST_UNIFORM ? IR_UNIFORM : IR_NORMAL, dim, x->span);
    e->a = t[0].e;
    e->b = t[1].e;
    e->c = got[2] ? t[2].e : NULL;
    e->d = got[3] ? t[3].e : NULL;
    return typed(e);
}

/* Dimension rule of a builtin, given its elaborated arguments. */
static bool builtin_dim(Scope *sc, const Expr *x, const BuiltinFn *f, TExpr *t, EngramDim *out)
{
    char a[64], b[64];
    EngramDim d0 = t[0].e->dim;
    switch (f->fn) {
    case ENGRAM_FN_ABS: case ENGRAM_FN_FLOOR: case ENGRAM_FN_CEIL: case ENGRAM_FN_ROUND:
        *out = d0;
        return true;
    case ENGRAM_FN_SQRT:
        if (d0.time % 2 || d0.voltage % 2 || d0.current % 2) {
            sema_error(sc->S, x->span, "sqrt() of %s has no unit (its powers are not even)",
                       dname(d0, a, sizeof a));
            return false;
        }
        *out = engram_dim(d0.time / 2, d0.voltage / 2, d0.current / 2);
        return true;
    case ENGRAM_FN_MIN: case ENGRAM_FN_MAX: case ENGRAM_FN_CLIP:
        for (int k = 1; k < f->arity; k++) {
            if (!unify(sc, &t[0], &t[k], out)) {
                sema_error(sc->S, x->span, "%s() mixes %s and %s", f->name,
                           dname(t[0].e->dim, a, sizeof a), dname(t[k].e->dim, b, sizeof b));
                return false;
            }
        }
        *out = t[0].e->dim;
        return true;
    case ENGRAM_FN_POW:
        return true;   /* handled by elab_call as x ^ n */
    default:
        if (!engram_dim_is_none(d0)) {
            sema_error(sc->S, x->span, "%s() needs a dimensionless argument, got %s", f->name,
                       dname(d0, a, sizeof a));
            return false;
        }
        *out = DIM_NONE;
        return true;
    }
}

static const BuiltinFn *call_lookup(Scope *sc, const Expr *x)
{
    const BuiltinFn *f = ir_builtin_find(x->callee);
    if (!f) {
        int n = 0;
        while (ir_builtin_names[n])
            n++;
        sema_error(sc->S, x->callee_span, "unknown function '%s'", x->callee);
        sema_suggest(sc->S, x->callee, ir_builtin_names, n);
        return NULL;
    }
    for (int i = 0; i < x->nargs; i++) {
        if (x->args[i] && x->args[i]->name) {
            sema_error(sc->S, x->args[i]->name_span, "%s() takes no named arguments", f->name);
            return NULL;
        }
    }
    if (x->nargs != f->arity) {
        sema_error(sc->S, x->span, "%s() takes %d argument%s, got %d", f->name, f->arity,
                   f->arity == 1 ? "" : "s", x->nargs);
        return NULL;
    }
    return f;
}

static TExpr elab_call(Scope *sc, const Expr *x)
{
    if (!x->callee)
        return poison();
    if (sc->proto) {
        bool found;
        TExpr m = sema_proto_call(sc, x, &found);
        if (found)
            return m;
    }
    if (is_dist_name(x->callee)) {
        if (sc->dists)
            return elab_dist(sc, x);
        sema_error(sc->S, x->span, "%s() draws random values; it is only allowed in initial "
                   "values, weights and delays", x->callee);
        return poison();
    }
    const BuiltinFn *f = call_lookup(sc, x);
    if (!f)
        return poison();
    TExpr t[3];
    bool ok = true;
    for (int k = 0; k < f->arity; k++) {
        const Expr *arg = x->args[k] ? x->args[k]->value : NULL;
        t[k] = elab(sc, arg);
        if (!arg || !need_number(sc, &t[k], arg) || (t[k].bind >= 0 && f->arity == 1))
            ok = false;
    }
    if (!ok)
        return poison();
    if (f->fn == ENGRAM_FN_POW) {
        TExpr r = elab_power(sc, x, x->args[0]->value, x->args[1]->value, t[0], t[1]);
        if (r.e) {
            r.e->kind = IR_CALL;
            r.e->fn = ENGRAM_FN_POW;
        }
        return r;
    }
    for (int k = 0; k < f->arity; k++)
        if (t[k].flex && f->arity == 1)
            flex_set(sc->S, sc->n, &t[k], DIM_NONE);
    EngramDim dim;
    if (!builtin_dim(sc, x, f, t, &dim))
        return poison();
    IrExpr *e = ir_new(sc->S->a, IR_CALL, dim, x->span);
    e->fn = f->fn;
    e->a = t[0].e;
    e->b = f->arity > 1 ? t[1].e : NULL;
    e->c = f->arity > 2 ? t[2].e : NULL;
    return typed(e);
}

/* ---- elaboration --------------------------------------------------------- */

static TExpr elab_number(Scope *sc, const Expr *x)
{
    if (!isfinite(x->value)) {
        sema_error(sc->S, x->span, "number out of range");
        return poison();
    }
    TExpr t = typed(ir_const(sc->S->a, x->value, DIM_NONE, x->span));
    t.flex = x->value == 0;
    return t;
}

static TExpr elab_quantity(Scope *sc, const Expr *x)
{
    double scale;
    EngramDim dim;
    if (!x->unit || !engram_unit_lookup(x->unit, strlen(x->unit), &scale, &dim)) {
        sema_error(sc->S, x->unit_span, "unknown unit '%s'", x->unit ? x->unit : "?");
        return poison();
    }
    double v = x->value * scale;
    if (!isfinite(v)) {
        sema_error(sc->S, x->span, "number out of range");
        return poison();
    }
    return typed(ir_const(sc->S->a, v, dim, x->span));
}

static TExpr elab(Scope *sc, const Expr *x)
{
    if (!x || sc->dead)
        return poison();
    if (!sc->root)
        sc->root = x;
    if (sc->depth >= SEMA_MAX_DEPTH) {
        sema_error(sc->S, x->span, "expression is nested too deeply");
        sc->dead = true;
        return poison();
    }
    if (++sc->nodes > SEMA_MAX_NODES) {
        sema_error(sc->S, sc->root->span, "expression is too large once its lets are inlined "
                   "(more than %d terms)", SEMA_MAX_NODES);
        sc->dead = true;
        return poison();
    }
    sc->depth++;
    TExpr t = poison();
    switch (x->kind) {
    case EXPR_NUMBER: t = elab_number(sc, x); break;
    case EXPR_QUANTITY: t = elab_quantity(sc, x); break;
    case EXPR_BOOL: {
        IrExpr *e = ir_const(sc->S->a, x->value != 0, DIM_NONE, x->span);
        e->is_bool = true;
        t = typed(e);
        break;
    }
    case EXPR_NAME: t = elab_name(sc, x); break;
    case EXPR_UNARY: t = elab_unary(sc, x); break;
    case EXPR_BINARY: t = elab_binary(sc, x); break;
    case EXPR_CALL: t = elab_call(sc, x); break;
    case EXPR_LIST:
        sema_error(sc->S, x->span, "a list is only allowed as the times or indices of a "
                   "spike_times source");
        break;
    case EXPR_INDEX:
        sema_error(sc->S, x->span, "an ensemble (POP[k]) is only allowed as a stimulus target, "
                   "a measure's argument or the elements of a sequence");
        break;
    case EXPR_PAIR:
        sema_error(sc->S, x->span, "'->' is only allowed in weight(A -> B) and between the two "
                   "ends of a projection");
        break;
    }
    sc->depth--;
    return t;
}

/* ---- the parameter table ------------------------------------------------- */

static int sparam_lookup(const Sema *S, const char *path)
{
    return namemap_get(&S->paths, path);
}

/* A new parameter; two with one path would be one knob for --set, so that
 * is an error (e.g. a projection named like a population param). */
static int sparam_new(Sema *S, const char *path, EngramDim dim, uint32_t flags, SrcSpan span)
{
    int old = sparam_lookup(S, path);
    if (old >= 0) {
        sema_error(S, span, "two parameters are called '%s'", path);
        sema_note(S, S->params[old].span, "the other '%s' comes from here", path);
    }
    SParam *p = SEMA_PUSH(S->a, S->params, S->nparams, S->capparams);
    memset(p, 0, sizeof *p);
    p->path = path;
    p->dim = dim;
    p->ok = true;
    p->flags = flags;
    p->span = span;
    p->visit = VISIT_DONE;
    if (old < 0)
        namemap_put(S->a, &S->paths, path, S->nparams - 1);
    return S->nparams - 1;
}

/* Constant folding through parameter defaults, memoised per param (a chain
 * of `p2 = p1 + p1` would otherwise cost 2^n). */
static bool fold_param(void *ctx, int index, double *out)
{
    Sema *S = ctx;
    if (index < 0 || index >= S->nparams)
        return false;
    SParam *p = &S->params[index];
    if (p->fold_state == 2) {
        *out = p->fold_value;
        return true;
    }
    if (p->fold_state == 1 || p->fold_state == 3 || !p->value || (p->flags & ENGRAM_PARAM_LIST))
        return false;
    if (S->fold_depth >= SEMA_MAX_CHAIN)
        return false;   /* too deep to fold: not known, not memoised */
    p->fold_state = 1;
    S->fold_depth++;
    bool ok = ir_eval(p->value, fold_param, S, &p->fold_value) && isfinite(p->fold_value);
    S->fold_depth--;
    p->fold_state = ok ? 2 : 3;
    *out = p->fold_value;
    return ok;
}

static bool fold(Sema *S, const IrExpr *e, double *out)
{
    return ir_eval(e, fold_param, S, out) && isfinite(*out);
}

static bool fold_sid(Sema *S, int sid, double *out)
{
    return sid >= 0 && fold_param(S, sid, out);
}

/* ---- neurons: tables ----------------------------------------------------- */

typedef struct NeuronItems {
    Stmt *thr, *reset, *refr, *method;
} NeuronItems;

static bool reserved_local(Sema *S, const Stmt *s)
{
    static const char *const why[] = {"t", "the time", "dt", "the time step", "i", "the neuron index"};
    for (int k = 0; k < 6; k += 2) {
        if (strcmp(s->name, why[k]) == 0) {
            sema_error(S, s->name_span, "'%s' is a built-in name (%s)", s->name, why[k + 1]);
            return true;
        }
    }
    if (s->kind == STMT_PARAM && strcmp(s->name, "size") == 0) {
        sema_error(S, s->name_span, "'size' is reserved: REGION.POP.size is a population's size");
        return true;
    }
    return false;
}

static const SrcSpan *local_span(const SemaNeuron *n, const char *name)
{
    int k;
    if ((k = find_nparam(n, name)) >= 0)
        return &n->params[k].span;
    if ((k = find_state(n, name)) >= 0)
        return &n->states[k].span;
    if ((k = find_let(n, name)) >= 0)
        return &n->lets[k].span;
    return NULL;
}

static void add_local(Sema *S, SemaNeuron *n, Stmt *s)
{
    if (!s->name || reserved_local(S, s))
        return;
    const SrcSpan *old = local_span(n, s->name);
    if (old) {
        sema_error(S, s->name_span, "'%s' is already defined in neuron '%s'", s->name, n->name);
        sema_note(S, *old, "the first '%s' is here", s->name);
        return;
    }
    int kind = s->kind == STMT_PARAM ? LOCAL_PARAM : s->kind == STMT_STATE ? LOCAL_STATE : LOCAL_LET;
    int index = kind == LOCAL_PARAM ? n->nparams : kind == LOCAL_STATE ? n->nstates : n->nlets;
    if (index >= (1 << LOCAL_SHIFT) - 1) {
        sema_error(S, s->name_span, "too many definitions in neuron '%s'", n->name);
        return;
    }
    namemap_put(S->a, &n->locals, s->name, kind << LOCAL_SHIFT | index);
    if (s->kind == STMT_PARAM) {
        NParam *p = SEMA_PUSH(S->a, n->params, n->nparams, n->capparams);
        *p = (NParam){.name = s->name, .span = s->name_span, .ast = s->expr};
    } else if (s->kind == STMT_STATE) {
        NState *st = SEMA_PUSH(S->a, n->states, n->nstates, n->capstates);
        *st = (NState){.name = s->name, .span = s->name_span, .init_ast = s->expr};
    } else {
        NLet *l = SEMA_PUSH(S->a, n->lets, n->nlets, n->caplets);
        *l = (NLet){.name = s->name, .span = s->name_span, .ast = s->expr};
    }
}

static void single_item(Sema *S, Stmt **slot, Stmt *s, const char *what)
{
    if (*slot) {
        sema_error(S, s->span, "%s is given twice", what);
        sema_note(S, (*slot)->span, "the first %s is here", what);
        return;
    }
    *slot = s;
}

/* The variable of `dv/dt = ...`: the parser passes "v" (or "dv/dt"). */
static const char *ode_var(Arena *a, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n > 4 && name[0] == 'd' && strcmp(name + n - 3, "/dt") == 0)
        return arena_strndup(a, name + 1, n - 4);
    return name;
}

static void suggest_state(Sema *S, const SemaNeuron *n, const char *name)
{
    const char **c = arena_alloc(S->a, (size_t)(n->nstates + 1) * sizeof *c);
    for (int i = 0; i < n->nstates; i++)
        c[i] = n->states[i].name;
    sema_suggest(S, name, c, n->nstates);
}

static void bind_ode(Sema *S, SemaNeuron *n, Stmt *s)
{
    const char *var = ode_var(S->a, s->name);
    int k = var ? find_state(n, var) : -1;
    if (k < 0) {
        if (var && find_nparam(n, var) >= 0) {
            sema_error(S, s->name_span, "'%s' is a param; only state variables have ODEs", var);
        } else {
            sema_error(S, s->name_span, "d%s/dt: '%s' is not a state variable", var ? var : "?",
                       var ? var : "?");
            if (var)
                suggest_state(S, n, var);
        }
        return;
    }
    NState *st = &n->states[k];
    if (st->ode_stmt) {
        sema_error(S, s->span, "'%s' has two ODEs", var);
        sema_note(S, st->ode_stmt->span, "the first is here");
        return;
    }
    st->ode_stmt = s;
}

static void neuron_tables(Sema *S, SemaNeuron *n, NeuronItems *it)
{
    Decl *d = n->decl;
        for (int i = 0; i < d->nbody; i++) {
        Stmt *s = d->body[i];
        if (!s)
            continue;
        switch (s->kind) {
        case STMT_PARAM: case STMT_STATE: case STMT_LET: add_local(S, n, s); break;
        case STMT_THRESHOLD: single_item(S, &it->thr, s, "threshold"); break;
        case STMT_RESET: single_item(S, &it->reset, s, "reset"); break;
        case STMT_REFRACTORY: single_item(S, &it->refr, s, "refractory"); break;
        case STMT_METHOD: single_item(S, &it->method, s, "method"); break;
        case STMT_ODE: case STMT_INPUT: break;
        default: sema_error(S, s->span, "this item does not belong in a neuron"); break;
        }
    }
    for (int i = 0; i < d->nbody; i++)
        if (d->body[i] && d->body[i]->kind == STMT_ODE)
            bind_ode(S, n, d->body[i]);
}

/* ---- neurons: lists and builtin sources ---------------------------------- */

/* A list of constants (spike times, neuron indices), in internal units. */
static bool list_values(Sema *S, const Expr *x, EngramDim want, bool indices, double **out, int *nout)
{
    Scope sc = scope_make(S, NULL, CTX_MODEL);
    double *v = arena_alloc(S->a, (size_t)(x->nargs + 1) * sizeof *v);
    bool ok = true;
    for (int i = 0; i < x->nargs; i++) {
        const Expr *el = x->args[i] ? x->args[i]->value : NULL;
        TExpr t = elab(&sc, el);
        if (!el || !expect_dim(S, NULL, &t, want, el, NULL)) {
            ok = false;
            continue;
        }
        if (!ir_eval(t.e, NULL, NULL, &v[i]) || !isfinite(v[i])) {
            sema_error(S, el->span, "list elements must be constants");
            ok = false;
        } else if (v[i] < 0 || (indices && v[i] != floor(v[i]))) {
            sema_error(S, el->span, indices ? "a neuron index must be a whole number >= 0, got %g"
                       : "a spike time cannot be negative, got %g ms", v[i]);
            ok = false;
        }
    }
    *out = v;
    *nout = x->nargs;
    return ok;
}

static bool is_list_param(const SemaNeuron *n, const char *name)
{
    return n->kind == ENGRAM_POP_SPIKE_TIMES &&
           (strcmp(name, "times") == 0 || strcmp(name, "indices") == 0);
}

static void builtin_lists(Sema *S, SemaNeuron *n)
{
    for (int k = 0; k < n->nparams; k++) {
        NParam *p = &n->params[k];
        if (!is_list_param(n, p->name))
            continue;
        p->is_list = true;
        p->visit = VISIT_DONE;
        p->dim = p->name[0] == 't' ? DIM_TIME : DIM_NONE;
        if (!p->ast || p->ast->kind != EXPR_LIST) {
            sema_error(S, p->ast ? p->ast->span : p->span, "'%s' must be a list, e.g. %s", p->name,
                       p->name[0] == 't' ? "[10 ms, 20 ms]" : "[0, 1]");
            continue;
        }
        p->ok = list_values(S, p->ast, p->dim, p->name[0] == 'i', &p->list, &p->nlist);
    }
}

/* What a builtin source must declare: poisson a rate, spike_times times. */
static void builtin_check(Sema *S, SemaNeuron *n)
{
    static const char *const kinds[] = {"poisson", "spike_times"};
    const Decl *d = n->decl;
    if (strcmp(d->builtin, "poisson") == 0) {
        n->kind = ENGRAM_POP_POISSON;
    } else if (strcmp(d->builtin, "spike_times") == 0) {
        n->kind = ENGRAM_POP_SPIKE_TIMES;
    } else {
        sema_error(S, d->builtin_span, "unknown builtin source '%s'", d->builtin);
        const char *near = diag_suggest(d->builtin, kinds, 2);
        sema_hint(S, near ? "did you mean '%s'?" : "the builtin sources are %s and spike_times",
                  near ? near : "poisson");
        n->poisoned = true;
        return;
    }
    builtin_lists(S, n);
    const char *need = n->kind == ENGRAM_POP_POISSON ? "rate" : "times";
    int k = find_nparam(n, need);
    if (k < 0) {
        sema_error(S, d->name_span, "builtin %s source '%s' needs a param '%s'", d->builtin, n->name, need);
        sema_hint(S, n->kind == ENGRAM_POP_POISSON ? "declare it, e.g. `param rate = 10 Hz`"
                  : "declare it, e.g. `param times = [10 ms, 20 ms]`");
        return;
    }
    if (n->kind == ENGRAM_POP_POISSON && ensure_nparam(S, n, k, n->params[k].span)) {
        TExpr t = typed(n->params[k].value);
        expect_dim(S, n, &t, engram_dim(-1, 0, 0), n->params[k].ast, NULL);
    }
}

/* ---- neurons: equations -------------------------------------------------- */

static void let_precheck(Sema *S, SemaNeuron *n, int k)
{
    NLet *l = &n->lets[k];
    l->visit = VISIT_BUSY;
    busy_push(S, &n->lets, k, l->name);
    Scope sc = scope_make(S, n, CTX_EQ);
    TExpr t = elab(&sc, l->ast);
    l->bad = !t.e;
    S->nbusy--;
    l->visit = VISIT_DONE;
}

static void check_ode(Sema *S, SemaNeuron *n, int k, bool final)
{
    char a[64], b[64];
    NState *st = &n->states[k];
    Stmt *s = st->ode_stmt;
    Scope sc = scope_make(S, n, CTX_EQ);
    TExpr t = elab(&sc, s->expr);
    if (!need_number(&sc, &t, s->expr) || st->dim_how == SDIM_BAD)
        return;
    if (st->dim_how == SDIM_INFER) {
        EngramDim d;
        if (!t.flex && t.bind < 0 && dim_combine(S, t.e->dim, DIM_TIME, 1, s->span, &d))
            bind_state(S, n, k, d);
        return;
    }
    EngramDim want;
    if (!dim_combine(S, st->dim, DIM_TIME, -1, s->span, &want))
        return;
    if (t.flex) {
        flex_set(S, n, &t, want);
    } else if (!engram_dim_eq(t.e->dim, want)) {
        sema_error(S, s->expr->span, "d%s/dt must be in %s (the unit of %s per time), got %s",
                   st->name, dname(want, a, sizeof a), st->name, dname(t.e->dim, b, sizeof b));
        if (engram_dim_eq(t.e->dim, st->dim))
            sema_hint(S, "divide by a time constant, e.g. (...) / tau");
        return;
    }
    if (final)
        st->ode = t.e;
}

static void check_threshold(Sema *S, SemaNeuron *n, const Stmt *s, bool final)
{
    char a[96];
    if (!s)
        return;
    Scope sc = scope_make(S, n, CTX_EQ);
    TExpr t = elab(&sc, s->expr);
    if (t.e && !t.e->is_bool) {
        sema_error(S, s->expr->span, "the threshold must be a condition such as `v > v_th`, got %s",
                   sema_dim_describe(t.e->dim, a, sizeof a));
        return;
    }
    if (final)
        n->threshold = t.e;
}

static int reset_target(Sema *S, SemaNeuron *n, const Stmt *as, bool final)
{
    int k = find_state(n, as->name);
    if (k >= 0 || !final)
        return k;
    if (find_nparam(n, as->name) >= 0) {
        sema_error(S, as->name_span, "cannot assign to param '%s': a reset assigns state variables",
                   as->name);
    } else {
        sema_error(S, as->name_span, "unknown state variable '%s'", as->name);
        suggest_state(S, n, as->name);
    }
    return -1;
}

static void check_assign(Sema *S, SemaNeuron *n, const Stmt *as, bool final, int *cap)
{
    int k = reset_target(S, n, as, final);
    Scope sc = scope_make(S, n, CTX_EQ);
    TExpr t = elab(&sc, as->expr);
    if (k < 0 || !need_number(&sc, &t, as->expr))
        return;
    NState *st = &n->states[k];
    bool ok;
    if (as->assign_op == ASSIGN_MUL) {
        ok = expect_dim(S, n, &t, DIM_NONE, as->expr, "`*=` scales a variable by a dimensionless factor");
    } else if (st->dim_how == SDIM_INFER) {
        if (!t.flex)
            bind_state(S, n, k, t.e->dim);
        return;
    } else {
        ok = st->dim_how == SDIM_KNOWN && expect_dim(S, n, &t, st->dim, as->expr, NULL);
    }
    if (ok && final) {
        IrAssign *r = SEMA_PUSH(S->a, n->reset, n->nreset, *cap);
        *r = (IrAssign){k, as->assign_op, t.e};
    }
}

static void check_reset(Sema *S, SemaNeuron *n, const Stmt *s, bool final)
{
    int cap = 0;
    if (final) {
        n->reset = NULL;
        n->nreset = 0;
    }
    for (int i = 0; s && i < s->nbody; i++)
        if (s->body[i] && s->body[i]->kind == STMT_ASSIGN && s->body[i]->name)
            check_assign(S, n, s->body[i], final, &cap);
}

static void check_equations(Sema *S, SemaNeuron *n, const NeuronItems *it, bool final)
{
    for (int k = 0; k < n->nstates; k++)
        if (n->states[k].ode_stmt)
            check_ode(S, n, k, final);
    check_threshold(S, n, it->thr, final);
    check_reset(S, n, it->reset, final);
    for (int k = 0; !final && k < n->nlets; k++) {
        Scope sc = scope_make(S, n, CTX_EQ);
        elab(&sc, n->lets[k].ast);
    }
}

/* ---- neurons: state dimensions ------------------------------------------- */

static void check_inits(Sema *S, SemaNeuron *n)
{
    for (int k = 0; k < n->nstates; k++) {
        NState *st = &n->states[k];
        Scope sc = scope_make(S, n, CTX_INIT);
        TExpr t = elab(&sc, st->init_ast);
        st->init = t.e;
        if (!need_number(&sc, &t, st->init_ast))
            st->dim_how = SDIM_BAD;
        else if (t.flex)
            st->dim_how = SDIM_INFER;
        else
            st->dim = t.e->dim;
    }
}

/* Quiet passes over the equations bind states that start at a bare 0;
 * each pass binds at least one or stops, so nstates + 1 passes suffice
 * (capped: each pass costs a walk over every equation). */
static void infer_dims(Sema *S, SemaNeuron *n, const NeuronItems *it)
{
    bool any = false;
    for (int k = 0; k < n->nstates; k++)
        any |= n->states[k].dim_how == SDIM_INFER;
    if (any) {
        S->silent = true;
        for (int pass = 0; pass <= n->nstates && pass < SEMA_MAX_INFER_PASSES; pass++) {
            S->changed = false;
            check_equations(S, n, it, false);
            if (!S->changed)
                break;
        }
        S->silent = false;
    }
    for (int k = 0; k < n->nstates; k++) {
        NState *st = &n->states[k];
        if (st->dim_how == SDIM_INFER) {
            st->dim = DIM_NONE;
            st->dim_how = SDIM_KNOWN;
        }
        if (st->init && !st->init->is_bool && !engram_dim_eq(st->init->dim, st->dim))
            flex_set_dim(st->init, st->dim);
    }
}

/* ---- neurons: ports, refractoriness, method ------------------------------ */

static void check_ports(Sema *S, SemaNeuron *n)
{
    const Decl *d = n->decl;
    for (int i = 0; i < d->nbody; i++) {
        const Stmt *s = d->body[i];
        if (!s || s->kind != STMT_INPUT || !s->name || !s->target)
            continue;
        int old = find_port(n, s->name);
        if (old >= 0) {
            sema_error(S, s->name_span, "port '%s' is declared twice", s->name);
            sema_note(S, n->ports[old].span, "the first is here");
            continue;
        }
        int k = find_state(n, s->target);
        if (k < 0 && find_nparam(n, s->target) >= 0) {
            sema_error(S, s->target_span, "port '%s' must feed a state variable, but '%s' is a param",
                       s->name, s->target);
        } else if (k < 0) {
            sema_error(S, s->target_span, "unknown state variable '%s'", s->target);
            suggest_state(S, n, s->target);
        }
        NPort *p = SEMA_PUSH(S->a, n->ports, n->nports, n->capports);
        *p = (NPort){s->name, s->name_span, k};
    }
}

static void check_refractory(Sema *S, SemaNeuron *n, const Stmt *s)
{
    if (!s)
        return;
    Scope sc = scope_make(S, n, CTX_REFR);
    TExpr t = elab(&sc, s->expr);
    if (expect_dim(S, n, &t, DIM_TIME, s->expr, NULL))
        n->refractory = t.e;
}

/* Returns the method named, or ENGRAM_METHOD_NONE when there is no `method`. */
static EngramMethod check_method_name(Sema *S, const Stmt *s)
{
    static const char *const names[] = {"exact", "euler", "rk2", "rk4"};
    if (!s || !s->name)
        return ENGRAM_METHOD_NONE;
    for (int i = 0; i < 4; i++)
        if (strcmp(s->name, names[i]) == 0)
            return (EngramMethod)i;
    sema_error(S, s->name_span, "unknown method '%s'", s->name);
    const char *near = diag_suggest(s->name, names, 4);
    sema_hint(S, near ? "did you mean '%s'?" : "the methods are %s, euler, rk2 and rk4",
              near ? near : "exact");
    return ENGRAM_METHOD_NONE;
}

/* Exact integration is the default when the system is linear; otherwise
 * the model must say how to integrate. */
static void choose_method(Sema *S, SemaNeuron *n, const Stmt *ms, bool clean)
{
    EngramMethod named = check_method_name(S, ms);
    bool any_ode = false;
    for (int k = 0; k < n->nstates; k++)
        any_ode |= n->states[k].ode != NULL || n->states[k].ode_stmt != NULL;
    if (!any_ode) {
        n->method = ENGRAM_METHOD_NONE;
        return;
    }
    n->method = named == ENGRAM_METHOD_NONE ? ENGRAM_METHOD_EXACT : named;
    if (n->method != ENGRAM_METHOD_EXACT || !clean)
        return;
    const char *why = NULL;
    const IrExpr *bad = sema_linearize(S, n, &why);
    if (!bad)
        return;
    if (named == ENGRAM_METHOD_EXACT) {
        sema_error(S, bad->span, "method exact needs linear ODEs with constant coefficients, "
                   "but this is %s", why);
        sema_hint(S, "use `method rk2` (or `euler`, `rk4`) for a non-linear system");
    } else {
        sema_error(S, bad->span, "the ODEs of neuron '%s' are not linear (this is %s), so they "
                   "cannot be integrated exactly", n->name, why);
        sema_hint(S, "add `method rk2` (or `euler`, `rk4`) to neuron '%s'", n->name);
    }
}

static void mark_held(SemaNeuron *n, const IrExpr *e)
{
    if (!e)
        return;
    if (e->kind == IR_STATE && e->index >= 0 && e->index < n->nstates)
        n->states[e->index].held = true;
    mark_held(n, e->a);
    mark_held(n, e->b);
    mark_held(n, e->c);
    mark_held(n, e->d);
}

void sema_check_neuron(Sema *S, SemaNeuron *n)
{
    if (n->checked)
        return;
    n->checked = true;
    int errors = S->d->nerrors;
    NeuronItems it = {0};
    neuron_tables(S, n, &it);
    if (n->decl->builtin) {
        builtin_check(S, n);
    }
    for (int k = 0; k < n->nparams; k++)
        ensure_nparam(S, n, k, n->params[k].span);
    if (!n->decl->builtin) {
        check_inits(S, n);
        infer_dims(S, n, &it);
        for (int k = 0; k < n->nlets; k++)
            if (n->lets[k].visit == VISIT_NEW)
                let_precheck(S, n, k);
        check_equations(S, n, &it, true);
        check_refractory(S, n, it.refr);
        check_ports(S, n);
        mark_held(n, n->threshold);
        choose_method(S, n, it.method, S->d->nerrors == errors);
    } else {
        n->method = ENGRAM_METHOD_NONE;
    }
    if (S->d->nerrors != errors)
        n->poisoned = true;
}

/* ---- populations --------------------------------------------------------- */

static void suggest_neuron(Sema *S, const char *name)
{
    Module *m = S->main;
    const char **c = arena_alloc(S->a, (size_t)(m->nscope + 1) * sizeof *c);
    for (int i = 0; i < m->nscope; i++)
        c[i] = m->scope[i].name;
    if (m->nscope == 0)
        sema_hint(S, "define it with `neuron %s { ... }` or import it, e.g. `use std.neurons (LIF)`",
                  name);
    else
        sema_suggest(S, name, c, m->nscope);
}

/* Pass 1: the neuron model and one parameter per neuron param, so that any
 * population's params can be referenced (REGION.POP.x) before values exist. */
static void pop_params(Sema *S, SemaPop *p)
{
    const Decl *d = p->decl;
    SrcSpan size_span = d->expr ? d->expr->span : d->span;
    p->size_sid = sparam_new(S, arena_printf(S->a, "%s.size", p->path), DIM_NONE,
                             ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG | ENGRAM_PARAM_SIZE, size_span);
    p->neuron = d->model ? sema_find_neuron(S, d->model) : NULL;
    if (!p->neuron)
        return;   /* reported by pop_values, in source order */
    SemaNeuron *n = p->neuron;
    p->param_sid = arena_alloc(S->a, (size_t)(n->nparams + 1) * sizeof *p->param_sid);
    for (int k = 0; k < n->nparams; k++) {
        NParam *np = &n->params[k];
        uint32_t flags = np->is_list ? ENGRAM_PARAM_LIST : 0;
        if (n->kind == ENGRAM_POP_POISSON && strcmp(np->name, "rate") == 0)
            flags |= ENGRAM_PARAM_NONNEG;
        p->param_sid[k] = sparam_new(S, arena_printf(S->a, "%s.%s", p->path, np->name), np->dim,
                                     flags, np->span);
        S->params[p->param_sid[k]].ok = np->ok;
    }
    const IrExpr *r = n->refractory;
    if (r && r->kind == IR_PARAM && r->index < 0 && -r->index - 1 < n->nparams)
        p->refr_sid = p->param_sid[-r->index - 1];   /* `refractory tau_ref`: reuse the param */
    else if (r)
        p->refr_sid = sparam_new(S, arena_printf(S->a, "%s.refractory", p->path), DIM_TIME,
                                 ENGRAM_PARAM_NONNEG, r->span);
}

static void pop_size(Sema *S, SemaPop *p)
{
    const Expr *x = p->decl->expr;
    Scope sc = scope_make(S, NULL, CTX_MODEL);
    TExpr t = elab(&sc, x);
    SParam *sp = &S->params[p->size_sid];
    if (!x || !expect_dim(S, NULL, &t, DIM_NONE, x, "a population size is a count of neurons")) {
        sp->ok = false;
        return;
    }
    sp->value = t.e;
    double v;
    if (!fold(S, t.e, &v))
        return;
    if (v < 0)
        sema_error(S, x->span, "a population size must be at least 0, got %g", v);
    else if (round(v) > SEMA_MAX_POP_SIZE)
        sema_error(S, x->span, "population size %g is too large (at most %.0f)", v, SEMA_MAX_POP_SIZE);
}

/* name = value in `LIF(tau_m = 10 ms)`: a param of the model, with its unit. */
static int pop_override_target(Sema *S, const SemaPop *p, const Arg *a, const bool *set)
{
    SemaNeuron *n = p->neuron;
    if (!a->name) {
        sema_error(S, a->value->span, "population arguments must be named: write NAME = value");
        return -1;
    }
    int k = find_nparam(n, a->name);
    if (k < 0) {
        if (find_state(n, a->name) >= 0) {
            sema_error(S, a->name_span, "'%s' is a state variable of %s; a population can only "
                       "set params", a->name, n->name);
            return -1;
        }
        sema_error(S, a->name_span, "neuron '%s' has no param '%s'", n->name, a->name);
        const char **c = arena_alloc(S->a, (size_t)(n->nparams + 1) * sizeof *c);
        for (int i = 0; i < n->nparams; i++)
            c[i] = n->params[i].name;
        sema_suggest(S, a->name, c, n->nparams);
        return -1;
    }
    if (set[k]) {
        sema_error(S, a->name_span, "'%s' is set twice", a->name);
        return -1;
    }
    return k;
}

static void pop_override(Sema *S, SemaPop *p, const Arg *a, bool *set)
{
    int k = pop_override_target(S, p, a, set);
    if (k < 0)
        return;
    set[k] = true;
    NParam *np = &p->neuron->params[k];
    SParam *sp = &S->params[p->param_sid[k]];
    sp->span = a->name_span;
    if (np->is_list) {
        if (a->value->kind != EXPR_LIST) {
            sema_error(S, a->value->span, "'%s' must be a list, e.g. [10 ms, 20 ms]", np->name);
            sp->ok = false;
            return;
        }
        sp->ok = list_values(S, a->value, np->dim, np->name[0] == 'i', &sp->list, &sp->nlist);
        return;
    }
    Scope sc = scope_make(S, NULL, CTX_MODEL);
    TExpr t = elab(&sc, a->value);
    if (np->ok ? expect_dim(S, NULL, &t, np->dim, a->value, NULL) : need_number(&sc, &t, a->value))
        sp->value = t.e;
    else
        sp->ok = false;
}

/* The params not set by the population get the neuron's default, with
 * references to other params of the neuron pointing at this population's. */
static void pop_defaults(Sema *S, SemaPop *p, const bool *set)
{
    SemaNeuron *n = p->neuron;
    for (int k = 0; k < n->nparams; k++) {
        if (set[k])
            continue;
        SParam *sp = &S->params[p->param_sid[k]];
        sp->value = ir_copy_map(S->a, n->params[k].value, p->param_sid, n->nparams, NULL);
        sp->list = n->params[k].list;
        sp->nlist = n->params[k].nlist;
    }
    if (p->refr_sid >= 0 && n->refractory && n->refractory->kind != IR_PARAM)
        S->params[p->refr_sid].value = ir_copy_map(S->a, n->refractory, p->param_sid, n->nparams, NULL);
}

/* spike_times: indices default to all 0 when the neuron has none, when
 * they are empty, or when the population gives times but no indices; the
 * lengths agree; the indices fit the size. */
static void pop_spike_lists(Sema *S, SemaPop *p, const bool *set)
{
    SemaNeuron *n = p->neuron;
    int kt = find_nparam(n, "times"), ki = find_nparam(n, "indices");
    if (kt < 0)
        return;
    SParam *times = &S->params[p->param_sid[kt]];
    if (ki < 0 || S->params[p->param_sid[ki]].nlist == 0 || (set[kt] && !set[ki])) {
        int sid = ki >= 0 ? p->param_sid[ki]
            : sparam_new(S, arena_printf(S->a, "%s.indices", p->path), DIM_NONE, ENGRAM_PARAM_LIST,
                         p->decl->name_span);
        times = &S->params[p->param_sid[kt]];   /* sparam_new may move the table */
        S->params[sid].list = arena_alloc(S->a, (size_t)(times->nlist + 1) * sizeof(double));
        S->params[sid].nlist = times->nlist;
        return;
    }
    SParam *idx = &S->params[p->param_sid[ki]];
    double size;
    if (times->ok && idx->ok && idx->nlist != times->nlist)
        sema_error(S, idx->span, "%s has %d spike times but %d indices", p->path, times->nlist,
                   idx->nlist);
    for (int i = 0; idx->ok && i < idx->nlist; i++) {
        if (fold_sid(S, p->size_sid, &size) && idx->list[i] >= round(size)) {
            sema_error(S, idx->span, "neuron index %g is outside %s (size %g)", idx->list[i],
                       p->path, round(size));
            break;
        }
    }
}

static void pop_values(Sema *S, SemaPop *p)
{
    pop_size(S, p);
    SemaNeuron *n = p->neuron;
    const Decl *d = p->decl;
    if (!n) {
        sema_error(S, d->model_span, "unknown neuron model '%s'", d->model ? d->model : "?");
        if (d->model)
            suggest_neuron(S, d->model);
        return;
    }
    bool *set = arena_alloc(S->a, (size_t)(n->nparams + 1) * sizeof *set);
    for (int i = 0; i < p->decl->nargs; i++)
        if (p->decl->args[i] && p->decl->args[i]->value)
            pop_override(S, p, p->decl->args[i], set);
    pop_defaults(S, p, set);
    if (n->kind == ENGRAM_POP_SPIKE_TIMES)
        pop_spike_lists(S, p, set);
}

/* ---- projections --------------------------------------------------------- */

/* The first line of a declaration, for "missing item" errors. */
static SrcSpan decl_head(const Decl *d, int len)
{
    SrcSpan s = d->span;
    s.last_line = s.first_line;
    s.last_column = s.first_column + len - 1;
    return s;
}

static void suggest_region(Sema *S, const char *name)
{
    const char **c = arena_alloc(S->a, (size_t)(S->npops + 1) * sizeof *c);
    for (int i = 0; i < S->npops; i++)
        c[i] = S->pops[i].region;
    sema_suggest(S, name, c, S->npops);
}

static SemaPop *path_pop(Sema *S, const Path *p)
{
    if (p->nparts != 2) {
        sema_error(S, p->span, "expected a population, written REGION.POP");
        return NULL;
    }
    SemaPop *sp = pop_lookup(S, p->parts[0], p->parts[1]);
    if (sp)
        return sp;
    bool region = false;
    const char **c = arena_alloc(S->a, (size_t)(S->npops + 1) * sizeof *c);
    int nc = 0;
    for (int i = 0; i < S->npops; i++) {
        if (strcmp(S->pops[i].region, p->parts[0]) == 0) {
            region = true;
            c[nc++] = S->pops[i].name;
        }
    }
    if (!region) {
        sema_error(S, p->span, "unknown region '%s'", p->parts[0]);
        suggest_region(S, p->parts[0]);
        return NULL;
    }
    sema_error(S, p->span, "region '%s' has no population '%s'", p->parts[0], p->parts[1]);
    sema_suggest(S, p->parts[1], c, nc);
    return NULL;
}

/* The port of a target population; -1 after an error. */
static int target_port(Sema *S, const SemaPop *dst, const char *port, SrcSpan span)
{
    SemaNeuron *n = dst->neuron;
    if (!n || !port)
        return -1;
    int k = find_port(n, port);
    if (k >= 0)
        return n->ports[k].state >= 0 ? k : -1;
    if (n->nports == 0) {
        sema_error(S, span, "neuron '%s' has no input ports", n->name);
        sema_hint(S, "declare one in neuron '%s', e.g. `input exc -> v`", n->name);
        return -1;
    }
    sema_error(S, span, "neuron '%s' has no port '%s'", n->name, port);
    const char **c = arena_alloc(S->a, (size_t)(n->nports + 1) * sizeof *c);
    for (int i = 0; i < n->nports; i++)
        c[i] = n->ports[i].name;
    sema_suggest(S, port, c, n->nports);
    return -1;
}

/* Only neuron populations receive input: sources have no state. */
static bool can_receive(Sema *S, const SemaPop *dst, SrcSpan span)
{
    if (!dst || !dst->neuron)
        return false;
    if (dst->neuron->kind == ENGRAM_POP_NEURON)
        return true;
    sema_error(S, span, "%s is a source (builtin %s) and cannot receive input", dst->path,
               dst->neuron->decl->builtin);
    return false;
}

typedef struct ProjItems {
    Stmt *connect, *weight, *delay, *port, *autapses, *plasticity;
} ProjItems;

static void proj_items(Sema *S, const Decl *d, ProjItems *it)
{
    for (int i = 0; i < d->nbody; i++) {
        Stmt *s = d->body[i];
        if (!s)
            continue;
        switch (s->kind) {
        case STMT_CONNECT: single_item(S, &it->connect, s, "connect"); break;
        case STMT_WEIGHT: single_item(S, &it->weight, s, "weight"); break;
        case STMT_DELAY: single_item(S, &it->delay, s, "delay"); break;
        case STMT_PORT: single_item(S, &it->port, s, "port"); break;
        case STMT_AUTAPSES: single_item(S, &it->autapses, s, "autapses"); break;
        case STMT_PLASTICITY: single_item(S, &it->plasticity, s, "plasticity"); break;
        default: sema_error(S, s->span, "this item does not belong in a projection"); break;
        }
    }
}

/* One argument of a connection rule, distribution or drive as a param:
 * checked against its dimension, folded for the range checks. */
static int arg_param(Sema *S, const char *path, const Expr *x, EngramDim want, bool known,
                     uint32_t flags, const char *why)
{
    Scope sc = scope_make(S, NULL, CTX_MODEL);
    TExpr t = elab(&sc, x);
    bool ok = known ? expect_dim(S, NULL, &t, want, x, why) : need_number(&sc, &t, x);
    int sid = sparam_new(S, path, ok ? t.e->dim : want, flags, x->span);
    S->params[sid].value = ok ? t.e : NULL;
    S->params[sid].ok = ok;
    return sid;
}

static bool fold_arg(Sema *S, int sid, double *v)
{
    return sid >= 0 && S->params[sid].ok && fold_sid(S, sid, v);
}

static void check_rule_value(Sema *S, SemaProj *p, const Expr *x)
{
    double v;
    if (!fold_arg(S, p->rule_sid, &v))
        return;
    if (p->rule == ENGRAM_CONNECT_RANDOM && (v < 0 || v > 1))
        sema_error(S, x->span, "a connection probability must be between 0 and 1, got %g", v);
    if (p->rule == ENGRAM_CONNECT_FIXED_INDEGREE && (v < 0 || v != floor(v)))
        sema_error(S, x->span, "an in-degree must be a whole number >= 0, got %g", v);
}

static void check_one_to_one(Sema *S, const SemaProj *p, const Stmt *s)
{
    double a, b;
    if (p->rule != ENGRAM_CONNECT_ONE_TO_ONE || !p->src || !p->dst || p->src_ens >= 0 ||
        p->dst_ens >= 0)
        return;   /* ensembles' sizes are checked when the simulator starts */
    if (fold_sid(S, p->src->size_sid, &a) && fold_sid(S, p->dst->size_sid, &b) && round(a) != round(b))
        sema_error(S, s->expr->span, "one_to_one needs populations of equal size, but %s has %g "
                   "neurons and %s has %g", p->src->path, round(a), p->dst->path, round(b));
}

/* connect random(p) | fixed_indegree(k) | one_to_one | all_to_all */
static void proj_connect(Sema *S, SemaProj *p, const Stmt *s)
{
    static const char *const rules[] = {"random", "fixed_indegree", "one_to_one", "all_to_all"};
    static const char *const arg_names[] = {"p", "k"};
    const Expr *x = s->expr;
    const char *name = !x ? NULL : x->kind == EXPR_CALL ? x->callee
                     : x->kind == EXPR_NAME && x->nparts == 1 ? x->parts[0] : NULL;
    int r = -1;
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, rules[i]) == 0)
            r = i;
    if (r < 0) {
        sema_error(S, !x ? s->span : x->kind == EXPR_CALL ? x->callee_span : x->span,
                   "unknown connection rule '%s'", name ? name : "?");
        const char *near = name ? diag_suggest(name, rules, 4) : NULL;
        sema_hint(S, near ? "did you mean '%s'?" : "the rules are %s(p), fixed_indegree(k), "
                  "one_to_one and all_to_all", near ? near : "random");
        return;
    }
    p->rule = (EngramConnKind)r;
    int nargs = x->kind == EXPR_CALL ? x->nargs : 0;
    if (r >= 2) {
        if (nargs > 0)
            sema_error(S, x->span, "%s takes no arguments", name);
        check_one_to_one(S, p, s);
        return;
    }
    const Arg *got[1] = {0};
    if (!bind_args(S, name, x->span, x->args, nargs, &arg_names[r], 1, 1, got))
        return;
    uint32_t flags = r == 0 ? ENGRAM_PARAM_PROB : ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG;
    p->rule_sid = arg_param(S, arena_printf(S->a, "%s.%s", p->name, arg_names[r]), got[0]->value,
                            DIM_NONE, true, flags, r == 0 ? "p is a probability" : "k counts synapses");
    check_rule_value(S, p, got[0]->value);
}

/* A weight or delay: one value (base) or a distribution (base.low ...). */
static SemaDist link_value(Sema *S, const char *base, const Expr *x, EngramDim want, bool known,
                           const char *why)
{
    SemaDist dist = {ENGRAM_DIST_CONST, {-1, -1, -1, -1}};
    if (x->kind != EXPR_CALL || !x->callee || !is_dist_name(x->callee)) {
        dist.sid[0] = arg_param(S, base, x, want, known, 0, why);
        return dist;
    }
    const Arg *got[4] = {0};
    if (!dist_bind(S, x, &dist.kind, got)) {
        dist.sid[0] = sparam_new(S, base, want, 0, x->span);
        S->params[dist.sid[0]].ok = false;
        return dist;
    }
    const char *const *names = dist.kind == ENGRAM_DIST_UNIFORM ? uniform_args : normal_args;
    for (int k = 0; k < 4; k++) {
        if (!got[k])
            continue;
        uint32_t flags = dist.kind == ENGRAM_DIST_NORMAL && k == 1 ? ENGRAM_PARAM_NONNEG : 0;
        dist.sid[k] = arg_param(S, arena_printf(S->a, "%s.%s", base, names[k]), got[k]->value,
                                want, known, flags, why);
    }
    return dist;
}

/* low <= high, sd >= 0: when both are constants. */
static void check_dist(Sema *S, const SemaDist *dist, const Expr *x)
{
    double a, b;
    if (dist->kind == ENGRAM_DIST_UNIFORM && fold_arg(S, dist->sid[0], &a) &&
        fold_arg(S, dist->sid[1], &b) && a > b)
        sema_error(S, x->span, "uniform(): low is above high");
    if (dist->kind == ENGRAM_DIST_NORMAL && fold_arg(S, dist->sid[1], &b) && b < 0)
        sema_error(S, x->span, "normal(): the standard deviation cannot be negative");
}

/* The smallest delay a distribution can give, if known. */
static bool delay_floor(Sema *S, const SemaDist *dist, double *v)
{
    switch (dist->kind) {
    case ENGRAM_DIST_CONST: return fold_arg(S, dist->sid[0], v);
    case ENGRAM_DIST_UNIFORM: return fold_arg(S, dist->sid[0], v);
    case ENGRAM_DIST_NORMAL: return fold_arg(S, dist->sid[2], v);
    }
    return false;
}

static void proj_delay(Sema *S, SemaProj *p, const Stmt *s)
{
    const char *base = arena_printf(S->a, "%s.delay", p->name);
    if (!s) {   /* one step */
        p->delay = (SemaDist){ENGRAM_DIST_CONST, {-1, -1, -1, -1}};
        p->delay.sid[0] = sparam_new(S, base, DIM_TIME, ENGRAM_PARAM_NONNEG, p->decl->span);
        S->params[p->delay.sid[0]].value = ir_param(S->a, S->dt_sid, DIM_TIME, p->decl->span);
        return;
    }
    p->delay = link_value(S, base, s->expr, DIM_TIME, true, "a delay is a time");
    for (int k = 0; k < 4; k++)
        if (p->delay.sid[k] >= 0 && k != 1)
            S->params[p->delay.sid[k]].flags |= ENGRAM_PARAM_NONNEG;
    check_dist(S, &p->delay, s->expr);
    p->delay_expr = s->expr;
}

/* After the settings, which may change dt: a constant delay of less than
 * one step is an error (the runtime checks again after --set). */
static void check_delays(Sema *S)
{
    double v, dt;
    if (!fold_sid(S, S->dt_sid, &dt))
        return;
    for (int i = 0; i < S->nprojs; i++) {
        SemaProj *p = &S->projs[i];
        if (p->delay_expr && delay_floor(S, &p->delay, &v) && v < dt * (1 - 1e-9))
            sema_error(S, p->delay_expr->span, "a delay of %g ms is shorter than the time step "
                       "dt = %g ms", v, dt);
    }
}

/* The dimension a port's weights must have: its variable's. */
static bool port_dim(const SemaPop *dst, int port, EngramDim *dim, char *why, size_t n)
{
    if (!dst || !dst->neuron || port < 0)
        return false;
    const SemaNeuron *nn = dst->neuron;
    const NState *st = &nn->states[nn->ports[port].state];
    *dim = st->dim;
    snprintf(why, n, "port '%s' of %s adds the weight to '%s'", nn->ports[port].name, nn->name,
             st->name);
    return true;
}

static void proj_weight(Sema *S, SemaProj *p, const Stmt *s)
{
    char why[256];
    EngramDim want = DIM_NONE;
    bool known = port_dim(p->dst, p->port, &want, why, sizeof why);
    p->weight = link_value(S, arena_printf(S->a, "%s.weight", p->name), s->expr, want, known,
                           known ? why : NULL);
    check_dist(S, &p->weight, s->expr);
}

/* A rule is checked with w in the unit of the port's variable; without a
 * known port there is nothing to check it against (reported already). */
static bool proj_plasticity(Sema *S, SemaProj *p, const Stmt *s)
{
    char why[256];
    EngramDim wdim;
    return port_dim(p->dst, p->port, &wdim, why, sizeof why) && sema_check_plasticity(S, p, s, wdim);
}

static void proj_missing(Sema *S, const Decl *d, const char *what, const char *example)
{
    sema_error(S, decl_head(d, 7), "projection has no %s", what);
    sema_hint(S, "add one, e.g. `%s`", example);
}

static void check_project(Sema *S, SemaProj *p)
{
    const Decl *d = p->decl;
    int errors = S->d->nerrors;
    ProjItems it = {0};
    proj_items(S, d, &it);
    p->src = sema_endpoint(S, &d->src, d->index, &p->src_group, &p->src_ens);
    p->dst = sema_endpoint(S, &d->dst, d->index2, &p->dst_group, &p->dst_ens);
    bool recv = p->dst && can_receive(S, p->dst, d->dst.span);
    if (it.port && recv)
        p->port = target_port(S, p->dst, it.port->name, it.port->name_span);
    if (!it.port)
        proj_missing(S, d, "port", "port exc");
    if (it.connect)
        proj_connect(S, p, it.connect);
    else
        proj_missing(S, d, "connect rule", "connect random(p = 0.1)");
    if (it.weight)
        proj_weight(S, p, it.weight);
    else
        proj_missing(S, d, "weight", "weight 0.5 nS");
    proj_delay(S, p, it.delay);
    p->autapses = it.autapses && it.autapses->expr && it.autapses->expr->value != 0;
    /* a rule's errors are printed for its first use only: count them here */
    bool rule_ok = !it.plasticity || proj_plasticity(S, p, it.plasticity);
    p->ok = S->d->nerrors == errors && rule_ok;
}

/* ---- drives -------------------------------------------------------------- */

static const char *const drive_args[] = {"rate", "count"};

static void drive_args_check(Sema *S, SemaDrive *v, const Arg **got)
{
    double x;
    v->rate_sid = arg_param(S, arena_printf(S->a, "%s.rate", v->name), got[0]->value,
                            engram_dim(-1, 0, 0), true, ENGRAM_PARAM_NONNEG, NULL);
    if (fold_arg(S, v->rate_sid, &x) && x < 0)
        sema_error(S, got[0]->value->span, "a rate cannot be negative");
    if (got[1]) {
        v->count_sid = arg_param(S, arena_printf(S->a, "%s.count", v->name), got[1]->value, DIM_NONE,
                                 true, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG,
                                 "count is a number of inputs");
        if (fold_arg(S, v->count_sid, &x) && (x < 0 || x != floor(x)))
            sema_error(S, got[1]->value->span, "count must be a whole number >= 0, got %g", x);
    } else {
        v->count_sid = sparam_new(S, arena_printf(S->a, "%s.count", v->name), DIM_NONE,
                                  ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, v->decl->span);
        S->params[v->count_sid].value = ir_const(S->a, 1, DIM_NONE, v->decl->span);
    }
}

static void check_drive(Sema *S, SemaDrive *v)
{
    const Decl *d = v->decl;
    int errors = S->d->nerrors;
    char why[256];
    v->dst = path_pop(S, &d->dst);
    if (v->dst && can_receive(S, v->dst, d->dst.span))
        v->port = target_port(S, v->dst, d->port, d->port_span);
    const Arg *got[2] = {0};
    SrcSpan at = d->nargs > 0 && d->args[0] && d->args[0]->value ? d->args[0]->value->span : d->span;
    if (bind_args(S, "poisson", at, d->args, d->nargs, drive_args, 1, 2, got))
        drive_args_check(S, v, got);
    EngramDim want = DIM_NONE;
    bool known = port_dim(v->dst, v->port, &want, why, sizeof why);
    if (!d->expr) {
        /* nothing to check: the parser reported it */
    } else if (d->expr->kind == EXPR_CALL && d->expr->callee && is_dist_name(d->expr->callee)) {
        sema_error(S, d->expr->span, "a drive's weight is one value, not a distribution");
    } else {
        v->weight_sid = arg_param(S, arena_printf(S->a, "%s.weight", v->name), d->expr, want, known,
                                  0, known ? why : NULL);
    }
    v->ok = S->d->nerrors == errors;
}

/* `stimulus POP weight W port P` (docs/language.md section 15): the way
 * protocol stimuli enter a neuron population, checked like a drive. */
void sema_check_stimulus(Sema *S, SemaStimulus *st)
{
    const Decl *d = st->decl;
    int errors = S->d->nerrors;
    char why[256];
    st->dst = path_pop(S, &d->dst);
    if (!st->dst)
        return;
    for (int k = 0; k < (int)(st - S->stims); k++)
        if (S->stims[k].dst == st->dst) {
            sema_error(S, d->dst.span, "%s already has a stimulus declaration", st->dst->path);
            return;
        }
    if (st->dst->neuron && st->dst->neuron->kind != ENGRAM_POP_NEURON) {
        sema_error(S, d->dst.span, "%s is a source: a stimulus adds spikes to it without a "
                   "`stimulus` declaration", st->dst->path);
        return;
    }
    if (can_receive(S, st->dst, d->dst.span))
        st->port = target_port(S, st->dst, d->port, d->port_span);
    EngramDim want = DIM_NONE;
    bool known = port_dim(st->dst, st->port, &want, why, sizeof why);
    if (d->expr && d->expr->kind == EXPR_CALL && d->expr->callee && is_dist_name(d->expr->callee))
        sema_error(S, d->expr->span, "a stimulus weight is one value, not a distribution");
    else if (d->expr)
        st->weight_sid = arg_param(S, arena_printf(S->a, "%s.stimulus.weight", st->dst->path),
                                   d->expr, want, known, 0, known ? why : NULL);
    st->ok = S->d->nerrors == errors && st->port >= 0;
}

/* ---- settings and records ------------------------------------------------ */

static int setting_sid(Sema *S, const char *name)
{
    if (strcmp(name, "dt") == 0)
        return S->dt_sid;
    if (strcmp(name, "duration") == 0)
        return S->duration_sid;
    if (strcmp(name, "seed") == 0)
        return S->seed_sid;
    return -1;
}

static void setting_range(Sema *S, int sid, const Expr *x)
{
    double v;
    if (!fold_arg(S, sid, &v))
        return;
    if (sid == S->dt_sid && v <= 0)
        sema_error(S, x->span, "dt must be positive, got %g ms", v);
    else if (sid == S->duration_sid && v < 0)
        sema_error(S, x->span, "duration cannot be negative, got %g ms", v);
    else if (sid == S->seed_sid && (v < 0 || v != floor(v) || v >= 18446744073709551616.0))
        sema_error(S, x->span, "seed must be a whole number >= 0, got %g", v);
}

static void check_setting(Sema *S, const Stmt *s, const Stmt **seen)
{
    static const char *const names[] = {"dt", "duration", "seed"};
    int sid = setting_sid(S, s->name);
    if (sid < 0) {
        sema_error(S, s->name_span, "unknown simulation setting '%s'", s->name);
        const char *near = diag_suggest(s->name, names, 3);
        sema_hint(S, near ? "did you mean '%s'?" : "the settings are %s, duration and seed",
                  near ? near : "dt");
        return;
    }
    int slot = sid == S->dt_sid ? 0 : sid == S->duration_sid ? 1 : 2;
    if (seen[slot]) {
        sema_error(S, s->name_span, "'%s' is set twice", s->name);
        sema_note(S, seen[slot]->name_span, "the first is here");
        return;
    }
    seen[slot] = s;
    Scope sc = scope_make(S, NULL, CTX_MODEL);
    TExpr t = elab(&sc, s->expr);
    SParam *p = &S->params[sid];
    if (!s->expr || !expect_dim(S, NULL, &t, p->dim, s->expr, slot == 2 ? "the seed is a number" : NULL)) {
        p->ok = false;
        p->value = NULL;
        return;
    }
    p->value = t.e;
    p->span = s->name_span;
    setting_range(S, sid, s->expr);
}

static void check_settings(Sema *S)
{
    const Stmt *seen[3] = {0};
    for (int i = 0; i < S->nsims; i++) {
        const Decl *d = S->sims[i];
        for (int k = 0; k < d->nbody; k++)
            if (d->body[k] && d->body[k]->kind == STMT_SETTING && d->body[k]->name)
                check_setting(S, d->body[k], seen);
    }
}

static void check_records(Sema *S)
{
    bool all = S->nrecords == 0;
    for (int i = 0; i < S->nrecords; i++) {
        const Decl *d = S->records[i];
        all |= d->npaths == 0;
        for (int k = 0; k < d->npaths; k++) {
            SemaPop *p = path_pop(S, &d->paths[k]);
            if (p)
                p->record = true;
        }
    }
    for (int i = 0; all && i < S->npops; i++)
        S->pops[i].record = true;
}

/* ---- entry --------------------------------------------------------------- */

static int setting_new(Sema *S, const char *path, double v, EngramDim dim, uint32_t flags)
{
    SrcSpan none = {S->main->file, 1, 1, 1, 1};
    int sid = sparam_new(S, path, dim, flags, none);
    S->params[sid].value = ir_const(S->a, v, dim, none);
    return sid;
}

/* Model params first (in order), then the settings: the table order that
 * lower keeps where dependencies allow.  The order of the checks that
 * follow is the usual order of a model file, so that errors come out
 * roughly in source order. */
static void make_globals(Sema *S)
{
    for (int i = 0; i < S->nmparams; i++) {
        ModelParam *mp = &S->mparams[i];
        mp->sid = sparam_new(S, mp->name, DIM_NONE, 0, mp->decl->name_span);
        SParam *p = &S->params[mp->sid];
        p->ast = mp->decl->expr;
        p->visit = VISIT_NEW;
        p->ok = false;
    }
    S->dt_sid = setting_new(S, "dt", 0.1, DIM_TIME, ENGRAM_PARAM_POSITIVE);
    S->duration_sid = setting_new(S, "duration", 1000.0, DIM_TIME, ENGRAM_PARAM_NONNEG);
    S->seed_sid = setting_new(S, "seed", 1.0, DIM_NONE, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG);
}

bool sema_check(Sema *S)
{
    int errors = S->d->nerrors;
    make_globals(S);
    for (int i = 0; i < S->nmparams; i++)
        ensure_mparam(S, i, S->mparams[i].decl->name_span);
    for (int i = 0; i < S->main->nscope; i++) {
        if (S->main->scope[i].neuron)
            sema_check_neuron(S, S->main->scope[i].neuron);
        else if (S->main->scope[i].rule)
            sema_rule_tables(S, S->main->scope[i].rule);
    }
    for (int i = 0; i < S->npops; i++)
        pop_params(S, &S->pops[i]);
    for (int i = 0; i < S->npops; i++)
        pop_values(S, &S->pops[i]);
    sema_check_modulators(S);
    sema_check_ensembles(S);
    for (int i = 0; i < S->nprojs; i++)
        check_project(S, &S->projs[i]);
    for (int i = 0; i < S->ndrives; i++)
        check_drive(S, &S->drives[i]);
    sema_check_releases(S);
    check_settings(S);
    check_delays(S);
    sema_check_every(S);
    check_records(S);
    sema_check_weight_recs(S);
    sema_check_protocols(S);
    return S->d->nerrors == errors;
}

/* ---- shared with sema_plasticity.c ---------------------------------------- */

Scope sema_scope(Sema *S, SemaNeuron *n, Ctx ctx) { return scope_make(S, n, ctx); }
TExpr sema_elab(Scope *sc, const Expr *x) { return elab(sc, x); }
TExpr sema_poison(void) { return poison(); }
TExpr sema_typed(IrExpr *e) { return typed(e); }
void sema_flex_set_dim(IrExpr *e, EngramDim dim) { flex_set_dim(e, dim); }
const char *sema_ctx_reader(Ctx ctx) { return ctx_reader(ctx); }
bool sema_busy_full(Sema *S, SrcSpan use) { return busy_full(S, use); }
int sema_find_state(const SemaNeuron *n, const char *name) { return find_state(n, name); }
const char *sema_ode_var(Arena *a, const char *name) { return ode_var(a, name); }
SemaPop *sema_path_pop(Sema *S, const Path *p) { return path_pop(S, p); }
bool sema_fold(Sema *S, const IrExpr *e, double *out) { return fold(S, e, out); }
bool sema_fold_sid(Sema *S, int sid, double *out) { return fold_sid(S, sid, out); }

bool sema_expect_dim(Sema *S, TExpr *t, EngramDim want, const Expr *ast, const char *why)
{
    return expect_dim(S, NULL, t, want, ast, why);
}

bool sema_need_number(Scope *sc, const TExpr *t, const Expr *ast)
{
    return need_number(sc, t, ast);
}

void sema_flex_set(Sema *S, TExpr *t, EngramDim dim)
{
    flex_set(S, NULL, t, dim);
}

bool sema_dim_combine(Sema *S, EngramDim a, EngramDim b, int sign, SrcSpan span, EngramDim *out)
{
    return dim_combine(S, a, b, sign, span, out);
}

void sema_busy_push(Sema *S, const void *owner, int index, const char *name)
{
    busy_push(S, owner, index, name);
}

const char *sema_busy_chain(Sema *S, const void *owner, int index, const char *name)
{
    return busy_chain(S, owner, index, name);
}

int sema_sparam_new(Sema *S, const char *path, EngramDim dim, uint32_t flags, SrcSpan span)
{
    return sparam_new(S, path, dim, flags, span);
}

bool sema_bind_args(Sema *S, const char *fname, SrcSpan at, Arg *const *args, int nargs,
                    const char *const *names, int nreq, int nall, const Arg **got)
{
    return bind_args(S, fname, at, args, nargs, names, nreq, nall, got);
}

SemaDist sema_link_value(Sema *S, const char *base, const Expr *x, EngramDim want, bool known,
                         const char *why)
{
    SemaDist d = link_value(S, base, x, want, known, why);
    check_dist(S, &d, x);
    return d;
}

int sema_arg_param(Sema *S, const char *path, const Expr *x, EngramDim want, bool known,
                   uint32_t flags, const char *why)
{
    return arg_param(S, path, x, want, known, flags, why);
}
