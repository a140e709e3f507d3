"""Clean sound: the measurement itself against analytic signals, then the targets of issue 9
on a lean subset of the bundled patches (short renders; the full table is
benchmarks/bench_clean.py)."""

from __future__ import annotations

import numpy as np
import pytest

from spikesynth import Synth, load_patch
from spikesynth.analysis import (
    clean_analysis_seconds,
    gain_reduction_db,
    inharmonic_db,
    mono_fundamental_db,
)
from spikesynth.patch import PATCH_DIR

SR = 44100


def tone(f0, seconds, sr=SR, partials=(1.0, 0.5, 0.25)):
    t = np.arange(int(np.ceil(seconds * sr))) / sr
    return sum(a * np.sin(2 * np.pi * (k + 1) * f0 * t + k) for k, a in enumerate(partials))


@pytest.mark.parametrize("f0", [130.81, 523.25, 4186.0])
def test_inharmonic_db_of_a_harmonic_tone_is_far_down_and_finds_a_known_alias(f0):
    seconds = clean_analysis_seconds(f0)
    x = tone(f0, seconds)
    assert inharmonic_db(x, SR, f0) < -85.0  # the window's side lobes: -92 dB
    t = np.arange(len(x)) / SR
    power = np.mean(x * x)
    alias = np.sqrt(2 * power * 1e-4) * np.sin(2 * np.pi * 1.37 * f0 * t)  # -40 dB
    assert inharmonic_db(x + alias, SR, f0) == pytest.approx(-40.0, abs=0.2)
    stereo = np.stack([x, x + alias], axis=1)  # the worst channel counts
    assert inharmonic_db(stereo, SR, f0) == pytest.approx(-40.0, abs=0.2)


def test_inharmonic_db_refuses_a_stretch_too_short_for_its_band():
    with pytest.raises(ValueError, match="needs at least"):
        inharmonic_db(tone(130.81, 1.0), SR, 130.81)


def test_mono_fundamental_of_antiphase_channels_cancels():
    f0 = 440.0
    t = np.arange(SR) / SR
    a = np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t)
    b = -np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t)
    assert mono_fundamental_db(np.stack([a, a], axis=1), SR, f0) == pytest.approx(0.0)
    assert mono_fundamental_db(np.stack([a, b], axis=1), SR, f0) < -100.0


def test_gain_reduction_from_the_audio():
    x = tone(440.0, 0.5)
    assert gain_reduction_db(0.5 * x, x) == pytest.approx(6.02, abs=0.01)
    delayed = np.concatenate([np.zeros(30), x[:-30]])
    assert gain_reduction_db(delayed, x, latency=30) == pytest.approx(0.0, abs=1e-9)


def held_note(name, note, sr=SR):
    """The steady part of a held note (envelope flat, as in bench_clean), stereo."""
    patch = load_patch(PATCH_DIR / f"{name}.yaml").replace(envelope__sustain_db=0.0)
    f0 = patch["a4"] * 2.0 ** ((note + patch["transpose"] - 69) / 12.0)
    seconds = clean_analysis_seconds(f0)
    settle = 0.3 + patch["envelope.attack_ms"] * 1e-3
    frames = int(round((settle + seconds) * sr))
    audio = Synth(patch, sr, 2048).process(frames, [(0, bytes([0x90, note, 100]))])
    return audio[frames - int(np.ceil(seconds * sr)):].astype(np.float64), f0


# (patch, note, sample rate, target dB): the targets on the hardest notes of each
# band-limited model.
CASES = [
    ("default", 84, 44100, -50.0),
    ("default", 108, 48000, -30.0),
    ("lead", 96, 44100, -40.0),
    ("lead", 108, 44100, -30.0),
    ("lif", 72, 44100, -60.0),
    ("lif", 108, 48000, -30.0),
    ("izhikevich_rs", 72, 44100, -60.0),
    ("izhikevich_rs", 96, 48000, -40.0),
    ("izhikevich_ch", 84, 44100, -50.0),
]

# Network patches sold as pitched: the network locks onto an exactly repeating orbit of a whole
# number of steps and is heard band-limited (spikesynth.dsp.network_voice), so its note is
# periodic; the network targets (-40 dB at C3..C5, -30 at C7).
NETWORK_CASES = [
    ("half_centre", 60, 44100, -40.0),
    ("half_centre", 96, 44100, -30.0),
    ("sync_ring", 96, 44100, -30.0),
]


@pytest.mark.parametrize("name,note,sr,target", CASES + NETWORK_CASES)
def test_pitched_patches_meet_the_inharmonic_targets(name, note, sr, target):
    audio, f0 = held_note(name, note, sr)
    assert inharmonic_db(audio, sr, f0) <= target
