/*
 * network.c - builds the network of a run from the model tables and the
 * resolved parameters: sizes, the memory estimate (also what --dry-run
 * prints), state arrays with their initial values, exact propagators,
 * connectivity with weights and delays, and the ring buffers of the ports.
 *
 * Random numbers (docs/language.md section 11): initial values use
 * (seed, pop stream, neuron, state << 32); connectivity (seed, proj stream,
 * target, ...) through rt_core; weights (seed, stream + 1, target, rank << 32)
 * and delays (seed, stream + 2, ...), where rank is the synapse's place among
 * its target's sources.  Nothing depends on the order of the work.
 *
 * A plastic projection (docs/language.md section 12) always has per-synapse,
 * mutable weights; its synapse variables are drawn per synapse from
 * (seed, stream + 3, target, rank << 32 | v << 20) with INDEX = the synapse
 * id, its pre and post traces per neuron from (seed, stream + 3, neuron,
 * 0xffffffff << 32 | v << 20) with INDEX = the neuron (v: the variable's
 * place in the projection's run of the var table; ranks never reach
 * 0xffffffff, so the keys never meet).  The *_last steps start at 0.  The
 * post-side index comes from the CSR builder (ENGRAM_CSR_POST_INDEX).  A
 * rule with `on pre arrival` adds the arrival queue of arrival.c.
 *
 * Order: helpers, per-projection checks and counts, the estimate,
 * populations, propagators, projections, plastic state, rings, build and free.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"
#include "rt_protocol.h"

#define MAX_DELAY_STEPS 65535          /* delays are stored as uint16_t */
#define ASSUMED_RATE_HZ 10.0           /* for the recording estimate of neurons */

/* ---- helpers ------------------------------------------------------------- */

const char *engram_format_bytes(uint64_t bytes, char *buf, size_t n)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, n, "%.1f %s", v, units[u]);
    return buf;
}

/* Cache-line aligned, zeroed, never NULL for a zero size. */
static void *alloc_array(size_t count, size_t elem)
{
    if (elem && count > SIZE_MAX / elem / 2)
        return NULL;
    size_t bytes = (count * elem + 63) & ~(size_t)63;
    if (bytes == 0)
        bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

static const char *pop_name(const EngramModel *m, uint32_t i)
{
    return engram_model_str(m, m->pops[i].name);
}

static const char *param_name(const EngramModel *m, uint32_t i)
{
    return engram_model_str(m, m->params[i].name);
}

/* Delay in ms to steps: nearest step, at least one. */
static int64_t delay_to_steps(double d, double dt)
{
    double s = floor(d / dt + 0.5);
    if (s < 1)
        return 1;
    if (s > (double)INT32_MAX)
        return INT32_MAX;
    return (int64_t)s;
}

/* ---- per-projection checks and counts ------------------------------------------- */

/* Bounds of a distribution's values; NaN where unbounded. */
static void dist_bounds(const EngramDistDesc *x, const double *pv, double *lo, double *hi)
{
    switch (x->kind) {
    case ENGRAM_DIST_CONST:
        *lo = *hi = pv[x->arg[0]];
        break;
    case ENGRAM_DIST_UNIFORM:
        *lo = pv[x->arg[0]];
        *hi = pv[x->arg[1]];
        break;
    default:
        *lo = x->arg[2] == ENGRAM_NONE ? NAN : pv[x->arg[2]];
        *hi = x->arg[3] == ENGRAM_NONE ? NAN : pv[x->arg[3]];
        break;
    }
}

static int check_dist(const EngramModel *m, const EngramProjDesc *pj, const EngramDistDesc *x,
                      const double *pv, const char *what, EngramError *err)
{
    const char *name = engram_model_str(m, pj->name);
    const char *unit = engram_model_str(m, m->params[x->arg[0]].unit);
    double lo, hi;
    dist_bounds(x, pv, &lo, &hi);
    if (x->kind == ENGRAM_DIST_UNIFORM && lo > hi)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "projection %s: %s uniform(%g %s, %g %s) has low > high", name, what,
                           lo, unit, hi, unit);
    if (x->kind == ENGRAM_DIST_NORMAL) {
        if (pv[x->arg[1]] < 0)
            return engram_fail(err, ENGRAM_EXIT_MODEL,
                               "projection %s: %s normal distribution has sd %g %s < 0", name,
                               what, pv[x->arg[1]], unit);
        if (!isnan(lo) && !isnan(hi) && lo > hi)
            return engram_fail(err, ENGRAM_EXIT_MODEL,
                               "projection %s: %s normal distribution has min %g %s > max %g %s",
                               name, what, lo, unit, hi, unit);
    }
    return 0;
}

/* Checks a projection's delays and gives the longest delay in steps
 * (for a normal without max: mean + 6 sd, as an estimate). */
static int check_delay(const EngramModel *m, const EngramProjDesc *pj, const double *pv, double dt,
                       int64_t *max_steps, EngramError *err)
{
    const char *name = engram_model_str(m, pj->name);
    int rc = check_dist(m, pj, &pj->delay, pv, "delay", err);
    if (rc)
        return rc;
    double lo, hi;
    dist_bounds(&pj->delay, pv, &lo, &hi);
    if (!isnan(lo) && lo < dt * (1 - 1e-9))
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "projection %s: delay %g ms is shorter than dt %g ms", name, lo, dt);
    if (isnan(hi))
        hi = pv[pj->delay.arg[0]] + 6 * pv[pj->delay.arg[1]];
    if (isnan(hi) || delay_to_steps(hi, dt) > MAX_DELAY_STEPS)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "projection %s: delay %g ms is longer than %d steps (%g ms at dt %g ms)",
                           name, hi, MAX_DELAY_STEPS, MAX_DELAY_STEPS * dt, dt);
    *max_steps = delay_to_steps(hi, dt);
    return 0;
}

/* Ensemble endpoints restrict the sources and targets to their ranges. */
static int proj_window(const EngramModel *m, const EngramProjDesc *pj, const double *pv,
                       const uint32_t *sizes, EngramConnSpec *spec, EngramError *err)
{
    if (!pj->ens_ends)
        return 0;
    spec->windowed = true;
    spec->src_hi = spec->nsrc;
    spec->tgt_hi = spec->ntgt;
    int rc = 0;
    if (pj->ens_ends & 1)
        rc = engram_ensemble_range(m, pv, sizes, pj->src_group, pj->src_ens, &spec->src_lo,
                                   &spec->src_hi, err);
    if (!rc && (pj->ens_ends & 2))
        rc = engram_ensemble_range(m, pv, sizes, pj->dst_group, pj->dst_ens, &spec->tgt_lo,
                                   &spec->tgt_hi, err);
    if (!rc && spec->rule == ENGRAM_CONN_ONE_TO_ONE &&
        spec->src_hi - spec->src_lo != spec->tgt_hi - spec->tgt_lo)
        rc = engram_fail(err, ENGRAM_EXIT_MODEL, "projection %s: one_to_one needs ends of equal "
                         "size, but they have %u and %u neurons", engram_model_str(m, pj->name),
                         spec->src_hi - spec->src_lo, spec->tgt_hi - spec->tgt_lo);
    return rc;
}

