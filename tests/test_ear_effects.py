"""Neural effects offline: the ear's spikes resynthesised, the spiking vocoder, `process`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spikesynth import ear_effects as X
from spikesynth.offline import Note, note_events
from spikesynth.patch import PatchError

SR = 48000
DOCS = Path(__file__).resolve().parent.parent / "docs"
CLI = [sys.executable, "-m", "spikesynth.cli"]


def spectrum(y, sr=SR, skip=0.2):
    seg = y[int(skip * sr):]
    mag = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    return np.fft.rfftfreq(seg.size, 1 / sr), mag


def tone(f, db, seconds):
    t = np.arange(int(seconds * SR)) / SR
    return 10 ** (db / 20) * np.sin(2 * np.pi * f * t)


def test_resynthesis_of_440_hz_has_its_strongest_partial_there():
    effect = X.load_effect(DOCS / "ear_resynth.yaml")
    r = X.process_signal(effect, tone(440.0, -30, 0.7), SR)
    freqs, mag = spectrum(r.audio[:, 0])
    peak = freqs[np.argmax(mag)]
    assert abs(12 * np.log2(peak / 440.0)) < 1.0, peak
    assert np.all(np.isfinite(r.audio)) and np.max(np.abs(r.audio)) <= X.CEILING


def test_resynthesis_is_block_size_invariant_and_silent_on_silence():
    effect = X.load_effect(DOCS / "ear_resynth.yaml")
    x = tone(300.0, -25, 0.2) + 0.01 * np.random.default_rng(0).standard_normal(int(0.2 * SR))
    a = X.process_signal(effect, x, SR, block=64).audio
    b = X.process_signal(effect, x, SR, block=1000).audio
    assert np.array_equal(a, b) and np.max(np.abs(a)) > 0.01
    assert np.max(np.abs(X.process_signal(effect, np.zeros(SR // 10), SR).audio)) == 0.0


def test_vocoder_partials_sit_at_the_held_notes_harmonics():
    effect = X.load_effect(DOCS / "ear_vocoder.yaml")
    x = 0.1 * np.random.default_rng(1).standard_normal(int(0.8 * SR))  # a breath of noise
    events = note_events([Note(57, 100, 0.0, 0.8)], SR)  # A3, 220 Hz
    r = X.process_signal(effect, x, SR, events)
    freqs, mag = spectrum(r.audio[:, 0])
    strongest = freqs[np.argsort(mag)[::-1][:8]]
    harmonic = strongest / 220.0
    assert np.all(np.abs(harmonic - np.round(harmonic)) < 0.02), strongest
    # Dry/wet: dry only gives the input back (clipped at the ceiling).
    dry = effect._replace(mix={**effect.mix, "dry": 1.0, "wet": 0.0})
    out = X.process_signal(dry, x, SR, events).audio[:, 0]
    assert np.allclose(out, np.clip(x, -X.CEILING, X.CEILING))


def test_effect_patch_errors_name_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("effect: resynth\near:\n  channels: 0\n")
    with pytest.raises(PatchError, match=r"bad.yaml:3: ear.channels: expected a whole number"):
        X.load_effect(bad)
    bad.write_text("effect: resynth\nresynth: {wobble: 1}\n")
    with pytest.raises(PatchError, match="resynth.wobble: unknown key"):
        X.load_effect(bad)
    with pytest.raises(PatchError, match="not an effect patch"):
        X.load_effect(DOCS.parent / "patches" / "default.yaml")


def test_process_cli(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(440.0, -30, 0.3), SR)
    out = tmp_path / "out.wav"
    r = subprocess.run([*CLI, "process", DOCS / "ear_resynth.yaml", wav, "-o", out, "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    y, sr = sf.read(out)
    assert sr == SR and y.shape[1] == 2 and np.max(np.abs(y)) > 0.01
    r = subprocess.run([*CLI, "process", DOCS / "ear_vocoder.yaml", wav, "-o", out],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "--note" in r.stderr and len(r.stderr.splitlines()) == 1
