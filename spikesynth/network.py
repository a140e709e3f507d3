"""The network lab: build a small spiking network from a plain dict spec and simulate it.

Thread: main (everything here allocates; a study/offline API, not for the audio thread).

The spec (a dict, or the ``network:`` section of a YAML file, :func:`load_network_spec`)::

    neurons:                      # 1 to 64 entries, in order (index = position)
      - name: A                   # optional, default "n<index>"; unique
        model: izhikevich         # "lif" or "izhikevich" (a pitched network voice: LIF with
                                  # method: euler, so its spikes fall on the step grid and the
                                  # network can repeat exactly: spikesynth.dsp.network_voice)
        preset: tonic_spiking     # any parameter of the model, as in spikesynth.neurons.simulate
        v0: -70
        gain: 1.0                 # multiplies the external drive (default 0: not driven)
        bias: 0.0                 # constant input (default 0)
        out: 1.0                  # as a synth voice: how loud this membrane is heard (0: not;
                                  # negative: inverted, e.g. for a mono-compatible push-pull)
        pan: 0.0                  # as a synth voice: -1 left .. 1 right
    synapses:                     # optional
      - pre: A                    # neuron name or index
        post: B
        g_max: 0.5                # conductance jump at w = 1 (LIF: x leak, Izhikevich: 1/ms)
        tau: 10.0                 # decay time, ms
        delay: 1.0                # ms, default 0; rounded to whole steps
        sign: inhibitory          # or E_syn: -80 (exactly one of the two)
        w: 1.0                    # initial weight, default 1
        plastic: false            # STDP on this synapse
        stdp: {a_plus: 0.02}      # optional per-synapse overrides of the network's stdp
    stdp:                         # optional defaults for plastic synapses
      tau_plus: 20.0              # ms
      tau_minus: 20.0             # ms
      a_plus: 0.01
      a_minus: 0.012
      w_min: 0.0
      w_max: 1.0
      lr: 1.0                     # global learning rate (simulate_network(lr=...) overrides)
    name: ..., description: ...   # free text, ignored

Units and equations: :mod:`spikesynth.dsp.network` (time in ms; Izhikevich in mV, LIF
normalised with ``v_reset = 0``, ``v_th = 1`` by default). ``sign`` picks the reversal
potential from the post neuron's model: LIF ``v_reset + 1.5 (v_th - v_reset)`` /
``v_reset - 0.5 (v_th - v_reset)``; Izhikevich 0 mV / -80 mV.

Time conventions are those of :mod:`spikesynth.neurons`: step ``k`` covers ``[k dt, (k+1) dt)``,
traces hold the state at its end, a spike is reported at ``(k + 1) dt`` (Izhikevich, LIF
Euler) or at its exact crossing time inside the step (LIF exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .dsp import izhikevich as izh
from .dsp import lif
from .dsp import network as net
from .dsp.stdp import STDPParameters, prepare_stdp
from .neurons import izhikevich_parameters

MODELS = ("lif", "izhikevich")
SIGNS = ("excitatory", "inhibitory")

_TOP_KEYS = frozenset({"neurons", "synapses", "stdp", "name", "description"})
_NEURON_COMMON = frozenset({"name", "model", "gain", "bias", "out", "pan"})
_LIF_KEYS = frozenset(lif.LIFParameters._fields) | {"v0"}
_IZH_KEYS = frozenset(izh.IzhikevichParameters._fields) | {"v0", "u0", "preset"}
_SYN_KEYS = frozenset(
    {"pre", "post", "g_max", "tau", "delay", "sign", "E_syn", "w", "plastic", "stdp"}
)
_STDP_KEYS = frozenset(STDPParameters._fields)
_STDP_TOP_KEYS = _STDP_KEYS | {"lr"}

# Default reversal potentials of the Izhikevich model, mV.
IZH_E_EXC = 0.0
IZH_E_INH = -80.0


class NetworkSpecError(ValueError):
    """An invalid network spec; ``key`` names the offending entry (e.g. ``synapses[2].tau``)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


# --------------------------------------------------------------------------------------------
# Validation helpers


