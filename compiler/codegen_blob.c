/*
 * codegen_blob.c - the model tables: serialises the IrModel with the blob
 * writer (engram_rt.h, runtime/blob.c) and emits the three symbols the
 * runtime starts from:
 *
 *   engram_model_blob       [N x i8] constant, 16-aligned
 *   engram_model_blob_size  i64 constant
 *   engram_model_kernels    [K x ptr] constant: kernel id -> function
 *
 * A plastic projection appends its variables to the var table (synapse
 * variables, pre traces, post traces, in rule order) and names its on-post
 * and every kernels; the modulator, release and weight-recording tables
 * follow the IR's order.
 *
 * Expressions the runtime evaluates (parameter defaults, initial values,
 * exact-integration coefficients) become EngramInsn bytecode in postfix
 * order: operands first, then the operator.
 *
 * RNG streams are numbered here, in table order: population i owns stream
 * i, projection j the four streams npops + 4j (+0 connectivity, +1
 * weights, +2 delays, +3 plastic variables), drive k the stream after all projections, release
 * r the stream after all drives, sequence q (replay shuffles) the stream
 * after all releases, and each protocol statement one stream after the
 * sequences' (its stimuli), protocols in order.  A model
 * edit that adds a population therefore reseeds later tables; the numbering
 * never depends on anything but the model text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_internal.h"
#include "engram_config.h"

typedef struct BlobGen {
    CgCtx *c;
    EngramBlobWriter *w;
    uint32_t nvars;       /* rows of the var table so far */
} BlobGen;

static uint32_t blob_index(int v)
{
    return v < 0 ? ENGRAM_NONE : (uint32_t)v;
}

static uint32_t blob_str(BlobGen *g, const char *s)
{
    return engram_blob_string(g->w, s ? s : "");
}

static uint32_t blob_unit(BlobGen *g, EngramDim dim)
{
    char buf[64];
    return blob_str(g, engram_dim_unit(dim, buf, sizeof buf));
}

/* ---- bytecode ------------------------------------------------------------------ */

static void blob_op(BlobGen *g, EngramOpcode op, uint32_t arg, double imm)
{
    EngramInsn insn = {.op = (uint32_t)op, .arg = arg, .imm = imm};
    engram_blob_insn(g->w, insn);
}

static int blob_arity(EngramBuiltin fn)
{
    if (fn == ENGRAM_FN_CLIP)
        return 3;
    if (fn == ENGRAM_FN_MIN || fn == ENGRAM_FN_MAX || fn == ENGRAM_FN_POW)
        return 2;
    return 1;
}

static EngramOpcode blob_binop(OpKind op)
{
    switch (op) {
    case OP_ADD: return ENGRAM_OP_ADD;
    case OP_SUB: return ENGRAM_OP_SUB;
    case OP_MUL: return ENGRAM_OP_MUL;
    case OP_DIV: return ENGRAM_OP_DIV;
    case OP_POW: return ENGRAM_OP_POW;
    case OP_LT:  return ENGRAM_OP_LT;
    case OP_LE:  return ENGRAM_OP_LE;
    case OP_GT:  return ENGRAM_OP_GT;
    case OP_GE:  return ENGRAM_OP_GE;
    case OP_EQ:  return ENGRAM_OP_EQ;
    case OP_NE:  return ENGRAM_OP_NE;
    case OP_AND: return ENGRAM_OP_AND;
    default:     return ENGRAM_OP_OR;
    }
}

static void blob_insns(BlobGen *g, const IrExpr *e);

/* normal(mean, sd[, min, max]): a NaN bound means "none". */
static void blob_normal(BlobGen *g, const IrExpr *e)
{
    blob_insns(g, e->a);
    blob_insns(g, e->b);
    if (!e->c && !e->d) {
        blob_op(g, ENGRAM_OP_NORMAL, 0, 0);
        return;
    }
    if (e->c)
        blob_insns(g, e->c);
    else
        blob_op(g, ENGRAM_OP_CONST, 0, NAN);
    if (e->d)
        blob_insns(g, e->d);
    else
        blob_op(g, ENGRAM_OP_CONST, 0, NAN);
    blob_op(g, ENGRAM_OP_NORMAL_CLIP, 0, 0);
}

