#!/usr/bin/python3
"""Checks one simulator output folder against docs/outputs.md.

Usage:
  check_outputs.py OUT --model-file F --name NAME --seed K --duration-ms D
                   --pops net.exc=3200,net.inh=800 [--projections A,B,...]
                   [--set PATH=VALUE ...]

spikes.h5: the SONATA layout (/spikes/<pop>/timestamps, f64 in ms with
attribute units = "ms", node_ids u64, group attribute sorting = by_time),
spikes sorted by time (ties by id), times on the dt grid inside the run, ids
inside the population, counts equal to summary.json's.
summary.json: every documented field, its type, and the values that the run
fixes (model name and sha256 of the model file, seed, dt, duration, sizes,
synapse totals, rates = spikes / size / duration).  --set PATH=VALUE
(internal units, numbers) checks parameters[PATH].value.
Prints each comparison; exits 1 on the first group of failures.
"""
import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spikestats import read_spikes  # noqa: E402

fails = []


def check(ok, what):
    print(('  ok   ' if ok else '  FAIL ') + what)
    if not ok:
        fails.append(what)
    return ok


def close(a, b, rel=1e-9, abs_=1e-12):
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def h5_attrs(h5, obj):
    """Text of `h5dump -A -N`-style attribute dump of one object."""
    r = subprocess.run(['h5dump', '-A', '-g', obj, h5], capture_output=True, text=True)
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--model-file', required=True)
    ap.add_argument('--name', required=True)
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--duration-ms', type=float, required=True)
    ap.add_argument('--dt-ms', type=float, default=0.1)
    ap.add_argument('--pops', required=True)
    ap.add_argument('--projections', default='')
    ap.add_argument('--set', action='append', default=[])
    a = ap.parse_args()

    summ_path = os.path.join(a.out, 'summary.json')
    h5 = os.path.join(a.out, 'spikes.h5')
    check(os.path.isfile(summ_path), f'{summ_path} exists')
    check(os.path.isfile(h5), f'{h5} exists')
    if fails:
        return 1
    with open(summ_path) as f:
        s = json.load(f)

    print(f'summary.json of {a.out}:')
    for key in ('engram_version', 'model', 'seed', 'dt_ms', 'duration_ms',
                'populations', 'synapses', 'parameters', 'timing'):
        check(key in s, f'field "{key}" present')
    if fails:
        return 1
    check(isinstance(s['engram_version'], str) and s['engram_version'] != '',
          f'engram_version is a non-empty string ({s["engram_version"]!r})')
    with open(a.model_file, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    check(s['model'].get('name') == a.name,
          f'model.name {s["model"].get("name")!r} == {a.name!r}')
    check(s['model'].get('sha256') == sha,
          f'model.sha256 == sha256sum {a.model_file} ({sha[:16]}...)')
    check(s['seed'] == a.seed, f'seed {s["seed"]} == {a.seed}')
    check(close(s['dt_ms'], a.dt_ms), f'dt_ms {s["dt_ms"]} == {a.dt_ms}')
    check(close(s['duration_ms'], a.duration_ms),
          f'duration_ms {s["duration_ms"]} == {a.duration_ms}')

    # populations
    want = {}
    for item in a.pops.split(','):
        name, size = item.split('=')
        want[name] = int(size)
    check(set(s['populations']) == set(want),
          f'populations {sorted(s["populations"])} == {sorted(want)}')
    spikes = read_spikes(a.out)
    dur = a.duration_ms
    for name, size in want.items():
        p = s['populations'].get(name)
        if p is None:
            continue
        for key, typ in (('model', str), ('source', bool), ('size', int),
                         ('spikes', int), ('rate_hz', (int, float))):
            check(isinstance(p.get(key), typ), f'{name}.{key} is {typ}')
        check(p.get('size') == size, f'{name}.size {p.get("size")} == {size}')
        if isinstance(p.get('spikes'), int) and size:
            r = p['spikes'] / size / (dur / 1e3)
            check(close(p['rate_hz'], r, 1e-9),
                  f'{name}.rate_hz {p["rate_hz"]:.6g} == spikes/size/duration {r:.6g}')
        if p.get('source') is False:
            check(name in spikes, f'spikes.h5 has /spikes/{name}')
        if name in spikes:
            t, i = spikes[name]
            check(t.size == p.get('spikes'),
                  f'spikes.h5 {name}: {t.size} spikes == summary {p.get("spikes")}')
            check(t.size == 0 or (t.min() >= 0 and t.max() < dur),
                  f'spikes.h5 {name}: times in [0, {dur}) ms')
            steps = t / a.dt_ms
            check(t.size == 0 or float(abs(steps - steps.round()).max()) < 1e-6,
                  f'spikes.h5 {name}: times on the {a.dt_ms} ms grid')
            check(i.size == 0 or (i.min() >= 0 and i.max() < size),
                  f'spikes.h5 {name}: node_ids in [0, {size})')
            dt_ok = bool((t[1:] > t[:-1]).all() if t.size < 2 else
                         ((t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (i[1:] > i[:-1]))).all())
            check(dt_ok, f'spikes.h5 {name}: sorted by time, ties by node id')
            attrs = h5_attrs(h5, f'/spikes/{name}')
            check(re.search(r'ATTRIBUTE "sorting".*?by_time', attrs, re.S) is not None,
                  f'spikes.h5 /spikes/{name} attribute sorting = by_time')
            tattrs = subprocess.run(['h5dump', '-A', '-d', f'/spikes/{name}/timestamps', h5],
                                    capture_output=True, text=True).stdout
            check(re.search(r'ATTRIBUTE "units".*?"ms"', tattrs, re.S) is not None,
                  f'spikes.h5 /spikes/{name}/timestamps attribute units = "ms"')
    # synapses
    syn = s['synapses']
    check(isinstance(syn.get('total'), int), 'synapses.total is an integer')
    per = {k: v for k, v in syn.items() if k != 'total'}
    check(sum(per.values()) == syn.get('total'),
          f'synapses.total {syn.get("total")} == sum over projections {sum(per.values())}')
    for proj in [x for x in a.projections.split(',') if x]:
        check(proj in per and per[proj] > 0,
              f'synapses["{proj}"] present and > 0 ({per.get(proj)})')
    # parameters
    params = s['parameters']
    good = all(isinstance(v, dict) and 'value' in v and 'unit' in v for v in params.values())
    check(good, f'every parameter ({len(params)}) is {{value, unit}}')
    for path, val, unit in (('dt', a.dt_ms, 'ms'), ('duration', dur, 'ms'),
                            ('seed', a.seed, '1')):
        p = params.get(path, {})
        check(p.get('unit') == unit and p.get('value') is not None and
              close(float(p['value']), val),
              f'parameters.{path} {p} == {{value {val}, unit {unit}}}')
    for name, size in want.items():
        p = params.get(f'{name}.size', {})
        check(p.get('value') == size, f'parameters.{name}.size {p.get("value")} == {size}')
    for kv in a.set:
        path, val = kv.split('=')
        p = params.get(path, {})
        check(p.get('value') is not None and close(float(p['value']), float(val)),
              f'parameters.{path} {p.get("value")} == {val} (override)')
    # timing
    t = s['timing']
    for key, typ in (('setup_s', (int, float)), ('simulate_s', (int, float)),
                     ('threads', int), ('ranks', int), ('host', str), ('date', str)):
        check(isinstance(t.get(key), typ), f'timing.{key} is {typ}')
    check(re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', str(t.get('date'))) is not None,
          f'timing.date {t.get("date")!r} is ISO 8601 UTC')
    check(t.get('threads', 0) >= 1 and t.get('ranks', 0) >= 1, 'threads, ranks >= 1')
    phases = ('drive_s', 'update_s', 'exchange_s', 'deliver_s', 'other_s')
    for key in phases:
        check(isinstance(t.get(key), (int, float)) and t[key] >= 0, f'timing.{key} is a number >= 0')
    check(isinstance(t.get('timed_steps'), int) and t['timed_steps'] > 0, 'timing.timed_steps > 0')
    if all(isinstance(t.get(k), (int, float)) for k in phases + ('simulate_s',)):
        check(sum(t[k] for k in phases) <= t['simulate_s'] * 1.001 + 1e-6,
              'the phases add up to no more than simulate_s')
    check(not any(isinstance(v, float) and math.isnan(v) for v in t.values()),
          'timing has no NaN')
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
