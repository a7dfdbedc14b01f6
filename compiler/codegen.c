/*
 * codegen.c - the LLVM module of one model: set-up, the target machine,
 * the optimisation pipeline, and the three ways out (textual IR, object
 * file, in-process JIT).
 *
 * cg_generate reads as the list of its steps: types, target machine,
 * kernels (codegen_kernels.c), model tables (codegen_blob.c), verify,
 * optimise.  The module is built in the context of an ORC thread-safe
 * context from the start, so the same module can go to the object writer or
 * to LLJIT without being rebuilt.
 *
 * Order: small helpers shared by the codegen files, target machine,
 * generation, output, JIT.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen_internal.h"

/* ---- helpers ------------------------------------------------------------------- */

LLVMValueRef cg_const_real(CgCtx *c, double v)
{
    return LLVMConstReal(c->t_real, v);
}

LLVMValueRef cg_const_i64(CgCtx *c, int64_t v)
{
    return LLVMConstInt(c->t_i64, (unsigned long long)v, 1);
}

LLVMValueRef cg_const_i32(CgCtx *c, int32_t v)
{
    return LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)v, 1);
}

LLVMValueRef cg_elem_ptr(CgCtx *c, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef i)
{
    return LLVMBuildInBoundsGEP2(c->b, ty, base, &i, 1, "");
}

LLVMValueRef cg_load_field(CgCtx *c, LLVMValueRef base, size_t offset, LLVMTypeRef ty, const char *name)
{
    LLVMValueRef p = cg_elem_ptr(c, c->t_i8, base, cg_const_i64(c, (int64_t)offset));
    return LLVMBuildLoad2(c->b, ty, p, name);
}

LLVMValueRef cg_to_real(CgCtx *c, LLVMValueRef f64)
{
    return c->m->precision == 4 ? LLVMBuildFPTrunc(c->b, f64, c->t_real, "") : f64;
}

