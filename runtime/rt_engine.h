/*
 * rt_engine.h - internal header of the simulation engine: the model view
 * over a validated blob, the bytecode evaluator (expr.c), parameter
 * resolution (params.c), the network (network.c), sources and drives
 * (sources.c), the step loop (sim.c), outputs (output.c) and the command
 * line (cli.c, which also holds engram_main).  Generated code never sees
 * this header; it sees engram_rt.h only.
 *
 * Conventions: functions that can fail take an EngramError and return 0 or
 * one of the ENGRAM_EXIT_* codes, with the message (no program name, no
 * trailing newline) in the EngramError.  Nothing here keeps global state:
 * everything hangs off the EngramRun that engram_main owns.
 *
 * Sections: errors, model view, bytecode, parameters, network, sources,
 * modulators, weight recording, simulation, outputs, command line.
 */
#ifndef ENGRAM_RT_ENGINE_H
#define ENGRAM_RT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engram_rt.h"
#include "engram_units.h"
#include "rt_core.h"

#ifndef ENGRAM_VERSION
#define ENGRAM_VERSION "0.0.0-dev"
#endif

/* ---- errors ------------------------------------------------------------- */

typedef struct EngramError {
    int code;         /* ENGRAM_EXIT_* of the first failure, 0 if none */
    char msg[1024];
} EngramError;

