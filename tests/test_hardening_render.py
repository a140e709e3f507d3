"""Hardened `render`: MIDI files that never crash, bounded renders, a full disk, stale parts,
controllers from the command line (pitch measured from the audio)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from audio_analysis import cents, estimate_f0
from fuzz_cases import smf

from spikesynth import cli, offline
from spikesynth.fileio import remove_stale_parts
from spikesynth.offline import RenderError, midi_file_events, release_hanging_notes
from spikesynth.patch import DEFAULT_PATCH
from spikesynth.smf import MidiFileError, read_midi_file

NOTE = [(0, b"\x90\x45\x64"), (480, b"\x80\x45\x00")]  # A3 for one quarter note


def write(tmp_path, data, name="f.mid"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ticks_running_status_and_tempo(tmp_path):
    track = [(0, b"\xff\x51\x03\x0f\x42\x40"),  # 1,000,000 us per quarter: 60 bpm
             (0, b"\x90\x3c\x64"), (480, b"\x3c\x00"),  # running status note-on velocity 0
             (0, b"\xff\x51\x03\x07\xa1\x20"),  # 120 bpm
             (0, b"\x90\x3e\x64"), (480, b"\x80\x3e\x00")]
    data = read_midi_file(write(tmp_path, smf([track])))
    times = [round(t, 6) for t, _ in data.events]
    assert times == [0.0, 1.0, 1.0, 1.5]
    assert data.events[1][1] == b"\x90\x3c\x00"


@pytest.mark.parametrize("fps, code", [(24, 0xE8), (25, 0xE7), (30, 0xE2)])
def test_smpte_division(tmp_path, fps, code):
    division = (code << 8) | 40  # fps frames x 40 ticks per frame
    track = [(0, b"\x90\x45\x64"), (fps * 40 // 2, b"\x80\x45\x00")]  # half a second
    data = read_midi_file(write(tmp_path, smf([track], division=division)))
    assert abs(data.events[1][0] - 0.5) < 1e-9


def test_format_2_plays_tracks_in_sequence(tmp_path):
    data = read_midi_file(write(tmp_path, smf([NOTE, NOTE, NOTE], fmt=2)))
    ons = [t for t, m in data.events if m[0] == 0x90]
    assert np.allclose(ons, [0.0, 0.5, 1.0])
    merged = read_midi_file(write(tmp_path, smf([NOTE, NOTE], fmt=1), "g.mid"))
    assert np.allclose([t for t, m in merged.events if m[0] == 0x90], [0.0, 0.0])


def test_broken_meta_events_are_skipped_and_counted(tmp_path):
    track = [(0, b"\xff\x59\x02\x40\x05"),  # key signature with 64 sharps
             (0, b"\xff\x59\x01\x00"),  # key signature of the wrong length
             (0, b"\xff\x51\x03\x00\x00\x00"),  # tempo 0
             (0, b"\xff\x58\x02\x04\x02"),  # time signature of the wrong length
             *NOTE]
    path = write(tmp_path, smf([track]))
    data = read_midi_file(path)
    assert data.broken_meta == 4 and len(data.events) == 2
    heard = []
    midi_file_events(path, 48000, warn=heard.append)
    assert heard == [f"{path}: skipped 4 broken meta event(s)"]


@pytest.mark.parametrize("data, words", [
    (smf([NOTE], division=0), "time division 0"),
    (smf([NOTE], division=0xE700), "impossible SMPTE"),
    (smf([NOTE], division=0x8028), "impossible SMPTE"),
    (smf([NOTE], fmt=3), "unknown MIDI file format 3"),
    (smf([NOTE, NOTE], fmt=0), "one track"),
    (smf([]), "no tracks"),
    (b"MThd\x00\x00\x00\x02\x00\x00", "not a MIDI file"),
    (b"RIFF" + bytes(40), "not a MIDI file"),
    (b"MThd\xff\xff\xff\xff" + bytes(10), "header length"),
    (smf([[(0, b"\x40\x40")]]), "data byte with no status"),
    (smf([[(0, b"\xf4")]]), "system message 0xF4"),
    (smf([[(0xFFFFFFF, b"\x90\x40\x40")]], division=1), "longer than the 600 s limit"),
    (smf([[(0, b"\xff\x51\x03\xff\xff\xff"), (0x0FFFFFFF, b"\x90\x40\x40")]]), "longer than"),
    (smf([[]])[:14] + b"MTrk\x00\x00\x00\x08\x8f\xff\xff\xff\x7f\x90\x40\x40",
     "longer than 4 bytes"),
])
def test_impossible_files_are_one_clear_error(tmp_path, data, words):
    path = write(tmp_path, data)
    with pytest.raises(MidiFileError, match=words) as e:
        read_midi_file(path, max_seconds=600)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_truncated_track_plays_up_to_the_cut(tmp_path):
    whole = smf([[(0, b"\x90\x40\x40"), (480, b"\x80\x40\x00"), (0, b"\x90\x41\x40")]])
    data = read_midi_file(write(tmp_path, whole[:-7]))
    assert data.truncated_tracks == 1 and len(data.events) == 2


def test_cli_midi_failures_exit_1_without_traceback(tmp_path, capsys):
    bad = write(tmp_path, smf([NOTE], division=0))
    assert cli.main(["render", "--midi", str(bad), "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "division 0" in err
    assert not (tmp_path / "x.wav").exists()


def test_hanging_notes_released_with_a_warning(tmp_path, capsys):
    events, n = release_hanging_notes([(0, b"\x90\x40\x40"), (10, b"\x91\x41\x40"),
                                       (20, b"\x81\x41\x00"), (30, b"\xb2\x40\x7f")])
    assert n == 1 and events[-2:] == [(30, b"\x80\x40\x00"), (30, b"\xb2\x40\x00")]
    path = write(tmp_path, smf([[(0, b"\x90\x45\x64"), (480, b"\x90\x47\x64")]]))
    out = tmp_path / "h.wav"
    assert cli.main(["render", "--midi", str(path), "-o", str(out), "-q"]) == 0
    assert "2 note(s) never end" in capsys.readouterr().err
    assert sf.info(out).duration < 0.5 + offline.MAX_AUTO_TAIL_S


def test_max_seconds(tmp_path, capsys):
    out = tmp_path / "long.wav"
    assert cli.main(["render", "--note", "60:100:0:1e9", "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "longer than the 600 s limit" in err and "--max-seconds" in err
    assert list(tmp_path.iterdir()) == []
    assert cli.main(["render", "--note", "60:100:0:2", "--max-seconds", "1", "-o",
                     str(out), "-q"]) == 1
    assert cli.main(["render", "--note", "60:100:0:0.2", "--max-seconds", "0.5", "-o",
                     str(out), "-q"]) == 0
    assert sf.info(out).duration <= 0.5


def test_free_space_checked_before_writing(tmp_path, capsys, monkeypatch):
    class Usage:
        total, used, free = 10**9, 10**9 - 5000, 5000

    monkeypatch.setattr(offline.shutil, "disk_usage", lambda folder: Usage)
    out = tmp_path / "full.wav"
    assert cli.main(["render", "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "not enough free space" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sf.SoundFile, "write", full)
    out = tmp_path / "x.wav"
    out.write_bytes(b"old")
    assert cli.main(["render", "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert err == f"spikesynth: error: {out}: the disk is full (nothing written)\n"
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_libsndfile_error_on_a_full_disk(tmp_path, capsys, monkeypatch):
    class Usage:
        total, used, free = 10**9, 10**9, 0

    def full(self, data):
        monkeypatch.setattr(offline.shutil, "disk_usage", lambda folder: Usage)
        raise sf.LibsndfileError(2, "Error writing: ")

    monkeypatch.setattr(sf.SoundFile, "write", full)
    assert cli.main(["render", "-o", str(tmp_path / "y.wav"), "-q"]) == 1
    assert "the disk is full" in capsys.readouterr().err


def test_stale_parts_of_dead_writers_are_removed(tmp_path):
    out = tmp_path / "a.wav"
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    host = socket.gethostname().replace(".", "_")
    stale = tmp_path / f".a.wav.{dead.pid}-{host}.x1y2.part"
    stale_old = tmp_path / f".a.wav.{dead.pid}.x1y2.part"  # the naming before hosts
    live = tmp_path / f".a.wav.{os.getppid()}-{host}.x1y2.part"
    # another machine's writer in a shared folder: its pid means nothing here
    remote = tmp_path / f".a.wav.{dead.pid}-elsewhere-{host}.x1y2.part"
    other = tmp_path / ".a.wav.abc123.part"  # not ours (no pid): left alone
    for p in (stale, stale_old, live, remote, other):
        p.write_bytes(b"partial")
    assert sorted(remove_stale_parts(out)) == sorted([stale, stale_old])
    stale.write_bytes(b"partial")
    assert cli.main(["render", "-o", str(out), "--note", "60:100:0:0.1", "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, remote.name, other.name, "a.wav"])


def _render(tmp_path, *args, name="c.wav"):
    out = tmp_path / name
    assert cli.main(["render", *args, "-o", str(out), "-q", "--subtype", "FLOAT"]) == 0
    audio, sr = sf.read(out)
    return audio.mean(axis=1), sr


def test_bend_from_the_command_line_measured(tmp_path):
    audio, sr = _render(tmp_path, "patches/default.yaml", "--note", "A3:100:0:1.5",
                        "--bend", "2", "--tail", "0")
    f0 = estimate_f0(audio[int(0.4 * sr):int(1.4 * sr)], sr, 247.0)
    assert abs(cents(f0, 220.0 * 2 ** (2 / 12))) < 3
    # a bend later in the note: the first half stays at 220 Hz, the second is bent down
    audio, sr = _render(tmp_path, "patches/default.yaml", "--note", "A3:100:0:2",
                        "--bend=-1:1.0", "--tail", "0", name="d.wav")
    assert abs(cents(estimate_f0(audio[int(0.3 * sr):int(0.95 * sr)], sr, 220.0),
                     220.0)) < 3
    assert abs(cents(estimate_f0(audio[int(1.2 * sr):int(1.9 * sr)], sr, 208.0),
                     220.0 * 2 ** (-1 / 12))) < 3


def test_mod_wheel_makes_class1_audible(tmp_path):
    # The wheel at 0 is no current (a plain --note plays the patch's own current).
    silent, sr = _render(tmp_path, "patches/class1.yaml", "--note", "C4:100:0:1",
                         "--cc", "1:0", "--tail", "0", name="s.wav")
    wheel, _ = _render(tmp_path, "patches/class1.yaml", "--note", "C4:100:0:1",
                       "--cc", "1:127", "--tail", "0", name="w.wav")
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    assert rms(wheel) > 10 * max(rms(silent), 1e-6)


@pytest.mark.parametrize("option, spec, words", [
    ("--cc", "1", "NUMBER:VALUE"), ("--cc", "128:0", "0-127"), ("--cc", "1:200", "0-127"),
    ("--cc", "1:2:-1", ">= 0"), ("--bend", "3", "at most 2 semitones"),
    ("--bend", "nan", "at most"), ("--pressure", "x", "whole number"),
    ("--pressure", "1:2:3", "VALUE[:TIME]"),
])
def test_controller_options_errors(tmp_path, capsys, option, spec, words):
    assert cli.main(["render", option, spec, "-o", str(tmp_path / "e.wav")]) == 1
    assert words in capsys.readouterr().err


def test_controller_events_encoding():
    ev = offline.controller_events(["7:100:0.5"], ["2", "-2"], ["90"], 2.0, 1000)
    assert ev == [(500, b"\xb0\x07\x64"), (0, b"\xe0\x7f\x7f"), (0, b"\xe0\x00\x00"),
                  (0, b"\xd0\x5a")]
    with pytest.raises(RenderError):
        offline.controller_events(bend=["1"], bend_range=0.5)


def test_times_agree_with_mido_on_valid_files(tmp_path):
    """An independent reader: mido's merged playback times for format 0 and 1 files."""
    import random

    import mido
    from fuzz_cases import base_midi

    rng = random.Random(5)
    checked = 0
    for case in range(60):
        data = base_midi(rng)
        if data[9] == 2:
            continue
        path = write(tmp_path, data, f"{case}.mid")
        theirs, t = [], 0.0
        for msg in mido.MidiFile(str(path)):
            t += msg.time
            if not msg.is_meta and msg.type != "sysex":
                theirs.append((t, bytes(msg.bytes())))
        ours = [(t, m) for t, m in read_midi_file(path).events if m[0] != 0xF0]  # SysEx apart
        assert len(ours) == len(theirs)
        assert sorted(m for _, m in ours) == sorted(m for _, m in theirs)
        assert np.allclose(sorted(t for t, _ in ours), sorted(t for t, _ in theirs), atol=1e-9)
        checked += 1
    assert checked > 20


