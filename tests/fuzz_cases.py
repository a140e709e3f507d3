"""Hostile inputs for the fuzz tests and ``benchmarks/fuzz_inputs.py``: seeded mutations of
valid MIDI files and patches, and the checks every one of them must pass.

Each generator is a pure function of a ``random.Random``, so a failing case is reproduced by
its seed. The checks: the input is accepted or refused with the project's own error (never
another exception), in bounded time and memory.
"""

from __future__ import annotations

import math
import random
import time
import tracemalloc
from pathlib import Path
from typing import NamedTuple

from spikesynth.offline import (
    RenderError,
    check_length,
    midi_file_events,
    release_hanging_notes,
)
from spikesynth.patch import PATCH_DIR, SCHEMA, PatchError, patch_from_text

# --- MIDI files -----------------------------------------------------------------------


def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(tracks, fmt=1, division=480) -> bytes:
    """A Standard MIDI File from tracks given as lists of (delta, event bytes)."""
    head = (b"MThd" + (6).to_bytes(4, "big") + fmt.to_bytes(2, "big")
            + len(tracks).to_bytes(2, "big") + division.to_bytes(2, "big"))
    body = b""
    for events in tracks:
        data = b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"
        body += b"MTrk" + len(data).to_bytes(4, "big") + data
    return head + body


def base_midi(rng: random.Random) -> bytes:
    """A valid file: tempo, key and time signatures, notes, controllers, bend, SysEx."""
    tracks = [[(0, b"\xff\x51\x03\x07\xa1\x20"), (0, b"\xff\x58\x04\x04\x02\x18\x08"),
               (0, b"\xff\x59\x02\x00\x00"), (0, b"\xff\x03\x04name")]]
    for _ in range(rng.randint(1, 3)):
        events = [(0, b"\xf0\x03\x7e\x01\xf7")]
        for _ in range(rng.randint(1, 12)):
            ch = rng.randrange(16)
            note = rng.randrange(128)
            events.append((rng.randrange(0, 240), bytes([0x90 | ch, note, rng.randint(1, 127)])))
            if rng.random() < 0.3:
                events.append((0, bytes([0xB0 | ch, rng.randrange(120), rng.randrange(128)])))
            if rng.random() < 0.2:
                events.append((0, bytes([0xE0 | ch, rng.randrange(128), rng.randrange(128)])))
            events.append((rng.randrange(1, 480), bytes([0x80 | ch, note, 0])))
        tracks.append(events)
    return smf(tracks, fmt=rng.choice((0, 1, 2)) if len(tracks) == 1 else rng.choice((1, 2)))


def mutate_midi(rng: random.Random) -> bytes:
    """A valid file with one to four mutations (bytes, header fields, meta events, deltas)."""
    data = bytearray(base_midi(rng))
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(10)
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # truncate
            del data[rng.randrange(8, len(data)):]
        elif kind == 2:  # insert junk
            at = rng.randrange(len(data))
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 3 and len(data) >= 14:  # division: 0, 1, SMPTE (valid or not), huge
            data[12:14] = rng.choice((0, 1, 0x7FFF, 0x8000, 0xE728, 0xE350, 0xFF01,
                                      rng.randrange(65536))).to_bytes(2, "big")
        elif kind == 4 and len(data) >= 12:  # format and track count
            data[8:10] = rng.choice((0, 1, 2, 3, 0xFFFF)).to_bytes(2, "big")
            data[10:12] = rng.choice((0, 1, 2, 100, 0xFFFF)).to_bytes(2, "big")
        elif kind == 5:  # an absurd tempo
            at = data.find(b"\xff\x51\x03")
            if at >= 0:
                data[at + 3:at + 6] = rng.choice((b"\xff\xff\xff", b"\x00\x00\x00",
                                                  b"\x00\x00\x01"))
        elif kind == 6:  # a broken key signature or a tempo of the wrong length
            at = data.find(b"\xff\x59\x02")
            if at >= 0:
                data[at + 3:at + 5] = bytes([rng.randrange(256), rng.randrange(256)])
            at = data.find(b"\xff\x51\x03")
            if at >= 0 and rng.random() < 0.5:
                data[at + 2] = rng.randrange(256)
        elif kind == 7:  # a huge delta before some event
            at = data.find(b"MTrk")
            if at >= 0:
                data[at + 8:at + 8] = rng.choice((b"\x8f\xff\xff\x7f", b"\xff\xff\xff\xff\x7f",
                                                  vlq(rng.randrange(1 << 28))))
        elif kind == 8:  # chunk length lies
            at = data.find(b"MTrk")
            if at >= 0:
                data[at + 4:at + 8] = rng.randrange(1 << 32).to_bytes(4, "big")
        else:  # an unterminated SysEx or a running status after a meta event
            at = rng.randrange(14, max(len(data), 15))
            data[at:at] = rng.choice((b"\x00\xf0\x7f", b"\x00\xff\x7f\x7f", b"\x00\x40\x40"))
    return bytes(data)


# --- patches --------------------------------------------------------------------------

