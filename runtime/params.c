/*
 * params.c - resolves the parameter table of a run.
 *
 * The table is in dependency order (a default reads only parameters before
 * it), so one forward pass does it: each parameter takes its --set value if
 * it has one, else its default evaluated over the values so far.  Then every
 * value is checked against its flags, which catches both a bad --set and a
 * derived value that went wrong ("V1.exc.size = -5" from "--set N=-5").
 *
 * Exit codes: a malformed or mistyped override is a bad command line
 * (ENGRAM_EXIT_USAGE); a derived value out of range is ENGRAM_EXIT_MODEL.
 *
 * Order: lookup and suggestions, dimension names, parsing one override,
 * flag checks, resolution.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

/* ---- lookup and suggestions -------------------------------------------------- */

int engram_param_find(const EngramModel *m, const char *name, size_t len)
{
    for (uint32_t i = 0; i < m->hdr->nparams; i++) {
        const char *p = engram_model_str(m, m->params[i].name);
        if (strlen(p) == len && memcmp(p, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Levenshtein distance, capped: strings longer than 63 compare by prefix. */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[64];
    if (na > 63)
        na = 63;
    if (nb > 63)
        nb = 63;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The closest path within a third of the name's length, or the one path
 * whose last components equal the name ("tau_m" -> "V1.exc.tau_m"). */
const char *engram_param_suggest(const EngramModel *m, const char *name, size_t len)
{
    const char *best = NULL, *suffix = NULL;
    size_t best_d = len / 3 > 2 ? len / 3 : 2;
    int nsuffix = 0;
    for (uint32_t i = 0; i < m->hdr->nparams; i++) {
        const char *p = engram_model_str(m, m->params[i].name);
        size_t np = strlen(p);
        size_t d = edit_distance(name, len, p, np);
        if (d <= best_d && (!best || d < best_d)) {
            best = p;
            best_d = d;
        }
        if (np > len && p[np - len - 1] == '.' && memcmp(p + np - len, name, len) == 0) {
            suffix = p;
            nsuffix++;
        }
    }
    if (best)
        return best;
    return nsuffix == 1 ? suffix : NULL;
}

/* ---- dimension names ------------------------------------------------------------- */

const char *engram_dim_describe(EngramDim d, char *buf, size_t n)
{
    static const struct { int8_t t, v, c; const char *what; } known[] = {
        {1, 0, 0, "a time"},          {0, 1, 0, "a voltage"},
        {0, 0, 1, "a current"},       {0, -1, 1, "a conductance"},
        {1, -1, 1, "a capacitance"},  {-1, 0, 0, "a frequency"},
        {0, 1, -1, "a resistance"},   {1, 0, 1, "a charge"},
    };
    if (engram_dim_is_none(d)) {
        snprintf(buf, n, "a dimensionless number");
        return buf;
    }
    char unit[64];
    engram_dim_name(d, unit, sizeof unit);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (d.time == known[i].t && d.voltage == known[i].v && d.current == known[i].c) {
            snprintf(buf, n, "%s (%s)", known[i].what, unit);
            return buf;
        }
    snprintf(buf, n, "a quantity in %s", unit);
    return buf;
}

static EngramDim param_dim(const EngramParamDesc *p)
{
    return engram_dim(p->dim_time, p->dim_voltage, p->dim_current);
}

/* ---- one override ------------------------------------------------------------------ */

/* Parses ov's value for parameter i into *value (internal units). */
static int parse_override(const EngramModel *m, uint32_t i, const EngramOverride *ov,
                          double *value, EngramError *err)
{
    const EngramParamDesc *p = &m->params[i];
    const char *name = engram_model_str(m, p->name);
    if (p->flags & ENGRAM_PARAM_LIST)
        return engram_fail(err, ENGRAM_EXIT_USAGE,
                           "%s: %s is a list, which cannot be set from the command line",
                           ov->flag, name);
    double v;
    EngramDim dim;
    bool has_unit;
    const char *why = NULL;
    if (!engram_parse_quantity(ov->value, &v, &dim, &has_unit, &why)) {
        const char *u = ov->value;
        while (*u && (*u == ' ' || *u == '+' || *u == '-' || *u == '.' || *u == 'e' ||
                      *u == 'E' || (*u >= '0' && *u <= '9')))
            u++;
        const char *hint = *u ? engram_unit_suggest(u, strlen(u)) : NULL;
        if (hint && strcmp(why, "unknown unit") == 0)
            return engram_fail(err, ENGRAM_EXIT_USAGE, "%s: unknown unit '%s'; did you mean '%s'?",
                               ov->flag, u, hint);
        return engram_fail(err, ENGRAM_EXIT_USAGE, "%s: %s", ov->flag, why ? why : "bad value");
    }
    EngramDim want = param_dim(p);
    if (!engram_dim_eq(dim, want)) {
        char a[96], b[96];
        return engram_fail(err, ENGRAM_EXIT_USAGE, "%s: expected %s, got %s", ov->flag,
                           engram_dim_describe(want, a, sizeof a),
                           engram_dim_describe(dim, b, sizeof b));
    }
    if ((p->flags & (ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE)) && v != floor(v))
        return engram_fail(err, ENGRAM_EXIT_USAGE, "%s: %s must be a whole number", ov->flag,
                           name);
    *value = v;
    (void)has_unit;
    return 0;
}

/* ---- flag checks --------------------------------------------------------------------- */

/* NULL if v satisfies the flags (and the simulation settings' own rules). */
static const char *flag_violation(const EngramModel *m, uint32_t i, double v)
{
    uint32_t f = m->params[i].flags;
    if (!isfinite(v))
        return "must be a finite number";
    if ((f & ENGRAM_PARAM_PROB) && (v < 0 || v > 1))
        return "must be a probability in [0, 1]";
    if ((f & ENGRAM_PARAM_POSITIVE) && !(v > 0))
        return "must be > 0";
    if ((f & (ENGRAM_PARAM_NONNEG | ENGRAM_PARAM_SIZE)) && v < 0)
        return "must be >= 0";
    if ((f & ENGRAM_PARAM_SIZE) && v > 4294967294.0)
        return "is too large for a population size";
    if (i == m->hdr->dt_param && !(v > 0))
        return "must be > 0";
    if (i == m->hdr->duration_param && v < 0)
        return "must be >= 0";
    if (i == m->hdr->seed_param && (v < 0 || v > 9007199254740992.0 || v != floor(v)))
        return "must be a whole number in [0, 2^53]";
    return NULL;
}

/* ---- resolution ------------------------------------------------------------------------ */

int engram_params_resolve(const EngramModel *m, const EngramOverride *ov, size_t nov,
                          double *values, EngramError *err)
{
    uint32_t n = m->hdr->nparams;
    int32_t *from = malloc((n ? n : 1) * sizeof *from);   /* override setting each param */
    if (!from)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        from[i] = -1;
    int rc = 0;
    for (size_t k = 0; k < nov && rc == 0; k++) {
        int i = engram_param_find(m, ov[k].name, ov[k].name_len);
        if (i < 0) {
            const char *s = engram_param_suggest(m, ov[k].name, ov[k].name_len);
            if (s)
                rc = engram_fail(err, ENGRAM_EXIT_USAGE,
                                 "%s: unknown parameter '%.*s'; did you mean '%s'?", ov[k].flag,
                                 (int)ov[k].name_len, ov[k].name, s);
            else
                rc = engram_fail(err, ENGRAM_EXIT_USAGE, "%s: unknown parameter '%.*s'",
                                 ov[k].flag, (int)ov[k].name_len, ov[k].name);
        } else {
            from[i] = (int32_t)k;   /* the last one wins */
        }
    }
    EngramEvalCtx ctx;
    engram_eval_ctx_init(&ctx, values, NAN);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const EngramParamDesc *p = &m->params[i];
        const char *name = engram_model_str(m, p->name);
        if (p->flags & ENGRAM_PARAM_LIST) {
            if (from[i] >= 0)
                rc = parse_override(m, i, &ov[from[i]], &values[i], err);
            values[i] = (double)p->list_count;
            continue;
        }
        double v;
        if (from[i] >= 0) {
            rc = parse_override(m, i, &ov[from[i]], &v, err);
            if (rc)
                break;
        } else {
            v = engram_eval(m->insns, p->value, &ctx);
            if ((p->flags & (ENGRAM_PARAM_INTEGER | ENGRAM_PARAM_SIZE)) && isfinite(v))
                v = round(v);
        }
        const char *bad = flag_violation(m, i, v);
        if (bad && from[i] >= 0)
            rc = engram_fail(err, ENGRAM_EXIT_USAGE, "%s: %s %s", ov[from[i]].flag, name, bad);
        else if (bad)
            rc = engram_fail(err, ENGRAM_EXIT_MODEL,
                             "parameter %s = %g %s (its default is computed from other "
                             "parameters; check the --set values)",
                             name, v, bad);
        values[i] = v;
        if (i == m->hdr->dt_param)
            ctx.dt = v;
    }
    free(from);
    return rc;
}
