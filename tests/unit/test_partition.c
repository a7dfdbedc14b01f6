/*
 * test_partition.c - the partitioning behind threads and MPI ranks
 * (docs/scaling.md): blocks of a population tile it in order for any number
 * of partitions; rank blocks are unions of their threads' blocks; the CSRs
 * built by partitions over their own targets, laid out row by row in
 * partition order, are the global CSR (so delivery sums run over ascending
 * sources and weights come out in global order); and the one-rank
 * communication layer is a copy.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

Test(partition, blocks_tile_in_order)
{
    uint32_t sizes[] = {0, 1, 2, 3, 7, 100, 1001, 4000000000u};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (uint32_t P = 1; P <= 9; P++) {
            uint32_t n = sizes[k];
            cr_assert_eq(engram_block(n, 0, P), 0);
            cr_assert_eq(engram_block(n, P, P), n);
            for (uint32_t b = 0; b < P; b++) {
                uint32_t lo = engram_block(n, b, P), hi = engram_block(n, b + 1, P);
                cr_assert(lo <= hi);
                cr_assert(hi - lo <= n / P + 1, "blocks are balanced");
            }
        }
}

Test(partition, rank_blocks_are_unions_of_thread_blocks)
{
    for (uint32_t R = 1; R <= 4; R++)
        for (uint32_t T = 1; T <= 4; T++)
            for (uint32_t r = 0; r < R; r++) {
                uint32_t n = 12345, P = R * T;
                uint32_t lo = engram_block(n, (uint64_t)r * T, P);
                uint32_t hi = engram_block(n, (uint64_t)(r + 1) * T, P);
                cr_assert_eq(engram_block(n, (uint64_t)r * T, P), lo);
                cr_assert(hi >= lo);
                /* thread t of rank r is partition r * T + t, inside the rank block */
                for (uint32_t t = 0; t < T; t++) {
                    uint32_t a = engram_block(n, (uint64_t)r * T + t, P);
                    uint32_t b = engram_block(n, (uint64_t)r * T + t + 1, P);
                    cr_assert(a >= lo && b <= hi && a <= b);
                }
            }
}

/* CSRs of partitions over their own targets, concatenated row by row in
 * partition order, equal the CSR of one process (targets, ranks). */
static void check_partitioned_csr(EngramConnRule rule, double p_or_k, uint32_t nsrc, uint32_t ntgt,
                                  bool same, uint32_t P)
{
    EngramConnSpec spec = {.rule = rule, .p_or_k = p_or_k, .seed = 42, .stream = 7, .nsrc = nsrc,
                           .ntgt = ntgt, .same_population = same};
    EngramCsr whole;
    cr_assert_eq(engram_csr_build(nsrc, ntgt, NULL, ntgt, engram_connect_spec_sources, &spec,
                                  ENGRAM_CSR_RANK, &whole), 0);
    EngramCsr *part = calloc(P, sizeof *part);
    uint32_t *targets = malloc((ntgt + 1) * sizeof *targets);
    for (uint32_t b = 0; b < P; b++) {
        uint32_t lo = engram_block(ntgt, b, P), hi = engram_block(ntgt, b + 1, P);
        for (uint32_t t = lo; t < hi; t++)
            targets[t - lo] = t;
        cr_assert_eq(engram_csr_build(nsrc, ntgt, targets, hi - lo, engram_connect_spec_sources,
                                      &spec, ENGRAM_CSR_RANK, &part[b]), 0);
    }
    uint64_t o = 0, total = 0;
    for (uint32_t b = 0; b < P; b++)
        total += part[b].nsyn;
    cr_assert_eq(total, whole.nsyn);
    for (uint32_t s = 0; s < nsrc; s++)
        for (uint32_t b = 0; b < P; b++)
            for (uint64_t k = part[b].row[s]; k < part[b].row[s + 1]; k++, o++) {
                cr_assert_eq(part[b].col[k], whole.col[o], "source %u, partition %u", s, b);
                cr_assert_eq(part[b].syn_target_rank[k], whole.syn_target_rank[o]);
                if (k > part[b].row[s])
                    cr_assert(part[b].col[k] > part[b].col[k - 1], "targets ascend in a row");
            }
    cr_assert_eq(o, whole.nsyn);
    for (uint32_t b = 0; b < P; b++)
        engram_csr_free(&part[b]);
    engram_csr_free(&whole);
    free(part);
    free(targets);
}

Test(partition, csr_of_partitions_is_the_global_csr)
{
    for (uint32_t P = 1; P <= 6; P++) {
        check_partitioned_csr(ENGRAM_CONN_RANDOM, 0.1, 300, 250, false, P);
        check_partitioned_csr(ENGRAM_CONN_RANDOM, 0.2, 200, 200, true, P);
        check_partitioned_csr(ENGRAM_CONN_FIXED_INDEGREE, 15, 100, 333, false, P);
        check_partitioned_csr(ENGRAM_CONN_ALL_TO_ALL, 0, 17, 23, false, P);
        check_partitioned_csr(ENGRAM_CONN_ONE_TO_ONE, 0, 50, 50, false, P);
    }
}

Test(partition, one_rank_communication_is_a_copy)
{
    uint32_t rank = 9, nranks = 9;
    EngramError err = {0};
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    cr_assert_eq(engram_comm_init(NULL, NULL, &rank, &nranks, &err), 0);
    cr_assert_eq(rank, 0);
    cr_assert_eq(nranks, 1);
    cr_assert(!engram_comm_is_mpi());
    uint32_t a[3] = {1, 2, 3}, b[3] = {0};
    size_t counts[1] = {sizeof a};
    engram_comm_allgatherv(a, sizeof a, b, counts);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    uint64_t x[2] = {5, 6}, y[2] = {7, 7};
    engram_comm_exscan_u64_sum(x, y, 2);
    cr_assert_eq(y[0], 0);
    cr_assert_eq(y[1], 0);
    engram_comm_allreduce_u64_sum(x, 2);
    cr_assert_eq(x[0], 5);
    cr_assert_eq(engram_comm_agree(3, 0, &err), 3);
    cr_assert_eq(engram_comm_agree(0, 0, &err), 0);
}

Test(partition, refuses_mpirun_without_mpi)
{
    uint32_t rank, nranks;
    EngramError err = {0};
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    int rc = engram_comm_init(NULL, NULL, &rank, &nranks, &err);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    cr_assert_eq(rc, ENGRAM_EXIT_USAGE);
    cr_assert(strstr(err.msg, "built without MPI") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "--mpi") != NULL);
}
