#!/bin/bash
# End-to-end science of plasticity: the rules of std.plasticity against
# closed forms, and the three validation examples against their papers and
# (Song et al.) a Brian2 run of the same model
# (tests/reference/song2000_brian2.json, made by
# tests/reference/song2000_brian2.py --all with Brian2 2.5.1).
#
# 1. rules     every rule of stdlib/plasticity.engram in isolation: 200
#              independent Poisson inputs (10 Hz) onto 50 neurons that fire
#              independently of them (20 Hz); the mean weight change of
#              each rule after 50 s against its closed form
#              (tests/e2e/lib/plasticity_rules_check.py: exact in discrete
#              time, spike order of docs/language.md section 12); 3%.
# 2. Song      examples/stdp_song2000.engram, the paper's parameters
#              (A+ = 0.005 g_max), 200 s, inputs at 20 and 40 Hz, seeds
#              1-3; and the same with frozen weights (`syn.plastic=0`),
#              10 s.  Output rate and ISI CV over the last 40 s, final
#              weights from weights.h5.  200 s is not the equilibrium (the
#              group near g_max keeps growing for several hundred seconds,
#              examples/README.md), so the numbers are compared with Brian2
#              at the same time; the paper's claims are checked as they
#              already hold at 200 s.
# 3. Vogels    examples/inhibitory_balance.engram at scale 0.5 (5000
#              neurons, in-degree kept), learning rate 10x (eta = 0.1 nS: the
#              rate settles in ~10 s instead of ~100 s), 20 s, targets
#              rho0 = 5 and 10 Hz; excitatory rate over the last 10 s; and
#              the first second without plasticity (no inhibition onto E).
# 4. Izhikevich examples/distal_reward.engram: the paper's model at the
#              paper's rate, 1800 s, seed 1, dt = 1 ms (the code's step;
#              ~2 minutes, so only at full scale); and a fast variant, learn
#              = 5 (each reward moves the weights 5x more than in the
#              paper), dt = 1 ms, weight update every 20 ms, 300 s, seed 1,
#              with rewards and (full scale) without (reward = 0).
# 5. COBA+STDP examples/coba_stdp.engram (the benchmark), scale 0.5,
#              0.3 s: builds, runs, its E->E weights move.
# About 4 minutes on one core of the 2-core development VM (2 of them the
# 30-minute distal-reward run).
#
# ENGRAM_TEST_SCALE < 1 (sanitizer build): seed 1 only, no second Vogels
# target, no distal-reward control or paper-rate run, and only the checks
# not marked `full` (about 2 minutes).
#
# Run from the repository root:  bash tests/e2e/plasticity_science.sh BUILD_DIR
# Needs: h5ls/h5dump (hdf5-tools), /usr/bin/python3 with numpy.
set -euo pipefail
build=${1:?usage: plasticity_science.sh BUILD_DIR}
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/stats"
fail() { echo "FAIL: $*"; echo "science: 0 passed, 1 failed"; exit 1; }

for m in stdp_song2000 inhibitory_balance distal_reward coba_stdp; do
    echo "+ $engramc build examples/$m.engram"
    "$engramc" build "examples/$m.engram" -o "$tmp/$m" >"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log"; fail "build examples/$m.engram"; }
done

# sim CASE SEED MODEL DURATION STATS_ARGS -- SIM_ARGS...: one run, its
# plasticity_stats.py result in $tmp/stats/CASE_sSEED.json
sim() {
    local case=$1 seed=$2 model=$3 dur=$4 sargs=$5; shift 5
    [ "${1:-}" = "--" ] && shift
    local out="$tmp/out_${case}_$seed" t0 t1
    t0=$(date +%s.%N)
    "$tmp/$model" --quiet --out "$out" --seed "$seed" --duration "$dur" "$@" >"$tmp/run.log" 2>&1 ||
        { cat "$tmp/run.log"; fail "$case seed $seed: simulator failed"; }
    t1=$(date +%s.%N)
    # shellcheck disable=SC2086
    $PY $lib/plasticity_stats.py "$out" $sargs >"$tmp/stats/${case}_s$seed.json"
    $PY - "$tmp/stats/${case}_s$seed.json" "$case" "$seed" "$dur" "$t0" "$t1" "$*" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
keys = [k for k in r if k.endswith(('rate_hz', '_cv', 'w_mean', 'w_mean_rel', 'w_below', 'w_above'))
        and not k.endswith('whole_hz')]
vals = '  '.join(f'{k} {r[k]:.4g}' if isinstance(r[k], (int, float)) else f'{k} {r[k]}' for k in keys)
print(f'  {sys.argv[2]:<9} seed {sys.argv[3]} {sys.argv[4]:>6} {sys.argv[7]:<44} '
      f'{float(sys.argv[6]) - float(sys.argv[5]):5.1f} s  {vals}')
EOF
}