def _mapping(value, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise NetworkSpecError(key, f"expected a mapping, got {type(value).__name__}")
    return value


def _unknown(d: Mapping, allowed: frozenset, key: str) -> None:
    bad = [k for k in d if k not in allowed]
    if bad:
        raise NetworkSpecError(
            f"{key}.{bad[0]}" if key else str(bad[0]),
            f"unknown key; allowed: {', '.join(sorted(allowed))}",
        )


def _number(d: Mapping, name: str, key: str, default=None, *, lo=None, lo_open=False,
            hi=None, unit="") -> float:  # fmt: skip
    if name not in d:
        if default is None:
            raise NetworkSpecError(f"{key}.{name}", "missing (required)")
        return float(default)
    x = d[name]
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        hint = ""
        if isinstance(x, str):
            try:
                float(x)
                hint = " (YAML reads 1e9 as text: write 1.0e+9)"
            except ValueError:
                pass
        raise NetworkSpecError(f"{key}.{name}", f"expected a number, got {x!r}{hint}")
    x = float(x)
    if not math.isfinite(x):
        raise NetworkSpecError(f"{key}.{name}", f"must be finite, got {x!r}")
    if lo is not None and (x <= lo if lo_open else x < lo):
        op = ">" if lo_open else ">="
        raise NetworkSpecError(f"{key}.{name}", f"must be {op} {lo:g}, got {x:g}")
    if hi is not None and x > hi:
        raise NetworkSpecError(f"{key}.{name}", f"must be <= {hi:g}{unit}, got {x:g}")
    return x


# --------------------------------------------------------------------------------------------
# The built network


# Bounds of the spec's keys: with them, every network the spec layer accepts fits in
# NETWORK_MEMORY_BUDGET at the largest polyphony (tests/test_network.py checks the worst case).
MAX_DELAY_MS = 1000.0  # synaptic delay, ms of model time (and at most MAX_RING_STEPS - 1 steps)
MAX_TAU_MS = 10000.0  # synaptic and STDP time constants, ms
MAX_LEVEL = 1e4  # |gain|, |bias|, |out|, |E_syn| (unit of the neuron's input / potential)
MAX_G = 1e3  # g_max and |w|
MAX_STDP_AMPLITUDE = 1e3  # a_plus, a_minus, |w_min|, |w_max|, lr
MAX_NETWORKS = 256  # running copies: the patch schema's largest polyphony
NETWORK_MEMORY_BUDGET = 256 * 2**20  # bytes of all copies of one network's arrays


@dataclass
class Network:
    """A network ready to run: kernel arrays plus the resolved spec.

    Attributes
    ----------
    topology : spikesynth.dsp.network.NetworkTopology
        The shared arrays (neurons' coefficients, synapses, their grouping).
    state : spikesynth.dsp.network.NetworkState
        The running state (running the network advances it).
    dt : float
        Step, ms.
    names : list of str
        Neuron names, index order.
    neurons : list of dict
        Resolved neuron parameters (model, gain, bias, model parameters, initial state).
    synapses : list of dict
        Resolved synapses (indices, ``E_syn``, ``delay_steps``, effective ``delay`` in ms,
        STDP parameters).
    lr : float
        Learning rate from the spec.
    """

    topology: net.NetworkTopology
    state: net.NetworkState
    dt: float
    names: list[str]
    neurons: list[dict]
    synapses: list[dict]
    lr: float

    @property
    def n_neurons(self) -> int:
        return len(self.names)

    @property
    def n_synapses(self) -> int:
        return len(self.synapses)

    @property
    def ring_steps(self) -> int:
        """Length of the spike ring: the longest delay in steps, plus one."""
        return int(self.state.hist.shape[0])


class _NeuronArrays(NamedTuple):
    kind: np.ndarray
    ncoef: np.ndarray
    nstate: np.ndarray
    ninput: np.ndarray


def _build_neuron(j: int, spec, dt: float, a: _NeuronArrays) -> tuple[str, dict]:
    key = f"neurons[{j}]"
    spec = _mapping(spec, key)
    model = spec.get("model")
    if model not in MODELS:
        raise NetworkSpecError(f"{key}.model", f"must be one of {MODELS}, got {model!r}")
    name = spec.get("name", f"n{j}")
    if not isinstance(name, str) or not name:
        raise NetworkSpecError(f"{key}.name", f"expected a non-empty string, got {name!r}")
    allowed = _NEURON_COMMON | (_LIF_KEYS if model == "lif" else _IZH_KEYS)
    _unknown(spec, allowed, key)
    gain = _number(spec, "gain", key, 0.0, lo=-MAX_LEVEL, hi=MAX_LEVEL)
    bias = _number(spec, "bias", key, 0.0, lo=-MAX_LEVEL, hi=MAX_LEVEL)
    out = _number(spec, "out", key, 1.0, lo=-MAX_LEVEL, hi=MAX_LEVEL)
    pan = _number(spec, "pan", key, 0.0)
    if not -1.0 <= pan <= 1.0:
        raise NetworkSpecError(f"{key}.pan", f"must be in -1..1, got {pan}")
    params = {k: v for k, v in spec.items() if k not in _NEURON_COMMON}
    for k, v in params.items():
        if k not in ("method", "preset") and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        ):
            raise NetworkSpecError(f"{key}.{k}", f"expected a finite number, got {v!r}")
    try:
        if model == "lif":
            v0 = float(params.pop("v0", 0.0))
            p = lif.LIFParameters()._replace(**params)
            lif.prepare_lif(p, dt, out=a.ncoef[j, : lif.LIF_N_COEFFS])
            lif.lif_state(v0, out=a.nstate[j, : lif.LIF_N_STATE])
            a.kind[j] = net.KIND_LIF
            resolved = {**p._asdict(), "v0": v0}
        else:
            p, v0, u0 = izhikevich_parameters(params)
            izh.prepare_izhikevich(p, dt, out=a.ncoef[j, : izh.IZH_N_COEFFS])
            izh.izhikevich_state(v0, u0, out=a.nstate[j, : izh.IZH_N_STATE])
            a.kind[j] = net.KIND_IZHIKEVICH
            resolved = {**p._asdict(), "v0": v0, "u0": u0}
    except ValueError as e:  # the model's own checks (tau > 0, method, preset, ...)
        raise NetworkSpecError(key, str(e)) from None
    if model == "lif" and not resolved["v_reset"] < resolved["v_th"]:
        raise NetworkSpecError(f"{key}.v_reset", "must be below v_th")
    a.ninput[j, net.IN_GAIN] = gain
    a.ninput[j, net.IN_BIAS] = bias
    return name, {"name": name, "model": model, "gain": gain, "bias": bias, "out": out,
                  "pan": pan, **resolved}


