"""Offline OSC: ``render --osc-file`` plays a file of size-prefixed OSC packets (the framing of
SuperCollider's non-real-time scores), each bundle at its time tag to the sample; a note in
tune and a parameter change measured from the audio; malformed packets counted and ignored
with one line."""

from __future__ import annotations

import struct

import numpy as np
import soundfile as sf
from audio_analysis import cents, estimate_f0

from spikesynth.cli import main
from spikesynth.osc import osc_file_bytes, write_osc_file

SR = 48000


def render(tmp_path, name, *args):
    out = tmp_path / f"{name}.wav"
    assert main(["render", *args, "--subtype", "FLOAT", "-o", str(out), "-q"]) == 0
    audio, sr = sf.read(out, dtype="float32")
    assert sr == SR
    return audio


def onset(audio):
    """The first sample the render is audible (an independent look at the audio)."""
    return int(np.flatnonzero(np.abs(audio).max(axis=1) > 1e-6)[0])


def test_time_tag_to_the_sample_note_in_tune_and_a_parameter_change(tmp_path):
    start = 12345  # samples: not on any block boundary
    score = tmp_path / "score.osc"
    write_osc_file(score, [
        (start / SR, [("/spikesynth/note_on", 69, 100)]),
        (0.6, [("/spikesynth/param", "transpose", 2.0)]),
        (1.1, [("/spikesynth/note_off", 69)]),
    ])
    audio = render(tmp_path, "osc", "--osc-file", str(score))
    reference = render(tmp_path, "ref", "--note", "69:100:0:1")  # the same note at 0
    assert onset(audio) - onset(reference) == start
    until = int(0.6 * SR) - start  # the parameter change: the same sound up to it
    np.testing.assert_array_equal(audio[start:start + until], reference[:until])
    before = estimate_f0(audio[int(0.3 * SR):int(0.6 * SR)], SR, 440.0)
    up = 440.0 * 2 ** (2 / 12)
    after = estimate_f0(audio[int(0.7 * SR):int(1.1 * SR)], SR, up)
    assert abs(cents(before, 440.0)) < 1.0 and abs(cents(after, up)) < 1.0


def test_malformed_packets_are_ignored_with_one_line(tmp_path, capsys):
    good = osc_file_bytes([(0.0, [("/spikesynth/note_on", 57, 100)])])
    junk = b"not an OSC packet"
    mixed = osc_file_bytes([(0.5, [("/spikesynth/nothing", 1),  # unknown address
                                   ("/spikesynth/note_on", "x", 100),  # wrong argument
                                   ("/spikesynth/note_off", 57)])])
    cut = struct.pack(">i", 64) + b"#bundle\0"  # a size running past the end
    score = tmp_path / "bad.osc"
    score.write_bytes(good + struct.pack(">i", len(junk)) + junk + mixed + cut)
    audio = render(tmp_path, "bad", "--osc-file", str(score))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ignored 4 malformed OSC packet(s) or message(s); 2 played" \
        in err[0], err
    assert abs(cents(estimate_f0(audio[int(0.1 * SR):int(0.5 * SR)], SR, 220.0), 220.0)) < 1.0
    # The note-off of the mixed bundle played at 0.5 s: held until then (no "never end"
    # warning above), silent soon after.
    level = [np.sqrt(np.mean(audio[int(a * SR):int((a + 0.05) * SR)] ** 2)) for a in (0.1, 0.45)]
    assert level[1] > 0.5 * level[0] and len(audio) < 1.5 * SR
    assert main(["render", "--osc-file", str(tmp_path / "none.osc"), "-o",
                 str(tmp_path / "x.wav"), "-q"]) == 1
    assert "none.osc: no such OSC file" in capsys.readouterr().err
