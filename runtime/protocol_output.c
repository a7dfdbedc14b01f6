/*
 * protocol_output.c - what a protocol leaves behind (docs/protocol_outputs.md):
 * trials.csv (one row per trial with measures), the "protocol" member of
 * summary.json (phases, trials, rewards, aggregates, records), the line of
 * the human summary, and the interpreter's state as bytes for checkpoints.
 *
 * Numbers in trials.csv are written with %.9g, undefined ones as empty
 * cells; fields are quoted as RFC 4180 asks (only when they hold a comma, a
 * quote or a line break).  In JSON, numbers read back exactly and NaN is null
 * (output.c's helpers).
 *
 * The saved state is a header (magic, format version and the sizes it was
 * laid out with, all checked on load) followed by the core scalars and every
 * array of EngramProtocol's saved part, in a fixed order.  It is read back
 * by the same runtime build, so structs are copied as they are in memory.
 *
 * Order: names, trials.csv, aggregates, summary.json, the human summary,
 * saving, loading.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_protocol.h"

/* ---- names -------------------------------------------------------------------- */

/* A named block's name ("sleep" for a sleep block without one), or "". */
static const char *block_name(const EngramProtocol *pr, uint32_t stmt)
{
    if (stmt == ENGRAM_NONE)
        return "";
    const EngramStmtDesc *x = &pr->m->stmts[stmt];
    const char *s = engram_model_str(pr->m, x->name);
    return s[0] || x->block != ENGRAM_BLOCK_SLEEP ? s : "sleep";
}

static const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case ENGRAM_BLOCK_PHASE: return "phase";
    case ENGRAM_BLOCK_SESSION: return "session";
    case ENGRAM_BLOCK_TEST: return "test";
    case ENGRAM_BLOCK_SLEEP: return "sleep";
    default: return "block";
    }
}

static const char *measure_name(const EngramProtocol *pr, uint32_t measure)
{
    return engram_model_str(pr->m, pr->m->measures[measure].name);
}

static uint8_t *row_at(const EngramProtocol *pr, uint64_t r)
{
    return pr->rows + r * pr->row_bytes;
}

/* ---- trials.csv ------------------------------------------------------------------ */

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
}

static void csv_row(FILE *f, const EngramProtocol *pr, uint8_t *row)
{
    const ProtoRowHead *h = engram_row_head(row);
    csv_field(f, pr->name);
    fputc(',', f);
    csv_field(f, block_name(pr, h->phase));
    fputc(',', f);
    csv_number(f, h->day);
    fputc(',', f);
    csv_field(f, block_name(pr, h->session));
    fputc(',', f);
    if (h->trial > 0)
        fprintf(f, "%lld", (long long)h->trial);
    fputc(',', f);
    csv_number(f, (double)h->t_start * pr->dt);
    const double *v = engram_row_vals(pr, row);
    const uint8_t *has = engram_row_has(pr, row);
    for (uint32_t c = 0; c < pr->ncols; c++) {
        fputc(',', f);
        if (has[c])
            csv_number(f, v[c]);
    }
    fputc('\n', f);
}

static void trials_write(FILE *f, const void *ctx)
{
    const EngramProtocol *pr = ctx;
    fputs("protocol,phase,day,session,trial,t_start_ms", f);
    for (uint32_t c = 0; c < pr->ncols; c++) {
        fputc(',', f);
        csv_field(f, measure_name(pr, pr->col_measure[c]));
    }
    fputc('\n', f);
    for (uint64_t r = 0; r < pr->core.nrows; r++)
        csv_row(f, pr, row_at(pr, r));
}

int engram_write_trials(const EngramNetwork *net, const char *dir, EngramError *err)
{
    if (!net->proto)
        return 0;
    return engram_write_text_atomically(dir, "trials.csv", trials_write, net->proto, err);
}

/* ---- aggregates ------------------------------------------------------------------------ */

typedef struct Agg {
    uint64_t measured, n;     /* rows that measured it; finite values */
    double mean, sd, first, last;
} Agg;

/* Column c over rows [from, to): mean and sample sd of the finite values,
 * first and last of the rows that measured it. */
