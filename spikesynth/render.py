"""The engine's compiled core: events at their sample offsets, voices, the master section.

:func:`render_block` renders up to each event's sample offset, applies it, and carries on (as
JUCE's synthesiser does), so the same events rendered with any block size give identical
output. It is generic over the voice model: every model-specific step goes through the seam
of :mod:`spikesynth.models` (``voice_tune``, ``voice_render``, ...), resolved at compile time
from the type of the program's model record, so a patch compiles this module (with
:mod:`spikesynth.notes` and :mod:`spikesynth.voice_modes`) once for its own model only.
Everything here runs on the audio thread and allocates nothing.

The records it works on (:class:`~spikesynth.engine_state.EngineState`,
:class:`~spikesynth.engine_state.Program`) and their slot layouts are in
:mod:`spikesynth.engine_state`; a note's life on a voice (start, tuning, release) is in
:mod:`spikesynth.notes`, the voice modes (poly, mono, legato) in
:mod:`spikesynth.voice_modes`.

Program change (``0xC0``) is an event like any other: at its offset every voice fades out
over ``SWITCH_FADE_MS``; the block ends exactly when the fade does (:func:`render_block`
returns how many frames it rendered) and the host switches to the requested program, whose
first block restores its parameters and restarts the keys still held. Events that arrive
during the fade are carried (``G_CARRY``) and play on the new program at the switch.

Parameter smoothing: a parameter event or a mapped controller sets a parameter through
:func:`set_param`. A key whose Spec says ``smooth`` (levels, thresholds, the spring, drive,
noise, transpose, vibrato: whatever retunes a sounding voice) does not jump while a voice
sounds: its target is stored in the program's ramp table and the synth's value moves there
in ``params.SMOOTHING_MS`` (linear, or geometric for an ``exp`` key), one step every
``params.SMOOTHING_TICK`` samples of the absolute sample counter, every voice retuned at each
step (:func:`_ramp_tick`), so the output does not depend on the block size. Nothing
sounding: it jumps (nothing to click). Other keys (choices, counts, what only a note-on
reads) jump.

Compile time (a first-ever render compiles this module, :mod:`spikesynth.notes` and
:mod:`spikesynth.voice_modes` for the patch's model; the rules below hold for all three):
every njit function is its own compiled unit, and numba links, re-optimises and generates
machine code for all of a unit's callees again in each caller, so what a first run costs
grows with the code under each entry point. Hence: one entry point for rendering
(:func:`render_block_with`, ``L=None`` without an ear; :func:`render_block` is a convenience
the engine does not use); internal functions, called only from compiled code, are compiled
without the Python and C wrappers (``no_cpython_wrapper``, ``no_cfunc_wrapper``: unboxing
code for the two records per function), without reference counting (``_nrt=False``: nothing
here allocates) and with numpy's error model (``error_model="numpy"``: a float division by
zero gives inf or nan, which the voices' NaN reset and the master's finite check already
handle, instead of compiling a raise per division; the audio thread must not raise anyway),
and all with the same flags, because numba compiles an overload (the model seam, ``min``,
``max``) once per set of caller flags. Inlining the single-use functions into their callers
(``inline="always"``) was measured too: no faster (one larger function costs LLVM as much).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import params as P
from .dsp import voice as vk
from .dsp.voice import ENV_OFF
from .engine_state import (
    C_BEND,
    C_MOD,
    C_PRESSURE,
    C_RAW_BEND,
    C_RPN_LSB,
    C_RPN_MSB,
    C_SUSTAIN,
    C_TIMBRE,
    G_ACTIVE,
    G_CARRY,
    G_ENTER,
    G_EVENTS,
    G_GLIDING,
    G_IGNORED,
    G_MPE_MASTER_LOWER,
    G_MPE_MASTER_UPPER,
    G_MPE_RANGE_LOWER,
    G_MPE_RANGE_UPPER,
    G_NAN_RESETS,
    G_PARAMS_SET,
    G_PROGRAM_CHANGES,
    G_PROGRAMS_IGNORED,
    G_RAMPS,
    G_RETUNE,
    G_RETUNED,
    G_SAMPLE,
    G_SLOTS,
    G_SR,
    G_STEALS,
    G_SWITCH,
    G_SWITCH_AT,
    G_TOP,
    GL_LENGTH,
    GL_START,
    ROUTING_PER_CHANNEL,
    ROUTING_VOCODER,
    STEAL_FADE_MS,
    SWITCH_FADE_MS,
    VIBRATO_TICK,
)
from .events import STATUS_PARAM, ring_drain
from .listen import LS_DRONES, LS_OFFSET, LS_ROUTING, listen_mix, listen_vocode, listen_voices
from .master import CEILING, master_process
from .models import (
    voice_cut_drive,
    voice_render_pool,
    voice_rest,
    voice_set_rate,
)
from .mts import STATUS_TUNE  # key data1 plays float32 bits data2 Hz (0: the table)
from .notes import (
    bend_range,
    is_member,
    note_on,
    release,
    retune,
    retune_all,
    retune_channel,
    set_zone,
    vibrato_cents,
    voice_begin,
    voice_bend,
    voice_frequency,
    voice_mods_off,
    voice_mods_on,
    zone_master,
)
from .voice_modes import key_down, solo_key_up, solo_restart
from .voices import allocate, fade_out, is_playing


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _sounding(S):
    """Whether any voice sounds (a parameter change could be heard)."""
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_ENV_STAGE] != ENV_OFF:
            return True
    return False


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _rephase_vibrato(S, old_hz, new_hz, now):
    """The vibrato rate changes from ``old_hz`` to ``new_hz`` at ``now``: each voice's phase
    origin moves so that its vibrato phase carries on from where it is (no pitch jump)."""
    if not (new_hz > 0.0) or new_hz == old_hz:
        return
    V = S.V
    for i in range(int(S.G[G_TOP])):
        if V[i, vk.F_ENV_STAGE] != ENV_OFF:
            V[i, vk.F_ONSET] = now - (now - V[i, vk.F_ONSET]) * old_hz / new_hz


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def set_param(S, prog, now, p, value):
    """Parameter ``p`` of the synth's copy goes to ``value`` from sample ``now`` on.

    A smoothed key (``R_MODE`` not ``RAMP_JUMP``) while a voice sounds: its ramp restarts from
    the value it has now and reaches ``value`` in ``SMOOTHING_MS`` (steps at the ramp ticks,
    :func:`_ramp_tick`). Otherwise (or a non-finite value) it is set at once. Returns True
    when the value changed at once (the caller retunes the voices).
    """
    params = prog.params
    R = prog.ramp
    old = params[p]
    mode = R[p, P.R_MODE]
    if value == old and R[p, P.R_LEFT] <= 0.0:
        return False
    if (mode == P.RAMP_JUMP or not math.isfinite(value) or not math.isfinite(old)
            or not _sounding(S)):
        params[p] = value
        R[p, P.R_LEFT] = 0.0
        if p == P.P_VIB_HZ:
            _rephase_vibrato(S, old, value, now)
        return True
    steps = max(round(P.SMOOTHING_MS * 1e-3 * S.G[G_SR] / P.SMOOTHING_TICK), 1.0)
    R[p, P.R_TARGET] = value
    if mode == P.RAMP_GEOMETRIC and old > 0.0 and value > 0.0:
        R[p, P.R_TIMES] = 1.0
        R[p, P.R_STEP] = (value / old) ** (1.0 / steps)
    else:
        R[p, P.R_TIMES] = 0.0
        R[p, P.R_STEP] = (value - old) / steps
    if R[p, P.R_LEFT] <= 0.0:
        S.G[G_RAMPS] += 1
    R[p, P.R_LEFT] = steps
    return False


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _ramp_tick(S, prog, now):
    """One step of every parameter ramp at ``now`` (a multiple of ``SMOOTHING_TICK``), then
    every voice retuned; the last step lands on the target exactly. Recounts ``G_RAMPS``."""
    R = prog.ramp
    params = prog.params
    moving = 0
    for p in range(R.shape[0]):
        left = R[p, P.R_LEFT]
        if left <= 0.0:
            continue
        old = params[p]
        if left <= 1.0:
            params[p] = R[p, P.R_TARGET]
            R[p, P.R_LEFT] = 0.0
        else:
            if R[p, P.R_TIMES] != 0.0:
                params[p] = old * R[p, P.R_STEP]
            else:
                params[p] = old + R[p, P.R_STEP]
            R[p, P.R_LEFT] = left - 1.0
            moving += 1
        if p == P.P_VIB_HZ:
            _rephase_vibrato(S, old, params[p], now)
    S.G[G_RAMPS] = moving
    retune_all(S, prog, now)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def controller(S, prog, now, source, value):
    """Apply the mapped controllers for ``source`` (CC number or pressure) at ``value`` 0..1.

    They set the synth's own parameter copy (through :func:`set_param`: smoothed keys
    ramp), never the patch's values.
    """
    ctl = prog.ctl
    changed = False
    for r in range(ctl.shape[0]):
        if ctl[r, P.CTL_SOURCE] != source:
            continue
        lo = ctl[r, P.CTL_MIN]
        hi = ctl[r, P.CTL_MAX]
        if ctl[r, P.CTL_CURVE] == P.CURVE_EXP:
            target = lo * (hi / lo) ** value
        else:
            target = lo + (hi - lo) * value
        if set_param(S, prog, now, int(ctl[r, P.CTL_PARAM]), target):
            changed = True
    if changed:
        retune_all(S, prog, now)


@njit(cache=True, nogil=True)
def fade_all(S, fade_samples):
    """Fade out every playing voice (a program switch)."""
    for i in range(int(S.G[G_TOP])):
        if is_playing(S.V, i):
            fade_out(S.V, i, fade_samples)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def fade_channel(S, fade_samples, channel):
    """Fade out every playing voice of ``channel`` (all sound off)."""
    for i in range(int(S.G[G_TOP])):
        if is_playing(S.V, i) and S.V[i, vk.F_CHANNEL] == channel:
            fade_out(S.V, i, fade_samples)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def sustained(S, ch):
    """Whether the pedal holds ``ch``'s notes: its own, or its MPE zone master's."""
    master = zone_master(S, ch)
    return S.C[ch, C_SUSTAIN] != 0.0 or (master >= 0 and S.C[master, C_SUSTAIN] != 0.0)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _data_entry(S, prog, now, ch, value):
    """Data entry (CC 6) for the selected RPN: 6 on a master channel is the MPE Configuration
    Message; 0 (pitch bend sensitivity) sets an MPE zone's member or master range."""
    C = S.C
    if C[ch, C_RPN_MSB] != 1.0:  # RPN MSB 0 (stored + 1)
        return
    lsb = C[ch, C_RPN_LSB] - 1.0
    if lsb == 6.0 and (ch == 0 or ch == 15):
        set_zone(S, ch, value)
        retune_all(S, prog, now)
    elif lsb == 0.0:
        master = zone_master(S, ch)
        if master < 0:
            S.G[G_IGNORED] += 1  # per-channel bend ranges outside MPE: the patch's range
        elif master == ch:
            S.G[G_MPE_MASTER_LOWER if ch == 0 else G_MPE_MASTER_UPPER] = value
        else:
            S.G[G_MPE_RANGE_LOWER if master == 0 else G_MPE_RANGE_UPPER] = value


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _release_sustained(S, prog, ch):
    for i in range(int(S.G[G_TOP])):
        if S.V[i, vk.F_SUSTAINED] != 0.0 and S.V[i, vk.F_CHANNEL] == ch:
            release(S, prog, i)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
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
            G[G_PARAMS_SET] += 1
            if set_param(S, prog, now, d1, float32_from_bits(d2)):
                retune_all(S, prog, now)
        else:
            G[G_IGNORED] += 1
    elif status == STATUS_TUNE:
        if 0 <= d1 < 128:
            hz = float32_from_bits(d2)
            S.tuned[d1] = hz if hz > 0.0 and hz < 0.5 * sr else 0.0
            G[G_RETUNED] += 1
            for i in range(n_slots):
                if V[i, vk.F_ENV_STAGE] != ENV_OFF and V[i, vk.F_NOTE] == d1:
                    retune(S, prog, i, now)
        else:
            G[G_IGNORED] += 1
    elif kind == 0x90 and d2 > 0:
        key_down(prog.solo, S, prog, now, ch, d1, d2)
    elif kind == 0x80 or kind == 0x90:
        S.K[ch, d1] = 0.0
        if solo_key_up(prog.solo, S, prog, now, ch, d1):
            return
        for i in range(n_slots):
            if (V[i, vk.F_KEY_HELD] != 0.0 and V[i, vk.F_NOTE] == d1
                    and V[i, vk.F_CHANNEL] == ch and is_playing(V, i)):
                if sustained(S, ch):
                    V[i, vk.F_KEY_HELD] = 0.0
                    V[i, vk.F_SUSTAINED] = 1.0
                else:
                    release(S, prog, i)
    elif kind == 0xE0:
        C[ch, C_RAW_BEND] = ((d2 << 7 | d1) - 8192) / 8192.0
        C[ch, C_BEND] = C[ch, C_RAW_BEND] * bend_range(S, prog, ch)
        if zone_master(S, ch) == ch:
            retune_all(S, prog, now)  # a zone's master bend moves every note of the zone
        else:
            retune_channel(S, prog, now, ch)
    elif kind == 0xB0:
        if d1 == 64:
            C[ch, C_SUSTAIN] = 1.0 if d2 >= 64 else 0.0
            if d2 < 64:
                if zone_master(S, ch) == ch:  # the master's pedal holds the whole zone
                    for member in range(16):
                        if zone_master(S, member) == ch and not sustained(S, member):
                            _release_sustained(S, prog, member)
                elif not sustained(S, ch):
                    _release_sustained(S, prog, ch)
        elif d1 == 74 or d1 == 101 or d1 == 100 or d1 == 6:
            if d1 == 74:
                C[ch, C_TIMBRE] = d2 / 127.0
                retune_channel(S, prog, now, ch)
            elif d1 == 101:
                C[ch, C_RPN_MSB] = d2 + 1
            elif d1 == 100:
                C[ch, C_RPN_LSB] = d2 + 1
            else:
                _data_entry(S, prog, now, ch, d2)
            if not is_member(S, ch):
                controller(S, prog, now, d1, d2 / 127.0)
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
            retune_channel(S, prog, now, ch)  # per-voice pressure sources
        if kind == 0xA0 or not is_member(S, ch):  # a member's pressure is its note's only
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


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _vibrato_active(params, C):
    if params[P.P_VIB_CENTS] == 0.0:
        return False
    for ch in range(16):
        if C[ch, C_MOD] != 0.0:
            return True
    return False


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _rate_tick(S, prog, now):
    """Re-solve the rate (not the shape) of every vibrating or gliding voice at ``now``.

    A glide that has reached its note ends here, at its exact pitch. Recounts ``G_GLIDING``.
    """
    V = S.V
    params = prog.params
    sr = S.G[G_SR]
    gliding = 0
    for i in range(int(S.G[G_TOP])):
        if V[i, vk.F_ENV_STAGE] == ENV_OFF:
            S.glide[i, GL_LENGTH] = 0.0
            continue
        cents = vibrato_cents(V, i, params, S.C, sr, now)
        glide = S.glide[i, GL_LENGTH] > 0.0
        if glide:
            if now >= S.glide[i, GL_START] + S.glide[i, GL_LENGTH]:
                S.glide[i, GL_LENGTH] = 0.0  # arrived: this tick sets the exact pitch
            else:
                gliding += 1
        if cents != 0.0 or glide:
            base = voice_frequency(S, prog, V[i, vk.F_NOTE], voice_bend(S, i, now))
            mods = voice_mods_on(S, prog, int(V[i, vk.F_CHANNEL]))
            voice_set_rate(prog.model, V, i, params, prog.tables, sr,
                           base * 2.0 ** (cents / 1200.0))
            voice_mods_off(S, prog, mods)
            if V[i, vk.F_DRIVE_OFF] != 0.0:
                voice_cut_drive(prog.model, V, i)
    S.G[G_GLIDING] = gliding


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def render_voices(S, prog, start, stop):
    """Add samples ``start..stop-1`` of every sounding voice into the mix."""
    mix = S.mix
    S.G[G_NAN_RESETS] += voice_render_pool(prog.model, S.V, int(S.G[G_TOP]), S.rng, mix[0],
                                           mix[1], start, stop)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _enter_program(S, prog, now):
    """The first block of a program switched to: its own parameters, the held keys restart."""
    for p in range(prog.params.shape[0]):
        prog.params[p] = prog.base[p]
    prog.ramp[:, P.R_LEFT] = 0.0  # no ramp carries over from an earlier visit
    S.G[G_RAMPS] = 0.0
    zone = prog.params[P.P_MPE_ZONE]
    if zone != P.MPE_OFF:  # the patch's zone (otherwise the one MCM messages configured)
        master = 0 if zone == P.MPE_LOWER else 15
        set_zone(S, master, int(prog.params[P.P_MPE_MEMBERS]))
        hi = 0 if master == 0 else 1
        S.G[G_MPE_RANGE_LOWER + hi] = prog.params[P.P_MPE_BEND_RANGE]
        S.G[G_MPE_MASTER_LOWER + hi] = prog.params[P.P_MPE_MASTER_BEND_RANGE]
    for ch in range(16):
        if solo_restart(prog.solo, S, prog, now, ch):
            continue
        for note in range(128):
            if S.K[ch, note] > 0.0:
                note_on(S, prog, now, ch, note, S.K[ch, note])


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
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
    """Render up to ``out.shape[0]`` frames (:func:`render_block_with`, no input).

    A convenience for compiled callers; the engine calls ``render_block_with(..., None)``
    (one compiled entry point, not two: see the module docstring)."""
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
        # Parameter ramps, vibrato and glide update on grids of the absolute sample counter:
        # block-size invariant (the ramp grid divides the vibrato grid).
        at_ramp = False
        if G[G_RAMPS] > 0.0:
            tick = P.SMOOTHING_TICK - (t0 + pos) % P.SMOOTHING_TICK
            if pos + tick <= stop:
                stop = pos + tick
                at_ramp = True
        at_tick = False
        if G[G_GLIDING] > 0.0 or _vibrato_active(prog.params, S.C):
            tick = VIBRATO_TICK - (t0 + pos) % VIBRATO_TICK
            if pos + tick < stop:
                at_ramp = False
            if pos + tick <= stop:
                stop = pos + tick
                at_tick = True
        if L is None:
            render_voices(S, prog, pos, stop)
        elif L.settings[LS_ROUTING] == ROUTING_VOCODER:
            render_voices(S, prog, pos, stop)
        else:
            G[G_NAN_RESETS] += listen_voices(S, prog, L, pos, stop, int(G[G_TOP]), C_BEND)
        if at_ramp:
            _ramp_tick(S, prog, t0 + stop)
        if at_tick:
            _rate_tick(S, prog, t0 + stop)
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
    master_process(out, S.mix, pos, S.M, S.limiter, prog.params[P.P_GAIN_DB], G[G_SR])
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
