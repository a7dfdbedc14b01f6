/*
 * parser.y - the Engram grammar (docs/language.md sections 3-9, 12-14).
 *
 * A pure bison parser over the reentrant flex scanner in lexer.l.  Locations
 * are SrcSpans (file index plus inclusive first/last line and column).  Nodes
 * are built in the compilation's arena; complete top-level declarations are
 * appended to ctx->decls as soon as they reduce, so a parse that stops early
 * (nesting limit, too many errors) still returns what it read.
 *
 * Order of the file: declarations and helpers; the file and its items; one
 * section per declaration kind with its block items (plasticity rules,
 * modulators and releases after the projections); expressions; error
 * reporting (yyreport_syntax_error, which turns bison's expected-token set
 * into "unexpected X, expected Y").
 *
 * Error recovery: each block body and the top level have an `error`
 * alternative among their items, so after a syntax error bison drops tokens
 * until the next item keyword (or '}' inside a block).  Block headers have
 * `KW error '{' ...` so a bad header still lets the body be parsed.
 *
 * Adding a block (protocol ...): a keyword token, a `decl` alternative with
 * its own item list (copy plasticity_decl/ritems), and the keyword in
 * block_keyword() of lexer.l for the unclosed-brace note.
 *
 * Contextual words: the fixed words of a release ("per spike of", "when ...
 * fires within ... after") and of `record weights ... synapses` are not
 * reserved.  The grammar reads them as identifiers, which is unambiguous
 * because an expression or a path is never followed by an identifier, and
 * the actions check the text (expect_word), reporting a wrong word the way a
 * syntax error would.  `pre` and `post` are keywords (trace declarations and
 * handler heads) that may also start a dotted name in an expression
 * (`post.v`).
 */
%require "3.8"
%define api.pure full
%define api.prefix {engram_yy}
%define api.token.prefix {TOK_}
%define api.location.type {SrcSpan}
%define api.header.include {"parser.h"}
%define parse.error custom
%define parse.lac full
%locations
%expect 0

%code requires {
#include "ast.h"
#include "diag.h"
#include "parse.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* The value of a QUANTITY token. */
typedef struct QuantityTok {
    double value;
    const char *unit;
    SrcSpan unit_span;
} QuantityTok;

/* Spans run from the first symbol's start to the last symbol's end; an empty
 * rule gets an empty span at the end of what precedes it. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
    do {                                                              \
        if (N) {                                                      \
            (Cur).file = YYRHSLOC(Rhs, 1).file;                       \
            (Cur).first_line = YYRHSLOC(Rhs, 1).first_line;           \
            (Cur).first_column = YYRHSLOC(Rhs, 1).first_column;       \
            (Cur).last_line = YYRHSLOC(Rhs, N).last_line;             \
            (Cur).last_column = YYRHSLOC(Rhs, N).last_column;         \
        } else {                                                      \
            (Cur) = YYRHSLOC(Rhs, 0);                                 \
            (Cur).first_line = (Cur).last_line;                       \
            (Cur).first_column = (Cur).last_column;                   \
        }                                                             \
    } while (0)
}

%code provides {
/* flex's bison bridge names the plain YYSTYPE/YYLTYPE. */
#ifndef YYSTYPE
#define YYSTYPE ENGRAM_YYSTYPE
#endif
#ifndef YYLTYPE
#define YYLTYPE ENGRAM_YYLTYPE
#endif
#define YY_DECL int engram_yylex(YYSTYPE *yylval_param, YYLTYPE *yylloc_param, yyscan_t yyscanner)
YY_DECL;
/* Human name of a token kind for messages ("an identifier", "'}'"). */
const char *parse_token_name(int symbol_kind);
}

%code {
#include <string.h>

static void yyerror(const SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);

/* ---- node helpers (actions stay one line each) ---- */

static void push_decl(ParseCtx *ctx, Decl *d)
{
    if (d)
        ast_list_push(ctx->arena, &ctx->decls, d);
}

static void push(ParseCtx *ctx, AstList *l, void *item)
{
    if (item)
        ast_list_push(ctx->arena, l, item);
}

static Path mk_path(AstList parts, SrcSpan span)
{
    Path p = {(const char **)parts.items, parts.count, span};
    return p;
}

static Expr *mk_binary(ParseCtx *ctx, OpKind op, Expr *l, Expr *r, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, EXPR_BINARY, span);
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    return e;
}

static Expr *mk_unary(ParseCtx *ctx, OpKind op, Expr *x, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, EXPR_UNARY, span);
    e->op = op;
    e->lhs = x;
    return e;
}

static Expr *mk_value(ParseCtx *ctx, ExprKind kind, double v, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, kind, span);
    e->value = v;
    return e;
}

static Expr *mk_quantity(ParseCtx *ctx, QuantityTok q, SrcSpan span)
{
    Expr *e = mk_value(ctx, EXPR_QUANTITY, q.value, span);
    e->unit = q.unit;
    e->unit_span = q.unit_span;
    return e;
}

static Expr *mk_name(ParseCtx *ctx, AstList parts, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, EXPR_NAME, span);
    e->parts = (const char **)parts.items;
    e->nparts = parts.count;
    return e;
}

static Expr *mk_call(ParseCtx *ctx, const char *callee, SrcSpan callee_span, AstList args, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, EXPR_CALL, span);
    e->callee = callee;
    e->callee_span = callee_span;
    e->args = (Arg **)args.items;
    e->nargs = args.count;
    return e;
}

static Arg *mk_arg(ParseCtx *ctx, const char *name, SrcSpan name_span, Expr *value)
{
    Arg *a = arena_alloc(ctx->arena, sizeof *a);
    a->name = name;
    a->name_span = name_span;
    a->value = value;
    return a;
}

static Expr *mk_list(ParseCtx *ctx, AstList values, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, EXPR_LIST, span);
    AstList args = {0};
    for (int i = 0; i < values.count; i++) {
        Expr *v = values.items[i];
        ast_list_push(ctx->arena, &args, mk_arg(ctx, NULL, v->span, v));
    }
    e->args = (Arg **)args.items;
    e->nargs = args.count;
    return e;
}

/* A call's argument list that was written with parentheses, even "()", is
 * never NULL, so the printer can tell `LIF` from `LIF()`. */
static Arg **args_array(ParseCtx *ctx, AstList *l)
{
    return l->items ? (Arg **)l->items : arena_alloc(ctx->arena, sizeof(Arg *));
}

static Stmt *mk_stmt(ParseCtx *ctx, StmtKind kind, SrcSpan span, const char *name, SrcSpan name_span, Expr *e)
{
    Stmt *s = ast_stmt_new(ctx->arena, kind, span);
    s->name = name;
    s->name_span = name_span;
    s->expr = e;
    return s;
}

static Stmt *mk_stmt_expr(ParseCtx *ctx, StmtKind kind, SrcSpan span, Expr *e)
{
    static const SrcSpan none;
    return mk_stmt(ctx, kind, span, NULL, none, e);
}

static Decl *mk_block(ParseCtx *ctx, DeclKind kind, SrcSpan span, AstList body)
{
    Decl *d = ast_decl_new(ctx->arena, kind, span);
    d->body = (Stmt **)body.items;
    d->nbody = body.count;
    return d;
}

static void set_name(Decl *d, const char *name, SrcSpan span)
{
    d->name = name;
    d->name_span = span;
}

/* Only params belong in a builtin source; checked here because the body uses
 * the neuron item grammar. */
static void check_builtin_body(ParseCtx *ctx, const Decl *d)
{
    for (int i = 0; i < d->nbody; i++)
        if (d->body[i]->kind != STMT_PARAM)
            diag_error(ctx->diag, d->body[i]->span,
                       "a builtin source may only declare params");
}

static Decl *mk_neuron(ParseCtx *ctx, SrcSpan span, const char *name, SrcSpan name_span,
                       const char *doc, AstList body)
{
    Decl *d = mk_block(ctx, DECL_NEURON, span, body);
    set_name(d, name, name_span);
    d->doc = doc;
    return d;
}

