/*
 * ast.c - the arena, node constructors, and the canonical printer.
 *
 * The arena is a list of large blocks; allocation bumps a pointer and never
 * frees, so the parser can build the tree (and intern every token's text)
 * without ownership bookkeeping, and the whole compilation is released with
 * one arena_free.
 *
 * The printer writes the canonical form that `engramc fmt` emits: one item per
 * line, four-space indentation, minimal parentheses (an operand is wrapped
 * only when its precedence is below what its position needs), numbers in the
 * shortest form that reads back to the same double.  Re-parsing the output
 * gives the same tree; the parser tests check that round trip.
 */
#include "ast.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram_units.h"

/* ---- arena ---------------------------------------------------------------- */

#define ARENA_BLOCK_SIZE (64u * 1024u)   /* big enough that malloc calls are rare */
#define ARENA_ALIGN 16u

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void arena_init(Arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void arena_free(Arena *a)
{
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    arena_init(a);
}

static ArenaBlock *arena_grow(Arena *a, size_t size)
{
    size_t cap = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
    ArenaBlock *b = malloc(sizeof *b + cap);
    if (!b) {
        fputs("engramc: fatal: out of memory\n", stderr);
        abort();
    }
    b->used = 0;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
    return b;
}

void *arena_alloc(Arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    ArenaBlock *b = a->head;
    if (!b || b->cap - b->used < size)
        b = arena_grow(a, size);
    void *p = b->data + b->used;
    b->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof small)
        return arena_strndup(a, small, (size_t)n);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- lists and constructors ------------------------------------------------ */

void ast_list_push(Arena *a, AstList *l, void *item)
{
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        void **items = arena_alloc(a, (size_t)cap * sizeof *items);
        if (l->count)
            memcpy(items, l->items, (size_t)l->count * sizeof *items);
        l->items = items;   /* the old array stays in the arena, unused */
        l->cap = cap;
    }
    l->items[l->count++] = item;
}

Expr *ast_expr_new(Arena *a, ExprKind kind, SrcSpan span)
{
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = kind;
    e->span = span;
    return e;
}

Stmt *ast_stmt_new(Arena *a, StmtKind kind, SrcSpan span)
{
    Stmt *s = arena_alloc(a, sizeof *s);
    s->kind = kind;
    s->span = span;
    return s;
}

Decl *ast_decl_new(Arena *a, DeclKind kind, SrcSpan span)
{
    Decl *d = arena_alloc(a, sizeof *d);
    d->kind = kind;
    d->span = span;
    return d;
}

/* ---- expressions ------------------------------------------------------------ */

const char *ast_op_text(OpKind op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_POW: return "^";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_AND: return "and";
    case OP_OR: return "or";
    case OP_NOT: return "not";
    case OP_NEG: return "-";
    }
    return "?";
}

/* Binding strength, as in the grammar: or < and < not < comparison < +,- <
 * *,/ < unary - < ^ < primaries. */
enum { PREC_OR = 1, PREC_AND, PREC_NOT, PREC_CMP, PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_ATOM };

static int op_prec(OpKind op)
{
    switch (op) {
    case OP_OR: return PREC_OR;
    case OP_AND: return PREC_AND;
    case OP_NOT: return PREC_NOT;
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: return PREC_CMP;
    case OP_ADD: case OP_SUB: return PREC_ADD;
    case OP_MUL: case OP_DIV: return PREC_MUL;
    case OP_NEG: return PREC_NEG;
    case OP_POW: return PREC_POW;
    }
    return PREC_ATOM;
}

static int expr_prec(const Expr *e)
{
    return e->kind == EXPR_UNARY || e->kind == EXPR_BINARY ? op_prec(e->op) : PREC_ATOM;
}

/* Shortest of %.15g..%.17g that reads back to exactly v. */
static void print_number(FILE *out, double v)
{
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, out);
}

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void print_expr_prec(FILE *out, const Expr *e, int min_prec);

