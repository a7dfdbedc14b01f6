/*
 * driver.c - engramc's command line and the compilation pipeline.
 *
 *   engramc build [options] FILE         -> standalone simulator (or -c / --emit-llvm)
 *   engramc run [options] FILE [-- ARGS]  -> compile in memory (ORC JIT) and run
 *   engramc check [--dump-ir] FILE       -> diagnostics only
 *   engramc fmt FILE                     -> canonical source on stdout
 *
 * driver_compile is the pipeline as a list: read -> sema (resolve, check,
 * lower) -> codegen (kernels, tables, O3) -> emit/link or JIT, stopping after
 * any phase that reported errors.  Diagnostics are flushed to stderr once, at
 * the end, in the order they were found.
 *
 * Exit codes (engram_rt.h): 0 ok, 1 errors in the model, 2 bad command line,
 * 3 a file that cannot be read or written (including a failed link).
 *
 * Files: the compiler finds its runtime libraries and the standard library
 * relative to its own executable (/proc/self/exe), first as laid out in the
 * build tree (<dir>/lib, <dir>/stdlib), then as installed
 * (<dir>/../<libdir>/engram, <dir>/../<datadir>/engram/stdlib).  Every output
 * is written into a temporary folder next to its destination and renamed
 * into place, so a failed or interrupted compile never leaves half a file.
 *
 * Order: options, paths and files, phases, commands, driver_main.
 */
#include "driver.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/Core.h>

#include "ast.h"
#include "codegen.h"
#include "diag.h"
#include "engram_config.h"
#include "engram_rt.h"
#include "ir.h"
#include "parse.h"
#include "sema.h"

/* ---- options ------------------------------------------------------------------- */

typedef enum Command { CMD_NONE, CMD_BUILD, CMD_RUN, CMD_CHECK, CMD_FMT } Command;

typedef struct Options {
    Command cmd;
    const char *input, *output, *cpu, *stdlib_dir;
    bool emit_llvm, object_only, dump_ir, verbose, help, version;
    bool mpi;            /* build: link the MPI runtime (libengram_rt_mpi.a) */
    int opt_level;       /* 0..3 */
    int precision;       /* 4 or 8 */
    int sim_argc;        /* run: arguments after "--" */
    char **sim_argv;
} Options;

static const char usage_text[] =
    "usage: engramc <command> [options] FILE\n"
    "\n"
    "commands:\n"
    "  build FILE              compile a model into a standalone simulator\n"
    "  run FILE [-- ARGS...]   compile in memory and run it (ARGS go to the simulator)\n"
    "  check FILE              report errors only\n"
    "  fmt FILE                print the model in canonical form\n"
    "\n"
    "options:\n"
    "  -o OUT                  output file (build; default: FILE without .engram)\n"
    "  -c                      write an object file only (build)\n"
    "  --mpi                   link the MPI runtime: run with mpirun -np N (build)\n"
    "  --emit-llvm             write the optimised LLVM IR (.ll) instead (build)\n"
    "  --cpu NAME              target CPU (default: this machine's CPU and features)\n"
    "  --precision P           float or double state variables (default: double)\n"
    "  -O0 | -O1 | -O2 | -O3   optimisation level (default: -O3)\n"
    "  --stdlib DIR            folder of the std.* modules\n"
    "  --dump-ir               print the network IR (check)\n"
    "  -v, --verbose           print the time each phase takes\n"
    "  -h, --help              show this help\n"
    "  --version               show the version\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "engramc: error: ..." and the usage; returns the usage exit code. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("engramc: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    fputs(usage_text, stderr);
    return ENGRAM_EXIT_USAGE;
}

static Command parse_command(const char *s)
{
    if (strcmp(s, "build") == 0) return CMD_BUILD;
    if (strcmp(s, "run") == 0)   return CMD_RUN;
    if (strcmp(s, "check") == 0) return CMD_CHECK;
    if (strcmp(s, "fmt") == 0)   return CMD_FMT;
    return CMD_NONE;
}

/* "--name VALUE" or "--name=VALUE": returns the value (advancing *i), or NULL
 * if arg is not this option.  *missing is set when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Options with a value; returns 1 if argv[*i] was one, 0 if not, -1 on error. */
