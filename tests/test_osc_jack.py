"""``spikesynth play --osc`` on a private JACK dummy server: OSC over UDP on localhost plays a
note in tune, a parameter change is heard, a bundle's time tag is honoured within a block or
so on JACK's frame clock (20 ms when JACK reports xruns meanwhile), and malformed datagrams
leave it playing (recorded from JACK)."""

from __future__ import annotations

import socket
import time

import pytest
from audio_analysis import cents, estimate_f0
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from test_play_jack import LATENCY_FRAMES, PERIOD, SR, STEADY, rig, wait_for, wait_sound  # noqa: F401 - rig is a fixture

pytestmark = pytest.mark.jack


def message(address, *args):
    builder = OscMessageBuilder(address=address)
    for a in args:
        builder.add_arg(a)
    return builder.build().dgram


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_osc_note_param_bundle_and_malformed(rig):  # noqa: F811 - the imported fixture
    port = free_port()
    player, rec, _ = rig("--osc", str(port))
    assert f"OSC on 127.0.0.1:{port}" in player.stderr
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(data):
        frame = rec.now
        udp.sendto(data, ("127.0.0.1", port))
        return frame

    try:
        send(b"garbage")
        send(message("/spikesynth/note_on", "x", 1))
        sent = send(message("/spikesynth/note_on", 69, 100))
        start = wait_sound(rec, sent)
        rec.wait_until(sent + SR)
        changed = send(message("/spikesynth/param", "transpose", 2.0))
        rec.wait_until(changed + SR)
        send(message("/spikesynth/note_off", 69))
        rec.wait_until(rec.now + int(0.8 * SR))
        frame = rec.now
        xruns = player.status()["xruns"]
        tag = time.time() + 0.3
        bundle = OscBundleBuilder(tag)
        bundle.add_content(_note(57))
        send(bundle.build().dgram)
        # The tag is wall-clock time: read JACK's frame at that time, not 0.3 s of frames
        # after sending (cycles the graph misses meanwhile hold JACK's frames back while
        # the wall clock runs on: seen 252 frames on a loaded machine).
        # Sleeping, not spinning: a spin holds the GIL the recorder's JACK callback needs.
        while time.time() < tag:
            time.sleep(max(tag - time.time(), 0.0))
        wall, now = time.time(), rec.now
        expected = now - round((wall - tag) * SR) + LATENCY_FRAMES
        onset = wait_sound(rec, frame + int(0.1 * SR), timeout=3.0)
        rec.wait_until(expected + SR // 2)
        lines = len(player.lines)
        wait_for(lambda: any(ln.startswith("voices") for ln in player.lines[lines:]), 5.0,
                 "a status line after the bundle")
        xruns = player.status()["xruns"] - xruns
        rec.stop()
        audio, first = rec.recorded()
        before = rec.clean(start + SR // 10, changed - first - SR // 50, STEADY)
        after = rec.clean(changed - first + SR // 5, changed - first + SR - SR // 20, STEADY)
        assert abs(cents(estimate_f0(audio[before], SR, 440.0), 440.0)) < 1.0
        f = 440.0 * 2 ** (2 / 12)
        assert abs(cents(estimate_f0(audio[after], SR, f), f)) < 1.0
        late = onset + first - expected
        missed = not rec.complete(frame - first, onset + PERIOD)
        print(f"play's status: {xruns} xruns; the recorder missed a cycle: {missed}")
        xruns += missed  # a cycle the recorder missed is an xrun as well
        print(f"bundle onset - (tag + MIDI latency): {late} frames; {xruns} JACK xruns meanwhile")
        # The MIDI latency bounds of test_play_jack, widened by a period each side: the tag is
        # wall-clock time, and reading JACK's frame at a wall-clock time (its frame_time, an
        # estimate from the cycle timing) is good to about a period. A late dummy-driver cycle
        # (an xrun: counted by play's status line, or a cycle the recorder missed) shifts that
        # estimate for the synth and the test differently: seen +213, +332 and -215 frames.
        # Then the bound is 20 ms, still far from a tag ignored (14,400 frames early) or read
        # as a delay from arrival (14,400 late).
        if xruns == 0:
            assert -(PERIOD + 32) <= late <= 2 * PERIOD + 64, late
        else:
            assert abs(late) <= SR // 50, (late, xruns)
    finally:
        udp.close()


def _note(note):
    builder = OscMessageBuilder(address="/spikesynth/note_on")
    builder.add_arg(note)
    builder.add_arg(100)
    return builder.build()
