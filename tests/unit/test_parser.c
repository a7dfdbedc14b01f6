/*
 * test_parser.c - parse_file: the tree of each construct (plasticity rules,
 * modulators, releases and weight recording included), operator
 * precedence, syntax errors (exact text) and recovery, the nesting limits,
 * the canonical printer's round trip (over inline samples and every
 * examples/ and stdlib/ file present), and the golden files in
 * tests/diagnostics/ (NAME.engram must print exactly NAME.err).
 *
 * Tests run from the repository root (ctest sets the working directory).
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* ---- harness ---------------------------------------------------------------- */

typedef struct Parsed {
    DiagCtx d;
    Arena a;
    AstFile *f;
    char *errors;
} Parsed;

static Parsed P;

static char *flush_to_string(DiagCtx *d)
{
    char *buf = NULL;
    size_t len;
    FILE *mem = open_memstream(&buf, &len);
    diag_flush(d, mem);
    fclose(mem);
    return buf;
}

static AstFile *parse_into(Parsed *p, const char *name, const char *text)
{
    diag_init(&p->d);
    arena_init(&p->a);
    int file = diag_add_text(&p->d, name, text, strlen(text));
    p->f = parse_file(&p->d, &p->a, file);
    p->errors = flush_to_string(&p->d);
    return p->f;
}

static void parsed_free(Parsed *p)
{
    free(p->errors);
    arena_free(&p->a);
    diag_free(&p->d);
    memset(p, 0, sizeof *p);
}

static AstFile *parse(const char *text)
{
    return parse_into(&P, "t.engram", text);
}

/* Parses text that must have no errors. */
static AstFile *parse_ok(const char *text)
{
    AstFile *f = parse(text);
    cr_assert_not_null(f);
    cr_assert_str_eq(P.errors, "", "unexpected errors:\n%s", P.errors);
    return f;
}

static void fini(void)
{
    parsed_free(&P);
}

TestSuite(parser, .fini = fini);

/* Fully parenthesised prefix form of an expression: "(+ a (* b c))". */
static void sexpr_to(FILE *out, const Expr *e)
{
    switch (e->kind) {
    case EXPR_NUMBER: fprintf(out, "%g", e->value); break;
    case EXPR_QUANTITY: fprintf(out, "%g%s", e->value, e->unit); break;
    case EXPR_BOOL: fputs(e->value ? "true" : "false", out); break;
    case EXPR_NAME:
        for (int i = 0; i < e->nparts; i++)
            fprintf(out, "%s%s", i ? "." : "", e->parts[i]);
        break;
    case EXPR_UNARY:
        fprintf(out, "(%s ", e->op == OP_NEG ? "neg" : "not");
        sexpr_to(out, e->lhs);
        fputc(')', out);
        break;
    case EXPR_BINARY:
        fprintf(out, "(%s ", ast_op_text(e->op));
        sexpr_to(out, e->lhs);
        fputc(' ', out);
        sexpr_to(out, e->rhs);
        fputc(')', out);
        break;
    case EXPR_CALL:
    case EXPR_LIST:
        fprintf(out, "(%s", e->kind == EXPR_CALL ? e->callee : "list");
        for (int i = 0; i < e->nargs; i++) {
            fputc(' ', out);
            if (e->args[i]->name)
                fprintf(out, "%s=", e->args[i]->name);
            sexpr_to(out, e->args[i]->value);
        }
        fputc(')', out);
        break;
    case EXPR_INDEX:
        fputs("(index ", out);
        sexpr_to(out, e->lhs);
        for (int i = 0; i < e->nargs; i++) {
            fputc(' ', out);
            sexpr_to(out, e->args[i]->value);
        }
        fputc(')', out);
        break;
    case EXPR_PAIR:
        fputs("(-> ", out);
        sexpr_to(out, e->lhs);
        fputc(' ', out);
        sexpr_to(out, e->rhs);
        fputc(')', out);
        break;
    }
}

static char sbuf[4096];

static const char *sexpr(const Expr *e)
{
    FILE *mem = fmemopen(sbuf, sizeof sbuf, "w");
    sexpr_to(mem, e);
    fclose(mem);
    return sbuf;
}

/* The value of `param x = <text>` in a fresh parse. */
static const char *expr_of(const char *text)
{
    static char src[1024];
    snprintf(src, sizeof src, "model m\nparam x = %s\n", text);
    parsed_free(&P);
    AstFile *f = parse_ok(src);
    cr_assert_eq(f->ndecls, 1);
    return sexpr(f->decls[0]->expr);
}

/* ---- trees --------------------------------------------------------------------- */

Test(parser, model_use_param)
{
    AstFile *f = parse_ok("model brunel\nuse std.neurons (LIF, Poisson)\nparam g = 5; param J = 0.1 mV\n");
    cr_expect_str_eq(f->model_name, "brunel");
    cr_expect_eq(f->model_span.first_column, 7);
    cr_assert_eq(f->ndecls, 3);
    Decl *u = f->decls[0];
    cr_expect_eq(u->kind, DECL_USE);
    cr_expect_eq(u->module.nparts, 2);
    cr_expect_str_eq(u->module.parts[1], "neurons");
    cr_assert_eq(u->nnames, 2);
    cr_expect_str_eq(u->names[1], "Poisson");
    cr_expect_eq(u->name_spans[1].first_column, 23);
    cr_expect_eq(f->decls[1]->kind, DECL_PARAM);
    cr_expect_str_eq(f->decls[1]->name, "g");
    cr_expect_str_eq(sexpr(f->decls[2]->expr), "0.1mV");
}

Test(parser, module_file_has_no_model_line)
{
    AstFile *f = parse_ok("neuron A { param x = 1 }\n");
    cr_expect_null(f->model_name);
    cr_expect_eq(f->ndecls, 1);
}