/* The connection spec of a projection, after checking its rule. */
static int proj_spec(const EngramModel *m, const EngramProjDesc *pj, const double *pv,
                     const uint32_t *sizes, uint64_t seed, EngramConnSpec *spec, EngramError *err)
{
    const char *name = engram_model_str(m, pj->name);
    memset(spec, 0, sizeof *spec);
    spec->seed = seed;
    spec->stream = pj->stream;
    spec->nsrc = sizes[pj->src_pop];
    spec->ntgt = sizes[pj->dst_pop];
    spec->same_population = pj->src_pop == pj->dst_pop;
    spec->autapses = pj->autapses != 0;
    switch ((EngramConnKind)pj->rule) {
    case ENGRAM_CONNECT_RANDOM:
        spec->rule = ENGRAM_CONN_RANDOM;
        spec->p_or_k = pv[pj->rule_param];
        if (!(spec->p_or_k >= 0 && spec->p_or_k <= 1))
            return engram_fail(err, ENGRAM_EXIT_MODEL,
                               "projection %s: p = %g is not a probability in [0, 1]", name,
                               spec->p_or_k);
        break;
    case ENGRAM_CONNECT_FIXED_INDEGREE:
        spec->rule = ENGRAM_CONN_FIXED_INDEGREE;
        spec->p_or_k = round(pv[pj->rule_param]);
        if (!(spec->p_or_k >= 0) || !isfinite(spec->p_or_k))
            return engram_fail(err, ENGRAM_EXIT_MODEL, "projection %s: k = %g must be >= 0",
                               name, pv[pj->rule_param]);
        break;
    case ENGRAM_CONNECT_ONE_TO_ONE:
        spec->rule = ENGRAM_CONN_ONE_TO_ONE;
        if (spec->nsrc != spec->ntgt && !pj->ens_ends)
            return engram_fail(err, ENGRAM_EXIT_MODEL,
                               "projection %s: one_to_one needs equal sizes, but %s has %u "
                               "neurons and %s has %u",
                               name, pop_name(m, pj->src_pop), spec->nsrc,
                               pop_name(m, pj->dst_pop), spec->ntgt);
        break;
    case ENGRAM_CONNECT_ALL_TO_ALL:
        spec->rule = ENGRAM_CONN_ALL_TO_ALL;
        break;
    }
    return proj_window(m, pj, pv, sizes, spec, err);
}

/* Number of synapses: exact for all rules but random (expected there). */
static double expected_synapses(const EngramConnSpec *s)
{
    double nsrc = s->nsrc, ntgt = s->ntgt;
    bool excl = s->same_population && !s->autapses;
    if (s->windowed) {   /* self-exclusion only where the windows overlap: ignored */
        nsrc = s->src_hi - s->src_lo;
        ntgt = s->tgt_hi - s->tgt_lo;
        excl = false;
    }
    switch (s->rule) {
    case ENGRAM_CONN_RANDOM:
        return s->p_or_k * (nsrc * ntgt - (excl ? ntgt : 0));
    case ENGRAM_CONN_FIXED_INDEGREE: {
        double avail = nsrc - (excl ? 1 : 0);
        return (s->p_or_k < avail ? s->p_or_k : (avail > 0 ? avail : 0)) * ntgt;
    }
    case ENGRAM_CONN_ONE_TO_ONE:
        return excl ? 0 : ntgt;
    case ENGRAM_CONN_ALL_TO_ALL:
        return nsrc * ntgt - (excl ? ntgt : 0);
    }
    return 0;
}

/* ---- the estimate ------------------------------------------------------------------------ */

unsigned engram_synapse_bytes(const EngramProjDesc *pj, int prec)
{
    bool pl = pj->plastic != 0;
    bool hw = pj->weight.kind != ENGRAM_DIST_CONST || pl, hd = pj->delay.kind != ENGRAM_DIST_CONST;
    unsigned per = 4u + (hw ? (unsigned)prec : 0u) + (hd ? 2u : 0u);
    if (pl)   /* synapse variables, syn_last, the post-side index and its sources */
        per += pj->nsyn_vars * (unsigned)prec + (pj->lazy_syn ? 4u : 0u) + 4u + 4u;
    if (pl && pj->pre_arrival && hd)
        per += 4;   /* arrival.c: the synapses by delay */
    return per;
}

/* Connectivity, weights, delays, ranks (while building) and, when plastic,
 * the synapse variables, traces, *_last steps, the post-side index and the
 * decay tables; for `on pre arrival` the spikes of the last dmax steps and
 * the synapses by delay (arrival.c). */
static uint64_t proj_bytes(const EngramProjDesc *pj, const EngramConnSpec *spec, double e,
                           int prec, int64_t dmax)
{
    bool pl = pj->plastic != 0;
    bool hw = pj->weight.kind != ENGRAM_DIST_CONST || pl, hd = pj->delay.kind != ENGRAM_DIST_CONST;
    double per = engram_synapse_bytes(pj, prec) + (hw || hd ? 4 : 0);   /* + ranks while building */
    double fixed = 8.0 * ((double)spec->nsrc + 1);
    if (pl) {
        fixed += 8.0 * ((double)spec->ntgt + 1) + (double)spec->nsrc * (pj->npre * prec + 4) +
                 (double)spec->ntgt * (pj->npost * prec + 4) +
                 (double)(pj->nsyn_vars + pj->npre + pj->npost) * (ENGRAM_DECAY_STEPS + 1) * prec;
    }
    if (pl && pj->pre_arrival) {
        fixed += 4.0 * (double)spec->nsrc * (double)(dmax + 1) + 12.0 * ENGRAM_ARRIVAL_CHUNK;
    }
    return (uint64_t)(e * per + fixed);
}

/* Weight recording buffers: samples x (time, mean[, weights]) and the
 * source/target ids written at the end. */
