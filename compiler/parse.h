/*
 * parse.h - the front end's entry point, and the state the lexer
 * (grammar/lexer.l) and the parser (grammar/parser.y) share.
 *
 * parse_file runs the bison parser over a file already loaded into the
 * SourceManager.  Syntax errors are queued in the DiagCtx and the parser
 * recovers at statement and block boundaries, so one run reports several;
 * the returned tree holds every declaration that parsed completely.
 */
#ifndef ENGRAM_PARSE_H
#define ENGRAM_PARSE_H

#include "ast.h"
#include "diag.h"

/* Parses file (an index from diag_load_file/diag_add_text).  Returns NULL
 * only when nothing could be parsed (an empty file); check d->nerrors. */
AstFile *parse_file(DiagCtx *d, Arena *a, int file);

/* ---- shared by lexer.l and parser.y (not for other phases) ---------------- */

/* An open bracket the lexer has seen but not yet closed: for the depth limit
 * and for "unclosed '{' of neuron 'LIF' opened here". */
typedef struct ParseOpener {
    char ch;              /* '(', '[' or '{' */
    SrcSpan span;
    const char *what;     /* "neuron 'LIF'", "reset" ...; NULL if unknown */
    const char *kw;       /* the block keyword alone ("reset"); NULL if unknown */
} ParseOpener;

/* A name right after a number on the same line that is a near miss of a unit
 * ("20 msec"); a syntax error at or right after it is reported as a unit. */
typedef struct UnitSuspect {
    long token;           /* index of the token in the stream; -1 if none */
    SrcSpan span;
    const char *name, *suggestion;
} UnitSuspect;

typedef struct ParseCtx {
    DiagCtx *diag;
    Arena *arena;
    int file;
    const SourceFile *src;
    AstFile *out;               /* declarations are appended as they complete */
    AstList decls;
    AstList comments;           /* AstComment, for engramc fmt */
    /* lexer position: where the next token starts */
    int line, col;
    size_t offset;
    /* the token just read: its bytes in src->text and its kind */
    size_t tok_off, tok_len;
    long ntokens;
    int cur_kind, prev_kind;    /* the token just returned, and the one before */
    SrcSpan cur_span, prev_span;
    /* open brackets */
    ParseOpener open[PARSE_MAX_DEPTH];
    int depth;
    /* what the next '{' belongs to: set by block keywords, named by the IDENT after */
    const char *block_kw;
    const char *block_name;
    int block_state;
    UnitSuspect unit;
    long bad_token;             /* syntax errors at this token and the next are not
                                   reported: the lexer already did (-1: none) */
    bool fatal;                 /* stop: depth limit, too many errors */
} ParseCtx;

/* Sets up ctx for one file (parse_file does this; the lexer tests too). */
void parse_ctx_init(ParseCtx *ctx, DiagCtx *d, Arena *a, int file);

#endif