echo "== 1. the rules in isolation (50 s, closed forms)"
cat >"$tmp/rules.engram" <<'MODEL'
model plasticity_rules
use std.neurons (Poisson)
use std.plasticity (STDP, STDPNearest, STDPMult, TripletSTDP, DopamineSTDP,
                    CholinergicHebbian, InhibitoryISP, SynapticScaling)

# A neuron whose firing ignores its synaptic input: a Poisson drive kicks v
# over threshold; the plastic projections end on port syn, which feeds a
# dummy conductance.  So the pre and post trains are independent.
neuron Indep {
  param tau = 20 ms
  state v = 0 mV
  state dummy = 0 nS
  dv/dt = -v / tau
  threshold v > 10 mV
  reset { v = 0 mV }
  input kick -> v
  input syn -> dummy
}

modulator acetylcholine { baseline = 0.5  tau = 1 s }
modulator dopamine { baseline = 1e-4  tau = 100 ms }

region src { population inp = 200 Poisson(rate = 10 Hz) }
region tgt { population cell = 50 Indep }
drive kicks: tgt.cell poisson(rate = 20 Hz, count = 1) weight 20 mV port kick

project stdp_ltp: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity STDP(w_max = 100 nS, A_plus = 0.01 nS, A_minus = 0 nS) }
project stdp_ltd: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity STDP(w_max = 100 nS, A_plus = 0 nS, A_minus = 0.01 nS) }
project stdp: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity STDP(w_max = 100 nS, A_plus = 0.01 nS, A_minus = 0.005 nS) }
project near: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity STDPNearest(w_max = 100 nS, A_plus = 0.01 nS, A_minus = 0.005 nS) }
project mult_ltp: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity STDPMult(w_max = 100 nS, A_plus = 0.05 nS, A_minus = 0 nS) }
project mult_ltd: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity STDPMult(w_max = 100 nS, A_plus = 0 nS, A_minus = 0.05 nS) }
project trip: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity TripletSTDP(w_max = 100 nS, A3_plus = 0.01 nS, A2_minus = 0.002 nS) }
project isp: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity InhibitoryISP(w_max = 100 nS, eta = 0.01 nS, rho0 = 5 Hz) }
project chol: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity CholinergicHebbian(w_max = 100 nS, A_plus = 0.01 nS, A_minus = 0.005 nS) }
project da: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity DopamineSTDP(w_max = 100 nS, A_minus = 1.25 nS, T_update = 10 ms) }
project scale: src.inp -> tgt.cell { connect all_to_all  weight 50 nS  port syn
  plasticity SynapticScaling(target = 5 Hz, eta = 0.001) }

simulation { duration = 50 s  seed = 1 }
record spikes tgt.cell
MODEL
if "$engramc" run "$tmp/rules.engram" -- --quiet --out "$tmp/out_rules" >"$tmp/run.log" 2>&1; then
    $PY $lib/plasticity_rules_check.py "$tmp/out_rules" >"$tmp/stats/rules_s1.json"
    $PY - "$tmp/stats/rules_s1.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'  rates: pre {r["r_pre_hz"]:.3f} Hz, post {r["r_post_hz"]:.3f} Hz')
for k in r:
    if k.endswith('_err'):
        n = k[:-4]
        print(f'  {n:<9} mean dw {r[n + "_measured"]:9.4f} nS, closed form {r[n + "_expected"]:9.4f} nS')
