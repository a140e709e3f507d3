"""``spikesynth library``: a multisample instrument per patch (samples, SFZ, manifest).

Renders every (patch, note, velocity) through a :class:`~.runners.Runner`; the client
writes each sample atomically as it arrives, and per patch a ``manifest.json`` (what each
sample was rendered from and measures) and an SFZ instrument. A rerun renders only what is
missing or out of date. Thread: main.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import __version__
from ..master import master_latency
from ..offline import encode_audio
from ..sfz import layout, write_sfz
from .files import _file_hash, _json_number, _read_patch, _write_bytes, _write_text, source_hash
from .jobs import RenderSettings, SampleJob, render_sample
from .options import BatchError
from .runners import Runner, _progress

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "spikesynth-library/1"
MANIFEST_INTERVAL_S = 2.0  # a running library rewrites its manifests at most this often


class LibraryReport(NamedTuple):
    rendered: list  # paths written by this run
    up_to_date: int  # samples found complete and current
    instruments: list  # SFZ files written
    total: int  # samples in the library
    runner: str  # where it ran
    skipped: tuple = ()  # patch files left out: they listen to an audio input
    removed: tuple = ()  # samples of an earlier run no longer in the library, deleted


def sample_name(note: int, velocity: int, ext: str) -> str:
    """A library sample's file name, e.g. ``060_v100.wav``."""
    return f"{note:03d}_v{velocity:03d}.{ext}"


_SAMPLE_NAME = re.compile(r"[0-9]{3}_v[0-9]{3}\.[a-z0-9]+")  # what sample_name makes


def _load_manifest(path: Path) -> tuple[dict, dict]:
    """A manifest's sample entries by file name, and its stale ones (samples of an earlier
    run no longer in the library, not yet deleted); empty if it is missing or unreadable."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != MANIFEST_FORMAT:
            return {}, {}
        return tuple({e["file"]: e for e in doc.get(key, []) if isinstance(e, dict)}
                     for key in ("samples", "stale"))
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}, {}


def _remove_stale(folder: Path, stale: dict) -> list:
    """Delete the stale samples that are still exactly what the library wrote (same size and
    SHA-256: a file edited or replaced since is left alone); returns the paths deleted."""
    removed = []
    for name, entry in sorted(stale.items()):
        path = folder / name
        if not _SAMPLE_NAME.fullmatch(name):
            continue  # not a name the library makes: never a path to follow
        try:
            if path.stat().st_size == entry.get("bytes") and (
                    _file_hash(path.read_bytes()) == entry.get("sha256")):
                path.unlink()
                removed.append(path)
        except OSError:
            pass
    return removed


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
        self.stale: dict = {}  # earlier samples no longer in the library (until deleted)
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
        if self.stale:  # kept until the library is complete (then deleted): a rerun after
            # an interruption still knows them
            doc["stale"] = [{"file": e["file"], "bytes": e.get("bytes"),
                             "sha256": e.get("sha256")} for _, e in sorted(self.stale.items())]
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
    # A patch that listens (listen:) sings what it hears: rendered without an input, its
    # samples would be silence (or its ear's idle hum) at full length. Left out, and said.
    read = []
    skipped = []
    for path in patches:
        text, patch = _read_patch(path)
        if patch.values.get("listen.routing", "off") != "off":
            skipped.append(str(path))
        else:
            read.append((path, text, patch))
    if not read:
        raise BatchError(f"{', '.join(skipped)}: every patch listens to an audio input, so "
                         "its samples would be silence; play one over a file with "
                         "`spikesynth process PATCH IN -o OUT`")
    stems: dict = {}
    for path, _, _ in read:
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
    for path, text, patch in read:
        book = _LibraryPatch(path, text, patch, out_dir,
                             [(n, v) for n in notes for v in velocities], settings)
        book.folder.mkdir(exist_ok=True)
        old, stale = _load_manifest(book.manifest)
        for n, v in book.items:
            entry = old.get(book.file(n, v))
            if _is_current(entry, book.folder, settings_dict, book.digest):
                book.entries[entry["file"]] = entry
        # Samples of an earlier run that this library no longer has (another format, notes
        # or velocities dropped): deleted once the new library is complete, not before.
        wanted = {book.file(n, v) for n, v in book.items}
        book.stale = {name: e for name, e in {**stale, **old}.items()
                      if name not in wanted and isinstance(e.get("file"), str)}
        if book.stale:
            book.dirty = True
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
    removed = []
    for b in books:
        if b.complete():
            b.write_sfz()
            instruments.append(b.sfz)
            if b.stale:  # the new instrument no longer points at them
                removed += _remove_stale(b.folder, b.stale)
                b.stale = {}
                b.write_manifest()
    return LibraryReport(rendered, up_to_date, instruments, up_to_date + len(jobs),
                         runner.description, tuple(skipped), tuple(removed))
