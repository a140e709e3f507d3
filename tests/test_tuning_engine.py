"""Scala tunings played by the engine: every model in tune with tuning-library's frequencies,
pitch bend included; unmapped keys silent; MIDI Tuning Standard retunes a sounding note.

Pitches are measured from the rendered audio (``audio_analysis.estimate_f0``) and compared
with tuning-library's own frequency for the note, never with the engine's tables.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tuning_library as tl
from audio_analysis import cents, estimate_f0

from spikesynth import Synth, load_patch
from spikesynth.cli import main
from spikesynth.mts import mts_message, parse_mts
from spikesynth.patch import PATCH_DIR, PatchError, patch_from_text

TUNINGS = Path(__file__).resolve().parents[1] / "tunings"
SCALES = {  # an EDO other than 12, a just scale, a non-octave scale with a keyboard map
    "19-edo": ("19-edo.scl", None),
    "ji-5": ("ji-5-limit-12.scl", None),
    "bohlen-pierce": ("bohlen-pierce.scl", "bohlen-pierce.kbm"),
}
MODELS = {"spiking": "default.yaml", "lif": "lif.yaml", "izhikevich": "izhikevich_rs.yaml"}
NOTES = (55, 63, 72)
BEND = (0x7F, 0x5F)  # pitch bend data bytes: +0.9844 of the range (2 semitones)


def reference_hz(scl, kbm, note):
    """tuning-library's frequency for ``note``: the reference these tests measure against."""
    scale = tl.read_scl_file(str(TUNINGS / scl))
    tuning = tl.Tuning(scale) if kbm is None else tl.Tuning(scale,
                                                            tl.read_kbm_file(str(TUNINGS / kbm)))
    return tuning.frequency_for_midi_note(note)


def tuned_patch(model, scl, kbm):
    text = (TUNINGS.parent / "patches" / MODELS[model]).read_text()
    text += f"\ntuning: {{scl: ../tunings/{scl}" + (f", kbm: ../tunings/{kbm}" if kbm else "")
    return patch_from_text(text + "}", PATCH_DIR / "tuned.yaml")


def measure(synth, note, sr, bend=None, seconds=0.7):
    """f0 of ``note`` held alone (optionally bent from the start), settled part only."""
    synth.reset()
    events = [(0, bytes([0x90, note, 100]))]
    if bend is not None:
        events.insert(0, (0, bytes([0xE0, *bend])))
    audio = synth.process(int(seconds * sr), events)
    return audio[int(0.25 * sr):]


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_plays_three_scales_within_a_cent_with_bend(model, sr):
    worst = []
    for name, (scl, kbm) in SCALES.items():
        synth = Synth(tuned_patch(model, scl, kbm), sr, 4096)
        for note in NOTES:
            f = reference_hz(scl, kbm, note)
            c = cents(estimate_f0(measure(synth, note, sr), sr, f), f)
            worst.append((abs(c), f"{name} note {note}: {c:+.3f} cents"))
        bend = ((BEND[1] << 7 | BEND[0]) - 8192) / 8192 * 2.0  # the patch's range: 2
        f = reference_hz(scl, kbm, NOTES[1]) * 2 ** (bend / 12)
        c = cents(estimate_f0(measure(synth, NOTES[1], sr, BEND), sr, f), f)
        worst.append((abs(c), f"{name} note {NOTES[1]} bent: {c:+.3f} cents"))
    assert max(worst)[0] <= 1.0, max(worst)[1]


def test_unmapped_key_is_silent_and_mapped_neighbours_sound(tmp_path):
    kbm = tmp_path / "holes.kbm"
    # 12 keys per octave, middle note 60, reference note 69 at 440 Hz, key 1 of each
    # octave unmapped (x): notes 61, 73, ... do not sound.
    kbm.write_text("12\n0\n127\n60\n69\n440.0\n12\n0\nx\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n")
    patch = patch_from_text(f"tuning: {{kbm: {kbm.name}}}", tmp_path / "p.yaml")
    assert not patch.tuning.mapped[61] and patch.tuning.mapped[60]
    synth = Synth(patch, 48000, 4096)
    silent = measure(synth, 61, 48000)
    assert np.abs(silent).max() == 0.0 and synth.stats()["unmapped_notes"] == 1
    f = 440.0 * 2 ** (-9 / 12)
    assert abs(cents(estimate_f0(measure(synth, 60, 48000), 48000, f), f)) < 1.0


def test_tuning_section_errors_name_the_patch_key_and_the_scala_line(tmp_path):
    (tmp_path / "bad.scl").write_text("! bad\nbad scale\n2\n100.0\nfoo\n")
    (tmp_path / "p.yaml").write_text("name: x\ntuning:\n  scl: bad.scl\n")
    with pytest.raises(PatchError) as e:
        load_patch(tmp_path / "p.yaml")
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'p.yaml'}:3: tuning.scl: ") and "bad.scl:5" in text
    (tmp_path / "q.yaml").write_text("tuning:\n  kbm: none.kbm\n")
    with pytest.raises(PatchError, match=r"q.yaml:2: tuning.kbm: .*none.kbm: no such"):
        load_patch(tmp_path / "q.yaml")


