#!/bin/bash
# End-to-end science test of the flagship (examples/motor_sequence.engram,
# docs/motor_sequence.md): the five effects of the issue, on seeds 1, 2, 3,
# the median over the seeds deciding (tools/flagship_report.py computes them):
#   1. acquisition: practice recall of A day 1 <= 0.3, last day >= 0.8;
#      jitter falls;
#   2. consolidation: replay of A in sleep above its shuffle chance level
#      (count > chance + 1 sd of the shuffles) and above the untrained control
#      sequence in most sleeps of the second half of the days; recall after
#      sleep >= before it and > after wake rest;
#   3. retrieval: recall from the first element alone >= 0.8;
#   4. interference: learning B lowers recall of A less with the context
#      input than without it;
#   5. expertise: practice sparseness falls from day 1 to the last day.
# With ENGRAM_TEST_SCALE < 1 (the sanitizer build) it runs one short variant
# (2 days of 3 trials) and checks only that the protocol completes and writes
# its outputs.
# Run from the repository root:  bash tests/e2e/flagship.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: flagship.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
PY=/usr/bin/python3
ts=${ENGRAM_TEST_SCALE:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sim=$tmp/motor_sequence
"$engramc" build examples/motor_sequence.engram -o "$sim" || { echo "FAIL build"; exit 1; }

if awk -v s="$ts" 'BEGIN { exit !(s < 1) }'; then
    "$sim" --seed 1 --out "$tmp/short" --quiet --set days=2 --set trials=3 --set tests=2 \
        --set trials_b=2 --set sleep_time=500ms
    $PY - "$tmp/short" <<'PY'
import csv, json, sys
d = sys.argv[1]
s = json.load(open(d + '/summary.json'))
assert s['protocol']['completed'], s['protocol']
rows = list(csv.reader(open(d + '/trials.csv', newline='')))
assert len(rows) > 6 and 'recall(reach_A)' in rows[0], rows[:2]
print('ok   short flagship variant completes (%d trial rows)' % (len(rows) - 1))
PY
    exit 0
fi

dirs=()
for seed in 1 2 3; do
    start=$(date +%s)
    "$sim" --seed "$seed" --out "$tmp/seed$seed" --quiet
    echo "seed $seed: $(($(date +%s) - start)) s"
    dirs+=("$tmp/seed$seed")
done
$PY tools/flagship_report.py "${dirs[@]}"
$PY tools/flagship_report.py "${dirs[@]}" --json >"$tmp/report.json"
$PY - "$tmp/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = ['acquisition', 'jitter_falls', 'replay_above_chance', 'sleep_keeps', 'sleep_beats_wake',
        'retrieval', 'context_protects', 'sparseness_falls']
failed = [k for k in want if r['effects'].get(k) is not True]
for k in want:
    print('%s %s' % ('ok  ' if r['effects'].get(k) is True else 'FAIL', k))
sys.exit(1 if failed else 0)
PY
