"""Neural effects, offline: the ear's spikes resynthesised, and a spiking vocoder.

The host behind ``spikesynth process PATCH IN -o OUT`` (an offline host, beside
:mod:`spikesynth.offline`). Until the engine accepts an external per-voice drive (see the
report of the ear branch), both effects run here, outside :class:`spikesynth.Synth`:

``effect: resynth``
    Each ear channel's spike train excites one spiking voice (:mod:`spikesynth.dsp.voice`:
    membrane → FIRING pulse → spring) whose spring is tuned to the channel's centre
    frequency, with a bandwidth of ``resynth.bandwidth_erb`` ERBs. Every spike triggers the
    voice at its sub-sample time; the spring rings at ``cf``: you hear what the spikes encode.
``effect: vocoder``
    A channel vocoder whose analysis is the spiking ear: the synth patch (``vocoder.synth``)
    plays the notes given (``--note`` / ``--midi``); its output is split by the same
    gammatone bank, and each band is scaled by the input channel's spike rate (the spike
    surface with ``vocoder.envelope_ms``, over the neuron's maximum rate). The output's
    partials are the held notes' harmonics, shaped by what the ear hears.

Both add no look-ahead latency: output sample ``n`` depends on input up to ``n``. (The
gammatone filters' own group delay, about ``3 / (2π 1.019 ERB(cf))``, is 1.4 ms at 1 kHz.)
Output is deterministic and block-size invariant; ``mix.dry`` / ``mix.wet`` mix the input
back in. Thread: main throughout (the streaming classes allocate only in ``__init__``).

Patch file (YAML; ``name``, ``description``, ``effect`` and the sections in
:data:`EFFECT_SCHEMA`, every key with a range and a default)::

    effect: resynth
    ear: {channels: 64, fmin_hz: 50, threshold_dbfs: -50}
    resynth: {bandwidth_erb: 1.0}
    mix: {dry: 0.0, wet: 1.0, gain_db: 0.0}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import ear as E
from .dsp import cochlea as K
from .dsp import voice as vk
from .patch import PatchError, load_patch, read_raw_patch

BLOCK = 512
EFFECTS = ("resynth", "vocoder")
CEILING = 10 ** (-0.3 / 20)  # output samples are clipped here (and counted)


class Key(NamedTuple):
    """One key of an effect patch: kind (``float``, ``int``, ``str``), range, default, unit."""

    kind: str
    lo: float | None
    hi: float | None
    default: object
    unit: str = ""


#: section → key → :class:`Key`. The ``ear:`` keys are :class:`spikesynth.ear.EarParameters`.
EFFECT_SCHEMA: dict[str, dict[str, Key]] = {
    "ear": {
        "channels": Key("int", 1, 512, 64),
        "fmin_hz": Key("float", 10.0, 20000.0, 50.0, "Hz"),
        "fmax_hz": Key("float", 20.0, 40000.0, None, "Hz (default min(8000, 0.4 samplerate))"),
        "compression": Key("float", 0.01, 1.0, 0.3),
        "ihc_cutoff_hz": Key("float", 10.0, 20000.0, 1000.0, "Hz"),
        "threshold_dbfs": Key("float", -150.0, 20.0, -50.0, "dBFS"),
        "tau_ms": Key("float", 0.01, 1000.0, 1.0, "ms"),
        "threshold": Key("float", 1e-6, 1e6, 1.0),
        "reset": Key("float", -1e6, 1e6, 0.0),
        "refractory_ms": Key("float", 0.0, 1000.0, 1.0, "ms"),
    },
    "resynth": {
        "bandwidth_erb": Key("float", 0.05, 4.0, 1.0, "ERB"),
        "spike_ms": Key("float", 0.01, 0.5, 0.05, "ms"),
    },
    "vocoder": {
        "synth": Key("str", None, None, None, "(a synth patch, relative to this file)"),
        "envelope_ms": Key("float", 1.0, 500.0, 10.0, "ms"),
    },
    "mix": {
        "dry": Key("float", 0.0, 1.0, 0.0),
        "wet": Key("float", 0.0, 1.0, 1.0),
        "gain_db": Key("float", -60.0, 40.0, 0.0, "dB"),
    },
}
_TOP = ("name", "description", "effect", *EFFECT_SCHEMA)


class EffectPatch(NamedTuple):
    """A validated effect patch (see :func:`load_effect`)."""

    name: str
    effect: str
    ear: dict
    resynth: dict
    vocoder: dict
    mix: dict
    path: Path | None

    def ear_parameters(self) -> E.EarParameters:
        return E.EarParameters(**{k: v for k, v in self.ear.items() if v is not None})


def effect_from_dict(raw: dict, source="<effect>", lines=None) -> EffectPatch:
    """Validate a plain dict into an :class:`EffectPatch`. Raises :class:`PatchError`."""
    lines = lines or {}

    def fail(message, key=None):
        raise PatchError(source, message, lines.get(key) if key else None, key)

    if "effect" not in raw:
        fail("not an effect patch: expected a top-level effect: resynth or vocoder (synth "
             "patches are played with render / play)")
    for key in raw:
        if key not in _TOP:
            fail(f"unknown key (known: {', '.join(_TOP)})", str(key))
    effect = raw.get("effect")
    if effect not in EFFECTS:
        fail(f"expected one of {', '.join(EFFECTS)}, got {effect!r}", "effect")
    sections = {}
    for section, keys in EFFECT_SCHEMA.items():
        given = raw.get(section) or {}
        if not isinstance(given, dict):
            fail(f"expected a mapping of {section}.* keys, got {given!r}", section)
        values = {k: spec.default for k, spec in keys.items()}
        for k, v in given.items():
            path = f"{section}.{k}"
            if k not in keys:
                fail(f"unknown key (known in {section}: {', '.join(keys)})", path)
            spec = keys[k]
            if spec.kind == "str":
                if not isinstance(v, str):
                    fail(f"expected a string {spec.unit}, got {v!r}", path)
                values[k] = v
                continue
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            if spec.kind == "int":
                ok = ok and float(v).is_integer()
            if not ok or not (spec.lo <= v <= spec.hi):
                noun = "a whole number" if spec.kind == "int" else "a number"
                fail(f"expected {noun} from {spec.lo:g} to {spec.hi:g} {spec.unit}".rstrip()
                     + f", got {v!r}", path)
            values[k] = int(v) if spec.kind == "int" else float(v)
        sections[section] = values
    ear = sections["ear"]
    if not ear["reset"] < ear["threshold"]:
        fail("expected reset below threshold", "ear.reset")
    name = raw.get("name", Path(str(source)).stem)
    return EffectPatch(str(name), effect, ear, sections["resynth"], sections["vocoder"],
                       sections["mix"], Path(source) if source != "<effect>" else None)


def load_effect(path) -> EffectPatch:
    """Read and validate an effect patch file. Raises :class:`PatchError`."""
    raw, lines = read_raw_patch(path)
    return effect_from_dict(raw, path, lines)


def is_effect_patch(path) -> bool:
    """True if the YAML file at ``path`` has a top-level ``effect:`` key."""
    raw, _ = read_raw_patch(path)
    return "effect" in raw


# --------------------------------------------------------------------------------------------
# Resynthesis: spikes -> voices tuned to the channels' centre frequencies.


def _pulse_gain(V, i, omega, samples=256) -> float:
    """Ringing amplitude of voice ``i``'s spring after one FIRING pulse (unit drive scale).

    ``|∫ d(t) e^{-iωt} dt| ω²/ω_d`` with ``d = Σ q_k E^k`` over the FIRING time (numerical
    integration at prepare time).
    """
    t_fire = V[i, vk.F_TFIRE]
    t = (np.arange(samples) + 0.5) * (t_fire / samples)
    e = np.exp(-t / V[i, vk.F_TAUF])
    d = V[i, vk.F_Q0] + e * (V[i, vk.F_Q1] + e * (V[i, vk.F_Q2] + e * V[i, vk.F_Q3]))
    spectrum = abs(np.sum(d * np.exp(-1j * omega * t)) * (t_fire / samples))
    return spectrum * omega * omega / V[i, vk.F_WD]


class Resynth:
    """The ear's spikes exciting one spiking voice per channel, tuned to its centre.

    Thread: main to construct (allocates); :meth:`process` allocates nothing beyond its
    fixed buffers (it is the shape a live host would call).
    """

    V_HIGH, V_LOW, V_RESET = 1.0, 0.2, -0.3
    MEMBRANE_TAU = 0.1  # samples: the voice's membrane follows its input within the sample
    REFRACTORY_MS = 0.2  # the voice's own; shorter than the ear's, so no spike is lost

    def __init__(self, samplerate, params: EffectPatch, max_block=BLOCK):
        self.ear = E.Ear(samplerate, max_block=max_block, params=params.ear_parameters())
        sr = self.ear.samplerate
        if params.resynth["spike_ms"] + self.REFRACTORY_MS >= self.ear.params.refractory_ms \
                and self.ear.params.refractory_ms > 0:
            raise ValueError("resynth.spike_ms + 0.2 ms must be shorter than ear.refractory_ms")
        ch = self.ear.channels
        self.V = np.zeros((ch, vk.N_FIELDS))
        self.rng = np.ones(ch, dtype=np.uint64)
        bw = params.resynth["bandwidth_erb"]
        for i, cf in enumerate(self.ear.cf_hz):
            damping = min(0.9, max(0.002, bw * float(E.erb_hz(cf)) / (2.0 * cf)))
            vk.voice_configure(self.V, i, cf / sr, damping, self.V_HIGH, self.V_LOW,
                               self.V_RESET, self.MEMBRANE_TAU,
                               params.resynth["spike_ms"] * sr / 1000.0,
                               self.REFRACTORY_MS * sr / 1000.0, 0.5)
            self.V[i, vk.F_AMP] = 1.0 / _pulse_gain(self.V, i, 2 * math.pi * cf / sr)
        self.V[:, vk.F_ENV_STAGE] = vk.ENV_DECAY
        self.V[:, vk.F_ENV] = 1.0
        self.V[:, vk.F_SUSTAIN] = 1.0
        self.V[:, vk.F_DEC_COEF] = 1.0
        self.V[:, vk.F_GAIN_L] = 1.0
        self.V[:, vk.F_GAIN_R] = 1.0
        self._init = self.V.copy()
        # The springs are resonant low-passes: each spike's pulse also passes as DC (a
        # rate-following thump). A 4th-order Butterworth high-pass at fmin/2 removes it.
        from scipy.signal import butter

        hp = butter(4, self.ear.params.fmin_hz / 2, "highpass", fs=sr, output="sos")
        self._hp = np.zeros((1, K.N_COEFFS))
        sections = np.tile([1.0, 0.0, 0.0, 0.0, 0.0], (K.SECTIONS, 1))
        sections[: len(hp)] = np.column_stack([hp[:, :3], hp[:, 4:]])
        self._hp[0, : K.C_IHC_ALPHA] = sections.ravel()
        self._hp_state = np.zeros((1, K.N_STATE))
        self._drive = np.zeros(max_block)
        self._l = np.zeros(max_block)
        self._r = np.zeros(max_block)
        self._trace = np.zeros((0, vk.TRACE_FIELDS))
        self.gain = 10 ** (params.mix["gain_db"] / 20) / math.sqrt(ch)

    def reset(self) -> None:
        self.ear.reset()
        self.V[:] = self._init
        self._hp_state[:] = 0.0

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Write the resynthesis of mono ``block`` (n,) into ``out`` (n,) (overwrites)."""
        n = block.shape[0]
        raster = self.ear.process(block).raster
        self._l[:n] = 0.0
        self._r[:n] = 0.0
        K.resynth_run(raster, self.V, self.rng, self._drive, self._l, self._r, n, self.V_HIGH,
                      self.MEMBRANE_TAU, self._trace)
        K.filterbank_run(self._l[:n], self._hp, self._hp_state, self._r[None, :])
        out[:n] = self._r[:n] * self.gain


