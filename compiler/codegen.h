/*
 * codegen.h - from the network IR to native code through the LLVM C API:
 * one update kernel per neuron population, one delivery kernel per
 * projection, the model tables as a constant blob (engram_rt.h), optimised
 * with the new pass manager (default<O3>) for a target CPU.
 */
#ifndef ENGRAM_CODEGEN_H
#define ENGRAM_CODEGEN_H

#include <stdbool.h>

#include "diag.h"
#include "ir.h"

typedef struct CgOptions {
    const char *cpu;          /* NULL or "native": host CPU and features; else an LLVM CPU name */
    int opt_level;            /* 0..3 (default 3) */
    bool verify;              /* LLVMVerifyModule (always on in debug) */
} CgOptions;

typedef struct CgModule CgModule;   /* an LLVM context + module holding one model */

/* Whether LLVM knows the CPU name (NULL and "native" are always known).
 * Probes in a child process, since LLVM aborts on some unknown names. */
bool cg_cpu_known(const char *cpu);

/* Builds and optimises the module; NULL on failure (diagnostic queued). */
CgModule *cg_generate(DiagCtx *d, const IrModel *m, const CgOptions *opt);
void cg_free(CgModule *cm);

/* Writes the optimised IR as text (.ll). Returns 0 or -1 (diagnostic queued). */
int cg_write_ir(DiagCtx *d, CgModule *cm, const char *path);
/* Writes a relocatable object (.o). Returns 0 or -1. */
int cg_write_object(DiagCtx *d, CgModule *cm, const char *path);
/* Runs the model in-process through ORC LLJIT: looks up the blob and kernel
 * table and calls engram_main(argc, argv).  Consumes cm.  Returns an exit code. */
int cg_jit_run(DiagCtx *d, CgModule *cm, int argc, char **argv);

/* The JIT in pieces (cg_jit_run uses them; tests call kernels directly).
 * cg_jit_open consumes cm and returns NULL after queuing a diagnostic;
 * cg_jit_lookup returns a symbol's address (NULL + diagnostic if absent). */
typedef struct CgJit CgJit;
CgJit *cg_jit_open(DiagCtx *d, CgModule *cm);
void *cg_jit_lookup(DiagCtx *d, CgJit *j, const char *name);
void cg_jit_close(CgJit *j);

#endif