EOF
else
    cat "$tmp/run.log"; fail "engramc run rules"
fi

echo "== 2. Song, Miller & Abbott (2000) (seeds: $seeds)"
song_stats="--pop out=target.cell --proj syn=syn"
for s in $seeds; do
    sim song20 "$s" stdp_song2000 200s "$song_stats" -- --set input_rate=20Hz
    sim song40 "$s" stdp_song2000 200s "$song_stats" -- --set input_rate=40Hz
    sim song20off "$s" stdp_song2000 10s "$song_stats" -- --set input_rate=20Hz --set syn.plastic=0
    sim song40off "$s" stdp_song2000 10s "$song_stats" -- --set input_rate=40Hz --set syn.plastic=0
done
# the 2x input step: ratios of the medians over seeds
$PY - "$tmp/stats" <<'EOF'
import glob, json, os, statistics, sys
d = sys.argv[1]
def med(case, key):
    return statistics.median(json.load(open(p))[key]
                             for p in glob.glob(os.path.join(d, f'{case}_s*.json')))
r = {'rate_ratio_plastic': med('song40', 'out_rate_hz') / med('song20', 'out_rate_hz'),
     'rate_ratio_off': med('song40off', 'out_rate_hz') / med('song20off', 'out_rate_hz'),
     'w_mean_ratio': med('song40', 'syn_w_mean') / med('song20', 'syn_w_mean')}
r['rate_ratio_plastic_over_off'] = r['rate_ratio_plastic'] / r['rate_ratio_off']
json.dump(r, open(os.path.join(d, 'songstep_s0.json'), 'w'))
print('  20 -> 40 Hz: output rate x%.3f with STDP, x%.3f frozen; mean weight x%.3f'
      % (r['rate_ratio_plastic'], r['rate_ratio_off'], r['w_mean_ratio']))
EOF

echo "== 3. Vogels et al. (2011), scale 0.5, eta 0.1 nS, 20 s"
vog="--set scale=0.5 --set eta=0.1nS"
# shellcheck disable=SC2086
sim vog5 1 inhibitory_balance 20s "--pop E=net.E --pop I=net.I --proj ie=i_e --window-ms 10000:20000" -- $vog --set rho0=5Hz
# shellcheck disable=SC2086
[ "$full" = 1 ] && sim vog10 1 inhibitory_balance 20s "--pop E=net.E --pop I=net.I --proj ie=i_e --window-ms 10000:20000" -- $vog --set rho0=10Hz
# shellcheck disable=SC2086
sim vogoff 1 inhibitory_balance 1s "--pop E=net.E --pop I=net.I --window-ms 200:1000" -- $vog --set i_e.plastic=0

echo "== 4. Izhikevich (2007) distal reward (seed 1)"
# The fast variant: learn = 5 (each reward moves the weights 5x more than in
# the paper), dt = 1 ms (the paper's step) and the weight update every 20 ms
# (the code: 10 ms), 300 s.  The paper's rate, 30 minutes at dt = 1 ms (~2
# minutes): full scale only, seed 1 (seeds 2 and 3 and dt = 0.5 ms are in
# examples/README.md).
dr_stats="--proj chosen=chosen --proj ee=ee --pool exc=ee,e_n1,e_n2,n1_e,n2_e,n2_n1,e_i,n1_i,n2_i"
dr_fast="--set learn=5 --set dt=1ms --set T_w=20ms"
# shellcheck disable=SC2086
sim dr_rew 1 distal_reward 300s "$dr_stats" -- $dr_fast
if [ "$full" = 1 ]; then
    # shellcheck disable=SC2086
    sim dr_ctl 1 distal_reward 300s "$dr_stats" -- $dr_fast --set reward=0
    sim dr_paper 1 distal_reward 1800s "$dr_stats" -- --set dt=1ms
