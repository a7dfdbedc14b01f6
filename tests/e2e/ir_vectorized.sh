#!/usr/bin/env bash
# ir_vectorized.sh BUILD_DIR - every population update kernel of every example
# model must hold a vectorised loop in its optimised IR (`vector.body`, or
# operations on <N x double> / <N x float>), in both precisions.  A kernel that
# stops vectorising is a silent 2-8x slowdown, so this is a test, not a benchmark.
# Run from the repository root.
set -u
build=${1:?usage: ir_vectorized.sh BUILD_DIR}
engramc="$build/engramc"
shopt -s nullglob
models=(examples/*.engram)
if [ ${#models[@]} -eq 0 ]; then
    echo "ir_vectorized: skipped: no examples/*.engram"
    exit 0
fi
[ -x "$engramc" ] || { echo "ir_vectorized: FAIL: $engramc not found"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints "NAME 0|1" for each update kernel: 1 when its body is vectorised.
kernels_vectorised() {
    awk '
        /^define .*@engram_pop_[0-9]+_update\(/ {
            name = $0; sub(/.*@/, "", name); sub(/\(.*/, "", name); infn = 1; vec = 0; next
        }
        infn && /vector\.body|<[0-9]+ x (double|float)>/ { vec = 1 }
        infn && /^}/ { print name, vec; infn = 0 }
    ' "$1"
}

fail=0
checked=0
for model in "${models[@]}"; do
    for precision in double float; do
        ll="$tmp/$(basename "$model" .engram)-$precision.ll"
        if ! "$engramc" build --emit-llvm --precision "$precision" -o "$ll" "$model" 2> "$tmp/err"; then
            echo "FAIL: $model ($precision) does not compile:"
            cat "$tmp/err"
            fail=1
            continue
        fi
        while read -r name vec; do
            checked=$((checked + 1))
            if [ "$vec" != 1 ]; then
                echo "FAIL: $model ($precision): $name has no vectorised loop"
                fail=1
            fi
        done < <(kernels_vectorised "$ll")
    done
done
if [ "$checked" -eq 0 ] && [ "$fail" -eq 0 ]; then
    echo "FAIL: no update kernels found in any example's IR"
    fail=1
fi
[ "$fail" -eq 0 ] && echo "ir_vectorized: $checked update kernels vectorised in ${#models[@]} models"
exit "$fail"
