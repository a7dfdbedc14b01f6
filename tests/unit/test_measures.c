/*
 * test_measures.c - the sequence and ensemble measures (runtime/measures.c)
 * on synthetic spike trains whose answers are worked out by hand in the
 * comments (and, for the examples of docs/measures.md, in the document).
 *
 * Order: the train builder, onsets, recall and order, jitter, episodes and
 * hysteresis, replay, rates, sparseness, the definitions step by step (brute
 * force against the event-driven code), degenerate inputs, a large train.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_core.h"
#include "rt_measures.h"

/* ---- the train builder -------------------------------------------------- */

typedef struct Spike {
    int64_t step;
    uint32_t id;
} Spike;

/* Spikes in any order; train_view sorts them by step then id and drops
 * duplicates, as the engine records them. */
typedef struct Train {
    Spike *sp;
    size_t n, cap;
    int64_t *step;
    uint32_t *id;
} Train;

static void add(Train *t, int64_t step, uint32_t id)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->sp = realloc(t->sp, t->cap * sizeof *t->sp);
        cr_assert_not_null(t->sp);
    }
    t->sp[t->n++] = (Spike){step, id};
}

static void add_burst(Train *t, int64_t step, uint32_t lo, uint32_t hi)
{
    for (uint32_t i = lo; i < hi; i++)
        add(t, step, i);
}

static int cmp_spike(const void *pa, const void *pb)
{
    const Spike *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static EngramSpikeView train_view(Train *t)
{
    qsort(t->sp, t->n, sizeof *t->sp, cmp_spike);
    free(t->step);
    free(t->id);
    t->step = malloc((t->n + 1) * sizeof *t->step);
    t->id = malloc((t->n + 1) * sizeof *t->id);
    cr_assert(t->step && t->id);
    size_t m = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (m > 0 && t->step[m - 1] == t->sp[i].step && t->id[m - 1] == t->sp[i].id)
            continue;
        t->step[m] = t->sp[i].step;
        t->id[m++] = t->sp[i].id;
    }
    return (EngramSpikeView){t->step, t->id, m};
}

static void train_free(Train *t)
{
    free(t->sp);
    free(t->step);
    free(t->id);
    memset(t, 0, sizeof *t);
}

/* n contiguous elements of `size` neurons: element k is [k * size, (k + 1) * size). */
typedef struct Seq {
    uint32_t lo[16], hi[16];
    EngramSeqSpec s;
} Seq;

static void seq_init(Seq *q, uint32_t n, uint32_t size, double threshold, int64_t window,
                     int64_t interval)
{
    for (uint32_t k = 0; k < n; k++) {
        q->lo[k] = k * size;
        q->hi[k] = (k + 1) * size;
    }
    q->s = (EngramSeqSpec){.nelems = n,
                           .lo = q->lo,
                           .hi = q->hi,
                           .interval_steps = interval,
                           .threshold = threshold,
                           .window_steps = window,
                           .dt = 0.1};
}

#define EPS 1e-12

/* ---- onsets ------------------------------------------------------------- */

/* 4 elements of 10 neurons, need 0.5 * 10 = 5 spikes in a 5-step window,
 * interval 20, cue at 100.  A whole element firing at one step activates it
 * there. */
static void perfect_sequence(Train *t, Seq *q, int64_t *onset)
{
    seq_init(q, 4, 10, 0.5, 5, 20);
    for (uint32_t k = 0; k < 4; k++)
        add_burst(t, 100 + 20 * k + 3, 10 * k, 10 * k + 10);
    EngramSpikeView v = train_view(t);
    engram_seq_onsets(&q->s, &v, 100, 200, onset);
}

Test(onsets, perfect_sequence)
{
    Train t = {0};
    Seq q;
    int64_t onset[4];
    perfect_sequence(&t, &q, onset);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(onset[k], 103 + 20 * k, "element %d: %ld", k, (long)onset[k]);
    cr_assert_float_eq(engram_measure_recall(&q.s, onset, 100), 1.0, EPS);
    cr_assert_float_eq(engram_measure_order(&q.s, onset), 1.0, EPS);
    train_free(&t);
}

/* One neuron per step from 100 to 104: c(104) = 5 with W = 5 (steps 100..104
 * are in (99, 104]), but with W = 4 the window never holds more than 4. */
Test(onsets, window_is_half_open)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 1, 10, 0.5, 5, 20);
    for (uint32_t i = 0; i < 5; i++)
        add(&t, 100 + i, i);
    EngramSpikeView v = train_view(&t);
    int64_t onset;
    engram_seq_onsets(&q.s, &v, 0, 1000, &onset);
    cr_assert_eq(onset, 104);
    q.s.window_steps = 4;
    engram_seq_onsets(&q.s, &v, 0, 1000, &onset);
    cr_assert_eq(onset, -1);
    train_free(&t);
}

/* Two spikes at 98 and 99 plus three at 100: with the cue at 98 all five
 * count (onset 100); with the cue at 100 only three do. */
Test(onsets, only_spikes_after_the_cue_count)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 1, 10, 0.5, 5, 20);
    add(&t, 98, 0);
    add(&t, 99, 1);
    add_burst(&t, 100, 2, 5);
    EngramSpikeView v = train_view(&t);
    int64_t onset;
    engram_seq_onsets(&q.s, &v, 98, 1000, &onset);
    cr_assert_eq(onset, 100);
    engram_seq_onsets(&q.s, &v, 100, 1000, &onset);
    cr_assert_eq(onset, -1);
    cr_assert_eq(engram_seq_onset(&q.s, 0, &v, 100, 1000), -1);
    train_free(&t);
}

