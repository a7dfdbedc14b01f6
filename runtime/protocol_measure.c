/*
 * protocol_measure.c - what a protocol measures (docs/measures.md for the
 * definitions, rt_measures.h for the functions that compute them): the
 * spike buffers of the measured populations, targets (a population or one
 * of its ensembles), per-trial measures into the row of the open trial,
 * RECORDs over a whole scope, and the weight between two targets.
 *
 * Spike buffers hold (step, id) of every spike of a measured population
 * since the start of the oldest open scope that will measure (keep_from),
 * appended after each step's exchange, in (step, id) order as the measures
 * want them.  Scopes trim them when they close, so memory is bounded by the
 * longest open window, not by the run.
 *
 * The weight measure is global: every projection from a's population to
 * b's, collected in global CSR order on rank 0 (engram_proj_collect),
 * summed in that order, and broadcast, so it is the same for any number of
 * threads and ranks.
 *
 * Order: growth, spike buffers, targets, checks, measures, MEASURE
 * statements, jitter, records.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_protocol.h"

/* ---- growth ------------------------------------------------------------------- */

int engram_proto_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 4 / (elem ? elem : 1))
            return -1;
        c *= 2;
    }
    void *p = realloc(*arr, c * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* ---- spike buffers ---------------------------------------------------------------- */

static int buf_reserve(ProtoSpikeBuf *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need)
        cap *= 2;
    int64_t *s = realloc(b->step, cap * sizeof *s);
    if (!s)
        return -1;
    b->step = s;
    uint32_t *id = realloc(b->id, cap * sizeof *id);
    if (!id)
        return -1;
    b->id = id;
    b->cap = cap;
    return 0;
}

int engram_protocol_observe(EngramNetwork *net, int64_t step, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    if (!pr || pr->core.keep_from > step)
        return 0;
    for (uint32_t k = 0; k < pr->nbufs; k++) {
        ProtoSpikeBuf *b = &pr->bufs[k];
        const EngramPopRt *p = &net->pops[b->pop];
        if (p->nspikes == 0)
            continue;
        if (buf_reserve(b, b->len + p->nspikes))
            return engram_fail(err, ENGRAM_EXIT_RESOURCE,
                               "out of memory keeping the spikes of %s for the protocol's measures",
                               p->name);
        for (uint32_t s = 0; s < p->nspikes; s++) {
            b->step[b->len + s] = step;
            b->id[b->len + s] = p->spikes[s];
        }
        b->len += p->nspikes;
    }
    return 0;
}

void engram_proto_trim(EngramProtocol *pr)
{
    int64_t from = pr->core.keep_from;
    for (uint32_t k = 0; k < pr->nbufs; k++) {
        ProtoSpikeBuf *b = &pr->bufs[k];
        size_t lo = b->head, hi = b->len;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (b->step[mid] < from)
                lo = mid + 1;
            else
                hi = mid;
        }
        b->head = lo;
        if (b->head == b->len) {
            b->head = b->len = 0;
        } else if (b->head > b->len - b->head) {   /* more dead than live: compact */
            size_t n = b->len - b->head;
            memmove(b->step, b->step + b->head, n * sizeof *b->step);
            memmove(b->id, b->id + b->head, n * sizeof *b->id);
            b->head = 0;
            b->len = n;
        }
    }
}

static EngramSpikeView view_of(const EngramProtocol *pr, uint32_t pop)
{
    const ProtoSpikeBuf *b = &pr->bufs[pr->buf_of[pop]];
    if (b->len == b->head)
        return (EngramSpikeView){NULL, NULL, 0};
    return (EngramSpikeView){b->step + b->head, b->id + b->head, b->len - b->head};
}

static uint32_t seq_pop(const EngramProtocol *pr, uint32_t seq)
{
    return pr->m->ens_groups[pr->m->sequences[seq].group].pop;
}

/* ---- targets ------------------------------------------------------------------------ */

int engram_proto_target(const EngramNetwork *net, const EngramTargetDesc *t, uint32_t stmt,
                        uint32_t *lo, uint32_t *hi, EngramError *err)
{
    const EngramProtocol *pr = net->proto;
    if (t->group == ENGRAM_NONE) {
        *lo = 0;
        *hi = net->pops[t->pop].size;
        return 0;
    }
    double v = engram_proto_eval(pr, t->index, net->params), k = floor(v + 0.5);
    uint32_t n = pr->ens_count[t->group];
    if (!(k >= 0) || k >= n)
        return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                                 "ensemble %g of %s is not one of its %u ensembles (0..%u)", v,
                                 net->pops[t->pop].name, n, n ? n - 1 : 0);
    *lo = pr->ens_lo[pr->ens_first[t->group] + (uint32_t)k];
    *hi = pr->ens_hi[pr->ens_first[t->group] + (uint32_t)k];
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------ */

