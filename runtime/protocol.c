/*
 * protocol.c - the protocol interpreter (rt_protocol.h; docs/language.md
 * sections 15-16).
 *
 * A protocol is a tree of statements in preorder.  The interpreter walks it
 * with an explicit stack of frames, one per open BLOCK or REPEAT iteration
 * (a scope), and a clock `now` in steps.  At the start of each step it runs
 * statements until one waits (a cue, a rest, a block's closing wait): the
 * wait sets `wake`, and nothing happens until the step loop reaches it.
 * Conditions never change time, so the same walk without running anything
 * (the dry walk) gives the protocol's length before the network exists,
 * and how many scopes it opens (bounded: a loop that takes no time would
 * otherwise spin at one step).
 *
 * A scope undoes, when it closes, what SET, PLASTICITY and BACKGROUND did in
 * it (an undo log, newest first).  Trial contexts hold the row that MEASURE
 * statements fill: each iteration of a trials REPEAT opens one; outside
 * trials, a named block does; the top statement always does.  A row is kept
 * when its context closes, if a MEASURE ran in it.  Each execution of a
 * named block is a phase entry of summary.json.  Measures, records and the
 * spike buffers are in protocol_measure.c, stimuli and currents in
 * stimuli.c, outputs and the saved state in protocol_output.c.
 *
 * Everything here runs on thread 0 while the other threads wait, and the
 * same way on every rank.
 *
 * Order: messages and expressions, the dry walk, selection, init, scopes,
 * statements, the interpreter loop, finish and free.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_checkpoint.h"
#include "rt_protocol.h"

#define MAX_NESTING 1000        /* deeper protocols are refused (the walk recurses) */
#define MAX_STEPS 4.0e15        /* longest protocol in steps (exact in a double) */
#define MAX_CKPT_NAME 200       /* longest checkpoint name: its temporary file name must fit */
#define CKPT_NAME_BUF 256       /* room for a name, with a {var} that passes the limit */
#define MAX_SCOPES 1.0e8        /* most blocks and iterations a protocol may open: a loop
                                   that takes no time would spin at one step */

/* ---- messages and expressions ----------------------------------------------------- */

/* What a statement sees: parameters, loop variables and (conditions) measures. */
typedef struct ProtoEnv {
    const EngramModel *m;
    const EngramProtocolDesc *d;
    const double *params;
    double dt;
    const double *vars;
    const double *mvals;
} ProtoEnv;

static int env_vfail(const ProtoEnv *e, uint32_t stmt, int code, EngramError *err,
                     const char *fmt, va_list ap)
{
    char msg[800];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return engram_fail(err, code, "protocol %s, line %u: %s", engram_model_str(e->m, e->d->name),
                       e->m->stmts[stmt].line, msg);
}

static int env_fail(const ProtoEnv *e, uint32_t stmt, EngramError *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int env_fail(const ProtoEnv *e, uint32_t stmt, EngramError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = env_vfail(e, stmt, ENGRAM_EXIT_MODEL, err, fmt, ap);
    va_end(ap);
    return rc;
}

static ProtoEnv env_of(const EngramProtocol *pr, const double *params)
{
    return (ProtoEnv){pr->m, pr->desc, params, pr->dt, pr->vars, pr->mvals};
}

int engram_proto_fail(const EngramProtocol *pr, uint32_t stmt, int code, EngramError *err,
                      const char *fmt, ...)
{
    ProtoEnv e = env_of(pr, NULL);
    va_list ap;
    va_start(ap, fmt);
    int rc = env_vfail(&e, stmt, code, err, fmt, ap);
    va_end(ap);
    return rc;
}

static double env_eval(const ProtoEnv *e, EngramCode code)
{
    EngramEvalCtx c;
    engram_eval_ctx_init(&c, e->params, e->dt);
    c.vars = e->vars;
    c.nvars = e->d->nvars;
    c.measures = e->mvals;
    c.nmeasures = e->mvals ? e->m->hdr->nmeasures : 0;
    return engram_eval(e->m->insns, code, &c);
}

double engram_proto_eval(const EngramProtocol *pr, EngramCode code, const double *params)
{
    ProtoEnv e = env_of(pr, params);
    return env_eval(&e, code);
}

/* A duration code in steps, round(d / dt); empty is 0. */
static int env_dur(const ProtoEnv *e, uint32_t stmt, EngramCode code, const char *what,
                   int64_t *out, EngramError *err)
{
    *out = 0;
    if (code.count == 0)
        return 0;
    double v = env_eval(e, code);
    if (!(v >= 0) || !isfinite(v))
        return env_fail(e, stmt, err, "%s %g ms is not a time >= 0", what, v);
    double s = floor(v / e->dt + 0.5);
    if (s > MAX_STEPS)
        return env_fail(e, stmt, err, "%s %g ms is too long (%.3g steps of %g ms)", what, v, s,
                        e->dt);
    *out = (int64_t)s;
    return 0;
}

/* A rate code (1/ms): finite and >= 0. */
static int env_rate(const ProtoEnv *e, uint32_t stmt, EngramCode code, double *out,
                    EngramError *err)
{
    *out = env_eval(e, code);
    if (!(*out >= 0) || !isfinite(*out))
        return env_fail(e, stmt, err, "rate %g Hz is not a rate >= 0", *out * 1000.0);
    return 0;
}

/* A REPEAT's range, rounded to whole numbers (last < first: no iteration). */
static int env_range(const ProtoEnv *e, uint32_t stmt, int64_t *first, int64_t *last,
                     EngramError *err)
{
    const EngramStmtDesc *x = &e->m->stmts[stmt];
    double a = floor(env_eval(e, x->a) + 0.5), b = floor(env_eval(e, x->b) + 0.5);
    if (!isfinite(a) || !isfinite(b) || fabs(a) > MAX_STEPS || fabs(b) > MAX_STEPS)
        return env_fail(e, stmt, err, "repeat range %g..%g is not a range of whole numbers", a, b);
    *first = (int64_t)a;
    *last = (int64_t)b;
    return 0;
}

/* The interval of a sequence in steps (>= 1). */
static int env_interval(const ProtoEnv *e, uint32_t stmt, uint32_t seq, int64_t *out,
                        EngramError *err)
{
    const EngramSequenceDesc *q = &e->m->sequences[seq];
    double T = e->params[q->interval_param], s = floor(T / e->dt + 0.5);
    if (!(T > 0) || !isfinite(T) || s < 1 || s > MAX_STEPS)
        return env_fail(e, stmt, err, "sequence %s: interval %g ms must be a time of at least "
                        "one step (%g ms)", engram_model_str(e->m, q->name), T, e->dt);
    *out = (int64_t)s;
    return 0;
}

static int add_steps(const ProtoEnv *e, uint32_t stmt, int64_t *acc, double more,
                     EngramError *err)
{
    if ((double)*acc + more > MAX_STEPS)
        return env_fail(e, stmt, err, "the protocol is too long (more than %.3g steps)",
                        MAX_STEPS);
    *acc += (int64_t)more;
    return 0;
}

/* ---- the dry walk ------------------------------------------------------------------ */

/* Whether a statement's own time depends on loop variable `slot`. */
static bool time_reads_var(const EngramModel *m, const EngramStmtDesc *x, uint32_t slot)
{
    EngramCode codes[3] = {{0, 0}, {0, 0}, {0, 0}};
    switch ((EngramStmtKind)x->kind) {
    case ENGRAM_STMT_REPEAT: codes[0] = x->a; codes[1] = x->b; break;
    case ENGRAM_STMT_BLOCK: case ENGRAM_STMT_CUE: case ENGRAM_STMT_TEACH:
    case ENGRAM_STMT_CURRENT: case ENGRAM_STMT_REST:
        codes[0] = x->b;
        break;
    default: break;
    }
    for (int k = 0; k < 3; k++)
        for (uint32_t j = 0; j < codes[k].count; j++) {
            const EngramInsn *in = &m->insns[codes[k].first + j];
            if (in->op == ENGRAM_OP_VAR && in->arg == slot)
                return true;
        }
    return false;
}

/* REPEAT i: does the time of its body read its variable? */
static bool body_reads_var(const EngramModel *m, uint32_t i)
{
    const EngramStmtDesc *x = &m->stmts[i];
    if (x->var == ENGRAM_NONE)
        return false;
    for (uint32_t k = i + 1; k < x->end; k++)
        if (time_reads_var(m, &m->stmts[k], x->var))
            return true;
    return false;
}

typedef struct Walk {
    ProtoEnv e;
    double *vars;
    EngramError *err;
} Walk;

/* What a subtree costs: its length in steps and the scopes it opens. */
typedef struct Cost {
    int64_t len;
    double scopes;
} Cost;

static int add_scopes(const ProtoEnv *e, uint32_t stmt, double *acc, double more,
                      EngramError *err)
{
    if (*acc + more > MAX_SCOPES)
        return env_fail(e, stmt, err, "the protocol runs more than %.3g blocks and loop "
                        "iterations", MAX_SCOPES);
    *acc += more;
    return 0;
}

static int walk_stmt(Walk *w, uint32_t i, int depth, Cost *c);

static int walk_children(Walk *w, uint32_t i, int depth, Cost *c)
{
    const EngramStmtDesc *st = w->e.m->stmts;
    *c = (Cost){0, 0};
    for (uint32_t k = i + 1; k < st[i].end; k = st[k].end) {
        Cost s;
        int rc = walk_stmt(w, k, depth + 1, &s);
        if (rc || (rc = add_steps(&w->e, k, &c->len, (double)s.len, w->err)) ||
            (rc = add_scopes(&w->e, k, &c->scopes, s.scopes, w->err)))
            return rc;
    }
    return 0;
}

static int walk_repeat(Walk *w, uint32_t i, int depth, Cost *c)
{
    const EngramStmtDesc *x = &w->e.m->stmts[i];
    int64_t first, last;
    Cost body;
    int rc = env_range(&w->e, i, &first, &last, w->err);
    *c = (Cost){0, 0};
    if (rc || last < first)
        return rc;
    double n = (double)last - (double)first + 1;
    if ((rc = add_scopes(&w->e, i, &c->scopes, n, w->err)))
        return rc;
    double saved = x->var == ENGRAM_NONE ? 0 : w->vars[x->var];
    if (!body_reads_var(w->e.m, i)) {   /* the same time every iteration */
        if (x->var != ENGRAM_NONE)
            w->vars[x->var] = (double)first;
        rc = walk_children(w, i, depth, &body);
        if (!rc)
            rc = add_steps(&w->e, i, &c->len, (double)body.len * n, w->err);
        if (!rc)
            rc = add_scopes(&w->e, i, &c->scopes, body.scopes * n, w->err);
    } else {
        for (int64_t v = first; v <= last && !rc; v++) {
            w->vars[x->var] = (double)v;
            rc = walk_children(w, i, depth, &body);
            if (!rc)
                rc = add_steps(&w->e, i, &c->len, (double)body.len, w->err);
            if (!rc)
                rc = add_scopes(&w->e, i, &c->scopes, body.scopes, w->err);
        }
    }
    if (x->var != ENGRAM_NONE)
        w->vars[x->var] = saved;
    return rc;
}

static int walk_stmt(Walk *w, uint32_t i, int depth, Cost *c)
{
    const EngramStmtDesc *x = &w->e.m->stmts[i];
    int64_t d = 0, T;
    int rc;
    *c = (Cost){0, 0};
    if (depth > MAX_NESTING)
        return env_fail(&w->e, i, w->err, "statements nested more than %d deep", MAX_NESTING);
    switch ((EngramStmtKind)x->kind) {
    case ENGRAM_STMT_BLOCK:
        if ((rc = walk_children(w, i, depth, c)) ||
            (rc = env_dur(&w->e, i, x->b, "duration", &d, w->err)) ||
            (rc = add_scopes(&w->e, i, &c->scopes, 1, w->err)))
            return rc;
        return add_steps(&w->e, i, &c->len, (double)d, w->err);
    case ENGRAM_STMT_REPEAT:
        return walk_repeat(w, i, depth, c);
    case ENGRAM_STMT_CUE: case ENGRAM_STMT_CURRENT: case ENGRAM_STMT_REST:
        return env_dur(&w->e, i, x->b, "duration", &c->len, w->err);
    case ENGRAM_STMT_TEACH:
        if ((rc = env_interval(&w->e, i, x->ref, &T, w->err)) ||
            (rc = env_dur(&w->e, i, x->b, "duration", &d, w->err)))
            return rc;
        return add_steps(&w->e, i, &c->len, (double)T * w->e.m->sequences[x->ref].nelems, w->err);
    default:
        return 0;
    }
}

int engram_protocol_length(const EngramModel *m, uint32_t index, const double *params,
                           int64_t *nsteps, EngramError *err)
{
    const EngramProtocolDesc *d = &m->protocols[index];
    Walk w = {{m, d, params, params[m->hdr->dt_param], NULL, NULL}, NULL, err};
    w.vars = malloc((d->nvars + 1) * sizeof *w.vars);
    if (!w.vars)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t k = 0; k < d->nvars; k++)
        w.vars[k] = NAN;
    w.e.vars = w.vars;
    Cost c;
    int rc = walk_stmt(&w, d->first_stmt, 0, &c);
    *nsteps = c.len;
    free(w.vars);
    return rc;
}