static int estimate_weight_recs(const EngramModel *m, const double *pv, EngramEstimate *est,
                                EngramError *err)
{
    double dt = pv[m->hdr->dt_param];
    int64_t nsteps = (int64_t)floor(pv[m->hdr->duration_param] / dt + 0.5);
    for (uint32_t k = 0; k < m->hdr->nweight_recs; k++) {
        const EngramWeightRecDesc *r = &m->weight_recs[k];
        const char *name = engram_model_str(m, m->projs[r->proj].name);
        int64_t every;
        int rc = engram_interval_steps(m, r->every_param, pv, dt, name, &every, err);
        if (rc)
            return rc;
        size_t samples;
        bool per;
        double nsyn = est->proj_synapses[r->proj];
        engram_weight_rec_plan(r, nsteps, every, nsyn, &samples, &per);
        double b = (double)samples * (16.0 + (per ? 8.0 * nsyn : 0.0)) + (per ? 16.0 * nsyn : 0.0);
        est->wrec_bytes[k] = (uint64_t)b;
        est->bytes_record += (uint64_t)b;
    }
    return 0;
}

static uint64_t seed_of(const EngramModel *m, const double *pv)
{
    return (uint64_t)pv[m->hdr->seed_param];
}

void engram_estimate_free(EngramEstimate *est)
{
    free(est->pop_size);
    free(est->proj_synapses);
    free(est->proj_exact);
    free(est->proj_bytes);
    free(est->wrec_bytes);
    free(est->pop_bytes);
    memset(est, 0, sizeof *est);
}

static double expected_spikes(const EngramModel *m, const double *pv, uint32_t i, uint32_t n)
{
    const EngramPopDesc *p = &m->pops[i];
    double dur_s = pv[m->hdr->duration_param] / 1000.0;
    if (p->kind == ENGRAM_POP_POISSON)
        return pv[p->rate_param] * 1000.0 * dur_s * n;    /* rate is in 1/ms */
    if (p->kind == ENGRAM_POP_SPIKE_TIMES)
        return m->params[p->times_param].list_count;
    return ASSUMED_RATE_HZ * dur_s * n;
}

static int estimate_pops(const EngramModel *m, const double *pv, EngramEstimate *est)
{
    int prec = (int)m->hdr->precision;
    for (uint32_t i = 0; i < m->hdr->npops; i++) {
        const EngramPopDesc *p = &m->pops[i];
        uint64_t n = (uint64_t)pv[p->size_param];
        est->pop_size[i] = (uint32_t)n;
        est->neurons += n;
        uint64_t b = n * (4 + 1 + 4);   /* refr, spiked, spike list */
        if (p->kind == ENGRAM_POP_NEURON)
            b += n * p->nstates * (uint64_t)prec;
        else if (p->kind == ENGRAM_POP_POISSON)
            b += n * sizeof(EngramPoissonEntry);
        else
            b += (uint64_t)m->params[p->times_param].list_count * 12;
        est->pop_bytes[i] = b;
        est->bytes_neurons += b;
        if (p->record_spikes)
            est->bytes_record += (uint64_t)(expected_spikes(m, pv, i, (uint32_t)n) * 12.0);
    }
    return 0;
}

int engram_estimate(const EngramModel *m, const double *pv, EngramEstimate *est, EngramError *err)
{
    memset(est, 0, sizeof *est);
    const EngramModelDesc *h = m->hdr;
    int prec = (int)h->precision;
    double dt = pv[h->dt_param];
    est->pop_size = calloc(h->npops + 1, sizeof *est->pop_size);
    est->pop_bytes = calloc(h->npops + 1, sizeof *est->pop_bytes);
    est->proj_synapses = calloc(h->nprojs + 1, sizeof *est->proj_synapses);
    est->proj_exact = calloc(h->nprojs + 1, sizeof *est->proj_exact);
    est->proj_bytes = calloc(h->nprojs + 1, sizeof *est->proj_bytes);
    est->wrec_bytes = calloc(h->nweight_recs + 1, sizeof *est->wrec_bytes);
    /* longest delay into each (population, port): 1 + this many ring slots */
    int64_t *slots = calloc(h->nports + 1, sizeof *slots);
    if (!est->pop_size || !est->pop_bytes || !est->proj_synapses || !est->proj_exact ||
        !est->proj_bytes || !est->wrec_bytes || !slots) {
        free(slots);
        engram_estimate_free(est);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    }
    estimate_pops(m, pv, est);
    int rc = 0;
    for (uint32_t j = 0; j < h->nprojs && rc == 0; j++) {
        const EngramProjDesc *pj = &m->projs[j];
        EngramConnSpec spec;
        int64_t dmax = 1;
        rc = proj_spec(m, pj, pv, est->pop_size, seed_of(m, pv), &spec, err);
        if (!rc)
            rc = check_dist(m, pj, &pj->weight, pv, "weight", err);
        if (!rc)
            rc = check_delay(m, pj, pv, dt, &dmax, err);
        if (rc)
            break;
        double e = expected_synapses(&spec);
        est->proj_synapses[j] = e;
        est->proj_exact[j] = spec.rule != ENGRAM_CONN_RANDOM;
        est->synapses += e;
        est->proj_bytes[j] = proj_bytes(pj, &spec, e, prec, dmax);
        est->bytes_synapses += est->proj_bytes[j];
        uint32_t q = m->pops[pj->dst_pop].first_port + pj->port;
        if (dmax > slots[q])
            slots[q] = dmax;
    }
    for (uint32_t i = 0; i < h->npops && rc == 0; i++) {
        const EngramPopDesc *p = &m->pops[i];
        for (uint32_t q = 0; q < p->nports; q++) {
            int64_t s = slots[p->first_port + q] + 1;
            est->bytes_rings += (uint64_t)(s < 2 ? 2 : s) * est->pop_size[i] * (uint64_t)prec;
        }
    }
    free(slots);
    if (!rc)
        rc = estimate_weight_recs(m, pv, est, err);
    if (rc) {
        engram_estimate_free(est);
        return rc;
    }
    est->bytes_total = est->bytes_neurons + est->bytes_synapses + est->bytes_rings +
                       est->bytes_record + ((uint64_t)1 << 20);   /* tables, buffers */
    return 0;
}

/* ---- populations ----------------------------------------------------------------------- */

static int init_states(EngramNetwork *net, uint32_t i, EngramError *err)
{
    const EngramModel *m = net->model;
    EngramPopRt *p = &net->pops[i];
    const EngramPopDesc *d = p->desc;
    EngramEvalCtx ctx;
    engram_eval_ctx_init(&ctx, net->params, net->dt);
    for (uint32_t s = 0; s < d->nstates; s++) {
        const EngramStateDesc *sd = &m->states[d->first_state + s];
        for (uint32_t k = 0; k < p->n; k++) {
            uint32_t g = p->lo + k;
            ctx.index = g;
            engram_eval_ctx_key(&ctx, net->seed, d->stream, g, (uint64_t)s << 32);
            double v = engram_eval(m->insns, sd->init, &ctx);
            if (!isfinite(v))
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "initial value of %s.%s is not finite (%g) for neuron %u",
                                   p->name, engram_model_str(m, sd->name), v, g);
            engram_value_store(p->state[s], net->precision, k, v);
        }
    }
    return 0;
}

