/*
 * fuzz_front.c - libFuzzer harness for the front end: arbitrary bytes go
 * through parse_file (scanner, parser, error recovery), the diagnostics are
 * printed and the tree, if any, is printed in canonical form.  Any crash,
 * sanitizer report or leak is a bug; syntax errors are the expected outcome.
 *
 * Build (from the repository root, after the generated parser exists in
 * BUILD/gen, e.g. build-front/gen):
 *   clang-19 -std=c17 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Icompiler -Iruntime -IBUILD/gen tests/fuzz/fuzz_front.c BUILD/gen/parser.c \
 *     BUILD/gen/lexer.c compiler/ast.c compiler/diag.c compiler/parse.c runtime/units.c \
 *     -lm -o fuzz_front
 *   ./fuzz_front -max_len=4096 tests/fuzz/corpus
 * Diagnostics go to /dev/null so the fuzzer's output stays readable.
 */
#include <stdint.h>
#include <stdio.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink(void)
{
    static FILE *null_out;
    if (!null_out)
        null_out = fopen("/dev/null", "w");
    return null_out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    DiagCtx d;
    Arena a;
    diag_init(&d);
    arena_init(&a);
    int file = diag_add_text(&d, "fuzz.engram", (const char *)data, size);
    AstFile *f = parse_file(&d, &a, file);
    diag_flush(&d, sink());
    if (f)
        ast_print_file(sink(), f);
    arena_free(&a);
    diag_free(&d);
    return 0;
}
