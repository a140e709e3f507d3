"""Tests of the event record, MIDI validation and the SPSC ring (spikesynth/events.py)."""

from __future__ import annotations

import math
import re
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from spikesynth.events import (
    EV_DATA1,
    EV_DATA2,
    EV_OFFSET,
    EV_STATUS,
    EVENT_FIELDS,
    RING_HEADER,
    EventRing,
    events_from_list,
    load_acquire,
    parse_midi,
    ring_drain,
    ring_push,
    store_release,
)

# Both the compiled kernel and its plain-Python body (what NUMBA_DISABLE_JIT=1 runs).
# (With NUMBA_DISABLE_JIT=1 ring_drain is already the plain function.)
_PY_DRAIN = getattr(ring_drain, "py_func", ring_drain)
DRAINS = pytest.mark.parametrize("drain", [ring_drain, _PY_DRAIN], ids=["compiled", "python"])


def reference_parse(message: bytes):
    """Independent oracle: the MIDI 1.0 channel-voice table, written out by status range."""
    if not message:
        return None
    status = message[0]
    if 0x80 <= status <= 0xBF or 0xE0 <= status <= 0xEF:
        length = 3  # note off/on, poly pressure, control change, pitch bend
    elif 0xC0 <= status <= 0xDF:
        length = 2  # program change, channel pressure
    else:
        return None  # data byte first (running status / stray) or a system message
    if len(message) != length or any(b >= 0x80 for b in message[1:]):
        return None
    return (status, message[1], message[2] if length == 3 else 0)


# --- parse_midi ------------------------------------------------------------------------


@given(st.binary(max_size=8))
@settings(max_examples=2000)
def test_parse_midi_matches_reference_on_arbitrary_bytes(data):
    assert parse_midi(data) == reference_parse(data)
    assert parse_midi(list(data)) == reference_parse(data)


@st.composite
def channel_messages(draw):
    status = draw(st.integers(0x80, 0xEF))
    n = 1 if (status >> 4) in (0xC, 0xD) else 2
    data = draw(st.lists(st.integers(0, 127), min_size=n, max_size=n))
    return bytes([status, *data])


@given(channel_messages())
def test_parse_midi_accepts_every_valid_channel_message(message):
    parsed = parse_midi(message)
    assert parsed is not None
    assert parsed[0] == message[0] and parsed[1] == message[1]
    assert parsed[2] == (message[2] if len(message) == 3 else 0)


@given(st.one_of(
    st.none(), st.integers(), st.text(max_size=4),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=2), st.floats()),
             max_size=4),
))
def test_parse_midi_never_raises_on_junk(junk):
    result = parse_midi(junk)
    assert result is None or all(0 <= v < 256 for v in result)


@pytest.mark.parametrize("message, expected", [
    (b"\x90\x3c\x64", (0x90, 60, 100)),
    (b"\x9f\x00\x00", (0x9F, 0, 0)),        # note on velocity 0: still a valid note on
    (b"\xe3\x00\x40", (0xE3, 0, 64)),       # pitch bend centre, channel 4
    (b"\xc0\x05", (0xC0, 5, 0)),            # program change: one data byte
    (b"\xd1\x7f", (0xD1, 127, 0)),
    (b"\x3c\x64", None),                    # running status is not accepted
    (b"\x90\x3c", None),                    # truncated
    (b"\x90\x3c\x64\x00", None),            # extra byte
    (b"\x90\x80\x64", None),                # data byte with the high bit
    (b"\xc0\x05\x00", None),                # program change with two data bytes
    (b"\xf8", None), (b"\xfe", None), (b"\xf0\x7e\xf7", None), (b"", None),
])
def test_parse_midi_examples(message, expected):
    assert parse_midi(message) == expected


# --- events_from_list ------------------------------------------------------------------


