/*
 * sema_internal.h - what resolve.c, check.c, lower.c and ir.c share.
 *
 * The semantic phases work on one Sema context:
 *
 *   resolve  reads the model file and its imports (one Module per file),
 *            and collects the declarations of the model into tables:
 *            neurons in scope, model params, regions and populations,
 *            projections, drives, settings, records.
 *   check    turns every expression into a typed IrExpr (dimension checked,
 *            names bound, lets inlined), checks each neuron once as a
 *            template, and builds the table of symbolic parameters
 *            (SParam): one per model param, per population copy of a
 *            neuron param, per projection/drive argument, per setting.
 *   plasticity (sema_plasticity.c, called from check) checks rules once
 *            per use: a rule's params become params of the projection, and
 *            every expression is elaborated with w in that projection's
 *            weight unit; it also checks modulators, releases and weight
 *            records (docs/language.md sections 12-14).
 *   lower    orders the SParams by dependency and flattens everything into
 *            the IrModel of ir.h; it also owns the linear-system analysis
 *            used by `method exact` and by the traces of rules.
 *
 * Two index spaces meet in IrExpr.index of IR_PARAM nodes before lowering:
 *   index >= 0        an SParam id (model-level, population, projection ...)
 *   index <  0        parameter k = -index - 1 of the enclosing neuron
 *                     template; lowering (or instantiation for a population)
 *                     replaces it by that population's copy.
 * After lowering every IR_PARAM index is a position in IrModel.params.
 */
#ifndef ENGRAM_SEMA_INTERNAL_H
#define ENGRAM_SEMA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "sema.h"

/* ---- limits (each with its reason) --------------------------------------- */

/* Recursion depth of expression elaboration: the parser accepts long chains
 * of prefix operators that its bracket counter does not see. */
#define SEMA_MAX_DEPTH 400
/* Nodes one expression may grow to while lets are inlined: `let b = a + a`
 * chains double at each step, so a short file could ask for 2^40 nodes. */
#define SEMA_MAX_NODES 200000
/* Params (and lets) whose defaults refer ahead recurse once per level;
 * also the depth of constant folding through params. */
#define SEMA_MAX_CHAIN 1000
/* Passes of state-dimension inference (see check.c). */
#define SEMA_MAX_INFER_PASSES 64
/* Dimension exponents beyond this are certainly a mistake, and int8_t would
 * wrap not far above it. */
#define SEMA_MAX_DIM_EXP 24
/* Largest exactly integrated system: the runtime's matrix exponential takes
 * 32 x 32 (ENGRAM_EXPM_MAX_N in rt_core.h), one row being the affine term. */
#define SEMA_MAX_LINEAR 31
/* Largest population size: neuron indices are uint32 in the runtime. */
#define SEMA_MAX_POP_SIZE 4294967295.0

/* ---- name maps ----------------------------------------------------------- */

/* String -> int, open addressing in the arena: the tables of a generated
 * model can hold 10^5 names, and linear lookups would make checking it
 * quadratic.  Keys are not copied (they live in the arena already). */
typedef struct NameMap {
    const char **keys;
    int *vals;
    int n, cap;
} NameMap;

int namemap_get(const NameMap *m, const char *key);         /* -1 if absent */
void namemap_put(Arena *a, NameMap *m, const char *key, int val);   /* replaces */

/* ---- neuron templates ---------------------------------------------------- */

enum { VISIT_NEW = 0, VISIT_BUSY, VISIT_DONE };

typedef struct NParam {
    const char *name;
    SrcSpan span;             /* the name in `param NAME = ...` */
    Expr *ast;
    IrExpr *value;            /* template default (NULL: poisoned or a list) */
    EngramDim dim;
    bool ok;                  /* dim is valid */
    bool is_list;
    double *list;             /* builtin list defaults (internal units) */
    int nlist;
    int visit;
} NParam;

/* How a state's dimension is known (see check.c, "state dimensions"). */
enum { SDIM_KNOWN = 0, SDIM_INFER, SDIM_BAD };

typedef struct NState {
    const char *name;
    SrcSpan span;
    Expr *init_ast;
    Stmt *ode_stmt;           /* NULL if the state has no ODE */
    EngramDim dim;
    int dim_how;              /* SDIM_* */
    IrExpr *init, *ode;
    bool held;
} NState;

typedef struct NLet {
    const char *name;
    SrcSpan span;
    Expr *ast;
    int visit;                /* its own check: VISIT_NEW, _BUSY, _DONE */
    bool bad;                 /* its own check failed: uses stay quiet */
    bool inline_busy;         /* being inlined: a use inside is a cycle */
} NLet;

