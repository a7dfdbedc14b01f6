/*
 * ensembles.c - where the ensembles of a population lie (docs/language.md
 * section 15), from the resolved parameters: split(n) deals a population of
 * N neurons into n contiguous blocks [k N / n, (k+1) N / n); explicit ranges
 * are inclusive [lo, hi].  Shared by connectivity (ensemble endpoints),
 * stimuli and measures, so every part of the runtime agrees on them.
 */
#include <math.h>

#include "rt_engine.h"

static const char *group_pop(const EngramModel *m, uint32_t g)
{
    return engram_model_str(m, m->pops[m->ens_groups[g].pop].name);
}

int engram_ensemble_count(const EngramModel *m, const double *pv, const uint32_t *sizes, uint32_t g,
                          uint32_t *count, EngramError *err)
{
    const EngramEnsGroupDesc *e = &m->ens_groups[g];
    if (e->kind == ENGRAM_ENS_RANGES) {
        *count = e->nens;
        return 0;
    }
    double n = pv[e->count_param];
    if (!(n >= 1) || n > (double)sizes[e->pop] || n != floor(n))
        return engram_fail(err, ENGRAM_EXIT_MODEL, "%s: %g ensembles do not fit %u neurons "
                           "(split(n) needs 1 <= n <= size)", group_pop(m, g), n, sizes[e->pop]);
    *count = (uint32_t)n;
    return 0;
}

int engram_ensemble_range(const EngramModel *m, const double *pv, const uint32_t *sizes, uint32_t g,
                          uint32_t k, uint32_t *lo, uint32_t *hi, EngramError *err)
{
    const EngramEnsGroupDesc *e = &m->ens_groups[g];
    uint32_t n, size = sizes[e->pop];
    int rc = engram_ensemble_count(m, pv, sizes, g, &n, err);
    if (rc)
        return rc;
    if (k >= n)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "%s has %u ensembles; there is no ensemble %u",
                           group_pop(m, g), n, k);
    if (e->kind == ENGRAM_ENS_SPLIT) {
        *lo = engram_block(size, k, n);
        *hi = engram_block(size, (uint64_t)k + 1, n);
        return 0;
    }
    double a = pv[m->idx[e->first_range + 2 * k]], b = pv[m->idx[e->first_range + 2 * k + 1]];
    if (!(a >= 0 && a <= b && b < (double)size))
        return engram_fail(err, ENGRAM_EXIT_MODEL, "%s: ensemble %u spans %g..%g, outside the "
                           "population's neurons 0..%u", group_pop(m, g), k, a, b, size - 1);
    *lo = (uint32_t)a;
    *hi = (uint32_t)b + 1;
    return 0;
}
