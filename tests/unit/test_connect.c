/*
 * test_connect.c - connectivity rules and the synapse CSR.  The rules are
 * checked for their statistics (in-degrees, uniform choice of sources), their
 * exact guarantees (fixed in-degree, no duplicates, autapse rules, sorted
 * lists) and, most importantly, for independence from the order and the
 * partition of the work: lists drawn forwards, backwards or on two "ranks"
 * are the same, and so are the CSRs built from them.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_core.h"

/* ---- helpers ------------------------------------------------------------- */

static EngramConnSpec spec_of(EngramConnRule rule, double p_or_k, uint32_t nsrc, uint32_t ntgt,
                              bool same, bool autapses)
{
    return (EngramConnSpec){.rule = rule, .p_or_k = p_or_k, .seed = 1234567, .stream = 9,
                            .nsrc = nsrc, .ntgt = ntgt, .same_population = same,
                            .autapses = autapses};
}

/* The sources of one target into a fresh vector (the caller frees it). */
static EngramU32Vec sources_of(const EngramConnSpec *s, uint32_t target)
{
    EngramU32Vec v = {0};
    int rc = engram_connect_sources(s->rule, s->p_or_k, s->seed, s->stream, s->nsrc, s->ntgt,
                                    target, s->same_population, s->autapses, &v);
    cr_assert_eq(rc, ENGRAM_CORE_OK, "target %u: rc %d", target, rc);
    return v;
}

static void assert_sorted_distinct(const EngramU32Vec *v, uint32_t nsrc)
{
    for (size_t i = 0; i < v->len; i++) {
        cr_assert_lt(v->data[i], nsrc);
        if (i > 0)
            cr_assert_gt(v->data[i], v->data[i - 1], "not sorted/distinct at %zu", i);
    }
}

static bool contains(const EngramU32Vec *v, uint32_t x)
{
    for (size_t i = 0; i < v->len; i++)
        if (v->data[i] == x)
            return true;
    return false;
}

/* ---- vectors ---------------------------------------------------------------- */

Test(u32vec, push_reserve_free)
{
    EngramU32Vec v = {0};
    for (uint32_t i = 0; i < 1000; i++)
        cr_assert_eq(engram_u32vec_push(&v, i * 3), ENGRAM_CORE_OK);
    cr_assert_eq(v.len, 1000);
    cr_assert_geq(v.cap, 1000);
    for (uint32_t i = 0; i < 1000; i++)
        cr_assert_eq(v.data[i], i * 3);
    cr_assert_eq(engram_u32vec_reserve(&v, SIZE_MAX), ENGRAM_CORE_ENOMEM);
    cr_assert_eq(v.len, 1000, "a failed reserve keeps the contents");
    engram_u32vec_free(&v);
    cr_assert_null(v.data);
    cr_assert_eq(v.len + v.cap, 0);
    cr_assert_eq(engram_u32vec_push(&v, 5), ENGRAM_CORE_OK, "reusable after free");
    engram_u32vec_free(&v);
}

/* ---- random(p) ------------------------------------------------------------------ */

Test(connect, random_in_degree_rate)
{
    uint32_t nsrc = 10000, ntgt = 300;
    double p = 0.05;
    EngramConnSpec s = spec_of(ENGRAM_CONN_RANDOM, p, nsrc, ntgt, false, false);
    double total = 0.0;
    for (uint32_t t = 0; t < ntgt; t++) {
        EngramU32Vec v = sources_of(&s, t);
        assert_sorted_distinct(&v, nsrc);
        total += (double)v.len;
        engram_u32vec_free(&v);
    }
    double mean = p * nsrc * ntgt, sd = sqrt(nsrc * (double)ntgt * p * (1 - p));
    cr_assert(fabs(total - mean) <= 5 * sd, "total %g, want %g +- %g", total, mean, 5 * sd);
}

/* Every source position (first, last, middle) is chosen with probability p:
 * the geometric skipping has no edge effects. */
Test(connect, random_sources_uniform)
{
    enum { NSRC = 16, NTGT = 40000 };
    double p = 0.3;
    long hits[NSRC] = {0};
    EngramConnSpec s = spec_of(ENGRAM_CONN_RANDOM, p, NSRC, NTGT, false, false);
    for (uint32_t t = 0; t < NTGT; t++) {
        EngramU32Vec v = sources_of(&s, t);
        for (size_t i = 0; i < v.len; i++)
            hits[v.data[i]]++;
        engram_u32vec_free(&v);
    }
    double mean = p * NTGT, sd = sqrt(NTGT * p * (1 - p));
    for (int i = 0; i < NSRC; i++)
        cr_assert(fabs(hits[i] - mean) <= 5 * sd, "source %d: %ld, want %g", i, hits[i], mean);
}

