/*
 * test_checkpoint.c - checkpoints of the full network state
 * (runtime/checkpoint.c, docs/outputs.md "Checkpoints").
 *
 * A model compiled from source text with the JIT (a recurrent LIF network,
 * a Poisson source, delays of several steps, a drive, pair STDP and
 * dopamine-modulated STDP from std.plasticity (whose on-pre handler runs at
 * arrival: the spikes in flight travel), a modulator fed by a `when`
 * release with a delay, weight recordings) runs 0..N in one go; another
 * network runs 0..k, writes a checkpoint and is freed, and a fresh one
 * (possibly with another number of threads) reads it and runs k..N.  Every
 * piece of state must then be bit-identical, and so must spikes.h5 and
 * weights.h5.  Damaged files, files of other models or sizes, unwritable
 * places and a full disk are refused with one clear message.
 *
 * Order: harness (compile, build, run), comparing networks, restore tests,
 * refusal tests, extra bytes, SHA-256.
 */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen.h"
#include "rt_checkpoint.h"
#include "rt_engine.h"
#include "sema_internal.h"

/* ---- harness ------------------------------------------------------------------- */

static const char *MODEL =
    "model ckpt\n"
    "use std.neurons (LIF, Poisson, SpikeTimes)\n"
    "use std.plasticity (STDP, DopamineSTDP)\n"
    "region net \"checkpoint test\" {\n"
    "  population exc = 40 LIF\n"
    "  population inh = 12 LIF(v_rest = -55 mV)\n"
    "  population ext = 25 Poisson(rate = 40 Hz)\n"
    "  population cue = 3 SpikeTimes(times = [5 ms, 12.3 ms, 43.8 ms, 80 ms], "
    "indices = [0, 1, 2, 0])\n"
    "}\n"
    "modulator dopamine {\n"
    "  baseline = 0.01\n"
    "  tau = 50 ms\n"
    "}\n"
    "project ee: net.exc -> net.exc {\n"
    "  connect random(p = 0.2)  weight uniform(1 mV, 3 mV)  delay uniform(0.5 ms, 3 ms)  port exc\n"
    "  plasticity STDP(w_max = 4 mV)\n"
    "}\n"
    "project xe: net.ext -> net.exc {\n"
    "  connect random(p = 0.3)  weight 2 mV  delay uniform(1 ms, 3 ms)  port exc\n"
    "  plasticity DopamineSTDP(w_max = 4 mV, T_update = 2 ms, tau_c = 100 ms)\n"
    "}\n"
    "project net.exc -> net.inh { connect random(p = 0.3)  weight 2 mV  delay 1.5 ms  port exc }\n"
    "project net.cue -> net.inh { connect all_to_all  weight 20 mV  delay 0.3 ms  port exc }\n"
    "project net.inh -> net.exc { connect random(p = 0.3)  weight -1 mV  delay 1 ms  port inh }\n"
    "drive bg: net.inh poisson(rate = 200 Hz, count = 10) weight 1.5 mV port exc\n"
    "drive bg_e: net.exc poisson(rate = 400 Hz, count = 10) weight 1 mV port exc\n"
    "release dopamine 0.5 when net.exc[1] fires within 20 ms after net.exc[0] "
    "delay uniform(1 ms, 5 ms)\n"
    "simulation {\n"
    "  dt = 0.1 ms\n"
    "  duration = 100 ms\n"
    "  seed = 7\n"
    "}\n"
    "record spikes net.exc, net.inh, net.ext, net.cue\n"
    "record weights ee every 2 ms\n"
    "record weights xe every 3 ms\n";

/* A compiled model in the JIT. */
typedef struct Sim {
    DiagCtx diag;
    Arena arena;
    CgJit *jit;
    EngramProgram prog;
    EngramModel model;
} Sim;

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/engram_ckpt_%ld", (long)getpid());
    mkdir(dir, 0777);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(checkpoint, .init = make_dir, .fini = remove_dir, .timeout = 300);

