/*
 * rt_measures.h - sequence and ensemble measures over recorded spikes, which
 * the protocol interpreter computes at the end of trials and phases.  The
 * exact definitions, with a worked example each, are in docs/measures.md.
 *
 * Pure functions of caller-owned arrays: no I/O, no globals, so any thread
 * may call any of them at once.  Times are simulation steps (int64); onsets in
 * ms are (onset - cue) * dt.  A spike view must be sorted by step, ties by
 * neuron id, as the engine records spikes: every measure finds its range of
 * steps by binary search and then costs O(spikes in the range + neurons of
 * the elements); replay adds, per shuffled order, a pass over the activation
 * episodes (far fewer than the spikes).
 *
 * A spec is valid when nelems >= 1, lo and hi are non-NULL, interval_steps
 * >= 1, window_steps >= 1 and threshold is finite and > 0 (dt is only
 * carried for the caller).  An element with hi <= lo is empty and never
 * activates.  Invalid specs give onsets -1, NaN measures and replay -2.
 *
 * Sections: types, onsets, measures of one trial, episodes and replay,
 * rates, sparseness.
 */
#ifndef ENGRAM_RT_MEASURES_H
#define ENGRAM_RT_MEASURES_H

#include <stddef.h>
#include <stdint.h>

/* ---- types -------------------------------------------------------------- */

/* The spikes of one population, ordered by step, then neuron id (population-local ids). */
typedef struct EngramSpikeView {
    const int64_t *step;
    const uint32_t *id;
    size_t n;
} EngramSpikeView;

/* A sequence of ensembles of one population. */
typedef struct EngramSeqSpec {
    uint32_t nelems;         /* >= 1 */
    const uint32_t *lo, *hi; /* element k's neurons: ids in [lo[k], hi[k]), hi > lo */
    int64_t interval_steps;  /* target interval between consecutive onsets, >= 1 */
    double threshold;        /* activation threshold: spikes per neuron within the window, > 0 */
    int64_t window_steps;    /* activation window, >= 1 */
    double dt;               /* ms per step, > 0 */
} EngramSeqSpec;

/* ---- onsets ------------------------------------------------------------- */

/* Onset step of every element after a cue at step t0, looking at spikes in
 * [t0, t_end): onset[k] = first activation step of element k, or -1. */
void engram_seq_onsets(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t t0, int64_t t_end,
                       int64_t *onset);
/* The same onset for element k alone, without allocating: O(spikes in
 * [t0, t_end)).  -1 when it does not activate, k >= nelems or s is invalid. */
int64_t engram_seq_onset(const EngramSeqSpec *s, uint32_t k, const EngramSpikeView *v, int64_t t0,
                         int64_t t_end);

/* ---- measures of one trial ---------------------------------------------- */

/* recall: fraction (0..1) of elements that activate within their window and in order. */
double engram_measure_recall(const EngramSeqSpec *s, const int64_t *onset, int64_t t0);
/* order: Spearman rank correlation of onset time with element index over the
 * elements that activated; NaN when fewer than 2 activated (or no variance). */
double engram_measure_order(const EngramSeqSpec *s, const int64_t *onset);
/* jitter (ms): onset_ms is ntrials rows of nelems onsets relative to the cue
 * (NaN: element absent in that trial).  Per element the sample standard
 * deviation over the trials where it activated (needs >= 2), then the mean
 * over such elements; NaN when none has 2. */
double engram_measure_jitter(const double *onset_ms, size_t ntrials, uint32_t nelems);

/* ---- episodes and replay ------------------------------------------------ */

/* One activation episode of one element in a continuous scan: c rose to
 * threshold * size at `onset` and fell below half of that at `end`
 * (exclusive), or was still active when the scan ended (end = to). */
typedef struct EngramEpisode {
    int64_t onset, end;
    uint32_t elem;
} EngramEpisode;

typedef struct EngramEpisodes {
    EngramEpisode *ep; /* ordered by onset, ties by element */
    size_t n, cap;
} EngramEpisodes;

/* Every activation episode of every element, counting the spikes in
 * [from, to).  *out must be zeroed or come from an earlier call (its buffer
 * is reused); the caller frees it with engram_episodes_free, also after an
 * error.  0 on success, -1 when out of memory, -2 when s is invalid. */
int engram_seq_episodes(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t from, int64_t to,
                        EngramEpisodes *out);
void engram_episodes_free(EngramEpisodes *e); /* frees the buffer and zeroes *e */

#define ENGRAM_REPLAY_MIN_CHAIN 3  /* elements in a replay event (fewer when nelems < 3) */
#define ENGRAM_REPLAY_SHUFFLES 100 /* shuffled orders, unless all of them are fewer */

/* replay over [from, to): count of spontaneous sequential reactivations and a
 * shuffle-based chance level (the same count for shuffled element orders). */
typedef struct EngramReplayStats {
    double count;      /* replay events of the sequence in its order */
    double chance;     /* mean count over the shuffled orders */
    double chance_sd;  /* their standard deviation (population: divides by shuffles) */
    uint32_t shuffles; /* how many shuffled orders were used */
} EngramReplayStats;
/* 0 on success, -1 when out of memory (-2 when s is invalid; *out is then
 * NaN).  Shuffles are drawn from the Philox generator keyed (seed, stream, 0,
 * counter) (rt_core.h), so the result is reproducible. */
int engram_measure_replay(const EngramSeqSpec *s, const EngramSpikeView *v, int64_t from,
                          int64_t to, uint64_t seed, uint32_t stream, EngramReplayStats *out);

/* ---- rates -------------------------------------------------------------- */

/* rate (Hz) of neurons [lo, hi) over steps [from, to); dt in ms.  0 when
 * hi <= lo or to <= from; NaN when dt is not finite and > 0. */
double engram_measure_rate(const EngramSpikeView *v, uint32_t lo, uint32_t hi, int64_t from,
                           int64_t to, double dt);
/* fraction of neurons [lo, hi) that spiked at least once in [from, to).  0
 * when hi <= lo or to <= from; NaN when out of memory. */
double engram_measure_active_fraction(const EngramSpikeView *v, uint32_t lo, uint32_t hi,
                                      int64_t from, int64_t to);

/* ---- sparseness --------------------------------------------------------- */

/* sparseness of a sequence: mean over the elements that activated of the
 * fraction of the element's neurons active during its activation episode;
 * NaN when none activated (or out of memory).  Counts every spike before
 * t_end, also those before the cue: see engram_measure_sparseness_after. */
double engram_measure_sparseness(const EngramSeqSpec *s, const EngramSpikeView *v,
                                 const int64_t *onset, int64_t t_end);
/* The same, counting only spikes at steps >= t0 (the cue, as
 * engram_seq_onsets does): onsets outside [t0, t_end) count as not activated. */
double engram_measure_sparseness_after(const EngramSeqSpec *s, const EngramSpikeView *v,
                                       const int64_t *onset, int64_t t0, int64_t t_end);

#endif