/* Records a failure (printf-style) and returns code, so `return engram_fail(...)`. */
int engram_fail(EngramError *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- model view (blob.c) ---------------------------------------------------
 * Typed pointers into a blob that engram_blob_validate accepted. */
typedef struct EngramModel {
    const uint8_t *blob;
    uint64_t size;
    const EngramModelDesc *hdr;
    const EngramParamDesc *params;
    const EngramPopDesc *pops;
    const EngramStateDesc *states;
    const EngramPortDesc *ports;
    const uint32_t *lin_vars;
    const EngramCode *coefs;
    const EngramProjDesc *projs;
    const EngramDriveDesc *drives;
    const EngramInsn *insns;
    const double *list;
    const EngramVarDesc *vars;
    const EngramModulatorDesc *modulators;
    const EngramReleaseDesc *releases;
    const EngramWeightRecDesc *weight_recs;
    const uint32_t *idx;
    const EngramEnsGroupDesc *ens_groups;
    const EngramSequenceDesc *sequences;
    const EngramStimulusDesc *stimuli;
    const EngramMeasureDesc *measures;
    const EngramStmtDesc *stmts;
    const EngramProtocolDesc *protocols;
    const EngramKernelFn *kernels;
} EngramModel;

/* Validates the blob and fills the view; ENGRAM_EXIT_MODEL on a bad blob. */
int engram_model_open(EngramModel *m, const EngramProgram *prog, EngramError *err);
const char *engram_model_str(const EngramModel *m, uint32_t off);

/* ---- bytecode (expr.c) ------------------------------------------------------ */

#define ENGRAM_EXPR_STACK 64   /* deepest stack an expression may need */

enum {
    ENGRAM_CODE_ALLOW_EMPTY = 1u << 0,  /* count 0 is fine (the value is 0) */
    ENGRAM_CODE_ALLOW_INDEX = 1u << 1,  /* INDEX (initial values) */
    ENGRAM_CODE_ALLOW_DRAWS = 1u << 2,  /* UNIFORM / NORMAL / NORMAL_CLIP */
    ENGRAM_CODE_ALLOW_PROTO = 1u << 3,  /* VAR and MEASURE (indices checked by the caller) */
};

/* Checks one expression: range of the run, opcodes, builtins, param indices
 * below nparams_visible, stack depth within ENGRAM_EXPR_STACK and exactly one
 * result.  Returns NULL if sound, else a static message. */
const char *engram_code_check(const EngramInsn *insns, uint32_t ninsns, EngramCode code,
                              uint32_t nparams_visible, unsigned allow);

/* What an expression sees: params, INDEX, DT and the generator of its draws,
 * keyed (seed, stream, index, counter); the counter advances per draw. */
typedef struct EngramEvalCtx {
    const double *params;
    double index;
    double dt;
    uint64_t seed;
    uint32_t stream, key_index;
    uint64_t counter;
    EngramRng rng;
    bool rng_started;
    const double *vars;       /* protocol loop variables (VAR), nvars of them */
    uint32_t nvars, nmeasures;
    const double *measures;   /* measure values (MEASURE), filled by the caller */
} EngramEvalCtx;

void engram_eval_ctx_init(EngramEvalCtx *c, const double *params, double dt);
/* Sets the key of the next draws (and restarts the generator there). */
void engram_eval_ctx_key(EngramEvalCtx *c, uint64_t seed, uint32_t stream, uint32_t index,
                         uint64_t counter);
/* Evaluates a checked expression; an empty one is 0. */
double engram_eval(const EngramInsn *insns, EngramCode code, EngramEvalCtx *c);
/* Value of a builtin with its arguments (same numbering as kernels). */
double engram_builtin(uint32_t fn, const double *args);
int engram_builtin_arity(uint32_t fn);

/* ---- parameters (params.c) ------------------------------------------------- */

/* One override of the command line: flag is how to quote it in messages
 * ("--set V1.exc.tau_m=20", "--duration 1000"). */
typedef struct EngramOverride {
    const char *flag;
    const char *name;     /* full dotted path */
    size_t name_len;
    const char *value;    /* text with optional unit */
} EngramOverride;

/* Index of a parameter by path, or -1. */
int engram_param_find(const EngramModel *m, const char *name, size_t len);
/* The closest parameter path to a wrong one (did you mean), or NULL. */
const char *engram_param_suggest(const EngramModel *m, const char *name, size_t len);
/* "a time (ms)", "a dimensionless number", "a quantity in mV/ms". */
const char *engram_dim_describe(EngramDim d, char *buf, size_t n);

/* Resolves every parameter into values[nparams] (LIST params get their
 * element count): defaults in order, overrides in place of defaults, then
 * the flag checks.  Bad overrides are ENGRAM_EXIT_USAGE, bad derived values
 * ENGRAM_EXIT_MODEL. */
int engram_params_resolve(const EngramModel *m, const EngramOverride *ov, size_t nov,
                          double *values, EngramError *err);

/* ---- ensembles (ensembles.c) ----------------------------------------------- */

/* The number of ensembles of group g (checked against the population size). */
int engram_ensemble_count(const EngramModel *m, const double *pv, const uint32_t *sizes, uint32_t g,
                          uint32_t *count, EngramError *err);
/* Neurons [lo, hi) of ensemble k of group g; ENGRAM_EXIT_MODEL when k or a
 * range does not fit the population. */
int engram_ensemble_range(const EngramModel *m, const double *pv, const uint32_t *sizes, uint32_t g,
                          uint32_t k, uint32_t *lo, uint32_t *hi, EngramError *err);

/* ---- network (network.c) ------------------------------------------------------ */

typedef struct EngramRing {
    void *data;           /* slots rows of n values (precision) */
    int64_t slots;
    uint32_t n;
} EngramRing;

typedef struct EngramPoissonEntry {
    int64_t step;         /* step of the next spike */
    uint32_t neuron, pad;
    double t;             /* time of the next spike (ms) */
    uint64_t counter;     /* spikes drawn so far (the RNG counter) */
} EngramPoissonEntry;

/* The neurons of one population that one partition (thread) owns: the
 * rank-local range [lo, hi) and what the partition produces each step. */
typedef struct EngramPopPart {
    uint32_t lo, hi;      /* rank-local indices */
    uint32_t *spikes;     /* this step's spikes of the range, rank-local, ascending */
    uint32_t nspikes;
    /* POISSON: a heap of the next spike of each neuron, by (step, neuron);
     * entries hold rank-local neuron indices */
    EngramPoissonEntry *heap;
    size_t heap_len;
    /* SPIKE_TIMES: this range's spikes, sorted by (step, neuron), rank-local */
    int64_t *st_step;
    uint32_t *st_neuron;
    size_t st_len, st_next;
} EngramPopPart;

typedef struct EngramPopRt {
    const EngramPopDesc *desc;
    const char *name;
    uint32_t size;        /* all neurons of the population (every rank) */
    uint32_t lo, n;       /* this rank's block: global ids [lo, lo + n) */
    void **state;         /* nstates arrays of n (rank-local) */
    void **input;         /* nports pointers: this step's ring slots */
    EngramRing *rings;    /* nports, n values per slot */
    int32_t *refr;        /* n */
    uint8_t *spiked;      /* n */
    uint32_t *spikes;     /* this step's spikes of ALL ranks, global ids, ascending */
    uint32_t nspikes;
    EngramPopPart *parts; /* nthreads */
    void **mirror;        /* MPI with pre.X: nstates arrays of size, allgathered each step */
    double *prop;         /* 2 * nlinear * (nlinear + 1): normal, refractory */
    int32_t ref_steps;
    EngramPopKernel kernel;
    double rate;          /* POISSON */
    /* recording: this rank's spikes (rank 0 holds all after engram_network_gather) */
    int64_t *rec_step;
    uint32_t *rec_id;
    size_t rec_len, rec_cap;
    uint64_t total_spikes;
} EngramPopRt;

struct EngramArrival;     /* arrival.c */

typedef struct EngramProjRt {
    const EngramProjDesc *desc;
    const char *name;
    EngramCsr csr;        /* plastic: with the post-side index (tgt_row, tgt_order) */
    void *weight;         /* per synapse, or NULL (weight_value); always set when plastic */
    uint16_t *delay;      /* per synapse, or NULL (delay_steps) */
    double weight_value;
    int32_t delay_steps;
    int32_t max_delay;
    EngramDeliverKernel kernel;
    /* plasticity (network.c); all NULL / 0 for a static projection */
    bool plastic;         /* desc->plastic */
    bool handlers_on;     /* PROJ.plastic != 0 */
    void **syn, **pre, **post;      /* nsyn_vars / npre / npost arrays (precision) */
    void *decay;          /* the kernels' decay cache (EngramPlasticState.decay), per partition */
    int32_t *syn_last, *pre_last, *post_last;
    uint32_t *post_src;   /* source of each entry of csr.tgt_order */
    EngramDeliverKernel on_post;    /* NULL: none */
    EngramEveryKernel every;        /* NULL: none */
    int64_t every_steps;  /* >= 1 */
    EngramPlasticState ps;          /* what the kernels see (points into the above) */
    bool post_shared;     /* post/post_last belong to partition 0 of the rank */
    uint64_t nsyn_all;    /* synapses of the projection over all partitions and ranks */
    EngramDeliverKernel arrive;     /* `on pre arrival`: the handler, else NULL */
    struct EngramArrival *arrival;  /* with arrive: the spikes in flight */
} EngramProjRt;

typedef struct EngramDriveRt {
    const EngramDriveDesc *desc;
    const char *name;
    double lambda;        /* count * rate * dt */
    double weight;
    EngramPoissonInv inv; /* lambda in (0, 10): its inversion table; else cdf NULL */
} EngramDriveRt;

/* A global neuromodulator and the releases that feed it (modulators.c). */
typedef struct EngramPendingRelease {
    int64_t step;         /* when it is applied */
    uint64_t seq;         /* order of scheduling: ties by seq */
    uint32_t release;     /* index in the release table, or ENGRAM_NONE: a protocol reward */
    uint32_t modulator;   /* reward: the modulator it feeds */
    double amount;        /* reward: what it adds */
} EngramPendingRelease;

typedef struct EngramReleaseRt {
    const EngramReleaseDesc *desc;
    const char *name;
    double amount;
    uint32_t src_index, dst_index;  /* WHEN: the watched neurons */
    int64_t window_steps;           /* WHEN: dst within this many steps after src */
    int64_t last_src;               /* WHEN: step of the latest src spike, -1 none */
    uint64_t events;                /* WHEN: events so far (the delay RNG counter) */
    uint64_t applied;               /* releases applied (summary.json "releases") */
} EngramReleaseRt;

typedef struct EngramModState {
    uint32_t nmods, nrels;
    double *level;        /* nmods: current levels, shared by all plastic projections */
    double *baseline, *factor;   /* factor = exp(-dt / tau) */
    double *sum;          /* sum of the levels after each step (for the mean) */
    int64_t steps;        /* steps summed */
    EngramReleaseRt *rels;
    EngramPendingRelease *heap;  /* pending WHEN releases and protocol rewards,
                                    min-heap by (step, seq) */
    size_t heap_len, heap_cap;
    uint64_t next_seq;
} EngramModState;

/* Weight recording of one projection (weights.c). */
typedef struct EngramWeightRecRt {
    const EngramWeightRecDesc *desc;
    uint32_t proj;
    bool per_synapse;     /* forced, or nsyn <= ENGRAM_WEIGHT_REC_SMALL */
    int64_t every_steps;  /* >= 1 */
    size_t len, cap;      /* samples taken / room */
    double *times;        /* cap: ms */
    double *mean;         /* cap */
    double *w;            /* per_synapse: cap x nsyn, CSR order */
    double *scratch;      /* more than one partition, not per synapse: nsyn (rank 0) */
    /* ensemble-to-ensemble means, when the source or target population has
     * ensembles (a population without counts as one): ens_src x ens_dst
     * cells, cell[j] of each synapse in global CSR order (rank 0; ENGRAM_NONE
     * outside every ensemble) */
    uint32_t ens_src, ens_dst;
    uint32_t *cell;
    double *ens_mean;     /* cap x ens_src x ens_dst (NaN: no synapse in the cell) */
    double *cell_sum;     /* ens_src x ens_dst scratch */
    uint64_t *cell_n;
} EngramWeightRecRt;

#define ENGRAM_WEIGHT_REC_SMALL 10000   /* per-synapse recording by default up to this many */
/* Synapse variables and traces of one projection: the initial values of
 * variable v draw from counter (rank << 32) | (v << 20), so v < 2^12. */
#define ENGRAM_MAX_PLASTIC_VARS 4096
#define ENGRAM_MAX_PENDING_RELEASES (1u << 22)   /* pending `when` releases, all together */

/* Sizes and memory of a network before it is built (also --dry-run). */
typedef struct EngramEstimate {
    uint32_t *pop_size;       /* npops */
    double *proj_synapses;    /* nprojs: exact, or expected for random */
    bool *proj_exact;
    uint64_t *proj_bytes;     /* connectivity, weights, delays, plastic state */
    uint64_t *wrec_bytes;     /* nweight_recs: recording buffers */
    uint64_t *pop_bytes;      /* states, flags, sources */
    uint64_t neurons;
    double synapses;
    uint64_t bytes_neurons, bytes_synapses, bytes_rings, bytes_record, bytes_total;
} EngramEstimate;

/* Where this process sits: partitions = nranks x nthreads, partition
 * rank * nthreads + t owns block b of every population, [b N / P, (b+1) N / P). */
typedef struct EngramLayout {
    uint32_t rank, nranks, nthreads;
} EngramLayout;

/* First global index of block b of P over n items. */
static inline uint32_t engram_block(uint32_t n, uint64_t b, uint64_t P)
{
    return (uint32_t)((uint64_t)n * b / P);
}

typedef struct EngramNetwork {
    const EngramModel *model;
    uint32_t rank, nranks, nthreads;
    EngramProjRt **tprojs;  /* nthreads arrays of nprojs: the projections of each
                               partition of this rank; tprojs[0] == projs */
    const double *params;
    int precision;
    double dt, duration;
    int64_t nsteps;
    int64_t step_begin;   /* first step to simulate: 0, or where a checkpoint left off */
    uint64_t seed;
    EngramPopRt *pops;
    EngramProjRt *projs;
    EngramDriveRt *drives;
    uint32_t npops, nprojs, ndrives;
    uint64_t neurons, synapses;
    EngramModState mods;
    EngramWeightRecRt *wrecs;
    uint32_t nwrecs;
    struct EngramProtocol *proto;   /* the protocol being run (rt_protocol.h), or NULL */
} EngramNetwork;

/* Sizes, synapse counts and the memory estimate; free with engram_estimate_free. */
int engram_estimate(const EngramModel *m, const double *params, EngramEstimate *est,
                    EngramError *err);
void engram_estimate_free(EngramEstimate *est);
/* Builds everything: states with initial values, propagators, connectivity,
 * rings, sources.  On failure the network is freed. */
int engram_network_build(EngramNetwork *net, const EngramModel *m, const double *params,
                         EngramError *err);
/* The same for one rank of a layout (engram_network_build: 1 rank, 1 thread). */
int engram_network_build_layout(EngramNetwork *net, const EngramModel *m, const double *params,
                                const EngramLayout *lay, EngramError *err);
/* After the run: rank 0 gets every rank's recorded spikes in (step, id) order
 * and, for projections with more than one partition, the global CSR order of
 * the synapses (net->projs[j]: csr.row/col with global ids when a per-synapse
 * weight recording needs them, weights when per synapse).  Collective. */
int engram_network_gather(EngramNetwork *net, EngramError *err);

/* Bytes that each synapse of a projection holds for the whole run, in the
 * given precision: target, and as the projection needs them weight, delay,
 * synapse variables, syn_last and the post-side index with its sources.
 * Per-neuron arrays (rows, traces), rings and decay tables are not in it. */
unsigned engram_synapse_bytes(const EngramProjDesc *pj, int prec);
/* The weights of projection j over all partitions in global CSR order
 * (source-major, targets ascending), as doubles, into out (nsyn_all) on
 * rank 0; and, when ends, the endpoints into src/tgt (global ids).  Every
 * rank passes the same `ends`; the arrays are used on rank 0 only.  Collective. */
int engram_proj_collect(const EngramNetwork *net, uint32_t j, double *out, bool ends,
                        uint32_t *src, uint32_t *tgt, EngramError *err);
/* The same for any per-synapse array, as raw bytes: parts[t] is partition t's
 * array (elem bytes per synapse, its CSR order); out (nsyn_all * elem) is
 * filled on rank 0 only.  Collective (checkpoint.c). */
int engram_proj_collect_raw(const EngramNetwork *net, uint32_t j, const void *const *parts,
                            size_t elem, void *out, EngramError *err);
void engram_network_free(EngramNetwork *net);
/* "12.3 MiB" */
const char *engram_format_bytes(uint64_t bytes, char *buf, size_t n);
/* One value of a distribution: CONST reads its param (no draw), else one draw. */
double engram_dist_draw(const EngramDistDesc *x, const double *pv, EngramRng *r);
/* Number of steps of an interval param (every T, record every T): round(T / dt),
 * at least 1; ENGRAM_EXIT_MODEL when T is not a time > 0. */
int engram_interval_steps(const EngramModel *m, uint32_t param, const double *pv, double dt,
                          const char *what, int64_t *steps, EngramError *err);
/* The value of synapse j's weight (per synapse or homogeneous). */
static inline double engram_proj_weight(const EngramProjRt *pr, int prec, uint64_t j)
{
    return pr->weight ? (prec == 4 ? (double)((const float *)pr->weight)[j]
                                   : ((const double *)pr->weight)[j])
                      : pr->weight_value;
}

/* Stores/loads a model value of the given precision (4 or 8 bytes). */
static inline void engram_value_store(void *arr, int prec, size_t i, double v)
{
    if (prec == 4)
        ((float *)arr)[i] = (float)v;
    else
        ((double *)arr)[i] = v;
}
static inline double engram_value_load(const void *arr, int prec, size_t i)
{
    return prec == 4 ? (double)((const float *)arr)[i] : ((const double *)arr)[i];
}

/* ---- sources and drives (sources.c) ----------------------------------------------- */

/* Prepares a POISSON or SPIKE_TIMES population (after sizes and parts are known). */
int engram_source_init(EngramNetwork *net, EngramPopRt *p, EngramError *err);
void engram_source_free(EngramPopRt *p, uint32_t nparts);
/* Fills part t's spikes with the source's spikes of this step. */
void engram_source_emit(const EngramNetwork *net, EngramPopRt *p, uint32_t t, int64_t step);
/* Adds every drive's input of this step into the current ring slots of the
 * neurons of partition t. */
void engram_drives_apply(const EngramNetwork *net, uint32_t t, int64_t step);

/* ---- on pre at arrival (arrival.c) -------------------------------------------------------
 * A projection whose rule says `on pre arrival` runs its on-pre handler for
 * synapse k at the step its spike arrives, step_sent + delay[k]
 * (docs/language.md section 12).  The rank keeps the source's spikes of the
 * last slots - 1 steps (the history, shared by the partitions: partition 0
 * writes slot step % slots in its projection phase, the others read only
 * older slots); each partition lists its synapses by delay within each
 * source row and, every step, hands the arrive kernel the synapses whose
 * spike arrives then, in chunks. */

#define ENGRAM_ARRIVAL_CHUNK 1024

typedef struct EngramArrivalHist {
    int64_t slots;        /* the longest delay of the projection (all ranks) + 1 */
    uint32_t nsrc;
    uint32_t *src;        /* slots x nsrc: the sources that spiked at the slot's step, ascending */
    uint32_t *count;      /* per slot */
    int64_t *step;        /* per slot: the step it holds, -1: none */
} EngramArrivalHist;

typedef struct EngramArrival {
    EngramArrivalHist *hist;   /* partition 0's */
    bool owner;                /* this partition allocated hist and writes it */
    uint32_t *perm;            /* per synapse: its row's synapses as offsets from row[s],
                                  by ascending (delay, offset); NULL: one delay */
    int32_t dmin, dmax;        /* delays of the partition (steps); dmin > dmax: none */
    uint64_t ev_syn[ENGRAM_ARRIVAL_CHUNK];
    uint32_t ev_src[ENGRAM_ARRIVAL_CHUNK];
} EngramArrival;

/* Builds the arrival state of every partition of projection j (after its
 * delays are drawn).  Collective under MPI (the longest delay is agreed). */
int engram_arrival_build(EngramNetwork *net, uint32_t j, EngramError *err);
void engram_arrival_free(EngramProjRt *pr);
/* The projection phase of step a->step for partition pr: the owner records
 * a->spikes (this step's source spikes), then, when handlers is set, the
 * arrive kernel runs for every synapse whose spike arrives at this step. */
void engram_arrival_step(const EngramProjRt *pr, const EngramDeliverArgs *a, bool handlers);
/* The spikes of the history that may still arrive at step `now` or later
 * (sent in [now - slots + 1, now - 1]), ascending (step, src), into steps
 * and srcs when not NULL; returns their number.  (Checkpoints.) */
size_t engram_arrival_list(const EngramArrivalHist *h, int64_t now, int64_t *steps,
                           uint32_t *srcs);
/* Clears the history (before a checkpoint's is read back). */
void engram_arrival_clear(EngramArrivalHist *h);
/* Adds the spike of `src` at `step` to the history (checkpoint reading; in
 * ascending (step, src) order).  Spikes too old to arrive are dropped. */
void engram_arrival_put(EngramArrivalHist *h, int64_t now, int64_t step, uint32_t src);

/* ---- modulators (modulators.c) --------------------------------------------------------
 * Levels start at baseline.  Each step, after the spike handlers:
 * m = baseline + (m - baseline) exp(-dt / tau), then the releases due at the
 * step are added (docs/language.md sections 12-13). */

int engram_modulators_init(EngramNetwork *net, EngramError *err);
void engram_modulators_free(EngramModState *ms);
/* The modulator phase of one step (after every projection has run). */
int engram_modulators_step(EngramNetwork *net, int64_t step, EngramError *err);
/* A protocol reward: `amount` added to modulator m in the modulator phase of
 * `step` (after the releases scheduled before it at that step). */
int engram_modulators_schedule(EngramNetwork *net, int64_t step, uint32_t m, double amount,
                               EngramError *err);

/* ---- weight recording (weights.c) --------------------------------------------------------- */

/* Sizes of the recording of one EngramWeightRecDesc: samples and whether per synapse. */
void engram_weight_rec_plan(const EngramWeightRecDesc *r, int64_t nsteps, int64_t every_steps,
                            double nsyn, size_t *samples, bool *per_synapse);
int engram_weight_recs_init(EngramNetwork *net, EngramError *err);
void engram_weight_recs_free(EngramNetwork *net);
/* Samples the recordings due at the start of `step` (step % every == 0), or
 * the final sample when `final` (time nsteps * dt). */
void engram_weight_recs_sample(EngramNetwork *net, int64_t step, bool final);

/* Final weights of a projection for summary.json: mean, min, max (NaN when
 * it has no synapse) and a 20-bin histogram over [lo, hi]: the rule's bounds
 * when both exist, else [min, max]; an empty range is widened by 0.5 on
 * either side, as numpy.histogram does.  Bins are [e_k, e_k+1), the last
 * closed; weights outside the range are counted in `outside`. */
#define ENGRAM_HIST_BINS 20
typedef struct EngramWeightStats {
    double mean, min, max;
    double edges[ENGRAM_HIST_BINS + 1];
    uint64_t counts[ENGRAM_HIST_BINS];
    uint64_t outside;
} EngramWeightStats;

void engram_weight_stats(const EngramNetwork *net, const EngramProjRt *pr, EngramWeightStats *st);
/* The unit of a projection's weight (its weight param's unit). */
const char *engram_weight_unit(const EngramModel *m, const EngramProjDesc *pj);

/* ---- communication (comm.c; comm_mpi.c in libengram_rt_mpi.a) ----------------------------
 * Thin wrappers over MPI_COMM_WORLD; without MPI, one rank.  Sizes in bytes;
 * per-rank sizes for the v variants.  All are collective. */

/* Starts MPI (or checks that no launcher asked for more than one rank). */
int engram_comm_init(int *argc, char ***argv, uint32_t *rank, uint32_t *nranks,
                     EngramError *err);
void engram_comm_finalize(void);
bool engram_comm_is_mpi(void);
void engram_comm_allgather(const void *send, size_t bytes, void *recv);
void engram_comm_allgatherv(const void *send, size_t bytes, void *recv, const size_t *counts);
/* To rank 0 (recv and counts used there only). */
void engram_comm_gatherv(const void *send, size_t bytes, void *recv, const size_t *counts);
void engram_comm_bcast(void *buf, size_t bytes, uint32_t root);
void engram_comm_allreduce_u64_sum(uint64_t *buf, size_t n);
void engram_comm_exscan_u64_sum(const uint64_t *in, uint64_t *out, size_t n);
int engram_comm_allreduce_int_min(int v);
/* Agrees on a failure: if any rank has rc != 0, every rank gets the error of
 * the lowest failing rank (code and message) and returns its code. */
int engram_comm_agree(int rc, uint32_t rank, EngramError *err);

/* ---- simulation (sim.c) ------------------------------------------------------------ */

/* Wall-clock times of a run (summary.json "timing").  The phases split the
 * step loop (sim.c): they are its wall time in the proportions measured on
 * timed_steps of its steps (thread 0, after each barrier), so they add up to
 * the loop's time. */
typedef struct EngramTiming {
    double setup_s, simulate_s;
    double drive_s;       /* drives and protocol stimuli (phase A, thread 0's share) */
    double update_s;      /* neuron updates, sources, spike lists (the rest of phase A) */
    double exchange_s;    /* phase B: global spike lists, recording */
    double deliver_s;     /* phase C: delivery, plasticity handlers */
    double other_s;       /* phase D: modulators, checks, weight samples, protocol */
    int64_t timed_steps;  /* steps whose phases were timed (0: no phases) */
} EngramTiming;

typedef struct EngramSimOptions {
    bool progress;        /* may print progress on stderr (a TTY, not --quiet) */
    EngramTiming *timing; /* out, may be NULL: the phase times (drive_s .. timed_steps) */
} EngramSimOptions;

/* Runs all steps.  ENGRAM_EXIT_MODEL on numeric divergence. */
int engram_simulate(EngramNetwork *net, const EngramSimOptions *opt, EngramError *err);

/* ---- outputs (output.c) ------------------------------------------------------------- */

/* mkdir -p; ENGRAM_EXIT_IO with the path and strerror. */
int engram_make_dirs(const char *dir, EngramError *err);
/* DIR/spikes.h5, a SONATA spike report, written atomically. */
int engram_write_spikes(const EngramNetwork *net, const char *dir, EngramError *err);
/* DIR/summary.json, written atomically. */
int engram_write_summary(const EngramNetwork *net, const EngramTiming *timing,
                         const char *dir, EngramError *err);
/* DIR/weights.h5, written atomically; nothing when the model records no weights. */
int engram_write_weights(const EngramNetwork *net, const char *dir, EngramError *err);
/* The human summary on stdout. */
void engram_print_summary(FILE *out, const EngramNetwork *net, const EngramTiming *timing);
/* DIR/NAME, written by write(f, ctx) to a temporary file that is then renamed
 * into place (text outputs: summary.json, trials.csv). */
int engram_write_text_atomically(const char *dir, const char *name,
                                 void (*write)(FILE *f, const void *ctx), const void *ctx,
                                 EngramError *err);
/* JSON: a string with escapes; the shortest number that reads back the same (null for NaN/inf). */
void engram_json_string(FILE *f, const char *s);
void engram_json_number(FILE *f, double v);

/* ---- command line (cli.c) --------------------------------------------------------------- */

typedef struct EngramOptions {
    const char *out_dir;        /* NULL: out/MODEL */
    const char *seed;           /* text, or NULL */
    const char *duration;       /* text, or NULL */
    const char *protocol;       /* --protocol NAME ("none": no protocol), or NULL: the first */
    const char *restore;        /* --restore FILE: a checkpoint to continue from, or NULL */
    const char **sets;          /* NAME=VALUE, nsets of them (points into argv) */
    size_t nsets;
    bool dry_run, quiet, help, version;
    uint64_t max_memory;        /* 0: default (80% of physical memory) */
    uint32_t threads;           /* 0: default (the cores, shared by the ranks of a node) */
} EngramOptions;

/* Parses argv into opt (opt->sets is malloc'd: engram_options_free). */
int engram_options_parse(EngramOptions *opt, int argc, char **argv, EngramError *err);
void engram_options_free(EngramOptions *opt);
/* "2G", "512M", "1.5GiB", "1000000": bytes; false on bad syntax. */
bool engram_parse_size(const char *text, uint64_t *bytes);
void engram_usage(FILE *out, const char *prog);

#endif
