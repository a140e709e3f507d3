"""Band-limited discontinuities: windowed-sinc step (BLEP), ramp (BLAMP) and higher residuals.

A voice whose waveform is smooth between events (a reset, the start and end of a spike's
drive) aliases only through its events: a jump of the waveform itself (order 0), of its slope
(order 1), its curvature (order 2) or its third derivative (order 3) at a sub-sample time
``t0``. As Surge's classic oscillators place their steps, each event adds ``Δ_k·R_k(n - t0)``
to the samples around it, where ``R_k`` is the difference between the ``k``-times
integrated band-limited impulse and the naive (sampled) ``k``-th order jump; the sum is
the waveform the ideal low-pass would give.

The band-limited impulse is ``h(τ) = 2 fc sinc(2 fc τ) w(τ/W)`` with a Blackman-Harris window
``w`` over ``|τ| < W`` samples (``W = HALF_WIDTH``), cutoff ``fc = CUTOFF`` cycles/sample, so its
stop band starts close to Nyquist. The residuals vanish outside ``|τ| < W``: the correction
reaches ``W`` samples into the past, so a voice using it delays its output by ``W`` samples
through a per-voice accumulator ring (``ring_*`` below): the voice's latency, constant.

Tables: ``RESIDUALS[k, j, p]`` for ``τ = j - W + p/PHASES`` (``j`` in 0..2W-1, ``p`` in
0..PHASES), read with linear interpolation between phases; computed once at import.
"""

from __future__ import annotations

import numpy as np
from numba import njit

HALF_WIDTH = 16  # samples either side of the event: the voices' latency
PHASES = 256  # table points per sample
CUTOFF = 0.42  # cycles per sample (the window's transition band ends near 0.5)
ORDERS = 4  # step, ramp, parabola, cubic
RING = 64  # accumulator ring length (a power of two >= 2 * HALF_WIDTH + 1)
RING_MASK = RING - 1


def _residual_tables(half_width=HALF_WIDTH, phases=PHASES, cutoff=CUTOFF, fine=16):
    """Residuals of orders 0..2 on the grid ``τ = -W + q/phases``, q = 0..2W·phases."""
    W = half_width
    n = 2 * W * phases * fine + 1
    tau = np.linspace(-W, W, n)
    dt = tau[1] - tau[0]
    x = tau / W
    window = (0.35875 + 0.48829 * np.cos(np.pi * x) + 0.14128 * np.cos(2 * np.pi * x)
              + 0.01168 * np.cos(3 * np.pi * x))
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * tau) * window
    h /= np.trapezoid(h, tau) if hasattr(np, "trapezoid") else np.trapz(h, tau)

    def integrate(y):
        out = np.zeros_like(y)
        out[1:] = np.cumsum(0.5 * (y[1:] + y[:-1]) * dt)
        return out

    b0 = integrate(h)
    b0 /= b0[-1]
    b1 = integrate(b0)
    b2 = integrate(b1)
    pos = np.maximum(tau, 0.0)
    step = (tau >= 0.0).astype(float)
    r0 = b0 - step
    r1 = b1 - pos
    r2 = b2 - 0.5 * pos * pos
    # Numerical and window moments leave constant / linear tails for τ ≥ W: remove them with
    # band-limited versions of lower orders, so every residual ends at zero (no new jump).
    r1 -= r1[-1] * b0
    r2 -= r2[-1] * b0
    b3 = integrate(b2)
    r3 = b3 - pos * pos * pos / 6.0
    r3 -= (r3[-1] - r3[-2]) / dt * (b1 - r1[-1] * 0.0)  # its linear tail (the window's m2)
    r3 -= r3[-1] * b0
    tables = np.stack([r0, r1, r2, r3])[:, ::fine]  # shape (4, 2W·phases + 1)
    out = np.zeros((ORDERS, 2 * W, phases + 1))
    for j in range(2 * W):
        out[:, j, :] = tables[:, j * phases:(j + 1) * phases + 1]
    out[0, W - 1, phases] += 1.0  # the left limit at τ = 0 (the naive step is 0 before it)
    return out


RESIDUALS = _residual_tables()


@njit(cache=True, nogil=True, inline="always")
def residual(order, j, s):
    """``R_order(j - W + s)`` with ``j`` in 0..2W-1 and ``0 <= s < 1``."""
    f = s * PHASES
    p = int(f)
    if p >= PHASES:
        p = PHASES - 1
    a = RESIDUALS[order, j, p]
    return a + (f - p) * (RESIDUALS[order, j, p + 1] - a)


@njit(cache=True, nogil=True)
def ring_add_event(ring, pos, s, d0, d1, d2):
    """Add the step, ramp and parabola corrections of an event (see :func:`ring_add_events`)."""
    ring_add_events(ring, pos, s, d0, d1, d2, 0.0)


@njit(cache=True, nogil=True)
def ring_add_events(ring, pos, s, d0, d1, d2, d3):
    """Add the corrections of an event ``s`` samples before sample ``pos`` (0 <= s <= 2).

    ``ring`` is the voice's accumulator (float64, shape (>= RING,), indexed by sample number
    modulo RING); ``d0 .. d3`` are the jumps of the waveform and of its first three
    derivatives (per sample, per sample², per sample³). Sample ``pos + m`` receives
    ``Σ_k d_k R_k(m + s)`` for ``m + s`` in ``(-W, W)``; with ``pos`` the sample being
    computed, the earliest one touched is ``pos - W``, the one :func:`ring_take` gives out now.
    """
    # τ = m + s, m from -W to W-1; table index j = m + W and phase s. An event up to one
    # sample earlier (1 < s <= 2) is placed from the previous sample, leaving out the one
    # tap that falls on a sample already given out (the window is ~1e-5 there).
    first = 0
    if s > 1.0:
        pos -= 1
        s -= 1.0
        first = 1
    for j in range(first, 2 * HALF_WIDTH):
        r = d0 * residual(0, j, s)
        if d1 != 0.0:
            r += d1 * residual(1, j, s)
        if d2 != 0.0:
            r += d2 * residual(2, j, s)
        if d3 != 0.0:
            r += d3 * residual(3, j, s)
        ring[(pos + j - HALF_WIDTH) & RING_MASK] += r


@njit(cache=True, nogil=True, inline="always")
def ring_take(ring, pos, value):
    """Add the naive ``value`` of sample ``pos``; return the finished sample ``pos - W``."""
    ring[pos & RING_MASK] += value
    k = (pos - HALF_WIDTH) & RING_MASK
    out = ring[k]
    ring[k] = 0.0
    return out