/* ---- selection ------------------------------------------------------------------------ */

int engram_protocol_select(const EngramModel *m, const char *name, uint32_t *index,
                           EngramError *err)
{
    uint32_t n = m->hdr->nprotocols;
    *index = ENGRAM_NONE;
    if (!name) {
        *index = n ? 0 : ENGRAM_NONE;
        return 0;
    }
    if (strcmp(name, "none") == 0)
        return 0;
    for (uint32_t k = 0; k < n; k++)
        if (strcmp(engram_model_str(m, m->protocols[k].name), name) == 0) {
            *index = k;
            return 0;
        }
    char list[700] = "";
    size_t o = 0;
    for (uint32_t k = 0; k < n && o < sizeof list - 8; k++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "",
                              engram_model_str(m, m->protocols[k].name));
    if (n == 0)
        return engram_fail(err, ENGRAM_EXIT_USAGE,
                           "--protocol %s: the model has no protocol (use --protocol none)", name);
    return engram_fail(err, ENGRAM_EXIT_USAGE,
                       "--protocol %s: unknown protocol; the model has: %s (or none)", name, list);
}

/* ---- init ------------------------------------------------------------------------------- */

static bool is_scope(const EngramStmtDesc *x)
{
    return x->kind == ENGRAM_STMT_BLOCK || x->kind == ENGRAM_STMT_REPEAT;
}

static bool is_trials(const EngramStmtDesc *x)
{
    return x->kind == ENGRAM_STMT_REPEAT && x->block == 1;
}

static uint8_t *flag_of(const EngramProtocol *pr, uint32_t stmt)
{
    return &pr->flags[stmt - pr->first];
}

/* Whether measure m needs the spikes of its population (all but WEIGHT). */
static bool measure_needs_spikes(const EngramModel *m, uint32_t measure)
{
    return m->measures[measure].kind != ENGRAM_MEASURE_WEIGHT;
}

/* (A recorded jitter reads the rows of its scope, not spikes.) */
static bool stmt_needs_spikes(const EngramModel *m, const EngramStmtDesc *x)
{
    if (x->kind == ENGRAM_STMT_MEASURE || x->kind == ENGRAM_STMT_RECORD) {
        for (uint32_t k = 0; k < x->nidx; k++) {
            uint32_t mi = m->idx[x->first_idx + k];
            if (measure_needs_spikes(m, mi) && !(x->kind == ENGRAM_STMT_RECORD &&
                                                 m->measures[mi].kind == ENGRAM_MEASURE_JITTER))
                return true;
        }
        return false;
    }
    if (x->kind != ENGRAM_STMT_REWARD)
        return false;
    for (uint32_t k = 0; k < x->cond.count; k++) {
        const EngramInsn *in = &m->insns[x->cond.first + k];
        if (in->op == ENGRAM_OP_MEASURE && measure_needs_spikes(m, in->arg))
            return true;
    }
    return false;
}

/* The trial context a statement's measures go to: the nearest ancestor that opens one. */
static uint32_t owner_ctx(const EngramProtocol *pr, uint32_t stmt)
{
    uint32_t a = pr->parent[stmt - pr->first];
    while (a != ENGRAM_NONE && !(*flag_of(pr, a) & PROTO_F_CTX))
        a = pr->parent[a - pr->first];
    return a == ENGRAM_NONE ? pr->first : a;
}

