"""The tests' JACK peer: a recorder (two audio inputs and a MIDI input) or a sine source, in a
process of its own.

Why a process: JACK-Client runs a client's process callback in Python, so it needs the GIL
of its process every 1.3 ms (a 64-frame period at 48 kHz). In the test process the main
thread holds that GIL for much longer (imports, numba loading its cache, numpy analysis;
Python's switch interval alone is 5 ms), and then the callback misses cycles and the server
counts xruns for the whole graph. Here the main thread only blocks on stdin, so the callback
always has the GIL at once.

Parent side: :class:`test_play_jack.Recorder` and :class:`test_listen_jack.Sine` start
``python jack_peer.py NAME --record FILE --seconds S`` or ``... --sine HZ``. The peer prints
``ready`` once its ports are active and exits when stdin closes. Recording goes to a file in
memory that both map, laid out by :func:`layout` (the parent creates and removes it: the
mappings outlive the file, and nothing unmaps them under a view); the callback
writes a cycle's samples before it publishes ``END``, and each field has a single writer
(the parent sets ``RECORDING``/``RESTART``, the callback the rest).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

# Header fields (int64).
FIRST, END, FULL, RECORDING, RESTART, MIDI_COUNT = range(6)
HEADER = 8
MIDI_SLOTS = 4096


def layout(memory, blocks: int, blocksize: int) -> dict:
    """The shared block's arrays: header, midi, audio, covered (one flag per cycle).

    ``memory`` is the block as a uint8 :class:`numpy.memmap`; the arrays are views of it,
    so the mapping lasts as long as any of them (nothing unmaps it under a view).
    """
    offset = 0

    def take(dtype, shape):
        nonlocal offset
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        a = memory[offset:offset + n].view(dtype).reshape(shape)
        offset += n
        return a

    return {"header": take(np.int64, (HEADER,)), "midi": take(np.int64, (MIDI_SLOTS, 2)),
            "audio": take(np.float32, (blocks * blocksize, 2)),
            "covered": take(np.uint8, (blocks,))}


def nbytes(blocks: int, blocksize: int) -> int:
    return 8 * HEADER + 16 * MIDI_SLOTS + 8 * blocks * blocksize + blocks


def shared_block(size: int) -> tuple[str, np.memmap]:
    """A new zeroed file of ``size`` bytes in memory (``/dev/shm`` where there is one) and
    its mapping; the caller removes the file (the mapping stays valid)."""
    import os
    import tempfile

    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
    fd, path = tempfile.mkstemp(prefix="spikesynth-rec-", dir=folder)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return path, np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))


class Peer:
    """The parent's handle on a peer process (started by the constructor, ready on return)."""

    def __init__(self, name: str, *args: str, timeout: float = 30.0):
        import select
        import subprocess

        self.name = name
        self.proc = subprocess.Popen([sys.executable, __file__, name, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"JACK peer {name!r} did not start (said {line!r}; "
                               "its stderr is in the test's captured output)")

    def close(self, timeout: float = 10.0):
        """Close stdin (the peer leaves the graph and exits); kill it if it does not."""
        import subprocess

        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()  # libjack can deadlock in close on an overloaded machine
                self.proc.wait()


def record(client, path: str, seconds: float):
    n = client.blocksize
    blocks = int(seconds * client.samplerate) // n
    memory = np.memmap(path, dtype=np.uint8, mode="r+", shape=(nbytes(blocks, n),))
    arrays = layout(memory, blocks, n)
    header, midi, audio, covered = (arrays[k] for k in ("header", "midi", "audio", "covered"))
    ins = [client.inports.register(f"in_{i}") for i in (1, 2)]
    midi_in = client.midi_inports.register("midi_in")

    def process(frames):
        if not header[RECORDING]:
            return
        if header[RESTART]:  # done here, by the writer, between two cycles
            covered[:] = 0
            header[FIRST] = -1
            header[END] = 0
            header[MIDI_COUNT] = 0
            header[FULL] = 0
            header[RESTART] = 0
        frame = client.last_frame_time
        count = header[MIDI_COUNT]
        for offset, data in midi_in.incoming_midi_events():
            if count < MIDI_SLOTS:
                midi[count] = frame + offset, bytes(data[:1])[0]
                count += 1
        header[MIDI_COUNT] = count
        if header[FIRST] < 0:
            header[FIRST] = frame
        start = frame - header[FIRST]
        if start + frames > len(audio):
            header[FULL] = 1
            return
        audio[start:start + frames, 0] = ins[0].get_array()
        audio[start:start + frames, 1] = ins[1].get_array()
        covered[start // n] = 1
        header[END] = start + frames  # last: the parent reads END, then the samples

    client.set_process_callback(process)
    return memory


def sine(client, hz: float):
    port = client.outports.register("out")
    n, rate = client.blocksize, client.samplerate
    t = np.arange(rate + n) / rate
    table = (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)  # -20 dBFS
    position = [0]

    def process(frames):
        p = position[0]
        port.get_array()[:] = table[p:p + frames]
        position[0] = (p + frames) % rate

    client.set_process_callback(process)


def main() -> int:
    import jack

    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--record", metavar="FILE")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sine", type=float, metavar="HZ")
    args = parser.parse_args()
    client = jack.Client(args.name, no_start_server=True)
    keep = record(client, args.record, args.seconds) if args.record else None
    if args.sine:
        sine(client, args.sine)
    client.activate()
    print("ready", flush=True)
    sys.stdin.buffer.read()  # until the parent closes the pipe (or dies)
    client.deactivate()
    client.close()
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
