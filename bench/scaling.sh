#!/bin/bash
# Strong and weak scaling of the runtime (docs/scaling.md): Brunel (examples/
# brunel.engram) with 1 and 2 threads, and 1 and 2 MPI ranks.
#
#   bash bench/scaling.sh [--reps N] [--duration T] [--scale S]
#
#   strong: one network (scale S, default 1: 12500 neurons, 12.5 M synapses)
#           on 1 and 2 workers; speedup = t(1) / t(2)
#   weak:   S/2 per worker (S/2 on 1 worker, S on 2); efficiency = t(1) / t(2)
#
# Prints a markdown table of the median simulate time (summary.json
# timing.simulate_s) over N runs (default 3) and checks that every run's
# spikes.h5 equals the 1-thread run's.  Needs build/engramc built with the
# MPI runtime for the rank rows (skipped otherwise).  ENGRAMC overrides the
# compiler.  Timings never fail the script.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGRAMC=${ENGRAMC:-$ROOT/build/engramc}
reps=3 dur=500ms scale=1
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=$2; shift 2 ;;
    --duration) dur=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--duration T] [--scale S]" >&2; exit 2 ;;
    esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ENGRAMC" build "$ROOT/examples/brunel.engram" -o "$tmp/sim"
mpi=0
if "$ENGRAMC" build --mpi "$ROOT/examples/brunel.engram" -o "$tmp/sim.mpi" 2>/dev/null &&
    command -v mpirun >/dev/null; then
    mpi=1
fi
half=$(awk -v s="$scale" 'BEGIN { print s / 2 }')

median_run() {   # median_run NAME SCALE CMD... -> median simulate_s
    local name=$1 sc=$2; shift 2
    local ts=()
    for r in $(seq "$reps"); do
        "$@" --set "scale=$sc" --duration "$dur" --seed 1 --out "$tmp/$name" --quiet >/dev/null
        ts+=("$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["timing"]["simulate_s"])' "$tmp/$name/summary.json")")
    done
    printf '%s\n' "${ts[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

row() {   # row KIND WORKERS SCALE NAME CMD...
    local kind=$1 w=$2 sc=$3 name=$4; shift 4
    local t
    t=$(median_run "$name" "$sc" "$@")
    local same="-"
    if [ -f "$tmp/${kind}_ref_$sc/spikes.h5" ]; then
        cmp -s "$tmp/${kind}_ref_$sc/spikes.h5" "$tmp/$name/spikes.h5" && same=yes || same=NO
    else
        mkdir -p "$tmp/${kind}_ref_$sc"
        cp "$tmp/$name/spikes.h5" "$tmp/${kind}_ref_$sc/"
        same=ref
    fi
    echo "| $kind | $name | $w | $sc | $t | $same |"
}

echo "Brunel, duration $dur, median of $reps, $(nproc) cores ($(uname -m))"
echo
echo "| scaling | run | workers | scale | simulate (s) | same spikes |"
echo "|---|---|---|---|---|---|"
row strong 1 "$scale" threads1 "$tmp/sim" --threads 1
row strong 2 "$scale" threads2 "$tmp/sim" --threads 2
if [ $mpi = 1 ]; then
    row strong 1 "$scale" ranks1 timeout 900 mpirun -np 1 "$tmp/sim.mpi" --threads 1
    row strong 2 "$scale" ranks2 timeout 900 mpirun -np 2 --oversubscribe "$tmp/sim.mpi" --threads 1
fi
row weak 1 "$half" threads1_weak "$tmp/sim" --threads 1
row weak 2 "$scale" threads2_weak "$tmp/sim" --threads 2
if [ $mpi = 1 ]; then
    row weak 1 "$half" ranks1_weak timeout 900 mpirun -np 1 "$tmp/sim.mpi" --threads 1
    row weak 2 "$scale" ranks2_weak timeout 900 mpirun -np 2 --oversubscribe "$tmp/sim.mpi" --threads 1
fi