/* Parents, nesting depth, flags and the sizes of the fixed stacks. */
static int analyse(EngramProtocol *pr, EngramError *err)
{
    const EngramModel *m = pr->m;
    uint32_t n = pr->end - pr->first, sp = 0;
    uint32_t *stack = malloc((n + 1) * sizeof *stack);
    pr->parent = malloc((n + 1) * sizeof *pr->parent);
    pr->flags = calloc(n + 1, 1);
    if (!stack || !pr->parent || !pr->flags) {
        free(stack);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    }
    uint32_t nplastic = 0;
    for (uint32_t j = 0; j < m->hdr->nprojs; j++)
        nplastic += m->projs[j].plastic != 0;
    for (uint32_t i = pr->first; i < pr->end; i++) {
        const EngramStmtDesc *x = &m->stmts[i];
        while (sp && i >= m->stmts[stack[sp - 1]].end)
            sp--;
        uint32_t p = sp ? stack[sp - 1] : ENGRAM_NONE;
        uint8_t *f = flag_of(pr, i);
        pr->parent[i - pr->first] = p;
        if (p != ENGRAM_NONE && ((*flag_of(pr, p) & PROTO_F_IN_TRIALS) || is_trials(&m->stmts[p])))
            *f |= PROTO_F_IN_TRIALS;
        if (x->kind == ENGRAM_STMT_BLOCK && x->block != ENGRAM_BLOCK_PLAIN)
            *f |= PROTO_F_NAMED;
        if (i == pr->first || is_trials(x) ||
            ((*f & PROTO_F_NAMED) && !(*f & PROTO_F_IN_TRIALS)))
            *f |= PROTO_F_CTX;
        if (x->kind == ENGRAM_STMT_REPEAT && body_reads_var(m, i))
            *f |= PROTO_F_OWN_VAR;
        if (is_scope(x)) {
            stack[sp++] = i;
            if (sp > pr->max_depth)
                pr->max_depth = sp;
        }
        if (x->kind == ENGRAM_STMT_SET || x->kind == ENGRAM_STMT_BACKGROUND)
            pr->undo_cap++;
        if (x->kind == ENGRAM_STMT_PLASTICITY)
            pr->undo_cap += x->nidx ? x->nidx : nplastic;
        if (x->kind == ENGRAM_STMT_RECORD)
            pr->pending_cap++;
    }
    free(stack);
    for (uint32_t i = pr->first; i < pr->end; i++) {
        const EngramStmtDesc *x = &m->stmts[i];
        if (!stmt_needs_spikes(m, x))
            continue;
        if (x->kind == ENGRAM_STMT_RECORD)
            *flag_of(pr, pr->parent[i - pr->first]) |= PROTO_F_SCOPE_NEEDS;
        else
            *flag_of(pr, owner_ctx(pr, i)) |= PROTO_F_CTX_NEEDS;
    }
    if (m->stmts[pr->first].kind != ENGRAM_STMT_BLOCK)
        return engram_proto_fail(pr, pr->first, ENGRAM_EXIT_MODEL, err,
                                 "the protocol's top statement is not a block");
    return 0;
}

static const char *pop_name(const EngramNetwork *net, uint32_t pop)
{
    return net->pops[pop].name;
}

/* Every ensemble's neurons [ens_lo, ens_hi), group by group, from the
 * shared definition (ensembles.c); ens_first[g] is group g's first. */
static int resolve_ensembles(const EngramNetwork *net, EngramProtocol *pr, EngramError *err)
{
    const EngramModel *m = pr->m;
    uint32_t ng = m->hdr->nens_groups;
    uint64_t total = 0;
    uint32_t *sizes = calloc(net->npops + 1, sizeof *sizes);
    pr->ens_first = calloc(ng + 1, sizeof *pr->ens_first);
    pr->ens_count = calloc(ng + 1, sizeof *pr->ens_count);
    if (!sizes || !pr->ens_first || !pr->ens_count) {
        free(sizes);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    }
    for (uint32_t i = 0; i < net->npops; i++)
        sizes[i] = net->pops[i].size;
    int rc = 0;
    for (uint32_t g = 0; g < ng && !rc; g++) {
        rc = engram_ensemble_count(m, net->params, sizes, g, &pr->ens_count[g], err);
        pr->ens_first[g] = (uint32_t)total;
        total += pr->ens_count[g];
    }
    pr->ens_lo = rc ? NULL : malloc((total + 1) * sizeof *pr->ens_lo);
    pr->ens_hi = rc ? NULL : malloc((total + 1) * sizeof *pr->ens_hi);
    if (!rc && (!pr->ens_lo || !pr->ens_hi))
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the ensembles");
    for (uint32_t g = 0; g < ng && !rc; g++)
        for (uint32_t k = 0; k < pr->ens_count[g] && !rc; k++)
            rc = engram_ensemble_range(m, net->params, sizes, g, k, &pr->ens_lo[pr->ens_first[g] + k],
                                       &pr->ens_hi[pr->ens_first[g] + k], err);
    free(sizes);
    return rc;
}

/* Sequences as EngramSeqSpec; seq_ok says whether the measures can use one. */
static int resolve_sequences(const EngramNetwork *net, EngramProtocol *pr, EngramError *err)
{
    const EngramModel *m = pr->m;
    uint32_t nq = m->hdr->nsequences;
    uint64_t total = 0;
    for (uint32_t q = 0; q < nq; q++)
        total += m->sequences[q].nelems;
    pr->seq = calloc(nq + 1, sizeof *pr->seq);
    pr->seq_ok = calloc(nq + 1, 1);
    pr->seq_lo = malloc((total + 1) * sizeof *pr->seq_lo);
    pr->seq_hi = malloc((total + 1) * sizeof *pr->seq_hi);
    if (!pr->seq || !pr->seq_ok || !pr->seq_lo || !pr->seq_hi)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the sequences");
    uint32_t at = 0, longest = 1;
    for (uint32_t q = 0; q < nq; q++) {
        const EngramSequenceDesc *x = &m->sequences[q];
        EngramSeqSpec *s = &pr->seq[q];
        for (uint32_t k = 0; k < x->nelems; k++) {
            uint32_t e = m->idx[x->first_elem + k];
            if (e >= pr->ens_count[x->group])
                return engram_fail(err, ENGRAM_EXIT_MODEL,
                                   "sequence %s: element %u is ensemble %u of %s, which has %u",
                                   engram_model_str(m, x->name), k, e,
                                   pop_name(net, m->ens_groups[x->group].pop),
                                   pr->ens_count[x->group]);
            pr->seq_lo[at + k] = pr->ens_lo[pr->ens_first[x->group] + e];
            pr->seq_hi[at + k] = pr->ens_hi[pr->ens_first[x->group] + e];
        }
        double T = net->params[x->interval_param], W = net->params[x->window_param];
        double th = net->params[x->threshold_param];
        double ts = floor(T / net->dt + 0.5), ws = floor(W / net->dt + 0.5);
        *s = (EngramSeqSpec){x->nelems, pr->seq_lo + at, pr->seq_hi + at,
                             ts >= 1 && ts <= MAX_STEPS ? (int64_t)ts : 0, th,
                             ws <= MAX_STEPS ? (int64_t)(ws < 1 ? 1 : ws) : 0, net->dt};
        pr->seq_ok[q] = T > 0 && s->interval_steps >= 1 && W > 0 && isfinite(W) &&
                        s->window_steps >= 1 && th > 0 && isfinite(th);
        if (x->nelems > longest)
            longest = x->nelems;
        at += x->nelems;
    }
    pr->onset = malloc((longest + 1) * sizeof *pr->onset);
    return pr->onset ? 0 : engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
}

static uint32_t state_index(const EngramModel *m, const EngramPopDesc *p, const char *name)
{
    for (uint32_t s = 0; s < p->nstates; s++)
        if (strcmp(engram_model_str(m, m->states[p->first_state + s].name), name) == 0)
            return s;
    return ENGRAM_NONE;
}

