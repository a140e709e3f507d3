"""The spiking voice (the default model): membrane → hysteresis → soft threshold → spring.

The kernels are :mod:`spikesynth.dsp.voice`'s; this module tunes them to a note and describes
the model's patch keys. Its drive is solved from the closed-form period, so it plays in tune
without calibration.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .. import params as P
from ..dsp import voice as vk
from ..schema import Spec
from .base import FIRING_MAX_FRACTION, REFRACTORY_MAX_FRACTION, VoiceModel, capped

KEYS = {
    "membrane.tau_ms": Spec("float", 3.0, 0.05, 1000.0, "ms", "membrane leak time constant",
                            curve="exp", smooth=True),
    "membrane.threshold_high": Spec("float", 1.0, 0.05, 10.0, "", "upper threshold: fire",
                                    smooth=True),
    "membrane.threshold_low": Spec("float", 0.2, -10.0, 10.0, "", "lower threshold: stop",
                                   smooth=True),
    "membrane.reset": Spec("float", -0.3, -10.0, 10.0, "", "value discharged toward", smooth=True),
    "firing_ms": Spec("float", 0.25, 0.01, 500.0, "ms", "spike (FIRING) duration", curve="exp",
                      smooth=True),
    "refractory_ms": Spec("float", 0.8, 0.0, 2000.0, "ms", "REFRACTORY duration", smooth=True),
    "softness": Spec("float", 0.5, 0.0, 1.0, "", "soft threshold: 0 hard gate, 1 smooth",
                     smooth=True),
    "spring.frequency_hz": Spec("float", 1800.0, 5.0, 20000.0, "Hz", "spring resonance",
                                curve="exp", smooth=True),
    "spring.damping": Spec("float", 0.3, 0.02, 0.95, "", "damping ratio (under-damped)",
                           smooth=True),
    "spring.keytrack": Spec("float", 0.5, 0.0, 1.0, "", "0 fixed, 1 follows the note", smooth=True),
}
VECTOR_KEYS = tuple(KEYS)
P_TAU_MS = P.MODEL_BASE + 0
P_V_HIGH = P.MODEL_BASE + 1
P_V_LOW = P.MODEL_BASE + 2
P_V_RESET = P.MODEL_BASE + 3
P_FIRING_MS = P.MODEL_BASE + 4
P_REFRACTORY_MS = P.MODEL_BASE + 5
P_SOFTNESS = P.MODEL_BASE + 6
P_SPRING_HZ = P.MODEL_BASE + 7
P_SPRING_DAMPING = P.MODEL_BASE + 8
P_SPRING_KEYTRACK = P.MODEL_BASE + 9
MIDDLE_C_HZ = 261.6255653005986  # spring keytracking pivots here


class SpikingVoice(NamedTuple):
    """Prepared arrays of the spiking voice: only the empty probe buffers."""

    no_drive: np.ndarray  # float64 (0,): for the tracing variant, "no external input"
    no_trace: np.ndarray  # float64 (0, TRACE_FIELDS): for the tracing variant, "no trace"


@njit(cache=True, nogil=True)
def tune(m, V, i, params, tables, sr, freq):
    """Spring, shape and drive for firing rate ``freq`` Hz.

    A voice in FIRING keeps its spring state continuous
    (see :func:`spikesynth.dsp.voice.voice_configure`).
    """
    period = sr / freq
    t_fire = capped(params[P_FIRING_MS], sr, FIRING_MAX_FRACTION, period)
    t_ref = capped(params[P_REFRACTORY_MS], sr, REFRACTORY_MAX_FRACTION, period)
    spring_hz = params[P_SPRING_HZ] * (freq / MIDDLE_C_HZ) ** params[P_SPRING_KEYTRACK]
    spring_hz = min(spring_hz, 0.45 * sr)
    # Controllers may move the thresholds past each other: keep the order for this voice
    # without changing the patch's own values (moving the controller back restores them).
    v_high = params[P_V_HIGH]
    v_low = min(params[P_V_LOW], v_high - 1e-3)
    v_reset = min(params[P_V_RESET], v_low - 1e-3)
    vk.voice_configure(V, i, spring_hz / sr, params[P_SPRING_DAMPING], v_high, v_low, v_reset,
                       params[P_TAU_MS] * sr * 1e-3, t_fire, t_ref, params[P_SOFTNESS])
    vk.voice_set_period(V, i, period)
    V[i, vk.F_NOISE] = params[P.P_NOISE]


@njit(cache=True, nogil=True)
def set_rate(m, V, i, params, tables, sr, freq):
    vk.voice_set_period(V, i, sr / freq)


@njit(cache=True, nogil=True)
def start(m, V, i, params):
    vk.voice_fire(V, i)


@njit(cache=True, nogil=True)
def rest(m, V, i, params):
    pass  # a cleared row is a neuron at rest


@njit(cache=True, nogil=True)
def cut_drive(m, V, i):
    V[i, vk.F_DRIVE] = 0.0


@njit(cache=True, nogil=True, _nrt=False)  # no reference counting (see models/__init__)
def render(m, V, i, rng, out_l, out_r, start, stop):
    return vk.voice_run(V, i, rng, out_l, out_r, start, stop, None, None)


@njit(cache=True, nogil=True)
def trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    return vk.voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace)


@njit(cache=True, nogil=True)
def calibrate(m, params, sr, tables, V, spike_times):
    return False  # in tune by construction; levels measured by the engine


@njit(cache=True, nogil=True)
def dc(m, V, i, mean):
    return 0.0  # the voice knows its own DC exactly


def build(patch, n_slots):
    return SpikingVoice(np.zeros(0), np.zeros((0, vk.TRACE_FIELDS)))


def validate(values, given, network, fail):
    if not values["membrane.threshold_low"] < values["membrane.threshold_high"]:
        fail("expected threshold_low below threshold_high", "membrane.threshold_low")
    if not values["membrane.reset"] < values["membrane.threshold_low"]:
        fail("expected reset below threshold_low (FIRING discharges toward it)", "membrane.reset")


MODEL = VoiceModel(
    name="spiking", record=SpikingVoice, keys=KEYS, vector_keys=VECTOR_KEYS,
    kernels={"tune": tune, "set_rate": set_rate, "start": start, "rest": rest,
             "cut_drive": cut_drive, "render": render, "trace": trace,
             "calibrate": calibrate, "dc": dc},
    build=build, validate=validate,
    plot={"membrane": "membrane v", "threshold": "membrane.threshold_high",
          "threshold_low": "membrane.threshold_low", "reset": "membrane.reset",
          "states": True},
)
