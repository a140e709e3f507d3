"""Measurements of rendered audio: f0, centroid, spike rate, loudness, how clean a note is,
its mono fundamental, limiting.

Everything here reads only the audio (never the kernel's own period or state), so the
library manifests, the sweep's ``features.csv`` and the tests that use these compare the
instrument with a target, not with itself. numpy/scipy only, plus ``pyloudnorm`` for
BS.1770 loudness (the only module importing it). Thread: any (pure functions).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import get_window

LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating block: shorter audio has no integrated loudness
SPIKE_LEVEL = 0.5  # a spike is a rise through this fraction of the peak level ...
SPIKE_REARM = 0.25  # ... after the signal fell below this fraction since the last one


def _mono(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=1) if x.ndim == 2 else x


def _peak(mag_db, k):
    """Quadratic interpolation of a spectral peak at bin k (log magnitude)."""
    a, b, c = mag_db[k - 1], mag_db[k], mag_db[k + 1]
    denom = a - 2 * b + c
    return k + (0.5 * (a - c) / denom if denom != 0 else 0.0)


def estimate_f0(x, samplerate, f_hint, harmonics=8, pad=8):
    """Estimate the fundamental of a periodic signal near ``f_hint`` Hz.

    Blackman-Harris window, zero-padded FFT, quadratic interpolation of each harmonic's
    log-magnitude peak (searched within ±3 % of ``k·f_hint``); the estimate is the
    magnitude-weighted mean of ``f_k / k`` over the strongest harmonics below 0.45·fs.

    Parameters
    ----------
    x : array, shape (frames,) or (frames, channels)
    samplerate : float
        Hz.
    f_hint : float
        Hz: where to look for the fundamental.

    Returns
    -------
    float
        Hz; ``nan`` for silence or a signal with no harmonic near the hint.
    """
    x = _mono(x)
    x = x - x.mean()
    n = len(x)
    if n < 4 or not np.any(x):
        return math.nan
    w = get_window("blackmanharris", n)
    nfft = 1 << int(np.ceil(np.log2(n * pad)))
    spec = np.abs(np.fft.rfft(x * w, nfft))
    mag_db = 20 * np.log10(spec + 1e-300)
    bin_hz = samplerate / nfft
    estimates, weights = [], []
    for k in range(1, harmonics + 1):
        fk = k * f_hint
        if fk > 0.45 * samplerate:
            break
        lo = max(int((fk * 0.97) / bin_hz), 1)
        hi = min(int((fk * 1.03) / bin_hz) + 1, len(spec) - 2)
        if hi <= lo:
            continue
        kk = lo + int(np.argmax(spec[lo:hi]))
        estimates.append(_peak(mag_db, kk) * bin_hz / k)
        weights.append(spec[kk])
    if not weights:
        return math.nan
    weights = np.asarray(weights)
    keep = weights >= 0.1 * weights.max()  # only clearly present harmonics
    return float(np.average(np.asarray(estimates)[keep], weights=weights[keep]))


def cents(f, f_ref):
    """The interval from ``f_ref`` to ``f`` in cents (arrays welcome)."""
    return 1200.0 * np.log2(f / f_ref)


def inharmonic_ratio_db(x, samplerate, f0, tolerance=0.01):
    """Energy not within ±``tolerance``·f0 of a multiple of ``f0``, relative to the energy that
    is, in dB (negative: inharmonic energy is that far below the harmonic energy).

    ``nan`` when ``f0`` is not a positive number or the signal is silent.
    """
    x = _mono(x)
    x = x - x.mean()
    if not (f0 > 0) or len(x) < 4 or not np.any(x):
        return math.nan
    w = get_window("blackmanharris", len(x))
    power = np.abs(np.fft.rfft(x * w)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / samplerate)
    k = np.round(freqs / f0)
    harmonic = np.abs(freqs - k * f0) <= tolerance * f0
    inharmonic = power[~harmonic].sum()
    if inharmonic == 0 or power[harmonic].sum() == 0:
        return math.nan
    return float(10 * np.log10(inharmonic / power[harmonic].sum()))


def spectral_centroid(x, samplerate) -> float:
    """The power-weighted mean frequency of the (Hann-windowed) spectrum, Hz (DC excluded).

    ``nan`` for silence.
    """
    x = _mono(x)
    x = x - x.mean()
    if len(x) < 4:
        return math.nan
    power = np.abs(np.fft.rfft(x * get_window("hann", len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / samplerate)
    total = power[1:].sum()
    return float((freqs[1:] * power[1:]).sum() / total) if total > 0 else math.nan


def spike_rate(x, samplerate) -> float:
    """Spikes per second counted in the audio.

    A spike is a rise through ``SPIKE_LEVEL`` of the signal's peak (positive) level after
    the signal has fallen below ``SPIKE_REARM`` of it since the previous spike. For a
    periodic note with one spike per period this is f0; for bursts it counts the spikes of
    each burst. ``nan`` for silence.
    """
    x = _mono(x)
    x = x - np.median(x)
    top = float(x.max()) if len(x) else 0.0
    if top <= 0 or len(x) < 2:
        return math.nan
    above = x >= SPIKE_LEVEL * top
    below = x < SPIKE_REARM * top
    # Armed after a sample below the re-arm level; a spike fires at the first sample above.
    count = 0
    armed = not above[0]
    for i in np.flatnonzero(above | below):
        if below[i]:
            armed = True
        elif armed:
            count += 1
            armed = False
    return count * samplerate / len(x)


def peak_dbfs(x) -> float:
    """The largest absolute sample in dBFS (``-inf`` for silence)."""
    peak = float(np.max(np.abs(x))) if np.size(x) else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def loudness_lufs(x, samplerate) -> float:
    """Integrated loudness (ITU-R BS.1770-4, K-weighted, gated), LUFS, via ``pyloudnorm``.

    Stereo ``x`` (frames, 2) is measured as two channels of weight 1. ``nan`` for audio
    shorter than one 0.4 s gating block, and ``-inf`` when every block is gated (silence).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < int(math.ceil(LOUDNESS_BLOCK_S * samplerate)) + 1:
        return math.nan
    import pyloudnorm

    return float(pyloudnorm.Meter(int(samplerate)).integrated_loudness(x))


