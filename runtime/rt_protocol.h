/*
 * rt_protocol.h - protocols: the training schedule of a model, executed by
 * the runtime (docs/language.md sections 15-16; outputs in
 * docs/protocol_outputs.md).
 *
 * A run executes at most one protocol (--protocol NAME, default the first).
 * Before the network is built, engram_protocol_length walks the statements
 * once without running them (conditions do not change time) and gives the
 * protocol's length, which becomes the run's duration unless --duration was
 * given.  After the build, engram_protocol_init resolves ensembles,
 * sequences and stimulus ports and checks every statement; the interpreter
 * state then lives behind net->proto.  The step loop calls:
 *
 *   engram_protocol_advance   thread 0, at the start of each step, while the
 *                             other threads wait: runs statements until the
 *                             next wait;
 *   engram_stimuli_apply      every thread in phase A (next to the drives):
 *                             Poisson input of active stimuli into the
 *                             stimulus port of neuron populations;
 *   engram_stimuli_merge      from engram_source_emit: stimulus spikes united
 *                             with a source population's own;
 *   engram_protocol_observe   thread 0 after the spike exchange: keeps the
 *                             spikes that open trials and blocks will measure;
 *   engram_protocol_finish    after the last step: statements due at the end,
 *                             then every open scope is closed.
 *
 * Every rank runs the interpreter identically (same global spikes, same
 * measures), so the collectives inside it (checkpoints, weight measures)
 * line up; only rank 0 writes files.  The interpreter's state is plain data
 * on explicit stacks, so engram_protocol_save / engram_protocol_load can
 * carry it through a checkpoint.
 *
 * Sections: the API the engine calls, then the interpreter's state (used by
 * protocol.c, protocol_measure.c, protocol_output.c and stimuli.c only).
 */
#ifndef ENGRAM_RT_PROTOCOL_H
#define ENGRAM_RT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rt_engine.h"
#include "rt_measures.h"

/* ---- API ------------------------------------------------------------------------- */

/* The protocol a run executes: name NULL picks the first (ENGRAM_NONE when
 * the model has none), "none" picks none; an unknown name is ENGRAM_EXIT_USAGE
 * with the list of the model's protocols. */
int engram_protocol_select(const EngramModel *m, const char *name, uint32_t *index,
                           EngramError *err);
/* The length of protocol `index` in steps of dt = params[dt_param], by a dry
 * walk; ENGRAM_EXIT_MODEL (naming the protocol and line) on a duration that
 * is negative or not finite, or a repeat range that is not finite. */
int engram_protocol_length(const EngramModel *m, uint32_t index, const double *params,
                           int64_t *nsteps, EngramError *err);
/* Prepares protocol `index` on a built network (out_dir: where checkpoints
 * go, copied).  ENGRAM_EXIT_MODEL on a statement the network cannot run. */
int engram_protocol_init(EngramNetwork *net, uint32_t index, const char *out_dir,
                         EngramError *err);
void engram_protocol_free(EngramNetwork *net);

/* Runs the statements due at the start of `step`.  Thread 0 only. */
int engram_protocol_advance(EngramNetwork *net, int64_t step, EngramError *err);
/* Keeps this step's global spikes of the measured populations (thread 0). */
int engram_protocol_observe(EngramNetwork *net, int64_t step, EngramError *err);
/* After the last step: runs what is due at the end and closes every open
 * scope (rows of open trials, records of open blocks).  Collective. */
int engram_protocol_finish(EngramNetwork *net, EngramError *err);

/* Phase A, partition t: stimulus input into neuron populations. */
void engram_stimuli_apply(const EngramNetwork *net, uint32_t t, int64_t step);
/* After a source population emitted partition t's spikes of this step. */
void engram_stimuli_merge(const EngramNetwork *net, EngramPopRt *p, uint32_t t, int64_t step);

/* DIR/trials.csv, written atomically; nothing without a protocol. */
int engram_write_trials(const EngramNetwork *net, const char *dir, EngramError *err);
/* The `"protocol": {...},` member of summary.json (two-space indent, with
 * its trailing comma and newline); nothing without a protocol. */
void engram_protocol_summary(FILE *f, const EngramNetwork *net);
/* One line for the human summary; nothing without a protocol. */
void engram_protocol_print(FILE *out, const EngramNetwork *net);

