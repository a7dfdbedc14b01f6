/*
 * resolve.c - the first semantic phase: files, imports and symbol tables.
 *
 * It reads the model file, parses it, and follows its `use` lines: `std.X`
 * loads <stdlib_dir>/X.engram, any other dotted path a.b loads
 * <folder of the importing file>/a/b.engram.  Each file is parsed once (the
 * cache is keyed by the canonical path), a stack of modules being loaded
 * finds import cycles, and each module gets a scope of the neurons and
 * plasticity rules it defines or imports: what a `use` of it may name.
 * Rules resolve like neurons (docs/language.md section 12); their tables
 * and uses are checked by sema_plasticity.c.
 *
 * Then the declarations of the model file are collected into the tables of
 * the Sema context, in source order, with duplicate names reported here:
 * model params, regions and their populations (REGION.POP), projections
 * (named, or SRC->DST), drives (named, or poisson->PATH), simulation blocks,
 * records, modulators (by name), releases (release0, release1 ... in source
 * order) and weight records.  Everything inside those declarations
 * (expressions, the neuron a population uses, endpoints) is check.c's and
 * sema_plasticity.c's business.
 *
 * The file also holds the helpers every phase shares (sema_grow, the quiet
 * diagnostics wrappers, dimension descriptions).
 *
 * Order: shared helpers, module loading, scopes, model tables, entry point.
 */
#define _XOPEN_SOURCE 700   /* realpath: the cache key of a module is its canonical path */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"
#include "sema_internal.h"

/* ---- shared helpers ------------------------------------------------------ */

void *sema_grow(Arena *a, void *items, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return items;
    int ncap = *cap ? 2 * *cap : 8;
    void *fresh = arena_alloc(a, (size_t)ncap * elem);
    if (n > 0)
        memcpy(fresh, items, (size_t)n * elem);
    *cap = ncap;
    return fresh;
}

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static int namemap_slot(const NameMap *m, const char *key)
{
    uint32_t mask = (uint32_t)m->cap - 1;
    uint32_t i = name_hash(key) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & mask;
    return (int)i;
}

int namemap_get(const NameMap *m, const char *key)
{
    if (!m->cap || !key)
        return -1;
    int i = namemap_slot(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}

/* Kept at most half full so probes stay short. */
void namemap_put(Arena *a, NameMap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        NameMap old = *m;
        m->cap = m->cap ? 2 * m->cap : 16;
        m->keys = arena_alloc(a, (size_t)m->cap * sizeof *m->keys);
        m->vals = arena_alloc(a, (size_t)m->cap * sizeof *m->vals);
        m->n = 0;
        for (int i = 0; i < old.cap; i++)
            if (old.keys[i])
                namemap_put(a, m, old.keys[i], old.vals[i]);
    }
    int i = namemap_slot(m, key);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
}

/* Formats into a malloc'd string (names in messages can be long). */
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!s)
        abort();
    if (n > 0)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    else
        s[0] = '\0';
    return s;
}

/* While a rule's use is checked (S->dedupe), an error already reported at
 * the same place with the same text (by another use of the rule) is counted
 * but not repeated, and the notes and hints that follow it are dropped. */
static bool repeated(Sema *S, SrcSpan span, const char *msg)
{
    if (!S->dedupe)
        return false;
    const char *key = arena_printf(S->a, "%d:%d:%d:%d:%d|%s", span.file, span.first_line,
                                   span.first_column, span.last_line, span.last_column, msg);
    if (namemap_get(&S->reported, key) >= 0)
        return true;
    namemap_put(S->a, &S->reported, key, 1);
    return false;
}

void sema_error(Sema *S, SrcSpan span, const char *fmt, ...)
{
    if (S->silent)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    S->nerrors_all++;
    S->muted = repeated(S, span, msg);
    if (!S->muted)
        diag_error(S->d, span, "%s", msg);
    free(msg);
}

void sema_note(Sema *S, SrcSpan span, const char *fmt, ...)
{
    if (S->silent || S->muted)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    diag_note(S->d, span, "%s", msg);
    free(msg);
}

