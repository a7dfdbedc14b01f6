/*
 * test_blob.c - the blob writer (layout, deduplicated strings, determinism)
 * and engram_blob_validate on good and corrupted blobs: every corruption
 * must give a message, never a crash (run under ASan/UBSan).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engram_rt.h"
#include "rt_engine.h"

static EngramCode konst(EngramBlobWriter *w, double v)
{
    EngramCode c = {engram_blob_insn_count(w), 1};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, v});
    return c;
}

static uint32_t add_param(EngramBlobWriter *w, const char *name, const char *unit, uint32_t flags,
                          double v)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(w, name);
    p.unit = engram_blob_string(w, unit);
    p.flags = flags;
    p.value = konst(w, v);
    return engram_blob_param(w, &p);
}

/* A model with one of everything: params, a neuron population with an
 * exact linear system, a spike-times source, a projection and a drive. */
static uint8_t *make_blob(uint64_t *size)
{
    EngramBlobWriter *w = engram_blob_writer_new();
    cr_assert(w);
    uint32_t dt = add_param(w, "dt", "ms", ENGRAM_PARAM_POSITIVE, 0.1);
    uint32_t dur = add_param(w, "duration", "ms", 0, 100);
    uint32_t seed = add_param(w, "seed", "1", ENGRAM_PARAM_INTEGER, 1);
    uint32_t size_n = add_param(w, "A.n.size", "1", ENGRAM_PARAM_SIZE, 10);
    uint32_t size_s = add_param(w, "A.s.size", "1", ENGRAM_PARAM_SIZE, 1);
    uint32_t tau = add_param(w, "A.n.tau", "ms", ENGRAM_PARAM_POSITIVE, 10);
    EngramParamDesc times = {0};
    times.name = engram_blob_string(w, "A.s.times");
    times.unit = engram_blob_string(w, "ms");
    times.flags = ENGRAM_PARAM_LIST;
    times.list_first = engram_blob_list_value(w, 1.0);
    engram_blob_list_value(w, 2.0);
    times.list_count = 2;
    uint32_t ptimes = engram_blob_param(w, &times);
    uint32_t wgt = add_param(w, "p.weight", "mV", 0, 1);
    uint32_t dly = add_param(w, "p.delay", "ms", 0, 1);
    uint32_t rate = add_param(w, "d.rate", "1/ms", 0, 0.01);
    uint32_t count = add_param(w, "d.count", "1", 0, 10);

    EngramStateDesc st = {engram_blob_string(w, "v"), engram_blob_string(w, "mV"), konst(w, 0), 1};
    uint32_t s0 = engram_blob_state(w, &st);
    EngramPortDesc port = {engram_blob_string(w, "exc"), 0};
    uint32_t p0 = engram_blob_port(w, &port);
    uint32_t lv = engram_blob_lin_var(w, 0);
    EngramCode a = {engram_blob_insn_count(w), 3};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, -1});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_PARAM, tau, 0});
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_DIV, 0, 0});
    uint32_t c0 = engram_blob_coef(w, a);
    engram_blob_coef(w, (EngramCode){0, 0});

    EngramPopDesc n = {0};
    n.name = engram_blob_string(w, "A.n");
    n.model = engram_blob_string(w, "LIF");
    n.kind = ENGRAM_POP_NEURON;
    n.size_param = size_n;
    n.first_state = s0;
    n.nstates = 1;
    n.first_port = p0;
    n.nports = 1;
    n.update_kernel = 0;
    n.method = ENGRAM_METHOD_EXACT;
    n.nlinear = 1;
    n.first_lin_var = lv;
    n.first_coef = c0;
    n.refractory_param = n.rate_param = n.times_param = n.indices_param = ENGRAM_NONE;
    engram_blob_pop(w, &n);
    EngramPopDesc s = {0};
    s.name = engram_blob_string(w, "A.s");
    s.model = engram_blob_string(w, "SpikeTimes");
    s.kind = ENGRAM_POP_SPIKE_TIMES;
    s.size_param = size_s;
    s.update_kernel = ENGRAM_NONE;
    s.method = ENGRAM_METHOD_NONE;
    s.refractory_param = s.rate_param = s.indices_param = ENGRAM_NONE;
    s.times_param = ptimes;
    engram_blob_pop(w, &s);

    EngramProjDesc pj = {0};
    pj.name = engram_blob_string(w, "A.s->A.n");
    pj.src_pop = 1;
    pj.dst_pop = 0;
    pj.rule = ENGRAM_CONNECT_ALL_TO_ALL;
    pj.rule_param = ENGRAM_NONE;
    pj.weight.arg[0] = wgt;
    pj.delay.arg[0] = dly;
    pj.deliver_kernel = 1;
    engram_blob_proj(w, &pj);
    EngramDriveDesc d = {engram_blob_string(w, "poisson->A.n"), 0, 0, rate, count, wgt, 7};
    engram_blob_drive(w, &d);

    EngramModelDesc h = {0};
    h.name = engram_blob_string(w, "m");
    h.precision = 8;
    strcpy(h.source_sha256, "abc");
    strcpy(h.compiler_version, "t");
    h.dt_param = dt;
    h.duration_param = dur;
    h.seed_param = seed;
    h.nkernels = 2;
    uint8_t *blob = engram_blob_finish(w, &h, size);
    engram_blob_writer_free(w);
    cr_assert(blob);
    return blob;
}

