"""Independent measurements of rendered audio: f0 from the spectrum, inharmonic energy.

These read only the audio (never the kernel's own period), so tests and benchmarks that use
them compare the instrument with the 12-TET target, not with itself.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import get_window


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
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = x - x.mean()
    n = len(x)
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
    weights = np.asarray(weights)
    keep = weights >= 0.1 * weights.max()  # only clearly present harmonics
    return float(np.average(np.asarray(estimates)[keep], weights=weights[keep]))


def cents(f, f_ref):
    return 1200.0 * np.log2(f / f_ref)


def inharmonic_ratio_db(x, samplerate, f0, tolerance=0.01):
    """Energy not within ±``tolerance``·f0 of a multiple of ``f0``, relative to the energy that
    is, in dB (negative: inharmonic energy is that far below the harmonic energy)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = x - x.mean()
    w = get_window("blackmanharris", len(x))
    power = np.abs(np.fft.rfft(x * w)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / samplerate)
    k = np.round(freqs / f0)
    harmonic = np.abs(freqs - k * f0) <= tolerance * f0
    return float(10 * np.log10(power[~harmonic].sum() / power[harmonic].sum()))
