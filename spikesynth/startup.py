"""What a start says while it compiles: a slow start is never a silent one.

The first render after an install or an update (and the first of each voice model) compiles
the synth's kernels: about 15 s for the default patch on a 2-core machine; the first ``play``
compiles the engine of every program and the audio callback: minutes. Later starts load
them from the cache (:mod:`spikesynth._cache`) in about a second. Rather than guess from
the cache's files whether this start compiles (a cache may hold some models and not others),
:class:`SlowStartNotice` says so when the start has taken longer than a warm one would, and
then how long it took.

Thread: main; the first note comes from a timer thread (the main thread is compiling).
"""

from __future__ import annotations

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
        with self._lock:
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
