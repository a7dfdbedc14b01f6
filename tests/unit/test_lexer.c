/*
 * test_lexer.c - the scanner alone: token kinds, values and spans, the
 * quantity rule (a number and a unit on one line are one token; a number and
 * any other name are two), ODE heads, strings, and lexical errors with their
 * exact messages.
 *
 * Each test scans a string through the real flex scanner with a fresh
 * ParseCtx, the way parse_file does, and compares the token stream.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "parser.h"
#include "lexer.h"

#define MAX_TOKS 64

typedef struct Tok {
    int kind;
    YYSTYPE val;
    SrcSpan loc;
} Tok;

typedef struct Scan {
    DiagCtx d;
    Arena a;
    Tok toks[MAX_TOKS];
    int n;
    char *errors;    /* everything diag_flush printed */
} Scan;

static Scan S;

static void scan_fini(void)
{
    free(S.errors);
    arena_free(&S.a);
    diag_free(&S.d);
}

/* Scans text to the end; S.toks excludes the end-of-file token. */
static void scan(const char *text)
{
    memset(&S, 0, sizeof S);
    diag_init(&S.d);
    arena_init(&S.a);
    int file = diag_add_text(&S.d, "t.engram", text, strlen(text));
    ParseCtx *ctx = arena_alloc(&S.a, sizeof *ctx);
    parse_ctx_init(ctx, &S.d, &S.a, file);
    yyscan_t sc;
    cr_assert_eq(engram_yylex_init_extra(ctx, &sc), 0);
    YY_BUFFER_STATE b = engram_yy_scan_bytes(text, (int)strlen(text), sc);
    for (;;) {
        Tok t;
        memset(&t, 0, sizeof t);
        t.kind = engram_yylex(&t.val, &t.loc, sc);
        if (t.kind == 0)
            break;
        if (S.n < MAX_TOKS)   /* later tokens are scanned but not kept */
            S.toks[S.n++] = t;
    }
    engram_yy_delete_buffer(b, sc);
    engram_yylex_destroy(sc);
    size_t len;
    FILE *mem = open_memstream(&S.errors, &len);
    diag_flush(&S.d, mem);
    fclose(mem);
}