typedef struct NPort {
    const char *name;
    SrcSpan span;
    int state;                /* -1 if the target is not a state */
} NPort;

/* What a neuron-local name is, in NameMap values: kind << 28 | index. */
enum { LOCAL_PARAM = 1, LOCAL_STATE = 2, LOCAL_LET = 3, LOCAL_SHIFT = 28 };

typedef struct SemaNeuron {
    Decl *decl;
    const char *name;
    EngramPopKind kind;
    NParam *params; int nparams;
    NState *states; int nstates;
    NLet *lets; int nlets;
    NPort *ports; int nports;
    IrExpr *threshold;
    IrAssign *reset; int nreset;
    IrExpr *refractory;       /* a time, params only; NULL: none */
    EngramMethod method;
    /* exact: see IrPop (template param indices) */
    int *lin_vars; int nlinear;
    IrExpr **coef;
    bool checked, poisoned;
    int capparams, capstates, caplets, capports;   /* array growth */
    NameMap locals;           /* name -> LOCAL_* | index */
} SemaNeuron;

/* ---- modules ------------------------------------------------------------- */

typedef struct SemaRule SemaRule;

typedef struct NameEntry {
    const char *name;
    SemaNeuron *neuron;       /* NULL for a plasticity rule */
    SemaRule *rule;           /* NULL for a neuron */
    Decl *decl;               /* the neuron's or rule's declaration */
    SrcSpan span;
    const char *from;         /* module label for imported names, NULL if defined here */
} NameEntry;

enum { MOD_LOADING = 1, MOD_DONE };

typedef struct Module {
    const char *key;          /* canonical path: the cache key */
    const char *label;        /* "std.neurons", or the model file's path */
    int file;
    AstFile *ast;
    int state;                /* MOD_* */
    NameEntry *scope; int nscope, capscope;  /* defined and imported neurons and rules */
} Module;

/* ---- symbolic parameters ------------------------------------------------- */

typedef struct SParam {
    const char *path;
    EngramDim dim;
    bool ok;                  /* dim known; false: poisoned, references stay silent */
    uint32_t flags;           /* ENGRAM_PARAM_* */
    IrExpr *value;            /* references SParam ids only */
    double *list; int nlist;  /* ENGRAM_PARAM_LIST */
    SrcSpan span;
    /* model-level params are elaborated on first use (dependency order) */
    Expr *ast;
    int visit;
    /* constant folding memo: 0 not tried, 1 busy, 2 constant, 3 not constant */
    int fold_state;
    double fold_value;
} SParam;

/* ---- model tables -------------------------------------------------------- */

typedef struct SemaPop {
    Decl *decl;
    const char *region, *name, *path;
    SemaNeuron *neuron;       /* NULL: unknown model (reported) */
    int size_sid;
    int *param_sid;           /* one per neuron param */
    int refr_sid;             /* -1: none */
    bool record;
} SemaPop;

typedef struct SemaDist {
    EngramDistKind kind;
    int sid[4];               /* -1: absent */
} SemaDist;

typedef struct SemaProj {
    Decl *decl;
    const char *name;
    SemaPop *src, *dst;
    bool ok;                  /* fully checked, ready to lower */
    EngramConnKind rule;
    int rule_sid;
    int port;
    bool autapses;
    SemaDist weight, delay;
    const Expr *delay_expr;   /* NULL: the default, one step */
    struct RuleInst *plastic; /* NULL: static synapses */
    int src_group, src_ens;   /* an ensemble endpoint (-1: the whole population) */
    int dst_group, dst_ens;
} SemaProj;

typedef struct SemaDrive {
    Decl *decl;
    const char *name;
    SemaPop *dst;
    bool ok;
    int port;
    int rate_sid, count_sid, weight_sid;
} SemaDrive;

/* ---- plasticity rules, modulators, releases (sema_plasticity.c) ---------- */

/* What a rule-local name is, in SemaRule.locals: kind << LOCAL_SHIFT | index
 * (index into params, vars or lets). */
enum { RLOCAL_PARAM = 1, RLOCAL_VAR = 2, RLOCAL_LET = 3 };

typedef struct RParam {
    const char *name;
    SrcSpan span;
    Expr *ast;                /* default; NULL: a `: weight` param the use must give */
    bool weight_unit;         /* `param x : weight` */
} RParam;

