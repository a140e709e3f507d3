"""Audio input as part of the voices' drive: the ear inside the engine's block.

A synth patch with a ``listen:`` section (``routing`` other than ``off``) hears an input
signal through the spiking ear (:mod:`spikesynth.dsp.cochlea`, keys under ``ear:``). Each
sounding voice gets, per sample, its model's solved drive **plus** ``listen.gain`` times the
signal of one ear channel:

``routing: per_note``
    every voice listens to the channel whose centre frequency is nearest its own (bent)
    frequency: the neurons listen while you play;
``routing: per_channel``
    the engine holds one voice per ear channel, tuned to the channel's centre frequency, with
    no drive of its own (silent until the ear spikes): each channel's spikes excite its voice
    (``patches/ear_resynth.yaml``). MIDI notes play beside them.
``routing: vocoder``
    not a drive: the voices play the notes held as usual, and their sum is split by the same
    gammatone bank; each band is weighted by ``gain`` times the input channel's spike rate
    (the ``rate`` signal below) and the bands are summed (``patches/ear_vocoder.yaml``): the
    output's partials are the held notes' harmonics, shaped by what the ear hears.

``listen.signal: spikes`` adds ``gain`` on each sample where the channel spiked; ``rate``
adds ``gain`` times the channel's spike rate (a leaky average over ``listen.tau_ms``) as a
fraction of the ear neuron's maximum rate ``1000 / ear.refractory_ms`` per second.
``listen.dry`` / ``listen.wet`` mix the input (mono, both sides) with the synth's output.

Latency: none added. Output sample ``n`` depends on input up to sample ``n`` (the ear runs
on the block before the voices, the drive reaches them at the same sample); the gammatone
filters' own group delay is about ``3 / (2π·1.019·ERB(cf))`` (1.4 ms at 1 kHz). Live, the
duplex stream's input latency plus its output latency is all there is.

The path goes through the seam's ``voice_trace`` with ``drive_in`` = solved drive + ear drive
(every model's kernel already takes a per-sample input there), so no model needs editing; a
patch without ``listen`` renders through :func:`spikesynth.render.render_block` as before,
with the listening code compiled out. Thread: :func:`build_listen` main (allocates); the
compiled functions audio (allocate nothing).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .dsp import cochlea as K
from .dsp import voice as vk
from .dsp.denormal import flush_denormals_begin, flush_denormals_end
from .dsp.voice import ENV_OFF
from .master import master_latency
from .models import voice_trace
from .models.base import note_frequency
from .schema import Spec

ROUTINGS = ("off", "per_note", "per_channel", "vocoder")
SIGNALS = ("spikes", "rate")

LISTEN_KEYS = {
    "listen.routing": Spec("choice", "off", choices=ROUTINGS, controllable=False,
                           doc="which ear channel feeds which voice (off: no input)"),
    "listen.signal": Spec("choice", "spikes", choices=SIGNALS, controllable=False,
                          doc="spikes: gain per spike; rate: gain x spike rate / max rate"),
    "listen.gain": Spec("float", 1.0, 0.0, 1000.0, "", "drive added per unit of signal "
                        "(the model's drive units)", controllable=False),
    "listen.tau_ms": Spec("float", 10.0, 0.1, 1000.0, "ms", "rate signal's time constant",
                          controllable=False),
    "listen.dry": Spec("float", 0.0, 0.0, 1.0, "", "input mixed into the output",
                       controllable=False),
    "listen.wet": Spec("float", 1.0, 0.0, 1.0, "", "the synth's level in the output",
                       controllable=False),
}
EAR_KEYS = {
    "ear.channels": Spec("int", 64, 1, 256, "", "gammatone channels", controllable=False),
    "ear.fmin_hz": Spec("float", 50.0, 10.0, 20000.0, "Hz", "lowest centre frequency",
                        controllable=False),
    "ear.fmax_hz": Spec("float", 0.0, 0.0, 40000.0, "Hz", "highest centre frequency (0: "
                        "min(8000, 0.4 samplerate))", controllable=False),
    "ear.compression": Spec("float", 0.3, 0.01, 1.0, "", "hair-cell power law",
                            controllable=False),
    "ear.ihc_cutoff_hz": Spec("float", 1000.0, 10.0, 20000.0, "Hz", "hair-cell low-pass",
                              controllable=False),
    "ear.threshold_dbfs": Spec("float", -50.0, -150.0, 20.0, "dBFS", "tone level at the "
                               "neurons' threshold", controllable=False),
    "ear.tau_ms": Spec("float", 1.0, 0.01, 1000.0, "ms", "ear neuron membrane",
                       controllable=False),
    "ear.threshold": Spec("float", 1.0, 1e-6, 1e6, "", "ear neuron threshold",
                          controllable=False),
    "ear.reset": Spec("float", 0.0, -1e6, 1e6, "", "ear neuron reset (below threshold)",
                      controllable=False),
    "ear.refractory_ms": Spec("float", 1.0, 0.0, 1000.0, "ms", "ear neuron refractory time",
                              controllable=False),
}

# Settings columns of ListenState.settings.
LS_GAIN = 0
LS_ROUTING = 1  # index in ROUTINGS
LS_SIGNAL = 2  # index in SIGNALS
LS_RATE_DECAY = 3  # exp(-1/(tau sr))
LS_RATE_JUMP = 4  # what a spike adds to the rate signal: (1 - decay) sr / max_rate
LS_DRY = 5
LS_WET = 6
LS_DRONES = 7  # 1: the per-channel voices are playing (0 after reset: start them)
LS_OFFSET = 8  # frames of this host block already rendered (a program switch split it)
LS_FRAMES = 9  # frames of input in this host block
LS_DRY_POS = 10  # the dry delay line's next slot
N_SETTINGS = 11


class ListenState(NamedTuple):
    """The ear and the listening buffers of one synth (allocated once, by :func:`build_listen`).

    The first fields are :func:`spikesynth.dsp.cochlea.cochlea_run`'s arguments.
    """

    coeffs: np.ndarray  # float64 (N_COEFFS, channels)
    state: np.ndarray  # float64 (N_STATE, channels)
    compression: float
    lif_coeffs: np.ndarray  # float64 (LIF_N_COEFFS,)
    lif_states: np.ndarray  # float64 (channels, LIF_N_STATE)
    surf_decay: np.ndarray  # float64 (0,): no time surfaces
    surf_jump: np.ndarray  # float64 (0,)
    surf_state: np.ndarray  # float64 (0, channels, 2)
    hop: int
    clock: np.ndarray  # int64 (1,)
    raster: np.ndarray  # float64 (channels, max_block)
    cont: np.ndarray  # float64 (0, channels, frames)
    spk: np.ndarray  # float64 (0, channels, frames)
    cf_hz: np.ndarray  # float64 (channels,): ascending centre frequencies
    ear_drive: np.ndarray  # float64 (channels, max_block): gain x signal per sample
    rate: np.ndarray  # float64 (channels,): the rate signal's state
    input: np.ndarray  # float64 (max_block,): this host block's mono input
    drive: np.ndarray  # float64 (max_block,): one voice's drive_in
    no_trace: np.ndarray  # float64 (0, TRACE_FIELDS)
    settings: np.ndarray  # float64 (N_SETTINGS,): LS_*
    carrier_state: np.ndarray  # float64 (N_STATE, channels): vocoder's bank on the voices
    bands: np.ndarray  # float64 (channels, max_block) for the vocoder, else (channels, 0)
    mono: np.ndarray  # float64 (max_block,): the voices' mono sum (vocoder)
    dry_delay: np.ndarray  # float64 (master latency,): the dry input, delayed like the synth
    work: np.ndarray  # float64 (max_block, channels): cochlea_run's scratch
    positions: np.ndarray  # int64 (max_block * channels,): cochlea_run's scratch


def ear_parameters(patch, samplerate):
    """The patch's ``ear.*`` keys as :class:`spikesynth.ear.EarParameters` (checked)."""
    from . import ear as E

    v = patch.values
    fmax = v["ear.fmax_hz"] or None
    return E.resolve_parameters(
        None, samplerate, channels=int(v["ear.channels"]), fmin_hz=v["ear.fmin_hz"],
        fmax_hz=fmax, compression=v["ear.compression"], ihc_cutoff_hz=v["ear.ihc_cutoff_hz"],
        threshold_dbfs=v["ear.threshold_dbfs"], tau_ms=v["ear.tau_ms"],
        threshold=v["ear.threshold"], reset=v["ear.reset"],
        refractory_ms=v["ear.refractory_ms"], frame_rate_hz=1.0)


