"""The offline host: notes or a MIDI file → timed events → ``Synth.process`` in blocks → a file.

Output files are written atomically: audio streams into a temporary file beside the target,
which replaces the target only when the render is complete. An interrupted render leaves
any earlier file intact and no partial file behind.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import Synth
from .fileio import atomic_output

BLOCK = 512
SILENCE = 10 ** (-90 / 20)  # the auto tail ends after this much quiet ...
SILENCE_HOLD_S = 0.05  # ... held this long
MAX_AUTO_TAIL_S = 60.0
SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")

_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE_RE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d+)$")


class RenderError(ValueError):
    """A user error in what was asked to render (bad note spec, unreadable MIDI file)."""


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number
    velocity: int = 100
    start: float = 0.0  # seconds
    duration: float = 1.0  # seconds


def parse_pitch(text: str) -> int:
    """MIDI number ("60") or scientific name ("C4" = 60, "F#3", "Bb2")."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        pitch = int(text)
    else:
        m = _NOTE_RE.match(text)
        if not m:
            raise RenderError(f"bad pitch {text!r}: expected a MIDI number or a name like C4, F#3")
        pitch = (int(m.group(3)) + 1) * 12 + _NAMES[m.group(1).upper()]
        pitch += {"#": 1, "b": -1, "": 0}[m.group(2)]
    if not 0 <= pitch <= 127:
        raise RenderError(f"pitch {text!r} is outside MIDI notes 0..127")
    return pitch


def parse_note(spec: str) -> Note:
    """``PITCH[:VELOCITY[:START[:DURATION]]]``, e.g. ``C4``, ``60:90``, ``A3:100:0.5:2``."""
    parts = spec.split(":")
    if len(parts) > 4 or not parts[0]:
        raise RenderError(f"bad --note {spec!r}: expected PITCH[:VELOCITY[:START[:DURATION]]]")
    pitch = parse_pitch(parts[0])
    try:
        velocity = int(parts[1]) if len(parts) > 1 and parts[1] else 100
        start = float(parts[2]) if len(parts) > 2 and parts[2] else 0.0
        duration = float(parts[3]) if len(parts) > 3 and parts[3] else 1.0
    except ValueError:
        raise RenderError(
            f"bad --note {spec!r}: velocity, start and duration must be numbers") from None
    if not 1 <= velocity <= 127:
        raise RenderError(f"bad --note {spec!r}: velocity must be 1..127")
    if not (np.isfinite(start) and start >= 0 and np.isfinite(duration) and duration > 0):
        raise RenderError(f"bad --note {spec!r}: start must be >= 0 s and duration > 0 s")
    return Note(pitch, velocity, start, duration)


