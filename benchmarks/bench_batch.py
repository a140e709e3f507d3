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
from typing import NamedTuple

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
VELOCITIES = [64, 96]  # two layers: 2 x --items samples per library


def task_cost(patch_path, notes, settings, repeats=1):
    """CPU seconds per item and bytes per item of the pure task, in this process.

    CPU time, not wall time: on a shared machine the wall time per item is the CPU time
    times however many other processes want the core.
    """
    text = Path(patch_path).read_text()
    jobs = [SampleJob(text, str(patch_path), n, 96, settings) for n in notes]
    render_sample(jobs[0])  # the patch parsed and its kernels loaded
    sizes = []
    t0 = time.process_time()
    for _ in range(repeats):
        for job in jobs:
            sizes.append(len(render_sample(job).data))
    seconds = (time.process_time() - t0) / (len(jobs) * repeats)
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


def library_rate(workers, notes, settings, out, workers_write=False):
    """Items per second of a library on a local cluster; and the CPU seconds per item spent
    by the workers and by this process (client, scheduler, nannies)."""
    t0 = time.perf_counter()
    runner = DaskRunner(workers=workers)
    start = time.perf_counter() - t0
    try:
        cpu_workers = sum(runner.client.run(time.process_time).values())
        cpu_client = time.process_time()
        t0 = time.perf_counter()
        report = render_library([DEFAULT_PATCH], out, notes, VELOCITIES, settings, runner,
                                quiet=True, workers_write=workers_write)
        wall = time.perf_counter() - t0
        cpu_client = time.process_time() - cpu_client
        cpu_workers = sum(runner.client.run(time.process_time).values()) - cpu_workers
    finally:
        t0 = time.perf_counter()
        runner.close()
        close = time.perf_counter() - t0
    n = len(notes) * len(VELOCITIES)
    assert len(report.rendered) == n
    return Rate(n / wall, wall, start, close, cpu_workers / n, cpu_client / n)


class Rate(NamedTuple):
    items_per_s: float
    wall_s: float
    start_s: float
    close_s: float
    worker_cpu_s: float  # per item, all workers together
    client_cpu_s: float  # per item, this process


def idle_scaling(worker_cpu, client_cpu, cores=2):
    """The 1 -> 2 worker scaling on an otherwise idle machine with ``cores`` cores, from CPU
    time per item: each worker needs ``worker_cpu``, and the client process ``client_cpu``
    on whatever core is free."""
    one = max(worker_cpu, (worker_cpu + client_cpu) / cores, client_cpu)
    two = max(worker_cpu / 2, (worker_cpu + client_cpu) / cores, client_cpu)
    return one / two


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
          f"{cost * 1e3:.1f} ms CPU/item, {size / 1e3:.0f} kB/item")

    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        rates = {}
        for mode, workers_write in (("client writes", False), ("workers write", True)):
            for workers in (1, 2):
                out = tmp / f"{'ww' if workers_write else 'w'}{workers}"
                r = library_rate(workers, notes, settings, out, workers_write)
                rates[mode, workers] = r
                print(f"{mode}, {workers} worker(s): {len(notes) * len(VELOCITIES)} items in "
                      f"{r.wall_s:.2f} s = {r.items_per_s:.1f} items/s (cluster start + "
                      f"warm-up {r.start_s:.1f} s, close {r.close_s:.1f} s; CPU per item: "
                      f"workers {r.worker_cpu_s * 1e3:.1f} ms, client+scheduler "
                      f"{r.client_cpu_s * 1e3:.1f} ms; {load()})")
        one = rates["client writes", 1]
        overhead = 1.0 / one.items_per_s - cost
        writing = client_cost(size, tmp / "client")
        print(f"per-item overhead on Dask (1 worker): {overhead * 1e3:.1f} ms wall "
              f"(wall per item {1e3 / one.items_per_s:.1f} ms - task {cost * 1e3:.1f} ms);"
              f" the client's atomic write + hash {writing * 1e3:.1f} ms of it")
        for mode in ("client writes", "workers write"):
            scaling = rates[mode, 2].items_per_s / rates[mode, 1].items_per_s
            verdict = "meets" if scaling >= SCALING_TARGET else "misses"
            w = rates[mode, 2].worker_cpu_s
            c = rates[mode, 2].client_cpu_s
            print(f"{mode}: scaling 1 -> 2 workers, measured: {scaling:.2f}x ({verdict} the "
                  f"{SCALING_TARGET}x target); on an idle 2-core machine, from the CPU time "
                  f"per item (workers {w * 1e3:.1f} ms, client {c * 1e3:.1f} ms): "
                  f"{idle_scaling(w, c):.2f}x")
        a = tmp / "w1" / "default"
        for other in ("w2", "ww1", "ww2"):
            b = tmp / other / "default"
            for f in sorted(a.glob("*.wav")):
                assert f.read_bytes() == (b / f.name).read_bytes(), f"{f.name} differs"
        print("1- and 2-worker libraries, client- and worker-written, byte-identical: yes")
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
        print(f"  {path.stem:16s} {c * 1e3:7.1f} ms CPU/item {s / 1e3:7.0f} kB/item")
    items = per_patch * len(patches)
    print(f"full library: {len(patches)} patches x {FULL_NOTES} x {FULL_VELOCITIES} = "
          f"{items} items, {total_bytes / 1e9:.2f} GB")
    # a worker's own overhead per item (serialising, its event loop), from the CPU accounting
    worker_extra = max(rates["client writes", 2].worker_cpu_s - cost, 0.0)
    writing = max(writing, rates["client writes", 2].client_cpu_s)  # all the client's share
    for workers in (1, 2, 32):
        spread = items * (total_s / items + worker_extra) / workers
        floor = items * writing  # the one client receives and writes every file
        seconds = max(spread, floor)
        bound = "client-bound" if floor > spread else "worker-bound"
        print(f"  {workers:2d} workers: about {seconds / 60:.1f} min ({bound}; task "
              f"{total_s / items * 1e3:.1f} ms/item mean + {worker_extra * 1e3:.1f} ms "
              f"overhead, client {writing * 1e3:.1f} ms/item; start-up not included)")

if __name__ == "__main__":
    main()