def build_listen(patch, samplerate, max_block):
    """The :class:`ListenState` for ``patch``, or None when it does not listen. Thread: main.

    Raises ``ValueError`` (one line) for ear parameters this samplerate cannot have.
    """
    if patch.values.get("listen.routing", "off") == "off":
        return None
    from . import ear as E

    sr = float(samplerate)
    ear = E.Ear(sr, max_block=max_block, tau_ms=1000.0, params=ear_parameters(patch, sr))
    v = patch.values
    ch = ear.channels
    settings = np.zeros(N_SETTINGS)
    settings[LS_GAIN] = v["listen.gain"]
    settings[LS_ROUTING] = ROUTINGS.index(v["listen.routing"])
    settings[LS_SIGNAL] = SIGNALS.index(v["listen.signal"])
    decay = math.exp(-1000.0 / (v["listen.tau_ms"] * sr))
    refractory = ear.params.refractory_ms
    max_rate = 1000.0 / refractory if refractory > 0 else sr
    settings[LS_RATE_DECAY] = decay
    settings[LS_RATE_JUMP] = (1.0 - decay) * sr / max_rate
    settings[LS_DRY] = v["listen.dry"]
    settings[LS_WET] = v["listen.wet"]
    vocoder = v["listen.routing"] == "vocoder"
    if vocoder:
        settings[LS_SIGNAL] = SIGNALS.index("rate")
    # No time surfaces (n_tau = 0): the voices hear the spikes only.
    return ListenState(
        ear.coeffs, ear.state, ear.compression, ear.lif_coeffs, ear.lif_states,
        ear.surf_decay[:0], ear.surf_jump[:0], ear.surf_state[:0], ear.hop, ear.clock,
        ear._raster, ear._cont[:0], ear._spk[:0], np.ascontiguousarray(ear.cf_hz),
        np.zeros((ch, max_block)), np.zeros(ch), np.zeros(max_block), np.zeros(max_block),
        np.zeros((0, vk.TRACE_FIELDS)), settings, np.zeros((K.N_STATE, ch)),
        np.zeros((ch, max_block if vocoder else 0)), np.zeros(max_block),
        np.zeros(master_latency(sr)), ear._work, ear._positions)


