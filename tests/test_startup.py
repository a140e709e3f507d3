"""A slow start says that it is compiling, and how long it took (spikesynth/startup.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from spikesynth import offline
from spikesynth.offline import note_events, parse_note, render_to_file
from spikesynth.patch import DEFAULT_PATCH, load_patch
from spikesynth.startup import DeferredSignals, SlowStartNotice

CONSOLE_SCRIPT = Path(sys.executable).parent / "spikesynth"


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
    notice._timer.join(10.0)  # cancelled: it ends without a word (a private name: the test
    # must know that no late note can come)
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


def test_signals_during_a_compile_wait_for_its_end():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with DeferredSignals():
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the compile
            reached.append("the compile went on")
    assert reached == ["the compile went on"]
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        with DeferredSignals() as held:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            assert calls == []
            held.release()  # delivered once, to the handler the block found
            assert calls == [signal.SIGTERM]
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_held_ctrl_c_stops_at_the_next_compile():
    from numba import njit

    @njit
    def add_one(x):
        return x + 1

    after = []
    with pytest.raises(KeyboardInterrupt):
        with DeferredSignals():
            signal.raise_signal(signal.SIGINT)
            add_one(1)  # a compile starts: the safe point
            after.append("the start went on")
    assert after == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_in_a_first_render_stops_it_cleanly(tmp_path):
    # A new cache: this render compiles. Its notice (after 2 s) says the compile is under
    # way; the Ctrl-C then must neither be lost in LLVM's callbacks nor leave a traceback.
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "SPIKESYNTH_NUMBA_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = tmp_path / "first.wav"
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "render", str(DEFAULT_PATCH), "-o", str(out),
                             "--note", "C4:100:0:0.2"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stderr.readline()
        assert first.startswith("spikesynth: note: compiling"), first
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert "interrupted: nothing written" in rest
    assert "Traceback" not in rest and "Exception ignored" not in rest, rest
    assert not out.exists() and not list(tmp_path.glob("*.part"))
