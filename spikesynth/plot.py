"""Pictures of a voice: membrane trace with its states, spike raster, output spectrum.

The host behind ``spikesynth plot``. :func:`voice_data` runs the engine (numpy only);
:func:`build_figure` draws the three panels and returns the matplotlib ``Figure``;
:func:`write_figure` saves it atomically. matplotlib is an optional extra
(``pip install 'spikesynth[plot]'``), imported lazily and only in this module, with the Agg
backend: nothing here opens a window. Thread: main, throughout.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .dsp.lif import lif_period
from .dsp.model_voice import steady_period
from .dsp.voice import FIRING, REFRACTORY, RESTING, period_for_drive
from .engine import Synth, note_frequency, trace_voice
from .fileio import atomic_output
from .models import spiking

SAMPLERATE = 48000
TRACE_PERIODS = 4  # the trace panel shows this many periods (from the start)
DEFAULT_MIN_SECONDS = 1.0  # default render length ...
DEFAULT_PERIODS = 8  # ... or this many periods, whichever is longer ...
MAX_SECONDS = 60.0  # ... and never longer than this
SPECTRUM_MAX_HZ = 20000.0  # spectrum x-axis ends here (or at Nyquist)
SPECTRUM_RANGE_DB = 100.0  # dB shown below the spectrum's peak
MAX_HARMONIC_MARKS = 40  # beyond this the markers merge into a solid band
SILENT_DB = -120.0  # a spectrum whose peak is below this is drawn as silence
FIGSIZE = (10.0, 9.0)  # inches
DPI = 110
INSTALL_HINT = "matplotlib is needed for plots: pip install 'spikesynth[plot]'"

STATE_NAMES = {RESTING: "RESTING", FIRING: "FIRING", REFRACTORY: "REFRACTORY"}
STATE_COLOURS = {RESTING: "#e3ecf7", FIRING: "#f9c48d", REFRACTORY: "#cde8c4"}
TITLES = ("Membrane and spike waveform", "Spike raster", "Output spectrum")

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class PlotError(ValueError):
    """A user error in what was asked to plot (bad length, current or output file)."""


class MissingMatplotlib(PlotError):
    """matplotlib is not installed; the message says how to get it."""


def note_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI note (60 → ``C4``)."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def require_matplotlib():
    """Import matplotlib with the Agg backend; :class:`MissingMatplotlib` if it is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingMatplotlib(INSTALL_HINT) from None
    return Figure


def state_runs(state, code) -> list[tuple[int, int]]:
    """``(first, stop)`` sample ranges (stop exclusive) where ``state == code``."""
    mask = np.concatenate(([False], np.asarray(state) == code, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(mask))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def harmonics(f0, f_max) -> np.ndarray:
    """``k·f0`` for k = 1, 2, ... up to and including ``f_max`` Hz (empty if f0 is None)."""
    if f0 is None or not f0 > 0 or f0 > f_max:
        return np.zeros(0)
    return f0 * np.arange(1, int(math.floor(f_max / f0 * (1 + 1e-12))) + 1)


def spectrum_db(x, samplerate):
    """Hann-windowed magnitude spectrum in dBFS (a full-scale sine reads 0 dB).

    Parameters
    ----------
    x : float array, shape (n,)

    Returns
    -------
    freqs : float array, shape (n // 2 + 1,), Hz
    level : float array, shape (n // 2 + 1,), dB (floored at -200 dB)
    """
    x = np.asarray(x, dtype=np.float64)
    window = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * window)) * 2.0 / max(window.sum(), 1e-12)
    freqs = np.fft.rfftfreq(len(x), 1.0 / samplerate)
    return freqs, 20.0 * np.log10(np.maximum(mag, 1e-10))