Test(parser, neuron_items)
{
    AstFile *f = parse_ok(
        "model m\n"
        "neuron LIF \"doc\" {\n"
        "  param tau = 20 ms\n  state v = -70 mV\n  let I = g * v\n  dv/dt = -v / tau\n"
        "  threshold v > -50 mV\n  reset { v = -70 mV; g += 1 nS; h -= 2; k *= 0.5 }\n"
        "  refractory 2 ms\n  input exc -> g\n  method rk4\n}\n");
    Decl *n = f->decls[0];
    cr_assert_eq(n->kind, DECL_NEURON);
    cr_expect_str_eq(n->name, "LIF");
    cr_expect_str_eq(n->doc, "doc");
    cr_expect_null(n->builtin);
    cr_assert_eq(n->nbody, 9);
    StmtKind kinds[] = {STMT_PARAM, STMT_STATE, STMT_LET, STMT_ODE, STMT_THRESHOLD, STMT_RESET,
                        STMT_REFRACTORY, STMT_INPUT, STMT_METHOD};
    for (int i = 0; i < 9; i++)
        cr_expect_eq(n->body[i]->kind, kinds[i], "item %d", i);
    cr_expect_str_eq(n->body[3]->name, "v");
    cr_expect_str_eq(sexpr(n->body[3]->expr), "(/ (neg v) tau)");
    cr_expect_str_eq(sexpr(n->body[4]->expr), "(> v (neg 50mV))");
    Stmt *r = n->body[5];
    cr_assert_eq(r->nbody, 4);
    cr_expect_eq(r->body[1]->assign_op, ASSIGN_ADD);
    cr_expect_eq(r->body[2]->assign_op, ASSIGN_SUB);
    cr_expect_eq(r->body[3]->assign_op, ASSIGN_MUL);
    cr_expect_str_eq(r->body[3]->name, "k");
    cr_expect_str_eq(n->body[7]->name, "exc");
    cr_expect_str_eq(n->body[7]->target, "g");
    cr_expect_str_eq(n->body[8]->name, "rk4");
    cr_expect_eq(n->span.first_line, 2);
    cr_expect_eq(n->span.last_line, 12);
}

Test(parser, builtin_sources)
{
    AstFile *f = parse_ok("neuron P builtin poisson { param rate = 10 Hz }\n"
                          "neuron T builtin spike_times \"d\" { param times = [1 ms, 2 ms] }\n");
    cr_expect_str_eq(f->decls[0]->builtin, "poisson");
    cr_expect_str_eq(f->decls[1]->builtin, "spike_times");
    cr_expect_str_eq(f->decls[1]->doc, "d");
    cr_expect_str_eq(sexpr(f->decls[1]->body[0]->expr), "(list 1ms 2ms)");
}

Test(parser, builtin_source_with_state_is_an_error)
{
    parse("neuron P builtin poisson { state v = 0 }\n");
    cr_expect_str_eq(P.errors, "t.engram:1:28: error: a builtin source may only declare params\n"
                               "    1 | neuron P builtin poisson { state v = 0 }\n"
                               "      |                            ^~~~~~~~~~~\n");
}

Test(parser, region_and_populations)
{
    AstFile *f = parse_ok("region V1 \"visual\" {\n  population exc = 0.8 * N LIF(tau_m = 20 ms, 3)\n"
                          "  population inh = 800 LIF\n  population src = 10 P()\n}\n");
    Decl *r = f->decls[0];
    cr_assert_eq(r->kind, DECL_REGION);
    cr_expect_str_eq(r->doc, "visual");
    cr_assert_eq(r->nmembers, 3);
    Decl *e = r->members[0];
    cr_expect_eq(e->kind, DECL_POPULATION);
    cr_expect_str_eq(e->name, "exc");
    cr_expect_str_eq(sexpr(e->expr), "(* 0.8 N)");
    cr_expect_str_eq(e->model, "LIF");
    cr_assert_eq(e->nargs, 2);
    cr_expect_str_eq(e->args[0]->name, "tau_m");
    cr_expect_null(e->args[1]->name);
    cr_expect_null(r->members[1]->args);
    cr_expect_not_null(r->members[2]->args);
    cr_expect_eq(r->members[2]->nargs, 0);
}

Test(parser, projections)
{
    AstFile *f = parse_ok(
        "project A.exc -> B.inh { connect random(p = 0.02) weight 0.1 mV delay 1.5 ms port exc }\n"
        "project ee: A.exc -> A.exc { connect one_to_one autapses true }\n"
        "project A -> B { connect all_to_all() autapses false }\n");
    Decl *p = f->decls[0];
    cr_assert_eq(p->kind, DECL_PROJECT);
    cr_expect_null(p->name);
    cr_expect_str_eq(p->src.parts[0], "A");
    cr_expect_str_eq(p->dst.parts[1], "inh");
    cr_expect_eq(p->dst.nparts, 2);
    cr_assert_eq(p->nbody, 4);
    cr_expect_eq(p->body[0]->kind, STMT_CONNECT);
    cr_expect_str_eq(sexpr(p->body[0]->expr), "(random p=0.02)");
    cr_expect_eq(p->body[1]->kind, STMT_WEIGHT);
    cr_expect_eq(p->body[2]->kind, STMT_DELAY);
    cr_expect_eq(p->body[3]->kind, STMT_PORT);
    cr_expect_str_eq(p->body[3]->name, "exc");
    Decl *q = f->decls[1];
    cr_expect_str_eq(q->name, "ee");
    cr_expect_eq(q->body[0]->expr->kind, EXPR_NAME);
    cr_expect_eq(q->body[1]->expr->kind, EXPR_BOOL);
    cr_expect_eq(q->body[1]->expr->value, 1);
    cr_expect_eq(f->decls[2]->body[0]->expr->kind, EXPR_CALL);
    cr_expect_eq(f->decls[2]->body[1]->expr->value, 0);
}

Test(parser, drives_simulation_record)
{
    AstFile *f = parse_ok(
        "drive E.exc poisson(rate = 20 Hz, count = 1000) weight 0.1 mV port exc\n"
        "drive bg: E.inh poisson(rate = 5 Hz) weight 1 nS port inh\n"
        "simulation { dt = 0.1 ms; duration = 1 s seed = 7 }\n"
        "record spikes E.exc, E.inh\nrecord spikes\n");
    Decl *d = f->decls[0];
    cr_assert_eq(d->kind, DECL_DRIVE);
    cr_expect_null(d->name);
    cr_expect_str_eq(d->dst.parts[1], "exc");
    cr_expect_eq(d->nargs, 2);
    cr_expect_str_eq(sexpr(d->expr), "0.1mV");
    cr_expect_str_eq(d->port, "exc");
    cr_expect_str_eq(f->decls[1]->name, "bg");
    Decl *s = f->decls[2];
    cr_assert_eq(s->kind, DECL_SIMULATION);
    cr_assert_eq(s->nbody, 3);
    cr_expect_eq(s->body[2]->kind, STMT_SETTING);
    cr_expect_str_eq(s->body[2]->name, "seed");
    cr_expect_eq(f->decls[3]->npaths, 2);
    cr_expect_str_eq(f->decls[3]->paths[1].parts[1], "inh");
    cr_expect_eq(f->decls[4]->npaths, 0);
}

Test(parser, drive_must_be_poisson)
{
    parse("drive E poisso(rate = 1 Hz) weight 1 mV port exc\n");
    cr_expect_str_eq(P.errors, "t.engram:1:9: error: unknown drive 'poisso'; the only drive is 'poisson'\n"
                               "    1 | drive E poisso(rate = 1 Hz) weight 1 mV port exc\n"
                               "      |         ^~~~~~\n");
}