/* A synapse variable or trace.  kind is IR_SYNVAR, IR_PRE_TRACE or
 * IR_POST_TRACE; index counts within that kind (the IrRule tables). */
typedef struct RVar {
    const char *name;
    SrcSpan span;
    Expr *init_ast;
    Stmt *ode_stmt;           /* NULL: constant between events */
    IrExprKind kind;
    int index;
} RVar;

typedef struct RLet {
    const char *name;
    SrcSpan span;
    Expr *ast;
    bool busy;                /* being inlined: a use inside is a cycle */
} RLet;

/* Where a handler statement runs: before the synapse loop (a trace of the
 * spiking side, once per spike), in it, or after it. */
enum { RSEC_BEFORE, RSEC_SYN, RSEC_AFTER };

typedef struct RAssign {
    Stmt *stmt;
    IrTargetKind target;
    int var;                  /* SemaRule.vars index; -1 for w */
    int section;              /* RSEC_* */
} RAssign;

typedef struct RHandler {
    Stmt *stmt;               /* NULL: the rule has no such handler */
    RAssign *items; int nitems;
} RHandler;

/* A rule's tables, built once (sema_rule_tables); its expressions are
 * elaborated per use (RuleInst), with w in that projection's unit. */
struct SemaRule {
    Decl *decl;
    const char *name;
    RParam *params; int nparams, capparams;
    RVar *vars; int nvars, capvars;
    int nsyn, npre, npost;
    RLet *lets; int nlets, caplets;
    Stmt *bounds;
    RHandler on_pre, on_post, every;
    NameMap locals;           /* name -> RLOCAL_* << LOCAL_SHIFT | index */
    bool tabled, bad;         /* tables built; structural errors (uses are refused) */
    int nuses;
};

/* How a variable's dimension is known during one use: SDIM_* (as states). */
typedef struct RuleInst {
    SemaRule *rule;
    struct SemaProj *proj;
    const Stmt *use;          /* `plasticity NAME(args)` */
    EngramDim wdim;           /* the projection's weight unit */
    const Arg **args;         /* per rule param: the use's argument, or NULL */
    int *param_sid;           /* per rule param: the projection's copy */
    int *param_visit;         /* VISIT_* of each param's elaboration */
    EngramDim *var_dim; int *var_how;
    int plastic_sid, w_lo_sid, w_hi_sid, every_sid;
    const Expr *every_expr;   /* for the check against dt */
    IrVar *vars;              /* per rule var (IR_PARAM indices are sids) */
    IrHandler on_pre, on_post, every;
} RuleInst;

typedef struct SemaModulator {
    Decl *decl;
    const char *name;
    EngramDim dim;
    bool ok;
    int baseline_sid, tau_sid;
} SemaModulator;

typedef struct SemaRelease {
    Decl *decl;
    const char *name;         /* "release<k>" */
    bool ok;
    int modulator;            /* index in Sema.modulators; -1 unknown */
    SemaPop *src, *dst;
    int amount_sid, src_index_sid, dst_index_sid, window_sid;
    SemaDist delay;           /* kind CONST with sid[0] = -1: no delay */
} SemaRelease;

typedef struct SemaWeightRec {
    Decl *decl;
    int proj;                 /* index in Sema.projs; -1 unknown */
    int every_sid;
} SemaWeightRec;

/* ---- ensembles, sequences, stimuli, protocols (sema_protocol.c) ---------- */

typedef struct SemaEnsGroup {
    Decl *decl;
    const char *region;
    int pop;                  /* index in Sema.pops; -1 unknown */
    EngramEnsKind kind;
    int count_sid;            /* SPLIT */
    int *range_sid; int nens; /* RANGES: 2 sids per ensemble; nens also for named splits */
    const char **names; int nnames;
    bool ok;
} SemaEnsGroup;

typedef struct SemaSequence {
    Decl *decl;
    int group;                /* -1 unknown */
    int *elems; int nelems;
    int interval_sid, threshold_sid, window_sid;
    bool ok;
} SemaSequence;

typedef struct SemaStimulus {
    Decl *decl;
    SemaPop *dst;
    int port, weight_sid;
    bool ok;
} SemaStimulus;

struct IrProtocol;
struct IrMeasure;

typedef struct ModelParam {
    const char *name;
    int sid;
    Decl *decl;
} ModelParam;

/* A declaration whose value is being elaborated (to report dependency
 * cycles as "a -> b -> a"): owner is the neuron for neuron params, NULL for
 * model params. */