static void blob_insns(BlobGen *g, const IrExpr *e)
{
    switch (e->kind) {
    case IR_CONST: blob_op(g, ENGRAM_OP_CONST, 0, e->value); break;
    case IR_PARAM: blob_op(g, ENGRAM_OP_PARAM, blob_index(e->index), 0); break;
    case IR_INDEX: blob_op(g, ENGRAM_OP_INDEX, 0, 0); break;
    case IR_DT:    blob_op(g, ENGRAM_OP_DT, 0, 0); break;
    case IR_UNARY:
        blob_insns(g, e->a);
        blob_op(g, e->op == OP_NOT ? ENGRAM_OP_NOT : ENGRAM_OP_NEG, 0, 0);
        break;
    case IR_BINARY:
        blob_insns(g, e->a);
        blob_insns(g, e->b);
        blob_op(g, blob_binop(e->op), 0, 0);
        break;
    case IR_CALL: {
        const IrExpr *args[3] = {e->a, e->b, e->c};
        for (int k = 0; k < blob_arity(e->fn); k++)
            blob_insns(g, args[k]);
        blob_op(g, ENGRAM_OP_CALL, (uint32_t)e->fn, 0);
        break;
    }
    case IR_UNIFORM:
        blob_insns(g, e->a);
        blob_insns(g, e->b);
        blob_op(g, ENGRAM_OP_UNIFORM, 0, 0);
        break;
    case IR_NORMAL: blob_normal(g, e); break;
    case IR_VAR: blob_op(g, ENGRAM_OP_VAR, blob_index(e->index), 0); break;
    case IR_MEASURE: blob_op(g, ENGRAM_OP_MEASURE, blob_index(e->index), 0); break;
    default:   /* IR_STATE, IR_TIME: not known before the simulation runs */
        cg_error(g->c, e->span, "this value is not known before the simulation starts");
        blob_op(g, ENGRAM_OP_CONST, 0, 0);
        break;
    }
}

/* The code of one expression (empty for NULL). */
static EngramCode blob_code(BlobGen *g, const IrExpr *e)
{
    EngramCode code = {0, 0};
    if (!e)
        return code;
    code.first = engram_blob_insn_count(g->w);
    blob_insns(g, e);
    code.count = engram_blob_insn_count(g->w) - code.first;
    return code;
}

/* ---- tables ------------------------------------------------------------------------- */

static void blob_params(BlobGen *g)
{
    const IrModel *m = g->c->m;
    for (int k = 0; k < m->nparams; k++) {
        const IrParam *p = &m->params[k];
        EngramParamDesc d = {.name = blob_str(g, p->path), .unit = blob_unit(g, p->dim),
                             .dim_time = p->dim.time, .dim_voltage = p->dim.voltage,
                             .dim_current = p->dim.current, .flags = p->flags};
        if (p->flags & ENGRAM_PARAM_LIST) {
            d.list_count = (uint32_t)p->nlist;
            for (int j = 0; j < p->nlist; j++) {
                uint32_t row = engram_blob_list_value(g->w, p->list[j]);
                if (j == 0)
                    d.list_first = row;
            }
        } else {
            d.value = blob_code(g, p->value);
        }
        engram_blob_param(g->w, &d);
    }
}

static void blob_states_ports(BlobGen *g, const IrPop *pop, EngramPopDesc *d)
{
    d->nstates = (uint32_t)pop->nstates;
    for (int s = 0; s < pop->nstates; s++) {
        const IrState *st = &pop->states[s];
        EngramStateDesc sd = {.name = blob_str(g, st->name), .unit = blob_unit(g, st->dim),
                              .init = blob_code(g, st->init), .held = st->held};
        uint32_t row = engram_blob_state(g->w, &sd);
        if (s == 0)
            d->first_state = row;
    }
    d->nports = (uint32_t)pop->nports;
    for (int p = 0; p < pop->nports; p++) {
        EngramPortDesc pd = {.name = blob_str(g, pop->ports[p].name),
                             .state = blob_index(pop->ports[p].state)};
        uint32_t row = engram_blob_port(g->w, &pd);
        if (p == 0)
            d->first_port = row;
    }
}

