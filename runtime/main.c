/*
 * main.c - main() of a standalone simulator (libengram_rt_main.a): the
 * model's object file defines the blob and the kernel table; this passes
 * them to engram_main, which does everything else.
 */
#include "engram_rt.h"

extern const uint8_t engram_model_blob[];
extern const uint64_t engram_model_blob_size;
extern const EngramKernelFn engram_model_kernels[];

int main(int argc, char **argv)
{
    EngramProgram prog = {
        .blob = engram_model_blob,
        .blob_size = engram_model_blob_size,
        .kernels = engram_model_kernels,
    };
    return engram_main(&prog, argc, argv);
}
