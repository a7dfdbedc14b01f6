#!/usr/bin/python3
"""Tables from one harness run (bench/run.sh calls this; stdlib only).

usage: /usr/bin/python3 bench/report.py RUN_DIR [--command CMD] [--results-md PATH]

RUN_DIR holds raw.json (or raw.jsonl) from bench/harness.py and floor.json
from bench/floor.c.  Writes RUN_DIR/report.json, RUN_DIR/report.md and
RUN_DIR/ns_per_event.svg, copies them to bench/results/latest.{json,md,svg},
and with --results-md assembles that file (bench/RESULTS.md): machine, date,
command, tables.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in bench/
from harness import CASES  # noqa: E402

MODEL_OF = {c[0]: c[1] for c in CASES}

ORDER = ['cuba_4k', 'cuba_16k', 'cuba_64k', 'coba_4k', 'coba_16k', 'coba_64k',
         'coba_stdp_4k', 'brunel_ai', 'brunel_si', 'stdp_song']
# which floor.c network shape stands for each case
FLOOR_SHAPE = {'cuba_4k': '4k', 'cuba_16k': '16k', 'cuba_64k': '64k',
               'coba_4k': '4k', 'coba_16k': '16k', 'coba_64k': '64k',
               'coba_stdp_4k': '4k', 'brunel_ai': 'brunel', 'brunel_si': 'brunel'}
# what a reader must know to compare a case's two columns
CASE_NOTES = {
    'brunel_ai': 'external Poisson drive (Engram `drive`, Brian2 PoissonInput) is not counted in syn events on '
                 'either side',
    'brunel_si': 'as brunel_ai: the external drive is not counted in syn events',
    'coba_stdp_4k': 'syn events count on-pre executions of the three projections; STDP on-post work is extra',
    'stdp_song': "not the same model: Engram's examples/stdp_song2000.engram is the paper's (1000 excitatory "
                 'inputs, run here at 15 Hz, plus 200 inhibitory inputs at 10 Hz, conductance-based neuron); '
                 "Brian2's script is its STDP example (1000 inputs at 15 Hz, no inhibition). Same biological "
                 'time and input count, so the wall times compare the cost of 100 s of 1000 plastic inputs; '
                 'spikes, rates and events include each side\'s inputs',
}
# per-case records (engram_float: the same model built with --precision float)
CASE_TOOLS = ('engram', 'engram_float', 'brian2', 'brian2_profile', 'engram_dry_run')
SIZE_OF = {'4k': 4000, '16k': 16000, '64k': 64000, '256k': 256000}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load_records(d):
    p = os.path.join(d, 'raw.json')
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    recs = []
    with open(os.path.join(d, 'raw.jsonl')) as f:
        for line in f:
            line = line.strip()
            if line.startswith('{'):
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    pass
    return recs


def load_floor(d):
    import glob
    cands = [os.path.join(d, 'floor.json'), os.path.join(HERE, 'results', 'floor.json')]
    cands += sorted(glob.glob(os.path.join(HERE, 'results', 'runs', '*', 'floor.json')), reverse=True)
    for p in cands:
        if os.path.exists(p) and os.path.getsize(p) > 0:
            with open(p) as f:
                return json.load(f), p
    return None, None


def floor_lookup(floor, shape, elem, bps=8):
    if not floor:
        return None
    for r in floor.get('scatter_net', []):
        if r['label'] == shape and r['elem'] == elem and r['bytes_per_syn'] == bps:
            return r['ns_per_event']
    return None


def slowed(r):
    """A recorded run that other work on the machine slowed down (older raw
    files have no CPU times: a run that started on a busy machine counts)."""
    if 'contended' in r:
        return bool(r['contended'])
    if r.get('tool') == 'brian2' and r.get('run_wall_s') and r.get('run_cpu_s') is not None:
        if r['run_wall_s'] > 0.01 and r['run_cpu_s'] / r['run_wall_s'] < 0.9:
            return True
    return r.get('quiet') is False


def ratio(a, b):
    return a / b if (a is not None and b) else None


def engram_summary(E, D):
    """Medians over the successful recorded runs E of one Engram simulator
    (double or float); D: the case's --dry-run records."""
    if not E:
        return None
    e0 = E[0]
    sim = [r['simulate_s'] for r in E]
    e = {
        'runs': len(E),
        'simulate_s': med(sim), 'simulate_min': min(sim), 'simulate_max': max(sim),
        'setup_s': med(r.get('setup_s') for r in E),
        'wall_s': med(r['wall_s'] for r in E),
        'spikes': int(med(r['spikes'] for r in E)),
        'deterministic': len({r['spikes'] for r in E}) == 1,
        'size': e0['size'], 'synapses': e0.get('synapses'),
        'duration_s': e0['duration_s'], 'rate_hz': med(r['rate_hz'] for r in E),
        'events': med(r.get('events') for r in E), 'events_how': e0.get('events_how'),
        'peak_rss_mib': med(r['peak_rss_kib'] for r in E) / 1024.0,
        'precision': e0.get('precision'),
        'pops': e0.get('pops'),
        'deliver_s': med(r.get('deliver_s') for r in E),
        'engram_version': e0.get('engram_version'), 'compiler': e0.get('compiler'),
        'model_sha256': e0.get('model_sha256'),
        'not_quiet': sum(1 for r in E if r.get('quiet') is False),
    }
    e['ns_per_event'] = (e['simulate_s'] / e['events'] * 1e9) if e['events'] else None
    e['deliver_ns_per_event'] = (e['deliver_s'] / e['events'] * 1e9
                                 if e['deliver_s'] and e['events'] else None)
    e['bytes_per_syn'] = (e['peak_rss_mib'] * 1048576 / e['synapses']) if e['synapses'] else None
    if e0.get('synapse_bytes') and e['synapses']:
        e['synapse_bytes_per_syn'] = e0['synapse_bytes'] / e['synapses']
    if D:
        d = D[0]
        e['dry_run_bytes_total'] = d.get('bytes_total')
        e['dry_run_bytes_synapses'] = d.get('bytes_synapses')
        if d.get('bytes_synapses') and e['synapses']:
            e['dry_run_bytes_per_syn'] = d['bytes_synapses'] / e['synapses']
    return e


