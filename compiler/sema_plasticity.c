/*
 * sema_plasticity.c - plasticity rules, modulators, releases and weight
 * records (docs/language.md sections 12-14).
 *
 * A rule is checked in two steps.  Its tables (params, synapse variables,
 * traces, lets, ODEs, bounds, handlers) are built once per rule, with the
 * structural errors that do not depend on a use: names defined twice, an
 * ODE of something that is not a variable, a handler that assigns a param
 * or the other side's trace, per-spike trace updates mixed in between the
 * per-synapse statements.  Then every projection that says
 * `plasticity NAME(args)` instantiates it (RuleInst): each rule param
 * becomes the projection's param PROJ.<param>, and every expression is
 * elaborated with the machinery of check.c, with w in the unit of that
 * projection's weight.  So one rule serves nS, mV and pA synapses, and a
 * rule that only makes sense for one of them fails at the use that breaks it.
 *
 * Variables that start at a bare 0 take their dimension from use, as the
 * states of neurons do: quiet passes over the equations bind them
 * (sema_rule_bind) until nothing changes; what is left is dimensionless.
 *
 * An error inside a rule's body that a second use would raise again at the
 * same place is not printed twice (Sema.dedupe, see resolve.c); a use whose
 * own errors are new gets a note naming the projection.
 *
 * The IR of a use keeps IR_PARAM indices as SParam ids (lower.c renumbers
 * them), IR_PRE_STATE / IR_POST_STATE indices as state indices of the
 * source / target population, IR_MODULATOR indices as positions in the
 * modulator table, and IR_SYNVAR / IR_PRE_TRACE / IR_POST_TRACE indices as
 * positions in the rule's table of that kind.
 *
 * Order: rule tables, handler tables, names inside rules, rule params,
 * variables and inference, handlers, bounds and every, the use of a rule,
 * modulators, releases, weight records, every intervals against dt.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema_internal.h"

static const EngramDim DIM_NONE = {0, 0, 0};
static const EngramDim DIM_TIME = {1, 0, 0};

/* Default sampling interval of `record weights` without `every`: fine
 * enough to follow learning over seconds, 10 samples per second of run. */
#define WEIGHT_REC_EVERY_MS 100.0

/* ---- rule tables --------------------------------------------------------- */

static int rule_local(const SemaRule *r, const char *name, int kind)
{
    int v = name ? namemap_get(&r->locals, name) : -1;
    return v >= 0 && v >> LOCAL_SHIFT == kind ? v & ((1 << LOCAL_SHIFT) - 1) : -1;
}

static const char *var_kind_name(IrExprKind kind)
{
    return kind == IR_SYNVAR ? "synapse variable" : kind == IR_PRE_TRACE ? "pre trace" : "post trace";
}

/* Built-in names of rule expressions, and the params every plastic
 * projection (or any projection) already has: a rule cannot define them. */
static bool rule_reserved(Sema *S, const Stmt *s)
{
    static const char *const builtin[] = {
        "w", "the weight", "t", "the time", "dt", "the time step", "i", "the synapse or neuron index",
        "pre", "the presynaptic side, pre.X", "post", "the postsynaptic side, post.X",
    };
    static const char *const proj[] = {"plastic", "w_lo", "w_hi", "every", "weight", "delay", "p",
                                       "k", "record_every"};
    for (size_t k = 0; k < sizeof builtin / sizeof builtin[0]; k += 2) {
        if (strcmp(s->name, builtin[k]) == 0) {
            sema_error(S, s->name_span, "'%s' is a built-in name in a rule (%s)", s->name, builtin[k + 1]);
            return true;
        }
    }
    for (size_t k = 0; s->kind == STMT_PARAM && k < sizeof proj / sizeof proj[0]; k++) {
        if (strcmp(s->name, proj[k]) == 0) {
            sema_error(S, s->name_span, "a rule param cannot be called '%s': the projection's "
                       "param PROJ.%s has that name", s->name, s->name);
            return true;
        }
    }
    return false;
}

static const SrcSpan *rule_local_span(const SemaRule *r, const char *name)
{
    int k;
    if ((k = rule_local(r, name, RLOCAL_PARAM)) >= 0)
        return &r->params[k].span;
    if ((k = rule_local(r, name, RLOCAL_VAR)) >= 0)
        return &r->vars[k].span;
    if ((k = rule_local(r, name, RLOCAL_LET)) >= 0)
        return &r->lets[k].span;
    return NULL;
}

static void rule_add_local(Sema *S, SemaRule *r, Stmt *s)
{
    if (!s->name || rule_reserved(S, s))
        return;
    const SrcSpan *old = rule_local_span(r, s->name);
    if (old) {
        sema_error(S, s->name_span, "'%s' is already defined in rule '%s'", s->name, r->name);
        sema_note(S, *old, "the first '%s' is here", s->name);
        return;
    }
    if (s->kind == STMT_PARAM) {
        namemap_put(S->a, &r->locals, s->name, RLOCAL_PARAM << LOCAL_SHIFT | r->nparams);
        RParam *p = SEMA_PUSH(S->a, r->params, r->nparams, r->capparams);
        *p = (RParam){s->name, s->name_span, s->expr, s->weight_unit};
    } else if (s->kind == STMT_LET) {
        namemap_put(S->a, &r->locals, s->name, RLOCAL_LET << LOCAL_SHIFT | r->nlets);
        RLet *l = SEMA_PUSH(S->a, r->lets, r->nlets, r->caplets);
        *l = (RLet){s->name, s->name_span, s->expr, false};
    } else {
        IrExprKind kind = s->kind == STMT_SYNAPSE ? IR_SYNVAR
                        : s->kind == STMT_PRE_TRACE ? IR_PRE_TRACE : IR_POST_TRACE;
        int *count = kind == IR_SYNVAR ? &r->nsyn : kind == IR_PRE_TRACE ? &r->npre : &r->npost;
        namemap_put(S->a, &r->locals, s->name, RLOCAL_VAR << LOCAL_SHIFT | r->nvars);
        RVar *v = SEMA_PUSH(S->a, r->vars, r->nvars, r->capvars);
        *v = (RVar){s->name, s->name_span, s->expr, NULL, kind, (*count)++};
    }
}

static void suggest_var(Sema *S, const SemaRule *r, const char *name, bool with_w)
{
    const char **c = arena_alloc(S->a, (size_t)(r->nvars + 2) * sizeof *c);
    int n = 0;
    if (with_w)
        c[n++] = "w";
    for (int k = 0; k < r->nvars; k++)
        c[n++] = r->vars[k].name;
    sema_suggest(S, name, c, n);
}

