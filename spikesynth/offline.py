"""The offline host: notes or a MIDI file → timed events → ``Synth.process`` in blocks → a file.

Output files are written atomically: audio streams into a temporary file beside the target,
which replaces the target only when the render is complete. An interrupted render leaves
any earlier file intact and no partial file behind.
"""

from __future__ import annotations

import errno
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .engine import Synth
from .fileio import atomic_output
from .startup import RENDER_AFTER_S, DeferredSignals, SlowStartNotice

BLOCK = 512
SILENCE = 10 ** (-90 / 20)  # the auto tail ends after this much quiet ...
SILENCE_HOLD_S = 0.05  # ... held this long
MAX_AUTO_TAIL_S = 60.0
MAX_SECONDS = 600.0  # the longest render unless --max-seconds says otherwise
SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
_SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}
_COMPILING = ("compiling the synth's kernels: the first render after an install or an update "
              "(and of each voice model) takes 15 s to a minute")


def _say(message: str) -> None:
    print(f"spikesynth: note: {message}", file=sys.stderr, flush=True)

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


class MidiSong(NamedTuple):
    """A MIDI file's channel messages at their absolute samples, and where the file ends."""

    events: list  # [(sample, bytes)]
    end: int  # sample of the last End of Track (or of the last event)


def midi_file_song(path, samplerate, max_seconds: float | None = None,
                   warn=None) -> MidiSong:
    """Every channel message of a MIDI file at its absolute sample (tempo changes honoured),
    and the file's end.

    Read by :func:`spikesynth.smf.read_midi_file` (any broken file is a :class:`RenderError`
    naming it). ``warn(text)`` hears about skipped broken meta events, cut-short tracks and
    a file without a note.
    """
    from .smf import MidiFileError, read_midi_file

    try:
        data = read_midi_file(path, max_seconds=max_seconds)
    except MidiFileError as e:
        raise RenderError(str(e)) from None
    if warn is not None and data.broken_meta:
        warn(f"{path}: skipped {data.broken_meta} broken meta event(s)")
    if warn is not None and data.truncated_tracks:
        warn(f"{path}: {data.truncated_tracks} track(s) cut short by the end of the file: "
             f"played up to the cut")
    if warn is not None and not any(len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0
                                    for _, m in data.events):
        warn(f"{path}: the file has no notes")
    return MidiSong([(int(round(t * samplerate)), message) for t, message in data.events],
                    int(round(data.seconds * samplerate)))


def midi_file_events(path, samplerate, max_seconds: float | None = None,
                     warn=None) -> list[tuple[int, bytes]]:
    """The events of :func:`midi_file_song`."""
    return midi_file_song(path, samplerate, max_seconds, warn).events


def osc_file_events(path, patch, samplerate, warn=None) -> list[tuple[int, object]]:
    """Every message of an OSC file (size-prefixed packets, bundles timed in seconds from
    the start) at its absolute sample, for ``patch`` (see :func:`spikesynth.osc.read_osc_file`).

    A file that cannot be read is a :class:`RenderError`; ``warn(text)`` hears one line
    about malformed packets or messages, which are ignored.
    """
    from .osc import OscFileError, OscUnavailable, read_osc_file

    try:
        score = read_osc_file(path, patch, samplerate)
    except (OscFileError, OscUnavailable) as e:
        raise RenderError(str(e)) from None
    if score.malformed and not score.messages:
        raise RenderError(f"{path}: no readable OSC packet ({score.malformed} malformed): "
                          "expected size-prefixed OSC packets (see render --osc-file)")
    if warn is not None and score.malformed:
        warn(f"{path}: ignored {score.malformed} malformed OSC packet(s) or message(s); "
             f"{score.messages} played")
    return score.events


