"""library, stems and sweep: on a real Dask cluster (a ``dask scheduler`` and two ``dask worker``
processes started here on 127.0.0.1), with a worker killed mid-batch; and in one process.

Pitch, centroid and sums are measured from the files written, never from the engine's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from daskcluster import START_TIMEOUT_S, DaskProcesses

from spikesynth import Synth, load_patch
from spikesynth.analysis import cents, estimate_f0, spectral_centroid
from spikesynth.batch import (
    BatchError,
    DaskRunner,
    InProcessRunner,
    RenderSettings,
    _check_written,
    chunk_size,
    parse_param,
    render_library,
    render_stems,
    render_sweep,
    runners,
    warm_up,
)
from spikesynth.cli import main
from spikesynth.engine import CEILING
from spikesynth.offline import Note, note_events, render_to_file
from spikesynth.patch import DEFAULT_PATCH, PATCH_DIR
from spikesynth.sfz import regions_from_sfz

SR = 22050
SETTINGS = RenderSettings(samplerate=SR, length_s=0.5)
NOTES = list(range(36, 85, 8))  # 36, 44, ... 84
VELOCITIES = [50, 127]


def hz(note, a4=440.0):
    return a4 * 2.0 ** ((note - 69) / 12.0)


def wav_files(folder):
    return sorted(p.name for p in Path(folder).glob("*.wav"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    warm_up()  # compile into the numba cache once, here, so the workers only load it
    procs = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        procs.start_scheduler()
        procs.start_worker("w0")
        procs.start_worker("w1")
        yield procs
    finally:
        for name in ("scheduler", *procs.workers):
            print(f"--- {name} log (end) ---\n{procs.log(name)}")
        procs.stop()


@pytest.fixture(scope="module")
def runner(cluster):
    r = DaskRunner(scheduler=cluster.address, connect_timeout=START_TIMEOUT_S)
    r.client.wait_for_workers(2, timeout=START_TIMEOUT_S)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def library(cluster, runner, tmp_path_factory):
    """The default patch's library rendered on the cluster, one worker killed mid-batch; and
    the same library rendered in this process."""
    out = tmp_path_factory.mktemp("library")
    killed = {}

    def kill_a_busy_worker(path):
        if killed:
            return
        busy = {a: keys for a, keys in runner.client.processing().items() if keys}
        if not busy:
            return  # at the next result
        victim, keys = next(iter(busy.items()))
        pid = runner.client.run(os.getpid, workers=[victim])[victim]
        killed.update(address=victim, keys=list(keys), pid=pid, after=path.name)
        cluster.kill_pid(pid)

    report = render_library([DEFAULT_PATCH], out, NOTES, VELOCITIES, SETTINGS, runner,
                            quiet=True, on_result=kill_a_busy_worker)
    workers_after = set(runner.client.scheduler_info()["workers"])
    reference = tmp_path_factory.mktemp("reference")
    with InProcessRunner() as local:
        ref_report = render_library([DEFAULT_PATCH], reference, NOTES, VELOCITIES, SETTINGS,
                                    local, quiet=True)
    # Later tests render in parallel again: a fresh worker replaces the lost one.
    cluster.start_worker("w2")
    runner.client.wait_for_workers(2, timeout=START_TIMEOUT_S)
    return {"out": out, "report": report, "killed": killed, "workers_after": workers_after,
            "reference": reference, "ref_report": ref_report}


def test_each_worker_warmed_up_once_and_the_cli_uses_the_cluster(cluster, runner, library,
                                                                 tmp_path):
    # the worker plugin ran on every worker, the replacement one included
    warm = runner.client.run(lambda dask_worker: dask_worker.spikesynth_warm_up_s)
    assert len(warm) == 2 and all(isinstance(v, float) and v > 0 for v in warm.values())
    out = tmp_path / "cli"
    assert main(["library", str(DEFAULT_PATCH), "-o", str(out), "--notes", "60:72:12",
                 "--velocities", "100", "--length", "0.3", "--samplerate", str(SR),
                 "--scheduler", cluster.address, "-q"]) == 0
    assert wav_files(out / "default") == ["060_v100.wav", "072_v100.wav"]


def test_a_worker_lost_mid_batch_loses_nothing_and_files_match_one_process(library):
    killed = library["killed"]
    assert killed, "no worker was busy after any result: nothing was killed"
    assert killed["keys"], "the killed worker had a task in hand"
    assert killed["address"] not in library["workers_after"]  # it really was lost
    out = library["out"] / "default"
    ref = library["reference"] / "default"
    expected = sorted(f"{n:03d}_v{v:03d}.wav" for n in NOTES for v in VELOCITIES)
    assert wav_files(out) == expected
    assert len(library["report"].rendered) == len(expected)
    for name in expected:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not list(library["out"].rglob("*.part"))  # no temporary file left behind
    # The same note through the ordinary render path gives the same file.
    single = library["out"].parent / "single_060.wav"
    render_to_file(load_patch(None), single, note_events([Note(60, 127, 0.0, 0.5)], SR),
                   samplerate=SR, subtype="PCM_24")
    assert single.read_bytes() == (out / "060_v127.wav").read_bytes()
    # The manifest's features agree across the two runs.
    a = json.loads((out / "manifest.json").read_text())["samples"]
    b = json.loads((ref / "manifest.json").read_text())["samples"]
    assert a == b


def test_sfz_covers_every_key_and_velocity_and_each_sample_is_in_tune(library):
    sfz = library["out"] / "default.sfz"
    regions = regions_from_sfz(sfz.read_text(), str(sfz))
    assert len(regions) == len(NOTES) * len(VELOCITIES)
    layers = sorted({r.velocities for r in regions})
    covered = [v for lo, hi in layers for v in range(lo, hi + 1)]
    assert covered == list(range(128))  # velocity layers: no gap, no overlap
    for layer in layers:
        keys = sorted((r for r in regions if r.velocities == layer), key=lambda r: r.keys)
        covered = [k for r in keys for k in range(r.keys.lo, r.keys.hi + 1)]
        assert covered == list(range(128)), layer  # every key exactly once in the layer
        assert sorted(r.pitch_keycenter for r in keys) == NOTES
        for r in keys:
            assert r.keys.lo <= r.pitch_keycenter <= r.keys.hi
    manifest = json.loads((library["out"] / "default" / "manifest.json").read_text())
    by_file = {e["file"]: e for e in manifest["samples"]}
    offsets = re.findall(r"(?m)^offset=(\d+)$", sfz.read_text())
    assert offsets == [str(Synth(load_patch(None), SR, 64).latency)]
    offset = int(offsets[0])
    for r in regions:
        path = sfz.parent / r.sample
        assert not Path(r.sample).is_absolute() and path.is_file(), r.sample
        audio, sr = sf.read(path, dtype="float64")
        assert sr == SR
        held = audio[int(0.1 * SR):int(0.5 * SR)]
        f0 = estimate_f0(held, SR, hz(r.pitch_keycenter))
        assert abs(cents(f0, hz(r.pitch_keycenter))) < 1.0, (r.sample, f0)
        # the release tail is in the sample: it lasts past the note-off
        assert len(audio) > int(0.55 * SR)
        # the global offset skips exactly the master's look-ahead delay: silence before it,
        # the note's attack right after it
        assert not audio[:offset].any() and np.abs(audio[offset:offset + SR // 100]).max() > 0
        entry = by_file[Path(r.sample).name]
        assert abs(cents(entry["f0_hz"], f0)) < 0.01
        assert entry["velocity"] in range(r.velocities.lo, r.velocities.hi + 1)
        assert entry["frames"] == len(audio)
        assert np.isclose(entry["peak_dbfs"], 20 * np.log10(np.abs(audio).max()), atol=1e-3)


def test_rerun_renders_exactly_the_deleted_files(library, runner, tmp_path):
    out = tmp_path / "lib"
    shutil.copytree(library["out"], out)
    folder = out / "default"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.wav")}
    gone = ["044_v050.wav", "076_v127.wav"]
    originals = {name: (folder / name).read_bytes() for name in gone}
    for name in gone:
        (folder / name).unlink()
    report = render_library([DEFAULT_PATCH], out, NOTES, VELOCITIES, SETTINGS, runner,
                            quiet=True)
    assert sorted(p.name for p in report.rendered) == sorted(gone)
    assert report.up_to_date == len(before) - 2
    for name, stamp in before.items():
        path = folder / name
        if name in gone:
            assert path.read_bytes() == originals[name]
        else:
            assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp  # untouched
    # A damaged file is out of date too, and so is everything after the patch changes.
    with open(folder / "052_v050.wav", "r+b") as f:
        f.seek(200)  # the first frames are silence (the master's look-ahead): not zeros
        f.write(b"\x7f\x7f\x7f\x7f")
    report = render_library([DEFAULT_PATCH], out, NOTES, VELOCITIES, SETTINGS, runner,
                            quiet=True)
    assert [p.name for p in report.rendered] == ["052_v050.wav"]


def test_workers_write_into_a_shared_folder_byte_identical(library, cluster, tmp_path):
    # The workers are processes of this machine, so tmp_path is a folder they share.
    out = tmp_path / "shared"
    assert main(["library", str(DEFAULT_PATCH), "-o", str(out), "--notes", "36:84:8",
                 "--velocities", "50,127", "--length", str(SETTINGS.length_s),
                 "--samplerate", str(SR), "--scheduler", cluster.address,
                 "--workers-write", "-q"]) == 0
    ref = library["reference"] / "default"
    names = wav_files(ref)
    assert wav_files(out / "default") == names
    for name in names:
        assert (out / "default" / name).read_bytes() == (ref / name).read_bytes(), name
    manifest = json.loads((out / "default" / "manifest.json").read_text())
    for entry in manifest["samples"]:  # the sizes and hashes the workers reported are true
        data = (out / "default" / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert not list(out.rglob("*.part"))
    # A folder the client cannot see (not shared) is a clear error, not a silent gap.
    with pytest.raises(BatchError, match="shared by every worker"):
        _check_written(tmp_path / "nowhere.wav", 1234)


def test_tasks_of_several_items_come_back_in_place(runner):
    jobs = list(range(-150, 150, 3))
    size = chunk_size(len(jobs), runner.workers)
    assert size > 1  # the chunked path is the one exercised
    got = dict(runner.map(abs, jobs))
    assert got == {i: abs(j) for i, j in enumerate(jobs)}
    assert chunk_size(6000, 2) == 8 and chunk_size(10, 2) == 1


def test_changed_patch_or_settings_rerender_everything(tmp_path):
    patch = tmp_path / "tone.yaml"
    patch.write_text(DEFAULT_PATCH.read_text())
    with InProcessRunner() as local:
        args = ([patch], tmp_path / "out", [48, 60], [100])
        first = render_library(*args, SETTINGS, local, quiet=True)
        again = render_library(*args, SETTINGS, local, quiet=True)
        patch.write_text(re.sub(r"(?m)^gain_db:.*$", "gain_db: -3.0", DEFAULT_PATCH.read_text()))
        edited = render_library(*args, SETTINGS, local, quiet=True)
        longer = render_library(*args, SETTINGS._replace(length_s=0.6), local, quiet=True)
    assert (len(first.rendered), len(again.rendered)) == (2, 0)
    assert len(edited.rendered) == 2 and len(longer.rendered) == 2


def test_an_up_to_date_library_starts_no_cluster(tmp_path, capsys, monkeypatch):
    lib = ["library", str(DEFAULT_PATCH), "-o", str(tmp_path / "lib"), "--notes", "60:60",
           "--velocities", "100", "--length", "0.2", "--samplerate", str(SR)]
    assert main([*lib, "--workers", "0"]) == 0
    assert "rendering in this process" in capsys.readouterr().err

    def no_cluster(**kwargs):
        raise AssertionError("a cluster was started with nothing to render")

    monkeypatch.setattr(runners, "DaskRunner", no_cluster)
    assert main(lib) == 0  # the default: a local cluster, if there were work
    out, err = capsys.readouterr()
    assert "0 rendered, 1 up to date" in out and "rendering" not in err


def test_a_library_leaves_out_patches_that_listen(tmp_path):
    # Without an input a listening patch's samples would be silence, 60 s each (its channel
    # voices never end): left out and reported; a library of listening patches only is refused.
    listening = [PATCH_DIR / "ear_resynth.yaml", PATCH_DIR / "ear_vocoder.yaml"]
    with InProcessRunner() as local:
        report = render_library([*listening, DEFAULT_PATCH], tmp_path / "out", [60], [100],
                                SETTINGS, local, quiet=True)
        assert report.skipped == tuple(str(p) for p in listening)
        assert [p.name for p in report.instruments] == ["default.sfz"]
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["default",
                                                                         "default.sfz"]
        with pytest.raises(BatchError, match="every patch listens"):
            render_library(listening, tmp_path / "none", [60], [100], SETTINGS, local,
                           quiet=True)


def test_a_library_rerun_in_another_format_deletes_only_its_own_earlier_samples(tmp_path,
                                                                                capsys):
    """A rerun with another format (or fewer notes) leaves no orphans beside the new
    instrument, once it is complete: the earlier samples still exactly as the library wrote
    them are deleted; a file edited since is kept. Interrupted before that, they stay (the
    old instrument still plays) and the manifest remembers them for the next run."""
    out = tmp_path / "lib"
    folder = out / "default"
    base = ["library", str(DEFAULT_PATCH), "-o", str(out), "--velocities", "100",
            "--length", "0.2", "--samplerate", str(SR), "--workers", "0"]
    assert main([*base, "--notes", "60,64,67"]) == 0
    wavs = sorted(p.name for p in folder.glob("*.wav"))
    assert wavs == ["060_v100.wav", "064_v100.wav", "067_v100.wav"]
    with open(folder / "064_v100.wav", "r+b") as f:  # the user's own edit
        f.seek(300)
        f.write(b"\x01\x02\x03\x04")
    capsys.readouterr()

    class Interrupt(Exception):
        pass

    def stop_after_one(path):
        raise Interrupt

    with InProcessRunner() as local, pytest.raises(Interrupt):
        render_library([DEFAULT_PATCH], out, [60, 64], [100],
                       RenderSettings(samplerate=SR, length_s=0.2, format="flac"), local,
                       quiet=True, on_result=stop_after_one)
    assert sorted(p.name for p in folder.glob("*.wav")) == wavs  # nothing deleted yet
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(e["file"] for e in manifest["stale"]) == wavs
    assert main([*base, "--notes", "60,64", "--format", "flac"]) == 0
    assert "2 earlier samples no longer in it deleted" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["060_v100.flac", "064_v100.flac",
                                                       "064_v100.wav", "manifest.json"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "stale" not in manifest
    assert sorted(e["file"] for e in manifest["samples"]) == ["060_v100.flac",
                                                             "064_v100.flac"]
    assert {r.sample for r in regions_from_sfz((out / "default.sfz").read_text())} == {
        "default/060_v100.flac", "default/064_v100.flac"}


def _song(path, same_notes=False):
    """Two named tracks (and a tempo track): a bass line and a melody, overlapping."""
    midi = mido.MidiFile(ticks_per_beat=480)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=400000, time=0)])
    midi.tracks.append(tempo)
    lines = {"bass": [36, 43, 41], "melody": [72, 76, 79]}
    if same_notes:
        lines["melody"] = lines["bass"]
    for channel, (name, notes) in enumerate(lines.items()):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        for i, note in enumerate(notes):
            start = 0 if i == 0 else 60
            track.append(mido.Message("note_on", note=note, velocity=110, channel=channel,
                                      time=start))
            track.append(mido.Message("note_off", note=note, channel=channel, time=300))
        midi.tracks.append(track)
    midi.save(path)
    return path


def _read(path):
    audio, _ = sf.read(path, dtype="float64", always_2d=True)
    return audio


def test_stems_add_up_to_the_mix(runner, tmp_path):
    song = _song(tmp_path / "song.mid")
    report = render_stems(song, tmp_path / "stems", runner,
                          tracks={"bass": PATCH_DIR / "bass.yaml", "2": PATCH_DIR / "lead.yaml"},
                          samplerate=SR, subtype="FLOAT")
    names = [name for name, _, _ in report.stems]
    assert names == ["bass", "melody"]
    stems = [_read(path) for _, _, path in report.stems]
    mix = _read(report.mix)
    assert all(len(s) == len(mix) == report.frames for s in stems)  # sample-aligned
    assert all(np.abs(s).max() > 0.01 for s in stems)
    total = np.sum(stems, axis=0)
    assert np.max(np.abs(total - mix)) <= 2 * np.finfo(np.float32).eps * np.abs(mix).max()
    # each stem is its own patch: the melody is far brighter than the bass
    assert spectral_centroid(stems[1], SR) > 2 * spectral_centroid(stems[0], SR)
    assert report.headroom_db == 0.0
    doc = json.loads((tmp_path / "stems" / "stems.json").read_text())
    assert [s["file"] for s in doc["stems"]] == [p.name for _, _, p in report.stems]


def test_stems_of_one_patch_mix_to_the_song_rendered_whole(tmp_path):
    """One patch for both tracks: the mix is the song as one synth renders it (render --midi):
    the stems are sample-aligned to the song's time."""
    song = _song(tmp_path / "song.mid")
    with InProcessRunner() as local:
        report = render_stems(song, tmp_path / "stems", local, samplerate=SR, subtype="FLOAT")
    mix = _read(report.mix)
    whole = tmp_path / "whole.wav"
    assert main(["render", "--midi", str(song), "-o", str(whole), "--subtype", "FLOAT",
                 "--samplerate", str(SR), "-q"]) == 0
    single = _read(whole)
    assert np.abs(single).max() < 0.9 * CEILING  # the single synth's limiter never acted
    n = min(len(single), len(mix))
    assert abs(len(single) - len(mix)) < SR // 10  # both end at silence
    assert np.max(np.abs(single[:n] - mix[:n])) < 1e-5
    assert np.max(np.abs(single[n:]), initial=0) < 1e-4 and np.max(np.abs(mix[n:]),
                                                                    initial=0) < 1e-4


