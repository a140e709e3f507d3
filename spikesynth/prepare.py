"""Preparation: a patch becomes a :class:`~spikesynth.engine_state.Program` (main thread;
allocates).

Free functions, usable without a synth: :func:`prepare_program` builds the model's record
through its :class:`~spikesynth.models.base.VoiceModel`, the parameter vector, the controller
table and the per-note tables (:func:`note_tables`: the model's calibration, then each note's
level and mean, measured by running one voice of the model alone).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import models, tablecache
from . import params as P
from .dsp import voice as vk
from .engine_state import SOLO, Program
from .models import voice_calibrate, voice_dc, voice_render, voice_start, voice_tune
from .models.base import (
    N_TABLES,
    T_DC,
    T_FREQ,
    T_NORM,
    T_SCALE,
    T_SUBSTEPS,
    VOICE_RMS,
    note_frequency,
    solo_fields,
)

LEVEL_SILENT_RMS = 1e-3  # below this a voice is taken as silent at the patch's own drive
NOMINAL_RMS = 0.15  # a spiking membrane's RMS in audio units: the level a silent voice gets
MAX_MEASURE_S = 0.6
KEY_PROBE_STEP = 6  # semitones between the notes whose K-weighted level is measured
K_SHELF_DB, K_SHELF_HZ, K_SHELF_Q = 4.0, 1500.0, 1.0 / math.sqrt(2.0)  # BS.1770 pre-filter
K_HIGHPASS_HZ, K_HIGHPASS_Q = 38.0, 0.5


# Compiled as the engine's internals are (no wrappers, no reference counting): numba compiles
# an overload once per set of caller flags, so the seam calls here reuse the engine's.
@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _solo_note(m, V, i, rng, buf, params, tables, sr, note, start):
    """``note`` alone on voice ``i`` into ``buf[0]``/``buf[1]``: a settling time, then a
    window of whole periods where they fit (so a measurement does not ripple by note).
    Returns ``(settle, settle + window)``. Prepare time."""
    solo_fields(V, i, note)
    voice_tune(m, V, i, params, tables, sr, tables[T_FREQ, note])
    voice_start(m, V, i, params)
    period = V[i, vk.F_PERIOD]
    settle = int(min(max(4.0 * period, 0.05 * sr), 0.3 * sr))
    window = int(min(max(4.0 * period, 0.05 * sr), 0.3 * sr))
    if window >= period > 0.0:
        window = int(period * math.floor(window / period))
    total = settle + window
    for n in range(total):
        buf[0, n] = 0.0
        buf[1, n] = 0.0
    voice_render(m, V, i, rng, buf[0], buf[1], start, total)
    return settle, total


@njit(cache=True, nogil=True)
def fill_note_tables(m, params, sr, tables, V, rng, buf, spike_times, freqs, sos, probe, ratio):
    """Per-note tables (prepare time): the model's calibration, then each note's level and mean,
    and the loudness ratio of the probe notes.

    Level: the gain that makes a note's steady-state RMS ``VOICE_RMS``; mean: the model
    voices' DC (in membrane units), subtracted per voice. ``V`` (1, N_FIELDS), ``rng`` (1,),
    ``buf`` (4, >= 0.6 s) and ``spike_times`` are scratch; ``params`` is a copy (noise off).
    ``freqs`` (128,): each note's frequency in Hz (a tuning; 0 for an unmapped key, which gets
    no level), or empty for 12-tone equal temperament from ``a4``. ``ratio[note]`` (128,), for
    each ``probe[note] != 0``: the lone voice's RMS over its K-weighted RMS (``sos`` from
    :func:`k_weighting`; both channels, each about its mean), nan where the key is unmapped
    or silent (one entry point, one render per note: a first run compiles the voice's
    calibration chain once).
    """
    for note in range(128):
        ratio[note] = math.nan
    for note in range(128):
        tables[T_NORM, note] = 1.0
        tables[T_DC, note] = 0.0
        tables[T_SCALE, note] = math.nan
        tables[T_SUBSTEPS, note] = 1.0
        if freqs.shape[0] == 0:
            tables[T_FREQ, note] = note_frequency(params, note, 0.0)
        else:
            tables[T_FREQ, note] = freqs[note] * 2.0 ** (params[P.P_TRANSPOSE] / 12.0)
    # A model that calibrates itself fills its own levels: then only the probe notes render.
    levelled = voice_calibrate(m, params, sr, tables, V, spike_times)
    i = V.shape[0] - 1
    start = i * 0  # a variable, not a constant: one compiled copy of each callee
    for note in range(128):
        if not tables[T_FREQ, note] > 0.0:  # unmapped: never sounds
            if not levelled:
                tables[T_NORM, note] = 0.0
            continue
        if levelled and (probe[note] == 0 or tables[T_NORM, note] == 0.0):
            continue
        settle, total = _solo_note(m, V, i, rng, buf, params, tables, sr, note, start)
        if not levelled:
            window = total - settle
            mean = 0.0
            for n in range(settle, settle + window):
                mean += buf[0, n]
            mean /= window
            s = 0.0
            for n in range(settle, settle + window):
                s += (buf[0, n] - mean) * (buf[0, n] - mean)
            rms = math.sqrt(s / window)
            tables[T_NORM, note] = VOICE_RMS / (rms if rms > LEVEL_SILENT_RMS else NOMINAL_RMS)
            tables[T_DC, note] = voice_dc(m, V, i, mean)
        if probe[note] != 0:
            ratio[note] = _k_ratio(buf, sos, settle, total)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _k_ratio(buf, sos, settle, total):
    """RMS (each channel about its mean) over K-weighted RMS (its high-pass removes the DC) of
    the note in ``buf[0:2, :total]``, from ``settle``; ``buf[2:4]`` scratch. nan for
    silence."""
    window = total - settle
    plain = 0.0
    weighted = 0.0
    for c in range(2):
        mean = 0.0
        for n in range(settle, total):
            mean += buf[c, n]
        mean /= window
        for n in range(settle, total):
            plain += (buf[c, n] - mean) * (buf[c, n] - mean)
        for n in range(total):
            buf[2 + c, n] = buf[c, n]
        for stage in range(sos.shape[0]):
            _biquad(sos, stage, buf[2 + c], total)
        for n in range(settle, total):
            weighted += buf[2 + c, n] * buf[2 + c, n]
    if plain > 0.0 and weighted > 1e-30 * plain:
        return math.sqrt(plain / weighted)
    return math.nan


def k_weighting(samplerate: float) -> np.ndarray:
    """BS.1770's K-weighting as two biquads (float64 (2, 5): b0 b1 b2 a1 a2, normalised):
    the shelf and the high-pass of the audio-EQ cookbook at ``samplerate``. Thread: any."""
    sos = np.zeros((2, 5))
    big_a = 10.0 ** (K_SHELF_DB / 40.0)
    w = 2.0 * math.pi * K_SHELF_HZ / samplerate
    alpha = math.sin(w) / (2.0 * K_SHELF_Q)
    c = math.cos(w)
    root = 2.0 * math.sqrt(big_a) * alpha
    b = (big_a * ((big_a + 1) + (big_a - 1) * c + root),
         -2.0 * big_a * ((big_a - 1) + (big_a + 1) * c),
         big_a * ((big_a + 1) + (big_a - 1) * c - root))
    a = ((big_a + 1) - (big_a - 1) * c + root, 2.0 * ((big_a - 1) - (big_a + 1) * c),
         (big_a + 1) - (big_a - 1) * c - root)
    sos[0] = (b[0] / a[0], b[1] / a[0], b[2] / a[0], a[1] / a[0], a[2] / a[0])
    w = 2.0 * math.pi * K_HIGHPASS_HZ / samplerate
    alpha = math.sin(w) / (2.0 * K_HIGHPASS_Q)
    c = math.cos(w)
    a0 = 1.0 + alpha
    sos[1] = ((1 + c) / 2 / a0, -(1 + c) / a0, (1 + c) / 2 / a0, -2 * c / a0, (1 - alpha) / a0)
    return sos


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _biquad(sos, k, x, n):
    """Filter ``x[:n]`` in place through biquad row ``k`` of ``sos`` (direct form II)."""
    z1 = 0.0
    z2 = 0.0
    for t in range(n):
        w = x[t] - sos[k, 3] * z1 - sos[k, 4] * z2
        x[t] = sos[k, 0] * w + sos[k, 1] * z1 + sos[k, 2] * z2
        z2 = z1
        z1 = w


def key_probes() -> np.ndarray:
    """Which notes' loudness is measured (uint8 (128,), 1 at every ``KEY_PROBE_STEP``-th note
    and the top one)."""
    probe = np.zeros(128, dtype=np.uint8)
    probe[np.arange(0, 128, KEY_PROBE_STEP)] = 1
    probe[127] = 1
    return probe


def key_loudness(ratio) -> np.ndarray:
    """Each note's level correction (float64 (128,)) from the probe notes' ``ratio`` (RMS over
    K-weighted RMS, nan where not measured), interpolated in note number."""
    ok = np.isfinite(ratio)
    if not ok.any():
        return np.ones(128)
    notes = np.arange(128)
    return np.exp(np.interp(notes, notes[ok], np.log(ratio[ok])))


def tuning_frequencies(tuning) -> np.ndarray:
    """A :class:`~spikesynth.tuning.Tuning` as the ``freqs`` of :func:`fill_note_tables`
    (unmapped keys 0); empty for None (12-tone equal temperament from ``a4``)."""
    if tuning is None:
        return np.zeros(0)
    return np.where(tuning.mapped, tuning.frequencies, 0.0).astype(np.float64)


def measure_note_tables(record, quiet, samplerate, freqs) -> np.ndarray:
    """The per-note tables, measured (no cache): :func:`fill_note_tables`, then the key
    loudness. ``quiet``: the parameter vector with the noise off; ``freqs`` as
    :func:`tuning_frequencies` gives. Thread: main."""
    tables = np.zeros((N_TABLES, 128))
    buf = np.zeros((4, int(MAX_MEASURE_S * samplerate)))
    ratio = np.zeros(128)
    fill_note_tables(record, quiet, float(samplerate), tables, np.zeros((1, vk.N_FIELDS)),
                     np.ones(1, dtype=np.uint64), buf, np.zeros(512), freqs,
                     k_weighting(samplerate), key_probes(), ratio)
    tables[T_NORM] *= key_loudness(ratio)
    return tables


def note_tables(record, params, samplerate, tuning=None) -> np.ndarray:
    """The per-note tables (float64, shape (N_TABLES, 128)) of a model record. Thread: main.

    ``tuning``: a :class:`~spikesynth.tuning.Tuning` (None: 12-TET from ``a4``). Measured
    once per distinct input and kept in memory and on disk (:mod:`spikesynth.tablecache`):
    a hit is bit-identical to :func:`measure_note_tables`, the record included.
    """
    quiet = params.copy()
    quiet[P.P_NOISE] = 0.0
    return tablecache.cached(measure_note_tables, record, quiet, float(samplerate),
                             tuning_frequencies(tuning), (N_TABLES, 128))


def prepare_program(patch, samplerate, n_slots) -> Program:
    """Everything the engine needs to play ``patch`` (allocates). Thread: main."""
    model = models.get(patch["model"])
    record = model.build(patch, n_slots)
    base = patch.param_vector()
    tables = note_tables(record, base, samplerate, getattr(patch, "tuning", None))
    solo = None if patch["voice_mode"] == "poly" else SOLO  # poly: no mono code compiled
    return Program(record, base.copy(), base, patch.controller_table(), tables,
                   patch.ramp_table(), solo)