static char *in_dir(const char *name)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static void sim_open(Sim *s, const char *text, int precision)
{
    memset(s, 0, sizeof *s);
    diag_init(&s->diag);
    arena_init(&s->arena);
    int file = diag_add_text(&s->diag, "ckpt.engram", text, strlen(text));
    SemaOptions so = {"stdlib", precision};
    IrModel *m = sema_compile_loaded(&s->diag, &s->arena, file, &so);
    if (!m)
        diag_flush(&s->diag, stderr);
    cr_assert_not_null(m, "the model does not compile");
    CgOptions co = {.cpu = NULL, .opt_level = 2, .verify = true};
    CgModule *cm = cg_generate(&s->diag, m, &co);
    cr_assert_not_null(cm, "cg_generate failed");
    s->jit = cg_jit_open(&s->diag, cm);
    cr_assert_not_null(s->jit, "cg_jit_open failed");
    s->prog.blob = cg_jit_lookup(&s->diag, s->jit, "engram_model_blob");
    const uint64_t *size = cg_jit_lookup(&s->diag, s->jit, "engram_model_blob_size");
    s->prog.kernels = cg_jit_lookup(&s->diag, s->jit, "engram_model_kernels");
    cr_assert(s->prog.blob && size && s->prog.kernels);
    s->prog.blob_size = *size;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&s->model, &s->prog, &err), 0, "%s", err.msg);
}

static void sim_close(Sim *s)
{
    cg_jit_close(s->jit);
    arena_free(&s->arena);
    diag_free(&s->diag);
}

/* Parameters with one optional --set NAME=VALUE (caller frees). */
static double *params_of(const Sim *s, const char *name, const char *value)
{
    double *pv = calloc(s->model.hdr->nparams + 1, sizeof *pv);
    EngramOverride ov = {"--set", name, name ? strlen(name) : 0, value};
    EngramError err = {0};
    cr_assert_eq(engram_params_resolve(&s->model, &ov, name ? 1 : 0, pv, &err), 0, "%s", err.msg);
    return pv;
}

static void build(const Sim *s, const double *pv, uint32_t threads, EngramNetwork *net)
{
    EngramLayout lay = {0, 1, threads};
    EngramError err = {0};
    cr_assert_eq(engram_network_build_layout(net, &s->model, pv, &lay, &err), 0, "%s", err.msg);
}

/* Runs steps [step_begin, until) and leaves the network at the start of step
 * `until`: a run stopped early still takes its final weight sample (at
 * `until`), which is not part of that state. */
static void run_until(EngramNetwork *net, int64_t until)
{
    int64_t n = net->nsteps;
    EngramError err = {0};
    net->nsteps = until;
    cr_assert_eq(engram_simulate(net, NULL, &err), 0, "%s", err.msg);
    net->nsteps = n;
    for (uint32_t k = 0; until < n && k < net->nwrecs; k++) {
        EngramWeightRecRt *wr = &net->wrecs[k];
        size_t before = until > 0 ? (size_t)((until - 1) / wr->every_steps + 1) : 0;
        cr_assert_eq(wr->len, before + 1);
        wr->len = before;
    }
    net->step_begin = until;
}

static void write_ck(EngramNetwork *net, const char *path, int64_t step, const void *extra,
                     size_t len)
{
    EngramError err = {0};
    cr_assert_eq(engram_checkpoint_write(net, path, step, extra, len, &err), 0, "%s", err.msg);
}

static void read_ck(EngramNetwork *net, const char *path)
{
    EngramError err = {0};
    void *extra = NULL;
    size_t len = 0;
    cr_assert_eq(engram_checkpoint_read(net, path, &extra, &len, &err), 0, "%s", err.msg);
    free(extra);
}

/* ---- comparing networks (one rank: every array is global) -------------------------------- */

enum { F_WEIGHT = -1, F_SYN_LAST = -2 };

/* A per-synapse array in global CSR order: the weights, syn_last or synapse variable k. */
static void *synapses_of(const EngramNetwork *net, uint32_t j, int field, size_t elem)
{
    const void **parts = calloc(net->nthreads, sizeof *parts);
    for (uint32_t t = 0; t < net->nthreads; t++) {
        const EngramProjRt *pr = &net->tprojs[t][j];
        parts[t] = field == F_WEIGHT ? pr->weight
                   : field == F_SYN_LAST ? (const void *)pr->syn_last : pr->syn[field];
    }
    void *out = malloc(net->projs[j].nsyn_all * elem + 1);
    EngramError err = {0};
    cr_assert_eq(engram_proj_collect_raw(net, j, parts, elem, out, &err), 0, "%s", err.msg);
    free(parts);
    return out;
}