/* t_end is exclusive: a burst at step 150 is not seen by [100, 150). */
Test(onsets, end_is_exclusive)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 1, 10, 0.5, 5, 20);
    add_burst(&t, 150, 0, 10);
    EngramSpikeView v = train_view(&t);
    int64_t onset;
    engram_seq_onsets(&q.s, &v, 100, 150, &onset);
    cr_assert_eq(onset, -1);
    engram_seq_onsets(&q.s, &v, 100, 151, &onset);
    cr_assert_eq(onset, 150);
    train_free(&t);
}

/* Elements [0, 10) and [5, 15) share neurons 5..9: five of them firing at
 * step 10 give both elements their 5 spikes. */
Test(onsets, overlapping_elements)
{
    Train t = {0};
    uint32_t lo[2] = {0, 5}, hi[2] = {10, 15};
    EngramSeqSpec s = {2, lo, hi, 20, 0.5, 5, 0.1};
    add_burst(&t, 10, 5, 10);
    EngramSpikeView v = train_view(&t);
    int64_t onset[2];
    engram_seq_onsets(&s, &v, 0, 100, onset);
    cr_assert_eq(onset[0], 10);
    cr_assert_eq(onset[1], 10);
    train_free(&t);
}

/* The shared event scan and the element-by-element scan must agree on
 * random trains, overlapping elements and a fractional threshold included. */
Test(onsets, shared_scan_matches_single_element_scan)
{
    uint32_t lo[5] = {0, 8, 12, 30, 40}, hi[5] = {10, 20, 14, 35, 40};
    EngramSeqSpec s = {5, lo, hi, 20, 0.35, 7, 0.1};
    EngramRng r;
    engram_rng_init(&r, 99, 1, 0, 0);
    for (int rep = 0; rep < 20; rep++) {
        Train t = {0};
        for (int64_t step = 0; step < 400; step++)
            for (uint32_t i = 0; i < 45; i++)
                if (engram_rng_uniform(&r) < 0.02 + 0.005 * rep)
                    add(&t, step, i);
        EngramSpikeView v = train_view(&t);
        int64_t onset[5], t0 = 17 * rep;
        engram_seq_onsets(&s, &v, t0, 380, onset);
        for (uint32_t k = 0; k < 5; k++)
            cr_assert_eq(onset[k], engram_seq_onset(&s, k, &v, t0, 380), "rep %d element %u",
                         rep, k);
        cr_assert_eq(onset[4], -1, "an empty element never activates");
        train_free(&t);
    }
}

/* ---- recall and order --------------------------------------------------- */

/* Reversed: element k at 100 + 20 * (3 - k) + 3, so onsets 163, 143, 123, 103.
 * Windows end at 120, 140, 160, 180: element 0 (163) and 1 (143) are late,
 * element 2 (123) counts, element 3 (103) is not after 123.  recall = 1/4. */
Test(recall, reversed_sequence)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 4, 10, 0.5, 5, 20);
    for (uint32_t k = 0; k < 4; k++)
        add_burst(&t, 100 + 20 * (3 - k) + 3, 10 * k, 10 * k + 10);
    EngramSpikeView v = train_view(&t);
    int64_t onset[4];
    engram_seq_onsets(&q.s, &v, 100, 200, onset);
    cr_assert_eq(onset[0], 163);
    cr_assert_eq(onset[3], 103);
    cr_assert_float_eq(engram_measure_recall(&q.s, onset, 100), 0.25, EPS);
    cr_assert_float_eq(engram_measure_order(&q.s, onset), -1.0, EPS);
    train_free(&t);
}

Test(recall, missing_element)
{
    Seq q;
    seq_init(&q, 4, 10, 0.5, 5, 20);
    int64_t onset[4] = {103, 123, -1, 163};
    cr_assert_float_eq(engram_measure_recall(&q.s, onset, 100), 0.75, EPS);
    cr_assert_float_eq(engram_measure_order(&q.s, onset), 1.0, EPS);
}

/* Element 1 at 145 misses its window (<= 140); element 2 at 143 still counts
 * (after 103, within 160).  Order: onset ranks 1, 3, 2, 4 against 1, 2, 3, 4,
 * rho = 1 - 6 * 2 / (4 * 15) = 0.8. */
Test(recall, late_element)
{
    Seq q;
    seq_init(&q, 4, 10, 0.5, 5, 20);
    int64_t onset[4] = {103, 145, 143, 163};
    cr_assert_float_eq(engram_measure_recall(&q.s, onset, 100), 0.75, EPS);
    cr_assert_float_eq(engram_measure_order(&q.s, onset), 0.8, EPS);
}

/* The window's end is inclusive; "in order" is strict. */
Test(recall, window_edge_and_ties)
{
    Seq q;
    seq_init(&q, 3, 10, 0.5, 5, 20);
    int64_t edge[3] = {120, 140, 160};
    cr_assert_float_eq(engram_measure_recall(&q.s, edge, 100), 1.0, EPS);
    int64_t past[3] = {121, 140, 160};
    cr_assert_float_eq(engram_measure_recall(&q.s, past, 100), 2.0 / 3, EPS);
    int64_t tie[3] = {110, 110, 130};
    cr_assert_float_eq(engram_measure_recall(&q.s, tie, 100), 2.0 / 3, EPS);
    int64_t early[3] = {90, 110, 130}; /* before the cue: not in its window */
    cr_assert_float_eq(engram_measure_recall(&q.s, early, 100), 2.0 / 3, EPS);
}