/* ---- plasticity rules, modulators, releases, weight recording ----------------------- */

Test(parser, plasticity_rule_items)
{
    AstFile *f = parse_ok(
        "plasticity STDP \"doc\" {\n"
        "  param A = 0.01\n  param w_max : weight\n  param w_min : weight = 0 nS\n"
        "  synapse c = 0\n  pre x = 0\n  post y = 1\n  dx/dt = -x / tau\n  let g = post.v * 2\n"
        "  bounds w_min, w_max\n"
        "  on pre { x += 1; w += A * y }\n  on post { y = 0 }\n  every 10 ms { w *= c }\n}\n");
    cr_assert_eq(f->ndecls, 1);
    Decl *r = f->decls[0];
    cr_assert_eq(r->kind, DECL_PLASTICITY);
    cr_expect_str_eq(r->name, "STDP");
    cr_expect_eq(r->name_span.first_column, 12);
    cr_expect_str_eq(r->doc, "doc");
    cr_expect_eq(r->span.first_line, 1);
    cr_expect_eq(r->span.last_line, 14);
    cr_assert_eq(r->nbody, 12);
    StmtKind kinds[] = {STMT_PARAM, STMT_PARAM, STMT_PARAM, STMT_SYNAPSE, STMT_PRE_TRACE,
                        STMT_POST_TRACE, STMT_ODE, STMT_LET, STMT_BOUNDS, STMT_ON_PRE,
                        STMT_ON_POST, STMT_EVERY};
    for (int i = 0; i < 12; i++)
        cr_expect_eq(r->body[i]->kind, kinds[i], "item %d", i);
    /* params: plain, weight-unit without and with a default */
    cr_expect_not(r->body[0]->weight_unit);
    cr_expect(r->body[1]->weight_unit);
    cr_expect_str_eq(r->body[1]->name, "w_max");
    cr_expect_null(r->body[1]->expr);
    cr_expect(r->body[2]->weight_unit);
    cr_expect_str_eq(sexpr(r->body[2]->expr), "0nS");
    cr_expect_eq(r->body[2]->span.last_column, 29);
    /* variables and traces */
    cr_expect_str_eq(r->body[3]->name, "c");
    cr_expect_str_eq(r->body[4]->name, "x");
    cr_expect_eq(r->body[4]->name_span.first_column, 7);
    cr_expect_str_eq(r->body[5]->name, "y");
    cr_expect_str_eq(sexpr(r->body[5]->expr), "1");
    cr_expect_str_eq(r->body[6]->name, "x");
    /* post.v is a name whose first part is the keyword */
    Expr *g = r->body[7]->expr;
    cr_expect_str_eq(sexpr(g), "(* post.v 2)");
    cr_assert_eq(g->lhs->kind, EXPR_NAME);
    cr_assert_eq(g->lhs->nparts, 2);
    cr_expect_str_eq(g->lhs->parts[0], "post");
    cr_expect_str_eq(g->lhs->parts[1], "v");
    cr_expect_eq(g->lhs->span.first_column, 11);
    cr_expect_eq(g->lhs->span.last_column, 16);
    /* bounds */
    cr_expect_str_eq(sexpr(r->body[8]->expr), "w_min");
    cr_expect_str_eq(sexpr(r->body[8]->expr2), "w_max");
    /* handlers */
    Stmt *on_pre = r->body[9];
    cr_expect_null(on_pre->expr);
    cr_assert_eq(on_pre->nbody, 2);
    cr_expect_eq(on_pre->body[0]->kind, STMT_ASSIGN);
    cr_expect_str_eq(on_pre->body[1]->name, "w");
    cr_expect_eq(on_pre->body[1]->assign_op, ASSIGN_ADD);
    cr_expect_str_eq(sexpr(on_pre->body[1]->expr), "(* A y)");
    cr_expect_eq(on_pre->span.first_line, 11);
    cr_expect_eq(on_pre->span.first_column, 3);
    cr_expect_eq(on_pre->span.last_column, 31);
    cr_assert_eq(r->body[10]->nbody, 1);
    cr_expect_eq(r->body[10]->body[0]->assign_op, ASSIGN_SET);
    cr_expect_str_eq(sexpr(r->body[11]->expr), "10ms");
    cr_assert_eq(r->body[11]->nbody, 1);
    cr_expect_eq(r->body[11]->body[0]->assign_op, ASSIGN_MUL);
}

Test(parser, pre_and_post_names_in_expressions)
{
    cr_expect_str_eq(expr_of("pre.v - post.v"), "(- pre.v post.v)");
    cr_expect_str_eq(expr_of("post.syn.g_e"), "post.syn.g_e");
    cr_expect_str_eq(expr_of("max(pre.x, 0)"), "(max pre.x 0)");
}

Test(parser, projection_uses_a_rule)
{
    AstFile *f = parse_ok(
        "project ee: E -> E { connect random(p = 0.1) plasticity STDP(w_max = 2 nS, 0.5) weight 1 nS }\n"
        "project E -> I { plasticity STDP }\n"
        "project I -> E { plasticity Hebb() }\n");
    Decl *p = f->decls[0];
    cr_assert_eq(p->nbody, 3);
    Stmt *s = p->body[1];
    cr_assert_eq(s->kind, STMT_PLASTICITY);
    cr_expect_str_eq(s->name, "STDP");
    cr_expect_eq(s->name_span.first_column, 57);
    cr_assert_eq(s->nargs, 2);
    cr_expect_str_eq(s->args[0]->name, "w_max");
    cr_expect_str_eq(sexpr(s->args[0]->value), "2nS");
    cr_expect_null(s->args[1]->name);
    cr_expect_eq(s->span.first_column, 46);
    cr_expect_eq(s->span.last_column, 79);
    cr_expect_eq(p->body[2]->kind, STMT_WEIGHT);
    /* without parentheses no argument list; with "()" an empty one */
    Stmt *bare = f->decls[1]->body[0];
    cr_expect_eq(bare->kind, STMT_PLASTICITY);
    cr_expect_null(bare->args);
    cr_expect_eq(bare->nargs, 0);
    Stmt *empty = f->decls[2]->body[0];
    cr_expect_not_null(empty->args);
    cr_expect_eq(empty->nargs, 0);
}

