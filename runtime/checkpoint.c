/*
 * checkpoint.c - checkpoints of the full network state: one HDF5 file that
 * holds everything a run from step k on depends on, in an order that does
 * not depend on how the network is split into ranks and threads, so that a
 * run restored under any layout continues bit for bit as if it had never
 * stopped.  docs/outputs.md ("Checkpoints") gives the layout of the file.
 *
 * Integrity comes before HDF5, because libhdf5 can crash on a damaged file:
 * the file starts with a 512-byte userblock holding a header (magic, format
 * version, file length, SHA-256 of the bytes after the userblock, SHA-256 of
 * the header), checked with stdio before the library opens the file.
 *
 * Writing is collective.  Each piece is gathered to rank 0 (neuron blocks in
 * rank order, which is ascending ids; synapses in global CSR order through
 * engram_proj_collect and engram_proj_collect_raw) and added there to an
 * HDF5 file in memory, and failures are agreed after each piece so that all
 * ranks stop together.  Rank 0 then writes the header and the file's image
 * with stdio under a temporary name in the same folder, fsyncs and renames
 * it: libhdf5 never writes to disk, because after a write that failed (a
 * full disk) it crashes at exit.
 *
 * Reading is local: every rank checks and reads the file and keeps its own
 * part (its neuron blocks, the synapses of its targets in its own CSR order,
 * mapped through the global CSR stored in the file); only the result is
 * agreed.  The checksums, model, sizes and settings are checked before the
 * network is touched.
 *
 * Order: types and small helpers, the userblock header, HDF5 writing
 * helpers, writing (provenance, populations, projections, modulators, weight
 * recordings), engram_checkpoint_write, HDF5 reading helpers, checking the
 * file against the network, reading (the same sections),
 * engram_checkpoint_read.
 */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_checkpoint.h"

#define HEADER_HASHED 56          /* the header checksum covers bytes [0, 56) */
#define HASH_CHUNK (1u << 20)     /* bytes read at a time while hashing */
#define NO_SPIKE INT64_MIN        /* poisson_step of a neuron without a next spike */
#define PATH_LEN 4096
#define CORE_INCREMENT (4u << 20) /* growth of the in-memory HDF5 file */

/* ---- types and small helpers ------------------------------------------------------------ */

typedef enum CkType { CK_F32, CK_F64, CK_I32, CK_U32, CK_I64, CK_U64, CK_U8 } CkType;

static hid_t file_type(CkType t)
{
    switch (t) {
    case CK_F32: return H5T_IEEE_F32LE;
    case CK_F64: return H5T_IEEE_F64LE;
    case CK_I32: return H5T_STD_I32LE;
    case CK_U32: return H5T_STD_U32LE;
    case CK_I64: return H5T_STD_I64LE;
    case CK_U64: return H5T_STD_U64LE;
    default: return H5T_STD_U8LE;
    }
}

static hid_t mem_type(CkType t)
{
    switch (t) {
    case CK_F32: return H5T_NATIVE_FLOAT;
    case CK_F64: return H5T_NATIVE_DOUBLE;
    case CK_I32: return H5T_NATIVE_INT32;
    case CK_U32: return H5T_NATIVE_UINT32;
    case CK_I64: return H5T_NATIVE_INT64;
    case CK_U64: return H5T_NATIVE_UINT64;
    default: return H5T_NATIVE_UINT8;
    }
}

static size_t type_size(CkType t)
{
    static const size_t sizes[] = {4, 8, 4, 4, 8, 8, 1};
    return sizes[t];
}

/* Model values (states, traces, weights, inputs) are stored in the model precision. */
static CkType prec_type(const EngramNetwork *net)
{
    return net->precision == 4 ? CK_F32 : CK_F64;
}

/* PREFIX/NAME[/SUFFIX] with NAME as one link: '/' -> %2F, '%' -> %25. */
static void obj_path(char *out, const char *prefix, const char *name, const char *suffix)
{
    size_t o = (size_t)snprintf(out, PATH_LEN, "%s/", prefix);
    for (const char *p = name; *p && o + 4 < PATH_LEN - 256; p++) {   /* room for suffixes */
        if (*p == '/' || *p == '%')
            o += (size_t)snprintf(out + o, PATH_LEN - o, "%%%02X", (unsigned)(unsigned char)*p);
        else
            out[o++] = *p;
    }
    out[o] = '\0';
    if (suffix)
        snprintf(out + o, PATH_LEN - o, "/%s", suffix);
}

/* Name of variable v of a projection's run of the var table (synapse
 * variables, then pre traces, then post traces). */
static const char *var_name(const EngramModel *m, const EngramProjDesc *d, uint32_t v)
{
    return engram_model_str(m, m->vars[d->first_var + v].name);
}

/* BASE/A[/B] into out (PATH_LEN bytes); a path too long for it becomes "",
 * which HDF5 refuses (names are identifiers: it does not happen). */
static char *sub(char *out, const char *base, const char *a, const char *b)
{
    size_t nb = strlen(base), na = strlen(a), nc = b ? strlen(b) : 0;
    out[0] = '\0';
    if (nb + na + nc + 3 > PATH_LEN)
        return out;
    memcpy(out, base, nb);
    out[nb] = '/';
    memcpy(out + nb + 1, a, na + 1);
    if (b) {
        out[nb + 1 + na] = '/';
        memcpy(out + nb + 2 + na, b, nc + 1);
    }
    return out;
}

/* Neurons of population `size` that rank r owns. */
static uint64_t rank_block_len(const EngramNetwork *net, uint32_t size, uint32_t r)
{
    uint64_t T = net->nthreads, P = (uint64_t)net->nranks * T;
    return engram_block(size, (r + 1) * T, P) - engram_block(size, r * T, P);
}

/* Weight samples a recording took before step k: at steps 0, e, 2e, ... < k. */
static size_t samples_before(int64_t k, int64_t every)
{
    return k > 0 ? (size_t)((k - 1) / every + 1) : 0;
}

