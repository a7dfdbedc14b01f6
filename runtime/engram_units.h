/*
 * engram_units.h - physical units shared by the compiler and the simulator.
 *
 * A dimension is a vector of integer exponents over three base dimensions:
 * time, voltage and current.  Values are stored in one internal unit system:
 * ms, mV, pA (hence nS, pF, Gohm, 1/ms, fC); see docs/language.md section 2.
 * The compiler checks model expressions with it; the simulator checks
 * `--set NAME=VALUE` with it.  Pure functions, no allocation.
 */
#ifndef ENGRAM_UNITS_H
#define ENGRAM_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct EngramDim {
    int8_t time, voltage, current;
} EngramDim;

static inline EngramDim engram_dim(int t, int v, int c) {
    EngramDim d = {(int8_t)t, (int8_t)v, (int8_t)c};
    return d;
}
static inline bool engram_dim_eq(EngramDim a, EngramDim b) {
    return a.time == b.time && a.voltage == b.voltage && a.current == b.current;
}
static inline bool engram_dim_is_none(EngramDim a) {
    return a.time == 0 && a.voltage == 0 && a.current == 0;
}
static inline EngramDim engram_dim_mul(EngramDim a, EngramDim b) {
    return engram_dim(a.time + b.time, a.voltage + b.voltage, a.current + b.current);
}
static inline EngramDim engram_dim_div(EngramDim a, EngramDim b) {
    return engram_dim(a.time - b.time, a.voltage - b.voltage, a.current - b.current);
}
static inline EngramDim engram_dim_pow(EngramDim a, int n) {
    return engram_dim(a.time * n, a.voltage * n, a.current * n);
}

/* Looks up a unit name exactly as written ("ms", "nS", "Hz").  On success sets
 * *scale (multiply a value in that unit by it to get internal units) and *dim. */
bool engram_unit_lookup(const char *name, size_t len, double *scale, EngramDim *dim);

/* The nearest known unit name for a near miss ("msec" -> "ms", "mv" -> "mV"),
 * or NULL when nothing is close. */
const char *engram_unit_suggest(const char *name, size_t len);

/* Human name of a dimension for messages: "ms", "mV", "pA", "nS", "pF", "Hz",
 * "mV/ms", "1" (dimensionless), or a product like "mV^2/ms". Writes into buf. */
const char *engram_dim_name(EngramDim d, char *buf, size_t n);

/* The internal unit of a dimension, for outputs ("ms", "mV", "nS", "1/ms"...,
 * "1" for none).  Same conventions as engram_dim_name but never "Hz". */
const char *engram_dim_unit(EngramDim d, char *buf, size_t n);

/* Parses "20ms", "20 ms", "-0.5 nS", "3", "1e-3 s".  Returns false on syntax
 * errors or unknown units (then *err points at a static message). */
bool engram_parse_quantity(const char *text, double *value, EngramDim *dim,
                           bool *has_unit, const char **err);

#endif