/* One propagator: top n rows of expm([[A dt, b dt], [0, 0]]); rows of held
 * variables zeroed first when `refractory`. */
static int propagator(EngramNetwork *net, EngramPopRt *p, bool refractory, double *out,
                      EngramError *err)
{
    const EngramModel *m = net->model;
    const EngramPopDesc *d = p->desc;
    int n = (int)d->nlinear, n1 = n + 1;
    double M[ENGRAM_EXPM_MAX_N * ENGRAM_EXPM_MAX_N];
    memset(M, 0, sizeof M);
    EngramEvalCtx ctx;
    engram_eval_ctx_init(&ctx, net->params, net->dt);
    for (int r = 0; r < n; r++) {
        uint32_t sv = m->lin_vars[d->first_lin_var + r];
        bool held = m->states[d->first_state + sv].held != 0;
        for (int c = 0; c < n1; c++) {
            EngramCode code = m->coefs[d->first_coef + (uint32_t)(r * n1 + c)];
            double v = engram_eval(m->insns, code, &ctx);
            if (!isfinite(v))
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "%s: the ODE coefficient of %s (row %d, column %d) is not "
                                   "finite (%g); check the parameters it uses",
                                   p->name, engram_model_str(m, m->states[d->first_state + sv].name),
                                   r, c, v);
            M[r * n1 + c] = (refractory && held) ? 0.0 : v * net->dt;
        }
    }
    double E[ENGRAM_EXPM_MAX_N * ENGRAM_EXPM_MAX_N];
    if (engram_expm(n1, M, E) != 0)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "%s: the exact propagator cannot be computed (the ODE system "
                           "overflows over one step dt = %g ms)",
                           p->name, net->dt);
    memcpy(out, E, (size_t)n * (size_t)n1 * sizeof *out);
    return 0;
}

static int build_neuron_pop(EngramNetwork *net, uint32_t i, EngramError *err)
{
    const EngramModel *m = net->model;
    EngramPopRt *p = &net->pops[i];
    const EngramPopDesc *d = p->desc;
    p->state = calloc(d->nstates + 1, sizeof *p->state);
    p->input = calloc(d->nports + 1, sizeof *p->input);
    if (!p->state || !p->input)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    for (uint32_t s = 0; s < d->nstates; s++)
        if (!(p->state[s] = alloc_array(p->n, (size_t)net->precision)))
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    int rc = init_states(net, i, err);
    if (rc)
        return rc;
    if (d->refractory_param != ENGRAM_NONE) {
        double r = net->params[d->refractory_param];
        if (!(r >= 0) || r / net->dt > INT32_MAX / 2)
            return engram_fail(err, ENGRAM_EXIT_MODEL, "%s: refractory period %s = %g ms is "
                               "not a time >= 0", p->name, param_name(m, d->refractory_param), r);
        /* Refractory in the steps n+k after a spike in step n with k*dt < t_ref,
         * as Brian2 counts them: t_ref = 2 ms at dt = 0.1 ms holds 19 steps. */
        int32_t steps = (int32_t)floor(r / net->dt + 0.5);
        p->ref_steps = steps > 0 ? steps - 1 : 0;
    }
    if (d->method == ENGRAM_METHOD_EXACT) {
        size_t nm = (size_t)d->nlinear * (d->nlinear + 1);
        p->prop = calloc(2 * nm, sizeof *p->prop);
        if (!p->prop)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
        if ((rc = propagator(net, p, false, p->prop, err)) ||
            (rc = propagator(net, p, true, p->prop + nm, err)))
            return rc;
    }
    p->kernel = (EngramPopKernel)m->kernels[d->update_kernel];
    return 0;
}

static int build_pop(EngramNetwork *net, uint32_t i, uint32_t size, EngramError *err)
{
    const EngramModel *m = net->model;
    EngramPopRt *p = &net->pops[i];
    p->desc = &m->pops[i];
    p->name = pop_name(m, i);
    p->size = size;
    uint64_t P = (uint64_t)net->nranks * net->nthreads, b0 = (uint64_t)net->rank * net->nthreads;
    p->lo = engram_block(size, b0, P);
    p->n = engram_block(size, b0 + net->nthreads, P) - p->lo;
    p->refr = alloc_array(p->n, sizeof *p->refr);
    p->spiked = alloc_array(p->n, 1);
    p->spikes = alloc_array(size, sizeof *p->spikes);
    p->rings = calloc(p->desc->nports + 1, sizeof *p->rings);
    p->parts = calloc(net->nthreads, sizeof *p->parts);
    if (!p->refr || !p->spiked || !p->spikes || !p->rings || !p->parts)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    for (uint32_t t = 0; t < net->nthreads; t++) {
        EngramPopPart *pt = &p->parts[t];
        pt->lo = engram_block(size, b0 + t, P) - p->lo;
        pt->hi = engram_block(size, b0 + t + 1, P) - p->lo;
        /* one partition in all: its list is the population's */
        pt->spikes = P == 1 ? p->spikes : alloc_array(pt->hi - pt->lo, sizeof *pt->spikes);
        if (!pt->spikes)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    }
    if (p->desc->record_spikes) {
        double e = expected_spikes(m, net->params, i, size) / net->nranks;
        p->rec_cap = e < 1024 ? 1024 : (e > (1 << 22) ? (1 << 22) : (size_t)e);
        p->rec_step = malloc(p->rec_cap * sizeof *p->rec_step);
        p->rec_id = malloc(p->rec_cap * sizeof *p->rec_id);
        if (!p->rec_step || !p->rec_id)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    }
    if (p->desc->kind == ENGRAM_POP_NEURON)
        return build_neuron_pop(net, i, err);
    return engram_source_init(net, p, err);
}

/* ---- projections ------------------------------------------------------------------------- */

double engram_dist_draw(const EngramDistDesc *x, const double *pv, EngramRng *r)
{
    if (x->kind == ENGRAM_DIST_CONST)
        return pv[x->arg[0]];
    if (x->kind == ENGRAM_DIST_UNIFORM) {
        double lo = pv[x->arg[0]], hi = pv[x->arg[1]];
        return lo + (hi - lo) * engram_rng_uniform(r);
    }
    double v = pv[x->arg[0]] + pv[x->arg[1]] * engram_rng_normal(r);
    if (x->arg[2] != ENGRAM_NONE && v < pv[x->arg[2]])
        v = pv[x->arg[2]];
    if (x->arg[3] != ENGRAM_NONE && v > pv[x->arg[3]])
        v = pv[x->arg[3]];
    return v;
}

