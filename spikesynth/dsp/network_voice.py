"""Network voices: a small spiking network (spikesynth.dsp.network) per voice, its membranes heard.

Time scale
----------
The network always advances in steps of one fixed model time ``step`` (ms), so it behaves
identically for every note; the note only sets how many steps run per audio sample,
``rate = m / step`` with ``m`` model ms per sample (a fractional step counter carries the
remainder, like an oscillator's phase). With ``m = P·f/sr`` — ``P`` the network's own
steady period in model ms, measured once at prepare time from the first heard neuron's spikes
(:func:`network_reference`) — one period of the network lasts exactly one period of the note.
A patch may instead give a ``reference_rate_hz`` (``P = 1000/rate``): the documented mapping
for networks that are not periodic (chaotic, gated).

Sound
-----
Each neuron has an output gain and a pan; the voice hears ``Σ gain_j (v_j - mean_j)`` per
channel (``mean_j`` measured at prepare time), through the shared amplitude envelope.

Band-limited output. The heard value of each step, placed at the step's exact (sub-sample)
time and linearly interpolated between steps (one step late, a constant delay), is a
continuous piecewise-linear signal ``y(t)``; the voice hears it through a low-pass, not
sampled. ``y`` is first integrated exactly against triangles (linear B-splines) of half-width
``1/M`` sample centred on ``M`` = :data:`KNOTS_PER_SAMPLE` knots per sample (each piece of
``y`` between two step times or knots adds two closed-form moments into its two knots: O(1)
per step), then a fixed FIR over the knots (the windowed sinc of
:mod:`spikesynth.dsp.blep`: cutoff ``blep.CUTOFF``, Blackman-Harris window over
``±blep.HALF_WIDTH`` samples) gives each sample. Together: ``y`` convolved with the
piecewise-linear interpolant of that windowed sinc, sampled; images of its pass band at
multiples of ``M`` samples⁻¹ are attenuated by the triangles' ``sinc²``. Latency:
``blep.HALF_WIDTH`` samples (as the other band-limited voices) plus one step.

Pitch and periodicity. A network whose spikes and resets fall on the step grid (Izhikevich
neurons; LIF neurons with ``method: euler``) is a deterministic map on its state: once on its
limit cycle it typically repeats exactly after a whole number ``N`` of steps (the bundled
pitched networks do after 10 to 110 periods). Its measured period is then exactly ``N``
steps, the note plays ``N`` steps per period, and the band-limited output is exactly
periodic at the note: what remains off the harmonics is the low-pass's leakage. An exact LIF
(sub-step spike times) is in tune on average but its spikes land on the grid with a
wandering jitter of up to a step: not periodic.

Learning
--------
Plastic synapses learn during a note (pair-based STDP, global rate ``lr`` per voice, which a
controller can drive). When a voice ends, its weights become the starting weights of the
next note: the network's sound changes as it is played. :func:`network_voice_start` copies
the initial state and the learned weights into a voice slot.

Arrays
------
:class:`NetworkArrays`, built by :func:`spikesynth.network.network_arrays` at prepare time:
the shared :class:`spikesynth.dsp.network.NetworkTopology`, the state of each of ``S`` voice
slots (the arrays of :class:`spikesynth.dsp.network.NetworkState` with a leading slot axis),
scratch, the output gains and means, the initial state and the learned weights.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import blep
from . import network as net
from .model_voice import steady_period
from .voice import (
    ENV_OFF,
    F_AMP,
    F_DRIVE,
    F_ENV,
    F_ENV_STAGE,
    F_GAIN_L,
    F_GAIN_R,
    F_M,
    F_NOISE,
    N_FIELDS,
    TRACE_FIELDS,
    envelope_next,
    envelope_of,
    noisy,
    probe_current,
    record_trace,
)

# Voice row slots.
N_PHASE = F_M  # fractional network steps owed
N_RATE = F_M + 1  # network steps per sample
N_PREV_L = F_M + 2
N_PREV_R = F_M + 3
N_CUR_L = F_M + 4
N_CUR_R = F_M + 5
N_LR = F_M + 6  # learning rate of this voice
N_Y_L = F_M + 7  # heard signal y at the last sample, left (before the low-pass)
N_Y_R = F_M + 8  # ... right
N_KNOT = F_M + 9  # ring position of the knot at the last sample

META_LR, META_STEP, META_PERIOD = 0, 1, 2
META_N = 4

MAX_STEPS_PER_SAMPLE = 256  # a guard: beyond this the voice cannot keep real time
REFERENCE_STEPS = 20000  # steps of the heard mix kept at prepare time for the note levels

# The band-limited output (module docstring): knots per sample, the FIR over the knots.
KNOTS_PER_SAMPLE = 3
KNOT_TAPS = 2 * blep.HALF_WIDTH * KNOTS_PER_SAMPLE - 1  # knots s - q/M for q = 1..KNOT_TAPS
KNOT_RING = 1 << KNOT_TAPS.bit_length()  # a power of two > KNOT_TAPS; the ring is stored
# twice (mirrored) so that the FIR reads one contiguous stretch
KNOT_MASK = KNOT_RING - 1
assert KNOT_RING > KNOT_TAPS and KNOT_RING & KNOT_MASK == 0
# The pool's shared low-pass (network_pool_run): a linear buffer of the FIR's history and a
# chunk's new knots.
POOL_HISTORY = KNOT_TAPS + 1  # = FIR_LENGTH (the FIR's leading zero tap included)
POOL_CHUNK = 64  # samples per chunk
POOL_LENGTH = POOL_HISTORY + KNOTS_PER_SAMPLE * POOL_CHUNK
assert net.VOICE_SLOT_BYTES >= 8 * 2 * 2 * KNOT_RING
assert net.VOICE_SHARED_BYTES >= 8 * (REFERENCE_STEPS + 2 * POOL_LENGTH)


def _knot_fir(m=KNOTS_PER_SAMPLE, half_width=blep.HALF_WIDTH, cutoff=blep.CUTOFF):
    """FIR taps over the knots, oldest first: ``taps[j]`` weighs the knot ``KNOT_TAPS - j``
    knots before the newest sample; the windowed sinc of :mod:`spikesynth.dsp.blep` centred
    ``half_width`` samples back, normalised to a DC gain of 1."""
    q = np.arange(1, 2 * half_width * m)  # knot s - q/m
    tau = q / m - half_width
    x = tau / half_width
    window = (0.35875 + 0.48829 * np.cos(np.pi * x) + 0.14128 * np.cos(2 * np.pi * x)
              + 0.01168 * np.cos(3 * np.pi * x))
    h = np.sinc(2.0 * cutoff * tau) * window
    return np.ascontiguousarray((h / h.sum())[::-1])


KNOT_FIR = _knot_fir()
# The FIR as :func:`_fir` runs it: a zero tap in front (one knot earlier, which the mirrored
# ring always holds), so that it is whole vectors of four sums of four.
FIR_TAPS = np.concatenate(([0.0], KNOT_FIR))
FIR_LENGTH = FIR_TAPS.shape[0]
assert FIR_LENGTH % 16 == 0


class NetworkArrays(NamedTuple):
    """Everything a network voice pool reads and writes (``S`` slots, ``n`` neurons, ``m``
    synapses; state shapes as in :class:`spikesynth.dsp.network.NetworkState`)."""

    topology: net.NetworkTopology  # shared, read-only
    nstate: np.ndarray  # (S, n, N_STATE_WIDTH) neuron state per voice
    syn_state: np.ndarray  # (S, m, SS_N) weights and presynaptic traces per voice
    rec_g: np.ndarray  # (S, nr) receptor conductances per voice
    trace_state: np.ndarray  # (S, nt, TS_N) postsynaptic traces per voice
    hist: np.ndarray  # (S, L) uint64 spike ring per voice
    clock: np.ndarray  # (S, CLK_N) int64 ring position and step count per voice
    spiked: np.ndarray  # (n,) uint8 scratch: spikes of the last step
    arrived: np.ndarray  # (m,) int64 scratch: arrivals of the last step
    recent: np.ndarray  # (S, L) int64 ring of the recent spiking steps per voice
    ext: np.ndarray  # (n,) scratch: drive of each neuron over a step
    out_l: np.ndarray  # (n,) per-neuron output gain, left (pan and v scale included)
    out_r: np.ndarray  # (n,) per-neuron output gain, right
    mean_v: np.ndarray  # (n,) per-neuron mean potential (DC), measured at prepare time
    nstate0: np.ndarray  # (n, N_STATE_WIDTH) initial neuron state
    syn_state0: np.ndarray  # (m, SS_N) initial synapse state
    w_learned: np.ndarray  # (m,) weights the next note starts from
    meta: np.ndarray  # (META_N,) [spec lr, step ms, reference period ms, 0]
    heard: np.ndarray  # (REFERENCE_STEPS,) scratch of network_reference: the heard mono mix
    knots: np.ndarray  # (S, 2, 2 KNOT_RING) per voice and channel: the knot ring, mirrored
    pool_knots: np.ndarray  # (2, POOL_LENGTH) the pool's shared knots (network_pool_run)


@njit(cache=True, nogil=True)
def voice_state(net_arrays, i):
    """The :class:`spikesynth.dsp.network.NetworkState` of voice slot ``i`` (views)."""
    a = net_arrays
    return net.NetworkState(a.nstate[i], a.syn_state[i], a.rec_g[i], a.trace_state[i],
                            a.hist[i], a.clock[i], a.spiked, a.arrived,
                            a.recent[i])  # fmt: skip


@njit(cache=True, nogil=True)
def network_voice_start(V, i, net_arrays):
    """Reset voice ``i``'s network to its initial state with the learned weights."""
    a = net_arrays
    n = a.nstate0.shape[0]
    for j in range(n):
        for k in range(a.nstate0.shape[1]):
            a.nstate[i, j, k] = a.nstate0[j, k]
    for s in range(a.syn_state0.shape[0]):
        for k in range(a.syn_state0.shape[1]):
            a.syn_state[i, s, k] = a.syn_state0[s, k]
        a.syn_state[i, s, net.SS_W] = a.w_learned[s]
    for r in range(a.rec_g.shape[1]):
        a.rec_g[i, r] = 0.0
    for t in range(a.trace_state.shape[1]):
        a.trace_state[i, t, net.TS_X] = 0.0
        a.trace_state[i, t, net.TS_T] = 0.0
    for k in range(a.hist.shape[1]):
        a.hist[i, k] = 0
    for k in range(a.clock.shape[1]):
        a.clock[i, k] = 0
    for c in range(2):
        for k in range(a.knots.shape[2]):
            a.knots[i, c, k] = 0.0
    V[i, N_PHASE] = 0.0
    V[i, N_KNOT] = 0.0
    left, right = heard_mix(a.nstate0, a)
    V[i, N_PREV_L] = left
    V[i, N_PREV_R] = right
    V[i, N_CUR_L] = left
    V[i, N_CUR_R] = right
    V[i, N_Y_L] = left
    V[i, N_Y_R] = right