static int parse_valued(Options *o, int argc, char **argv, int *i)
{
    static const char *const names[] = {"-o", "--output", "--cpu", "--precision", "--stdlib"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        bool missing = false;
        const char *v = opt_value(argc, argv, i, names[k], &missing);
        if (missing)
            return usage_error("option '%s' needs a value", names[k]), -1;
        if (!v)
            continue;
        if (k <= 1)
            o->output = v;
        else if (k == 2)
            o->cpu = v;
        else if (k == 4)
            o->stdlib_dir = v;
        else if (strcmp(v, "float") == 0 || strcmp(v, "double") == 0)
            o->precision = v[0] == 'f' ? 4 : 8;
        else
            return usage_error("--precision must be 'float' or 'double', not '%s'", v), -1;
        return 1;
    }
    return 0;
}

/* Flags without a value; returns 1 if argv[i] was one, else 0. */
static int parse_flag(Options *o, const char *a)
{
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        o->help = true;
    else if (strcmp(a, "--version") == 0)
        o->version = true;
    else if (strcmp(a, "-c") == 0)
        o->object_only = true;
    else if (strcmp(a, "--mpi") == 0)
        o->mpi = true;
    else if (strcmp(a, "--emit-llvm") == 0)
        o->emit_llvm = true;
    else if (strcmp(a, "--dump-ir") == 0)
        o->dump_ir = true;
    else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
        o->verbose = true;
    else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && a[3] == '\0')
        o->opt_level = a[2] - '0';
    else
        return 0;
    return 1;
}

/* A positional argument: the command first, then the one input file. */
static int parse_positional(Options *o, const char *a)
{
    if (o->cmd == CMD_NONE) {
        o->cmd = parse_command(a);
        if (o->cmd == CMD_NONE)
            return usage_error("unknown command '%s'", a);
        return 0;
    }
    if (o->input)
        return usage_error("more than one input file ('%s' and '%s')", o->input, a);
    o->input = a;
    return 0;
}

/* Options that make no sense for the command are errors, not silently ignored. */
static int check_options(const Options *o)
{
    if (o->cmd == CMD_NONE)
        return usage_error("no command given");
    if (!o->input)
        return usage_error("no input file given");
    if (o->cmd != CMD_BUILD && (o->output || o->object_only || o->emit_llvm || o->mpi))
        return usage_error("-o, -c, --emit-llvm and --mpi only apply to 'build'");
    if (o->object_only && o->emit_llvm)
        return usage_error("-c and --emit-llvm cannot be combined");
    if (o->cmd != CMD_CHECK && o->dump_ir)
        return usage_error("--dump-ir only applies to 'check'");
    if (o->cmd != CMD_RUN && o->sim_argc > 0)
        return usage_error("arguments after '--' only apply to 'run'");
    if (o->cpu && (o->cmd == CMD_BUILD || o->cmd == CMD_RUN) && !cg_cpu_known(o->cpu))
        return usage_error("unknown CPU '%s', or one without 64-bit mode (try x86-64, x86-64-v2, x86-64-v3, x86-64-v4 "
                           "or native; `llc-19 -mcpu=help` lists them all)", o->cpu);
    return 0;
}

static int parse_options(Options *o, int argc, char **argv)
{
    *o = (Options){.opt_level = 3, .precision = 8};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            o->sim_argc = argc - i - 1;
            o->sim_argv = argv + i + 1;
            break;
        }
        int rc = parse_valued(o, argc, argv, &i);
        if (rc < 0)
            return ENGRAM_EXIT_USAGE;
        if (rc > 0 || parse_flag(o, a))
            continue;
        if (a[0] == '-' && a[1] != '\0')
            return usage_error("unknown option '%s'", a);
        if (parse_positional(o, a) != 0)
            return ENGRAM_EXIT_USAGE;
    }
    if (o->help || o->version)
        return 0;
    return check_options(o);
}

/* ---- paths and files ------------------------------------------------------------------ */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The folder holding the running engramc, or "." if /proc is unavailable. */
static void self_dir(char *out, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", out, n - 1);
    if (len <= 0) {
        snprintf(out, n, ".");
        return;
    }
    out[len] = '\0';
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
}

