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
 * Partitions (docs/scaling.md): each of the nthreads threads of a rank owns
 * a block of every population (partition rank * nthreads + t) and the
 * incoming synapses of its neurons.  A step is four phases, with a barrier
 * after each: (A, all threads) drives and updates of the own neurons, each
 * into its own spike list; (B, thread 0) the lists become one ascending
 * global list per population (concatenation in partition order, across
 * ranks with MPI_Allgatherv), which is recorded; (C, all threads) every
 * projection delivers the global spikes onto the own targets (a sum into a
 * target therefore runs over ascending sources, whatever the partitioning),
 * on-post handlers run over the own target spikes; (D, thread 0) modulators,
 * checks, progress, and the start of the next step.  No atomics on the hot
 * path: each thread writes only its own targets' ring entries, traces and
 * synapses (pre traces: one copy per partition, updated identically).  With
 * one partition there are no barriers and no copies.  Failures local to a
 * rank (memory, divergence) are agreed at the checks, so all ranks stop
 * together with the same message.
 *
 * Static models (no protocol, releases or plasticity) whose minimum delay is
 * D > 1 steps exchange once per D steps instead (Batch, batched_thread):
 * phases B and C run at every D-th step for the D steps in order, which
 * gives the same bits with fewer barriers and collectives.
 *
 * A protocol (rt_protocol.h) runs on thread 0 at the start of each step,
 * before the weight samples of that step; its stimuli enter in phase A next
 * to the drives (sources: in engram_source_emit); after the exchange it
 * keeps the spikes its open trials will measure; after the last step it
 * closes what is still open.
 *
 * Thread 0 times the phases of some steps (phase_timed) for summary.json's
 * timing.*_s; the loop's wall time is split in their proportions.
 *
 * Order: barrier, recording, divergence check, progress, phase timing, the loop.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "rt_engine.h"
#include "rt_protocol.h"

#define CHECK_EVERY 100   /* steps between NaN/inf checks of all state */

/* ---- barrier -------------------------------------------------------------- */

/* Sense-reversing barrier that spins briefly, then yields (ranks x threads
 * may exceed the cores). */
typedef struct SpinBarrier {
    atomic_uint count;
    atomic_uint gen;
    unsigned n;
} SpinBarrier;

static void barrier_wait(SpinBarrier *b)
{
    if (b->n <= 1)
        return;
    unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
        return;
    }
    for (unsigned spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == g; spins++)
        if (spins > 256)
            sched_yield();
}

/* ---- recording ------------------------------------------------------------ */

/* Records n spikes (global ids) of this rank. */
static int record(EngramPopRt *p, int64_t step, const uint32_t *ids, uint32_t n, uint32_t lo,
                  EngramError *err)
{
    if (!p->desc->record_spikes || n == 0)
        return 0;
    if (p->rec_len + n > p->rec_cap) {
        size_t cap = p->rec_cap ? p->rec_cap : 1024;
        while (cap < p->rec_len + n)
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
    for (uint32_t k = 0; k < n; k++) {
        p->rec_step[p->rec_len + k] = step;
        p->rec_id[p->rec_len + k] = ids[k] + lo;
    }
    p->rec_len += n;
    return 0;
}

/* The neurons of the nonzero flag bytes of 8 flags read as a word, in
 * memory order. */
static uint32_t word_spikes(uint64_t word, uint32_t first, uint32_t *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);   /* the first byte in the low bits */
#endif
    uint32_t n = 0;
    while (word) {
        uint32_t b = (uint32_t)__builtin_ctzll(word) >> 3;
        out[n++] = first + b;
        word &= ~(0xffull << (8 * b));
    }
    return n;
}

/* The spiked flags of a partition as an ascending (rank-local) index list. */
static void compact_spikes(EngramPopRt *p, EngramPopPart *pt)
{
    uint32_t n = 0, i = pt->lo;
    const uint8_t *f = p->spiked;
    /* Spikes are rare (a 20 Hz neuron spikes in 1 step of 500), so test 32
     * flags at a time and only look closer at the words that hold one. */
    for (; i + 32 <= pt->hi; i += 32) {
        uint64_t w[4];
        memcpy(w, f + i, sizeof w);
        if (!(w[0] | w[1] | w[2] | w[3]))
            continue;
        for (uint32_t k = 0; k < 4; k++)
            if (w[k])
                n += word_spikes(w[k], i + 8 * k, pt->spikes + n);
    }
    for (; i < pt->hi; i++) {
        pt->spikes[n] = i;
        n += f[i] != 0;
    }
    pt->nspikes = n;
}

