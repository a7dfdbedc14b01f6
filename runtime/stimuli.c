/*
 * stimuli.c - the input a protocol gives: Poisson stimuli (cue, teach,
 * background) and currents (rt_protocol.h, docs/language.md section 15).
 *
 * A stimulus is a rate on a range of neurons of one population for a range
 * of steps.  On a neuron population each neuron draws k ~ Poisson(rate dt)
 * events per step and its stimulus port (the population's `stimulus`
 * declaration) receives k x weight in the current ring slot, as a drive
 * does.  On a Poisson or spike-times source the neuron spikes in the step
 * with probability 1 - exp(-rate dt), united with the source's own spikes
 * (at most one spike per neuron and step).  Overlapping stimuli add (neuron
 * populations) or unite (sources).  The draws of neuron i in step s come
 * from (seed, stream, i, s << 32 | element << 20) where stream is the
 * protocol's stream plus the statement's offset and element the place in a
 * taught sequence: they do not depend on threads or ranks.
 *
 * The list of stimuli changes only in the interpreter (thread 0, while the
 * others wait); in phase A every thread reads it for its own neurons.  With
 * no active stimulus a step costs one comparison.
 *
 * Currents set the state variable I_ext of the target neurons (this rank's)
 * to the amplitude, and back to 0 when they end.
 *
 * Order: setup, the list, neuron populations, sources, currents.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_protocol.h"

/* ---- setup ------------------------------------------------------------------ */

/* Whether some statement of the protocol stimulates population pop. */
static bool stimulated(const EngramProtocol *pr, uint32_t pop)
{
    const EngramModel *m = pr->m;
    for (uint32_t i = pr->first; i < pr->end; i++) {
        const EngramStmtDesc *x = &m->stmts[i];
        if ((x->kind == ENGRAM_STMT_CUE || x->kind == ENGRAM_STMT_BACKGROUND) &&
            x->target.pop == pop)
            return true;
        if (x->kind == ENGRAM_STMT_TEACH && m->ens_groups[m->sequences[x->ref].group].pop == pop)
            return true;
    }
    return false;
}

/* Merge scratch for every partition of every stimulated source. */
int engram_stimuli_init(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    size_t n = (size_t)net->npops * net->nthreads + 1;
    pr->merge_a = calloc(n, sizeof *pr->merge_a);
    pr->merge_b = calloc(n, sizeof *pr->merge_b);
    if (!pr->merge_a || !pr->merge_b)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the stimuli");
    for (uint32_t i = 0; i < net->npops; i++) {
        const EngramPopRt *p = &net->pops[i];
        if (p->desc->kind == ENGRAM_POP_NEURON || !stimulated(pr, i))
            continue;
        for (uint32_t t = 0; t < net->nthreads; t++) {
            size_t k = (size_t)i * net->nthreads + t, len = p->parts[t].hi - p->parts[t].lo + 1;
            pr->merge_a[k] = malloc(len * sizeof *pr->merge_a[k]);
            pr->merge_b[k] = malloc(len * sizeof *pr->merge_b[k]);
            if (!pr->merge_a[k] || !pr->merge_b[k])
                return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for stimuli of %s",
                                   p->name);
        }
    }
    return 0;
}

void engram_stimuli_free(EngramNetwork *net)
{
    EngramProtocol *pr = net->proto;
    size_t n = (size_t)net->npops * net->nthreads;
    for (size_t k = 0; k < n; k++) {
        if (pr->merge_a)
            free(pr->merge_a[k]);
        if (pr->merge_b)
            free(pr->merge_b[k]);
    }
    free(pr->merge_a);
    free(pr->merge_b);
    pr->merge_a = pr->merge_b = NULL;
}

/* ---- the list ------------------------------------------------------------------- */

int engram_stim_add(EngramNetwork *net, EngramStim s, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    s.id = pr->core.next_stim++;
    if (s.rate <= 0 || s.lo >= s.hi || s.start >= s.until)
        return 0;   /* no input: nothing to keep */
    if (engram_proto_grow((void **)&pr->stim, &pr->stim_cap, pr->core.nstim + 1, sizeof s))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the stimuli");
    s.lambda = s.rate * net->dt;
    s.exp_neg = exp(-s.lambda);
    s.p_spike = -expm1(-s.lambda);
    pr->stim[pr->core.nstim++] = s;
    return 0;
}

void engram_stim_stop(EngramProtocol *pr, uint64_t id, int64_t at)
{
    for (uint64_t k = 0; k < pr->core.nstim; k++)
        if (pr->stim[k].id == id && pr->stim[k].until > at)
            pr->stim[k].until = at;
}

/* Drops the stimuli that ended before `now`, keeping the order of the rest. */
void engram_stim_expire(EngramProtocol *pr, int64_t now)
{
    uint64_t n = 0;
    for (uint64_t k = 0; k < pr->core.nstim; k++)
        if (pr->stim[k].until > now)
            pr->stim[n++] = pr->stim[k];
    pr->core.nstim = n;
}

static uint64_t stim_counter(int64_t step, uint32_t sub)
{
    return ((uint64_t)step << 32) | ((uint64_t)(sub & 0xfffu) << 20);
}