static Agg aggregate(const EngramProtocol *pr, uint32_t c, uint64_t from, uint64_t to)
{
    Agg a = {0, 0, NAN, NAN, NAN, NAN};
    double sum = 0;
    for (uint64_t r = from; r < to; r++) {
        uint8_t *row = row_at(pr, r);
        if (!engram_row_has(pr, row)[c])
            continue;
        double v = engram_row_vals(pr, row)[c];
        if (a.measured++ == 0)
            a.first = v;
        a.last = v;
        if (isfinite(v)) {
            sum += v;
            a.n++;
        }
    }
    if (a.n)
        a.mean = sum / (double)a.n;
    double ss = 0;
    for (uint64_t r = from; r < to && a.n >= 2; r++) {
        uint8_t *row = row_at(pr, r);
        double v = engram_row_vals(pr, row)[c];
        if (engram_row_has(pr, row)[c] && isfinite(v))
            ss += (v - a.mean) * (v - a.mean);
    }
    if (a.n >= 2)
        a.sd = sqrt(ss / (double)(a.n - 1));
    return a;
}

static bool jitter_measured(const EngramProtocol *pr, uint32_t j, uint64_t from, uint64_t to)
{
    for (uint64_t r = from; r < to; r++)
        if (engram_row_jhas(pr, row_at(pr, r))[j])
            return true;
    return false;
}

/* ---- summary.json ------------------------------------------------------------------------- */

static void key(FILE *f, bool *first, const char *name)
{
    fputs(*first ? "" : ", ", f);
    *first = false;
    engram_json_string(f, name);
    fputs(": ", f);
}

static const ProtoRecord *find_record(const EngramProtocol *pr, uint32_t phase, uint32_t measure)
{
    for (uint64_t k = 0; k < pr->core.nrecords; k++)
        if (pr->records[k].phase == phase && pr->records[k].measure == measure)
            return &pr->records[k];
    return NULL;
}

static void write_agg(FILE *f, const Agg *a, const ProtoRecord *rec)
{
    fputs("{\"mean\": ", f);
    engram_json_number(f, a->mean);
    fputs(", \"sd\": ", f);
    engram_json_number(f, a->sd);
    fprintf(f, ", \"n\": %llu, \"first\": ", (unsigned long long)a->n);
    engram_json_number(f, a->first);
    fputs(", \"last\": ", f);
    engram_json_number(f, a->last);
    if (rec) {
        fputs(", \"block\": ", f);
        engram_json_number(f, rec->value);
    }
    fputc('}', f);
}

static void write_record(FILE *f, const EngramProtocol *pr, const ProtoRecord *r)
{
    if (pr->m->measures[r->measure].kind != ENGRAM_MEASURE_REPLAY) {
        engram_json_number(f, r->value);
        return;
    }
    fputs("{\"count\": ", f);
    engram_json_number(f, r->replay.count);
    fputs(", \"chance\": ", f);
    engram_json_number(f, r->replay.chance);
    fputs(", \"chance_sd\": ", f);
    engram_json_number(f, r->replay.chance_sd);
    fprintf(f, ", \"shuffles\": %u}", r->replay.shuffles);
}

/* Whether a record's key was already written as a column or a jitter. */
static bool written_before(const EngramProtocol *pr, const ProtoRecord *r, uint64_t from,
                           uint64_t to)
{
    uint32_t c = pr->col_of[r->measure], j = pr->jit_of[r->measure];
    if (c != ENGRAM_NONE)
        return aggregate(pr, c, from, to).measured > 0;
    return j != ENGRAM_NONE && jitter_measured(pr, j, from, to);
}

