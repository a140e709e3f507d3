"""A slow start says that it is compiling, and how long it took (spikesynth/startup.py)."""

from __future__ import annotations

import threading

from spikesynth import offline
from spikesynth.offline import note_events, parse_note, render_to_file
from spikesynth.patch import DEFAULT_PATCH, load_patch
from spikesynth.startup import SlowStartNotice


def test_a_start_past_the_threshold_says_so_while_it_runs_and_when_it_is_ready():
    said = []
    noted = threading.Event()

    def say(text):
        said.append(text)
        noted.set()

    with SlowStartNotice(say, "compiling", after=0.01):
        # The note comes from the timer while the start is still running.
        assert noted.wait(10.0)
        assert said == ["compiling"]
    assert len(said) == 2 and said[1].startswith("ready after")


def test_a_quick_start_says_nothing_and_a_failed_one_never_says_ready():
    said = []
    with SlowStartNotice(said.append, "compiling", after=60.0) as notice:
        pass
    notice._timer.join(10.0)  # cancelled: it ends without a word
    assert said == []
    try:
        with SlowStartNotice(said.append, "compiling", after=0.0):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert not any(s.startswith("ready") for s in said)
    with SlowStartNotice(None, "compiling", after=0.0):  # say None: quiet
        pass


def test_render_says_it_compiles_only_when_not_quiet(tmp_path, capsys, monkeypatch):
    patch = load_patch(DEFAULT_PATCH)
    events = note_events([parse_note("60:100:0:0.05")], 48000)
    monkeypatch.setattr(offline, "RENDER_AFTER_S", 0.0)  # this start counts as slow
    render_to_file(patch, tmp_path / "a.wav", events, tail=0.05, progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"spikesynth: note: {offline._COMPILING}"
    assert err[1].startswith("spikesynth: note: ready after") and len(err) == 2
    render_to_file(patch, tmp_path / "b.wav", events, tail=0.05, progress=False)
    assert capsys.readouterr().err == ""
