"""Network kernel and study API: synapses against closed forms and an ODE reference, network
behaviours (half-centre oscillator, synchronising ring, chaotic cluster), spec validation,
64-neuron networks, determinism, plain-Python execution."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from spikesynth.network import (
    NetworkSpecError,
    build_network,
    load_network_spec,
    simulate_network,
)

NETWORKS = Path(__file__).resolve().parent.parent / "patches"
NETWORK_PATCHES = ["half_centre.yaml", "sync_ring.yaml", "chaotic_cluster.yaml",
                   "gated_burst.yaml", "stdp_ring.yaml"]


def _one_spike_pair(sign=None, *, e_syn=None, post=None, method="euler", dt=0.1, delay=1.5,
                    g_max=0.2, tau=5.0, k_spike=100, n_steps=2000):  # fmt: skip
    """A LIF ``pre`` fired once by a one-step pulse, into a passive ``post`` (no drive)."""
    pre = {"name": "pre", "model": "lif", "tau": 10.0, "t_ref": 5.0, "method": method, "gain": 1}
    post = post or {"name": "post", "model": "lif", "tau": 10.0}
    syn = {"pre": "pre", "post": "post", "g_max": g_max, "tau": tau, "delay": delay}
    syn.update({"sign": sign} if e_syn is None else {"E_syn": e_syn})
    drive = np.zeros((n_steps, 2))
    drive[k_spike, 0] = 1000.0
    return simulate_network({"neurons": [pre, post], "synapses": [syn]}, drive, dt)


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("delay", [0.0, 0.1, 1.5, 7.3])
def test_conductance_is_an_exact_exponential_starting_after_the_delay(method, delay):
    dt, g_max, tau, k = 0.1, 0.2, 5.0, 100
    r = _one_spike_pair("excitatory", method=method, dt=dt, delay=delay, g_max=g_max, tau=tau,
                        k_spike=k)  # fmt: skip
    assert r.spike_steps[0].tolist() == [k]
    assert r.spike_steps[1].size == 0  # the post neuron stays passive
    # Transmission leaves at the end of the spike step (the exact LIF reports the sub-step
    # crossing time inside it).
    t_sent = (k + 1) * dt
    if method == "euler":
        assert r.spike_times[0][0] == pytest.approx(t_sent, abs=1e-12)
    else:
        assert k * dt < r.spike_times[0][0] < t_sent
    d = r.network.synapses[0]["delay_steps"]
    assert d == round(delay / dt)
    g = r.traces["g"][:, 0]
    t = r.t
    on = np.arange(g.size) >= k + d  # the step whose end is t_sent + delay
    assert np.all(g[~on] == 0.0)
    expected = g_max * np.exp(-(t[on] - t_sent - d * dt) / tau)
    np.testing.assert_allclose(g[on], expected, rtol=1e-12)
    assert g[k + d] == g_max  # the jump is exactly w * g_max


def test_weight_scales_the_jump():
    lif = {"model": "lif", "tau": 10.0, "t_ref": 5.0, "gain": 1.0}
    syn = {"pre": 0, "post": 1, "g_max": 0.4, "tau": 3.0, "sign": "inhibitory", "w": 0.25}
    drive = np.zeros((300, 2))
    drive[10, 0] = 1000.0
    r = simulate_network({"neurons": [lif, {"model": "lif"}], "synapses": [syn]}, drive, 0.1)
    assert r.traces["g"][:, 0].max() == 0.4 * 0.25


@pytest.mark.parametrize("sign", ["excitatory", "inhibitory"])
def test_lif_post_potential_matches_an_ode_reference(sign):
    """tau v' = -v + g(t) (E - v) with the closed-form g(t), solved by scipy at tight tolerance."""
    dt, g_max, tau_s, tau_m, delay, k = 0.01, 0.3, 4.0, 10.0, 1.0, 200
    r = _one_spike_pair(sign, dt=dt, delay=delay, g_max=g_max, tau=tau_s, k_spike=k,
                        n_steps=6000)  # fmt: skip
    e = r.network.synapses[0]["E_syn"]
    assert e == (1.5 if sign == "excitatory" else -0.5)
    t0 = (k + 1) * dt + delay

    def rhs(t, v):
        g = g_max * math.exp(-(t - t0) / tau_s) if t >= t0 else 0.0
        return [(-v[0] + g * (e - v[0])) / tau_m]

    t = r.t
    sol = solve_ivp(rhs, (t0, t[-1]), [0.0], t_eval=t[t >= t0], rtol=1e-11, atol=1e-13,
                    max_step=0.05)  # fmt: skip
    v = r.traces["v"][:, 1]
    assert np.all(v[t < t0] == 0.0)
    ref = sol.y[0]
    peak = np.max(np.abs(ref))
    # Explicit hold of g (E - v) over each step: first order in dt.
    assert np.max(np.abs(v[t >= t0] - ref)) < 2e-3 * peak
    if sign == "excitatory":
        assert v.max() > 0.01 and v.min() >= 0.0  # depolarises (E - v > 0)
    else:
        assert v.min() < -0.005 and v.max() <= 0.0  # hyperpolarises (E - v < 0)