Test(connect, random_autapses)
{
    uint32_t n = 50;
    EngramConnSpec no = spec_of(ENGRAM_CONN_RANDOM, 1.0, n, n, true, false);
    EngramConnSpec yes = spec_of(ENGRAM_CONN_RANDOM, 1.0, n, n, true, true);
    EngramConnSpec other = spec_of(ENGRAM_CONN_RANDOM, 1.0, n, n, false, false);
    for (uint32_t t = 0; t < n; t++) {
        EngramU32Vec a = sources_of(&no, t), b = sources_of(&yes, t), c = sources_of(&other, t);
        cr_assert_eq(a.len, n - 1);
        cr_assert_not(contains(&a, t));
        cr_assert_eq(b.len, n);
        cr_assert(contains(&b, t));
        cr_assert_eq(c.len, n, "another population: the same index is not an autapse");
        engram_u32vec_free(&a);
        engram_u32vec_free(&b);
        engram_u32vec_free(&c);
    }
    /* with p < 1, no draw ever lands on the target */
    EngramConnSpec half = spec_of(ENGRAM_CONN_RANDOM, 0.5, n, n, true, false);
    for (uint32_t t = 0; t < n; t++) {
        EngramU32Vec v = sources_of(&half, t);
        cr_assert_not(contains(&v, t));
        engram_u32vec_free(&v);
    }
}

Test(connect, random_bad_p)
{
    EngramU32Vec v = {0};
    engram_u32vec_push(&v, 77);
    const double bad[] = {-0.1, 1.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = engram_connect_sources(ENGRAM_CONN_RANDOM, bad[i], 1, 0, 10, 10, 3, false, false,
                                        &v);
        cr_assert_eq(rc, ENGRAM_CORE_EINVAL);
        cr_assert_eq(v.len, 1, "nothing appended on error");
    }
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_RANDOM, 0.0, 1, 0, 10, 10, 3, false, false, &v),
                 ENGRAM_CORE_OK);
    cr_assert_eq(v.len, 1, "p = 0: no synapses");
    engram_u32vec_free(&v);
}

/* ---- fixed_indegree(k) ------------------------------------------------------------ */

Test(connect, fixed_indegree_exact)
{
    uint32_t nsrc = 1000, ntgt = 200;
    EngramConnSpec s = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 50, nsrc, ntgt, false, false);
    EngramConnSpec same = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 999, nsrc, nsrc, true, false);
    for (uint32_t t = 0; t < ntgt; t++) {
        EngramU32Vec v = sources_of(&s, t), w = sources_of(&same, t);
        cr_assert_eq(v.len, 50);
        assert_sorted_distinct(&v, nsrc);
        cr_assert_eq(w.len, 999, "k = all other neurons");
        assert_sorted_distinct(&w, nsrc);
        cr_assert_not(contains(&w, t));
        engram_u32vec_free(&v);
        engram_u32vec_free(&w);
    }
}

Test(connect, fixed_indegree_caps_and_rounds)
{
    EngramConnSpec big = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 5000, 100, 10, false, false);
    EngramConnSpec big_same = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 5000, 100, 100, true, false);
    EngramConnSpec frac = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 10.4, 100, 10, false, false);
    EngramConnSpec zero = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 0, 100, 10, false, false);
    EngramU32Vec a = sources_of(&big, 3), b = sources_of(&big_same, 3), c = sources_of(&frac, 3),
                 d = sources_of(&zero, 3);
    cr_assert_eq(a.len, 100);
    cr_assert_eq(b.len, 99);
    cr_assert_not(contains(&b, 3));
    cr_assert_eq(c.len, 10);
    cr_assert_eq(d.len, 0);
    engram_u32vec_free(&a);
    engram_u32vec_free(&b);
    engram_u32vec_free(&c);
    engram_u32vec_free(&d);
    EngramU32Vec v = {0};
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_FIXED_INDEGREE, -1, 1, 0, 10, 10, 0, false,
                                        false, &v), ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_FIXED_INDEGREE, NAN, 1, 0, 10, 10, 0, false,
                                        false, &v), ENGRAM_CORE_EINVAL);
    engram_u32vec_free(&v);
}

