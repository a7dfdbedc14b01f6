/*
 * cli.c - the simulator's command line and engram_main, which runs one
 * simulation from start to end:
 *
 *   parse argv -> open (validate) the model -> resolve parameters (with the
 *   protocol's length as the duration unless --duration sets it) -> estimate
 *   memory (--max-memory, --dry-run) -> create the output folder -> build ->
 *   prepare the protocol -> restore a checkpoint (--restore) -> simulate ->
 *   write spikes.h5, weights.h5 (if recorded), summary.json and trials.csv
 *   (with a protocol) -> print the summary.
 *
 * Every failure prints "PROG: error: MESSAGE" on stderr and returns its exit
 * code (engram_rt.h): 1 model, 2 command line, 3 files, 4 memory.
 *
 * Order: options, sizes, usage and version, overrides, dry run, engram_main.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_checkpoint.h"
#include "rt_engine.h"
#include "rt_protocol.h"

/* ---- options ----------------------------------------------------------------- */

/* Matches "--name" or "--name=VALUE"; *value is the inline value or NULL. */
static bool match_opt(const char *arg, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '\0') {
        *value = NULL;
        return true;
    }
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    return false;
}

/* The value of an option that takes one: inline or the next argument. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char *inl,
                     const char **out, EngramError *err)
{
    if (inl) {
        *out = inl;
        return 0;
    }
    if (*i + 1 >= argc)
        return engram_fail(err, ENGRAM_EXIT_USAGE, "option %s needs a value", name);
    *out = argv[++*i];
    return 0;
}

int engram_options_parse(EngramOptions *opt, int argc, char **argv, EngramError *err)
{
    static const char *const valued[] = {"--out", "--seed", "--duration", "--set", "--max-memory",
                                         "--threads", "--protocol", "--restore"};
    memset(opt, 0, sizeof *opt);
    opt->sets = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *opt->sets);
    if (!opt->sets)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *inl = NULL, *v = NULL;
        int which = -1;
        for (int k = 0; k < 8 && which < 0; k++)
            if (match_opt(a, valued[k], &inl))
                which = k;
        if (which >= 0) {
            int rc = opt_value(argc, argv, &i, valued[which], inl, &v, err);
            if (rc)
                return rc;
            switch (which) {
            case 0: opt->out_dir = v; break;
            case 1: opt->seed = v; break;
            case 2: opt->duration = v; break;
            case 3: opt->sets[opt->nsets++] = v; break;
            case 6: opt->protocol = v; break;
            case 7: opt->restore = v; break;
            case 5: {
                char *end;
                long n = strtol(v, &end, 10);
                if (end == v || *end != '\0' || n < 1 || n > 1024)
                    return engram_fail(err, ENGRAM_EXIT_USAGE,
                                       "--threads %s: expected a whole number from 1 to 1024", v);
                opt->threads = (uint32_t)n;
                break;
            }
            default:
                if (!engram_parse_size(v, &opt->max_memory) || opt->max_memory == 0)
                    return engram_fail(err, ENGRAM_EXIT_USAGE,
                                       "--max-memory %s: expected a size such as 512M or 2G", v);
            }
        } else if (strcmp(a, "--dry-run") == 0) {
            opt->dry_run = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            opt->quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            opt->help = true;
        } else if (strcmp(a, "--version") == 0) {
            opt->version = true;
        } else if (a[0] == '-') {
            return engram_fail(err, ENGRAM_EXIT_USAGE, "unknown option '%s'", a);
        } else {
            return engram_fail(err, ENGRAM_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (opt->out_dir && opt->out_dir[0] == '\0')
        return engram_fail(err, ENGRAM_EXIT_USAGE, "--out needs a folder name");
    if ((opt->protocol && !opt->protocol[0]) || (opt->restore && !opt->restore[0]))
        return engram_fail(err, ENGRAM_EXIT_USAGE, "--%s needs a value",
                           opt->restore && !opt->restore[0] ? "restore" : "protocol");
    return 0;
}

void engram_options_free(EngramOptions *opt)
{
    free(opt->sets);
    opt->sets = NULL;
}

/* ---- sizes ------------------------------------------------------------------------ */

bool engram_parse_size(const char *text, uint64_t *bytes)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || !(v >= 0) || !isfinite(v) || text[0] == '-' || text[0] == '+')
        return false;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (mult > 1 && *end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0' || v * mult >= 1.8e19)
        return false;
    *bytes = (uint64_t)(v * mult);
    return true;
}

