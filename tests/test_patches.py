"""Every bundled patch loads, renders finite, non-silent audio, and plays in tune where pitched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0

from spikesynth import Synth, load_patch
from spikesynth.patch import list_patches

PATCHES = list_patches(Path(__file__).resolve().parent.parent / "patches")
# Stochastic; sub-audio rate; chaotic; learning (its period drifts as its weights change).
UNPITCHED = {"noisy.yaml", "heartbeat.yaml", "chaotic_cluster.yaml", "stdp_ring.yaml"}
SR = 48000


def test_there_are_at_least_six_distinct_bundled_patches():
    assert len(PATCHES) >= 6
    names = {load_patch(p).name for p in PATCHES}
    assert len(names) == len(PATCHES)


@pytest.mark.parametrize("path", PATCHES, ids=lambda p: p.name)
def test_bundled_patch_renders(path):
    patch = load_patch(path)
    synth = Synth(patch, SR, 1024)
    notes = [48, 55, 60, 67]
    events = [(i * 2400, bytes([0x90, n, 100])) for i, n in enumerate(notes)]
    free = patch["model"] == "izhikevich" and patch["izhikevich.tuning"] == "free"
    if free:  # these play their input current from the mod wheel: push it up, as a player would
        events.append((0, bytes([0xB0, 1, 127])))
    # A patch that listens hears a breath of noise (and plays its notes); without input it
    # renders too: silence, or its own notes.
    noise = 0.05 * np.random.default_rng(0).standard_normal(2 * SR) if synth.listening else None
    if synth.listening:
        quiet = synth.process(SR // 10, events[:1])
        assert np.all(np.isfinite(quiet))
        synth.reset()
    audio = synth.process(2 * SR, sorted(events), audio_in=noise)
    assert np.all(np.isfinite(audio))
    assert np.sqrt(np.mean(audio**2)) > 1e-3
    if path.name in UNPITCHED or free:
        return
    vocoder = patch["listen.routing"] == "vocoder"  # sings only what the ear hears
    for note in (45, 69):
        synth.reset()
        audio = synth.process(SR, [(0, bytes([0x90, note, 100]))],
                              audio_in=noise[:SR] if vocoder else None)
        f = patch["a4"] * 2 ** ((note + patch["transpose"] - 69) / 12)
        # One channel: a panned network (the half-centre) carries its full cycle per side.
        # The vocoder's partials carry the noise's envelope (sidebands): 5 cents for it.
        assert abs(cents(estimate_f0(audio[SR // 5:, 0], SR, f), f)) < (5.0 if vocoder else 1.0)


def test_heartbeat_beats_at_the_note_rate():
    patch = load_patch(Path(__file__).resolve().parent.parent / "patches" / "heartbeat.yaml")
    synth = Synth(patch, SR, 4096)
    audio = synth.process(6 * SR, [(0, bytes([0x90, 60, 100]))])[:, 0]
    rate = 440 * 2 ** ((60 - 72 - 69) / 12)
    # Count beats from the envelope: one thump per period.
    env = np.abs(audio)
    frame = SR // 50
    level = np.array([env[i:i + frame].max() for i in range(0, len(env) - frame, frame)])
    onsets = np.nonzero((level[1:] > 0.5 * level.max()) & (level[:-1] <= 0.5 * level.max()))[0]
    assert abs(len(onsets) - 6 * rate) <= 1.5
