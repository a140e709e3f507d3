"""Patch files parsed and validated in a child process with time and memory limits.

Hot reload (:mod:`spikesynth.live`) reads patch files while the audio plays. Parsing YAML
and validating a patch is Python work that holds the GIL, and a hostile file could make it
long or large; done in the playing process it would delay the audio callback. A
:class:`PatchWorker` does it in a separate process (started once, ``spawn``: no fork of a
process with audio and MIDI threads), whose address space is capped with
``RLIMIT_AS`` and whose every request has a deadline; a worker that runs over is killed and
replaced. What comes back is a validated :class:`~spikesynth.patch.Patch` (or the
:class:`~spikesynth.patch.PatchError` message), so the playing process only prepares it.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import NamedTuple

from .patch import Patch, PatchError, load_patch

#: Address space the worker may use beyond what it has after its imports (bytes).
MEMORY_HEADROOM = 512 * 1024 * 1024
#: Seconds one request may take; a worker's start-up (its imports) may take longer.
REQUEST_TIMEOUT = 5.0
START_TIMEOUT = 120.0


class LoadResult(NamedTuple):
    """The answer to one request: a patch, or an error message (exactly as ``check``)."""

    patch: Patch | None
    error: str | None


def _serve(conn, headroom: int) -> None:  # pragma: no cover - runs in the child
    """The worker's loop: receive a path, send back ("ok", Patch) or ("error", message)."""
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the player decides when this
    # worker ends (it closes the pipe), so the child neither dies mid-request nor prints a
    # KeyboardInterrupt traceback over the player's last line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import resource

        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[0])
        now = pages * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (now + headroom, now + headroom))
    except (ImportError, OSError, ValueError):
        pass  # no limit where the platform has none
    conn.send(("ready", None))
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        if path is None:
            return
        try:
            reply = ("ok", load_patch(path))
        except PatchError as e:
            reply = ("error", str(e))
        except MemoryError:
            reply = ("error", f"{path}: needs more memory than a patch may "
                              f"({headroom // 2**20} MB)")
        except RecursionError:
            reply = ("error", f"{path}: nested too deeply")
        except Exception as e:  # a validation bug must not kill reloading
            reply = ("error", f"{path}: cannot be read ({type(e).__name__}: {e})")
        try:
            conn.send(reply)
        except Exception as e:  # e.g. the patch cannot be pickled
            conn.send(("error", f"{path}: cannot be passed back ({type(e).__name__})"))


class PatchWorker:
    """A child process that loads patch files for the caller. Thread: one caller at a time
    (the reload thread); :meth:`close` from main.

    Parameters
    ----------
    timeout : float
        Seconds a request may take before the worker is killed (the error says so).
    headroom : int
        Bytes of address space the worker may add to what its imports take.
    """

    def __init__(self, timeout: float = REQUEST_TIMEOUT, headroom: int = MEMORY_HEADROOM):
        self.timeout = float(timeout)
        self.headroom = int(headroom)
        self._ctx = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self._ready = False
        self._lock = threading.Lock()
        #: Workers killed for running over their time (or dying).
        self.restarts = 0

    def start(self) -> PatchWorker:
        """Start the child (its imports run in the background). Thread: main or reload."""
        if self._process is None:
            parent, child = self._ctx.Pipe()
            self._process = self._ctx.Process(target=_serve, args=(child, self.headroom),
                                              name="spikesynth-patch-worker", daemon=True)
            self._process.start()
            child.close()
            self._conn = parent
            self._ready = False
        return self

    def _kill(self) -> None:
        process, self._process = self._process, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if process is not None:
            process.kill()
            process.join(5)
        self._ready = False

    def load(self, path) -> LoadResult:
        """Parse and validate ``path`` in the child. Thread: reload (never audio).

        Returns a :class:`LoadResult`; never raises for anything the file does.
        """
        with self._lock:
            self.start()
            try:
                if not self._ready:
                    if not self._conn.poll(START_TIMEOUT):
                        self._kill()
                        return LoadResult(None, f"{path}: the patch worker did not start")
                    self._conn.recv()
                    self._ready = True
                self._conn.send(str(path))
                if not self._conn.poll(self.timeout):
                    self._kill()
                    self.restarts += 1
                    return LoadResult(None, f"{path}: reading it took longer than "
                                            f"{self.timeout:g} s (abandoned)")
                kind, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                code = self._process.exitcode if self._process is not None else None
                self._kill()
                self.restarts += 1
                return LoadResult(None, f"{path}: the patch worker died reading it "
                                        f"(exit {code}): too large or too complex")
            if kind == "ok":
                return LoadResult(value, None)
            return LoadResult(None, value)

    def close(self) -> None:
        """Stop the child. Idempotent. Thread: main."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
            process = self._process
            if process is not None:
                process.join(1.0)
            self._kill()

    def __enter__(self) -> PatchWorker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