typedef struct BusyEntry {
    const void *owner;
    int index;
    const char *name;
} BusyEntry;

typedef struct Sema {
    DiagCtx *d;
    Arena *a;
    const char *stdlib_dir;
    int precision;
    Module **mods; int nmods, capmods;
    Module **stack; int nstack, capstack;   /* imports being loaded, for cycles */
    Module *main;
    /* declarations of the model file, in source order */
    ModelParam *mparams; int nmparams, capmparams;
    SemaPop *pops; int npops, cappops;
    SemaProj *projs; int nprojs, capprojs;
    SemaDrive *drives; int ndrives, capdrives;
    Decl **sims; int nsims, capsims;
    Decl **records; int nrecords, caprecords;
    SemaModulator *modulators; int nmodulators, capmodulators;
    SemaRelease *releases; int nreleases, capreleases;
    SemaWeightRec *wrecs; int nwrecs, capwrecs;
    SemaRule **rules; int nrules, caprules;          /* every rule read, for its tables */
    SemaNeuron **neurons; int nneurons, capneurons;  /* every neuron read, for checking */
    /* parameter table */
    SParam *params; int nparams, capparams;
    NameMap paths;                           /* SParam path -> sid */
    NameMap mparam_names;                    /* model param name -> index */
    NameMap pop_paths;                       /* "REGION.POP" -> index */
    NameMap link_names;                      /* projection: index, drive: -2 - index */
    int dt_sid, duration_sid, seed_sid;
    BusyEntry *busy; int nbusy, capbusy;
    int fold_depth;
    bool silent;              /* dimension inference: no diagnostics */
    bool changed;             /* an inference pass learnt a dimension */
    NameMap mod_names;                       /* modulator name -> index */
    SemaEnsGroup *ens; int nens, capens;
    SemaSequence *seqs; int nseqs, capseqs;
    SemaStimulus *stims; int nstims, capstims;
    Decl **protos; int nprotos, capprotos;
    NameMap seq_names;                       /* sequence name -> index */
    /* built by sema_check_protocols, IR_PARAM indices are sids until lowering */
    struct IrProtocol *ir_protos;
    struct IrMeasure *ir_measures; int nir_measures, capir_measures;
    /* one use of a rule being checked: its variables bind dimensions, and
     * an error already reported for another use of the same rule (same
     * place, same text) is not repeated */
    RuleInst *rinst;
    bool dedupe, muted;
    NameMap reported;
    int nerrors_all;          /* errors raised, repeated ones included */
} Sema;

/* ---- helpers shared by the phases ---------------------------------------- */

/* Grows an arena array of elem-size items to hold n + 1 (copying; arena
 * memory is never freed one block at a time, the waste is bounded by 2x). */
void *sema_grow(Arena *a, void *items, int n, int *cap, size_t elem);
#define SEMA_PUSH(a, arr, n, cap) \
    ((arr) = sema_grow((a), (arr), (n), &(cap), sizeof *(arr)), &(arr)[(n)++])

