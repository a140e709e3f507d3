"""Bulk rendering: sample libraries, stems and parameter sweeps, on Dask or in one process.

The host behind ``spikesynth library | stems | sweep``, and the only module that imports
dask. Work is cut into tasks that are pure functions of plain data (the patch file's text,
the note, the velocity, the settings): a task renders into memory with a fresh
:class:`~spikesynth.engine.Synth` and hands back the file's bytes (or the audio) and the
features measured from it (:mod:`spikesynth.analysis`). The client, this process, writes
every file atomically (:mod:`spikesynth.fileio`) as results arrive, so an interrupted batch
leaves only complete files, and a rerun of ``library`` renders only what is missing or out
of date (``manifest.json``).

Runners (:func:`open_runner`):

- :class:`DaskRunner`: a local Dask cluster of worker processes, one per core, bound to
  127.0.0.1 with no dashboard; or an existing cluster (``--scheduler tcp://HOST:PORT``).
  Each worker loads the compiled kernels once when it joins (:class:`WarmUp`, a worker
  plugin); tasks are submitted with ``retries`` and a task lost with its worker is run again
  on another, so the batch completes; results are byte-identical to one process's because
  each task is a pure function of its inputs.
- :class:`InProcessRunner`: the same tasks one after another in this process (``--workers
  0``, or when dask is not installed: a note then says how to parallelise).

Thread: main, throughout (the client); tasks run on the workers' threads.
"""

from __future__ import annotations

import copy
import csv
import functools
import hashlib
import io
import itertools
import json
import logging
import math
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from . import __version__, analysis
from .engine import CEILING, Synth
from .fileio import atomic_output
from .master import master_latency
from .offline import (
    BLOCK,
    Note,
    RenderError,
    encode_audio,
    midi_file_parts,
    note_events,
    parse_pitch,
    render_events,
)
from .patch import DEFAULT_PATCH, SCHEMA, load_patch, patch_from_text
from .sfz import layout, write_sfz

try:  # optional: without dask every batch runs in this process
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - exercised by the no-dask test in a subprocess
    _WorkerPlugin = object

RETRIES = 3  # a task that raised is tried this many more times (worker loss: Dask reschedules)
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "spikesynth-library/1"
MANIFEST_INTERVAL_S = 2.0  # a running library rewrites its manifests at most this often
F0_SKIP_S = 0.1  # f0 is measured on the held note, after this much of its start ...
F0_SKIP_FRACTION = 0.25  # ... or this fraction of it, whichever is shorter
INHARMONIC_TOLERANCE = 0.01  # energy within ±1 % of a harmonic (at least the window's lobe)
INSTALL_HINT = ("dask is not installed, so this runs in one process; to use every core "
                "(or a cluster with --scheduler) install it: pip install 'spikesynth[batch]'")
_WARM_UP_SR = 22050


class BatchError(ValueError):
    """A user error in what was asked of a batch (bad range, unknown track, no scheduler)."""


# -- plain data for the tasks --------------------------------------------------------------
class RenderSettings(NamedTuple):
    """How each item is rendered (part of a library sample's up-to-date check)."""

    samplerate: int = 48000  # Hz
    length_s: float = 1.0  # the note is held this long, then released
    tail_s: float | None = None  # after the note-off; None: until silence (at most 60 s)
    subtype: str = "PCM_24"  # PCM_16, PCM_24, FLOAT
    format: str = "wav"  # wav, flac, aiff
    seed: int = 0  # noise seed

    def as_dict(self) -> dict:
        """The settings as JSON-ready data, with the engine version that renders them."""
        return {**self._asdict(), "engine": f"spikesynth {__version__}"}


class SampleJob(NamedTuple):
    """One library sample: a patch (its file's text) playing one note at one velocity."""

    patch_text: str
    patch_source: str  # the patch file's path, for messages
    note: int  # MIDI note 0..127
    velocity: int  # 1..127
    settings: RenderSettings
    target: str = ""  # "": hand the bytes back; else the worker writes this (absolute) path


