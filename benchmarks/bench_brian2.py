"""Benchmark: spikesynth's network kernel side by side with Brian2's C++ standalone mode.

Run with ``.venv/bin/python benchmarks/bench_brian2.py [--seconds S] [--models lif,izhikevich]``.

The network is that of ``bench_network.py`` (64 neurons, ~10 % random wiring: 428 synapses,
delays uniform in 0..5 ms, 1 in 5 presynaptic neurons inhibitory, conductance synapses with
tau 5 ms, constant drive), stepped for 10 s of model time at dt = 0.1 ms, by

* spikesynth: :func:`spikesynth.dsp.network.network_step` in an ``@njit`` loop, as a voice
  steps it (best of three runs after a warm-up; wall time, and the process's CPU time);
* Brian2 (``set_device("cpp_standalone")``, its fastest mode; ``-O3 -ffast-math`` by its
  defaults): the same neurons, wiring, delays, weights and conductance synapses written in
  its equations (one state per neuron and receptor, as it is idiomatic there; Euler for the
  membrane). Its run time is the one it measures itself (``device._last_run_time``: the
  simulation loop only, measured with ``std::clock``, i.e. CPU time); the code generation
  and compilation time is printed apart.

Brian2 lives in a separate virtual environment, created on first use in
``benchmarks/.brian2-venv`` (packages ``brian2`` and ``numpy<2.4``); set ``BRIAN2_PYTHON`` to use
another interpreter that has Brian2. Without a C++ compiler the Brian2 side is skipped with a
message. Printed: ms per run for both, spikes per neuron per second (both should fire in the
same regime), and the ratio of CPU times (Brian2's clock is CPU time; on a shared machine
wall time also counts the other processes'). No assertion beyond "ran": the figures are
for reading.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_network import N_NEURONS, network_spec, run_steps  # noqa: E402

from spikesynth.network import build_network  # noqa: E402

DT_MS = 0.1
VENV = Path(__file__).resolve().parent / ".brian2-venv"
REPEATS = 3

# The Brian2 side: a script run by the Brian2 interpreter with the network as JSON.
BRIAN2_SCRIPT = r'''
import json, sys, time
spec = json.load(open(sys.argv[1]))
from brian2 import (NeuronGroup, Synapses, SpikeMonitor, Network, defaultclock, device, ms,
                    second, set_device, prefs)
set_device("cpp_standalone", build_on_run=False)
prefs.devices.cpp_standalone.openmp_threads = 0
defaultclock.dt = spec["dt_ms"] * ms
n = spec["n"]
model = spec["model"]
if model == "lif":
    eqs = """
    dv/dt = (I - v + ge * (Ee - v) + gi * (Ei - v)) / tau : 1 (unless refractory)
    dge/dt = -ge / tau_s : 1
    dgi/dt = -gi / tau_s : 1
    I : 1
    tau : second (constant)
    Ee : 1 (constant)
    Ei : 1 (constant)
    tau_s : second (constant)
    """
    G = NeuronGroup(n, eqs, threshold="v >= 1", reset="v = 0", refractory=spec["t_ref_ms"] * ms,
                    method="euler")
    G.tau = spec["tau_ms"] * ms
    G.Ee = 1.5
    G.Ei = -0.5
else:
    eqs = """
    dv/dt = (0.04 * v**2 + 5 * v + 140 - u + I + ge * (Ee - v) + gi * (Ei - v)) / ms : 1
    du/dt = a * (b * v - u) / ms : 1
    dge/dt = -ge / tau_s : 1
    dgi/dt = -gi / tau_s : 1
    I : 1
    a : 1 (constant)
    b : 1 (constant)
    c : 1 (constant)
    d : 1 (constant)
    Ee : 1 (constant)
    Ei : 1 (constant)
    tau_s : second (constant)
    """
    G = NeuronGroup(n, eqs, threshold="v >= 30", reset="v = c; u = u + d", method="euler")
    G.a, G.b, G.c, G.d = spec["a"], spec["b"], spec["c"], spec["d"]
    G.u = [spec["b"] * v for v in spec["v0"]]
    G.Ee = 0.0
    G.Ei = -80.0
G.v = spec["v0"]
G.I = spec["drive"]
G.tau_s = spec["tau_s_ms"] * ms
objects = [G]
for receptor, var in (("exc", "ge"), ("inh", "gi")):
    syn = spec[receptor]
    if not syn["pre"]:
        continue
    S = Synapses(G, G, "w : 1 (constant)", on_pre=f"{var}_post += w")
    S.connect(i=syn["pre"], j=syn["post"])
    S.w = syn["w"]
    S.delay = [d * ms for d in syn["delay_ms"]]
    objects.append(S)
mon = SpikeMonitor(G)
objects.append(mon)
net = Network(*objects)
net.run(spec["seconds"] * second)
t0 = time.perf_counter()
device.build(directory=sys.argv[2], compile=True, run=True, debug=False, clean=True)
total = time.perf_counter() - t0
print(json.dumps({"run_s": float(device._last_run_time), "build_and_run_s": total,
                  "spikes": int(mon.num_spikes)}))
'''


def brian2_python() -> str | None:
    """An interpreter with Brian2: ``BRIAN2_PYTHON``, or the benchmark's own venv (created
    when missing). None (with a message) when it cannot be made."""
    given = os.environ.get("BRIAN2_PYTHON")
    if given:
        return given
    python = VENV / "bin" / "python"
    if python.exists():
        return str(python)
    print(f"creating {VENV} (brian2, numpy<2.4): a minute or two, once")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "brian2", "numpy<2.4"],
                       check=True)  # fmt: skip
    except (subprocess.CalledProcessError, OSError) as e:
        shutil.rmtree(VENV, ignore_errors=True)
        print(f"skipped Brian2: could not install it ({e})")
        return None
    return str(python)


def brian2_spec(models: str, seconds: float) -> dict:
    """The bench_network spec (one model for all neurons) in the terms of the Brian2 script."""
    spec = network_spec(models, plastic=False)
    neurons = spec["neurons"]
    out = {"model": models, "n": len(neurons), "dt_ms": DT_MS, "seconds": seconds,
           "v0": [nd["v0"] for nd in neurons], "drive": [nd["gain"] for nd in neurons],
           "tau_s_ms": 5.0}  # fmt: skip
    if models == "lif":
        out.update(tau_ms=neurons[0]["tau"], t_ref_ms=neurons[0]["t_ref"])
    else:
        out.update(a=0.02, b=0.2, c=-65.0, d=6.0)  # the tonic_spiking preset
    for receptor, sign in (("exc", "excitatory"), ("inh", "inhibitory")):
        syns = [s for s in spec["synapses"] if s["sign"] == sign]
        if syns:
            steps = [round(s["delay"] / DT_MS) * DT_MS for s in syns]  # ours: whole steps
            out[receptor] = {"pre": [s["pre"] for s in syns], "post": [s["post"] for s in syns],
                             "w": [s["w"] * s["g_max"] for s in syns], "delay_ms": steps}
        else:
            out[receptor] = {"pre": []}
    return out


def ours(models: str, seconds: float) -> tuple[float, float, int, int]:
    """Best wall and CPU seconds of our kernel, the spike count and the synapse count."""
    n_steps = int(round(seconds * 1000.0 / DT_MS))
    best_wall = best_cpu = np.inf
    spikes = 0
    for rep in range(REPEATS + 1):
        network = build_network(network_spec(models, plastic=False), DT_MS)
        ext = np.ones(N_NEURONS)
        steps = 64 if rep == 0 else n_steps  # rep 0: compile
        w0, c0 = time.perf_counter(), time.process_time()
        spikes = run_steps(ext, 1.0, network.topology, network.state, steps)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if rep > 0:
            best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu, spikes, network.n_synapses


def theirs(python: str, models: str, seconds: float) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="spikesynth-brian2-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(brian2_spec(models, seconds)))
        script = Path(tmp) / "run_brian2.py"
        script.write_text(BRIAN2_SCRIPT)
        proc = subprocess.run([python, str(script), str(spec_path), str(Path(tmp) / "build")],
                              capture_output=True, text=True, cwd=tmp)  # fmt: skip
        if proc.returncode != 0:
            print(f"  Brian2 failed:\n{proc.stderr[-2000:]}")
            return None
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="model time, s")
    parser.add_argument("--models", default="lif,izhikevich")
    args = parser.parse_args()
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    python = brian2_python() if compiler else None
    if not compiler:
        print("skipped Brian2: no C++ compiler found (g++, c++ or clang++); ours only")
    n_steps = int(round(args.seconds * 1000.0 / DT_MS))
    print(f"{N_NEURONS} neurons, {args.seconds:g} s of model time at dt = {DT_MS} ms "
          f"({n_steps} steps)")  # fmt: skip
    for models in args.models.split(","):
        wall, cpu, spikes, n_syn = ours(models, args.seconds)
        rate = spikes / N_NEURONS / args.seconds
        print(f"  {models:10s} {n_syn} synapses")
        print(f"    spikesynth  {wall * 1e3:8.1f} ms wall ({cpu * 1e3:.1f} ms CPU, "
              f"{cpu / (n_steps * N_NEURONS) * 1e9:.2f} ns per neuron-step)  "
              f"{rate:6.1f} spikes/neuron/s")  # fmt: skip
        if python is None:
            continue
        result = theirs(python, models, args.seconds)
        if result is None:
            continue
        run_ms = result["run_s"] * 1e3
        print(f"    Brian2      {run_ms:8.1f} ms run (its own clock; code generation, "
              f"compilation and start-up {result['build_and_run_s'] - result['run_s']:.1f} s)  "
              f"{result['spikes'] / N_NEURONS / args.seconds:6.1f} spikes/neuron/s")
        print(f"    Brian2 / spikesynth: {run_ms / (cpu * 1e3):.2f}x (CPU time; "
              f"{run_ms / (wall * 1e3):.2f}x against our wall time)")  # fmt: skip


if __name__ == "__main__":
    main()