@pytest.mark.parametrize(("sign", "direction"), [("excitatory", 1.0), ("inhibitory", -1.0)])
def test_izhikevich_post_moves_toward_the_reversal_potential(sign, direction):
    post = {"name": "post", "model": "izhikevich", "preset": "tonic_spiking", "v0": -70.0,
            "u0": -14.0}  # fmt: skip
    r = _one_spike_pair(sign, post=post, dt=0.1, g_max=0.05, tau=5.0, k_spike=100)
    e = r.network.synapses[0]["E_syn"]
    assert e == (0.0 if sign == "excitatory" else -80.0)
    v = r.traces["v"][:, 1]
    k_on = 100 + 15
    assert np.all(v[: k_on + 1] == -70.0)  # rest (v = -70, u = b v is a fixed point)
    dev = (v - (-70.0)) * direction
    first = dev[np.flatnonzero(dev)[0]]
    assert first > 0.0  # the first response has the sign of E_syn - v
    # The main excursion is toward E_syn; the recovery variable u then gives a small
    # opposite after-swing (a property of the model, not of the synapse).
    assert dev.max() > 0.2 and -dev.min() < 0.1 * dev.max()
    assert r.spike_steps[1].size == 0


def test_reversal_potential_can_be_given_explicitly():
    r = _one_spike_pair(e_syn=0.5)  # between rest (0) and threshold (1): depolarising
    assert r.network.synapses[0]["E_syn"] == 0.5
    v = r.traces["v"][:, 1]
    assert 0.0 < v.max() < 0.5


# --------------------------------------------------------------------------------------------
# Network behaviours


