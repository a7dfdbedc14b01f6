/*
 * codegen_kernels.c - the kernels: one update function per neuron
 * population and one delivery function per projection (ABI in engram_rt.h,
 * step semantics in docs/language.md section 10).
 *
 * Update kernel.  The exported engram_pop_<i>_update(args, begin, end) only
 * unpacks EngramPopArgs and calls engram_pop_<i>_body, an internal,
 * always-inlined function whose array arguments are `noalias`: that is how
 * LLVM learns that the state arrays, input slots, refractory counters and
 * spike flags never overlap, so the neuron loop vectorises without run-time
 * alias checks.  The body loads every parameter and propagator entry it uses
 * once, before the loop, then runs one straight-line block per neuron:
 *
 *   r = refr[i]; refractory = r > 0
 *   x' = integrate(x)       held variables keep x while refractory
 *   x' += input[p][i]       per port, in port order; discarded into held
 *                           variables while refractory (as Brian2 does); the
 *                           slot is zeroed (if it holds input: gen_store_if)
 *   spike = !refractory && threshold(x')
 *   x' = spike ? reset(x') : x'         assignments in order, as selects
 *   refr[i] = spike ? ref_steps : max(r - 1, 0)   (if it changes)
 *   spiked[i] = spike
 *
 * Everything is a select, never a branch, so the loop stays vectorisable
 * (the two conditional stores become masked stores, or plain ones).
 * The exact method multiplies only the propagator entries that the
 * structure of the linear system lets be nonzero, and selects the
 * refractory propagator only in rows that differ (gen_exact_structure):
 * CUBA's LIF needs 6 of 24 entries and no select.
 * Sums have a fixed order (documented at each method) so that results are
 * reproducible and the unit tests can compare bit for bit.
 *
 * Delivery kernel.  For each spike (ascending) and each of its synapses
 * (ascending target): ring[slot * ntgt + col] += w, slot = (step + d) %
 * ring_slots.  The four combinations of per-synapse/homogeneous weight and
 * delay get their own loop nest, chosen once per call.  A projection whose
 * rule has an on-pre handler also gets the plastic nest of codegen_plastic.c,
 * taken while a->plastic is set and switched on; a static projection's
 * kernel is exactly what it was before plasticity existed.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen_internal.h"

/* ---- update kernel state ------------------------------------------------------- */

typedef struct PopGen {
    CgCtx *c;
    const IrPop *pop;
    int ns, np, nl;            /* states, ports, linear variables */
    LLVMValueRef *sptr, *iptr; /* state and input arrays (body arguments) */
    LLVMValueRef refr, spiked, params, prop, t, dt, ref_steps, begin, end;
    LLVMValueRef *pvals;       /* [nparams] loop-invariant parameters, or NULL */
    LLVMValueRef *P, *Pref;    /* exact: nl x (nl + 1) propagators, normal / refractory */
    bool *nz;                  /* exact: nl x (nl + 1), the entries the structure lets be nonzero */
    bool *uses_ref;            /* exact: [nl] rows that read the refractory propagator */
    LLVMValueRef h, h2, h6;    /* dt, dt/2, dt/6 in model precision */
    LLVMValueRef t0, th, t1;   /* t, t + dt/2, t + dt in model precision */
    LLVMValueRef i, r, isref;  /* per neuron */
    bool *modified;            /* [ns] states the kernel writes back */
} PopGen;

/* Body arguments, in order: ns state arrays, np input arrays, then these. */
enum { BODY_REFR, BODY_SPIKED, BODY_PARAMS, BODY_PROP, BODY_T, BODY_DT,
       BODY_REF_STEPS, BODY_BEGIN, BODY_END, BODY_NFIXED };

static CgEnv gen_env(PopGen *g, LLVMValueRef *x, LLVMValueRef time)
{
    CgEnv env = {.params = g->pvals, .states = x, .nstates = g->ns, .time = time,
                 .dt = g->h, .index = NULL, .where = g->pop->span};
    return env;
}

/* ---- before the loop ---------------------------------------------------------------- */

/* Loads each parameter the population's expressions read, once. */
static void gen_load_params(PopGen *g)
{
    CgCtx *c = g->c;
    const IrPop *pop = g->pop;
    int n = c->m->nparams;
    bool *used = calloc((size_t)n + 1, sizeof *used);
    for (int s = 0; s < pop->nstates; s++)
        cg_expr_params(pop->states[s].ode, used, n);
    cg_expr_params(pop->threshold, used, n);
    for (int k = 0; k < pop->nreset; k++)
        cg_expr_params(pop->reset[k].value, used, n);
    for (int k = 0; k < n; k++) {
        if (!used[k])
            continue;
        char name[32];
        snprintf(name, sizeof name, "p%d", k);
        LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f64,
                                        cg_elem_ptr(c, c->t_f64, g->params, cg_const_i64(c, k)), name);
        g->pvals[k] = cg_to_real(c, v);
    }
    free(used);
}

static bool coef_is_zero(const IrExpr *e)
{
    return !e || (e->kind == IR_CONST && e->value == 0.0);
}