def controller_events(cc=(), bend=(), pressure=(), bend_range=2.0, samplerate=48000):
    """Absolute-sample controller events (channel 1) from ``render``'s option strings.

    ``cc``: ``NUMBER:VALUE[:TIME]`` (0–127, 0–127, seconds); ``bend``: ``SEMITONES[:TIME]``
    within the patch's ``pitch_bend_range``; ``pressure``: ``VALUE[:TIME]`` (channel
    aftertouch 0–127). Raises :class:`RenderError`.
    """
    events = []

    def when(text, spec, option):
        try:
            t = float(text) if text else 0.0
        except ValueError:
            raise RenderError(f"bad {option} {spec!r}: the time must be seconds") from None
        if not (np.isfinite(t) and t >= 0):
            raise RenderError(f"bad {option} {spec!r}: the time must be >= 0 s")
        return int(round(t * samplerate))

    def whole(text, lo, hi, spec, option, what):
        try:
            value = int(text)
        except ValueError:
            raise RenderError(f"bad {option} {spec!r}: {what} must be a whole number "
                              f"{lo}-{hi}") from None
        if not lo <= value <= hi:
            raise RenderError(f"bad {option} {spec!r}: {what} must be {lo}-{hi}")
        return value

    for spec in cc:
        parts = spec.split(":")
        if not 2 <= len(parts) <= 3:
            raise RenderError(f"bad --cc {spec!r}: expected NUMBER:VALUE[:TIME]")
        number = whole(parts[0], 0, 127, spec, "--cc", "the controller number")
        value = whole(parts[1], 0, 127, spec, "--cc", "the value")
        events.append((when(parts[2] if len(parts) > 2 else "", spec, "--cc"),
                       bytes([0xB0, number, value])))
    for spec in bend:
        parts = spec.split(":")
        if not 1 <= len(parts) <= 2:
            raise RenderError(f"bad --bend {spec!r}: expected SEMITONES[:TIME]")
        try:
            semitones = float(parts[0])
        except ValueError:
            raise RenderError(f"bad --bend {spec!r}: semitones must be a number") from None
        if not np.isfinite(semitones) or abs(semitones) > bend_range + 1e-9:
            raise RenderError(f"bad --bend {spec!r}: the patch bends at most "
                              f"{bend_range:g} semitones (its pitch_bend_range)")
        if bend_range > 0:
            value = 8192 + int(round(semitones / bend_range * (8191 if semitones > 0
                                                               else 8192)))
        else:
            value = 8192
        value = min(max(value, 0), 16383)
        events.append((when(parts[1] if len(parts) > 1 else "", spec, "--bend"),
                       bytes([0xE0, value & 0x7F, value >> 7])))
    for spec in pressure:
        parts = spec.split(":")
        if not 1 <= len(parts) <= 2:
            raise RenderError(f"bad --pressure {spec!r}: expected VALUE[:TIME]")
        value = whole(parts[0], 0, 127, spec, "--pressure", "the value")
        events.append((when(parts[1] if len(parts) > 1 else "", spec, "--pressure"),
                       bytes([0xD0, value])))
    return events


class MidiPart(NamedTuple):
    """The channel messages of one track (or one channel) of a MIDI file, for stems."""

    name: str  # the track's name (or "track N"), or "channel N"
    track: int | None  # 0-based track index (split by track)
    channel: int | None  # MIDI channel 1..16 (split by channel)
    events: list  # [(absolute sample, MIDI bytes)], sorted by sample



def midi_file_parts(path, samplerate, by="track") -> list[MidiPart]:
    """A MIDI file's channel messages split by track (``by="track"``) or by channel.

    Read by :func:`spikesynth.smf.read_midi_file`, exactly as :func:`midi_file_events`
    reads the whole song, so the parts together hold the same events at the same samples.
    Parts with no note-on are left out; parts are in track (channel) order.
    """
    from .smf import MidiFileError, read_midi_file

    if by not in ("track", "channel"):
        raise ValueError("by must be 'track' or 'channel'")
    try:
        data = read_midi_file(path)
    except MidiFileError as e:
        raise RenderError(str(e)) from None
    names = _track_names(path)
    parts: dict[int, list] = {}
    has_notes: set[int] = set()
    for (t, message), track in zip(data.events, data.event_tracks, strict=True):
        key = track if by == "track" else (message[0] & 0x0F) + 1
        parts.setdefault(key, []).append((int(round(t * samplerate)), message))
        if message[0] & 0xF0 == 0x90 and len(message) > 2 and message[2] > 0:
            has_notes.add(key)
    out = []
    for key in sorted(parts):
        if key not in has_notes:
            continue
        events = sorted(parts[key], key=lambda e: e[0])
        if by == "track":
            out.append(MidiPart(names.get(key, f"track {key + 1}"), key, None, events))
        else:
            out.append(MidiPart(f"channel {key}", None, key, events))
    return out


def _track_names(path) -> dict:
    """Track index -> its first non-empty track name (labels only; mido reads them)."""
    import mido

    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError):
        return {}
    names = {}
    for index, track in enumerate(midi.tracks):
        for msg in track:
            if msg.type == "track_name" and msg.name.strip():
                names[index] = msg.name.strip()
                break
    return names