static Decl *mk_population(ParseCtx *ctx, SrcSpan span, const char *name, SrcSpan name_span,
                           Expr *size, const char *model, SrcSpan model_span)
{
    Decl *d = ast_decl_new(ctx->arena, DECL_POPULATION, span);
    set_name(d, name, name_span);
    d->expr = size;
    d->model = model;
    d->model_span = model_span;
    return d;
}

static Decl *mk_use(ParseCtx *ctx, SrcSpan span, Path module, AstList names)
{
    Decl *d = ast_decl_new(ctx->arena, DECL_USE, span);
    d->module = module;
    d->nnames = names.count;
    d->names = arena_alloc(ctx->arena, (size_t)(names.count + 1) * sizeof(char *));
    d->name_spans = arena_alloc(ctx->arena, (size_t)(names.count + 1) * sizeof(SrcSpan));
    for (int i = 0; i < names.count; i++) {
        const Arg *a = names.items[i];
        d->names[i] = a->name;
        d->name_spans[i] = a->name_span;
    }
    return d;
}

static Decl *mk_drive(ParseCtx *ctx, SrcSpan span, const char *source, SrcSpan source_span,
                      AstList args, Expr *weight, const char *port, SrcSpan port_span)
{
    if (strcmp(source, "poisson") != 0)
        diag_error(ctx->diag, source_span, "unknown drive '%s'; the only drive is 'poisson'", source);
    Decl *d = ast_decl_new(ctx->arena, DECL_DRIVE, span);
    d->args = args_array(ctx, &args);
    d->nargs = args.count;
    d->expr = weight;
    d->port = port;
    d->port_span = port_span;
    return d;
}

static Decl *mk_record(ParseCtx *ctx, SrcSpan span, AstList paths)
{
    Decl *d = ast_decl_new(ctx->arena, DECL_RECORD, span);
    d->paths = arena_alloc(ctx->arena, (size_t)(paths.count + 1) * sizeof(Path));
    for (int i = 0; i < paths.count; i++)
        d->paths[i] = *(Path *)paths.items[i];
    d->npaths = paths.count;
    return d;
}

static Path *path_copy(ParseCtx *ctx, Path p)
{
    Path *q = arena_alloc(ctx->arena, sizeof *q);
    *q = p;
    return q;
}

/* The name `pre.v` / `post.v`: side is "pre" or "post", rest the parts after
 * the dot. */
static Expr *mk_side_name(ParseCtx *ctx, const char *side, AstList rest, SrcSpan span)
{
    AstList parts = {0};
    ast_list_push(ctx->arena, &parts, (void *)side);
    for (int i = 0; i < rest.count; i++)
        ast_list_push(ctx->arena, &parts, rest.items[i]);
    return mk_name(ctx, parts, span);
}

/* A body of assignments (reset, on pre, on post, every). */
static Stmt *mk_body_stmt(ParseCtx *ctx, StmtKind kind, SrcSpan span, Expr *e, AstList body)
{
    Stmt *s = mk_stmt_expr(ctx, kind, span, e);
    s->body = (Stmt **)body.items;
    s->nbody = body.count;
    return s;
}

/* `param x : weight` (value NULL) or `param x : weight = value`. */
static Stmt *mk_weight_param(ParseCtx *ctx, SrcSpan span, const char *name, SrcSpan name_span, Expr *value)
{
    Stmt *s = mk_stmt(ctx, STMT_PARAM, span, name, name_span, value);
    s->weight_unit = true;
    return s;
}

/* `param x : mV`: only the weight's unit can be named after ':'. */
static Stmt *bad_param_dimension(ParseCtx *ctx, const char *word, SrcSpan at)
{
    diag_error(ctx->diag, at, "expected 'weight' after ':', not '%.32s'", word);
    diag_hint(ctx->diag, "': weight' gives a rule param the unit of the projection's weight; "
                         "other params take their unit from their value (param tau = 20 ms)");
    return NULL;
}

/* An identifier that stands for a fixed word of the grammar ("per",
 * "weights"): what was written, where, and what is wanted there. */
typedef struct Word {
    const char *got;
    SrcSpan at;
    const char *want, *alt;
} Word;

/* got must be want.  A different word is reported as a syntax error would
 * be, naming also the alternative (if any) that could have stood there. */
static bool expect_word(ParseCtx *ctx, Word w)
{
    if (strcmp(w.got, w.want) == 0)
        return true;
    if (w.alt && strcmp(w.got, w.alt) != 0)
        diag_error(ctx->diag, w.at, "unexpected identifier '%.32s', expected '%s' or '%s'", w.got,
                   w.want, w.alt);
    else
        diag_error(ctx->diag, w.at, "unexpected identifier '%.32s', expected '%s'", w.got, w.want);
    return false;
}

/* All n words as wanted; only the first wrong one is reported. */
static bool expect_words(ParseCtx *ctx, const Word *w, int n)
{
    for (int i = 0; i < n; i++)
        if (!expect_word(ctx, w[i]))
            return false;
    return true;
}

/* release M AMOUNT ...: the parts both forms share. */
static Decl *mk_release(ParseCtx *ctx, SrcSpan span, const char *name, SrcSpan name_span,
                        Expr *amount, ReleaseKind kind, Path src)
{
    Decl *d = ast_decl_new(ctx->arena, DECL_RELEASE, span);
    set_name(d, name, name_span);
    d->expr = amount;
    d->release_kind = kind;
    d->src = src;
    return d;
}

/* release M AMOUNT when DST[i2] fires within W after SRC[i1] (delay D)? */
static Decl *mk_release_when(Decl *d, Path dst, Expr *index2, Expr *window,
                             Expr *index, Expr *delay)
{
    d->dst = dst;
    d->index2 = index2;
    d->window = window;
    d->index = index;
    d->delay = delay;
    return d;
}

/* record weights PROJ (every e)? (synapses)?: PROJ is a given name (in
 * paths[0]) or src -> dst. */
static Decl *mk_record_weights(ParseCtx *ctx, SrcSpan span)
{
    Decl *d = ast_decl_new(ctx->arena, DECL_RECORD, span);
    d->record_kind = RECORD_WEIGHTS;
    return d;
}

/* The span of the whole item, and its options. */
static Decl *record_options(Decl *d, SrcSpan span, Expr *every, bool per_synapse)
{
    d->span = span;
    d->every = every;
    d->per_synapse = per_synapse;
    return d;
}

static Decl *record_named(ParseCtx *ctx, Decl *d, const char *name, SrcSpan name_span)
{
    AstList parts = {0};
    ast_list_push(ctx->arena, &parts, (void *)name);
    d->paths = path_copy(ctx, mk_path(parts, name_span));
    d->npaths = 1;
    return d;
}

/* ---- sections 15-16: ensembles, sequences, protocols ---- */

/* A protocol word that names a param in an expression (`repeat trials trials`). */
static Expr *mk_word_name(ParseCtx *ctx, const char *word, SrcSpan span)
{
    AstList parts = {0};
    ast_list_push(ctx->arena, &parts, arena_strdup(ctx->arena, word));
    return mk_name(ctx, parts, span);
}

static Expr *mk_pair(ParseCtx *ctx, Expr *l, Expr *r, SrcSpan ls, SrcSpan rs)
{
    SrcSpan span = ls;
    span.last_line = rs.last_line;
    span.last_column = rs.last_column;
    Expr *e = ast_expr_new(ctx->arena, EXPR_PAIR, span);
    e->lhs = l;
    e->rhs = r;
    return e;
}

static Expr *mk_index(ParseCtx *ctx, Expr *base, AstList indices, SrcSpan span)
{
    Expr *e = ast_expr_new(ctx->arena, EXPR_INDEX, span);
    AstList args = {0};
    for (int i = 0; i < indices.count; i++) {
        Expr *v = indices.items[i];
        ast_list_push(ctx->arena, &args, mk_arg(ctx, NULL, v->span, v));
    }
    e->lhs = base;
    e->args = (Arg **)args.items;
    e->nargs = args.count;
    return e;
}

/* project SRC -> DST: endpoints are names, or EXPR_INDEX for POP[k]. */
static Path expr_path(const Expr *e)
{
    const Expr *n = e->kind == EXPR_INDEX ? e->lhs : e;
    Path p = {n->parts, n->nparts, n->span};
    return p;
}

