/*
 * blob.c - the model blob: the writer that the compiler (and the runtime
 * tests) use to lay out the tables of engram_rt.h, the validator that the
 * simulator runs before it trusts a single offset, and the typed view over a
 * validated blob.
 *
 * Layout written: the EngramModelDesc at offset 0, then the sections in the
 * order params, pops, states, ports, lin_vars, coefs, projs, drives, insns,
 * list, vars, modulators, releases, weight_recs, idx, ens_groups, sequences,
 * stimuli, measures, stmts, protocols, strings, each 8-aligned, with zero
 * padding so that equal models give equal bytes.  String offset 0 is always the empty string.
 *
 * Order: errors, the growable tables, the writer, validation, the view.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_engine.h"

/* ---- errors ------------------------------------------------------------- */

int engram_fail(EngramError *e, int code, const char *fmt, ...)
{
    if (e && e->code == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

/* ---- growable tables ----------------------------------------------------- */

typedef struct Table {
    uint8_t *data;
    size_t len, cap;  /* in rows */
    size_t row;       /* bytes per row */
    bool oom;
} Table;

/* Appends one row; returns its index, or ENGRAM_NONE when out of memory
 * (the writer then remembers the failure and finish returns NULL). */
static uint32_t table_push(Table *t, const void *row)
{
    if (t->oom || t->len >= UINT32_MAX - 1) {
        t->oom = true;
        return ENGRAM_NONE;
    }
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        uint8_t *d = realloc(t->data, cap * t->row);
        if (!d) {
            t->oom = true;
            return ENGRAM_NONE;
        }
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len * t->row, row, t->row);
    return (uint32_t)t->len++;
}

enum { T_PARAM, T_POP, T_STATE, T_PORT, T_LINVAR, T_COEF, T_PROJ, T_DRIVE, T_INSN, T_LIST,
       T_VAR, T_MOD, T_REL, T_WREC, T_IDX, T_ENS, T_SEQ, T_STIM, T_MEAS, T_STMT, T_PROTO,
       T_COUNT };

static const size_t row_sizes[T_COUNT] = {
    sizeof(EngramParamDesc), sizeof(EngramPopDesc), sizeof(EngramStateDesc),
    sizeof(EngramPortDesc), sizeof(uint32_t), sizeof(EngramCode), sizeof(EngramProjDesc),
    sizeof(EngramDriveDesc), sizeof(EngramInsn), sizeof(double), sizeof(EngramVarDesc),
    sizeof(EngramModulatorDesc), sizeof(EngramReleaseDesc), sizeof(EngramWeightRecDesc),
    sizeof(uint32_t), sizeof(EngramEnsGroupDesc), sizeof(EngramSequenceDesc),
    sizeof(EngramStimulusDesc), sizeof(EngramMeasureDesc), sizeof(EngramStmtDesc),
    sizeof(EngramProtocolDesc),
};

/* ---- the writer ------------------------------------------------------------ */

struct EngramBlobWriter {
    Table t[T_COUNT];
    char *strings;            /* the string section: NUL-terminated strings */
    size_t slen, scap;
    uint32_t *hash;           /* open addressing: string offset + 1, 0 = empty */
    size_t hcap, hlen;
    bool oom;
};

EngramBlobWriter *engram_blob_writer_new(void)
{
    EngramBlobWriter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    for (int i = 0; i < T_COUNT; i++)
        w->t[i].row = row_sizes[i];
    engram_blob_string(w, "");   /* offset 0 is "" */
    return w;
}

void engram_blob_writer_free(EngramBlobWriter *w)
{
    if (!w)
        return;
    for (int i = 0; i < T_COUNT; i++)
        free(w->t[i].data);
    free(w->strings);
    free(w->hash);
    free(w);
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static bool hash_grow(EngramBlobWriter *w)
{
    size_t cap = w->hcap ? w->hcap * 2 : 64;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h)
        return false;
    for (size_t i = 0; i < w->hcap; i++) {
        if (!w->hash[i])
            continue;
        size_t j = str_hash(w->strings + w->hash[i] - 1) & (cap - 1);
        while (h[j])
            j = (j + 1) & (cap - 1);
        h[j] = w->hash[i];
    }
    free(w->hash);
    w->hash = h;
    w->hcap = cap;
    return true;
}

uint32_t engram_blob_string(EngramBlobWriter *w, const char *s)
{
    if (!s)
        s = "";
    if (w->oom)
        return 0;
    if ((w->hlen + 1) * 2 > w->hcap && !hash_grow(w)) {
        w->oom = true;
        return 0;
    }
    size_t j = str_hash(s) & (w->hcap - 1);
    for (; w->hash[j]; j = (j + 1) & (w->hcap - 1))
        if (strcmp(w->strings + w->hash[j] - 1, s) == 0)
            return w->hash[j] - 1;
    size_t n = strlen(s) + 1;
    if (w->slen + n >= UINT32_MAX - 1) {
        w->oom = true;
        return 0;
    }
    if (w->slen + n > w->scap) {
        size_t cap = w->scap ? w->scap * 2 : 256;
        while (cap < w->slen + n)
            cap *= 2;
        char *d = realloc(w->strings, cap);
        if (!d) {
            w->oom = true;
            return 0;
        }
        w->strings = d;
        w->scap = cap;
    }
    uint32_t off = (uint32_t)w->slen;
    memcpy(w->strings + off, s, n);
    w->slen += n;
    w->hash[j] = off + 1;
    w->hlen++;
    return off;
}

uint32_t engram_blob_insn(EngramBlobWriter *w, EngramInsn insn) { return table_push(&w->t[T_INSN], &insn); }
uint32_t engram_blob_insn_count(const EngramBlobWriter *w) { return (uint32_t)w->t[T_INSN].len; }
uint32_t engram_blob_param(EngramBlobWriter *w, const EngramParamDesc *p) { return table_push(&w->t[T_PARAM], p); }
uint32_t engram_blob_list_value(EngramBlobWriter *w, double v) { return table_push(&w->t[T_LIST], &v); }
uint32_t engram_blob_pop(EngramBlobWriter *w, const EngramPopDesc *p) { return table_push(&w->t[T_POP], p); }
uint32_t engram_blob_state(EngramBlobWriter *w, const EngramStateDesc *s) { return table_push(&w->t[T_STATE], s); }
uint32_t engram_blob_port(EngramBlobWriter *w, const EngramPortDesc *p) { return table_push(&w->t[T_PORT], p); }
uint32_t engram_blob_lin_var(EngramBlobWriter *w, uint32_t s) { return table_push(&w->t[T_LINVAR], &s); }
uint32_t engram_blob_coef(EngramBlobWriter *w, EngramCode code) { return table_push(&w->t[T_COEF], &code); }
uint32_t engram_blob_proj(EngramBlobWriter *w, const EngramProjDesc *p) { return table_push(&w->t[T_PROJ], p); }
uint32_t engram_blob_drive(EngramBlobWriter *w, const EngramDriveDesc *d) { return table_push(&w->t[T_DRIVE], d); }
uint32_t engram_blob_var(EngramBlobWriter *w, const EngramVarDesc *v) { return table_push(&w->t[T_VAR], v); }
uint32_t engram_blob_modulator(EngramBlobWriter *w, const EngramModulatorDesc *m) { return table_push(&w->t[T_MOD], m); }
uint32_t engram_blob_release(EngramBlobWriter *w, const EngramReleaseDesc *r) { return table_push(&w->t[T_REL], r); }
uint32_t engram_blob_weight_rec(EngramBlobWriter *w, const EngramWeightRecDesc *r) { return table_push(&w->t[T_WREC], r); }
uint32_t engram_blob_idx(EngramBlobWriter *w, uint32_t v) { return table_push(&w->t[T_IDX], &v); }
uint32_t engram_blob_idx_count(const EngramBlobWriter *w) { return (uint32_t)w->t[T_IDX].len; }
uint32_t engram_blob_ens_group(EngramBlobWriter *w, const EngramEnsGroupDesc *g) { return table_push(&w->t[T_ENS], g); }
uint32_t engram_blob_sequence(EngramBlobWriter *w, const EngramSequenceDesc *q) { return table_push(&w->t[T_SEQ], q); }
uint32_t engram_blob_stimulus(EngramBlobWriter *w, const EngramStimulusDesc *x) { return table_push(&w->t[T_STIM], x); }
uint32_t engram_blob_measure(EngramBlobWriter *w, const EngramMeasureDesc *x) { return table_push(&w->t[T_MEAS], x); }
uint32_t engram_blob_stmt(EngramBlobWriter *w, const EngramStmtDesc *x) { return table_push(&w->t[T_STMT], x); }
uint32_t engram_blob_stmt_count(const EngramBlobWriter *w) { return (uint32_t)w->t[T_STMT].len; }
uint32_t engram_blob_protocol(EngramBlobWriter *w, const EngramProtocolDesc *p) { return table_push(&w->t[T_PROTO], p); }

void engram_blob_stmt_set(EngramBlobWriter *w, uint32_t i, const EngramStmtDesc *x)
{
    if (i < w->t[T_STMT].len)
        memcpy(w->t[T_STMT].data + (size_t)i * sizeof *x, x, sizeof *x);
}

static uint64_t align8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

uint8_t *engram_blob_finish(EngramBlobWriter *w, const EngramModelDesc *hdr, uint64_t *size)
{
    if (w->oom)
        return NULL;
    for (int i = 0; i < T_COUNT; i++)
        if (w->t[i].oom)
            return NULL;
    EngramModelDesc d = *hdr;
    d.magic = ENGRAM_BLOB_MAGIC;
    d.abi_version = ENGRAM_ABI_VERSION;
    uint64_t off = align8(sizeof d);
    uint64_t offs[T_COUNT];
    for (int i = 0; i < T_COUNT; i++) {
        offs[i] = off;
        off = align8(off + w->t[i].len * w->t[i].row);
    }
    uint64_t strings_off = off;
    off = align8(off + w->slen);
    d.nparams = (uint32_t)w->t[T_PARAM].len;
    d.npops = (uint32_t)w->t[T_POP].len;
    d.nstates = (uint32_t)w->t[T_STATE].len;
    d.nports = (uint32_t)w->t[T_PORT].len;
    d.nlin_vars = (uint32_t)w->t[T_LINVAR].len;
    d.ncoefs = (uint32_t)w->t[T_COEF].len;
    d.nprojs = (uint32_t)w->t[T_PROJ].len;
    d.ndrives = (uint32_t)w->t[T_DRIVE].len;
    d.ninsns = (uint32_t)w->t[T_INSN].len;
    d.nlist = (uint32_t)w->t[T_LIST].len;
    d.nvars = (uint32_t)w->t[T_VAR].len;
    d.nmodulators = (uint32_t)w->t[T_MOD].len;
    d.nreleases = (uint32_t)w->t[T_REL].len;
    d.nweight_recs = (uint32_t)w->t[T_WREC].len;
    d.nidx = (uint32_t)w->t[T_IDX].len;
    d.nens_groups = (uint32_t)w->t[T_ENS].len;
    d.nsequences = (uint32_t)w->t[T_SEQ].len;
    d.nstimuli = (uint32_t)w->t[T_STIM].len;
    d.nmeasures = (uint32_t)w->t[T_MEAS].len;
    d.nstmts = (uint32_t)w->t[T_STMT].len;
    d.nprotocols = (uint32_t)w->t[T_PROTO].len;
    d.pad_ = 0;
    d.strings_size = (uint32_t)w->slen;
    d.params_off = offs[T_PARAM];
    d.pops_off = offs[T_POP];
    d.states_off = offs[T_STATE];
    d.ports_off = offs[T_PORT];
    d.lin_vars_off = offs[T_LINVAR];
    d.coefs_off = offs[T_COEF];
    d.projs_off = offs[T_PROJ];
    d.drives_off = offs[T_DRIVE];
    d.insns_off = offs[T_INSN];
    d.list_off = offs[T_LIST];
    d.vars_off = offs[T_VAR];
    d.modulators_off = offs[T_MOD];
    d.releases_off = offs[T_REL];
    d.weight_recs_off = offs[T_WREC];
    d.idx_off = offs[T_IDX];
    d.ens_groups_off = offs[T_ENS];
    d.sequences_off = offs[T_SEQ];
    d.stimuli_off = offs[T_STIM];
    d.measures_off = offs[T_MEAS];
    d.stmts_off = offs[T_STMT];
    d.protocols_off = offs[T_PROTO];
    d.strings_off = strings_off;
    d.total_size = off;
    /* fixed-size text fields always end in NUL */
    d.source_sha256[sizeof d.source_sha256 - 1] = '\0';
    d.compiler_version[sizeof d.compiler_version - 1] = '\0';

    uint64_t alloc = (off + 15) & ~(uint64_t)15;
    uint8_t *b = aligned_alloc(16, alloc);
    if (!b)
        return NULL;
    memset(b, 0, alloc);
    memcpy(b, &d, sizeof d);
    for (int i = 0; i < T_COUNT; i++)
        if (w->t[i].len)
            memcpy(b + offs[i], w->t[i].data, w->t[i].len * w->t[i].row);
    memcpy(b + strings_off, w->strings, w->slen);
    *size = off;
    return b;
}

/* ---- validation ---------------------------------------------------------------- */

/* A section [off, off + count * row) lies inside the blob, 8-aligned. */
static bool section_ok(uint64_t size, uint64_t off, uint64_t count, uint64_t row)
{
    if (off % 8 != 0 || off < sizeof(EngramModelDesc) || off > size)
        return false;
    return count <= (size - off) / row;
}

static bool str_ok(const EngramModelDesc *d, uint32_t off)
{
    return off < d->strings_size;
}

static bool param_ok(const EngramModelDesc *d, uint32_t p) { return p < d->nparams; }
static bool param_or_none(const EngramModelDesc *d, uint32_t p) { return p == ENGRAM_NONE || p < d->nparams; }

static bool text_terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

static const char *check_tables(const EngramModelDesc *d, uint64_t size)
{
    if (!section_ok(size, d->params_off, d->nparams, sizeof(EngramParamDesc)) ||
        !section_ok(size, d->pops_off, d->npops, sizeof(EngramPopDesc)) ||
        !section_ok(size, d->states_off, d->nstates, sizeof(EngramStateDesc)) ||
        !section_ok(size, d->ports_off, d->nports, sizeof(EngramPortDesc)) ||
        !section_ok(size, d->lin_vars_off, d->nlin_vars, sizeof(uint32_t)) ||
        !section_ok(size, d->coefs_off, d->ncoefs, sizeof(EngramCode)) ||
        !section_ok(size, d->projs_off, d->nprojs, sizeof(EngramProjDesc)) ||
        !section_ok(size, d->drives_off, d->ndrives, sizeof(EngramDriveDesc)) ||
        !section_ok(size, d->insns_off, d->ninsns, sizeof(EngramInsn)) ||
        !section_ok(size, d->list_off, d->nlist, sizeof(double)) ||
        !section_ok(size, d->vars_off, d->nvars, sizeof(EngramVarDesc)) ||
        !section_ok(size, d->modulators_off, d->nmodulators, sizeof(EngramModulatorDesc)) ||
        !section_ok(size, d->releases_off, d->nreleases, sizeof(EngramReleaseDesc)) ||
        !section_ok(size, d->weight_recs_off, d->nweight_recs, sizeof(EngramWeightRecDesc)) ||
        !section_ok(size, d->idx_off, d->nidx, sizeof(uint32_t)) ||
        !section_ok(size, d->ens_groups_off, d->nens_groups, sizeof(EngramEnsGroupDesc)) ||
        !section_ok(size, d->sequences_off, d->nsequences, sizeof(EngramSequenceDesc)) ||
        !section_ok(size, d->stimuli_off, d->nstimuli, sizeof(EngramStimulusDesc)) ||
        !section_ok(size, d->measures_off, d->nmeasures, sizeof(EngramMeasureDesc)) ||
        !section_ok(size, d->stmts_off, d->nstmts, sizeof(EngramStmtDesc)) ||
        !section_ok(size, d->protocols_off, d->nprotocols, sizeof(EngramProtocolDesc)) ||
        !section_ok(size, d->strings_off, d->strings_size, 1))
        return "a table lies outside the blob";
    if (d->strings_size == 0 ||
        ((const uint8_t *)d)[d->strings_off + d->strings_size - 1] != '\0')
        return "the string table does not end in NUL";
    return NULL;
}

static const char *check_params(const uint8_t *b, const EngramModelDesc *d)
{
    const EngramParamDesc *p = ENGRAM_TABLE(b, EngramParamDesc, d->params_off);
    const EngramInsn *in = ENGRAM_TABLE(b, EngramInsn, d->insns_off);
    for (uint32_t i = 0; i < d->nparams; i++) {
        if (!str_ok(d, p[i].name) || !str_ok(d, p[i].unit))
            return "a parameter's name is outside the string table";
        if (p[i].flags & ENGRAM_PARAM_LIST) {
            if (p[i].list_first > d->nlist || p[i].list_count > d->nlist - p[i].list_first)
                return "a list parameter's values lie outside the list table";
            continue;
        }
        /* a default reads only parameters before it (dependency order) */
        if (engram_code_check(in, d->ninsns, p[i].value, i, 0))
            return "a parameter's default is not a sound expression";
    }
    if (!param_ok(d, d->dt_param) || !param_ok(d, d->duration_param) ||
        !param_ok(d, d->seed_param))
        return "dt, duration or seed is not a parameter";
    if ((p[d->dt_param].flags | p[d->duration_param].flags | p[d->seed_param].flags) &
        ENGRAM_PARAM_LIST)
        return "dt, duration or seed is a list";
    return NULL;
}

static bool is_list_param(const uint8_t *b, const EngramModelDesc *d, uint32_t i)
{
    return ENGRAM_TABLE(b, EngramParamDesc, d->params_off)[i].flags & ENGRAM_PARAM_LIST;
}

static const char *check_pop(const uint8_t *b, const EngramModelDesc *d, const EngramPopDesc *p)
{
    const EngramStateDesc *st = ENGRAM_TABLE(b, EngramStateDesc, d->states_off);
    const EngramPortDesc *po = ENGRAM_TABLE(b, EngramPortDesc, d->ports_off);
    const EngramInsn *in = ENGRAM_TABLE(b, EngramInsn, d->insns_off);
    if (!str_ok(d, p->name) || !str_ok(d, p->model))
        return "a population's name is outside the string table";
    if (p->kind > ENGRAM_POP_SPIKE_TIMES || p->method > ENGRAM_METHOD_NONE)
        return "a population has an unknown kind or method";
    if (!param_ok(d, p->size_param) || is_list_param(b, d, p->size_param))
        return "a population's size is not a parameter";
    if (p->first_state > d->nstates || p->nstates > d->nstates - p->first_state)
        return "a population's states lie outside the state table";
    if (p->first_port > d->nports || p->nports > d->nports - p->first_port)
        return "a population's ports lie outside the port table";
    for (uint32_t s = 0; s < p->nstates; s++) {
        const EngramStateDesc *sd = &st[p->first_state + s];
        if (!str_ok(d, sd->name) || !str_ok(d, sd->unit))
            return "a state's name is outside the string table";
        if (engram_code_check(in, d->ninsns, sd->init, d->nparams,
                              ENGRAM_CODE_ALLOW_EMPTY | ENGRAM_CODE_ALLOW_INDEX |
                                  ENGRAM_CODE_ALLOW_DRAWS))
            return "a state's initial value is not a sound expression";
    }
    for (uint32_t q = 0; q < p->nports; q++) {
        if (!str_ok(d, po[p->first_port + q].name))
            return "a port's name is outside the string table";
        if (po[p->first_port + q].state >= p->nstates)
            return "a port feeds a state outside its population";
    }
    if (!param_or_none(d, p->refractory_param))
        return "a population's refractory period is not a parameter";
    if (p->kind == ENGRAM_POP_NEURON) {
        if (p->update_kernel >= d->nkernels)
            return "a population's update kernel is outside the kernel table";
    } else if (p->nstates || p->nports) {
        return "a source population has states or ports";
    }
    if (p->kind == ENGRAM_POP_POISSON && !param_ok(d, p->rate_param))
        return "a Poisson source has no rate parameter";
    if (p->kind == ENGRAM_POP_SPIKE_TIMES) {
        if (!param_ok(d, p->times_param) || !is_list_param(b, d, p->times_param))
            return "a spike-times source has no list of times";
        if (p->indices_param != ENGRAM_NONE &&
            (!param_ok(d, p->indices_param) || !is_list_param(b, d, p->indices_param)))
            return "a spike-times source's indices are not a list";
    }
    if (p->kind == ENGRAM_POP_NEURON && p->method == ENGRAM_METHOD_EXACT) {
        const uint32_t *lv = ENGRAM_TABLE(b, uint32_t, d->lin_vars_off);
        const EngramCode *co = ENGRAM_TABLE(b, EngramCode, d->coefs_off);
        if (p->nlinear < 1 || p->nlinear >= ENGRAM_EXPM_MAX_N)
            return "an exact population has too few or too many linear variables";
        if (p->first_lin_var > d->nlin_vars || p->nlinear > d->nlin_vars - p->first_lin_var)
            return "a population's linear variables lie outside their table";
        uint64_t ncoef = (uint64_t)p->nlinear * (p->nlinear + 1);
        if (p->first_coef > d->ncoefs || ncoef > d->ncoefs - p->first_coef)
            return "a population's coefficients lie outside their table";
        for (uint32_t r = 0; r < p->nlinear; r++)
            if (lv[p->first_lin_var + r] >= p->nstates)
                return "a linear variable is outside its population's states";
        for (uint64_t c = 0; c < ncoef; c++)
            if (engram_code_check(in, d->ninsns, co[p->first_coef + c], d->nparams,
                                  ENGRAM_CODE_ALLOW_EMPTY))
                return "a propagator coefficient is not a sound expression";
    }
    return NULL;
}

static bool dist_ok(const EngramModelDesc *d, const EngramDistDesc *x)
{
    switch (x->kind) {
    case ENGRAM_DIST_CONST:
        return param_ok(d, x->arg[0]);
    case ENGRAM_DIST_UNIFORM:
        return param_ok(d, x->arg[0]) && param_ok(d, x->arg[1]);
    case ENGRAM_DIST_NORMAL:
        return param_ok(d, x->arg[0]) && param_ok(d, x->arg[1]) &&
               param_or_none(d, x->arg[2]) && param_or_none(d, x->arg[3]);
    default:
        return false;
    }
}

static bool scalar_param(const uint8_t *b, const EngramModelDesc *d, uint32_t p)
{
    return param_ok(d, p) && !is_list_param(b, d, p);
}

static bool scalar_or_none(const uint8_t *b, const EngramModelDesc *d, uint32_t p)
{
    return p == ENGRAM_NONE || scalar_param(b, d, p);
}

/* The synapse variables and traces of a plastic projection: a run of the var
 * table, each with a name and a sound initial value (INDEX and draws allowed). */
static const char *check_vars(const uint8_t *b, const EngramModelDesc *d, uint32_t first,
                              uint64_t n)
{
    const EngramVarDesc *v = ENGRAM_TABLE(b, EngramVarDesc, d->vars_off);
    const EngramInsn *in = ENGRAM_TABLE(b, EngramInsn, d->insns_off);
    if (n == 0)
        return NULL;
    if (n > ENGRAM_MAX_PLASTIC_VARS)
        return "a plastic projection has too many synapse variables and traces";
    if (first > d->nvars || n > d->nvars - first)
        return "a projection's variables lie outside the var table";
    for (uint64_t k = first; k < first + n; k++) {
        if (!str_ok(d, v[k].name) || !str_ok(d, v[k].unit))
            return "a plastic variable's name is outside the string table";
        if (engram_code_check(in, d->ninsns, v[k].init, d->nparams,
                              ENGRAM_CODE_ALLOW_EMPTY | ENGRAM_CODE_ALLOW_INDEX |
                                  ENGRAM_CODE_ALLOW_DRAWS))
            return "a plastic variable's initial value is not a sound expression";
    }
    return NULL;
}

static const char *check_plastic(const uint8_t *b, const EngramModelDesc *d,
                                 const EngramProjDesc *p)
{
    if (!scalar_or_none(b, d, p->plastic_param))
        return "a projection's plastic switch is not a parameter";
    const char *why = check_vars(b, d, p->first_var,
                                 (uint64_t)p->nsyn_vars + p->npre + p->npost);
    if (why)
        return why;
    if (p->on_post_kernel != ENGRAM_NONE && p->on_post_kernel >= d->nkernels)
        return "a projection's on-post kernel is outside the kernel table";
    if (p->every_kernel != ENGRAM_NONE &&
        (p->every_kernel >= d->nkernels || !scalar_param(b, d, p->every_param)))
        return "a projection's every kernel or its interval is not in its table";
    if (!scalar_or_none(b, d, p->w_lo_param) || !scalar_or_none(b, d, p->w_hi_param))
        return "a projection's weight bounds are not parameters";
    if (p->lazy_syn > 1)
        return "a projection's lazy_syn flag is neither 0 nor 1";
    if (p->pre_arrival > 1 || (p->pre_arrival && p->arrive_kernel >= d->nkernels))
        return "a projection's arrival flag or arrive kernel is not in its table";
    return NULL;
}

/* An ensemble of one of the population's groups (the index is checked
 * against the group's size at run time); nothing to check when unused. */
static bool endpoint_ok(const uint8_t *b, const EngramModelDesc *d, bool used, uint32_t pop,
                        uint32_t group, uint32_t ens)
{
    if (!used)
        return true;
    return group < d->nens_groups && ens != ENGRAM_NONE &&
           ENGRAM_TABLE(b, EngramEnsGroupDesc, d->ens_groups_off)[group].pop == pop;
}

static const char *check_proj(const uint8_t *b, const EngramModelDesc *d, const EngramProjDesc *p)
{
    const EngramPopDesc *pops = ENGRAM_TABLE(b, EngramPopDesc, d->pops_off);
    if (!str_ok(d, p->name))
        return "a projection's name is outside the string table";
    if (p->src_pop >= d->npops || p->dst_pop >= d->npops)
        return "a projection's populations are outside the population table";
    if (p->port >= pops[p->dst_pop].nports)
        return "a projection's port is outside its target's ports";
    if (p->rule > ENGRAM_CONNECT_ALL_TO_ALL)
        return "a projection has an unknown connection rule";
    if ((p->rule == ENGRAM_CONNECT_RANDOM || p->rule == ENGRAM_CONNECT_FIXED_INDEGREE) &&
        !param_ok(d, p->rule_param))
        return "a projection's p or k is not a parameter";
    if (!dist_ok(d, &p->weight) || !dist_ok(d, &p->delay))
        return "a projection's weight or delay is not a sound distribution";
    if (p->deliver_kernel >= d->nkernels)
        return "a projection's delivery kernel is outside the kernel table";
    if (p->plastic > 1)
        return "a projection's plastic flag is neither 0 nor 1";
    if (p->ens_ends > 3 || !endpoint_ok(b, d, p->ens_ends & 1, p->src_pop, p->src_group, p->src_ens) ||
        !endpoint_ok(b, d, p->ens_ends & 2, p->dst_pop, p->dst_group, p->dst_ens))
        return "a projection's ensemble endpoint is not in the ensemble table";
    return p->plastic ? check_plastic(b, d, p) : NULL;   /* static: plastic fields unused */
}

static const char *check_drive(const uint8_t *b, const EngramModelDesc *d, const EngramDriveDesc *x)
{
    const EngramPopDesc *pops = ENGRAM_TABLE(b, EngramPopDesc, d->pops_off);
    if (!str_ok(d, x->name))
        return "a drive's name is outside the string table";
    if (x->dst_pop >= d->npops || x->port >= pops[x->dst_pop].nports)
        return "a drive's target is outside the population or port tables";
    if (!param_ok(d, x->rate_param) || !param_ok(d, x->count_param) ||
        !param_ok(d, x->weight_param))
        return "a drive's rate, count or weight is not a parameter";
    return NULL;
}

static bool release_delay_ok(const EngramModelDesc *d, const EngramDistDesc *x)
{
    return (x->kind == ENGRAM_DIST_CONST && x->arg[0] == ENGRAM_NONE) || dist_ok(d, x);
}

static const char *check_modulator(const uint8_t *b, const EngramModelDesc *d,
                                   const EngramModulatorDesc *m)
{
    if (!str_ok(d, m->name) || !str_ok(d, m->unit))
        return "a modulator's name is outside the string table";
    if (!scalar_param(b, d, m->baseline_param) || !scalar_param(b, d, m->tau_param))
        return "a modulator's baseline or tau is not a parameter";
    return NULL;
}

static const char *check_release(const uint8_t *b, const EngramModelDesc *d,
                                 const EngramReleaseDesc *r)
{
    if (!str_ok(d, r->name))
        return "a release's name is outside the string table";
    if (r->kind > ENGRAM_RELEASE_WHEN || r->modulator >= d->nmodulators)
        return "a release has an unknown kind or modulator";
    if (!scalar_param(b, d, r->amount_param) || r->src_pop >= d->npops)
        return "a release's amount or source population is not in its table";
    if (r->kind == ENGRAM_RELEASE_PER_SPIKE)
        return NULL;
    if (r->dst_pop >= d->npops || !scalar_param(b, d, r->src_index_param) ||
        !scalar_param(b, d, r->dst_index_param) || !scalar_param(b, d, r->window_param))
        return "a release's neurons or window are not in their tables";
    if (!release_delay_ok(d, &r->delay))
        return "a release's delay is not a sound distribution";
    return NULL;
}

static const char *check_weight_rec(const uint8_t *b, const EngramModelDesc *d,
                                    const EngramWeightRecDesc *r, uint32_t i)
{
    const EngramWeightRecDesc *all = ENGRAM_TABLE(b, EngramWeightRecDesc, d->weight_recs_off);
    if (r->proj >= d->nprojs || !scalar_param(b, d, r->every_param))
        return "a weight recording's projection or interval is not in its table";
    if (r->per_synapse > 1)
        return "a weight recording's synapses flag is neither 0 nor 1";
    for (uint32_t k = 0; k < i; k++)
        if (all[k].proj == r->proj)
            return "a projection's weights are recorded twice";
    return NULL;
}

/* Modulators, releases and weight recordings (after the projections). */
static const char *check_plasticity_tables(const uint8_t *b, const EngramModelDesc *d)
{
    const char *why = NULL;
    const EngramModulatorDesc *mods = ENGRAM_TABLE(b, EngramModulatorDesc, d->modulators_off);
    for (uint32_t i = 0; !why && i < d->nmodulators; i++)
        why = check_modulator(b, d, &mods[i]);
    const EngramReleaseDesc *rels = ENGRAM_TABLE(b, EngramReleaseDesc, d->releases_off);
    for (uint32_t i = 0; !why && i < d->nreleases; i++)
        why = check_release(b, d, &rels[i]);
    const EngramWeightRecDesc *recs = ENGRAM_TABLE(b, EngramWeightRecDesc, d->weight_recs_off);
    for (uint32_t i = 0; !why && i < d->nweight_recs; i++)
        why = check_weight_rec(b, d, &recs[i], i);
    return why;
}

/* ---- ensembles, sequences, stimuli, measures, protocols ---------------------------- */

static bool idx_range_ok(const EngramModelDesc *d, uint32_t first, uint32_t n)
{
    return first <= d->nidx && n <= d->nidx - first;
}

/* Protocol expressions: params, loop variables below nvars, measures only in conditions. */
static bool proto_code_ok(const uint8_t *b, const EngramModelDesc *d, EngramCode c, uint32_t nvars,
                          bool measures)
{
    const EngramInsn *in = ENGRAM_TABLE(b, EngramInsn, d->insns_off);
    if (engram_code_check(in, d->ninsns, c, d->nparams,
                          ENGRAM_CODE_ALLOW_EMPTY | ENGRAM_CODE_ALLOW_PROTO))
        return false;
    for (uint32_t k = 0; k < c.count; k++) {
        const EngramInsn *x = &in[c.first + k];
        if (x->op == ENGRAM_OP_VAR && x->arg >= nvars)
            return false;
        if (x->op == ENGRAM_OP_MEASURE && (!measures || x->arg >= d->nmeasures))
            return false;
    }
    return true;
}

static bool target_ok(const uint8_t *b, const EngramModelDesc *d, const EngramTargetDesc *t,
                      uint32_t nvars)
{
    const EngramEnsGroupDesc *g = ENGRAM_TABLE(b, EngramEnsGroupDesc, d->ens_groups_off);
    if (t->pop >= d->npops)
        return false;
    if (t->group == ENGRAM_NONE)
        return t->index.count == 0;
    return t->group < d->nens_groups && g[t->group].pop == t->pop && t->index.count > 0 &&
           proto_code_ok(b, d, t->index, nvars, false);
}

static const char *check_ens_group(const uint8_t *b, const EngramModelDesc *d,
                                   const EngramEnsGroupDesc *g)
{
    const uint32_t *idx = ENGRAM_TABLE(b, uint32_t, d->idx_off);
    if (g->pop >= d->npops || g->kind > ENGRAM_ENS_RANGES)
        return "an ensemble group has an unknown population or kind";
    if (g->kind == ENGRAM_ENS_SPLIT && !scalar_param(b, d, g->count_param))
        return "an ensemble split count is not a parameter";
    if (g->kind == ENGRAM_ENS_RANGES) {
        if (g->nens > d->nidx / 2 || !idx_range_ok(d, g->first_range, 2 * g->nens))
            return "ensemble ranges lie outside the index table";
        for (uint32_t k = 0; k < 2 * g->nens; k++)
            if (!scalar_param(b, d, idx[g->first_range + k]))
                return "an ensemble range bound is not a parameter";
    }
    if (!idx_range_ok(d, g->first_name, g->nnames))
        return "ensemble names lie outside the index table";
    for (uint32_t k = 0; k < g->nnames; k++)
        if (!str_ok(d, idx[g->first_name + k]))
            return "an ensemble name is outside the string table";
    return NULL;
}

static const char *check_sequence(const uint8_t *b, const EngramModelDesc *d,
                                  const EngramSequenceDesc *q)
{
    if (!str_ok(d, q->name) || q->group >= d->nens_groups || q->nelems == 0 ||
        !idx_range_ok(d, q->first_elem, q->nelems))
        return "a sequence's name, ensembles or elements are not in their tables";
    if (!scalar_param(b, d, q->interval_param) || !scalar_param(b, d, q->threshold_param) ||
        !scalar_param(b, d, q->window_param))
        return "a sequence's interval, threshold or window is not a parameter";
    return NULL;
}

static const char *check_measure(const uint8_t *b, const EngramModelDesc *d,
                                 const EngramMeasureDesc *x)
{
    if (!str_ok(d, x->name) || x->kind > ENGRAM_MEASURE_SPARSENESS)
        return "a measure has an unknown name or kind";
    bool seq = x->seq != ENGRAM_NONE;
    if (seq && x->seq >= d->nsequences)
        return "a measure's sequence is not in its table";
    switch ((EngramMeasureKind)x->kind) {
    case ENGRAM_MEASURE_RECALL: case ENGRAM_MEASURE_ORDER: case ENGRAM_MEASURE_JITTER:
    case ENGRAM_MEASURE_REPLAY:
        return seq ? NULL : "a sequence measure has no sequence";
    case ENGRAM_MEASURE_SPARSENESS:
        return seq || target_ok(b, d, &x->a, UINT32_MAX) ? NULL : "a sparseness has no target";
    case ENGRAM_MEASURE_RATE:
        return target_ok(b, d, &x->a, UINT32_MAX) ? NULL : "a rate has no sound target";
    case ENGRAM_MEASURE_WEIGHT:
        return target_ok(b, d, &x->a, UINT32_MAX) && target_ok(b, d, &x->b, UINT32_MAX)
                   ? NULL : "a weight measure has no sound targets";
    }
    return "a measure has an unknown kind";
}

static const char *check_stmt(const uint8_t *b, const EngramModelDesc *d,
                              const EngramProtocolDesc *p, uint32_t i)
{
    const EngramStmtDesc *x = &ENGRAM_TABLE(b, EngramStmtDesc, d->stmts_off)[i];
    const uint32_t *idx = ENGRAM_TABLE(b, uint32_t, d->idx_off);
    uint32_t end = p->first_stmt + p->nstmts, nv = p->nvars;
    if (x->kind > ENGRAM_STMT_RECORD || x->end <= i || x->end > end)
        return "a protocol statement has an unknown kind or a bad extent";
    if (!str_ok(d, x->name) || !proto_code_ok(b, d, x->a, nv, false) ||
        !proto_code_ok(b, d, x->b, nv, false) || !proto_code_ok(b, d, x->cond, nv, true))
        return "a protocol statement has a bad name or expression";
    bool leaf = x->kind != ENGRAM_STMT_BLOCK && x->kind != ENGRAM_STMT_REPEAT;
    if (leaf && x->end != i + 1)
        return "a protocol statement without a body has children";
    switch ((EngramStmtKind)x->kind) {
    case ENGRAM_STMT_BLOCK:
        return x->block <= ENGRAM_BLOCK_SLEEP ? NULL : "a protocol block has an unknown kind";
    case ENGRAM_STMT_REPEAT:
        return (x->var == ENGRAM_NONE || x->var < nv) && x->a.count && x->b.count
                   ? NULL : "a repeat has a bad variable or range";
    case ENGRAM_STMT_CUE: case ENGRAM_STMT_CURRENT: case ENGRAM_STMT_BACKGROUND:
        return target_ok(b, d, &x->target, nv) && x->a.count ? NULL : "a stimulus has a bad target";
    case ENGRAM_STMT_TEACH:
        return x->ref < d->nsequences && x->a.count ? NULL : "a teach has a bad sequence";
    case ENGRAM_STMT_REST:
        return x->b.count ? NULL : "a rest has no duration";
    case ENGRAM_STMT_REWARD: case ENGRAM_STMT_SET:
        return x->ref < d->nmodulators && x->a.count ? NULL : "a reward or set has a bad modulator";
    case ENGRAM_STMT_PLASTICITY:
        if (x->ref > 1 || !idx_range_ok(d, x->first_idx, x->nidx))
            return "a plasticity statement has bad projections";
        for (uint32_t k = 0; k < x->nidx; k++)
            if (idx[x->first_idx + k] >= d->nprojs)
                return "a plasticity statement names an unknown projection";
        return NULL;
    case ENGRAM_STMT_CHECKPOINT: case ENGRAM_STMT_RESTORE:
        return NULL;
    case ENGRAM_STMT_MEASURE: case ENGRAM_STMT_RECORD:
        if (!idx_range_ok(d, x->first_idx, x->nidx))
            return "a measure statement has bad measures";
        for (uint32_t k = 0; k < x->nidx; k++)
            if (idx[x->first_idx + k] >= d->nmeasures)
                return "a measure statement names an unknown measure";
        return NULL;
    }
    return "a protocol statement has an unknown kind";
}

static const char *check_protocol(const uint8_t *b, const EngramModelDesc *d,
                                  const EngramProtocolDesc *p)
{
    const uint32_t *idx = ENGRAM_TABLE(b, uint32_t, d->idx_off);
    if (!str_ok(d, p->name) || p->nstmts == 0 || p->first_stmt > d->nstmts ||
        p->nstmts > d->nstmts - p->first_stmt || !idx_range_ok(d, p->first_var, p->nvars))
        return "a protocol's statements or variables lie outside their tables";
    for (uint32_t k = 0; k < p->nvars; k++)
        if (!str_ok(d, idx[p->first_var + k]))
            return "a protocol variable's name is outside the string table";
    const EngramStmtDesc *st = ENGRAM_TABLE(b, EngramStmtDesc, d->stmts_off);
    if (st[p->first_stmt].end != p->first_stmt + p->nstmts)
        return "a protocol's top statement does not span it";
    for (uint32_t i = p->first_stmt; i < p->first_stmt + p->nstmts; i++) {
        const char *why = check_stmt(b, d, p, i);
        if (why)
            return why;
        /* children tile the parent's extent exactly: a tree, walked without recursion */
        uint32_t c = i + 1;
        while (c < st[i].end && st[c].end > c && st[c].end <= st[i].end)
            c = st[c].end;
        if (c != st[i].end)
            return "a protocol statement's children do not tile its extent";
    }
    return NULL;
}

static const char *check_protocol_tables(const uint8_t *b, const EngramModelDesc *d)
{
    const char *why = NULL;
    const EngramEnsGroupDesc *g = ENGRAM_TABLE(b, EngramEnsGroupDesc, d->ens_groups_off);
    for (uint32_t i = 0; !why && i < d->nens_groups; i++)
        why = check_ens_group(b, d, &g[i]);
    const EngramSequenceDesc *q = ENGRAM_TABLE(b, EngramSequenceDesc, d->sequences_off);
    for (uint32_t i = 0; !why && i < d->nsequences; i++)
        why = check_sequence(b, d, &q[i]);
    const EngramStimulusDesc *s = ENGRAM_TABLE(b, EngramStimulusDesc, d->stimuli_off);
    for (uint32_t i = 0; !why && i < d->nstimuli; i++)
        if (s[i].pop >= d->npops || !scalar_param(b, d, s[i].weight_param) ||
            s[i].port >= ENGRAM_TABLE(b, EngramPopDesc, d->pops_off)[s[i].pop].nports)
            why = "a stimulus has an unknown population, weight or port";
    const EngramMeasureDesc *x = ENGRAM_TABLE(b, EngramMeasureDesc, d->measures_off);
    for (uint32_t i = 0; !why && i < d->nmeasures; i++)
        why = check_measure(b, d, &x[i]);
    const EngramProtocolDesc *p = ENGRAM_TABLE(b, EngramProtocolDesc, d->protocols_off);
    for (uint32_t i = 0; !why && i < d->nprotocols; i++)
        why = check_protocol(b, d, &p[i]);
    return why;
}

const char *engram_blob_validate(const uint8_t *blob, uint64_t size)
{
    if (!blob)
        return "no model blob";
    if ((uintptr_t)blob % 16 != 0)
        return "the model blob is not 16-aligned";
    if (size < sizeof(EngramModelDesc))
        return "the model blob is too short";
    const EngramModelDesc *d = (const EngramModelDesc *)blob;
    if (d->magic != ENGRAM_BLOB_MAGIC)
        return "not an Engram model blob (bad magic)";
    if (d->abi_version != ENGRAM_ABI_VERSION)
        return "the model was compiled for another runtime ABI version";
    if (d->total_size != size)
        return "the model blob's size does not match its header";
    if (d->precision != 4 && d->precision != 8)
        return "the model's precision is neither 4 nor 8";
    if (!text_terminated(d->source_sha256, sizeof d->source_sha256) ||
        !text_terminated(d->compiler_version, sizeof d->compiler_version))
        return "a header text field is not NUL-terminated";
    const char *why = check_tables(d, size);
    if (!why && !str_ok(d, d->name))
        why = "the model name is outside the string table";
    if (!why)
        why = check_params(blob, d);
    if (why)
        return why;   /* the table offsets below are only sound from here on */
    const EngramPopDesc *pops = ENGRAM_TABLE(blob, EngramPopDesc, d->pops_off);
    for (uint32_t i = 0; !why && i < d->npops; i++)
        why = check_pop(blob, d, &pops[i]);
    const EngramProjDesc *projs = ENGRAM_TABLE(blob, EngramProjDesc, d->projs_off);
    for (uint32_t i = 0; !why && i < d->nprojs; i++)
        why = check_proj(blob, d, &projs[i]);
    const EngramDriveDesc *drives = ENGRAM_TABLE(blob, EngramDriveDesc, d->drives_off);
    for (uint32_t i = 0; !why && i < d->ndrives; i++)
        why = check_drive(blob, d, &drives[i]);
    if (!why)
        why = check_plasticity_tables(blob, d);
    if (!why)
        why = check_protocol_tables(blob, d);
    return why;
}

/* ---- the view ------------------------------------------------------------------------ */

int engram_model_open(EngramModel *m, const EngramProgram *prog, EngramError *err)
{
    memset(m, 0, sizeof *m);
    const char *why = engram_blob_validate(prog->blob, prog->blob_size);
    if (why)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "invalid model: %s", why);
    if (!prog->kernels && ((const EngramModelDesc *)prog->blob)->nkernels > 0)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "invalid model: no kernel table");
    const uint8_t *b = prog->blob;
    const EngramModelDesc *d = (const EngramModelDesc *)b;
    m->blob = b;
    m->size = prog->blob_size;
    m->hdr = d;
    m->params = ENGRAM_TABLE(b, EngramParamDesc, d->params_off);
    m->pops = ENGRAM_TABLE(b, EngramPopDesc, d->pops_off);
    m->states = ENGRAM_TABLE(b, EngramStateDesc, d->states_off);
    m->ports = ENGRAM_TABLE(b, EngramPortDesc, d->ports_off);
    m->lin_vars = ENGRAM_TABLE(b, uint32_t, d->lin_vars_off);
    m->coefs = ENGRAM_TABLE(b, EngramCode, d->coefs_off);
    m->projs = ENGRAM_TABLE(b, EngramProjDesc, d->projs_off);
    m->drives = ENGRAM_TABLE(b, EngramDriveDesc, d->drives_off);
    m->insns = ENGRAM_TABLE(b, EngramInsn, d->insns_off);
    m->list = ENGRAM_TABLE(b, double, d->list_off);
    m->vars = ENGRAM_TABLE(b, EngramVarDesc, d->vars_off);
    m->modulators = ENGRAM_TABLE(b, EngramModulatorDesc, d->modulators_off);
    m->releases = ENGRAM_TABLE(b, EngramReleaseDesc, d->releases_off);
    m->weight_recs = ENGRAM_TABLE(b, EngramWeightRecDesc, d->weight_recs_off);
    m->idx = ENGRAM_TABLE(b, uint32_t, d->idx_off);
    m->ens_groups = ENGRAM_TABLE(b, EngramEnsGroupDesc, d->ens_groups_off);
    m->sequences = ENGRAM_TABLE(b, EngramSequenceDesc, d->sequences_off);
    m->stimuli = ENGRAM_TABLE(b, EngramStimulusDesc, d->stimuli_off);
    m->measures = ENGRAM_TABLE(b, EngramMeasureDesc, d->measures_off);
    m->stmts = ENGRAM_TABLE(b, EngramStmtDesc, d->stmts_off);
    m->protocols = ENGRAM_TABLE(b, EngramProtocolDesc, d->protocols_off);
    m->kernels = prog->kernels;
    return 0;
}

const char *engram_model_str(const EngramModel *m, uint32_t off)
{
    if (off >= m->hdr->strings_size)
        return "";
    return ENGRAM_STR(m->blob, m->hdr, off);
}
