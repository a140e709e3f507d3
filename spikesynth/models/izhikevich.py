"""The Izhikevich voice: an Izhikevich membrane (mV) whose potential is the audio.

Kernels: :mod:`spikesynth.dsp.izhikevich` and
:func:`spikesynth.dsp.model_voice.izhikevich_voice_run`.
The note sets the model's *time scale* (model ms per sample, in sub-steps of at most
``max_step_ms``): ``calibrated`` tuning measures, per note at prepare time, the time scale
that makes the discrete system's steady period the note's period; ``free`` tuning scales it
with the note and lets the rate follow the input current.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .. import params as P
from ..dsp import izhikevich as izh
from ..dsp import model_voice as mv
from ..dsp import voice as vk
from ..dsp.izhikevich import CELL_CLASSES, PRESETS
from ..schema import Spec
from .base import T_DC, T_FREQ, T_SCALE, T_SUBSTEPS, VoiceModel, solo_fields

MAX_SUBSTEPS = 32  # sub-steps per sample: beyond this, longer steps (real time)
REST_MV = -65.0  # the papers' resting potential
V_PEAK_MV = 30.0
LOWEST_CALIBRATED_HZ = 16.0  # lower notes are scaled from the lowest calibrated one
REFERENCE_NOTE = 69  # the first guess of the time scale is measured at A4

# Presets by name: the 2003 cell classes (RS, FS, CH, ...) and the 20 behaviours.
IZH_PRESETS = {**CELL_CLASSES, **PRESETS}
PRESET_FIELDS = ("a", "b", "c", "d", "e", "f", "g", "u_vref", "u_leak")

KEYS = {
    "izhikevich.preset": Spec("choice", "RS", choices=tuple(IZH_PRESETS), controllable=False,
                              doc="fills a..u_leak unless given"),
    "izhikevich.a": Spec("float", 0.02, -1.0, 2.0, "1/ms", smooth=True),
    "izhikevich.b": Spec("float", 0.2, -2.0, 2.0, smooth=True),
    "izhikevich.c": Spec("float", -65.0, -90.0, 0.0, "mV", smooth=True),
    "izhikevich.d": Spec("float", 8.0, -30.0, 30.0, "mV/ms", smooth=True),
    "izhikevich.e": Spec("float", 0.04, 0.0, 1.0, "1/(mV ms)", smooth=True),
    "izhikevich.f": Spec("float", 5.0, 0.0, 20.0, "1/ms", smooth=True),
    "izhikevich.g": Spec("float", 140.0, 0.0, 500.0, "mV/ms", smooth=True),
    "izhikevich.u_vref": Spec("float", 0.0, -100.0, 100.0, "mV", smooth=True),
    "izhikevich.u_leak": Spec("float", 1.0, 0.0, 1.0, smooth=True),
    "izhikevich.current": Spec("float", 10.0, -100.0, 200.0, "mV/ms", "input I", smooth=True),
    "izhikevich.tuning": Spec("choice", "calibrated", choices=("calibrated", "free"),
                              controllable=False, doc="calibrated: in tune; free: rate follows I"),
    "izhikevich.reference_rate_hz": Spec("float", 40.0, 0.1, 1000.0, "Hz",
                                         "free tuning: model rate that maps to the note",
                                         smooth=True),
    "izhikevich.max_step_ms": Spec("float", 0.25, 0.005, 1.0, "ms", "longest sub-step"),
}
VECTOR_KEYS = tuple(k for k in KEYS if k != "izhikevich.preset")
(P_A, P_B, P_C, P_D, P_E, P_F, P_G, P_U_VREF, P_U_LEAK, P_CURRENT, P_TUNING, P_REF_RATE,
 P_MAX_STEP) = range(P.MODEL_BASE, P.MODEL_BASE + len(VECTOR_KEYS))


class IzhikevichVoice(NamedTuple):
    """Prepared arrays of the Izhikevich voice: only the empty probe buffers."""

    no_drive: np.ndarray  # float64 (0,): for the tracing variant, "no external input"
    no_trace: np.ndarray  # float64 (0, TRACE_FIELDS): for the tracing variant, "no trace"


@njit(cache=True, nogil=True)
def _calibrated(tables, n):
    """Whether note ``n`` was calibrated (not failed, not scaled from the lowest one)."""
    m = tables[T_SCALE, n]
    return tables[T_FREQ, n] >= LOWEST_CALIBRATED_HZ and m == m and tables[T_SUBSTEPS, n] >= 1.0


@njit(cache=True, nogil=True)
def _bracket(tables, h):
    """The calibrated notes whose sub-steps ``m/n`` (model ms) are nearest below and above
    ``h``: ``(lo, hi, below)``. Below the smallest sub-step (``below`` true): the smallest
    and the nearest at least 10 % larger, for a straight extrapolation (the method is first
    order: ``T(h)`` is linear in ``h`` as ``h → 0``). Above the largest: the largest for
    both. ``(-1, -1, False)`` if no note was calibrated.
    """
    lo = -1
    hi = -1
    h_lo = 0.0
    h_hi = 0.0
    for n in range(128):
        if not _calibrated(tables, n):
            continue
        step = tables[T_SCALE, n] / tables[T_SUBSTEPS, n]
        if step <= h and (lo < 0 or step > h_lo):
            lo = n
            h_lo = step
        if step >= h and (hi < 0 or step < h_hi):
            hi = n
            h_hi = step
    if lo >= 0 or hi < 0:
        return lo, (hi if hi >= 0 else lo), False
    # Below every calibrated sub-step (a note bent far down): hi is the smallest.
    second = -1
    h_second = 0.0
    for n in range(128):
        if not _calibrated(tables, n):
            continue
        step = tables[T_SCALE, n] / tables[T_SUBSTEPS, n]
        if step >= 1.1 * h_hi and (second < 0 or step < h_second):
            second = n
            h_second = step
    if second < 0:
        return hi, hi, False
    return hi, second, True


@njit(cache=True, nogil=True)
def _calibrated_ratio(tables, note, freq, substeps):
    """Model ms per sample per Hz for voice rate ``freq`` with ``substeps`` sub-steps a sample.

    The note's own calibration at its own frequency. Otherwise (a bend, a glide, vibrato):
    the discrete system's steady period in model ms, ``T(h)``, depends on the sub-step ``h``
    alone (the sample grid only samples it) and ``m/f = T(h)/sr``, so every calibrated note,
    whatever its sub-steps, is a point ``(m/n, m/f)`` of one smooth curve. The ratio is where
    that curve, linear between the two calibrated points around ``h``, meets the voice's own
    ``h = freq·ratio/substeps``: solved exactly inside the bracket (one scan of the table
    unless the solution leaves it); extrapolated below the smallest calibrated sub-step (a
    note bent far down), constant above the largest.
    """
    f0 = tables[T_FREQ, note]
    ratio = tables[T_SCALE, note] / f0
    if f0 == freq and substeps == tables[T_SUBSTEPS, note]:
        return ratio
    c = freq / substeps  # h = c · ratio
    for _ in range(4):
        lo, hi, below = _bracket(tables, c * ratio)
        if lo < 0:
            return ratio
        r_lo = tables[T_SCALE, lo] / tables[T_FREQ, lo]
        h_lo = tables[T_SCALE, lo] / tables[T_SUBSTEPS, lo]
        h_hi = tables[T_SCALE, hi] / tables[T_SUBSTEPS, hi]
        if h_hi <= h_lo:  # above the curve's end (or exactly on a point): the ratio there
            if r_lo == ratio:
                return ratio
            ratio = r_lo
            continue
        slope = (tables[T_SCALE, hi] / tables[T_FREQ, hi] - r_lo) / (h_hi - h_lo)
        ratio = (r_lo - slope * h_lo) / (1.0 - slope * c)
        h = c * ratio
        if (h_lo <= h or below) and h <= h_hi:
            return ratio
    return ratio


@njit(cache=True, nogil=True)
def _timescale(V, i, params, tables, sr, freq, substeps):
    """Model ms per sample and sub-steps of voice ``i`` for rate ``freq`` Hz (calibrated
    tuning: with ``substeps`` sub-steps, or the note's own when 0)."""
    note = int(V[i, vk.F_NOTE])
    m = tables[T_SCALE, note]
    if params[P_TUNING] == 0.0 and m == m:  # calibrated (and calibration succeeded)
        if substeps <= 0:
            substeps = int(tables[T_SUBSTEPS, note])
        return freq * _calibrated_ratio(tables, note, freq, substeps), substeps
    m = freq / params[P_REF_RATE] * 1000.0 / sr
    return m, min(max(1, int(math.ceil(m / params[P_MAX_STEP]))), MAX_SUBSTEPS)


@njit(cache=True, nogil=True)
def tune(m, V, i, params, tables, sr, freq):
    note = int(V[i, vk.F_NOTE])
    V[i, vk.F_PERIOD] = sr / freq
    V[i, vk.F_DC] = tables[T_DC, note]
    izh.set_izhikevich_coeffs(
        V[i, mv.Z_COEFFS:mv.Z_COEFFS + izh.IZH_N_COEFFS], 1.0, params[P_A], params[P_B],
        params[P_C], params[P_D], params[P_E], params[P_F], params[P_G], params[P_U_VREF],
        params[P_U_LEAK], V_PEAK_MV)
    scale, substeps = _timescale(V, i, params, tables, sr, freq, 0)
    mv.izhikevich_set_timescale(V, i, scale, substeps)
    V[i, mv.Z_CURRENT] = params[P_CURRENT]
    V[i, mv.Z_SCALE] = mv.IZH_AUDIO_SCALE
    V[i, vk.F_NOISE] = params[P.P_NOISE]


@njit(cache=True, nogil=True)
def set_rate(m, V, i, params, tables, sr, freq):
    scale, _ = _timescale(V, i, params, tables, sr, freq, int(V[i, mv.Z_SUBSTEPS]))
    mv.izhikevich_set_timescale(V, i, scale, V[i, mv.Z_SUBSTEPS])


@njit(cache=True, nogil=True)
def start(m, V, i, params):
    V[i, mv.Z_STATE + izh.IZH_V] = V_PEAK_MV
    V[i, mv.Z_STATE + izh.IZH_U] = params[P_B] * REST_MV
    V[i, mv.Z_HELD] = 0.0


@njit(cache=True, nogil=True)
def rest(m, V, i, params):
    V[i, mv.Z_STATE + izh.IZH_V] = REST_MV
    V[i, mv.Z_STATE + izh.IZH_U] = params[P_B] * REST_MV


@njit(cache=True, nogil=True)
def cut_drive(m, V, i):
    V[i, mv.Z_CURRENT] = 0.0


@njit(cache=True, nogil=True, _nrt=False)  # no reference counting (see models/__init__)
def render(m, V, i, rng, out_l, out_r, start, stop):
    return mv.izhikevich_voice_run(V, i, rng, out_l, out_r, start, stop, None, None)


@njit(cache=True, nogil=True)
def trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    return mv.izhikevich_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace)


