#!/usr/bin/python3
"""same_summary.py A/summary.json B/summary.json [--expect-differ KEY ...]

Exits 0 when the two summaries are equal outside "timing" (docs/outputs.md:
everything outside timing is a function of model, overrides and seed), else
prints the differing top-level keys and exits 1.  With --differ, the listed
top-level keys must differ and all the others (outside timing) be equal.
"""
import json
import sys


def main():
    args = sys.argv[1:]
    differ = []
    if '--differ' in args:
        k = args.index('--differ')
        differ = args[k + 1:]
        args = args[:k]
    with open(args[0]) as f:
        a = json.load(f)
    with open(args[1]) as f:
        b = json.load(f)
    keys = sorted((set(a) | set(b)) - {'timing'})
    bad = []
    for key in keys:
        same = a.get(key) == b.get(key)
        if same == (key in differ):
            bad.append(key)
        print(f'  {"ok  " if same != (key in differ) else "FAIL"} summary.{key} '
              f'{"equal" if same else "differs"}'
              f'{" (expected to differ)" if key in differ else ""}')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