/* Onsets 10, 10, 20: onset ranks 1.5, 1.5, 3; deviations from 2: x -1, 0, 1,
 * y -0.5, -0.5, 1; rho = 1.5 / sqrt(2 * 1.5) = sqrt(3) / 2. */
Test(order, ties_get_average_ranks)
{
    Seq q;
    seq_init(&q, 4, 10, 0.5, 5, 20);
    int64_t onset[4] = {10, -1, 10, 20};
    cr_assert_float_eq(engram_measure_order(&q.s, onset), sqrt(3.0) / 2, EPS);
}

Test(order, undefined_cases_are_nan)
{
    Seq q;
    seq_init(&q, 3, 10, 0.5, 5, 20);
    int64_t one[3] = {-1, 50, -1}, tied[3] = {50, -1, 50};
    cr_assert(isnan(engram_measure_order(&q.s, one)));
    cr_assert(isnan(engram_measure_order(&q.s, tied)));
    cr_assert(isnan(engram_measure_order(NULL, one)));
}

/* ---- jitter ------------------------------------------------------------- */

/* Element 0: 10, 12, 14 ms, SD 2.  Element 1: 20, -, 26, SD sqrt(18).
 * Element 2 only once: left out.  Mean (2 + sqrt(18)) / 2. */
Test(jitter, known_offsets)
{
    double on[3][3] = {{10, 20, NAN}, {12, NAN, 5}, {14, 26, NAN}};
    cr_assert_float_eq(engram_measure_jitter(&on[0][0], 3, 3), (2 + sqrt(18.0)) / 2, EPS);
}

Test(jitter, undefined_cases_are_nan)
{
    double on[2][2] = {{1, NAN}, {NAN, 2}};
    cr_assert(isnan(engram_measure_jitter(&on[0][0], 2, 2)));
    cr_assert(isnan(engram_measure_jitter(&on[0][0], 1, 2)));
    cr_assert(isnan(engram_measure_jitter(NULL, 2, 2)));
    double same[2] = {7, 7};
    cr_assert_float_eq(engram_measure_jitter(same, 2, 1), 0.0, EPS);
}

/* ---- episodes and hysteresis -------------------------------------------- */

/* Need 5, off below 2.5, W = 2.  c: step 10 -> 5 (on), 11 -> 6, 12 -> 3
 * (below 5 but not below 2.5: still on), 13 -> 6 (no second onset), 14 -> 4,
 * 15 -> 0 (off).  A second burst at 30 gives c 5, 5, 0: episode [30, 32). */
static EngramSpikeView flicker(Train *t)
{
    add_burst(t, 10, 0, 5);
    add(t, 11, 5);
    add_burst(t, 12, 6, 8);
    add_burst(t, 13, 0, 4);
    add_burst(t, 30, 0, 5);
    return train_view(t);
}

Test(episodes, hysteresis_gives_one_onset_per_burst)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 1, 10, 0.5, 2, 20);
    EngramSpikeView v = flicker(&t);
    EngramEpisodes ep = {0};
    cr_assert_eq(engram_seq_episodes(&q.s, &v, 0, 100, &ep), 0);
    cr_assert_eq(ep.n, 2);
    cr_assert_eq(ep.ep[0].onset, 10);
    cr_assert_eq(ep.ep[0].end, 15);
    cr_assert_eq(ep.ep[1].onset, 30);
    cr_assert_eq(ep.ep[1].end, 32);
    cr_assert_eq(engram_seq_episodes(&q.s, &v, 0, 31, &ep), 0, "reuses the buffer");
    cr_assert_eq(ep.n, 2);
    cr_assert_eq(ep.ep[1].end, 31, "still active at the end of the scan");
    engram_episodes_free(&ep);
    cr_assert_null(ep.ep);
    train_free(&t);
}

Test(episodes, ordered_by_onset_then_element)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 3, 2, 1.0, 1, 10);
    add_burst(&t, 50, 4, 6); /* element 2 */
    add_burst(&t, 50, 0, 2); /* element 0 */
    add_burst(&t, 40, 2, 4); /* element 1 */
    EngramSpikeView v = train_view(&t);
    EngramEpisodes ep = {0};
    cr_assert_eq(engram_seq_episodes(&q.s, &v, 0, 100, &ep), 0);
    cr_assert_eq(ep.n, 3);
    cr_assert_eq(ep.ep[0].elem, 1);
    cr_assert_eq(ep.ep[1].elem, 0);
    cr_assert_eq(ep.ep[2].elem, 2);
    cr_assert_eq(ep.ep[2].end, 51);
    engram_episodes_free(&ep);
    train_free(&t);
}

/* ---- replay ------------------------------------------------------------- */

/* 5 elements of 10 neurons among 100, need 5 in W = 5, interval 15.  Three
 * forward replays (element k fires at T + 10 k) in a background where every
 * neuron fires with p = 0.002 per step (about 0.1 spikes per element and
 * window: it never reaches 5). */
