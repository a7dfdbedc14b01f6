/*
 * units.c - the unit table of docs/language.md section 2, and the helpers
 * that the compiler and the simulator share: exact lookup, "did you mean"
 * suggestions, names of dimensions for messages and outputs, and parsing of
 * quantities such as "20 ms" given on the command line.
 *
 * Internal units are ms, mV and pA, so nS, pF, Gohm (mV/pA), 1/ms and fC
 * (pA*ms) follow; every scale below converts a value in the named unit to
 * them.  All functions are pure and keep no state.
 *
 * Order: the table, lookup, suggestions, dimension names, quantity parsing.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram_units.h"

/* ---- the table ----------------------------------------------------------- */

#define DIM_TIME        {1, 0, 0}
#define DIM_VOLTAGE     {0, 1, 0}
#define DIM_CURRENT     {0, 0, 1}
#define DIM_CONDUCTANCE {0, -1, 1}  /* current / voltage */
#define DIM_CAPACITANCE {1, -1, 1}  /* charge / voltage */
#define DIM_RESISTANCE  {0, 1, -1}  /* voltage / current */
#define DIM_FREQUENCY   {-1, 0, 0}
#define DIM_CHARGE      {1, 0, 1}   /* current * time */

typedef struct UnitEntry {
    const char *name;
    double scale; /* value in this unit * scale = value in internal units */
    EngramDim dim;
} UnitEntry;

/* Grouped by quantity, each group's internal unit first after its larger
 * siblings; the order is also the tie-break for suggestions. */
static const UnitEntry unit_table[] = {
    {"s", 1e3, DIM_TIME},          {"ms", 1.0, DIM_TIME},       {"us", 1e-3, DIM_TIME},
    {"ns", 1e-6, DIM_TIME},        {"min", 6e4, DIM_TIME},      {"h", 3.6e6, DIM_TIME},
    {"V", 1e3, DIM_VOLTAGE},       {"mV", 1.0, DIM_VOLTAGE},    {"uV", 1e-3, DIM_VOLTAGE},
    {"A", 1e12, DIM_CURRENT},      {"mA", 1e9, DIM_CURRENT},    {"uA", 1e6, DIM_CURRENT},
    {"nA", 1e3, DIM_CURRENT},      {"pA", 1.0, DIM_CURRENT},    {"fA", 1e-3, DIM_CURRENT},
    {"S", 1e9, DIM_CONDUCTANCE},   {"mS", 1e6, DIM_CONDUCTANCE}, {"uS", 1e3, DIM_CONDUCTANCE},
    {"nS", 1.0, DIM_CONDUCTANCE},  {"pS", 1e-3, DIM_CONDUCTANCE},
    {"F", 1e12, DIM_CAPACITANCE},  {"mF", 1e9, DIM_CAPACITANCE}, {"uF", 1e6, DIM_CAPACITANCE},
    {"nF", 1e3, DIM_CAPACITANCE},  {"pF", 1.0, DIM_CAPACITANCE}, {"fF", 1e-3, DIM_CAPACITANCE},
    {"ohm", 1e-9, DIM_RESISTANCE}, {"kohm", 1e-6, DIM_RESISTANCE},
    {"Mohm", 1e-3, DIM_RESISTANCE}, {"Gohm", 1.0, DIM_RESISTANCE},
    {"Hz", 1e-3, DIM_FREQUENCY},   {"kHz", 1.0, DIM_FREQUENCY},
    {"C", 1e15, DIM_CHARGE},       {"nC", 1e6, DIM_CHARGE},     {"pC", 1e3, DIM_CHARGE},
    {"fC", 1.0, DIM_CHARGE},
};

#define UNIT_COUNT (sizeof unit_table / sizeof unit_table[0])

/* ---- lookup -------------------------------------------------------------- */

static const UnitEntry *unit_find(const char *name, size_t len)
{
    for (size_t i = 0; i < UNIT_COUNT; i++) {
        const char *u = unit_table[i].name;
        if (strlen(u) == len && memcmp(u, name, len) == 0)
            return &unit_table[i];
    }
    return NULL;
}

bool engram_unit_lookup(const char *name, size_t len, double *scale, EngramDim *dim)
{
    const UnitEntry *u = name ? unit_find(name, len) : NULL;
    if (!u)
        return false;
    if (scale)
        *scale = u->scale;
    if (dim)
        *dim = u->dim;
    return true;
}

/* ---- suggestions --------------------------------------------------------- */

/* Longest name we try to correct; anything longer is not a unit typo. */
#define SUGGEST_MAX_LEN 24

/* Spellings too far from a unit for the edit distance rule below. */
static const struct { const char *from, *to; } unit_aliases[] = {
    {"sec", "s"}, {"secs", "s"}, {"msecs", "ms"}, {"usecs", "us"}, {"hr", "h"}, {"hrs", "h"},
};

static int fold_char(char c, bool fold)
{
    unsigned char u = (unsigned char)c;
    return fold ? tolower(u) : u;
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps, so
 * "sm" is one edit from "ms"), optionally ignoring case.  lb must be at most
 * SUGGEST_MAX_LEN. */
