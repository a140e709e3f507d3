"""Pair-based spike-timing-dependent plasticity (STDP) with exponential traces: parameters, kernels.

Model (time in ms, weights dimensionless)::

    dx_pre/dt  = -x_pre / tau_plus      x_pre  <- x_pre + 1   at each presynaptic arrival
    dx_post/dt = -x_post / tau_minus    x_post <- x_post + 1  at each postsynaptic spike
    on a postsynaptic spike:   w <- clip(w + lr a_plus  x_pre,  w_min, w_max)   (potentiation)
    on a presynaptic arrival:  w <- clip(w - lr a_minus x_post, w_min, w_max)   (depression)

This is the all-to-all pair rule: summed over a pair of spike trains (and ignoring the clip),
the total change is ``lr (a_plus sum_{t_pre < t_post} exp(-(t_post - t_pre)/tau_plus)
- a_minus sum_{t_post < t_pre} exp(-(t_pre - t_post)/tau_minus))``.
The presynaptic time is the *arrival* of the spike at the synapse (after the axonal delay);
the postsynaptic time is the spike of the postsynaptic neuron itself.

``lr`` is a global learning rate (``0`` freezes every weight bit for bit; a MIDI controller
will drive it), ``a_plus``/``a_minus`` are the per-synapse amplitudes.

Discrete time
-------------
Events live on the step grid (a step of ``dt`` ends at ``t_{k+1} = (k + 1) dt``). Per step the
traces decay by the exact factors ``exp(-dt/tau_plus)`` and ``exp(-dt/tau_minus)`` (computed
once at prepare time), so ``x`` after ``m`` quiet steps is ``exp(-m dt/tau)`` to rounding. The
weight updates of a step use the traces *before* that step's increments: a pre arrival and a
post spike in the same step (``delta t = 0``) neither potentiate nor depress; then the traces
are incremented. Deterministic: no randomness, a fixed order of operations.

Layout
------
:class:`STDPParameters` is the user-facing record; :func:`prepare_stdp` writes the coefficient
vector (``STDP_*`` slots) that the network kernel keeps per synapse
(:mod:`spikesynth.dsp.network`). :func:`stdp_update` is the scalar-only event handler the
network step calls; :func:`stdp_run` runs one synapse over given spike rasters (a reference
for tests and studies).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# Prepared coefficient vector slots (float64).
STDP_A_PLUS = 0  # potentiation amplitude per pair (at delta t -> 0+), weight units
STDP_A_MINUS = 1  # depression amplitude per pair (at delta t -> 0-), weight units
STDP_W_MIN = 2  # lower weight bound
STDP_W_MAX = 3  # upper weight bound
STDP_PRE_DECAY = 4  # per-step retention of x_pre: exp(-dt/tau_plus)
STDP_POST_DECAY = 5  # per-step retention of x_post: exp(-dt/tau_minus)
STDP_N_COEFFS = 6


class STDPParameters(NamedTuple):
    """Parameters of pair-based STDP for one synapse.

    Parameters
    ----------
    tau_plus : float
        Decay time of the presynaptic trace (potentiation window), ms, > 0.
    tau_minus : float
        Decay time of the postsynaptic trace (depression window), ms, > 0.
    a_plus : float
        Weight increase of one pre-before-post pair at ``delta t -> 0+``, >= 0.
    a_minus : float
        Weight decrease of one post-before-pre pair at ``delta t -> 0-``, >= 0.
    w_min, w_max : float
        Weight bounds, ``w_min <= w_max``; weights are clipped after every update.
    """

    tau_plus: float = 20.0
    tau_minus: float = 20.0
    a_plus: float = 0.01
    a_minus: float = 0.012
    w_min: float = 0.0
    w_max: float = 1.0


def prepare_stdp(params: STDPParameters, dt: float, out: np.ndarray | None = None) -> np.ndarray:
    """Compute the coefficient vector of one synapse for step ``dt`` (ms).

    Thread: main (prepare time; allocates when ``out`` is None).

    Parameters
    ----------
    params : STDPParameters
    dt : float
        Step length, ms, > 0.
    out : ndarray, shape (STDP_N_COEFFS,), float64, optional
        Where to write (e.g. a slice of a synapse's parameter row).

    Returns
    -------
    ndarray, shape (STDP_N_COEFFS,), float64
    """
    dt = float(dt)
    if not (dt > 0.0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt!r}")
    for name in ("tau_plus", "tau_minus"):
        tau = float(getattr(params, name))
        if not (tau > 0.0 and math.isfinite(tau)):
            raise ValueError(f"{name} must be positive and finite, got {tau!r}")
    for name in ("a_plus", "a_minus"):
        a = float(getattr(params, name))
        if not (a >= 0.0 and math.isfinite(a)):
            raise ValueError(f"{name} must be >= 0 and finite, got {a!r}")
    w_min, w_max = float(params.w_min), float(params.w_max)
    if not (math.isfinite(w_min) and math.isfinite(w_max) and w_min <= w_max):
        raise ValueError(f"need finite w_min <= w_max, got {w_min!r}, {w_max!r}")
    if out is None:
        out = np.empty(STDP_N_COEFFS, dtype=np.float64)
    out[STDP_A_PLUS] = float(params.a_plus)
    out[STDP_A_MINUS] = float(params.a_minus)
    out[STDP_W_MIN] = w_min
    out[STDP_W_MAX] = w_max
    out[STDP_PRE_DECAY] = math.exp(-dt / float(params.tau_plus))
    out[STDP_POST_DECAY] = math.exp(-dt / float(params.tau_minus))
    return out


@njit(cache=True, nogil=True)
def stdp_update(w, x_pre, x_post, pre, post, lr, a_plus, a_minus, w_min, w_max):
    """Weight after the events of one step (scalars only; the traces are not changed).

    Thread: audio (or any; pure).

    ``pre``: a presynaptic spike arrived this step, ``w -= lr a_minus x_post``; ``post``: the
    postsynaptic neuron spiked this step, ``w += lr a_plus x_pre``; then ``w`` is clipped to
    ``[w_min, w_max]``. ``x_pre`` and ``x_post`` are the traces decayed to the end of the step
    and *not yet* incremented by this step's spikes (so same-step pairs do nothing). With no
    event, or ``lr == 0``, ``w`` is returned unchanged (not even clipped).

    Parameters
    ----------
    w, x_pre, x_post : float
    pre, post : bool
    lr, a_plus, a_minus, w_min, w_max : float

    Returns
    -------
    float
        The new weight.
    """
    if lr == 0.0 or not (pre or post):
        return w
    if pre:
        w -= lr * a_minus * x_post
    if post:
        w += lr * a_plus * x_pre
    if w < w_min:
        w = w_min
    elif w > w_max:
        w = w_max
    return w


@njit(cache=True, nogil=True)
def stdp_run(pre, post, coeffs, lr, w0, w_out):
    """Run one plastic synapse over given spike rasters (a reference for tests and studies).

    Thread: any (no allocation).

    Parameters
    ----------
    pre : ndarray, shape (n,), bool or int
        Nonzero where a presynaptic spike arrives at the end of step ``k``.
    post : ndarray, shape (n,), bool or int
        Nonzero where the postsynaptic neuron spikes at the end of step ``k``.
    coeffs : ndarray, shape (STDP_N_COEFFS,), float64
        From :func:`prepare_stdp`.
    lr : float
        Global learning rate.
    w0 : float
        Initial weight.
    w_out : ndarray, shape (n,), float64
        Receives the weight at the end of each step.

    Returns
    -------
    float
        The final weight.
    """
    a_plus = coeffs[STDP_A_PLUS]
    a_minus = coeffs[STDP_A_MINUS]
    w_min = coeffs[STDP_W_MIN]
    w_max = coeffs[STDP_W_MAX]
    k_pre = coeffs[STDP_PRE_DECAY]
    k_post = coeffs[STDP_POST_DECAY]
    w = w0
    x_pre = 0.0
    x_post = 0.0
    for k in range(pre.shape[0]):
        a = pre[k] != 0
        b = post[k] != 0
        x_pre *= k_pre
        x_post *= k_post
        w = stdp_update(w, x_pre, x_post, a, b, lr, a_plus, a_minus, w_min, w_max)
        if a:
            x_pre += 1.0
        if b:
            x_post += 1.0
        w_out[k] = w
    return w