def note_events(notes, samplerate) -> list[tuple[int, bytes]]:
    """Absolute-sample events for a list of :class:`Note` (channel 1)."""
    events = []
    for n in notes:
        on = int(round(n.start * samplerate))
        off = max(int(round((n.start + n.duration) * samplerate)), on + 1)
        events.append((on, bytes([0x90, n.pitch, n.velocity])))
        events.append((off, bytes([0x80, n.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # offs before ons at one time
    return events


def midi_file_events(path, samplerate) -> list[tuple[int, bytes]]:
    """Every channel message of a MIDI file at its absolute sample (tempo changes honoured)."""
    import mido

    try:
        midi = mido.MidiFile(str(path))
    except FileNotFoundError:
        raise RenderError(f"{path}: no such MIDI file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise RenderError(f"{path}: not a readable MIDI file ({e})") from None
    events = []
    t = 0.0
    try:
        for msg in midi:  # merged tracks, delta times in seconds through every tempo change
            t += msg.time
            if msg.type == "sysex":  # MIDI Tuning Standard changes (the engine checks)
                events.append((int(round(t * samplerate)), bytes(msg.bytes())))
                continue
            if msg.is_meta or msg.type in ("clock", "start", "stop", "continue",
                                           "songpos", "song_select", "tune_request", "reset",
                                           "active_sensing", "quarter_frame"):
                continue
            events.append((int(round(t * samplerate)), bytes(msg.bytes())))
    except (EOFError, ValueError, KeyError, IndexError) as e:
        raise RenderError(f"{path}: corrupt MIDI file ({e})") from None
    events.sort(key=lambda e: e[0])
    return events


def _last_note_end(events) -> int:
    return max((t for t, _ in events), default=0)


def render_events(synth: Synth, events, tail=None, sink=None, progress=False) -> int:
    """Render ``events`` (absolute samples) through ``synth`` in blocks; return frames rendered.

    Runs until the last event, then for ``tail`` seconds, or (``tail=None``) until every voice
    has finished and the output has been silent for ``SILENCE_HOLD_S``. ``sink(block)``
    receives each float32 (frames, 2) block.
    """
    sr = synth.samplerate
    end = _last_note_end(events)
    hard_end = end + int((tail if tail is not None else MAX_AUTO_TAIL_S) * sr)
    hold = int(SILENCE_HOLD_S * sr)
    bar = None
    if progress and end > 5 * sr:
        from tqdm import tqdm

        bar = tqdm(total=round(end / sr, 1), unit="s", desc="rendering", file=sys.stderr,
                   leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} s")
    pos = 0
    quiet = 0
    e = 0
    n_events = len(events)
    try:
        while pos < hard_end:
            frames = min(BLOCK, hard_end - pos)
            block_events = []
            while e < n_events and events[e][0] < pos + frames:
                block_events.append((events[e][0] - pos, events[e][1]))
                e += 1
            block = synth.process(frames, block_events)
            if sink is not None:
                sink(block)
            pos += frames
            if bar is not None:
                bar.update(min(pos, end) / sr - bar.n)
            if tail is None and pos > end:
                loud = float(np.max(np.abs(block))) if frames else 0.0
                idle = synth.stats()["voices_active"] == 0
                quiet = quiet + frames if (idle and loud < SILENCE) else 0
                if quiet >= hold:
                    break
    finally:
        if bar is not None:
            bar.close()
    return pos


def write_atomic(path, samplerate, subtype, produce):
    """Write an audio file atomically: ``produce(sink)`` calls ``sink(block)`` per block.

    The format comes from the extension (.wav, .flac, ...). On any error or interruption the
    temporary file is removed and ``path`` is untouched.
    """
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise RenderError(f"{path} is a directory")
    ext = path.suffix.lower().lstrip(".")
    fmt = {"wav": "WAV", "flac": "FLAC", "aiff": "AIFF", "aif": "AIFF"}.get(ext)
    if fmt is None:
        raise RenderError(f"{path}: unknown audio extension (use .wav, .flac or .aiff)")
    if subtype == "FLOAT" and fmt == "FLAC":
        raise RenderError("FLAC cannot store FLOAT samples: use PCM_16 or PCM_24")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise RenderError(f"{folder}: no such folder")
    with atomic_output(path) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=int(samplerate), channels=2, format=fmt,
                          subtype=subtype) as f:
            result = produce(f.write)
            f.flush()
    return result


def load_programs(patch, folder=None, warn=None) -> list:
    """The programs that program change *n* selects: the patch files of ``folder`` (default:
    the patch's own folder) in name order, as ``play`` uses them; ``None`` for a file that
    does not load (``warn(message)`` is told). The patch itself stands for its own file."""
    from .patch import PatchError, list_patches, load_patch

    if folder is None:
        if patch.path is None:
            return [patch]
        folder = Path(patch.path).resolve().parent
    folder = Path(folder)
    if not folder.is_dir():
        raise RenderError(f"{folder}: no such folder of programs")
    me = Path(patch.path).resolve() if patch.path is not None else None
    programs = []
    for n, file in enumerate(list_patches(folder)):
        if file.resolve() == me:
            programs.append(patch)
            continue
        try:
            programs.append(load_patch(file))
        except PatchError as e:
            programs.append(None)
            if warn is not None:
                warn(f"warning: program {n} unusable: {e}")
    return programs


def has_program_changes(events) -> bool:
    """Whether any event is a program change (only then are the programs prepared)."""
    return any(len(m) == 2 and 0xC0 <= m[0] <= 0xCF for _, m in events)


def render_to_file(patch, path, events, samplerate=48000, subtype="PCM_24", tail=None, seed=0,
                   progress=False, programs=None) -> float:
    """Render ``events`` with ``patch`` into ``path`` atomically; return the duration in seconds.

    ``programs``: what program change *n* selects (see :func:`load_programs`).
    """
    if subtype not in SUBTYPES:
        raise RenderError(f"unknown subtype {subtype!r}: expected one of {', '.join(SUBTYPES)}")
    synth = Synth(patch, samplerate=samplerate, max_block=BLOCK, seed=seed, programs=programs)
    frames = write_atomic(path, samplerate, subtype,
                          lambda sink: render_events(synth, events, tail, sink, progress))
    return frames / samplerate


def read_audio(path) -> tuple[np.ndarray, int]:
    """Read any audio file soundfile can: ``(samples (frames, channels) float64, samplerate)``.

    Thread: main. Raises :class:`RenderError` with a one-line message for a missing,
    unreadable or empty file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise RenderError(f"{path}: no such audio file")
    if path.is_dir():
        raise RenderError(f"{path} is a directory, expected an audio file")
    try:
        data, samplerate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise RenderError(f"{path}: not a readable audio file ({e})") from None
    except OSError as e:
        raise RenderError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.shape[0] == 0:
        raise RenderError(f"{path}: the audio file holds no samples")
    return data, int(samplerate)