/* The interpreter state as bytes (malloc'd into *bytes; -1 when out of
 * memory; 0 bytes without a protocol), and back into a network whose
 * protocol was initialised from the same model, parameters and protocol. */
int engram_protocol_save(const EngramNetwork *net, void **bytes, size_t *len);
int engram_protocol_load(EngramNetwork *net, const void *bytes, size_t len, EngramError *err);

/* ---- the interpreter's state -------------------------------------------------------
 * Everything below `core` in EngramProtocol is saved; the rest is derived from
 * the model and parameters at init.  Steps are int64; "never" is INT64_MAX. */

#define ENGRAM_STEP_NEVER INT64_MAX

/* An active stimulus: rate on neurons [lo, hi) of pop during [start, until). */
typedef struct EngramStim {
    uint64_t id;            /* unique within the run (scopes stop it by id) */
    uint32_t pop, lo, hi;   /* population-local ids (global over ranks) */
    uint32_t stream;        /* protocol.stream + statement offset */
    uint32_t sub;           /* TEACH element (part of the RNG counter) */
    uint32_t pad;
    int64_t start, until;
    double rate;            /* 1/ms */
    double lambda, exp_neg; /* rate dt and exp(-rate dt): neuron populations */
    double p_spike;         /* 1 - exp(-rate dt): sources */
} EngramStim;

/* CURRENT: I_ext = amp on neurons [lo, hi) until `until`, then 0. */
typedef struct EngramCurrentRt {
    uint32_t pop, lo, hi, state;
    int64_t until;
} EngramCurrentRt;

/* A BLOCK execution or one iteration of a REPEAT: a scope. */
typedef struct ProtoFrame {
    uint32_t stmt;          /* absolute statement index */
    uint32_t child;         /* next child to run */
    uint32_t tail;          /* BLOCK: its closing wait has started */
    uint32_t undo_base;     /* undo log length when the scope opened */
    uint32_t phase;         /* named BLOCK: its phase entry, else ENGRAM_NONE */
    uint32_t ctx;           /* 1 when the scope opened a trial context */
    uint32_t keep;          /* 1 when it needs the spikes from t_start on */
    uint32_t saved_bound;   /* REPEAT: the variable slot's state before the loop */
    int64_t iter, last;     /* REPEAT: current value, last value */
    int64_t first;          /* REPEAT: first value */
    int64_t t_start;        /* start of the scope (this iteration) */
    uint64_t rows_base;     /* rows emitted before the scope opened */
    double saved_var;
} ProtoFrame;

/* What a scope undoes when it closes, newest first. */
enum { PROTO_UNDO_SET = 0, PROTO_UNDO_PLASTICITY, PROTO_UNDO_BACKGROUND };
typedef struct ProtoUndo {
    uint32_t kind, index;   /* SET: modulator; PLASTICITY: projection */
    uint64_t stim;          /* BACKGROUND: stimulus id */
    double value;           /* SET: old baseline; PLASTICITY: old switch */
} ProtoUndo;

/* A RECORD waiting for its scope (frame `depth`) to close. */
typedef struct ProtoPending {
    uint32_t stmt, depth;
} ProtoPending;

/* The head of a trial row; its values follow (the row layout below). */
enum { PROTO_CTX_TRIAL = 0, PROTO_CTX_BLOCK, PROTO_CTX_TOP };
typedef struct ProtoRowHead {
    uint32_t phase, session;   /* statements of the innermost named block and the one
                                  around it, ENGRAM_NONE: none */
    uint32_t measured, kind;   /* a MEASURE ran; PROTO_CTX_* */
    int64_t trial;             /* 1-based iteration of a trials repeat, 0: none */
    int64_t t_start, t0;       /* start of the trial, latest cue onset */
    double day;                /* NaN: no `day` variable in scope */
} ProtoRowHead;

/* One execution of a named block. */
typedef struct ProtoPhase {
    uint32_t stmt, kind;       /* the named BLOCK; EngramBlockKind */
    uint32_t session, open;    /* the enclosing named BLOCK, or ENGRAM_NONE */
    double day;
    int64_t t_start, t_end;
    uint64_t row_first, row_end;
    uint64_t trials, rewards, evaluated;   /* while open: the counters at its start */
} ProtoPhase;