static EngramSpikeView replay_train(Train *t, Seq *q)
{
    seq_init(q, 5, 10, 0.5, 5, 15);
    EngramRng r;
    engram_rng_init(&r, 12345, 0, 0, 0);
    for (int64_t step = 0; step < 10000; step++)
        for (uint32_t i = 0; i < 100; i++)
            if (engram_rng_uniform(&r) < 0.002)
                add(t, step, i);
    const int64_t starts[3] = {2000, 5000, 8000};
    for (int e = 0; e < 3; e++)
        for (uint32_t k = 0; k < 5; k++)
            add_burst(t, starts[e] + 10 * k, 10 * k, 10 * k + 10);
    return train_view(t);
}

Test(replay, three_embedded_forward_replays)
{
    Train t = {0};
    Seq q;
    EngramSpikeView v = replay_train(&t, &q);
    EngramEpisodes ep = {0};
    cr_assert_eq(engram_seq_episodes(&q.s, &v, 0, 10000, &ep), 0);
    cr_assert_eq(ep.n, 15, "only the bursts activate elements (%zu episodes)", ep.n);
    engram_episodes_free(&ep);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 10000, 7, 3, &st), 0);
    cr_assert_float_eq(st.count, 3.0, EPS);
    cr_assert_eq(st.shuffles, ENGRAM_REPLAY_SHUFFLES);
    cr_assert_lt(st.chance, 1.0, "chance %g", st.chance);
    cr_assert_geq(st.chance_sd, 0.0);
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 4000, 7, 3, &st), 0);
    cr_assert_float_eq(st.count, 1.0, EPS, "only the first replay lies in [0, 4000)");
    train_free(&t);
}

Test(replay, shuffles_are_reproducible)
{
    Train t = {0};
    Seq q;
    EngramSpikeView v = replay_train(&t, &q);
    EngramReplayStats a, b, c;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 10000, 42, 9, &a), 0);
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 10000, 42, 9, &b), 0);
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 10000, 43, 9, &c), 0);
    cr_assert_eq(a.count, b.count);
    cr_assert_eq(a.chance, b.chance, "the same key draws the same orders");
    cr_assert_eq(a.chance_sd, b.chance_sd);
    cr_assert_eq(a.shuffles, b.shuffles);
    cr_assert_float_eq(c.count, a.count, EPS);
    cr_assert_eq(c.shuffles, a.shuffles);
    train_free(&t);
}

/* 4 elements of 2 neurons, W = 1, need 2: a burst is an episode of one step.
 * One replay 0, 1, 2, 3 at 100, 110, 120, 130 with interval 15: only
 * neighbours link (a gap of 20 is too long).  The 23 non-identity orders
 * that contain 0 1 2 or 1 2 3 as neighbours are 3 0 1 2 and 1 2 3 0: each
 * counts 1 event, so chance = 2/23 and SD = sqrt(p (1 - p)). */
Test(replay, all_orders_when_few)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 4, 2, 1.0, 1, 15);
    for (uint32_t k = 0; k < 4; k++)
        add_burst(&t, 100 + 10 * k, 2 * k, 2 * k + 2);
    EngramSpikeView v = train_view(&t);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 1000, 1, 1, &st), 0);
    double p = 2.0 / 23;
    cr_assert_float_eq(st.count, 1.0, EPS);
    cr_assert_eq(st.shuffles, 23);
    cr_assert_float_eq(st.chance, p, EPS);
    cr_assert_float_eq(st.chance_sd, sqrt(p * (1 - p)), EPS);
    train_free(&t);
}

/* Element 0 at 100 and 103, element 1 at 106, element 2 at 110 (interval 10).
 * The chain from 100 takes 106 and 110; the one from 103 finds 106 used. */
Test(replay, onsets_are_not_reused)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 3, 2, 1.0, 1, 10);
    add_burst(&t, 100, 0, 2);
    add_burst(&t, 103, 0, 2);
    add_burst(&t, 106, 2, 4);
    add_burst(&t, 110, 4, 6);
    EngramSpikeView v = train_view(&t);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 1000, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 1.0, EPS);
    cr_assert_eq(st.shuffles, 5);
    cr_assert_float_eq(st.chance, 0.0, EPS);
    train_free(&t);
}

/* Links need 0 < gap <= interval: equal onsets and a gap of 11 break chains. */
Test(replay, gaps_must_be_positive_and_short)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 3, 2, 1.0, 1, 10);
    add_burst(&t, 100, 0, 2); /* 0 1 2 at 100 100 105: gap 0 */
    add_burst(&t, 100, 2, 4);
    add_burst(&t, 105, 4, 6);
    add_burst(&t, 200, 0, 2); /* 0 1 2 at 200 211 215: gap 11 */
    add_burst(&t, 211, 2, 4);
    add_burst(&t, 215, 4, 6);
    add_burst(&t, 300, 0, 2); /* 0 1 2 at 300 310 320: gaps of exactly 10 */
    add_burst(&t, 310, 2, 4);
    add_burst(&t, 320, 4, 6);
    EngramSpikeView v = train_view(&t);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 1000, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 1.0, EPS);
    train_free(&t);
}

/* A replay longer than the minimum chain is one event; two elements need
 * chains of 2 and have one shuffled order, the reverse. */
