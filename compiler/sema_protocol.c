/*
 * sema_protocol.c - ensembles, sequences, measures and protocols
 * (docs/language.md sections 15-16; called from check.c and lower.c).
 *
 *   ensembles   `ensembles POP = split(n)` or `[A, B]` (named equal parts)
 *               or `[A: 0..99, 100..199]` (inclusive index ranges); each
 *               bound and the count become params (REGION.POP.ensembles,
 *               REGION.POP.ensembles.NAME.lo ...), so --set reaches them.
 *   sequences   `sequence S = POP[i, j, ...] every T { threshold = x
 *               window = W }`: constant element indices of POP's ensembles;
 *               S.interval, S.threshold, S.window are params.
 *   measures    calls recall(S), order(S), jitter(S), replay(S), rate(T),
 *               sparseness(S or T), weight(A -> B): one table entry per
 *               distinct text (the column name), per protocol.
 *   protocols   a tree of statements (IrStmt) whose expressions read params,
 *               loop variables (IR_VAR) and, in a reward's condition,
 *               measures (IR_MEASURE).  The runtime interprets it.
 *
 * Expressions are elaborated by check.c with Scope.proto set, which sends
 * loop-variable names and measure calls here (sema_proto_name/_call).  IR
 * expressions hold SParam ids until sema_lower_protocols maps them.
 *
 * Order: helpers, ensembles, sequences, targets and measures, statements,
 * protocols, lowering.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema_internal.h"

/* What a protocol's expressions see. */
typedef struct ProtoScope {
    Sema *S;
    int protocol;                          /* index of the protocol being checked */
    const char **vars; int nvars, capvars; /* every loop variable by slot */
    int *active; int nactive, capactive;   /* slots in scope, innermost last */
    bool cond;                             /* measures allowed (a reward's condition) */
    int named_depth;                       /* open named blocks */
} ProtoScope;

static const EngramDim DIM_NONE_ = {0, 0, 0};

enum { SEMA_MAX_CHECKPOINT_NAME = 200 };   /* as the runtime (protocol.c) */

static EngramDim dim_time(void) { return engram_dim(1, 0, 0); }
static EngramDim dim_rate(void) { return engram_dim(-1, 0, 0); }

static Expr *synth_number(Sema *S, double v, const char *unit, SrcSpan at)
{
    Expr *e = ast_expr_new(S->a, unit ? EXPR_QUANTITY : EXPR_NUMBER, at);
    e->value = v;
    e->unit = unit;
    e->unit_span = at;
    return e;
}

/* Canonical text of an expression (measure names, messages). */
static const char *expr_text(Sema *S, const Expr *x)
{
    return ast_expr_text(S->a, x);
}

static int pop_index(const Sema *S, const SemaPop *p)
{
    return p ? (int)(p - S->pops) : -1;
}

/* ---- ensembles ---------------------------------------------------------------- */

/* The ensemble group of a population: -1 when it has none, -2 when its
 * declaration had errors (already reported: callers stay quiet). */
static int group_of_pop(const Sema *S, int pop)
{
    for (int g = 0; g < S->nens; g++)
        if (S->ens[g].pop == pop)
            return S->ens[g].ok ? g : -2;
    return -1;
}

static bool items_all_named(const Decl *d)
{
    for (int i = 0; i < d->nargs; i++)
        if (d->args[i]->value)
            return false;
    return true;
}

static void ens_names(Sema *S, SemaEnsGroup *g)
{
    const Decl *d = g->decl;
    NameMap seen = {0};
    g->names = arena_alloc(S->a, (size_t)(d->nargs + 1) * sizeof *g->names);
    for (int i = 0; i < d->nargs; i++) {
        const Arg *a = d->args[i];
        if (a->name && namemap_get(&seen, a->name) >= 0)
            sema_error(S, a->name_span, "ensemble '%s' is named twice", a->name);
        if (a->name)
            namemap_put(S->a, &seen, a->name, i);
        g->names[i] = a->name;
    }
    g->nnames = d->nargs;
}

static void ens_ranges(Sema *S, SemaEnsGroup *g, const char *base)
{
    const Decl *d = g->decl;
    g->kind = ENGRAM_ENS_RANGES;
    g->nens = d->nargs;
    g->range_sid = arena_alloc(S->a, (size_t)(2 * d->nargs + 1) * sizeof *g->range_sid);
    for (int i = 0; i < d->nargs; i++) {
        const Arg *a = d->args[i];
        if (!a->value) {
            sema_error(S, a->name_span, "ensemble '%s' has no index range", a->name);
            sema_hint(S, "give every ensemble a range (%s: 0..99) or none (split into equal "
                         "parts)", a->name);
            continue;
        }
        const char *key = a->name ? a->name : arena_printf(S->a, "%d", i);
        const char *why = "an ensemble's first and last neuron index";
        g->range_sid[2 * i] = sema_arg_param(S, arena_printf(S->a, "%s.%s.lo", base, key),
                                             a->value->lhs, DIM_NONE_, true,
                                             ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, why);
        g->range_sid[2 * i + 1] = sema_arg_param(S, arena_printf(S->a, "%s.%s.hi", base, key),
                                                 a->value->rhs, DIM_NONE_, true,
                                                 ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_NONNEG, why);
        double lo, hi;
        if (sema_fold_sid(S, g->range_sid[2 * i], &lo) && sema_fold_sid(S, g->range_sid[2 * i + 1], &hi) &&
            lo > hi)
            sema_error(S, a->value->span, "an ensemble's range %g..%g is empty; the first index "
                       "comes first", lo, hi);
    }
}