int engram_proto_check_measure(const EngramNetwork *net, uint32_t measure, uint32_t stmt,
                               EngramError *err)
{
    const EngramProtocol *pr = net->proto;
    const EngramModel *m = pr->m;
    const EngramMeasureDesc *x = &m->measures[measure];
    if (x->seq == ENGRAM_NONE || pr->seq_ok[x->seq])
        return 0;
    const EngramSequenceDesc *q = &m->sequences[x->seq];
    return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                             "%s: sequence %s needs an interval of at least one step (%g ms), a "
                             "window > 0 (%g ms) and a threshold > 0 (%g)",
                             engram_model_str(m, x->name), engram_model_str(m, q->name),
                             net->params[q->interval_param], net->params[q->window_param],
                             net->params[q->threshold_param]);
}

/* ---- measures --------------------------------------------------------------------------- */

/* Mean weight of the synapses from a's neurons to b's over every projection
 * between their populations; NaN without such synapses.  Collective. */
static int weight_mean(EngramNetwork *net, const EngramMeasureDesc *d, uint32_t stmt,
                       double *out, EngramError *err)
{
    uint32_t alo, ahi, blo, bhi;
    int rc = engram_proto_target(net, &d->a, stmt, &alo, &ahi, err);
    if (!rc)
        rc = engram_proto_target(net, &d->b, stmt, &blo, &bhi, err);
    if (rc)
        return rc;
    bool root = net->rank == 0;
    double sum = 0;
    uint64_t n = 0;
    for (uint32_t j = 0; j < net->nprojs && !rc; j++) {
        const EngramProjDesc *pj = net->projs[j].desc;
        if (pj->src_pop != d->a.pop || pj->dst_pop != d->b.pop)
            continue;
        uint64_t ns = net->projs[j].nsyn_all;
        double *w = root ? malloc((ns + 1) * sizeof *w) : NULL;
        uint32_t *s = root ? malloc((ns + 1) * sizeof *s) : NULL;
        uint32_t *t = root ? malloc((ns + 1) * sizeof *t) : NULL;
        rc = root && (!w || !s || !t)
                 ? engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory measuring weights")
                 : 0;
        if (net->nranks > 1)
            rc = engram_comm_agree(rc, net->rank, err);
        if (!rc)
            rc = engram_proj_collect(net, j, w, true, s, t, err);
        for (uint64_t k = 0; !rc && root && k < ns; k++)
            if (s[k] >= alo && s[k] < ahi && t[k] >= blo && t[k] < bhi) {
                sum += w[k];
                n++;
            }
        free(w);
        free(s);
        free(t);
    }
    if (rc)
        return rc;
    double v = n ? sum / (double)n : NAN;
    if (net->nranks > 1)
        engram_comm_bcast(&v, sizeof v, 0);
    *out = v;
    return 0;
}

int engram_proto_measure(EngramNetwork *net, uint32_t measure, uint32_t stmt, int64_t t0,
                         int64_t to, double *value, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramMeasureDesc *x = &pr->m->measures[measure];
    uint32_t lo = 0, hi = 0, q = x->seq;
    *value = NAN;
    if (x->kind == ENGRAM_MEASURE_WEIGHT)
        return weight_mean(net, x, stmt, value, err);
    if (q != ENGRAM_NONE) {
        EngramSpikeView v = view_of(pr, seq_pop(pr, q));
        engram_seq_onsets(&pr->seq[q], &v, t0, to, pr->onset);
        if (x->kind == ENGRAM_MEASURE_RECALL)
            *value = engram_measure_recall(&pr->seq[q], pr->onset, t0);
        else if (x->kind == ENGRAM_MEASURE_ORDER)
            *value = engram_measure_order(&pr->seq[q], pr->onset);
        else if (x->kind == ENGRAM_MEASURE_SPARSENESS)
            *value = engram_measure_sparseness_after(&pr->seq[q], &v, pr->onset, t0, to);
        return 0;
    }
    int rc = engram_proto_target(net, &x->a, stmt, &lo, &hi, err);
    if (rc)
        return rc;
    EngramSpikeView v = view_of(pr, x->a.pop);
    if (x->kind == ENGRAM_MEASURE_RATE)
        *value = engram_measure_rate(&v, lo, hi, t0, to, net->dt);
    else if (x->kind == ENGRAM_MEASURE_SPARSENESS)
        *value = engram_measure_active_fraction(&v, lo, hi, t0, to);
    return 0;
}

/* ---- MEASURE statements ------------------------------------------------------------------- */

/* The onsets of a jitter measure's sequence after t0, in ms (NaN: absent). */
static void jitter_onsets(EngramProtocol *pr, uint32_t measure, uint8_t *row, int64_t t0,
                          int64_t to)
{
    uint32_t j = pr->jit_of[measure], q = pr->m->measures[measure].seq;
    EngramSpikeView v = view_of(pr, seq_pop(pr, q));
    engram_seq_onsets(&pr->seq[q], &v, t0, to, pr->onset);
    double *o = engram_row_jit(pr, row) + pr->jit_off[j];
    for (uint32_t e = 0; e < pr->seq[q].nelems; e++)
        o[e] = pr->onset[e] < 0 ? NAN : (double)(pr->onset[e] - t0) * pr->dt;
    engram_row_jhas(pr, row)[j] = 1;
}