/* "measures": columns aggregated over rows [from, to), jitters, records of `phase`. */
static void write_measures(FILE *f, const EngramProtocol *pr, uint32_t phase, uint64_t from,
                           uint64_t to)
{
    bool first = true;
    fputs("\"measures\": {", f);
    for (uint32_t c = 0; c < pr->ncols; c++) {
        Agg a = aggregate(pr, c, from, to);
        if (a.measured == 0)
            continue;
        key(f, &first, measure_name(pr, pr->col_measure[c]));
        write_agg(f, &a, find_record(pr, phase, pr->col_measure[c]));
    }
    for (uint32_t j = 0; j < pr->njit; j++) {
        if (!jitter_measured(pr, j, from, to))
            continue;
        key(f, &first, measure_name(pr, pr->jit_measure[j]));
        engram_json_number(f, engram_proto_jitter(pr, j, from, to));
    }
    for (uint64_t k = 0; k < pr->core.nrecords; k++) {
        const ProtoRecord *r = &pr->records[k];
        if (r->phase != phase || written_before(pr, r, from, to))
            continue;
        key(f, &first, measure_name(pr, r->measure));
        write_record(f, pr, r);
    }
    fputc('}', f);
}

static void write_phase(FILE *f, const EngramProtocol *pr, uint32_t k)
{
    const ProtoPhase *p = &pr->phases[k];
    fputs("{\"name\": ", f);
    engram_json_string(f, block_name(pr, p->stmt));
    fputs(", \"kind\": ", f);
    engram_json_string(f, kind_name(p->kind));
    fputs(", \"day\": ", f);
    engram_json_number(f, p->day);
    fputs(", \"session\": ", f);
    if (p->session == ENGRAM_NONE)
        fputs("null", f);
    else
        engram_json_string(f, block_name(pr, p->session));
    fputs(", \"t_start_ms\": ", f);
    engram_json_number(f, (double)p->t_start * pr->dt);
    fputs(", \"t_end_ms\": ", f);
    engram_json_number(f, (double)p->t_end * pr->dt);
    fprintf(f, ", \"trials\": %llu, \"rewards\": %llu, \"rewards_evaluated\": %llu, ",
            (unsigned long long)p->trials, (unsigned long long)p->rewards,
            (unsigned long long)p->evaluated);
    write_measures(f, pr, k, p->row_first, p->row_end);
    fputc('}', f);
}

void engram_protocol_summary(FILE *f, const EngramNetwork *net)
{
    const EngramProtocol *pr = net->proto;
    if (!pr)
        return;
    const ProtoCore *c = &pr->core;
    fputs("  \"protocol\": {\"name\": ", f);
    engram_json_string(f, pr->name);
    fputs(", \"duration_ms\": ", f);
    engram_json_number(f, (double)pr->total_steps * pr->dt);
    fprintf(f, ", \"completed\": %s, \"trials\": %llu, \"rewards\": %llu, "
               "\"rewards_evaluated\": %llu,\n    ",
            pr->total_steps <= net->nsteps && !c->failed ? "true" : "false",
            (unsigned long long)c->trials, (unsigned long long)c->rewards,
            (unsigned long long)c->evaluated);
    write_measures(f, pr, ENGRAM_NONE, 0, c->nrows);
    fputs(",\n    \"phases\": [", f);
    for (uint64_t k = 0; k < c->nphases; k++) {
        fputs(k ? ",\n      " : "\n      ", f);
        write_phase(f, pr, (uint32_t)k);
    }
    fputs(c->nphases ? "\n    ]},\n" : "]},\n", f);
}

/* ---- the human summary ------------------------------------------------------------------- */

void engram_protocol_print(FILE *out, const EngramNetwork *net)
{
    const EngramProtocol *pr = net->proto;
    if (!pr)
        return;
    fprintf(out, "protocol %s: %g ms%s, %llu trials, %llu of %llu rewards given, %llu rows\n",
            pr->name, (double)pr->total_steps * pr->dt,
            pr->total_steps > net->nsteps ? " (cut short by --duration)" : "",
            (unsigned long long)pr->core.trials, (unsigned long long)pr->core.rewards,
            (unsigned long long)pr->core.evaluated, (unsigned long long)pr->core.nrows);
}

/* ---- saving -------------------------------------------------------------------------------- */

#define SAVE_MAGIC "EPROTO01"

typedef struct SaveHeader {
    char magic[8];
    uint32_t index, nstmts, ncols, njit_doubles;
    uint32_t nvars, nprojs, nmods, nbufs;
    uint32_t max_depth, undo_cap, pending_cap, pad;
    uint64_t row_bytes;
    int64_t total_steps;
} SaveHeader;