def _alternation(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(number of A/B switches in the merged spike sequence, number of spikes)."""
    order = np.argsort(np.r_[a, b], kind="stable")
    seq = np.concatenate([np.zeros(len(a)), np.ones(len(b))])[order]
    return int(np.count_nonzero(np.diff(seq))), len(seq)


@pytest.mark.parametrize("dt", [0.1, None])  # None: the patch's own step (0.25 ms)
def test_half_centre_oscillator_alternates_in_antiphase_bursts(dt):
    spec = load_network_spec(NETWORKS / "half_centre.yaml")
    if dt is None:
        from spikesynth import load_patch

        dt = float(load_patch(NETWORKS / "half_centre.yaml")["network.step_ms"])
    r = simulate_network(spec, np.full(int(3000 / dt), 10.0), dt, record=())
    a, b = r.spike_times
    a, b = a[a > 500], b[b > 500]  # after the start-up transient
    assert len(a) > 20 and len(b) > 20
    switches, n = _alternation(a, b)
    # Bursts: several spikes per turn, and many turns.
    assert switches >= 10
    assert n / (switches + 1) >= 3
    # Anti-phase: while one side bursts the other is silent, so the burst midpoints of A fall
    # half a cycle from those of B.
    bursts_a = _burst_centres(a)
    bursts_b = _burst_centres(b)
    period = np.median(np.diff(bursts_a))
    assert np.median(np.diff(bursts_b)) == pytest.approx(period, rel=0.1)
    phase = [(cb - bursts_a[bursts_a < cb][-1]) / period % 1.0 for cb in bursts_b[1:]]
    assert abs(np.median(phase) - 0.5) < 0.1
    # Control: the same neurons without the synapses fire tonically (no bursts at all), so
    # the bursting and the alternation come from the mutual inhibition.
    alone = simulate_network({**spec, "synapses": []}, np.full(int(3000 / dt), 10.0), dt)
    for t in alone.spike_times:
        isi = np.diff(t[t > 500])
        # Tonic: regular to 1 %, or to one step (the spikes fall on the step grid).
        assert isi.std() < max(0.01 * isi.mean(), dt)
        assert isi.min() > 0.9 * isi.mean()  # no burst: no short intervals


def _burst_centres(t: np.ndarray, gap: float | None = None) -> np.ndarray:
    isi = np.diff(t)
    gap = gap if gap is not None else 3.0 * np.median(isi)
    starts = np.r_[0, np.flatnonzero(isi > gap) + 1]
    stops = np.r_[starts[1:], len(t)]
    return np.array([(t[i] + t[j - 1]) / 2.0 for i, j in zip(starts, stops, strict=True)])


def _spread(spike_times, t_ref):
    """Largest distance between the neurons' spikes nearest to ``t_ref``, ms."""
    near = [t[np.argmin(np.abs(t - t_ref))] for t in spike_times]
    return max(near) - min(near)


def test_excitatory_ring_synchronises():
    spec = load_network_spec(NETWORKS / "sync_ring.yaml")
    dt = 1000.0 / 48000.0  # audio rate
    drive = np.full(int(1500 / dt), 1.2)
    r = simulate_network(spec, drive, dt, record=())
    assert all(len(t) > 50 for t in r.spike_times)
    assert _spread(r.spike_times, 20.0) > 5.0  # scattered at the start
    for t_ref in (1200.0, 1300.0, 1400.0, 1490.0):
        assert _spread(r.spike_times, t_ref) < 0.5  # lock-step at the end
    # Control: without the synapses the initial scatter persists.
    alone = simulate_network({**spec, "synapses": []}, drive, dt, record=())
    assert _spread(alone.spike_times, 1490.0) > 5.0


def _nudged(spec, eps):
    spec = json.loads(json.dumps(spec))
    spec["neurons"][0]["v0"] += eps
    return spec


def test_chaotic_cluster_diverges_exponentially_and_stays_bounded():
    spec = load_network_spec(NETWORKS / "chaotic_cluster.yaml")
    dt, T = 0.1, 4000.0
    drive = np.zeros(int(T / dt))
    base = simulate_network(spec, drive, dt, record=("v", "g"))
    v = base.traces["v"]
    assert v.min() > -100.0 and v.max() <= 30.0 and np.all(np.isfinite(base.traces["g"]))
    assert all(len(t) > 20 for t in base.spike_times)  # every neuron keeps firing
    t = base.t
    windows = np.arange(0.0, T, 250.0)

    def separation(eps):
        other = simulate_network(_nudged(spec, eps), drive, dt, record=("v",)).traces["v"]
        d = np.abs(other - v).max(axis=1)
        return np.array([d[(t > a) & (t <= a + 250.0)].max() for a in windows])

    small, tiny = separation(1e-6), separation(1e-9)
    assert small[0] < 1e-2 and tiny[0] < 1e-5  # still close after the first 250 ms
    # Both reach macroscopic separation (a spike shifted: tens of mV).
    assert small.max() > 10.0 and tiny.max() > 10.0
    # Exponential, not linear, growth: 1000x smaller nudges reach 1 mV only a fixed time
    # later (ln(1000) / lambda), not 1000x later.
    t_small = windows[np.argmax(small > 1.0)]
    t_tiny = windows[np.argmax(tiny > 1.0)]
    assert 0 < t_small < t_tiny < 2.5 * t_small
    # In the linear regime the separation grows steadily: a straight line in log scale.
    grow = (tiny > 0) & (tiny < 0.5)
    slope, _ = np.polyfit(windows[grow], np.log(tiny[grow]), 1)
    assert grow.sum() >= 6 and slope > 1.0 / 1000.0  # e-folding time below 1 s


def test_inhibition_gated_burst_fires_on_release():
    spec = load_network_spec(NETWORKS / "gated_burst.yaml")
    dt = 0.1
    drive = np.zeros(int(600 / dt))
    drive[int(100 / dt) : int(300 / dt)] = 2.0
    r = simulate_network(spec, drive, dt, record=())
    gate, burst = r.spike_times
    assert 15 < len(gate) and gate.min() > 100.0 and gate.max() < 300.0
    assert len(burst) >= 5
    assert burst.min() > 300.0 and burst.max() < 450.0  # only after the release
    assert np.median(np.diff(burst)) < 5.0  # a burst (>200 Hz), not tonic firing


# --------------------------------------------------------------------------------------------
# Scale, determinism, API


def _random_spec(n=64, p=0.1, seed=0, plastic=True):
    rng = np.random.default_rng(seed)
    neurons = []
    for j in range(n):
        if j % 2:
            neurons.append({"model": "lif", "tau": float(rng.uniform(5, 20)), "t_ref": 1.0,
                            "v0": float(rng.uniform(0, 1)), "gain": 1.2})  # fmt: skip
        else:
            neurons.append({"model": "izhikevich", "preset": "tonic_spiking",
                            "v0": float(rng.uniform(-70, -60)), "gain": 10.0})  # fmt: skip
    synapses = [
        {"pre": i, "post": j, "g_max": 0.05, "tau": 5.0, "delay": float(rng.uniform(0, 5)),
         "sign": "inhibitory" if i % 5 == 0 else "excitatory", "w": 0.5, "plastic": plastic}
        for i in range(n) for j in range(n) if i != j and rng.random() < p
    ]  # fmt: skip
    return {"neurons": neurons, "synapses": synapses}


def test_64_neuron_network_runs_and_is_deterministic():
    spec = _random_spec()
    dt = 1000.0 / 48000.0
    drive = np.ones(int(300 / dt))
    r1 = simulate_network(spec, drive, dt)
    r2 = simulate_network(spec, drive, dt)
    n_syn = len(spec["synapses"])
    assert 64 * 63 * 0.07 < n_syn < 64 * 63 * 0.13
    assert r1.traces["v"].shape == (drive.size, 64)
    assert r1.traces["g"].shape == r1.traces["w"].shape == (drive.size, n_syn)
    assert all(len(t) > 3 for t in r1.spike_times)
    assert np.all(np.isfinite(r1.traces["v"]))
    for key in ("v", "g", "w"):
        np.testing.assert_array_equal(r1.traces[key], r2.traces[key])
    for a, b in zip(r1.spike_times, r2.spike_times, strict=True):
        np.testing.assert_array_equal(a, b)
    # STDP moved weights, within the bounds.
    assert np.any(r1.weights != 0.5) and r1.weights.min() >= 0.0 and r1.weights.max() <= 1.0
    # lr = 0: the same spikes as far as the weights do not matter yet, and frozen weights.
    frozen = simulate_network(spec, drive, dt, lr=0.0, record=("w",))
    assert np.all(frozen.traces["w"] == 0.5)


def test_more_than_64_neurons_is_rejected():
    spec = {"neurons": [{"model": "lif"}] * 65}
    with pytest.raises(NetworkSpecError, match="neurons: at most 64"):
        build_network(spec, 0.1)


def test_running_in_pieces_equals_running_at_once():
    """A built network keeps its state: two halves give the same spikes as one run."""
    spec = _random_spec(n=16, p=0.3, seed=3)
    dt = 0.05
    drive = np.ones(4000)
    whole = simulate_network(spec, drive, dt)
    network = build_network(spec, dt)
    first = simulate_network(network, drive[:1700], dt)
    second = simulate_network(network, drive[1700:], dt)
    np.testing.assert_array_equal(
        np.concatenate([first.traces["v"], second.traces["v"]]), whole.traces["v"]
    )
    np.testing.assert_array_equal(second.weights, whole.weights)


def test_event_buffer_growth_keeps_every_spike():
    spec = {"neurons": [{"model": "lif", "tau": 1.0, "gain": 1.0}] * 64}
    r = simulate_network(spec, np.full(20000, 50.0), 0.05, record=())  # ~1 kHz each
    counts = [len(t) for t in r.spike_times]
    assert min(counts) == max(counts) > 500  # well past the initial event capacity
    times, ids = r.raster()
    assert times.shape == ids.shape == (sum(counts),)
    assert np.all(np.diff(times) >= 0)
    assert np.array_equal(np.bincount(ids, minlength=64), counts)


def test_raster_orders_by_time_then_neuron():
    r = _one_spike_pair("excitatory")
    times, ids = r.raster()
    assert ids.tolist() == [0] and times[0] == pytest.approx(10.1)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({}, "neurons"),
        ({"neurons": []}, "neurons"),
        ({"neurons": [{"model": "hh"}]}, "neurons[0].model"),
        ({"neurons": [{"model": "lif", "tau": -1.0}]}, "neurons[0]"),
        ({"neurons": [{"model": "lif", "a": 0.02}]}, "neurons[0].a"),
        ({"neurons": [{"model": "lif", "gain": "x"}]}, "neurons[0].gain"),
        ({"neurons": [{"model": "izhikevich", "preset": "nope"}]}, "neurons[0]"),
        ({"neurons": [{"model": "lif", "name": "a"}, {"model": "lif", "name": "a"}]},
         "neurons[1].name"),
        ({"neurons": [{"model": "lif"}], "wires": []}, "wires"),
        ({"neurons": [{"model": "lif"}], "synapses": [{"post": 0}]}, "synapses[0].pre"),
        ({"neurons": [{"model": "lif"}], "synapses": [{"pre": 3, "post": 0}]},
         "synapses[0].pre"),
        ({"neurons": [{"model": "lif"}], "synapses": [{"pre": "x", "post": 0}]},
         "synapses[0].pre"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "tau": 1.0, "sign": "excitatory"}]},
         "synapses[0].g_max"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 0.0, "sign": "excitatory"}]},
         "synapses[0].tau"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 1.0}]}, "synapses[0].sign"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 1, "sign": "excitatory",
                        "E_syn": 1.0}]}, "synapses[0].sign"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 1, "sign": "positive"}]},
         "synapses[0].sign"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 1, "sign": "excitatory",
                        "delay": -1}]}, "synapses[0].delay"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 1, "sign": "excitatory",
                        "plastic": True, "w": 2.0}]}, "synapses[0].w"),
        ({"neurons": [{"model": "lif"}],
          "synapses": [{"pre": 0, "post": 0, "g_max": 1, "tau": 1, "sign": "excitatory",
                        "stdp": {"tau_plus": 0}}]}, "synapses[0].stdp.tau_plus"),
        ({"neurons": [{"model": "lif"}], "stdp": {"lr": -1}}, "stdp.lr"),
        ({"neurons": [{"model": "lif"}], "stdp": {"w_min": 2.0}}, "stdp.w_max"),
    ],
)  # fmt: skip
def test_invalid_specs_name_the_key(spec, key):
    with pytest.raises(NetworkSpecError) as info:
        build_network(spec, 0.1)
    assert info.value.key == key
    assert str(info.value).startswith(key + ":")


