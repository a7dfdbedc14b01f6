/*
 * engram_rt.h - the one header shared by generated code and the runtime.
 *
 * A compiled model is a Program: a read-only blob of model tables (the
 * "network IR" in flat, position-independent form) plus a table of kernel
 * function pointers.  The compiler emits both as constants into the model's
 * object file under the symbols below; the runtime reads the tables, builds
 * the network, and calls the kernels for the arithmetic of the hot loops.
 *
 *   engram_model_blob        const uint8_t[], 16-aligned (EngramModelDesc first)
 *   engram_model_blob_size   const uint64_t
 *   engram_model_kernels     const EngramKernelFn[] (index = kernel id in the tables)
 *
 * The standalone simulator's main() (runtime/main.c) passes them to
 * engram_main(); `engramc run` looks them up in the JIT and does the same.
 *
 * Units: every value in the tables and in state is in the internal unit
 * system (ms, mV, pA, nS, pF, 1/ms); see engram_units.h.
 *
 * Expressions the runtime evaluates (parameter defaults, initial values) are
 * stored as a small stack bytecode (EngramInsn); kernels are native code.
 */
#ifndef ENGRAM_RT_H
#define ENGRAM_RT_H

#include <stddef.h>
#include <stdint.h>

#define ENGRAM_BLOB_MAGIC   0x4d524745u   /* "EGRM" */
#define ENGRAM_ABI_VERSION  5u
#define ENGRAM_NONE         0xffffffffu   /* "no index" in any table field */

/* Exit codes shared by engramc and simulators. */
enum {
    ENGRAM_EXIT_OK = 0,
    ENGRAM_EXIT_MODEL = 1,     /* errors in the model or its inputs */
    ENGRAM_EXIT_USAGE = 2,     /* bad command line */
    ENGRAM_EXIT_IO = 3,        /* cannot read or write a file */
    ENGRAM_EXIT_RESOURCE = 4,  /* memory estimate over the limit, --max-memory */
};

/* ---- runtime bytecode ----------------------------------------------------------
 * A stack machine over doubles.  An expression is a contiguous run of
 * instructions (EngramCode) that leaves exactly one value on the stack.
 * Random draws use the generator keyed (seed, stream, index, counter) given
 * by the evaluation context, counter advancing per draw. */
typedef enum EngramOpcode {
    ENGRAM_OP_CONST = 0,   /* push imm */
    ENGRAM_OP_PARAM,       /* push params[arg] */
    ENGRAM_OP_INDEX,       /* push the neuron index (initial values) */
    ENGRAM_OP_DT,          /* push dt */
    ENGRAM_OP_NEG, ENGRAM_OP_NOT,
    ENGRAM_OP_ADD, ENGRAM_OP_SUB, ENGRAM_OP_MUL, ENGRAM_OP_DIV, ENGRAM_OP_POW,
    ENGRAM_OP_LT, ENGRAM_OP_LE, ENGRAM_OP_GT, ENGRAM_OP_GE, ENGRAM_OP_EQ, ENGRAM_OP_NE,
    ENGRAM_OP_AND, ENGRAM_OP_OR,
    ENGRAM_OP_CALL,        /* builtin function arg (EngramBuiltin), pops its arity */
    ENGRAM_OP_UNIFORM,     /* pops high, low (low pushed first): pushes a draw */
    ENGRAM_OP_NORMAL,      /* pops sd, mean */
    ENGRAM_OP_NORMAL_CLIP, /* pops max, min, sd, mean (NaN bound = none) */
    ENGRAM_OP_VAR,         /* push protocol loop variable arg (protocol expressions) */
    ENGRAM_OP_MEASURE,     /* push the value of measure arg now (protocol conditions) */
    ENGRAM_OP_COUNT
} EngramOpcode;

