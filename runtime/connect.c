/*
 * connect.c - connectivity, drawn per target neuron, and the synapse CSR.
 *
 * The sources of each target are a pure function of (rule, seed, stream,
 * target): the generator for target t is RNG(seed, stream, t, 0..), so a
 * rank that owns some targets draws exactly the synapses the full network
 * would have, whatever the order, the threads or the number of ranks.
 * random(p) jumps from source to source with geometric gaps (O(#synapses),
 * not O(nsrc)); fixed_indegree(k) samples k distinct sources with Floyd's
 * algorithm; one_to_one and all_to_all need no random numbers.
 *
 * The CSR groups synapses by source (delivery walks a spiking source's row)
 * with targets ascending, and keeps each synapse's rank among its target's
 * sources so weights and delays can be drawn per (target, rank), again
 * independent of the partition.  It is built in two passes over the targets,
 * count then fill, so no target-major copy of the synapses is ever held.
 *
 * Order: vectors, per-target rules, counting, the CSR builder.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_core.h"

/* ---- vectors -------------------------------------------------------------- */

int engram_u32vec_reserve(EngramU32Vec *v, size_t extra)
{
    if (extra <= v->cap - v->len)
        return ENGRAM_CORE_OK;
    if (extra > SIZE_MAX / sizeof *v->data - v->len)
        return ENGRAM_CORE_ENOMEM;
    size_t need = v->len + extra, cap = v->cap ? v->cap : 16;
    while (cap < need)
        cap = cap > SIZE_MAX / sizeof *v->data / 2 ? need : cap * 2;
    uint32_t *data = realloc(v->data, cap * sizeof *data);
    if (!data)
        return ENGRAM_CORE_ENOMEM;
    v->data = data;
    v->cap = cap;
    return ENGRAM_CORE_OK;
}

int engram_u32vec_push(EngramU32Vec *v, uint32_t x)
{
    int rc = engram_u32vec_reserve(v, 1);
    if (rc == ENGRAM_CORE_OK)
        v->data[v->len++] = x;
    return rc;
}

void engram_u32vec_free(EngramU32Vec *v)
{
    free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

/* calloc of count elements, refusing sizes that overflow size_t. */
static void *alloc_array(uint64_t count, size_t size)
{
    if (count > SIZE_MAX / size)
        return NULL;
    return calloc(count ? (size_t)count : 1, size);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* ---- per-target rules ----------------------------------------------------- */

/* What every rule needs to know about one target. */
typedef struct TargetCtx {
    uint32_t nsrc, target;
    bool skip_self; /* the target is also a source and may not be its own */
} TargetCtx;

/* Sources 0..nsrc-1 except the target itself when excluded. */
static uint32_t available(const TargetCtx *t)
{
    return t->nsrc - (t->skip_self ? 1u : 0u);
}

/* Pushes source s unless it is the excluded target. */
static int push_source(const TargetCtx *t, EngramU32Vec *out, uint32_t s)
{
    if (t->skip_self && s == t->target)
        return ENGRAM_CORE_OK;
    return engram_u32vec_push(out, s);
}

/* Each pair independently with probability p: the gap to the next chosen
 * source is geometric(p).  Drawing over all sources and then dropping the
 * target keeps every other pair's probability exactly p.  With out == NULL
 * it only counts, into *count. */
static int rule_random(const TargetCtx *t, double p, EngramRng *r, EngramU32Vec *out,
                       uint64_t *count)
{
    uint64_t next = 0, n = 0;
    if (!(p >= 0.0 && p <= 1.0))
        return ENGRAM_CORE_EINVAL;
    double log_q = p > 0.0 && p < 1.0 ? log1p(-p) : 0.0;   /* once per target, not per draw */
    while (p > 0.0) {
        uint64_t gap = p < 1.0 ? engram_rng_geometric_log(r, log_q) : 0;
        if (gap >= t->nsrc - next)
            break;
        next += gap;
        if (!(t->skip_self && next == t->target)) {
            int rc = out ? engram_u32vec_push(out, (uint32_t)next) : ENGRAM_CORE_OK;
            if (rc)
                return rc;
            n++;
        }
        next++;
    }
    if (count)
        *count = n;
    return ENGRAM_CORE_OK;
}

/* k as a count of distinct sources: rounded, capped at what is available. */
static int indegree(const TargetCtx *t, double k, uint32_t *kk)
{
    if (!isfinite(k) || k < 0.0)
        return ENGRAM_CORE_EINVAL;
    double rounded = floor(k + 0.5);
    uint32_t avail = available(t);
    *kk = rounded >= (double)avail ? avail : (uint32_t)rounded;
    return ENGRAM_CORE_OK;
}

/* An open-addressing set of uint32 values for Floyd's sampler, stored as
 * value + 1 so that 0 marks an empty slot (values stay below 2^32 - 1). */
typedef struct U32Set {
    uint32_t *slot;
    uint32_t mask;
} U32Set;

/* Inserts x; returns false if it was already there. */
static bool set_insert(U32Set *s, uint32_t x)
{
    uint32_t i = (x * 0x9E3779B1u) & s->mask;
    while (s->slot[i] != 0) {
        if (s->slot[i] == x + 1)
            return false;
        i = (i + 1) & s->mask;
    }
    s->slot[i] = x + 1;
    return true;
}

/* Floyd's algorithm (Bentley & Floyd, CACM 30(9), 1987): k distinct indices
 * of 0..m-1, each k-subset equally likely, in k draws.  Index i names the
 * i-th available source, which skips the target when it is excluded. */
static int floyd_sample(const TargetCtx *t, uint32_t k, EngramRng *r, EngramU32Vec *out)
{
    uint32_t m = available(t);
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)k)
        cap *= 2; /* load <= 1/2 keeps probing short; k < m < 2^32 so cap <= 2^32 */
    U32Set set = {alloc_array(cap, sizeof(uint32_t)), (uint32_t)(cap - 1)};
    int rc = set.slot ? engram_u32vec_reserve(out, k) : ENGRAM_CORE_ENOMEM;
    for (uint32_t j = m - k; rc == ENGRAM_CORE_OK && j < m; j++) {
        uint32_t x = engram_rng_below(r, j + 1);
        if (!set_insert(&set, x)) {
            x = j; /* j is new: earlier rounds drew only from 0..j-1 */
            set_insert(&set, x);
        }
        out->data[out->len++] = t->skip_self && x >= t->target ? x + 1 : x;
    }
    free(set.slot);
    return rc;
}