Test(parser, modulators)
{
    AstFile *f = parse_ok("modulator dopamine \"DA\" { baseline = 0; tau = 200 ms }\nmodulator m {}\n");
    cr_assert_eq(f->ndecls, 2);
    Decl *m = f->decls[0];
    cr_assert_eq(m->kind, DECL_MODULATOR);
    cr_expect_str_eq(m->name, "dopamine");
    cr_expect_str_eq(m->doc, "DA");
    cr_assert_eq(m->nbody, 2);
    cr_expect_eq(m->body[0]->kind, STMT_SETTING);
    cr_expect_str_eq(m->body[0]->name, "baseline");
    cr_expect_str_eq(m->body[1]->name, "tau");
    cr_expect_str_eq(sexpr(m->body[1]->expr), "200ms");
    cr_expect_eq(f->decls[1]->nbody, 0);
    cr_expect_null(f->decls[1]->doc);
}

Test(parser, releases)
{
    AstFile *f = parse_ok(
        "release dopamine 0.01 per spike of VTA.da\n"
        "release dopamine 0.5 when net.exc[2] fires within 20 ms after net.exc[1] delay uniform(1 s, 3 s)\n"
        "release da a * 2 when E[k + 1] fires within w after I[0]\n");
    cr_assert_eq(f->ndecls, 3);
    Decl *r = f->decls[0];
    cr_assert_eq(r->kind, DECL_RELEASE);
    cr_expect_eq(r->release_kind, RELEASE_PER_SPIKE);
    cr_expect_str_eq(r->name, "dopamine");
    cr_expect_eq(r->name_span.first_column, 9);
    cr_expect_str_eq(sexpr(r->expr), "0.01");
    cr_expect_eq(r->src.nparts, 2);
    cr_expect_str_eq(r->src.parts[1], "da");
    cr_expect_eq(r->src.span.first_column, 36);
    cr_expect_eq(r->span.last_column, 41);
    cr_expect_null(r->index);
    Decl *w = f->decls[1];
    cr_expect_eq(w->release_kind, RELEASE_WHEN);
    cr_expect_str_eq(sexpr(w->expr), "0.5");
    cr_expect_str_eq(w->dst.parts[1], "exc");
    cr_expect_str_eq(sexpr(w->index2), "2");
    cr_expect_str_eq(sexpr(w->window), "20ms");
    cr_expect_str_eq(w->src.parts[0], "net");
    cr_expect_str_eq(sexpr(w->index), "1");
    cr_expect_str_eq(sexpr(w->delay), "(uniform 1s 3s)");
    cr_expect_eq(w->span.last_column, 96);
    Decl *x = f->decls[2];
    cr_expect_str_eq(sexpr(x->expr), "(* a 2)");
    cr_expect_str_eq(sexpr(x->index2), "(+ k 1)");
    cr_expect_str_eq(sexpr(x->window), "w");
    cr_expect_null(x->delay);
}

Test(parser, record_weights)
{
    AstFile *f = parse_ok("record weights ee every 100 ms synapses\n"
                          "record weights net.E -> net.I\n"
                          "record weights ee\n"
                          "record weights A->B synapses\n"
                          "record spikes A\n");
    cr_assert_eq(f->ndecls, 5);
    Decl *a = f->decls[0];
    cr_assert_eq(a->kind, DECL_RECORD);
    cr_expect_eq(a->record_kind, RECORD_WEIGHTS);
    cr_assert_eq(a->npaths, 1);
    cr_expect_eq(a->paths[0].nparts, 1);
    cr_expect_str_eq(a->paths[0].parts[0], "ee");
    cr_expect_eq(a->paths[0].span.first_column, 16);
    cr_expect_str_eq(sexpr(a->every), "100ms");
    cr_expect(a->per_synapse);
    cr_expect_eq(a->span.first_column, 1);
    cr_expect_eq(a->span.last_column, 39);
    Decl *b = f->decls[1];
    cr_expect_eq(b->npaths, 0);
    cr_expect_str_eq(b->src.parts[1], "E");
    cr_expect_str_eq(b->dst.parts[1], "I");
    cr_expect_null(b->every);
    cr_expect_not(b->per_synapse);
    cr_expect_eq(b->span.last_column, 29);
    cr_expect_null(f->decls[2]->every);
    cr_expect_not(f->decls[2]->per_synapse);
    cr_expect(f->decls[3]->per_synapse);
    cr_expect_str_eq(f->decls[3]->dst.parts[0], "B");
    cr_expect_eq(f->decls[4]->record_kind, RECORD_SPIKES);
    cr_expect_eq(f->decls[4]->npaths, 1);
}

Test(parser, empty_list_argument)
{
    cr_expect_str_eq(expr_of("SpikeTimes(indices = [], times = [1 ms])"), "(SpikeTimes indices=(list) times=(list 1ms))");
    parsed_free(&P);
    AstFile *f = parse_ok("param x = []\n");
    cr_expect_eq(f->decls[0]->expr->kind, EXPR_LIST);
    cr_expect_eq(f->decls[0]->expr->nargs, 0);
    cr_expect_eq(f->decls[0]->expr->span.last_column, 12);
}

Test(parser, rule_param_dimension_must_be_weight)
{
    AstFile *f = parse("plasticity R {\n  param w_max : mV = 1 mV\n  pre x = 0\n}\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:2:17: error: expected 'weight' after ':', not 'mV'\n"
                     "    2 |   param w_max : mV = 1 mV\n"
                     "      |                 ^~\n"
                     "hint: ': weight' gives a rule param the unit of the projection's weight; other "
                     "params take their unit from their value (param tau = 20 ms)\n");
    cr_assert_eq(f->ndecls, 1);
    cr_expect_eq(f->decls[0]->nbody, 1);
    parsed_free(&P);
    parse("plasticity R { param a : 5 mV }\n");
    cr_expect(strstr(P.errors, "t.engram:1:26: error: unexpected quantity '5 mV', expected 'weight'\n") == P.errors,
              "%s", P.errors);
}

Test(parser, release_words_are_checked)
{
    AstFile *f = parse("release d 0.5 pr spike of X\n"
                       "release d 0.5 when X[1] fire within 2 ms after Y[0]\n"
                       "release d 0.5 when X[1] fires within 2 ms after Y[0] delay 1 s\n"
                       "release d 1 per spike in X\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:1:15: error: unexpected identifier 'pr', expected 'per' or 'when'\n"
                     "    1 | release d 0.5 pr spike of X\n"
                     "      |               ^~\n"
                     "t.engram:2:25: error: unexpected identifier 'fire', expected 'fires'\n"
                     "    2 | release d 0.5 when X[1] fire within 2 ms after Y[0]\n"
                     "      |                         ^~~~\n"
                     "t.engram:4:23: error: unexpected identifier 'in', expected 'of'\n"
                     "    4 | release d 1 per spike in X\n"
                     "      |                       ^~\n");
    cr_assert_eq(f->ndecls, 1);
    cr_expect_eq(f->decls[0]->release_kind, RELEASE_WHEN);
    parsed_free(&P);
    parse("release d 1 per X[0] fires within 1 ms after Y[0]\n");
    cr_expect(strstr(P.errors, "error: unexpected identifier 'per', expected 'when'\n") != NULL, "%s", P.errors);
}

