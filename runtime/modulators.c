/*
 * modulators.c - global neuromodulators and the releases that feed them
 * (docs/language.md sections 12-13).
 *
 * A modulator is one double, shared by every plastic projection through
 * EngramPlasticState.modulators.  It starts at its baseline.  The modulator
 * phase of a step runs after every projection's handlers, in this order:
 *
 *   1. `when` releases look at this step's spikes and schedule events;
 *   2. every level decays exactly: m = baseline + (m - baseline) exp(-dt/tau);
 *   3. `per spike` releases add amount x (spikes of their population in
 *      this step), in release order;
 *   4. scheduled releases and protocol rewards due at this step are added,
 *      by (due step, order of scheduling).
 *
 * `release M A when DST[j] fires within W after SRC[i] delay D`: the most
 * recent spike of SRC[i] is remembered (a spike in the same step counts, so
 * t - t_s = 0 qualifies).  Every spike of DST[j] at most W after it schedules
 * one release, as in Izhikevich (2007): a pre spike is not used up, so two
 * post spikes within the window give two releases.  W is counted in steps,
 * floor(W / dt) (with 1e-6 step of slack for decimal round-off).  The delay
 * is drawn per event from (seed, release stream, 0, event number), rounded to
 * the nearest step (negative draws count as 0); no delay means this step.
 * Pending releases sit in a min-heap bounded by ENGRAM_MAX_PENDING_RELEASES,
 * so a runaway model fails with a message instead of eating memory.  A
 * protocol's `reward` (protocol.c) waits in the same heap, carrying its
 * modulator and amount, so rewards and releases due at one step are added
 * in the order they were scheduled.
 *
 * Order: the pending heap, setup, the step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

/* ---- the pending heap ------------------------------------------------------ */

static bool pending_less(const EngramPendingRelease *a, const EngramPendingRelease *b)
{
    return a->step < b->step || (a->step == b->step && a->seq < b->seq);
}

/* what, name: "release", NAME or "reward", "" (for messages) */
static int pending_push(EngramModState *ms, EngramPendingRelease x, const char *what,
                        const char *name, EngramError *err)
{
    if (ms->heap_len >= ENGRAM_MAX_PENDING_RELEASES)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "%s%s%s: more than %u releases are waiting for their delay; "
                           "shorten the delay or make the condition rarer",
                           what, name[0] ? " " : "", name, ENGRAM_MAX_PENDING_RELEASES);
    if (ms->heap_len == ms->heap_cap) {
        size_t cap = ms->heap_cap ? ms->heap_cap * 2 : 64;
        EngramPendingRelease *h = realloc(ms->heap, cap * sizeof *h);
        if (!h)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for %s%s%s", what,
                               name[0] ? " " : "", name);
        ms->heap = h;
        ms->heap_cap = cap;
    }
    size_t i = ms->heap_len++;
    while (i > 0 && pending_less(&x, &ms->heap[(i - 1) / 2])) {
        ms->heap[i] = ms->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    ms->heap[i] = x;
    return 0;
}

static EngramPendingRelease pending_pop(EngramModState *ms)
{
    EngramPendingRelease top = ms->heap[0], x = ms->heap[--ms->heap_len];
    size_t n = ms->heap_len, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pending_less(&ms->heap[c + 1], &ms->heap[c]))
            c++;
        if (!pending_less(&ms->heap[c], &x))
            break;
        ms->heap[i] = ms->heap[c];
        i = c;
    }
    if (n)
        ms->heap[i] = x;
    return top;
}

/* ---- setup --------------------------------------------------------------------- */

static const char *pname(const EngramModel *m, uint32_t p)
{
    return engram_model_str(m, m->params[p].name);
}

/* A neuron index param of a `when` release: a whole number within the population. */
static int neuron_index(const EngramNetwork *net, const EngramReleaseRt *r, uint32_t param,
                        uint32_t pop, uint32_t *out, EngramError *err)
{
    double v = net->params[param];
    uint32_t size = net->pops[pop].size;
    if (!(v >= 0) || v != floor(v) || v >= size)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "release %s: %s = %g is not a neuron of %s (size %u)", r->name,
                           pname(net->model, param), v, net->pops[pop].name, size);
    *out = (uint32_t)v;
    return 0;
}

