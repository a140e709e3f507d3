"""The spiking ear: sound in, spikes and time surfaces out (the wrapper of :mod:`.dsp.cochlea`).

A gammatone filterbank on the ERB-rate scale (coefficients from ``scipy.signal.gammatone``),
an inner-hair-cell stage and one LIF neuron per channel, as in the tutorial's picture of the
inner ear: "when sound hits your inner ear, it is decomposed and converted into spikes,
roughly representing a discrete spectrogram". The *time surfaces* of the tutorial (tasks 4.1
and 4.2) come with it: the leaky integrator of each channel's drive (continuous) and of its
spikes (discrete), for one or several time constants ``tau``.

* :func:`listen` — a whole signal at once (the neuron lab, ``spikesynth listen``).
* :class:`Ear` — the streaming form: :meth:`Ear.process` takes blocks of any size (the same
  output whatever the block size) and allocates nothing, so it can run live.
* :func:`erb_hz`, :func:`erb_rate`, :func:`centre_frequencies` — the Glasberg & Moore scale.
* :func:`draw_listen` / :func:`write_listen_figure` — the raster and surfaces picture.

Thread: main for everything here, except :meth:`Ear.process` / :meth:`Ear.reset` (audio).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .dsp import cochlea as K
from .dsp import lif

SAMPLE_FRAMES_PER_CHUNK = 8192  # :func:`listen` runs the streaming ear in chunks of this size


# --------------------------------------------------------------------------------------------
# The ERB-rate scale (Glasberg & Moore 1990).


def erb_hz(f):
    """Equivalent rectangular bandwidth of the auditory filter at ``f`` Hz.

    ``ERB(f) = 24.7 (4.37 f / 1000 + 1)`` Hz. Thread: any (pure).
    """
    return 24.7 * (4.37 * np.asarray(f, dtype=np.float64) / 1000.0 + 1.0)


def erb_rate(f):
    """ERB-rate (number of ERBs below ``f``): ``21.4 log10(4.37 f / 1000 + 1)``."""
    return 21.4 * np.log10(4.37 * np.asarray(f, dtype=np.float64) / 1000.0 + 1.0)


def erb_rate_to_hz(e):
    """Inverse of :func:`erb_rate`."""
    return (10.0 ** (np.asarray(e, dtype=np.float64) / 21.4) - 1.0) * 1000.0 / 4.37


def centre_frequencies(channels: int, fmin: float, fmax: float) -> np.ndarray:
    """``channels`` centre frequencies from ``fmin`` to ``fmax`` Hz, evenly spaced in ERB-rate.

    Returns
    -------
    ndarray, shape (channels,), float64, ascending.
    """
    if channels == 1:
        return np.array([float(fmin)])
    return erb_rate_to_hz(np.linspace(erb_rate(fmin), erb_rate(fmax), int(channels)))


# --------------------------------------------------------------------------------------------
# Parameters and the streaming ear.


class EarParameters(NamedTuple):
    """Parameters of the ear.

    Parameters
    ----------
    channels : int
        Number of gammatone channels (and neurons), 1..512. Default 64.
    fmin_hz, fmax_hz : float
        Lowest and highest centre frequency, Hz; ``fmax_hz`` below ``0.45 samplerate``.
        ``fmax_hz=None`` means ``min(8000, 0.4 samplerate)``.
    compression : float
        Hair-cell power-law exponent in (0, 1] (1 = linear; 0.3 is roughly the cochlea's
        compression of level).
    ihc_cutoff_hz : float
        Hair-cell low-pass corner (two one-pole stages), Hz: phase locking fades above it.
    threshold_dbfs : float
        Level (dB re full scale, sine amplitude) of a tone at a channel's centre frequency
        whose mean drive equals the neuron's threshold (the rheobase). Channels below about
        1 kHz, whose drive follows the waveform, fire from a few dB lower.
    tau_ms : float
        Neuron membrane time constant, ms.
    threshold : float
        Neuron threshold (the drive's unit: 1 = the rheobase drive of ``threshold_dbfs``).
    reset : float
        Potential after a spike, below ``threshold``.
    refractory_ms : float
        Absolute refractory time, ms (caps the rate at ``1000 / refractory_ms`` spikes/s).
    frame_rate_hz : float
        Time-surface frame rate, Hz; one frame every ``round(samplerate / frame_rate_hz)``
        samples (the exact rate is reported in the result).
    """

    channels: int = 64
    fmin_hz: float = 50.0
    fmax_hz: float | None = None
    compression: float = 0.3
    ihc_cutoff_hz: float = 1000.0
    threshold_dbfs: float = -50.0
    tau_ms: float = 1.0
    threshold: float = 1.0
    reset: float = 0.0
    refractory_ms: float = 1.0
    frame_rate_hz: float = 1000.0


def resolve_parameters(params: EarParameters | None, samplerate: float, **overrides):
    """Fill defaults, apply ``overrides`` and check every value; return :class:`EarParameters`.

    Raises ``ValueError`` with a one-line message naming the parameter.
    """
    p = params or EarParameters()
    unknown = set(overrides) - set(EarParameters._fields)
    if unknown:
        raise ValueError(f"unknown ear parameter(s) {sorted(unknown)}; "
                         f"known: {', '.join(EarParameters._fields)}")
    p = p._replace(**overrides)
    sr = float(samplerate)
    if not (sr >= 1000.0 and math.isfinite(sr)):
        raise ValueError(f"samplerate must be at least 1000 Hz, got {samplerate!r}")
    if p.fmax_hz is None:
        p = p._replace(fmax_hz=min(8000.0, 0.4 * sr))
    checks = [
        ("channels", isinstance(p.channels, (int, np.integer)) and 1 <= p.channels <= 512,
         "an integer 1..512"),
        ("fmin_hz", 10.0 <= p.fmin_hz < p.fmax_hz, f"10 Hz up to fmax_hz ({p.fmax_hz:g})"),
        ("fmax_hz", p.fmax_hz <= 0.45 * sr, f"at most 0.45 * samplerate = {0.45 * sr:g} Hz"),
        ("compression", 0.0 < p.compression <= 1.0, "in (0, 1]"),
        ("ihc_cutoff_hz", 10.0 <= p.ihc_cutoff_hz <= 0.45 * sr, "10 Hz .. 0.45 samplerate"),
        ("threshold_dbfs", -150.0 <= p.threshold_dbfs <= 20.0, "-150 .. 20 dB"),
        ("tau_ms", 0.01 <= p.tau_ms <= 1000.0, "0.01 .. 1000 ms"),
        ("threshold", 0.0 < p.threshold < 1e6, "positive"),
        ("reset", p.reset < p.threshold, "below threshold"),
        ("refractory_ms", 0.0 <= p.refractory_ms <= 1000.0, "0 .. 1000 ms"),
        ("frame_rate_hz", 1.0 <= p.frame_rate_hz <= sr, "1 Hz .. the samplerate"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ValueError(f"ear parameter {name}: expected {expected}, got "
                             f"{getattr(p, name)!r}")
    return p


def _as_taus(tau_ms) -> np.ndarray:
    taus = np.atleast_1d(np.asarray(tau_ms, dtype=np.float64))
    if taus.ndim != 1 or taus.size == 0 or taus.size > 16:
        raise ValueError("tau_ms must be one number or a list of 1..16 numbers")
    if not np.all((taus >= 0.01) & (taus <= 100000.0)):
        raise ValueError(f"each surface tau_ms must be 0.01 .. 100000 ms, got {list(taus)}")
    return taus / 1000.0


def design_filterbank(cf_hz: np.ndarray, samplerate: float) -> np.ndarray:
    """Gammatone sections per channel, from ``scipy.signal.gammatone(cf, 'iir', fs=...)``.

    Returns
    -------
    ndarray, shape (channels, SECTIONS, SECTION_COEFFS), float64
    """
    from scipy.signal import gammatone

    out = np.empty((len(cf_hz), K.SECTIONS, K.SECTION_COEFFS))
    for ch, cf in enumerate(cf_hz):
        b, a = gammatone(float(cf), "iir", fs=float(samplerate))
        out[ch] = K.sections_from_ba(b, a)
    return out


class EarBlock(NamedTuple):
    """What :meth:`Ear.process` produced for one block (views into the ear's buffers).

    Attributes
    ----------
    raster : ndarray, shape (channels, frames_in_block), float64
        0, or the spike's position inside the sample as a fraction in (0, 1].
    n_frames : int
        Surface frames that ended in this block.
    surface_continuous, surface_spikes : ndarray, shape (n_tau, channels, n_frames)
        Those frames (drive units; spikes/s).
    """

    raster: np.ndarray
    n_frames: int
    surface_continuous: np.ndarray
    surface_spikes: np.ndarray


class Ear:
    """The streaming ear: allocate once, then :meth:`process` blocks of any size.

    Thread: construct on main (allocates); :meth:`process` and :meth:`reset` on the audio
    thread (or any single thread): they allocate nothing.

    Parameters
    ----------
    samplerate : float
        Hz.
    max_block : int
        Largest block :meth:`process` accepts.
    tau_ms : float or sequence of float
        Surface time constant(s), ms.
    params : EarParameters, optional
    **overrides
        Any :class:`EarParameters` field.
    """

    def __init__(self, samplerate, max_block=1024, tau_ms=10.0, params=None, **overrides):
        self.params = p = resolve_parameters(params, samplerate, **overrides)
        self.samplerate = sr = float(samplerate)
        if not 1 <= int(max_block) <= 1 << 20:
            raise ValueError(f"max_block must be 1 .. 2**20, got {max_block!r}")
        self.max_block = int(max_block)
        self.tau_s = _as_taus(tau_ms)
        self.cf_hz = centre_frequencies(p.channels, p.fmin_hz, p.fmax_hz)
        self.hop = max(1, int(round(sr / p.frame_rate_hz)))
        self.frame_rate = sr / self.hop
        self.gain = p.threshold / (K.ihc_mean_factor(p.compression)
                                   * (10.0 ** (p.threshold_dbfs / 20.0)) ** p.compression)
        ch = p.channels
        self.coeffs = np.zeros((K.N_COEFFS, ch))  # channel-minor (see dsp.cochlea)
        self.coeffs[: K.C_IHC_ALPHA] = design_filterbank(self.cf_hz, sr).reshape(ch, -1).T
        self.coeffs[K.C_IHC_ALPHA] = -math.expm1(-2.0 * math.pi * p.ihc_cutoff_hz / sr)
        self.coeffs[K.C_GAIN] = self.gain
        self.lif_params = lif.LIFParameters(tau=p.tau_ms / 1000.0, v_th=p.threshold,
                                            v_reset=p.reset, t_ref=p.refractory_ms / 1000.0,
                                            method="exact")
        self.lif_coeffs = lif.prepare_lif(self.lif_params, 1.0 / sr)
        self.compression = float(p.compression)
        self.surf_decay = np.exp(-1.0 / (self.tau_s * sr))
        self.surf_jump = 1.0 / self.tau_s
        self.state = np.zeros((K.N_STATE, ch))
        self.lif_states = np.zeros((ch, lif.LIF_N_STATE))
        self.surf_state = np.zeros((len(self.tau_s), ch, 2))
        self.clock = np.zeros(1, dtype=np.int64)
        self._raster = np.zeros((ch, self.max_block))
        self._work = np.zeros((self.max_block, ch))
        self._positions = np.zeros(self.max_block * ch, dtype=np.int64)
        max_frames = self.max_block // self.hop + 1
        self._cont = np.zeros((len(self.tau_s), ch, max_frames))
        self._spk = np.zeros((len(self.tau_s), ch, max_frames))
        self.reset()

    @property
    def channels(self) -> int:
        return self.params.channels

    def reset(self) -> None:
        """Silence: filters, hair cells and surfaces cleared, neurons at rest, frame clock 0.

        Thread: audio (no allocation).
        """
        K.cochlea_reset(self.state, self.lif_states, self.surf_state, self.clock)

    def process(self, block) -> EarBlock:
        """Run one block of mono samples through the ear.

        Thread: audio (no allocation: the result holds views of buffers that the next call
        overwrites; copy what you keep).

        Parameters
        ----------
        block : ndarray, shape (n,), float64, n <= max_block
        """
        n = block.shape[0]
        if n > self.max_block:
            raise ValueError(f"block of {n} frames exceeds max_block {self.max_block}")
        frames = K.cochlea_run(block, self.coeffs, self.state, self.compression,
                               self.lif_coeffs, self.lif_states, self.surf_decay,
                               self.surf_jump, self.surf_state, self.hop, self.clock,
                               self._raster, self._cont, self._spk, self._work,
                               self._positions)
        return EarBlock(self._raster[:, :n], frames, self._cont[:, :, :frames],
                        self._spk[:, :, :frames])


# --------------------------------------------------------------------------------------------
# The whole-signal call.


class EarResult(NamedTuple):
    """Outcome of :func:`listen`.

    Attributes
    ----------
    spike_times : ndarray, shape (n_spikes,), float64
        Seconds from the start of the signal, ascending (ties by channel).
    spike_channels : ndarray, shape (n_spikes,), int64
        Channel of each spike (0 = lowest centre frequency).
    cf_hz : ndarray, shape (channels,), float64
        Centre frequency of each channel, Hz.
    surface_continuous : ndarray, shape (channels, frames) or (n_tau, channels, frames)
        Leaky integrator of each channel's drive, sampled at the end of each frame (frame
        ``j`` ends at ``(j + 1) / frame_rate`` s). Two-dimensional when one ``tau`` was given.
    surface_spikes : ndarray, same shape
        Leaky integrator of each channel's spike train, spikes/s.
    frame_rate : float
        Surface frames per second, Hz.
    tau_s : ndarray, shape (n_tau,), float64
        The surfaces' time constants, s.
    samplerate : float
        Of the input, Hz.
    duration : float
        Of the input, s.
    """

    spike_times: np.ndarray
    spike_channels: np.ndarray
    cf_hz: np.ndarray
    surface_continuous: np.ndarray
    surface_spikes: np.ndarray
    frame_rate: float
    tau_s: np.ndarray
    samplerate: float
    duration: float

    def spike_counts(self) -> np.ndarray:
        """Spikes per channel, shape (channels,), int64."""
        return np.bincount(self.spike_channels, minlength=len(self.cf_hz))


def as_mono(signal) -> np.ndarray:
    """A 1-D float64 copy of ``signal``: (frames,) as is, (frames, channels) averaged.

    Raises ``ValueError`` for other shapes or non-finite samples.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise ValueError(f"signal must be (frames,) or (frames, channels), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("signal must be finite (no NaN or Inf samples)")
    return np.ascontiguousarray(x)


def listen(signal, samplerate, tau_ms=10.0, params: EarParameters | None = None,
           block=SAMPLE_FRAMES_PER_CHUNK, **overrides) -> EarResult:
    """Run a whole signal through the ear; return spikes and time surfaces.

    Thread: main (allocates the result).

    Parameters
    ----------
    signal : array_like, shape (frames,) or (frames, channels)
        Samples, full scale 1; several channels are averaged to mono.
    samplerate : float
        Hz.
    tau_ms : float or sequence of float
        Surface time constant(s), ms. A sequence gives surfaces with a leading tau axis.
    params : EarParameters, optional
    block : int
        Block size of the streaming run (any size gives the same result).
    **overrides
        Any :class:`EarParameters` field, e.g. ``channels=32``.

    Returns
    -------
    EarResult
    """
    x = as_mono(signal)
    ear = Ear(samplerate, max_block=block, tau_ms=tau_ms, params=params, **overrides)
    n = x.shape[0]
    n_tau = len(ear.tau_s)
    total_frames = n // ear.hop
    cont = np.zeros((n_tau, ear.channels, total_frames))
    spk = np.zeros((n_tau, ear.channels, total_frames))
    times, chans = [], []
    frame = 0
    for start in range(0, n, block):
        out = ear.process(x[start:start + block])
        ch_idx, k = np.nonzero(out.raster)
        if ch_idx.size:
            times.append((start + k + out.raster[ch_idx, k]) / ear.samplerate)
            chans.append(ch_idx.astype(np.int64))
        cont[:, :, frame:frame + out.n_frames] = out.surface_continuous
        spk[:, :, frame:frame + out.n_frames] = out.surface_spikes
        frame += out.n_frames
    t = np.concatenate(times) if times else np.zeros(0)
    c = np.concatenate(chans) if chans else np.zeros(0, dtype=np.int64)
    order = np.lexsort((c, t))
    if np.ndim(tau_ms) == 0:
        cont, spk = cont[0], spk[0]
    return EarResult(t[order], c[order], ear.cf_hz.copy(), cont, spk, ear.frame_rate,
                     ear.tau_s.copy(), float(samplerate), n / float(samplerate))


def vector_strength(spike_times, frequency) -> float:
    """Phase locking of spikes to ``frequency`` Hz: ``|mean(exp(2πi f t))|`` (0..1).

    Thread: any (pure). NaN when there are no spikes.
    """
    t = np.asarray(spike_times, dtype=np.float64)
    if t.size == 0:
        return float("nan")
    return float(np.abs(np.mean(np.exp(2j * np.pi * frequency * t))))


def result_arrays(result: EarResult) -> dict:
    """The fields of ``result`` as a dict of arrays (what ``spikesynth listen`` saves)."""
    return {
        "spike_times": result.spike_times,
        "spike_channels": result.spike_channels,
        "cf_hz": result.cf_hz,
        "surface_continuous": result.surface_continuous,
        "surface_spikes": result.surface_spikes,
        "frame_rate": np.float64(result.frame_rate),
        "tau_s": result.tau_s,
        "samplerate": np.float64(result.samplerate),
        "duration": np.float64(result.duration),
    }


# --------------------------------------------------------------------------------------------
# Pictures (matplotlib through spikesynth.plot, imported lazily).


def draw_listen(result: EarResult, title: str | None = None):
    """Draw the spike raster (top) and, per tau, the continuous and spike surfaces.

    Thread: main. Returns a matplotlib ``Figure`` (Agg backend; no window).
    """
    from .plot import require_matplotlib

    Figure = require_matplotlib()
    cont = result.surface_continuous
    spk = result.surface_spikes
    if cont.ndim == 2:
        cont, spk = cont[None], spk[None]
    n_tau = cont.shape[0]
    fig = Figure(figsize=(max(8.0, 4.2 * n_tau), 9.0), layout="constrained")
    grid = fig.add_gridspec(3, n_tau)
    cf = result.cf_hz
    ch = len(cf)
    raster = fig.add_subplot(grid[0, :])
    ticks = np.linspace(0, ch - 1, min(ch, 6)).round().astype(int)
    raster.scatter(result.spike_times, result.spike_channels, s=1.0, marker="|",
                   linewidths=0.4, color="#1b5e20", rasterized=True)
    raster.set_xlim(0, max(result.duration, 1e-3))
    raster.set_ylim(-0.5, ch - 0.5)
    raster.set_yticks(ticks, [f"{cf[i]:.0f}" for i in ticks])
    raster.set_ylabel("centre frequency (Hz)")
    raster.set_xlabel("time (s)")
    n_spikes = len(result.spike_times)
    raster.set_title(f"{title + ': ' if title else ''}spikes of {ch} channels "
                     f"({n_spikes} spikes, {n_spikes / max(result.duration, 1e-9):.0f}/s)")
    frames = cont.shape[2]
    extent = (0.0, frames / result.frame_rate, -0.5, ch - 0.5)
    for t in range(n_tau):
        tau_ms = result.tau_s[t] * 1000.0
        for row, (data, name, unit) in enumerate(
                ((cont[t], "continuous surface (leaky integrator of drive)", "drive"),
                 (spk[t], "spike surface (leaky integrator of spikes)", "spikes/s")), start=1):
            ax = fig.add_subplot(grid[row, t])
            vmax = float(np.percentile(data, 99.5)) if data.size else 1.0
            im = ax.imshow(data, origin="lower", aspect="auto", extent=extent,
                           interpolation="nearest", cmap="magma", vmin=0.0,
                           vmax=vmax if vmax > 0 else 1.0)
            ax.set_yticks(ticks, [f"{cf[i]:.0f}" for i in ticks])
            ax.set_ylabel("centre frequency (Hz)")
            ax.set_xlabel("time (s)")
            ax.set_title(f"{name}, τ = {tau_ms:g} ms", fontsize=9)
            fig.colorbar(im, ax=ax, label=unit, shrink=0.9)
    return fig


def write_listen_figure(result: EarResult, path, title: str | None = None) -> None:
    """Draw :func:`draw_listen` into ``path`` atomically (format from the extension)."""
    from .plot import write_figure

    write_figure(draw_listen(result, title), path)
