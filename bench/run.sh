#!/bin/bash
# Engram vs Brian2, side by side, in one command (see bench/README.md).
#
#   bash bench/run.sh [--reps N] [--quick] [--only cuba_4k,coba_4k,...] [more options]
#
#   --reps N          recorded runs per tool and case (default 5; Song: --song-reps, default 3)
#   --song-reps N
#   --quick           validation: 2 reps, 4k cases only, no warm-up, no profiled run, quick floor
#   --only A,B        only these cases (cuba_4k cuba_16k cuba_64k coba_4k coba_16k coba_64k
#                     coba_stdp_4k brunel_ai brunel_si stdp_song)
#   --no-brian | --no-engram | --no-floor | --no-profile | --no-warmup
#   --float           also run each model built with --precision float, as a third tool
#                     "engram_float" (the default); --no-float: double simulators only
#   --no-build        never build engramc (default: build build/engramc if it is missing)
#   --engram-threads N  --threads for our simulators (default 1: single thread, as Brian2)
#   --quiet-wait S    before each run wait at most S s for an idle machine (default 30)
#   --retries N       rerun a run slowed by other work up to N times (default 3)
#   --busy-wait S     after such a run wait at most S s for an idle machine (default 120)
#   --results-md      (re)write bench/RESULTS.md from this run even for --quick / --only runs
#   --keep            keep the scratch folder (simulators, outputs, logs)
#
# Environment: ENGRAMC (default build/engramc), BRIAN2_PEERS (default
# /work/shared/bench/peers/brian2), CC (default gcc).
# Results: bench/results/runs/<date>[-quick]/ and bench/results/latest.{md,json,svg};
# a full run (no --quick, no --only) also rewrites bench/RESULTS.md.
# Timings never fail this script: it exits non-zero only when it cannot run at all.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
PY=/usr/bin/python3
CC=${CC:-gcc}

quick=0 only="" no_floor=0 no_build=0 no_engram=0 results_md=0 use_float=1
pass=()
orig_cmd="bash bench/run.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; pass+=("$1") ;;
        --only) only=$2; pass+=("$1" "$2"); shift ;;
        --only=*) only=${1#--only=}; pass+=("--only" "$only") ;;
        --reps|--song-reps|--build-reps|--seed|--timeout|--engram-threads|--quiet-wait|--retries|--busy-wait) pass+=("$1" "$2"); shift ;;
        --no-brian|--no-profile|--no-warmup|--keep) pass+=("$1") ;;
        --no-engram) no_engram=1; pass+=("$1") ;;
        --no-floor) no_floor=1 ;;
        --no-build) no_build=1 ;;
        --results-md) results_md=1 ;;
        --float) use_float=1 ;;
        --no-float) use_float=0 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

stamp=$(date +%Y%m%d-%H%M%S)
[ $quick = 1 ] && stamp="$stamp-quick"
[ -n "$only" ] && stamp="$stamp-only"
RUN="$BENCH/results/runs/$stamp"
mkdir -p "$RUN"
echo "$orig_cmd" >"$RUN/command.txt"
echo "[bench] results in $RUN" >&2

# --- engramc -------------------------------------------------------------------------
ENGRAMC=${ENGRAMC:-$ROOT/build/engramc}
if [ $no_engram = 0 ] && [ ! -x "$ENGRAMC" ] && [ $no_build = 0 ]; then
    echo "[bench] $ENGRAMC missing: building it (cmake, Release)" >&2
    if cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >"$RUN/cmake.log" 2>&1 &&
        cmake --build "$ROOT/build" -j2 >>"$RUN/cmake.log" 2>&1; then
        ENGRAMC=$ROOT/build/engramc
    else
        echo "[bench] building engramc failed (see $RUN/cmake.log): Brian2 side only" >&2
    fi
fi

# --- the machine floor ------------------------------------------------------------------
if [ $no_floor = 0 ]; then
    FLOOR_BIN="$RUN/floor"
    $CC -O3 -march=native -o "$FLOOR_BIN" "$BENCH/floor.c"
    fl=()
    [ $quick = 1 ] && fl+=(--quick)
    echo "[bench] machine floor (bench/floor.c ${fl[*]:-})" >&2
    # wait (at most 60 s) for a quiet machine, as for every other measurement
    for _ in $(seq 60); do
        [ "$(awk '/procs_running/{print $2}' /proc/stat)" -le 1 ] && break
        sleep 1
    done
    "$FLOOR_BIN" "${fl[@]}" >"$RUN/floor.json"
    rm -f "$FLOOR_BIN"
    # a full floor also becomes the reference for later --no-floor runs
    [ $quick = 0 ] && cp "$RUN/floor.json" "$BENCH/results/floor.json"
fi

# --- the runs --------------------------------------------------------------------------
[ $use_float = 1 ] && [ $no_engram = 0 ] && pass+=(--float)
rc=0
$PY "$BENCH/harness.py" --engramc "$ENGRAMC" --out "$RUN" "${pass[@]}" || rc=$?
if [ $rc = 2 ]; then rm -rf "$RUN"; exit 2; fi      # bad option / case name
[ $rc = 0 ] || echo "[bench] harness exited with $rc (partial results kept)" >&2

# --- the report ----------------------------------------------------------------------------
rep=(--command "$orig_cmd")
if [ $results_md = 1 ] || { [ $quick = 0 ] && [ -z "$only" ]; }; then
    rep+=(--results-md "$BENCH/RESULTS.md")
    [ -f "$BENCH/results/preface.md" ] && rep+=(--preface "$BENCH/results/preface.md")
fi
$PY "$BENCH/report.py" "$RUN" "${rep[@]}"
