/*
 * ast.h - the syntax tree of an Engram model, its arena, and source spans.
 *
 * The parser builds one tree per source file.  Every node lives in an Arena
 * owned by the compilation (never freed node by node); strings are interned
 * into the same arena.  Every node carries the span of source it came from so
 * that any later phase can point a diagnostic at it.
 *
 * Shape: a small number of node families, each a tagged struct:
 *   Expr  - expressions (numbers, quantities, names, operators, calls, lists)
 *   Stmt  - statements inside blocks (neuron items, projection items, reset
 *           assignments, simulation settings); kind says which fields are used
 *   Decl  - top-level items of a file (use, param, neuron, region, project,
 *           drive, simulation, record)
 * Lists are arrays of pointers with a count (arena-allocated, built with the
 * AstList helper while parsing).
 */
#ifndef ENGRAM_AST_H
#define ENGRAM_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena ------------------------------------------------------------ */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;
    size_t total;               /* bytes handed out, for the memory guard */
} Arena;

void  arena_init(Arena *a);
void  arena_free(Arena *a);                       /* drops every block */
void *arena_alloc(Arena *a, size_t size);         /* zeroed, 16-aligned; aborts on OOM */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- source spans ---------------------------------------------------- */

/* Lines and columns are 1-based; columns count bytes.  last_* is inclusive
 * (the last byte of the span).  file indexes the SourceManager (diag.h). */
typedef struct SrcSpan {
    int file;
    int first_line, first_column;
    int last_line, last_column;
} SrcSpan;

/* ---- expressions ------------------------------------------------------ */

typedef enum ExprKind {
    EXPR_NUMBER,     /* number: value */
    EXPR_QUANTITY,   /* number with unit: value, unit (e.g. "ms") */
    EXPR_BOOL,       /* true / false: value is 1 or 0 */
    EXPR_NAME,       /* name or dotted path: parts[0..nparts) e.g. V1.exc.tau_m */
    EXPR_UNARY,      /* op (OP_NEG, OP_NOT), lhs */
    EXPR_BINARY,     /* op, lhs, rhs */
    EXPR_CALL,       /* callee (a plain identifier), args (Arg list) */
    EXPR_LIST,       /* [a, b, ...]: args (unnamed) */
    EXPR_INDEX,      /* lhs[args]: an ensemble (M1.exc[3]) or the elements of a sequence */
    EXPR_PAIR,       /* lhs -> rhs inside a call (weight(A -> B)), lhs..rhs in ensembles */
} ExprKind;

typedef enum OpKind {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE,
    OP_AND, OP_OR, OP_NOT, OP_NEG,
} OpKind;

typedef struct Expr Expr;

typedef struct Arg {
    const char *name;        /* NULL for a positional argument */
    SrcSpan name_span;
    Expr *value;
} Arg;

struct Expr {
    ExprKind kind;
    SrcSpan span;
    double value;            /* NUMBER, QUANTITY, BOOL */
    const char *unit;        /* QUANTITY: the unit name as written */
    SrcSpan unit_span;       /* QUANTITY: where the unit is */
    const char **parts;      /* NAME: path components */
    int nparts;
    OpKind op;               /* UNARY, BINARY */
    Expr *lhs, *rhs;         /* UNARY uses lhs */
    const char *callee;      /* CALL */
    SrcSpan callee_span;
    Arg **args;              /* CALL, LIST */
    int nargs;
};

/* ---- statements (block items) ------------------------------------------ */