void sema_hint(Sema *S, const char *fmt, ...)
{
    if (S->silent || S->muted)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    diag_hint(S->d, "%s", msg);
    free(msg);
}

/* Past the error limit nothing more is printed: skip the edit distances. */
static bool sema_quiet(const Sema *S)
{
    return S->silent || S->muted || (S->d->max_errors > 0 && S->d->nerrors > S->d->max_errors);
}

void sema_suggest(Sema *S, const char *name, const char *const *cands, int n)
{
    if (sema_quiet(S) || !name)
        return;
    const char *near = diag_suggest(name, cands, n);
    if (near)
        sema_hint(S, "did you mean '%s'?", near);
}

const char *sema_dim_describe(EngramDim d, char *buf, size_t n)
{
    static const struct { const char *what; EngramDim dim; } kinds[] = {
        {"a time", {1, 0, 0}},        {"a voltage", {0, 1, 0}},     {"a current", {0, 0, 1}},
        {"a conductance", {0, -1, 1}}, {"a capacitance", {1, -1, 1}}, {"a resistance", {0, 1, -1}},
        {"a frequency", {-1, 0, 0}},   {"a charge", {1, 0, 1}},
    };
    char unit[64];
    if (engram_dim_is_none(d)) {
        snprintf(buf, n, "a dimensionless number");
        return buf;
    }
    engram_dim_name(d, unit, sizeof unit);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (engram_dim_eq(d, kinds[i].dim)) {
            snprintf(buf, n, "%s (%s)", kinds[i].what, unit);
            return buf;
        }
    }
    snprintf(buf, n, "a value in %s", unit);
    return buf;
}

void sema_init(Sema *S, DiagCtx *d, Arena *a, const SemaOptions *opt)
{
    memset(S, 0, sizeof *S);
    S->d = d;
    S->a = a;
    S->stdlib_dir = opt && opt->stdlib_dir ? opt->stdlib_dir : "stdlib";
    S->precision = opt && (opt->precision == 4 || opt->precision == 8) ? opt->precision : 8;
    S->dt_sid = S->duration_sid = S->seed_sid = -1;
}

/* ---- module loading ------------------------------------------------------ */

static void resolve_module(Sema *S, Module *m);

/* The folder part of a path, "" when there is none. */
static char *dir_of(Arena *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return arena_strdup(a, "");
    return arena_strndup(a, path, (size_t)(slash - path) + 1);
}

/* "a.b.c" for messages. */
static char *path_dotted(Arena *a, const Path *p)
{
    size_t n = 1;
    for (int i = 0; i < p->nparts; i++)
        n += strlen(p->parts[i]) + 1;
    char *s = arena_alloc(a, n), *o = s;
    for (int i = 0; i < p->nparts; i++)
        o += sprintf(o, "%s%s", i ? "." : "", p->parts[i]);
    return s;
}

/* The file a module path names: std.a.b -> <stdlib>/a/b.engram, a.b ->
 * <importer's folder>/a/b.engram.  NULL for a bare `std`. */
static char *module_file(Sema *S, const Path *p, const char *importer)
{
    bool std = p->nparts >= 1 && strcmp(p->parts[0], "std") == 0;
    if (p->nparts < 1 || (std && p->nparts == 1))
        return NULL;
    const char *base = std ? S->stdlib_dir : dir_of(S->a, importer);
    size_t n = strlen(base) + 16;
    for (int i = 0; i < p->nparts; i++)
        n += strlen(p->parts[i]) + 1;
    char *s = arena_alloc(S->a, n), *o = s;
    o += sprintf(o, "%s%s", base, std && base[0] && base[strlen(base) - 1] != '/' ? "/" : "");
    for (int i = std ? 1 : 0; i < p->nparts; i++)
        o += sprintf(o, "%s%s", p->parts[i], i + 1 < p->nparts ? "/" : "");
    strcpy(o, ".engram");
    return s;
}

static const char *canonical(Sema *S, const char *path)
{
    char *real = realpath(path, NULL);
    if (!real)
        return arena_strdup(S->a, path);
    const char *k = arena_strdup(S->a, real);
    free(real);
    return k;
}

