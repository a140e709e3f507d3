"""Where the tasks run: in this process or on Dask (the only module importing dask).

:func:`open_runner` picks one for ``--scheduler`` / ``--workers``:

- :class:`DaskRunner`: a local Dask cluster of worker processes, one per core, bound to
  127.0.0.1 with no dashboard; or an existing cluster (``--scheduler tcp://HOST:PORT``).
  Each worker loads the compiled kernels once when it joins (:class:`WarmUp`, a worker
  plugin); tasks (a few items each, :func:`chunk_size`) are submitted with ``retries`` and a
  task lost with its worker is run again on another, so the batch completes; results are
  byte-identical to one process's because each task is a pure function of its inputs.
- :class:`InProcessRunner`: the same tasks one after another in this process (``--workers
  0``, or when dask is not installed: a note then says how to parallelise).

Thread: main (the client); the tasks run on the workers' threads.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid
from typing import Callable

from .jobs import warm_up
from .options import BatchError

try:  # optional: without dask every batch runs in this process
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - exercised by the no-dask test in a subprocess
    _WorkerPlugin = object

RETRIES = 3  # a task that raised is tried this many more times (worker loss: Dask reschedules)
INSTALL_HINT = ("dask is not installed, so this runs in one process; to use every core "
                "(or a cluster with --scheduler) install it: pip install 'spikesynth[batch]'")


class WarmUp(_WorkerPlugin):
    """Worker plugin: each Dask worker runs :func:`warm_up` once, when it starts or joins."""

    name = "spikesynth-warm-up"
    idempotent = True

    def setup(self, worker):
        """Thread: the worker's event loop, once per worker."""
        worker.spikesynth_warm_up_s = warm_up()


# -- runners ----------------------------------------------------------------------------
MAX_CHUNK = 8  # items per Dask task at most (a few hundred ms of work: progress stays smooth)
TASKS_PER_WORKER = 16  # ... and at least this many tasks per worker, so none waits at the end


