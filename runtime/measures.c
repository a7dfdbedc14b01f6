/*
 * measures.c - sequence and ensemble measures over recorded spikes
 * (rt_measures.h; the definitions, with worked examples, in docs/measures.md).
 *
 * Everything rests on one sliding count per element: c_k(s) = spikes of
 * element k's neurons in steps (s - W, s].  c only changes at "events": a
 * spike entering at its step, or leaving W steps later.  The scanner below
 * walks the events of a range of steps in order with two pointers into the
 * spike array (O(spikes) whatever the number of steps), and a map from
 * neuron id to the elements holding it (elements may overlap) routes each
 * spike to its counts.  Onsets, episodes (hence replay) and sparseness are
 * loops over these events; recall, order and jitter only look at onsets.
 *
 * Order: helpers, the id -> element map, the event scanner, onsets, measures
 * of one trial, episodes, replay, rates, sparseness.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rt_core.h"
#include "rt_measures.h"

#define NONE SIZE_MAX
#define STEP_UNSET INT64_MAX

/* ---- helpers ------------------------------------------------------------ */

/* Steps are int64 and callers may pass extreme bounds (INT64_MIN as "no cue"),
 * so sums saturate instead of overflowing. */
static int64_t sat_add(int64_t a, int64_t b) /* b >= 0 */
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t sat_sub(int64_t a, int64_t b) /* b >= 0 */
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static int64_t sat_mul(int64_t a, int64_t b) /* a, b >= 0 */
{
    return a != 0 && b > INT64_MAX / a ? INT64_MAX : a * b;
}

/* later - earlier >= w, exactly, for later >= earlier (the difference fits
 * in uint64 even when it does not fit in int64). */
static bool apart(int64_t later, int64_t earlier, int64_t w)
{
    return (uint64_t)later - (uint64_t)earlier >= (uint64_t)w;
}

static bool spec_ok(const EngramSeqSpec *s)
{
    return s && s->nelems >= 1 && s->lo && s->hi && s->interval_steps >= 1 &&
           s->window_steps >= 1 && isfinite(s->threshold) && s->threshold > 0;
}

static uint32_t elem_size(const EngramSeqSpec *s, uint32_t k)
{
    return s->hi[k] > s->lo[k] ? s->hi[k] - s->lo[k] : 0;
}

static double elem_need(const EngramSeqSpec *s, uint32_t k)
{
    return s->threshold * (double)elem_size(s, k);
}

/* A NULL view, or one without arrays, is empty rather than a crash. */
static size_t view_len(const EngramSpikeView *v)
{
    return v && v->step && v->id ? v->n : 0;
}

/* First spike at a step >= t. */
static size_t lower_bound(const EngramSpikeView *v, size_t n, int64_t t)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (v->step[m] < t)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* ---- the id -> element map ---------------------------------------------- */

/* Neuron base + i belongs to elements elem[start[i] .. start[i+1]), ascending.
 * Element k's neurons also own slots off[k] .. off[k+1] (per-neuron marks). */
typedef struct ElemIndex {
    uint32_t base, span;
    size_t *start;
    uint32_t *elem;
    size_t *off;
} ElemIndex;

static void index_free(ElemIndex *ix)
{
    free(ix->start);
    free(ix->elem);
    free(ix->off);
    memset(ix, 0, sizeof *ix);
}

static void index_range(const EngramSeqSpec *s, ElemIndex *ix)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t k = 0; k < s->nelems; k++) {
        if (elem_size(s, k) == 0)
            continue;
        lo = s->lo[k] < lo ? s->lo[k] : lo;
        hi = s->hi[k] > hi ? s->hi[k] : hi;
    }
    ix->base = hi > lo ? lo : 0;
    ix->span = hi > lo ? hi - lo : 0;
}

/* Counts per id into start[i + 1], prefix-sums them, fills, then shifts the
 * fill cursors back into place: no second array of span entries. */
static void index_fill(const EngramSeqSpec *s, ElemIndex *ix)
{
    for (uint32_t k = 0; k < s->nelems; k++)
        for (uint32_t i = s->lo[k]; i < s->hi[k]; i++)
            ix->start[i - ix->base + 1]++;
    for (size_t i = 0; i < ix->span; i++)
        ix->start[i + 1] += ix->start[i];
    for (uint32_t k = 0; k < s->nelems; k++)
        for (uint32_t i = s->lo[k]; i < s->hi[k]; i++)
            ix->elem[ix->start[i - ix->base]++] = k;
    for (size_t i = ix->span; i > 0; i--)
        ix->start[i] = ix->start[i - 1];
    ix->start[0] = 0;
}

