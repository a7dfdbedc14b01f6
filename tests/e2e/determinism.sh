#!/bin/bash
# End-to-end: a run is a function of model, overrides and seed.
#
#   same seed twice            -> byte-identical spikes.h5 (cmp), summary.json
#                                 equal outside "timing"
#   another seed               -> different spikes.h5 (and different spikes
#                                 in summary.json)
#   --threads 1 vs --threads 2 -> byte-identical spikes.h5, when the
#                                 simulator has a --threads option
#
# for examples/brunel.engram (random connectivity, Poisson drive, delays) at
# --set scale=0.2 (2500 neurons, C_E stays 1000, epsilon 0.5), and examples/coba.engram
# (random initial state, Euler) at --set scale=0.5 (2000 neurons).
#
# Run from the repository root:  bash tests/e2e/determinism.sh BUILD_DIR
# ENGRAM_TEST_SCALE (default 1) multiplies the simulated duration (300 ms).
# Needs: /usr/bin/python3.
set -euo pipefail
build=${1:?usage: determinism.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
PY=/usr/bin/python3
lib=tests/e2e/lib
ts=${ENGRAM_TEST_SCALE:-1}
dur_ms=$(awk -v s="$ts" 'BEGIN { d = int(300 * s + 0.5); if (d < 20) d = 20; print d }')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$lib/runs.sh"   # pass / fail, ok, bad, run
spikes_of() {
    $PY -c 'import json,sys; s=json.load(open(sys.argv[1])); print(" ".join(k + "=" + str(v["spikes"]) for k, v in s["populations"].items()))' "$1/summary.json"
}

for spec in "brunel scale=0.2" "coba scale=0.5"; do
    read -r model set <<<"$spec"
    echo "== $model (--set $set, ${dur_ms} ms)"
    sim="$tmp/$model"
    if ! "$engramc" build "examples/$model.engram" -o "$sim" >"$tmp/build.log" 2>&1; then
        cat "$tmp/build.log"; bad "build examples/$model.engram"; continue
    fi
    common=(--set "$set" --duration "${dur_ms}ms")
    run "${model}_a" "$sim" "${common[@]}" --seed 11 || continue
    run "${model}_b" "$sim" "${common[@]}" --seed 11 || continue
    run "${model}_c" "$sim" "${common[@]}" --seed 12 || continue
    echo "  seed 11: $(spikes_of "$tmp/${model}_a")"
    echo "  seed 11: $(spikes_of "$tmp/${model}_b")"
    echo "  seed 12: $(spikes_of "$tmp/${model}_c")"
    if cmp "$tmp/${model}_a/spikes.h5" "$tmp/${model}_b/spikes.h5"; then
        ok "$model: same seed twice, byte-identical spikes.h5"
    else
        bad "$model: same seed twice, spikes.h5 differ"
    fi
    if $PY $lib/same_summary.py "$tmp/${model}_a/summary.json" "$tmp/${model}_b/summary.json"; then
        ok "$model: same seed twice, same summary.json outside timing"
    else
        bad "$model: same seed twice, summary.json differ"
    fi
    if cmp -s "$tmp/${model}_a/spikes.h5" "$tmp/${model}_c/spikes.h5"; then
        bad "$model: seeds 11 and 12 give identical spikes.h5"
    else
        ok "$model: seeds 11 and 12 give different spikes.h5"
    fi
    if [ "$(spikes_of "$tmp/${model}_a")" != "$(spikes_of "$tmp/${model}_c")" ]; then
        ok "$model: seeds 11 and 12 give different spike counts"
    else
        bad "$model: seeds 11 and 12 give the same spike counts"
    fi
    if "$sim" --help 2>&1 | grep -q -- '--threads'; then
        run "${model}_t1" "$sim" "${common[@]}" --seed 11 --threads 1 &&
        run "${model}_t2" "$sim" "${common[@]}" --seed 11 --threads 2 &&
        if cmp "$tmp/${model}_t1/spikes.h5" "$tmp/${model}_t2/spikes.h5" &&
           cmp "$tmp/${model}_a/spikes.h5" "$tmp/${model}_t1/spikes.h5"; then
            ok "$model: --threads 1 and --threads 2 byte-identical"
        else
            bad "$model: --threads 1 and --threads 2 differ"
        fi
    else
        echo "  (no --threads option yet: thread check skipped)"
    fi
done

echo "determinism: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
