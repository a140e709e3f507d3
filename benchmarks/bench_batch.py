"""Batch rendering speed: library items per second on 1 and 2 Dask workers, per-item costs.

    .venv/bin/python benchmarks/bench_batch.py [--items 88] [--patches] [--samplerate 48000]

1. The task alone (in this process): render + measure + encode one sample, per item.
2. A library of the default patch (``--items`` notes from A0 up, velocity 96, 1 s held) on a
   local Dask cluster of 1 and of 2 worker processes: items per second (cluster start-up
   and warm-up excluded, printed apart), the scaling, and the per-item overhead (wall time
   per item on one worker minus the task's own cost: scheduling, transfer, the client's
   atomic write with fsync and SHA-256).
3. ``--patches``: the task's cost and file size for every bundled patch (a few notes each),
   and from them the full library (17 patches × 88 notes × 4 velocities) on 1, 2 and 32
   workers, and its storage.

The machine's load average is printed with the figures: on a shared machine the scaling says
as much about the other users as about the code. Asserts only that the 1- and 2-worker
libraries are byte-identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from spikesynth.batch import (
    DaskRunner,
    RenderSettings,
    SampleJob,
    _file_hash,
    _write_bytes,
    render_library,
    render_sample,
    warm_up,
)
from spikesynth.patch import DEFAULT_PATCH, PATCH_DIR

FULL_NOTES = 88
FULL_VELOCITIES = 4
SCALING_TARGET = 1.7


def task_cost(patch_path, notes, settings, repeats=1):
    """Seconds per item and bytes per item of the pure task, in this process."""
    text = Path(patch_path).read_text()
    jobs = [SampleJob(text, str(patch_path), n, 96, settings) for n in notes]
    sizes = []
    t0 = time.perf_counter()
    for _ in range(repeats):
        for job in jobs:
            sizes.append(len(render_sample(job).data))
    seconds = (time.perf_counter() - t0) / (len(jobs) * repeats)
    return seconds, sum(sizes) / len(sizes)


def client_cost(size, folder, n=20):
    """Seconds per item the client spends writing a result: atomic write (fsync) + SHA-256."""
    data = os.urandom(int(size))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(n):
        _write_bytes(folder / f"{i}.wav", data)
        _file_hash(data)
    return (time.perf_counter() - t0) / n


def library_rate(workers, notes, settings, out):
    t0 = time.perf_counter()
    runner = DaskRunner(workers=workers)
    start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        report = render_library([DEFAULT_PATCH], out, notes, [96], settings, runner, quiet=True)
        wall = time.perf_counter() - t0
    finally:
        t0 = time.perf_counter()
        runner.close()
        close = time.perf_counter() - t0
    assert len(report.rendered) == len(notes)
    return len(notes) / wall, wall, start, close


def load():
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=88)
    parser.add_argument("--samplerate", type=int, default=48000)
    parser.add_argument("--patches", action="store_true", help="every patch, and the estimate")
    args = parser.parse_args()
    settings = RenderSettings(samplerate=args.samplerate, length_s=1.0)
    notes = [21 + i % 88 for i in range(args.items)]
    notes = sorted(set(notes))
    print(f"cores usable: {len(os.sched_getaffinity(0))}, {load()}")
    print(f"warm-up (this process): {warm_up():.2f} s")

    cost, size = task_cost(DEFAULT_PATCH, notes[::8], settings, repeats=2)
    print(f"task alone (default patch, {args.samplerate} Hz, 1 s held + release): "
          f"{cost * 1e3:.1f} ms/item, {size / 1e3:.0f} kB/item")

    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        rates = {}
        for workers in (1, 2):
            rate, wall, start, close = library_rate(workers, notes, settings, tmp / f"w{workers}")
            rates[workers] = rate
            print(f"{workers} worker(s): {len(notes)} items in {wall:.2f} s = {rate:.1f} items/s "
                  f"(cluster start + warm-up {start:.1f} s, close {close:.1f} s; {load()})")
        overhead = 1.0 / rates[1] - cost
        writing = client_cost(size, tmp / "client")
        scaling = rates[2] / rates[1]
        verdict = "meets" if scaling >= SCALING_TARGET else "misses"
        print(f"per-item overhead on Dask (1 worker): {overhead * 1e3:.1f} ms "
              f"(wall per item {1e3 / rates[1]:.1f} ms - task {cost * 1e3:.1f} ms), of which "
              f"the client's atomic write + hash {writing * 1e3:.1f} ms")
        print(f"scaling 1 -> 2 workers: {scaling:.2f}x ({verdict} the {SCALING_TARGET}x target)")
        a, b = tmp / "w1" / "default", tmp / "w2" / "default"
        for f in sorted(a.glob("*.wav")):
            assert f.read_bytes() == (b / f.name).read_bytes(), f"{f.name} differs"
        print("1- and 2-worker libraries byte-identical: yes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if not args.patches:
        return
    print(f"\nper patch (notes 21, 64, 108 at velocity 96; {args.samplerate} Hz PCM_24):")
    total_s = 0.0
    total_bytes = 0.0
    per_patch = FULL_NOTES * FULL_VELOCITIES
    patches = sorted(PATCH_DIR.glob("*.yaml"))
    for path in patches:
        c, s = task_cost(path, [21, 64, 108], settings)
        total_s += c * per_patch
        total_bytes += s * per_patch
        print(f"  {path.stem:16s} {c * 1e3:7.1f} ms/item {s / 1e3:7.0f} kB/item")
    items = per_patch * len(patches)
    print(f"full library: {len(patches)} patches x {FULL_NOTES} x {FULL_VELOCITIES} = "
          f"{items} items, {total_bytes / 1e9:.2f} GB")
    worker_extra = max(overhead - writing, 0.0)  # scheduling, transfer: spread over workers
    for workers in (1, 2, 32):
        spread = items * (total_s / items + worker_extra) / workers
        floor = items * writing  # the one client writes every file
        seconds = max(spread, floor)
        bound = "client-bound" if floor > spread else "worker-bound"
        print(f"  {workers:2d} workers: about {seconds / 60:.1f} min ({bound}; task "
              f"{total_s / items * 1e3:.1f} ms/item mean + {worker_extra * 1e3:.1f} ms "
              f"overhead, client {writing * 1e3:.1f} ms/item; start-up not included)")

if __name__ == "__main__":
    main()
