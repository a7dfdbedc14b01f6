#!/bin/bash
# End-to-end: protocols (docs/language.md section 16), their outputs
# (docs/protocol_outputs.md) and checkpoints (docs/outputs.md).
#
# On tests/e2e/data/protocol_small.engram (2 days of practice with rewards,
# sleep, a checkpoint per day, a restore, a retrieval test):
#   - trials.csv has the documented header and one row per trial, and the
#     weights measured right after `restore "day2"` equal those measured
#     right after `checkpoint "day2"` (the state came back exactly);
#   - 1 thread and 2 threads (and 2 MPI ranks, 2 ranks restoring a
#     1-process checkpoint, when the MPI runtime is built) give byte-identical
#     spikes.h5, weights.h5 and trials.csv and equal summary.json; so does a
#     short variant of the flagship, examples/motor_sequence.engram, on
#     1 and 2 threads, 2 and 3 ranks and 2 ranks x 2 threads;
#   - a run resumed with --restore from checkpoints/day1.h5 ends with the same
#     files as the uninterrupted run, and so does one resumed from day2.h5 into
#     another folder (its `restore "day2"` uses the earlier run's file);
#   - a corrupt checkpoint, a spikes.h5 passed as checkpoint, a checkpoint of
#     other population sizes, an unknown --protocol and a restore of a
#     checkpoint never written are refused with one clear message.
# Run from the repository root:  bash tests/e2e/protocol.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: protocol.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
PY=/usr/bin/python3
lib=tests/e2e/lib
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$lib/runs.sh"

sim=$tmp/small
"$engramc" build tests/e2e/data/protocol_small.engram -o "$sim" || { echo "FAIL build"; exit 1; }

# ---- one run: the files and the restore statement ----------------------------------
run full "$sim" --threads 1 || { echo "protocol: $pass passed, $((fail + 1)) failed"; exit 1; }
$PY - "$tmp/full" <<'PY' && ok "full: trials.csv, summary.json and restore as documented" || bad "full: outputs"
import csv, json, sys
d = sys.argv[1]
rows = list(csv.reader(open(d + '/trials.csv', newline='')))
head = rows[0]
assert head[:6] == ['protocol', 'phase', 'day', 'session', 'trial', 't_start_ms'], head
for col in ('recall(s)', 'order(s)', 'rate(R.exc)', 'weight(R.exc[0] -> R.exc[1])', 'sparseness(s)'):
    assert col in head, col
body = rows[1:]
practice = [r for r in body if r[1] == 'practice']
assert len(practice) == 6 and [r[2] for r in practice] == ['1'] * 3 + ['2'] * 3, practice
assert [r[4] for r in practice] == ['1', '2', '3'] * 2
col = {h: i for i, h in enumerate(head)}
snap = [r for r in body if r[1] == 'snapshot'][0]
back = [r for r in body if r[1] == 'restored'][0]
for m in ('weight(R.exc[0] -> R.exc[1])', 'weight(R.exc[1] -> R.exc[2])'):
    assert snap[col[m]] != '' and snap[col[m]] == back[col[m]], (m, snap, back)
s = json.load(open(d + '/summary.json'))
p = s['protocol']
assert p['name'] == 'train' and p['completed'], p
names = [(ph['name'], ph['kind'], ph['day']) for ph in p['phases']]
assert ('practice', 'phase', 1) in names and ('sleep', 'sleep', 2) in names, names
assert ('retrieval', 'test', None) in names, names
sleep = [ph for ph in p['phases'] if ph['name'] == 'sleep'][0]
assert 'replay(s)' in sleep['measures'] and 'chance' in sleep['measures']['replay(s)'], sleep
ret = [ph for ph in p['phases'] if ph['name'] == 'retrieval'][0]
assert ret['trials'] == 2 and 'jitter(s)' in ret['measures'], ret
assert p['rewards_evaluated'] == 6, p
PY
[ -f "$tmp/full/checkpoints/day1.h5" ] && [ -f "$tmp/full/checkpoints/day2.h5" ] &&
    ok "full: checkpoints/day1.h5 and day2.h5 written" || bad "full: checkpoints missing"