static int draw_synapses(EngramNetwork *net, EngramProjRt *pr, EngramError *err)
{
    const EngramProjDesc *d = pr->desc;
    const double *pv = net->params;
    uint64_t nsyn = pr->csr.nsyn;
    pr->weight_value = d->weight.kind == ENGRAM_DIST_CONST ? pv[d->weight.arg[0]] : 0.0;
    pr->delay_steps = (int32_t)delay_to_steps(
        d->delay.kind == ENGRAM_DIST_CONST ? pv[d->delay.arg[0]] : net->dt, net->dt);
    pr->max_delay = pr->delay_steps;
    if (d->weight.kind != ENGRAM_DIST_CONST || pr->plastic) {
        if (!(pr->weight = alloc_array(nsyn, (size_t)net->precision)))
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the weights of %s",
                               pr->name);
        for (uint64_t j = 0; j < nsyn; j++) {
            EngramRng r;
            engram_rng_init_synapse(&r, net->seed, d->stream + 1, pr->csr.col[j],
                                    pr->csr.syn_target_rank[j]);
            engram_value_store(pr->weight, net->precision, j, engram_dist_draw(&d->weight, pv, &r));
        }
    }
    if (d->delay.kind != ENGRAM_DIST_CONST) {
        if (!(pr->delay = alloc_array(nsyn, sizeof *pr->delay)))
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the delays of %s",
                               pr->name);
        pr->max_delay = 1;
        for (uint64_t j = 0; j < nsyn; j++) {
            EngramRng r;
            engram_rng_init_synapse(&r, net->seed, d->stream + 2, pr->csr.col[j],
                                    pr->csr.syn_target_rank[j]);
            int64_t s = delay_to_steps(engram_dist_draw(&d->delay, pv, &r), net->dt);
            if (s > MAX_DELAY_STEPS)
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "projection %s: a delay is longer than %d steps (%g ms)",
                                   pr->name, MAX_DELAY_STEPS, MAX_DELAY_STEPS * net->dt);
            pr->delay[j] = (uint16_t)s;
            if (s > pr->max_delay)
                pr->max_delay = (int32_t)s;
        }
    }
    return 0;
}

static int build_plastic(EngramNetwork *net, EngramProjRt *pr, uint32_t t, const uint64_t *gid,
                         EngramError *err);
static int build_post_src(EngramProjRt *pr, EngramError *err);

/* Global CSR ids of the synapses of every partition of this rank: source
 * major, and within a source row the partitions (ascending target blocks)
 * in order over all ranks.  gid[t] has one entry per synapse of partition t. */
static int global_ids(EngramNetwork *net, uint32_t j, uint64_t **gid, EngramError *err)
{
    uint32_t T = net->nthreads, nsrc = net->tprojs[0][j].csr.nsrc;
    uint64_t *cnt = calloc((size_t)nsrc + 1, sizeof *cnt), *before = calloc((size_t)nsrc + 1, 8);
    uint64_t *grow = calloc((size_t)nsrc + 1, sizeof *grow);
    int rc = 0;
    if (!cnt || !before || !grow)
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory numbering synapses");
    for (uint32_t t = 0; t < T && !rc; t++) {
        const EngramCsr *c = &net->tprojs[t][j].csr;
        for (uint32_t s = 0; s < nsrc; s++)
            cnt[s] += c->row[s + 1] - c->row[s];
        if (!(gid[t] = malloc((c->nsyn + 1) * sizeof **gid)))
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory numbering synapses");
    }
    if (!rc) {
        engram_comm_exscan_u64_sum(cnt, before, nsrc);
        memcpy(grow, cnt, (size_t)nsrc * sizeof *grow);
        engram_comm_allreduce_u64_sum(grow, nsrc);
        uint64_t acc = 0;
        for (uint32_t s = 0; s < nsrc; s++) {   /* grow[s]: first id of row s, + earlier ranks */
            uint64_t c = grow[s];
            grow[s] = acc + before[s];
            acc += c;
        }
        for (uint32_t t = 0; t < T; t++) {
            const EngramCsr *c = &net->tprojs[t][j].csr;
            for (uint32_t s = 0; s < nsrc; s++) {
                for (uint64_t k = c->row[s]; k < c->row[s + 1]; k++)
                    gid[t][k] = grow[s] + (k - c->row[s]);
                grow[s] += c->row[s + 1] - c->row[s];
            }
        }
    }
    free(cnt);
    free(before);
    free(grow);
    return rc;
}

/* Targets to rank-local indices (after everything keyed by global ids is drawn). */
static int localize(EngramProjRt *pr, const EngramPopRt *dst, EngramError *err)
{
    EngramCsr *c = &pr->csr;
    if (dst->lo == 0 && dst->n == c->ntgt)
        return 0;
    for (uint64_t k = 0; k < c->nsyn; k++)
        c->col[k] -= dst->lo;
    if (c->tgt_row) {
        uint64_t *row = malloc(((size_t)dst->n + 1) * sizeof *row);
        if (!row)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", pr->name);
        memcpy(row, c->tgt_row + dst->lo, ((size_t)dst->n + 1) * sizeof *row);
        free(c->tgt_row);
        c->tgt_row = row;
    }
    c->ntgt = dst->n;
    return 0;
}

