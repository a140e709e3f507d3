"""MIDI Tuning Standard: single-note tuning change SysEx → the engine's retune events.

The MIDI Tuning Standard's *single-note tuning change* retunes keys while they play::

    F0 7F <device> 08 02 <program> <count> [<key> <xx> <yy> <zz>] x count F7   (real-time)
    F0 7F <device> 08 07 <bank> <program> <count> [...] F7                   (real-time, bank)
    F0 7E <device> 08 07 <bank> <program> <count> [...] F7                   (non-real-time)

Each ``key`` then plays ``440 · 2^((xx + (yy·128 + zz)/16384 − 69)/12)`` Hz: ``xx`` a 12-TET
semitone (A4 = 69), ``yy zz`` a 14-bit fraction of a semitone (0.0061 cent steps);
``7F 7F 7F`` means "no change". The device ID, bank and tuning program are not checked: the
synth has one tuning, every change applies to it (``7F`` "all devices" is the common case).

Each retuned key becomes one engine event ``(STATUS_TUNE, key, float32 bits of Hz)``, as
parameter events carry a float (:data:`spikesynth.events.STATUS_PARAM`). Pure functions, no
package imports: :mod:`spikesynth.events` uses them for every source (files, MIDI, OSC).
"""

from __future__ import annotations

import struct

STATUS_TUNE = 0xF5  # engine-only status: key data1 plays float32 bits data2 Hz (0: its table)
MAX_RETUNES = 127  # keys per message (the count is one data byte)


def float32_bits(value: float) -> int:
    """The IEEE-754 single-precision bit pattern of ``value`` as a signed int32."""
    return struct.unpack("<i", struct.pack("<f", float(value)))[0]


def mts_frequency(xx: int, yy: int, zz: int) -> float:
    """Hz of an MTS frequency word (semitone ``xx``, fraction ``yy zz``)."""
    return 440.0 * 2.0 ** ((xx + ((yy << 7) | zz) / 16384.0 - 69.0) / 12.0)


def parse_mts(message) -> list[tuple[int, int, int]] | None:
    """Engine rows ``(STATUS_TUNE, key, float32 bits)`` of a single-note tuning change.

    Thread: any (pure function). Returns None for anything else or a malformed message
    (wrong length, data bytes >= 0x80, no ``F7``): the caller counts it as rejected.
    Keys marked "no change" (``7F 7F 7F``) give no row.
    """
    try:
        data = [int(b) for b in message]
    except (TypeError, ValueError):
        return None
    if len(data) < 8 or data[0] != 0xF0 or data[-1] != 0xF7:
        return None
    body = data[1:-1]
    if any(not 0 <= b < 0x80 for b in body):
        return None
    if body[0] == 0x7F and body[2:4] == [0x08, 0x02]:
        head = 5  # 7F dev 08 02 program
    elif body[0] in (0x7E, 0x7F) and body[2:4] == [0x08, 0x07]:
        head = 6  # 7x dev 08 07 bank program
    else:
        return None
    if len(body) < head + 1:
        return None
    count = body[head]
    changes = body[head + 1:]
    if count == 0 or len(changes) != 4 * count:
        return None
    rows = []
    for k in range(count):
        key, xx, yy, zz = changes[4 * k:4 * k + 4]
        if (xx, yy, zz) == (0x7F, 0x7F, 0x7F):
            continue  # "no change"
        rows.append((STATUS_TUNE, key, float32_bits(mts_frequency(xx, yy, zz))))
    return rows


def mts_message(changes, device: int = 0x7F, program: int = 0) -> bytes:
    """A real-time single-note tuning change for ``[(key, hz), ...]`` (tests, OSC, tools).

    Each frequency is rounded to the nearest MTS step (0.0061 cent). Thread: any.
    """
    import math

    out = [0xF0, 0x7F, device & 0x7F, 0x08, 0x02, program & 0x7F, len(changes)]
    for key, hz in changes:
        semis = 69.0 + 12.0 * math.log2(hz / 440.0)
        xx = int(math.floor(semis))
        frac = int(round((semis - xx) * 16384.0))
        if frac == 16384:
            xx, frac = xx + 1, 0
        if not 0 <= xx < 128:
            raise ValueError(f"{hz} Hz outside the MIDI Tuning Standard's range")
        out += [key & 0x7F, xx, frac >> 7, frac & 0x7F]
    out.append(0xF7)
    return bytes(out)
