"""The batch subcommands on Dask (:mod:`spikesynth.batch`): ``spikesynth library`` (patches to
multisample instruments), ``stems`` (a MIDI file's tracks and the mix) and ``sweep`` (a grid
of parameter values, each measured)."""

from __future__ import annotations

from .cli_common import fail, say


def _run_batch(args, work) -> int:
    """Open the runner for ``--scheduler`` / ``--workers``, run ``work(runner)``, report errors."""
    from .batch import BatchError, open_runner
    from .offline import RenderError
    from .patch import PatchError
    from .sfz import SfzError

    try:
        # The cluster starts (and says where it renders) when the first task comes: none
        # for a library that is up to date.
        with open_runner(args.scheduler, args.workers, say=None if args.quiet else say,
                         lazy=True) as runner:
            return work(runner)
    except (BatchError, PatchError, RenderError, SfzError) as e:
        return fail(str(e), 1)
    except KeyboardInterrupt:
        return fail("interrupted: only complete files were written (a library rerun "
                     "resumes)", 130)
    except OSError as e:
        return fail(f"cannot write {args.output}: {e.strerror or e}", 1)


def _batch_settings(args, length):
    from .batch import RenderSettings
    from .offline import RenderError

    if not 8000 <= args.samplerate <= 384000:
        raise RenderError(f"samplerate {args.samplerate} Hz outside 8000..384000")
    if args.tail is not None and not 0 <= args.tail <= 600:
        raise RenderError("--tail must be between 0 and 600 seconds")
    if not 0 < length <= 600:
        raise RenderError("--length must be more than 0 and at most 600 seconds")
    return RenderSettings(samplerate=args.samplerate, length_s=length, tail_s=args.tail,
                          subtype=args.subtype, format=args.format, seed=args.seed)


def _cmd_library(args) -> int:
    from .batch import parse_notes, parse_velocities, render_library

    def work(runner):
        settings = _batch_settings(args, args.length)
        report = render_library(args.patches, args.output, parse_notes(args.notes),
                                parse_velocities(args.velocities), settings, runner,
                                quiet=args.quiet, workers_write=args.workers_write)
        if report.skipped:
            say("spikesynth: note: left out (they listen to an audio input: use `spikesynth "
                f"process`): {', '.join(report.skipped)}")
        if not args.quiet:
            gone = (f", {len(report.removed)} earlier samples no longer in it deleted"
                    if report.removed else "")
            print(f"{args.output}: {report.total} samples, {len(report.rendered)} rendered, "
                  f"{report.up_to_date} up to date{gone}; "
                  + ", ".join(str(p) for p in report.instruments))
        return 0

    return _run_batch(args, work)


def _mapping(items, what, key_type=str):
    """``NAME=PATCH`` options into a dict."""
    from .batch import BatchError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise BatchError(f"bad --{what} {item!r}: expected {what.upper()}=PATCH")
        try:
            key = key_type(key.strip())
        except ValueError:
            raise BatchError(f"bad --{what} {item!r}: expected a channel number 1-16") \
                from None
        if key_type is int and not 1 <= key <= 16:
            raise BatchError(f"bad --{what} {item!r}: expected a channel number 1-16")
        out[key] = value.strip()
    return out


def _cmd_stems(args) -> int:
    from .batch import render_stems

    def work(runner):
        settings = _batch_settings(args, 1.0)
        report = render_stems(args.song, args.output, runner,
                              tracks=_mapping(args.track, "track"),
                              channels=_mapping(args.channel, "channel", int),
                              default_patch=args.patch, samplerate=settings.samplerate,
                              subtype=settings.subtype, fmt=settings.format,
                              tail_s=settings.tail_s, seed=settings.seed, quiet=args.quiet)
        if not args.quiet:
            for name, patch, path in report.stems:
                limited = report.limited[name]
                note = f", its limiter acted on {limited} samples" if limited else ""
                print(f"wrote {path} ({name}, patch {patch}{note})")
            gain = (f", every stem and the mix at {report.headroom_db:+.2f} dB to stay under "
                    "the ceiling" if report.headroom_db < 0 else "")
            print(f"wrote {report.mix} (the sum of the stems, "
                  f"{report.frames / settings.samplerate:.2f} s{gain})")
        return 0

    return _run_batch(args, work)