Test(parser, record_weights_errors)
{
    parse("record weight ee\nrecord weights a.b every 1 s\nrecord weights ee synapse\n"
          "record weights ee every 1 s all\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:1:8: error: unexpected 'weight', expected 'spikes' or 'weights'\n"
                     "    1 | record weight ee\n"
                     "      |        ^~~~~~\n"
                     "t.engram:2:20: error: unexpected 'every', expected '->', '[' or '.'\n"
                     "    2 | record weights a.b every 1 s\n"
                     "      |                    ^~~~~\n"
                     "t.engram:3:19: error: unexpected 'synapse'\n"
                     "    3 | record weights ee synapse\n"
                     "      |                   ^~~~~~~\n"
                     "hint: 'synapse' is a reserved word; it cannot be used as a name\n"
                     "t.engram:4:29: error: unexpected identifier 'all', expected 'synapses'\n"
                     "    4 | record weights ee every 1 s all\n"
                     "      |                             ^~~\n");
}

/* A bad item, a bad handler head and a bad clock keep the rest of the rule. */
Test(parser, recovery_inside_a_rule)
{
    AstFile *f = parse("plasticity R {\n"
                       "  tau = 5\n"
                       "  pre x = 0\n"
                       "  on spike { w += 1 }\n"
                       "  every { w = 1 }\n"
                       "  on post { y = = 1; w += x }\n"
                       "  post y = 0\n"
                       "}\n"
                       "param after = 1\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:2:3: error: unexpected identifier 'tau', expected a rule item or '}'\n"
                     "    2 |   tau = 5\n"
                     "      |   ^~~\n"
                     "t.engram:4:6: error: unexpected identifier 'spike', expected 'pre' or 'post'\n"
                     "    4 |   on spike { w += 1 }\n"
                     "      |      ^~~~~\n"
                     "t.engram:5:9: error: unexpected '{', expected an expression\n"
                     "    5 |   every { w = 1 }\n"
                     "      |         ^\n"
                     "t.engram:6:17: error: unexpected '=', expected an expression\n"
                     "    6 |   on post { y = = 1; w += x }\n"
                     "      |                 ^\n");
    cr_assert_eq(f->ndecls, 2);
    Decl *r = f->decls[0];
    cr_assert_eq(r->kind, DECL_PLASTICITY);
    cr_assert_eq(r->nbody, 3);
    cr_expect_eq(r->body[0]->kind, STMT_PRE_TRACE);
    cr_expect_eq(r->body[1]->kind, STMT_ON_POST);
    cr_expect_eq(r->body[1]->nbody, 1);
    cr_expect_eq(r->body[2]->kind, STMT_POST_TRACE);
    cr_expect_str_eq(f->decls[1]->name, "after");
}

Test(parser, unclosed_handler_note)
{
    parse("plasticity R {\n  on pre { w += 1\n  post y = 0\n}\n");
    cr_expect(strstr(P.errors, "t.engram:3:3: error: unexpected 'post', expected an operator, an identifier or '}'\n")
              == P.errors, "%s", P.errors);
    cr_expect(strstr(P.errors, "t.engram:2:10: note: unclosed '{' of on pre opened here\n") != NULL,
              "%s", P.errors);
    parsed_free(&P);
    parse("plasticity STDP {\n  every 1 s { w = 1\n  bounds 0, 1\n");
    cr_expect(strstr(P.errors, "note: unclosed '{' of every opened here\n") != NULL, "%s", P.errors);
    parsed_free(&P);
    parse("plasticity STDP {\n  pre x = 0\nmodulator m { tau = 1 s }\n");
    cr_expect(strstr(P.errors, "note: unclosed '{' of plasticity 'STDP' opened here\n") != NULL, "%s", P.errors);
}

/* A reserved word where a name belongs, on the same line, gets a hint. */
Test(parser, reserved_word_as_a_name)
{
    parse("neuron N { let on = 1\n  param a = 1\n  param every = 2 }\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:1:16: error: unexpected 'on', expected an identifier\n"
                     "    1 | neuron N { let on = 1\n"
                     "      |                ^~\n"
                     "hint: 'on' is a reserved word; it cannot be used as a name\n"
                     "t.engram:3:9: error: unexpected 'every', expected an identifier\n"
                     "    3 |   param every = 2 }\n"
                     "      |         ^~~~~\n"
                     "hint: 'every' is a reserved word; it cannot be used as a name\n");
}

Test(parser, post_needs_a_dotted_name)
{
    parse("plasticity R { let a = post }\n");
    cr_expect(strstr(P.errors, "t.engram:1:29: error: unexpected '}', expected '.'\n") == P.errors, "%s", P.errors);
}

/* ---- expressions ------------------------------------------------------------------ */

Test(parser, precedence)
{
    cr_expect_str_eq(expr_of("a or b and not c < d + e * -f ^ g"),
                     "(or a (and b (not (< c (+ d (* e (neg (^ f g))))))))");
    cr_expect_str_eq(expr_of("a - b - c"), "(- (- a b) c)");
    cr_expect_str_eq(expr_of("a / b * c"), "(* (/ a b) c)");
    cr_expect_str_eq(expr_of("2 ^ 3 ^ 2"), "(^ 2 (^ 3 2))");
    cr_expect_str_eq(expr_of("-70 mV"), "(neg 70mV)");
    cr_expect_str_eq(expr_of("(a + b) * c"), "(* (+ a b) c)");
    cr_expect_str_eq(expr_of("not a == b or c"), "(or (not (== a b)) c)");
    cr_expect_str_eq(expr_of("a <= b and c >= d and e != f"), "(and (and (<= a b) (>= c d)) (!= e f))");
    cr_expect_str_eq(expr_of("2 ^ -x"), "(^ 2 (neg x))");
}

Test(parser, calls_lists_names)
{
    cr_expect_str_eq(expr_of("normal(0.5 nS, sd = 0.1 nS, min = 0 nS)"), "(normal 0.5nS sd=0.1nS min=0nS)");
    cr_expect_str_eq(expr_of("V1.exc.tau_m * 2"), "(* V1.exc.tau_m 2)");
    cr_expect_str_eq(expr_of("[1, 2, 3]"), "(list 1 2 3)");
    cr_expect_str_eq(expr_of("f()"), "(f)");
    cr_expect_str_eq(expr_of("true and false"), "(and true false)");
    cr_expect_str_eq(expr_of("clip(x, 0, max(a, b))"), "(clip x 0 (max a b))");
}

