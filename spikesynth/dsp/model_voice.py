"""Voices made of the study models: a LIF or an Izhikevich neuron whose membrane is the audio.

The neuron kernels are those of :mod:`spikesynth.dsp.lif` and :mod:`spikesynth.dsp.izhikevich`;
this module runs them per sample inside a voice (a row of the engine's voice array, the
``F_M…`` model slots holding the neuron's coefficients and state) with the shared amplitude
envelope, and makes them play in tune.

Tuning
------
* **LIF** (time unit: samples, exact method): the drive is solved from the closed-form period
  ``T = t_ref + tau·ln((I - v_reset)/(I - v_th))`` (:func:`spikesynth.dsp.lif.lif_drive`);
  the exact step places the threshold crossing and the reset inside the sample, so the period
  is exact. (The Euler method, offered for study, fires only at sample boundaries: its periods
  are whole samples and high notes go audibly out of tune, as the tutorials warn.)
* **Izhikevich** (time unit: model ms): the note sets the *time scale*, ``m`` model ms per
  sample, split into ``n`` sub-steps of ``h = m/n ≤ max_step`` ms. The step is the published
  semi-implicit Euler, except that a spike's reset happens at the threshold crossing
  interpolated inside the sub-step, and the rest of the sub-step continues from the reset.
  Without that, the discrete map locks its period to whole sub-steps and pitch is quantised.
  ``m`` is calibrated per note at prepare time (:func:`calibrate_izhikevich`) against the
  same discrete system, so the steady-state period (of a spike, or of a whole burst) is the
  note's period. In ``free`` tuning ``m`` is simply proportional to the note frequency
  (``f / reference_rate``) and the rate follows the drive: class 1 glides up from zero,
  class 2 jumps to a finite rate, bursters and chaotic cells keep their own patterns.

Anti-aliasing (band-limited events, :mod:`spikesynth.dsp.blep`)
-----------------------------------------------------------------
* **LIF**: between events the membrane is an exact exponential; a reset jumps the membrane,
  its slope and its curvature, the end of a refractory time its slope and curvature. Each
  jump is placed at its exact sub-sample time as windowed-sinc step, ramp and parabola
  residuals: the sampled result is the ideal low-passed membrane.
* **Izhikevich**: the upstroke before the cut-off is too fast for any Taylor expansion at
  high notes, so the membrane is taken as the piecewise-linear path through its sub-steps
  (and the interpolated crossing), the reset as a step there: every slope change larger
  than ``KNOT_MIN`` becomes a band-limited ramp, the reset a band-limited step. The rest of
  the aperiodicity is the discrete model's own (the sub-step grid against the spike phase):
  a patch lowers it with a shorter ``izhikevich.max_step_ms``.

Both voices sound ``blep.HALF_WIDTH`` samples late (constant, and far below a block).
"""

from __future__ import annotations

import math

from numba import njit

from . import blep, lif
from . import izhikevich as izh
from .voice import (
    ENV_OFF,
    F_AMP,
    F_BL_POS,
    F_BL_RING,
    F_DC,
    F_DRIVE,
    F_ENV,
    F_ENV_STAGE,
    F_GAIN_L,
    F_GAIN_R,
    F_M,
    F_NOISE,
    envelope_next,
    envelope_of,
    noisy,
    probe_current,
    record_trace,
)

# LIF voice slots.
L_COEFFS = F_M  # lif.LIF_N_COEFFS slots
L_STATE = L_COEFFS + lif.LIF_N_COEFFS  # lif.LIF_N_STATE slots
L_HELD = L_STATE + lif.LIF_N_STATE  # (unused: was the polyBLEP's held sample)
L_SCALE = L_HELD + 1  # 1 / (v_th - v_reset): membrane to audio

