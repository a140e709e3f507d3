"""What the engine's compiled core reads and writes: its records and their slot layouts.

:class:`EngineState` holds what the voices and the master section change as they play: the
voice rows, the counters and flags (``G_*``), the per-channel controllers (``C_*``), the
glides (``GL_*``). :class:`Program` holds one prepared patch: its model record, the synth's
own copy of the parameters (controllers modulate it) and the patch's values it is restored
from, the controller table and the per-note tables; :class:`SoloModes` marks a program
compiled with the mono and legato voice modes. The host builds these records on the main
thread; the compiled modules (:mod:`spikesynth.notes`, :mod:`spikesynth.voice_modes`,
:mod:`spikesynth.render`) index them on the audio thread. Here too: the engine's constants
(fade times, the vibrato tick, voice and event limits, listening routings) and the jit
flags of its internal functions (:data:`INTERNAL_FLAGS`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import params as P

STEAL_FADE_MS = 4.0
# The flags of every internal engine function (spikesynth.render's docstring, "Compile time"):
# the overloads of spikesynth.voice_modes pass them as their jit options.
INTERNAL_FLAGS = {"nogil": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True,
                  "_nrt": False, "error_model": "numpy"}
SWITCH_FADE_MS = 4.0
VIBRATO_TICK = 32  # samples between vibrato updates (aligned to the sample counter)
MAX_VOICES = 256
MAX_EVENTS = 4096  # events per block on the real-time path
assert VIBRATO_TICK % P.SMOOTHING_TICK == 0  # a vibrato tick is also a ramp tick

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
G_UNMAPPED = 20  # note-ons on keys the tuning leaves unmapped (they do not sound)
G_RETUNED = 21  # MIDI Tuning Standard single-note changes applied
G_GLIDING = 22  # voices gliding (at least; the rate tick recounts)
G_PRESSES = 23  # key-press counter (note priority "last")
G_MPE_LOWER = 24  # lower zone member channels (master channel 1 = index 0)
G_MPE_UPPER = 25  # upper zone member channels (master channel 16 = index 15)
G_MPE_RANGE_LOWER = 26  # member bend ranges, semitones
G_MPE_RANGE_UPPER = 27
G_MPE_MASTER_LOWER = 28  # master bend ranges, semitones
G_MPE_MASTER_UPPER = 29
G_RAMPS = 30  # parameters ramping toward a target (at least; each ramp step recounts)
N_GLOBALS = 31
MAX_VOICE_MODS = 64  # per-voice controller rows applied at once

# Glide columns (the per-slot glide state): a pitch offset that goes linearly to 0.
GL_FROM = 0  # semitones from the note's pitch at the start
GL_START = 1  # sample at which the glide starts
GL_LENGTH = 2  # samples (0: not gliding)
N_GLIDE_FIELDS = 3

# Channel state columns (C).
C_BEND = 0  # semitones
C_MOD = 1  # mod wheel 0..1
C_SUSTAIN = 2  # 0 / 1
C_PRESSURE = 3  # 0..1
C_TIMBRE = 4  # CC 74, 0..1
C_RAW_BEND = 5  # the bend wheel, -1..1 (C_BEND is it times the channel's range)
C_RPN_MSB = 6  # registered parameter number selected (value + 1; 0: none)
C_RPN_LSB = 7
N_CHANNEL_FIELDS = 8
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
    limiter: tuple  # spikesynth.dsp.limiter.Limiter: the master's look-ahead limiter
    mix: np.ndarray  # float64 (2, max_block): the voices' sum before the master section
    usable: np.ndarray  # float64 (128,): 1 where program change n has a program to switch to
    tuned: np.ndarray  # float64 (128,): MIDI Tuning Standard Hz per key, 0: the program's table
    glide: np.ndarray  # float64 (slots, N_GLIDE_FIELDS): each voice's portamento (GL_*)
    order: np.ndarray  # float64 (16, 128): press count of each key held (note priority)
    saved: np.ndarray  # float64 (MAX_VOICE_MODS, 2): parameters a per-voice source overrode


class SoloModes(NamedTuple):
    """``Program.solo`` of a program compiled with the mono and legato voice modes.

    The voice mode is fixed when a patch is prepared (not a live parameter), so a poly
    patch's program carries ``solo=None`` and the engine compiled for it has no mono or
    legato code (about a tenth of a first render's compile time); a host that may switch to
    another mode on a reload (the live session) gives every program :data:`SOLO`. Which
    mode plays is still ``params[P_VOICE_MODE]``.
    """

    on: int


SOLO = SoloModes(1)


class Program(NamedTuple):
    """One prepared patch (built on the main thread; the audio thread writes only ``params``)."""

    model: tuple  # the voice model's record (its type selects the compiled engine)
    params: np.ndarray  # float64 (n,): the synth's own parameter copy, musical units
    base: np.ndarray  # float64 (n,): the patch's values (params is restored from it)
    ctl: np.ndarray  # float64 (rows, CTL_FIELDS): controller mappings
    tables: np.ndarray  # float64 (N_TABLES, 128): per-note tables
    ramp: np.ndarray  # float64 (n, RAMP_FIELDS): parameter smoothing (params.R_*), audio writes
    solo: object = None  # None: poly only; SOLO: the mono and legato modes compiled in


def with_solo(program: Program) -> Program:
    """``program`` compiled with every voice mode (:class:`SoloModes`). Thread: any."""
    return program if program.solo is not None else program._replace(solo=SOLO)