static void check_ens_group(Sema *S, SemaEnsGroup *g)
{
    const Decl *d = g->decl;
    int errors = S->d->nerrors;
    SemaPop *p = sema_find_pop(S, g->region, d->name);
    if (!p) {
        sema_error(S, d->name_span, "no population '%s' in region '%s'", d->name, g->region);
        return;
    }
    g->pop = pop_index(S, p);
    for (int k = 0; k < (int)(g - S->ens); k++)
        if (S->ens[k].pop == g->pop) {
            sema_error(S, d->name_span, "population %s already has ensembles", p->path);
            sema_note(S, S->ens[k].decl->name_span, "the first `ensembles %s` is here", d->name);
            return;
        }
    const char *base = arena_printf(S->a, "%s.ensembles", p->path);
    ens_names(S, g);
    if (d->expr) {
        g->kind = ENGRAM_ENS_SPLIT;
        g->count_sid = sema_arg_param(S, base, d->expr, DIM_NONE_, true,
                                      ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_POSITIVE,
                                      "the number of ensembles");
        g->nnames = 0;
    } else if (items_all_named(d)) {
        g->kind = ENGRAM_ENS_SPLIT;
        g->nens = d->nargs;
        g->count_sid = sema_arg_param(S, base, synth_number(S, d->nargs, NULL, d->span), DIM_NONE_,
                                      true, ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_POSITIVE,
                                      "the number of ensembles");
    } else {
        ens_ranges(S, g, base);
        bool named = g->names[0] != NULL;
        for (int i = 1; i < g->nnames; i++)
            if ((g->names[i] != NULL) != named) {
                sema_error(S, d->args[i]->name_span, "name all ensembles of %s or none", p->path);
                break;
            }
        if (!named)
            g->nnames = 0;
    }
    g->ok = S->d->nerrors == errors;
}

/* Number of ensembles when known at compile time (-1 otherwise). */
static int group_count(Sema *S, const SemaEnsGroup *g)
{
    double n;
    if (g->kind == ENGRAM_ENS_RANGES)
        return g->nens;
    return sema_fold_sid(S, g->count_sid, &n) ? (int)n : -1;
}

static int ens_by_name(const SemaEnsGroup *g, const char *name)
{
    for (int i = 0; i < g->nnames; i++)
        if (g->names[i] && strcmp(g->names[i], name) == 0)
            return i;
    return -1;
}

/* ---- projection endpoints --------------------------------------------------------- */

static int endpoint_index(Sema *S, const SemaEnsGroup *g, const Expr *index)
{
    Scope sc = sema_scope(S, NULL, CTX_MODEL);
    TExpr t = sema_elab(&sc, index);
    double v;
    if (!t.e || !sema_need_number(&sc, &t, index))
        return -1;
    int n = group_count(S, g);
    if (!sema_fold(S, t.e, &v) || v != floor(v) || v < 0 || (n >= 0 && v >= n)) {
        sema_error(S, index->span, "an ensemble index here is a whole number known when the "
                   "model is compiled, from 0 to the number of ensembles - 1");
        return -1;
    }
    return (int)v;
}

SemaPop *sema_endpoint(Sema *S, const Path *p, const Expr *index, int *group, int *ens)
{
    *group = *ens = -1;
    SemaPop *sp = p->nparts == 3 ? sema_find_pop(S, p->parts[0], p->parts[1]) : NULL;
    if (!sp) {
        sp = sema_path_pop(S, p);
        if (!sp || !index)
            return sp;
    }
    *group = group_of_pop(S, pop_index(S, sp));
    if (*group < 0) {
        if (*group == -1)
            sema_error(S, p->span, "population %s has no ensembles", sp->path);
        *group = -1;
        return NULL;
    }
    const SemaEnsGroup *g = &S->ens[*group];
    *ens = index ? endpoint_index(S, g, index) : ens_by_name(g, p->parts[2]);
    if (*ens < 0 && !index)
        sema_error(S, p->span, "%s has no ensemble named '%s'", sp->path, p->parts[2]);
    return *ens >= 0 ? sp : NULL;
}

/* ---- sequences ------------------------------------------------------------------ */

static SemaPop *name_pop(Sema *S, const Expr *x)
{
    if (!x || x->kind != EXPR_NAME || x->nparts != 2)
        return NULL;
    return sema_find_pop(S, x->parts[0], x->parts[1]);
}

