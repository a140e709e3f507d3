"""The ear's subcommands: ``spikesynth listen`` (an audio file to spikes and time surfaces,
:mod:`spikesynth.ear`) and ``spikesynth process`` (a listening patch over an audio file,
:mod:`spikesynth.ear_effects`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import fail


def add_parsers(sub) -> None:
    """The ``listen`` and ``process`` subcommands, on ``sub`` (argparse's subparsers)."""
    _add_listen_parser(sub)
    _add_process_parser(sub)


# --- listen: the spiking ear (spikesynth.ear) ------------------------------------------------


def _tau_list(text: str):
    """``--tau-ms 2,10,50``: one or more positive numbers of milliseconds."""
    try:
        taus = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers of ms separated by commas, got {text!r}") from None
    if not taus or not all(0.01 <= t <= 100000 for t in taus) or len(taus) > 16:
        raise argparse.ArgumentTypeError("expected 1..16 values of 0.01 .. 100000 ms")
    return taus


def _cmd_listen(args) -> int:
    """``spikesynth listen IN -o OUT``: OUT.npz (spikes, surfaces) and OUT.png."""
    import numpy as np

    from . import ear
    from .fileio import atomic_output
    from .offline import RenderError, read_audio
    from .plot import PlotError

    out = Path(args.output)
    if out.suffix.lower() in (".npz", ".png"):
        out = out.with_suffix("")
    npz, png = out.with_name(out.name + ".npz"), out.with_name(out.name + ".png")
    overrides = {k: v for k, v in (("channels", args.channels), ("fmin_hz", args.fmin),
                                   ("fmax_hz", args.fmax), ("compression", args.compression),
                                   ("threshold_dbfs", args.threshold_dbfs)) if v is not None}
    try:
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise RenderError(f"{folder}: no such folder")
        data, samplerate = read_audio(args.input)
        taus = args.tau_ms or [10.0]
        try:
            result = ear.listen(data, samplerate, tau_ms=taus if len(taus) > 1 else taus[0],
                                **overrides)
        except ValueError as e:
            raise RenderError(str(e)) from None
        with atomic_output(npz) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **ear.result_arrays(result))
        if not args.no_picture:
            ear.write_listen_figure(result, png, title=Path(args.input).name)
    except (RenderError, PlotError) as e:
        return fail(str(e), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except OSError as e:
        return fail(f"cannot write {out}: {e.strerror or e}", 1)
    n = len(result.spike_times)
    wrote = f"{npz}" + ("" if args.no_picture else f" and {png}")
    print(f"wrote {wrote} ({result.duration:.2f} s, {len(result.cf_hz)} channels, {n} spikes)")
    return 0


def _add_listen_parser(sub) -> None:
    p = sub.add_parser("listen", help="the spiking ear: an audio file to spikes and time surfaces")
    p.add_argument("input", metavar="IN", help="audio file (anything soundfile reads)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="writes OUT.npz (spikes, surfaces) and OUT.png (raster, surfaces)")
    p.add_argument("--tau-ms", type=_tau_list, default=None, metavar="MS[,MS...]",
                   help="surface time constant(s), ms (default 10); several: side by side")
    p.add_argument("--channels", type=int, default=None, help="gammatone channels (64)")
    p.add_argument("--fmin", type=float, default=None, metavar="HZ", help="lowest centre (50)")
    p.add_argument("--fmax", type=float, default=None, metavar="HZ",
                   help="highest centre (min(8000, 0.4 samplerate))")
    p.add_argument("--compression", type=float, default=None, help="hair-cell exponent (0.3)")
    p.add_argument("--threshold-dbfs", type=float, default=None, metavar="DB",
                   help="tone level at which a channel's mean drive reaches threshold (-50)")
    p.add_argument("--no-picture", action="store_true", help="write OUT.npz only")
    p.set_defaults(func=_cmd_listen)


# --- process: neural effects on an audio file (spikesynth.ear_effects) ----------------------


def _cmd_process(args) -> int:
    """``spikesynth process PATCH IN -o OUT``: a listening patch over an audio file."""
    from .ear_effects import process_file
    from .offline import RenderError, midi_file_events, note_events, parse_note
    from .patch import PatchError

    try:
        if args.tail is not None and not 0 <= args.tail <= 600:
            raise RenderError("--tail must be between 0 and 600 seconds")
        notes = [parse_note(s) for s in args.note]

        def events_for(samplerate):
            events = midi_file_events(args.midi, samplerate) if args.midi else []
            events += note_events(notes, samplerate)
            return sorted(events, key=lambda e: e[0])

        result = process_file(args.patch, args.input, args.output, events_for,
                              subtype=args.subtype, tail=args.tail or 0.0, seed=args.seed)
    except (PatchError, RenderError) as e:
        return fail(str(e), 1)
    except KeyboardInterrupt:
        return fail("interrupted: nothing written", 130)
    except OSError as e:
        return fail(f"cannot write {args.output}: {e.strerror or e}", 1)
    if not args.quiet:
        clipped = f", {result.limited} samples limited" if result.limited else ""
        print(f"wrote {args.output} ({len(result.audio) / result.samplerate:.2f} s, "
              f"{result.samplerate} Hz{clipped})")
    return 0


def _add_process_parser(sub) -> None:
    p = sub.add_parser("process", help="a neural effect (ear resynthesis, spiking vocoder) "
                                       "over an audio file")
    p.add_argument("patch", metavar="PATCH", help="a patch with a listen: section "
                                                  "(patches/ear_resynth.yaml, ear_vocoder.yaml)")
    p.add_argument("input", metavar="IN", help="audio file (anything soundfile reads)")
    p.add_argument("-o", "--output", required=True, help="output file (.wav, .flac, .aiff)")
    p.add_argument("--note", action="append", default=[], metavar="PITCH[:VEL[:START[:DUR]]]",
                   help="a note the vocoder sings (as render --note); repeatable")
    p.add_argument("--midi", metavar="FILE.mid", help="notes the vocoder sings, from a MIDI file")
    p.add_argument("--subtype", choices=("PCM_16", "PCM_24", "FLOAT"), default="PCM_24")
    p.add_argument("--tail", type=float, default=None, metavar="SECONDS",
                   help="process this much silence after the input (default 0)")
    p.add_argument("--seed", type=int, default=0, help="the synth's noise seed")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_process)