class SampleFeatures(NamedTuple):
    """What a library sample measures (from its audio)."""

    f0_hz: float  # estimated on the held note (nan: no harmonic near the note's pitch)
    peak_dbfs: float
    loudness_lufs: float  # BS.1770 integrated (nan: shorter than 0.4 s)
    duration_s: float
    frames: int


class SampleResult(NamedTuple):
    data: bytes  # the encoded audio file (b"" when the worker wrote it to the job's target)
    features: SampleFeatures
    sha256: str  # of the file ("sha256:" + hex), hashed on the worker, not the client
    size: int  # the file's length in bytes


class PartJob(NamedTuple):
    """One stem: a patch playing one track's (or channel's) events."""

    patch_text: str
    patch_source: str
    events: list  # [(absolute sample, MIDI bytes)]
    samplerate: int
    tail_s: float | None
    seed: int


class PartResult(NamedTuple):
    audio: np.ndarray  # float32, shape (frames, 2): the synth's output
    limited_samples: int  # samples its own safety limiter reduced (0: the limiter never acted)


class SweepJob(NamedTuple):
    """One point of a parameter grid."""

    patch_text: str
    patch_source: str
    changes: tuple  # ((key path, value), ...)
    note: int
    velocity: int
    settings: RenderSettings


class SweepFeatures(NamedTuple):
    """What a sweep render measures (from its audio; the held note only)."""

    f0_hz: float
    centroid_hz: float
    loudness_lufs: float
    spike_rate_hz: float
    inharmonic_db: float


class SweepResult(NamedTuple):
    data: bytes
    features: SweepFeatures
    thumb: np.ndarray  # float32 (bands, frames) dB: the contact sheet's cell


# -- tasks (pure functions; run on the workers) ---------------------------------------------
def render_note(patch, note, velocity, settings: RenderSettings) -> np.ndarray:
    """``note`` held ``settings.length_s`` then released, with its tail: float32 (frames, 2).

    A fresh synth per call, so the result depends only on the arguments.
    """
    synth = Synth(patch, samplerate=settings.samplerate, max_block=BLOCK, seed=settings.seed)
    events = note_events([Note(note, velocity, 0.0, settings.length_s)], settings.samplerate)
    blocks: list = []
    render_events(synth, events, settings.tail_s, blocks.append)
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), np.float32)


def note_hz(patch, note) -> float:
    """The 12-TET frequency the patch plays for ``note`` (``a4`` and ``transpose``), Hz."""
    return patch["a4"] * 2.0 ** ((note + patch["transpose"] - 69) / 12.0)


def _held(audio, settings: RenderSettings) -> np.ndarray:
    sr = settings.samplerate
    skip = min(F0_SKIP_S, F0_SKIP_FRACTION * settings.length_s)
    return audio[int(skip * sr):int(settings.length_s * sr)]


@functools.lru_cache(maxsize=32)
def _parsed(text: str, source: str):
    return patch_from_text(text, source)


def parse_patch(text: str, source: str):
    """The patch of ``text``: parsed once per process (YAML is a third of a task's time),
    handed out as a fresh copy so no task sees another's."""
    return copy.deepcopy(_parsed(text, source))


def render_sample(job: SampleJob) -> SampleResult:
    """Task: render a library sample and measure it. Pure: same job, same bytes."""
    patch = parse_patch(job.patch_text, job.patch_source)
    s = job.settings
    audio = render_note(patch, job.note, job.velocity, s)
    features = SampleFeatures(
        f0_hz=analysis.estimate_f0(_held(audio, s), s.samplerate, note_hz(patch, job.note)),
        peak_dbfs=analysis.peak_dbfs(audio),
        loudness_lufs=analysis.loudness_lufs(audio, s.samplerate),
        duration_s=len(audio) / s.samplerate,
        frames=len(audio))
    data = encode_audio(audio, s.samplerate, s.subtype, s.format)
    digest = _file_hash(data)
    if job.target:  # a folder every worker shares: write it here, send back only the facts
        _write_bytes(job.target, data)
        return SampleResult(b"", features, digest, len(data))
    return SampleResult(data, features, digest, len(data))