def summarize(records, floor):
    cases = {}
    builds = {}
    notes = []
    meta = next((r for r in records if r.get('tool') == 'meta'), {})
    meta_end = next((r for r in records if r.get('tool') == 'meta_end'), {})
    for r in records:
        t = r.get('tool')
        if t == 'engram_build' and r.get('rc') == 0 and r.get('tag') != 'contended':
            builds.setdefault(r['model'], []).append(r['wall_s'])
        elif t == 'note':
            notes.append(r)
    by_case = {}
    for r in records:
        if r.get('tool') in CASE_TOOLS and 'case' in r:
            by_case.setdefault(r['case'], []).append(r)
    names = sorted(set(by_case) | {n['case'] for n in notes if 'case' in n},
                   key=lambda c: (ORDER.index(c) if c in ORDER else 99, c))
    for c in names:
        rs = by_case.get(c, [])
        E = [r for r in rs if r['tool'] == 'engram' and r.get('tag') == 'rep' and r.get('rc') == 0]
        Ef = [r for r in rs if r['tool'] == 'engram' and r.get('tag') == 'rep' and r.get('rc') != 0]
        EF = [r for r in rs if r['tool'] == 'engram_float' and r.get('tag') == 'rep' and r.get('rc') == 0]
        EFf = [r for r in rs if r['tool'] == 'engram_float' and r.get('tag') == 'rep' and r.get('rc') != 0]
        B = [r for r in rs if r['tool'] == 'brian2' and r.get('tag') == 'rep' and r.get('rc') == 0]
        Bf = [r for r in rs if r['tool'] == 'brian2' and r.get('tag') == 'rep' and r.get('rc') != 0]
        P = [r for r in rs if r['tool'] == 'brian2_profile' and r.get('rc') == 0
             and r.get('tag') != 'contended']
        D = [r for r in rs if r['tool'] == 'engram_dry_run' and r.get('rc') == 0]
        out = {'case': c, 'notes': [n['text'] for n in notes if n.get('case') == c]}
        out['retried'] = sum(1 for r in rs if r.get('tag') == 'contended')
        out['contended_kept'] = sum(1 for r in E + EF + B if slowed(r))
        if Ef:
            out['notes'].append(f'{len(Ef)} Engram run(s) failed (rc {Ef[0].get("rc")})')
        if EFf:
            out['notes'].append(f'{len(EFf)} Engram float run(s) failed (rc {EFf[0].get("rc")})')
        if Bf:
            out['notes'].append(f'{len(Bf)} Brian2 run(s) failed (rc {Bf[0].get("rc")})')
        e = engram_summary(E, D)
        ef = engram_summary(EF, None) if EF else None   # the dry run is the double build's
        b = None
        if B:
            b0 = B[0]
            run = [r['run_wall_s'] for r in B]
            b = {
                'runs': len(B),
                'run_wall_s': med(run), 'run_wall_min': min(run), 'run_wall_max': max(run),
                'build_s': med(r['codegen_s'] + r['compile_s'] for r in B),
                'codegen_s': med(r['codegen_s'] for r in B),
                'compile_s': med(r['compile_s'] for r in B),
                'setup_in_binary_s': med(r.get('setup_in_binary_s') for r in B),
                'spikes': int(med(r['spikes'] for r in B)),
                'deterministic': len({r['spikes'] for r in B}) == 1,
                'N': b0['N'], 'synapses': b0['synapses'], 'sim_s': b0['sim_s'],
                'rate_hz': med(r['rate_hz'] for r in B),
                'events': med(r['syn_events'] for r in B),
                'post_events': b0.get('stdp_post_events'),
                'peak_rss_mib': med(r.get('binary_peak_rss_mib') for r in B),
                'output_rate_hz': b0.get('output_rate_hz'),
                'brian2': b0.get('brian2'),
                'not_quiet': sum(1 for r in B if r.get('quiet') is False),
            }
            b['ns_per_event'] = (b['run_wall_s'] / b['events'] * 1e9) if b['events'] else None
            b['bytes_per_syn'] = (b['peak_rss_mib'] * 1048576 / b['synapses']
                                  if b['peak_rss_mib'] and b['synapses'] else None)
            if P:
                b['deliver_ns_per_event'] = P[-1].get('deliver_ns_per_event')
                b['profile_s'] = P[-1].get('profile_s')
        out['engram'], out['brian2'] = e, b
        if ef:     # only when float runs exist: old raw files report as before
            out['engram_float'] = ef
        # Engram build time: the model file of this case
        model_file = MODEL_OF.get(c)
        bt = builds.get(model_file)
        out['engram_build_s'] = med(bt) if bt else None
        out['engram_build_runs'] = len(bt) if bt else 0
        # comparisons
        prec = (e or {}).get('precision') or 8
        elem = 'f64' if prec == 8 else 'f32'
        shape = FLOOR_SHAPE.get(c)
        out['floor_shape'] = shape
        out['floor_ns_per_event'] = floor_lookup(floor, shape, elem, 8) if shape else None
        out['floor_ns_per_event_4B'] = floor_lookup(floor, shape, elem, 4) if shape else None
        out['floor_elem'] = elem
        if e and b:
            out['speedup_run'] = ratio(b['run_wall_s'], e['simulate_s'])
            out['speedup_build'] = ratio(b['build_s'], out['engram_build_s'])
            out['rate_rel_diff'] = ((e['rate_hz'] - b['rate_hz']) / b['rate_hz']
                                    if e['rate_hz'] is not None and b['rate_hz'] else None)
            out['events_rel_diff'] = ((e['events'] - b['events']) / b['events']
                                      if e['events'] is not None and b['events'] else None)
            out['rss_ratio'] = ratio(b['peak_rss_mib'], e['peak_rss_mib'])
        if e:
            out['engram_vs_floor'] = ratio(e['ns_per_event'], out['floor_ns_per_event'])
            out['engram_deliver_vs_floor'] = ratio(e.get('deliver_ns_per_event'), out['floor_ns_per_event'])
        if b:
            out['brian2_vs_floor'] = ratio(b['ns_per_event'], out['floor_ns_per_event'])
        if ef:
            # the float simulator against the f32 floor
            out['floor_ns_per_event_f32'] = floor_lookup(floor, shape, 'f32', 8) if shape else None
            out['engram_float_vs_floor'] = ratio(ef['ns_per_event'], out['floor_ns_per_event_f32'])
            if e:
                out['float_speedup'] = ratio(e['simulate_s'], ef['simulate_s'])   # double / float
                out['rate_rel_diff_float_vs_double'] = (
                    (ef['rate_hz'] - e['rate_hz']) / e['rate_hz']
                    if ef['rate_hz'] is not None and e['rate_hz'] else None)
            if b:
                out['speedup_run_float'] = ratio(b['run_wall_s'], ef['simulate_s'])
                out['rate_rel_diff_float'] = ((ef['rate_hz'] - b['rate_hz']) / b['rate_hz']
                                              if ef['rate_hz'] is not None and b['rate_hz'] else None)
        cases[c] = out
    # marginal bytes per synapse across the scaled families
    families = {}
    for fam in ('cuba', 'coba'):
        pts = [(cases[f'{fam}_{s}']) for s in ('4k', '16k', '64k') if f'{fam}_{s}' in cases]
        fam_out = {}
        for tool in ('engram', 'brian2'):
            xs = [(p[tool]['synapses'], p[tool]['peak_rss_mib']) for p in pts
                  if p.get(tool) and p[tool].get('synapses') and p[tool].get('peak_rss_mib')]
            if len(xs) >= 2:
                (s0, m0), (s1, m1) = xs[0], xs[-1]
                fam_out[tool + '_marginal_bytes_per_syn'] = (m1 - m0) * 1048576 / (s1 - s0) if s1 > s0 else None
        if fam_out:
            families[fam] = fam_out
    general_notes = [n['text'] for n in notes if 'case' not in n]
    return {'meta': meta, 'meta_end': meta_end, 'cases': cases, 'builds': builds,
            'families': families, 'notes': general_notes}


