/*
 * test_resolve.c - resolve.c: imports (std.X from the stdlib folder, a.b
 * relative to the importing file), the module cache, the errors at `use`
 * lines (missing module with the path tried, missing name with a
 * suggestion, cycles listed in order, a `model` line in a module) and the
 * duplicate definitions of the model tables.
 *
 * Each test writes its files into a fresh temporary folder.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sema_internal.h"

/* ---- harness ------------------------------------------------------------- */

static char dir[256];
static DiagCtx D;
static Arena A;
static char *out;

static void init(void)
{
    snprintf(dir, sizeof dir, "/tmp/engram_resolve_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    diag_init(&D);
    arena_init(&A);
}

static void fini(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(out);
    out = NULL;
    arena_free(&A);
    diag_free(&D);
}

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    if (slash > path + strlen(dir)) {
        char cmd[600];
        *slash = '\0';
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
        cr_assert_eq(system(cmd), 0);
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Resolves (only) DIR/main.engram; the Sema stays for inspection. */
static Sema S;

static bool resolve_main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/main.engram", dir);
    SemaOptions opt = {"stdlib", 8};
    sema_init(&S, &D, &A, &opt);
    int file = diag_load_file(&D, path, NULL);
    cr_assert_geq(file, 0);
    bool ok = sema_resolve(&S, file);
    size_t len;
    FILE *mem = open_memstream(&out, &len);
    diag_flush(&D, mem);
    fclose(mem);
    return ok;
}

static IrModel *compile_main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/main.engram", dir);
    SemaOptions opt = {"stdlib", 8};
    IrModel *m = sema_compile_file(&D, &A, path, &opt);
    size_t len;
    FILE *mem = open_memstream(&out, &len);
    diag_flush(&D, mem);
    fclose(mem);
    return m;
}

static const char *after(const char *tag)
{
    static char buf[512];
    const char *p = out ? strstr(out, tag) : NULL;
    buf[0] = '\0';
    if (p) {
        p += strlen(tag);
        snprintf(buf, sizeof buf, "%.*s", (int)strcspn(p, "\n"), p);
    }
    return buf;
}

static int count(const char *tag)
{
    int n = 0;
    for (const char *p = out; p && (p = strstr(p, tag)); p++)
        n++;
    return n;
}

static const char *neuron_lib =
    "neuron Cell { state v = 0 mV\n dv/dt = -v / 10 ms\n input exc -> v }\n"
    "neuron Other { state v = 0 mV\n dv/dt = -v / 20 ms }\n";

TestSuite(resolve, .init = init, .fini = fini);

/* ---- imports ------------------------------------------------------------- */

Test(resolve, relative_module_path)
{
    put("lib/cells.engram", neuron_lib);
    put("main.engram", "model m\nuse lib.cells (Cell)\nregion r { population a = 3 Cell }\n");
    IrModel *m = compile_main();
    cr_assert_not_null(m, "%s", out);
    cr_assert_str_eq(m->pops[0].model, "Cell");
}

Test(resolve, std_module_from_stdlib_folder)
{
    put("main.engram", "model m\nuse std.neurons (LIF, Poisson)\n"
                       "region r { population a = 3 LIF\n population p = 2 Poisson(rate = 5 Hz) }\n"
                       "project r.p -> r.a { connect all_to_all weight 0.1 mV port exc }\n");
    IrModel *m = compile_main();
    cr_assert_not_null(m, "%s", out);
    cr_assert_eq(m->pops[1].kind, ENGRAM_POP_POISSON);
}

Test(resolve, module_parsed_once)
{
    put("lib/cells.engram", neuron_lib);
    put("lib/a.engram", "use cells (Cell)\n");   /* relative to lib/: the same file */
    put("lib/b.engram", "use cells (Cell)\n");
    put("main.engram", "model m\nuse lib.cells (Cell)\nuse lib.a (Cell)\nuse lib.b (Cell)\n");
    cr_assert(resolve_main(), "%s", out);
    cr_assert_eq(S.nmods, 4, "main, cells, a, b: %d", S.nmods);
    cr_assert_eq(S.main->nscope, 1, "re-exports of one neuron are one name");
}

