/*
 * ir.h - the network IR: what `lower` produces from a checked model and what
 * `codegen` turns into kernels and the model blob (runtime/engram_rt.h).
 *
 * The IR is flat: one table of parameters (every knob, by dotted path, in
 * dependency order), one of populations, one of projections, one of drives.
 * Expressions are small typed trees with every name resolved to a table
 * index and every number converted to internal units; nothing in the IR
 * refers back to the AST except spans for late diagnostics.
 *
 * Memory: everything is allocated in the Arena passed to lower (the same
 * arena as the AST is fine); the IR lives until codegen has finished.
 */
#ifndef ENGRAM_IR_H
#define ENGRAM_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "engram_rt.h"
#include "engram_units.h"

typedef enum IrExprKind {
    IR_CONST,     /* value */
    IR_PARAM,     /* index: global parameter index */
    IR_STATE,     /* index: state variable index within the population */
    IR_TIME,      /* t (ms) at the start of the step */
    IR_DT,        /* dt (ms) */
    IR_INDEX,     /* neuron index (initial values only) */
    IR_UNARY,     /* op (OP_NEG, OP_NOT), a */
    IR_BINARY,    /* op (arithmetic, comparison, logic), a, b */
    IR_CALL,      /* fn (EngramBuiltin), args a, b, c by arity */
    IR_UNIFORM,   /* a = low, b = high (initial values only) */
    IR_NORMAL,    /* a = mean, b = sd, c = min or NULL, d = max or NULL */
    /* inside a plasticity rule instance (docs/language.md section 12) */
    IR_WEIGHT,    /* w of the current synapse */
    IR_SYNVAR,    /* index: synapse variable of the rule */
    IR_PRE_TRACE, /* index: pre trace of the synapse's source neuron (up to date) */
    IR_POST_TRACE,/* index: post trace of the synapse's target neuron (up to date) */
    IR_PRE_STATE, /* index: state variable of the source population (pre.X) */
    IR_POST_STATE,/* index: state variable of the target population (post.X) */
    IR_MODULATOR, /* index: level of a modulator */
    /* inside a protocol (docs/language.md section 16) */
    IR_VAR,       /* index: loop variable slot of the protocol */
    IR_MEASURE,   /* index: measure (IrModel.measures) evaluated now */
} IrExprKind;

typedef struct IrExpr IrExpr;
struct IrExpr {
    IrExprKind kind;
    EngramDim dim;        /* dimension of the value (booleans: dimensionless) */
    bool is_bool;         /* comparisons and logic */
    double value;         /* CONST */
    int index;            /* PARAM, STATE */
    OpKind op;            /* UNARY, BINARY (from ast.h) */
    EngramBuiltin fn;     /* CALL */
    IrExpr *a, *b, *c, *d;
    SrcSpan span;
};

typedef struct IrParam {
    const char *path;     /* "g", "V1.exc.tau_m", "V1.exc.size", "ff.weight.low", "dt" */
    EngramDim dim;
    uint32_t flags;       /* ENGRAM_PARAM_* */
    IrExpr *value;        /* default, reads only params with smaller indices; NULL for lists */
    double *list;         /* ENGRAM_PARAM_LIST values (internal units) */
    int nlist;
    SrcSpan span;         /* where it is declared (or the override that set it) */
} IrParam;

typedef struct IrState {
    const char *name;
    EngramDim dim;
    IrExpr *init;         /* may hold IR_UNIFORM/IR_NORMAL/IR_INDEX */
    IrExpr *ode;          /* right-hand side of d(name)/dt, NULL if none */
    bool held;            /* read by the threshold: held while refractory */
} IrState;

typedef struct IrPort {
    const char *name;
    int state;            /* target variable */
} IrPort;

typedef struct IrAssign {
    int state;
    AssignOp op;
    IrExpr *value;
} IrAssign;

typedef struct IrPop {
    const char *path;     /* "REGION.POP" */
    const char *model;    /* neuron model name */
    EngramPopKind kind;
    int size_param;
    IrState *states; int nstates;
    IrPort *ports; int nports;
    EngramMethod method;
    IrExpr *threshold;    /* NULL: never spikes */
    IrAssign *reset; int nreset;
    int refractory_param; /* -1: none */
    /* exact: linear system over lin_vars (state indices); coef is
     * nlinear rows of (nlinear + 1) expressions of params and constants
     * (A row then the affine term b), row-major; NULL entries are zero. */
    int *lin_vars; int nlinear;
    IrExpr **coef;
    /* sources */
    int rate_param;       /* POISSON */
    int times_param, indices_param;  /* SPIKE_TIMES */
    bool record_spikes;
    SrcSpan span;
} IrPop;

typedef struct IrDist {
    EngramDistKind kind;
    int arg[4];           /* param indices; -1: absent */
} IrDist;

/* ---- plasticity ---------------------------------------------------------- */

typedef struct IrVar {          /* a synapse variable or a trace */
    const char *name;
    EngramDim dim;
    IrExpr *init;               /* initial value (may draw; IR_INDEX = synapse id / neuron) */
    IrExpr *lin_a, *lin_b;      /* dx/dt = a x + b (expressions of params), NULL: no ODE */
} IrVar;

typedef enum IrTargetKind { IR_TGT_WEIGHT, IR_TGT_SYNVAR, IR_TGT_PRE, IR_TGT_POST } IrTargetKind;