static uint64_t default_max_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return UINT64_MAX;
    return (uint64_t)((double)pages * (double)page * 0.8);
}

/* ---- usage and version ------------------------------------------------------------- */

void engram_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [options]\n"
            "  --out DIR          output folder (default out/MODEL); created if missing\n"
            "  --seed N           random seed (a whole number >= 0)\n"
            "  --duration T       simulated time with a unit: 1s, 500 ms (default: the\n"
            "                     protocol's length, else the model's duration)\n"
            "  --protocol NAME    the protocol to run (default: the first; none: no protocol)\n"
            "  --restore FILE     continue the run saved in a checkpoint (same model and\n"
            "                     parameters; outputs as if it had never stopped)\n"
            "  --set NAME=VALUE   override a parameter by its full path (repeatable),\n"
            "                     with a unit where it has one: --set V1.exc.tau_m=20ms\n"
            "  --threads N        threads per process (default: the cores, shared by the\n"
            "                     ranks of a node); results do not depend on N\n"
            "  --dry-run          print sizes, synapse counts and memory, then stop\n"
            "  --max-memory SIZE  refuse to run above this estimate (512M, 2G;\n"
            "                     default 80%% of physical memory)\n"
            "  --quiet            no summary or progress\n"
            "  --version          versions, model hash and precision\n"
            "  --help             this text\n",
            prog);
}

static void print_version(FILE *out, const EngramModel *m)
{
    fprintf(out, "engram runtime %s\nmodel: %s\nsha256: %s\nprecision: %s\ncompiler: %s\n",
            ENGRAM_VERSION, engram_model_str(m, m->hdr->name), m->hdr->source_sha256,
            m->hdr->precision == 4 ? "float (4 bytes)" : "double (8 bytes)",
            m->hdr->compiler_version);
}

/* ---- overrides ---------------------------------------------------------------------- */

/* --set, --duration and --seed as overrides; flags are built in *texts. */
static int make_overrides(const EngramModel *m, const EngramOptions *opt, EngramOverride **out,
                          char **texts, size_t *n, EngramError *err)
{
    size_t cap = opt->nsets + 2, len = 0, tlen = 0;
    for (size_t k = 0; k < opt->nsets; k++)
        tlen += strlen(opt->sets[k]) + 8;
    tlen += (opt->seed ? strlen(opt->seed) : 0) + (opt->duration ? strlen(opt->duration) : 0) + 32;
    EngramOverride *ov = calloc(cap, sizeof *ov);
    char *t = malloc(tlen), *tp = t;
    if (!ov || !t) {
        free(ov);
        free(t);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    }
    *out = ov;
    *texts = t;
    for (size_t k = 0; k < opt->nsets; k++) {
        const char *s = opt->sets[k], *eq = strchr(s, '=');
        if (!eq || eq == s)
            return engram_fail(err, ENGRAM_EXIT_USAGE, "--set %s: expected NAME=VALUE", s);
        ov[len].flag = tp;
        tp += sprintf(tp, "--set %s", s) + 1;
        ov[len].name = s;
        ov[len].name_len = (size_t)(eq - s);
        ov[len++].value = eq + 1;
    }
    const char *names[2] = {engram_model_str(m, m->params[m->hdr->duration_param].name),
                            engram_model_str(m, m->params[m->hdr->seed_param].name)};
    const char *vals[2] = {opt->duration, opt->seed}, *flags[2] = {"--duration", "--seed"};
    for (int k = 0; k < 2; k++) {
        if (!vals[k])
            continue;
        ov[len].flag = tp;
        tp += sprintf(tp, "%s %s", flags[k], vals[k]) + 1;
        ov[len].name = names[k];
        ov[len].name_len = strlen(names[k]);
        ov[len++].value = vals[k];
    }
    *n = len;
    return 0;
}

/* ---- dry run ------------------------------------------------------------------------ */

