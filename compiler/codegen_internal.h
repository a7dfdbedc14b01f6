/*
 * codegen_internal.h - what the codegen files share (not for other phases).
 *
 *   codegen.c          module setup, target machine, O3, .ll/.o output, JIT
 *   codegen_expr.c     IrExpr -> LLVM values inside a kernel; builtins
 *   codegen_kernels.c  population update and projection delivery kernels
 *   codegen_plastic.c  plasticity: the on-pre part of delivery, on-post and every kernels
 *   codegen_blob.c     the model tables (engram_rt.h blob) and the kernel table
 *
 * Numeric rules every file follows (docs/language.md section 10 and the
 * determinism requirement): no fast-math flags at all (not even `contract`,
 * so no FMA fusion that would change bits between CPUs), IEEE comparisons,
 * NaN-propagating min/max, and a fixed, documented order of every sum.
 */
#ifndef ENGRAM_CODEGEN_INTERNAL_H
#define ENGRAM_CODEGEN_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"

/* ---- the whole module ------------------------------------------------------ */

typedef struct CgCtx {
    DiagCtx *diag;
    const IrModel *m;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    /* pre-built types; t_real is the model precision (float or double) */
    LLVMTypeRef t_real, t_f64, t_i1, t_i8, t_i16, t_i32, t_i64, t_ptr, t_void;
    /* kernel table in id order: pop update kernels, then delivery kernels,
     * then the on-post, every and arrive kernels of plastic projections */
    LLVMValueRef *kernels;
    int nkernels, capkernels;
    uint32_t *pop_kernel;     /* [npops] kernel id or ENGRAM_NONE */
    uint32_t *proj_kernel;    /* [nprojs] */
    uint32_t *proj_on_post;   /* [nprojs] kernel id or ENGRAM_NONE */
    uint32_t *proj_every;     /* [nprojs] kernel id or ENGRAM_NONE */
    uint32_t *proj_arrive;    /* [nprojs] kernel id or ENGRAM_NONE */
    int nerrors;              /* errors this phase reported */
    bool masked_stores;       /* the target has vector masked stores (x86 AVX2) */
} CgCtx;

struct CgModule {
    LLVMOrcThreadSafeContextRef tsc;   /* owns ctx; the JIT takes the module from it */
    LLVMContextRef ctx;
    LLVMModuleRef mod;                 /* NULL once handed to the JIT */
    LLVMTargetMachineRef tm;
};

/* ---- small helpers (codegen.c) ---------------------------------------------- */

LLVMValueRef cg_const_real(CgCtx *c, double v);
LLVMValueRef cg_const_i64(CgCtx *c, int64_t v);
LLVMValueRef cg_const_i32(CgCtx *c, int32_t v);
/* Loads a field of an argument struct at a byte offset (offsetof of the C type). */
LLVMValueRef cg_load_field(CgCtx *c, LLVMValueRef base, size_t offset, LLVMTypeRef ty,
                           const char *name);