def _stdp_params(d: Mapping, key: str, base: STDPParameters) -> STDPParameters:
    d = _mapping(d, key)
    hi = {"tau_plus": MAX_TAU_MS, "tau_minus": MAX_TAU_MS}
    values = {f: _number(d, f, key, getattr(base, f), lo=-MAX_STDP_AMPLITUDE,
                         hi=hi.get(f, MAX_STDP_AMPLITUDE))
              for f in STDPParameters._fields}  # fmt: skip
    p = STDPParameters(**values)
    for f in ("tau_plus", "tau_minus"):
        if not getattr(p, f) > 0.0:
            raise NetworkSpecError(f"{key}.{f}", f"must be > 0, got {getattr(p, f)}")
    for f in ("a_plus", "a_minus"):
        if not getattr(p, f) >= 0.0:
            raise NetworkSpecError(f"{key}.{f}", f"must be >= 0, got {getattr(p, f)}")
    if not p.w_min <= p.w_max:
        raise NetworkSpecError(f"{key}.w_max", f"must be >= w_min ({p.w_min}), got {p.w_max}")
    return p


def _neuron_index(value, key: str, index: dict[str, int], n: int) -> int:
    if isinstance(value, str):
        if value not in index:
            raise NetworkSpecError(key, f"no neuron named {value!r}; names: {sorted(index)}")
        return index[value]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    raise NetworkSpecError(key, f"expected a neuron name or an index in 0..{n - 1}, got {value!r}")