static int edit_distance(const char *a, size_t la, const char *b, size_t lb, bool fold)
{
    int rows[3][SUGGEST_MAX_LEN + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int x = fold_char(a[i - 1], fold), y = fold_char(b[j - 1], fold);
            int best = prev[j - 1] + (x != y);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && x == fold_char(b[j - 2], fold) &&
                y == fold_char(a[i - 2], fold) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* Rewrites the Greek micro and omega signs ("µs", "MΩ") into the ASCII the
 * table uses.  Returns the new length, or 0 when it does not fit. */
static size_t ascii_fold(const char *name, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)name[i], d = i + 1 < len ? (unsigned char)name[i + 1] : 0;
        if ((c == 0xC2 && d == 0xB5) || (c == 0xCE && d == 0xBC))
            rep = "u"; /* MICRO SIGN, GREEK SMALL LETTER MU */
        else if (c == 0xCE && d == 0xA9)
            rep = "ohm"; /* GREEK CAPITAL LETTER OMEGA */
        size_t rl = rep ? strlen(rep) : 1;
        if (o + rl >= cap)
            return 0;
        memcpy(out + o, rep ? rep : &name[i], rl);
        o += rl;
        i += rep ? 1 : 0;
    }
    return o;
}

/* Lexicographic order on suggestion keys. */
static bool key_less(const int a[3], const int b[3])
{
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] < b[i];
    return false;
}

/* The closest unit by case-insensitive distance, ties broken by the
 * case-sensitive distance ("msec" -> "ms" rather than "mS"), then by the
 * difference in length ("sm" -> "ms" rather than "s").  A suggestion
 * may cost at most 2 edits and at most half the name, so model names such
 * as "LIF" are not mistaken for typos of "min". */
static const char *closest_unit(const char *name, size_t len)
{
    const char *best = NULL;
    int best_key[3] = {3, 0, 0};
    for (size_t i = 0; i < UNIT_COUNT; i++) {
        const char *u = unit_table[i].name;
        size_t ul = strlen(u);
        int key[3] = {edit_distance(name, len, u, ul, true), 0, abs((int)ul - (int)len)};
        if (key[0] > best_key[0] || key[0] > (int)len / 2)
            continue;
        key[1] = edit_distance(name, len, u, ul, false);
        if (best && !key_less(key, best_key))
            continue;
        best = u;
        memcpy(best_key, key, sizeof key);
    }
    return best;
}

const char *engram_unit_suggest(const char *name, size_t len)
{
    char folded[SUGGEST_MAX_LEN + 1];
    if (!name || len == 0 || len > SUGGEST_MAX_LEN || unit_find(name, len))
        return NULL;
    size_t flen = ascii_fold(name, len, folded, sizeof folded);
    if (flen == 0 || flen > SUGGEST_MAX_LEN)
        return NULL;
    const UnitEntry *u = unit_find(folded, flen);
    if (u)
        return u->name;
    for (size_t i = 0; i < sizeof unit_aliases / sizeof unit_aliases[0]; i++)
        if (strlen(unit_aliases[i].from) == flen && memcmp(unit_aliases[i].from, folded, flen) == 0)
            return unit_aliases[i].to;
    return closest_unit(folded, flen);
}

/* ---- dimension names ----------------------------------------------------- */

/* The units a dimension is spelled in, preferred first. */
static const struct { const char *name; EngramDim dim; } named_dims[] = {
    {"ms", DIM_TIME},         {"mV", DIM_VOLTAGE},      {"pA", DIM_CURRENT},
    {"nS", DIM_CONDUCTANCE},  {"pF", DIM_CAPACITANCE},  {"Gohm", DIM_RESISTANCE},
    {"fC", DIM_CHARGE},
};

#define NAMED_COUNT ((int)(sizeof named_dims / sizeof named_dims[0]))
#define MAX_POWER 4 /* beyond this, base units read as well as anything */

/* A dimension written as a product of named units with exponents. */
typedef struct DimSpelling {
    int unit[3];
    int exp[3];
    int count;
} DimSpelling;

static EngramDim dim_axpy(int a, EngramDim x, int b, EngramDim y)
{
    return engram_dim(a * x.time + b * y.time, a * x.voltage + b * y.voltage,
                      a * x.current + b * y.current);
}

/* The spelling with the fewest factors, then the smallest total exponent,
 * then the fewest negative powers; earlier units win ties, so "mV/ms" beats "pA/pF".  Falls back to ms, mV
 * and pA, which can spell anything. */
static DimSpelling dim_spell(EngramDim d)
{
    DimSpelling best = {{0, 1, 2}, {d.time, d.voltage, d.current}, 3};
    int best_cost = 100000;
    for (int i = 0; i < NAMED_COUNT; i++) {
        for (int j = i; j < NAMED_COUNT; j++) {
            for (int a = -MAX_POWER; a <= MAX_POWER; a++) {
                for (int b = -MAX_POWER; b <= MAX_POWER; b++) {
                    if (a == 0 || (j == i) != (b == 0))
                        continue;
                    EngramDim got = dim_axpy(a, named_dims[i].dim, b, named_dims[j].dim);
                    /* a negative power costs a little more: "Gohm", not "1/nS" */
                    int cost = 2 * (abs(a) + abs(b)) + (a < 0) + (b < 0) + (b != 0 ? 1000 : 0);
                    if (!engram_dim_eq(got, d) || cost >= best_cost)
                        continue;
                    best = (DimSpelling){{i, j, 0}, {a, b, 0}, b != 0 ? 2 : 1};
                    best_cost = cost;
                }
            }
        }
    }
    return best;
}

