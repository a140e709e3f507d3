"""The voice pool: which slot plays a new note, and which voice is stolen when all are busy.

Voices are rows of the engine's voice array ``V`` (see :mod:`spikesynth.dsp.voice` for the
columns); the pool has twice the patch's polyphony so that a stolen voice can fade out in a
spare slot while the new note starts at once. Every note-on gets an age from a counter.

Stealing order (when as many voices play as the patch allows), each rule a named function:

1. ``RULE_SAME_NOTE``: the oldest voice playing the same note on the same channel;
2. ``RULE_RELEASED``: the oldest released voice (in its release);
3. ``RULE_PEDAL_HELD``: the oldest voice whose key is up but which the sustain pedal holds;
4. ``RULE_UNPROTECTED``: the oldest voice that is neither the lowest nor the highest held note;
5. ``RULE_OLDEST``: the oldest voice.

All functions are compiled, allocate nothing, and run on the audio thread.
"""

from __future__ import annotations

from numba import njit

from .dsp import voice as vk
from .dsp.voice import ENV_ATTACK, ENV_DECAY, ENV_FADE, ENV_OFF, ENV_RELEASE

RULE_SAME_NOTE, RULE_RELEASED, RULE_PEDAL_HELD, RULE_UNPROTECTED, RULE_OLDEST = range(5)
N_RULES = 5
RULE_NAMES = ("same_note", "released", "pedal_held", "unprotected", "oldest")


@njit(cache=True, nogil=True)
def is_playing(V, i):
    """Whether voice ``i`` sounds and counts against the polyphony (not fading, not off)."""
    s = V[i, vk.F_ENV_STAGE]
    return s == ENV_ATTACK or s == ENV_DECAY or s == ENV_RELEASE


@njit(cache=True, nogil=True)
def matches_rule(V, i, rule, note, channel, low, high):
    """Whether playing voice ``i`` may be stolen under ``rule`` (see the module docstring)."""
    if rule == RULE_SAME_NOTE:
        return V[i, vk.F_NOTE] == note and V[i, vk.F_CHANNEL] == channel
    if rule == RULE_RELEASED:
        return V[i, vk.F_ENV_STAGE] == ENV_RELEASE
    if rule == RULE_PEDAL_HELD:
        return V[i, vk.F_KEY_HELD] == 0.0 and V[i, vk.F_SUSTAINED] != 0.0
    if rule == RULE_UNPROTECTED:
        return V[i, vk.F_NOTE] != low and V[i, vk.F_NOTE] != high
    return True


@njit(cache=True, nogil=True)
def oldest_matching(V, n_slots, rule, note, channel, low, high):
    """The oldest playing voice that ``rule`` allows stealing, or -1."""
    best = -1
    best_age = 1e300
    for i in range(n_slots):
        if is_playing(V, i) and matches_rule(V, i, rule, note, channel, low, high):
            if V[i, vk.F_AGE] < best_age:
                best_age = V[i, vk.F_AGE]
                best = i
    return best


@njit(cache=True, nogil=True)
def choose_victim(V, n_slots, note, channel):
    """The voice to steal for a new ``note`` on ``channel``: the first rule that finds one."""
    low = 1e9
    high = -1e9
    for i in range(n_slots):
        if is_playing(V, i) and V[i, vk.F_KEY_HELD] != 0.0:
            low = min(low, V[i, vk.F_NOTE])
            high = max(high, V[i, vk.F_NOTE])
    for rule in range(N_RULES):
        victim = oldest_matching(V, n_slots, rule, note, channel, low, high)
        if victim >= 0:
            return victim
    return -1


@njit(cache=True, nogil=True)
def fade_out(V, i, fade_samples):
    """Start voice ``i``'s short linear fade to silence (a steal, all-sound-off, a switch)."""
    V[i, vk.F_ENV_STAGE] = ENV_FADE
    V[i, vk.F_FADE_STEP] = max(V[i, vk.F_ENV], 1e-9) / fade_samples
    V[i, vk.F_KEY_HELD] = 0.0


@njit(cache=True, nogil=True)
def allocate(V, n_slots, limit, note, channel, fade_samples):
    """Pick a slot for a new note; returns ``(slot, voices stolen)``.

    While ``limit`` voices play, the rules choose a victim, which fades out over
    ``fade_samples``. The slot is a free one; failing that, the quietest fading one.
    """
    playing = 0
    for i in range(n_slots):
        if is_playing(V, i):
            playing += 1
    stolen = 0
    while playing >= limit:
        victim = choose_victim(V, n_slots, note, channel)
        if victim < 0:
            break
        fade_out(V, victim, fade_samples)
        stolen += 1
        playing -= 1
    best = -1
    best_env = 1e300
    for i in range(n_slots):
        s = V[i, vk.F_ENV_STAGE]
        if s == ENV_OFF:
            return i, stolen
        if s == ENV_FADE and V[i, vk.F_ENV] < best_env:
            best_env = V[i, vk.F_ENV]
            best = i
    return best, stolen
