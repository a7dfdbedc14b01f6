#!/bin/bash
# Regression test: a plastic projection with no synapses printed
# "weight mean nan" in the simulator's summary.  Run from the repository root
# with the build directory as $1.
set -euo pipefail
build=${1:?usage: plastic_empty.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/engramc" run tests/e2e/data/plastic_empty.engram -- --duration 50ms --out "$tmp/out" >"$tmp/stdout"
grep -q "no plastic synapses" "$tmp/stdout" || { echo "FAIL: no 'no plastic synapses' line"; cat "$tmp/stdout"; exit 1; }
if grep -qi "nan" "$tmp/stdout"; then echo "FAIL: NaN in the summary"; cat "$tmp/stdout"; exit 1; fi
/usr/bin/python3 -c "import json,sys; json.load(open(sys.argv[1]), parse_constant=lambda c: sys.exit(\"FAIL: \" + c + \" in summary.json\"))" "$tmp/out/summary.json"
echo "plastic_empty: ok"