/* Per population: stimulus port and weight, I_ext; per projection: PROJ.plastic. */
static int resolve_pops(const EngramNetwork *net, EngramProtocol *pr, EngramError *err)
{
    const EngramModel *m = pr->m;
    uint32_t np = net->npops, nj = net->nprojs;
    pr->stim_port = malloc((np + 1) * sizeof *pr->stim_port);
    pr->stim_weight = calloc(np + 1, sizeof *pr->stim_weight);
    pr->iext = malloc((np + 1) * sizeof *pr->iext);
    pr->param_on = calloc(nj + 1, 1);
    if (!pr->stim_port || !pr->stim_weight || !pr->iext || !pr->param_on)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t i = 0; i < np; i++) {
        pr->stim_port[i] = ENGRAM_NONE;
        pr->iext[i] = m->pops[i].kind == ENGRAM_POP_NEURON
                          ? state_index(m, &m->pops[i], "I_ext") : ENGRAM_NONE;
    }
    for (uint32_t k = 0; k < m->hdr->nstimuli; k++) {
        const EngramStimulusDesc *s = &m->stimuli[k];
        double w = net->params[s->weight_param];
        if (!isfinite(w))
            return engram_fail(err, ENGRAM_EXIT_MODEL, "stimulus of %s: weight %s = %g is not "
                               "finite", pop_name(net, s->pop),
                               engram_model_str(m, m->params[s->weight_param].name), w);
        pr->stim_port[s->pop] = s->port;
        pr->stim_weight[s->pop] = w;
    }
    for (uint32_t j = 0; j < nj; j++)
        pr->param_on[j] = net->projs[j].plastic && net->projs[j].handlers_on;
    return 0;
}

static uint32_t find_name(const EngramModel *m, const uint32_t *list, uint32_t n, uint32_t measure)
{
    const char *nm = engram_model_str(m, m->measures[measure].name);
    for (uint32_t k = 0; k < n; k++)
        if (strcmp(engram_model_str(m, m->measures[list[k]].name), nm) == 0)
            return k;
    return ENGRAM_NONE;
}

/* A measure's population needs a spike buffer. */
static void want_buffer(EngramProtocol *pr, uint32_t measure)
{
    const EngramModel *m = pr->m;
    const EngramMeasureDesc *x = &m->measures[measure];
    if (x->kind == ENGRAM_MEASURE_WEIGHT)
        return;
    uint32_t pop = x->seq != ENGRAM_NONE ? m->ens_groups[m->sequences[x->seq].group].pop : x->a.pop;
    if (pr->buf_of[pop] == ENGRAM_NONE)
        pr->buf_of[pop] = pr->nbufs++;
}

static void layout_measure(EngramProtocol *pr, uint32_t measure)
{
    const EngramModel *m = pr->m;
    const EngramMeasureDesc *x = &m->measures[measure];
    if (x->kind == ENGRAM_MEASURE_JITTER) {
        if (pr->jit_of[measure] != ENGRAM_NONE)
            return;
        uint32_t j = find_name(m, pr->jit_measure, pr->njit, measure);
        if (j == ENGRAM_NONE) {
            j = pr->njit++;
            pr->jit_measure[j] = measure;
            pr->jit_off[j] = pr->njit_doubles;
            pr->njit_doubles += m->sequences[x->seq].nelems;
        }
        pr->jit_of[measure] = j;
    } else if (x->kind != ENGRAM_MEASURE_REPLAY && pr->col_of[measure] == ENGRAM_NONE) {
        uint32_t c = find_name(m, pr->col_measure, pr->ncols, measure);
        if (c == ENGRAM_NONE) {
            c = pr->ncols++;
            pr->col_measure[c] = measure;
        }
        pr->col_of[measure] = c;
    }
}

/* Columns (per-trial measures of MEASURE statements, by first appearance),
 * jitter slots, spike buffers and the row layout. */
static int layout_measures(const EngramNetwork *net, EngramProtocol *pr, EngramError *err)
{
    const EngramModel *m = pr->m;
    uint32_t nm = m->hdr->nmeasures, np = net->npops;
    pr->col_of = malloc((nm + 1) * sizeof *pr->col_of);
    pr->col_measure = malloc((nm + 1) * sizeof *pr->col_measure);
    pr->jit_of = malloc((nm + 1) * sizeof *pr->jit_of);
    pr->jit_measure = malloc((nm + 1) * sizeof *pr->jit_measure);
    pr->jit_off = malloc((nm + 1) * sizeof *pr->jit_off);
    pr->buf_of = malloc((np + 1) * sizeof *pr->buf_of);
    pr->mvals = malloc((nm + 1) * sizeof *pr->mvals);
    if (!pr->col_of || !pr->col_measure || !pr->jit_of || !pr->jit_measure || !pr->jit_off ||
        !pr->buf_of || !pr->mvals)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t k = 0; k < nm; k++) {
        pr->col_of[k] = pr->jit_of[k] = ENGRAM_NONE;
        pr->mvals[k] = NAN;
    }
    for (uint32_t i = 0; i < np; i++)
        pr->buf_of[i] = ENGRAM_NONE;
    for (uint32_t i = pr->first; i < pr->end; i++) {
        const EngramStmtDesc *x = &m->stmts[i];
        for (uint32_t k = 0; x->kind == ENGRAM_STMT_MEASURE && k < x->nidx; k++)
            layout_measure(pr, m->idx[x->first_idx + k]);
        for (uint32_t k = 0; x->kind == ENGRAM_STMT_RECORD && k < x->nidx; k++)
            want_buffer(pr, m->idx[x->first_idx + k]);
        for (uint32_t k = 0; x->kind == ENGRAM_STMT_MEASURE && k < x->nidx; k++)
            want_buffer(pr, m->idx[x->first_idx + k]);
        for (uint32_t k = 0; x->kind == ENGRAM_STMT_REWARD && k < x->cond.count; k++)
            if (m->insns[x->cond.first + k].op == ENGRAM_OP_MEASURE)
                want_buffer(pr, m->insns[x->cond.first + k].arg);
    }
    size_t b = sizeof(ProtoRowHead) + 8 * ((size_t)pr->ncols + pr->njit_doubles) + pr->ncols +
               pr->njit;
    pr->row_bytes = (b + 7) & ~(size_t)7;
    pr->bufs = calloc(pr->nbufs + 1, sizeof *pr->bufs);
    if (!pr->bufs)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (uint32_t i = 0; i < np; i++)
        if (pr->buf_of[i] != ENGRAM_NONE)
            pr->bufs[pr->buf_of[i]].pop = i;
    return 0;
}

/* A cue, teach or background on population pop can enter it. */
static int check_stim_pop(const EngramNetwork *net, const EngramProtocol *pr, uint32_t stmt,
                          uint32_t pop, EngramError *err)
{
    if (net->pops[pop].desc->kind != ENGRAM_POP_NEURON || pr->stim_port[pop] != ENGRAM_NONE)
        return 0;
    return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                             "%s has no `stimulus` declaration, so a cue, teach or background "
                             "cannot enter it (declare `stimulus %s weight W port P`)",
                             pop_name(net, pop), pop_name(net, pop));
}

/* `{var}` in a checkpoint name must name a loop variable of the protocol. */
static int check_template(const EngramProtocol *pr, uint32_t stmt, EngramError *err)
{
    const EngramModel *m = pr->m;
    const char *t = engram_model_str(m, m->stmts[stmt].name);
    if (!t[0])
        return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err, "a checkpoint needs a name");
    if (strlen(t) > MAX_CKPT_NAME)
        return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                                 "a checkpoint name has at most %d characters", MAX_CKPT_NAME);
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        const char *q = strchr(p, '}');
        bool found = false;
        for (uint32_t k = 0; q && k < pr->desc->nvars; k++) {
            const char *v = engram_model_str(m, m->idx[pr->desc->first_var + k]);
            found = found || (strlen(v) == (size_t)(q - p - 1) && memcmp(v, p + 1, q - p - 1) == 0);
        }
        if (!found)
            return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                                     "checkpoint name \"%s\": {...} must name a loop variable", t);
    }
    return 0;
}