static Module *module_find(Sema *S, const char *key)
{
    for (int i = 0; i < S->nmods; i++)
        if (strcmp(S->mods[i]->key, key) == 0)
            return S->mods[i];
    return NULL;
}

static Module *module_new(Sema *S, const char *key, const char *label, int file)
{
    Module *m = arena_alloc(S->a, sizeof *m);
    m->key = key;
    m->label = label;
    m->file = file;
    *SEMA_PUSH(S->a, S->mods, S->nmods, S->capmods) = m;
    return m;
}

/* "import cycle: lib.a -> lib.b -> lib.a", from where the cycle starts on
 * the stack of modules being loaded. */
static void report_cycle(Sema *S, const Module *again, const Decl *use, const char *written)
{
    int start = 0;
    while (start < S->nstack && S->stack[start] != again)
        start++;
    size_t n = strlen(written) + 32;
    for (int i = start; i < S->nstack; i++)
        n += strlen(S->stack[i]->label) + 4;
    char *msg = arena_alloc(S->a, n), *o = msg;
    o += sprintf(o, "import cycle: ");
    for (int i = start; i < S->nstack; i++)
        o += sprintf(o, "%s -> ", S->stack[i]->label);
    sprintf(o, "%s", written);
    sema_error(S, use->module.span, "%s", msg);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Parses a module file that was just read; a `model` line does not belong. */
static void module_parse(Sema *S, Module *m, const char *written, const char *path)
{
    m->ast = parse_file(S->d, S->a, m->file);
    if (m->ast && m->ast->model_name) {
        sema_error(S, m->ast->model_span, "a module cannot have a `model` line");
        sema_hint(S, "'%s' is imported as module '%s'; remove its `model` line", path, written);
    }
}

/* Loads the module a `use` names; NULL after reporting why it cannot. */
static Module *module_load(Sema *S, const Decl *use, const Module *importer)
{
    const SourceFile *src = diag_file(S->d, importer->file);
    const char *written = path_dotted(S->a, &use->module);
    char *path = module_file(S, &use->module, src ? src->path : "");
    if (!path) {
        sema_error(S, use->module.span, "'std' is the standard library, not a module");
        sema_hint(S, "name a module in it, e.g. `use std.neurons (LIF)`");
        return NULL;
    }
    if (!file_exists(path)) {
        sema_error(S, use->module.span, "cannot find module '%s'", written);
        sema_hint(S, "looked for %s", path);
        return NULL;
    }
    const char *key = canonical(S, path);
    Module *m = module_find(S, key);
    if (m && m->state == MOD_LOADING) {
        report_cycle(S, m, use, written);
        return NULL;
    }
    if (m)
        return m;
    int file = diag_load_file(S->d, path, &use->module.span);
    if (file < 0)
        return NULL;
    m = module_new(S, key, written, file);
    module_parse(S, m, written, path);
    resolve_module(S, m);
    return m;
}

/* ---- scopes -------------------------------------------------------------- */

static NameEntry *scope_find(Module *m, const char *name)
{
    for (int i = 0; i < m->nscope; i++)
        if (strcmp(m->scope[i].name, name) == 0)
            return &m->scope[i];
    return NULL;
}

/* Adds a neuron or rule to a scope; reports a clash with what is there. */
static void scope_add(Sema *S, Module *m, const NameEntry *add)
{
    NameEntry *old = scope_find(m, add->name);
    if (old && old->decl == add->decl)
        return;   /* the same definition imported twice */
    if (old) {
        if (old->from)
            sema_error(S, add->span, "'%s' is already imported from %s", add->name, old->from);
        else
            sema_error(S, add->span, "'%s' is already defined", add->name);
        sema_note(S, old->span, "the first '%s' is here", add->name);
        return;
    }
    *SEMA_PUSH(S->a, m->scope, m->nscope, m->capscope) = *add;
}

static void import_names(Sema *S, Module *m, const Decl *use)
{
    Module *src = module_load(S, use, m);
    if (!src)
        return;
    const char **cands = arena_alloc(S->a, (size_t)(src->nscope + 1) * sizeof *cands);
    for (int i = 0; i < src->nscope; i++)
        cands[i] = src->scope[i].name;
    for (int i = 0; i < use->nnames; i++) {
        const char *name = use->names[i];
        if (!name)
            continue;
        NameEntry *e = scope_find(src, name);
        if (e) {
            NameEntry imported = {.name = name, .neuron = e->neuron, .rule = e->rule,
                                  .decl = e->decl, .span = use->name_spans[i], .from = src->label};
            scope_add(S, m, &imported);
            continue;
        }
        sema_error(S, use->name_spans[i], "module '%s' has no neuron or rule '%s'", src->label, name);
        sema_suggest(S, name, cands, src->nscope);
    }
}

static void define_neuron(Sema *S, Module *m, Decl *d)
{
    SemaNeuron *n = arena_alloc(S->a, sizeof *n);
    n->decl = d;
    n->name = d->name;
    *SEMA_PUSH(S->a, S->neurons, S->nneurons, S->capneurons) = n;
    NameEntry def = {.name = d->name, .neuron = n, .decl = d, .span = d->name_span};
    scope_add(S, m, &def);
}

/* Plasticity rules (docs/language.md section 12) are named and imported
 * like neurons; sema_plasticity.c builds their tables and checks each use. */
static void define_rule(Sema *S, Module *m, Decl *d)
{
    SemaRule *r = arena_alloc(S->a, sizeof *r);
    r->decl = d;
    r->name = d->name;
    *SEMA_PUSH(S->a, S->rules, S->nrules, S->caprules) = r;
    NameEntry def = {.name = d->name, .rule = r, .decl = d, .span = d->name_span};
    scope_add(S, m, &def);
}

static const char *decl_kind_name(DeclKind k)
{
    switch (k) {
    case DECL_USE: return "use";
    case DECL_PARAM: return "param";
    case DECL_NEURON: return "neuron";
    case DECL_REGION: return "region";
    case DECL_POPULATION: return "population";
    case DECL_PROJECT: return "project";
    case DECL_DRIVE: return "drive";
    case DECL_SIMULATION: return "simulation";
    case DECL_RECORD: return "record";
    case DECL_PLASTICITY: return "plasticity";
    case DECL_MODULATOR: return "modulator";
    case DECL_RELEASE: return "release";
    case DECL_ENSEMBLES: return "ensembles";
    case DECL_SEQUENCE: return "sequence";
    case DECL_STIMULUS: return "stimulus";
    case DECL_PROTOCOL: return "protocol";
    }
    return "declaration";
}

/* Follows the imports of a module and fills its scope, in source order. */
static void resolve_module(Sema *S, Module *m)
{
    m->state = MOD_LOADING;
    *SEMA_PUSH(S->a, S->stack, S->nstack, S->capstack) = m;
    bool is_main = m == S->main;
    for (int i = 0; m->ast && i < m->ast->ndecls; i++) {
        Decl *d = m->ast->decls[i];
        if (!d)
            continue;
        if (d->kind == DECL_USE)
            import_names(S, m, d);
        else if (d->kind == DECL_NEURON && d->name)
            define_neuron(S, m, d);
        else if (d->kind == DECL_PLASTICITY && d->name)
            define_rule(S, m, d);
        else if (!is_main) {
            sema_error(S, d->span, "a module holds only neurons and plasticity rules; this `%s` "
                       "belongs in a model file", decl_kind_name(d->kind));
        }
    }
    S->nstack--;
    m->state = MOD_DONE;
}

SemaNeuron *sema_find_neuron(Sema *S, const char *name)
{
    NameEntry *e = S->main && name ? scope_find(S->main, name) : NULL;
    return e ? e->neuron : NULL;   /* NULL for a rule, too */
}

/* ---- model tables -------------------------------------------------------- */

/* Names the runtime or the neurons own: a model param may not take them. */
static bool reserved_model_name(Sema *S, const Decl *d)
{
    static const char *const settings[] = {"dt", "duration", "seed"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(d->name, settings[i]) == 0) {
            sema_error(S, d->name_span, "'%s' is a simulation setting, not a param", d->name);
            sema_hint(S, "set it with `simulation { %s = ... }`", d->name);
            return true;
        }
    }
    if (strcmp(d->name, "t") == 0 || strcmp(d->name, "i") == 0) {
        sema_error(S, d->name_span, "'%s' is a built-in name (%s)", d->name,
                   d->name[0] == 't' ? "the time" : "the neuron index");
        return true;
    }
    return false;
}

