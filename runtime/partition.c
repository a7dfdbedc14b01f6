/*
 * partition.c - what outputs need from a network that is split into
 * partitions (threads of a rank, ranks): the weights of a projection in
 * global CSR order, and, after the run, everything rank 0 writes.
 *
 * Global CSR order is source-major; within a source row the synapses go by
 * ascending target, and since partition b owns the b-th block of targets, a
 * row is the concatenation of that row in every partition, in partition
 * order (rank r, thread t -> partition r * nthreads + t).  So a rank lays out
 * its synapses row by row over its threads, and rank 0 interleaves the ranks
 * row by row.  Spikes recorded by each rank are sorted by (step, id); rank
 * blocks are ascending ids, so merging by step in rank order gives the
 * (step, id) order of one process.
 *
 * Order: collecting a projection (weights, or any per-synapse array),
 * gathering after the run.
 */
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

/* ---- collecting a projection ------------------------------------------------- */

/* Interleaves per-rank payloads (rank r's elements at pay + displ[r]) row by
 * row: cnt[r * nsrc + s] elements of row s from rank r. */
static void interleave(const uint8_t *pay, const size_t *displ, const uint64_t *cnt,
                       uint32_t nranks, uint32_t nsrc, size_t elem, uint8_t *out)
{
    size_t *cur = calloc(nranks + 1, sizeof *cur);
    if (!cur)
        return;
    size_t o = 0;
    for (uint32_t s = 0; s < nsrc; s++)
        for (uint32_t r = 0; r < nranks; r++) {
            size_t c = (size_t)cnt[(size_t)r * nsrc + s] * elem;
            memcpy(out + o, pay + displ[r] + cur[r], c);
            cur[r] += c;
            o += c;
        }
    free(cur);
}

/* Gathers `bytes` of this rank to rank 0 and interleaves them into out there. */
static int gather_rows(const EngramNetwork *net, const void *mine, size_t bytes,
                       const uint64_t *cnt_all, uint32_t nsrc, size_t elem, void *out,
                       EngramError *err)
{
    uint32_t R = net->nranks;
    size_t *sizes = calloc(R + 1, sizeof *sizes), *displ = calloc(R + 1, sizeof *displ);
    uint8_t *pay = NULL;
    int rc = (!sizes || !displ) ? ENGRAM_EXIT_RESOURCE : 0;
    if (!rc)
        engram_comm_allgather(&bytes, sizeof bytes, sizes);
    size_t total = 0;
    for (uint32_t r = 0; !rc && r < R; r++) {
        displ[r] = total;
        total += sizes[r];
    }
    if (!rc && net->rank == 0 && !(pay = malloc(total + 1)))
        rc = ENGRAM_EXIT_RESOURCE;
    if (!rc) {
        engram_comm_gatherv(mine, bytes, pay, sizes);
        if (net->rank == 0)
            interleave(pay, displ, cnt_all, R, nsrc, elem, out);
    }
    free(pay);
    free(sizes);
    free(displ);
    return rc ? engram_fail(err, rc, "out of memory gathering synapses") : 0;
}

int engram_proj_collect(const EngramNetwork *net, uint32_t j, double *out, bool ends,
                        uint32_t *src, uint32_t *tgt, EngramError *err)
{
    uint32_t T = net->nthreads, R = net->nranks;
    const EngramProjRt *p0 = &net->tprojs[0][j];
    const EngramPopRt *dst = &net->pops[p0->desc->dst_pop];
    uint32_t nsrc = p0->csr.nsrc;
    uint64_t n = 0;
    for (uint32_t t = 0; t < T; t++)
        n += net->tprojs[t][j].csr.nsyn;
    bool direct = R == 1;
    double *w = direct ? out : malloc((n + 1) * sizeof *w);
    uint32_t *s_ = direct ? src : (ends ? malloc((n + 1) * sizeof *s_) : NULL);
    uint32_t *t_ = direct ? tgt : (ends ? malloc((n + 1) * sizeof *t_) : NULL);
    uint64_t *cnt = direct ? NULL : calloc((size_t)nsrc + 1, sizeof *cnt);
    uint64_t *cnt_all = NULL;
    int rc = 0;
    if (!direct && (!w || !cnt || (ends && (!s_ || !t_))))
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory gathering %s", p0->name);
    uint64_t o = 0;
    for (uint32_t s = 0; s < nsrc && !rc; s++)
        for (uint32_t t = 0; t < T; t++) {
            const EngramProjRt *pr = &net->tprojs[t][j];
            for (uint64_t k = pr->csr.row[s]; k < pr->csr.row[s + 1]; k++, o++) {
                if (w)
                    w[o] = engram_proj_weight(pr, net->precision, k);
                if (s_)
                    s_[o] = s;
                if (t_)
                    t_[o] = pr->csr.col[k] + dst->lo;
            }
            if (cnt)
                cnt[s] += pr->csr.row[s + 1] - pr->csr.row[s];
        }
    if (direct || rc)
        goto done;
    if (net->rank == 0 && !(cnt_all = malloc(((size_t)R * nsrc + 1) * sizeof *cnt_all)))
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory gathering %s", p0->name);
    size_t *csz = calloc(R + 1, sizeof *csz);
    if (!csz && !rc)
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory gathering %s", p0->name);
    for (uint32_t r = 0; csz && r < R; r++)
        csz[r] = (size_t)nsrc * sizeof *cnt;
    if (!rc)
        engram_comm_gatherv(cnt, (size_t)nsrc * sizeof *cnt, cnt_all, csz);
    free(csz);
    if (!rc)
        rc = gather_rows(net, w, n * sizeof *w, cnt_all, nsrc, sizeof *w, out, err);
    if (!rc && ends)
        rc = gather_rows(net, s_, n * sizeof *s_, cnt_all, nsrc, sizeof *s_, src, err);
    if (!rc && ends)
        rc = gather_rows(net, t_, n * sizeof *t_, cnt_all, nsrc, sizeof *t_, tgt, err);
done:
    if (!direct) {
        free(w);
        free(s_);
        free(t_);
        free(cnt);
    }
    free(cnt_all);
    return rc;
}