/* A RECORD result (or the latest one per phase and measure). */
typedef struct ProtoRecord {
    uint32_t phase;            /* phase entry, or ENGRAM_NONE: the whole protocol */
    uint32_t measure;
    double value;              /* scalar measures, jitter */
    EngramReplayStats replay;  /* REPLAY */
} ProtoRecord;

/* The spikes of one measured population since the oldest open consumer. */
typedef struct ProtoSpikeBuf {
    uint32_t pop, pad;
    int64_t *step;
    uint32_t *id;
    size_t head, len, cap;     /* live entries [head, len) */
} ProtoSpikeBuf;

/* The saved scalars. */
typedef struct ProtoCore {
    int64_t now, wake;
    int64_t keep_from;         /* spikes before this step are not needed */
    uint32_t started, done, failed, pad;
    uint32_t depth, nctx;      /* frames; open trial contexts */
    uint32_t npending, undo_len;
    uint64_t nstim, ncur, nrows, nphases, nrecords;
    uint64_t next_stim;
    uint64_t rewards, evaluated, trials;
    uint64_t written_len;      /* bytes of EngramProtocol.written */
} ProtoCore;

typedef struct EngramProtocol {
    /* ---- derived at init ---- */
    const EngramModel *m;
    const EngramProtocolDesc *desc;
    uint32_t index;
    const char *name;
    uint32_t first, end;       /* statements [first, end) */
    uint32_t *parent;          /* per statement (relative): absolute parent, NONE for the top */
    uint8_t *flags;            /* per statement (relative): PROTO_F_* bits */
    uint32_t max_depth, undo_cap, pending_cap;
    int64_t total_steps;
    char *out_dir;
    double dt;
    /* ensembles: group g's ensemble k is [ens_lo, ens_hi)[ens_first[g] + k] */
    uint32_t *ens_first, *ens_count, *ens_lo, *ens_hi;
    /* sequences (lo/hi point into seq_lo/seq_hi); valid when seq_ok */
    EngramSeqSpec *seq;
    uint32_t *seq_lo, *seq_hi;
    uint8_t *seq_ok;
    /* per population: stimulus port (ENGRAM_NONE: none) and weight, I_ext state */
    uint32_t *stim_port, *iext;
    double *stim_weight;
    uint32_t **merge_a, **merge_b;   /* [pop * nthreads + t]: source merge scratch */
    /* per-trial measure columns and jitter slots */
    uint32_t *col_of, *col_measure, ncols;
    uint32_t *jit_of, *jit_measure, *jit_off, njit, njit_doubles;
    size_t row_bytes;
    uint32_t *buf_of;          /* per population: spike buffer, or ENGRAM_NONE */
    uint32_t nbufs;
    uint8_t *is_day;           /* per variable slot: its name is `day` */
    uint8_t *param_on;         /* per projection: PROJ.plastic != 0 */
    double *mvals;             /* nmeasures: condition values */
    int64_t *onset;            /* the longest sequence */
    /* ---- saved ---- */
    ProtoCore core;
    double *vars;              /* nvars */
    uint8_t *bound;            /* nvars */
    uint8_t *proto_on;         /* nprojs: the protocol's plasticity switch */
    ProtoFrame *frames;        /* max_depth */
    uint8_t *ctx;              /* max_depth rows of row_bytes: open trial contexts */
    ProtoPending *pending;     /* pending_cap */
    ProtoUndo *undo;           /* undo_cap */
    EngramStim *stim;
    size_t stim_cap;
    EngramCurrentRt *cur;
    size_t cur_cap;
    uint8_t *rows;             /* emitted rows, nrows x row_bytes */
    size_t rows_cap;           /* in rows */
    ProtoPhase *phases;
    size_t phases_cap;
    ProtoRecord *records;
    size_t records_cap;
    char *written;             /* the checkpoints this run wrote: NAME '\0' PATH '\0' pairs */
    size_t written_cap;
    ProtoSpikeBuf *bufs;       /* nbufs */
} EngramProtocol;

