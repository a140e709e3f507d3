"""The cochlea front end: gammatone filterbank → inner hair cell → one LIF neuron per channel.

Per-sample ``@njit`` kernels over preallocated arrays (the wrapper, :mod:`spikesynth.ear`,
designs the coefficients and allocates). Time inside the kernels is in samples; the LIF
coefficients are prepared with ``dt = 1/samplerate`` seconds.

The chain, per channel and per sample
-------------------------------------
1. **Gammatone filter** (basilar membrane place ``cf``). The 4th-order IIR gammatone of
   ``scipy.signal.gammatone(cf, 'iir', fs=...)`` (Hohmann / Slaney style, bandwidth
   ``1.019 ERB(cf)``, unit gain at ``cf``), run as a cascade of :data:`SECTIONS` biquads
   (transposed direct form II). The wrapper factorises scipy's ``(b, a)``: the denominator
   is the 4th power of one pole pair's quadratic, the numerator has four real zeros.
2. **Inner hair cell**: half-wave rectification ``r = max(y, 0)``, power-law compression
   ``r**c`` (``c`` = ``compression``, 1 = linear; :func:`spikesynth.dsp.powlaw.pow_positive`,
   within a few ulp of ``pow``), and a low-pass of two cascaded one-pole
   stages at ``ihc_cutoff`` (the loss of phase locking at high frequencies).
3. **Drive**: ``i = gain * ihc`` (the wrapper chooses ``gain`` from a threshold level).
4. **LIF neuron** (:func:`spikesynth.dsp.lif.lif_scalar_step`, exact method: the threshold
   crossing is placed inside the sample).
5. **Time surfaces** for each time constant ``tau`` (tasks 4.1 and 4.2 of the tutorial):
   the *continuous* surface is the leaky integrator of the drive,
   ``s <- i + (s - i) exp(-1/tau)`` (a step of drive gives ``1 - exp(-t/tau)``); the
   *spike* surface is the leaky integrator of the spike train (Dirac impulses), each spike
   adding ``1/tau`` at its sub-sample time, so it reads as a firing rate in spikes/s.
   Both are sampled once per frame (every ``hop`` samples, at the frame's last sample).

Layout
------
Channel-minor, so that the per-sample filter and hair-cell loops run over all channels
with contiguous rows (vector instructions across channels):
``coeffs``: float64 ``(N_COEFFS, channels)``: per section ``b0, b1, b2, a1, a2`` (rows
``5 s .. 5 s + 4``), then :data:`C_IHC_ALPHA` (one-pole coefficient) and :data:`C_GAIN`.
``state``: float64 ``(N_STATE, channels)``: two filter states per section, then the two
hair-cell low-pass states. ``lif_states``: float64 ``(channels, LIF_N_STATE)``.
``work``: float64 ``(max_block, channels)`` and ``positions``: int64
``(max_block * channels,)``: scratch of :func:`cochlea_run`.
``surf_state``: float64 ``(n_tau, channels, 2)`` (continuous, spikes).
``clock``: int64 ``(1,)``, samples processed since the last reset (frame phase).

Everything is carried in these arrays, so any block size gives the same output.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .lif import (
    LIF_DECAY,
    LIF_DT,
    LIF_INV_TAU,
    LIF_METHOD,
    LIF_REF,
    LIF_SPIKE_OFFSET,
    LIF_T_REF,
    LIF_TAU,
    LIF_V,
    LIF_V_RESET,
    LIF_V_TH,
    lif_scalar_step,
)
from .powlaw import pow_positive

SECTIONS = 4  # biquads per gammatone channel (4th-order gammatone = 4 pole pairs)
SECTION_COEFFS = 5  # b0, b1, b2, a1, a2
C_IHC_ALPHA = SECTIONS * SECTION_COEFFS  # hair-cell low-pass: y += alpha (x - y), per stage
C_GAIN = C_IHC_ALPHA + 1  # drive per unit of compressed hair-cell output
N_COEFFS = C_GAIN + 1

S_IHC1 = 2 * SECTIONS  # first and second hair-cell low-pass stage
S_IHC2 = S_IHC1 + 1
N_STATE = S_IHC2 + 1

TINY = 2.2250738585072014e-308  # smallest normal float64

SURF_CONTINUOUS = 0
SURF_SPIKES = 1


@njit(cache=True, nogil=True)
def cochlea_reset(state, lif_states, surf_state, clock):
    """Clear every state array (filters, hair cells, neurons at rest, surfaces, frame clock).

    Thread: any (no allocation).
    """
    state[:, :] = 0.0
    lif_states[:, LIF_V] = 0.0
    lif_states[:, LIF_REF] = 0.0
    lif_states[:, LIF_SPIKE_OFFSET] = 0.0
    surf_state[:, :, :] = 0.0
    clock[0] = 0


@njit(cache=True, nogil=True)
def filterbank_run(x, coeffs, state, out):
    """Run the gammatone cascades only: ``out[ch, n]`` = channel ``ch``'s filtered ``x[n]``.

    Thread: any (no allocation). For tests, pictures of the basilar-membrane motion and the
    vocoder's bank on the voices.

    Parameters
    ----------
    x : ndarray, shape (n,), float64
    coeffs : ndarray, shape (N_COEFFS, channels), float64
    state : ndarray, shape (N_STATE, channels), float64
        Updated in place (only the filter slots).
    out : ndarray, shape (channels, >= n), float64
    """
    channels = coeffs.shape[1]
    n = x.shape[0]
    for ch in range(channels):
        for s in range(SECTIONS):
            c = s * SECTION_COEFFS
            b0 = coeffs[c, ch]
            b1 = coeffs[c + 1, ch]
            b2 = coeffs[c + 2, ch]
            a1 = coeffs[c + 3, ch]
            a2 = coeffs[c + 4, ch]
            z1 = state[2 * s, ch]
            z2 = state[2 * s + 1, ch]
            for k in range(n):
                u = x[k] if s == 0 else out[ch, k]
                y = b0 * u + z1
                z1 = b1 * u - a1 * y + z2
                z2 = b2 * u - a2 * y
                out[ch, k] = y
            state[2 * s, ch] = z1
            state[2 * s + 1, ch] = z2


@njit(cache=True, nogil=True)
def bank_section(x, section, coeffs, state, work):
    """One biquad section of every channel over a block: ``work[k, ch]`` in, filtered out
    (section 0 reads ``x[k]`` instead).

    Thread: any (no allocation). The channel is the inner loop over contiguous rows, so the
    compiler runs several channels per vector instruction (each channel's arithmetic is the
    scalar one, in the same order: the same numbers). One section per pass keeps the rows a
    loop touches few enough for the compiler's overlap checks.
    """
    channels = coeffs.shape[1]
    c = section * SECTION_COEFFS
    b0 = coeffs[c]
    b1 = coeffs[c + 1]
    b2 = coeffs[c + 2]
    a1 = coeffs[c + 3]
    a2 = coeffs[c + 4]
    s1 = state[2 * section]
    s2 = state[2 * section + 1]
    for k in range(x.shape[0]):
        row = work[k]
        u0 = x[k]
        for ch in range(channels):
            u = u0 if section == 0 else row[ch]
            z1 = s1[ch]
            z2 = s2[ch]
            y = b0[ch] * u + z1
            s1[ch] = b1[ch] * u - a1[ch] * y + z2
            s2[ch] = b2[ch] * u - a2[ch] * y
            row[ch] = y


@njit(cache=True, nogil=True)
def bank_rectify(x, coeffs, state, work):
    """Gammatone cascades and half-wave rectification: ``work[k, ch] = max(y, 0)``.

    Thread: any (no allocation).

    Parameters
    ----------
    x : ndarray, shape (n,), float64
    coeffs : ndarray, shape (N_COEFFS, channels), float64
    state : ndarray, shape (N_STATE, channels), float64
        Filter slots updated in place.
    work : ndarray, shape (>= n, channels), float64
    """
    for section in range(SECTIONS):
        bank_section(x, section, coeffs, state, work)
    channels = coeffs.shape[1]
    for k in range(x.shape[0]):
        row = work[k]
        for ch in range(channels):
            y = row[ch]
            row[ch] = y if y > 0.0 else 0.0


@njit(cache=True, nogil=True, error_model="numpy")  # no division checks: vectorises
def compress(work, n, compression):
    """``work[k, ch] <- work[k, ch] ** compression`` over ``work[:n]`` (entries >= 0).

    Thread: any (no allocation). :func:`spikesynth.dsp.powlaw.pow_positive` (within a few
    ulp of ``pow``, vectorised) for normal inputs, zero stays zero; a subnormal input (the
    lab's ear decaying into silence, without the listening path's flush) takes ``pow``, and
    a block holding one runs entry by entry (the same value for every other entry, so any
    block size gives the same output).
    """
    channels = work.shape[1]
    subnormal = 0
    for k in range(n):
        row = work[k]
        for ch in range(channels):
            y = row[ch]
            subnormal |= 1 if (y > 0.0 and y < TINY) else 0
    if subnormal:  # entry by entry, each the same value as in a block without one
        for k in range(n):
            row = work[k]
            for ch in range(channels):
                y = row[ch]
                if y >= TINY:
                    row[ch] = pow_positive(y, compression)
                elif y > 0.0:
                    row[ch] = y ** compression
        return
    for k in range(n):
        row = work[k]
        for ch in range(channels):
            y = row[ch]
            normal = y >= TINY
            p = pow_positive(y if normal else 1.0, compression)
            row[ch] = p if normal else 0.0


@njit(cache=True, nogil=True)
def hair_cell_drive(work, n, coeffs, state):
    """The hair cells' two one-pole low-passes and the drive gain, in place over ``work[:n]``.

    Thread: any (no allocation). ``work[k, ch]``: compressed hair-cell input in, neuron drive
    ``gain * lp2`` out; ``state[S_IHC1]``, ``state[S_IHC2]`` updated. Channel inner, as in
    :func:`bank_rectify`.
    """
    channels = coeffs.shape[1]
    for k in range(n):
        row = work[k]
        for ch in range(channels):
            alpha = coeffs[C_IHC_ALPHA, ch]
            lp1 = state[S_IHC1, ch]
            lp2 = state[S_IHC2, ch]
            lp1 += alpha * (row[ch] - lp1)
            lp2 += alpha * (lp1 - lp2)
            state[S_IHC1, ch] = lp1
            state[S_IHC2, ch] = lp2
            row[ch] = coeffs[C_GAIN, ch] * lp2


@njit(cache=True, nogil=True)
def cochlea_run(x, coeffs, state, compression, lif_coeffs, lif_states, surf_decay, surf_jump,
                surf_state, hop, clock, raster, cont_frames, spike_frames, work, positions):
    """Run the whole ear over one block of input.

    Thread: audio (or any; no allocation, no Python objects).

    In stages over the block: :func:`bank_rectify`, :func:`compress`,
    :func:`hair_cell_drive`, :func:`neurons_run` (all channels at each sample), then
    :func:`surfaces_run` (each channel over the block; skipped when ``n_tau`` is 0).

    Parameters
    ----------
    x : ndarray, shape (n,), float64
        Mono input block, full scale = 1.
    coeffs : ndarray, shape (N_COEFFS, channels), float64
        Filter sections, hair-cell low-pass coefficient and drive gain per channel.
    state : ndarray, shape (N_STATE, channels), float64
        Filter and hair-cell states, updated in place.
    compression : float
        Hair-cell power-law exponent (1 = linear).
    lif_coeffs : ndarray, shape (LIF_N_COEFFS,), float64
        :func:`spikesynth.dsp.lif.prepare_lif` with ``dt = 1/samplerate`` (seconds).
    lif_states : ndarray, shape (channels, LIF_N_STATE), float64
        One neuron per channel, updated in place.
    surf_decay : ndarray, shape (n_tau,), float64
        ``exp(-1/(tau samplerate))`` per surface time constant (``n_tau`` may be 0: no
        surfaces).
    surf_jump : ndarray, shape (n_tau,), float64
        ``1/tau`` (s⁻¹): what one spike adds to the spike surface.
    surf_state : ndarray, shape (n_tau, channels, 2), float64
        Surfaces (continuous, spikes), updated in place.
    hop : int
        Samples per frame, >= 1.
    clock : ndarray, shape (1,), int64
        Samples processed so far; advanced by ``n``.
    raster : ndarray, shape (channels, >= n), float64
        Receives, per sample ``k``, 0 (no spike) or the spike's time inside the sample as a
        fraction in (0, 1]: the spike happened ``k + fraction`` samples after the block start.
    cont_frames, spike_frames : ndarray, shape (n_tau, channels, >= frames), float64
        Receive the surfaces at the last sample of each frame that ends in this block.
    work : ndarray, shape (>= n, channels), float64
        Scratch (the drive per sample and channel, after the call).
    positions : ndarray, shape (>= n * channels,), int64
        Scratch: the spike flags of :func:`neurons_run`.

    Returns
    -------
    int
        Number of frames written (frames that ended in this block).
    """
    n = x.shape[0]
    n_tau = surf_decay.shape[0]
    first = hop - 1 - (clock[0] % hop)  # local index of the first frame end in this block
    n_frames = 0 if first >= n else (n - 1 - first) // hop + 1
    bank_rectify(x, coeffs, state, work)
    if compression != 1.0:
        compress(work, n, compression)
    hair_cell_drive(work, n, coeffs, state)
    neurons_run(work, n, lif_coeffs, lif_states, raster, positions)
    if n_tau > 0:
        surfaces_run(work, n, raster, positions, surf_decay, surf_jump, surf_state, first, hop,
                     cont_frames, spike_frames)
    clock[0] += n
    return n_frames


@njit(cache=True, nogil=True)
def neurons_run(work, n, lif_coeffs, lif_states, raster, spiked):
    """Each channel's LIF neuron over the block, driven by ``work[k, ch]``.

    Thread: any (no allocation). Writes ``raster[ch, k]`` (0, or the spike's fraction of the
    sample) and ``spiked[k * channels + ch]`` (1 where the neuron spiked, else 0). The
    channel is the inner loop: the neurons' updates are independent, so the processor
    overlaps them (one neuron's sample-to-sample chain is latency bound).
    """
    channels = work.shape[1]
    dt = lif_coeffs[LIF_DT]
    decay = lif_coeffs[LIF_DECAY]
    v_th = lif_coeffs[LIF_V_TH]
    v_reset = lif_coeffs[LIF_V_RESET]
    tau = lif_coeffs[LIF_TAU]
    inv_tau = lif_coeffs[LIF_INV_TAU]
    t_ref = lif_coeffs[LIF_T_REF]
    exact = lif_coeffs[LIF_METHOD] != 0.0
    inv_dt = 1.0 / dt
    for k in range(n):
        row = work[k]
        for ch in range(channels):
            v, ref, offset, fired = lif_scalar_step(
                lif_states[ch, LIF_V], lif_states[ch, LIF_REF],
                lif_states[ch, LIF_SPIKE_OFFSET], row[ch], dt, decay, v_th, v_reset, tau,
                inv_tau, t_ref, exact)
            lif_states[ch, LIF_V] = v
            lif_states[ch, LIF_REF] = ref
            lif_states[ch, LIF_SPIKE_OFFSET] = offset
            raster[ch, k] = offset * inv_dt if fired else 0.0
            spiked[k * channels + ch] = 1 if fired else 0


@njit(cache=True, nogil=True)
def surfaces_run(work, n, raster, spiked, surf_decay, surf_jump, surf_state, first, hop,
                 cont_frames, spike_frames):
    """The time surfaces of each channel over the block, and their frames.

    Thread: any (no allocation). ``work[k, ch]``: the drive; ``raster``, ``spiked``: as
    :func:`neurons_run` wrote them; ``first``: local index of the first frame end.
    """
    channels = work.shape[1]
    n_tau = surf_decay.shape[0]
    for ch in range(channels):
        for t in range(n_tau):
            kt = surf_decay[t]
            jump = surf_jump[t]
            sc = surf_state[t, ch, SURF_CONTINUOUS]
            ss = surf_state[t, ch, SURF_SPIKES]
            frame = 0
            next_frame = first
            for k in range(n):
                drive = work[k, ch]
                sc = drive + (sc - drive) * kt
                ss *= kt
                if spiked[k * channels + ch] != 0:
                    # The impulse at fraction f of the sample has decayed over the rest of it.
                    ss += jump * kt ** (1.0 - raster[ch, k])
                if k == next_frame:
                    cont_frames[t, ch, frame] = sc
                    spike_frames[t, ch, frame] = ss
                    frame += 1
                    next_frame += hop
            surf_state[t, ch, SURF_CONTINUOUS] = sc
            surf_state[t, ch, SURF_SPIKES] = ss


@njit(cache=True, nogil=True)
def leaky_surface_run(drive, decay, s0, out):
    """The continuous-surface update on its own: ``s <- i + (s - i) decay`` per sample.

    Thread: any (no allocation). Returns the final ``s``; ``out[k]`` is ``s`` after sample k.
    """
    s = s0
    for k in range(drive.shape[0]):
        s = drive[k] + (s - drive[k]) * decay
        out[k] = s
    return s


def ihc_mean_factor(compression: float) -> float:
    """Mean over a cycle of ``max(sin, 0)**c``: ``Γ((c+1)/2) / (2 √π Γ(c/2 + 1))``.

    Thread: any (pure). ``c = 1`` gives ``1/π``, the mean of a half-wave rectified sine.
    """
    c = float(compression)
    return math.gamma((c + 1.0) / 2.0) / (2.0 * math.sqrt(math.pi) * math.gamma(c / 2.0 + 1.0))


def sections_from_ba(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Factorise a gammatone ``(b, a)`` from ``scipy.signal.gammatone`` into 4 biquads.

    Thread: main (prepare time; allocates).

    The denominator is ``(1 + c1 z⁻¹ + c2 z⁻²)**4`` (one pole pair, four times): ``c1 =
    a[1]/4`` and ``c2 = (a[2] - 6 c1²)/4`` read it off without root finding (repeated roots
    are ill-conditioned). The numerator's four zeros are distinct and real; each section gets
    one, with the gain ``b[0]**(1/4)``. The product of the sections is checked against
    ``(b, a)``.

    Returns
    -------
    ndarray, shape (SECTIONS, SECTION_COEFFS), float64
        ``b0, b1, b2, a1, a2`` per section.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64) / a[0]
    a = a / a[0]
    if b.shape != (5,) or a.shape != (9,):
        raise ValueError(f"expected a 4th-order gammatone (5, 9 coefficients), got {b.shape}, "
                         f"{a.shape}")
    c1 = a[1] / 4.0
    c2 = (a[2] - 6.0 * c1 * c1) / 4.0
    den = np.polynomial.polynomial.polypow([1.0, c1, c2], SECTIONS)
    if not np.allclose(den, a, rtol=0.0, atol=1e-9 * np.max(np.abs(a))):
        raise ValueError("gammatone denominator is not a 4th power of one pole pair")
    zeros = np.roots(b)
    if np.max(np.abs(zeros.imag)) > 1e-9 * np.max(np.abs(zeros)):
        raise ValueError("gammatone numerator zeros are not real")
    zeros = np.sort(zeros.real)
    g = abs(b[0]) ** (1.0 / SECTIONS)
    sos = np.zeros((SECTIONS, SECTION_COEFFS))
    for s in range(SECTIONS):
        sos[s] = (g, -g * zeros[s], 0.0, c1, c2)
    sos[0, :3] *= np.sign(b[0])
    num = np.array([1.0])
    for s in range(SECTIONS):
        num = np.polymul(num, sos[s, :2])
    if not np.allclose(num, b, rtol=0.0, atol=1e-9 * np.max(np.abs(b))):
        raise ValueError("gammatone numerator factorisation failed")
    return sos
