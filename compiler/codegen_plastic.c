/*
 * codegen_plastic.c - the kernels of a plastic projection (docs/language.md
 * section 12; ABI: EngramDeliverArgs and EngramPlasticState in engram_rt.h).
 *
 * A projection with a rule gets up to four kernels:
 *
 *   engram_proj_<i>_deliver   for each source spike s (ascending): bring the
 *                             pre traces of s up to date, run `before`; for
 *                             each synapse k of s (ascending target j): add
 *                             w[k] to the ring (the weight before the
 *                             handler), then run the per-synapse statements;
 *                             then `after`, and store the traces of s.
 *   engram_proj_<i>_on_post   the same for each target spike j over its
 *                             incoming synapses (post_row/post_syn/post_src,
 *                             ascending source); nothing is delivered.
 *   engram_proj_<i>_every     the every block, per synapse of sources [begin, end).
 *   engram_proj_<i>_arrive    `on pre arrival`: the deliver kernel only
 *                             delivers (a static one with per-synapse
 *                             weights); this one runs the handler for each
 *                             event (spikes[e], synapses[e]) the runtime
 *                             lists at the step the spike arrives.  The
 *                             rule's pre traces are synapse variables then
 *                             (lower.c), so the handler is per synapse only.
 *
 * Laziness.  A trace or synapse variable holds its value at step `*_last`;
 * reading it at step n integrates exactly over (n - last) * dt:
 *
 *   x' = x e^(aD) + (b/a)(e^(aD) - 1)        (x' = x + b D when a == 0)
 *
 * computed as ((x * E) + ((b / a) * (E - 1))) with E = llvm.exp(a * D) and
 * D = sitofp(n - last) * dt, all in the model precision (a, b and b / a
 * once per call; E from a per-partition table of the same values when
 * n - last < ENGRAM_DECAY_STEPS, pl_decay_table).  The
 * rules for who stores what keep the values a function of the spike times
 * alone, whatever else reads them:
 *
 *   - the traces of the spiking side are brought up to date, assigned by the
 *     handler and stored, with *_last = step, once per spike of that side;
 *   - the traces of the other side are only read (never stored);
 *   - every synapse a handler visits has w clipped to the bounds and stored;
 *     when the handler assigns a synapse variable, all of them are brought
 *     up to date and stored, with syn_last[k] = step (when some have an
 *     ODE); otherwise (an every block that reads c) those it reads are
 *     brought up to date for the handler only.
 *
 * Nothing runs, and nothing lazy moves, while a->plastic is NULL or
 * a->plastic->plastic is 0: delivery alone (per-synapse weights) remains.
 * Parameters, the ODE coefficients and the modulator levels are loaded once
 * per call.  Like every kernel, no instruction carries fast-math flags.
 *
 * Order: scanning the rule, loading, arithmetic of one handler, the loops,
 * the four kernels.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen_internal.h"

/* dx/dt = a x + b of one variable, evaluated once per call; NULL: absent. */
typedef struct PlLin {
    LLVMValueRef a, b, boa;
    LLVMValueRef table;   /* a != NULL: its exp(a k dt), k < ENGRAM_DECAY_STEPS (pl_decay_table) */
} PlLin;

/* Which statements a handler part may assign. */
enum { PL_T_WEIGHT = 1 << IR_TGT_WEIGHT, PL_T_SYNVAR = 1 << IR_TGT_SYNVAR,
       PL_T_PRE = 1 << IR_TGT_PRE, PL_T_POST = 1 << IR_TGT_POST,
       PL_T_SYN = PL_T_WEIGHT | PL_T_SYNVAR };

typedef struct PlGen {
    CgCtx *c;
    const IrProj *proj;
    const IrRule *r;
    LLVMValueRef fn;
    int nsrc_states, ndst_states;
    /* EngramDeliverArgs */
    LLVMValueRef args, spikes, nspikes, row, col, weight, delay, ring, ntgt, slots, step, dsteps;
    LLVMValueRef synapses;              /* arrive kernel */
    LLVMValueRef time, dt, step32;      /* t and dt in model precision; step as i32 */
    /* EngramPlasticState */
    LLVMValueRef *syn, syn_last, *pre, pre_last, *post, post_last;
    LLVMValueRef post_row, post_syn, post_src;
    LLVMValueRef *pre_st, *post_st, *mods;
    /* what the rule reads (use_syn: the kernel's handler) */
    bool *use_param, *use_pre_st, *use_post_st, *use_mod, *use_syn;
    LLVMValueRef *pvals;
    LLVMValueRef w_lo, w_hi;
    PlLin *lsyn, *lpre, *lpost;
} PlGen;

bool cg_proj_has_on_pre(const IrProj *p)
{
    return p->plasticity && p->plasticity->has_on_pre && !p->plasticity->pre_arrival;
}

/* ---- rule leaves ------------------------------------------------------------------ */

static LLVMValueRef pl_pick(const LLVMValueRef *vals, int n, int i)
{
    return vals && i >= 0 && i < n ? vals[i] : NULL;
}