@njit(cache=True, nogil=True, inline="always")
def heard_mix(nstate, net_arrays):
    """The network as the voice hears it, before the envelope: ``(Σ_j out_l_j (v_j - mean_j),
    Σ_j out_r_j (v_j - mean_j))`` over the neuron states ``nstate`` (n, N_STATE_WIDTH)."""
    out_l = net_arrays.out_l
    out_r = net_arrays.out_r
    mean_v = net_arrays.mean_v
    left = 0.0
    right = 0.0
    for j in range(nstate.shape[0]):
        dv = nstate[j, net.V_SLOT] - mean_v[j]
        left += out_l[j] * dv
        right += out_r[j] * dv
    return left, right


@njit(cache=True, nogil=True, inline="always")
def _add_part(bin_, xs, ys_l, ys_r, xe, ye_l, ye_r, s0_l, s1_l, s0_r, s1_r):
    """The running sums of bin ``bin_`` after a linear part from ``(xs, ys)`` to
    ``(xe, ye)`` inside it (per channel): ``s0 += ∫ y dw``, ``s1 += ∫ y w dw`` over
    ``w = x - bin_`` (see :func:`_advance`)."""
    length = xe - xs
    w0 = xs - bin_
    w1 = xe - bin_
    f0 = length * (2.0 * w0 + w1) * (1.0 / 6.0)
    f1 = length * (w0 + 2.0 * w1) * (1.0 / 6.0)
    s0_l += 0.5 * length * (ys_l + ye_l)
    s1_l += ys_l * f0 + ye_l * f1
    s0_r += 0.5 * length * (ys_r + ye_r)
    s1_r += ys_r * f0 + ye_r * f1
    return s0_l, s1_l, s0_r, s1_r


