"""Bulk rendering: sample libraries, stems and parameter sweeps, on Dask or in one process.

The host behind ``spikesynth library | stems | sweep``. Work is cut into tasks that are pure
functions of plain data; a task renders into memory and hands back bytes and features; the
client, this process, writes every file atomically as results arrive, so an interrupted
batch leaves only complete files and a rerun of ``library`` renders only what is missing or
out of date. One module per job, imports flowing down this list:

* :mod:`.options` — :class:`BatchError` and the parsing of ``--notes``, ``--velocities``,
  ``--param``;
* :mod:`.files` — patch files read with their text, hashes, atomic writes;
* :mod:`.jobs` — what a worker runs: the tasks' records and the tasks (``render_sample``,
  ``render_part``, ``render_sweep_point``), :func:`warm_up`;
* :mod:`.runners` — in this process or on Dask (the only module importing dask): chunking,
  the warm-up plugin, the local cluster's settings;
* :mod:`.library`, :mod:`.stems`, :mod:`.sweep` — the three commands.

This package re-exports what the command line, the tests and the benchmark use.
"""

from .files import _file_hash as _file_hash
from .files import _write_bytes as _write_bytes
from .jobs import RenderSettings, SampleJob, render_sample, warm_up
from .library import _check_written as _check_written
from .library import render_library
from .options import BatchError, parse_notes, parse_param, parse_velocities
from .runners import DaskRunner, InProcessRunner, Runner, chunk_size, open_runner
from .stems import render_stems
from .sweep import render_sweep

__all__ = [
    "BatchError",
    "DaskRunner",
    "InProcessRunner",
    "RenderSettings",
    "Runner",
    "SampleJob",
    "chunk_size",
    "open_runner",
    "parse_notes",
    "parse_param",
    "parse_velocities",
    "render_library",
    "render_sample",
    "render_stems",
    "render_sweep",
    "warm_up",
]