def spectrogram_thumb(x, samplerate, n_freq=48, n_time=64, f_max=12000.0,
                      floor_db=-90.0, frames=None) -> np.ndarray:
    """A small spectrogram for contact sheets: float32 dB (re full scale), shape (n_freq, n_time).

    Hann-windowed frames spread evenly over ``x`` (zero-padded to ``frames`` samples when
    given, so thumbnails of different lengths share a time axis); frequency bins averaged
    into ``n_freq`` linear bands from 0 to ``min(f_max, samplerate / 2)``; values clipped at
    ``floor_db``. Row 0 is the lowest band.
    """
    x = _mono(x)
    if frames is not None and len(x) < frames:
        x = np.pad(x, (0, frames - len(x)))
    out = np.full((n_freq, n_time), floor_db, dtype=np.float32)
    n = len(x)
    if n < 64:
        return out
    frame = min(2048, 1 << int(np.log2(max(n // 4, 64))))
    window = get_window("hann", frame)
    starts = np.linspace(0, n - frame, n_time).astype(int) if n > frame else np.zeros(n_time, int)
    freqs = np.fft.rfftfreq(frame, 1.0 / samplerate)
    top = min(f_max, samplerate / 2)
    band = np.minimum((freqs / top * n_freq).astype(int), n_freq)  # n_freq: above the top
    counts = np.bincount(band, minlength=n_freq + 1)[:n_freq]
    scale = 2.0 / window.sum()
    for t, s in enumerate(starts):
        seg = x[s:s + frame]
        if len(seg) < frame:
            seg = np.pad(seg, (0, frame - len(seg)))
        power = (np.abs(np.fft.rfft(seg * window)) * scale) ** 2
        sums = np.bincount(band, weights=power, minlength=n_freq + 1)[:n_freq]
        mean = np.divide(sums, counts, out=np.zeros(n_freq), where=counts > 0)
        out[:, t] = np.maximum(10 * np.log10(mean + 1e-30), floor_db)
    return out


# -- how clean a pitched note is (issue "Clean sound") -----------------------------------
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
