"""The live host's remaining corners: ``spikesynth devices`` on JACK (and without MIDI),
``play --keys`` end to end in a pseudo-terminal (pitch, quit key, terminal restored), the
in-place status line on a terminal, and :class:`spikesynth.midi.DeltaClock` after a pause.

The JACK tests run on the ``jack_server`` fixture's private ``jackd -d dummy`` and reuse the
recorder of ``test_play_jack``; a missing JACK makes them fail, never skip. ``play`` runs as
a subprocess whose standard input, output and error are the slave side of a pty that the
test types into and reads from, as a person at a terminal would.
"""

from __future__ import annotations

import os
import random
import re
import select
import signal
import subprocess
import sys
import termios
import threading
import time

import jack
import numpy as np
import pytest
import rtmidi
from audio_analysis import cents, estimate_f0
from jackserver import compile_play
from test_play_jack import ROOT, SILENCE, SR, STEADY, Recorder, wait_for, wait_sound

from spikesynth.midi import DeltaClock

#: One status update as :func:`spikesynth.live.format_status` writes it.
STATUS = re.compile(
    r"voices +(?P<voices>\d+)/(?P<max>\d+) +load +(?P<load>[\d.]+)% mean +[\d.]+% worst +"
    r"(?:\((?:rt|py)\) +)?xruns (?P<xruns>\d+) +late (?P<late>\d+) +steals \d+ +"
    r"midi (?P<midi>\d+) in "
    r"(?P<rejected>\d+) rejected"
    r"(?: \d+ dropped)? +prog \d+ \S.*")
CLEAR = "\r\x1b[K"  # carriage return + erase line: how the status line is redrawn in place


# --- spikesynth devices ----------------------------------------------------------------