/* The linear system of an exact population: variables, then the
 * nlinear x (nlinear + 1) coefficient codes (a missing one is 0). */
static void blob_linear(BlobGen *g, const IrPop *pop, EngramPopDesc *d)
{
    if (pop->method != ENGRAM_METHOD_EXACT || pop->nlinear <= 0)
        return;
    d->nlinear = (uint32_t)pop->nlinear;
    for (int r = 0; r < pop->nlinear; r++) {
        uint32_t row = engram_blob_lin_var(g->w, (uint32_t)pop->lin_vars[r]);
        if (r == 0)
            d->first_lin_var = row;
    }
    int n = pop->nlinear * (pop->nlinear + 1);
    for (int j = 0; j < n; j++) {
        EngramCode code = blob_code(g, pop->coef ? pop->coef[j] : NULL);
        if (code.count == 0) {
            code.first = engram_blob_insn_count(g->w);
            blob_op(g, ENGRAM_OP_CONST, 0, 0.0);
            code.count = 1;
        }
        uint32_t row = engram_blob_coef(g->w, code);
        if (j == 0)
            d->first_coef = row;
    }
}

/* An exact population without ODEs integrates nothing: method none. */
static EngramMethod blob_method(const IrPop *pop)
{
    if (pop->kind != ENGRAM_POP_NEURON)
        return ENGRAM_METHOD_NONE;
    if (pop->method == ENGRAM_METHOD_EXACT && pop->nlinear <= 0)
        return ENGRAM_METHOD_NONE;
    return pop->method;
}

static void blob_pops(BlobGen *g)
{
    const IrModel *m = g->c->m;
    for (int i = 0; i < m->npops; i++) {
        const IrPop *pop = &m->pops[i];
        EngramPopDesc d = {
            .name = blob_str(g, pop->path), .model = blob_str(g, pop->model),
            .kind = (uint32_t)pop->kind, .size_param = blob_index(pop->size_param),
            .update_kernel = g->c->pop_kernel[i],
            .method = (uint32_t)blob_method(pop),
            .refractory_param = blob_index(pop->refractory_param),
            .rate_param = blob_index(pop->rate_param), .times_param = blob_index(pop->times_param),
            .indices_param = blob_index(pop->indices_param),
            .record_spikes = pop->record_spikes, .stream = (uint32_t)i,
        };
        blob_states_ports(g, pop, &d);
        blob_linear(g, pop, &d);
        engram_blob_pop(g->w, &d);
    }
}

static EngramDistDesc blob_dist(const IrDist *dist)
{
    EngramDistDesc d = {.kind = (uint32_t)dist->kind};
    for (int k = 0; k < 4; k++)
        d.arg[k] = blob_index(dist->arg[k]);
    return d;
}

/* Appends variables to the var table; an init without code is 0. */
static void blob_vars(BlobGen *g, const IrVar *vars, int n)
{
    for (int k = 0; k < n; k++) {
        EngramVarDesc v = {.name = blob_str(g, vars[k].name), .unit = blob_unit(g, vars[k].dim),
                           .init = blob_code(g, vars[k].init)};
        if (v.init.count == 0) {
            v.init.first = engram_blob_insn_count(g->w);
            blob_op(g, ENGRAM_OP_CONST, 0, 0.0);
            v.init.count = 1;
        }
        engram_blob_var(g->w, &v);
        g->nvars++;
    }
}

/* The plastic fields of a projection: all ENGRAM_NONE (ids) or 0 (counts,
 * flags) for a static one. */
