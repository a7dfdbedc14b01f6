#!/usr/bin/python3
"""Weight and rate statistics of a plastic Engram run, as one flat JSON object.

Reads OUT/summary.json (populations, `projections` with the final weights:
synapses, plastic, weight {mean, min, max, histogram {edges, counts}}, and the
parameters), OUT/spikes.h5 (SONATA) and OUT/weights.h5 (per projection
/<name>/weights [samples x synapses] when every synapse is recorded,
/<name>/mean, /<name>/times in ms, /<name>/source, /<name>/target).
No h5py: datasets are exported with h5dump in binary, as spikestats.py does.

Usage:
  plasticity_stats.py OUT [--window-frac F | --window-ms T0:T1]
                          [--pop LABEL=POP]... [--proj LABEL=PROJ]...
                          [--pool LABEL=PROJ1,PROJ2,...]...

Prints {KEY: value} with, for each
  --pop LABEL=POP    (a recorded population)
      LABEL_rate_hz     spikes in the window / size / window length
      LABEL_cv          mean over neurons with >= 3 spikes in the window of
                        std/mean of their ISIs (population std), as
                        spikestats.py (for one neuron: its ISI CV)
      LABEL_rate_whole_hz  summary.json rate over the whole run
  --proj LABEL=PROJ  (a projection; the bound w_hi is PROJ.w_hi, else the
                     histogram's upper edge)
      LABEL_synapses, LABEL_w_mean (in the weight's unit), LABEL_w_min,
      LABEL_w_max, LABEL_w_hi (the upper bound), LABEL_w_mean_rel (mean / w_hi)
      and, from the last sample of weights.h5 when it holds every synapse
      and was taken at the end of the run (else from the histogram of
      summary.json, whose bins must then fall on 0.1 and 0.9 w_hi):
      LABEL_w_below   fraction of weights < 0.1 w_hi
      LABEL_w_above   fraction of weights > 0.9 w_hi
      LABEL_w_extreme their sum (bimodality of additive STDP)
      LABEL_w_mid     fraction in [0.3, 0.7] w_hi (weights sample only)
      and, when weights.h5 has the projection:
      LABEL_w_mean_peak      the largest sampled mean weight of the run (for a
                             one-synapse projection: that synapse's peak)
      LABEL_w_mean_peak_rel  the same / w_hi
      LABEL_w_mean_trace     [[t ms, mean], ...] (only with --traces)
  --pool LABEL=P1,P2,...  several projections as one
      LABEL_synapses, LABEL_w_mean (synapse-weighted mean of the summaries)
The window defaults to the last 20% of the run (--window-frac 0.2).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spikestats import H5_TYPES, h5_datasets, read_spikes  # noqa: E402


def h5_read_nd(path, dset):
    """A dataset of any rank as a numpy array of its shape (h5dump -H for
    type and dimensions, h5dump -b LE for the bytes)."""
    head = subprocess.run(['h5dump', '-H', '-d', dset, path], check=True,
                          capture_output=True, text=True).stdout
    m = re.search(r'DATATYPE\s+(\S+)', head)
    if not m or m.group(1) not in H5_TYPES:
        raise SystemExit(f'plasticity_stats: {dset}: unsupported datatype '
                         f'{m.group(1) if m else "?"}')
    dtype = np.dtype(H5_TYPES[m.group(1)]).newbyteorder('<')
    if re.search(r'DATASPACE\s+NULL', head):
        return np.zeros(0, dtype=dtype)
    m = re.search(r'DATASPACE\s+SIMPLE\s*\{\s*\(([^)]*)\)', head)
    if not m:
        raise SystemExit(f'plasticity_stats: {dset}: cannot read its dataspace')
    shape = tuple(int(x) for x in m.group(1).split(','))
    if 0 in shape:
        return np.zeros(shape, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        binf = os.path.join(tmp, 'd.bin')
        subprocess.run(['h5dump', '-d', dset, '-b', 'LE', '-o', binf, path],
                       check=True, capture_output=True)
        a = np.fromfile(binf, dtype=dtype)
    if a.size != int(np.prod(shape)):
        raise SystemExit(f'plasticity_stats: {dset}: {a.size} values for shape {shape}')
    return a.reshape(shape)


def read_weights(out_dir, proj):
    """{times (ms), mean, weights (samples x synapses or None), source,
    target} of one projection in weights.h5, or None if not recorded."""
    path = os.path.join(out_dir, 'weights.h5')
    if not os.path.isfile(path):
        return None
    sets = h5_datasets(path)
    # the group is named after the projection, '%' written %25 and '/' %2F
    base = '/' + proj.replace('%', '%25').replace('/', '%2F')
    if f'{base}/mean' not in sets:
        return None
    rec = {'times': h5_read_nd(path, f'{base}/times').astype(np.float64),
           'mean': h5_read_nd(path, f'{base}/mean').astype(np.float64),
           'weights': None, 'source': None, 'target': None}
    if f'{base}/weights' in sets:
        rec['weights'] = h5_read_nd(path, f'{base}/weights').astype(np.float64)
        if rec['weights'].ndim == 1:
            rec['weights'] = rec['weights'].reshape(rec['times'].size, -1)
    for k in ('source', 'target'):
        if f'{base}/{k}' in sets:
            rec[k] = h5_read_nd(path, f'{base}/{k}').astype(np.int64)
    return rec


def window_of(summ, a):
    dur = float(summ['duration_ms'])
    if a.window_ms:
        t0, t1 = (float(x) for x in a.window_ms.split(':'))
    else:
        t0, t1 = dur * (1.0 - a.window_frac), dur
    return max(0.0, t0), min(dur, t1)


def pop_stats(summ, spikes, pop, t0, t1):
    if pop not in summ['populations']:
        raise SystemExit(f'plasticity_stats: no population {pop}')
    size = int(summ['populations'][pop]['size'])
    if pop not in spikes:
        raise SystemExit(f'plasticity_stats: population {pop} not recorded in spikes.h5')
    t, i = spikes[pop]
    sel = (t >= t0) & (t < t1)
    t, i = t[sel], i[sel]
    width_s = (t1 - t0) / 1e3
    out = {'rate_hz': float(t.size / size / width_s) if size and width_s > 0 else None,
           'rate_whole_hz': summ['populations'][pop]['rate_hz']}
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    counts = np.bincount(i, minlength=size)
    starts = np.concatenate(([0], np.cumsum(counts)))
    cvs = []
    for k in np.nonzero(counts >= 3)[0]:
        isi = np.diff(t[starts[k]:starts[k + 1]])
        if isi.mean() > 0:
            cvs.append(isi.std() / isi.mean())
    out['cv'] = float(np.mean(cvs)) if cvs else None
    return out


def proj_stats(out_dir, summ, proj):
    projs = summ.get('projections', {})
    if proj not in projs:
        raise SystemExit(f'plasticity_stats: no projection {proj} in summary.json '
                         f'(has {sorted(projs)})')
    p = projs[proj]
    w = p['weight']
    hist = w.get('histogram') or {}
    par = summ.get('parameters', {})
    if f'{proj}.w_hi' in par:
        w_hi = float(par[f'{proj}.w_hi']['value'])
    elif hist.get('edges'):
        w_hi = float(hist['edges'][-1])
    else:
        w_hi = None
    out = {'synapses': int(p['synapses']), 'w_mean': w['mean'], 'w_min': w['min'],
           'w_max': w['max'], 'w_hi': w_hi,
           'w_mean_rel': (w['mean'] / w_hi) if (w_hi and w['mean'] is not None) else None}
    rec = read_weights(out_dir, proj)
    final = None
    if rec is not None and rec['weights'] is not None and rec['times'].size and \
            abs(rec['times'][-1] - float(summ['duration_ms'])) < 0.5 * float(summ['dt_ms']):
        final = rec['weights'][-1]
    if w_hi and final is not None and final.size:
        r = final / w_hi
        out['w_below'] = float(np.mean(r < 0.1))
        out['w_above'] = float(np.mean(r > 0.9))
        out['w_mid'] = float(np.mean((r >= 0.3) & (r <= 0.7)))
        out['w_source'] = 'weights.h5'
    elif w_hi and hist.get('edges') and hist.get('counts'):
        e = np.asarray(hist['edges'], dtype=np.float64) / w_hi
        c = np.asarray(hist['counts'], dtype=np.float64)
        n = c.sum() + float(hist.get('outside', 0))
        lo = np.isclose(e, 0.1, atol=1e-9)
        hi = np.isclose(e, 0.9, atol=1e-9)
        if n > 0 and lo.any() and hi.any():
            out['w_below'] = float(c[:int(np.nonzero(lo)[0][0])].sum() / n)
            out['w_above'] = float(c[int(np.nonzero(hi)[0][0]):].sum() / n)
            out['w_source'] = 'summary histogram (bins on 0.1, 0.9 w_hi; > 0.9 read as >= 0.9)'
    if 'w_below' in out:
        out['w_extreme'] = out['w_below'] + out['w_above']
    if rec is not None and rec['mean'].size:
        out['w_mean_peak'] = float(np.nanmax(rec['mean']))
        out['w_mean_peak_rel'] = out['w_mean_peak'] / w_hi if w_hi else None
        out['w_mean_trace'] = [[float(a), float(b)] for a, b in zip(rec['times'], rec['mean'])]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('out')
    ap.add_argument('--window-frac', type=float, default=0.2)
    ap.add_argument('--window-ms', default='')
    ap.add_argument('--pop', action='append', default=[])
    ap.add_argument('--proj', action='append', default=[])
    ap.add_argument('--pool', action='append', default=[])
    ap.add_argument('--traces', action='store_true',
                    help='also print the mean-weight traces of weights.h5')
    a = ap.parse_args()
    with open(os.path.join(a.out, 'summary.json')) as f:
        summ = json.load(f)
    t0, t1 = window_of(summ, a)
    res = {'duration_ms': summ['duration_ms'], 'window_ms': [t0, t1], 'seed': summ['seed']}
    spikes = read_spikes(a.out) if a.pop else {}
    for spec in a.pop:
        label, pop = spec.split('=', 1)
        for k, v in pop_stats(summ, spikes, pop, t0, t1).items():
            res[f'{label}_{k}'] = v
    for spec in a.proj:
        label, proj = spec.split('=', 1)
        for k, v in proj_stats(a.out, summ, proj).items():
            if k == 'w_mean_trace' and not a.traces:
                continue
            res[f'{label}_{k}'] = v
    for spec in a.pool:
        label, names = spec.split('=', 1)
        n = tot = 0.0
        for proj in names.split(','):
            p = summ['projections'][proj]
            n += p['synapses']
            tot += p['synapses'] * (p['weight']['mean'] or 0.0)
        res[f'{label}_synapses'] = int(n)
        res[f'{label}_w_mean'] = tot / n if n else None
    json.dump(res, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
