#!/bin/bash
# End-to-end science: the example models reproduce their papers and the
# Brian2 runs of the same models (tests/reference/*_brian2.json, made by
# tests/reference/regenerate.sh with Brian2 2.5.1, scale 1, 1 s, seeds 1..5
# for CUBA/COBA and 1..3 for Brunel).
#
# First, every model of std.neurons alone (tests/e2e/lib/stdlib_checks.py:
# LIF, Izhikevich, AdEx, LIFDelta, LIFCond, Poisson, SpikeTimes against closed
# forms and fine-step reference integrations).
#
# Then the examples (each with seeds 1, 2, 3; a metric is the median over the
# seeds):
#   cuba       examples/cuba.engram, full size (4000), 1 s
#   coba       examples/coba.engram, full size (4000), 1 s
#   A_SR       examples/brunel.engram --set scale=0.5 g=3   eta=2    0.5 s
#   B_SIfast   examples/brunel.engram --set scale=0.5 g=6   eta=4    1 s
#   C_AI       examples/brunel.engram --set scale=0.5 g=5   eta=2    1 s
#   D_SIslow   examples/brunel.engram (full size)    g=4.5 eta=0.9  1 s
#   C_AI_full  examples/brunel.engram (full size 12500, the AI default), 1 s
# The whole script takes about 80 s on one core of the 2-core development VM
# (about 15 s at ENGRAM_TEST_SCALE=0.25).
#
# Why Brunel at scale 0.5: N_E = 5000, N_I = 1250 with C_E = 1000, C_I = 250
# and J unchanged (epsilon 0.2 instead of 0.1).  Mean and variance of the
# input depend on C_E and J only, so the mean-field state of each point of
# Brunel's Fig. 8 is unchanged; what grows is the shared-input fraction
# (correlations), which mostly affects synchrony, hence synchrony at scale 0.5
# is checked qualitatively (state against state), and quantitatively only for
# the full-size AI run.  SI slow (D) fires at ~5 Hz and is cheap, so it runs
# at full size, where its slow rhythm (~20 Hz) is as regular as Brian2's (at
# scale 0.5 its spectral peak wanders between 17 and 41 Hz).  Halving C_E and doubling J instead would keep the
# mean but double the input variance, i.e. move the network in the phase
# diagram (see the comment in examples/brunel.engram).  The SR state fires at
# ~300 Hz, 8x the events of AI; 0.5 s (window 0.1-0.5 s, ~130 spikes per
# neuron) measures its rate and regularity as well as 1 s would.
#
# Statistics (tests/e2e/lib/spikestats.py, the definitions of
# tests/reference/brunel_stats_brian2.py): all populations pooled (E and I
# are identical neurons), window [0.1 s, end] to skip the start-up transient
# (Brunel starts every v at 0), rate, CV of the ISIs (neurons with >= 3
# spikes), synchrony from the 1 ms population histogram (synchrony_hz =
# var/mean of the population rate, pop_rate_cv = its std/mean) and the peak
# of its spectrum (pop_peak_hz).
#
# ENGRAM_TEST_SCALE < 1 (sanitizer build): one seed, durations multiplied by
# it (at least 0.4 s), no full-size run, and only the checks that are not
# marked `full` (the qualitative ones, with wide margins) are made.
#
# Run from the repository root:  bash tests/e2e/examples_science.sh BUILD_DIR
# Needs: h5ls/h5dump (hdf5-tools), /usr/bin/python3 with numpy.
set -euo pipefail
build=${1:?usage: examples_science.sh BUILD_DIR}
engramc="$build/engramc"
[ -x "$engramc" ] || { echo "FAIL: no executable $engramc"; exit 1; }
PY=/usr/bin/python3
for tool in h5ls h5dump "$PY"; do
    command -v "$tool" >/dev/null ||
        { echo "FAIL: $tool not found (Debian: apt-get install hdf5-tools python3-numpy)"; exit 1; }
done
"$PY" -c "import numpy" 2>/dev/null || { echo "FAIL: $PY cannot import numpy (apt-get install python3-numpy)"; exit 1; }
lib=tests/e2e/lib
ts=${ENGRAM_TEST_SCALE:-1}
full=$(awk -v s="$ts" 'BEGIN { print (s >= 1) ? 1 : 0 }')
if [ "$full" = 1 ]; then seeds="1 2 3"; else seeds="1"; fi
dur() {   # dur SECONDS -> milliseconds, shortened when ENGRAM_TEST_SCALE < 1
    awk -v d="$1" -v s="$ts" -v f="$full" 'BEGIN {
        ms = 1000 * d; if (!f) { ms = ms * s; if (ms < 400) ms = 400; if (ms > 1000 * d) ms = 1000 * d }
        printf "%d", ms + 0.5 }'
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/stats"

