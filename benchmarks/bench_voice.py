"""Benchmark the spiking voice: ns per voice-sample, realtime factor, time to first sample,
and the inharmonic energy of a high note.

Run: .venv/bin/python benchmarks/bench_voice.py
Prints figures; asserts only that 64 voices render faster than real time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from audio_analysis import inharmonic_ratio_db  # noqa: E402

from spikesynth import Synth, load_patch  # noqa: E402

SR = 48000
BLOCK = 512
SECONDS = 4.0

FIRST_SAMPLE = """
import time
t0 = time.perf_counter()
from spikesynth import Synth, load_patch
s = Synth(load_patch(None), 48000, 64)
s.warm_up()
import numpy as np
out = s.process(64, [(0, bytes([0x90, 60, 100]))])
assert abs(out).max() > 0
print(time.perf_counter() - t0)
"""


def held_notes_cost(notes, block=BLOCK, seconds=SECONDS, clock=time.perf_counter) -> float:
    """Seconds (best of 3, by ``clock``) to render ``seconds`` of the default patch holding
    ``notes``, in ``block``-frame ``Synth.process_block`` calls."""
    patch = load_patch(None).replace(voices=256)
    synth = Synth(patch, SR, block)
    synth.process(block, [(0, bytes([0x90, n, 100])) for n in notes])
    assert synth.stats()["voices_active"] == len(notes)
    out = np.zeros((block, 2), dtype=np.float32)
    events = np.zeros((1, 4), dtype=np.int32)
    blocks = int(seconds * SR / block)
    best = np.inf
    for _ in range(3):
        t0 = clock()
        for _ in range(blocks):
            synth.process_block(out, events, 0)
        best = min(best, clock() - t0)
    assert synth.stats()["voices_active"] == len(notes)
    return best * (seconds * SR) / (blocks * block)  # for exactly ``seconds`` of audio


def voices_benchmark(n_voices: int) -> tuple[float, float]:
    best = held_notes_cost([30 + (i * 7) % 70 for i in range(n_voices)])
    samples = SECONDS * SR
    return best / (samples * n_voices) * 1e9, samples / SR / best


def first_sample_times() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        run = [sys.executable, "-c", FIRST_SAMPLE]
        cold = float(subprocess.run(run, env=env, capture_output=True, text=True,
                                    check=True).stdout)
        warm = float(subprocess.run(run, env=env, capture_output=True, text=True,
                                    check=True).stdout)
    return cold, warm


def main() -> None:
    print(f"spiking voice at {SR} Hz, block {BLOCK}, {SECONDS:.0f} s per run (best of 3)")
    results = {}
    for n in (1, 16, 64, 256):
        ns, rt = voices_benchmark(n)
        results[n] = rt
        print(f"  {n:4d} voices: {ns:7.2f} ns per voice-sample, {rt:9.1f}x real time")
    synth = Synth(load_patch(None), SR, 4096)
    audio = synth.process(3 * SR, [(0, bytes([0x90, 84, 100]))])
    f0 = 440.0 * 2 ** ((84 - 69) / 12)
    print(f"  note 84 at 48 kHz: inharmonic energy {inharmonic_ratio_db(audio[SR:], SR, f0):.1f} dB"
          " relative to harmonic energy")
    cold, warm = first_sample_times()
    print(f"  time to first sample: {cold:.2f} s cold numba cache, {warm:.2f} s warm")
    assert results[64] > 1.0, "64 voices must render faster than real time"


if __name__ == "__main__":
    main()