static void seq_elems(Sema *S, SemaSequence *q, const Expr *x)
{
    const SemaEnsGroup *g = &S->ens[q->group];
    int n = group_count(S, g);
    q->elems = arena_alloc(S->a, (size_t)(x->nargs + 1) * sizeof *q->elems);
    for (int i = 0; i < x->nargs; i++) {
        const Expr *e = x->args[i]->value;
        Scope sc = sema_scope(S, NULL, CTX_MODEL);
        TExpr t = sema_elab(&sc, e);
        double v;
        if (!t.e || !sema_need_number(&sc, &t, e))
            continue;
        if (!sema_fold(S, t.e, &v) || v != floor(v) || v < 0) {
            sema_error(S, e->span, "a sequence element is the index of an ensemble: a whole "
                       "number >= 0 known when the model is compiled");
            continue;
        }
        if (n >= 0 && v >= n) {
            sema_error(S, e->span, "ensemble %g does not exist: %s has %d ensembles (0..%d)", v,
                       S->pops[g->pop].path, n, n - 1);
            continue;
        }
        q->elems[q->nelems++] = (int)v;
    }
}

/* threshold = x, window = W in the sequence's settings, with defaults. */
static void seq_settings(Sema *S, SemaSequence *q)
{
    const Decl *d = q->decl;
    const Expr *threshold = NULL, *window = NULL;
    for (int i = 0; i < d->nbody; i++) {
        const Stmt *s = d->body[i];
        if (!s || s->kind != STMT_SETTING)
            continue;
        if (strcmp(s->name, "threshold") == 0)
            threshold = s->expr;
        else if (strcmp(s->name, "window") == 0)
            window = s->expr;
        else {
            sema_error(S, s->name_span, "unknown sequence setting '%s'", s->name);
            sema_hint(S, "a sequence's settings are threshold (spikes per neuron within the "
                         "window that activate an element) and window (a time)");
        }
    }
    if (!threshold)
        threshold = synth_number(S, 0.2, NULL, d->name_span);
    if (!window)
        window = synth_number(S, 10, "ms", d->name_span);
    q->threshold_sid = sema_arg_param(S, arena_printf(S->a, "%s.threshold", d->name), threshold,
                                      DIM_NONE_, true, ENGRAM_PARAM_POSITIVE,
                                      "an activation threshold (spikes per neuron)");
    q->window_sid = sema_arg_param(S, arena_printf(S->a, "%s.window", d->name), window,
                                   dim_time(), true, ENGRAM_PARAM_POSITIVE, "an activation window");
}

static void check_sequence(Sema *S, SemaSequence *q)
{
    const Decl *d = q->decl;
    int errors = S->d->nerrors;
    const Expr *x = d->expr;
    SemaPop *p = x && x->kind == EXPR_INDEX ? name_pop(S, x->lhs) : NULL;
    if (!x || x->kind != EXPR_INDEX || !p) {
        if (x && x->kind == EXPR_INDEX && x->lhs && x->lhs->kind == EXPR_NAME)
            sema_error(S, x->lhs->span, "no population '%s'", expr_text(S, x->lhs));
        else if (x)
            sema_error(S, x->span, "a sequence lists ensembles of one population: POP[0, 1, 2]");
        return;
    }
    q->group = group_of_pop(S, pop_index(S, p));
    if (q->group == -2)
        return;
    if (q->group < 0) {
        sema_error(S, x->lhs->span, "population %s has no ensembles", p->path);
        sema_hint(S, "declare them in its region: `ensembles %s = split(8)`", p->name);
        return;
    }
    seq_elems(S, q, x);
    q->interval_sid = sema_arg_param(S, arena_printf(S->a, "%s.interval", d->name), d->every,
                                     dim_time(), true, ENGRAM_PARAM_POSITIVE,
                                     "the interval between a sequence's elements");
    seq_settings(S, q);
    q->ok = S->d->nerrors == errors;
}

void sema_check_ensembles(Sema *S)
{
    for (int g = 0; g < S->nens; g++)
        check_ens_group(S, &S->ens[g]);
    for (int k = 0; k < S->nseqs; k++)
        check_sequence(S, &S->seqs[k]);
    for (int k = 0; k < S->nstims; k++)
        sema_check_stimulus(S, &S->stims[k]);
}

/* ---- targets and measures ----------------------------------------------------------- */

static Scope proto_scope(ProtoScope *ps)
{
    Scope sc = sema_scope(ps->S, NULL, CTX_MODEL);
    sc.proto = ps;
    return sc;
}

/* An index or other protocol value of the wanted dimension; NULL on errors. */
static IrExpr *proto_value(ProtoScope *ps, const Expr *x, EngramDim want, const char *why)
{
    if (!x)
        return NULL;
    Scope sc = proto_scope(ps);
    TExpr t = sema_elab(&sc, x);
    if (!t.e || !sema_expect_dim(ps->S, &t, want, x, why))
        return NULL;
    return t.e;
}

static bool pop_missing(Sema *S, const Expr *x)
{
    sema_error(S, x->span, "'%s' is not a population or an ensemble", expr_text(S, x));
    sema_hint(S, "write REGION.POP, REGION.POP.NAME (a named ensemble) or REGION.POP[k]");
    return false;
}

/* An index known when the model is compiled must name an ensemble (one that
 * reads loop variables or params --set may change is checked by the runtime). */
static bool const_index_fits(Sema *S, const IrTarget *t, const Expr *at)
{
    double v;
    int n = group_count(S, &S->ens[t->group]);
    if (!sema_fold(S, t->index, &v) || n < 0 || (v == floor(v) && v >= 0 && v < n))
        return true;
    sema_error(S, at->span, "ensemble %g does not exist: %s has %d ensembles (0..%d)", v,
               S->pops[t->pop].path, n, n - 1);
    return false;
}