static void blob_plastic(BlobGen *g, int j, EngramProjDesc *d)
{
    const IrRule *r = g->c->m->projs[j].plasticity;
    d->plastic_param = d->on_post_kernel = d->every_kernel = d->every_param = ENGRAM_NONE;
    d->arrive_kernel = ENGRAM_NONE;
    d->w_lo_param = d->w_hi_param = ENGRAM_NONE;
    if (!r)
        return;
    d->plastic = 1;
    d->plastic_param = blob_index(r->plastic_param);
    d->first_var = g->nvars;
    d->nsyn_vars = (uint32_t)r->nsyn_vars;
    d->npre = (uint32_t)r->npre;
    d->npost = (uint32_t)r->npost;
    blob_vars(g, r->syn_vars, r->nsyn_vars);
    blob_vars(g, r->pre, r->npre);
    blob_vars(g, r->post, r->npost);
    d->on_post_kernel = g->c->proj_on_post[j];
    d->every_kernel = g->c->proj_every[j];
    d->arrive_kernel = g->c->proj_arrive[j];
    d->pre_arrival = r->pre_arrival && d->arrive_kernel != ENGRAM_NONE;
    d->every_param = r->has_every ? blob_index(r->every_param) : ENGRAM_NONE;
    d->w_lo_param = blob_index(r->w_lo_param);
    d->w_hi_param = blob_index(r->w_hi_param);
    for (int v = 0; v < r->nsyn_vars; v++)
        if (r->syn_vars[v].lin_a || r->syn_vars[v].lin_b)
            d->lazy_syn = 1;
}

static void blob_projs_drives(BlobGen *g)
{
    const IrModel *m = g->c->m;
    for (int j = 0; j < m->nprojs; j++) {
        const IrProj *p = &m->projs[j];
        EngramProjDesc d = {
            .name = blob_str(g, p->name), .src_pop = blob_index(p->src), .dst_pop = blob_index(p->dst),
            .port = blob_index(p->port), .rule = (uint32_t)p->rule,
            .rule_param = blob_index(p->rule_param), .autapses = p->autapses,
            .weight = blob_dist(&p->weight), .delay = blob_dist(&p->delay),
            .deliver_kernel = g->c->proj_kernel[j], .stream = (uint32_t)(m->npops + 4 * j),
            .ens_ends = (p->src_is_ens ? 1u : 0u) | (p->dst_is_ens ? 2u : 0u),
            .src_group = blob_index(p->src_group), .src_ens = blob_index(p->src_ens),
            .dst_group = blob_index(p->dst_group), .dst_ens = blob_index(p->dst_ens),
        };
        blob_plastic(g, j, &d);
        engram_blob_proj(g->w, &d);
    }
    for (int k = 0; k < m->ndrives; k++) {
        const IrDrive *dr = &m->drives[k];
        EngramDriveDesc d = {
            .name = blob_str(g, dr->name), .dst_pop = blob_index(dr->dst), .port = blob_index(dr->port),
            .rate_param = blob_index(dr->rate_param), .count_param = blob_index(dr->count_param),
            .weight_param = blob_index(dr->weight_param),
            .stream = (uint32_t)(m->npops + 4 * m->nprojs + k),
        };
        engram_blob_drive(g->w, &d);
    }
}

/* Modulators, releases (streams after the drives'), weight recordings. */
static void blob_neuromodulation(BlobGen *g)
{
    const IrModel *m = g->c->m;
    for (int k = 0; k < m->nmodulators; k++) {
        const IrModulator *mo = &m->modulators[k];
        EngramModulatorDesc d = {.name = blob_str(g, mo->name), .unit = blob_unit(g, mo->dim),
                                 .baseline_param = blob_index(mo->baseline_param),
                                 .tau_param = blob_index(mo->tau_param)};
        engram_blob_modulator(g->w, &d);
    }
    for (int k = 0; k < m->nreleases; k++) {
        const IrRelease *r = &m->releases[k];
        char name[32];
        snprintf(name, sizeof name, "release%d", k);
        EngramReleaseDesc d = {
            .name = blob_str(g, name), .kind = (uint32_t)r->kind, .modulator = blob_index(r->modulator),
            .amount_param = blob_index(r->amount_param), .src_pop = blob_index(r->src),
            .src_index_param = blob_index(r->src_index_param), .dst_pop = blob_index(r->dst),
            .dst_index_param = blob_index(r->dst_index_param),
            .window_param = blob_index(r->window_param), .delay = blob_dist(&r->delay),
            .stream = (uint32_t)(m->npops + 4 * m->nprojs + m->ndrives + k),
        };
        engram_blob_release(g->w, &d);
    }
    for (int k = 0; k < m->nweight_recs; k++) {
        const IrWeightRec *r = &m->weight_recs[k];
        EngramWeightRecDesc d = {.proj = blob_index(r->proj), .every_param = blob_index(r->every_param),
                                 .per_synapse = r->per_synapse};
        engram_blob_weight_rec(g->w, &d);
    }
}

