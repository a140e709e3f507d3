"""The study models as voices: LIF and Izhikevich voices play in tune (measured from the audio),
class 1 and class 2 excitability are audible, and renders stay block-size invariant."""

from __future__ import annotations

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0
from rendering import render_in_blocks

from spikesynth import Synth, load_patch
from spikesynth.engine import trace_voice
from spikesynth.patch import PATCH_DIR, patch_from_text

SR = 48000


def target(note):
    return 440.0 * 2.0 ** ((note - 69) / 12)


def worst_cents(patch, notes, samplerate=SR, seconds=1.0):
    synth = Synth(patch, samplerate, 4096)
    worst = (0.0, None)
    for note in notes:
        synth.reset()
        audio = synth.process(int((seconds + 0.4) * samplerate), [(0, bytes([0x90, note, 100]))])
        c = cents(estimate_f0(audio[int(0.4 * samplerate):], samplerate, target(note)),
                  target(note))
        if abs(c) >= abs(worst[0]):
            worst = (c, note)
    return worst


@pytest.mark.parametrize("samplerate", [44100, 48000, 96000])
def test_lif_voice_plays_every_note_in_tune(samplerate):
    """Exact LIF: drive from the closed-form period, resets placed inside the sample."""
    patch = load_patch(PATCH_DIR / "lif.yaml")
    c, note = worst_cents(patch, range(24, 97, 3 if samplerate != SR else 1), samplerate)
    assert abs(c) <= 1.0, f"note {note}: {c:+.3f} cents"


@pytest.mark.parametrize("preset", ["RS", "FS", "CH"])
def test_izhikevich_presets_play_notes_36_to_84_within_5_cents(preset):
    patch = patch_from_text(f"model: izhikevich\nizhikevich: {{preset: {preset}}}")
    c, note = worst_cents(patch, range(36, 85), seconds=0.8)
    assert abs(c) <= 5.0, f"{preset} note {note}: {c:+.3f} cents"


def test_izhikevich_in_tune_after_pitch_bend():
    patch = load_patch(PATCH_DIR / "izhikevich_rs.yaml")
    synth = Synth(patch, SR, 4096)
    audio = synth.process(int(1.4 * SR), [(0, bytes([0x90, 60, 100])),
                                          (SR // 10, bytes([0xE0, 0x00, 0x60]))])
    bend = ((0x60 << 7) - 8192) / 8192 * patch["pitch_bend_range"]
    f = target(60) * 2 ** (bend / 12)
    assert abs(cents(estimate_f0(audio[int(0.4 * SR):], SR, f), f)) < 5.0


def _rates(patch, lo, hi, seconds=8.0, note=60):
    """Firing rate (model Hz) against input current on a slow ramp, through the voice."""
    n = int(seconds * SR)
    current = np.linspace(lo, hi, n)
    tr = trace_voice(patch, SR, note=note, current=current)
    spikes = np.nonzero(tr["state"] == 1)[0]
    ms_per_sample = target(note) / patch["izhikevich.reference_rate_hz"] * 1000.0 / SR
    return 1000.0 / (np.diff(spikes) * ms_per_sample), current[spikes[1:]]


def test_class_1_glides_up_from_low_rates_class_2_jumps_to_a_finite_rate():
    """Izhikevich (2004) Fig. 1 G/H: class 1 fires at arbitrarily low rates near threshold,
    class 2 starts at a finite rate."""
    r1, _ = _rates(load_patch(PATCH_DIR / "class1.yaml"), 0.0, 20.0)
    r2, _ = _rates(load_patch(PATCH_DIR / "class2.yaml"), -0.5, 3.55)
    assert len(r1) > 50 and len(r2) > 50
    assert r1[0] < 0.1 * r1[-10:].mean()  # starts near zero ...
    assert np.all(np.diff(r1[:20]) > -0.5)  # ... and glides up
    assert r2[0] > 0.25 * r2[-10:].mean()  # jumps straight to a finite rate
    assert r2[0] > 5 * r1[0]


def test_free_tuning_rate_follows_the_mod_wheel():
    patch = load_patch(PATCH_DIR / "class1.yaml")
    synth = Synth(patch, SR, 4096)
    # The wheel at 0 is no current (the patch's own 10 plays until a wheel is moved).
    silent = synth.process(SR // 2, [(0, bytes([0xB0, 1, 0])), (0, bytes([0x90, 60, 100]))])
    synth.process(SR // 4, [(0, bytes([0xB0, 1, 127]))])
    loud = synth.process(SR // 2)
    assert np.abs(loud).max() > 5 * np.abs(silent[SR // 10:]).max()


@pytest.mark.parametrize("name", ["lif.yaml", "izhikevich_ch.yaml"])
def test_model_voices_block_size_invariant(name):
    patch = load_patch(PATCH_DIR / name).replace(noise=0.05)
    events = [(0, bytes([0x90, 60, 100])), (700, bytes([0x90, 67, 90])),
              (1500, bytes([0xB0, 1, 100])), (2222, bytes([0xE0, 0, 0x50])),
              (3000, bytes([0x80, 60, 0]))]
    ref, _ = render_in_blocks(patch, events, 6000, 512)
    for block in (1, 64):
        np.testing.assert_array_equal(render_in_blocks(patch, events, 6000, block)[0], ref)
    assert np.all(np.isfinite(ref)) and np.abs(ref).max() > 0.01