static Decl *mk_project(ParseCtx *ctx, SrcSpan span, Expr *src, Expr *dst, AstList body)
{
    Decl *d = mk_block(ctx, DECL_PROJECT, span, body);
    d->src = expr_path(src);
    d->dst = expr_path(dst);
    d->index = src->kind == EXPR_INDEX ? src->args[0]->value : NULL;
    d->index2 = dst->kind == EXPR_INDEX ? dst->args[0]->value : NULL;
    return d;
}

static Decl *mk_ensembles(ParseCtx *ctx, SrcSpan span, const char *pop, SrcSpan pop_span,
                          AstList items)
{
    Decl *d = ast_decl_new(ctx->arena, DECL_ENSEMBLES, span);
    set_name(d, pop, pop_span);
    d->args = (Arg **)items.items;
    d->nargs = items.count;
    return d;
}

static Decl *mk_sequence(ParseCtx *ctx, SrcSpan span, const char *name, SrcSpan name_span,
                         Expr *elems, Expr *every, AstList settings)
{
    Decl *d = mk_block(ctx, DECL_SEQUENCE, span, settings);
    set_name(d, name, name_span);
    d->expr = elems;
    d->every = every;
    return d;
}

static Stmt *mk_pstmt(ParseCtx *ctx, StmtKind kind, SrcSpan span, Expr *subject, Expr *e,
                      Expr *e2)
{
    Stmt *s = mk_stmt_expr(ctx, kind, span, e);
    s->subject = subject;
    s->expr2 = e2;
    return s;
}

static Stmt *mk_with_body(Stmt *s, AstList body)
{
    s->body = (Stmt **)body.items;
    s->nbody = body.count;
    return s;
}

static Stmt *mk_repeat(ParseCtx *ctx, SrcSpan span, const char *var, SrcSpan var_span,
                       Expr *from, Expr *to, int trials, AstList body)
{
    Stmt *s = mk_stmt(ctx, STMT_P_REPEAT, span, var, var_span, from);
    s->expr2 = to;
    s->variant = trials;
    return mk_with_body(s, body);
}

/* kind: EngramBlockKind (0 plain, 1 phase, 2 session, 3 test, 4 sleep). */
static Stmt *mk_pblock(ParseCtx *ctx, SrcSpan span, int kind, const char *name,
                       SrcSpan name_span, Expr *duration, AstList body)
{
    Stmt *s = mk_stmt(ctx, STMT_P_BLOCK, span, name, name_span, NULL);
    s->variant = kind;
    s->expr2 = duration;
    return mk_with_body(s, body);
}

/* measure / record / plasticity: a list of expressions as args. */
static Stmt *mk_plist(ParseCtx *ctx, StmtKind kind, SrcSpan span, AstList exprs)
{
    Stmt *s = mk_stmt_expr(ctx, kind, span, NULL);
    AstList args = {0};
    for (int i = 0; i < exprs.count; i++) {
        Expr *v = exprs.items[i];
        ast_list_push(ctx->arena, &args, mk_arg(ctx, NULL, v->span, v));
    }
    s->args = (Arg **)args.items;
    s->nargs = args.count;
    return s;
}

static void model_line(ParseCtx *ctx, const char *name, SrcSpan name_span, SrcSpan span)
{
    if (ctx->out->model_name || ctx->decls.count > 0) {
        diag_error(ctx->diag, span, "'model %s' must be the first line of the file", name);
        return;
    }
    ctx->out->model_name = name;
    ctx->out->model_span = name_span;
}
}

%initial-action {
    @$.file = ctx->file;
    @$.first_line = @$.last_line = 1;
    @$.first_column = @$.last_column = 1;
}

%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%union {
    const char *str;
    double num;
    QuantityTok qty;
    Expr *expr;
    Stmt *stmt;
    Decl *decl;
    Arg *arg;
    AstList list;
    Path path;
    int op;
}

%token <str> IDENT "an identifier"
%token <num> NUMBER "a number"
%token <qty> QUANTITY "a quantity"
%token <str> STRING "a string"
%token <str> DERIV "'dX/dt'"
%token MODEL "'model'" USE "'use'" PARAM "'param'" NEURON "'neuron'" BUILTIN "'builtin'"
%token STATE "'state'" LET "'let'" THRESHOLD "'threshold'" RESET "'reset'"
%token REFRACTORY "'refractory'" INPUT "'input'" METHOD "'method'"
%token REGION "'region'" POPULATION "'population'" PROJECT "'project'"
%token CONNECT "'connect'" WEIGHT "'weight'" DELAY "'delay'" PORT "'port'"
%token AUTAPSES "'autapses'" DRIVE "'drive'" SIMULATION "'simulation'"
%token RECORD "'record'" SPIKES "'spikes'" TRUE "'true'" FALSE "'false'"
%token AND "'and'" OR "'or'" NOT "'not'"
%token PLASTICITY "'plasticity'" SYNAPSE "'synapse'" PRE "'pre'" POST "'post'"
%token BOUNDS "'bounds'" ON "'on'" EVERY "'every'" MODULATOR "'modulator'" RELEASE "'release'"
%token PROTOCOL "'protocol'" ENSEMBLES "'ensembles'" SEQUENCE "'sequence'" STIMULUS "'stimulus'"
%token REPEAT "'repeat'" TRIALS "'trials'" PHASE "'phase'" SESSION "'session'" TEST "'test'"
%token SLEEP "'sleep'" CUE "'cue'" TEACH "'teach'" RATE "'rate'" FOR "'for'" CURRENT "'current'"
%token REST "'rest'" BACKGROUND "'background'" REWARD "'reward'" WHEN "'when'" AFTER "'after'"
%token SET "'set'" CHECKPOINT "'checkpoint'" RESTORE "'restore'" MEASURE "'measure'" OFF "'off'"
%token DOTDOT "'..'"
%token ARROW "'->'" LE "'<='" GE "'>='" EQ "'=='" NE "'!='"
%token ADD_ASSIGN "'+='" SUB_ASSIGN "'-='" MUL_ASSIGN "'*='"

/* `current M1.exc [..]`: a '[' after a stimulus target indexes it (shift),
 * it never starts a list (reduce). */
%precedence TARGET_NAME
%precedence '['
%left OR
%left AND
%precedence NOT
%nonassoc '<' LE '>' GE EQ NE
%left '+' '-'
%left '*' '/'
%precedence NEG
%right '^'

%type <decl> decl use_decl param_decl neuron_decl region_decl member project_decl
%type <decl> drive_decl simulation_decl record_decl plasticity_decl modulator_decl release_decl
%type <decl> weights_target sequence_decl stimulus_decl protocol_decl
%type <stmt> pstmt
%type <list> pstmts pblock ens_items proj_refs opt_proj_refs
%type <arg> ens_item
%type <expr> ens_bound target endpoint proj_ref opt_when opt_after opt_for
%type <op> named_kw
%type <stmt> nitem assign pitem setting ritem
%type <list> nitems assigns members pitems settings path_parts use_names ritems module_parts
%type <list> opt_args args exprs path_list
%type <path> path
%type <expr> expr primary opt_every opt_delay
%type <arg> arg
%type <str> opt_doc module_word
%type <op> assign_op opt_synapses

%%

/* ---- file ----------------------------------------------------------------- */

/* file := "model" IDENT item*   (a module file has no model line)
 * The model line is parsed as an item so that the start state needs no
 * lookahead: with LAC, an error in a state that still has to reduce the
 * empty item list could not be recovered from.  model_line() checks it is
 * first. */
file
    : items
    ;

items
    : %empty
    | items item
    ;

item
    : decl                      { push_decl(ctx, $1); }
    | MODEL IDENT               { model_line(ctx, $2, @2, @$); }
    | ';'
    | error
    ;

decl
    : use_decl | param_decl | neuron_decl | region_decl | project_decl
    | drive_decl | simulation_decl | record_decl
    | plasticity_decl | modulator_decl | release_decl
    | sequence_decl | stimulus_decl | protocol_decl
    ;

path_parts
    : IDENT                     { $$ = (AstList){0}; push(ctx, &$$, (void *)$1); }
    | path_parts '.' IDENT      { $$ = $1; push(ctx, &$$, (void *)$3); }
    ;

path
    : path_parts                { $$ = mk_path($1, @1); }
    ;

