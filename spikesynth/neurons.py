"""The neuron lab: run the synth's neuron kernels on a current trace, and the published protocols.

Thread: main (everything here allocates; it is a study/offline API, not for the audio thread).

:func:`simulate` drives one neuron with one input value per step, through the same ``@njit``
step kernels the voices use (:mod:`spikesynth.dsp.lif`, :mod:`spikesynth.dsp.izhikevich`).
:data:`BEHAVIOURS` holds the input protocols of the 20 panels of Izhikevich (2004), Fig. 1
(current waveform, step, duration, initial state, as in the paper's script ``figure1.m``),
and :func:`run_behaviour` runs one of them.

Time conventions
----------------
Step ``k`` covers ``[k dt, (k + 1) dt)`` with input ``current[k]`` held over it (the published
script evaluates the protocol at the start of the step, ``t = k dt``). ``traces[...][k]`` is
the state at the end of step ``k``, time ``(k + 1) dt`` (:attr:`SimulationResult.t`).
A spike in step ``k`` is reported at ``(k + 1) dt`` for the Euler schemes (Izhikevich, LIF
``"euler"``) and at the exact threshold-crossing time inside the step for LIF ``"exact"``.
(``figure1.m`` draws sample ``k`` at ``t = k dt``, one step earlier than here.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .dsp import izhikevich as izh
from .dsp import lif

MODELS = ("leaky_integrator", "lif", "izhikevich")

_LIF_KEYS = frozenset(lif.LIFParameters._fields) | {"v0"}
_LEAKY_KEYS = frozenset({"tau", "method", "v0"})
_IZH_KEYS = frozenset(izh.IzhikevichParameters._fields) | {"v0", "u0", "preset"}


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of :func:`simulate` / :func:`run_behaviour`.

    Attributes
    ----------
    model : str
        ``"leaky_integrator"``, ``"lif"`` or ``"izhikevich"``.
    dt : float
        Step length (the time unit of everything below).
    spike_times : ndarray, shape (n_spikes,), float64
        Spike times, unit of ``dt`` (see the module docstring for the convention).
    spike_steps : ndarray, shape (n_spikes,), int64
        Index of the step in which each spike happened.
    traces : dict of str to ndarray, each shape (n_steps,)
        ``"v"`` (end-of-step potential; Izhikevich spike steps show ``v_peak``), ``"u"``
        (Izhikevich), ``"i"`` (the input).
    params : dict
        The resolved parameters (preset expanded, defaults filled in).
    """

    model: str
    dt: float
    spike_times: np.ndarray
    spike_steps: np.ndarray
    traces: dict[str, np.ndarray]
    params: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.traces["v"].shape[0])

    @property
    def t(self) -> np.ndarray:
        """End time of each step, ``(k + 1) dt``, shape (n_steps,)."""
        return (np.arange(self.n_steps) + 1.0) * self.dt

    @property
    def isi(self) -> np.ndarray:
        """Inter-spike intervals, shape (max(n_spikes - 1, 0),), unit of ``dt``."""
        return np.diff(self.spike_times)


def _as_current(current) -> np.ndarray:
    arr = np.ascontiguousarray(current, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"current must be one-dimensional (one value per step), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("current must be finite")
    return arr


def _check_keys(model: str, params: Mapping, allowed: frozenset) -> None:
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(unknown)} for model {model!r}; "
            f"allowed: {sorted(allowed)}"
        )


def izhikevich_parameters(
    params: Mapping | None = None,
) -> tuple[izh.IzhikevichParameters, float, float]:
    """Resolve a study-API parameter dict into ``(IzhikevichParameters, v0, u0)``.

    Thread: main.

    ``preset="name"`` (a key of :data:`spikesynth.dsp.izhikevich.PRESETS`) starts from that
    preset and from the initial state of its published protocol; any other key overrides.
    Without a preset the defaults are those of :class:`IzhikevichParameters`, ``v0 = -65`` mV
    and ``u0 = b * v0``.
    """
    params = dict(params or {})
    _check_keys("izhikevich", params, _IZH_KEYS)
    preset = params.pop("preset", None)
    v0 = params.pop("v0", None)
    u0 = params.pop("u0", None)
    published = preset in izh.PRESETS  # a behaviour with a published protocol
    if preset is None:
        base = izh.IzhikevichParameters()
    elif published:
        base = izh.PRESETS[preset]
    elif preset in izh.CELL_CLASSES:  # RS, FS, CH, ... (Izhikevich 2003): start at rest
        base = izh.CELL_CLASSES[preset]
    else:
        choices = sorted(izh.PRESETS) + sorted(izh.CELL_CLASSES)
        raise ValueError(f"unknown preset {preset!r}; choose from {choices}")
    p = base._replace(**{k: float(v) for k, v in params.items()})
    if u0 is None and published and v0 is None and "b" not in params:
        # The preset's published initial state (u0 = -16 for accommodation, else b * v0).
        v0, u0 = BEHAVIOURS[preset].v0, BEHAVIOURS[preset].u0
    if v0 is None:
        v0 = BEHAVIOURS[preset].v0 if published else -65.0
    if u0 is None:
        u0 = p.b * float(v0)
    return p, float(v0), float(u0)


