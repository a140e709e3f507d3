"""The plugin: a synth that renders blocks of audio from sample-accurate MIDI events.

Lifecycle (as in CLAP/JUCE): ``Synth(patch, samplerate, max_block)`` prepares — the only
place that allocates; ``process*`` renders a block and ``reset()`` clears the sound but keeps
the patch; neither allocates on the real-time path (:meth:`Synth.process_block`,
:meth:`Synth.process_ring`).

Inside one compiled, ``nogil`` call (:func:`render_block`) the engine renders the voices up
to each event's sample offset, applies the event, and carries on; so the same events
rendered with any block size give identical output. The mix then goes through a DC blocker,
the patch gain, and a safety limiter that keeps every sample at or below −0.3 dBFS; a
non-finite sample is replaced by silence and counted, a voice whose state blows up is reset
and counted.

Voice stealing (when every voice is playing), in this order:
1. the oldest voice playing the same note on the same channel;
2. the oldest released voice (in its release);
3. the oldest voice whose key is up but which the sustain pedal holds;
4. the oldest voice that is neither the lowest nor the highest held note;
5. the oldest voice.
A stolen voice is not cut: it fades out over ``STEAL_FADE_MS`` in a spare slot (the pool has
twice the patch's voices) while the new note starts at once in another slot.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import params as P
from .dsp import izhikevich as izh
from .dsp import lif
from .dsp import model_voice as mv
from .dsp import network_voice as nv
from .dsp import voice as vk
from .dsp.voice import ENV_ATTACK, ENV_DECAY, ENV_FADE, ENV_OFF, ENV_RELEASE
from .events import EVENT_FIELDS, events_from_list, ring_drain
from .network import network_arrays

CEILING_DB = -0.3
CEILING = 10.0 ** (CEILING_DB / 20.0)
STEAL_FADE_MS = 4.0
DC_BLOCK_HZ = 5.0
LIMITER_RELEASE_MS = 80.0
VIBRATO_TICK = 32  # samples between vibrato updates (aligned to the sample counter)
FIRING_MAX_FRACTION = 0.25  # of the period: high notes shorten the spike ...
REFRACTORY_MAX_FRACTION = 0.35  # ... and the refractory time, so the neuron can keep up
MAX_SUBSTEPS = 32  # Izhikevich sub-steps per sample: beyond this, longer steps (real time)
VOICE_RMS = 0.1  # a full-velocity voice's level before the patch gain
MAX_VOICES = 256
MAX_EVENTS = 4096  # events per block on the real-time path

# Per-note tables computed at prepare time (rows of the ``tables`` array, shape (4, 128)).
T_NORM = 0  # level normalisation
T_DC = 1  # the voice's mean output (model voices; the spiking voice knows its DC exactly)
T_SCALE = 2  # Izhikevich and networks: model ms per sample (Izhikevich nan: uncalibrated)
T_SUBSTEPS = 3  # Izhikevich: sub-steps per sample
T_FREQ = 4  # the note's frequency (Hz, unbent) when the tables were made
N_TABLES = 5

# Global state slots.
G_SAMPLE = 0  # samples rendered since reset
G_AGE = 1  # note-on counter (voice age)
G_SPARE = 2  # (unused)
G_NAN_RESETS = 3  # voices reset because their state blew up
G_NONFINITE = 4  # output samples replaced because they were not finite
G_DC_XL = 5
G_DC_YL = 6
G_DC_XR = 7
G_DC_YR = 8
G_LIMIT_GAIN = 9
G_SR = 10
G_SLOTS = 11  # voice slots allocated (2 × MAX_VOICES)
G_STEALS = 12
G_ACTIVE = 13  # voices sounding after the last block
G_SEED = 14
G_LIMITING = 15  # samples the limiter reduced
G_GAIN = 16  # smoothed output gain (linear)
G_RETUNE = 17  # 1: retune every voice at the next block (patch swapped)
G_EVENTS = 18  # events applied
G_IGNORED = 19  # well-formed events the engine does not act on (e.g. program change)
N_GLOBALS = 20

# Channel state columns.
C_BEND = 0  # semitones
C_MOD = 1  # mod wheel 0..1
C_SUSTAIN = 2  # 0 / 1
C_PRESSURE = 3  # 0..1
N_CHANNEL_FIELDS = 4


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
def note_frequency(params, note, bend):
    """12-TET frequency in Hz of ``note`` (+ transpose, + ``bend`` semitones)."""
    return params[P.P_A4] * 2.0 ** ((note + params[P.P_TRANSPOSE] + bend - 69.0) / 12.0)


@njit(cache=True, nogil=True)
def _tune_spiking(V, i, params, sr, freq):
    """Set spiking voice ``i``'s spring, shape and drive for firing rate ``freq`` Hz.

    A voice in FIRING keeps its spring state continuous
    (see :func:`spikesynth.dsp.voice.voice_configure`).
    """
    period = sr / freq
    ms = sr * 1e-3
    t_fire = min(params[P.P_FIRING_MS] * ms, FIRING_MAX_FRACTION * period)
    t_ref = min(params[P.P_REFRACTORY_MS] * ms, REFRACTORY_MAX_FRACTION * period)
    spring_hz = params[P.P_SPRING_HZ] * (freq / 261.6255653005986) ** params[P.P_SPRING_KEYTRACK]
    spring_hz = min(spring_hz, 0.45 * sr)
    # Controllers may move the thresholds past each other: keep the order for this voice
    # without changing the patch's own values (moving the controller back restores them).
    v_high = params[P.P_V_HIGH]
    v_low = min(params[P.P_V_LOW], v_high - 1e-3)
    v_reset = min(params[P.P_V_RESET], v_low - 1e-3)
    vk.voice_configure(V, i, spring_hz / sr, params[P.P_SPRING_DAMPING], v_high,
                       v_low, v_reset, params[P.P_TAU_MS] * ms, t_fire,
                       t_ref, params[P.P_SOFTNESS])
    vk.voice_set_period(V, i, period)
    V[i, vk.F_NOISE] = params[P.P_NOISE]


@njit(cache=True, nogil=True)
def _network_rate(V, i, tables, net, freq):
    """Network steps per sample for network voice ``i`` to play ``freq`` Hz."""
    note = int(V[i, vk.F_NOTE])
    rate = tables[T_SCALE, note] * freq / note_frequency_from_table(tables, note)
    return rate / net.meta[nv.META_STEP]


@njit(cache=True, nogil=True)
def note_frequency_from_table(tables, note):
    return tables[T_FREQ, note]


@njit(cache=True, nogil=True)
def _izh_timescale(V, i, params, tables, net, sr, freq):
    """Model ms per sample and sub-steps of Izhikevich voice ``i`` for rate ``freq`` Hz."""
    note = int(V[i, vk.F_NOTE])
    m = tables[T_SCALE, note]
    if params[P.P_IZH_TUNING] == 0.0 and m == m:  # calibrated (and calibration succeeded)
        return m * freq / note_frequency(params, note, 0.0), int(tables[T_SUBSTEPS, note])
    m = freq / params[P.P_IZH_REF_RATE] * 1000.0 / sr
    return m, min(max(1, int(math.ceil(m / params[P.P_IZH_MAX_STEP]))), MAX_SUBSTEPS)


@njit(cache=True, nogil=True)
def voice_tune(V, i, params, tables, net, sr, freq):
    """Set voice ``i`` (any model) to fire at ``freq`` Hz: the prepare-time maths of a note.

    Called at note-on and whenever pitch bend or a mapped controller changes.
    """
    model = int(params[P.P_MODEL])
    note = int(V[i, vk.F_NOTE])
    V[i, vk.F_NOISE] = params[P.P_NOISE]
    if model == P.MODEL_SPIKING:
        _tune_spiking(V, i, params, sr, freq)
        return
    if model == P.MODEL_NETWORK:
        V[i, vk.F_PERIOD] = sr / freq
        V[i, nv.N_RATE] = _network_rate(V, i, tables, net, freq)
        V[i, nv.N_LR] = params[P.P_NET_LR] * net.meta[nv.META_LR]
        V[i, vk.F_DRIVE] = params[P.P_NET_DRIVE]
        return
    period = sr / freq
    V[i, vk.F_PERIOD] = period
    V[i, vk.F_DC] = tables[T_DC, note]
    if model == P.MODEL_LIF:
        ms = sr * 1e-3
        t_ref = min(params[P.P_LIF_REF_MS] * ms, REFRACTORY_MAX_FRACTION * period)
        tau = params[P.P_LIF_TAU_MS] * ms
        v_th = params[P.P_LIF_V_TH]
        v_reset = min(params[P.P_LIF_V_RESET], v_th - 1e-3)  # order kept against controllers
        lif.set_lif_coeffs(V[i, mv.L_COEFFS:mv.L_COEFFS + lif.LIF_N_COEFFS], 1.0, tau, v_th,
                           v_reset, t_ref, int(params[P.P_LIF_METHOD]))
        V[i, vk.F_DRIVE] = lif.lif_drive(period, tau, v_th, v_reset, t_ref)
        V[i, mv.L_SCALE] = 1.0 / (v_th - v_reset)
    else:
        izh.set_izhikevich_coeffs(
            V[i, mv.Z_COEFFS:mv.Z_COEFFS + izh.IZH_N_COEFFS], 1.0, params[P.P_IZH_A],
            params[P.P_IZH_B], params[P.P_IZH_C], params[P.P_IZH_D], params[P.P_IZH_E],
            params[P.P_IZH_F], params[P.P_IZH_G], params[P.P_IZH_U_VREF],
            params[P.P_IZH_U_LEAK], 30.0)
        m, substeps = _izh_timescale(V, i, params, tables, net, sr, freq)
        mv.izhikevich_set_timescale(V, i, m, substeps)
        V[i, mv.Z_CURRENT] = params[P.P_IZH_CURRENT]
        V[i, mv.Z_SCALE] = mv.IZH_AUDIO_SCALE


@njit(cache=True, nogil=True)
def voice_set_rate(V, i, params, tables, net, sr, freq):
    """Change only voice ``i``'s firing rate (vibrato): drive or time scale, not the shape."""
    model = int(params[P.P_MODEL])
    if model == P.MODEL_SPIKING:
        vk.voice_set_period(V, i, sr / freq)
    elif model == P.MODEL_NETWORK:
        V[i, nv.N_RATE] = _network_rate(V, i, tables, net, freq)
    elif model == P.MODEL_LIF:
        c = mv.L_COEFFS
        V[i, vk.F_DRIVE] = lif.lif_drive(sr / freq, V[i, c + lif.LIF_TAU], V[i, c + lif.LIF_V_TH],
                                         V[i, c + lif.LIF_V_RESET], V[i, c + lif.LIF_T_REF])
    else:
        m, _ = _izh_timescale(V, i, params, tables, net, sr, freq)
        mv.izhikevich_set_timescale(V, i, m, V[i, mv.Z_SUBSTEPS])