def test_stems_over_the_ceiling_share_one_headroom_gain(tmp_path):
    """Both tracks in unison, loud: their sum would pass the ceiling, so every stem and the
    mix get the same gain; the stems still add up to the mix, which stays under it."""
    song = _song(tmp_path / "song.mid", same_notes=True)
    loud = tmp_path / "loud.yaml"
    text = re.sub(r"(?m)^gain_db:.*$", "gain_db: 3.0", DEFAULT_PATCH.read_text())
    loud.write_text(re.sub(r"(?m)^stereo_spread:.*$", "stereo_spread: 0.0", text))
    with InProcessRunner() as local:
        report = render_stems(song, tmp_path / "stems", local, default_patch=loud,
                              samplerate=SR, subtype="FLOAT")
    stems = [_read(path) for _, _, path in report.stems]
    mix = _read(report.mix)
    assert report.headroom_db < -0.5
    assert np.abs(mix).max() <= CEILING
    assert np.max(np.abs(np.sum(stems, axis=0) - mix)) <= 2 * np.finfo(np.float32).eps
    assert all(v == 0 for v in report.limited.values())  # no track's own limiter acted
    # unscaled, each stem alone is under the ceiling; together they were not
    gain = 10 ** (report.headroom_db / 20)
    assert all(np.abs(s).max() / gain < CEILING for s in stems)
    assert np.abs(mix).max() / gain > CEILING