static int index_build(const EngramSeqSpec *s, ElemIndex *ix)
{
    memset(ix, 0, sizeof *ix);
    index_range(s, ix);
    ix->off = malloc(((size_t)s->nelems + 1) * sizeof *ix->off);
    ix->start = calloc((size_t)ix->span + 1, sizeof *ix->start);
    if (!ix->off || !ix->start)
        goto oom;
    ix->off[0] = 0;
    for (uint32_t k = 0; k < s->nelems; k++)
        ix->off[k + 1] = ix->off[k] + elem_size(s, k);
    size_t total = ix->off[s->nelems];
    if (total >= SIZE_MAX / sizeof *ix->elem ||
        !(ix->elem = malloc((total + 1) * sizeof *ix->elem)))
        goto oom;
    index_fill(s, ix);
    return 0;
oom:
    index_free(ix);
    return -1;
}

static void elems_of(const ElemIndex *ix, uint32_t id, size_t *b, size_t *e)
{
    if (id < ix->base || id - ix->base >= ix->span) {
        *b = *e = 0;
        return;
    }
    *b = ix->start[id - ix->base];
    *e = ix->start[id - ix->base + 1];
}

/* ---- the event scanner -------------------------------------------------- */

/* Spikes [tail, head) are inside the window, [head, end) still to come; the
 * last event added [added, head) and changed the counts of touched[]. */
typedef struct Scan {
    const EngramSpikeView *v;
    const ElemIndex *ix;
    int64_t window, limit;
    size_t tail, head, end, added;
    int64_t *count;
    uint32_t *touched;
    size_t ntouched;
    bool *is_touched;
} Scan;

static void scan_free(Scan *sc)
{
    free(sc->count);
    free(sc->touched);
    free(sc->is_touched);
    memset(sc, 0, sizeof *sc);
}

/* Counts spikes in [from, to) only: earlier ones never enter the window. */
static int scan_init(Scan *sc, const EngramSeqSpec *s, const EngramSpikeView *v,
                     const ElemIndex *ix, int64_t from, int64_t to)
{
    memset(sc, 0, sizeof *sc);
    sc->count = calloc(s->nelems, sizeof *sc->count);
    sc->touched = malloc(s->nelems * sizeof *sc->touched);
    sc->is_touched = calloc(s->nelems, sizeof *sc->is_touched);
    if (!sc->count || !sc->touched || !sc->is_touched) {
        scan_free(sc);
        return -1;
    }
    size_t n = view_len(v);
    sc->v = v;
    sc->ix = ix;
    sc->window = s->window_steps;
    sc->limit = to;
    sc->head = sc->tail = sc->added = to > from ? lower_bound(v, n, from) : 0;
    sc->end = to > from ? lower_bound(v, n, to) : 0;
    return 0;
}

/* The next step < limit at which a spike enters or leaves the window. */
static bool scan_peek(const Scan *sc, int64_t *e)
{
    bool any = false;
    if (sc->head < sc->end) {
        *e = sc->v->step[sc->head];
        any = true;
    }
    if (sc->tail < sc->head) {
        int64_t out = sat_add(sc->v->step[sc->tail], sc->window);
        if (!any || out < *e)
            *e = out;
        any = true;
    }
    return any && *e < sc->limit;
}

static void scan_route(Scan *sc, size_t i, int delta)
{
    size_t b, e;
    elems_of(sc->ix, sc->v->id[i], &b, &e);
    for (; b < e; b++) {
        uint32_t k = sc->ix->elem[b];
        sc->count[k] += delta;
        if (!sc->is_touched[k]) {
            sc->is_touched[k] = true;
            sc->touched[sc->ntouched++] = k;
        }
    }
}

/* c(e) needs the spikes that left at e gone and those of step e in. */
static void scan_apply(Scan *sc, int64_t e)
{
    for (size_t i = 0; i < sc->ntouched; i++)
        sc->is_touched[sc->touched[i]] = false;
    sc->ntouched = 0;
    for (; sc->tail < sc->head && apart(e, sc->v->step[sc->tail], sc->window); sc->tail++)
        scan_route(sc, sc->tail, -1);
    sc->added = sc->head;
    for (; sc->head < sc->end && sc->v->step[sc->head] == e; sc->head++)
        scan_route(sc, sc->head, +1);
}

