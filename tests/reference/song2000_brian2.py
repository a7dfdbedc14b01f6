#!/usr/bin/python3
"""Song, Miller & Abbott (2000), Nat Neurosci 3:919-926: competitive Hebbian
learning through STDP, with the paper's parameters, in Brian2
(cpp_standalone).  One run per invocation; prints ONE line of JSON.

Adapted from the peer script shared/bench/peers/brian2/stdp_song.py (itself
Brian2's examples/synapses/STDP.py, which changes the paper's neuron: tau_m
10 ms, E_L -74 mV, no inhibition, a linearised synaptic current, 15 Hz
inputs, g_max 0.01, A+ 0.01).  Here the paper's model (its Methods):

  tau_m dV/dt = V_rest - V + g_ex (E_ex - V) + g_in (E_in - V)
  tau_m 20 ms, V_rest -70 mV, E_ex 0 mV, E_in -70 mV,
  threshold -54 mV, reset -60 mV, no refractory period;
  g_ex, g_in in units of the leak conductance, tau_ex = tau_in = 5 ms;
  1000 excitatory Poisson inputs at `--rate`, peak conductance
  0 <= g_a <= g_max = 0.015; 200 inhibitory Poisson inputs at 10 Hz,
  fixed g_in = 0.05;
  additive all-to-all STDP (event-driven traces), weight changes in units of
  g_max: A+ = 0.005, A-/A+ = 1.05, tau+ = tau- = 20 ms; hard bounds
  [0, g_max].
  Initial weights uniform in [0, g_max] (as Brian2's STDP example; the
  equilibrium of additive STDP does not depend on them).
  Forward Euler at dt = 0.1 ms (the conductance term makes the equation
  non-linear), as examples/stdp_song2000.engram (std.neurons LIFCond).

--plastic 0 keeps the initial weights (no STDP): the control for "how much
does the output rate move with the input rate without plasticity".
--a-plus scales the learning rate (the tests use a faster-learning variant,
A+ = 0.02 = 4x the paper's; A-/A+ stays 1.05).

Measured (JSON fields):
  w_frac_below_10pct / w_frac_above_90pct / w_mean_rel / w_hist  final weights
      relative to g_max (w_hist: 10 bins on [0, 1], counts)
  out_rate_hz, out_cv   output neuron rate and ISI CV over the window
      [t_window_s, duration]; t_window_s = duration - window (default: last
      20% of the run)
  traj  every --sample seconds: t, mean w/g_max, fraction < 0.1, > 0.9,
      output rate in the preceding sample interval

Usage: /usr/bin/python3 song2000_brian2.py --rate 20 [--duration 100]
           [--seed 1] [--plastic 1] [--a-plus 0.005] [--sample 10]
           [--window SECONDS]
       /usr/bin/python3 song2000_brian2.py --all [OUT.json]
           every run of the reference (see ALL_RUNS below; ~15 minutes on
           2 cores, one run after another) aggregated into
           tests/reference/song2000_brian2.json (or OUT.json)
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument('--rate', type=float, default=10.0, help='excitatory input rate, Hz')
ap.add_argument('--duration', type=float, default=100.0, help='seconds')
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--plastic', type=int, default=1)
ap.add_argument('--a-plus', type=float, default=0.005)
ap.add_argument('--sample', type=float, default=10.0, help='trajectory sample, s')
ap.add_argument('--window', type=float, default=None,
                help='rate/CV window at the end of the run, s (default 20%%)')
ap.add_argument('--all', nargs='?', const='', default=None, metavar='OUT',
                help='run the whole reference (ALL_RUNS) and write the JSON')
args = ap.parse_args()

# The reference: (group, rate Hz, duration s, plastic, seeds).
#   test        the runs tests/e2e/plasticity_science.sh compares with:
#               the paper's parameters, 200 s, 20 and 40 Hz
#   plastic_off the same model with frozen (initial, uniform) weights
#   long        the paper's parameters, 1000 s, 10 / 20 / 40 Hz: how far
#               the 200 s runs are from the equilibrium
ALL_RUNS = [
    ('test', 20, 200, 1, [1, 2, 3]),
    ('test', 40, 200, 1, [1, 2, 3]),
    ('plastic_off', 20, 10, 0, [1, 2, 3]),
    ('plastic_off', 40, 10, 0, [1, 2, 3]),
    ('long', 10, 1000, 1, [1]),
    ('long', 20, 1000, 1, [1]),
    ('long', 40, 1000, 1, [1]),
]


def run_all(out_path):
    """Runs every configuration of ALL_RUNS in a fresh process (Brian2's
    standalone device builds once per process) and aggregates them."""
    import json as _json
    import statistics
    import subprocess
    import platform
    me = os.path.abspath(__file__)
    groups = {}
    for group, rate, dur, plastic, seeds in ALL_RUNS:
        for sd in seeds:
            cmd = [sys.executable, me, '--rate', str(rate), '--duration', str(dur),
                   '--plastic', str(plastic), '--seed', str(sd),
                   '--sample', str(min(10, dur))]
            print('+', ' '.join(cmd[1:]), file=sys.stderr, flush=True)
            line = subprocess.run(cmd, check=True, capture_output=True,
                                  text=True).stdout.strip().splitlines()[-1]
            r = _json.loads(line)
            key = f'{group}_{rate}hz'
            groups.setdefault(key, {'group': group, 'rate_in_hz': rate,
                                    'duration_s': dur, 'plastic': plastic,
                                    'runs': []})['runs'].append(r)
    fields = ['out_rate_hz', 'out_cv', 'w_mean_rel', 'w_frac_below_10pct',
              'w_frac_above_90pct', 'w_frac_extreme']
    for g in groups.values():
        for r in g['runs']:
            r['w_frac_extreme'] = r['w_frac_below_10pct'] + r['w_frac_above_90pct']
        summ = {}
        for f in fields:
            vals = [r[f] for r in g['runs'] if r.get(f) is not None]
            summ['median_' + f] = statistics.median(vals) if vals else None
            summ['min_' + f] = min(vals) if vals else None
            summ['max_' + f] = max(vals) if vals else None
        g['summary'] = summ
    # derived: the 2x input step (20 -> 40 Hz), with and without plasticity
    def med(key, f):
        return groups[key]['summary']['median_' + f]
    derived = {
        'rate_ratio_40_20_plastic': med('test_40hz', 'out_rate_hz') / med('test_20hz', 'out_rate_hz'),
        'rate_ratio_40_20_off': med('plastic_off_40hz', 'out_rate_hz') / med('plastic_off_20hz', 'out_rate_hz'),
        'w_mean_ratio_40_20': med('test_40hz', 'w_mean_rel') / med('test_20hz', 'w_mean_rel'),
    }
    import brian2 as _b2
    import numpy as _np
    gpp = subprocess.run(['g++', '--version'], capture_output=True, text=True).stdout.splitlines()[0]
    doc = {
        'model': 'Song, Miller & Abbott (2000) single neuron with additive STDP; '
                 'tests/reference/song2000_brian2.py (its docstring has the equations)',
        'brian2': _b2.__version__,
        'tools': {'python': platform.python_version(), 'numpy': _np.__version__, 'g++': gpp},
        'command': '/usr/bin/python3 tests/reference/song2000_brian2.py --all',
        'definitions': {
            'out_rate_hz': 'output spikes in the last 20% of the run / its length',
            'out_cv': 'std/mean of the output ISIs in that window',
            'w_mean_rel': 'mean final weight / g_max',
            'w_frac_below_10pct': 'fraction of final weights < 0.1 g_max',
            'w_frac_above_90pct': 'fraction of final weights > 0.9 g_max',
            'w_frac_extreme': 'the sum of the two (bimodality)',
            'w_hist': '10 bins on [0, 1] g_max, counts of 1000 synapses',
            'traj': 'every 10 s: t, mean w/g_max, frac < 0.1, frac > 0.9, '
                    'output rate in the preceding 10 s',
        },
        'derived': derived,
        'configs': groups,
    }
    out_path = out_path or os.path.join(os.path.dirname(me), 'song2000_brian2.json')
    with open(out_path, 'w') as f:
        _json.dump(doc, f, indent=1)
        f.write('\n')
    print('wrote', out_path, file=sys.stderr)


if args.all is not None:
    run_all(args.all)
    sys.exit(0)

warnings.simplefilter('ignore')
t_start = time.perf_counter()
import numpy as np  # noqa: E402
from brian2 import (set_device, prefs, seed, device, ms, mV, Hz, second,  # noqa: E402
                    PoissonGroup, NeuronGroup, Synapses, SpikeMonitor,
                    StateMonitor, Network, defaultclock)

prefs.logging.console_log_level = 'WARNING'
builddir = tempfile.mkdtemp(prefix='song2000_b2_')
set_device('cpp_standalone', directory=builddir, build_on_run=False)
seed(args.seed)
defaultclock.dt = 0.1 * ms

N_E, N_I = 1000, 200
tau_m = 20 * ms
V_rest = -70 * mV
E_ex = 0 * mV
E_in = -70 * mV
V_th = -54 * mV
V_reset = -60 * mV
tau_ex = 5 * ms
tau_in = 5 * ms
g_max = 0.015
g_in = 0.05
tau_plus = 20 * ms
tau_minus = 20 * ms
A_plus = args.a_plus
A_minus = 1.05 * A_plus
dApre = A_plus * g_max
dApost = -A_minus * g_max

post = NeuronGroup(1, '''dv/dt = (V_rest - v + g_ex * (E_ex - v) + g_in_ * (E_in - v)) / tau_m : volt
                         dg_ex/dt = -g_ex / tau_ex : 1
                         dg_in_/dt = -g_in_ / tau_in : 1''',
                   threshold='v > V_th', reset='v = V_reset', method='euler')
post.v = V_rest
exc = PoissonGroup(N_E, rates=args.rate * Hz)
inh = PoissonGroup(N_I, rates=10 * Hz)
if args.plastic:
    S = Synapses(exc, post,
                 '''w : 1
                    dApre/dt = -Apre / tau_plus : 1 (event-driven)
                    dApost/dt = -Apost / tau_minus : 1 (event-driven)''',
                 on_pre='''g_ex += w
                        Apre += dApre
                        w = clip(w + Apost, 0, g_max)''',
                 on_post='''Apost += dApost
                         w = clip(w + Apre, 0, g_max)''')
else:
    S = Synapses(exc, post, 'w : 1', on_pre='g_ex += w')
S.connect()
S.w = 'rand() * g_max'
I = Synapses(inh, post, on_pre='g_in_ += g_in')
I.connect()
out = SpikeMonitor(post)
wmon = StateMonitor(S, 'w', record=np.arange(N_E), dt=args.sample * second)

net = Network(post, exc, inh, S, I, out, wmon)
net.run(args.duration * second, namespace=dict(globals()))
device.build(directory=builddir, compile=True, run=True, with_output=False)

w = np.asarray(S.w[:]) / g_max
ts = np.asarray(out.t / second)
dur = args.duration
win = args.window if args.window is not None else 0.2 * dur
t0 = dur - win
sel = ts[ts >= t0]
isi = np.diff(sel)
res = {
    'model': 'song2000', 'brian2': __import__('brian2').__version__,
    'rate_in_hz': args.rate, 'duration_s': dur, 'seed': args.seed,
    'plastic': args.plastic, 'a_plus': A_plus, 'a_minus_over_a_plus': 1.05,
    'g_max': g_max, 'dt_ms': 0.1,
    'window_s': [t0, dur],
    'out_spikes': int(ts.size),
    'out_rate_whole_hz': float(ts.size / dur),
    'out_rate_hz': float(sel.size / win),
    'out_cv': float(isi.std() / isi.mean()) if isi.size >= 2 else None,
    'w_mean_rel': float(w.mean()),
    'w_frac_below_10pct': float(np.mean(w < 0.1)),
    'w_frac_above_90pct': float(np.mean(w > 0.9)),
    'w_hist': np.histogram(w, bins=10, range=(0.0, 1.0))[0].tolist(),
}
# trajectory: weights sampled at k * sample (k = 0, 1, ...), output rate in
# the interval before each sample
wt = np.asarray(wmon.w) / g_max          # synapses x samples
tt = np.asarray(wmon.t / second)
traj = []
for k in range(tt.size):
    a, b = tt[k] - args.sample, tt[k]
    nsp = int(np.count_nonzero((ts >= a) & (ts < b))) if k else 0
    col = wt[:, k]
    traj.append([round(float(tt[k]), 6), round(float(col.mean()), 5),
                 round(float(np.mean(col < 0.1)), 4),
                 round(float(np.mean(col > 0.9)), 4),
                 round(nsp / args.sample, 3) if k else None])
res['traj'] = traj
res['traj_fields'] = ['t_s', 'w_mean_rel', 'frac_below_10pct', 'frac_above_90pct',
                      'out_rate_prev_interval_hz']
res['run_wall_s'] = float(device.timers['run_binary'])
res['total_wall_s'] = time.perf_counter() - t_start
res['command'] = ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])
print(json.dumps(res), flush=True)
shutil.rmtree(builddir, ignore_errors=True)