def simulate(model: str, params: Mapping | None, current, dt: float) -> SimulationResult:
    """Drive one neuron with a current trace through the synth's step kernels.

    Thread: main (allocates the result).

    Parameters
    ----------
    model : {"leaky_integrator", "lif", "izhikevich"}
    params : dict or None
        ``"lif"``: ``tau``, ``v_th``, ``v_reset``, ``t_ref``, ``method`` (``"euler"`` or
        ``"exact"``), ``v0`` (initial potential, default 0).
        ``"leaky_integrator"``: ``tau``, ``method``, ``v0``.
        ``"izhikevich"`` (mV, ms): ``a``, ``b``, ``c``, ``d``, the equation variants ``e``,
        ``f``, ``g``, ``u_vref``, ``u_leak``, ``v_peak``, initial state ``v0``, ``u0``, or
        ``preset="tonic_spiking"`` (any of the 20 behaviours) with optional overrides.
        Missing keys take the defaults of the parameter records.
    current : array_like, shape (n_steps,)
        Input per step, same unit as ``v`` (mV/ms for Izhikevich).
    dt : float
        Step length, > 0, in the time unit of ``tau`` / ms for Izhikevich.

    Returns
    -------
    SimulationResult
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    current = _as_current(current)
    n = current.shape[0]
    params = dict(params or {})
    v_out = np.empty(n, dtype=np.float64)
    steps = np.empty(n, dtype=np.int64)
    traces = {"v": v_out, "i": current.copy()}

    if model == "izhikevich":
        p, v0, u0 = izhikevich_parameters(params)
        coeffs = izh.prepare_izhikevich(p, dt)
        state = izh.izhikevich_state(v0, u0)
        u_out = np.empty(n, dtype=np.float64)
        n_spikes = izh.izhikevich_run(state, current, coeffs, v_out, u_out, steps)
        traces["u"] = u_out
        steps = steps[:n_spikes].copy()
        times = (steps + 1.0) * float(dt)
        resolved = {**p._asdict(), "v0": v0, "u0": u0}
        return SimulationResult(model, float(dt), times, steps, traces, resolved)

    _check_keys(model, params, _LEAKY_KEYS if model == "leaky_integrator" else _LIF_KEYS)
    v0 = float(params.pop("v0", 0.0))
    p = lif.LIFParameters()._replace(**params)
    coeffs = lif.prepare_lif(p, dt)
    state = lif.lif_state(v0)
    resolved = {**p._asdict(), "v0": v0}
    if model == "leaky_integrator":
        lif.leaky_integrator_run(state, current, coeffs, v_out)
        empty = np.empty(0, dtype=np.float64)
        return SimulationResult(model, float(dt), empty, empty.astype(np.int64), traces, resolved)
    times = np.empty(n, dtype=np.float64)
    n_spikes = lif.lif_run(state, current, coeffs, v_out, times, steps)
    return SimulationResult(
        model, float(dt), times[:n_spikes].copy(), steps[:n_spikes].copy(), traces, resolved
    )


# --------------------------------------------------------------------------------------------
# Published protocols of Izhikevich (2004), Fig. 1 (script figure1.m, izhikevich.org).


def _pulse(t: np.ndarray, start: float, stop: float) -> np.ndarray:
    """True on the open interval ``start < t < stop`` (the script's strict comparisons)."""
    return (t > start) & (t < stop)


class Behaviour(NamedTuple):
    """Input protocol of one panel of Izhikevich (2004), Fig. 1.

    Attributes
    ----------
    name : str
        Key in :data:`BEHAVIOURS` and :data:`spikesynth.dsp.izhikevich.PRESETS`.
    panel : str
        Panel letter A-T.
    title : str
        Panel title in the paper.
    dt : float
        Step used by the script, ms.
    duration : float
        Protocol length ``T``, ms; the script steps ``t = 0, dt, ..., T`` (endpoint included).
    v0 : float
        Initial ``v``, mV.
    u0 : float
        Initial ``u`` (``b * v0`` except accommodation: -16).
    current : callable
        ``current(t) -> I`` for an array of step-start times ``t`` (ms), mV/ms.
    """

    name: str
    panel: str
    title: str
    dt: float
    duration: float
    v0: float
    u0: float
    current: Callable[[np.ndarray], np.ndarray]

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt)) + 1

    def times(self) -> np.ndarray:
        """Step-start times ``k dt``, shape (n_steps,), ms."""
        return np.arange(self.n_steps) * self.dt

    def current_trace(self) -> np.ndarray:
        """Input per step, shape (n_steps,), mV/ms."""
        t = self.times()
        return np.broadcast_to(np.asarray(self.current(t), dtype=np.float64), t.shape).copy()