static void collect_param(Sema *S, Decl *d)
{
    if (!d->name || reserved_model_name(S, d))
        return;
    int old = namemap_get(&S->mparam_names, d->name);
    if (old >= 0) {
        sema_error(S, d->name_span, "param '%s' is defined twice", d->name);
        sema_note(S, S->mparams[old].decl->name_span, "the first '%s' is here", d->name);
        return;
    }
    namemap_put(S->a, &S->mparam_names, d->name, S->nmparams);
    ModelParam *p = SEMA_PUSH(S->a, S->mparams, S->nmparams, S->capmparams);
    p->name = d->name;
    p->decl = d;
    p->sid = -1;
}

SemaPop *sema_find_pop(Sema *S, const char *region, const char *name)
{
    char stack[256];
    size_t n = strlen(region) + strlen(name) + 2;
    char *path = n <= sizeof stack ? stack : arena_alloc(S->a, n);
    snprintf(path, n, "%s.%s", region, name);
    int i = namemap_get(&S->pop_paths, path);
    return i >= 0 ? &S->pops[i] : NULL;
}

static void collect_region(Sema *S, Decl *r, Decl ***regions, int *nregions, int *cap,
                           NameMap *seen)
{
    if (!r->name)
        return;
    int old = namemap_get(seen, r->name);
    if (old >= 0) {
        sema_error(S, r->name_span, "region '%s' is defined twice", r->name);
        sema_note(S, (*regions)[old]->name_span, "the first '%s' is here", r->name);
        return;
    }
    namemap_put(S->a, seen, r->name, *nregions);
    *SEMA_PUSH(S->a, *regions, *nregions, *cap) = r;
    for (int i = 0; i < r->nmembers; i++) {
        Decl *p = r->members[i];
        if (!p || p->kind != DECL_POPULATION || !p->name)
            continue;
        SemaPop *dup = sema_find_pop(S, r->name, p->name);
        if (dup) {
            sema_error(S, p->name_span, "population '%s' is defined twice in region '%s'",
                       p->name, r->name);
            sema_note(S, dup->decl->name_span, "the first '%s' is here", p->name);
            continue;
        }
        SemaPop *sp = SEMA_PUSH(S->a, S->pops, S->npops, S->cappops);
        memset(sp, 0, sizeof *sp);
        sp->decl = p;
        sp->region = r->name;
        sp->name = p->name;
        sp->path = arena_printf(S->a, "%s.%s", r->name, p->name);
        sp->size_sid = sp->refr_sid = -1;
        namemap_put(S->a, &S->pop_paths, sp->path, S->npops - 1);
    }
    for (int i = 0; i < r->nmembers; i++) {
        Decl *e = r->members[i];
        if (!e || e->kind != DECL_ENSEMBLES || !e->name)
            continue;
        SemaEnsGroup *g = SEMA_PUSH(S->a, S->ens, S->nens, S->capens);
        memset(g, 0, sizeof *g);
        g->decl = e;
        g->region = r->name;
        g->pop = g->count_sid = -1;
    }
}