static void print_dry_run(FILE *out, const EngramModel *m, const double *pv,
                          const EngramEstimate *est, uint64_t limit, uint64_t per_rank,
                          uint32_t nranks, uint32_t threads)
{
    char b1[32], b2[32];
    fprintf(out, "model %s (sha256 %.16s...), dt %g ms, duration %g ms, seed %.0f\n",
            engram_model_str(m, m->hdr->name), m->hdr->source_sha256, pv[m->hdr->dt_param],
            pv[m->hdr->duration_param], pv[m->hdr->seed_param]);
    fprintf(out, "populations:\n");
    for (uint32_t i = 0; i < m->hdr->npops; i++)
        fprintf(out, "  %-24s %-16s %10u neurons  %12s\n", engram_model_str(m, m->pops[i].name),
                engram_model_str(m, m->pops[i].model), est->pop_size[i],
                engram_format_bytes(est->pop_bytes[i], b1, sizeof b1));
    if (m->hdr->nprojs)
        fprintf(out, "projections:\n");
    for (uint32_t j = 0; j < m->hdr->nprojs; j++)
        fprintf(out, "  %-24s %14.0f synapses%s  %12s%s\n", engram_model_str(m, m->projs[j].name),
                est->proj_synapses[j], est->proj_exact[j] ? "           " : " (expected)",
                engram_format_bytes(est->proj_bytes[j], b1, sizeof b1),
                m->projs[j].plastic ? "  plastic" : "");
    if (m->hdr->nweight_recs)
        fprintf(out, "weight recordings:\n");
    for (uint32_t k = 0; k < m->hdr->nweight_recs; k++)
        fprintf(out, "  %-24s every %g ms %26s\n",
                engram_model_str(m, m->projs[m->weight_recs[k].proj].name),
                pv[m->weight_recs[k].every_param],
                engram_format_bytes(est->wrec_bytes[k], b1, sizeof b1));
    fprintf(out, "total: %llu neurons, %.0f synapses\n", (unsigned long long)est->neurons,
            est->synapses);
    fprintf(out, "memory: neurons %s, synapses %s, input rings %s, recording %s\n",
            engram_format_bytes(est->bytes_neurons, b1, sizeof b1),
            engram_format_bytes(est->bytes_synapses, b2, sizeof b2),
            engram_format_bytes(est->bytes_rings, (char[32]){0}, 32),
            engram_format_bytes(est->bytes_record, (char[32]){0}, 32));
    fprintf(out, "estimated memory: %s (limit %s)\n",
            engram_format_bytes(est->bytes_total, b1, sizeof b1),
            engram_format_bytes(limit, b2, sizeof b2));
    if (nranks > 1 || threads > 1)
        fprintf(out, "memory per rank: %s (%u rank%s x %u thread%s; limit per rank %s)\n",
                engram_format_bytes(per_rank, b1, sizeof b1), nranks, nranks > 1 ? "s" : "",
                threads, threads > 1 ? "s" : "", engram_format_bytes(limit, b2, sizeof b2));
}

/* Memory of one rank: its share of neurons, synapses and rings, one copy of
 * the pre traces of plastic projections per thread, the global spike lists,
 * and (rank 0) the recordings it gathers. */
static uint64_t per_rank_bytes(const EngramModel *m, const EngramEstimate *est, uint32_t nranks,
                               uint32_t threads)
{
    if (nranks == 1 && threads == 1)
        return est->bytes_total;
    double b = (double)(est->bytes_neurons + est->bytes_synapses + est->bytes_rings) / nranks;
    b += (double)est->bytes_record + (double)est->neurons * 8 + (1 << 20);
    for (uint32_t j = 0; j < m->hdr->nprojs; j++) {
        const EngramProjDesc *d = &m->projs[j];
        if (d->plastic)
            b += (double)threads * est->pop_size[d->src_pop] * (d->npre * m->hdr->precision + 4);
    }
    return (uint64_t)b;
}

static uint32_t default_threads(const EngramEstimate *est, uint32_t nranks)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *ls = nranks > 1 ? getenv("OMPI_COMM_WORLD_LOCAL_SIZE") : NULL;
    long local = ls ? atol(ls) : 1;
    long t = cores > 0 ? cores / (local > 0 ? local : 1) : 1;
    long by_size = (long)(est->neurons / nranks / 2000);   /* >= 2000 neurons a thread */
    if (t > by_size)
        t = by_size;
    if (t > 64)
        t = 64;
    return t < 1 ? 1 : (uint32_t)t;
}

/* ---- engram_main ------------------------------------------------------------------------ */

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *prog_name(int argc, char **argv)
{
    if (argc < 1 || !argv[0] || !argv[0][0])
        return "engram-sim";
    const char *s = strrchr(argv[0], '/');
    return s ? s + 1 : argv[0];
}

