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

Offline (``render --osc-file FILE``), :func:`read_osc_file` reads a file of OSC packets in
the framing of SuperCollider's non-real-time scores (each packet an int32 big-endian size,
then that many bytes); a bundle's time tag is seconds from the start of the render (the
64-bit tag as ``seconds + fraction / 2**32``, as ``scsynth -N`` reads it), rounded to the
nearest sample; a message outside any bundle plays at 0. The same addresses, the same checks;
malformed packets and messages are counted and ignored. :func:`write_osc_file` writes one.
"""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from pathlib import Path
from typing import NamedTuple

from .mts import float32_bits

PREFIX = "/spikesynth/"
STATUS_PARAM = 0xF4  # spikesynth.events.STATUS_PARAM (the engine's parameter event)


class OscUnavailable(RuntimeError):
    """python-osc is not installed (the ``osc`` extra)."""


def _osc_packet():
    try:
        from pythonosc import osc_packet
    except ImportError as e:  # pragma: no cover - the dev extra has it
        raise OscUnavailable("OSC needs python-osc: pip install 'spikesynth[osc]'") from e
    return osc_packet


def _osc_parts():
    """python-osc's bundle and message classes and its message builder."""
    _osc_packet()  # the one clear error if python-osc is missing
    from pythonosc import osc_bundle, osc_message, osc_message_builder

    return osc_bundle.OscBundle, osc_message.OscMessage, osc_message_builder.OscMessageBuilder


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


# --- offline: a file of OSC packets ------------------------------------------------------
BUNDLE_TAG = b"#bundle\0"
MAX_OSC_FILE_BYTES = 64 * 1024 * 1024  # a score larger than this is refused


class OscFileError(ValueError):
    """An OSC file that cannot be read at all (missing, a folder, too large)."""


class OscScore(NamedTuple):
    """What an OSC file tells the engine (:func:`read_osc_file`)."""

    events: list  # [(absolute sample, MIDI bytes or engine.ParamChange)], sorted by sample
    messages: int  # messages turned into events
    malformed: int  # packets and messages ignored (bad framing, parse, address, arguments)


class PatchTarget:
    """What :func:`message_rows` reads of a synth, for a patch not playing yet (offline).

    ``params`` is the patch's parameter vector; :func:`read_osc_file` applies the file's
    ``/param`` messages to it in time order, so a later ``/bend`` uses the range then in force
    (as the live synth's own copy would). Thread: main.
    """

    def __init__(self, patch):
        self.patch = patch
        self.params = patch.param_vector()

    def param_target(self, path: str, value: float) -> tuple[int, float]:
        from .engine import param_target

        return param_target(self.patch, path, value)


def _float32_from_bits(bits: int) -> float:
    return struct.unpack(">f", struct.pack(">i", bits))[0]


def _bundle_messages(dgram: bytes, start: float, out: list) -> None:
    """Append ``(seconds, message)`` for every message of the bundle ``dgram`` (nested ones
    too: a nested bundle's tag, never earlier than its parent's)."""
    OscBundle, OscMessage, _ = _osc_parts()
    seconds, fraction = struct.unpack(">II", dgram[8:16])
    at = max(seconds + fraction / 2.0 ** 32, start)
    for content in OscBundle(dgram):
        if isinstance(content, OscMessage):
            out.append((at, content))
        else:
            _bundle_messages(content.dgram, at, out)


def osc_file_messages(data: bytes) -> tuple[list, int]:
    """The timed messages of an OSC file's bytes: ``([(seconds, OscMessage)], malformed)``.

    Packets whose framing or contents do not parse are counted in ``malformed`` and skipped;
    a size running past the end (or negative) ends the stream, the rest counted as one.
    """
    _, OscMessage, _ = _osc_parts()
    timed = []
    malformed = 0
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            malformed += 1  # a cut-short size
            break
        (size,) = struct.unpack(">i", data[pos:pos + 4])
        pos += 4
        if size <= 0 or pos + size > len(data):
            malformed += 1  # the framing is lost: nothing after it can be trusted
            break
        packet = data[pos:pos + size]
        pos += size
        found = []
        try:
            if packet.startswith(BUNDLE_TAG):
                _bundle_messages(packet, 0.0, found)
            else:
                found.append((0.0, OscMessage(packet)))
        except Exception:  # noqa: BLE001 - any parse failure is a malformed packet
            malformed += 1
            continue
        timed += found
    return timed, malformed


