"""MIDI input: rtmidi ports → host-clock timestamps → the engine's :class:`EventRing`.

This is the only module that imports ``rtmidi`` (python-rtmidi), and it does so lazily, so
the rest of spikesynth (offline rendering, tests) works without it.

Scheduling: constant latency
----------------------------
Every message is stamped with its arrival time on the host clock (``time.monotonic_ns()``,
the clock the audio host also uses) and pushed into the ring: stamped as it reaches Python
in "callback" delivery, rebuilt from rtmidi's per-port delta times in "poll" delivery (see
Threads). The stamps in the ring never go backwards. The audio thread renders a
block whose first frame is at host time ``block_start_ns`` and calls
:func:`spikesynth.events.ring_drain`, which plays a message that arrived at ``t`` at sample
offset ``(t + latency_ns - block_start_ns) * samplerate``, clamped into the block. With a
latency larger than the arrival-to-render jitter (about one audio block plus scheduling
jitter, e.g. two block durations) every message keeps its exact spacing: timing jitter
becomes a fixed delay. A message that arrives too late for its slot plays at the start of
the next block instead of being lost.

Threads
-------
With ALSA, rtmidi runs its own input thread per opened port and calls
:meth:`MidiInput._on_message` there, which stamps and pushes at once ("callback" delivery).

With JACK, rtmidi would call a Python callback from the JACK *process* thread: it would have
to take the GIL inside a JACK cycle (64 frames = 1.33 ms at the test settings), and whenever
another thread holds the GIL longer than that the client misses its cycle, JACK reports
``client … was not finished`` (an xrun for the whole graph) and that cycle's MIDI is lost.
So JACK uses "poll" delivery: rtmidi queues messages in its own lock-free queue from the
process thread without touching Python, and one MIDI thread (``spikesynth-midi``) drains
every port's queue every ``poll_interval`` seconds. The arrival time is rebuilt from
rtmidi's delta times (measured with ``jack_get_time`` in the process thread) by
:class:`DeltaClock`, so the polling delay does not become timing jitter.

The ring has a single producer, so all ports of one :class:`MidiInput` (and any other
producer, such as :mod:`spikesynth.keys`, given the same ``lock``) serialise their pushes
with one ``threading.Lock``. The lock is never touched by the audio thread, which stays
lock-free.

Filtering
---------
MIDI clock/time code and active sensing are dropped inside rtmidi (``ignore_types``).
System exclusive is *not* ignored there: rtmidi's own SysEx filter treats everything after
an unterminated SysEx (``F0 …`` without ``F7``) as continuation and swallows it until some
message ends with ``F7``. Instead every port's bytes pass through a :class:`SysexSplitter`,
which reads them as the MIDI 1.0 specification says: any status byte other than a realtime
one (``F8``–``FF``) ends a SysEx, so the message it starts is kept; realtime bytes inside a
SysEx are messages of their own and do not end it. A complete MIDI Tuning Standard message
is passed on whole (the ring turns it into retune events: live MTS); any other SysEx is
dropped; both are counted (:attr:`MidiInput.sysex`). rtmidi's JACK backend still holds
back what follows an unterminated SysEx until a message ending with ``F7`` arrives (then
it is all delivered and split here, late but not lost); ALSA's sequencer ends the SysEx
at the next status byte. Anything else reaches :meth:`EventRing.push`, which validates it with
:func:`~spikesynth.events.parse_midi`: stray or malformed bytes are counted in the ring's
``rejected`` counter, a full ring is counted in ``dropped``; neither is ever fatal.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence

__all__ = [
    "APIS",
    "DeltaClock",
    "MidiInput",
    "MidiPortError",
    "MidiUnavailable",
    "SysexSplitter",
    "list_ports",
    "resolve_ports",
]

#: Backends spikesynth accepts, by the name used on the command line.
APIS = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK"}

_HINTS = {
    "alsa": "the ALSA sequencer needs /dev/snd/seq (kernel module snd-seq)",
    "jack": "is a JACK server running? (JACK_DEFAULT_SERVER selects a named server)",
}


class MidiUnavailable(RuntimeError):
    """python-rtmidi or the requested MIDI backend cannot be used on this machine."""


class MidiPortError(ValueError):
    """A ``--midi-in`` port specification matches no existing port."""


def _rtmidi():
    try:
        import rtmidi
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise MidiUnavailable(
            "MIDI input needs python-rtmidi: pip install 'spikesynth[live]'"
        ) from e
    return rtmidi


def _api_id(rtmidi, api: str) -> int:
    key = str(api).lower()
    if key not in APIS:
        raise MidiUnavailable(f"unknown MIDI API {api!r}; choose one of {', '.join(APIS)}")
    api_id = getattr(rtmidi, APIS[key])
    if api_id not in rtmidi.get_compiled_api():
        compiled = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api())
        raise MidiUnavailable(
            f"this python-rtmidi build has no {key} backend (it has: {compiled or 'none'})"
        )
    return api_id


def _open_client(rtmidi, api: str, client_name: str, queue_size: int = 1024):
    """Create one rtmidi input client; backend failures become :class:`MidiUnavailable`."""
    api_id = _api_id(rtmidi, api)
    try:
        midi_in = rtmidi.MidiIn(api_id, client_name, queue_size_limit=queue_size)
    except rtmidi.RtMidiError as e:
        raise MidiUnavailable(
            f"cannot open the {api} MIDI backend: {e} ({_HINTS[api.lower()]})"
        ) from e
    # Ignore clock/time code and active sensing; SysEx reaches SysexSplitter (see the module
    # docstring: rtmidi's SysEx filter swallows what follows an unterminated SysEx).
    midi_in.ignore_types(sysex=False, timing=True, active_sense=True)
    return midi_in


def list_ports(api: str = "alsa", client_name: str = "spikesynth-list") -> list[str]:
    """Names of the MIDI sources ``api`` can connect to. Thread: main.

    Raises :class:`MidiUnavailable` when rtmidi or the backend is missing.
    """
    rtmidi = _rtmidi()
    midi_in = _open_client(rtmidi, api, client_name)
    try:
        return list(midi_in.get_ports())
    finally:
        midi_in.delete()


def resolve_ports(spec: str | int | Sequence[str | int] | None, available: Sequence[str],
                  exclude: Callable[[str], bool] | None = None) -> list[str]:
    """Turn a ``--midi-in`` specification into the port names to connect. Thread: main.

    Parameters
    ----------
    spec : str, int, sequence of those, or None
        ``"all"``: every available port (minus ``exclude``); ``"none"`` or None: no port;
        an integer (or a string of digits): the port at that index in ``available``; any
        other string: every port whose name contains it, case-insensitively. A sequence
        combines several items.
    available : sequence of str
        Port names as the backend lists them.
    exclude : callable, optional
        ``exclude(name) -> bool``: ports that ``"all"`` must skip (e.g. our own ports).

    Returns
    -------
    list of str
        Distinct names, in ``available`` order.

    Raises
    ------
    MidiPortError
        An index out of range or a name matching nothing; the message lists the ports.
    """
    if spec is None:
        return []
    items = [spec] if isinstance(spec, (str, int)) else list(spec)
    chosen: set[str] = set()
    for item in items:
        text = str(item).strip()
        low = text.lower()
        if low == "none" or text == "":
            continue
        if low == "all":
            chosen.update(p for p in available if not (exclude and exclude(p)))
            continue
        if isinstance(item, int) or text.isdigit():
            index = int(text)
            if not 0 <= index < len(available):
                raise MidiPortError(f"no MIDI input port {index}; {_describe(available)}")
            chosen.add(available[index])
            continue
        matches = [p for p in available if low in p.lower()]
        if not matches:
            raise MidiPortError(f"no MIDI input port matches {text!r}; {_describe(available)}")
        chosen.update(matches)
    return [p for p in available if p in chosen]


def _describe(available: Sequence[str]) -> str:
    if not available:
        return "no MIDI input ports exist (use --midi-in none and connect to our virtual port)"
    lines = "\n".join(f"  {i}: {name}" for i, name in enumerate(available))
    return f"available ports:\n{lines}"


_STATUS_BYTE = re.compile(rb"[\x80-\xff]")

# Data bytes after each status byte (system common included); SysEx (F0) is variable.
_LENGTH = {**{s: 2 for s in range(0x80, 0xC0)}, **{s: 1 for s in range(0xC0, 0xE0)},
           **{s: 2 for s in range(0xE0, 0xF0)}, 0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF4: 0, 0xF5: 0,
           0xF6: 0, 0xF7: 0}


MAX_SYSEX = 1024  # bytes: a single-note tuning change of all 128 keys is 519


def _is_tuning(body) -> bool:
    """``F0 7E|7F device 08 …``: a MIDI Tuning Standard message (the ring parses it)."""
    return len(body) >= 4 and body[0] == 0xF0 and body[1] in (0x7E, 0x7F) and body[3] == 0x08


class SysexSplitter:
    """One port's MIDI byte stream read as the MIDI 1.0 specification says. Thread: MIDI.

    :meth:`feed` takes what rtmidi delivered (usually one whole message, but after an
    unterminated SysEx several messages run together) and returns the messages in it:

    * ``F0`` starts a SysEx (counted in :attr:`sysex`); ``F7`` ends it, and so does any
      other non-realtime status byte (counted in :attr:`unterminated` too), which then
      starts its own message. A complete MIDI Tuning Standard SysEx (universal, sub-ID
      ``08``) of at most :data:`MAX_SYSEX` bytes is returned whole (counted in
      :attr:`tunings`: the ring turns it into retune events); every other SysEx, or one cut
      short, is dropped;
    * realtime bytes ``F8``–``FF`` are one-byte messages wherever they appear, inside a
      SysEx or a message included, and change nothing else;
    * inside what follows a SysEx in one delivery, a channel message's running status is
      followed; SysEx and system common messages cancel it; data bytes with no status to
      belong to are dropped (:attr:`stray`).

    A delivery that neither starts with ``F0`` nor comes while a SysEx is open, the usual
    case, is returned as it is (a malformed message reaches the ring unchanged, which
    rejects and counts it).
    """

    __slots__ = ("in_sysex", "sysex", "unterminated", "stray", "tunings", "_status",
                 "_partial", "_body")

    def __init__(self):
        self.in_sysex = False
        #: SysEx messages received (ended by F7 or by a status byte).
        self.sysex = 0
        #: Of those, the tuning messages passed on whole.
        self.tunings = 0
        self._body = bytearray()  # the open SysEx's bytes so far (up to MAX_SYSEX)
        #: Of those, the SysEx messages a status byte ended (no F7).
        self.unterminated = 0
        #: Data bytes dropped because no status byte came before them.
        self.stray = 0
        self._status = 0  # running status (channel messages only), 0: none
        self._partial = bytearray()  # a message begun at the end of the previous feed

    def feed(self, message) -> list[bytes]:
        """The messages in ``message`` (a sequence of ints 0–255), in order."""
        if not len(message):
            return [message]  # the ring rejects and counts it
        if not self.in_sysex and not self._partial and message[0] != 0xF0:
            # No SysEx involved: the message as it came (the ring validates it). rtmidi
            # delivers whole messages, so an F0 inside one that does not start with F0 is a
            # malformed message, rejected and counted there, not the start of a SysEx.
            if 0x80 <= message[0] < 0xF8:  # realtime leaves running status alone
                self._status = message[0] if message[0] < 0xF0 else 0
            return [message]
        try:
            data = bytes(message)
        except (TypeError, ValueError):
            return [message]  # not bytes at all: the ring rejects and counts it
        out: list[bytes] = []
        partial = self._partial
        i, n = 0, len(data)
        while i < n:
            if self.in_sysex:  # take the SysEx data at C speed: to the next status byte
                found = _STATUS_BYTE.search(data, i)
                end = n if found is None else found.start()
                if len(self._body) + end - i <= MAX_SYSEX:
                    self._body += data[i:end]
                else:
                    self._body = bytearray(b"\xff")  # too long to be a tuning: dropped
                if found is None:
                    break
                i = end
            b = data[i]
            i += 1
            if b >= 0xF8:  # realtime: a message of its own, anywhere
                out.append(bytes([b]))
                continue
            if self.in_sysex:
                if b == 0xF7:
                    self.in_sysex = False
                    body = self._body
                    if _is_tuning(body) and len(body) < MAX_SYSEX:
                        out.append(bytes(body) + b"\xf7")
                        self.tunings += 1
                    continue
                if b < 0x80:
                    continue  # SysEx data
                self.in_sysex = False  # any other status byte ends the SysEx ...
                self.unterminated += 1  # ... and starts its own message below
            if b == 0xF0:
                if partial:
                    out.append(bytes(partial))  # cut short: the ring rejects and counts it
                    partial.clear()
                self.in_sysex = True
                self.sysex += 1
                self._status = 0
                self._body = bytearray(b"\xf0")
                continue
            if b >= 0x80:
                if partial:
                    out.append(bytes(partial))
                    partial.clear()
                if b == 0xF7:
                    continue  # a stray end of SysEx
                self._status = b if b < 0xF0 else 0
                partial.append(b)
            elif partial:
                partial.append(b)
            elif self._status:
                partial.append(self._status)
                partial.append(b)
            else:
                self.stray += 1
                continue
            if partial and len(partial) == 1 + _LENGTH[partial[0]]:
                out.append(bytes(partial))
                partial.clear()
        return out


class DeltaClock:
    """Rebuild host-clock arrival times from rtmidi's per-port delta times.

    Thread: MIDI (one instance per port, used by the polling thread only).

    rtmidi reports, with each queued message, the time since the previous message on the same
    port, measured when it arrived. Summing the deltas gives arrival times ``c_i`` on the
    backend's clock up to an unknown offset ``o`` (``t_i = c_i + o``). Each message is
    collected at host time ``now_i >= t_i``, so every ``now_i - c_i`` is an upper bound of
    ``o``; their running minimum converges to the true offset plus the smallest polling
    delay seen. To follow a slow drift between the two clocks the bound may rise by
    ``max_drift`` seconds per second; a stamp never exceeds the time it was collected.

    That rise is also the cost of silence: after ``T`` seconds without a message the next
    stamp may be late by up to ``T * max_drift`` (never more than its own collection delay,
    about one ``poll_interval``). The default, 1e-4 (100 ppm), keeps a note after a 1 s
    pause within 0.1 ms and still covers two free-running crystal clocks; with JACK2's
    default (system) clock source on Linux both clocks are ``CLOCK_MONOTONIC`` and do not
    drift at all.

    Parameters
    ----------
    max_drift : float
        Fractional clock-rate difference to follow (1e-4 = 0.1 ms per second).
    """

    def __init__(self, max_drift: float = 1e-4):
        self.max_drift = float(max_drift)
        self._sum_ns = 0
        self._offset_ns: int | None = None
        self._last_now = 0

    def stamp(self, delta_s: float, now_ns: int) -> int:
        """Arrival time (ns, host clock) of one message collected at ``now_ns``."""
        return self.stamps((delta_s,), now_ns)[0]

    def stamps(self, deltas_s, now_ns: int) -> list[int]:
        """Arrival times (ns, host clock) of consecutive messages all collected at ``now_ns``.

        Only the last message bounds the offset (the earlier ones arrived before it), so a
        batch keeps its spacing instead of bunching up at the collection time.
        """
        total = self._sum_ns
        sums = []
        for delta in deltas_s:
            total += int(round(max(float(delta), 0.0) * 1e9))
            sums.append(total)
        self._sum_ns = total
        bound = now_ns - total
        if self._offset_ns is None:
            self._offset_ns = bound
        else:
            leak = int((now_ns - self._last_now) * self.max_drift)
            self._offset_ns = min(bound, self._offset_ns + leak)
        self._last_now = now_ns
        return [c + self._offset_ns for c in sums]


class MidiInput:
    """Open MIDI input: one virtual port plus connections to existing ports, feeding a ring.

    Thread: constructed and closed on main; messages are delivered on MIDI threads (see the
    module docstring).

    Parameters
    ----------
    ring : spikesynth.events.EventRing
        Where timestamped messages go (this object is its producer).
    api : {"alsa", "jack"}
        MIDI backend.
    connect : str, int, sequence or None
        Existing ports to connect to, see :func:`resolve_ports` (``"all"`` by default,
        ``"none"`` for the virtual port only).
    port_name : str
        Name of the virtual input port other programs connect to.
    client_name : str
        Backend client name (ALSA sequencer client / JACK client).
    channel : int, optional
        1–16: keep only channel messages on that channel (others are counted in
        :attr:`filtered`). None: all channels (omni).
    lock : threading.Lock, optional
        Serialises pushes into ``ring``; share it with any other producer of the same ring.
    clock : callable
        ``clock() -> int`` nanoseconds, the host clock the audio thread also uses.
    delivery : {"callback", "poll"}, optional
        How messages leave rtmidi; by default "callback" for ALSA and "poll" for JACK.
    poll_interval : float
        Seconds between polls in "poll" delivery.
    queue_size : int
        rtmidi's per-port queue, in messages ("poll" delivery); rtmidi drops (and warns)
        beyond it.

    Raises
    ------
    MidiUnavailable
        python-rtmidi or the backend is missing.
    MidiPortError
        ``connect`` names a port that does not exist.
    """

    def __init__(self, ring, *, api: str = "alsa", connect="all", port_name: str = "spikesynth",
                 client_name: str = "spikesynth", channel: int | None = None,
                 lock: threading.Lock | None = None,
                 clock: Callable[[], int] = time.monotonic_ns,
                 delivery: str | None = None, poll_interval: float = 0.001,
                 queue_size: int = 8192):
        if channel is not None and not 1 <= int(channel) <= 16:
            raise ValueError(f"MIDI channel must be 1-16, not {channel}")
        self.ring = ring
        self.api = str(api).lower()
        if delivery is None:
            delivery = "poll" if self.api == "jack" else "callback"
        if delivery not in ("callback", "poll"):
            raise ValueError(f"delivery must be 'callback' or 'poll', not {delivery!r}")
        self.delivery = delivery
        self.poll_interval = float(poll_interval)
        self.queue_size = int(queue_size)
        self.port_name = port_name
        self.client_name = client_name
        self.channel = None if channel is None else int(channel)
        self._channel_nibble = -1 if channel is None else int(channel) - 1
        self.lock = lock if lock is not None else threading.Lock()
        self.clock = clock
        #: Channel messages dropped by the channel filter.
        self.filtered = 0
        #: Names of the existing ports this input is connected to.
        self.connected: list[str] = []
        self._clients = []   # [(rtmidi.MidiIn, DeltaClock, SysexSplitter)]
        self._last_ns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        rtmidi = _rtmidi()
        try:
            virtual = self._new_client(rtmidi)
            virtual.open_virtual_port(port_name)
            available = list(virtual.get_ports())
            targets = resolve_ports(connect, available, exclude=self._is_own_port)
            for k, target in enumerate(targets, 1):
                self._connect(rtmidi, target, k)
            if self.delivery == "poll":
                self._thread = threading.Thread(target=self._poll_loop, name="spikesynth-midi",
                                                daemon=True)
                self._thread.start()
        except BaseException:
            self.close()
            raise

    def _new_client(self, rtmidi):
        midi_in = _open_client(rtmidi, self.api, self.client_name, self.queue_size)
        splitter = SysexSplitter()
        self._clients.append((midi_in, DeltaClock(), splitter))
        if self.delivery == "callback":
            midi_in.set_callback(lambda event, data=None: self._on_message(event, splitter))
        return midi_in

    def _is_own_port(self, name: str) -> bool:
        # JACK lists "client:port"; ALSA lists "client:port client#:port#". Our own clients
        # only have input ports (never listed as sources), but another spikesynth's might be.
        return name.split(":", 1)[0].strip() == self.client_name

    def _connect(self, rtmidi, target: str, k: int):
        # One rtmidi client per connection. Look the name up again in this client's own
        # listing: indices can shift if ports appeared since the first listing.
        midi_in = self._new_client(rtmidi)
        ports = list(midi_in.get_ports())
        if target not in ports:
            raise MidiPortError(f"MIDI port {target!r} disappeared; {_describe(ports)}")
        try:
            midi_in.open_port(ports.index(target), f"{self.port_name} in {k}")
        except rtmidi.RtMidiError as e:
            raise MidiUnavailable(f"cannot connect to MIDI port {target!r}: {e}") from e
        self.connected.append(target)

    def _on_message(self, event, data=None):
        """rtmidi callback ("callback" delivery). Thread: MIDI (rtmidi's input thread).

        ``event`` is ``(message_bytes, delta_seconds)``; the delta is ignored: the message
        is stamped now. ``data`` is the port's :class:`SysexSplitter`.
        """
        if data is None:
            self._deliver(event[0], -1)
            return
        for message in data.feed(event[0]):
            self._deliver(message, -1)

    def _deliver(self, message, time_ns: int):
        """Filter by channel, stamp (``time_ns < 0``: now) and push. Thread: MIDI.

        Never prints, blocks only on the producers' lock, never raises on bad input.
        """
        if self._channel_nibble >= 0 and message:
            status = message[0]
            if 0x80 <= status < 0xF0 and (status & 0x0F) != self._channel_nibble:
                self.filtered += 1
                return
        with self.lock:
            # Under the lock, so the ring's timestamps never go backwards.
            t = self.clock() if time_ns < 0 else time_ns
            if t < self._last_ns:
                t = self._last_ns
            self._last_ns = t
            self.ring.push(t, message)

    def _poll_loop(self):
        """Drain rtmidi's queues ("poll" delivery). Thread: MIDI (``spikesynth-midi``)."""
        clients = list(self._clients)
        stop, clock, interval = self._stop, self.clock, self.poll_interval
        while not stop.is_set():
            idle = True
            for midi_in, delta_clock, splitter in clients:
                batch = []
                while len(batch) < 4096:
                    item = midi_in.get_message()
                    if item is None:
                        break
                    batch.append(item)
                if batch:
                    idle = False
                    stamps = delta_clock.stamps([d for _, d in batch], clock())
                    for (message, _), t in zip(batch, stamps, strict=True):
                        for part in splitter.feed(message):
                            self._deliver(part, t)
            if idle:
                stop.wait(interval)

    @property
    def ports(self) -> list[str]:
        """Our own port names as other programs see them (virtual port first)."""
        return [self.port_name] + [f"{self.port_name} in {k}"
                                   for k in range(1, len(self.connected) + 1)]

    def close(self) -> None:
        """Stop delivery, close every port, release the backend clients. Thread: main.

        Idempotent.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        clients, self._clients = self._clients, []
        for midi_in, _, _ in clients:
            try:
                midi_in.cancel_callback()
            except Exception:
                pass
            try:
                midi_in.close_port()
            finally:
                midi_in.delete()

    @property
    def sysex(self) -> int:
        """SysEx messages received on every port; only tuning messages are passed on (see
        :class:`SysexSplitter`)."""
        return sum(splitter.sysex for _, _, splitter in self._clients)

    @property
    def closed(self) -> bool:
        return not self._clients

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
