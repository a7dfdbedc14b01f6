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
 *   lower    orders the SParams by dependency and flattens everything into
 *            the IrModel of ir.h; it also owns the linear-system analysis
 *            used by `method exact`.
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

typedef struct NameEntry {
    const char *name;
    SemaNeuron *neuron;       /* NULL for a plasticity rule */
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
} SemaProj;

typedef struct SemaDrive {
    Decl *decl;
    const char *name;
    SemaPop *dst;
    bool ok;
    int port;
    int rate_sid, count_sid, weight_sid;
} SemaDrive;

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

/* lower.c */
IrModel *sema_lower(Sema *S, int file);
/* Linear-system analysis of a checked neuron's ODEs (for method exact).
 * On success fills n->lin_vars/nlinear/coef and returns NULL; otherwise
 * returns the sub-expression that breaks linearity and a reason. */
const IrExpr *sema_linearize(Sema *S, SemaNeuron *n, const char **why);
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
