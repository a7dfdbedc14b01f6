#!/bin/sh
# Runs the flagship model (examples/motor_sequence.engram, docs/motor_sequence.md)
# for the given seeds (default: 1) and prints the table of its five effects.
#   sh tools/flagship.sh [SEED...]        (needs a build in ./build)
# Outputs: out/motor_sequence/seedN/{spikes.h5,weights.h5,trials.csv,summary.json}.
set -eu
cd "$(dirname "$0")/.."
[ -x build/engramc ] || { echo "flagship.sh: build first: sh tools/quickstart.sh" >&2; exit 1; }
mkdir -p out/motor_sequence
start=$(date +%s.%N)
./build/engramc build examples/motor_sequence.engram -o out/motor_sequence/motor_sequence
built=$(date +%s.%N)
[ $# -gt 0 ] || set -- 1
dirs=""
for seed in "$@"; do
    ./out/motor_sequence/motor_sequence --seed "$seed" --out "out/motor_sequence/seed$seed" --quiet
    dirs="$dirs out/motor_sequence/seed$seed"
done
end=$(date +%s.%N)
awk -v a="$start" -v b="$built" -v c="$end" -v n=$# 'BEGIN {
    printf "engramc build %.2f s; %d run(s) in %.1f s\n", b - a, n, c - b }'
# shellcheck disable=SC2086
python3 tools/flagship_report.py $dirs
