/*
 * comm.c - communication of the runtime without MPI (libengram_rt.a): one
 * rank, so every collective is a copy.  runtime/mpi/comm_mpi.c implements the
 * same functions over MPI_COMM_WORLD for libengram_rt_mpi.a.
 *
 * A simulator linked without MPI that finds itself started by mpirun with
 * more than one rank refuses: N copies of the whole network would each write
 * the same outputs.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

int engram_comm_init(int *argc, char ***argv, uint32_t *rank, uint32_t *nranks,
                     EngramError *err)
{
    (void)argc;
    (void)argv;
    *rank = 0;
    *nranks = 1;
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size)
        size = getenv("PMI_SIZE");
    if (size && atoi(size) > 1)
        return engram_fail(err, ENGRAM_EXIT_USAGE,
                           "this simulator was built without MPI but was started as one of %d "
                           "ranks (by mpirun); build it with `engramc build --mpi` to run on "
                           "several ranks, or run it without mpirun (use --threads N for the "
                           "cores of one machine)", atoi(size));
    return 0;
}

void engram_comm_finalize(void) {}

bool engram_comm_is_mpi(void)
{
    return false;
}

void engram_comm_allgather(const void *send, size_t bytes, void *recv)
{
    if (bytes && send != recv)
        memmove(recv, send, bytes);
}

void engram_comm_allgatherv(const void *send, size_t bytes, void *recv, const size_t *counts)
{
    (void)counts;
    if (bytes && send != recv)
        memmove(recv, send, bytes);
}

void engram_comm_gatherv(const void *send, size_t bytes, void *recv, const size_t *counts)
{
    (void)counts;
    if (bytes && recv && send != recv)
        memmove(recv, send, bytes);
}

void engram_comm_bcast(void *buf, size_t bytes, uint32_t root)
{
    (void)buf;
    (void)bytes;
    (void)root;
}

void engram_comm_allreduce_u64_sum(uint64_t *buf, size_t n)
{
    (void)buf;
    (void)n;
}

void engram_comm_exscan_u64_sum(const uint64_t *in, uint64_t *out, size_t n)
{
    (void)in;
    memset(out, 0, n * sizeof *out);
}

int engram_comm_allreduce_int_min(int v)
{
    return v;
}

int engram_comm_agree(int rc, uint32_t rank, EngramError *err)
{
    (void)rank;
    (void)err;
    return rc;
}
