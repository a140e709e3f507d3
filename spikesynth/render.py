"""The engine's compiled core: events at their sample offsets, voices, the master section.

:func:`render_block` renders up to each event's sample offset, applies it, and carries on (as
JUCE's synthesiser does), so the same events rendered with any block size give identical
output. It is generic over the voice model: every model-specific step goes through the seam
of :mod:`spikesynth.models` (``voice_tune``, ``voice_render``, ...), resolved at compile time
from the type of the program's model record, so a patch compiles this module once for its
own model only. Everything here runs on the audio thread and allocates nothing.

Records
-------
:class:`EngineState` holds what the voices and the master section change as they play;
:class:`Program` holds one prepared patch: its model record, the synth's own copy of the
parameters (controllers modulate it) and the patch's values it is restored from, the
controller table and the per-note tables.

Program change (``0xC0``) is an event like any other: at its offset every voice fades out
over ``SWITCH_FADE_MS``; the block ends exactly when the fade does (:func:`render_block`
returns how many frames it rendered) and the host switches to the requested program, whose
first block restores its parameters and restarts the keys still held. Events that arrive
during the fade are carried (``G_CARRY``) and play on the new program at the switch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import params as P
from .dsp import voice as vk
from .dsp.voice import ENV_ATTACK, ENV_DECAY, ENV_OFF, ENV_RELEASE
from .events import STATUS_PARAM, ring_drain
from .listen import LS_DRONES, LS_OFFSET, LS_ROUTING, listen_mix, listen_vocode, listen_voices
from .master import CEILING, master_process
from .models import (
    voice_cut_drive,
    voice_render,
    voice_rest,
    voice_set_rate,
    voice_start,
    voice_tune,
)
from .models.base import T_NORM, note_frequency
from .voices import allocate, fade_out, is_playing

STEAL_FADE_MS = 4.0
SWITCH_FADE_MS = 4.0
VIBRATO_TICK = 32  # samples between vibrato updates (aligned to the sample counter)
MAX_VOICES = 256
MAX_EVENTS = 4096  # events per block on the real-time path

# Global state slots (G).
G_SAMPLE = 0  # samples rendered since reset
G_AGE = 1  # note-on counter (voice age)
G_NAN_RESETS = 2  # voices reset because their state blew up
G_SR = 3
G_SLOTS = 4  # voice slots allocated (2 × MAX_VOICES)
G_STEALS = 5
G_ACTIVE = 6  # voices sounding after the last block
G_SEED = 7
G_RETUNE = 8  # 1: retune every voice at the next block (a compatible patch swap)
G_EVENTS = 9  # events applied
G_IGNORED = 10  # well-formed events the engine does not act on
G_SWITCH = 11  # program change waiting for its fade: program number + 1 (0: none)
G_SWITCH_AT = 12  # the sample at which the switch happens
G_CARRY = 13  # events moved to the front of the event array, to apply after the switch
G_PROGRAMS = 14  # programs a program change may select
G_ENTER = 15  # 1: the program was just switched to (restore parameters, restart held keys)
G_PARAMS_SET = 16  # parameter events applied
G_PROGRAM_CHANGES = 17  # program changes that started a switch
G_PROGRAMS_IGNORED = 18  # program changes to a program that does not exist or did not load
G_TOP = 19  # 1 + the highest slot used since reset: voice loops stop there (a free slot is
#            always the lowest, so this stays near twice the polyphony, not MAX_VOICES × 2)
N_GLOBALS = 20

# Channel state columns (C).
C_BEND = 0  # semitones
C_MOD = 1  # mod wheel 0..1
C_SUSTAIN = 2  # 0 / 1
C_PRESSURE = 3  # 0..1
N_CHANNEL_FIELDS = 4
ROUTING_PER_CHANNEL = 2.0  # spikesynth.listen.ROUTINGS.index("per_channel")
ROUTING_VOCODER = 3.0  # spikesynth.listen.ROUTINGS.index("vocoder")


class EngineState(NamedTuple):
    """What playing changes (allocated once by the synth; reset clears it)."""

    V: np.ndarray  # float64 (slots, N_FIELDS): voice rows
    rng: np.ndarray  # uint64 (slots,): per-voice noise state
    G: np.ndarray  # float64 (N_GLOBALS,): counters and flags (G_*)
    C: np.ndarray  # float64 (16, N_CHANNEL_FIELDS): per-channel controllers (C_*)
    K: np.ndarray  # float64 (16, 128): velocity of each key held down (0: up)
    M: np.ndarray  # float64 (N_MASTER,): master section state
    mix: np.ndarray  # float64 (2, max_block): the voices' sum before the master section
    usable: np.ndarray  # float64 (128,): 1 where program change n has a program to switch to


class Program(NamedTuple):
    """One prepared patch (built on the main thread; the audio thread writes only ``params``)."""

    model: tuple  # the voice model's record (its type selects the compiled engine)
    params: np.ndarray  # float64 (n,): the synth's own parameter copy, musical units
    base: np.ndarray  # float64 (n,): the patch's values (params is restored from it)
    ctl: np.ndarray  # float64 (rows, CTL_FIELDS): controller mappings
    tables: np.ndarray  # float64 (N_TABLES, 128): per-note tables


@njit(cache=True, nogil=True)
def _splitmix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    if z == np.uint64(0):
        z = np.uint64(1)
    return z


@njit(cache=True, nogil=True)
def vibrato_cents(V, i, params, C, sr, now):
    """Vibrato offset in cents; its phase is a function of time since note-on."""
    depth = C[int(V[i, vk.F_CHANNEL]), C_MOD] * params[P.P_VIB_CENTS]
    if depth == 0.0:
        return 0.0
    phase = (now - V[i, vk.F_ONSET]) * params[P.P_VIB_HZ] / sr
    return depth * math.sin(2.0 * math.pi * (phase - math.floor(phase)))


@njit(cache=True, nogil=True)
def retune(S, prog, i, now):
    """Retune voice ``i`` for its note, the channel's bend, vibrato and the parameters."""
    V = S.V
    params = prog.params
    sr = S.G[G_SR]
    bend = S.C[int(V[i, vk.F_CHANNEL]), C_BEND]
    freq = note_frequency(params, V[i, vk.F_NOTE], bend)
    voice_tune(prog.model, V, i, params, prog.tables, sr, freq)
    cents = vibrato_cents(V, i, params, S.C, sr, now)
    if cents != 0.0:
        voice_set_rate(prog.model, V, i, params, prog.tables, sr, freq * 2.0 ** (cents / 1200.0))
    if V[i, vk.F_DRIVE_OFF] != 0.0:
        voice_cut_drive(prog.model, V, i)