/* The element at base[i] of an array of `ty`. */
LLVMValueRef cg_elem_ptr(CgCtx *c, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef i);
/* Converts a double to the model precision (no-op in double precision). */
LLVMValueRef cg_to_real(CgCtx *c, LLVMValueRef f64);
/* Adds an enum attribute ("noalias", "nocapture", ...) to a function or parameter. */
void cg_add_attr(CgCtx *c, LLVMValueRef fn, LLVMAttributeIndex idx, const char *name);
/* Appends a kernel to the table; returns its id. */
uint32_t cg_kernel_add(CgCtx *c, LLVMValueRef fn);
/* An internal error (a case sema should have excluded), at the IR's span. */
void cg_error(CgCtx *c, SrcSpan span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- expressions (codegen_expr.c) -------------------------------------------- */

/* What a plasticity rule's expression can read at one point of a handler;
 * NULL arrays and values are not available there (an error if read). */
typedef struct CgRuleVals {
    LLVMValueRef w;           /* weight of the current synapse */
    LLVMValueRef *syn;        /* [nsyn] synapse variables of the current synapse */
    LLVMValueRef *pre;        /* [npre] up-to-date pre traces of the source neuron */
    LLVMValueRef *post;       /* [npost] up-to-date post traces of the target neuron */
    LLVMValueRef *pre_state;  /* [npre_states] state arrays of the source population */
    LLVMValueRef pre_index;   /* i64 source neuron */
    LLVMValueRef *post_state; /* [npost_states] */
    LLVMValueRef post_index;  /* i64 target neuron */
    LLVMValueRef *mods;       /* [nmods] modulator levels, model precision */
    int nsyn, npre, npost, npre_states, npost_states, nmods;
} CgRuleVals;

/* What an expression inside a kernel can read. */
typedef struct CgEnv {
    LLVMValueRef *params;     /* [nparams] loaded, in model precision; NULL = unused */
    LLVMValueRef *states;     /* [nstates] current values of this neuron */
    int nstates;
    LLVMValueRef time;        /* t of this evaluation (stage time), model precision */
    LLVMValueRef dt;          /* dt, model precision */
    LLVMValueRef index;       /* neuron index (i64), or NULL */
    const CgRuleVals *rule;   /* inside a plasticity handler, else NULL */
    SrcSpan where;            /* for errors without a better span */
} CgEnv;

/* A numeric value (model precision); booleans become 0/1. */
LLVMValueRef cg_expr_num(CgCtx *c, const CgEnv *env, const IrExpr *e);
/* A truth value (i1); numbers are true when != 0 (NaN is true, as in C). */
LLVMValueRef cg_expr_bool(CgCtx *c, const CgEnv *env, const IrExpr *e);
/* Marks in used[] every parameter index the expression reads. */
void cg_expr_params(const IrExpr *e, bool *used, int nparams);
/* Calls the overloaded intrinsic `name` ("llvm.exp") at the model precision. */
LLVMValueRef cg_intrinsic(CgCtx *c, const char *name, LLVMValueRef *args, unsigned n);
/* NaN-propagating min/max (llvm.minnum would drop a NaN operand). */
LLVMValueRef cg_min(CgCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_max(CgCtx *c, LLVMValueRef a, LLVMValueRef b);

/* ---- kernels (codegen_kernels.c) ---------------------------------------------- */

/* Emits engram_pop_<i>_update; returns NULL after an error. */
LLVMValueRef cg_emit_pop_kernel(CgCtx *c, int pop);
/* Emits engram_proj_<i>_deliver (with the on-pre handler of a plastic projection). */
LLVMValueRef cg_emit_deliver_kernel(CgCtx *c, int proj);

/* ---- plasticity (codegen_plastic.c) --------------------------------------------- */

/* Whether the delivery kernel of the projection runs an on-pre handler (not
 * when the handler runs at arrival, in the arrive kernel). */
bool cg_proj_has_on_pre(const IrProj *p);
/* Builds, from the current insertion point (a block of `fn` where a->plastic
 * is non-NULL and switched on), the plastic delivery of `proj`: deliver each
 * spike with the weight before the handler, run the on-pre handler; branches
 * to `exit` when done. */
void cg_emit_plastic_deliver(CgCtx *c, int proj, LLVMValueRef fn, LLVMValueRef args,
                             LLVMBasicBlockRef exit);
/* engram_proj_<i>_on_post (EngramDeliverKernel) and engram_proj_<i>_every
 * (EngramEveryKernel); NULL when the rule has no such handler or after an error. */
LLVMValueRef cg_emit_on_post_kernel(CgCtx *c, int proj);
LLVMValueRef cg_emit_every_kernel(CgCtx *c, int proj);
/* engram_proj_<i>_arrive (EngramDeliverKernel over a->synapses) for a rule
 * with `on pre arrival`; NULL otherwise. */
LLVMValueRef cg_emit_arrive_kernel(CgCtx *c, int proj);
/* A rule leaf (IR_WEIGHT .. IR_MODULATOR) from env->rule. */
LLVMValueRef cg_rule_leaf(CgCtx *c, const CgEnv *env, const IrExpr *e);

/* ---- model tables (codegen_blob.c) -------------------------------------------- */

/* Serialises the model into the blob and emits engram_model_blob,
 * engram_model_blob_size and engram_model_kernels.  Returns 0 or -1. */
int cg_emit_blob(CgCtx *c);

#endif