/* Which propagator entries can be nonzero and which rows differ while
 * refractory, from the structure of the linear system alone: entry (r, c) of
 * exp([[A, b], [0, 0]] dt) is zero unless c is reachable from r in the graph
 * of A (r itself included); the affine entry unless a variable reachable
 * from r has b != 0.  The refractory system zeroes the rows of held
 * variables, so a row that reaches no held variable is the same in both;
 * the row of a held variable is replaced by the variable itself while
 * refractory (gen_integrate), so it needs the normal propagator only. */
static void gen_exact_structure(PopGen *g)
{
    const IrPop *pop = g->pop;
    int n = g->nl, n1 = n + 1;
    bool *reach = calloc((size_t)n * (size_t)n + 1, sizeof *reach);
    for (int r = 0; r < n; r++)
        for (int col = 0; col < n; col++)
            reach[r * n + col] = r == col || !coef_is_zero(pop->coef ? pop->coef[r * n1 + col] : NULL);
    for (int k = 0; k < n; k++)   /* Warshall: the transitive closure */
        for (int r = 0; r < n; r++) {
            if (!reach[r * n + k])
                continue;
            for (int col = 0; col < n; col++)
                reach[r * n + col] |= reach[k * n + col];
        }
    for (int r = 0; r < n; r++) {
        bool held = pop->states[pop->lin_vars[r]].held, reaches_held = false;
        g->nz[r * n1 + n] = false;
        for (int col = 0; col < n; col++) {
            g->nz[r * n1 + col] = reach[r * n + col];
            reaches_held |= reach[r * n + col] && pop->states[pop->lin_vars[col]].held;
            g->nz[r * n1 + n] |= reach[r * n + col] &&
                                 !coef_is_zero(pop->coef ? pop->coef[col * n1 + n] : NULL);
        }
        g->uses_ref[r] = !held && reaches_held;
    }
    free(reach);
}

/* Loads the propagator entries the kernel uses (exact method): prop[0..m)
 * normal, prop[m..2m) refractory. */
static void gen_load_prop(PopGen *g)
{
    CgCtx *c = g->c;
    int n1 = g->nl + 1, m = g->nl * n1;
    gen_exact_structure(g);
    for (int j = 0; j < 2 * m; j++) {
        if (!g->nz[j % m] || (j >= m && !g->uses_ref[(j - m) / n1]))
            continue;
        LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f64,
                                        cg_elem_ptr(c, c->t_f64, g->prop, cg_const_i64(c, j)),
                                        j < m ? "P" : "Pref");
        (j < m ? g->P : g->Pref)[j % m] = cg_to_real(c, v);
    }
}

/* dt and stage times: the times are summed in double, then rounded once. */
static void gen_load_times(PopGen *g)
{
    CgCtx *c = g->c;
    LLVMValueRef half = LLVMBuildFMul(c->b, g->dt, LLVMConstReal(c->t_f64, 0.5), "");
    g->h = cg_to_real(c, g->dt);
    g->h2 = LLVMBuildFMul(c->b, g->h, cg_const_real(c, 0.5), "h2");
    g->h6 = LLVMBuildFDiv(c->b, g->h, cg_const_real(c, 6.0), "h6");
    g->t0 = cg_to_real(c, g->t);
    g->th = cg_to_real(c, LLVMBuildFAdd(c->b, g->t, half, ""));
    g->t1 = cg_to_real(c, LLVMBuildFAdd(c->b, g->t, g->dt, ""));
}

/* ---- integration ------------------------------------------------------------------------ */

/* k[s] = dx_s/dt at (x, time) for every state with an ODE; 0 for held
 * variables of a refractory neuron (their ODE does not run); NULL if none. */
static void gen_rhs(PopGen *g, LLVMValueRef *x, LLVMValueRef time, LLVMValueRef *k)
{
    CgCtx *c = g->c;
    CgEnv env = gen_env(g, x, time);
    for (int s = 0; s < g->ns; s++) {
        const IrState *st = &g->pop->states[s];
        k[s] = NULL;
        if (!st->ode)
            continue;
        k[s] = cg_expr_num(c, &env, st->ode);
        if (st->held)
            k[s] = LLVMBuildSelect(c->b, g->isref, cg_const_real(c, 0), k[s], "");
    }
}

/* out[s] = x[s] + h * k[s] where k[s] exists, else x[s]. */
static void gen_axpy(PopGen *g, LLVMValueRef *x, LLVMValueRef h, LLVMValueRef *k, LLVMValueRef *out)
{
    for (int s = 0; s < g->ns; s++)
        out[s] = k[s] ? LLVMBuildFAdd(g->c->b, x[s], LLVMBuildFMul(g->c->b, h, k[s], ""), "")
                      : x[s];
}

/* euler: x + dt * f(t, x) */
static void gen_euler(PopGen *g, LLVMValueRef *x, LLVMValueRef *out, LLVMValueRef *k1)
{
    gen_rhs(g, x, g->t0, k1);
    gen_axpy(g, x, g->h, k1, out);
}

/* rk2 (midpoint): xm = x + dt/2 * f(t, x); x + dt * f(t + dt/2, xm) */
static void gen_rk2(PopGen *g, LLVMValueRef *x, LLVMValueRef *out, LLVMValueRef *k, LLVMValueRef *tmp)
{
    gen_rhs(g, x, g->t0, k);
    gen_axpy(g, x, g->h2, k, tmp);
    gen_rhs(g, tmp, g->th, k);
    gen_axpy(g, x, g->h, k, out);
}