/* Everything engram_main owns, freed in one place. */
typedef struct EngramRun {
    uint32_t rank, nranks, threads;
    EngramOptions opt;
    EngramModel model;
    EngramOverride *ov;
    char *ov_text;
    size_t nov;
    double *params;
    EngramEstimate est;
    EngramNetwork net;
    char *out_dir;
    uint32_t protocol;          /* index, or ENGRAM_NONE */
    char proto_duration[64];    /* the protocol's length as a --duration value */
} EngramRun;

static void run_free(EngramRun *r)
{
    engram_options_free(&r->opt);
    free(r->ov);
    free(r->ov_text);
    free(r->params);
    engram_estimate_free(&r->est);
    engram_network_free(&r->net);
    free(r->out_dir);
}

/* Whether an override (--duration or --set duration=) sets the duration. */
static bool duration_given(const EngramRun *r)
{
    const EngramModel *m = &r->model;
    const char *name = engram_model_str(m, m->params[m->hdr->duration_param].name);
    for (size_t k = 0; k < r->nov; k++)
        if (r->ov[k].name_len == strlen(name) && memcmp(r->ov[k].name, name, r->ov[k].name_len) == 0)
            return true;
    return false;
}

/* The protocol; unless the duration is given, its length becomes the
 * duration, resolved as if --duration had said so (parameters that read the
 * duration see it). */
static int run_protocol_duration(EngramRun *r, EngramError *err)
{
    const EngramModel *m = &r->model;
    int rc = engram_protocol_select(m, r->opt.protocol, &r->protocol, err);
    if (rc || r->protocol == ENGRAM_NONE || duration_given(r))
        return rc;
    int64_t steps;
    if ((rc = engram_protocol_length(m, r->protocol, r->params, &steps, err)))
        return rc;
    snprintf(r->proto_duration, sizeof r->proto_duration, "%.17g ms",
             (double)steps * r->params[m->hdr->dt_param]);
    EngramOverride *ov = realloc(r->ov, (r->nov + 1) * sizeof *ov);
    if (!ov)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    r->ov = ov;
    const char *name = engram_model_str(m, m->params[m->hdr->duration_param].name);
    ov[r->nov++] = (EngramOverride){"the protocol's length", name, strlen(name), r->proto_duration};
    return engram_params_resolve(m, r->ov, r->nov, r->params, err);
}

/* Parameters, estimate and the memory limit. */
static int run_prepare(EngramRun *r, FILE *out, EngramError *err)
{
    const EngramModel *m = &r->model;
    int rc = make_overrides(m, &r->opt, &r->ov, &r->ov_text, &r->nov, err);
    if (rc)
        return rc;
    r->params = calloc(m->hdr->nparams + 1, sizeof *r->params);
    if (!r->params)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    if ((rc = engram_params_resolve(m, r->ov, r->nov, r->params, err)) ||
        (rc = run_protocol_duration(r, err)) ||
        (rc = engram_estimate(m, r->params, &r->est, err)))
        return rc;
    uint64_t limit = r->opt.max_memory ? r->opt.max_memory : default_max_memory();
    r->threads = r->opt.threads ? r->opt.threads : default_threads(&r->est, r->nranks);
    uint64_t need = per_rank_bytes(m, &r->est, r->nranks, r->threads);
    if (r->opt.dry_run) {
        if (out) {
            print_dry_run(out, m, r->params, &r->est, limit, need, r->nranks, r->threads);
            if (r->protocol != ENGRAM_NONE)
                fprintf(out, "protocol %s\n",
                        engram_model_str(m, m->protocols[r->protocol].name));
            if (need > limit)
                fprintf(out, "this is over the limit: a run would stop here (exit %d)\n",
                        ENGRAM_EXIT_RESOURCE);
        }
        return 0;
    }
    if (need > limit) {
        char b1[32], b2[32];
        return engram_fail(err, ENGRAM_EXIT_RESOURCE,
                           "the estimated memory%s, %s, is over the limit of %s; lower the sizes "
                           "(--set)%s or raise --max-memory", r->nranks > 1 ? " per rank" : "",
                           engram_format_bytes(need, b1, sizeof b1),
                           engram_format_bytes(limit, b2, sizeof b2),
                           r->nranks > 1 ? ", use more ranks" : "");
    }
    return 0;
}

/* Every rank knows the folder (checkpoints are read by all); rank 0 makes it. */
static int run_output_dir(EngramRun *r, bool root, EngramError *err)
{
    const char *name = engram_model_str(&r->model, r->model.hdr->name);
    if (r->opt.out_dir) {
        r->out_dir = strdup(r->opt.out_dir);
    } else {
        r->out_dir = malloc(strlen(name) + 8);
        if (r->out_dir)
            sprintf(r->out_dir, "out/%s", name[0] ? name : "model");
    }
    if (!r->out_dir)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    return root ? engram_make_dirs(r->out_dir, err) : 0;
}