def read_osc_file(path, patch, samplerate) -> OscScore:
    """A file of size-prefixed OSC packets as engine events for ``patch`` at ``samplerate``.

    Thread: main. Messages are the addresses of :func:`message_rows`, checked against the
    patch; each plays at its bundle's time tag (seconds from the start, rounded to the
    nearest sample), messages at one time in file order. Raises :class:`OscFileError` for
    a file that cannot be read; malformed packets and messages are counted, not fatal.
    """
    from .engine import ParamChange

    path = Path(path)
    try:
        if path.is_dir():
            raise OscFileError(f"{path} is a directory, expected an OSC file")
        if path.stat().st_size > MAX_OSC_FILE_BYTES:
            raise OscFileError(f"{path}: larger than {MAX_OSC_FILE_BYTES >> 20} MB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise OscFileError(f"{path}: no such OSC file") from None
    except OSError as e:
        raise OscFileError(f"{path}: cannot read ({e.strerror or e})") from None
    timed, malformed = osc_file_messages(data)
    timed.sort(key=lambda item: item[0])  # stable: file order at one time
    target = PatchTarget(patch)
    events = []
    used = 0
    for seconds, message in timed:
        try:
            rows = message_rows(message.address, message.params, target)
        except (ValueError, TypeError, IndexError):
            malformed += 1
            continue
        at = int(round(seconds * samplerate))
        for status, d1, d2 in rows:
            if status == STATUS_PARAM:
                value = _float32_from_bits(d2)
                target.params[d1] = value
                events.append((at, ParamChange(d1, value)))
            elif status & 0xF0 == 0xC0:
                events.append((at, bytes([status, d1])))
            else:
                events.append((at, bytes([status, d1, d2])))
        used += 1
    return OscScore(events, used, malformed)


def osc_file_bytes(bundles) -> bytes:
    """The bytes of an OSC file: one size-prefixed bundle per ``(seconds, messages)``.

    ``messages``: ``[(address, *args)]``, arguments int, float (sent as float32) or str,
    e.g. ``[(0.5, [("/spikesynth/note_on", 60, 100)]), (1.5, [("/spikesynth/note_off", 60)])]``.
    The time tag holds ``seconds`` exactly to 2⁻³² s (no wall-clock epoch: seconds from
    the start, as SuperCollider's non-real-time scores).
    """
    _, _, OscMessageBuilder = _osc_parts()
    out = bytearray()
    for seconds, messages in bundles:
        seconds = float(seconds)
        if not (math.isfinite(seconds) and 0.0 <= seconds < 2.0 ** 32):
            raise ValueError(f"bundle time {seconds!r}: expected seconds >= 0")
        whole = int(seconds)
        fraction = min(int(round((seconds - whole) * 2.0 ** 32)), 2 ** 32 - 1)
        bundle = bytearray(BUNDLE_TAG + struct.pack(">II", whole, fraction))
        for address, *args in messages:
            builder = OscMessageBuilder(address=address)
            for arg in args:
                builder.add_arg(arg)
            dgram = builder.build().dgram
            bundle += struct.pack(">i", len(dgram)) + dgram
        out += struct.pack(">i", len(bundle)) + bundle
    return bytes(out)


def write_osc_file(path, bundles) -> None:
    """Write :func:`osc_file_bytes` of ``bundles`` to ``path`` atomically. Thread: main."""
    from .fileio import atomic_output

    data = osc_file_bytes(bundles)
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)