for m in cuba coba brunel; do
    echo "+ $engramc build examples/$m.engram"
    "$engramc" build "examples/$m.engram" -o "$tmp/$m" >"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log"; echo "FAIL: build examples/$m.engram"; echo "science: 0 passed, 1 failed"; exit 1; }
done

# run CASE MODEL SECONDS [--set ...]: every seed, stats into $tmp/stats/CASE_sSEED.json
run() {
    local case=$1 model=$2 d; d=$(dur "$3"); shift 3
    local s t0 t1
    for s in $seeds; do
        t0=$(date +%s.%N)
        if ! "$tmp/$model" --quiet --out "$tmp/out" --seed "$s" --duration "${d}ms" "$@" \
                >"$tmp/run.log" 2>&1; then
            cat "$tmp/run.log"; echo "FAIL: $case seed $s: simulator failed"
            echo "science: 0 passed, 1 failed"; exit 1
        fi
        t1=$(date +%s.%N)
        $PY $lib/spikestats.py "$tmp/out" --t-skip-ms 100 >"$tmp/stats/${case}_s$s.json"
        $PY - "$tmp/stats/${case}_s$s.json" "$case" "$s" "$d" "$t0" "$t1" "$*" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'  {sys.argv[2]:<10} seed {sys.argv[3]} {sys.argv[4]:>5} ms {sys.argv[7]:<42} '
      f'{float(sys.argv[6]) - float(sys.argv[5]):5.1f} s  rate {r["w_rate_hz"]:7.2f} Hz  '
      f'cv {r["cv_isi"] if r["cv_isi"] is None else round(r["cv_isi"], 3)}  '
      f'sync {r["synchrony_hz"] if r["synchrony_hz"] is None else round(r["synchrony_hz"], 2)} Hz  '
      f'pop_cv {r["pop_rate_cv"] if r["pop_rate_cv"] is None else round(r["pop_rate_cv"], 3)}  '
      f'peak {r["pop_peak_hz"]} Hz')
EOF
    done
}

echo "== std.neurons, single neurons (engramc run, 1 s)"
# Each standard model in isolation against a closed form or a fine-step
# reference integration (tests/e2e/lib/stdlib_checks.py says which).
cat >"$tmp/stdlib_neurons.engram" <<'MODEL'
model stdlib_neurons
use std.neurons (LIF, LIFCond, LIFDelta, Izhikevich, AdEx, Poisson, SpikeTimes)
region single {
  population lif = 10 LIF
  population izh = 1 Izhikevich(I_ext = 10 mV / 1 ms)
  population adex = 1 AdEx(I_ext = 1 nA)
  population cond = 10 LIFCond
  population delta = 3 LIFDelta
}
region src {
  population poisson = 1000 Poisson(rate = 10 Hz)
  population times = 3 SpikeTimes(times = [10 ms, 20 ms, 20.04 ms, 30 ms], indices = [0, 1, 2, 1])
}
project src.times -> single.delta { connect one_to_one  weight 25 mV  port exc }
project src.times -> single.cond { connect all_to_all  weight 50 nS  port exc }
simulation { duration = 1 s  seed = 1 }
MODEL
stdlib_rc=0
if "$engramc" run "$tmp/stdlib_neurons.engram" -- --quiet --out "$tmp/stdlib" >"$tmp/run.log" 2>&1; then
    $PY $lib/stdlib_checks.py "$tmp/stdlib" || stdlib_rc=1
else
    cat "$tmp/run.log"; echo "FAIL: engramc run stdlib_neurons"; stdlib_rc=1
fi

echo "== simulations (ENGRAM_TEST_SCALE=$ts, seeds: $seeds)"
run cuba cuba 1
run coba coba 1
run A_SR brunel 0.5 --set scale=0.5 --set g=3 --set eta=2
run B_SIfast brunel 1 --set scale=0.5 --set g=6 --set eta=4
run C_AI brunel 1 --set scale=0.5 --set g=5 --set eta=2
run D_SIslow brunel 1 --set g=4.5 --set eta=0.9
[ "$full" = 1 ] && run C_AI_full brunel 1