/* CMake may leave the install dirs empty (GNUInstallDirs not yet included
 * when engram_config.h is configured): fall back to the usual names. */
static const char *install_libdir(void)
{
    return ENGRAM_INSTALL_LIBDIR[0] ? ENGRAM_INSTALL_LIBDIR : "lib";
}

static const char *install_datadir(void)
{
    return ENGRAM_INSTALL_DATADIR[0] ? ENGRAM_INSTALL_DATADIR : "share";
}

/* snprintf whose truncation is checked: a path that does not fit becomes ""
 * (and then fails to open, with its own message), never a wrong path. */
static void path_printf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= n)
        out[0] = '\0';
}

/* Runtime libraries: build tree first, then the installed layout. */
static void find_libdir(char *out, size_t n)
{
    char dir[PATH_MAX], probe[PATH_MAX + 64];
    self_dir(dir, sizeof dir);
    path_printf(probe, sizeof probe, "%s/lib/libengram_rt.a", dir);
    if (is_file(probe))
        path_printf(out, n, "%s/lib", dir);
    else
        path_printf(out, n, "%s/../%s/engram", dir, install_libdir());
}

static void find_stdlib(char *out, size_t n)
{
    char dir[PATH_MAX], probe[PATH_MAX + 64];
    self_dir(dir, sizeof dir);
    path_printf(probe, sizeof probe, "%s/stdlib", dir);
    if (is_dir(probe))
        path_printf(out, n, "%s", probe);
    else
        path_printf(out, n, "%s/../%s/engram/stdlib", dir, install_datadir());
}

/* The input's name without folder and .engram: "sims/cuba.engram" -> "cuba". */
static void model_stem(const char *input, char *out, size_t n)
{
    const char *base = strrchr(input, '/');
    snprintf(out, n, "%s", base ? base + 1 : input);
    size_t len = strlen(out);
    if (len > 7 && strcmp(out + len - 7, ".engram") == 0)
        out[len - 7] = '\0';
}

/* Default output of build: the stem, plus .ll or .o for those outputs. */
static void default_output(const Options *o, char *out, size_t n)
{
    char stem[PATH_MAX];
    model_stem(o->input, stem, sizeof stem);
    snprintf(out, n, "%s%s", stem, o->emit_llvm ? ".ll" : o->object_only ? ".o" : "");
}

/* A temporary folder next to `dest` (same file system, so rename is atomic). */
static bool temp_dir_near(const char *dest, char *out, size_t n)
{
    const char *slash = strrchr(dest, '/');
    if (!slash)
        snprintf(out, n, ".engramc-XXXXXX");
    else if (slash == dest)     /* "/sim": the root folder */
        snprintf(out, n, "/.engramc-XXXXXX");
    else
        snprintf(out, n, "%.*s/.engramc-XXXXXX", (int)(slash - dest), dest);
    return mkdtemp(out) != NULL;
}

/* ---- phases ---------------------------------------------------------------------------------- */

typedef struct Driver {
    Options opt;
    DiagCtx diag;
    Arena arena;
    struct timespec t0, last;
} Driver;

static double seconds_between(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
}

/* With -v, prints how long the phase that just ended took. */
static void phase_done(Driver *dr, const char *phase)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (dr->opt.verbose)
        fprintf(stderr, "engramc: %-8s %8.1f ms\n", phase, 1e3 * seconds_between(dr->last, now));
    dr->last = now;
}

/* The input must be readable before anything else: that is an I/O error (3),
 * not a model error. */
static int phase_input(Driver *dr)
{
    FILE *fp = fopen(dr->opt.input, "rb");
    if (!fp || is_dir(dr->opt.input)) {
        fprintf(stderr, "engramc: error: cannot read '%s': %s\n", dr->opt.input,
                fp ? "is a directory" : strerror(errno));
        if (fp)
            fclose(fp);
        return ENGRAM_EXIT_IO;
    }
    fclose(fp);
    return 0;
}

