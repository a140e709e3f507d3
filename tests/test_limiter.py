"""The look-ahead limiter against closed forms: a step, an impulse, random loud audio."""

from __future__ import annotations

import numpy as np
import pytest

from spikesynth.dsp.limiter import (
    C_B1,
    C_B2,
    S_CLIPPED,
    limiter_latency,
    limiter_prepare,
    limiter_process,
)

SR = 48000
CEILING = 10.0 ** (-0.3 / 20.0)


def run(left, right, lim, block=None):
    left = np.array(left, dtype=np.float64)
    right = np.array(right, dtype=np.float64)
    gain = np.zeros(len(left))
    block = block or len(left)
    for s in range(0, len(left), block):
        e = min(s + block, len(left))
        limiter_process(left[s:e], right[s:e], lim.coef, lim.state, lim.buf, gain[s:e])
    return left, right, gain


def test_latency_is_the_lookahead():
    assert limiter_latency(48000, 1.5) == 72
    assert limiter_latency(44100, 1.0) == 44


def test_quiet_impulse_comes_out_exactly_delayed_and_unchanged():
    lim = limiter_prepare(SR, CEILING)
    L = limiter_latency(SR)
    x = np.zeros(1000)
    x[100] = 0.5
    x[400] = -0.9
    left, right, gain = run(x, -x, lim)
    want = np.zeros(1000)
    want[100 + L:] = x[100:1000 - L]
    assert np.array_equal(left, want)
    assert np.array_equal(right, -want)
    assert np.all(gain == 1.0)


def test_step_gain_follows_the_closed_form_s_curve_and_never_exceeds_the_ceiling():
    """A step to 2.0 at t0: the required gain g0 = ceiling/2 held from t0, smoothed by the
    two moving averages (lengths B1, B2): the gain at output time t is the triangular average
    of the hold ending at t; it reaches g0 exactly when the step leaves the delay line."""
    lim = limiter_prepare(SR, CEILING)
    L = limiter_latency(SR)
    b1, b2 = int(lim.coef[C_B1]), int(lim.coef[C_B2])
    assert b1 + b2 == L + 2
    n, t0, height = 3000, 1000, 2.0
    x = np.zeros(n)
    x[t0:] = height
    left, right, gain = run(x, 0.5 * x, lim)
    g0 = CEILING / height
    hold = np.where(np.arange(n) >= t0, g0, 1.0)
    padded = np.concatenate([np.ones(b1 + b2), hold])
    a1 = np.convolve(padded, np.ones(b1) / b1)[: len(padded)]
    a2 = np.convolve(a1, np.ones(b2) / b2)[: len(padded)][b1 + b2:]
    np.testing.assert_allclose(gain, a2, rtol=0, atol=1e-8)  # a 1e-9 safety margin
    assert abs(gain[t0 + L] - g0) < 1e-8
    assert np.abs(left).max() <= CEILING
    np.testing.assert_allclose(left[t0 + L:], g0 * height, rtol=1e-8)
    # Smooth: the attack is spread over the look-ahead, no jump larger than a triangle's step.
    assert np.abs(np.diff(gain)).max() <= (1.0 - g0) / min(b1, b2) + 1e-9
    assert lim.state[S_CLIPPED] == 0


def test_release_recovers_exponentially():
    lim = limiter_prepare(SR, CEILING, release_ms=50.0)
    L = limiter_latency(SR)
    x = np.zeros(20000)
    x[1000:2000] = 2.0
    _, _, gain = run(x, x, lim)
    # Once the hold and the averages have passed, 1 - g decays by exp(-1/(50 ms)) per sample.
    t = 2000 + L + 2 * L
    ratio = (1.0 - gain[t + 480]) / (1.0 - gain[t])
    assert ratio == pytest.approx(np.exp(-480 / (0.05 * SR)), rel=1e-3)


@pytest.mark.parametrize("block", [1, 64, 511])
def test_loud_random_audio_never_over_the_ceiling_and_block_size_invariant(block):
    rng = np.random.default_rng(3)
    n = 20000
    env = np.repeat(rng.uniform(0.1, 4.0, n // 500), 500)
    left = rng.standard_normal(n) * env
    right = rng.standard_normal(n) * env
    ref = run(left, right, limiter_prepare(SR, CEILING))
    lim = limiter_prepare(SR, CEILING)
    out = run(left, right, lim, block)
    for a, b in zip(ref, out, strict=True):
        assert np.array_equal(a, b)
    assert max(np.abs(out[0]).max(), np.abs(out[1]).max()) <= CEILING
    assert lim.state[S_CLIPPED] == 0
    # Where the input is quiet enough, the delayed input passes unchanged (after release).
    L = limiter_latency(SR)
    assert np.abs(out[0][L:]).max() > 0.9 * CEILING
