#!/bin/bash
# End-to-end: the same spikes on any number of threads and ranks
# (docs/scaling.md).
#
# For examples/cuba.engram (scale 0.25), examples/brunel.engram (scale 0.2:
# delays, Poisson drive) and examples/coba_stdp.engram (scale 0.25: STDP,
# weights.h5), runs 1 process x 1 thread, 1 x 2 threads and, when the build
# has the MPI runtime (lib/libengram_rt_mpi.a) and mpirun exists, 2 ranks,
# 3 ranks and 2 ranks x 2 threads, and Brunel with the spike exchange every
# step instead of once per minimum delay.  Every run must give byte-identical
# spikes.h5 (and weights.h5) and a summary.json equal outside "timing".
# Faults under mpirun -np 2: a bad --set, a --max-memory cap and a
# simulator built without --mpi each end every rank with one clear message
# (printed once), not a hang.  Every mpirun is bounded by `timeout`.
#
# Run from the repository root:  bash tests/e2e/scaling_equality.sh BUILD_DIR
# ENGRAM_TEST_SCALE (default 1) multiplies the simulated duration (200 ms).
set -euo pipefail
build=${1:?usage: scaling_equality.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
PY=/usr/bin/python3
lib=tests/e2e/lib
ts=${ENGRAM_TEST_SCALE:-1}
dur_ms=$(awk -v s="$ts" 'BEGIN { d = int(200 * s + 0.5); if (d < 30) d = 30; print d }')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$lib/runs.sh"

have_mpi=0
if [ -f "$build/lib/libengram_rt_mpi.a" ] && command -v mpirun >/dev/null; then
    have_mpi=1
else
    echo "note: no MPI runtime in $build or no mpirun: threads only"
fi

for spec in "cuba scale=0.25" "brunel scale=0.2" "coba_stdp scale=0.25"; do
    set -- $spec
    model=$1 set=$2
    [ -f "examples/$model.engram" ] || { bad "examples/$model.engram missing"; continue; }
    sim=$tmp/$model
    "$engramc" build "examples/$model.engram" -o "$sim" || { bad "$model: build"; continue; }
    args=(--set "$set" --duration "${dur_ms}ms")
    run "${model}_1x1" "$sim" "${args[@]}" --threads 1 || continue
    run "${model}_1x2" "$sim" "${args[@]}" --threads 2 && same "${model}_1x1" "${model}_1x2"
    [ "$have_mpi" = 1 ] || continue
    "$engramc" build --mpi "examples/$model.engram" -o "$sim.mpi" || { bad "$model: build --mpi"; continue; }
    run "${model}_mpi1" "${mpi_env[@]}" "$sim.mpi" "${args[@]}" --threads 1 && same "${model}_1x1" "${model}_mpi1"
    for np in 2 3; do
        run "${model}_${np}x1" "${mpi_env[@]}" "${MPIRUN[@]}" -np $np "$sim.mpi" "${args[@]}" --threads 1 &&
            same "${model}_1x1" "${model}_${np}x1"
    done
    run "${model}_2x2" "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$sim.mpi" "${args[@]}" --threads 2 &&
        same "${model}_1x1" "${model}_2x2"
done

# Brunel's 1.5 ms delay lets the spikes travel once per 15 steps; the
# exchange every step (ENGRAM_EXCHANGE=step) must give the same bits.
sim=$tmp/brunel
args=(--set scale=0.2 --duration "${dur_ms}ms")
if [ -x "$sim" ]; then
    run brunel_step_1x2 env ENGRAM_EXCHANGE=step "$sim" "${args[@]}" --threads 2 &&
        same brunel_1x1 brunel_step_1x2
    if [ "$have_mpi" = 1 ]; then
        run brunel_step_2x1 env ENGRAM_EXCHANGE=step "${mpi_env[@]}" "${MPIRUN[@]}" -x ENGRAM_EXCHANGE \
            -np 2 "$sim.mpi" "${args[@]}" --threads 1 && same brunel_1x1 brunel_step_2x1
    fi
fi

if [ "$have_mpi" = 1 ]; then
    sim=$tmp/brunel.mpi
    # errors agreed through a collective and printed once, by rank 0
    n=$(expect_fail fault_set 2 "unknown parameter\|no parameter\|did you mean" \
        "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$sim" --set nosuch=1 | tail -1)
    [ "$n" = 1 ] && ok "fault_set: printed once" || bad "fault_set: printed $n times"
    n=$(expect_fail fault_mem 4 "over the limit" \
        "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$sim" --set scale=0.2 --max-memory 1M | tail -1)
    [ "$n" = 1 ] && ok "fault_mem: printed once" || bad "fault_mem: printed $n times"
    expect_fail fault_nompi 2 "built without MPI" \
        "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$tmp/brunel" --set scale=0.2 >/dev/null
fi

echo "scaling_equality: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