/* ---- divergence check ------------------------------------------------------------ */

/* True when n values hold no NaN or infinity: adding one to the exponent
 * field carries into the sign bit only when the field is all ones.  Integer
 * operations that the compiler vectorises; the slow search only runs to name
 * the first bad value. */
static bool values_finite(const void *a, int prec, size_t n)
{
    const unsigned char *b = a;
    if (prec == 4) {
        uint32_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t w;
            memcpy(&w, b + 4 * i, sizeof w);
            bad |= (w & 0x7f800000u) + 0x00800000u;
        }
        return !(bad >> 31);
    }
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w;
        memcpy(&w, b + 8 * i, sizeof w);
        bad |= (w & 0x7ff0000000000000u) + 0x0010000000000000u;
    }
    return !(bad >> 63);
}

static bool pop_finite(const EngramPopRt *p, int prec)
{
    for (uint32_t s = 0; s < p->desc->nstates; s++)
        if (!values_finite(p->state[s], prec, p->n))
            return false;
    return true;
}

static int check_finite(const EngramNetwork *net, int64_t step, EngramError *err)
{
    const EngramModel *m = net->model;
    for (uint32_t i = 0; i < net->npops; i++) {
        const EngramPopRt *p = &net->pops[i];
        if (p->desc->kind != ENGRAM_POP_NEURON || pop_finite(p, net->precision))
            continue;
        for (uint32_t k = 0; k < p->n; k++)
            for (uint32_t s = 0; s < p->desc->nstates; s++) {
                double v = engram_value_load(p->state[s], net->precision, k);
                if (isfinite(v))
                    continue;
                const char *var = engram_model_str(m, m->states[p->desc->first_state + s].name);
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "numeric divergence in %s neuron %u variable %s at t = %g ms "
                                   "(value %g); try a smaller dt or another integration method",
                                   p->name, p->lo + k, var, (double)(step + 1) * net->dt, v);
            }
    }
    for (uint32_t j = 0; j < net->nprojs; j++)
        for (uint32_t t = 0; t < net->nthreads; t++) {
            const EngramProjRt *pr = &net->tprojs[t][j];
            if (!pr->plastic || values_finite(pr->weight, net->precision, pr->csr.nsyn))
                continue;
            for (uint32_t s = 0; s < pr->csr.nsrc; s++)
                for (uint64_t k = pr->csr.row[s]; k < pr->csr.row[s + 1]; k++) {
                    double w = engram_value_load(pr->weight, net->precision, k);
                    if (!isfinite(w))
                        return engram_fail(err, ENGRAM_EXIT_MODEL,
                                           "numeric divergence in the weight of projection %s "
                                           "synapse %u -> %u at t = %g ms (value %g)", pr->name, s,
                                           net->pops[pr->desc->dst_pop].lo + pr->csr.col[k],
                                           (double)(step + 1) * net->dt, w);
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

/* ---- phase timing (thread 0) ------------------------------------------------------------- */

enum { PH_DRIVE, PH_UPDATE, PH_EXCHANGE, PH_DELIVER, PH_OTHER, PH_COUNT };

/* The steps thread 0 times: every step of a short run, else 1 in 16, chosen
 * by the top bits of step * 2^64 / phi (evenly spread, and no periodic
 * activity aliases with it).  Six clock reads of ~20 ns a step would cost a
 * few percent of a small network's step; one step in 16 costs nothing. */
static bool phase_timed(int64_t step, int64_t nsteps)
{
    return nsteps <= 2000 || ((uint64_t)step * 0x9E3779B97F4A7C15u) >> 60 == 0;
}

static void phase_mark(double *at, int k, bool timed)
{
    if (timed)
        at[k] = now_s();
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

static void update_part(const EngramNetwork *net, EngramPopRt *p, uint32_t t, int64_t step)
{
    if (p->desc->kind != ENGRAM_POP_NEURON) {
        engram_source_emit(net, p, t, step);
        return;
    }
    EngramPopPart *pt = &p->parts[t];
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
    if (pt->hi > pt->lo)
        p->kernel(&a, pt->lo, pt->hi);
    compact_spikes(p, pt);
}

/* Delivery, then (plastic, handlers on) the on-pre handlers of the spikes
 * that arrive now (`on pre arrival`, arrival.c), on-post and every, of
 * partition t of one projection. */
static void run_proj(const EngramNetwork *net, const EngramProjRt *pr, uint32_t t, int64_t step,
                     const uint32_t *spikes, uint32_t nspikes)
{
    const EngramPopRt *src = &net->pops[pr->desc->src_pop];
    const EngramPopRt *dst = &net->pops[pr->desc->dst_pop];
    const EngramPopPart *dpt = &dst->parts[t];
    bool handlers = pr->plastic && pr->handlers_on;
    bool do_deliver = nspikes > 0 && (pr->csr.nsyn > 0 || handlers);
    bool do_post = handlers && pr->on_post && dpt->nspikes > 0;
    bool do_every = handlers && pr->every && step % pr->every_steps == 0 && src->size > 0;
    if (!do_deliver && !do_post && !do_every && !pr->arrival)
        return;
    const EngramRing *ring = &dst->rings[pr->desc->port];
    EngramDeliverArgs a = {
        .spikes = spikes,
        .nspikes = nspikes,
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
    if (pr->arrival)
        engram_arrival_step(pr, &a, handlers);
    if (do_post) {
        a.spikes = dpt->spikes;
        a.nspikes = dpt->nspikes;
        pr->on_post(&a);
    }
    if (do_every) {
        a.spikes = NULL;
        a.nspikes = 0;
        pr->every(&a, 0, src->size);
    }
}

/* Spikes exchanged once per `len` steps (batched_thread): the global lists of
 * the open batch's steps, per population one after another. */
typedef struct Batch {
    int64_t len;          /* steps per exchange; 1: every step (step_thread) */
    int64_t first;        /* the open batch's first step */
    int64_t steps;        /* its steps so far */
    uint32_t **ids;       /* per population: len x size global ids */
    size_t *fill;         /* per population: ids used */
    uint32_t *count;      /* [k * npops + i]: spikes of population i at step first + k */
    size_t *off;          /* [k * npops + i]: where that list starts in ids[i] */
    size_t sent;          /* MPI: send entries used */
    size_t *cursor;       /* MPI: per rank, the next unread entry of recv */
} Batch;

/* What the threads of a rank share. */
typedef struct SimShared {
    EngramNetwork *net;
    EngramError *err;
    SpinBarrier bar;
    atomic_int go;        /* workers: 0 wait, 1 run, 2 leave */
    bool stop;            /* written by thread 0 before a barrier */
    int rc, local_rc;     /* local_rc: a failure of this rank not yet agreed */
    Progress pg;
    double phase[PH_COUNT];   /* seconds of the timed steps, per phase */
    int64_t timed_steps;
    /* MPI exchange buffers */
    uint32_t *send, *recv, *counts;   /* counts: nranks x npops */
    size_t *bytes;                    /* nranks */
    size_t *state_bytes;              /* nranks x npops: n_r * precision */
    Batch batch;
} SimShared;

/* Phase B: the partitions' lists become the global list of every population. */
static void gather_lists(SimShared *sh, int64_t step)
{
    EngramNetwork *net = sh->net;
    uint32_t T = net->nthreads, R = net->nranks, np = net->npops;
    if (R == 1) {
        for (uint32_t i = 0; i < np; i++) {
            EngramPopRt *p = &net->pops[i];
            if (T > 1) {
                uint32_t n = 0;
                for (uint32_t t = 0; t < T; t++) {
                    memcpy(p->spikes + n, p->parts[t].spikes, p->parts[t].nspikes * sizeof *p->spikes);
                    n += p->parts[t].nspikes;
                }
                p->nspikes = n;
            } else {
                p->nspikes = p->parts[0].nspikes;
            }
            p->total_spikes += p->nspikes;
            int rc = record(p, step, p->spikes, p->nspikes, 0, sh->err);
            if (rc && !sh->local_rc)
                sh->local_rc = rc;
        }
        return;
    }
    uint32_t *mine = sh->counts + (size_t)net->rank * np;
    size_t o = 0;
    for (uint32_t i = 0; i < np; i++) {
        EngramPopRt *p = &net->pops[i];
        mine[i] = 0;
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t k = 0; k < p->parts[t].nspikes; k++)
                sh->send[o + mine[i]++] = p->parts[t].spikes[k] + p->lo;
        o += mine[i];
    }
    engram_comm_allgather(mine, np * sizeof *mine, sh->counts);
    for (uint32_t r = 0; r < R; r++) {
        size_t n = 0;
        for (uint32_t i = 0; i < np; i++)
            n += sh->counts[(size_t)r * np + i];
        sh->bytes[r] = n * sizeof *sh->send;
    }
    engram_comm_allgatherv(sh->send, o * sizeof *sh->send, sh->recv, sh->bytes);
    for (uint32_t i = 0; i < np; i++)
        net->pops[i].nspikes = 0;
    size_t at = 0;
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t i = 0; i < np; i++) {
            EngramPopRt *p = &net->pops[i];
            uint32_t c = sh->counts[(size_t)r * np + i];
            memcpy(p->spikes + p->nspikes, sh->recv + at, c * sizeof *p->spikes);
            p->nspikes += c;
            at += c;
        }
    o = 0;
    for (uint32_t i = 0; i < np; i++) {
        EngramPopRt *p = &net->pops[i];
        p->total_spikes += p->nspikes;
        int rc = record(p, step, sh->send + o, mine[i], 0, sh->err);
        if (rc && !sh->local_rc)
            sh->local_rc = rc;
        o += mine[i];
        if (!p->mirror)
            continue;
        for (uint32_t r = 0; r < R; r++)
            sh->state_bytes[r] = (size_t)(engram_block(p->size, (uint64_t)(r + 1) * T, (uint64_t)R * T) -
                                          engram_block(p->size, (uint64_t)r * T, (uint64_t)R * T)) *
                                 (size_t)net->precision;
        for (uint32_t s = 0; s < p->desc->nstates; s++)
            engram_comm_allgatherv(p->state[s], (size_t)p->n * (size_t)net->precision,
                                   p->mirror[s], sh->state_bytes);
    }
}

/* Phase B, then the protocol keeps the spikes its open trials will measure. */
static void exchange(SimShared *sh, int64_t step)
{
    gather_lists(sh, step);
    int rc = engram_protocol_observe(sh->net, step, sh->err);
    if (rc && !sh->local_rc)
        sh->local_rc = rc;
}

/* ---- batched exchange ------------------------------------------------------------- */

/* A spike reaches its targets after its projection's delay, at least the
 * minimum delay D later, so spikes need to travel only once per D steps,
 * the lists of those D steps at once: D times fewer collectives under MPI
 * and two barriers a step instead of four with threads.  Delivered in step
 * order at the end of the batch, every ring slot sums the same events in
 * the same order as with an exchange every step, before the step that reads
 * it: the results are the same bits.  What reads a step's global spikes in
 * that step keeps the exchange every step: a protocol (its measures and
 * rewards), modulator releases, plastic projections (their handlers pair the
 * spikes of each step) and pre-state mirrors.  ENGRAM_EXCHANGE=step forces
 * the exchange every step (docs/scaling.md). */
#define BATCH_MAX_STEPS 64
#define BATCH_MAX_IDS ((size_t)1 << 26)   /* buffered global ids, all populations */

static int64_t min_delay_steps(const EngramNetwork *net)
{
    int64_t d = BATCH_MAX_STEPS;
    for (uint32_t j = 0; j < net->nprojs; j++)
        for (uint32_t t = 0; t < net->nthreads; t++) {
            const EngramProjRt *pr = &net->tprojs[t][j];
            if (!pr->delay && pr->delay_steps < d)
                d = pr->delay_steps;
            for (uint64_t k = 0; pr->delay && k < pr->csr.nsyn && d > 1; k++)
                if (pr->delay[k] < d)
                    d = pr->delay[k];
        }
    return d;
}

/* Steps per exchange: the same on every rank (a collective when MPI). */
static int64_t batch_length(const EngramNetwork *net)
{
    if (net->proto || net->mods.nrels > 0)
        return 1;
    size_t all = 1;
    for (uint32_t i = 0; i < net->npops; i++) {
        if (net->pops[i].mirror)
            return 1;
        all += net->pops[i].size;
    }
    for (uint32_t j = 0; j < net->nprojs; j++)
        if (net->tprojs[0][j].plastic || net->tprojs[0][j].arrive)
            return 1;
    int64_t d = min_delay_steps(net);
    if (net->nranks > 1)
        d = engram_comm_allreduce_int_min((int)d);
    const char *force = getenv("ENGRAM_EXCHANGE");
    if (force && strcmp(force, "step") == 0)
        return 1;
    if ((size_t)d * all > BATCH_MAX_IDS)
        d = (int64_t)(BATCH_MAX_IDS / all);
    return d < 1 ? 1 : d;
}

static void batch_reset(Batch *b, int64_t first, uint32_t npops)
{
    b->first = first;
    b->steps = 0;
    b->sent = 0;
    for (uint32_t i = 0; b->fill && i < npops; i++)
        b->fill[i] = 0;
}

static int batch_alloc(SimShared *sh, EngramError *err)
{
    EngramNetwork *net = sh->net;
    Batch *b = &sh->batch;
    batch_reset(b, net->step_begin, 0);
    if (b->len <= 1)
        return 0;
    uint32_t np = net->npops;
    size_t per = (size_t)b->len * np;
    b->ids = calloc(np + 1, sizeof *b->ids);
    b->fill = calloc(np + 1, sizeof *b->fill);
    b->count = calloc(per + 1, sizeof *b->count);
    b->off = calloc(per + 1, sizeof *b->off);
    b->cursor = calloc(net->nranks + 1, sizeof *b->cursor);
    bool ok = b->ids && b->fill && b->count && b->off && b->cursor;
    for (uint32_t i = 0; ok && i < np; i++)
        ok = (b->ids[i] = malloc(((size_t)b->len * net->pops[i].size + 1) * sizeof **b->ids));
    return ok ? 0 : engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the spike exchange");
}

static void batch_free(Batch *b, uint32_t npops)
{
    for (uint32_t i = 0; b->ids && i < npops; i++)
        free(b->ids[i]);
    free(b->ids);
    free(b->fill);
    free(b->count);
    free(b->off);
    free(b->cursor);
}

/* Phase B of a batched step (thread 0): the partitions' lists join the
 * batch (MPI: the send buffer); this rank's spikes are recorded. */
static void batch_collect(SimShared *sh, int64_t step)
{
    EngramNetwork *net = sh->net;
    Batch *b = &sh->batch;
    uint32_t np = net->npops;
    size_t k = (size_t)b->steps++;
    for (uint32_t i = 0; i < np; i++) {
        EngramPopRt *p = &net->pops[i];
        uint32_t *out = net->nranks > 1 ? sh->send + b->sent : b->ids[i] + b->fill[i];
        uint32_t n = 0;
        for (uint32_t t = 0; t < net->nthreads; t++)
            for (uint32_t q = 0; q < p->parts[t].nspikes; q++)
                out[n++] = p->parts[t].spikes[q] + p->lo;
        if (net->nranks > 1) {
            sh->counts[(size_t)net->rank * b->len * np + k * np + i] = n;
            b->sent += n;
        } else {
            b->off[k * np + i] = b->fill[i];
            b->count[k * np + i] = n;
            b->fill[i] += n;
            p->total_spikes += n;
        }
        int rc = record(p, step, out, n, 0, sh->err);
        if (rc && !sh->local_rc)
            sh->local_rc = rc;
    }
}

/* The end of a batch under MPI (thread 0): every rank's lists of every
 * step, then per step and population the concatenation in rank order,
 * as gather_lists makes it. */
static void batch_exchange(SimShared *sh)
{
    EngramNetwork *net = sh->net;
    Batch *b = &sh->batch;
    uint32_t R = net->nranks, np = net->npops;
    size_t per = (size_t)b->len * np, used = (size_t)b->steps * np;
    engram_comm_allgather(sh->counts + (size_t)net->rank * per, per * sizeof *sh->counts,
                          sh->counts);
    size_t at = 0;
    for (uint32_t r = 0; r < R; r++) {
        size_t n = 0;
        for (size_t q = 0; q < used; q++)
            n += sh->counts[r * per + q];
        b->cursor[r] = at;
        sh->bytes[r] = n * sizeof *sh->send;
        at += n;
    }
    engram_comm_allgatherv(sh->send, b->sent * sizeof *sh->send, sh->recv, sh->bytes);
    for (uint32_t i = 0; i < np; i++)
        b->fill[i] = 0;
    for (size_t k = 0; k < (size_t)b->steps; k++)
        for (uint32_t i = 0; i < np; i++) {
            size_t q = k * np + i;
            b->off[q] = b->fill[i];
            for (uint32_t r = 0; r < R; r++) {
                uint32_t c = sh->counts[r * per + q];
                memcpy(b->ids[i] + b->fill[i], sh->recv + b->cursor[r], c * sizeof *sh->recv);
                b->cursor[r] += c;
                b->fill[i] += c;
            }
            b->count[q] = (uint32_t)(b->fill[i] - b->off[q]);
            net->pops[i].total_spikes += b->count[q];
        }
}

/* Phase C at the end of a batch (all threads): the batch's steps in order. */
static void batch_deliver(SimShared *sh, uint32_t t)
{
    EngramNetwork *net = sh->net;
    const Batch *b = &sh->batch;
    for (int64_t k = 0; k < b->steps; k++)
        for (uint32_t j = 0; j < net->nprojs; j++) {
            const EngramProjRt *pr = &net->tprojs[t][j];
            uint32_t i = pr->desc->src_pop;
            size_t q = (size_t)k * net->npops + i;
            run_proj(net, pr, t, b->first + k, b->ids[i] + b->off[q], b->count[q]);
        }
}

/* Phase D of `step` (thread 0): modulators, checks, progress. */
static void finish_step(SimShared *sh, int64_t step)
{
    EngramNetwork *net = sh->net;
    int rc = engram_modulators_step(net, step, sh->err);   /* the same on every rank */
    if (rc) {
        sh->rc = rc;
        sh->stop = true;
        return;
    }
    if ((step + 1) % CHECK_EVERY == 0 || step + 1 == net->nsteps) {
        rc = sh->local_rc ? sh->local_rc : check_finite(net, step, sh->err);
        if (net->nranks > 1)
            rc = engram_comm_agree(rc, net->rank, sh->err);
        if (rc) {
            sh->rc = rc;
            sh->stop = true;
            return;
        }
    }
    if (sh->pg.enabled && (step & 63) == 63)
        progress_tick(&sh->pg, net, step);
}

/* The protocol runs first, so that a checkpoint it writes at `step` holds
 * the recordings of the steps before it: a run restored there takes this
 * step's samples itself. */
static void prepare_step(SimShared *sh, int64_t step)
{
    EngramNetwork *net = sh->net;
    int rc = engram_protocol_advance(net, step, sh->err);
    if (rc && net->nranks == 1) {
        sh->rc = rc;
        sh->stop = true;
    } else if (rc && !sh->local_rc) {
        sh->local_rc = rc;   /* the same on every rank, or agreed at the next check */
    }
    engram_weight_recs_sample(net, step, false);
    set_inputs(net, step);
}

/* The loop with an exchange every step. */
static void step_thread(SimShared *sh, uint32_t t)
{
    EngramNetwork *net = sh->net;
    SpinBarrier *bar = &sh->bar;
    if (t == 0 && net->step_begin < net->nsteps)
        prepare_step(sh, net->step_begin);
    barrier_wait(bar);
    for (int64_t step = net->step_begin; step < net->nsteps && !sh->stop; step++) {
        bool timed = t == 0 && phase_timed(step, net->nsteps);
        double at[PH_COUNT + 1] = {0};   /* the start of each phase, then the end of the step */
        phase_mark(at, PH_DRIVE, timed);
        engram_drives_apply(net, t, step);
        engram_stimuli_apply(net, t, step);
        phase_mark(at, PH_UPDATE, timed);
        for (uint32_t i = 0; i < net->npops; i++)
            update_part(net, &net->pops[i], t, step);
        barrier_wait(bar);
        phase_mark(at, PH_EXCHANGE, timed);
        if (t == 0)
            exchange(sh, step);
        barrier_wait(bar);
        phase_mark(at, PH_DELIVER, timed);
        for (uint32_t j = 0; j < net->nprojs; j++) {
            const EngramPopRt *src = &net->pops[net->tprojs[t][j].desc->src_pop];
            run_proj(net, &net->tprojs[t][j], t, step, src->spikes, src->nspikes);
        }
        barrier_wait(bar);
        phase_mark(at, PH_OTHER, timed);
        if (t == 0) {
            finish_step(sh, step);
            if (!sh->stop && step + 1 < net->nsteps)
                prepare_step(sh, step + 1);
        }
        barrier_wait(bar);
        phase_mark(at, PH_COUNT, timed);
        if (timed) {   /* thread 0 only */
            for (int k = 0; k < PH_COUNT; k++)
                sh->phase[k] += at[k + 1] - at[k];
            sh->timed_steps++;
        }
        if (sh->stop)
            break;
    }
}

/* The loop with an exchange once per batch (Batch): phases B and C run
 * at the batch's last step; the other steps have two barriers. */
static void batched_thread(SimShared *sh, uint32_t t)
{
    EngramNetwork *net = sh->net;
    SpinBarrier *bar = &sh->bar;
    Batch *b = &sh->batch;
    if (t == 0 && net->step_begin < net->nsteps)
        prepare_step(sh, net->step_begin);
    barrier_wait(bar);
    for (int64_t step = net->step_begin; step < net->nsteps && !sh->stop; step++) {
        bool timed = t == 0 && phase_timed(step, net->nsteps);
        double at[PH_COUNT + 1] = {0};
        phase_mark(at, PH_DRIVE, timed);
        engram_drives_apply(net, t, step);
        phase_mark(at, PH_UPDATE, timed);
        for (uint32_t i = 0; i < net->npops; i++)
            update_part(net, &net->pops[i], t, step);
        barrier_wait(bar);
        phase_mark(at, PH_EXCHANGE, timed);
        bool last = step - b->first + 1 >= b->len || step + 1 == net->nsteps;
        if (t == 0) {
            batch_collect(sh, step);
            if (last && net->nranks > 1)
                batch_exchange(sh);
        }
        phase_mark(at, PH_DELIVER, timed);
        if (last) {
            barrier_wait(bar);
            batch_deliver(sh, t);
        }
        barrier_wait(bar);
        phase_mark(at, PH_OTHER, timed);
        if (t == 0) {
            if (last)
                batch_reset(b, step + 1, net->npops);
            finish_step(sh, step);
            if (!sh->stop && step + 1 < net->nsteps)
                prepare_step(sh, step + 1);
        }
        barrier_wait(bar);
        phase_mark(at, PH_COUNT, timed);
        if (timed) {
            for (int k = 0; k < PH_COUNT; k++)
                sh->phase[k] += at[k + 1] - at[k];
            sh->timed_steps++;
        }
        if (sh->stop)
            break;
    }
}

/* Subnormal numbers flushed to zero, in results (FTZ) and operands (DAZ),
 * on every thread of every rank alike, so results stay the same bits
 * everywhere.  A conductance or trace that decays in silence reaches the
 * subnormal range (below 2.2e-308 in double, 1.2e-38 in float: seconds of
 * silence in float), where each operation costs a microcode assist of a
 * hundred cycles or more: the flagship spent half its time there.  Brian2's
 * default -ffast-math flushes them too. */
static unsigned flush_subnormals(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);   /* FTZ (bit 15) | DAZ (bit 6) */
    return csr;
#else
    return 0;
#endif
}

static void restore_subnormals(unsigned csr)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(csr);
#else
    (void)csr;
#endif
}

