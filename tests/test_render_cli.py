"""`spikesynth render`: WAV output, note specs, MIDI files, determinism, atomic writes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import mido
import numpy as np
import pytest
import soundfile as sf
from audio_analysis import cents, estimate_f0

from spikesynth.master import master_latency
from spikesynth.offline import RenderError, parse_note, parse_pitch

CLI = [sys.executable, "-m", "spikesynth.cli"]


def run(*args, **kw):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, **kw)


def test_pitch_and_note_specs():
    assert parse_pitch("C4") == 60 and parse_pitch("A4") == 69 and parse_pitch("F#3") == 54
    assert parse_pitch("Bb2") == 46 and parse_pitch("0") == 0
    n = parse_note("A3:90:0.5:2")
    assert (n.pitch, n.velocity, n.start, n.duration) == (57, 90, 0.5, 2.0)
    assert parse_note("60").velocity == 100
    for bad in ("H4", "60:0", "60:200", "60:100:-1", "60:100:0:0", "1:2:3:4:5", "C4:x"):
        with pytest.raises(RenderError):
            parse_note(bad)


def test_render_wav_defaults_and_pitch(tmp_path):
    out = tmp_path / "a.wav"
    r = run("render", "patches/default.yaml", "-o", out, "--note", "A3:100:0.1:1.0", "-q")
    assert r.returncode == 0, r.stderr
    audio, sr = sf.read(out)
    info = sf.info(out)
    assert sr == 48000 and info.subtype == "PCM_24" and audio.shape[1] == 2
    assert 1.1 < len(audio) / sr < 3.0  # note end + release tail until silence
    assert np.abs(audio[: int(0.1 * sr) - 1]).max() == 0  # silent before the note's start
    f0 = estimate_f0(audio[int(0.4 * sr): int(1.1 * sr)], sr, 220.0)
    assert abs(cents(f0, 220.0)) < 1.0


def test_render_options_samplerate_subtype_tail(tmp_path):
    out = tmp_path / "b.wav"
    r = run("render", "-o", out, "--note", "C5:80:0:0.5", "--samplerate", 44100,
            "--subtype", "FLOAT", "--tail", 2.0, "-q")
    assert r.returncode == 0, r.stderr
    info = sf.info(out)
    assert info.samplerate == 44100 and info.subtype == "FLOAT"
    # The tail is whole: the master's look-ahead is flushed after it.
    assert info.frames == int(round(0.5 * 44100)) + 2 * 44100 + master_latency(44100)


def test_render_is_deterministic_bytes(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for f in (a, b):
        r = run("render", "patches/noisy.yaml", "-o", f, "--note", "C3:100:0:1",
                "--note", "G3:70:0.2:1", "--seed", 7, "-q")
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    c = tmp_path / "c.wav"
    run("render", "patches/noisy.yaml", "-o", c, "--note", "C3:100:0:1",
        "--note", "G3:70:0.2:1", "--seed", 8, "-q")
    assert c.read_bytes() != a.read_bytes()


def test_midi_file_with_tempo_change_channels_bend_cc(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 120 bpm
    tr.append(mido.Message("note_on", note=57, velocity=100, channel=0, time=0))
    tr.append(mido.Message("note_off", note=57, velocity=0, channel=0, time=960))  # 1.0 s
    tr.append(mido.MetaMessage("set_tempo", tempo=1000000, time=0))  # 60 bpm
    tr.append(mido.Message("pitchwheel", pitch=8191, channel=3, time=0))
    tr.append(mido.Message("control_change", control=74, value=64, channel=3, time=0))
    tr.append(mido.Message("note_on", note=69, velocity=100, channel=3, time=0))
    tr.append(mido.Message("note_off", note=69, velocity=0, channel=3, time=480))  # 1.0 s
    path = tmp_path / "song.mid"
    mid.save(path)
    out = tmp_path / "song.wav"
    r = run("render", "patches/default.yaml", "--midi", path, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    audio, sr = sf.read(out)
    # First note: A3 for 1 s at 120 bpm; second: A4 bent +2 semitones (channel 4), 1 s at 60 bpm.
    f1 = estimate_f0(audio[int(0.3 * sr): int(0.95 * sr)], sr, 220.0)
    bent = 440.0 * 2 ** (2 * (8191 / 8192) / 12)
    f2 = estimate_f0(audio[int(1.3 * sr): int(1.95 * sr)], sr, bent)
    assert abs(cents(f1, 220.0)) < 1 and abs(cents(f2, bent)) < 1
    assert 2.0 < len(audio) / sr < 3.5


@pytest.mark.parametrize("args, words", [
    (("render", "nope.yaml", "-o", "x.wav"), "no such patch file"),
    (("render", "-o", "x.wav", "--note", "Q9"), "bad pitch"),
    (("render", "-o", "x.wav", "--midi", "missing.mid"), "no such MIDI file"),
    (("render", "-o", "x.mp9"), "unknown audio extension"),
    (("render", "-o", "nodir/x.wav"), "no such folder"),
])
def test_render_user_errors_are_clear(tmp_path, args, words):
    r = run(*args, cwd=tmp_path)
    assert r.returncode != 0
    assert words in r.stderr and "Traceback" not in r.stderr
    assert not any(p.suffix == ".part" for p in tmp_path.iterdir())


def test_corrupt_midi_file(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x10\x00\x90")
    r = run("render", "--midi", bad, "-o", tmp_path / "x.wav")
    assert r.returncode == 1 and "MIDI file" in r.stderr and "Traceback" not in r.stderr


def test_interrupted_render_keeps_old_file_and_leaves_no_partial(tmp_path):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"precious earlier render")
    proc = subprocess.Popen([*CLI, "render", "patches/pad.yaml", "-o", str(out), "-q",
                             "--note", "C3:100:0:600", "--tail", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait (bounded) until the render has started writing its temporary file.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = [p for p in tmp_path.iterdir() if p.suffix == ".part"]
        if parts and parts[0].stat().st_size > 100_000:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    else:
        pytest.fail("render never started writing")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert out.read_bytes() == b"precious earlier render"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


def test_output_permissions_follow_umask(tmp_path):
    out = tmp_path / "perm.wav"
    r = run("render", "-o", out, "--note", "60:100:0:0.1", "--tail", "0", "-q")
    assert r.returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_render_works_without_portaudio_or_rtmidi(tmp_path):
    """sounddevice and rtmidi are imported lazily: a machine without them can still render."""
    out = tmp_path / "x.wav"
    script = (
        "import sys; sys.modules['sounddevice'] = None; sys.modules['rtmidi'] = None\n"
        "from spikesynth.cli import main\n"
        f"sys.exit(main(['render', '-o', {str(out)!r}, '--note', 'A4:100:0:0.2', '-q']))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sf.info(out).frames > 0


def test_sigterm_during_render_leaves_no_partial_file(tmp_path):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"earlier")
    proc = subprocess.Popen([*CLI, "render", "patches/pad.yaml", "-o", str(out), "-q",
                             "--note", "C3:100:0:600", "--tail", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.suffix == ".part" and p.stat().st_size > 100_000
                  for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.terminate()
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert out.read_bytes() == b"earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


@pytest.mark.parametrize("ext", ["wav", "aiff"])
def test_float_files_carry_no_wall_clock_so_the_same_samples_give_the_same_bytes(tmp_path, ext):
    """libsndfile stamps a float file's PEAK chunk with the time it was closed; both writers
    (streamed to a file, and made in memory for batches) zero that stamp, and the file still
    reads back sample for sample."""
    from spikesynth.offline import encode_audio, write_atomic

    audio = (0.5 * np.sin(np.arange(4800) / 7.0)[:, None] * [1.0, -0.5]).astype(np.float32)
    path = tmp_path / f"x.{ext}"
    write_atomic(path, 48000, "FLOAT", lambda sink: sink(audio))
    for data in (path.read_bytes(), encode_audio(audio, 48000, "FLOAT", ext)):
        at = data.find(b"PEAK")
        assert 0 <= at < data.find(b"data" if ext == "wav" else b"SSND")
        assert data[at + 12:at + 16] == bytes(4)  # the time stamp
        back, _ = sf.read(io.BytesIO(data), dtype="float32")
        assert np.array_equal(back, audio)
    assert path.read_bytes() == encode_audio(audio, 48000, "FLOAT", ext)