def release_hanging_notes(events, at: int = 0) -> tuple[list, int]:
    """Events with a note-off added at the end for every note that never ends.

    A note-on (velocity > 0) without a later note-off (or velocity-0 note-on, or all notes
    off / all sound off on its channel) would hold a voice for ever; each is released at
    the last event's time or at sample ``at`` (a MIDI file's End of Track), whichever is
    later, as is a sustain pedal left down. Returns the events (sorted by time, stable) and
    how many notes were released.
    """
    events = sorted(events, key=lambda e: e[0])
    held: dict[tuple[int, int], int] = {}
    pedal: set[int] = set()
    for _, message in events:
        if len(message) < 3:
            continue
        kind, channel = message[0] & 0xF0, message[0] & 0x0F
        if kind == 0x90 and message[2] > 0:
            held[(channel, message[1])] = held.get((channel, message[1]), 0) + 1
        elif kind == 0x80 or kind == 0x90:
            held.pop((channel, message[1]), None)
        elif kind == 0xB0 and message[1] in (120, 123):
            for key in [k for k in held if k[0] == channel]:
                del held[key]
        elif kind == 0xB0 and message[1] == 64:
            (pedal.add if message[2] >= 64 else pedal.discard)(channel)
    end = max(_last_note_end(events), int(at))
    extra = [(end, bytes([0x80 | channel, note, 0])) for channel, note in sorted(held)]
    extra += [(end, bytes([0xB0 | channel, 64, 0])) for channel in sorted(pedal)]
    return events + extra, len(held)


def _last_note_end(events) -> int:
    return max((t for t, _ in events), default=0)


def check_length(events, samplerate, tail=None, max_seconds=MAX_SECONDS) -> None:
    """Refuse a render longer than ``max_seconds``. Raises :class:`RenderError`."""
    seconds = _last_note_end(events) / samplerate + (tail or 0.0)
    if seconds > max_seconds:
        raise RenderError(f"the render would last {seconds:.4g} s, longer than the "
                          f"{max_seconds:g} s limit (--max-seconds raises it)")


def render_events(synth: Synth, events, tail=None, sink=None, progress=False,
                  max_seconds=MAX_SECONDS) -> int:
    """Render ``events`` (absolute samples) through ``synth`` in blocks; return frames rendered.

    Runs until the last event, then for ``tail`` seconds plus the synth's latency (the
    look-ahead is flushed), or (``tail=None``) until every voice
    has finished and the output has been silent for ``SILENCE_HOLD_S``; never beyond
    ``max_seconds`` in all. ``sink(block)`` receives each float32 (frames, 2) block.
    """
    sr = synth.samplerate
    end = _last_note_end(events)
    # + the master's look-ahead: the limiter's delay line is flushed, the whole tail heard.
    hard_end = end + int((tail if tail is not None else MAX_AUTO_TAIL_S) * sr) + synth.latency
    hard_end = min(hard_end, max(int(max_seconds * sr), 0))
    hold = int(SILENCE_HOLD_S * sr)
    bar = None
    # The bar appears after the first block: notes about the start (it compiles: see
    # render_to_file) come before it, each on a line of its own.
    want_bar = progress and end > 5 * sr
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
            if want_bar and bar is None:
                from tqdm import tqdm

                bar = tqdm(total=round(end / sr, 1), unit="s", desc="rendering",
                           file=sys.stderr, leave=False, disable=None,  # None: not in logs
                           bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} s")
            if bar is not None:
                bar.update(min(pos, end) / sr - bar.n)
            if tail is None and pos > end:
                loud = float(np.max(np.abs(block))) if frames else 0.0
                # A listening patch's channel voices follow its ear and never end: offline it
                # hears silence, so its output alone says when it is over.
                idle = synth.listening or synth.stats()["voices_active"] == 0
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
    try:
        with atomic_output(path) as tmp:
            with sf.SoundFile(tmp, "w", samplerate=int(samplerate), channels=2, format=fmt,
                              subtype=subtype) as f:
                result = produce(f.write)
                f.flush()
            with open(tmp, "rb+") as fh:
                _clear_peak_time(fh)
    except sf.LibsndfileError as e:  # libsndfile reports a full disk as its own error
        if _disk_full(folder):
            raise RenderError(f"{path}: the disk is full (nothing written)") from None
        raise RenderError(f"cannot write {path}: {e}") from None
    except OSError as e:
        if e.errno == errno.ENOSPC or _disk_full(folder):
            raise RenderError(f"{path}: the disk is full (nothing written)") from None
        raise
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
    return any(isinstance(m, (bytes, bytearray)) and len(m) == 2 and 0xC0 <= m[0] <= 0xCF
               for _, m in events)