@njit(cache=True, nogil=True)
def _vibrato_cents(V, i, params, C, sr, now):
    """Vibrato offset in cents; its phase is a function of time since note-on."""
    depth = C[int(V[i, vk.F_CHANNEL]), C_MOD] * params[P.P_VIB_CENTS]
    if depth == 0.0:
        return 0.0
    phase = (now - V[i, vk.F_ONSET]) * params[P.P_VIB_HZ] / sr
    return depth * math.sin(2.0 * math.pi * (phase - math.floor(phase)))


@njit(cache=True, nogil=True)
def _retune(V, i, params, tables, net, C, sr, now):
    bend = C[int(V[i, vk.F_CHANNEL]), C_BEND]
    freq = note_frequency(params, V[i, vk.F_NOTE], bend)
    voice_tune(V, i, params, tables, net, sr, freq)
    cents = _vibrato_cents(V, i, params, C, sr, now)
    if cents != 0.0:
        voice_set_rate(V, i, params, tables, net, sr, freq * 2.0 ** (cents / 1200.0))
    if V[i, vk.F_DRIVE_OFF] != 0.0:
        _cut_drive(V, i, params)


@njit(cache=True, nogil=True)
def _cut_drive(V, i, params):
    """Remove voice ``i``'s input (a release with ``release_drive: off``)."""
    if int(params[P.P_MODEL]) == P.MODEL_IZHIKEVICH:
        V[i, mv.Z_CURRENT] = 0.0
    else:
        V[i, vk.F_DRIVE] = 0.0


