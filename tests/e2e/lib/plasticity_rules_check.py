#!/usr/bin/python3
"""Closed-form checks of the std.plasticity rules in isolation.

Reads the output folder of the `rules` model that tests/e2e/plasticity_science.sh
writes: independent Poisson presynaptic trains (population src.inp) onto
neurons whose firing ignores their synaptic input (tgt.cell, kicked by a
Poisson drive; the plastic projections end on a port that feeds a dummy
variable), so pre and post spikes are independent Poisson-like trains and the
mean weight change of every rule has a closed form.  Every projection starts
at w0 = 50 nS, far from its bounds [0, 100 nS].

Discrete time (dt), the order of docs/language.md section 12 (the `on pre`
handlers of a step before its `on post` handlers) and Bernoulli spikes per
step (p = rate dt) give, for a trace with time constant tau, a = exp(-dt/tau):
  all-to-all, read by the other side's handler
    pre trace at a post spike (same-step pre included):  p_pre  / (1 - a)
    post trace at a pre spike (same-step post excluded): p_post a / (1 - a)
    a side's own trace just before its own spike:        p a / (1 - a)
  nearest-neighbour (reset to 1)
    pre trace at a post spike:   p_pre / (1 - (1 - p_pre) a)
    post trace at a pre spike:   p_post a / (1 - (1 - p_post) a)
with p = rate dt from the measured rates (summary.json).  Expected mean
change per synapse over the run (T steps of dt; n_pre = rate_pre T dt
presynaptic spikes per synapse, n_post likewise):
  stdp_ltp   STDP, A_minus = 0:       n_post A_plus E[x at post]
  stdp_ltd   STDP, A_plus = 0:      - n_pre A_minus E[y at pre]
  stdp       STDP, A- = A+ / 2:        the sum (A- < A+ so that the two
             terms do not cancel and the noise stays small next to the sum)
  near       STDPNearest, A- = A+ / 2: the same with nearest-neighbour traces
  mult_ltp   STDPMult (mu = 1), A_minus = 0:  dw/dt = k (1 - w / w_max),
             k = rate_post A_plus E[x at post]:
             w(T) = w_max - (w_max - w0) exp(-k T / w_max)
  mult_ltd   STDPMult (mu = 1), A_plus = 0:   dw/dt = -k w / w_max,
             k = rate_pre A_minus E[y at pre]:  w(T) = w0 exp(-k T / w_max)
  trip       TripletSTDP (minimal): n_post A3_plus E[r1] E[o2 before the
             spike] - n_pre A2_minus E[o1]
  isp        InhibitoryISP: n_pre eta (E[y at pre] - alpha) + n_post eta E[x at post]
  chol       CholinergicHebbian with acetylcholine held at its baseline a:
             a times the stdp expectation
  da         DopamineSTDP with dopamine held at its baseline d: the mean
             eligibility relaxes to tau_c times the nearest-neighbour drift
             rate of c, and dw/dt = c d / tau_w:
             Δw = d / tau_w · rate_c · tau_c (T - tau_c (1 - exp(-T / tau_c)))
  scale      SynapticScaling, target below the post rate: the rate estimate
             relaxes from the target to r_post with tau_rate, and
             ln(w / w0) = eta ∫ (target - r(t)) dt
             = eta (target - r_post) (T - tau_rate (1 - exp(-T / tau_rate)))
Prints one JSON object: for each NAME, NAME_expected, NAME_measured (nS) and
NAME_err = |measured - expected| / |expected|.

Usage: plasticity_rules_check.py OUT
"""
import json
import math
import os
import sys