Test(blob, round_trip)
{
    uint64_t size;
    uint8_t *b = make_blob(&size);
    cr_assert_eq((uintptr_t)b % 16, 0);
    cr_assert_null(engram_blob_validate(b, size));
    const EngramModelDesc *d = (const EngramModelDesc *)b;
    cr_assert_eq(d->magic, ENGRAM_BLOB_MAGIC);
    cr_assert_eq(d->abi_version, ENGRAM_ABI_VERSION);
    cr_assert_eq(d->total_size, size);
    cr_assert_eq(d->nparams, 11);
    cr_assert_eq(d->npops, 2);
    cr_assert_eq(d->nprojs, 1);
    cr_assert_eq(d->ndrives, 1);
    cr_assert_eq(d->nlist, 2);
    uint64_t offs[] = {d->params_off, d->pops_off, d->states_off, d->ports_off, d->lin_vars_off,
                       d->coefs_off, d->projs_off, d->drives_off, d->insns_off, d->list_off,
                       d->strings_off};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++)
        cr_assert_eq(offs[k] % 8, 0);
    const EngramPopDesc *pops = ENGRAM_TABLE(b, EngramPopDesc, d->pops_off);
    cr_assert_str_eq(ENGRAM_STR(b, d, pops[0].name), "A.n");
    cr_assert_str_eq(ENGRAM_STR(b, d, pops[1].model), "SpikeTimes");
    cr_assert_str_eq(ENGRAM_STR(b, d, d->name), "m");
    const double *list = ENGRAM_TABLE(b, double, d->list_off);
    cr_assert(list[0] == 1.0 && list[1] == 2.0);
    /* "ms" is stored once */
    const EngramParamDesc *p = ENGRAM_TABLE(b, EngramParamDesc, d->params_off);
    cr_assert_eq(p[0].unit, p[1].unit);
    cr_assert_str_eq(ENGRAM_STR(b, d, 0), "");
    EngramModel m;
    EngramError err = {0};
    EngramKernelFn k[2] = {0};
    EngramProgram prog = {b, size, k};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    cr_assert_str_eq(engram_model_str(&m, m.pops[0].name), "A.n");
    cr_assert_str_eq(engram_model_str(&m, 0xffffff), "");   /* out of range: "" */
    free(b);
}

Test(blob, deterministic_bytes)
{
    uint64_t n1, n2;
    uint8_t *a = make_blob(&n1), *b = make_blob(&n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1), 0);
    free(a);
    free(b);
}