def render_part(job: PartJob) -> PartResult:
    """Task: render one stem's events through its patch. Pure."""
    patch = parse_patch(job.patch_text, job.patch_source)
    synth = Synth(patch, samplerate=job.samplerate, max_block=BLOCK, seed=job.seed)
    blocks: list = []
    render_events(synth, job.events, job.tail_s, blocks.append)
    audio = np.concatenate(blocks) if blocks else np.zeros((0, 2), np.float32)
    return PartResult(audio, synth.stats()["limited_samples"])


def render_sweep_point(job: SweepJob) -> SweepResult:
    """Task: render one grid point of a sweep and measure it. Pure."""
    patch = parse_patch(job.patch_text, job.patch_source).replace(**dict(job.changes))
    s = job.settings
    audio = render_note(patch, job.note, job.velocity, s)
    held = _held(audio, s)
    f0 = analysis.estimate_f0(held, s.samplerate, note_hz(patch, job.note))
    features = SweepFeatures(
        f0_hz=f0,
        centroid_hz=analysis.spectral_centroid(held, s.samplerate),
        loudness_lufs=analysis.loudness_lufs(audio, s.samplerate),
        spike_rate_hz=analysis.spike_rate(held, s.samplerate),
        inharmonic_db=analysis.inharmonic_ratio_db(held, s.samplerate, f0,
                                                   _harmonic_tolerance(f0, len(held), s)))
    thumb = analysis.spectrogram_thumb(audio[:int(_sheet_seconds(s) * s.samplerate)],
                                       s.samplerate, f_max=_sheet_f_max(s.samplerate),
                                       frames=int(_sheet_seconds(s) * s.samplerate))
    return SweepResult(encode_audio(audio, s.samplerate, s.subtype, s.format), features, thumb)


def _harmonic_tolerance(f0, frames, settings: RenderSettings) -> float:
    """±1 % of f0, widened to the Blackman-Harris main lobe (±4 bins) of a short segment."""
    if not (f0 > 0) or frames == 0:
        return INHARMONIC_TOLERANCE
    return max(INHARMONIC_TOLERANCE, 4.5 * settings.samplerate / frames / f0)


def _sheet_f_max(samplerate) -> float:
    return min(12000.0, samplerate / 2)


def _sheet_seconds(settings: RenderSettings) -> float:
    """The contact sheet shows each render's first this many seconds (note and release)."""
    return 1.5 * settings.length_s


def warm_up() -> float:
    """Load (or compile) the engine's kernels and the analysis in this process; seconds taken.

    Renders a few milliseconds of the default patch and measures them, so the first real
    task does not pay for it.
    """
    t0 = time.perf_counter()
    settings = RenderSettings(samplerate=_WARM_UP_SR, length_s=0.02, tail_s=0.01)
    audio = render_note(load_patch(None), 60, 100, settings)
    analysis.estimate_f0(audio, _WARM_UP_SR, 261.6)
    analysis.loudness_lufs(np.zeros((_WARM_UP_SR, 2)), _WARM_UP_SR)
    return time.perf_counter() - t0


class WarmUp(_WorkerPlugin):
    """Worker plugin: each Dask worker runs :func:`warm_up` once, when it starts or joins."""

    name = "spikesynth-warm-up"
    idempotent = True

    def setup(self, worker):
        """Thread: the worker's event loop, once per worker."""
        worker.spikesynth_warm_up_s = warm_up()


# -- runners ----------------------------------------------------------------------------
MAX_CHUNK = 8  # items per Dask task at most (a few hundred ms of work: progress stays smooth)
TASKS_PER_WORKER = 16  # ... and at least this many tasks per worker, so none waits at the end


