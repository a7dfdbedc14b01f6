#!/usr/bin/python3
"""Collect the raw Brian2 JSON lines written by regenerate.sh into the
committed reference files cuba_brian2.json, coba_brian2.json and
brunel_brian2.json.

Usage: /usr/bin/python3 aggregate_brian2.py RAW_DIR OUT_DIR
RAW_DIR holds NAME.json (one JSON line) and NAME.cmd (the command) per run.
"""
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys

RAW, OUT = sys.argv[1], sys.argv[2]

KEEP = ('seed', 'N', 'synapses', 'sim_s', 'dt_ms', 'spikes', 'rate_hz',
        'syn_events', 'run_wall_s')
KEEP_BRUNEL = KEEP + ('ext_events', 'nu_ext_hz')
STAT_KEYS = ('window_s', 'spikes', 'rate_hz', 'cv_isi', 'cv_neurons',
             'frac_active', 'fano_pop', 'synchrony_hz', 'pop_rate_cv',
             'pop_peak_hz', 'pop_peak_power_ratio', 'bin_ms')


def load(name):
    with open(os.path.join(RAW, name + '.json')) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    with open(os.path.join(RAW, name + '.cmd')) as f:
        cmd = f.read().strip()
    return json.loads(lines[-1]), cmd


def seeds_of(prefix):
    out = []
    for p in glob.glob(os.path.join(RAW, prefix + '_s*.json')):
        m = re.search(r'_s(\d+)\.json$', p)
        out.append(int(m.group(1)))
    return sorted(out)


def rnd(x, nd=6):
    if isinstance(x, float):
        return float(f'{x:.{nd}g}')
    if isinstance(x, list):
        return [rnd(v, nd) for v in x]
    if isinstance(x, dict):
        return {k: rnd(v, nd) for k, v in x.items()}
    return x


def summary(runs):
    def col(key, sub=None):
        vals = [(r['stats'] if sub else r).get(key) for r in runs]
        return [v for v in vals if v is not None]

    def med(v):
        return statistics.median(v) if v else None
    rates = col('rate_hz')
    s = {
        'n_runs': len(runs),
        'median_rate_hz': med(rates),
        'min_rate_hz': min(rates) if rates else None,
        'max_rate_hz': max(rates) if rates else None,
        'mean_rate_hz': statistics.mean(rates) if rates else None,
        'median_window_rate_hz': med(col('rate_hz', 1)),
        'median_cv_isi': med(col('cv_isi', 1)),
        'min_cv_isi': min(col('cv_isi', 1), default=None),
        'max_cv_isi': max(col('cv_isi', 1), default=None),
        'median_fano_pop': med(col('fano_pop', 1)),
        'median_synchrony_hz': med(col('synchrony_hz', 1)),
        'median_pop_rate_cv': med(col('pop_rate_cv', 1)),
        'median_pop_peak_hz': med(col('pop_peak_hz', 1)),
        'median_frac_active': med(col('frac_active', 1)),
        'median_syn_events': med(col('syn_events')),
        'median_run_wall_s': med(col('run_wall_s')),
    }
    return s


def tool_versions():
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  check=False).stdout.splitlines()[0]
        except (OSError, IndexError):
            return None
    import numpy
    return {'python': platform.python_version(),
            'numpy': numpy.__version__,
            'cxx': first_line(['g++', '--version']),
            'machine': platform.machine()}


STATS_DEF = {
    'rate_hz': 'top level: all spikes / N / sim_s (whole run, as the stock '
               'peer script); stats.rate_hz: same over stats.window_s',
    'window_s': 'analysis window [t_skip, sim_s]; start-up transient dropped',
    'cv_isi': 'mean over neurons with >= 3 spikes in the window of '
              'std(ISI)/mean(ISI), population std (ddof 0)',
    'cv_neurons': 'number of neurons entering cv_isi',
    'frac_active': 'fraction of neurons with >= 1 spike in the window',
    'fano_pop': 'var/mean of the population spike count in 1 ms bins '
                '[t_skip + k ms, t_skip + (k+1) ms) on the dt grid '
                '(1 = independent Poisson; >> 1 = synchrony; grows with N)',
    'synchrony_hz': 'var/mean over time of the population rate histogram '
                    'r_k = count_k/(N*1 ms), in Hz; = fano_pop/(N*1 ms)',
    'pop_rate_cv': 'std/mean of that population rate histogram',
    'pop_peak_hz': 'frequency of the largest peak (2..1000 Hz) of the power '
                   'spectrum of the population count in dt (0.1 ms) bins, '
                   'mean removed, over the window',
    'pop_peak_power_ratio': 'that peak power / mean power in 2..1000 Hz',
}

BA_PUBLISHED = {
    'source': 'Brette et al. (2007) J Comput Neurosci 23:349-398, '
              'Benchmarks 1 (COBA) and 2 (CUBA), after Vogels & Abbott '
              '(2005) J Neurosci 25:10786',
    'qualitative': 'self-sustained irregular activity of a sparse random '
                   'E/I network (4000 LIF, p = 0.02) without sustained '
                   'external input',
    'rate_hz': None,
    'note': 'No published mean rate was verified for this exact Brian2 '
            'variant (Brian2 examples CUBA.py / COBA.py, random initial '
            'v/ge/gi, no Poisson kick). Vogels & Abbott used a larger '
            'network with different weights, so their rates do not apply '
            'directly. The reference is Brian2 itself.',
}