/* Built-in functions, shared by bytecode and kernels (same numbering). */
typedef enum EngramBuiltin {
    ENGRAM_FN_EXP = 0, ENGRAM_FN_LOG, ENGRAM_FN_LOG10, ENGRAM_FN_SQRT, ENGRAM_FN_ABS,
    ENGRAM_FN_FLOOR, ENGRAM_FN_CEIL, ENGRAM_FN_ROUND, ENGRAM_FN_SIN, ENGRAM_FN_COS,
    ENGRAM_FN_TANH,                          /* arity 1 */
    ENGRAM_FN_MIN, ENGRAM_FN_MAX, ENGRAM_FN_POW,   /* arity 2 */
    ENGRAM_FN_CLIP,                          /* arity 3: clip(x, lo, hi) */
    ENGRAM_FN_COUNT
} EngramBuiltin;

typedef struct EngramInsn {
    uint32_t op;      /* EngramOpcode */
    uint32_t arg;     /* PARAM: param index; CALL: EngramBuiltin */
    double imm;       /* CONST */
} EngramInsn;

typedef struct EngramCode {
    uint32_t first;   /* index into the instruction table */
    uint32_t count;   /* 0: no expression */
} EngramCode;

/* ---- parameters -------------------------------------------------------------------
 * Every knob of a run is a parameter with a dotted path: model-level ("g"),
 * population ("V1.exc.tau_m", "V1.exc.size"), projection ("V1.exc->V1.inh.p",
 * "ff.weight.low"), drive ("ext.rate"), and the simulation settings "dt",
 * "duration", "seed".  The table is in dependency order: a default only reads
 * parameters before it, so one forward pass resolves every value after the
 * --set overrides are applied. */
enum {
    ENGRAM_PARAM_INTEGER  = 1u << 0,  /* rounded; sizes, counts, seed */
    ENGRAM_PARAM_NONNEG   = 1u << 1,  /* must be >= 0 */
    ENGRAM_PARAM_POSITIVE = 1u << 2,  /* must be > 0 (dt, time constants are not forced) */
    ENGRAM_PARAM_PROB     = 1u << 3,  /* must be in [0, 1] */
    ENGRAM_PARAM_LIST     = 1u << 4,  /* a list of values (list_first/list_count); not settable */
    ENGRAM_PARAM_SIZE     = 1u << 5,  /* a population size */
};

typedef struct EngramParamDesc {
    uint32_t name;          /* string offset: the dotted path */
    uint32_t unit;          /* string offset: internal unit for outputs ("ms", "1") */
    int8_t dim_time, dim_voltage, dim_current, pad0;
    uint32_t flags;
    EngramCode value;       /* default; empty for LIST */
    uint32_t list_first;    /* LIST: index into the list value table */
    uint32_t list_count;
} EngramParamDesc;

/* ---- populations ------------------------------------------------------------------- */
typedef enum EngramPopKind {
    ENGRAM_POP_NEURON = 0,       /* a neuron model with a generated update kernel */
    ENGRAM_POP_POISSON,          /* built-in source: param rate */
    ENGRAM_POP_SPIKE_TIMES,      /* built-in source: list params times, indices */
} EngramPopKind;

typedef enum EngramMethod {
    ENGRAM_METHOD_EXACT = 0, ENGRAM_METHOD_EULER, ENGRAM_METHOD_RK2, ENGRAM_METHOD_RK4,
    ENGRAM_METHOD_NONE           /* no ODEs */
} EngramMethod;

typedef struct EngramStateDesc {
    uint32_t name;          /* string offset: "v" */
    uint32_t unit;          /* string offset: internal unit */
    EngramCode init;        /* initial value, evaluated per neuron (INDEX = neuron) */
    uint32_t held;          /* 1 if held during refractoriness (read by the threshold) */
} EngramStateDesc;

typedef struct EngramPortDesc {
    uint32_t name;          /* string offset: "exc" */
    uint32_t state;         /* index of the target variable within the population's states */
} EngramPortDesc;