# ---- machine ---------------------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def machine():
    lscpu = {}
    for line in sh('LC_ALL=C lscpu').splitlines():
        if ':' in line:
            k, v = line.split(':', 1)
            lscpu[k.strip()] = v.strip()
    mem = ''
    try:
        with open('/proc/meminfo') as f:
            kb = int(f.readline().split()[1])
            mem = f'{kb / 1048576:.1f} GiB'
    except (OSError, ValueError, IndexError):
        pass
    return {
        'cpu': lscpu.get('Model name', platform.processor()),
        'cpus': lscpu.get('CPU(s)'),
        'threads_per_core': lscpu.get('Thread(s) per core'),
        'hypervisor': lscpu.get('Hypervisor vendor'),
        'l1d': lscpu.get('L1d cache'), 'l2': lscpu.get('L2 cache'), 'l3': lscpu.get('L3 cache'),
        'memory': mem,
        'kernel': platform.release(),
        'os': sh('. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"'),
        'gcc': sh('gcc --version | head -1'),
        'hostname': platform.node(),
    }


# ---- formatting ------------------------------------------------------------------------

def f(x, fmt='.3g', dash='-'):
    if x is None:
        return dash
    if isinstance(x, str):
        return x
    return format(x, fmt)


def pct(x):
    return '-' if x is None else f'{x * 100:+.1f}%'


def big(x):
    if x is None:
        return '-'
    x = float(x)
    for unit, div in (('G', 1e9), ('M', 1e6), ('k', 1e3)):
        if abs(x) >= div:
            return f'{x / div:.3g}{unit}'
    return f'{x:.0f}'


def summary_lines(S):
    """A few sentences computed from the tables."""
    C = S['cases']
    L = []
    both = {c: o for c, o in C.items() if o.get('speedup_run')}
    if both:
        xs = sorted(both.items(), key=lambda kv: kv[1]['speedup_run'])
        faster = [c for c, o in xs if o['speedup_run'] > 1.05]
        slower = [c for c, o in xs if o['speedup_run'] < 0.95]
        L.append('- Simulation time, Brian2 / Engram: ' + ', '.join(f"{c} {o['speedup_run']:.2f}x" for c, o in
                                                                   sorted(both.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 99))
                 + f". Engram faster (>5%) in {len(faster)}, slower (>5%) in {len(slower)}"
                 + (f" ({', '.join(slower)})" if slower else '') + '.')
    fl = {c: o for c, o in C.items() if o.get('engram_float')}
    if fl:
        def by_order(d):
            return sorted(d.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 99)
        sf = {c: o['speedup_run_float'] for c, o in fl.items() if o.get('speedup_run_float')}
        fd = {c: o['float_speedup'] for c, o in fl.items() if o.get('float_speedup')}
        rf = {c: o['rate_rel_diff_float_vs_double'] for c, o in fl.items()
              if o.get('rate_rel_diff_float_vs_double') is not None}
        parts = []
        if sf:
            parts.append('Simulation time, Brian2 / Engram float (`--precision float`): ' +
                         ', '.join(f'{c} {v:.2f}x' for c, v in by_order(sf)) +
                         f'. Float faster than Brian2 (>5%) in {sum(v > 1.05 for v in sf.values())}, '
                         f'slower (>5%) in {sum(v < 0.95 for v in sf.values())}.')
        if fd:
            parts.append('Engram double / float simulation time: ' +
                         ', '.join(f'{c} {v:.2f}x' for c, v in by_order(fd)) + '.')
        if rf:
            worst = max(rf.items(), key=lambda kv: abs(kv[1]))
            parts.append(f'Float rates within {abs(worst[1]) * 100:.1f}% of double (largest: {worst[0]}).')
        if parts:
            L.append('- ' + ' '.join(parts))
    b = [o['speedup_build'] for o in C.values() if o.get('speedup_build')]
    if b:
        L.append(f'- Model file to runnable simulator: engramc build {min(o["engram_build_s"] for o in C.values() if o.get("engram_build_s")):.2f}-'
                 f'{max(o["engram_build_s"] for o in C.values() if o.get("engram_build_s")):.2f} s against Brian2\'s '
                 f'code generation + C++ compile {min(o["brian2"]["build_s"] for o in C.values() if o.get("brian2")):.1f}-'
                 f'{max(o["brian2"]["build_s"] for o in C.values() if o.get("brian2")):.1f} s ({min(b):.0f}-{max(b):.0f}x; '
                 "Brian2's compile uses `make -j` on every core, engramc one).")
    ef = {c: o['engram_vs_floor'] for c, o in C.items() if o.get('engram_vs_floor')}
    dv = {c: o['engram_deliver_vs_floor'] for c, o in C.items() if o.get('engram_deliver_vs_floor')}
    if ef:
        ok = [c for c, v in ef.items() if v <= 2]
        L.append(f'- ns per synaptic event against the scatter-add floor (all-in simulation time): Engram '
                 f'{min(ef.values()):.1f}-{max(ef.values()):.1f}x the floor; within 2x: '
                 f"{', '.join(ok) if ok else 'none'}. All-in time includes the neuron updates (10,000 per "
                 'neuron per simulated second, against ~450-1,600 events per neuron per second in CUBA/COBA); the 2x target is for delivery' +
                 (' (next line).' if dv else ', which needs `timing.deliver_s` from the simulator (not reported).'))
    if dv:
        L.append('- Delivery-only ns/event against the floor: ' +
                 ', '.join(f'{c} {v:.1f}x' for c, v in dv.items()) + '.')
    fam = S.get('families') or {}
    mb = [(k, v) for k, v in fam.items() if v.get('engram_marginal_bytes_per_syn') and v.get('brian2_marginal_bytes_per_syn')]
    if mb:
        L.append('- Memory per additional synapse (peak RSS slope 4k -> 64k): ' +
                 '; '.join(f"{k.upper()} Engram {v['engram_marginal_bytes_per_syn']:.1f} B, Brian2 "
                           f"{v['brian2_marginal_bytes_per_syn']:.1f} B" for k, v in mb) + '.')
    rd = {c: o['rate_rel_diff'] for c, o in C.items() if o.get('rate_rel_diff') is not None and c != 'stdp_song'}
    if rd:
        worst = max(rd.items(), key=lambda kv: abs(kv[1]))
        L.append(f'- Rates match within {abs(worst[1]) * 100:.0f}% (largest: {worst[0]}); each side draws its '
                 'own random connectivity and initial state, so some difference is expected.')
    return L