static void print_args(FILE *out, Arg *const *args, int nargs)
{
    for (int i = 0; i < nargs; i++) {
        if (i)
            fputs(", ", out);
        if (args[i]->name)
            fprintf(out, "%s = ", args[i]->name);
        print_expr_prec(out, args[i]->value, 0);
    }
}

static void print_parts(FILE *out, const char *const *parts, int nparts)
{
    for (int i = 0; i < nparts; i++)
        fprintf(out, "%s%s", i ? "." : "", parts[i]);
}

/* Left operands of left-associative operators keep the operator's level; the
 * right side needs one more, and the reverse for right-associative ^.
 * Comparisons do not chain, so both sides need one more. */
static void print_binary(FILE *out, const Expr *e)
{
    int p = op_prec(e->op);
    int lp = p, rp = p + 1;
    if (e->op == OP_POW) {
        lp = p + 1;
        rp = p;
    } else if (p == PREC_CMP) {
        lp = p + 1;
    }
    print_expr_prec(out, e->lhs, lp);
    fprintf(out, " %s ", ast_op_text(e->op));
    print_expr_prec(out, e->rhs, rp);
}

static void print_expr_bare(FILE *out, const Expr *e)
{
    switch (e->kind) {
    case EXPR_NUMBER: print_number(out, e->value); break;
    case EXPR_QUANTITY:
        print_number(out, e->value);
        fprintf(out, " %s", e->unit);
        break;
    case EXPR_BOOL: fputs(e->value != 0 ? "true" : "false", out); break;
    case EXPR_NAME: print_parts(out, e->parts, e->nparts); break;
    case EXPR_UNARY:
        fputs(e->op == OP_NOT ? "not " : "-", out);
        print_expr_prec(out, e->lhs, op_prec(e->op));
        break;
    case EXPR_BINARY: print_binary(out, e); break;
    case EXPR_CALL:
        fprintf(out, "%s(", e->callee);
        print_args(out, e->args, e->nargs);
        fputc(')', out);
        break;
    case EXPR_LIST:
        fputc('[', out);
        print_args(out, e->args, e->nargs);
        fputc(']', out);
        break;
    case EXPR_INDEX:
        print_expr_prec(out, e->lhs, PREC_ATOM);
        fputc('[', out);
        print_args(out, e->args, e->nargs);
        fputc(']', out);
        break;
    case EXPR_PAIR:
        print_expr_prec(out, e->lhs, 0);
        fputs(" -> ", out);
        print_expr_prec(out, e->rhs, 0);
        break;
    }
}

static void print_expr_prec(FILE *out, const Expr *e, int min_prec)
{
    if (!e) {
        fputs("<error>", out);
        return;
    }
    bool parens = expr_prec(e) < min_prec;
    if (parens)
        fputc('(', out);
    print_expr_bare(out, e);
    if (parens)
        fputc(')', out);
}

void ast_print_expr(FILE *out, const Expr *e)
{
    print_expr_prec(out, e, 0);
}

const char *ast_expr_text(Arena *a, const Expr *e)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return "?";
    ast_print_expr(f, e);
    fclose(f);
    const char *out = arena_strdup(a, buf ? buf : "?");
    free(buf);
    return out;
}

/* ---- statements ------------------------------------------------------------- */

static const char *assign_text(AssignOp op)
{
    switch (op) {
    case ASSIGN_SET: return "=";
    case ASSIGN_ADD: return "+=";
    case ASSIGN_SUB: return "-=";
    case ASSIGN_MUL: return "*=";
    }
    return "=";
}

static void indent(FILE *out, int level)
{
    for (int i = 0; i < level; i++)
        fputs("    ", out);
}

/* ---- comments ---------------------------------------------------------------- */