static int rule_fixed_indegree(const TargetCtx *t, double k, EngramRng *r, EngramU32Vec *out)
{
    uint32_t kk;
    int rc = indegree(t, k, &kk);
    if (rc || kk == 0)
        return rc;
    size_t len0 = out->len;
    if (kk == available(t)) { /* every source: no draws needed */
        for (uint32_t s = 0; s < t->nsrc && rc == ENGRAM_CORE_OK; s++)
            rc = push_source(t, out, s);
        return rc;
    }
    rc = floyd_sample(t, kk, r, out);
    if (rc == ENGRAM_CORE_OK)
        qsort(out->data + len0, kk, sizeof *out->data, cmp_u32);
    return rc;
}

static int rule_all_to_all(const TargetCtx *t, EngramU32Vec *out)
{
    int rc = engram_u32vec_reserve(out, t->nsrc);
    for (uint32_t s = 0; s < t->nsrc && rc == ENGRAM_CORE_OK; s++)
        rc = push_source(t, out, s);
    return rc;
}

/* Checks the arguments shared by all rules and fills in the target's view. */
static int target_ctx(const EngramConnSpec *spec, uint32_t target, TargetCtx *t)
{
    if (target >= spec->ntgt)
        return ENGRAM_CORE_EINVAL;
    /* a projection onto its own population has one size */
    if (spec->same_population && spec->nsrc != spec->ntgt)
        return ENGRAM_CORE_EINVAL;
    if (spec->rule == ENGRAM_CONN_ONE_TO_ONE && spec->nsrc != spec->ntgt)
        return ENGRAM_CORE_EINVAL;
    t->nsrc = spec->nsrc;
    t->target = target;
    t->skip_self = spec->same_population && !spec->autapses;
    return ENGRAM_CORE_OK;
}

/* An ensemble endpoint: the rule sees the source window as a population of
 * its own, and the target by its place in the target window; its own index
 * among the sources (self-exclusion) only when the windows overlap there. */