/* ---- ensembles, sequences, stimuli, measures, protocols ------------------------------ */

static uint32_t blob_idx_list(BlobGen *g, const int *v, int n)
{
    uint32_t first = engram_blob_idx_count(g->w);
    for (int i = 0; i < n; i++)
        engram_blob_idx(g->w, blob_index(v[i]));
    return first;
}

static uint32_t blob_name_list(BlobGen *g, const char *const *names, int n)
{
    uint32_t first = engram_blob_idx_count(g->w);
    for (int i = 0; i < n; i++)
        engram_blob_idx(g->w, blob_str(g, names[i]));
    return first;
}

static EngramTargetDesc blob_target(BlobGen *g, const IrTarget *t)
{
    EngramTargetDesc d = {.pop = blob_index(t->pop), .group = blob_index(t->group),
                          .index = blob_code(g, t->group >= 0 ? t->index : NULL)};
    return d;
}

/* Streams: sequences after the releases, then each protocol's statements. */
static uint32_t blob_stream_base(const IrModel *m)
{
    return (uint32_t)(m->npops + 4 * m->nprojs + m->ndrives + m->nreleases);
}

static void blob_ensembles(BlobGen *g)
{
    const IrModel *m = g->c->m;
    for (int k = 0; k < m->nens_groups; k++) {
        const IrEnsGroup *e = &m->ens_groups[k];
        EngramEnsGroupDesc d = {.pop = blob_index(e->pop), .kind = (uint32_t)e->kind,
                                .count_param = blob_index(e->count_param), .nens = (uint32_t)e->nens};
        d.first_range = blob_idx_list(g, e->range_param, 2 * e->nens);
        d.first_name = blob_name_list(g, e->names, e->nnames);
        d.nnames = (uint32_t)e->nnames;
        engram_blob_ens_group(g->w, &d);
    }
    for (int k = 0; k < m->nsequences; k++) {
        const IrSequence *q = &m->sequences[k];
        EngramSequenceDesc d = {
            .name = blob_str(g, q->name), .group = blob_index(q->group),
            .first_elem = blob_idx_list(g, q->elems, q->nelems), .nelems = (uint32_t)q->nelems,
            .interval_param = blob_index(q->interval_param),
            .threshold_param = blob_index(q->threshold_param),
            .window_param = blob_index(q->window_param),
            .stream = blob_stream_base(m) + (uint32_t)k};
        engram_blob_sequence(g->w, &d);
    }
    for (int k = 0; k < m->nstimuli; k++) {
        const IrStimulus *s = &m->stimuli[k];
        EngramStimulusDesc d = {blob_index(s->pop), blob_index(s->port), blob_index(s->weight_param)};
        engram_blob_stimulus(g->w, &d);
    }
    for (int k = 0; k < m->nmeasures; k++) {
        const IrMeasure *x = &m->measures[k];
        EngramMeasureDesc d = {.name = blob_str(g, x->name), .kind = (uint32_t)x->kind,
                               .seq = blob_index(x->seq), .a = blob_target(g, &x->a),
                               .b = blob_target(g, &x->b)};
        if (x->a.pop < 0)
            d.a = (EngramTargetDesc){ENGRAM_NONE, ENGRAM_NONE, {0, 0}};
        if (x->b.pop < 0)
            d.b = (EngramTargetDesc){ENGRAM_NONE, ENGRAM_NONE, {0, 0}};
        engram_blob_measure(g->w, &d);
    }
}

/* Preorder: a statement's row is written before its children, then fixed up
 * with its extent. */