@njit(cache=True, nogil=True)
def retune_all(S, prog, now):
    """Retune every sounding voice."""
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_ENV_STAGE] != ENV_OFF:
            retune(S, prog, i, now)


@njit(cache=True, nogil=True)
def retune_channel(S, prog, now, channel):
    """Retune every sounding voice of ``channel``."""
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_ENV_STAGE] != ENV_OFF and S.V[i, vk.F_CHANNEL] == channel:
            retune(S, prog, i, now)


@njit(cache=True, nogil=True)
def float32_from_bits(bits):
    """The float32 whose IEEE-754 bit pattern is the int32 ``bits`` (no allocation)."""
    b = bits & 0xFFFFFFFF
    sign = -1.0 if b >> 31 else 1.0
    exponent = (b >> 23) & 0xFF
    mantissa = b & 0x7FFFFF
    if exponent == 0xFF:
        return math.nan if mantissa else sign * math.inf
    if exponent == 0:
        return sign * math.ldexp(float(mantissa), -149)
    return sign * math.ldexp(float(mantissa | 0x800000), exponent - 150)


@njit(cache=True, nogil=True)
def release(S, prog, i):
    """Note-off for voice ``i``: its envelope releases (and its drive, if the patch says so)."""
    V = S.V
    if V[i, vk.F_ENV_STAGE] == ENV_ATTACK or V[i, vk.F_ENV_STAGE] == ENV_DECAY:
        V[i, vk.F_ENV_STAGE] = ENV_RELEASE
        if prog.params[P.P_RELEASE_DRIVE] != 0.0:
            V[i, vk.F_DRIVE_OFF] = 1.0
            voice_cut_drive(prog.model, V, i)
    V[i, vk.F_KEY_HELD] = 0.0
    V[i, vk.F_SUSTAINED] = 0.0


