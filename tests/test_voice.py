"""The spiking voice against theory: rheobase, closed-form period, spike shape, refractoriness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikesynth.dsp import voice as vk
from spikesynth.engine import trace_voice
from spikesynth.patch import load_patch

SR = 48000


@pytest.fixture(scope="module")
def patch():
    return load_patch(None)


def _rising_edges(state, target):
    s = np.asarray(state)
    return np.nonzero((s[1:] == target) & (s[:-1] != target))[0] + 1


def _run_lengths(mask):
    """Lengths of the complete runs of True in a boolean array (edges excluded)."""
    m = np.concatenate(([False], np.asarray(mask, bool), [False])).astype(int)
    d = np.diff(m)
    starts, stops = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    lengths = stops - starts
    complete = (starts > 0) & (stops < len(mask))
    return lengths[complete]


def _closed_form_period(patch, drive):
    """T = tau·ln((I - v_start)/(I - v_high)) + t_fire + t_ref, in samples (module docstring)."""
    v = patch.values
    ms = SR / 1000
    tau = v["membrane.tau_ms"] * ms
    t_fire = v["firing_ms"] * ms
    t_ref = v["refractory_ms"] * ms
    v_start = v["membrane.threshold_low"] * math.exp(-t_ref / tau)
    v_high = v["membrane.threshold_high"]
    return tau * math.log((drive - v_start) / (drive - v_high)) + t_fire + t_ref


def test_below_rheobase_never_fires(patch):
    v_high = patch["membrane.threshold_high"]
    for level in (0.0, 0.5 * v_high, 0.999 * v_high, v_high):
        tr = trace_voice(patch, SR, current=np.full(SR, level))
        assert not np.any(tr["state"] == vk.FIRING), level
        # ... and the membrane settles at the drive, as a lossy integrator must.
        assert tr["v"][-1] == pytest.approx(level, abs=1e-9)


def test_membrane_is_an_exact_lossy_integrator(patch):
    tau = patch["membrane.tau_ms"] * SR / 1000
    level = 0.7 * patch["membrane.threshold_high"]
    tr = trace_voice(patch, SR, current=np.full(2000, level))
    n = np.arange(1, 2001)
    np.testing.assert_allclose(tr["v"], level * (1 - np.exp(-n / tau)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ratio", [1.001, 1.05, 1.5, 3.0, 10.0])
def test_period_matches_closed_form_above_rheobase(patch, ratio):
    drive = ratio * patch["membrane.threshold_high"]
    tr = trace_voice(patch, SR, current=np.full(SR * 4, drive))
    starts = _rising_edges(tr["state"], vk.FIRING)
    assert len(starts) >= 3
    expected = _closed_form_period(patch, drive)
    # Whole-sample spike indices jitter by < 1 sample; the mean over many periods is exact.
    measured = (starts[-1] - starts[1]) / (len(starts) - 2)
    assert abs(measured - expected) <= 1.0 / (len(starts) - 2) + 1e-9
    # FIRING and REFRACTORY last their set durations (within one sample).
    fire_len = _run_lengths(tr["state"] == vk.FIRING)
    assert np.all(np.abs(fire_len - patch["firing_ms"] * SR / 1000) <= 1)
    ref_len = _run_lengths(tr["state"] == vk.REFRACTORY)
    assert np.all(np.abs(ref_len - patch["refractory_ms"] * SR / 1000) <= 1)


def test_spike_overshoots_then_undershoots_below_rest(patch):
    tr = trace_voice(patch, SR, frames=SR // 2, note=36)
    spring = tr["spring"]
    period = int(tr["period"])
    one = spring[:period]
    peak = int(np.argmax(one))
    assert one[peak] > 0.3  # a positive spike
    trough = peak + int(np.argmin(one[peak:]))
    assert one[trough] < -0.05  # after-hyperpolarisation below rest (0)
    assert trough > peak
    # ... and it settles back toward rest before the next spike.
    assert abs(one[-1]) < 0.05 * one[peak]


def test_spring_overshoots_a_long_spike(patch):
    """With a spike longer than the spring's rise, the spring overshoots the drive (≤ 1)."""
    long = patch.replace(firing_ms=3.0, softness=0.0, spring__keytrack=0.0)
    tr = trace_voice(long, SR, frames=SR // 4, note=36)
    firing = tr["state"] == vk.FIRING
    assert tr["drive"].max() <= 1.0 + 1e-12
    assert tr["spring"][firing].max() > 1.2


def test_drive_during_refractory_does_not_trigger_a_spike(patch):
    ms = SR // 1000
    v_high = patch["membrane.threshold_high"]
    current = np.zeros(60 * ms)
    current[: 10 * ms] = 3 * v_high  # fires quickly
    tr = trace_voice(patch, SR, current=current)
    first_ref = _rising_edges(tr["state"], vk.REFRACTORY)[0]
    # Same input, but a strong pulse lands only inside the first REFRACTORY period.
    current2 = np.zeros_like(current)
    stop_drive = _rising_edges(tr["state"], vk.FIRING)[0] + 1
    current2[:stop_drive] = 3 * v_high
    ref_len = int(patch["refractory_ms"] * ms)
    current2[first_ref + 1: first_ref + ref_len - 2] = 50 * v_high
    tr2 = trace_voice(patch, SR, current=current2)
    assert len(_rising_edges(tr2["state"], vk.FIRING)) == 1
    assert tr2["state"][first_ref + ref_len + 5] == vk.RESTING
    # Control: the same pulse just after REFRACTORY does fire.
    current3 = np.zeros_like(current)
    current3[:stop_drive] = 3 * v_high
    current3[first_ref + ref_len + 2: first_ref + ref_len + 60] = 50 * v_high
    tr3 = trace_voice(patch, SR, current=current3)
    assert len(_rising_edges(tr3["state"], vk.FIRING)) >= 2


def test_hysteresis_ignores_noise_while_firing(patch):
    """Once FIRING, input noise around the threshold cannot end or restart the spike."""
    rng = np.random.default_rng(1)
    v_high = patch["membrane.threshold_high"]
    current = v_high * (1.2 + 0.5 * rng.standard_normal(SR))
    tr = trace_voice(patch, SR, current=current)
    runs = _run_lengths(tr["state"] == vk.FIRING)
    assert len(runs) > 5
    assert np.all(np.abs(runs - patch["firing_ms"] * SR / 1000) <= 1)


def test_softness_zero_is_a_hard_gate(patch):
    hard = patch.replace(softness=0.0)
    tr = trace_voice(hard, SR, frames=SR // 10, note=48)
    drive = tr["drive"][tr["state"] == vk.FIRING]
    np.testing.assert_allclose(drive, 1.0)
    soft = patch.replace(softness=1.0)
    tr = trace_voice(soft, SR, frames=SR // 10, note=48)
    firing = tr["state"] == vk.FIRING
    d = tr["drive"][firing]
    assert d.max() <= 1.0 + 1e-12 and d.min() < 0.2  # an S-shaped fall from 1 toward 0