/* --restore: the network's state from the checkpoint, the protocol's from
 * its extra bytes (none when the run has no protocol). */
static int run_restore(EngramRun *r, EngramError *err)
{
    void *extra = NULL;
    size_t len = 0;
    int rc = engram_checkpoint_read(&r->net, r->opt.restore, &extra, &len, err);
    if (!rc && r->net.proto)
        rc = engram_protocol_load(&r->net, extra, len, err);
    free(extra);
    return engram_comm_agree(rc, r->rank, err);
}

static int run_all(EngramRun *r, const EngramProgram *prog, int argc, char **argv,
                   EngramError *err)
{
    const char *prog_nm = prog_name(argc, argv);
    bool root = r->rank == 0;
    int rc = engram_options_parse(&r->opt, argc, argv, err);
    if (rc) {
        if (root) {
            fprintf(stderr, "%s: error: %s\n", prog_nm, err->msg);
            engram_usage(stderr, prog_nm);
        }
        return rc;
    }
    if (r->opt.help) {
        if (root)
            engram_usage(stdout, prog_nm);
        return 0;
    }
    double t0 = wall_s();
    if ((rc = engram_model_open(&r->model, prog, err)))
        return rc;
    if (r->opt.version) {
        if (root)
            print_version(stdout, &r->model);
        return 0;
    }
    rc = engram_comm_agree(run_prepare(r, root ? stdout : NULL, err), r->rank, err);
    if (rc || r->opt.dry_run)
        return rc;
    if ((rc = engram_comm_agree(run_output_dir(r, root, err), r->rank, err)))
        return rc;
    EngramLayout lay = {r->rank, r->nranks, r->threads};
    rc = engram_network_build_layout(&r->net, &r->model, r->params, &lay, err);
    if (!rc)
        rc = engram_protocol_init(&r->net, r->protocol, r->out_dir, err);
    if ((rc = engram_comm_agree(rc, r->rank, err)))
        return rc;
    if (r->opt.restore && (rc = run_restore(r, err)))
        return rc;
    EngramTiming timing = {.setup_s = wall_s() - t0};
    EngramSimOptions so = {.progress = root && !r->opt.quiet && isatty(STDERR_FILENO),
                           .timing = &timing};
    double t1 = wall_s();
    if ((rc = engram_simulate(&r->net, &so, err)) || (rc = engram_network_gather(&r->net, err)))
        return rc;
    timing.simulate_s = wall_s() - t1;
    if (root && !(rc = engram_write_spikes(&r->net, r->out_dir, err)) &&
        !(rc = engram_write_weights(&r->net, r->out_dir, err)) &&
        !(rc = engram_write_summary(&r->net, &timing, r->out_dir, err)))
        rc = engram_write_trials(&r->net, r->out_dir, err);
    if ((rc = engram_comm_agree(rc, r->rank, err)))
        return rc;
    if (root && !r->opt.quiet) {
        engram_print_summary(stdout, &r->net, &timing);
        engram_protocol_print(stdout, &r->net);
        if (r->nranks > 1 || r->threads > 1)
            printf("ran on %u rank%s x %u thread%s\n", r->nranks, r->nranks > 1 ? "s" : "",
                   r->threads, r->threads > 1 ? "s" : "");
        printf("outputs in %s\n", r->out_dir);
    }
    return 0;
}

int engram_main(const EngramProgram *prog, int argc, char **argv)
{
    EngramRun run;
    memset(&run, 0, sizeof run);
    EngramError err = {0};
    int rc = engram_comm_init(&argc, &argv, &run.rank, &run.nranks, &err);
    if (rc) {
        fprintf(stderr, "%s: error: %s\n", prog_name(argc, argv), err.msg);
    } else {
        rc = run_all(&run, prog, argc, argv, &err);
        /* option errors were printed with the usage; the rest are printed here, by rank 0 */
        if (rc && err.msg[0] && run.rank == 0 && !(rc == ENGRAM_EXIT_USAGE && !run.model.hdr))
            fprintf(stderr, "%s: error: %s\n", prog_name(argc, argv), err.msg);
    }
    fflush(stdout);
    fflush(stderr);
    run_free(&run);
    engram_comm_finalize();
    return rc;
}