/* dx/dt = ...: x must be a synapse variable or trace of the rule. */
static void rule_bind_ode(Sema *S, SemaRule *r, Stmt *s)
{
    const char *var = sema_ode_var(S->a, s->name);
    int k = rule_local(r, var, RLOCAL_VAR);
    if (k >= 0 && r->vars[k].ode_stmt) {
        sema_error(S, s->span, "'%s' has two ODEs", var);
        sema_note(S, r->vars[k].ode_stmt->span, "the first is here");
    } else if (k >= 0) {
        r->vars[k].ode_stmt = s;
    } else if (var && strcmp(var, "w") == 0) {
        sema_error(S, s->name_span, "the weight w has no ODE in a rule");
        sema_hint(S, "change w in `on pre`, `on post` or an `every` block, e.g. `every 1 ms { w += ... }`");
    } else if (var && rule_local(r, var, RLOCAL_PARAM) >= 0) {
        sema_error(S, s->name_span, "'%s' is a param; only synapse variables and traces have ODEs", var);
    } else {
        sema_error(S, s->name_span, "d%s/dt: '%s' is not a synapse variable or trace of rule '%s'",
                   var ? var : "?", var ? var : "?", r->name);
        if (var)
            suggest_var(S, r, var, false);
    }
}

static void rule_single(Sema *S, Stmt **slot, Stmt *s, const char *what)
{
    if (*slot) {
        sema_error(S, s->span, "%s is given twice", what);
        sema_note(S, (*slot)->span, "the first %s is here", what);
        return;
    }
    *slot = s;
}

/* ---- handler tables ------------------------------------------------------ */

/* which: 0 on pre, 1 on post, 2 every. */
static const char *const handler_names[] = {"`on pre`", "`on post`", "an `every` block"};

/* Classifies the target of one handler assignment; false after an error. */
static bool assign_target(Sema *S, SemaRule *r, int which, const Stmt *as, RAssign *out)
{
    const char *name = as->name;
    int k;
    out->var = -1;
    if (strcmp(name, "w") == 0) {
        out->target = IR_TGT_WEIGHT;
        return true;
    }
    if ((k = rule_local(r, name, RLOCAL_VAR)) >= 0) {
        const RVar *v = &r->vars[k];
        out->var = k;
        out->target = v->kind == IR_SYNVAR ? IR_TGT_SYNVAR : v->kind == IR_PRE_TRACE ? IR_TGT_PRE : IR_TGT_POST;
        if (v->kind == IR_SYNVAR)
            return true;
        if (which == 2) {
            sema_error(S, as->name_span, "an `every` block updates synapses; it cannot assign the "
                       "%s '%s'", var_kind_name(v->kind), name);
            sema_hint(S, "update traces in `on pre` (pre traces) or `on post` (post traces)");
            return false;
        }
        if ((v->kind == IR_PRE_TRACE) != (which == 0)) {
            sema_error(S, as->name_span, "%s cannot assign the %s '%s': it belongs to the %s neuron",
                       handler_names[which], var_kind_name(v->kind), name,
                       v->kind == IR_PRE_TRACE ? "presynaptic" : "postsynaptic");
            sema_hint(S, "update it in %s", v->kind == IR_PRE_TRACE ? "`on pre`" : "`on post`");
            return false;
        }
        return true;
    }
    if (strchr(name, '.')) {
        sema_error(S, as->name_span, "cannot assign '%s': a rule reads the state of neurons but "
                   "does not change it", name);
    } else if (rule_local(r, name, RLOCAL_PARAM) >= 0 || namemap_get(&S->mparam_names, name) >= 0) {
        sema_error(S, as->name_span, "cannot assign to param '%s': params are fixed during a run", name);
        sema_hint(S, "a value that changes belongs in a `synapse` variable or a trace");
    } else if (rule_local(r, name, RLOCAL_LET) >= 0) {
        sema_error(S, as->name_span, "cannot assign to let '%s': a let names an expression", name);
    } else if (namemap_get(&S->mod_names, name) >= 0) {
        sema_error(S, as->name_span, "cannot assign modulator '%s' in a rule", name);
        sema_hint(S, "a modulator changes by releases, e.g. `release %s 0.1 per spike of R.P`", name);
    } else {
        sema_error(S, as->name_span, "unknown variable '%s' in rule '%s'", name, r->name);
        suggest_var(S, r, name, true);
    }
    return false;
}

/* Per-spike trace updates go before or after the synapse loop: all of
 * them on one side of the per-synapse statements (section 12). */
static bool assign_sections(Sema *S, RHandler *h, int which)
{
    int phase = RSEC_BEFORE, first_syn = -1;
    bool any_before = false;
    for (int i = 0; i < h->nitems; i++) {
        RAssign *as = &h->items[i];
        bool per_spike = as->target == IR_TGT_PRE || as->target == IR_TGT_POST;
        if (!per_spike && phase == RSEC_BEFORE) {
            phase = RSEC_SYN;
            first_syn = i;
        }
        bool mixed = per_spike ? phase == RSEC_SYN && any_before : phase == RSEC_AFTER;
        if (mixed) {
            sema_error(S, as->stmt->span, "in %s, the updates of %s traces (once per spike) must all "
                       "come before or all after the per-synapse statements", handler_names[which],
                       which == 0 ? "pre" : "post");
            sema_note(S, h->items[first_syn].stmt->span, "the first per-synapse statement is here");
            return false;
        }
        if (per_spike && phase == RSEC_SYN)
            phase = RSEC_AFTER;
        any_before |= per_spike && phase == RSEC_BEFORE;
        as->section = per_spike ? phase : RSEC_SYN;
    }
    return true;
}

static bool rule_handler(Sema *S, SemaRule *r, RHandler *h, int which)
{
    const Stmt *s = h->stmt;
    bool ok = true;
    h->items = arena_alloc(S->a, (size_t)(s->nbody + 1) * sizeof *h->items);
    for (int i = 0; i < s->nbody; i++) {
        Stmt *as = s->body[i];
        if (!as)
            continue;
        if (as->kind != STMT_ASSIGN || !as->name) {
            sema_error(S, as->span, "only assignments belong in %s", handler_names[which]);
            ok = false;
            continue;
        }
        RAssign *out = &h->items[h->nitems];
        out->stmt = as;
        if (assign_target(S, r, which, as, out))
            h->nitems++;
        else
            ok = false;
    }
    return ok && assign_sections(S, h, which);
}

static void rule_item(Sema *S, SemaRule *r, Stmt *s)
{
    switch (s->kind) {
    case STMT_PARAM: case STMT_LET: case STMT_SYNAPSE: case STMT_PRE_TRACE: case STMT_POST_TRACE:
        rule_add_local(S, r, s);
        break;
    case STMT_ODE: break;   /* after every variable is known */
    case STMT_BOUNDS: rule_single(S, &r->bounds, s, "bounds"); break;
    case STMT_ON_PRE: rule_single(S, &r->on_pre.stmt, s, "on pre"); break;
    case STMT_ON_POST: rule_single(S, &r->on_post.stmt, s, "on post"); break;
    case STMT_EVERY: rule_single(S, &r->every.stmt, s, "every"); break;
    case STMT_STATE:
        sema_error(S, s->span, "a rule has no `state`");
        sema_hint(S, "declare `synapse %s = ...` (per synapse), `pre %s = ...` or `post %s = ...` "
                  "(per neuron)", s->name ? s->name : "x", s->name ? s->name : "x",
                  s->name ? s->name : "x");
        break;
    default:
        sema_error(S, s->span, "this item does not belong in a plasticity rule");
        break;
    }
}