typedef struct EngramPopDesc {
    uint32_t name;          /* "REGION.POP" */
    uint32_t model;         /* neuron model name */
    uint32_t kind;          /* EngramPopKind */
    uint32_t size_param;    /* param index of REGION.POP.size */
    uint32_t first_state, nstates;   /* into the state table */
    uint32_t first_port, nports;     /* into the port table */
    uint32_t update_kernel; /* kernel id (NEURON), else ENGRAM_NONE */
    uint32_t method;        /* EngramMethod */
    /* exact integration: the linear system over nlinear variables (state
     * indices in the lin_vars table) with coefficients as expressions of
     * params: nlinear rows of (nlinear + 1) codes (A row, then the affine b),
     * row-major, in the coefficient table.  dx_r/dt = sum_c A[r][c] x_c + b[r]. */
    uint32_t nlinear;
    uint32_t first_lin_var; /* into the lin_var table */
    uint32_t first_coef;    /* into the coefficient table */
    uint32_t refractory_param; /* param index (a time), or ENGRAM_NONE */
    uint32_t rate_param;    /* POISSON */
    uint32_t times_param, indices_param;  /* SPIKE_TIMES (LIST params) */
    uint32_t record_spikes; /* 1: write to spikes.h5 */
    uint32_t stream;        /* RNG stream for initial values and source spikes */
} EngramPopDesc;

/* ---- projections and drives ------------------------------------------------------- */
typedef enum EngramConnKind {
    ENGRAM_CONNECT_RANDOM = 0, ENGRAM_CONNECT_FIXED_INDEGREE,
    ENGRAM_CONNECT_ONE_TO_ONE, ENGRAM_CONNECT_ALL_TO_ALL
} EngramConnKind;

typedef enum EngramDistKind {
    ENGRAM_DIST_CONST = 0,  /* arg[0] */
    ENGRAM_DIST_UNIFORM,    /* arg[0] low, arg[1] high */
    ENGRAM_DIST_NORMAL,     /* arg[0] mean, arg[1] sd, arg[2] min, arg[3] max (ENGRAM_NONE: unbounded) */
} EngramDistKind;

typedef struct EngramDistDesc {
    uint32_t kind;          /* EngramDistKind */
    uint32_t arg[4];        /* param indices */
} EngramDistDesc;

typedef struct EngramProjDesc {
    uint32_t name;          /* given name or "SRC->DST" */
    uint32_t src_pop, dst_pop;
    uint32_t port;          /* port index within the target population */
    uint32_t rule;          /* EngramConnKind */
    uint32_t rule_param;    /* p or k, else ENGRAM_NONE */
    uint32_t autapses;      /* 1: allowed */
    EngramDistDesc weight;  /* in the unit of the port's variable */
    EngramDistDesc delay;   /* ms; rounded to steps, at least 1 */
    uint32_t deliver_kernel;
    uint32_t stream;        /* RNG streams stream+0 connectivity, +1 weights, +2 delays, +3 plastic variables */
    /* plasticity (docs/language.md section 12); all ENGRAM_NONE / 0 when static */
    uint32_t plastic;       /* 1: a rule is attached (weights are per synapse and mutable) */
    uint32_t plastic_param; /* PROJ.plastic: 0 freezes the weights at run time */
    uint32_t first_var;     /* into the var table: nsyn_vars synapse variables, then
                               npre pre traces, then npost post traces */
    uint32_t nsyn_vars, npre, npost;
    uint32_t on_post_kernel;   /* EngramDeliverKernel over target spikes, or ENGRAM_NONE */
    uint32_t every_kernel;     /* EngramEveryKernel, or ENGRAM_NONE */
    uint32_t every_param;      /* interval of the every block (ms) */
    uint32_t w_lo_param, w_hi_param;  /* bounds of w, or ENGRAM_NONE */
    uint32_t lazy_syn;      /* 1: some synapse variable has an ODE (needs syn_last) */
    /* ensemble endpoints (docs/language.md section 15): with bit 0 of
     * ens_ends set the projection connects only ensemble src_ens of group
     * src_group of the source population, with bit 1 likewise the targets
     * (0, the default: whole populations) */
    uint32_t ens_ends;
    uint32_t src_group, src_ens, dst_group, dst_ens;
    /* `on pre arrival` (docs/language.md section 12): with pre_arrival 1 the
     * deliver kernel only delivers, and arrive_kernel (an EngramDeliverKernel
     * over EngramDeliverArgs.synapses) runs the on-pre handler of each
     * synapse at the step its spike arrives; 0: arrive_kernel is unused */
    uint32_t pre_arrival;
    uint32_t arrive_kernel;
} EngramProjDesc;