@njit(cache=True, nogil=True, inline="always")
def _advance(ring, mask, base, w_l, w_r, bin_, x0, a_l, a_r, x1, b_l, b_r, s0_l, s1_l, s0_r,
             s1_r):
    """Integrate one linear piece of the heard signal against the knots' triangles.

    The piece runs from ``x0`` to ``x1`` (0 <= x0 <= x1 <= M: the time since the last sample,
    in knot spacings) with values ``a`` to ``b`` per channel. Knot ``k`` of this sample (ring
    position ``(base + k) & mask``) receives ``w ∫ y(x) Λ(x - k) dx`` (``w``: the sample's
    weight per channel, see :func:`_flush_bin`): the piece is split at the knots,
    and each part ``[w0, w1]`` of bin ``bin_`` (``w = x - bin_``) adds its moments
    ``m0 = ∫ y dw`` and ``m1 = ∫ y w dw`` to the bin's running sums ``s0``, ``s1``; leaving a
    bin adds ``s0 - s1`` to its left knot and ``s1`` to its right one. Returns the bin and
    its sums after the piece.
    """
    if not x1 > x0:
        return bin_, s0_l, s1_l, s0_r, s1_r
    xs = x0
    ys_l = a_l
    ys_r = a_r
    while True:
        xe = x1
        ye_l = b_l
        ye_r = b_r
        split = x1 > bin_ + 1.0 and bin_ < KNOTS_PER_SAMPLE - 1
        if split:  # the piece goes on into the next bin: its value at the knot
            xe = bin_ + 1.0
            t = (xe - x0) / (x1 - x0)
            ye_l = a_l + (b_l - a_l) * t
            ye_r = a_r + (b_r - a_r) * t
        s0_l, s1_l, s0_r, s1_r = _add_part(bin_, xs, ys_l, ys_r, xe, ye_l, ye_r, s0_l, s1_l,
                                           s0_r, s1_r)
        if not split:
            return bin_, s0_l, s1_l, s0_r, s1_r
        _flush_bin(ring, mask, base, w_l, w_r, bin_, s0_l, s1_l, s0_r, s1_r)
        bin_ += 1
        s0_l = s1_l = s0_r = s1_r = 0.0
        xs = xe
        ys_l = ye_l
        ys_r = ye_r


