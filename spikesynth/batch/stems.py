"""``spikesynth stems``: a song's tracks (or channels) each through its own patch, plus the mix.

The parts render in parallel through a :class:`~.runners.Runner`; the client lines them up
from the song's time 0, sums the mix and writes every file atomically. Thread: main.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..engine import CEILING
from ..offline import encode_audio, midi_file_parts
from ..patch import DEFAULT_PATCH
from .files import _read_patch, _write_bytes, _write_text
from .jobs import PartJob, render_part
from .options import BatchError
from .runners import Runner, _progress


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