def test_bad_current_and_options_are_rejected():
    spec = {"neurons": [{"model": "lif"}, {"model": "lif"}]}
    with pytest.raises(ValueError, match="shape"):
        simulate_network(spec, np.zeros((10, 3)), 0.1)
    with pytest.raises(ValueError, match="finite"):
        simulate_network(spec, np.array([0.0, np.nan]), 0.1)
    with pytest.raises(ValueError, match="record"):
        simulate_network(spec, np.zeros(10), 0.1, record=("u",))
    with pytest.raises(ValueError, match="lr"):
        simulate_network(spec, np.zeros(10), 0.1, lr=-0.5)
    with pytest.raises(NetworkSpecError, match="dt"):
        build_network(spec, 0.0)


@pytest.mark.parametrize("name", NETWORK_PATCHES)
def test_bundled_network_patches_load_and_build(name):
    spec = load_network_spec(NETWORKS / name)
    network = build_network(spec, 1000.0 / 48000.0)
    assert network.n_neurons >= 2 and network.n_synapses >= 1


def test_load_network_spec_errors(tmp_path):
    with pytest.raises(NetworkSpecError, match="cannot read"):
        load_network_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: [unclosed\n")
    with pytest.raises(NetworkSpecError, match="invalid YAML"):
        load_network_spec(bad)
    bad.write_text("neurons: []\n")
    with pytest.raises(NetworkSpecError, match="network: missing"):
        load_network_spec(bad)
    bad.write_text("network: 3\n")
    with pytest.raises(NetworkSpecError, match="expected a mapping"):
        load_network_spec(bad)


_PURE_PYTHON_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, "tests")
from test_network import _random_spec
from spikesynth.network import simulate_network
r = simulate_network(_random_spec(n=12, p=0.3, seed=7), np.ones(3000), 0.05)
print(json.dumps({"t": [t.tolist() for t in r.spike_times], "w": r.weights.tolist(),
                  "v": r.traces["v"][::37].tolist()}))
