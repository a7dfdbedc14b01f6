#!/usr/bin/env bash
# Regenerate the Brian2 reference results in tests/reference/*.json.
#
#   Command (from the repository root):
#       bash tests/reference/regenerate.sh
#
#   Needs Debian's python3-brian (Brian2 2.5.1), python3-numpy, g++ and make:
#       apt-get install -y python3-brian python3-numpy g++ make
#   and the peer benchmark scripts (cuba.py, coba.py, brunel.py, _common.py)
#   from shared/bench/peers/brian2 (override: ENGRAM_BRIAN2_PEERS=DIR).
#
#   NOT run by the test suite: it compiles ~36 Brian2 cpp_standalone
#   projects and takes ~10-15 minutes on 2 cores (the Brunel SR state
#   alone simulates ~4e9 synaptic events).  Runs are sequential.
#
#   What it runs (all scale 1, 1 s of biological time, dt 0.1 ms):
#     CUBA, COBA, seeds 1..5: the stock peer script (its JSON line) and
#         brunel_stats_brian2.py --model cuba|coba (same seed, same spikes,
#         plus rate / ISI-CV / synchrony statistics)
#     Brunel model A, seeds 1..3, Brunel (2000) Fig. 8 states
#         A SR (g 3, eta 2), B SI-fast (g 6, eta 4), C AI (g 5, eta 2),
#         D SI-slow (g 4.5, eta 0.9): brunel_stats_brian2.py, plus the stock
#         brunel.py for seed 1 as a cross-check (spike counts must agree)
#   then aggregate_brian2.py writes cuba_brian2.json, coba_brian2.json and
#   brunel_brian2.json next to this script.
#
#   Environment knobs: PY (default /usr/bin/python3), SEEDS_BA (default
#   "1 2 3 4 5"), SEEDS_BRUNEL (default "1 2 3"), DURATION (default 1.0),
#   KEEP_WORK=1 keeps the temporary directory with every raw JSON line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PY:-/usr/bin/python3}"
if [[ -z "${ENGRAM_BRIAN2_PEERS:-}" ]]; then
    if [[ -f "$ROOT/shared/bench/peers/brian2/_common.py" ]]; then
        ENGRAM_BRIAN2_PEERS="$ROOT/shared/bench/peers/brian2"
    else
        ENGRAM_BRIAN2_PEERS=/work/shared/bench/peers/brian2
    fi
fi
export ENGRAM_BRIAN2_PEERS
PEERS="$ENGRAM_BRIAN2_PEERS"
SEEDS_BA="${SEEDS_BA:-1 2 3 4 5}"
SEEDS_BRUNEL="${SEEDS_BRUNEL:-1 2 3}"
DURATION="${DURATION:-1.0}"

for f in _common.py cuba.py coba.py brunel.py; do
    [[ -f "$PEERS/$f" ]] || { echo "missing $PEERS/$f" >&2; exit 1; }
done
"$PY" -c 'import brian2, numpy' 2>/dev/null || {
    echo "brian2 not importable by $PY; apt-get install -y python3-brian python3-numpy g++ make" >&2
    exit 1; }

WORK="$(mktemp -d /tmp/engram_brian2_ref.XXXXXX)"
if [[ "${KEEP_WORK:-0}" != 1 ]]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "raw results kept in $WORK" >&2
fi
mkdir -p "$WORK/raw"
cd "$ROOT"

# run_json NAME CMD...: run CMD, its single JSON line -> raw/NAME.json, the
# command line (with the temp dir written as $WORK) -> raw/NAME.cmd,
# stderr -> raw/NAME.log
run_json() {
    local name="$1"; shift
    local cmd
    cmd="$(printf '%q ' "$@")"
    cmd="${cmd% }"
    printf '%s\n' "${cmd//$WORK/\$WORK}" > "$WORK/raw/$name.cmd"
    echo "[$(date +%T)] $name" >&2
    if ! "$@" > "$WORK/raw/$name.json" 2> "$WORK/raw/$name.log"; then
        echo "FAILED: $name; stderr tail:" >&2
        tail -20 "$WORK/raw/$name.log" >&2
        exit 1
    fi
}

STATS=tests/reference/brunel_stats_brian2.py

for model in cuba coba; do
    for s in $SEEDS_BA; do
        run_json "${model}_stock_s$s" "$PY" "$PEERS/$model.py" \
            --duration "$DURATION" --seed "$s" --builddir "$WORK/b_${model}_stock"
        run_json "${model}_stats_s$s" "$PY" "$STATS" --model "$model" \
            --duration "$DURATION" --seed "$s" --builddir "$WORK/b_${model}_stats"
    done
done

# state label, g, eta
STATES=("A_SR 3 2" "B_SI_fast 6 4" "C_AI 5 2" "D_SI_slow 4.5 0.9")
for st in "${STATES[@]}"; do
    read -r label g eta <<< "$st"
    first=1
    for s in $SEEDS_BRUNEL; do
        run_json "brunel_${label}_stats_s$s" "$PY" "$STATS" --model brunel \
            --g "$g" --eta "$eta" --duration "$DURATION" --seed "$s" \
            --builddir "$WORK/b_brunel_stats"
        if [[ $first == 1 ]]; then
            run_json "brunel_${label}_stock_s$s" "$PY" "$PEERS/brunel.py" \
                --g "$g" --eta "$eta" --duration "$DURATION" --seed "$s" \
                --builddir "$WORK/b_brunel_stock"
            first=0
        fi
    done
done

"$PY" tests/reference/aggregate_brian2.py "$WORK/raw" tests/reference
echo "wrote tests/reference/{cuba,coba,brunel}_brian2.json" >&2