/* rk4: x + dt/6 * (((k1 + 2 k2) + 2 k3) + k4), the classical stages. */
static void gen_rk4(PopGen *g, LLVMValueRef *x, LLVMValueRef *out, LLVMValueRef *k, LLVMValueRef *tmp)
{
    CgCtx *c = g->c;
    LLVMValueRef two = cg_const_real(c, 2.0);
    LLVMValueRef *acc = out;   /* the weighted sum of the k's, per state */
    gen_rhs(g, x, g->t0, k);                                  /* k1 */
    for (int s = 0; s < g->ns; s++)
        acc[s] = k[s];
    gen_axpy(g, x, g->h2, k, tmp);
    gen_rhs(g, tmp, g->th, k);                                /* k2 */
    for (int s = 0; s < g->ns; s++)
        if (k[s])
            acc[s] = LLVMBuildFAdd(c->b, acc[s], LLVMBuildFMul(c->b, two, k[s], ""), "");
    gen_axpy(g, x, g->h2, k, tmp);
    gen_rhs(g, tmp, g->th, k);                                /* k3 */
    for (int s = 0; s < g->ns; s++)
        if (k[s])
            acc[s] = LLVMBuildFAdd(c->b, acc[s], LLVMBuildFMul(c->b, two, k[s], ""), "");
    gen_axpy(g, x, g->h, k, tmp);
    gen_rhs(g, tmp, g->t1, k);                                /* k4 */
    for (int s = 0; s < g->ns; s++) {
        if (k[s])
            acc[s] = LLVMBuildFAdd(c->b, acc[s], k[s], "");
        out[s] = acc[s] ? LLVMBuildFAdd(c->b, x[s], LLVMBuildFMul(c->b, g->h6, acc[s], ""), "")
                        : x[s];
    }
}

/* exact: x'_r = ((P[r][0] x_0 + P[r][1] x_1) + ... ) + P[r][n] over the
 * entries the structure lets be nonzero (gen_exact_structure; the others
 * would add 0 * x_c, which changes nothing but the sign of a zero), with P
 * the refractory propagator for a refractory neuron where it differs
 * (chosen entry by entry). */
static void gen_exact(PopGen *g, LLVMValueRef *x, LLVMValueRef *out)
{
    CgCtx *c = g->c;
    int n = g->nl;
    for (int s = 0; s < g->ns; s++)
        out[s] = x[s];
    for (int r = 0; r < n; r++) {
        LLVMValueRef acc = NULL;
        for (int col = 0; col <= n; col++) {
            int j = r * (n + 1) + col;
            if (!g->nz[j])
                continue;
            LLVMValueRef p = g->uses_ref[r] ? LLVMBuildSelect(c->b, g->isref, g->Pref[j], g->P[j], "")
                                            : g->P[j];
            LLVMValueRef term = col < n ? LLVMBuildFMul(c->b, p, x[g->pop->lin_vars[col]], "") : p;
            acc = acc ? LLVMBuildFAdd(c->b, acc, term, "") : term;
        }
        out[g->pop->lin_vars[r]] = acc;   /* the diagonal entry is always there */
    }
}

/* Integrates one neuron: out = x after the update phase. */
static void gen_integrate(PopGen *g, LLVMValueRef *x, LLVMValueRef *out)
{
    CgCtx *c = g->c;
    LLVMValueRef *k = calloc((size_t)g->ns + 1, sizeof *k);
    LLVMValueRef *tmp = calloc((size_t)g->ns + 1, sizeof *tmp);
    switch (g->pop->method) {
    case ENGRAM_METHOD_EXACT: gen_exact(g, x, out); break;
    case ENGRAM_METHOD_EULER: gen_euler(g, x, out, k); break;
    case ENGRAM_METHOD_RK2:   gen_rk2(g, x, out, k, tmp); break;
    case ENGRAM_METHOD_RK4:   gen_rk4(g, x, out, k, tmp); break;
    default:
        for (int s = 0; s < g->ns; s++)
            out[s] = x[s];
        break;
    }
    /* Held variables keep their exact value while refractory, whatever the
     * method's arithmetic would make of a zero derivative (-0 + 0 = +0). */
    for (int s = 0; s < g->ns; s++) {
        if (g->pop->states[s].held && out[s] != x[s]) {
            out[s] = LLVMBuildSelect(c->b, g->isref, x[s], out[s], "held");
            g->modified[s] = true;
        } else if (out[s] != x[s]) {
            g->modified[s] = true;
        }
    }
    free(k);
    free(tmp);
}

/* ---- input, threshold, reset --------------------------------------------------------------- */

/* Stores v to p only when `changed`, where the target has masked stores
 * (the loop vectoriser makes this one): a cache line of an array that the
 * step leaves as it was is then not written back, and the update loop is
 * bound by the traffic between L1 and L2 (CUBA: 16% faster).  Elsewhere a
 * plain store, which keeps the loop vectorisable. */
