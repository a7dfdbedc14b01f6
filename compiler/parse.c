/*
 * parse.c - runs the flex scanner and bison parser over one loaded file.
 *
 * The grammar itself is in grammar/parser.y and the scanner in
 * grammar/lexer.l; this file only sets up their shared ParseCtx, rejects
 * files with nothing in them, and packages the declarations the parser
 * collected into an AstFile.
 */
#include "parse.h"

#include <string.h>

#include "parser.h"   /* generated from grammar/parser.y; lexer.h needs its YYSTYPE */
#include "lexer.h"    /* generated from grammar/lexer.l */

/* True when the text holds only white space and comments. */
static bool is_blank(const SourceFile *src)
{
    const char *p = src->text, *end = src->text + src->size;
    while (p < end) {
        if (*p == '#') {
            while (p < end && *p != '\n')
                p++;
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ';') {
            p++;
        } else {
            return false;
        }
    }
    return true;
}

void parse_ctx_init(ParseCtx *ctx, DiagCtx *d, Arena *a, int file)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->diag = d;
    ctx->arena = a;
    ctx->file = file;
    ctx->src = diag_file(d, file);
    ctx->line = ctx->col = 1;
    ctx->unit.token = -1;
    ctx->bad_token = -1;
    ctx->out = arena_alloc(a, sizeof *ctx->out);
    ctx->out->file = file;
}

/* Runs the parser; the scanner copies the text into its own buffer (flex
 * needs two spare bytes after it) and frees it in yylex_destroy. */
static void run_parser(ParseCtx *ctx)
{
    yyscan_t scanner;
    if (engram_yylex_init_extra(ctx, &scanner) != 0) {
        diag_error_noloc(ctx->diag, "out of memory starting the parser");
        return;
    }
    YY_BUFFER_STATE buf = engram_yy_scan_bytes(ctx->src->text, (int)ctx->src->size, scanner);
    engram_yyparse(scanner, ctx);
    engram_yy_delete_buffer(buf, scanner);
    engram_yylex_destroy(scanner);
}

AstFile *parse_file(DiagCtx *d, Arena *a, int file)
{
    const SourceFile *src = diag_file(d, file);
    if (!src)
        return NULL;
    if (is_blank(src)) {
        SrcSpan at = {file, 1, 1, 1, 1};
        diag_error(d, at, "empty file: expected 'model NAME'");
        return NULL;
    }
    /* ParseCtx holds the bracket stack, a few KB: keep it off the C stack. */
    ParseCtx *ctx = arena_alloc(a, sizeof *ctx);
    parse_ctx_init(ctx, d, a, file);
    run_parser(ctx);
    AstFile *out = ctx->out;
    out->decls = (Decl **)ctx->decls.items;
    out->ndecls = ctx->decls.count;
    out->comments = (AstComment **)ctx->comments.items;
    out->ncomments = ctx->comments.count;
    return out;
}