Test(replay, short_sequences)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 2, 2, 1.0, 1, 10);
    add_burst(&t, 100, 0, 2);
    add_burst(&t, 105, 2, 4); /* forward */
    add_burst(&t, 200, 2, 4);
    add_burst(&t, 205, 0, 2); /* reverse */
    add_burst(&t, 300, 0, 2);
    add_burst(&t, 305, 2, 4); /* forward */
    EngramSpikeView v = train_view(&t);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 1000, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 2.0, EPS);
    cr_assert_eq(st.shuffles, 1);
    cr_assert_float_eq(st.chance, 1.0, EPS);
    cr_assert_float_eq(st.chance_sd, 0.0, EPS);
    q.s.nelems = 1;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 1000, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 0.0, EPS);
    cr_assert_float_eq(st.chance, 0.0, EPS);
    cr_assert_eq(st.shuffles, 0);
    train_free(&t);
}

Test(replay, long_chain_is_one_event)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 6, 2, 1.0, 1, 10);
    for (uint32_t k = 0; k < 6; k++)
        add_burst(&t, 100 + 5 * k, 2 * k, 2 * k + 2);
    EngramSpikeView v = train_view(&t);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 1000, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 1.0, EPS);
    train_free(&t);
}

/* ---- rates -------------------------------------------------------------- */

/* Neurons 10..19, steps [1000, 2000) at dt 0.1 ms = 0.1 s: 50 spikes give
 * 50 / (10 * 0.1) = 50 Hz; spikes of other neurons or outside the steps do
 * not count. */
Test(rates, rate_by_hand)
{
    Train t = {0};
    for (uint32_t j = 0; j < 50; j++)
        add(&t, 1000 + 19 * j, 10 + j % 10);
    add(&t, 999, 10);
    add(&t, 2000, 10);
    add(&t, 1500, 9);
    add(&t, 1500, 20);
    EngramSpikeView v = train_view(&t);
    cr_assert_float_eq(engram_measure_rate(&v, 10, 20, 1000, 2000, 0.1), 50.0, 1e-9);
    cr_assert_float_eq(engram_measure_rate(&v, 10, 20, 1000, 1000, 0.1), 0.0, EPS);
    cr_assert_float_eq(engram_measure_rate(&v, 10, 10, 1000, 2000, 0.1), 0.0, EPS);
    cr_assert(isnan(engram_measure_rate(&v, 10, 20, 1000, 2000, 0.0)));
    cr_assert(isnan(engram_measure_rate(&v, 10, 20, 1000, 2000, NAN)));
    train_free(&t);
}

/* Neurons 0..9: 2, 5 and 7 fire in [10, 20) (7 twice), 3 only at 20. */
Test(rates, active_fraction_by_hand)
{
    Train t = {0};
    add(&t, 10, 2);
    add(&t, 12, 7);
    add(&t, 15, 5);
    add(&t, 19, 7);
    add(&t, 20, 3);
    add(&t, 11, 10);
    EngramSpikeView v = train_view(&t);
    cr_assert_float_eq(engram_measure_active_fraction(&v, 0, 10, 10, 20), 0.3, EPS);
    cr_assert_float_eq(engram_measure_active_fraction(&v, 0, 10, 10, 21), 0.4, EPS);
    cr_assert_float_eq(engram_measure_active_fraction(&v, 5, 8, 0, 100), 2.0 / 3, EPS);
    cr_assert_float_eq(engram_measure_active_fraction(&v, 0, 10, 20, 10), 0.0, EPS);
    cr_assert_float_eq(engram_measure_active_fraction(&v, 4, 4, 0, 100), 0.0, EPS);
    train_free(&t);
}

/* ---- sparseness --------------------------------------------------------- */

/* The example of docs/measures.md.  2 elements of 10, threshold 0.3 (need 3,
 * off below 1.5), W = 3, interval 10.
 * Element 0: 9@0, 0@4, 1@4, 2@5, 3@6, 7@9.  c(4) = 2, c(5) = 3: onset 5;
 * c(6) = 4, c(7) = 2, c(8) = 1 < 1.5: the episode is [5, 8), neurons count in
 * [3, 8): 0, 1, 2, 3 (not 9@0, not 7@9): 4/10.
 * Element 1: 10..14@30, 15,16@32, 17,10@34, 11,18@36, 12,13@38, 19@40.
 * c(30) = 5: onset 30; c stays >= 2 up to 39, so the episode ends at onset +
 * interval = 40: neurons 10..18 fired in [28, 40), 19@40 is out: 9/10.
 * Sparseness (0.4 + 0.9) / 2 = 0.65. */
static EngramSpikeView sparse_train(Train *t, Seq *q)
{
    seq_init(q, 2, 10, 0.3, 3, 10);
    add(t, 0, 9);
    add_burst(t, 4, 0, 2);
    add(t, 5, 2);
    add(t, 6, 3);
    add(t, 9, 7);
    add_burst(t, 30, 10, 15);
    add_burst(t, 32, 15, 17);
    add(t, 34, 17);
    add(t, 34, 10);
    add(t, 36, 11);
    add(t, 36, 18);
    add_burst(t, 38, 12, 14);
    add(t, 40, 19);
    return train_view(t);
}