static void run_thread(SimShared *sh, uint32_t t)
{
    unsigned csr = flush_subnormals();
    if (sh->batch.len > 1)
        batched_thread(sh, t);
    else
        step_thread(sh, t);
    restore_subnormals(csr);
}

/* The loop's wall time split in the proportions of the timed steps, less
 * the cost of the clock read that each phase of a timed step includes. */
static void phase_report(const SimShared *sh, double loop_s, EngramTiming *out)
{
    double read = 1.0;
    for (int k = 0; k < 8; k++) {
        double a = now_s(), b = now_s();
        read = b - a < read ? b - a : read;
    }
    double sum = 0, ph[PH_COUNT], *dst[PH_COUNT] = {&out->drive_s, &out->update_s,
                                                    &out->exchange_s, &out->deliver_s,
                                                    &out->other_s};
    for (int k = 0; k < PH_COUNT; k++) {
        ph[k] = sh->phase[k] - read * (double)sh->timed_steps;
        ph[k] = ph[k] > 0 ? ph[k] : 0.0;
        sum += ph[k];
    }
    for (int k = 0; k < PH_COUNT; k++)
        *dst[k] = sum > 0 ? loop_s * ph[k] / sum : 0.0;
    out->timed_steps = sh->timed_steps;
}

typedef struct Worker {
    SimShared *sh;
    uint32_t t;
    pthread_t id;
} Worker;