/* The comments of the file that ast_print_file prints, and the next one due
 * (the printer is not reentrant; nothing else prints comments).  A comment
 * alone on its line comes before the statement or declaration that follows
 * it, at that one's indentation; one after a token ends the printed line
 * of the item that ends on its line; any other (inside a multi-line
 * expression) moves before the next item.  None is lost. */
static struct {
    AstComment *const *items;
    int n, next;
} pending;

static void comments_before(FILE *out, int line, int level)
{
    while (pending.next < pending.n && pending.items[pending.next]->line < line) {
        indent(out, level);
        fprintf(out, "%s\n", pending.items[pending.next++]->text);
    }
}

static void end_line(FILE *out, int line)
{
    while (pending.next < pending.n && pending.items[pending.next]->line == line &&
           pending.items[pending.next]->trailing)
        fprintf(out, "  %s", pending.items[pending.next++]->text);
    fputc('\n', out);
}

static void print_stmts(FILE *out, Stmt *const *body, int n, int level);

/* "keyword expr" statements, the most common shape. */
static void print_keyword_expr(FILE *out, const char *kw, const Expr *e)
{
    fprintf(out, "%s ", kw);
    ast_print_expr(out, e);
}

/* "keyword name = expr" statements. */
static void print_named(FILE *out, const char *kw, const Stmt *s)
{
    fprintf(out, "%s %s = ", kw, s->name);
    ast_print_expr(out, s->expr);
}

/* The body of reset, on pre, on post and every, after its head. */
static void print_body(FILE *out, const Stmt *s, int level)
{
    fputs(" {\n", out);
    print_stmts(out, s->body, s->nbody, level + 1);
    indent(out, level);
    fputc('}', out);
}

/* `param x = e`, and in a rule `param x : weight` with an optional value. */
static void print_param(FILE *out, const Stmt *s)
{
    if (!s->weight_unit) {
        print_named(out, "param", s);
        return;
    }
    fprintf(out, "param %s : weight", s->name);
    if (s->expr) {
        fputs(" = ", out);
        ast_print_expr(out, s->expr);
    }
}

/* A projection's `plasticity NAME` or `plasticity NAME(args)`. */
static void print_use_rule(FILE *out, const Stmt *s)
{
    fprintf(out, "plasticity %s", s->name);
    if (s->args) {
        fputc('(', out);
        print_args(out, s->args, s->nargs);
        fputc(')', out);
    }
}

static const char *const block_words[] = {"", "phase", "session", "test", "sleep"};

/* " for expr" and the like: an optional trailing clause. */
static void print_clause(FILE *out, const char *word, const Expr *e)
{
    if (e) {
        fprintf(out, " %s ", word);
        ast_print_expr(out, e);
    }
}

static void print_arg_list(FILE *out, const char *kw, const Stmt *s)
{
    fputs(kw, out);
    for (int i = 0; i < s->nargs; i++) {
        fputs(i ? ", " : " ", out);
        ast_print_expr(out, s->args[i]->value);
    }
}

/* Protocol blocks: `phase NAME [repeat N trials] {`, `sleep T {`, `rest T {`. */
static void print_proto_block(FILE *out, const Stmt *s, int level)
{
    if (s->variant == 4) {
        print_keyword_expr(out, "sleep", s->expr2);
    } else if (s->variant == 0) {
        print_keyword_expr(out, "rest", s->expr2);
    } else {
        fprintf(out, "%s %s", block_words[s->variant], s->name);
        if (s->nbody == 1 && s->body[0]->kind == STMT_P_REPEAT && s->body[0]->variant == 1 &&
            !s->body[0]->name) {
            print_clause(out, "repeat", s->body[0]->expr);
            fputs(" trials", out);
            print_body(out, s->body[0], level);
            return;
        }
    }
    print_body(out, s, level);
}