def validate(values, given, network, fail):
    """Relations of the listen keys (called by the patch loader)."""
    if values["listen.routing"] == "off":
        return
    if not values["ear.reset"] < values["ear.threshold"]:
        fail("expected reset below threshold", "ear.reset")
    if values["ear.fmax_hz"] and not values["ear.fmin_hz"] < values["ear.fmax_hz"]:
        fail("expected fmax_hz above fmin_hz", "ear.fmax_hz")
    if values["listen.routing"] == "per_channel" and values["voices"] < values["ear.channels"]:
        fail(f"per_channel routing holds one voice per ear channel: expected voices >= "
             f"ear.channels ({values['ear.channels']})", "voices")


@njit(cache=True, nogil=True)
def listen_reset(L):
    """Silence the ear and the rate signal; the per-channel voices restart. Thread: audio."""
    K.cochlea_reset(L.state, L.lif_states, L.surf_state, L.clock)
    for c in range(L.rate.shape[0]):
        L.rate[c] = 0.0
    L.carrier_state[:, :] = 0.0
    L.settings[LS_DRONES] = 0.0
    L.settings[LS_OFFSET] = 0.0
    L.settings[LS_FRAMES] = 0.0


@njit(cache=True, nogil=True)
def listen_ear(L, frames):
    """Run the ear over ``L.input[:frames]`` and fill ``L.ear_drive[:, :frames]``.

    Thread: audio (once per host block, before rendering). Allocates nothing. Subnormals
    flush to zero inside (:mod:`spikesynth.dsp.denormal`).
    """
    saved = flush_denormals_begin()
    K.cochlea_run(L.input[:frames], L.coeffs, L.state, L.compression, L.lif_coeffs,
                  L.lif_states, L.surf_decay, L.surf_jump, L.surf_state, L.hop, L.clock,
                  L.raster, L.cont, L.spk, L.work, L.positions)
    gain = L.settings[LS_GAIN]
    if L.settings[LS_SIGNAL] == 0.0:
        for c in range(L.raster.shape[0]):
            for n in range(frames):
                L.ear_drive[c, n] = gain if L.raster[c, n] > 0.0 else 0.0
    else:
        decay = L.settings[LS_RATE_DECAY]
        jump = L.settings[LS_RATE_JUMP]
        for c in range(L.raster.shape[0]):
            r = L.rate[c]
            for n in range(frames):
                r *= decay
                if L.raster[c, n] > 0.0:
                    r += jump
                L.ear_drive[c, n] = gain * r
            L.rate[c] = r
    L.settings[LS_OFFSET] = 0.0
    L.settings[LS_FRAMES] = frames
    flush_denormals_end(saved)


