"""Benchmark: the spiking ear (64 gammatone channels, hair cells, LIF neurons, surfaces).

Run with ``.venv/bin/python benchmarks/bench_ear.py``. Streams ``SECONDS`` of noise plus a
tone (so about half the hair-cell samples take the compression's power law, and the neurons
fire) through :class:`spikesynth.ear.Ear` in blocks of ``BLOCK`` samples on one core, after a
warm-up run (compilation); the best of ``REPEATS`` timings is reported as the real-time
factor and ns per channel-sample, for a few configurations. Only a coarse floor is asserted
(real-time factor >= 1 at the default settings); the target is >= 10x.

Then the split of a live block's cost (64 channels, 64-frame blocks, a 440 Hz tone at
-20 dBFS as in the JACK test, CPU time per block): the ear's stages (gammatone filters,
power law, hair-cell low-pass, neurons), the listening ear as the engine runs it, and the
whole engine block with ``patches/ear_resynth.yaml`` (the rest: its 64 channel voices and
the master section), as a share of the block period.
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
    bench_split()
    bench_effects(x)
    assert results[0] >= 1.0, f"the default ear runs slower than real time ({results[0]:.2f}x)"


def _cpu_per_block(step, blocks):
    step(0)  # compile, warm
    t0 = time.process_time()
    for b in range(blocks):
        step(b)
    return (time.process_time() - t0) / blocks


def bench_split(seconds=3.0) -> None:
    """The cost of one live block with the ear, stage by stage (CPU time)."""
    from numba import njit

    from spikesynth import Synth, load_patch
    from spikesynth.dsp import cochlea as K
    from spikesynth.listen import listen_ear
    from spikesynth.patch import PATCH_DIR

    n = int(seconds * SR)
    blocks = n // BLOCK
    x = 0.1 * np.sin(2 * np.pi * 440.0 * np.arange(n) / SR)
    synth = Synth(load_patch(PATCH_DIR / "ear_resynth.yaml"), samplerate=SR, max_block=BLOCK)
    L = synth._active.listen  # the ListenState the engine runs
    out = np.zeros((BLOCK, 2), np.float32)
    events = np.zeros((1, 4), np.int32)

    def engine(b):
        synth.process_block(out, events, 0, audio_in=x[b * BLOCK:(b + 1) * BLOCK])

    t_engine = _cpu_per_block(engine, blocks)  # also leaves the ear's states as live

    def ear(b):
        L.input[:BLOCK] = x[b * BLOCK:(b + 1) * BLOCK]
        listen_ear(L, BLOCK)

    t_ear = _cpu_per_block(ear, blocks)

    @njit
    def stages(x, L, which, blocks):
        for b in range(blocks):
            block = x[b * BLOCK:(b + 1) * BLOCK]
            K.bank_rectify(block, L.coeffs, L.state, L.work)
            if which >= 1:
                K.compress(L.work, BLOCK, L.compression)
            if which >= 2:
                K.hair_cell_drive(L.work, BLOCK, L.coeffs, L.state)
            if which >= 3:
                K.neurons_run(L.work, BLOCK, L.lif_coeffs, L.lif_states, L.raster,
                              L.positions)

    cumulative = []
    for which in range(4):
        stages(x, L, which, 1)
        t0 = time.process_time()
        stages(x, L, which, blocks)
        cumulative.append((time.process_time() - t0) / blocks)
    period = BLOCK / SR
    names = ("gammatone filters", "power law (compression 0.3)", "hair-cell low-pass",
             "LIF neurons")
    print(f"split of a live block ({BLOCK} frames, 64 channels, 440 Hz at -20 dBFS), CPU time:")
    previous = 0.0
    for name, t in zip(names, cumulative, strict=True):
        own = t - previous
        print(f"  ear: {name:40s} {own * 1e6:6.1f} us  {100 * own / period:5.1f} %")
        previous = t
    print(f"  the listening ear (listen_ear, all stages)   {t_ear * 1e6:6.1f} us  "
          f"{100 * t_ear / period:5.1f} %")
    rest = t_engine - t_ear
    print(f"  the rest: 64 channel voices, master          {rest * 1e6:6.1f} us  "
          f"{100 * rest / period:5.1f} %")
    print(f"  engine block with ear_resynth.yaml           {t_engine * 1e6:6.1f} us  "
          f"{100 * t_engine / period:5.1f} %")


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