"""


def test_kernels_run_without_jit_and_agree():
    """The network runs as plain Python (NUMBA_DISABLE_JIT=1) with identical results."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_SCRIPT], env=env, cwd=root, capture_output=True,
        text=True, timeout=300, check=True,
    )  # fmt: skip
    pure = json.loads(proc.stdout)
    r = simulate_network(_random_spec(n=12, p=0.3, seed=7), np.ones(3000), 0.05)
    assert sum(len(t) for t in pure["t"]) > 50
    for a, b in zip(pure["t"], r.spike_times, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pure["w"], r.weights)
    np.testing.assert_array_equal(pure["v"], r.traces["v"][::37])


@pytest.mark.parametrize("interleaved", [False, True])
def test_the_vectorised_neuron_pass_equals_the_scalar_kernels_neuron_by_neuron(interleaved):
    """One ``network_step`` against the scalar LIF/Izhikevich steps on each neuron, its input
    summed over its receptors from the synapses' own ``E``: runs of either model (shared and
    differing coefficients) or both models interleaved (the mixed pass), LIF refractory and
    crossing, exact and Euler, neurons with more receptors than the slots (the scalar pass).
    Bit-identical, step after step."""
    from spikesynth.dsp import izhikevich as izh
    from spikesynth.dsp import lif
    from spikesynth.dsp import network as net

    rng = np.random.default_rng(3)
    neurons = [{"model": "izhikevich", "a": 0.02 + 0.002 * j, "b": 0.2, "c": -65, "d": 6,
                "gain": 10.0, "v0": float(rng.uniform(-70, -60))} for j in range(7)]  # fmt: skip
    neurons += [{"model": "lif", "tau": float(rng.uniform(5, 20)), "t_ref": 0.7, "gain": 1.3,
                 "method": ("euler", "exact")[j % 2], "v0": float(rng.uniform(0, 1))}
                for j in range(6)]  # fmt: skip
    neurons += [{"model": "izhikevich", "preset": "tonic_spiking", "gain": 9.0 + j}
                for j in range(4)]  # fmt: skip
    neurons += [{"model": "lif", "tau": 8.0, "t_ref": 0.5, "gain": 1.2 + 0.1 * j}
                for j in range(3)]  # fmt: skip
    neurons.append({"model": "izhikevich", "gain": 9.0})
    lif_, izh_ = net.KIND_LIF, net.KIND_IZHIKEVICH
    runs = [(izh_, 0, 7, 0), (lif_, 7, 13, 0), (izh_, 13, 17, 1), (lif_, 17, 20, 1),
            (izh_, 20, 21, 1)]  # fmt: skip
    if interleaved:
        lifs = [nd for nd in neurons if nd["model"] == "lif"]
        izhs = [nd for nd in neurons if nd["model"] != "lif"]
        neurons = [nd for pair in zip(izhs, lifs, strict=False) for nd in pair] + izhs[9:]
        runs = [(net.KIND_MIXED, 0, 21, 0)]
    n = len(neurons)
    synapses = [
        {"pre": i, "post": j, "g_max": 0.03, "tau": float(rng.choice([3.0, 5.0, 8.0]))
         if j % 4 == 0 else 5.0,
         "delay": float(rng.uniform(0, 2)), "w": 1.0,
         "sign": ("excitatory", "inhibitory")[int(rng.random() < 0.3)]}
        for i in range(n) for j in range(n) if i != j and rng.random() < 0.35
    ]  # fmt: skip
    network = build_network({"neurons": neurons, "synapses": synapses}, 0.05)
    topo, state = network.topology, network.state
    assert topo.general[0] != 0 and topo.general[0] != (1 << n) - 1  # both passes in use
    assert [tuple(run) for run in topo.kind_runs] == runs
    post, receptor = topo.syn_idx[:, net.SI_POST], topo.syn_idx[:, net.SI_RECEPTOR]
    receptors = [sorted({int(r) for r in receptor[post == j]}) for j in range(n)]
    e_of = {int(r): float(e) for r, e in zip(receptor, topo.syn_par[:, net.SP_E], strict=True)}
    ext = np.linspace(0.8, 1.6, n)
    seen = {"lif_spike": 0, "izh_spike": 0, "refractory": 0}
    for _ in range(600):
        before, g = state.nstate.copy(), state.rec_g.copy()
        net.network_step(ext, 0.0, topo, state)
        for j in range(n):
            v = before[j, net.V_SLOT]
            i = topo.ninput[j, net.IN_BIAS] + topo.ninput[j, net.IN_GAIN] * ext[j]
            for r in receptors[j]:
                i += g[r] * (e_of[r] - v)
            c = topo.ncoef[j]
            if topo.kind[j] == net.KIND_LIF:
                ref = before[j, lif.LIF_REF]
                seen["refractory"] += ref > 0.0
                *want, z = lif.lif_scalar_step(
                    v, ref, before[j, lif.LIF_SPIKE_OFFSET], i, c[lif.LIF_DT],
                    c[lif.LIF_DECAY], c[lif.LIF_V_TH], c[lif.LIF_V_RESET], c[lif.LIF_TAU],
                    c[lif.LIF_INV_TAU], c[lif.LIF_T_REF], c[lif.LIF_METHOD] != 0.0)  # fmt: skip
                seen["lif_spike"] += z
            else:
                *want, z = izh.izhikevich_scalar_step(
                    v, before[j, izh.IZH_U], i, c[izh.IZH_DT], c[izh.IZH_ADT], c[izh.IZH_B],
                    c[izh.IZH_C], c[izh.IZH_D], c[izh.IZH_E], c[izh.IZH_F], c[izh.IZH_G],
                    c[izh.IZH_U_VREF], c[izh.IZH_U_LEAK], c[izh.IZH_V_PEAK])  # fmt: skip
                seen["izh_spike"] += z
            np.testing.assert_array_equal(state.nstate[j, : len(want)], want)
            assert state.spiked[j] == z
    assert min(seen.values()) > 5, seen