Test(parser, comparisons_do_not_chain)
{
    parse("param x = a < b < c\n");
    cr_expect_str_eq(P.errors, "t.engram:1:17: error: unexpected '<', expected an operator, a declaration or end of file\n"
                               "    1 | param x = a < b < c\n"
                               "      |                 ^\n"
                               "hint: comparisons do not chain; write 'a < b and b < c'\n");
}

/* ---- errors and recovery ------------------------------------------------------------ */

Test(parser, unknown_unit_after_number)
{
    parse("model m\nneuron N {\n  param tau = 20 msec\n}\n");
    cr_expect_str_eq(P.errors, "t.engram:3:18: error: unknown unit 'msec'; did you mean 'ms'?\n"
                               "    3 |   param tau = 20 msec\n"
                               "      |                  ^~~~\n");
}

Test(parser, unknown_unit_read_as_next_setting)
{
    parse("simulation { dt = 0.1 mv duration = 1 s }\n");
    cr_expect_str_eq(P.errors, "t.engram:1:23: error: unknown unit 'mv'; did you mean 'mV'?\n"
                               "    1 | simulation { dt = 0.1 mv duration = 1 s }\n"
                               "      |                       ^~\n");
}

Test(parser, several_errors_in_one_file)
{
    AstFile *f = parse("model m\n"
                       "neuron A {\n  tau = 5\n  param b = 1\n}\n"
                       "region R { population p = 10 }\n"
                       "param ok = 1\n"
                       "project A -> { weight 1 }\n"
                       "param ok2 = 2\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:3:3: error: unexpected identifier 'tau', expected a neuron item or '}'\n"
                     "    3 |   tau = 5\n"
                     "      |   ^~~\n"
                     "t.engram:6:30: error: unexpected '}', expected an operator or an identifier\n"
                     "    6 | region R { population p = 10 }\n"
                     "      |                              ^\n"
                     "t.engram:8:14: error: unexpected '{', expected an identifier\n"
                     "    8 | project A -> { weight 1 }\n"
                     "      |              ^\n");
    cr_expect_eq(P.d.nerrors, 3);
    /* neuron A, region R, both params, and nothing from the bad project */
    cr_assert_eq(f->ndecls, 4);
    cr_expect_eq(f->decls[0]->nbody, 1);
    cr_expect_str_eq(f->decls[3]->name, "ok2");
}

Test(parser, unclosed_block_at_end_of_file)
{
    parse("model m\nneuron LIF {\n  param a = 1\n  reset { v = 0\n");
    cr_expect_str_eq(P.errors,
                     "t.engram:4:16: error: unexpected end of file, expected an operator, an identifier or '}'\n"
                     "    4 |   reset { v = 0\n"
                     "      |                ^\n"
                     "t.engram:4:9: note: unclosed '{' of reset opened here\n"
                     "    4 |   reset { v = 0\n"
                     "      |         ^\n");
}

Test(parser, top_level_keyword_inside_unclosed_block)
{
    parse("neuron LIF {\n  param a = 1\nregion R { population p = 1 LIF }\n");
    cr_expect(strstr(P.errors, "t.engram:3:1: error: unexpected 'region', expected an operator, a neuron item or '}'\n")
              == P.errors, "%s", P.errors);
    cr_expect(strstr(P.errors, "t.engram:1:12: note: unclosed '{' of neuron 'LIF' opened here\n") != NULL,
              "%s", P.errors);
}

Test(parser, named_project_in_unclosed_note)
{
    parse("project ee: A -> B {\n  weight 1 mV\n");
    cr_expect(strstr(P.errors, "note: unclosed '{' of project 'ee' opened here") != NULL, "%s", P.errors);
}

Test(parser, bad_header_still_parses_body)
{
    AstFile *f = parse("neuron \"doc\" {\n  param a = 1\n}\nparam b = 2\n");
    cr_expect_str_eq(P.errors, "t.engram:1:8: error: unexpected string '\"doc\"', expected an identifier\n"
                               "    1 | neuron \"doc\" {\n"
                               "      |        ^~~~~\n");
    cr_assert_eq(f->ndecls, 1);
    cr_expect_str_eq(f->decls[0]->name, "b");
}

Test(parser, garbage_before_model_line)
{
    AstFile *f = parse("} ] 12\nparam a = 1\n");
    cr_expect_str_eq(P.errors, "t.engram:1:1: error: unexpected '}', expected a declaration or end of file\n"
                               "    1 | } ] 12\n"
                               "      | ^\n");
    cr_assert_not_null(f);
    cr_expect_eq(f->ndecls, 1);
}

Test(parser, empty_file)
{
    AstFile *f = parse("");
    cr_expect_null(f);
    cr_expect_str_eq(P.errors, "t.engram:1:1: error: empty file: expected 'model NAME'\n");
}

Test(parser, comment_only_file_is_empty)
{
    AstFile *f = parse("# nothing here\n\n");
    cr_expect_null(f);
    cr_expect_eq(P.d.nerrors, 1);
}

Test(parser, error_flood_stops_at_max_errors)
{
    const char *line = "param x = = 1\n";
    size_t n = strlen(line);
    char *text = malloc(5000 * n + 16);
    char *p = text + sprintf(text, "model m\n");
    for (int i = 0; i < 5000; i++, p += n)
        memcpy(p, line, n + 1);
    parse(text);
    free(text);
    cr_expect_gt(P.d.nerrors, P.d.max_errors);
    cr_expect(strstr(P.errors, "engramc: note: too many errors; stopping\n") != NULL);
}

/* ---- limits ------------------------------------------------------------------------- */

