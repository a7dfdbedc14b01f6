/*
 * arrival.c - `on pre arrival` (docs/language.md section 12): the on-pre
 * handler of synapse k runs at the step its spike arrives, step_sent +
 * delay[k], as Brian2's on_pre pathway and the code of Izhikevich (2007)
 * do, instead of at the step the spike is sent.
 *
 * The deliver kernel of such a projection only delivers (at sending, into
 * the ring slot of the arrival, with the weight of that moment).  This file
 * keeps what the handlers need later:
 *
 *   - the history: the source population's spikes of the last slots - 1
 *     steps, one list per step in slot step % slots, tagged with the step
 *     it holds (a slot whose tag is older holds nothing of interest).  It is
 *     the same on every partition and rank, so partition 0 owns the rank's
 *     copy and writes slot `step` in its projection phase, while the other
 *     partitions read only the slots of earlier steps (delays are >= 1): no
 *     two threads touch one slot in one step;
 *   - per partition, each source row's synapses ordered by delay (perm), so
 *     that the synapses of source s with delay L are one run of perm, found
 *     by binary search.
 *
 * At step n a partition visits the delays L from longest to shortest and the
 * sources that spiked at n - L, and hands the arrive kernel the synapses of
 * delay L of each, ENGRAM_ARRIVAL_CHUNK at a time.  The order does not
 * matter to the result: a synapse receives at most one spike per step, and
 * an on-pre handler changes only its own synapse.  Memory: slots x nsrc
 * source ids per rank, 4 bytes per synapse.
 *
 * Order: building, the step, checkpoint support.
 */
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

/* ---- building ------------------------------------------------------------------------------ */

static int arrival_oom(const EngramProjRt *pr, EngramError *err)
{
    return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the arrival queue of %s",
                       pr->name);
}

static uint32_t delay_of(const EngramProjRt *pr, uint64_t k)
{
    return pr->delay ? pr->delay[k] : (uint32_t)pr->delay_steps;
}

/* perm: a stable counting sort of the synapses by delay, then dealt back to
 * their rows in that order. */
static int build_perm(EngramArrival *ar, const EngramProjRt *pr)
{
    const EngramCsr *c = &pr->csr;
    size_t nd = (size_t)(ar->dmax - ar->dmin) + 1;
    uint64_t *at = calloc(nd + 1, sizeof *at), *order = malloc((c->nsyn + 1) * sizeof *order);
    uint64_t *fill = malloc(((size_t)c->nsrc + 1) * sizeof *fill);
    uint32_t *src = malloc((c->nsyn + 1) * sizeof *src);
    ar->perm = malloc((c->nsyn + 1) * sizeof *ar->perm);
    int rc = at && order && fill && src && ar->perm ? 0 : -1;
    for (uint64_t k = 0; !rc && k < c->nsyn; k++)
        at[delay_of(pr, k) - (uint32_t)ar->dmin + 1]++;
    for (size_t d = 0; !rc && d < nd; d++)
        at[d + 1] += at[d];
    for (uint64_t k = 0; !rc && k < c->nsyn; k++)
        order[at[delay_of(pr, k) - (uint32_t)ar->dmin]++] = k;
    for (uint32_t s = 0; !rc && s < c->nsrc; s++) {
        fill[s] = c->row[s];
        for (uint64_t k = c->row[s]; k < c->row[s + 1]; k++)
            src[k] = s;
    }
    for (uint64_t i = 0; !rc && i < c->nsyn; i++) {
        uint64_t k = order[i];
        ar->perm[fill[src[k]]++] = (uint32_t)(k - c->row[src[k]]);
    }
    free(at);
    free(order);
    free(fill);
    free(src);
    return rc;
}

/* One partition: its delays and, when they are per synapse, perm. */
static int build_part(EngramArrival *ar, const EngramProjRt *pr)
{
    ar->dmin = 1;
    ar->dmax = 0;
    if (!pr->delay) {
        if (pr->csr.nsyn > 0)
            ar->dmin = ar->dmax = pr->delay_steps;
        return 0;
    }
    if (pr->csr.nsyn == 0)
        return 0;
    ar->dmin = INT32_MAX;
    for (uint64_t k = 0; k < pr->csr.nsyn; k++) {
        int32_t d = (int32_t)pr->delay[k];
        ar->dmin = d < ar->dmin ? d : ar->dmin;
        ar->dmax = d > ar->dmax ? d : ar->dmax;
    }
    return build_perm(ar, pr);
}

static EngramArrivalHist *hist_new(int64_t slots, uint32_t nsrc)
{
    EngramArrivalHist *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->slots = slots;
    h->nsrc = nsrc;
    h->src = malloc(((size_t)slots * nsrc + 1) * sizeof *h->src);
    h->count = calloc((size_t)slots, sizeof *h->count);
    h->step = malloc((size_t)slots * sizeof *h->step);
    if (!h->src || !h->count || !h->step) {
        free(h->src);
        free(h->count);
        free(h->step);
        free(h);
        return NULL;
    }
    engram_arrival_clear(h);
    return h;
}

