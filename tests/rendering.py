"""A test helper: render timed events through a Synth in blocks of a given size."""

from __future__ import annotations

import numpy as np

from spikesynth import Synth


def render_in_blocks(patch, events, total, block, samplerate=48000):
    """Render ``events`` (absolute sample, MIDI bytes) for ``total`` frames in blocks of
    ``block`` frames, each block getting its events at their offsets inside it.

    Returns ``(audio, synth)``: audio float32, shape (total, 2), and the synth afterwards.
    """
    synth = Synth(patch, samplerate, max_block=max(block, 1))
    out = []
    pos = 0
    while pos < total:
        n = min(block, total - pos)
        out.append(synth.process(n, [(t - pos, m) for t, m in events if pos <= t < pos + n]))
        pos += n
    return np.concatenate(out), synth