int engram_proto_measure_stmt(EngramNetwork *net, uint32_t stmt, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramModel *m = pr->m;
    const EngramStmtDesc *x = &m->stmts[stmt];
    uint8_t *row = pr->ctx + (size_t)(pr->core.nctx - 1) * pr->row_bytes;
    ProtoRowHead *h = engram_row_head(row);
    for (uint32_t k = 0; k < x->nidx; k++) {
        uint32_t mi = m->idx[x->first_idx + k];
        if (m->measures[mi].kind == ENGRAM_MEASURE_JITTER) {
            jitter_onsets(pr, mi, row, h->t0, pr->core.now);
            continue;
        }
        uint32_t c = pr->col_of[mi];
        int rc = engram_proto_measure(net, mi, stmt, h->t0, pr->core.now,
                                      &engram_row_vals(pr, row)[c], err);
        if (rc)
            return rc;
        engram_row_has(pr, row)[c] = 1;
    }
    h->measured = 1;
    return 0;
}

/* ---- jitter --------------------------------------------------------------------------------- */

double engram_proto_jitter(const EngramProtocol *pr, uint32_t j, uint64_t from, uint64_t to)
{
    uint32_t ne = pr->m->sequences[pr->m->measures[pr->jit_measure[j]].seq].nelems;
    size_t n = 0;
    for (uint64_t r = from; r < to; r++)
        n += engram_row_jhas(pr, pr->rows + r * pr->row_bytes)[j] != 0;
    if (n == 0)
        return NAN;
    double *on = malloc(n * ne * sizeof *on);
    if (!on)
        return NAN;
    size_t k = 0;
    for (uint64_t r = from; r < to; r++) {
        uint8_t *row = pr->rows + r * pr->row_bytes;
        if (engram_row_jhas(pr, row)[j])
            memcpy(on + ne * k++, engram_row_jit(pr, row) + pr->jit_off[j], ne * sizeof *on);
    }
    double v = engram_measure_jitter(on, n, ne);
    free(on);
    return v;
}

/* ---- records ------------------------------------------------------------------------------- */

/* Keeps the latest result per phase and measure (copied with its padding,
 * which record_stmt zeroes, so saved states compare byte for byte). */
static int store_record(EngramProtocol *pr, const ProtoRecord *r, EngramError *err)
{
    uint64_t k = 0;
    while (k < pr->core.nrecords &&
           (pr->records[k].phase != r->phase || pr->records[k].measure != r->measure))
        k++;
    if (k == pr->core.nrecords) {
        if (engram_proto_grow((void **)&pr->records, &pr->records_cap, pr->core.nrecords + 1,
                              sizeof *pr->records))
            return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the records");
        pr->core.nrecords++;
    }
    memcpy(&pr->records[k], r, sizeof *r);
    return 0;
}

/* One RECORD statement of frame `depth`, over the frame's scope. */
static int record_stmt(EngramNetwork *net, uint32_t stmt, uint32_t depth, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramModel *m = pr->m;
    const EngramStmtDesc *x = &m->stmts[stmt];
    const ProtoFrame *f = &pr->frames[depth];
    uint32_t phase = ENGRAM_NONE;
    for (uint32_t k = depth + 1; k-- > 0 && phase == ENGRAM_NONE;)
        phase = pr->frames[k].phase;
    int rc = 0;
    for (uint32_t k = 0; k < x->nidx && !rc; k++) {
        uint32_t mi = m->idx[x->first_idx + k], q = m->measures[mi].seq;
        ProtoRecord r;
        memset(&r, 0, sizeof r);
        r.phase = phase;
        r.measure = mi;
        r.value = r.replay.count = r.replay.chance = r.replay.chance_sd = NAN;
        if (m->measures[mi].kind == ENGRAM_MEASURE_REPLAY) {
            EngramSpikeView v = view_of(pr, seq_pop(pr, q));
            EngramReplayStats st;
            if (engram_measure_replay(&pr->seq[q], &v, f->t_start, pr->core.now, net->seed,
                                      m->sequences[q].stream, &st) == -1)
                rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory measuring %s",
                                 engram_model_str(m, m->measures[mi].name));
            r.replay.count = st.count;   /* field by field: r's padding stays zero */
            r.replay.chance = st.chance;
            r.replay.chance_sd = st.chance_sd;
            r.replay.shuffles = st.shuffles;
        } else if (m->measures[mi].kind == ENGRAM_MEASURE_JITTER) {
            uint32_t j = pr->jit_of[mi];
            r.value = j == ENGRAM_NONE ? NAN
                                       : engram_proto_jitter(pr, j, f->rows_base, pr->core.nrows);
        } else {
            rc = engram_proto_measure(net, mi, stmt, f->t_start, pr->core.now, &r.value, err);
        }
        if (!rc)
            rc = store_record(pr, &r, err);
    }
    return rc;
}

int engram_proto_records(EngramNetwork *net, uint32_t depth, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    uint32_t first = pr->core.npending;
    while (first > 0 && pr->pending[first - 1].depth == depth)
        first--;
    int rc = 0;
    for (uint32_t k = first; k < pr->core.npending && !rc; k++)
        rc = record_stmt(net, pr->pending[k].stmt, depth, err);
    pr->core.npending = first;
    return rc;
}