static bool scan_next(Scan *sc, int64_t *e)
{
    if (!scan_peek(sc, e))
        return false;
    scan_apply(sc, *e);
    return true;
}

/* ---- onsets ------------------------------------------------------------- */

/* c only rises when a spike enters, so checking right after each entering
 * spike finds the first step with c >= need (later spikes of the same step
 * only add to it). */
int64_t engram_seq_onset(const EngramSeqSpec *s, uint32_t k, const EngramSpikeView *v, int64_t t0,
                         int64_t t_end)
{
    if (!spec_ok(s) || k >= s->nelems || elem_size(s, k) == 0 || t_end <= t0)
        return -1;
    uint32_t lo = s->lo[k], hi = s->hi[k];
    double need = elem_need(s, k);
    size_t n = view_len(v), i0 = lower_bound(v, n, t0), i1 = lower_bound(v, n, t_end);
    size_t tail = i0;
    int64_t c = 0;
    for (size_t i = i0; i < i1; i++) {
        if (v->id[i] < lo || v->id[i] >= hi)
            continue;
        for (; tail < i && apart(v->step[i], v->step[tail], s->window_steps); tail++)
            c -= v->id[tail] >= lo && v->id[tail] < hi;
        if ((double)++c >= need)
            return v->step[i];
    }
    return -1;
}

static void onsets_scan(const EngramSeqSpec *s, Scan *sc, int64_t *onset)
{
    uint32_t left = 0;
    for (uint32_t k = 0; k < s->nelems; k++)
        left += elem_size(s, k) > 0;
    int64_t e;
    while (left > 0 && scan_next(sc, &e)) {
        for (size_t i = 0; i < sc->ntouched; i++) {
            uint32_t k = sc->touched[i];
            if (onset[k] == -1 && (double)sc->count[k] >= elem_need(s, k)) {
                onset[k] = e;
                left--;
            }
        }
    }
}

/* Without memory for the shared scan, element by element gives the same
 * onsets in O(elements * spikes). */
void engram_seq_onsets(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t t0, int64_t t_end,
                       int64_t *onset)
{
    if (!s || !onset)
        return;
    for (uint32_t k = 0; k < s->nelems; k++)
        onset[k] = -1;
    if (!spec_ok(s) || t_end <= t0)
        return;
    ElemIndex ix;
    Scan sc;
    if (index_build(s, &ix) == 0 && scan_init(&sc, s, v, &ix, t0, t_end) == 0) {
        onsets_scan(s, &sc, onset);
        scan_free(&sc);
    } else {
        for (uint32_t k = 0; k < s->nelems; k++)
            onset[k] = engram_seq_onset(s, k, v, t0, t_end);
    }
    index_free(&ix);
}

/* ---- measures of one trial ---------------------------------------------- */

double engram_measure_recall(const EngramSeqSpec *s, const int64_t *onset, int64_t t0)
{
    if (!s || !onset || s->nelems == 0 || s->interval_steps < 1)
        return NAN;
    uint32_t counted = 0;
    int64_t last = 0;
    for (uint32_t k = 0; k < s->nelems; k++) {
        int64_t o = onset[k];
        int64_t deadline = sat_add(t0, sat_mul((int64_t)k + 1, s->interval_steps));
        if (o == -1 || o < t0 || o > deadline || (counted > 0 && o <= last))
            continue;
        counted++;
        last = o;
    }
    return (double)counted / s->nelems;
}

typedef struct RankedOnset {
    int64_t onset;
    double x, y; /* ranks of element index and of onset, 1-based */
} RankedOnset;

static int cmp_ranked(const void *pa, const void *pb)
{
    const RankedOnset *a = pa, *b = pb;
    if (a->onset != b->onset)
        return a->onset < b->onset ? -1 : 1;
    return (a->x > b->x) - (a->x < b->x);
}

/* Ties share the mean of the ranks they span. */
static void average_ranks(RankedOnset *r, size_t m)
{
    for (size_t g0 = 0, g1; g0 < m; g0 = g1) {
        for (g1 = g0 + 1; g1 < m && r[g1].onset == r[g0].onset; g1++)
            ;
        double rank = ((double)g0 + 1 + (double)g1) / 2;
        for (size_t i = g0; i < g1; i++)
            r[i].y = rank;
    }
}

/* Pearson correlation of the ranks; both means are (m + 1) / 2 because
 * average ranks keep the sum 1 + ... + m. */