typedef struct Out {
    uint8_t *b;
    size_t len, cap;
    bool oom;
} Out;

static void put(Out *o, const void *p, size_t n)
{
    if (o->oom || n == 0)
        return;
    if (engram_proto_grow((void **)&o->b, &o->cap, o->len + n, 1)) {
        o->oom = true;
        return;
    }
    memcpy(o->b + o->len, p, n);
    o->len += n;
}

static SaveHeader header_of(const EngramNetwork *net)
{
    const EngramProtocol *pr = net->proto;
    SaveHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SAVE_MAGIC, 8);
    h.index = pr->index;
    h.nstmts = pr->end - pr->first;
    h.ncols = pr->ncols;
    h.njit_doubles = pr->njit_doubles;
    h.nvars = pr->desc->nvars;
    h.nprojs = net->nprojs;
    h.nmods = net->mods.nmods;
    h.nbufs = pr->nbufs;
    h.max_depth = pr->max_depth;
    h.undo_cap = pr->undo_cap;
    h.pending_cap = pr->pending_cap;
    h.row_bytes = pr->row_bytes;
    h.total_steps = pr->total_steps;
    return h;
}

int engram_protocol_save(const EngramNetwork *net, void **bytes, size_t *len)
{
    const EngramProtocol *pr = net->proto;
    *bytes = NULL;
    *len = 0;
    if (!pr)
        return 0;
    const ProtoCore *c = &pr->core;
    SaveHeader h = header_of(net);
    Out o = {0};
    put(&o, &h, sizeof h);
    put(&o, c, sizeof *c);
    put(&o, pr->vars, h.nvars * sizeof *pr->vars);
    put(&o, pr->bound, h.nvars);
    put(&o, pr->proto_on, h.nprojs);
    put(&o, net->mods.baseline, h.nmods * sizeof *net->mods.baseline);
    put(&o, pr->frames, c->depth * sizeof *pr->frames);
    put(&o, pr->ctx, c->nctx * pr->row_bytes);
    put(&o, pr->pending, c->npending * sizeof *pr->pending);
    put(&o, pr->undo, c->undo_len * sizeof *pr->undo);
    put(&o, pr->stim, c->nstim * sizeof *pr->stim);
    put(&o, pr->cur, c->ncur * sizeof *pr->cur);
    put(&o, pr->rows, c->nrows * pr->row_bytes);
    put(&o, pr->phases, c->nphases * sizeof *pr->phases);
    put(&o, pr->records, c->nrecords * sizeof *pr->records);
    put(&o, pr->written, c->written_len);
    for (uint32_t k = 0; k < pr->nbufs; k++) {
        const ProtoSpikeBuf *b = &pr->bufs[k];
        uint64_t n = b->len - b->head;
        put(&o, &n, sizeof n);
        if (n) {
            put(&o, b->step + b->head, n * sizeof *b->step);
            put(&o, b->id + b->head, n * sizeof *b->id);
        }
    }
    if (o.oom) {
        free(o.b);
        return -1;
    }
    *bytes = o.b;
    *len = o.len;
    return 0;
}

/* ---- loading -------------------------------------------------------------------------------- */

typedef struct In {
    const uint8_t *b;
    size_t len, at;
    bool bad;
} In;

static void get(In *in, void *p, size_t n)
{
    if (in->bad || n > in->len - in->at) {
        in->bad = true;
        return;
    }
    if (n)
        memcpy(p, in->b + in->at, n);
    in->at += n;
}

/* An array of n elements into *arr, grown to hold them. */
static void get_grown(In *in, void **arr, size_t *cap, uint64_t n, size_t elem)
{
    if (in->bad || n > (in->len - in->at) / (elem ? elem : 1) ||
        engram_proto_grow(arr, cap, (size_t)n + 1, elem)) {
        in->bad = true;
        return;
    }
    get(in, *arr, (size_t)n * elem);
}

static bool core_fits(const EngramProtocol *pr, const ProtoCore *c)
{
    return c->depth <= pr->max_depth && c->nctx <= pr->max_depth + 1 &&
           c->npending <= pr->pending_cap && c->undo_len <= pr->undo_cap;
}