# --------------------------------------------------------------------------------------------
# The spiking vocoder.


class Vocoder:
    """Carrier bands (the same gammatone bank) scaled by the input's channel spike rates.

    Thread: main to construct (allocates); :meth:`process` allocates nothing.
    """

    def __init__(self, samplerate, params: EffectPatch, max_block=BLOCK):
        p = params.ear_parameters()._replace(frame_rate_hz=float(samplerate))
        self.ear = E.Ear(samplerate, max_block=max_block, tau_ms=params.vocoder["envelope_ms"],
                         params=p)
        ch = self.ear.channels
        self.carrier_state = np.zeros((ch, K.N_STATE))
        self._bands = np.zeros((ch, max_block))
        refractory = self.ear.params.refractory_ms
        self.max_rate = 1000.0 / refractory if refractory > 0 else 1000.0
        self.gain = 10 ** (params.mix["gain_db"] / 20)

    def reset(self) -> None:
        self.ear.reset()
        self.carrier_state[:] = 0.0

    def process(self, block: np.ndarray, carrier: np.ndarray, out: np.ndarray) -> None:
        """``out[:n]`` = Σ_ch band_ch(carrier) · rate_ch(block) / max_rate · gain."""
        n = block.shape[0]
        env = self.ear.process(block).surface_spikes[0]  # (ch, n): hop = 1
        K.filterbank_run(carrier, self.ear.coeffs, self.carrier_state, self._bands)
        np.einsum("cn,cn->n", self._bands[:, :n], env, out=out[:n])
        out[:n] *= self.gain / self.max_rate


