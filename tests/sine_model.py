"""A voice model added from outside the package: a sine "neuron" (a phase that fires once per
cycle and is heard as a pure sine). Used by test_seam.py to show that adding a model is one
module plus one ``register`` call, with no edit of the engine."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from spikesynth import params as P
from spikesynth.dsp import voice as vk
from spikesynth.dsp.voice import ENV_OFF, envelope_step
from spikesynth.models import register
from spikesynth.models.base import VoiceModel
from spikesynth.schema import Spec

KEYS = {"sine.level": Spec("float", 1.0, 0.0, 2.0, "", "amplitude of the sine")}
P_LEVEL = P.MODEL_BASE + 0
S_PHASE = vk.F_M  # cycles, 0..1
S_STEP = vk.F_M + 1  # cycles per sample


class SineVoice(NamedTuple):
    no_drive: np.ndarray  # float64 (0,)
    no_trace: np.ndarray  # float64 (0, TRACE_FIELDS)


@njit(cache=True, nogil=True)
def tune(m, V, i, params, tables, sr, freq):
    V[i, S_STEP] = freq / sr
    V[i, vk.F_PERIOD] = sr / freq
    V[i, vk.F_DRIVE] = params[P_LEVEL]


@njit(cache=True, nogil=True)
def set_rate(m, V, i, params, tables, sr, freq):
    V[i, S_STEP] = freq / sr


@njit(cache=True, nogil=True)
def start(m, V, i, params):
    V[i, S_PHASE] = 0.0


@njit(cache=True, nogil=True)
def rest(m, V, i, params):
    pass


@njit(cache=True, nogil=True)
def cut_drive(m, V, i):
    V[i, vk.F_DRIVE] = 0.0


@njit(cache=True, nogil=True)
def trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    phase = V[i, S_PHASE]
    step = V[i, S_STEP]
    level = V[i, vk.F_DRIVE] * V[i, vk.F_AMP]
    stage = int(V[i, vk.F_ENV_STAGE])
    env = V[i, vk.F_ENV]
    for n in range(start, stop):
        stage, env = envelope_step(stage, env, V[i, vk.F_ATT_STEP], V[i, vk.F_DEC_COEF],
                                   V[i, vk.F_SUSTAIN], V[i, vk.F_REL_COEF], V[i, vk.F_FADE_STEP])
        x = math.sin(2.0 * math.pi * phase) * level * env
        out_l[n] += x * V[i, vk.F_GAIN_L]
        out_r[n] += x * V[i, vk.F_GAIN_R]
        if trace.shape[0] > 0:
            trace[n, vk.TR_V] = phase
            trace[n, vk.TR_STATE] = 1.0 if phase + step >= 1.0 else 0.0
            trace[n, vk.TR_OUT] = x
        phase += step
        if phase >= 1.0:
            phase -= 1.0
        if stage == ENV_OFF:
            break
    V[i, S_PHASE] = phase
    V[i, vk.F_ENV_STAGE] = stage
    V[i, vk.F_ENV] = env
    return True


@njit(cache=True, nogil=True)
def render(m, V, i, rng, out_l, out_r, start, stop):
    return trace(m, V, i, rng, out_l, out_r, start, stop, m.no_drive, m.no_trace)


@njit(cache=True, nogil=True)
def calibrate(m, params, sr, tables, V, spike_times):
    return False


@njit(cache=True, nogil=True)
def dc(m, V, i, mean):
    return 0.0


MODEL = register(VoiceModel(
    name="sine", record=SineVoice, keys=KEYS, vector_keys=tuple(KEYS),
    kernels={"tune": tune, "set_rate": set_rate, "start": start, "rest": rest,
             "cut_drive": cut_drive, "render": render, "trace": trace,
             "calibrate": calibrate, "dc": dc},
    build=lambda patch, n_slots: SineVoice(np.zeros(0), np.zeros((0, vk.TRACE_FIELDS))),
))