LLVMValueRef cg_rule_leaf(CgCtx *c, const CgEnv *env, const IrExpr *e)
{
    static const char *const what[] = {
        [IR_WEIGHT] = "w", [IR_SYNVAR] = "a synapse variable", [IR_PRE_TRACE] = "a pre trace",
        [IR_POST_TRACE] = "a post trace", [IR_PRE_STATE] = "pre.X", [IR_POST_STATE] = "post.X",
        [IR_MODULATOR] = "a modulator"};
    const CgRuleVals *rv = env->rule;
    LLVMValueRef v = NULL, base = NULL, index = NULL;
    if (rv) {
        switch (e->kind) {
        case IR_WEIGHT:     v = rv->w; break;
        case IR_SYNVAR:     v = pl_pick(rv->syn, rv->nsyn, e->index); break;
        case IR_PRE_TRACE:  v = pl_pick(rv->pre, rv->npre, e->index); break;
        case IR_POST_TRACE: v = pl_pick(rv->post, rv->npost, e->index); break;
        case IR_MODULATOR:  v = pl_pick(rv->mods, rv->nmods, e->index); break;
        case IR_PRE_STATE:
            base = pl_pick(rv->pre_state, rv->npre_states, e->index), index = rv->pre_index;
            break;
        default:
            base = pl_pick(rv->post_state, rv->npost_states, e->index), index = rv->post_index;
            break;
        }
    }
    if (base && index)
        return LLVMBuildLoad2(c->b, c->t_real, cg_elem_ptr(c, c->t_real, base, index), "nstate");
    if (v)
        return v;
    cg_error(c, e->span, "%s (#%d) is not available at this point of the rule", what[e->kind], e->index);
    return cg_const_real(c, 0);
}

/* ---- scanning the rule ---------------------------------------------------------------- */

static void pl_mark(bool *used, int n, int i)
{
    if (i >= 0 && i < n)
        used[i] = true;
}

static void pl_scan_expr(PlGen *g, const IrExpr *e)
{
    if (!e)
        return;
    switch (e->kind) {
    case IR_PARAM:      pl_mark(g->use_param, g->c->m->nparams, e->index); break;
    case IR_PRE_STATE:  pl_mark(g->use_pre_st, g->nsrc_states, e->index); break;
    case IR_POST_STATE: pl_mark(g->use_post_st, g->ndst_states, e->index); break;
    case IR_MODULATOR:  pl_mark(g->use_mod, g->c->m->nmodulators, e->index); break;
    case IR_SYNVAR:     pl_mark(g->use_syn, g->r->nsyn_vars, e->index); break;
    default: break;
    }
    pl_scan_expr(g, e->a);
    pl_scan_expr(g, e->b);
    pl_scan_expr(g, e->c);
    pl_scan_expr(g, e->d);
}

static void pl_scan_stmts(PlGen *g, const IrRuleAssign *st, int n)
{
    for (int k = 0; k < n; k++)
        pl_scan_expr(g, st[k].value);
}

static void pl_scan_vars(PlGen *g, const IrVar *v, int n)
{
    for (int k = 0; k < n; k++) {
        pl_scan_expr(g, v[k].lin_a);
        pl_scan_expr(g, v[k].lin_b);
    }
}

static void pl_scan(PlGen *g, const IrHandler *h)
{
    const IrRule *r = g->r;
    pl_scan_vars(g, r->syn_vars, r->nsyn_vars);
    pl_scan_vars(g, r->pre, r->npre);
    pl_scan_vars(g, r->post, r->npost);
    pl_scan_stmts(g, h->before, h->nbefore);
    pl_scan_stmts(g, h->syn, h->nsyn);
    pl_scan_stmts(g, h->after, h->nafter);
    pl_mark(g->use_param, g->c->m->nparams, r->w_lo_param);
    pl_mark(g->use_param, g->c->m->nparams, r->w_hi_param);
}

/* ---- set-up and tear-down --------------------------------------------------------------- */

#define PL_ALLOC(n, type) ((type *)calloc((size_t)(n) + 1, sizeof(type)))

static void pl_init(PlGen *g, CgCtx *c, int proj)
{
    const IrModel *m = c->m;
    *g = (PlGen){.c = c, .proj = &m->projs[proj], .r = m->projs[proj].plasticity};
    const IrProj *p = g->proj;
    g->nsrc_states = p->src >= 0 && p->src < m->npops ? m->pops[p->src].nstates : 0;
    g->ndst_states = p->dst >= 0 && p->dst < m->npops ? m->pops[p->dst].nstates : 0;
    g->syn = PL_ALLOC(g->r->nsyn_vars, LLVMValueRef);
    g->pre = PL_ALLOC(g->r->npre, LLVMValueRef);
    g->post = PL_ALLOC(g->r->npost, LLVMValueRef);
    g->lsyn = PL_ALLOC(g->r->nsyn_vars, PlLin);
    g->lpre = PL_ALLOC(g->r->npre, PlLin);
    g->lpost = PL_ALLOC(g->r->npost, PlLin);
    g->pre_st = PL_ALLOC(g->nsrc_states, LLVMValueRef);
    g->post_st = PL_ALLOC(g->ndst_states, LLVMValueRef);
    g->mods = PL_ALLOC(m->nmodulators, LLVMValueRef);
    g->pvals = PL_ALLOC(m->nparams, LLVMValueRef);
    g->use_param = PL_ALLOC(m->nparams, bool);
    g->use_pre_st = PL_ALLOC(g->nsrc_states, bool);
    g->use_post_st = PL_ALLOC(g->ndst_states, bool);
    g->use_mod = PL_ALLOC(m->nmodulators, bool);
    g->use_syn = PL_ALLOC(g->r->nsyn_vars, bool);
}

static void pl_free(PlGen *g)
{
    void *all[] = {g->syn, g->pre, g->post, g->lsyn, g->lpre, g->lpost, g->pre_st, g->post_st,
                   g->mods, g->pvals, g->use_param, g->use_pre_st, g->use_post_st, g->use_mod,
                   g->use_syn};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        free(all[k]);
}

static bool pl_var_has_ode(const IrVar *v)
{
    return v->lin_a || v->lin_b;
}

static bool pl_lazy_syn(const IrRule *r)
{
    for (int v = 0; v < r->nsyn_vars; v++)
        if (pl_var_has_ode(&r->syn_vars[v]))
            return true;
    return false;
}

static LLVMBasicBlockRef pl_block(PlGen *g, const char *name)
{
    return LLVMAppendBasicBlockInContext(g->c->ctx, g->fn, name);
}

