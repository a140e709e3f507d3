"""Plots say what the audio does: no spike the membrane does not have, one frequency."""

from __future__ import annotations

import numpy as np
import pytest

from spikesynth import load_patch
from spikesynth.patch import PATCH_DIR
from spikesynth.plot import voice_data

pytest.importorskip("matplotlib")


def test_izhikevich_raster_has_no_spike_at_note_on():
    d = voice_data(load_patch(PATCH_DIR / "izhikevich_rs.yaml"), 60, seconds=0.05)
    first = d["spike_trains"][0][0]
    assert first > 0.0
    # Every raster spike is a reset in the traced membrane: a drop of more than 60 mV.
    v = np.asarray(d["v"])
    k = int(round(first * d["samplerate"]))
    assert v[k] < v[k - 1] - 60.0


def test_half_centre_title_and_raster_agree_on_the_cycle():
    d = voice_data(load_patch(PATCH_DIR / "half_centre.yaml"), 36)
    assert "65.41 Hz" in d["title"]
    assert d["rate"] == pytest.approx(65.406, rel=5e-3)  # the burst cycle, measured
    assert d["spike_rate"] > 3 * d["rate"]  # several spikes per cycle
