"""Timed MIDI events: the event record the engine consumes, and a lock-free SPSC ring.

The engine consumes events as rows of a preallocated ``int32`` array of shape
``(capacity, 4)``; each row is ``(sample_offset, status, data1, data2)`` and rows are sorted
by ``sample_offset``. Raw MIDI bytes from any source go through :func:`parse_midi` first,
which rejects malformed messages (they are counted by the caller, never fatal).

The ring carries raw, timestamped MIDI from the MIDI thread (single producer) to the audio
thread (single consumer) without locks: the producer writes a slot and then publishes it by
advancing ``write``; the consumer reads slots up to ``write`` and then advances ``read``.
Both indices only grow (slot = index & mask), so neither side ever waits and nothing is
allocated after construction. When the ring is full the producer drops the message and
counts it.

Memory ordering
---------------
Plain loads and stores are enough on x86 (stores are seen in program order), but not on
weakly ordered CPUs such as AArch64 (Apple Silicon, Raspberry Pi 4/5) and POWER: there the
consumer could see the new ``write`` before the slot's bytes, and the producer could see
the new ``read`` (and overwrite a slot) before the consumer's loads of that slot are done.
Nor may the compiler reorder or hoist those accesses. So the two indices are accessed with
C++11 acquire/release atomics, emitted from numba through :func:`load_acquire` and
:func:`store_release` (LLVM ``load atomic … acquire`` / ``store atomic … release``: plain
``mov`` on x86, ``ldar`` / ``stlr`` on AArch64):

* producer (:func:`ring_push`): ``r = load_acquire(read)``; if there is room, write the slot
  with plain stores; then ``store_release(write, w + 1)``.
* consumer (:func:`ring_drain`): ``w = load_acquire(write)``; read slots ``read .. w - 1``
  with plain loads; then ``store_release(read, r_new)``.

The consumer's acquire of ``write`` synchronises with the producer's release of it, so every
slot store made before publishing happens-before the consumer's loads of that slot (no torn
or stale event). The producer's acquire of ``read`` synchronises with the consumer's release,
so the consumer's loads of a slot happen-before the producer reuses it (no event overwritten
while being read). Each index is written by one thread only, which may read its own index
plainly. The indices are aligned 64-bit words, so an atomic access is never torn. The
counters ``dropped`` and ``rejected`` are written by the producer only and read elsewhere for
statistics only (a stale value is harmless).

The producer side therefore runs compiled too: :meth:`EventRing.push` validates in Python
and hands the three bytes to the jitted :func:`ring_push`. Under ``NUMBA_DISABLE_JIT=1``
everything runs as Python and :func:`load_acquire` / :func:`store_release` are plain
indexing: CPython's GIL hand-over (a mutex) orders the threads then.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .mts import parse_mts

# Event record columns.
EV_OFFSET, EV_STATUS, EV_DATA1, EV_DATA2 = 0, 1, 2, 3
EVENT_FIELDS = 4

# Ring header slots (int64).
RING_WRITE, RING_READ, RING_DROPPED, RING_REJECTED = 0, 1, 2, 3
RING_HEADER = 4
# Ring slot columns (int64): arrival time in ns (host clock), status, data1, data2.
SLOT_TIME, SLOT_STATUS, SLOT_DATA1, SLOT_DATA2 = 0, 1, 2, 3
# An engine-only event (never valid MIDI: 0xF4 is undefined): set parameter data1 to the
# float32 whose bits are data2 (a UI knob, OSC, a host's automation).
STATUS_PARAM = 0xF4

# Number of data bytes that follow each channel-voice status (high nibble 0x8..0xE).
_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


# --- acquire/release access to one int64 array element -----------------------------------


def _is_int64_array(array) -> bool:
    return isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1


def _element_pointer(context, builder, array_type, array_value, index_type, index_value):
    array = context.make_array(array_type)(context, builder, array_value)
    index = context.cast(builder, index_value, index_type, types.intp)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index],
                                    wraparound=False)


@intrinsic
def _load_acquire_intrinsic(typingctx, array, index):
    if not (_is_int64_array(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0],
                               signature.args[1], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _store_release_intrinsic(typingctx, array, index, value):
    if not (_is_int64_array(array) and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0],
                               signature.args[1], args[1])
        stored = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(stored, ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


def load_acquire(array, index):
    """Read ``array[index]`` with acquire ordering (compiled code); plain read in Python.

    Thread: any. Later loads and stores of this thread are not moved before it, and it sees
    every store made before the matching :func:`store_release` by another thread.

    Parameters
    ----------
    array : int64 array, shape (n,)
    index : int
    """
    return array[index]


def store_release(array, index, value):
    """Write ``array[index] = value`` with release ordering (compiled code); plain in Python.

    Thread: any. Earlier loads and stores of this thread are complete (visible to a thread
    that then reads the value with :func:`load_acquire`) before the value is.
    """
    array[index] = value


@overload(load_acquire)
def _load_acquire_overload(array, index):
    if _is_int64_array(array) and isinstance(index, types.Integer):
        return lambda array, index: _load_acquire_intrinsic(array, index)
    return None


@overload(store_release)
def _store_release_overload(array, index, value):
    if (_is_int64_array(array) and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)):
        return lambda array, index, value: _store_release_intrinsic(array, index, value)
    return None


@njit(cache=True, nogil=True)
def read_acquire(array, index):
    """:func:`load_acquire` for Python callers: a compiled call, so the read has acquire
    ordering (a plain Python read of the array would not). Thread: any."""
    return load_acquire(array, index)


def parse_midi(message) -> tuple[int, int, int] | None:
    """Validate one raw MIDI message; return ``(status, data1, data2)`` or ``None``.

    Thread: any (pure function).

    Accepted: complete channel-voice messages (note off/on, poly aftertouch, control change,
    program change, channel aftertouch, pitch bend) with data bytes < 0x80. Rejected (returns
    ``None``): empty or truncated messages, stray data bytes, extra bytes, system messages
    (sysex, clock, active sensing: nothing the synth acts on).
    """
    try:
        n = len(message)
        if n == 0:
            return None
        status = int(message[0])
        if status < 0x80 or status > 0xEF:
            return None
        need = _DATA_BYTES[status >> 4]
        if n != 1 + need:
            return None
        d1 = int(message[1])
        d2 = int(message[2]) if need == 2 else 0
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):
        # Not a sequence of integers (e.g. a str, None elements): malformed, never fatal.
        return None
    if not (0 <= d1 < 0x80 and 0 <= d2 < 0x80):
        return None
    return status, d1, d2


def events_from_list(
    events, frames: int, out: np.ndarray | None = None
) -> tuple[np.ndarray, int, int]:
    """Convert ``[(sample_offset, midi_bytes), ...]`` into the engine's event array.

    Thread: main (allocates when ``out`` is None).

    Returns ``(array, n_valid, n_rejected)``. Events are stable-sorted by offset; an offset
    outside ``[0, frames)`` raises ``ValueError`` (a programming error, not bad MIDI), while
    malformed MIDI bytes are skipped and counted.
    """
    items = list(events)
    grow = out is None  # a SysEx may expand into several rows (one per retuned key)
    if out is None:
        out = np.zeros((max(len(items), 1), EVENT_FIELDS), dtype=np.int32)
    n = 0
    rejected = 0
    for offset, message in sorted(items, key=lambda e: e[0]):
        offset = int(offset)
        if not 0 <= offset < max(frames, 1):
            raise ValueError(f"event offset {offset} outside block of {frames} frames")
        parsed = parse_midi(message)
        rows = [parsed] if parsed is not None else _sysex_rows(message)
        if rows is None:
            rejected += 1
            continue
        for row in rows:
            if n >= out.shape[0]:
                if not grow:
                    raise ValueError("event array too small")
                grown = np.zeros((2 * out.shape[0] + len(rows), EVENT_FIELDS), dtype=np.int32)
                grown[:n] = out[:n]
                out = grown
            out[n, EV_OFFSET] = offset
            out[n, EV_STATUS], out[n, EV_DATA1], out[n, EV_DATA2] = row
            n += 1
    return out, n, rejected


def _sysex_rows(message):
    """Engine rows of a SysEx the synth understands (MIDI Tuning Standard), else None."""
    try:
        if len(message) == 0 or int(message[0]) != 0xF0:
            return None
    except (TypeError, ValueError, IndexError):
        return None
    return parse_mts(message)


class EventRing:
    """Fixed-size single-producer/single-consumer ring of timestamped MIDI messages.

    Thread: constructed on main; :meth:`push` on the MIDI thread only; :func:`ring_drain`
    (compiled) on the audio thread only.

    Parameters
    ----------
    capacity : int
        Slots; rounded up to a power of two.
    """

    def __init__(self, capacity: int = 4096):
        cap = 1
        while cap < capacity:
            cap <<= 1
        self.capacity = cap
        self.slots = np.zeros((cap, 4), dtype=np.int64)
        self.header = np.zeros(RING_HEADER, dtype=np.int64)
        # Load (or compile) the producer now, not on the first message of the MIDI thread.
        ring_push(np.zeros((1, 4), dtype=np.int64), np.zeros(RING_HEADER, dtype=np.int64),
                  0, 0x90, 0, 0)

    def push(self, time_ns: int, message) -> bool:
        """Validate and enqueue one raw message. Thread: MIDI (the single producer).

        Returns False when the message was malformed (counted in ``rejected``) or the ring
        was full (counted in ``dropped``). Never blocks, never raises on bad input.
        """
        parsed = parse_midi(message)
        header = self.header
        if parsed is None:
            rows = _sysex_rows(message)  # a tuning change: one row per retuned key
            if rows is None:
                header[RING_REJECTED] += 1
                return False
            ok = True
            for status, data1, data2 in rows:
                ok = bool(ring_push(self.slots, header, int(time_ns), status, data1, data2)) and ok
            return ok
        status, data1, data2 = parsed
        return bool(ring_push(self.slots, header, int(time_ns), status, data1, data2))

    def push_param(self, time_ns: int, index: int, value: float) -> bool:
        """Enqueue a parameter event (vector ``index`` to ``value``, already validated, e.g.
        by :meth:`spikesynth.engine.Synth.param_target`). Thread: the single producer (hold
        the lock the MIDI input shares). Returns False when the ring is full (counted)."""
        import struct

        bits = struct.unpack("<i", struct.pack("<f", float(value)))[0]
        return bool(ring_push(self.slots, self.header, int(time_ns), STATUS_PARAM, int(index),
                              bits))

    def push_row(self, time_ns: int, status: int, data1: int, data2: int) -> bool:
        """Enqueue one engine row as it is (e.g. ``STATUS_PARAM`` with float32 bits).

        Thread: the single producer. The caller has validated it. Returns False if the
        ring was full (counted in ``dropped``).
        """
        return bool(ring_push(self.slots, self.header, int(time_ns), int(status), int(data1),
                              int(data2)))

    @property
    def rejected(self) -> int:
        return int(self.header[RING_REJECTED])

    @property
    def dropped(self) -> int:
        return int(self.header[RING_DROPPED])

    def pending(self) -> int:
        return int(self.header[RING_WRITE] - self.header[RING_READ])


@njit(cache=True, nogil=True)
def ring_push(slots, header, time_ns, status, data1, data2):
    """Enqueue one validated message; return False (counted in ``dropped``) if the ring is full.

    Thread: the single producer (MIDI). Allocates nothing, never waits. Release/acquire
    ordering as described in the module docstring: the slot is complete before ``write``
    publishes it, and a slot is reused only after the consumer's ``read`` says it is done.

    Parameters
    ----------
    slots : int64 array, shape (capacity, 4)
        ``capacity`` a power of two.
    header : int64 array, shape (4,)
    time_ns : int
        Arrival time on the host clock (ns).
    status, data1, data2 : int
        The message, already validated by :func:`parse_midi`.
    """
    capacity = slots.shape[0]
    write = header[RING_WRITE]  # written by this thread only
    if write - load_acquire(header, RING_READ) >= capacity:
        header[RING_DROPPED] += 1
        return False
    slot = write & (capacity - 1)
    slots[slot, SLOT_TIME] = time_ns
    slots[slot, SLOT_STATUS] = status
    slots[slot, SLOT_DATA1] = data1
    slots[slot, SLOT_DATA2] = data2
    store_release(header, RING_WRITE, write + 1)  # publish only after the slot is complete
    return True


@njit(cache=True, nogil=True)
def ring_drain(slots, header, events, block_start_ns, latency_ns, samplerate, frames):
    """Move every published ring message into ``events`` with a sample offset in this block.

    Thread: audio (the single consumer). Allocates nothing.

    A message that arrived at host time ``t`` plays at ``t + latency_ns``; its offset is that
    time relative to ``block_start_ns`` (the host time of this block's first frame), clamped
    into ``[0, frames)`` so a late message plays at the block start rather than being lost,
    and offsets never go backwards.

    Parameters
    ----------
    slots : int64 array, shape (capacity, 4)
    header : int64 array, shape (4,)
    events : int32 array, shape (max_events, 4)
        Filled with ``(offset, status, data1, data2)`` rows, sorted by offset.
    block_start_ns, latency_ns : int
    samplerate : float
    frames : int

    Returns
    -------
    int
        Number of rows written. Messages beyond ``events``' capacity stay in the ring for the
        next block.
    """
    mask = slots.shape[0] - 1
    read = header[RING_READ]  # written by this thread only
    write = load_acquire(header, RING_WRITE)  # the slots below it are complete
    n = 0
    last = 0
    limit = events.shape[0]
    while read < write and n < limit:
        slot = read & mask
        t = slots[slot, SLOT_TIME] + latency_ns - block_start_ns
        x = t * samplerate * 1e-9
        if x >= frames:
            break  # belongs to a later block: the ring is in arrival order
        # Compare as float before converting: a far-off time (or NaN) must not reach int().
        offset = int(x) if x > 0.0 else 0
        if offset < last:
            offset = last
        events[n, EV_OFFSET] = offset
        events[n, EV_STATUS] = slots[slot, SLOT_STATUS]
        events[n, EV_DATA1] = slots[slot, SLOT_DATA1]
        events[n, EV_DATA2] = slots[slot, SLOT_DATA2]
        last = offset
        n += 1
        read += 1
    store_release(header, RING_READ, read)  # after the last load of a drained slot
    return n


# -- the output tap: a single-producer ring of audio frames ---------------------------------
@njit(cache=True, nogil=True)
def tap_write(out, ring, header):
    """Copy ``out`` (float32, (frames, channels)) into ``ring`` (float32, (capacity,
    channels), capacity a power of two): a single-producer ring of frames.

    Thread: audio (the one producer). ``header[0]`` counts the frames written (it only grows;
    frame ``n`` sits in slot ``n & (capacity - 1)``) and is advanced with a release store
    after the copy, so a reader that loads it with acquire semantics sees those frames
    written. Allocates nothing.
    """
    mask = ring.shape[0] - 1
    n = header[0]
    for i in range(out.shape[0]):
        j = (n + i) & mask
        for c in range(out.shape[1]):
            ring[j, c] = out[i, c]
    store_release(header, 0, n + out.shape[0])