def encode_audio(audio, samplerate, subtype="PCM_24", ext="wav") -> bytes:
    """An audio file's bytes, made in memory: ``audio`` float32 (frames, channels).

    The same bytes :func:`write_atomic` writes for the same samples (libsndfile converts
    each sample the same way whether it streams blocks to a file or writes it at once).
    ``ext``: wav, flac or aiff. Raises :class:`RenderError` for an unknown format or FLAC
    with FLOAT samples.
    """
    import io

    import soundfile as sf

    fmt = {"wav": "WAV", "flac": "FLAC", "aiff": "AIFF", "aif": "AIFF"}.get(ext.lower())
    if fmt is None:
        raise RenderError(f"unknown audio format {ext!r} (use wav, flac or aiff)")
    if subtype not in SUBTYPES:
        raise RenderError(f"unknown subtype {subtype!r}: expected one of {', '.join(SUBTYPES)}")
    if subtype == "FLOAT" and fmt == "FLAC":
        raise RenderError("FLAC cannot store FLOAT samples: use PCM_16 or PCM_24")
    audio = np.asarray(audio, dtype=np.float32)
    buffer = io.BytesIO()
    buffer.name = f"audio.{ext}"
    with sf.SoundFile(buffer, "w", samplerate=int(samplerate), channels=audio.shape[1],
                      format=fmt, subtype=subtype) as f:
        f.write(audio)
    _clear_peak_time(buffer)
    return buffer.getvalue()


def _clear_peak_time(fh) -> None:
    """Zero the time stamp in a float file's PEAK chunk, so the same samples always give the
    same bytes (libsndfile stamps the chunk with the wall clock when it closes the file).

    ``fh``: the written file, open for reading and writing. The chunk (WAV and AIFF alike:
    ``PEAK``, size, version 1, time stamp, then a value and position per channel) lies in
    the header, before the sample data; a file without one is left as it is.
    """
    fh.seek(0)
    header = fh.read(4096)
    end = min((i for i in (header.find(b"data"), header.find(b"SSND")) if i >= 0),
              default=len(header))
    at = header.find(b"PEAK", 0, end)
    if at < 0 or header[at + 8:at + 12] not in (b"\x01\x00\x00\x00", b"\x00\x00\x00\x01"):
        return
    fh.seek(at + 12)
    fh.write(b"\x00\x00\x00\x00")
    fh.seek(0, 2)


def _disk_full(folder, reserve=65536) -> bool:
    try:
        return shutil.disk_usage(folder).free < reserve
    except OSError:
        return False


def check_free_space(path, frames, subtype, channels=2) -> None:
    """Refuse to start a render whose output cannot fit on the disk. Raises RenderError.

    The estimate is the uncompressed size (an upper bound for FLAC) plus 1 MB.
    """
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    need = frames * channels * _SAMPLE_BYTES.get(subtype, 4) + 1_000_000
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the writer reports a full disk if it happens
    if need > free:
        raise RenderError(f"not enough free space in {folder}: the render needs about "
                          f"{need / 1e6:.1f} MB, {free / 1e6:.1f} MB free")


def render_to_file(patch, path, events, samplerate=48000, subtype="PCM_24", tail=None, seed=0,
                   progress=False, max_seconds=MAX_SECONDS, programs=None,
                   warn=None) -> float:
    """Render ``events`` with ``patch`` into ``path`` atomically; return the duration in seconds.

    Refuses (:class:`RenderError`) a render longer than ``max_seconds`` and one whose
    output the disk cannot hold, before anything is written. ``programs``: what program
    change *n* selects (see :func:`load_programs`); ``warn(text)`` hears of program changes
    to a program that does not exist or did not load (ignored, as ``play`` ignores them).
    """
    if subtype not in SUBTYPES:
        raise RenderError(f"unknown subtype {subtype!r}: expected one of {', '.join(SUBTYPES)}")
    check_length(events, samplerate, tail, max_seconds)
    expected = _last_note_end(events) + int((tail if tail is not None else 1.0) * samplerate)
    check_free_space(path, expected, subtype)
    # The kernels compile (or load) in the constructor and the first block: a slow start
    # says so, and a Ctrl-C then waits for the compile to end (spikesynth.startup).
    notice = SlowStartNotice(_say if progress else None, _COMPILING, RENDER_AFTER_S)
    held = DeferredSignals()
    with held, notice:
        synth = Synth(patch, samplerate=samplerate, max_block=BLOCK, seed=seed,
                      programs=programs)

        def sink_after_start(sink):
            def first_block(block):
                notice.done()
                held.release()  # a Ctrl-C during the compile stops the render here
                sink(block)
            return first_block

        frames = write_atomic(path, samplerate, subtype,
                              lambda sink: render_events(synth, events, tail,
                                                         sink_after_start(sink), progress,
                                                         max_seconds))
    ignored = synth.stats()["programs_ignored"]
    if ignored and warn is not None:
        have = len(programs) if programs is not None else 0
        warn(f"{ignored} program change(s) to a program that does not exist or did not load "
             f"(there are {have}, numbered from 0): ignored")
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