def voice_data(patch, note=60, seconds=None, current=None, samplerate=SAMPLERATE) -> dict:
    """Everything the picture shows, computed with the engine (numpy only, no matplotlib).

    Parameters
    ----------
    patch : Patch
    note : int
        MIDI note: the voice is tuned for it (drive, spike width, spring keytracking).
    seconds : float, optional
        Render length; default ``max(1 s, 8 periods)``, at most ``MAX_SECONDS``.
    current : float, optional
        Drive the neuron with this constant current instead of the note's solved drive.
        There is then no target note; the spectrum is the voice's own output (before the
        master section) and harmonics are marked at the measured firing rate, if any.
    samplerate : float
        Hz.

    Returns
    -------
    dict
        ``t`` (s), ``v``, ``state``, ``spring`` (arrays, shape (frames,)); ``window`` (s) the
        span the trace panel shows; ``spike_trains`` (list of arrays of onset times in s, one
        per neuron) and ``neuron_names``; ``freqs`` (Hz) and ``level`` (dBFS) the spectrum;
        ``f0`` the frequency whose harmonics are marked (None when nothing fires);
        ``rate`` the measured firing rate (Hz, None below two spikes); ``rate_theory`` the
        closed-form rate (spiking and LIF voices; None otherwise); ``threshold_high``,
        ``threshold_low`` (None where the model has none), ``title`` and friends. The states
        are shaded for the spiking voice only (the other models have no state machine).
    """
    sr = float(samplerate)
    params = patch.param_vector()
    target = float(note_frequency(params, float(note), 0.0))
    if current is not None:
        current = float(current)
        if not math.isfinite(current):
            raise PlotError(f"--current must be a finite number, not {current}")
    if seconds is None:
        seconds = min(max(DEFAULT_MIN_SECONDS, DEFAULT_PERIODS / target), MAX_SECONDS)
    if not (math.isfinite(seconds) and 0.01 <= seconds <= MAX_SECONDS):
        raise PlotError(f"--seconds must be between 0.01 and {MAX_SECONDS:g}, not {seconds:g}")
    frames = int(round(seconds * sr))

    model = patch["model"]
    drive = None if current is None else np.full(frames, current)
    tr = trace_voice(patch, sr, frames, note, current=drive)
    spikes = [np.asarray(t) for t in tr["spikes"]]
    if model in ("lif", "izhikevich") and current is None:
        # A played note starts the membrane at its cut-off (the note speaks at once): the
        # reset in the first sample is that start, not a spike of the dynamics, and the
        # traced membrane (after the reset) shows none.
        spikes[0] = spikes[0][spikes[0] > 0]
    onsets = spikes[0]  # the first neuron's spikes set the rate
    spike_trains = [t / sr for t in spikes]
    if patch.network is not None:
        names = [n.get("name", f"n{j}") for j, n in enumerate(patch.network["neurons"])]
    else:
        names = ["voice"]
    rate = None  # the repetition rate of the first neuron's spike pattern (a burst: its cycle)
    spike_rate = None  # its spikes per second
    if len(onsets) >= 2:
        spike_rate = (len(onsets) - 1) * sr / float(onsets[-1] - onsets[0])
        rate = spike_rate
        if len(onsets) >= 8:
            cycle = steady_period(onsets.astype(np.float64), len(onsets), 32)
            if cycle == cycle and cycle > 0.0:
                rate = sr / cycle
    drive_level = tr["drive_level"] if current is None else current
    rate_theory = None
    reset = None
    if model == "spiking":
        v_high = float(patch["membrane.threshold_high"])
        v_low = float(patch["membrane.threshold_low"])
        reset = float(params[spiking.P_V_RESET])
        period = period_for_drive(v_high, tr["v_start"], tr["tau"], tr["t_fire"], tr["t_ref"],
                                  drive_level)
        rate_theory = sr / period if math.isfinite(period) else 0.0
    elif model == "lif":
        v_high, v_low = float(patch["lif.threshold"]), None
        reset = float(patch["lif.reset"])
        ms = sr / 1000.0
        t_ref = min(patch["lif.refractory_ms"] * ms, 0.35 * sr / target)
        period = lif_period(drive_level, patch["lif.tau_ms"] * ms, v_high, reset, t_ref)
        rate_theory = sr / period if math.isfinite(period) else 0.0
    elif model == "izhikevich":
        v_high, v_low = 30.0, None  # the spike cut-off, mV
        drive_level = patch["izhikevich.current"] if current is None else current
    else:  # network: the first neuron's membrane is traced
        v_high = v_low = None
        drive_level = patch["network.drive"] if current is None else current

    label = f"{note_name(note)} ({note})"
    if current is None:
        f0 = target
        synth = Synth(patch, sr, max_block=4096)
        audio = synth.process(frames, [(0, bytes([0x90, note, 100]))])
        signal = audio.astype(np.float64).mean(axis=1)
        period = sr / target
        window = min(seconds, TRACE_PERIODS / target)
        title = (f"{patch.name} ({model}): note {label}, target f0 = {target:.2f} Hz (12-TET), "
                 f"drive I = {drive_level:.3g}, {sr / 1000:g} kHz")
        spectrum_title = f"Output spectrum (whole {seconds:g} s render of {label}, velocity 100)"
        marks = f"harmonics of {label} (k·{f0:.1f} Hz, k ≤ {MAX_HARMONIC_MARKS})"
    else:
        f0 = rate
        signal = tr["out"]
        if rate is not None:
            window = min(seconds, (onsets[0] + TRACE_PERIODS * sr / rate) / sr)
        else:  # nothing fires: show the approach to rest (or to the sub-threshold level)
            window = min(seconds, max(TRACE_PERIODS / target, 0.02))
        fired = ("no spikes (at or below rheobase)" if not len(onsets) else
                 f"{len(onsets)} spike{'s' if len(onsets) != 1 else ''}")
        title = (f"{patch.name}: constant current I = {current:g}, no target note "
                 f"(voice shaped for {label}): {fired}")
        spectrum_title = (f"Voice output spectrum (whole {seconds:g} s, constant current, "
                          "before the master section)")
        marks = (f"harmonics of the measured rate (k·{rate:.1f} Hz)" if rate is not None
                 else "")
    freqs, level = spectrum_db(signal, sr)
    return {
        "samplerate": sr, "seconds": seconds, "note": note, "current": current,
        "t": np.arange(frames) / sr, "v": tr["v"], "state": tr["state"],
        "spring": tr["spring"], "window": window,
        "spike_trains": spike_trains, "neuron_names": names, "model": model,
        "freqs": freqs, "level": level, "f0": f0, "target_hz": target,
        "rate": rate, "rate_theory": rate_theory, "spike_rate": spike_rate,
        "threshold_high": v_high, "threshold_low": v_low, "reset": reset,
        "title": title, "spectrum_title": spectrum_title, "harmonic_label": marks,
        "f_max": min(0.5 * sr, SPECTRUM_MAX_HZ),
    }


