"""Hot reload that cannot break: the watcher survives anything, waits for a stable valid file,
and parses in a child process with time and memory limits (no audio device needed: the
watcher runs against a real engine, the audio host is not opened)."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from spikesynth.engine import Synth
from spikesynth.live import LiveSession
from spikesynth.patch import load_patch
from spikesynth.patchworker import PatchWorker

VALID = "name: {name}\nmodel: spiking\nvoices: 4\n"


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def watched(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(VALID.format(name="first"))
    out = io.StringIO()
    session = LiveSession(path, reload_interval=0.05, status=out)
    first = load_patch(path)
    session._load_programs(first)
    session.synth = Synth(first, samplerate=48000, max_block=256)
    session.synth.use_patch(session.prepared[session.program])
    played = []
    use_patch = session.synth.use_patch

    def record(prepared):
        played.append(prepared)
        use_patch(prepared)

    session.synth.use_patch = record
    session._start_thread(session._watch, "spikesynth-reload")
    session.played = played
    session.out = out
    yield session, path
    session.close()


def names(session):
    return [p.patch.name if hasattr(p, "patch") else None for p in session.played]


def edit(session, path, text, expect, timeout=60.0):
    before = session.out.getvalue().count("\n")
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    assert wait_until(lambda: expect in session.out.getvalue().split("\n", before)[-1],
                      timeout), session.out.getvalue()


def test_bad_files_keep_the_old_patch_and_later_edits_apply(watched):
    session, path = watched
    edit(session, path, VALID.format(name="second"), "reloaded")  # the worker has started
    assert session.synth.patch.name == "second"
    base = rss_kb()
    edit(session, path, "", "file is empty")
    edit(session, path, "# nothing yet\n", "file is empty")
    laughs = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    laughs += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    t0 = time.monotonic()
    edit(session, path, "\n".join(laughs) + "\nname: *a8\n", "aliases are expanded")
    assert time.monotonic() - t0 < 10
    edit(session, path, b"name: big\n" + b"#" * 10_000_000 + b"\n", "too large")
    edit(session, path, "voices: [1, {a: .nan}]\n", "voices: expected a whole number")
    assert session.synth.patch.name == "second"
    assert rss_kb() - base < 30_000  # the big files never entered this process
    edit(session, path, VALID.format(name="third"), "reloaded")
    assert session.synth.patch.name == "third" and session._threads[0].is_alive()
    assert session.reload_errors >= 5


def test_truncate_then_write_never_plays_a_half_file(watched):
    session, path = watched
    edit(session, path, VALID.format(name="second"), "reloaded")
    for k in range(5):  # an editor: truncate, a pause shorter than a poll, the new text
        with open(path, "w") as f:
            f.flush()
            time.sleep(0.01)
            f.write(VALID.format(name=f"v{k}"))
        assert wait_until(lambda k=k: session.synth.patch.name == f"v{k}")
    assert "untitled" not in names(session)


def test_watcher_survives_an_exception(watched, monkeypatch):
    session, path = watched
    edit(session, path, VALID.format(name="second"), "reloaded")
    calls = []
    prepare = session.synth.prepare_patch

    def broken(patch):
        calls.append(patch)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return prepare(patch)

    monkeypatch.setattr(session.synth, "prepare_patch", broken)
    edit(session, path, VALID.format(name="third"), "still watching")
    assert session._threads[0].is_alive() and session.synth.patch.name == "second"
    edit(session, path, VALID.format(name="fourth"), "reloaded")
    assert session.synth.patch.name == "fourth"


def test_worker_time_and_memory_limits(tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text(VALID.format(name="good"))
    stuck = tmp_path / "stuck.yaml"  # a FIFO nobody writes: reading it blocks for ever
    os.mkfifo(stuck)
    with PatchWorker(timeout=0.5) as worker:
        assert wait_until(lambda: worker._conn.poll(0), 120)  # started: the imports ran
        patch, error = worker.load(stuck)
        assert patch is None and "took longer than 0.5 s" in error and worker.restarts == 1
        worker.timeout = 30.0
        patch, error = worker.load(good)  # a fresh worker answers
        assert error is None and patch.name == "good"
    big = tmp_path / "big.yaml"  # 900 KB of list items: far more than 4 MB as YAML nodes
    big.write_text("description: [" + ", ".join(["1"] * 300_000) + "]\n")
    with PatchWorker(headroom=4 * 2**20) as worker:
        patch, error = worker.load(big)
        assert patch is None and ("memory" in error or "died" in error), error
        patch, error = worker.load(good)
        assert error is None and patch.name == "good"


def test_no_thread_blocks_while_the_worker_parses(tmp_path):
    """The parse holds the child's GIL, not ours: a thread here keeps ticking."""
    f = tmp_path / "n.yaml"
    f.write_text("description: [" + ", ".join(["1"] * 40_000) + "]\n")
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    with PatchWorker(timeout=60) as worker:
        worker.load(tmp_path / "missing.yaml")  # wait for the start-up
        t = threading.Thread(target=ticker)
        t.start()
        t0 = time.perf_counter()
        _, error = worker.load(f)
        t1 = time.perf_counter()
        stop.set()
        t.join()
    assert "description: expected a string" in error
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False) if t0 <= a <= t1]
    # Parsed here, the file would hold the GIL for the whole parse; in the child, this
    # process's threads run on (the bound leaves room for a busy shared CPU).
    assert t1 - t0 > 0.05 and gaps and max(gaps) < 0.3 * (t1 - t0), (t1 - t0, max(gaps))


class _RefusingStream:
    """An audio host whose compiled callback refuses every program (as for a voice model the
    stream was not started with)."""

    def set_program(self, number, prepared):
        return False

    def follow(self, prepared):
        raise AssertionError("a refused program must not be followed")


def test_a_reload_the_stream_refuses_is_an_error_and_the_old_version_stays(watched):
    session, path = watched
    edit(session, path, VALID.format(name="second"), "reloaded")
    session.audio = _RefusingStream()
    try:
        edit(session, path, VALID.format(name="third"), "not taken by the running stream")
        assert session.prepared[session.program].patch.name == "second"
        assert session.reload_errors >= 1
        assert "reloaded" not in session.out.getvalue().rsplit("\n", 2)[-2]
    finally:
        session.audio = None
