/*
 * weights.c - `record weights PROJ every T [synapses]` (docs/language.md
 * section 14) and the weight statistics of summary.json.
 *
 * A recording samples the projection's weights at the start of every step
 * that is a multiple of T (rounded to steps, at least one), that is the
 * weights as the previous step left them, at time step * dt; and once more
 * after the last step, at time duration.  So a run of N steps with T = k
 * steps has ceil(N / k) + 1 samples, the first being the initial weights.
 * Each sample holds the mean weight (in double, summed in CSR order) and,
 * when per synapse (forced by `synapses`, or nsyn <= ENGRAM_WEIGHT_REC_SMALL),
 * every synapse's weight in CSR order.  Buffers are allocated up front at
 * their final size (the estimate counts them), so the loop never allocates.
 *
 * When the source or the target population has ensembles (section 15), each
 * sample also holds the mean weight of every (source ensemble, target
 * ensemble) cell, the matrix a learning experiment follows.
 *
 * The HDF5 file itself is written by output.c (engram_write_weights).
 *
 * Order: planning, setup, sampling, statistics.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

/* ---- planning ----------------------------------------------------------------- */

void engram_weight_rec_plan(const EngramWeightRecDesc *r, int64_t nsteps, int64_t every_steps,
                            double nsyn, size_t *samples, bool *per_synapse)
{
    int64_t n = nsteps > 0 ? (nsteps - 1) / every_steps + 1 : 0;
    *samples = (size_t)n + 1;
    *per_synapse = r->per_synapse || nsyn <= ENGRAM_WEIGHT_REC_SMALL;
}

/* ---- setup ------------------------------------------------------------------------ */

static int init_rec(EngramNetwork *net, EngramWeightRecRt *wr, EngramError *err)
{
    const EngramModel *m = net->model;
    const EngramProjRt *pr = &net->projs[wr->proj];
    int rc = engram_interval_steps(m, wr->desc->every_param, net->params, net->dt, pr->name,
                                   &wr->every_steps, err);
    if (rc)
        return rc;
    uint64_t nsyn = pr->nsyn_all;
    bool root = net->rank == 0, split = net->nranks * net->nthreads > 1;
    engram_weight_rec_plan(wr->desc, net->nsteps, wr->every_steps, (double)nsyn, &wr->cap,
                           &wr->per_synapse);
    wr->times = calloc(wr->cap, sizeof *wr->times);
    wr->mean = calloc(wr->cap, sizeof *wr->mean);
    bool fits = nsyn == 0 || wr->cap <= SIZE_MAX / sizeof(double) / nsyn;
    if (wr->per_synapse && fits && root)
        wr->w = malloc(wr->cap * (size_t)nsyn * sizeof *wr->w + 1);
    if (!wr->per_synapse && split && root)
        wr->scratch = malloc(((size_t)nsyn + 1) * sizeof *wr->scratch);
    if (!wr->times || !wr->mean || (wr->per_synapse && root && !wr->w) ||
        (!wr->per_synapse && split && root && !wr->scratch))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE,
                           "out of memory recording the weights of %s (%zu samples)", pr->name,
                           wr->cap);
    return 0;
}

/* The ensemble group of a population, or ENGRAM_NONE. */
static uint32_t pop_group(const EngramModel *m, uint32_t pop)
{
    for (uint32_t g = 0; g < m->hdr->nens_groups; g++)
        if (m->ens_groups[g].pop == pop)
            return g;
    return ENGRAM_NONE;
}

/* Ensemble of each neuron of a population (ENGRAM_NONE outside all), and their count. */
static int ensemble_of(const EngramNetwork *net, uint32_t pop, uint32_t **of, uint32_t *count,
                       EngramError *err)
{
    const EngramModel *m = net->model;
    uint32_t n = net->pops[pop].size, g = pop_group(m, pop);
    uint32_t *sizes = calloc(net->npops + 1, sizeof *sizes);
    *of = malloc(((size_t)n + 1) * sizeof **of);
    if (!sizes || !*of) {
        free(sizes);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for ensembles");
    }
    for (uint32_t i = 0; i < net->npops; i++)
        sizes[i] = net->pops[i].size;
    *count = 1;
    for (uint32_t i = 0; i < n; i++)
        (*of)[i] = g == ENGRAM_NONE ? 0 : ENGRAM_NONE;
    int rc = g == ENGRAM_NONE ? 0 : engram_ensemble_count(m, net->params, sizes, g, count, err);
    for (uint32_t k = 0; !rc && g != ENGRAM_NONE && k < *count; k++) {
        uint32_t lo, hi;
        rc = engram_ensemble_range(m, net->params, sizes, g, k, &lo, &hi, err);
        for (uint32_t i = lo; !rc && i < hi; i++)
            (*of)[i] = k;
    }
    free(sizes);
    return rc;
}