def build_network(spec: Mapping, dt: float, n_networks: int = 1) -> Network:
    """Validate a spec and build the kernel arrays for step ``dt`` (ms).

    Thread: main (allocates, after checking the memory budget).

    Parameters
    ----------
    spec : mapping
        The network spec (module docstring).
    dt : float
        Step, ms.
    n_networks : int
        Running copies the caller will make of the state (a voice pool's slots): the memory
        budget :data:`NETWORK_MEMORY_BUDGET` is checked for all of them before allocating.

    Raises
    ------
    NetworkSpecError
        Naming the offending key (``neurons[1].tau``, ``synapses[0].sign``, ...), including
        the bounds: at most :data:`~spikesynth.dsp.network.MAX_NEURONS` neurons and
        :data:`~spikesynth.dsp.network.MAX_SYNAPSES` synapses, delays up to
        :data:`MAX_DELAY_MS` and ``MAX_RING_STEPS - 1`` steps of ``dt``.
    """
    dt = float(dt)
    if not (dt > 0.0 and math.isfinite(dt)):
        raise NetworkSpecError("dt", f"must be positive and finite, got {dt!r}")
    spec = _mapping(spec, "network")
    _unknown(spec, _TOP_KEYS, "")
    neurons = spec.get("neurons")
    if not isinstance(neurons, list) or not neurons:
        raise NetworkSpecError("neurons", "expected a non-empty list of neurons")
    if len(neurons) > net.MAX_NEURONS:
        raise NetworkSpecError("neurons", f"at most {net.MAX_NEURONS} neurons, got {len(neurons)}")
    synapses = spec.get("synapses", [])
    if synapses is None:
        synapses = []
    if not isinstance(synapses, list):
        raise NetworkSpecError("synapses", "expected a list of synapses")
    if len(synapses) > net.MAX_SYNAPSES:
        raise NetworkSpecError("synapses",
                               f"at most {net.MAX_SYNAPSES} synapses, got {len(synapses)}")
    stdp_top = _mapping(spec.get("stdp", {}) or {}, "stdp")
    _unknown(stdp_top, _STDP_TOP_KEYS, "stdp")
    lr = _number(stdp_top, "lr", "stdp", 1.0, lo=0.0, hi=MAX_STDP_AMPLITUDE)
    stdp_base = _stdp_params({k: v for k, v in stdp_top.items() if k != "lr"}, "stdp",
                             STDPParameters())  # fmt: skip

    # Synapse delays first: they size the spike ring, checked before anything is allocated.
    n, m = len(neurons), len(synapses)
    max_steps = net.MAX_RING_STEPS - 1
    delays = []
    for s, syn in enumerate(synapses):
        key = f"synapses[{s}]"
        syn = _mapping(syn, key)
        _unknown(syn, _SYN_KEYS, key)
        delay = _number(syn, "delay", key, 0.0, lo=0.0, hi=MAX_DELAY_MS, unit=" ms")
        steps = int(round(delay / dt))
        if steps > max_steps:
            raise NetworkSpecError(
                f"{key}.delay",
                f"must be <= {max_steps * dt:g} ms at a step of {dt:g} ms (at most {max_steps} "
                f"steps), got {delay:g}")  # fmt: skip
        delays.append(steps)
    ring = max(delays, default=0) + 1
    n_networks = max(int(n_networks), 1)
    need = net.network_memory_bytes(n, m, ring, n_networks)
    if need > NETWORK_MEMORY_BUDGET:
        raise NetworkSpecError(
            "synapses",
            f"{n} neurons, {m} synapses and a {ring}-step delay ring for {n_networks} voices "
            f"need {need / 2**20:.0f} MiB, over the {NETWORK_MEMORY_BUDGET / 2**20:.0f} MiB "
            "budget: use shorter delays, a longer step_ms or fewer voices")  # fmt: skip
    a = _NeuronArrays(np.zeros(n, dtype=np.int64), np.zeros((n, net.N_COEFF_WIDTH)),
                      np.zeros((n, net.N_STATE_WIDTH)), np.zeros((n, net.IN_N)))
    syn_idx = np.zeros((m, net.SI_N), dtype=np.int64)
    syn_par = np.zeros((m, net.SP_N))
    w0 = np.zeros(m)

    names, resolved_neurons, index = [], [], {}
    for j, nspec in enumerate(neurons):
        name, resolved = _build_neuron(j, nspec, dt, a)
        if name in index:
            raise NetworkSpecError(f"neurons[{j}].name", f"duplicate name {name!r}")
        index[name] = j
        names.append(name)
        resolved_neurons.append(resolved)

    resolved_synapses = []
    for s, syn in enumerate(synapses):
        key = f"synapses[{s}]"
        for req in ("pre", "post"):
            if req not in syn:
                raise NetworkSpecError(f"{key}.{req}", "missing (required)")
        pre = _neuron_index(syn["pre"], f"{key}.pre", index, n)
        post = _neuron_index(syn["post"], f"{key}.post", index, n)
        g_max = _number(syn, "g_max", key, lo=0.0, hi=MAX_G)
        tau = _number(syn, "tau", key, lo=0.0, lo_open=True, hi=MAX_TAU_MS, unit=" ms")
        w = _number(syn, "w", key, 1.0, lo=-MAX_G, hi=MAX_G)
        if ("sign" in syn) == ("E_syn" in syn):
            raise NetworkSpecError(f"{key}.sign", "give exactly one of 'sign' or 'E_syn'")
        post_n = resolved_neurons[post]
        if "E_syn" in syn:
            e_syn = _number(syn, "E_syn", key, lo=-MAX_LEVEL, hi=MAX_LEVEL)
        else:
            sign = syn["sign"]
            if sign not in SIGNS:
                raise NetworkSpecError(f"{key}.sign", f"must be one of {SIGNS}, got {sign!r}")
            if post_n["model"] == "lif":
                span = post_n["v_th"] - post_n["v_reset"]
                factor = 1.5 if sign == "excitatory" else -0.5
                e_syn = post_n["v_reset"] + factor * span
            else:
                e_syn = IZH_E_EXC if sign == "excitatory" else IZH_E_INH
        plastic = syn.get("plastic", False)
        if not isinstance(plastic, bool):
            raise NetworkSpecError(f"{key}.plastic", f"expected true or false, got {plastic!r}")
        sp = syn.get("stdp", {}) or {}
        _unknown(_mapping(sp, f"{key}.stdp"), _STDP_KEYS, f"{key}.stdp")
        stdp = _stdp_params(sp, f"{key}.stdp", stdp_base)
        if plastic and not stdp.w_min <= w <= stdp.w_max:
            raise NetworkSpecError(
                f"{key}.w", f"must be within [w_min, w_max] = [{stdp.w_min}, {stdp.w_max}]"
            )
        syn_idx[s, net.SI_PRE] = pre
        syn_idx[s, net.SI_POST] = post
        syn_idx[s, net.SI_DELAY] = delays[s]
        syn_idx[s, net.SI_PLASTIC] = int(plastic)
        syn_par[s, net.SP_G_MAX] = g_max
        syn_par[s, net.SP_G_DECAY] = math.exp(-dt / tau)
        syn_par[s, net.SP_E] = e_syn
        prepare_stdp(stdp, dt, out=syn_par[s, net.SP_STDP :])
        w0[s] = w
        resolved_synapses.append(
            {
                "pre": pre, "post": post, "g_max": g_max, "tau": tau, "E_syn": e_syn, "w": w,
                "delay_steps": delays[s], "delay": delays[s] * dt, "plastic": plastic,
                **stdp._asdict(),
            }
        )  # fmt: skip
    topology = net.build_topology(a.kind, a.ncoef, a.ninput, syn_idx, syn_par)
    state = net.allocate_state(topology, ring)
    state.nstate[:] = a.nstate
    state.syn_state[:, net.SS_W] = w0
    return Network(topology, state, dt, names, resolved_neurons, resolved_synapses, lr)


