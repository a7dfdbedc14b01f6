/*
 * test_diag.c - the source manager and diagnostic printing: the exact
 * layout (location line, "%5d | " source line, caret and tildes, tabs kept,
 * hints, notes, errors without a location), the max_errors cut-off, file
 * loading checks (missing, directory, too large, NUL bytes) and the
 * suggester.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"

static DiagCtx D;

static void setup(void)
{
    diag_init(&D);
}

static void teardown(void)
{
    diag_free(&D);
}

TestSuite(diag, .init = setup, .fini = teardown);

static char *flushed(void)
{
    static char buf[8192];
    FILE *mem = fmemopen(buf, sizeof buf, "w");
    diag_flush(&D, mem);
    fclose(mem);
    return buf;
}

static SrcSpan span(int file, int l1, int c1, int l2, int c2)
{
    SrcSpan s = {file, l1, c1, l2, c2};
    return s;
}

Test(diag, error_with_caret_and_tildes)
{
    const char *text = "model m\ndv/dt = (v + g) / tau\n";
    int f = diag_add_text(&D, "model.engram", text, strlen(text));
    diag_error(&D, span(f, 2, 10, 2, 14), "cannot add %s and %s", "mV", "nS");
    diag_hint(&D, "convert one side");
    cr_expect_str_eq(flushed(), "model.engram:2:10: error: cannot add mV and nS\n"
                                "    2 | dv/dt = (v + g) / tau\n"
                                "      |          ^~~~~\n"
                                "hint: convert one side\n");
    cr_expect_eq(D.nerrors, 1);
    cr_expect_eq(D.ndiags, 0);
}

Test(diag, tabs_are_kept_in_the_caret_line)
{
    const char *text = "\tparam\tx = 1\n";
    int f = diag_add_text(&D, "t.engram", text, strlen(text));
    diag_error(&D, span(f, 1, 8, 1, 8), "bad");
    cr_expect_str_eq(flushed(), "t.engram:1:8: error: bad\n"
                                "    1 | \tparam\tx = 1\n"
                                "      | \t     \t^\n");
}

Test(diag, span_over_several_lines_underlines_to_end_of_first)
{
    const char *text = "neuron A {\n}\n";
    int f = diag_add_text(&D, "t.engram", text, strlen(text));
    diag_warning(&D, span(f, 1, 8, 2, 1), "unused");
    diag_note(&D, span(f, 2, 1, 2, 1), "here");
    cr_expect_str_eq(flushed(), "t.engram:1:8: warning: unused\n"
                                "    1 | neuron A {\n"
                                "      |        ^~~\n"
                                "t.engram:2:1: note: here\n"
                                "    2 | }\n"
                                "      | ^\n");
    cr_expect_eq(D.nwarnings, 1);
}

Test(diag, last_line_without_newline_and_crlf)
{
    const char *text = "a = 1\r\nb = 2";
    int f = diag_add_text(&D, "t.engram", text, strlen(text));
    diag_error(&D, span(f, 1, 1, 1, 1), "x");
    diag_error(&D, span(f, 2, 5, 2, 5), "y");
    cr_expect_str_eq(flushed(), "t.engram:1:1: error: x\n    1 | a = 1\n      | ^\n"
                                "t.engram:2:5: error: y\n    2 | b = 2\n      |     ^\n");
}

Test(diag, error_without_location)
{
    diag_error_noloc(&D, "unknown option '%s'", "--frob");
    cr_expect_str_eq(flushed(), "engramc: error: unknown option '--frob'\n");
}

Test(diag, stops_after_max_errors)
{
    const char *text = "x\n";
    int f = diag_add_text(&D, "t.engram", text, strlen(text));
    D.max_errors = 2;
    for (int i = 0; i < 5; i++) {
        diag_error(&D, span(f, 1, 1, 1, 1), "e%d", i);
        diag_hint(&D, "h%d", i);
    }
    cr_expect_str_eq(flushed(), "t.engram:1:1: error: e0\n    1 | x\n      | ^\nhint: h0\n"
                                "t.engram:1:1: error: e1\n    1 | x\n      | ^\nhint: h1\n"
                                "engramc: note: too many errors; stopping\n");
    cr_expect_eq(D.nerrors, 5);
}

Test(diag, color_only_when_asked)
{
    diag_error_noloc(&D, "plain");
    cr_expect(strchr(flushed(), '\033') == NULL);
    D.color = true;
    diag_error_noloc(&D, "colored");
    cr_expect(strchr(flushed(), '\033') != NULL);
}

Test(diag, long_lines_are_clipped_around_the_caret)
{
    char text[1200];
    memset(text, 'a', 1000);
    text[1000] = '\0';
    int f = diag_add_text(&D, "t.engram", text, strlen(text));
    diag_error(&D, span(f, 1, 500, 1, 500), "here");
    const char *out = flushed();
    cr_expect(strlen(out) < 500, "%s", out);
    const char *caret_line = strstr(out, "      | ");
    cr_assert_not_null(caret_line);
    /* 3 for "...", then the 60 bytes before the caret */
    cr_expect_eq(strchr(caret_line, '^') - caret_line, 8 + 3 + 60);
}

