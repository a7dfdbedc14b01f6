#!/bin/bash
# Bad input never crashes the compiler: every malformed model of the fuzz
# corpus gets a clean diagnosis (exit 1, a located error), oversized and deeply
# nested inputs are refused quickly, and a short libFuzzer run over the front
# end finds nothing (when clang-19 is installed).
# Run from the repository root with the build directory as $1.
set -euo pipefail
build=${1:?usage: robustness.sh BUILD_DIR}
engramc="$build/engramc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail=0
bad=0
check_one() {   # FILE: exit 0 (a valid seed), or 1 with a located error; never a crash
    local f=$1 status=0
    timeout 20 "$engramc" check "$f" >/dev/null 2>"$tmp/err" || status=$?
    if [ "$status" -eq 1 ] && grep -q "error:" "$tmp/err"; then
        bad=$((bad + 1))
    elif [ "$status" -ne 0 ] || [ -s "$tmp/err" ]; then
        echo "FAIL $f: exit $status"; head -5 "$tmp/err"; fail=$((fail + 1))
    fi
}

# The corpus holds malformed models and a few valid seeds for the fuzzer.
for f in tests/fuzz/corpus/*; do check_one "$f"; done
echo "corpus: $bad malformed models diagnosed"
[ "$bad" -ge 100 ] || { echo "FAIL: only $bad malformed models in the corpus"; fail=$((fail + 1)); }

# Enormous and deep inputs (generated here, never committed).
sh tests/fuzz/gen_big.sh "$tmp/big" >/dev/null
for f in "$tmp/big/big_100mb.engram" "$tmp/big/nested_100k.engram"; do
    start=$(date +%s)
    before=$bad
    check_one "$f"
    [ "$bad" -gt "$before" ] || { echo "FAIL $f: not refused"; fail=$((fail + 1)); }
    [ $(( $(date +%s) - start )) -le 10 ] || { echo "FAIL $f: too slow"; fail=$((fail + 1)); }
done
grep -q "too large" <("$engramc" check "$tmp/big/big_100mb.engram" 2>&1) || { echo "FAIL: no 'too large'"; fail=$((fail + 1)); }

# Unreadable, missing, directory, empty and binary files.
: > "$tmp/empty.engram"; printf 'model x\0\0' > "$tmp/bin.engram"; mkdir "$tmp/dir.engram"
for f in "$tmp/empty.engram" "$tmp/bin.engram" "$tmp/dir.engram" "$tmp/missing.engram"; do
    status=0; "$engramc" check "$f" >/dev/null 2>"$tmp/err" || status=$?
    if [ "$status" -ne 1 ] && [ "$status" -ne 3 ]; then echo "FAIL $f: exit $status"; fail=$((fail + 1)); fi
done

# A short coverage-guided run of the front end (libFuzzer comes with clang-19).
if command -v clang-19 >/dev/null && [ -f "$build/gen/parser.c" ] && [ "${ENGRAM_SKIP_FUZZ:-0}" != 1 ]; then
    clang-19 -std=c17 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
        -Icompiler -Iruntime -I"$build/gen" tests/fuzz/fuzz_front.c "$build/gen/parser.c" \
        "$build/gen/lexer.c" compiler/ast.c compiler/diag.c compiler/parse.c runtime/units.c \
        -lm -o "$tmp/fuzz_front" 2>"$tmp/cc.log" || { cat "$tmp/cc.log"; exit 1; }
    mkdir "$tmp/corpus" && cp tests/fuzz/corpus/* "$tmp/corpus/"
    if ! "$tmp/fuzz_front" -max_total_time="${ENGRAM_FUZZ_SECONDS:-30}" -max_len=4096 \
            -artifact_prefix="$tmp/" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1; then
        echo "FAIL: the fuzzer found a crash"; tail -40 "$tmp/fuzz.log"; fail=$((fail + 1))
    else
        echo "fuzz: $(grep -o 'Done [0-9]* runs' "$tmp/fuzz.log" | tail -1), no crash"
    fi
else
    echo "fuzz: skipped (clang-19 or the generated parser not found)"
fi

[ "$fail" -eq 0 ]
