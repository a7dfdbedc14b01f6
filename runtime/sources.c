/*
 * sources.c - the built-in sources and drives.
 *
 * Poisson sources draw exponential inter-spike intervals per neuron in
 * continuous time, the k-th interval of neuron i from (seed, pop stream, i,
 * counter k); a spike at time t is emitted in step floor(t / dt) (at most one
 * per neuron and step, so the rate seen is (1 - exp(-rate dt)) / dt, as for a
 * Bernoulli process with that probability).  The next spike of every neuron
 * sits in a binary heap ordered by (step, neuron): a step pops its spikes in
 * ascending neuron order, so the work is O(spikes log n), not O(n) per step.
 *
 * Spike-times sources convert times to steps once (floor, with a tolerance of
 * 1e-6 step for decimal round-off: 0.3 ms at dt 0.1 ms is step 3) and sort by
 * (step, neuron); two spikes of one neuron in one step are an error.
 *
 * Drives add weight * k to the port's current ring slot of every target
 * neuron, k ~ Poisson(count * rate * dt) from (seed, drive stream, neuron,
 * step << 32), so each (neuron, step) owns its own block range.  For
 * lambda < 10 (the inversion, one uniform per draw) the uniforms of a batch
 * of neurons are computed together and looked up in the drive's table of
 * the inversion (rng.c): the same counts as one draw at a time, at a fraction
 * of the cost.
 *
 * Partitions (threads, ranks) each keep the heap or spike list of their own
 * neurons; keys use global neuron ids, so the spikes do not depend on them.
 *
 * A protocol's stimuli on a source add spikes to its own (stimuli.c), after
 * they are emitted: the source's heap and list are not affected.
 *
 * Order: the Poisson heap, Poisson sources, spike-times sources, drives.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"
#include "rt_protocol.h"

/* ---- the Poisson heap ------------------------------------------------------- */

static bool entry_less(const EngramPoissonEntry *a, const EngramPoissonEntry *b)
{
    return a->step < b->step || (a->step == b->step && a->neuron < b->neuron);
}

