"""Voice modes: legato glides (measured from the audio) and settles in tune with one voice,
mono retriggers the envelope, note priorities pick the held key that sounds."""

from __future__ import annotations

import numpy as np
from audio_analysis import cents, estimate_f0
from rendering import render_in_blocks

from spikesynth import Synth
from spikesynth.patch import patch_from_text

SR = 48000


def hz(note):
    return 440.0 * 2.0 ** ((note - 69) / 12)


def on(t, note):
    return (int(t * SR), bytes([0x90, note, 100]))


def off(t, note):
    return (int(t * SR), bytes([0x80, note, 0]))


def f0(audio, start, stop, hint):
    return estimate_f0(audio[int(start * SR):int(stop * SR)], SR, hint)


def rms(audio, start, stop):
    return float(np.sqrt(np.mean(audio[int(start * SR):int(stop * SR)] ** 2)))


def test_legato_glides_then_settles_in_tune_with_one_voice_block_size_invariant():
    patch = patch_from_text("voice_mode: legato\nglide_ms: 100\nvibrato: {depth_cents: 0}")
    events = [on(0.0, 60), on(0.5, 67)]  # 60 still held: a legato hand-over
    total = int(1.0 * SR)
    audio, synth = render_in_blocks(patch, events, total, 64)
    again, _ = render_in_blocks(patch, events, total, 509)
    np.testing.assert_array_equal(audio, again)
    assert synth.stats()["voices_active"] == 1
    # The glide is linear in pitch over 100 ms: 20 ms windows follow it (a jump would not).
    # The audio lags the events by the master's look-ahead (Synth.latency).
    lag = synth.latency / SR
    for start in (0.51, 0.53, 0.55, 0.57):
        expected = 700.0 * (start + 0.01 - 0.5) / 0.1  # cents above note 60 mid-window
        measured = cents(f0(audio, start + lag, start + lag + 0.02,
                            hz(60) * 2 ** (expected / 1200)), hz(60))
        assert abs(measured - expected) < 10.0, (start, measured, expected)
    assert abs(cents(f0(audio, 0.2, 0.5, hz(60)), hz(60))) < 1.0
    assert abs(cents(f0(audio, 0.65, 1.0, hz(67)), hz(67))) < 1.0


def test_mono_retriggers_legato_does_not():
    rises = {}
    for mode in ("mono", "legato"):
        synth = Synth(patch_from_text(f"voice_mode: {mode}\nvibrato: {{depth_cents: 0}}"), SR)
        audio = synth.process(int(1.0 * SR), [on(0.0, 60), on(0.6, 64)])
        rises[mode] = rms(audio, 0.605, 0.64) / rms(audio, 0.55, 0.6)
        assert synth.stats()["voices_active"] == 1
        assert abs(cents(f0(audio, 0.7, 1.0, hz(64)), hz(64))) < 1.0
    assert rises["mono"] > 1.2 and 0.85 < rises["legato"] < 1.15, rises


def test_note_priorities_choose_the_held_key():
    cases = {  # priority: (what sounds with 60 and 67 held, after the first-sounding key goes up)
        "last": (67, 60),
        "low": (60, 67),
        "high": (67, 60),
    }
    for priority, (both, after) in cases.items():
        synth = Synth(patch_from_text(f"voice_mode: mono\nnote_priority: {priority}\n"
                                      "vibrato: {depth_cents: 0}"), SR)
        first = 60 if priority != "high" else 67
        second = 67 if priority != "high" else 60
        sounding = both
        audio = synth.process(int(1.5 * SR), [on(0.0, first), on(0.5, second),
                                              off(1.0, sounding)])
        for (a, b), note in (((0.7, 1.0), both), ((1.15, 1.5), after)):
            c = cents(f0(audio, a, b, hz(note)), hz(note))
            assert abs(c) < 1.0, f"{priority}: expected note {note} at {a} s, {c:+.1f} cents"


def test_poly_glide_follows_from_the_previous_note_and_settles_in_tune():
    """Poly mode with glide_ms: each new voice glides from the pitch the previous note sounds
    (``glide: always``: a released one too; ``legato``: only a held one), linear in pitch,
    and settles within 1 cent (20 ms windows along the glide sit within 2 cents of the line,
    a voice that jumps misses it by 10 cents or more)."""
    base = "glide_ms: 100\nvibrato: {depth_cents: 0}\nenvelope: {release_ms: 1}\n"
    hand_over = [on(0.0, 60), off(0.5, 60), on(0.5, 66)]  # the first released as the next starts
    for mode, glides in (("always", True), ("legato", False)):
        patch = patch_from_text(base + f"glide: {mode}\n")
        audio, synth = render_in_blocks(patch, hand_over, int(1.0 * SR), 64)
        again, _ = render_in_blocks(patch, hand_over, int(1.0 * SR), 509)
        np.testing.assert_array_equal(audio, again)
        lag = synth.latency / SR  # the master's look-ahead delays what is heard
        for start in (0.51, 0.53, 0.55, 0.57):
            expected = 600.0 * (start + 0.01 - 0.5) / 0.1 if glides else 600.0
            measured = cents(f0(audio, start + lag, start + lag + 0.02,
                                hz(60) * 2 ** (expected / 1200)), hz(60))
            assert abs(measured - expected) < 5.0, (mode, start, measured, expected)
        assert abs(cents(f0(audio, 0.65, 1.0, hz(66)), hz(66))) < 1.0, mode
    # glide: legato with the first key held (at velocity 1: -84 dB, out of the measurement):
    # two voices sound, the new one glides from 60 to 66.
    patch = patch_from_text(base + "glide: legato\nvelocity_sensitivity: 1.0\n")
    held = [(0, bytes([0x90, 60, 1])), on(0.5, 66)]
    audio, synth = render_in_blocks(patch, held, int(1.0 * SR), 64)
    assert synth.stats()["voices_active"] == 2
    lag = synth.latency / SR
    for start in (0.51, 0.55):
        expected = 600.0 * (start + 0.01 - 0.5) / 0.1
        measured = cents(f0(audio, start + lag, start + lag + 0.02,
                            hz(60) * 2 ** (expected / 1200)), hz(60))
        assert abs(measured - expected) < 5.0, (start, measured, expected)
    assert abs(cents(f0(audio, 0.65, 1.0, hz(66)), hz(66))) < 1.0


def test_a_poly_patch_reloaded_as_mono_plays_mono_where_every_mode_is_compiled_in():
    """A poly patch's program has no mono code (``solo`` None) unless the synth compiles every
    mode in (as the live session does): there a reload to ``voice_mode: mono`` carries on and
    the next overlapping note takes over the one voice."""
    poly = patch_from_text("vibrato: {depth_cents: 0}")
    mono = patch_from_text("voice_mode: mono\nvibrato: {depth_cents: 0}")
    assert Synth(poly, SR).prepared.program.solo is None
    assert Synth(mono, SR).prepared.program.solo is not None
    synth = Synth(poly, SR, every_voice_mode=True)
    assert synth.prepared.program.solo is not None
    synth.process(int(0.2 * SR), [on(0.0, 60), on(0.05, 64)])
    assert synth.stats()["voices_active"] == 2  # poly: a chord
    synth.use_patch(synth.prepare_patch(mono))
    audio = synth.process(int(0.8 * SR), [off(0.0, 60), off(0.0, 64), on(0.3, 67),
                                          on(0.35, 60)])
    assert synth.prepared.patch["voice_mode"] == "mono"
    assert synth.stats()["voices_active"] == 1  # mono: the second key took over
    assert abs(cents(f0(audio, 0.55, 0.8, hz(60)), hz(60))) < 1.0
