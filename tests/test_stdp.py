"""Pair-based STDP against its closed form: single pairs, pair sums over spike trains, bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikesynth.dsp.stdp import STDPParameters, prepare_stdp, stdp_run, stdp_update
from spikesynth.network import simulate_network

DT = 0.1  # ms


def _pair_network(k_pre, k_post, *, delay=0.0, lr=1.0, w=0.5, stdp=None, n_steps=1500):
    """Two LIF neurons, each fired once by a one-step pulse; a plastic A -> B synapse, g_max 0.

    A one-step pulse of 1000 (threshold 1, tau 10 ms, dt 0.1 ms) fires the neuron inside that
    step; the 5 ms refractory time keeps it to one spike. ``g_max = 0`` so the synapse does not
    influence B: only the spike timing drives the weight.
    """
    lif = {"model": "lif", "tau": 10.0, "t_ref": 5.0, "gain": 1.0}
    spec = {
        "neurons": [{"name": "A", **lif}, {"name": "B", **lif}],
        "synapses": [
            {
                "pre": "A", "post": "B", "g_max": 0.0, "tau": 5.0, "delay": delay,
                "sign": "excitatory", "w": w, "plastic": True, "stdp": stdp or {},
            }
        ],
    }  # fmt: skip
    drive = np.zeros((n_steps, 2))
    for k, col in ((k_pre, 0), (k_post, 1)):
        if k is not None:
            drive[k, col] = 1000.0
    return simulate_network(spec, drive, DT, lr=lr)


STDP = {"tau_plus": 16.8, "tau_minus": 33.7, "a_plus": 0.01, "a_minus": 0.0125}


@pytest.mark.parametrize("lag", [1, 7, 50, 333])
@pytest.mark.parametrize("delay", [0.0, 2.5])
def test_pre_before_post_potentiates_by_the_exponential_window(lag, delay):
    d = int(round(delay / DT))
    k_pre = 100
    k_post = k_pre + d + lag  # post spike `lag` steps after the pre spike *arrives*
    lr = 0.7
    r = _pair_network(k_pre, k_post, delay=delay, lr=lr, stdp=STDP)
    assert r.spike_steps[0].tolist() == [k_pre] and r.spike_steps[1].tolist() == [k_post]
    dt_pair = (k_post - (k_pre + d)) * DT
    expected = lr * STDP["a_plus"] * math.exp(-dt_pair / STDP["tau_plus"])
    assert r.weights[0] - 0.5 == pytest.approx(expected, rel=1e-9)
    # The weight changes exactly at the post spike and nowhere else.
    w = r.traces["w"][:, 0]
    assert np.all(w[:k_post] == 0.5) and np.all(w[k_post:] == w[-1])


@pytest.mark.parametrize("lag", [1, 7, 50, 333])
@pytest.mark.parametrize("delay", [0.0, 2.5])
def test_post_before_pre_depresses_by_the_exponential_window(lag, delay):
    d = int(round(delay / DT))
    k_post = 100
    k_pre = k_post + lag - d  # the pre spike arrives `lag` steps after the post spike
    lr = 1.3
    r = _pair_network(k_pre, k_post, delay=delay, lr=lr, stdp=STDP)
    dt_pair = (k_post - (k_pre + d)) * DT  # < 0
    expected = -lr * STDP["a_minus"] * math.exp(dt_pair / STDP["tau_minus"])
    assert r.weights[0] - 0.5 == pytest.approx(expected, rel=1e-9)
    w = r.traces["w"][:, 0]
    assert np.all(w[: k_pre + d] == 0.5) and np.all(w[k_pre + d :] == w[-1])


def test_simultaneous_arrival_and_post_spike_do_nothing():
    r = _pair_network(100, 125, delay=2.5, stdp=STDP)  # arrival at step 125 = post spike
    assert r.weights[0] == 0.5


@pytest.mark.parametrize("order", [(100, 300), (300, 100)])
def test_zero_learning_rate_leaves_weights_unchanged(order):
    r = _pair_network(*order, lr=0.0, w=0.123456789, stdp=STDP)
    assert np.all(r.traces["w"] == 0.123456789)


def test_non_plastic_synapse_keeps_its_weight():
    spec_syn = dict(pre=0, post=1, g_max=0.0, tau=5.0, sign="excitatory", w=0.3)
    lif = {"model": "lif", "tau": 10.0, "t_ref": 5.0, "gain": 1.0}
    drive = np.zeros((500, 2))
    drive[100, 0] = drive[110, 1] = 1000.0
    r = simulate_network({"neurons": [lif, lif], "synapses": [spec_syn]}, drive, DT, lr=1.0)
    assert len(r.spike_steps[1]) == 1 and r.weights[0] == 0.3


def _trains(rng, n, p):
    return (rng.random(n) < p).astype(np.uint8), (rng.random(n) < p).astype(np.uint8)


def _pair_sum(pre, post, dt, p: STDPParameters, lr):
    """Independent reference: the all-to-all pair sum, no bounds."""
    tp = np.flatnonzero(pre) * dt
    tq = np.flatnonzero(post) * dt
    lag = tq[None, :] - tp[:, None]  # post - pre
    pot = np.where(lag > 0, p.a_plus * np.exp(-np.abs(lag) / p.tau_plus), 0.0).sum()
    dep = np.where(lag < 0, p.a_minus * np.exp(-np.abs(lag) / p.tau_minus), 0.0).sum()
    return lr * (pot - dep)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spike_trains_change_the_weight_by_the_pair_sum(seed):
    rng = np.random.default_rng(seed)
    pre, post = _trains(rng, 20000, 0.004)
    p = STDPParameters(tau_plus=12.0, tau_minus=25.0, a_plus=0.005, a_minus=0.003,
                       w_min=-1e9, w_max=1e9)  # fmt: skip
    w_out = np.empty(pre.shape[0])
    w = stdp_run(pre, post, prepare_stdp(p, DT), 0.8, 0.0, w_out)
    ref = _pair_sum(pre, post, DT, p, 0.8)
    assert abs(ref) > 1e-3
    assert w == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_network_and_standalone_kernel_agree_on_spike_trains():
    """The same pre/post spike rasters through the network and through stdp_run."""
    rng = np.random.default_rng(5)
    n = 6000
    lif = {"model": "lif", "tau": 10.0, "t_ref": 0.5, "gain": 1.0}
    syn = {"pre": 0, "post": 1, "g_max": 0.0, "tau": 5.0, "delay": 0.7, "sign": "excitatory",
           "w": 0.5, "plastic": True, "stdp": STDP}  # fmt: skip
    drive = np.zeros((n, 2))
    drive[:, 0] = np.where(rng.random(n) < 0.01, 1000.0, 0.0)
    drive[:, 1] = np.where(rng.random(n) < 0.01, 1000.0, 0.0)
    r = simulate_network({"neurons": [lif, lif], "synapses": [syn]}, drive, DT, lr=0.5)
    pre = np.zeros(n, dtype=np.uint8)
    post = np.zeros(n, dtype=np.uint8)
    d = r.network.synapses[0]["delay_steps"]
    assert d == 7
    arrivals = r.spike_steps[0] + d
    pre[arrivals[arrivals < n]] = 1
    post[r.spike_steps[1]] = 1
    assert pre.sum() > 20 and post.sum() > 20
    p = STDPParameters(**STDP)
    w_out = np.empty(n)
    stdp_run(pre, post, prepare_stdp(p, DT), 0.5, 0.5, w_out)
    # The network decays its traces in closed form (decay ** steps, at the spikes) where
    # stdp_run multiplies once per step: equal to float rounding (weights are of order 1).
    np.testing.assert_allclose(r.traces["w"][:, 0], w_out, rtol=0.0, atol=1e-14)
    changed = np.flatnonzero(np.diff(w_out) != 0.0) + 1
    np.testing.assert_array_equal(np.flatnonzero(np.diff(r.traces["w"][:, 0]) != 0.0) + 1,
                                  changed)  # the weight moves at the same steps


def test_weights_stay_within_bounds_and_repeated_pairings_converge_to_them():
    n = 40000
    period = 400  # one pairing every 40 ms
    pre = np.zeros(n, dtype=np.uint8)
    post = np.zeros(n, dtype=np.uint8)
    pre[50::period] = 1
    post[100::period] = 1  # 5 ms after each pre: potentiation dominates
    p = STDPParameters(a_plus=0.05, a_minus=0.02, w_min=0.1, w_max=0.8)
    c = prepare_stdp(p, DT)
    w_out = np.empty(n)
    assert stdp_run(pre, post, c, 1.0, 0.2, w_out) == 0.8
    assert w_out.min() >= 0.1 and w_out.max() <= 0.8
    # Each pairing depresses a little (the pre spike sees the previous post spike 35 ms back)
    # and potentiates more: period by period the weight climbs until it sits on the bound.
    per_period = w_out[period - 1 :: period]
    reached = np.argmax(per_period == 0.8)
    assert reached > 3 and np.all(np.diff(per_period[: reached + 1]) > 0)
    assert np.all(per_period[reached:] == 0.8)
    # Reversed order (post 5 ms before pre): depression drives the weight to w_min.
    assert stdp_run(post, pre, c, 1.0, 0.7, w_out) == 0.1
    assert w_out.min() >= 0.1 and w_out.max() <= 0.7


def test_network_pairings_converge_to_w_max():
    drive = np.zeros((20000, 2))
    drive[100::400, 0] = 1000.0
    drive[150::400, 1] = 1000.0
    lif = {"model": "lif", "tau": 10.0, "t_ref": 5.0, "gain": 1.0}
    syn = {"pre": 0, "post": 1, "g_max": 0.0, "tau": 5.0, "sign": "excitatory", "w": 0.2,
           "plastic": True, "stdp": {"a_plus": 0.05, "w_max": 0.9}}  # fmt: skip
    r = simulate_network({"neurons": [lif, lif], "synapses": [syn]}, drive, DT)
    w = r.traces["w"][:, 0]
    assert w[-1] == 0.9 and w.max() == 0.9 and w[0] == 0.2


def test_update_rule_scalar_cases():
    args = dict(lr=1.0, a_plus=0.1, a_minus=0.2, w_min=0.0, w_max=1.0)
    assert stdp_update(0.5, 0.3, 0.4, False, False, **args) == 0.5
    assert stdp_update(0.5, 0.3, 0.4, False, True, **args) == pytest.approx(0.53)
    assert stdp_update(0.5, 0.3, 0.4, True, False, **args) == pytest.approx(0.42)
    assert stdp_update(0.99, 1.0, 0.0, False, True, **args) == 1.0
    assert stdp_update(0.01, 0.0, 1.0, True, False, **args) == 0.0
    assert stdp_update(7.0, 1.0, 1.0, True, True, **{**args, "lr": 0.0}) == 7.0


def test_bad_stdp_parameters_are_rejected():
    with pytest.raises(ValueError, match="tau_plus"):
        prepare_stdp(STDPParameters(tau_plus=0.0), DT)
    with pytest.raises(ValueError, match="a_minus"):
        prepare_stdp(STDPParameters(a_minus=-1.0), DT)
    with pytest.raises(ValueError, match="w_min"):
        prepare_stdp(STDPParameters(w_min=2.0, w_max=1.0), DT)
