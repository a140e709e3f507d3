"""Measurements of rendered audio: how clean a pitched note is, its mono fundamental, limiting.

Every function here reads only audio (never a kernel's state), so tests and benchmarks that
use them judge the instrument against the note it should play, not against itself.
"""

from __future__ import annotations

import math

import numpy as np

# Blackman-Harris (4 terms, -92 dB side lobes): its main lobe is ±4 bins wide.
_BH = (0.35875, 0.48829, 0.14128, 0.01168)
_BH_LOBE_BINS = 4.0


def _blackman_harris(n: int) -> np.ndarray:
    t = 2.0 * np.pi * np.arange(n) / n
    a0, a1, a2, a3 = _BH
    return a0 - a1 * np.cos(t) + a2 * np.cos(2 * t) - a3 * np.cos(3 * t)


def clean_analysis_seconds(f0: float, tolerance: float = 0.01) -> float:
    """Shortest stretch :func:`inharmonic_db` accepts for note ``f0`` Hz: at least 1 s, and
    long enough that the window's main lobe (±4 bins) fits inside ±``tolerance``·f0.

    Thread: any (pure).
    """
    return max(1.0, _BH_LOBE_BINS / (tolerance * f0))


def inharmonic_db(audio, samplerate: float, f0: float, tolerance: float = 0.01) -> float:
    """Energy more than ``tolerance``·f0 away from every harmonic of ``f0``, relative to the
    energy within it, in dB (−60: the inharmonic part is 60 dB below the harmonic part).

    Thread: any (allocates).

    The whole of ``audio`` is analysed (give it the steady part of a held note): mean removed,
    a Blackman-Harris window, one FFT. A bin counts as harmonic when it lies within
    ±``tolerance``·f0 of ``k``·f0 (k ≥ 1); the band around DC (k = 0) is left out of both sums.
    Aliases, noise, sub-harmonics and a wandering pitch all count as inharmonic.

    Parameters
    ----------
    audio : array, shape (n,) or (n, channels)
        For several channels the worst (highest) channel's figure is returned.
    samplerate, f0 : float
        Hz.
    tolerance : float
        Half-width of a harmonic's band, as a fraction of ``f0``.

    Raises
    ------
    ValueError
        When ``audio`` is shorter than :func:`clean_analysis_seconds` (the window's own
        spread would count as inharmonic), or silent.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    need = clean_analysis_seconds(f0, tolerance)
    if n < need * samplerate - 0.5:
        raise ValueError(f"inharmonic_db: {n / samplerate:.3f} s of audio; a note of {f0:.2f} Hz "
                         f"needs at least {need:.3f} s for a ±{tolerance:.1%} harmonic band")
    w = _blackman_harris(n)
    freqs = np.fft.rfftfreq(n, 1.0 / samplerate)
    k = np.round(freqs / f0)
    near = np.abs(freqs - k * f0) <= tolerance * f0
    harmonic = near & (k >= 1)
    other = ~near
    worst = -math.inf
    for c in range(x.shape[1]):
        y = x[:, c] - x[:, c].mean()
        power = np.abs(np.fft.rfft(y * w)) ** 2
        h = power[harmonic].sum()
        if not h > 0.0:
            raise ValueError("inharmonic_db: no energy at the harmonics (silent audio?)")
        worst = max(worst, float(10.0 * np.log10(max(power[other].sum(), 1e-300) / h)))
    return worst


def harmonic_levels_db(audio, samplerate: float, f0: float, tolerance: float = 0.01):
    """Level of each harmonic ``k``·f0 below Nyquist (power in its ±``tolerance``·f0 band), in
    dB relative to the strongest one. Thread: any (allocates).

    Parameters
    ----------
    audio : array, shape (n,)
        One channel (or a mono sum); at least :func:`clean_analysis_seconds` long.

    Returns
    -------
    ndarray, shape (harmonics,)
        Entry ``k - 1`` is harmonic ``k``; the strongest is 0 dB.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("harmonic_levels_db: give one channel or a mono sum")
    n = x.shape[0]
    x = x - x.mean()
    power = np.abs(np.fft.rfft(x * _blackman_harris(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / samplerate)
    count = int((0.5 * samplerate - tolerance * f0) // f0)
    levels = np.empty(max(count, 1))
    for k in range(1, count + 1):
        band = np.abs(freqs - k * f0) <= tolerance * f0
        levels[k - 1] = power[band].sum()
    levels = 10.0 * np.log10(np.maximum(levels, 1e-300) / max(levels.max(), 1e-300))
    return levels


def mono_fundamental_db(audio, samplerate: float, f0: float) -> float:
    """The fundamental of the mono sum (L + R) relative to its strongest partial, in dB.

    Thread: any (allocates). 0 dB: the fundamental is the strongest partial; −74 dB: the
    two channels cancel it and the note sounds an octave (or more) up in mono.

    Parameters
    ----------
    audio : array, shape (n, 2)
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError("mono_fundamental_db: stereo audio of shape (n, 2) expected")
    return float(harmonic_levels_db(x[:, 0] + x[:, 1], samplerate, f0)[0])


def gain_reduction_db(limited, bypassed, latency: int = 0, frame: int = 64) -> float:
    """Largest gain reduction a limiter applied, measured from its output and its input.

    Thread: any (allocates).

    Both signals are cut into frames of ``frame`` samples (after moving ``limited`` back by
    the limiter's ``latency``); in each frame the reduction is the input's peak over the
    output's peak, in dB. Frames whose input peak is more than 40 dB below the loudest are
    skipped (a ratio of near-silences means nothing).

    Parameters
    ----------
    limited, bypassed : array, shape (n,) or (n, channels)
        The render with the limiter, and the same render with it bypassed.
    latency : int
        Samples by which ``limited`` lags ``bypassed``.

    Returns
    -------
    float
        dB, >= 0 (0: the limiter never acted).
    """
    a = np.abs(np.asarray(limited, dtype=np.float64))
    b = np.abs(np.asarray(bypassed, dtype=np.float64))
    if a.ndim == 2:
        a = a.max(axis=1)
    if b.ndim == 2:
        b = b.max(axis=1)
    a = a[latency:]
    n = min(len(a), len(b)) // frame * frame
    if n == 0:
        return 0.0
    pa = a[:n].reshape(-1, frame).max(axis=1)
    pb = b[:n].reshape(-1, frame).max(axis=1)
    loud = pb >= pb.max() * 0.01
    ratio = pb[loud] / np.maximum(pa[loud], 1e-30)
    return float(max(0.0, 20.0 * np.log10(ratio.max())))