static void print_repeat(FILE *out, const Stmt *s, int level)
{
    fputs("repeat ", out);
    if (s->name) {
        fprintf(out, "%s ", s->name);
        ast_print_expr(out, s->expr);
        fputs("..", out);
        ast_print_expr(out, s->expr2);
    } else {
        ast_print_expr(out, s->expr);
        if (s->variant)
            fputs(" trials", out);
    }
    print_body(out, s, level);
}

/* Statements of a protocol body (section 16); false for other kinds. */
static bool print_proto_stmt(FILE *out, const Stmt *s, int level)
{
    switch (s->kind) {
    case STMT_P_BLOCK: print_proto_block(out, s, level); break;
    case STMT_P_REPEAT: print_repeat(out, s, level); break;
    case STMT_P_CUE: case STMT_P_BACKGROUND:
        print_keyword_expr(out, s->kind == STMT_P_CUE ? "cue" : "background", s->subject);
        print_clause(out, "rate", s->expr);
        print_clause(out, "for", s->expr2);
        break;
    case STMT_P_TEACH:
        fprintf(out, "teach %s", s->name);
        print_clause(out, "rate", s->expr);
        print_clause(out, "for", s->expr2);
        break;
    case STMT_P_CURRENT:
        print_keyword_expr(out, "current", s->subject);
        fputc(' ', out);
        ast_print_expr(out, s->expr);
        print_clause(out, "for", s->expr2);
        break;
    case STMT_P_REST: print_keyword_expr(out, "rest", s->expr2); break;
    case STMT_P_REWARD:
        fprintf(out, "reward %s ", s->name);
        ast_print_expr(out, s->expr);
        print_clause(out, "when", s->expr3);
        print_clause(out, "after", s->expr2);
        break;
    case STMT_P_SET: fprintf(out, "set %s ", s->name); ast_print_expr(out, s->expr); break;
    case STMT_P_PLASTICITY: print_arg_list(out, s->variant ? "plasticity on" : "plasticity off", s); break;
    case STMT_P_CHECKPOINT: case STMT_P_RESTORE:
        fputs(s->kind == STMT_P_CHECKPOINT ? "checkpoint " : "restore ", out);
        print_string(out, s->name);
        break;
    case STMT_P_MEASURE: print_arg_list(out, "measure", s); break;
    case STMT_P_RECORD: print_arg_list(out, "record", s); break;
    default: return false;
    }
    return true;
}

static void print_stmt(FILE *out, const Stmt *s, int level)
{
    comments_before(out, s->span.first_line, level);
    indent(out, level);
    if (print_proto_stmt(out, s, level)) {
        end_line(out, s->span.last_line);
        return;
    }
    switch (s->kind) {
    case STMT_PARAM: print_param(out, s); break;
    case STMT_STATE: print_named(out, "state", s); break;
    case STMT_LET: print_named(out, "let", s); break;
    case STMT_ODE: fprintf(out, "d%s/dt = ", s->name); ast_print_expr(out, s->expr); break;
    case STMT_THRESHOLD: print_keyword_expr(out, "threshold", s->expr); break;
    case STMT_REFRACTORY: print_keyword_expr(out, "refractory", s->expr); break;
    case STMT_CONNECT: print_keyword_expr(out, "connect", s->expr); break;
    case STMT_WEIGHT: print_keyword_expr(out, "weight", s->expr); break;
    case STMT_DELAY: print_keyword_expr(out, "delay", s->expr); break;
    case STMT_AUTAPSES: print_keyword_expr(out, "autapses", s->expr); break;
    case STMT_RESET: fputs("reset", out); print_body(out, s, level); break;
    case STMT_INPUT: fprintf(out, "input %s -> %s", s->name, s->target); break;
    case STMT_METHOD: fprintf(out, "method %s", s->name); break;
    case STMT_PORT: fprintf(out, "port %s", s->name); break;
    case STMT_ASSIGN:
    case STMT_SETTING:
        fprintf(out, "%s %s ", s->name, s->kind == STMT_ASSIGN ? assign_text(s->assign_op) : "=");
        ast_print_expr(out, s->expr);
        break;
    case STMT_SYNAPSE: print_named(out, "synapse", s); break;
    case STMT_PRE_TRACE: print_named(out, "pre", s); break;
    case STMT_POST_TRACE: print_named(out, "post", s); break;
    case STMT_BOUNDS:
        print_keyword_expr(out, "bounds", s->expr);
        fputs(", ", out);
        ast_print_expr(out, s->expr2);
        break;
    case STMT_ON_PRE: fputs(s->variant ? "on pre arrival" : "on pre", out); print_body(out, s, level); break;
    case STMT_ON_POST: fputs("on post", out); print_body(out, s, level); break;
    case STMT_EVERY: print_keyword_expr(out, "every", s->expr); print_body(out, s, level); break;
    case STMT_PLASTICITY: print_use_rule(out, s); break;
    default: break;   /* protocol statements: print_proto_stmt */
    }
    end_line(out, s->span.last_line);
}