static char *repeat_around(const char *head, const char *open, int n, const char *mid, const char *close)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc(strlen(head) + n * (lo + lc) + strlen(mid) + 2);
    char *p = s + sprintf(s, "%s", head);
    for (int i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    p += sprintf(p, "%s", mid);
    for (int i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

Test(parser, depth_limit_exactly)
{
    char *ok = repeat_around("param x = ", "(", PARSE_MAX_DEPTH, "1", ")");
    parse_ok(ok);
    parsed_free(&P);
    char *bad = repeat_around("param x = ", "(", PARSE_MAX_DEPTH + 1, "1", ")");
    parse(bad);
    cr_expect_eq(P.d.nerrors, 1, "%s", P.errors);
    cr_expect(strstr(P.errors, "t.engram:1:267: error: nesting is too deep (the limit is 256 levels)\n") == P.errors,
              "%s", P.errors);
    free(ok);
    free(bad);
}

Test(parser, hundred_thousand_parentheses)
{
    char *s = repeat_around("model m\nparam x = ", "(", 100000, "1", ")");
    AstFile *f = parse(s);
    free(s);
    cr_assert_not_null(f);
    cr_expect_eq(P.d.nerrors, 1);
    cr_expect(strstr(P.errors, "nesting is too deep") != NULL);
}

Test(parser, long_prefix_chains_do_not_exhaust_silently)
{
    char *s = repeat_around("param x = ", "- not ", 60000, "1", "");
    parse(s);
    free(s);
    cr_expect_eq(P.d.nerrors, 1);
    cr_expect(strstr(P.errors, "t.engram:1:") == P.errors, "%s", P.errors);
    cr_expect(strstr(P.errors, "error: expression is nested too deeply\n") != NULL, "%s", P.errors);
    cr_expect(strstr(P.errors, "memory exhausted") == NULL);
}

/* ---- canonical printing ------------------------------------------------------------------ */

static bool span_free_equal_expr(const Expr *a, const Expr *b);

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool args_equal(Arg *const *a, Arg *const *b, int n)
{
    for (int i = 0; i < n; i++)
        if (!str_eq(a[i]->name, b[i]->name) || !span_free_equal_expr(a[i]->value, b[i]->value))
            return false;
    return true;
}

static bool parts_equal(const char *const *a, const char *const *b, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static bool span_free_equal_expr(const Expr *a, const Expr *b)
{
    if (!a || !b)
        return a == b;
    return a->kind == b->kind && a->value == b->value && str_eq(a->unit, b->unit) &&
           a->nparts == b->nparts && parts_equal(a->parts, b->parts, a->nparts) && a->op == b->op &&
           span_free_equal_expr(a->lhs, b->lhs) && span_free_equal_expr(a->rhs, b->rhs) &&
           str_eq(a->callee, b->callee) && a->nargs == b->nargs && args_equal(a->args, b->args, a->nargs);
}

static bool stmts_equal(Stmt *const *a, Stmt *const *b, int n)
{
    for (int i = 0; i < n; i++) {
        const Stmt *x = a[i], *y = b[i];
        if (x->kind != y->kind || !str_eq(x->name, y->name) || !str_eq(x->target, y->target) ||
            x->assign_op != y->assign_op || !span_free_equal_expr(x->expr, y->expr) ||
            !span_free_equal_expr(x->expr2, y->expr2) || x->weight_unit != y->weight_unit ||
            (x->args == NULL) != (y->args == NULL) || x->nargs != y->nargs ||
            !args_equal(x->args, y->args, x->nargs) ||
            x->nbody != y->nbody || !stmts_equal(x->body, y->body, x->nbody))
            return false;
    }
    return true;
}

static bool paths_equal(const Path *a, const Path *b)
{
    return a->nparts == b->nparts && parts_equal(a->parts, b->parts, a->nparts);
}

static bool decls_equal(Decl *const *a, Decl *const *b, int n)
{
    for (int i = 0; i < n; i++) {
        const Decl *x = a[i], *y = b[i];
        bool ok = x->kind == y->kind && str_eq(x->name, y->name) && str_eq(x->doc, y->doc) &&
                  paths_equal(&x->module, &y->module) && x->nnames == y->nnames &&
                  parts_equal(x->names, y->names, x->nnames) && span_free_equal_expr(x->expr, y->expr) &&
                  str_eq(x->builtin, y->builtin) && x->nbody == y->nbody &&
                  stmts_equal(x->body, y->body, x->nbody) && x->nmembers == y->nmembers &&
                  decls_equal(x->members, y->members, x->nmembers) && str_eq(x->model, y->model) &&
                  x->nargs == y->nargs && args_equal(x->args, y->args, x->nargs) &&
                  paths_equal(&x->src, &y->src) && paths_equal(&x->dst, &y->dst) &&
                  x->npaths == y->npaths && str_eq(x->port, y->port) &&
                  x->record_kind == y->record_kind && span_free_equal_expr(x->every, y->every) &&
                  x->per_synapse == y->per_synapse && x->release_kind == y->release_kind &&
                  span_free_equal_expr(x->index, y->index) &&
                  span_free_equal_expr(x->index2, y->index2) &&
                  span_free_equal_expr(x->window, y->window) &&
                  span_free_equal_expr(x->delay, y->delay);
        for (int k = 0; ok && k < x->npaths; k++)
            ok = paths_equal(&x->paths[k], &y->paths[k]);
        if (!ok)
            return false;
    }
    return true;
}

static char *print_to_string(const AstFile *f)
{
    char *buf = NULL;
    size_t len;
    FILE *mem = open_memstream(&buf, &len);
    ast_print_file(mem, f);
    fclose(mem);
    return buf;
}

/* parse -> print -> parse gives the same tree, and printing is a fixed point. */
static void check_round_trip(const char *name, const char *text)
{
    Parsed first = {0}, second = {0};
    AstFile *a = parse_into(&first, name, text);
    cr_assert_not_null(a, "%s did not parse", name);
    cr_assert_str_eq(first.errors, "", "%s:\n%s", name, first.errors);
    char *printed = print_to_string(a);
    AstFile *b = parse_into(&second, name, printed);
    cr_assert_not_null(b);
    cr_expect_str_eq(second.errors, "", "%s reprinted:\n%s\n%s", name, printed, second.errors);
    cr_expect(str_eq(a->model_name, b->model_name));
    cr_expect_eq(a->ndecls, b->ndecls, "%s", name);
    cr_expect(a->ndecls == b->ndecls && decls_equal(a->decls, b->decls, a->ndecls),
              "%s: tree changed through\n%s", name, printed);
    char *again = print_to_string(b);
    cr_expect_str_eq(again, printed, "%s: printing is not a fixed point", name);
    free(again);
    free(printed);
    parsed_free(&first);
    parsed_free(&second);
}

static const char *const samples[] = {
    "model brunel\nuse std.neurons (LIF, Poisson)\nparam g = 5\nparam N = 4000; param J = 0.1 mV\n"
    "neuron LIF \"leaky \\\"if\\\" \\\\ neuron\" {\n  param tau_m = 20 ms\n  state v = uniform(-70 mV, -50 mV)\n"
    "  let I_syn = ge * (0 mV - v)\n  dv/dt = (-(v - -70 mV) + R * I_syn) / tau_m\n  dge/dt = -ge / 5ms\n"
    "  threshold v > v_th and not (v < -80 mV)\n  reset { v = -60 mV; ge *= 0.5 }\n  refractory 2 ms\n"
    "  input exc -> ge\n  method exact\n}\n",
    "neuron P builtin poisson { param rate = 10 Hz }\n"
    "neuron S builtin spike_times { param times = [1 ms, 2 ms] param indices = [0, 1] }\n"
    "region V1 \"v\" { population exc = 0.8 * N LIF(tau_m = 20 ms) population inh = N / 5 LIF\n"
    "  population src = 100 P() population odd = (10) S }\n",
    "project V1.exc -> V1.inh { connect random(p = 0.02) weight 0.1 mV delay 1.5 ms port exc }\n"
    "project ee: V1.exc -> V1.exc { connect one_to_one weight 2^-1^2 * 1 mV autapses true }\n"
    "drive V1.exc poisson(rate = 20 Hz, count = 1000) weight 0.1 mV port exc\n"
    "drive bg: V1.inh poisson(rate = 5 Hz) weight -(0.1 mV) port exc\n"
    "simulation { dt = 0.1 ms duration = 1 s seed = 42 }\nrecord spikes V1.exc, V1.inh\nrecord spikes\n",
    "param a = (a - (b - c)) / (d / e) ^ (f ^ g) ^ h\nparam b = -(x ^ 2) + (-x) ^ 2 - - - 3\n"
    "param c = not (a and b) or (c or d) and not not e\nparam d = (a < b) == (c > d)\n"
    "param e = 0.1 + 1e-300 * 123456789012345678 + 0.30000000000000004 + 1e+22 ms\n"
    "param f = a < (not b)\nparam g = a * -b / -(c + d)\n",
};

Test(parser, round_trip_inline_samples)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "sample%zu.engram", i);
        check_round_trip(name, samples[i]);
    }
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, fp);
    s[got] = '\0';
    fclose(fp);
    return s;
}