def run_devices(env):
    return subprocess.run([sys.executable, "-m", "spikesynth.cli", "devices"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def sections(stdout: str) -> dict[str, list[str]]:
    """``devices`` output split at its headers: {"audio": lines, "alsa": lines, "jack": ...}."""
    out: dict[str, list[str]] = {}
    key = None
    for line in stdout.splitlines():
        header = re.fullmatch(r"MIDI input ports \((\w+)\):", line)
        if line.startswith("audio output devices") or header:
            key = header.group(1) if header else "audio"
            out[key] = []
        elif key is not None:
            out[key].append(line)
    return out


@pytest.mark.jack
def test_devices_lists_the_jack_device_and_midi_ports(jack_server):
    client = jack.Client("devices-probe", no_start_server=True)
    playback = len(client.get_ports(is_audio=True, is_input=True, is_physical=True))
    client.close()
    assert playback >= 1
    source = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "devices-test")
    source.open_virtual_port("keyboard")
    try:
        proc = run_devices(jack_server.env)
    finally:
        source.delete()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    found = sections(proc.stdout)
    assert set(found) == {"audio", "alsa", "jack"}, proc.stdout
    jack_devices = [ln for ln in found["audio"] if "[JACK Audio Connection Kit]" in ln]
    assert len(jack_devices) == 1, proc.stdout
    assert re.fullmatch(rf"[* ] +\d+: system \[JACK Audio Connection Kit\] {playback} out, "
                        r"48000 Hz", jack_devices[0]), jack_devices
    assert re.fullmatch(r" +\d+: devices-test:keyboard", "\n".join(found["jack"])), proc.stdout
    # ALSA: ports or one reason (this machine may have no /dev/snd/seq), never nothing.
    assert found["alsa"] and all(ln.startswith("  ") for ln in found["alsa"]), proc.stdout


@pytest.mark.jack
def test_devices_without_midi_still_lists_audio_and_says_why(jack_server, tmp_path):
    """python-rtmidi missing: the audio devices are listed, each MIDI backend says it is
    unavailable and how to get it, and the exit status is 0 (MIDI is optional: --keys)."""
    (tmp_path / "rtmidi.py").write_text("raise ImportError('No module named rtmidi')\n")
    env = dict(jack_server.env, PYTHONPATH=str(tmp_path))
    proc = run_devices(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    found = sections(proc.stdout)
    assert any("system [JACK Audio Connection Kit]" in ln for ln in found["audio"]), proc.stdout
    for api in ("alsa", "jack"):
        assert found[api] == ["  unavailable: MIDI input needs python-rtmidi: "
                              "pip install 'spikesynth[live]'"], proc.stdout


# --- play in a pseudo-terminal ----------------------------------------------------------


class TerminalPlayer:
    """``spikesynth play`` with a pty as its terminal (stdin, stdout and stderr)."""

    def __init__(self, server, *args):
        compile_play()  # the default patch's folder, as play loads it
        self.master, self.slave = os.openpty()
        self.termios_before = termios.tcgetattr(self.slave)
        cmd = [sys.executable, "-m", "spikesynth.cli", "play", "--hostapi", "JACK", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=server.env, stdin=self.slave,
                                     stdout=self.slave, stderr=self.slave,
                                     start_new_session=True)
        self._data = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        # The test keeps the slave open (to read its settings afterwards), so the master
        # never reports end of file: poll until told to stop.
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self._data += os.read(self.master, 65536)
                except OSError:
                    return

    @property
    def text(self) -> str:
        return bytes(self._data).decode("utf-8", errors="replace")

    def updates(self) -> list[str]:
        """The complete in-place status updates so far (each one redrawn after ``CLEAR``)."""
        pieces = self.text.split(CLEAR)[1:-1]  # the last one may still be arriving
        return [p for p in pieces if p.startswith("voices")]

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def lflag(self) -> int:
        return termios.tcgetattr(self.slave)[3]

    def wait_text(self, needle: str, timeout=30.0):
        def seen():
            if needle in self.text:
                return True
            if self.proc.poll() is not None:
                pytest.fail(f"play exited with {self.proc.returncode}:\n{self.text}")
            return False

        wait_for(seen, timeout, lambda: f"{needle!r} on the terminal:\n{self.text}")

    def wait_update(self, predicate, timeout, what):
        """The first status update (complete, after now) satisfying ``predicate``."""
        seen = len(self.updates())
        return wait_for(lambda: next((u for u in self.updates()[seen:] if predicate(u)), None),
                        timeout, lambda: f"{what}; terminal:\n{self.text[-2000:]!r}")

    def wait_ports(self, client, timeout=90.0):  # a cold numba cache compiles first
        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"play exited with {self.proc.returncode}:\n{self.text}")
            outs = client.get_ports("spikesynth:", is_audio=True, is_output=True)
            return sorted(p.name for p in outs) if len(outs) == 2 else None

        return wait_for(ready, timeout, lambda: f"play's JACK ports; terminal:\n{self.text}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._stop.set()
        self._reader.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def terminal(jack_server):
    """``start(*args) -> TerminalPlayer``, killed and closed after the test."""
    made = []

    def start(*args):
        made.append(TerminalPlayer(jack_server, *args))
        return made[-1]

    try:
        yield start
    finally:
        for player in made:
            player.close()


def fields(update: str) -> dict[str, int]:
    m = STATUS.match(update)
    assert m, f"not a status line: {update!r}"
    return {k: int(v) for k, v in m.groupdict().items() if k != "load"}


@pytest.mark.jack
def test_keys_in_a_terminal_play_in_tune_and_quit_restores_the_terminal(terminal):
    """Type ``h`` (A4 with the default octave: ``a`` is C4) into a pty running ``play --keys``:
    an A at 440 Hz ± 1 cent sounds at once, is released by itself (no key-up on a terminal:
    ``initial_hold`` 0.7 s) and dies away; ``q`` quits with status 0 and the pty's settings
    are back exactly as they were (raw while playing)."""
    player = terminal("--keys", "--midi-in", "off")
    rec = Recorder(seconds=20.0)
    try:
        rec.connect(player.wait_ports(rec.client))
        rec.start()
        rec.settle()
        player.wait_text("spikesynth: playing")
        wait_for(lambda: not player.lflag() & (termios.ICANON | termios.ECHO), 10.0,
                 "the terminal in raw mode")
        player.wait_update(lambda u: "octave C4" in u, 5.0, "a status update with the keys")
        audio, first = rec.recorded()
        assert np.abs(audio[-SR // 10:]).max() < SILENCE, "must be silent before the key"

        sent = rec.now
        player.type("h")
        start = wait_sound(rec, sent)
        assert start + first - sent < SR // 10, "the key must sound within 0.1 s"
        held = player.wait_update(lambda u: "note A4" in u, 2.0, "A4 in the status line")
        assert fields(held)["voices"] == 1 and fields(held)["midi"] == 1, held
        # Released after the 0.7 s hold: note-off counted, silent again soon after.
        player.wait_update(lambda u: fields(u)["midi"] == 2 and "note -" in u, 3.0,
                           "the automatic release in the status line")
        rec.wait_until(sent + int(1.6 * SR))
        rec.stop()
        audio, first = rec.recorded()
        # Any 0.25 s gap-free stretch of the held note (missed JACK cycles happen here).
        steady = rec.clean(start + SR // 10, start + int(0.68 * SR), STEADY)
        f0 = estimate_f0(audio[steady], SR, 440.0)
        assert abs(cents(f0, 440.0)) < 1.0, f0
        tail = audio[sent - first + int(1.5 * SR): sent - first + int(1.6 * SR)]
        assert tail.size and np.abs(tail).max() < SILENCE, "the note must end by itself"
    finally:
        rec.close()

    assert player.lflag() != player.termios_before[3], "raw mode must still be on"
    player.type("q")
    try:
        code = player.proc.wait(5.0)
    except subprocess.TimeoutExpired:
        pytest.fail(f"play did not quit on q:\n{player.text}")
    assert code == 0, player.text
    assert "Traceback" not in player.text
    assert termios.tcgetattr(player.slave) == player.termios_before


@pytest.mark.jack
def test_status_line_is_redrawn_in_place_on_a_terminal(terminal):
    """On a TTY the status line is rewritten after ``\\r`` (and erase-line) about four times
    a second (``--status-interval`` default 0.25 s), never scrolling, with voices, load,
    xruns and MIDI counts that follow what is played."""
    player = terminal("--midi-api", "jack", "--midi-in", "none")
    player.wait_text("spikesynth: playing")
    first = player.wait_update(lambda u: True, 5.0, "a first status update")
    assert fields(first)["midi"] == 0 and fields(first)["voices"] == 0, first
    # About four updates a second (0.25 s), measured over at least a second.
    t0, n0 = time.monotonic(), len(player.updates())
    wait_for(lambda: time.monotonic() - t0 >= 1.5 and len(player.updates()) >= n0 + 2, 5.0,
             "1.5 s of status updates")
    rate = (len(player.updates()) - n0) / (time.monotonic() - t0)
    assert 2.0 <= rate <= 6.0, f"{rate:.1f} status updates a second"

    source = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "status-test")
    try:
        source.open_port(source.get_ports().index("spikesynth-midi:spikesynth"))
        source.send_message([0x90, 69, 100])
        held = player.wait_update(lambda u: fields(u)["voices"] == 1, 3.0, "one voice")
        assert fields(held)["midi"] == 1 and fields(held)["rejected"] == 0, held
        source.send_message([0x80, 69, 0])
        source.send_message([0x90, 200, 1])  # a data byte with the high bit set: rejected
        player.wait_update(lambda u: fields(u)["midi"] == 2 and fields(u)["rejected"] == 1
                           and fields(u)["voices"] == 0, 3.0, "the note-off and a rejection")
    finally:
        source.delete()

    text = player.text
    pieces = text.split(CLEAR)
    status = [i for i, p in enumerate(pieces[:-1]) if p.startswith("voices")]
    assert len(status) >= 8, text
    for i in status:
        # In place: nothing but the next redraw follows an update (no newline, no scrolling).
        assert "\n" not in pieces[i] and "\r" not in pieces[i], repr(pieces[i])
        fields(pieces[i])
    player.proc.send_signal(signal.SIGINT)  # as Ctrl-C would from a cooked terminal
    assert player.proc.wait(5.0) == 0, player.text
    assert "Traceback" not in player.text


# --- DeltaClock --------------------------------------------------------------------------


def test_delta_clock_stamps_a_note_after_a_pause_on_time():
    """After silences of 0.5–1.5 s, a message collected 1 ms late (a whole poll interval) is
    still stamped within 0.2 ms of its arrival: the clock offset may creep by ``max_drift``
    per second of silence, and the default allows 0.1 ms per second (it was 1 ms, which let
    such a note slip by its whole collection delay)."""
    rng = random.Random(3)
    true_offset = 987_654_321_000          # host clock minus backend clock, ns
    clock = DeltaClock()
    backend, previous = 0, None

    def message(gap_ns, lag_ns):
        nonlocal backend, previous
        backend += gap_ns
        delta = 0.0 if previous is None else (backend - previous) / 1e9
        previous = backend
        arrival = backend + true_offset
        stamp = clock.stamp(delta, arrival + lag_ns)
        assert arrival <= stamp <= arrival + lag_ns
        return stamp - arrival

    for pause_s in (0.5, 1.0, 1.5):
        for _ in range(200):               # playing: polled 0-1 ms after each arrival
            message(rng.randrange(5_000_000, 50_000_000), rng.randrange(0, 1_000_000))
        message(10_000_000, 0)             # one collected at once: the offset is exact
        error = message(int(pause_s * 1e9), 1_000_000)
        assert error <= 200_000, f"stamped {error / 1e6:.3f} ms late after {pause_s} s"


def test_delta_clock_default_still_follows_a_crystal_drift():
    """Two free-running clocks 50 ppm apart (the backend slow) for a minute: the stamps stay
    within the polling window, neither before arrival nor after collection."""
    clock = DeltaClock()
    errors = []
    for i in range(6000):                  # a message every 10 ms
        arrival = i * 10_000_000
        delta = 0.0 if i == 0 else 10_000_000 * (1 - 5e-5) / 1e9
        lag = (i * 7919) % 1_000_000
        stamp = clock.stamp(delta, arrival + lag)
        assert stamp <= arrival + lag
        errors.append(stamp - arrival)
    assert min(errors) >= -1_000 and max(errors) < 1_000_000, (min(errors), max(errors))