static void gen_store_if(PopGen *g, LLVMValueRef changed, LLVMValueRef v, LLVMValueRef p)
{
    CgCtx *c = g->c;
    if (!c->masked_stores) {
        LLVMBuildStore(c->b, v, p);
        return;
    }
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
    LLVMBasicBlockRef st = LLVMAppendBasicBlockInContext(c->ctx, fn, "store");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, fn, "stored");
    LLVMBuildCondBr(c->b, changed, st, next);
    LLVMPositionBuilderAtEnd(c->b, st);
    LLVMBuildStore(c->b, v, p);
    LLVMBuildBr(c->b, next);
    LLVMPositionBuilderAtEnd(c->b, next);
}

static void gen_input(PopGen *g, LLVMValueRef *x)
{
    CgCtx *c = g->c;
    for (int p = 0; p < g->np; p++) {
        int s = g->pop->ports[p].state;
        LLVMValueRef slot = cg_elem_ptr(c, c->t_real, g->iptr[p], g->i);
        LLVMValueRef in = LLVMBuildLoad2(c->b, c->t_real, slot, "in");
        /* most slots hold no input: zero only the others (a -0 would stay,
         * but sums of weights starting from +0 are never -0) */
        gen_store_if(g, LLVMBuildFCmp(c->b, LLVMRealUNE, in, cg_const_real(c, 0), "got"),
                     cg_const_real(c, 0), slot);
        LLVMValueRef sum = LLVMBuildFAdd(c->b, x[s], in, "");
        x[s] = g->pop->states[s].held ? LLVMBuildSelect(c->b, g->isref, x[s], sum, "") : sum;
        g->modified[s] = true;
    }
}

static LLVMValueRef gen_assign_value(PopGen *g, const IrAssign *as, LLVMValueRef old, LLVMValueRef v)
{
    LLVMBuilderRef b = g->c->b;
    switch (as->op) {
    case ASSIGN_ADD: return LLVMBuildFAdd(b, old, v, "");
    case ASSIGN_SUB: return LLVMBuildFSub(b, old, v, "");
    case ASSIGN_MUL: return LLVMBuildFMul(b, old, v, "");
    default:         return v;
    }
}

/* Returns the spike flag (i1); applies the reset to x where it is set. */
static LLVMValueRef gen_threshold_reset(PopGen *g, LLVMValueRef *x)
{
    CgCtx *c = g->c;
    if (!g->pop->threshold)
        return LLVMConstInt(c->t_i1, 0, 0);
    CgEnv env = gen_env(g, x, g->t0);
    LLVMValueRef cond = cg_expr_bool(c, &env, g->pop->threshold);
    LLVMValueRef spike = LLVMBuildAnd(c->b, cond, LLVMBuildNot(c->b, g->isref, ""), "spike");
    for (int k = 0; k < g->pop->nreset; k++) {
        const IrAssign *as = &g->pop->reset[k];
        if (as->state < 0 || as->state >= g->ns) {
            cg_error(c, g->pop->span, "reset assigns to state #%d", as->state);
            continue;
        }
        LLVMValueRef v = cg_expr_num(c, &env, as->value);   /* sees earlier assignments */
        LLVMValueRef nv = gen_assign_value(g, as, x[as->state], v);
        x[as->state] = LLVMBuildSelect(c->b, spike, nv, x[as->state], "reset");
        g->modified[as->state] = true;
    }
    return spike;
}

/* ---- the neuron loop -------------------------------------------------------------------------- */

static void gen_neuron(PopGen *g)
{
    CgCtx *c = g->c;
    LLVMValueRef *x = calloc((size_t)g->ns + 1, sizeof *x);
    LLVMValueRef *nx = calloc((size_t)g->ns + 1, sizeof *nx);
    LLVMValueRef rp = cg_elem_ptr(c, c->t_i32, g->refr, g->i);
    g->r = LLVMBuildLoad2(c->b, c->t_i32, rp, "r");
    g->isref = LLVMBuildICmp(c->b, LLVMIntSGT, g->r, cg_const_i32(c, 0), "isref");
    for (int s = 0; s < g->ns; s++)
        x[s] = LLVMBuildLoad2(c->b, c->t_real, cg_elem_ptr(c, c->t_real, g->sptr[s], g->i),
                              g->pop->states[s].name);
    gen_integrate(g, x, nx);
    gen_input(g, nx);
    LLVMValueRef spike = gen_threshold_reset(g, nx);
    for (int s = 0; s < g->ns; s++)
        if (g->modified[s])
            LLVMBuildStore(c->b, nx[s], cg_elem_ptr(c, c->t_real, g->sptr[s], g->i));
    LLVMValueRef dec = LLVMBuildSelect(c->b, g->isref,
                                       LLVMBuildSub(c->b, g->r, cg_const_i32(c, 1), ""),
                                       cg_const_i32(c, 0), "");
    LLVMValueRef refr = LLVMBuildSelect(c->b, spike, g->ref_steps, dec, "refr");
    gen_store_if(g, LLVMBuildICmp(c->b, LLVMIntNE, refr, g->r, ""), refr, rp);
    LLVMBuildStore(c->b, LLVMBuildZExt(c->b, spike, c->t_i8, ""),
                   cg_elem_ptr(c, c->t_i8, g->spiked, g->i));
    free(x);
    free(nx);
}