# Izhikevich voice slots.
Z_COEFFS = F_M  # izh.IZH_N_COEFFS slots
Z_STATE = Z_COEFFS + izh.IZH_N_COEFFS  # v, u
Z_SUBSTEPS = Z_STATE + izh.IZH_N_STATE
Z_CURRENT = Z_SUBSTEPS + 1
Z_HELD = Z_CURRENT + 1
Z_SCALE = Z_HELD + 1  # membrane (mV) to audio
Z_KNOT_T = Z_SCALE + 1  # the last knot of the piecewise-linear membrane: time (samples, from
Z_KNOT_X = Z_KNOT_T + 1  # the sample counter), value (audio units) ...
Z_KNOT_SLOPE = Z_KNOT_X + 1  # ... and the slope of the segment that ends there
#: Slope changes (audio units per sample) below this are left to the plain samples.
KNOT_MIN = 1e-4
#: Sub-steps per sample at most for a calibrated note (bounds the cost of the top notes,
#: whose sub-steps then grow past ``max_step_ms``).
MAX_CALIBRATED_SUBSTEPS = 40

IZH_AUDIO_SCALE = 1.0 / 100.0  # mV → audio before level normalisation


@njit(cache=True, nogil=True, inline="always")
def _event(ring, pos, s, d0, d1, d2):
    """Band-limit an event ``s`` in [0, 2] samples before sample ``pos`` (see dsp.blep)."""
    if s < 0.0:
        s = 0.0
    elif s > 2.0:
        s = 2.0
    blep.ring_add_event(ring, pos, s, d0, d1, d2)


@njit(cache=True, nogil=True, _nrt=False)  # see voice.voice_run
def lif_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    """Render samples ``start..stop-1`` of LIF voice ``i`` (see :func:`voice.voice_run`).

    Band-limited: each reset (a jump of the membrane from ``v_th`` to ``v_reset``, and of its
    slope and curvature) and each end of a refractory time (a jump of slope and curvature) is
    placed at its exact sub-sample time as windowed-sinc residuals (:mod:`spikesynth.dsp.blep`);
    the output is delayed by ``blep.HALF_WIDTH`` samples.
    """
    coeffs = V[i, L_COEFFS:L_COEFFS + lif.LIF_N_COEFFS]
    state = V[i, L_STATE:L_STATE + lif.LIF_N_STATE]
    ring = V[i, F_BL_RING:F_BL_RING + blep.RING]
    pos = int(V[i, F_BL_POS])
    drive = V[i, F_DRIVE]
    noise = V[i, F_NOISE]
    scale = V[i, L_SCALE]
    v_th = coeffs[lif.LIF_V_TH]
    v_reset = coeffs[lif.LIF_V_RESET]
    inv_tau = coeffs[lif.LIF_INV_TAU]
    t_ref = coeffs[lif.LIF_T_REF]
    dt = coeffs[lif.LIF_DT]
    dc = V[i, F_DC]
    env_stage = int(V[i, F_ENV_STAGE])
    env = V[i, F_ENV]
    envelope = envelope_of(V, i)
    amp = V[i, F_AMP]
    gain_l = V[i, F_GAIN_L] * amp
    gain_r = V[i, F_GAIN_R] * amp
    for n in range(start, stop):
        current = drive
        if drive_in is not None:
            current = probe_current(drive_in, n, drive)
        if noise != 0.0:
            current = noisy(current, noise, rng, i)
        ref0 = state[lif.LIF_REF]
        spiked = lif.lif_step(state, current, coeffs)
        # Slope and curvature (per sample, audio units) of the free membrane leaving v_reset.
        k1 = (current - v_reset) * inv_tau * dt * scale
        k2 = -k1 * inv_tau * dt
        if 0.0 < ref0 < dt:  # a refractory time ended inside this step: a kink
            _event(ring, pos, 1.0 - ref0 / dt, 0.0, k1, k2)
        if spiked:  # the reset happened at the spike offset inside this step
            offset = state[lif.LIF_SPIKE_OFFSET] / dt
            j1 = (current - v_th) * inv_tau * dt * scale
            j2 = -j1 * inv_tau * dt
            if t_ref > 0.0:
                _event(ring, pos, 1.0 - offset, (v_reset - v_th) * scale, -j1, -j2)
                if state[lif.LIF_REF] == 0.0:  # ... and its refractory time too
                    _event(ring, pos, 1.0 - offset - t_ref / dt, 0.0, k1, k2)
            else:
                _event(ring, pos, 1.0 - offset, (v_reset - v_th) * scale, k1 - j1, k2 - j2)
        x = (state[lif.LIF_V] - dc) * scale
        y = blep.ring_take(ring, pos, x)
        pos += 1
        env_stage, env = envelope_next(env_stage, env, envelope)
        out = y * env
        out_l[n] += out * gain_l
        out_r[n] += out * gain_r
        if trace is not None:
            phase = 1.0 if spiked else (2.0 if state[lif.LIF_REF] > 0.0 else 0.0)
            record_trace(trace, n, state[lif.LIF_V], phase, current, x, out * amp)
        if env_stage == ENV_OFF:
            break
    V[i, F_BL_POS] = pos & blep.RING_MASK
    V[i, F_ENV_STAGE] = env_stage
    V[i, F_ENV] = env
    return math.isfinite(state[lif.LIF_V]) and math.isfinite(ring[0])