_HOSTILE = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**30, -10**30,
            0, -1, 1, 0.5, 2**63, True, None, "", "x" * 100, [], {}, [1, 2], {"a": 1}]
_YAML_HOSTILE = [".nan", ".inf", "-.inf", "1e400", "9" * 50, "0x7fffffff", "~", "[]", "{}",
                 "[[[[[[]]]]]]", "!!binary aGVsbG8=", "2001-12-14", "*undefined", "&a [*a]",
                 "\"\\uD800\"", "'" + "y" * 300 + "'", "-", "? [a]"]


def yaml_scalar(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {yaml_scalar(v)}" for k, v in value.items()) + "}"


def random_patch(rng: random.Random) -> str:
    """A patch built from schema keys with values in range, at the edges or hostile."""
    keys = rng.sample(sorted(SCHEMA), rng.randint(1, 12))
    sections: dict = {}
    top = []
    for key in keys:
        spec = SCHEMA[key]
        r = rng.random()
        if r < 0.3 and spec.kind in ("float", "int"):
            text = yaml_scalar(rng.choice((spec.lo, spec.hi, (spec.lo + spec.hi) / 2)))
        elif r < 0.4 and spec.choices:
            text = yaml_scalar(rng.choice(spec.choices))
        elif r < 0.8:
            text = yaml_scalar(rng.choice(_HOSTILE))
        else:
            text = rng.choice(_YAML_HOSTILE)
        if "." in key:
            section, sub = key.split(".", 1)
            sections.setdefault(section, []).append(f"  {sub}: {text}")
        else:
            top.append(f"{key}: {text}")
    lines = top + [line for s, items in sections.items() for line in [f"{s}:", *items]]
    rng.shuffle(top)
    return "\n".join(lines) + "\n"


def bundled_texts() -> list[str]:
    return [p.read_text() for p in sorted(Path(PATCH_DIR).glob("*.yaml"))]


def mutate_patch(rng: random.Random, texts: list[str]) -> str:
    """A bundled patch with mutations: values swapped, aliases, nesting, bytes, laughs."""
    kind = rng.randrange(8)
    if kind == 0:
        return random_patch(rng)
    text = rng.choice(texts)
    lines = text.splitlines()
    if kind == 1:  # replace a value by a hostile one
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(lines))
            if ":" in lines[i]:
                head = lines[i].split(":", 1)[0]
                value = rng.choice(_YAML_HOSTILE + [yaml_scalar(rng.choice(_HOSTILE))])
                lines[i] = f"{head}: {value}"
        return "\n".join(lines)
    if kind == 2:  # aliases, possibly exponential
        levels = rng.randint(1, 10)
        out = ["x0: &x0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
        out += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, levels)]
        key = rng.choice(["name", "description", "voices"])
        return "\n".join(out) + f"\n{key}: *x{levels - 1}\n" + text
    if kind == 3:  # deep nesting somewhere
        depth = rng.choice((10, 40, 1000, 50_000))
        opener, closer = rng.choice((("[", "]"), ("{a: ", "}")))
        return text + f"\ndescription: {opener * depth}{closer * depth}\n"
    if kind == 4:  # random byte damage
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 10)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return data.decode("utf-8", "replace")
    if kind == 5:  # truncated, as by an editor mid-write
        return text[:rng.randrange(len(text) + 1)]
    if kind == 6:  # duplicated or shuffled lines
        rng.shuffle(lines)
        return "\n".join(lines + lines[:rng.randint(0, 3)])
    # huge numbers and strings in the network section or elsewhere
    return text + rng.choice(("\nvoices: 1e999\n", "\ncontrollers: [" + "{cc: 1}, " * 500 + "]\n",
                              "\nnetwork: {neurons: [" + "{}, " * 2000 + "]}\n",
                              f"\nname: {'z' * 20000}\n"))


# --- the checks ---------------------------------------------------------------------------


class Outcome(NamedTuple):
    accepted: bool
    error: str | None  # the project's own message when refused
    seconds: float
    peak_bytes: int


def check_midi(data: bytes, path: Path, samplerate=48000, max_seconds=600.0) -> Outcome:
    """Read a MIDI file as ``render`` does. Raises anything that is not the project's error."""
    path.write_bytes(data)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        events = midi_file_events(path, samplerate, max_seconds=max_seconds, warn=lambda m: None)
        events, _ = release_hanging_notes(events)
        check_length(events, samplerate, None, max_seconds)
        result = (True, None)
    except RenderError as e:
        message = str(e)
        assert "\n" not in message, message
        assert message.startswith(str(path)) or message.startswith("the render"), message
        result = (False, message)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Outcome(*result, time.perf_counter() - t0, peak)


def check_patch(text: str) -> Outcome:
    """Validate a patch as ``check`` does. Raises anything that is not a PatchError."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        patch_from_text(text, "fuzz.yaml")
        result = (True, None)
    except PatchError as e:
        assert "\n" not in str(e), str(e)
        result = (False, str(e))
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Outcome(*result, time.perf_counter() - t0, peak)