@njit(cache=True, nogil=True, inline="always")
def _flush_bin(ring, mask, base, w_l, w_r, bin_, s0_l, s1_l, s0_r, s1_r):
    """Add a finished bin's moments, times the sample's weight ``w`` per channel, to its two
    knots (see :func:`_advance`). ``ring`` (2, L): a voice's own ring (``mask``
    :data:`KNOT_MASK`, ``w`` 1) or the pool's buffer (``mask`` -1: no wrap; ``w`` the
    envelope and gain, see :func:`network_pool_run`)."""
    pl = (base + bin_) & mask
    pr = (base + bin_ + 1) & mask
    ring[0, pl] += w_l * (s0_l - s1_l)
    ring[0, pr] += w_l * s1_l
    ring[1, pl] += w_r * (s0_r - s1_r)
    ring[1, pr] += w_r * s1_r


@njit(cache=True, nogil=True, inline="always")
def _knot_output(ring, base):
    """Finish this sample's knots in a voice's own ring (mirror them) and return the
    low-passed ``(left, right)`` (the FIR over the last ``KNOT_TAPS`` knots,
    :data:`KNOT_FIR`)."""
    m = KNOTS_PER_SAMPLE
    for b in range(m):
        p = (base + b) & KNOT_MASK
        ring[0, p + KNOT_RING] = ring[0, p]
        ring[1, p + KNOT_RING] = ring[1, p]
    first = ((base + m - 1) & KNOT_MASK) + KNOT_RING - KNOT_TAPS + 1
    return _fir(ring, first)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _fir(ring, first):
    """The FIR over ``KNOT_TAPS`` knots from ring position ``first`` (a contiguous stretch of
    the mirrored ring), both channels, summed in any order (SIMD).

    It runs :data:`FIR_TAPS` from one knot earlier, and its length is read from the ring's
    shape (always ``FIR_LENGTH``): with a length known at compile time LLVM unrolled the loop
    into one chain of dependent multiply-adds per channel, waiting on their latency; with a
    run-time length it keeps a loop with four vector sums per channel (8 % of a
    ``half_centre`` voice). The order is fixed by the compiled code, so the output still does
    not depend on the block size.
    """
    n = min(FIR_LENGTH, ring.shape[1] - first + 1)
    ring_l = ring[0, first - 1:first - 1 + n]
    ring_r = ring[1, first - 1:first - 1 + n]
    left = 0.0
    right = 0.0
    for j in range(n):
        left += FIR_TAPS[j] * ring_l[j]
        right += FIR_TAPS[j] * ring_r[j]
    return left, right