/* The cell of every synapse, in global CSR order (collective when split;
 * the buffers live on rank 0, which alone samples the means). */
static int init_cells(EngramNetwork *net, EngramWeightRecRt *wr, EngramError *err)
{
    const EngramProjRt *pr = &net->projs[wr->proj];
    const EngramProjDesc *d = pr->desc;
    const EngramModel *m = net->model;
    if (pop_group(m, d->src_pop) == ENGRAM_NONE && pop_group(m, d->dst_pop) == ENGRAM_NONE)
        return 0;
    bool root = net->rank == 0;
    uint64_t nsyn = root ? pr->nsyn_all : 0;
    uint32_t *src_of = NULL, *dst_of = NULL, *src = NULL, *tgt = NULL, ns = 0, nd = 0;
    int rc = ensemble_of(net, d->src_pop, &src_of, &ns, err);
    if (!rc)
        rc = ensemble_of(net, d->dst_pop, &dst_of, &nd, err);
    size_t cells = (size_t)ns * nd;
    double *tmp = NULL;
    if (!rc && root) {
        wr->ens_src = ns;
        wr->ens_dst = nd;
        wr->cell = malloc(((size_t)nsyn + 1) * sizeof *wr->cell);
        wr->ens_mean = calloc(wr->cap * cells + 1, sizeof *wr->ens_mean);
        wr->cell_sum = calloc(cells + 1, sizeof *wr->cell_sum);
        wr->cell_n = calloc(cells + 1, sizeof *wr->cell_n);
        src = malloc(((size_t)nsyn + 1) * sizeof *src);
        tgt = malloc(((size_t)nsyn + 1) * sizeof *tgt);
        tmp = malloc(((size_t)nsyn + 1) * sizeof *tmp);
        if (!wr->cell || !wr->ens_mean || !wr->cell_sum || !wr->cell_n || !src || !tgt || !tmp)
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the ensemble means "
                             "of %s", pr->name);
    }
    if (net->nranks > 1)
        rc = engram_comm_agree(rc, net->rank, err);
    if (!rc)
        rc = engram_proj_collect(net, wr->proj, tmp, true, src, tgt, err);
    for (uint64_t j = 0; !rc && root && j < nsyn; j++) {
        uint32_t a = src_of[src[j]], b = dst_of[tgt[j]];
        wr->cell[j] = a == ENGRAM_NONE || b == ENGRAM_NONE ? ENGRAM_NONE : a * nd + b;
    }
    free(src_of);
    free(dst_of);
    free(src);
    free(tgt);
    free(tmp);
    return rc;
}

int engram_weight_recs_init(EngramNetwork *net, EngramError *err)
{
    const EngramModel *m = net->model;
    net->nwrecs = m->hdr->nweight_recs;
    net->wrecs = calloc(net->nwrecs + 1, sizeof *net->wrecs);
    if (!net->wrecs)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t k = 0; k < net->nwrecs; k++) {
        EngramWeightRecRt *wr = &net->wrecs[k];
        wr->desc = &m->weight_recs[k];
        wr->proj = wr->desc->proj;
        int rc = init_rec(net, wr, err);
        if (!rc)
            rc = init_cells(net, wr, err);
        if (rc)
            return rc;
    }
    return 0;
}

void engram_weight_recs_free(EngramNetwork *net)
{
    for (uint32_t k = 0; net->wrecs && k < net->nwrecs; k++) {
        free(net->wrecs[k].times);
        free(net->wrecs[k].mean);
        free(net->wrecs[k].w);
        free(net->wrecs[k].scratch);
        free(net->wrecs[k].cell);
        free(net->wrecs[k].ens_mean);
        free(net->wrecs[k].cell_sum);
        free(net->wrecs[k].cell_n);
    }
    free(net->wrecs);
    net->wrecs = NULL;
    net->nwrecs = 0;
}

/* ---- sampling ------------------------------------------------------------------------ */

/* Accumulates synapse j's weight into its cell; ens_cells_close writes the means. */
static void cell_add(EngramWeightRecRt *wr, uint64_t j, double w)
{
    uint32_t c = wr->cell[j];
    if (c != ENGRAM_NONE) {
        wr->cell_sum[c] += w;
        wr->cell_n[c]++;
    }
}

static void ens_cells_close(EngramWeightRecRt *wr)
{
    size_t cells = (size_t)wr->ens_src * wr->ens_dst;
    double *out = wr->ens_mean + wr->len * cells;
    for (size_t c = 0; c < cells; c++) {
        out[c] = wr->cell_n[c] ? wr->cell_sum[c] / (double)wr->cell_n[c] : NAN;
        wr->cell_sum[c] = 0;
        wr->cell_n[c] = 0;
    }
}

