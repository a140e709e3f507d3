"""The voice modes: poly, mono and legato, with note priority and glide (compiled, audio
thread).

The engine makes three calls, :func:`key_down`, :func:`solo_key_up` and
:func:`solo_restart`, each an overload on the type of ``Program.solo``
(:class:`spikesynth.engine_state.SoloModes`): a poly patch's program carries ``None``, and
its engine compiles :func:`poly_play` only; a program with
:data:`~spikesynth.engine_state.SOLO` compiles the mono and legato modes too, and
``params[P_VOICE_MODE]`` chooses among them as it plays.
"""

from __future__ import annotations

import math

from numba import njit, types
from numba.extending import overload

from . import params as P
from .dsp import voice as vk
from .dsp.voice import ENV_ATTACK, ENV_DECAY
from .engine_state import (
    G_PRESSES,
    G_SLOTS,
    G_SR,
    G_TOP,
    INTERNAL_FLAGS,
    STEAL_FADE_MS,
)
from .models.base import T_NORM
from .notes import glide_offset, key_mapped, note_on, retune, start_glide, voice_frequency
from .voices import fade_out, is_playing


# --- mono and legato -----------------------------------------------------------------------
@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def priority_key(S, prog, ch):
    """The held key of channel ``ch`` that a mono voice plays (note priority), or -1."""
    priority = prog.params[P.P_PRIORITY]
    best = -1
    for n in range(128):
        if S.K[ch, n] <= 0.0 or not key_mapped(S, prog, n):
            continue
        if best < 0 or priority == P.PRIORITY_HIGH:
            best = n  # scanning upwards: the first is the lowest, the last the highest
        elif priority == P.PRIORITY_LAST and S.order[ch, n] > S.order[ch, best]:
            best = n
    return best


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def mono_voice(S, ch):
    """The voice a mono channel is playing (attack or decay, newest), or -1."""
    V = S.V
    best = -1
    for i in range(int(S.G[G_SLOTS])):
        stage = V[i, vk.F_ENV_STAGE]
        if (stage == ENV_ATTACK or stage == ENV_DECAY) and V[i, vk.F_CHANNEL] == ch:
            if best < 0 or V[i, vk.F_AGE] > V[best, vk.F_AGE]:
                best = i
    return best


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def newest_voice(S, ch):
    """The newest voice of channel ``ch`` still sounding (released ones too), or -1."""
    best = -1
    for i in range(int(S.G[G_SLOTS])):
        if is_playing(S.V, i) and S.V[i, vk.F_CHANNEL] == ch:
            if best < 0 or S.V[i, vk.F_AGE] > S.V[best, vk.F_AGE]:
                best = i
    return best


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def newest_held_voice(S, ch):
    """The newest voice of channel ``ch`` whose key is still down, or -1."""
    best = -1
    for i in range(int(S.G[G_TOP])):
        if (S.V[i, vk.F_KEY_HELD] != 0.0 and is_playing(S.V, i)
                and S.V[i, vk.F_CHANNEL] == ch):
            if best < 0 or S.V[i, vk.F_AGE] > S.V[best, vk.F_AGE]:
                best = i
    return best


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _interval(S, prog, i, now, note):
    """Semitones from ``note``'s pitch to the pitch voice ``i`` sounds now (bend aside)."""
    here = voice_frequency(S, prog, S.V[i, vk.F_NOTE], glide_offset(S, i, now))
    there = voice_frequency(S, prog, float(note), 0.0)  # float: one specialisation
    return 12.0 * math.log2(here / there)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def mono_play(S, prog, now, ch, note, velocity, legato):
    """The mono channel ``ch`` should sound ``note``: move its voice there or retrigger.

    ``legato``: a key still held hands over (a note-on while another is held, or a note-off
    revealing a held key). Mode legato moves the sounding voice to ``note`` without a new
    envelope; mode mono (or no voice sounding) starts ``note`` afresh, the old voice fading.
    Glide: ``glide: legato`` only on legato hand-overs, ``always`` on every note that follows
    a sounding one.
    """
    params = prog.params
    V = S.V
    i = mono_voice(S, ch)
    if i >= 0 and V[i, vk.F_NOTE] == note:
        return
    always = params[P.P_GLIDE_MODE] == P.GLIDE_ALWAYS
    source = i if i >= 0 or not always else newest_voice(S, ch)  # "always": from a release too
    glides = params[P.P_GLIDE_MS] > 0.0 and source >= 0 and (legato or always)
    offset = _interval(S, prog, source, now, note) if glides else 0.0
    if i >= 0 and legato and params[P.P_VOICE_MODE] == P.VOICE_LEGATO:
        old = int(V[i, vk.F_NOTE])
        norm = prog.tables[T_NORM, old]
        if norm > 0.0:
            V[i, vk.F_AMP] *= prog.tables[T_NORM, note] / norm
        V[i, vk.F_NOTE] = note
        V[i, vk.F_KEY_HELD] = 1.0
        V[i, vk.F_SUSTAINED] = 0.0
        start_glide(S, prog, i, now, offset)
        retune(S, prog, i, now)
        return
    if i >= 0:
        fade_out(V, i, max(STEAL_FADE_MS * 1e-3 * S.G[G_SR], 1.0))
    j = note_on(S, prog, now, ch, note, velocity)
    if j >= 0 and offset != 0.0:
        start_glide(S, prog, j, now, offset)
        retune(S, prog, j, now)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def poly_play(S, prog, now, ch, note, velocity):
    """Poly mode: ``note`` starts a voice of its own; with ``glide_ms`` it glides there from
    the pitch the channel's previous note sounds at this moment (its newest voice whose key
    is held, or with ``glide: always`` its newest still sounding, released too), as a poly
    synth's portamento does. Chords glide too: each note from the one before it."""
    params = prog.params
    source = -1
    if params[P.P_GLIDE_MS] > 0.0:
        if params[P.P_GLIDE_MODE] == P.GLIDE_ALWAYS:
            source = newest_voice(S, ch)
        else:
            source = newest_held_voice(S, ch)
    offset = _interval(S, prog, source, now, note) if source >= 0 else 0.0  # before stealing
    j = note_on(S, prog, now, ch, note, velocity)
    if j >= 0 and offset != 0.0:
        start_glide(S, prog, j, now, offset)
        retune(S, prog, j, now)


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def mono_note_off(S, prog, now, ch, note):
    """A key of a mono channel went up: hand over to the next held key, or release."""
    V = S.V
    i = mono_voice(S, ch)
    if i < 0 or V[i, vk.F_NOTE] != note or V[i, vk.F_KEY_HELD] == 0.0:
        return False  # not the sounding key: nothing to hear
    nxt = priority_key(S, prog, ch)
    if nxt < 0:
        return False  # the last key: an ordinary note-off
    mono_play(S, prog, now, ch, nxt, S.K[ch, nxt], nxt >= 0)  # a variable: no Literal copy
    return True