/* Floyd's sampler picks each source with probability k/m, also around the
 * excluded target (whose index it shifts). */
Test(connect, fixed_indegree_uniform)
{
    enum { NSRC = 12, NTGT = 12, REPEAT = 4000 };
    long hits[NTGT][NSRC] = {{0}};
    for (uint32_t rep = 0; rep < REPEAT; rep++) {
        EngramConnSpec s = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 4, NSRC, NTGT, true, false);
        s.stream = rep; /* independent draws of the same targets */
        for (uint32_t t = 0; t < NTGT; t++) {
            EngramU32Vec v = sources_of(&s, t);
            cr_assert_eq(v.len, 4);
            for (size_t i = 0; i < v.len; i++)
                hits[t][v.data[i]]++;
            engram_u32vec_free(&v);
        }
    }
    double p = 4.0 / (NSRC - 1), mean = p * REPEAT, sd = sqrt(REPEAT * p * (1 - p));
    for (int t = 0; t < NTGT; t++)
        for (int s = 0; s < NSRC; s++) {
            if (s == t)
                cr_assert_eq(hits[t][s], 0);
            else
                cr_assert(fabs(hits[t][s] - mean) <= 5 * sd, "t %d s %d: %ld, want %g", t, s,
                          hits[t][s], mean);
        }
}

/* ---- one_to_one, all_to_all, bad arguments ------------------------------------------ */

Test(connect, one_to_one)
{
    EngramConnSpec other = spec_of(ENGRAM_CONN_ONE_TO_ONE, 0, 20, 20, false, false);
    EngramConnSpec self_no = spec_of(ENGRAM_CONN_ONE_TO_ONE, 0, 20, 20, true, false);
    EngramConnSpec self_yes = spec_of(ENGRAM_CONN_ONE_TO_ONE, 0, 20, 20, true, true);
    for (uint32_t t = 0; t < 20; t++) {
        EngramU32Vec a = sources_of(&other, t), b = sources_of(&self_no, t),
                     c = sources_of(&self_yes, t);
        cr_assert(a.len == 1 && a.data[0] == t);
        cr_assert_eq(b.len, 0, "onto itself without autapses: nothing");
        cr_assert(c.len == 1 && c.data[0] == t);
        engram_u32vec_free(&a);
        engram_u32vec_free(&b);
        engram_u32vec_free(&c);
    }
    EngramU32Vec v = {0};
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_ONE_TO_ONE, 0, 1, 0, 20, 21, 0, false, false,
                                        &v), ENGRAM_CORE_EINVAL);
    engram_u32vec_free(&v);
}

Test(connect, all_to_all)
{
    EngramConnSpec s = spec_of(ENGRAM_CONN_ALL_TO_ALL, 0, 30, 30, true, false);
    EngramConnSpec o = spec_of(ENGRAM_CONN_ALL_TO_ALL, 0, 30, 7, false, false);
    for (uint32_t t = 0; t < 7; t++) {
        EngramU32Vec a = sources_of(&s, t), b = sources_of(&o, t);
        cr_assert_eq(a.len, 29);
        assert_sorted_distinct(&a, 30);
        cr_assert_not(contains(&a, t));
        cr_assert_eq(b.len, 30);
        assert_sorted_distinct(&b, 30);
        engram_u32vec_free(&a);
        engram_u32vec_free(&b);
    }
}

Test(connect, bad_arguments)
{
    EngramU32Vec v = {0};
    /* target out of range */
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_ALL_TO_ALL, 0, 1, 0, 10, 10, 10, false, false,
                                        &v), ENGRAM_CORE_EINVAL);
    /* one population, two sizes */
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_ALL_TO_ALL, 0, 1, 0, 10, 12, 0, true, false,
                                        &v), ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_connect_sources((EngramConnRule)42, 0, 1, 0, 10, 10, 0, false, false, &v),
                 ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_ALL_TO_ALL, 0, 1, 0, 10, 10, 0, false, false,
                                        NULL), ENGRAM_CORE_EINVAL);
    cr_assert_eq(v.len, 0);
    /* empty source population: nothing to connect, not an error */
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_RANDOM, 0.5, 1, 0, 0, 10, 0, false, false, &v),
                 ENGRAM_CORE_OK);
    cr_assert_eq(engram_connect_sources(ENGRAM_CONN_FIXED_INDEGREE, 5, 1, 0, 0, 10, 0, false,
                                        false, &v), ENGRAM_CORE_OK);
    cr_assert_eq(v.len, 0);
    engram_u32vec_free(&v);
}