@njit(cache=True, nogil=True)
def _solo(m, V, i, params, tables, sr, note):
    """Row ``i`` of ``V``: a lone voice on ``note``, at rest, as the papers start."""
    solo_fields(V, i, note)
    freq = tables[T_FREQ, int(note)]
    tune(m, V, i, params, tables, sr, freq if freq > 0.0 else 440.0)  # unmapped: any rate
    rest(m, V, i, params)


@njit(cache=True, nogil=True)
def calibrate(m, params, sr, tables, V, spike_times):
    """Calibrated tuning: every audible note's time scale, measured on the discrete system."""
    if params[P_TUNING] != 0.0:
        return False
    i = V.shape[0] - 1  # the scratch row (a variable: no copy compiled for a constant)
    # The neuron's own steady period in model ms (fine steps): the first guess.
    _solo(m, V, i, params, tables, sr, float(REFERENCE_NOTE))
    step = min(0.02, params[P_MAX_STEP])
    mv.izhikevich_set_timescale(V, i, step, 1.0)
    ref_ms = mv.measure_period_samples(V, i, int(4000.0 / step), spike_times) * step
    if not ref_ms == ref_ms:  # does not fire periodically: free tuning it is
        return False
    for note in range(128):
        if tables[T_FREQ, note] < LOWEST_CALIBRATED_HZ:
            continue
        _solo(m, V, i, params, tables, sr, note)
        target = sr / tables[T_FREQ, note]
        scale, n = mv.calibrate_izhikevich(V, i, target, params[P_MAX_STEP], ref_ms / target,
                                           spike_times)
        tables[T_SCALE, note] = scale
        tables[T_SUBSTEPS, note] = max(n, 1)
    lowest = 0
    while lowest < 127 and not tables[T_SCALE, lowest] == tables[T_SCALE, lowest]:
        lowest += 1
    for note in range(lowest):  # the model's time scale is proportional to f
        tables[T_SCALE, note] = (tables[T_SCALE, lowest] * tables[T_FREQ, note]
                                 / tables[T_FREQ, lowest])
        tables[T_SUBSTEPS, note] = tables[T_SUBSTEPS, lowest]
    return False


@njit(cache=True, nogil=True)
def dc(m, V, i, mean):
    return mean / V[i, mv.Z_SCALE]


def build(patch, n_slots):
    return IzhikevichVoice(np.zeros(0), np.zeros((0, vk.TRACE_FIELDS)))


def validate(values, given, network, fail):
    """A preset fills the parameters that the patch does not give."""
    preset = IZH_PRESETS[values["izhikevich.preset"]]
    for name in PRESET_FIELDS:
        if f"izhikevich.{name}" not in given:
            values[f"izhikevich.{name}"] = float(getattr(preset, name))


MODEL = VoiceModel(
    name="izhikevich", record=IzhikevichVoice, keys=KEYS, vector_keys=VECTOR_KEYS,
    kernels={"tune": tune, "set_rate": set_rate, "start": start, "rest": rest,
             "cut_drive": cut_drive, "render": render, "trace": trace,
             "calibrate": calibrate, "dc": dc},
    build=build, validate=validate,
    plot={"membrane": "membrane v (mV)", "threshold_mv": V_PEAK_MV, "states": False},
)