def tables(S, floor):
    L = []
    C = S['cases']
    sl = summary_lines(S)
    if sl:
        L.append('### Summary\n')
        L.extend(sl)
        L.append('')
    # float columns only when some case has float runs (old raw files, --no-float: as before)
    has_float = any(o.get('engram_float') for o in C.values())
    L.append('### Speed\n')
    L.append('Medians over the recorded runs (min-max of the simulation wall time in brackets). '
             '"x" columns are Brian2 / Engram (above 1: Engram faster).' +
             (' "Engram" is the default build (double state), "float" the same model built with '
              '`engramc build --precision float`; "x float" = Brian2 / float.' if has_float else '') + '\n')
    if has_float:
        L.append('| case | N | synapses | bio s | model -> simulator s: Engram / Brian2 (x) | '
                 'simulation wall s: Engram | float | Brian2 | x | x float | setup s: Engram / Brian2 | '
                 'runs E / F / B |')
        L.append('|---|---|---|---|---|---|---|---|---|---|---|---|')
    else:
        L.append('| case | N | synapses | bio s | model -> simulator s: Engram / Brian2 (x) | '
                 'simulation wall s: Engram | Brian2 | x | setup s: Engram / Brian2 | runs E / B |')
        L.append('|---|---|---|---|---|---|---|---|---|---|')
    for c, o in C.items():
        e, b = o.get('engram'), o.get('brian2')
        ef = o.get('engram_float')
        N = (e or {}).get('size') or (b or {}).get('N')
        syn = (e or {}).get('synapses') or (b or {}).get('synapses')
        dur = (e or {}).get('duration_s') or (b or {}).get('sim_s')
        build = f"{f(o.get('engram_build_s'), '.2f')} / {f((b or {}).get('build_s'), '.1f')} ({f(o.get('speedup_build'), '.0f')}x)"
        es = (f"{e['simulate_s']:.3f} ({e['simulate_min']:.3f}-{e['simulate_max']:.3f})" if e else '-')
        bs = (f"{b['run_wall_s']:.3f} ({b['run_wall_min']:.3f}-{b['run_wall_max']:.3f})" if b else '-')
        setup = f"{f((e or {}).get('setup_s'), '.3f')} / {f((b or {}).get('setup_in_binary_s'), '.3f')}"
        if has_float:
            fs = (f"{ef['simulate_s']:.3f} ({ef['simulate_min']:.3f}-{ef['simulate_max']:.3f})" if ef else '-')
            runs = f"{(e or {}).get('runs', 0)} / {(ef or {}).get('runs', 0)} / {(b or {}).get('runs', 0)}"
            L.append(f"| {c} | {big(N)} | {big(syn)} | {f(dur, 'g')} | {build} | {es} | {fs} | {bs} | "
                     f"{f(o.get('speedup_run'), '.2f')} | {f(o.get('speedup_run_float'), '.2f')} | "
                     f"{setup} | {runs} |")
            continue
        runs = f"{(e or {}).get('runs', 0)} / {(b or {}).get('runs', 0)}"
        L.append(f"| {c} | {big(N)} | {big(syn)} | {f(dur, 'g')} | {build} | {es} | {bs} | "
                 f"{f(o.get('speedup_run'), '.2f')} | {setup} | {runs} |")
    L.append('')
    L.append('### Same network? Spikes, rates, synaptic events\n')
    def by_tool(o, key, fmt):
        """'Engram / [float /] Brian2' cells of one figure."""
        tools = ('engram', 'engram_float', 'brian2') if has_float else ('engram', 'brian2')
        return ' / '.join(fmt((o.get(t) or {}).get(key)) for t in tools)
    who = 'Engram / float / Brian2' if has_float else 'Engram / Brian2'
    if has_float:
        L.append('"float rate diff" = (float - Engram double) / Engram double: the same model, seed and '
                 'connectivity with single-precision state.\n')
    L.append(f'| case | spikes: {who} | rate Hz: {who} | rate diff | '
             f'{"float rate diff | " if has_float else ""}syn events: Engram / Brian2 | events diff | '
             'events (Engram) |')
    L.append('|---' * (8 if has_float else 7) + '|')
    for c, o in C.items():
        e, b = o.get('engram') or {}, o.get('brian2') or {}
        float_diff = f"{pct(o.get('rate_rel_diff_float_vs_double'))} | " if has_float else ''
        L.append(f"| {c} | {by_tool(o, 'spikes', big)} | {by_tool(o, 'rate_hz', lambda v: f(v, '.2f'))} | "
                 f"{pct(o.get('rate_rel_diff'))} | {float_diff}"
                 f"{big(e.get('events'))} / {big(b.get('events'))} | {pct(o.get('events_rel_diff'))} | "
                 f"{e.get('events_how', '-')} |")
    L.append('')
    L.append('### Cost per synaptic event and memory\n')
    L.append('ns/event = simulation wall time / synaptic events (all-in: neuron updates, delivery, '
             'recording). Floor = bench/floor.c scatter-add for the same network shape '
             '(8 B/synapse streamed, target array of the model\'s precision); "/floor" = ns/event / floor. '
             'B/syn = peak RSS of the simulation process / synapses (all-in).\n')
    if has_float:
        L.append('"float": the `--precision float` build; "float / f32 floor" uses the floor with a target '
                 'array of floats.\n')
        L.append('| case | ns/event: Engram | float | Brian2 | floor | Engram / floor | float / f32 floor | '
                 'Brian2 / floor | delivery-only ns/event: Engram / Brian2 | '
                 'peak RSS MiB: Engram / float / Brian2 | '
                 'B/syn: Engram / Brian2 | Engram synapse tables B/syn |')
        L.append('|---|---|---|---|---|---|---|---|---|---|---|---|')
    else:
        L.append('| case | ns/event: Engram | Brian2 | floor | Engram / floor | Brian2 / floor | '
                 'delivery-only ns/event: Engram / Brian2 | peak RSS MiB: Engram / Brian2 | '
                 'B/syn: Engram / Brian2 | Engram synapse tables B/syn |')
        L.append('|---|---|---|---|---|---|---|---|---|---|')
    for c, o in C.items():
        e, b = o.get('engram') or {}, o.get('brian2') or {}
        if has_float:
            ef = o.get('engram_float') or {}
            L.append(f"| {c} | {f(e.get('ns_per_event'), '.1f')} | {f(ef.get('ns_per_event'), '.1f')} | "
                     f"{f(b.get('ns_per_event'), '.1f')} | "
                     f"{f(o.get('floor_ns_per_event'), '.2f')} | {f(o.get('engram_vs_floor'), '.1f')} | "
                     f"{f(o.get('engram_float_vs_floor'), '.1f')} | "
                     f"{f(o.get('brian2_vs_floor'), '.1f')} | "
                     f"{f(e.get('deliver_ns_per_event'), '.1f')} / {f(b.get('deliver_ns_per_event'), '.1f')} | "
                     f"{f(e.get('peak_rss_mib'), '.0f')} / {f(ef.get('peak_rss_mib'), '.0f')} / "
                     f"{f(b.get('peak_rss_mib'), '.0f')} | "
                     f"{f(e.get('bytes_per_syn'), '.1f')} / {f(b.get('bytes_per_syn'), '.1f')} | "
                     f"{f(e.get('synapse_bytes_per_syn', e.get('dry_run_bytes_per_syn')), '.1f')} |")
            continue
        L.append(f"| {c} | {f(e.get('ns_per_event'), '.1f')} | {f(b.get('ns_per_event'), '.1f')} | "
                 f"{f(o.get('floor_ns_per_event'), '.2f')} | {f(o.get('engram_vs_floor'), '.1f')} | "
                 f"{f(o.get('brian2_vs_floor'), '.1f')} | "
                 f"{f(e.get('deliver_ns_per_event'), '.1f')} / {f(b.get('deliver_ns_per_event'), '.1f')} | "
                 f"{f(e.get('peak_rss_mib'), '.0f')} / {f(b.get('peak_rss_mib'), '.0f')} | "
                 f"{f(e.get('bytes_per_syn'), '.1f')} / {f(b.get('bytes_per_syn'), '.1f')} | "
                 f"{f(e.get('synapse_bytes_per_syn', e.get('dry_run_bytes_per_syn')), '.1f')} |")
    if S['families']:
        L.append('')
        L.append('Marginal bytes per synapse, (peak RSS at 64k - at 4k) / (synapses at 64k - at 4k): ' +
                 '; '.join(f"{fam}: Engram {f(v.get('engram_marginal_bytes_per_syn'), '.1f')}, "
                           f"Brian2 {f(v.get('brian2_marginal_bytes_per_syn'), '.1f')}"
                           for fam, v in S['families'].items()))
    # size curve
    L.append('')
    L.append('### ns per synaptic event against size (fixed in-degree 80)\n')
    L.append('| N | synapses | floor f64 8 B/syn | floor f64 4 B/syn | floor f32 8 B/syn | '
             'CUBA Engram | ' + ('CUBA float | ' if has_float else '') + 'CUBA Brian2 | COBA Engram | ' +
             ('COBA float | ' if has_float else '') + 'COBA Brian2 | CUBA E/floor | COBA E/floor |')
    L.append('|---|---|---|---|---|---|---|---|---|---|---|' + ('---|---|' if has_float else ''))

    def fcol(o):
        return f"{f((o.get('engram_float') or {}).get('ns_per_event'), '.1f')} | " if has_float else ''
    for s in ('4k', '16k', '64k', '256k'):
        cu, co = C.get(f'cuba_{s}', {}), C.get(f'coba_{s}', {})
        fl8 = floor_lookup(floor, s, 'f64', 8)
        if fl8 is None and not cu and not co:
            continue
        L.append(f"| {s} | {big(SIZE_OF[s] * 80)} | {f(fl8, '.2f')} | {f(floor_lookup(floor, s, 'f64', 4), '.2f')} | "
                 f"{f(floor_lookup(floor, s, 'f32', 8), '.2f')} | "
                 f"{f((cu.get('engram') or {}).get('ns_per_event'), '.1f')} | {fcol(cu)}"
                 f"{f((cu.get('brian2') or {}).get('ns_per_event'), '.1f')} | "
                 f"{f((co.get('engram') or {}).get('ns_per_event'), '.1f')} | {fcol(co)}"
                 f"{f((co.get('brian2') or {}).get('ns_per_event'), '.1f')} | "
                 f"{f(cu.get('engram_vs_floor'), '.1f')} | {f(co.get('engram_vs_floor'), '.1f')} |")
    if floor:
        L.append('')
        L.append(floor_tables(floor))
    notes = []
    for c, o in C.items():
        if c in CASE_NOTES and (o.get('engram') or o.get('brian2')):
            notes.append(f'- {c}: {CASE_NOTES[c]}')
        for n in o.get('notes', []):
            notes.append(f'- {c}: {n}')
        e = o.get('engram') or {}
        if e and not e.get('deterministic', True):
            notes.append(f'- {c}: Engram spike counts differ between runs with the same seed')
        if o.get('engram_float') and not o['engram_float'].get('deterministic', True):
            notes.append(f'- {c}: Engram float spike counts differ between runs with the same seed')
        if o.get('retried'):
            notes.append(f"- {c}: {o['retried']} run(s) slowed by other work on the machine were "
                         'discarded and repeated')
        if o.get('contended_kept'):
            notes.append(f"- {c}: {o['contended_kept']} recorded run(s) were slowed (or may have been) by "
                         'other work on the machine (figures less reliable)')
        if c == 'stdp_song':
            b = o.get('brian2') or {}
            pops = e.get('pops') or {}
            lif = [v for v in pops.values() if not v.get('source')]
            er = lif[0].get('rate_hz') if lif else None
            notes.append(f"- stdp_song: output neuron rate Engram {f(er, '.1f')} Hz / Brian2 "
                         f"{f(b.get('output_rate_hz'), '.1f')} Hz")
    est = [c for c, o in C.items() if (o.get('engram') or {}).get('events_how') not in (None, 'exact')]
    if est:
        notes.append(f"- Engram synaptic events are estimated for {', '.join(est)}: per projection, source "
                     'spikes x synapses / source size (summary.json has no per-projection event count yet)')
    for n in S.get('notes', []):
        notes.append(f'- {n}')
    if notes:
        L.append('')
        L.append('Notes:\n')
        L.extend(notes)
    return '\n'.join(L) + '\n'


