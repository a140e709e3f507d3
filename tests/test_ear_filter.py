"""The neuron as a filter (tutorial tasks 3-3.2): LIF rate for (cos + 1)/2 input vs theory."""

from __future__ import annotations

import numpy as np
import pytest

from spikesynth.dsp.lif import lif_period
from spikesynth.neurons import lif_cutoff_hz, rate_response

TAU = 0.002


@pytest.mark.parametrize("gain", [1.2, 1.5])
def test_lif_is_a_low_pass_with_the_closed_form_cutoff(gain):
    fc = lif_cutoff_hz(gain, TAU)
    r = rate_response(gain=gain, frequencies=[0.6 * fc, 0.95 * fc, 1.05 * fc, 1.5 * fc, 3000.0],
                      seconds=0.5, settle_s=0.1)
    assert r.cutoff_hz == pytest.approx(fc)
    assert r.rate_hz[1] > 0 and np.all(r.rate_hz[2:] == 0)
    # Below the cutoff the neuron fires once per cycle (the rate follows f); nearer to it the
    # reset's transient outlasts a cycle and it locks to every 2nd, 3rd, ... cycle.
    assert r.spikes_per_cycle[0] == pytest.approx(1.0, abs=0.02)
    assert 0 < r.spikes_per_cycle[1] <= 1.02  # (a window of whole spikes, not whole cycles)


def test_mean_above_threshold_fires_at_every_frequency():
    """gain > 2 v_th: at high f the membrane averages the input to its mean gain/2, so the
    rate tends to the constant-drive rate 1/T(gain/2) of the closed form."""
    gain = 3.0
    r = rate_response(gain=gain, frequencies=[2.0, 50.0, 3000.0, 6000.0], seconds=0.5,
                      settle_s=0.1)
    assert np.all(r.rate_hz > 0) and np.isnan(r.cutoff_hz)
    dc_rate = 1.0 / lif_period(gain / 2, TAU, 1.0, 0.0, 0.0)
    assert r.rate_hz[-1] == pytest.approx(dc_rate, rel=0.03)


def test_rate_response_rejects_bad_input():
    with pytest.raises(ValueError):
        rate_response(frequencies=[0.0])
    with pytest.raises(ValueError):
        rate_response(model="leaky_integrator")
