/*
 * comm_mpi.c - communication of the runtime over MPI_COMM_WORLD
 * (libengram_rt_mpi.a, built when ENGRAM_MPI is on); the same functions as
 * runtime/comm.c.  Byte counts travel as MPI_BYTE with int counts; a single
 * message over 2 GiB aborts all ranks with a clear message (spike lists and
 * per-rank payloads are far below that at the sizes we run; see
 * docs/scaling.md).
 *
 * Errors are agreed (engram_comm_agree): MPI_Allreduce(MIN) of the failing
 * rank, then the message is broadcast from it, so every rank returns the same
 * code and rank 0 prints it once.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "rt_engine.h"

static int to_int(size_t bytes)
{
    if (bytes > INT_MAX) {
        fprintf(stderr, "engram: error: an MPI message of %zu bytes is over 2 GiB; use more "
                        "ranks\n", bytes);
        MPI_Abort(MPI_COMM_WORLD, ENGRAM_EXIT_RESOURCE);
    }
    return (int)bytes;
}

int engram_comm_init(int *argc, char ***argv, uint32_t *rank, uint32_t *nranks,
                     EngramError *err)
{
    int inited = 0, r = 0, n = 1;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    *rank = (uint32_t)r;
    *nranks = (uint32_t)n;
    return 0;
}

void engram_comm_finalize(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}

bool engram_comm_is_mpi(void)
{
    return true;
}

static int nranks(void)
{
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

static int my_rank(void)
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

void engram_comm_allgather(const void *send, size_t bytes, void *recv)
{
    MPI_Allgather(send, to_int(bytes), MPI_BYTE, recv, to_int(bytes), MPI_BYTE, MPI_COMM_WORLD);
}

/* counts/displacements as ints (recv NULL: nothing to receive). */
static int *int_counts(const size_t *counts, int **displ)
{
    int n = nranks();
    int *c = malloc((size_t)(n + 1) * sizeof *c);
    *displ = malloc((size_t)(n + 1) * sizeof **displ);
    if (!c || !*displ) {
        fprintf(stderr, "engram: error: out of memory in an MPI exchange\n");
        MPI_Abort(MPI_COMM_WORLD, ENGRAM_EXIT_RESOURCE);
    }
    size_t at = 0;
    for (int r = 0; r < n; r++) {
        c[r] = to_int(counts[r]);
        (*displ)[r] = to_int(at);
        at += counts[r];
    }
    return c;
}

void engram_comm_allgatherv(const void *send, size_t bytes, void *recv, const size_t *counts)
{
    int *displ, *c = int_counts(counts, &displ);
    MPI_Allgatherv(send, to_int(bytes), MPI_BYTE, recv, c, displ, MPI_BYTE, MPI_COMM_WORLD);
    free(c);
    free(displ);
}

void engram_comm_gatherv(const void *send, size_t bytes, void *recv, const size_t *counts)
{
    int *displ = NULL, *c = NULL;
    static char dummy[64];
    if (my_rank() == 0)
        c = int_counts(counts, &displ);
    MPI_Gatherv(send ? send : dummy, to_int(bytes), MPI_BYTE,
                my_rank() == 0 && recv ? recv : dummy, c, displ, MPI_BYTE, 0, MPI_COMM_WORLD);
    free(c);
    free(displ);
}

void engram_comm_bcast(void *buf, size_t bytes, uint32_t root)
{
    MPI_Bcast(buf, to_int(bytes), MPI_BYTE, (int)root, MPI_COMM_WORLD);
}

void engram_comm_allreduce_u64_sum(uint64_t *buf, size_t n)
{
    MPI_Allreduce(MPI_IN_PLACE, buf, to_int(n), MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
}

void engram_comm_exscan_u64_sum(const uint64_t *in, uint64_t *out, size_t n)
{
    MPI_Exscan(in, out, to_int(n), MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (my_rank() == 0)   /* MPI leaves rank 0's result undefined */
        memset(out, 0, n * sizeof *out);
}

int engram_comm_allreduce_int_min(int v)
{
    int out = v;
    MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return out;
}

int engram_comm_agree(int rc, uint32_t rank, EngramError *err)
{
    int who = engram_comm_allreduce_int_min(rc ? (int)rank : INT_MAX);
    if (who == INT_MAX)
        return 0;
    if (rc && (int)rank == who && !err->code)
        err->code = rc;
    engram_comm_bcast(err, sizeof *err, (uint32_t)who);
    return err->code ? err->code : ENGRAM_EXIT_MODEL;
}
