/*
 * sema.h - from a model file to the network IR: read the file and its
 * imports (resolve.c), bind names and check dimensions and ranges (check.c),
 * and flatten into tables (lower.c).  Each phase queues its diagnostics and
 * the pipeline stops after a phase that reported errors.
 */
#ifndef ENGRAM_SEMA_H
#define ENGRAM_SEMA_H

#include "ast.h"
#include "diag.h"
#include "ir.h"

typedef struct SemaOptions {
    const char *stdlib_dir;   /* folder holding neurons.engram etc. (std.X) */
    int precision;            /* 4 or 8 */
} SemaOptions;

/* Parses `path` and its imports, resolves, checks and lowers.  Returns NULL
 * when errors were found (they are queued in d); the IR lives in `a`. */
IrModel *sema_compile_file(DiagCtx *d, Arena *a, const char *path, const SemaOptions *opt);

#endif