def _draw_trace(ax, d):
    n = int(round(d["window"] * d["samplerate"]))
    t_ms = d["t"][:n] * 1e3
    state = d["state"][:n]
    step_ms = 1e3 / d["samplerate"]
    # The twin axis (spring, drawn below) also carries the state shading, so the shading
    # sits under both curves; the main axis, on top, keeps the membrane and the legend.
    tw = ax.twinx()
    handles = []
    if d["model"] == "spiking":  # the state machine, shaded
        for code in (RESTING, FIRING, REFRACTORY):
            runs = state_runs(state, code)
            # Each sample's state holds until the next sample: a run ends at the next one.
            spans = [(t_ms[a], (b - a) * step_ms) for a, b in runs]
            handles.append(tw.broken_barh(spans, (0, 1), transform=tw.get_xaxis_transform(),
                                          facecolor=STATE_COLOURS[code], edgecolor="none",
                                          label=STATE_NAMES[code], zorder=0))
    label = "membrane v" if d["model"] != "network" else f"membrane v ({d['neuron_names'][0]})"
    (line_v,) = ax.plot(t_ms, d["v"][:n], color="#1f3b73", lw=1.6, label=label, zorder=3)
    lines = []
    levels = [float(np.min(d["v"][:n])) if n else 0.0, float(np.max(d["v"][:n])) if n else 1.0]
    high = "spike cut-off" if d["model"] == "izhikevich" else "threshold high"
    for value, colour, style, name in ((d["threshold_high"], "#b03a2e", "--", high),
                                       (d["threshold_low"], "#7d6608", ":", "threshold low")):
        if value is not None:
            lines.append(ax.axhline(value, color=colour, ls=style, lw=1.1, zorder=2,
                                    label=f"{name} ({value:g})"))
            levels.append(value)
    if d["reset"] is not None:
        levels.append(d["reset"])
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("membrane v" + (" (mV)" if d["model"] in ("izhikevich",) else ""))
    ax.set_title(TITLES[0])
    ax.set_xlim(-0.01 * d["window"] * 1e3, d["window"] * 1e3)  # a spike at 0 stays visible
    lo_v = min(levels)
    hi_v = max(levels)
    pad = 0.08 * (hi_v - lo_v)
    ax.set_ylim(lo_v - pad, hi_v + 0.45 * (hi_v - lo_v))  # headroom for the legend

    what = {"spiking": "spring output (spike waveform)", "lif": "voice output",
            "izhikevich": "recovery u", "network": "heard mix (left)"}[d["model"]]
    (line_s,) = tw.plot(t_ms, d["spring"][:n], color="#c0392b", lw=1.1, alpha=0.85,
                        label=what, zorder=3)
    tw.set_ylabel(what, color="#c0392b")
    tw.tick_params(axis="y", colors="#c0392b")
    s_lo = float(np.min(d["spring"][:n])) if n else -1.0
    s_hi = float(np.max(d["spring"][:n])) if n else 1.0
    if s_hi - s_lo < 1e-3:  # a flat line: no autoscaled 1e-7 axis
        s_lo, s_hi = s_lo - 1.0, s_hi + 1.0
    s_pad = 0.08 * max(s_hi - s_lo, 1e-6)
    tw.set_ylim(s_lo - s_pad, s_hi + 0.45 * max(s_hi - s_lo, 1e-6))
    ax.set_zorder(tw.get_zorder() + 1)  # membrane and legend above the twin's line ...
    ax.patch.set_visible(False)  # ... without hiding it
    ax.legend(handles=[line_v, line_s, *lines, *handles], loc="upper right", ncol=4,
              fontsize=8, framealpha=0.92)
    return tw