void sema_rule_tables(Sema *S, SemaRule *r)
{
    if (r->tabled)
        return;
    r->tabled = true;
    int errors = S->d->nerrors;
    const Decl *d = r->decl;
    for (int i = 0; i < d->nbody; i++)
        if (d->body[i])
            rule_item(S, r, d->body[i]);
    for (int i = 0; i < d->nbody; i++)
        if (d->body[i] && d->body[i]->kind == STMT_ODE)
            rule_bind_ode(S, r, d->body[i]);
    RHandler *hs[3] = {&r->on_pre, &r->on_post, &r->every};
    for (int i = 0; i < d->nbody; i++)   /* in source order, for the messages */
        for (int w = 0; w < 3; w++)
            if (d->body[i] && hs[w]->stmt == d->body[i])
                rule_handler(S, r, hs[w], w);
    r->bad = S->d->nerrors != errors;
}

/* ---- names inside rules -------------------------------------------------- */

static Scope rule_scope(Sema *S, RuleInst *ri, Ctx ctx)
{
    Scope sc = sema_scope(S, NULL, ctx);
    sc.ri = ri;
    return sc;
}

static bool ensure_rparam(Sema *S, RuleInst *ri, int k, SrcSpan use);

/* w, variables, modulators and neuron state change during a run: only
 * the equations (ODEs, handlers) read them. */
static bool dynamic_ok(Scope *sc, const Expr *x, const char *what)
{
    if (sc->ctx == CTX_EQ)
        return true;
    if (sc->ctx == CTX_INIT) {
        sema_error(sc->S, x->span, "an initial value cannot read %s", what);
        sema_hint(sc->S, "initial values may use params, constants, i and uniform()/normal()");
    } else {
        sema_error(sc->S, x->span, "a rule param, bound or interval cannot read %s", what);
        sema_hint(sc->S, "these are fixed for a run: they may use params and constants");
    }
    return false;
}

/* In a per-spike statement only the spiking side exists: no synapse. */
static bool side_ok(Scope *sc, const Expr *x, int side, const char *what)
{
    if (sc->side == RSIDE_ANY || side == sc->side)
        return true;
    const char *s = sc->side == RSIDE_PRE ? "pre" : "post";
    sema_error(sc->S, x->span, "%s, not per synapse, so it cannot read %s", sc->side_why, what);
    sema_hint(sc->S, "a per-spike statement may read params, %s traces, %s.X, modulators, t and dt",
              s, s);
    return false;
}

static TExpr rule_param_ref(Scope *sc, const Expr *x, int k)
{
    RuleInst *ri = sc->ri;
    if (!ensure_rparam(sc->S, ri, k, x->span))
        return sema_poison();
    const SParam *p = &sc->S->params[ri->param_sid[k]];
    return sema_typed(ir_param(sc->S->a, ri->param_sid[k], p->dim, x->span));
}

static TExpr rule_var_ref(Scope *sc, const Expr *x, int k)
{
    RuleInst *ri = sc->ri;
    const RVar *v = &ri->rule->vars[k];
    const char *what = arena_printf(sc->S->a, "the %s '%s'", var_kind_name(v->kind), v->name);
    int side = v->kind == IR_PRE_TRACE ? RSIDE_PRE : v->kind == IR_POST_TRACE ? RSIDE_POST : -1;
    if (!dynamic_ok(sc, x, what) || !side_ok(sc, x, side, what) || ri->var_how[k] == SDIM_BAD)
        return sema_poison();
    IrExpr *e = ir_new(sc->S->a, v->kind, ri->var_dim[k], x->span);
    e->index = v->index;
    TExpr t = sema_typed(e);
    if (ri->var_how[k] == SDIM_INFER) {
        t.flex = true;
        t.bind = k;
    }
    return t;
}

/* Lets are inlined at each use, in the user's scope. */
static TExpr rule_let_ref(Scope *sc, const Expr *x, int k)
{
    RLet *l = &sc->ri->rule->lets[k];
    if (l->busy) {
        sema_error(sc->S, x->span, "let '%s' refers to itself", l->name);
        return sema_poison();
    }
    l->busy = true;
    sc->depth++;
    TExpr t = sema_elab(sc, l->ast);
    sc->depth--;
    l->busy = false;
    return t;
}

static TExpr weight_ref(Scope *sc, const Expr *x)
{
    if (!dynamic_ok(sc, x, "the weight w") || !side_ok(sc, x, -1, "the weight w"))
        return sema_poison();
    return sema_typed(ir_new(sc->S->a, IR_WEIGHT, sc->ri->wdim, x->span));
}

static TExpr modulator_ref(Scope *sc, const Expr *x, int k)
{
    const SemaModulator *m = &sc->S->modulators[k];
    if (!dynamic_ok(sc, x, arena_printf(sc->S->a, "the modulator '%s'", m->name)) || !m->ok)
        return sema_poison();
    IrExpr *e = ir_new(sc->S->a, IR_MODULATOR, m->dim, x->span);
    e->index = k;
    return sema_typed(e);
}

static void suggest_state(Sema *S, const SemaNeuron *n, const char *name)
{
    const char **c = arena_alloc(S->a, (size_t)(n->nstates + 1) * sizeof *c);
    for (int i = 0; i < n->nstates; i++)
        c[i] = n->states[i].name;
    sema_suggest(S, name, c, n->nstates);
}

/* pre.X / post.X: state X of the source / target population's neurons. */
static TExpr side_state(Scope *sc, const Expr *x, bool pre)
{
    Sema *S = sc->S;
    const SemaPop *pop = pre ? sc->ri->proj->src : sc->ri->proj->dst;
    const char *var = x->parts[1], *side = pre ? "pre" : "post";
    const char *what = arena_printf(S->a, "%s.%s", side, var);
    if (!dynamic_ok(sc, x, what) || !side_ok(sc, x, pre ? RSIDE_PRE : RSIDE_POST, what))
        return sema_poison();
    const SemaNeuron *n = pop ? pop->neuron : NULL;
    if (!n || n->poisoned)
        return sema_poison();   /* reported with the population or the neuron */
    if (n->kind != ENGRAM_POP_NEURON) {
        sema_error(S, x->span, "%s: the %ssynaptic population %s is a source (builtin %s) and has "
                   "no state", what, side, pop->path, n->decl->builtin);
        return sema_poison();
    }
    int k = sema_find_state(n, var);
    if (k < 0) {
        sema_error(S, x->span, "%s: neuron '%s' (of the %ssynaptic population %s) has no state "
                   "variable '%s'", what, n->name, side, pop->path, var);
        suggest_state(S, n, var);
        return sema_poison();
    }
    IrExpr *e = ir_new(S->a, pre ? IR_PRE_STATE : IR_POST_STATE, n->states[k].dim, x->span);
    e->index = k;
    return sema_typed(e);
}

