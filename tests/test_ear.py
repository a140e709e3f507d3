"""The spiking ear against theory: gammatone responses, place coding, phase locking, surfaces."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import gammatone, lfilter

from spikesynth import ear
from spikesynth.dsp import cochlea as K

SR = 48000


@pytest.fixture(scope="module")
def default_ear():
    return ear.Ear(SR, max_block=4096)


def tone(f, db, seconds, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return 10 ** (db / 20) * np.sin(2 * np.pi * f * t)


def test_erb_scale():
    assert ear.erb_hz(1000.0) == pytest.approx(24.7 * 5.37)
    cf = ear.centre_frequencies(64, 50.0, 8000.0)
    assert cf[0] == pytest.approx(50.0) and cf[-1] == pytest.approx(8000.0)
    steps = np.diff(ear.erb_rate(cf))
    assert np.allclose(steps, steps[0])  # evenly spaced in ERB-rate
    assert np.allclose(ear.erb_rate_to_hz(ear.erb_rate(cf)), cf)


def _channel_response(cf, n, x):
    e = ear.Ear(SR, channels=1, fmin_hz=cf, fmax_hz=8000.0)
    out = np.zeros((1, n))
    K.filterbank_run(x, e.coeffs, np.zeros((K.N_STATE, 1)), out)
    return out[0]


def test_cascade_matches_scipy_design():
    """The biquad cascade is scipy's design, more accurately than scipy's own (b, a) runs.

    Reference: scipy's numerator over the analytic denominator ``(1 - 2 r cos θ z⁻¹ +
    r² z⁻²)⁴`` with scipy's pole ``r = exp(-2π 1.019 ERB T)``, ``ERB = cf/9.26449 + 24.7``.
    The 8th-order direct form (lfilter, freqz of (b, a)) loses the 4-fold pole to rounding at
    low cf (its response is 100 % off at 50 Hz, 1 % at 440 Hz); the cascade stays within 1e-6.
    """
    n = 1 << 17
    impulse = np.zeros(n)
    impulse[0] = 1.0
    f = np.fft.rfftfreq(n, 1 / SR)
    z = np.exp(-2j * np.pi * f / SR)
    for cf in (50.0, 440.0, 2000.0, 7000.0):
        b, _ = gammatone(cf, "iir", fs=SR)
        r = np.exp(-2 * np.pi * 1.019 * (cf / 9.26449 + 24.7) / SR)
        den = (1 - 2 * r * np.cos(2 * np.pi * cf / SR) * z + r * r * z * z) ** 4
        exact = np.polyval(b[::-1], z) / den
        h = np.fft.rfft(_channel_response(cf, n, impulse))
        assert np.max(np.abs(h - exact)) < 1e-6, cf
    x = np.random.default_rng(1).standard_normal(4000)
    for cf in (2000.0, 7000.0):  # where the direct form is still accurate: the same output
        b, a = gammatone(cf, "iir", fs=SR)
        ref = lfilter(b, a, x)
        assert np.max(np.abs(_channel_response(cf, x.size, x) - ref)) < 1e-6 * np.abs(ref).max()


def test_gammatone_peak_and_erb(default_ear):
    """Measured from each channel's impulse response: peak within 2 % of cf, ERB within 10 %."""
    e = default_ear
    n = 1 << 15
    impulse = np.zeros(n)
    impulse[0] = 1.0
    h = np.zeros((e.channels, n))
    K.filterbank_run(impulse, e.coeffs, np.zeros((K.N_STATE, e.channels)), h)
    nfft = 1 << 18
    power = np.abs(np.fft.rfft(h, nfft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / SR)
    df = freqs[1]
    peak = freqs[np.argmax(power, axis=1)]
    erb = power.sum(axis=1) * df / power.max(axis=1)
    assert np.all(np.abs(peak - e.cf_hz) <= 0.02 * e.cf_hz), (peak / e.cf_hz).round(3)
    assert np.all(np.abs(erb / ear.erb_hz(e.cf_hz) - 1) <= 0.10), (erb / ear.erb_hz(e.cf_hz))
    # Unit gain at the centre (scipy normalises it): the tone level scale of threshold_dbfs.
    assert np.allclose(np.sqrt(power.max(axis=1)), 1.0, atol=0.02)


@pytest.mark.parametrize("f", [100.0, 250.0, 440.0, 1000.0, 2500.0, 6000.0])
def test_tone_spikes_most_within_one_erb(f):
    """Place code: 4 dB above the ear's threshold the most active channel is within 1 ERB.

    (Well above threshold, channels below ~500 Hz lock to 1 or 2 spikes per cycle and
    neighbours tie on rate: the place code of low tones is then in the timing, not the count.)
    """
    params = ear.EarParameters()
    r = ear.listen(tone(f, params.threshold_dbfs + 4, 0.4), SR)
    counts = r.spike_counts()
    best = int(np.argmax(counts))
    assert counts[best] > 20
    assert abs(r.cf_hz[best] - f) <= ear.erb_hz(f), (r.cf_hz[best], counts[best])


def test_phase_locking_at_200_hz():
    r = ear.listen(tone(200.0, -30, 0.5), SR)
    ch = int(np.argmin(np.abs(r.cf_hz - 200.0)))
    t = r.spike_times[(r.spike_channels == ch) & (r.spike_times > 0.05)]
    assert t.size > 20
    assert ear.vector_strength(t, 200.0) >= 0.5
    # And far above the hair cell's low-pass, timing no longer follows the tone.
    r = ear.listen(tone(6000.0, -30, 0.3), SR)
    ch = int(np.argmin(np.abs(r.cf_hz - 6000.0)))
    t = r.spike_times[(r.spike_channels == ch) & (r.spike_times > 0.05)]
    assert t.size > 20 and ear.vector_strength(t, 6000.0) < 0.3


def test_silence_and_faint_noise_give_no_spikes():
    assert ear.listen(np.zeros(SR // 4), SR).spike_times.size == 0
    faint = 10 ** (-100 / 20) * np.random.default_rng(0).standard_normal(SR // 4)
    r = ear.listen(faint, SR)
    assert r.spike_times.size == 0
    assert np.all(r.surface_spikes == 0.0)


def test_chirp_most_active_channel_rises():
    """A log sweep 150 Hz -> 6 kHz: the argmax channel over 100 ms windows never falls.

    (Windows of 0.44 octave, about 3 channels: with 50 ms windows the low channels' locked
    rates tie and the argmax can step back one channel at levels 5-10 dB above threshold.)"""
    seconds = 1.2
    f = np.geomspace(150.0, 6000.0, int(seconds * SR))
    x = 10 ** (-45 / 20) * np.sin(2 * np.pi * np.cumsum(f) / SR)
    r = ear.listen(x, SR)
    window = 0.1
    edges = np.arange(0.1, seconds + 1e-9, window)  # skip the onset
    best = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (r.spike_times >= lo) & (r.spike_times < hi)
        counts = np.bincount(r.spike_channels[sel], minlength=len(r.cf_hz))
        assert counts.max() > 0
        best.append(int(np.argmax(counts)))
    assert np.all(np.diff(best) >= 0), best
    assert r.cf_hz[best[-1]] > 8 * r.cf_hz[best[0]]


def test_surface_kernel_step_response():
    """The leaky integrator of a unit step is 1 - exp(-t/tau), exactly at the samples."""
    tau = 0.01
    decay = np.exp(-1 / (tau * SR))
    out = np.zeros(SR // 10)
    K.leaky_surface_run(np.ones(out.size), decay, 0.0, out)
    t = (np.arange(out.size) + 1) / SR
    assert np.allclose(out, 1 - np.exp(-t / tau), rtol=0, atol=1e-12)


def test_continuous_surface_of_a_tone_step():
    """End to end: a 4 kHz tone switched on; the drive settles in ~2 ms, the surface follows
    D (1 - exp(-t/tau)) with tau = 50 ms."""
    tau_ms = 50.0
    x = tone(4000.0, -30, 0.4)
    r = ear.listen(x, SR, tau_ms=tau_ms)
    ch = int(np.argmin(np.abs(r.cf_hz - 4000.0)))
    s = r.surface_continuous[ch]
    t = (np.arange(s.size) + 1) / r.frame_rate
    final = s[-1]
    expected = final * (1 - np.exp(-t / (tau_ms / 1000)))
    late = t > 0.01
    assert np.max(np.abs(s[late] - expected[late])) < 0.05 * final


def test_spike_surface_reads_as_rate():
    """The spike surface (spikes/s) of a steady tone averages to the measured firing rate."""
    r = ear.listen(tone(1000.0, -35, 1.0), SR, tau_ms=20.0)
    ch = int(np.argmax(r.spike_counts()))
    late = slice(int(0.3 * r.frame_rate), None)
    t = r.spike_times[(r.spike_channels == ch) & (r.spike_times > 0.3)]
    rate = t.size / 0.7
    assert r.surface_spikes[ch, late].mean() == pytest.approx(rate, rel=0.05)


def test_multiple_taus_shape_and_order():
    x = tone(500.0, -30, 0.2)
    r = ear.listen(x, SR, tau_ms=[2.0, 50.0])
    assert r.surface_continuous.shape == (2, 64, int(0.2 * r.frame_rate))
    assert r.surface_spikes.shape == r.surface_continuous.shape
    # A longer tau smooths more: less frame-to-frame variation.
    var = np.abs(np.diff(r.surface_spikes, axis=2)).mean(axis=(1, 2))
    assert var[1] < var[0]


def test_block_size_invariance():
    rng = np.random.default_rng(3)
    x = 0.05 * rng.standard_normal(SR // 5) + tone(300.0, -30, 0.2)
    results = [ear.listen(x, SR, tau_ms=[5.0, 20.0], block=b) for b in (1, 64, 1000)]
    ref = results[0]
    assert ref.spike_times.size > 100
    for r in results[1:]:
        assert np.array_equal(r.spike_times, ref.spike_times)
        assert np.array_equal(r.spike_channels, ref.spike_channels)
        assert np.array_equal(r.surface_continuous, ref.surface_continuous)
        assert np.array_equal(r.surface_spikes, ref.surface_spikes)


def test_streaming_ear_reset_and_bad_input():
    e = ear.Ear(SR, max_block=256)
    x = tone(1000.0, -20, 256 / SR)
    first = e.process(x).raster.copy()
    e.reset()
    assert np.array_equal(e.process(x).raster, first)
    with pytest.raises(ValueError, match="max_block"):
        e.process(np.zeros(257))
    for bad in ({"channels": 0}, {"fmax_hz": 30000.0}, {"compression": 0.0},
                {"reset": 2.0}, {"nope": 1}):
        with pytest.raises(ValueError, match="ear parameter|unknown"):
            ear.Ear(SR, **bad)
    with pytest.raises(ValueError, match="finite"):
        ear.listen(np.array([0.0, np.nan]), SR)