def _draw_raster(ax, d):
    window_ms = d["window"] * 1e3
    trains = [np.asarray(s) * 1e3 for s in d["spike_trains"]]
    shown = [s[s < window_ms] for s in trains]
    ax.eventplot(shown, lineoffsets=np.arange(len(shown)), linelengths=0.8,
                 colors="#1f3b73", linewidths=1.5)
    ax.set_yticks(np.arange(len(shown)), d["neuron_names"])
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.set_xlim(-0.01 * window_ms, window_ms)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    total = sum(len(s) for s in trains)
    rate = d["rate"]
    theory = d["rate_theory"]
    whose = f"{d['neuron_names'][0]}'s" if len(d["neuron_names"]) > 1 else "the"
    spike_rate = d.get("spike_rate")
    per_cycle = ""
    if rate is not None and spike_rate is not None and spike_rate > 1.5 * rate:
        per_cycle = f", {spike_rate / rate:.1f} spikes per cycle"
    what = (f"{total} spike{'s' if total != 1 else ''} in {d['seconds']:g} s"
            + (f"; {whose} spike pattern repeats at {rate:.2f} Hz{per_cycle}"
               if rate is not None else "")
            + (f" (closed form {theory:.2f} Hz)" if rate is not None and theory else ""))
    ax.set_title(f"{TITLES[1]} ({what})")


def _draw_spectrum(ax, d):
    f_lo = 20.0 if d["f0"] is None else min(20.0, 0.5 * d["f0"])
    f_hi = d["f_max"]
    keep = (d["freqs"] >= f_lo) & (d["freqs"] <= f_hi)
    freqs = d["freqs"][keep]
    level = d["level"][keep]
    peak = float(level.max()) if level.size else 0.0
    ax.plot(freqs, level, color="#1f3b73", lw=0.9, label="output")
    marks = harmonics(d["f0"], f_hi)[:MAX_HARMONIC_MARKS]
    if peak < SILENT_DB:  # nothing sounds: say so instead of plotting the numerical floor
        ax.text(0.5, 0.5, "silent: the neuron does not fire", transform=ax.transAxes,
                ha="center", va="center", fontsize=11, color="#555555")
        peak = -60.0
        marks = marks[:0]
    if marks.size:
        ax.vlines(marks, 0, 1, transform=ax.get_xaxis_transform(), colors="#e67e22",
                  lw=0.8, alpha=0.55, linestyles="--", label=d["harmonic_label"], zorder=0,
                  gid="harmonics")
    ax.set_xscale("log")
    ax.set_xlim(f_lo, f_hi)
    ax.set_ylim(peak - SPECTRUM_RANGE_DB, peak + 6.0)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("level (dBFS)")
    ax.set_title(d["spectrum_title"])
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.92)


