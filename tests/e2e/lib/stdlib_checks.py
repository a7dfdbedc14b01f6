#!/usr/bin/python3
"""Single-neuron checks of std.neurons against closed forms and fine-step
reference integrations.  Usage: stdlib_checks.py OUT

OUT is the output of the model that tests/e2e/examples_science.sh writes
(stdlib_neurons): isolated neurons of each standard model, and the two
built-in sources driving LIFDelta and LIFCond neurons.  dt = 0.1 ms, 1 s.
Prints one line per check and "stdlib: N passed, N failed"; exits 1 on a
failure.
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spikestats import read_spikes  # noqa: E402

npass = nfail = 0


def check(ok, what):
    global npass, nfail
    print(('ok   ' if ok else 'FAIL ') + what)
    npass += bool(ok)
    nfail += not ok


def main():
    s = read_spikes(sys.argv[1])

    # LIF (CUBA defaults), no input: v relaxes from v_reset = -60 mV towards
    # v_rest = -49 mV and crosses v_th = -50 mV after tau_m ln(11); with the
    # 5 ms refractory period every ISI is 5 + 20 ln 11 = 52.96 ms (exact
    # integration: the discrete ISI is that rounded up to the step, 53.0 ms).
    t, i = s['single.lif']
    isi = np.concatenate([np.diff(t[i == k]) for k in range(10)])
    want = 5 + 20 * math.log(11)
    check(isi.size > 100 and np.all(np.abs(isi - want) <= 0.1 + 1e-9),
          f'LIF isolated: every ISI {np.unique(np.round(isi, 3))} ms within 0.1 ms of '
          f'5 + 20 ln 11 = {want:.3f} ms')

    # Izhikevich RS, I = 10 (mV/ms): reference forward Euler with a 0.5 us
    # step: first spike 3.13 ms, then a regular ISI of 44.82 ms (after the
    # first, 23.1 ms).  rk4 at 0.1 ms and spike detection on the grid: 0.3 ms.
    t, _ = s['single.izh']
    check(t.size > 5 and abs(t[0] - 3.13) <= 0.3,
          f'Izhikevich RS I=10: first spike {t[0] if t.size else None} ms (ref 3.13)')
    check(t.size > 5 and abs(np.diff(t)[-1] - 44.82) <= 0.3,
          f'Izhikevich RS I=10: steady ISI {np.diff(t)[-1] if t.size > 1 else None} ms (ref 44.82)')

    # AdEx, Brette & Gerstner (2005) Table 1, I = 1 nA, cut at -40.4 mV:
    # reference forward Euler with a 0.01 us step: 31 spikes in 1 s, first at
    # 11.73 ms, first ISI 13.52 ms, steady ISI 36.05 ms (spike-frequency
    # adaptation).
    t, _ = s['single.adex']
    d = np.diff(t)
    check(abs(t.size - 31) <= 1, f'AdEx I=1nA: {t.size} spikes in 1 s (ref 31)')
    check(t.size > 3 and abs(t[0] - 11.73) <= 0.3,
          f'AdEx I=1nA: first spike {t[0] if t.size else None} ms (ref 11.73)')
    check(d.size > 3 and abs(d[0] - 13.52) <= 0.3 and abs(d[-1] - 36.05) <= 0.3,
          f'AdEx I=1nA: first ISI {d[0] if d.size else None}, last '
          f'{d[-1] if d.size else None} ms (ref 13.52, 36.05): adaptation')

    # SpikeTimes: times [10, 20, 20.04, 30] ms of neurons [0, 1, 2, 1] land in
    # the steps that contain them.
    t, i = s['src.times']
    check(list(np.round(t, 6)) == [10.0, 20.0, 20.0, 30.0] and list(i) == [0, 1, 2, 1],
          f'SpikeTimes: {list(t)} {list(i)} == [10, 20, 20, 30] [0, 1, 2, 1]')

    # LIFDelta: a 25 mV jump (one_to_one, delay one step) lifts v from 0 over
    # theta = 20 mV: a spike in the step after each source spike.
    t, i = s['single.delta']
    check(list(np.round(t, 6)) == [10.1, 20.1, 20.1, 30.1] and list(i) == [0, 1, 2, 1],
          f'LIFDelta: {list(t)} {list(i)} == [10.1, 20.1, 20.1, 30.1] [0, 1, 2, 1]')

    # LIFCond at rest (v0 = E_L, no input) is silent until the 50 nS
    # conductance kicks of the spike times (all to all) arrive.
    t, i = s['single.cond']
    check(t.size > 0 and t.min() >= 10.1 and set(i) == set(range(10)),
          f'LIFCond: silent before the input, then all 10 fire (first at '
          f'{t.min() if t.size else None} ms)')

    # Poisson: 1000 neurons at 10 Hz for 1 s: 10000 expected spikes, sd 100:
    # the rate within 0.5 Hz (5 sd).  ISIs exponential: the CV of all ISIs
    # pooled is near 1 (a Monte-Carlo of exponential trains cut to 1 s and
    # binned to 0.1 ms gives 0.97-0.985; the per-neuron CV, from ~9 ISIs
    # each, would be biased down to ~0.85).
    t, i = s['src.poisson']
    rate = t.size / 1000 / 1.0
    d = np.concatenate([np.diff(t[i == k]) for k in range(1000)])
    cv = float(d.std() / d.mean())
    check(abs(rate - 10) <= 0.5, f'Poisson 10 Hz: rate {rate:.3f} Hz within 0.5 Hz')
    check(0.93 <= cv <= 1.03, f'Poisson 10 Hz: CV of the pooled ISIs {cv:.3f} in [0.93, 1.03]')

    print(f'stdlib: {npass} passed, {nfail} failed')
    return 1 if nfail else 0


if __name__ == '__main__':
    sys.exit(main())
