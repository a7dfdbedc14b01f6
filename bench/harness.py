#!/usr/bin/python3
"""Side-by-side benchmark driver: Engram simulators vs Brian2 (cpp_standalone).

Called by bench/run.sh (use that); stdlib only.  For every case it

  1. builds the Engram simulator from the model file REPS times, timing
     `engramc build` (wall), once per model file;
  2. runs `sim --dry-run` once (synapse count and memory estimate);
  3. runs the Engram simulator and the Brian2 peer script alternately, REPS
     times each (plus one discarded warm-up of each unless --quick), waiting
     before every run for the machine to be otherwise idle (as the peer's
     run_all.sh does: /proc/stat procs_running <= 1, at most 30 s);
  4. optionally runs Brian2 once more with --profile (delivery-only ns/event).

With --float, a second simulator is built once per model file with
`engramc build --precision float` (not timed repeatedly: tool
"engram_float_build") and run as a third tool, "engram_float", in the same
alternating loop (engram, brian2, engram_float on even repetitions, the
reverse on odd ones).  "engram" records stay the default (double) build.

Every run's figures are appended to OUT/raw.jsonl as they come in (one JSON
object per line, tool = "engram" | "engram_float" | "brian2" | "engram_build"
| ...), so an
interrupted run still leaves data; OUT/raw.json holds everything at the end
and bench/report.py turns it into tables.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = '/usr/bin/python3'
DEFAULT_PEERS = '/work/shared/bench/peers/brian2'

# name, model file, Engram overrides, Brian2 script + args, duration s,
# reps key ('song' uses --song-reps), quick?
CASES = [
    ('cuba_4k', 'examples/cuba.engram', {'scale': 1}, ['cuba.py', '--scale', '1'], 1.0, 'std', True),
    ('cuba_16k', 'examples/cuba.engram', {'scale': 4}, ['cuba.py', '--scale', '4'], 1.0, 'std', False),
    ('cuba_64k', 'examples/cuba.engram', {'scale': 16}, ['cuba.py', '--scale', '16'], 1.0, 'std', False),
    ('coba_4k', 'examples/coba.engram', {'scale': 1}, ['coba.py', '--scale', '1'], 1.0, 'std', True),
    ('coba_16k', 'examples/coba.engram', {'scale': 4}, ['coba.py', '--scale', '4'], 1.0, 'std', False),
    ('coba_64k', 'examples/coba.engram', {'scale': 16}, ['coba.py', '--scale', '16'], 1.0, 'std', False),
    ('coba_stdp_4k', 'examples/coba_stdp.engram', {'scale': 1}, ['coba_stdp.py', '--scale', '1'], 1.0, 'std', True),
    ('brunel_ai', 'examples/brunel.engram', {'g': 5, 'eta': 2}, ['brunel.py', '--scale', '1', '--g', '5', '--eta', '2'], 1.0, 'std', False),
    ('brunel_si', 'examples/brunel.engram', {'g': 6, 'eta': 4}, ['brunel.py', '--scale', '1', '--g', '6', '--eta', '4'], 1.0, 'std', False),
    ('stdp_song', 'examples/stdp_song2000.engram', {'input_rate': '15Hz'}, ['stdp_song.py', '--scale', '1'], 100.0, 'song', False),
]
# Overrides that equal the model's default may be dropped when the model has
# no such parameter; any other missing parameter skips the case.
NEUTRAL = {'scale': 1}


def log(*a):
    print('[bench]', *a, file=sys.stderr, flush=True)


def procs_running():
    try:
        with open('/proc/stat') as f:
            for line in f:
                if line.startswith('procs_running'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 1


def quiet(max_wait=30.0):
    """Wait until nothing else runs (procs_running <= 1; this process reading
    /proc/stat is the one).  Returns seconds waited and whether it got quiet."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        if procs_running() <= 1:
            return time.monotonic() - t0, True
        time.sleep(0.5)
    return time.monotonic() - t0, False


def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


TIME = '/usr/bin/time'