# --- the voice-mode dispatch: compiled per type of Program.solo ------------------------
def key_down(solo, S, prog, now, ch, note, velocity):
    """A key of channel ``ch`` went down: note-on in the program's voice mode."""
    raise NotImplementedError("compiled code only")


def solo_key_up(solo, S, prog, now, ch, note):
    """A key went up (``K`` already cleared): True when a mono mode handed over to another
    held key (nothing else to do), False for an ordinary note-off."""
    raise NotImplementedError("compiled code only")


def solo_restart(solo, S, prog, now, ch):
    """A program switched to: a mono mode restarts channel ``ch``'s priority key (True);
    False: the caller restarts every held key (poly)."""
    raise NotImplementedError("compiled code only")


@njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False,
      error_model="numpy")
def _press(S, ch, note, velocity):
    """Record a key press (velocity and press order, for note priority)."""
    S.K[ch, note] = velocity
    S.G[G_PRESSES] += 1
    S.order[ch, note] = S.G[G_PRESSES]


@overload(key_down, jit_options=INTERNAL_FLAGS, inline="always")
def _ov_key_down(solo, S, prog, now, ch, note, velocity):
    if isinstance(solo, types.NoneType):
        def poly(solo, S, prog, now, ch, note, velocity):
            _press(S, ch, note, velocity)
            poly_play(S, prog, now, ch, note, float(velocity))
        return poly

    def every_mode(solo, S, prog, now, ch, note, velocity):
        held = S.K[ch, note] == 0.0 and priority_key(S, prog, ch) >= 0
        _press(S, ch, note, velocity)
        if prog.params[P.P_VOICE_MODE] == P.VOICE_POLY:
            poly_play(S, prog, now, ch, note, float(velocity))
        else:
            target = priority_key(S, prog, ch)
            if target >= 0:
                mono_play(S, prog, now, ch, target, S.K[ch, target], held)
    return every_mode


@overload(solo_key_up, jit_options=INTERNAL_FLAGS, inline="always")
def _ov_solo_key_up(solo, S, prog, now, ch, note):
    if isinstance(solo, types.NoneType):
        return lambda solo, S, prog, now, ch, note: False
    return lambda solo, S, prog, now, ch, note: (
        prog.params[P.P_VOICE_MODE] != P.VOICE_POLY and mono_note_off(S, prog, now, ch, note))


@overload(solo_restart, jit_options=INTERNAL_FLAGS, inline="always")
def _ov_solo_restart(solo, S, prog, now, ch):
    if isinstance(solo, types.NoneType):
        return lambda solo, S, prog, now, ch: False

    def every_mode(solo, S, prog, now, ch):
        if prog.params[P.P_VOICE_MODE] == P.VOICE_POLY:
            return False
        target = priority_key(S, prog, ch)
        if target >= 0:
            note_on(S, prog, now, ch, target, S.K[ch, target])
        return True
    return every_mode
