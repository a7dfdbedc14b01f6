/*
 * test_units.c - the unit table (docs/language.md section 2): exact lookup,
 * consistency of the internal system, suggestions for near misses, names of
 * dimensions, and parsing of command-line quantities.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "engram_units.h"

static EngramDim look(const char *name, double *scale)
{
    EngramDim d = engram_dim(9, 9, 9);
    cr_assert(engram_unit_lookup(name, strlen(name), scale, &d), "unit %s not found", name);
    return d;
}

static double scale_of(const char *name)
{
    double s = 0.0;
    look(name, &s);
    return s;
}

static void assert_dim(EngramDim d, int t, int v, int c)
{
    cr_assert(engram_dim_eq(d, engram_dim(t, v, c)), "dim (%d,%d,%d), want (%d,%d,%d)",
              d.time, d.voltage, d.current, t, v, c);
}

static void assert_close(double got, double want)
{
    cr_assert(fabs(got - want) <= 1e-12 * fabs(want), "got %.17g, want %.17g", got, want);
}

Test(units, lookup_internal_units_scale_one)
{
    const char *internal[] = {"ms", "mV", "pA", "nS", "pF", "Gohm", "kHz", "fC"};
    for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++)
        cr_assert_eq(scale_of(internal[i]), 1.0, "%s", internal[i]);
}

Test(units, lookup_scales_and_dims)
{
    double s;
    assert_dim(look("s", &s), 1, 0, 0);
    assert_close(s, 1000.0);
    assert_dim(look("min", &s), 1, 0, 0);
    assert_close(s, 60000.0);
    assert_dim(look("uV", &s), 0, 1, 0);
    assert_close(s, 1e-3);
    assert_dim(look("nA", &s), 0, 0, 1);
    assert_close(s, 1e3);
    assert_dim(look("uS", &s), 0, -1, 1);
    assert_close(s, 1e3);
    assert_dim(look("nF", &s), 1, -1, 1);
    assert_close(s, 1e3);
    assert_dim(look("Mohm", &s), 0, 1, -1);
    assert_close(s, 1e-3);
    assert_dim(look("Hz", &s), -1, 0, 0);
    assert_close(s, 1e-3);
    assert_dim(look("pC", &s), 1, 0, 1);
    assert_close(s, 1e3);
}

Test(units, lookup_is_exact_and_case_sensitive)
{
    double s;
    EngramDim d;
    assert_dim(look("ns", &s), 1, 0, 0); /* nanosecond */
    assert_close(s, 1e-6);
    assert_dim(look("nS", &s), 0, -1, 1); /* nanosiemens */
    assert_close(s, 1.0);
    cr_assert_not(engram_unit_lookup("NS", 2, &s, &d));
    cr_assert_not(engram_unit_lookup("msec", 4, &s, &d));
    cr_assert_not(engram_unit_lookup("", 0, &s, &d));
    cr_assert(engram_unit_lookup("msx", 2, &s, &d), "length limits the name");
    cr_assert_not(engram_unit_lookup("m", 1, &s, &d));
}

/* nS*mV = pA, pA/pF = mV/ms, pF/nS = ms, mV/Gohm = pA, pA*ms = fC, and the
 * SI versions: 1 S * 1 V = 1 A and so on. */
Test(units, internal_system_is_consistent)
{
    assert_close(scale_of("S") * scale_of("V"), scale_of("A"));
    assert_close(scale_of("A") / scale_of("F"), scale_of("V") / scale_of("s"));
    assert_close(scale_of("F") / scale_of("S"), scale_of("s"));
    assert_close(scale_of("V") / scale_of("ohm"), scale_of("A"));
    assert_close(scale_of("A") * scale_of("s"), scale_of("C"));
    assert_close(scale_of("Hz") * scale_of("s"), 1.0);
    assert_close(scale_of("kHz") * scale_of("ms"), 1.0);
    EngramDim g = look("nS", NULL), v = look("mV", NULL), c = look("pF", NULL);
    cr_assert(engram_dim_eq(engram_dim_mul(g, v), look("pA", NULL)));
    cr_assert(engram_dim_eq(engram_dim_div(c, g), look("ms", NULL)));
}

static void assert_suggest(const char *typo, const char *want)
{
    const char *got = engram_unit_suggest(typo, strlen(typo));
    if (!want)
        cr_assert_null(got, "'%s' -> '%s', want none", typo, got);
    else
        cr_assert(got && strcmp(got, want) == 0, "'%s' -> '%s', want '%s'", typo,
                  got ? got : "(none)", want);
}

Test(units, suggest_near_misses)
{
    assert_suggest("msec", "ms");
    assert_suggest("mv", "mV");
    assert_suggest("hz", "Hz");
    assert_suggest("HZ", "Hz");
    assert_suggest("ns", NULL); /* a unit already */
    assert_suggest("NS", "nS");
    assert_suggest("sm", "ms");  /* swapped letters */
    assert_suggest("mss", "ms");
    assert_suggest("khz", "kHz");
    assert_suggest("GOhm", "Gohm");
    assert_suggest("Ohm", "ohm");
    assert_suggest("sec", "s");
    assert_suggest("hr", "h");
    assert_suggest("\xc2\xb5s", "us");       /* micro sign */
    assert_suggest("\xce\xbc" "A", "uA");    /* Greek mu */
    assert_suggest("M\xce\xa9", "Mohm");     /* omega */
}

