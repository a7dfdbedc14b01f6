/*
 * test_output.c - the output folder, spikes.h5 (SONATA layout, sort order,
 * empty populations, byte-identical rewrites, atomic replacement) and
 * summary.json (escaping, lists, numbers), on a model of spike-times
 * sources, which need no kernels.
 */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engram_rt.h"
#include "rt_engine.h"

static char root[256];

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/engram_test_output_XXXXXX");
    cr_assert(mkdtemp(root));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_assert(system(cmd) == 0);
}

TestSuite(output, .init = setup, .fini = teardown);

static uint32_t param(EngramBlobWriter *w, const char *name, const char *unit, uint32_t flags,
                      double v)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(w, name);
    p.unit = engram_blob_string(w, unit);
    p.flags = flags;
    p.value = (EngramCode){engram_blob_insn_count(w), 1};
    engram_blob_insn(w, (EngramInsn){ENGRAM_OP_CONST, 0, v});
    return engram_blob_param(w, &p);
}

static uint32_t list(EngramBlobWriter *w, const char *name, const double *v, uint32_t n)
{
    EngramParamDesc p = {0};
    p.name = engram_blob_string(w, name);
    p.unit = engram_blob_string(w, "ms");
    p.flags = ENGRAM_PARAM_LIST;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = engram_blob_list_value(w, v[k]);
        if (k == 0)
            p.list_first = i;
    }
    p.list_count = n;
    return engram_blob_param(w, &p);
}

static void source(EngramBlobWriter *w, const char *name, uint32_t size, uint32_t times,
                   uint32_t idx, bool record)
{
    EngramPopDesc p = {0};
    p.name = engram_blob_string(w, name);
    p.model = engram_blob_string(w, "SpikeTimes");
    p.kind = ENGRAM_POP_SPIKE_TIMES;
    p.size_param = size;
    p.update_kernel = ENGRAM_NONE;
    p.method = ENGRAM_METHOD_NONE;
    p.refractory_param = p.rate_param = ENGRAM_NONE;
    p.times_param = times;
    p.indices_param = idx;
    p.record_spikes = record;
    engram_blob_pop(w, &p);
}

/* A: 4 neurons with spikes given out of order; B: none; C: not recorded. */
static EngramProgram make_model(const char *name)
{
    EngramBlobWriter *w = engram_blob_writer_new();
    uint32_t dt = param(w, "dt", "ms", ENGRAM_PARAM_POSITIVE, 0.1);
    uint32_t dur = param(w, "duration", "ms", 0, 10);
    uint32_t seed = param(w, "seed", "1", ENGRAM_PARAM_INTEGER, 3);
    double ta[] = {2.0, 0.3, 2.0, 0.1, 9.95, 12.0}, ia[] = {3, 1, 0, 2, 1, 0};
    uint32_t sa = param(w, "R.A.size", "1", ENGRAM_PARAM_SIZE, 4);
    uint32_t lta = list(w, "R.A.times", ta, 6), lia = list(w, "R.A.indices", ia, 6);
    uint32_t sb = param(w, "R.B.size", "1", ENGRAM_PARAM_SIZE, 2);
    uint32_t ltb = list(w, "R.B.times", NULL, 0);
    double tc[] = {1.0};
    uint32_t sc = param(w, "R.C.size", "1", ENGRAM_PARAM_SIZE, 1);
    uint32_t ltc = list(w, "R.C.times", tc, 1);
    source(w, "R.A", sa, lta, lia, true);
    source(w, "R.B", sb, ltb, ENGRAM_NONE, true);
    source(w, "R.C", sc, ltc, ENGRAM_NONE, false);
    EngramModelDesc h = {0};
    h.name = engram_blob_string(w, name);
    h.precision = 8;
    strcpy(h.source_sha256, "feed");
    h.dt_param = dt;
    h.duration_param = dur;
    h.seed_param = seed;
    uint64_t size;
    uint8_t *b = engram_blob_finish(w, &h, &size);
    engram_blob_writer_free(w);
    cr_assert(b);
    return (EngramProgram){b, size, NULL};
}

typedef struct Run {
    EngramProgram prog;
    EngramModel m;
    double pv[32];
    EngramNetwork net;
} Run;

