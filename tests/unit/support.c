/*
 * support.c - the helpers of test_support.h: temporary folders for
 * tests that run simulators, and freeing hand-built programs.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_support.h"

void test_tmp_make(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/engram_test_%s_XXXXXX", tag);
    cr_assert(mkdtemp(buf) != NULL);
}

void test_tmp_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
}

void test_prog_free(EngramProgram *prog)
{
    free((void *)prog->blob);
    prog->blob = NULL;
}