@njit(cache=True, nogil=True)
def note_on(S, prog, now, channel, note, velocity):
    """Start ``note`` in a voice (stealing if needed): envelope, level, pan, tuning, spike."""
    V = S.V
    G = S.G
    params = prog.params
    sr = G[G_SR]
    fade = max(STEAL_FADE_MS * 1e-3 * sr, 1.0)
    i, stolen = allocate(V, int(G[G_SLOTS]), int(params[P.P_VOICES]), note, channel, fade)
    G[G_STEALS] += stolen
    voice_begin(S, prog, i, now, channel, note, velocity)
    voice_start(prog.model, V, i, params)


@njit(cache=True, nogil=True)
def voice_begin(S, prog, i, now, channel, note, velocity):
    """Slot ``i`` starts ``note``: envelope, level, pan, tuning (the neuron not started)."""
    V = S.V
    G = S.G
    params = prog.params
    sr = G[G_SR]
    if i + 1 > G[G_TOP]:
        G[G_TOP] = i + 1
    for k in range(vk.N_FIELDS):
        V[i, k] = 0.0
    G[G_AGE] += 1
    V[i, vk.F_AGE] = G[G_AGE]
    V[i, vk.F_NOTE] = note
    V[i, vk.F_CHANNEL] = channel
    V[i, vk.F_VELOCITY] = velocity
    V[i, vk.F_KEY_HELD] = 1.0
    V[i, vk.F_ONSET] = now
    v01 = velocity / 127.0
    sens = params[P.P_VEL_SENS]
    V[i, vk.F_AMP] = ((1.0 - sens) + sens * v01 * v01) * prog.tables[T_NORM, note]
    pan = params[P.P_SPREAD] * min(max((note - 60.0) / 36.0, -1.0), 1.0)
    angle = (pan + 1.0) * 0.25 * math.pi
    V[i, vk.F_GAIN_L] = math.cos(angle) * math.sqrt(2.0)
    V[i, vk.F_GAIN_R] = math.sin(angle) * math.sqrt(2.0)
    ms = sr * 1e-3
    attack = params[P.P_ATTACK_MS] * ms
    V[i, vk.F_ATT_STEP] = 1.0 / attack if attack > 1.0 else 1.0
    V[i, vk.F_DEC_COEF] = math.exp(math.log(1e-3) / max(params[P.P_DECAY_MS] * ms, 1.0))
    V[i, vk.F_SUSTAIN] = 10.0 ** (params[P.P_SUSTAIN_DB] / 20.0)
    V[i, vk.F_REL_COEF] = math.exp(math.log(1e-3) / max(params[P.P_RELEASE_MS] * ms, 1.0))
    V[i, vk.F_ENV_STAGE] = ENV_ATTACK
    S.rng[i] = _splitmix(np.uint64(G[G_SEED]) * np.uint64(1000003) + np.uint64(G[G_AGE]))
    retune(S, prog, i, now)


@njit(cache=True, nogil=True)
def controller(S, prog, now, source, value):
    """Apply the mapped controllers for ``source`` (CC number or pressure) at ``value`` 0..1.

    They write into the synth's own parameter copy, never into the patch's values.
    """
    ctl = prog.ctl
    params = prog.params
    changed = False
    for r in range(ctl.shape[0]):
        if ctl[r, P.CTL_SOURCE] != source:
            continue
        lo = ctl[r, P.CTL_MIN]
        hi = ctl[r, P.CTL_MAX]
        if ctl[r, P.CTL_CURVE] == P.CURVE_EXP:
            params[int(ctl[r, P.CTL_PARAM])] = lo * (hi / lo) ** value
        else:
            params[int(ctl[r, P.CTL_PARAM])] = lo + (hi - lo) * value
        changed = True
    if changed:
        retune_all(S, prog, now)


@njit(cache=True, nogil=True)
def fade_all(S, fade_samples):
    """Fade out every playing voice (a program switch)."""
    for i in range(int(S.G[G_TOP])):
        if is_playing(S.V, i):
            fade_out(S.V, i, fade_samples)


@njit(cache=True, nogil=True)
def fade_channel(S, fade_samples, channel):
    """Fade out every playing voice of ``channel`` (all sound off)."""
    for i in range(int(S.G[G_TOP])):
        if is_playing(S.V, i) and S.V[i, vk.F_CHANNEL] == channel:
            fade_out(S.V, i, fade_samples)


@njit(cache=True, nogil=True)
def _release_sustained(S, prog, ch):
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_SUSTAINED] != 0.0 and S.V[i, vk.F_CHANNEL] == ch:
            release(S, prog, i)


