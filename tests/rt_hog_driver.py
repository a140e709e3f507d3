"""A play session with a GIL-hogging Python thread, for ``tests/test_rt_jack.py``.

Run as a script in a subprocess whose environment points at the test's JACK server::

    python tests/rt_hog_driver.py --callback compiled --hog busy --seconds 5

It opens a :class:`spikesynth.live.LiveSession` (JACK output, no MIDI), prints ``ready`` on
standard output, and waits for a line on standard input. Then it plays A4 (pushed straight
into the session's ring), runs the hog for ``--seconds`` on another thread, releases the
note, and prints one JSON line with the audio host's counters and the hog's work count.

Hogs (each holds the GIL as much as Python code can):

* ``busy``: a pure-Python loop, plus ``sum(range(...))`` calls, a C loop that holds the GIL
  for about 10 ms at a time without ever releasing it;
* ``parse``: parses a large generated YAML document (about a second each on the test
  machine) over and over for the whole run, in pure Python (PyYAML's Python loader), like
  the hot reload of a huge patch; the last parse may outlast ``--seconds``;
* ``none``: the idle run of the same length.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time


def busy(stop: threading.Event) -> int:
    n = 0
    while not stop.is_set():
        x = 0
        for i in range(20000):  # pure Python
            x += i * i
        sum(range(300_000))  # one C call: the GIL is held throughout
        n += 1
    return n


def parse(stop: threading.Event) -> int:
    import yaml

    doc = "\n".join(f"key{i}: {{a: [1, 2, {i}], b: 'text {i}', c: {{d: {i}.5}}}}"
                    for i in range(1500))
    n = 0
    while not stop.is_set():
        yaml.load(doc, Loader=yaml.Loader)  # the pure-Python loader
        n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--callback", default="compiled")
    ap.add_argument("--hog", choices=("none", "busy", "parse"), default="none")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    from spikesynth.live import LiveSession

    log = open("/dev/null", "w")  # noqa: SIM115 - the status line is not wanted here
    session = LiveSession(None, hostapi="JACK", midi_in=None, status=log,
                          status_interval=3600, callback=args.callback)
    session.open()
    try:
        print("ready", session.audio.callback_kind, flush=True)
        sys.stdin.readline()
        before = session.stats()
        session.ring.push(time.monotonic_ns(), [0x90, 69, 100])
        stop = threading.Event()
        work = [0]
        hog = {"busy": busy, "parse": parse}.get(args.hog)
        thread = None
        if hog is not None:
            thread = threading.Thread(target=lambda: work.__setitem__(0, hog(stop)))
            thread.start()
        t0 = time.monotonic()
        time.sleep(args.seconds)
        stop.set()
        if thread is not None:
            thread.join()
        elapsed = time.monotonic() - t0
        session.ring.push(time.monotonic_ns(), [0x80, 69, 0])
        time.sleep(0.3)
        after = session.stats()
        print(json.dumps({
            "callback": session.audio.callback_kind,
            "xruns": after["xruns"] - before["xruns"],
            "callbacks": after["callbacks"] - before["callbacks"],
            "overruns": after["overruns"] - before["overruns"],
            "load_max": after["load_max"],
            "faults": after["faults"],
            "work": work[0],
            "elapsed": elapsed,
        }), flush=True)
    finally:
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
