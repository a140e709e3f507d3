"""The hair cell's vectorised power law (spikesynth.dsp.powlaw) against numpy.power."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from spikesynth.dsp.powlaw import bits_float, float_bits, pow_positive

TINY = np.finfo(np.float64).tiny


@njit
def _powers(y, c, out):
    for i in range(y.shape[0]):
        out[i] = pow_positive(y[i], c)


@pytest.mark.parametrize("c", [0.3, 0.5, 0.01, 0.999, 1.0])
def test_within_a_few_ulp_of_pow(c):
    """Within 40 ulp for hair-cell inputs (1e-12 .. 3; 9 ulp at c = 0.3), within 2e-13
    relative over every normal input (the error grows as |c ln y| times 1.6e-16: 1.1e-13
    at 1e-300)."""
    rng = np.random.default_rng(0)
    audio = 10 ** rng.uniform(-12, 0.5, 200_000)
    edges = np.array([TINY, 0.5, 1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 0), 1e300])
    wide = np.concatenate([10 ** rng.uniform(-307, 300, 50_000), edges])
    for y, ulps, rel in ((audio, 40, None), (wide, None, 2e-13)):
        out = np.empty_like(y)
        _powers(y, c, out)
        ref = np.power(y, c)
        if ulps is not None:
            assert np.max(np.abs(out - ref) / np.spacing(ref)) <= ulps
        else:
            assert np.max(np.abs(out / ref - 1.0)) <= rel
    assert pow_positive(1.0, c) == 1.0


def test_bit_casts_match_numpy_views():
    for x in (1.0, -2.5, TINY, 1e-310, np.inf):
        bits = int(np.array(x).view(np.int64))
        assert float_bits(x) == bits
        assert bits_float(bits) == x
        assert _compiled_casts(x) == (bits, x)


@njit
def _compiled_casts(x):
    b = float_bits(x)
    return b, bits_float(b)