static int check_delay_dist(const EngramNetwork *net, const EngramReleaseRt *r,
                            EngramError *err)
{
    const EngramDistDesc *x = &r->desc->delay;
    const double *pv = net->params;
    if (x->kind == ENGRAM_DIST_CONST && x->arg[0] == ENGRAM_NONE)
        return 0;
    bool bad = !isfinite(pv[x->arg[0]]);
    if (x->kind == ENGRAM_DIST_UNIFORM)
        bad = bad || !isfinite(pv[x->arg[1]]) || pv[x->arg[0]] > pv[x->arg[1]];
    if (x->kind == ENGRAM_DIST_NORMAL)
        bad = bad || !(pv[x->arg[1]] >= 0) || !isfinite(pv[x->arg[1]]);
    if (bad)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "release %s: the delay distribution has bad arguments (%s = %g)",
                           r->name, pname(net->model, x->arg[0]), pv[x->arg[0]]);
    return 0;
}

static int init_release(EngramNetwork *net, uint32_t k, EngramError *err)
{
    const EngramModel *m = net->model;
    EngramReleaseRt *r = &net->mods.rels[k];
    const EngramReleaseDesc *d = &m->releases[k];
    r->desc = d;
    r->name = engram_model_str(m, d->name);
    r->amount = net->params[d->amount_param];
    r->last_src = -1;
    if (!isfinite(r->amount))
        return engram_fail(err, ENGRAM_EXIT_MODEL, "release %s: amount %s = %g is not finite",
                           r->name, pname(m, d->amount_param), r->amount);
    if (d->kind != ENGRAM_RELEASE_WHEN)
        return 0;
    int rc = neuron_index(net, r, d->src_index_param, d->src_pop, &r->src_index, err);
    if (!rc)
        rc = neuron_index(net, r, d->dst_index_param, d->dst_pop, &r->dst_index, err);
    if (rc)
        return rc;
    double w = net->params[d->window_param];
    if (!(w >= 0) || !isfinite(w) || w / net->dt > 9.0e18)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "release %s: window %s = %g ms is not a "
                           "time >= 0", r->name, pname(m, d->window_param), w);
    r->window_steps = (int64_t)floor(w / net->dt + 1e-6);
    return check_delay_dist(net, r, err);
}

int engram_modulators_init(EngramNetwork *net, EngramError *err)
{
    const EngramModel *m = net->model;
    EngramModState *ms = &net->mods;
    memset(ms, 0, sizeof *ms);
    ms->nmods = m->hdr->nmodulators;
    ms->nrels = m->hdr->nreleases;
    ms->level = calloc(ms->nmods + 1, sizeof *ms->level);
    ms->baseline = calloc(ms->nmods + 1, sizeof *ms->baseline);
    ms->factor = calloc(ms->nmods + 1, sizeof *ms->factor);
    ms->sum = calloc(ms->nmods + 1, sizeof *ms->sum);
    ms->rels = calloc(ms->nrels + 1, sizeof *ms->rels);
    if (!ms->level || !ms->baseline || !ms->factor || !ms->sum || !ms->rels)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the modulators");
    for (uint32_t i = 0; i < ms->nmods; i++) {
        const EngramModulatorDesc *d = &m->modulators[i];
        const char *name = engram_model_str(m, d->name);
        double base = net->params[d->baseline_param], tau = net->params[d->tau_param];
        if (!isfinite(base))
            return engram_fail(err, ENGRAM_EXIT_MODEL, "modulator %s: %s = %g is not "
                               "finite", name, pname(m, d->baseline_param), base);
        if (!(tau > 0))
            return engram_fail(err, ENGRAM_EXIT_MODEL, "modulator %s: %s = %g ms must be > 0",
                               name, pname(m, d->tau_param), tau);
        ms->level[i] = ms->baseline[i] = base;
        ms->factor[i] = exp(-net->dt / tau);
    }
    for (uint32_t k = 0; k < ms->nrels; k++) {
        int rc = init_release(net, k, err);
        if (rc)
            return rc;
    }
    return 0;
}

