"""Benchmark: nanoseconds per neuron-sample of the network kernel at 48 kHz.

Run with ``.venv/bin/python benchmarks/bench_network.py``. Each case builds a 64-neuron
network (all LIF, all Izhikevich, or mixed) with ~10 % random connectivity (~400 synapses,
delays up to 5 ms, 1 in 5 presynaptic neurons inhibitory), optionally with STDP on every
synapse, and steps it through one second of samples (dt = 1/48 ms, model time = real time) from
an ``@njit`` loop calling :func:`spikesynth.dsp.network.network_step` once per sample, as a
voice would. Best of ``REPEATS`` timings (process CPU time: the machine is shared) after a
warm-up (compilation). Reported: ns per
neuron-sample, ns per synapse-sample (the same time divided by the synapse count), and the
real-time factor of one network. Then the fixed cost of a step for a tiny network: the
``half_centre`` patch's two Izhikevich neurons and two synapses (what its network voices step
about ten times per sample), in ns per step. Only a coarse floor is asserted (< 1 us per
neuron-sample).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
from numba import njit

from spikesynth.dsp.network import network_step
from spikesynth.network import build_network, load_network_spec

SR = 48000.0
DT = 1000.0 / SR  # ms
N_NEURONS = 64
P_CONNECT = 0.1
N_SAMPLES = 48000  # one second of audio
REPEATS = 3
FLOOR_NS = 1000.0
HALF_CENTRE = Path(__file__).resolve().parent.parent / "patches" / "half_centre.yaml"
SMALL_STEPS = 1_000_000


@njit(nogil=True)  # not cached: numba would not notice changes in the kernels it inlines
def run_steps(ext, lr, topology, state, n_steps):
    """Step the network ``n_steps`` times with a constant drive; return the spike count."""
    spikes = 0
    for _ in range(n_steps):
        spikes += network_step(ext, lr, topology, state)
    return spikes


def network_spec(models: str, plastic: bool, seed: int = 0) -> dict:
    """The benchmark network: 64 neurons, ~10 % random wiring (428 synapses for seed 0)."""
    rng = np.random.default_rng(seed)
    neurons = []
    for j in range(N_NEURONS):
        lif = models == "lif" or (models == "mixed" and j % 2 == 1)
        if lif:
            neurons.append(
                {
                    "model": "lif",
                    "tau": 10.0,
                    "t_ref": 2.0,
                    "v0": float(rng.uniform(0, 1)),
                    "gain": 1.1 + 0.2 * rng.random(),
                }
            )
        else:
            neurons.append(
                {
                    "model": "izhikevich",
                    "preset": "tonic_spiking",
                    "v0": float(rng.uniform(-70, -60)),
                    "gain": 8 + 4 * rng.random(),
                }
            )
    synapses = [
        {"pre": i, "post": j, "g_max": 0.05, "tau": 5.0, "delay": float(rng.uniform(0, 5)),
         "sign": "inhibitory" if i % 5 == 0 else "excitatory", "w": 0.5, "plastic": plastic}
        for i in range(N_NEURONS) for j in range(N_NEURONS)
        if i != j and rng.random() < P_CONNECT
    ]  # fmt: skip
    return {"neurons": neurons, "synapses": synapses}


def _case(models: str, plastic: bool) -> tuple[float, int, float]:
    best = np.inf
    spikes = 0
    for rep in range(REPEATS + 1):
        network = build_network(network_spec(models, plastic), DT)
        ext = np.ones(N_NEURONS)
        n = 64 if rep == 0 else N_SAMPLES  # rep 0: compile
        t0 = time.process_time()
        spikes = run_steps(ext, 1.0, network.topology, network.state, n)
        elapsed = time.process_time() - t0
        if rep > 0:
            best = min(best, elapsed)
    return best, network.n_synapses, spikes


def small_network_ns_per_step() -> float:
    """Best CPU ns per step of the half_centre patch's 2-neuron network (drive 10, as its
    patch), after a warm-up."""
    spec = load_network_spec(HALF_CENTRE)
    best = np.inf
    for rep in range(REPEATS + 1):
        network = build_network(spec, 0.1)
        ext = np.full(network.n_neurons, 10.0)
        n = 64 if rep == 0 else SMALL_STEPS
        t0 = time.process_time()
        run_steps(ext, 0.0, network.topology, network.state, n)
        elapsed = time.process_time() - t0
        if rep > 0:
            best = min(best, elapsed)
    return best / SMALL_STEPS * 1e9


def vector_thresholds() -> list[str]:
    """The vector widths of the threshold comparisons (``fcmp oge <N x double>``, only in the
    neuron passes) in the compiled benchmark loop: evidence that the passes vectorised."""
    llvm = run_steps.inspect_llvm(run_steps.signatures[0])
    return sorted(set(re.findall(r"fcmp oge (<\d+ x double>)", llvm)))


def main() -> None:
    print(f"network kernel, {N_NEURONS} neurons, p = {P_CONNECT}, {N_SAMPLES} samples at "
          f"{SR / 1000:g} kHz (dt = {DT:.4f} ms), best of {REPEATS}")  # fmt: skip
    worst = 0.0
    for models in ("lif", "izhikevich", "mixed"):
        for plastic in (False, True):
            seconds, n_syn, spikes = _case(models, plastic)
            per_neuron = seconds / (N_NEURONS * N_SAMPLES) * 1e9
            per_synapse = seconds / (n_syn * N_SAMPLES) * 1e9
            rt = (N_SAMPLES / SR) / seconds
            worst = max(worst, per_neuron)
            label = f"{models}{' + STDP' if plastic else ''}"
            print(f"  {label:18s} {n_syn:4d} synapses  {per_neuron:7.2f} ns/neuron-sample  "
                  f"{per_synapse:6.2f} ns/synapse-sample  {rt:7.1f}x real time  "
                  f"({spikes / N_NEURONS:.0f} spikes/neuron/s)")  # fmt: skip
    widths = vector_thresholds()
    print(f"  neuron passes vectorised: {', '.join(widths) if widths else 'NO'} threshold tests")
    print(f"  half_centre (2 Izhikevich neurons, 2 synapses): {small_network_ns_per_step():.1f} "
          "ns per step")  # fmt: skip
    assert worst < FLOOR_NS, f"{worst:.1f} ns per neuron-sample exceeds the {FLOOR_NS} ns floor"


if __name__ == "__main__":
    main()