static void same_bytes(const void *a, const void *b, size_t n, const char *what, const char *when)
{
    cr_assert(n == 0 || memcmp(a, b, n) == 0, "%s differs (%s)", what, when);
}

static void same_synapses(const EngramNetwork *a, const EngramNetwork *b, uint32_t j, int field,
                          size_t elem, const char *when)
{
    void *x = synapses_of(a, j, field, elem), *y = synapses_of(b, j, field, elem);
    char what[128];
    snprintf(what, sizeof what, "projection %s field %d", a->projs[j].name, field);
    same_bytes(x, y, a->projs[j].nsyn_all * elem, what, when);
    free(x);
    free(y);
}

static void same_pops(const EngramNetwork *a, const EngramNetwork *b, const char *when)
{
    size_t prec = (size_t)a->precision;
    for (uint32_t i = 0; i < a->npops; i++) {
        const EngramPopRt *p = &a->pops[i], *q = &b->pops[i];
        cr_assert_eq(p->total_spikes, q->total_spikes, "%s total spikes (%s)", p->name, when);
        cr_assert_eq(p->rec_len, q->rec_len, "%s recorded spikes (%s)", p->name, when);
        same_bytes(p->rec_step, q->rec_step, p->rec_len * 8, "spike steps", when);
        same_bytes(p->rec_id, q->rec_id, p->rec_len * 4, "spike ids", when);
        if (p->desc->kind != ENGRAM_POP_NEURON)
            continue;
        for (uint32_t s = 0; s < p->desc->nstates; s++)
            same_bytes(p->state[s], q->state[s], p->n * prec, "state", when);
        same_bytes(p->refr, q->refr, p->n * 4, "refractory counters", when);
    }
}

static void same_plastic(const EngramNetwork *a, const EngramNetwork *b, uint32_t j,
                         const char *when)
{
    const EngramProjRt *p = &a->projs[j], *q = &b->projs[j];
    const EngramProjDesc *d = p->desc;
    size_t prec = (size_t)a->precision, nsrc = p->csr.nsrc, ntgt = a->pops[d->dst_pop].n;
    for (uint32_t k = 0; k < d->nsyn_vars; k++)
        same_synapses(a, b, j, (int)k, prec, when);
    if (d->lazy_syn)
        same_synapses(a, b, j, F_SYN_LAST, 4, when);
    for (uint32_t t = 0; t < b->nthreads; t++) {   /* every copy of the pre traces */
        const EngramProjRt *qt = &b->tprojs[t][j];
        for (uint32_t k = 0; k < d->npre; k++)
            same_bytes(p->pre[k], qt->pre[k], nsrc * prec, "pre trace", when);
        same_bytes(p->pre_last, qt->pre_last, nsrc * 4, "pre_last", when);
    }
    for (uint32_t k = 0; k < d->npost; k++)
        same_bytes(p->post[k], q->post[k], ntgt * prec, "post trace", when);
    same_bytes(p->post_last, q->post_last, ntgt * 4, "post_last", when);
    cr_assert_eq(p->handlers_on, q->handlers_on);
}

static void same_mods(const EngramNetwork *a, const EngramNetwork *b, const char *when)
{
    const EngramModState *x = &a->mods, *y = &b->mods;
    same_bytes(x->level, y->level, x->nmods * 8, "modulator levels", when);
    same_bytes(x->baseline, y->baseline, x->nmods * 8, "modulator baselines", when);
    same_bytes(x->sum, y->sum, x->nmods * 8, "modulator sums", when);
    cr_assert_eq(x->steps, y->steps);
    cr_assert_eq(x->next_seq, y->next_seq, "%s", when);
    cr_assert_eq(x->heap_len, y->heap_len, "%s", when);
    for (uint32_t k = 0; k < x->nrels; k++) {
        cr_assert_eq(x->rels[k].last_src, y->rels[k].last_src);
        cr_assert_eq(x->rels[k].events, y->rels[k].events);
        cr_assert_eq(x->rels[k].applied, y->rels[k].applied, "%s", when);
    }
}