@njit(cache=True, nogil=True)
def _release(V, i, params):
    if V[i, vk.F_ENV_STAGE] == ENV_ATTACK or V[i, vk.F_ENV_STAGE] == ENV_DECAY:
        V[i, vk.F_ENV_STAGE] = ENV_RELEASE
        if params[P.P_RELEASE_DRIVE] != 0.0:
            V[i, vk.F_DRIVE_OFF] = 1.0
            _cut_drive(V, i, params)
    V[i, vk.F_KEY_HELD] = 0.0
    V[i, vk.F_SUSTAINED] = 0.0


@njit(cache=True, nogil=True)
def _playing(V, i):
    s = V[i, vk.F_ENV_STAGE]
    return s == ENV_ATTACK or s == ENV_DECAY or s == ENV_RELEASE


@njit(cache=True, nogil=True)
def _oldest(V, n_slots, kind, note, channel, low, high):
    """Oldest playing voice matching ``kind`` (see the stealing order), or -1."""
    best = -1
    best_age = 1e300
    for i in range(n_slots):
        if not _playing(V, i):
            continue
        held = V[i, vk.F_KEY_HELD] != 0.0
        if kind == 1:
            ok = V[i, vk.F_NOTE] == note and V[i, vk.F_CHANNEL] == channel
        elif kind == 2:
            ok = V[i, vk.F_ENV_STAGE] == ENV_RELEASE
        elif kind == 3:
            ok = not held and V[i, vk.F_SUSTAINED] != 0.0
        elif kind == 4:
            ok = V[i, vk.F_NOTE] != low and V[i, vk.F_NOTE] != high
        else:
            ok = True
        if ok and V[i, vk.F_AGE] < best_age:
            best_age = V[i, vk.F_AGE]
            best = i
    return best


@njit(cache=True, nogil=True)
def _allocate(V, G, params, note, channel, fade_samples):
    """Pick a slot for a new note, stealing (with a fade) when every voice is playing."""
    n_slots = int(G[G_SLOTS])
    limit = int(params[P.P_VOICES])
    playing = 0
    low = 1e9
    high = -1e9
    for i in range(n_slots):
        if _playing(V, i):
            playing += 1
            if V[i, vk.F_KEY_HELD] != 0.0:
                low = min(low, V[i, vk.F_NOTE])
                high = max(high, V[i, vk.F_NOTE])
    while playing >= limit:
        victim = -1
        for kind in range(1, 6):
            victim = _oldest(V, n_slots, kind, note, channel, low, high)
            if victim >= 0:
                break
        V[victim, vk.F_ENV_STAGE] = ENV_FADE
        V[victim, vk.F_FADE_STEP] = max(V[victim, vk.F_ENV], 1e-9) / fade_samples
        V[victim, vk.F_KEY_HELD] = 0.0
        G[G_STEALS] += 1
        playing -= 1
    # A free slot; failing that, the quietest fading one.
    best = -1
    best_env = 1e300
    for i in range(n_slots):
        s = V[i, vk.F_ENV_STAGE]
        if s == ENV_OFF:
            return i
        if s == ENV_FADE and V[i, vk.F_ENV] < best_env:
            best_env = V[i, vk.F_ENV]
            best = i
    return best


@njit(cache=True, nogil=True)
def _note_on(V, rng, G, C, params, tables, net, sr, now, channel, note, velocity):
    fade = max(STEAL_FADE_MS * 1e-3 * sr, 1.0)
    i = _allocate(V, G, params, note, channel, fade)
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
    V[i, vk.F_AMP] = ((1.0 - sens) + sens * v01 * v01) * tables[T_NORM, note]
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
    rng[i] = _splitmix(np.uint64(G[G_SEED]) * np.uint64(1000003) + np.uint64(G[G_AGE]))
    _retune(V, i, params, tables, net, C, sr, now)
    _start_firing(V, i, params, net)


@njit(cache=True, nogil=True)
def _start_firing(V, i, params, net):
    """The neuron fires at the note-on sample: the note speaks at once, on time."""
    model = int(params[P.P_MODEL])
    if model == P.MODEL_SPIKING:
        vk.voice_fire(V, i)
    elif model == P.MODEL_LIF:
        V[i, mv.L_STATE + lif.LIF_V] = V[i, mv.L_COEFFS + lif.LIF_V_TH]
        V[i, mv.L_HELD] = 0.0
    elif model == P.MODEL_NETWORK:
        nv.network_voice_start(V, i, net)
    else:
        V[i, mv.Z_STATE + izh.IZH_V] = 30.0
        V[i, mv.Z_STATE + izh.IZH_U] = params[P.P_IZH_B] * -65.0
        V[i, mv.Z_HELD] = 0.0


@njit(cache=True, nogil=True)
def _controller(V, G, C, params, tables, net, ctl, sr, now, channel, source, value):
    """Apply mapped controllers for ``source`` (CC number or pressure source) at ``value`` 0..1."""
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
        for i in range(int(G[G_SLOTS])):
            if V[i, vk.F_ENV_STAGE] != ENV_OFF:
                _retune(V, i, params, tables, net, C, sr, now)


