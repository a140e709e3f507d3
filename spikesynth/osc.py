"""OSC input: UDP datagrams → validated engine rows → the engine's :class:`EventRing`.

The only module importing ``python-osc`` (the ``osc`` extra), and only for parsing: the
socket is a plain UDP socket bound to 127.0.0.1 unless another address is asked for. Messages
(channels 1–16, default 1)::

    /spikesynth/note_on NOTE VELOCITY [CHANNEL]
    /spikesynth/note_off NOTE [CHANNEL]
    /spikesynth/cc NUMBER VALUE [CHANNEL]
    /spikesynth/bend SEMITONES [CHANNEL]        (within the patch's pitch_bend_range)
    /spikesynth/param KEY.PATH VALUE            (checked by Synth.param_target)
    /spikesynth/program N

Each becomes one engine row pushed into the ring, stamped on the host clock
(``time.monotonic_ns``, the audio host's clock): on arrival, or — in a bundle with a time tag
— at the tag's time (converted from the wall clock), so it sounds at that time plus the
session's MIDI latency, within one block; a tag in the past plays at once. The ring keeps
arrival order, so a bundle timed in the future holds back what arrives after it until then.
Malformed datagrams and messages (unknown address, wrong arguments, out of range, a parameter
that is not live) are counted in :attr:`OscInput.malformed` and ignored, never fatal.
"""

from __future__ import annotations

import math
import socket
import threading
import time

from .mts import float32_bits

PREFIX = "/spikesynth/"
STATUS_PARAM = 0xF4  # spikesynth.render.STATUS_PARAM (the engine's parameter event)


class OscUnavailable(RuntimeError):
    """python-osc is not installed (the ``osc`` extra)."""


def _osc_packet():
    try:
        from pythonosc import osc_packet
    except ImportError as e:  # pragma: no cover - the dev extra has it
        raise OscUnavailable("OSC needs python-osc: pip install 'spikesynth[osc]'") from e
    return osc_packet


def _int(value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError
    return value


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError
    return float(value)


def _channel(args, k):
    return _int(args[k], 1, 16) - 1 if len(args) > k else 0


def message_rows(address: str, args, synth) -> list[tuple[int, int, int]]:
    """Engine rows ``(status, data1, data2)`` for one OSC message; ValueError if malformed.

    Thread: any (reads ``synth``'s patch for the bend range and parameter checks).
    """
    if not isinstance(address, str) or not address.startswith(PREFIX):
        raise ValueError(address)
    name = address[len(PREFIX):]
    args = list(args)
    n = len(args)
    if name == "note_on" and n in (2, 3):
        return [(0x90 | _channel(args, 2), _int(args[0], 0, 127), _int(args[1], 0, 127))]
    if name == "note_off" and n in (1, 2):
        return [(0x80 | _channel(args, 1), _int(args[0], 0, 127), 0)]
    if name == "cc" and n in (2, 3):
        return [(0xB0 | _channel(args, 2), _int(args[0], 0, 127), _int(args[1], 0, 127))]
    if name == "bend" and n in (1, 2):
        from .params import P_BEND_RANGE

        span = float(synth.params[P_BEND_RANGE])
        semitones = _number(args[0])
        if span <= 0.0 or abs(semitones) > span:
            raise ValueError
        value = min(max(int(round(8192 + 8192 * semitones / span)), 0), 16383)
        return [(0xE0 | _channel(args, 1), value & 0x7F, value >> 7)]
    if name == "param" and n == 2 and isinstance(args[0], str):
        index, value = synth.param_target(args[0], _number(args[1]))
        return [(STATUS_PARAM, index, float32_bits(value))]
    if name == "program" and n == 1:
        return [(0xC0, _int(args[0], 0, 127), 0)]
    raise ValueError(address)


class OscInput:
    """Listen for OSC on UDP and push what it says into ``ring``.

    Thread: constructed and closed on main; the receiving thread (``spikesynth-osc``) is a
    producer of the ring, sharing ``lock`` with the other producers (MIDI, keys).

    Parameters
    ----------
    ring : EventRing
    synth : Synth
        For parameter checks and the bend range.
    port : int
        UDP port (0: any free port; see :attr:`port`).
    host : str
        Address to bind (default 127.0.0.1, this machine only).
    lock : threading.Lock, optional
    """

    def __init__(self, ring, synth, port: int, host: str = "127.0.0.1", lock=None):
        self._packet = _osc_packet()
        self.ring = ring
        self.synth = synth
        self.lock = lock if lock is not None else threading.Lock()
        self.received = 0  # messages turned into events
        self.malformed = 0  # datagrams or messages ignored
        self._last_ns = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, int(port)))
        except OSError as e:
            self._sock.close()
            raise OSError(f"cannot listen for OSC on {host}:{port}: {e.strerror or e}") from None
        self._sock.settimeout(0.1)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spikesynth-osc", daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.handle(data)

    def handle(self, data: bytes, now_ns: int | None = None) -> None:
        """Parse one datagram and push its messages. Thread: the OSC thread (or a test)."""
        try:
            packet = self._packet.OscPacket(data)
            messages = packet.messages
        except Exception:  # noqa: BLE001 - any parse failure is a malformed datagram
            self.malformed += 1
            return
        wall = time.time()
        arrival = time.monotonic_ns() if now_ns is None else now_ns
        for timed in messages:
            try:
                rows = message_rows(timed.message.address, timed.message.params, self.synth)
            except (ValueError, TypeError, IndexError):
                self.malformed += 1
                continue
            at = arrival + max(int((timed.time - wall) * 1e9), 0)  # a time tag: that time
            with self.lock:
                at = max(at, self._last_ns)  # the ring's times never go backwards
                self._last_ns = at
                for status, d1, d2 in rows:
                    self.ring.push_row(at, status, d1, d2)
            self.received += 1

    def close(self) -> None:
        """Stop listening. Thread: main. Idempotent."""
        self._stop.set()
        self._sock.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1.0)