def run_measured(cmd, stdout_path, stderr_path, timeout, cwd=None, env=None):
    """Run cmd; return {rc, wall_s, peak_rss_kib, cpu_s, nivcsw} of the child
    and the descendants it waited for.  Through GNU time when present: the
    peak RSS that wait4 reports for a child forked from this Python process
    would start at Python's own RSS (Linux keeps the high-water mark across
    exec), while /usr/bin/time is a small process."""
    use_time = os.access(TIME, os.X_OK)
    tfile = stderr_path + '.time'
    full = [TIME, '-o', tfile, '-f', '%M %U %S %c %x'] + cmd if use_time else cmd
    with open(stdout_path, 'wb') as fo, open(stderr_path, 'ab') as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=fo, stderr=fe, cwd=cwd, env=env)
        # a blocking wait (no polling that would compete for the CPU); a timer kills on timeout
        killed = []

        def kill():
            killed.append(1)
            kids = []
            try:   # the child of /usr/bin/time, then time itself
                with open(f'/proc/{p.pid}/task/{p.pid}/children') as f:
                    kids = [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                pass
            for k in kids + [p.pid]:
                try:
                    os.kill(k, 9)
                except OSError:
                    pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    rc = 124 if killed else os.waitstatus_to_exitcode(status)
    p.returncode = rc
    out = {'rc': rc, 'wall_s': wall, 'peak_rss_kib': ru.ru_maxrss,
           'cpu_s': ru.ru_utime + ru.ru_stime, 'nivcsw': ru.ru_nivcsw, 'rss_via': 'wait4'}
    if use_time:
        try:
            with open(tfile) as f:
                last = [ln for ln in f.read().splitlines() if ln.strip()][-1].split()
            # CPU time and context switches stay wait4's (finer than time's 10 ms)
            out.update({'peak_rss_kib': int(last[0]), 'rss_via': 'time'})
            if not killed:
                out['rc'] = int(last[4])
        except (OSError, ValueError, IndexError):
            pass
        try:
            os.unlink(tfile)
        except OSError:
            pass
    return out


def contended(rec):
    """Was this run slowed by other work on the machine?  A single-threaded
    run that got the CPU to itself has CPU time close to wall time and few
    involuntary context switches."""
    if rec.get('rc') != 0:
        return False
    if rec['tool'].startswith('brian2'):
        w, c = rec.get('run_wall_s'), rec.get('run_cpu_s')
        return bool(w and c is not None and w > 0.01 and c / w < 0.9)
    w, c = rec.get('wall_s'), rec.get('cpu_s')
    if not w or c is None or w < 0.02:
        return False
    if (rec.get('threads') or 1) > 1:
        return False          # several threads: CPU/wall says nothing simple
    return c / w < 0.85 or rec.get('nivcsw', 0) > 20 + 100 * w


def model_params(path):
    with open(path) as f:
        return set(re.findall(r'^\s*param\s+([A-Za-z_][A-Za-z0-9_]*)', f.read(), re.M))


BYTES = {'B': 1, 'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30, 'TiB': 1 << 40}


def parse_bytes(s):
    m = re.match(r'\s*([0-9.]+)\s*([KMGT]?i?B)', s)
    return float(m.group(1)) * BYTES.get(m.group(2), 1) if m else None


def parse_dry_run(text):
    out = {'text': text}
    m = re.search(r'total:\s*(\d+)\s+neurons,\s*([0-9.]+)\s+synapses', text)
    if m:
        out['neurons'] = int(m.group(1))
        out['synapses'] = float(m.group(2))
    m = re.search(r'memory: neurons ([^,]+), synapses ([^,]+), input rings ([^,]+), recording ([^\n]+)', text)
    if m:
        for k, v in zip(('neurons', 'synapses', 'rings', 'recording'), m.groups()):
            out['bytes_' + k] = parse_bytes(v)
    m = re.search(r'estimated memory:\s*([0-9.]+ [KMGT]?i?B)', text)
    if m:
        out['bytes_total'] = parse_bytes(m.group(1))
    return out


def model_projection_sources(path):
    """{projection name: source population} for the named projections of a
    model file (`project NAME: A.b -> C.d { ... }`)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}
    return {m.group(1): m.group(2) for m in re.finditer(
        r'^\s*project\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([A-Za-z_][A-Za-z0-9_.]*)\s*->', text, re.M)}


def engram_events(summary, named_sources=None):
    """Synaptic events (presynaptic spikes x out-degree) and where they come
    from: exact if the simulator reports them, else estimated per projection
    as source spikes x synapses / source size."""
    projs = summary.get('projections')
    if isinstance(projs, dict) and projs and all(
            isinstance(v, dict) and 'events' in v for v in projs.values()):
        return sum(int(v['events']) for v in projs.values()), 'exact'
    if isinstance(summary.get('events'), (int, float)):
        return int(summary['events']), 'exact'
    pops = summary.get('populations', {})
    syn = summary.get('synapses', {})
    total, missing = 0.0, []
    for name, n in syn.items():
        if name == 'total' or not isinstance(n, (int, float)):
            continue
        src = None
        if isinstance(projs, dict) and isinstance(projs.get(name), dict):
            src = projs[name].get('source')
        if src is None and named_sources and name in named_sources:
            src = named_sources[name]
        if src is None and '->' in name:
            left = name.split('->')[0].strip()
            if left in pops:
                src = left
            else:  # match by last path component
                cands = [p for p in pops if p.split('.')[-1] == left.split('.')[-1]]
                src = cands[0] if len(cands) == 1 else None
        if src is None or src not in pops or not pops[src].get('size'):
            missing.append(name)
            continue
        total += pops[src]['spikes'] * n / pops[src]['size']
    if missing:
        return None, 'unknown source for ' + ', '.join(missing)
    return int(round(total)), 'estimated'


def synapse_bytes(summary):
    """Bytes the synapses hold for the run: summary.json's projections give
    each one's synapses and bytes_per_synapse (no per-neuron arrays)."""
    projs = summary.get('projections') or {}
    if not projs or not all('bytes_per_synapse' in p for p in projs.values()):
        return (summary.get('memory') or {}).get('synapse_bytes')
    return sum(p['synapses'] * p['bytes_per_synapse'] for p in projs.values())


def fmt_set(k, v):
    return f'{k}={v:g}' if isinstance(v, (int, float)) else f'{k}={v}'


def sim_supports(sim, flag):
    try:
        h = subprocess.run([sim, '--help'], capture_output=True, text=True, timeout=30)
        return flag in h.stdout + h.stderr
    except (OSError, subprocess.SubprocessError):
        return False


def engram_run(sim, case, sets, dur, seed, work, tag, timeout, model_path=None, threads=None,
               tool='engram'):
    outdir = os.path.join(work, 'out_' + case)
    shutil.rmtree(outdir, ignore_errors=True)
    cmd = [sim, '--out', outdir, '--seed', str(seed), '--duration', f'{dur:g}s', '--quiet']
    if threads:
        cmd += ['--threads', str(threads)]
    for k, v in sets.items():
        cmd += ['--set', fmt_set(k, v)]
    m = run_measured(cmd, os.path.join(work, 'sim.stdout'),
                     os.path.join(work, f'{case}.{tool}.err'), timeout)
    rec = {'tool': tool, 'case': case, 'tag': tag, 'cmd': ' '.join(cmd)}
    rec.update(m)
    if m['rc'] != 0:
        return rec
    try:
        with open(os.path.join(outdir, 'summary.json')) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        rec['rc'] = -1
        rec['error'] = f'summary.json: {e}'
        return rec
    timing = s.get('timing', {})
    pops = s.get('populations', {})
    rec.update({
        'simulate_s': timing.get('simulate_s'),
        'setup_s': timing.get('setup_s'),
        'deliver_s': timing.get('deliver_s'),   # the projection phase (docs/outputs.md)
        'update_s': timing.get('update_s'),
        'drive_s': timing.get('drive_s'),
        'spikes': sum(int(p.get('spikes', 0)) for p in pops.values()),
        'size': sum(int(p.get('size', 0)) for p in pops.values()),
        'pops': {k: {'size': v.get('size'), 'spikes': v.get('spikes'),
                     'rate_hz': v.get('rate_hz'), 'source': v.get('source')}
                 for k, v in pops.items()},
        'synapses': (s.get('synapses') or {}).get('total'),
        'duration_s': (s.get('duration_ms') or dur * 1000.0) / 1000.0,
        'precision': (s.get('model') or {}).get('precision'),
        'engram_version': s.get('engram_version'),
        'model_sha256': (s.get('model') or {}).get('sha256'),
        'compiler': (s.get('model') or {}).get('compiler'),
        'threads': timing.get('threads'),
        'synapse_bytes': synapse_bytes(s),
        'reported_peak_rss_bytes': (s.get('memory') or {}).get('peak_rss_bytes'),
    })
    rec['events'], rec['events_how'] = engram_events(s, model_projection_sources(model_path))
    if rec['events'] is not None:
        post = s.get('post_events')
        if isinstance(post, (int, float)):
            rec['post_events'] = int(post)
    rec['rate_hz'] = rec['spikes'] / rec['size'] / rec['duration_s'] if rec['size'] else None
    return rec


def brian_run(peers, case, args, dur, work, tag, timeout, profile=False):
    cmd = [PY, os.path.join(peers, args[0])] + args[1:] + ['--duration', f'{dur:g}']
    if profile:
        cmd.append('--profile')
    out = os.path.join(work, 'brian.stdout')
    m = run_measured(cmd, out, os.path.join(work, f'{case}.brian2.err'), timeout, cwd=work)
    rec = {'tool': 'brian2_profile' if profile else 'brian2', 'case': case, 'tag': tag,
           'rc': m['rc'], 'wall_s': m['wall_s'], 'script_peak_rss_kib': m['peak_rss_kib'],
           'script_cpu_s': m['cpu_s'], 'cmd': ' '.join(cmd)}
    if m['rc'] != 0:
        return rec
    with open(out) as f:
        lines = [ln for ln in f if ln.startswith('{')]
    if not lines:
        rec['rc'] = -1
        rec['error'] = 'no JSON line'
        return rec
    rec.update(json.loads(lines[-1]))
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--song-reps', type=int, default=3)
    ap.add_argument('--build-reps', type=int, default=None, help='engramc build repetitions (default: --reps)')
    ap.add_argument('--quick', action='store_true', help='reps 2, 4k cases only, no warm-up, no profile')
    ap.add_argument('--only', default='', help='comma-separated case names')
    ap.add_argument('--engramc', required=False)
    ap.add_argument('--engramc-flag', action='append', default=[],
                    help='extra argument for engramc build (repeat; default: --stdlib REPO/stdlib)')
    ap.add_argument('--peers', default=os.environ.get('BRIAN2_PEERS', DEFAULT_PEERS))
    ap.add_argument('--no-engram', action='store_true')
    ap.add_argument('--float', action='store_true',
                    help='also build each model with --precision float and run it as tool engram_float')
    ap.add_argument('--no-brian', action='store_true')
    ap.add_argument('--no-profile', action='store_true', help='skip the profiled Brian2 run')
    ap.add_argument('--no-warmup', action='store_true')
    ap.add_argument('--seed', type=int, default=4242)
    ap.add_argument('--engram-threads', type=int, default=1,
                    help='--threads for the Engram simulators (default 1, as Brian2 runs)')
    ap.add_argument('--quiet-wait', type=float, default=30.0,
                    help='before each run, wait at most this long for an idle machine (s)')
    ap.add_argument('--retries', type=int, default=3,
                    help='reruns of a run slowed by other work on the machine')
    ap.add_argument('--busy-wait', type=float, default=120.0,
                    help='after a slowed run, wait at most this long for an idle machine (s)')
    ap.add_argument('--timeout', type=float, default=1200.0, help='per run, seconds')
    ap.add_argument('--out', default=os.path.join(HERE, 'results'))
    ap.add_argument('--work', default=None, help='scratch folder (default: a temporary one)')
    ap.add_argument('--keep', action='store_true', help='keep the scratch folder')
    a = ap.parse_args()

    if a.quick:
        a.reps = min(a.reps, 2)
        a.song_reps = min(a.song_reps, 2)
        a.no_warmup = True
        a.no_profile = True
    build_reps = a.build_reps or a.reps
    only = [x for x in a.only.split(',') if x]
    unknown = [x for x in only if x not in [c[0] for c in CASES]]
    if unknown:
        log('unknown case(s):', ', '.join(unknown), '; known:', ', '.join(c[0] for c in CASES))
        return 2
    cases = [c for c in CASES if (c[0] in only if only else (c[6] or not a.quick))]

    os.makedirs(a.out, exist_ok=True)
    work = a.work or tempfile.mkdtemp(prefix='engram_bench_')
    os.makedirs(work, exist_ok=True)
    raw_path = os.path.join(a.out, 'raw.jsonl')
    raw = open(raw_path, 'w')
    records = []

    def emit(rec):
        records.append(rec)
        raw.write(json.dumps(rec) + '\n')
        raw.flush()

    meta = {'tool': 'meta', 'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'argv': sys.argv, 'reps': a.reps, 'song_reps': a.song_reps,
            'build_reps': build_reps, 'quick': a.quick, 'float': a.float, 'loadavg_start': loadavg(),
            'engramc': a.engramc, 'peers': a.peers, 'python': platform.python_version(),
            'cases': [c[0] for c in cases]}
    emit(meta)

    engram_ok = not a.no_engram and a.engramc and os.access(a.engramc, os.X_OK)
    if not a.no_engram and not engram_ok:
        log('no engramc (', a.engramc, '): Engram side skipped')
        emit({'tool': 'note', 'text': f'engramc not available ({a.engramc}): Engram side skipped'})

    sims, busy = {}, 0
    build_flags = list(a.engramc_flag)
    if engram_ok and not build_flags and os.path.isdir(os.path.join(ROOT, 'stdlib')):
        # the repository's stdlib goes with the repository's examples
        try:
            h = subprocess.run([a.engramc, '--help'], capture_output=True, text=True, timeout=30)
            if '--stdlib' in h.stdout + h.stderr:
                build_flags = ['--stdlib', os.path.join(ROOT, 'stdlib')]
        except (OSError, subprocess.SubprocessError):
            pass
    meta['build_flags'] = build_flags
    # the float simulator: the same flags, any --precision replaced by float
    float_flags = []
    skip = False
    for x in build_flags:
        if skip:
            skip = False
        elif x == '--precision':
            skip = True
        elif not x.startswith('--precision='):
            float_flags.append(x)
    float_flags += ['--precision', 'float']
    if a.float:
        meta['float_build_flags'] = float_flags
        if float_flags[:-2] != build_flags:
            log('note: --engramc-flag sets --precision; the "engram" simulators use it, engram_float uses float')
    fsims = {}

    def wait_quiet(max_wait=None):
        nonlocal busy
        w, ok = quiet(a.quiet_wait if max_wait is None else max_wait)
        if not ok:
            busy += 1
        return w, ok

    n_contended = 0

    def builder(out, flags, mpath, model, tool, errname):
        """A function that runs `engramc build FLAGS MODEL -o OUT` once, timed."""
        def build():
            if os.path.exists(out):
                os.unlink(out)
            m = run_measured([a.engramc, 'build'] + flags + [mpath, '-o', out],
                             os.path.join(work, 'build.stdout'), os.path.join(work, errname),
                             a.timeout)
            m.update({'tool': tool, 'model': model, 'tag': 'rep'})
            return m
        return build

    def attempt(fn, extra, what):
        """Run fn() after waiting for a quiet machine; a run that was slowed by
        other work (see contended()) is kept in raw.jsonl with tag
        'contended' (left out of the medians) and tried again, at most
        --retries times, after waiting up to --busy-wait s for quiet."""
        nonlocal n_contended
        for k in range(a.retries + 1):
            w, ok = wait_quiet()
            r = fn()
            r.update(extra)
            r.update({'quiet_wait_s': round(w, 2), 'quiet': ok, 'load': loadavg(), 'attempt': k})
            r['contended'] = contended(r)
            if r['contended'] and k < a.retries:
                r['tag'] = 'contended'
                emit(r)
                n_contended += 1
                log(f'   {what}: slowed by other work (load {r["load"]}), retrying')
                wait_quiet(a.busy_wait)
                continue
            emit(r)
            return r

    for name, model, sets, bargs, dur, repkey, _ in cases:
        reps = a.song_reps if repkey == 'song' else a.reps
        mpath = os.path.join(ROOT, model)
        log(f'== {name}: {reps} reps, {dur:g} s biological')
        do_engram = engram_ok
        if do_engram and not os.path.exists(mpath):
            emit({'tool': 'note', 'case': name, 'text': f'{model} does not exist yet: Engram side skipped'})
            log(f'   {model} missing: Engram side skipped')
            do_engram = False
        esets = dict(sets)
        if do_engram:
            have = model_params(mpath)
            for k in list(esets):
                if k not in have:
                    if NEUTRAL.get(k) == esets[k]:
                        del esets[k]
                    else:
                        emit({'tool': 'note', 'case': name,
                              'text': f'{model} has no param {k}: Engram side skipped'})
                        do_engram = False
        if do_engram and model not in sims:
            sim = os.path.join(work, 'sim_' + os.path.basename(model).rsplit('.', 1)[0])
            times = []

            build = builder(sim, build_flags, mpath, model, 'engram_build', f'{name}.build.err')
            for i in range(build_reps):
                r = attempt(build, {'rep': i}, f'engramc build {i}')
                if r['rc'] != 0:
                    break
                times.append(r['wall_s'])
            sims[model] = sim if times and os.access(sim, os.X_OK) else None
            if sims[model] is None:
                err = ''
                try:
                    with open(os.path.join(work, f'{name}.build.err')) as f:
                        err = f.read()[-2000:]
                except OSError:
                    pass
                emit({'tool': 'note', 'case': name, 'text': f'engramc build {model} failed: {err}'})
                log(f'   build failed: {err}')
            else:
                log(f'   engramc build: {sorted(times)[len(times) // 2]:.3f} s (median of {len(times)})')
        sim = sims.get(model) if do_engram else None
        sim_threads = bool(sim) and sim_supports(sim, '--threads')
        if sim and a.float and model not in fsims:
            fsim = os.path.join(work, 'simf_' + os.path.basename(model).rsplit('.', 1)[0])

            build_float = builder(fsim, float_flags, mpath, model, 'engram_float_build',
                                  f'{name}.build_float.err')
            r = attempt(build_float, {'rep': 0}, 'engramc build --precision float')
            fsims[model] = fsim if r['rc'] == 0 and os.access(fsim, os.X_OK) else None
            if fsims[model] is None:
                err = ''
                try:
                    with open(os.path.join(work, f'{name}.build_float.err')) as f:
                        err = f.read()[-2000:]
                except OSError:
                    pass
                emit({'tool': 'note', 'case': name,
                      'text': f'engramc build --precision float {model} failed: {err}'})
                log(f'   float build failed: {err}')
            else:
                log(f'   engramc build --precision float: {r["wall_s"]:.3f} s')
        fsim = fsims.get(model) if (sim and a.float) else None
        if sim:
            cmd = [sim, '--dry-run', '--duration', f'{dur:g}s']
            for k, v in esets.items():
                cmd += ['--set', fmt_set(k, v)]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            d = parse_dry_run(p.stdout)
            d.update({'tool': 'engram_dry_run', 'case': name, 'rc': p.returncode})
            emit(d)
        do_brian = not a.no_brian and os.path.exists(os.path.join(a.peers, bargs[0]))
        if not a.no_brian and not do_brian:
            emit({'tool': 'note', 'case': name, 'text': f'{bargs[0]} not found in {a.peers}'})
        if not sim and not do_brian:
            continue

        def eng(tag, tool='engram'):
            return lambda: engram_run(fsim if tool == 'engram_float' else sim, name, esets, dur,
                                      a.seed, work, tag, a.timeout, mpath,
                                      a.engram_threads if sim_threads else None, tool)

        def bri(tag, profile=False):
            return lambda: brian_run(a.peers, name, bargs, dur, work, tag, a.timeout, profile)
        if not a.no_warmup:
            if sim:
                wait_quiet()
                emit(eng('warmup')())
            if do_brian:
                wait_quiet()
                emit(bri('warmup')())
            if fsim:
                wait_quiet()
                emit(eng('warmup', 'engram_float')())
        for i in range(reps):
            # alternate which tool goes first, so slow drifts hit all alike
            order = ['engram', 'brian2', 'engram_float']
            if i % 2:
                order.reverse()
            for tool in order:
                if (tool == 'engram' and sim) or (tool == 'engram_float' and fsim):
                    r = attempt(eng('rep', tool), {'rep': i}, f'{tool} rep {i}')
                    if r['rc'] == 0:
                        log(f'   {tool} rep {i}: simulate {r["simulate_s"]:.3f} s, spikes {r["spikes"]}, '
                            f'RSS {r["peak_rss_kib"] / 1024:.0f} MiB{" (contended)" if r["contended"] else ""}')
                    else:
                        log(f'   {tool} rep {i}: FAILED rc={r["rc"]} {r.get("error", "")}')
                elif tool == 'brian2' and do_brian:
                    r = attempt(bri('rep'), {'rep': i}, f'brian2 rep {i}')
                    if r['rc'] == 0:
                        log(f'   brian2 rep {i}: run {r["run_wall_s"]:.3f} s, spikes {r["spikes"]}, '
                            f'build {r["codegen_s"] + r["compile_s"]:.1f} s'
                            f'{" (contended)" if r["contended"] else ""}')
                    else:
                        log(f'   brian2 rep {i}: FAILED rc={r["rc"]} {r.get("error", "")}')
        if do_brian and not a.no_profile:
            r = attempt(bri('profile', True), {}, 'brian2 profile')

    emit({'tool': 'meta_end', 'finished': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
          'loadavg_end': loadavg(), 'runs_not_quiet': busy,
          'runs_contended_retried': n_contended})
    raw.close()
    with open(os.path.join(a.out, 'raw.json'), 'w') as f:
        json.dump(records, f, indent=1)
    if not a.keep and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log('scratch kept in', work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