static LLVMValueRef pl_load(PlGen *g, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef i, const char *name)
{
    return LLVMBuildLoad2(g->c->b, ty, cg_elem_ptr(g->c, ty, base, i), name);
}

static void pl_load_args(PlGen *g, LLVMValueRef a)
{
    CgCtx *c = g->c;
    g->args = a;
    g->spikes = cg_load_field(c, a, offsetof(EngramDeliverArgs, spikes), c->t_ptr, "spikes");
    g->nspikes = cg_load_field(c, a, offsetof(EngramDeliverArgs, nspikes), c->t_i64, "nspikes");
    g->row = cg_load_field(c, a, offsetof(EngramDeliverArgs, row), c->t_ptr, "row");
    g->col = cg_load_field(c, a, offsetof(EngramDeliverArgs, col), c->t_ptr, "col");
    g->weight = cg_load_field(c, a, offsetof(EngramDeliverArgs, weight), c->t_ptr, "weight");
    g->delay = cg_load_field(c, a, offsetof(EngramDeliverArgs, delay), c->t_ptr, "delay");
    g->ring = cg_load_field(c, a, offsetof(EngramDeliverArgs, ring), c->t_ptr, "ring");
    g->ntgt = cg_load_field(c, a, offsetof(EngramDeliverArgs, ntgt), c->t_i64, "ntgt");
    g->slots = cg_load_field(c, a, offsetof(EngramDeliverArgs, ring_slots), c->t_i64, "ring_slots");
    g->step = cg_load_field(c, a, offsetof(EngramDeliverArgs, step), c->t_i64, "step");
    g->dsteps = cg_load_field(c, a, offsetof(EngramDeliverArgs, delay_steps), c->t_i32, "delay_steps");
    g->synapses = cg_load_field(c, a, offsetof(EngramDeliverArgs, synapses), c->t_ptr, "synapses");
    g->time = cg_to_real(c, cg_load_field(c, a, offsetof(EngramDeliverArgs, t), c->t_f64, "t"));
    g->dt = cg_to_real(c, cg_load_field(c, a, offsetof(EngramDeliverArgs, dt), c->t_f64, "dt"));
    g->step32 = LLVMBuildTrunc(c->b, g->step, c->t_i32, "step32");
}

/* out[k] = (ptrs)[k] for the k with used[k] (all when used is NULL). */
static void pl_load_ptrs(PlGen *g, LLVMValueRef ps, size_t off, int n, const bool *used,
                         LLVMValueRef *out, const char *name)
{
    CgCtx *c = g->c;
    if (n <= 0)
        return;
    LLVMValueRef arr = cg_load_field(c, ps, off, c->t_ptr, name);
    for (int k = 0; k < n; k++)
        if (!used || used[k])
            out[k] = pl_load(g, c->t_ptr, arr, cg_const_i64(c, k), name);
}

static void pl_load_state(PlGen *g, LLVMValueRef ps)
{
    CgCtx *c = g->c;
    const IrRule *r = g->r;
    pl_load_ptrs(g, ps, offsetof(EngramPlasticState, syn), r->nsyn_vars, NULL, g->syn, "syn");
    pl_load_ptrs(g, ps, offsetof(EngramPlasticState, pre), r->npre, NULL, g->pre, "pre");
    pl_load_ptrs(g, ps, offsetof(EngramPlasticState, post), r->npost, NULL, g->post, "post");
    pl_load_ptrs(g, ps, offsetof(EngramPlasticState, pre_state), g->nsrc_states, g->use_pre_st,
                 g->pre_st, "pre_state");
    pl_load_ptrs(g, ps, offsetof(EngramPlasticState, post_state), g->ndst_states, g->use_post_st,
                 g->post_st, "post_state");
    g->syn_last = cg_load_field(c, ps, offsetof(EngramPlasticState, syn_last), c->t_ptr, "syn_last");
    g->pre_last = cg_load_field(c, ps, offsetof(EngramPlasticState, pre_last), c->t_ptr, "pre_last");
    g->post_last = cg_load_field(c, ps, offsetof(EngramPlasticState, post_last), c->t_ptr, "post_last");
    g->post_row = cg_load_field(c, ps, offsetof(EngramPlasticState, post_row), c->t_ptr, "post_row");
    g->post_syn = cg_load_field(c, ps, offsetof(EngramPlasticState, post_syn), c->t_ptr, "post_syn");
    g->post_src = cg_load_field(c, ps, offsetof(EngramPlasticState, post_src), c->t_ptr, "post_src");
    int nm = c->m->nmodulators;
    if (nm > 0) {
        LLVMValueRef levels = cg_load_field(c, ps, offsetof(EngramPlasticState, modulators), c->t_ptr,
                                            "modulators");
        for (int k = 0; k < nm; k++)
            if (g->use_mod[k])
                g->mods[k] = cg_to_real(c, pl_load(g, c->t_f64, levels, cg_const_i64(c, k), "mod"));
    }
}

static CgEnv pl_env(PlGen *g, const CgRuleVals *rv)
{
    CgEnv env = {.params = g->pvals, .states = NULL, .nstates = 0, .time = g->time, .dt = g->dt,
                 .index = NULL, .rule = rv, .where = g->proj->span};
    return env;
}

static void pl_lin(PlGen *g, const IrVar *vars, int n, PlLin *out)
{
    CgCtx *c = g->c;
    CgRuleVals none = {0};
    CgEnv env = pl_env(g, &none);
    for (int v = 0; v < n; v++) {
        out[v].a = vars[v].lin_a ? cg_expr_num(c, &env, vars[v].lin_a) : NULL;
        out[v].b = vars[v].lin_b ? cg_expr_num(c, &env, vars[v].lin_b) : NULL;
        if (out[v].a && out[v].b)
            out[v].boa = LLVMBuildFDiv(c->b, out[v].b, out[v].a, "b_over_a");
    }
}