@njit(cache=True, nogil=True)
def apply_event(V, rng, G, C, params, ctl, tables, net, now, status, d1, d2):
    """Apply one MIDI channel message. Thread: audio (inside :func:`render_block`)."""
    sr = G[G_SR]
    kind = status & 0xF0
    ch = status & 0x0F
    n_slots = int(G[G_SLOTS])
    G[G_EVENTS] += 1
    if kind == 0x90 and d2 > 0:
        _note_on(V, rng, G, C, params, tables, net, sr, now, ch, d1, d2)
    elif kind == 0x80 or kind == 0x90:
        for i in range(n_slots):
            if (V[i, vk.F_KEY_HELD] != 0.0 and V[i, vk.F_NOTE] == d1
                    and V[i, vk.F_CHANNEL] == ch and _playing(V, i)):
                if C[ch, C_SUSTAIN] != 0.0:
                    V[i, vk.F_KEY_HELD] = 0.0
                    V[i, vk.F_SUSTAINED] = 1.0
                else:
                    _release(V, i, params)
    elif kind == 0xE0:
        C[ch, C_BEND] = ((d2 << 7 | d1) - 8192) / 8192.0 * params[P.P_BEND_RANGE]
        for i in range(n_slots):
            if V[i, vk.F_ENV_STAGE] != ENV_OFF and V[i, vk.F_CHANNEL] == ch:
                _retune(V, i, params, tables, net, C, sr, now)
    elif kind == 0xB0:
        if d1 == 64:
            C[ch, C_SUSTAIN] = 1.0 if d2 >= 64 else 0.0
            if d2 < 64:
                for i in range(n_slots):
                    if V[i, vk.F_SUSTAINED] != 0.0 and V[i, vk.F_CHANNEL] == ch:
                        _release(V, i, params)
        elif d1 == 1:
            C[ch, C_MOD] = d2 / 127.0
            for i in range(n_slots):  # vibrato depth follows at once
                if V[i, vk.F_ENV_STAGE] != ENV_OFF and V[i, vk.F_CHANNEL] == ch:
                    _retune(V, i, params, tables, net, C, sr, now)
            _controller(V, G, C, params, tables, net, ctl, sr, now, ch, 1, d2 / 127.0)
        elif d1 == 120:  # all sound off: a short fade, never a click
            fade = max(STEAL_FADE_MS * 1e-3 * sr, 1.0)
            for i in range(n_slots):
                if V[i, vk.F_CHANNEL] == ch and _playing(V, i):
                    V[i, vk.F_ENV_STAGE] = ENV_FADE
                    V[i, vk.F_FADE_STEP] = max(V[i, vk.F_ENV], 1e-9) / fade
                    V[i, vk.F_KEY_HELD] = 0.0
        elif d1 == 123:  # all notes off: every voice releases, pedal or not
            for i in range(n_slots):
                if V[i, vk.F_CHANNEL] == ch and _playing(V, i):
                    _release(V, i, params)
        elif d1 == 121:  # reset all controllers
            C[ch, C_BEND] = 0.0
            C[ch, C_MOD] = 0.0
            C[ch, C_PRESSURE] = 0.0
            if C[ch, C_SUSTAIN] != 0.0:
                C[ch, C_SUSTAIN] = 0.0
                for i in range(n_slots):
                    if V[i, vk.F_SUSTAINED] != 0.0 and V[i, vk.F_CHANNEL] == ch:
                        _release(V, i, params)
            for i in range(n_slots):
                if V[i, vk.F_ENV_STAGE] != ENV_OFF and V[i, vk.F_CHANNEL] == ch:
                    _retune(V, i, params, tables, net, C, sr, now)
        else:
            _controller(V, G, C, params, tables, net, ctl, sr, now, ch, d1, d2 / 127.0)
    elif kind == 0xD0:
        C[ch, C_PRESSURE] = d1 / 127.0
        _controller(V, G, C, params, tables, net, ctl, sr, now, ch, P.SOURCE_CHANNEL_PRESSURE,
                    d1 / 127.0)
    elif kind == 0xA0:
        _controller(V, G, C, params, tables, net, ctl, sr, now, ch, P.SOURCE_POLY_PRESSURE,
                    d2 / 127.0)
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
def _vibrato_tick(V, G, C, params, tables, net, sr, now):
    """Re-solve the drive (not the shape) of every vibrating voice for the LFO at ``now``."""
    for i in range(int(G[G_SLOTS])):
        if V[i, vk.F_ENV_STAGE] == ENV_OFF:
            continue
        cents = _vibrato_cents(V, i, params, C, sr, now)
        if cents != 0.0:
            bend = C[int(V[i, vk.F_CHANNEL]), C_BEND]
            base = note_frequency(params, V[i, vk.F_NOTE], bend)
            voice_set_rate(V, i, params, tables, net, sr, base * 2.0 ** (cents / 1200.0))
            if V[i, vk.F_DRIVE_OFF] != 0.0:
                _cut_drive(V, i, params)


@njit(cache=True, nogil=True)
def run_voice(model, V, i, rng, out_l, out_r, start, stop, drive_in, trace, net):
    """Render one voice of any model (see :func:`spikesynth.dsp.voice.voice_run`)."""
    if model == P.MODEL_SPIKING:
        return vk.voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace)
    if model == P.MODEL_NETWORK:
        return nv.network_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace, net)
    if model == P.MODEL_LIF:
        return mv.lif_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace)
    return mv.izhikevich_voice_run(V, i, rng, out_l, out_r, start, stop, drive_in, trace)


@njit(cache=True, nogil=True)
def _render_voices(model, V, rng, G, mix, start, stop, empty_drive, empty_trace, net):
    for i in range(int(G[G_SLOTS])):
        if V[i, vk.F_ENV_STAGE] == ENV_OFF:
            continue
        ok = run_voice(model, V, i, rng, mix[0], mix[1], start, stop, empty_drive, empty_trace,
                       net)
        if not ok:
            for k in range(vk.N_FIELDS):
                V[i, k] = 0.0
            G[G_NAN_RESETS] += 1