Test(resolve, missing_module_names_the_path)
{
    put("main.engram", "model m\nuse lib.nope (Cell)\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "cannot find module 'lib.nope'");
    char want[400];
    snprintf(want, sizeof want, "looked for %s/lib/nope.engram", dir);
    cr_assert_str_eq(after("hint: "), want);
    cr_assert(strstr(out, "main.engram:2:5:"), "points at the module path:\n%s", out);
}

Test(resolve, missing_name_suggests)
{
    put("lib/cells.engram", neuron_lib);
    put("main.engram", "model m\nuse lib.cells (Cel, Other)\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "module 'lib.cells' has no neuron or rule 'Cel'");
    cr_assert_str_eq(after("hint: "), "did you mean 'Cell'?");
    cr_assert(strstr(out, "main.engram:2:16:"), "%s", out);
}

Test(resolve, import_cycle_lists_the_modules)
{
    put("lib/a.engram", "use b (X)\nneuron Y { state v = 0 mV }\n");
    put("lib/b.engram", "use c (Z)\nneuron X { state v = 0 mV }\n");
    put("lib/c.engram", "use a (Y)\nneuron Z { state v = 0 mV }\n");
    put("main.engram", "model m\nuse lib.a (Y)\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "import cycle: lib.a -> b -> c -> a");
    cr_assert_eq(count("error: "), 1, "%s", out);
}

Test(resolve, model_file_imported_back_is_a_cycle)
{
    put("lib.engram", "use main (N)\n");
    put("main.engram", "model m\nuse lib (N)\nneuron N { state v = 0 mV }\n");
    cr_assert_not(resolve_main());
    char want[400];
    snprintf(want, sizeof want, "import cycle: %s/main.engram -> lib -> main", dir);
    cr_assert_str_eq(after("error: "), want);
}

Test(resolve, module_with_model_line)
{
    put("lib.engram", "model lib\nneuron N { state v = 0 mV }\n");
    put("main.engram", "model m\nuse lib (N)\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "a module cannot have a `model` line");
}

Test(resolve, model_file_without_model_line)
{
    put("main.engram", "neuron N { state v = 0 mV }\n");
    cr_assert_not(resolve_main());
    char want[400];
    snprintf(want, sizeof want, "'%s/main.engram' is not a model: it has no `model` line", dir);
    cr_assert_str_eq(after("error: "), want);
}

Test(resolve, module_holds_only_neurons)
{
    put("lib.engram", "param g = 5\nneuron N { state v = 0 mV }\n");
    put("main.engram", "model m\nuse lib (N)\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "a module holds only neurons and plasticity rules; this `param` belongs in a model file");
}

Test(resolve, bare_std_is_not_a_module)
{
    put("main.engram", "model m\nuse std (LIF)\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "'std' is the standard library, not a module");
}

/* ---- duplicates ---------------------------------------------------------- */

Test(resolve, import_clashes_with_definition)
{
    put("lib/cells.engram", neuron_lib);
    put("main.engram", "model m\nuse lib.cells (Cell)\nneuron Cell { state v = 0 mV }\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "'Cell' is already imported from lib.cells");
    cr_assert_str_eq(after("note: "), "the first 'Cell' is here");
}

Test(resolve, duplicate_neuron_param_region_population)
{
    put("main.engram", "model m\nneuron N { }\nneuron N { }\nparam g = 1\nparam g = 2\n"
                       "region r { population a = 1 N\n population a = 2 N }\nregion r { }\n");
    cr_assert_not(resolve_main());
    cr_assert(strstr(out, "error: 'N' is already defined"), "%s", out);
    cr_assert(strstr(out, "error: param 'g' is defined twice"), "%s", out);
    cr_assert(strstr(out, "error: population 'a' is defined twice in region 'r'"), "%s", out);
    cr_assert(strstr(out, "error: region 'r' is defined twice"), "%s", out);
    cr_assert_eq(count("error: "), 4, "%s", out);
}

Test(resolve, unnamed_projections_between_one_pair)
{
    put("main.engram", "model m\nneuron N { }\nregion r { population a = 1 N\n population b = 1 N }\n"
                       "project r.a -> r.b { }\nproject r.a -> r.b { }\nproject x: r.a -> r.b { }\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "two unnamed projections are both called 'r.a->r.b': name them");
    cr_assert_str_eq(after("hint: "), "write `project NAME: r.a->r.b` to tell them apart");
    cr_assert_eq(count("error: "), 1, "%s", out);
}

Test(resolve, reserved_model_param_names)
{
    put("main.engram", "model m\nparam dt = 1 ms\nparam t = 2\n");
    cr_assert_not(resolve_main());
    cr_assert_str_eq(after("error: "), "'dt' is a simulation setting, not a param");
    cr_assert(strstr(out, "error: 't' is a built-in name (the time)"), "%s", out);
}

Test(resolve, tables_in_source_order)
{
    put("main.engram", "model m\nneuron N { }\nparam a = 1\nparam b = 2\n"
                       "region r { population x = 1 N\n population y = 1 N }\nregion q { population z = 1 N }\n"
                       "project r.x -> r.y { }\nproject named: q.z -> r.x { }\n"
                       "drive r.x poisson(rate = 1 Hz) weight 1 port p\n");
    cr_assert(resolve_main(), "%s", out);
    cr_assert_eq(S.nmparams, 2);
    cr_assert_str_eq(S.mparams[1].name, "b");
    cr_assert_eq(S.npops, 3);
    cr_assert_str_eq(S.pops[2].path, "q.z");
    cr_assert_str_eq(S.projs[0].name, "r.x->r.y");
    cr_assert_str_eq(S.projs[1].name, "named");
    cr_assert_str_eq(S.drives[0].name, "poisson->r.x");
}
