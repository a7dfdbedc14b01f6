#!/usr/bin/env bash
# cli.sh BUILD_DIR - engramc's command line: help, version, exit codes for bad
# flags (2), model errors (1) and unreadable or unwritable files (3), and the
# three build outputs (simulator, -c object, --emit-llvm IR) written
# atomically (no temporary files left behind).  Run from the repository root.
set -u
build=${1:?usage: cli.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect CODE DESCRIPTION -- COMMAND...: runs COMMAND, checks its exit code.
expect() {
    local want=$1 what=$2
    shift 3
    "$@" > "$tmp/out" 2> "$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL: $what: exit $got, want $want ($*)"
        sed 's/^/  | /' "$tmp/err" | head -5
        fail=$((fail + 1))
    fi
}

# has FILE TEXT DESCRIPTION: FILE contains TEXT.
has() {
    if grep -q -- "$2" "$1"; then
        pass=$((pass + 1))
    else
        echo "FAIL: $3: '$2' not in $(basename "$1")"
        fail=$((fail + 1))
    fi
}

# ---- help and version ------------------------------------------------------------
expect 0 "--help" -- "$engramc" --help
has "$tmp/out" "usage: engramc" "--help prints the usage on stdout"
expect 0 "-h" -- "$engramc" -h
expect 0 "--version" -- "$engramc" --version
has "$tmp/out" "^engramc [0-9]" "--version prints the version"
expect 0 "help after a command" -- "$engramc" build --help

# ---- bad command lines: exit 2 with a message and the usage --------------------------
expect 2 "no arguments" -- "$engramc"
has "$tmp/err" "usage:" "no arguments prints the usage"
expect 2 "unknown option" -- "$engramc" check --frobnicate examples/cuba.engram
has "$tmp/err" "unknown option '--frobnicate'" "unknown option is named"
expect 2 "unknown command" -- "$engramc" compile examples/cuba.engram
has "$tmp/err" "unknown command 'compile'" "unknown command is named"
expect 2 "no input file" -- "$engramc" build
expect 2 "two input files" -- "$engramc" check a.engram b.engram
expect 2 "-o without value" -- "$engramc" build examples/cuba.engram -o
expect 2 "bad precision" -- "$engramc" build --precision quad examples/cuba.engram
expect 2 "unknown CPU" -- "$engramc" build --cpu no-such-cpu examples/cuba.engram
has "$tmp/err" "unknown CPU 'no-such-cpu'" "unknown CPU is named"
expect 2 "bad -O level" -- "$engramc" build -O7 examples/cuba.engram
expect 2 "-o with check" -- "$engramc" check -o x examples/cuba.engram
expect 2 "-c with --emit-llvm" -- "$engramc" build -c --emit-llvm examples/cuba.engram
expect 2 "--dump-ir with build" -- "$engramc" build --dump-ir examples/cuba.engram
expect 2 "sim args with build" -- "$engramc" build examples/cuba.engram -- --seed 2

# ---- unreadable input: exit 3 ---------------------------------------------------------
expect 3 "missing input" -- "$engramc" check "$tmp/nope.engram"
has "$tmp/err" "cannot read" "missing input is reported"
expect 3 "directory as input" -- "$engramc" check "$tmp"

# ---- model errors: exit 1 ------------------------------------------------------------------
printf 'model broken\nparam x = = 3\n' > "$tmp/broken.engram"
expect 1 "syntax error" -- "$engramc" check "$tmp/broken.engram"
has "$tmp/err" "broken.engram:2" "the error has a location"
expect 1 "syntax error in build" -- "$engramc" build -o "$tmp/never" "$tmp/broken.engram"
[ ! -e "$tmp/never" ] && pass=$((pass + 1)) || { echo "FAIL: output written despite errors"; fail=$((fail + 1)); }
expect 1 "fmt of a broken model" -- "$engramc" fmt "$tmp/broken.engram"

# ---- fmt keeps every comment, in place, and is idempotent -----------------------------------
cat > "$tmp/commented.engram" <<'MODEL'
# header comment
model commented   # after the model line

use std.neurons (LIF)
# before a param
param w = 1.5 mV   # trailing a param

region R {
    # inside a region
    population E = 10 LIF   # trailing a population
}

project R.E -> R.E {
    # inside a block
    connect random(p = 0.1)   # trailing a statement
    weight w
}
simulation {
    dt = 0.1 ms
    duration = 10 ms
}
# at the end
MODEL
expect 0 "fmt with comments" -- "$engramc" fmt "$tmp/commented.engram"
cp "$tmp/out" "$tmp/commented_fmt.engram"
for c in "^# header comment" "^model commented  # after the model line" "^# before a param" \
         "param w = 1.5 mV  # trailing a param" "^    # inside a region" \
         "population E = 10 LIF  # trailing a population" "^    # inside a block" \
         "connect random(p = 0.1)  # trailing a statement" "^# at the end"; do
    has "$tmp/commented_fmt.engram" "$c" "fmt keeps the comment '$c'"
done
expect 0 "fmt of fmt" -- "$engramc" fmt "$tmp/commented_fmt.engram"
if cmp -s "$tmp/out" "$tmp/commented_fmt.engram"; then
    pass=$((pass + 1))
else
    echo "FAIL: fmt is not idempotent on a commented model"; fail=$((fail + 1))
fi

# ---- good model: check, fmt, and the three outputs -------------------------------------------
model=examples/cuba.engram
if [ -f "$model" ]; then
    expect 0 "check" -- "$engramc" check "$model"
    expect 0 "check --dump-ir" -- "$engramc" check --dump-ir "$model"
    expect 0 "fmt" -- "$engramc" fmt "$model"
    has "$tmp/out" "model cuba" "fmt prints the model"
    mkdir -p "$tmp/o"
    expect 0 "build --emit-llvm" -- "$engramc" build --emit-llvm -o "$tmp/o/cuba.ll" "$model"
    has "$tmp/o/cuba.ll" "define void @engram_pop_0_update" "the IR holds the update kernel"
    has "$tmp/o/cuba.ll" "@engram_model_blob = " "the IR holds the model blob"
    expect 0 "build -c" -- "$engramc" build -c --cpu x86-64-v2 -O2 -o "$tmp/o/cuba.o" "$model"
    if [ "$(head -c 4 "$tmp/o/cuba.o" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        pass=$((pass + 1))
    else
        echo "FAIL: -c did not write an ELF object"; fail=$((fail + 1))
    fi
    expect 0 "build -v" -- "$engramc" build -v --precision float -o "$tmp/o/cuba" "$model"
    has "$tmp/err" "codegen" "-v prints phase times"
    expect 0 "simulator --help" -- "$tmp/o/cuba" --help
    leftovers=$(find "$tmp/o" -name '.engramc-*' | wc -l)
    [ "$leftovers" -eq 0 ] && pass=$((pass + 1)) || { echo "FAIL: temporary files left in the output folder"; fail=$((fail + 1)); }
    expect 3 "unwritable output folder" -- "$engramc" build -o "$tmp/no/such/dir/sim" "$model"
else
    echo "note: $model missing; output checks skipped"
fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
