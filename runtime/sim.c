/*
 * sim.c - the step loop (docs/language.md sections 10 and 12).
 *
 * One step: weight recordings due at this step take their sample (the
 * weights as the previous step left them); the drives add their input to the
 * current ring slots; every population in declaration order runs its update
 * kernel over all neurons (phases 1-3) or, for a source, emits; the spiked
 * flags become an ascending list of indices, which is recorded; then every
 * projection in declaration order delivers this step's spikes of its source
 * into the target rings (a plastic one running its on-pre handler in the
 * same kernel), then runs its on-post kernel over the target's spikes and,
 * at multiples of its interval, its every kernel over all sources; then
 * the modulators decay and take their releases.  After the last step the
 * recordings take their final sample.  With PROJ.plastic = 0 spikes are
 * still delivered (EngramPlasticState.plastic = 0 tells the deliver kernel to
 * skip its handler) and the on-post and every kernels are not called.
 *
 * Nothing is allocated in the loop except when a recording buffer doubles
 * (amortised; its first size comes from the estimate).  Every 100 steps and
 * at the end, state and plastic weights are checked for NaN/inf.
 *
 * Order: recording, divergence check, progress, the loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_engine.h"

#define CHECK_EVERY 100   /* steps between NaN/inf checks of all state */

/* ---- recording ------------------------------------------------------------ */

static int record(EngramPopRt *p, int64_t step, EngramError *err)
{
    p->total_spikes += p->nspikes;
    if (!p->desc->record_spikes || p->nspikes == 0)
        return 0;
    if (p->rec_len + p->nspikes > p->rec_cap) {
        size_t cap = p->rec_cap ? p->rec_cap : 1024;
        while (cap < p->rec_len + p->nspikes)
            cap *= 2;
        int64_t *s = realloc(p->rec_step, cap * sizeof *s);
        if (s)
            p->rec_step = s;
        uint32_t *id = realloc(p->rec_id, cap * sizeof *id);
        if (id)
            p->rec_id = id;
        if (!s || !id)
            return engram_fail(err, ENGRAM_EXIT_RESOURCE,
                               "out of memory recording the spikes of %s", p->name);
        p->rec_cap = cap;
    }
    for (uint32_t k = 0; k < p->nspikes; k++) {
        p->rec_step[p->rec_len + k] = step;
        p->rec_id[p->rec_len + k] = p->spikes[k];
    }
    p->rec_len += p->nspikes;
    return 0;
}

/* The spiked flags as an ascending index list. */
static void compact_spikes(EngramPopRt *p)
{
    uint32_t n = 0;
    const uint8_t *f = p->spiked;
    for (uint32_t i = 0; i < p->size; i++) {
        p->spikes[n] = i;
        n += f[i] != 0;
    }
    p->nspikes = n;
}

/* ---- divergence check ------------------------------------------------------------ */

static int check_finite(const EngramNetwork *net, int64_t step, EngramError *err)
{
    const EngramModel *m = net->model;
    for (uint32_t i = 0; i < net->npops; i++) {
        const EngramPopRt *p = &net->pops[i];
        if (p->desc->kind != ENGRAM_POP_NEURON)
            continue;
        for (uint32_t k = 0; k < p->size; k++)
            for (uint32_t s = 0; s < p->desc->nstates; s++) {
                double v = engram_value_load(p->state[s], net->precision, k);
                if (isfinite(v))
                    continue;
                const char *var = engram_model_str(m, m->states[p->desc->first_state + s].name);
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "numeric divergence in %s neuron %u variable %s at t = %g ms "
                                   "(value %g); try a smaller dt or another integration method",
                                   p->name, k, var, (double)(step + 1) * net->dt, v);
            }
    }
    for (uint32_t j = 0; j < net->nprojs; j++) {
        const EngramProjRt *pr = &net->projs[j];
        if (!pr->plastic)
            continue;
        for (uint64_t k = 0; k < pr->csr.nsyn; k++) {
            double w = engram_value_load(pr->weight, net->precision, k);
            if (!isfinite(w))
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "numeric divergence in the weight of projection %s synapse "
                                   "%llu at t = %g ms (value %g)", pr->name,
                                   (unsigned long long)k, (double)(step + 1) * net->dt, w);
        }
    }
    return 0;
}

