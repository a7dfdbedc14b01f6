/*
 * diag.c - the source manager and the diagnostic queue (see diag.h).
 *
 * Order of the file: loading sources (with the checks that keep absurd input
 * out of the lexer: size, directories, NUL bytes), queuing diagnostics (with
 * the max_errors cut-off), printing them (location line, quoted source line,
 * caret line, hints), and the edit-distance suggester used by every phase for
 * "did you mean" hints.
 *
 * Lines are found through a line-start table built once per file, so printing
 * a diagnostic costs one binary search, not a scan of the file.
 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIAG_DEFAULT_MAX_ERRORS 50

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("engramc: fatal: out of memory\n", stderr);
        abort();
    }
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

void diag_init(DiagCtx *d)
{
    memset(d, 0, sizeof *d);
    d->max_errors = DIAG_DEFAULT_MAX_ERRORS;
}

void diag_free(DiagCtx *d)
{
    for (int i = 0; i < d->nfiles; i++) {
        free(d->files[i].path);
        free(d->files[i].text);
        free(d->files[i].line_starts);
    }
    for (int i = 0; i < d->ndiags; i++)
        free(d->diags[i].message);
    free(d->files);
    free(d->diags);
    memset(d, 0, sizeof *d);
}

/* ---- sources ------------------------------------------------------------ */

/* Builds the line-start table.  A final line without '\n' still counts. */
static void index_lines(SourceFile *f)
{
    size_t cap = 64, n = 0;
    size_t *starts = xrealloc(NULL, cap * sizeof *starts);
    starts[n++] = 0;
    for (size_t i = 0; i < f->size; i++) {
        if (f->text[i] != '\n' || i + 1 >= f->size)
            continue;
        if (n == cap) {
            cap *= 2;
            starts = xrealloc(starts, cap * sizeof *starts);
        }
        starts[n++] = i + 1;
    }
    f->line_starts = starts;
    f->nlines = (int)n;
}

/* Takes ownership of text (size bytes plus a NUL). */
static int add_file(DiagCtx *d, const char *path, char *text, size_t size)
{
    if (d->nfiles == d->capfiles) {
        d->capfiles = d->capfiles ? 2 * d->capfiles : 8;
        d->files = xrealloc(d->files, (size_t)d->capfiles * sizeof *d->files);
    }
    SourceFile *f = &d->files[d->nfiles];
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    f->text = text;
    f->size = size;
    index_lines(f);
    return d->nfiles++;
}

int diag_add_text(DiagCtx *d, const char *name, const char *text, size_t size)
{
    char *copy = xrealloc(NULL, size + 1);
    memcpy(copy, text, size);
    copy[size] = '\0';
    return add_file(d, name, copy, size);
}

const SourceFile *diag_file(const DiagCtx *d, int file)
{
    if (file < 0 || file >= d->nfiles)
        return NULL;
    return &d->files[file];
}

/* Reports a file problem at the `use` line that asked for it, or without a
 * location for the file named on the command line. */
static void file_error(DiagCtx *d, const SrcSpan *from, const char *path, const char *what)
{
    if (from)
        diag_error(d, *from, "cannot read '%s': %s", path, what);
    else
        diag_error_noloc(d, "cannot read '%s': %s", path, what);
}

/* 1-based line and column of byte offset off, for the NUL-byte message. */
static void offset_position(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Reads exactly st_size bytes; a file that changes under us is an error. */
static char *read_all(FILE *fp, size_t size, bool *short_read)
{
    char *text = xrealloc(NULL, size + 1);
    size_t got = fread(text, 1, size, fp);
    text[got] = '\0';
    *short_read = got != size || ferror(fp);
    return text;
}

int diag_load_file(DiagCtx *d, const char *path, const SrcSpan *from)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        file_error(d, from, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(fp);
        file_error(d, from, path, S_ISDIR(st.st_mode) ? "it is a directory" : strerror(errno));
        return -1;
    }
    /* Checked before reading so a huge file costs nothing. */
    if ((uintmax_t)st.st_size > SOURCE_MAX_BYTES) {
        fclose(fp);
        char msg[96];
        snprintf(msg, sizeof msg, "file is too large (%ju MB; the limit is %u MB)",
                 (uintmax_t)st.st_size >> 20, SOURCE_MAX_BYTES >> 20);
        file_error(d, from, path, msg);
        return -1;
    }
    bool short_read;
    char *text = read_all(fp, (size_t)st.st_size, &short_read);
    fclose(fp);
    if (short_read) {
        free(text);
        file_error(d, from, path, "read error");
        return -1;
    }
    const char *nul = memchr(text, '\0', (size_t)st.st_size);
    if (nul) {
        int line, col;
        offset_position(text, (size_t)(nul - text), &line, &col);
        char msg[96];
        snprintf(msg, sizeof msg, "binary file (NUL byte at line %d, column %d)", line, col);
        free(text);
        file_error(d, from, path, msg);
        return -1;
    }
    return add_file(d, path, text, (size_t)st.st_size);
}

