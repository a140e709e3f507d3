"""OSC over UDP on localhost: a note in tune, a parameter change measured, a bundle's time tag
honoured within one block, malformed messages counted and ignored (audio rendered through the
live path: OscInput → EventRing → Synth.process_ring)."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from spikesynth import Synth
from spikesynth.events import EventRing
from spikesynth.osc import OscInput
from spikesynth.patch import patch_from_text

SR = 48000
BLOCK = 64


def message(address, *args):
    builder = OscMessageBuilder(address=address)
    for a in args:
        builder.add_arg(a)
    return builder.build()


@pytest.fixture
def rig():
    synth = Synth(patch_from_text("vibrato: {depth_cents: 0}"), SR, BLOCK)
    ring = EventRing(256)
    osc = OscInput(ring, synth, 0)  # any free port on 127.0.0.1
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(data, expect_received=None, expect_malformed=None):
        sender.sendto(data if isinstance(data, bytes) else data.dgram, ("127.0.0.1", osc.port))
        deadline = time.monotonic() + 5.0
        while not ((expect_received is None or osc.received >= expect_received)
                   and (expect_malformed is None or osc.malformed >= expect_malformed)):
            assert time.monotonic() < deadline, "the OSC thread did not handle the datagram"
            time.sleep(0.001)

    yield synth, ring, osc, send
    sender.close()
    osc.close()


def render(synth, ring, seconds, start_ns):
    out = np.zeros((int(seconds * SR), 2), dtype=np.float32)
    for pos in range(0, len(out), BLOCK):
        synth.process_ring(out[pos:pos + BLOCK], ring, start_ns + int(pos * 1e9 / SR), 0)
    return out


def test_note_in_tune_and_a_parameter_change_measured(rig):
    synth, ring, osc, send = rig
    assert osc.host == "127.0.0.1"
    send(message("/spikesynth/param", "transpose", 2.0), expect_received=1)
    send(message("/spikesynth/note_on", 60, 100, 1), expect_received=2)
    audio = render(synth, ring, 1.0, time.monotonic_ns())
    f = 440.0 * 2 ** ((62 - 69) / 12)  # note 60 transposed by the parameter: 62
    assert abs(cents(estimate_f0(audio[SR // 4:], SR, f), f)) < 1.0
    assert synth.stats()["params_set"] == 1


def test_bundle_time_tag_is_honoured_within_one_block(rig):
    synth, ring, osc, send = rig
    wall, mono = time.time(), time.monotonic_ns()
    bundle = OscBundleBuilder(wall + 0.2)  # 0.2 s from now
    bundle.add_content(message("/spikesynth/note_on", 69, 100))
    send(bundle.build(), expect_received=1)
    audio = render(synth, ring, 0.4, mono)
    onset = int(np.flatnonzero(np.abs(audio).max(axis=1) > 1e-4)[0])
    # The sound leaves the master section its look-ahead (Synth.latency) after the event.
    assert abs(onset - synth.latency - int(0.2 * SR)) <= BLOCK, onset


def test_malformed_messages_are_counted_and_ignored(rig):
    synth, ring, osc, send = rig
    bad = [b"not osc at all", message("/spikesynth/nothing", 1),
           message("/spikesynth/note_on", "x", 100), message("/spikesynth/note_on", 60, 300),
           message("/spikesynth/param", "no.such.key", 1.0),
           message("/spikesynth/param", "voices", 4.0),  # not a live parameter
           message("/spikesynth/bend", 99.0)]  # beyond the bend range
    for k, data in enumerate(bad, 1):
        send(data, expect_malformed=k)
    send(message("/spikesynth/note_on", 57, 100), expect_received=1)
    audio = render(synth, ring, 1.0, time.monotonic_ns())
    assert osc.malformed == len(bad) and osc.received == 1
    f = 220.0
    assert abs(cents(estimate_f0(audio[SR // 4:], SR, f), f)) < 1.0
