"""What a worker runs: the tasks' plain-data records and the tasks themselves.

Each task is a pure function of plain data (the patch file's text, the note, the velocity,
the settings): it renders into memory with a fresh :class:`~spikesynth.engine.Synth` and
hands back the file's bytes (or the audio) and the features measured from it
(:mod:`spikesynth.analysis`). Same job, same bytes: that is what makes a Dask run
byte-identical to one process's. Dask pickles these functions and records by reference, so
they stay importable here (``spikesynth.batch.jobs``) on every worker. Nothing here imports
dask.

Thread: a worker's (or the client's, in one process); pure functions.
"""

from __future__ import annotations

import copy
import functools
import time
from typing import NamedTuple

import numpy as np

from .. import __version__, analysis
from ..engine import Synth
from ..offline import BLOCK, Note, encode_audio, note_events, render_events
from ..patch import load_patch, patch_from_text
from .files import _file_hash, _write_bytes

F0_SKIP_S = 0.1  # f0 is measured on the held note, after this much of its start ...
F0_SKIP_FRACTION = 0.25  # ... or this fraction of it, whichever is shorter
INHARMONIC_TOLERANCE = 0.01  # energy within ±1 % of a harmonic (at least the window's lobe)
_WARM_UP_SR = 22050


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
