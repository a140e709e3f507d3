"""`spikesynth listen`: npz fields, picture, several taus, one-line errors, atomic output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf

CLI = [sys.executable, "-m", "spikesynth.cli"]


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)


def test_listen_writes_npz_and_png(tmp_path):
    sr = 16000
    t = np.arange(sr // 2) / sr
    wav = tmp_path / "tone.flac"
    sf.write(wav, np.stack([0.1 * np.sin(2 * np.pi * 1000 * t)] * 2, axis=1), sr)
    r = run("listen", wav, "-o", tmp_path / "out", "--tau-ms", "2,10,50", "--channels", "32")
    assert r.returncode == 0, r.stderr
    data = np.load(tmp_path / "out.npz")
    for key in ("spike_times", "spike_channels", "cf_hz", "surface_continuous",
                "surface_spikes", "frame_rate"):
        assert key in data
    assert data["cf_hz"].shape == (32,)
    assert data["surface_spikes"].shape == (3, 32, int(0.5 * data["frame_rate"]))
    assert np.allclose(data["tau_s"], [0.002, 0.01, 0.05])
    best = np.bincount(data["spike_channels"], minlength=32).argmax()
    assert abs(data["cf_hz"][best] - 1000) < 133  # within 1 ERB of the tone
    png = (tmp_path / "out.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*part"))  # no temporary left behind


def test_listen_errors_are_one_line(tmp_path):
    for args, needle in (
        ((tmp_path / "missing.wav", "-o", tmp_path / "x"), "no such audio file"),
        ((__file__, "-o", tmp_path / "x"), "not a readable audio file"),
        ((tmp_path, "-o", tmp_path / "x"), "is a directory"),
    ):
        r = run("listen", *args)
        assert r.returncode == 1
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(800), 8000)
    r = run("listen", wav, "-o", tmp_path / "nofolder" / "x")
    assert r.returncode == 1 and "no such folder" in r.stderr
    r = run("listen", wav, "-o", tmp_path / "x", "--fmax", "6000")
    assert r.returncode == 1 and "fmax_hz" in r.stderr and "Traceback" not in r.stderr
    r = run("listen", wav, "-o", tmp_path / "x", "--tau-ms", "0,x")
    assert r.returncode == 2 and "tau-ms" in r.stderr
