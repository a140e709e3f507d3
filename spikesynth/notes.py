"""A note on a voice: starting it in a slot, tuning it, releasing it (compiled, audio thread).

:func:`note_on` takes a slot (:func:`spikesynth.voices.allocate`, stealing by the patch's
rule) and :func:`voice_begin` sets its envelope, level, pan and noise seed. :func:`retune`
gives the voice model its frequency: the key's (a MIDI Tuning Standard frequency if one was
sent, else the program's per-note table), bent by the channel's bend (and its MPE zone
master's), the glide and the vibrato, with the per-voice sources (pressure, timbre, bend)
modulating their parameters for the length of one voice's tuning. The MPE zones
(:func:`set_zone`, :func:`zone_master`) are here because they decide a voice's bend.

Every function has the engine's internal flags (:mod:`spikesynth.render`, "Compile time").
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import params as P
from .dsp import voice as vk
from .dsp.voice import ENV_ATTACK, ENV_DECAY, ENV_OFF, ENV_RELEASE
from .engine_state import (
    C_BEND,
    C_MOD,
    C_PRESSURE,
    C_RAW_BEND,
    C_TIMBRE,
    G_AGE,
    G_GLIDING,
    G_MPE_LOWER,
    G_MPE_MASTER_LOWER,
    G_MPE_MASTER_UPPER,
    G_MPE_RANGE_LOWER,
    G_MPE_RANGE_UPPER,
    G_MPE_UPPER,
    G_SEED,
    G_SLOTS,
    G_SR,
    G_STEALS,
    G_TOP,
    G_UNMAPPED,
    GL_FROM,
    GL_LENGTH,
    GL_START,
    MAX_VOICE_MODS,
    N_GLIDE_FIELDS,
    STEAL_FADE_MS,
)
from .models import voice_cut_drive, voice_set_rate, voice_start, voice_tune
from .models.base import T_FREQ, T_NORM, table_frequency
from .voices import allocate


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _splitmix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    if z == np.uint64(0):
        z = np.uint64(1)
    return z


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def vibrato_cents(V, i, params, C, sr, now):
    """Vibrato offset in cents; its phase is a function of time since note-on."""
    depth = C[int(V[i, vk.F_CHANNEL]), C_MOD] * params[P.P_VIB_CENTS]
    if depth == 0.0:
        return 0.0
    phase = (now - V[i, vk.F_ONSET]) * params[P.P_VIB_HZ] / sr
    return depth * math.sin(2.0 * math.pi * (phase - math.floor(phase)))


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def voice_frequency(S, prog, note, bend):
    """Hz of ``note`` bent by ``bend`` semitones: a MIDI Tuning Standard frequency for the key
    if one was sent (then only the bend applies), else the program's per-note table (see
    :func:`spikesynth.models.base.table_frequency`)."""
    tuned = S.tuned[int(note)]
    if tuned > 0.0:
        return tuned * 2.0 ** (bend / 12.0)
    return table_frequency(prog.params, prog.base, prog.tables, note, bend)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def glide_offset(S, i, now):
    """Voice ``i``'s portamento at sample ``now``: semitones from its note's pitch."""
    g = S.glide
    length = g[i, GL_LENGTH]
    if length <= 0.0:
        return 0.0
    x = (now - g[i, GL_START]) / length
    if x >= 1.0:
        return 0.0
    return g[i, GL_FROM] * (1.0 - max(x, 0.0))


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def zone_master(S, ch):
    """The master channel (0 or 15) of the MPE zone ``ch`` belongs to, or -1 (no zone)."""
    lower = int(S.G[G_MPE_LOWER])
    upper = int(S.G[G_MPE_UPPER])
    if lower > 0 and ch <= lower:
        return 0
    if upper > 0 and ch >= 15 - upper:
        return 15
    return -1


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def is_member(S, ch):
    """Whether ``ch`` is an MPE member channel (one note, its own bend, pressure, timbre)."""
    master = zone_master(S, ch)
    return master >= 0 and master != ch


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def bend_range(S, prog, ch):
    """Semitones of full-scale bend on ``ch``: MPE member or master range, else the patch's."""
    master = zone_master(S, ch)
    if master < 0:
        return prog.params[P.P_BEND_RANGE]
    if master == ch:
        return S.G[G_MPE_MASTER_LOWER] if master == 0 else S.G[G_MPE_MASTER_UPPER]
    return S.G[G_MPE_RANGE_LOWER] if master == 0 else S.G[G_MPE_RANGE_UPPER]


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def set_zone(S, master, members):
    """An MPE Configuration Message: ``members`` channels for the zone of ``master`` (0 off).

    Default ranges (±48 per note, ±2 master); the other zone shrinks if they would overlap.
    """
    G = S.G
    members = min(max(members, 0), 15)
    if master == 0:
        G[G_MPE_LOWER] = members
        G[G_MPE_RANGE_LOWER] = 48.0
        G[G_MPE_MASTER_LOWER] = 2.0
        G[G_MPE_UPPER] = min(G[G_MPE_UPPER], max(14 - members, 0))
    else:
        G[G_MPE_UPPER] = members
        G[G_MPE_RANGE_UPPER] = 48.0
        G[G_MPE_MASTER_UPPER] = 2.0
        G[G_MPE_LOWER] = min(G[G_MPE_LOWER], max(14 - members, 0))


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def voice_bend(S, i, now):
    """Semitones voice ``i`` is bent by at ``now``: its channel's bend (plus its zone master's
    on an MPE member channel) and its glide."""
    ch = int(S.V[i, vk.F_CHANNEL])
    bend = S.C[ch, C_BEND]
    master = zone_master(S, ch)
    if master >= 0 and master != ch:
        bend += S.C[master, C_BEND]
    return bend + glide_offset(S, i, now)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def voice_mods_on(S, prog, ch):
    """Apply the per-voice sources (pressure, timbre, bend) of channel ``ch`` to the shared
    parameters for the length of one voice's tuning; returns how many to undo."""
    ctl = prog.ctl
    params = prog.params
    n = 0
    for r in range(ctl.shape[0]):
        source = ctl[r, P.CTL_SOURCE]
        if source < P.SOURCE_PRESSURE or source > P.SOURCE_BEND or n >= MAX_VOICE_MODS:
            continue
        if source == P.SOURCE_PRESSURE:
            value = S.C[ch, C_PRESSURE]
        elif source == P.SOURCE_TIMBRE:
            value = S.C[ch, C_TIMBRE]
        else:
            value = 0.5 * (S.C[ch, C_RAW_BEND] + 1.0)
        p = int(ctl[r, P.CTL_PARAM])
        S.saved[n, 0] = p
        S.saved[n, 1] = params[p]
        n += 1
        lo = ctl[r, P.CTL_MIN]
        hi = ctl[r, P.CTL_MAX]
        if ctl[r, P.CTL_CURVE] == P.CURVE_EXP:
            params[p] = lo * (hi / lo) ** value
        else:
            params[p] = lo + (hi - lo) * value
    return n


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def voice_mods_off(S, prog, n):
    """Restore what :func:`voice_mods_on` overrode (in reverse order)."""
    for k in range(n - 1, -1, -1):
        prog.params[int(S.saved[k, 0])] = S.saved[k, 1]


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def retune(S, prog, i, now):
    """Retune voice ``i`` for its note, the channel's bend, glide, vibrato and parameters."""
    V = S.V
    params = prog.params
    sr = S.G[G_SR]
    bend = voice_bend(S, i, now)
    freq = voice_frequency(S, prog, V[i, vk.F_NOTE], bend)
    mods = voice_mods_on(S, prog, int(V[i, vk.F_CHANNEL]))
    voice_tune(prog.model, V, i, params, prog.tables, sr, freq)
    cents = vibrato_cents(V, i, params, S.C, sr, now)
    if cents != 0.0:
        voice_set_rate(prog.model, V, i, params, prog.tables, sr, freq * 2.0 ** (cents / 1200.0))
    voice_mods_off(S, prog, mods)
    if V[i, vk.F_DRIVE_OFF] != 0.0:
        voice_cut_drive(prog.model, V, i)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def retune_all(S, prog, now):
    """Retune every sounding voice."""
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_ENV_STAGE] != ENV_OFF:
            retune(S, prog, i, now)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def retune_channel(S, prog, now, channel):
    """Retune every sounding voice of ``channel``."""
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_ENV_STAGE] != ENV_OFF and S.V[i, vk.F_CHANNEL] == channel:
            retune(S, prog, i, now)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def key_mapped(S, prog, note):
    """Whether ``note`` sounds: the tuning maps it, or a MIDI Tuning Standard change tuned it."""
    return prog.tables[T_FREQ, int(note)] > 0.0 or S.tuned[int(note)] > 0.0


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def note_on(S, prog, now, channel, note, velocity):
    """Start ``note`` in a voice (stealing if needed): envelope, level, pan, tuning, spike."""
    V = S.V
    G = S.G
    params = prog.params
    if not key_mapped(S, prog, note):
        G[G_UNMAPPED] += 1  # the tuning leaves this key unmapped: silent, by Scala's rule
        return -1
    sr = G[G_SR]
    fade = max(STEAL_FADE_MS * 1e-3 * sr, 1.0)
    i, stolen = allocate(V, int(G[G_SLOTS]), int(params[P.P_VOICES]), note, channel, fade)
    G[G_STEALS] += stolen
    voice_begin(S, prog, i, now, channel, note, velocity)
    voice_start(prog.model, V, i, params)
    return i


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
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
    for k in range(N_GLIDE_FIELDS):
        S.glide[i, k] = 0.0
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def start_glide(S, prog, i, now, from_semitones):
    """Voice ``i`` glides from ``from_semitones`` off its note's pitch to it in ``glide_ms``."""
    length = prog.params[P.P_GLIDE_MS] * 1e-3 * S.G[G_SR]
    if length < 1.0 or from_semitones == 0.0:
        S.glide[i, GL_LENGTH] = 0.0
        return
    S.glide[i, GL_FROM] = from_semitones
    S.glide[i, GL_START] = now
    S.glide[i, GL_LENGTH] = length
    S.G[G_GLIDING] += 1