fi
# per run: the other excitatory weights (pooled, at the end) relative to the
# peak of the chosen one, the fraction of E->E weights at >= 0.75 w_max, the
# number of rewarded pairings
for f in "$tmp"/stats/dr_*_s*.json; do
    [ -f "$f" ] || continue
    c=$(basename "$f" .json); s=${c##*_s}; c=${c%_s*}
    $PY - "$f" "$tmp/out_${c}_$s/summary.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
peak = r.get('chosen_w_mean_peak')
r['exc_over_peak'] = r['exc_w_mean'] / peak if peak else None
h = s['projections']['ee']['weight']['histogram']
wmax = s['parameters']['ee.w_hi']['value']
n = sum(h['counts']) + h.get('outside', 0)
r['ee_frac_above_075'] = sum(c for e, c in zip(h['edges'], h['counts'])
                             if e >= 0.75 * wmax - 1e-9) / n if n else None
r['rewards'] = sum(s.get('releases', {}).values())
json.dump(r, open(sys.argv[1], 'w'))
print(f'    {sys.argv[1].split("/")[-1]:<14} chosen: peak {peak:.3f} mV, final {r["chosen_w_mean"]:.3f} mV; '
      f'other excitatory mean {r["exc_w_mean"]:.3f} mV; E->E >= 0.75 w_max: '
      f'{r["ee_frac_above_075"]:.4f}; rewarded pairings {r["rewards"]}')
EOF
done

echo "== 5. COBA with STDP (the benchmark), scale 0.5, 0.3 s"
sim cobastdp 1 coba_stdp 300ms "--pop E=net.exc --pop I=net.inh --proj ee=ee --window-ms 100:300" -- --set scale=0.5

echo "== checks"
# CASE METRIC OP REFERENCE [TOLERANCE] [full]   (tests/e2e/lib/science_checks.py)
#   REFERENCE: a number | song2000:PATH into tests/reference/song2000_brian2.json
#   | CASE:METRIC of another case.  A metric is the median over seeds.
reduced=""; [ "$full" = 1 ] || reduced=--reduced
$PY $lib/science_checks.py $reduced "$tmp/stats" tests/reference <<'CHECKS'
# --- 1. rules: mean weight change vs closed form (exact in discrete time;
# measured errors are below 0.5%: 3% leaves room for the seed) -------------
rules  stdp_ltp_err  <  0.03
rules  stdp_ltd_err  <  0.03
rules  stdp_err      <  0.03
rules  near_err      <  0.03
rules  mult_ltp_err  <  0.03
rules  mult_ltd_err  <  0.03
rules  trip_err      <  0.03
rules  isp_err       <  0.03
rules  chol_err      <  0.03
rules  da_err        <  0.03
rules  scale_err     <  0.03
# --- 2. Song et al. (2000) vs Brian2, same model, 200 s, 3 seeds each.
# Brian2's seed spread at 200 s: output rate 15-21 Hz, mean weight
# +-0.01 g_max, fractions +-0.03; 25% on the rates, 0.03 on the mean
# weight, 0.08 / 0.05 on the fractions below 0.1 / above 0.9 g_max, 0.1 on
# the CV.  Frozen weights: the rate is set by the same initial weights
# (Brian2 and Engram draw them differently): 10%.
song20     out_rate_hz    ~  song2000:configs.test_20hz.summary.median_out_rate_hz       rel=0.25 full
song40     out_rate_hz    ~  song2000:configs.test_40hz.summary.median_out_rate_hz       rel=0.25 full
song20     out_cv         ~  song2000:configs.test_20hz.summary.median_out_cv            abs=0.1  full
song40     out_cv         ~  song2000:configs.test_40hz.summary.median_out_cv            abs=0.1  full
song20     syn_w_mean_rel ~  song2000:configs.test_20hz.summary.median_w_mean_rel        abs=0.03 full
song40     syn_w_mean_rel ~  song2000:configs.test_40hz.summary.median_w_mean_rel        abs=0.03 full
song20     syn_w_below    ~  song2000:configs.test_20hz.summary.median_w_frac_below_10pct abs=0.08 full
song40     syn_w_below    ~  song2000:configs.test_40hz.summary.median_w_frac_below_10pct abs=0.08 full
song20     syn_w_above    ~  song2000:configs.test_20hz.summary.median_w_frac_above_90pct abs=0.05 full
song40     syn_w_above    ~  song2000:configs.test_40hz.summary.median_w_frac_above_90pct abs=0.05 full
song20off  out_rate_hz    ~  song2000:configs.plastic_off_20hz.summary.median_out_rate_hz rel=0.1 full
song40off  out_rate_hz    ~  song2000:configs.plastic_off_40hz.summary.median_out_rate_hz rel=0.1 full
songstep   rate_ratio_plastic ~ song2000:derived.rate_ratio_40_20_plastic               abs=0.25 full
songstep   rate_ratio_off     ~ song2000:derived.rate_ratio_40_20_off                   rel=0.1  full
songstep   w_mean_ratio       ~ song2000:derived.w_mean_ratio_40_20                     abs=0.06 full
# --- 2. Song et al. (2000), the paper's claims, any seed ------------------
# Output rate regulated: doubling the input rate leaves the output rate
# almost unchanged (paper: roughly independent of the input rate), while
# with frozen weights it rises ~3x (Brian2: 2.85x); the mean weight falls
# roughly as 1 / input rate; the weights gather at the bounds (bimodal:
# most of them below 0.1 or above 0.9 g_max, an upper group forming at 20
# Hz); the output is irregular (balanced regime, CV near 1).
songstep   rate_ratio_plastic  >  0.75
songstep   rate_ratio_plastic  <  1.35
songstep   rate_ratio_off      >  2.2
songstep   rate_ratio_plastic_over_off < 0.5
songstep   w_mean_ratio        >  0.4
songstep   w_mean_ratio        <  0.65
song20     syn_w_extreme   >  0.45
song40     syn_w_extreme   >  0.65
song20     syn_w_above     >  0.03
song20     syn_w_mid       <  song20off:syn_w_mid
song20     out_cv          >  0.6
song40     out_cv          >  0.6
song20     out_rate_hz     >  8
song20     out_rate_hz     <  30
song40     out_rate_hz     >  8
song40     out_rate_hz     <  30
# --- 3. Vogels et al. (2011): the excitatory rate converges to the target.
# In this recurrent network it settles ~1 Hz above rho0 (6.0 Hz for 5 Hz,
# 11 Hz for 10 Hz: the correlations that inhibition itself creates, see
# examples/README.md): 30%.  It follows the target (x2 within 1.6-2.4), and
# without plasticity (no inhibition onto E) it is many times higher.
vog5       E_rate_hz     ~  5     rel=0.3
vog10      E_rate_hz     ~  10    rel=0.3   full
vog10      E_rate_hz     >  vog5:E_rate_hz  full
vogoff     E_rate_hz     >  25
vog5       ie_w_mean     >  0.5
# --- 4. Izhikevich (2007): the rewarded synapse grows, the others do not -----
# At the paper's rate the chosen synapse (from 0) is at >= 0.75 w_max (3 mV)
# after 30 minutes, while the other excitatory weights stay below a third of
# it, and of w_max, on average (seed 1 at dt = 1 ms: 4.0 mV, others 0.82 mV;
# seeds 1-3 at dt = 0.5 ms: 3.88, 3.99, 4.0 mV, others 0.59-0.66 mV).  In
# the fast variant it peaks at w_max within 5 minutes (seeds 1-3: 4.0, 2.4,
# 4.0 mV); 5x larger steps also raise the others (to ~1.5 mV), so they are
# checked in the paper-rate run only.  Without rewards it stays near 0
# (fast variant, seeds 1-3: peaks 0.18, 0.20, 0.38 mV; paper rate, 30
# minutes: 0.10 mV).
dr_rew     chosen_w_mean_peak_rel  >  0.75
dr_ctl     chosen_w_mean_peak_rel  <  0.2                            full
dr_ctl     chosen_w_mean_peak_rel  <  dr_rew:chosen_w_mean_peak_rel  full
dr_paper   chosen_w_mean_rel       >  0.75                           full
dr_paper   exc_over_peak           <  0.3333                         full
dr_paper   exc_w_mean              <  1.3333                         full
# --- 5. COBA + STDP: runs, stays in the COBA regime, weights move -------------
cobastdp   E_rate_hz     >  5
cobastdp   E_rate_hz     <  60
cobastdp   ee_w_max      >  6.01
cobastdp   ee_w_min      <  5.99
CHECKS
