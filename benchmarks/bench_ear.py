"""Benchmark: the spiking ear (64 gammatone channels, hair cells, LIF neurons, surfaces).

Run with ``.venv/bin/python benchmarks/bench_ear.py``. Streams ``SECONDS`` of noise plus a
tone (so about half the hair-cell samples take the compression's power law, and the neurons
fire) through :class:`spikesynth.ear.Ear` in blocks of ``BLOCK`` samples on one core, after a
warm-up run (compilation); the best of ``REPEATS`` timings is reported as the real-time
factor and ns per channel-sample, for a few configurations. Only a coarse floor is asserted
(real-time factor >= 1 at the default settings); the target is >= 10x.
"""

from __future__ import annotations

import time

import numpy as np

from spikesynth.ear import Ear

SR = 48000
SECONDS = 4.0
BLOCK = 64
REPEATS = 3
CASES = (
    ("default (64 ch, compression 0.3, 1 surface tau)", {}, 10.0),
    ("64 ch, linear hair cell", {"compression": 1.0}, 10.0),
    ("64 ch, 3 surface taus (2, 10, 50 ms)", {}, [2.0, 10.0, 50.0]),
    ("128 ch", {"channels": 128}, 10.0),
)


def signal(seconds=SECONDS):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    return 0.05 * rng.standard_normal(t.size) + 0.1 * np.sin(2 * np.pi * 440.0 * t)


def run(ear: Ear, x: np.ndarray) -> int:
    spikes = 0
    for start in range(0, x.size, BLOCK):
        out = ear.process(x[start:start + BLOCK])
        spikes += int(np.count_nonzero(out.raster))
    return spikes


def bench(overrides, tau_ms, x):
    ear = Ear(SR, max_block=BLOCK, tau_ms=tau_ms, **overrides)
    run(ear, x[: 10 * BLOCK])  # compile
    best = np.inf
    spikes = 0
    for _ in range(REPEATS):
        ear.reset()
        t0 = time.perf_counter()
        spikes = run(ear, x)
        best = min(best, time.perf_counter() - t0)
    return best, ear.channels, spikes


def main() -> None:
    x = signal()
    print(f"ear benchmark: {SECONDS:g} s at {SR} Hz, blocks of {BLOCK}, best of {REPEATS}")
    results = []
    for name, overrides, tau in CASES:
        seconds, channels, spikes = bench(overrides, tau, x)
        rtf = SECONDS / seconds
        ns = seconds / (x.size * channels) * 1e9
        results.append(rtf)
        print(f"  {name:48s} {rtf:7.1f}x real time  {ns:6.1f} ns/channel-sample  "
              f"({spikes / SECONDS:.0f} spikes/s)")
    bench_effects(x)
    assert results[0] >= 1.0, f"the default ear runs slower than real time ({results[0]:.2f}x)"


def bench_effects(x) -> None:
    """``spikesynth process`` with each bundled ear patch (patches/ear_*.yaml), through the
    engine (the ear inside the synth's block), in 512-frame and 64-frame blocks."""
    from pathlib import Path

    from spikesynth import load_patch
    from spikesynth.ear_effects import process_signal
    from spikesynth.offline import Note, note_events

    patches = Path(__file__).resolve().parent.parent / "patches"
    events = note_events([Note(45, 100, 0.0, SECONDS), Note(52, 100, 0.0, SECONDS)], SR)
    for name in ("ear_resynth", "ear_vocoder"):
        patch = load_patch(patches / f"{name}.yaml")
        process_signal(patch, x[:SR // 10], SR, events)  # compile
        for block in (512, 64):
            t0 = time.perf_counter()
            process_signal(patch, x, SR, events, block=block)
            seconds = time.perf_counter() - t0
            print(f"  process {name + '.yaml'} (block {block}){'':19s} "
                  f"{SECONDS / seconds:7.1f}x real time")


if __name__ == "__main__":
    main()