@njit(cache=True, nogil=True, inline="always")
def _record_raster(trace, s, spiked):
    """Tracing variant: count this step's spikes in the raster columns (if the trace has them)."""
    if trace.shape[0] > 0 and trace.shape[1] > TRACE_FIELDS:
        for j in range(spiked.shape[0]):
            if spiked[j] != 0:
                trace[s, TRACE_FIELDS + j] += 1.0


@njit(cache=True, nogil=True, _nrt=False)
def _voice_span(V, i, rng, out_l, out_r, start, stop, drive_in, trace, net_arrays, ring,
                mask, base):
    """Samples ``start..stop-1`` of network voice ``i``: the network's steps, the heard
    signal's knots into ``ring`` from position ``base`` (:func:`_advance`).

    ``mask`` :data:`KNOT_MASK`: the voice's own ring, low-passed here per sample and added
    to ``out_l``/``out_r`` through the envelope. ``mask`` -1: the pool's buffer, each
    sample's knots weighted by its envelope and gains, low-passed once for all voices by
    :func:`network_pool_run` (``out_l``/``out_r`` unused). One compiled copy serves both
    (the mode is a run-time value: no second copy of the network step to compile). Returns
    ``(ok, ring position after the span)``.
    """
    pooled = mask < 0
    topology = net_arrays.topology
    state = voice_state(net_arrays, i)
    nstate = state.nstate
    syn_state = state.syn_state
    spiked = state.spiked
    ext = net_arrays.ext
    w_learned = net_arrays.w_learned
    n = nstate.shape[0]
    phase = V[i, N_PHASE]
    rate = V[i, N_RATE]
    prev_l = V[i, N_PREV_L]
    prev_r = V[i, N_PREV_R]
    cur_l = V[i, N_CUR_L]
    cur_r = V[i, N_CUR_R]
    lr = V[i, N_LR]
    drive = V[i, F_DRIVE]
    noise = V[i, F_NOISE]
    env_stage = int(V[i, F_ENV_STAGE])
    env = V[i, F_ENV]
    envelope = envelope_of(V, i)
    amp = V[i, F_AMP]
    g_l = V[i, F_GAIN_L] * amp
    g_r = V[i, F_GAIN_R] * amp
    y_l = V[i, N_Y_L]
    y_r = V[i, N_Y_R]
    m_knots = float(KNOTS_PER_SAMPLE)
    knots_per_step = m_knots / rate if rate > 0.0 else 0.0
    w_l = 1.0
    w_r = 1.0
    for s in range(start, stop):
        current = drive
        if drive_in is not None:
            current = probe_current(drive_in, s, drive)
        if noise != 0.0:
            current = noisy(current, noise, rng, i)
        for j in range(n):
            ext[j] = current
        env_stage, env = envelope_next(env_stage, env, envelope)
        if pooled:
            w_l = env * g_l
            w_r = env * g_r
        else:
            for b in range(1, KNOTS_PER_SAMPLE + 1):  # this sample's new knots
                p = (base + b) & mask
                ring[0, p] = 0.0
                ring[1, p] = 0.0
        phase += rate
        steps = 0
        x = 0.0  # time since the last sample (knot spacings) of the heard signal's last point
        bin_ = 0
        s0_l = s1_l = s0_r = s1_r = 0.0
        while phase >= 1.0 and steps < MAX_STEPS_PER_SAMPLE:
            # The step ends at x_k = M (1 - (phase - 1)/rate), where y (one step late)
            # reaches cur.
            x_k = m_knots - (phase - 1.0) * knots_per_step
            if x_k <= bin_ + 1.0 or bin_ == KNOTS_PER_SAMPLE - 1:  # within the bin
                s0_l, s1_l, s0_r, s1_r = _add_part(bin_, x, y_l, y_r, x_k, cur_l, cur_r, s0_l,
                                                   s1_l, s0_r, s1_r)
            else:
                bin_, s0_l, s1_l, s0_r, s1_r = _advance(ring, mask, base, w_l, w_r, bin_, x,
                                                        y_l, y_r, x_k, cur_l, cur_r, s0_l,
                                                        s1_l, s0_r, s1_r)
            x = x_k
            y_l = cur_l
            y_r = cur_r
            net.network_step(ext, lr, topology, state)
            phase -= 1.0
            steps += 1
            prev_l = cur_l
            prev_r = cur_r
            cur_l, cur_r = heard_mix(nstate, net_arrays)
            if trace is not None:
                _record_raster(trace, s, spiked)
        if phase >= 1.0:  # could not keep up: drop the debt rather than fall behind forever
            phase -= math.floor(phase)
        end_l = prev_l + (cur_l - prev_l) * phase
        end_r = prev_r + (cur_r - prev_r) * phase
        bin_, s0_l, s1_l, s0_r, s1_r = _advance(ring, mask, base, w_l, w_r, bin_, x, y_l, y_r,
                                                m_knots, end_l, end_r, s0_l, s1_l, s0_r, s1_r)
        _flush_bin(ring, mask, base, w_l, w_r, bin_, s0_l, s1_l, s0_r, s1_r)
        y_l = end_l
        y_r = end_r
        left = 0.0
        right = 0.0
        if not pooled:
            left, right = _knot_output(ring, base)
            out_l[s] += left * env * g_l
            out_r[s] += right * env * g_r
        base = (base + KNOTS_PER_SAMPLE) & mask
        if trace is not None:
            record_trace(trace, s, nstate[0, net.V_SLOT], steps, current, left,
                         0.5 * (left + right) * env * amp)
        if env_stage == ENV_OFF:
            break
    V[i, N_PHASE] = phase
    V[i, N_PREV_L] = prev_l
    V[i, N_PREV_R] = prev_r
    V[i, N_CUR_L] = cur_l
    V[i, N_CUR_R] = cur_r
    V[i, N_Y_L] = y_l
    V[i, N_Y_R] = y_r
    V[i, F_ENV_STAGE] = env_stage
    V[i, F_ENV] = env
    if env_stage == ENV_OFF:  # the next note starts from what this one learned
        for s in range(syn_state.shape[0]):
            w_learned[s] = syn_state[s, net.SS_W]
    ok = (math.isfinite(cur_l) and math.isfinite(cur_r) and abs(cur_l) < 1e6
          and math.isfinite(y_l) and math.isfinite(y_r) and math.isfinite(phase))
    return ok, base


