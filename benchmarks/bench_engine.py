"""The engine, fast from the first note: cold and warm start per voice model, and the cost of
64 voices at 64- and 256-frame blocks.

Run: .venv/bin/python benchmarks/bench_engine.py [--skip-cold]
Prints figures; asserts only coarse floors (64 voices faster than real time, a warm start
under 10 s).

* cold: a first-ever render (an empty numba cache and table cache: an empty
  ``XDG_CACHE_HOME``, so the package chooses its caches as for a new user) of one patch of
  each model, timed from the process start to the written file, through the console script;
  the best of two (each in a fresh empty directory);
* warm: the same again (caches filled), through the console script and ``python -m
  spikesynth``, and through the console script with the prepared-table cache off
  (``SPIKESYNTH_TABLE_CACHE=off``: the calibration and key-loudness renders run again);
  ``--skip-cold``: the warm figures only, on the package's own numba cache (one untimed
  render first fills it and a temporary table cache);
* blocks: 64 voices (notes 36–99) of the default patch through ``Synth.process_block``, ns per
  voice-sample (CPU time) at 256- and 64-frame blocks and their ratio (the target is ≤ 1.3).
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SR = 48000
SECONDS = 4.0
COLD_PATCHES = ("default", "lif", "izhikevich_rs", "izhikevich_ch", "half_centre")


def timed_render(command, cache_home, out, tables=None) -> tuple[float, float]:
    """(wall, CPU) seconds of one render in a new process (CPU: what a quiet machine's wall
    time would be, the machine being shared). ``cache_home``: ``XDG_CACHE_HOME`` (where the
    package keeps its numba and table caches; None: the user's own); ``tables``:
    ``SPIKESYNTH_TABLE_CACHE`` (None: the package's choice)."""
    env = dict(os.environ)
    env.pop("SPIKESYNTH_NUMBA_CACHE_DIR", None)
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("SPIKESYNTH_TABLE_CACHE", None)
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = str(cache_home)
    if tables is not None:
        env["SPIKESYNTH_TABLE_CACHE"] = str(tables)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(command + ["-o", str(out), "--note", "C4:100:0:0.5", "-q"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(runs) -> tuple[float, float]:
    """The run with the least CPU time."""
    return min(runs, key=lambda run: run[1])


def start_times(cold: bool) -> None:
    exe = Path(sys.executable).parent / "spikesynth"
    print("time to a rendered file (s, wall / CPU), one note; cold = empty caches (best of 2); "
          "no tables = warm with SPIKESYNTH_TABLE_CACHE=off")
    print(f"  {'patch':<16} {'cold':>13} {'warm':>13} {'warm -m':>13} {'no tables':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in COLD_PATCHES:
            cache = Path(tmp) / f"cache-{name}" if cold else None
            tables = None if cold else Path(tmp) / f"tables-{name}"
            patch = str(ROOT / "patches" / f"{name}.yaml")
            out = Path(tmp) / f"{name}.wav"
            first = (math.nan, math.nan)
            if cold:  # the best of two first-ever renders, each with empty caches
                firsts = []
                for _ in range(2):
                    shutil.rmtree(cache, ignore_errors=True)
                    cache.mkdir()
                    firsts.append(timed_render([str(exe), "render", patch], cache, out))
                first = best(firsts)
            else:
                timed_render([str(exe), "render", patch], cache, out, tables)  # fills them
            warm = best(timed_render([str(exe), "render", patch], cache, out, tables)
                        for _ in range(3))
            warm_m = best(timed_render([sys.executable, "-m", "spikesynth", "render", patch],
                                       cache, out, tables) for _ in range(2))
            untabled = best(timed_render([str(exe), "render", patch], cache, out, "off")
                            for _ in range(2))
            figures = (first, warm, warm_m, untabled)
            print(f"  {name:<16} " + " ".join(f"{w:6.2f}/{c:5.2f}" for w, c in figures),
                  flush=True)
            assert warm[0] < 10.0


def block_cost(block: int, n_voices: int = 64) -> float:
    """ns of CPU per voice-sample, 64 voices (notes 36-99) in ``block``-frame blocks."""
    from bench_voice import held_notes_cost

    notes = [36 + i for i in range(n_voices)]
    # CPU time: the machine may be shared
    best = held_notes_cost(notes, block, SECONDS, time.process_time)
    return best * 1e9 / (SECONDS * SR * n_voices)


def main() -> None:
    start_times(cold="--skip-cold" not in sys.argv)
    print("64 voices (notes 36-99), default patch, Synth.process_block")
    costs = {block: block_cost(block) for block in (256, 64)}
    for block, ns in costs.items():
        print(f"  block {block:>4}: {ns:6.2f} ns per voice-sample, "
              f"{1e9 / (ns * 64 * SR):6.1f}x real time")
    print(f"  64-frame / 256-frame cost: {costs[64] / costs[256]:.2f} (target <= 1.3)")
    assert 1e9 / (costs[64] * 64 * SR) > 1.0


if __name__ == "__main__":
    main()
