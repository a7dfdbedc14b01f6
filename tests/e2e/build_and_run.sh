#!/bin/bash
# End-to-end: the two ways to run a model give the same, well-formed outputs.
#
#   1. engramc build examples/cuba.engram -o SIM; SIM --out D --seed 7 --duration 1s
#   2. engramc run examples/cuba.engram -- (same flags)   (ORC JIT, in memory)
#   3. engramc run examples/coba.engram -- --duration ... --out D2 (default seed)
#   4. SIM --dry-run and --set overrides (scale, a weight) are honoured
#
# Checked for every run (tests/e2e/lib/check_outputs.py): spikes.h5 exists and
# has the SONATA layout (h5ls/h5dump), its spikes match summary.json, and
# every summary.json field of docs/outputs.md is there with the values the run
# fixes.  Between 1 and 2: spikes.h5 byte for byte (cmp) and summary.json
# outside "timing" must be identical.
#
# Run from the repository root:  bash tests/e2e/build_and_run.sh BUILD_DIR
# ENGRAM_TEST_SCALE (default 1) multiplies the simulated durations (the
# sanitizer build uses a smaller value); 1 s at scale 1.
# Needs: h5ls/h5dump (hdf5-tools), /usr/bin/python3 with numpy.
set -euo pipefail
build=${1:?usage: build_and_run.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
PY=/usr/bin/python3
for tool in h5ls h5dump "$PY"; do
    command -v "$tool" >/dev/null ||
        { echo "FAIL: $tool not found (Debian: apt-get install hdf5-tools python3-numpy)"; exit 1; }
done
"$PY" -c "import numpy" 2>/dev/null || { echo "FAIL: $PY cannot import numpy (apt-get install python3-numpy)"; exit 1; }
lib=tests/e2e/lib
ts=${ENGRAM_TEST_SCALE:-1}
dur_ms=$(awk -v s="$ts" 'BEGIN { d = int(1000 * s + 0.5); if (d < 20) d = 20; print d }')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
# step NAME CMD...: runs CMD, output to $tmp/NAME.log, shown on failure
step() {
    local name=$1; shift
    echo "+ $*"
    local rc=0
    "$@" >"$tmp/$name.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$tmp/$name.log"
        bad "$name: exit status $rc"
        return 1
    fi
    sed 's/^/    /' "$tmp/$name.log"
    ok "$name"
}

echo "== build and run examples/cuba.engram (duration ${dur_ms} ms, ENGRAM_TEST_SCALE=$ts)"
cuba_pops=net.exc=3200,net.inh=800
cuba_projs='net.exc->net.exc,net.exc->net.inh,net.inh->net.exc,net.inh->net.inh'
if step build "$engramc" build examples/cuba.engram -o "$tmp/cuba"; then
    [ -x "$tmp/cuba" ] && ok "build wrote an executable $tmp/cuba" || bad "no executable"
    if step sim "$tmp/cuba" --out "$tmp/built" --seed 7 --duration "${dur_ms}ms"; then
        echo "+ h5ls -r spikes.h5"
        h5ls -r "$tmp/built/spikes.h5" | sed 's/^/    /'
        if h5ls "$tmp/built/spikes.h5/spikes/net.exc/timestamps" >/dev/null 2>&1 &&
           h5ls "$tmp/built/spikes.h5/spikes/net.inh/node_ids" >/dev/null 2>&1; then
            ok "spikes.h5 has /spikes/net.exc/timestamps and /spikes/net.inh/node_ids"
        else
            bad "spikes.h5 lacks the SONATA datasets"
        fi
        if $PY $lib/check_outputs.py "$tmp/built" --model-file examples/cuba.engram \
                --name cuba --seed 7 --duration-ms "$dur_ms" --pops "$cuba_pops" \
                --projections "$cuba_projs" --set scale=1 --set we=1.62 --set wi=-9; then
            ok "outputs of the built simulator"
        else
            bad "outputs of the built simulator"
        fi
    fi
    # --dry-run: counts only, no output folder
    if step dryrun "$tmp/cuba" --dry-run --set scale=0.5 --out "$tmp/dry"; then
        grep -q 'net.exc' "$tmp/dryrun.log" && grep -q '1600' "$tmp/dryrun.log" &&
            ok "--dry-run --set scale=0.5 lists net.exc with 1600 neurons" ||
            bad "--dry-run output lacks net.exc / 1600"
        [ ! -e "$tmp/dry/spikes.h5" ] && ok "--dry-run wrote no spikes.h5" ||
            bad "--dry-run wrote spikes.h5"
    fi
    # overrides: a smaller network and a weight, both visible in summary.json
    if step sim_set "$tmp/cuba" --out "$tmp/set" --seed 3 --duration "${dur_ms}ms" \
            --set scale=0.25 --set we=2mV; then
        if $PY $lib/check_outputs.py "$tmp/set" --model-file examples/cuba.engram \
                --name cuba --seed 3 --duration-ms "$dur_ms" --pops net.exc=800,net.inh=200 \
                --projections "$cuba_projs" --set scale=0.25 --set we=2 \
                --set 'net.exc->net.exc.p=0.08'; then
            ok "--set scale=0.25 --set we=2mV honoured"
        else
            bad "--set scale=0.25 --set we=2mV"
        fi
    fi
fi

echo "== engramc run examples/cuba.engram (JIT), same flags"
if step jit "$engramc" run examples/cuba.engram -- --out "$tmp/jit" --seed 7 \
        --duration "${dur_ms}ms"; then
    if [ -f "$tmp/built/spikes.h5" ] && cmp "$tmp/built/spikes.h5" "$tmp/jit/spikes.h5"; then
        ok "build and run give byte-identical spikes.h5 ($(stat -c %s "$tmp/jit/spikes.h5") bytes)"
    else
        bad "build and run spikes.h5 differ"
    fi
    if [ -f "$tmp/built/summary.json" ] &&
       $PY $lib/same_summary.py "$tmp/built/summary.json" "$tmp/jit/summary.json"; then
        ok "build and run give the same summary.json outside timing"
    else
        bad "build and run summary.json differ"
    fi
fi

echo "== engramc run examples/coba.engram (JIT, default seed)"
if step jit_coba "$engramc" run examples/coba.engram -- --duration "${dur_ms}ms" \
        --out "$tmp/coba"; then
    if $PY $lib/check_outputs.py "$tmp/coba" --model-file examples/coba.engram \
            --name coba --seed 1 --duration-ms "$dur_ms" --pops "$cuba_pops" \
            --projections "$cuba_projs" --set we=6 --set wi=67 \
            --set net.exc.g_L=10 --set net.exc.tau_m=20; then
        ok "outputs of engramc run coba"
    else
        bad "outputs of engramc run coba"
    fi
    n=$($PY -c 'import json,sys; print(sum(p["spikes"] for p in json.load(open(sys.argv[1]))["populations"].values()))' \
        "$tmp/coba/summary.json")
    [ "$n" -gt 0 ] && ok "coba spiked ($n spikes)" || bad "coba has no spikes"
fi

echo "build_and_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
