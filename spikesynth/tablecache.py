"""Prepared per-note tables kept between runs and within one: a warm start measures nothing.

:func:`spikesynth.prepare.note_tables` renders lone notes to calibrate a model and to weigh
each key's loudness (0.1–0.8 s of CPU for the Izhikevich and network patches, at every
prepare). :func:`cached` runs such a computation once per distinct input and keeps its
result twice:

* in memory, for this process (a batch worker preparing the same patch for each item, a
  live session switching back to a program, pays once);
* on disk, one ``<digest>.npz`` per input under :func:`spikesynth._cache.table_cache_dir`
  (beside the numba cache, in a folder per source version), for every later process.

The digest covers exactly what the computation reads: the model (its record's class) and
every array of the record (dtype, shape, bytes), the parameter vector, the samplerate and
the tuning frequencies, plus the numpy and numba versions, whether the kernels are compiled
(``NUMBA_DISABLE_JIT``), the machine's architecture and this format's version; the folder's
name covers the package's source. A hit is bit-identical to a fresh computation:
the computation is deterministic, and what it wrote into the record's arrays (a network's
measured means and period, the state its reference run left in slot 0) is stored with the
tables (the changed elements only) and written back, so the record also ends as a fresh
computation leaves it.

Files are written atomically (:func:`spikesynth.fileio.atomic_output`): a reader sees a
whole file or none. A file that cannot be read or does not match (truncated, corrupt, of
another key or shape) is ignored and written again; a folder that cannot be written is
ignored too. The cache never raises. A file neither written nor read for ``UNUSED_DAYS`` is
removed when another is written (sweeps leave one per grid point). Records of models defined
outside the package are kept in memory only (their source is not in the folder's hash).
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numba
import numpy as np

from . import _cache
from .fileio import atomic_output

FORMAT = 1  # bump when the file layout or the digest's contents change
MEMO_ENTRIES = 64  # tables kept in memory (least recently used dropped first)
UNUSED_DAYS = 30.0  # a file neither written nor read for this long is removed at a write
_PACKAGE = __name__.rpartition(".")[0]


class Entry(NamedTuple):
    """What a computation produced: its tables and what it left in the record."""

    tables: np.ndarray
    """float64 (rows, 128): the per-note tables."""
    written: tuple
    """((leaf path, flat indices, values), ...): the record's elements the computation
    changed (int64 indices into the leaf's flat order), as it left them."""


@dataclass
class Stats:
    """Counters of this process's lookups (read by tests and benchmarks)."""

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    writes: int = 0
    rejected: int = 0  # disk files ignored (unreadable, corrupt, mismatched)


STATS = Stats()
_MEMO: OrderedDict = OrderedDict()
_LOCK = threading.Lock()  # batch workers may prepare from several threads


def record_leaves(record, prefix: str = "") -> list:
    """``[(path, value), ...]``: the leaves of a (nested) NamedTuple record, in field order
    (``"net.meta"``). Thread: any."""
    if hasattr(record, "_fields"):
        out = []
        for name in record._fields:
            out += record_leaves(getattr(record, name), f"{prefix}{name}.")
        return out
    return [(prefix[:-1], record)]


def table_key(record, params, samplerate, freqs) -> str | None:
    """The hex digest of a computation's inputs, or None if the record holds a leaf that
    is neither an array nor a number (not digestible: never cached). Thread: any."""
    digest = hashlib.sha256()
    kind = type(record)
    for text in (f"format {FORMAT}", f"{kind.__module__}.{kind.__qualname__}",
                 f"numpy {np.__version__}", f"numba {numba.__version__}",
                 f"jit {not numba.config.DISABLE_JIT}", platform.machine()):
        digest.update(text.encode() + b"\0")
    for path, value in record_leaves(record):
        if isinstance(value, np.ndarray):
            digest.update(f"{path} {value.dtype.str} {value.shape}\0".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, (bool, int, float, np.number)):
            digest.update(f"{path} {type(value).__name__} {value!r}\0".encode())
        else:
            return None
    for name, array in (("params", params), ("freqs", freqs)):
        array = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(f"{name} {array.shape}\0".encode() + array.tobytes())
    digest.update(b"sr\0" + np.float64(samplerate).tobytes())
    return digest.hexdigest()


def _on_disk(record) -> bool:
    """Whether a record's results may be kept on disk (its model is the package's own)."""
    module = type(record).__module__
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def _fits(record, entry: Entry, shape) -> bool:
    """Whether ``entry`` can be applied to ``record``: tables of ``shape`` and every written
    array matching a record leaf's dtype and shape."""
    if entry.tables.dtype != np.float64 or entry.tables.shape != tuple(shape):
        return False
    leaves = dict(record_leaves(record))
    for path, index, values in entry.written:
        leaf = leaves.get(path)
        if not isinstance(leaf, np.ndarray) or values.dtype != leaf.dtype \
                or index.dtype != np.int64 or index.ndim != 1 or values.shape != index.shape:
            return False
        if index.size and not (0 <= index.min() and index.max() < leaf.size):
            return False
    return True


def _apply(record, entry: Entry) -> np.ndarray:
    """Write ``entry``'s record arrays into ``record``; a fresh copy of its tables."""
    leaves = dict(record_leaves(record))
    for path, index, values in entry.written:
        leaves[path].flat[index] = values
    return entry.tables.copy()


def _changes(before: np.ndarray, after: np.ndarray) -> tuple | None:
    """``(flat indices, values)`` of the elements of ``after`` whose bits differ from
    ``before`` (nan compared by its bits), or None if none do."""
    width = max(before.dtype.itemsize, 1)
    old = np.ascontiguousarray(before).view(np.uint8).reshape(before.size, width)
    new = np.ascontiguousarray(after).view(np.uint8).reshape(after.size, width)
    index = np.flatnonzero((old != new).any(axis=1)).astype(np.int64)
    if index.size == 0:
        return None
    return index, np.ascontiguousarray(after).reshape(-1)[index].copy()


def _read(path: Path, key: str, record, shape) -> Entry | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            names = [str(name) for name in data["written"]]
            entry = Entry(np.array(data["tables"]),
                          tuple((name, np.array(data[f"i{k}"]), np.array(data[f"v{k}"]))
                                for k, name in enumerate(names)))
    except Exception:  # truncated, corrupt, not ours: measure again
        return None
    return entry if _fits(record, entry, shape) else None


def _write(path: Path, key: str, entry: Entry) -> bool:
    arrays = {"key": np.array(key), "tables": entry.tables,
              "written": np.array([name for name, _, _ in entry.written], dtype=str)}
    for k, (_, index, values) in enumerate(entry.written):
        arrays[f"i{k}"] = index
        arrays[f"v{k}"] = values
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    except (OSError, ValueError):
        return False
    _prune(path.parent, path)
    return True


def _prune(folder: Path, keep: Path, days: float = UNUSED_DAYS) -> None:
    """Remove the folder's table files not written or read for ``days`` (a sweep's grid
    points, patches edited since)."""
    limit = time.time() - days * 86400.0
    try:
        for old in folder.glob("*.npz"):
            if old != keep and old.stat().st_mtime < limit:
                old.unlink()
    except OSError:
        pass


def _used(path: Path) -> None:
    """Mark a file just read as in use (its modification time: access times are often not
    kept), at most once a day."""
    try:
        if path.stat().st_mtime < time.time() - 86400.0:
            os.utime(path)
    except OSError:
        pass


def _remember(key: str, entry: Entry) -> None:
    with _LOCK:
        _MEMO[key] = entry
        _MEMO.move_to_end(key)
        while len(_MEMO) > MEMO_ENTRIES:
            _MEMO.popitem(last=False)


def clear_memory() -> None:
    """Forget the in-memory tables (the disk stays). Thread: main."""
    with _LOCK:
        _MEMO.clear()


def cached(compute: Callable, record, params, samplerate, freqs, shape) -> np.ndarray:
    """``compute(record, params, samplerate, freqs)`` (tables of ``shape``, and whatever it
    writes into ``record``), from memory or disk when these inputs were seen before.

    Thread: any but the audio thread (allocates, reads and writes files). The result is a
    fresh array the caller owns.
    """
    folder = _cache.table_cache_dir()
    key = table_key(record, params, samplerate, freqs) if folder is not None else None
    if key is None:
        return compute(record, params, samplerate, freqs)
    with _LOCK:
        entry = _MEMO.get(key)
    if entry is not None and _fits(record, entry, shape):
        STATS.memory_hits += 1
        return _apply(record, entry)
    path = folder / f"{key[:32]}.npz"
    disk = _on_disk(record)
    entry = _read(path, key, record, shape) if disk and path.exists() else None
    if entry is not None:
        STATS.disk_hits += 1
        _used(path)
        _remember(key, entry)
        return _apply(record, entry)
    if disk and path.exists():
        STATS.rejected += 1
    STATS.misses += 1
    before = [(name, np.array(leaf, copy=True)) for name, leaf in record_leaves(record)
              if isinstance(leaf, np.ndarray)]
    tables = compute(record, params, samplerate, freqs)
    leaves = dict(record_leaves(record))
    changed = [(name, _changes(old, leaves[name])) for name, old in before]
    written = tuple((name, *change) for name, change in changed if change is not None)
    entry = Entry(np.array(tables, copy=True), written)
    _remember(key, entry)
    if disk and _write(path, key, entry):
        STATS.writes += 1
    return tables