static void print_stmts(FILE *out, Stmt *const *body, int n, int level)
{
    for (int i = 0; i < n; i++)
        print_stmt(out, body[i], level);
}

/* ---- declarations -------------------------------------------------------------- */

static void print_path(FILE *out, const Path *p)
{
    print_parts(out, p->parts, p->nparts);
}

static void print_doc(FILE *out, const char *doc)
{
    if (doc) {
        fputc(' ', out);
        print_string(out, doc);
    }
}

static void print_use(FILE *out, const Decl *d)
{
    fputs("use ", out);
    print_path(out, &d->module);
    fputs(" (", out);
    for (int i = 0; i < d->nnames; i++)
        fprintf(out, "%s%s", i ? ", " : "", d->names[i]);
    fputs(")\n", out);
}

static void print_neuron(FILE *out, const Decl *d)
{
    fprintf(out, "neuron %s", d->name);
    if (d->builtin)
        fprintf(out, " builtin %s", d->builtin);
    print_doc(out, d->doc);
    fputs(" {\n", out);
    print_stmts(out, d->body, d->nbody, 1);
    fputs("}\n", out);
}

/* A size that is a bare number would fuse with a model named like a unit
 * ("10 S" reads as a quantity), so such sizes keep parentheses. */
static bool model_is_unit(const char *model)
{
    double scale;
    EngramDim dim;
    return engram_unit_lookup(model, strlen(model), &scale, &dim);
}

static void print_population(FILE *out, const Decl *d, int level)
{
    comments_before(out, d->span.first_line, level);
    indent(out, level);
    fprintf(out, "population %s = ", d->name);
    print_expr_prec(out, d->expr, model_is_unit(d->model) ? PREC_ATOM + 1 : 0);
    fprintf(out, " %s", d->model);
    if (d->args) {
        fputc('(', out);
        print_args(out, d->args, d->nargs);
        fputc(')', out);
    }
    end_line(out, d->span.last_line);
}

/* ensembles POP = split(n) | [A, B] | [A: 0..99, 100..199] */
static void print_ensembles(FILE *out, const Decl *d, int level)
{
    comments_before(out, d->span.first_line, level);
    indent(out, level);
    fprintf(out, "ensembles %s = ", d->name);
    if (d->expr) {
        fputs("split(", out);
        ast_print_expr(out, d->expr);
        fputc(')', out);
        end_line(out, d->span.last_line);
        return;
    }
    fputc('[', out);
    for (int i = 0; i < d->nargs; i++) {
        const Arg *a = d->args[i];
        fputs(i ? ", " : "", out);
        if (a->name)
            fprintf(out, a->value ? "%s: " : "%s", a->name);
        if (a->value) {
            ast_print_expr(out, a->value->lhs);
            fputs("..", out);
            ast_print_expr(out, a->value->rhs);
        }
    }
    fputc(']', out);
    end_line(out, d->span.last_line);
}

