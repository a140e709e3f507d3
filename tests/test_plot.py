"""`spikesynth plot`: the picture's content (states, raster, harmonics) and the command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from spikesynth.patch import PATCH_DIR, load_patch
from spikesynth.plot import build_figure, harmonics, voice_data

CLI = [sys.executable, "-m", "spikesynth.cli"]


def _collections(ax, kind):
    return [c for c in ax.collections if type(c).__name__ == kind]


def test_spiking_voice_figure_shows_states_raster_and_harmonics():
    data = voice_data(load_patch(None), note=57, seconds=0.5)
    fig = build_figure(data)
    trace, raster, spectrum, twin = fig.axes
    # The three states are shaded (on the twin axis, under the curves) with their names.
    shading = _collections(twin, "BrokenBarHCollection") or _collections(twin, "PolyCollection")
    assert {c.get_label() for c in shading} >= {"RESTING", "FIRING", "REFRACTORY"}
    # The raster shows every spike inside the window: one event per FIRING onset.
    window = data["window"]
    onsets = data["spike_trains"][0]
    events = _collections(raster, "EventCollection")
    assert len(events) == 1
    assert len(events[0].get_positions()) == int(np.sum(onsets < window))
    # The measured rate is the note's (220 Hz), as the closed form says.
    assert data["rate"] == pytest.approx(220.0, rel=1e-3)
    assert data["rate_theory"] == pytest.approx(220.0, rel=1e-9)
    # One dashed marker per harmonic of 220 Hz below the spectrum's upper edge (at most 40).
    marks = [c for c in spectrum.collections if c.get_gid() == "harmonics"]
    assert len(marks) == 1
    assert len(harmonics(220.0, 20000.0)) == 90
    segments = marks[0].get_segments()
    assert len(segments) == 40
    np.testing.assert_allclose([seg[0][0] for seg in segments], 220.0 * np.arange(1, 41))
    # The spectrum's strongest lines are harmonics of the note (the spring shapes which).
    level = data["level"].copy()
    for _ in range(5):
        k = int(np.argmax(level))
        f = data["freqs"][k]
        assert abs(f / 220.0 - round(f / 220.0)) * 220.0 < 2.0
        level[max(k - 20, 0):k + 20] = -300.0


def test_current_below_rheobase_gives_an_empty_raster():
    patch = load_patch(None)
    data = voice_data(patch, note=60, seconds=0.3, current=0.9 * patch["membrane.threshold_high"])
    assert sum(len(s) for s in data["spike_trains"]) == 0
    assert data["rate"] is None and data["f0"] is None
    fig = build_figure(data)
    assert len(_collections(fig.axes[1], "EventCollection")[0].get_positions()) == 0
    assert any("silent" in t.get_text() for t in fig.axes[2].texts)


def test_network_figure_has_a_raster_row_per_neuron():
    patch = load_patch(PATCH_DIR / "sync_ring.yaml")
    data = voice_data(patch, note=48, seconds=0.5)
    assert data["neuron_names"] == [f"r{j}" for j in range(8)]
    assert all(len(s) > 3 for s in data["spike_trains"])
    fig = build_figure(data)
    assert len(_collections(fig.axes[1], "EventCollection")) == 8


def test_plot_command_writes_a_png(tmp_path):
    out = tmp_path / "voice.png"
    r = subprocess.run([*CLI, "plot", "patches/izhikevich_rs.yaml", "-o", str(out),
                        "--note", "C3", "--seconds", "0.5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(out).shape
    assert (width, height) == (1100, 990)  # 10 x 9 in at 110 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["voice.png"]  # no temporary left


@pytest.mark.parametrize("args, words", [
    (["plot", "nope.yaml", "-o", "x.png"], "no such patch file"),
    (["plot", "-o", "x.png", "--note", "Q9"], "bad pitch"),
    (["plot", "-o", "x.wav"], "unknown image extension"),
    (["plot", "-o", "x.png", "--seconds", "1000"], "--seconds"),
])
def test_plot_user_errors_are_clear(tmp_path, args, words):
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1
    assert words in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_it_says_how_to_get_it(tmp_path):
    script = ("import sys; sys.modules['matplotlib'] = None\n"
              "from spikesynth.cli import main\n"
              f"sys.exit(main(['plot', '-o', {str(tmp_path / 'x.png')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 1
    assert "pip install 'spikesynth[plot]'" in r.stderr and "Traceback" not in r.stderr