typedef enum StmtKind {
    /* neuron body */
    STMT_PARAM,        /* param name = expr */
    STMT_STATE,        /* state name = expr (initial value) */
    STMT_LET,          /* let name = expr */
    STMT_ODE,          /* d<name>/dt = expr */
    STMT_THRESHOLD,    /* threshold expr */
    STMT_RESET,        /* reset { body } : body holds STMT_ASSIGN */
    STMT_REFRACTORY,   /* refractory expr */
    STMT_INPUT,        /* input name -> target */
    STMT_METHOD,       /* method name */
    STMT_ASSIGN,       /* name op expr, op is one of "=", "+=", "-=", "*=" in assign_op */
    /* projection body */
    STMT_CONNECT,      /* connect expr (an EXPR_CALL, or EXPR_NAME for one_to_one) */
    STMT_WEIGHT,       /* weight expr */
    STMT_DELAY,        /* delay expr */
    STMT_PORT,         /* port name */
    STMT_AUTAPSES,     /* autapses expr (EXPR_BOOL) */
    /* simulation body */
    STMT_SETTING,      /* name = expr; also modulator baseline / tau */
    /* plasticity rule body (docs/language.md section 12) */
    STMT_SYNAPSE,      /* synapse name = expr (per-synapse variable, initial value) */
    STMT_PRE_TRACE,    /* pre name = expr (per presynaptic neuron) */
    STMT_POST_TRACE,   /* post name = expr (per postsynaptic neuron) */
    STMT_BOUNDS,       /* bounds expr, expr2 */
    STMT_ON_PRE,       /* on pre { body }; variant 1: on pre arrival { body } */
    STMT_ON_POST,      /* on post { body } */
    STMT_EVERY,        /* every expr { body } */
    /* projection body */
    STMT_PLASTICITY,   /* plasticity name (args) */
    /* protocol body (docs/language.md section 16); fields per kind:
     *   P_BLOCK       variant = EngramBlockKind, name (or NULL), expr2 = duration or NULL, body
     *   P_REPEAT      name = loop variable or NULL, expr = from (or count), expr2 = to or NULL,
     *                 variant = 1 for `trials`, body
     *   P_CUE         subject = target, expr = rate, expr2 = duration
     *   P_TEACH       name = sequence, expr = rate, expr2 = on-time or NULL
     *   P_CURRENT     subject = target, expr = amplitude, expr2 = duration
     *   P_REST        expr2 = duration
     *   P_BACKGROUND  subject = target, expr = rate
     *   P_REWARD      name = modulator, expr = amount, expr3 = condition or NULL, expr2 = delay or NULL
     *   P_SET         name = modulator, expr = level
     *   P_PLASTICITY  variant = 1 on / 0 off, args = projections (EXPR_NAME or EXPR_PAIR)
     *   P_CHECKPOINT, P_RESTORE   name = the name template
     *   P_MEASURE, P_RECORD       args = the measures */
    STMT_P_BLOCK, STMT_P_REPEAT, STMT_P_CUE, STMT_P_TEACH, STMT_P_CURRENT, STMT_P_REST,
    STMT_P_BACKGROUND, STMT_P_REWARD, STMT_P_SET, STMT_P_PLASTICITY, STMT_P_CHECKPOINT,
    STMT_P_RESTORE, STMT_P_MEASURE, STMT_P_RECORD,
} StmtKind;

typedef enum AssignOp { ASSIGN_SET, ASSIGN_ADD, ASSIGN_SUB, ASSIGN_MUL } AssignOp;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    SrcSpan span;            /* the whole statement */
    const char *name;        /* PARAM STATE LET ODE(variable) INPUT(port) METHOD ASSIGN PORT SETTING */
    SrcSpan name_span;
    const char *target;      /* INPUT: the state variable */
    SrcSpan target_span;
    AssignOp assign_op;      /* ASSIGN */
    Expr *expr;              /* value, condition, initial value, right-hand side */
    Expr *expr2;             /* BOUNDS: the upper bound */
    bool weight_unit;        /* PARAM inside a plasticity rule: `param x : weight` */
    Stmt **body;             /* RESET, ON_PRE, ON_POST, EVERY */
    int nbody;
    Arg **args;              /* PLASTICITY: the rule's arguments */
    int nargs;
    Expr *subject;           /* protocol: the target of a stimulus */
    Expr *expr3;             /* protocol: a reward's condition */
    int variant;             /* protocol: block kind, trials flag, on/off; ON_PRE: 1 at arrival */
};

/* ---- declarations ------------------------------------------------------- */

typedef enum DeclKind {
    DECL_USE,          /* use module (names) */
    DECL_PARAM,        /* param name = expr */
    DECL_NEURON,       /* neuron name [builtin kind] "doc" { body } */
    DECL_REGION,       /* region name "doc" { populations } */
    DECL_POPULATION,   /* only inside a region: population name = size Model(args) */
    DECL_PROJECT,      /* project [name:] src -> dst { body } */
    DECL_DRIVE,        /* drive [name:] target poisson(args) weight expr port name */
    DECL_SIMULATION,   /* simulation { settings } */
    DECL_RECORD,       /* record spikes [paths] | record weights path [every expr] [synapses] */
    DECL_PLASTICITY,   /* plasticity name "doc" { body } */
    DECL_MODULATOR,    /* modulator name "doc" { STMT_SETTING baseline / tau } */
    DECL_RELEASE,      /* release name amount (per spike of path | when ... ) */
    DECL_ENSEMBLES,    /* only inside a region: ensembles POP = split(n) | [items] */
    DECL_SEQUENCE,     /* sequence name = POP[i, j, ...] every expr { settings } */
    DECL_STIMULUS,     /* stimulus path weight expr port name */
    DECL_PROTOCOL,     /* protocol name "doc" { protocol statements } */
} DeclKind;

