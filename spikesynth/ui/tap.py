"""A copy of the live output for the UI's views: one compiled copy per audio block.

:class:`OutputTap` owns a preallocated float32 ring of stereo frames. :meth:`OutputTap.attach`
wraps the synth's :meth:`~spikesynth.engine.Synth.process_ring` so that, after rendering, the
audio thread copies the block into the ring (:func:`tap_write`, ``nogil``, no allocation, no
lock) and publishes it by advancing a frame counter. The UI's server thread reads the most
recent frames with :meth:`OutputTap.latest` (a racy but harmless read: at worst a block being
overwritten shows up half old, half new in one drawn frame).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["OutputTap", "tap_write"]


@njit(cache=True, nogil=True)
def tap_write(out, ring, header):
    """Copy ``out`` (float32, shape (frames, 2)) into ``ring`` (float32, (capacity, 2)).

    Thread: audio. ``header[0]`` counts the frames written so far (it only grows; the slot of
    frame n is ``n & (capacity - 1)``); it is advanced after the copy. Allocates nothing.
    """
    mask = ring.shape[0] - 1
    n = header[0]
    for i in range(out.shape[0]):
        j = (n + i) & mask
        ring[j, 0] = out[i, 0]
        ring[j, 1] = out[i, 1]
    header[0] = n + out.shape[0]


class OutputTap:
    """The last ``capacity`` output frames of the live host.

    Thread: constructed and attached on main; written by the audio thread; read by any.

    Parameters
    ----------
    capacity : int
        Frames kept; rounded up to a power of two.
    """

    def __init__(self, capacity: int = 8192):
        cap = 1
        while cap < capacity:
            cap <<= 1
        self.capacity = cap
        self.ring = np.zeros((cap, 2), dtype=np.float32)
        self.header = np.zeros(1, dtype=np.int64)

    def attach(self, synth) -> None:
        """Make ``synth.process_ring`` copy each rendered block here. Thread: main.

        Compiles :func:`tap_write` first, so the audio thread never waits for it.
        """
        tap_write(np.zeros((1, 2), dtype=np.float32), self.ring, self.header)
        self.header[0] = 0
        self.ring[:] = 0.0
        render = synth.process_ring
        ring, header = self.ring, self.header

        def process_ring(out, events_ring, block_start_ns, latency_ns, audio_in=None):
            render(out, events_ring, block_start_ns, latency_ns, audio_in)
            tap_write(out, ring, header)

        synth.process_ring = process_ring

    @property
    def written(self) -> int:
        """Frames written so far. Thread: any."""
        return int(self.header[0])

    def latest(self, frames: int) -> np.ndarray:
        """The last ``frames`` frames (a copy, float32, shape (frames, 2)). Thread: any."""
        frames = min(int(frames), self.capacity)
        end = int(self.header[0])
        idx = (np.arange(end - frames, end) & (self.capacity - 1))
        data = self.ring[idx]
        if end < frames:
            data[: frames - end] = 0.0
        return data