/* The raw bytes of a per-synapse array (parts[t]: partition t's array in its
 * CSR order, elem bytes per synapse) in global CSR order on rank 0. */
int engram_proj_collect_raw(const EngramNetwork *net, uint32_t j, const void *const *parts,
                            size_t elem, void *out, EngramError *err)
{
    uint32_t T = net->nthreads, R = net->nranks, nsrc = net->tprojs[0][j].csr.nsrc;
    uint64_t n = 0;
    for (uint32_t t = 0; t < T; t++)
        n += net->tprojs[t][j].csr.nsyn;
    uint8_t *mine = R == 1 ? out : malloc(n * elem + 1);
    uint64_t *cnt = calloc((size_t)nsrc + 1, sizeof *cnt);
    uint64_t *cnt_all = net->rank == 0 ? malloc(((size_t)R * nsrc + 1) * sizeof *cnt_all) : NULL;
    size_t *csz = calloc(R + 1, sizeof *csz);
    int rc = (!mine || !cnt || !csz || (net->rank == 0 && !cnt_all)) ? ENGRAM_EXIT_RESOURCE : 0;
    rc = engram_comm_agree(rc ? engram_fail(err, rc, "out of memory gathering %s",
                                            net->tprojs[0][j].name) : 0, net->rank, err);
    size_t o = 0;
    for (uint32_t s = 0; s < nsrc && !rc; s++)   /* row by row over the threads */
        for (uint32_t t = 0; t < T; t++) {
            const EngramCsr *c = &net->tprojs[t][j].csr;
            size_t k = (size_t)(c->row[s + 1] - c->row[s]) * elem;
            if (mine && k)
                memcpy(mine + o, (const uint8_t *)parts[t] + c->row[s] * elem, k);
            o += k;
            cnt[s] += c->row[s + 1] - c->row[s];
        }
    for (uint32_t r = 0; r < R && !rc; r++)
        csz[r] = (size_t)nsrc * sizeof *cnt;
    if (!rc && R > 1) {
        engram_comm_gatherv(cnt, (size_t)nsrc * sizeof *cnt, cnt_all, csz);
        rc = gather_rows(net, mine, n * elem, cnt_all, nsrc, elem, out, err);
    }
    if (R > 1)
        free(mine);
    free(cnt);
    free(cnt_all);
    free(csz);
    return rc;
}

/* ---- gathering after the run ------------------------------------------------------- */

