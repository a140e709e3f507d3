"""Standard MIDI Files → channel messages at their times in seconds, tolerant and bounded.

A reader of our own (not mido's) so that no file, however broken, raises anything but
:class:`MidiFileError` with one line naming the file:

* the header: format 0, 1 or 2, at least one track, a division of ticks per quarter note
  (1–32767) or SMPTE (24, 25, 29.97 or 30 frames per second × 1–255 ticks per frame);
  division 0 and other impossible headers are errors;
* format 0 and 1 tracks play together, tempo changes of any track apply to all (as
  sequencers do); format 2 tracks are independent sequences played one after another,
  each with its own tempo (the SMF 1.0 specification's reading);
* meta events are skipped; broken ones (a tempo that is not 3 bytes or is 0, a key or time
  signature of the wrong length) are counted in :attr:`MidiFileData.broken_meta`;
* a track that is cut short (a chunk longer than the file, an event running off the end)
  keeps the events before the cut and is counted in :attr:`MidiFileData.truncated_tracks`;
* delta times are at most 4 bytes (0x0FFFFFFF ticks, as the specification says); the file
  is at most :data:`MAX_FILE_BYTES`, and the caller bounds the total length in seconds
  (:attr:`MidiFileData.seconds`), so no file makes the render hang or fill a disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

MAX_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_TEMPO_US = 500_000  # 120 beats per minute
_SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 30000 / 1001, 30: 30.0}
_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_META_LENGTH = {0x51: 3, 0x58: 4, 0x59: 2}  # tempo, time signature, key signature


class MidiFileError(ValueError):
    """A MIDI file that cannot be played; the message names the file and says why."""


class MidiFileData(NamedTuple):
    """What :func:`read_midi_file` found."""

    events: list  # [(seconds, bytes)] channel messages in time order
    seconds: float  # the end of the last track (End of Track or last event)
    format: int
    tracks: int
    broken_meta: int  # meta events skipped as malformed
    truncated_tracks: int  # tracks cut short by the end of the file
    event_tracks: list  # the track index of each of ``events``


class _Track(NamedTuple):
    events: list  # [(tick, order, kind, payload)] kind "msg" (bytes) or "tempo" (us)
    end_tick: int
    broken_meta: int
    truncated: bool


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A variable-length quantity (at most 4 bytes) at ``pos``; raises IndexError at the end."""
    value = 0
    for _ in range(4):
        if pos >= end:
            raise IndexError
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise ValueError("a delta time or length longer than 4 bytes")


def _parse_track(data: bytes, start: int, end: int, truncated: bool) -> _Track:
    events = []
    tick = 0
    status = 0  # running status (0: none)
    broken = 0
    pos = start
    order = 0
    try:
        while pos < end:
            delta, pos = _vlq(data, pos, end)
            tick += delta
            byte = data[pos]
            if byte == 0xFF:  # meta: FF type length data
                kind = data[pos + 1]
                length, pos = _vlq(data, pos + 2, end)
                if pos + length > end:
                    raise IndexError
                payload = data[pos:pos + length]
                pos += length
                if kind == 0x2F:  # End of Track
                    break
                if kind in _META_LENGTH and length != _META_LENGTH[kind]:
                    broken += 1
                elif kind == 0x51:
                    tempo = int.from_bytes(payload, "big")
                    if tempo == 0:
                        broken += 1
                    else:
                        events.append((tick, order, "tempo", tempo))
                elif kind == 0x59 and not (-7 <= int.from_bytes(payload[:1], "big", signed=True)
                                           <= 7 and payload[1] in (0, 1)):
                    broken += 1
                status = 0  # meta and SysEx events cancel running status
            elif byte in (0xF0, 0xF7):  # SysEx (or escape): F0/F7 length data, skipped
                length, pos = _vlq(data, pos + 1, end)
                if pos + length > end:
                    raise IndexError
                pos += length
                status = 0
            elif byte & 0x80:
                if byte >= 0xF0:
                    raise ValueError(f"system message 0x{byte:02X} inside a track")
                status = byte
                pos += 1
                n = _DATA_BYTES[status & 0xF0]
                message = data[pos - 1:pos + n]
                pos += n
                if pos > end:
                    raise IndexError
                if any(b & 0x80 for b in message[1:]):
                    raise ValueError("a status byte where a data byte belongs")
                events.append((tick, order, "msg", bytes(message)))
            else:  # running status
                if not status:
                    raise ValueError("a data byte with no status before it")
                n = _DATA_BYTES[status & 0xF0]
                message = bytes([status]) + data[pos:pos + n]
                pos += n
                if pos > end:
                    raise IndexError
                if any(b & 0x80 for b in message[1:]):
                    raise ValueError("a status byte where a data byte belongs")
                events.append((tick, order, "msg", message))
            order += 1
    except IndexError:
        truncated = True
    return _Track(events, tick, broken, truncated)