/* ---- queuing ----------------------------------------------------------- */

/* After max_errors errors the queue is closed: one note says so, and every
 * later diagnostic (including the notes and hints of dropped errors) is only
 * counted.  nerrors keeps counting so the driver still sees the failure. */
static bool queue_closed(const DiagCtx *d)
{
    return d->max_errors > 0 && d->nerrors > d->max_errors;
}

static void push(DiagCtx *d, DiagLevel level, const SrcSpan *span, char *msg)
{
    if (d->ndiags == d->capdiags) {
        d->capdiags = d->capdiags ? 2 * d->capdiags : 16;
        d->diags = xrealloc(d->diags, (size_t)d->capdiags * sizeof *d->diags);
    }
    Diagnostic *g = &d->diags[d->ndiags++];
    g->level = level;
    g->has_span = span != NULL;
    if (span) {
        g->span = *span;
    } else {
        memset(&g->span, 0, sizeof g->span);
        g->span.file = -1;
    }
    g->message = msg;
}

static char *vformat(const char *fmt, va_list ap)
{
    char small[256];
    if (!fmt)   /* never; it stops a gcc -fsanitize false "null format" warning */
        fmt = "";
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *s = xrealloc(NULL, (size_t)n + 1);
    if ((size_t)n < sizeof small)
        memcpy(s, small, (size_t)n + 1);
    else
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static void vqueue(DiagCtx *d, DiagLevel level, const SrcSpan *span, const char *fmt, va_list ap)
{
    if (level == DIAG_ERROR) {
        d->nerrors++;
        if (d->max_errors > 0 && d->nerrors == d->max_errors + 1) {
            push(d, DIAG_NOTE, NULL, xstrdup("too many errors; stopping"));
            return;
        }
    } else if (level == DIAG_WARNING) {
        d->nwarnings++;
    }
    if (queue_closed(d))
        return;
    push(d, level, span, vformat(fmt, ap));
}

void diag_error(DiagCtx *d, SrcSpan span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vqueue(d, DIAG_ERROR, &span, fmt, ap);
    va_end(ap);
}

void diag_warning(DiagCtx *d, SrcSpan span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vqueue(d, DIAG_WARNING, &span, fmt, ap);
    va_end(ap);
}

void diag_note(DiagCtx *d, SrcSpan span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vqueue(d, DIAG_NOTE, &span, fmt, ap);
    va_end(ap);
}

void diag_hint(DiagCtx *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vqueue(d, DIAG_HINT, NULL, fmt, ap);
    va_end(ap);
}

void diag_error_noloc(DiagCtx *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vqueue(d, DIAG_ERROR, NULL, fmt, ap);
    va_end(ap);
}

/* ---- printing ------------------------------------------------------------ */

static const char *level_name(DiagLevel level)
{
    switch (level) {
    case DIAG_ERROR: return "error";
    case DIAG_WARNING: return "warning";
    case DIAG_NOTE: return "note";
    case DIAG_HINT: return "hint";
    }
    return "error";
}

static const char *level_color(DiagLevel level)
{
    switch (level) {
    case DIAG_ERROR: return "\033[1;31m";
    case DIAG_WARNING: return "\033[1;35m";
    case DIAG_NOTE: return "\033[1;36m";
    case DIAG_HINT: return "\033[1;32m";
    }
    return "";
}

/* Text of 1-based line `line` without its terminator; false if out of range. */
static bool line_text(const SourceFile *f, int line, const char **start, size_t *len)
{
    if (!f || line < 1 || line > f->nlines || f->size == 0)
        return false;
    size_t b = f->line_starts[line - 1];
    size_t e = line < f->nlines ? f->line_starts[line] : f->size;
    if (e > b && f->text[e - 1] == '\n')
        e--;
    if (e > b && f->text[e - 1] == '\r')
        e--;
    *start = f->text + b;
    *len = e - b;
    return true;
}

enum { SNIPPET_MAX = 160, SNIPPET_BEFORE = 60 };  /* long lines show a window */

/* Clips a long line to a window around byte `first`, so a 1 MB line does not
 * flood the terminal; "..." marks what was cut.  Returns the new first. */
static size_t clip_line(const char **text, size_t *len, size_t first, bool *cut_left, bool *cut_right)
{
    *cut_left = *cut_right = false;
    if (*len <= SNIPPET_MAX)
        return first;
    size_t start = first > SNIPPET_BEFORE ? first - SNIPPET_BEFORE : 0;
    if (start > *len)
        start = *len;
    *cut_left = start > 0;
    *text += start;
    *len -= start;
    if (*len > SNIPPET_MAX) {
        *len = SNIPPET_MAX;
        *cut_right = true;
    }
    return first - start + (*cut_left ? 3 : 0);
}

/* "    3 | source" then "      |    ^~~~": tabs are copied from the source so
 * the caret lines up whatever the terminal's tab width. */
static void print_snippet(FILE *out, const SourceFile *f, const SrcSpan *s, bool color)
{
    const char *text;
    size_t len;
    if (!line_text(f, s->first_line, &text, &len))
        return;
    size_t first = s->first_column > 0 ? (size_t)s->first_column - 1 : 0;
    size_t width = s->last_line == s->first_line && s->last_column >= s->first_column
                       ? (size_t)(s->last_column - s->first_column) + 1 : (size_t)-1;
    bool cut_left, cut_right;
    size_t col = clip_line(&text, &len, first, &cut_left, &cut_right);
    fprintf(out, "%5d | %s", s->first_line, cut_left ? "..." : "");
    fwrite(text, 1, len, out);
    fputs(cut_right ? "...\n      | " : "\n      | ", out);
    size_t shown = len + (cut_left ? 3 : 0);
    if (col > shown)
        col = shown;
    for (size_t i = 0; i < col; i++) {
        size_t k = i - (cut_left ? 3 : 0);
        fputc(i >= (cut_left ? 3u : 0u) && text[k] == '\t' ? '\t' : ' ', out);
    }
    if (color)
        fputs("\033[1;32m", out);
    fputc('^', out);
    for (size_t i = col + 1; i < shown && i - col < width; i++)
        fputc('~', out);
    if (color)
        fputs("\033[0m", out);
    fputc('\n', out);
}

static void print_one(const DiagCtx *d, const Diagnostic *g, FILE *out)
{
    const char *col_on = d->color ? level_color(g->level) : "";
    const char *col_off = d->color ? "\033[0m" : "";
    const SourceFile *f = g->has_span ? diag_file(d, g->span.file) : NULL;
    if (g->level == DIAG_HINT) {
        fprintf(out, "%shint:%s %s\n", col_on, col_off, g->message);
        return;
    }
    if (!f) {
        fprintf(out, "engramc: %s%s:%s %s\n", col_on, level_name(g->level), col_off, g->message);
        return;
    }
    fprintf(out, "%s:%d:%d: %s%s:%s %s\n", f->path, g->span.first_line, g->span.first_column,
            col_on, level_name(g->level), col_off, g->message);
    print_snippet(out, f, &g->span, d->color);
}

void diag_flush(DiagCtx *d, FILE *out)
{
    for (int i = 0; i < d->ndiags; i++) {
        print_one(d, &d->diags[i], out);
        free(d->diags[i].message);
    }
    d->ndiags = 0;
    fflush(out);
}

/* ---- suggestions ---------------------------------------------------------- */

/* Optimal-string-alignment distance (a swap of neighbours counts one), capped:
 * returns cap + 1 as soon as every path exceeds cap.  Names are short. */
static int edit_distance(const char *a, const char *b, int cap)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64)
        return cap + 1;
    int d[65][65];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int row_min = cap + 1;
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
            if (v < row_min)
                row_min = v;
        }
        if (row_min > cap)
            return cap + 1;
    }
    return d[n][m];
}

const char *diag_suggest(const char *name, const char *const *candidates, int ncandidates)
{
    /* Short names are close to everything; allow only one edit for them. */
    int cap = strlen(name) <= 3 ? 1 : 2;
    const char *best = NULL;
    int best_d = cap + 1;
    for (int i = 0; i < ncandidates; i++) {
        if (!candidates[i])
            continue;
        int dist = edit_distance(name, candidates[i], cap);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    return best;
}