Test(sparseness, worked_example)
{
    Train t = {0};
    Seq q;
    EngramSpikeView v = sparse_train(&t, &q);
    int64_t onset[2];
    engram_seq_onsets(&q.s, &v, 0, 100, onset);
    cr_assert_eq(onset[0], 5);
    cr_assert_eq(onset[1], 30);
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, onset, 100), 0.65, EPS);
    cr_assert_float_eq(engram_measure_sparseness_after(&q.s, &v, onset, 0, 100), 0.65, EPS);
    /* t_end = 35 cuts element 1 at 35: neurons 10..17, 8/10. */
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, onset, 35), (0.4 + 0.8) / 2, EPS);
    /* Only element 0 activated. */
    int64_t first_only[2] = {5, -1};
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, first_only, 100), 0.4, EPS);
    train_free(&t);
}

/* Neuron 8 of element 0 fires at 3, before a cue at 4.  With the cue the
 * onset stays 5 (c(4) counts only 0@4, 1@4); the plain measure counts 8@3
 * (window [3, 8)): 5/10 for element 0; the cued one does not: 4/10. */
Test(sparseness, spikes_before_the_cue)
{
    Train t = {0};
    Seq q;
    sparse_train(&t, &q);
    add(&t, 3, 8);
    EngramSpikeView v = train_view(&t);
    int64_t onset[2];
    engram_seq_onsets(&q.s, &v, 4, 100, onset);
    cr_assert_eq(onset[0], 5);
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, onset, 100), (0.5 + 0.9) / 2, EPS);
    cr_assert_float_eq(engram_measure_sparseness_after(&q.s, &v, onset, 4, 100), (0.4 + 0.9) / 2,
                       EPS);
    /* onsets before the cue or at/after t_end count as not activated */
    int64_t outside[2] = {5, 30};
    cr_assert_float_eq(engram_measure_sparseness_after(&q.s, &v, outside, 6, 100), 0.9, EPS);
    cr_assert(isnan(engram_measure_sparseness_after(&q.s, &v, outside, 6, 30)));
    train_free(&t);
}

/* Made-up onsets where c is below half (need 3, off below 1.5, W = 3):
 * the definition still holds, the episode ends at the first later step with
 * c < 1.5.  Spikes 0@50, 1@51, 2@60, 3@62.
 * Onset 50: c(51) = 2, c(52) = 2, c(53) = 1: episode [50, 53), neurons in
 * [48, 53): 0, 1 -> 0.2.  Onset 60: c(61) = 1 already: [60, 61), neuron 2 ->
 * 0.1.  Onset 40: c(41) = 0: [40, 41), nothing -> 0. */
Test(sparseness, onset_without_activity)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 1, 10, 0.3, 3, 10);
    add(&t, 50, 0);
    add(&t, 51, 1);
    add(&t, 60, 2);
    add(&t, 62, 3);
    EngramSpikeView v = train_view(&t);
    int64_t onset = 50;
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, &onset, 100), 0.2, EPS);
    onset = 60;
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, &onset, 100), 0.1, EPS);
    onset = 40;
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, &onset, 100), 0.0, EPS);
    train_free(&t);
}

Test(sparseness, nan_when_none_activated)
{
    Train t = {0};
    Seq q;
    EngramSpikeView v = sparse_train(&t, &q);
    int64_t none[2] = {-1, -1};
    cr_assert(isnan(engram_measure_sparseness(&q.s, &v, none, 100)));
    cr_assert(isnan(engram_measure_sparseness(&q.s, &v, NULL, 100)));
    train_free(&t);
}

/* ---- the definitions, step by step ------------------------------------- */

/* c_k(s) literally: spikes of element k in (s - W, s] at steps >= first. */
static int64_t brute_c(const EngramSeqSpec *s, uint32_t k, const EngramSpikeView *v, int64_t at,
                       int64_t first)
{
    int64_t c = 0;
    for (size_t i = 0; i < v->n; i++)
        c += v->step[i] > at - s->window_steps && v->step[i] <= at && v->step[i] >= first &&
             v->id[i] >= s->lo[k] && v->id[i] < s->hi[k];
    return c;
}

static size_t brute_episodes(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t from,
                             int64_t to, uint32_t k, EngramEpisode *out)
{
    size_t n = 0;
    bool on = false;
    double need = s->threshold * (s->hi[k] - s->lo[k]);
    for (int64_t t = from; t < to && s->hi[k] > s->lo[k]; t++) {
        double c = (double)brute_c(s, k, v, t, from);
        if (!on && c >= need) {
            out[n++] = (EngramEpisode){t, to, k};
            on = true;
        } else if (on && c < need / 2) {
            out[n - 1].end = t;
            on = false;
        }
    }
    return n;
}

static double brute_sparseness(const EngramSeqSpec *s, const EngramSpikeView *v,
                               const int64_t *onset, int64_t t0, int64_t t_end)
{
    double sum = 0;
    int used = 0;
    for (uint32_t k = 0; k < s->nelems; k++) {
        int64_t o = onset[k];
        if (o == -1 || o < t0 || o >= t_end || s->hi[k] <= s->lo[k])
            continue;
        double half = s->threshold * (s->hi[k] - s->lo[k]) / 2;
        int64_t end = o + s->interval_steps < t_end ? o + s->interval_steps : t_end;
        for (int64_t t = o + 1; t < end; t++)
            if ((double)brute_c(s, k, v, t, t0) < half) {
                end = t;
                break;
            }
        int64_t from = o - s->window_steps + 1 > t0 ? o - s->window_steps + 1 : t0;
        int fired = 0;
        for (uint32_t id = s->lo[k]; id < s->hi[k]; id++) {
            bool f = false;
            for (size_t i = 0; i < v->n && !f; i++)
                f = v->id[i] == id && v->step[i] >= from && v->step[i] < end;
            fired += f;
        }
        sum += (double)fired / (s->hi[k] - s->lo[k]);
        used++;
    }
    return used ? sum / used : NAN;
}

