"""SFZ instruments: the key and velocity layout of a multisample, a writer and a small reader.

A library renders some notes at some velocities; :func:`key_ranges` and
:func:`velocity_ranges` spread them over the whole keyboard (0–127) and the whole velocity
range (0–127) without gap or overlap, each key or velocity going to the nearest rendered
one (ties to the lower). :func:`write_sfz` writes one ``<group>`` per velocity layer and one
``<region>`` per sample with its ``pitch_keycenter``; :func:`read_sfz` parses SFZ text back
into regions with the opcodes they inherit (``<global>`` < ``<master>`` < ``<group>`` <
``<region>``), enough to check what we write and simple instruments from elsewhere.
Thread: any (pure functions).
"""

from __future__ import annotations

import re
from typing import NamedTuple

KEYS = 128
VELOCITY_MAX = 127


class SfzError(ValueError):
    """SFZ text that cannot be read: says which line and what was expected."""


class Range(NamedTuple):
    """An inclusive range of MIDI keys or velocities."""

    lo: int
    hi: int


class SfzRegion(NamedTuple):
    """One sample of a multisample: its file (relative to the .sfz), where it plays, its pitch."""

    sample: str  # path relative to the .sfz file, forward slashes
    keys: Range  # lokey..hikey
    velocities: Range  # lovel..hivel
    pitch_keycenter: int  # the key at which the sample plays at its own pitch


def _split(points, top) -> list[Range]:
    """Ranges covering 0..top, one per sorted point, split halfway between neighbours."""
    points = sorted(points)
    if not points:
        raise ValueError("need at least one point")
    if len(set(points)) != len(points):
        raise ValueError("points must be distinct")
    ranges = []
    for i, p in enumerate(points):
        lo = 0 if i == 0 else (points[i - 1] + p) // 2 + 1
        hi = top if i == len(points) - 1 else (p + points[i + 1]) // 2
        ranges.append(Range(lo, hi))
    return ranges


def key_ranges(notes) -> list[Range]:
    """Key ranges (0–127, no gap, no overlap) for rendered ``notes``, in note order."""
    return _split(notes, KEYS - 1)


def velocity_ranges(velocities) -> list[Range]:
    """Velocity layers (0–127, no gap, no overlap) for rendered ``velocities``, in order."""
    return _split(velocities, VELOCITY_MAX)


def layout(samples) -> list[SfzRegion]:
    """Regions for ``samples`` = ``{(note, velocity): relative_path}`` on a full grid.

    Every note must be rendered at every velocity (a library's grid); raises ``ValueError``
    otherwise.
    """
    notes = sorted({n for n, _ in samples})
    velocities = sorted({v for _, v in samples})
    missing = [(n, v) for n in notes for v in velocities if (n, v) not in samples]
    if missing:
        raise ValueError(f"no sample for note {missing[0][0]} velocity {missing[0][1]}")
    regions = []
    for v, vr in zip(velocities, velocity_ranges(velocities), strict=True):
        for n, kr in zip(notes, key_ranges(notes), strict=True):
            regions.append(SfzRegion(samples[(n, v)], kr, vr, n))
    return regions


def write_sfz(regions, comment="", global_opcodes=None) -> str:
    """SFZ text: a ``<global>`` header, then a ``<group>`` per velocity layer of ``regions``.

    ``global_opcodes`` (dict) go under ``<global>``; ``comment`` lines become ``//`` comments.
    Sample paths use forward slashes, as SFZ players expect on every system.
    """
    lines = [f"// {line}".rstrip() for line in comment.splitlines()]
    lines.append("<global>")
    lines += [f"{k}={v}" for k, v in (global_opcodes or {}).items()]
    layers: dict[Range, list[SfzRegion]] = {}
    for r in regions:
        layers.setdefault(r.velocities, []).append(r)
    for vr in sorted(layers):
        lines.append("")
        lines.append(f"<group> lovel={vr.lo} hivel={vr.hi}")
        for r in sorted(layers[vr], key=lambda r: r.keys):
            sample = r.sample.replace("\\", "/")
            lines.append(f"<region> sample={sample} lokey={r.keys.lo} hikey={r.keys.hi} "
                         f"pitch_keycenter={r.pitch_keycenter}")
    return "\n".join(lines) + "\n"


