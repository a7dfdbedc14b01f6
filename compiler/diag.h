/*
 * diag.h - source files and diagnostics.
 *
 * The SourceManager owns the text of every file read during a compilation
 * (the model and its imports) and maps spans back to lines for printing.
 * Diagnostics are queued, not printed at once, so that a phase can report
 * several errors and the driver decides when to stop; diag_flush prints them
 * in the order they were reported:
 *
 *   model.engram:3:14: error: cannot add mV and nS
 *       3 | dv/dt = (v + g) / tau
 *         |          ^~~~~
 *   hint: ...
 */
#ifndef ENGRAM_DIAG_H
#define ENGRAM_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ast.h"

/* Limits on input, each with its reason. */
#define SOURCE_MAX_BYTES   (64u << 20)  /* 64 MiB: no sane model is larger; bounds memory */
#define PARSE_MAX_DEPTH    256          /* nesting of parentheses/blocks: stack safety */

typedef struct SourceFile {
    char *path;          /* as given / as resolved */
    char *text;          /* NUL-terminated contents */
    size_t size;
    size_t *line_starts; /* byte offset of each line start */
    int nlines;
} SourceFile;

typedef enum DiagLevel { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE, DIAG_HINT } DiagLevel;

typedef struct Diagnostic {
    DiagLevel level;
    SrcSpan span;        /* file < 0: no location (e.g. a command-line problem) */
    bool has_span;
    char *message;
} Diagnostic;

typedef struct DiagCtx {
    SourceFile *files;
    int nfiles, capfiles;
    Diagnostic *diags;
    int ndiags, capdiags;
    int nerrors, nwarnings;
    int max_errors;      /* stop queuing after this many errors (default 50) */
    bool color;
} DiagCtx;

void diag_init(DiagCtx *d);
void diag_free(DiagCtx *d);

/* Reads a file into the manager.  Returns its index, or -1 after queuing an
 * error (unreadable, too large, binary/NUL bytes, not UTF-8 is accepted).
 * from_span/has_from: where the read was requested (a `use` line), if any. */
int diag_load_file(DiagCtx *d, const char *path, const SrcSpan *from);
/* Registers text that is already in memory (tests, fuzzing).  Copies it. */
int diag_add_text(DiagCtx *d, const char *name, const char *text, size_t size);

const SourceFile *diag_file(const DiagCtx *d, int file);

/* Queue a diagnostic at a span. printf-style. */
void diag_error(DiagCtx *d, SrcSpan span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(DiagCtx *d, SrcSpan span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(DiagCtx *d, SrcSpan span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A hint attaches to the previous diagnostic and is printed as "hint: ..." without a location. */
void diag_hint(DiagCtx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with no source location (files that cannot be read, bad options). */
void diag_error_noloc(DiagCtx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints all queued diagnostics to out (source line, caret under the span) and
 * clears the queue.  The error count is kept. */
void diag_flush(DiagCtx *d, FILE *out);

/* Nearest candidate by edit distance (at most 2, or 1 for short names); NULL if none. */
const char *diag_suggest(const char *name, const char *const *candidates, int ncandidates);

#endif
