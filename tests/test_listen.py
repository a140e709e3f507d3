"""Audio input as part of the voices' drive (spikesynth.listen): added, routed, invariant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_analysis import estimate_f0

from spikesynth import Synth, load_patch
from spikesynth.patch import PatchError, patch_from_text

SR = 48000
PATCHES = Path(__file__).resolve().parent.parent / "patches"
NOTE_ON = bytes([0x90, 57, 100])  # A3, 220 Hz


def tone(f, db, frames):
    return 10 ** (db / 20) * np.sin(2 * np.pi * f * np.arange(frames) / SR)


def listening(text=""):
    base = (PATCHES / "default.yaml").read_text()
    return patch_from_text(base + "\nlisten: {routing: per_note, signal: rate, gain: 0.5}\n"
                           + text)


def render_blocks(patch, x, events, block):
    synth = Synth(patch, SR, block)
    out = []
    for start in range(0, len(x), block):
        stop = min(start + block, len(x))
        out.append(synth.process(stop - start,
                                 [(t - start, m) for t, m in events if start <= t < stop],
                                 audio_in=x[start:stop]))
    return np.concatenate(out)


def test_silent_input_leaves_a_patch_exactly_as_it_was():
    plain = Synth(load_patch(PATCHES / "default.yaml"), SR, 512).process(SR // 4, [(0, NOTE_ON)])
    synth = Synth(listening(), SR, 512)
    assert synth.listening
    heard = synth.process(SR // 4, [(0, NOTE_ON)], audio_in=np.zeros(SR // 4))
    assert np.array_equal(plain, heard)


def test_the_input_is_added_to_the_solved_drive():
    """A tone in the voice's channel adds drive: the voice fires faster (the solved drive is
    kept, so it still fires without input); a tone far from its channel changes nothing."""
    frames = SR
    near = Synth(listening(), SR, 512).process(frames, [(0, NOTE_ON)],
                                               audio_in=tone(220.0, -20, frames))
    far = Synth(listening(), SR, 512).process(frames, [(0, NOTE_ON)],
                                              audio_in=tone(3000.0, -20, frames))
    f_near = estimate_f0(near[SR // 2:, 0], SR, 230.0)
    f_far = estimate_f0(far[SR // 2:, 0], SR, 220.0)
    assert abs(1200 * np.log2(f_far / 220.0)) < 5.0, f_far
    assert f_near > 220.0 * 2 ** (20 / 1200), f_near  # more than 20 cents sharp


@pytest.mark.parametrize("name", ["ear_resynth.yaml", "ear_vocoder.yaml", None])
def test_listening_is_block_size_invariant(name):
    patch = load_patch(PATCHES / name) if name else listening()
    n = 3000
    rng = np.random.default_rng(3)
    x = tone(440.0, -25, n) + 0.01 * rng.standard_normal(n)
    events = [(0, NOTE_ON), (1024, bytes([0x90, 64, 90])), (2048, bytes([0x80, 57, 0]))]
    ref = render_blocks(patch, x, events, 512)
    assert np.max(np.abs(ref)) > 1e-3
    for block in (64, 1):
        assert np.array_equal(render_blocks(patch, x, events, block), ref), block


def test_listen_keys_are_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nlisten:\n  routing: sideways\n")
    with pytest.raises(PatchError, match=r"bad.yaml:3: listen.routing: expected one of"):
        load_patch(bad)
    with pytest.raises(PatchError, match="voices: per_channel routing"):
        patch_from_text("voices: 16\nlisten: {routing: per_channel}\near: {channels: 32}\n")
    with pytest.raises(PatchError, match="ear.channels"):
        patch_from_text("listen: {routing: per_note}\near: {channels: 0}\n")
    with pytest.raises(PatchError, match="ear.reset"):
        patch_from_text("listen: {routing: per_note}\near: {threshold: 1, reset: 2}\n")


def test_audio_in_must_match_the_frames():
    synth = Synth(listening(), SR, 512)
    with pytest.raises(ValueError, match="audio_in must have 100 frames"):
        synth.process(100, [], audio_in=np.zeros(99))
    stereo = synth.process(100, [], audio_in=np.zeros((100, 2)))
    assert stereo.shape == (100, 2)


def test_a_program_change_into_a_listening_patch_and_back_again():
    default = load_patch(PATCHES / "default.yaml")
    resynth = load_patch(PATCHES / "ear_resynth.yaml")
    synth = Synth(default, SR, 512, programs=[default, resynth])
    x = tone(440.0, -25, SR // 2)

    def heard():
        y = synth.process(SR // 2, [], audio_in=x)[SR // 5:, 0].astype(np.float64)
        mag = np.abs(np.fft.rfft(y * np.hanning(y.size)))
        return np.sqrt(np.mean(y ** 2)), np.fft.rfftfreq(y.size, 1 / SR)[np.argmax(mag)]

    assert heard()[0] == 0.0  # the default patch does not listen
    for _ in range(2):  # in, out and in again: the channel voices restart each time
        synth.process(1000, [(0, bytes([0xC0, 1]))])
        level, peak = heard()
        assert synth.patch.name == resynth.name and level > 0.01
        assert abs(12 * np.log2(peak / 440.0)) < 1.0, peak
        synth.process(1000, [(0, bytes([0xC0, 0]))])
        assert heard()[0] < 1e-3
