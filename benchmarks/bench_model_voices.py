"""Benchmark the model voices through the engine: realtime factor of 16 voices for each LIF,
Izhikevich and network patch (notes spread over two octaves around middle C), at 48 kHz, and
the cost per voice-sample. Network patches also play 16 voices all at C4 (issue 7's target:
``half_centre`` at >= 20x real time), where a voice runs ``period steps x f / sr`` network
steps per sample.

Run: .venv/bin/python benchmarks/bench_model_voices.py [--seconds S] [--patches a,b]
Prints figures (from CPU time); asserts only that each patch renders (finite output).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spikesynth import Synth, load_patch
from spikesynth.patch import PATCH_DIR, list_patches

SR = 48000
BLOCK = 512


def realtime_factor(patch, n_voices, seconds, notes=None):
    """``(realtime factor, voices sounding)`` of ``n_voices`` voices of ``patch``; the notes
    spread over C3..C5 unless given."""
    patch = patch.replace(voices=max(n_voices, patch["voices"]))
    synth = Synth(patch, SR, BLOCK)
    if notes is None:
        notes = [48 + (i * 5) % 25 for i in range(n_voices)]
    events = [(0, bytes([0x90, n, 100])) for n in notes]
    if patch["model"] == "izhikevich" and patch["izhikevich.tuning"] == "free":
        events.append((0, bytes([0xB0, 1, 100])))  # these play from the mod wheel
    synth.process(BLOCK, events)
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    none = np.zeros((1, 4), dtype=np.int32)
    blocks = int(seconds * SR / BLOCK)
    t0 = time.process_time()  # CPU time: the machine may be shared
    for _ in range(blocks):
        synth.process_block(out, none, 0)
    elapsed = time.process_time() - t0
    assert np.all(np.isfinite(out))
    return blocks * BLOCK / SR / elapsed, synth.stats()["voices_active"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--patches", default="", help="comma-separated names (default: all)")
    args = parser.parse_args()
    chosen = {name for name in args.patches.split(",") if name}
    n_voices = 16
    print(f"{n_voices} voices per patch at {SR} Hz, {args.seconds:.0f} s rendered "
          "(ns per voice-sample from CPU time)")
    for path in list_patches(PATCH_DIR):
        patch = load_patch(path)
        if patch["model"] == "spiking" or (chosen and path.stem not in chosen):
            continue
        cases = [("C3..C5", None)]
        if patch["model"] == "network":
            cases.append(("all C4", [60] * n_voices))
        for label, notes in cases:
            rt, active = realtime_factor(patch, n_voices, args.seconds, notes)
            ns = 1e9 / (rt * SR * n_voices)
            print(f"  {path.name:22s} {patch['model']:10s} {label:7s} {rt:8.1f}x real time "
                  f"{ns:7.1f} ns ({active} voices sounding)")


if __name__ == "__main__":
    main()