/* use := "use" module_path "(" IDENT ("," IDENT)* ")"
 * Each imported name travels as an Arg (name and span, no value). */
use_decl
    : USE module_parts '(' use_names ')'
        { $$ = mk_use(ctx, @$, mk_path($2, @2), $4); }
    ;

/* A module path may name a module after a keyword: `use std.plasticity (STDP)`. */
module_parts
    : module_word               { $$ = (AstList){0}; push(ctx, &$$, (void *)$1); }
    | module_parts '.' module_word { $$ = $1; push(ctx, &$$, (void *)$3); }
    ;

module_word
    : IDENT                     { $$ = $1; }
    | PLASTICITY                { $$ = arena_strdup(ctx->arena, "plasticity"); }
    ;

use_names
    : IDENT                     { $$ = (AstList){0}; push(ctx, &$$, mk_arg(ctx, $1, @1, NULL)); }
    | use_names ',' IDENT       { $$ = $1; push(ctx, &$$, mk_arg(ctx, $3, @3, NULL)); }
    ;

/* param := "param" IDENT "=" expr */
param_decl
    : PARAM IDENT '=' expr
        { $$ = ast_decl_new(ctx->arena, DECL_PARAM, @$); set_name($$, $2, @2); $$->expr = $4; }
    ;

/* ---- neurons --------------------------------------------------------------- */

neuron_decl
    : NEURON IDENT opt_doc '{' nitems '}'
        { $$ = mk_neuron(ctx, @$, $2, @2, $3, $5); }
    | NEURON IDENT BUILTIN IDENT opt_doc '{' nitems '}'
        { $$ = mk_neuron(ctx, @$, $2, @2, $5, $7); $$->builtin = $4; $$->builtin_span = @4;
          check_builtin_body(ctx, $$); }
    | NEURON error '{' nitems '}'
        { $$ = NULL; }
    ;

opt_doc
    : %empty                    { $$ = NULL; }
    | STRING                    { $$ = $1; }
    ;

nitems
    : %empty                    { $$ = (AstList){0}; }
    | nitems nitem              { $$ = $1; push(ctx, &$$, $2); }
    ;

nitem
    : PARAM IDENT '=' expr      { $$ = mk_stmt(ctx, STMT_PARAM, @$, $2, @2, $4); }
    | STATE IDENT '=' expr      { $$ = mk_stmt(ctx, STMT_STATE, @$, $2, @2, $4); }
    | LET IDENT '=' expr        { $$ = mk_stmt(ctx, STMT_LET, @$, $2, @2, $4); }
    | DERIV '=' expr            { $$ = mk_stmt(ctx, STMT_ODE, @$, $1, @1, $3); }
    | THRESHOLD expr            { $$ = mk_stmt_expr(ctx, STMT_THRESHOLD, @$, $2); }
    | REFRACTORY expr           { $$ = mk_stmt_expr(ctx, STMT_REFRACTORY, @$, $2); }
    | RESET '{' assigns '}'     { $$ = mk_body_stmt(ctx, STMT_RESET, @$, NULL, $3); }
    | INPUT IDENT ARROW IDENT
        { $$ = mk_stmt(ctx, STMT_INPUT, @$, $2, @2, NULL); $$->target = $4; $$->target_span = @4; }
    | METHOD IDENT              { $$ = mk_stmt(ctx, STMT_METHOD, @$, $2, @2, NULL); }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

assigns
    : %empty                    { $$ = (AstList){0}; }
    | assigns assign            { $$ = $1; push(ctx, &$$, $2); }
    ;

/* assign := IDENT ("=" | "+=" | "-=" | "*=") expr */
assign
    : IDENT assign_op expr
        { $$ = mk_stmt(ctx, STMT_ASSIGN, @$, $1, @1, $3); $$->assign_op = (AssignOp)$2; }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

assign_op
    : '='                       { $$ = ASSIGN_SET; }
    | ADD_ASSIGN                { $$ = ASSIGN_ADD; }
    | SUB_ASSIGN                { $$ = ASSIGN_SUB; }
    | MUL_ASSIGN                { $$ = ASSIGN_MUL; }
    ;

/* ---- regions ------------------------------------------------------------------ */

region_decl
    : REGION IDENT opt_doc '{' members '}'
        { $$ = ast_decl_new(ctx->arena, DECL_REGION, @$); set_name($$, $2, @2); $$->doc = $3;
          $$->members = (Decl **)$5.items; $$->nmembers = $5.count; }
    | REGION error '{' members '}'
        { $$ = NULL; }
    ;

members
    : %empty                    { $$ = (AstList){0}; }
    | members member            { $$ = $1; push(ctx, &$$, $2); }
    ;

/* population := "population" IDENT "=" expr IDENT ("(" args? ")")? */
member
    : POPULATION IDENT '=' expr IDENT
        { $$ = mk_population(ctx, @$, $2, @2, $4, $5, @5); }
    | POPULATION IDENT '=' expr IDENT '(' opt_args ')'
        { $$ = mk_population(ctx, @$, $2, @2, $4, $5, @5); $$->args = args_array(ctx, &$7);
          $$->nargs = $7.count; }
    | ENSEMBLES IDENT '=' IDENT '(' expr ')'
        { $$ = mk_ensembles(ctx, @$, $2, @2, (AstList){0});
          if (expect_word(ctx, (Word){$4, @4, "split", NULL})) $$->expr = $6; }
    | ENSEMBLES IDENT '=' '[' ens_items ']'
        { $$ = mk_ensembles(ctx, @$, $2, @2, $5); }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

/* [A, B, C] (named equal parts) or [A: 0..99, 100..199] (index ranges,
 * inclusive, names optional) */
ens_items
    : ens_item                  { $$ = (AstList){0}; push(ctx, &$$, $1); }
    | ens_items ',' ens_item    { $$ = $1; push(ctx, &$$, $3); }
    ;

ens_item
    : IDENT                     { $$ = mk_arg(ctx, $1, @1, NULL); }
    | IDENT ':' ens_bound DOTDOT ens_bound
                                { $$ = mk_arg(ctx, $1, @1, mk_pair(ctx, $3, $5, @3, @5)); }
    | ens_bound DOTDOT ens_bound
                                { $$ = mk_arg(ctx, NULL, @1, mk_pair(ctx, $1, $3, @1, @3)); }
    ;

ens_bound
    : NUMBER                    { $$ = mk_value(ctx, EXPR_NUMBER, $1, @$); }
    | path_parts                { $$ = mk_name(ctx, $1, @$); }
    ;

/* ---- projections ------------------------------------------------------------------ */

/* project := "project" (IDENT ":")? path "->" path "{" pitem* "}" */
project_decl
    : PROJECT endpoint ARROW endpoint '{' pitems '}'
        { $$ = mk_project(ctx, @$, $2, $4, $6); }
    | PROJECT IDENT ':' endpoint ARROW endpoint '{' pitems '}'
        { $$ = mk_project(ctx, @$, $4, $6, $8); set_name($$, $2, @2); }
    | PROJECT error '{' pitems '}'
        { $$ = NULL; }
    ;

/* A population, a named ensemble (REGION.POP.NAME) or POP[k]: the index
 * travels in an EXPR_INDEX around the path's name. */
endpoint
    : path                      { $$ = mk_name(ctx, (AstList){(void **)$1.parts, $1.nparts, $1.nparts}, @$); }
    | path '[' expr ']'
        { AstList one = {0}; push(ctx, &one, $3);
          $$ = mk_index(ctx, mk_name(ctx, (AstList){(void **)$1.parts, $1.nparts, $1.nparts}, @1), one, @$); }
    ;

pitems
    : %empty                    { $$ = (AstList){0}; }
    | pitems pitem              { $$ = $1; push(ctx, &$$, $2); }
    ;