/* A statement of the protocol (or ENGRAM_NONE where none_ok). */
static bool stmt_in(const EngramProtocol *pr, uint32_t s, bool none_ok)
{
    return (none_ok && s == ENGRAM_NONE) || (s >= pr->first && s < pr->end);
}

static bool row_sane(const EngramProtocol *pr, uint8_t *row)
{
    const ProtoRowHead *h = engram_row_head(row);
    return stmt_in(pr, h->phase, true) && stmt_in(pr, h->session, true) &&
           h->kind <= PROTO_CTX_TOP;
}

/* Undo entries, pending records, rows, phases and records index what exists. */
static bool log_sane(const EngramNetwork *net, const EngramProtocol *pr)
{
    const ProtoCore *c = &pr->core;
    for (uint32_t k = 0; k < c->undo_len; k++) {
        const ProtoUndo *u = &pr->undo[k];
        if (u->kind > PROTO_UNDO_BACKGROUND ||
            (u->kind == PROTO_UNDO_SET && u->index >= net->mods.nmods) ||
            (u->kind == PROTO_UNDO_PLASTICITY && u->index >= net->nprojs))
            return false;
    }
    for (uint32_t k = 0; k < c->npending; k++)
        if (!stmt_in(pr, pr->pending[k].stmt, false) || pr->pending[k].depth >= c->depth ||
            pr->m->stmts[pr->pending[k].stmt].kind != ENGRAM_STMT_RECORD)
            return false;
    for (uint64_t r = 0; r < c->nrows; r++)
        if (!row_sane(pr, row_at(pr, r)))
            return false;
    for (uint32_t k = 0; k < c->nctx; k++)
        if (!row_sane(pr, pr->ctx + (size_t)k * pr->row_bytes))
            return false;
    for (uint64_t k = 0; k < c->nphases; k++) {
        const ProtoPhase *p = &pr->phases[k];
        if (!stmt_in(pr, p->stmt, false) || !stmt_in(pr, p->session, true) ||
            p->row_first > p->row_end || p->row_end > c->nrows)
            return false;
    }
    for (uint64_t k = 0; k < c->nrecords; k++) {
        const ProtoRecord *r = &pr->records[k];
        if ((r->phase != ENGRAM_NONE && r->phase >= c->nphases) ||
            r->measure >= pr->m->hdr->nmeasures)
            return false;
    }
    return true;
}

/* Frames and stimuli refer to statements and neurons that exist. */
static bool state_sane(const EngramNetwork *net, const EngramProtocol *pr)
{
    if (!log_sane(net, pr))
        return false;
    for (uint32_t k = 0; k < pr->core.depth; k++) {
        const ProtoFrame *f = &pr->frames[k];
        if (f->stmt < pr->first || f->stmt >= pr->end || f->child > pr->m->stmts[f->stmt].end ||
            (f->phase != ENGRAM_NONE && f->phase >= pr->core.nphases))
            return false;
    }
    for (uint64_t k = 0; k < pr->core.nstim; k++) {
        const EngramStim *s = &pr->stim[k];
        if (s->pop >= net->npops || s->lo > s->hi || s->hi > net->pops[s->pop].size)
            return false;
    }
    for (uint64_t k = 0; k < pr->core.ncur; k++) {
        const EngramCurrentRt *c = &pr->cur[k];
        if (c->pop >= net->npops || pr->iext[c->pop] != c->state || c->lo > c->hi ||
            c->hi > net->pops[c->pop].size)
            return false;
    }
    return true;
}

static void load_bufs(In *in, EngramProtocol *pr)
{
    for (uint32_t k = 0; k < pr->nbufs && !in->bad; k++) {
        ProtoSpikeBuf *b = &pr->bufs[k];
        uint64_t n = 0;
        get(in, &n, sizeof n);
        b->head = b->len = 0;
        if (in->bad || n > (in->len - in->at) / 12) {
            in->bad = true;
            return;
        }
        size_t cap = (size_t)n + 1024;
        free(b->step);
        free(b->id);
        b->step = malloc(cap * sizeof *b->step);
        b->id = malloc(cap * sizeof *b->id);
        b->cap = b->step && b->id ? cap : 0;
        if (!b->cap) {
            in->bad = true;
            return;
        }
        get(in, b->step, (size_t)n * sizeof *b->step);
        get(in, b->id, (size_t)n * sizeof *b->id);
        b->len = (size_t)n;
    }
}