/* ---- independence from order, partition, stream ------------------------------------- */

static EngramU32Vec *all_lists(const EngramConnSpec *s, bool backward)
{
    EngramU32Vec *lists = calloc(s->ntgt, sizeof *lists);
    cr_assert_not_null(lists);
    for (uint32_t i = 0; i < s->ntgt; i++) {
        uint32_t t = backward ? s->ntgt - 1 - i : i;
        lists[t] = sources_of(s, t);
    }
    return lists;
}

static void free_lists(EngramU32Vec *lists, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        engram_u32vec_free(&lists[i]);
    free(lists);
}

Test(connect, order_independent_lists)
{
    const EngramConnRule rules[] = {ENGRAM_CONN_RANDOM, ENGRAM_CONN_FIXED_INDEGREE};
    const double args[] = {0.1, 25};
    for (int r = 0; r < 2; r++) {
        EngramConnSpec s = spec_of(rules[r], args[r], 500, 500, true, false);
        EngramU32Vec *fwd = all_lists(&s, false), *bwd = all_lists(&s, true);
        for (uint32_t t = 0; t < s.ntgt; t++) {
            cr_assert_eq(fwd[t].len, bwd[t].len);
            cr_assert(memcmp(fwd[t].data, bwd[t].data, fwd[t].len * sizeof(uint32_t)) == 0);
        }
        free_lists(fwd, s.ntgt);
        free_lists(bwd, s.ntgt);
    }
}

Test(connect, streams_and_seeds_differ)
{
    EngramConnSpec a = spec_of(ENGRAM_CONN_RANDOM, 0.2, 1000, 10, false, false);
    EngramConnSpec b = a, c = a;
    b.stream++;
    c.seed++;
    EngramU32Vec va = sources_of(&a, 4), vb = sources_of(&b, 4), vc = sources_of(&c, 4);
    cr_assert(va.len != vb.len || memcmp(va.data, vb.data, va.len * 4) != 0);
    cr_assert(va.len != vc.len || memcmp(va.data, vc.data, va.len * 4) != 0);
    engram_u32vec_free(&va);
    engram_u32vec_free(&vb);
    engram_u32vec_free(&vc);
}

/* ---- counting --------------------------------------------------------------------------- */

Test(connect, count_matches_lists)
{
    const EngramConnRule rules[] = {ENGRAM_CONN_RANDOM, ENGRAM_CONN_FIXED_INDEGREE,
                                    ENGRAM_CONN_ONE_TO_ONE, ENGRAM_CONN_ALL_TO_ALL};
    const double args[] = {0.07, 13, 0, 0};
    for (int r = 0; r < 4; r++) {
        EngramConnSpec s = spec_of(rules[r], args[r], 300, 300, true, r == 2);
        uint64_t listed = 0, counted = 0;
        for (uint32_t t = 0; t < s.ntgt; t++) {
            EngramU32Vec v = sources_of(&s, t);
            listed += v.len;
            engram_u32vec_free(&v);
        }
        cr_assert_eq(engram_connect_count(&s, NULL, 0, &counted), ENGRAM_CORE_OK);
        cr_assert_eq(counted, listed, "rule %d", r);
    }
}

/* Row offsets and counts are 64-bit: a projection may exceed 2^32 synapses. */
Test(connect, counts_beyond_32_bits)
{
    _Static_assert(sizeof(((EngramCsr *)0)->row[0]) == 8, "64-bit row offsets");
    _Static_assert(sizeof(((EngramCsr *)0)->nsyn) == 8, "64-bit synapse count");
    EngramConnSpec all = spec_of(ENGRAM_CONN_ALL_TO_ALL, 0, 100000, 100000, true, false);
    uint64_t n = 0;
    cr_assert_eq(engram_connect_count(&all, NULL, 0, &n), ENGRAM_CORE_OK);
    cr_assert_eq(n, 100000ull * 99999ull);
    EngramConnSpec fixed = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 1e5, 200000, 50000, false, false);
    cr_assert_eq(engram_connect_count(&fixed, NULL, 0, &n), ENGRAM_CORE_OK);
    cr_assert_eq(n, 5000000000ull);
}

