"""The parameter vector: the indices shared by every voice model, and where a model's own begin.

A patch becomes one float64 array in musical units (ms, Hz, dB, semitones). Its first
``MODEL_BASE`` entries are the keys every voice model shares (envelope, gain, tuning, ...),
named here; the entries from ``MODEL_BASE`` on are the voice model's own keys, in the order its
module lists them (see :mod:`spikesynth.models`). The engine converts to per-sample
quantities at note-on and retune time, never per sample. Controllers write into the synth's
own copy of this array, which is why it stays in musical units.
"""

from __future__ import annotations

# Index name -> patch key path. The order fixes the indices.
COMMON_KEYS = {
    "P_NOISE": "noise",
    "P_ATTACK_MS": "envelope.attack_ms",
    "P_DECAY_MS": "envelope.decay_ms",
    "P_SUSTAIN_DB": "envelope.sustain_db",
    "P_RELEASE_MS": "envelope.release_ms",
    "P_GAIN_DB": "gain_db",
    "P_SPREAD": "stereo_spread",
    "P_BEND_RANGE": "pitch_bend_range",
    "P_A4": "a4",
    "P_TRANSPOSE": "transpose",
    "P_VEL_SENS": "velocity_sensitivity",
    "P_VIB_CENTS": "vibrato.depth_cents",
    "P_VIB_HZ": "vibrato.rate_hz",
    "P_VOICES": "voices",
    "P_RELEASE_DRIVE": "release_drive",
    "P_VOICE_MODE": "voice_mode",
    "P_GLIDE_MS": "glide_ms",
    "P_GLIDE_MODE": "glide",
    "P_PRIORITY": "note_priority",
    "P_MPE_ZONE": "mpe.zone",
    "P_MPE_MEMBERS": "mpe.members",
    "P_MPE_BEND_RANGE": "mpe.bend_range",
    "P_MPE_MASTER_BEND_RANGE": "mpe.master_bend_range",
}

P_NOISE = 0
P_ATTACK_MS = 1
P_DECAY_MS = 2
P_SUSTAIN_DB = 3
P_RELEASE_MS = 4
P_GAIN_DB = 5
P_SPREAD = 6
P_BEND_RANGE = 7
P_A4 = 8
P_TRANSPOSE = 9
P_VEL_SENS = 10
P_VIB_CENTS = 11
P_VIB_HZ = 12
P_VOICES = 13
P_RELEASE_DRIVE = 14  # 0 hold (the release stays in tune), 1 off (note-off removes the drive)
P_VOICE_MODE = 15  # VOICE_POLY, VOICE_MONO, VOICE_LEGATO
P_GLIDE_MS = 16  # portamento time, ms (0: none)
P_GLIDE_MODE = 17  # GLIDE_LEGATO (only notes played legato glide), GLIDE_ALWAYS
P_PRIORITY = 18  # mono modes: PRIORITY_LAST, PRIORITY_LOW, PRIORITY_HIGH
P_MPE_ZONE = 19  # MPE_OFF, MPE_LOWER, MPE_UPPER (the patch's zone; MCM messages also set it)
P_MPE_MEMBERS = 20  # member channels of the patch's zone
P_MPE_BEND_RANGE = 21  # per-note (member channel) bend range, semitones
P_MPE_MASTER_BEND_RANGE = 22  # master channel bend range, semitones
N_COMMON = 23
MODEL_BASE = 32  # a voice model's own parameters start here (room for more common keys)

# Choice values as they appear in the vector (the index in the Spec's choices).
VOICE_POLY, VOICE_MONO, VOICE_LEGATO = 0.0, 1.0, 2.0
GLIDE_LEGATO, GLIDE_ALWAYS = 0.0, 1.0
PRIORITY_LAST, PRIORITY_LOW, PRIORITY_HIGH = 0.0, 1.0, 2.0
MPE_OFF, MPE_LOWER, MPE_UPPER = 0.0, 1.0, 2.0

COMMON_INDEX = {path: i for i, path in enumerate(COMMON_KEYS.values())}
assert all(globals()[name] == i for i, name in enumerate(COMMON_KEYS))
assert N_COMMON == len(COMMON_KEYS) <= MODEL_BASE

# Controller sources besides CC numbers 0..127 (rows of the engine's controller table).
SOURCE_CHANNEL_PRESSURE = 128
SOURCE_POLY_PRESSURE = 129
# Per-voice sources: each voice reads its own channel's value (an MPE member channel is one
# note), applied while that voice is tuned, never to the shared parameters.
SOURCE_PRESSURE = 130  # channel pressure of the voice's channel
SOURCE_TIMBRE = 131  # CC 74 of the voice's channel
SOURCE_BEND = 132  # pitch bend of the voice's channel, 0 (full down) .. 1 (full up)
SOURCE_NAMES = {"aftertouch": SOURCE_CHANNEL_PRESSURE, "poly_aftertouch": SOURCE_POLY_PRESSURE,
                "pressure": SOURCE_PRESSURE, "timbre": SOURCE_TIMBRE, "bend": SOURCE_BEND}

# Controller table columns: source, parameter index, value at 0, value at 127, curve.
CTL_SOURCE, CTL_PARAM, CTL_MIN, CTL_MAX, CTL_CURVE = 0, 1, 2, 3, 4
CTL_FIELDS = 5
CURVE_LINEAR, CURVE_EXP = 0.0, 1.0

# Parameter smoothing (see spikesynth.render.set_param): a live change of a key whose Spec says
# ``smooth`` moves the synth's value to its target in a ramp of SMOOTHING_MS, one step every
# SMOOTHING_TICK samples of the absolute sample counter, while a voice sounds; other keys jump.
SMOOTHING_MS = 20.0
SMOOTHING_TICK = 16  # samples (divides the vibrato tick: the two grids coincide)
# Ramp table columns (one row per parameter-vector entry).
R_MODE, R_TARGET, R_STEP, R_LEFT, R_TIMES = 0, 1, 2, 3, 4
RAMP_FIELDS = 5
RAMP_JUMP, RAMP_LINEAR, RAMP_GEOMETRIC = 0.0, 1.0, 2.0  # R_MODE values (geometric: exp curve)
