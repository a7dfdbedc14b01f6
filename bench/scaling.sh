#!/bin/bash
# Strong and weak scaling of the runtime (docs/scaling.md): Brunel
# (examples/brunel.engram, default scale 8: 100k neurons, 125 M synapses) and
# COBA (examples/coba.engram, scale 16: 64k neurons, 5.1 M synapses) with 1
# and 2 threads, and 1 and 2 MPI ranks.
#
#   bash bench/scaling.sh [--model brunel|coba|all] [--reps N] [--duration T] [--scale S]
#
#   strong: one network (scale S) on 1 and 2 workers;
#           speedup = t(1) / t(2), efficiency = speedup / 2
#   weak:   S/2 per worker (S/2 on 1 worker, S on 2); efficiency = t(1) / t(2)
#
# Prints a markdown table per model: the median simulate time
# (summary.json timing.simulate_s) over N runs (default 3), synaptic events
# per second (spikes of each source x the projection's mean out-degree, per
# second of simulate time), speedup and parallel efficiency against the
# 1-worker row of the same kind, and whether every run's spikes.h5 equals the
# first run's of its size.  Needs build/engramc built with the MPI runtime
# for the rank rows (skipped otherwise).  ENGRAMC overrides the compiler.
# Timings never fail the script.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGRAMC=${ENGRAMC:-$ROOT/build/engramc}
reps=3 user_dur="" scale="" models=all
while [ $# -gt 0 ]; do
    case $1 in
    --model) models=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --duration) user_dur=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    *) echo "usage: $0 [--model brunel|coba|all] [--reps N] [--duration T] [--scale S]" >&2; exit 2 ;;
    esac
done
case $models in
all) models="brunel coba" ;;
brunel|coba) ;;
*) echo "scaling.sh: --model must be brunel, coba or all" >&2; exit 2 ;;
esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# simulate_s and synaptic events of one run's summary.json
run_stats() {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
pops = s["populations"]
events = 0.0
for name, pr in s.get("projections", {}).items():
    src = name.split("->")[0]
    if src in pops and pops[src]["size"]:
        events += pops[src]["spikes"] * pr["synapses"] / pops[src]["size"]
print(s["timing"]["simulate_s"], events)
PY
}

median_run() {   # median_run NAME SCALE CMD... -> "median_simulate_s events"
    local name=$1 sc=$2; shift 2
    local lines=()
    for r in $(seq "$reps"); do
        "$@" --set "scale=$sc" --duration "$dur" --seed 1 --out "$tmp/$name" --quiet >/dev/null
        lines+=("$(run_stats "$tmp/$name/summary.json")")
    done
    printf '%s\n' "${lines[@]}" | sort -g | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}

declare -A base
row() {   # row KIND WORKERS SCALE NAME CMD...
    local kind=$1 w=$2 sc=$3 name=$4; shift 4
    local t ev
    read -r t ev < <(median_run "$name" "$sc" "$@")
    local same="-"
    if [ -f "$tmp/ref_$sc/spikes.h5" ]; then
        cmp -s "$tmp/ref_$sc/spikes.h5" "$tmp/$name/spikes.h5" && same=yes || same=NO
    else
        mkdir -p "$tmp/ref_$sc"
        cp "$tmp/$name/spikes.h5" "$tmp/ref_$sc/"
        same=ref
    fi
    local key="$kind-${name%%[0-9]*}"
    [ "$w" = 1 ] && base[$key]=$t
    local speed eff
    speed=$(awk -v a="${base[$key]}" -v b="$t" -v k="$kind" -v w="$w" \
        'BEGIN { if (k == "weak") printf "-"; else printf "%.2f", a / b }')
    eff=$(awk -v a="${base[$key]}" -v b="$t" -v k="$kind" -v w="$w" \
        'BEGIN { e = (k == "weak") ? a / b : a / b / w; printf "%.0f%%", 100 * e }')
    local evs
    evs=$(awk -v e="$ev" -v t="$t" 'BEGIN { printf "%.3g", e / t }')
    echo "| $kind | $name | $w | $sc | $(awk -v t="$t" 'BEGIN { printf "%.3f", t }') | $evs | $speed | $eff | $same |"
}

for model in $models; do
    sc=$scale dur=$user_dur
    [ -n "$sc" ] || { [ "$model" = brunel ] && sc=8 || sc=16; }
    [ -n "$dur" ] || { [ "$model" = brunel ] && dur=300ms || dur=1s; }
    rm -rf "$tmp"/ref_*
    "$ENGRAMC" build "$ROOT/examples/$model.engram" -o "$tmp/sim"
    mpi=0
    if "$ENGRAMC" build --mpi "$ROOT/examples/$model.engram" -o "$tmp/sim.mpi" 2>/dev/null &&
        command -v mpirun >/dev/null; then
        mpi=1
    fi
    half=$(awk -v s="$sc" 'BEGIN { print s / 2 }')
    echo "$model, scale $sc, duration $dur, median of $reps, $(nproc) cores ($(uname -m))"
    echo
    echo "| scaling | run | workers | scale | simulate (s) | events/s | speedup | efficiency | same spikes |"
    echo "|---|---|---|---|---|---|---|---|---|"
    row strong 1 "$sc" threads1 "$tmp/sim" --threads 1
    row strong 2 "$sc" threads2 "$tmp/sim" --threads 2
    if [ $mpi = 1 ]; then
        row strong 1 "$sc" ranks1 timeout 900 mpirun -np 1 "$tmp/sim.mpi" --threads 1
        row strong 2 "$sc" ranks2 timeout 900 mpirun -np 2 --oversubscribe "$tmp/sim.mpi" --threads 1
    fi
    row weak 1 "$half" threads1_weak "$tmp/sim" --threads 1
    row weak 2 "$sc" threads2_weak "$tmp/sim" --threads 2
    if [ $mpi = 1 ]; then
        row weak 1 "$half" ranks1_weak timeout 900 mpirun -np 1 "$tmp/sim.mpi" --threads 1
        row weak 2 "$sc" ranks2_weak timeout 900 mpirun -np 2 --oversubscribe "$tmp/sim.mpi" --threads 1
    fi
    echo
done