static double rank_correlation(const RankedOnset *r, size_t m)
{
    double mean = ((double)m + 1) / 2, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < m; i++) {
        double dx = r[i].x - mean, dy = r[i].y - mean;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (syy == 0 || sxx == 0)
        return NAN;
    double rho = sxy / sqrt(sxx * syy);
    return rho > 1 ? 1 : rho < -1 ? -1 : rho;
}

double engram_measure_order(const EngramSeqSpec *s, const int64_t *onset)
{
    if (!s || !onset)
        return NAN;
    size_t m = 0;
    for (uint32_t k = 0; k < s->nelems; k++)
        m += onset[k] != -1;
    if (m < 2)
        return NAN;
    RankedOnset *r = malloc(m * sizeof *r);
    if (!r)
        return NAN;
    for (uint32_t k = 0, i = 0; k < s->nelems; k++)
        if (onset[k] != -1) {
            r[i].onset = onset[k];
            r[i].x = (double)i + 1;
            i++;
        }
    qsort(r, m, sizeof *r, cmp_ranked);
    average_ranks(r, m);
    double rho = rank_correlation(r, m);
    free(r);
    return rho;
}

/* Two passes (mean, then squared deviations): no cancellation for onsets
 * far from zero. */
static double element_sd(const double *onset_ms, size_t ntrials, uint32_t nelems, uint32_t k)
{
    double sum = 0, ss = 0;
    size_t n = 0;
    for (size_t t = 0; t < ntrials; t++) {
        double x = onset_ms[t * nelems + k];
        if (isfinite(x)) {
            sum += x;
            n++;
        }
    }
    if (n < 2)
        return NAN;
    double mean = sum / (double)n;
    for (size_t t = 0; t < ntrials; t++) {
        double x = onset_ms[t * nelems + k];
        if (isfinite(x))
            ss += (x - mean) * (x - mean);
    }
    return sqrt(ss / (double)(n - 1));
}

double engram_measure_jitter(const double *onset_ms, size_t ntrials, uint32_t nelems)
{
    if (!onset_ms || ntrials < 2 || nelems == 0)
        return NAN;
    double sum = 0;
    uint32_t used = 0;
    for (uint32_t k = 0; k < nelems; k++) {
        double sd = element_sd(onset_ms, ntrials, nelems, k);
        if (!isnan(sd)) {
            sum += sd;
            used++;
        }
    }
    return used ? sum / used : NAN;
}

/* ---- episodes ----------------------------------------------------------- */

void engram_episodes_free(EngramEpisodes *e)
{
    if (!e)
        return;
    free(e->ep);
    memset(e, 0, sizeof *e);
}

static int episodes_push(EngramEpisodes *out, int64_t onset, int64_t end, uint32_t k)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *out->ep)
            return -1;
        EngramEpisode *ep = realloc(out->ep, cap * sizeof *ep);
        if (!ep)
            return -1;
        out->ep = ep;
        out->cap = cap;
    }
    out->ep[out->n++] = (EngramEpisode){onset, end, k};
    return 0;
}

static int cmp_episode(const void *pa, const void *pb)
{
    const EngramEpisode *a = pa, *b = pb;
    if (a->onset != b->onset)
        return a->onset < b->onset ? -1 : 1;
    return (a->elem > b->elem) - (a->elem < b->elem);
}

/* Hysteresis: on at c >= need, off only at c < need / 2, so the flicker of
 * one burst around the threshold gives one episode.  open[k] is the episode
 * element k is in, or NONE. */
static int episodes_scan(const EngramSeqSpec *s, Scan *sc, size_t *open, EngramEpisodes *out)
{
    int64_t e;
    while (scan_next(sc, &e)) {
        for (size_t i = 0; i < sc->ntouched; i++) {
            uint32_t k = sc->touched[i];
            double c = (double)sc->count[k], need = elem_need(s, k);
            if (open[k] == NONE && c >= need) {
                open[k] = out->n;
                if (episodes_push(out, e, sc->limit, k))
                    return -1;
            } else if (open[k] != NONE && c < need / 2) {
                out->ep[open[k]].end = e;
                open[k] = NONE;
            }
        }
    }
    return 0;
}

