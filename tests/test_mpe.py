"""MPE (M1-100-UM v1.1): per-note bend on member channels, each note at its own pitch; the
master channel's bend moves both; per-note timbre changes only its note (all from the audio).
"""

from __future__ import annotations

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0

from spikesynth import Synth
from spikesynth.patch import patch_from_text

SR = 48000
LOW, HIGH = 48, 76  # their harmonics stay clear of each other's search windows (2 harmonics)


def hz(note):
    return 440.0 * 2.0 ** ((note - 69) / 12)


def bend(ch, semitones, span):
    value = int(round(8192 + 8192 * semitones / span))
    return bytes([0xE0 | ch, value & 0x7F, value >> 7])


def mcm(members):
    """MPE Configuration Message for the lower zone (RPN 6 on channel 1)."""
    return [bytes([0xB0, 101, 0]), bytes([0xB0, 100, 6]), bytes([0xB0, 6, members])]


def pitch(audio, note_hz):
    return estimate_f0(audio[int(0.3 * SR):], SR, note_hz, harmonics=2)


def two_bent_notes(patch_text, config, master=0.0):
    synth = Synth(patch_from_text(patch_text), SR, 4096)
    up, down = 2.0, -3.0  # semitones, member range ±48
    events = [(0, m) for m in config] + [
        (0, bend(1, up, 48)), (0, bend(2, down, 48)),
        (0, bytes([0x91, LOW, 100])), (0, bytes([0x92, HIGH, 100]))]
    if master:
        events.append((0, bend(0, master, 2)))
    audio = synth.process(int(1.0 * SR), events)
    f_low = hz(LOW) * 2 ** ((up + master) / 12)
    f_high = hz(HIGH) * 2 ** ((down + master) / 12)
    return cents(pitch(audio, f_low), f_low), cents(pitch(audio, f_high), f_high)


def test_member_channels_bend_each_note_alone_mcm_and_patch_zone():
    plain = "vibrato: {depth_cents: 0}\nstereo_spread: 0\n"
    for text, config in ((plain, mcm(15)), (plain + "mpe: {zone: lower}\n", [])):
        c_low, c_high = two_bent_notes(text, config)
        assert abs(c_low) < 1.0 and abs(c_high) < 1.0, (c_low, c_high)


def test_master_bend_moves_every_note_of_the_zone():
    c_low, c_high = two_bent_notes("vibrato: {depth_cents: 0}\nmpe: {zone: lower}\n", [],
                                   master=1.0)
    assert abs(c_low) < 1.0 and abs(c_high) < 1.0, (c_low, c_high)


def test_without_mpe_a_bend_uses_the_patch_range():
    synth = Synth(patch_from_text("vibrato: {depth_cents: 0}"), SR, 4096)
    audio = synth.process(SR, [(0, bend(1, 1.0, 2)), (0, bytes([0x91, 60, 100]))])
    f = hz(61)
    assert abs(cents(pitch(audio, f), f)) < 1.0


def harmonic_db(audio, f, k):
    """Level (dB) of harmonic ``k`` of ``f``: the largest bin within ±4 Hz (1 s window)."""
    x = audio[int(0.3 * SR):].mean(axis=1)
    spec = np.abs(np.fft.rfft(x * np.blackman(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    band = np.abs(freqs - k * f) <= 4.0
    return 20 * np.log10(spec[band].max())


@pytest.mark.parametrize("source", ["timbre", "pressure"])
def test_per_note_timbre_and_pressure_change_only_their_note(source):
    mapping = ("{source: timbre, param: spring.frequency_hz, min: 300, max: 6000, curve: exp}"
               if source == "timbre" else
               "{source: pressure, param: spring.frequency_hz, min: 5000, max: 400, curve: exp}")
    text = f"vibrato: {{depth_cents: 0}}\nmpe: {{zone: lower}}\ncontrollers: [{mapping}]\n"

    def control(ch, value):
        return bytes([0xB0 | ch, 74, value]) if source == "timbre" else bytes([0xD0 | ch, value])

    renders = []
    for value in (0, 127):
        synth = Synth(patch_from_text(text), SR, 4096)
        renders.append(synth.process(int(1.3 * SR), [
            (0, control(1, value)), (0, control(2, 0)),
            (0, bytes([0x91, LOW, 100])), (0, bytes([0x92, HIGH, 100]))]))
    low = [[harmonic_db(a, hz(LOW), k) for k in (1, 2, 3)] for a in renders]
    high = [[harmonic_db(a, hz(HIGH), k) for k in (1, 2, 3)] for a in renders]
    assert np.max(np.abs(np.subtract(*low))) > 3.0, low  # its spring moved: timbre changed
    assert np.max(np.abs(np.subtract(*high))) < 0.1, high  # the other note is untouched


def test_zone_sustain_holds_member_notes_and_an_mpe_midi_file_renders_the_same(tmp_path):
    """The master channel's sustain pedal holds the zone's member notes past their note-offs;
    and the same MPE stream from a MIDI file (configuration message, member bends, master
    sustain) renders exactly what ``Synth.process`` renders from the events."""
    import mido

    from spikesynth.offline import midi_file_events

    text = "vibrato: {depth_cents: 0}\nstereo_spread: 0\nenvelope: {release_ms: 20}\n"
    events = [(0, m) for m in mcm(15)] + [
        (0, bend(1, 2.0, 48)), (0, bytes([0x91, LOW, 100])), (0, bytes([0x92, HIGH, 100])),
        (SR // 10, bytes([0xB0, 64, 127])),  # master-channel sustain down
        (SR // 5, bytes([0x81, LOW, 0])), (SR // 5, bytes([0x82, HIGH, 0]))]
    held = Synth(patch_from_text(text), SR, 4096).process(SR, events)
    plain = Synth(patch_from_text(text), SR, 4096).process(
        SR, [e for e in events if e[1][:2] != bytes([0xB0, 64])])
    late = slice(int(0.6 * SR), SR)
    assert np.sqrt(np.mean(held[late] ** 2)) > 1e-2  # still sounding, held by the pedal
    assert np.abs(plain[late]).max() < 1e-5  # released without it
    f = hz(LOW) * 2 ** (2 / 12)
    assert abs(cents(estimate_f0(held[int(0.3 * SR):SR], SR, f, harmonics=2), f)) < 1.0

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))
    ticks = [round(at / SR * 960) for at, _ in events]  # 960 ticks per second at 120 bpm
    last = 0
    for (_, data), tick in zip(events, ticks, strict=True):
        track.append(mido.Message.from_bytes(list(data), time=tick - last))
        last = tick
    path = tmp_path / "mpe.mid"
    song.save(str(path))
    from_file = midi_file_events(path, SR)
    assert [(a, bytes(d)) for a, d in from_file] == [(a, bytes(d)) for a, d in events]
    again = Synth(patch_from_text(text), SR, 4096).process(SR, from_file)
    assert np.array_equal(again, held)