def test_a_note_left_on_sounds_until_the_end_of_the_file(tmp_path, capsys):
    # C4, then E4 with no note-off, End of Track 2 s later: E4 is held to the file's end (it
    # was released at its own note-on, never heard), and render says so.
    track = [(0, b"\x90\x3c\x64"), (480, b"\x80\x3c\x00"), (0, b"\x90\x40\x64"),
             (1920, b"\xff\x2f\x00")]
    path = write(tmp_path, smf([track]))
    out = tmp_path / "held.wav"
    assert cli.main(["render", "--midi", str(path), "-o", str(out), "-q"]) == 0
    assert "1 note(s) never end: released at the end of the file" in capsys.readouterr().err
    audio, sr = sf.read(out, always_2d=True)
    assert len(audio) / sr > 2.5
    held = audio[int(1.0 * sr):int(2.4 * sr)].mean(axis=1)
    assert abs(cents(estimate_f0(held, sr, 329.63), 329.63)) < 5.0


def test_files_with_nothing_to_play_say_so(tmp_path, capsys):
    quiet = write(tmp_path, smf([[(0, b"\xb0\x07\x64")]]), "quiet.mid")
    assert cli.main(["render", "--midi", str(quiet), "-o", str(tmp_path / "q.wav"), "-q"]) == 0
    assert f"{quiet}: the file has no notes" in capsys.readouterr().err
    noise = write(tmp_path, bytes(range(256)) * 4, "noise.osc")
    assert cli.main(["render", "--osc-file", str(noise), "-o", str(tmp_path / "n.wav")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no readable OSC packet" in err
    assert not (tmp_path / "n.wav").exists()


def test_a_program_change_to_a_missing_program_is_said(tmp_path, capsys):
    folder = tmp_path / "programs"
    folder.mkdir()
    for name in ("a.yaml", "b.yaml"):
        (folder / name).write_text(DEFAULT_PATCH.read_text())
    track = [(0, b"\xc0\x63"), (0, b"\x90\x45\x64"), (480, b"\x80\x45\x00")]  # program 99
    path = write(tmp_path, smf([track]))
    assert cli.main(["render", str(folder / "a.yaml"), "--midi", str(path), "-o",
                     str(tmp_path / "p.wav"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "1 program change(s) to a program that does not exist" in err
    assert "there are 2" in err