typedef enum RecordKind { RECORD_SPIKES, RECORD_WEIGHTS } RecordKind;
typedef enum ReleaseKind {
    RELEASE_PER_SPIKE,  /* release M amount per spike of src */
    RELEASE_WHEN,       /* release M amount when dst[index2] fires within window after src[index] [delay d] */
} ReleaseKind;

typedef struct Decl Decl;

typedef struct Path {      /* a dotted reference like V1.exc */
    const char **parts;
    int nparts;
    SrcSpan span;
} Path;

struct Decl {
    DeclKind kind;
    SrcSpan span;
    const char *name;         /* PARAM NEURON REGION POPULATION; PROJECT/DRIVE: NULL if unnamed */
    SrcSpan name_span;
    const char *doc;          /* NEURON REGION: optional doc string */
    /* USE */
    Path module;              /* std.neurons */
    const char **names;       /* imported names */
    SrcSpan *name_spans;
    int nnames;
    /* PARAM: value; POPULATION: size; DRIVE: weight */
    Expr *expr;
    /* NEURON */
    const char *builtin;      /* NULL, or the source kind ("poisson", "spike_times") */
    SrcSpan builtin_span;
    Stmt **body;              /* NEURON, PROJECT, SIMULATION items */
    int nbody;
    /* REGION */
    Decl **members;           /* DECL_POPULATION */
    int nmembers;
    /* POPULATION: model name and its argument list */
    const char *model;
    SrcSpan model_span;
    Arg **args;               /* POPULATION overrides; DRIVE poisson(args) */
    int nargs;
    /* PROJECT: src -> dst; DRIVE and RECORD: targets */
    /* (the parser puts a DRIVE's target in dst; RECORD's in paths) */
    Path src, dst;
    Path *paths;              /* RECORD: the recorded populations (0 = all) */
    int npaths;
    const char *port;         /* DRIVE */
    SrcSpan port_span;
    /* RECORD */
    RecordKind record_kind;
    Expr *every;              /* RECORD weights: sampling interval, or NULL */
    bool per_synapse;         /* RECORD weights: `synapses` given */
    /* RELEASE: name = the modulator; expr = amount; src (and index) / dst (and index2) */
    ReleaseKind release_kind;
    Expr *index, *index2;     /* RELEASE_WHEN: neuron indices in src and dst;
                                 PROJECT: ensemble indices of src and dst (POP[k]), or NULL */
    Expr *window;             /* RELEASE_WHEN: "within" */
    Expr *delay;              /* RELEASE_WHEN: "delay", or NULL */
    /* ENSEMBLES: name = the population; expr = split count (split form) or
     * NULL; args = the [items]: name and value (EXPR_PAIR lo..hi, or NULL).
     * SEQUENCE: expr = the elements (EXPR_INDEX), every = interval, body = settings.
     * STIMULUS: dst, expr = weight, port.  PROTOCOL: name, doc, body. */
};

/* One parsed file. */
/* A `#` comment, kept for `engramc fmt`: its text from '#' to the end of
 * the line, its line, and whether a token precedes it on that line. */
typedef struct AstComment {
    const char *text;
    int line;
    bool trailing;
} AstComment;

typedef struct AstFile {
    int file;                 /* SourceManager index */
    const char *model_name;   /* NULL for a module (no "model" line) */
    SrcSpan model_span;
    Decl **decls;
    int ndecls;
    AstComment **comments;    /* in source order */
    int ncomments;
} AstFile;

/* ---- building lists while parsing --------------------------------------- */

typedef struct AstList {
    void **items;
    int count, cap;
} AstList;

void ast_list_push(Arena *a, AstList *l, void *item);  /* grows in the arena */

/* ---- constructors (all in ast.c) ------------------------------------------ */

Expr *ast_expr_new(Arena *a, ExprKind kind, SrcSpan span);
Stmt *ast_stmt_new(Arena *a, StmtKind kind, SrcSpan span);
Decl *ast_decl_new(Arena *a, DeclKind kind, SrcSpan span);

/* ---- printing ------------------------------------------------------------- */

/* Canonical source form (used by `engramc fmt` and by parser round-trip tests). */
#include <stdio.h>
void ast_print_file(FILE *out, const AstFile *f);
void ast_print_expr(FILE *out, const Expr *e);
/* The canonical text of an expression, in the arena ("recall(reach_A)"). */
const char *ast_expr_text(Arena *a, const Expr *e);
const char *ast_op_text(OpKind op);

#endif