@njit(cache=True, nogil=True, inline="always")
def _knot(ring, pos, t_prev, x_prev, slope_prev, t, x):
    """Extend the piecewise-linear membrane from its last knot ``(t_prev, x_prev)`` to
    ``(t, x)`` (times in samples from the sample counter, values in audio units).

    The change of slope at ``t_prev`` (from ``slope_prev``) enters ``ring`` as a band-limited
    ramp when it exceeds :data:`KNOT_MIN`. Returns ``(slope, moved)``: the new segment's slope
    and True, or ``(slope_prev, False)`` for a segment shorter than 1e-9 samples (ignored).
    """
    if t - t_prev > 1e-9:
        slope = (x - x_prev) / (t - t_prev)
        kink = slope - slope_prev
        if abs(kink) > KNOT_MIN:
            _event(ring, pos, pos - t_prev, 0.0, kink, 0.0)
        return slope, True
    return slope_prev, False


@njit(cache=True, nogil=True, inline="always")
def _izh_substep(v, u, current, h, a, b, c, d, e, f, g, u_vref, u_leak, v_peak):
    """:func:`izhikevich_substep`, also returning ``u`` at the crossing (before ``+ d``)."""
    v1 = v + h * (e * (v * v) + f * v + g - u + current)
    u1 = u + (h * a) * (b * (v1 - u_vref) - u_leak * u)
    if v1 < v_peak:
        return v1, u1, -1.0, 0.0, 0.0
    theta = (v_peak - v) / (v1 - v) if v1 > v else 1.0
    if theta < 0.0:
        theta = 0.0
    u_cross = u + theta * (u1 - u)
    u = u_cross + d
    v = c
    r = (1.0 - theta) * h
    if r > 0.0:
        v2 = v + r * (e * (v * v) + f * v + g - u + current)
        u = u + (r * a) * (b * (v2 - u_vref) - u_leak * u)
        v = v2
    return v, u, theta, v_peak, u_cross


@njit(cache=True, nogil=True)
def izhikevich_substep(v, u, current, h, a, b, c, d, e, f, g, u_vref, u_leak, v_peak):
    """One sub-step ``h`` (ms) of the published semi-implicit Euler scheme, the reset placed at
    the threshold crossing interpolated inside the sub-step.

    Returns ``(v, u, theta, v_cross)``: ``theta`` in (0, 1] is where in the sub-step the spike
    happened (-1: no spike), ``v_cross`` the membrane just before its reset.
    """
    v, u, theta, v_cross, _ = _izh_substep(v, u, current, h, a, b, c, d, e, f, g, u_vref,
                                           u_leak, v_peak)
    return v, u, theta, v_cross


