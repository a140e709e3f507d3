"""The cost of parameter smoothing: a control dragged without pause over held voices.

Run: .venv/bin/python benchmarks/bench_smoothing.py
Prints CPU time per second of audio for 16 held voices of the default patch at 64-frame
blocks: still, and with a parameter event every 10 ms (a slider dragged continuously, so a
ramp always moves and every voice retunes every ``params.SMOOTHING_TICK`` samples), for a
smoothed key (``spring.frequency_hz``) and the same events jumping (ramp modes off). Asserts
only a coarse floor (the dragged case faster than real time).
"""

from __future__ import annotations

import struct
import time

import numpy as np

from spikesynth import Synth
from spikesynth import params as P
from spikesynth.events import STATUS_PARAM
from spikesynth.patch import PATCH_DIR, load_patch, param_index

SR = 48000
BLOCK = 64
SECONDS = 2.0
NOTES = range(48, 80, 2)  # 16 voices


def bits(value: float) -> int:
    return struct.unpack("<i", struct.pack("<f", value))[0]


def cpu_per_second(drag: bool, smooth: bool) -> float:
    patch = load_patch(PATCH_DIR / "default.yaml")
    synth = Synth(patch, SR, BLOCK)
    if not smooth:
        synth.program.ramp[:, P.R_MODE] = P.RAMP_JUMP
    spring = param_index("spiking")["spring.frequency_hz"]
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    events = np.zeros((len(NOTES) + 1, 4), dtype=np.int32)
    for k, note in enumerate(NOTES):
        events[k] = (0, 0x90, note, 100)
    synth.process_block(out, events, len(NOTES))
    every = int(0.01 * SR) // BLOCK  # a slider's messages, about every 10 ms
    blocks = int(SECONDS * SR / BLOCK)
    total = 0.0
    for b in range(blocks):
        n = 0
        if drag and b % every == 0:
            hz = 800.0 * 2.0 ** np.sin(b / blocks * 4.0 * np.pi)
            events[0] = (7, STATUS_PARAM, spring, bits(hz))
            n = 1
        t0 = time.process_time()
        synth.process_block(out, events, n)
        total += time.process_time() - t0
    return total / SECONDS


def main() -> None:
    cpu_per_second(True, True)  # compile
    still = min(cpu_per_second(False, True) for _ in range(2))
    jumping = min(cpu_per_second(True, False) for _ in range(2))
    smoothed = min(cpu_per_second(True, True) for _ in range(2))
    print(f"16 voices, {BLOCK}-frame blocks, CPU s per s of audio: still {still:.3f}, "
          f"dragged jumping {jumping:.3f}, dragged smoothed {smoothed:.3f} "
          f"(+{(smoothed - still) / still * 100:.0f} % over still)")
    assert smoothed < 1.0


if __name__ == "__main__":
    main()