# --------------------------------------------------------------------------------------------
# Bounds: every accepted network fits the memory budget; the rest get one clear message.


def _delay_spec(delay, n_synapses=1):
    syn = {"pre": 0, "post": 1, "g_max": 0.1, "tau": 5.0, "delay": delay, "sign": "excitatory"}
    return {"neurons": [{"model": "lif"}, {"model": "lif"}], "synapses": [syn] * n_synapses}


@pytest.mark.parametrize("delay", [1000.5, 1e6, 1e9, 1e300])
def test_delays_over_a_second_are_rejected_before_allocating(delay):
    with pytest.raises(NetworkSpecError, match=r"must be <= 1000 ms") as info:
        build_network(_delay_spec(delay), 0.005)
    assert info.value.key == "synapses[0].delay"


def test_delays_longer_than_the_ring_at_a_fine_step_are_rejected():
    from spikesynth.dsp.network import MAX_RING_STEPS

    longest = (MAX_RING_STEPS - 1) * 0.005
    assert build_network(_delay_spec(longest), 0.005).ring_steps == MAX_RING_STEPS
    with pytest.raises(NetworkSpecError, match=r"must be <= 327.675 ms at a step of 0.005 ms"):
        build_network(_delay_spec(longest + 0.01), 0.005)
    assert build_network(_delay_spec(1000.0), 0.1).ring_steps == 10001  # coarse step: 1 s fits


