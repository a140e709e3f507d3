"""The master section: DC blocker, smoothed output gain, finite check, look-ahead limiter.

Runs once per block over the voices' mix, on the audio thread, compiled and allocation-free.
Its state lives in a float64 array ``M`` (``M_*`` slots) and the limiter's arrays
(:class:`spikesynth.dsp.limiter.Limiter`), so that it survives between blocks and ``reset()``
can clear it. Every output sample is finite and at most ``CEILING`` in magnitude (−0.3 dBFS),
whatever the voices do.

The limiter (:mod:`spikesynth.dsp.limiter`) looks ``LOOKAHEAD_MS`` ahead: the whole output is
delayed by :func:`master_latency` samples (66 at 44.1 kHz, 72 at 48 kHz), offline and live
alike. In exchange its gain falls along an S-curve over the look-ahead before a peak instead
of jumping at it, and recovers with ``LIMITER_RELEASE_MS``: no flat tops, no clicks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .dsp.limiter import (
    B_DELAY_L,
    B_DELAY_R,
    C_LOOKAHEAD,
    C_MASK,
    S_GAIN,
    S_LIMITED,
    S_POS,
    Limiter,
    limiter_latency,
    limiter_prepare,
    limiter_reset,
    limiter_tick,
)

CEILING_DB = -0.3
CEILING = 10.0 ** (CEILING_DB / 20.0)
DC_BLOCK_HZ = 5.0
LOOKAHEAD_MS = 1.5
LIMITER_RELEASE_MS = 80.0
GAIN_SMOOTHING_S = 0.01

# Master state slots.
M_DC_XL, M_DC_YL, M_DC_XR, M_DC_YR = 0, 1, 2, 3
M_LIMIT_GAIN = 4  # the limiter's current gain (1: not limiting)
M_GAIN = 5  # smoothed output gain (linear)
M_NONFINITE = 6  # output samples replaced because they were not finite
M_LIMITING = 7  # samples the limiter reduced
M_BYPASS = 8  # 1: the limiter's gain is not applied (measurement only: see Synth.bypass_limiter)
N_MASTER = 9


def master_latency(samplerate: float) -> int:
    """The master section's delay in samples (the limiter's look-ahead). Thread: any (pure)."""
    return limiter_latency(samplerate, LOOKAHEAD_MS)


def master_state(gain_db: float) -> np.ndarray:
    """A fresh master state at rest, its gain already at ``gain_db``. Thread: main."""
    M = np.zeros(N_MASTER)
    M[M_LIMIT_GAIN] = 1.0
    M[M_GAIN] = 10.0 ** (gain_db / 20.0)
    return M


def master_limiter(samplerate: float) -> Limiter:
    """The master's look-ahead limiter at ``samplerate`` (allocates). Thread: main."""
    return limiter_prepare(samplerate, CEILING, LOOKAHEAD_MS, LIMITER_RELEASE_MS)


@njit(cache=True, nogil=True)
def master_reset(M, lim, gain_db):
    """Clear ``M`` and the limiter ``lim`` in place (no allocation; the bypass flag stays).

    Thread: audio or main.
    """
    bypass = M[M_BYPASS]
    for k in range(M.shape[0]):
        M[k] = 0.0
    M[M_LIMIT_GAIN] = 1.0
    M[M_GAIN] = 10.0 ** (gain_db / 20.0)
    M[M_BYPASS] = bypass
    limiter_reset(lim.coef, lim.state, lim.buf)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def master_process(out, mix, frames, M, lim, gain_db, sr):
    """Write ``frames`` frames of ``mix`` (float64, (2, >= frames)) into ``out`` (float32,
    (>= frames, 2)) through the DC blocker, the gain, the finite check and the look-ahead
    limiter ``lim`` (output delayed by its latency). Thread: audio."""
    r_dc = math.exp(-2.0 * math.pi * DC_BLOCK_HZ / sr)
    r_gain = math.exp(-1.0 / (GAIN_SMOOTHING_S * sr))
    target = 10.0 ** (gain_db / 20.0)
    mix_l = mix[0]
    mix_r = mix[1]
    xl = M[M_DC_XL]
    yl = M[M_DC_YL]
    xr = M[M_DC_XR]
    yr = M[M_DC_YR]
    gain = M[M_GAIN]
    bypass = M[M_BYPASS] != 0.0
    coef = lim.coef
    state = lim.state
    buf = lim.buf
    limited0 = state[S_LIMITED]
    look = int(coef[C_LOOKAHEAD])
    mask = int(coef[C_MASK])
    for n in range(frames):
        gain = target + (gain - target) * r_gain
        yl = mix_l[n] - xl + r_dc * yl
        xl = mix_l[n]
        yr = mix_r[n] - xr + r_dc * yr
        xr = mix_r[n]
        left = yl * gain
        right = yr * gain
        if not (math.isfinite(left) and math.isfinite(right)):
            M[M_NONFINITE] += 1
            left = 0.0
            right = 0.0
            xl = yl = xr = yr = 0.0
        # Bypassed: the same delay without the gain, the reference a gain-reduction
        # measurement compares with (the sample leaving the delay line, read before the
        # tick). One call site: the tick is inlined once, not twice (compile time).
        k = (int(state[S_POS]) - look) & mask
        dry_l = buf[B_DELAY_L, k]
        dry_r = buf[B_DELAY_R, k]
        out_l, out_r = limiter_tick(left, right, coef, state, buf)
        if bypass:
            out_l = dry_l
            out_r = dry_r
        out[n, 0] = out_l
        out[n, 1] = out_r
    M[M_DC_XL] = xl
    M[M_DC_YL] = yl
    M[M_DC_XR] = xr
    M[M_DC_YR] = yr
    M[M_LIMIT_GAIN] = state[S_GAIN]
    M[M_GAIN] = gain
    M[M_LIMITING] += state[S_LIMITED] - limited0