def test_events_from_list_sorts_stably_and_counts_rejected():
    events = [
        (5, b"\x90\x40\x64"),
        (0, b"\x80\x3c\x00"),
        (5, b"\x80\x40\x00"),     # same offset: keeps input order after the first one
        (3, b"\x12\x34"),         # malformed: skipped, counted
        (2, [0xB0, 7, 100]),
    ]
    array, n, rejected = events_from_list(events, frames=8)
    assert (n, rejected) == (4, 1)
    assert array.dtype == np.int32 and array.shape[1] == EVENT_FIELDS
    assert array[:n].tolist() == [
        [0, 0x80, 0x3C, 0], [2, 0xB0, 7, 100], [5, 0x90, 0x40, 0x64], [5, 0x80, 0x40, 0]]


def test_events_from_list_uses_given_array_and_rejects_bad_offsets():
    out = np.full((2, EVENT_FIELDS), -1, dtype=np.int32)
    array, n, rejected = events_from_list([(1, b"\xc0\x01")], frames=4, out=out)
    assert array is out and n == 1 and out[0].tolist() == [1, 0xC0, 1, 0]
    with pytest.raises(ValueError, match="outside"):
        events_from_list([(4, b"\xc0\x01")], frames=4)
    with pytest.raises(ValueError, match="outside"):
        events_from_list([(-1, b"\xc0\x01")], frames=4)
    with pytest.raises(ValueError, match="too small"):
        events_from_list([(0, b"\xc0\x01")] * 3, frames=4, out=out)
    empty, n, rejected = events_from_list([], frames=0)
    assert (n, rejected) == (0, 0) and empty.shape == (1, EVENT_FIELDS)


# --- EventRing and ring_drain ----------------------------------------------------------


def encode(i: int) -> bytes:
    """A unique valid note message for each i < 2**18."""
    return bytes([0x90 | (i & 0xF), (i >> 4) & 0x7F, (i >> 11) & 0x7F])


def decode(row) -> int:
    return (int(row[EV_STATUS]) & 0xF) | (int(row[EV_DATA1]) << 4) | (int(row[EV_DATA2]) << 11)


def test_ring_capacity_rounds_up_and_push_rejects_malformed():
    ring = EventRing(100)
    assert ring.capacity == 128 and ring.slots.shape == (128, 4)
    assert not ring.push(0, b"\x12")
    assert not ring.push(0, b"\xf8")
    assert ring.rejected == 2 and ring.dropped == 0 and ring.pending() == 0
    assert ring.push(0, [0x90, 1, 2]) and ring.pending() == 1


@DRAINS
def test_ring_overflow_counts_drops_and_keeps_the_oldest(drain):
    ring = EventRing(8)
    results = [ring.push(i, encode(i)) for i in range(20)]
    assert results == [True] * 8 + [False] * 12
    assert ring.dropped == 12 and ring.rejected == 0 and ring.pending() == 8
    events = np.zeros((32, EVENT_FIELDS), dtype=np.int32)
    n = drain(ring.slots, ring.header, events, 10**12, 0, 48000.0, 64)
    assert n == 8 and [decode(r) for r in events[:n]] == list(range(8))
    assert ring.pending() == 0
    assert ring.push(99, encode(99)) and ring.pending() == 1  # usable again after draining


def test_ring_threads_deliver_every_message_once_in_order():
    """A producer thread and a consumer in ring_drain (nogil): 100k messages, none lost."""
    total = 100_000
    ring = EventRing(1024)
    events = np.zeros((256, EVENT_FIELDS), dtype=np.int32)
    ring_drain(ring.slots, ring.header, events, 0, 0, 48000.0, 1)  # compile outside the race
    deadline = time.monotonic() + 120.0
    producer_error = []

    def produce():
        try:
            for i in range(total):
                # Never overflow: wait (without the consumer's help) for a free slot.
                while ring.pending() >= ring.capacity:
                    if time.monotonic() > deadline:
                        raise TimeoutError("consumer stalled")
                    time.sleep(0)
                assert ring.push(i, encode(i))
        except BaseException as e:  # reported by the main thread
            producer_error.append(e)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    received = []
    # block_start far in the future: every published message is "late", offset 0, drained.
    while len(received) < total and time.monotonic() < deadline and not producer_error:
        n = ring_drain(ring.slots, ring.header, events, 10**15, 0, 48000.0, 1)
        received.extend(decode(r) for r in events[:n])
    thread.join(10)
    assert not producer_error, producer_error
    assert received == list(range(total))
    assert ring.dropped == 0 and ring.rejected == 0 and ring.pending() == 0