/* REGION.POP, REGION.POP.NAME or REGION.POP[k] (k may read loop variables). */
static bool resolve_target(ProtoScope *ps, const Expr *x, IrTarget *out)
{
    Sema *S = ps->S;
    out->pop = out->group = -1;
    out->index = NULL;
    if (!x)
        return false;
    if (x->kind == EXPR_NAME && (x->nparts == 2 || x->nparts == 3)) {
        SemaPop *p = sema_find_pop(S, x->parts[0], x->parts[1]);
        if (!p)
            return pop_missing(S, x);
        out->pop = pop_index(S, p);
        if (x->nparts == 2)
            return true;
        out->group = group_of_pop(S, out->pop);
        if (out->group == -2)
            return false;
        int k = out->group >= 0 ? ens_by_name(&S->ens[out->group], x->parts[2]) : -1;
        if (k < 0) {
            sema_error(S, x->span, "%s has no ensemble named '%s'", p->path, x->parts[2]);
            return false;
        }
        out->index = ir_const(S->a, k, DIM_NONE_, x->span);
        return true;
    }
    if (x->kind != EXPR_INDEX || x->nargs != 1)
        return pop_missing(S, x);
    SemaPop *p = name_pop(S, x->lhs);
    if (!p)
        return pop_missing(S, x->lhs ? x->lhs : x);
    out->pop = pop_index(S, p);
    out->group = group_of_pop(S, out->pop);
    if (out->group < 0) {
        if (out->group == -1)
            sema_error(S, x->lhs->span, "population %s has no ensembles", p->path);
        return false;
    }
    out->index = proto_value(ps, x->args[0]->value, DIM_NONE_, "an ensemble index is a whole number: M1.exc[2]");
    return out->index != NULL && const_index_fits(S, out, x->args[0]->value);
}

static int find_sequence(Sema *S, const Expr *x)
{
    int k = x && x->kind == EXPR_NAME && x->nparts == 1 ? namemap_get(&S->seq_names, x->parts[0]) : -1;
    if (k < 0 && x)
        sema_error(S, x->span, "'%s' is not a sequence", expr_text(S, x));
    return k >= 0 && S->seqs[k].ok ? k : -1;
}

static const char *const measure_names[] = {"recall", "order", "jitter", "replay", "rate",
                                            "weight", "sparseness", NULL};

static int measure_kind(const char *callee)
{
    for (int k = 0; callee && measure_names[k]; k++)
        if (strcmp(callee, measure_names[k]) == 0)
            return k;
    return -1;
}

/* The dimension of a measure's value: weights in the projections' unit. */
static EngramDim weight_dim(Sema *S, const IrMeasure *m, SrcSpan at, bool *ok)
{
    for (int j = 0; j < S->nprojs; j++) {
        const SemaProj *p = &S->projs[j];
        if (p->ok && pop_index(S, p->src) == m->a.pop && pop_index(S, p->dst) == m->b.pop &&
            p->weight.sid[0] >= 0)
            return S->params[p->weight.sid[0]].dim;
    }
    sema_error(S, at, "no projection from %s to %s: weight() has nothing to average",
               S->pops[m->a.pop].path, S->pops[m->b.pop].path);
    *ok = false;
    return DIM_NONE_;
}

static bool measure_args(ProtoScope *ps, const Expr *x, IrMeasure *m)
{
    Sema *S = ps->S;
    if (x->nargs != 1 || !x->args[0]->value || x->args[0]->name) {
        sema_error(S, x->span, "%s() takes one argument", x->callee);
        return false;
    }
    const Expr *arg = x->args[0]->value;
    switch (m->kind) {
    case ENGRAM_MEASURE_RECALL: case ENGRAM_MEASURE_ORDER: case ENGRAM_MEASURE_JITTER:
    case ENGRAM_MEASURE_REPLAY:
        return (m->seq = find_sequence(S, arg)) >= 0;
    case ENGRAM_MEASURE_SPARSENESS:
        if (arg->kind == EXPR_NAME && arg->nparts == 1)
            return (m->seq = find_sequence(S, arg)) >= 0;
        return resolve_target(ps, arg, &m->a);
    case ENGRAM_MEASURE_RATE:
        return resolve_target(ps, arg, &m->a);
    case ENGRAM_MEASURE_WEIGHT:
        if (arg->kind != EXPR_PAIR) {
            sema_error(S, arg->span, "weight() takes two ensembles: weight(A -> B)");
            return false;
        }
        return resolve_target(ps, arg->lhs, &m->a) && resolve_target(ps, arg->rhs, &m->b);
    }
    return false;
}

