"""Look-ahead peak limiter: the master section's last stage, never over the ceiling, no flat tops.

Per sample, for a stereo pair (both channels get the same gain, so the image stays):

1. **Required gain** ``g_req = min(1, ceiling / max(|l|, |r|))``.
2. **Release**: ``r = min(g_req, 1 - (1 - r_prev)·α)``, ``α = exp(-1/release)``: drops at
   once, recovers exponentially.
3. **Peak hold**: ``h`` = the minimum of ``r`` over the last ``L + 1`` samples (a monotonic
   queue, O(1) per sample), ``L`` the look-ahead in samples.
4. **Smooth attack**: two moving averages of lengths ``B1 + B2 = L + 2`` (a triangular
   kernel; the gain falls along an S-curve over the look-ahead instead of jumping).
5. The audio is **delayed by L samples** and multiplied by the smoothed gain ``g``.

Why it never exceeds the ceiling: the sample leaving the delay line at time ``t`` entered at
``t - L``; both averages at ``t`` only read hold values from ``t - L .. t``, each of which is a
minimum over a window that contains ``t - L``, so ``g(t) <= r(t - L) <= g_req(t - L)``. A final
clip at the ceiling guards only against rounding (:data:`S_CLIPPED` counts it; it stays 0).

Latency: ``L`` samples, the same offline and live (:func:`limiter_latency`).
Block-size invariant: all state lives in the arrays, the kernel works sample by sample.

Arrays (from :func:`limiter_prepare`)
------------------------------------
``coef`` float64 (N_COEF,): ``C_*`` slots; ``state`` float64 (N_STATE,): ``S_*`` slots;
``buf`` float64 (N_BUF, size): delay lines, the hold queue and the two averages' rings.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# coefficients
C_CEILING = 0  # linear
C_RELEASE = 1  # α per sample
C_LOOKAHEAD = 2  # L, samples
C_B1 = 3  # first average's length
C_B2 = 4  # second average's length
C_MASK = 5  # ring size - 1
N_COEF = 6

# state
S_POS = 0  # samples processed
S_REL = 1  # released required gain r
S_HEAD = 2  # hold queue: index of its front ...
S_TAIL = 3  # ... and one past its back (ring positions, counted up)
S_SUM1 = 4  # running sums of the two averages
S_SUM2 = 5
S_GAIN = 6  # the last applied gain (for meters)
S_LIMITED = 7  # samples with gain < 1
S_CLIPPED = 8  # samples the final guard clipped (rounding only; stays 0)
S_MIN_GAIN = 9  # lowest gain since reset
N_STATE = 10

# buffer rows
B_DELAY_L = 0
B_DELAY_R = 1
B_QUEUE_VAL = 2
B_QUEUE_IDX = 3
B_AVG1 = 4
B_AVG2 = 5
N_BUF = 6

DEFAULT_LOOKAHEAD_MS = 1.5
DEFAULT_RELEASE_MS = 60.0


class Limiter(NamedTuple):
    """A prepared limiter: the kernel's arrays (see the module docstring)."""

    coef: np.ndarray
    state: np.ndarray
    buf: np.ndarray


def limiter_latency(samplerate: float, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS) -> int:
    """The limiter's delay in samples at ``samplerate``. Thread: any (pure)."""
    return max(1, int(round(lookahead_ms * 1e-3 * samplerate)))


def limiter_prepare(samplerate: float, ceiling: float, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
                    release_ms: float = DEFAULT_RELEASE_MS) -> Limiter:
    """Allocate and reset a limiter. Thread: main (allocates).

    Parameters
    ----------
    samplerate : float
        Hz.
    ceiling : float
        Linear peak ceiling (> 0), e.g. ``10 ** (-0.3 / 20)``.
    lookahead_ms, release_ms : float
        Look-ahead (= latency) and release time constant, ms.
    """
    if not ceiling > 0.0:
        raise ValueError(f"ceiling must be positive, got {ceiling!r}")
    L = limiter_latency(samplerate, lookahead_ms)
    size = 1 << int(math.ceil(math.log2(L + 3)))
    coef = np.zeros(N_COEF)
    coef[C_CEILING] = ceiling
    coef[C_RELEASE] = math.exp(-1.0 / max(release_ms * 1e-3 * samplerate, 1.0))
    coef[C_LOOKAHEAD] = L
    coef[C_B1] = (L + 2) // 2
    coef[C_B2] = L + 2 - (L + 2) // 2
    coef[C_MASK] = size - 1
    lim = Limiter(coef, np.zeros(N_STATE), np.zeros((N_BUF, size)))
    limiter_reset(lim.coef, lim.state, lim.buf)
    return lim