static void *worker_main(void *arg)
{
    Worker *w = arg;
    int go;
    while ((go = atomic_load_explicit(&w->sh->go, memory_order_acquire)) == 0)
        sched_yield();
    if (go == 1)
        run_thread(w->sh, w->t);
    return NULL;
}

static int alloc_exchange(SimShared *sh, EngramError *err)
{
    EngramNetwork *net = sh->net;
    if (net->nranks == 1)
        return 0;
    size_t own = 0, all = 0;
    for (uint32_t i = 0; i < net->npops; i++) {
        own += net->pops[i].n;
        all += net->pops[i].size;
    }
    size_t steps = sh->batch.len > 1 ? (size_t)sh->batch.len : 1;
    sh->send = malloc((steps * own + 1) * sizeof *sh->send);
    sh->recv = malloc((steps * all + 1) * sizeof *sh->recv);
    sh->counts = calloc(steps * net->nranks * net->npops + 1, sizeof *sh->counts);
    sh->bytes = calloc(net->nranks + 1, sizeof *sh->bytes);
    sh->state_bytes = calloc(net->nranks + 1, sizeof *sh->state_bytes);
    if (!sh->send || !sh->recv || !sh->counts || !sh->bytes || !sh->state_bytes)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the spike exchange");
    return 0;
}