def chunk_size(items: int, workers: int) -> int:
    """Items per Dask task: one task per item costs the scheduler and client about a
    millisecond of CPU each, which on a small machine is CPU the renders want; a few items
    per task amortise it while every worker still gets many tasks (load balance, and a lost
    worker costs little to redo)."""
    return max(1, min(MAX_CHUNK, items // max(1, workers * TASKS_PER_WORKER)))


def run_chunk(fn: Callable, jobs: list) -> list:
    """Task: ``fn`` over a few jobs, in order (pure when ``fn`` is)."""
    return [fn(job) for job in jobs]


class Runner:
    """Runs pure tasks and yields their results as they complete. Thread: main.

    Subclasses implement :meth:`_map` (and :meth:`_close` when they hold resources).
    """

    description = ""
    workers = 1

    def map(self, fn: Callable, jobs: list, labels: list | None = None):
        """Yield ``(index, fn(jobs[index]))`` for every job, in completion order.

        Stopping the iteration early (an exception in the consumer, Ctrl-C) cancels the
        tasks not yet finished.
        """
        labels = labels or [str(i) for i in range(len(jobs))]
        return self._map(fn, list(jobs), list(labels))

    def close(self):
        self._close()

    def _map(self, fn, jobs, labels):
        raise NotImplementedError

    def _close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcessRunner(Runner):
    """Every task in this process, one after another (no dask needed)."""

    description = "in this process"

    def __init__(self):
        self._warm = False

    def _map(self, fn, jobs, labels):
        if not self._warm:
            warm_up()
            self._warm = True
        for index, job in enumerate(jobs):
            yield index, fn(job)


class DaskRunner(Runner):
    """Tasks on a Dask cluster: a local one (``workers`` processes) or ``scheduler``'s.

    A local cluster binds its scheduler and workers to 127.0.0.1, runs no dashboard, gives
    each worker one thread (the renders hold the GIL only briefly, but numba's compiled
    code and the FFTs want a core each), and ignores Ctrl-C in the worker processes so the
    client alone decides what to cancel.
    """

    def __init__(self, scheduler=None, workers=None, connect_timeout=30.0):
        from distributed import Client, LocalCluster

        self._cluster = None
        self.token = uuid.uuid4().hex[:8]
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError) as e:
                raise BatchError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
            try:
                self.client.wait_for_workers(1, timeout=connect_timeout)
            except (OSError, TimeoutError):
                self.client.close()
                raise BatchError(f"the Dask scheduler at {scheduler} has no workers "
                                 f"(start some: dask worker {scheduler})") from None
            self.description = f"on the Dask cluster at {scheduler}"
        else:
            n = int(workers) if workers else default_workers()
            import dask

            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by workers
            try:
                with dask.config.set(_local_worker_config(dask)):
                    self._cluster = LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                        scheduler_port=0, dashboard_address=None,
                        worker_dashboard_address=None,
                        # no dashboard; the scheduler's own HTTP endpoints on loopback only
                        scheduler_kwargs={"dashboard": False,
                                          "dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR)
            finally:
                signal.signal(signal.SIGINT, previous)
            self.client = Client(self._cluster)
            self.description = f"on a local Dask cluster of {n} worker processes"
        self.client.register_plugin(WarmUp(), name=WarmUp.name)
        self.workers = max(len(self.client.scheduler_info()["workers"]), 1)

    def _map(self, fn, jobs, labels):
        from distributed import as_completed

        size = chunk_size(len(jobs), self.workers)
        chunks = [range(i, min(i + size, len(jobs))) for i in range(0, len(jobs), size)]
        futures = [self.client.submit(run_chunk, fn, [jobs[i] for i in chunk],
                                      key=f"spikesynth-{labels[chunk[0]]}+{len(chunk)}-"
                                          f"{self.token}",
                                      retries=RETRIES, pure=False)
                   for chunk in chunks]
        where = {f.key: chunk for f, chunk in zip(futures, chunks, strict=True)}
        done: set = set()
        try:
            for future, results in as_completed(futures, with_results=True):
                done.add(future.key)
                future.release()
                for i, result in zip(where[future.key], results, strict=True):
                    yield i, result
        finally:
            pending = [f for f in futures if f.key not in done]
            if pending:
                self.client.cancel(pending)

    def worker_pids(self) -> dict:
        """Worker address → process id (for tests and the benchmark)."""
        return self.client.run(os.getpid)

    def _close(self):
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


_MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")  # as the user started us


def _local_worker_config(dask) -> dict:
    """Dask settings for our local workers.

    - No statistical profiler (it samples every 10 ms: CPU the renders want).
    - No ``MALLOC_TRIM_THRESHOLD_`` (Dask's nanny sets it to 64 kB to return memory to the
      system; it also turns off glibc's adaptive mmap threshold, so every large array of a
      render is mmapped, page-faulted and unmapped again: a task took 36 ms of CPU instead
      of 27 ms). A value the user set before starting us is kept. The nanny writes the
      variable into this process's environment too, so a second cluster would inherit it:
      it is put back as it was first.
    """
    if _MALLOC_TRIM is None:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    else:
        os.environ["MALLOC_TRIM_THRESHOLD_"] = _MALLOC_TRIM
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    if _MALLOC_TRIM is None:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.worker.profile.enabled": False,
            "distributed.nanny.pre-spawn-environ": environ}


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def dask_available() -> bool:
    return _WorkerPlugin is not object


def open_runner(scheduler=None, workers=None, say=None) -> Runner:
    """The runner for ``--scheduler`` / ``--workers``.

    ``workers=0`` (and no scheduler): in this process. No dask installed: in this process,
    after telling ``say`` how to parallelise (a ``--scheduler`` then is an error).
    """
    if workers is not None and workers < 0:
        raise BatchError("--workers must be 0 (this process) or more")
    if workers == 0 and not scheduler:
        return InProcessRunner()
    if not dask_available():
        if scheduler:
            raise BatchError("--scheduler needs dask: pip install 'spikesynth[batch]'")
        if say is not None:
            say(f"note: {INSTALL_HINT}")
        return InProcessRunner()
    return DaskRunner(scheduler=scheduler, workers=workers)


def _progress(total, desc, quiet):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, disable=quiet or None,
                leave=False, dynamic_ncols=True)


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