/* More than one partition: the weights in global CSR order on rank 0. */
static void take_sample_split(const EngramNetwork *net, EngramWeightRecRt *wr, double t)
{
    uint64_t nsyn = net->projs[wr->proj].nsyn_all;
    bool root = net->rank == 0;
    double *buf = !root ? NULL : (wr->per_synapse ? wr->w + wr->len * nsyn : wr->scratch);
    EngramError e = {0};
    engram_proj_collect(net, wr->proj, buf, false, NULL, NULL, &e);
    double sum = 0;
    for (uint64_t j = 0; buf && j < nsyn; j++) {
        sum += buf[j];
        if (wr->cell)
            cell_add(wr, j, buf[j]);
    }
    if (wr->cell && root)
        ens_cells_close(wr);
    wr->times[wr->len] = t;
    wr->mean[wr->len] = nsyn ? sum / (double)nsyn : NAN;
    wr->len++;
}

static void take_sample(const EngramNetwork *net, EngramWeightRecRt *wr, double t)
{
    const EngramProjRt *pr = &net->projs[wr->proj];
    uint64_t nsyn = pr->csr.nsyn;
    if (wr->len >= wr->cap)
        return;   /* never: the plan counts every sample */
    if (net->nranks * net->nthreads > 1) {
        take_sample_split(net, wr, t);
        return;
    }
    double *row = wr->per_synapse ? wr->w + wr->len * nsyn : NULL;
    double sum = 0;
    for (uint64_t j = 0; j < nsyn; j++) {
        double w = engram_proj_weight(pr, net->precision, j);
        sum += w;
        if (row)
            row[j] = w;
        if (wr->cell)
            cell_add(wr, j, w);
    }
    if (wr->cell)
        ens_cells_close(wr);
    wr->times[wr->len] = t;
    wr->mean[wr->len] = nsyn ? sum / (double)nsyn : NAN;
    wr->len++;
}

void engram_weight_recs_sample(EngramNetwork *net, int64_t step, bool final)
{
    for (uint32_t k = 0; k < net->nwrecs; k++) {
        EngramWeightRecRt *wr = &net->wrecs[k];
        if (final)
            take_sample(net, wr, (double)net->nsteps * net->dt);
        else if (step % wr->every_steps == 0)
            take_sample(net, wr, (double)step * net->dt);
    }
}

/* ---- statistics ------------------------------------------------------------------------ */

const char *engram_weight_unit(const EngramModel *m, const EngramProjDesc *pj)
{
    return engram_model_str(m, m->params[pj->weight.arg[0]].unit);
}

/* The histogram range: the rule's bounds if the projection has both, else the data's. */
static void hist_range(const EngramNetwork *net, const EngramProjRt *pr,
                       const EngramWeightStats *st, double *lo, double *hi)
{
    const EngramProjDesc *d = pr->desc;
    if (pr->plastic && d->w_lo_param != ENGRAM_NONE && d->w_hi_param != ENGRAM_NONE) {
        *lo = net->params[d->w_lo_param];
        *hi = net->params[d->w_hi_param];
    } else if (pr->csr.nsyn) {
        *lo = st->min;
        *hi = st->max;
    } else {
        *lo = 0;
        *hi = 1;
    }
    if (*lo == *hi) {
        *lo -= 0.5;
        *hi += 0.5;
    }
}

/* Bin of w with the edges as written, bins [e_k, e_k+1), the last closed; -1 outside. */
static int hist_bin(const double *e, double w)
{
    const int n = ENGRAM_HIST_BINS;
    if (!(w >= e[0] && w <= e[n]))
        return -1;
    int k = (int)((w - e[0]) / (e[n] - e[0]) * n);
    k = k < 0 ? 0 : (k >= n ? n - 1 : k);
    while (k > 0 && w < e[k])
        k--;
    while (k < n - 1 && w >= e[k + 1])
        k++;
    return k;
}

void engram_weight_stats(const EngramNetwork *net, const EngramProjRt *pr, EngramWeightStats *st)
{
    memset(st, 0, sizeof *st);
    uint64_t nsyn = pr->csr.nsyn;
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    for (uint64_t j = 0; j < nsyn; j++) {
        double w = engram_proj_weight(pr, net->precision, j);
        sum += w;
        mn = w < mn ? w : mn;
        mx = w > mx ? w : mx;
    }
    st->mean = nsyn ? sum / (double)nsyn : NAN;
    st->min = nsyn ? mn : NAN;
    st->max = nsyn ? mx : NAN;
    double lo, hi;
    hist_range(net, pr, st, &lo, &hi);
    double step = (hi - lo) / ENGRAM_HIST_BINS;
    for (int k = 0; k < ENGRAM_HIST_BINS; k++)
        st->edges[k] = lo + k * step;
    st->edges[ENGRAM_HIST_BINS] = hi;
    for (uint64_t j = 0; j < nsyn; j++) {
        int k = hist_bin(st->edges, engram_proj_weight(pr, net->precision, j));
        if (k < 0)
            st->outside++;
        else
            st->counts[k]++;
    }
}