TExpr sema_rule_name(Scope *sc, const Expr *x, bool *found)
{
    const SemaRule *r = sc->ri->rule;
    *found = true;
    if (x->nparts == 2 && (strcmp(x->parts[0], "pre") == 0 || strcmp(x->parts[0], "post") == 0))
        return side_state(sc, x, x->parts[0][1] == 'r');
    if (x->nparts > 2 && (strcmp(x->parts[0], "pre") == 0 || strcmp(x->parts[0], "post") == 0)) {
        sema_error(sc->S, x->span, "%s.X names a state variable X of the %ssynaptic neuron",
                   x->parts[0], x->parts[0]);
        return sema_poison();
    }
    const char *name = x->parts[0];
    int k;
    if (x->nparts == 1 && (k = rule_local(r, name, RLOCAL_PARAM)) >= 0)
        return rule_param_ref(sc, x, k);
    if (x->nparts == 1 && (k = rule_local(r, name, RLOCAL_VAR)) >= 0)
        return rule_var_ref(sc, x, k);
    if (x->nparts == 1 && (k = rule_local(r, name, RLOCAL_LET)) >= 0)
        return rule_let_ref(sc, x, k);
    if (x->nparts == 1 && strcmp(name, "w") == 0)
        return weight_ref(sc, x);
    if (x->nparts == 1 && (k = namemap_get(&sc->S->mod_names, name)) >= 0)
        return modulator_ref(sc, x, k);
    *found = false;
    return sema_poison();
}

int sema_rule_candidates(const Scope *sc, const char **c)
{
    const SemaRule *r = sc->ri->rule;
    const Sema *S = sc->S;
    int n = 0;
    for (int k = 0; k < r->nparams; k++, n++)
        if (c)
            c[n] = r->params[k].name;
    for (int k = 0; k < r->nvars; k++, n++)
        if (c)
            c[n] = r->vars[k].name;
    for (int k = 0; k < r->nlets; k++, n++)
        if (c)
            c[n] = r->lets[k].name;
    for (int k = 0; k < S->nmodulators; k++, n++)
        if (c)
            c[n] = S->modulators[k].name;
    if (c)
        c[n] = "w";
    return n + 1;
}

void sema_rule_bind(Sema *S, int var, EngramDim dim)
{
    RuleInst *ri = S->rinst;
    if (!ri || var < 0 || var >= ri->rule->nvars || ri->var_how[var] != SDIM_INFER)
        return;
    ri->var_dim[var] = dim;
    ri->var_how[var] = SDIM_KNOWN;
    S->changed = true;
}

/* ---- rule params --------------------------------------------------------- */

static const char *dim_text(Sema *S, EngramDim d)
{
    char buf[96];
    return arena_strdup(S->a, sema_dim_describe(d, buf, sizeof buf));
}

/* The rule's default, elaborated in the rule (its errors belong to it). */
static bool rparam_default(Sema *S, RuleInst *ri, const RParam *rp, EngramDim *dim, IrExpr **value)
{
    Scope sc = rule_scope(S, ri, CTX_NPARAM);
    TExpr t = sema_elab(&sc, rp->ast);
    if (rp->weight_unit) {
        const char *why = arena_printf(S->a, "'%s' is declared `: weight`: it takes the unit of the "
                                       "weights of projection '%s'", rp->name, ri->proj->name);
        if (!sema_expect_dim(S, &t, ri->wdim, rp->ast, why))
            return false;
    } else if (!sema_need_number(&sc, &t, rp->ast)) {
        return false;
    } else if (t.flex) {
        sema_flex_set(S, &t, DIM_NONE);
    }
    *dim = t.e->dim;
    *value = t.e;
    return true;
}

/* The use's argument, elaborated at model level like a population override. */
static bool rparam_arg(Sema *S, RuleInst *ri, const RParam *rp, const Arg *arg, bool known,
                       EngramDim *dim, IrExpr **value)
{
    Scope sc = sema_scope(S, NULL, CTX_MODEL);
    TExpr t = sema_elab(&sc, arg->value);
    const char *why = rp->weight_unit
        ? arena_printf(S->a, "'%s' is declared `: weight`: it takes the unit of the weights of "
                       "projection '%s'", rp->name, ri->proj->name)
        : NULL;
    if (known ? !sema_expect_dim(S, &t, *dim, arg->value, why) : !sema_need_number(&sc, &t, arg->value))
        return false;
    if (t.flex)
        sema_flex_set(S, &t, DIM_NONE);
    *dim = t.e->dim;
    *value = t.e;
    return true;
}

/* PROJ.<param>: the use's argument or the rule's default; a `: weight`
 * param takes the projection's weight unit, and without a default the use
 * must give it. */
static void rparam_value(Sema *S, RuleInst *ri, int k)
{
    const RParam *rp = &ri->rule->params[k];
    const Arg *arg = ri->args[k];
    EngramDim dim = rp->weight_unit ? ri->wdim : DIM_NONE;
    IrExpr *value = NULL;
    bool ok = true, known = rp->weight_unit;
    if (rp->ast) {
        ok = rparam_default(S, ri, rp, &dim, &value);
        known = known || ok;
    }
    SrcSpan span = rp->span;
    if (arg) {
        ok = rparam_arg(S, ri, rp, arg, known, &dim, &value) && ok;
        span = arg->name ? arg->name_span : arg->value->span;
    } else if (!rp->ast) {
        sema_error(S, ri->use->name_span, "rule '%s' needs the argument '%s' (a weight: %s for "
                   "projection '%s')", ri->rule->name, rp->name, dim_text(S, ri->wdim), ri->proj->name);
        sema_note(S, rp->span, "'%s' is declared here without a default", rp->name);
        ok = false;
    }
    SParam *p = &S->params[ri->param_sid[k]];
    p->dim = dim;
    p->value = ok ? value : NULL;
    p->ok = ok && value;
    p->span = span;
}

static bool ensure_rparam(Sema *S, RuleInst *ri, int k, SrcSpan use)
{
    const char *name = ri->rule->params[k].name;
    if (ri->param_visit[k] == VISIT_DONE)
        return S->params[ri->param_sid[k]].ok;
    if (ri->param_visit[k] == VISIT_BUSY) {
        sema_error(S, use, "param '%s' depends on itself: %s", name, sema_busy_chain(S, ri, k, name));
        return false;
    }
    if (sema_busy_full(S, use))
        return false;
    bool quiet = S->silent;
    S->silent = false;   /* a param's own errors are reported whoever asks first */
    ri->param_visit[k] = VISIT_BUSY;
    sema_busy_push(S, ri, k, name);
    rparam_value(S, ri, k);
    S->nbusy--;
    ri->param_visit[k] = VISIT_DONE;
    S->silent = quiet;
    return S->params[ri->param_sid[k]].ok;
}

/* The use's arguments, by position or by name; a name the rule does not
 * declare is reported here, in the rule's words. */