static void same_wrecs(const EngramNetwork *a, const EngramNetwork *b, const char *when)
{
    for (uint32_t k = 0; k < a->nwrecs; k++) {
        const EngramWeightRecRt *x = &a->wrecs[k], *y = &b->wrecs[k];
        cr_assert_eq(x->len, y->len, "weight samples (%s)", when);
        same_bytes(x->times, y->times, x->len * 8, "weight sample times", when);
        same_bytes(x->mean, y->mean, x->len * 8, "mean weights", when);
        if (x->per_synapse)
            same_bytes(x->w, y->w, x->len * a->projs[x->proj].nsyn_all * 8, "weight samples",
                       when);
    }
}

static void assert_same(const EngramNetwork *a, const EngramNetwork *b, const char *when)
{
    same_pops(a, b, when);
    for (uint32_t j = 0; j < a->nprojs; j++) {
        if (a->projs[j].weight)
            same_synapses(a, b, j, F_WEIGHT, (size_t)a->precision, when);
        if (a->projs[j].plastic)
            same_plastic(a, b, j, when);
    }
    same_mods(a, b, when);
    same_wrecs(a, b, when);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*n + 1);
    cr_assert_eq(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

/* spikes.h5 and weights.h5 of the network in DIR/name (after the run). */
static void write_outputs(EngramNetwork *net, const char *name)
{
    EngramError err = {0};
    char *out = in_dir(name);
    cr_assert_eq(engram_make_dirs(out, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_network_gather(net, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_write_spikes(net, out, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_write_weights(net, out, &err), 0, "%s", err.msg);
}

static void same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    cr_assert(na == nb && memcmp(x, y, na) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* ---- restore tests ---------------------------------------------------------------------- */

/* Uninterrupted 0..N on one thread against 0..k on `before` threads, a
 * checkpoint, and k..N on `after` threads in a fresh network. */
static void restore_case(int precision, uint32_t before, uint32_t after, int64_t k)
{
    Sim s;
    sim_open(&s, MODEL, precision);
    double *pv = params_of(&s, NULL, NULL);
    EngramNetwork whole, first, second;
    build(&s, pv, 1, &whole);
    run_until(&whole, whole.nsteps);

    build(&s, pv, before, &first);
    run_until(&first, k);
    if (k == 437)   /* a `when` release is waiting for its delay: the heap must travel */
        cr_assert(first.mods.heap_len > 0, "no pending release at the checkpoint: weak test");
    write_ck(&first, in_dir("ck.h5"), k, NULL, 0);
    engram_network_free(&first);

    build(&s, pv, after, &second);
    read_ck(&second, in_dir("ck.h5"));
    cr_assert_eq(second.step_begin, k);
    run_until(&second, second.nsteps);

    char when[96];
    snprintf(when, sizeof when, "%u -> %u threads at step %lld, precision %d", before, after,
             (long long)k, precision);
    assert_same(&whole, &second, when);
    cr_assert(whole.mods.rels[0].applied > 0, "the `when` release never fired: weak test");
    for (uint32_t i = 0; i < whole.npops; i++)
        cr_assert(whole.pops[i].total_spikes > 0, "%s never fired: weak test", whole.pops[i].name);
    write_outputs(&whole, "whole");
    write_outputs(&second, "restored");
    same_file(in_dir("whole/spikes.h5"), in_dir("restored/spikes.h5"));
    same_file(in_dir("whole/weights.h5"), in_dir("restored/weights.h5"));
    engram_network_free(&whole);
    engram_network_free(&second);
    free(pv);
    sim_close(&s);
}

Test(checkpoint, restore_one_thread_to_one) { restore_case(8, 1, 1, 420); }
Test(checkpoint, restore_one_thread_to_two) { restore_case(8, 1, 2, 437); }
Test(checkpoint, restore_two_threads_to_one) { restore_case(8, 2, 1, 437); }
Test(checkpoint, restore_float_two_threads_to_three) { restore_case(4, 2, 3, 251); }
Test(checkpoint, restore_at_step_zero) { restore_case(8, 1, 2, 0); }

/* The state read back equals the state written, whatever the layouts, and
 * both networks then go on identically (also in one process: continuing a
 * network that stopped at a step is what the checkpoint stands for). */
Test(checkpoint, state_read_back_is_the_state_written)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    EngramNetwork a, b, c;
    build(&s, pv, 1, &a);
    build(&s, pv, 3, &b);
    run_until(&a, 300);
    run_until(&b, 300);
    write_ck(&b, in_dir("b.h5"), 300, "x", 1);
    build(&s, pv, 2, &c);
    read_ck(&c, in_dir("b.h5"));
    assert_same(&a, &c, "a 3-thread checkpoint read by 2 threads");
    run_until(&a, a.nsteps);
    run_until(&c, c.nsteps);
    assert_same(&a, &c, "after the run");
    engram_network_free(&a);
    engram_network_free(&b);
    engram_network_free(&c);
    free(pv);
    sim_close(&s);
}

/* What a protocol may change during a run: the handlers of a projection
 * (PROJ.plastic) and a modulator's baseline. */
static void protocol_change(EngramNetwork *net)
{
    for (uint32_t t = 0; t < net->nthreads; t++) {
        net->tprojs[t][0].handlers_on = false;
        net->tprojs[t][0].ps.plastic = 0;
    }
    net->mods.baseline[0] = 0.3;
}

Test(checkpoint, handler_switch_and_baselines_travel)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    EngramNetwork whole, first, second;
    build(&s, pv, 1, &whole);
    run_until(&whole, 300);
    protocol_change(&whole);
    run_until(&whole, whole.nsteps);
    build(&s, pv, 2, &first);
    run_until(&first, 300);
    protocol_change(&first);
    write_ck(&first, in_dir("ck.h5"), 300, NULL, 0);
    engram_network_free(&first);
    build(&s, pv, 1, &second);
    read_ck(&second, in_dir("ck.h5"));
    cr_assert(!second.projs[0].handlers_on && second.projs[0].ps.plastic == 0);
    run_until(&second, second.nsteps);
    assert_same(&whole, &second, "handlers off and a new baseline at step 300");
    engram_network_free(&whole);
    engram_network_free(&second);
    free(pv);
    sim_close(&s);
}

/* ---- refusal tests ---------------------------------------------------------------------- */

/* A checkpoint at step 300 of the model in `path`. */
static void make_checkpoint(Sim *s, const double *pv, const char *path)
{
    EngramNetwork net;
    build(s, pv, 1, &net);
    run_until(&net, 300);
    write_ck(&net, path, 300, "abc", 3);
    engram_network_free(&net);
}

/* Reading `path` into a fresh network fails with `code` and a message containing `what`. */
static void refused(const Sim *s, const double *pv, const char *path, int code, const char *what)
{
    EngramNetwork net;
    build(s, pv, 1, &net);
    EngramError err = {0};
    void *extra = (void *)1;
    size_t len = 7;
    int rc = engram_checkpoint_read(&net, path, &extra, &len, &err);
    cr_assert_eq(rc, code, "rc %d, expected %d: %s", rc, code, err.msg);
    cr_assert(strstr(err.msg, what) != NULL, "message \"%s\" lacks \"%s\"", err.msg, what);
    cr_assert(strstr(err.msg, path) != NULL, "message \"%s\" does not name the file", err.msg);
    cr_assert(extra == NULL && len == 0);
    engram_network_free(&net);
}

static void copy_with(const char *from, const char *to, long at, int xor_mask, long truncate)
{
    size_t n;
    char *buf = slurp(from, &n);
    if (at >= 0)
        buf[at] = (char)(buf[at] ^ xor_mask);
    if (truncate >= 0)
        n = (size_t)truncate;
    FILE *f = fopen(to, "wb");
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
}

static long file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

Test(checkpoint, corrupted_bytes_are_refused)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    const char *good = in_dir("good.h5"), *bad = in_dir("bad.h5");
    make_checkpoint(&s, pv, good);
    long n = file_size(good);
    /* every byte after the userblock at a stride (through the verifier), a few through a read */
    for (long at = ENGRAM_CHECKPOINT_USERBLOCK; at < n; at += n / 97 + 1) {
        copy_with(good, bad, at, 0x10, -1);
        EngramError err = {0};
        cr_assert_eq(engram_checkpoint_verify(bad, &err), ENGRAM_EXIT_IO, "byte %ld", at);
        cr_assert(strstr(err.msg, "is corrupt (the checksum of its contents does not match)"),
                  "%s", err.msg);
    }
    long places[] = {ENGRAM_CHECKPOINT_USERBLOCK, ENGRAM_CHECKPOINT_USERBLOCK + 7, n / 2, n - 1};
    for (size_t k = 0; k < sizeof places / sizeof *places; k++) {
        copy_with(good, bad, places[k], 0xff, -1);
        refused(&s, pv, bad, ENGRAM_EXIT_IO, "is corrupt (the checksum of its contents");
    }
    copy_with(good, bad, 20, 0x01, -1);   /* the length in the header */
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is corrupt (its header checksum does not match)");
    copy_with(good, bad, 30, 0x01, -1);   /* the checksum in the header */
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is corrupt (its header checksum does not match)");
    free(pv);
    sim_close(&s);
}

Test(checkpoint, truncated_and_foreign_files_are_refused)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    const char *good = in_dir("good.h5"), *bad = in_dir("bad.h5");
    make_checkpoint(&s, pv, good);
    long n = file_size(good);
    copy_with(good, bad, -1, 0, n / 2);
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is truncated");
    copy_with(good, bad, -1, 0, n - 1);
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is truncated");
    copy_with(good, bad, -1, 0, 300);
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is truncated (300 bytes, shorter than its header)");
    copy_with(good, bad, -1, 0, 0);
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is not an Engram checkpoint");
    copy_with(good, bad, 0, 0x20, -1);   /* "eNGRAMCK" */
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is not an Engram checkpoint");
    copy_with(good, bad, 5, 0x01, -1);
    refused(&s, pv, bad, ENGRAM_EXIT_IO, "is not an Engram checkpoint");
    refused(&s, pv, in_dir("missing.h5"), ENGRAM_EXIT_IO,
            "cannot read checkpoint");
    refused(&s, pv, dir, ENGRAM_EXIT_IO, "it is a folder");
    /* an HDF5 file that is not a checkpoint */
    EngramNetwork net;
    build(&s, pv, 1, &net);
    run_until(&net, 50);
    write_outputs(&net, "out");
    engram_network_free(&net);
    refused(&s, pv, in_dir("out/spikes.h5"), ENGRAM_EXIT_IO, "is not an Engram checkpoint");
    free(pv);
    sim_close(&s);
}

Test(checkpoint, other_models_and_sizes_are_refused)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    const char *path = in_dir("ck.h5");
    make_checkpoint(&s, pv, path);

    double *bigger = params_of(&s, "net.exc.size", "41");
    refused(&s, bigger, path, ENGRAM_EXIT_MODEL,
            "does not fit this network: population net.exc has 40 neurons there, 41 here");
    double *dt = params_of(&s, "dt", "0.05 ms");
    refused(&s, dt, path, ENGRAM_EXIT_MODEL, "dt 0.1 ms there, 0.05 ms here");
    double *seed = params_of(&s, "seed", "8");
    refused(&s, seed, path, ENGRAM_EXIT_MODEL, "seed 7 there, 8 here");
    double *shorter = params_of(&s, "duration", "20 ms");
    refused(&s, shorter, path, ENGRAM_EXIT_MODEL, "beyond the end of this run");
    double *sparser = params_of(&s, "ee.p", "0.1");
    refused(&s, sparser, path, ENGRAM_EXIT_MODEL, "projection ee has");

    Sim f;   /* the same network in float */
    sim_open(&f, MODEL, 4);
    double *pf = params_of(&f, NULL, NULL);
    refused(&f, pf, path, ENGRAM_EXIT_MODEL, "precision 8 there, 4 here");
    free(pf);
    sim_close(&f);

    char *text = malloc(strlen(MODEL) + 64);
    sprintf(text, "%sparam unused = 1\n", MODEL);
    Sim o;
    sim_open(&o, text, 8);
    double *po = params_of(&o, NULL, NULL);
    refused(&o, po, path, ENGRAM_EXIT_MODEL, "belongs to another model: ckpt");
    free(po);
    sim_close(&o);
    free(text);
    free(bigger);
    free(dt);
    free(seed);
    free(shorter);
    free(sparser);
    free(pv);
    sim_close(&s);
}

