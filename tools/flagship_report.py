#!/usr/bin/python3
"""flagship_report.py OUT_DIR... [--json]

Reads the summary.json of one or more runs of examples/motor_sequence.engram
(one per seed) and prints the five effects of the flagship
(docs/motor_sequence.md): per day the practice recall, jitter and
sparseness and the sleep replay against its shuffle chance level and an
untrained sequence; recall before and after sleep and after wake rest;
retrieval from the partial cue; and the interference of learning B on
recall of A with and without the context input.  With several runs each
number is the median over the runs.  --json prints the same as one JSON
object (tests/e2e/flagship.sh reads it).  Standard library only.
"""
import json
import statistics
import sys


def phases(summary):
    return summary.get('protocol', {}).get('phases', [])


def value(phase, measure, field='mean'):
    """A measure of a phase: the trial aggregate's field, or a recorded number."""
    v = phase.get('measures', {}).get(measure)
    if isinstance(v, dict):
        v = v.get(field)
    return v


def mean_of(ps, measure, field='mean'):
    vals = [value(p, measure, field) for p in ps]
    vals = [v for v in vals if v is not None]
    return statistics.fmean(vals) if vals else None


def named(summary, name):
    return [p for p in phases(summary) if p['name'] == name]


def by_day(summary, name):
    out = {}
    for p in named(summary, name):
        if p.get('day') is not None:
            out.setdefault(p['day'], []).append(p)
    return out


def effects(summary):
    """The numbers of one run."""
    r = {'days': {}}
    practice, sleep = by_day(summary, 'practice'), by_day(summary, 'sleep')
    for name in ('before_sleep', 'after_sleep', 'after_wake'):
        for d, ps in by_day(summary, name).items():
            r['days'].setdefault(d, {})[name] = mean_of(ps, 'recall(reach_A)')
    for d in sorted(set(practice) | set(sleep)):
        e = r['days'].setdefault(d, {})
        ps = practice.get(d, [])
        e['recall'] = mean_of(ps, 'recall(reach_A)')
        e['jitter'] = mean_of(ps, 'jitter(reach_A)')
        e['sparseness'] = mean_of(ps, 'sparseness(reach_A)')
        ss = sleep.get(d, [])
        e['replay'] = mean_of(ss, 'replay(reach_A)', 'count')
        e['chance'] = mean_of(ss, 'replay(reach_A)', 'chance')
        e['chance_sd'] = mean_of(ss, 'replay(reach_A)', 'chance_sd')
        e['replay_control'] = mean_of(ss, 'replay(control)', 'count')
    for name in ('retrieval', 'retrieval_no_context', 'retest_context', 'retest_no_context'):
        r[name] = mean_of(named(summary, name), 'recall(reach_A)')
    r['duration_ms'] = summary.get('protocol', {}).get('duration_ms')
    r['wall_s'] = summary.get('timing', {}).get('simulate_s')
    return r


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def combine(runs):
    """Medians over runs, key by key."""
    out = {'days': {}, 'runs': len(runs)}
    days = sorted({d for r in runs for d in r['days']})
    for d in days:
        keys = {k for r in runs for k in r['days'].get(d, {})}
        out['days'][d] = {k: median([r['days'].get(d, {}).get(k) for r in runs]) for k in keys}
    for k in ('retrieval', 'retrieval_no_context', 'retest_context', 'retest_no_context',
              'duration_ms', 'wall_s'):
        out[k] = median([r.get(k) for r in runs])
    return out


def verdicts(m):
    """The five effects as booleans (None: not measured)."""
    days = sorted(m['days'])
    if not days:
        return {}
    first, last = m['days'][days[0]], m['days'][days[-1]]

    def lt(a, b):
        return None if a is None or b is None else a < b

    v = {}
    v['acquisition'] = (None if first.get('recall') is None or last.get('recall') is None else
                        first['recall'] <= 0.3 and last['recall'] >= 0.8)
    v['jitter_falls'] = lt(last.get('jitter'), first.get('jitter'))
    # replay is judged once there is something to replay: the sleeps of the
    # second half of the days (with 5 days: after days 3, 4 and 5)
    late = days[len(days) // 2:]
    sleeps = [m['days'][d] for d in late if m['days'][d].get('replay') is not None]
    above = [s['replay'] > s['chance'] + (s['chance_sd'] or 0) and
             s['replay'] > (s['replay_control'] or 0) for s in sleeps]
    v['replay_above_chance'] = (sum(above) * 2 > len(above)) if above else None
    pairs = [m['days'][d] for d in days if m['days'][d].get('after_sleep') is not None]
    if pairs:
        mean = lambda k: statistics.fmean(p[k] for p in pairs if p.get(k) is not None)
        v['sleep_keeps'] = mean('after_sleep') >= mean('before_sleep')
        v['sleep_beats_wake'] = mean('after_sleep') > mean('after_wake')
    v['retrieval'] = None if m['retrieval'] is None else m['retrieval'] >= 0.8
    base_ctx = m['retrieval']
    base_no = m['retrieval_no_context'] if m['retrieval_no_context'] is not None else base_ctx
    if None not in (base_ctx, m['retest_context'], m['retest_no_context']):
        v['context_protects'] = (base_ctx - m['retest_context']) < (base_no - m['retest_no_context'])
    v['sparseness_falls'] = lt(last.get('sparseness'), first.get('sparseness'))
    return v


def fmt(x, spec='.2f'):
    return '-' if x is None else format(x, spec)


def print_table(m, v):
    print('Motor sequence flagship (median over %d run%s)' % (m['runs'], '' if m['runs'] == 1 else 's'))
    print(' day  recall  jitter  sparse  replay/chance  control  before  after   wake')
    for d in sorted(m['days']):
        e = m['days'][d]
        print(' %3s  %6s  %6s  %6s  %6s/%-6s  %7s  %6s  %6s  %5s' % (
            d, fmt(e.get('recall')), fmt(e.get('jitter'), '.1f'), fmt(e.get('sparseness')),
            fmt(e.get('replay'), '.0f'), fmt(e.get('chance'), '.1f'),
            fmt(e.get('replay_control'), '.0f'), fmt(e.get('before_sleep')),
            fmt(e.get('after_sleep')), fmt(e.get('after_wake'))))
    print('retrieval from the first element: recall %s' % fmt(m['retrieval']))
    print('after learning B: recall of A %s with context, %s without (before: %s / %s)' % (
        fmt(m['retest_context']), fmt(m['retest_no_context']), fmt(m['retrieval']),
        fmt(m['retrieval_no_context'] if m['retrieval_no_context'] is not None else m['retrieval'])))
    print('effects: ' + ', '.join('%s %s' % (k, {True: 'yes', False: 'NO', None: '-'}[x])
                                  for k, x in v.items()))


def main():
    args = [a for a in sys.argv[1:] if a != '--json']
    if not args:
        sys.exit(__doc__)
    runs = []
    for d in args:
        with open(d.rstrip('/') + '/summary.json') as f:
            runs.append(effects(json.load(f)))
    m = combine(runs)
    v = verdicts(m)
    if '--json' in sys.argv:
        print(json.dumps({'medians': m, 'effects': v, 'runs': runs}, indent=1, sort_keys=True))
    else:
        print_table(m, v)


if __name__ == '__main__':
    main()