def expected_offset(t, latency, start, sr):
    return math.floor((t + latency - start) * sr / 1e9)


@DRAINS
def test_ring_drain_offsets_from_timestamps_and_latency(drain):
    sr, frames = 48000.0, 64
    start = 10_000_000_000          # host time of the block's first frame (ns)
    latency = 5_000_000             # 5 ms = 240 samples
    ring = EventRing(16)
    sample_ns = 1e9 / sr
    # Arrival times relative to (start - latency): in samples, i.e. the expected offset.
    positions = [-1000.0, -0.5, 0.0, 10.25, 10.75, 63.5, 64.2, 100.0]
    times = [int(round(start - latency + p * sample_ns)) for p in positions]
    for i, t in enumerate(times):
        assert ring.push(t, encode(i))
    events = np.zeros((16, EVENT_FIELDS), dtype=np.int32)

    n = drain(ring.slots, ring.header, events, start, latency, sr, frames)
    assert n == 6  # the two messages at/after sample 64 belong to later blocks
    got = events[:n, EV_OFFSET].tolist()
    want = [min(max(expected_offset(t, latency, start, sr), 0), frames - 1) for t in times[:n]]
    assert got == want == [0, 0, 0, 10, 10, 63]
    assert [decode(r) for r in events[:n]] == list(range(6))
    assert ring.pending() == 2

    # A zero-length block drains nothing.
    assert drain(ring.slots, ring.header, events, start + 64 * sample_ns, latency, sr, 0) == 0
    # The next block (starting 64 samples later) picks them up with offsets 0 and 36.
    n = drain(ring.slots, ring.header, events, int(start + 64 * sample_ns), latency, sr, frames)
    assert n == 2 and events[:n, EV_OFFSET].tolist() == [0, 36]
    assert [decode(r) for r in events[:n]] == [6, 7]


@DRAINS
def test_ring_drain_respects_event_capacity_and_far_future(drain):
    ring = EventRing(16)
    for i in range(10):
        ring.push(1000 + i, encode(i))
    ring.push(2**62, encode(10))    # absurdly far in the future: stays, never overflows int()
    events = np.zeros((4, EVENT_FIELDS), dtype=np.int32)
    seen = []
    for _ in range(3):
        n = drain(ring.slots, ring.header, events, 2000, 0, 48000.0, 512)
        assert n <= 4
        seen += [decode(r) for r in events[:n]]
    assert seen == list(range(10)) and ring.pending() == 1


@DRAINS
@given(
    gaps=st.lists(st.integers(0, 2_000_000), min_size=1, max_size=40),
    start=st.integers(-50_000_000, 50_000_000),
    latency=st.integers(0, 20_000_000),
    frames=st.integers(1, 2048),
    sr=st.sampled_from([22050.0, 44100.0, 48000.0, 96000.0]),
)
@settings(max_examples=200, deadline=None)
def test_ring_drain_property(drain, gaps, start, latency, frames, sr):
    """Offsets are clamp(floor((t + L - start) * sr)), sorted; later ones stay queued."""
    ring = EventRing(64)
    times = np.cumsum(gaps).tolist()
    for i, t in enumerate(times):
        ring.push(t, encode(i))
    events = np.zeros((64, EVENT_FIELDS), dtype=np.int32)
    n = drain(ring.slots, ring.header, events, start, latency, sr, frames)
    raw = [(t + latency - start) * sr * 1e-9 for t in times]
    k = next((i for i, x in enumerate(raw) if x >= frames), len(times))
    assert n == k and ring.pending() == len(times) - k
    offsets = events[:n, EV_OFFSET].tolist()
    assert offsets == [max(int(x), 0) if x > 0 else 0 for x in raw[:n]]
    assert offsets == sorted(offsets) and all(0 <= o < frames for o in offsets)
    assert [decode(r) for r in events[:n]] == list(range(n))
    assert events[:n, EV_DATA2].max(initial=0) < 128 and events[:n, EV_DATA1].max(initial=0) < 128