/* Sequences and protocols have their own name spaces. */
static void collect_sequence(Sema *S, Decl *d)
{
    if (!d->name)
        return;
    int old = namemap_get(&S->seq_names, d->name);
    if (old >= 0) {
        sema_error(S, d->name_span, "sequence '%s' is defined twice", d->name);
        sema_note(S, S->seqs[old].decl->name_span, "the first '%s' is here", d->name);
        return;
    }
    namemap_put(S->a, &S->seq_names, d->name, S->nseqs);
    SemaSequence *q = SEMA_PUSH(S->a, S->seqs, S->nseqs, S->capseqs);
    memset(q, 0, sizeof *q);
    q->decl = d;
    q->group = q->interval_sid = q->threshold_sid = q->window_sid = -1;
}

static void collect_protocol(Sema *S, Decl *d)
{
    if (!d->name)
        return;
    for (int i = 0; i < S->nprotos; i++)
        if (strcmp(S->protos[i]->name, d->name) == 0) {
            sema_error(S, d->name_span, "protocol '%s' is defined twice", d->name);
            sema_note(S, S->protos[i]->name_span, "the first '%s' is here", d->name);
            return;
        }
    if (strcmp(d->name, "none") == 0) {
        sema_error(S, d->name_span, "'none' cannot name a protocol: `--protocol none` runs "
                   "without one");
        return;
    }
    *SEMA_PUSH(S->a, S->protos, S->nprotos, S->capprotos) = d;
}

