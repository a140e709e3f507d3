"""The voice pool's stealing policy, rule by rule, on a small pool (no audio needed)."""

from __future__ import annotations

import numpy as np
import pytest

from spikesynth.dsp import voice as vk
from spikesynth.voices import (
    RULE_NAMES,
    allocate,
    choose_victim,
    is_playing,
)

SLOTS = 8


def pool(voices):
    """A pool from ``(note, channel, stage, key_held, sustained, age)`` rows."""
    V = np.zeros((SLOTS, vk.N_FIELDS))
    for i, (note, channel, stage, held, sustained, age) in enumerate(voices):
        V[i, vk.F_NOTE] = note
        V[i, vk.F_CHANNEL] = channel
        V[i, vk.F_ENV_STAGE] = stage
        V[i, vk.F_KEY_HELD] = held
        V[i, vk.F_SUSTAINED] = sustained
        V[i, vk.F_AGE] = age
        V[i, vk.F_ENV] = 0.5
    return V


HELD, REL, FADE = vk.ENV_DECAY, vk.ENV_RELEASE, vk.ENV_FADE


def test_rule_1_oldest_on_the_same_note_and_channel():
    V = pool([(60, 0, HELD, 1, 0, 1), (64, 0, REL, 0, 0, 2), (60, 0, HELD, 1, 0, 3),
              (60, 1, HELD, 1, 0, 0)])
    assert choose_victim(V, SLOTS, 60, 0) == 0  # not the released 64, not channel 1's 60


def test_rule_2_oldest_released():
    V = pool([(50, 0, HELD, 1, 0, 1), (52, 0, REL, 0, 0, 5), (55, 0, REL, 0, 0, 3),
              (57, 0, HELD, 0, 1, 2)])
    assert choose_victim(V, SLOTS, 70, 0) == 2


def test_rule_3_oldest_held_only_by_the_pedal():
    V = pool([(50, 0, HELD, 1, 0, 1), (52, 0, HELD, 0, 1, 5), (55, 0, HELD, 0, 1, 4),
              (57, 0, HELD, 1, 0, 2)])
    assert choose_victim(V, SLOTS, 70, 0) == 2


def test_rule_4_the_lowest_and_highest_held_notes_are_protected():
    V = pool([(40, 0, HELD, 1, 0, 1), (80, 0, HELD, 1, 0, 2), (60, 0, HELD, 1, 0, 4),
              (62, 0, HELD, 1, 0, 3)])
    assert choose_victim(V, SLOTS, 70, 0) == 3


def test_rule_5_the_oldest_when_nothing_else_applies():
    V = pool([(40, 0, HELD, 1, 0, 7), (80, 0, HELD, 1, 0, 2)])  # both protected
    assert choose_victim(V, SLOTS, 70, 0) == 1


def test_allocate_fades_the_victim_and_takes_a_free_slot():
    V = pool([(60, 0, HELD, 1, 0, 1), (62, 0, HELD, 1, 0, 2), (64, 0, HELD, 1, 0, 3)])
    slot, stolen = allocate(V, SLOTS, 3, 67, 0, 100.0)
    assert stolen == 1 and slot == 3
    assert V[1, vk.F_ENV_STAGE] == FADE  # 62: neither lowest nor highest, oldest such
    assert V[1, vk.F_FADE_STEP] == pytest.approx(0.5 / 100.0)
    assert not is_playing(V, 1) and is_playing(V, 0) and is_playing(V, 2)


def test_allocate_reuses_the_quietest_fading_slot_when_the_pool_is_full():
    V = pool([(40 + i, 0, FADE, 0, 0, i) for i in range(SLOTS)])
    V[5, vk.F_ENV] = 0.01
    slot, stolen = allocate(V, SLOTS, 4, 70, 0, 100.0)
    assert (slot, stolen) == (5, 0)


def test_rules_are_named_in_the_documented_order():
    assert RULE_NAMES == ("same_note", "released", "pedal_held", "unprotected", "oldest")