pitem
    : CONNECT IDENT
        { AstList p = {0}; push(ctx, &p, (void *)$2);
          $$ = mk_stmt_expr(ctx, STMT_CONNECT, @$, mk_name(ctx, p, @2)); }
    | CONNECT IDENT '(' opt_args ')'
        { Expr *c = mk_call(ctx, $2, @2, $4, @2);
          c->span.last_line = @5.last_line; c->span.last_column = @5.last_column;
          c->args = args_array(ctx, &$4);
          $$ = mk_stmt_expr(ctx, STMT_CONNECT, @$, c); }
    | WEIGHT expr               { $$ = mk_stmt_expr(ctx, STMT_WEIGHT, @$, $2); }
    | DELAY expr                { $$ = mk_stmt_expr(ctx, STMT_DELAY, @$, $2); }
    | PORT IDENT                { $$ = mk_stmt(ctx, STMT_PORT, @$, $2, @2, NULL); }
    | AUTAPSES TRUE             { $$ = mk_stmt_expr(ctx, STMT_AUTAPSES, @$, mk_value(ctx, EXPR_BOOL, 1, @2)); }
    | AUTAPSES FALSE            { $$ = mk_stmt_expr(ctx, STMT_AUTAPSES, @$, mk_value(ctx, EXPR_BOOL, 0, @2)); }
    | PLASTICITY IDENT          { $$ = mk_stmt(ctx, STMT_PLASTICITY, @$, $2, @2, NULL); }
    | PLASTICITY IDENT '(' opt_args ')'
        { $$ = mk_stmt(ctx, STMT_PLASTICITY, @$, $2, @2, NULL); $$->args = args_array(ctx, &$4);
          $$->nargs = $4.count; }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

/* ---- plasticity rules (section 12) ------------------------------------------------- */

/* plasticity := "plasticity" IDENT STRING? "{" ritem* "}" */
plasticity_decl
    : PLASTICITY IDENT opt_doc '{' ritems '}'
        { $$ = mk_block(ctx, DECL_PLASTICITY, @$, $5); set_name($$, $2, @2); $$->doc = $3; }
    | PLASTICITY error '{' ritems '}'
        { $$ = NULL; }
    ;

ritems
    : %empty                    { $$ = (AstList){0}; }
    | ritems ritem              { $$ = $1; push(ctx, &$$, $2); }
    ;

/* ritem: the items of docs/language.md section 12.  A handler or clocked
 * block whose head is broken still has its body read (ON error / EVERY
 * error), so the rest of the rule parses. */
ritem
    : PARAM IDENT '=' expr      { $$ = mk_stmt(ctx, STMT_PARAM, @$, $2, @2, $4); }
    | PARAM IDENT ':' WEIGHT    { $$ = mk_weight_param(ctx, @$, $2, @2, NULL); }
    | PARAM IDENT ':' WEIGHT '=' expr
                                { $$ = mk_weight_param(ctx, @$, $2, @2, $6); }
    | PARAM IDENT ':' IDENT     { $$ = bad_param_dimension(ctx, $4, @4); }
    | PARAM IDENT ':' IDENT '=' expr
                                { $$ = bad_param_dimension(ctx, $4, @4); }
    | SYNAPSE IDENT '=' expr    { $$ = mk_stmt(ctx, STMT_SYNAPSE, @$, $2, @2, $4); }
    | PRE IDENT '=' expr        { $$ = mk_stmt(ctx, STMT_PRE_TRACE, @$, $2, @2, $4); }
    | POST IDENT '=' expr       { $$ = mk_stmt(ctx, STMT_POST_TRACE, @$, $2, @2, $4); }
    | DERIV '=' expr            { $$ = mk_stmt(ctx, STMT_ODE, @$, $1, @1, $3); }
    | LET IDENT '=' expr        { $$ = mk_stmt(ctx, STMT_LET, @$, $2, @2, $4); }
    | BOUNDS expr ',' expr      { $$ = mk_stmt_expr(ctx, STMT_BOUNDS, @$, $2); $$->expr2 = $4; }
    | ON PRE '{' assigns '}'    { $$ = mk_body_stmt(ctx, STMT_ON_PRE, @$, NULL, $4); }
    | ON PRE IDENT '{' assigns '}'
        { $$ = mk_body_stmt(ctx, STMT_ON_PRE, @$, NULL, $5);
          $$->variant = expect_word(ctx, (Word){$3, @3, "arrival", NULL}); }
    | ON POST '{' assigns '}'   { $$ = mk_body_stmt(ctx, STMT_ON_POST, @$, NULL, $4); }
    | ON error '{' assigns '}'  { $$ = NULL; }
    | EVERY expr '{' assigns '}'
                                { $$ = mk_body_stmt(ctx, STMT_EVERY, @$, $2, $4); }
    | EVERY error '{' assigns '}'
                                { $$ = NULL; }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

/* ---- modulators and releases (section 13) -------------------------------------------- */

/* modulator := "modulator" IDENT STRING? "{" (IDENT "=" expr)* "}"
 * (sema checks that the settings are baseline and tau) */
modulator_decl
    : MODULATOR IDENT opt_doc '{' settings '}'
        { $$ = mk_block(ctx, DECL_MODULATOR, @$, $5); set_name($$, $2, @2); $$->doc = $3; }
    | MODULATOR error '{' settings '}'
        { $$ = NULL; }
    ;

/* release := "release" IDENT expr "per" "spike" "of" path
 *          | "release" IDENT expr "when" path "[" expr "]" "fires" "within" expr
 *            "after" path "[" expr "]" ("delay" expr)?
 * The quoted words other than "release" and "delay" are identifiers here. */
release_decl
    : RELEASE IDENT expr IDENT IDENT IDENT path
        { $$ = expect_words(ctx, (Word[]){{$4, @4, "per", "when"}, {$5, @5, "spike", NULL},
                                          {$6, @6, "of", NULL}}, 3)
               ? mk_release(ctx, @$, $2, @2, $3, RELEASE_PER_SPIKE, $7) : NULL; }
    | RELEASE IDENT expr IDENT path '[' expr ']' IDENT IDENT expr IDENT path '[' expr ']' opt_delay
        { $$ = expect_words(ctx, (Word[]){{$4, @4, "when", "per"}, {$9, @9, "fires", NULL},
                                          {$10, @10, "within", NULL}, {$12, @12, "after", NULL}}, 4)
               ? mk_release_when(mk_release(ctx, @$, $2, @2, $3, RELEASE_WHEN, $13), $5, $7,
                                 $11, $15, $17)
               : NULL; }
    ;

opt_delay
    : %empty                    { $$ = NULL; }
    | DELAY expr                { $$ = $2; }
    ;

/* ---- sequences, stimuli and protocols (sections 15-16) ------------------------------- */

/* sequence := "sequence" IDENT "=" POP "[" exprs "]" "every" expr ("{" settings "}")? */
sequence_decl
    : SEQUENCE IDENT '=' expr EVERY expr
        { $$ = mk_sequence(ctx, @$, $2, @2, $4, $6, (AstList){0}); }
    | SEQUENCE IDENT '=' expr EVERY expr '{' settings '}'
        { $$ = mk_sequence(ctx, @$, $2, @2, $4, $6, $8); }
    ;

/* stimulus := "stimulus" path "weight" expr "port" IDENT */
stimulus_decl
    : STIMULUS path WEIGHT expr PORT IDENT
        { $$ = ast_decl_new(ctx->arena, DECL_STIMULUS, @$); $$->dst = $2; $$->expr = $4;
          $$->port = $6; $$->port_span = @6; }
    ;

/* protocol := "protocol" IDENT STRING? "{" pstmt* "}"; the words of its
 * statements are keywords only inside its braces (lexer.l). */
protocol_decl
    : PROTOCOL IDENT opt_doc '{' pstmts '}'
        { $$ = mk_block(ctx, DECL_PROTOCOL, @$, $5); set_name($$, $2, @2); $$->doc = $3; }
    | PROTOCOL error '{' pstmts '}'
        { $$ = NULL; }
    ;

pstmts
    : %empty                    { $$ = (AstList){0}; }
    | pstmts pstmt              { $$ = $1; push(ctx, &$$, $2); }
    ;

pblock
    : '{' pstmts '}'            { $$ = $2; }
    ;

named_kw
    : PHASE                     { $$ = 1; }
    | SESSION                   { $$ = 2; }
    | TEST                      { $$ = 3; }
    ;