static IrModel *phase_sema(Driver *dr)
{
    char stdlib[PATH_MAX];
    if (dr->opt.stdlib_dir)
        snprintf(stdlib, sizeof stdlib, "%s", dr->opt.stdlib_dir);
    else
        find_stdlib(stdlib, sizeof stdlib);
    SemaOptions so = {.stdlib_dir = stdlib, .precision = dr->opt.precision};
    IrModel *m = sema_compile_file(&dr->diag, &dr->arena, dr->opt.input, &so);
    phase_done(dr, "sema");
    return dr->diag.nerrors ? NULL : m;
}

static CgModule *phase_codegen(Driver *dr, const IrModel *m)
{
    CgOptions co = {.cpu = dr->opt.cpu, .opt_level = dr->opt.opt_level, .verify = true};
    CgModule *cm = cg_generate(&dr->diag, m, &co);
    phase_done(dr, "codegen");
    return cm;
}

/* Splits a configured flag string at spaces into argv[*n...]. */
static void split_flags(char *s, char **argv, int *n, int max)
{
    for (char *tok = strtok(s, " "); tok && *n < max; tok = strtok(NULL, " "))
        argv[(*n)++] = tok;
}

/* cc [link flags] obj rt_main rt [libs] [mpi libs] -o out, without a shell;
 * with mpi, rt is libengram_rt_mpi.a (the same object links against either). */
static int run_linker(const char *obj, const char *out, bool mpi)
{
    char libdir[PATH_MAX], rt_main[PATH_MAX + 32], rt[PATH_MAX + 32];
    char flags[] = ENGRAM_SIM_LINK_FLAGS, libs[] = ENGRAM_SIM_LIBS;
    char mpi_libs[] = ENGRAM_SIM_MPI_LIBS;
    if (mpi && !ENGRAM_HAVE_MPI) {
        fprintf(stderr, "engramc: error: --mpi: this engramc was built without MPI (configure "
                        "with -DENGRAM_MPI=ON where Open MPI is installed: libopenmpi-dev)\n");
        return ENGRAM_EXIT_USAGE;
    }
    find_libdir(libdir, sizeof libdir);
    snprintf(rt_main, sizeof rt_main, "%s/libengram_rt_main.a", libdir);
    snprintf(rt, sizeof rt, "%s/%s", libdir, mpi ? "libengram_rt_mpi.a" : "libengram_rt.a");
    if (!is_file(rt_main) || !is_file(rt)) {
        fprintf(stderr, "engramc: error: the runtime library is missing (looked for %s)\n", rt);
        return ENGRAM_EXIT_IO;
    }
    const char *cc = getenv("ENGRAM_CC");
    char *argv[128];
    int n = 0;
    argv[n++] = (char *)(cc && *cc ? cc : ENGRAM_C_COMPILER);
    split_flags(flags, argv, &n, 100);
    argv[n++] = (char *)obj;
    argv[n++] = rt_main;
    argv[n++] = rt;
    split_flags(libs, argv, &n, 110);
    if (mpi)
        split_flags(mpi_libs, argv, &n, 124);
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "engramc: error: cannot run the linker '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "engramc: error: linking the simulator failed (%s)\n", argv[0]);
        return ENGRAM_EXIT_IO;
    }
    return 0;
}

/* Writes the build output into a temporary folder next to it, then renames. */
static int phase_emit(Driver *dr, CgModule *cm)
{
    char out[PATH_MAX], tmp[PATH_MAX], obj[PATH_MAX + 16], result[PATH_MAX + 16];
    if (dr->opt.output)
        snprintf(out, sizeof out, "%s", dr->opt.output);
    else
        default_output(&dr->opt, out, sizeof out);
    if (!temp_dir_near(out, tmp, sizeof tmp)) {
        fprintf(stderr, "engramc: error: cannot write next to '%s': %s\n", out, strerror(errno));
        return ENGRAM_EXIT_IO;
    }
    snprintf(obj, sizeof obj, "%s/model.%s", tmp, dr->opt.emit_llvm ? "ll" : "o");
    snprintf(result, sizeof result, "%s/sim", tmp);
    int rc = dr->opt.emit_llvm ? cg_write_ir(&dr->diag, cm, obj) : cg_write_object(&dr->diag, cm, obj);
    rc = rc ? ENGRAM_EXIT_IO : 0;
    bool link = !dr->opt.emit_llvm && !dr->opt.object_only;
    if (rc == 0 && link)
        rc = run_linker(obj, result, dr->opt.mpi);
    phase_done(dr, link ? "link" : "emit");
    const char *final = link ? result : obj;
    if (rc == 0 && rename(final, out) != 0) {
        fprintf(stderr, "engramc: error: cannot write '%s': %s\n", out, strerror(errno));
        rc = ENGRAM_EXIT_IO;
    }
    unlink(obj);
    unlink(result);
    rmdir(tmp);
    return rc;
}

