"""MIDI input (spikesynth/midi.py) against a real JACK server, plus the pure port logic.

The JACK tests start a private ``jackd -d dummy`` (fixture ``jack_server``), open
:class:`MidiInput` with the JACK backend, and play into its virtual port from a
python-rtmidi JACK output client, as a keyboard or sequencer would.
"""

from __future__ import annotations

import os
import random
import sys
import time

import numpy as np
import pytest
import rtmidi
from jackserver import JackServer, can_use_realtime, probe_sounddevice

from spikesynth.events import (
    RING_READ,
    RING_WRITE,
    SLOT_DATA1,
    SLOT_DATA2,
    SLOT_STATUS,
    SLOT_TIME,
    EventRing,
    parse_midi,
)
from spikesynth.midi import (
    DeltaClock,
    MidiInput,
    MidiPortError,
    MidiUnavailable,
    list_ports,
    resolve_ports,
)


def wait_for(predicate, timeout=10.0, what="condition"):
    """Poll ``predicate`` until true; fail with ``what`` (str or callable) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {text}")
        time.sleep(0.001)


def take(ring: EventRing) -> list[tuple[int, int, int, int]]:
    """Consume everything published in ``ring``: ``[(time_ns, status, d1, d2), ...]``.

    Plays the consumer's part like :func:`ring_drain` does, but keeps the timestamps.
    """
    read, write = int(ring.header[RING_READ]), int(ring.header[RING_WRITE])
    mask = ring.capacity - 1
    rows = [tuple(int(v) for v in ring.slots[i & mask, [SLOT_TIME, SLOT_STATUS, SLOT_DATA1,
                                                         SLOT_DATA2]])
            for i in range(read, write)]
    ring.header[RING_READ] = write
    return rows


def collect(ring: EventRing, count: int, timeout=10.0, what="MIDI messages"):
    got = []

    def enough():
        got.extend(take(ring))
        return len(got) >= count

    wait_for(enough, timeout, lambda: f"{count} {what} (have {len(got)})")
    return got


def jack_output(port_substring: str, client="spikesynth-test-out"):
    """A python-rtmidi JACK output client connected to the first sink matching the name."""
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, client)
    ports = out.get_ports()
    matches = [i for i, p in enumerate(ports) if p.endswith(port_substring)]
    assert matches, f"no JACK MIDI sink ending in {port_substring!r} among {ports}"
    out.open_port(matches[0], "out")
    return out


# --- the fixture itself ----------------------------------------------------------------


@pytest.mark.jack
def test_jack_server_fixture_runs_a_private_server(jack_server):
    import jack

    assert jack_server.running
    assert os.environ["JACK_DEFAULT_SERVER"] == jack_server.name
    assert jack_server.realtime == can_use_realtime()
    mode = "realtime" if jack_server.realtime else "non-realtime"
    assert f"starting in {mode} mode" in jack_server.log_text()
    client = jack.Client("fixture-check", no_start_server=True)
    try:
        assert client.samplerate == 48000 and client.blocksize == 64
        names = [p.name for p in client.get_ports(is_audio=True, is_physical=True)]
        assert "system:playback_1" in names and "system:capture_1" in names
    finally:
        client.close()


@pytest.mark.jack
def test_jack_server_stops_and_leaves_nothing():
    server = JackServer().start()
    pid = server.proc.pid
    assert any(server.name in f for f in os.listdir("/dev/shm"))
    server.stop()
    assert not server.running
    assert not os.path.exists(f"/proc/{pid}"), "jackd still exists after stop()"
    assert not [f for f in os.listdir("/dev/shm") if server.name in f]
    server.stop()  # idempotent


def test_jack_server_reports_a_missing_jackd(monkeypatch):
    from jackserver import JackServerError

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(JackServerError, match="jackd not found"):
        JackServer().start()


@pytest.mark.jack
@pytest.mark.slow
def test_sounddevice_sees_the_jack_host_api(jack_server):
    info = probe_sounddevice(jack_server, callbacks=20, timeout=10.0)
    assert info["jack_hostapi"] is not None, f"no JACK host API in {info['hostapis']}"
    assert info["max_output_channels"] >= 2
    assert info["default_samplerate"] == 48000
    assert info["stream_ran"] and info["callbacks"] >= 20


# --- MIDI over JACK --------------------------------------------------------------------


@pytest.mark.jack
@pytest.mark.parametrize("delivery", ["poll", "callback"])
def test_notes_arrive_with_correct_bytes_and_increasing_timestamps(jack_server, delivery):
    ring = EventRing(256)
    with MidiInput(ring, api="jack", connect="none", delivery=delivery) as midi_in:
        out = jack_output(":spikesynth")
        try:
            sent, got, windows = [], [], []
            for i in range(24):
                note = 48 + i
                group = [[0x90, note, 1 + 5 * i], [0x80, note, 64], [0xB3, 1, i],
                         [0xE0, i, 64], [0xC5, i]]
                before = time.monotonic_ns()
                for message in group:
                    out.send_message(message)
                arrived = collect(ring, len(group))
                windows.append((before, time.monotonic_ns(), arrived))
                sent += group
                got += arrived
        finally:
            out.delete()
    assert [[s, d1, d2][:len(m)] for (_, s, d1, d2), m in zip(got, sent, strict=True)] == sent
    times = [t for t, *_ in got]
    assert times == sorted(times), "timestamps must never go backwards"
    for (before, after, arrived), (_, _, next_arrived) in zip(windows, windows[1:],
                                                                          strict=False):
        # Each group is stamped between its send and its collection, so groups sent one
        # after the other have strictly increasing timestamps.
        assert all(before <= t <= after for t, *_ in arrived), (before, arrived, after)
        assert arrived[-1][0] < next_arrived[0][0]
    assert ring.rejected == 0 and ring.dropped == 0 and midi_in.filtered == 0
    assert midi_in.delivery == delivery


@pytest.mark.jack
def test_a_tuning_sysex_over_jack_becomes_retune_rows(jack_server):
    """Live MTS: a single-note tuning change sent over JACK MIDI reaches the ring as one
    retune row per key (with the float32 frequency), the notes around it unharmed; another
    SysEx is dropped and counted."""
    import struct

    from spikesynth.mts import STATUS_TUNE, mts_message

    ring = EventRing(256)
    with MidiInput(ring, api="jack", connect="none") as midi_in:
        out = jack_output(":spikesynth")
        try:
            out.send_message([0x90, 62, 100])
            out.send_message(list(mts_message([(62, 301.5), (64, 333.25)])))
            out.send_message([0xF0, 0x43, 0x10, 0x4C, 0x00, 0xF7])  # a synth's own SysEx
            out.send_message([0x80, 62, 0])
            got = collect(ring, 4)
            sysex = midi_in.sysex
        finally:
            out.delete()
    rows = [(s, d1, d2) for _, s, d1, d2 in got]
    assert rows[0] == (0x90, 62, 100) and rows[3] == (0x80, 62, 0)
    tunes = rows[1:3]
    assert [(s, k) for s, k, _ in tunes] == [(STATUS_TUNE, 62), (STATUS_TUNE, 64)]
    hz = [struct.unpack("<f", struct.pack("<i", bits))[0] for _, _, bits in tunes]
    step = 2 ** (1 / 1200 / 16384 * 100)  # MTS resolution: 100/16384 cent
    assert abs(hz[0] / 301.5 - 1) < step - 1 and abs(hz[1] / 333.25 - 1) < step - 1
    assert sysex == 2 and ring.rejected == 0


@pytest.mark.jack
def test_connects_to_existing_ports_by_all_substring_and_index(jack_server):
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-keyboard")
    keyboard.open_virtual_port("keys")
    pads = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-pads")
    pads.open_virtual_port("pads")
    try:
        available = list_ports("jack")
        assert available == ["test-keyboard:keys", "test-pads:pads"]
        ring = EventRing(64)
        with MidiInput(ring, api="jack", connect="all") as midi_in:
            assert midi_in.connected == available
            keyboard.send_message([0x90, 60, 100])
            (t, *msg), = collect(ring, 1)
            assert msg == [0x90, 60, 100]
            pads.send_message([0x99, 36, 127])
            assert [m for _, *m in collect(ring, 1)] == [[0x99, 36, 127]]
        with MidiInput(ring, api="jack", connect="PADS") as midi_in:
            assert midi_in.connected == ["test-pads:pads"]
            keyboard.send_message([0x90, 61, 100])  # not connected: must not arrive
            pads.send_message([0x89, 36, 0])
            assert [m for _, *m in collect(ring, 1)] == [[0x89, 36, 0]]
            assert take(ring) == []
        with MidiInput(ring, api="jack", connect=0) as midi_in:
            assert midi_in.connected == ["test-keyboard:keys"]
        with pytest.raises(MidiPortError) as err:
            MidiInput(ring, api="jack", connect="no-such-synth")
        assert "no-such-synth" in str(err.value) and "test-keyboard:keys" in str(err.value)
    finally:
        keyboard.delete()
        pads.delete()


@pytest.mark.jack
def test_channel_filter(jack_server):
    ring = EventRing(64)
    with MidiInput(ring, api="jack", connect="none", channel=2) as midi_in:
        out = jack_output(":spikesynth")
        try:
            out.send_message([0x90, 60, 100])   # channel 1: filtered
            out.send_message([0x91, 62, 100])   # channel 2: kept
            out.send_message([0x12, 0x34])      # junk: not a channel message, reaches the ring
            out.send_message([0x81, 62, 0])
            got = collect(ring, 2)
            wait_for(lambda: ring.rejected == 1, what="the junk message to be rejected")
        finally:
            out.delete()
        assert [m for _, *m in got] == [[0x91, 62, 100], [0x81, 62, 0]]
        assert midi_in.filtered == 1


def malformed_messages(rng: random.Random, count: int) -> list[list[int]]:
    """Random byte strings that must be rejected but that rtmidi passes through.

    Excluded: SysEx (F0, and rtmidi would then swallow what follows until F7), MIDI time
    code F1, clock F8 and active sensing FE: rtmidi's ``ignore_types`` drops those, so they
    never reach the ring and are not counted.
    """
    system = [0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFF]
    out = []
    while len(out) < count:
        kind = rng.randrange(5)
        if kind == 0:  # stray data bytes (running status is not supported)
            m = [rng.randrange(0x80) for _ in range(rng.randint(1, 3))]
        elif kind == 1:  # truncated channel message
            status = rng.randrange(0x80, 0xF0)
            need = 1 if (status >> 4) in (0xC, 0xD) else 2
            m = [status] + [rng.randrange(0x80) for _ in range(rng.randrange(need))]
        elif kind == 2:  # data byte with the high bit set
            m = [rng.choice([0x90, 0xB0, 0xE0]) | rng.randrange(16), rng.randrange(0x80, 0x100),
                 rng.randrange(0x100)]
        elif kind == 3:  # one byte too many for program change / channel pressure
            m = [rng.choice([0xC0, 0xD0]) | rng.randrange(16), rng.randrange(0x80),
                 rng.randrange(0x80)]
        else:  # system common / real-time messages the synth does not act on
            m = [rng.choice(system)] + [rng.randrange(0x80) for _ in range(rng.randrange(3))]
        assert parse_midi(m) is None, m
        out.append(m)
    return out


@pytest.mark.jack
@pytest.mark.slow
def test_flood_of_malformed_bytes_is_counted_and_valid_messages_survive(jack_server):
    rng = random.Random(1234)
    ring = EventRing(4096)
    rate, duration, batch = 5000, 1.0, 10   # messages per second, seconds, per send burst
    flood = malformed_messages(rng, int(rate * duration))
    with MidiInput(ring, api="jack", connect="none") as midi_in:
        out = jack_output(":spikesynth")
        try:
            out.send_message([0x90, 60, 100])
            collect(ring, 1)
            start = time.monotonic()
            for k in range(0, len(flood), batch):
                # Pace the bursts on a fixed schedule (several thousand messages a second).
                due = start + k / rate
                while time.monotonic() < due:
                    time.sleep(0.0005)
                for message in flood[k:k + batch]:
                    out.send_message(message)
            elapsed = time.monotonic() - start
            wait_for(lambda: ring.rejected == len(flood), timeout=15.0,
                     what=lambda: f"{len(flood)} rejections (have {ring.rejected})")
            assert take(ring) == [], "malformed bytes must never reach the ring as events"

            # Valid messages after the flood arrive intact and in order.
            notes = [[0x90 | (i % 16), 40 + i, 1 + i] for i in range(32)]
            for message in notes:
                out.send_message(message)
            got = collect(ring, len(notes))
            assert [m for _, *m in got] == notes

            # Now a flood of valid messages into a ring nobody drains: overflow is counted.
            for i in range(3 * ring.capacity // 2):
                out.send_message([0xB0, 1, i % 128])
                if i % 64 == 63:   # keep rtmidi's 16 KB JACK output buffer from overflowing
                    wait_for(lambda i=i: ring.pending() + ring.dropped >= i + 1 - 32,
                             what="JACK to deliver the burst")
            total = 3 * ring.capacity // 2
            wait_for(lambda: ring.pending() + ring.dropped == total, timeout=15.0,
                     what="every overflow message to be queued or counted as dropped")
            assert ring.pending() == ring.capacity and ring.dropped == total - ring.capacity
            kept = take(ring)
            assert [d2 for *_, d2 in kept] == [i % 128 for i in range(ring.capacity)]
            out.send_message([0x80, 60, 0])
            assert [m for _, *m in collect(ring, 1)] == [[0x80, 60, 0]]
        finally:
            out.delete()
    assert ring.rejected == len(flood) and midi_in.closed
    assert elapsed < 3 * duration, f"flood took {elapsed:.2f} s: not a flood"


@pytest.mark.jack
def test_close_removes_every_port(jack_server):
    import jack

    source = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-source")
    source.open_virtual_port("src")
    client = jack.Client("port-watch", no_start_server=True)
    try:
        midi_in = MidiInput(EventRing(16), api="jack", connect="all", port_name="synth-in")
        mine = [p.name for p in client.get_ports(is_midi=True, is_input=True)]
        assert any(n.endswith(":synth-in") for n in mine)
        assert any(n.endswith(":synth-in in 1") for n in mine)
        # The connection is real: JACK shows the source feeding our port.
        assert [p.name for p in client.get_all_connections("test-source:src")] == [
            n for n in mine if n.endswith(":synth-in in 1")]
        midi_in.close()
        midi_in.close()
        assert midi_in.closed
        assert client.get_ports(is_midi=True, is_input=True) == []
    finally:
        client.close()
        source.delete()


# --- failures: clear errors, no JACK server needed -------------------------------------


def test_jack_backend_without_a_server_is_midi_unavailable(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"no-such-server-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(MidiUnavailable, match="JACK server"):
        MidiInput(EventRing(16), api="jack")
    with pytest.raises(MidiUnavailable, match="JACK server"):
        list_ports("jack")


def test_alsa_backend_needs_the_sequencer():
    if os.path.exists("/dev/snd/seq"):
        assert isinstance(list_ports("alsa"), list)
    else:
        with pytest.raises(MidiUnavailable, match="/dev/snd/seq"):
            MidiInput(EventRing(16), api="alsa")


def test_bad_arguments(monkeypatch):
    with pytest.raises(MidiUnavailable, match="unknown MIDI API"):
        list_ports("coreaudio")
    with pytest.raises(ValueError, match="1-16"):
        MidiInput(EventRing(16), api="jack", channel=17)
    monkeypatch.setitem(sys.modules, "rtmidi", None)  # as if python-rtmidi were missing
    with pytest.raises(MidiUnavailable, match="python-rtmidi"):
        list_ports("jack")


def test_resolve_ports():
    ports = ["Midi Through:Midi Through Port-0 14:0", "Keystation 49:Keystation MIDI 1 20:0",
             "spikesynth:spikesynth 128:0"]
    own = lambda name: name.startswith("spikesynth:")  # noqa: E731
    assert resolve_ports("all", ports, exclude=own) == ports[:2]
    assert resolve_ports("none", ports) == [] and resolve_ports(None, ports) == []
    assert resolve_ports("keystation", ports) == [ports[1]]
    assert resolve_ports("1", ports) == [ports[1]] and resolve_ports(0, ports) == [ports[0]]
    assert resolve_ports(["1", "midi"], ports) == ports[:2]  # in listing order, no duplicates
    with pytest.raises(MidiPortError, match=r"(?s)no MIDI input port 3.*1: Keystation"):
        resolve_ports("3", ports)
    with pytest.raises(MidiPortError, match="'oxygen'"):
        resolve_ports("oxygen", ports)
    with pytest.raises(MidiPortError, match="no MIDI input ports exist"):
        resolve_ports("oxygen", [])


class FakeMidiIn:
    """Stands in for rtmidi.MidiIn (the way mido tests ports): records what is done to it."""

    sources = ["Keys:out 20:0", "Pads:out 24:0"]
    instances: list[FakeMidiIn] = []

    def __init__(self, api, name, queue_size_limit=1024):
        self.api, self.name, self.queue = api, name, []
        self.callback = self.port = self.virtual = None
        self.ignored = self.deleted = False
        FakeMidiIn.instances.append(self)

    def ignore_types(self, sysex, timing, active_sense):
        # SysEx reaches spikesynth's own SysexSplitter (rtmidi's filter swallows what follows
        # an unterminated SysEx); clock and active sensing are dropped inside rtmidi.
        self.ignored = not sysex and timing and active_sense

    def get_ports(self):
        return list(self.sources)

    def open_virtual_port(self, name):
        self.virtual = name

    def open_port(self, index, name):
        self.port = (self.sources[index], name)

    def set_callback(self, callback):
        self.callback = callback

    def cancel_callback(self):
        self.callback = None

    def get_message(self):
        return self.queue.pop(0) if self.queue else None

    def close_port(self):
        self.port = self.virtual = None

    def delete(self):
        self.deleted = True


@pytest.fixture
def fake_rtmidi(monkeypatch):
    import types

    module = types.SimpleNamespace(
        API_LINUX_ALSA=2, API_UNIX_JACK=3, MidiIn=FakeMidiIn, RtMidiError=OSError,
        get_compiled_api=lambda: [2, 3], get_api_name=lambda a: {2: "alsa", 3: "jack"}[a])
    FakeMidiIn.instances = []
    monkeypatch.setitem(sys.modules, "rtmidi", module)
    return module


def test_callback_delivery_stamps_filters_and_pushes(fake_rtmidi):
    ring = EventRing(16)
    clock = iter(range(1000, 2000, 10))
    midi_in = MidiInput(ring, api="alsa", connect="pads", channel=10,
                        clock=lambda: next(clock))
    virtual, pads = FakeMidiIn.instances
    assert midi_in.delivery == "callback" and virtual.virtual == "spikesynth"
    assert pads.port == ("Pads:out 24:0", "spikesynth in 1") and midi_in.connected == [
        "Pads:out 24:0"]
    assert virtual.ignored and pads.ignored and virtual.callback and pads.callback
    for message in ([0x99, 36, 100], [0x90, 60, 100], [0xF6], [], [0x89, 36, 0]):
        pads.callback((message, 0.001))
    assert midi_in.filtered == 1 and ring.rejected == 2
    # Stamped at delivery (the clock is read only for messages that pass the filter).
    assert take(ring) == [(1000, 0x99, 36, 100), (1030, 0x89, 36, 0)]
    midi_in.close()
    assert all(m.deleted and m.callback is None for m in FakeMidiIn.instances)
    assert midi_in.closed


def test_poll_delivery_rebuilds_arrival_times(fake_rtmidi):
    ring = EventRing(16)
    now = [5_000_000]
    midi_in = MidiInput(ring, api="jack", connect="none", clock=lambda: now[0],
                        poll_interval=0.0005)
    try:
        (virtual,) = FakeMidiIn.instances
        assert midi_in.delivery == "poll" and virtual.callback is None
        # Messages 1 ms apart (and a junk one between), all collected at once: the last one
        # bounds the offset, the others keep their spacing before it.
        virtual.queue += [([0x90, 60, 100], 0.0), ([0x80, 60, 0], 0.001),
                          ([0x12], 0.0005), ([0x90, 62, 100], 0.0005)]
        got = collect(ring, 3)
        assert [t for t, *_ in got] == [3_000_000, 4_000_000, 5_000_000]
        assert [m for _, *m in got] == [[0x90, 60, 100], [0x80, 60, 0], [0x90, 62, 100]]
        assert ring.rejected == 1
    finally:
        midi_in.close()
    assert not any(t.name == "spikesynth-midi" for t in __import__("threading").enumerate())


# --- DeltaClock ------------------------------------------------------------------------


@pytest.mark.parametrize("max_drift", [0.0, 1e-3])
def test_delta_clock_converges_to_the_true_arrival_time(max_drift):
    rng = random.Random(7)
    true_offset = 123_456_789_000           # host clock minus backend clock, ns
    clock = DeltaClock(max_drift=max_drift)
    backend, previous = 0, None
    errors, lags = [], []
    for i in range(2000):
        backend += rng.randrange(100_000, 20_000_000)          # next arrival, backend clock
        delta = 0.0 if previous is None else (backend - previous) / 1e9
        previous = backend
        arrival = backend + true_offset
        lag = 0 if i == 500 else rng.randrange(1, 3_000_000)   # polling delay up to 3 ms
        stamp = clock.stamp(delta, arrival + lag)
        assert arrival <= stamp <= arrival + lag   # never before arrival nor after collection
        errors.append(stamp - arrival)
        lags.append(lag)
    if max_drift == 0:
        # Once a message was collected with no delay, the stamps are exact (to rounding).
        assert max(errors[500:]) <= 2
    else:
        # Allowing for drift costs a little accuracy, but far less than stamping on arrival
        # in the poller (the lag itself) would.
        assert sum(errors[100:]) < 0.2 * sum(lags[100:])
        assert max(errors[100:]) < 1_000_000


def test_delta_clock_follows_a_slow_clock_drift():
    clock = DeltaClock(max_drift=1e-3)
    backend_rate = 1 - 5e-4                  # backend clock 500 ppm slow
    errors = []
    for i in range(6000):                    # a message every 10 ms for a minute
        arrival = i * 10_000_000
        delta = 0.0 if i == 0 else 10_000_000 * backend_rate / 1e9
        lag = (i * 7919) % 1_000_000          # collected 0-1 ms late
        stamp = clock.stamp(delta, arrival + lag)
        assert stamp <= arrival + lag
        errors.append(abs(stamp - arrival))
    assert max(errors) < 1_100_000, max(errors)  # stays within the polling window


# --- end to end: JACK MIDI → MidiInput → ring → Synth.process_ring ---------------------


@pytest.mark.jack
def test_note_over_jack_sounds_at_its_scheduled_sample(jack_server):
    import spikesynth

    patch = os.path.join(os.path.dirname(__file__), os.pardir, "patches", "default.yaml")
    sr, frames, latency = 48000, 256, 5_000_000
    synth = spikesynth.Synth(spikesynth.load_patch(patch), samplerate=sr, max_block=4096)
    synth.warm_up()
    ring = EventRing(64)
    out = np.ones((frames, 2), dtype=np.float32)
    with MidiInput(ring, api="jack", connect="none"):
        source = jack_output(":spikesynth")
        try:
            source.send_message([0x90, 60, 110])
            wait_for(lambda: ring.pending() == 1, what="the note in the ring")
        finally:
            source.delete()
    arrival = int(ring.slots[int(ring.header[RING_READ]) & (ring.capacity - 1), SLOT_TIME])
    # Choose the block so that arrival + latency falls at sample 100.5 of the second block.
    start = arrival + latency - int(100.5 * 1e9 / sr)
    synth.process_ring(out, ring, start - int(frames * 1e9 / sr), latency)
    assert np.all(out == 0) and ring.pending() == 1     # not yet: stays queued
    synth.process_ring(out, ring, start, latency)
    assert ring.pending() == 0
    assert np.all(out[:100] == 0), "silence before the scheduled sample"
    assert np.abs(out[100:]).max() > 1e-3, "the note sounds from its sample on"
    stats = synth.stats()
    assert stats["voices_active"] == 1 and stats["faults"] == 0