/* entry: loads; loop: one neuron per iteration over [begin, end). */
static void gen_body_code(PopGen *g, LLVMValueRef fn)
{
    CgCtx *c = g->c;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(c->ctx, fn, "neuron");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(c->ctx, fn, "exit");
    LLVMPositionBuilderAtEnd(c->b, entry);
    gen_load_params(g);
    if (g->pop->method == ENGRAM_METHOD_EXACT && g->nl > 0)
        gen_load_prop(g);
    gen_load_times(g);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, g->begin, g->end, ""), loop, exit);

    LLVMPositionBuilderAtEnd(c->b, loop);
    g->i = LLVMBuildPhi(c->b, c->t_i64, "i");
    gen_neuron(g);
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, g->i, cg_const_i64(c, 1), "i.next");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, g->end, ""), loop, exit);
    LLVMValueRef in_vals[2] = {g->begin, next};
    LLVMBasicBlockRef in_blocks[2] = {entry, latch};
    LLVMAddIncoming(g->i, in_vals, in_blocks, 2);

    LLVMPositionBuilderAtEnd(c->b, exit);
    LLVMBuildRetVoid(c->b);
}

/* The internal body: (states..., inputs..., refr, spiked, params, prop, t, dt, ref_steps, begin, end). */
static LLVMValueRef gen_body(PopGen *g, int pop_index)
{
    CgCtx *c = g->c;
    int nargs = g->ns + g->np + BODY_NFIXED;
    LLVMTypeRef *at = calloc((size_t)nargs, sizeof *at);
    for (int k = 0; k < g->ns + g->np + BODY_T; k++)
        at[k] = c->t_ptr;
    at[g->ns + g->np + BODY_T] = c->t_f64;
    at[g->ns + g->np + BODY_DT] = c->t_f64;
    at[g->ns + g->np + BODY_REF_STEPS] = c->t_i32;
    at[g->ns + g->np + BODY_BEGIN] = c->t_i64;
    at[g->ns + g->np + BODY_END] = c->t_i64;
    char name[64];
    snprintf(name, sizeof name, "engram_pop_%d_body", pop_index);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, at, (unsigned)nargs, 0));
    free(at);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_add_attr(c, fn, LLVMAttributeFunctionIndex, "alwaysinline");
    cg_add_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
    /* Every array is its own allocation: the ABI's promise, LLVM's licence to vectorise. */
    for (int k = 0; k < g->ns + g->np + BODY_T; k++) {
        cg_add_attr(c, fn, (LLVMAttributeIndex)(k + 1), "noalias");
        cg_add_attr(c, fn, (LLVMAttributeIndex)(k + 1), "nocapture");
    }
    for (int s = 0; s < g->ns; s++)
        g->sptr[s] = LLVMGetParam(fn, (unsigned)s);
    for (int p = 0; p < g->np; p++)
        g->iptr[p] = LLVMGetParam(fn, (unsigned)(g->ns + p));
    LLVMValueRef *fixed[BODY_NFIXED] = {&g->refr, &g->spiked, &g->params, &g->prop, &g->t,
                                        &g->dt, &g->ref_steps, &g->begin, &g->end};
    for (int k = 0; k < BODY_NFIXED; k++)
        *fixed[k] = LLVMGetParam(fn, (unsigned)(g->ns + g->np + k));
    gen_body_code(g, fn);
    return fn;
}

/* The exported kernel: unpacks EngramPopArgs and calls the body. */
static LLVMValueRef gen_wrapper(PopGen *g, int pop_index, LLVMValueRef body)
{
    CgCtx *c = g->c;
    LLVMTypeRef at[3] = {c->t_ptr, c->t_i64, c->t_i64};
    char name[64];
    snprintf(name, sizeof name, "engram_pop_%d_update", pop_index);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, at, 3, 0));
    cg_add_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
    cg_add_attr(c, fn, 1, "nocapture");
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    LLVMValueRef a = LLVMGetParam(fn, 0);
    int nargs = g->ns + g->np + BODY_NFIXED;
    LLVMValueRef *args = calloc((size_t)nargs, sizeof *args);
    LLVMValueRef states = cg_load_field(c, a, offsetof(EngramPopArgs, state), c->t_ptr, "states");
    LLVMValueRef inputs = cg_load_field(c, a, offsetof(EngramPopArgs, input), c->t_ptr, "inputs");
    for (int s = 0; s < g->ns; s++)
        args[s] = LLVMBuildLoad2(c->b, c->t_ptr, cg_elem_ptr(c, c->t_ptr, states, cg_const_i64(c, s)), "");
    for (int p = 0; p < g->np; p++)
        args[g->ns + p] = LLVMBuildLoad2(c->b, c->t_ptr,
                                         cg_elem_ptr(c, c->t_ptr, inputs, cg_const_i64(c, p)), "");
    LLVMValueRef *fixed = args + g->ns + g->np;
    fixed[BODY_REFR] = cg_load_field(c, a, offsetof(EngramPopArgs, refr), c->t_ptr, "refr");
    fixed[BODY_SPIKED] = cg_load_field(c, a, offsetof(EngramPopArgs, spiked), c->t_ptr, "spiked");
    fixed[BODY_PARAMS] = cg_load_field(c, a, offsetof(EngramPopArgs, params), c->t_ptr, "params");
    fixed[BODY_PROP] = cg_load_field(c, a, offsetof(EngramPopArgs, prop), c->t_ptr, "prop");
    fixed[BODY_T] = cg_load_field(c, a, offsetof(EngramPopArgs, t), c->t_f64, "t");
    fixed[BODY_DT] = cg_load_field(c, a, offsetof(EngramPopArgs, dt), c->t_f64, "dt");
    fixed[BODY_REF_STEPS] = cg_load_field(c, a, offsetof(EngramPopArgs, ref_steps), c->t_i32, "ref_steps");
    fixed[BODY_BEGIN] = LLVMGetParam(fn, 1);
    fixed[BODY_END] = LLVMGetParam(fn, 2);
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(body), body, args, (unsigned)nargs, "");
    LLVMBuildRetVoid(c->b);
    free(args);
    return fn;
}