static void round_trip_glob(const char *pattern)
{
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return;   /* nothing there yet */
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *text = slurp(g.gl_pathv[i]);
        check_round_trip(g.gl_pathv[i], text);
        free(text);
    }
    globfree(&g);
}

/* Every construct of sections 12-14 (tests/unit/data/rules.engram). */
Test(parser, round_trip_rules)
{
    char *text = slurp("tests/unit/data/rules.engram");
    check_round_trip("tests/unit/data/rules.engram", text);
    free(text);
}

/* Every construct of sections 15-16 (tests/unit/data/protocols.engram). */
Test(parser, round_trip_protocols)
{
    char *text = slurp("tests/unit/data/protocols.engram");
    check_round_trip("tests/unit/data/protocols.engram", text);
    free(text);
}

/* Protocol words are keywords only inside a protocol's braces, and never after a '.'. */
Test(parser, protocol_words_are_contextual)
{
    AstFile *f = parse_ok("param rate = 5\nparam current = 2\nparam f = 2\nregion R { population cue = 3 LIF }\n"
                          "protocol p { cue R.cue rate f * 1 Hz for 1 ms }\n");
    cr_assert_eq(f->ndecls, 5);
    const Decl *p = f->decls[4];
    cr_assert_eq(p->kind, DECL_PROTOCOL);
    cr_assert_eq(p->nbody, 1);
    cr_assert_eq(p->body[0]->kind, STMT_P_CUE);
    cr_assert_str_eq(sexpr(p->body[0]->subject), "R.cue");
    cr_assert_str_eq(sexpr(p->body[0]->expr), "(* f 1Hz)");
}

Test(parser, protocol_statements)
{
    AstFile *f = parse_ok("protocol p {\n"
                          "  phase a repeat 3 trials { reward m 1 when recall(s) > 0.5 after 1 s }\n"
                          "  repeat d 1..n { measure weight(R.x[d] -> R.y[0]), rate(R.x) }\n"
                          "  sleep 1 s { plasticity off pj, R.a -> R.b }\n"
                          "}\n");
    const Decl *p = f->decls[0];
    cr_assert_eq(p->nbody, 3);
    const Stmt *a = p->body[0];
    cr_assert_eq(a->kind, STMT_P_BLOCK);
    cr_assert_eq(a->variant, 1);
    cr_assert_str_eq(a->name, "a");
    cr_assert_eq(a->body[0]->kind, STMT_P_REPEAT);
    cr_assert_eq(a->body[0]->variant, 1);
    const Stmt *r = a->body[0]->body[0];
    cr_assert_eq(r->kind, STMT_P_REWARD);
    cr_assert_str_eq(sexpr(r->expr3), "(> (recall s) 0.5)");
    cr_assert_str_eq(sexpr(r->expr2), "1s");
    const Stmt *d = p->body[1];
    cr_assert_str_eq(d->name, "d");
    cr_assert_str_eq(sexpr(d->body[0]->args[0]->value), "(weight (-> (index R.x d) (index R.y 0)))");
    const Stmt *z = p->body[2];
    cr_assert_eq(z->variant, 4);
    cr_assert_eq(z->body[0]->kind, STMT_P_PLASTICITY);
    cr_assert_eq(z->body[0]->nargs, 2);
    cr_assert_str_eq(sexpr(z->body[0]->args[1]->value), "(-> R.a R.b)");
}

Test(parser, project_ensemble_endpoints)
{
    AstFile *f = parse_ok("project R.a[1] -> R.b.X { connect all_to_all weight 1 mV port exc }\n");
    const Decl *d = f->decls[0];
    cr_assert_eq(d->src.nparts, 2);
    cr_assert_str_eq(sexpr(d->index), "1");
    cr_assert_null(d->index2);
    cr_assert_eq(d->dst.nparts, 3);
}

Test(parser, round_trip_examples_and_stdlib)
{
    round_trip_glob("examples/*.engram");
    round_trip_glob("examples/*/*.engram");
    round_trip_glob("stdlib/*.engram");
}

/* ---- golden files ---------------------------------------------------------------------- */

/* tests/diagnostics/NAME.engram, parsed on its own, prints exactly NAME.err
 * (what `engramc check` prints for a file with syntax errors).  The sem_*
 * cases are semantic errors: tests/e2e/diagnostics.sh checks those through
 * the whole pipeline. */
Test(parser, golden_diagnostics)
{
    glob_t g;
    int rc = glob("tests/diagnostics/*.engram", 0, NULL, &g);
    cr_assert_eq(rc, 0, "no golden files: run from the repository root");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *path = g.gl_pathv[i];
        if (strstr(path, "/sem_"))
            continue;
        char err_path[1024];
        snprintf(err_path, sizeof err_path, "%.*s.err", (int)(strlen(path) - 7), path);
        char *want = slurp(err_path);
        DiagCtx d;
        Arena a;
        diag_init(&d);
        arena_init(&a);
        int file = diag_load_file(&d, path, NULL);
        if (file >= 0)
            parse_file(&d, &a, file);
        char *got = flush_to_string(&d);
        cr_expect_str_eq(got, want, "%s", path);
        free(got);
        free(want);
        arena_free(&a);
        diag_free(&d);
    }
    globfree(&g);
}