/* Random trains, overlapping elements, random W and threshold, and onsets
 * both real and made up: the event-driven code must match the literal
 * definitions of sections 6 and 9 of docs/measures.md. */
Test(definitions, episodes_and_sparseness_match_brute_force)
{
    uint32_t lo[4] = {0, 6, 3, 20}, hi[4] = {8, 16, 5, 20};
    EngramRng r;
    engram_rng_init(&r, 2024, 5, 0, 0);
    for (int rep = 0; rep < 40; rep++) {
        EngramSeqSpec s = {4, lo, hi, 1 + engram_rng_below(&r, 12), 0.2 + engram_rng_uniform(&r),
                           1 + engram_rng_below(&r, 8), 0.1};
        Train t = {0};
        double p = 0.01 + 0.1 * engram_rng_uniform(&r);
        for (int64_t step = 0; step < 160; step++)
            for (uint32_t i = 0; i < 22; i++)
                if (engram_rng_uniform(&r) < p)
                    add(&t, step, i);
        EngramSpikeView v = train_view(&t);
        int64_t from = engram_rng_below(&r, 40), to = 100 + engram_rng_below(&r, 70);
        EngramEpisodes ep = {0};
        cr_assert_eq(engram_seq_episodes(&s, &v, from, to, &ep), 0);
        size_t seen[4] = {0};
        for (size_t j = 0; j < ep.n; j++) {
            uint32_t k = ep.ep[j].elem;
            EngramEpisode want[200];
            size_t nwant = brute_episodes(&s, &v, from, to, k, want);
            cr_assert_lt(seen[k], nwant, "rep %d: extra episode of %u", rep, k);
            cr_assert_eq(ep.ep[j].onset, want[seen[k]].onset, "rep %d element %u", rep, k);
            cr_assert_eq(ep.ep[j].end, want[seen[k]].end, "rep %d element %u", rep, k);
            seen[k]++;
        }
        for (uint32_t k = 0; k < 4; k++) {
            EngramEpisode want[200];
            cr_assert_eq(seen[k], brute_episodes(&s, &v, from, to, k, want), "rep %d", rep);
        }
        engram_episodes_free(&ep);
        int64_t onset[4], t0 = from, t_end = to;
        engram_seq_onsets(&s, &v, t0, t_end, onset);
        double got = engram_measure_sparseness_after(&s, &v, onset, t0, t_end);
        double want = brute_sparseness(&s, &v, onset, t0, t_end);
        cr_assert(isnan(got) ? isnan(want) : fabs(got - want) < EPS, "rep %d: %g, want %g", rep,
                  got, want);
        for (int k = 0; k < 4; k++)
            onset[k] = engram_rng_below(&r, 5) == 0 ? -1 : (int64_t)engram_rng_below(&r, 170);
        got = engram_measure_sparseness_after(&s, &v, onset, t0, t_end);
        want = brute_sparseness(&s, &v, onset, t0, t_end);
        cr_assert(isnan(got) ? isnan(want) : fabs(got - want) < EPS, "rep %d made up: %g, want %g",
                  rep, got, want);
        got = engram_measure_sparseness(&s, &v, onset, t_end);
        want = brute_sparseness(&s, &v, onset, INT64_MIN + 1000, t_end);
        cr_assert(isnan(got) ? isnan(want) : fabs(got - want) < EPS, "rep %d plain: %g, want %g",
                  rep, got, want);
        train_free(&t);
    }
}

/* ---- degenerate inputs -------------------------------------------------- */

Test(degenerate, empty_view_and_null_arrays)
{
    Seq q;
    seq_init(&q, 3, 10, 0.5, 5, 20);
    EngramSpikeView empty = {NULL, NULL, 0}, lying = {NULL, NULL, 1000};
    int64_t onset[3] = {7, 7, 7};
    engram_seq_onsets(&q.s, &empty, 0, 100, onset);
    for (int k = 0; k < 3; k++)
        cr_assert_eq(onset[k], -1);
    engram_seq_onsets(&q.s, &lying, 0, 100, onset);
    engram_seq_onsets(&q.s, NULL, 0, 100, onset);
    cr_assert_eq(onset[1], -1);
    cr_assert_float_eq(engram_measure_recall(&q.s, onset, 0), 0.0, EPS);
    cr_assert(isnan(engram_measure_order(&q.s, onset)));
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, NULL, 0, 100, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 0.0, EPS);
    cr_assert_float_eq(st.chance, 0.0, EPS);
    cr_assert_float_eq(engram_measure_rate(NULL, 0, 10, 0, 100, 0.1), 0.0, EPS);
    cr_assert_float_eq(engram_measure_active_fraction(&lying, 0, 10, 0, 100), 0.0, EPS);
    cr_assert(isnan(engram_measure_sparseness(&q.s, &empty, onset, 100)));
}

