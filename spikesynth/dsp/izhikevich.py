"""Izhikevich (2003) spiking neuron: parameters, the 20 presets of Izhikevich (2004), step kernel.

Model (v in mV, t in ms, input I in the papers' units of mV/ms)::

    v' = e v^2 + f v + g - u + I          (e, f, g = 0.04, 5, 140 in the papers)
    u' = a (b (v - u_vref) - u_leak u)    (u_vref, u_leak = 0, 1: u' = a (b v - u))
    if v >= v_peak (30 mV):  v <- c,  u <- u + d

``e, f, g, u_vref, u_leak`` are the equation variants that the published simulation script
of Izhikevich (2004) uses for some behaviours: class 1 excitability and the integrator use
``v' = 0.04 v^2 + 4.1 v + 108 - u + I``; accommodation uses ``u' = a b (v + 65)``
(``u_vref = -65``, ``u_leak = 0``). :data:`PRESETS` holds all of them; the input protocols
(current waveforms, dt, duration, initial state) are in :mod:`spikesynth.neurons`.

References
----------
E. M. Izhikevich, "Simple model of spiking neurons", IEEE TNN 14:1569-1572 (2003).
E. M. Izhikevich, "Which model to use for cortical spiking neurons?", IEEE TNN
15:1063-1070 (2004); simulation script ``figure1.m`` (izhikevich.org/publications/figure1.m).

Integration scheme
------------------
One step of length ``dt`` (ms) with the input held over the step is the scheme of the
published script, semi-implicit (symplectic) Euler::

    v <- v + dt (e v^2 + f v + g - u + I)
    u <- u + dt a (b (v_new - u_vref) - u_leak u)       # uses the *updated* v
    if v_new >= v_peak:  spike; v <- c; u <- u + d

The arithmetic is ordered as in the script, so a kernel run reproduces the published traces
to the last bit. (The script tests ``V > 30``; the kernel uses ``v >= v_peak`` as the papers'
text does; the two differ only if ``v`` lands exactly on the peak value.)
``dt * a`` is computed once at prepare time; the step never divides.

Sub-stepping
------------
The model is stiff near the spike upstroke and the papers use dt = 0.1 to 0.5 ms. For audio,
where one sample may correspond to a much longer model time, a caller prepares the
coefficients with ``dt / n`` (``prepare_izhikevich(p, dt / n)``) and calls
:func:`izhikevich_step` ``n`` times per sample with the same input; spikes are then resolved
to the sub-step. At most one spike per (sub-)step.

State and parameters are float64 vectors with named slots (``IZH_*``) so that a voice pool can
keep them as rows of 2-D arrays and call the step from its own ``@njit`` loop.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# Prepared coefficient vector slots (float64).
IZH_A = 0  # recovery rate a, 1/ms
IZH_B = 1  # sensitivity b of u to v, dimensionless
IZH_C = 2  # reset potential c, mV
IZH_D = 3  # recovery jump d, mV/ms
IZH_E = 4  # quadratic coefficient e, 1/(mV ms)
IZH_F = 5  # linear coefficient f, 1/ms
IZH_G = 6  # constant g, mV/ms
IZH_U_VREF = 7  # voltage origin of the u equation, mV
IZH_U_LEAK = 8  # weight of -u in the u equation, dimensionless
IZH_V_PEAK = 9  # spike cut-off, mV
IZH_DT = 10  # step length, ms
IZH_ADT = 11  # a * dt, dimensionless
IZH_N_COEFFS = 12

# State vector slots (float64).
IZH_V = 0  # membrane potential, mV
IZH_U = 1  # recovery variable, mV/ms
IZH_N_STATE = 2


class IzhikevichParameters(NamedTuple):
    """Parameters of the Izhikevich neuron (units as in the papers: mV, ms).

    Parameters
    ----------
    a : float
        Time scale of the recovery variable ``u``, 1/ms (0.02 regular spiking).
    b : float
        Sensitivity of ``u`` to sub-threshold ``v``, dimensionless.
    c : float
        After-spike reset of ``v``, mV.
    d : float
        After-spike increment of ``u``, mV/ms.
    e, f, g : float
        Coefficients of ``v' = e v^2 + f v + g - u + I``: 1/(mV ms), 1/ms, mV/ms.
    u_vref : float
        Voltage origin of ``u' = a (b (v - u_vref) - u_leak u)``, mV (0; -65 for
        accommodation).
    u_leak : float
        Weight of ``-u`` in the ``u`` equation (1; 0 for accommodation).
    v_peak : float
        Spike cut-off: a spike is emitted and ``v`` reset when ``v >= v_peak``, mV.
    """

    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 2.0
    e: float = 0.04
    f: float = 5.0
    g: float = 140.0
    u_vref: float = 0.0
    u_leak: float = 1.0
    v_peak: float = 30.0


_P = IzhikevichParameters
# Class 1 excitability and the integrator use v' = 0.04 v^2 + 4.1 v + 108 - u + I in figure1.m.
_CLASS1 = {"f": 4.1, "g": 108.0}

# The 20 behaviours of Izhikevich (2004), Fig. 1 (panels A-T), with the values of figure1.m.
TONIC_SPIKING = _P(a=0.02, b=0.2, c=-65.0, d=6.0)  # (A)
PHASIC_SPIKING = _P(a=0.02, b=0.25, c=-65.0, d=6.0)  # (B)
TONIC_BURSTING = _P(a=0.02, b=0.2, c=-50.0, d=2.0)  # (C)
PHASIC_BURSTING = _P(a=0.02, b=0.25, c=-55.0, d=0.05)  # (D)
MIXED_MODE = _P(a=0.02, b=0.2, c=-55.0, d=4.0)  # (E)
SPIKE_FREQUENCY_ADAPTATION = _P(a=0.01, b=0.2, c=-65.0, d=8.0)  # (F)
CLASS_1_EXCITABILITY = _P(a=0.02, b=-0.1, c=-55.0, d=6.0, **_CLASS1)  # (G)
CLASS_2_EXCITABILITY = _P(a=0.2, b=0.26, c=-65.0, d=0.0)  # (H)
SPIKE_LATENCY = _P(a=0.02, b=0.2, c=-65.0, d=6.0)  # (I)
SUBTHRESHOLD_OSCILLATIONS = _P(a=0.05, b=0.26, c=-60.0, d=0.0)  # (J)
RESONATOR = _P(a=0.1, b=0.26, c=-60.0, d=-1.0)  # (K)
INTEGRATOR = _P(a=0.02, b=-0.1, c=-55.0, d=6.0, **_CLASS1)  # (L)
REBOUND_SPIKE = _P(a=0.03, b=0.25, c=-60.0, d=4.0)  # (M)
REBOUND_BURST = _P(a=0.03, b=0.25, c=-52.0, d=0.0)  # (N)
THRESHOLD_VARIABILITY = _P(a=0.03, b=0.25, c=-60.0, d=4.0)  # (O)
BISTABILITY = _P(a=0.1, b=0.26, c=-60.0, d=0.0)  # (P)
DAP = _P(a=1.0, b=0.2, c=-60.0, d=-21.0)  # (Q) depolarizing after-potential
ACCOMMODATION = _P(a=0.02, b=1.0, c=-55.0, d=4.0, u_vref=-65.0, u_leak=0.0)  # (R)
INHIBITION_INDUCED_SPIKING = _P(a=-0.02, b=-1.0, c=-60.0, d=8.0)  # (S)
# figure1.m uses d = -2 (the table printed in the paper's figure says 0).
INHIBITION_INDUCED_BURSTING = _P(a=-0.026, b=-1.0, c=-45.0, d=-2.0)  # (T)

#: Name -> parameters, in the order of the panels A-T of Izhikevich (2004), Fig. 1.
# The cortical and thalamic cell classes of Izhikevich (2003), Fig. 2 (the voices' presets).
REGULAR_SPIKING = _P(a=0.02, b=0.2, c=-65.0, d=8.0)  # RS: excitatory, adapting
INTRINSICALLY_BURSTING = _P(a=0.02, b=0.2, c=-55.0, d=4.0)  # IB: a burst, then spikes
CHATTERING = _P(a=0.02, b=0.2, c=-50.0, d=2.0)  # CH: fast rhythmic bursts
FAST_SPIKING = _P(a=0.1, b=0.2, c=-65.0, d=2.0)  # FS: inhibitory, no adaptation
LOW_THRESHOLD_SPIKING = _P(a=0.02, b=0.25, c=-65.0, d=2.0)  # LTS
THALAMO_CORTICAL = _P(a=0.02, b=0.25, c=-65.0, d=0.05)  # TC
RESONATOR_2003 = _P(a=0.1, b=0.26, c=-65.0, d=2.0)  # RZ

CELL_CLASSES: dict[str, IzhikevichParameters] = {
    "RS": REGULAR_SPIKING,
    "IB": INTRINSICALLY_BURSTING,
    "CH": CHATTERING,
    "FS": FAST_SPIKING,
    "LTS": LOW_THRESHOLD_SPIKING,
    "TC": THALAMO_CORTICAL,
    "RZ": RESONATOR_2003,
}

PRESETS: dict[str, IzhikevichParameters] = {
    "tonic_spiking": TONIC_SPIKING,
    "phasic_spiking": PHASIC_SPIKING,
    "tonic_bursting": TONIC_BURSTING,
    "phasic_bursting": PHASIC_BURSTING,
    "mixed_mode": MIXED_MODE,
    "spike_frequency_adaptation": SPIKE_FREQUENCY_ADAPTATION,
    "class_1_excitability": CLASS_1_EXCITABILITY,
    "class_2_excitability": CLASS_2_EXCITABILITY,
    "spike_latency": SPIKE_LATENCY,
    "subthreshold_oscillations": SUBTHRESHOLD_OSCILLATIONS,
    "resonator": RESONATOR,
    "integrator": INTEGRATOR,
    "rebound_spike": REBOUND_SPIKE,
    "rebound_burst": REBOUND_BURST,
    "threshold_variability": THRESHOLD_VARIABILITY,
    "bistability": BISTABILITY,
    "dap": DAP,
    "accommodation": ACCOMMODATION,
    "inhibition_induced_spiking": INHIBITION_INDUCED_SPIKING,
    "inhibition_induced_bursting": INHIBITION_INDUCED_BURSTING,
}


def prepare_izhikevich(
    params: IzhikevichParameters, dt: float, out: np.ndarray | None = None
) -> np.ndarray:
    """Compute the coefficient vector of one neuron for step ``dt`` (ms).

    Thread: main (prepare time; allocates when ``out`` is None).

    Parameters
    ----------
    params : IzhikevichParameters
    dt : float
        Step length in ms, > 0.
    out : ndarray, shape (IZH_N_COEFFS,), float64, optional
        Where to write (e.g. a row of a voice pool's parameter array).

    Returns
    -------
    ndarray, shape (IZH_N_COEFFS,), float64
    """
    dt = float(dt)
    if not (dt > 0.0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt!r}")
    values = [float(x) for x in params]
    if not all(math.isfinite(x) for x in values):
        raise ValueError(f"parameters must be finite, got {params!r}")
    if out is None:
        out = np.empty(IZH_N_COEFFS, dtype=np.float64)
    set_izhikevich_coeffs(out, dt, *(float(x) for x in params))
    return out


@njit(cache=True, nogil=True)
def set_izhikevich_coeffs(out, dt, a, b, c, d, e, f, g, u_vref, u_leak, v_peak):
    """Write the coefficient vector (see :func:`prepare_izhikevich`) from plain numbers.

    Thread: any (no allocation; voices call it at note-on and retune time).
    """
    out[IZH_A] = a
    out[IZH_B] = b
    out[IZH_C] = c
    out[IZH_D] = d
    out[IZH_E] = e
    out[IZH_F] = f
    out[IZH_G] = g
    out[IZH_U_VREF] = u_vref
    out[IZH_U_LEAK] = u_leak
    out[IZH_V_PEAK] = v_peak
    out[IZH_DT] = dt
    out[IZH_ADT] = dt * a


def izhikevich_state(v0: float = -65.0, u0: float | None = None, b: float = 0.2, out=None):
    """Initial state of one neuron: ``v = v0``, ``u = u0`` (default ``b * v0`` as in the papers).

    Thread: main (allocates when ``out`` is None).

    Returns
    -------
    ndarray, shape (IZH_N_STATE,), float64
    """
    if out is None:
        out = np.empty(IZH_N_STATE, dtype=np.float64)
    out[IZH_V] = v0
    out[IZH_U] = b * v0 if u0 is None else u0
    return out


@njit(cache=True, nogil=True)
def izhikevich_step(state, i, coeffs):
    """Advance one Izhikevich neuron by one step of ``dt`` with input ``i`` held over the step.

    Thread: audio (or any; no allocation).

    ODE ``v' = e v^2 + f v + g - u + I``, ``u' = a (b (v - u_vref) - u_leak u)``; threshold
    ``v >= v_peak``; reset ``v <- c``, ``u <- u + d``. Semi-implicit Euler as in the published
    script: ``v`` first, then ``u`` with the updated ``v``, then threshold and reset.

    Parameters
    ----------
    state : ndarray, shape (IZH_N_STATE,), float64
        ``[v (mV), u (mV/ms)]``, updated in place.
    i : float
        Input current over the step, mV/ms.
    coeffs : ndarray, shape (IZH_N_COEFFS,), float64
        From :func:`prepare_izhikevich`.

    Returns
    -------
    bool
        True if the neuron spiked during this step.
    """
    # All array reads first and all writes last, unconditionally (see spikesynth.dsp.lif).
    v, u, spiked = izhikevich_scalar_step(
        state[IZH_V], state[IZH_U], i, coeffs[IZH_DT], coeffs[IZH_ADT], coeffs[IZH_B],
        coeffs[IZH_C], coeffs[IZH_D], coeffs[IZH_E], coeffs[IZH_F], coeffs[IZH_G],
        coeffs[IZH_U_VREF], coeffs[IZH_U_LEAK], coeffs[IZH_V_PEAK])  # fmt: skip
    state[IZH_V] = v
    state[IZH_U] = u
    return spiked


@njit(cache=True, nogil=True)
def izhikevich_scalar_step(v, u, i, dt, adt, b, c, d, e, f, g, u_vref, u_leak, v_peak):
    """:func:`izhikevich_step` on plain numbers: returns ``(v, u, spiked)``.

    For callers stepping many neurons held in 2-D arrays (a network): indexing scalars out
    of them costs nothing, while taking a row view per neuron costs reference counting.
    """
    v, u = izhikevich_free_step(v, u, i, dt, adt, b, e, f, g, u_vref, u_leak)
    spiked = v >= v_peak
    if spiked:
        v = c
        u = u + d
    return v, u, spiked


@njit(cache=True, nogil=True, inline="always")
def izhikevich_select_step(v, u, i, dt, adt, b, c, d, e, f, g, u_vref, u_leak, v_peak):
    """:func:`izhikevich_scalar_step` without a branch: the reset applied by selection.

    Returns ``(v, u, spiked)``, bit-identical to the scalar step; for loops over many neurons
    that the compiler should vectorise.
    """
    v, u = izhikevich_free_step(v, u, i, dt, adt, b, e, f, g, u_vref, u_leak)
    spiked = v >= v_peak
    return (c if spiked else v), (u + d if spiked else u), spiked


@njit(cache=True, nogil=True, inline="always")
def izhikevich_free_step(v, u, i, dt, adt, b, e, f, g, u_vref, u_leak):
    """One Euler step of ``v`` and ``u`` before the threshold test: returns ``(v, u)``.

    The arithmetic of :func:`izhikevich_scalar_step` without its reset, for a caller stepping
    many neurons in one branch-free (vectorisable) loop that applies the reset ``v <- c, u <- u
    + d`` where ``v >= v_peak`` by selection (bit-identical to the scalar step).
    """
    v = v + dt * (e * (v * v) + f * v + g - u + i)
    u = u + adt * (b * (v - u_vref) - u_leak * u)
    return v, u


@njit(cache=True, nogil=True)
def izhikevich_run(state, current, coeffs, v_out, u_out, spike_steps):
    """Run :func:`izhikevich_step` over a current trace.

    Thread: any (no allocation).

    Parameters
    ----------
    state : ndarray, shape (IZH_N_STATE,), float64
        Initial state, updated in place.
    current : ndarray, shape (n,), float64
        Input per step; step ``k`` covers ``[k dt, (k + 1) dt)``.
    coeffs : ndarray, shape (IZH_N_COEFFS,), float64
    v_out : ndarray, shape (n,), float64
        ``v`` at the end of each step; ``v_peak`` on spike steps (as the published figures
        draw the spike), the reset value ``c`` appears on the next step's start.
    u_out : ndarray, shape (n,), float64
        ``u`` at the end of each step (after the ``+ d`` jump on spike steps).
    spike_steps : ndarray, shape (n,), int64
        Receives the indices ``k`` of the spiking steps in its first entries.

    Returns
    -------
    int
        Number of spikes written.
    """
    n_spikes = 0
    v_peak = coeffs[IZH_V_PEAK]
    for k in range(current.shape[0]):
        if izhikevich_step(state, current[k], coeffs):
            spike_steps[n_spikes] = k
            n_spikes += 1
            v_out[k] = v_peak
        else:
            v_out[k] = state[IZH_V]
        u_out[k] = state[IZH_U]
    return n_spikes
