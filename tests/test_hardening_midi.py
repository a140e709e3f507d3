"""SysEx in the live MIDI stream, as the MIDI 1.0 specification says (no hardware needed)."""

from __future__ import annotations

import pytest

from spikesynth.midi import SysexSplitter

ON = b"\x90\x3c\x64"
OFF = b"\x80\x3c\x00"


def feed_all(splitter, *messages):
    out = []
    for m in messages:
        out += splitter.feed(m)
    return out


def test_plain_messages_pass_unchanged():
    s = SysexSplitter()
    assert feed_all(s, ON, OFF, b"\xc0\x05", b"\xf8") == [ON, OFF, b"\xc0\x05", b"\xf8"]
    assert s.sysex == 0 and not s.in_sysex


def test_a_status_byte_ends_an_unterminated_sysex():
    s = SysexSplitter()
    # rtmidi delivers the unterminated SysEx alone, then what follows
    assert feed_all(s, b"\xf0\x01\x02\x03", ON, OFF) == [ON, OFF]
    assert s.sysex == 1 and s.unterminated == 1 and not s.in_sysex
    # ... or (JACK) all run together once some F7 arrives
    s = SysexSplitter()
    assert s.feed(b"\xf0\x01\x02\x03" + ON + b"\x3e\x64" + OFF + b"\xf7") == \
        [ON, b"\x90\x3e\x64", OFF]  # running status followed; the stray F7 dropped
    assert s.unterminated == 1


def test_terminated_sysex_and_realtime_inside():
    s = SysexSplitter()
    out = s.feed(b"\xf0\x7e\xf8\x01\xfe\x02\xf7" + ON)
    assert out == [b"\xf8", b"\xfe", ON]  # realtime bytes are their own, the SysEx goes on
    assert s.sysex == 1 and s.unterminated == 0
    # a SysEx spread over several deliveries, a clock in the middle
    s = SysexSplitter()
    assert feed_all(s, b"\xf0\x01", b"\x02\x03", b"\xf8", b"\x04\xf7", ON) == [b"\xf8", ON]
    assert s.sysex == 1 and s.unterminated == 0
    # realtime inside a channel message
    s = SysexSplitter()
    assert s.feed(b"\xf0\x01\xf7\x90\xf8\x3c\x64") == [b"\xf8", ON]


def test_sysex_cancels_running_status_and_stray_data_is_counted():
    s = SysexSplitter()
    assert s.feed(ON) == [ON] and s.feed(b"\xf0\x01\xf7\x3e\x64") == []
    assert s.stray == 2
    # an F0 inside a message that does not start a SysEx: a malformed message, passed on
    assert s.feed(b"\x90\xf0\x01") == [b"\x90\xf0\x01"] and not s.in_sysex


@pytest.mark.parametrize("seed", range(20))
def test_random_streams_never_raise_and_keep_notes(seed):
    import random

    rng = random.Random(seed)
    s = SysexSplitter()
    for _ in range(200):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        s.feed(junk)
    # whatever came before, an F7 and a complete message afterwards always gets through
    s.feed(b"\xf7")
    assert s.feed(ON) == [ON] and not s.in_sysex


def test_a_long_sysex_and_bad_input():
    s = SysexSplitter()
    dump = b"\xf0" + bytes(i % 128 for i in range(65536))
    assert s.feed(dump + ON) == [ON] and s.unterminated == 1
    assert s.feed(b"\xf8") == [b"\xf8"]
    # malformed messages with no SysEx involved reach the ring unchanged (it rejects them)
    assert s.feed(b"\x3e\x64") == [b"\x3e\x64"] and s.feed(b"\x90\xc8\x01") == [b"\x90\xc8\x01"]
    assert s.feed([0x90, 300, 1]) == [[0x90, 300, 1]]
    assert s.feed(b"\x90\xf8\x3c\x64") == [b"\x90\xf8\x3c\x64"]


def test_tuning_sysex_passes_whole_and_other_sysex_is_dropped():
    from spikesynth.mts import mts_message, parse_mts

    tune = mts_message([(62, 301.0), (64, 333.3)])
    s = SysexSplitter()
    assert s.feed(tune) == [tune] and s.tunings == 1 and s.sysex == 1
    assert parse_mts(s.feed(tune)[0])[0][1] == 62  # the ring's parser reads it
    # spread over deliveries with a clock inside: reassembled, the clock on its own
    s = SysexSplitter()
    out = feed_all(s, tune[:5], b"\xf8", tune[5:9], tune[9:], ON)
    assert out == [b"\xf8", tune, ON] and s.tunings == 1
    # not a tuning message (a manufacturer's SysEx): dropped, counted as SysEx
    s = SysexSplitter()
    assert s.feed(b"\xf0\x43\x10\x4c\x00\x00\x7e\x00\xf7" + ON) == [ON]
    assert s.sysex == 1 and s.tunings == 0
    # a tuning message cut short by a status byte: dropped, the note kept
    assert s.feed(tune[:-3] + ON) == [ON] and s.tunings == 0 and s.unterminated == 1
    # longer than any tuning message can be: dropped without growing without bound
    huge = b"\xf0\x7f\x7f\x08\x02\x00\x7f" + bytes(70000) + b"\xf7"
    assert s.feed(huge) == [] and s.tunings == 0 and len(s._body) <= 1024