# --- the ring under concurrency: release/acquire ordering --------------------------------
#
# Event i is stamped so that ring_drain (block start 0, no latency, a 1 MHz "sample rate")
# gives it offset i: time = 1000 i + 500 ns is sample i + 0.5. Its bytes are derived from i
# (status low nibble, data1) plus a 7-bit checksum of i in data2, so a slot read before its
# stores were visible (a stale or half-written event) shows up as a mismatch.
STRESS_SR = 1e6
STRESS_FRAMES = 2**30


@njit(cache=False)
def stress_bytes(i):
    checksum = ((i * 2654435761) >> 13) & 0x7F
    return 0x90 | (i & 0xF), (i >> 4) & 0x7F, checksum


# The race's control words (int64): the main thread sets ABORT (a stalled side gives up) or
# FINISH (the producer stops early); the producer publishes DONE (release) after its last push.
ABORT, FINISH, DONE = 0, 1, 2


@njit(nogil=True)
def stress_consume(slots, header, events, received, control):
    """The audio side: drain until the producer is done and the ring empty (GIL released)."""
    n_total = 0
    extra = 0
    while load_acquire(control, ABORT) == 0:
        done = load_acquire(control, DONE)  # before the drain: every push is visible to it
        n = ring_drain(slots, header, events, 0, 0, STRESS_SR, STRESS_FRAMES)
        for k in range(n):
            if n_total < received.shape[0]:
                for c in range(EVENT_FIELDS):
                    received[n_total, c] = events[k, c]
                n_total += 1
            else:
                extra += 1  # more events than were sent: duplicates
        if done != 0 and n == 0:
            break
    return n_total, extra


@njit(nogil=True)
def stress_produce(slots, header, total, control):
    """A compiled producer flooding the ring as fast as it can, up to ``total`` events or
    until FINISH; returns (events pushed, full-ring retries)."""
    retries = 0
    i = 0
    while i < total and not ((i & 1023) == 0 and load_acquire(control, FINISH) != 0):
        status, d1, d2 = stress_bytes(i)
        while not ring_push(slots, header, 1000 * i + 500, status, d1, d2):
            retries += 1
            if load_acquire(control, ABORT) != 0:
                return i, retries
        i += 1
    store_release(control, DONE, 1)
    return i, retries


def python_produce(ring, total, control, out):
    """The MIDI side as the hosts run it: EventRing.push from a Python thread."""
    retries = 0
    i = 0
    try:
        while i < total and not control[FINISH]:
            message = bytes(stress_bytes(i))
            while not ring.push(1000 * i + 500, message):
                retries += 1
                if control[ABORT]:
                    out.append((i, retries))
                    return
                time.sleep(0)  # let the consumer run (2 cores shared)
            i += 1
        out.append((i, retries))
    except BaseException as e:  # reported by the main thread
        out.append(e)
    finally:
        store_release(control, DONE, 1)


# Event counts: ample on an idle machine (64-slot ring: tens of thousands of wraps). On a
# loaded one (two test processes, spinning threads time-sliced) the producer is stopped
# after RACE_S, and the check is of what it pushed; at least MIN_EVENTS must have raced.
RACE_S, MIN_EVENTS = 30.0, 100_000


