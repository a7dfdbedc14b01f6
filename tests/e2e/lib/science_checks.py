#!/usr/bin/python3
"""Evaluates the checks of tests/e2e/examples_science.sh.

Usage: science_checks.py [--reduced] STATS_DIR REF_DIR < CHECKS

STATS_DIR holds CASE_sSEED.json, one spikestats.py result per run; the value
of METRIC for CASE is the median over its seeds.  REF_DIR holds the Brian2
references (tests/reference/*_brian2.json).

CHECKS: one check per line, '#' starts a comment:
    CASE  METRIC  OP  REFERENCE  [TOLERANCE] [full]
  full   skipped (reported as such) with --reduced: checks that need the
         full seeds and durations
  OP ~   |measured - ref| within TOLERANCE: rel=X (|m/ref - 1| <= X),
         abs=X (|m - ref| <= X) or factor=X (ref/X <= m <= ref*X)
  OP < > measured below / above the reference (no tolerance)
  REFERENCE  a number; FILE:DOTTED.PATH (with a dot) into REF_DIR/FILE_brian2.json
             (e.g. cuba:summary.median_rate_hz); or CASE:METRIC of another
             measured case.
Prints one line per check and a closing "science: N passed, N failed";
exits 1 when a check fails.
"""
import glob
import json
import os
import re
import statistics
import sys


def load_cases(stats_dir):
    cases = {}
    for path in sorted(glob.glob(os.path.join(stats_dir, '*_s*.json'))):
        m = re.match(r'^(.*)_s(\d+)\.json$', os.path.basename(path))
        with open(path) as f:
            cases.setdefault(m.group(1), []).append(json.load(f))
    return cases


def median_metric(cases, case, metric):
    runs = cases.get(case)
    if not runs:
        raise KeyError(f'no runs of case {case}')
    vals = [r.get(metric) for r in runs]
    vals = [v for v in vals if v is not None]
    if not vals:
        raise KeyError(f'{case}: metric {metric} undefined in every run')
    return statistics.median(vals), vals


def ref_value(ref_dir, cases, text):
    try:
        return float(text), text
    except ValueError:
        pass
    name, path = text.split(':', 1)
    ref_file = os.path.join(ref_dir, f'{name}_brian2.json')
    if '.' in path and os.path.isfile(ref_file):
        with open(ref_file) as f:
            node = json.load(f)
        for part in path.split('.'):
            node = node[part]
        if node is None:
            raise KeyError(f'{text} is null')
        return float(node), f'{name}_brian2.json {path}'
    med, _ = median_metric(cases, name, path)
    return med, f'measured {name} {path}'


def main():
    args = sys.argv[1:]
    reduced = '--reduced' in args
    args = [a for a in args if a != '--reduced']
    stats_dir, ref_dir = args
    cases = load_cases(stats_dir)
    npass = nfail = nskip = 0
    for raw in sys.stdin.read().splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        f = line.split()
        case, metric, op, ref = f[:4]
        tol = next((x for x in f[4:] if '=' in x), None)
        if 'full' in f[4:] and reduced:
            print(f'skip {case:<10} {metric:<12} {op} {ref} (full runs only)')
            nskip += 1
            continue
        try:
            m, vals = median_metric(cases, case, metric)
            r, rdesc = ref_value(ref_dir, cases, ref)
        except (KeyError, ValueError, OSError) as e:
            print(f'FAIL {case} {metric}: {e}')
            nfail += 1
            continue
        if op == '~':
            kind, x = tol.split('=')
            x = float(x)
            if kind == 'rel':
                ok = r != 0 and abs(m / r - 1) <= x
                how = f'within {x:.0%}'
            elif kind == 'abs':
                ok = abs(m - r) <= x
                how = f'within +-{x:g}'
            elif kind == 'factor':
                ok = r / x <= m <= r * x if r > 0 else False
                how = f'within a factor {x:g}'
            else:
                raise SystemExit(f'bad tolerance {tol}')
        elif op == '<':
            ok, how = m < r, 'below'
        elif op == '>':
            ok, how = m > r, 'above'
        else:
            raise SystemExit(f'bad operator {op}')
        seeds = ', '.join(f'{v:.4g}' for v in vals)
        print(f'{"ok  " if ok else "FAIL"} {case:<10} {metric:<12} {m:10.4g} '
              f'(median of {seeds})  {how} {r:.4g} [{rdesc}]')
        npass += ok
        nfail += not ok
    print(f'science: {npass} passed, {nfail} failed, {nskip} skipped')
    return 1 if nfail else 0


if __name__ == '__main__':
    sys.exit(main())