int engram_seq_episodes(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t from, int64_t to,
                        EngramEpisodes *out)
{
    if (!out)
        return -2;
    out->n = 0;
    if (!spec_ok(s))
        return -2;
    ElemIndex ix;
    Scan sc;
    size_t *open = malloc(s->nelems * sizeof *open);
    int rc = -1;
    if (open && index_build(s, &ix) == 0) {
        if (scan_init(&sc, s, v, &ix, from, to) == 0) {
            for (uint32_t k = 0; k < s->nelems; k++)
                open[k] = NONE;
            rc = episodes_scan(s, &sc, open, out);
            scan_free(&sc);
        }
        index_free(&ix);
    }
    free(open);
    if (rc == 0 && out->n > 1) /* ep is NULL while empty, and qsort wants a pointer */
        qsort(out->ep, out->n, sizeof *out->ep, cmp_episode);
    return rc;
}

/* ---- replay ------------------------------------------------------------- */

/* Episodes grouped by element: element k's are ep[byelem[first[k] ..
 * first[k+1])], by onset.  pos, chain and used are scratch for one order. */
typedef struct ReplayCtx {
    const EngramEpisode *ep;
    size_t nep;
    uint32_t n, min_chain;
    int64_t interval;
    size_t *first, *byelem, *chain;
    uint32_t *pos, *perm;
    unsigned char *used;
} ReplayCtx;

static void replay_free(ReplayCtx *c)
{
    free(c->first);
    free(c->byelem);
    free(c->chain);
    free(c->pos);
    free(c->perm);
    free(c->used);
}

/* A counting sort by element keeps each element's episodes in onset order. */
static int replay_init(ReplayCtx *c, const EngramSeqSpec *s, const EngramEpisodes *ep)
{
    memset(c, 0, sizeof *c);
    c->ep = ep->ep;
    c->nep = ep->n;
    c->n = s->nelems;
    c->min_chain = s->nelems < ENGRAM_REPLAY_MIN_CHAIN ? s->nelems : ENGRAM_REPLAY_MIN_CHAIN;
    c->interval = s->interval_steps;
    c->first = calloc((size_t)c->n + 1, sizeof *c->first);
    c->byelem = malloc((c->nep + 1) * sizeof *c->byelem);
    c->chain = malloc((size_t)c->n * sizeof *c->chain);
    c->pos = malloc((size_t)c->n * sizeof *c->pos);
    c->perm = calloc(c->n, sizeof *c->perm); /* zeroed: gcc -O2 cannot see n >= 2 */
    c->used = malloc(c->nep + 1);
    if (!c->first || !c->byelem || !c->chain || !c->pos || !c->perm || !c->used)
        return -1;
    for (size_t i = 0; i < c->nep; i++)
        c->first[c->ep[i].elem + 1]++;
    for (uint32_t k = 0; k < c->n; k++)
        c->first[k + 1] += c->first[k];
    for (size_t i = 0; i < c->nep; i++)
        c->byelem[c->first[c->ep[i].elem]++] = i;
    for (uint32_t k = c->n; k > 0; k--)
        c->first[k] = c->first[k - 1];
    c->first[0] = 0;
    return 0;
}

/* The earliest unused episode of element k with onset in (after, after + interval]. */
static size_t next_unused(const ReplayCtx *c, uint32_t k, int64_t after)
{
    size_t a = c->first[k], b = c->first[k + 1];
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (c->ep[c->byelem[m]].onset <= after)
            a = m + 1;
        else
            b = m;
    }
    for (; a < c->first[k + 1]; a++) {
        size_t j = c->byelem[a];
        if ((uint64_t)c->ep[j].onset - (uint64_t)after > (uint64_t)c->interval)
            break;
        if (!c->used[j])
            return j;
    }
    return NONE;
}

/* Extends the chain that episode i starts along the tested order as far as
 * it goes, taking the earliest fitting episode at each link. */
static uint32_t chain_from(const ReplayCtx *c, const uint32_t *order, size_t i)
{
    uint32_t p = c->pos[c->ep[i].elem], len = 1;
    int64_t cur = c->ep[i].onset;
    c->chain[0] = i;
    while (p + len < c->n) {
        size_t j = next_unused(c, order[p + len], cur);
        if (j == NONE)
            break;
        c->chain[len++] = j;
        cur = c->ep[j].onset;
    }
    return len;
}

/* Greedy in onset order: a chain of at least min_chain elements is one event
 * and its episodes are used up; a shorter one leaves them free. */
static double count_events(const ReplayCtx *c, const uint32_t *order)
{
    for (uint32_t p = 0; p < c->n; p++)
        c->pos[order[p]] = p;
    memset(c->used, 0, c->nep + 1);
    double events = 0;
    for (size_t i = 0; i < c->nep; i++) {
        if (c->used[i])
            continue;
        uint32_t len = chain_from(c, order, i);
        if (len < c->min_chain)
            continue;
        events++;
        for (uint32_t q = 0; q < len; q++)
            c->used[c->chain[q]] = 1;
    }
    return events;
}