@njit(cache=True, nogil=True)
def apply_event(S, prog, now, status, d1, d2):
    """Apply one event (a MIDI channel message or a parameter event) at sample ``now``."""
    V = S.V
    G = S.G
    C = S.C
    params = prog.params
    sr = G[G_SR]
    kind = status & 0xF0
    ch = status & 0x0F
    n_slots = int(G[G_TOP])  # the slots that may sound
    G[G_EVENTS] += 1
    if status == STATUS_PARAM:
        if 0 <= d1 < params.shape[0]:
            params[d1] = float32_from_bits(d2)
            G[G_PARAMS_SET] += 1
            retune_all(S, prog, now)
        else:
            G[G_IGNORED] += 1
    elif kind == 0x90 and d2 > 0:
        S.K[ch, d1] = d2
        note_on(S, prog, now, ch, d1, float(d2))
    elif kind == 0x80 or kind == 0x90:
        S.K[ch, d1] = 0.0
        for i in range(n_slots):
            if (V[i, vk.F_KEY_HELD] != 0.0 and V[i, vk.F_NOTE] == d1
                    and V[i, vk.F_CHANNEL] == ch and is_playing(V, i)):
                if C[ch, C_SUSTAIN] != 0.0:
                    V[i, vk.F_KEY_HELD] = 0.0
                    V[i, vk.F_SUSTAINED] = 1.0
                else:
                    release(S, prog, i)
    elif kind == 0xE0:
        C[ch, C_BEND] = ((d2 << 7 | d1) - 8192) / 8192.0 * params[P.P_BEND_RANGE]
        retune_channel(S, prog, now, ch)
    elif kind == 0xB0:
        if d1 == 64:
            C[ch, C_SUSTAIN] = 1.0 if d2 >= 64 else 0.0
            if d2 < 64:
                _release_sustained(S, prog, ch)
        elif d1 == 1:
            C[ch, C_MOD] = d2 / 127.0
            retune_channel(S, prog, now, ch)  # vibrato depth follows at once
            controller(S, prog, now, d1, d2 / 127.0)
        elif d1 == 120:  # all sound off: a short fade, never a click
            fade_channel(S, max(STEAL_FADE_MS * 1e-3 * sr, 1.0), ch)
            for note in range(128):
                S.K[ch, note] = 0.0
        elif d1 == 123:  # all notes off: every voice releases, pedal or not
            for note in range(128):
                S.K[ch, note] = 0.0
            for i in range(n_slots):
                if V[i, vk.F_CHANNEL] == ch and is_playing(V, i):
                    release(S, prog, i)
        elif d1 == 121:  # reset all controllers
            C[ch, C_BEND] = 0.0
            C[ch, C_MOD] = 0.0
            C[ch, C_PRESSURE] = 0.0
            if C[ch, C_SUSTAIN] != 0.0:
                C[ch, C_SUSTAIN] = 0.0
                _release_sustained(S, prog, ch)
            retune_channel(S, prog, now, ch)
        else:
            controller(S, prog, now, d1, d2 / 127.0)
    elif kind == 0xD0 or kind == 0xA0:
        # One call site with a variable source: no copy compiled per constant.
        source = P.SOURCE_CHANNEL_PRESSURE
        value = d1
        if kind == 0xA0:
            source = P.SOURCE_POLY_PRESSURE
            value = d2
        else:
            C[ch, C_PRESSURE] = d1 / 127.0
        controller(S, prog, now, source, value / 127.0)
    elif kind == 0xC0:
        if S.usable[d1] != 0.0:
            G[G_PROGRAM_CHANGES] += 1
            if G[G_SWITCH] == 0.0:  # a switch already fading keeps its time; the latest wins
                G[G_SWITCH_AT] = now + math.ceil(max(SWITCH_FADE_MS * 1e-3 * sr, 1.0))
                fade_all(S, max(SWITCH_FADE_MS * 1e-3 * sr, 1.0))
            G[G_SWITCH] = d1 + 1
        else:
            G[G_PROGRAMS_IGNORED] += 1
    else:
        G[G_IGNORED] += 1


@njit(cache=True, nogil=True)
def _vibrato_active(params, C):
    if params[P.P_VIB_CENTS] == 0.0:
        return False
    for ch in range(16):
        if C[ch, C_MOD] != 0.0:
            return True
    return False