pstmt
    : REPEAT IDENT ens_bound DOTDOT ens_bound pblock
        { $$ = mk_repeat(ctx, @$, $2, @2, $3, $5, 0, $6); }
    | REPEAT expr TRIALS pblock { $$ = mk_repeat(ctx, @$, NULL, @1, $2, NULL, 1, $4); }
    | REPEAT expr pblock        { $$ = mk_repeat(ctx, @$, NULL, @1, $2, NULL, 0, $3); }
    | named_kw IDENT pblock     { $$ = mk_pblock(ctx, @$, $1, $2, @2, NULL, $3); }
    | named_kw IDENT REPEAT expr TRIALS pblock
        { AstList one = {0};
          push(ctx, &one, mk_repeat(ctx, @$, NULL, @3, $4, NULL, 1, $6));
          $$ = mk_pblock(ctx, @$, $1, $2, @2, NULL, one); }
    | SLEEP expr                { $$ = mk_pblock(ctx, @$, 4, "sleep", @1, $2, (AstList){0}); }
    | SLEEP expr pblock         { $$ = mk_pblock(ctx, @$, 4, "sleep", @1, $2, $3); }
    | REST expr                 { $$ = mk_pstmt(ctx, STMT_P_REST, @$, NULL, NULL, $2); }
    | REST expr pblock          { $$ = mk_pblock(ctx, @$, 0, NULL, @1, $2, $3); }
    | CUE target RATE expr FOR expr
        { $$ = mk_pstmt(ctx, STMT_P_CUE, @$, $2, $4, $6); }
    | TEACH IDENT RATE expr opt_for
        { $$ = mk_pstmt(ctx, STMT_P_TEACH, @$, NULL, $4, $5); $$->name = $2; $$->name_span = @2; }
    | CURRENT target expr FOR expr
        { $$ = mk_pstmt(ctx, STMT_P_CURRENT, @$, $2, $3, $5); }
    | BACKGROUND target RATE expr
        { $$ = mk_pstmt(ctx, STMT_P_BACKGROUND, @$, $2, $4, NULL); }
    | REWARD IDENT expr opt_when opt_after
        { $$ = mk_pstmt(ctx, STMT_P_REWARD, @$, NULL, $3, $5); $$->name = $2; $$->name_span = @2;
          $$->expr3 = $4; }
    | SET IDENT expr
        { $$ = mk_pstmt(ctx, STMT_P_SET, @$, NULL, $3, NULL); $$->name = $2; $$->name_span = @2; }
    | PLASTICITY ON opt_proj_refs
        { $$ = mk_plist(ctx, STMT_P_PLASTICITY, @$, $3); $$->variant = 1; }
    | PLASTICITY OFF opt_proj_refs
        { $$ = mk_plist(ctx, STMT_P_PLASTICITY, @$, $3); }
    | CHECKPOINT STRING
        { $$ = mk_pstmt(ctx, STMT_P_CHECKPOINT, @$, NULL, NULL, NULL); $$->name = $2; $$->name_span = @2; }
    | RESTORE STRING
        { $$ = mk_pstmt(ctx, STMT_P_RESTORE, @$, NULL, NULL, NULL); $$->name = $2; $$->name_span = @2; }
    | MEASURE exprs             { $$ = mk_plist(ctx, STMT_P_MEASURE, @$, $2); }
    | RECORD exprs              { $$ = mk_plist(ctx, STMT_P_RECORD, @$, $2); }
    | REPEAT error pblock       { $$ = NULL; }
    | named_kw error pblock     { $$ = NULL; }
    | SLEEP error pblock        { $$ = NULL; }
    | REST error pblock         { $$ = NULL; }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

/* A stimulus target: a population, an ensemble by name, or POP[index]. */
target
    : path_parts %prec TARGET_NAME { $$ = mk_name(ctx, $1, @$); }
    | path_parts '[' expr ']'
        { AstList one = {0}; push(ctx, &one, $3); $$ = mk_index(ctx, mk_name(ctx, $1, @1), one, @$); }
    ;

opt_for
    : %empty                    { $$ = NULL; }
    | FOR expr                  { $$ = $2; }
    ;

opt_when
    : %empty                    { $$ = NULL; }
    | WHEN expr                 { $$ = $2; }
    ;

opt_after
    : %empty                    { $$ = NULL; }
    | AFTER expr                { $$ = $2; }
    ;

opt_proj_refs
    : %empty                    { $$ = (AstList){0}; }
    | proj_refs                 { $$ = $1; }
    ;

proj_refs
    : proj_ref                  { $$ = (AstList){0}; push(ctx, &$$, $1); }
    | proj_refs ',' proj_ref    { $$ = $1; push(ctx, &$$, $3); }
    ;

/* A projection: its given name, or SRC -> DST. */
proj_ref
    : path_parts %prec TARGET_NAME { $$ = mk_name(ctx, $1, @$); }
    | endpoint ARROW endpoint   { $$ = mk_pair(ctx, $1, $3, @1, @3); }
    ;

/* ---- drives, simulation, record ---------------------------------------------------- */

/* drive := "drive" (IDENT ":")? path "poisson" "(" args ")" "weight" expr "port" IDENT */
drive_decl
    : DRIVE path IDENT '(' opt_args ')' WEIGHT expr PORT IDENT
        { $$ = mk_drive(ctx, @$, $3, @3, $5, $8, $10, @10); $$->dst = $2; }
    | DRIVE IDENT ':' path IDENT '(' opt_args ')' WEIGHT expr PORT IDENT
        { $$ = mk_drive(ctx, @$, $5, @5, $7, $10, $12, @12); $$->dst = $4; set_name($$, $2, @2); }
    ;

simulation_decl
    : SIMULATION '{' settings '}'
        { $$ = mk_block(ctx, DECL_SIMULATION, @$, $3); }
    | SIMULATION error '{' settings '}'
        { $$ = NULL; }
    ;

settings
    : %empty                    { $$ = (AstList){0}; }
    | settings setting          { $$ = $1; push(ctx, &$$, $2); }
    ;

setting
    : IDENT '=' expr            { $$ = mk_stmt(ctx, STMT_SETTING, @$, $1, @1, $3); }
    | THRESHOLD '=' expr        /* a sequence's activation threshold */
        { $$ = mk_stmt(ctx, STMT_SETTING, @$, arena_strdup(ctx->arena, "threshold"), @1, $3); }
    | ';'                       { $$ = NULL; }
    | error                     { $$ = NULL; }
    ;

/* record := "record" "spikes" (path ("," path)*)?
 *         | "record" "weights" (IDENT | path "->" path) ("every" expr)? "synapses"?
 * ("weights" and "synapses" are identifiers here) */
record_decl
    : RECORD SPIKES             { $$ = mk_record(ctx, @$, (AstList){0}); }
    | RECORD SPIKES path_list   { $$ = mk_record(ctx, @$, $3); }
    | RECORD IDENT weights_target opt_every opt_synapses
        { $$ = expect_word(ctx, (Word){$2, @2, "weights", "spikes"}) && $5 >= 0
               ? record_options($3, @$, $4, $5 == 1) : NULL; }
    ;

/* A projection: its given name, or src -> dst (the span is fixed up above). */
weights_target
    : IDENT                     { $$ = record_named(ctx, mk_record_weights(ctx, @$), $1, @1); }
    | endpoint ARROW endpoint
        { Decl *p = mk_project(ctx, @$, $1, $3, (AstList){0});
          $$ = mk_record_weights(ctx, @$); $$->src = p->src; $$->dst = p->dst;
          $$->index = p->index; $$->index2 = p->index2; }
    ;

opt_every
    : %empty                    { $$ = NULL; }
    | EVERY expr                { $$ = $2; }
    ;

/* 0: absent, 1: "synapses", -1: another word (reported) */
opt_synapses
    : %empty                    { $$ = 0; }
    | IDENT                     { $$ = expect_word(ctx, (Word){$1, @1, "synapses", NULL}) ? 1 : -1; }
    ;

path_list
    : path                      { $$ = (AstList){0}; push(ctx, &$$, path_copy(ctx, $1)); }
    | path_list ',' path        { $$ = $1; push(ctx, &$$, path_copy(ctx, $3)); }
    ;

/* ---- expressions ---------------------------------------------------------------------- */

