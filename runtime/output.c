/*
 * output.c - what a run leaves in its --out folder, and the lines it prints.
 *
 * spikes.h5 is a SONATA spike report (as libsonata reads it): root attributes
 * magic = 0x0A7A and version = [0, 1]; per recorded population a group
 * /spikes/<population> with the int8 enum attribute sorting = by_time and
 * the datasets timestamps (f64, attribute units = "ms") and node_ids (u64),
 * sorted by time, ties by id.  Object timestamps are off, so equal runs give
 * byte-identical files.
 *
 * weights.h5 (only when the model records weights): per recording a group
 * /<projection> ('/' and '%' in the name escaped as %2F and %25) with the
 * attribute unit (the weight's), times (f64, units = "ms"), mean (f64), and
 * when per synapse weights (f64 samples x nsyn, CSR order), source and
 * target (u64 per synapse).  Object timestamps are off here too.
 *
 * summary.json holds the run's provenance and results; everything outside
 * "timing" is a function of model, overrides and seed.  Its "protocol"
 * member and trials.csv come from protocol_output.c, written through
 * engram_write_text_atomically here.
 *
 * Every file is written to a temporary name in the folder and renamed over
 * the old one, so a reader never sees half a file.
 *
 * Order: folders and atomic files, spikes.h5, weights.h5, JSON helpers,
 * summary.json, the human summary.
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rt_engine.h"
#include "rt_protocol.h"

/* ---- folders and atomic files ------------------------------------------------ */

int engram_make_dirs(const char *dir, EngramError *err)
{
    size_t n = strlen(dir);
    char *path = malloc(n + 1);
    if (!path)
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    memcpy(path, dir, n + 1);
    int rc = 0;
    for (size_t i = 1; i <= n && !rc; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        struct stat st;
        if (mkdir(path, 0777) != 0 && !(errno == EEXIST && stat(path, &st) == 0 &&
                                        S_ISDIR(st.st_mode)))
            rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot create the output folder %s: %s",
                             path, errno == EEXIST ? "a file is in the way" : strerror(errno));
        path[i] = c;
    }
    if (!rc && access(dir, W_OK) != 0)
        rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot write to the output folder %s: %s", dir,
                         strerror(errno));
    free(path);
    return rc;
}

/* DIR/NAME and DIR/.NAME.tmp.PID */
static int out_paths(const char *dir, const char *name, char **final, char **tmp, EngramError *err)
{
    size_t n = strlen(dir) + strlen(name) + 48;
    *final = malloc(n);
    *tmp = malloc(n);
    if (!*final || !*tmp) {
        free(*final);
        free(*tmp);
        return engram_fail(err, ENGRAM_EXIT_RESOURCE, "out of memory");
    }
    snprintf(*final, n, "%s/%s", dir, name);
    snprintf(*tmp, n, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    return 0;
}

static int commit(const char *tmp, const char *final, EngramError *err)
{
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return engram_fail(err, ENGRAM_EXIT_IO, "cannot write %s: %s", final, strerror(e));
    }
    return 0;
}

/* ---- spikes.h5 -------------------------------------------------------------------- */

typedef struct H5Ids {
    hid_t file, gcpl, dcpl, lcpl;
} H5Ids;

static herr_t attr_write(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf)
{
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return -1;
    herr_t rc = H5Awrite(a, type, buf);
    H5Aclose(a);
    return rc;
}

static herr_t write_root_attrs(hid_t file)
{
    hid_t scalar = H5Screate(H5S_SCALAR);
    hsize_t two = 2;
    hid_t pair = H5Screate_simple(1, &two, NULL);
    uint32_t magic = 0x0A7A, version[2] = {0, 1};
    herr_t rc = attr_write(file, "magic", H5T_STD_U32LE, scalar, &magic);
    if (rc >= 0)
        rc = attr_write(file, "version", H5T_STD_U32LE, pair, version);
    H5Sclose(scalar);
    H5Sclose(pair);
    return rc;
}