/* Statement flags (EngramProtocol.flags). */
enum {
    PROTO_F_NAMED = 1u << 0,       /* a named BLOCK */
    PROTO_F_IN_TRIALS = 1u << 1,   /* below a trials REPEAT */
    PROTO_F_CTX = 1u << 2,         /* opens a trial context (trials REPEAT iterations, named
                                      BLOCKs outside trials, the top) */
    PROTO_F_CTX_NEEDS = 1u << 3,   /* ... whose measures need spikes */
    PROTO_F_SCOPE_NEEDS = 1u << 4, /* a scope with a RECORD that needs spikes */
    PROTO_F_OWN_VAR = 1u << 5,     /* REPEAT: the time of its body reads its variable */
};

/* Row layout: head, ncols values, njit_doubles onsets (ms after t0, NaN
 * absent), ncols "measured" bytes, njit "measured" bytes. */
static inline ProtoRowHead *engram_row_head(uint8_t *row) { return (ProtoRowHead *)row; }
static inline double *engram_row_vals(const EngramProtocol *pr, uint8_t *row)
{
    (void)pr;
    return (double *)(row + sizeof(ProtoRowHead));
}
static inline double *engram_row_jit(const EngramProtocol *pr, uint8_t *row)
{
    return engram_row_vals(pr, row) + pr->ncols;
}
static inline uint8_t *engram_row_has(const EngramProtocol *pr, uint8_t *row)
{
    return (uint8_t *)(engram_row_jit(pr, row) + pr->njit_doubles);
}
static inline uint8_t *engram_row_jhas(const EngramProtocol *pr, uint8_t *row)
{
    return engram_row_has(pr, row) + pr->ncols;
}

/* protocol.c: "protocol P, line L: ..." errors; a protocol expression with
 * the loop variables and condition measures of the moment. */
int engram_proto_fail(const EngramProtocol *pr, uint32_t stmt, int code, EngramError *err,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
double engram_proto_eval(const EngramProtocol *pr, EngramCode code, const double *params);

/* protocol_measure.c: the neurons [lo, hi) of a target (an ensemble index
 * out of range is an error naming the line); a measure's sequence checked
 * at init. */
int engram_proto_target(const EngramNetwork *net, const EngramTargetDesc *t, uint32_t stmt,
                        uint32_t *lo, uint32_t *hi, EngramError *err);
int engram_proto_check_measure(const EngramNetwork *net, uint32_t measure, uint32_t stmt,
                               EngramError *err);
/* The value of a per-trial measure (not JITTER, REPLAY) over [t0, to). */
int engram_proto_measure(EngramNetwork *net, uint32_t measure, uint32_t stmt, int64_t t0,
                         int64_t to, double *value, EngramError *err);
/* A MEASURE statement into the row of the current trial context. */
int engram_proto_measure_stmt(EngramNetwork *net, uint32_t stmt, EngramError *err);
/* The RECORDs of frame `depth`, over [t_start, now): into the records. */
int engram_proto_records(EngramNetwork *net, uint32_t depth, EngramError *err);
/* Jitter of jitter slot j over rows [from, to) (NaN when undefined). */
double engram_proto_jitter(const EngramProtocol *pr, uint32_t j, uint64_t from, uint64_t to);
/* Drops buffered spikes before core.keep_from. */
void engram_proto_trim(EngramProtocol *pr);
/* Amortised growth of *arr to hold `need` elements of `elem` bytes (*cap in
 * elements); -1 when out of memory (*arr is then unchanged). */
int engram_proto_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* stimuli.c: the list (a stimulus gets the next id even when it gives no
 * input and is not kept), stopping one at a step, dropping the ended ones;
 * currents (I_ext = amp now, 0 when they end, or all at once); the source
 * merge scratch. */
int engram_stim_add(EngramNetwork *net, EngramStim s, EngramError *err);
void engram_stim_stop(EngramProtocol *pr, uint64_t id, int64_t at);
void engram_stim_expire(EngramProtocol *pr, int64_t now);
int engram_current_start(EngramNetwork *net, EngramCurrentRt c, double amp, EngramError *err);
void engram_currents_expire(EngramNetwork *net, int64_t now, bool all);
int engram_stimuli_init(EngramNetwork *net, EngramError *err);
void engram_stimuli_free(EngramNetwork *net);

#endif