Test(blob, string_dedup)
{
    EngramBlobWriter *w = engram_blob_writer_new();
    uint32_t a = engram_blob_string(w, "alpha");
    uint32_t b = engram_blob_string(w, "beta");
    cr_assert_neq(a, b);
    cr_assert_eq(engram_blob_string(w, "alpha"), a);
    cr_assert_eq(engram_blob_string(w, ""), 0);
    cr_assert_eq(engram_blob_string(w, NULL), 0);
    char name[32];
    uint32_t offs[500];
    for (int i = 0; i < 500; i++) {   /* through several hash resizes */
        snprintf(name, sizeof name, "p%d", i);
        offs[i] = engram_blob_string(w, name);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "p%d", i);
        cr_assert_eq(engram_blob_string(w, name), offs[i]);
    }
    engram_blob_writer_free(w);
}

Test(blob, empty_model_is_valid)
{
    EngramBlobWriter *w = engram_blob_writer_new();
    EngramParamDesc p = {0};
    p.name = engram_blob_string(w, "dt");
    p.value = konst(w, 0.1);
    engram_blob_param(w, &p);
    EngramModelDesc h = {0};
    h.precision = 4;
    uint64_t size;
    uint8_t *b = engram_blob_finish(w, &h, &size);
    engram_blob_writer_free(w);
    cr_assert_null(engram_blob_validate(b, size));
    free(b);
}

/* Copies a blob into fresh 16-aligned memory, lets `edit` change it, validates. */
static const char *validate_edited(void (*edit)(uint8_t *b, EngramModelDesc *d))
{
    uint64_t size;
    uint8_t *b = make_blob(&size);
    edit(b, (EngramModelDesc *)b);
    static char msg[256];
    const char *why = engram_blob_validate(b, size);
    snprintf(msg, sizeof msg, "%s", why ? why : "");
    free(b);
    return why ? msg : NULL;
}

static EngramPopDesc *pops_of(uint8_t *b, EngramModelDesc *d) { return (EngramPopDesc *)(b + d->pops_off); }
static EngramParamDesc *params_of(uint8_t *b, EngramModelDesc *d) { return (EngramParamDesc *)(b + d->params_off); }
static EngramInsn *insns_of(uint8_t *b, EngramModelDesc *d) { return (EngramInsn *)(b + d->insns_off); }
static EngramProjDesc *projs_of(uint8_t *b, EngramModelDesc *d) { return (EngramProjDesc *)(b + d->projs_off); }

static void e_magic(uint8_t *b, EngramModelDesc *d) { (void)b; d->magic ^= 1; }
static void e_abi(uint8_t *b, EngramModelDesc *d) { (void)b; d->abi_version = 99; }
static void e_precision(uint8_t *b, EngramModelDesc *d) { (void)b; d->precision = 2; }
static void e_size(uint8_t *b, EngramModelDesc *d) { (void)b; d->total_size += 8; }
static void e_params_off(uint8_t *b, EngramModelDesc *d) { (void)b; d->params_off = d->total_size; }
static void e_unaligned(uint8_t *b, EngramModelDesc *d) { (void)b; d->pops_off += 4; }
static void e_count(uint8_t *b, EngramModelDesc *d) { (void)b; d->ninsns = 0x7fffffff; }
static void e_sha(uint8_t *b, EngramModelDesc *d) { (void)b; memset(d->source_sha256, 'a', sizeof d->source_sha256); }
static void e_strings_nul(uint8_t *b, EngramModelDesc *d) { b[d->strings_off + d->strings_size - 1] = 'x'; }
static void e_name(uint8_t *b, EngramModelDesc *d) { (void)b; d->name = d->strings_size; }
static void e_dt(uint8_t *b, EngramModelDesc *d) { (void)b; d->dt_param = 1000; }
static void e_pop_size(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[0].size_param = 77; }
static void e_pop_states(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[0].nstates = 5; }
static void e_pop_kernel(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[0].update_kernel = 2; }
static void e_pop_kind(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[0].kind = 9; }
static void e_pop_linear(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[0].nlinear = 3; }
static void e_times(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[1].times_param = 0; }
static void e_list(uint8_t *b, EngramModelDesc *d) { params_of(b, d)[6].list_count = 3; }
static void e_param_order(uint8_t *b, EngramModelDesc *d) { insns_of(b, d)[0] = (EngramInsn){ENGRAM_OP_PARAM, 5, 0}; }
static void e_opcode(uint8_t *b, EngramModelDesc *d) { insns_of(b, d)[0].op = ENGRAM_OP_COUNT; }
static void e_builtin(uint8_t *b, EngramModelDesc *d) { insns_of(b, d)[0] = (EngramInsn){ENGRAM_OP_CALL, 99, 0}; }
static void e_underflow(uint8_t *b, EngramModelDesc *d) { insns_of(b, d)[0].op = ENGRAM_OP_ADD; }
static void e_code_range(uint8_t *b, EngramModelDesc *d) { params_of(b, d)[0].value.first = d->ninsns; }
static void e_draw_in_param(uint8_t *b, EngramModelDesc *d) { insns_of(b, d)[0].op = ENGRAM_OP_INDEX; }
static void e_proj_port(uint8_t *b, EngramModelDesc *d) { projs_of(b, d)[0].port = 1; }
static void e_proj_dist(uint8_t *b, EngramModelDesc *d) { projs_of(b, d)[0].weight.kind = 7; }
static void e_proj_rule(uint8_t *b, EngramModelDesc *d) { projs_of(b, d)[0].rule = ENGRAM_CONNECT_RANDOM; }
static void e_proj_src(uint8_t *b, EngramModelDesc *d) { projs_of(b, d)[0].src_pop = 2; }
static void e_drive(uint8_t *b, EngramModelDesc *d) { ((EngramDriveDesc *)(b + d->drives_off))[0].count_param = 99; }
static void e_source_state(uint8_t *b, EngramModelDesc *d) { pops_of(b, d)[1].nstates = 1; }