static void collect_stimulus(Sema *S, Decl *d)
{
    SemaStimulus *st = SEMA_PUSH(S->a, S->stims, S->nstims, S->capstims);
    memset(st, 0, sizeof *st);
    st->decl = d;
    st->port = st->weight_sid = -1;
}

/* Projections and drives share one name space: their names prefix params. */
static const Decl *named_find(Sema *S, const char *name)
{
    int i = namemap_get(&S->link_names, name);
    if (i == -1)
        return NULL;
    return i >= 0 ? S->projs[i].decl : S->drives[-2 - i].decl;
}

static void report_dup_link(Sema *S, const Decl *d, const Decl *old, const char *name)
{
    bool proj = d->kind == DECL_PROJECT;
    if (!d->name) {
        sema_error(S, proj ? d->src.span : d->dst.span,
                   "two unnamed %s %s '%s': name them", proj ? "projections" : "drives",
                   proj ? "are both called" : "onto the same population are both called", name);
        if (proj)
            sema_hint(S, "write `project NAME: %s` to tell them apart", name);
        else
            sema_hint(S, "write `drive NAME: ...` to tell them apart");
    } else {
        sema_error(S, d->name_span, "the name '%s' is already used", name);
    }
    SrcSpan at = old->name ? old->name_span : old->kind == DECL_PROJECT ? old->src.span : old->dst.span;
    sema_note(S, at, "the other one is here");
}

/* SRC or SRC[k] as written, for a projection's default name. */
static const char *endpoint_text(Sema *S, const Path *p, const Expr *index)
{
    const char *path = path_dotted(S->a, p);
    return index ? arena_printf(S->a, "%s[%s]", path, ast_expr_text(S->a, index)) : path;
}

static void collect_project(Sema *S, Decl *d)
{
    const char *name = d->name ? d->name
        : arena_printf(S->a, "%s->%s", endpoint_text(S, &d->src, d->index),
                       endpoint_text(S, &d->dst, d->index2));
    const Decl *old = named_find(S, name);
    if (old) {
        report_dup_link(S, d, old, name);
        return;
    }
    namemap_put(S->a, &S->link_names, name, S->nprojs);
    SemaProj *p = SEMA_PUSH(S->a, S->projs, S->nprojs, S->capprojs);
    memset(p, 0, sizeof *p);
    p->decl = d;
    p->name = name;
    p->rule_sid = p->port = -1;
    p->src_group = p->src_ens = p->dst_group = p->dst_ens = -1;
}

static void collect_drive(Sema *S, Decl *d)
{
    const char *name = d->name ? d->name
        : arena_printf(S->a, "poisson->%s", path_dotted(S->a, &d->dst));
    const Decl *old = named_find(S, name);
    if (old) {
        report_dup_link(S, d, old, name);
        return;
    }
    namemap_put(S->a, &S->link_names, name, -2 - S->ndrives);
    SemaDrive *v = SEMA_PUSH(S->a, S->drives, S->ndrives, S->capdrives);
    memset(v, 0, sizeof *v);
    v->decl = d;
    v->name = name;
    v->port = v->rate_sid = v->count_sid = v->weight_sid = -1;
}

