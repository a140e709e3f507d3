"""Microtuning from Scala files: ``.scl`` scales and ``.kbm`` keyboard maps → Hz per MIDI note.

The Scala formats are read, and every note's frequency is computed, by the Surge Synth Team's
``tuning-library`` (the only module importing it): its semantics are the reference, nothing
here parses Scala text. Without a ``.kbm`` tuning-library's standard mapping applies: every
key the next scale degree, degree 0 on MIDI note 60 at 261.6256 Hz (12-tone C4, so that
12-tone equal temperament has A4 = 440 Hz); without a ``.scl``, 12-tone equal temperament.

A keyboard map may leave keys unmapped (``x`` in the ``.kbm``): those notes have
``mapped[note] == False`` and, by the Scala convention, should not sound. Their entry in
``frequencies`` is whatever tuning-library reports and carries no meaning.

Bad files raise :class:`TuningFileError`, whose message names the file, the line when
tuning-library gives one, and what was wrong (``scale.scl:6: invalid tone 'foo'``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tuning_library as tl

N_NOTES = 128


class TuningFileError(ValueError):
    """A Scala file that cannot be used: where (file, line) and what was wrong.

    Same fields and message layout as :class:`spikesynth.patch.PatchError`
    (``file:line: message``), so a patch's ``tuning:`` section can re-raise it as one.
    """

    def __init__(self, file, message, line=None):
        self.file = str(file)
        self.line = line
        self.message = message
        where = self.file + (f":{line}" if line else "")
        super().__init__(f"{where}: {message}")


class Tuning(NamedTuple):
    """A tuning ready for the engine's per-note frequency table."""

    frequencies: np.ndarray
    """float64, shape (128,): Hz for MIDI notes 0–127 (read-only)."""
    mapped: np.ndarray
    """bool, shape (128,): False for keys the keyboard map leaves unmapped (read-only)."""
    scale_name: str
    """The ``.scl`` description line (tuning-library's own text for the default scale)."""
    scale_size: int
    """Notes per period in the scale (the ``.scl`` note count)."""
    period_cents: float
    """The scale's period (its last degree), cents: 1200 for octave scales."""
    scl: str | None
    """Path of the ``.scl`` file, or None for 12-tone equal temperament."""
    kbm: str | None
    """Path of the ``.kbm`` file, or None for the standard mapping."""


_LINE_NUMBER = re.compile(r"\b[Ll]ine (\d+)\b")
_LINE_SENTENCE = re.compile(r"\.?\s*\bLine \d+\.\s*")  # "...file.Line 6. Line is 'foo'."


def _error(path: Path, error: Exception) -> TuningFileError:
    """tuning-library's message as ``file:line: message`` (the line number moved in front)."""
    text = str(error).strip()
    match = _LINE_NUMBER.search(text)
    line = int(match.group(1)) if match else None
    text = _LINE_SENTENCE.sub(". ", text, count=1)
    text = _LINE_NUMBER.sub("line", text, count=1).strip()
    return TuningFileError(path, text.rstrip(".") or "invalid file", line)


def _check_file(path: Path, kind: str) -> None:
    if not path.exists():
        raise TuningFileError(path, f"no such {kind} file")
    if not path.is_file():
        raise TuningFileError(path, f"is a directory, expected a {kind} file")


def load_tuning(scl: str | Path | None = None, kbm: str | Path | None = None) -> Tuning:
    """Read a scale and a keyboard map and return every MIDI note's frequency.

    Thread: main (reads files, allocates).

    Parameters
    ----------
    scl : path, optional
        Scala scale (``.scl``). None: 12-tone equal temperament.
    kbm : path, optional
        Scala keyboard map (``.kbm``). None: the standard mapping (degree 0 on note 60 at
        261.6256 Hz, one key per degree).

    Returns
    -------
    Tuning

    Raises
    ------
    TuningFileError
        A missing or unreadable file, or one tuning-library rejects (with its line when it
        names one), or a keyboard map that does not fit the scale.
    """
    scale = tl.even_temperament_12_note_scale()
    mapping = None
    if scl is not None:
        scl = Path(scl)
        _check_file(scl, "scale (.scl)")
        try:
            scale = tl.read_scl_file(scl)
        except (tl.TuningError, RuntimeError, UnicodeDecodeError) as e:
            raise _error(scl, e) from None
    if kbm is not None:
        kbm = Path(kbm)
        _check_file(kbm, "keyboard map (.kbm)")
        try:
            mapping = tl.read_kbm_file(kbm)
        except (tl.TuningError, RuntimeError, UnicodeDecodeError) as e:
            raise _error(kbm, e) from None
    try:
        tuning = tl.Tuning(scale) if mapping is None else tl.Tuning(scale, mapping)
    except (tl.TuningError, RuntimeError) as e:
        # The map does not fit the scale (e.g. its reference key is unmapped).
        raise _error(kbm if kbm is not None else scl, e) from None
    frequencies = np.array([tuning.frequency_for_midi_note(n) for n in range(N_NOTES)],
                           dtype=np.float64)
    mapped = np.array([tuning.is_midi_note_mapped(n) for n in range(N_NOTES)], dtype=bool)
    bad = np.flatnonzero(mapped & ~(np.isfinite(frequencies) & (frequencies > 0.0)))
    if bad.size:
        raise TuningFileError(kbm if kbm is not None else scl,
                              f"gives note {int(bad[0])} no positive finite frequency "
                              f"({frequencies[bad[0]]!r} Hz)")
    frequencies.setflags(write=False)
    mapped.setflags(write=False)
    return Tuning(
        frequencies=frequencies,
        mapped=mapped,
        scale_name=scale.description,
        scale_size=int(scale.count),
        period_cents=float(scale.tones[-1].cents),
        scl=None if scl is None else str(scl),
        kbm=None if kbm is None else str(kbm),
    )