/* A synapse variable or trace of a plastic projection. */
typedef struct EngramVarDesc {
    uint32_t name;          /* string offset */
    uint32_t unit;          /* string offset */
    EngramCode init;        /* initial value (INDEX = synapse id or neuron; draws allowed) */
} EngramVarDesc;

/* A global neuromodulator: dm/dt = (baseline - m) / tau. */
typedef struct EngramModulatorDesc {
    uint32_t name, unit;
    uint32_t baseline_param, tau_param;
} EngramModulatorDesc;

typedef enum EngramReleaseKind { ENGRAM_RELEASE_PER_SPIKE = 0, ENGRAM_RELEASE_WHEN } EngramReleaseKind;

/* A model-driven release (docs/language.md section 13). */
typedef struct EngramReleaseDesc {
    uint32_t name;          /* "release<k>" */
    uint32_t kind;          /* EngramReleaseKind */
    uint32_t modulator;     /* index in the modulator table */
    uint32_t amount_param;
    uint32_t src_pop, src_index_param;   /* PER_SPIKE: src_pop only */
    uint32_t dst_pop, dst_index_param;   /* WHEN: dst fires within window after src */
    uint32_t window_param;
    EngramDistDesc delay;   /* WHEN: kind CONST with arg ENGRAM_NONE = no delay */
    uint32_t stream;
} EngramReleaseDesc;

/* record weights PROJ every T [synapses] */
typedef struct EngramWeightRecDesc {
    uint32_t proj;
    uint32_t every_param;   /* sampling interval (ms) */
    uint32_t per_synapse;   /* 1: forced; else only when the projection is small (<= 10000) */
} EngramWeightRecDesc;

typedef struct EngramDriveDesc {
    uint32_t name;          /* given name or "poisson->PATH" */
    uint32_t dst_pop, port;
    uint32_t rate_param, count_param, weight_param;
    uint32_t stream;
} EngramDriveDesc;

/* ---- ensembles, sequences, stimuli, measures, protocols (docs/language.md 15-17) ---------
 * Every list below (ensemble ranges and names, sequence elements, the
 * measures of a `measure` statement, the projections of a `plasticity`
 * statement, protocol variable names) lives in one table of uint32 values,
 * the index table (EngramModelDesc.idx_off), addressed by (first, count). */

typedef enum EngramEnsKind {
    ENGRAM_ENS_SPLIT = 0,   /* split(n): ensemble k of n over size N is [k N / n, (k+1) N / n) */
    ENGRAM_ENS_RANGES,      /* explicit ranges: ensemble k is [lo_k, hi_k] (inclusive) */
} EngramEnsKind;

/* `ensembles POP = split(n)` or `ensembles POP = (A: 0..99, B: 100..199)`. */
typedef struct EngramEnsGroupDesc {
    uint32_t pop;
    uint32_t kind;            /* EngramEnsKind */
    uint32_t count_param;     /* SPLIT: the number of ensembles (an integer param) */
    uint32_t nens;            /* RANGES: number of ensembles */
    uint32_t first_range;     /* RANGES: idx table, 2 param indices (lo, hi) per ensemble */
    uint32_t first_name;      /* idx table: nnames string offsets (0: unnamed) */
    uint32_t nnames;          /* 0, or the number of ensembles */
} EngramEnsGroupDesc;

/* A population or one ensemble of it, as a stimulus target or measure argument. */
typedef struct EngramTargetDesc {
    uint32_t pop;
    uint32_t group;           /* ensemble group, or ENGRAM_NONE: the whole population */
    EngramCode index;         /* group: which ensemble (may read loop variables) */
} EngramTargetDesc;

/* `sequence NAME = POP[i, j, ...] every T (threshold = x, window = W)`. */
typedef struct EngramSequenceDesc {
    uint32_t name;
    uint32_t group;           /* the ensemble group of the elements */
    uint32_t first_elem, nelems;   /* idx table: ensemble indices */
    uint32_t interval_param;  /* ms between element onsets */
    uint32_t threshold_param; /* activation: spikes per neuron within the window */
    uint32_t window_param;    /* activation window (ms) */
    uint32_t stream;          /* RNG stream of the replay shuffles */
} EngramSequenceDesc;