def test_sweep_grid_features_and_contact_sheet(runner, tmp_path):
    axes = [parse_param("spring.frequency_hz=500:4000:4"), parse_param("spring.damping=0.2:0.4:2")]
    settings = RenderSettings(samplerate=SR, length_s=0.4)
    report = render_sweep(DEFAULT_PATCH, tmp_path / "sweep", axes, runner, note=48,
                          settings=settings)
    rows = (tmp_path / "sweep" / "features.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header == ["file", "spring.frequency_hz", "spring.damping", "f0_hz", "centroid_hz",
                      "loudness_lufs", "spike_rate_hz", "inharmonic_db"]
    table = [dict(zip(header, r.split(","), strict=True)) for r in rows[1:]]
    assert len(table) == 8 == report.rows
    grid = [(float(t["spring.frequency_hz"]), float(t["spring.damping"])) for t in table]
    expected = [(f, d) for d in (0.2, 0.4) for f in np.linspace(500, 4000, 4)]
    assert np.allclose(grid, expected, rtol=1e-5)  # the first axis varies fastest
    for t in table:
        path = tmp_path / "sweep" / t["file"]
        audio = _read(path)
        held = audio[int(0.1 * SR):int(0.4 * SR)]
        # the CSV's centroid is the audio's; and the pitch stays the note's
        assert np.isclose(float(t["centroid_hz"]), spectral_centroid(held, SR), rtol=1e-4)
        assert abs(cents(float(t["f0_hz"]), hz(48))) < 1.0
        assert np.isclose(float(t["spike_rate_hz"]), hz(48), rtol=0.05)
        assert -60 < float(t["loudness_lufs"]) < 0
    for damping in (0.2, 0.4):
        centroids = [float(t["centroid_hz"]) for t in table
                     if float(t["spring.damping"]) == damping]
        assert all(np.diff(centroids) > 0), centroids  # brighter as the spring rises
    png = tmp_path / "sweep" / "contact_sheet.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert width > height  # 4 columns by 2 rows