static int build_proj(EngramNetwork *net, uint32_t j, const EngramEstimate *est, EngramError *err)
{
    const EngramModel *m = net->model;
    uint32_t T = net->nthreads;
    bool whole = T == 1 && net->nranks == 1;
    for (uint32_t t = 0; t < T; t++) {
        EngramProjRt *pr = &net->tprojs[t][j];
        pr->desc = &m->projs[j];
        pr->name = engram_model_str(m, pr->desc->name);
        pr->plastic = pr->desc->plastic != 0;
    }
    const EngramProjDesc *d = &m->projs[j];
    const EngramPopRt *dst = &net->pops[d->dst_pop];
    EngramConnSpec spec;
    int rc = proj_spec(m, d, net->params, est->pop_size, net->seed, &spec, err);
    if (rc)
        return rc;
    unsigned flags = 0;
    if (d->weight.kind != ENGRAM_DIST_CONST || d->delay.kind != ENGRAM_DIST_CONST || d->plastic)
        flags |= ENGRAM_CSR_RANK;
    if (d->plastic)
        flags |= ENGRAM_CSR_POST_INDEX;
    uint32_t *targets = whole ? NULL : malloc(((size_t)dst->n + 1) * sizeof *targets);
    if (!whole && !targets)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory connecting %s",
                           engram_model_str(m, d->name));
    for (uint32_t t = 0; t < T && !rc; t++) {
        EngramProjRt *pr = &net->tprojs[t][j];
        const EngramPopPart *pt = &dst->parts[t];
        for (uint32_t i = pt->lo; targets && i < pt->hi; i++)
            targets[i - pt->lo] = dst->lo + i;
        rc = engram_csr_build(spec.nsrc, spec.ntgt, targets, pt->hi - pt->lo,
                              engram_connect_spec_sources, &spec, flags, &pr->csr);
        if (rc == ENGRAM_CORE_ERANGE)
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE,
                             "projection %s: more than 2^32 - 1 plastic synapses in one "
                             "partition; run it on more threads or ranks", pr->name);
        else if (rc == ENGRAM_CORE_ENOMEM)
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory connecting %s", pr->name);
        else if (rc != 0)
            rc = engram_fail(err, ENGRAM_EXIT_MODEL, "projection %s: cannot connect (bad p or k)",
                             pr->name);
    }
    free(targets);
    uint64_t **gid = NULL;
    if (!rc && d->plastic && d->nsyn_vars && !whole) {
        if (!(gid = calloc(T, sizeof *gid)))
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory numbering synapses");
        else
            rc = global_ids(net, j, gid, err);
    }
    uint64_t nsyn = 0;
    for (uint32_t t = 0; t < T && !rc; t++) {
        EngramProjRt *pr = &net->tprojs[t][j];
        rc = draw_synapses(net, pr, err);
        if (!rc && pr->plastic)
            rc = build_plastic(net, pr, t, gid ? gid[t] : NULL, err);
        if (!rc)
            rc = localize(pr, dst, err);
        if (!rc && pr->plastic)
            rc = build_post_src(pr, err);
        /* ranks are needed only to draw weights, delays and synapse variables */
        free(pr->csr.syn_target_rank);
        pr->csr.syn_target_rank = NULL;
        pr->kernel = (EngramDeliverKernel)m->kernels[d->deliver_kernel];
        nsyn += pr->csr.nsyn;
    }
    for (uint32_t t = 0; gid && t < T; t++)
        free(gid[t]);
    free(gid);
    if (!rc && d->plastic && d->pre_arrival)
        rc = engram_arrival_build(net, j, err);
    engram_comm_allreduce_u64_sum(&nsyn, 1);
    net->projs[j].nsyn_all = nsyn;
    net->synapses += nsyn;
    return rc;
}

/* ---- plastic state ------------------------------------------------------------------------ */

int engram_interval_steps(const EngramModel *m, uint32_t param, const double *pv, double dt,
                          const char *what, int64_t *steps, EngramError *err)
{
    double t = pv[param];
    if (!(t > 0) || !isfinite(t) || t / dt > 9.0e18)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "%s: the interval %s = %g ms is not a time > 0",
                           what, param_name(m, param), t);
    int64_t s = (int64_t)floor(t / dt + 0.5);
    *steps = s < 1 ? 1 : s;
    return 0;
}

/* Evaluates one variable's initial value into arr[k] for k < n; the key of
 * element k is (seed, stream, index_of(k), counter_of(k)). */
typedef struct VarInit {
    const EngramVarDesc *var;
    uint32_t stream;
    const uint32_t *index;     /* per element, or NULL: offset + k */
    const uint32_t *rank;      /* per element (counter rank << 32), or NULL: 0xffffffff */
    uint32_t v;                /* place in the projection's variables */
    const char *what;          /* "synapse", "neuron" */
    const uint64_t *id;        /* INDEX per element (global synapse ids), or NULL: offset + k */
    uint32_t offset;           /* global id of element 0 (rank-local post traces) */
} VarInit;

static int init_var(EngramNetwork *net, const EngramProjRt *pr, const VarInit *vi, void **arr,
                    uint64_t n, EngramError *err)
{
    const EngramModel *m = net->model;
    if (!(*arr = alloc_array(n, (size_t)net->precision)))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the variables of %s",
                           pr->name);
    EngramEvalCtx ctx;
    engram_eval_ctx_init(&ctx, net->params, net->dt);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t hi = vi->rank ? vi->rank[k] : 0xffffffffu;
        uint64_t id = vi->id ? vi->id[k] : vi->offset + k;
        ctx.index = (double)id;
        engram_eval_ctx_key(&ctx, net->seed, vi->stream,
                            vi->index ? vi->index[k] : (uint32_t)(vi->offset + k),
                            hi << 32 | (uint64_t)vi->v << 20);
        double x = engram_eval(m->insns, vi->var->init, &ctx);
        if (!isfinite(x))
            return engram_fail(err, ENGRAM_EXIT_MODEL,
                               "projection %s: initial value of %s is not finite (%g) for %s %llu",
                               pr->name, engram_model_str(m, vi->var->name), x, vi->what,
                               (unsigned long long)id);
        engram_value_store(*arr, net->precision, k, x);
    }
    return 0;
}

/* Source of each entry of the post-side index: walking the synapses in CSR
 * order visits each target's sources ascending, as tgt_order lists them. */
static int build_post_src(EngramProjRt *pr, EngramError *err)
{
    const EngramCsr *c = &pr->csr;
    uint64_t *cur = malloc(((size_t)c->ntgt + 1) * sizeof *cur);
    pr->post_src = alloc_array(c->nsyn, sizeof *pr->post_src);
    if (!cur || !pr->post_src) {
        free(cur);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the post index of %s",
                           pr->name);
    }
    memcpy(cur, c->tgt_row, (size_t)c->ntgt * sizeof *cur);
    for (uint32_t s = 0; s < c->nsrc; s++)
        for (uint64_t j = c->row[s]; j < c->row[s + 1]; j++)
            pr->post_src[cur[c->col[j]]++] = s;
    free(cur);
    return 0;
}

/* Allocates n arrays of variables (NULL-padded pointer table). */
static void **var_table(uint32_t n)
{
    return calloc((size_t)n + 1, sizeof(void *));
}

/* Each partition's own cache of decay factors (EngramPlasticState.decay):
 * every key NaN, so that the kernels fill a variable's table on first use. */
static void *alloc_decay_cache(const EngramProjDesc *d, int prec)
{
    size_t per = (size_t)ENGRAM_DECAY_STEPS + 1;
    size_t n = ((size_t)d->nsyn_vars + d->npre + d->npost) * per;
    void *c = alloc_array(n + 1, (size_t)prec);
    for (size_t k = 0; c && k < n; k += per)
        engram_value_store(c, prec, k, NAN);
    return c;
}