/* A new header for a file changed behind our back (docs/outputs.md gives the
 * layout: bytes 24..55 hash [512, end), bytes 56..87 hash [0, 56)). */
static void reseal(const char *path)
{
    size_t n;
    char *buf = slurp(path, &n);
    engram_sha256(buf + 512, n - 512, (uint8_t *)buf + 24);
    engram_sha256(buf, 56, (uint8_t *)buf + 56);
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
}

/* The same population sizes and synapse counts but other synapses. */
Test(checkpoint, other_connectivity_is_refused)
{
    const char *ring =
        "model ring\nuse std.neurons (LIF)\n"
        "region r { population a = 10 LIF }\n"
        "project r.a -> r.a {\n"
        "  connect fixed_indegree(k = 3)  weight uniform(1 mV, 2 mV)  port exc\n"
        "}\n"
        "simulation {\n  dt = 0.1 ms\n  duration = 10 ms\n  seed = 1\n}\n";
    Sim s;
    sim_open(&s, ring, 8);
    double *pv = params_of(&s, NULL, NULL);
    const char *path = in_dir("ring.h5");
    EngramNetwork net;
    build(&s, pv, 2, &net);
    write_ck(&net, path, 0, NULL, 0);
    engram_network_free(&net);
    /* rewrite col[] of the projection and reseal: a file of another connectivity */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(f >= 0);
    hid_t d = H5Dopen2(f, "/projections/r.a->r.a/col", H5P_DEFAULT);
    cr_assert(d >= 0, "no col dataset");
    uint32_t col[30];
    cr_assert(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) >= 0);
    uint32_t c = col[0];
    col[0] = col[1];
    col[1] = c;
    cr_assert(H5Dwrite(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    refused(&s, pv, path, ENGRAM_EXIT_IO, "is corrupt");
    reseal(path);
    refused(&s, pv, path, ENGRAM_EXIT_MODEL, "the synapses of projection r.a->r.a differ");
    free(pv);
    sim_close(&s);
}

Test(checkpoint, unwritable_places_fail_cleanly)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    EngramNetwork net;
    build(&s, pv, 2, &net);
    run_until(&net, 100);
    EngramError err = {0};
    int rc = engram_checkpoint_write(&net, "/nonexistent/folder/ck.h5", 100, NULL, 0, &err);
    cr_assert_eq(rc, ENGRAM_EXIT_IO);
    cr_assert_str_eq(err.msg, "cannot write checkpoint /nonexistent/folder/ck.h5: No such file "
                              "or directory");
    memset(&err, 0, sizeof err);
    rc = engram_checkpoint_write(&net, in_dir(""), 100, NULL, 0, &err);
    cr_assert_eq(rc, ENGRAM_EXIT_IO);
    cr_assert(strstr(err.msg, "not a file name"), "%s", err.msg);
    memset(&err, 0, sizeof err);
    rc = engram_checkpoint_write(&net, in_dir("late.h5"), 5000, NULL, 0, &err);
    cr_assert_eq(rc, ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "outside the run"), "%s", err.msg);
    engram_network_free(&net);
    free(pv);
    sim_close(&s);
}

