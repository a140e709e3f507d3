"""What a start says while it compiles: a slow start is never a silent one.

The first render after an install or an update (and the first of each voice model) compiles
the synth's kernels: about 15 s for the default patch on a 2-core machine; the first ``play``
compiles the engine of every program and the audio callback: minutes. Later starts load
them from the cache (:mod:`spikesynth._cache`) in about a second. Rather than guess from
the cache's files whether this start compiles (a cache may hold some models and not others),
:class:`SlowStartNotice` says so when the start has taken longer than a warm one would, and
then how long it took.

A Ctrl-C (or SIGTERM) in the middle of a compile can land inside LLVM's callback into numba
(a ctypes callback, where Python only prints "Exception ignored" and carries on), leaving a
kernel half-made: the start then goes on, or falls back to the slower Python callback, or
fails with a traceback. :class:`DeferredSignals` holds them while the start compiles and
delivers them at the next safe point: the start or end of a kernel's compile (numba's
``numba:compile`` events, in numba's own Python code, outside LLVM), at most a second or so
later, or the end of the start. They then do what they always do (the render stops, saying
"interrupted: nothing written"; play stops).

Thread: main; the first note comes from a timer thread (the main thread is compiling).
"""

from __future__ import annotations

import signal
import threading
import time

RENDER_AFTER_S = 2.0
"""A warm render's synth is ready in about 0.3 s: past this, it is compiling."""
PLAY_AFTER_S = 4.0
"""A warm ``play`` prepares its programs and loads its callback in about 1.3 s."""


class SlowStartNotice:
    """Say ``what`` once the block under it has run ``after`` seconds, and at :meth:`done` how
    long it took (nothing at all for a start quicker than ``after``).

    Use as a context manager; :meth:`done` may come earlier (then the exit does nothing).
    ``say``: a function of one line of text (None: say nothing).
    """

    def __init__(self, say, what: str, after: float):
        self._say = say
        self._what = what
        self._after = after
        self._lock = threading.Lock()
        self._said = False
        self._finished = False
        self._timer = None
        self._start = time.monotonic()

    def __enter__(self) -> SlowStartNotice:
        self._start = time.monotonic()
        if self._say is not None:
            self._timer = threading.Timer(self._after, self._note)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _note(self) -> None:
        with self._lock:  # said under the lock: "ready" can never come first
            if self._finished or self._said:
                return
            self._said = True
            self._say(self._what)

    def done(self, ok: bool = True) -> None:
        """The start is over: stop the timer and, if it was slow (and ``ok``: it did not
        fail), say how long it took."""
        if self._say is None:
            return
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
            elapsed = time.monotonic() - self._start
            slow = self._said or elapsed >= self._after
            first = not self._said and slow
            self._said = self._said or slow
        if not ok:
            return
        if first:  # slower than ``after`` but the timer had not run yet
            self._say(self._what)
        if slow:
            self._say(f"ready after {elapsed:.0f} s (later starts load the compiled code)")

    def __exit__(self, exc_type, *exc) -> None:
        self.done(ok=exc_type is None)


class DeferredSignals:
    """Hold SIGINT and SIGTERM while the block under it runs; restore their handlers and
    raise the ones that came meanwhile (once each, so the handlers run then) at the next
    start or end of a numba compile, at :meth:`release`, or at the block's end.

    Only on the main thread (where Python runs signal handlers); elsewhere it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self._previous: dict = {}
        self._pending: list = []
        self._listener = None

    def _hold(self, signum, frame) -> None:
        if signum not in self._pending:
            self._pending.append(signum)

    def __enter__(self) -> DeferredSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.SIGNALS:
            if signal.getsignal(signum) is None:  # set from C: not ours to replace
                continue
            self._previous[signum] = signal.signal(signum, self._hold)
        from numba.core import event

        held = self

        class SafePoint(event.Listener):
            def on_start(self, ev):
                held._at_safe_point()

            def on_end(self, ev):
                held._at_safe_point()

        self._listener = SafePoint()
        event.register("numba:compile", self._listener)
        return self

    def _at_safe_point(self) -> None:
        if self._pending and threading.current_thread() is threading.main_thread():
            self.release()

    def release(self) -> None:
        """Restore the handlers; raise each signal that came while they were held."""
        if self._listener is not None:
            from numba.core import event

            event.unregister("numba:compile", self._listener)
            self._listener = None
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        pending, self._pending = self._pending, []
        for signum in pending:
            signal.raise_signal(signum)

    def __exit__(self, *exc) -> None:
        self.release()