typedef struct PlLoop {
    LLVMValueRef i, from, to;
    LLVMIntPredicate pred;
    LLVMBasicBlockRef pre, body, done;
} PlLoop;

/* for (i = from; i pred to; i++): the builder is left in the body. */
static PlLoop pl_loop_begin(PlGen *g, LLVMValueRef from, LLVMValueRef to, LLVMIntPredicate pred,
                            const char *name)
{
    CgCtx *c = g->c;
    PlLoop l = {.from = from, .to = to, .pred = pred, .pre = LLVMGetInsertBlock(c->b)};
    l.body = pl_block(g, name);
    l.done = pl_block(g, "done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, pred, from, to, ""), l.body, l.done);
    LLVMPositionBuilderAtEnd(c->b, l.body);
    l.i = LLVMBuildPhi(c->b, c->t_i64, name);
    return l;
}

/* Closes the loop; the builder continues after it. */
static void pl_loop_end(PlGen *g, PlLoop *l)
{
    CgCtx *c = g->c;
    LLVMValueRef next = LLVMBuildAdd(c->b, l->i, cg_const_i64(c, 1), "next");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, l->pred, next, l->to, ""), l->body, l->done);
    LLVMValueRef vals[2] = {l->from, next};
    LLVMBasicBlockRef blocks[2] = {l->pre, latch};
    LLVMAddIncoming(l->i, vals, blocks, 2);
    LLVMPositionBuilderAtEnd(c->b, l->done);
}

/* The decay factors of variable v: E(k) = exp(a (k dt)) for k steps, the
 * same operations as pl_advance, so a factor from the table is the bits
 * that llvm.exp would give there.  Filled when the key is not a (the first
 * call; a parameter changed), each partition its own copy; afterwards a
 * lazy read costs a load instead of a call to exp (distal reward: a quarter
 * of the run time was exp). */
static LLVMValueRef pl_decay_table(PlGen *g, LLVMValueRef decay, int v, LLVMValueRef a)
{
    CgCtx *c = g->c;
    LLVMValueRef base = cg_elem_ptr(c, c->t_real, decay,
                                    cg_const_i64(c, (int64_t)v * (ENGRAM_DECAY_STEPS + 1)));
    LLVMValueRef table = cg_elem_ptr(c, c->t_real, base, cg_const_i64(c, 1));
    LLVMValueRef key = LLVMBuildLoad2(c->b, c->t_real, base, "key");
    LLVMBasicBlockRef fill = pl_block(g, "fill"), ready = pl_block(g, "ready");
    LLVMBuildCondBr(c->b, LLVMBuildFCmp(c->b, LLVMRealUNE, key, a, "stale"), fill, ready);
    LLVMPositionBuilderAtEnd(c->b, fill);
    PlLoop l = pl_loop_begin(g, cg_const_i64(c, 0), cg_const_i64(c, ENGRAM_DECAY_STEPS), LLVMIntSLT, "k");
    LLVMValueRef d = LLVMBuildFMul(c->b, LLVMBuildSIToFP(c->b, l.i, c->t_real, ""), g->dt, "delta");
    LLVMValueRef ad = LLVMBuildFMul(c->b, a, d, "");
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.exp", &ad, 1), cg_elem_ptr(c, c->t_real, table, l.i));
    pl_loop_end(g, &l);
    LLVMBuildStore(c->b, a, base);
    LLVMBuildBr(c->b, ready);
    LLVMPositionBuilderAtEnd(c->b, ready);
    return table;
}

/* Parameters, bounds and ODE coefficients: once per call, after the checks. */
static void pl_load_invariants(PlGen *g, LLVMValueRef ps)
{
    CgCtx *c = g->c;
    LLVMValueRef params = cg_load_field(c, g->args, offsetof(EngramDeliverArgs, params), c->t_ptr, "params");
    for (int k = 0; k < c->m->nparams; k++) {
        if (!g->use_param[k])
            continue;
        char name[32];
        snprintf(name, sizeof name, "p%d", k);
        g->pvals[k] = cg_to_real(c, pl_load(g, c->t_f64, params, cg_const_i64(c, k), name));
    }
    pl_load_state(g, ps);
    g->w_lo = pl_pick(g->pvals, c->m->nparams, g->r->w_lo_param);
    g->w_hi = pl_pick(g->pvals, c->m->nparams, g->r->w_hi_param);
    pl_lin(g, g->r->syn_vars, g->r->nsyn_vars, g->lsyn);
    pl_lin(g, g->r->pre, g->r->npre, g->lpre);
    pl_lin(g, g->r->post, g->r->npost, g->lpost);
    LLVMValueRef decay = cg_load_field(c, ps, offsetof(EngramPlasticState, decay), c->t_ptr, "decay");
    int v = 0;
    PlLin *groups[3] = {g->lsyn, g->lpre, g->lpost};
    int counts[3] = {g->r->nsyn_vars, g->r->npre, g->r->npost};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < counts[k]; j++, v++)
            if (groups[k][j].a)
                groups[k][j].table = pl_decay_table(g, decay, v, groups[k][j].a);
}

/* ---- arithmetic of one handler ------------------------------------------------------------- */

/* The interval since last[i]: n = step - last[i] steps, D = n * dt in the
 * model precision. */
typedef struct PlDelta {
    LLVMValueRef n, d;
} PlDelta;

static PlDelta pl_delta(PlGen *g, LLVMValueRef last, LLVMValueRef i)
{
    CgCtx *c = g->c;
    LLVMValueRef l = LLVMBuildSExt(c->b, pl_load(g, c->t_i32, last, i, "last"), c->t_i64, "");
    LLVMValueRef n = LLVMBuildSub(c->b, g->step, l, "nsteps");
    return (PlDelta){n, LLVMBuildFMul(c->b, LLVMBuildSIToFP(c->b, n, c->t_real, ""), g->dt, "delta")};
}