static int window_sources(const EngramConnSpec *spec, uint32_t target, EngramU32Vec *out)
{
    if (target >= spec->ntgt || spec->src_hi > spec->nsrc || spec->tgt_hi > spec->ntgt ||
        spec->src_lo > spec->src_hi || spec->tgt_lo > spec->tgt_hi)
        return ENGRAM_CORE_EINVAL;
    if (target < spec->tgt_lo || target >= spec->tgt_hi)
        return ENGRAM_CORE_OK;
    uint32_t n = spec->src_hi - spec->src_lo, local = target - spec->tgt_lo;
    bool self = spec->same_population && !spec->autapses && target >= spec->src_lo &&
                target < spec->src_hi;
    TargetCtx t = {n, self ? target - spec->src_lo : local, self};
    if (spec->rule == ENGRAM_CONN_ONE_TO_ONE && n != spec->tgt_hi - spec->tgt_lo)
        return ENGRAM_CORE_EINVAL;
    size_t len0 = out->len;
    EngramRng r;
    engram_rng_init(&r, spec->seed, spec->stream, target, 0);
    int rc;
    switch (spec->rule) {
    case ENGRAM_CONN_RANDOM: rc = rule_random(&t, spec->p_or_k, &r, out, NULL); break;
    case ENGRAM_CONN_FIXED_INDEGREE: rc = rule_fixed_indegree(&t, spec->p_or_k, &r, out); break;
    case ENGRAM_CONN_ONE_TO_ONE:
        rc = self && spec->src_lo + local == target ? ENGRAM_CORE_OK   /* itself: no autapse */
                                                    : engram_u32vec_push(out, local);
        break;
    case ENGRAM_CONN_ALL_TO_ALL: rc = rule_all_to_all(&t, out); break;
    default: rc = ENGRAM_CORE_EINVAL; break;
    }
    for (size_t i = len0; rc == ENGRAM_CORE_OK && i < out->len; i++)
        out->data[i] += spec->src_lo;
    if (rc)
        out->len = len0;
    return rc;
}

static int spec_sources(const EngramConnSpec *spec, uint32_t target, EngramU32Vec *out)
{
    if (spec && out && spec->windowed)
        return window_sources(spec, target, out);
    TargetCtx t;
    int rc = out ? target_ctx(spec, target, &t) : ENGRAM_CORE_EINVAL;
    if (rc)
        return rc;
    size_t len0 = out->len;
    EngramRng r;
    engram_rng_init(&r, spec->seed, spec->stream, target, 0);
    switch (spec->rule) {
    case ENGRAM_CONN_RANDOM: rc = rule_random(&t, spec->p_or_k, &r, out, NULL); break;
    case ENGRAM_CONN_FIXED_INDEGREE: rc = rule_fixed_indegree(&t, spec->p_or_k, &r, out); break;
    case ENGRAM_CONN_ONE_TO_ONE: rc = push_source(&t, out, target); break;
    case ENGRAM_CONN_ALL_TO_ALL: rc = rule_all_to_all(&t, out); break;
    default: rc = ENGRAM_CORE_EINVAL; break;
    }
    if (rc)
        out->len = len0;
    return rc;
}

int engram_connect_sources(EngramConnRule rule, double p_or_k, uint64_t seed, uint32_t stream,
                           uint32_t nsrc, uint32_t ntgt, uint32_t target, bool same_population,
                           bool autapses, EngramU32Vec *out)
{
    EngramConnSpec spec = {.rule = rule, .p_or_k = p_or_k, .seed = seed, .stream = stream,
                           .nsrc = nsrc, .ntgt = ntgt, .same_population = same_population,
                           .autapses = autapses};
    return spec_sources(&spec, target, out);
}

int engram_connect_spec_sources(void *spec, uint32_t target, EngramU32Vec *out)
{
    return spec ? spec_sources(spec, target, out) : ENGRAM_CORE_EINVAL;
}

/* ---- counting ------------------------------------------------------------- */