/* `stimulus POP weight W port P`: how protocol stimuli (cue, teach,
 * background) enter a neuron population: each stimulus event adds W to the
 * port.  Poisson source populations need none (a stimulus adds spikes). */
typedef struct EngramStimulusDesc {
    uint32_t pop, port, weight_param;
} EngramStimulusDesc;

typedef enum EngramMeasureKind {
    ENGRAM_MEASURE_RECALL = 0, ENGRAM_MEASURE_ORDER, ENGRAM_MEASURE_JITTER,
    ENGRAM_MEASURE_REPLAY, ENGRAM_MEASURE_RATE, ENGRAM_MEASURE_WEIGHT,
    ENGRAM_MEASURE_SPARSENESS,
} EngramMeasureKind;

/* One measure as written in the model ("recall(reach_A)"); docs/measures.md. */
typedef struct EngramMeasureDesc {
    uint32_t name;            /* string offset: the text as written, the column name */
    uint32_t kind;            /* EngramMeasureKind */
    uint32_t seq;             /* RECALL ORDER JITTER REPLAY, SPARSENESS of a sequence; else NONE */
    EngramTargetDesc a, b;    /* RATE, SPARSENESS of a target: a; WEIGHT: a -> b */
} EngramMeasureDesc;

typedef enum EngramStmtKind {
    ENGRAM_STMT_BLOCK = 0,    /* block (kind in `block`), children run in order, then `b` (duration) */
    ENGRAM_STMT_REPEAT,       /* children run for var = a, a+1, ..., b (inclusive) */
    ENGRAM_STMT_CUE,          /* target gets Poisson stimulus of rate a for duration b */
    ENGRAM_STMT_TEACH,        /* sequence `ref`: element k gets rate a during [k T, k T + b) (b empty: T) */
    ENGRAM_STMT_CURRENT,      /* target's I_ext = a for duration b */
    ENGRAM_STMT_REST,         /* nothing for duration b */
    ENGRAM_STMT_BACKGROUND,   /* target gets rate a until the end of the enclosing block */
    ENGRAM_STMT_REWARD,       /* modulator `ref` += a, if cond (empty: always), after delay b (empty: now) */
    ENGRAM_STMT_SET,          /* modulator `ref` level and baseline = a until the end of the enclosing block */
    ENGRAM_STMT_PLASTICITY,   /* `ref` = 1 on / 0 off, for the projections in idx (none: all plastic)
                                 until the end of the enclosing block */
    ENGRAM_STMT_CHECKPOINT,   /* write checkpoint `name` (a template: {var} is replaced) */
    ENGRAM_STMT_RESTORE,      /* restore checkpoint `name` written earlier in this run */
    ENGRAM_STMT_MEASURE,      /* measures in idx: into the current trial's row */
    ENGRAM_STMT_RECORD,       /* measures in idx: over the enclosing block, into summary.json */
} EngramStmtKind;

typedef enum EngramBlockKind {
    ENGRAM_BLOCK_PLAIN = 0,   /* { ... } with a duration: `rest T { ... }` */
    ENGRAM_BLOCK_PHASE,       /* phase NAME { ... } */
    ENGRAM_BLOCK_SESSION,     /* session NAME { ... } */
    ENGRAM_BLOCK_TEST,        /* test NAME { ... }: measures reported separately */
    ENGRAM_BLOCK_SLEEP,       /* sleep [NAME] T { ... }: offline phase */
} EngramBlockKind;

/* One protocol statement.  Statements are stored in preorder: the children
 * of statement i are i+1 .. end-1, the first child at i+1 and each next one
 * at the previous child's `end`. */
typedef struct EngramStmtDesc {
    uint32_t kind;            /* EngramStmtKind */
    uint32_t end;             /* index (in the statement table) after this subtree */
    uint32_t block;           /* BLOCK: EngramBlockKind; REPEAT: 1 when its iterations are trials */
    uint32_t name;            /* BLOCK: name (0: none); CHECKPOINT, RESTORE: the name template */
    uint32_t var;             /* REPEAT: loop variable slot, or ENGRAM_NONE */
    uint32_t ref;             /* TEACH: sequence; REWARD, SET: modulator; PLASTICITY: 1 on / 0 off */
    uint32_t first_idx, nidx; /* PLASTICITY: projections; MEASURE, RECORD: measures */
    uint32_t line;            /* source line, for messages */
    EngramTargetDesc target;  /* CUE, CURRENT, BACKGROUND */
    EngramCode a, b;          /* see EngramStmtKind; times in ms, rates in 1/ms, currents in pA */
    EngramCode cond;          /* REWARD: condition (may read measures), empty: always */
} EngramStmtDesc;

