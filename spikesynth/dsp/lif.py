"""Leaky integrator and leaky integrate-and-fire (LIF) neuron: parameters, state, step kernels.

Model (time in the unit of ``dt``, voltages and input in one arbitrary unit)::

    dv/dt = (i - v) / tau                       sub-threshold dynamics
    z = 1 if v >= v_th else 0                   threshold (jump condition)
    v <- (1 - z) * v + z * v_reset              reset
    for t_ref after a spike: v = v_reset, input ignored   (absolute refractory time)

The leaky integrator is the same ODE without threshold.

Layout (Norse-like, one file per model)
---------------------------------------
* :class:`LIFParameters` is the user-facing record (defaults and units).
* :func:`prepare_lif` turns it into a float64 coefficient vector with named slots
  (``LIF_*``), computed once at prepare time: the per-step retention ``exp(-dt/tau)`` (or
  ``1 - dt/tau`` for Euler) and ``1/tau`` are stored so that the per-sample step never divides.
* The state of one neuron is a float64 vector with slots ``LIF_V`` (membrane potential),
  ``LIF_REF`` (remaining refractory time) and ``LIF_SPIKE_OFFSET`` (time of the last spike
  measured from the start of the step that produced it, in ``(0, dt]``; useful for
  band-limited rendering of the spike).
* :func:`lif_step` / :func:`leaky_integrator_step` advance one neuron by one step of ``dt``
  with the input held constant over the step; they write into the state they are given and
  allocate nothing, so a voice loop can call them per sample from its own ``@njit`` code.
  :func:`lif_run` / :func:`leaky_integrator_run` are the small loops used by
  :func:`spikesynth.neurons.simulate`.

Integration schemes (``method``)
--------------------------------
``"euler"``
    Forward Euler as the classic tutorials write it: ``v += dt/tau * (i - v)`` (evaluated as
    ``i + (v - i)(1 - dt/tau)``, the same map), threshold tested at the end of the step,
    spike reported at the end of the step (offset ``dt``). First-order accurate.
``"exact"``
    Exact exponential update for an input held constant over the step,
    ``v <- i + (v - i) exp(-dt/tau)``. The threshold crossing time inside the step is solved
    in closed form, ``s = tau ln((i - v0)/(i - v_th))``; the reset, the refractory time and
    the free evolution after it are all placed at that sub-sample time, so firing rates are
    exact (to rounding) for piecewise-constant input, whatever ``dt`` is.

Both methods leave refractoriness at sub-sample precision: a refractory period that ends
inside a step lets the neuron integrate for the rest of that step.

Writing kernels that callers can inline
---------------------------------------
The step kernels read every array slot they need first and write every slot last,
unconditionally; rare work (refractoriness, spikes) is done by a scalar-only helper. A branch
around array reads/writes inside a step made numba keep atomic reference counting of the
state/coefficient views in the caller's per-sample loop (measured ~21 ns instead of ~2.5 ns
per LIF neuron-sample). Keep that shape when editing them.

Sub-stepping
------------
A caller that wants ``n`` sub-steps per audio sample prepares the coefficients with
``dt / n`` (``prepare_lif(p, dt / n)``) and calls the step ``n`` times per sample with the
same input; spike offsets then refer to the sub-step. At most one spike is emitted per step:
``dt`` (or ``dt / n``) must be shorter than the shortest inter-spike interval. With the exact
method this only matters for timing (a second crossing inside the same step is reported at
the start of the next one); the firing rate stays exact.

Closed forms for in-tune playing
--------------------------------
With constant drive ``i > v_th`` and ``v_reset < v_th`` the LIF fires periodically with
period :func:`lif_period` ``= t_ref + tau ln((i - v_reset)/(i - v_th))``;
:func:`lif_drive` inverts it (drive for a wanted period).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# Prepared coefficient vector slots (float64).
LIF_DT = 0  # step length, unit of time
LIF_DECAY = 1  # retention of v - i per step: exp(-dt/tau) (exact), 1 - dt/tau (Euler)
LIF_INV_TAU = 2  # 1 / tau, per unit of time
LIF_TAU = 3  # tau, unit of time
LIF_V_TH = 4  # threshold, unit of v
LIF_V_RESET = 5  # reset potential, unit of v
LIF_T_REF = 6  # absolute refractory time, unit of time
LIF_METHOD = 7  # METHOD_EULER (0.0) or METHOD_EXACT (1.0)
LIF_N_COEFFS = 8

# State vector slots (float64).
LIF_V = 0  # membrane potential, unit of v
LIF_REF = 1  # remaining refractory time, unit of time (0 when free)
LIF_SPIKE_OFFSET = 2  # offset of the last spike from the start of its step, in (0, dt]
LIF_N_STATE = 3

METHOD_EULER = 0
METHOD_EXACT = 1
_METHODS = {"euler": METHOD_EULER, "exact": METHOD_EXACT}


class LIFParameters(NamedTuple):
    """Parameters of the leaky integrator and the LIF neuron.

    Parameters
    ----------
    tau : float
        Membrane time constant, > 0, in the unit of ``dt`` (ms in the papers, s for audio).
    v_th : float
        Firing threshold, same unit as ``v`` and the input ``i`` (unused by the integrator).
    v_reset : float
        Potential after a spike; must be below ``v_th`` for periodic firing.
    t_ref : float
        Absolute refractory time after a spike, >= 0, unit of ``dt``: ``v`` is held at
        ``v_reset`` and the input is ignored.
    method : str
        ``"euler"`` (forward Euler) or ``"exact"`` (exponential update with sub-step
        threshold crossing); see the module docstring.
    """

    tau: float = 10.0
    v_th: float = 1.0
    v_reset: float = 0.0
    t_ref: float = 0.0
    method: str = "exact"


def prepare_lif(params: LIFParameters, dt: float, out: np.ndarray | None = None) -> np.ndarray:
    """Compute the coefficient vector of one neuron for step ``dt``.

    Thread: main (prepare time; allocates when ``out`` is None).

    Parameters
    ----------
    params : LIFParameters
        Model parameters.
    dt : float
        Step length, > 0, same time unit as ``params.tau``.
    out : ndarray, shape (LIF_N_COEFFS,), float64, optional
        Where to write the coefficients (e.g. a row of a voice pool's parameter array).

    Returns
    -------
    ndarray, shape (LIF_N_COEFFS,), float64
    """
    tau = float(params.tau)
    dt = float(dt)
    if not (tau > 0.0 and math.isfinite(tau)):
        raise ValueError(f"tau must be positive and finite, got {params.tau!r}")
    if not (dt > 0.0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt!r}")
    if not float(params.t_ref) >= 0.0:
        raise ValueError(f"t_ref must be >= 0, got {params.t_ref!r}")
    if params.method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {params.method!r}")
    if out is None:
        out = np.empty(LIF_N_COEFFS, dtype=np.float64)
    set_lif_coeffs(out, dt, tau, float(params.v_th), float(params.v_reset), float(params.t_ref),
                   _METHODS[params.method])
    return out


@njit(cache=True, nogil=True)
def set_lif_coeffs(out, dt, tau, v_th, v_reset, t_ref, method):
    """Write the coefficient vector (see :func:`prepare_lif`) from plain numbers.

    Thread: any (no allocation; voices call it at note-on and retune time).
    """
    out[LIF_DT] = dt
    # Retention factor of v - i over one step: exact exp(-dt/tau), Euler 1 - dt/tau.
    exact = method == METHOD_EXACT
    out[LIF_DECAY] = math.exp(-dt / tau) if exact else 1.0 - dt / tau
    out[LIF_INV_TAU] = 1.0 / tau
    out[LIF_TAU] = tau
    out[LIF_V_TH] = v_th
    out[LIF_V_RESET] = v_reset
    out[LIF_T_REF] = t_ref
    out[LIF_METHOD] = float(method)


def lif_state(v0: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """Initial state of one neuron: ``v = v0``, not refractory.

    Thread: main (allocates when ``out`` is None).

    Returns
    -------
    ndarray, shape (LIF_N_STATE,), float64
    """
    if out is None:
        out = np.empty(LIF_N_STATE, dtype=np.float64)
    out[LIF_V] = v0
    out[LIF_REF] = 0.0
    out[LIF_SPIKE_OFFSET] = 0.0
    return out


@njit(cache=True, nogil=True)
def leaky_integrator_step(state, i, coeffs):
    """Advance a leaky integrator by one step with input ``i`` held over the step.

    Thread: audio (or any; no allocation).

    ODE ``dv/dt = (i - v)/tau``; no threshold, no reset. Both methods are the update
    ``v <- i + (v - i) k`` with the retention factor ``k = coeffs[LIF_DECAY]`` chosen at
    prepare time: ``exp(-dt/tau)`` (exact) or ``1 - dt/tau`` (Euler, i.e.
    ``v <- v + (dt/tau)(i - v)``).

    Parameters
    ----------
    state : ndarray, shape (LIF_N_STATE,), float64
        Updated in place (only ``LIF_V`` is used).
    i : float
        Input, unit of ``v``.
    coeffs : ndarray, shape (LIF_N_COEFFS,), float64
        From :func:`prepare_lif`.
    """
    v = state[LIF_V]
    state[LIF_V] = i + (v - i) * coeffs[LIF_DECAY]


@njit(cache=True, nogil=True)
def _lif_slow_path(v0, v, ref, offset, i, dt, v_th, v_reset, tau, inv_tau, t_ref, exact):
    """Refractory, threshold and spike handling of :func:`lif_step`, on scalars only.

    Called when the neuron is refractory (``ref > 0``) or the free update ``v0 -> v`` reached
    ``v_th``. Returns ``(v, ref, offset, spiked)``. Kept out of :func:`lif_step`, and free of
    array arguments, so that the per-sample path stays a few instructions with no branches
    around array accesses (which lets numba drop reference counting in callers' loops).
    """
    h = dt
    if ref > 0.0:
        if ref >= dt:
            # Refractory for the whole step.
            return v_reset, ref - dt, offset, False
        # Refractory time ends inside the step: free from v_reset for h = dt - ref.
        h = dt - ref
        ref = 0.0
        v0 = v_reset
        if exact:
            v = i + (v0 - i) * math.exp(-h * inv_tau)
        else:
            v = v0 + (h * inv_tau) * (i - v0)
    if v < v_th or (v0 < v_th and i <= v_th):
        # Below threshold, or at/below rheobase: the ODE only approaches i <= v_th from below
        # and never crosses (rounding of v -> i must not fire a spike).
        return v, ref, offset, False
    if not exact:
        return v_reset, t_ref, dt, True
    if v0 >= v_th:
        s = 0.0
    else:
        # v0 < v_th <= v < i on an exponential approach to i: both logs are defined.
        s = tau * (math.log(i - v0) - math.log(i - v_th))
        if s > h:
            s = h
    offset = (dt - h) + s
    rem = t_ref - (h - s)
    if rem >= 0.0:
        return v_reset, rem, offset, True
    # Refractory time over before the end of the step: free evolution for -rem.
    return i + (v_reset - i) * math.exp(rem * inv_tau), 0.0, offset, True


@njit(cache=True, nogil=True)
def lif_step(state, i, coeffs):
    """Advance one LIF neuron by one step with input ``i`` held over the step.

    Thread: audio (or any; no allocation).

    ODE ``dv/dt = (i - v)/tau``; threshold ``v >= v_th``; reset
    ``v <- (1 - z) v + z v_reset``; then ``v = v_reset`` (input ignored) for ``t_ref``.

    Free update ``v <- i + (v - i) k`` with ``k = exp(-dt/tau)`` (exact) or ``1 - dt/tau``
    (Euler, ``v <- v + (dt/tau)(i - v)``). Euler: threshold tested at the end of the step,
    spike offset ``dt``, refractory time starting at the end of the step. Exact: on a crossing
    the crossing time ``s = tau (ln(i - v0) - ln(i - v_th))`` after the start of free
    evolution is computed, and the reset, the refractory time and any free evolution after it
    start there.

    A refractory time that ends inside the step leaves the neuron free (starting from
    ``v_reset``) for the rest of the step. At most one spike per step. Starting below
    threshold, no spike is emitted when ``i <= v_th`` (rheobase), even once rounding makes
    ``v`` equal to ``i``.

    Parameters
    ----------
    state : ndarray, shape (LIF_N_STATE,), float64
        ``[v, remaining refractory time, last spike offset]``, updated in place.
    i : float
        Input, unit of ``v``.
    coeffs : ndarray, shape (LIF_N_COEFFS,), float64
        From :func:`prepare_lif`.

    Returns
    -------
    bool
        True if the neuron spiked during this step (offset in ``state[LIF_SPIKE_OFFSET]``).
    """
    # All array reads first and all writes last, unconditionally: see _lif_slow_path.
    v, ref, offset, spiked = lif_scalar_step(
        state[LIF_V], state[LIF_REF], state[LIF_SPIKE_OFFSET], i, coeffs[LIF_DT],
        coeffs[LIF_DECAY], coeffs[LIF_V_TH], coeffs[LIF_V_RESET], coeffs[LIF_TAU],
        coeffs[LIF_INV_TAU], coeffs[LIF_T_REF], coeffs[LIF_METHOD] != 0.0)  # fmt: skip
    state[LIF_V] = v
    state[LIF_REF] = ref
    state[LIF_SPIKE_OFFSET] = offset
    return spiked


@njit(cache=True, nogil=True, inline="always")
def lif_free_v(v0, i, decay):
    """``v`` after one free (not refractory) step from ``v0`` under input ``i``: ``i + (v0 -
    i) decay``, before the threshold test.

    The first half of :func:`lif_scalar_step`, for a caller stepping many neurons in one
    branch-free (vectorisable) loop, which then hands the neurons that are refractory or cross
    the threshold to :func:`lif_scalar_step` (the same arithmetic: bit-identical results).
    """
    return i + (v0 - i) * decay


@njit(cache=True, nogil=True)
def lif_scalar_step(v0, ref, offset, i, dt, decay, v_th, v_reset, tau, inv_tau, t_ref, exact):
    """:func:`lif_step` on plain numbers: returns ``(v, ref, offset, spiked)``.

    For callers stepping many neurons held in 2-D arrays (a network): indexing scalars out
    of them costs nothing, while taking a row view per neuron costs reference counting.
    """
    v = lif_free_v(v0, i, decay)
    spiked = False
    if ref > 0.0 or v >= v_th:
        v, ref, offset, spiked = _lif_slow_path(
            v0, v, ref, offset, i, dt, v_th, v_reset, tau, inv_tau, t_ref, exact
        )
    return v, ref, offset, spiked


@njit(cache=True, nogil=True)
def leaky_integrator_run(state, current, coeffs, v_out):
    """Run :func:`leaky_integrator_step` over a current trace.

    Thread: any (no allocation).

    Parameters
    ----------
    state : ndarray, shape (LIF_N_STATE,), float64
        Initial state, updated in place.
    current : ndarray, shape (n,), float64
        Input per step.
    coeffs : ndarray, shape (LIF_N_COEFFS,), float64
    v_out : ndarray, shape (n,), float64
        Receives ``v`` at the end of each step.
    """
    for k in range(current.shape[0]):
        leaky_integrator_step(state, current[k], coeffs)
        v_out[k] = state[LIF_V]


@njit(cache=True, nogil=True)
def lif_run(state, current, coeffs, v_out, spike_times, spike_steps):
    """Run :func:`lif_step` over a current trace.

    Thread: any (no allocation).

    Parameters
    ----------
    state : ndarray, shape (LIF_N_STATE,), float64
        Initial state, updated in place.
    current : ndarray, shape (n,), float64
        Input per step; step ``k`` covers ``[k dt, (k + 1) dt)``.
    coeffs : ndarray, shape (LIF_N_COEFFS,), float64
    v_out : ndarray, shape (n,), float64
        Receives ``v`` at the end of each step (after any reset).
    spike_times : ndarray, shape (n,), float64
        Receives the spike times ``k dt + offset`` (unit of ``dt``) in its first entries.
    spike_steps : ndarray, shape (n,), int64
        Receives the index ``k`` of the step of each spike.

    Returns
    -------
    int
        Number of spikes written.
    """
    dt = coeffs[LIF_DT]
    n_spikes = 0
    for k in range(current.shape[0]):
        if lif_step(state, current[k], coeffs):
            spike_times[n_spikes] = k * dt + state[LIF_SPIKE_OFFSET]
            spike_steps[n_spikes] = k
            n_spikes += 1
        v_out[k] = state[LIF_V]
    return n_spikes


@njit(cache=True, nogil=True)
def lif_period(i, tau, v_th, v_reset, t_ref):
    """Firing period of a LIF neuron under constant drive (closed form).

    Thread: any (pure).

    ``T = t_ref + tau ln((i - v_reset)/(i - v_th))`` for ``i > v_th`` (and
    ``v_reset < v_th``); ``inf`` at or below rheobase (``i <= v_th``).

    Parameters
    ----------
    i : float
        Constant input, unit of ``v``.
    tau, t_ref : float
        Time constant and refractory time, unit of time.
    v_th, v_reset : float
        Threshold and reset, unit of ``v``.

    Returns
    -------
    float
        Period, unit of time.
    """
    if i <= v_th:
        return math.inf
    return t_ref + tau * (math.log(i - v_reset) - math.log(i - v_th))


@njit(cache=True, nogil=True)
def lif_drive(period, tau, v_th, v_reset, t_ref):
    """Constant drive that makes a LIF neuron fire with the given period (closed form).

    Thread: any (pure).

    Inverse of :func:`lif_period`: with ``x = exp((period - t_ref)/tau)``,
    ``i = (x v_th - v_reset)/(x - 1)``. Requires ``period > t_ref``; returns ``inf``
    otherwise (no finite drive reaches it).

    Returns
    -------
    float
        Drive, unit of ``v``.
    """
    if period <= t_ref:
        return math.inf
    em1 = math.expm1((period - t_ref) / tau)  # x - 1, accurate for short periods
    return v_th + (v_th - v_reset) / em1