static void rule_bind_args(Sema *S, RuleInst *ri, const char *const *names)
{
    const SemaRule *r = ri->rule;
    const Stmt *use = ri->use;
    Arg **args = arena_alloc(S->a, (size_t)(use->nargs + 1) * sizeof *args);
    int n = 0;
    for (int i = 0; i < use->nargs; i++) {
        Arg *a = use->args[i];
        if (a && a->name && rule_local(r, a->name, RLOCAL_PARAM) < 0) {
            sema_error(S, a->name_span, "rule '%s' has no param '%s'", r->name, a->name);
            sema_suggest(S, a->name, names, r->nparams);
            continue;
        }
        args[n++] = a;
    }
    sema_bind_args(S, r->name, use->span, args, n, names, 0, r->nparams, ri->args);
}

static void rule_params(Sema *S, RuleInst *ri)
{
    const SemaRule *r = ri->rule;
    const SemaProj *p = ri->proj;
    const char **names = arena_alloc(S->a, (size_t)(r->nparams + 1) * sizeof *names);
    for (int k = 0; k < r->nparams; k++)
        names[k] = r->params[k].name;
    ri->args = arena_alloc(S->a, (size_t)(r->nparams + 1) * sizeof *ri->args);
    rule_bind_args(S, ri, names);
    ri->param_sid = arena_alloc(S->a, (size_t)(r->nparams + 1) * sizeof *ri->param_sid);
    ri->param_visit = arena_alloc(S->a, (size_t)(r->nparams + 1) * sizeof *ri->param_visit);
    for (int k = 0; k < r->nparams; k++)
        ri->param_sid[k] = sema_sparam_new(S, arena_printf(S->a, "%s.%s", p->name, names[k]),
                                           DIM_NONE, 0, r->params[k].span);
    ri->plastic_sid = sema_sparam_new(S, arena_printf(S->a, "%s.plastic", p->name), DIM_NONE,
                                      ENGRAM_PARAM_NONNEG, ri->use->span);
    S->params[ri->plastic_sid].value = ir_const(S->a, 1, DIM_NONE, ri->use->span);
    for (int k = 0; k < r->nparams; k++)
        ensure_rparam(S, ri, k, r->params[k].span);
}

/* ---- variables and inference --------------------------------------------- */

static void rule_inits(Sema *S, RuleInst *ri)
{
    const SemaRule *r = ri->rule;
    for (int k = 0; k < r->nvars; k++) {
        Scope sc = rule_scope(S, ri, CTX_INIT);
        TExpr t = sema_elab(&sc, r->vars[k].init_ast);
        ri->vars[k].name = r->vars[k].name;
        ri->vars[k].init = t.e;
        if (!r->vars[k].init_ast || !sema_need_number(&sc, &t, r->vars[k].init_ast)) {
            ri->var_how[k] = SDIM_BAD;
        } else if (t.flex) {
            ri->var_how[k] = SDIM_INFER;
        } else {
            ri->var_how[k] = SDIM_KNOWN;
            ri->var_dim[k] = t.e->dim;
        }
    }
}

/* The linear analysis speaks of state variables; here there is one, x:
 * "a product of state variables" -> "a product of 'x' with itself". */
static const char *var_reason(Sema *S, const char *why, const char *x)
{
    const char *p = why ? strstr(why, "state variable") : NULL;
    if (!p)
        return why ? why : "not linear";
    bool plural = strncmp(p, "state variables", 15) == 0;
    size_t head = (size_t)(p - why);
    if (!plural && head >= 2 && strncmp(p - 2, "a ", 2) == 0)
        head -= 2;
    return arena_printf(S->a, "%.*s'%s'%s%s", (int)head, why, x, plural ? " with itself" : "",
                        p + (plural ? 15 : 14));
}

/* dx/dt = a*x + b: the dimension, then (final) the coefficients. */
static void rule_ode(Sema *S, RuleInst *ri, int k, bool final)
{
    char a[64], b[64];
    const RVar *v = &ri->rule->vars[k];
    const Stmt *s = v->ode_stmt;
    Scope sc = rule_scope(S, ri, CTX_EQ);
    TExpr t = sema_elab(&sc, s->expr);
    if (!sema_need_number(&sc, &t, s->expr) || ri->var_how[k] == SDIM_BAD)
        return;
    EngramDim want;
    if (ri->var_how[k] == SDIM_INFER) {
        if (!t.flex && t.bind < 0 && sema_dim_combine(S, t.e->dim, DIM_TIME, 1, s->span, &want))
            sema_rule_bind(S, k, want);
        return;
    }
    if (!sema_dim_combine(S, ri->var_dim[k], DIM_TIME, -1, s->span, &want))
        return;
    if (t.flex) {
        sema_flex_set(S, &t, want);
    } else if (!engram_dim_eq(t.e->dim, want)) {
        sema_error(S, s->expr->span, "d%s/dt must be in %s (the unit of %s per time), got %s",
                   v->name, engram_dim_name(want, a, sizeof a), v->name,
                   engram_dim_name(t.e->dim, b, sizeof b));
        if (engram_dim_eq(t.e->dim, ri->var_dim[k]))
            sema_hint(S, "divide by a time constant, e.g. -%s / tau", v->name);
        return;
    }
    if (!final)
        return;
    const char *why = NULL;
    IrExpr *la, *lb;
    const IrExpr *bad = sema_linearize_var(S, t.e, v->kind, v->index, &la, &lb, &why);
    if (bad) {
        sema_error(S, bad->span, "the ODE of %s '%s' must be linear in '%s' alone (d%s/dt = a*%s + b "
                   "with a and b made of params), but this is %s", var_kind_name(v->kind), v->name,
                   v->name, v->name, v->name, var_reason(S, why, v->name));
        sema_hint(S, "rule variables are integrated exactly between events; put other dynamics "
                  "in an `every` block");
        return;
    }
    ri->vars[k].lin_a = la;
    ri->vars[k].lin_b = lb;
}

static void rule_handlers(Sema *S, RuleInst *ri, bool final);

/* Lets are checked at their uses; in the inference passes they also bind. */
static void rule_equations(Sema *S, RuleInst *ri, bool final)
{
    const SemaRule *r = ri->rule;
    for (int k = 0; k < r->nvars; k++)
        if (r->vars[k].ode_stmt)
            rule_ode(S, ri, k, final);
    rule_handlers(S, ri, final);
    for (int k = 0; !final && k < r->nlets; k++) {
        Scope sc = rule_scope(S, ri, CTX_EQ);
        sema_elab(&sc, r->lets[k].ast);
    }
}

/* Quiet passes bind the variables that start at a bare 0; each pass binds
 * at least one or stops. */
