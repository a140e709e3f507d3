"""What every voice model shares: per-note table rows, constants, and the model description.

A voice model is one module of :mod:`spikesynth.models` holding

* a record type (a ``typing.NamedTuple`` of arrays: what the model prepared for a patch). Its
  numba type is what the engine dispatches on, so the engine is compiled once per model, and
  only for the models a patch uses;
* the compiled functions of the seam (see :class:`VoiceModel`), each taking the record first;
* a :class:`VoiceModel` description: its patch keys, how to build the record, how to check a
  patch, and hints for plots and the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from numba import njit

from .. import params as P
from ..dsp import voice as vk
from ..dsp.voice import ENV_DECAY

# Per-note tables computed at prepare time (rows of the ``tables`` array, shape (N_TABLES, 128)).
T_NORM = 0  # level normalisation
T_DC = 1  # the voice's mean output (model voices; the spiking voice knows its DC exactly)
T_SCALE = 2  # Izhikevich and networks: model ms per sample (Izhikevich nan: uncalibrated)
T_SUBSTEPS = 3  # Izhikevich: sub-steps per sample
T_FREQ = 4  # the note's frequency (Hz, unbent, the patch's transpose in), 0: key unmapped
N_TABLES = 5

VOICE_RMS = 0.1  # a full-velocity voice's level before the patch gain
FIRING_MAX_FRACTION = 0.25  # of the period: high notes shorten the spike ...
REFRACTORY_MAX_FRACTION = 0.35  # ... and the refractory time, so the neuron can keep up

# The compiled functions every voice model provides (first argument: the model's record).
SEAM = {
    "tune": "(m, V, i, params, tables, sr, freq): set voice i to fire at freq Hz (note-on, "
            "bend, controllers): the prepare-time maths of a note",
    "set_rate": "(m, V, i, params, tables, sr, freq): change only the firing rate (vibrato, "
                "glide): drive or time scale, not the shape",
    "start": "(m, V, i, params): the neuron fires at the note-on sample",
    "rest": "(m, V, i, params): the neuron at rest (a voice driven by a given current)",
    "cut_drive": "(m, V, i): remove the voice's input (release with release_drive: off)",
    "render": "(m, V, i, rng, out_l, out_r, start, stop) -> ok: add samples start..stop-1",
    "trace": "(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace) -> ok: the same, "
             "recording traces (and taking the input from drive_in when it is not empty)",
    "calibrate": "(m, params, sr, tables, V, spike_times) -> levels_done: per-note tables",
    "dc": "(m, V, i, mean) -> the T_DC entry for a measured mean output",
}
# Seam functions a model may provide; without them the registry uses the generic one.
SEAM_OPTIONAL = {
    "render_pool": "(m, V, top, rng, out_l, out_r, start, stop) -> resets: add samples "
                   "start..stop-1 of every sounding voice among slots 0..top-1, clearing the "
                   "row of a voice whose state became non-finite (generic: each voice's "
                   "render in turn; a model whose voices share work, such as one low-pass "
                   "for the pool, renders them together)",
}


@dataclass
class VoiceModel:
    """A voice model's Python side: what the registry, the patch loader and the engine need.

    Attributes
    ----------
    name : str
        The patch's ``model:`` value.
    record : type
        The NamedTuple class of the prepared arrays (the engine dispatches on it).
    keys : dict
        The model's own patch keys (dotted path -> :class:`spikesynth.schema.Spec`).
    vector_keys : tuple of str
        The keys in the parameter vector, in order, from ``params.MODEL_BASE`` on.
    kernels : dict
        The compiled seam functions by name (see ``SEAM``).
    build : callable
        ``build(patch, n_slots) -> record`` (main thread: allocates).
    validate : callable, optional
        ``validate(values, given, network, fail)``: relations between keys; may fill values
        (presets). ``fail(message, key)`` raises the patch error.
    compatible : callable
        ``compatible(old_patch, new_patch) -> bool``: sounding voices can carry on.
    carry_over : callable
        ``carry_over(old_record, new_record) -> record`` for a compatible swap.
    trace_columns : callable
        Extra trace columns (one per neuron for networks).
    plot : dict
        Hints for plots and the UI (what the membrane is, threshold keys, units).
    section_keys : tuple of str
        Keys of the model's section that are specs of its own (e.g. ``network.neurons``).
    reset : callable
        ``reset(record)``: clear DSP state the record holds for the whole pool (a reset
        engine starts silent); per-voice state is reset by ``start``.
    """

    name: str
    record: type
    keys: dict
    vector_keys: tuple
    kernels: dict
    build: Callable
    validate: Callable | None = None
    compatible: Callable = field(default=lambda old, new: True)
    carry_over: Callable = field(default=lambda old, new: new)
    trace_columns: Callable = field(default=lambda record: 0)
    plot: dict = field(default_factory=dict)
    section_keys: tuple = ()
    reset: Callable = field(default=lambda record: None)

    def __post_init__(self):
        missing = set(SEAM) - set(self.kernels)
        if missing:
            raise TypeError(f"voice model {self.name!r} lacks {', '.join(sorted(missing))}")
        unknown = set(self.kernels) - set(SEAM) - set(SEAM_OPTIONAL)
        if unknown:
            raise TypeError(f"voice model {self.name!r}: {', '.join(sorted(unknown))} is not "
                            "a seam function")
        for key in self.vector_keys:
            if key not in self.keys:
                raise TypeError(f"voice model {self.name!r}: vector key {key} has no Spec")

    def index(self, key: str) -> int:
        """The parameter-vector index of one of this model's vector keys."""
        return P.MODEL_BASE + self.vector_keys.index(key)


