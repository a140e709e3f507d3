"""Side by side with SuperCollider: 64 voices for 60 s, ns per voice-sample and the ratios.

Peers, rendered by ``scsynth -N`` (SuperCollider's non-real-time mode; Debian packages
``supercollider-server`` and ``sc3-plugins-server``, installed by ``scripts/setup.sh --bench``):

- ``fhn``: ``FitzHughNagumo.ar`` (sc3-plugins) → ``LPF`` → ``Pan2`` → ``Out``, per voice;
- ``saw``: ``Saw.ar`` (notes 36–99) → ``RLPF`` → ``Pan2`` → ``Out``, per voice;
- ``empty``: the same score with no voices, whose time (start-up, file writing, the mix
  bus) is subtracted from the other two.

The SynthDefs (SCgf version 2) and the binary OSC score are written here as bytes, so sclang
is not needed. spikesynth renders the same 64 voices (notes 36–99, held) of the default
patch through ``Synth.process`` in 256-frame blocks (its master section included).

Run: .venv/bin/python benchmarks/bench_peers.py [--seconds S] [--repeats N]
Prints ns per voice-sample from CPU time (user + system of the rendering process: fairer on
a shared machine) and from wall time; asserts only coarse floors (every render sounds;
spikesynth's 64 voices run faster than real time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from spikesynth import Synth, load_patch

SR = 48000
N_VOICES = 64
LOWEST_NOTE = 36
BLOCK = 256

# --- SynthDef2 and OSC as bytes ---------------------------------------------------------

AR, KR = 2, 1  # calculation rates


def _pstring(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">B", len(data)) + data


def synthdef(name, params, ugens, constants) -> bytes:
    """One SynthDef in SCgf version 2 layout.

    Parameters
    ----------
    name : str
    params : list of (str, float)
        Control names and initial values (one ``Control`` UGen outputs them in order).
    ugens : list of (class_name, rate, inputs, output_rates, special_index)
        An input is ``("c", value)`` (a constant) or ``(ugen_index, output_index)``.
    constants : list of float
        Every constant value used as an input.
    """
    index = {value: i for i, value in enumerate(constants)}
    out = _pstring(name)
    out += struct.pack(">i", len(constants)) + b"".join(struct.pack(">f", c) for c in constants)
    out += struct.pack(">i", len(params)) + b"".join(struct.pack(">f", v) for _, v in params)
    out += struct.pack(">i", len(params))
    out += b"".join(_pstring(n) + struct.pack(">i", i) for i, (n, _) in enumerate(params))
    out += struct.pack(">i", len(ugens))
    for cls, rate, inputs, output_rates, special in ugens:
        out += _pstring(cls) + struct.pack(">biih", rate, len(inputs), len(output_rates), special)
        for a, b in inputs:
            out += struct.pack(">ii", -1, index[b]) if a == "c" else struct.pack(">ii", a, b)
        out += b"".join(struct.pack(">b", r) for r in output_rates)
    out += struct.pack(">h", 0)  # no variants
    return out


def fhn_synthdef() -> bytes:
    """FitzHughNagumo.ar(0, rateu, ratew, 1, 1, 0, 0) → LPF(cutoff) → Pan2(pan, amp) → Out(0)."""
    params = [("rateu", 0.2), ("ratew", 0.01), ("cutoff", 3000.0), ("pan", 0.0), ("amp", 0.05)]
    control = ("Control", KR, [], [KR] * 5, 0)
    fhn = ("FitzHughNagumo", AR, [("c", 0.0), (0, 0), (0, 1), ("c", 1.0), ("c", 1.0),
                                  ("c", 0.0), ("c", 0.0)], [AR], 0)
    lpf = ("LPF", AR, [(1, 0), (0, 2)], [AR], 0)
    pan = ("Pan2", AR, [(2, 0), (0, 3), (0, 4)], [AR, AR], 0)
    out = ("Out", AR, [("c", 0.0), (3, 0), (3, 1)], [], 0)
    return synthdef("fhn", params, [control, fhn, lpf, pan, out], [0.0, 1.0])


def saw_synthdef() -> bytes:
    """Saw.ar(freq) → RLPF(cutoff, rq) → Pan2(pan, amp) → Out(0)."""
    params = [("freq", 220.0), ("cutoff", 2000.0), ("rq", 0.3), ("pan", 0.0), ("amp", 0.05)]
    control = ("Control", KR, [], [KR] * 5, 0)
    saw = ("Saw", AR, [(0, 0)], [AR], 0)
    rlpf = ("RLPF", AR, [(1, 0), (0, 1), (0, 2)], [AR], 0)
    pan = ("Pan2", AR, [(2, 0), (0, 3), (0, 4)], [AR, AR], 0)
    out = ("Out", AR, [("c", 0.0), (3, 0), (3, 1)], [], 0)
    return synthdef("saw", params, [control, saw, rlpf, pan, out], [0.0])


def _osc_string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return data + b"\0" * (-len(data) % 4)


def osc_message(address: str, *args) -> bytes:
    tags, data = ",", b""
    for a in args:
        if isinstance(a, bytes):
            tags += "b"
            data += struct.pack(">i", len(a)) + a + b"\0" * (-len(a) % 4)
        elif isinstance(a, int):
            tags += "i"
            data += struct.pack(">i", a)
        elif isinstance(a, float):
            tags += "f"
            data += struct.pack(">f", a)
        else:
            tags += "s"
            data += _osc_string(a)
    return _osc_string(address) + _osc_string(tags) + data


def osc_bundle(seconds: float, messages) -> bytes:
    """A bundle at score time ``seconds``, length-prefixed as NRT score files are."""
    whole = int(seconds)
    fraction = int((seconds - whole) * 2**32)
    body = _osc_string("#bundle") + struct.pack(">II", whole, fraction)
    for m in messages:
        body += struct.pack(">i", len(m)) + m
    return struct.pack(">i", len(body)) + body


def sc_score(kind: str, n_voices: int, seconds: float) -> bytes:
    """An NRT score: the SynthDefs, ``n_voices`` synths of ``kind`` at 0 s, end at ``seconds``."""
    defs = b"SCgf" + struct.pack(">ih", 2, 2) + fhn_synthdef() + saw_synthdef()
    score = osc_bundle(0.0, [osc_message("/d_recv", defs)])
    messages = []
    for k in range(n_voices):
        pan = -0.5 + k / max(n_voices - 1, 1)
        if kind == "fhn":
            messages.append(osc_message(
                "/s_new", "fhn", 1000 + k, 1, 0, "rateu", 0.05 + 0.05 * k / n_voices,
                "ratew", 0.005 + 0.005 * k / n_voices, "pan", pan))
        elif kind == "saw":
            freq = 440.0 * 2 ** ((LOWEST_NOTE + k - 69) / 12)
            messages.append(osc_message("/s_new", "saw", 1000 + k, 1, 0, "freq", freq,
                                        "pan", pan))
    if messages:
        score += osc_bundle(0.0, messages)
    return score + osc_bundle(seconds, [osc_message("/c_set", 0, 0)])


# --- the runs ---------------------------------------------------------------------------


class Run(NamedTuple):
    """One timed render."""

    wall: float
    """Elapsed seconds."""
    cpu: float
    """CPU seconds (user + system) of the rendering process."""
    rms: float
    """RMS of the output (the whole file for scsynth, the last block for spikesynth)."""
    sane: bool
    """Finite output within +-10 (a diverged peer run is not timed)."""


def _sane(audio: np.ndarray) -> bool:
    return bool(np.isfinite(audio).all() and np.abs(audio).max(initial=0.0) <= 10.0)


def render_sc(scsynth: str, kind: str, seconds: float, tmp: Path) -> Run:
    """Render one score with ``scsynth -N``."""
    score, wav = tmp / f"{kind}.osc", tmp / f"{kind}.wav"
    score.write_bytes(sc_score(kind, 0 if kind == "empty" else N_VOICES, seconds))
    cmd = [scsynth, "-N", str(score), "_", str(wav), str(SR), "WAV", "float", "-o", "2"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "not installed" in log or "FAILURE" in log:
        raise SystemExit(f"bench_peers: scsynth failed on the {kind} score:\n{log[-3000:]}")
    audio, sr = sf.read(wav, dtype="float32")
    assert sr == SR and abs(len(audio) - seconds * SR) <= 64, (sr, len(audio))
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return Run(wall, usage.ru_utime + usage.ru_stime, rms, _sane(audio))


def render_spikesynth(seconds: float) -> Run:
    """64 held notes of the default patch through ``Synth.process(256)``."""
    synth = Synth(load_patch(None).replace(voices=N_VOICES), SR, BLOCK)
    notes = [(0, bytes([0x90, n, 100])) for n in range(LOWEST_NOTE, LOWEST_NOTE + N_VOICES)]
    synth.warm_up()
    synth.process(BLOCK, notes)  # compile (or load) the offline path outside the timing
    synth.reset()
    blocks = int(round(seconds * SR / BLOCK))
    t0, c0 = time.perf_counter(), time.process_time()
    out = synth.process(BLOCK, notes)
    for _ in range(blocks - 1):
        out = synth.process(BLOCK)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    active = synth.stats()["voices_active"]
    assert active == N_VOICES, f"only {active} of {N_VOICES} voices still sounding"
    sane = _sane(out) and synth.stats()["nonfinite_samples"] == 0
    return Run(wall, cpu, float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))), sane)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    scsynth = shutil.which("scsynth")
    if scsynth is None:
        sys.exit("bench_peers: scsynth not found; install it with scripts/setup.sh --bench")
    voice_samples = N_VOICES * args.seconds * SR
    print(f"{N_VOICES} voices x {args.seconds:g} s at {SR} Hz, best of {args.repeats}")

    runs: dict[str, list[Run]] = {kind: [] for kind in ("empty", "fhn", "saw", "spikesynth")}
    diverged = dict.fromkeys(runs, 0)
    with tempfile.TemporaryDirectory() as tmp:
        # Interleaved, so a busy moment of the (shared) machine hits every peer alike. A
        # diverged peer run (scsynth's FitzHughNagumo sometimes starts from garbage state
        # and outputs ~1e11 from the first sample) is counted and run again.
        for _ in range(args.repeats * 3):
            if all(len(r) >= args.repeats for r in runs.values()):
                break
            for kind in runs:
                if len(runs[kind]) >= args.repeats:
                    continue
                run = (render_spikesynth(args.seconds) if kind == "spikesynth"
                       else render_sc(scsynth, kind, args.seconds, Path(tmp)))
                if run.sane:
                    runs[kind].append(run)
                else:
                    diverged[kind] += 1
    missing = [kind for kind, r in runs.items() if not r]
    assert not missing, f"every run of {missing} diverged ({diverged})"

    def ns(kind: str, clock: str) -> float:
        best = min(getattr(r, clock) for r in runs[kind])
        empty = 0.0 if kind == "spikesynth" else min(getattr(r, clock) for r in runs["empty"])
        return (best - empty) / voice_samples * 1e9

    names = {"fhn": "SC FitzHughNagumo+LPF", "saw": "SC Saw+RLPF",
             "spikesynth": "spikesynth default"}
    print(f"  scsynth empty score: {min(r.wall for r in runs['empty']):.3f} s wall, "
          f"{min(r.cpu for r in runs['empty']):.3f} s CPU (subtracted)")
    print(f"  {'ns per voice-sample':24s} {'CPU':>7} {'wall':>7}")
    for kind, name in names.items():
        print(f"  {name:24s} {ns(kind, 'cpu'):7.2f} {ns(kind, 'wall'):7.2f}")
    for kind in ("fhn", "saw"):
        print(f"  spikesynth / {names[kind]:22s} {ns('spikesynth', 'cpu') / ns(kind, 'cpu'):5.2f}x"
              f" CPU, {ns('spikesynth', 'wall') / ns(kind, 'wall'):5.2f}x wall")
    rms = {kind: r[-1].rms for kind, r in runs.items()}
    print("  output RMS: " + ", ".join(f"{k} {v:.3g}" for k, v in rms.items())
          + "; diverged runs (not timed): " + ", ".join(f"{k} {v}" for k, v in diverged.items()))

    # Coarse floors only: every render sounds, and spikesynth keeps up with real time.
    assert rms["empty"] == 0.0 and min(rms["fhn"], rms["saw"], rms["spikesynth"]) > 1e-4, rms
    ours = ns("spikesynth", "cpu")
    assert ours < 1e9 / (N_VOICES * SR), f"64 voices slower than real time ({ours:.1f} ns)"

if __name__ == "__main__":
    main()