@njit(cache=True, nogil=True, _nrt=False)  # see voice.voice_run
def network_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace, net_arrays):
    """Render samples ``start..stop-1`` of network voice ``i`` alone, through its own knot
    ring and low-pass (see :func:`voice.voice_run`; the engine's pool renders with
    :func:`network_pool_run`).

    With a trace of more than ``TRACE_FIELDS`` columns, column ``TRACE_FIELDS + j`` counts
    neuron ``j``'s spikes in each sample (the raster).
    """
    ok, base = _voice_span(V, i, rng, out_l, out_r, start, stop, drive_in, trace, net_arrays,
                           net_arrays.knots[i], np.int64(KNOT_MASK), int(V[i, N_KNOT]))
    V[i, N_KNOT] = base
    return ok


@njit(cache=True, nogil=True, _nrt=False)
def network_pool_run(V, top, rng, out_l, out_r, start, stop, net_arrays):
    """Render samples ``start..stop-1`` of every sounding network voice among slots
    ``0..top-1``, adding them into ``out_l``/``out_r``; returns how many voices were reset
    (their state became non-finite: the row is cleared).

    The low-pass is linear and the same for every voice, so the voices share one: each adds
    its knots, weighted per sample by its envelope and gains, into the pool's buffer
    ``net_arrays.pool_knots``, and one FIR per sample and channel makes the output: 1/S of
    the per-voice cost for S voices (the FIR was a quarter of a voice). The envelope is then
    heard through the low-pass too (smoothed at the band edge; a steady note sounds the
    same as alone). In chunks of :data:`POOL_CHUNK` samples: the buffer holds
    :data:`POOL_HISTORY` knots of history (the FIR's length; its last one still open: the
    next sample adds to it) and the chunk's new knots.
    """
    pool = net_arrays.pool_knots
    resets = 0
    c0 = start
    while c0 < stop:
        c1 = min(c0 + POOL_CHUNK, stop)
        fresh = KNOTS_PER_SAMPLE * (c1 - c0)
        for c in range(2):
            for k in range(POOL_HISTORY, POOL_HISTORY + fresh):
                pool[c, k] = 0.0
        for i in range(top):
            if V[i, F_ENV_STAGE] == ENV_OFF:
                continue
            ok, _ = _voice_span(V, i, rng, out_l, out_r, c0, c1, None, None, net_arrays, pool,
                                np.int64(-1), np.int64(POOL_HISTORY - 1))
            if not ok:
                for k in range(N_FIELDS):
                    V[i, k] = 0.0
                resets += 1
                for c in range(2):  # what it added is lost, not heard as noise
                    for k in range(pool.shape[1]):
                        if not math.isfinite(pool[c, k]) or abs(pool[c, k]) > 1e6:
                            pool[c, k] = 0.0
        for j in range(c1 - c0):
            # The FIR (see _fir) whose newest knot is sample j's last, POOL_HISTORY + 1 + 3j.
            left, right = _fir(pool, POOL_HISTORY + 3 + KNOTS_PER_SAMPLE * j - FIR_LENGTH)
            out_l[c0 + j] += left
            out_r[c0 + j] += right
        for c in range(2):  # keep the last POOL_HISTORY knots (the open one last)
            for k in range(POOL_HISTORY):
                pool[c, k] = pool[c, k + fresh]
        c0 = c1
    return resets


