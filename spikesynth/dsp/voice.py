"""The Kyma-style spiking voice: lossy integrator → hysteresis → soft threshold → spring.

One voice is one neuron whose output is audio. Time inside this module is in samples.

The chain, per sample
---------------------
1. **Membrane** (lossy integrator), RESTING: ``dv/dt = (I - v)/tau``, integrated exactly for
   an input held over the sample: ``v ← I + (v - I)·exp(-1/tau)``.
2. **Hysteresis** (Schmitt trigger): RESTING → FIRING when ``v`` crosses ``v_high``. During
   FIRING the membrane discharges toward ``v_reset`` with time constant ``tau_fire``:
   ``v(t) = v_reset + (v_high - v_reset)·E(t)``, ``E(t) = exp(-t/tau_fire)``, and FIRING ends
   when ``v`` falls below ``v_low``. Input is ignored during FIRING, so noise near the
   threshold cannot chatter.
3. **Soft threshold**: the spike drive during FIRING is ``d = (1 - s) + s·S(x)``, with
   ``x = (v - v_low)/(v_high - v_low)`` going 1 → 0, ``S(x) = 3x² - 2x³`` and ``s`` the
   softness (0: a hard gate, 1: a fully smooth S-shaped fall).
4. **Spring** (resonant low-pass, the SwarmSmoother idea): ``x'' + 2σx' + ω²x = ω²d`` with
   ``σ = ζω`` (ζ < 1, under-damped). Driven by the spike it overshoots to a peak, then
   undershoots below rest (after-hyperpolarisation) and settles.
5. **State machine**: RESTING → FIRING → REFRACTORY (input ignored for ``t_ref`` while the
   membrane relaxes from ``v_low`` toward rest and the spring recovers) → RESTING.

Exact timing
------------
Between state changes the whole voice is a linear system with constant input, so it is
integrated in closed form: the membrane by its exponential, the spring by its 2×2 transition
matrix ``Φ(h)``, and the FIRING drive — a cubic polynomial in ``E`` — as a sum of
exponentials ``E^k`` (k = 0..3) whose forced spring response is ``G(λ_k)·E^k`` with
``G(λ) = ω²/(λ² + 2σλ + ω²)``. During FIRING the kernel stores the spring's homogeneous part
``(x - Σp_kE^k, x' - Σd_kE^k)``. A threshold crossing inside a sample is located exactly
(``h = tau·ln((I - v)/(I - v_high))``) and the rest of the sample continues in the new state,
so spikes happen at sub-sample positions, like an oscillator's phase, and a period of
``t_rise + t_fire + t_ref`` samples is kept exactly, not rounded to whole samples. The
libm calls (log, exp, cos, sin) happen only at state changes, never per plain sample.

Period and drive (the closed form)
----------------------------------
From ``v_start = v_low·exp(-t_ref/tau)`` the rise takes ``t_rise = tau·ln((I - v_start)/(I -
v_high))`` (no spike when ``I ≤ v_high``: the rheobase), so ``T = t_rise + t_fire + t_ref``.
Inverted for a target period: ``I = (v_high - v_start·e)/(1 - e)``, ``e = exp(-t_rise/tau)``.

Layout
------
A voice is one row of a float64 array ``V`` of shape ``(n_slots, N_FIELDS)``; the ``F_*``
constants name its columns. Per-voice noise uses a xorshift64* state in a uint64 array
``rng`` of shape ``(n_slots,)`` so renders are deterministic and independent of block size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import blep

# --- states -------------------------------------------------------------------------------
RESTING, FIRING, REFRACTORY = 0, 1, 2

# --- envelope stages ----------------------------------------------------------------------
ENV_OFF, ENV_ATTACK, ENV_DECAY, ENV_RELEASE, ENV_FADE = 0, 1, 2, 3, 4

# --- voice row columns (see the module docstring) -------------------------------------
# dynamic state
F_STATE = 0
F_V = 1
F_TLEFT = 2
F_E = 3
F_X = 4
F_XD = 5
F_ENV_STAGE = 6
F_ENV = 7
F_ONSET = 8  # sample counter at note-on (vibrato phase origin)
# the note this voice plays
F_NOTE = 9
F_CHANNEL = 10
F_VELOCITY = 11
F_KEY_HELD = 12
F_SUSTAINED = 13
F_AGE = 14
F_FREQ = 15
F_AMP = 16
F_GAIN_L = 17
F_GAIN_R = 18
# membrane and hysteresis
F_DRIVE = 19
F_LEAK = 20
F_TAU = 21
F_VHI = 22
F_VLO = 23
F_VRESET = 24
F_VSTART = 25
# FIRING: duration, discharge, drive polynomial q_k, spring particular solution p_k, d_k
F_TFIRE = 26
F_TAUF = 27
F_EDECAY = 28
F_EEND = 29
F_Q0 = 30
F_Q1 = 31
F_Q2 = 32
F_Q3 = 33
F_P0 = 34
F_P1 = 35
F_P2 = 36
F_P3 = 37
F_D0 = 38
F_D1 = 39
F_D2 = 40
F_D3 = 41
# REFRACTORY
F_TREF = 42
# spring
F_OMEGA = 43
F_SIGMA = 44
F_WD = 45
F_PHI11 = 46
F_PHI12 = 47
F_PHI21 = 48
F_PHI22 = 49
# output
F_DC = 50
F_AREA = 51
F_PERIOD = 52
F_NOISE = 53
# envelope
F_ATT_STEP = 54
F_DEC_COEF = 55
F_SUSTAIN = 56
F_REL_COEF = 57
F_FADE_STEP = 58
F_DRIVE_OFF = 59  # 1: the note is released and the patch's release removes the drive
# model voices (spikesynth.dsp.model_voice): their own state and coefficients
F_M = 60
N_MODEL_SLOTS = 24
# band-limited events (spikesynth.dsp.blep): the sample counter and the accumulator ring
F_BL_POS = F_M + N_MODEL_SLOTS
F_BL_RING = F_BL_POS + 1
N_FIELDS = F_BL_RING + blep.RING

# Trace columns (for tests and plots).
TR_V, TR_STATE, TR_DRIVE, TR_SPRING, TR_OUT = 0, 1, 2, 3, 4
TRACE_FIELDS = 5

_MAX_TRANSITIONS = 8  # per sample: a guard against pathological parameters


@njit(cache=True, nogil=True)
def xorshift_uniform(rng, i):
    """Return a uniform deviate in [0, 1) from voice ``i``'s xorshift64* stream."""
    s = rng[i]
    s ^= s >> np.uint64(12)
    s ^= s << np.uint64(25)
    s ^= s >> np.uint64(27)
    rng[i] = s
    return float((s * np.uint64(2685821657736338717)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True, inline="always")
def envelope_step(stage, env, att_step, dec_coef, sustain, rel_coef, fade_step):
    """One sample of the amplitude envelope; returns ``(stage, level)``.

    ATTACK: linear ramp to 1; DECAY: exponential approach to ``sustain`` (held there);
    RELEASE: exponential fall, OFF below -80 dB; FADE (a stolen voice): linear fall to 0.
    """
    if stage == ENV_DECAY:
        env = sustain + (env - sustain) * dec_coef
    elif stage == ENV_ATTACK:
        env += att_step
        if env >= 1.0:
            env = 1.0
            stage = ENV_DECAY
    elif stage == ENV_RELEASE:
        env *= rel_coef
        if env < 1e-4:
            env = 0.0
            stage = ENV_OFF
    elif stage == ENV_FADE:
        env -= fade_step
        if env <= 0.0:
            env = 0.0
            stage = ENV_OFF
    return stage, env


class Envelope(NamedTuple):
    """A voice's envelope coefficients, read once per block (see :func:`envelope_step`)."""

    att_step: float  # ATTACK increment per sample
    dec_coef: float  # DECAY factor per sample
    sustain: float  # SUSTAIN level, 0..1
    rel_coef: float  # RELEASE factor per sample
    fade_step: float  # FADE (stolen voice) decrement per sample


@njit(cache=True, nogil=True, inline="always")
def envelope_of(V, i):
    """Voice ``i``'s :class:`Envelope` from its row."""
    return Envelope(V[i, F_ATT_STEP], V[i, F_DEC_COEF], V[i, F_SUSTAIN], V[i, F_REL_COEF],
                    V[i, F_FADE_STEP])


@njit(cache=True, nogil=True, inline="always")
def envelope_next(stage, env, e):
    """:func:`envelope_step` with the coefficients of an :class:`Envelope` ``e``."""
    return envelope_step(stage, env, e.att_step, e.dec_coef, e.sustain, e.rel_coef, e.fade_step)


@njit(cache=True, nogil=True, inline="always")
def noisy(current, noise, rng, i):
    """``current``·(1 + noise·u), ``u`` triangular in (-1, 1) from voice ``i``'s stream."""
    return current * (1.0 + noise * (xorshift_uniform(rng, i) + xorshift_uniform(rng, i) - 1.0))


# --- the tracing variant --------------------------------------------------------------------
# Every voice kernel takes ``drive_in`` and ``trace``. The audio path passes ``None`` for both:
# numba prunes each ``if drive_in is not None:`` / ``if trace is not None:`` branch at compile
# time, so the audio variant has no probe or trace test per sample. The tracing variant (tests,
# plots, the ear, a live probe) passes arrays, either of which may be empty (not used).


@njit(cache=True, nogil=True, inline="always")
def probe_current(drive_in, n, drive):
    """Tracing variant: the membrane input of sample ``n``, ``drive_in[n]`` unless it is empty."""
    return drive_in[n] if drive_in.shape[0] > 0 else drive


@njit(cache=True, nogil=True, inline="always")
def record_trace(trace, n, v, state, drive, spring, out):
    """Tracing variant: write one sample's trace columns (nothing into an empty trace)."""
    if trace.shape[0] > 0:
        trace[n, TR_V] = v
        trace[n, TR_STATE] = state
        trace[n, TR_DRIVE] = drive
        trace[n, TR_SPRING] = spring
        trace[n, TR_OUT] = out


@njit(cache=True, nogil=True)
def spring_set(V, i, frequency, damping):
    """Set the spring of voice ``i``: ``frequency`` in cycles/sample, ``damping`` ζ in (0, 1).

    Stores ω, σ, ω_d and the one-sample transition matrix Φ(1) for the state (x, x').
    """
    omega = 2.0 * math.pi * frequency
    sigma = damping * omega
    wd = omega * math.sqrt(1.0 - damping * damping)
    V[i, F_OMEGA] = omega
    V[i, F_SIGMA] = sigma
    V[i, F_WD] = wd
    e = math.exp(-sigma)
    c = math.cos(wd)
    s = math.sin(wd) / wd
    V[i, F_PHI11] = e * (c + sigma * s)
    V[i, F_PHI12] = e * s
    V[i, F_PHI21] = -e * omega * omega * s
    V[i, F_PHI22] = e * (c - sigma * s)


@njit(cache=True, nogil=True)
def _spring_gain(omega, sigma, lam):
    """Forced response of the spring to ``exp(lam·t)``: ``ω²/(λ² + 2σλ + ω²)``."""
    return omega * omega / (lam * lam + 2.0 * sigma * lam + omega * omega)


@njit(cache=True, nogil=True)
def _particular(V, i, E):
    """Spring position and velocity of the FIRING drive's forced response at ``E``."""
    x = ((V[i, F_P3] * E + V[i, F_P2]) * E + V[i, F_P1]) * E + V[i, F_P0]
    xd = ((V[i, F_D3] * E + V[i, F_D2]) * E + V[i, F_D1]) * E + V[i, F_D0]
    return x, xd


@njit(cache=True, nogil=True)
def voice_configure(V, i, spring_frequency, damping, v_high, v_low, v_reset, tau, t_fire, t_ref,
                    softness):
    """Set the spring, membrane, hysteresis, soft threshold and state durations of voice ``i``.

    ``spring_frequency`` in cycles/sample, all times in samples. Computes the FIRING discharge
    time constant so that FIRING lasts exactly ``t_fire``, the drive polynomial ``q_k``, the
    spring's particular-solution coefficients ``p_k``, ``d_k``, the membrane value at the end
    of REFRACTORY and the spike's drive area (for the DC estimate).

    Safe at any moment: a voice in FIRING keeps its spring position and velocity, and its
    homogeneous part is re-expressed with the new coefficients at the same membrane value.
    """
    firing = V[i, F_STATE] == FIRING
    if firing:  # back to the actual spring state before the coefficients change
        px, pxd = _particular(V, i, V[i, F_E])
        V[i, F_X] += px
        V[i, F_XD] += pxd
    spring_set(V, i, spring_frequency, damping)
    V[i, F_VHI] = v_high
    V[i, F_VLO] = v_low
    V[i, F_VRESET] = v_reset
    V[i, F_TAU] = tau
    V[i, F_LEAK] = math.exp(-1.0 / tau)
    V[i, F_TFIRE] = t_fire
    V[i, F_TREF] = t_ref
    V[i, F_VSTART] = v_low * math.exp(-t_ref / tau)
    e_end = (v_low - v_reset) / (v_high - v_reset)
    tau_f = t_fire / math.log(1.0 / e_end)
    V[i, F_TAUF] = tau_f
    V[i, F_EDECAY] = math.exp(-1.0 / tau_f)
    V[i, F_EEND] = e_end
    # x = c0 + c1·E; d = (1 - s) + s·(3x² - 2x³) expanded in powers of E.
    c1 = (v_high - v_reset) / (v_high - v_low)
    c0 = (v_reset - v_low) / (v_high - v_low)
    V[i, F_Q0] = (1.0 - softness) + softness * (3.0 * c0 * c0 - 2.0 * c0 * c0 * c0)
    V[i, F_Q1] = softness * (6.0 * c0 * c1 - 6.0 * c0 * c0 * c1)
    V[i, F_Q2] = softness * (3.0 * c1 * c1 - 6.0 * c0 * c1 * c1)
    V[i, F_Q3] = softness * (-2.0 * c1 * c1 * c1)
    omega = V[i, F_OMEGA]
    sigma = V[i, F_SIGMA]
    area = V[i, F_Q0] * t_fire  # ∫ Σ q_k E^k dt over FIRING
    for k in range(4):
        lam = -k / tau_f
        p = V[i, F_Q0 + k] * _spring_gain(omega, sigma, lam)
        V[i, F_P0 + k] = p
        V[i, F_D0 + k] = lam * p
        if k > 0:
            area += V[i, F_Q0 + k] * tau_f / k * (1.0 - e_end**k)
    V[i, F_AREA] = area
    if firing:
        E = V[i, F_E]
        px, pxd = _particular(V, i, E)
        V[i, F_X] -= px
        V[i, F_XD] -= pxd
        V[i, F_TLEFT] = tau_f * math.log(E / e_end) if E > e_end else 0.0


@njit(cache=True, nogil=True)
def voice_fire(V, i):
    """Start a spike now: FIRING from the threshold, the spring keeping its state."""
    px, pxd = _particular(V, i, 1.0)
    if V[i, F_STATE] == FIRING:
        qx, qxd = _particular(V, i, V[i, F_E])
        px -= qx
        pxd -= qxd
    V[i, F_STATE] = FIRING
    V[i, F_E] = 1.0
    V[i, F_V] = V[i, F_VHI]
    V[i, F_TLEFT] = V[i, F_TFIRE]
    V[i, F_X] -= px
    V[i, F_XD] -= pxd


@njit(cache=True, nogil=True)
def drive_for_period(v_high, v_start, tau, t_rise):
    """Drive whose rise from ``v_start`` to ``v_high`` takes ``t_rise`` (same time unit as tau)."""
    e = math.exp(-t_rise / tau)
    return (v_high - v_start * e) / (1.0 - e)


@njit(cache=True, nogil=True)
def period_for_drive(v_high, v_start, tau, t_fire, t_ref, drive):
    """Closed-form firing period for a constant drive; ``inf`` at or below rheobase."""
    if drive <= v_high:
        return math.inf
    return tau * math.log((drive - v_start) / (drive - v_high)) + t_fire + t_ref


@njit(cache=True, nogil=True)
def voice_set_period(V, i, period):
    """Solve and set voice ``i``'s drive so that it fires with ``period`` samples.

    Also updates the DC estimate (drive area / period, the spring's DC gain being 1).
    The shape must already be set and leave a positive rise time.
    """
    t_rise = period - V[i, F_TFIRE] - V[i, F_TREF]
    V[i, F_DRIVE] = drive_for_period(V[i, F_VHI], V[i, F_VSTART], V[i, F_TAU], t_rise)
    V[i, F_PERIOD] = period
    V[i, F_DC] = V[i, F_AREA] / period


@njit(cache=True, nogil=True)
def _advance_spring(x, xd, h, omega, sigma, wd):
    """Homogeneous spring state after ``h`` samples (0 < h, any size)."""
    e = math.exp(-sigma * h)
    c = math.cos(wd * h)
    s = math.sin(wd * h) / wd
    nx = e * ((c + sigma * s) * x + s * xd)
    nxd = e * (-omega * omega * s * x + (c - sigma * s) * xd)
    return nx, nxd


# The audio path's kernels never allocate: compiled without numba's reference counting
# (``_nrt=False``), a call skips the atomic increment and decrement of each array argument
# and view (tens of ns per voice per block); an allocation inside would not compile.
@njit(cache=True, nogil=True, _nrt=False)
def voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    """Render samples ``start..stop-1`` of voice ``i``, adding them into ``out_l``/``out_r``.

    Parameters
    ----------
    V : float64 array, shape (n_slots, N_FIELDS)
        Voice rows; row ``i`` is read into locals and written back at the end.
    rng : uint64 array, shape (n_slots,)
    out_l, out_r : float64 arrays, shape (>= stop,)
        Mix buses; the voice adds ``(spring - DC)·envelope·amp·gain_{l,r}``.
    start, stop : int
    drive_in : None, or float64 array, shape (>= stop,) or (0,)
        None on the audio path (the branch is compiled out). When non-empty, the membrane
        input for each sample (overrides the solved drive): used by tests, plots and the ear
        to probe the neuron with arbitrary currents.
    trace : None, or float64 array, shape (>= stop, TRACE_FIELDS) or (0, TRACE_FIELDS)
        None on the audio path (compiled out). When non-empty, receives v, state, spike
        drive, spring position and output.

    Returns
    -------
    bool
        False when the voice's state became non-finite (the caller resets it).
    """
    state = int(V[i, F_STATE])
    v = V[i, F_V]
    t_left = V[i, F_TLEFT]
    E = V[i, F_E]
    x = V[i, F_X]
    xd = V[i, F_XD]
    env_stage = int(V[i, F_ENV_STAGE])
    env = V[i, F_ENV]
    drive = V[i, F_DRIVE]
    leak = V[i, F_LEAK]
    tau = V[i, F_TAU]
    v_high = V[i, F_VHI]
    v_low = V[i, F_VLO]
    v_reset = V[i, F_VRESET]
    v_start = V[i, F_VSTART]
    t_fire = V[i, F_TFIRE]
    tau_f = V[i, F_TAUF]
    e_decay = V[i, F_EDECAY]
    e_end = V[i, F_EEND]
    q0 = V[i, F_Q0]
    q1 = V[i, F_Q1]
    q2 = V[i, F_Q2]
    q3 = V[i, F_Q3]
    p0 = V[i, F_P0]
    p1 = V[i, F_P1]
    p2 = V[i, F_P2]
    p3 = V[i, F_P3]
    d0 = V[i, F_D0]
    d1 = V[i, F_D1]
    d2 = V[i, F_D2]
    d3 = V[i, F_D3]
    t_ref = V[i, F_TREF]
    omega = V[i, F_OMEGA]
    sigma = V[i, F_SIGMA]
    wd = V[i, F_WD]
    f11 = V[i, F_PHI11]
    f12 = V[i, F_PHI12]
    f21 = V[i, F_PHI21]
    f22 = V[i, F_PHI22]
    dc = V[i, F_DC]
    noise = V[i, F_NOISE]
    amp = V[i, F_AMP]
    gain_l = V[i, F_GAIN_L] * amp
    gain_r = V[i, F_GAIN_R] * amp
    envelope = envelope_of(V, i)
    v_span = v_high - v_reset
    w2 = omega * omega
    ring = V[i, F_BL_RING:F_BL_RING + blep.RING]
    pos = int(V[i, F_BL_POS])

    for n in range(start, stop):
        current = drive
        if drive_in is not None:
            current = probe_current(drive_in, n, drive)
        if noise != 0.0:
            current = noisy(current, noise, rng, i)
        rem = 1.0  # what is left of this sample
        for _ in range(_MAX_TRANSITIONS):
            if state == RESTING:
                if rem == 1.0:
                    v_new = current + (v - current) * leak
                else:
                    v_new = current + (v - current) * math.exp(-rem / tau)
                if v_new >= v_high and v < v_high:
                    # Exact crossing time within the remaining interval.
                    h = tau * math.log((current - v) / (current - v_high))
                    if h > rem:
                        h = rem
                    if h > 0.0:
                        x, xd = _advance_spring(x, xd, h, omega, sigma, wd)
                    rem -= h
                    state = FIRING
                    v = v_high
                    E = 1.0
                    t_left = t_fire
                    x -= p0 + p1 + p2 + p3  # to the homogeneous part
                    xd -= d0 + d1 + d2 + d3
                    # The drive jumps from 0 to d(1), its slope from 0 to d'(1).
                    j2 = w2 * (q0 + q1 + q2 + q3)
                    j3 = w2 * (-(q1 + 2.0 * q2 + 3.0 * q3) / tau_f) - 2.0 * sigma * j2
                    blep.ring_add_events(ring, pos, rem, 0.0, 0.0, j2, j3)
                    if rem <= 0.0:
                        break
                    continue
                v = v_new
                if rem == 1.0:
                    x, xd = f11 * x + f12 * xd, f21 * x + f22 * xd
                else:
                    x, xd = _advance_spring(x, xd, rem, omega, sigma, wd)
                break
            elif state == FIRING:
                if t_left > rem:
                    if rem == 1.0:
                        x, xd = f11 * x + f12 * xd, f21 * x + f22 * xd
                        E *= e_decay
                    else:
                        x, xd = _advance_spring(x, xd, rem, omega, sigma, wd)
                        E *= math.exp(-rem / tau_f)
                    t_left -= rem
                    v = v_reset + v_span * E
                    break
                h = t_left
                if h > 0.0:
                    x, xd = _advance_spring(x, xd, h, omega, sigma, wd)
                E = e_end
                x += ((p3 * E + p2) * E + p1) * E + p0  # back to the actual spring state
                xd += ((d3 * E + d2) * E + d1) * E + d0
                rem -= h
                # The drive falls from d(e_end) to 0, its slope from d'(e_end) to 0.
                j2 = -w2 * (((q3 * E + q2) * E + q1) * E + q0)
                j3 = w2 * (((3.0 * q3 * E + 2.0 * q2) * E + q1) * E / tau_f) - 2.0 * sigma * j2
                blep.ring_add_events(ring, pos, rem, 0.0, 0.0, j2, j3)
                state = REFRACTORY
                v = v_low
                t_left = t_ref
                if rem <= 0.0:
                    break
            else:  # REFRACTORY
                if t_left > rem:
                    if rem == 1.0:
                        x, xd = f11 * x + f12 * xd, f21 * x + f22 * xd
                        v *= leak
                    else:
                        x, xd = _advance_spring(x, xd, rem, omega, sigma, wd)
                        v *= math.exp(-rem / tau)
                    t_left -= rem
                    break
                h = t_left
                if h > 0.0:
                    x, xd = _advance_spring(x, xd, h, omega, sigma, wd)
                rem -= h
                state = RESTING
                v = v_start
                t_left = 0.0
                if rem <= 0.0:
                    break

        spring = x
        if state == FIRING:
            spring = x + ((p3 * E + p2) * E + p1) * E + p0

        env_stage, env = envelope_next(env_stage, env, envelope)
        out = blep.ring_take(ring, pos, spring - dc) * env
        pos += 1
        out_l[n] += out * gain_l
        out_r[n] += out * gain_r
        if trace is not None:
            spike_drive = ((q3 * E + q2) * E + q1) * E + q0 if state == FIRING else 0.0
            record_trace(trace, n, v, state, spike_drive, spring, out * amp)
        if env_stage == ENV_OFF:
            break

    V[i, F_STATE] = state
    V[i, F_V] = v
    V[i, F_TLEFT] = t_left
    V[i, F_E] = E
    V[i, F_X] = x
    V[i, F_XD] = xd
    V[i, F_BL_POS] = pos & blep.RING_MASK
    V[i, F_ENV_STAGE] = env_stage
    V[i, F_ENV] = env
    return math.isfinite(x) and math.isfinite(xd) and math.isfinite(v) and abs(x) < 1e6