/* Lexicographic successor; false after the last (descending) permutation. */
static bool next_permutation(uint32_t *a, uint32_t n)
{
    if (n < 2)
        return false;
    uint32_t i = n - 1;
    while (i > 0 && a[i - 1] >= a[i])
        i--;
    if (i == 0)
        return false;
    uint32_t j = n - 1;
    while (a[j] <= a[i - 1])
        j--;
    uint32_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
    for (uint32_t l = i, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

static bool is_identity(const uint32_t *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != i)
            return false;
    return true;
}

/* Fisher-Yates from the identity, drawn again if it gives the identity. */
static void random_order(EngramRng *r, uint32_t *a, uint32_t n)
{
    do {
        for (uint32_t i = 0; i < n; i++)
            a[i] = i;
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = engram_rng_below(r, i + 1);
            uint32_t t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    } while (is_identity(a, n));
}

/* n! - 1 <= ENGRAM_REPLAY_SHUFFLES exactly when n <= 4: then every
 * non-identity order, in lexicographic order; else random ones. */
static uint32_t shuffled_counts(ReplayCtx *c, uint64_t seed, uint32_t stream, double *counts)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->n; i++)
        c->perm[i] = i;
    if (c->n <= 4) {
        while (next_permutation(c->perm, c->n))
            counts[k++] = count_events(c, c->perm);
        return k;
    }
    EngramRng r;
    engram_rng_init(&r, seed, stream, 0, 0);
    for (; k < ENGRAM_REPLAY_SHUFFLES; k++) {
        random_order(&r, c->perm, c->n);
        counts[k] = count_events(c, c->perm);
    }
    return k;
}