@njit(cache=True, nogil=True)
def network_pool_clear(net_arrays):
    """Silence the pool's low-pass (its history of knots): a reset engine starts quiet."""
    net_arrays.pool_knots[:, :] = 0.0


@njit(cache=True, nogil=True, _nrt=False)
def _reference_step(ext, lr, topology, state):
    """One network step, not inlined: the prepare-time measurement calls it from three loops,
    and each inlined copy of the step would be compiled again on a first run."""
    return net.network_step(ext, lr, topology, state)


@njit(cache=True, nogil=True)
def network_reference(net_arrays, drive, lr, steps, spike_times, mix_out, lr_play):
    """Run the network in model time (voice slot 0) and measure it, at prepare time.

    Fills ``mean_v`` with each neuron's mean potential over the second half and returns
    ``(period_steps, rms, count)``: the steady period of the first heard neuron's spike
    pattern (in steps; nan if it fires fewer than 4 times), the RMS of the heard mono mix,
    and how many steps of the heard mono mix ``mix_out`` (float64, (cap,)) received, oldest
    first (for :func:`band_limited_rms`): run on after the measurement with the learning rate
    ``lr_play`` of a played note (learning makes some networks brighter).
    """
    topology = net_arrays.topology
    state = voice_state(net_arrays, 0)
    nstate = state.nstate
    spiked = state.spiked
    ext = net_arrays.ext
    out_l = net_arrays.out_l
    out_r = net_arrays.out_r
    mean_v = net_arrays.mean_v
    n = nstate.shape[0]
    for j in range(n):
        ext[j] = drive
        mean_v[j] = 0.0
    half = steps // 2
    count = 0
    cap = spike_times.shape[0]
    heard = 0  # the period is that of the first heard neuron's spike pattern
    while heard < n - 1 and out_l[heard] == 0.0 and out_r[heard] == 0.0:
        heard += 1
    for k in range(steps):
        _reference_step(ext, lr, topology, state)
        for j in range(n):
            if k >= half:
                mean_v[j] += nstate[j, net.V_SLOT]
            if spiked[j] != 0 and j == heard:
                if count == cap:
                    h = cap // 2
                    for q in range(h):
                        spike_times[q] = spike_times[q + h]
                    count = h
                spike_times[count] = k
                count += 1
    for j in range(n):
        mean_v[j] /= steps - half
    # Second pass over the same stretch for the RMS of the mix about its means.
    total = 0.0
    for _ in range(half):
        _reference_step(ext, lr, topology, state)
        mono = 0.0
        for j in range(n):
            mono += 0.5 * (out_l[j] + out_r[j]) * (nstate[j, net.V_SLOT] - mean_v[j])
        total += mono * mono
    rms = math.sqrt(total / max(half, 1))
    kept = min(half, mix_out.shape[0])
    for k in range(half + kept):
        _reference_step(ext, lr_play, topology, state)
        if k >= half:
            mono = 0.0
            for j in range(n):
                mono += 0.5 * (out_l[j] + out_r[j]) * (nstate[j, net.V_SLOT] - mean_v[j])
            mix_out[k - half] = mono
    return steady_period(spike_times, count, 32), rms, kept