static void expect_kinds(const int *kinds, int n)
{
    cr_assert_eq(S.n, n, "got %d tokens, expected %d", S.n, n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(S.toks[i].kind, kinds[i], "token %d: kind %d, expected %d", i, S.toks[i].kind, kinds[i]);
}

TestSuite(lexer, .fini = scan_fini);

Test(lexer, keywords_and_identifiers)
{
    scan("model neuron LIF param tau_m state v let x threshold reset refractory input method "
         "region population project connect weight delay port autapses drive simulation record "
         "spikes true false and or not builtin use");
    int k[] = {TOK_MODEL, TOK_NEURON, TOK_IDENT, TOK_PARAM, TOK_IDENT, TOK_STATE, TOK_IDENT,
               TOK_LET, TOK_IDENT, TOK_THRESHOLD, TOK_RESET, TOK_REFRACTORY, TOK_INPUT, TOK_METHOD,
               TOK_REGION, TOK_POPULATION, TOK_PROJECT, TOK_CONNECT, TOK_WEIGHT, TOK_DELAY,
               TOK_PORT, TOK_AUTAPSES, TOK_DRIVE, TOK_SIMULATION, TOK_RECORD, TOK_SPIKES,
               TOK_TRUE, TOK_FALSE, TOK_AND, TOK_OR, TOK_NOT, TOK_BUILTIN, TOK_USE};
    expect_kinds(k, (int)(sizeof k / sizeof k[0]));
    cr_expect_str_eq(S.toks[2].val.str, "LIF");
    cr_expect_str_eq(S.toks[4].val.str, "tau_m");
    cr_expect_str_eq(S.errors, "");
}

/* Sections 12-13 reserve a few words; the fixed words of a release and of
 * `record weights` stay identifiers (the parser checks them). */
Test(lexer, plasticity_keywords_and_contextual_words)
{
    scan("plasticity synapse pre post bounds on every modulator release "
         "weights synapses per spike of when fires within after delay");
    int k[] = {TOK_PLASTICITY, TOK_SYNAPSE, TOK_PRE, TOK_POST, TOK_BOUNDS, TOK_ON, TOK_EVERY,
               TOK_MODULATOR, TOK_RELEASE, TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_IDENT,
               TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_DELAY};
    expect_kinds(k, (int)(sizeof k / sizeof k[0]));
    cr_expect_str_eq(S.toks[9].val.str, "weights");
    cr_expect_str_eq(S.toks[17].val.str, "after");
    cr_expect_eq(S.toks[2].loc.first_column, 20);
    cr_expect_eq(S.toks[2].loc.last_column, 22);
    cr_expect_str_eq(S.errors, "");
}

/* pre.v is a keyword, a dot and a name; prefixes of keywords are names. */
Test(lexer, pre_and_post_names)
{
    scan("post.v pre.x_1 prev poster on_pre every_10 0.5 per");
    int k[] = {TOK_POST, '.', TOK_IDENT, TOK_PRE, '.', TOK_IDENT, TOK_IDENT, TOK_IDENT, TOK_IDENT,
               TOK_IDENT, TOK_NUMBER, TOK_IDENT};
    expect_kinds(k, (int)(sizeof k / sizeof k[0]));
    cr_expect_str_eq(S.toks[2].val.str, "v");
    cr_expect_eq(S.toks[2].loc.first_column, 6);
    cr_expect_str_eq(S.toks[6].val.str, "prev");
    cr_expect_str_eq(S.toks[8].val.str, "on_pre");
    cr_expect_eq(S.toks[10].val.num, 0.5);
}

Test(lexer, numbers)
{
    scan("42 0.5 1e-3 2.5E+2 7e5");
    int k[] = {TOK_NUMBER, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER, TOK_NUMBER};
    expect_kinds(k, 5);
    cr_expect_eq(S.toks[0].val.num, 42);
    cr_expect_eq(S.toks[1].val.num, 0.5);
    cr_expect_eq(S.toks[2].val.num, 1e-3);
    cr_expect_eq(S.toks[3].val.num, 250);
    cr_expect_eq(S.toks[4].val.num, 7e5);
}

Test(lexer, quantities)
{
    scan("20 ms 0.5nS 10 Hz -70 mV 1e-3 s 2\tpA");
    int k[] = {TOK_QUANTITY, TOK_QUANTITY, TOK_QUANTITY, '-', TOK_QUANTITY, TOK_QUANTITY, TOK_QUANTITY};
    expect_kinds(k, 7);
    cr_expect_eq(S.toks[0].val.qty.value, 20);
    cr_expect_str_eq(S.toks[0].val.qty.unit, "ms");
    cr_expect_eq(S.toks[0].loc.first_column, 1);
    cr_expect_eq(S.toks[0].loc.last_column, 5);
    cr_expect_eq(S.toks[0].val.qty.unit_span.first_column, 4);
    cr_expect_str_eq(S.toks[1].val.qty.unit, "nS");
    cr_expect_eq(S.toks[1].val.qty.value, 0.5);
    cr_expect_str_eq(S.toks[2].val.qty.unit, "Hz");
    cr_expect_eq(S.toks[4].val.qty.value, 70);
    cr_expect_str_eq(S.toks[5].val.qty.unit, "s");
    cr_expect_eq(S.toks[5].val.qty.value, 1e-3);
    cr_expect_str_eq(S.toks[6].val.qty.unit, "pA");
}

/* A number followed by a name that is not a unit stays a number: the size
 * and model of a population.  A newline also separates them. */
Test(lexer, number_then_model_name)
{
    scan("3200 LIF 20\nms 2ex 5 and");
    int k[] = {TOK_NUMBER, TOK_IDENT, TOK_NUMBER, TOK_IDENT, TOK_NUMBER, TOK_IDENT, TOK_NUMBER, TOK_AND};
    expect_kinds(k, 8);
    cr_expect_eq(S.toks[0].val.num, 3200);
    cr_expect_eq(S.toks[0].loc.last_column, 4);
    cr_expect_str_eq(S.toks[1].val.str, "LIF");
    cr_expect_eq(S.toks[1].loc.first_column, 6);
    cr_expect_str_eq(S.toks[3].val.str, "ms");
    cr_expect_eq(S.toks[3].loc.first_line, 2);
    cr_expect_eq(S.toks[4].val.num, 2);
    cr_expect_str_eq(S.toks[5].val.str, "ex");
    cr_expect_eq(S.toks[5].loc.first_column, 5);
}

Test(lexer, ode_heads)
{
    scan("dv/dt dge_1/dt dv/dtau d/dt");
    int k[] = {TOK_DERIV, TOK_DERIV, TOK_IDENT, '/', TOK_IDENT, TOK_IDENT, '/', TOK_IDENT};
    expect_kinds(k, 8);
    cr_expect_str_eq(S.toks[0].val.str, "v");
    cr_expect_str_eq(S.toks[1].val.str, "ge_1");
    cr_expect_str_eq(S.toks[2].val.str, "dv");
    cr_expect_str_eq(S.toks[4].val.str, "dtau");
    cr_expect_eq(S.toks[4].loc.first_column, 19);
}

Test(lexer, operators_and_punctuation)
{
    scan("-> <= >= == != += -= *= < > + - * / ^ = ( ) { } [ ] , . : ;");
    int k[] = {TOK_ARROW, TOK_LE, TOK_GE, TOK_EQ, TOK_NE, TOK_ADD_ASSIGN, TOK_SUB_ASSIGN,
               TOK_MUL_ASSIGN, '<', '>', '+', '-', '*', '/', '^', '=', '(', ')', '{', '}',
               '[', ']', ',', '.', ':', ';'};
    expect_kinds(k, (int)(sizeof k / sizeof k[0]));
}

Test(lexer, strings_and_comments)
{
    scan("\"doc \\\"quoted\\\" \\\\ end\" # a comment \"not a string\"\nx");
    int k[] = {TOK_STRING, TOK_IDENT};
    expect_kinds(k, 2);
    cr_expect_str_eq(S.toks[0].val.str, "doc \"quoted\" \\ end");
    cr_expect_eq(S.toks[1].loc.first_line, 2);
    cr_expect_str_eq(S.errors, "");
}

Test(lexer, locations_over_lines_and_tabs)
{
    scan("a\n\tbb  ccc\n\n  d");
    cr_assert_eq(S.n, 4);
    cr_expect_eq(S.toks[1].loc.first_line, 2);
    cr_expect_eq(S.toks[1].loc.first_column, 2);
    cr_expect_eq(S.toks[1].loc.last_column, 3);
    cr_expect_eq(S.toks[2].loc.first_column, 6);
    cr_expect_eq(S.toks[3].loc.first_line, 4);
    cr_expect_eq(S.toks[3].loc.first_column, 3);
}

Test(lexer, invalid_characters_are_skipped)
{
    scan("a $ b\n\xC2\xB5s");
    int k[] = {TOK_IDENT, TOK_IDENT, TOK_IDENT};
    expect_kinds(k, 3);
    cr_expect_str_eq(S.errors,
                     "t.engram:1:3: error: invalid character '$'\n"
                     "    1 | a $ b\n"
                     "      |   ^\n"
                     "t.engram:2:1: error: invalid character '\xC2\xB5'\n"
                     "    2 | \xC2\xB5s\n"
                     "      | ^~\n"
                     "hint: write 'u' for micro: us, uV, uS, uA, uF\n");
}

Test(lexer, unterminated_string)
{
    scan("x \"abc\ny");
    int k[] = {TOK_IDENT, TOK_STRING, TOK_IDENT};
    expect_kinds(k, 3);
    cr_expect_str_eq(S.toks[1].val.str, "abc");
    cr_expect_str_eq(S.errors,
                     "t.engram:1:3: error: unterminated string\n"
                     "    1 | x \"abc\n"
                     "      |   ^~~~\n"
                     "hint: a string must end with '\"' on the line where it starts\n");
}

Test(lexer, unknown_escape)
{
    scan("\"a\\nb\"");
    cr_assert_eq(S.n, 1);
    cr_expect_str_eq(S.errors,
                     "t.engram:1:3: error: unknown escape sequence '\\n' in string\n"
                     "    1 | \"a\\nb\"\n"
                     "      |   ^~\n"
                     "hint: only \\\" and \\\\ may be escaped\n");
}

Test(lexer, number_out_of_range)
{
    scan("1e999 2e999 ms 1e-400");
    int k[] = {TOK_NUMBER, TOK_QUANTITY, TOK_NUMBER};
    expect_kinds(k, 3);
    cr_expect_eq(S.toks[0].val.num, 0);
    cr_expect_str_eq(S.errors,
                     "t.engram:1:1: error: number out of range\n"
                     "    1 | 1e999 2e999 ms 1e-400\n"
                     "      | ^~~~~\n"
                     "t.engram:1:7: error: number out of range\n"
                     "    1 | 1e999 2e999 ms 1e-400\n"
                     "      |       ^~~~~\n");
}

Test(lexer, nesting_limit_stops_the_scan)
{
    char text[PARSE_MAX_DEPTH + 8];
    memset(text, '(', PARSE_MAX_DEPTH + 4);
    text[PARSE_MAX_DEPTH + 4] = '\0';
    scan(text);
    /* 64 tokens are kept; the scan itself stops at the 257th '(' */
    cr_expect(strstr(S.errors, "1:257: error: nesting is too deep (the limit is 256 levels)") != NULL,
              "%s", S.errors);
}
