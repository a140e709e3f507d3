"""Network voices: a spiking network per voice (LIF/Izhikevich neurons, conductance synapses,
delays, STDP) at a fixed model step; the note sets how many steps run per sample.

Kernels: :mod:`spikesynth.dsp.network` and :mod:`spikesynth.dsp.network_voice`; the network is
built and checked by :mod:`spikesynth.network`. Tuning: the network's own period, measured once
at prepare time in model time (or ``reference_rate_hz``), is mapped onto each note; a network
that repeats exactly (a whole number of steps) is then phase-locked to the note. Level: the
RMS of the heard mix, and how much of it the band-limited output keeps at each note.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .. import params as P
from ..dsp import network_voice as nv
from ..dsp import voice as vk
from ..schema import Spec
from .base import T_FREQ, T_NORM, T_SCALE, VOICE_RMS, VoiceModel

KEYS = {
    "network.drive": Spec("float", 10.0, -200.0, 200.0, "", "external drive (x each gain)",
                          smooth=True),
    "network.learning_rate": Spec("float", 1.0, 0.0, 100.0, "", "STDP rate (x stdp.lr)",
                                  smooth=True),
    "network.step_ms": Spec("float", 0.1, 0.005, 1.0, "ms", "model step", controllable=False),
    "network.reference_rate_hz": Spec("float", 0.0, 0.0, 2000.0, "Hz",
                                      "model rate played at the note; 0: the network's own "
                                      "period", controllable=False),
}
VECTOR_KEYS = tuple(KEYS)
P_DRIVE = P.MODEL_BASE + 0  # external drive of the network's driven neurons
P_LR = P.MODEL_BASE + 1  # global STDP learning rate (multiplies the spec's stdp.lr)
P_STEP = P.MODEL_BASE + 2  # fixed model step, ms
P_REF_RATE = P.MODEL_BASE + 3  # 0: calibrate from the network's own period
SPEC_KEYS = ("neurons", "synapses", "stdp", "name", "description")
NOMINAL_PERIOD_MS = 25.0  # a network that does not fire periodically plays 40 Hz at its note
NOMINAL_RMS = 0.15
LOW_RATE = 0.25  # steps per sample below which the low-pass keeps what it keeps at this rate
KEPT_GRID = 24  # rates LOW_RATE * 2^(g/2): up to 2^11.5 LOW_RATE, past MAX_STEPS_PER_SAMPLE
MIN_KEPT = 0.1  # a note is raised by at most 20 dB for what its low-pass removes


class NetworkVoice(NamedTuple):
    """Prepared arrays of a network voice."""

    net: nv.NetworkArrays  # built by spikesynth.network.network_arrays
    no_drive: np.ndarray  # float64 (0,): for the tracing variant, "no external input"
    no_trace: np.ndarray  # float64 (0, TRACE_FIELDS): for the tracing variant, "no trace"


@njit(cache=True, nogil=True)
def _rate(m, V, i, tables, freq):
    """Network steps per sample for voice ``i`` to play ``freq`` Hz."""
    note = int(V[i, vk.F_NOTE])
    rate = tables[T_SCALE, note] * freq / tables[T_FREQ, note]
    return rate / m.net.meta[nv.META_STEP]


@njit(cache=True, nogil=True)
def tune(m, V, i, params, tables, sr, freq):
    V[i, vk.F_NOISE] = params[P.P_NOISE]
    V[i, vk.F_PERIOD] = sr / freq
    V[i, nv.N_RATE] = _rate(m, V, i, tables, freq)
    V[i, nv.N_LR] = params[P_LR] * m.net.meta[nv.META_LR]
    V[i, vk.F_DRIVE] = params[P_DRIVE]


@njit(cache=True, nogil=True)
def set_rate(m, V, i, params, tables, sr, freq):
    V[i, nv.N_RATE] = _rate(m, V, i, tables, freq)


@njit(cache=True, nogil=True)
def start(m, V, i, params):
    nv.network_voice_start(V, i, m.net)


@njit(cache=True, nogil=True)
def rest(m, V, i, params):
    nv.network_voice_start(V, i, m.net)  # a network always starts from its spec


@njit(cache=True, nogil=True)
def cut_drive(m, V, i):
    V[i, vk.F_DRIVE] = 0.0


@njit(cache=True, nogil=True, _nrt=False)  # no reference counting (see models/__init__)
def render(m, V, i, rng, out_l, out_r, start, stop):
    return nv.network_voice_run(V, i, rng, out_l, out_r, start, stop, None, None,
                                m.net)


@njit(cache=True, nogil=True, _nrt=False)
def render_pool(m, V, top, rng, out_l, out_r, start, stop):
    """The voices share one low-pass (:func:`spikesynth.dsp.network_voice.network_pool_run`)."""
    return nv.network_pool_run(V, top, rng, out_l, out_r, start, stop, m.net)


@njit(cache=True, nogil=True)
def trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    return nv.network_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace, m.net)


@njit(cache=True, nogil=True)
def calibrate(m, params, sr, tables, V, spike_times):
    """Measure the network once in model time: its period sets every note's time scale; its
    RMS, and how much of it the voice's low-pass keeps at each note's steps per sample, the
    note's level."""
    meta = m.net.meta
    step = meta[nv.META_STEP]
    nv.network_voice_start(V, V.shape[0] - 1, m.net)
    period_steps, rms, kept = nv.network_reference(m.net, params[P_DRIVE], 0.0,
                                                   int(4000.0 / step), spike_times, m.net.heard,
                                                   params[P_LR] * meta[nv.META_LR])
    if params[P_REF_RATE] > 0.0:
        period_ms = 1000.0 / params[P_REF_RATE]
    elif period_steps == period_steps:
        period_ms = period_steps * step
    else:
        period_ms = NOMINAL_PERIOD_MS
    meta[nv.META_PERIOD] = period_ms
    # Kept fraction on a grid of steps per sample (geometric, half-octave spacing), from
    # LOW_RATE up: a network's notes differ only in that rate.
    kept_db = np.full(KEPT_GRID, np.nan)
    if rms > 1e-6:
        rms_kept = 0.0
        for k in range(kept):
            rms_kept += m.net.heard[k] * m.net.heard[k]
        rms_kept = math.sqrt(rms_kept / max(kept, 1))
        for g in range(KEPT_GRID):
            rate = LOW_RATE * 2.0 ** (0.5 * g)
            if rms_kept > 0.0 and rate <= nv.MAX_STEPS_PER_SAMPLE * 2.0:
                band = nv.band_limited_rms(m.net.heard, kept, rate, m.net.knots)
                if band == band:
                    kept_db[g] = 20.0 * math.log10(max(band / rms_kept, MIN_KEPT))
    for note in range(128):
        tables[T_SCALE, note] = period_ms * tables[T_FREQ, note] / sr
        level = VOICE_RMS / (rms if rms > 1e-6 else NOMINAL_RMS)
        rate = tables[T_SCALE, note] / step
        if rate > LOW_RATE:
            pos = 2.0 * math.log2(rate / LOW_RATE)
            g = min(int(pos), KEPT_GRID - 2)
            f = min(pos - g, 1.0)
            a = kept_db[g]
            b = kept_db[g + 1]
            db = a + (b - a) * f if b == b else a
            if db == db:
                level *= 10.0 ** (-db / 20.0)
        elif kept_db[0] == kept_db[0]:
            level *= 10.0 ** (-kept_db[0] / 20.0)
        tables[T_NORM, note] = level
    return True