int engram_arrival_build(EngramNetwork *net, uint32_t j, EngramError *err)
{
    int32_t longest = 1;
    int rc = 0;
    for (uint32_t t = 0; t < net->nthreads && !rc; t++) {
        EngramProjRt *pr = &net->tprojs[t][j];
        if (!(pr->arrival = calloc(1, sizeof *pr->arrival)) || build_part(pr->arrival, pr))
            rc = arrival_oom(pr, err);
        else if (pr->arrival->dmax > longest)
            longest = pr->arrival->dmax;
    }
    longest = -engram_comm_allreduce_int_min(-longest);   /* every rank keeps the same history */
    EngramProjRt *p0 = &net->tprojs[0][j];
    EngramArrivalHist *h = rc ? NULL : hist_new((int64_t)longest + 1, p0->csr.nsrc);
    if (!rc && !h)
        rc = arrival_oom(p0, err);
    for (uint32_t t = 0; t < net->nthreads && !rc; t++) {
        net->tprojs[t][j].arrival->hist = h;
        net->tprojs[t][j].arrival->owner = t == 0;
    }
    return rc;
}

void engram_arrival_free(EngramProjRt *pr)
{
    EngramArrival *ar = pr->arrival;
    if (!ar)
        return;
    if (ar->owner && ar->hist) {
        free(ar->hist->src);
        free(ar->hist->count);
        free(ar->hist->step);
        free(ar->hist);
    }
    free(ar->perm);
    free(ar);
    pr->arrival = NULL;
}

/* ---- the step ------------------------------------------------------------------------------- */

static void record(EngramArrivalHist *h, int64_t step, const uint32_t *spikes, int64_t n)
{
    size_t slot = (size_t)(step % h->slots);
    memcpy(h->src + slot * h->nsrc, spikes, (size_t)n * sizeof *spikes);
    h->count[slot] = (uint32_t)n;
    h->step[slot] = step;
}

/* First i in [lo, hi) whose delay, of synapse base + perm[i], is >= d (hi if none). */
static uint64_t first_delay(const EngramProjRt *pr, const uint32_t *perm, uint64_t base,
                            uint64_t lo, uint64_t hi, uint32_t d)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (pr->delay[base + perm[mid]] < d)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct Batch {
    const EngramProjRt *pr;
    EngramArrival *ar;
    EngramDeliverArgs b;
    int64_t n;
} Batch;

static void flush(Batch *x)
{
    if (x->n == 0)
        return;
    x->b.nspikes = x->n;
    x->pr->arrive(&x->b);
    x->n = 0;
}

static void push(Batch *x, uint32_t s, uint64_t k)
{
    x->ar->ev_src[x->n] = s;
    x->ar->ev_syn[x->n] = k;
    if (++x->n == ENGRAM_ARRIVAL_CHUNK)
        flush(x);
}

/* The synapses of source s with delay d. */
static void arrivals_of(Batch *x, uint32_t s, uint32_t d)
{
    const EngramProjRt *pr = x->pr;
    const uint64_t *row = pr->csr.row;
    if (!x->ar->perm) {
        for (uint64_t k = row[s]; k < row[s + 1]; k++)
            push(x, s, k);
        return;
    }
    uint64_t base = row[s], len = row[s + 1] - base;
    const uint32_t *perm = x->ar->perm + base;   /* the row's */
    for (uint64_t i = first_delay(pr, perm, base, 0, len, d); i < len; i++) {
        uint64_t k = base + perm[i];
        if (pr->delay[k] != d)
            break;
        push(x, s, k);
    }
}

void engram_arrival_step(const EngramProjRt *pr, const EngramDeliverArgs *a, bool handlers)
{
    EngramArrival *ar = pr->arrival;
    EngramArrivalHist *h = ar->hist;
    if (ar->owner && a->nspikes > 0)
        record(h, a->step, a->spikes, a->nspikes);
    if (!handlers || !pr->arrive)
        return;
    Batch x = {.pr = pr, .ar = ar, .b = *a};
    x.b.spikes = ar->ev_src;
    x.b.synapses = ar->ev_syn;
    for (int32_t d = ar->dmax; d >= ar->dmin; d--) {
        int64_t sent = a->step - d;
        if (sent < 0)
            continue;
        size_t slot = (size_t)(sent % h->slots);
        if (h->step[slot] != sent)
            continue;
        const uint32_t *src = h->src + slot * h->nsrc;
        for (uint32_t i = 0; i < h->count[slot]; i++)
            arrivals_of(&x, src[i], (uint32_t)d);
    }
    flush(&x);
}

/* ---- checkpoint support ---------------------------------------------------------------------- */

size_t engram_arrival_list(const EngramArrivalHist *h, int64_t now, int64_t *steps,
                           uint32_t *srcs)
{
    size_t n = 0;
    for (int64_t sent = now - h->slots + 1; sent < now; sent++) {
        size_t slot = (size_t)(((sent % h->slots) + h->slots) % h->slots);
        if (sent < 0 || h->step[slot] != sent)
            continue;
        for (uint32_t i = 0; i < h->count[slot]; i++, n++) {
            if (steps)
                steps[n] = sent;
            if (srcs)
                srcs[n] = h->src[slot * h->nsrc + i];
        }
    }
    return n;
}

void engram_arrival_clear(EngramArrivalHist *h)
{
    for (int64_t s = 0; s < h->slots; s++) {
        h->count[s] = 0;
        h->step[s] = -1;
    }
}

void engram_arrival_put(EngramArrivalHist *h, int64_t now, int64_t step, uint32_t src)
{
    if (step < 0 || step >= now || now - step >= h->slots || src >= h->nsrc)
        return;
    size_t slot = (size_t)(step % h->slots);
    if (h->step[slot] != step) {
        h->step[slot] = step;
        h->count[slot] = 0;
    }
    if (h->count[slot] < h->nsrc)
        h->src[slot * h->nsrc + h->count[slot]++] = src;
}
