"""Benchmark: nanoseconds per neuron-sample of the LIF and Izhikevich step kernels at 48 kHz.

Run with ``.venv/bin/python benchmarks/bench_neurons.py``. Each case steps ``N_NEURONS``
neurons (one coefficient row and one state row each, as a voice pool keeps them) through
``N_SAMPLES`` samples in blocks of ``BLOCK`` samples from an ``@njit`` loop that calls the
per-sample step kernels, after a warm-up run (compilation). The best of ``REPEATS`` timings
is reported. Only a coarse floor is asserted (< 1 us per neuron-sample).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from spikesynth.dsp.izhikevich import (
    IZH_N_COEFFS,
    IZH_N_STATE,
    PRESETS,
    izhikevich_state,
    izhikevich_step,
    prepare_izhikevich,
)
from spikesynth.dsp.lif import (
    LIF_N_COEFFS,
    LIF_N_STATE,
    LIFParameters,
    lif_drive,
    lif_state,
    lif_step,
    prepare_lif,
)

SR = 48000.0
N_NEURONS = 256
N_SAMPLES = 48000  # one second of audio
BLOCK = 256
REPEATS = 3
FLOOR_NS = 1000.0


@njit(nogil=True)  # not cached: numba would not notice changes in the kernels it inlines
def _lif_block(states, coeffs, drive, n_samples, block):
    """Step every neuron through ``n_samples`` samples, block by block; return the spike count."""
    spikes = 0
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        for n in range(states.shape[0]):
            st = states[n]
            cf = coeffs[n]
            i = drive[n]
            for _ in range(start, stop):
                if lif_step(st, i, cf):
                    spikes += 1
    return spikes


@njit(nogil=True)  # not cached: numba would not notice changes in the kernels it inlines
def _izh_block(states, coeffs, drive, n_samples, block, n_sub):
    """As :func:`_lif_block`, with ``n_sub`` Izhikevich steps per sample."""
    spikes = 0
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        for n in range(states.shape[0]):
            st = states[n]
            cf = coeffs[n]
            i = drive[n]
            for _ in range(start, stop):
                for _j in range(n_sub):
                    if izhikevich_step(st, i, cf):
                        spikes += 1
    return spikes


def _lif_case(method: str):
    # tau = 5 ms in seconds; drives spread over 55 Hz .. 1.76 kHz (5 octaves), in tune.
    freqs = 55.0 * 2.0 ** (5.0 * np.arange(N_NEURONS) / N_NEURONS)
    p = LIFParameters(tau=0.005, v_th=1.0, v_reset=0.0, t_ref=0.0, method=method)
    coeffs = np.empty((N_NEURONS, LIF_N_COEFFS))
    states = np.empty((N_NEURONS, LIF_N_STATE))
    drive = np.empty(N_NEURONS)
    for n in range(N_NEURONS):
        prepare_lif(p, 1.0 / SR, out=coeffs[n])
        lif_state(0.0, out=states[n])
        drive[n] = lif_drive(1.0 / freqs[n], p.tau, p.v_th, p.v_reset, p.t_ref)

    def run():
        return _lif_block(states, coeffs, drive, N_SAMPLES, BLOCK)

    return run


def _izh_case(n_sub: int):
    # Model time in ms, one sample = 1000 / SR ms; a mix of the tonic presets and drives.
    names = ["tonic_spiking", "tonic_bursting", "mixed_mode", "spike_frequency_adaptation"]
    coeffs = np.empty((N_NEURONS, IZH_N_COEFFS))
    states = np.empty((N_NEURONS, IZH_N_STATE))
    drive = np.empty(N_NEURONS)
    for n in range(N_NEURONS):
        p = PRESETS[names[n % len(names)]]
        prepare_izhikevich(p, 1000.0 / SR / n_sub, out=coeffs[n])
        izhikevich_state(-70.0, b=p.b, out=states[n])
        drive[n] = 10.0 + 20.0 * n / N_NEURONS

    def run():
        return _izh_block(states, coeffs, drive, N_SAMPLES, BLOCK, n_sub)

    return run


def _time(run) -> tuple[float, int]:
    spikes = run()  # warm-up: compile (or load from cache)
    best = np.inf
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        spikes = run()
        best = min(best, time.perf_counter() - t0)
    return best * 1e9 / (N_NEURONS * N_SAMPLES), spikes


def main() -> None:
    cases = [
        ("LIF exact", _lif_case("exact")),
        ("LIF euler", _lif_case("euler")),
        ("Izhikevich, 1 step/sample", _izh_case(1)),
        ("Izhikevich, 4 sub-steps/sample", _izh_case(4)),
    ]
    print(f"{N_NEURONS} neurons x {N_SAMPLES} samples at {SR / 1000:g} kHz, best of {REPEATS}")
    for label, run in cases:
        ns, spikes = _time(run)
        rt = 1e9 / SR / ns  # neurons one core could run in real time
        print(
            f"  {label:32s} {ns:7.2f} ns/neuron-sample  (~{rt:7.0f} neurons real-time, "
            f"{spikes} spikes)"
        )
        assert spikes > 0, f"{label}: no spikes, the benchmark drives nothing"
        assert ns < FLOOR_NS, f"{label}: {ns:.1f} ns per neuron-sample (floor {FLOOR_NS:g} ns)"


if __name__ == "__main__":
    main()
