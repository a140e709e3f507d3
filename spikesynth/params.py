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
    "P_MODEL": "model",
    "P_LIF_TAU_MS": "lif.tau_ms",
    "P_LIF_V_TH": "lif.threshold",
    "P_LIF_V_RESET": "lif.reset",
    "P_LIF_REF_MS": "lif.refractory_ms",
    "P_LIF_METHOD": "lif.method",
    "P_IZH_A": "izhikevich.a",
    "P_IZH_B": "izhikevich.b",
    "P_IZH_C": "izhikevich.c",
    "P_IZH_D": "izhikevich.d",
    "P_IZH_E": "izhikevich.e",
    "P_IZH_F": "izhikevich.f",
    "P_IZH_G": "izhikevich.g",
    "P_IZH_U_VREF": "izhikevich.u_vref",
    "P_IZH_U_LEAK": "izhikevich.u_leak",
    "P_IZH_CURRENT": "izhikevich.current",
    "P_IZH_TUNING": "izhikevich.tuning",
    "P_IZH_REF_RATE": "izhikevich.reference_rate_hz",
    "P_IZH_MAX_STEP": "izhikevich.max_step_ms",
    "P_NET_DRIVE": "network.drive",
    "P_NET_LR": "network.learning_rate",
    "P_NET_STEP": "network.step_ms",
    "P_NET_REF_RATE": "network.reference_rate_hz",
    "P_RELEASE_DRIVE": "release_drive",
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
P_MODEL = 24  # index into patch.MODELS
P_LIF_TAU_MS = 25
P_LIF_V_TH = 26
P_LIF_V_RESET = 27
P_LIF_REF_MS = 28
P_LIF_METHOD = 29  # 0 euler, 1 exact (as spikesynth.dsp.lif)
P_IZH_A = 30
P_IZH_B = 31
P_IZH_C = 32
P_IZH_D = 33
P_IZH_E = 34
P_IZH_F = 35
P_IZH_G = 36
P_IZH_U_VREF = 37
P_IZH_U_LEAK = 38
P_IZH_CURRENT = 39
P_IZH_TUNING = 40  # 0 calibrated, 1 free
P_IZH_REF_RATE = 41
P_IZH_MAX_STEP = 42
P_NET_DRIVE = 43  # external drive of the network's driven neurons
P_NET_LR = 44  # global STDP learning rate (multiplies the spec's stdp.lr)
P_NET_STEP = 45  # fixed model step, ms
P_NET_REF_RATE = 46  # 0: calibrate from the network's own period
P_RELEASE_DRIVE = 47  # 0 hold (the release stays in tune), 1 off (note-off removes the drive)
N_PARAMS = 48

MODEL_SPIKING, MODEL_LIF, MODEL_IZHIKEVICH, MODEL_NETWORK = 0, 1, 2, 3

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
