"""Computer-keyboard input (spikesynth/keys.py): the key map and release strategy with a fake
key stream, the reader over a pipe, and raw mode on a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import termios
import threading
import time

import pytest

from spikesynth.events import RING_READ, RING_WRITE, EventRing
from spikesynth.keys import (
    NOTE_KEYS,
    KeyboardInput,
    KeyMapper,
    KeysUnavailable,
    note_name,
    raw_terminal,
)


def on(note, velocity=100, channel=1):
    return bytes([0x8F + channel, note, velocity])


def off(note, channel=1):
    return bytes([0x7F + channel, note, 0])


def play(mapper, stream):
    """Feed ``[(time_s, text), ...]`` (a fake key stream); expire at each time first."""
    out = []
    for t, text in stream:
        out += mapper.feed(text, t)
    return out


def take(ring):
    read, write = int(ring.header[RING_READ]), int(ring.header[RING_WRITE])
    rows = [tuple(int(v) for v in ring.slots[i & (ring.capacity - 1)])
            for i in range(read, write)]
    ring.header[RING_READ] = write
    return rows


def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.001)


# --- the mapping -----------------------------------------------------------------------


def test_layout_covers_a_chromatic_octave_from_c():
    m = KeyMapper(base_note=60)
    notes = []
    for i, key in enumerate("awsedftgyhujk"):
        msgs = m.feed(key, float(i))          # one second apart: each press releases the last
        notes.append(msgs[-1][1])
        assert msgs[-1] == on(60 + i)
    assert notes == list(range(60, 73))        # C4 .. C5
    assert [m.feed(k, 100.0 + i)[-1][1] for i, k in enumerate("olp;'")] == [73, 74, 75, 76, 77]
    assert NOTE_KEYS.startswith("awsedftgyhujk")
    assert note_name(60) == "C4" and note_name(61) == "C#4" and note_name(0) == "C-1"


def test_new_key_releases_the_previous_note():
    m = KeyMapper()
    assert play(m, [(0.0, "a"), (0.1, "s"), (0.2, "d")]) == [
        on(60), off(60), on(62), off(62), on(64)]
    assert m.note == 64


def test_note_without_autorepeat_is_released_after_the_initial_hold():
    m = KeyMapper(initial_hold=0.7)
    assert m.feed("a", 10.0) == [on(60)]
    assert m.deadline == pytest.approx(10.7)
    assert m.expire(10.69) == []
    assert m.expire(10.7) == [off(60)]
    assert m.note is None and m.deadline is None and m.expire(11.0) == []


def test_autorepeat_holds_the_note_until_the_repeats_stop():
    m = KeyMapper(initial_hold=0.7, repeat_hold=0.15)
    # Press at 0, auto-repeat starts after 0.5 s, then every 33 ms until 2.0 s.
    stream = [(0.0, "a")] + [(0.5 + k * 0.033, "a") for k in range(46)]
    assert play(m, stream) == [on(60)]
    last = stream[-1][0]
    assert m.expire(last + 0.14) == []
    assert m.expire(last + 0.15) == [off(60)]


def test_fast_second_press_retriggers_but_repeat_does_not():
    m = KeyMapper(min_repeat_delay=0.15)
    assert play(m, [(0.0, "a"), (0.05, "a")]) == [on(60), off(60), on(60)]
    m = KeyMapper(min_repeat_delay=0.15)
    assert play(m, [(0.0, "a"), (0.4, "a")]) == [on(60)]       # auto-repeat


def test_same_key_after_release_plays_again():
    m = KeyMapper(initial_hold=0.7)
    assert play(m, [(0.0, "a"), (1.0, "a")]) == [on(60), off(60), on(60)]


def test_octave_and_velocity_keys():
    m = KeyMapper()
    assert play(m, [(0.0, "z"), (1.0, "a")]) == [on(48)]
    assert play(m, [(2.0, "xx"), (3.0, "a")]) == [off(48), on(72)]
    m.feed("zzzzzzzzz", 4.0)
    assert m.base_note == 0 and m.feed("a", 5.0)[-1] == on(0)
    m.feed("xxxxxxxxxxxx", 6.0)
    assert m.base_note == 108 and m.feed("'", 7.0)[-1] == on(125)   # F9 is the top key

    m = KeyMapper()
    m.feed("1", 0.0)
    assert m.velocity == 14
    m.feed("9", 0.0)
    assert m.velocity == 127
    m.feed("5", 0.0)
    assert m.velocity == 70 and m.feed("a", 1.0) == [on(60, 70)]
    m.feed("vvvvvvvvvv", 2.0)
    assert m.velocity == 127
    m.feed("cccccccccc", 3.0)
    assert m.velocity == 1


def test_octave_change_while_sounding_releases_the_right_note():
    m = KeyMapper()
    assert play(m, [(0.0, "a"), (0.1, "x"), (0.2, " ")]) == [on(60), off(60)]


def test_quit_keys_release_and_stop():
    for key in ("q", "Q", "\x03", "\x04"):
        m = KeyMapper()
        assert play(m, [(0.0, "a"), (0.1, key + "s")]) == [on(60), off(60)]
        assert m.quit and m.note is None     # nothing after the quit key is played


def test_channel_and_caps_lock():
    m = KeyMapper(channel=10)
    assert m.feed("A", 0.0) == [on(60, channel=10)]
    with pytest.raises(ValueError):
        KeyMapper(channel=0)
    with pytest.raises(ValueError):
        KeyMapper(base_note=61)


def test_escape_sequences_are_skipped():
    m = KeyMapper()
    # Arrow keys (CSI and SS3 forms), F5 (CSI with parameters), Alt+a: nothing plays.
    assert m.feed("\x1b[A\x1bOD\x1b[15~\x1ba", 0.0) == []
    assert m.feed("s", 1.0) == [on(62)]
    # A lone Esc at the end of a read is the Esc key: the next read is a normal key.
    assert m.feed("\x1b", 1.1) == []
    m.end_of_chunk()
    assert m.feed("d", 1.2) == [off(62), on(64)]


def test_every_message_is_valid_midi():
    import random

    from spikesynth.events import parse_midi

    rng = random.Random(3)
    m = KeyMapper()
    t = 0.0
    alphabet = NOTE_KEYS + "zxcv123456789 \x1b[O~AB"
    for _ in range(5000):
        t += rng.random() * 0.3
        for message in m.feed(rng.choice(alphabet), t):
            assert parse_midi(message) is not None, message


# --- the reader over a pipe (no terminal) ----------------------------------------------


def test_reader_over_a_pipe_plays_holds_and_releases():
    ring = EventRing(64)
    read_fd, write_fd = os.pipe()
    keys = KeyboardInput(ring, read_fd, raw=False, initial_hold=0.05, display=io.StringIO())
    thread = threading.Thread(target=keys.run, daemon=True)
    thread.start()
    try:
        os.write(write_fd, b"a")
        wait_for(lambda: ring.pending() >= 1, what="the note on")
        wait_for(lambda: ring.pending() >= 2, what="the release after the hold")
        (t_on, *note_on), (t_off, *note_off) = take(ring)
        assert note_on == [0x90, 60, 100] and note_off == [0x80, 60, 0]
        assert t_off - t_on >= 50_000_000          # held for initial_hold
        os.write(write_fd, b"5d")
        wait_for(lambda: ring.pending() >= 1, what="the second note")
        os.write(write_fd, b"q")
        thread.join(5)
        assert not thread.is_alive()
        assert [m for _, *m in take(ring)] == [[0x90, 64, 70], [0x80, 64, 0]]
        assert "octave C4" in keys.display.getvalue()
    finally:
        keys.stop()
        thread.join(5)
        os.close(read_fd)
        os.close(write_fd)


def test_reader_ends_at_end_of_input_and_on_stop():
    ring = EventRing(16)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"g")
    os.close(write_fd)
    KeyboardInput(ring, read_fd, raw=False).run()     # returns at EOF, releasing the note
    os.close(read_fd)
    assert [m for _, *m in take(ring)] == [[0x90, 67, 100], [0x80, 67, 0]]

    read_fd, write_fd = os.pipe()
    keys = KeyboardInput(ring, read_fd, raw=False)
    thread = threading.Thread(target=keys.run, daemon=True)
    thread.start()
    keys.stop()
    thread.join(5)
    assert not thread.is_alive()
    os.close(read_fd)
    os.close(write_fd)


def test_raw_mode_needs_a_terminal():
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(KeysUnavailable, match="terminal"):
            KeyboardInput(EventRing(16), read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


# --- raw mode on a pseudo-terminal -----------------------------------------------------


def lflag(fd):
    return termios.tcgetattr(fd)[3]


@pytest.fixture
def pty_pair():
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def test_raw_mode_on_a_pty_plays_and_restores_the_terminal(pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ECHO and before[3] & termios.ICANON
    ring = EventRing(16)
    keys = KeyboardInput(ring, slave, raw=True)
    errors = []

    def run():
        try:
            keys.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: not lflag(slave) & termios.ICANON, what="raw mode")
        attrs = termios.tcgetattr(slave)
        assert not attrs[3] & (termios.ECHO | termios.ISIG | termios.IEXTEN)
        assert not attrs[0] & (termios.IXON | termios.ICRNL)
        assert attrs[1] & termios.OPOST          # output still processed
        # No Enter needed: a single key is delivered at once.
        os.write(master, b"h")
        wait_for(lambda: ring.pending() >= 1, what="the note from the pty")
        # Ctrl-C is a key in raw mode (no SIGINT): it quits and releases the note.
        os.write(master, b"\x03")
        thread.join(5)
        assert not thread.is_alive() and not errors
    finally:
        keys.stop()
        thread.join(5)
    assert [m for _, *m in take(ring)] == [[0x90, 69, 100], [0x80, 69, 0]]
    assert termios.tcgetattr(slave) == before


class ExplodingRing:
    """A ring whose push fails, to check the terminal comes back after an exception."""

    def __init__(self):
        self.pushed = 0

    def push(self, time_ns, message):
        self.pushed += 1
        raise RuntimeError("boom")


def test_raw_mode_restores_the_terminal_after_an_exception(pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    keys = KeyboardInput(ExplodingRing(), slave, raw=True)
    errors = []

    def run():
        try:
            keys.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: not lflag(slave) & termios.ICANON, what="raw mode")
    os.write(master, b"a")
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1 and str(errors[0]) == "boom"
    assert termios.tcgetattr(slave) == before


def test_raw_terminal_context_manager_restores_on_keyboard_interrupt(pty_pair):
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with pytest.raises(KeyboardInterrupt):
        with raw_terminal(slave):
            assert not lflag(slave) & termios.ECHO
            raise KeyboardInterrupt
    assert termios.tcgetattr(slave) == before