def floor_tables(floor):
    L = ['### Machine floor (bench/floor.c, one thread)\n']
    st = floor.get('stream')
    if st:
        L.append(f"Streaming bandwidth ({st['mib_per_array']} MiB arrays): read {st['read_gbs']:.1f} GB/s, "
                 f"read+write (copy) {st['copy_gbs']:.1f} GB/s, STREAM triad {st['triad_gbs']:.1f} GB/s. "
                 f"Streaming 8 B per synapse at the read bandwidth alone costs "
                 f"{8 / st['read_gbs']:.2f} ns per event.\n")
    net = floor.get('scatter_net', [])
    if net:
        L.append('Scatter-add shaped like the networks (target = N neurons, table = N x K synapses, '
                 'rows of K visited as sorted spike lists of random neurons), ns per event:\n')
        L.append('| shape | N | K | table MiB (8 B/syn) | f32 8 B/syn | f64 8 B/syn | f32 4 B/syn | f64 4 B/syn |')
        L.append('|---|---|---|---|---|---|---|---|')
        for lab in dict.fromkeys(r['label'] for r in net):
            rs = {(r['elem'], r['bytes_per_syn']): r for r in net if r['label'] == lab}
            r0 = next(iter(rs.values()))
            tm = max(r['table_mib'] for r in rs.values())
            L.append(f"| {lab} | {r0['T']} | {r0['K']} | {tm:.1f} | " + ' | '.join(
                f(rs.get(k, {}).get('ns_per_event'), '.2f') for k in
                (('f32', 8), ('f64', 8), ('f32', 4), ('f64', 4))) + ' |')
        L.append('')
    sw = floor.get('scatter_sweep', [])
    if sw:
        L.append(f"Scatter-add against target size, synapse table (8 B/syn, {sw[0]['table_mib']:.0f} MiB) "
                 'streamed from memory, ns per event:\n')
        L.append('| target elements | f32 target | f32 ns/event | f64 target | f64 ns/event |')
        L.append('|---|---|---|---|---|')
        for T in dict.fromkeys(r['T'] for r in sw):
            rf = next((r for r in sw if r['T'] == T and r['elem'] == 'f32'), {})
            rd = next((r for r in sw if r['T'] == T and r['elem'] == 'f64'), {})

            def kib(x):
                return '-' if x is None else (f'{x / 1024:.0f} MiB' if x >= 1024 else f'{x:.0f} KiB')
            L.append(f"| {T} | {kib(rf.get('target_kib'))} | {f(rf.get('ns_per_event'), '.2f')} | "
                     f"{kib(rd.get('target_kib'))} | {f(rd.get('ns_per_event'), '.2f')} |")
    return '\n'.join(L) + '\n'