static bool gen_check_pop(CgCtx *c, const IrPop *pop)
{
    for (int p = 0; p < pop->nports; p++)
        if (pop->ports[p].state < 0 || pop->ports[p].state >= pop->nstates) {
            cg_error(c, pop->span, "port '%s' targets state #%d", pop->ports[p].name, pop->ports[p].state);
            return false;
        }
    if (pop->method != ENGRAM_METHOD_EXACT)
        return true;
    for (int r = 0; r < pop->nlinear; r++)
        if (pop->lin_vars[r] < 0 || pop->lin_vars[r] >= pop->nstates) {
            cg_error(c, pop->span, "linear variable #%d is out of range", pop->lin_vars[r]);
            return false;
        }
    for (int s = 0; s < pop->nstates; s++) {
        bool linear = false;
        for (int r = 0; r < pop->nlinear; r++)
            linear |= pop->lin_vars[r] == s;
        if (pop->states[s].ode && !linear) {
            cg_error(c, pop->span, "'%s' has an ODE but is not in the exact linear system",
                     pop->states[s].name);
            return false;
        }
    }
    return true;
}

LLVMValueRef cg_emit_pop_kernel(CgCtx *c, int pop_index)
{
    const IrPop *pop = &c->m->pops[pop_index];
    if (!gen_check_pop(c, pop))
        return NULL;
    PopGen g = {.c = c, .pop = pop, .ns = pop->nstates, .np = pop->nports,
                .nl = pop->method == ENGRAM_METHOD_EXACT ? pop->nlinear : 0};
    size_t m = (size_t)g.nl * (size_t)(g.nl + 1) + 1;
    g.sptr = calloc((size_t)g.ns + 1, sizeof *g.sptr);
    g.iptr = calloc((size_t)g.np + 1, sizeof *g.iptr);
    g.pvals = calloc((size_t)c->m->nparams + 1, sizeof *g.pvals);
    g.P = calloc(m, sizeof *g.P);
    g.Pref = calloc(m, sizeof *g.Pref);
    g.nz = calloc(m, sizeof *g.nz);
    g.uses_ref = calloc((size_t)g.nl + 1, sizeof *g.uses_ref);
    g.modified = calloc((size_t)g.ns + 1, sizeof *g.modified);
    LLVMValueRef body = gen_body(&g, pop_index);
    LLVMValueRef fn = gen_wrapper(&g, pop_index, body);
    free(g.sptr);
    free(g.iptr);
    free(g.pvals);
    free(g.P);
    free(g.Pref);
    free(g.nz);
    free(g.uses_ref);
    free(g.modified);
    return fn;
}

/* ---- delivery kernel ------------------------------------------------------------------------------ */

typedef struct DelGen {
    CgCtx *c;
    LLVMValueRef fn;
    LLVMValueRef spikes, nspikes, row, col, weight, delay, ring, ntgt, slots, step, wv, dsteps;
    LLVMBasicBlockRef exit;
} DelGen;

static LLVMValueRef del_load(DelGen *g, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx, const char *name)
{
    return LLVMBuildLoad2(g->c->b, ty, cg_elem_ptr(g->c, ty, base, idx), name);
}

static LLVMBasicBlockRef del_block(DelGen *g, const char *name)
{
    return LLVMAppendBasicBlockInContext(g->c->ctx, g->fn, name);
}

