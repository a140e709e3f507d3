"""Live-host benchmark: audio-callback duration as a fraction of the block period, on JACK.

For each block size (64, 256 frames) a private ``jackd -d dummy`` runs at 48 kHz with that
period (``tests/jackserver.py``), and a worker process opens the live host on PortAudio's
JACK host API (:class:`spikesynth.audio.AudioHost`, exactly as ``spikesynth play`` does),
holds 1, 16 and 64 voices (note-ons pushed into the MIDI ring) for ``--duration`` seconds
each, and reports the callback duration — measured inside the callback with
``perf_counter_ns`` at entry and exit — as median / 99th percentile / maximum of the block
period, plus the xruns PortAudio reported. The first second after the notes start is not
measured (note-on work and start-up).

The only assertion is a coarse floor: the median callback takes less than the block period.

Usage::

    .venv/bin/python benchmarks/bench_live.py [--duration 30] [--quick]

(``--quick``: 3 s per configuration.)

``--ear``: the duplex stream instead (``play --input``, the ear at 64 channels and 64-frame
blocks): the idle ``default`` patch and ``ear_resynth`` (the ear drives 64 voices), their
callback loads and xruns side by side, so the ear's own share of the xruns (ideally none
over idle) is printed. The synth's input hears ``jack_simple_client``'s sine (a C client,
connected in place of the dummy driver's silent capture port): with silence in, the ear's
channel voices never ring and the load is not the live one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

SR = 48000
VOICES = (1, 16, 64)
BLOCKS = (64, 256)


def worker(blocksize: int, duration: float, callback: str = "compiled") -> dict:
    """Run in a fresh process whose environment points at the JACK server."""
    import numpy as np

    from spikesynth.audio import AudioHost, resolve_output_device
    from spikesynth.engine import Synth
    from spikesynth.events import EventRing
    from spikesynth.patch import load_patch

    results = []
    for voices in VOICES:
        patch = load_patch().replace(voices=max(voices, 16))
        synth = Synth(patch, samplerate=SR, max_block=max(4096, blocksize))
        synth.warm_up()
        ring = EventRing(1024)
        device = resolve_output_device(None, "JACK")
        host = AudioHost(synth, ring, samplerate=SR, blocksize=blocksize, device=device,
                         callback=callback)
        host.start()
        try:
            time.sleep(0.5)
            for k in range(voices):
                ring.push(time.monotonic_ns(), [0x90, 36 + k, 100])
            time.sleep(1.0)
            s0 = host.stats()
            time.sleep(duration)
            s1 = host.stats()
            first, last, xruns = s0["callbacks"], s1["callbacks"], s1["xruns"] - s0["xruns"]
            active = synth.stats()["voices_active"]
            history = host.loads()
        finally:
            host.close()
        n = min(last - first, len(history))
        loads = history[np.arange(last - n, last) % len(history)]
        results.append({
            "voices": voices, "voices_active": active, "blocksize": blocksize,
            "callback": host.callback_kind,
            "callbacks": int(n), "median": float(np.median(loads)),
            "p99": float(np.percentile(loads, 99)), "max": float(loads.max()),
            "xruns": int(xruns), "overruns": int((loads > 1.0).sum()),
        })
    return {"results": results}


def feed_input(timeout: float = 10.0) -> str:
    """Connect ``jack_simple_client``'s first output to the synth's input port (in place of
    the dummy capture port); return the source port's name."""
    def ports():
        return subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split()

    deadline = time.monotonic() + timeout
    while True:
        names = ports()
        sources = [p for p in names if p.startswith("jack_simple_client:output")]
        inputs = [p for p in names if p.startswith("spikesynth:") and "in" in p.split(":")[1]]
        if sources and inputs:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no sine source or synth input port in {names}")
        time.sleep(0.1)
    for port in names:
        if port.startswith("system:capture"):
            subprocess.run(["jack_disconnect", port, inputs[0]], capture_output=True)
    subprocess.run(["jack_connect", sources[0], inputs[0]], check=True, capture_output=True)
    return sources[0]