/* ---- the CSR -------------------------------------------------------------------------------- */

static void build(const EngramConnSpec *s, const uint32_t *targets, size_t n, EngramCsr *csr)
{
    int rc = engram_csr_build(s->nsrc, s->ntgt, targets, n, engram_connect_spec_sources,
                              (void *)s, ENGRAM_CSR_RANK | ENGRAM_CSR_POST_INDEX, csr);
    cr_assert_eq(rc, ENGRAM_CORE_OK, "csr build: %d", rc);
}

static void assert_csr_equal(const EngramCsr *a, const EngramCsr *b)
{
    cr_assert(a->nsrc == b->nsrc && a->ntgt == b->ntgt && a->nsyn == b->nsyn);
    cr_assert(memcmp(a->row, b->row, (a->nsrc + 1) * sizeof *a->row) == 0);
    cr_assert(memcmp(a->col, b->col, a->nsyn * sizeof *a->col) == 0);
    cr_assert(memcmp(a->syn_target_rank, b->syn_target_rank, a->nsyn * sizeof(uint32_t)) == 0);
    cr_assert(memcmp(a->tgt_row, b->tgt_row, (a->ntgt + 1) * sizeof *a->tgt_row) == 0);
    cr_assert(memcmp(a->tgt_order, b->tgt_order, a->nsyn * sizeof *a->tgt_order) == 0);
}

/* Rows ascending, ranks and the post-side index consistent with the lists. */
static void assert_csr_matches_lists(const EngramCsr *c, const EngramConnSpec *s)
{
    EngramU32Vec *lists = all_lists(s, false);
    cr_assert_eq(c->row[0], 0);
    cr_assert_eq(c->row[c->nsrc], c->nsyn);
    for (uint32_t src = 0; src < c->nsrc; src++) {
        for (uint64_t i = c->row[src]; i < c->row[src + 1]; i++) {
            uint32_t t = c->col[i], k = c->syn_target_rank[i];
            if (i > c->row[src])
                cr_assert_gt(t, c->col[i - 1], "row %u not ascending", src);
            cr_assert(k < lists[t].len && lists[t].data[k] == src, "rank of synapse %lu",
                      (unsigned long)i);
            cr_assert_eq(c->tgt_order[c->tgt_row[t] + k], i);
        }
    }
    for (uint32_t t = 0; t < c->ntgt; t++)
        cr_assert_eq(c->tgt_row[t + 1] - c->tgt_row[t], lists[t].len);
    free_lists(lists, s->ntgt);
}

Test(csr, build_forward_backward_identical)
{
    EngramConnSpec s = spec_of(ENGRAM_CONN_RANDOM, 0.08, 700, 500, false, false);
    uint32_t *back = malloc(s.ntgt * sizeof *back);
    cr_assert_not_null(back);
    for (uint32_t i = 0; i < s.ntgt; i++)
        back[i] = s.ntgt - 1 - i;
    EngramCsr fwd, bwd;
    build(&s, NULL, 0, &fwd);
    build(&s, back, s.ntgt, &bwd);
    assert_csr_equal(&fwd, &bwd);
    assert_csr_matches_lists(&fwd, &s);
    engram_csr_free(&fwd);
    engram_csr_free(&bwd);
    free(back);
    cr_assert_null(fwd.row);
}

Test(csr, fixed_indegree_same_population)
{
    EngramConnSpec s = spec_of(ENGRAM_CONN_FIXED_INDEGREE, 40, 400, 400, true, false);
    EngramCsr c;
    build(&s, NULL, 0, &c);
    cr_assert_eq(c.nsyn, 400u * 40u);
    assert_csr_matches_lists(&c, &s);
    for (uint32_t src = 0; src < c.nsrc; src++)
        for (uint64_t i = c.row[src]; i < c.row[src + 1]; i++)
            cr_assert_neq(c.col[i], src, "autapse");
    engram_csr_free(&c);
}

/* Two "ranks" build from the even and the odd targets; together they hold
 * exactly the synapses of the whole network, with the same ranks, so the
 * weights drawn from (target, rank) are the same too. */