/* A full disk (a file size limit here): a clean error, no temporary file
 * left, and the previous checkpoint under the name intact. */
Test(checkpoint, full_disk_keeps_the_old_checkpoint)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    const char *path = in_dir("ck.h5");
    make_checkpoint(&s, pv, path);
    EngramNetwork net;
    build(&s, pv, 1, &net);
    run_until(&net, 500);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {16384, 16384}, old;
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_max = old.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    EngramError err = {0};
    static char big[200000];
    int rc = engram_checkpoint_write(&net, path, 500, big, sizeof big, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_eq(rc, ENGRAM_EXIT_IO, "rc %d: %s", rc, err.msg);
    cr_assert(strncmp(err.msg, "cannot write checkpoint ", 24) == 0, "%s", err.msg);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s/.ck.h5.tmp.%ld", dir, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0, "the temporary file was left behind");
    memset(&err, 0, sizeof err);
    cr_assert_eq(engram_checkpoint_verify(path, &err), 0, "%s", err.msg);
    engram_network_free(&net);
    build(&s, pv, 1, &net);
    read_ck(&net, path);
    cr_assert_eq(net.step_begin, 300);
    engram_network_free(&net);
    free(pv);
    sim_close(&s);
}

/* ---- extra bytes ------------------------------------------------------------------------- */