@njit(cache=True, nogil=True)
def render_block(out, events, n_events, params, ctl, tables, net, V, rng, G, C, mix,
                 no_trace):
    """Render ``out.shape[0]`` frames, applying ``events[:n_events]`` at their offsets.

    Thread: audio. Allocates nothing.

    Parameters
    ----------
    out : float32 array, shape (frames, 2)
    events : int32 array, shape (>= n_events, 4)
        Rows ``(offset, status, data1, data2)`` sorted by offset, offsets in ``[0, frames)``.
    params : float64 array, shape (N_PARAMS,)
        The patch in musical units; controllers write into it.
    ctl : float64 array, shape (n, CTL_FIELDS)
    tables : float64 array, shape (N_TABLES, 128)
        Per-note tables (level, DC, Izhikevich time scale) from prepare time.
    V : float64 array, shape (n_slots, N_FIELDS); rng : uint64 array, shape (n_slots,)
    G : float64 array, shape (N_GLOBALS,); C : float64 array, shape (16, N_CHANNEL_FIELDS)
    mix : float64 array, shape (2, >= frames)
    no_trace : float64 array, shape (0, TRACE_FIELDS)
    """
    frames = out.shape[0]
    sr = G[G_SR]
    mix_l = mix[0]
    mix_r = mix[1]
    for n in range(frames):
        mix_l[n] = 0.0
        mix_r[n] = 0.0
    empty_drive = mix_l[:0]
    t0 = int(G[G_SAMPLE])
    now = t0
    if G[G_RETUNE] != 0.0:
        G[G_RETUNE] = 0.0
        for i in range(int(G[G_SLOTS])):
            if V[i, vk.F_ENV_STAGE] != ENV_OFF:
                _retune(V, i, params, tables, net, C, sr, now)
    pos = 0
    e = 0
    while pos < frames:
        while e < n_events and events[e, 0] <= pos:
            apply_event(V, rng, G, C, params, ctl, tables, net, t0 + pos,
                        events[e, 1], events[e, 2], events[e, 3])
            e += 1
        stop = frames
        if e < n_events and events[e, 0] < stop:
            stop = events[e, 0]
        # Vibrato updates on a grid of the absolute sample counter: block-size invariant.
        at_tick = False
        if _vibrato_active(params, C):
            tick = VIBRATO_TICK - (t0 + pos) % VIBRATO_TICK
            if pos + tick <= stop:
                stop = pos + tick
                at_tick = True
        _render_voices(int(params[P.P_MODEL]), V, rng, G, mix, pos, stop, empty_drive, no_trace,
                       net)
        if at_tick:
            _vibrato_tick(V, G, C, params, tables, net, sr, t0 + stop)
        pos = stop
    while e < n_events:  # events of a zero-frame block
        apply_event(V, rng, G, C, params, ctl, tables, net, t0 + pos,
                    events[e, 1], events[e, 2], events[e, 3])
        e += 1

    # Master section: DC blocker, gain (smoothed), safety limiter, finite check.
    r_dc = math.exp(-2.0 * math.pi * DC_BLOCK_HZ / sr)
    r_lim = math.exp(-1.0 / (LIMITER_RELEASE_MS * 1e-3 * sr))
    r_gain = math.exp(-1.0 / (0.01 * sr))
    target = 10.0 ** (params[P.P_GAIN_DB] / 20.0)
    xl = G[G_DC_XL]
    yl = G[G_DC_YL]
    xr = G[G_DC_XR]
    yr = G[G_DC_YR]
    g_lim = G[G_LIMIT_GAIN]
    gain = G[G_GAIN]
    ceiling = CEILING * (1.0 - 1e-6)
    for n in range(frames):
        gain = target + (gain - target) * r_gain
        yl = mix_l[n] - xl + r_dc * yl
        xl = mix_l[n]
        yr = mix_r[n] - xr + r_dc * yr
        xr = mix_r[n]
        left = yl * gain
        right = yr * gain
        if not (math.isfinite(left) and math.isfinite(right)):
            G[G_NONFINITE] += 1
            left = 0.0
            right = 0.0
            xl = yl = xr = yr = 0.0
        g_lim = 1.0 - (1.0 - g_lim) * r_lim
        peak = max(abs(left), abs(right)) * g_lim
        if peak > ceiling:
            g_lim *= ceiling / peak
            G[G_LIMITING] += 1
        left = min(max(left * g_lim, -ceiling), ceiling)
        right = min(max(right * g_lim, -ceiling), ceiling)
        out[n, 0] = left
        out[n, 1] = right
    G[G_DC_XL] = xl
    G[G_DC_YL] = yl
    G[G_DC_XR] = xr
    G[G_DC_YR] = yr
    G[G_LIMIT_GAIN] = g_lim
    G[G_GAIN] = gain
    G[G_SAMPLE] += frames
    active = 0
    for i in range(int(G[G_SLOTS])):
        if V[i, vk.F_ENV_STAGE] != ENV_OFF:
            active += 1
    G[G_ACTIVE] = active


@njit(cache=True, nogil=True)
def render_ring(out, slots, header, events, block_start_ns, latency_ns,
                params, ctl, tables, net, V, rng, G, C, mix, no_trace, fading):
    """Drain the MIDI ring into this block's events and render it: the live host's one call.

    Thread: audio. Allocates nothing. See :func:`spikesynth.events.ring_drain`. With
    ``fading`` (a patch switch waits), every voice fades out instead and the ring is left
    untouched, so the MIDI that arrives meanwhile plays with the new patch.
    """
    n = 0
    if fading:
        _fade_all(V, G, max(STEAL_FADE_MS * 1e-3 * G[G_SR], 1.0))
    else:
        n = ring_drain(slots, header, events, block_start_ns, latency_ns, G[G_SR],
                       out.shape[0])
    render_block(out, events, n, params, ctl, tables, net, V, rng, G, C, mix, no_trace)


@njit(cache=True, nogil=True)
def _solo_voice(V, params, tables, net, C, sr, note):
    """Set row 0 of ``V`` to a lone voice tuned to ``note``: unit gain, flat envelope."""
    for k in range(vk.N_FIELDS):
        V[0, k] = 0.0
    V[0, vk.F_NOTE] = note
    V[0, vk.F_ENV_STAGE] = ENV_DECAY
    V[0, vk.F_ENV] = 1.0
    V[0, vk.F_SUSTAIN] = 1.0
    V[0, vk.F_DEC_COEF] = 1.0
    V[0, vk.F_AMP] = 1.0
    V[0, vk.F_GAIN_L] = 1.0
    _retune(V, 0, params, tables, net, C, sr, 0)
    if int(params[P.P_MODEL]) == P.MODEL_IZHIKEVICH:  # at rest, as the papers start
        V[0, mv.Z_STATE + izh.IZH_V] = -65.0
        V[0, mv.Z_STATE + izh.IZH_U] = params[P.P_IZH_B] * -65.0