static int check_measures_of(const EngramNetwork *net, const EngramProtocol *pr, uint32_t stmt,
                             EngramError *err)
{
    const EngramModel *m = pr->m;
    const EngramStmtDesc *x = &m->stmts[stmt];
    for (uint32_t k = 0; k < x->nidx; k++) {
        uint32_t mi = m->idx[x->first_idx + k];
        if (x->kind == ENGRAM_STMT_MEASURE && m->measures[mi].kind == ENGRAM_MEASURE_REPLAY)
            return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                                     "%s is measured over a whole block: use `record %s`",
                                     engram_model_str(m, m->measures[mi].name),
                                     engram_model_str(m, m->measures[mi].name));
        int rc = engram_proto_check_measure(net, mi, stmt, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_condition(const EngramNetwork *net, const EngramProtocol *pr, uint32_t stmt,
                           EngramError *err)
{
    const EngramModel *m = pr->m;
    const EngramStmtDesc *x = &m->stmts[stmt];
    for (uint32_t k = 0; k < x->cond.count; k++) {
        const EngramInsn *in = &m->insns[x->cond.first + k];
        if (in->op != ENGRAM_OP_MEASURE)
            continue;
        uint32_t kind = m->measures[in->arg].kind;
        if (kind == ENGRAM_MEASURE_JITTER || kind == ENGRAM_MEASURE_REPLAY)
            return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err,
                                     "a reward condition cannot read %s: it is not a measure "
                                     "of one trial", engram_model_str(m, m->measures[in->arg].name));
        int rc = engram_proto_check_measure(net, in->arg, stmt, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_stmt(const EngramNetwork *net, const EngramProtocol *pr, uint32_t i,
                      EngramError *err)
{
    const EngramModel *m = pr->m;
    const EngramStmtDesc *x = &m->stmts[i];
    uint32_t pop = x->target.pop;
    switch ((EngramStmtKind)x->kind) {
    case ENGRAM_STMT_CUE: case ENGRAM_STMT_BACKGROUND:
        return check_stim_pop(net, pr, i, pop, err);
    case ENGRAM_STMT_TEACH:
        return check_stim_pop(net, pr, i, m->ens_groups[m->sequences[x->ref].group].pop, err);
    case ENGRAM_STMT_CURRENT:
        if (pr->iext[pop] == ENGRAM_NONE)
            return engram_proto_fail(pr, i, ENGRAM_EXIT_MODEL, err,
                                     "a current needs a neuron population with a state variable "
                                     "I_ext; %s has none", pop_name(net, pop));
        return 0;
    case ENGRAM_STMT_REWARD:
        return check_condition(net, pr, i, err);
    case ENGRAM_STMT_PLASTICITY:
        for (uint32_t k = 0; k < x->nidx; k++)
            if (!m->projs[m->idx[x->first_idx + k]].plastic)
                return engram_proto_fail(pr, i, ENGRAM_EXIT_MODEL, err,
                                         "projection %s has no plasticity rule to switch",
                                         net->projs[m->idx[x->first_idx + k]].name);
        return 0;
    case ENGRAM_STMT_CHECKPOINT: case ENGRAM_STMT_RESTORE:
        return check_template(pr, i, err);
    case ENGRAM_STMT_MEASURE: case ENGRAM_STMT_RECORD:
        return check_measures_of(net, pr, i, err);
    default:
        return 0;
    }
}

/* The fixed stacks and the state that starts the protocol. */
static int allocate(const EngramNetwork *net, EngramProtocol *pr, EngramError *err)
{
    uint32_t nv = pr->desc->nvars, D = pr->max_depth + 1;
    pr->vars = malloc((nv + 1) * sizeof *pr->vars);
    pr->bound = calloc(nv + 1, 1);
    pr->is_day = calloc(nv + 1, 1);
    pr->proto_on = malloc(net->nprojs + 1);
    pr->frames = calloc(D, sizeof *pr->frames);
    pr->ctx = calloc(D, pr->row_bytes);
    pr->pending = calloc(pr->pending_cap + 1, sizeof *pr->pending);
    pr->undo = calloc(pr->undo_cap + 1, sizeof *pr->undo);
    if (!pr->vars || !pr->bound || !pr->is_day || !pr->proto_on || !pr->frames || !pr->ctx ||
        !pr->pending || !pr->undo)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the protocol");
    for (uint32_t k = 0; k < nv; k++) {
        pr->vars[k] = NAN;
        pr->is_day[k] = strcmp(engram_model_str(pr->m, pr->m->idx[pr->desc->first_var + k]),
                               "day") == 0;
    }
    memset(pr->proto_on, 1, net->nprojs + 1);
    pr->core.keep_from = ENGRAM_STEP_NEVER;
    return 0;
}

int engram_protocol_init(EngramNetwork *net, uint32_t index, const char *out_dir,
                         EngramError *err)
{
    net->proto = NULL;
    if (index == ENGRAM_NONE)
        return 0;
    EngramProtocol *pr = calloc(1, sizeof *pr);
    if (!pr)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the protocol");
    net->proto = pr;
    const EngramModel *m = net->model;
    pr->m = m;
    pr->index = index;
    pr->desc = &m->protocols[index];
    pr->name = engram_model_str(m, pr->desc->name);
    pr->first = pr->desc->first_stmt;
    pr->end = pr->first + pr->desc->nstmts;
    pr->dt = net->dt;
    pr->out_dir = strdup(out_dir ? out_dir : ".");
    int rc = pr->out_dir ? 0 : engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    if (!rc)
        rc = analyse(pr, err);
    if (!rc)
        rc = resolve_ensembles(net, pr, err);
    if (!rc)
        rc = resolve_sequences(net, pr, err);
    if (!rc)
        rc = resolve_pops(net, pr, err);
    if (!rc)
        rc = layout_measures(net, pr, err);
    for (uint32_t i = pr->first; i < pr->end && !rc; i++)
        rc = check_stmt(net, pr, i, err);
    if (!rc)
        rc = allocate(net, pr, err);
    if (!rc)
        rc = engram_protocol_length(m, index, net->params, &pr->total_steps, err);
    if (!rc)
        rc = engram_stimuli_init(net, err);
    if (rc)
        engram_protocol_free(net);
    return rc;
}

/* ---- scopes ---------------------------------------------------------------------------- */

static const EngramStmtDesc *stmt_of(const EngramProtocol *pr, const ProtoFrame *f)
{
    return &pr->m->stmts[f->stmt];
}

/* The innermost named frame among frames [0, k), or -1. */
static int named_below(const EngramProtocol *pr, uint32_t k)
{
    while (k-- > 0)
        if (pr->frames[k].phase != ENGRAM_NONE)
            return (int)k;
    return -1;
}

/* The value of the innermost loop variable called `day`, or NaN. */
static double current_day(const EngramProtocol *pr)
{
    for (uint32_t k = pr->core.depth; k-- > 0;) {
        const ProtoFrame *f = &pr->frames[k];
        const EngramStmtDesc *x = stmt_of(pr, f);
        if (x->kind == ENGRAM_STMT_REPEAT && x->var != ENGRAM_NONE && pr->is_day[x->var])
            return (double)f->iter;
    }
    return NAN;
}

static uint8_t *ctx_top(EngramProtocol *pr)
{
    return pr->ctx + (size_t)(pr->core.nctx - 1) * pr->row_bytes;
}

/* Opens the trial context of the top frame (frames[depth - 1]). */
static void ctx_open(EngramProtocol *pr, uint32_t kind, int64_t trial)
{
    uint8_t *row = pr->ctx + (size_t)pr->core.nctx++ * pr->row_bytes;
    memset(row, 0, pr->row_bytes);
    ProtoRowHead *h = engram_row_head(row);
    int ph = named_below(pr, pr->core.depth);
    int se = ph < 0 ? -1 : named_below(pr, (uint32_t)ph);
    *h = (ProtoRowHead){ph < 0 ? ENGRAM_NONE : pr->frames[ph].stmt,
                        se < 0 ? ENGRAM_NONE : pr->frames[se].stmt, 0, kind, trial,
                        pr->core.now, pr->core.now, current_day(pr)};
    double *v = engram_row_vals(pr, row);
    for (uint32_t k = 0; k < pr->ncols + pr->njit_doubles; k++)
        v[k] = NAN;
}

/* Closes the innermost trial context: its row is kept if a MEASURE ran. */
static int ctx_close(EngramProtocol *pr, EngramError *err)
{
    uint8_t *row = ctx_top(pr);
    ProtoRowHead *h = engram_row_head(row);
    pr->core.nctx--;
    if (h->kind == PROTO_CTX_TRIAL)
        pr->core.trials++;
    if (!h->measured)
        return 0;
    if (engram_proto_grow((void **)&pr->rows, &pr->rows_cap, pr->core.nrows + 1, pr->row_bytes))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the trial rows");
    memcpy(pr->rows + pr->core.nrows++ * pr->row_bytes, row, pr->row_bytes);
    return 0;
}

static int phase_open(EngramProtocol *pr, ProtoFrame *f, EngramError *err)
{
    if (engram_proto_grow((void **)&pr->phases, &pr->phases_cap, pr->core.nphases + 1,
                          sizeof *pr->phases))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory for the phases");
    int se = named_below(pr, pr->core.depth - 1);
    const ProtoCore *c = &pr->core;
    pr->phases[c->nphases] = (ProtoPhase){f->stmt, stmt_of(pr, f)->block,
                                          se < 0 ? ENGRAM_NONE : pr->frames[se].stmt, 1,
                                          current_day(pr), c->now, c->now, c->nrows, c->nrows,
                                          c->trials, c->rewards, c->evaluated};
    f->phase = (uint32_t)pr->core.nphases++;
    return 0;
}

static void phase_close(EngramProtocol *pr, const ProtoFrame *f)
{
    ProtoPhase *p = &pr->phases[f->phase];
    const ProtoCore *c = &pr->core;
    p->t_end = c->now;
    p->row_end = c->nrows;
    p->trials = c->trials - p->trials;
    p->rewards = c->rewards - p->rewards;
    p->evaluated = c->evaluated - p->evaluated;
    p->open = 0;
}

/* The oldest step an open scope will measure from, and the buffers trimmed to it. */
static void update_keep(EngramProtocol *pr)
{
    int64_t from = ENGRAM_STEP_NEVER;
    for (uint32_t k = 0; k < pr->core.depth; k++)
        if (pr->frames[k].keep && pr->frames[k].t_start < from)
            from = pr->frames[k].t_start;
    pr->core.keep_from = from;
    engram_proto_trim(pr);
}

/* The projection's handlers run when both PROJ.plastic and the protocol say so. */
static void apply_plastic(EngramNetwork *net, uint32_t j)
{
    const EngramProtocol *pr = net->proto;
    bool on = pr->param_on[j] && pr->proto_on[j];
    for (uint32_t t = 0; t < net->nthreads; t++) {
        net->tprojs[t][j].handlers_on = on;
        net->tprojs[t][j].ps.plastic = on ? 1 : 0;
    }
}

static void undo_to(EngramNetwork *net, uint32_t base)
{
    EngramProtocol *pr = net->proto;
    while (pr->core.undo_len > base) {
        const ProtoUndo *u = &pr->undo[--pr->core.undo_len];
        if (u->kind == PROTO_UNDO_SET) {
            net->mods.baseline[u->index] = u->value;   /* the level decays back on its own */
        } else if (u->kind == PROTO_UNDO_PLASTICITY) {
            pr->proto_on[u->index] = u->value != 0;
            apply_plastic(net, u->index);
        } else {
            engram_stim_stop(pr, u->stim, pr->core.now);
        }
    }
}

/* Opens frames[depth - 1] as a scope at now (a block, or one iteration). */
static int scope_open(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    ProtoFrame *f = &pr->frames[pr->core.depth - 1];
    const EngramStmtDesc *x = stmt_of(pr, f);
    uint8_t fl = *flag_of(pr, f->stmt);
    f->child = f->stmt + 1;
    f->tail = 0;
    f->undo_base = pr->core.undo_len;
    f->t_start = pr->core.now;
    f->rows_base = pr->core.nrows;
    f->phase = ENGRAM_NONE;
    f->ctx = (fl & PROTO_F_CTX) != 0;
    f->keep = (f->ctx && (fl & PROTO_F_CTX_NEEDS)) || (fl & PROTO_F_SCOPE_NEEDS);
    int rc = 0;
    if (fl & PROTO_F_NAMED)
        rc = phase_open(pr, f, err);
    if (f->ctx)
        ctx_open(pr, is_trials(x) ? PROTO_CTX_TRIAL : (f->stmt == pr->first ? PROTO_CTX_TOP
                                                                             : PROTO_CTX_BLOCK),
                 is_trials(x) ? f->iter - f->first + 1 : 0);
    if (f->keep)
        update_keep(pr);
    return rc;
}

/* Closes the scope of frames[depth - 1] at now: its trial row, its
 * records, the undo log back to its start, its phase. */
static int scope_close(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    uint32_t k = pr->core.depth - 1;
    ProtoFrame *f = &pr->frames[k];
    int rc = f->ctx ? ctx_close(pr, err) : 0;
    if (!rc)
        rc = engram_proto_records(net, k, err);
    undo_to(net, f->undo_base);
    if (f->phase != ENGRAM_NONE)
        phase_close(pr, f);
    f->ctx = 0;
    if (f->keep) {
        f->keep = 0;
        update_keep(pr);
    }
    return rc;
}

static void bind_var(EngramProtocol *pr, uint32_t slot, double v, uint8_t bound)
{
    if (slot == ENGRAM_NONE)
        return;
    pr->vars[slot] = v;
    pr->bound[slot] = bound;
}

static int push_frame(EngramNetwork *net, uint32_t stmt, int64_t first, int64_t last,
                      EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[stmt];
    if (pr->core.depth >= pr->max_depth)   /* cannot happen: max_depth is the nesting */
        return engram_proto_fail(pr, stmt, ENGRAM_EXIT_MODEL, err, "nesting too deep");
    ProtoFrame *f = &pr->frames[pr->core.depth++];
    memset(f, 0, sizeof *f);
    f->stmt = stmt;
    f->first = f->iter = first;
    f->last = last;
    if (x->kind == ENGRAM_STMT_REPEAT && x->var != ENGRAM_NONE) {
        f->saved_var = pr->vars[x->var];
        f->saved_bound = pr->bound[x->var];
        bind_var(pr, x->var, (double)first, 1);
    }
    return scope_open(net, err);
}

static void pop_frame(EngramProtocol *pr)
{
    ProtoFrame *f = &pr->frames[--pr->core.depth];
    const EngramStmtDesc *x = stmt_of(pr, f);
    if (x->kind == ENGRAM_STMT_REPEAT)
        bind_var(pr, x->var, f->saved_var, (uint8_t)f->saved_bound);
}

/* ---- statements --------------------------------------------------------------------------- */

static void set_cue(EngramProtocol *pr)
{
    engram_row_head(ctx_top(pr))->t0 = pr->core.now;
}

static uint32_t stream_of(const EngramProtocol *pr, uint32_t stmt)
{
    return pr->desc->stream + (stmt - pr->first);
}

static int exec_cue(EngramNetwork *net, uint32_t i, bool background, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    ProtoEnv e = env_of(pr, net->params);
    double rate;
    int64_t d = 0;
    uint32_t lo, hi;
    int rc = env_rate(&e, i, x->a, &rate, err);
    if (!rc && !background)
        rc = env_dur(&e, i, x->b, "duration", &d, err);
    if (!rc)
        rc = engram_proto_target(net, &x->target, i, &lo, &hi, err);
    if (rc)
        return rc;
    int64_t now = pr->core.now, until = background ? ENGRAM_STEP_NEVER : now + d;
    uint64_t id = pr->core.next_stim;
    EngramStim s = {0, x->target.pop, lo, hi, stream_of(pr, i), 0, 0, now, until, rate, 0, 0, 0};
    if ((rc = engram_stim_add(net, s, err)))
        return rc;
    if (background) {
        pr->undo[pr->core.undo_len++] = (ProtoUndo){PROTO_UNDO_BACKGROUND, 0, id, 0};
        return 0;
    }
    set_cue(pr);
    pr->core.wake = until;
    return 0;
}

static int exec_teach(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramModel *m = pr->m;
    const EngramStmtDesc *x = &m->stmts[i];
    const EngramSequenceDesc *q = &m->sequences[x->ref];
    ProtoEnv e = env_of(pr, net->params);
    double rate;
    int64_t T, on;
    int rc = env_rate(&e, i, x->a, &rate, err);
    if (!rc)
        rc = env_interval(&e, i, x->ref, &T, err);
    if (!rc)
        rc = env_dur(&e, i, x->b, "duration", &on, err);
    if (rc)
        return rc;
    if (x->b.count == 0)
        on = T;
    int64_t now = pr->core.now;
    uint32_t pop = m->ens_groups[q->group].pop;
    for (uint32_t k = 0; k < q->nelems && !rc; k++) {
        EngramStim s = {0, pop, pr->seq[x->ref].lo[k], pr->seq[x->ref].hi[k], stream_of(pr, i), k,
                        0, now + (int64_t)k * T, now + (int64_t)k * T + on, rate, 0, 0, 0};
        rc = engram_stim_add(net, s, err);
    }
    set_cue(pr);
    pr->core.wake = now + (int64_t)q->nelems * T;
    return rc;
}

static int exec_current(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    ProtoEnv e = env_of(pr, net->params);
    int64_t d;
    uint32_t lo, hi;
    double amp = env_eval(&e, x->a);
    if (!isfinite(amp))
        return env_fail(&e, i, err, "current %g pA is not finite", amp);
    int rc = env_dur(&e, i, x->b, "duration", &d, err);
    if (!rc)
        rc = engram_proto_target(net, &x->target, i, &lo, &hi, err);
    if (rc || d == 0)
        return rc;
    int64_t now = pr->core.now;
    EngramCurrentRt c = {x->target.pop, lo, hi, pr->iext[x->target.pop], now + d};
    pr->core.wake = now + d;
    return engram_current_start(net, c, amp, err);
}

/* The measures a condition reads, over the current trial so far. */
static int condition_measures(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    const ProtoRowHead *h = engram_row_head(ctx_top(pr));
    for (uint32_t k = 0; k < x->cond.count; k++) {
        const EngramInsn *in = &pr->m->insns[x->cond.first + k];
        if (in->op != ENGRAM_OP_MEASURE)
            continue;
        int rc = engram_proto_measure(net, in->arg, i, h->t0, pr->core.now, &pr->mvals[in->arg],
                                      err);
        if (rc)
            return rc;
    }
    return 0;
}

static int exec_reward(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    ProtoEnv e = env_of(pr, net->params);
    pr->core.evaluated++;
    if (x->cond.count) {
        int rc = condition_measures(net, i, err);
        if (rc)
            return rc;
        double v = env_eval(&e, x->cond);
        if (v == 0 || isnan(v))   /* an undefined measure gives no reward */
            return 0;
    }
    double amount = env_eval(&e, x->a);
    int64_t delay;
    if (!isfinite(amount))
        return env_fail(&e, i, err, "reward amount %g is not finite", amount);
    int rc = env_dur(&e, i, x->b, "delay", &delay, err);
    if (rc)
        return rc;
    pr->core.rewards++;
    return engram_modulators_schedule(net, pr->core.now + delay, x->ref, amount, err);
}

static int exec_set(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    ProtoEnv e = env_of(pr, net->params);
    double v = env_eval(&e, x->a);
    if (!isfinite(v))
        return env_fail(&e, i, err, "level %g of %s is not finite", v,
                        engram_model_str(pr->m, pr->m->modulators[x->ref].name));
    pr->undo[pr->core.undo_len++] =
        (ProtoUndo){PROTO_UNDO_SET, x->ref, 0, net->mods.baseline[x->ref]};
    net->mods.baseline[x->ref] = net->mods.level[x->ref] = v;
    return 0;
}

static void switch_plastic(EngramNetwork *net, uint32_t j, uint32_t on)
{
    EngramProtocol *pr = net->proto;
    pr->undo[pr->core.undo_len++] = (ProtoUndo){PROTO_UNDO_PLASTICITY, j, 0, pr->proto_on[j]};
    pr->proto_on[j] = (uint8_t)on;
    apply_plastic(net, j);
}

static void exec_plasticity(EngramNetwork *net, uint32_t i)
{
    const EngramModel *m = net->model;
    const EngramStmtDesc *x = &m->stmts[i];
    for (uint32_t k = 0; k < x->nidx; k++)
        switch_plastic(net, m->idx[x->first_idx + k], x->ref);
    for (uint32_t j = 0; x->nidx == 0 && j < net->nprojs; j++)
        if (net->projs[j].plastic)
            switch_plastic(net, j, x->ref);
}

/* The checkpoint's name: the template with {var} replaced by the variable's value. */
static int checkpoint_name(const EngramProtocol *pr, uint32_t i, char *out, size_t n,
                           EngramError *err)
{
    const EngramModel *m = pr->m;
    const char *t = engram_model_str(m, m->stmts[i].name);
    size_t o = 0;
    for (const char *p = t; *p && o <= MAX_CKPT_NAME && o + 32 < n; p++) {
        const char *q = *p == '{' ? strchr(p, '}') : NULL;
        if (!q) {
            out[o++] = *p == '/' ? '_' : *p;
            continue;
        }
        for (uint32_t k = 0; k < pr->desc->nvars; k++) {
            const char *v = engram_model_str(m, m->idx[pr->desc->first_var + k]);
            if (strlen(v) != (size_t)(q - p - 1) || memcmp(v, p + 1, q - p - 1) != 0)
                continue;
            if (!pr->bound[k])
                return engram_proto_fail(pr, i, ENGRAM_EXIT_MODEL, err,
                                         "checkpoint \"%s\": variable %s is not in scope here", t, v);
            o += (size_t)snprintf(out + o, n - o, "%.0f", pr->vars[k]);
        }
        p = q;
    }
    if (o > MAX_CKPT_NAME)   /* cut, two names could end in one file */
        return engram_proto_fail(pr, i, ENGRAM_EXIT_MODEL, err, "checkpoint \"%s\": the name "
                                 "is longer than %d characters", t, MAX_CKPT_NAME);
    out[o] = '\0';
    return 0;
}

/* The checkpoints this run wrote, as pairs "NAME\0PATH\0": where checkpoint
 * `name` is, or NULL when this run did not write it (a file of that name may
 * be left over from an earlier run; a run resumed into another folder keeps
 * the paths of the checkpoints written before it). */
static const char *written_path(const EngramProtocol *pr, const char *name)
{
    for (uint64_t at = 0; at < pr->core.written_len;) {
        const char *n = pr->written + at, *path = n + strlen(n) + 1;
        if (path >= pr->written + pr->core.written_len)
            return NULL;   /* a damaged list: a name without its path */
        if (strcmp(n, name) == 0)
            return path;
        at = (uint64_t)(path - pr->written) + strlen(path) + 1;
    }
    return NULL;
}

/* Remembers checkpoint `name` at `path` (the latest write of a name wins). */
static int note_written(EngramProtocol *pr, const char *name, const char *path, EngramError *err)
{
    const char *old = written_path(pr, name);
    if (old && strcmp(old, path) == 0)
        return 0;
    size_t n = strlen(name) + 1, m = strlen(path) + 1;
    if (engram_proto_grow((void **)&pr->written, &pr->written_cap, pr->core.written_len + n + m, 1))
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    if (old) {   /* drop the old pair, then append the new one */
        char *a = (char *)old - n, *b = (char *)old + strlen(old) + 1;
        memmove(a, b, (size_t)(pr->written + pr->core.written_len - b));
        pr->core.written_len -= (uint64_t)(b - a);
    }
    memcpy(pr->written + pr->core.written_len, name, n);
    memcpy(pr->written + pr->core.written_len + n, path, m);
    pr->core.written_len += n + m;
    return 0;
}

/* OUT/checkpoints/NAME.h5 of statement i (malloc'd into *path), its folder
 * and its name. */
static int checkpoint_path(EngramProtocol *pr, uint32_t i, char **path, char **dir,
                           char name[CKPT_NAME_BUF], EngramError *err)
{
    *path = malloc(strlen(pr->out_dir) + 512);
    *dir = malloc(strlen(pr->out_dir) + 32);
    int rc = *path && *dir ? 0 : engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    if (!rc)
        rc = checkpoint_name(pr, i, name, CKPT_NAME_BUF, err);
    if (!rc) {
        sprintf(*dir, "%s/checkpoints", pr->out_dir);
        snprintf(*path, strlen(pr->out_dir) + 512, "%s/%s.h5", *dir, name);
    }
    return rc;
}

/* `restore NAME`: the network's state as it was at `checkpoint NAME`; the
 * clock, the recordings and the protocol go on. */
static int exec_restore(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    char *path = NULL, *dir = NULL, name[CKPT_NAME_BUF];
    int rc = checkpoint_path(pr, i, &path, &dir, name, err);
    const char *where = rc ? NULL : written_path(pr, name);   /* the same on every rank */
    if (!rc && !where)
        rc = engram_proto_fail(pr, i, ENGRAM_EXIT_MODEL, err, "restore: no checkpoint %s was "
                               "written earlier in this run", path);
    if (!rc)
        rc = engram_checkpoint_restore_state(net, where, pr->core.now, err);
    free(path);
    free(dir);
    return rc;
}

static int exec_checkpoint(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    char *path = NULL, *dir = NULL, name[CKPT_NAME_BUF];
    int rc = checkpoint_path(pr, i, &path, &dir, name, err);
    if (!rc)   /* before saving: a run resumed from it may restore it too */
        rc = note_written(pr, name, path, err);
    if (!rc && net->rank == 0)
        rc = engram_make_dirs(dir, err);
    if (net->nranks > 1)
        rc = engram_comm_agree(rc, net->rank, err);
    void *bytes = NULL;
    size_t len = 0;
    if (!rc && engram_protocol_save(net, &bytes, &len) != 0)
        rc = engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory saving the protocol's state");
    if (net->nranks > 1)
        rc = engram_comm_agree(rc, net->rank, err);
    if (!rc)
        rc = engram_checkpoint_write(net, path, pr->core.now, bytes, len, err);
    free(bytes);
    free(path);
    free(dir);
    return rc;
}

static int exec_leaf(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    ProtoEnv e = env_of(pr, net->params);
    int64_t d;
    int rc;
    switch ((EngramStmtKind)x->kind) {
    case ENGRAM_STMT_CUE: return exec_cue(net, i, false, err);
    case ENGRAM_STMT_BACKGROUND: return exec_cue(net, i, true, err);
    case ENGRAM_STMT_TEACH: return exec_teach(net, i, err);
    case ENGRAM_STMT_CURRENT: return exec_current(net, i, err);
    case ENGRAM_STMT_REST:
        if ((rc = env_dur(&e, i, x->b, "duration", &d, err)))
            return rc;
        pr->core.wake = pr->core.now + d;
        return 0;
    case ENGRAM_STMT_REWARD: return exec_reward(net, i, err);
    case ENGRAM_STMT_SET: return exec_set(net, i, err);
    case ENGRAM_STMT_PLASTICITY: exec_plasticity(net, i); return 0;
    case ENGRAM_STMT_CHECKPOINT: return exec_checkpoint(net, i, err);
    case ENGRAM_STMT_RESTORE: return exec_restore(net, i, err);
    case ENGRAM_STMT_MEASURE: return engram_proto_measure_stmt(net, i, err);
    case ENGRAM_STMT_RECORD:
        pr->pending[pr->core.npending++] = (ProtoPending){i, pr->core.depth - 1};
        return 0;
    default:
        return engram_proto_fail(pr, i, ENGRAM_EXIT_MODEL, err, "statement not supported");
    }
}

/* ---- the interpreter loop -------------------------------------------------------------- */

/* Starts statement i: a scope is pushed, a leaf runs. */
static int enter(EngramNetwork *net, uint32_t i, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    const EngramStmtDesc *x = &pr->m->stmts[i];
    if (x->kind == ENGRAM_STMT_BLOCK)
        return push_frame(net, i, 0, 0, err);
    if (x->kind != ENGRAM_STMT_REPEAT)
        return exec_leaf(net, i, err);
    ProtoEnv e = env_of(pr, net->params);
    int64_t first, last;
    int rc = env_range(&e, i, &first, &last, err);
    if (rc || last < first)
        return rc;
    return push_frame(net, i, first, last, err);
}

/* A block whose children are done: its closing wait, then it closes. */
static int block_end(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    ProtoFrame *f = &pr->frames[pr->core.depth - 1];
    const EngramStmtDesc *x = stmt_of(pr, f);
    if (!f->tail && x->b.count) {
        ProtoEnv e = env_of(pr, net->params);
        int64_t d;
        f->tail = 1;
        int rc = env_dur(&e, f->stmt, x->b, "duration", &d, err);
        pr->core.wake = pr->core.now + d;
        return rc;
    }
    int rc = scope_close(net, err);
    pop_frame(pr);
    return rc;
}

/* A repeat iteration whose children are done: the next one, or the end. */
static int repeat_next(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    int rc = scope_close(net, err);
    ProtoFrame *f = &pr->frames[pr->core.depth - 1];
    if (rc || f->iter >= f->last) {
        pop_frame(pr);
        return rc;
    }
    f->iter++;
    bind_var(pr, stmt_of(pr, f)->var, (double)f->iter, 1);
    return scope_open(net, err);
}

static int run(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    ProtoCore *c = &pr->core;
    int rc = 0;
    if (!c->started) {
        c->started = 1;
        rc = enter(net, pr->first, err);
    }
    while (!rc && c->depth > 0 && c->wake <= c->now) {
        ProtoFrame *f = &pr->frames[c->depth - 1];
        const EngramStmtDesc *x = stmt_of(pr, f);
        if (f->child < x->end) {
            uint32_t i = f->child;
            f->child = pr->m->stmts[i].end;
            rc = enter(net, i, err);
        } else {
            rc = x->kind == ENGRAM_STMT_BLOCK ? block_end(net, err) : repeat_next(net, err);
        }
    }
    if (!rc && c->depth == 0)
        c->done = 1;
    return rc;
}

int engram_protocol_advance(EngramNetwork *net, int64_t step, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    if (!pr || pr->core.failed)
        return 0;
    if (pr->core.done && pr->core.nstim)
        engram_stim_expire(pr, step);   /* a taught element may outlast the protocol */
    if (pr->core.done || step < pr->core.wake)
        return 0;
    pr->core.now = step;
    engram_currents_expire(net, step, false);
    engram_stim_expire(pr, step);
    int rc = run(net, err);
    if (rc)
        pr->core.failed = 1;
    return rc;
}

/* ---- finish and free ------------------------------------------------------------------------ */

int engram_protocol_finish(EngramNetwork *net, EngramError *err)
{
    EngramProtocol *pr = net->proto;
    if (!pr || pr->core.failed)
        return 0;
    int rc = engram_protocol_advance(net, net->nsteps, err);
    pr->core.now = net->nsteps;
    while (!rc && pr->core.depth > 0) {   /* cut short by --duration */
        rc = scope_close(net, err);
        pop_frame(pr);
    }
    engram_currents_expire(net, net->nsteps, true);
    pr->core.done = 1;
    if (rc)
        pr->core.failed = 1;
    return rc;
}

static void free_ptrs(void **arr, size_t n)
{
    for (size_t k = 0; arr && k < n; k++)
        free(arr[k]);
}

void engram_protocol_free(EngramNetwork *net)
{
    EngramProtocol *pr = net->proto;
    if (!pr)
        return;
    engram_stimuli_free(net);
    for (uint32_t b = 0; pr->bufs && b < pr->nbufs; b++) {
        free(pr->bufs[b].step);
        free(pr->bufs[b].id);
    }
    void *arrs[] = {pr->parent, pr->flags, pr->out_dir, pr->ens_first, pr->ens_count, pr->ens_lo,
                    pr->ens_hi, pr->seq, pr->seq_lo, pr->seq_hi, pr->seq_ok, pr->stim_port,
                    pr->iext, pr->stim_weight, pr->col_of, pr->col_measure, pr->jit_of,
                    pr->jit_measure, pr->jit_off, pr->buf_of, pr->is_day, pr->param_on, pr->mvals,
                    pr->onset, pr->vars, pr->bound, pr->proto_on, pr->frames, pr->ctx,
                    pr->pending, pr->undo, pr->stim, pr->cur, pr->rows, pr->phases, pr->records,
                    pr->written, pr->bufs};
    free_ptrs(arrs, sizeof arrs / sizeof arrs[0]);
    free(pr);
    net->proto = NULL;
}