/* `protocol NAME { ... }`: its statements are [first_stmt, first_stmt + nstmts)
 * (the top level: a BLOCK PLAIN with no duration holding the body). */
typedef struct EngramProtocolDesc {
    uint32_t name;
    uint32_t first_stmt, nstmts;
    uint32_t first_var, nvars;     /* idx table: string offsets of the loop variable names (slots) */
    uint32_t stream;               /* RNG streams stream .. stream + nstmts - 1: stimuli of statement i */
} EngramProtocolDesc;

/* ---- the model header (at offset 0 of the blob) --------------------------------------
 * All *_off fields are byte offsets from the start of the blob, 8-aligned. */
typedef struct EngramModelDesc {
    uint32_t magic, abi_version;
    uint32_t name;              /* string offset */
    uint32_t precision;         /* 4: float state and kernels; 8: double */
    char source_sha256[68];     /* hex digest of the model source, NUL-terminated */
    char compiler_version[28];
    uint32_t dt_param, duration_param, seed_param;
    uint32_t nparams, npops, nstates, nports, nlin_vars, ncoefs, nprojs, ndrives;
    uint32_t ninsns, nlist, nkernels, strings_size;
    uint32_t nvars, nmodulators, nreleases, nweight_recs;
    uint32_t nidx, nens_groups, nsequences, nstimuli, nmeasures, nstmts, nprotocols, pad_;
    uint64_t params_off, pops_off, states_off, ports_off, lin_vars_off, coefs_off;
    uint64_t projs_off, drives_off, insns_off, list_off, strings_off;
    uint64_t vars_off, modulators_off, releases_off, weight_recs_off;
    uint64_t idx_off, ens_groups_off, sequences_off, stimuli_off, measures_off, stmts_off,
             protocols_off;
    uint64_t total_size;
} EngramModelDesc;

/* Tables, as arrays, through these accessors (the blob is 16-aligned). */
#define ENGRAM_TABLE(blob, type, off) ((const type *)((const uint8_t *)(blob) + (off)))
#define ENGRAM_STR(blob, desc, off) ((const char *)(blob) + (desc)->strings_off + (off))

/* ---- kernels ---------------------------------------------------------------------------
 * Every kernel reads the parameters it needs from `params` once per call; no
 * value that --set can change is baked into code.  Arrays of model values
 * (state, input, weight, ring) are float when precision is 4, double when 8. */
typedef void (*EngramKernelFn)(void);   /* generic entry of the kernel table */

typedef struct EngramPopArgs {
    void *const *state;       /* nstates arrays, one per state variable */
    void *const *input;       /* nports arrays: this step's ring slot of each port;
                                 the kernel adds them to the port variables and zeroes them */
    const double *params;     /* the resolved parameter table */
    const double *prop;       /* exact: two nlinear x (nlinear+1) row-major matrices,
                                 normal then refractory; NULL otherwise.  Entries that
                                 the structure of the system makes zero are not read,
                                 nor refractory rows that equal the normal ones (held
                                 variables, and those that reach none) */
    int32_t *refr;            /* refractory countdown (steps) per neuron */
    uint8_t *spiked;          /* out: 1 if the neuron spiked in this step, else 0 */
    double t;                 /* time at the start of the step (ms) */
    double dt;                /* step (ms) */
    int32_t ref_steps;        /* refractory period in steps */
    int32_t pad;
} EngramPopArgs;

/* Update neurons [begin, end): phases 1-3 of a step (docs/language.md, section 10). */
typedef void (*EngramPopKernel)(const EngramPopArgs *a, int64_t begin, int64_t end);