expr
    : expr OR expr              { $$ = mk_binary(ctx, OP_OR, $1, $3, @$); }
    | expr AND expr             { $$ = mk_binary(ctx, OP_AND, $1, $3, @$); }
    | NOT expr                  { $$ = mk_unary(ctx, OP_NOT, $2, @$); }
    | expr '<' expr             { $$ = mk_binary(ctx, OP_LT, $1, $3, @$); }
    | expr LE expr              { $$ = mk_binary(ctx, OP_LE, $1, $3, @$); }
    | expr '>' expr             { $$ = mk_binary(ctx, OP_GT, $1, $3, @$); }
    | expr GE expr              { $$ = mk_binary(ctx, OP_GE, $1, $3, @$); }
    | expr EQ expr              { $$ = mk_binary(ctx, OP_EQ, $1, $3, @$); }
    | expr NE expr              { $$ = mk_binary(ctx, OP_NE, $1, $3, @$); }
    | expr '+' expr             { $$ = mk_binary(ctx, OP_ADD, $1, $3, @$); }
    | expr '-' expr             { $$ = mk_binary(ctx, OP_SUB, $1, $3, @$); }
    | expr '*' expr             { $$ = mk_binary(ctx, OP_MUL, $1, $3, @$); }
    | expr '/' expr             { $$ = mk_binary(ctx, OP_DIV, $1, $3, @$); }
    | '-' expr %prec NEG        { $$ = mk_unary(ctx, OP_NEG, $2, @$); }
    | expr '^' expr             { $$ = mk_binary(ctx, OP_POW, $1, $3, @$); }
    | primary                   { $$ = $1; }
    ;

primary
    : NUMBER                    { $$ = mk_value(ctx, EXPR_NUMBER, $1, @$); }
    | QUANTITY                  { $$ = mk_quantity(ctx, $1, @$); }
    | TRUE                      { $$ = mk_value(ctx, EXPR_BOOL, 1, @$); }
    | FALSE                     { $$ = mk_value(ctx, EXPR_BOOL, 0, @$); }
    | path_parts                { $$ = mk_name(ctx, $1, @$); }
    | PRE '.' path_parts        { $$ = mk_side_name(ctx, "pre", $3, @$); }
    | POST '.' path_parts       { $$ = mk_side_name(ctx, "post", $3, @$); }
    | IDENT '(' opt_args ')'    { $$ = mk_call(ctx, $1, @1, $3, @$); $$->args = args_array(ctx, &$3); }
    | RATE '(' opt_args ')'
        { $$ = mk_call(ctx, arena_strdup(ctx->arena, "rate"), @1, $3, @$); $$->args = args_array(ctx, &$3); }
    | TRIALS                    { $$ = mk_word_name(ctx, "trials", @$); }   /* param trials */
    | RATE                      { $$ = mk_word_name(ctx, "rate", @$); }
    | WEIGHT '(' opt_args ')'   /* the measure weight(A -> B) */
        { $$ = mk_call(ctx, arena_strdup(ctx->arena, "weight"), @1, $3, @$); $$->args = args_array(ctx, &$3); }
    | path_parts '[' exprs ']'  { $$ = mk_index(ctx, mk_name(ctx, $1, @1), $3, @$); }
    | '(' expr ')'              { $$ = $2; }
    | '[' exprs ']'             { $$ = mk_list(ctx, $2, @$); }
    | '[' ']'                   { $$ = mk_list(ctx, (AstList){0}, @$); }
    ;

opt_args
    : %empty                    { $$ = (AstList){0}; }
    | args                      { $$ = $1; }
    ;

args
    : arg                       { $$ = (AstList){0}; push(ctx, &$$, $1); }
    | args ',' arg              { $$ = $1; push(ctx, &$$, $3); }
    ;

/* arg := expr | IDENT "=" expr */
arg
    : expr                      { $$ = mk_arg(ctx, NULL, @1, $1); }
    | IDENT '=' expr            { $$ = mk_arg(ctx, $1, @1, $3); }
    | expr ARROW expr           { $$ = mk_arg(ctx, NULL, @$, mk_pair(ctx, $1, $3, @1, @3)); }
    ;

exprs
    : expr                      { $$ = (AstList){0}; push(ctx, &$$, $1); }
    | exprs ',' expr            { $$ = $1; push(ctx, &$$, $3); }
    ;

%%

/* ---- error reporting --------------------------------------------------------------------- */

const char *parse_token_name(int symbol_kind)
{
    return yysymbol_name((yysymbol_kind_t)symbol_kind);
}

/* Expected-token sets are summarised: a set holding every token that starts
 * an expression reads "an expression", and likewise for operators and the
 * item keywords of each block; ';' is never listed (it is optional).  A group
 * applies when both its marker tokens are expected.  Tokens are written as
 * token codes (characters or TOK_ names) and translated to symbol kinds. */
typedef struct TokenGroup {
    const char *name;
    int marker[2];
    int members[20];          /* 0-terminated */
} TokenGroup;

static const TokenGroup token_groups[] = {
    {"an expression", {TOK_NUMBER, '('},
     {TOK_NUMBER, TOK_QUANTITY, TOK_IDENT, '(', '-', TOK_NOT, TOK_TRUE, TOK_FALSE, '[', TOK_PRE,
      TOK_POST, TOK_RATE, TOK_WEIGHT, TOK_TRIALS, 0}},
    {"an operator", {'+', '*'},
     {'+', '-', '*', '/', '^', '<', '>', TOK_LE, TOK_GE, TOK_EQ, TOK_NE, TOK_AND, TOK_OR, '.',
      '(', '[', 0}},
    {"a neuron item", {TOK_THRESHOLD, TOK_REFRACTORY},
     {TOK_PARAM, TOK_STATE, TOK_LET, TOK_DERIV, TOK_THRESHOLD, TOK_RESET, TOK_REFRACTORY,
      TOK_INPUT, TOK_METHOD, 0}},
    {"a projection item", {TOK_CONNECT, TOK_PORT},
     {TOK_CONNECT, TOK_WEIGHT, TOK_DELAY, TOK_PORT, TOK_AUTAPSES, TOK_PLASTICITY, 0}},
    {"a rule item", {TOK_SYNAPSE, TOK_BOUNDS},
     {TOK_PARAM, TOK_SYNAPSE, TOK_PRE, TOK_POST, TOK_DERIV, TOK_LET, TOK_BOUNDS, TOK_ON,
      TOK_EVERY, 0}},
    {"a declaration", {TOK_NEURON, TOK_REGION},
     {TOK_MODEL, TOK_USE, TOK_PARAM, TOK_NEURON, TOK_REGION, TOK_PROJECT, TOK_DRIVE,
      TOK_SIMULATION, TOK_RECORD, TOK_PLASTICITY, TOK_MODULATOR, TOK_RELEASE, TOK_PROTOCOL,
      TOK_SEQUENCE, TOK_STIMULUS, 0}},
    {"a protocol statement", {TOK_CUE, TOK_REWARD},
     {TOK_REPEAT, TOK_PHASE, TOK_SESSION, TOK_TEST, TOK_SLEEP, TOK_REST, TOK_CUE, TOK_TEACH,
      TOK_CURRENT, TOK_BACKGROUND, TOK_REWARD, TOK_SET, TOK_PLASTICITY, TOK_CHECKPOINT,
      TOK_RESTORE, 0}},
    /* words the grammar reads as identifiers where only they can stand */
    {"'spikes' or 'weights'", {TOK_SPIKES, TOK_IDENT}, {TOK_SPIKES, TOK_IDENT, 0}},
    {"'weight'", {TOK_WEIGHT, TOK_IDENT}, {TOK_WEIGHT, TOK_IDENT, 0}},
};

enum { MAX_LISTED = 5, MSG_MAX = 512 };

typedef struct Expected {
    bool has[YYNTOKENS];
    const char *names[YYNTOKENS];   /* what will be listed, in order */
    int n;
    bool after_operand;             /* operators were expected */
    bool name_expected;             /* a name could stand here (not just a word) */
} Expected;

static bool group_applies(const Expected *x, const TokenGroup *g)
{
    return x->has[YYTRANSLATE(g->marker[0])] && x->has[YYTRANSLATE(g->marker[1])];
}