def chunk_size(items: int, workers: int) -> int:
    """Items per Dask task: one task per item costs the scheduler and client about a
    millisecond of CPU each, which on a small machine is CPU the renders want; a few items
    per task amortise it while every worker still gets many tasks (load balance, and a lost
    worker costs little to redo)."""
    return max(1, min(MAX_CHUNK, items // max(1, workers * TASKS_PER_WORKER)))


def run_chunk(fn: Callable, jobs: list) -> list:
    """Task: ``fn`` over a few jobs, in order (pure when ``fn`` is)."""
    return [fn(job) for job in jobs]


class Runner:
    """Runs pure tasks and yields their results as they complete. Thread: main.

    Subclasses implement :meth:`_map` (and :meth:`_close` when they hold resources).
    """

    description = ""
    workers = 1

    def map(self, fn: Callable, jobs: list, labels: list | None = None):
        """Yield ``(index, fn(jobs[index]))`` for every job, in completion order.

        Stopping the iteration early (an exception in the consumer, Ctrl-C) cancels the
        tasks not yet finished.
        """
        labels = labels or [str(i) for i in range(len(jobs))]
        return self._map(fn, list(jobs), list(labels))

    def close(self):
        self._close()

    def _map(self, fn, jobs, labels):
        raise NotImplementedError

    def _close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcessRunner(Runner):
    """Every task in this process, one after another (no dask needed)."""

    description = "in this process"

    def __init__(self):
        self._warm = False

    def _map(self, fn, jobs, labels):
        if not self._warm:
            warm_up()
            self._warm = True
        for index, job in enumerate(jobs):
            yield index, fn(job)


class DaskRunner(Runner):
    """Tasks on a Dask cluster: a local one (``workers`` processes) or ``scheduler``'s.

    A local cluster binds its scheduler and workers to 127.0.0.1, runs no dashboard, gives
    each worker one thread (the renders hold the GIL only briefly, but numba's compiled
    code and the FFTs want a core each), and ignores Ctrl-C in the worker processes so the
    client alone decides what to cancel.
    """

    def __init__(self, scheduler=None, workers=None, connect_timeout=30.0):
        from distributed import Client, LocalCluster

        self._cluster = None
        self.token = uuid.uuid4().hex[:8]
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError) as e:
                raise BatchError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
            try:
                self.client.wait_for_workers(1, timeout=connect_timeout)
            except (OSError, TimeoutError):
                self.client.close()
                raise BatchError(f"the Dask scheduler at {scheduler} has no workers "
                                 f"(start some: dask worker {scheduler})") from None
            self.description = f"on the Dask cluster at {scheduler}"
        else:
            n = int(workers) if workers else default_workers()
            import dask

            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by workers
            try:
                with dask.config.set(_local_worker_config(dask)):
                    self._cluster = LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                        scheduler_port=0, dashboard_address=None,
                        worker_dashboard_address=None,
                        # no dashboard; the scheduler's own HTTP endpoints on loopback only
                        scheduler_kwargs={"dashboard": False,
                                          "dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR)
            finally:
                signal.signal(signal.SIGINT, previous)
            self.client = Client(self._cluster)
            self.description = f"on a local Dask cluster of {n} worker processes"
        self.client.register_plugin(WarmUp(), name=WarmUp.name)
        self.workers = max(len(self.client.scheduler_info()["workers"]), 1)

    def _map(self, fn, jobs, labels):
        from distributed import as_completed

        size = chunk_size(len(jobs), self.workers)
        chunks = [range(i, min(i + size, len(jobs))) for i in range(0, len(jobs), size)]
        futures = [self.client.submit(run_chunk, fn, [jobs[i] for i in chunk],
                                      key=f"spikesynth-{labels[chunk[0]]}+{len(chunk)}-"
                                          f"{self.token}",
                                      retries=RETRIES, pure=False)
                   for chunk in chunks]
        where = {f.key: chunk for f, chunk in zip(futures, chunks, strict=True)}
        done: set = set()
        try:
            for future, results in as_completed(futures, with_results=True):
                done.add(future.key)
                future.release()
                for i, result in zip(where[future.key], results, strict=True):
                    yield i, result
        finally:
            pending = [f for f in futures if f.key not in done]
            if pending:
                self.client.cancel(pending)

    def worker_pids(self) -> dict:
        """Worker address → process id (for tests and the benchmark)."""
        return self.client.run(os.getpid)

    def _close(self):
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


_MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")  # as the user started us


def _local_worker_config(dask) -> dict:
    """Dask settings for our local workers.

    - No statistical profiler (it samples every 10 ms: CPU the renders want).
    - No ``MALLOC_TRIM_THRESHOLD_`` (Dask's nanny sets it to 64 kB to return memory to the
      system; it also turns off glibc's adaptive mmap threshold, so every large array of a
      render is mmapped, page-faulted and unmapped again: a task took 36 ms of CPU instead
      of 27 ms). A value the user set before starting us is kept. The nanny writes the
      variable into this process's environment too, so a second cluster would inherit it:
      it is put back as it was first.
    """
    if _MALLOC_TRIM is None:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    else:
        os.environ["MALLOC_TRIM_THRESHOLD_"] = _MALLOC_TRIM
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    if _MALLOC_TRIM is None:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.worker.profile.enabled": False,
            "distributed.nanny.pre-spawn-environ": environ}


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def dask_available() -> bool:
    return _WorkerPlugin is not object


class StartOnUse(Runner):
    """A runner made when the first task comes (by ``start()``): a batch with nothing to
    render (a library rerun that finds every sample current) starts no cluster. ``say``
    hears where the tasks run when it starts."""

    description = "nowhere (nothing to render)"

    def __init__(self, start: Callable[[], Runner], say=None):
        self._start = start
        self._say = say
        self._runner: Runner | None = None

    def _map(self, fn, jobs, labels):
        if not jobs:
            return iter(())
        if self._runner is None:
            self._runner = self._start()
            self.description = self._runner.description
            self.workers = self._runner.workers
            if self._say is not None:
                self._say(f"rendering {self.description}")
        return self._runner._map(fn, jobs, labels)

    def _close(self):
        if self._runner is not None:
            self._runner.close()


def open_runner(scheduler=None, workers=None, say=None, lazy=False) -> Runner:
    """The runner for ``--scheduler`` / ``--workers``.

    ``workers=0`` (and no scheduler): in this process. No dask installed: in this process,
    after telling ``say`` how to parallelise (a ``--scheduler`` then is an error). ``lazy``:
    a :class:`StartOnUse` that makes it (and says where it runs) only when the first task
    comes; the options are checked now either way.
    """
    if workers is not None and workers < 0:
        raise BatchError("--workers must be 0 (this process) or more")
    if workers == 0 and not scheduler:
        start = InProcessRunner
    elif not dask_available():
        if scheduler:
            raise BatchError("--scheduler needs dask: pip install 'spikesynth[batch]'")
        if say is not None:
            say(f"note: {INSTALL_HINT}")
        start = InProcessRunner
    else:
        def start():
            return DaskRunner(scheduler=scheduler, workers=workers)
    return StartOnUse(start, say) if lazy else start()


def _progress(total, desc, quiet):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, disable=quiet or None,
                leave=False, dynamic_ncols=True)