static void rule_infer(Sema *S, RuleInst *ri)
{
    const SemaRule *r = ri->rule;
    bool any = false;
    for (int k = 0; k < r->nvars; k++)
        any |= ri->var_how[k] == SDIM_INFER;
    if (any) {
        S->silent = true;
        for (int pass = 0; pass <= r->nvars && pass < SEMA_MAX_INFER_PASSES; pass++) {
            S->changed = false;
            rule_equations(S, ri, false);
            if (!S->changed)
                break;
        }
        S->silent = false;
    }
    for (int k = 0; k < r->nvars; k++) {
        if (ri->var_how[k] == SDIM_INFER) {
            ri->var_dim[k] = DIM_NONE;
            ri->var_how[k] = SDIM_KNOWN;
        }
        ri->vars[k].dim = ri->var_dim[k];
        if (ri->vars[k].init && !ri->vars[k].init->is_bool)
            sema_flex_set_dim(ri->vars[k].init, ri->var_dim[k]);
    }
}

/* ---- handlers ------------------------------------------------------------ */

static void push_assign(Sema *S, IrHandler *h, int section, IrRuleAssign as)
{
    (void)S;
    if (section == RSEC_BEFORE)
        h->before[h->nbefore++] = as;
    else if (section == RSEC_AFTER)
        h->after[h->nafter++] = as;
    else
        h->syn[h->nsyn++] = as;
}

static void rule_assign(Sema *S, RuleInst *ri, const RAssign *as, int which, bool final, IrHandler *h)
{
    const Stmt *st = as->stmt;
    Scope sc = rule_scope(S, ri, CTX_EQ);
    if (as->section != RSEC_SYN) {
        sc.side = which == 0 ? RSIDE_PRE : RSIDE_POST;
        sc.side_why = which == 0 ? "this update of a pre trace runs once per presynaptic spike"
                                 : "this update of a post trace runs once per postsynaptic spike";
    }
    TExpr t = sema_elab(&sc, st->expr);
    if (!st->expr || !sema_need_number(&sc, &t, st->expr))
        return;
    int how = as->var >= 0 ? ri->var_how[as->var] : SDIM_KNOWN;
    EngramDim dim = as->var >= 0 ? ri->var_dim[as->var] : ri->wdim;
    bool ok;
    if (st->assign_op == ASSIGN_MUL) {
        ok = sema_expect_dim(S, &t, DIM_NONE, st->expr, "`*=` scales a variable by a dimensionless factor");
    } else if (how == SDIM_INFER) {
        if (!t.flex)
            sema_rule_bind(S, as->var, t.e->dim);
        return;
    } else if (how == SDIM_BAD) {
        return;
    } else {
        const char *why = as->var < 0
            ? arena_printf(S->a, "w is a weight of projection '%s'", ri->proj->name) : NULL;
        ok = sema_expect_dim(S, &t, dim, st->expr, why);
    }
    if (!ok || !final)
        return;
    IrRuleAssign ir = {as->target, as->var >= 0 ? ri->rule->vars[as->var].index : -1, st->assign_op, t.e};
    push_assign(S, h, as->section, ir);
}

static void rule_handler_ir(Sema *S, RuleInst *ri, const RHandler *rh, int which, bool final,
                            IrHandler *h)
{
    if (!rh->stmt)
        return;
    if (final) {
        size_t n = (size_t)rh->nitems + 1;
        *h = (IrHandler){arena_alloc(S->a, n * sizeof(IrRuleAssign)), 0,
                         arena_alloc(S->a, n * sizeof(IrRuleAssign)), 0,
                         arena_alloc(S->a, n * sizeof(IrRuleAssign)), 0};
    }
    for (int i = 0; i < rh->nitems; i++)
        rule_assign(S, ri, &rh->items[i], which, final, h);
}

static void rule_handlers(Sema *S, RuleInst *ri, bool final)
{
    const SemaRule *r = ri->rule;
    rule_handler_ir(S, ri, &r->on_pre, 0, final, &ri->on_pre);
    rule_handler_ir(S, ri, &r->on_post, 1, final, &ri->on_post);
    rule_handler_ir(S, ri, &r->every, 2, final, &ri->every);
}

/* ---- bounds and every ---------------------------------------------------- */

/* A value fixed for the run, elaborated in the rule: the param `path`. */
static int rule_fixed(Sema *S, RuleInst *ri, const char *path, const Expr *x, SrcSpan at,
                      EngramDim want, uint32_t flags, const char *why)
{
    Scope sc = rule_scope(S, ri, CTX_NPARAM);
    TExpr t = sema_elab(&sc, x);
    bool ok = x && sema_expect_dim(S, &t, want, x, why);
    int sid = sema_sparam_new(S, path, want, flags, x ? x->span : at);
    S->params[sid].value = ok ? t.e : NULL;
    S->params[sid].ok = ok;
    return sid;
}

/* bounds lo, hi: PROJ.w_lo and PROJ.w_hi, whose defaults are the bound
 * expressions with the rule's params read as this projection's copies. */
static void rule_bounds(Sema *S, RuleInst *ri)
{
    const Stmt *b = ri->rule->bounds;
    ri->w_lo_sid = ri->w_hi_sid = -1;
    if (!b)
        return;
    const char *name = ri->proj->name;
    const char *why = arena_printf(S->a, "the bounds of w are in the unit of the weights of "
                                   "projection '%s'", name);
    ri->w_lo_sid = rule_fixed(S, ri, arena_printf(S->a, "%s.w_lo", name), b->expr, b->span, ri->wdim,
                              0, why);
    ri->w_hi_sid = rule_fixed(S, ri, arena_printf(S->a, "%s.w_hi", name), b->expr2, b->span, ri->wdim,
                              0, why);
    double lo, hi;
    if (S->params[ri->w_lo_sid].ok && S->params[ri->w_hi_sid].ok &&
        sema_fold_sid(S, ri->w_lo_sid, &lo) && sema_fold_sid(S, ri->w_hi_sid, &hi) && lo > hi)
        sema_error(S, b->span, "the lower bound of w (%g) is above the upper bound (%g) for "
                   "projection '%s'", lo, hi, name);
}

/* every T: PROJ.every, a positive time. */
static void rule_every(Sema *S, RuleInst *ri)
{
    const Stmt *e = ri->rule->every.stmt;
    ri->every_sid = -1;
    if (!e)
        return;
    ri->every_sid = rule_fixed(S, ri, arena_printf(S->a, "%s.every", ri->proj->name), e->expr, e->span,
                               DIM_TIME, ENGRAM_PARAM_POSITIVE, "an `every` interval is a time");
    ri->every_expr = e->expr;
    double v;
    if (S->params[ri->every_sid].ok && sema_fold_sid(S, ri->every_sid, &v) && v <= 0)
        sema_error(S, e->expr->span, "an `every` interval must be positive, got %g ms", v);
}

/* ---- the use of a rule --------------------------------------------------- */

