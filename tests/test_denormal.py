"""Subnormals flushed to zero where the listening path asks (spikesynth.dsp.denormal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from spikesynth import Synth, load_patch
from spikesynth.dsp.denormal import X86, flush_denormals_begin, flush_denormals_end

SR = 48000
PATCHES = Path(__file__).resolve().parent.parent / "patches"
TINY = np.finfo(np.float64).tiny  # smallest normal float64


@njit
def _halves(x, out):
    """``out[0]`` = ``x[0] / 2`` with the flush, ``out[1]`` without. Arrays, as in the
    kernels: loads and stores keep the arithmetic between the calls (LLVM may move pure
    arithmetic on registers across them)."""
    saved = flush_denormals_begin()
    out[0] = x[0] * 0.5
    flush_denormals_end(saved)
    out[1] = x[0] * 0.5


def test_flushing_is_bracketed():
    """Half the smallest normal is subnormal: zero between begin and end, and as IEEE says
    after end (the control register restored)."""
    out = np.zeros(2)
    _halves(np.array([TINY]), out)
    inside, outside = out
    assert outside == TINY / 2 and outside > 0.0
    assert inside == (0.0 if X86 else TINY / 2)
    assert X86  # the test machines are x86-64: the flush is what runs there


def test_channel_voices_left_alone_hold_no_subnormals():
    """``ear_resynth`` hearing a 440 Hz tone: the channels far from it spiked at the onset
    and then decay (membranes toward 0, springs ringing down); after 2 s none of the voices'
    states is subnormal (without the flush, 16 of 64 membranes sit there forever: ``v *
    leak`` rounds back to ``v``)."""
    synth = Synth(load_patch(PATCHES / "ear_resynth.yaml"), SR, 64)
    t = np.arange(2 * SR) / SR
    x = 0.1 * np.sin(2 * np.pi * 440.0 * t)
    out = np.zeros((64, 2), np.float32)
    events = np.zeros((1, 4), np.int32)
    for start in range(0, x.size, 64):
        synth.process_block(out, events, 0, audio_in=x[start:start + 64])
    V = synth.state.V
    assert np.count_nonzero(V) > 0
    subnormal = (V != 0.0) & (np.abs(V) < TINY)
    assert not subnormal.any(), np.argwhere(subnormal)[:10]