/* The measure table index of call x (a measure name), or -1 after errors. */
static int measure_of(ProtoScope *ps, const Expr *x, EngramDim *dim)
{
    Sema *S = ps->S;
    IrMeasure m = {.name = expr_text(S, x), .kind = (EngramMeasureKind)measure_kind(x->callee),
                   .seq = -1, .a = {-1, -1, NULL}, .b = {-1, -1, NULL}, .protocol = ps->protocol};
    if (!measure_args(ps, x, &m))
        return -1;
    bool ok = true;
    *dim = m.kind == ENGRAM_MEASURE_RATE ? dim_rate()
         : m.kind == ENGRAM_MEASURE_JITTER ? dim_time()
         : m.kind == ENGRAM_MEASURE_WEIGHT ? weight_dim(S, &m, x->span, &ok) : DIM_NONE_;
    if (!ok)
        return -1;
    for (int k = 0; k < S->nir_measures; k++)
        if (S->ir_measures[k].protocol == m.protocol && strcmp(S->ir_measures[k].name, m.name) == 0)
            return k;
    *SEMA_PUSH(S->a, S->ir_measures, S->nir_measures, S->capir_measures) = m;
    return S->nir_measures - 1;
}

TExpr sema_proto_call(Scope *sc, const Expr *x, bool *found)
{
    ProtoScope *ps = sc->proto;
    *found = measure_kind(x->callee) >= 0;
    if (!*found)
        return sema_poison();
    int kind = measure_kind(x->callee);
    if (!ps->cond) {
        sema_error(ps->S, x->span, "a measure is read in `measure`, `record` and a reward's "
                   "`when` condition");
        return sema_poison();
    }
    if (kind == ENGRAM_MEASURE_JITTER || kind == ENGRAM_MEASURE_REPLAY) {
        sema_error(ps->S, x->span, "%s() is defined over many trials or a whole phase, not "
                   "within one trial", x->callee);
        sema_hint(ps->S, "a condition may read recall, order, rate, weight and sparseness");
        return sema_poison();
    }
    EngramDim dim;
    int k = measure_of(ps, x, &dim);
    if (k < 0)
        return sema_poison();
    IrExpr *e = ir_new(ps->S->a, IR_MEASURE, dim, x->span);
    e->index = k;
    return sema_typed(e);
}

TExpr sema_proto_name(Scope *sc, const Expr *x, bool *found)
{
    ProtoScope *ps = sc->proto;
    *found = false;
    if (x->nparts != 1)
        return sema_poison();
    for (int i = ps->nactive - 1; i >= 0; i--)
        if (strcmp(ps->vars[ps->active[i]], x->parts[0]) == 0) {
            *found = true;
            IrExpr *e = ir_new(ps->S->a, IR_VAR, DIM_NONE_, x->span);
            e->index = ps->active[i];
            return sema_typed(e);
        }
    return sema_poison();
}

/* ---- statements ---------------------------------------------------------------------- */

static IrStmt *proto_stmt(ProtoScope *ps, const Stmt *s);

static IrStmt *stmt_new(Sema *S, EngramStmtKind kind, const Stmt *s)
{
    IrStmt *st = arena_alloc(S->a, sizeof *st);
    st->kind = kind;
    st->var = st->ref = -1;
    st->target.pop = st->target.group = -1;
    st->line = s ? s->span.first_line : 0;
    return st;
}

static void proto_body(ProtoScope *ps, IrStmt *st, Stmt *const *body, int n)
{
    st->body = arena_alloc(ps->S->a, (size_t)(n + 1) * sizeof *st->body);
    for (int i = 0; i < n; i++) {
        IrStmt *c = body[i] ? proto_stmt(ps, body[i]) : NULL;
        if (c)
            st->body[st->nbody++] = c;
    }
}

/* A stimulus needs a way in: a `stimulus` declaration, or a source population. */
static bool stimulable(ProtoScope *ps, int pop, SrcSpan at)
{
    Sema *S = ps->S;
    const SemaPop *p = &S->pops[pop];
    if (p->neuron && p->neuron->kind != ENGRAM_POP_NEURON)
        return true;
    for (int k = 0; k < S->nstims; k++)
        if (S->stims[k].ok && S->stims[k].dst == p)
            return true;
    sema_error(S, at, "%s has no `stimulus` declaration: protocol stimuli cannot reach it",
               p->path);
    sema_hint(S, "declare how they enter: `stimulus %s weight W port P`", p->path);
    return false;
}

static IrStmt *stim_stmt(ProtoScope *ps, const Stmt *s, EngramStmtKind kind)
{
    Sema *S = ps->S;
    IrStmt *st = stmt_new(S, kind, s);
    bool ok = resolve_target(ps, s->subject, &st->target);
    if (ok && kind != ENGRAM_STMT_CURRENT)
        ok = stimulable(ps, st->target.pop, s->subject->span);
    if (kind == ENGRAM_STMT_CURRENT) {
        st->a = proto_value(ps, s->expr, engram_dim(0, 0, 1), "`current` injects a current, e.g. 50 pA");
        const SemaPop *p = ok ? &S->pops[st->target.pop] : NULL;
        if (p && p->neuron && sema_find_state(p->neuron, "I_ext") < 0) {
            sema_error(S, s->subject->span, "neuron model %s of %s has no state I_ext for "
                       "`current` to set", p->neuron->name, p->path);
            sema_hint(S, "give the model `state I_ext = 0 pA` and add I_ext to its dv/dt");
            ok = false;
        }
    } else {
        st->a = proto_value(ps, s->expr, dim_rate(), "a stimulus rate is a frequency, e.g. 80 Hz");
    }
    if (s->expr2)
        st->b = proto_value(ps, s->expr2, dim_time(), "a duration is a time, e.g. 50 ms");
    return ok && st->a && (st->b || !s->expr2) ? st : NULL;
}