static int cmp_poisson(const void *a, const void *b)
{
    const EngramPoissonEntry *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

static int cmp_pending(const void *a, const void *b)
{
    const EngramPendingRelease *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

typedef struct SpikeRec {
    int64_t step;
    uint32_t id, pad;
} SpikeRec;

static int cmp_spike(const void *a, const void *b)
{
    const SpikeRec *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* ---- the userblock header -------------------------------------------------------------
 * Little endian: magic[8], u32 version, u32 userblock size, u64 file length,
 * SHA-256 of bytes [512, length), SHA-256 of bytes [0, 56); zeros to 512. */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* SHA-256 of the file from `from` to its end; errno-style code (0 ok). */
static int hash_tail(FILE *f, uint64_t from, uint8_t out[32])
{
    uint8_t *buf = malloc(HASH_CHUNK);
    if (!buf)
        return ENOMEM;
    EngramSha256 c;
    engram_sha256_init(&c);
    int e = fseeko(f, (off_t)from, SEEK_SET) != 0 ? errno : 0;
    size_t n;
    while (!e && (n = fread(buf, 1, HASH_CHUNK, f)) > 0)
        engram_sha256_update(&c, buf, n);
    if (!e && ferror(f))
        e = errno ? errno : EIO;
    engram_sha256_final(&c, out);
    free(buf);
    return e;
}

static void header_make(uint8_t h[ENGRAM_CHECKPOINT_USERBLOCK], uint64_t length,
                        const uint8_t body[32])
{
    memset(h, 0, ENGRAM_CHECKPOINT_USERBLOCK);
    memcpy(h, ENGRAM_CHECKPOINT_MAGIC, 8);
    put_le(h + 8, ENGRAM_CHECKPOINT_VERSION, 4);
    put_le(h + 12, ENGRAM_CHECKPOINT_USERBLOCK, 4);
    put_le(h + 16, length, 8);
    memcpy(h + 24, body, 32);
    engram_sha256(h, HEADER_HASHED, h + HEADER_HASHED);
}

/* The header as read (n bytes of it) against the file's size. */
static int header_check(const char *path, const uint8_t *h, size_t n, uint64_t size,
                        uint64_t *length, EngramError *err)
{
    if (n < 8 || memcmp(h, ENGRAM_CHECKPOINT_MAGIC, 8) != 0)
        return engram_fail(err, ENGRAM_EXIT_IO,
                           "%s is not an Engram checkpoint (it does not start with %s)", path,
                           ENGRAM_CHECKPOINT_MAGIC);
    if (n < ENGRAM_CHECKPOINT_USERBLOCK)
        return engram_fail(err, ENGRAM_EXIT_IO,
                           "checkpoint %s is truncated (%llu bytes, shorter than its header)",
                           path, (unsigned long long)size);
    uint32_t version = (uint32_t)get_le(h + 8, 4);
    uint8_t sum[32];
    engram_sha256(h, HEADER_HASHED, sum);
    bool sound = memcmp(sum, h + HEADER_HASHED, 32) == 0;
    if (version != ENGRAM_CHECKPOINT_VERSION)
        return engram_fail(err, ENGRAM_EXIT_IO,
                           sound ? "checkpoint %s has format version %u; this runtime reads "
                                   "version %u"
                                 : "checkpoint %s is corrupt (its header checksum does not "
                                   "match; format version %u, expected %u)",
                           path, version, ENGRAM_CHECKPOINT_VERSION);
    if (!sound || get_le(h + 12, 4) != ENGRAM_CHECKPOINT_USERBLOCK)
        return engram_fail(err, ENGRAM_EXIT_IO,
                           "checkpoint %s is corrupt (its header checksum does not match)", path);
    *length = get_le(h + 16, 8);
    if (size < *length)
        return engram_fail(err, ENGRAM_EXIT_IO, "checkpoint %s is truncated (%llu of %llu bytes)",
                           path, (unsigned long long)size, (unsigned long long)*length);
    if (size > *length)
        return engram_fail(err, ENGRAM_EXIT_IO,
                           "checkpoint %s is corrupt (%llu bytes, its header says %llu)", path,
                           (unsigned long long)size, (unsigned long long)*length);
    return 0;
}

int engram_checkpoint_verify(const char *path, EngramError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return engram_fail(err, ENGRAM_EXIT_IO, "cannot read checkpoint %s: %s", path,
                           strerror(errno));
    struct stat st = {0};
    int rc = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot read checkpoint %s: %s", path,
                         S_ISDIR(st.st_mode) ? "it is a folder" : "not a regular file");
    uint8_t h[ENGRAM_CHECKPOINT_USERBLOCK], sum[32];
    uint64_t length = 0;
    if (!rc)
        rc = header_check(path, h, fread(h, 1, sizeof h, f), (uint64_t)st.st_size, &length, err);
    int e = rc ? 0 : hash_tail(f, ENGRAM_CHECKPOINT_USERBLOCK, sum);
    if (e)
        rc = engram_fail(err, e == ENOMEM ? ENGRAM_EXIT_RESOURCE : ENGRAM_EXIT_IO,
                         "cannot read checkpoint %s: %s", path, strerror(e));
    else if (!rc && memcmp(sum, h + 24, 32) != 0)
        rc = engram_fail(err, ENGRAM_EXIT_IO,
                         "checkpoint %s is corrupt (the checksum of its contents does not match)",
                         path);
    fclose(f);
    return rc;
}

/* ---- HDF5 writing helpers (rank 0) ------------------------------------------------------ */

typedef struct Writer {
    EngramNetwork *net;
    const char *path;        /* the final name, for messages */
    EngramError *err;
    int64_t step;
    bool root;               /* rank 0: the one that writes */
    hid_t file, gcpl, dcpl;  /* rank 0 */
    size_t *counts;          /* nranks: bytes from each rank in a gather */
} Writer;

static int w_oom(Writer *w)
{
    return engram_fail(w->err, ENGRAM_EXIT_RESOURCE, "out of memory writing checkpoint %s",
                       w->path);
}

/* An HDF5 failure on rank 0: the file is built in memory, so it ran out. */
static int w_h5fail(Writer *w)
{
    return engram_fail(w->err, ENGRAM_EXIT_RESOURCE,
                       "out of memory writing checkpoint %s (HDF5 could not build the file)",
                       w->path);
}

static int w_iofail(Writer *w, int e)
{
    return engram_fail(w->err, e == ENOMEM ? ENGRAM_EXIT_RESOURCE : ENGRAM_EXIT_IO,
                       "cannot write checkpoint %s: %s", w->path, strerror(e));
}

static int agree(const EngramNetwork *net, int rc, EngramError *err)
{
    return engram_comm_agree(rc, net->rank, err);
}

static herr_t put_attr(hid_t obj, const char *name, CkType t, const void *v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = s < 0 ? -1 : H5Acreate2(obj, name, file_type(t), s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mem_type(t), v);
    if (a >= 0)
        H5Aclose(a);
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

static hid_t str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* A variable-length UTF-8 string attribute (as output.c writes them). */
static herr_t put_str_attr(hid_t obj, const char *name, const char *value)
{
    hid_t t = str_type(), s = H5Screate(H5S_SCALAR);
    hid_t a = (t < 0 || s < 0) ? -1 : H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0)
        H5Aclose(a);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    return rc;
}

static herr_t put_group(Writer *w, const char *path)
{
    hid_t g = H5Gcreate2(w->file, path, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    return g < 0 ? -1 : H5Gclose(g);
}

/* A dataset of ndims (1 or 2) dims from buf, in memory as mt, in the file as ft. */
static herr_t put_ds(Writer *w, const char *path, CkType ft, CkType mt, int ndims,
                     const hsize_t *dims, const void *buf)
{
    hid_t s = H5Screate_simple(ndims, dims, NULL);
    hid_t d = s < 0 ? -1 : H5Dcreate2(w->file, path, file_type(ft), s, H5P_DEFAULT, w->dcpl,
                                      H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : 0;
    hsize_t n = dims[0] * (ndims == 2 ? dims[1] : 1);
    if (rc >= 0 && n)
        rc = H5Dwrite(d, mem_type(mt), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (d >= 0 && H5Dclose(d) < 0)
        rc = -1;
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

static herr_t put_vec(Writer *w, const char *path, CkType t, uint64_t n, const void *buf)
{
    hsize_t dims[1] = {n};
    return put_ds(w, path, t, t, 1, dims, buf);
}

/* A population-sized array (rows of `cols` values; cols 0: one value, 1-D) of
 * which each rank holds the block of its neurons: rank 0 gathers the blocks
 * (rank order is ascending ids) and writes one dataset.  Collective. */
static int put_blocks(Writer *w, const char *path, CkType t, const EngramPopRt *p, uint64_t cols,
                      const void *mine)
{
    EngramNetwork *net = w->net;
    size_t row = type_size(t) * (cols ? cols : 1);
    const void *all = mine;
    void *buf = NULL;
    int rc = 0;
    if (net->nranks > 1) {
        if (w->root && !(buf = malloc((size_t)p->size * row + 1)))
            rc = w_oom(w);
        if ((rc = agree(net, rc, w->err)))
            return rc;
        for (uint32_t r = 0; r < net->nranks; r++)
            w->counts[r] = rank_block_len(net, p->size, r) * row;
        engram_comm_gatherv(mine, (size_t)p->n * row, buf, w->counts);
        all = buf;
    }
    hsize_t dims[2] = {p->size, cols};
    if (w->root && put_ds(w, path, t, t, cols ? 2 : 1, dims, all) < 0)
        rc = w_h5fail(w);
    free(buf);
    return agree(net, rc, w->err);
}

/* A per-synapse array of projection j (parts[t]: thread t's, in its CSR order)
 * in global CSR order.  Collective. */
static int put_synapses(Writer *w, const char *path, CkType t, uint32_t j, const void *const *parts)
{
    EngramNetwork *net = w->net;
    uint64_t n = net->projs[j].nsyn_all;
    void *all = NULL;
    int rc = 0;
    if (w->root && !(all = malloc(n * type_size(t) + 1)))
        rc = w_oom(w);
    if ((rc = agree(net, rc, w->err)))
        return rc;
    rc = agree(net, engram_proj_collect_raw(net, j, parts, type_size(t), all, w->err), w->err);
    if (!rc && w->root && put_vec(w, path, t, n, all) < 0)
        rc = w_h5fail(w);
    free(all);
    return agree(net, rc, w->err);
}

/* ---- writing: provenance ---------------------------------------------------------------- */

static herr_t put_parameters(Writer *w)
{
    const EngramModel *m = w->net->model;
    uint32_t n = m->hdr->nparams;
    const char **names = calloc(n + 1, sizeof *names), **units = calloc(n + 1, sizeof *units);
    hid_t t = str_type();
    hsize_t dims[1] = {n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    herr_t rc = (names && units && t >= 0 && s >= 0) ? put_group(w, "/parameters") : -1;
    for (uint32_t i = 0; rc >= 0 && i < n; i++) {
        names[i] = engram_model_str(m, m->params[i].name);
        units[i] = engram_model_str(m, m->params[i].unit);
    }
    const char *const *lists[2] = {names, units};
    const char *paths[2] = {"/parameters/names", "/parameters/units"};
    for (int k = 0; k < 2 && rc >= 0; k++) {
        hid_t d = H5Dcreate2(w->file, paths[k], t, s, H5P_DEFAULT, w->dcpl, H5P_DEFAULT);
        rc = d < 0 ? -1 : (n ? H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, lists[k]) : 0);
        if (d >= 0 && H5Dclose(d) < 0)
            rc = -1;
    }
    if (rc >= 0)
        rc = put_vec(w, "/parameters/values", CK_F64, n, w->net->params);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    free(names);
    free(units);
    return rc;
}

static herr_t put_provenance(Writer *w)
{
    const EngramNetwork *net = w->net;
    const EngramModel *m = net->model;
    hid_t f = w->file;
    uint32_t version = ENGRAM_CHECKPOINT_VERSION, prec = (uint32_t)net->precision;
    uint32_t ranks = net->nranks, threads = net->nthreads;
    double t = (double)w->step * net->dt;
    bool bad = put_str_attr(f, "format", "engram checkpoint") < 0;
    bad |= put_attr(f, "format_version", CK_U32, &version) < 0;
    bad |= put_str_attr(f, "model", engram_model_str(m, m->hdr->name)) < 0;
    bad |= put_str_attr(f, "model_sha256", m->hdr->source_sha256) < 0;
    bad |= put_str_attr(f, "compiler_version", m->hdr->compiler_version) < 0;
    bad |= put_str_attr(f, "engram_version", ENGRAM_VERSION) < 0;
    bad |= put_attr(f, "seed", CK_U64, &net->seed) < 0;
    bad |= put_attr(f, "step", CK_I64, &w->step) < 0;
    bad |= put_attr(f, "time_ms", CK_F64, &t) < 0;
    bad |= put_attr(f, "dt_ms", CK_F64, &net->dt) < 0;
    bad |= put_attr(f, "duration_ms", CK_F64, &net->duration) < 0;
    bad |= put_attr(f, "precision", CK_U32, &prec) < 0;
    bad |= put_attr(f, "ranks", CK_U32, &ranks) < 0;
    bad |= put_attr(f, "threads", CK_U32, &threads) < 0;
    return bad ? -1 : put_parameters(w);
}

/* ---- writing: populations --------------------------------------------------------------- */

/* Pending input of port q by absolute step: row i, column k is what neuron i
 * receives at step + k (slot (step + k) % slots); K is the longest ring of
 * any rank, shorter rings padded with zeros. */
static int write_ring(Writer *w, const EngramPopRt *p, uint32_t q, const char *path)
{
    EngramNetwork *net = w->net;
    const EngramRing *ring = &p->rings[q];
    size_t prec = (size_t)net->precision;
    int64_t K = -(int64_t)engram_comm_allreduce_int_min(-(int)ring->slots);
    uint8_t *mine = calloc((size_t)p->n * (size_t)K + 1, prec);
    int rc = agree(net, mine ? 0 : w_oom(w), w->err);
    for (uint32_t i = 0; !rc && i < p->n; i++)
        for (int64_t k = 0; k < ring->slots; k++) {
            size_t slot = (size_t)((w->step + k) % ring->slots);
            memcpy(mine + ((size_t)i * (size_t)K + (size_t)k) * prec,
                   (const uint8_t *)ring->data + (slot * ring->n + i) * prec, prec);
        }
    if (!rc)
        rc = put_blocks(w, path, prec_type(net), p, (uint64_t)K, mine);
    free(mine);
    return rc;
}

/* Next spike of every neuron (step, time, RNG counter) from the partitions' heaps. */
static int write_poisson(Writer *w, const EngramPopRt *p, const char *base)
{
    int64_t *st = malloc(((size_t)p->n + 1) * sizeof *st);
    double *tm = calloc((size_t)p->n + 1, sizeof *tm);
    uint64_t *ctr = calloc((size_t)p->n + 1, sizeof *ctr);
    int rc = agree(w->net, (st && tm && ctr) ? 0 : w_oom(w), w->err);
    for (uint32_t i = 0; !rc && i < p->n; i++)
        st[i] = NO_SPIKE;
    for (uint32_t t = 0; !rc && t < w->net->nthreads; t++)
        for (size_t k = 0; k < p->parts[t].heap_len; k++) {
            const EngramPoissonEntry *e = &p->parts[t].heap[k];
            st[e->neuron] = e->step;
            tm[e->neuron] = e->t;
            ctr[e->neuron] = e->counter;
        }
    char path[PATH_LEN];
    if (!rc && !(rc = put_blocks(w, sub(path, base, "poisson_step", NULL), CK_I64, p, 0, st)))
        rc = put_blocks(w, sub(path, base, "poisson_time", NULL), CK_F64, p, 0, tm);
    if (!rc)
        rc = put_blocks(w, sub(path, base, "poisson_counter", NULL), CK_U64, p, 0, ctr);
    free(st);
    free(tm);
    free(ctr);
    return rc;
}

/* Every rank's recorded spikes on rank 0, in (step, id) order. */
static int gather_spikes(Writer *w, const EngramPopRt *p, SpikeRec **out, size_t *total)
{
    EngramNetwork *net = w->net;
    uint32_t R = net->nranks;
    size_t *lens = calloc(R + 1, sizeof *lens);
    int rc = agree(net, lens ? 0 : w_oom(w), w->err);
    if (rc)
        return rc;
    engram_comm_allgather(&p->rec_len, sizeof p->rec_len, lens);
    *total = 0;
    for (uint32_t r = 0; r < R; r++)
        *total += lens[r];
    int64_t *st = w->root ? malloc(*total * sizeof *st + 1) : NULL;
    uint32_t *id = w->root ? malloc(*total * sizeof *id + 1) : NULL;
    *out = w->root ? malloc(*total * sizeof **out + 1) : NULL;
    rc = agree(net, (w->root && (!st || !id || !*out)) ? w_oom(w) : 0, w->err);
    for (uint32_t r = 0; !rc && r < R; r++)
        w->counts[r] = lens[r] * sizeof *st;
    if (!rc)
        engram_comm_gatherv(p->rec_step, p->rec_len * sizeof *st, st, w->counts);
    for (uint32_t r = 0; !rc && r < R; r++)
        w->counts[r] = lens[r] * sizeof *id;
    if (!rc)
        engram_comm_gatherv(p->rec_id, p->rec_len * sizeof *id, id, w->counts);
    for (size_t k = 0; !rc && w->root && k < *total; k++)
        (*out)[k] = (SpikeRec){st[k], id[k], 0};
    if (!rc && w->root)
        qsort(*out, *total, sizeof **out, cmp_spike);
    free(st);
    free(id);
    free(lens);
    return rc;
}

static int write_spikes(Writer *w, const EngramPopRt *p, const char *base)
{
    SpikeRec *all = NULL;
    size_t n = 0;
    int rc = gather_spikes(w, p, &all, &n);
    int64_t *st = NULL;
    uint32_t *id = NULL;
    if (!rc && w->root) {
        st = malloc(n * sizeof *st + 1);
        id = malloc(n * sizeof *id + 1);
        if (!st || !id)
            rc = w_oom(w);
    }
    for (size_t k = 0; !rc && w->root && k < n; k++) {
        st[k] = all[k].step;
        id[k] = all[k].id;
    }
    char path[PATH_LEN];
    if (!rc && w->root &&
        (put_vec(w, sub(path, base, "spikes_step", NULL), CK_I64, n, st) < 0 ||
         put_vec(w, sub(path, base, "spikes_id", NULL), CK_U32, n, id) < 0))
        rc = w_h5fail(w);
    free(all);
    free(st);
    free(id);
    return agree(w->net, rc, w->err);
}

static int write_neuron_pop(Writer *w, const EngramPopRt *p, const char *base)
{
    const EngramModel *m = w->net->model;
    char path[PATH_LEN];
    int rc = 0;
    for (uint32_t s = 0; s < p->desc->nstates && !rc; s++) {
        sub(path, base, "state", engram_model_str(m, m->states[p->desc->first_state + s].name));
        rc = put_blocks(w, path, prec_type(w->net), p, 0, p->state[s]);
    }
    if (!rc)
        rc = put_blocks(w, sub(path, base, "refractory", NULL), CK_I32, p, 0, p->refr);
    for (uint32_t q = 0; q < p->desc->nports && !rc; q++) {
        sub(path, base, "input", engram_model_str(m, m->ports[p->desc->first_port + q].name));
        rc = write_ring(w, p, q, path);
    }
    return rc;
}

static int write_pop(Writer *w, const EngramPopRt *p)
{
    char base[PATH_LEN], grp[PATH_LEN];
    obj_path(base, "/populations", p->name, NULL);
    int rc = 0;
    if (w->root) {
        hid_t g = H5Gcreate2(w->file, base, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
        uint32_t kind = p->desc->kind;
        bool bad = g < 0 || put_attr(g, "size", CK_U32, &p->size) < 0 ||
                   put_attr(g, "kind", CK_U32, &kind) < 0 ||
                   put_attr(g, "total_spikes", CK_U64, &p->total_spikes) < 0;
        if (g >= 0)
            H5Gclose(g);
        sub(grp, base, "state", NULL);
        bad = bad || (p->desc->kind == ENGRAM_POP_NEURON && put_group(w, grp) < 0);
        sub(grp, base, "input", NULL);
        bad = bad || (p->desc->nports && put_group(w, grp) < 0);
        if (bad)
            rc = w_h5fail(w);
    }
    if ((rc = agree(w->net, rc, w->err)))
        return rc;
    if (p->desc->kind == ENGRAM_POP_NEURON)
        rc = write_neuron_pop(w, p, base);
    else if (p->desc->kind == ENGRAM_POP_POISSON)
        rc = write_poisson(w, p, base);
    if (!rc && p->desc->record_spikes)
        rc = write_spikes(w, p, base);
    return rc;
}

/* ---- writing: projections --------------------------------------------------------------- */

/* The global CSR (row offsets, target of every synapse) and the weights. */
static int write_weights(Writer *w, uint32_t j, const char *base)
{
    EngramNetwork *net = w->net;
    const EngramProjRt *pr = &net->projs[j];
    uint64_t n = pr->nsyn_all;
    uint32_t nsrc = pr->csr.nsrc;
    double *wt = NULL;
    uint32_t *src = NULL, *tgt = NULL;
    uint64_t *row = NULL;
    int rc = 0;
    if (w->root) {
        wt = malloc(n * sizeof *wt + 1);
        src = malloc(n * sizeof *src + 1);
        tgt = malloc(n * sizeof *tgt + 1);
        row = calloc((size_t)nsrc + 2, sizeof *row);
        if (!wt || !src || !tgt || !row)
            rc = w_oom(w);
    }
    if (!(rc = agree(net, rc, w->err)))
        rc = agree(net, engram_proj_collect(net, j, wt, true, src, tgt, w->err), w->err);
    for (uint64_t k = 0; !rc && w->root && k < n; k++)
        row[src[k] + 1]++;
    for (uint32_t s = 0; !rc && w->root && s < nsrc; s++)
        row[s + 1] += row[s];
    char path[PATH_LEN];
    hsize_t dims[1] = {n};
    if (!rc && w->root &&
        (put_vec(w, sub(path, base, "row", NULL), CK_U64, (uint64_t)nsrc + 1, row) < 0 ||
         put_vec(w, sub(path, base, "col", NULL), CK_U32, n, tgt) < 0 ||
         put_ds(w, sub(path, base, "weight", NULL), prec_type(net), CK_F64, 1, dims, wt) < 0))
        rc = w_h5fail(w);
    free(wt);
    free(src);
    free(tgt);
    free(row);
    return agree(net, rc, w->err);
}

/* Synapse variables (and syn_last) in global CSR order, through parts. */
static int write_syn_vars(Writer *w, uint32_t j, const char *base, const void **parts)
{
    EngramNetwork *net = w->net;
    const EngramModel *m = net->model;
    const EngramProjDesc *d = net->projs[j].desc;
    char path[PATH_LEN];
    int rc = 0;
    for (uint32_t k = 0; k < d->nsyn_vars && !rc; k++) {
        for (uint32_t t = 0; t < net->nthreads; t++)
            parts[t] = net->tprojs[t][j].syn[k];
        sub(path, base, "syn", var_name(m, d, k));
        rc = put_synapses(w, path, prec_type(net), j, parts);
    }
    for (uint32_t t = 0; t < net->nthreads && d->lazy_syn; t++)
        parts[t] = net->tprojs[t][j].syn_last;
    if (!rc && d->lazy_syn)
        rc = put_synapses(w, sub(path, base, "syn_last", NULL), CK_I32, j, parts);
    return rc;
}

/* Pre traces: one copy (every partition holds the same); post traces: blocks. */
static int write_traces(Writer *w, uint32_t j, const char *base)
{
    EngramNetwork *net = w->net;
    const EngramModel *m = net->model;
    const EngramProjRt *pr = &net->projs[j];
    const EngramProjDesc *d = pr->desc;
    const EngramPopRt *dst = &net->pops[d->dst_pop];
    char path[PATH_LEN];
    int rc = 0;
    for (uint32_t k = 0; k < d->npre && !rc && w->root; k++) {
        sub(path, base, "pre", var_name(m, d, d->nsyn_vars + k));
        if (put_vec(w, path, prec_type(net), pr->csr.nsrc, pr->pre[k]) < 0)
            rc = w_h5fail(w);
    }
    if (!rc && w->root &&
        put_vec(w, sub(path, base, "pre_last", NULL), CK_I32, pr->csr.nsrc, pr->pre_last) < 0)
        rc = w_h5fail(w);
    rc = agree(net, rc, w->err);
    for (uint32_t k = 0; k < d->npost && !rc; k++) {
        sub(path, base, "post", var_name(m, d, d->nsyn_vars + d->npre + k));
        rc = put_blocks(w, path, prec_type(net), dst, 0, pr->post[k]);
    }
    if (!rc)
        rc = put_blocks(w, sub(path, base, "post_last", NULL), CK_I32, dst, 0, pr->post_last);
    return rc;
}

/* `on pre arrival`: the spikes still on their way (the same on every rank). */
static int write_arrivals(Writer *w, const EngramProjRt *pr, const char *base)
{
    const EngramArrivalHist *h = pr->arrival ? pr->arrival->hist : NULL;
    if (!h || !w->root)
        return 0;
    size_t n = engram_arrival_list(h, w->step, NULL, NULL);
    int64_t *steps = malloc((n + 1) * sizeof *steps);
    uint32_t *srcs = malloc((n + 1) * sizeof *srcs);
    char path[PATH_LEN];
    int rc = steps && srcs ? 0 : w_oom(w);
    if (!rc) {
        engram_arrival_list(h, w->step, steps, srcs);
        if (put_vec(w, sub(path, base, "arrival_step", NULL), CK_I64, n, steps) < 0 ||
            put_vec(w, sub(path, base, "arrival_src", NULL), CK_U32, n, srcs) < 0)
            rc = w_h5fail(w);
    }
    free(steps);
    free(srcs);
    return rc;
}

static int write_proj(Writer *w, uint32_t j)
{
    EngramNetwork *net = w->net;
    const EngramProjRt *pr = &net->projs[j];
    char base[PATH_LEN], grp[PATH_LEN];
    obj_path(base, "/projections", pr->name, NULL);
    int rc = 0;
    if (w->root) {
        hid_t g = H5Gcreate2(w->file, base, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
        uint8_t plastic = pr->plastic, on = pr->handlers_on;
        bool bad = g < 0 || put_attr(g, "synapses", CK_U64, &pr->nsyn_all) < 0 ||
                   put_attr(g, "plastic", CK_U8, &plastic) < 0 ||
                   put_attr(g, "handlers_on", CK_U8, &on) < 0;
        if (g >= 0)
            H5Gclose(g);
        const char *subs[3] = {"syn", "pre", "post"};
        for (int k = 0; k < 3 && pr->plastic && !bad; k++) {
            bad = put_group(w, sub(grp, base, subs[k], NULL)) < 0;
        }
        if (bad)
            rc = w_h5fail(w);
    }
    if ((rc = agree(net, rc, w->err)) || !pr->weight)
        return rc;
    rc = write_weights(w, j, base);
    if (rc || !pr->plastic)
        return rc;
    const void **parts = calloc(net->nthreads, sizeof *parts);
    rc = agree(net, parts ? 0 : w_oom(w), w->err);
    if (!rc)
        rc = write_syn_vars(w, j, base, parts);
    free(parts);
    if (!rc)
        rc = agree(net, write_arrivals(w, pr, base), w->err);
    return rc ? rc : write_traces(w, j, base);
}

/* ---- writing: modulators and weight recordings (the same on every rank) ----------------- */

/* Pending `when` releases and protocol rewards as columns, in heap order. */
static herr_t put_pending(Writer *w)
{
    const EngramModState *ms = &w->net->mods;
    size_t n = ms->heap_len;
    int64_t *st = malloc((n + 1) * sizeof *st);
    uint64_t *seq = malloc((n + 1) * sizeof *seq);
    uint32_t *rel = malloc((n + 1) * sizeof *rel), *mod = malloc((n + 1) * sizeof *mod);
    double *amount = malloc((n + 1) * sizeof *amount);
    bool bad = !st || !seq || !rel || !mod || !amount;
    for (size_t k = 0; !bad && k < n; k++) {
        const EngramPendingRelease *x = &ms->heap[k];
        st[k] = x->step;
        seq[k] = x->seq;
        rel[k] = x->release;
        mod[k] = x->modulator;
        amount[k] = x->amount;
    }
    bad = bad || put_vec(w, "/releases/pending_step", CK_I64, n, st) < 0 ||
          put_vec(w, "/releases/pending_seq", CK_U64, n, seq) < 0 ||
          put_vec(w, "/releases/pending_release", CK_U32, n, rel) < 0 ||
          put_vec(w, "/releases/pending_modulator", CK_U32, n, mod) < 0 ||
          put_vec(w, "/releases/pending_amount", CK_F64, n, amount) < 0;
    free(st);
    free(seq);
    free(rel);
    free(mod);
    free(amount);
    return bad ? -1 : 0;
}

static herr_t put_releases(Writer *w)
{
    const EngramModState *ms = &w->net->mods;
    size_t n = ms->nrels;
    int64_t *last = malloc((n + 1) * sizeof *last);
    uint64_t *events = malloc((n + 1) * sizeof *events), *applied = malloc((n + 1) * 8);
    bool bad = !last || !events || !applied;
    for (size_t k = 0; !bad && k < n; k++) {
        last[k] = ms->rels[k].last_src;
        events[k] = ms->rels[k].events;
        applied[k] = ms->rels[k].applied;
    }
    bad = bad || put_vec(w, "/releases/last_src", CK_I64, n, last) < 0 ||
          put_vec(w, "/releases/events", CK_U64, n, events) < 0 ||
          put_vec(w, "/releases/applied", CK_U64, n, applied) < 0;
    free(last);
    free(events);
    free(applied);
    return bad ? -1 : put_pending(w);
}

static herr_t put_modulators(Writer *w)
{
    const EngramModState *ms = &w->net->mods;
    hid_t g = H5Gcreate2(w->file, "/modulators", H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    bool bad = g < 0 || put_attr(g, "steps", CK_I64, &ms->steps) < 0;
    if (g >= 0)
        H5Gclose(g);
    bad = bad || put_vec(w, "/modulators/level", CK_F64, ms->nmods, ms->level) < 0 ||
          put_vec(w, "/modulators/baseline", CK_F64, ms->nmods, ms->baseline) < 0 ||
          put_vec(w, "/modulators/sum", CK_F64, ms->nmods, ms->sum) < 0;
    g = bad ? -1 : H5Gcreate2(w->file, "/releases", H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    bad = bad || g < 0 || put_attr(g, "next_seq", CK_U64, &ms->next_seq) < 0;
    if (g >= 0)
        H5Gclose(g);
    return bad ? -1 : put_releases(w);
}

/* Samples taken before the checkpoint's step (a run stopped at step k may
 * also have taken its final sample at k: that one is not part of the state). */
static herr_t put_weight_rec(Writer *w, uint32_t k)
{
    const EngramNetwork *net = w->net;
    const EngramWeightRecRt *wr = &net->wrecs[k];
    size_t len = samples_before(w->step, wr->every_steps);
    len = len < wr->len ? len : wr->len;
    char base[PATH_LEN], path[PATH_LEN];
    snprintf(base, sizeof base, "/weight_recordings/%u", k);
    hid_t g = H5Gcreate2(w->file, base, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    uint8_t per = wr->per_synapse;
    bool bad = g < 0 || put_str_attr(g, "projection", net->projs[wr->proj].name) < 0 ||
               put_attr(g, "per_synapse", CK_U8, &per) < 0 ||
               put_attr(g, "every_steps", CK_I64, &wr->every_steps) < 0;
    if (g >= 0)
        H5Gclose(g);
    bad = bad || put_vec(w, sub(path, base, "times", NULL), CK_F64, len, wr->times) < 0 ||
          put_vec(w, sub(path, base, "mean", NULL), CK_F64, len, wr->mean) < 0;
    hsize_t dims[2] = {len, net->projs[wr->proj].nsyn_all};
    if (!bad && wr->per_synapse)
        bad = put_ds(w, sub(path, base, "weights", NULL), CK_F64, CK_F64, 2, dims, wr->w) < 0;
    hsize_t cells[2] = {len, (hsize_t)wr->ens_src * wr->ens_dst};
    if (!bad && wr->cell)
        bad = put_ds(w, sub(path, base, "ensemble_mean", NULL), CK_F64, CK_F64, 2, cells,
                     wr->ens_mean) < 0;
    return bad ? -1 : 0;
}

static herr_t put_weight_recs(Writer *w)
{
    herr_t rc = put_group(w, "/weight_recordings");
    for (uint32_t k = 0; k < w->net->nwrecs && rc >= 0; k++)
        rc = put_weight_rec(w, k);
    return rc;
}

/* ---- engram_checkpoint_write ------------------------------------------------------------ */

/* DIR/.NAME.tmp.PID next to PATH (same folder, so the rename is atomic). */
static char *tmp_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    size_t n = strlen(path) + 48;
    char *tmp = malloc(n);
    if (tmp)
        snprintf(tmp, n, "%.*s.%s.tmp.%ld", (int)dlen, path, path + dlen, (long)getpid());
    return tmp;
}

/* Creates the temporary file (so that an unwritable folder fails before any
 * work) and the HDF5 file, in memory: libhdf5 1.10 crashes at exit after a
 * close that failed to flush (a full disk), so HDF5 never writes to disk here
 * and every write that can fail is ours. */
static int begin_file(Writer *w, const char *tmp)
{
    const char *base = strrchr(w->path, '/');
    if (!*(base ? base + 1 : w->path))
        return engram_fail(w->err, ENGRAM_EXIT_IO, "cannot write checkpoint %s: not a file name",
                           w->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        return w_iofail(w, errno);
    close(fd);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    w->gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w->dcpl = H5Pcreate(H5P_DATASET_CREATE);
    bool bad = fcpl < 0 || fapl < 0 || w->gcpl < 0 || w->dcpl < 0 ||
               H5Pset_fapl_core(fapl, CORE_INCREMENT, 0) < 0 ||
               H5Pset_userblock(fcpl, ENGRAM_CHECKPOINT_USERBLOCK) < 0 ||
               H5Pset_obj_track_times(fcpl, 0) < 0 || H5Pset_obj_track_times(w->gcpl, 0) < 0 ||
               H5Pset_obj_track_times(w->dcpl, 0) < 0;
    if (!bad)
        w->file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (bad || w->file < 0 || put_provenance(w) < 0 || put_group(w, "/populations") < 0 ||
        put_group(w, "/projections") < 0)
        return w_h5fail(w);
    return 0;
}

/* The image of the in-memory file (without the userblock, which is not part of it). */
static int take_image(Writer *w, uint8_t **img, size_t *len)
{
    ssize_t n = H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(w->file, NULL, 0);
    *img = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!*img || H5Fget_file_image(w->file, *img, (size_t)n) != n) {
        free(*img);
        *img = NULL;
        return w_h5fail(w);
    }
    *len = (size_t)n;
    return 0;
}

/* Header, then the image, into the temporary file; fsync before the rename. */
static int put_file(Writer *w, const char *tmp, const uint8_t *img, size_t len)
{
    uint8_t body[32], h[ENGRAM_CHECKPOINT_USERBLOCK];
    engram_sha256(img, len, body);
    header_make(h, ENGRAM_CHECKPOINT_USERBLOCK + (uint64_t)len, body);
    FILE *f = fopen(tmp, "wb");
    int e = f ? 0 : errno;
    if (!e && (fwrite(h, 1, sizeof h, f) != sizeof h || fwrite(img, 1, len, f) != len ||
               fflush(f) != 0 || fsync(fileno(f)) != 0))
        e = errno ? errno : EIO;
    if (f && fclose(f) != 0 && !e)
        e = errno;
    return e ? w_iofail(w, e) : 0;
}

/* Makes the rename itself durable (best effort: not every file system syncs folders). */
static void sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_LEN];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Rank 0: takes the image, closes HDF5, writes and renames; after a failure
 * removes the temporary file. */
static int end_file(Writer *w, const char *tmp, int rc)
{
    uint8_t *img = NULL;
    size_t len = 0;
    if (!rc && w->file >= 0)
        rc = take_image(w, &img, &len);
    if (w->file >= 0 && H5Fclose(w->file) < 0 && !rc)
        rc = w_h5fail(w);
    w->file = -1;
    if (w->gcpl >= 0)
        H5Pclose(w->gcpl);
    if (w->dcpl >= 0)
        H5Pclose(w->dcpl);
    errno = 0;
    if (!rc)
        rc = put_file(w, tmp, img, len);
    free(img);
    if (!rc && rename(tmp, w->path) != 0)
        rc = w_iofail(w, errno);
    if (rc)
        unlink(tmp);
    else
        sync_folder(w->path);
    return rc;
}

/* Every section after the file exists, each one agreed. */
static int write_sections(Writer *w, const void *extra, size_t extra_len)
{
    EngramNetwork *net = w->net;
    int rc = 0;
    for (uint32_t i = 0; i < net->npops && !rc; i++)
        rc = write_pop(w, &net->pops[i]);
    for (uint32_t j = 0; j < net->nprojs && !rc; j++)
        rc = write_proj(w, j);
    if (!rc && w->root &&
        (put_modulators(w) < 0 || put_weight_recs(w) < 0 ||
         put_vec(w, "/extra", CK_U8, extra ? extra_len : 0, extra) < 0))
        rc = w_h5fail(w);
    return agree(net, rc, w->err);
}

int engram_checkpoint_write(EngramNetwork *net, const char *path, int64_t step,
                            const void *extra, size_t extra_len, EngramError *err)
{
    Writer w = {.net = net, .path = path, .err = err, .step = step, .root = net->rank == 0,
                .file = -1, .gcpl = -1, .dcpl = -1};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char *tmp = w.root ? tmp_path(path) : NULL;
    w.counts = calloc(net->nranks + 1, sizeof *w.counts);
    int rc = 0;
    if (step < 0 || step > net->nsteps)
        rc = engram_fail(err, ENGRAM_EXIT_MODEL,
                         "cannot write checkpoint %s: step %lld is outside the run (0 to %lld)",
                         path, (long long)step, (long long)net->nsteps);
    else if (!w.counts || (w.root && !tmp))
        rc = w_oom(&w);
    else if (w.root)
        rc = begin_file(&w, tmp);
    rc = agree(net, rc, err);
    if (!rc)
        rc = write_sections(&w, extra, extra_len);
    if (w.root && tmp)
        rc = end_file(&w, tmp, rc);
    rc = agree(net, rc, err);
    free(tmp);
    free(w.counts);
    return rc;
}

/* ---- HDF5 reading helpers --------------------------------------------------------------- */

typedef struct Reader {
    EngramNetwork *net;
    const char *path;
    EngramError *err;
    hid_t file;
    int64_t step;
    /* engram_checkpoint_restore_state: only the dynamical state, moved in
     * time to `now` (shift = now - step); recordings, sources, handlers and
     * the clock stay as they are */
    bool state_only;
    int64_t now, shift;
} Reader;

/* The step that pending input and spikes in flight are counted from. */
static int64_t r_base(const Reader *r)
{
    return r->state_only ? r->now : r->step;
}

/* Step stamps (the last update of a lazy variable) moved to the new time. */
static void shift_steps(int32_t *v, size_t n, int64_t shift)
{
    for (size_t i = 0; shift && i < n; i++)
        v[i] = (int32_t)(v[i] + shift);
}

static int r_oom(Reader *r)
{
    return engram_fail(r->err, ENGRAM_EXIT_RESOURCE, "out of memory reading checkpoint %s",
                       r->path);
}

static int r_unfit(Reader *r, const char *what)
{
    return engram_fail(r->err, ENGRAM_EXIT_MODEL, "checkpoint %s does not fit this network: %s",
                       r->path, what);
}

static int r_h5fail(Reader *r, const char *obj)
{
    return engram_fail(r->err, ENGRAM_EXIT_IO, "cannot read %s from checkpoint %s", obj, r->path);
}

static int get_attr(Reader *r, const char *obj, const char *name, CkType t, void *v)
{
    hid_t a = H5Aopen_by_name(r->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t s = a < 0 ? -1 : H5Aget_space(a);
    bool ok = s >= 0 && H5Sget_simple_extent_npoints(s) == 1 && H5Aread(a, mem_type(t), v) >= 0;
    if (s >= 0)
        H5Sclose(s);
    if (a >= 0)
        H5Aclose(a);
    if (ok)
        return 0;
    char what[PATH_LEN + 64];
    snprintf(what, sizeof what, "attribute %s of %s", name, obj);
    return r_h5fail(r, what);
}

/* A variable-length string attribute into buf (truncated to n - 1 bytes). */
static int get_str_attr(Reader *r, const char *obj, const char *name, char *buf, size_t n)
{
    hid_t a = H5Aopen_by_name(r->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a), s = a < 0 ? -1 : H5Aget_space(a);
    hid_t t = str_type();
    char *v = NULL;
    bool ok = ft >= 0 && s >= 0 && t >= 0 && H5Tget_class(ft) == H5T_STRING &&
              H5Tis_variable_str(ft) > 0 && H5Sget_simple_extent_npoints(s) == 1 &&
              H5Aread(a, t, &v) >= 0 && v;
    if (ok)
        snprintf(buf, n, "%s", v);
    if (v)
        H5free_memory(v);
    if (t >= 0)
        H5Tclose(t);
    if (ft >= 0)
        H5Tclose(ft);
    if (s >= 0)
        H5Sclose(s);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0 : r_h5fail(r, name);
}

/* Shape of a dataset: ndims (1 or 2) and dims; a missing one does not fit. */
static int get_shape(Reader *r, const char *path, int ndims, uint64_t dims[2])
{
    hid_t d = H5Lexists(r->file, path, H5P_DEFAULT) > 0 ? H5Dopen2(r->file, path, H5P_DEFAULT) : -1;
    if (d < 0) {
        char what[PATH_LEN + 32];
        snprintf(what, sizeof what, "it has no %s", path);
        return r_unfit(r, what);
    }
    hid_t s = H5Dget_space(d);
    hsize_t hd[2] = {0, 0};
    int nd = s < 0 ? -1 : H5Sget_simple_extent_dims(s, hd, NULL);
    if (s >= 0)
        H5Sclose(s);
    H5Dclose(d);
    if (nd < 0)
        return r_h5fail(r, path);
    if (nd != ndims) {
        char what[PATH_LEN + 64];
        snprintf(what, sizeof what, "%s has %d dimensions, expected %d", path, nd, ndims);
        return r_unfit(r, what);
    }
    dims[0] = hd[0];
    dims[1] = ndims == 2 ? hd[1] : 1;
    return 0;
}

/* Rows [row0, row0 + nrows) of a dataset of `rows` rows of `cols` values
 * (cols 0: 1-D) into buf as type t; any other shape does not fit. */
static int get_rows(Reader *r, const char *path, CkType t, uint64_t rows, uint64_t cols,
                    uint64_t row0, uint64_t nrows, void *buf)
{
    uint64_t dims[2] = {0, 0};
    int nd = cols ? 2 : 1, rc = get_shape(r, path, nd, dims);
    if (rc)
        return rc;
    if (dims[0] != rows || (cols && dims[1] != cols)) {
        char what[PATH_LEN + 96];
        snprintf(what, sizeof what, "%s has %llu x %llu values, expected %llu x %llu", path,
                 (unsigned long long)dims[0], (unsigned long long)dims[1],
                 (unsigned long long)rows, (unsigned long long)(cols ? cols : 1));
        return r_unfit(r, what);
    }
    if (nrows == 0 || (nd == 2 && cols == 0))
        return 0;
    hsize_t start[2] = {row0, 0}, count[2] = {nrows, cols};
    hid_t d = H5Dopen2(r->file, path, H5P_DEFAULT);
    hid_t fs = d < 0 ? -1 : H5Dget_space(d);
    hid_t ms = H5Screate_simple(nd, count, NULL);
    bool ok = fs >= 0 && ms >= 0 &&
              H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
              H5Dread(d, mem_type(t), ms, fs, H5P_DEFAULT, buf) >= 0;
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (d >= 0)
        H5Dclose(d);
    return ok ? 0 : r_h5fail(r, path);
}

/* A whole 1-D dataset of unknown length: malloc'd into *buf, its length in *n. */
static int get_all(Reader *r, const char *path, CkType t, void **buf, uint64_t *n)
{
    uint64_t dims[2] = {0, 0};
    *buf = NULL;
    int rc = get_shape(r, path, 1, dims);
    if (rc)
        return rc;
    if (dims[0] > (SIZE_MAX - 1) / type_size(t) || !(*buf = malloc(dims[0] * type_size(t) + 1)))
        return r_oom(r);
    *n = dims[0];
    rc = get_rows(r, path, t, dims[0], 0, 0, dims[0], *buf);
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* ---- checking the file against the network ---------------------------------------------- */

static int check_model(Reader *r)
{
    const EngramModel *m = r->net->model;
    char sha[80], name[256];
    int rc = get_str_attr(r, "/", "model_sha256", sha, sizeof sha);
    if (!rc)
        rc = get_str_attr(r, "/", "model", name, sizeof name);
    if (!rc && strcmp(sha, m->hdr->source_sha256) != 0)
        rc = engram_fail(r->err, ENGRAM_EXIT_MODEL,
                         "checkpoint %s belongs to another model: %s (source sha256 %.12s...), "
                         "not %s (sha256 %.12s...)",
                         r->path, name, sha, engram_model_str(m, m->hdr->name),
                         m->hdr->source_sha256);
    return rc;
}

static int check_run(Reader *r)
{
    const EngramNetwork *net = r->net;
    uint32_t prec = 0;
    double dt = 0;
    uint64_t seed = 0;
    char what[256];
    int rc = get_attr(r, "/", "precision", CK_U32, &prec);
    if (!rc)
        rc = get_attr(r, "/", "dt_ms", CK_F64, &dt);
    if (!rc)
        rc = get_attr(r, "/", "seed", CK_U64, &seed);
    if (!rc)
        rc = get_attr(r, "/", "step", CK_I64, &r->step);
    if (rc)
        return rc;
    if (prec != (uint32_t)net->precision)
        snprintf(what, sizeof what, "precision %u there, %d here", prec, net->precision);
    else if (dt != net->dt)
        snprintf(what, sizeof what, "dt %g ms there, %g ms here", dt, net->dt);
    else if (seed != net->seed)
        snprintf(what, sizeof what, "seed %llu there, %llu here (the connectivity depends on it)",
                 (unsigned long long)seed, (unsigned long long)net->seed);
    else if (r->step < 0 || r->step > net->nsteps)
        snprintf(what, sizeof what, "it is at step %lld, beyond the end of this run (%lld steps)",
                 (long long)r->step, (long long)net->nsteps);
    else
        return 0;
    return r_unfit(r, what);
}

/* The count `attr` of object NAME in GROUP ("size" of a population, stored
 * as u32; "synapses" of a projection, u64) must be `want`. */
static int check_count(Reader *r, const char *group, const char *kind, const char *name,
                       const char *attr, bool wide, uint64_t want, const char *unit)
{
    char path[PATH_LEN], what[PATH_LEN + 128];
    obj_path(path, group, name, NULL);
    if (H5Lexists(r->file, group, H5P_DEFAULT) <= 0 || H5Lexists(r->file, path, H5P_DEFAULT) <= 0) {
        snprintf(what, sizeof what, "it has no %s %s", kind, name);
        return r_unfit(r, what);
    }
    uint64_t n = 0;
    uint32_t n32 = 0;
    int rc = wide ? get_attr(r, path, attr, CK_U64, &n) : get_attr(r, path, attr, CK_U32, &n32);
    n = wide ? n : n32;
    if (!rc && n != want) {
        snprintf(what, sizeof what, "%s %s has %llu %s there, %llu here", kind, name,
                 (unsigned long long)n, unit, (unsigned long long)want);
        rc = r_unfit(r, what);
    }
    return rc;
}

static int check_sizes(Reader *r)
{
    const EngramNetwork *net = r->net;
    int rc = 0;
    for (uint32_t i = 0; i < net->npops && !rc; i++)
        rc = check_count(r, "/populations", "population", net->pops[i].name, "size", false,
                         net->pops[i].size, "neurons");
    for (uint32_t j = 0; j < net->nprojs && !rc; j++)
        rc = check_count(r, "/projections", "projection", net->projs[j].name, "synapses", true,
                         net->projs[j].nsyn_all, "synapses");
    return rc;
}

/* ---- reading: populations --------------------------------------------------------------- */

/* The pending input by absolute step back into this rank's ring slots. */
static int read_ring(Reader *r, EngramPopRt *p, uint32_t q, const char *path)
{
    EngramRing *ring = &p->rings[q];
    size_t prec = (size_t)r->net->precision;
    uint64_t dims[2] = {0, 0};
    int rc = get_shape(r, path, 2, dims);
    if (rc)
        return rc;
    uint64_t K = dims[1];
    if (K == 0 || K > 1u << 17)
        return r_unfit(r, path);
    uint8_t *buf = malloc((size_t)p->n * K * prec + 1);
    if (!buf)
        return r_oom(r);
    rc = get_rows(r, path, prec_type(r->net), p->size, K, p->lo, p->n, buf);
    memset(ring->data, 0, (size_t)ring->slots * ring->n * prec);
    for (uint32_t i = 0; i < p->n && !rc; i++)
        for (uint64_t k = 0; k < K && !rc; k++) {
            const uint8_t *v = buf + ((size_t)i * K + k) * prec;
            if ((int64_t)k < ring->slots)
                memcpy((uint8_t *)ring->data +
                           ((size_t)((r_base(r) + (int64_t)k) % ring->slots) * ring->n + i) * prec,
                       v, prec);
            else if (engram_value_load(v, r->net->precision, 0) != 0)
                rc = r_unfit(r, "it holds input for later than the longest delay here "
                                "(were the delays changed?)");
        }
    free(buf);
    return rc;
}

/* Each partition's heap of next spikes, sorted by (step, neuron): a sorted array is a heap. */
static int read_poisson(Reader *r, EngramPopRt *p, const char *base)
{
    int64_t *st = malloc(((size_t)p->n + 1) * sizeof *st);
    double *tm = malloc(((size_t)p->n + 1) * sizeof *tm);
    uint64_t *ctr = malloc(((size_t)p->n + 1) * sizeof *ctr);
    char path[PATH_LEN];
    int rc = (st && tm && ctr) ? 0 : r_oom(r);
    if (!rc)
        rc = get_rows(r, sub(path, base, "poisson_step", NULL), CK_I64, p->size, 0, p->lo,
                      p->n, st);
    if (!rc)
        rc = get_rows(r, sub(path, base, "poisson_time", NULL), CK_F64, p->size, 0, p->lo,
                      p->n, tm);
    if (!rc)
        rc = get_rows(r, sub(path, base, "poisson_counter", NULL), CK_U64, p->size, 0,
                      p->lo, p->n, ctr);
    for (uint32_t t = 0; t < r->net->nthreads && !rc; t++) {
        EngramPopPart *pt = &p->parts[t];
        pt->heap_len = 0;
        for (uint32_t i = pt->lo; i < pt->hi; i++)
            if (st[i] != NO_SPIKE)
                pt->heap[pt->heap_len++] = (EngramPoissonEntry){st[i], i, 0, tm[i], ctr[i]};
        qsort(pt->heap, pt->heap_len, sizeof *pt->heap, cmp_poisson);
    }
    free(st);
    free(tm);
    free(ctr);
    return rc;
}

/* Spike-times sources recompute their position from the step. */
static void seek_times(const Reader *r, EngramPopRt *p)
{
    for (uint32_t t = 0; t < r->net->nthreads; t++) {
        EngramPopPart *pt = &p->parts[t];
        pt->st_next = 0;
        while (pt->st_next < pt->st_len && pt->st_step[pt->st_next] < r->step)
            pt->st_next++;
    }
}

/* The recorded spikes of this rank's neurons, still in (step, id) order. */
static int read_spikes(Reader *r, EngramPopRt *p, const char *base)
{
    char path[PATH_LEN];
    int64_t *st = NULL;
    uint32_t *id = NULL;
    uint64_t n = 0, m = 0;
    int rc = get_all(r, sub(path, base, "spikes_step", NULL), CK_I64, (void **)&st, &n);
    if (!rc && !(id = malloc(n * sizeof *id + 1)))
        rc = r_oom(r);
    if (!rc)
        rc = get_rows(r, sub(path, base, "spikes_id", NULL), CK_U32, n, 0, 0, n, id);
    size_t keep = 0;
    for (uint64_t k = 0; k < n && !rc; k++) {
        if (id[k] >= p->size || st[k] < 0 || st[k] >= r->step)
            rc = r_unfit(r, "a recorded spike lies outside the population or the run so far");
        keep += id[k] >= p->lo && id[k] - p->lo < p->n;
    }
    if (!rc && keep > p->rec_cap) {
        int64_t *s2 = realloc(p->rec_step, keep * sizeof *s2);
        if (s2)
            p->rec_step = s2;
        uint32_t *i2 = realloc(p->rec_id, keep * sizeof *i2);
        if (i2)
            p->rec_id = i2;
        rc = (s2 && i2) ? 0 : r_oom(r);
        if (!rc)
            p->rec_cap = keep;
    }
    for (uint64_t k = 0; k < n && !rc; k++)
        if (id[k] >= p->lo && id[k] - p->lo < p->n) {
            p->rec_step[m] = st[k];
            p->rec_id[m++] = id[k];
        }
    if (!rc)
        p->rec_len = m;
    free(st);
    free(id);
    return rc;
}

static int read_neuron_pop(Reader *r, EngramPopRt *p, const char *base)
{
    const EngramModel *m = r->net->model;
    char path[PATH_LEN];
    int rc = 0;
    for (uint32_t s = 0; s < p->desc->nstates && !rc; s++) {
        sub(path, base, "state", engram_model_str(m, m->states[p->desc->first_state + s].name));
        rc = get_rows(r, path, prec_type(r->net), p->size, 0, p->lo, p->n, p->state[s]);
    }
    if (!rc)
        rc = get_rows(r, sub(path, base, "refractory", NULL), CK_I32, p->size, 0, p->lo,
                      p->n, p->refr);
    for (uint32_t q = 0; q < p->desc->nports && !rc; q++) {
        sub(path, base, "input", engram_model_str(m, m->ports[p->desc->first_port + q].name));
        rc = read_ring(r, p, q, path);
    }
    return rc;
}

static int read_pop(Reader *r, EngramPopRt *p)
{
    char base[PATH_LEN];
    obj_path(base, "/populations", p->name, NULL);
    if (r->state_only)   /* sources keep running; spikes stay recorded */
        return p->desc->kind == ENGRAM_POP_NEURON ? read_neuron_pop(r, p, base) : 0;
    int rc = get_attr(r, base, "total_spikes", CK_U64, &p->total_spikes);
    if (!rc && p->desc->kind == ENGRAM_POP_NEURON)
        rc = read_neuron_pop(r, p, base);
    else if (!rc && p->desc->kind == ENGRAM_POP_POISSON)
        rc = read_poisson(r, p, base);
    else if (!rc)
        seek_times(r, p);
    if (!rc && p->desc->record_spikes)
        rc = read_spikes(r, p, base);
    return rc;
}

/* ---- reading: projections --------------------------------------------------------------- */

/* Where each local synapse of partition t sits in the global CSR (grow, gcol):
 * row s of the partition is the run of global row s whose targets fall in the
 * partition's block; the targets must agree one by one. */
static bool map_partition(const EngramNetwork *net, uint32_t j, uint32_t t, const uint64_t *grow,
                          const uint32_t *gcol, uint64_t *map)
{
    const EngramCsr *c = &net->tprojs[t][j].csr;
    const EngramPopRt *dst = &net->pops[net->projs[j].desc->dst_pop];
    uint32_t glo = dst->lo + dst->parts[t].lo, ghi = dst->lo + dst->parts[t].hi;
    for (uint32_t s = 0; s < c->nsrc; s++) {
        uint64_t lo = grow[s], hi = grow[s + 1];
        while (lo < hi) {   /* first entry of the row with target >= glo */
            uint64_t mid = lo + (hi - lo) / 2;
            if (gcol[mid] < glo)
                lo = mid + 1;
            else
                hi = mid;
        }
        uint64_t g = lo;
        for (uint64_t k = c->row[s]; k < c->row[s + 1]; k++, g++) {
            if (g >= grow[s + 1] || gcol[g] != c->col[k] + dst->lo)
                return false;
            map[k] = g;
        }
        if (g < grow[s + 1] && gcol[g] < ghi)
            return false;
    }
    return true;
}

/* The global CSR of the file, checked, and the map of every partition's synapses into it. */
static int map_synapses(Reader *r, uint32_t j, const char *base, uint64_t **map)
{
    const EngramNetwork *net = r->net;
    const EngramProjRt *pr = &net->projs[j];
    uint64_t n = pr->nsyn_all, nsrc = pr->csr.nsrc;
    uint64_t *grow = malloc((nsrc + 1) * sizeof *grow);
    uint32_t *gcol = malloc(n * sizeof *gcol + 1);
    char path[PATH_LEN];
    int rc = (grow && gcol) ? 0 : r_oom(r);
    if (!rc)
        rc = get_rows(r, sub(path, base, "row", NULL), CK_U64, nsrc + 1, 0, 0, nsrc + 1,
                      grow);
    if (!rc)
        rc = get_rows(r, sub(path, base, "col", NULL), CK_U32, n, 0, 0, n, gcol);
    bool ok = !rc && grow[0] == 0 && grow[nsrc] == n;
    for (uint64_t s = 0; ok && s < nsrc; s++)
        ok = grow[s] <= grow[s + 1];
    for (uint32_t t = 0; ok && t < net->nthreads; t++) {
        if (!(map[t] = malloc(net->tprojs[t][j].csr.nsyn * sizeof **map + 1)))
            rc = r_oom(r);
        ok = !rc && map_partition(net, j, t, grow, gcol, map[t]);
    }
    if (!rc && !ok) {
        char what[512];
        snprintf(what, sizeof what, "the synapses of projection %s differ (another seed or "
                 "connection parameters?)", pr->name);
        rc = r_unfit(r, what);
    }
    free(grow);
    free(gcol);
    return rc;
}

/* A per-synapse dataset in global CSR order scattered into every partition's array. */
static int get_synapses(Reader *r, uint32_t j, const char *path, CkType t, uint64_t *const *map,
                        void *const *dst)
{
    const EngramNetwork *net = r->net;
    uint64_t n = net->projs[j].nsyn_all;
    size_t e = type_size(t);
    uint8_t *all = malloc(n * e + 1);
    int rc = all ? get_rows(r, path, t, n, 0, 0, n, all) : r_oom(r);
    for (uint32_t th = 0; th < net->nthreads && !rc; th++) {
        const EngramCsr *c = &net->tprojs[th][j].csr;
        for (uint64_t k = 0; k < c->nsyn; k++)
            memcpy((uint8_t *)dst[th] + k * e, all + map[th][k] * e, e);
    }
    free(all);
    return rc;
}

static int read_syn_vars(Reader *r, uint32_t j, const char *base, uint64_t *const *map, void **dst)
{
    const EngramNetwork *net = r->net;
    const EngramModel *m = net->model;
    const EngramProjDesc *d = net->projs[j].desc;
    char path[PATH_LEN];
    for (uint32_t t = 0; t < net->nthreads; t++)
        dst[t] = net->tprojs[t][j].weight;
    int rc = get_synapses(r, j, sub(path, base, "weight", NULL), prec_type(net), map, dst);
    for (uint32_t k = 0; k < d->nsyn_vars && !rc && net->projs[j].plastic; k++) {
        for (uint32_t t = 0; t < net->nthreads; t++)
            dst[t] = net->tprojs[t][j].syn[k];
        sub(path, base, "syn", var_name(m, d, k));
        rc = get_synapses(r, j, path, prec_type(net), map, dst);
    }
    for (uint32_t t = 0; t < net->nthreads && d->lazy_syn; t++)
        dst[t] = net->tprojs[t][j].syn_last;
    if (!rc && d->lazy_syn && net->projs[j].plastic)
        rc = get_synapses(r, j, sub(path, base, "syn_last", NULL), CK_I32, map, dst);
    for (uint32_t t = 0; !rc && r->state_only && d->lazy_syn && t < net->nthreads; t++)
        shift_steps(net->tprojs[t][j].syn_last, net->tprojs[t][j].csr.nsyn, r->shift);
    return rc;
}

/* Pre traces into every partition's copy; post traces of this rank's targets. */
static int read_traces(Reader *r, uint32_t j, const char *base)
{
    const EngramNetwork *net = r->net;
    const EngramModel *m = net->model;
    EngramProjRt *pr = &net->projs[j];
    const EngramProjDesc *d = pr->desc;
    const EngramPopRt *dst = &net->pops[d->dst_pop];
    uint32_t nsrc = pr->csr.nsrc;
    size_t prec = (size_t)net->precision;
    char path[PATH_LEN];
    int rc = 0;
    for (uint32_t k = 0; k < d->npre && !rc; k++) {
        sub(path, base, "pre", var_name(m, d, d->nsyn_vars + k));
        rc = get_rows(r, path, prec_type(net), nsrc, 0, 0, nsrc, pr->pre[k]);
        for (uint32_t t = 1; t < net->nthreads && !rc; t++)
            memcpy(net->tprojs[t][j].pre[k], pr->pre[k], nsrc * prec);
    }
    if (!rc)
        rc = get_rows(r, sub(path, base, "pre_last", NULL), CK_I32, nsrc, 0, 0, nsrc,
                      pr->pre_last);
    if (!rc && r->state_only)
        shift_steps(pr->pre_last, nsrc, r->shift);
    for (uint32_t t = 1; t < net->nthreads && !rc; t++)
        memcpy(net->tprojs[t][j].pre_last, pr->pre_last, nsrc * sizeof *pr->pre_last);
    for (uint32_t k = 0; k < d->npost && !rc; k++) {
        sub(path, base, "post", var_name(m, d, d->nsyn_vars + d->npre + k));
        rc = get_rows(r, path, prec_type(net), dst->size, 0, dst->lo, dst->n, pr->post[k]);
    }
    if (!rc)
        rc = get_rows(r, sub(path, base, "post_last", NULL), CK_I32, dst->size, 0, dst->lo,
                      dst->n, pr->post_last);
    if (!rc && r->state_only)
        shift_steps(pr->post_last, dst->n, r->shift);
    return rc;
}

/* `on pre arrival`: the spikes on their way, into the rank's history. */
static int read_arrivals(Reader *r, uint32_t j, const char *base)
{
    EngramArrivalHist *h = r->net->projs[j].arrival ? r->net->projs[j].arrival->hist : NULL;
    if (!h)
        return 0;
    char path[PATH_LEN];
    int64_t *steps = NULL;
    uint32_t *srcs = NULL;
    uint64_t n = 0, m = 0;
    int rc = get_all(r, sub(path, base, "arrival_step", NULL), CK_I64, (void **)&steps, &n);
    if (!rc)
        rc = get_all(r, sub(path, base, "arrival_src", NULL), CK_U32, (void **)&srcs, &m);
    if (!rc && m != n)
        rc = r_unfit(r, "the spikes in flight of a projection are damaged");
    engram_arrival_clear(h);
    for (uint64_t k = 0; !rc && k < n; k++)
        engram_arrival_put(h, r_base(r), steps[k] + (r->state_only ? r->shift : 0), srcs[k]);
    free(steps);
    free(srcs);
    return rc;
}

/* The switch of the handlers (a protocol may have turned them off or on). */
static int read_handlers(Reader *r, uint32_t j, const char *base)
{
    uint8_t on = 0;
    int rc = get_attr(r, base, "handlers_on", CK_U8, &on);
    for (uint32_t t = 0; t < r->net->nthreads && !rc && r->net->projs[j].plastic; t++) {
        EngramProjRt *pr = &r->net->tprojs[t][j];
        pr->handlers_on = on != 0;
        pr->ps.plastic = on != 0;
    }
    return rc;
}

static int read_proj(Reader *r, uint32_t j)
{
    const EngramNetwork *net = r->net;
    const EngramProjRt *pr = &net->projs[j];
    char base[PATH_LEN];
    obj_path(base, "/projections", pr->name, NULL);
    int rc = r->state_only ? 0 : read_handlers(r, j, base);
    if (rc || !pr->weight)
        return rc;
    uint64_t **map = calloc(net->nthreads, sizeof *map);
    void **dst = calloc(net->nthreads, sizeof *dst);
    rc = (map && dst) ? map_synapses(r, j, base, map) : r_oom(r);
    if (!rc)
        rc = read_syn_vars(r, j, base, map, dst);
    if (!rc && pr->plastic)
        rc = read_traces(r, j, base);
    if (!rc && pr->plastic)
        rc = read_arrivals(r, j, base);
    for (uint32_t t = 0; map && t < net->nthreads; t++)
        free(map[t]);
    free(map);
    free(dst);
    return rc;
}

/* ---- reading: modulators, weight recordings, extra -------------------------------------- */

/* The pending heap, checked (a release of the model, or a reward of a
 * modulator); sorted by (step, seq), which is a valid heap. */
static int read_pending(Reader *r)
{
    EngramModState *ms = &r->net->mods;
    int64_t *st = NULL;
    uint64_t *seq = NULL, n = 0;
    uint32_t *rel = NULL, *mod = NULL;
    double *amount = NULL;
    int rc = get_all(r, "/releases/pending_step", CK_I64, (void **)&st, &n);
    if (!rc && n > ENGRAM_MAX_PENDING_RELEASES)
        rc = r_unfit(r, "too many pending releases");
    if (!rc) {
        seq = malloc(n * sizeof *seq + 1);
        rel = malloc(n * sizeof *rel + 1);
        mod = malloc(n * sizeof *mod + 1);
        amount = malloc(n * sizeof *amount + 1);
        rc = (seq && rel && mod && amount) ? 0 : r_oom(r);
    }
    if (!rc)
        rc = get_rows(r, "/releases/pending_seq", CK_U64, n, 0, 0, n, seq);
    if (!rc)
        rc = get_rows(r, "/releases/pending_release", CK_U32, n, 0, 0, n, rel);
    if (!rc)
        rc = get_rows(r, "/releases/pending_modulator", CK_U32, n, 0, 0, n, mod);
    if (!rc)
        rc = get_rows(r, "/releases/pending_amount", CK_F64, n, 0, 0, n, amount);
    if (!rc && n > ms->heap_cap) {
        EngramPendingRelease *h = realloc(ms->heap, n * sizeof *h);
        rc = h ? 0 : r_oom(r);
        if (h) {
            ms->heap = h;
            ms->heap_cap = n;
        }
    }
    for (uint64_t k = 0; k < n && !rc; k++) {
        if ((rel[k] != ENGRAM_NONE && rel[k] >= ms->nrels) || mod[k] >= ms->nmods)
            rc = r_unfit(r, "a pending release names no release or modulator of the model");
        ms->heap[k] = (EngramPendingRelease){.step = st[k], .seq = seq[k], .release = rel[k],
                                             .modulator = mod[k], .amount = amount[k]};
    }
    if (!rc) {
        ms->heap_len = n;
        if (n)
            qsort(ms->heap, n, sizeof *ms->heap, cmp_pending);
    }
    free(st);
    free(seq);
    free(rel);
    free(mod);
    free(amount);
    return rc;
}

static int read_modulators(Reader *r)
{
    EngramModState *ms = &r->net->mods;
    uint32_t nm = ms->nmods, nr = ms->nrels;
    int64_t *last = malloc((nr + 1) * sizeof *last);
    uint64_t *events = malloc((nr + 1) * sizeof *events), *applied = malloc((nr + 1) * 8);
    int rc = (last && events && applied) ? 0 : r_oom(r);
    if (!rc)
        rc = get_rows(r, "/modulators/level", CK_F64, nm, 0, 0, nm, ms->level);
    if (!rc)
        rc = get_rows(r, "/modulators/baseline", CK_F64, nm, 0, 0, nm, ms->baseline);
    if (!rc)
        rc = get_rows(r, "/modulators/sum", CK_F64, nm, 0, 0, nm, ms->sum);
    if (!rc)
        rc = get_attr(r, "/modulators", "steps", CK_I64, &ms->steps);
    if (!rc)
        rc = get_rows(r, "/releases/last_src", CK_I64, nr, 0, 0, nr, last);
    if (!rc)
        rc = get_rows(r, "/releases/events", CK_U64, nr, 0, 0, nr, events);
    if (!rc)
        rc = get_rows(r, "/releases/applied", CK_U64, nr, 0, 0, nr, applied);
    if (!rc)
        rc = get_attr(r, "/releases", "next_seq", CK_U64, &ms->next_seq);
    for (uint32_t k = 0; k < nr && !rc; k++) {
        ms->rels[k].last_src = last[k];
        ms->rels[k].events = events[k];
        ms->rels[k].applied = applied[k];
    }
    free(last);
    free(events);
    free(applied);
    return rc ? rc : read_pending(r);
}

static int read_weight_rec(Reader *r, uint32_t k)
{
    const EngramNetwork *net = r->net;
    EngramWeightRecRt *wr = &net->wrecs[k];
    uint64_t nsyn = net->projs[wr->proj].nsyn_all, dims[2] = {0, 0};
    char base[64], path[PATH_LEN], what[256];
    snprintf(base, sizeof base, "/weight_recordings/%u", k);
    uint8_t per = 0;
    int rc = get_attr(r, base, "per_synapse", CK_U8, &per);
    if (!rc && (per != 0) != wr->per_synapse)
        return r_unfit(r, "a weight recording is per synapse on one side only");
    if (!rc)
        rc = get_shape(r, sub(path, base, "times", NULL), 1, dims);
    if (!rc && dims[0] > wr->cap) {
        snprintf(what, sizeof what, "weight recording %u holds %llu samples, this run keeps at "
                 "most %zu (is it shorter?)", k, (unsigned long long)dims[0], wr->cap);
        return r_unfit(r, what);
    }
    uint64_t len = rc ? 0 : dims[0];
    if (!rc)
        rc = get_rows(r, path, CK_F64, len, 0, 0, len, wr->times);
    if (!rc)
        rc = get_rows(r, sub(path, base, "mean", NULL), CK_F64, len, 0, 0, len, wr->mean);
    if (!rc && wr->per_synapse && wr->w && nsyn)
        rc = get_rows(r, sub(path, base, "weights", NULL), CK_F64, len, nsyn, 0, len,
                      wr->w);
    if (!rc && wr->cell && wr->ens_mean)
        rc = get_rows(r, sub(path, base, "ensemble_mean", NULL), CK_F64, len,
                      (uint64_t)wr->ens_src * wr->ens_dst, 0, len, wr->ens_mean);
    if (!rc)
        wr->len = (size_t)len;
    return rc;
}

static int read_extra(Reader *r, void **extra, size_t *extra_len)
{
    uint64_t n = 0;
    void *buf = NULL;
    int rc = get_all(r, "/extra", CK_U8, &buf, &n);
    if (!rc && n == 0) {
        free(buf);
        buf = NULL;
    }
    *extra = buf;
    *extra_len = rc ? 0 : (size_t)n;
    return rc;
}

/* ---- engram_checkpoint_read ------------------------------------------------------------- */

/* Everything the network must agree with, before anything is changed. */
static int check_fits(Reader *r)
{
    int rc = check_model(r);
    if (!rc)
        rc = check_run(r);
    return rc ? rc : check_sizes(r);
}

/* The levels only: baselines belong to the protocol's scopes, the rest to the record. */
static int read_levels(Reader *r)
{
    EngramModState *ms = &r->net->mods;
    return get_rows(r, "/modulators/level", CK_F64, ms->nmods, 0, 0, ms->nmods, ms->level);
}

static int read_sections(Reader *r)
{
    EngramNetwork *net = r->net;
    int rc = 0;
    if (r->state_only) {
        for (uint32_t i = 0; i < net->npops && !rc; i++)
            rc = read_pop(r, &net->pops[i]);
        for (uint32_t j = 0; j < net->nprojs && !rc; j++)
            rc = read_proj(r, j);
        return rc ? rc : read_levels(r);
    }
    for (uint32_t i = 0; i < net->npops && !rc; i++)
        rc = read_pop(r, &net->pops[i]);
    for (uint32_t j = 0; j < net->nprojs && !rc; j++)
        rc = read_proj(r, j);
    if (!rc)
        rc = read_modulators(r);
    for (uint32_t k = 0; k < net->nwrecs && !rc; k++)
        rc = read_weight_rec(r, k);
    return rc;
}

int engram_checkpoint_read(EngramNetwork *net, const char *path, void **extra, size_t *extra_len,
                           EngramError *err)
{
    Reader r = {.net = net, .path = path, .err = err, .file = -1};
    void *bytes = NULL;
    size_t nbytes = 0;
    *extra = NULL;
    *extra_len = 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = engram_checkpoint_verify(path, err);
    if (!rc && (r.file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot open checkpoint %s with HDF5", path);
    if (!rc)
        rc = check_fits(&r);
    if (!rc)
        rc = read_sections(&r);
    if (!rc)
        rc = read_extra(&r, &bytes, &nbytes);
    if (r.file >= 0)
        H5Fclose(r.file);
    rc = agree(net, rc, err);
    if (rc) {
        free(bytes);
        return rc;
    }
    net->step_begin = r.step;
    *extra = bytes;
    *extra_len = nbytes;
    return 0;
}

int engram_checkpoint_restore_state(EngramNetwork *net, const char *path, int64_t now,
                                    EngramError *err)
{
    Reader r = {.net = net, .path = path, .err = err, .file = -1, .state_only = true, .now = now};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = engram_checkpoint_verify(path, err);
    if (!rc && (r.file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        rc = engram_fail(err, ENGRAM_EXIT_IO, "cannot open checkpoint %s with HDF5", path);
    if (!rc)
        rc = check_fits(&r);
    r.shift = now - r.step;
    if (!rc)
        rc = read_sections(&r);
    if (r.file >= 0)
        H5Fclose(r.file);
    return agree(net, rc, err);
}