/* e^(a D): from the table when n < ENGRAM_DECAY_STEPS, else llvm.exp. */
static LLVMValueRef pl_decay(PlGen *g, const PlLin *l, PlDelta dl)
{
    CgCtx *c = g->c;
    LLVMBasicBlockRef hit = pl_block(g, "cached"), miss = pl_block(g, "exp"), join = pl_block(g, "decayed");
    LLVMValueRef in = LLVMBuildICmp(c->b, LLVMIntULT, dl.n, cg_const_i64(c, ENGRAM_DECAY_STEPS), "in");
    LLVMBuildCondBr(c->b, in, hit, miss);
    LLVMPositionBuilderAtEnd(c->b, hit);
    LLVMValueRef e1 = LLVMBuildLoad2(c->b, c->t_real, cg_elem_ptr(c, c->t_real, l->table, dl.n), "E");
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, miss);
    LLVMValueRef ad = LLVMBuildFMul(c->b, l->a, dl.d, "");
    LLVMValueRef e2 = cg_intrinsic(c, "llvm.exp", &ad, 1);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
    LLVMValueRef e = LLVMBuildPhi(c->b, c->t_real, "E");
    LLVMValueRef vals[2] = {e1, e2};
    LLVMBasicBlockRef from[2] = {hit, miss};
    LLVMAddIncoming(e, vals, from, 2);
    return e;
}

/* x at D later (see the file comment for the order of operations). */
static LLVMValueRef pl_advance(PlGen *g, const PlLin *l, LLVMValueRef x, PlDelta dl)
{
    CgCtx *c = g->c;
    LLVMValueRef d = dl.d;
    if (!l->a && !l->b)
        return x;
    LLVMValueRef ramp = l->b ? LLVMBuildFAdd(c->b, x, LLVMBuildFMul(c->b, l->b, d, ""), "ramp") : x;
    if (!l->a)
        return ramp;
    LLVMValueRef e = pl_decay(g, l, dl);
    LLVMValueRef r = LLVMBuildFMul(c->b, x, e, "decay");
    if (!l->b)
        return r;
    LLVMValueRef em1 = LLVMBuildFSub(c->b, e, cg_const_real(c, 1.0), "");
    r = LLVMBuildFAdd(c->b, r, LLVMBuildFMul(c->b, l->boa, em1, ""), "relax");
    LLVMValueRef zero = LLVMBuildFCmp(c->b, LLVMRealOEQ, l->a, cg_const_real(c, 0), "a0");
    return LLVMBuildSelect(c->b, zero, ramp, r, "");
}

/* out[v] = arrays[v][i] brought up to date from last[i]. */
static void pl_read_vars(PlGen *g, const IrVar *vars, int n, const PlLin *lin, LLVMValueRef *arrays,
                         LLVMValueRef last, LLVMValueRef i, LLVMValueRef *out)
{
    PlDelta d = {0};
    for (int v = 0; v < n; v++) {
        out[v] = pl_load(g, g->c->t_real, arrays[v], i, vars[v].name);
        if (pl_var_has_ode(&vars[v])) {
            if (!d.d)
                d = pl_delta(g, last, i);
            out[v] = pl_advance(g, &lin[v], out[v], d);
        }
    }
}

static void pl_store_vars(PlGen *g, int n, LLVMValueRef *arrays, LLVMValueRef i, const LLVMValueRef *vals)
{
    for (int v = 0; v < n; v++)
        LLVMBuildStore(g->c->b, vals[v], cg_elem_ptr(g->c, g->c->t_real, arrays[v], i));
}

static LLVMValueRef *pl_target(PlGen *g, CgRuleVals *rv, const IrRuleAssign *st, unsigned allowed)
{
    LLVMValueRef *slot = NULL;
    if (allowed & (1u << st->target)) {
        switch (st->target) {
        case IR_TGT_WEIGHT: slot = &rv->w; break;
        case IR_TGT_SYNVAR: slot = st->index >= 0 && st->index < rv->nsyn ? &rv->syn[st->index] : NULL; break;
        case IR_TGT_PRE:    slot = st->index >= 0 && st->index < rv->npre ? &rv->pre[st->index] : NULL; break;
        default:            slot = st->index >= 0 && st->index < rv->npost ? &rv->post[st->index] : NULL; break;
        }
    }
    if (!slot || !*slot)
        cg_error(g->c, g->proj->span, "rule '%s' assigns target %d #%d where it cannot",
                 g->r->name ? g->r->name : "?", (int)st->target, st->index);
    return slot && *slot ? slot : NULL;
}

/* Runs statements in order, each seeing the results of the ones before. */
static void pl_run(PlGen *g, CgRuleVals *rv, const IrRuleAssign *st, int n, unsigned allowed)
{
    CgCtx *c = g->c;
    CgEnv env = pl_env(g, rv);
    for (int k = 0; k < n; k++) {
        LLVMValueRef v = cg_expr_num(c, &env, st[k].value);
        LLVMValueRef *slot = pl_target(g, rv, &st[k], allowed);
        if (!slot)
            continue;
        switch (st[k].op) {
        case ASSIGN_ADD: *slot = LLVMBuildFAdd(c->b, *slot, v, ""); break;
        case ASSIGN_SUB: *slot = LLVMBuildFSub(c->b, *slot, v, ""); break;
        case ASSIGN_MUL: *slot = LLVMBuildFMul(c->b, *slot, v, ""); break;
        default:         *slot = v; break;
        }
    }
}

static bool pl_assigns_syn(const IrHandler *h)
{
    for (int k = 0; k < h->nsyn; k++)
        if (h->syn[k].target == IR_TGT_SYNVAR)
            return true;
    return false;
}