/* ---- loading ------------------------------------------------------------------ */

static char tmp_path[64];

static const char *tmp_file(const void *data, size_t n)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/engram_diag_XXXXXX");
    int fd = mkstemp(tmp_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
    return tmp_path;
}

Test(diag, load_reads_file_and_indexes_lines)
{
    const char *p = tmp_file("model m\nparam x = 1\n", 20);
    int f = diag_load_file(&D, p, NULL);
    unlink(p);
    cr_assert_geq(f, 0);
    const SourceFile *s = diag_file(&D, f);
    cr_expect_eq(s->size, 20);
    cr_expect_eq(s->nlines, 2);
    cr_expect_eq(s->line_starts[1], 8);
    cr_expect_str_eq(s->path, p);
}

Test(diag, load_missing_file)
{
    cr_expect_eq(diag_load_file(&D, "/nonexistent/x.engram", NULL), -1);
    cr_expect_str_eq(flushed(), "engramc: error: cannot read '/nonexistent/x.engram': No such file or directory\n");
}

Test(diag, load_directory)
{
    cr_expect_eq(diag_load_file(&D, "/tmp", NULL), -1);
    cr_expect_str_eq(flushed(), "engramc: error: cannot read '/tmp': it is a directory\n");
}

Test(diag, load_binary_file)
{
    const char *p = tmp_file("model m\nx\0y\n", 12);
    cr_expect_eq(diag_load_file(&D, p, NULL), -1);
    unlink(p);
    char want[160];
    snprintf(want, sizeof want, "engramc: error: cannot read '%s': binary file (NUL byte at line 2, column 2)\n", p);
    cr_expect_str_eq(flushed(), want);
}

Test(diag, load_error_at_the_requesting_use_line)
{
    const char *text = "use std.foo (A)\n";
    int f = diag_add_text(&D, "m.engram", text, strlen(text));
    SrcSpan from = span(f, 1, 5, 1, 11);
    cr_expect_eq(diag_load_file(&D, "/nonexistent/foo.engram", &from), -1);
    cr_expect_str_eq(flushed(), "m.engram:1:5: error: cannot read '/nonexistent/foo.engram': No such file or directory\n"
                                "    1 | use std.foo (A)\n"
                                "      |     ^~~~~~~\n");
}

/* 100 MB (sparse, so the test is fast): refused from its size alone. */
Test(diag, load_too_large_file_quickly)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/engram_big_XXXXXX");
    int fd = mkstemp(tmp_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 100L << 20), 0);
    close(fd);
    clock_t t0 = clock();
    cr_expect_eq(diag_load_file(&D, tmp_path, NULL), -1);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    unlink(tmp_path);
    cr_expect_lt(secs, 0.5);
    char want[160];
    snprintf(want, sizeof want, "engramc: error: cannot read '%s': file is too large (100 MB; the limit is 64 MB)\n",
             tmp_path);
    cr_expect_str_eq(flushed(), want);
}

/* ---- suggestions ------------------------------------------------------------------ */

Test(diag, suggest_nearest)
{
    const char *const names[] = {"tau_m", "tau_syn", "v_th", "v_reset", "exc", "inh"};
    cr_expect_str_eq(diag_suggest("tau_n", names, 6), "tau_m");
    cr_expect_str_eq(diag_suggest("v_rest", names, 6), "v_reset");
    cr_expect_str_eq(diag_suggest("v_ht", names, 6), "v_th");   /* a swap is one edit */
    cr_expect_str_eq(diag_suggest("ecx", names, 6), "exc");
    cr_expect_null(diag_suggest("xyz", names, 6));
    cr_expect_null(diag_suggest("ab", names, 6));
    cr_expect_null(diag_suggest("threshold", names, 6));
}
