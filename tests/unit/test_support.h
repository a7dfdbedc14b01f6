/*
 * test_support.h - small helpers shared by the unit tests; their code is in
 * support.c, which the build links into every test executable.
 */
#ifndef ENGRAM_TEST_SUPPORT_H
#define ENGRAM_TEST_SUPPORT_H

#include <stddef.h>

#include "engram_rt.h"

/* Creates /tmp/engram_test_TAG_XXXXXX into buf (asserts on failure). */
void test_tmp_make(char *buf, size_t n, const char *tag);
/* Removes the folder and everything in it (asserts on failure). */
void test_tmp_remove(const char *dir);
/* Frees a program whose blob came from engram_blob_finish. */
void test_prog_free(EngramProgram *prog);

#endif
