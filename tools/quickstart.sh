#!/bin/sh
# Quick start: install what is missing, build Engram, run the flagship example.
#   sh tools/quickstart.sh
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== the flagship: examples/motor_sequence.engram (docs/motor_sequence.md)"
sh tools/flagship.sh 1
