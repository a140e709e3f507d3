"""Leaky integrator and LIF kernels against closed-form theory (rates, traces, refractoriness)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from spikesynth.dsp import lif
from spikesynth.neurons import simulate

TAU = 10.0  # ms
V_TH = 1.0


def theory_period(i, tau=TAU, v_th=V_TH, t_ref=0.0):
    """Closed-form LIF period with v_reset = 0: t_ref + tau ln(I / (I - v_th))."""
    return t_ref + tau * np.log(i / (i - v_th))


def run_lif(i, dt, n_periods=40, **params):
    t_ref = params.get("t_ref", 0.0)
    period = theory_period(i, t_ref=t_ref)
    n = int(math.ceil((n_periods + 1) * period / dt))
    p = {"tau": TAU, "v_th": V_TH, "v_reset": 0.0, **params}
    return simulate("lif", p, np.full(n, i), dt)


@pytest.mark.parametrize("dt", [1.0 / 48.0, 0.37])  # 48 kHz in ms, and a coarse step
@pytest.mark.parametrize("t_ref", [0.0, 2.0])
@pytest.mark.parametrize("i", [1.01, 1.1, 1.5, 2.0, 5.0])
def test_exact_rate_matches_closed_form(i, t_ref, dt):
    """Exact method: mean ISI within 0.1 % of t_ref + tau ln(I/(I - v_th)); in fact every ISI
    matches to 1e-9 relative, because the crossing time is solved inside the step."""
    res = run_lif(i, dt, t_ref=t_ref, method="exact")
    expected = theory_period(i, t_ref=t_ref)
    assert res.spike_times.size >= 40
    mean_isi = (res.spike_times[-1] - res.spike_times[0]) / (res.spike_times.size - 1)
    assert abs(mean_isi - expected) / expected < 1e-3
    np.testing.assert_allclose(res.isi, expected, rtol=1e-9)
    # The first spike from v0 = v_reset = 0 comes one free period (without t_ref) after t = 0.
    assert res.spike_times[0] == pytest.approx(expected - t_ref, rel=1e-9)


@pytest.mark.parametrize("i", [1.2, 1.5, 3.0])
def test_euler_matches_discrete_map_and_converges(i):
    """Euler: the discrete map v <- v + x (I - v), x = dt/tau, from 0 crosses v_th after
    N = ceil(ln(I/(I - v_th)) / -ln(1 - x)) steps, so the period is exactly N dt (t_ref = 0).
    Against the continuous period T = tau ln(I/(I - v_th)) this gives the bound
    -T x / (2 (1 - x)) <= N dt - T < dt  (from x <= -ln(1 - x) <= x + x^2 / (2 (1 - x))),
    which is asserted for dt = 1, 0.1, 0.01, 0.001 ms, with the error shrinking towards 0."""
    T = theory_period(i)
    errors = []
    for dt in (1.0, 0.1, 0.01, 0.001):
        x = dt / TAU
        steps = np.log(i / (i - V_TH)) / -np.log1p(-x)
        assert abs(steps - round(steps)) > 1e-6  # not a tie: the ceiling is well defined
        n_cross = math.ceil(steps)
        res = run_lif(i, dt, n_periods=20, method="euler")
        np.testing.assert_allclose(res.isi, n_cross * dt, rtol=1e-12)
        err = res.isi.mean() - T
        assert -T * x / (2 * (1 - x)) - 1e-12 <= err < dt
        errors.append(abs(err))
    assert errors[-1] < 2e-3 * T  # 0.2 % at dt = tau / 10^4
    assert errors[-1] < errors[0] / 100


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("i", [0.0, 0.5, 0.99, 1.0, -1.0])
def test_no_spike_at_or_below_rheobase(i, method):
    """I <= v_th: v relaxes towards I and never reaches threshold, however long (here
    100 tau, long enough for v to round to I exactly)."""
    dt = 1.0 / 48.0
    n = int(100 * TAU / dt)
    res = simulate("lif", {"tau": TAU, "v_th": V_TH, "method": method}, np.full(n, i), dt)
    assert res.spike_times.size == 0
    assert np.all(res.traces["v"] <= V_TH)
    assert res.traces["v"][-1] == pytest.approx(i, abs=1e-12)


def test_just_above_rheobase_fires_slowly():
    res = run_lif(1.001, 0.05, n_periods=3, method="exact")
    expected = theory_period(1.001)  # 69 ms
    assert res.spike_times.size >= 3
    np.testing.assert_allclose(res.isi, expected, rtol=1e-9)


def test_leaky_integrator_exact_matches_analytic_step_response():
    """Exact method: v(t) = I (1 - e^{-t/tau}) at every step end, to rounding."""
    dt, i = 1.0 / 48.0, 2.5
    n = int(5 * TAU / dt)
    res = simulate("leaky_integrator", {"tau": TAU, "method": "exact"}, np.full(n, i), dt)
    analytic = i * -np.expm1(-res.t / TAU)
    np.testing.assert_allclose(res.traces["v"], analytic, rtol=0, atol=1e-12)
    assert res.spike_times.size == 0


def test_leaky_integrator_euler_error_bound_and_first_order():
    """Euler: v_n = I (1 - (1 - x)^n), x = dt/tau. Since
    e^{-nx - n x^2 / (2 (1 - x))} <= (1 - x)^n <= e^{-nx}, the error against
    I (1 - e^{-t/tau}) is at most I x / (2 e (1 - x)) (max of y e^{-y} is 1/e); halving dt
    halves the error (first order)."""
    i = 2.5
    max_err = []
    for dt in (0.2, 0.1, 0.05):
        x = dt / TAU
        n = int(round(5 * TAU / dt))
        res = simulate("leaky_integrator", {"tau": TAU, "method": "euler"}, np.full(n, i), dt)
        err = np.abs(res.traces["v"] - i * -np.expm1(-res.t / TAU)).max()
        assert err <= i * x / (2 * math.e * (1 - x))
        max_err.append(err)
    assert 1.8 < max_err[0] / max_err[1] < 2.2
    assert 1.8 < max_err[1] / max_err[2] < 2.2


@pytest.mark.parametrize("method", ["euler", "exact"])
def test_refractory_holds_reset_and_ignores_input(method):
    """During t_ref after each spike v == v_reset, whatever the input; the input inside the
    refractory windows has no effect on anything."""
    dt, t_ref, i = 0.01, 2.0, 3.0
    v_reset = -0.5
    n = 2000
    params = {"tau": TAU, "v_th": V_TH, "v_reset": v_reset, "t_ref": t_ref, "method": method}
    res = simulate("lif", params, np.full(n, i), dt)
    assert res.spike_times.size >= 3
    t_end = res.t
    held = np.zeros(n, dtype=bool)
    for ts in res.spike_times:
        held |= (t_end > ts) & (t_end <= ts + t_ref - 1e-9)
    assert held.sum() > 0.5 * res.spike_times.size * t_ref / dt
    np.testing.assert_allclose(res.traces["v"][held], v_reset, rtol=0, atol=1e-12)
    # Replace the input by wild values inside the fully held steps: nothing changes.
    steps = np.arange(n)
    wild = np.full(n, i)
    for ts in res.spike_times:
        inside = (steps * dt >= ts) & ((steps + 1) * dt <= ts + t_ref - 1e-9)
        wild[inside] = np.where(steps[inside] % 2 == 0, 50.0, -50.0)
    res2 = simulate("lif", params, wild, dt)
    np.testing.assert_array_equal(res2.spike_times, res.spike_times)
    np.testing.assert_array_equal(res2.traces["v"], res.traces["v"])


def test_refractory_period_with_reset_below_zero():
    """Closed form with v_reset != 0: t_ref + tau ln((I - v_reset)/(I - v_th))."""
    i, v_reset, t_ref, dt = 1.7, -0.3, 1.5, 1.0 / 48.0
    n = 20000
    params = {"tau": TAU, "v_th": V_TH, "v_reset": v_reset, "t_ref": t_ref, "method": "exact"}
    res = simulate("lif", params, np.full(n, i), dt)
    expected = t_ref + TAU * math.log((i - v_reset) / (i - V_TH))
    np.testing.assert_allclose(res.isi, expected, rtol=1e-9)


def test_period_and_drive_closed_forms_invert():
    for i in (1.001, 1.3, 2.0, 10.0, 1000.0):
        for v_reset, t_ref in ((0.0, 0.0), (-0.2, 1.0)):
            T = lif.lif_period(i, TAU, V_TH, v_reset, t_ref)
            assert T == pytest.approx(t_ref + TAU * math.log((i - v_reset) / (i - V_TH)))
            assert lif.lif_drive(T, TAU, V_TH, v_reset, t_ref) == pytest.approx(i, rel=1e-9)
    assert lif.lif_period(1.0, TAU, V_TH, 0.0, 0.0) == math.inf
    assert lif.lif_period(0.3, TAU, V_TH, 0.0, 0.0) == math.inf
    assert lif.lif_drive(1.0, TAU, V_TH, 0.0, 1.0) == math.inf


def test_drive_for_a_pitch_at_48k():
    """In-tune use: tau = 5 ms (in s), drive for A4 = 440 Hz, run at 48 kHz; the measured
    frequency is 440 Hz within 0.01 %."""
    sr, tau, f = 48000.0, 0.005, 440.0
    drive = lif.lif_drive(1.0 / f, tau, 1.0, 0.0, 0.0)
    n = int(0.25 * sr)
    res = simulate("lif", {"tau": tau, "method": "exact"}, np.full(n, drive), 1.0 / sr)
    freq = (res.spike_times.size - 1) / (res.spike_times[-1] - res.spike_times[0])
    assert freq == pytest.approx(f, rel=1e-4)


def test_step_kernels_write_only_into_given_arrays():
    coeffs = lif.prepare_lif(lif.LIFParameters(tau=TAU, t_ref=1.0), 0.1)
    state = lif.lif_state(0.0)
    spiked = [lif.lif_step(state, 5.0, coeffs) for _ in range(200)]
    assert any(spiked)
    assert state.shape == (lif.LIF_N_STATE,)
    assert 0.0 < state[lif.LIF_SPIKE_OFFSET] <= 0.1


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError):
        simulate("lif", {"tau": -1.0}, np.zeros(4), 0.1)
    with pytest.raises(ValueError):
        simulate("lif", {"method": "rk4"}, np.zeros(4), 0.1)
    with pytest.raises(ValueError):
        simulate("lif", {"threshold": 1.0}, np.zeros(4), 0.1)
    with pytest.raises(ValueError):
        simulate("leaky_integrator", {"v_th": 1.0}, np.zeros(4), 0.1)
    with pytest.raises(ValueError):
        simulate("lif", {}, np.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError):
        simulate("hodgkin_huxley", {}, np.zeros(4), 0.1)
    with pytest.raises(ValueError):
        simulate("lif", {}, np.zeros(4), 0.0)


_PURE_PYTHON_SCRIPT = """
import json, numpy as np
from spikesynth.neurons import simulate, run_behaviour
out = {}
for m in ("euler", "exact"):
    r = simulate("lif", {"tau": 10.0, "t_ref": 1.0, "method": m}, np.full(3000, 1.8), 0.05)
    out[m] = r.spike_times.tolist()
    out[m + "_v"] = r.traces["v"][::97].tolist()
out["izh"] = run_behaviour("tonic_bursting").spike_steps.tolist()
print(json.dumps(out))
"""


def test_kernels_run_without_jit_and_agree():
    """The kernels also run as plain Python (NUMBA_DISABLE_JIT=1) and give the same results."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    pure = json.loads(proc.stdout)
    from spikesynth.neurons import run_behaviour

    for m in ("euler", "exact"):
        r = simulate("lif", {"tau": 10.0, "t_ref": 1.0, "method": m}, np.full(3000, 1.8), 0.05)
        assert len(pure[m]) > 10
        np.testing.assert_allclose(pure[m], r.spike_times, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(pure[m + "_v"], r.traces["v"][::97], rtol=1e-13, atol=1e-13)
    assert pure["izh"] == run_behaviour("tonic_bursting").spike_steps.tolist()