def test_without_dask_it_runs_in_one_process_and_says_how_to_parallelise(tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
            "from spikesynth.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    out = tmp_path / "lib"
    args = [sys.executable, "-c", code, "library", str(DEFAULT_PATCH), "-o", str(out),
            "--notes", "60:72:12", "--velocities", "100", "--length", "0.3",
            "--samplerate", str(SR)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pip install 'spikesynth[batch]'" in done.stderr
    assert "in this process" in done.stderr
    assert wav_files(out / "default") == ["060_v100.wav", "072_v100.wav"]
    assert (out / "default.sfz").is_file()
    done = subprocess.run([*args, "--scheduler", "tcp://127.0.0.1:1"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "spikesynth: error: --scheduler needs dask: pip install 'spikesynth[batch]'"]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "-o", "X", "--param", "spring.nope=1:2:3"], "is not a numeric patch key"),
    (["sweep", "-o", "X", "--param", "spring.damping=0.1:2:3"], "spring.damping"),
    (["library", "P", "-o", "X", "--notes", "90:20"], "bad --notes"),
    (["library", "P", "-o", "X", "--velocities", "0,200"], "bad --velocities"),
    (["stems", "S.mid", "-o", "X", "--channel", "17=a.yaml"], "channel number 1-16"),
])
def test_bad_requests_are_one_line_errors(argv, message, tmp_path, capsys):
    argv = [str(DEFAULT_PATCH) if a == "P" else a for a in argv]
    argv = [str(tmp_path / a) if a in ("X", "S.mid") else a for a in argv]
    assert main([*argv, "--workers", "0", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "X").exists() or not any((tmp_path / "X").iterdir())


def test_interrupt_leaves_only_complete_files_and_the_rerun_resumes(tmp_path):
    """SIGINT (Ctrl-C) a library on a local Dask cluster: every file on disk is complete and
    recorded, none half-written; the rerun renders the rest."""
    out = tmp_path / "lib"
    args = [str(Path(sys.executable).with_name("spikesynth")), "library", str(DEFAULT_PATCH), "-o",
            str(out), "--notes", "24:96:2", "--velocities", "64,127", "--length", "0.5",
            "--samplerate", str(SR), "--workers", "1", "-q"]
    # SIGINT as a terminal's Ctrl-C gives it, even where this test runs with SIGINT ignored
    # (a background job), which a child would inherit.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = out / "default"
    try:
        t0 = time.monotonic()
        while not (folder.is_dir() and len(wav_files(folder)) >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < START_TIMEOUT_S, "no files appeared"
            time.sleep(0.05)  # polling the folder, not waiting for luck
        os.killpg(proc.pid, 2)  # Ctrl-C reaches the whole foreground process group
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    written = wav_files(folder)
    total = 37 * 2
    assert 3 <= len(written) < total
    assert not list(out.rglob("*.part"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(e["file"] for e in manifest["samples"]) == written  # every file recorded
    for name in written:
        sf.read(folder / name)  # complete and readable
    with InProcessRunner() as local:
        report = render_library([DEFAULT_PATCH], out, range(24, 97, 2), [64, 127],
                                RenderSettings(samplerate=SR, length_s=0.5), local, quiet=True)
    assert len(report.rendered) == total - len(written)
    assert report.up_to_date == len(written)