@njit(cache=True, nogil=True, _nrt=False)  # see voice.voice_run
def izhikevich_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    """Render samples ``start..stop-1`` of Izhikevich voice ``i`` (see :func:`voice.voice_run`)."""
    a = V[i, Z_COEFFS + izh.IZH_A]
    b = V[i, Z_COEFFS + izh.IZH_B]
    c = V[i, Z_COEFFS + izh.IZH_C]
    d = V[i, Z_COEFFS + izh.IZH_D]
    e = V[i, Z_COEFFS + izh.IZH_E]
    f = V[i, Z_COEFFS + izh.IZH_F]
    g = V[i, Z_COEFFS + izh.IZH_G]
    u_vref = V[i, Z_COEFFS + izh.IZH_U_VREF]
    u_leak = V[i, Z_COEFFS + izh.IZH_U_LEAK]
    v_peak = V[i, Z_COEFFS + izh.IZH_V_PEAK]
    h = V[i, Z_COEFFS + izh.IZH_DT]
    v = V[i, Z_STATE + izh.IZH_V]
    u = V[i, Z_STATE + izh.IZH_U]
    substeps = int(V[i, Z_SUBSTEPS])
    drive = V[i, Z_CURRENT]
    noise = V[i, F_NOISE]
    ring = V[i, F_BL_RING:F_BL_RING + blep.RING]
    pos = int(V[i, F_BL_POS])
    x_prev = V[i, Z_KNOT_X]
    slope_prev = V[i, Z_KNOT_SLOPE]
    t_prev = V[i, Z_KNOT_T] + pos  # stored relative to the sample counter
    scale = V[i, Z_SCALE]
    dc = V[i, F_DC]
    env_stage = int(V[i, F_ENV_STAGE])
    env = V[i, F_ENV]
    envelope = envelope_of(V, i)
    amp = V[i, F_AMP]
    gain_l = V[i, F_GAIN_L] * amp
    gain_r = V[i, F_GAIN_R] * amp
    inv_n = 1.0 / substeps
    for n in range(start, stop):
        current = drive
        if drive_in is not None:
            current = probe_current(drive_in, n, drive)
        if noise != 0.0:
            current = noisy(current, noise, rng, i)
        spiked = False
        for k in range(substeps):
            v, u, theta, v_cross, _ = _izh_substep(v, u, current, h, a, b, c, d, e, f, g,
                                                   u_vref, u_leak, v_peak)
            t = pos - 1.0 + (k + 1) * inv_n  # this sub-step's end, in samples
            if theta >= 0.0:
                spiked = True
                t_c = t - (1.0 - theta) * inv_n
                x_c = (v_cross - dc) * scale
                slope_prev, _ = _knot(ring, pos, t_prev, x_prev, slope_prev, t_c, x_c)
                _event(ring, pos, pos - t_c, (c - v_cross) * scale, 0.0, 0.0)
                t_prev = t_c
                x_prev = (c - dc) * scale
            x_k = (v - dc) * scale
            slope_prev, moved = _knot(ring, pos, t_prev, x_prev, slope_prev, t, x_k)
            if moved:
                t_prev = t
                x_prev = x_k
        x = (v - dc) * scale
        held = blep.ring_take(ring, pos, x)
        pos += 1
        env_stage, env = envelope_next(env_stage, env, envelope)
        out = held * env
        out_l[n] += out * gain_l
        out_r[n] += out * gain_r
        if trace is not None:
            record_trace(trace, n, v, 1.0 if spiked else 0.0, current, u, out * amp)
        if env_stage == ENV_OFF:
            break
    V[i, Z_STATE + izh.IZH_V] = v
    V[i, Z_STATE + izh.IZH_U] = u
    V[i, Z_KNOT_X] = x_prev
    V[i, Z_KNOT_SLOPE] = slope_prev
    V[i, Z_KNOT_T] = t_prev - pos
    V[i, F_BL_POS] = pos & blep.RING_MASK
    V[i, F_ENV_STAGE] = env_stage
    V[i, F_ENV] = env
    return math.isfinite(v) and math.isfinite(u) and abs(v) < 1e6


@njit(cache=True, nogil=True)
def izhikevich_set_timescale(V, i, ms_per_sample, substeps):
    """Set voice ``i``'s model time per sample (ms), split into ``substeps`` sub-steps."""
    V[i, Z_SUBSTEPS] = substeps
    h = ms_per_sample / substeps
    V[i, Z_COEFFS + izh.IZH_DT] = h
    V[i, Z_COEFFS + izh.IZH_ADT] = h * V[i, Z_COEFFS + izh.IZH_A]


@njit(cache=True, nogil=True)
def steady_period(times, n, max_k):
    """Period of the repeating pattern at the end of a spike-time list (same unit as times).

    The pattern length k (1..max_k: a spike, a doublet, a burst of k spikes) is the shortest for
    which each of the last 3k inter-spike intervals matches the one k earlier within 2 % of
    the mean interval; the period is then averaged over as many whole patterns as the second
    half of the list holds (averaging out slow drift). For an irregular train: the mean
    interval. ``nan`` with fewer than 4 spikes.
    """
    if n < 4:
        return math.nan
    first = n // 2
    mean = (times[n - 1] - times[first]) / (n - 1 - first)
    m = n - 1  # number of intervals
    for k in range(1, max_k + 1):
        if 4 * k > m:
            break
        ok = True
        for j in range(3 * k):
            a = times[n - 1 - j] - times[n - 2 - j]
            b = times[n - 1 - j - k] - times[n - 2 - j - k]
            if abs(a - b) > 0.02 * mean:
                ok = False
                break
        if ok:
            patterns = (n - 1 - first) // k
            return (times[n - 1] - times[n - 1 - k * patterns]) / patterns
    return mean