def _class_1_ramp(t):
    return np.where(t > 30.0, 0.075 * (t - 30.0), 0.0)


def _class_2_ramp(t):
    return np.where(t > 30.0, -0.5 + 0.015 * (t - 30.0), -0.5)


def _resonator(t):
    # Pulse pairs 20 ms apart (T1 = T/10 = 40) and 40 ms apart (T3 = 0.7 T = 280).
    on = _pulse(t, 40, 44) | _pulse(t, 60, 64) | _pulse(t, 280, 284) | _pulse(t, 320, 324)
    return np.where(on, 0.65, 0.0)


def _integrator(t):
    # Pulse pairs 5 ms apart (T1 = T/11) and 10 ms apart (T3 = 0.7 T = 70).
    t1 = 100.0 / 11.0
    on = _pulse(t, t1, t1 + 2) | _pulse(t, t1 + 5, t1 + 7) | _pulse(t, 70, 72) | _pulse(t, 80, 82)
    return np.where(on, 9.0, 0.0)


def _threshold_variability(t):
    exc = _pulse(t, 10, 15) | _pulse(t, 80, 85)
    return np.where(exc, 1.0, np.where(_pulse(t, 70, 75), -6.0, 0.0))


def _bistability(t):
    return np.where(_pulse(t, 37.5, 42.5) | _pulse(t, 216, 221), 1.24, 0.24)


def _accommodation(t):
    # Slow ramp to 8 over 200 ms, rest, then a fast ramp to 4 over 12.5 ms.
    return np.select(
        [t < 200, t < 300, t < 312.5], [t / 25, np.zeros_like(t), (t - 300) / 12.5 * 4], 0.0
    )


def _inhibition_step(t):
    # 80 outside [50, 250] ms, 75 inside (closed interval, as in the script).
    return np.where((t < 50) | (t > 250), 80.0, 75.0)


def _b(name):
    return izh.PRESETS[name].b


_TABLE = [
    # name, panel, title, dt, T, v0, current(t)
    ("tonic_spiking", "A", "tonic spiking", 0.25, 100, -70, lambda t: np.where(t > 10, 14.0, 0)),
    ("phasic_spiking", "B", "phasic spiking", 0.25, 200, -64, lambda t: np.where(t > 20, 0.5, 0)),
    ("tonic_bursting", "C", "tonic bursting", 0.25, 220, -70, lambda t: np.where(t > 22, 15.0, 0)),
    ("phasic_bursting", "D", "phasic bursting", 0.2, 200, -64, lambda t: np.where(t > 20, 0.6, 0)),
    ("mixed_mode", "E", "mixed mode", 0.25, 160, -70, lambda t: np.where(t > 16, 10.0, 0)),
    (
        "spike_frequency_adaptation", "F", "spike frequency adaptation", 0.25, 85, -70,
        lambda t: np.where(t > 8.5, 30.0, 0),
    ),
    ("class_1_excitability", "G", "class 1 excitable", 0.25, 300, -60, _class_1_ramp),
    ("class_2_excitability", "H", "class 2 excitable", 0.25, 300, -64, _class_2_ramp),
    (
        "spike_latency", "I", "spike latency", 0.2, 100, -70,
        lambda t: np.where(_pulse(t, 10, 13), 7.04, 0),
    ),
    (
        "subthreshold_oscillations", "J", "subthreshold oscillations", 0.25, 200, -62,
        lambda t: np.where(_pulse(t, 20, 25), 2.0, 0),
    ),
    ("resonator", "K", "resonator", 0.25, 400, -62, _resonator),
    ("integrator", "L", "integrator", 0.25, 100, -60, _integrator),
    (
        "rebound_spike", "M", "rebound spike", 0.2, 200, -64,
        lambda t: np.where(_pulse(t, 20, 25), -15.0, 0),
    ),
    (
        "rebound_burst", "N", "rebound burst", 0.2, 200, -64,
        lambda t: np.where(_pulse(t, 20, 25), -15.0, 0),
    ),
    ("threshold_variability", "O", "threshold variability", 0.25, 100, -64, _threshold_variability),
    ("bistability", "P", "bistability", 0.25, 300, -61, _bistability),
    (
        "dap", "Q", "depolarizing after-potential (DAP)", 0.1, 50, -70,
        lambda t: np.where(np.abs(t - 10) < 1, 20.0, 0),
    ),
    ("accommodation", "R", "accommodation", 0.5, 400, -65, _accommodation),
    (
        "inhibition_induced_spiking", "S", "inhibition-induced spiking", 0.5, 350, -63.8,
        _inhibition_step,
    ),
    (
        "inhibition_induced_bursting", "T", "inhibition-induced bursting", 0.5, 350, -63.8,
        _inhibition_step,
    ),
]  # fmt: skip