/* Modulators have their own name space: rules read them by name. */
static void collect_modulator(Sema *S, Decl *d)
{
    if (!d->name)
        return;
    int old = namemap_get(&S->mod_names, d->name);
    if (old >= 0) {
        sema_error(S, d->name_span, "modulator '%s' is defined twice", d->name);
        sema_note(S, S->modulators[old].decl->name_span, "the first '%s' is here", d->name);
        return;
    }
    namemap_put(S->a, &S->mod_names, d->name, S->nmodulators);
    SemaModulator *m = SEMA_PUSH(S->a, S->modulators, S->nmodulators, S->capmodulators);
    memset(m, 0, sizeof *m);
    m->decl = d;
    m->name = d->name;
    m->baseline_sid = m->tau_sid = -1;
}

/* Releases are numbered in source order from 0: their params are
 * release<k>.amount ... (docs/language.md section 13). */
static void collect_release(Sema *S, Decl *d)
{
    SemaRelease *r = SEMA_PUSH(S->a, S->releases, S->nreleases, S->capreleases);
    memset(r, 0, sizeof *r);
    r->decl = d;
    r->name = arena_printf(S->a, "release%d", S->nreleases - 1);
    r->modulator = -1;
    r->amount_sid = r->src_index_sid = r->dst_index_sid = r->window_sid = -1;
    r->delay = (SemaDist){ENGRAM_DIST_CONST, {-1, -1, -1, -1}};
}

static void collect_weight_rec(Sema *S, Decl *d)
{
    SemaWeightRec *w = SEMA_PUSH(S->a, S->wrecs, S->nwrecs, S->capwrecs);
    memset(w, 0, sizeof *w);
    w->decl = d;
    w->proj = w->every_sid = -1;
}

static void collect_model(Sema *S)
{
    Decl **regions = NULL;
    int nregions = 0, cap = 0;
    NameMap seen = {0};
    for (int i = 0; i < S->main->ast->ndecls; i++) {
        Decl *d = S->main->ast->decls[i];
        if (!d)
            continue;
        switch (d->kind) {
        case DECL_PARAM: collect_param(S, d); break;
        case DECL_REGION: collect_region(S, d, &regions, &nregions, &cap, &seen); break;
        case DECL_PROJECT: collect_project(S, d); break;
        case DECL_DRIVE: collect_drive(S, d); break;
        case DECL_SIMULATION: *SEMA_PUSH(S->a, S->sims, S->nsims, S->capsims) = d; break;
        case DECL_RECORD:
            if (d->record_kind == RECORD_WEIGHTS)
                collect_weight_rec(S, d);
            else
                *SEMA_PUSH(S->a, S->records, S->nrecords, S->caprecords) = d;
            break;
        case DECL_MODULATOR: collect_modulator(S, d); break;
        case DECL_RELEASE: collect_release(S, d); break;
        case DECL_SEQUENCE: collect_sequence(S, d); break;
        case DECL_STIMULUS: collect_stimulus(S, d); break;
        case DECL_PROTOCOL: collect_protocol(S, d); break;
        case DECL_POPULATION:
            sema_error(S, d->span, "a population belongs inside a region");
            break;
        case DECL_ENSEMBLES:
            sema_error(S, d->span, "ensembles belong inside the region of their population");
            break;
        case DECL_USE: case DECL_NEURON: case DECL_PLASTICITY: break;   /* resolve_module */
        }
    }
}

/* ---- entry point --------------------------------------------------------- */

bool sema_resolve(Sema *S, int file)
{
    int errors = S->d->nerrors;
    const SourceFile *src = diag_file(S->d, file);
    if (!src)
        return false;
    S->main = module_new(S, canonical(S, src->path), src->path, file);
    S->main->ast = parse_file(S->d, S->a, file);
    AstFile *ast = S->main->ast;
    if (S->d->nerrors != errors)
        return false;   /* syntax errors: what follows would only echo them */
    if (!ast || !ast->model_name) {
        SrcSpan top = {file, 1, 1, 1, 1};
        sema_error(S, top, "'%s' is not a model: it has no `model` line", src->path);
        sema_hint(S, "a model file starts with `model NAME`; a file without one is a module "
                     "to import with `use`");
        if (!ast)
            return false;
    }
    resolve_module(S, S->main);
    collect_model(S);
    return S->d->nerrors == errors;
}