@njit(cache=True, nogil=True)
def dc(m, V, i, mean):
    return 0.0


def build(patch, n_slots):
    from ..network import network_arrays

    return NetworkVoice(network_arrays(patch, n_slots), np.zeros(0),
                        np.zeros((0, vk.TRACE_FIELDS)))


def validate(values, given, network, fail):
    if values["model"] != "network":
        return
    if "neurons" not in network:
        fail("model network needs network.neurons (and usually network.synapses)", "model")
    from ..network import NetworkSpecError, build_network

    try:
        build_network(network, values["network.step_ms"])
    except NetworkSpecError as e:
        message = str(e)[len(e.key) + 2:]
        fail(message, f"network.{e.key}" if e.key else "network")


def compatible(old, new):
    return old.network == new.network and old["network.step_ms"] == new["network.step_ms"]


def carry_over(old, new):
    """The voices keep the network's running state (the old record's per-voice arrays); the
    means and period are the new ones. Nothing the audio thread reads is written here."""
    return old._replace(net=old.net._replace(mean_v=new.net.mean_v, meta=new.net.meta))


MODEL = VoiceModel(
    name="network", record=NetworkVoice, keys=KEYS, vector_keys=VECTOR_KEYS,
    kernels={"tune": tune, "set_rate": set_rate, "start": start, "rest": rest,
             "cut_drive": cut_drive, "render": render, "render_pool": render_pool,
             "trace": trace, "calibrate": calibrate, "dc": dc},
    build=build, validate=validate, compatible=compatible, carry_over=carry_over,
    reset=lambda record: nv.network_pool_clear(record.net),
    trace_columns=lambda record: len(record.net.mean_v),
    plot={"membrane": "first neuron's membrane", "states": False, "raster": True},
    section_keys=SPEC_KEYS,
)