Test(csr, partition_independent)
{
    EngramConnSpec s = spec_of(ENGRAM_CONN_RANDOM, 0.1, 300, 301, false, false);
    uint32_t even[151], odd[150];
    for (uint32_t t = 0; t < s.ntgt; t++) {
        if (t % 2)
            odd[t / 2] = t;
        else
            even[t / 2] = t;
    }
    EngramCsr whole, a, b;
    build(&s, NULL, 0, &whole);
    build(&s, odd, 150, &a);
    build(&s, even, 151, &b);
    cr_assert_eq(a.nsyn + b.nsyn, whole.nsyn);
    for (uint32_t src = 0; src < s.nsrc; src++) {
        uint64_t ia = a.row[src], ib = b.row[src];
        for (uint64_t i = whole.row[src]; i < whole.row[src + 1]; i++) {
            const EngramCsr *part = whole.col[i] % 2 ? &a : &b;
            uint64_t *j = whole.col[i] % 2 ? &ia : &ib;
            cr_assert_eq(part->col[*j], whole.col[i]);
            cr_assert_eq(part->syn_target_rank[*j], whole.syn_target_rank[i]);
            (*j)++;
        }
        cr_assert(ia == a.row[src + 1] && ib == b.row[src + 1]);
    }
    engram_csr_free(&whole);
    engram_csr_free(&a);
    engram_csr_free(&b);
}

Test(csr, optional_arrays_and_empty)
{
    EngramConnSpec s = spec_of(ENGRAM_CONN_ALL_TO_ALL, 0, 5, 4, false, false);
    EngramCsr c;
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, engram_connect_spec_sources, &s, 0, &c),
                 ENGRAM_CORE_OK);
    cr_assert_null(c.syn_target_rank);
    cr_assert_null(c.tgt_row);
    cr_assert_null(c.tgt_order);
    cr_assert_eq(c.nsyn, 20);
    for (uint32_t src = 0; src < 5; src++)
        for (uint32_t t = 0; t < 4; t++)
            cr_assert_eq(c.col[c.row[src] + t], t);
    engram_csr_free(&c);
    uint32_t none[1];
    cr_assert_eq(engram_csr_build(5, 4, none, 0, engram_connect_spec_sources, &s,
                                  ENGRAM_CSR_RANK, &c), ENGRAM_CORE_OK);
    cr_assert_eq(c.nsyn, 0);
    cr_assert_eq(c.row[5], 0);
    engram_csr_free(&c);
}

/* Generators that break the contract, to check the builder refuses them. */
static int gen_unsorted(void *ctx, uint32_t target, EngramU32Vec *out)
{
    (void)ctx;
    (void)target;
    engram_u32vec_push(out, 2);
    return engram_u32vec_push(out, 1);
}

static int gen_out_of_range(void *ctx, uint32_t target, EngramU32Vec *out)
{
    (void)ctx;
    (void)target;
    return engram_u32vec_push(out, 99);
}

static int gen_changing(void *ctx, uint32_t target, EngramU32Vec *out)
{
    int *calls = ctx;
    (void)target;
    return engram_u32vec_push(out, (uint32_t)(++*calls % 3));
}

static int gen_failing(void *ctx, uint32_t target, EngramU32Vec *out)
{
    (void)ctx;
    (void)out;
    return target == 2 ? ENGRAM_CORE_ENOMEM : ENGRAM_CORE_OK;
}

Test(csr, refuses_bad_input)
{
    EngramCsr c;
    int calls = 0;
    unsigned all = ENGRAM_CSR_RANK | ENGRAM_CSR_POST_INDEX;
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, gen_unsorted, NULL, all, &c), ENGRAM_CORE_EINVAL);
    cr_assert_null(c.row, "zeroed on error");
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, gen_out_of_range, NULL, all, &c),
                 ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, gen_changing, &calls, all, &c),
                 ENGRAM_CORE_EINVAL);
    calls = 0;
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, gen_changing, &calls, 0, &c), ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, gen_failing, NULL, all, &c), ENGRAM_CORE_ENOMEM);
    EngramConnSpec s = spec_of(ENGRAM_CONN_ALL_TO_ALL, 0, 5, 4, false, false);
    const uint32_t dup[3] = {0, 2, 2}, range[2] = {1, 4};
    cr_assert_eq(engram_csr_build(5, 4, dup, 3, engram_connect_spec_sources, &s, all, &c),
                 ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_csr_build(5, 4, range, 2, engram_connect_spec_sources, &s, all, &c),
                 ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, NULL, NULL, all, &c), ENGRAM_CORE_EINVAL);
    cr_assert_eq(engram_csr_build(5, 4, NULL, 0, gen_unsorted, NULL, all, NULL),
                 ENGRAM_CORE_EINVAL);
}