@njit(cache=True, nogil=True)
def _vibrato_tick(S, prog, now):
    """Re-solve the rate (not the shape) of every vibrating voice for the LFO at ``now``."""
    V = S.V
    params = prog.params
    sr = S.G[G_SR]
    for i in range(int(S.G[G_TOP])):
        if V[i, vk.F_ENV_STAGE] == ENV_OFF:
            continue
        cents = vibrato_cents(V, i, params, S.C, sr, now)
        if cents != 0.0:
            base = note_frequency(params, V[i, vk.F_NOTE], S.C[int(V[i, vk.F_CHANNEL]), C_BEND])
            voice_set_rate(prog.model, V, i, params, prog.tables, sr,
                           base * 2.0 ** (cents / 1200.0))
            if V[i, vk.F_DRIVE_OFF] != 0.0:
                voice_cut_drive(prog.model, V, i)


@njit(cache=True, nogil=True)
def render_voices(S, prog, start, stop):
    """Add samples ``start..stop-1`` of every sounding voice into the mix."""
    V = S.V
    mix = S.mix
    for i in range(int(S.G[G_TOP])):
        if V[i, vk.F_ENV_STAGE] == ENV_OFF:
            continue
        if not voice_render(prog.model, V, i, S.rng, mix[0], mix[1], start, stop):
            for k in range(vk.N_FIELDS):
                V[i, k] = 0.0
            S.G[G_NAN_RESETS] += 1


@njit(cache=True, nogil=True)
def _enter_program(S, prog, now):
    """The first block of a program switched to: its own parameters, the held keys restart."""
    prog.params[:] = prog.base
    for ch in range(16):
        for note in range(128):
            if S.K[ch, note] > 0.0:
                note_on(S, prog, now, ch, note, S.K[ch, note])


@njit(cache=True, nogil=True)
def _start_listen_voices(S, prog, L, now):
    """``listen.routing: per_channel``: one voice per ear channel, tuned to its centre
    frequency, its own drive cut and its neuron at rest (it sounds only when the ear spikes).
    """
    V = S.V
    G = S.G
    params = prog.params
    fade = max(STEAL_FADE_MS * 1e-3 * G[G_SR], 1.0)
    for c in range(L.cf_hz.shape[0]):
        fine = 69.0 + 12.0 * math.log2(L.cf_hz[c] / params[P.P_A4]) - params[P.P_TRANSPOSE]
        note = np.int64(min(max(int(round(fine)), 0), 127))
        channel = np.int64(0)
        i, stolen = allocate(V, int(G[G_SLOTS]), int(params[P.P_VOICES]), note, channel, fade)
        G[G_STEALS] += stolen
        voice_begin(S, prog, i, now, channel, note, 127.0)
        V[i, vk.F_NOTE] = fine
        V[i, vk.F_KEY_HELD] = 0.0  # no key releases it
        V[i, vk.F_DRIVE_OFF] = 1.0  # retunes keep the drive cut
        retune(S, prog, i, now)
        V[i, vk.F_DC] = 0.0  # silent at rest (the master's DC blocker takes the rest)
        voice_rest(prog.model, V, i, params)
    L.settings[LS_DRONES] = 1.0


@njit(cache=True, nogil=True)
def render_block(out, events, n_events, S, prog):
    """Render up to ``out.shape[0]`` frames (:func:`render_block_with`, no input)."""
    return render_block_with(out, events, n_events, S, prog, None)