/* Diagnostics that stay quiet while S->silent (inference passes). */
void sema_error(Sema *S, SrcSpan span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sema_hint(Sema *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sema_note(Sema *S, SrcSpan span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "hint: did you mean 'X'?" when a candidate is close to name. */
void sema_suggest(Sema *S, const char *name, const char *const *cands, int n);

/* "a time (ms)", "a voltage (mV)", "a dimensionless number", "a value in mV/ms". */
const char *sema_dim_describe(EngramDim d, char *buf, size_t n);

/* resolve.c: loads and parses the model file already registered as `file`
 * and its imports, and fills the declaration tables.  false on errors. */
bool sema_resolve(Sema *S, int file);
SemaNeuron *sema_find_neuron(Sema *S, const char *name);
SemaPop *sema_find_pop(Sema *S, const char *region, const char *name);
void sema_init(Sema *S, DiagCtx *d, Arena *a, const SemaOptions *opt);

/* check.c: checks every neuron and declaration; false on errors. */
bool sema_check(Sema *S);
/* Checks one neuron template (used by sema_check, exposed for tests). */
void sema_check_neuron(Sema *S, SemaNeuron *n);

/* ---- expression elaboration (check.c, shared with sema_plasticity.c) ----- */

/* What an expression is for; decides which names it may read.  Inside a
 * rule (Scope.ri set) the same contexts apply: NPARAM for param defaults,
 * bounds and the every interval, INIT for variable initial values, EQ for
 * ODEs and handlers. */
typedef enum Ctx {
    CTX_MODEL,    /* model params, sizes, overrides, projections, drives, settings */
    CTX_NPARAM,   /* a neuron param's default */
    CTX_INIT,     /* a state's initial value */
    CTX_EQ,       /* ODE right-hand sides, threshold, reset, lets */
    CTX_REFR,     /* the refractory period */
} Ctx;

/* Which side a per-spike statement of a rule handler may read (0: any). */
enum { RSIDE_ANY = 0, RSIDE_PRE, RSIDE_POST };

struct ProtoScope;

typedef struct Scope {
    Sema *S;
    struct ProtoScope *proto;   /* inside a protocol: loop variables and measures */
    SemaNeuron *n;     /* NULL at model level */
    Ctx ctx;
    bool dists;        /* uniform()/normal() allowed (initial values) */
    int depth;
    int nodes;
    bool dead;         /* too deep or too large: reported once, all poisoned */
    const Expr *root;  /* the expression being elaborated, for "too large" */
    RuleInst *ri;      /* inside a rule: the use being checked */
    int side;          /* RSIDE_*: per-spike statements read one side only */
    const char *side_why;   /* what runs per spike, for the message */
} Scope;

/* An elaborated expression.  e == NULL: poisoned (already reported).
 * flex: the value is a bare 0, or (during inference) a state of unknown
 * dimension; it takes the dimension of what it meets.  bind: that state
 * (inside a rule: the SemaRule.vars index). */
typedef struct TExpr {
    IrExpr *e;
    bool flex;
    int bind;
} TExpr;

Scope sema_scope(Sema *S, SemaNeuron *n, Ctx ctx);
TExpr sema_elab(Scope *sc, const Expr *x);
TExpr sema_poison(void);
TExpr sema_typed(IrExpr *e);
bool sema_expect_dim(Sema *S, TExpr *t, EngramDim want, const Expr *ast, const char *why);
bool sema_need_number(Scope *sc, const TExpr *t, const Expr *ast);
void sema_flex_set(Sema *S, TExpr *t, EngramDim dim);
void sema_flex_set_dim(IrExpr *e, EngramDim dim);
bool sema_dim_combine(Sema *S, EngramDim a, EngramDim b, int sign, SrcSpan span, EngramDim *out);
const char *sema_ctx_reader(Ctx ctx);
/* Dependency chains of defaults ("a -> b -> a"), see check.c. */
bool sema_busy_full(Sema *S, SrcSpan use);
void sema_busy_push(Sema *S, const void *owner, int index, const char *name);
const char *sema_busy_chain(Sema *S, const void *owner, int index, const char *name);
/* Parameter table and constant folding. */
int sema_sparam_new(Sema *S, const char *path, EngramDim dim, uint32_t flags, SrcSpan span);
bool sema_fold(Sema *S, const IrExpr *e, double *out);
bool sema_fold_sid(Sema *S, int sid, double *out);
/* Call-style argument binding: got[k] is the argument for names[k]. */
bool sema_bind_args(Sema *S, const char *fname, SrcSpan at, Arg *const *args, int nargs,
                    const char *const *names, int nreq, int nall, const Arg **got);
/* A model-level value or uniform()/normal() as params base, base.low ... */
SemaDist sema_link_value(Sema *S, const char *base, const Expr *x, EngramDim want, bool known,
                         const char *why);
/* One model-level argument as the param `path`. */
int sema_arg_param(Sema *S, const char *path, const Expr *x, EngramDim want, bool known,
                   uint32_t flags, const char *why);
SemaPop *sema_path_pop(Sema *S, const Path *p);
int sema_find_state(const SemaNeuron *n, const char *name);
const char *sema_ode_var(Arena *a, const char *name);

/* ---- plasticity (sema_plasticity.c) -------------------------------------- */

/* Builds a rule's tables once, reporting structural errors. */
void sema_rule_tables(Sema *S, SemaRule *r);
/* Checks modulators (before projections: rules read them by name). */
void sema_check_modulators(Sema *S);
/* Checks the use `plasticity NAME(args)` by projection p, whose weights are
 * in wdim; sets p->plastic.  false on errors. */
bool sema_check_plasticity(Sema *S, SemaProj *p, const Stmt *use, EngramDim wdim);
/* Releases and weight records (after projections); every intervals against
 * dt (after the settings). */
void sema_check_releases(Sema *S);
void sema_check_weight_recs(Sema *S);
void sema_check_every(Sema *S);
/* Inside a rule: names of the rule (NULL found = not a rule name) and the
 * binding of a variable's dimension during inference. */
TExpr sema_rule_name(Scope *sc, const Expr *x, bool *found);
void sema_rule_bind(Sema *S, int var, EngramDim dim);
/* Rule names for "did you mean" (fills c, returns the count; c may be NULL). */
int sema_rule_candidates(const Scope *sc, const char **c);

/* ---- ensembles, sequences, stimuli, protocols (sema_protocol.c) --------- */

/* Ensembles, sequences (after populations), stimuli, then the protocols. */
void sema_check_ensembles(Sema *S);
void sema_check_protocols(Sema *S);
/* A projection's end: REGION.POP, REGION.POP.NAME or REGION.POP[k] (k a
 * constant); sets group/ens (-1 for a whole population). */
SemaPop *sema_endpoint(Sema *S, const Path *p, const Expr *index, int *group, int *ens);
/* Inside a protocol: a loop variable, or a measure call (found = handled). */
TExpr sema_proto_name(Scope *sc, const Expr *x, bool *found);
TExpr sema_proto_call(Scope *sc, const Expr *x, bool *found);
/* check.c: a stimulus declaration (shares the port checks with drives). */
void sema_check_stimulus(Sema *S, SemaStimulus *st);
/* lower.c hands over the sid -> param index map; fills the IR tables. */
void sema_lower_protocols(Sema *S, IrModel *m, const int *sid_map);

/* lower.c */
IrModel *sema_lower(Sema *S, int file);
/* Linear-system analysis of a checked neuron's ODEs (for method exact).
 * On success fills n->lin_vars/nlinear/coef and returns NULL; otherwise
 * returns the sub-expression that breaks linearity and a reason. */
const IrExpr *sema_linearize(Sema *S, SemaNeuron *n, const char **why);
/* dx/dt = rhs as a*x + b for the rule variable x (an IR_SYNVAR, IR_PRE_TRACE
 * or IR_POST_TRACE node of that kind and index), with a and b made of params
 * and constants (never NULL on success).  Returns NULL on success, else the
 * sub-expression that breaks linearity and a reason. */
const IrExpr *sema_linearize_var(Sema *S, const IrExpr *rhs, IrExprKind kind, int index,
                                 IrExpr **a, IrExpr **b, const char **why);
/* Compiles an already registered file (tests use diag_add_text). */
IrModel *sema_compile_loaded(DiagCtx *d, Arena *a, int file, const SemaOptions *opt);

/* ---- IR helpers (ir.c) --------------------------------------------------- */

IrExpr *ir_new(Arena *a, IrExprKind kind, EngramDim dim, SrcSpan span);
IrExpr *ir_const(Arena *a, double v, EngramDim dim, SrcSpan span);
IrExpr *ir_param(Arena *a, int index, EngramDim dim, SrcSpan span);
IrExpr *ir_binary(Arena *a, OpKind op, IrExpr *x, IrExpr *y, EngramDim dim, SrcSpan span);
IrExpr *ir_unary(Arena *a, OpKind op, IrExpr *x, SrcSpan span);

/* Deep copy, mapping IR_PARAM indices: a negative index k is replaced by
 * local[-k-1] (when local is given), then any index i by global[i] (when
 * global is given). */
IrExpr *ir_copy_map(Arena *a, const IrExpr *e, const int *local, int nlocal, const int *global);

/* Constant evaluation.  param(ctx, index, &v) supplies IR_PARAM values (NULL:
 * params are not constant).  false when the value is not a constant (states,
 * time, draws) or param() fails. */
typedef bool (*IrParamFn)(void *ctx, int index, double *out);
bool ir_eval(const IrExpr *e, IrParamFn param, void *ctx, double *out);
bool ir_reads(const IrExpr *e, IrExprKind kind);   /* any node of that kind? */

/* Builtin function table shared by check and dump. */
typedef struct BuiltinFn {
    const char *name;
    EngramBuiltin fn;
    int arity;
} BuiltinFn;
const BuiltinFn *ir_builtin_find(const char *name);
const char *ir_builtin_name(EngramBuiltin fn);
extern const char *const ir_builtin_names[];   /* NULL-terminated, for suggestions */

void ir_print_expr(FILE *out, const IrExpr *e, const IrModel *m, const IrPop *pop);

/* sha256.c: lowercase hex digest (64 chars + NUL) of n bytes. */
void sema_sha256_hex(const void *data, size_t n, char out[65]);

#endif
