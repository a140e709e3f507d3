"""The master section and the bundled patches' levels, measured from rendered audio (issue 9):
the look-ahead limiter's latency and flush, an 8-note chord's gain reduction, BS.1770 loudness
(pyloudnorm) across patches and keys, and the network patches' mono sum."""

from __future__ import annotations

import numpy as np
import pytest

from spikesynth import Synth, load_patch
from spikesynth.analysis import (
    clean_analysis_seconds,
    gain_reduction_db,
    loudness_lufs,
    mono_fundamental_db,
)
from spikesynth.master import CEILING, master_latency
from spikesynth.offline import render_events
from spikesynth.patch import PATCH_DIR, list_patches

SR = 44100
NAMES = [p.stem for p in list_patches(PATCH_DIR)]
CHORD = (48, 52, 55, 60, 64, 67, 72, 76)
# A vocoder sings only what its ear hears: its level is its input's (no loudness target).
INPUT_LEVEL = {"ear_vocoder"}
# The note sets a tempo, not a pitch (C2 beats once in two seconds).
NOT_KEYED = {"heartbeat"}
PITCHED_NETWORKS = ("half_centre", "sync_ring", "gated_burst")
NOTE_S = 0.8


def patch_of(name):
    return load_patch(PATCH_DIR / f"{name}.yaml")


def note_on(note, velocity):
    return bytes([0x90, note, velocity])


def breath(seconds):
    """The input a listening patch hears in these tests: quiet noise."""
    return 0.05 * np.random.default_rng(1).standard_normal(int(seconds * SR))


def render(patch, seconds, events, bypass=False, heard=True):
    """``heard``: a listening patch hears :func:`breath` (else silence, as a plain render)."""
    synth = Synth(patch, SR, 2048)
    synth.bypass_limiter = bypass
    noise = breath(seconds) if synth.listening and heard else None
    return synth.process(int(seconds * SR), events, audio_in=noise).astype(np.float64)


def test_latency_is_the_lookahead_and_the_same_for_every_host():
    synth = Synth(patch_of("default"), 48000, 256)
    assert synth.latency == master_latency(48000) == 72
    assert Synth(patch_of("default"), SR, 256).latency == 66


def test_limited_chord_has_no_flat_tops_and_stays_under_the_ceiling():
    patch = patch_of("default").replace(gain_db=12.0)  # 12 dB too hot: the limiter works
    limited = render(patch, 0.5, [(0, note_on(n, 127)) for n in CHORD])
    bypassed = render(patch, 0.5, [(0, note_on(n, 127)) for n in CHORD], bypass=True)
    assert np.abs(limited).max() <= CEILING
    assert np.abs(bypassed).max() > 2.0 * CEILING  # the bypass really is one
    assert gain_reduction_db(limited, bypassed) > 6.0
    # No flat tops: never two neighbouring samples pinned at the ceiling.
    pinned = np.abs(limited).max(axis=1) >= CEILING * (1.0 - 1e-4)
    assert not np.any(pinned[1:] & pinned[:-1])
    # Smooth gain: the limited output is the bypassed one times a gain that moves at most
    # one triangle step per sample (no jumps, see spikesynth.dsp.limiter).
    loud = np.abs(bypassed[:, 0]) > 0.05
    gain = limited[loud, 0] / bypassed[loud, 0]
    assert gain.min() > 0.0 and gain.max() <= 1.0 + 1e-6


def test_render_flushes_the_lookahead_so_the_tail_is_whole():
    patch = patch_of("default")
    events = [(0, note_on(60, 100)), (SR // 10, bytes([0x80, 60, 0]))]
    blocks = []
    frames = render_events(Synth(patch, SR, 512), events, tail=0.05, sink=blocks.append)
    assert frames == SR // 10 + int(0.05 * SR) + master_latency(SR)
    audio = np.concatenate(blocks)
    lag = master_latency(SR)
    # The note still sounds at the end: the flushed samples carry its last moment, and the
    # render is exactly the engine's output over that length.
    assert np.abs(audio[-lag:]).max() > 1e-3
    np.testing.assert_array_equal(audio, Synth(patch, SR, 512).process(frames, events))


@pytest.mark.parametrize("name", NAMES)
def test_eight_note_chord_at_full_velocity_needs_at_most_3_db_of_gain_reduction(name):
    patch = patch_of(name)
    events = [(0, note_on(n, 127)) for n in CHORD]
    limited = render(patch, 1.0, events)
    bypassed = render(patch, 1.0, events, bypass=True)
    assert gain_reduction_db(limited, bypassed) <= 3.0


@pytest.fixture(scope="module")
def c4_loudness():
    """Each patch's C4 as a plain ``render --note`` plays it (no input)."""
    return {name: loudness_lufs(render(patch_of(name), NOTE_S, [(0, note_on(60, 100))],
                                       heard=False), SR)
            for name in NAMES if name not in INPUT_LEVEL}


def test_every_patch_is_within_2_lu_of_the_median_at_c4(c4_loudness):
    assert all(np.isfinite(v) for v in c4_loudness.values()), c4_loudness  # audible
    median = float(np.median(list(c4_loudness.values())))
    off = {k: round(v - median, 1) for k, v in c4_loudness.items() if abs(v - median) > 2.0}
    assert not off, (median, off)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in INPUT_LEVEL | NOT_KEYED])
def test_loudness_tracks_the_key_within_3_lu_from_c2_to_c7(name, c4_loudness):
    patch = patch_of(name)
    for note in (36, 48, 72, 84, 96):
        level = loudness_lufs(render(patch, NOTE_S, [(0, note_on(note, 100))], heard=False), SR)
        assert abs(level - c4_loudness[name]) <= 3.0, (note, level, c4_loudness[name])


@pytest.mark.parametrize("name", PITCHED_NETWORKS)
def test_network_keeps_its_fundamental_in_the_mono_sum_and_its_stereo_picture(name):
    patch = patch_of(name).replace(envelope__sustain_db=0.0)
    for note in (48, 72):
        f0 = patch["a4"] * 2.0 ** ((note + patch["transpose"] - 69) / 12.0)
        seconds = clean_analysis_seconds(f0)
        audio = render(patch, 0.4 + seconds, [(0, note_on(note, 100))])[-int(seconds * SR):]
        assert mono_fundamental_db(audio, SR, f0) >= -20.0
        if name == "half_centre":  # the two halves stay apart: L and R are not one signal
            assert abs(np.corrcoef(audio[:, 0], audio[:, 1])[0, 1]) < 0.6
