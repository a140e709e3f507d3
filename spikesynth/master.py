"""The master section: DC blocker, smoothed output gain, safety limiter, finite check.

Runs once per block over the voices' mix, on the audio thread, compiled and allocation-free.
Its state lives in a float64 array ``M`` (``M_*`` slots) so that it survives between blocks
and ``reset()`` can clear it. Every output sample is finite and at most ``CEILING`` in
magnitude (−0.3 dBFS), whatever the voices do.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

CEILING_DB = -0.3
CEILING = 10.0 ** (CEILING_DB / 20.0)
DC_BLOCK_HZ = 5.0
LIMITER_RELEASE_MS = 80.0
GAIN_SMOOTHING_S = 0.01

# Master state slots.
M_DC_XL, M_DC_YL, M_DC_XR, M_DC_YR = 0, 1, 2, 3
M_LIMIT_GAIN = 4  # the limiter's current gain (1: not limiting)
M_GAIN = 5  # smoothed output gain (linear)
M_NONFINITE = 6  # output samples replaced because they were not finite
M_LIMITING = 7  # samples the limiter reduced
N_MASTER = 8


def master_state(gain_db: float) -> np.ndarray:
    """A fresh master state at rest, its gain already at ``gain_db``. Thread: main."""
    M = np.zeros(N_MASTER)
    M[M_LIMIT_GAIN] = 1.0
    M[M_GAIN] = 10.0 ** (gain_db / 20.0)
    return M


@njit(cache=True, nogil=True)
def master_reset(M, gain_db):
    """Clear ``M`` in place (no allocation). Thread: audio or main."""
    for k in range(M.shape[0]):
        M[k] = 0.0
    M[M_LIMIT_GAIN] = 1.0
    M[M_GAIN] = 10.0 ** (gain_db / 20.0)


@njit(cache=True, nogil=True)
def master_process(out, mix, frames, M, gain_db, sr):
    """Write ``frames`` frames of ``mix`` (float64, (2, >= frames)) into ``out`` (float32,
    (>= frames, 2)) through the DC blocker, the gain and the limiter. Thread: audio."""
    r_dc = math.exp(-2.0 * math.pi * DC_BLOCK_HZ / sr)
    r_lim = math.exp(-1.0 / (LIMITER_RELEASE_MS * 1e-3 * sr))
    r_gain = math.exp(-1.0 / (GAIN_SMOOTHING_S * sr))
    target = 10.0 ** (gain_db / 20.0)
    mix_l = mix[0]
    mix_r = mix[1]
    xl = M[M_DC_XL]
    yl = M[M_DC_YL]
    xr = M[M_DC_XR]
    yr = M[M_DC_YR]
    g_lim = M[M_LIMIT_GAIN]
    gain = M[M_GAIN]
    ceiling = CEILING * (1.0 - 1e-6)
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
        g_lim = 1.0 - (1.0 - g_lim) * r_lim
        peak = max(abs(left), abs(right)) * g_lim
        if peak > ceiling:
            g_lim *= ceiling / peak
            M[M_LIMITING] += 1
        left = min(max(left * g_lim, -ceiling), ceiling)
        right = min(max(right * g_lim, -ceiling), ceiling)
        out[n, 0] = left
        out[n, 1] = right
    M[M_DC_XL] = xl
    M[M_DC_YL] = yl
    M[M_DC_XR] = xr
    M[M_DC_YR] = yr
    M[M_LIMIT_GAIN] = g_lim
    M[M_GAIN] = gain