@njit(cache=True, nogil=True)
def render_block_with(out, events, n_events, S, prog, L):
    """Render up to ``out.shape[0]`` frames, applying ``events[:n_events]`` at their offsets.

    Thread: audio. Allocates nothing.

    Parameters
    ----------
    out : float32 array, shape (frames, 2)
    events : int32 array, shape (>= n_events, 4)
        Rows ``(offset, status, data1, data2)`` sorted by offset, offsets in ``[0, frames)``.
    S : EngineState
    prog : Program
    L : ListenState or None
        The input heard through the ear (:mod:`spikesynth.listen`; ``listen_ear`` has run
        over this host block; ``LS_OFFSET`` frames of it are already rendered), or None:
        the listening code is compiled out.

    Returns
    -------
    int
        Frames rendered: ``frames``, or fewer when a program switch is due inside the block
        (the host switches, then renders the rest). Events not applied are moved to the front
        of ``events`` (offsets relative to the returned frame) and counted in ``G_CARRY``.
    """
    G = S.G
    frames = out.shape[0]
    mix_l = S.mix[0]
    mix_r = S.mix[1]
    for n in range(frames):
        mix_l[n] = 0.0
        mix_r[n] = 0.0
    t0 = int(G[G_SAMPLE])
    if G[G_ENTER] != 0.0:
        G[G_ENTER] = 0.0
        _enter_program(S, prog, t0)
    if G[G_RETUNE] != 0.0:
        G[G_RETUNE] = 0.0
        retune_all(S, prog, t0)
    if L is not None:
        if L.settings[LS_DRONES] == 0.0 and L.settings[LS_ROUTING] == ROUTING_PER_CHANNEL:
            _start_listen_voices(S, prog, L, t0)
    pos = frames - frames  # 0, typed as a variable: no copy of a callee for a constant
    e = 0
    while pos < frames:
        if G[G_SWITCH] == 0.0:
            while e < n_events and events[e, 0] <= pos and G[G_SWITCH] == 0.0:
                apply_event(S, prog, t0 + pos, np.int64(events[e, 1]), np.int64(events[e, 2]),
                        np.int64(events[e, 3]))
                e += 1
        stop = frames
        if G[G_SWITCH] != 0.0:
            due = int(G[G_SWITCH_AT]) - t0
            if pos >= due:
                break
            stop = min(stop, due)
        elif e < n_events and events[e, 0] < stop:
            stop = events[e, 0]
        # Vibrato updates on a grid of the absolute sample counter: block-size invariant.
        at_tick = False
        if _vibrato_active(prog.params, S.C):
            tick = VIBRATO_TICK - (t0 + pos) % VIBRATO_TICK
            if pos + tick <= stop:
                stop = pos + tick
                at_tick = True
        if L is None:
            render_voices(S, prog, pos, stop)
        elif L.settings[LS_ROUTING] == ROUTING_VOCODER:
            render_voices(S, prog, pos, stop)
        else:
            G[G_NAN_RESETS] += listen_voices(S, prog, L, pos, stop, int(G[G_TOP]), C_BEND)
        if at_tick:
            _vibrato_tick(S, prog, t0 + stop)
        pos = stop
    while e < n_events and G[G_SWITCH] == 0.0 and events[e, 0] <= pos:  # zero-frame blocks
        apply_event(S, prog, t0 + pos, np.int64(events[e, 1]), np.int64(events[e, 2]),
                        np.int64(events[e, 3]))
        e += 1
    carry = n_events - e
    for k in range(carry):  # what the switch holds back plays after it
        events[k, 0] = max(events[e + k, 0] - pos, 0)
        events[k, 1] = events[e + k, 1]
        events[k, 2] = events[e + k, 2]
        events[k, 3] = events[e + k, 3]
    G[G_CARRY] = carry
    if L is not None:
        if L.settings[LS_ROUTING] == ROUTING_VOCODER:
            listen_vocode(S.mix, L, pos)
    master_process(out, S.mix, pos, S.M, prog.params[P.P_GAIN_DB], G[G_SR])
    if L is not None:
        listen_mix(out, L, pos, CEILING)
        L.settings[LS_OFFSET] += pos
    G[G_SAMPLE] += pos
    active = 0
    for i in range(int(G[G_TOP])):
        if S.V[i, vk.F_ENV_STAGE] != ENV_OFF:
            active += 1
    G[G_ACTIVE] = active
    return pos


@njit(cache=True, nogil=True)
def render_ring(out, slots, header, events, block_start_ns, latency_ns, S, prog):
    """:func:`render_ring_with` without input."""
    return render_ring_with(out, slots, header, events, block_start_ns, latency_ns, S, prog,
                            None)


@njit(cache=True, nogil=True)
def render_ring_with(out, slots, header, events, block_start_ns, latency_ns, S, prog, L):
    """Drain the MIDI ring into this block's events and render: the live host's one call.

    Thread: audio. Allocates nothing. See :func:`spikesynth.events.ring_drain`. While a
    program switch fades, the ring is left untouched, so the MIDI that arrives meanwhile
    plays on the new program. Returns the frames rendered (see :func:`render_block`).
    """
    G = S.G
    carry = int(G[G_CARRY])
    n = carry
    if G[G_SWITCH] == 0.0:
        n += ring_drain(slots, header, events[carry:], block_start_ns, latency_ns, G[G_SR],
                        out.shape[0])
    return render_block_with(out, events, n, S, prog, L)