/* Partition t of a rank: its synapse variables and its own copy of the pre
 * traces (every partition updates its copy identically); the post traces of
 * the rank's targets belong to partition 0 and are shared (each partition
 * touches only its own targets). */
static int build_plastic_vars(EngramNetwork *net, EngramProjRt *pr, uint32_t t,
                              const uint64_t *gid, EngramError *err)
{
    const EngramProjDesc *d = pr->desc;
    const EngramModel *m = net->model;
    const EngramPopRt *dst = &net->pops[d->dst_pop];
    uint32_t nsrc = pr->csr.nsrc;
    pr->syn = var_table(d->nsyn_vars);
    pr->pre = var_table(d->npre);
    pr->pre_last = alloc_array(nsrc, sizeof *pr->pre_last);
    if (t == 0) {
        pr->post = var_table(d->npost);
        pr->post_last = alloc_array(dst->n, sizeof *pr->post_last);
    } else {
        const EngramProjRt *p0 = &net->tprojs[0][pr - net->tprojs[t]];
        pr->post = p0->post;
        pr->post_last = p0->post_last;
        pr->post_shared = true;
    }
    if (d->lazy_syn)
        pr->syn_last = alloc_array(pr->csr.nsyn, sizeof *pr->syn_last);
    pr->decay = alloc_decay_cache(d, net->precision);
    if (!pr->syn || !pr->pre || !pr->post || !pr->pre_last || !pr->post_last ||
        (d->lazy_syn && !pr->syn_last) || !pr->decay)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the plastic state of %s",
                           pr->name);
    int rc = 0;
    uint32_t v = 0;
    for (uint32_t k = 0; k < d->nsyn_vars && !rc; k++, v++) {
        VarInit vi = {&m->vars[d->first_var + v], d->stream + 3, pr->csr.col,
                      pr->csr.syn_target_rank, v, "synapse", gid, 0};
        rc = init_var(net, pr, &vi, &pr->syn[k], pr->csr.nsyn, err);
    }
    for (uint32_t k = 0; k < d->npre && !rc; k++, v++) {
        VarInit vi = {&m->vars[d->first_var + v], d->stream + 3, NULL, NULL, v, "neuron", NULL, 0};
        rc = init_var(net, pr, &vi, &pr->pre[k], nsrc, err);
    }
    for (uint32_t k = 0; k < d->npost && !rc && t == 0; k++, v++) {
        VarInit vi = {&m->vars[d->first_var + v], d->stream + 3, NULL, NULL, v, "neuron", NULL,
                      dst->lo};
        rc = init_var(net, pr, &vi, &pr->post[k], dst->n, err);
    }
    return rc;
}

static int build_plastic(EngramNetwork *net, EngramProjRt *pr, uint32_t t, const uint64_t *gid,
                         EngramError *err)
{
    const EngramProjDesc *d = pr->desc;
    const EngramModel *m = net->model;
    const double *pv = net->params;
    pr->handlers_on = d->plastic_param == ENGRAM_NONE || pv[d->plastic_param] != 0;
    if (d->w_lo_param != ENGRAM_NONE && d->w_hi_param != ENGRAM_NONE &&
        !(pv[d->w_lo_param] <= pv[d->w_hi_param]))
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "projection %s: the weight bounds %s = %g and %s = %g are not "
                           "ordered low <= high", pr->name, param_name(m, d->w_lo_param),
                           pv[d->w_lo_param], param_name(m, d->w_hi_param), pv[d->w_hi_param]);
    pr->every_steps = 1;
    if (d->every_kernel != ENGRAM_NONE) {
        int rc = engram_interval_steps(m, d->every_param, pv, net->dt, pr->name,
                                       &pr->every_steps, err);
        if (rc)
            return rc;
        pr->every = (EngramEveryKernel)m->kernels[d->every_kernel];
    }
    if (d->on_post_kernel != ENGRAM_NONE)
        pr->on_post = (EngramDeliverKernel)m->kernels[d->on_post_kernel];
    if (d->pre_arrival)
        pr->arrive = (EngramDeliverKernel)m->kernels[d->arrive_kernel];
    return build_plastic_vars(net, pr, t, gid, err);
}

/* What the kernels of a plastic projection see (once modulators exist). */
static void wire_plastic(EngramNetwork *net, EngramProjRt *pr)
{
    pr->ps = (EngramPlasticState){
        .syn = pr->syn,
        .syn_last = pr->syn_last,
        .pre = pr->pre,
        .pre_last = pr->pre_last,
        .post = pr->post,
        .post_last = pr->post_last,
        .pre_state = net->nranks == 1 ? net->pops[pr->desc->src_pop].state
                                      : net->pops[pr->desc->src_pop].mirror,
        .post_state = net->pops[pr->desc->dst_pop].state,
        .post_row = pr->csr.tgt_row,
        .post_syn = pr->csr.tgt_order,
        .post_src = pr->post_src,
        .modulators = net->mods.level,
        .plastic = pr->handlers_on ? 1 : 0,
        .decay = pr->decay,
    };
}

/* ---- rings ---------------------------------------------------------------------------------- */

/* Each port's ring holds the longest delay into it + 1 slots (at least 2), so
 * an event for step + d never lands in the slot being read at step. */
static int build_rings(EngramNetwork *net, EngramError *err)
{
    for (uint32_t i = 0; i < net->npops; i++) {
        EngramPopRt *p = &net->pops[i];
        for (uint32_t q = 0; q < p->desc->nports; q++) {
            int64_t slots = 2;
            for (uint32_t t = 0; t < net->nthreads; t++)
                for (uint32_t j = 0; j < net->nprojs; j++) {
                    const EngramProjRt *pr = &net->tprojs[t][j];
                    if (pr->desc->dst_pop == i && pr->desc->port == q && pr->max_delay + 1 > slots)
                        slots = pr->max_delay + 1;
                }
            EngramRing *r = &p->rings[q];
            r->slots = slots;
            r->n = p->n;
            if (!(r->data = alloc_array((size_t)slots * p->n, (size_t)net->precision)))
                return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the inputs of %s",
                                   p->name);
        }
    }
    return 0;
}

/* ---- build and free ---------------------------------------------------------------------------- */