Test(degenerate, empty_ranges_of_steps)
{
    Train t = {0};
    Seq q;
    EngramSpikeView v = replay_train(&t, &q);
    int64_t onset[5];
    engram_seq_onsets(&q.s, &v, 2000, 2000, onset);
    cr_assert_eq(onset[0], -1);
    engram_seq_onsets(&q.s, &v, 3000, 2000, onset);
    cr_assert_eq(onset[4], -1);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 9000, 1000, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 0.0, EPS);
    cr_assert_float_eq(st.chance, 0.0, EPS);
    cr_assert_eq(st.shuffles, ENGRAM_REPLAY_SHUFFLES);
    cr_assert_float_eq(engram_measure_rate(&v, 0, 100, 5000, 4000, 0.1), 0.0, EPS);
    train_free(&t);
}

/* Invalid specs: onsets -1, measures NaN, replay -2 with NaN stats. */
Test(degenerate, invalid_spec)
{
    Train t = {0};
    Seq q;
    EngramSpikeView v = replay_train(&t, &q);
    int64_t onset[5];
    double bad_thresholds[3] = {0, -1, NAN};
    for (int i = 0; i < 3; i++) {
        q.s.threshold = bad_thresholds[i];
        engram_seq_onsets(&q.s, &v, 0, 10000, onset);
        cr_assert_eq(onset[0], -1);
        EngramReplayStats st;
        cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 10000, 1, 1, &st), -2);
        cr_assert(isnan(st.count));
        cr_assert(isnan(engram_measure_sparseness(&q.s, &v, onset, 10000)));
    }
    q.s.threshold = 0.5;
    q.s.window_steps = 0;
    cr_assert_eq(engram_seq_onset(&q.s, 0, &v, 0, 10000), -1);
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, 10000, 1, 1, NULL), -2);
    EngramEpisodes ep = {0};
    cr_assert_eq(engram_seq_episodes(&q.s, &v, 0, 10000, &ep), -2);
    engram_episodes_free(&ep);
    engram_episodes_free(NULL);
    train_free(&t);
}

/* Extreme steps and intervals saturate instead of overflowing. */
Test(degenerate, extreme_steps)
{
    Train t = {0};
    Seq q;
    seq_init(&q, 2, 2, 1.0, INT64_MAX, INT64_MAX);
    add_burst(&t, INT64_MAX - 1, 0, 2);
    add_burst(&t, INT64_MIN + 1, 2, 4);
    EngramSpikeView v = train_view(&t);
    int64_t onset[2];
    engram_seq_onsets(&q.s, &v, INT64_MIN, INT64_MAX, onset);
    cr_assert_eq(onset[0], INT64_MAX - 1);
    cr_assert_eq(onset[1], INT64_MIN + 1);
    cr_assert_float_eq(engram_measure_recall(&q.s, onset, INT64_MIN), 0.5, EPS);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, INT64_MIN, INT64_MAX, 1, 1, &st), 0);
    cr_assert_float_eq(st.count, 0.0, EPS);
    double sp = engram_measure_sparseness(&q.s, &v, onset, INT64_MAX);
    cr_assert_float_eq(sp, 1.0, EPS);
    train_free(&t);
}

/* ---- a large train ------------------------------------------------------ */

/* 60 s at dt 0.1 ms: 600000 steps, 3 background spikes per step among
 * neurons 100..999 (1.8 million spikes, 33.3 Hz each; 7 is prime to 300 so
 * every neuron gets its turn), and a forward replay of elements 0..5
 * (neurons 0..59) every second.  Everything must stay linear: a quadratic
 * step would not finish. */
Test(large, sleep_phase)
{
    const int64_t nsteps = 600000;
    EngramSpikeView v;
    int64_t *step = malloc(3 * nsteps * sizeof *step + 64 * 6 * 10 * sizeof *step);
    uint32_t *id = malloc(3 * nsteps * sizeof *id + 64 * 6 * 10 * sizeof *id);
    cr_assert(step && id);
    size_t n = 0;
    for (int64_t s = 0; s < nsteps; s++) {
        bool burst = s % 10000 < 60 && s % 10 == 0;
        uint32_t k = (uint32_t)(s % 10000 / 10);
        for (uint32_t b = 0; burst && b < 10; b++) {
            step[n] = s;
            id[n++] = 10 * k + b;
        }
        for (uint32_t j = 0; j < 3; j++) {
            step[n] = s;
            id[n++] = 100 + (uint32_t)((s * 7) % 300) + 300 * j;
        }
    }
    v = (EngramSpikeView){step, id, n};
    Seq q;
    seq_init(&q, 6, 10, 0.5, 5, 15);
    EngramReplayStats st;
    cr_assert_eq(engram_measure_replay(&q.s, &v, 0, nsteps, 5, 0, &st), 0);
    cr_assert_float_eq(st.count, 60.0, EPS);
    int64_t onset[6];
    engram_seq_onsets(&q.s, &v, 10000, nsteps, onset);
    cr_assert_eq(onset[5], 10050);
    cr_assert_float_eq(engram_measure_sparseness(&q.s, &v, onset, nsteps), 1.0, EPS);
    cr_assert_float_eq(engram_measure_active_fraction(&v, 0, 1000, 0, nsteps), 0.96, EPS);
    cr_assert_float_eq(engram_measure_rate(&v, 100, 1000, 0, nsteps, 0.1), 100.0 / 3, 1e-9);
    free(step);
    free(id);
}