static void run_model(Run *r, const char *name)
{
    EngramError err = {0};
    r->prog = make_model(name);
    cr_assert_eq(engram_model_open(&r->m, &r->prog, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_params_resolve(&r->m, NULL, 0, r->pv, &err), 0, "%s", err.msg);
    cr_assert_eq(engram_network_build(&r->net, &r->m, r->pv, &err), 0, "%s", err.msg);
    EngramSimOptions so = {.progress = false};
    cr_assert_eq(engram_simulate(&r->net, &so, &err), 0, "%s", err.msg);
}

static void run_free(Run *r)
{
    engram_network_free(&r->net);
    free((void *)r->prog.blob);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    *n = fread(s, 1, (size_t)len, f);
    s[*n] = '\0';
    fclose(f);
    return s;
}

Test(output, make_dirs)
{
    EngramError err = {0};
    char dir[400];
    snprintf(dir, sizeof dir, "%s/a/b/c", root);
    cr_assert_eq(engram_make_dirs(dir, &err), 0);
    cr_assert_eq(engram_make_dirs(dir, &err), 0);   /* exists: fine */
    snprintf(dir, sizeof dir, "%s/a/b/c/", root);
    cr_assert_eq(engram_make_dirs(dir, &err), 0);   /* trailing slash */
    char file[400];
    snprintf(file, sizeof file, "%s/f", root);
    fclose(fopen(file, "w"));
    snprintf(dir, sizeof dir, "%s/f/x", root);
    cr_assert_eq(engram_make_dirs(dir, &err), ENGRAM_EXIT_IO);
    cr_assert(strstr(err.msg, file), "%s", err.msg);
}

Test(output, spikes_sorted_and_complete)
{
    Run r;
    run_model(&r, "m");
    EngramError err = {0};
    cr_assert_eq(engram_write_spikes(&r.net, root, &err), 0, "%s", err.msg);
    char path[400];
    snprintf(path, sizeof path, "%s/spikes.h5", root);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    double ts[8];
    uint64_t ids[8];
    hid_t d = H5Dopen2(f, "/spikes/R.A/timestamps", H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    cr_assert_eq(H5Sget_simple_extent_npoints(s), 5);   /* 12 ms is after the end */
    H5Sclose(s);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ts);
    H5Dclose(d);
    d = H5Dopen2(f, "/spikes/R.A/node_ids", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
    H5Dclose(d);
    double want_t[] = {0.1, 0.3, 2.0, 2.0, 9.9};
    uint64_t want_id[] = {2, 1, 0, 3, 1};
    for (int k = 0; k < 5; k++) {
        cr_assert_float_eq(ts[k], want_t[k], 1e-12, "spike %d at %g", k, ts[k]);
        cr_assert_eq(ids[k], want_id[k]);
    }
    /* the empty population exists with empty datasets; the unrecorded one does not */
    d = H5Dopen2(f, "/spikes/R.B/node_ids", H5P_DEFAULT);
    cr_assert(d >= 0);
    s = H5Dget_space(d);
    cr_assert_eq(H5Sget_simple_extent_npoints(s), 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    cr_assert(H5Lexists(f, "/spikes/R.C", H5P_DEFAULT) <= 0);
    H5Fclose(f);
    cr_assert_eq(r.net.pops[2].total_spikes, 1);   /* counted though not recorded */
    run_free(&r);
}

Test(output, rewrite_is_byte_identical_and_atomic)
{
    Run r;
    run_model(&r, "m");
    EngramError err = {0};
    char path[400];
    snprintf(path, sizeof path, "%s/spikes.h5", root);
    cr_assert_eq(engram_write_spikes(&r.net, root, &err), 0);
    size_t n1 = 0, n2 = 0;
    char *a = slurp(path, &n1);
    sleep(1);
    cr_assert_eq(engram_write_spikes(&r.net, root, &err), 0);
    char *b = slurp(path, &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1), 0);
    free(a);
    free(b);
    /* only our two files, no temporaries */
    EngramTiming t = {.setup_s = 0.5, .simulate_s = 1.5};
    cr_assert_eq(engram_write_summary(&r.net, &t, root, &err), 0);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 2", root);
    cr_assert_eq(system(cmd), 0);
    run_free(&r);
}

Test(output, write_into_missing_dir_fails_with_path)
{
    Run r;
    run_model(&r, "m");
    EngramError err = {0};
    char dir[400];
    snprintf(dir, sizeof dir, "%s/missing", root);
    cr_assert_eq(engram_write_spikes(&r.net, dir, &err), ENGRAM_EXIT_IO);
    cr_assert(strstr(err.msg, "missing/spikes.h5"), "%s", err.msg);
    err = (EngramError){0};
    EngramTiming t = {.setup_s = 0, .simulate_s = 0};
    cr_assert_eq(engram_write_summary(&r.net, &t, dir, &err), ENGRAM_EXIT_IO);
    cr_assert(strstr(err.msg, "missing/summary.json"), "%s", err.msg);
    run_free(&r);
}

Test(output, summary_escapes_and_lists)
{
    Run r;
    run_model(&r, "we\"ird\\na\nme\t\x01");
    EngramError err = {0};
    EngramTiming t = {.setup_s = 0.25, .simulate_s = 1.0};
    cr_assert_eq(engram_write_summary(&r.net, &t, root, &err), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/summary.json", root);
    size_t n;
    char *s = slurp(path, &n);
    cr_assert(strstr(s, "\"name\": \"we\\\"ird\\\\na\\nme\\t\\u0001\""), "%s", s);
    cr_assert(strstr(s, "\"R.A.times\": {\"value\": [2, 0.3, 2, 0.1, 9.95, 12], \"unit\": \"ms\"}"),
              "%s", s);
    cr_assert(strstr(s, "\"R.B.times\": {\"value\": [], \"unit\": \"ms\"}"), "%s", s);
    cr_assert(strstr(s, "\"R.A\": {\"model\": \"SpikeTimes\", \"source\": true, \"size\": 4, "
                        "\"spikes\": 5, \"rate_hz\": 125}"), "%s", s);
    cr_assert(strstr(s, "\"seed\": 3,"), "%s", s);
    cr_assert(strstr(s, "\"synapses\": {\"total\": 0}"), "%s", s);
    cr_assert(strstr(s, "\"setup_s\": 0.25, \"simulate_s\": 1,"), "%s", s);
    free(s);
    /* a JSON parser agrees, where python3 is around */
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "command -v python3 >/dev/null || exit 0; python3 -c 'import json,sys; "
             "json.load(open(sys.argv[1]))' '%s'", path);
    cr_assert_eq(system(cmd), 0);
    run_free(&r);
}

Test(output, human_summary)
{
    Run r;
    run_model(&r, "m");
    char path[400];
    snprintf(path, sizeof path, "%s/stdout.txt", root);
    FILE *f = fopen(path, "w");
    EngramTiming t = {.setup_s = 0.1, .simulate_s = 0.02};
    engram_print_summary(f, &r.net, &t);
    fclose(f);
    size_t n;
    char *s = slurp(path, &n);
    cr_assert(strstr(s, "m: 7 neurons, 0 synapses"), "%s", s);
    cr_assert(strstr(s, "simulated 10 ms in 0.020 s (0.500x realtime)"), "%s", s);
    cr_assert(strstr(s, "R.A"), "%s", s);
    cr_assert(strstr(s, "125.00 Hz"), "%s", s);
    free(s);
    run_free(&r);
}

Test(output, spike_times_errors)
{
    EngramBlobWriter *w = engram_blob_writer_new();
    uint32_t dt = param(w, "dt", "ms", 0, 0.1);
    uint32_t dur = param(w, "duration", "ms", 0, 10);
    uint32_t seed = param(w, "seed", "1", 0, 1);
    double t[] = {1.0, 1.04}, i[] = {0, 0};
    uint32_t sz = param(w, "S.size", "1", ENGRAM_PARAM_SIZE, 2);
    uint32_t lt = list(w, "S.times", t, 2), li = list(w, "S.indices", i, 2);
    source(w, "S", sz, lt, li, true);
    EngramModelDesc h = {0};
    h.precision = 8;
    h.dt_param = dt;
    h.duration_param = dur;
    h.seed_param = seed;
    uint64_t size;
    uint8_t *b = engram_blob_finish(w, &h, &size);
    engram_blob_writer_free(w);
    EngramProgram prog = {b, size, NULL};
    EngramModel m;
    EngramError err = {0};
    cr_assert_eq(engram_model_open(&m, &prog, &err), 0);
    double pv[8];
    cr_assert_eq(engram_params_resolve(&m, NULL, 0, pv, &err), 0);
    EngramNetwork net;
    cr_assert_eq(engram_network_build(&net, &m, pv, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "two spikes in the step at t = 1 ms"), "%s", err.msg);
    /* an index outside the population */
    err = (EngramError){0};
    pv[sz] = 0;
    cr_assert_eq(engram_network_build(&net, &m, pv, &err), ENGRAM_EXIT_MODEL);
    cr_assert(strstr(err.msg, "spike index 0 is not a neuron"), "%s", err.msg);
    free(b);
}
