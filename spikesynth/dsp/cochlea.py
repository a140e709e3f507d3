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
   ``r**c`` (``c`` = ``compression``, 1 = linear), and a low-pass of two cascaded one-pole
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
``coeffs``: float64 ``(channels, N_COEFFS)``: per section ``b0, b1, b2, a1, a2`` (columns
``5 s .. 5 s + 4``), then :data:`C_IHC_ALPHA` (one-pole coefficient) and :data:`C_GAIN`.
``state``: float64 ``(channels, N_STATE)``: two filter states per section, then the two
hair-cell low-pass states. ``lif_states``: float64 ``(channels, LIF_N_STATE)``.
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

SECTIONS = 4  # biquads per gammatone channel (4th-order gammatone = 4 pole pairs)
SECTION_COEFFS = 5  # b0, b1, b2, a1, a2
C_IHC_ALPHA = SECTIONS * SECTION_COEFFS  # hair-cell low-pass: y += alpha (x - y), per stage
C_GAIN = C_IHC_ALPHA + 1  # drive per unit of compressed hair-cell output
N_COEFFS = C_GAIN + 1

S_IHC1 = 2 * SECTIONS  # first and second hair-cell low-pass stage
S_IHC2 = S_IHC1 + 1
N_STATE = S_IHC2 + 1

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

    Thread: any (no allocation). For tests and pictures of the basilar-membrane motion.

    Parameters
    ----------
    x : ndarray, shape (n,), float64
    coeffs : ndarray, shape (channels, N_COEFFS), float64
    state : ndarray, shape (channels, N_STATE), float64
        Updated in place (only the filter slots).
    out : ndarray, shape (channels, >= n), float64
    """
    channels = coeffs.shape[0]
    n = x.shape[0]
    for ch in range(channels):
        for s in range(SECTIONS):
            c = s * SECTION_COEFFS
            b0 = coeffs[ch, c]
            b1 = coeffs[ch, c + 1]
            b2 = coeffs[ch, c + 2]
            a1 = coeffs[ch, c + 3]
            a2 = coeffs[ch, c + 4]
            z1 = state[ch, 2 * s]
            z2 = state[ch, 2 * s + 1]
            for k in range(n):
                u = x[k] if s == 0 else out[ch, k]
                y = b0 * u + z1
                z1 = b1 * u - a1 * y + z2
                z2 = b2 * u - a2 * y
                out[ch, k] = y
            state[ch, 2 * s] = z1
            state[ch, 2 * s + 1] = z2


@njit(cache=True, nogil=True)
def cochlea_run(x, coeffs, state, compression, lif_coeffs, lif_states, surf_decay, surf_jump,
                surf_state, hop, clock, raster, cont_frames, spike_frames):
    """Run the whole ear over one block of input.

    Thread: audio (or any; no allocation, no Python objects).

    Parameters
    ----------
    x : ndarray, shape (n,), float64
        Mono input block, full scale = 1.
    coeffs : ndarray, shape (channels, N_COEFFS), float64
        Filter sections, hair-cell low-pass coefficient and drive gain per channel.
    state : ndarray, shape (channels, N_STATE), float64
        Filter and hair-cell states, updated in place.
    compression : float
        Hair-cell power-law exponent (1 = linear).
    lif_coeffs : ndarray, shape (LIF_N_COEFFS,), float64
        :func:`spikesynth.dsp.lif.prepare_lif` with ``dt = 1/samplerate`` (seconds).
    lif_states : ndarray, shape (channels, LIF_N_STATE), float64
        One neuron per channel, updated in place.
    surf_decay : ndarray, shape (n_tau,), float64
        ``exp(-1/(tau samplerate))`` per surface time constant.
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

    Returns
    -------
    int
        Number of frames written (frames that ended in this block).
    """
    channels = coeffs.shape[0]
    n = x.shape[0]
    n_tau = surf_decay.shape[0]
    first = hop - 1 - (clock[0] % hop)  # local index of the first frame end in this block
    n_frames = 0 if first >= n else (n - 1 - first) // hop + 1
    dt = lif_coeffs[LIF_DT]
    decay = lif_coeffs[LIF_DECAY]
    v_th = lif_coeffs[LIF_V_TH]
    v_reset = lif_coeffs[LIF_V_RESET]
    tau = lif_coeffs[LIF_TAU]
    inv_tau = lif_coeffs[LIF_INV_TAU]
    t_ref = lif_coeffs[LIF_T_REF]
    exact = lif_coeffs[LIF_METHOD] != 0.0
    inv_dt = 1.0 / dt
    linear = compression == 1.0
    for ch in range(channels):
        b00 = coeffs[ch, 0]
        b01 = coeffs[ch, 1]
        b02 = coeffs[ch, 2]
        a01 = coeffs[ch, 3]
        a02 = coeffs[ch, 4]
        b10 = coeffs[ch, 5]
        b11 = coeffs[ch, 6]
        b12 = coeffs[ch, 7]
        a11 = coeffs[ch, 8]
        a12 = coeffs[ch, 9]
        b20 = coeffs[ch, 10]
        b21 = coeffs[ch, 11]
        b22 = coeffs[ch, 12]
        a21 = coeffs[ch, 13]
        a22 = coeffs[ch, 14]
        b30 = coeffs[ch, 15]
        b31 = coeffs[ch, 16]
        b32 = coeffs[ch, 17]
        a31 = coeffs[ch, 18]
        a32 = coeffs[ch, 19]
        alpha = coeffs[ch, C_IHC_ALPHA]
        gain = coeffs[ch, C_GAIN]
        z01 = state[ch, 0]
        z02 = state[ch, 1]
        z11 = state[ch, 2]
        z12 = state[ch, 3]
        z21 = state[ch, 4]
        z22 = state[ch, 5]
        z31 = state[ch, 6]
        z32 = state[ch, 7]
        lp1 = state[ch, S_IHC1]
        lp2 = state[ch, S_IHC2]
        v = lif_states[ch, LIF_V]
        ref = lif_states[ch, LIF_REF]
        offset = lif_states[ch, LIF_SPIKE_OFFSET]
        frame = 0
        next_frame = first
        for k in range(n):
            u = x[k]
            y = b00 * u + z01
            z01 = b01 * u - a01 * y + z02
            z02 = b02 * u - a02 * y
            u = y
            y = b10 * u + z11
            z11 = b11 * u - a11 * y + z12
            z12 = b12 * u - a12 * y
            u = y
            y = b20 * u + z21
            z21 = b21 * u - a21 * y + z22
            z22 = b22 * u - a22 * y
            u = y
            y = b30 * u + z31
            z31 = b31 * u - a31 * y + z32
            z32 = b32 * u - a32 * y
            r = 0.0
            if y > 0.0:
                r = y if linear else y**compression
            lp1 += alpha * (r - lp1)
            lp2 += alpha * (lp1 - lp2)
            drive = gain * lp2
            v, ref, offset, spiked = lif_scalar_step(v, ref, offset, drive, dt, decay, v_th,
                                                     v_reset, tau, inv_tau, t_ref, exact)
            frac = 0.0
            if spiked:
                frac = offset * inv_dt
            raster[ch, k] = frac
            for t in range(n_tau):
                kt = surf_decay[t]
                sc = surf_state[t, ch, SURF_CONTINUOUS]
                surf_state[t, ch, SURF_CONTINUOUS] = drive + (sc - drive) * kt
                ss = surf_state[t, ch, SURF_SPIKES] * kt
                if spiked:
                    # The impulse at fraction f of the sample has decayed over the rest of it.
                    ss += surf_jump[t] * kt ** (1.0 - frac)
                surf_state[t, ch, SURF_SPIKES] = ss
            if k == next_frame:
                for t in range(n_tau):
                    cont_frames[t, ch, frame] = surf_state[t, ch, SURF_CONTINUOUS]
                    spike_frames[t, ch, frame] = surf_state[t, ch, SURF_SPIKES]
                frame += 1
                next_frame += hop
        state[ch, 0] = z01
        state[ch, 1] = z02
        state[ch, 2] = z11
        state[ch, 3] = z12
        state[ch, 4] = z21
        state[ch, 5] = z22
        state[ch, 6] = z31
        state[ch, 7] = z32
        state[ch, S_IHC1] = lp1
        state[ch, S_IHC2] = lp2
        lif_states[ch, LIF_V] = v
        lif_states[ch, LIF_REF] = ref
        lif_states[ch, LIF_SPIKE_OFFSET] = offset
    clock[0] += n
    return n_frames


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