/* The synapses of one spike: k in [k0, k1); returns the block that ends the row. */
static void del_inner(DelGen *g, bool per_w, bool per_d, LLVMValueRef k0, LLVMValueRef k1,
                      LLVMValueRef rowbase, LLVMBasicBlockRef done)
{
    CgCtx *c = g->c;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    LLVMBasicBlockRef body = del_block(g, "synapse");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, k0, k1, ""), body, done);
    LLVMPositionBuilderAtEnd(c->b, body);
    LLVMValueRef k = LLVMBuildPhi(c->b, c->t_i64, "k");
    LLVMValueRef tgt = LLVMBuildZExt(c->b, del_load(g, c->t_i32, g->col, k, "col"), c->t_i64, "");
    LLVMValueRef base = rowbase;
    if (per_d) {
        LLVMValueRef d = LLVMBuildZExt(c->b, del_load(g, c->t_i16, g->delay, k, "d"), c->t_i64, "");
        LLVMValueRef slot = LLVMBuildURem(c->b, LLVMBuildAdd(c->b, g->step, d, ""), g->slots, "slot");
        base = LLVMBuildMul(c->b, slot, g->ntgt, "");
    }
    LLVMValueRef w = per_w ? del_load(g, c->t_real, g->weight, k, "w") : g->wv;
    LLVMValueRef p = cg_elem_ptr(c, c->t_real, g->ring, LLVMBuildAdd(c->b, base, tgt, "idx"));
    LLVMValueRef sum = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->t_real, p, ""), w, "");
    LLVMBuildStore(c->b, sum, p);
    LLVMValueRef next = LLVMBuildAdd(c->b, k, cg_const_i64(c, 1), "k.next");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, next, k1, ""), body, done);
    LLVMValueRef vals[2] = {k0, next};
    LLVMBasicBlockRef blocks[2] = {pre, body};
    LLVMAddIncoming(k, vals, blocks, 2);
}

#define DEL_ROW_AHEAD 4   /* spikes ahead whose row entry is prefetched */

/* Prefetches the start of the row of the next spike (the last spike its
 * own): its synapse tables come from memory in a large network, and the
 * hardware prefetcher only follows a row once it has missed a few times.
 * Four cache lines of each table; prefetching past a table's end is harmless. */
static void del_prefetch_next(DelGen *g, bool per_w, bool per_d, LLVMValueRef s)
{
    CgCtx *c = g->c;
    LLVMValueRef next = LLVMBuildAdd(c->b, s, cg_const_i64(c, 1), "");
    next = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, g->nspikes, ""), next, s, "");
    LLVMValueRef src = LLVMBuildZExt(c->b, del_load(g, c->t_i32, g->spikes, next, "src.next"),
                                     c->t_i64, "");
    LLVMValueRef k = del_load(g, c->t_i64, g->row, src, "k.next");
    LLVMTypeRef ty = LLVMFunctionType(c->t_void, (LLVMTypeRef[]){c->t_ptr, c->t_i32, c->t_i32, c->t_i32}, 4, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "llvm.prefetch.p0");
    if (!fn)
        fn = LLVMAddFunction(c->mod, "llvm.prefetch.p0", ty);
    struct { LLVMValueRef base; LLVMTypeRef elem; int bytes; bool on; } t[3] = {
        {g->col, c->t_i32, 4, true},
        {g->weight, c->t_real, c->m->precision, per_w},
        {g->delay, c->t_i16, 2, per_d}};
    for (int j = 0; j < 3; j++)
        for (int line = 0; t[j].on && line < 4; line++) {
            LLVMValueRef at = LLVMBuildAdd(c->b, k, cg_const_i64(c, line * 64 / t[j].bytes), "");
            LLVMValueRef p = LLVMBuildGEP2(c->b, t[j].elem, t[j].base, &at, 1, "");
            LLVMValueRef args[4] = {p, cg_const_i32(c, 0), cg_const_i32(c, 3), cg_const_i32(c, 1)};
            LLVMBuildCall2(c->b, ty, fn, args, 4, "");
        }
    /* The row entry that the prefetch above reads for a later spike: in a
     * large network the row table itself misses, and the load of row[next]
     * then stalls the loop (CUBA 64k: half of the delivery time). */
    LLVMValueRef far = LLVMBuildAdd(c->b, s, cg_const_i64(c, DEL_ROW_AHEAD), "");
    far = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, far, g->nspikes, ""), far, s, "");
    LLVMValueRef fsrc = LLVMBuildZExt(c->b, del_load(g, c->t_i32, g->spikes, far, "src.far"), c->t_i64, "");
    LLVMValueRef rp = LLVMBuildGEP2(c->b, c->t_i64, g->row, &fsrc, 1, "");
    LLVMValueRef args[4] = {rp, cg_const_i32(c, 0), cg_const_i32(c, 3), cg_const_i32(c, 1)};
    LLVMBuildCall2(c->b, ty, fn, args, 4, "");
}

/* One loop nest over the spikes, specialised for per-synapse weights/delays. */
static LLVMBasicBlockRef del_nest(DelGen *g, bool per_w, bool per_d)
{
    CgCtx *c = g->c;
    LLVMBasicBlockRef pre = del_block(g, per_w ? (per_d ? "w.d" : "w") : (per_d ? "d" : "hom"));
    LLVMBasicBlockRef spike = del_block(g, "spike");
    LLVMBasicBlockRef latch = del_block(g, "spike.next");
    LLVMPositionBuilderAtEnd(c->b, pre);
    LLVMValueRef rowbase = NULL;
    if (!per_d) {   /* homogeneous delay: one slot for the whole call */
        LLVMValueRef d = LLVMBuildSExt(c->b, g->dsteps, c->t_i64, "");
        LLVMValueRef slot = LLVMBuildURem(c->b, LLVMBuildAdd(c->b, g->step, d, ""), g->slots, "slot");
        rowbase = LLVMBuildMul(c->b, slot, g->ntgt, "rowbase");
    }
    LLVMBuildBr(c->b, spike);
    LLVMPositionBuilderAtEnd(c->b, spike);
    LLVMValueRef s = LLVMBuildPhi(c->b, c->t_i64, "s");
    LLVMValueRef src = LLVMBuildZExt(c->b, del_load(g, c->t_i32, g->spikes, s, "src"), c->t_i64, "");
    LLVMValueRef k0 = del_load(g, c->t_i64, g->row, src, "k0");
    LLVMValueRef k1 = del_load(g, c->t_i64, g->row, LLVMBuildAdd(c->b, src, cg_const_i64(c, 1), ""), "k1");
    del_prefetch_next(g, per_w, per_d, s);
    del_inner(g, per_w, per_d, k0, k1, rowbase, latch);
    LLVMPositionBuilderAtEnd(c->b, latch);
    LLVMValueRef next = LLVMBuildAdd(c->b, s, cg_const_i64(c, 1), "s.next");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, g->nspikes, ""), spike, g->exit);
    LLVMValueRef vals[2] = {cg_const_i64(c, 0), next};
    LLVMBasicBlockRef blocks[2] = {pre, latch};
    LLVMAddIncoming(s, vals, blocks, 2);
    return pre;
}