def worker_ear(blocksize: int, duration: float, callback: str = "compiled") -> dict:
    """The duplex stream with an idle patch, then with the ear (a fresh JACK-side process)."""
    import numpy as np

    from spikesynth.audio import AudioHost, resolve_input_device, resolve_output_device
    from spikesynth.engine import Synth
    from spikesynth.events import EventRing
    from spikesynth.patch import PATCH_DIR, load_patch

    results = []
    for name in ("default.yaml", "ear_resynth.yaml", "default.yaml", "ear_resynth.yaml"):
        synth = Synth(load_patch(PATCH_DIR / name), samplerate=SR, max_block=4096)
        synth.warm_up()
        ring = EventRing(64)
        host = AudioHost(synth, ring, samplerate=SR, blocksize=blocksize,
                         device=resolve_output_device(None, "JACK"), callback=callback,
                         input_device=resolve_input_device("default", "JACK"))
        host.start()
        try:
            feed_input()
            time.sleep(1.0)
            s0 = host.stats()
            c0 = time.process_time()
            time.sleep(duration)
            s1 = host.stats()
            cpu = time.process_time() - c0
            _, loads = host.loads_since(s0["callbacks"])
        finally:
            host.close()
        results.append({
            "voices": name.split(".")[0], "voices_active": synth.stats()["voices_active"],
            "blocksize": blocksize, "callback": host.callback_kind,
            "callbacks": int(loads.size), "median": float(np.median(loads)),
            "p99": float(np.percentile(loads, 99)), "max": float(loads.max()),
            "xruns": int(s1["xruns"] - s0["xruns"]), "overruns": int((loads > 1.0).sum()),
            "cpu": cpu / duration,
        })
    return {"results": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds measured per configuration (default 30)")
    parser.add_argument("--quick", action="store_true", help="3 s per configuration")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--callback", default="compiled", choices=("compiled", "python"),
                        help="the audio callback to measure (default compiled)")
    parser.add_argument("--ear", action="store_true",
                        help="the duplex stream: idle patch vs the ear (64-frame blocks)")
    args = parser.parse_args(argv)
    duration = 3.0 if args.quick else args.duration
    if args.worker is not None:
        run = worker_ear if args.ear else worker
        print(json.dumps(run(args.worker, duration, args.callback)))
        return 0

    from jackserver import JackServer

    rows = []
    for blocksize in (64,) if args.ear else BLOCKS:
        with JackServer(samplerate=SR, period=blocksize) as server:
            env = dict(server.env)  # the package chooses its numba cache (keyed)
            sine = (subprocess.Popen(["jack_simple_client"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    if args.ear else None)
            try:
                proc = subprocess.run([sys.executable, __file__, "--worker", str(blocksize),
                                       "--duration", str(duration), "--callback",
                                       args.callback, *(["--ear"] if args.ear else [])],
                                      env=env, cwd=ROOT, capture_output=True, text=True,
                                      timeout=600 + 4 * (duration + 5))
            finally:
                if sine is not None:
                    sine.terminate()
                    sine.wait(10)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            rows += json.loads(proc.stdout.strip().splitlines()[-1])["results"]

    print(f"live host on JACK (dummy driver), {SR} Hz, {duration:g} s per configuration, "
          f"{args.callback} callback; callback duration as a fraction of the block period")
    if args.ear:
        print("duplex stream (jack_simple_client's sine in), idle patch and the ear in turn; cpu: "
              "the process's CPU time per second")
    print(f"{'block':>5} {'voices':>12} {'active':>6} {'callbacks':>9} {'median':>7} "
          f"{'p99':>7} {'max':>7} {'>100%':>6} {'xruns':>5}" + ("    cpu" if args.ear else ""))
    ok = True
    for r in rows:
        print(f"{r['blocksize']:>5} {r['voices']:>12} {r['voices_active']:>6} "
              f"{r['callbacks']:>9} {100 * r['median']:>6.1f}% {100 * r['p99']:>6.1f}% "
              f"{100 * r['max']:>6.1f}% {r['overruns']:>6} {r['xruns']:>5}"
              + (f" {100 * r['cpu']:>5.1f}%" if args.ear else ""))
        ok &= r["median"] < 1.0 and (args.ear or r["voices_active"] >= r["voices"])
    assert ok, "median callback duration must stay below the block period, voices held"
    return 0


if __name__ == "__main__":
    sys.exit(main())
