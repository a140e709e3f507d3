"""The LIF voice: a leaky integrate-and-fire membrane whose potential is the audio.

Kernels: :mod:`spikesynth.dsp.lif` (the neuron) and :func:`spikesynth.dsp.model_voice.lif_voice_run`
(the voice). Time unit: samples, exact method: the drive is solved from the closed-form period
``T = t_ref + τ·ln((I − v_reset)/(I − v_th))``, and the exact step places the reset inside the
sample, so the period is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .. import params as P
from ..dsp import lif as dlif
from ..dsp import model_voice as mv
from ..dsp import voice as vk
from ..schema import Spec
from .base import REFRACTORY_MAX_FRACTION, T_DC, VoiceModel, capped

KEYS = {
    "lif.tau_ms": Spec("float", 4.0, 0.05, 1000.0, "ms", "membrane time constant", curve="exp",
                       smooth=True),
    "lif.threshold": Spec("float", 1.0, 0.01, 100.0, "", "v_th", smooth=True),
    "lif.reset": Spec("float", 0.0, -100.0, 100.0, "", "v_reset", smooth=True),
    "lif.refractory_ms": Spec("float", 0.0, 0.0, 1000.0, "ms", "t_ref (shortened on high notes)",
                              smooth=True),
    "lif.method": Spec("choice", "exact", choices=("euler", "exact"), controllable=False),
}
VECTOR_KEYS = tuple(KEYS)
P_TAU_MS = P.MODEL_BASE + 0
P_V_TH = P.MODEL_BASE + 1
P_V_RESET = P.MODEL_BASE + 2
P_REF_MS = P.MODEL_BASE + 3
P_METHOD = P.MODEL_BASE + 4  # 0 euler, 1 exact (as spikesynth.dsp.lif)


class LifVoice(NamedTuple):
    """Prepared arrays of the LIF voice: only the empty probe buffers."""

    no_drive: np.ndarray  # float64 (0,): for the tracing variant, "no external input"
    no_trace: np.ndarray  # float64 (0, TRACE_FIELDS): for the tracing variant, "no trace"


@njit(cache=True, nogil=True)
def tune(m, V, i, params, tables, sr, freq):
    period = sr / freq
    note = int(V[i, vk.F_NOTE])
    V[i, vk.F_PERIOD] = period
    V[i, vk.F_DC] = tables[T_DC, note]
    t_ref = capped(params[P_REF_MS], sr, REFRACTORY_MAX_FRACTION, period)
    tau = params[P_TAU_MS] * sr * 1e-3
    v_th = params[P_V_TH]
    v_reset = min(params[P_V_RESET], v_th - 1e-3)  # order kept against controllers
    dlif.set_lif_coeffs(V[i, mv.L_COEFFS:mv.L_COEFFS + dlif.LIF_N_COEFFS], 1.0, tau, v_th,
                        v_reset, t_ref, int(params[P_METHOD]))
    V[i, vk.F_DRIVE] = dlif.lif_drive(period, tau, v_th, v_reset, t_ref)
    V[i, mv.L_SCALE] = 1.0 / (v_th - v_reset)
    V[i, vk.F_NOISE] = params[P.P_NOISE]


@njit(cache=True, nogil=True)
def set_rate(m, V, i, params, tables, sr, freq):
    c = mv.L_COEFFS
    V[i, vk.F_DRIVE] = dlif.lif_drive(sr / freq, V[i, c + dlif.LIF_TAU], V[i, c + dlif.LIF_V_TH],
                                      V[i, c + dlif.LIF_V_RESET], V[i, c + dlif.LIF_T_REF])


@njit(cache=True, nogil=True)
def start(m, V, i, params):
    V[i, mv.L_STATE + dlif.LIF_V] = V[i, mv.L_COEFFS + dlif.LIF_V_TH]
    V[i, mv.L_HELD] = 0.0


@njit(cache=True, nogil=True)
def rest(m, V, i, params):
    pass


@njit(cache=True, nogil=True)
def cut_drive(m, V, i):
    V[i, vk.F_DRIVE] = 0.0


@njit(cache=True, nogil=True, _nrt=False)  # no reference counting (see models/__init__)
def render(m, V, i, rng, out_l, out_r, start, stop):
    return mv.lif_voice_run(V, i, rng, out_l, out_r, start, stop, None, None)


@njit(cache=True, nogil=True)
def trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    return mv.lif_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace)


@njit(cache=True, nogil=True)
def calibrate(m, params, sr, tables, V, spike_times):
    return False  # the closed-form drive is exact


@njit(cache=True, nogil=True)
def dc(m, V, i, mean):
    return mean / V[i, mv.L_SCALE]


def build(patch, n_slots):
    return LifVoice(np.zeros(0), np.zeros((0, vk.TRACE_FIELDS)))


def validate(values, given, network, fail):
    if not values["lif.reset"] < values["lif.threshold"]:
        fail("expected reset below threshold", "lif.reset")


MODEL = VoiceModel(
    name="lif", record=LifVoice, keys=KEYS, vector_keys=VECTOR_KEYS,
    kernels={"tune": tune, "set_rate": set_rate, "start": start, "rest": rest,
             "cut_drive": cut_drive, "render": render, "trace": trace,
             "calibrate": calibrate, "dc": dc},
    build=build, validate=validate,
    plot={"membrane": "membrane v", "threshold": "lif.threshold", "reset": "lif.reset",
          "states": False},
)