static void blob_stmt(BlobGen *g, const IrStmt *s)
{
    EngramStmtDesc d = {
        .kind = (uint32_t)s->kind, .block = (uint32_t)s->block, .name = blob_str(g, s->name),
        .var = blob_index(s->var), .ref = s->kind == ENGRAM_STMT_PLASTICITY ? (uint32_t)s->ref
                                                                           : blob_index(s->ref),
        .nidx = (uint32_t)s->nlist, .line = (uint32_t)s->line,
        .target = {ENGRAM_NONE, ENGRAM_NONE, {0, 0}},
    };
    d.first_idx = blob_idx_list(g, s->list, s->nlist);
    if (s->target.pop >= 0)
        d.target = blob_target(g, &s->target);
    d.a = blob_code(g, s->a);
    d.b = blob_code(g, s->b);
    d.cond = blob_code(g, s->cond);
    uint32_t at = engram_blob_stmt(g->w, &d);
    for (int i = 0; i < s->nbody; i++)
        blob_stmt(g, s->body[i]);
    d.end = engram_blob_stmt_count(g->w);
    engram_blob_stmt_set(g->w, at, &d);
}

static void blob_protocols(BlobGen *g)
{
    const IrModel *m = g->c->m;
    uint32_t stream = blob_stream_base(m) + (uint32_t)m->nsequences;
    for (int k = 0; k < m->nprotocols; k++) {
        const IrProtocol *p = &m->protocols[k];
        EngramProtocolDesc d = {.name = blob_str(g, p->name),
                                .first_stmt = engram_blob_stmt_count(g->w),
                                .first_var = blob_name_list(g, p->vars, p->nvars),
                                .nvars = (uint32_t)p->nvars, .stream = stream};
        blob_stmt(g, p->top);
        d.nstmts = engram_blob_stmt_count(g->w) - d.first_stmt;
        stream += d.nstmts;
        engram_blob_protocol(g->w, &d);
    }
}

static EngramModelDesc blob_header(BlobGen *g)
{
    const IrModel *m = g->c->m;
    EngramModelDesc h;
    memset(&h, 0, sizeof h);
    h.magic = ENGRAM_BLOB_MAGIC;
    h.abi_version = ENGRAM_ABI_VERSION;
    h.name = blob_str(g, m->name);
    h.precision = (uint32_t)m->precision;
    memcpy(h.source_sha256, m->sha256, sizeof m->sha256);    /* 65 bytes, NUL included */
    strncpy(h.compiler_version, ENGRAM_VERSION_STRING, sizeof h.compiler_version - 1);
    h.dt_param = blob_index(m->dt_param);
    h.duration_param = blob_index(m->duration_param);
    h.seed_param = blob_index(m->seed_param);
    h.nkernels = (uint32_t)g->c->nkernels;
    return h;
}

/* ---- globals ----------------------------------------------------------------------------- */

static LLVMValueRef blob_global(CgCtx *c, const char *name, LLVMValueRef init, unsigned align)
{
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMExternalLinkage);
    if (align)
        LLVMSetAlignment(gv, align);
    return gv;
}

static void blob_emit_globals(CgCtx *c, const uint8_t *blob, uint64_t size)
{
    blob_global(c, "engram_model_blob", LLVMConstStringInContext2(c->ctx, (const char *)blob, size, 1), 16);
    blob_global(c, "engram_model_blob_size", LLVMConstInt(c->t_i64, size, 0), 8);
    blob_global(c, "engram_model_kernels",
                LLVMConstArray2(c->t_ptr, c->kernels, (uint64_t)c->nkernels), 8);
}

int cg_emit_blob(CgCtx *c)
{
    BlobGen g = {.c = c, .w = engram_blob_writer_new()};
    if (!g.w) {
        diag_error_noloc(c->diag, "out of memory while writing the model tables");
        return -1;
    }
    int errors = c->nerrors;
    blob_params(&g);
    blob_pops(&g);
    blob_projs_drives(&g);
    blob_neuromodulation(&g);
    blob_ensembles(&g);
    blob_protocols(&g);
    EngramModelDesc h = blob_header(&g);
    uint64_t size = 0;
    uint8_t *blob = c->nerrors == errors ? engram_blob_finish(g.w, &h, &size) : NULL;
    engram_blob_writer_free(g.w);
    if (!blob) {
        if (c->nerrors == errors)
            diag_error_noloc(c->diag, "out of memory while writing the model tables");
        return -1;
    }
    const char *bad = engram_blob_validate(blob, size);
    if (bad) {
        diag_error_noloc(c->diag, "internal error: the model tables are inconsistent: %s", bad);
        free(blob);
        return -1;
    }
    blob_emit_globals(c, blob, size);
    free(blob);
    return 0;
}