def _read_patch(path) -> tuple:
    """(text, validated patch) of a patch file. Raises :class:`PatchError`."""
    patch = load_patch(path)
    return Path(path).read_text(encoding="utf-8"), patch


def source_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_number(x):
    """JSON has no NaN or infinity: those become null."""
    return float(x) if x is not None and math.isfinite(x) else None


def _write_bytes(path, data: bytes):
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)


def _write_text(path, text: str):
    _write_bytes(path, text.encode("utf-8"))


# -- library ----------------------------------------------------------------------------
class LibraryReport(NamedTuple):
    rendered: list  # paths written by this run
    up_to_date: int  # samples found complete and current
    instruments: list  # SFZ files written
    total: int  # samples in the library
    runner: str  # where it ran


def sample_name(note: int, velocity: int, ext: str) -> str:
    """A library sample's file name, e.g. ``060_v100.wav``."""
    return f"{note:03d}_v{velocity:03d}.{ext}"


def _load_manifest(path: Path) -> dict:
    """A manifest's sample entries by file name; {} if it is missing or unreadable."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != MANIFEST_FORMAT:
            return {}
        return {e["file"]: e for e in doc.get("samples", []) if isinstance(e, dict)}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


def _is_current(entry, folder: Path, settings: dict, digest: str) -> bool:
    if not entry or entry.get("settings") != settings or entry.get("source_hash") != digest:
        return False
    path = folder / entry["file"]
    try:
        if path.stat().st_size != entry.get("bytes"):
            return False
        return _file_hash(path.read_bytes()) == entry.get("sha256")
    except OSError:
        return False


def _check_written(path: Path, size: int) -> None:
    """A sample a worker wrote must be in the client's folder too (the folder is shared)."""
    try:
        found = path.stat().st_size
    except OSError:
        found = None
    if found != size:
        raise BatchError(f"a worker wrote {path.name} ({size} bytes) but this machine sees "
                         f"{'no file' if found is None else f'{found} bytes'} at {path}: "
                         "--workers-write needs an output folder shared by every worker at "
                         "the same path")