echo "== checks"
# CASE METRIC OP REFERENCE [TOLERANCE] [full]
#   REFERENCE: number | cuba:PATH / coba:PATH / brunel:PATH into the Brian2
#   reference JSON | CASE:METRIC of another case here.  `full`: only when
#   ENGRAM_TEST_SCALE >= 1 (3 seeds, full durations).
# Metrics: rate_hz whole run (as the peer scripts' rate), w_rate_hz in the
# window [0.1 s, end] (Brian2: median_window_rate_hz), cv_isi, synchrony_hz,
# pop_rate_cv, pop_peak_hz.
reduced=""; [ "$full" = 1 ] || reduced=--reduced
science_rc=0
$PY $lib/science_checks.py $reduced "$tmp/stats" tests/reference <<'CHECKS' || science_rc=1
# --- CUBA vs Brian2 (5 seeds: 5.53-5.82 Hz, CV 0.50-0.51) -------------------
# Same model up to Engram's minimum delay of one step (Brian2's zero-delay
# synapses act within the step).  The median of 3 seeds moves by ~3% between
# seed sets: 10% on the rate, 0.06 on the CV and on the fraction of active
# neurons (the bounds tests/reference/README.md suggests).  The synchrony is ~25% lower
# here than in the zero-delay reference; Brian2 itself with a 0.1 ms delay
# (our minimum) gives 0.55-0.58 Hz for CUBA (0.66 without) and 0.85-0.98 Hz
# for COBA (1.11 without), measured with tests/reference/brunel_stats_brian2.py
# plus delay=0.1*ms, seeds 1-3: a factor 1.5.
cuba      rate_hz       ~  cuba:summary.median_rate_hz          rel=0.10   full
cuba      cv_isi        ~  cuba:summary.median_cv_isi           abs=0.06   full
cuba      frac_active   ~  cuba:summary.median_frac_active      abs=0.06   full
cuba      synchrony_hz  ~  cuba:summary.median_synchrony_hz     factor=1.5 full
# sustained activity whatever the seeds (qualitative: CUBA's rest lies above
# threshold, recurrent inhibition keeps the rate low; CV ~0.5, tonic).
# The CV needs the full second: a short window drops the long ISIs.
cuba      w_rate_hz     >  2
cuba      w_rate_hz     <  12
cuba      cv_isi        >  0.3                                         full
# --- COBA vs Brian2 (5 seeds: 17.6-20.5 Hz, CV 1.49-1.53) -------------------
# Wider seed spread than CUBA (the random initial conductances): 15% on the
# rate, 0.15 on the CV.
coba      rate_hz       ~  coba:summary.median_rate_hz          rel=0.15   full
coba      cv_isi        ~  coba:summary.median_cv_isi           abs=0.15   full
coba      synchrony_hz  ~  coba:summary.median_synchrony_hz     factor=1.5 full
coba      w_rate_hz     >  8
coba      w_rate_hz     <  40
coba      cv_isi        >  1.0                                         full
# --- Brunel 2000 Fig. 8, scale 0.5, vs Brian2 at scale 1 ---------------------
# (tests/reference/README.md suggests bounds for scale 1; these follow them
# where the reduced scale allows.)  Rates: the finite-size change from scale
# 1 to 0.5 measured here is 3-8%: 15% (SI slow, at full size: 20%, its seed
# spread in Brian2 alone is -4%..+15%).  SR fires ~6% faster than
# Brian2 at any scale (full size: 330 Hz): its period (~3 ms) is set by the
# delay, and Brian2 applies arriving input after the threshold test of its
# step, so its threshold sees it one step later (an effective 1.6 ms instead
# of Brunel's 1.5 ms): 10%.  CV: 0.1 absolute (0.08 for AI), 0.15 for SI
# fast, whose CV rises by ~0.1 from scale 1 (0.60 here, Brian2 0.62) to
# scale 0.5 (0.73): more shared input.  Oscillation frequencies of SI fast
# (~180 Hz) and SI slow (~21 Hz): 15% and 25%; SI slow's global modulation
# (full size, comparable): 25%.
A_SR      w_rate_hz     ~  brunel:states.A_SR.summary.median_window_rate_hz       rel=0.10 full
A_SR      cv_isi        ~  brunel:states.A_SR.summary.median_cv_isi               abs=0.05 full
B_SIfast  w_rate_hz     ~  brunel:states.B_SI_fast.summary.median_window_rate_hz  rel=0.15 full
B_SIfast  cv_isi        ~  brunel:states.B_SI_fast.summary.median_cv_isi          abs=0.15 full
B_SIfast  pop_peak_hz   ~  brunel:states.B_SI_fast.summary.median_pop_peak_hz     rel=0.15 full
C_AI      w_rate_hz     ~  brunel:states.C_AI.summary.median_window_rate_hz       rel=0.15 full
C_AI      cv_isi        ~  brunel:states.C_AI.summary.median_cv_isi               abs=0.08 full
D_SIslow  w_rate_hz     ~  brunel:states.D_SI_slow.summary.median_window_rate_hz  rel=0.20 full
D_SIslow  cv_isi        ~  brunel:states.D_SI_slow.summary.median_cv_isi          abs=0.10 full
D_SIslow  pop_peak_hz   ~  brunel:states.D_SI_slow.summary.median_pop_peak_hz     rel=0.25 full
D_SIslow  pop_rate_cv   ~  brunel:states.D_SI_slow.summary.median_pop_rate_cv     rel=0.25 full
# --- the AI state at full size: the Brian2 model itself ----------------------
# Same size, Brian2's seed spread 37.9-40.7 Hz: 8% on the rate, 0.05 on the
# CV, 25% on the synchrony measures (which depend on N: only comparable
# here), and pop_rate_cv < 0.6 as the reference README suggests.
C_AI_full w_rate_hz     ~  brunel:states.C_AI.summary.median_window_rate_hz       rel=0.08 full
C_AI_full cv_isi        ~  brunel:states.C_AI.summary.median_cv_isi               abs=0.05 full
C_AI_full synchrony_hz  ~  brunel:states.C_AI.summary.median_synchrony_hz         rel=0.25 full
C_AI_full pop_rate_cv   ~  brunel:states.C_AI.summary.median_pop_rate_cv          rel=0.25 full
C_AI_full pop_rate_cv   <  0.6                                                             full
# --- Brunel 2000, published mean-field rates (p. 196; quoted second-hand, see
# tests/reference/brunel_brian2.json): in the SI states the stationary
# mean-field rate only approximates the simulated mean: 25%.
B_SIfast  w_rate_hz     ~  brunel:states.B_SI_fast.published.mean_field_rate_hz   rel=0.25 full
C_AI      w_rate_hz     ~  brunel:states.C_AI.published.mean_field_rate_hz        rel=0.25 full
D_SIslow  w_rate_hz     ~  brunel:states.D_SI_slow.published.mean_field_rate_hz   rel=0.25 full
# --- Brunel 2000 Fig. 8, qualitative (the figure caption), any seed ----------
# A SR: "almost fully synchronized network, neurons firing regularly at high
# rates": CV far below 1, every neuron active, strong global modulation.
A_SR      w_rate_hz     >  150
A_SR      cv_isi        <  0.05
A_SR      frac_active   >  0.99
A_SR      pop_rate_cv   >  0.5
# B SI fast: "fast oscillation of the global activity, neurons firing
# irregularly at a rate lower than the global frequency" (a clear peak at
# 160-200 Hz, power ratio > 40 as the reference README suggests).
B_SIfast  pop_peak_hz   >  160
B_SIfast  pop_peak_hz   <  200
B_SIfast  pop_peak_power_ratio  >  40
B_SIfast  w_rate_hz     <  B_SIfast:pop_peak_hz
B_SIfast  cv_isi        >  0.4
# C AI: "stationary global activity, irregularly firing neurons".
C_AI      w_rate_hz     >  20
C_AI      w_rate_hz     <  60
C_AI      cv_isi        >  0.25
# D SI slow: "slow oscillation of the global activity, neurons firing
# irregularly at very low rates": a strong global rhythm well below SI
# fast's (15-30 Hz over 1 s; a 0.3 s window resolves only 3.3 Hz); at ~5 Hz
# a short window holds too few ISIs for the CV bound.
D_SIslow  w_rate_hz     <  15
D_SIslow  pop_peak_hz   >  5
D_SIslow  pop_peak_hz   <  40
D_SIslow  pop_peak_hz   >  15                                               full
D_SIslow  pop_peak_hz   <  30                                               full
D_SIslow  pop_rate_cv   >  1.3
D_SIslow  cv_isi        >  0.3                                              full
# The orderings that hold in every Brian2 seed (tests/reference/README.md;
# A, B, C at scale 0.5, D at full size: these measures hardly depend on N,
# except fano_pop, compared only among A, B, C): rate SR > SI fast > AI > SI slow;
# regularity: SR's CV far below every other state's; global modulation
# (pop_rate_cv) SI slow > SI fast > AI; synchrony (fano_pop) SR > SI fast > AI.
A_SR      w_rate_hz     >  B_SIfast:w_rate_hz
B_SIfast  w_rate_hz     >  C_AI:w_rate_hz
C_AI      w_rate_hz     >  D_SIslow:w_rate_hz
B_SIfast  cv_isi        >  A_SR:cv_isi
C_AI      cv_isi        >  A_SR:cv_isi
D_SIslow  cv_isi        >  A_SR:cv_isi
D_SIslow  pop_rate_cv   >  B_SIfast:pop_rate_cv
B_SIfast  pop_rate_cv   >  C_AI:pop_rate_cv
A_SR      fano_pop      >  B_SIfast:fano_pop
B_SIfast  fano_pop      >  C_AI:fano_pop
CHECKS
[ "$stdlib_rc" = 0 ] && [ "$science_rc" = 0 ]