static int count_target(const EngramConnSpec *spec, uint32_t target, uint64_t *n)
{
    if (spec->windowed) {   /* rare (ensemble endpoints): count by drawing */
        EngramU32Vec v = {0};
        int rc = window_sources(spec, target, &v);
        *n = v.len;
        engram_u32vec_free(&v);
        return rc;
    }
    TargetCtx t;
    int rc = target_ctx(spec, target, &t);
    uint32_t kk = 0;
    if (rc)
        return rc;
    EngramRng r;
    engram_rng_init(&r, spec->seed, spec->stream, target, 0);
    switch (spec->rule) {
    case ENGRAM_CONN_RANDOM: return rule_random(&t, spec->p_or_k, &r, NULL, n);
    case ENGRAM_CONN_FIXED_INDEGREE:
        rc = indegree(&t, spec->p_or_k, &kk);
        *n = kk;
        return rc;
    case ENGRAM_CONN_ONE_TO_ONE: *n = t.skip_self ? 0 : 1; return ENGRAM_CORE_OK;
    case ENGRAM_CONN_ALL_TO_ALL: *n = available(&t); return ENGRAM_CORE_OK;
    default: return ENGRAM_CORE_EINVAL;
    }
}

int engram_connect_count(const EngramConnSpec *spec, const uint32_t *targets, size_t ntargets,
                         uint64_t *nsyn)
{
    if (!spec || !nsyn)
        return ENGRAM_CORE_EINVAL;
    uint64_t total = 0;
    size_t n = targets ? ntargets : spec->ntgt;
    for (size_t i = 0; i < n; i++) {
        uint64_t c = 0;
        int rc = count_target(spec, targets ? targets[i] : (uint32_t)i, &c);
        if (rc)
            return rc;
        total += c;
    }
    *nsyn = total;
    return ENGRAM_CORE_OK;
}

/* ---- the CSR builder ------------------------------------------------------ */

/* State shared by the two passes. */
typedef struct CsrBuild {
    EngramCsr *csr;
    EngramSourcesFn sources;
    void *ctx;
    EngramU32Vec list;  /* sources of the current target */
    uint64_t *cursor;   /* next free slot of each source row, pass 2 */
} CsrBuild;

/* Calls the generator for one target and checks its contract: sorted,
 * distinct, in range. */
static int fetch_sources(CsrBuild *b, uint32_t target)
{
    b->list.len = 0;
    int rc = b->sources(b->ctx, target, &b->list);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->list.len; i++) {
        if (b->list.data[i] >= b->csr->nsrc || (i > 0 && b->list.data[i] <= b->list.data[i - 1]))
            return ENGRAM_CORE_EINVAL;
    }
    return ENGRAM_CORE_OK;
}

/* Pass 1: synapses per source into row[s + 1] (and per target into
 * tgt_row[t + 1]), then prefix sums. */
static int csr_count(CsrBuild *b, const uint32_t *order, size_t n)
{
    EngramCsr *c = b->csr;
    for (size_t i = 0; i < n; i++) {
        int rc = fetch_sources(b, order[i]);
        if (rc)
            return rc;
        for (size_t k = 0; k < b->list.len; k++)
            c->row[b->list.data[k] + 1]++;
        if (c->tgt_row)
            c->tgt_row[order[i] + 1] = b->list.len;
        c->nsyn += b->list.len;
    }
    for (uint32_t s = 0; s < c->nsrc; s++)
        c->row[s + 1] += c->row[s];
    for (uint32_t t = 0; c->tgt_row && t < c->ntgt; t++)
        c->tgt_row[t + 1] += c->tgt_row[t];
    return ENGRAM_CORE_OK;
}

/* Pass 2, targets ascending so each row's targets come out ascending. */
static int csr_fill(CsrBuild *b, const uint32_t *order, size_t n)
{
    EngramCsr *c = b->csr;
    for (size_t i = 0; i < n; i++) {
        uint32_t t = order[i];
        int rc = fetch_sources(b, t);
        if (rc)
            return rc;
        if (c->tgt_row && b->list.len != c->tgt_row[t + 1] - c->tgt_row[t])
            return ENGRAM_CORE_EINVAL; /* the generator is not deterministic */
        for (size_t k = 0; k < b->list.len; k++) {
            uint32_t s = b->list.data[k];
            if (b->cursor[s] >= c->row[s + 1])
                return ENGRAM_CORE_EINVAL; /* the generator is not deterministic */
            uint64_t pos = b->cursor[s]++;
            c->col[pos] = t;
            if (c->syn_target_rank)
                c->syn_target_rank[pos] = (uint32_t)k;
            if (c->tgt_order)
                c->tgt_order[c->tgt_row[t] + k] = (uint32_t)pos;
        }
    }
    for (uint32_t s = 0; s < c->nsrc; s++)
        if (b->cursor[s] != c->row[s + 1])
            return ENGRAM_CORE_EINVAL;
    return ENGRAM_CORE_OK;
}

