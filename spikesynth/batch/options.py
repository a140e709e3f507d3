"""What a batch is asked: :class:`BatchError` and the parsing of ``--notes``,
``--velocities`` and ``--param``.

Pure functions of the command line's text, run on the client. Thread: main.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..offline import RenderError, parse_pitch
from ..patch import SCHEMA


class BatchError(ValueError):
    """A user error in what was asked of a batch (bad range, unknown track, no scheduler)."""


# -- parsing ----------------------------------------------------------------------------
def parse_notes(text: str) -> list[int]:
    """``LO:HI[:STEP]`` (MIDI numbers or names, inclusive) or a comma list: sorted notes."""
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) not in (2, 3):
                raise BatchError(f"bad --notes {text!r}: expected LO:HI[:STEP]")
            lo, hi = parse_pitch(parts[0]), parse_pitch(parts[1])
            step = int(parts[2]) if len(parts) == 3 else 1
            if step < 1 or hi < lo:
                raise BatchError(f"bad --notes {text!r}: expected LO <= HI and STEP >= 1")
            return list(range(lo, hi + 1, step))
        return sorted({parse_pitch(p) for p in text.split(",") if p.strip()})
    except (RenderError, ValueError) as e:
        if isinstance(e, BatchError):
            raise
        raise BatchError(f"bad --notes {text!r}: {e}") from None


def parse_velocities(text: str) -> list[int]:
    """``V,V,...`` (1..127): sorted, distinct."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise BatchError(f"bad --velocities {text!r}: expected numbers like 32,64,96,127") \
            from None
    if not values or not all(1 <= v <= 127 for v in values):
        raise BatchError(f"bad --velocities {text!r}: each must be 1..127")
    return values


class SweepAxis(NamedTuple):
    key: str  # dotted patch key
    values: tuple


def parse_param(text: str) -> SweepAxis:
    """``KEY.PATH=LO:HI:N`` → N evenly spaced values (``LO:HI:Nlog`` for geometric spacing)."""
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep:
        raise BatchError(f"bad --param {text!r}: expected KEY.PATH=LO:HI:N")
    spec_ = SCHEMA.get(key)
    if spec_ is None or spec_.kind not in ("float", "int"):
        numeric = ", ".join(k for k, s in SCHEMA.items() if s.kind in ("float", "int"))
        raise BatchError(f"bad --param {text!r}: {key!r} is not a numeric patch key "
                         f"(known: {numeric})")
    parts = spec.split(":")
    geometric = len(parts) == 3 and parts[2].endswith("log")
    if geometric:
        parts[2] = parts[2][:-3]
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        raise BatchError(f"bad --param {text!r}: expected KEY.PATH=LO:HI:N, "
                         "e.g. spring.frequency_hz=500:4000:5") from None
    if len(parts) != 3 or n < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
        raise BatchError(f"bad --param {text!r}: expected KEY.PATH=LO:HI:N with N >= 1")
    if geometric:
        if lo <= 0 or hi <= 0:
            raise BatchError(f"bad --param {text!r}: log spacing needs positive LO and HI")
        values = np.geomspace(lo, hi, n) if n > 1 else np.array([lo])
    else:
        values = np.linspace(lo, hi, n) if n > 1 else np.array([lo])
    if spec_.kind == "int":
        values = np.unique(np.round(values).astype(int))
        return SweepAxis(key, tuple(int(v) for v in values))
    return SweepAxis(key, tuple(float(v) for v in values))