@pytest.mark.parametrize("producer, total", [("python", 200_000), ("compiled", 4_000_000)])
def test_ring_stress_no_event_lost_duplicated_or_torn(producer, total):
    """Producer and nogil consumer threads race over a 64-slot ring (wrapping constantly)."""
    ring = EventRing(64)
    events = np.zeros((16, EVENT_FIELDS), dtype=np.int32)
    received = np.full((total, EVENT_FIELDS), -1, dtype=np.int32)
    control = np.zeros(RING_HEADER, dtype=np.int64)
    # Compile both sides outside the race.
    warm = EventRing(4)
    warm_control = np.zeros(RING_HEADER, dtype=np.int64)
    stress_produce(warm.slots, warm.header, 2, warm_control)
    stress_consume(warm.slots, warm.header, events, np.zeros((2, EVENT_FIELDS), np.int32),
                   warm_control)

    consumed = []
    consumer = threading.Thread(
        target=lambda: consumed.append(
            stress_consume(ring.slots, ring.header, events, received, control)),
        daemon=True)
    produced = []
    if producer == "python":
        target = lambda: python_produce(ring, total, control, produced)  # noqa: E731
    else:
        target = lambda: produced.append(  # noqa: E731
            stress_produce(ring.slots, ring.header, total, control))
    producer_thread = threading.Thread(target=target, daemon=True)
    consumer.start()
    producer_thread.start()
    producer_thread.join(RACE_S)
    control[FINISH] = 1
    producer_thread.join(30)
    consumer.join(30)
    control[ABORT] = 1  # frees a stalled side so the test reports instead of hanging
    producer_thread.join(5)
    consumer.join(5)
    assert produced and not isinstance(produced[0], BaseException), produced
    assert consumed, "the consumer did not finish"
    pushed, retries = produced[0]
    assert pushed >= MIN_EVENTS, f"only {pushed} events raced in {RACE_S} s"
    n_total, extra = consumed[0]
    assert n_total == pushed and extra == 0, (n_total, pushed, extra)

    sequence = np.arange(pushed, dtype=np.int64)
    received = received[:pushed]
    offsets = received[:, EV_OFFSET].astype(np.int64)
    lost_or_dup = np.flatnonzero(offsets != sequence)
    assert lost_or_dup.size == 0, f"first out-of-sequence event at {lost_or_dup[:5]}"
    checksum = ((sequence * 2654435761) >> 13) & 0x7F
    expected = np.stack([0x90 | (sequence & 0xF), (sequence >> 4) & 0x7F, checksum], 1)
    torn = np.flatnonzero((received[:, 1:].astype(np.int64) != expected).any(axis=1))
    assert torn.size == 0, f"torn events at {torn[:5]}"
    # Every full-ring retry was counted as a drop; nothing else was dropped or rejected.
    assert ring.dropped == retries and ring.rejected == 0 and ring.pending() == 0


def test_ring_indices_use_acquire_loads_and_release_stores():
    """The compiled producer and consumer publish/consume with LLVM acquire/release atomics.

    (x86 never reorders stores, so the stress test above cannot catch missing hardware
    ordering here; this checks the orderings that AArch64 needs are in the code.)
    """
    ring = EventRing(4)
    events = np.zeros((2, EVENT_FIELDS), dtype=np.int32)
    # Fresh, uncached compilations: numba cannot show the IR of code loaded from its cache.
    push = njit(nogil=True)(ring_push.py_func)
    drain = njit(nogil=True)(ring_drain.py_func)
    push(ring.slots, ring.header, 0, 0x90, 1, 2)
    drain(ring.slots, ring.header, events, 0, 0, 48000.0, 1)
    for kernel in (push, drain):
        ir = "\n".join(kernel.inspect_llvm().values())
        assert re.search(r"load atomic i64, ptr [^,]+ acquire, align 8", ir), kernel
        assert re.search(r"store atomic i64 [^,]+, ptr [^,]+ release, align 8", ir), kernel