def load_network_spec(path) -> dict:
    """Read the network spec of a patch file's ``network:`` section (e.g. ``patches/*.yaml``).

    Thread: main. The YAML is read by :mod:`spikesynth.patch` (which owns the patch format);
    only the spec keys (neurons, synapses, stdp, name, description) are returned, not the
    voice's settings (drive, step, ...).

    Returns
    -------
    dict
        The spec, to pass to :func:`build_network` / :func:`simulate_network` (it is not
        validated here; those do).

    Raises
    ------
    NetworkSpecError
        Unreadable file, invalid YAML, or no mapping under ``network``.
    """
    from .patch import PatchError, read_network_section

    try:
        return read_network_section(path)
    except PatchError as e:
        raise NetworkSpecError(f"{path}: {e.key}" if e.key else str(path), e.message) from None


# --------------------------------------------------------------------------------------------
# Simulation


@dataclass(frozen=True)
class NetworkResult:
    """Outcome of :func:`simulate_network`.

    Attributes
    ----------
    dt : float
        Step, ms.
    names : list of str
        Neuron names, index order.
    spike_times : list of ndarray
        Per neuron, spike times in ms (module docstring convention).
    spike_steps : list of ndarray
        Per neuron, the step index of each spike.
    traces : dict of str to ndarray
        ``"v"`` (n_steps, n_neurons), ``"g"`` and ``"w"`` (n_steps, n_synapses) for the
        recorded ones: the values at the end of each step.
    weights : ndarray, shape (n_synapses,)
        Final weights.
    network : Network
        The built network, in its final state.
    """

    dt: float
    names: list[str]
    spike_times: list[np.ndarray]
    spike_steps: list[np.ndarray]
    traces: dict[str, np.ndarray]
    weights: np.ndarray
    network: Network = field(repr=False)
    n_steps: int = 0

    @property
    def t(self) -> np.ndarray:
        """End time of each step, ``(k + 1) dt``, shape (n_steps,), ms."""
        return (np.arange(self.n_steps) + 1.0) * self.dt

    def raster(self) -> tuple[np.ndarray, np.ndarray]:
        """All spikes as ``(times, neuron ids)``, sorted by time then id, shapes (n_spikes,)."""
        if not self.spike_times:
            return np.empty(0), np.empty(0, dtype=np.int64)
        times = np.concatenate(self.spike_times)
        ids = np.concatenate(
            [np.full(len(t), j, dtype=np.int64) for j, t in enumerate(self.spike_times)]
        )
        order = np.lexsort((ids, times))
        return times[order], ids[order]