/* Appends one "name" or "name^k" factor of absolute exponent k. */
static size_t put_factor(char *buf, size_t n, size_t at, const char *sep, const char *name, int k)
{
    if (at >= n)
        return at;
    int w = k > 1 ? snprintf(buf + at, n - at, "%s%s^%d", sep, name, k)
                  : snprintf(buf + at, n - at, "%s%s", sep, name);
    return w < 0 ? at : at + (size_t)w;
}

/* numerator[/denominator], "1" for an empty numerator, parentheses around a
 * denominator of several factors. */
static void spelling_format(const DimSpelling *s, char *buf, size_t n)
{
    const char *num[3], *den[3];
    int nexp[3], dexp[3], nn = 0, nd = 0;
    for (int i = 0; i < s->count; i++) {
        if (s->exp[i] > 0) {
            num[nn] = named_dims[s->unit[i]].name;
            nexp[nn++] = s->exp[i];
        } else if (s->exp[i] < 0) {
            den[nd] = named_dims[s->unit[i]].name;
            dexp[nd++] = -s->exp[i];
        }
    }
    size_t at = 0;
    buf[0] = '\0';
    at = nn == 0 ? put_factor(buf, n, at, "", "1", 1) : at;
    for (int i = 0; i < nn; i++)
        at = put_factor(buf, n, at, i ? "*" : "", num[i], nexp[i]);
    at = nd > 0 ? put_factor(buf, n, at, nd > 1 ? "/(" : "/", "", 1) : at;
    for (int i = 0; i < nd; i++)
        at = put_factor(buf, n, at, i ? "*" : "", den[i], dexp[i]);
    if (nd > 1)
        put_factor(buf, n, at, "", ")", 1);
}

static const char *dim_format(EngramDim d, char *buf, size_t n, bool hz)
{
    if (!buf || n == 0)
        return "";
    if (engram_dim_is_none(d)) {
        snprintf(buf, n, "1");
        return buf;
    }
    if (hz && engram_dim_eq(d, (EngramDim)DIM_FREQUENCY)) {
        snprintf(buf, n, "Hz");
        return buf;
    }
    DimSpelling s = dim_spell(d);
    spelling_format(&s, buf, n);
    return buf;
}

const char *engram_dim_name(EngramDim d, char *buf, size_t n)
{
    return dim_format(d, buf, n, true);
}

const char *engram_dim_unit(EngramDim d, char *buf, size_t n)
{
    return dim_format(d, buf, n, false);
}

/* ---- quantities ---------------------------------------------------------- */

/* Length of a decimal number at s: [+-] digits [. digits] [(e|E) [+-] digits],
 * at least one digit in the mantissa; 0 if there is none.  Written out
 * rather than left to strtod so "inf", "nan" and hex floats are refused. */
static size_t scan_number(const char *s)
{
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0, digits = 0;
    for (; isdigit((unsigned char)s[i]); i++)
        digits++;
    if (s[i] == '.')
        for (i++; isdigit((unsigned char)s[i]); i++)
            digits++;
    if (digits == 0)
        return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1 + (s[i + 1] == '+' || s[i + 1] == '-');
        if (isdigit((unsigned char)s[j])) {
            while (isdigit((unsigned char)s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

static bool parse_fail(const char **err, const char *msg)
{
    if (err)
        *err = msg;
    return false;
}

bool engram_parse_quantity(const char *text, double *value, EngramDim *dim,
                           bool *has_unit, const char **err)
{
    if (!text)
        return parse_fail(err, "empty value");
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return parse_fail(err, "empty value");
    size_t nlen = scan_number(p);
    if (nlen == 0)
        return parse_fail(err, "expected a number");
    char *end;
    double v = strtod(p, &end);
    if (end != p + nlen) /* strtod read more (hex, locale): not our syntax */
        return parse_fail(err, "expected a number");
    p += nlen;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *unit = p; /* the unit runs to the next space: "20 µs" is one bad unit */
    while (*p && !isspace((unsigned char)*p))
        p++;
    size_t ulen = (size_t)(p - unit);
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '\0')
        return parse_fail(err, "unexpected text after the unit");
    double scale = 1.0;
    EngramDim d = engram_dim(0, 0, 0);
    if (ulen && !engram_unit_lookup(unit, ulen, &scale, &d))
        return parse_fail(err, "unknown unit");
    if (!isfinite(v * scale))
        return parse_fail(err, "value out of range");
    *value = v * scale;
    *dim = d;
    if (has_unit)
        *has_unit = ulen > 0;
    return true;
}