@njit(cache=True, nogil=True)
def _izhikevich_reference_ms(V, params, tables, net, C, sr, spike_times):
    """The Izhikevich neuron's own steady period in model ms (fine steps): a first guess."""
    _solo_voice(V, params, tables, net, C, sr, 69)
    step = min(0.02, params[P.P_IZH_MAX_STEP])
    mv.izhikevich_set_timescale(V, 0, step, 1)
    V[0, mv.Z_STATE + izh.IZH_V] = -65.0
    V[0, mv.Z_STATE + izh.IZH_U] = params[P.P_IZH_B] * -65.0
    return mv.measure_period_samples(V, 0, int(4000.0 / step), spike_times) * step


@njit(cache=True, nogil=True)
def _network_tables(V, params, sr, tables, net, spike_times):
    """Measure the network once in model time: its period sets every note's time scale."""
    meta = net.meta
    step = meta[nv.META_STEP]
    nv.network_voice_start(V, 0, net)
    period_steps, rms = nv.network_reference(net, params[P.P_NET_DRIVE], 0.0,
                                             int(4000.0 / step), spike_times)
    if params[P.P_NET_REF_RATE] > 0.0:
        period_ms = 1000.0 / params[P.P_NET_REF_RATE]
    elif period_steps == period_steps:
        period_ms = period_steps * step
    else:  # not firing periodically and no reference rate: a nominal 40 Hz
        period_ms = 25.0
    meta[nv.META_PERIOD] = period_ms
    for note in range(128):
        tables[T_SCALE, note] = period_ms * tables[T_FREQ, note] / sr
        tables[T_NORM, note] = VOICE_RMS / (rms if rms > 1e-6 else 0.15)


@njit(cache=True, nogil=True)
def _note_tables(params, sr, tables, net):
    """Per-note tables (prepare time): Izhikevich calibration, then each note's mean and level.

    Level: the gain that makes a note's steady-state RMS ``VOICE_RMS``; mean: the model
    voices' DC (in membrane units), subtracted per voice.
    """
    V = np.zeros((1, vk.N_FIELDS))
    rng = np.ones(1, dtype=np.uint64)
    C = np.zeros((16, N_CHANNEL_FIELDS))
    spike_times = np.zeros(512)
    model = int(params[P.P_MODEL])
    saved_noise = params[P.P_NOISE]
    params[P.P_NOISE] = 0.0
    for note in range(128):
        tables[T_NORM, note] = 1.0
        tables[T_DC, note] = 0.0
        tables[T_SCALE, note] = math.nan
        tables[T_SUBSTEPS, note] = 1.0
        tables[T_FREQ, note] = note_frequency(params, note, 0.0)
    if model == P.MODEL_NETWORK:
        _network_tables(V, params, sr, tables, net, spike_times)
        params[P.P_NOISE] = saved_noise
        return
    if model == P.MODEL_IZHIKEVICH and params[P.P_IZH_TUNING] == 0.0:
        ref_ms = _izhikevich_reference_ms(V, params, tables, net, C, sr, spike_times)
        if ref_ms == ref_ms:  # fires periodically: calibrate every audible note
            for note in range(128):
                if tables[T_FREQ, note] < 16.0:  # sub-audio: scaled from a calibrated note
                    continue
                _solo_voice(V, params, tables, net, C, sr, note)
                V[0, mv.Z_STATE + izh.IZH_V] = -65.0
                V[0, mv.Z_STATE + izh.IZH_U] = params[P.P_IZH_B] * -65.0
                target = sr / note_frequency(params, note, 0.0)
                m, n = mv.calibrate_izhikevich(V, 0, target, params[P.P_IZH_MAX_STEP],
                                               ref_ms / target, spike_times)
                tables[T_SCALE, note] = m
                tables[T_SUBSTEPS, note] = max(n, 1)
            lowest = 0
            while lowest < 127 and not tables[T_SCALE, lowest] == tables[T_SCALE, lowest]:
                lowest += 1
            for note in range(lowest):  # the model's time scale is proportional to f
                tables[T_SCALE, note] = (tables[T_SCALE, lowest] * tables[T_FREQ, note]
                                         / tables[T_FREQ, lowest])
                tables[T_SUBSTEPS, note] = tables[T_SUBSTEPS, lowest]
    max_len = int(0.6 * sr)
    buf = np.zeros((2, max_len))
    nodrive = np.zeros(0)
    notrace = np.zeros((0, vk.TRACE_FIELDS))
    for note in range(128):
        _solo_voice(V, params, tables, net, C, sr, note)
        _start_firing(V, 0, params, net)
        period = V[0, vk.F_PERIOD]
        settle = int(min(max(4.0 * period, 0.05 * sr), 0.3 * sr))
        window = int(min(max(4.0 * period, 0.05 * sr), 0.3 * sr))
        # Measure over whole periods where they fit, so the estimate does not ripple by note.
        if window >= period:
            window = int(period * math.floor(window / period))
        buf[0, : settle + window] = 0.0
        run_voice(model, V, 0, rng, buf[0], buf[1], 0, settle + window, nodrive, notrace, net)
        mean = 0.0
        for n in range(settle, settle + window):
            mean += buf[0, n]
        mean /= window
        s = 0.0
        for n in range(settle, settle + window):
            s += (buf[0, n] - mean) * (buf[0, n] - mean)
        rms = math.sqrt(s / window)
        # A voice silent at the patch's own drive (free tuning, current set by a controller)
        # gets a nominal level: a spiking membrane's RMS is about 0.15 in audio units.
        tables[T_NORM, note] = VOICE_RMS / (rms if rms > 1e-3 else 0.15)
        if model == P.MODEL_LIF:
            tables[T_DC, note] = mean / V[0, mv.L_SCALE]
        elif model == P.MODEL_IZHIKEVICH:
            tables[T_DC, note] = mean / V[0, mv.Z_SCALE]
    params[P.P_NOISE] = saved_noise


@njit(cache=True, nogil=True)
def _fade_all(V, G, fade_samples):
    """Start a short fade on every playing voice (a patch switch)."""
    for i in range(int(G[G_SLOTS])):
        if _playing(V, i):
            V[i, vk.F_ENV_STAGE] = ENV_FADE
            V[i, vk.F_FADE_STEP] = max(V[i, vk.F_ENV], 1e-9) / fade_samples
            V[i, vk.F_KEY_HELD] = 0.0


