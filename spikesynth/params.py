"""The patch parameter vector: index names shared by the patch loader and the engine.

A patch becomes one float64 array in musical units (ms, Hz, dB, semitones); the engine
converts to per-sample quantities at note-on and retune time, never per sample. CC mappings
write into this array, which is why it stays in musical units.
"""

from __future__ import annotations

# Each entry: index name -> patch key path (dotted). Order fixes the indices.
PARAM_KEYS = {
    "P_TAU_MS": "membrane.tau_ms",
    "P_V_HIGH": "membrane.threshold_high",
    "P_V_LOW": "membrane.threshold_low",
    "P_V_RESET": "membrane.reset",
    "P_FIRING_MS": "firing_ms",
    "P_REFRACTORY_MS": "refractory_ms",
    "P_SOFTNESS": "softness",
    "P_SPRING_HZ": "spring.frequency_hz",
    "P_SPRING_DAMPING": "spring.damping",
    "P_SPRING_KEYTRACK": "spring.keytrack",
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
}

P_TAU_MS = 0
P_V_HIGH = 1
P_V_LOW = 2
P_V_RESET = 3
P_FIRING_MS = 4
P_REFRACTORY_MS = 5
P_SOFTNESS = 6
P_SPRING_HZ = 7
P_SPRING_DAMPING = 8
P_SPRING_KEYTRACK = 9
P_NOISE = 10
P_ATTACK_MS = 11
P_DECAY_MS = 12
P_SUSTAIN_DB = 13
P_RELEASE_MS = 14
P_GAIN_DB = 15
P_SPREAD = 16
P_BEND_RANGE = 17
P_A4 = 18
P_TRANSPOSE = 19
P_VEL_SENS = 20
P_VIB_CENTS = 21
P_VIB_HZ = 22
P_VOICES = 23
N_PARAMS = 24

PARAM_INDEX = {path: i for i, path in enumerate(PARAM_KEYS.values())}
assert all(globals()[name] == i for i, name in enumerate(PARAM_KEYS))
assert N_PARAMS == len(PARAM_KEYS)

# Controller sources besides CC numbers 0..127 (rows of the engine's controller table).
SOURCE_CHANNEL_PRESSURE = 128
SOURCE_POLY_PRESSURE = 129
SOURCE_NAMES = {"aftertouch": SOURCE_CHANNEL_PRESSURE, "poly_aftertouch": SOURCE_POLY_PRESSURE}

# Controller table columns: source, parameter index, value at 0, value at 127, curve.
CTL_SOURCE, CTL_PARAM, CTL_MIN, CTL_MAX, CTL_CURVE = 0, 1, 2, 3, 4
CTL_FIELDS = 5
CURVE_LINEAR, CURVE_EXP = 0.0, 1.0