static void del_load_args(DelGen *g, LLVMValueRef a)
{
    CgCtx *c = g->c;
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
    g->wv = cg_to_real(c, cg_load_field(c, a, offsetof(EngramDeliverArgs, weight_value), c->t_f64, "wv"));
    g->dsteps = cg_load_field(c, a, offsetof(EngramDeliverArgs, delay_steps), c->t_i32, "delay_steps");
}

/* A plastic projection with an on-pre handler: spikes go to the plastic
 * nest (codegen_plastic.c) while a->plastic is set and switched on, else to
 * the plain nests (`any`). */
static void del_plastic_gate(DelGen *g, int proj_index, LLVMValueRef some, LLVMBasicBlockRef any)
{
    CgCtx *c = g->c;
    LLVMBasicBlockRef has = del_block(g, "has.plastic"), on = del_block(g, "plastic");
    LLVMValueRef a = LLVMGetParam(g->fn, 0);
    LLVMValueRef ps = cg_load_field(c, a, offsetof(EngramDeliverArgs, plastic), c->t_ptr, "plastic");
    LLVMBasicBlockRef check = del_block(g, "spikes");
    LLVMBuildCondBr(c->b, some, check, g->exit);
    LLVMPositionBuilderAtEnd(c->b, check);
    LLVMBuildCondBr(c->b, LLVMBuildIsNotNull(c->b, ps, ""), has, any);
    LLVMPositionBuilderAtEnd(c->b, has);
    LLVMValueRef flag = cg_load_field(c, ps, offsetof(EngramPlasticState, plastic), c->t_i32, "on");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, flag, cg_const_i32(c, 0), ""), on, any);
    LLVMPositionBuilderAtEnd(c->b, on);
    cg_emit_plastic_deliver(c, proj_index, g->fn, a, g->exit);
}

LLVMValueRef cg_emit_deliver_kernel(CgCtx *c, int proj_index)
{
    char name[64];
    snprintf(name, sizeof name, "engram_proj_%d_deliver", proj_index);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, &c->t_ptr, 1, 0));
    cg_add_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
    cg_add_attr(c, fn, 1, "nocapture");
    DelGen g = {.c = c, .fn = fn};
    LLVMBasicBlockRef entry = del_block(&g, "entry");
    LLVMBasicBlockRef any = del_block(&g, "any");
    g.exit = del_block(&g, "exit");
    LLVMPositionBuilderAtEnd(c->b, entry);
    del_load_args(&g, LLVMGetParam(fn, 0));
    LLVMValueRef some = LLVMBuildICmp(c->b, LLVMIntSGT, g.nspikes, cg_const_i64(c, 0), "");
    if (cg_proj_has_on_pre(&c->m->projs[proj_index]))
        del_plastic_gate(&g, proj_index, some, any);
    else
        LLVMBuildCondBr(c->b, some, any, g.exit);

    /* variant = 2 * (weight != NULL) + (delay != NULL) */
    LLVMPositionBuilderAtEnd(c->b, any);
    LLVMValueRef hasw = LLVMBuildIsNotNull(c->b, g.weight, "");
    LLVMValueRef hasd = LLVMBuildIsNotNull(c->b, g.delay, "");
    LLVMValueRef variant = LLVMBuildOr(c->b, LLVMBuildShl(c->b, LLVMBuildZExt(c->b, hasw, c->t_i32, ""),
                                                          cg_const_i32(c, 1), ""),
                                       LLVMBuildZExt(c->b, hasd, c->t_i32, ""), "variant");
    LLVMBasicBlockRef nests[4];
    for (int v = 0; v < 4; v++)
        nests[v] = del_nest(&g, (v & 2) != 0, (v & 1) != 0);
    LLVMPositionBuilderAtEnd(c->b, any);
    LLVMValueRef sw = LLVMBuildSwitch(c->b, variant, nests[0], 3);
    for (int v = 1; v < 4; v++)
        LLVMAddCase(sw, cg_const_i32(c, v), nests[v]);

    LLVMPositionBuilderAtEnd(c->b, g.exit);
    LLVMBuildRetVoid(c->b);
    return fn;
}
