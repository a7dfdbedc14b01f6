#!/usr/bin/python3
"""Brian2 reference statistics for Engram: rate, ISI irregularity, synchrony.

Runs one of three models in Brian2 cpp_standalone mode, records every spike
with a SpikeMonitor and prints ONE JSON line on stdout: the fields of the
peer benchmark harness (_common.run_and_report: spikes, rate_hz, syn_events,
synapses, N, seed, run_wall_s, ...) plus a "stats" object.

Models (identical to the peer scripts in shared/bench/peers/brian2/, same
construction order, so a given --seed gives the same spikes as those):
  --model brunel  Brunel (2000) model A, as brunel.py (--g, --eta)
  --model cuba    CUBA (Brette et al. 2007 benchmark 2), as cuba.py
  --model coba    COBA (Brette et al. 2007 benchmark 1), as coba.py
The only difference from the peer scripts is SpikeMonitor(record=True).

"stats" (computed over the analysis window [t_skip, duration]):
  window_s        [t_skip, duration] in seconds (default t_skip 0.1 s, to
                  drop the start-up transient: Brunel starts all v at 0)
  rate_hz         spikes in window / N / window length
  cv_isi          mean over neurons with >= 3 spikes in the window of
                  std(ISI)/mean(ISI) (population std, ddof = 0)
  cv_neurons      number of neurons that entered cv_isi
  frac_active     fraction of neurons with >= 1 spike in the window
  fano_pop        var/mean of the population spike count in 1 ms bins
                  [t_skip + k ms, t_skip + (k+1) ms), on the dt grid
                  (1 for independent Poisson neurons; >> 1 = synchrony)
  synchrony_hz    var/mean over time of the population rate histogram
                  r_k = count_k / (N * 1 ms), in Hz (= fano_pop / (N * 1 ms))
  pop_rate_cv     std/mean of the same histogram
  pop_peak_hz     frequency of the largest peak of the power spectrum of the
                  population count in dt (0.1 ms) bins, mean removed,
                  searched in 2..1000 Hz
  pop_peak_power_ratio  that peak's power over the mean power in 2..1000 Hz
                  (~ few for flat spectra, >> 10 for a clear oscillation)

Usage:
  /usr/bin/python3 brunel_stats_brian2.py --model brunel --g 5 --eta 2 \
      --duration 1 --seed 1 [--t-skip 0.1] [--builddir DIR]

The peer helpers (_common.py) are found via $ENGRAM_BRIAN2_PEERS, else
<repo>/shared/bench/peers/brian2, else /work/shared/bench/peers/brian2.
Needs Debian's python3-brian (2.5.1), g++ and make.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = [
    os.environ.get('ENGRAM_BRIAN2_PEERS', ''),
    os.path.join(_HERE, '..', '..', 'shared', 'bench', 'peers', 'brian2'),
    '/work/shared/bench/peers/brian2',
]
for _c in _CANDIDATES:
    if _c and os.path.isfile(os.path.join(_c, '_common.py')):
        sys.path.insert(0, os.path.abspath(_c))
        break
else:
    sys.exit('brunel_stats_brian2.py: cannot find the peer _common.py; '
             'set ENGRAM_BRIAN2_PEERS')
from _common import make_parser, setup, run_and_report  # noqa: E402

parser = make_parser(__doc__, default_duration=1.0)
parser.add_argument('--model', choices=('brunel', 'cuba', 'coba'),
                    default='brunel')
parser.add_argument('--g', type=float, default=5.0,
                    help='Brunel: relative inhibitory strength')
parser.add_argument('--eta', type=float, default=2.0,
                    help='Brunel: nu_ext / nu_thr')
parser.add_argument('--t-skip', type=float, default=0.1,
                    help='seconds dropped at the start before the statistics')
args = parser.parse_args()
b2, builddir = setup(args)
from brian2 import *  # noqa: E402,F401,F403


def spike_stats(np, mon, n, t0, t1, bin_s=1e-3):
    """Statistics of a recorded SpikeMonitor over [t0, t1) (seconds)."""
    ii = np.asarray(mon.i[:], dtype=np.int64)
    tt = np.asarray(mon.t[:] / second, dtype=np.float64)
    sel = (tt >= t0) & (tt < t1)
    ii, tt = ii[sel], tt[sel]
    width = t1 - t0
    out = {'window_s': [t0, t1],
           'spikes': int(ii.size),
           'rate_hz': float(ii.size / n / width)}

    # per-neuron ISI CV (neurons with >= 3 spikes)
    order = np.lexsort((tt, ii))
    ii, tt = ii[order], tt[order]
    counts = np.bincount(ii, minlength=n)
    out['frac_active'] = float(np.count_nonzero(counts) / n)
    cvs = []
    starts = np.concatenate(([0], np.cumsum(counts)))
    for k in np.nonzero(counts >= 3)[0]:
        isi = np.diff(tt[starts[k]:starts[k + 1]])
        m = isi.mean()
        if m > 0:
            cvs.append(isi.std() / m)
    out['cv_isi'] = float(np.mean(cvs)) if cvs else None
    out['cv_neurons'] = len(cvs)

    # population histograms on the integer time-step grid (spike times
    # are multiples of dt, so rounding t/dt is exact): count c_k in 1 ms
    # bins [t0 + k ms, t0 + (k+1) ms) for the variance measures, and a
    # dt-resolution count for the spectrum (1 ms bins alias the harmonics
    # of the ~300 Hz SR rhythm)
    dt = float(defaultclock.dt / second)
    step = np.rint((tt - t0) / dt).astype(np.int64)
    nsteps = int(round(width / dt))
    per_bin = int(round(bin_s / dt))
    step = step[(step >= 0) & (step < nsteps)]
    nb = nsteps // per_bin
    k = step // per_bin
    c = np.bincount(k[k < nb], minlength=nb).astype(np.float64)
    mc = c.mean()
    if mc > 0:
        out['fano_pop'] = float(c.var() / mc)
        r = c / (n * bin_s)
        out['synchrony_hz'] = float(r.var() / r.mean())
        out['pop_rate_cv'] = float(r.std() / r.mean())
        cf = np.bincount(step, minlength=nsteps).astype(np.float64)
        spec = np.abs(np.fft.rfft(cf - cf.mean())) ** 2
        f = np.fft.rfftfreq(nsteps, d=dt)
        band = (f >= 2.0) & (f <= 1000.0)
        sb, fb = spec[band], f[band]
        j = int(np.argmax(sb))
        out['pop_peak_hz'] = float(fb[j])
        mean_p = float(sb.mean())
        out['pop_peak_power_ratio'] = (float(sb[j] / mean_p)
                                       if mean_p > 0 else None)
    else:
        out.update(fano_pop=None, synchrony_hz=None, pop_rate_cv=None,
                   pop_peak_hz=None, pop_peak_power_ratio=None)
    out['bin_ms'] = bin_s * 1e3
    return out


extra_fields = {}

if args.model == 'brunel':
    # --- identical to shared/bench/peers/brian2/brunel.py ----------------
    N_E = int(round(10000 * args.scale))
    gamma = 0.25
    N_I = int(round(gamma * N_E))
    N = N_E + N_I
    C_E = 1000
    epsilon = C_E / N_E
    C_ext = C_E
    tau = 20 * ms
    theta = 20 * mV
    V_r = 10 * mV
    tau_rp = 2 * ms
    J = 0.1 * mV
    D = 1.5 * ms
    g = args.g
    nu_thr = theta / (J * C_E * tau)
    nu_ext = args.eta * nu_thr
    defaultclock.dt = 0.1 * ms
    neurons = NeuronGroup(N, 'dv/dt = -v/tau : volt (unless refractory)',
                          threshold='v > theta', reset='v = V_r',
                          refractory=tau_rp, method='exact')
    excitatory_neurons = neurons[:N_E]
    inhibitory_neurons = neurons[N_E:]
    exc_synapses = Synapses(excitatory_neurons, target=neurons,
                            on_pre='v += J', delay=D)
    exc_synapses.connect(p=epsilon)
    inhib_synapses = Synapses(inhibitory_neurons, target=neurons,
                              on_pre='v += -g*J', delay=D)
    inhib_synapses.connect(p=epsilon)
    external_poisson_input = PoissonInput(target=neurons, target_var='v',
                                          N=C_ext, rate=nu_ext, weight=J)
    s_mon = SpikeMonitor(neurons)  # record=True (the only change)
    net = Network(neurons, exc_synapses, inhib_synapses,
                  external_poisson_input, s_mon)
    paths = [(exc_synapses, s_mon), (inhib_synapses, s_mon)]
    extra_fields = {'g': g, 'eta': args.eta,
                    'nu_ext_hz': float(nu_ext / Hz),
                    'ext_events': int(round(N * C_ext * float(nu_ext / Hz)
                                            * args.duration))}
else:
    # --- identical to shared/bench/peers/brian2/{cuba,coba}.py ------------
    N = int(round(4000 * args.scale))
    NE = int(round(3200 * args.scale))
    p = 0.02 / args.scale
    taum = 20*ms
    taue = 5*ms
    taui = 10*ms
    Vt = -50*mV
    Vr = -60*mV
    if args.model == 'cuba':
        El = -49*mV
        eqs = '''
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
'''
        P = NeuronGroup(N, eqs, threshold='v>Vt', reset='v = Vr',
                        refractory=5*ms, method='linear')
        P.v = 'Vr + rand() * (Vt - Vr)'
        P.ge = 0*mV
        P.gi = 0*mV
        we = (60*0.27/10)*mV
        wi = (-20*4.5/10)*mV
    else:
        El = -60*mV
        Ee = 0*mV
        Ei = -80*mV
        eqs = '''
dv/dt  = (ge*(Ee-v) + gi*(Ei-v) - (v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : 1
dgi/dt = -gi/taui : 1
'''
        P = NeuronGroup(N, eqs, threshold='v>Vt', reset='v = Vr',
                        refractory=5*ms, method='euler')
        P.v = 'El + (randn()*5 - 5)*mV'
        P.ge = 'randn()*1.5 + 4'
        P.gi = 'randn()*12 + 20'
        we = 6./10.
        wi = 67./10.
    Ce = Synapses(P, P, on_pre='ge += we')
    Ci = Synapses(P, P, on_pre='gi += wi')
    Ce.connect(f'i<{NE}', p=p)
    Ci.connect(f'i>={NE}', p=p)
    s_mon = SpikeMonitor(P)  # record=True (the only change)
    net = Network(P, Ce, Ci, s_mon)
    paths = [(Ce, s_mon), (Ci, s_mon)]


def _extra(np):
    d = dict(extra_fields)
    d['model_variant'] = 'brunel_stats_brian2.py'
    d['stats'] = spike_stats(np, s_mon, N, min(args.t_skip, args.duration),
                             args.duration)
    return d


run_and_report(args.model, net, args.duration, args, builddir, N,
               [s_mon], paths, extra=_extra, namespace=globals())