/* The synapse variables of k that the handler reads, up to date (not stored). */
static void pl_read_used(PlGen *g, LLVMValueRef k, LLVMValueRef *sv)
{
    const IrRule *r = g->r;
    PlDelta d = {0};
    for (int v = 0; v < r->nsyn_vars; v++) {
        if (!g->use_syn[v])
            continue;
        sv[v] = pl_load(g, g->c->t_real, g->syn[v], k, r->syn_vars[v].name);
        if (pl_var_has_ode(&r->syn_vars[v])) {
            if (!d.d)
                d = pl_delta(g, g->syn_last, k);
            sv[v] = pl_advance(g, &g->lsyn[v], sv[v], d);
        }
    }
}

/* One synapse k of a handler: synapse variables up to date, statements,
 * bounds, stores.  rv holds the traces and neuron indices of both sides;
 * w0 is w[k] when the caller has loaded it already, else NULL.  A handler
 * that assigns no synapse variable (an every block that reads c) reads only
 * those it uses and stores only w: the stored variables keep their step. */
static void pl_synapse(PlGen *g, CgRuleVals *rv, LLVMValueRef k, LLVMValueRef w0, const IrHandler *h)
{
    CgCtx *c = g->c;
    const IrRule *r = g->r;
    bool writes = pl_assigns_syn(h);
    LLVMValueRef *sv = PL_ALLOC(r->nsyn_vars, LLVMValueRef);
    if (writes)
        pl_read_vars(g, r->syn_vars, r->nsyn_vars, g->lsyn, g->syn, g->syn_last, k, sv);
    else
        pl_read_used(g, k, sv);
    LLVMValueRef wp = cg_elem_ptr(c, c->t_real, g->weight, k);
    rv->w = w0 ? w0 : LLVMBuildLoad2(c->b, c->t_real, wp, "w");
    rv->syn = sv;
    pl_run(g, rv, h->syn, h->nsyn, PL_T_SYN);
    LLVMValueRef w = rv->w;
    if (g->w_lo)
        w = cg_max(c, w, g->w_lo);
    if (g->w_hi)
        w = cg_min(c, w, g->w_hi);
    LLVMBuildStore(c->b, w, wp);
    if (writes)
        pl_store_vars(g, r->nsyn_vars, g->syn, k, sv);
    if (writes && pl_lazy_syn(r))
        LLVMBuildStore(c->b, g->step32, cg_elem_ptr(c, c->t_i32, g->syn_last, k));
    rv->w = NULL;
    rv->syn = NULL;
    free(sv);
}

/* ---- loops -------------------------------------------------------------------------------- */

static CgRuleVals pl_rule_vals(PlGen *g)
{
    const IrRule *r = g->r;
    CgRuleVals rv = {.pre_state = g->pre_st, .post_state = g->post_st, .mods = g->mods,
                     .nsyn = r->nsyn_vars, .npre = r->npre, .npost = r->npost,
                     .npre_states = g->nsrc_states, .npost_states = g->ndst_states,
                     .nmods = g->c->m->nmodulators};
    return rv;
}

static LLVMValueRef pl_index(PlGen *g, LLVMValueRef arr, LLVMValueRef i, const char *name)
{
    return LLVMBuildZExt(g->c->b, pl_load(g, g->c->t_i32, arr, i, name), g->c->t_i64, name);
}

/* ---- on pre: inside the delivery kernel --------------------------------------------------------- */

/* The synapses of source `src`: deliver, then the per-synapse statements. */
static void pl_pre_synapses(PlGen *g, CgRuleVals *rv, LLVMValueRef src, bool per_d, LLVMValueRef rowbase)
{
    CgCtx *c = g->c;
    const IrRule *r = g->r;
    LLVMValueRef k0 = pl_load(g, c->t_i64, g->row, src, "k0");
    LLVMValueRef k1 = pl_load(g, c->t_i64, g->row, LLVMBuildAdd(c->b, src, cg_const_i64(c, 1), ""), "k1");
    PlLoop l = pl_loop_begin(g, k0, k1, LLVMIntULT, "synapse");
    LLVMValueRef j = pl_index(g, g->col, l.i, "col");
    LLVMValueRef base = rowbase;
    if (per_d) {
        LLVMValueRef d = LLVMBuildZExt(c->b, pl_load(g, c->t_i16, g->delay, l.i, "d"), c->t_i64, "");
        LLVMValueRef slot = LLVMBuildURem(c->b, LLVMBuildAdd(c->b, g->step, d, ""), g->slots, "slot");
        base = LLVMBuildMul(c->b, slot, g->ntgt, "");
    }
    LLVMValueRef w = pl_load(g, c->t_real, g->weight, l.i, "w.pre");
    LLVMValueRef p = cg_elem_ptr(c, c->t_real, g->ring, LLVMBuildAdd(c->b, base, j, "idx"));
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->t_real, p, ""), w, ""), p);
    LLVMValueRef *post = PL_ALLOC(r->npost, LLVMValueRef);
    pl_read_vars(g, r->post, r->npost, g->lpost, g->post, g->post_last, j, post);
    rv->post = post;
    rv->post_index = j;
    pl_synapse(g, rv, l.i, w, &r->on_pre);
    rv->post = NULL;
    rv->post_index = NULL;
    free(post);
    pl_loop_end(g, &l);
}