Test(blob, corruptions_are_caught)
{
    void (*edits[])(uint8_t *, EngramModelDesc *) = {
        e_magic, e_abi, e_precision, e_size, e_params_off, e_unaligned, e_count, e_sha,
        e_strings_nul, e_name, e_dt, e_pop_size, e_pop_states, e_pop_kernel, e_pop_kind,
        e_pop_linear, e_times, e_list, e_param_order, e_opcode, e_builtin, e_underflow,
        e_code_range, e_draw_in_param, e_proj_port, e_proj_dist, e_proj_rule, e_proj_src,
        e_drive, e_source_state,
    };
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++)
        cr_assert_not_null(validate_edited(edits[k]), "corruption %zu not caught", k);
}

Test(blob, short_and_unaligned)
{
    uint64_t size;
    uint8_t *b = make_blob(&size);
    cr_assert_not_null(engram_blob_validate(NULL, size));
    cr_assert_not_null(engram_blob_validate(b, 0));
    cr_assert_not_null(engram_blob_validate(b, 16));
    cr_assert_not_null(engram_blob_validate(b, size - 8));
    uint8_t *u = aligned_alloc(16, ((size + 15) & ~(uint64_t)15) + 16);
    memcpy(u + 8, b, size);
    cr_assert_not_null(engram_blob_validate(u + 8, size));
    free(u);
    free(b);
}

/* Every single-byte change: a message or a pass, never a crash; and a blob
 * that passes must still open and describe itself without reading outside. */
Test(blob, byte_flips_never_crash)
{
    uint64_t size;
    uint8_t *good = make_blob(&size);
    uint8_t *b = aligned_alloc(16, (size + 15) & ~(uint64_t)15);
    int caught = 0;
    for (uint64_t i = 0; i < size; i++) {
        for (int v = 0; v < 3; v++) {
            memcpy(b, good, size);
            b[i] = v == 0 ? 0xff : (v == 1 ? 0x00 : (uint8_t)(b[i] ^ 0x80));
            const char *why = engram_blob_validate(b, size);
            if (why) {
                caught++;
                continue;
            }
            EngramKernelFn k[2] = {0};
            EngramProgram prog = {b, size, k};
            EngramModel m;
            EngramError err = {0};
            cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
            for (uint32_t p = 0; p < m.hdr->npops; p++)
                (void)strlen(engram_model_str(&m, m.pops[p].name));
        }
    }
    cr_assert(caught > 0);
    free(b);
    free(good);
}

Test(blob, open_needs_kernels)
{
    uint64_t size;
    uint8_t *b = make_blob(&size);
    EngramProgram prog = {b, size, NULL};
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "kernel"));
    free(b);
}