static void print_region(FILE *out, const Decl *d)
{
    fprintf(out, "region %s", d->name);
    print_doc(out, d->doc);
    fputs(" {\n", out);
    for (int i = 0; i < d->nmembers; i++) {
        if (d->members[i]->kind == DECL_ENSEMBLES)
            print_ensembles(out, d->members[i], 1);
        else
            print_population(out, d->members[i], 1);
    }
    fputs("}\n", out);
}

static void print_sequence(FILE *out, const Decl *d)
{
    fprintf(out, "sequence %s = ", d->name);
    ast_print_expr(out, d->expr);
    fputs(" every ", out);
    ast_print_expr(out, d->every);
    if (d->nbody > 0) {
        fputs(" {\n", out);
        print_stmts(out, d->body, d->nbody, 1);
        fputc('}', out);
    }
    fputc('\n', out);
}

static void print_stimulus(FILE *out, const Decl *d)
{
    fputs("stimulus ", out);
    print_path(out, &d->dst);
    fputs(" weight ", out);
    ast_print_expr(out, d->expr);
    fprintf(out, " port %s\n", d->port);
}

static void print_endpoint(FILE *out, const Path *p, const Expr *index)
{
    print_path(out, p);
    if (index) {
        fputc('[', out);
        ast_print_expr(out, index);
        fputc(']', out);
    }
}

static void print_project(FILE *out, const Decl *d)
{
    fputs("project ", out);
    if (d->name)
        fprintf(out, "%s: ", d->name);
    print_endpoint(out, &d->src, d->index);
    fputs(" -> ", out);
    print_endpoint(out, &d->dst, d->index2);
    fputs(" {\n", out);
    print_stmts(out, d->body, d->nbody, 1);
    fputs("}\n", out);
}

static void print_drive(FILE *out, const Decl *d)
{
    fputs("drive ", out);
    if (d->name)
        fprintf(out, "%s: ", d->name);
    print_path(out, &d->dst);
    fputs(" poisson(", out);
    print_args(out, d->args, d->nargs);
    fputs(") weight ", out);
    ast_print_expr(out, d->expr);
    fprintf(out, " port %s\n", d->port);
}

/* record weights NAME | SRC -> DST, then the options. */
static void print_record_weights(FILE *out, const Decl *d)
{
    fputs("record weights ", out);
    if (d->npaths > 0) {
        print_path(out, &d->paths[0]);
    } else {
        print_endpoint(out, &d->src, d->index);
        fputs(" -> ", out);
        print_endpoint(out, &d->dst, d->index2);
    }
    if (d->every) {
        fputs(" every ", out);
        ast_print_expr(out, d->every);
    }
    fputs(d->per_synapse ? " synapses\n" : "\n", out);
}

static void print_record(FILE *out, const Decl *d)
{
    if (d->record_kind == RECORD_WEIGHTS) {
        print_record_weights(out, d);
        return;
    }
    fputs("record spikes", out);
    for (int i = 0; i < d->npaths; i++) {
        fputs(i ? ", " : " ", out);
        print_path(out, &d->paths[i]);
    }
    fputc('\n', out);
}

/* plasticity and modulator: name, doc, body. */
static void print_named_block(FILE *out, const char *kw, const Decl *d)
{
    fprintf(out, "%s %s", kw, d->name);
    print_doc(out, d->doc);
    fputs(" {\n", out);
    print_stmts(out, d->body, d->nbody, 1);
    fputs("}\n", out);
}

/* A neuron of a release: PATH[index]. */
static void print_indexed(FILE *out, const Path *p, const Expr *index)
{
    print_path(out, p);
    fputc('[', out);
    ast_print_expr(out, index);
    fputc(']', out);
}