def _compatible(old, new) -> bool:
    """Whether sounding voices can carry on from prepared patch ``old`` into ``new``."""
    a, b = old[0], new[0]
    if a["model"] != b["model"] or a.network != b.network:
        return False
    return a.network is None or a["network.step_ms"] == b["network.step_ms"]


class Synth:
    """The spikesynth engine, a plugin that renders stereo blocks from timed MIDI events.

    Parameters
    ----------
    patch : Patch
    samplerate : float
        Hz.
    max_block : int
        Largest block :meth:`process_block` / :meth:`process_ring` will be asked for.
    seed : int
        Seeds the voices' noise (renders are deterministic).

    Thread: constructed on main; see each method.
    """

    def __init__(self, patch, samplerate=48000, max_block=4096, seed=0):
        if not 8000 <= samplerate <= 384000:
            raise ValueError(f"samplerate {samplerate} Hz outside 8000..384000")
        if max_block < 1:
            raise ValueError("max_block must be at least 1")
        self.samplerate = float(samplerate)
        self.max_block = int(max_block)
        self.seed = int(seed)
        n_slots = 2 * MAX_VOICES
        self.V = np.zeros((n_slots, vk.N_FIELDS))
        self.rng = np.ones(n_slots, dtype=np.uint64)
        self.G = np.zeros(N_GLOBALS)
        self.C = np.zeros((16, N_CHANNEL_FIELDS))
        self.mix = np.zeros((2, self.max_block))
        self.events = np.zeros((MAX_EVENTS, EVENT_FIELDS), dtype=np.int32)
        self.no_trace = np.zeros((0, vk.TRACE_FIELDS))
        self._pending = None  # a prepared patch waiting for the voices to fade
        self._rendered = None  # the prepared patch the last block used
        self.rejected = 0  # malformed MIDI seen by process()
        self.faults = 0  # blocks replaced by silence after an exception
        self._prepared = self.prepare_patch(patch)
        self.reset()

    # -- main thread ------------------------------------------------------------------------
    def prepare_patch(self, patch):
        """Compute a patch's kernel arrays (allocates). Thread: main."""
        params = patch.param_vector()
        tables = np.zeros((N_TABLES, 128))
        net = network_arrays(patch, self.V.shape[0])
        _note_tables(params.copy(), self.samplerate, tables, net)
        return patch, params, patch.controller_table(), tables, net

    def use_patch(self, prepared):
        """Switch to a prepared patch. Thread: any (only reference assignments).

        The same voice model (and the same network and step): sounding voices retune to the
        new parameters at the next block. Otherwise the live path fades every voice out over
        ``STEAL_FADE_MS`` first, holding incoming MIDI in the ring, then switches (no click);
        the offline path switches at the next block, cutting sounding voices. The latest
        request always wins, also over a switch still waiting for its fade.
        """
        if self._pending is None and _compatible(self._prepared, prepared):
            if prepared[0].network is not None:  # the voices keep the network's running state
                old_net = self._prepared[4]
                old_net.mean_v[:] = prepared[4].mean_v  # mean potentials, period for the drive
                old_net.meta[:] = prepared[4].meta
                prepared = prepared[:4] + (old_net,)
            self._prepared = prepared  # the audio thread sees a new object and retunes
        else:
            self._pending = prepared

    def _take_pending(self):
        """Audio thread: the pending patch, if its fade is over (switches to it)."""
        pending = self._pending
        if pending is None:
            return False
        if self.G[G_ACTIVE] != 0:
            return True  # still fading
        self.V[:, vk.F_ENV_STAGE] = ENV_OFF
        self._prepared = pending
        if self._pending is pending:  # a newer request keeps waiting
            self._pending = None
        return self._pending is not None

    def _current(self):
        """Audio thread: the prepared patch to render, flagging a retune when it changed."""
        prepared = self._prepared
        if prepared is not self._rendered:
            self._rendered = prepared
            self.G[G_RETUNE] = 1.0
        return prepared

    def set_patch(self, patch):
        """Prepare and switch to ``patch``. Thread: main."""
        self.use_patch(self.prepare_patch(patch))

    @property
    def patch(self):
        return self._prepared[0]

    @property
    def params(self):
        """The live parameter vector (controllers write into it)."""
        return self._prepared[1]

    def reset(self):
        """Silence every voice and clear DSP state; the patch is kept. Thread: main or audio."""
        self.V[:] = 0.0
        self.C[:] = 0.0
        self.G[:] = 0.0
        self.G[G_SR] = self.samplerate
        self.G[G_SLOTS] = self.V.shape[0]
        self.G[G_LIMIT_GAIN] = 1.0
        self.G[G_SEED] = self.seed
        self.G[G_GAIN] = 10.0 ** (self._prepared[1][P.P_GAIN_DB] / 20.0)

    def warm_up(self):
        """Compile (or load from the cache) every kernel the audio thread uses. Thread: main."""
        out = np.zeros((1, 2), dtype=np.float32)
        from .events import EventRing

        ring = EventRing(4)
        self.process_ring(out, ring, 0, 0)
        _, params, ctl, tables, net = self._prepared
        render_ring(out, ring.slots, ring.header, self.events, 0, 0, params, ctl, tables, net,
                    self.V, self.rng, self.G, self.C, self.mix, self.no_trace, True)
        self.reset()

    # -- audio thread -----------------------------------------------------------------------
    def process_block(self, out, events, n_events):
        """Render into ``out`` (float32, shape (frames <= max_block, 2)). Thread: audio.

        ``events`` is an int32 array of ``(offset, status, data1, data2)`` rows (see
        :mod:`spikesynth.events`). Allocates nothing.
        """
        if out.shape[0] > self.max_block:
            raise ValueError(f"block of {out.shape[0]} frames > max_block {self.max_block}")
        if self._pending is not None:  # offline: switch at once
            self.V[:, vk.F_ENV_STAGE] = ENV_OFF
            self.G[G_ACTIVE] = 0
            self._take_pending()
        _, params, ctl, tables, net = self._current()
        render_block(out, events, n_events, params, ctl, tables, net, self.V, self.rng, self.G,
                     self.C, self.mix, self.no_trace)

    def process_ring(self, out, ring, block_start_ns, latency_ns):
        """Drain ``ring`` and render one block into ``out``; never raises. Thread: audio.

        Messages play at their arrival time plus ``latency_ns``, at a sample offset inside the
        block that starts at host time ``block_start_ns``. On an internal fault the block is
        silence and :attr:`faults` counts it.
        """
        try:
            if out.shape[0] > self.max_block:  # the host broke its promise: silence, counted
                out.fill(0.0)
                self.faults += 1
                return
            fading = self._take_pending()
            _, params, ctl, tables, net = self._current()
            render_ring(out, ring.slots, ring.header, self.events, block_start_ns, latency_ns,
                        params, ctl, tables, net, self.V, self.rng, self.G, self.C, self.mix,
                        self.no_trace, fading)
        except Exception:  # noqa: BLE001 - the audio thread must never raise
            out.fill(0.0)
            self.faults += 1

    # -- main thread, offline ---------------------------------------------------------------
    def process(self, frames, events=()):
        """Render ``frames`` frames with ``events`` = ``[(sample_offset, midi_bytes), ...]``.

        Thread: main (allocates the returned float32 array of shape (frames, 2)). Malformed
        MIDI is skipped and counted in :attr:`rejected`. Any ``frames`` is allowed (rendered in
        chunks of ``max_block``); a zero-frame call still applies its events.
        """
        frames = int(frames)
        if frames < 0:
            raise ValueError("frames must be >= 0")
        out = np.zeros((frames, 2), dtype=np.float32)
        items = list(events)
        evs, n, rejected = events_from_list(items, max(frames, 1))
        self.rejected += rejected
        if frames == 0:
            self.process_block(out, evs, n)
            return out
        e = 0
        for start in range(0, frames, self.max_block):
            stop = min(start + self.max_block, frames)
            e_end = e
            while e_end < n and evs[e_end, 0] < stop:
                e_end += 1
            chunk = evs[e:e_end].copy()
            chunk[:, 0] -= start
            self.process_block(out[start:stop], chunk, e_end - e)
            e = e_end
        return out

    def stats(self) -> dict:
        """Counters for status lines and tests. Thread: any (reads only)."""
        G = self.G
        return {
            "voices_active": int(G[G_ACTIVE]),
            "faults": self.faults,
            "nan_resets": int(G[G_NAN_RESETS]),
            "nonfinite_samples": int(G[G_NONFINITE]),
            "limited_samples": int(G[G_LIMITING]),
            "steals": int(G[G_STEALS]),
            "events_applied": int(G[G_EVENTS]),
            "events_rejected": self.rejected,
            "events_ignored": int(G[G_IGNORED]),
            "samples": int(G[G_SAMPLE]),
        }