def _as_drive(current, n_neurons: int) -> np.ndarray:
    arr = np.asarray(current, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.broadcast_to(np.ascontiguousarray(arr)[:, None], (arr.shape[0], n_neurons))
    elif arr.ndim != 2 or arr.shape[1] != n_neurons:
        raise ValueError(
            f"current must have shape (n_steps,) or (n_steps, {n_neurons}), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("current must be finite")
    return arr


def simulate_network(
    spec,
    current,
    dt: float,
    *,
    lr: float | None = None,
    record: tuple[str, ...] = ("v", "g", "w"),
) -> NetworkResult:
    """Build a network from ``spec`` and drive it through the synth's network kernel.

    Thread: main (allocates the result).

    Parameters
    ----------
    spec : dict or Network
        A network spec (module docstring) or an already built :class:`Network` (which is
        run on from its current state, with its own ``dt``; ``dt`` must match).
    current : array_like, shape (n_steps,) or (n_steps, n_neurons)
        External drive per step (the same for every neuron, or one column per neuron);
        each neuron receives ``gain * drive + bias``.
    dt : float
        Step, ms.
    lr : float, optional
        Global STDP learning rate, >= 0; default the spec's ``stdp.lr``.
    record : tuple of {"v", "g", "w"}
        Which traces to keep (``v`` costs n_steps x n_neurons doubles).

    Returns
    -------
    NetworkResult
    """
    if isinstance(spec, Network):
        network = spec
        if not math.isclose(network.dt, float(dt), rel_tol=1e-12):
            raise ValueError(f"dt {dt} differs from the built network's dt {network.dt}")
    else:
        network = build_network(spec, dt)
    bad = set(record) - {"v", "g", "w"}
    if bad:
        raise ValueError(f"record: unknown trace(s) {sorted(bad)}; choose from v, g, w")
    lr = network.lr if lr is None else float(lr)
    if not (lr >= 0.0 and math.isfinite(lr)):
        raise ValueError(f"lr must be >= 0 and finite, got {lr!r}")
    n, m = network.n_neurons, network.n_synapses
    drive = _as_drive(current, n)
    n_steps = drive.shape[0]
    v_out = np.empty((n_steps if "v" in record else 0, n))
    g_out = np.empty((n_steps if "g" in record else 0, m))
    w_out = np.empty((n_steps if "w" in record else 0, m))
    cap = max(1024, n * 16)
    ev_step = np.empty(cap, dtype=np.int64)
    ev_neuron = np.empty(cap, dtype=np.int64)
    ev_offset = np.empty(cap)
    k, n_events = 0, 0
    while True:
        k, n_events = net.network_run(drive, k, lr, network.topology, network.state, v_out,
                                      g_out, w_out, ev_step, ev_neuron, ev_offset, n_events)
        if k >= n_steps:
            break
        cap *= 2
        ev_step = np.concatenate([ev_step, np.empty_like(ev_step)])
        ev_neuron = np.concatenate([ev_neuron, np.empty_like(ev_neuron)])
        ev_offset = np.concatenate([ev_offset, np.empty_like(ev_offset)])
    steps = ev_step[:n_events]
    ids = ev_neuron[:n_events]
    times = steps * network.dt + ev_offset[:n_events]
    spike_steps = [steps[ids == j].copy() for j in range(n)]
    spike_times = [times[ids == j].copy() for j in range(n)]
    traces = {}
    if "v" in record:
        traces["v"] = v_out
    if "g" in record:
        traces["g"] = g_out
    if "w" in record:
        traces["w"] = w_out
    return NetworkResult(
        network.dt, list(network.names), spike_times, spike_steps, traces,
        network.state.syn_state[:, net.SS_W].copy(), network, n_steps,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Voice pools


def network_arrays(patch, n_slots: int):
    """The :class:`~spikesynth.dsp.network_voice.NetworkArrays` of a patch (prepare time).

    Thread: main (allocates, after checking the memory budget for ``n_slots`` voices).

    Parameters
    ----------
    patch : spikesynth.patch.Patch
        Any patch: its ``network`` spec (``None`` unless the model is ``network``) and its
        ``network.step_ms``. Patches that are not networks get a one-neuron placeholder of the
        same array types, so every kernel compiles once.
    n_slots : int
        Voice slots, each with its own network state.

    Raises
    ------
    NetworkSpecError
        An invalid spec (the patch layer has normally checked it already).
    """
    from .dsp import model_voice as mv
    from .dsp import network_voice as nv

    if patch.network is None:
        n, slots, lr, step = 1, 1, 0.0, 1.0
        topology = net.build_topology(
            np.zeros(n, dtype=np.int64), np.zeros((n, net.N_COEFF_WIDTH)),
            np.zeros((n, net.IN_N)), np.zeros((0, net.SI_N), dtype=np.int64),
            np.zeros((0, net.SP_N)))  # fmt: skip
        state0 = net.allocate_state(topology, 1)
        out_l = np.zeros(n)
        out_r = np.zeros(n)
    else:
        step = float(patch["network.step_ms"])
        slots = int(n_slots)
        built = build_network(patch.network, step, n_networks=slots)
        topology, state0 = built.topology, built.state
        n = built.n_neurons
        out_l = np.zeros(n)
        out_r = np.zeros(n)
        for j, neuron in enumerate(built.neurons):
            if neuron["model"] == "lif":
                scale = 1.0 / (neuron["v_th"] - neuron["v_reset"])
            else:
                scale = mv.IZH_AUDIO_SCALE
            angle = (neuron["pan"] + 1.0) * 0.25 * math.pi
            out_l[j] = neuron["out"] * scale * math.cos(angle) * math.sqrt(2.0)
            out_r[j] = neuron["out"] * scale * math.sin(angle) * math.sqrt(2.0)
        lr = built.lr

    def per_slot(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[None], slots, axis=0)

    return nv.NetworkArrays(
        topology=topology,
        nstate=per_slot(state0.nstate),
        syn_state=per_slot(state0.syn_state),
        rec_g=per_slot(state0.rec_g),
        trace_state=per_slot(state0.trace_state),
        hist=per_slot(state0.hist),
        clock=per_slot(state0.clock),
        spiked=state0.spiked.copy(),
        arrived=state0.arrived.copy(),
        recent=per_slot(state0.recent),
        ext=np.zeros(n),
        out_l=out_l,
        out_r=out_r,
        mean_v=np.zeros(n),
        nstate0=state0.nstate.copy(),
        syn_state0=state0.syn_state.copy(),
        w_learned=state0.syn_state[:, net.SS_W].copy(),
        meta=np.array([lr, step, 0.0, 0.0]),
        heard=np.zeros(nv.REFERENCE_STEPS if patch.network is not None else 1),
        knots=np.zeros((slots, 2, 2 * nv.KNOT_RING)),
        pool_knots=np.zeros((2, nv.POOL_LENGTH)),
    )