/* ---- progress ------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct Progress {
    bool enabled, shown;
    double start, last;
} Progress;

/* Once a second, once the run looks longer than ~3 s in total. */
static void progress_tick(Progress *pg, const EngramNetwork *net, int64_t step)
{
    double t = now_s(), elapsed = t - pg->start;
    if (t - pg->last < 1.0 || elapsed < 1.0)
        return;
    double frac = (double)(step + 1) / (double)net->nsteps;
    if (!pg->shown && elapsed / frac < 3.0)
        return;
    pg->last = t;
    pg->shown = true;
    double sim_ms = (double)(step + 1) * net->dt;
    fprintf(stderr, "\r  t = %.1f / %.1f ms (%3.0f%%), %.2fx realtime, eta %.0f s   ", sim_ms,
            net->duration, 100.0 * frac, sim_ms / 1000.0 / elapsed,
            elapsed / frac - elapsed);
    fflush(stderr);
}

/* ---- the loop --------------------------------------------------------------------------- */

static void set_inputs(EngramNetwork *net, int64_t step)
{
    for (uint32_t i = 0; i < net->npops; i++) {
        EngramPopRt *p = &net->pops[i];
        for (uint32_t q = 0; q < p->desc->nports; q++) {
            EngramRing *r = &p->rings[q];
            p->input[q] = (char *)r->data + (size_t)(step % r->slots) * r->n * (size_t)net->precision;
        }
    }
}

static void update_pop(const EngramNetwork *net, EngramPopRt *p, int64_t step)
{
    if (p->desc->kind != ENGRAM_POP_NEURON) {
        engram_source_emit(net, p, step);
        return;
    }
    EngramPopArgs a = {
        .state = p->state,
        .input = p->input,
        .params = net->params,
        .prop = p->prop,
        .refr = p->refr,
        .spiked = p->spiked,
        .t = (double)step * net->dt,
        .dt = net->dt,
        .ref_steps = p->ref_steps,
    };
    if (p->size)
        p->kernel(&a, 0, p->size);
    compact_spikes(p);
}

/* Delivery, then (plastic, handlers on) on-post and every, of one projection. */
static void run_proj(const EngramNetwork *net, const EngramProjRt *pr, int64_t step)
{
    const EngramPopRt *src = &net->pops[pr->desc->src_pop];
    const EngramPopRt *dst = &net->pops[pr->desc->dst_pop];
    bool handlers = pr->plastic && pr->handlers_on;
    bool do_deliver = src->nspikes > 0 && (pr->csr.nsyn > 0 || handlers);
    bool do_post = handlers && pr->on_post && dst->nspikes > 0;
    bool do_every = handlers && pr->every && step % pr->every_steps == 0 && src->size > 0;
    if (!do_deliver && !do_post && !do_every)
        return;
    const EngramRing *ring = &dst->rings[pr->desc->port];
    EngramDeliverArgs a = {
        .spikes = src->spikes,
        .nspikes = src->nspikes,
        .row = pr->csr.row,
        .col = pr->csr.col,
        .weight = pr->weight,
        .delay = pr->delay,
        .ring = ring->data,
        .ntgt = ring->n,
        .ring_slots = ring->slots,
        .step = step,
        .params = net->params,
        .weight_value = pr->weight_value,
        .delay_steps = pr->delay_steps,
        .plastic = pr->plastic ? &pr->ps : NULL,
        .t = (double)step * net->dt,
        .dt = net->dt,
        .nsrc = src->size,
    };
    if (do_deliver)
        pr->kernel(&a);
    if (do_post) {
        a.spikes = dst->spikes;
        a.nspikes = dst->nspikes;
        pr->on_post(&a);
    }
    if (do_every) {
        a.spikes = NULL;
        a.nspikes = 0;
        pr->every(&a, 0, src->size);
    }
}

int engram_simulate(EngramNetwork *net, const EngramSimOptions *opt, EngramError *err)
{
    Progress pg = {.enabled = opt && opt->progress};
    pg.start = pg.last = now_s();
    for (int64_t step = 0; step < net->nsteps; step++) {
        engram_weight_recs_sample(net, step, false);
        set_inputs(net, step);
        engram_drives_apply(net, step);
        int rc = 0;
        for (uint32_t i = 0; i < net->npops && !rc; i++) {
            update_pop(net, &net->pops[i], step);
            rc = record(&net->pops[i], step, err);
        }
        for (uint32_t j = 0; j < net->nprojs && !rc; j++)
            run_proj(net, &net->projs[j], step);
        if (!rc)
            rc = engram_modulators_step(net, step, err);
        if (!rc && ((step + 1) % CHECK_EVERY == 0 || step + 1 == net->nsteps))
            rc = check_finite(net, step, err);
        if (rc)
            return rc;
        if (pg.enabled && (step & 63) == 63)
            progress_tick(&pg, net, step);
    }
    engram_weight_recs_sample(net, net->nsteps, true);
    if (pg.shown)
        fprintf(stderr, "\r%*s\r", 78, "");
    return 0;
}
