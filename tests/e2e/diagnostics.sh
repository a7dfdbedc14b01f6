#!/bin/bash
# Golden-file tests for diagnostics: for every tests/diagnostics/NAME.engram,
# `engramc check` must fail with exit 1 and print exactly NAME.err on stderr.
# Run from the repository root with the build directory as $1.
#   ENGRAM_UPDATE_GOLDEN=1 bash tests/e2e/diagnostics.sh build   rewrites the .err files
set -euo pipefail
build=${1:?usage: diagnostics.sh BUILD_DIR}
engramc="$build/engramc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass=0 fail=0
for model in tests/diagnostics/*.engram; do
    golden="${model%.engram}.err"
    [ -f "$golden" ] || { echo "missing golden file $golden"; fail=$((fail + 1)); continue; }
    status=0
    "$engramc" check "$model" 2>"$tmp/err" >/dev/null || status=$?
    if [ "${ENGRAM_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp/err" "$golden"; fi
    if [ "$status" -ne 1 ]; then
        echo "FAIL $model: exit status $status, expected 1"
        fail=$((fail + 1))
    elif ! diff -u "$golden" "$tmp/err" >"$tmp/diff"; then
        echo "FAIL $model: diagnostics differ"
        cat "$tmp/diff"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
echo "diagnostics: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