/* The part of [s->lo, s->hi) that partition t of p owns, rank-local. */
static bool own_range(const EngramPopRt *p, uint32_t t, const EngramStim *s, uint32_t *lo,
                      uint32_t *hi)
{
    uint32_t glo = p->lo + p->parts[t].lo, ghi = p->lo + p->parts[t].hi;
    uint32_t a = s->lo > glo ? s->lo : glo, b = s->hi < ghi ? s->hi : ghi;
    *lo = a - p->lo;
    *hi = b - p->lo;
    return a < b;
}

/* ---- neuron populations ------------------------------------------------------------ */

void engram_stimuli_apply(const EngramNetwork *net, uint32_t t, int64_t step)
{
    const EngramProtocol *pr = net->proto;
    if (!pr || pr->core.nstim == 0)
        return;
    for (uint64_t k = 0; k < pr->core.nstim; k++) {
        const EngramStim *s = &pr->stim[k];
        const EngramPopRt *p = &net->pops[s->pop];
        uint32_t lo, hi;
        if (step < s->start || step >= s->until || p->desc->kind != ENGRAM_POP_NEURON ||
            !own_range(p, t, s, &lo, &hi))
            continue;
        const EngramRing *ring = &p->rings[pr->stim_port[s->pop]];
        size_t base = (size_t)(step % ring->slots) * ring->n;
        double w = pr->stim_weight[s->pop];
        uint64_t ctr = stim_counter(step, s->sub);
        for (uint32_t i = lo; i < hi; i++) {
            EngramRng r;
            engram_rng_init(&r, net->seed, s->stream, p->lo + i, ctr);
            uint64_t c = engram_rng_poisson_small(&r, s->lambda, s->exp_neg);
            if (c == 0)
                continue;
            if (net->precision == 4)
                ((float *)ring->data)[base + i] += (float)(w * (double)c);
            else
                ((double *)ring->data)[base + i] += w * (double)c;
        }
    }
}

/* ---- sources ------------------------------------------------------------------------- */

/* out = a u b for ascending lists without duplicates; returns its length. */
static uint32_t unite(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb,
                      uint32_t *out)
{
    uint32_t i = 0, j = 0, n = 0;
    while (i < na && j < nb) {
        uint32_t x = a[i] <= b[j] ? a[i] : b[j];
        i += a[i] == x;
        j += b[j] == x;
        out[n++] = x;
    }
    while (i < na)
        out[n++] = a[i++];
    while (j < nb)
        out[n++] = b[j++];
    return n;
}

void engram_stimuli_merge(const EngramNetwork *net, EngramPopRt *p, uint32_t t, int64_t step)
{
    const EngramProtocol *pr = net->proto;
    if (!pr || pr->core.nstim == 0)
        return;
    uint32_t pi = (uint32_t)(p - net->pops);
    uint32_t *a = pr->merge_a[(size_t)pi * net->nthreads + t];
    uint32_t *b = pr->merge_b[(size_t)pi * net->nthreads + t];
    if (!a)
        return;   /* no statement stimulates this source */
    EngramPopPart *pt = &p->parts[t];
    for (uint64_t k = 0; k < pr->core.nstim; k++) {
        const EngramStim *s = &pr->stim[k];
        uint32_t lo, hi, n = 0;
        if (s->pop != pi || step < s->start || step >= s->until || !own_range(p, t, s, &lo, &hi))
            continue;
        uint64_t ctr = stim_counter(step, s->sub);
        for (uint32_t i = lo; i < hi; i++) {
            EngramRng r;
            engram_rng_init(&r, net->seed, s->stream, p->lo + i, ctr);
            b[n] = i;
            n += engram_rng_uniform(&r) < s->p_spike;
        }
        if (n == 0)
            continue;
        pt->nspikes = unite(pt->spikes, pt->nspikes, b, n, a);
        memcpy(pt->spikes, a, pt->nspikes * sizeof *a);
    }
}

/* ---- currents ---------------------------------------------------------------------------- */

/* I_ext = v on this rank's neurons of the current's range. */
static void set_current(EngramNetwork *net, const EngramCurrentRt *c, double v)
{
    EngramPopRt *p = &net->pops[c->pop];
    uint32_t lo = c->lo > p->lo ? c->lo : p->lo, hi = c->hi < p->lo + p->n ? c->hi : p->lo + p->n;
    for (uint32_t g = lo; g < hi; g++)
        engram_value_store(p->state[c->state], net->precision, g - p->lo, v);
}

int engram_current_start(EngramNetwork *net, EngramCurrentRt c, double amp, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    if (engram_proto_grow((void **)&pr->cur, &pr->cur_cap, pr->core.ncur + 1, sizeof c))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the currents");
    pr->cur[pr->core.ncur++] = c;
    set_current(net, &c, amp);
    return 0;
}

void engram_currents_expire(EngramNetwork *net, int64_t now, bool all)
{
    EngramProtocol *pr = net->proto;
    uint64_t n = 0;
    for (uint64_t k = 0; k < pr->core.ncur; k++) {
        if (all || pr->cur[k].until <= now)
            set_current(net, &pr->cur[k], 0.0);
        else
            pr->cur[n++] = pr->cur[k];
    }
    pr->core.ncur = n;
}