_HEADER = re.compile(r"<(\w+)>")
_OPCODE = re.compile(r"(?:(?<=\s)|^)([A-Za-z_][A-Za-z0-9_]*)=")
_LEVELS = {"control": 0, "global": 0, "master": 1, "group": 2, "region": 3}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def read_sfz(text: str, source="<sfz>") -> list[dict]:
    """Parse SFZ text into one dict of effective opcodes per ``<region>``, in file order.

    Each region's dict holds the opcodes of the ``<global>``, ``<master>`` and ``<group>``
    above it, overridden by its own; values are strings (a ``sample`` value may contain
    spaces: it runs to the next opcode or the end of the line). ``<control>``'s
    ``default_path`` is prefixed to each sample. Other headers (``<curve>``, ``<effect>``...)
    are skipped; ``#define`` / ``#include`` are not supported (:class:`SfzError`).
    """
    scopes = [{}, {}, {}, {}]  # global, master, group, region
    control: dict = {}
    regions = []
    current = None  # level of the open header, or "control" / "skip"

    def close_region():
        if current == 3:
            merged = {**scopes[0], **scopes[1], **scopes[2], **scopes[3]}
            if "sample" in merged:
                merged["sample"] = control.get("default_path", "") + merged["sample"]
            regions.append(merged)

    for number, line in enumerate(_strip_comments(text).splitlines(), 1):
        if line.lstrip().startswith("#"):
            raise SfzError(f"{source}:{number}: preprocessor lines (#define, #include) "
                           "are not supported")
        for piece in re.split(r"(<\w+>)", line):
            m = _HEADER.fullmatch(piece)
            if m:
                close_region()
                name = m.group(1)
                if name == "control":
                    current = "control"
                elif name in _LEVELS:
                    current = _LEVELS[name]
                    for level in range(current, 4):
                        scopes[level] = {}
                else:
                    current = "skip"
                continue
            starts = list(_OPCODE.finditer(piece))
            leftover = piece[:starts[0].start()] if starts else piece
            if leftover.strip():
                raise SfzError(f"{source}:{number}: expected opcode=value, got "
                               f"{leftover.strip()!r}")
            for i, op in enumerate(starts):
                end = starts[i + 1].start() if i + 1 < len(starts) else len(piece)
                value = piece[op.end():end].strip()
                if current is None:
                    raise SfzError(f"{source}:{number}: opcode {op.group(1)} before any header")
                if current == "control":
                    control[op.group(1)] = value
                elif current != "skip":
                    scopes[current][op.group(1)] = value
    close_region()
    return regions


def regions_from_sfz(text: str, source="<sfz>") -> list[SfzRegion]:
    """:func:`read_sfz`, then each region as an :class:`SfzRegion` (SFZ defaults filled in:
    keys 0–127, velocities 0–127, ``pitch_keycenter`` 60; ``key`` sets all three)."""
    out = []
    for i, r in enumerate(read_sfz(text, source)):
        try:
            key = int(r["key"]) if "key" in r else None
            lokey = int(r.get("lokey", key if key is not None else 0))
            hikey = int(r.get("hikey", key if key is not None else KEYS - 1))
            center = int(r.get("pitch_keycenter", key if key is not None else 60))
            lovel = int(r.get("lovel", 0))
            hivel = int(r.get("hivel", VELOCITY_MAX))
        except ValueError as e:
            raise SfzError(f"{source}: region {i + 1}: expected MIDI numbers ({e})") from None
        if "sample" not in r:
            raise SfzError(f"{source}: region {i + 1}: no sample")
        out.append(SfzRegion(r["sample"], Range(lokey, hikey), Range(lovel, hivel), center))
    return out