def read_midi_file(path, max_seconds: float | None = None) -> MidiFileData:
    """Read a Standard MIDI File. Thread: main.

    Parameters
    ----------
    path : str or Path
    max_seconds : float, optional
        Refuse a file whose tracks last longer than this (seconds), before any event list
        the length would need is built.

    Raises
    ------
    MidiFileError
        One line: ``PATH: what is wrong``.
    """
    path = Path(path)

    def fail(why):
        raise MidiFileError(f"{path}: {why}")

    try:
        size = path.stat().st_size
        if path.is_dir():
            fail("is a directory, expected a MIDI file")
        if size > MAX_FILE_BYTES:
            fail(f"too large for a MIDI file ({size} bytes, at most {MAX_FILE_BYTES})")
        data = path.read_bytes()
    except FileNotFoundError:
        fail("no such MIDI file")
    except OSError as e:
        fail(f"cannot read: {e.strerror or e}")
    if data[:4] != b"MThd" or len(data) < 14:
        fail("not a MIDI file (no MThd header)")
    header_len = int.from_bytes(data[4:8], "big")
    if header_len < 6 or 8 + header_len > len(data):
        fail(f"not a readable MIDI file (header length {header_len})")
    fmt = int.from_bytes(data[8:10], "big")
    ntracks = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    if fmt not in (0, 1, 2):
        fail(f"unknown MIDI file format {fmt} (expected 0, 1 or 2)")
    if ntracks == 0:
        fail("the header says it has no tracks")
    if fmt == 0 and ntracks != 1:
        fail(f"a format 0 file must have one track, the header says {ntracks}")
    if division == 0:
        fail("time division 0 in the header (ticks per quarter note must be at least 1)")
    if division & 0x8000:
        fps_code = 256 - (division >> 8)
        ticks_per_frame = division & 0xFF
        if fps_code not in _SMPTE_FPS or ticks_per_frame == 0:
            fail(f"impossible SMPTE time division (0x{division:04X}: {fps_code} frames per "
                 f"second, {ticks_per_frame} ticks per frame; expected 24, 25, 29 or 30 "
                 f"and 1-255)")
        smpte_tick = 1.0 / (_SMPTE_FPS[fps_code] * ticks_per_frame)
    else:
        smpte_tick = None

    tracks = []
    pos = 8 + header_len
    while pos + 8 <= len(data) and len(tracks) < ntracks:
        kind, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        start = pos + 8
        end = min(start + length, len(data))
        if kind == b"MTrk":
            try:
                tracks.append(_parse_track(data, start, end, start + length > len(data)))
            except (ValueError, KeyError) as e:
                fail(f"corrupt track {len(tracks)}: {e}")
        pos = start + length  # other chunk types are skipped, as the specification says
    if not tracks:
        fail("no track found (no MTrk chunk)")

    def to_seconds(events, end_tick, tick_origin_s):
        """[(seconds, bytes)] and the end time, tempo changes among ``events`` honoured."""
        out = []
        owners = []
        tempo = DEFAULT_TEMPO_US
        last_tick, last_s = 0, 0.0
        per_quarter = division

        def at(tick):
            if smpte_tick is not None:
                return tick * smpte_tick
            return last_s + (tick - last_tick) * tempo * 1e-6 / per_quarter

        for tick, owner, _, kind, payload in events:
            t = at(tick)
            if kind == "tempo":
                last_tick, last_s, tempo = tick, t, payload
            else:
                out.append((tick_origin_s + t, payload))
                owners.append(owner)
            if max_seconds is not None and tick_origin_s + t > max_seconds:
                break
        return out, owners, tick_origin_s + at(max(end_tick, last_tick))

    events: list = []
    event_tracks: list = []
    if fmt == 2:
        origin = 0.0
        for index, track in enumerate(tracks):
            ordered = [(t, index, o, k, p) for t, o, k, p in track.events]
            part, owners, origin = to_seconds(ordered, track.end_tick, origin)
            events += part
            event_tracks += owners
            if max_seconds is not None and origin > max_seconds:
                break
        end_s = origin
    else:
        merged = sorted((t, n, o, k, p) for n, track in enumerate(tracks)
                        for t, o, k, p in track.events)
        events, event_tracks, end_s = to_seconds(merged, max(t.end_tick for t in tracks), 0.0)
    truncated = sum(t.truncated for t in tracks)
    if truncated and not events:
        fail("corrupt MIDI file: cut short before any channel message")
    if max_seconds is not None and end_s > max_seconds:
        fail(f"lasts {end_s:.4g} s, longer than the {max_seconds:g} s limit "
             f"(--max-seconds raises it)")
    return MidiFileData(events=events, seconds=end_s, format=fmt, tracks=len(tracks),
                        broken_meta=sum(t.broken_meta for t in tracks),
                        truncated_tracks=truncated, event_tracks=event_tracks)