void engram_modulators_free(EngramModState *ms)
{
    free(ms->level);
    free(ms->baseline);
    free(ms->factor);
    free(ms->sum);
    free(ms->rels);
    free(ms->heap);
    memset(ms, 0, sizeof *ms);
}

/* ---- the step ---------------------------------------------------------------------- */

/* Whether neuron i is in the population's (ascending) spike list of this step. */
static bool has_spiked(const EngramPopRt *p, uint32_t i)
{
    uint32_t lo = 0, hi = p->nspikes;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->spikes[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->nspikes && p->spikes[lo] == i;
}

/* Delay of one `when` event in steps (0 without a delay). */
static int64_t event_delay(const EngramNetwork *net, EngramReleaseRt *r)
{
    const EngramDistDesc *x = &r->desc->delay;
    uint64_t event = r->events++;
    if (x->kind == ENGRAM_DIST_CONST && x->arg[0] == ENGRAM_NONE)
        return 0;
    EngramRng rng;
    engram_rng_init(&rng, net->seed, r->desc->stream, 0, event);
    double d = engram_dist_draw(x, net->params, &rng) / net->dt;
    if (!(d > 0))
        return 0;
    return d < 4.0e18 ? (int64_t)floor(d + 0.5) : INT64_MAX / 2;
}

static int watch_when(EngramNetwork *net, EngramReleaseRt *r, uint32_t k, int64_t step,
                      EngramError *err)
{
    const EngramReleaseDesc *d = r->desc;
    if (has_spiked(&net->pops[d->src_pop], r->src_index))
        r->last_src = step;
    if (r->last_src < 0 || step - r->last_src > r->window_steps ||
        !has_spiked(&net->pops[d->dst_pop], r->dst_index))
        return 0;
    EngramPendingRelease x = {.step = step + event_delay(net, r), .release = k,
                              .modulator = d->modulator, .amount = r->amount};
    x.seq = net->mods.next_seq++;
    return pending_push(&net->mods, x, "release", r->name, err);
}

int engram_modulators_schedule(EngramNetwork *net, int64_t step, uint32_t m, double amount,
                               EngramError *err)
{
    EngramPendingRelease x = {.step = step, .seq = net->mods.next_seq++,
                              .release = ENGRAM_NONE, .modulator = m, .amount = amount};
    return pending_push(&net->mods, x, "reward", "", err);
}

int engram_modulators_step(EngramNetwork *net, int64_t step, EngramError *err)
{
    EngramModState *ms = &net->mods;
    for (uint32_t k = 0; k < ms->nrels; k++)
        if (ms->rels[k].desc->kind == ENGRAM_RELEASE_WHEN) {
            int rc = watch_when(net, &ms->rels[k], k, step, err);
            if (rc)
                return rc;
        }
    for (uint32_t i = 0; i < ms->nmods; i++)
        ms->level[i] = ms->baseline[i] + (ms->level[i] - ms->baseline[i]) * ms->factor[i];
    for (uint32_t k = 0; k < ms->nrels; k++) {
        EngramReleaseRt *r = &ms->rels[k];
        uint32_t n = net->pops[r->desc->src_pop].nspikes;
        if (r->desc->kind != ENGRAM_RELEASE_PER_SPIKE || n == 0)
            continue;
        ms->level[r->desc->modulator] += r->amount * n;
        r->applied += n;
    }
    while (ms->heap_len && ms->heap[0].step <= step) {
        EngramPendingRelease x = pending_pop(ms);
        if (x.release == ENGRAM_NONE) {   /* a protocol reward */
            ms->level[x.modulator] += x.amount;
            continue;
        }
        EngramReleaseRt *r = &ms->rels[x.release];
        ms->level[r->desc->modulator] += r->amount;
        r->applied++;
    }
    for (uint32_t i = 0; i < ms->nmods; i++)
        ms->sum[i] += ms->level[i];
    ms->steps++;
    return 0;
}