def trace_voice(patch, samplerate=48000, frames=48000, note=60, current=None):
    """Run one voice of ``patch`` alone and return its traces (for tests, plots and study).

    Thread: main (allocates).

    Parameters
    ----------
    note : int
        The voice is tuned for this note (drive solved for its frequency) and starts, like
        a played note, with a spike at sample 0.
    current : array of float, shape (frames,), optional
        Membrane input per sample, overriding the solved drive; the voice then starts at
        rest instead of with a spike.

    Returns
    -------
    dict of arrays, shape (frames,)
        ``v`` membrane, ``state`` (0 RESTING, 1 FIRING, 2 REFRACTORY), ``drive`` spike drive,
        ``spring`` spring output, ``out`` the voice's audio before the master section;
        ``spikes``: a list, per neuron (one for single-neuron voices), of the sample indices
        where it spiked; plus scalars ``period`` (samples), ``drive_level``, ``dc``.
        For the model voices ``state`` is 1 on samples with a spike; for network voices it
        counts network steps and ``v`` is the first neuron's membrane.
    """
    params = patch.param_vector()
    params[P.P_NOISE] = 0.0 if current is not None else params[P.P_NOISE]
    sr = float(samplerate)
    tables = np.zeros((N_TABLES, 128))
    net = network_arrays(patch, 1)
    _note_tables(params.copy(), sr, tables, net)
    V = np.zeros((1, vk.N_FIELDS))
    rng = np.ones(1, dtype=np.uint64)
    C = np.zeros((16, N_CHANNEL_FIELDS))
    _solo_voice(V, params, tables, net, C, sr, note)
    drive_in = np.zeros(0)
    if current is None or patch.network is not None:  # a network always starts from its spec
        _start_firing(V, 0, params, net)
    if current is not None:
        drive_in = np.ascontiguousarray(current, dtype=np.float64)
        frames = len(drive_in)
    n_neurons = len(net.mean_v) if patch.network is not None else 0
    trace = np.zeros((frames, vk.TRACE_FIELDS + n_neurons))
    left = np.zeros(frames)
    right = np.zeros(frames)
    info = {"period": V[0, vk.F_PERIOD], "drive_level": V[0, vk.F_DRIVE], "dc": V[0, vk.F_DC],
            "t_fire": V[0, vk.F_TFIRE], "t_ref": V[0, vk.F_TREF], "tau": V[0, vk.F_TAU],
            "v_start": V[0, vk.F_VSTART]}
    model = int(params[P.P_MODEL])
    run_voice(model, V, 0, rng, left, right, 0, frames, drive_in, trace, net)
    state = trace[:, vk.TR_STATE].astype(np.int8)
    if n_neurons:
        spikes = [np.nonzero(trace[:, vk.TRACE_FIELDS + j])[0] for j in range(n_neurons)]
    elif model == P.MODEL_SPIKING:
        spikes = [np.nonzero((state[1:] == vk.FIRING) & (state[:-1] != vk.FIRING))[0] + 1]
        if current is None:
            spikes[0] = np.concatenate(([0], spikes[0]))
    else:
        spikes = [np.nonzero(state == 1)[0]]
    return {"v": trace[:, vk.TR_V], "state": state,
            "drive": trace[:, vk.TR_DRIVE], "spring": trace[:, vk.TR_SPRING],
            "out": trace[:, vk.TR_OUT], "spikes": spikes, **info}