static void mean_sd(const double *x, uint32_t n, double *mean, double *sd)
{
    double sum = 0, ss = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += x[i];
    *mean = n ? sum / n : 0;
    for (uint32_t i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n ? sqrt(ss / n) : 0;
}

static int replay_count(const EngramSeqSpec *s, const EngramEpisodes *ep, uint64_t seed,
                        uint32_t stream, EngramReplayStats *out)
{
    ReplayCtx c;
    double counts[ENGRAM_REPLAY_SHUFFLES];
    int rc = replay_init(&c, s, ep);
    if (rc == 0) {
        for (uint32_t i = 0; i < c.n; i++)
            c.perm[i] = i;
        out->count = count_events(&c, c.perm);
        out->shuffles = shuffled_counts(&c, seed, stream, counts);
        mean_sd(counts, out->shuffles, &out->chance, &out->chance_sd);
    }
    replay_free(&c);
    return rc;
}

int engram_measure_replay(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t from,
                          int64_t to, uint64_t seed, uint32_t stream, EngramReplayStats *out)
{
    if (!out)
        return -2;
    if (!spec_ok(s)) {
        *out = (EngramReplayStats){NAN, NAN, NAN, 0};
        return -2;
    }
    *out = (EngramReplayStats){0, 0, 0, 0};
    if (s->nelems < 2)
        return 0;
    EngramEpisodes ep = {0};
    int rc = engram_seq_episodes(s, v, from, to, &ep);
    if (rc == 0)
        rc = replay_count(s, &ep, seed, stream, out);
    engram_episodes_free(&ep);
    if (rc)
        *out = (EngramReplayStats){NAN, NAN, NAN, 0};
    return rc;
}

/* ---- rates -------------------------------------------------------------- */

double engram_measure_rate(const EngramSpikeView *v, uint32_t lo, uint32_t hi, int64_t from,
                           int64_t to, double dt)
{
    if (!isfinite(dt) || dt <= 0)
        return NAN;
    if (hi <= lo || to <= from)
        return 0;
    size_t n = view_len(v), i0 = lower_bound(v, n, from), i1 = lower_bound(v, n, to);
    size_t count = 0;
    for (size_t i = i0; i < i1; i++)
        count += v->id[i] >= lo && v->id[i] < hi;
    double seconds = ((double)to - (double)from) * dt / 1000;
    return (double)count / ((double)(hi - lo) * seconds);
}

double engram_measure_active_fraction(const EngramSpikeView *v, uint32_t lo, uint32_t hi,
                                      int64_t from, int64_t to)
{
    if (hi <= lo || to <= from)
        return 0;
    uint32_t size = hi - lo;
    unsigned char *seen = calloc(size / 8 + 1, 1);
    if (!seen)
        return NAN;
    size_t n = view_len(v), i0 = lower_bound(v, n, from), i1 = lower_bound(v, n, to);
    uint32_t active = 0;
    for (size_t i = i0; i < i1; i++) {
        if (v->id[i] < lo || v->id[i] >= hi)
            continue;
        uint32_t j = v->id[i] - lo;
        unsigned char bit = (unsigned char)(1u << (j % 8));
        active += !(seen[j / 8] & bit);
        seen[j / 8] |= bit;
    }
    free(seen);
    return (double)active / size;
}

/* ---- sparseness --------------------------------------------------------- */

/* Per activated element (onset[k] in [t0, t_end)): neurons count from step
 * from[k] = max(t0, onset - W + 1); the episode ends at end[k] = min(first
 * step after the onset with c < need / 2, onset + interval, t_end).
 * first[slot] is the first counted spike of each (element, neuron). */
typedef struct Sparse {
    const EngramSeqSpec *s;
    const int64_t *onset;
    int64_t t0, t_end;
    uint32_t *by_onset; /* the activated elements, by onset: the order they are armed in */
    uint32_t nact, armed;
    int64_t *from, *end, *first;
    bool *closed;
    uint32_t *recheck;
    uint32_t nrecheck;
} Sparse;

static void sparse_free(Sparse *sp)
{
    free(sp->by_onset);
    free(sp->from);
    free(sp->end);
    free(sp->first);
    free(sp->closed);
    free(sp->recheck);
}

static bool activated(const Sparse *sp, uint32_t k)
{
    int64_t o = sp->onset[k];
    return o != -1 && o >= sp->t0 && o < sp->t_end && elem_size(sp->s, k) > 0;
}

/* qsort has no context argument: sort (onset, element) pairs instead. */
typedef struct OnsetKey {
    int64_t onset;
    uint32_t k;
} OnsetKey;

static int cmp_onset_key(const void *pa, const void *pb)
{
    const OnsetKey *a = pa, *b = pb;
    if (a->onset != b->onset)
        return a->onset < b->onset ? -1 : 1;
    return (a->k > b->k) - (a->k < b->k);
}

static int sparse_order(Sparse *sp)
{
    OnsetKey *key = malloc(((size_t)sp->nact + 1) * sizeof *key);
    if (!key)
        return -1;
    for (uint32_t k = 0, i = 0; k < sp->s->nelems; k++)
        if (activated(sp, k))
            key[i++] = (OnsetKey){sp->onset[k], k};
    qsort(key, sp->nact, sizeof *key, cmp_onset_key);
    for (uint32_t i = 0; i < sp->nact; i++)
        sp->by_onset[i] = key[i].k;
    free(key);
    return 0;
}

static int sparse_init(Sparse *sp, const ElemIndex *ix)
{
    uint32_t n = sp->s->nelems;
    size_t slots = ix->off[n];
    sp->by_onset = malloc(((size_t)n + 1) * sizeof *sp->by_onset);
    sp->from = malloc((size_t)n * sizeof *sp->from);
    sp->end = malloc((size_t)n * sizeof *sp->end);
    sp->closed = calloc(n, sizeof *sp->closed);
    sp->recheck = malloc((size_t)n * sizeof *sp->recheck);
    if (slots < SIZE_MAX / sizeof *sp->first)
        sp->first = malloc((slots + 1) * sizeof *sp->first);
    if (!sp->by_onset || !sp->from || !sp->end || !sp->closed || !sp->recheck || !sp->first)
        return -1;
    for (size_t i = 0; i < slots; i++)
        sp->first[i] = STEP_UNSET;
    for (uint32_t k = 0; k < n; k++) {
        if (!activated(sp, k))
            continue;
        int64_t o = sp->onset[k], cap = sat_add(o, sp->s->interval_steps);
        int64_t back = sat_sub(o, sp->s->window_steps - 1);
        sp->from[k] = back > sp->t0 ? back : sp->t0;
        sp->end[k] = cap < sp->t_end ? cap : sp->t_end;
        sp->nact++;
    }
    return sparse_order(sp);
}

static void sparse_close(Sparse *sp, uint32_t k, int64_t at)
{
    if (sp->closed[k])
        return;
    sp->closed[k] = true;
    if (at < sp->end[k])
        sp->end[k] = at;
}

/* Called before the changes of event step e: c still holds c(onset) for the
 * elements with onset < e not yet armed.  If that is already below half,
 * the episode ends at onset + 1 - unless e is that step, which then decides. */
static void sparse_arm(Sparse *sp, const Scan *sc, int64_t e, bool final)
{
    sp->nrecheck = 0;
    while (sp->armed < sp->nact) {
        uint32_t k = sp->by_onset[sp->armed];
        int64_t o = sp->onset[k];
        if (!final && o >= e)
            break;
        sp->armed++;
        if ((double)sc->count[k] >= elem_need(sp->s, k) / 2)
            continue;
        if (final || o + 1 < e)
            sparse_close(sp, k, o + 1);
        else
            sp->recheck[sp->nrecheck++] = k;
    }
}

static void sparse_mark(Sparse *sp, const Scan *sc, const ElemIndex *ix, int64_t e)
{
    for (size_t i = sc->added; i < sc->head; i++) {
        uint32_t id = sc->v->id[i];
        size_t b, end;
        elems_of(ix, id, &b, &end);
        for (; b < end; b++) {
            uint32_t k = ix->elem[b];
            if (!activated(sp, k) || e < sp->from[k])
                continue;
            int64_t *f = &sp->first[ix->off[k] + (id - sp->s->lo[k])];
            if (*f == STEP_UNSET)
                *f = e;
        }
    }
}

static void sparse_drops(Sparse *sp, const Scan *sc, int64_t e)
{
    for (size_t i = 0; i < sc->ntouched + sp->nrecheck; i++) {
        uint32_t k = i < sc->ntouched ? sc->touched[i] : sp->recheck[i - sc->ntouched];
        if (activated(sp, k) && sp->onset[k] < e &&
            (double)sc->count[k] < elem_need(sp->s, k) / 2)
            sparse_close(sp, k, e);
    }
}

static void sparse_scan(Sparse *sp, Scan *sc, const ElemIndex *ix)
{
    int64_t e;
    while (scan_peek(sc, &e)) {
        sparse_arm(sp, sc, e, false);
        scan_apply(sc, e);
        sparse_mark(sp, sc, ix, e);
        sparse_drops(sp, sc, e);
    }
    sparse_arm(sp, sc, 0, true);
}

static double sparse_mean(const Sparse *sp, const ElemIndex *ix)
{
    double sum = 0;
    for (uint32_t i = 0; i < sp->nact; i++) {
        uint32_t k = sp->by_onset[i], fired = 0;
        for (size_t j = ix->off[k]; j < ix->off[k + 1]; j++)
            fired += sp->first[j] < sp->end[k];
        sum += (double)fired / elem_size(sp->s, k);
    }
    return sum / sp->nact;
}

/* Scans from the earliest from[k] to the latest end cap: c(s) is exact for
 * every s >= onset[k] because the spikes before from[k] have left the window
 * by then (or precede t0). */
static double sparse_run(Sparse *sp, const EngramSpikeView *v, const ElemIndex *ix)
{
    int64_t a = INT64_MAX, b = INT64_MIN;
    for (uint32_t i = 0; i < sp->nact; i++) {
        uint32_t k = sp->by_onset[i];
        a = sp->from[k] < a ? sp->from[k] : a;
        b = sp->end[k] > b ? sp->end[k] : b;
    }
    Scan sc;
    if (scan_init(&sc, sp->s, v, ix, a, b))
        return NAN;
    sparse_scan(sp, &sc, ix);
    scan_free(&sc);
    return sparse_mean(sp, ix);
}

double engram_measure_sparseness_after(const EngramSeqSpec *s, const EngramSpikeView *v,
                                       const int64_t *onset, int64_t t0, int64_t t_end)
{
    if (!spec_ok(s) || !onset)
        return NAN;
    Sparse sp = {.s = s, .onset = onset, .t0 = t0, .t_end = t_end};
    ElemIndex ix;
    double result = NAN;
    if (index_build(s, &ix))
        return NAN;
    if (sparse_init(&sp, &ix) == 0 && sp.nact > 0)
        result = sparse_run(&sp, v, &ix);
    sparse_free(&sp);
    index_free(&ix);
    return result;
}

double engram_measure_sparseness(const EngramSeqSpec *s, const EngramSpikeView *v,
                                 const int64_t *onset, int64_t t_end)
{
    return engram_measure_sparseness_after(s, v, onset, INT64_MIN, t_end);
}