static void collect_expected(const yypcontext_t *yyctx, Expected *x)
{
    yysymbol_kind_t kinds[YYNTOKENS];
    int n = yypcontext_expected_tokens(yyctx, kinds, YYNTOKENS);
    memset(x, 0, sizeof *x);
    for (int i = 0; i < n; i++)
        x->has[kinds[i]] = true;
    x->has[YYTRANSLATE(';')] = false;
    for (size_t g = 0; g < sizeof token_groups / sizeof token_groups[0]; g++) {
        if (!group_applies(x, &token_groups[g]))
            continue;
        for (const int *m = token_groups[g].members; *m; m++)
            x->has[YYTRANSLATE(*m)] = false;
        x->after_operand |= token_groups[g].marker[0] == '+';
        x->name_expected |= token_groups[g].marker[0] == TOK_NUMBER;
        x->names[x->n++] = token_groups[g].name;
    }
    x->name_expected |= x->has[YYSYMBOL_IDENT];
    for (int k = 0; k < YYNTOKENS; k++)
        if (x->has[k] && k != YYSYMBOL_YYEOF)
            x->names[x->n++] = yysymbol_name((yysymbol_kind_t)k);
    if (x->has[YYSYMBOL_YYEOF])
        x->names[x->n++] = "end of file";
}

/* "A", "A or B", "A, B or C". */
static void append_list(char *buf, size_t size, const Expected *x)
{
    size_t len = strlen(buf);
    for (int i = 0; i < x->n && len < size; i++) {
        const char *sep = i == 0 ? "" : i == x->n - 1 ? " or " : ", ";
        len += (size_t)snprintf(buf + len, size - len, "%s%s", sep, x->names[i]);
    }
}

/* The text of the token just read, quoted and shortened for a message. */
static void token_text(const ParseCtx *ctx, char *buf, size_t size)
{
    size_t n = ctx->tok_len;
    const char *t = ctx->src->text + ctx->tok_off;
    const char *dots = "";
    if (n > 32) {
        n = 32;
        dots = "...";
    }
    snprintf(buf, size, "'%.*s%s'", (int)n, t, dots);
}

/* "identifier 'tau'", "number '5'", "'}'", "end of file". */
static void describe_unexpected(const ParseCtx *ctx, yysymbol_kind_t tok, char *buf, size_t size)
{
    char text[48];
    token_text(ctx, text, sizeof text);
    switch (tok) {
    case YYSYMBOL_IDENT: snprintf(buf, size, "identifier %s", text); break;
    case YYSYMBOL_NUMBER: snprintf(buf, size, "number %s", text); break;
    case YYSYMBOL_QUANTITY: snprintf(buf, size, "quantity %s", text); break;
    case YYSYMBOL_STRING: snprintf(buf, size, "string %s", text); break;
    case YYSYMBOL_DERIV: snprintf(buf, size, "%s", text); break;
    default: snprintf(buf, size, "%s", yysymbol_name(tok)); break;
    }
}

static bool token_in(yysymbol_kind_t tok, const int *codes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tok == YYTRANSLATE(codes[i]))
            return true;
    return false;
}

/* Keywords that start an item outside the innermost open block: meeting one
 * there suggests the block was never closed. */
static bool starts_outer_item(const ParseOpener *o, yysymbol_kind_t tok)
{
    static const int top[] = {TOK_MODEL, TOK_USE, TOK_PARAM, TOK_NEURON, TOK_REGION,
                              TOK_PROJECT, TOK_DRIVE, TOK_SIMULATION, TOK_RECORD,
                              TOK_PLASTICITY, TOK_MODULATOR, TOK_RELEASE, TOK_PROTOCOL,
                              TOK_SEQUENCE, TOK_STIMULUS};
    static const int neuron[] = {TOK_PARAM, TOK_STATE, TOK_LET, TOK_DERIV, TOK_THRESHOLD,
                                 TOK_RESET, TOK_REFRACTORY, TOK_INPUT, TOK_METHOD};
    static const int rule[] = {TOK_PARAM, TOK_SYNAPSE, TOK_PRE, TOK_POST, TOK_DERIV, TOK_LET,
                               TOK_BOUNDS, TOK_ON, TOK_EVERY};
    if (o->kw && strcmp(o->kw, "reset") == 0)
        return token_in(tok, neuron, sizeof neuron / sizeof neuron[0]);
    if (o->kw && (strncmp(o->kw, "on ", 3) == 0 || strcmp(o->kw, "every") == 0))
        return token_in(tok, rule, sizeof rule / sizeof rule[0]);
    return token_in(tok, top, sizeof top / sizeof top[0]);
}

/* At the end of the file, or at a keyword that belongs outside the innermost
 * open bracket, the likely cause is a missing closer: point at the opener. */
static void note_unclosed(ParseCtx *ctx, yysymbol_kind_t tok, const SrcSpan *at)
{
    if (ctx->depth == 0)
        return;
    const ParseOpener *o = &ctx->open[ctx->depth - 1];
    bool likely = tok == YYSYMBOL_YYEOF ||
                  (o->ch == '{' ? starts_outer_item(o, tok) : at->first_line > o->span.first_line);
    if (!likely)
        return;
    if (o->what)
        diag_note(ctx->diag, o->span, "unclosed '%c' of %s opened here", o->ch, o->what);
    else
        diag_note(ctx->diag, o->span, "unclosed '%c' opened here", o->ch);
}

/* A reserved word: its symbol name is the quoted word ("'pre'").  One met
 * where a name could stand, on the line of what precedes it, was probably
 * meant as a name (`let on = 1`); at the start of a line it more likely
 * starts the next item after something missing. */
static bool is_keyword(yysymbol_kind_t tok)
{
    const char *name = yysymbol_name(tok);
    return name[0] == '\'' && name[1] >= 'a' && name[1] <= 'z';
}

static bool is_comparison(yysymbol_kind_t tok)
{
    static const int cmp[] = {'<', '>', TOK_LE, TOK_GE, TOK_EQ, TOK_NE};
    return token_in(tok, cmp, sizeof cmp / sizeof cmp[0]);
}

/* A near-miss unit right at (or just before) the error: "20 msec". */
static bool report_unit(ParseCtx *ctx)
{
    const UnitSuspect *u = &ctx->unit;
    if (u->token < 0 || (u->token != ctx->ntokens - 1 && u->token != ctx->ntokens - 2))
        return false;
    diag_error(ctx->diag, u->span, "unknown unit '%s'; did you mean '%s'?", u->name, u->suggestion);
    return true;
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner, ParseCtx *ctx)
{
    (void)scanner;
    yysymbol_kind_t tok = yypcontext_token(yyctx);
    /* the lexer already reported what made it stop or what it skipped */
    long at = ctx->ntokens - 1;
    if (ctx->fatal || tok == YYSYMBOL_YYUNDEF || (ctx->bad_token >= 0 && at >= ctx->bad_token &&
                                                  at <= ctx->bad_token + 1))
        return 0;
    if (report_unit(ctx))
        return 0;
    char msg[MSG_MAX];
    strcpy(msg, "unexpected ");
    describe_unexpected(ctx, tok, msg + strlen(msg), sizeof msg - strlen(msg));
    Expected x;
    collect_expected(yyctx, &x);
    if (x.n > 0 && x.n <= MAX_LISTED) {
        strncat(msg, ", expected ", sizeof msg - strlen(msg) - 1);
        append_list(msg, sizeof msg, &x);
    }
    const SrcSpan *loc = yypcontext_location(yyctx);
    diag_error(ctx->diag, *loc, "%s", msg);
    /* after an operand every operator but a comparison was allowed: a chain */
    if (is_comparison(tok) && x.after_operand)
        diag_hint(ctx->diag, "comparisons do not chain; write 'a < b and b < c'");
    else if (is_keyword(tok) && x.name_expected && ctx->prev_span.last_line == loc->first_line)
        diag_hint(ctx->diag, "%s is a reserved word; it cannot be used as a name", yysymbol_name(tok));
    note_unclosed(ctx, tok, loc);
    return 0;
}

/* Bison calls this only when its stack is full: a chain of prefix operators
 * or nesting that the lexer's bracket count cannot see. */
static void yyerror(const SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg)
{
    (void)scanner;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ctx->diag, *loc, "expression is nested too deeply");
    else
        diag_error(ctx->diag, *loc, "%s", msg);
    ctx->fatal = true;
}