/* A sorted copy of the targets (all of 0..ntgt-1 when NULL), refusing
 * duplicates and out-of-range ids. */
static int sorted_targets(const uint32_t *targets, size_t n, uint32_t ntgt, uint32_t **out)
{
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out)
        return ENGRAM_CORE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        (*out)[i] = targets ? targets[i] : (uint32_t)i;
    if (targets)
        qsort(*out, n, sizeof **out, cmp_u32);
    for (size_t i = 0; i < n; i++)
        if ((*out)[i] >= ntgt || (i > 0 && (*out)[i] == (*out)[i - 1]))
            return ENGRAM_CORE_EINVAL;
    return ENGRAM_CORE_OK;
}

static int csr_alloc_synapses(EngramCsr *c, unsigned flags)
{
    c->col = alloc_array(c->nsyn, sizeof *c->col);
    if (flags & ENGRAM_CSR_RANK)
        c->syn_target_rank = alloc_array(c->nsyn, sizeof *c->syn_target_rank);
    if ((flags & ENGRAM_CSR_POST_INDEX) && c->nsyn > UINT32_MAX)
        return ENGRAM_CORE_ERANGE;   /* the 32-bit post-side index */
    if (flags & ENGRAM_CSR_POST_INDEX)
        c->tgt_order = alloc_array(c->nsyn, sizeof *c->tgt_order);
    bool ok = c->col && (!(flags & ENGRAM_CSR_RANK) || c->syn_target_rank) &&
              (!(flags & ENGRAM_CSR_POST_INDEX) || c->tgt_order);
    return ok ? ENGRAM_CORE_OK : ENGRAM_CORE_ENOMEM;
}

static int csr_run(CsrBuild *b, const uint32_t *targets, size_t ntargets, unsigned flags)
{
    EngramCsr *c = b->csr;
    uint32_t *order = NULL;
    int rc = sorted_targets(targets, targets ? ntargets : c->ntgt, c->ntgt, &order);
    size_t n = targets ? ntargets : c->ntgt;
    c->row = alloc_array((uint64_t)c->nsrc + 1, sizeof *c->row);
    if (flags & ENGRAM_CSR_POST_INDEX)
        c->tgt_row = alloc_array((uint64_t)c->ntgt + 1, sizeof *c->tgt_row);
    if (rc == ENGRAM_CORE_OK && (!c->row || ((flags & ENGRAM_CSR_POST_INDEX) && !c->tgt_row)))
        rc = ENGRAM_CORE_ENOMEM;
    if (rc == ENGRAM_CORE_OK)
        rc = csr_count(b, order, n);
    if (rc == ENGRAM_CORE_OK)
        rc = csr_alloc_synapses(c, flags);
    if (rc == ENGRAM_CORE_OK) {
        b->cursor = alloc_array(c->nsrc ? c->nsrc : 1, sizeof *b->cursor);
        rc = b->cursor ? ENGRAM_CORE_OK : ENGRAM_CORE_ENOMEM;
    }
    if (rc == ENGRAM_CORE_OK) {
        memcpy(b->cursor, c->row, (size_t)c->nsrc * sizeof *b->cursor);
        rc = csr_fill(b, order, n);
    }
    free(order);
    return rc;
}

int engram_csr_build(uint32_t nsrc, uint32_t ntgt, const uint32_t *targets, size_t ntargets,
                     EngramSourcesFn sources, void *ctx, unsigned flags, EngramCsr *out)
{
    if (!out)
        return ENGRAM_CORE_EINVAL;
    memset(out, 0, sizeof *out);
    if (!sources)
        return ENGRAM_CORE_EINVAL;
    out->nsrc = nsrc;
    out->ntgt = ntgt;
    CsrBuild b = {out, sources, ctx, {NULL, 0, 0}, NULL};
    int rc = csr_run(&b, targets, ntargets, flags);
    engram_u32vec_free(&b.list);
    free(b.cursor);
    if (rc)
        engram_csr_free(out);
    return rc;
}

void engram_csr_free(EngramCsr *csr)
{
    if (!csr)
        return;
    free(csr->row);
    free(csr->col);
    free(csr->syn_target_rank);
    free(csr->tgt_row);
    free(csr->tgt_order);
    memset(csr, 0, sizeof *csr);
}