class _LibraryPatch:
    """The client's book-keeping for one patch of a library."""

    def __init__(self, path, text, patch, out_dir: Path, items, settings: RenderSettings):
        self.path = Path(path)
        self.stem = self.path.stem
        self.text = text
        self.patch = patch
        self.folder = out_dir / self.stem
        self.sfz = out_dir / f"{self.stem}.sfz"
        self.manifest = self.folder / MANIFEST
        self.digest = source_hash(text)
        self.settings = settings
        self.items = items  # [(note, velocity)]
        self.entries: dict = {}
        self.dirty = False

    def file(self, note, velocity) -> str:
        return sample_name(note, velocity, self.settings.format)

    def write_manifest(self):
        samples = [self.entries[self.file(n, v)] for n, v in sorted(self.items)
                   if self.file(n, v) in self.entries]
        doc = {"format": MANIFEST_FORMAT, "patch": self.patch.name,
               "patch_file": str(self.path), "source_hash": self.digest,
               "settings": self.settings.as_dict(), "instrument": f"../{self.sfz.name}",
               "samples": samples}
        _write_text(self.manifest, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        self.dirty = False

    def complete(self) -> bool:
        return all(self.file(n, v) in self.entries for n, v in self.items)

    def write_sfz(self):
        samples = {(n, v): f"{self.stem}/{self.file(n, v)}" for n, v in self.items}
        s = self.settings
        tail = "until silence" if s.tail_s is None else f"for {s.tail_s:g} s"
        comment = (f"{self.patch.name} ({self.path.name}): spikesynth {__version__} library\n"
                   f"each sample: the note held {s.length_s:g} s, then released; the release "
                   f"is rendered {tail} and is in the sample (one_shot plays it out)\n"
                   f"{s.samplerate} Hz {s.subtype}; offset skips the {master_latency(s.samplerate)}"
                   "-sample look-ahead of the master limiter at each sample's start\n"
                   "regions cover keys 0-127 and velocities "
                   "0-127, each at its nearest rendered note and velocity")
        # The samples are exactly what ``render`` writes, the master's look-ahead delay at
        # their start included; ``offset`` has the sampler skip it, so a key sounds at once.
        text = write_sfz(layout(samples), comment,
                         {"loop_mode": "one_shot", "amp_veltrack": 0,
                          "offset": master_latency(s.samplerate)})
        _write_text(self.sfz, text)


def render_library(patches, out_dir, notes, velocities, settings: RenderSettings,
                   runner: Runner, quiet=False, on_result=None,
                   workers_write=False) -> LibraryReport:
    """Render every (patch, note, velocity) not yet current in ``out_dir``; write SFZs.

    Layout: ``out_dir/STEM.sfz`` and ``out_dir/STEM/NNN_vVVV.wav`` plus
    ``out_dir/STEM/manifest.json`` per patch (STEM: the patch file's name). A sample is
    current when its manifest entry has the same settings and patch source hash and the file
    on disk has the recorded size and SHA-256. ``on_result(path)`` is called after each
    sample is written (tests use it to kill a worker mid-batch). Ctrl-C (KeyboardInterrupt)
    cancels the remaining tasks, writes the manifests of what is complete and re-raises.

    ``workers_write``: the workers write the samples into ``out_dir`` themselves (atomically)
    and send back only the features, size and hash: for a folder every worker reaches at the
    same path (a shared filesystem), it saves moving every file through the client. The
    client checks each file is there with the size the worker reported.
    """
    out_dir = Path(out_dir).resolve() if workers_write else Path(out_dir)
    notes = sorted(set(notes))
    velocities = sorted(set(velocities))
    if not notes or not velocities:
        raise BatchError("a library needs at least one note and one velocity")
    encode_audio(np.zeros((1, 2), np.float32), settings.samplerate, settings.subtype,
                 settings.format)  # a bad format fails now, not in every task
    stems: dict = {}
    for path in patches:
        stem = Path(path).stem
        if stem in stems:
            raise BatchError(f"two patches named {stem!r} ({stems[stem]} and {path}): the "
                             "library keeps each patch in a folder of its file's name")
        stems[stem] = path
    if not out_dir.is_dir():
        if out_dir.exists():
            raise BatchError(f"{out_dir} is not a folder")
        out_dir.mkdir(parents=True)
    settings_dict = settings.as_dict()
    books = []
    for path in patches:
        text, patch = _read_patch(path)
        book = _LibraryPatch(path, text, patch, out_dir,
                             [(n, v) for n in notes for v in velocities], settings)
        book.folder.mkdir(exist_ok=True)
        old = _load_manifest(book.manifest)
        for n, v in book.items:
            entry = old.get(book.file(n, v))
            if _is_current(entry, book.folder, settings_dict, book.digest):
                book.entries[entry["file"]] = entry
        books.append(book)
    todo = [(book, n, v) for book in books for n, v in book.items
            if book.file(n, v) not in book.entries]
    up_to_date = sum(len(b.items) for b in books) - len(todo)
    jobs = [SampleJob(b.text, str(b.path), n, v, settings,
                      str(b.folder / b.file(n, v)) if workers_write else "")
            for b, n, v in todo]
    labels = [f"{b.stem}-{n}-{v}" for b, n, v in todo]
    rendered = []
    last_write = time.monotonic()
    bar = _progress(len(jobs), "library", quiet)
    try:
        for index, result in runner.map(render_sample, jobs, labels):
            book, n, v = todo[index]
            name = book.file(n, v)
            target = book.folder / name
            if workers_write:
                _check_written(target, result.size)
            else:
                _write_bytes(target, result.data)
            f = result.features
            book.entries[name] = {
                "file": name, "note": n, "velocity": v,
                "f0_hz": _json_number(f.f0_hz), "peak_dbfs": _json_number(f.peak_dbfs),
                "loudness_lufs": _json_number(f.loudness_lufs),
                "duration_s": f.duration_s, "frames": f.frames,
                "bytes": result.size, "sha256": result.sha256,
                "settings": settings_dict, "source_hash": book.digest}
            book.dirty = True
            rendered.append(target)
            bar.update(1)
            if on_result is not None:
                on_result(target)
            if time.monotonic() - last_write > MANIFEST_INTERVAL_S:
                for b in books:
                    if b.dirty:
                        b.write_manifest()
                last_write = time.monotonic()
    finally:
        bar.close()
        for b in books:  # also on Ctrl-C: what is complete is recorded, a rerun resumes
            if b.dirty or not b.manifest.exists():
                b.write_manifest()
    instruments = []
    for b in books:
        if b.complete():
            b.write_sfz()
            instruments.append(b.sfz)
    return LibraryReport(rendered, up_to_date, instruments, up_to_date + len(jobs),
                         runner.description)


# -- stems ------------------------------------------------------------------------------
class StemsReport(NamedTuple):
    stems: list  # [(part name, patch file, path)]
    mix: Path
    frames: int
    headroom_db: float  # gain applied to every stem and the mix (0: none needed)
    limited: dict  # part name → samples its own safety limiter reduced
    runner: str


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text.strip())
    return keep.strip("._") or "part"