/* One loop nest over the spikes, for per-synapse or homogeneous delays. */
static void pl_pre_nest(PlGen *g, bool per_d, LLVMBasicBlockRef exit)
{
    CgCtx *c = g->c;
    const IrRule *r = g->r;
    LLVMValueRef rowbase = NULL;
    if (!per_d) {
        LLVMValueRef d = LLVMBuildSExt(c->b, g->dsteps, c->t_i64, "");
        LLVMValueRef slot = LLVMBuildURem(c->b, LLVMBuildAdd(c->b, g->step, d, ""), g->slots, "slot");
        rowbase = LLVMBuildMul(c->b, slot, g->ntgt, "rowbase");
    }
    PlLoop l = pl_loop_begin(g, cg_const_i64(c, 0), g->nspikes, LLVMIntSLT, "spike");
    LLVMValueRef src = pl_index(g, g->spikes, l.i, "src");
    CgRuleVals rv = pl_rule_vals(g);
    LLVMValueRef *pre = PL_ALLOC(r->npre, LLVMValueRef);
    pl_read_vars(g, r->pre, r->npre, g->lpre, g->pre, g->pre_last, src, pre);
    rv.pre = pre;
    rv.pre_index = src;
    pl_run(g, &rv, r->on_pre.before, r->on_pre.nbefore, PL_T_PRE);
    pl_pre_synapses(g, &rv, src, per_d, rowbase);
    pl_run(g, &rv, r->on_pre.after, r->on_pre.nafter, PL_T_PRE);
    pl_store_vars(g, r->npre, g->pre, src, pre);
    if (r->npre > 0)
        LLVMBuildStore(c->b, g->step32, cg_elem_ptr(c, c->t_i32, g->pre_last, src));
    free(pre);
    pl_loop_end(g, &l);
    LLVMBuildBr(c->b, exit);
}

void cg_emit_plastic_deliver(CgCtx *c, int proj, LLVMValueRef fn, LLVMValueRef args, LLVMBasicBlockRef exit)
{
    PlGen g;
    pl_init(&g, c, proj);
    g.fn = fn;
    pl_scan(&g, &g.r->on_pre);
    pl_load_args(&g, args);
    LLVMValueRef ps = cg_load_field(c, args, offsetof(EngramDeliverArgs, plastic), c->t_ptr, "plastic");
    pl_load_invariants(&g, ps);
    LLVMBasicBlockRef with_d = pl_block(&g, "plastic.d");
    LLVMBasicBlockRef hom_d = pl_block(&g, "plastic.hom");
    LLVMBuildCondBr(c->b, LLVMBuildIsNotNull(c->b, g.delay, ""), with_d, hom_d);
    LLVMPositionBuilderAtEnd(c->b, with_d);
    pl_pre_nest(&g, true, exit);
    LLVMPositionBuilderAtEnd(c->b, hom_d);
    pl_pre_nest(&g, false, exit);
    pl_free(&g);
}

/* ---- the on-post and every kernels ------------------------------------------------------------- */

/* entry: returns unless a->plastic is set and switched on (and, for on-post,
 * there are spikes); leaves the builder where the work starts. */
static void pl_kernel_begin(PlGen *g, const char *suffix, bool ranged, int proj)
{
    CgCtx *c = g->c;
    char name[64];
    snprintf(name, sizeof name, "engram_proj_%d_%s", proj, suffix);
    LLVMTypeRef at[3] = {c->t_ptr, c->t_i64, c->t_i64};
    g->fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, at, ranged ? 3 : 1, 0));
    cg_add_attr(c, g->fn, LLVMAttributeFunctionIndex, "nounwind");
    cg_add_attr(c, g->fn, 1, "nocapture");
    LLVMBasicBlockRef entry = pl_block(g, "entry"), gate = pl_block(g, "gate");
    LLVMBasicBlockRef work = pl_block(g, "work"), exit = pl_block(g, "exit");
    LLVMPositionBuilderAtEnd(c->b, entry);
    pl_load_args(g, LLVMGetParam(g->fn, 0));
    LLVMValueRef ps = cg_load_field(c, g->args, offsetof(EngramDeliverArgs, plastic), c->t_ptr, "plastic");
    LLVMValueRef go = LLVMBuildIsNotNull(c->b, ps, "");
    if (!ranged)
        go = LLVMBuildAnd(c->b, go, LLVMBuildICmp(c->b, LLVMIntSGT, g->nspikes, cg_const_i64(c, 0), ""), "");
    LLVMBuildCondBr(c->b, go, gate, exit);
    LLVMPositionBuilderAtEnd(c->b, gate);
    LLVMValueRef on = cg_load_field(c, ps, offsetof(EngramPlasticState, plastic), c->t_i32, "on");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, on, cg_const_i32(c, 0), ""), work, exit);
    LLVMPositionBuilderAtEnd(c->b, exit);
    LLVMBuildRetVoid(c->b);
    LLVMPositionBuilderAtEnd(c->b, work);
    pl_load_invariants(g, ps);
}

/* Incoming synapses of target j: pre traces read, per-synapse statements. */
static void pl_post_synapses(PlGen *g, CgRuleVals *rv, LLVMValueRef j)
{
    CgCtx *c = g->c;
    const IrRule *r = g->r;
    LLVMValueRef e0 = pl_load(g, c->t_i64, g->post_row, j, "e0");
    LLVMValueRef e1 = pl_load(g, c->t_i64, g->post_row, LLVMBuildAdd(c->b, j, cg_const_i64(c, 1), ""), "e1");
    PlLoop l = pl_loop_begin(g, e0, e1, LLVMIntULT, "incoming");
    LLVMValueRef k = LLVMBuildZExt(c->b, pl_load(g, c->t_i32, g->post_syn, l.i, "k"), c->t_i64, "");
    LLVMValueRef s = pl_index(g, g->post_src, l.i, "s");
    LLVMValueRef *pre = PL_ALLOC(r->npre, LLVMValueRef);
    pl_read_vars(g, r->pre, r->npre, g->lpre, g->pre, g->pre_last, s, pre);
    rv->pre = pre;
    rv->pre_index = s;
    pl_synapse(g, rv, k, NULL, &r->on_post);
    rv->pre = NULL;
    rv->pre_index = NULL;
    free(pre);
    pl_loop_end(g, &l);
}