/* ---- commands ------------------------------------------------------------------------------------- */

static int cmd_fmt(Driver *dr)
{
    int file = diag_load_file(&dr->diag, dr->opt.input, NULL);
    AstFile *f = file >= 0 ? parse_file(&dr->diag, &dr->arena, file) : NULL;
    phase_done(dr, "parse");
    if (dr->diag.nerrors || !f)
        return ENGRAM_EXIT_MODEL;
    ast_print_file(stdout, f);
    return fflush(stdout) == 0 ? 0 : ENGRAM_EXIT_IO;
}

/* `run`: argv[0] of the simulator is the model's name, then the args after "--". */
static int cmd_run(Driver *dr, CgModule *cm)
{
    char name[PATH_MAX];
    model_stem(dr->opt.input, name, sizeof name);
    char **argv = calloc((size_t)dr->opt.sim_argc + 2, sizeof *argv);
    if (!argv) {
        cg_free(cm);
        return ENGRAM_EXIT_RESOURCE;
    }
    argv[0] = name;
    for (int i = 0; i < dr->opt.sim_argc; i++)
        argv[i + 1] = dr->opt.sim_argv[i];
    diag_flush(&dr->diag, stderr);   /* warnings before the simulator's output */
    int rc = cg_jit_run(&dr->diag, cm, dr->opt.sim_argc + 1, argv);
    free(argv);
    return rc;
}

/* The pipeline: each phase runs only if the ones before it reported no errors. */
static int driver_compile(Driver *dr)
{
    int rc = phase_input(dr);
    if (rc)
        return rc;
    if (dr->opt.cmd == CMD_FMT)
        return cmd_fmt(dr);
    IrModel *m = phase_sema(dr);
    if (!m)
        return ENGRAM_EXIT_MODEL;
    if (dr->opt.cmd == CMD_CHECK) {
        if (dr->opt.dump_ir)
            ir_dump(stdout, m);
        return 0;
    }
    CgModule *cm = phase_codegen(dr, m);
    if (!cm)
        return ENGRAM_EXIT_MODEL;
    if (dr->opt.cmd == CMD_RUN)
        return cmd_run(dr, cm);
    rc = phase_emit(dr, cm);
    cg_free(cm);
    return rc;
}

static void print_version(void)
{
    unsigned major = 0, minor = 0, patch = 0;
    LLVMGetVersion(&major, &minor, &patch);
    printf("engramc %s (LLVM %u.%u.%u)\n", ENGRAM_VERSION_STRING, major, minor, patch);
}

int driver_main(int argc, char **argv)
{
    Driver dr;
    memset(&dr, 0, sizeof dr);
    int rc = parse_options(&dr.opt, argc, argv);
    if (rc)
        return rc;
    if (dr.opt.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (dr.opt.version) {
        print_version();
        return 0;
    }
    diag_init(&dr.diag);
    dr.diag.color = isatty(STDERR_FILENO) && !getenv("NO_COLOR");
    arena_init(&dr.arena);
    clock_gettime(CLOCK_MONOTONIC, &dr.t0);
    dr.last = dr.t0;
    rc = driver_compile(&dr);
    diag_flush(&dr.diag, stderr);
    if (dr.opt.verbose) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        fprintf(stderr, "engramc: %-8s %8.1f ms\n", "total", 1e3 * seconds_between(dr.t0, now));
    }
    arena_free(&dr.arena);
    diag_free(&dr.diag);
    return rc;
}