def test_synapse_count_is_bounded():
    from spikesynth.dsp.network import MAX_SYNAPSES

    assert build_network(_delay_spec(1.0, MAX_SYNAPSES), 0.1).n_synapses == MAX_SYNAPSES
    with pytest.raises(NetworkSpecError, match=f"at most {MAX_SYNAPSES} synapses"):
        build_network(_delay_spec(1.0, MAX_SYNAPSES + 1), 0.1)


def test_the_largest_accepted_network_fits_the_budget_at_full_polyphony():
    """The bounds are chosen so that the budget check can never refuse a valid patch."""
    from spikesynth.dsp.network import (
        MAX_NEURONS,
        MAX_RING_STEPS,
        MAX_SYNAPSES,
        network_memory_bytes,
    )
    from spikesynth.network import MAX_NETWORKS, NETWORK_MEMORY_BUDGET

    worst = network_memory_bytes(MAX_NEURONS, MAX_SYNAPSES, MAX_RING_STEPS, MAX_NETWORKS)
    assert worst <= NETWORK_MEMORY_BUDGET


def test_the_memory_estimate_bounds_the_arrays_a_voice_pool_allocates():
    from spikesynth.dsp.network import network_memory_bytes
    from spikesynth.network import network_arrays

    spec = _random_spec(n=64, p=0.1, seed=1)

    class Patch:  # what network_arrays reads of a patch
        network = spec

        def __getitem__(self, key):
            return {"network.step_ms": 0.02}[key]

    arrays = network_arrays(Patch(), 8)
    total = sum(a.nbytes for a in arrays.topology) + sum(
        a.nbytes for a in arrays[1:] if isinstance(a, np.ndarray)
    )
    ring = arrays.hist.shape[1]
    estimate = network_memory_bytes(64, len(spec["synapses"]), ring, 8)
    assert total <= estimate < 4 * total


@pytest.mark.parametrize("delay", ["1000000", "1e9", "1.0e+9"])
def test_check_rejects_a_huge_delay_in_one_line(tmp_path, capsys, delay):
    from spikesynth.cli import main

    text = (NETWORKS / "half_centre.yaml").read_text()
    assert "  step_ms: 0.25\n" in text and "delay: 1.0," in text
    text = text.replace("  step_ms: 0.25\n", "  step_ms: 0.005\n")
    text = text.replace("delay: 1.0,", f"delay: {delay},")
    path = tmp_path / "long_delay.yaml"
    path.write_text(text)
    assert main(["check", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert f"{path}:" in err[0] and "network.synapses[0].delay" in err[0]


def test_the_budget_is_checked_for_every_copy_before_allocating():
    from spikesynth.dsp.network import MAX_RING_STEPS

    spec = _delay_spec((MAX_RING_STEPS - 1) * 0.005)
    with pytest.raises(NetworkSpecError, match=r"need \d+ MiB, over the 256 MiB budget"):
        build_network(spec, 0.005, n_networks=100_000)