void cg_add_attr(CgCtx *c, LLVMValueRef fn, LLVMAttributeIndex idx, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

uint32_t cg_kernel_add(CgCtx *c, LLVMValueRef fn)
{
    if (c->nkernels == c->capkernels) {
        c->capkernels = c->capkernels ? 2 * c->capkernels : 16;
        LLVMValueRef *k = realloc(c->kernels, (size_t)c->capkernels * sizeof *k);
        if (!k)
            abort();   /* a handful of pointers: nothing sensible to recover */
        c->kernels = k;
    }
    c->kernels[c->nkernels] = fn;
    return (uint32_t)c->nkernels++;
}

void cg_error(CgCtx *c, SrcSpan span, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->nerrors++;
    if (span.first_line > 0)
        diag_error(c->diag, span, "cannot compile: %s", msg);
    else
        diag_error_noloc(c->diag, "cannot compile: %s", msg);
}

/* Queues an LLVM error message and consumes the error. */
static void cg_llvm_error(DiagCtx *d, const char *what, LLVMErrorRef err)
{
    char *msg = LLVMGetErrorMessage(err);
    diag_error_noloc(d, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
}

static void cg_init_types(CgCtx *c)
{
    LLVMContextRef x = c->ctx;
    c->t_f64 = LLVMDoubleTypeInContext(x);
    c->t_real = c->m->precision == 4 ? LLVMFloatTypeInContext(x) : c->t_f64;
    c->t_i1 = LLVMInt1TypeInContext(x);
    c->t_i8 = LLVMInt8TypeInContext(x);
    c->t_i16 = LLVMInt16TypeInContext(x);
    c->t_i32 = LLVMInt32TypeInContext(x);
    c->t_i64 = LLVMInt64TypeInContext(x);
    c->t_ptr = LLVMPointerTypeInContext(x, 0);
    c->t_void = LLVMVoidTypeInContext(x);
}

/* ---- target machine ------------------------------------------------------------------- */

static void cg_init_llvm(void)
{
    static bool done;
    if (done)
        return;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
    done = true;
}

static LLVMCodeGenOptLevel cg_codegen_level(int opt)
{
    return opt <= 0 ? LLVMCodeGenLevelNone
         : opt == 1 ? LLVMCodeGenLevelLess
         : opt == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
}

/* Host CPU and its features for NULL/"native"; else the named CPU with its
 * own default features (an object meant for other machines). */
static int cg_create_tm(DiagCtx *d, CgModule *cm, const CgOptions *opt)
{
    char *triple = LLVMGetDefaultTargetTriple();
    char *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        diag_error_noloc(d, "no LLVM target for %s: %s", triple, err);
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return -1;
    }
    bool native = !opt->cpu || strcmp(opt->cpu, "native") == 0;
    char *cpu = native ? LLVMGetHostCPUName() : NULL;
    char *features = native ? LLVMGetHostCPUFeatures() : NULL;
    cm->tm = LLVMCreateTargetMachine(target, triple, native ? cpu : opt->cpu, native ? features : "",
                                     cg_codegen_level(opt->opt_level), LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMSetTarget(cm->mod, triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cm->tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(cm->mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    return 0;
}

/* Whether the target has vector masked stores, which the loop vectoriser
 * needs to keep a conditional store in a vectorised loop (without them the
 * update kernels store unconditionally): x86 with AVX2, from the host's
 * features, or from the name of a CPU that has them. */
static bool cg_masked_stores(const char *cpu)
{
    if (!cpu || strcmp(cpu, "native") == 0) {
        char *f = LLVMGetHostCPUFeatures();   /* "+sse2,+avx2,-amx-tile,..." */
        size_t n = strlen("+avx2");
        bool yes = false;
        for (const char *p = f; p && !yes && (p = strstr(p, "+avx2")); p += n)
            yes = (p == f || p[-1] == ',') && (p[n] == ',' || p[n] == '\0');
        LLVMDisposeMessage(f);
        return yes;
    }
    static const char *avx2[] = {"x86-64-v3", "x86-64-v4", "haswell", "broadwell", "skylake",
                                 "cascadelake", "cooperlake", "cannonlake", "icelake", "tigerlake",
                                 "rocketlake", "alderlake", "raptorlake", "meteorlake", "arrowlake",
                                 "lunarlake", "sapphirerapids", "emeraldrapids", "graniterapids",
                                 "sierraforest", "clearwaterforest", "znver"};
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++)
        if (strncmp(cpu, avx2[i], strlen(avx2[i])) == 0)
            return true;
    return false;
}

/* Emits a trivial function for `cpu` in this (child) process; LLVM complains
 * on stderr about an unknown CPU, or aborts when it lacks 64-bit mode. */
static void cg_cpu_probe(const char *cpu)
{
    cg_init_llvm();
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err))
        _exit(1);
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, "", LLVMCodeGenLevelNone,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("probe", ctx);
    LLVMSetTarget(mod, triple);
    LLVMValueRef fn = LLVMAddFunction(mod, "probe", LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
    LLVMBuildRetVoid(b);
    LLVMMemoryBufferRef buf = NULL;
    _exit(LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &err, &buf) ? 1 : 0);
}

bool cg_cpu_known(const char *cpu)
{
    if (!cpu || strcmp(cpu, "native") == 0)
        return true;
    int fds[2];
    if (pipe(fds) != 0)
        return true;              /* cannot check: LLVM will have its say later */
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {               /* the probe may abort: keep it out of this process */
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        cg_cpu_probe(cpu);
    }
    close(fds[1]);
    char out[4096];
    size_t n = 0;
    ssize_t got;
    while ((got = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return true;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strstr(out, "not a recognized processor");
}

/* ---- generation -------------------------------------------------------------------------- */

static int cg_emit_kernels(CgCtx *c)
{
    const IrModel *m = c->m;
    for (int i = 0; i < m->npops; i++) {
        c->pop_kernel[i] = ENGRAM_NONE;
        if (m->pops[i].kind != ENGRAM_POP_NEURON)
            continue;
        LLVMValueRef fn = cg_emit_pop_kernel(c, i);
        if (fn)
            c->pop_kernel[i] = cg_kernel_add(c, fn);
    }
    for (int j = 0; j < m->nprojs; j++)
        c->proj_kernel[j] = cg_kernel_add(c, cg_emit_deliver_kernel(c, j));
    for (int j = 0; j < m->nprojs; j++) {
        LLVMValueRef on_post = cg_emit_on_post_kernel(c, j);
        c->proj_on_post[j] = on_post ? cg_kernel_add(c, on_post) : ENGRAM_NONE;
        LLVMValueRef every = cg_emit_every_kernel(c, j);
        c->proj_every[j] = every ? cg_kernel_add(c, every) : ENGRAM_NONE;
        LLVMValueRef arrive = cg_emit_arrive_kernel(c, j);
        c->proj_arrive[j] = arrive ? cg_kernel_add(c, arrive) : ENGRAM_NONE;
    }
    return c->nerrors ? -1 : 0;
}

static int cg_verify(DiagCtx *d, LLVMModuleRef mod)
{
    char *msg = NULL;
    if (!LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        LLVMDisposeMessage(msg);
        return 0;
    }
    diag_error_noloc(d, "internal error: the generated LLVM IR is invalid:\n%s", msg);
    LLVMDisposeMessage(msg);
    return -1;
}

/* The new pass manager's default<On> pipeline, with the vectorisers on from O2. */
static int cg_optimise(DiagCtx *d, CgModule *cm, int level)
{
    char passes[32];
    snprintf(passes, sizeof passes, "default<O%d>", level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, level >= 2);
    LLVMErrorRef err = LLVMRunPasses(cm->mod, passes, cm->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (err) {
        cg_llvm_error(d, "optimisation failed", err);
        return -1;
    }
    return 0;
}

/* Kernels, tables, verification: everything before optimisation. */
static int cg_build(CgCtx *c)
{
    if (cg_emit_kernels(c) != 0)
        return -1;
    if (cg_emit_blob(c) != 0)
        return -1;
    return cg_verify(c->diag, c->mod);
}

CgModule *cg_generate(DiagCtx *d, const IrModel *m, const CgOptions *opt)
{
    if (m->precision != 4 && m->precision != 8) {
        diag_error_noloc(d, "internal error: precision %d is neither 4 nor 8 bytes", m->precision);
        return NULL;
    }
    cg_init_llvm();
    CgModule *cm = calloc(1, sizeof *cm);
    if (!cm)
        return NULL;
    cm->tsc = LLVMOrcCreateNewThreadSafeContext();
    cm->ctx = LLVMOrcThreadSafeContextGetContext(cm->tsc);
    cm->mod = LLVMModuleCreateWithNameInContext(m->name ? m->name : "engram", cm->ctx);
    CgCtx c = {.diag = d, .m = m, .ctx = cm->ctx, .mod = cm->mod,
               .b = LLVMCreateBuilderInContext(cm->ctx)};
    cg_init_types(&c);
    c.pop_kernel = calloc((size_t)m->npops + 1, sizeof *c.pop_kernel);
    c.proj_kernel = calloc((size_t)m->nprojs + 1, sizeof *c.proj_kernel);
    c.proj_on_post = calloc((size_t)m->nprojs + 1, sizeof *c.proj_on_post);
    c.proj_every = calloc((size_t)m->nprojs + 1, sizeof *c.proj_every);
    c.proj_arrive = calloc((size_t)m->nprojs + 1, sizeof *c.proj_arrive);
    int rc = cg_create_tm(d, cm, opt);
    c.masked_stores = cg_masked_stores(opt->cpu);
    if (rc == 0)
        rc = cg_build(&c);
    if (rc == 0)
        rc = cg_optimise(d, cm, opt->opt_level < 0 ? 0 : opt->opt_level > 3 ? 3 : opt->opt_level);
    LLVMDisposeBuilder(c.b);
    free(c.kernels);
    free(c.pop_kernel);
    free(c.proj_kernel);
    free(c.proj_on_post);
    free(c.proj_every);
    free(c.proj_arrive);
    if (rc != 0) {
        cg_free(cm);
        return NULL;
    }
    return cm;
}

void cg_free(CgModule *cm)
{
    if (!cm)
        return;
    if (cm->mod)
        LLVMDisposeModule(cm->mod);
    if (cm->tm)
        LLVMDisposeTargetMachine(cm->tm);
    if (cm->tsc)
        LLVMOrcDisposeThreadSafeContext(cm->tsc);
    free(cm);
}

/* ---- output ------------------------------------------------------------------------------------ */

int cg_write_ir(DiagCtx *d, CgModule *cm, const char *path)
{
    char *err = NULL;
    if (LLVMPrintModuleToFile(cm->mod, path, &err)) {
        diag_error_noloc(d, "cannot write '%s': %s", path, err ? err : "unknown error");
        LLVMDisposeMessage(err);
        return -1;
    }
    return 0;
}

int cg_write_object(DiagCtx *d, CgModule *cm, const char *path)
{
    char *err = NULL;
    if (LLVMTargetMachineEmitToFile(cm->tm, cm->mod, path, LLVMObjectFile, &err)) {
        diag_error_noloc(d, "cannot write '%s': %s", path, err ? err : "unknown error");
        LLVMDisposeMessage(err);
        return -1;
    }
    return 0;
}

/* ---- JIT ------------------------------------------------------------------------------------------ */

struct CgJit {
    LLVMOrcLLJITRef jit;
};

CgJit *cg_jit_open(DiagCtx *d, CgModule *cm)
{
    LLVMOrcJITTargetMachineBuilderRef jtmb = NULL;
    LLVMErrorRef err = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    CgJit *j = NULL;
    if (err) {
        cg_llvm_error(d, "cannot start the JIT", err);
        cg_free(cm);
        return NULL;
    }
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);   /* takes jtmb */
    LLVMOrcLLJITRef jit = NULL;
    err = LLVMOrcCreateLLJIT(&jit, jb);                         /* takes jb */
    if (err) {
        cg_llvm_error(d, "cannot start the JIT", err);
        cg_free(cm);
        return NULL;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(cm->mod, cm->tsc);
    cm->mod = NULL;                                             /* the JIT owns it now */
    err = LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm);
    cg_free(cm);
    if (err) {
        cg_llvm_error(d, "the JIT refused the module", err);
        LLVMOrcDisposeLLJIT(jit);
        return NULL;
    }
    j = calloc(1, sizeof *j);
    if (!j) {
        LLVMOrcDisposeLLJIT(jit);
        return NULL;
    }
    j->jit = jit;
    return j;
}

void *cg_jit_lookup(DiagCtx *d, CgJit *j, const char *name)
{
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err = LLVMOrcLLJITLookup(j->jit, &addr, name);
    if (err) {
        cg_llvm_error(d, "JIT lookup failed", err);
        return NULL;
    }
    return (void *)(uintptr_t)addr;
}

void cg_jit_close(CgJit *j)
{
    if (!j)
        return;
    LLVMErrorRef err = LLVMOrcDisposeLLJIT(j->jit);
    if (err)
        LLVMConsumeError(err);
    free(j);
}

int cg_jit_run(DiagCtx *d, CgModule *cm, int argc, char **argv)
{
    CgJit *j = cg_jit_open(d, cm);
    if (!j)
        return ENGRAM_EXIT_MODEL;
    const uint8_t *blob = cg_jit_lookup(d, j, "engram_model_blob");
    const uint64_t *size = cg_jit_lookup(d, j, "engram_model_blob_size");
    const EngramKernelFn *kernels = cg_jit_lookup(d, j, "engram_model_kernels");
    int rc = ENGRAM_EXIT_MODEL;
    if (blob && size && kernels) {
        EngramProgram prog = {.blob = blob, .blob_size = *size, .kernels = kernels};
        rc = engram_main(&prog, argc, argv);
    }
    cg_jit_close(j);
    return rc;
}
