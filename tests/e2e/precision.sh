#!/bin/bash
# Float and double kernels agree statistically: the same model built with
# --precision float and --precision double gives population rates whose
# medians over three seeds differ by less than 5% (CUBA, COBA, Brunel at
# half size), and float runs are deterministic too.
# Run from the repository root with $1 = build dir.
set -euo pipefail
build=${1:?usage: precision.sh BUILD_DIR}
engramc="$build/engramc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
duration=1s
case "${ENGRAM_TEST_SCALE:-1}" in 1|1.0) ;; *) duration=300ms ;; esac

fail=0
for model in cuba coba brunel; do
    extra=()
    [ "$model" = brunel ] && extra=(--set scale=0.5)   # 6250 neurons, asynchronous irregular
    for precision in double float; do
        "$engramc" build --precision "$precision" -o "$tmp/$model-$precision" "examples/$model.engram"
        for seed in 1 2 3; do
            "$tmp/$model-$precision" --quiet --seed "$seed" --duration "$duration" "${extra[@]}" \
                --out "$tmp/$model-$precision-$seed"
        done
    done
    /usr/bin/python3 - "$tmp" "$model" <<'PY' || fail=1
import json, statistics, sys
tmp, model = sys.argv[1], sys.argv[2]
def rate(p, s):
    d = json.load(open(f"{tmp}/{model}-{p}-{s}/summary.json"))
    pops = d["populations"].values()
    return sum(v["spikes"] for v in pops) / sum(v["size"] for v in pops) / (d["duration_ms"] / 1000)
med = {p: statistics.median(rate(p, s) for s in (1, 2, 3)) for p in ("double", "float")}
rel = abs(med["float"] - med["double"]) / med["double"]
print(f"{model}: double {med['double']:.2f} Hz, float {med['float']:.2f} Hz, difference {100*rel:.1f}%")
sys.exit(0 if rel < 0.05 else 1)
PY
done
# float runs are reproducible bit for bit as well
"$tmp/cuba-float" --quiet --seed 1 --duration 100ms --out "$tmp/f1"
"$tmp/cuba-float" --quiet --seed 1 --duration 100ms --out "$tmp/f2"
cmp "$tmp/f1/spikes.h5" "$tmp/f2/spikes.h5" || { echo "FAIL: float runs differ"; fail=1; }
[ "$fail" -eq 0 ]
