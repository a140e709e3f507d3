"""Computer-keyboard input for ``spikesynth play --keys``: a terminal as a small piano.

Layout (one octave and a bit, like most DAWs' "typing keyboard")::

     w e   t y u   o p          black keys  C# D#   F# G# A#   C# D#
    a s d f g h j k l ; '       white keys  C  D  E F  G  A  B C  D  E  F

    z / x        octave down / up          1 … 9    velocity 14 … 127
    c / v        velocity -16 / +16        space    release the sounding note
    q, Ctrl-C, Ctrl-D   quit

Upper-case letters act like lower-case ones (Caps Lock); escape sequences (arrow and
function keys) are skipped.

Terminals report key *presses* (and the auto-repeat of a held key), never releases. The
release strategy, implemented by :class:`KeyMapper`:

1. Pressing a note key releases the note that is sounding (the keyboard is monophonic; the
   synth's release tails still overlap) and starts the new one.
2. A note is held for ``initial_hold`` seconds (longer than the usual auto-repeat delay,
   250–660 ms). If the key's auto-repeat arrives in that time the note stays on, and each
   repeat extends it by ``repeat_hold`` (longer than the repeat period, 25–40 ms), so it
   is released about ``repeat_hold`` after the key is let go.
3. Without auto-repeat the note is released ``initial_hold`` after the press.
4. The same key arriving sooner than ``min_repeat_delay`` after its press cannot be
   auto-repeat (no terminal repeats that fast), so it re-triggers the note. Limitation: a
   deliberate re-press later than that but within the hold looks exactly like auto-repeat
   and keeps the note on.

Messages are raw MIDI bytes, stamped with the host clock and pushed into the engine's
:class:`~spikesynth.events.EventRing`, like :mod:`spikesynth.midi` does (give both the same
``lock`` when both feed one ring).
"""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

__all__ = ["HELP", "KeyMapper", "KeyboardInput", "KeysUnavailable", "NOTE_KEYS",
           "raw_terminal"]

#: Note keys in semitone order from the octave's C.
NOTE_KEYS = "awsedftgyhujkolp;'"
_SEMITONE = {key: i for i, key in enumerate(NOTE_KEYS)}
_QUIT = {"q", "\x03", "\x04"}   # q, Ctrl-C, Ctrl-D (raw mode: no SIGINT)
_NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]

HELP = ("keys: a w s e d f t g y h u j k o l p ; ' = C..F   z/x octave -/+   "
        "1-9 velocity   c/v velocity -/+   space release   q quit")


class KeysUnavailable(RuntimeError):
    """``--keys`` needs an interactive terminal on the input."""


def note_name(note: int) -> str:
    """``60 -> "C4"`` (MIDI note 60 is middle C, C4)."""
    return f"{_NOTE_NAMES[note % 12]}{note // 12 - 1}"


class KeyMapper:
    """Keys in, MIDI messages out: the layout and the release strategy, without any I/O.

    Thread: whichever thread reads the keyboard (one at a time).

    Parameters
    ----------
    base_note : int
        MIDI note of the ``a`` key (a C); moved by octaves within 0–108.
    velocity : int
        1–127.
    channel : int
        1–16.
    initial_hold, repeat_hold, min_repeat_delay : float
        Seconds; see the module docstring.
    """

    def __init__(self, base_note: int = 60, velocity: int = 100, channel: int = 1,
                 initial_hold: float = 0.7, repeat_hold: float = 0.15,
                 min_repeat_delay: float = 0.15):
        if not 1 <= channel <= 16:
            raise ValueError(f"MIDI channel must be 1-16, not {channel}")
        if not 0 <= base_note <= 108 or base_note % 12:
            raise ValueError(f"base_note must be a C between 0 and 108, not {base_note}")
        self.base_note = int(base_note)
        self.velocity = min(max(int(velocity), 1), 127)
        self.channel = int(channel)
        self.initial_hold = float(initial_hold)
        self.repeat_hold = float(repeat_hold)
        self.min_repeat_delay = float(min_repeat_delay)
        self.quit = False
        self.note: int | None = None     # sounding note
        self._key: str | None = None     # the key that started it
        self._pressed_at = 0.0
        self._repeating = False
        self._deadline = 0.0
        self._escape = ""                # "", "esc", "csi" or "ss3": skipping a sequence

    # -- output -------------------------------------------------------------------------

    def _note_on(self, note: int) -> bytes:
        return bytes([0x90 | (self.channel - 1), note, self.velocity])

    def _note_off(self, note: int) -> bytes:
        return bytes([0x80 | (self.channel - 1), note, 0])

    def release(self) -> list[bytes]:
        """Release the sounding note, if any."""
        if self.note is None:
            return []
        note, self.note, self._key = self.note, None, None
        return [self._note_off(note)]

    # -- time ---------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """When the sounding note is due to be released (seconds), or None."""
        return self._deadline if self.note is not None else None

    def expire(self, now: float) -> list[bytes]:
        """Release the sounding note if its hold ran out by ``now`` (seconds)."""
        if self.note is not None and now >= self._deadline:
            return self.release()
        return []

    # -- input --------------------------------------------------------------------------

    def feed(self, text: str, now: float) -> list[bytes]:
        """Interpret characters typed at ``now`` (seconds); return the MIDI messages.

        Expired notes are released first; escape sequences are skipped.
        """
        out = self.expire(now)
        for ch in text:
            if self._skip_escape(ch):
                continue
            out += self._key_pressed(ch.lower() if ch.isupper() else ch, now)
            if self.quit:
                break
        return out

    def end_of_chunk(self) -> None:
        """A read returned everything typed: a lone Esc was the Esc key, not a sequence."""
        self._escape = ""

    def _skip_escape(self, ch: str) -> bool:
        state = self._escape
        if ch == "\x1b":
            self._escape = "esc"
            return True
        if state == "esc":
            self._escape = {"[": "csi", "O": "ss3"}.get(ch, "")
            return True      # the second character of a sequence, or Alt+key: ignored
        if state == "ss3":
            self._escape = ""
            return True
        if state == "csi":
            if "\x40" <= ch <= "\x7e":
                self._escape = ""     # final byte
            return True
        return False

    def _key_pressed(self, key: str, now: float) -> list[bytes]:
        if key in _QUIT:
            self.quit = True
            return self.release()
        if key in _SEMITONE:
            if (self.note is not None and key == self._key and now < self._deadline
                    and (self._repeating or now - self._pressed_at >= self.min_repeat_delay)):
                self._repeating = True                      # auto-repeat: keep holding
                self._deadline = now + self.repeat_hold
                return []
            out = self.release()
            note = self.base_note + _SEMITONE[key]
            self.note, self._key = note, key
            self._pressed_at, self._repeating = now, False
            self._deadline = now + self.initial_hold
            return out + [self._note_on(note)]
        if key == "z":
            self.base_note = max(self.base_note - 12, 0)
        elif key == "x":
            self.base_note = min(self.base_note + 12, 108)
        elif "1" <= key <= "9":
            self.velocity = int(key) * 127 // 9
        elif key == "c":
            self.velocity = max(self.velocity - 16, 1)
        elif key == "v":
            self.velocity = min(self.velocity + 16, 127)
        elif key == " ":
            return self.release()
        return []

    def status(self) -> str:
        """One line for the terminal: octave, velocity, sounding note."""
        sounding = note_name(self.note) if self.note is not None else "-"
        return (f"octave {note_name(self.base_note)}  velocity {self.velocity:3d}  "
                f"note {sounding:4s}")


