"""Neural effects: the bundled ear patches through the engine, and `spikesynth process`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from spikesynth import ear_effects as X
from spikesynth import load_patch
from spikesynth.master import master_latency
from spikesynth.offline import Note, note_events

SR = 48000
PATCHES = Path(__file__).resolve().parent.parent / "patches"
CLI = [sys.executable, "-m", "spikesynth.cli"]


def spectrum(y, sr=SR, skip=0.2):
    seg = np.asarray(y[int(skip * sr):], dtype=np.float64)
    mag = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    return np.fft.rfftfreq(seg.size, 1 / sr), mag


def tone(f, db, seconds):
    t = np.arange(int(seconds * SR)) / SR
    return 10 ** (db / 20) * np.sin(2 * np.pi * f * t)


def test_resynthesis_of_440_hz_has_its_strongest_partial_there():
    r = X.process_signal(load_patch(PATCHES / "ear_resynth.yaml"), tone(440.0, -30, 0.7), SR)
    freqs, mag = spectrum(r.audio[:, 0])
    peak = freqs[np.argmax(mag)]
    assert abs(12 * np.log2(peak / 440.0)) < 1.0, peak
    assert np.all(np.isfinite(r.audio)) and np.max(np.abs(r.audio)) <= X.CEILING
    assert np.sqrt(np.mean(r.audio[SR // 5:] ** 2)) > 0.01


def test_resynthesis_is_silent_on_silence():
    r = X.process_signal(load_patch(PATCHES / "ear_resynth.yaml"), np.zeros(SR // 10), SR)
    assert np.max(np.abs(r.audio)) == 0.0


def test_vocoder_partials_sit_at_the_held_notes_harmonics():
    patch = load_patch(PATCHES / "ear_vocoder.yaml")
    x = 0.1 * np.random.default_rng(1).standard_normal(int(0.8 * SR))  # a breath of noise
    events = note_events([Note(57, 100, 0.0, 0.8)], SR)  # A3, 220 Hz
    r = X.process_signal(patch, x, SR, events)
    freqs, mag = spectrum(r.audio[:, 0])
    strongest = freqs[np.argsort(mag)[::-1][:8]]
    harmonic = strongest / 220.0
    assert np.all(np.abs(harmonic - np.round(harmonic)) < 0.02), strongest
    # No input, no output: the ear hears nothing, every band is closed.
    silent = X.process_signal(patch, np.zeros(SR // 5), SR, events)
    assert np.max(np.abs(silent.audio)) == 0.0
    # Dry/wet: dry only gives the input back (clipped at the ceiling), delayed by exactly
    # the master's look-ahead like the synth's own output, so the two mix aligned.
    dry = patch.replace(listen__dry=1.0, listen__wet=0.0)
    out = X.process_signal(dry, x, SR, events).audio[:, 0]
    lag = master_latency(SR)
    assert lag > 0 and not out[:lag].any()
    expected = np.clip(x, -X.CEILING, X.CEILING).astype(np.float32)
    assert np.allclose(out[lag:len(x)], expected[:len(x) - lag])


def test_process_cli(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(440.0, -30, 0.3), SR)
    out = tmp_path / "out.wav"
    r = subprocess.run([*CLI, "process", PATCHES / "ear_resynth.yaml", wav, "-o", out, "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    y, sr = sf.read(out)
    assert sr == SR and y.shape[1] == 2 and np.max(np.abs(y)) > 0.01
    r = subprocess.run([*CLI, "process", PATCHES / "ear_vocoder.yaml", wav, "-o", out],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "--note" in r.stderr and len(r.stderr.splitlines()) == 1
    r = subprocess.run([*CLI, "process", PATCHES / "default.yaml", wav, "-o", out],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "does not listen" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_render_of_a_listening_patch_ends_at_silence(tmp_path):
    # Its channel voices never end; offline it hears silence, so the output says when it is
    # over (it ran to the 60 s limit before), and render says where such a patch belongs.
    out = tmp_path / "r.wav"
    r = subprocess.run([*CLI, "render", PATCHES / "ear_resynth.yaml", "-o", out,
                        "--note", "C4:100:0:0.2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "listens to an audio input" in r.stderr and "spikesynth process" in r.stderr
    assert sf.info(out).duration < 2.0