def _assign(parts, tracks: dict, channels: dict, default_patch, path):
    """Each part's patch file: by track name (or 1-based number) or by channel."""
    chosen = []
    if tracks:
        names = {p.name: p for p in parts}
        numbers = {str(p.track + 1): p for p in parts}
        for name in tracks:
            if name not in names and name not in numbers:
                listed = ", ".join(f"{p.track + 1}={p.name!r}" for p in parts) or "none"
                raise BatchError(f"{path}: no track {name!r} with notes (tracks: {listed})")
    for part in parts:
        if part.track is not None:
            patch = tracks.get(part.name, tracks.get(str(part.track + 1), default_patch))
        else:
            patch = channels.get(part.channel, default_patch)
        chosen.append(patch)
    if channels:
        have = {p.channel for p in parts}
        for ch in channels:
            if ch not in have:
                raise BatchError(f"{path}: no notes on channel {ch} (channels with notes: "
                                 f"{', '.join(str(c) for c in sorted(have)) or 'none'})")
    return chosen


def render_stems(song, out_dir, runner: Runner, tracks=None, channels=None, default_patch=None,
                 samplerate=48000, subtype="FLOAT", fmt="wav", tail_s=None, seed=0,
                 quiet=False) -> StemsReport:
    """One file per track (``tracks``: name → patch) or channel (``channels``: n → patch) of
    ``song`` plus ``mix``, all the same length, starting at the song's time 0.

    Each part is rendered by its own synth (its patch's gain, DC blocker and safety limiter:
    the limiter acts only if that part alone exceeds -0.3 dBFS, and the report counts it).
    The mix is the sample-wise sum of the stems. Should that sum exceed the ceiling,
    every stem and the mix get the same constant gain (``headroom_db``), so the stems still
    add up to the mix; nothing is limited or clipped after the parts. With FLOAT files the
    stems' sum equals the mix to float32 rounding; with PCM files, to the quantisation.
    """
    tracks = dict(tracks or {})
    channels = dict(channels or {})
    if tracks and channels:
        raise BatchError("split by --track or by --channel, not both")
    by = "channel" if channels else "track"
    parts = midi_file_parts(song, samplerate, by=by)
    if not parts:
        raise BatchError(f"{song}: no notes to render")
    patch_files = _assign(parts, tracks, channels, default_patch, song)
    encode_audio(np.zeros((1, 2), np.float32), samplerate, subtype, fmt)
    patch_files = [pf or DEFAULT_PATCH for pf in patch_files]
    texts = {pf: _read_patch(pf)[0] for pf in set(patch_files)}
    jobs = [PartJob(texts[pf], str(pf), part.events, samplerate, tail_s, seed)
            for part, pf in zip(parts, patch_files, strict=True)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list = [None] * len(jobs)
    bar = _progress(len(jobs), "stems", quiet)
    try:
        for index, result in runner.map(render_part, jobs,
                                        [f"stem-{i}" for i in range(len(jobs))]):
            results[index] = result
            bar.update(1)
    finally:
        bar.close()
    frames = max(len(r.audio) for r in results)
    stems = np.zeros((len(results), frames, 2), dtype=np.float32)
    for i, r in enumerate(results):
        stems[i, :len(r.audio)] = r.audio
    mix = stems.sum(axis=0, dtype=np.float64)
    peak = float(np.max(np.abs(mix))) if frames else 0.0
    gain = 1.0
    if peak > CEILING:
        gain = CEILING / peak * (1.0 - 1e-6)
        stems *= np.float32(gain)
        mix = stems.sum(axis=0, dtype=np.float64)
    written = []
    used = set()
    for i, (part, pf) in enumerate(zip(parts, patch_files, strict=True)):
        name = f"{i + 1:02d}_{_safe_name(part.name)}"
        while name in used:
            name += "_"
        used.add(name)
        path = out_dir / f"{name}.{fmt}"
        _write_bytes(path, encode_audio(stems[i], samplerate, subtype, fmt))
        written.append((part.name, str(pf), path))
    mix_path = out_dir / f"mix.{fmt}"
    _write_bytes(mix_path, encode_audio(mix.astype(np.float32), samplerate, subtype, fmt))
    headroom_db = 20 * math.log10(gain)
    limited = {part.name: r.limited_samples for part, r in zip(parts, results, strict=True)}
    doc = {"song": str(song), "samplerate": samplerate, "subtype": subtype, "frames": frames,
           "split_by": by, "headroom_db": headroom_db, "mix": mix_path.name,
           "stems": [{"file": p.name, "part": name, "patch": patch,
                      "limited_samples": limited[name]} for name, patch, p in written],
           "note": "the mix is the sample-wise sum of the stems (same length, same start); "
                   "headroom_db is applied to every stem and the mix alike"}
    _write_text(out_dir / "stems.json", json.dumps(doc, indent=1) + "\n")
    return StemsReport(written, mix_path, frames, headroom_db, limited, runner.description)


# -- sweep ------------------------------------------------------------------------------
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
    from .plot import MissingMatplotlib, contact_sheet, write_figure

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
