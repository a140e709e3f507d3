"""Neural effects, offline: ``spikesynth process PATCH IN -o OUT``.

The host behind ``process`` (an offline host, beside :mod:`spikesynth.offline`): the input
file is the audio input of a synth patch with a ``listen:`` section (see
:mod:`spikesynth.listen`), rendered by :class:`spikesynth.Synth` block by block, with the
notes given (``--note`` / ``--midi``) as its MIDI. The bundled ear patches:

``patches/ear_resynth.yaml`` (``listen.routing: per_channel``)
    Each ear channel's spike train excites one spiking voice whose spring rings at the
    channel's centre frequency: you hear what the spikes encode.
``patches/ear_vocoder.yaml`` (``listen.routing: vocoder``)
    The voices sing the notes given; their sum is split by the same gammatone bank and each
    band is weighted by the input channel's spike rate: the output's partials are the held
    notes' harmonics, shaped by what the ear hears.

Neither adds look-ahead latency: output sample ``n`` depends on input up to ``n`` (the
gammatone filters' own group delay, about ``3 / (2π 1.019 ERB(cf))``, is 1.4 ms at 1 kHz).
Output is deterministic and block-size invariant; ``listen.dry`` / ``listen.wet`` mix the
input back in. Thread: main throughout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import ear as E
from .master import CEILING
from .patch import PatchError, load_patch

BLOCK = 512


class ProcessResult(NamedTuple):
    """What :func:`process_signal` made."""

    audio: np.ndarray  # (frames, 2) float32
    limited: int  # samples the master's limiter worked on
    samplerate: int


def process_signal(patch, signal, samplerate: int, events=(), tail: float = 0.0,
                   seed: int = 0, block: int = BLOCK) -> ProcessResult:
    """Run a listening ``patch`` over a whole signal (plus ``tail`` s of silence); stereo out.

    Thread: main. ``events``: absolute-sample MIDI events (as
    :func:`spikesynth.offline.note_events`). Any ``block`` gives the same output.
    """
    from .engine import Synth

    x = E.as_mono(signal)
    x = np.concatenate([x, np.zeros(int(round(tail * samplerate)))])
    n = x.size
    synth = Synth(patch, samplerate=samplerate, max_block=block, seed=seed)
    out = np.zeros((n, 2), dtype=np.float32)
    events = sorted(events, key=lambda e: e[0])
    e = 0
    for start in range(0, n, block):
        frames = min(block, n - start)
        block_events = []
        while e < len(events) and events[e][0] < start + frames:
            block_events.append((max(0, events[e][0] - start), events[e][1]))
            e += 1
        out[start:start + frames] = synth.process(frames, block_events,
                                                  audio_in=x[start:start + frames])
    return ProcessResult(out, synth.stats()["limited_samples"], int(samplerate))


def process_file(patch_path, in_path, out_path, events_for=None, subtype="PCM_24", tail=0.0,
                 seed=0) -> ProcessResult:
    """``spikesynth process``: read ``in_path``, run the patch over it, write ``out_path``.

    The output file is written atomically. ``events_for(samplerate)`` returns the note
    events at the input's rate. Raises :class:`PatchError` /
    :class:`spikesynth.offline.RenderError` for user errors.
    """
    from .offline import RenderError, read_audio, write_atomic

    patch = load_patch(patch_path)
    if patch["listen.routing"] == "off":
        raise PatchError(patch_path, "this patch does not listen: process needs a patch with a "
                         "listen: section (routing per_note, per_channel or vocoder)",
                         None, "listen.routing")
    data, sr = read_audio(in_path)
    events = events_for(sr) if events_for is not None else []
    if patch["listen.routing"] == "vocoder" and not events:
        raise RenderError("the vocoder sings the notes you give: add --note PITCH or --midi FILE")
    if subtype not in ("PCM_16", "PCM_24", "FLOAT"):
        raise RenderError(f"unknown subtype {subtype!r}")
    try:
        result = process_signal(patch, data, sr, events, tail=tail, seed=seed)
    except ValueError as e:
        raise RenderError(f"{patch_path}: {e}") from None

    def produce(sink):
        sink(result.audio)
        return len(result.audio)

    write_atomic(out_path, sr, subtype, produce)
    return result


__all__ = ["BLOCK", "CEILING", "ProcessResult", "process_file", "process_signal"]