def svg(S, floor, path):
    """Log-log plot: ns/event against N for the floor (net and sweep-at-T=N
    interpolated is not shown) and each tool's CUBA/COBA."""
    series = []
    sizes = [('4k', 4000), ('16k', 16000), ('64k', 64000), ('256k', 256000)]
    fl = [(n, floor_lookup(floor, s, 'f64', 8)) for s, n in sizes]
    series.append(('floor (scatter-add, f64, 8 B/syn)', '#000000', [p for p in fl if p[1]], '6,3'))
    fl4 = [(n, floor_lookup(floor, s, 'f64', 4)) for s, n in sizes]
    series.append(('floor (4 B/syn)', '#777777', [p for p in fl4 if p[1]], '2,3'))
    series.append(('2 x floor', '#bbbbbb', [(n, 2 * v) for n, v in fl if v], '1,4'))
    colors = {('cuba', 'engram'): '#d62728', ('coba', 'engram'): '#ff7f0e',
              ('cuba', 'brian2'): '#1f77b4', ('coba', 'brian2'): '#17becf'}
    for fam in ('cuba', 'coba'):
        for tool in ('engram', 'brian2'):
            pts = []
            for s, n in sizes:
                o = S['cases'].get(f'{fam}_{s}', {})
                v = (o.get(tool) or {}).get('ns_per_event')
                if v:
                    pts.append((n, v))
            series.append((f'{fam.upper()} {"Engram" if tool == "engram" else "Brian2"}',
                           colors[(fam, tool)], pts, None))
        # the --precision float build, when measured (no legend entry otherwise)
        pts = [(n, (S['cases'].get(f'{fam}_{s}', {}).get('engram_float') or {}).get('ns_per_event'))
               for s, n in sizes]
        series.append((f'{fam.upper()} Engram float', colors[(fam, 'engram')], [p for p in pts if p[1]], '4,2'))
    pts_all = [p for _, _, ps, _ in series for p in ps]
    if not pts_all:
        return False
    import math
    W, H, ml, mr, mt, mb = 640, 420, 60, 200, 20, 45
    xs = [math.log10(p[0]) for p in pts_all]
    ys = [math.log10(p[1]) for p in pts_all]
    x0, x1 = min(xs) - 0.1, max(xs) + 0.1
    y0, y1 = math.floor(min(ys) * 2) / 2 - 0.1, math.ceil(max(ys) * 2) / 2 + 0.1

    def X(n):
        return ml + (math.log10(n) - x0) / (x1 - x0) * (W - ml - mr)

    def Y(v):
        return H - mb - (math.log10(v) - y0) / (y1 - y0) * (H - mt - mb)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<line x1="{ml}" y1="{H - mb}" x2="{W - mr}" y2="{H - mb}" stroke="black"/>',
         f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{H - mb}" stroke="black"/>']
    for s, n in sizes:
        if x0 <= math.log10(n) <= x1:
            o.append(f'<text x="{X(n):.1f}" y="{H - mb + 15}" text-anchor="middle">{s}</text>')
    for e in range(int(math.floor(y0)), int(math.ceil(y1)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if y0 <= math.log10(v) <= y1:
                o.append(f'<line x1="{ml - 4}" y1="{Y(v):.1f}" x2="{W - mr}" y2="{Y(v):.1f}" stroke="#eeeeee"/>')
                o.append(f'<text x="{ml - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    o.append(f'<text x="{(ml + W - mr) / 2}" y="{H - 8}" text-anchor="middle">neurons N (in-degree 80)</text>')
    o.append(f'<text x="14" y="{(mt + H - mb) / 2}" transform="rotate(-90 14 {(mt + H - mb) / 2})" '
             'text-anchor="middle">ns per synaptic event</text>')
    ly = mt + 10
    for label, col, pts, dash in series:
        if not pts:
            continue
        d = ' '.join(f'{X(n):.1f},{Y(v):.1f}' for n, v in pts)
        da = f' stroke-dasharray="{dash}"' if dash else ''
        o.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="2"{da}/>')
        for n, v in pts:
            o.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3" fill="{col}"/>')
        o.append(f'<line x1="{W - mr + 10}" y1="{ly}" x2="{W - mr + 35}" y2="{ly}" stroke="{col}" stroke-width="2"{da}/>')
        o.append(f'<text x="{W - mr + 40}" y="{ly + 4}">{label}</text>')
        ly += 16
    o.append('</svg>')
    with open(path, 'w') as fh:
        fh.write('\n'.join(o) + '\n')
    return True


def merge_runs(runs):
    """Records of several run folders, oldest first: each case (and each
    model's build times) comes whole from the last folder that measured it."""
    owner, build_owner = {}, {}
    for i, (_, rs) in enumerate(runs):
        for r in rs:
            if r.get('tool') in CASE_TOOLS and 'case' in r and r.get('tag') != 'warmup':
                owner[r['case']] = i
            elif r.get('tool') == 'engram_build':
                build_owner[r['model']] = i
    merged, contributed = [], {}
    for i, (d, rs) in enumerate(runs):
        for r in rs:
            t = r.get('tool')
            if t in CASE_TOOLS or (t == 'note' and 'case' in r):
                if owner.get(r['case'], i) == i:
                    merged.append(r)
                    if t in CASE_TOOLS:
                        contributed.setdefault(d, set()).add(r['case'])
            elif t == 'engram_build':
                if build_owner.get(r['model']) == i:
                    merged.append(r)
            elif t in ('meta', 'meta_end'):
                merged.append(dict(r, run_dir=d))
            else:
                merged.append(r)
    return merged, {d: sorted(c, key=lambda x: ORDER.index(x) if x in ORDER else 99)
                    for d, c in contributed.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('run_dirs', nargs='+', metavar='RUN_DIR',
                    help='one or more run folders, oldest first; for each case the last one that '
                         'measured it counts; outputs go to the last')
    ap.add_argument('--command', default=None, help='the command that made the run (for RESULTS.md)')
    ap.add_argument('--results-md', default=None, help='also write this file (bench/RESULTS.md)')
    ap.add_argument('--preface', default=None, help='text file inserted at the top of --results-md')
    a = ap.parse_args()
    d = a.run_dirs[-1]
    runs = [(x, load_records(x)) for x in a.run_dirs]
    records, contributed = merge_runs(runs)
    # the floor: the newest full measurement among the folders, else the newest at all
    floor = floor_path = None
    for x in reversed(a.run_dirs):
        fl, fp = load_floor(x)
        if fl and os.path.dirname(os.path.abspath(fp)) == os.path.abspath(x) and not fl.get('quick'):
            floor, floor_path = fl, fp
            break
    if floor is None:
        floor, floor_path = load_floor(d)
    S = summarize(records, floor)
    S['machine'] = machine()
    S['floor'] = floor
    S['floor_file'] = floor_path
    if floor_path and os.path.dirname(os.path.abspath(floor_path)) not in [os.path.abspath(x) for x in a.run_dirs]:
        S['notes'].append(f'floor from {os.path.relpath(floor_path, HERE)} (not measured in this run)')
    if floor and floor.get('quick'):
        S['notes'].append('the floor is a --quick measurement (fewer repetitions)')
    metas = [r for r in records if r.get('tool') == 'meta']
    ends = {r.get('run_dir'): r for r in records if r.get('tool') == 'meta_end'}
    S['runs'] = []
    for m in metas:
        x = m.get('run_dir')
        cmd = None
        try:
            with open(os.path.join(x, 'command.txt')) as fh:
                cmd = fh.read().strip()
        except OSError:
            pass
        if x == d and a.command:
            cmd = a.command
        S['runs'].append({'dir': x, 'command': cmd or ' '.join(m.get('argv', [])),
                          'started': m.get('started'), 'finished': (ends.get(x) or {}).get('finished'),
                          'loadavg_start': m.get('loadavg_start'),
                          'loadavg_end': (ends.get(x) or {}).get('loadavg_end'),
                          'interrupted': x not in ends,
                          'not_quiet': (ends.get(x) or {}).get('runs_not_quiet'),
                          'retried': (ends.get(x) or {}).get('runs_contended_retried'),
                          'reps': m.get('reps'), 'song_reps': m.get('song_reps'),
                          'build_reps': m.get('build_reps'), 'quick': m.get('quick'),
                          'cases': contributed.get(x, [])})
    S['runs'] = [r for r in S['runs'] if r['cases'] or len(metas) == 1]
    S['command'] = '; '.join(r['command'] for r in S['runs'])
    S['generated'] = time.strftime('%Y-%m-%d %H:%M:%S %Z')
    md = tables(S, floor)
    with open(os.path.join(d, 'report.json'), 'w') as fh:
        json.dump(S, fh, indent=1)
    with open(os.path.join(d, 'report.md'), 'w') as fh:
        fh.write(md)
    have_svg = svg(S, floor, os.path.join(d, 'ns_per_event.svg'))
    latest = os.path.join(HERE, 'results')
    os.makedirs(latest, exist_ok=True)
    if os.path.abspath(d) != os.path.abspath(latest):
        shutil.copyfile(os.path.join(d, 'report.json'), os.path.join(latest, 'latest.json'))
        shutil.copyfile(os.path.join(d, 'report.md'), os.path.join(latest, 'latest.md'))
        if have_svg:
            shutil.copyfile(os.path.join(d, 'ns_per_event.svg'), os.path.join(latest, 'latest.svg'))
    try:
        print(md)
    except BrokenPipeError:
        pass
    if a.results_md:
        write_results_md(a, S, d, md, have_svg)
    return 0


def write_results_md(a, S, d, md, have_svg):
    m = S['machine']
    here = os.path.dirname(os.path.abspath(a.results_md))
    head = ['# Benchmark results\n']
    if a.preface and os.path.exists(a.preface):
        with open(a.preface) as fh:
            head.append(fh.read().rstrip() + '\n')
    measured = [c for c, o in S['cases'].items() if o.get('engram') or o.get('brian2')]
    missing = [c for c in ORDER if c not in measured]
    quick = [c for r in S['runs'] if r.get('quick') for c in r['cases']]
    if quick or missing:
        head.append(f"**This is a partial run**{' (from a --quick run, 2 reps: ' + ', '.join(quick) + ')' if quick else ''}: "
                    f"measured {', '.join(measured) or 'nothing'}"
                    f"{'; not measured: ' + ', '.join(missing) if missing else ''}. "
                    'Rerun `bash bench/run.sh` on an idle machine for the full benchmark.\n')
    head.append('## Machine\n')
    head.append(f"- CPU: {m['cpu']}, {m['cpus']} CPUs ({m['threads_per_core']} thread(s) per core"
                f"{', ' + m['hypervisor'] + ' guest' if m.get('hypervisor') else ''}); "
                f"caches L1d {m['l1d']}, L2 {m['l2']}, L3 {m['l3']} (as the VM reports them)")
    head.append(f"- Memory: {m['memory']}; kernel {m['kernel']}; {m['os']}; {m['gcc']}")
    c0 = next((o for o in S['cases'].values() if o.get('engram')), None)
    b0 = next((o for o in S['cases'].values() if o.get('brian2')), None)
    if c0:
        e = c0['engram']
        head.append(f"- Engram {e.get('engram_version')} (compiler {e.get('compiler')}), "
                    f"state precision {e.get('precision')} bytes, one thread"
                    + ('; "float" columns: the same models built with `--precision float` (4 bytes)'
                       if any(o.get('engram_float') for o in S['cases'].values()) else ''))
    if b0:
        head.append(f"- Brian2 {b0['brian2'].get('brian2')} cpp_standalone (Debian python3-brian), "
                    'one thread for the simulation (its C++ compile runs `make -j`)')
    head.append('')
    head.append('## How it was made\n')
    for r in S['runs']:
        rel = os.path.relpath(r['dir'], here)
        head.append(f"- `{r['command']}`: {r['started']} to {r['finished'] or '(interrupted)'}; "
                    f"{r['reps']} reps (Song {r['song_reps']}), engramc build x{r['build_reps']}; "
                    f"load average {r['loadavg_start']} at start, {r['loadavg_end']} at end; "
                    f"runs started on a still-busy machine after the 30 s wait: {f(r['not_quiet'], 'd')}; "
                    f"runs slowed by other work, discarded and repeated: {f(r['retried'], 'd')}; "
                    f"cases taken from it: {', '.join(r['cases']) or '-'}; raw data `{rel}/`")
    head.append('')
    body = md
    if have_svg:
        rel = os.path.relpath(os.path.join(d, 'ns_per_event.svg'), here)
        body += f'\n![ns per synaptic event against N]({rel})\n'
    with open(a.results_md, 'w') as fh:
        fh.write('\n'.join(head) + '\n## Results\n\n' + body)


if __name__ == '__main__':
    sys.exit(main())