def build_figure(data):
    """The three-panel figure for :func:`voice_data`'s ``data``; returns a matplotlib Figure.

    Axes, top to bottom: the membrane trace (its twin axis holding the spring output,
    appended last to ``figure.axes``), the spike raster (sharing the time axis) and the
    spectrum. Raises :class:`MissingMatplotlib` without matplotlib.
    """
    Figure = require_matplotlib()
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax_trace, ax_raster, ax_spec = fig.subplots(
        3, 1, gridspec_kw={"height_ratios": [3.0, 1.1, 2.6]})
    ax_raster.sharex(ax_trace)
    _draw_raster(ax_raster, data)
    _draw_spectrum(ax_spec, data)
    _draw_trace(ax_trace, data)
    fig.suptitle(data["title"], fontsize=11, fontweight="bold")
    return fig


def check_output(path) -> str:
    """The image format for ``path`` (from its extension); :class:`PlotError` if unusable."""
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FigureCanvasBase.get_supported_filetypes():
        raise PlotError(f"{path}: unknown image extension (use .png, .svg or .pdf)")
    if path.is_dir():
        raise PlotError(f"{path} is a directory")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PlotError(f"{folder}: no such folder")
    return fmt


def write_figure(fig, path):
    """Save ``fig`` to ``path`` atomically (temporary file beside it, then ``os.replace``).

    The format comes from the extension (``.png``, ``.svg``, ``.pdf``, ...). On any error
    the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fmt = check_output(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=DPI)


def plot_voice(patch, path, note=60, seconds=None, current=None, samplerate=SAMPLERATE):
    """Compute, draw and write the picture of ``patch``'s voice; return :func:`voice_data`."""
    check_output(path)  # fail before the (slow) engine work
    data = voice_data(patch, note, seconds, current, samplerate)
    write_figure(build_figure(data), path)
    return data


CELL_INCHES = (1.7, 1.25)  # contact sheet: one spectrogram's size


def contact_sheet(thumbs, row_labels, col_labels, f_max_hz, seconds, title=""):
    """A grid of small spectrograms (a parameter sweep's contact sheet); returns a Figure.

    ``thumbs[r][c]``: float32 dB arrays of shape (bands, frames) from
    :func:`spikesynth.analysis.spectrogram_thumb` (row 0 the lowest band), drawn with a
    shared colour scale; ``row_labels`` / ``col_labels`` name each row / column (the swept
    values); the axes span 0..``seconds`` and 0..``f_max_hz``. Raises
    :class:`MissingMatplotlib` without matplotlib.
    """
    Figure = require_matplotlib()
    rows, cols = len(row_labels), len(col_labels)
    fig = Figure(figsize=(1.2 + CELL_INCHES[0] * cols, 0.9 + CELL_INCHES[1] * rows), dpi=DPI,
                 layout="constrained")
    axes = np.atleast_2d(np.asarray(fig.subplots(rows, cols, squeeze=False)))
    image = None
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = ax.imshow(thumbs[r][c], origin="lower", aspect="auto", cmap="magma",
                              vmin=-90.0, vmax=0.0,
                              extent=(0.0, seconds, 0.0, f_max_hz / 1000.0))
            ax.tick_params(labelsize=6, length=2)
            if r == 0:
                ax.set_title(col_labels[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{row_labels[r]}\nkHz" if row_labels[r] else "kHz", fontsize=7)
            else:
                ax.set_yticklabels([])
            if r == rows - 1:
                ax.set_xlabel("s", fontsize=7)
            else:
                ax.set_xticklabels([])
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="dBFS").ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9, fontweight="bold")
    return fig
