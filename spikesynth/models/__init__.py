"""The voice-model registry, and the one place where the engine dispatches on the model.

Each voice model is one module (``spiking``, ``lif``, ``izhikevich``, ``network``) exposing a
:class:`~spikesynth.models.base.VoiceModel`. :func:`register` adds one, also from outside the
package: nothing else needs editing. The engine's compiled code calls the seam functions below
(``voice_tune``, ``voice_render``, ...) with the model's record as the first argument; numba
resolves each call at compile time from the record's type (an ``overload``), so a patch
compiles the engine once for its own model and nothing for the others.
"""

from __future__ import annotations

from numba.extending import overload

from ..dsp import voice as vk
from .base import SEAM, SEAM_OPTIONAL, VoiceModel

_BY_NAME: dict[str, VoiceModel] = {}
_BY_RECORD: dict[type, VoiceModel] = {}
_listeners = []  # called with each newly registered model (the patch schema grows)


def register(model: VoiceModel) -> VoiceModel:
    """Add a voice model (its ``name`` becomes a valid ``model:`` value). Thread: main."""
    if model.name in _BY_NAME and _BY_NAME[model.name] is not model:
        raise ValueError(f"a voice model named {model.name!r} is already registered")
    _BY_NAME[model.name] = model
    _BY_RECORD[model.record] = model
    for listener in _listeners:
        listener(model)
    return model


def get(name: str) -> VoiceModel:
    """The registered model called ``name`` (KeyError if none)."""
    return _BY_NAME[name]


def names() -> tuple:
    """Every registered model name, in registration order."""
    return tuple(_BY_NAME)


def on_register(listener):
    """Call ``listener(model)`` for every model registered so far and from now on."""
    _listeners.append(listener)
    for model in _BY_NAME.values():
        listener(model)


def _kernel(record_type, name):
    model = _BY_RECORD.get(getattr(record_type, "instance_class", None))
    if model is None:
        raise TypeError(f"no voice model has records of type {record_type}")
    return model.kernels[name]


# --- the seam: one stub per compiled function, resolved from the record's type -----------
def voice_tune(m, V, i, params, tables, sr, freq):
    """Set voice ``i`` to fire at ``freq`` Hz (see ``base.SEAM``)."""
    raise NotImplementedError("compiled code only")


def voice_set_rate(m, V, i, params, tables, sr, freq):
    raise NotImplementedError("compiled code only")


def voice_start(m, V, i, params):
    raise NotImplementedError("compiled code only")


def voice_rest(m, V, i, params):
    raise NotImplementedError("compiled code only")


def voice_cut_drive(m, V, i):
    raise NotImplementedError("compiled code only")


def voice_render(m, V, i, rng, out_l, out_r, start, stop):
    raise NotImplementedError("compiled code only")


def voice_trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    raise NotImplementedError("compiled code only")


def voice_render_pool(m, V, top, rng, out_l, out_r, start, stop):
    """Add samples ``start..stop-1`` of every sounding voice; returns the voices reset."""
    raise NotImplementedError("compiled code only")


def voice_calibrate(m, params, sr, tables, V, spike_times):
    raise NotImplementedError("compiled code only")


def voice_dc(m, V, i, mean):
    raise NotImplementedError("compiled code only")


_OPTS = {"nogil": True}
# The render seam runs per voice per block on the audio thread and never allocates: compiled
# without numba's reference counting (``_nrt=False``), it skips the atomic increments and
# decrements of every array argument (about 70 ns a call, measured); an allocation there
# would not compile.
_AUDIO_OPTS = {"nogil": True, "_nrt": False}


@overload(voice_tune, jit_options=_OPTS, inline="always")
def _ov_tune(m, V, i, params, tables, sr, freq):
    impl = _kernel(m, "tune")
    return lambda m, V, i, params, tables, sr, freq: impl(m, V, i, params, tables, sr, freq)


@overload(voice_set_rate, jit_options=_OPTS, inline="always")
def _ov_set_rate(m, V, i, params, tables, sr, freq):
    impl = _kernel(m, "set_rate")
    return lambda m, V, i, params, tables, sr, freq: impl(m, V, i, params, tables, sr, freq)


@overload(voice_start, jit_options=_OPTS, inline="always")
def _ov_start(m, V, i, params):
    impl = _kernel(m, "start")
    return lambda m, V, i, params: impl(m, V, i, params)


@overload(voice_rest, jit_options=_OPTS, inline="always")
def _ov_rest(m, V, i, params):
    impl = _kernel(m, "rest")
    return lambda m, V, i, params: impl(m, V, i, params)


@overload(voice_cut_drive, jit_options=_OPTS, inline="always")
def _ov_cut_drive(m, V, i):
    impl = _kernel(m, "cut_drive")
    return lambda m, V, i: impl(m, V, i)


@overload(voice_render, jit_options=_AUDIO_OPTS, inline="always")
def _ov_render(m, V, i, rng, out_l, out_r, start, stop):
    impl = _kernel(m, "render")
    return lambda m, V, i, rng, out_l, out_r, start, stop: impl(m, V, i, rng, out_l, out_r,
                                                                  start, stop)


@overload(voice_trace, jit_options=_OPTS, inline="always")
def _ov_trace(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace):
    impl = _kernel(m, "trace")
    return (lambda m, V, i, rng, out_l, out_r, start, stop, drive_in, trace:
            impl(m, V, i, rng, out_l, out_r, start, stop, drive_in, trace))


def _kernels(record_type):
    return _BY_RECORD[record_type.instance_class].kernels


@overload(voice_render_pool, jit_options=_AUDIO_OPTS, inline="always")
def _ov_render_pool(m, V, top, rng, out_l, out_r, start, stop):
    _kernel(m, "render")  # the TypeError for a record of no model
    kernels = _kernels(m)
    if "render_pool" in kernels:
        impl = kernels["render_pool"]
        return lambda m, V, top, rng, out_l, out_r, start, stop: impl(m, V, top, rng, out_l,
                                                                        out_r, start, stop)
    render = kernels["render"]
    env_off = vk.ENV_OFF
    n_fields = vk.N_FIELDS

    def each_voice(m, V, top, rng, out_l, out_r, start, stop):
        resets = 0
        for i in range(top):
            if V[i, vk.F_ENV_STAGE] == env_off:
                continue
            if not render(m, V, i, rng, out_l, out_r, start, stop):
                for k in range(n_fields):
                    V[i, k] = 0.0
                resets += 1
        return resets

    return each_voice


@overload(voice_calibrate, jit_options=_OPTS, inline="always")
def _ov_calibrate(m, params, sr, tables, V, spike_times):
    impl = _kernel(m, "calibrate")
    return lambda m, params, sr, tables, V, spike_times: impl(m, params, sr, tables, V,
                                                              spike_times)


@overload(voice_dc, jit_options=_OPTS, inline="always")
def _ov_dc(m, V, i, mean):
    impl = _kernel(m, "dc")
    return lambda m, V, i, mean: impl(m, V, i, mean)


assert {f"voice_{name}" for name in (*SEAM, *SEAM_OPTIONAL)} <= set(globals())

# The bundled models, in the order ``model:`` lists them.
from . import izhikevich, lif, network, spiking  # noqa: E402

for _module in (spiking, lif, izhikevich, network):
    register(_module.MODEL)