@njit(cache=True, nogil=True)
def limiter_reset(coef, state, buf):
    """Silence the delay line and release all gain reduction. Thread: any (no allocation)."""
    for k in range(state.shape[0]):
        state[k] = 0.0
    for j in range(buf.shape[0]):
        for k in range(buf.shape[1]):
            buf[j, k] = 0.0
    for k in range(buf.shape[1]):
        buf[B_AVG1, k] = 1.0
        buf[B_AVG2, k] = 1.0
    state[S_REL] = 1.0
    state[S_SUM1] = coef[C_B1]
    state[S_SUM2] = coef[C_B2]
    state[S_GAIN] = 1.0
    state[S_MIN_GAIN] = 1.0


@njit(cache=True, nogil=True, inline="always")
def limiter_tick(left, right, coef, state, buf):
    """Feed one stereo sample and return the limited sample ``L`` samples older.

    Thread: audio (no allocation). Returns ``(left, right)``.
    """
    ceiling = coef[C_CEILING]
    mask = int(coef[C_MASK])
    L = int(coef[C_LOOKAHEAD])
    b1 = int(coef[C_B1])
    b2 = int(coef[C_B2])
    t = int(state[S_POS])
    # 1-2: required gain, released.
    peak = max(abs(left), abs(right))
    g_req = 1.0
    if peak * (1.0 + 1e-9) > ceiling:
        g_req = ceiling / (peak * (1.0 + 1e-9))
    r = 1.0 - (1.0 - state[S_REL]) * coef[C_RELEASE]
    if g_req < r:
        r = g_req
    state[S_REL] = r
    # 3: minimum over the last L + 1 values (monotonic queue of (value, time)).
    head = int(state[S_HEAD])
    tail = int(state[S_TAIL])
    while tail > head and buf[B_QUEUE_VAL, (tail - 1) & mask] >= r:
        tail -= 1
    buf[B_QUEUE_VAL, tail & mask] = r
    buf[B_QUEUE_IDX, tail & mask] = t
    tail += 1
    while buf[B_QUEUE_IDX, head & mask] <= t - (L + 1):
        head += 1
    hold = buf[B_QUEUE_VAL, head & mask]
    state[S_HEAD] = head
    state[S_TAIL] = tail
    # 4: two moving averages.
    k1 = t & mask
    s1 = state[S_SUM1] + hold - buf[B_AVG1, (t - b1) & mask]
    buf[B_AVG1, k1] = hold
    a1 = s1 / b1
    s2 = state[S_SUM2] + a1 - buf[B_AVG2, (t - b2) & mask]
    buf[B_AVG2, k1] = a1
    g = s2 / b2
    state[S_SUM1] = s1
    state[S_SUM2] = s2
    if g > 1.0:
        g = 1.0
    # 5: delay line.
    out_l = buf[B_DELAY_L, (t - L) & mask] * g
    out_r = buf[B_DELAY_R, (t - L) & mask] * g
    buf[B_DELAY_L, k1] = left
    buf[B_DELAY_R, k1] = right
    if abs(out_l) > ceiling or abs(out_r) > ceiling:  # rounding guard only
        state[S_CLIPPED] += 1
        out_l = min(max(out_l, -ceiling), ceiling)
        out_r = min(max(out_r, -ceiling), ceiling)
    if g < 1.0:
        state[S_LIMITED] += 1
    if g < state[S_MIN_GAIN]:
        state[S_MIN_GAIN] = g
    state[S_GAIN] = g
    state[S_POS] = t + 1
    return out_l, out_r


@njit(cache=True, nogil=True)
def limiter_process(left, right, coef, state, buf, gain_out):
    """Limit a block in place (tests, offline use). Thread: any (no allocation).

    Parameters
    ----------
    left, right : float64 arrays, shape (n,)
        Input, overwritten by the output (delayed by the latency).
    gain_out : float64 array, shape (n,) or (0,)
        When non-empty, receives the gain applied to each output sample.
    """
    record = gain_out.shape[0] > 0
    for n in range(left.shape[0]):
        left[n], right[n] = limiter_tick(left[n], right[n], coef, state, buf)
        if record:
            gain_out[n] = state[S_GAIN]