LLVMValueRef cg_emit_on_post_kernel(CgCtx *c, int proj)
{
    const IrRule *r = c->m->projs[proj].plasticity;
    if (!r || !r->has_on_post)
        return NULL;
    PlGen g;
    pl_init(&g, c, proj);
    pl_scan(&g, &r->on_post);
    pl_kernel_begin(&g, "on_post", false, proj);
    PlLoop l = pl_loop_begin(&g, cg_const_i64(c, 0), g.nspikes, LLVMIntSLT, "spike");
    LLVMValueRef j = pl_index(&g, g.spikes, l.i, "tgt");
    CgRuleVals rv = pl_rule_vals(&g);
    LLVMValueRef *post = PL_ALLOC(r->npost, LLVMValueRef);
    pl_read_vars(&g, r->post, r->npost, g.lpost, g.post, g.post_last, j, post);
    rv.post = post;
    rv.post_index = j;
    pl_run(&g, &rv, r->on_post.before, r->on_post.nbefore, PL_T_POST);
    pl_post_synapses(&g, &rv, j);
    pl_run(&g, &rv, r->on_post.after, r->on_post.nafter, PL_T_POST);
    pl_store_vars(&g, r->npost, g.post, j, post);
    if (r->npost > 0)
        LLVMBuildStore(c->b, g.step32, cg_elem_ptr(c, c->t_i32, g.post_last, j));
    free(post);
    pl_loop_end(&g, &l);
    LLVMBuildRetVoid(c->b);
    LLVMValueRef fn = g.fn;
    pl_free(&g);
    return fn;
}

/* Synapses of source s for the every block: both sides' traces only read. */
static void pl_every_synapses(PlGen *g, CgRuleVals *rv, LLVMValueRef s)
{
    CgCtx *c = g->c;
    const IrRule *r = g->r;
    LLVMValueRef k0 = pl_load(g, c->t_i64, g->row, s, "k0");
    LLVMValueRef k1 = pl_load(g, c->t_i64, g->row, LLVMBuildAdd(c->b, s, cg_const_i64(c, 1), ""), "k1");
    PlLoop l = pl_loop_begin(g, k0, k1, LLVMIntULT, "synapse");
    LLVMValueRef j = pl_index(g, g->col, l.i, "col");
    LLVMValueRef *post = PL_ALLOC(r->npost, LLVMValueRef);
    pl_read_vars(g, r->post, r->npost, g->lpost, g->post, g->post_last, j, post);
    rv->post = post;
    rv->post_index = j;
    pl_synapse(g, rv, l.i, NULL, &r->every);
    rv->post = NULL;
    rv->post_index = NULL;
    free(post);
    pl_loop_end(g, &l);
}

LLVMValueRef cg_emit_every_kernel(CgCtx *c, int proj)
{
    const IrRule *r = c->m->projs[proj].plasticity;
    if (!r || !r->has_every)
        return NULL;
    if (r->every.nbefore > 0 || r->every.nafter > 0)
        cg_error(c, c->m->projs[proj].span, "an every block of rule '%s' assigns traces",
                 r->name ? r->name : "?");
    PlGen g;
    pl_init(&g, c, proj);
    pl_scan(&g, &r->every);
    pl_kernel_begin(&g, "every", true, proj);
    PlLoop l = pl_loop_begin(&g, LLVMGetParam(g.fn, 1), LLVMGetParam(g.fn, 2), LLVMIntSLT, "source");
    CgRuleVals rv = pl_rule_vals(&g);
    LLVMValueRef *pre = PL_ALLOC(r->npre, LLVMValueRef);
    pl_read_vars(&g, r->pre, r->npre, g.lpre, g.pre, g.pre_last, l.i, pre);
    rv.pre = pre;
    rv.pre_index = l.i;
    pl_every_synapses(&g, &rv, l.i);
    free(pre);
    pl_loop_end(&g, &l);
    LLVMBuildRetVoid(c->b);
    LLVMValueRef fn = g.fn;
    pl_free(&g);
    return fn;
}

/* ---- the arrive kernel: on pre at arrival ---------------------------------------------------- */

/* Event e: synapse k = synapses[e] of source spikes[e], whose spike arrives
 * now.  The rule has no pre traces here (lower_arrival made them synapse
 * variables), so the whole handler is per synapse. */
LLVMValueRef cg_emit_arrive_kernel(CgCtx *c, int proj)
{
    const IrRule *r = c->m->projs[proj].plasticity;
    if (!r || !r->has_on_pre || !r->pre_arrival)
        return NULL;
    if (r->npre > 0 || r->on_pre.nbefore > 0 || r->on_pre.nafter > 0)
        cg_error(c, c->m->projs[proj].span, "the arrival handler of rule '%s' has per-spike statements",
                 r->name ? r->name : "?");
    PlGen g;
    pl_init(&g, c, proj);
    pl_scan(&g, &r->on_pre);
    pl_kernel_begin(&g, "arrive", false, proj);
    PlLoop l = pl_loop_begin(&g, cg_const_i64(c, 0), g.nspikes, LLVMIntSLT, "event");
    LLVMValueRef s = pl_index(&g, g.spikes, l.i, "src");
    LLVMValueRef k = pl_load(&g, c->t_i64, g.synapses, l.i, "k");
    LLVMValueRef j = pl_index(&g, g.col, k, "col");
    CgRuleVals rv = pl_rule_vals(&g);
    LLVMValueRef *post = PL_ALLOC(r->npost, LLVMValueRef);
    pl_read_vars(&g, r->post, r->npost, g.lpost, g.post, g.post_last, j, post);
    rv.pre_index = s;
    rv.post = post;
    rv.post_index = j;
    pl_synapse(&g, &rv, k, NULL, &r->on_pre);
    free(post);
    pl_loop_end(&g, &l);
    LLVMBuildRetVoid(c->b);
    LLVMValueRef fn = g.fn;
    pl_free(&g);
    return fn;
}