#: Name -> published protocol, panels A-T of Izhikevich (2004), Fig. 1.
BEHAVIOURS: dict[str, Behaviour] = {
    name: Behaviour(
        name,
        panel,
        title,
        float(dt),
        float(T),
        float(v0),
        # Accommodation starts from u = -16 in the script; all others from u = b * v0.
        -16.0 if name == "accommodation" else _b(name) * float(v0),
        fn,
    )
    for name, panel, title, dt, T, v0, fn in _TABLE
}


def run_behaviour(name: str) -> SimulationResult:
    """Run one of the 20 behaviours with its preset and its published protocol.

    Thread: main.

    Parameters
    ----------
    name : str
        A key of :data:`BEHAVIOURS` (e.g. ``"tonic_bursting"``), or the panel letter ``"A"``
        to ``"T"``.

    Returns
    -------
    SimulationResult
        With ``traces["i"]`` the protocol's current; ``dt`` is the script's step.
    """
    if len(name) == 1 and name.upper() in "ABCDEFGHIJKLMNOPQRST":
        name = next(b.name for b in BEHAVIOURS.values() if b.panel == name.upper())
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {name!r}; choose from {sorted(BEHAVIOURS)}")
    protocol = BEHAVIOURS[name]
    return simulate(
        "izhikevich",
        {"preset": name, "v0": protocol.v0, "u0": protocol.u0},
        protocol.current_trace(),
        protocol.dt,
    )


# --------------------------------------------------------------------------------------------
# The neuron as a filter (tutorial tasks 3-3.2): firing rate against input frequency.


class RateResponse(NamedTuple):
    """Outcome of :func:`rate_response`.

    Attributes
    ----------
    frequency_hz : ndarray, shape (n,)
        Input frequencies, Hz.
    rate_hz : ndarray, shape (n,)
        Measured firing rate (spikes/s) over the window after ``settle_s``.
    spikes_per_cycle : ndarray, shape (n,)
        ``rate_hz / frequency_hz``.
    gain : float
        Input peak: the current is ``gain (cos(2π f t) + 1) / 2``.
    cutoff_hz : float
        LIF only: the closed-form frequency above which the neuron cannot fire (``nan`` when
        it fires at every frequency or at none), see :func:`lif_cutoff_hz`.
    model : str
    params : dict
        The resolved neuron parameters (times in seconds).
    """

    frequency_hz: np.ndarray
    rate_hz: np.ndarray
    spikes_per_cycle: np.ndarray
    gain: float
    cutoff_hz: float
    model: str
    params: dict


def lif_cutoff_hz(gain: float, tau: float, v_th: float = 1.0) -> float:
    """Highest frequency at which a LIF fires for input ``gain (cos(2π f t) + 1)/2``.

    Thread: any (pure). The membrane is an RC low-pass ``|H(f)| = 1/sqrt(1 + (2π f τ)²)``:
    without threshold, ``v`` oscillates around the mean ``gain/2`` with amplitude
    ``gain/2 |H|``, and starting from rest (reset 0) it stays below that orbit. So it
    fires iff the orbit's peak reaches threshold, ``gain/2 (1 + |H|) > v_th``:
    ``f_c = sqrt(1/h² - 1) / (2π τ)`` with ``h = 2 v_th/gain - 1``. ``inf`` when the mean
    alone is above threshold (``gain > 2 v_th``: fires at every frequency), ``0`` when even
    a constant peak does not reach it (``gain <= v_th``). Reset must be 0 (or below the
    orbit's minimum) for the bound to be exact.
    """
    if gain > 2.0 * v_th:
        return float("inf")
    if gain <= v_th:
        return 0.0
    h = 2.0 * v_th / gain - 1.0
    return float(np.sqrt(1.0 / (h * h) - 1.0) / (2.0 * np.pi * tau))


