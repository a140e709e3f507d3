"""A test helper: a real Dask cluster of separate processes (``dask scheduler`` + ``dask worker``).

Everything binds to 127.0.0.1 on ports the system picks (the scheduler writes its address to
a scheduler file); nothing runs a dashboard. Workers run without a nanny, so a killed worker
stays dead (a lost worker, as when a machine goes away). :meth:`DaskProcesses.stop` ends
every process it started, by its own process id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 120.0  # a loaded 2-core machine imports numpy, numba and dask slowly


class DaskProcesses:
    """A scheduler and workers as subprocesses, logs in ``folder``."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = self.folder / "scheduler.json"
        self.scheduler = None
        self.workers: dict = {}  # name -> Popen
        self.address = None
        self.env = dict(os.environ)

    def _spawn(self, name, args):
        log = open(self.folder / f"{name}.log", "wb")
        try:
            return subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env,
                                    start_new_session=True)
        finally:
            log.close()

    def start_scheduler(self) -> str:
        """Start ``dask scheduler`` on 127.0.0.1 (a free port); return its address."""
        self.scheduler = self._spawn("scheduler", [
            "scheduler", "--host", LOOPBACK, "--port", "0", "--no-dashboard",
            "--dashboard-address", f"{LOOPBACK}:0", "--scheduler-file", str(self.scheduler_file)])
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited:\n{self.log('scheduler')}")
            try:
                self.address = json.loads(self.scheduler_file.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)  # the scheduler has not written its file yet
        raise RuntimeError(f"dask scheduler did not start:\n{self.log('scheduler')}")

    def start_worker(self, name):
        """Start one single-threaded ``dask worker`` (no nanny) called ``name``."""
        self.workers[name] = self._spawn(name, [
            "worker", self.address, "--name", name, "--nthreads", "1", "--nworkers", "1",
            "--no-nanny", "--host", LOOPBACK, "--no-dashboard",
            "--dashboard-address", f"{LOOPBACK}:0", "--death-timeout", "60",
            "--local-directory", str(self.folder / name)])
        return self.workers[name]

    def kill_pid(self, pid):
        """SIGKILL one of our workers by its process id (refuses any other process)."""
        if pid not in {p.pid for p in self.workers.values()}:
            raise ValueError(f"{pid} is not a worker this helper started")
        os.kill(pid, signal.SIGKILL)
        for proc in self.workers.values():
            if proc.pid == pid:
                proc.wait(timeout=30)

    def alive(self) -> list:
        return [name for name, p in self.workers.items() if p.poll() is None]

    def log(self, name) -> str:
        try:
            return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        procs = [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
