"""``spikesynth sweep``: a patch rendered over a grid of parameter values.

Writes a file per grid point, ``features.csv`` (the swept values and the features measured
from each render) and ``contact_sheet.png`` (a small spectrogram per render, laid out by the
grid). Thread: main.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..offline import encode_audio
from ..patch import DEFAULT_PATCH
from .files import _read_patch, _write_bytes, _write_text
from .jobs import RenderSettings, SweepJob, _sheet_f_max, _sheet_seconds, render_sweep_point
from .options import BatchError
from .runners import Runner, _progress


class SweepReport(NamedTuple):
    files: list
    features_csv: Path
    contact_sheet: Path | None  # None: matplotlib is missing
    rows: int
    runner: str


FEATURE_COLUMNS = ("f0_hz", "centroid_hz", "loudness_lufs", "spike_rate_hz", "inharmonic_db")


def sweep_grid(axes) -> list[tuple]:
    """Every combination of the axes' values, the first axis varying fastest."""
    combos = itertools.product(*[a.values for a in reversed(axes)])
    return [tuple(reversed(c)) for c in combos]


def render_sweep(patch_path, out_dir, axes, runner: Runner, note=60, velocity=100,
                 settings: RenderSettings | None = None, quiet=False) -> SweepReport:
    """Render ``patch`` at every point of the grid of ``axes`` (:func:`parse_param`).

    Writes ``sweep_NNN.wav`` per point, ``features.csv`` (a row per point: the file, each
    swept value, then :data:`FEATURE_COLUMNS`, measured from the held note) and
    ``contact_sheet.png``: a spectrogram per point, the first axis across, the others down.
    Every grid point is validated (``Patch.replace``) before anything renders.
    """
    settings = settings or RenderSettings()
    if not axes:
        raise BatchError("a sweep needs at least one --param KEY.PATH=LO:HI:N")
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise BatchError("each --param key may be swept once")
    patch_path = patch_path or DEFAULT_PATCH
    text, patch = _read_patch(patch_path)
    source = str(patch_path)
    grid = sweep_grid(axes)
    for values in grid:  # fail before rendering: the schema names the key and the range
        patch.replace(**dict(zip(keys, values, strict=True)))
    encode_audio(np.zeros((1, 2), np.float32), settings.samplerate, settings.subtype,
                 settings.format)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [SweepJob(text, source, tuple(zip(keys, values, strict=True)), note, velocity,
                     settings) for values in grid]
    results: list = [None] * len(jobs)
    files = [out_dir / f"sweep_{i:03d}.{settings.format}" for i in range(len(jobs))]
    bar = _progress(len(jobs), "sweep", quiet)
    try:
        for index, result in runner.map(render_sweep_point, jobs,
                                        [f"sweep-{i}" for i in range(len(jobs))]):
            _write_bytes(files[index], result.data)
            results[index] = result
            bar.update(1)
    finally:
        bar.close()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", *keys, *FEATURE_COLUMNS])
    for path, values, result in zip(files, grid, results, strict=True):
        writer.writerow([path.name, *[f"{v:.6g}" for v in values],
                         *[f"{getattr(result.features, c):.6g}" for c in FEATURE_COLUMNS]])
    csv_path = out_dir / "features.csv"
    _write_text(csv_path, buffer.getvalue())
    sheet = out_dir / "contact_sheet.png"
    try:
        _draw_sheet(sheet, axes, results, settings, patch.name, note)
    except ImportError:
        sheet = None
    return SweepReport(files, csv_path, sheet, len(grid), runner.description)


def _draw_sheet(path, axes, results, settings: RenderSettings, name, note):
    from ..plot import MissingMatplotlib, contact_sheet, write_figure

    first = axes[0]
    rest = axes[1:]
    cols = len(first.values)
    row_values = sweep_grid(rest) if rest else [()]
    thumbs = [[results[r * cols + c].thumb for c in range(cols)] for r in range(len(row_values))]
    col_labels = [f"{first.key}={v:g}" for v in first.values]
    row_labels = ["\n".join(f"{a.key}={v:g}" for a, v in zip(rest, values, strict=True))
                  for values in row_values]
    try:
        fig = contact_sheet(thumbs, row_labels, col_labels, _sheet_f_max(settings.samplerate),
                            _sheet_seconds(settings),
                            title=f"{name}, note {note}: a spectrogram per render")
    except MissingMatplotlib as e:
        raise ImportError(str(e)) from None
    write_figure(fig, path)