Test(units, suggest_leaves_model_names_alone)
{
    assert_suggest("LIF", NULL);
    assert_suggest("exc", NULL);
    assert_suggest("x", NULL);
    assert_suggest("Poisson", NULL);
    assert_suggest("", NULL);
    assert_suggest("abcdefghijklmnopqrstuvwxyzabcdefghijklmnop", NULL);
}

static void assert_name(EngramDim d, const char *name, const char *unit)
{
    char buf[64];
    const char *got = engram_dim_name(d, buf, sizeof buf);
    cr_assert_str_eq(got, name, "dim (%d,%d,%d)", d.time, d.voltage, d.current);
    got = engram_dim_unit(d, buf, sizeof buf);
    cr_assert_str_eq(got, unit, "dim (%d,%d,%d)", d.time, d.voltage, d.current);
}

Test(units, dim_names_natural)
{
    assert_name(engram_dim(0, 0, 0), "1", "1");
    assert_name(engram_dim(1, 0, 0), "ms", "ms");
    assert_name(engram_dim(0, 1, 0), "mV", "mV");
    assert_name(engram_dim(0, 0, 1), "pA", "pA");
    assert_name(engram_dim(0, -1, 1), "nS", "nS");
    assert_name(engram_dim(1, -1, 1), "pF", "pF");
    assert_name(engram_dim(0, 1, -1), "Gohm", "Gohm");
    assert_name(engram_dim(1, 0, 1), "fC", "fC");
    assert_name(engram_dim(-1, 0, 0), "Hz", "1/ms");
}

Test(units, dim_names_products)
{
    assert_name(engram_dim(-1, 1, 0), "mV/ms", "mV/ms");
    assert_name(engram_dim(-1, 2, 0), "mV^2/ms", "mV^2/ms");
    assert_name(engram_dim(-2, 0, 0), "1/ms^2", "1/ms^2");
    assert_name(engram_dim(2, 0, 0), "ms^2", "ms^2");
    assert_name(engram_dim(0, -2, 2), "nS^2", "nS^2");
    assert_name(engram_dim(-1, -1, 1), "nS/ms", "nS/ms");
    assert_name(engram_dim(-1, 0, 1), "pA/ms", "pA/ms");
    assert_name(engram_dim(1, 1, 0), "ms*mV", "ms*mV");
    assert_name(engram_dim(0, -1, 0), "1/mV", "1/mV");
    assert_name(engram_dim(0, 1, 1), "mV*pA", "mV*pA");
    assert_name(engram_dim(-1, -1, -1), "1/(mV*fC)", "1/(mV*fC)");
    assert_name(engram_dim(-1, -2, -1), "1/(mV^2*fC)", "1/(mV^2*fC)");
    assert_name(engram_dim(7, 1, 0), "ms^7*mV", "ms^7*mV");
}

Test(units, dim_name_truncates_safely)
{
    char buf[4];
    memset(buf, 'x', sizeof buf);
    engram_dim_name(engram_dim(-1, -1, -1), buf, sizeof buf);
    cr_assert_str_eq(buf, "1/(");
    cr_assert_str_eq(engram_dim_name(engram_dim(1, 0, 0), NULL, 0), "");
}

static void assert_parse(const char *text, double value, EngramDim dim, bool unit)
{
    double v = NAN;
    EngramDim d = engram_dim(9, 9, 9);
    bool has = !unit;
    const char *err = NULL;
    cr_assert(engram_parse_quantity(text, &v, &d, &has, &err), "'%s': %s", text, err);
    assert_close(v, value);
    cr_assert(engram_dim_eq(d, dim), "'%s': wrong dimension", text);
    cr_assert_eq(has, unit, "'%s'", text);
}

static void assert_reject(const char *text, const char *want)
{
    double v = 0.0;
    EngramDim d;
    bool has;
    const char *err = NULL;
    cr_assert_not(engram_parse_quantity(text, &v, &d, &has, &err), "'%s' accepted", text);
    cr_assert(err && strcmp(err, want) == 0, "'%s': '%s', want '%s'", text, err, want);
}

Test(units, parse_quantities)
{
    assert_parse("20ms", 20.0, engram_dim(1, 0, 0), true);
    assert_parse("20 ms", 20.0, engram_dim(1, 0, 0), true);
    assert_parse("-0.5 nS", -0.5, engram_dim(0, -1, 1), true);
    assert_parse("3", 3.0, engram_dim(0, 0, 0), false);
    assert_parse("1e-3 s", 1.0, engram_dim(1, 0, 0), true);
    assert_parse("10 Hz", 0.01, engram_dim(-1, 0, 0), true);
    assert_parse("  +2.5E+2 mV \n", 250.0, engram_dim(0, 1, 0), true);
    assert_parse(".5 V", 500.0, engram_dim(0, 1, 0), true);
    assert_parse("-70mV", -70.0, engram_dim(0, 1, 0), true);
    assert_parse("1 Gohm", 1.0, engram_dim(0, 1, -1), true);
}

Test(units, parse_rejects)
{
    assert_reject("", "empty value");
    assert_reject("   ", "empty value");
    assert_reject(NULL, "empty value");
    assert_reject("nan", "expected a number");
    assert_reject("inf", "expected a number");
    assert_reject("-inf", "expected a number");
    assert_reject("ms", "expected a number");
    assert_reject("--3", "expected a number");
    assert_reject("0x10", "expected a number");
    assert_reject("20 msec", "unknown unit");
    assert_reject("20 ms junk", "unexpected text after the unit");
    assert_reject("20ms,", "unknown unit");
    assert_reject("3 4", "unknown unit");
    assert_reject("1e400", "value out of range");
    assert_reject("1e306 h", "value out of range");
}