typedef struct IrRuleAssign {
    IrTargetKind target;
    int index;                  /* SYNVAR / PRE / POST */
    AssignOp op;
    IrExpr *value;
} IrRuleAssign;

typedef struct IrHandler {       /* on pre / on post / every */
    IrRuleAssign *before; int nbefore;   /* trace statements before the synapse loop */
    IrRuleAssign *syn; int nsyn;         /* per synapse, in order */
    IrRuleAssign *after; int nafter;     /* trace statements after the synapse loop */
} IrHandler;

typedef struct IrRule {
    const char *name;            /* the rule's name ("STDP") */
    IrVar *syn_vars; int nsyn_vars;
    IrVar *pre; int npre;
    IrVar *post; int npost;
    IrHandler on_pre, on_post, every;
    bool has_on_pre, has_on_post, has_every;
    bool pre_arrival;            /* `on pre arrival`: on_pre runs per synapse when the spike
                                    arrives; the rule's pre traces are synapse variables then
                                    (npre == 0, on_pre has only per-synapse statements) */
    int every_param;             /* interval (ms), -1 without every */
    int w_lo_param, w_hi_param;  /* bounds, -1 without */
    int plastic_param;           /* PROJ.plastic */
} IrRule;

typedef struct IrModulator {
    const char *name;
    EngramDim dim;
    int baseline_param, tau_param;
    SrcSpan span;
} IrModulator;

typedef struct IrRelease {
    EngramReleaseKind kind;
    int modulator;
    int amount_param;
    int src, src_index_param;    /* population index; param index of the neuron (WHEN) */
    int dst, dst_index_param;    /* WHEN */
    int window_param;            /* WHEN */
    IrDist delay;                /* WHEN: kind CONST with arg[0] = -1: no delay */
    SrcSpan span;
} IrRelease;

typedef struct IrWeightRec {
    int proj;
    int every_param;             /* sampling interval (ms) */
    bool per_synapse;
} IrWeightRec;

typedef struct IrProj {
    const char *name;     /* given name or "SRC->DST" */
    int src, dst;         /* population indices */
    int port;             /* port index in dst */
    EngramConnKind rule;
    int rule_param;       /* -1 for one_to_one / all_to_all */
    bool autapses;
    IrDist weight, delay;
    SrcSpan span;
    IrRule *plasticity;   /* NULL: static synapses */
    bool src_is_ens, dst_is_ens;   /* ensemble endpoints (else whole populations) */
    int src_group, src_ens;
    int dst_group, dst_ens;
} IrProj;

typedef struct IrDrive {
    const char *name;
    int dst, port;
    int rate_param, count_param, weight_param;
    SrcSpan span;
} IrDrive;

/* ---- ensembles, sequences, stimuli, protocols ------------------------------- */

typedef struct IrEnsGroup {
    int pop;
    EngramEnsKind kind;
    int count_param;              /* SPLIT */
    int *range_param; int nens;   /* RANGES: lo, hi per ensemble */
    const char **names; int nnames;
} IrEnsGroup;

typedef struct IrTarget {
    int pop;
    int group;                    /* -1: the whole population */
    IrExpr *index;                /* group: which ensemble */
} IrTarget;

typedef struct IrSequence {
    const char *name;
    int group;
    int *elems; int nelems;
    int interval_param, threshold_param, window_param;
} IrSequence;

typedef struct IrStimulus {
    int pop, port, weight_param;
} IrStimulus;

typedef struct IrMeasure {
    const char *name;             /* as written: "recall(reach_A)" */
    EngramMeasureKind kind;
    int seq;                      /* -1: none */
    IrTarget a, b;
    int protocol;                 /* the protocol it was written in (loop variables) */
} IrMeasure;

typedef struct IrStmt IrStmt;
struct IrStmt {
    EngramStmtKind kind;
    int block;                    /* BLOCK: EngramBlockKind; REPEAT: 1 for trials */
    const char *name;             /* BLOCK name, CHECKPOINT/RESTORE template */
    int var;                      /* REPEAT: slot, -1 none */
    int ref;                      /* sequence, modulator, on flag */
    int *list; int nlist;         /* projections, measures */
    IrTarget target;
    IrExpr *a, *b, *cond;         /* NULL: empty */
    int line;
    IrStmt **body; int nbody;
};

typedef struct IrProtocol {
    const char *name;
    IrStmt *top;                  /* a BLOCK PLAIN holding the body */
    const char **vars; int nvars; /* loop variable names by slot */
} IrProtocol;

typedef struct IrModel {
    const char *name;
    char sha256[65];      /* of the model file's text */
    int precision;        /* 4 or 8 (bytes of state values) */
    IrParam *params; int nparams;
    IrPop *pops; int npops;
    IrProj *projs; int nprojs;
    IrDrive *drives; int ndrives;
    IrModulator *modulators; int nmodulators;
    IrRelease *releases; int nreleases;
    IrWeightRec *weight_recs; int nweight_recs;
    IrEnsGroup *ens_groups; int nens_groups;
    IrSequence *sequences; int nsequences;
    IrStimulus *stimuli; int nstimuli;
    IrMeasure *measures; int nmeasures;
    IrProtocol *protocols; int nprotocols;
    int dt_param, duration_param, seed_param;
} IrModel;

/* Finds a parameter by path; -1 if absent. */
int ir_param_find(const IrModel *m, const char *path);
/* Debug dump of the whole IR (engramc check --dump-ir). */
#include <stdio.h>
void ir_dump(FILE *out, const IrModel *m);

#endif