static IrStmt *teach_stmt(ProtoScope *ps, const Stmt *s)
{
    Sema *S = ps->S;
    IrStmt *st = stmt_new(S, ENGRAM_STMT_TEACH, s);
    int k = namemap_get(&S->seq_names, s->name);
    if (k < 0) {
        sema_error(S, s->name_span, "'%s' is not a sequence", s->name);
        return NULL;
    }
    if (!S->seqs[k].ok)
        return NULL;
    st->ref = k;
    bool ok = stimulable(ps, S->ens[S->seqs[k].group].pop, s->name_span);
    st->a = proto_value(ps, s->expr, dim_rate(), "a stimulus rate is a frequency, e.g. 80 Hz");
    if (s->expr2)
        st->b = proto_value(ps, s->expr2, dim_time(), "`for` says how long each element is driven, e.g. 20 ms");
    return ok && st->a && (st->b || !s->expr2) ? st : NULL;
}

static int find_modulator(Sema *S, const Stmt *s)
{
    int k = namemap_get(&S->mod_names, s->name);
    if (k < 0) {
        sema_error(S, s->name_span, "'%s' is not a modulator", s->name);
        const char **c = arena_alloc(S->a, (size_t)(S->nmodulators + 1) * sizeof *c);
        for (int i = 0; i < S->nmodulators; i++)
            c[i] = S->modulators[i].name;
        sema_suggest(S, s->name, c, S->nmodulators);
        return -1;
    }
    return S->modulators[k].ok ? k : -1;
}

static IrStmt *reward_stmt(ProtoScope *ps, const Stmt *s, EngramStmtKind kind)
{
    Sema *S = ps->S;
    IrStmt *st = stmt_new(S, kind, s);
    st->ref = find_modulator(S, s);
    if (st->ref < 0)
        return NULL;
    EngramDim dim = S->modulators[st->ref].dim;
    st->a = proto_value(ps, s->expr, dim, kind == ENGRAM_STMT_SET ? "a modulator's level has the dimension of its baseline"
                                                                  : "a reward adds to the modulator: the amount has the dimension of its baseline");
    if (s->expr2)
        st->b = proto_value(ps, s->expr2, dim_time(), "a reward's delay is a time, e.g. 500 ms");
    if (s->expr3) {
        ps->cond = true;
        Scope sc = proto_scope(ps);
        TExpr t = sema_elab(&sc, s->expr3);
        ps->cond = false;
        if (t.e && !t.e->is_bool) {
            sema_error(S, s->expr3->span, "a reward's condition is a comparison, e.g. "
                       "`when recall(seq) > 0.6`");
            t.e = NULL;
        }
        st->cond = t.e;
        if (!st->cond)
            return NULL;
    }
    return st->a && (st->b || !s->expr2) ? st : NULL;
}

/* A projection by its name or SRC -> DST; it must be plastic. */
static int find_plastic_proj(Sema *S, const Expr *x)
{
    const char *name = x->kind == EXPR_PAIR && x->lhs && x->rhs
        ? arena_printf(S->a, "%s->%s", expr_text(S, x->lhs), expr_text(S, x->rhs))
        : expr_text(S, x);
    int j = namemap_get(&S->link_names, name);
    if (j < 0) {
        sema_error(S, x->span, "'%s' is not a projection", name);
        return -1;
    }
    if (!S->projs[j].plastic) {
        sema_error(S, x->span, "projection %s has no plasticity rule to switch", name);
        return -1;
    }
    return j;
}

static IrStmt *list_stmt(ProtoScope *ps, const Stmt *s, EngramStmtKind kind)
{
    Sema *S = ps->S;
    IrStmt *st = stmt_new(S, kind, s);
    st->ref = s->variant;
    st->list = arena_alloc(S->a, (size_t)(s->nargs + 1) * sizeof *st->list);
    bool ok = true;
    for (int i = 0; i < s->nargs; i++) {
        const Expr *x = s->args[i]->value;
        int k = -1;
        if (kind == ENGRAM_STMT_PLASTICITY) {
            k = find_plastic_proj(S, x);
        } else if (x->kind != EXPR_CALL || measure_kind(x->callee) < 0) {
            sema_error(S, x->span, "'%s' is not a measure", expr_text(S, x));
            sema_hint(S, "the measures are recall, order, jitter, replay, rate, weight and "
                         "sparseness");
        } else if (kind == ENGRAM_STMT_MEASURE && measure_kind(x->callee) == ENGRAM_MEASURE_REPLAY) {
            sema_error(S, x->span, "replay() counts reactivations over a whole phase");
            sema_hint(S, "write `record %s` inside the block (e.g. a sleep) it should cover",
                      expr_text(S, x));
        } else {
            EngramDim dim;
            k = measure_of(ps, x, &dim);
        }
        if (k < 0)
            ok = false;
        else
            st->list[st->nlist++] = k;
    }
    return ok ? st : NULL;
}