static SemaRule *find_rule(Sema *S, const Stmt *use)
{
    const Module *m = S->main;
    const char **c = arena_alloc(S->a, (size_t)(m->nscope + 1) * sizeof *c);
    int n = 0;
    for (int i = 0; i < m->nscope; i++) {
        const NameEntry *e = &m->scope[i];
        if (strcmp(e->name, use->name) == 0 && e->rule)
            return e->rule;
        if (strcmp(e->name, use->name) == 0) {
            sema_error(S, use->name_span, "'%s' is a neuron, not a plasticity rule", use->name);
            return NULL;
        }
        if (e->rule)
            c[n++] = e->name;
    }
    sema_error(S, use->name_span, "unknown plasticity rule '%s'", use->name);
    if (n == 0)
        sema_hint(S, "define it with `plasticity %s { ... }` or import it, e.g. "
                  "`use std.plasticity (STDP)`", use->name);
    else
        sema_suggest(S, use->name, c, n);
    return NULL;
}

static RuleInst *inst_new(Sema *S, SemaRule *r, SemaProj *p, const Stmt *use, EngramDim wdim)
{
    RuleInst *ri = arena_alloc(S->a, sizeof *ri);
    size_t nv = (size_t)r->nvars + 1;
    ri->rule = r;
    ri->proj = p;
    ri->use = use;
    ri->wdim = wdim;
    ri->var_dim = arena_alloc(S->a, nv * sizeof *ri->var_dim);
    ri->var_how = arena_alloc(S->a, nv * sizeof *ri->var_how);
    ri->vars = arena_alloc(S->a, nv * sizeof *ri->vars);
    ri->plastic_sid = ri->w_lo_sid = ri->w_hi_sid = ri->every_sid = -1;
    return ri;
}

bool sema_check_plasticity(Sema *S, SemaProj *p, const Stmt *use, EngramDim wdim)
{
    if (!use->name)
        return false;
    SemaRule *r = find_rule(S, use);
    if (!r)
        return false;
    sema_rule_tables(S, r);
    if (r->bad)
        return false;   /* its errors are reported; a use would only echo them */
    int all = S->nerrors_all, shown = S->d->nerrors;
    bool first = r->nuses++ == 0;
    RuleInst *ri = inst_new(S, r, p, use, wdim);
    p->plastic = ri;
    S->rinst = ri;
    S->dedupe = true;
    rule_params(S, ri);
    rule_inits(S, ri);
    rule_infer(S, ri);
    rule_equations(S, ri, true);
    rule_bounds(S, ri);
    rule_every(S, ri);
    S->rinst = NULL;
    S->dedupe = S->muted = false;
    if (S->d->nerrors != shown && !first)
        sema_note(S, use->span, "in the use of rule '%s' by projection '%s' (weights in %s)",
                  r->name, p->name, dim_text(S, wdim));
    return S->nerrors_all == all;
}

/* ---- modulators ---------------------------------------------------------- */

static void modulator_setting(Sema *S, const Stmt *s, const Stmt **seen)
{
    static const char *const names[] = {"baseline", "tau"};
    int k = strcmp(s->name, "baseline") == 0 ? 0 : strcmp(s->name, "tau") == 0 ? 1 : -1;
    if (k < 0) {
        sema_error(S, s->name_span, "unknown modulator setting '%s'", s->name);
        const char *near = diag_suggest(s->name, names, 2);
        sema_hint(S, near ? "did you mean '%s'?" : "a modulator has a %s and a tau",
                  near ? near : "baseline");
        return;
    }
    if (seen[k]) {
        sema_error(S, s->name_span, "'%s' is set twice", s->name);
        sema_note(S, seen[k]->name_span, "the first is here");
        return;
    }
    seen[k] = s;
}

/* dm/dt = (baseline - m) / tau: m has the unit of baseline (default 0,
 * dimensionless); tau is a positive time and must be given. */
static void check_modulator(Sema *S, SemaModulator *m)
{
    const Decl *d = m->decl;
    const Stmt *seen[2] = {0};
    for (int i = 0; i < d->nbody; i++)
        if (d->body[i] && d->body[i]->name && d->body[i]->kind == STMT_SETTING)
            modulator_setting(S, d->body[i], seen);
    if (namemap_get(&S->mparam_names, m->name) >= 0)
        sema_error(S, d->name_span, "the name '%s' is already a model param", m->name);
    const char *base = arena_printf(S->a, "%s.baseline", m->name);
    if (seen[0] && seen[0]->expr) {
        m->baseline_sid = sema_arg_param(S, base, seen[0]->expr, DIM_NONE, false, 0, NULL);
        m->dim = S->params[m->baseline_sid].dim;
    } else {
        m->baseline_sid = sema_sparam_new(S, base, DIM_NONE, 0, d->name_span);
        S->params[m->baseline_sid].value = ir_const(S->a, 0, DIM_NONE, d->name_span);
    }
    const char *tau = arena_printf(S->a, "%s.tau", m->name);
    double v;
    if (seen[1] && seen[1]->expr) {
        m->tau_sid = sema_arg_param(S, tau, seen[1]->expr, DIM_TIME, true, ENGRAM_PARAM_POSITIVE,
                                    "tau is the time constant of the modulator's decay");
        if (S->params[m->tau_sid].ok && sema_fold_sid(S, m->tau_sid, &v) && v <= 0)
            sema_error(S, seen[1]->expr->span, "a modulator's tau must be positive, got %g ms", v);
    } else {
        sema_error(S, d->name_span, "modulator '%s' has no tau", m->name);
        sema_hint(S, "add one, e.g. `modulator %s { baseline = 0; tau = 200 ms }`", m->name);
    }
    /* usable by rules and releases when its unit is known (other errors
     * are reported and stop the compilation anyway) */
    m->ok = S->params[m->baseline_sid].ok && m->tau_sid >= 0;
}

void sema_check_modulators(Sema *S)
{
    for (int i = 0; i < S->nmodulators; i++)
        check_modulator(S, &S->modulators[i]);
}

/* ---- releases ------------------------------------------------------------ */

static int release_modulator(Sema *S, const Decl *d)
{
    int k = d->name ? namemap_get(&S->mod_names, d->name) : -1;
    if (k >= 0 || !d->name)
        return k;
    sema_error(S, d->name_span, "unknown modulator '%s'", d->name);
    if (S->nmodulators == 0) {
        sema_hint(S, "declare it, e.g. `modulator %s { baseline = 0; tau = 200 ms }`", d->name);
        return -1;
    }
    const char **c = arena_alloc(S->a, (size_t)(S->nmodulators + 1) * sizeof *c);
    for (int i = 0; i < S->nmodulators; i++)
        c[i] = S->modulators[i].name;
    sema_suggest(S, d->name, c, S->nmodulators);
    return -1;
}

/* A watched neuron: a whole number within the population when constant. */
static int release_index(Sema *S, const char *path, const Expr *x, const SemaPop *pop, SrcSpan at)
{
    if (!x) {
        sema_error(S, at, "a release `when` needs a neuron index, e.g. %s[0]", pop ? pop->path : "R.P");
        return -1;
    }
    int sid = sema_arg_param(S, path, x, DIM_NONE, true, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG,
                             "a neuron index is a number");
    double v, size;
    if (!S->params[sid].ok || !sema_fold_sid(S, sid, &v))
        return sid;
    if (v < 0 || v != floor(v))
        sema_error(S, x->span, "a neuron index must be a whole number >= 0, got %g", v);
    else if (pop && sema_fold_sid(S, pop->size_sid, &size) && v >= round(size))
        sema_error(S, x->span, "neuron index %g is outside %s (size %g)", v, pop->path, round(size));
    return sid;
}