@njit(cache=True, nogil=True)
def nearest_channel(cf_hz, freq):
    """Index of the centre frequency nearest ``freq`` on a log scale (binary search)."""
    lo = 0
    hi = cf_hz.shape[0] - 1
    if freq <= cf_hz[lo]:
        return lo
    if freq >= cf_hz[hi]:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cf_hz[mid] <= freq:
            lo = mid
        else:
            hi = mid
    return lo if freq * freq <= cf_hz[lo] * cf_hz[hi] else hi


@njit(cache=True, nogil=True)
def listen_voices(S, prog, L, start, stop, n_slots, bend_column):
    """Add samples ``start..stop-1`` of every sounding voice, each hearing its ear channel.

    ``drive_in`` of voice ``i`` = its solved drive (``F_DRIVE``, 0 when cut) + the ear drive
    of its channel at the same sample. Returns the voices reset because they blew up.

    Subnormals flush to zero inside (:mod:`spikesynth.dsp.denormal`): a channel voice the
    ear leaves alone decays into them (its membrane and spring), where each operation costs
    about a hundred times more; only values below 2.2e-308 change.
    """
    saved = flush_denormals_begin()
    V = S.V
    mix = S.mix
    off = int(L.settings[LS_OFFSET])
    params = prog.params
    drive = L.drive
    resets = 0
    for i in range(n_slots):
        if V[i, vk.F_ENV_STAGE] == ENV_OFF:
            continue
        bend = S.C[int(V[i, vk.F_CHANNEL]), bend_column]
        c = nearest_channel(L.cf_hz, note_frequency(params, V[i, vk.F_NOTE], bend))
        solved = V[i, vk.F_DRIVE]
        row = L.ear_drive[c]
        for n in range(start, stop):
            drive[n] = solved + row[off + n]
        if not voice_trace(prog.model, V, i, S.rng, mix[0], mix[1], start, stop, drive,
                           L.no_trace):
            for k in range(vk.N_FIELDS):
                V[i, k] = 0.0
            resets += 1
    flush_denormals_end(saved)
    return resets


@njit(cache=True, nogil=True)
def listen_mix(out, L, frames, ceiling):
    """``out = wet·out + dry·input`` (the input delayed by the master's latency) for
    ``frames`` frames of this part of the block."""
    off = int(L.settings[LS_OFFSET])
    dry = L.settings[LS_DRY]
    wet = L.settings[LS_WET]
    if dry == 0.0 and wet == 1.0:
        return
    # The synth's output comes out of the master's look-ahead delay: the dry input takes the
    # same delay, so the two stay aligned (no comb filter in the mix).
    delay = L.dry_delay
    length = delay.shape[0]
    pos = int(L.settings[LS_DRY_POS])
    for n in range(frames):
        x = L.input[off + n]
        if length > 0:
            x, delay[pos] = delay[pos], x
            pos = pos + 1 if pos + 1 < length else 0
        x *= dry
        for side in range(2):
            y = wet * out[n, side] + x
            out[n, side] = min(max(y, -ceiling), ceiling)
    L.settings[LS_DRY_POS] = pos



@njit(cache=True, nogil=True)
def listen_downmix(audio_in, mono):
    """``mono[n]`` = the mean of ``audio_in[n, :]`` (frames, channels). Thread: audio."""
    channels = audio_in.shape[1]
    for n in range(audio_in.shape[0]):
        s = 0.0
        for c in range(channels):
            s += audio_in[n, c]
        mono[n] = s / channels


@njit(cache=True, nogil=True)
def listen_vocode(mix, L, frames):
    """The vocoder: ``mix[:, n]`` = Σ_c band_c(voices' mono sum)[n] · ear_drive[c, n].

    Thread: audio (once per rendered part of a block, before the master section).
    """
    saved = flush_denormals_begin()
    off = int(L.settings[LS_OFFSET])
    mono = L.mono[:frames]
    for n in range(frames):
        mono[n] = 0.5 * (mix[0, n] + mix[1, n])
    K.filterbank_run(mono, L.coeffs, L.carrier_state, L.bands)
    for n in range(frames):
        mono[n] = 0.0
    for c in range(L.bands.shape[0]):
        band = L.bands[c]
        weight = L.ear_drive[c]
        for n in range(frames):
            mono[n] += band[n] * weight[off + n]
    for n in range(frames):
        mix[0, n] = mono[n]
        mix[1, n] = mono[n]
    flush_denormals_end(saved)