static herr_t write_sorting(hid_t group)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t v;
    v = 0; H5Tenum_insert(t, "none", &v);
    v = 1; H5Tenum_insert(t, "by_id", &v);
    v = 2; H5Tenum_insert(t, "by_time", &v);
    hid_t s = H5Screate(H5S_SCALAR);
    v = 2;
    herr_t rc = attr_write(group, "sorting", t, s, &v);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

/* A variable-length UTF-8 string attribute. */
static herr_t write_str_attr(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    herr_t rc = attr_write(obj, name, t, s, &value);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

static herr_t write_units(hid_t dset)
{
    return write_str_attr(dset, "units", "ms");
}

static herr_t write_dataset(const H5Ids *h, hid_t group, const char *name, hid_t ftype,
                            hid_t mtype, size_t n, const void *buf, bool units)
{
    hsize_t dims = n;
    hid_t s = H5Screate_simple(1, &dims, NULL);
    hid_t d = H5Dcreate2(group, name, ftype, s, H5P_DEFAULT, h->dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : 0;
    if (rc >= 0 && n)
        rc = H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (rc >= 0 && units)
        rc = write_units(d);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return rc;
}

static herr_t write_population(const H5Ids *h, hid_t spikes, const EngramNetwork *net,
                               const EngramPopRt *p)
{
    size_t n = p->rec_len;
    double *ts = malloc((n + 1) * sizeof *ts);
    uint64_t *ids = malloc((n + 1) * sizeof *ids);
    herr_t rc = (ts && ids) ? 0 : -1;
    for (size_t k = 0; k < n && rc >= 0; k++) {
        ts[k] = (double)p->rec_step[k] * net->dt;
        ids[k] = p->rec_id[k];
    }
    hid_t g = rc < 0 ? -1 : H5Gcreate2(spikes, p->name, h->lcpl, h->gcpl, H5P_DEFAULT);
    if (g < 0)
        rc = -1;
    if (rc >= 0)
        rc = write_sorting(g);
    if (rc >= 0)
        rc = write_dataset(h, g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, ts, true);
    if (rc >= 0)
        rc = write_dataset(h, g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, n, ids, false);
    if (g >= 0)
        H5Gclose(g);
    free(ts);
    free(ids);
    return rc;
}

static herr_t write_spike_file(const char *path, const EngramNetwork *net)
{
    H5Ids h = {-1, -1, -1, -1};
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    h.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(h.gcpl, 0);
    h.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(h.dcpl, 0);
    h.lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(h.lcpl, 0);
    h.file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    herr_t rc = h.file < 0 ? -1 : write_root_attrs(h.file);
    hid_t spikes = rc < 0 ? -1 : H5Gcreate2(h.file, "spikes", h.lcpl, h.gcpl, H5P_DEFAULT);
    if (spikes < 0)
        rc = -1;
    for (uint32_t i = 0; i < net->npops && rc >= 0; i++)
        if (net->pops[i].desc->record_spikes)
            rc = write_population(&h, spikes, net, &net->pops[i]);
    if (spikes >= 0)
        H5Gclose(spikes);
    if (h.file >= 0 && H5Fclose(h.file) < 0)
        rc = -1;
    H5Pclose(fcpl);
    H5Pclose(h.gcpl);
    H5Pclose(h.dcpl);
    H5Pclose(h.lcpl);
    return rc;
}

/* Writes DIR/NAME through `write` into a temporary file, then renames it into
 * place, so a reader never sees a half-written file. */
static int write_h5_atomically(const EngramNetwork *net, const char *dir, const char *name,
                               herr_t (*write)(const char *, const EngramNetwork *),
                               EngramError *err)
{
    char *final, *tmp;
    int rc = out_paths(dir, name, &final, &tmp, err);
    if (rc)
        return rc;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    errno = 0;
    if (write(tmp, net) < 0) {
        int e = errno;
        unlink(tmp);
        rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot write %s: %s", final,
                         e ? strerror(e) : "HDF5 error");
    } else {
        rc = commit(tmp, final, err);
    }
    free(final);
    free(tmp);
    return rc;
}

int engram_write_spikes(const EngramNetwork *net, const char *dir, EngramError *err)
{
    return write_h5_atomically(net, dir, "spikes.h5", write_spike_file, err);
}

/* ---- weights.h5 ------------------------------------------------------------------------ */

/* The projection's name as one HDF5 link name: '/' -> %2F, '%' -> %25. */
static char *escape_name(const char *name)
{
    char *out = malloc(3 * strlen(name) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = name; *p; p++) {
        if (*p == '/' || *p == '%')
            o += sprintf(o, "%%%02X", (unsigned)(unsigned char)*p);
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

static herr_t write_matrix(const H5Ids *h, hid_t group, const char *name, size_t rows,
                           size_t cols, const double *buf)
{
    hsize_t dims[2] = {rows, cols};
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(group, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, h->dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : 0;
    if (rc >= 0 && rows && cols)
        rc = H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return rc;
}

/* ensemble_mean [samples, source ensembles, target ensembles]. */
static herr_t write_ensemble_means(const H5Ids *h, hid_t group, const EngramWeightRecRt *wr)
{
    hsize_t dims[3] = {wr->len, wr->ens_src, wr->ens_dst};
    hid_t s = H5Screate_simple(3, dims, NULL);
    hid_t d = H5Dcreate2(group, "ensemble_mean", H5T_IEEE_F64LE, s, H5P_DEFAULT, h->dcpl,
                         H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : 0;
    if (rc >= 0 && wr->len)
        rc = H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, wr->ens_mean);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return rc;
}

/* source and target of every synapse, in CSR order. */
static herr_t write_endpoints(const H5Ids *h, hid_t g, const EngramProjRt *pr)
{
    uint64_t n = pr->csr.nsyn;
    uint64_t *src = malloc((n + 1) * sizeof *src), *tgt = malloc((n + 1) * sizeof *tgt);
    herr_t rc = (src && tgt) ? 0 : -1;
    for (uint32_t s = 0; rc >= 0 && s < pr->csr.nsrc; s++)
        for (uint64_t j = pr->csr.row[s]; j < pr->csr.row[s + 1]; j++) {
            src[j] = s;
            tgt[j] = pr->csr.col[j];
        }
    if (rc >= 0)
        rc = write_dataset(h, g, "source", H5T_STD_U64LE, H5T_NATIVE_UINT64, n, src, false);
    if (rc >= 0)
        rc = write_dataset(h, g, "target", H5T_STD_U64LE, H5T_NATIVE_UINT64, n, tgt, false);
    free(src);
    free(tgt);
    return rc;
}

static herr_t write_weight_rec(const H5Ids *h, const EngramNetwork *net,
                               const EngramWeightRecRt *wr)
{
    const EngramProjRt *pr = &net->projs[wr->proj];
    char *name = escape_name(pr->name);
    hid_t g = name ? H5Gcreate2(h->file, name, h->lcpl, h->gcpl, H5P_DEFAULT) : -1;
    free(name);
    herr_t rc = g < 0 ? -1 : write_str_attr(g, "unit", engram_weight_unit(net->model, pr->desc));
    if (rc >= 0)
        rc = write_dataset(h, g, "times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, wr->len, wr->times,
                           true);
    if (rc >= 0)
        rc = write_dataset(h, g, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, wr->len, wr->mean,
                           false);
    if (rc >= 0 && wr->per_synapse)
        rc = write_matrix(h, g, "weights", wr->len, pr->csr.nsyn, wr->w);
    if (rc >= 0 && wr->per_synapse)
        rc = write_endpoints(h, g, pr);
    if (rc >= 0 && wr->cell)
        rc = write_ensemble_means(h, g, wr);
    if (g >= 0)
        H5Gclose(g);
    return rc;
}

static herr_t write_weight_file(const char *path, const EngramNetwork *net)
{
    H5Ids h = {-1, -1, -1, -1};
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    h.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(h.gcpl, 0);
    h.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(h.dcpl, 0);
    h.lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(h.lcpl, 0);
    h.file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    herr_t rc = h.file < 0 ? -1 : 0;
    for (uint32_t k = 0; k < net->nwrecs && rc >= 0; k++)
        rc = write_weight_rec(&h, net, &net->wrecs[k]);
    if (h.file >= 0 && H5Fclose(h.file) < 0)
        rc = -1;
    H5Pclose(fcpl);
    H5Pclose(h.gcpl);
    H5Pclose(h.dcpl);
    H5Pclose(h.lcpl);
    return rc;
}

int engram_write_weights(const EngramNetwork *net, const char *dir, EngramError *err)
{
    if (net->nwrecs == 0)
        return 0;
    return write_h5_atomically(net, dir, "weights.h5", write_weight_file, err);
}

/* ---- JSON helpers --------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* Shortest text that reads back as the same double; null for NaN/inf. */
static void json_number(FILE *f, double v)
{
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    char buf[40];
    if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(f, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

void engram_json_string(FILE *f, const char *s)
{
    json_string(f, s);
}

void engram_json_number(FILE *f, double v)
{
    json_number(f, v);
}

/* ---- summary.json ------------------------------------------------------------------------ */

static void summary_populations(FILE *f, const EngramNetwork *net)
{
    const EngramModel *m = net->model;
    fputs("  \"populations\": {", f);
    for (uint32_t i = 0; i < net->npops; i++) {
        const EngramPopRt *p = &net->pops[i];
        double rate = (p->size && net->duration > 0)
                          ? (double)p->total_spikes / p->size / (net->duration / 1000.0) : 0.0;
        fputs(i ? ",\n    " : "\n    ", f);
        json_string(f, p->name);
        fputs(": {\"model\": ", f);
        json_string(f, engram_model_str(m, p->desc->model));
        fprintf(f, ", \"source\": %s, \"size\": %u, \"spikes\": %llu, \"rate_hz\": ",
                p->desc->kind == ENGRAM_POP_NEURON ? "false" : "true", p->size,
                (unsigned long long)p->total_spikes);
        json_number(f, rate);
        fputs("}", f);
    }
    fputs(net->npops ? "\n  },\n" : "},\n", f);
    fprintf(f, "  \"synapses\": {\"total\": %llu", (unsigned long long)net->synapses);
    for (uint32_t j = 0; j < net->nprojs; j++) {
        fputs(", ", f);
        json_string(f, net->projs[j].name);
        fprintf(f, ": %llu", (unsigned long long)net->projs[j].csr.nsyn);
    }
    fputs("},\n", f);
}

static void json_numbers(FILE *f, const double *v, size_t n)
{
    fputc('[', f);
    for (size_t k = 0; k < n; k++) {
        if (k)
            fputs(", ", f);
        json_number(f, v[k]);
    }
    fputc(']', f);
}

/* "projections": per projection, its final weights. */
static void summary_projections(FILE *f, const EngramNetwork *net)
{
    fputs("  \"projections\": {", f);
    for (uint32_t j = 0; j < net->nprojs; j++) {
        const EngramProjRt *pr = &net->projs[j];
        EngramWeightStats st;
        engram_weight_stats(net, pr, &st);
        fputs(j ? ",\n    " : "\n    ", f);
        json_string(f, pr->name);
        fprintf(f, ": {\"synapses\": %llu, \"bytes_per_synapse\": %u, \"plastic\": %s, "
                "\"weight\": {\"unit\": ", (unsigned long long)pr->csr.nsyn,
                engram_synapse_bytes(pr->desc, net->precision), pr->plastic ? "true" : "false");
        json_string(f, engram_weight_unit(net->model, pr->desc));
        fputs(", \"mean\": ", f);
        json_number(f, st.mean);
        fputs(", \"min\": ", f);
        json_number(f, st.min);
        fputs(", \"max\": ", f);
        json_number(f, st.max);
        fputs(", \"histogram\": {\"edges\": ", f);
        json_numbers(f, st.edges, ENGRAM_HIST_BINS + 1);
        fputs(", \"counts\": [", f);
        for (int k = 0; k < ENGRAM_HIST_BINS; k++)
            fprintf(f, "%s%llu", k ? ", " : "", (unsigned long long)st.counts[k]);
        fprintf(f, "], \"outside\": %llu}}}", (unsigned long long)st.outside);
    }
    fputs(net->nprojs ? "\n  },\n" : "},\n", f);
}

/* "modulators" {name: {final, mean, unit}} and "releases" {name: count}. */
static void summary_modulators(FILE *f, const EngramNetwork *net)
{
    const EngramModel *m = net->model;
    const EngramModState *ms = &net->mods;
    fputs("  \"modulators\": {", f);
    for (uint32_t i = 0; i < ms->nmods; i++) {
        fputs(i ? ", " : "", f);
        json_string(f, engram_model_str(m, m->modulators[i].name));
        fputs(": {\"final\": ", f);
        json_number(f, ms->level[i]);
        fputs(", \"mean\": ", f);
        json_number(f, ms->steps ? ms->sum[i] / (double)ms->steps : ms->level[i]);
        fputs(", \"unit\": ", f);
        json_string(f, engram_model_str(m, m->modulators[i].unit));
        fputc('}', f);
    }
    fputs("},\n  \"releases\": {", f);
    for (uint32_t k = 0; k < ms->nrels; k++) {
        fputs(k ? ", " : "", f);
        json_string(f, ms->rels[k].name);
        fprintf(f, ": %llu", (unsigned long long)ms->rels[k].applied);
    }
    fputs("},\n", f);
}

static void summary_parameters(FILE *f, const EngramNetwork *net)
{
    const EngramModel *m = net->model;
    fputs("  \"parameters\": {", f);
    for (uint32_t i = 0; i < m->hdr->nparams; i++) {
        const EngramParamDesc *p = &m->params[i];
        fputs(i ? ",\n    " : "\n    ", f);
        json_string(f, engram_model_str(m, p->name));
        fputs(": {\"value\": ", f);
        if (p->flags & ENGRAM_PARAM_LIST) {
            fputc('[', f);
            for (uint32_t k = 0; k < p->list_count; k++) {
                if (k)
                    fputs(", ", f);
                json_number(f, m->list[p->list_first + k]);
            }
            fputc(']', f);
        } else {
            json_number(f, net->params[i]);
        }
        fputs(", \"unit\": ", f);
        json_string(f, engram_model_str(m, p->unit));
        fputc('}', f);
    }
    fputs(m->hdr->nparams ? "\n  },\n" : "},\n", f);
}

static void summary_timing(FILE *f, const EngramNetwork *net, const EngramTiming *timing)
{
    char host[256] = "unknown";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    char date[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fputs("  \"timing\": {\"setup_s\": ", f);
    json_number(f, timing->setup_s);
    fputs(", \"simulate_s\": ", f);
    json_number(f, timing->simulate_s);
    const char *phase[] = {"drive_s", "update_s", "exchange_s", "deliver_s", "other_s"};
    const double val[] = {timing->drive_s, timing->update_s, timing->exchange_s,
                          timing->deliver_s, timing->other_s};
    for (int k = 0; k < 5; k++) {
        fprintf(f, ", \"%s\": ", phase[k]);
        json_number(f, val[k]);
    }
    fprintf(f, ", \"timed_steps\": %lld", (long long)timing->timed_steps);
    fprintf(f, ", \"threads\": %u, \"ranks\": %u, \"host\": ", net->nthreads ? net->nthreads : 1,
            net->nranks ? net->nranks : 1);
    json_string(f, host);
    fputs(", \"date\": ", f);
    json_string(f, date);
    fputs("}\n", f);
}

static void summary_write(FILE *f, const EngramNetwork *net, const EngramTiming *timing)
{
    const EngramModel *m = net->model;
    fputs("{\n  \"engram_version\": ", f);
    json_string(f, ENGRAM_VERSION);
    fputs(",\n  \"model\": {\"name\": ", f);
    json_string(f, engram_model_str(m, m->hdr->name));
    fputs(", \"sha256\": ", f);
    json_string(f, m->hdr->source_sha256);
    fputs(", \"compiler\": ", f);
    json_string(f, m->hdr->compiler_version);
    fprintf(f, ", \"precision\": %u},\n", m->hdr->precision);
    fprintf(f, "  \"seed\": %llu,\n  \"dt_ms\": ", (unsigned long long)net->seed);
    json_number(f, net->dt);
    fputs(",\n  \"duration_ms\": ", f);
    json_number(f, net->duration);
    fputs(",\n", f);
    summary_populations(f, net);
    summary_projections(f, net);
    summary_modulators(f, net);
    engram_protocol_summary(f, net);
    summary_parameters(f, net);
    summary_timing(f, net, timing);
    fputs("}\n", f);
}

int engram_write_text_atomically(const char *dir, const char *name,
                                 void (*write)(FILE *f, const void *ctx), const void *ctx,
                                 EngramError *err)
{
    char *final, *tmp;
    int rc = out_paths(dir, name, &final, &tmp, err);
    if (rc)
        return rc;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot write %s: %s", final, strerror(errno));
    } else {
        write(f, ctx);
        int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;
        int e = errno;
        if (fclose(f) != 0 && !bad) {
            bad = 1;
            e = errno;
        }
        if (bad) {
            unlink(tmp);
            rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot write %s: %s", final, strerror(e));
        } else {
            rc = commit(tmp, final, err);
        }
    }
    free(final);
    free(tmp);
    return rc;
}

typedef struct SummaryArgs {
    const EngramNetwork *net;
    const EngramTiming *timing;
} SummaryArgs;

static void summary_write_ctx(FILE *f, const void *ctx)
{
    const SummaryArgs *a = ctx;
    summary_write(f, a->net, a->timing);
}

int engram_write_summary(const EngramNetwork *net, const EngramTiming *timing, const char *dir,
                         EngramError *err)
{
    SummaryArgs a = {net, timing};
    return engram_write_text_atomically(dir, "summary.json", summary_write_ctx, &a, err);
}

/* ---- the human summary ----------------------------------------------------------------------- */

void engram_print_summary(FILE *out, const EngramNetwork *net, const EngramTiming *timing)
{
    const EngramModel *m = net->model;
    double wall = timing->simulate_s;
    fprintf(out, "%s: %llu neurons, %llu synapses\n", engram_model_str(m, m->hdr->name),
            (unsigned long long)net->neurons, (unsigned long long)net->synapses);
    double ratio = wall > 0 ? net->duration / 1000.0 / wall : 0.0;
    fprintf(out, "simulated %g ms in %.3f s (%.*fx realtime), setup %.3f s\n", net->duration,
            wall, ratio >= 100 ? 0 : (ratio >= 1 ? 2 : 3), ratio, timing->setup_s);
    int w = 10;
    for (uint32_t i = 0; i < net->npops; i++)
        if ((int)strlen(net->pops[i].name) > w)
            w = (int)strlen(net->pops[i].name);
    for (uint32_t i = 0; i < net->npops; i++) {
        const EngramPopRt *p = &net->pops[i];
        double rate = (p->size && net->duration > 0)
                          ? (double)p->total_spikes / p->size / (net->duration / 1000.0) : 0.0;
        fprintf(out, "  %-*s %9u neurons %11llu spikes %9.2f Hz\n", w, p->name, p->size,
                (unsigned long long)p->total_spikes, rate);
    }
    for (uint32_t j = 0; j < net->nprojs; j++) {
        const EngramProjRt *pr = &net->projs[j];
        if (!pr->plastic)
            continue;
        EngramWeightStats st;
        engram_weight_stats(net, pr, &st);
        if (isnan(st.mean)) {   /* a projection that drew no synapse */
            fprintf(out, "  %s: no plastic synapses\n", pr->name);
            continue;
        }
        fprintf(out, "  %s: %llu plastic synapses, weight mean %g %s (min %g, max %g)\n",
                pr->name, (unsigned long long)pr->csr.nsyn, st.mean,
                engram_weight_unit(m, pr->desc), st.min, st.max);
    }
    for (uint32_t i = 0; i < net->mods.nmods; i++)
        fprintf(out, "  %s: final %g, mean %g\n", engram_model_str(m, m->modulators[i].name),
                net->mods.level[i],
                net->mods.steps ? net->mods.sum[i] / (double)net->mods.steps : net->mods.level[i]);
}