@contextmanager
def raw_terminal(fd: int):
    """Key-at-a-time input on terminal ``fd``; the previous settings come back on exit.

    Thread: main (or the keyboard thread). Input is raw (no echo, no line buffering, no
    signals from Ctrl-C/Ctrl-Z, no flow control); output processing stays on, so printed
    lines still end properly. The old settings are restored in ``finally``: on return,
    on exceptions, on KeyboardInterrupt.
    """
    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
    new[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    new[6][termios.VMIN] = 1
    new[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSAFLUSH, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)


class KeyboardInput:
    """Read a terminal (or any file descriptor) and play its keys into a ring.

    Thread: :meth:`run` on the thread that owns the terminal (normally main);
    :meth:`stop` from any thread.

    Parameters
    ----------
    ring : spikesynth.events.EventRing
        Where the note messages go.
    fd : int, optional
        File descriptor to read (standard input by default).
    raw : bool
        Put the terminal in raw mode while running (required for key-at-a-time input;
        ``fd`` must then be a TTY). False reads ``fd`` as it is (pipes, tests).
    display : file, optional
        Where to print the help and a status line (nothing by default).
    lock : threading.Lock, optional
        Serialises pushes into ``ring``; share it with :class:`spikesynth.midi.MidiInput`.
    clock : callable
        ``clock() -> int`` nanoseconds, the host clock the audio thread uses.
    **mapper_options
        Passed to :class:`KeyMapper` (``base_note``, ``velocity``, ``channel``, holds).
    """

    def __init__(self, ring, fd: int | None = None, *, raw: bool = True, display=None,
                 lock: threading.Lock | None = None,
                 clock: Callable[[], int] = time.monotonic_ns, **mapper_options):
        self.ring = ring
        self.fd = sys.stdin.fileno() if fd is None else int(fd)
        self.raw = raw
        self.display = display
        self.lock = lock if lock is not None else threading.Lock()
        self.clock = clock
        self.mapper = KeyMapper(**mapper_options)
        self._stop = threading.Event()
        if raw and not os.isatty(self.fd):
            raise KeysUnavailable("--keys needs an interactive terminal on standard input")

    def stop(self) -> None:
        """Make :meth:`run` return soon (within 0.1 s). Thread: any."""
        self._stop.set()

    def run(self) -> None:
        """Read keys and push notes until quit, end of input or :meth:`stop`.

        The sounding note is released on the way out, whatever the reason.
        """
        if self.raw:
            with raw_terminal(self.fd):
                self._loop()
        else:
            self._loop()

    def _push(self, messages) -> None:
        if messages:
            with self.lock:
                t = self.clock()
                for message in messages:
                    self.ring.push(t, message)

    def _show(self) -> None:
        if self.display is not None:
            self.display.write("\r\x1b[K" + self.mapper.status())
            self.display.flush()

    def _loop(self) -> None:
        mapper = self.mapper
        if self.display is not None:
            self.display.write(HELP + "\n")
        self._show()
        try:
            while not mapper.quit and not self._stop.is_set():
                now = self.clock() * 1e-9
                expired = mapper.expire(now)
                if expired:
                    self._push(expired)
                    self._show()
                deadline = mapper.deadline
                timeout = 0.1 if deadline is None else min(max(deadline - now, 0.0), 0.1)
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if not ready:
                    continue
                data = os.read(self.fd, 64)
                if not data:
                    break      # end of input
                # Only ASCII matters; anything else (UTF-8 letters, stray bytes) is skipped.
                text = data.decode("ascii", errors="ignore")
                self._push(mapper.feed(text, self.clock() * 1e-9))
                mapper.end_of_chunk()
                self._show()
        finally:
            self._push(mapper.release())
            if self.display is not None:
                self.display.write("\n")
                self.display.flush()