Test(checkpoint, extra_bytes_round_trip)
{
    Sim s;
    sim_open(&s, MODEL, 8);
    double *pv = params_of(&s, NULL, NULL);
    EngramNetwork net;
    build(&s, pv, 1, &net);
    run_until(&net, 10);
    uint8_t bytes[3000];
    for (size_t k = 0; k < sizeof bytes; k++)
        bytes[k] = (uint8_t)(k * 131 + (k >> 3));
    bytes[5] = 0;
    write_ck(&net, in_dir("x.h5"), 10, bytes, sizeof bytes);
    write_ck(&net, in_dir("none.h5"), 10, NULL, 0);
    engram_network_free(&net);

    build(&s, pv, 2, &net);
    EngramError err = {0};
    void *extra = NULL;
    size_t len = 0;
    cr_assert_eq(engram_checkpoint_read(&net, in_dir("x.h5"), &extra, &len, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(len, sizeof bytes);
    cr_assert_eq(memcmp(extra, bytes, len), 0);
    free(extra);
    cr_assert_eq(engram_checkpoint_read(&net, in_dir("none.h5"), &extra, &len, &err), 0, "%s",
                 err.msg);
    cr_assert(extra == NULL && len == 0);
    cr_assert_eq(net.step_begin, 10);
    engram_network_free(&net);
    free(pv);
    sim_close(&s);
}

/* ---- protocols compiled from source -------------------------------------------------------- */

static char *slurp_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Two sibling loops with the same variable name: each checkpoint name and
 * each measure reads the variable of the loop it is in (they once read a
 * slot of their own, unbound in the other loop: "variable i is not in
 * scope", "ensemble nan"). */
Test(checkpoint, sibling_loops_may_reuse_a_variable_name)
{
    static const char *text =
        "model loops\n"
        "use std.neurons (LIF)\n"
        "region R {\n"
        "  population exc = 40 LIF\n"
        "  ensembles exc = split(4)\n"
        "}\n"
        "stimulus R.exc weight 2 mV port exc\n"
        "simulation { dt = 0.1 ms  seed = 3 }\n"
        "protocol p {\n"
        "  repeat i 0..1 { rest 1 ms  checkpoint \"a{i}\"  phase a { measure rate(R.exc[i]) } }\n"
        "  repeat i 2..3 { rest 1 ms  checkpoint \"b{i}\"  phase b { measure rate(R.exc[i]) } }\n"
        "}\n";
    Sim s;
    sim_open(&s, text, 8);
    char *argv[] = {"sim", "--quiet", "--out", dir, NULL};
    cr_assert_eq(engram_main(&s.prog, 4, argv), 0);
    const char *names[] = {"a0", "a1", "b2", "b3"};
    for (int k = 0; k < 4; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "checkpoints/%s.h5", names[k]);
        cr_assert_eq(access(in_dir(nm), R_OK), 0, "no %s", nm);
    }
    const char *csv = slurp_file(in_dir("trials.csv"));
    cr_assert_not_null(csv);
    cr_assert(strstr(csv, "p,a,,,,1,") && strstr(csv, "p,a,,,,2,") && strstr(csv, "p,b,,,,3,") &&
                  strstr(csv, "p,b,,,,4,"), "%s", csv);
    sim_close(&s);
}

/* ---- SHA-256 (runtime/sha256.c) ----------------------------------------------------------- */

/* The checksums are streamed: any split of the input gives the one-shot digest. */
Test(checkpoint, sha256_streaming_matches_one_shot)
{
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t d[32], e[32];
    engram_sha256("abc", 3, d);
    cr_assert_eq(memcmp(d, abc, 32), 0);
    uint8_t buf[1000];
    for (size_t k = 0; k < sizeof buf; k++)
        buf[k] = (uint8_t)(k * 7 + 3);
    size_t splits[] = {1, 3, 55, 56, 63, 64, 65, 127, 128, 999};
    for (size_t s = 0; s < sizeof splits / sizeof *splits; s++) {
        EngramSha256 c;
        engram_sha256_init(&c);
        for (size_t at = 0; at < sizeof buf; at += splits[s])
            engram_sha256_update(&c, buf + at,
                                 sizeof buf - at < splits[s] ? sizeof buf - at : splits[s]);
        engram_sha256_final(&c, d);
        engram_sha256(buf, sizeof buf, e);
        cr_assert_eq(memcmp(d, e, 32), 0, "pieces of %zu bytes", splits[s]);
    }
}