@njit(cache=True, nogil=True)
def band_limited_rms(heard, count, rate, knots):
    """The RMS of what the voice makes of the steps ``heard[:count]`` at ``rate`` steps per
    sample: the same interpolation, knots and FIR as :func:`network_voice_run` (prepare time;
    slot 0 of ``knots`` is scratch), the FIR's first fill left out. Relative to the RMS of
    the steps it says how much of the network's energy the low-pass keeps at that rate (the
    rest lay above Nyquist). nan when the stretch gives no sample.
    """
    m_knots = float(KNOTS_PER_SAMPLE)
    knots_per_step = m_knots / rate
    ring = knots[0]
    mask = np.int64(KNOT_MASK)
    for c in range(2):
        for k in range(ring.shape[1]):
            ring[c, k] = 0.0
    base = 0
    phase = 0.0
    prev = heard[0]
    cur = heard[0]
    y = heard[0]
    k = 1
    warm = KNOT_TAPS // KNOTS_PER_SAMPLE + 1  # samples until the FIR has only the signal
    s = 0
    n = 0
    total = 0.0
    total2 = 0.0
    while True:
        for b in range(1, KNOTS_PER_SAMPLE + 1):
            p = (base + b) & KNOT_MASK
            ring[0, p] = 0.0
            ring[1, p] = 0.0
        phase += rate
        x = 0.0
        bin_ = 0
        s0_l = s1_l = s0_r = s1_r = 0.0
        while phase >= 1.0 and k < count:
            x_k = m_knots - (phase - 1.0) * knots_per_step
            bin_, s0_l, s1_l, s0_r, s1_r = _advance(ring, mask, base, 1.0, 1.0, bin_, x, y, y,
                                                    x_k, cur, cur, s0_l, s1_l, s0_r, s1_r)
            x = x_k
            y = cur
            prev = cur
            cur = heard[k]
            k += 1
            phase -= 1.0
        if phase >= 1.0:  # the stretch is used up
            break
        end = prev + (cur - prev) * phase
        bin_, s0_l, s1_l, s0_r, s1_r = _advance(ring, mask, base, 1.0, 1.0, bin_, x, y, y,
                                                m_knots, end, end, s0_l, s1_l, s0_r, s1_r)
        _flush_bin(ring, mask, base, 1.0, 1.0, bin_, s0_l, s1_l, s0_r, s1_r)
        y = end
        left, _ = _knot_output(ring, base)
        base = (base + KNOTS_PER_SAMPLE) & KNOT_MASK
        if s >= warm:
            total += left
            total2 += left * left
            n += 1
        s += 1
    if n == 0:
        return math.nan
    mean = total / n
    return math.sqrt(max(total2 / n - mean * mean, 0.0))
