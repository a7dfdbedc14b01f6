#!/usr/bin/python3
"""Spike statistics of an Engram simulator's output folder.

Reads OUT/spikes.h5 (SONATA: /spikes/<population>/timestamps in ms and
node_ids) and OUT/summary.json (population sizes, duration), and prints one
JSON object.  No h5py: the datasets are exported with h5dump (Debian's
hdf5-tools) in binary and read with numpy.

Usage:
  spikestats.py OUT [--pops net.E,net.I] [--t-skip-ms 100]

The populations named by --pops (default: every population of the summary
that is a neuron population, i.e. recorded in spikes.h5) are pooled into one
group of N neurons, node ids offset in the order given, as one Brian2
NeuronGroup would hold them.  The definitions are those of
tests/reference/brunel_stats_brian2.py, so the numbers compare with the
Brian2 references one to one:

  rate_hz       all spikes / N / duration (whole run)
  window_s      [t_skip, duration] in seconds; statistics below over it
  w_rate_hz     spikes in the window / N / window length
  cv_isi        mean over neurons with >= 3 spikes in the window of
                std(ISI) / mean(ISI) (population std, ddof 0)
  cv_neurons    neurons entering cv_isi
  frac_active   fraction of neurons with >= 1 spike in the window
  fano_pop      var/mean of the population spike count in 1 ms bins
                [t_skip + k ms, t_skip + (k+1) ms), counted on the dt grid
  synchrony_hz  var/mean of the population rate r_k = count_k / (N 1 ms)
  pop_rate_cv   std/mean of r_k
  pop_peak_hz   frequency of the largest peak (2..1000 Hz) of the power
                spectrum of the population count in dt bins (mean removed;
                1 ms bins would alias the ~300 Hz SR rhythm)
  pop_peak_power_ratio  that peak's power / mean power in 2..1000 Hz
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

H5_TYPES = {
    'H5T_IEEE_F64LE': '<f8', 'H5T_IEEE_F32LE': '<f4',
    'H5T_IEEE_F64BE': '>f8', 'H5T_IEEE_F32BE': '>f4',
    'H5T_STD_U64LE': '<u8', 'H5T_STD_I64LE': '<i8',
    'H5T_STD_U32LE': '<u4', 'H5T_STD_I32LE': '<i4',
    'H5T_STD_U16LE': '<u2', 'H5T_STD_I16LE': '<i2',
}


def h5_datasets(path):
    """Paths of every dataset in the file (h5ls -r)."""
    out = subprocess.run(['h5ls', '-r', path], check=True,
                         capture_output=True, text=True).stdout
    names = []
    for line in out.splitlines():
        m = re.match(r'^(\S+)\s+Dataset\b', line)
        if m:
            names.append(m.group(1))
    return names


def h5_read(path, dset):
    """One 1-D dataset as a numpy array (h5dump -H for its type and size,
    h5dump -b LE for its bytes; h5dump writes little-endian)."""
    head = subprocess.run(['h5dump', '-H', '-d', dset, path], check=True,
                          capture_output=True, text=True).stdout
    m = re.search(r'DATATYPE\s+(\S+)', head)
    if not m or m.group(1) not in H5_TYPES:
        raise SystemExit(f'spikestats: {dset}: unsupported datatype '
                         f'{m.group(1) if m else "?"}')
    dtype = np.dtype(H5_TYPES[m.group(1)]).newbyteorder('<')
    m = re.search(r'DATASPACE\s+SIMPLE\s*\{\s*\(\s*(\d+)\s*\)', head)
    if m and int(m.group(1)) == 0:
        return np.zeros(0, dtype=dtype)
    if re.search(r'DATASPACE\s+NULL', head):
        return np.zeros(0, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        binf = os.path.join(tmp, 'd.bin')
        subprocess.run(['h5dump', '-d', dset, '-b', 'LE', '-o', binf, path],
                       check=True, capture_output=True)
        return np.fromfile(binf, dtype=dtype)


def read_spikes(out_dir):
    """{population: (timestamps ms float64, node_ids int64)}."""
    h5 = os.path.join(out_dir, 'spikes.h5')
    sets = h5_datasets(h5)
    pops = {}
    for d in sets:
        m = re.match(r'^/spikes/([^/]+)/timestamps$', d)
        if m:
            pop = m.group(1)
            if f'/spikes/{pop}/node_ids' not in sets:
                raise SystemExit(f'spikestats: {h5}: {pop} has timestamps '
                                 'but no node_ids')
            t = h5_read(h5, d).astype(np.float64)
            i = h5_read(h5, f'/spikes/{pop}/node_ids').astype(np.int64)
            if t.size != i.size:
                raise SystemExit(f'spikestats: {h5}: {pop}: {t.size} '
                                 f'timestamps but {i.size} node_ids')
            pops[pop] = (t, i)
    return pops


def spike_stats(ii, tt, n, t0, t1, dt, bin_s=1e-3):
    """As spike_stats() of tests/reference/brunel_stats_brian2.py (times and
    dt in s): 1 ms bins on the dt grid for the variance measures, a dt-bin
    count for the spectrum (2..1000 Hz)."""
    sel = (tt >= t0) & (tt < t1)
    ii, tt = ii[sel], tt[sel]
    width = t1 - t0
    out = {'window_s': [t0, t1], 'w_spikes': int(ii.size),
           'w_rate_hz': float(ii.size / n / width)}
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
    # spike times are multiples of dt: rounding (t - t0) / dt is exact
    step = np.rint((tt - t0) / dt).astype(np.int64)
    nsteps = int(round(width / dt))
    per_bin = int(round(bin_s / dt))
    step = step[(step >= 0) & (step < nsteps)]
    nb = nsteps // per_bin
    k = step // per_bin
    c = np.bincount(k[k < nb], minlength=nb).astype(np.float64)
    mc = c.mean() if nb else 0.0
    if mc > 0:
        out['fano_pop'] = float(c.var() / mc)
        r = c / (n * bin_s)
        out['synchrony_hz'] = float(r.var() / r.mean())
        out['pop_rate_cv'] = float(r.std() / r.mean())
        cf = np.bincount(step, minlength=nsteps).astype(np.float64)
        spec = np.abs(np.fft.rfft(cf - cf.mean())) ** 2
        f = np.fft.rfftfreq(nsteps, d=dt)
        band = (f >= 2.0) & (f <= 1000.0)
        out['pop_peak_hz'] = out['pop_peak_power_ratio'] = None
        if np.any(band):
            sb, fb = spec[band], f[band]
            j = int(np.argmax(sb))
            out['pop_peak_hz'] = float(fb[j])
            mp = float(sb.mean())
            out['pop_peak_power_ratio'] = float(sb[j] / mp) if mp > 0 else None
    else:
        out.update(fano_pop=None, synchrony_hz=None, pop_rate_cv=None,
                   pop_peak_hz=None, pop_peak_power_ratio=None)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('out', help='simulator output folder')
    ap.add_argument('--pops', default='',
                    help='comma-separated populations to pool (default all)')
    ap.add_argument('--t-skip-ms', type=float, default=100.0)
    a = ap.parse_args()

    with open(os.path.join(a.out, 'summary.json')) as f:
        summ = json.load(f)
    spikes = read_spikes(a.out)
    names = [p for p in a.pops.split(',') if p] or \
        [p for p in summ['populations'] if p in spikes]
    dur_s = float(summ['duration_ms']) / 1e3
    ii_all, tt_all, n = [], [], 0
    per_pop = {}
    for p in names:
        if p not in spikes:
            raise SystemExit(f'spikestats: population {p} not in spikes.h5 '
                             f'(has {sorted(spikes)})')
        size = int(summ['populations'][p]['size'])
        t, i = spikes[p]
        if i.size and (i.min() < 0 or i.max() >= size):
            raise SystemExit(f'spikestats: {p}: node id out of [0, {size})')
        if t.size and (t.min() < 0 or t.max() > float(summ['duration_ms'])):
            raise SystemExit(f'spikestats: {p}: spike time outside the run')
        per_pop[p] = {'size': size, 'spikes': int(t.size),
                      'rate_hz': float(t.size / size / dur_s) if size else 0.0}
        ii_all.append(i + n)
        tt_all.append(t / 1e3)
        n += size
    ii = np.concatenate(ii_all) if ii_all else np.zeros(0, np.int64)
    tt = np.concatenate(tt_all) if tt_all else np.zeros(0)
    res = {'N': n, 'duration_s': dur_s, 'spikes': int(ii.size),
           'rate_hz': float(ii.size / n / dur_s) if n else 0.0,
           'populations': per_pop}
    res.update(spike_stats(ii, tt, n, min(a.t_skip_ms / 1e3, dur_s), dur_s,
                           float(summ['dt_ms']) / 1e3))
    json.dump(res, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