# ---- threads, resume, ranks -----------------------------------------------------------------
run threads2 "$sim" --threads 2 && same full threads2
run resumed "$sim" --threads 1 --restore "$tmp/full/checkpoints/day1.h5" && same full resumed
run resumed2 "$sim" --threads 2 --restore "$tmp/full/checkpoints/day1.h5" && same full resumed2
# resumed after `checkpoint "day2"` into another folder: the later `restore "day2"`
# must still find the file the earlier run wrote
run resumed_day2 "$sim" --threads 1 --restore "$tmp/full/checkpoints/day2.h5" &&
    same full resumed_day2
if [ -f "$build/lib/libengram_rt_mpi.a" ] && command -v mpirun >/dev/null; then
    "$engramc" build --mpi tests/e2e/data/protocol_small.engram -o "$sim.mpi"
    run ranks2 "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$sim.mpi" --threads 1 && same full ranks2
    run ranks2_resumed "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$sim.mpi" --threads 1 \
        --restore "$tmp/full/checkpoints/day1.h5" && same full ranks2_resumed
else
    echo "note: no MPI runtime in $build or no mpirun: threads only"
fi

# ---- the flagship, short: same files on any number of threads and ranks -----------------------
flag=$tmp/flagship
short=(--set days=1 --set trials=2 --set tests=1 --set trials_b=1 --set sleep_time=300ms)
if "$engramc" build examples/motor_sequence.engram -o "$flag"; then
    run flag1 "$flag" "${short[@]}" --threads 1 && run flag2 "$flag" "${short[@]}" --threads 2 &&
        same flag1 flag2
    if [ -f "$build/lib/libengram_rt_mpi.a" ] && command -v mpirun >/dev/null; then
        if "$engramc" build --mpi examples/motor_sequence.engram -o "$flag.mpi"; then
            run flag_ranks2 "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$flag.mpi" "${short[@]}" \
                --threads 1 && same flag1 flag_ranks2
            run flag_ranks3 "${mpi_env[@]}" "${MPIRUN[@]}" -np 3 "$flag.mpi" "${short[@]}" \
                --threads 1 && same flag1 flag_ranks3
            run flag_ranks2x2 "${mpi_env[@]}" "${MPIRUN[@]}" -np 2 "$flag.mpi" "${short[@]}" \
                --threads 2 && same flag1 flag_ranks2x2
        else
            bad "flagship: build --mpi"
        fi
    fi
else
    bad "flagship: build"
fi

# ---- refusals ---------------------------------------------------------------------------------
cp "$tmp/full/checkpoints/day1.h5" "$tmp/corrupt.h5"
size=$(stat -c %s "$tmp/corrupt.h5")
printf '\x5a' | dd of="$tmp/corrupt.h5" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_fail corrupt 3 "checksum" "$sim" --restore "$tmp/corrupt.h5"
expect_fail not_checkpoint 3 "not a checkpoint\|not an Engram checkpoint" "$sim" --restore "$tmp/full/spikes.h5"
expect_fail other_sizes 1 "does not fit" "$sim" --set R.exc.size=100 --restore "$tmp/full/checkpoints/day1.h5"
expect_fail unknown_protocol 2 "quick" "$sim" --protocol nosuch
run quick "$sim" --protocol quick && $PY - "$tmp/quick" <<'PY' && ok "quick: --protocol picks the second protocol" || bad "quick"
import json, sys
s = json.load(open(sys.argv[1] + '/summary.json'))
assert s['protocol']['name'] == 'quick' and s['protocol']['duration_ms'] == 100, s['protocol']
PY
cat > "$tmp/norestore.engram" <<'MODEL'
model norestore
use std.neurons (LIF)
region R { population exc = 10 LIF }
protocol p { rest 10 ms  restore "never" }
MODEL
"$engramc" build "$tmp/norestore.engram" -o "$tmp/norestore"
expect_fail restore_missing 1 "no checkpoint" "$tmp/norestore"

echo "protocol: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
