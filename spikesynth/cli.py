"""The command line: ``spikesynth render | check | play | devices | plot``. Top of the import graph.

User errors (bad patch, bad note, missing file, no audio device) print one clear message and
exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USAGE):
    print(f"spikesynth: error: {message}", file=sys.stderr)
    return code


def _cmd_check(args) -> int:
    from .patch import PatchError, load_patch

    status = 0
    for path in args.patches:
        try:
            patch = load_patch(path)
        except PatchError as e:
            print(f"spikesynth: error: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok ({patch.name}, {patch['voices']} voices)")
    return status


def _cmd_render(args) -> int:
    from .offline import (
        RenderError,
        midi_file_events,
        note_events,
        parse_note,
        render_to_file,
    )
    from .patch import PatchError, load_patch

    try:
        patch = load_patch(args.patch)
        if not 8000 <= args.samplerate <= 384000:
            raise RenderError(f"samplerate {args.samplerate} Hz outside 8000..384000")
        if args.tail is not None and not 0 <= args.tail <= 600:
            raise RenderError("--tail must be between 0 and 600 seconds")
        events = []
        if args.midi:
            events += midi_file_events(args.midi, args.samplerate)
        notes = [parse_note(s) for s in args.note]
        if not notes and not args.midi:
            notes = [parse_note("C4")]  # a default: one second of middle C
        events += note_events(notes, args.samplerate)
        events.sort(key=lambda e: e[0])
        out = args.output or f"{Path(args.patch).stem if args.patch else 'default'}.wav"
        seconds = render_to_file(patch, out, events, samplerate=args.samplerate,
                                 subtype=args.subtype, tail=args.tail, seed=args.seed,
                                 progress=not args.quiet)
    except (PatchError, RenderError) as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted: nothing written", 130)
    except OSError as e:
        return _fail(f"cannot write {args.output or 'the output'}: {e.strerror or e}", 1)
    if not args.quiet:
        print(f"wrote {out} ({seconds:.2f} s, {args.samplerate} Hz, {args.subtype}, "
              f"patch {patch.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikesynth",
        description="A real-time, audio-rate spiking-neuron synthesizer.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"spikesynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("render", help="render notes or a MIDI file to an audio file")
    p.add_argument("patch", nargs="?", help="patch YAML (default: the bundled default patch)")
    p.add_argument("-o", "--output", help="output file (.wav, .flac; default PATCH.wav)")
    p.add_argument("--note", action="append", default=[], metavar="PITCH[:VEL[:START[:DUR]]]",
                   help="a note: pitch as MIDI number or name (C4 = 60), velocity (100), "
                        "start (0 s), duration (1 s); repeatable")
    p.add_argument("--midi", metavar="FILE.mid", help="render every channel of a MIDI file")
    p.add_argument("--samplerate", type=int, default=48000)
    p.add_argument("--subtype", choices=("PCM_16", "PCM_24", "FLOAT"), default="PCM_24")
    p.add_argument("--tail", type=float, default=None, metavar="SECONDS",
                   help="render this long after the last note ends (default: until silence)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (renders are deterministic)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("check", help="validate patch files")
    p.add_argument("patches", nargs="+", metavar="PATCH")
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
