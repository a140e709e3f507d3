"""Small spiking networks: conductance synapses with delays and STDP, delivered when spikes arrive.

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

    i_n   = bias_n + gain_n ext_n(k) + sum_{r: post(r) = n} G_r(t_k) (E_r - v_n(t_k))
    neuron n: one step of its own kernel with i_n held over the step -> spiked_n
    G_r(t_{k+1}) = G_r(t_k) exp(-dt/tau_r) + sum_{s in r: pre(s) spiked at step k - D_s} w_s g_max_s
    STDP (plastic synapses): see spikesynth.dsp.stdp

``G_r`` is the summed conductance of a *receptor* ``r``: all synapses onto the same post
neuron with the same reversal potential ``E`` and the same decay ``tau`` share one state and
one exponential decay per step (``sum_s g_s`` obeys the same linear equation as each ``g_s``,
so this equals the per-synapse sum up to float rounding; synapses with distinct taus or
reversal potentials form distinct receptors, each decayed exactly).

* The synaptic current is evaluated with ``G`` and ``v`` at the start of the step and held
  over it (explicit, first order in ``dt``; the neuron kernels need a constant input over the
  step). At audio rate (``dt = 1/48`` ms) this is far below the synaptic time scales; for
  Izhikevich neurons keep ``g dt`` well below 1.
* ``G`` itself is exact on the grid: a spike at the end of step ``k`` (time ``t_{k+1}``)
  reaches its synapse at ``t_{k+1} + D_s dt`` and from then on contributes ``w g_max
  exp(-(t - t_arrival)/tau)`` at every step end, to rounding.
* Threshold and reset are those of the neuron models. Transmission uses the step grid: a
  spike anywhere inside step ``k`` (the exact LIF knows its sub-step time) is sent at
  ``t_{k+1}``; delays are whole steps ``D_s = round(delay / dt) >= 0``. A delay of 0 acts on
  the next step. The weight that scales an arrival is the one before that step's plasticity.

Event-driven delivery
---------------------
Each step writes one 64-bit word into the spike ring ``hist`` (bit ``j``: neuron ``j``
spiked). Synapses are grouped by (delay, presynaptic neuron) in CSR form (``fan_start``,
``fan_syn``): per step and per *distinct* delay ``d`` the kernel reads the ring word of ``d``
steps back, masks it with the neurons that have synapses of that delay, and delivers only
the synapses of the neurons found there (each their ``w g_max`` into their receptor, and the
STDP update if plastic). No per-synapse work happens on steps without arrivals.

STDP traces are kept per synapse (presynaptic, updated at its arrivals) and per (post
neuron, ``tau_minus``) (postsynaptic, updated at the post neuron's spikes), each as a value
and the step it refers to, decayed on reading by ``decay ** (steps since)``: the closed form
of the per-step decay, equal to it up to float rounding. On a post spike the kernel visits
that neuron's incoming plastic synapses (``plast_start``, ``plast_syn``).

Neuron pass
-----------
Receptor ``k < REC_SLOTS`` of neuron ``j`` (in order of its synapses) sits at index ``k n +
j`` of ``rec_g``/``rec_par``, a slot left at zero conductance where a neuron has fewer; the
receptors past the slots follow from ``REC_SLOTS n`` on. Each run of neurons of one model is
stepped in one branch-free loop over unit-stride columns (vectorised by LLVM: AVX2 here),
the input summed over the slots (an empty slot adds ``0 (0 - v)``, which changes no sum) and
the Izhikevich reset applied by selection (where the models interleave, one pass computes
both models for every neuron and keeps each neuron's own). The neurons it cannot finish,
LIF neurons that are refractory or cross the threshold (whose step is the sub-step exact or
Euler slow path) and neurons with receptors past the slots, it leaves as they were and
marks; a scalar pass then steps those with :func:`~spikesynth.dsp.lif.lif_scalar_step` and
:func:`~spikesynth.dsp.izhikevich.izhikevich_scalar_step`. Both passes do each neuron's
arithmetic of the equations above in the same order: the results are those of stepping every
neuron with the scalar kernels, bit for bit.

Layout (flat arrays, structure of arrays; the wrapper allocates, the kernel only writes)
----------------------------------------------------------------------------------------
:class:`NetworkTopology` (shared, read-only while running; ``n`` neurons, ``m`` synapses,
``nr`` receptors, ``nd`` distinct delays, ``nt`` post traces, ``mp`` plastic synapses):

=================  ====================  =====================================================
``kind``           (n,) int64            :data:`KIND_LIF` or :data:`KIND_IZHIKEVICH`
``ncoef``          (n, N_COEFF_WIDTH)    the neuron's coefficient vector (``LIF_*``/``IZH_*``)
``ninput``         (n, IN_N)             ``IN_GAIN``, ``IN_BIAS``
``coef_t``         (N_COEFF_WIDTH, n)    ``ncoef`` transposed: one contiguous column per slot
``input_t``        (IN_N, n)             ``ninput`` transposed
``kind_runs``      (nk, KR_N) int64      maximal runs of consecutive neurons of one model:
                                         ``KR_KIND``, ``KR_START``, ``KR_STOP``,
                                         ``KR_UNIFORM`` (their coefficients bit-identical);
                                         or, when the models interleave (runs shorter than
                                         ``MIXED_RUN_LENGTH`` on average), one run
                                         :data:`KIND_MIXED` over all neurons
``general``        (1,) uint64           bit ``j``: neuron ``j`` has more than
                                         :data:`REC_SLOTS` receptors
``syn_idx``        (m, SI_N) int64       ``SI_PRE``, ``SI_POST``, ``SI_DELAY`` (steps),
                                         ``SI_PLASTIC`` (0/1), ``SI_RECEPTOR``, ``SI_TRACE``
                                         (post trace of a plastic synapse, else -1)
``syn_par``        (m, SP_N)             ``SP_G_MAX``, ``SP_G_DECAY`` (``exp(-dt/tau)``),
                                         ``SP_E``, then the STDP coefficients at
                                         ``SP_STDP + STDP_*``
``rec_start``      (n + 1,) int64        receptors of neuron ``j`` past its slots (module
                                         docstring, "Neuron pass"): ``rec_start[j]..[j+1]``
``rec_par``        (RP_N, nr)            ``RP_E``, ``RP_DECAY`` (0, 0 in unused slots)
``delays``         (nd,) int64           the distinct delays, steps
``delay_pre``      (nd,) uint64          bit ``j``: neuron ``j`` has synapses of that delay
``delay_q``        (L,) int64            index ``q`` of each delay (steps) in ``delays``, -1
                                         where no synapse has that delay
``fan_start``      (nd n + 1,) int64     synapses of (delay ``q``, pre ``j``):
``fan_syn``        (m,) int64            ``fan_syn[fan_start[q n + j] : fan_start[q n + j + 1]]``
``plast_start``    (n + 1,) int64        incoming plastic synapses of neuron ``j``:
``plast_syn``      (mp,) int64           ``plast_syn[plast_start[j] : plast_start[j + 1]]``
``trace_start``    (n + 1,) int64        post traces of neuron ``j``
``trace_decay``    (nt,)                 ``exp(-dt/tau_minus)`` of each post trace
``bits``           (n,) uint64           ``1 << j``
=================  ====================  =====================================================

:class:`NetworkState` (one running network; ``L`` = longest delay + 1):

=================  ====================  =====================================================
``nstate``         (n, N_STATE_WIDTH)    the neuron's state; slot 0 is ``v`` for both models
``syn_state``      (m, SS_N)             ``SS_W`` weight, ``SS_X_PRE`` presynaptic trace at
                                         step ``SS_T_PRE``, ``SS_JUMP`` (``w g_max`` of the
                                         last arrival), ``SS_G`` (per-synapse conductance:
                                         an observable kept by :func:`network_run` only)
``rec_g``          (nr,)                 receptor conductances at the end of the last step
                                         (0 in unused slots)
``trace_state``    (nt, TS_N)            ``TS_X`` post trace at step ``TS_T``
``hist``           (L,) uint64           spike ring, one word per step
``recent``         (L,) uint16           ring of the ``hist`` positions of the steps with a
                                         spike less than ``L`` steps ago: the newest at
                                         ``CLK_RECENT_HEAD - 1``, ``CLK_RECENT_COUNT`` of them
``clock``          (CLK_N,) int64        ``CLK_POS`` (ring position), ``CLK_STEP`` (steps
                                         done), ``CLK_ARRIVED`` (arrivals in the last step),
                                         ``CLK_RECENT_HEAD``, ``CLK_RECENT_COUNT``
``spiked``         (n,) uint8            out: which neurons spiked in the last step
``arrived``        (m,) int64            out: the synapses that received a spike in it
=================  ====================  =====================================================
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

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
    izhikevich_select_step,
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
    lif_free_v,
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

if config.DISABLE_JIT:  # plain Python: the same count on Python integers

    def trailing_zeros(x):
        """Index of the lowest set bit of ``x`` (> 0)."""
        x = int(x)
        return (x & -x).bit_length() - 1

    def assume(cond):
        """A fact for the optimiser (compiled: ``llvm.assume``); here only checked."""
        assert cond

else:
    from numba.cpython.unsafe.numbers import trailing_zeros

    @intrinsic
    def assume(typingctx, cond):
        """Tell LLVM that ``cond`` holds (``llvm.assume``), e.g. a row length it can then fold
        into constant strides. Undefined behaviour if it does not hold: state only facts."""
        if not isinstance(cond, types.Boolean):
            return None

        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(1)])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.assume")
            builder.call(fn, [args[0]])
            return context.get_dummy_value()

        return types.void(cond), codegen


MAX_NEURONS = 64  # the real-time budget the kernel is sized for (and one 64-bit spike word)

KIND_LIF = 0
KIND_IZHIKEVICH = 1
KIND_MIXED = 2  # kind_runs only: a run of neurons of both models, stepped in one pass
MIXED_RUN_LENGTH = 4  # below this mean run length of one model, one mixed run covers all

N_COEFF_WIDTH = max(LIF_N_COEFFS, IZH_N_COEFFS)
N_STATE_WIDTH = max(LIF_N_STATE, IZH_N_STATE)
V_SLOT = 0  # membrane potential slot, shared by both models
assert LIF_V == V_SLOT and IZH_V == V_SLOT
SLOT_1 = 1  # LIF_REF, IZH_U: the mixed pass loads and stores it for both models
assert LIF_REF == SLOT_1 and IZH_U == SLOT_1

# ninput columns
IN_GAIN = 0  # multiplies the external drive ext_n, neuron input per drive unit
IN_BIAS = 1  # constant input, neuron input unit
IN_N = 2

# syn_idx columns (int64)
SI_PRE = 0
SI_POST = 1
SI_DELAY = 2  # whole steps, 0 <= D < L
SI_PLASTIC = 3  # 1 if STDP applies
SI_RECEPTOR = 4  # the receptor (post neuron, E, tau) this synapse adds into
SI_TRACE = 5  # the post trace (post neuron, tau_minus) of a plastic synapse, -1 otherwise
SI_N = 6

# syn_par columns (float64)
SP_G_MAX = 0  # conductance jump per arrival at w = 1 (LIF: dimensionless, Izhikevich: 1/ms)
SP_G_DECAY = 1  # exp(-dt/tau), per step
SP_E = 2  # reversal potential, unit of the post neuron's v
SP_STDP = 3  # first STDP slot: syn_par[s, SP_STDP + STDP_*]
SP_N = SP_STDP + STDP_N_COEFFS

# syn_state columns (float64)
SS_G = 0  # conductance of this synapse (observable: kept by network_run, not network_step)
SS_W = 1  # weight (dimensionless)
SS_X_PRE = 2  # presynaptic STDP trace, at step SS_T_PRE
SS_T_PRE = 3  # the step SS_X_PRE refers to (its last arrival; -1 before the first)
SS_JUMP = 4  # w g_max of the last arrival
SS_N = 5

# rec_par columns
RP_E = 0
RP_DECAY = 1
RP_N = 2

# Receptor slots: the first REC_SLOTS receptors of every neuron sit at ``k n + j`` (slot-major,
# padded with zero conductance), so the neuron pass sums them unit-stride for all neurons; a
# neuron's further receptors follow from index REC_SLOTS n on (``rec_start``).
REC_SLOTS = 2

# kind_runs columns: maximal runs of consecutive neurons of one model
KR_KIND = 0
KR_START = 1
KR_STOP = 2
KR_UNIFORM = 3  # 1 if the run's neurons have bit-identical coefficient vectors
KR_N = 4

# trace_state columns
TS_X = 0  # postsynaptic trace at step TS_T
TS_T = 1
TS_N = 2

# clock slots
CLK_POS = 0  # position in the spike ring (steps done mod L)
CLK_STEP = 1  # steps done
CLK_ARRIVED = 2  # synapses that received a spike in the last step (arrived[:count])
CLK_RECENT_HEAD = 3  # where the next spiking step goes in ``recent``
CLK_RECENT_COUNT = 4  # spiking steps in ``recent`` (those less than L steps ago)
RECENT_DTYPE = np.uint16  # holds a ring position: L <= MAX_RING_STEPS
CLK_N = 5

# Memory budget of one network's arrays (checked by the spec layer before allocating).
MAX_SYNAPSES = 4096  # 64 x 64: every pair once
MAX_RING_STEPS = 1 << 16  # spike ring length, steps: 512 KiB of uint64 per running network
# What a network voice adds (spikesynth.dsp.network_voice, which checks these): its knot rings
# per voice slot; the heard mix kept at prepare time and the pool's shared knots.
VOICE_SLOT_BYTES = 8 * 2 * 2 * 128
VOICE_SHARED_BYTES = 8 * (20000 + 2 * 512)


class NetworkTopology(NamedTuple):
    """The shared, read-only arrays of a network (module table)."""

    kind: np.ndarray
    ncoef: np.ndarray
    ninput: np.ndarray
    coef_t: np.ndarray
    input_t: np.ndarray
    kind_runs: np.ndarray
    general: np.ndarray
    syn_idx: np.ndarray
    syn_par: np.ndarray
    rec_start: np.ndarray
    rec_par: np.ndarray
    delays: np.ndarray
    delay_pre: np.ndarray
    delay_q: np.ndarray
    fan_start: np.ndarray
    fan_syn: np.ndarray
    plast_start: np.ndarray
    plast_syn: np.ndarray
    trace_start: np.ndarray
    trace_decay: np.ndarray
    bits: np.ndarray


class NetworkState(NamedTuple):
    """The state of one running network, and its per-step outputs (module table)."""

    nstate: np.ndarray
    syn_state: np.ndarray
    rec_g: np.ndarray
    trace_state: np.ndarray
    hist: np.ndarray
    clock: np.ndarray
    spiked: np.ndarray
    arrived: np.ndarray
    recent: np.ndarray


def ring_length(syn_idx: np.ndarray) -> int:
    """Spike ring length ``L`` for these synapses: the longest delay in steps, plus one."""
    return int(syn_idx[:, SI_DELAY].max()) + 1 if syn_idx.shape[0] else 1


def network_memory_bytes(n_neurons: int, n_synapses: int, ring_steps: int,
                         n_networks: int = 1) -> int:  # fmt: skip
    """Bytes of the arrays of ``n_networks`` running copies of a network (an upper bound).

    Thread: any (pure). The spec layer checks this against its budget before allocating.
    """
    n, m, length = int(n_neurons), int(n_synapses), int(ring_steps)
    receptors = m + REC_SLOTS * n  # at most one per synapse past the padded slots
    shared = 8 * (n * (1 + 2 * N_COEFF_WIDTH + 2 * IN_N + KR_N + 6) + m * (SI_N + SP_N + 3)
                  + m + receptors * (RP_N + 2) + m * n + 4 * n + 1)  # fmt: skip
    shared += 8 * length  # delay_q
    shared += VOICE_SHARED_BYTES
    per_network = (8 * (n * N_STATE_WIDTH + m * (SS_N + 1) + receptors + m * TS_N + length
                        + CLK_N) + 2 * length + n + VOICE_SLOT_BYTES)  # fmt: skip
    return shared + int(n_networks) * per_network


def build_topology(kind, ncoef, ninput, syn_idx, syn_par) -> NetworkTopology:
    """Group the synapses for event-driven delivery (prepare time).

    Thread: main (allocates).

    Parameters
    ----------
    kind, ncoef, ninput : ndarray
        The neurons (module table).
    syn_idx : ndarray, shape (m, SI_N), int64
        ``SI_PRE``, ``SI_POST``, ``SI_DELAY``, ``SI_PLASTIC`` filled in; ``SI_RECEPTOR`` and
        ``SI_TRACE`` are written here.
    syn_par : ndarray, shape (m, SP_N)
        Filled in.

    Returns
    -------
    NetworkTopology
        Receptors group synapses by (post, ``E``, decay) in order of post neuron; post traces
        group plastic synapses by (post, ``tau_minus`` decay).
    """
    n = int(kind.shape[0])
    m = int(syn_idx.shape[0])
    if not 1 <= n <= MAX_NEURONS:
        raise ValueError(f"n_neurons must be in 1..{MAX_NEURONS}, got {n}")
    rec_keys: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    trace_keys: list[list[float]] = [[] for _ in range(n)]
    for s in range(m):
        post = int(syn_idx[s, SI_POST])
        key = (float(syn_par[s, SP_E]), float(syn_par[s, SP_G_DECAY]))
        if key not in rec_keys[post]:
            rec_keys[post].append(key)
        if syn_idx[s, SI_PLASTIC]:
            post_decay = float(syn_par[s, SP_STDP + STDP_POST_DECAY])
            if post_decay not in trace_keys[post]:
                trace_keys[post].append(post_decay)
    rec_start = np.zeros(n + 1, dtype=np.int64)  # the receptors past the slots
    rec_start[0] = REC_SLOTS * n
    trace_start = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        rec_start[j + 1] = rec_start[j] + max(len(rec_keys[j]) - REC_SLOTS, 0)
        trace_start[j + 1] = trace_start[j] + len(trace_keys[j])
    rec_par = np.zeros((int(rec_start[n]), RP_N))  # padding: E = 0, decay = 0, G stays 0
    trace_decay = np.zeros(int(trace_start[n]))

    def receptor_index(j: int, r: int) -> int:
        return r * n + j if r < REC_SLOTS else int(rec_start[j]) + r - REC_SLOTS

    for j in range(n):
        for r, (e, decay) in enumerate(rec_keys[j]):
            rec_par[receptor_index(j, r)] = (e, decay)
        trace_decay[trace_start[j] : trace_start[j + 1]] = trace_keys[j]
    for s in range(m):
        post = int(syn_idx[s, SI_POST])
        key = (float(syn_par[s, SP_E]), float(syn_par[s, SP_G_DECAY]))
        syn_idx[s, SI_RECEPTOR] = receptor_index(post, rec_keys[post].index(key))
        if syn_idx[s, SI_PLASTIC]:
            post_decay = float(syn_par[s, SP_STDP + STDP_POST_DECAY])
            syn_idx[s, SI_TRACE] = trace_start[post] + trace_keys[post].index(post_decay)
        else:
            syn_idx[s, SI_TRACE] = -1
    delays = np.unique(syn_idx[:, SI_DELAY]).astype(np.int64)
    nd = delays.shape[0]
    delay_q = np.full(int(delays[-1]) + 1 if nd else 1, -1, dtype=np.int64)
    delay_q[delays] = np.arange(nd)
    delay_pre = np.zeros(nd, dtype=np.uint64)
    fan_lists: list[list[int]] = [[] for _ in range(nd * n)]
    q_of = {int(d): q for q, d in enumerate(delays)}
    for s in range(m):
        q = q_of[int(syn_idx[s, SI_DELAY])]
        pre = int(syn_idx[s, SI_PRE])
        fan_lists[q * n + pre].append(s)
        delay_pre[q] |= np.uint64(1) << np.uint64(pre)
    fan_start = np.zeros(nd * n + 1, dtype=np.int64)
    for b, lst in enumerate(fan_lists):
        fan_start[b + 1] = fan_start[b] + len(lst)
    fan_syn = np.array([s for lst in fan_lists for s in lst], dtype=np.int64)
    plast_lists: list[list[int]] = [[] for _ in range(n)]
    for s in range(m):
        if syn_idx[s, SI_PLASTIC]:
            plast_lists[int(syn_idx[s, SI_POST])].append(s)
    plast_start = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        plast_start[j + 1] = plast_start[j] + len(plast_lists[j])
    plast_syn = np.array([s for lst in plast_lists for s in lst], dtype=np.int64)
    bits = np.array([1 << j for j in range(n)], dtype=np.uint64)
    runs = []
    for j in range(n):
        if runs and runs[-1][KR_KIND] == kind[j]:
            runs[-1][KR_STOP] = j + 1
        else:
            runs.append([int(kind[j]), j, j + 1, 0])
    bits_of = np.ascontiguousarray(ncoef).view(np.uint64)
    for run in runs:
        lo, hi = run[KR_START], run[KR_STOP]
        run[KR_UNIFORM] = int(bool((bits_of[lo:hi] == bits_of[lo]).all()))
    if len(runs) > 1 and n < MIXED_RUN_LENGTH * len(runs):
        runs = [[KIND_MIXED, 0, n, 0]]  # interleaved models: one pass computing both
    kind_runs = np.array(runs, dtype=np.int64).reshape(-1, KR_N)
    general = np.zeros(1, dtype=np.uint64)  # neurons with receptors past the slots
    for j in range(n):
        if rec_start[j + 1] > rec_start[j]:
            general[0] |= np.uint64(1) << np.uint64(j)
    return NetworkTopology(kind, ncoef, ninput, np.ascontiguousarray(ncoef.T),
                           np.ascontiguousarray(ninput.T), kind_runs, general, syn_idx, syn_par,
                           rec_start, np.ascontiguousarray(rec_par.T), delays, delay_pre,
                           delay_q, fan_start, fan_syn, plast_start, plast_syn, trace_start,
                           trace_decay, bits)  # fmt: skip


def allocate_state(topology: NetworkTopology, ring_steps: int) -> NetworkState:
    """Zeroed state for one running network (prepare time); weights and neurons to be set.

    Thread: main (allocates). ``ring_steps`` is :func:`ring_length` of the synapses.
    """
    n = topology.kind.shape[0]
    m = topology.syn_idx.shape[0]
    syn_state = np.zeros((m, SS_N))
    syn_state[:, SS_T_PRE] = -1.0
    return NetworkState(
        nstate=np.zeros((n, N_STATE_WIDTH)),
        syn_state=syn_state,
        rec_g=np.zeros(topology.rec_par.shape[1]),
        trace_state=np.zeros((topology.trace_decay.shape[0], TS_N)),
        hist=np.zeros(int(ring_steps), dtype=np.uint64),
        clock=np.zeros(CLK_N, dtype=np.int64),
        spiked=np.zeros(n, dtype=np.uint8),
        arrived=np.zeros(m, dtype=np.int64),
        recent=np.zeros(int(ring_steps), dtype=RECENT_DTYPE),
    )


@njit(cache=True, nogil=True, inline="always")
def trace_at(value, step, decay, now):
    """An STDP trace read at step ``now``: ``value`` (at ``step``) times ``decay ** (now -
    step)``, the closed form of the per-step decay (module docstring)."""
    return value * decay ** (now - step)


@njit(cache=True, nogil=True, inline="always")
def slot_input(j, n, v, ext, inp, rec_g, rec_e):
    """Input of neuron ``j`` at membrane potential ``v`` from the drive and its receptor slots:
    ``bias + gain ext_j + sum_k G (E - v)`` over the slots ``k n + j``, ``k < REC_SLOTS``, in
    order (a padded slot adds ``0 (0 - v)``: exact, up to the sign of a zero sum)."""
    i = inp[IN_BIAS, j] + inp[IN_GAIN, j] * ext[j]
    for k in range(REC_SLOTS):
        r = np.uint64(k) * n + j
        i += rec_g[r] * (rec_e[r] - v)
    return i


@njit(cache=True, nogil=True, inline="always")
def lif_fast_neuron(j, n, nstate, ext, inp, rec_g, rec_e, general, spiked, decay, v_th):
    """The branch-free part of a LIF neuron's step (``j``, ``n`` unsigned): its free update,
    kept when it is not refractory, does not cross ``v_th`` and has no receptors past the
    slots; else ``v`` is left as it was. Returns the neuron's bit if the scalar pass must step
    it (``1 << j``), else 0."""
    v0 = nstate[j, LIF_V]
    i = slot_input(j, n, v0, ext, inp, rec_g, rec_e)
    v = lif_free_v(v0, i, decay)
    slow = (nstate[j, LIF_REF] > 0.0) | (v >= v_th) | (((general >> j) & np.uint64(1)) != 0)
    nstate[j, LIF_V] = v0 if slow else v
    spiked[j] = 0
    return np.uint64(slow) << j


@njit(cache=True, nogil=True, inline="always")
def izh_fast_neuron(j, n, nstate, ext, inp, rec_g, rec_e, general, spiked, dt, adt, b, c, d, e,
                    f, g, u_vref, u_leak, v_peak):  # fmt: skip
    """An Izhikevich neuron's whole step, branch-free (``j``, ``n`` unsigned), unless it has
    receptors past the slots (then left as it was for the scalar pass). Returns its spike bit
    (``1 << j`` if it spiked, else 0)."""
    v0 = nstate[j, IZH_V]
    u0 = nstate[j, IZH_U]
    i = slot_input(j, n, v0, ext, inp, rec_g, rec_e)
    v, u, z = izhikevich_select_step(v0, u0, i, dt, adt, b, c, d, e, f, g, u_vref, u_leak, v_peak)
    free = ((general >> j) & np.uint64(1)) == 0
    nstate[j, IZH_V] = v if free else v0
    nstate[j, IZH_U] = u if free else u0
    z = z & free
    spiked[j] = z
    return np.uint64(z) << j


@njit(cache=True, nogil=True, inline="always")
def mixed_fast_neuron(j, n, nstate, kind, ext, inp, rec_g, rec_e, general, spiked, coef):
    """:func:`lif_fast_neuron` or :func:`izh_fast_neuron` by ``kind[j]``, without a branch:
    both models' arithmetic is done and the neuron's own selected (the other's, on the wrong
    coefficients, is discarded). Returns ``(fix bit, spike bit)``."""
    v0 = nstate[j, V_SLOT]
    s1 = nstate[j, SLOT_1]
    i = slot_input(j, n, v0, ext, inp, rec_g, rec_e)
    v_lif = lif_free_v(v0, i, coef[LIF_DECAY, j])
    v_izh, u_izh, z = izhikevich_select_step(
        v0, s1, i, coef[IZH_DT, j], coef[IZH_ADT, j], coef[IZH_B, j], coef[IZH_C, j],
        coef[IZH_D, j], coef[IZH_E, j], coef[IZH_F, j], coef[IZH_G, j], coef[IZH_U_VREF, j],
        coef[IZH_U_LEAK, j], coef[IZH_V_PEAK, j])  # fmt: skip
    is_lif = kind[j] == KIND_LIF
    own = ((general >> j) & np.uint64(1)) != 0  # receptors past the slots: the scalar pass
    slow = is_lif & ((s1 > 0.0) | (v_lif >= coef[LIF_V_TH, j])) | own
    izh_free = (kind[j] != KIND_LIF) & (((general >> j) & np.uint64(1)) == 0)
    v_new = v_lif if is_lif else v_izh
    nstate[j, V_SLOT] = v0 if slow else v_new
    nstate[j, SLOT_1] = u_izh if izh_free else s1
    z = z & izh_free
    spiked[j] = z
    return np.uint64(slow) << j, np.uint64(z) << j


@njit(cache=True, nogil=True, inline="always")
def network_step(ext, lr, topology, state):
    """Advance the whole network by one step of ``dt``.

    Thread: audio (or any; no allocation). Inlined into its callers (a call passing two
    records of arrays would cost more in reference counting than a small network's maths).

    Equations (module docstring): ``i_n = bias_n + gain_n ext_n + sum_r G_r (E_r - v_n)``
    with ``G`` and ``v`` at the start of the step, held over it; each neuron takes one step
    of its model (LIF: ``tau v' = i - v``, threshold ``v >= v_th``, reset ``v <- v_reset``
    plus refractory time; Izhikevich: ``v' = 0.04 v^2 + 5 v + 140 - u + i``,
    ``u' = a (b v - u)``, threshold ``v >= v_peak``, reset ``v <- c, u <- u + d``); the step's
    spike word enters the ring; every receptor decays by one step; the synapses whose
    presynaptic spike from ``D_s`` steps ago arrives now add ``w g_max`` to their receptor and
    (if plastic) depress by the post trace (:func:`spikesynth.dsp.stdp.stdp_update`); the
    incoming plastic synapses of the neurons that spiked potentiate by their pre traces;
    then the traces are incremented.

    Parameters
    ----------
    ext : ndarray, shape (n,), float64
        External drive of each neuron over this step (multiplied by its gain).
    lr : float
        Global STDP learning rate (0 freezes all weights).
    topology : NetworkTopology
    state : NetworkState
        Updated in place; ``nstate`` must have rows of :data:`N_STATE_WIDTH` (the layout of
        :func:`allocate_state`, which the compiled step assumes without checking).

    Returns
    -------
    int
        Number of neurons that spiked during this step.
    """
    kind = topology.kind
    coef = topology.coef_t
    inp = topology.input_t
    runs = topology.kind_runs
    rec_e = topology.rec_par[RP_E]
    rec_decay = topology.rec_par[RP_DECAY]
    nstate = state.nstate
    rec_g = state.rec_g
    spiked = state.spiked
    hist = state.hist
    clock = state.clock
    n = kind.shape[0]
    one = np.uint64(1)
    zero = np.uint64(0)
    # Neurons, each on its input from the state at the start of the step. First a branch-free
    # pass over each run of neurons of one model (unit-stride, vectorisable: the receptor
    # slots padded with zero conductance, the reset by selection); it leaves the neurons that
    # need more (LIF: refractory or crossing; any model: receptors past the slots) unchanged
    # and marks them in ``fix``, and a scalar pass then steps those with the full kernel.
    word = zero
    general = topology.general[0]
    fix = general
    nu = np.uint64(n)
    # The state's row length is a constant: without it the stores of one neuron's v and u
    # might overlap the next neuron's loads (the vectoriser would not touch the loop).
    assume(nstate.shape[1] == N_STATE_WIDTH)
    # Unsigned neuron indices: no negative-index wraparound, so the loops vectorise.
    for q in range(runs.shape[0]):
        lo = np.uint64(runs[q, KR_START])
        hi = np.uint64(runs[q, KR_STOP])
        # A run whose neurons share their coefficients reads them once (broadcast), others
        # per neuron (unit-stride columns); the arithmetic is the same.
        if runs[q, KR_KIND] == KIND_LIF:
            if runs[q, KR_UNIFORM]:
                decay = coef[LIF_DECAY, lo]
                v_th = coef[LIF_V_TH, lo]
                for j in range(lo, hi):
                    fix |= lif_fast_neuron(
                        j, nu, nstate, ext, inp, rec_g, rec_e, general, spiked, decay, v_th
                    )
            else:
                for j in range(lo, hi):
                    fix |= lif_fast_neuron(
                        j, nu, nstate, ext, inp, rec_g, rec_e, general, spiked,
                        coef[LIF_DECAY, j], coef[LIF_V_TH, j])  # fmt: skip
        elif runs[q, KR_KIND] == KIND_MIXED:
            for j in range(lo, hi):
                fix_bit, spike_bit = mixed_fast_neuron(j, nu, nstate, kind, ext, inp, rec_g,
                                                       rec_e, general, spiked, coef)  # fmt: skip
                fix |= fix_bit
                word |= spike_bit
        elif runs[q, KR_UNIFORM]:
            dt = coef[IZH_DT, lo]
            adt = coef[IZH_ADT, lo]
            b = coef[IZH_B, lo]
            c = coef[IZH_C, lo]
            d = coef[IZH_D, lo]
            e = coef[IZH_E, lo]
            f = coef[IZH_F, lo]
            g = coef[IZH_G, lo]
            u_vref = coef[IZH_U_VREF, lo]
            u_leak = coef[IZH_U_LEAK, lo]
            v_peak = coef[IZH_V_PEAK, lo]
            for j in range(lo, hi):
                word |= izh_fast_neuron(
                    j, nu, nstate, ext, inp, rec_g, rec_e, general, spiked,
                    dt, adt, b, c, d, e, f, g, u_vref, u_leak, v_peak)  # fmt: skip
        else:
            for j in range(lo, hi):
                word |= izh_fast_neuron(
                    j, nu, nstate, ext, inp, rec_g, rec_e, general, spiked, coef[IZH_DT, j],
                    coef[IZH_ADT, j], coef[IZH_B, j], coef[IZH_C, j], coef[IZH_D, j],
                    coef[IZH_E, j], coef[IZH_F, j], coef[IZH_G, j], coef[IZH_U_VREF, j],
                    coef[IZH_U_LEAK, j], coef[IZH_V_PEAK, j])  # fmt: skip
    pending = fix
    while pending != zero:
        j = np.uint64(trailing_zeros(pending))
        pending &= pending - one
        v = nstate[j, V_SLOT]
        i = slot_input(j, nu, v, ext, inp, rec_g, rec_e)
        for r in range(topology.rec_start[j], topology.rec_start[j + one]):
            i += rec_g[r] * (rec_e[r] - v)
        # Scalar steps on 2-D indexing: a row view per neuron would cost reference counting.
        if kind[j] == KIND_LIF:
            v, ref, offset, z = lif_scalar_step(
                v, nstate[j, LIF_REF], nstate[j, LIF_SPIKE_OFFSET], i,
                coef[LIF_DT, j], coef[LIF_DECAY, j], coef[LIF_V_TH, j], coef[LIF_V_RESET, j],
                coef[LIF_TAU, j], coef[LIF_INV_TAU, j], coef[LIF_T_REF, j],
                coef[LIF_METHOD, j] != 0.0)  # fmt: skip
            nstate[j, LIF_V] = v
            nstate[j, LIF_REF] = ref
            nstate[j, LIF_SPIKE_OFFSET] = offset
        else:
            v, u, z = izhikevich_scalar_step(
                v, nstate[j, IZH_U], i, coef[IZH_DT, j],
                coef[IZH_ADT, j], coef[IZH_B, j], coef[IZH_C, j], coef[IZH_D, j],
                coef[IZH_E, j], coef[IZH_F, j], coef[IZH_G, j], coef[IZH_U_VREF, j],
                coef[IZH_U_LEAK, j], coef[IZH_V_PEAK, j])  # fmt: skip
            nstate[j, IZH_V] = v
            nstate[j, IZH_U] = u
        spiked[j] = z
        if z:
            word |= one << j
    n_spikes = 0
    if word != zero:
        for j in range(n):
            n_spikes += spiked[j]
    pos = clock[CLK_POS]  # kept in [0, L): no division on the step-to-step chain
    hist[pos] = word
    for r in range(rec_g.shape[0]):
        rec_g[r] *= rec_decay[r]
    # Arrivals: the spike words of the recent spiking steps (newest first: in order of delay),
    # each masked by the neurons with synapses of that delay (written here, not in a helper:
    # a call binding this many arrays kept their reference counts in the loop). Visiting
    # only the steps that had a spike, rather than every distinct delay, keeps a network of
    # long, varied delays cheap.
    now = float(clock[CLK_STEP])
    any_spike = n_spikes > 0
    plast_start = topology.plast_start
    plast_syn = topology.plast_syn
    trace_start = topology.trace_start
    syn_idx = topology.syn_idx
    syn_par = topology.syn_par
    delay_pre = topology.delay_pre
    delay_q = topology.delay_q
    recent = state.recent
    fan_start = topology.fan_start
    fan_syn = topology.fan_syn
    trace_decay = topology.trace_decay
    syn_state = state.syn_state
    trace_state = state.trace_state
    arrived = state.arrived
    L = hist.shape[0]
    n_arrived = 0
    head = clock[CLK_RECENT_HEAD]
    count = clock[CLK_RECENT_COUNT]
    if count > 0:  # the oldest spiking step, if it was L steps ago, is out of every delay's reach
        tail = head - count
        if tail < 0:
            tail += L
        if recent[tail] == pos:
            count -= 1
    if word != zero:
        recent[head] = pos
        head = head + 1 if head + 1 < L else 0
        count += 1
    clock[CLK_RECENT_HEAD] = head
    clock[CLK_RECENT_COUNT] = count
    k = head
    for _ in range(count):
        k = k - 1 if k > 0 else L - 1
        back = np.int64(recent[k])
        delay = pos - back
        if delay < 0:
            delay += L
        q = delay_q[delay] if delay < delay_q.shape[0] else -1
        if q < 0:
            continue
        hits = hist[back] & delay_pre[q]
        while hits != zero:
            base = q * n + np.int64(trailing_zeros(hits))
            hits &= hits - one
            for f in range(fan_start[base], fan_start[base + 1]):
                s = fan_syn[f]
                w = syn_state[s, SS_W]
                jump = w * syn_par[s, SP_G_MAX]  # the weight before this step's plasticity
                rec_g[syn_idx[s, SI_RECEPTOR]] += jump
                syn_state[s, SS_JUMP] = jump
                arrived[n_arrived] = s
                n_arrived += 1
                if syn_idx[s, SI_PLASTIC] != 0:
                    tr = syn_idx[s, SI_TRACE]
                    x_post = trace_at(trace_state[tr, TS_X], trace_state[tr, TS_T],
                                      trace_decay[tr], now)  # fmt: skip
                    x_pre = trace_at(syn_state[s, SS_X_PRE], syn_state[s, SS_T_PRE],
                                     syn_par[s, SP_STDP + STDP_PRE_DECAY], now)  # fmt: skip
                    syn_state[s, SS_W] = stdp_update(
                        w, x_pre, x_post, True, spiked[syn_idx[s, SI_POST]] != 0, lr,
                        syn_par[s, SP_STDP + STDP_A_PLUS], syn_par[s, SP_STDP + STDP_A_MINUS],
                        syn_par[s, SP_STDP + STDP_W_MIN],
                        syn_par[s, SP_STDP + STDP_W_MAX])  # fmt: skip
                    syn_state[s, SS_X_PRE] = x_pre + 1.0
                    syn_state[s, SS_T_PRE] = now
    if any_spike and plast_syn.shape[0] > 0:
        for j in range(n):
            if spiked[j] == 0:
                continue
            for f in range(plast_start[j], plast_start[j + 1]):
                s = plast_syn[f]
                if syn_state[s, SS_T_PRE] == now:  # arrived in this step: updated above
                    continue
                x_pre = trace_at(syn_state[s, SS_X_PRE], syn_state[s, SS_T_PRE],
                                 syn_par[s, SP_STDP + STDP_PRE_DECAY], now)  # fmt: skip
                syn_state[s, SS_W] = stdp_update(
                    syn_state[s, SS_W], x_pre, 0.0, False, True, lr,
                    syn_par[s, SP_STDP + STDP_A_PLUS], syn_par[s, SP_STDP + STDP_A_MINUS],
                    syn_par[s, SP_STDP + STDP_W_MIN], syn_par[s, SP_STDP + STDP_W_MAX])  # fmt: skip
            for tr in range(trace_start[j], trace_start[j + 1]):
                trace_state[tr, TS_X] = trace_at(trace_state[tr, TS_X], trace_state[tr, TS_T],
                                                 trace_decay[tr], now) + 1.0  # fmt: skip
                trace_state[tr, TS_T] = now
    clock[CLK_POS] = pos + 1 if pos + 1 < hist.shape[0] else 0
    clock[CLK_STEP] += 1
    clock[CLK_ARRIVED] = n_arrived
    return n_spikes


@njit(cache=True, nogil=True)
def network_run(current, start, lr, topology, state, v_out, g_out, w_out, ev_step, ev_neuron,
                ev_offset, n_events):  # fmt: skip
    """Run :func:`network_step` over a drive trace from step ``start``, recording.

    Thread: any (no allocation). Stops early, *before* a step, when the event arrays could
    overflow during it; the caller enlarges them and calls again from the returned step.
    Keeps each synapse's own conductance ``syn_state[:, SS_G]`` (``g_s <- g_s exp(-dt/tau_s)
    + w g_max`` at its arrivals), which the voice path does not need.

    Parameters
    ----------
    current : ndarray, shape (n_steps, n), float64
        External drive per step and neuron (rows may be stride-0 broadcasts).
    start : int
        First step to run.
    lr : float
        Global STDP learning rate.
    topology : NetworkTopology
    state : NetworkState
        Updated in place.
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
    kind = topology.kind
    ncoef = topology.ncoef
    syn_par = topology.syn_par
    nstate = state.nstate
    syn_state = state.syn_state
    spiked = state.spiked
    arrived = state.arrived
    n = kind.shape[0]
    m = syn_state.shape[0]
    cap = ev_step.shape[0]
    rec_v = v_out.shape[0] > 0
    rec_g = g_out.shape[0] > 0
    rec_w = w_out.shape[0] > 0
    for k in range(start, current.shape[0]):
        if n_events + n > cap:
            return k, n_events
        z = network_step(current[k], lr, topology, state)
        for s in range(m):
            syn_state[s, SS_G] *= syn_par[s, SP_G_DECAY]
        for a in range(state.clock[CLK_ARRIVED]):
            s = arrived[a]
            syn_state[s, SS_G] += syn_state[s, SS_JUMP]
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