/* "day{day}": every {name} must be a loop variable in scope; no path separators. */
static IrStmt *checkpoint_stmt(ProtoScope *ps, const Stmt *s, EngramStmtKind kind)
{
    Sema *S = ps->S;
    const char *t = s->name;
    for (const char *c = t; *c; c++) {
        if (*c == '{') {
            const char *end = strchr(c, '}');
            if (!end) {
                sema_error(S, s->name_span, "a '{' in a checkpoint name has no closing '}'");
                return NULL;
            }
            const char *var = arena_strndup(S->a, c + 1, (size_t)(end - c - 1));
            bool known = false;
            for (int i = 0; i < ps->nactive; i++)
                known |= strcmp(ps->vars[ps->active[i]], var) == 0;
            if (!known) {
                sema_error(S, s->name_span, "'{%s}' in a checkpoint name is not a loop variable "
                           "in scope", var);
                return NULL;
            }
            c = end;
        } else if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= '0' && *c <= '9') ||
                     (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')) ||
                   (c == t && *c == '.')) {
            sema_error(S, s->name_span, "a checkpoint name may hold letters, digits, '_', '-', "
                       "'.' and {variables}, not '%c'", *c);
            return NULL;
        }
    }
    if (!*t) {
        sema_error(S, s->name_span, "a checkpoint needs a name");
        return NULL;
    }
    if (strlen(t) > SEMA_MAX_CHECKPOINT_NAME) {   /* the file name must fit */
        sema_error(S, s->name_span, "a checkpoint name has at most %d characters",
                   SEMA_MAX_CHECKPOINT_NAME);
        return NULL;
    }
    IrStmt *st = stmt_new(S, kind, s);
    st->name = t;
    return st;
}

static int push_var(ProtoScope *ps, const char *name, SrcSpan at)
{
    for (int i = 0; i < ps->nactive; i++)
        if (strcmp(ps->vars[ps->active[i]], name) == 0) {
            sema_error(ps->S, at, "loop variable '%s' is already in use by an enclosing repeat",
                       name);
            return -1;
        }
    /* Sibling loops with the same name share a slot: a measure is one table
     * entry per text, and a checkpoint name finds its variable by name. */
    int slot = 0;
    while (slot < ps->nvars && strcmp(ps->vars[slot], name) != 0)
        slot++;
    if (slot == ps->nvars)
        *SEMA_PUSH(ps->S->a, ps->vars, ps->nvars, ps->capvars) = name;
    *SEMA_PUSH(ps->S->a, ps->active, ps->nactive, ps->capactive) = slot;
    return slot;
}

static IrStmt *repeat_stmt(ProtoScope *ps, const Stmt *s)
{
    Sema *S = ps->S;
    IrStmt *st = stmt_new(S, ENGRAM_STMT_REPEAT, s);
    st->block = s->variant;
    if (s->name) {
        st->a = proto_value(ps, s->expr, DIM_NONE_, "a loop runs over whole numbers: repeat day 1..5");
        st->b = proto_value(ps, s->expr2, DIM_NONE_, "a loop runs over whole numbers: repeat day 1..5");
    } else {
        st->a = ir_const(S->a, 1, DIM_NONE_, s->span);
        st->b = proto_value(ps, s->expr, DIM_NONE_, "a number of repetitions is a whole number");
    }
    int pushed = s->name ? push_var(ps, s->name, s->name_span) : -1;
    st->var = pushed;
    proto_body(ps, st, s->body, s->nbody);
    if (pushed >= 0)
        ps->nactive--;
    return st->a && st->b ? st : NULL;
}

static IrStmt *block_stmt(ProtoScope *ps, const Stmt *s)
{
    IrStmt *st = stmt_new(ps->S, ENGRAM_STMT_BLOCK, s);
    st->block = s->variant;
    st->name = s->name;
    if (s->expr2)
        st->b = proto_value(ps, s->expr2, dim_time(), "a duration is a time, e.g. 50 ms");
    bool named = s->variant != ENGRAM_BLOCK_PLAIN;
    ps->named_depth += named;
    proto_body(ps, st, s->body, s->nbody);
    ps->named_depth -= named;
    return st->b || !s->expr2 ? st : NULL;
}

static IrStmt *proto_stmt(ProtoScope *ps, const Stmt *s)
{
    IrStmt *st;
    switch (s->kind) {
    case STMT_P_BLOCK: return block_stmt(ps, s);
    case STMT_P_REPEAT: return repeat_stmt(ps, s);
    case STMT_P_CUE: return stim_stmt(ps, s, ENGRAM_STMT_CUE);
    case STMT_P_BACKGROUND: return stim_stmt(ps, s, ENGRAM_STMT_BACKGROUND);
    case STMT_P_CURRENT: return stim_stmt(ps, s, ENGRAM_STMT_CURRENT);
    case STMT_P_TEACH: return teach_stmt(ps, s);
    case STMT_P_REST:
        st = stmt_new(ps->S, ENGRAM_STMT_REST, s);
        st->b = proto_value(ps, s->expr2, dim_time(), "a duration is a time, e.g. 50 ms");
        return st->b ? st : NULL;
    case STMT_P_REWARD: return reward_stmt(ps, s, ENGRAM_STMT_REWARD);
    case STMT_P_SET: return reward_stmt(ps, s, ENGRAM_STMT_SET);
    case STMT_P_PLASTICITY: return list_stmt(ps, s, ENGRAM_STMT_PLASTICITY);
    case STMT_P_MEASURE: return list_stmt(ps, s, ENGRAM_STMT_MEASURE);
    case STMT_P_RECORD: return list_stmt(ps, s, ENGRAM_STMT_RECORD);
    case STMT_P_CHECKPOINT: return checkpoint_stmt(ps, s, ENGRAM_STMT_CHECKPOINT);
    case STMT_P_RESTORE: return checkpoint_stmt(ps, s, ENGRAM_STMT_RESTORE);
    default:
        sema_error(ps->S, s->span, "this statement does not belong in a protocol");
        return NULL;
    }
}