int engram_simulate(EngramNetwork *net, const EngramSimOptions *opt, EngramError *err)
{
    SimShared sh = {.net = net, .err = err};
    sh.batch.len = batch_length(net);   /* a collective: before anything can fail */
    sh.pg.enabled = opt && opt->progress;
    sh.pg.start = sh.pg.last = now_s();
    uint32_t T = net->nthreads ? net->nthreads : 1;
    Worker *w = calloc(T, sizeof *w);
    int rc = w ? alloc_exchange(&sh, err)
               : engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the threads");
    if (!rc)
        rc = batch_alloc(&sh, err);
    uint32_t started = 0;
    atomic_init(&sh.go, 0);
    atomic_init(&sh.bar.count, 0);
    atomic_init(&sh.bar.gen, 0);
    for (uint32_t t = 1; t < T && !rc; t++) {
        w[t] = (Worker){&sh, t, 0};
        if (pthread_create(&w[t].id, NULL, worker_main, &w[t]) != 0)
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "cannot start thread %u of %u", t + 1, T);
        else
            started++;
    }
    if (net->nranks > 1)
        rc = engram_comm_agree(rc, net->rank, err);
    sh.bar.n = T;
    double loop_start = now_s();
    atomic_store_explicit(&sh.go, rc ? 2 : 1, memory_order_release);
    if (!rc) {
        run_thread(&sh, 0);
        rc = sh.rc;
    }
    if (opt && opt->timing)
        phase_report(&sh, now_s() - loop_start, opt->timing);
    for (uint32_t t = 1; t <= started; t++)
        pthread_join(w[t].id, NULL);
    free(w);
    free(sh.send);
    free(sh.recv);
    free(sh.counts);
    free(sh.bytes);
    free(sh.state_bytes);
    batch_free(&sh.batch, net->npops);
    if (!rc)
        rc = engram_protocol_finish(net, err);   /* before the final sample, as prepare_step */
    if (rc)
        return rc;
    engram_weight_recs_sample(net, net->nsteps, true);
    if (sh.pg.shown)
        fprintf(stderr, "\r%*s\r", 78, "");
    return 0;
}
