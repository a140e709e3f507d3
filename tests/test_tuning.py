"""Playing in tune: every note 24–96 within ±1 cent at 44.1, 48 and 96 kHz, measured from the
rendered audio by an independent spectral f0 estimate (tests/audio_analysis.py)."""

from __future__ import annotations

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0, inharmonic_ratio_db

from spikesynth import Synth, load_patch


def target(note, a4=440.0):
    return a4 * 2.0 ** ((note - 69) / 12)


@pytest.mark.parametrize("samplerate", [44100, 48000, 96000])
def test_every_note_24_to_96_within_one_cent(samplerate):
    synth = Synth(load_patch(None), samplerate, 4096)
    errors = {}
    for note in range(24, 97):
        synth.reset()
        audio = synth.process(int(1.25 * samplerate), [(0, bytes([0x90, note, 100]))])
        f0 = estimate_f0(audio[int(0.25 * samplerate):], samplerate, target(note))
        errors[note] = cents(f0, target(note))
    worst = max(errors, key=lambda n: abs(errors[n]))
    assert abs(errors[worst]) <= 1.0, f"note {worst}: {errors[worst]:+.3f} cents"


def test_pitch_does_not_depend_on_velocity():
    sr = 48000
    synth = Synth(load_patch(None), sr, 4096)
    for note in (33, 60, 91):
        found = []
        for velocity in (1, 40, 90, 127):
            synth.reset()
            audio = synth.process(sr, [(0, bytes([0x90, note, velocity]))])
            found.append(estimate_f0(audio[sr // 4:], sr, target(note)))
        assert np.ptp(cents(np.array(found), target(note))) < 0.05


def test_a4_reference_and_pitch_bend():
    sr = 48000
    patch = load_patch(None).replace(a4=432.0, pitch_bend_range=2.0)
    synth = Synth(patch, sr, 4096)
    audio = synth.process(sr, [(0, bytes([0x90, 69, 100]))])
    assert abs(cents(estimate_f0(audio[sr // 4:], sr, 432.0), 432.0)) < 0.1
    # Full bend up: +2 semitones; the retuned voice is exactly in tune again.
    synth.reset()
    audio = synth.process(sr, [(0, bytes([0x90, 69, 100])), (0, bytes([0xE0, 0x7F, 0x7F]))])
    bent = 432.0 * 2 ** (2 * (8191 / 8192) / 12)
    assert abs(cents(estimate_f0(audio[sr // 4:], sr, bent), bent)) < 0.1
    # Bend applied mid-note, mid-spike: still in tune afterwards.
    synth.reset()
    first = synth.process(sr // 3 + 17, [(0, bytes([0x90, 69, 100]))])
    assert np.all(np.isfinite(first))
    audio = synth.process(sr, [(0, bytes([0xE0, 0x00, 0x20]))])  # value 4096: -1 semitone
    down = 432.0 * 2 ** (-1 / 12)
    assert abs(cents(estimate_f0(audio[sr // 4:], sr, down), down)) < 0.1


def test_high_note_partials_are_harmonic():
    """Sub-sample spike timing keeps note 84's partials harmonic (inharmonic energy ≥ 50 dB
    below the harmonic energy); rounding periods to whole samples would not."""
    sr = 48000
    synth = Synth(load_patch(None), sr, 4096)
    audio = synth.process(3 * sr, [(0, bytes([0x90, 84, 100]))])
    assert inharmonic_ratio_db(audio[sr:], sr, target(84)) < -50.0
