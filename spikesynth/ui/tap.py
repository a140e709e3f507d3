"""A copy of the live output for the UI's views: one compiled copy per audio block.

:class:`OutputTap` owns a preallocated float32 ring of stereo frames and its frame counter: a
single-producer ring (:func:`spikesynth.events.tap_write`). The audio host
(:class:`spikesynth.audio.AudioHost`, ``output_tap=``) copies each rendered block into it:
the compiled callback itself (no GIL), or the Python callback through the same compiled
function. The counter is advanced with a release store after the copy; the UI's server
thread reads the most recent frames with :meth:`OutputTap.latest`, which loads the counter
with acquire semantics before copying and again after, and blanks the frames the audio
thread overwrote meanwhile (nothing torn is drawn, nothing on the audio side waits).
"""

from __future__ import annotations

import numpy as np

from ..events import read_acquire, tap_write

__all__ = ["OutputTap", "tap_write"]


class OutputTap:
    """The last ``capacity`` output frames of the live host.

    Thread: constructed on main; written by the audio thread (one producer); read by any.

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

    def prepare(self) -> None:
        """Compile the copy (:func:`tap_write`) so the audio thread never waits for it.

        Thread: main, before the stream starts.
        """
        tap_write(np.zeros((0, 2), dtype=np.float32), self.ring, self.header)

    def write(self, out) -> None:
        """Copy one output block (float32, shape (frames, 2)). Thread: audio (the Python
        callback; the compiled one writes the ring itself)."""
        tap_write(out, self.ring, self.header)

    @property
    def written(self) -> int:
        """Frames written so far. Thread: any."""
        return int(read_acquire(self.header, 0))

    def latest(self, frames: int) -> np.ndarray:
        """The last ``frames`` frames (a copy, float32, shape (frames, 2)); frames not yet
        written, or overwritten while they were copied, are zeros. Thread: any."""
        frames = min(int(frames), self.capacity)
        end = int(read_acquire(self.header, 0))  # acquire: the frames before ``end`` are written
        first = end - frames
        data = self.ring[np.arange(first, end) & (self.capacity - 1)]
        now = int(read_acquire(self.header, 0))
        torn = min(max(now - self.capacity - first, 0), frames)  # lapped during the copy
        data[:torn] = 0.0
        if first < 0:
            data[: -first] = 0.0
        return data
