"""Small spiking networks: conductance synapses with delays and STDP, one step kernel per dt.

A network is up to :data:`MAX_NEURONS` neurons, each a LIF (:mod:`spikesynth.dsp.lif`) or an
Izhikevich neuron (:mod:`spikesynth.dsp.izhikevich`), advanced by the same step kernels the
single-neuron voices use, plus a list of synapses ``pre -> post``.

Units
-----
Time is in **ms** everywhere (``dt``, ``tau``, ``delay``, the LIF ``tau`` and ``t_ref``).
Izhikevich neurons: ``v`` in mV, input in mV/ms, conductance ``g`` in 1/ms.
LIF neurons are *normalised*: ``v`` and the input in the unit of the threshold (by convention
``v_reset = 0``, ``v_th = 1``), ``g`` dimensionless, relative to the leak conductance, so the
membrane obeys ``tau dv/dt = i_ext - v + g (E_syn - v)``. Default reversal potentials
(chosen by the spec layer from the *post* neuron's model): LIF ``E_exc = v_reset + 1.5
(v_th - v_reset)`` (1.5), ``E_inh = v_reset - 0.5 (v_th - v_reset)`` (-0.5); Izhikevich
``E_exc = 0`` mV, ``E_inh = -80`` mV.

Equations of one step ``[t_k, t_{k+1})``, ``t_k = k dt``
---------------------------------------------------------
::

    i_n   = bias_n + gain_n ext_n(k) + sum_{s: post(s) = n} g_s(t_k) (E_s - v_n(t_k))
    neuron n: one step of its own kernel with i_n held over the step -> spiked_n
    g_s(t_{k+1}) = g_s(t_k) exp(-dt/tau_s) + [pre(s) spiked at step k - D_s] w_s g_max_s
    STDP (plastic synapses): see spikesynth.dsp.stdp

* The synaptic current is evaluated with ``g`` and ``v`` at the start of the step and held
  over it (explicit, first order in ``dt``; the neuron kernels need a constant input over the
  step). At audio rate (``dt = 1/48`` ms) this is far below the synaptic time scales; for
  Izhikevich neurons keep ``g dt`` well below 1.
* ``g`` itself is exact on the grid: a spike at the end of step ``k`` (time ``t_{k+1}``)
  reaches the synapse at ``t_{k+1} + D_s dt`` and from then on ``g = w g_max
  exp(-(t - t_arrival)/tau)`` at every step end, to rounding.
* Threshold and reset are those of the neuron models. Transmission uses the step grid: a
  spike anywhere inside step ``k`` (the exact LIF knows its sub-step time) is sent at
  ``t_{k+1}``; delays are whole steps ``D_s = round(delay / dt) >= 0``. A delay of 0 acts on
  the next step.

Layout (flat arrays, structure of arrays; the wrapper allocates, the kernel only writes)
----------------------------------------------------------------------------------------
=================  ====================  =====================================================
``kind``           (n,) int64            :data:`KIND_LIF` or :data:`KIND_IZHIKEVICH`
``ncoef``          (n, N_COEFF_WIDTH)    the neuron's coefficient vector (``LIF_*``/``IZH_*``)
``nstate``         (n, N_STATE_WIDTH)    the neuron's state; slot 0 is ``v`` for both models
``ninput``         (n, IN_N)             ``IN_GAIN``, ``IN_BIAS``
``syn_idx``        (m, SI_N) int64       ``SI_PRE``, ``SI_POST``, ``SI_DELAY`` (steps),
                                         ``SI_PLASTIC`` (0/1)
``syn_par``        (m, SP_N)             ``SP_G_MAX``, ``SP_G_DECAY`` (``exp(-dt/tau)``),
                                         ``SP_E``, then the STDP coefficients at
                                         ``SP_STDP + STDP_*``
``syn_state``      (m, SS_N)             ``SS_G``, ``SS_W``, ``SS_X_PRE``, ``SS_X_POST``
``hist``           (n, L) uint8          spike history ring, ``L = max delay steps + 1``
``clock``          (1,) int64            position in the history ring (steps done, mod L)
``i_work``         (n,)                  scratch: the input of each neuron
``spiked``         (n,) uint8            out: which neurons spiked in the last step
=================  ====================  =====================================================

The history ring is the delay line: each step writes one byte per neuron, a synapse reads its
presynaptic row ``D_s`` steps back. It cannot overflow and costs one load per synapse-step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .izhikevich import (
    IZH_ADT,
    IZH_B,
    IZH_C,
    IZH_D,
    IZH_DT,
    IZH_E,
    IZH_F,
    IZH_G,
    IZH_N_COEFFS,
    IZH_N_STATE,
    IZH_U,
    IZH_U_LEAK,
    IZH_U_VREF,
    IZH_V,
    IZH_V_PEAK,
    izhikevich_scalar_step,
)
from .lif import (
    LIF_DECAY,
    LIF_DT,
    LIF_INV_TAU,
    LIF_METHOD,
    LIF_N_COEFFS,
    LIF_N_STATE,
    LIF_REF,
    LIF_SPIKE_OFFSET,
    LIF_T_REF,
    LIF_TAU,
    LIF_V,
    LIF_V_RESET,
    LIF_V_TH,
    lif_scalar_step,
)
from .stdp import (
    STDP_A_MINUS,
    STDP_A_PLUS,
    STDP_N_COEFFS,
    STDP_POST_DECAY,
    STDP_PRE_DECAY,
    STDP_W_MAX,
    STDP_W_MIN,
    stdp_update,
)

MAX_NEURONS = 64  # the real-time budget the kernel is sized and benchmarked for

KIND_LIF = 0
KIND_IZHIKEVICH = 1

N_COEFF_WIDTH = max(LIF_N_COEFFS, IZH_N_COEFFS)
N_STATE_WIDTH = max(LIF_N_STATE, IZH_N_STATE)
V_SLOT = 0  # membrane potential slot, shared by both models
assert LIF_V == V_SLOT and IZH_V == V_SLOT

# ninput columns
IN_GAIN = 0  # multiplies the external drive ext_n, neuron input per drive unit
IN_BIAS = 1  # constant input, neuron input unit
IN_N = 2

# syn_idx columns (int64)
SI_PRE = 0
SI_POST = 1
SI_DELAY = 2  # whole steps, 0 <= D < L
SI_PLASTIC = 3  # 1 if STDP applies
SI_N = 4

# syn_par columns (float64)
SP_G_MAX = 0  # conductance jump per arrival at w = 1 (LIF: dimensionless, Izhikevich: 1/ms)
SP_G_DECAY = 1  # exp(-dt/tau), per step
SP_E = 2  # reversal potential, unit of the post neuron's v
SP_STDP = 3  # first STDP slot: syn_par[s, SP_STDP + STDP_*]
SP_N = SP_STDP + STDP_N_COEFFS

# syn_state columns (float64)
SS_G = 0  # conductance at the end of the last step
SS_W = 1  # weight (dimensionless)
SS_X_PRE = 2  # presynaptic STDP trace
SS_X_POST = 3  # postsynaptic STDP trace
SS_N = 4


class NetworkArrays(NamedTuple):
    """All arrays of one network, as :func:`network_step` takes them (see the module table)."""

    kind: np.ndarray
    ncoef: np.ndarray
    nstate: np.ndarray
    ninput: np.ndarray
    syn_idx: np.ndarray
    syn_par: np.ndarray
    syn_state: np.ndarray
    hist: np.ndarray
    clock: np.ndarray
    i_work: np.ndarray
    spiked: np.ndarray


def allocate_network(n_neurons: int, n_synapses: int, max_delay_steps: int) -> NetworkArrays:
    """Allocate zeroed arrays for a network (prepare time).

    Thread: main (allocates).

    Parameters
    ----------
    n_neurons : int
        1 to :data:`MAX_NEURONS`.
    n_synapses : int
        >= 0.
    max_delay_steps : int
        Longest synaptic delay in steps, >= 0 (sets the history ring length).
    """
    if not 1 <= n_neurons <= MAX_NEURONS:
        raise ValueError(f"n_neurons must be in 1..{MAX_NEURONS}, got {n_neurons}")
    if n_synapses < 0 or max_delay_steps < 0:
        raise ValueError("n_synapses and max_delay_steps must be >= 0")
    n, m = int(n_neurons), int(n_synapses)
    return NetworkArrays(
        kind=np.zeros(n, dtype=np.int64),
        ncoef=np.zeros((n, N_COEFF_WIDTH)),
        nstate=np.zeros((n, N_STATE_WIDTH)),
        ninput=np.zeros((n, IN_N)),
        syn_idx=np.zeros((m, SI_N), dtype=np.int64),
        syn_par=np.zeros((m, SP_N)),
        syn_state=np.zeros((m, SS_N)),
        hist=np.zeros((n, int(max_delay_steps) + 1), dtype=np.uint8),
        clock=np.zeros(1, dtype=np.int64),
        i_work=np.zeros(n),
        spiked=np.zeros(n, dtype=np.uint8),
    )


@njit(cache=True, nogil=True)
def _synapse_step(g, w, x_pre, x_post, arrived, post_spiked, lr, plastic, g_max, g_decay,
                  pre_decay, post_decay, a_plus, a_minus, w_min, w_max):  # fmt: skip
    """Decay, arrival jump and STDP of one synapse, on scalars only (see network_step).

    Kept free of array arguments so that the synapse loop of :func:`network_step` reads every
    slot first and writes every slot last, with no branch around an array access (the
    reference-counting trap described in :mod:`spikesynth.dsp.lif`).
    """
    g = g * g_decay
    x_pre = x_pre * pre_decay
    x_post = x_post * post_decay
    if arrived:
        g += w * g_max  # the weight before this step's plasticity
    if plastic:
        w = stdp_update(w, x_pre, x_post, arrived, post_spiked, lr, a_plus, a_minus, w_min,
                        w_max)  # fmt: skip
    if arrived:
        x_pre += 1.0
    if post_spiked:
        x_post += 1.0
    return g, w, x_pre, x_post


@njit(cache=True, nogil=True)
def network_step(
    ext, lr, kind, ncoef, nstate, ninput, syn_idx, syn_par, syn_state, hist, clock, i_work, spiked
):
    """Advance the whole network by one step of ``dt``.

    Thread: audio (or any; no allocation).

    Equations (module docstring): ``i_n = bias_n + gain_n ext_n + sum_s g_s (E_s - v_n)`` with
    ``g`` and ``v`` at the start of the step, held over it; each neuron takes one step of its
    model (LIF: ``tau v' = i - v``, threshold ``v >= v_th``, reset ``v <- v_reset`` plus
    refractory time; Izhikevich: ``v' = 0.04 v^2 + 5 v + 140 - u + i``,
    ``u' = a (b v - u)``, threshold ``v >= v_peak``, reset ``v <- c, u <- u + d``); the spikes
    are written into the history ring; every synapse then decays ``g`` and its STDP traces by
    one step, adds ``w g_max`` if its presynaptic spike from ``D_s`` steps ago arrives now,
    and (if plastic) applies :func:`spikesynth.dsp.stdp.stdp_update`.

    Parameters
    ----------
    ext : ndarray, shape (n,), float64
        External drive of each neuron over this step (multiplied by its gain). A voice
        passes one value broadcast to all neurons (e.g. a stride-0 view).
    lr : float
        Global STDP learning rate (0 freezes all weights).
    kind, ncoef, nstate, ninput, syn_idx, syn_par, syn_state, hist, clock, i_work, spiked
        The network (module table); ``nstate``, ``syn_state``, ``hist``, ``clock``,
        ``i_work`` and ``spiked`` are updated in place.

    Returns
    -------
    int
        Number of neurons that spiked during this step.
    """
    n = kind.shape[0]
    m = syn_idx.shape[0]
    # Input of each neuron from the state at the start of the step.
    for j in range(n):
        i_work[j] = ninput[j, IN_BIAS] + ninput[j, IN_GAIN] * ext[j]
    for s in range(m):
        post = syn_idx[s, SI_POST]
        i_work[post] += syn_state[s, SS_G] * (syn_par[s, SP_E] - nstate[post, V_SLOT])
    # Neurons.
    L = hist.shape[1]
    pos = clock[0]  # kept in [0, L): a division here, on the step-to-step chain, cost ~90 ns
    n_spikes = 0
    for j in range(n):
        # Scalar steps on 2-D indexing: a row view per neuron would cost reference counting.
        if kind[j] == KIND_LIF:
            v, ref, offset, z = lif_scalar_step(
                nstate[j, LIF_V], nstate[j, LIF_REF], nstate[j, LIF_SPIKE_OFFSET], i_work[j],
                ncoef[j, LIF_DT], ncoef[j, LIF_DECAY], ncoef[j, LIF_V_TH], ncoef[j, LIF_V_RESET],
                ncoef[j, LIF_TAU], ncoef[j, LIF_INV_TAU], ncoef[j, LIF_T_REF],
                ncoef[j, LIF_METHOD] != 0.0)  # fmt: skip
            nstate[j, LIF_V] = v
            nstate[j, LIF_REF] = ref
            nstate[j, LIF_SPIKE_OFFSET] = offset
        else:
            v, u, z = izhikevich_scalar_step(
                nstate[j, IZH_V], nstate[j, IZH_U], i_work[j], ncoef[j, IZH_DT],
                ncoef[j, IZH_ADT], ncoef[j, IZH_B], ncoef[j, IZH_C], ncoef[j, IZH_D],
                ncoef[j, IZH_E], ncoef[j, IZH_F], ncoef[j, IZH_G], ncoef[j, IZH_U_VREF],
                ncoef[j, IZH_U_LEAK], ncoef[j, IZH_V_PEAK])  # fmt: skip
            nstate[j, IZH_V] = v
            nstate[j, IZH_U] = u
        spiked[j] = z
        hist[j, pos] = z
        n_spikes += z
    # Synapses: conductance, delayed arrival, plasticity.
    for s in range(m):
        pre = syn_idx[s, SI_PRE]
        post = syn_idx[s, SI_POST]
        back = pos - syn_idx[s, SI_DELAY]
        if back < 0:
            back += L
        arrived = hist[pre, back] != 0
        post_spiked = spiked[post] != 0
        plastic = syn_idx[s, SI_PLASTIC] != 0
        g, w, x_pre, x_post = _synapse_step(
            syn_state[s, SS_G], syn_state[s, SS_W], syn_state[s, SS_X_PRE],
            syn_state[s, SS_X_POST], arrived, post_spiked, lr, plastic,
            syn_par[s, SP_G_MAX], syn_par[s, SP_G_DECAY],
            syn_par[s, SP_STDP + STDP_PRE_DECAY], syn_par[s, SP_STDP + STDP_POST_DECAY],
            syn_par[s, SP_STDP + STDP_A_PLUS], syn_par[s, SP_STDP + STDP_A_MINUS],
            syn_par[s, SP_STDP + STDP_W_MIN], syn_par[s, SP_STDP + STDP_W_MAX],
        )  # fmt: skip
        syn_state[s, SS_G] = g
        syn_state[s, SS_W] = w
        syn_state[s, SS_X_PRE] = x_pre
        syn_state[s, SS_X_POST] = x_post
    clock[0] = pos + 1 if pos + 1 < L else 0
    return n_spikes


@njit(cache=True, nogil=True)
def network_run(
    current,
    start,
    lr,
    kind,
    ncoef,
    nstate,
    ninput,
    syn_idx,
    syn_par,
    syn_state,
    hist,
    clock,
    i_work,
    spiked,
    v_out,
    g_out,
    w_out,
    ev_step,
    ev_neuron,
    ev_offset,
    n_events,
):
    """Run :func:`network_step` over a drive trace from step ``start``, recording.

    Thread: any (no allocation). Stops early, *before* a step, when the event arrays could
    overflow during it; the caller enlarges them and calls again from the returned step.

    Parameters
    ----------
    current : ndarray, shape (n_steps, n), float64
        External drive per step and neuron (rows may be stride-0 broadcasts).
    start : int
        First step to run.
    lr : float
        Global STDP learning rate.
    kind ... spiked
        The network (see :func:`network_step`).
    v_out : ndarray, shape (n_steps, n) or (0, n)
        ``v`` at the end of each step (Izhikevich spike steps show ``v_peak``, as
        :func:`spikesynth.dsp.izhikevich.izhikevich_run` does); not recorded if empty.
    g_out, w_out : ndarray, shape (n_steps, m) or (0, m)
        Conductance and weight of each synapse at the end of each step; empty: not recorded.
    ev_step : ndarray, shape (cap,), int64
        Receives the step of each spike, in order of time (then neuron index).
    ev_neuron : ndarray, shape (cap,), int64
        Receives the neuron of each spike.
    ev_offset : ndarray, shape (cap,), float64
        Spike time measured from the start of its step, ms, in ``(0, dt]`` (``dt`` except
        for the exact LIF, which knows the sub-step crossing time).
    n_events : int
        Events already written.

    Returns
    -------
    (int, int)
        The next step to run (``n_steps`` when done) and the number of events written.
    """
    n = kind.shape[0]
    m = syn_idx.shape[0]
    cap = ev_step.shape[0]
    rec_v = v_out.shape[0] > 0
    rec_g = g_out.shape[0] > 0
    rec_w = w_out.shape[0] > 0
    for k in range(start, current.shape[0]):
        if n_events + n > cap:
            return k, n_events
        z = network_step(
            current[k], lr, kind, ncoef, nstate, ninput, syn_idx, syn_par, syn_state, hist,
            clock, i_work, spiked,
        )  # fmt: skip
        if z > 0:
            for j in range(n):
                if spiked[j] != 0:
                    ev_step[n_events] = k
                    ev_neuron[n_events] = j
                    if kind[j] == KIND_LIF:
                        ev_offset[n_events] = nstate[j, LIF_SPIKE_OFFSET]
                    else:
                        ev_offset[n_events] = ncoef[j, IZH_DT]
                    n_events += 1
        if rec_v:
            for j in range(n):
                v = nstate[j, V_SLOT]
                if kind[j] == KIND_IZHIKEVICH and spiked[j] != 0:
                    v = ncoef[j, IZH_V_PEAK]
                v_out[k, j] = v
        if rec_g:
            for s in range(m):
                g_out[k, s] = syn_state[s, SS_G]
        if rec_w:
            for s in range(m):
                w_out[k, s] = syn_state[s, SS_W]
    return current.shape[0], n_events