static void print_release(FILE *out, const Decl *d)
{
    fprintf(out, "release %s ", d->name);
    ast_print_expr(out, d->expr);
    if (d->release_kind == RELEASE_PER_SPIKE) {
        fputs(" per spike of ", out);
        print_path(out, &d->src);
        fputc('\n', out);
        return;
    }
    fputs(" when ", out);
    print_indexed(out, &d->dst, d->index2);
    fputs(" fires within ", out);
    ast_print_expr(out, d->window);
    fputs(" after ", out);
    print_indexed(out, &d->src, d->index);
    if (d->delay) {
        fputs(" delay ", out);
        ast_print_expr(out, d->delay);
    }
    fputc('\n', out);
}

static void print_decl(FILE *out, const Decl *d)
{
    switch (d->kind) {
    case DECL_USE: print_use(out, d); break;
    case DECL_PARAM:
        fprintf(out, "param %s = ", d->name);
        ast_print_expr(out, d->expr);
        fputc('\n', out);
        break;
    case DECL_NEURON: print_neuron(out, d); break;
    case DECL_REGION: print_region(out, d); break;
    case DECL_POPULATION: print_population(out, d, 0); break;
    case DECL_PROJECT: print_project(out, d); break;
    case DECL_DRIVE: print_drive(out, d); break;
    case DECL_SIMULATION:
        fputs("simulation {\n", out);
        print_stmts(out, d->body, d->nbody, 1);
        fputs("}\n", out);
        break;
    case DECL_RECORD: print_record(out, d); break;
    case DECL_PLASTICITY: print_named_block(out, "plasticity", d); break;
    case DECL_MODULATOR: print_named_block(out, "modulator", d); break;
    case DECL_RELEASE: print_release(out, d); break;
    case DECL_ENSEMBLES: print_ensembles(out, d, 0); break;
    case DECL_SEQUENCE: print_sequence(out, d); break;
    case DECL_STIMULUS: print_stimulus(out, d); break;
    case DECL_PROTOCOL: print_named_block(out, "protocol", d); break;
    }
}

/* Blocks stand apart; runs of one-line items of one kind stay together. */
static bool is_block(const Decl *d)
{
    return d->kind == DECL_NEURON || d->kind == DECL_REGION || d->kind == DECL_PROJECT ||
           d->kind == DECL_SIMULATION || d->kind == DECL_PLASTICITY || d->kind == DECL_MODULATOR ||
           d->kind == DECL_PROTOCOL || (d->kind == DECL_SEQUENCE && d->nbody > 0);
}

/* One declaration, its last line ended by the comments that trail it
 * (printed to memory first: the declaration printers end their own lines). */
static void print_decl_commented(FILE *out, const Decl *d)
{
    comments_before(out, d->span.first_line, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) {
        print_decl(out, d);
        return;
    }
    print_decl(m, d);
    fclose(m);
    if (len > 0 && buf[len - 1] == '\n') {
        fwrite(buf, 1, len - 1, out);
        end_line(out, d->span.last_line);
    } else {
        fwrite(buf, 1, len, out);
    }
    free(buf);
}

void ast_print_file(FILE *out, const AstFile *f)
{
    pending.items = f->comments;
    pending.n = f->ncomments;
    pending.next = 0;
    if (f->model_name) {
        comments_before(out, f->model_span.first_line, 0);
        fprintf(out, "model %s", f->model_name);
        end_line(out, f->model_span.last_line);
    }
    for (int i = 0; i < f->ndecls; i++) {
        const Decl *d = f->decls[i];
        const Decl *prev = i ? f->decls[i - 1] : NULL;
        if (prev ? (is_block(d) || is_block(prev) || d->kind != prev->kind) : f->model_name != NULL)
            fputc('\n', out);
        print_decl_commented(out, d);
    }
    if (pending.next < pending.n && (f->model_name || f->ndecls))
        fputc('\n', out);
    comments_before(out, INT_MAX, 0);
    pending.items = NULL;
    pending.n = pending.next = 0;
}