/* The plastic state of one projection, for its kernels.  Arrays of values are
 * in the model precision; *_last hold the step at which the lazily integrated
 * variables of that synapse / neuron were last brought up to date. */
typedef struct EngramPlasticState {
    void *const *syn;          /* nsyn_vars arrays, one value per synapse (CSR order) */
    int32_t *syn_last;         /* per synapse, or NULL when no synapse variable has an ODE */
    void *const *pre;          /* npre arrays over source neurons */
    int32_t *pre_last;         /* per source neuron */
    void *const *post;         /* npost arrays over target neurons */
    int32_t *post_last;        /* per target neuron */
    void *const *pre_state;    /* state arrays of the source population (pre.X); NULL for sources */
    void *const *post_state;   /* state arrays of the target population (post.X) */
    const uint64_t *post_row;  /* ntgt + 1: incoming synapses of target j are
                                  post_syn[post_row[j] .. post_row[j+1]) */
    const uint32_t *post_syn;  /* synapse ids, ascending source within a target */
    const uint32_t *post_src;  /* source of each entry of post_syn */
    const double *modulators;  /* current level of every modulator */
    int32_t plastic;           /* PROJ.plastic != 0: run the handlers */
    int32_t pad;
    void *decay;               /* a cache of decay factors, per variable (synapse, pre, post
                                  in order): a key, the coefficient a it was filled for
                                  (NaN: not yet), then exp(a k dt) for k <
                                  ENGRAM_DECAY_STEPS; all in the model precision.  The
                                  kernels fill it; not state (never checkpointed). */
} EngramPlasticState;

/* Steps of decay that the cache above holds per variable. */
#define ENGRAM_DECAY_STEPS 16384

typedef struct EngramDeliverArgs {
    const uint32_t *spikes;   /* source indices (within the source population) that
                                 spiked in this step, ascending; for an on-post kernel
                                 the target indices that spiked */
    int64_t nspikes;
    const uint64_t *row;      /* CSR by source: synapses of source s are [row[s], row[s+1]) */
    const uint32_t *col;      /* target index of each synapse, ascending within a row */
    void *weight;             /* per-synapse weight, or NULL: homogeneous weight_value
                                 (always per synapse, and updated, when plastic) */
    const uint16_t *delay;    /* per-synapse delay in steps, or NULL: delay_steps */
    void *ring;               /* the target port's ring: ring_slots rows of ntgt values */
    int64_t ntgt;
    int64_t ring_slots;
    int64_t step;             /* current step; an event lands in slot (step + d) % ring_slots */
    const double *params;
    double weight_value;      /* homogeneous weight */
    int32_t delay_steps;      /* homogeneous delay */
    int32_t pad;
    const EngramPlasticState *plastic;  /* NULL for a static projection */
    double t;                 /* time at the start of the step (ms) */
    double dt;
    int64_t nsrc;             /* size of the source population */
    const uint64_t *synapses; /* arrive kernel: the synapse of each event, whose source is
                                 spikes[e] (nspikes events); NULL for the other kernels */
} EngramDeliverArgs;

/* Deliver this step's spikes of one projection into the target rings, running
 * the on-pre handler of a plastic projection; with the same signature, the
 * on-post kernel runs the on-post handler for the target spikes in a->spikes,
 * and the arrive kernel the on-pre handler of the synapses in a->synapses
 * (nothing is delivered by either). */
typedef void (*EngramDeliverKernel)(const EngramDeliverArgs *a);
/* Runs the every block over the synapses of sources [begin, end). */
typedef void (*EngramEveryKernel)(const EngramDeliverArgs *a, int64_t begin, int64_t end);

/* ---- entry points --------------------------------------------------------------------- */
typedef struct EngramProgram {
    const uint8_t *blob;
    uint64_t blob_size;
    const EngramKernelFn *kernels;
} EngramProgram;

/* Runs a simulator: parses argv (--out, --seed, --duration, --set, --dry-run,
 * --quiet, --help, --version, --max-memory, --precision is fixed at build),
 * builds the network, simulates, writes outputs.  Returns an exit code.
 * argv[0] is the program name used in messages. */
int engram_main(const EngramProgram *prog, int argc, char **argv);