@njit(cache=True, nogil=True)
def note_frequency(params, note, bend):
    """12-TET frequency in Hz of ``note`` (+ transpose, + ``bend`` semitones).

    The default of the per-note table ``T_FREQ`` (a patch without a tuning); the engine
    plays from the table (see :func:`table_frequency`).
    """
    return params[P.P_A4] * 2.0 ** ((note + params[P.P_TRANSPOSE] + bend - 69.0) / 12.0)


@njit(cache=True, nogil=True)
def table_frequency(params, base, tables, note, bend):
    """Frequency in Hz of ``note`` from the per-note table, bent by ``bend`` semitones.

    ``tables[T_FREQ, note] · 2^((bend + transpose - transpose₀)/12)``: the table holds each
    note's frequency (12-TET from ``a4``, or a Scala tuning) with the patch's own transpose
    ``base[P_TRANSPOSE]`` in; a live change of ``transpose`` (``params``) and the bend act as
    frequency ratios, whatever the tuning. 0 for an unmapped key.
    """
    shift = bend + params[P.P_TRANSPOSE] - base[P.P_TRANSPOSE]
    return tables[T_FREQ, int(note)] * 2.0 ** (shift / 12.0)


@njit(cache=True, nogil=True)
def solo_fields(V, i, note):
    """Clear row ``i`` and make it a lone voice on ``note``: unit gain, flat envelope."""
    for k in range(vk.N_FIELDS):
        V[i, k] = 0.0
    V[i, vk.F_NOTE] = note
    V[i, vk.F_ENV_STAGE] = ENV_DECAY
    V[i, vk.F_ENV] = 1.0
    V[i, vk.F_SUSTAIN] = 1.0
    V[i, vk.F_DEC_COEF] = 1.0
    V[i, vk.F_AMP] = 1.0
    V[i, vk.F_GAIN_L] = 1.0


@njit(cache=True, nogil=True)
def capped(value_ms, sr, fraction, period):
    """A duration in samples, at most ``fraction`` of ``period`` (high notes keep up)."""
    return min(value_ms * sr * 1e-3, fraction * period)