def test_transpose_is_a_ratio_on_the_tuning():
    patch = tuned_patch("spiking", "19-edo.scl", None).replace(transpose=-3.5)
    synth = Synth(patch, 48000, 4096)
    f = reference_hz("19-edo.scl", None, 60) * 2 ** (-3.5 / 12)
    assert abs(cents(estimate_f0(measure(synth, 60, 48000), 48000, f), f)) < 1.0


def test_mts_single_note_change_retunes_a_sounding_note():
    sr = 48000
    synth = Synth(load_patch(PATCH_DIR / "default.yaml"), sr, 4096)
    target = 311.127 * 2 ** (37.0 / 1200)  # off any 12-TET pitch
    message = mts_message([(62, target)])
    assert parse_mts(message)[0][1] == 62
    audio = synth.process(int(1.2 * sr), [(0, bytes([0x90, 62, 100])),
                                          (int(0.5 * sr), message)])
    before = estimate_f0(audio[int(0.2 * sr):int(0.5 * sr)], sr, 293.66)
    after = estimate_f0(audio[int(0.7 * sr):], sr, target)
    assert abs(cents(before, 440 * 2 ** (-7 / 12))) < 1.0
    step = 100 / 16384  # MTS resolution in cents: the message rounds to it
    assert abs(cents(after, target)) < 1.0 + step
    assert synth.stats()["notes_retuned"] == 1


def test_malformed_sysex_is_rejected_not_fatal():
    synth = Synth(load_patch(PATCH_DIR / "default.yaml"), 48000, 4096)
    synth.process(256, [(0, bytes([0xF0, 0x7F, 0x7F, 0x08, 0x02, 0, 2, 60, 60, 0, 0, 0xF7])),
                        (0, bytes([0xF0, 0x43, 0x10, 0xF7]))])
    assert synth.stats()["events_rejected"] == 2


def test_render_scl_option_tunes_the_render(tmp_path):
    out = tmp_path / "a.wav"
    assert main(["render", "--scl", str(TUNINGS / "31-edo.scl"), "--note", "64:100:0:0.8",
                 "-o", str(out), "-q"]) == 0
    import soundfile as sf

    audio, sr = sf.read(out)
    f = reference_hz("31-edo.scl", None, 64)
    assert abs(cents(estimate_f0(audio[int(0.25 * sr):int(0.75 * sr)], sr, f), f)) < 1.0
    assert main(["render", "--scl", str(tmp_path / "none.scl"), "-o", str(out), "-q"]) == 1
    assert math.isfinite(f)


def test_mts_change_in_a_midi_file_retunes_the_render(tmp_path):
    """A tuning change stored in a MIDI file (a SysEx event) reaches the engine offline."""
    import mido

    from spikesynth.offline import midi_file_events

    sr = 48000
    target = 311.127 * 2 ** (37.0 / 1200)
    message = mts_message([(62, target)])
    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.Message("sysex", data=list(message[1:-1]), time=0))
    track.append(mido.Message("note_on", note=62, velocity=100, time=0))
    track.append(mido.Message("note_off", note=62, velocity=0, time=960))  # 1 s at 120 bpm
    path = tmp_path / "tuned.mid"
    song.save(str(path))
    events = midi_file_events(path, sr)
    synth = Synth(load_patch(PATCH_DIR / "default.yaml"), sr, 4096)
    assert events[0][1][0] == 0xF0  # the SysEx is passed on
    audio = synth.process(2 * sr, events)
    assert abs(cents(estimate_f0(audio[int(0.3 * sr):int(0.9 * sr)], sr, target), target)) \
        < 1.0 + 100 / 16384


@pytest.mark.parametrize("name", ["default", "lif", "izhikevich_rs", "izhikevich_ch"])
def test_a_note_bent_mid_note_settles_within_a_cent_of_the_bent_pitch(name):
    """Bends in the middle of a sounding note (mid-spike, off the blocks' grid), with a
    24-semitone range: up almost 24, down 12, down 24; each settles within ±1 cent of the
    bent pitch, measured from the audio. (The Izhikevich voice keeps its note's sub-steps
    per sample and takes the calibration of the sub-step that gives: between the calibrated
    notes' sub-steps, or extrapolated below them for a note bent far down.)"""
    sr = 48000
    synth = Synth(load_patch(PATCH_DIR / f"{name}.yaml").replace(pitch_bend_range=24.0), sr,
                  4096)
    note = 55
    bends = ((sr // 3 + 17, (0x7F, 0x7F), 24 * 8191 / 8192), (sr + 5, (0x00, 0x20), -12.0),
             (int(1.7 * sr) + 3, (0x00, 0x00), -24.0))
    end = int(2.4 * sr)
    audio = synth.process(end, [(0, bytes([0x90, note, 100]))]
                          + [(at, bytes([0xE0, *data])) for at, data, _ in bends])
    for k, (at, _, bend) in enumerate(bends):
        f = 440.0 * 2 ** ((note + bend - 69) / 12)
        until = bends[k + 1][0] if k + 1 < len(bends) else end
        c = cents(estimate_f0(audio[at + sr // 4:until], sr, f), f)
        assert abs(c) <= 1.0, f"{name}: bent {bend:+.3f} semitones, {c:+.3f} cents off"