static void release_when(Sema *S, SemaRelease *r)
{
    const Decl *d = r->decl;
    r->dst = sema_path_pop(S, &d->dst);
    r->src_index_sid = release_index(S, arena_printf(S->a, "%s.src_index", r->name), d->index, r->src,
                                     d->src.span);
    r->dst_index_sid = release_index(S, arena_printf(S->a, "%s.dst_index", r->name), d->index2, r->dst,
                                     d->dst.span);
    double v;
    if (d->window) {
        r->window_sid = sema_arg_param(S, arena_printf(S->a, "%s.window", r->name), d->window,
                                       DIM_TIME, true, ENGRAM_PARAM_NONNEG, "a window is a time");
        if (S->params[r->window_sid].ok && sema_fold_sid(S, r->window_sid, &v) && v < 0)
            sema_error(S, d->window->span, "a window cannot be negative, got %g ms", v);
    }
    if (!d->delay)
        return;
    r->delay = sema_link_value(S, arena_printf(S->a, "%s.delay", r->name), d->delay, DIM_TIME, true,
                               "a delay is a time");
    for (int k = 0; k < 4; k++)
        if (r->delay.sid[k] >= 0 && k != 1)
            S->params[r->delay.sid[k]].flags |= ENGRAM_PARAM_NONNEG;
}

static void check_release(Sema *S, SemaRelease *r)
{
    const Decl *d = r->decl;
    int errors = S->d->nerrors;
    r->modulator = release_modulator(S, d);
    const SemaModulator *m = r->modulator >= 0 ? &S->modulators[r->modulator] : NULL;
    if (d->expr) {
        const char *why = m ? arena_printf(S->a, "an amount has the unit of modulator '%s'", m->name) : NULL;
        r->amount_sid = sema_arg_param(S, arena_printf(S->a, "%s.amount", r->name), d->expr,
                                       m ? m->dim : DIM_NONE, m && m->ok, 0, why);
    }
    r->src = sema_path_pop(S, &d->src);
    if (d->release_kind == RELEASE_WHEN)
        release_when(S, r);
    r->ok = S->d->nerrors == errors && m && m->ok && r->amount_sid >= 0;
}

void sema_check_releases(Sema *S)
{
    for (int i = 0; i < S->nreleases; i++)
        check_release(S, &S->releases[i]);
}

/* ---- weight records ------------------------------------------------------ */

static char *path_text(Arena *a, const Path *p)
{
    size_t n = 1;
    for (int i = 0; i < p->nparts; i++)
        n += strlen(p->parts[i]) + 1;
    char *s = arena_alloc(a, n), *o = s;
    for (int i = 0; i < p->nparts; i++)
        o += sprintf(o, "%s%s", i ? "." : "", p->parts[i]);
    return s;
}

/* `record weights NAME` or `record weights SRC -> DST` (a projection's
 * name is its given name or SRC->DST). */
static const char *wrec_name(Sema *S, const Decl *d, SrcSpan *at)
{
    if (d->src.nparts > 0 && d->dst.nparts > 0) {
        *at = d->src.span;
        at->last_line = d->dst.span.last_line;
        at->last_column = d->dst.span.last_column;
        const char *src = path_text(S->a, &d->src), *dst = path_text(S->a, &d->dst);
        if (d->index)
            src = arena_printf(S->a, "%s[%s]", src, ast_expr_text(S->a, d->index));
        if (d->index2)
            dst = arena_printf(S->a, "%s[%s]", dst, ast_expr_text(S->a, d->index2));
        return arena_printf(S->a, "%s->%s", src, dst);
    }
    if (d->npaths > 0) {
        *at = d->paths[0].span;
        return path_text(S->a, &d->paths[0]);
    }
    *at = d->span;
    return NULL;
}

static void check_weight_rec(Sema *S, SemaWeightRec *w, int self)
{
    const Decl *d = w->decl;
    SrcSpan at;
    const char *name = wrec_name(S, d, &at);
    int k = name ? namemap_get(&S->link_names, name) : -1;
    if (k <= -2) {
        sema_error(S, at, "'%s' is a drive; only projections have weights to record", name);
        return;
    }
    if (k < 0) {
        sema_error(S, at, "unknown projection '%s'", name ? name : "?");
        const char **c = arena_alloc(S->a, (size_t)(S->nprojs + 1) * sizeof *c);
        for (int i = 0; i < S->nprojs; i++)
            c[i] = S->projs[i].name;
        if (name)
            sema_suggest(S, name, c, S->nprojs);
        return;
    }
    for (int i = 0; i < self; i++) {
        if (S->wrecs[i].proj == k) {
            sema_error(S, at, "the weights of projection '%s' are recorded twice", name);
            sema_note(S, S->wrecs[i].decl->span, "the first record is here");
            return;
        }
    }
    w->proj = k;
    const char *path = arena_printf(S->a, "%s.record_every", S->projs[k].name);
    double v;
    if (d->every) {
        w->every_sid = sema_arg_param(S, path, d->every, DIM_TIME, true, ENGRAM_PARAM_POSITIVE,
                                      "a sampling interval is a time");
        if (S->params[w->every_sid].ok && sema_fold_sid(S, w->every_sid, &v) && v <= 0)
            sema_error(S, d->every->span, "a sampling interval must be positive, got %g ms", v);
    } else {
        w->every_sid = sema_sparam_new(S, path, DIM_TIME, ENGRAM_PARAM_POSITIVE, d->span);
        S->params[w->every_sid].value = ir_const(S->a, WEIGHT_REC_EVERY_MS, DIM_TIME, d->span);
    }
}

void sema_check_weight_recs(Sema *S)
{
    for (int i = 0; i < S->nwrecs; i++)
        check_weight_rec(S, &S->wrecs[i], i);
}

/* ---- every intervals against dt ------------------------------------------ */

/* After the settings, which may change dt: a constant interval shorter
 * than one step is an error (rounded to steps it would be 0). */
void sema_check_every(Sema *S)
{
    double v, dt;
    if (!sema_fold_sid(S, S->dt_sid, &dt))
        return;
    S->dedupe = true;   /* two uses of a rule: one message at the interval */
    for (int i = 0; i < S->nprojs; i++) {
        const RuleInst *ri = S->projs[i].plastic;
        if (ri && ri->every_sid >= 0 && S->params[ri->every_sid].ok &&
            sema_fold_sid(S, ri->every_sid, &v) && v > 0 && v < dt * (1 - 1e-9))
            sema_error(S, ri->every_expr->span, "an `every` interval of %g ms is shorter than the "
                       "time step dt = %g ms", v, dt);
    }
    S->dedupe = S->muted = false;
}