static void heap_sift_down(EngramPoissonEntry *h, size_t n, size_t i)
{
    EngramPoissonEntry x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && entry_less(&h[c + 1], &h[c]))
            c++;
        if (!entry_less(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Steps are floor(t / dt); "never" (rate 0, or far beyond any run) is INT64_MAX. */
static int64_t time_to_step(double t, double dt)
{
    double s = floor(t / dt);
    return s < 9.0e18 ? (int64_t)s : INT64_MAX;
}

/* Draws the neuron's intervals until its next spike falls after `step`. */
static void poisson_advance(const EngramNetwork *net, const EngramPopRt *p, EngramPoissonEntry *e,
                            int64_t step)
{
    while (e->step <= step) {
        EngramRng r;
        engram_rng_init(&r, net->seed, p->desc->stream, p->lo + e->neuron, e->counter++);
        e->t += engram_rng_exponential(&r, p->rate);
        e->step = time_to_step(e->t, net->dt);
    }
}

/* ---- Poisson sources -------------------------------------------------------------- */

static int poisson_init(EngramNetwork *net, EngramPopRt *p, EngramError *err)
{
    p->rate = net->params[p->desc->rate_param];
    if (!(p->rate >= 0) || !isfinite(p->rate))
        return engram_fail(err, ENGRAM_EXIT_MODEL, "%s: rate %g Hz must be >= 0", p->name,
                           p->rate * 1000.0);
    for (uint32_t t = 0; t < net->nthreads; t++) {
        EngramPopPart *pt = &p->parts[t];
        pt->heap = malloc(((size_t)(pt->hi - pt->lo) + 1) * sizeof *pt->heap);
        if (!pt->heap)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
        pt->heap_len = 0;
        if (p->rate == 0)
            continue;
        for (uint32_t i = pt->lo; i < pt->hi; i++) {
            EngramPoissonEntry e = {.step = -1, .neuron = i, .t = 0.0, .counter = 0};
            poisson_advance(net, p, &e, -1);
            pt->heap[pt->heap_len++] = e;
        }
        for (size_t i = pt->heap_len / 2; i-- > 0;)
            heap_sift_down(pt->heap, pt->heap_len, i);
    }
    return 0;
}

static void poisson_emit(const EngramNetwork *net, EngramPopRt *p, EngramPopPart *pt, int64_t step)
{
    uint32_t n = 0;
    while (pt->heap_len && pt->heap[0].step == step) {
        pt->spikes[n++] = pt->heap[0].neuron;
        poisson_advance(net, p, &pt->heap[0], step);
        heap_sift_down(pt->heap, pt->heap_len, 0);
    }
    pt->nspikes = n;
}

/* ---- spike-times sources ----------------------------------------------------------------- */

typedef struct TimedSpike {
    int64_t step;
    uint32_t neuron;
} TimedSpike;

static int timed_cmp(const void *a, const void *b)
{
    const TimedSpike *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

static int times_init(EngramNetwork *net, EngramPopRt *p, EngramError *err)
{
    const EngramModel *m = net->model;
    const EngramParamDesc *tp = &m->params[p->desc->times_param];
    const EngramParamDesc *ip =
        p->desc->indices_param == ENGRAM_NONE ? NULL : &m->params[p->desc->indices_param];
    size_t n = tp->list_count;
    if (ip && ip->list_count != n)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "%s: %zu spike times but %u indices", p->name,
                           n, ip->list_count);
    TimedSpike *ts = malloc((n + 1) * sizeof *ts);
    if (!ts)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
    size_t k = 0;
    int rc = 0;
    for (size_t j = 0; j < n && !rc; j++) {
        double t = m->list[tp->list_first + j];
        double idx = ip ? m->list[ip->list_first + j] : 0.0;
        if (!(t >= 0) || !isfinite(t))
            rc = engram_fail(err, ENGRAM_EXIT_MODEL, "%s: spike time %g ms is not a time >= 0",
                             p->name, t);
        else if (!(idx >= 0) || idx != floor(idx) || idx >= p->size)
            rc = engram_fail(err, ENGRAM_EXIT_MODEL,
                             "%s: spike index %g is not a neuron of the population (size %u)",
                             p->name, idx, p->size);
        else if (t / net->dt + 1e-6 < (double)net->nsteps)   /* later spikes never happen */
            ts[k++] = (TimedSpike){(int64_t)floor(t / net->dt + 1e-6), (uint32_t)idx};
    }
    if (!rc && k)
        qsort(ts, k, sizeof *ts, timed_cmp);
    for (size_t j = 1; j < k && !rc; j++)
        if (ts[j].step == ts[j - 1].step && ts[j].neuron == ts[j - 1].neuron)
            rc = engram_fail(err, ENGRAM_EXIT_MODEL,
                             "%s: neuron %u has two spikes in the step at t = %g ms (dt %g ms)",
                             p->name, ts[j].neuron, (double)ts[j].step * net->dt, net->dt);
    /* each partition keeps the spikes of its own neurons, rank-local */
    for (uint32_t t = 0; t < net->nthreads && !rc; t++) {
        EngramPopPart *pt = &p->parts[t];
        uint32_t glo = p->lo + pt->lo, ghi = p->lo + pt->hi;
        pt->st_step = malloc((k + 1) * sizeof *pt->st_step);
        pt->st_neuron = malloc((k + 1) * sizeof *pt->st_neuron);
        if (!pt->st_step || !pt->st_neuron) {
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s", p->name);
            break;
        }
        size_t len = 0;
        for (size_t j = 0; j < k; j++)
            if (ts[j].neuron >= glo && ts[j].neuron < ghi) {
                pt->st_step[len] = ts[j].step;
                pt->st_neuron[len++] = ts[j].neuron - p->lo;
            }
        pt->st_len = len;
        pt->st_next = 0;
    }
    free(ts);
    return rc;
}

static void times_emit(EngramPopPart *pt, int64_t step)
{
    uint32_t n = 0;
    while (pt->st_next < pt->st_len && pt->st_step[pt->st_next] == step)
        pt->spikes[n++] = pt->st_neuron[pt->st_next++];
    pt->nspikes = n;
}

int engram_source_init(EngramNetwork *net, EngramPopRt *p, EngramError *err)
{
    if (p->desc->kind == ENGRAM_POP_POISSON)
        return poisson_init(net, p, err);
    return times_init(net, p, err);
}

void engram_source_free(EngramPopRt *p, uint32_t nparts)
{
    for (uint32_t t = 0; p->parts && t < nparts; t++) {
        EngramPopPart *pt = &p->parts[t];
        free(pt->heap);
        free(pt->st_step);
        free(pt->st_neuron);
        pt->heap = NULL;
        pt->st_step = NULL;
        pt->st_neuron = NULL;
    }
}

void engram_source_emit(const EngramNetwork *net, EngramPopRt *p, uint32_t t, int64_t step)
{
    if (p->desc->kind == ENGRAM_POP_POISSON)
        poisson_emit(net, p, &p->parts[t], step);
    else
        times_emit(&p->parts[t], step);
    engram_stimuli_merge(net, p, t, step);   /* a protocol's cue on the source */
}

/* ---- drives ---------------------------------------------------------------------------------- */

/* Neurons per batch of draws: the uniforms and counts stay in L1. */
#define DRIVE_BATCH 256

/* lambda >= 10: one draw at a time (the rejection method takes several uniforms). */
static void drive_scalar(const EngramNetwork *net, const EngramDriveRt *dr, const EngramPopRt *p,
                         uint32_t t, int64_t step, size_t base)
{
    const EngramRing *ring = &p->rings[dr->desc->port];
    for (uint32_t i = p->parts[t].lo; i < p->parts[t].hi; i++) {
        EngramRng r;
        engram_rng_init(&r, net->seed, dr->desc->stream, p->lo + i, (uint64_t)step << 32);
        uint64_t c = engram_rng_poisson(&r, dr->lambda);
        if (c == 0)
            continue;
        double add = dr->weight * (double)c;
        if (net->precision == 4)
            ((float *)ring->data)[base + i] += (float)add;
        else
            ((double *)ring->data)[base + i] += add;
    }
}

/* The counts of DRIVE_BATCH neurons at a time from the inversion table:
 * the same counts as engram_rng_poisson_small, many Philox blocks at once. */
static void drive_batched(const EngramNetwork *net, const EngramDriveRt *dr, const EngramPopRt *p,
                          uint32_t t, int64_t step, size_t base)
{
    const EngramRing *ring = &p->rings[dr->desc->port];
    double k[DRIVE_BATCH], w = dr->weight;
    for (uint32_t i0 = p->parts[t].lo; i0 < p->parts[t].hi; i0 += DRIVE_BATCH) {
        uint32_t n = p->parts[t].hi - i0 < DRIVE_BATCH ? p->parts[t].hi - i0 : DRIVE_BATCH;
        engram_poisson_inv_draw_n(&dr->inv, net->seed, dr->desc->stream, p->lo + i0,
                                  (uint64_t)step << 32, n, k);
        /* Adding w * 0 = +-0 leaves a slot as it is: slots start at +0 and
         * sums of nonzero terms are never -0, so no test for k = 0. */
        if (net->precision == 4) {
            float *r = (float *)ring->data + base + i0;
            for (uint32_t i = 0; i < n; i++)
                r[i] += (float)(w * k[i]);
        } else {
            double *r = (double *)ring->data + base + i0;
            for (uint32_t i = 0; i < n; i++)
                r[i] += w * k[i];
        }
    }
}

void engram_drives_apply(const EngramNetwork *net, uint32_t t, int64_t step)
{
    for (uint32_t k = 0; k < net->ndrives; k++) {
        const EngramDriveRt *dr = &net->drives[k];
        if (dr->lambda <= 0 || dr->weight == 0)
            continue;
        const EngramPopRt *p = &net->pops[dr->desc->dst_pop];
        const EngramRing *ring = &p->rings[dr->desc->port];
        size_t base = (size_t)(step % ring->slots) * ring->n;
        if (dr->inv.cdf)
            drive_batched(net, dr, p, t, step, base);
        else
            drive_scalar(net, dr, p, t, step, base);
    }
}