@njit(cache=True, nogil=True)
def measure_period_samples(V, i, samples, spike_times):
    """Run voice ``i`` silently for ``samples`` samples and return its steady period (samples).

    ``spike_times`` is scratch space (float64, shape (>= some hundreds,)).
    """
    a = V[i, Z_COEFFS + izh.IZH_A]
    b = V[i, Z_COEFFS + izh.IZH_B]
    c = V[i, Z_COEFFS + izh.IZH_C]
    d = V[i, Z_COEFFS + izh.IZH_D]
    e = V[i, Z_COEFFS + izh.IZH_E]
    f = V[i, Z_COEFFS + izh.IZH_F]
    g = V[i, Z_COEFFS + izh.IZH_G]
    u_vref = V[i, Z_COEFFS + izh.IZH_U_VREF]
    u_leak = V[i, Z_COEFFS + izh.IZH_U_LEAK]
    v_peak = V[i, Z_COEFFS + izh.IZH_V_PEAK]
    h = V[i, Z_COEFFS + izh.IZH_DT]
    v = V[i, Z_STATE + izh.IZH_V]
    u = V[i, Z_STATE + izh.IZH_U]
    substeps = int(V[i, Z_SUBSTEPS])
    current = V[i, Z_CURRENT]
    cap = spike_times.shape[0]
    count = 0
    for n in range(samples):
        for k in range(substeps):
            v, u, theta, _ = izhikevich_substep(v, u, current, h, a, b, c, d, e, f, g,
                                                u_vref, u_leak, v_peak)
            if theta >= 0.0:
                if count == cap:  # keep the latest spikes: shift the window by half
                    half = cap // 2
                    for j in range(half):
                        spike_times[j] = spike_times[j + half]
                    count = half
                spike_times[count] = n + (k + theta) / substeps
                count += 1
    return steady_period(spike_times, count, 8)


@njit(cache=True, nogil=True)
def calibrate_izhikevich(V, i, target, max_step_ms, guess_ms_per_sample, spike_times):
    """Find the model time per sample that makes voice ``i`` fire with period ``target`` samples.

    Fixed-point iteration ``m ← m·P(m)/target`` on the measured steady-state period ``P`` of
    the same discrete system the voice runs (sub-steps fixed from the first guess). The voice's
    state is restored afterwards. Returns ``(ms_per_sample, substeps)``; ``(nan, 0)`` when the
    neuron does not fire periodically.
    """
    v0 = V[i, Z_STATE + izh.IZH_V]
    u0 = V[i, Z_STATE + izh.IZH_U]
    m = guess_ms_per_sample
    substeps = min(max(1, int(math.ceil(m / max_step_ms))), MAX_CALIBRATED_SUBSTEPS)
    for _ in range(6):
        V[i, Z_STATE + izh.IZH_V] = v0
        V[i, Z_STATE + izh.IZH_U] = u0
        izhikevich_set_timescale(V, i, m, substeps)
        # Settle (adaptation) and enough periods, bounded: at least 8 periods, and 40 where
        # they take less than ~2 s of audio.
        samples = int(max(min(target * 40.0, 96000.0), target * 8.0)) + int(min(300.0 / m,
                                                                               96000.0))
        p = measure_period_samples(V, i, samples, spike_times)
        if not (p > 0.0):
            V[i, Z_STATE + izh.IZH_V] = v0
            V[i, Z_STATE + izh.IZH_U] = u0
            return math.nan, 0
        m *= p / target
        if abs(p / target - 1.0) < 1e-7:
            break
    V[i, Z_STATE + izh.IZH_V] = v0
    V[i, Z_STATE + izh.IZH_U] = u0
    return m, substeps