/* After the arrays: the network follows the saved switches and baselines. */
static void apply_loaded(EngramNetwork *net, const double *baselines)
{
    EngramProtocol *pr = net->proto;
    for (uint32_t j = 0; j < net->nprojs; j++) {
        if (!net->projs[j].plastic)
            continue;
        bool on = pr->param_on[j] && pr->proto_on[j];
        for (uint32_t t = 0; t < net->nthreads; t++) {
            net->tprojs[t][j].handlers_on = on;
            net->tprojs[t][j].ps.plastic = on ? 1 : 0;
        }
    }
    memcpy(net->mods.baseline, baselines, net->mods.nmods * sizeof *baselines);
}

int engram_protocol_load(EngramNetwork *net, const void *bytes, size_t len, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    if (!pr)
        return 0;
    SaveHeader want = header_of(net), got;
    In in = {bytes, len, 0, false};
    get(&in, &got, sizeof got);
    if (in.bad || memcmp(got.magic, SAVE_MAGIC, 8) != 0)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "the checkpoint holds no state of protocol %s "
                           "(it was written without a protocol: restore it with --protocol none)",
                           pr->name);
    if (got.index != want.index)
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "the checkpoint was written by protocol %s, not %s (--protocol)",
                           got.index < pr->m->hdr->nprotocols
                               ? engram_model_str(pr->m, pr->m->protocols[got.index].name)
                               : "?",
                           pr->name);
    if (memcmp(&got, &want, sizeof got) != 0)
        return engram_fail(err, ENGRAM_EXIT_MODEL, "the checkpoint's protocol state does not fit "
                           "protocol %s with these parameters", pr->name);
    ProtoCore c;
    get(&in, &c, sizeof c);
    double *baselines = malloc((want.nmods + 1) * sizeof *baselines);
    if (!baselines)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    if (!in.bad && !core_fits(pr, &c))
        in.bad = true;
    get(&in, pr->vars, want.nvars * sizeof *pr->vars);
    get(&in, pr->bound, want.nvars);
    get(&in, pr->proto_on, want.nprojs);
    get(&in, baselines, want.nmods * sizeof *baselines);
    get(&in, pr->frames, (size_t)c.depth * sizeof *pr->frames);
    get(&in, pr->ctx, (size_t)c.nctx * pr->row_bytes);
    get(&in, pr->pending, (size_t)c.npending * sizeof *pr->pending);
    get(&in, pr->undo, (size_t)c.undo_len * sizeof *pr->undo);
    get_grown(&in, (void **)&pr->stim, &pr->stim_cap, c.nstim, sizeof *pr->stim);
    get_grown(&in, (void **)&pr->cur, &pr->cur_cap, c.ncur, sizeof *pr->cur);
    get_grown(&in, (void **)&pr->rows, &pr->rows_cap, c.nrows, pr->row_bytes);
    get_grown(&in, (void **)&pr->phases, &pr->phases_cap, c.nphases, sizeof *pr->phases);
    get_grown(&in, (void **)&pr->records, &pr->records_cap, c.nrecords, sizeof *pr->records);
    get_grown(&in, (void **)&pr->written, &pr->written_cap, c.written_len, 1);
    if (!in.bad && c.written_len && pr->written[c.written_len - 1] != '\0')
        in.bad = true;   /* the names end in '\0' */
    if (!in.bad)
        pr->core = c;
    load_bufs(&in, pr);
    if (in.bad || in.at != in.len || !state_sane(net, pr)) {
        free(baselines);
        return engram_fail(err, ENGRAM_EXIT_MODEL,
                           "the checkpoint's protocol state is damaged or incomplete");
    }
    apply_loaded(net, baselines);
    free(baselines);
    return 0;
}