def main():
    out = sys.argv[1]
    with open(os.path.join(out, 'summary.json')) as f:
        s = json.load(f)
    par = {k: v['value'] for k, v in s['parameters'].items()}
    dt = float(s['dt_ms'])
    T = float(s['duration_ms'])
    pops = s['populations']
    r_pre = pops['src.inp']['rate_hz'] / 1e3          # 1/ms
    r_post = pops['tgt.cell']['rate_hz'] / 1e3
    p_pre, p_post = r_pre * dt, r_post * dt
    n_pre, n_post = r_pre * T, r_post * T
    w0 = 50.0

    def a(tau):
        return math.exp(-dt / tau)

    def all_pre_at_post(tau):      # same-step pre spike included
        return p_pre / (1 - a(tau))

    def all_post_at_pre(tau):      # same-step post spike not yet counted
        return p_post * a(tau) / (1 - a(tau))

    def own_before(p, tau):        # a side's own trace just before its spike
        return p * a(tau) / (1 - a(tau))

    def near_pre_at_post(tau):
        return p_pre / (1 - (1 - p_pre) * a(tau))

    def near_post_at_pre(tau):
        return p_post * a(tau) / (1 - (1 - p_post) * a(tau))

    def P(proj, name):
        return float(par[f'{proj}.{name}'])

    exp = {}
    # STDP family
    for proj in ('stdp_ltp', 'stdp_ltd', 'stdp'):
        exp[proj] = (n_post * P(proj, 'A_plus') * all_pre_at_post(P(proj, 'tau_plus'))
                     - n_pre * P(proj, 'A_minus') * all_post_at_pre(P(proj, 'tau_minus')))
    exp['near'] = (n_post * P('near', 'A_plus') * near_pre_at_post(P('near', 'tau_plus'))
                   - n_pre * P('near', 'A_minus') * near_post_at_pre(P('near', 'tau_minus')))
    wm = P('mult_ltp', 'w_max')
    k = r_post * P('mult_ltp', 'A_plus') * all_pre_at_post(P('mult_ltp', 'tau_plus'))
    exp['mult_ltp'] = wm - (wm - w0) * math.exp(-k * T / wm) - w0
    wm = P('mult_ltd', 'w_max')
    k = r_pre * P('mult_ltd', 'A_minus') * all_post_at_pre(P('mult_ltd', 'tau_minus'))
    exp['mult_ltd'] = w0 * math.exp(-k * T / wm) - w0
    exp['trip'] = (n_post * all_pre_at_post(P('trip', 'tau_plus'))
                   * (P('trip', 'A2_plus') + P('trip', 'A3_plus') * own_before(p_post, P('trip', 'tau_y')))
                   - n_pre * all_post_at_pre(P('trip', 'tau_minus'))
                   * (P('trip', 'A2_minus') + P('trip', 'A3_minus') * own_before(p_pre, P('trip', 'tau_x'))))
    eta = P('isp', 'eta')
    exp['isp'] = (n_pre * eta * (all_post_at_pre(P('isp', 'tau_stdp')) - P('isp', 'alpha'))
                  + n_post * eta * all_pre_at_post(P('isp', 'tau_stdp')))
    ach = float(par['acetylcholine.baseline'])
    exp['chol'] = ach * (n_post * P('chol', 'A_plus') * all_pre_at_post(P('chol', 'tau_plus'))
                         - n_pre * P('chol', 'A_minus') * all_post_at_pre(P('chol', 'tau_minus')))
    d = float(par['dopamine.baseline'])
    rate_c = (r_post * P('da', 'A_plus') * near_pre_at_post(P('da', 'tau_plus'))
              - r_pre * P('da', 'A_minus') * near_post_at_pre(P('da', 'tau_minus')))
    tc = P('da', 'tau_c')
    exp['da'] = d / P('da', 'tau_w') * rate_c * tc * (T - tc * (1 - math.exp(-T / tc)))
    tr = P('scale', 'tau_rate')
    ln_ratio = P('scale', 'eta') * (P('scale', 'target') - r_post) * (T - tr * (1 - math.exp(-T / tr)))
    exp['scale'] = w0 * math.exp(ln_ratio) - w0

    res = {'r_pre_hz': r_pre * 1e3, 'r_post_hz': r_post * 1e3, 'duration_ms': T}
    for name, e in exp.items():
        m = s['projections'][name]['weight']['mean'] - w0
        res[f'{name}_expected'] = e
        res[f'{name}_measured'] = m
        res[f'{name}_err'] = abs(m - e) / abs(e) if e else None
    json.dump(res, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