/* ---- blob writer (used by the compiler and by runtime tests) ---------------------------
 * Builds a blob in memory: add rows to each table, then finish.  Indices
 * returned are the row numbers that other rows refer to. */
typedef struct EngramBlobWriter EngramBlobWriter;

EngramBlobWriter *engram_blob_writer_new(void);
void engram_blob_writer_free(EngramBlobWriter *w);
uint32_t engram_blob_string(EngramBlobWriter *w, const char *s);        /* string offset (deduplicated) */
uint32_t engram_blob_insn(EngramBlobWriter *w, EngramInsn insn);         /* returns its index */
uint32_t engram_blob_insn_count(const EngramBlobWriter *w);
uint32_t engram_blob_param(EngramBlobWriter *w, const EngramParamDesc *p);
uint32_t engram_blob_list_value(EngramBlobWriter *w, double v);
uint32_t engram_blob_pop(EngramBlobWriter *w, const EngramPopDesc *p);
uint32_t engram_blob_state(EngramBlobWriter *w, const EngramStateDesc *s);
uint32_t engram_blob_port(EngramBlobWriter *w, const EngramPortDesc *p);
uint32_t engram_blob_lin_var(EngramBlobWriter *w, uint32_t state_index);
uint32_t engram_blob_coef(EngramBlobWriter *w, EngramCode code);
uint32_t engram_blob_proj(EngramBlobWriter *w, const EngramProjDesc *p);
uint32_t engram_blob_drive(EngramBlobWriter *w, const EngramDriveDesc *d);
uint32_t engram_blob_var(EngramBlobWriter *w, const EngramVarDesc *v);
uint32_t engram_blob_modulator(EngramBlobWriter *w, const EngramModulatorDesc *m);
uint32_t engram_blob_release(EngramBlobWriter *w, const EngramReleaseDesc *r);
uint32_t engram_blob_weight_rec(EngramBlobWriter *w, const EngramWeightRecDesc *r);
uint32_t engram_blob_idx(EngramBlobWriter *w, uint32_t value);
uint32_t engram_blob_idx_count(const EngramBlobWriter *w);
uint32_t engram_blob_ens_group(EngramBlobWriter *w, const EngramEnsGroupDesc *g);
uint32_t engram_blob_sequence(EngramBlobWriter *w, const EngramSequenceDesc *q);
uint32_t engram_blob_stimulus(EngramBlobWriter *w, const EngramStimulusDesc *s);
uint32_t engram_blob_measure(EngramBlobWriter *w, const EngramMeasureDesc *x);
uint32_t engram_blob_stmt(EngramBlobWriter *w, const EngramStmtDesc *x);
uint32_t engram_blob_stmt_count(const EngramBlobWriter *w);
/* Rewrites statement i (its `end` is known once its children are added). */
void engram_blob_stmt_set(EngramBlobWriter *w, uint32_t i, const EngramStmtDesc *x);
uint32_t engram_blob_protocol(EngramBlobWriter *w, const EngramProtocolDesc *p);
/* header fields other than counts/offsets come from *hdr; returns a malloc'd
 * 16-aligned blob and its size, or NULL on OOM.  The writer stays valid. */
uint8_t *engram_blob_finish(EngramBlobWriter *w, const EngramModelDesc *hdr, uint64_t *size);

/* Checks a blob's header and every offset and index in it; returns NULL if it
 * is sound, else a static message. */
const char *engram_blob_validate(const uint8_t *blob, uint64_t size);

/* ---- utilities shared with the compiler (sha256.c) -------------------------------------
 * SHA-256 (FIPS 180-4): the model hash in the blob header, checkpoint checksums. */
typedef struct EngramSha256 {
    uint32_t h[8];
    uint64_t len;          /* bytes hashed so far */
    uint8_t buf[64];       /* a partial block */
    size_t fill;
} EngramSha256;

void engram_sha256_init(EngramSha256 *c);
void engram_sha256_update(EngramSha256 *c, const void *data, size_t n);
void engram_sha256_final(EngramSha256 *c, uint8_t out[32]);
/* The digest of n bytes in one call. */
void engram_sha256(const void *data, size_t n, uint8_t out[32]);

#endif