BRUNEL_STATES = [
    ('A_SR', 3.0, 2.0, {
        'state': 'SR (synchronous regular)',
        'figure': 'Brunel 2000 Fig. 8A',
        'qualitative': 'almost fully synchronized network, neurons firing '
                       'regularly at high rates',
        'mean_field_rate_hz': None}),
    ('B_SI_fast', 6.0, 4.0, {
        'state': 'SI fast (synchronous irregular, fast oscillation)',
        'figure': 'Brunel 2000 Fig. 8B',
        'qualitative': 'fast oscillation of the global activity; neurons '
                       'fire irregularly at a rate lower than the global '
                       'oscillation frequency',
        'mean_field_rate_hz': 55.8}),
    ('C_AI', 5.0, 2.0, {
        'state': 'AI (asynchronous irregular)',
        'figure': 'Brunel 2000 Fig. 8C',
        'qualitative': 'stationary global activity, irregularly firing '
                       'neurons',
        'mean_field_rate_hz': 38.0}),
    ('D_SI_slow', 4.5, 0.9, {
        'state': 'SI slow (synchronous irregular, slow oscillation)',
        'figure': 'Brunel 2000 Fig. 8D',
        'qualitative': 'slow oscillation of the global activity, neurons '
                       'firing irregularly at very low rates',
        'mean_field_rate_hz': 6.5}),
]
BRUNEL_SOURCE = (
    'Brunel N (2000) J Comput Neurosci 8:183-208, Fig. 8 (qualitative '
    'descriptions follow the figure caption). mean_field_rate_hz: the '
    'stationary mean-field rates quoted from the paper (p. 196) by a '
    'third-party reproduction (an EPFL cppcourse-brunel student README); '
    'second-hand, not checked against the paper itself. In the SI states '
    'the mean-field stationary rate is only approximately the simulated '
    'mean rate.')


def build_ba(model):
    runs = []
    for s in seeds_of(f'{model}_stock'):
        stock, cmd = load(f'{model}_stock_s{s}')
        stats, scmd = load(f'{model}_stats_s{s}')
        r = {k: stock[k] for k in KEEP}
        r['command'] = cmd
        r['stats_command'] = scmd
        r['stats_spikes_match_stock'] = stats['spikes'] == stock['spikes']
        r['stats'] = {k: stats['stats'].get(k) for k in STAT_KEYS}
        runs.append(r)
        brian = stock['brian2']
    first = runs[0]
    doc = {
        'model': model,
        'description': ('Brette et al. 2007 benchmark 2 (CUBA), Brian2 '
                        'examples/CUBA.py' if model == 'cuba' else
                        'Brette et al. 2007 benchmark 1 (COBA), Brian2 '
                        'COBA example'),
        'simulator': 'Brian2 cpp_standalone',
        'brian2': brian,
        'tools': tool_versions(),
        'scale': 1.0, 'N': first['N'], 'sim_s': first['sim_s'],
        'dt_ms': first['dt_ms'],
        'seeds': [r['seed'] for r in runs],
        'command': 'bash tests/reference/regenerate.sh (per-run commands '
                   'in runs[].command / runs[].stats_command; $WORK is a '
                   'temporary build directory)',
        'summary': summary(runs),
        'published': BA_PUBLISHED,
        'stats_definitions': STATS_DEF,
        'runs': runs,
    }
    return doc


def build_brunel():
    states = {}
    brian = None
    for label, g, eta, pub in BRUNEL_STATES:
        runs = []
        for s in seeds_of(f'brunel_{label}_stats'):
            st, cmd = load(f'brunel_{label}_stats_s{s}')
            r = {k: st[k] for k in KEEP_BRUNEL}
            r['command'] = cmd
            r['stats'] = {k: st['stats'].get(k) for k in STAT_KEYS}
            try:
                stock, scmd = load(f'brunel_{label}_stock_s{s}')
                r['stock_command'] = scmd
                r['stock_spikes_match'] = stock['spikes'] == st['spikes']
            except FileNotFoundError:
                pass
            runs.append(r)
            brian = st['brian2']
        states[label] = {
            'g': g, 'eta': eta,
            'sim_s': runs[0]['sim_s'],
            'seeds': [r['seed'] for r in runs],
            'summary': summary(runs),
            'published': dict(pub, source='see published_source'),
            'runs': runs,
        }
    doc = {
        'model': 'brunel',
        'description': 'Brunel (2000) model A (identical E and I neurons), '
                       'N_E 10000, N_I 2500, C_E 1000, C_I 250 (Bernoulli '
                       'p 0.1), J 0.1 mV, D 1.5 ms, tau 20 ms, theta 20 mV, '
                       'V_r 10 mV, t_ref 2 ms, v(0) = 0, PoissonInput '
                       'C_ext = 1000 at eta*nu_thr; as Brian2 examples/'
                       'frompapers/Brunel_2000.py',
        'simulator': 'Brian2 cpp_standalone',
        'brian2': brian,
        'tools': tool_versions(),
        'scale': 1.0, 'N': 12500, 'dt_ms': 0.1,
        'command': 'bash tests/reference/regenerate.sh (per-run commands '
                   'in states.*.runs[].command; $WORK is a temporary build '
                   'directory)',
        'published_source': BRUNEL_SOURCE,
        'stats_definitions': STATS_DEF,
        'states': states,
    }
    return doc


def write(doc, name):
    path = os.path.join(OUT, name)
    with open(path, 'w') as f:
        json.dump(rnd(doc), f, indent=2)
        f.write('\n')
    print('wrote', path, file=sys.stderr)


write(build_ba('cuba'), 'cuba_brian2.json')
write(build_ba('coba'), 'coba_brian2.json')
write(build_brunel(), 'brunel_brian2.json')