# --------------------------------------------------------------------------------------------
# The offline host.


class ProcessResult(NamedTuple):
    """What :func:`process_signal` made."""

    audio: np.ndarray  # (frames, 2) float64
    clipped: int  # samples clipped at the ceiling
    samplerate: int


def process_signal(effect: EffectPatch, signal, samplerate: int, events=(), tail: float = 0.0,
                   seed: int = 0, block: int = BLOCK) -> ProcessResult:
    """Run ``effect`` over a whole signal (plus ``tail`` s of silence); stereo out.

    Thread: main. ``events``: absolute-sample MIDI events for the vocoder's synth (as
    :func:`spikesynth.offline.note_events`). Any ``block`` gives the same output.
    """
    x = E.as_mono(signal)
    x = np.concatenate([x, np.zeros(int(round(tail * samplerate)))])
    n = x.size
    wet = np.zeros(n)
    if effect.effect == "resynth":
        fx = Resynth(samplerate, effect, max_block=block)
        for start in range(0, n, block):
            fx.process(x[start:start + block], wet[start:start + block])
    else:
        from .engine import Synth

        synth_path = effect.vocoder["synth"]
        if synth_path is not None and effect.path is not None:
            synth_path = (effect.path.parent / synth_path).resolve()
        synth = Synth(load_patch(synth_path), samplerate=samplerate, max_block=block, seed=seed)
        fx = Vocoder(samplerate, effect, max_block=block)
        events = sorted(events, key=lambda e: e[0])
        e = 0
        for start in range(0, n, block):
            frames = min(block, n - start)
            block_events = []
            while e < len(events) and events[e][0] < start + frames:
                block_events.append((max(0, events[e][0] - start), events[e][1]))
                e += 1
            carrier = np.asarray(synth.process(frames, block_events), dtype=np.float64)
            fx.process(x[start:start + frames], np.ascontiguousarray(carrier.mean(axis=1)),
                       wet[start:start + frames])
    mono = effect.mix["dry"] * x + effect.mix["wet"] * wet
    clipped = int(np.count_nonzero(np.abs(mono) > CEILING))
    mono = np.clip(mono, -CEILING, CEILING)
    return ProcessResult(np.stack([mono, mono], axis=1), clipped, int(samplerate))


def process_file(patch_path, in_path, out_path, events_for=None, subtype="PCM_24", tail=0.0,
                 seed=0) -> ProcessResult:
    """``spikesynth process``: read ``in_path``, run the effect, write ``out_path`` atomically.

    ``events_for(samplerate)`` returns the vocoder's note events at the input's rate.
    Raises :class:`PatchError` / :class:`spikesynth.offline.RenderError` for user errors.
    """
    from .offline import RenderError, read_audio, write_atomic

    effect = load_effect(patch_path)
    data, sr = read_audio(in_path)
    events = events_for(sr) if events_for is not None else []
    if effect.effect == "vocoder" and not events:
        raise RenderError("the vocoder sings the notes you give: add --note PITCH or --midi FILE")
    try:
        result = process_signal(effect, data, sr, events, tail=tail, seed=seed)
    except ValueError as e:
        raise RenderError(f"{patch_path}: {e}") from None
    if subtype not in ("PCM_16", "PCM_24", "FLOAT"):
        raise RenderError(f"unknown subtype {subtype!r}")

    def produce(sink):
        sink(result.audio.astype(np.float32))
        return len(result.audio)

    write_atomic(out_path, sr, subtype, produce)
    return result