/* ---- protocols ------------------------------------------------------------------------- */

void sema_check_protocols(Sema *S)
{
    S->ir_protos = arena_alloc(S->a, (size_t)(S->nprotos + 1) * sizeof *S->ir_protos);
    for (int i = 0; i < S->nprotos; i++) {
        const Decl *d = S->protos[i];
        ProtoScope ps = {.S = S, .protocol = i};
        IrStmt *top = stmt_new(S, ENGRAM_STMT_BLOCK, NULL);
        top->line = d->span.first_line;
        proto_body(&ps, top, d->body, d->nbody);
        IrProtocol *p = &S->ir_protos[i];
        p->name = d->name;
        p->top = top;
        p->vars = ps.vars;
        p->nvars = ps.nvars;
    }
}

/* ---- lowering ------------------------------------------------------------------------------ */

static int map_sid(const int *sid_map, int sid)
{
    return sid >= 0 ? sid_map[sid] : -1;
}

static IrExpr *map_expr(Sema *S, const IrExpr *e, const int *sid_map)
{
    return e ? ir_copy_map(S->a, e, NULL, 0, sid_map) : NULL;
}

static IrTarget map_target(Sema *S, IrTarget t, const int *sid_map)
{
    t.index = map_expr(S, t.index, sid_map);
    return t;
}

static void map_stmt(Sema *S, IrStmt *st, const int *sid_map)
{
    st->target = map_target(S, st->target, sid_map);
    st->a = map_expr(S, st->a, sid_map);
    st->b = map_expr(S, st->b, sid_map);
    st->cond = map_expr(S, st->cond, sid_map);
    for (int i = 0; i < st->nbody; i++)
        map_stmt(S, st->body[i], sid_map);
}

static void lower_ensembles(Sema *S, IrModel *m, const int *sid_map)
{
    m->ens_groups = arena_alloc(S->a, (size_t)(S->nens + 1) * sizeof *m->ens_groups);
    for (int g = 0; g < S->nens; g++) {
        const SemaEnsGroup *in = &S->ens[g];
        IrEnsGroup *out = &m->ens_groups[m->nens_groups++];
        out->pop = in->pop;
        out->kind = in->kind;
        out->count_param = map_sid(sid_map, in->count_sid);
        out->nens = in->kind == ENGRAM_ENS_RANGES ? in->nens : 0;
        out->range_param = arena_alloc(S->a, (size_t)(2 * out->nens + 1) * sizeof *out->range_param);
        for (int k = 0; k < 2 * out->nens; k++)
            out->range_param[k] = map_sid(sid_map, in->range_sid[k]);
        out->names = in->names;
        out->nnames = in->nnames;
    }
    m->sequences = arena_alloc(S->a, (size_t)(S->nseqs + 1) * sizeof *m->sequences);
    for (int k = 0; k < S->nseqs; k++) {
        const SemaSequence *q = &S->seqs[k];
        m->sequences[m->nsequences++] = (IrSequence){
            .name = q->decl->name, .group = q->group, .elems = q->elems, .nelems = q->nelems,
            .interval_param = map_sid(sid_map, q->interval_sid),
            .threshold_param = map_sid(sid_map, q->threshold_sid),
            .window_param = map_sid(sid_map, q->window_sid)};
    }
    m->stimuli = arena_alloc(S->a, (size_t)(S->nstims + 1) * sizeof *m->stimuli);
    for (int k = 0; k < S->nstims; k++)
        m->stimuli[m->nstimuli++] = (IrStimulus){pop_index(S, S->stims[k].dst), S->stims[k].port,
                                                 map_sid(sid_map, S->stims[k].weight_sid)};
}

void sema_lower_protocols(Sema *S, IrModel *m, const int *sid_map)
{
    lower_ensembles(S, m, sid_map);
    m->measures = arena_alloc(S->a, (size_t)(S->nir_measures + 1) * sizeof *m->measures);
    for (int k = 0; k < S->nir_measures; k++) {
        IrMeasure x = S->ir_measures[k];
        x.a = map_target(S, x.a, sid_map);
        x.b = map_target(S, x.b, sid_map);
        m->measures[m->nmeasures++] = x;
    }
    m->protocols = arena_alloc(S->a, (size_t)(S->nprotos + 1) * sizeof *m->protocols);
    for (int i = 0; i < S->nprotos; i++) {
        IrProtocol p = S->ir_protos[i];
        map_stmt(S, p.top, sid_map);
        m->protocols[m->nprotocols++] = p;
    }
}