def _cmd_sweep(args) -> int:
    from .batch import parse_param, render_sweep
    from .offline import parse_pitch

    def work(runner):
        settings = _batch_settings(args, args.length)
        axes = [parse_param(p) for p in args.param]
        report = render_sweep(args.patch, args.output, axes, runner,
                              note=parse_pitch(args.note), velocity=args.velocity,
                              settings=settings, quiet=args.quiet)
        if not args.quiet:
            sheet = report.contact_sheet or "no contact sheet (pip install 'spikesynth[plot]')"
            print(f"{args.output}: {report.rows} renders, {report.features_csv}, {sheet}")
        return 0

    return _run_batch(args, work)


def _add_batch_args(p, subtype="PCM_24"):
    p.add_argument("--samplerate", type=int, default=48000, metavar="HZ",
                   help="sample rate (default 48000)")
    p.add_argument("--subtype", choices=("PCM_16", "PCM_24", "FLOAT"), default=subtype)
    p.add_argument("--format", choices=("wav", "flac", "aiff"), default="wav",
                   help="audio file format (default wav)")
    p.add_argument("--tail", type=float, default=None, metavar="SECONDS",
                   help="render this long after the note-off (default: until silence)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (renders are deterministic)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="an existing Dask cluster (default: a local one, a worker per core)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local Dask workers (default: one per core; 0: in this process)")
    p.add_argument("-q", "--quiet", action="store_true")


def add_parsers(sub) -> None:
    """The ``library``, ``stems`` and ``sweep`` subcommands, on ``sub`` (argparse's
    subparsers)."""
    p = sub.add_parser("library", help="render patches to multisample instruments (SFZ)")
    p.add_argument("patches", nargs="+", metavar="PATCH")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--notes", default="21:108:1", metavar="LO:HI[:STEP]",
                   help="notes to render (numbers or names, inclusive; default 21:108:1)")
    p.add_argument("--velocities", default="32,64,96,127", metavar="V,V,...")
    p.add_argument("--length", type=float, default=1.0, metavar="SECONDS",
                   help="how long each note is held before its release (default 1 s)")
    p.add_argument("--workers-write", action="store_true",
                   help="the workers write the samples into DIR themselves (DIR must be the "
                        "same folder on every worker: a shared filesystem); the client gets "
                        "only sizes, hashes and features")
    _add_batch_args(p)
    p.set_defaults(func=_cmd_library)

    p = sub.add_parser("stems", help="render a MIDI file's tracks (or channels) and the mix")
    p.add_argument("song", metavar="SONG.mid")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--track", action="append", default=[], metavar="NAME=PATCH",
                   help="the patch of a track (its name, or its number from 1); repeatable")
    p.add_argument("--channel", action="append", default=[], metavar="N=PATCH",
                   help="split by MIDI channel instead; the patch of channel N (1-16)")
    p.add_argument("--patch", default=None,
                   help="the patch of every other track or channel (default: the bundled one)")
    _add_batch_args(p, subtype="FLOAT")
    p.set_defaults(func=_cmd_stems)

    p = sub.add_parser("sweep", help="render a grid of patch parameter values, measure each")
    p.add_argument("patch", nargs="?", help="patch YAML (default: the bundled default patch)")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--param", action="append", default=[], metavar="KEY.PATH=LO:HI:N",
                   help="a swept key: N values from LO to HI (N ending in 'log': geometric); "
                        "repeatable (the grid of every combination)")
    p.add_argument("--note", default="60", metavar="PITCH")
    p.add_argument("--velocity", type=int, default=100, choices=range(1, 128),
                   metavar="1-127")
    p.add_argument("--length", type=float, default=1.0, metavar="SECONDS")
    _add_batch_args(p)
    p.set_defaults(func=_cmd_sweep)