static int build_drives(EngramNetwork *net, EngramError *err)
{
    const EngramModel *m = net->model;
    for (uint32_t k = 0; k < net->ndrives; k++) {
        EngramDriveRt *dr = &net->drives[k];
        dr->desc = &m->drives[k];
        dr->name = engram_model_str(m, dr->desc->name);
        double rate = net->params[dr->desc->rate_param];
        double count = net->params[dr->desc->count_param];
        if (!(rate >= 0) || !(count >= 0) || !isfinite(rate * count))
            return engram_fail(err, ENGRAM_EXIT_MODEL,
                               "drive %s: rate (%g) and count (%g) must be >= 0", dr->name,
                               rate * 1000.0, count);
        dr->lambda = count * rate * net->dt;
        dr->weight = net->params[dr->desc->weight_param];
        if (dr->lambda > 0 && dr->lambda < 10 &&
            engram_poisson_inv_init(&dr->inv, dr->lambda) != ENGRAM_CORE_OK)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for drive %s", dr->name);
    }
    return 0;
}

/* MPI with a plastic projection from neurons: the kernels read pre.X of any
 * source, so those populations keep a full copy of their state (sim.c
 * gathers it each step). */
static int build_mirrors(EngramNetwork *net, EngramError *err)
{
    if (net->nranks == 1)
        return 0;
    for (uint32_t j = 0; j < net->nprojs; j++) {
        const EngramProjDesc *d = net->projs[j].desc;
        EngramPopRt *p = &net->pops[d->src_pop];
        if (!d->plastic || p->desc->kind != ENGRAM_POP_NEURON || p->mirror)
            continue;
        if (!(p->mirror = calloc(p->desc->nstates + 1, sizeof *p->mirror)))
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
        for (uint32_t s = 0; s < p->desc->nstates; s++)
            if (!(p->mirror[s] = alloc_array(p->size, (size_t)net->precision)))
                return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    }
    return 0;
}

int engram_network_build(EngramNetwork *net, const EngramModel *m, const double *params,
                         EngramError *err)
{
    EngramLayout one = {0, 1, 1};
    return engram_network_build_layout(net, m, params, &one, err);
}

int engram_network_build_layout(EngramNetwork *net, const EngramModel *m, const double *params,
                                const EngramLayout *lay, EngramError *err)
{
    memset(net, 0, sizeof *net);
    net->model = m;
    net->rank = lay->rank;
    net->nranks = lay->nranks ? lay->nranks : 1;
    net->nthreads = lay->nthreads ? lay->nthreads : 1;
    net->params = params;
    net->precision = (int)m->hdr->precision;
    net->dt = params[m->hdr->dt_param];
    net->duration = params[m->hdr->duration_param];
    net->nsteps = (int64_t)floor(net->duration / net->dt + 0.5);
    net->seed = seed_of(m, params);
    net->npops = m->hdr->npops;
    net->nprojs = m->hdr->nprojs;
    net->ndrives = m->hdr->ndrives;
    EngramEstimate est;
    int rc = engram_estimate(m, params, &est, err);
    if (rc)
        return rc;
    net->pops = calloc(net->npops + 1, sizeof *net->pops);
    net->tprojs = calloc(net->nthreads, sizeof *net->tprojs);
    net->drives = calloc(net->ndrives + 1, sizeof *net->drives);
    if (!net->pops || !net->tprojs || !net->drives)
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t t = 0; t < net->nthreads && !rc; t++)
        if (!(net->tprojs[t] = calloc(net->nprojs + 1, sizeof **net->tprojs)))
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    if (!rc)
        net->projs = net->tprojs[0];
    for (uint32_t i = 0; i < net->npops && !rc; i++) {
        rc = build_pop(net, i, est.pop_size[i], err);
        net->neurons += est.pop_size[i];
    }
    for (uint32_t j = 0; j < net->nprojs && !rc; j++)
        rc = build_proj(net, j, &est, err);
    if (!rc)
        rc = build_rings(net, err);
    if (!rc)
        rc = build_drives(net, err);
    if (!rc)
        rc = build_mirrors(net, err);
    if (!rc)
        rc = engram_modulators_init(net, err);
    for (uint32_t t = 0; t < net->nthreads && !rc; t++)
        for (uint32_t j = 0; j < net->nprojs; j++)
            if (net->tprojs[t][j].plastic)
                wire_plastic(net, &net->tprojs[t][j]);
    if (!rc)
        rc = engram_weight_recs_init(net, err);
    engram_estimate_free(&est);
    if (rc)
        engram_network_free(net);
    return rc;
}

static void free_vars(void **arrs, uint32_t n)
{
    for (uint32_t k = 0; arrs && k < n; k++)
        free(arrs[k]);
    free(arrs);
}

static void free_proj(EngramProjRt *pr)
{
    engram_csr_free(&pr->csr);
    free(pr->weight);
    free(pr->delay);
    if (pr->desc) {
        free_vars(pr->syn, pr->desc->nsyn_vars);
        free_vars(pr->pre, pr->desc->npre);
        if (!pr->post_shared)
            free_vars(pr->post, pr->desc->npost);
    }
    free(pr->syn_last);
    free(pr->decay);
    free(pr->pre_last);
    if (!pr->post_shared)
        free(pr->post_last);
    free(pr->post_src);
    engram_arrival_free(pr);
}

void engram_network_free(EngramNetwork *net)
{
    engram_protocol_free(net);   /* it refers to the populations */
    uint32_t P = net->nranks * net->nthreads;
    for (uint32_t i = 0; net->pops && i < net->npops; i++) {
        EngramPopRt *p = &net->pops[i];
        for (uint32_t s = 0; p->state && s < p->desc->nstates; s++)
            free(p->state[s]);
        for (uint32_t q = 0; p->rings && q < p->desc->nports; q++)
            free(p->rings[q].data);
        free_vars(p->mirror, p->desc ? p->desc->nstates : 0);
        free(p->state);
        free(p->input);
        free(p->rings);
        free(p->refr);
        free(p->spiked);
        engram_source_free(p, net->nthreads);
        for (uint32_t t = 0; p->parts && P > 1 && t < net->nthreads; t++)
            free(p->parts[t].spikes);
        free(p->parts);
        free(p->spikes);
        free(p->prop);
        free(p->rec_step);
        free(p->rec_id);
    }
    for (uint32_t t = 0; net->tprojs && t < net->nthreads; t++) {
        for (uint32_t j = 0; net->tprojs[t] && j < net->nprojs; j++)
            free_proj(&net->tprojs[t][j]);
        free(net->tprojs[t]);
    }
    free(net->tprojs);
    engram_modulators_free(&net->mods);
    engram_weight_recs_free(net);
    free(net->pops);
    for (uint32_t k = 0; net->drives && k < net->ndrives; k++)
        engram_poisson_inv_free(&net->drives[k].inv);
    free(net->drives);
    memset(net, 0, sizeof *net);
}