static int gather_spikes(EngramNetwork *net, EngramPopRt *p, EngramError *err)
{
    uint32_t R = net->nranks;
    size_t *n = calloc(R + 1, sizeof *n), *b8 = calloc(R + 1, sizeof *b8),
           *b4 = calloc(R + 1, sizeof *b4);
    int rc = (!n || !b8 || !b4) ? ENGRAM_EXIT_RESOURCE : 0;
    int64_t *st = NULL, *ost = NULL;
    uint32_t *id = NULL, *oid = NULL;
    size_t total = 0;
    if (!rc) {
        engram_comm_allgather(&p->rec_len, sizeof p->rec_len, n);
        for (uint32_t r = 0; r < R; r++) {
            b8[r] = n[r] * 8;
            b4[r] = n[r] * 4;
            total += n[r];
        }
    }
    if (!rc && net->rank == 0) {
        st = malloc((total + 1) * 8);
        id = malloc((total + 1) * 4);
        ost = malloc((total + 1) * 8);
        oid = malloc((total + 1) * 4);
        if (!st || !id || !ost || !oid)
            rc = ENGRAM_EXIT_RESOURCE;
    }
    /* every rank takes part even when rank 0 ran out of memory (it then drops the data) */
    engram_comm_gatherv(p->rec_step, p->rec_len * 8, rc ? NULL : st, b8);
    engram_comm_gatherv(p->rec_id, p->rec_len * 4, rc ? NULL : id, b4);
    if (!rc && net->rank == 0) {
        size_t *cur = calloc(R + 1, sizeof *cur), *end = calloc(R + 1, sizeof *end), o = 0;
        if (!cur || !end)
            rc = ENGRAM_EXIT_RESOURCE;
        for (uint32_t r = 0; !rc && r < R; r++) {
            cur[r] = r ? end[r - 1] : 0;
            end[r] = cur[r] + n[r];
        }
        while (!rc && o < total) {
            int64_t s = INT64_MAX;
            for (uint32_t r = 0; r < R; r++)
                if (cur[r] < end[r] && st[cur[r]] < s)
                    s = st[cur[r]];
            for (uint32_t r = 0; r < R; r++)
                while (cur[r] < end[r] && st[cur[r]] == s) {
                    ost[o] = s;
                    oid[o++] = id[cur[r]++];
                }
        }
        free(cur);
        free(end);
        if (!rc) {
            free(p->rec_step);
            free(p->rec_id);
            p->rec_step = ost;
            p->rec_id = oid;
            p->rec_len = p->rec_cap = total;
            ost = NULL;
            oid = NULL;
        }
    }
    free(st);
    free(id);
    free(ost);
    free(oid);
    free(n);
    free(b8);
    free(b4);
    return rc ? engram_fail(err, rc, "out of memory gathering the spikes of %s", p->name) : 0;
}

static bool recorded_per_synapse(const EngramNetwork *net, uint32_t j)
{
    for (uint32_t k = 0; k < net->nwrecs; k++)
        if (net->wrecs[k].proj == j && net->wrecs[k].per_synapse)
            return true;
    return false;
}

/* Rank 0's net->projs[j] becomes the global view: count, weights, endpoints. */
static int gather_proj(EngramNetwork *net, uint32_t j, EngramError *err)
{
    EngramProjRt *pr = &net->projs[j];
    uint64_t n = pr->nsyn_all;
    bool root = net->rank == 0, ends = recorded_per_synapse(net, j), wts = pr->weight != NULL;
    double *w = NULL;
    uint32_t *src = NULL, *tgt = NULL;
    uint64_t *row = NULL;
    int rc = 0;
    if (root) {
        w = malloc((n + 1) * sizeof *w);
        if (ends) {
            src = malloc((n + 1) * sizeof *src);
            tgt = malloc((n + 1) * sizeof *tgt);
            row = calloc((size_t)pr->csr.nsrc + 1, sizeof *row);
        }
        if (!w || (ends && (!src || !tgt || !row)))
            rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory gathering %s", pr->name);
    }
    rc = engram_comm_agree(rc, net->rank, err);
    if (!rc && (wts || ends))
        rc = engram_proj_collect(net, j, w, ends, src, tgt, err);
    if (!rc && root) {
        uint32_t nsrc = pr->csr.nsrc, ntgt = net->pops[pr->desc->dst_pop].size;
        void *weight = NULL;
        if (wts) {
            weight = malloc((n + 1) * (size_t)net->precision);
            if (!weight)
                rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory gathering %s",
                                 pr->name);
            for (uint64_t k = 0; weight && k < n; k++)
                engram_value_store(weight, net->precision, k, w[k]);
        }
        if (!rc) {
            engram_csr_free(&pr->csr);
            free(pr->weight);
            pr->weight = weight;
            pr->csr.nsrc = nsrc;
            pr->csr.ntgt = ntgt;
            pr->csr.nsyn = n;
            if (ends) {
                for (uint64_t k = 0; k < n; k++)
                    row[src[k] + 1]++;
                for (uint32_t s = 0; s < nsrc; s++)
                    row[s + 1] += row[s];
                pr->csr.row = row;
                pr->csr.col = tgt;
                row = NULL;
                tgt = NULL;
            }
        }
    }
    free(w);
    free(src);
    free(tgt);
    free(row);
    return rc;
}

int engram_network_gather(EngramNetwork *net, EngramError *err)
{
    int rc = 0;
    for (uint32_t i = 0; i < net->npops && !rc && net->nranks > 1; i++)
        if (net->pops[i].desc->record_spikes)
            rc = engram_comm_agree(gather_spikes(net, &net->pops[i], err), net->rank, err);
    for (uint32_t j = 0; j < net->nprojs && !rc && net->nranks * net->nthreads > 1; j++)
        rc = engram_comm_agree(gather_proj(net, j, err), net->rank, err);
    return rc;
}