def rate_response(model: str = "lif", params: Mapping | None = None, frequencies=None,
                  gain: float = 1.5, seconds: float = 1.0, settle_s: float = 0.2,
                  samplerate: float = 48000.0) -> RateResponse:
    """Measure a neuron's firing rate for a ``gain (cos + 1)/2`` input across frequencies.

    Thread: main. The tutorial's task 3: is the LIF a high-pass, a band-pass, a low-pass?
    The input is sampled at ``samplerate``; times are in seconds (``tau`` etc. of the LIF
    in seconds: the default here is ``tau = 2 ms``, ``v_th = 1``, ``v_reset = 0``,
    ``t_ref = 0``). Izhikevich (ms, mV) works too, with ``gain`` in its current unit.

    Parameters
    ----------
    model : {"lif", "izhikevich"}
    params : dict, optional
        As :func:`simulate` (LIF times in seconds).
    frequencies : array_like, optional
        Hz; default 40 log-spaced values from 1 Hz to 5 kHz.
    gain : float
        Peak of the input current.
    seconds, settle_s : float
        Simulated length and the start-up time left out of the count.
    samplerate : float
        Steps per second.

    Returns
    -------
    RateResponse
    """
    if model not in ("lif", "izhikevich"):
        raise ValueError(f"model must be 'lif' or 'izhikevich', got {model!r}")
    if not 0 <= settle_s < seconds:
        raise ValueError("settle_s must be in [0, seconds)")
    f = np.geomspace(1.0, 5000.0, 40) if frequencies is None else np.asarray(
        frequencies, dtype=np.float64)
    if f.ndim != 1 or not np.all((f > 0) & (f < samplerate / 2)):
        raise ValueError("frequencies must be positive and below samplerate / 2")
    p = dict(params or {})
    if model == "lif":
        p = {"tau": 0.002, "v_th": 1.0, "v_reset": 0.0, "t_ref": 0.0, **p}
        dt = 1.0 / samplerate
        time_scale = 1.0  # seconds
    else:
        dt = 1000.0 / samplerate  # Izhikevich works in ms
        time_scale = 1000.0
    n = int(round(seconds * samplerate))
    t = np.arange(n) / samplerate
    rates = np.empty(f.size)
    resolved = {}
    for k, fk in enumerate(f):
        current = gain * (np.cos(2 * np.pi * fk * t) + 1.0) / 2.0
        res = simulate(model, p, current, dt)
        resolved = res.params
        times_s = res.spike_times / time_scale
        rates[k] = np.count_nonzero(times_s >= settle_s) / (seconds - settle_s)
    cutoff = float("nan")
    if model == "lif" and resolved.get("v_reset", 0.0) == 0.0:
        c = lif_cutoff_hz(gain, resolved["tau"], resolved["v_th"])
        cutoff = c if 0.0 < c < float("inf") else float("nan")
    return RateResponse(f, rates, rates / f, float(gain), cutoff, model, resolved)


def draw_rate_response(responses, title: str | None = None):
    """Draw firing rate against input frequency for one or more :class:`RateResponse`.

    Thread: main. Returns a matplotlib ``Figure`` (through :mod:`spikesynth.plot`, Agg).
    Dotted: one spike per cycle (``rate = f``); dashed: each LIF's closed-form cutoff.
    """
    from .plot import require_matplotlib

    Figure = require_matplotlib()
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    f_all = np.concatenate([r.frequency_hz for r in responses])
    ax.plot(f_all[np.argsort(f_all)], np.sort(f_all), ":", color="0.5", lw=1,
            label="one spike per cycle (rate = f)")
    for r in responses:
        (line,) = ax.plot(r.frequency_hz, r.rate_hz, "o-", ms=3,
                          label=f"input peak {r.gain:g} x threshold")
        if np.isfinite(r.cutoff_hz):
            ax.axvline(r.cutoff_hz, ls="--", color=line.get_color(), lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("input frequency (Hz)")
    ax.set_ylabel("firing rate (spikes/s)")
    top = max(float(np.max(r.rate_hz)) for r in responses)
    ax.set_ylim(0, top * 1.15 + 1)
    ax.set_xlim(f_all.min(), f_all.max())
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "LIF firing rate for a (cos + 1)/2 input (dashed: predicted cutoff)")
    return fig
