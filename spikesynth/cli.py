"""The command line: ``spikesynth render | check | play | ui | devices | plot | listen | process |
library | stems | sweep | cache-dir``.

Top of the import graph: this module holds the parser, ``render``, ``check``, ``play``, ``ui``,
``devices``, ``plot`` and ``cache-dir``; :mod:`spikesynth.cli_ear` the ear's subcommands
(``listen``, ``process``) and :mod:`spikesynth.cli_batch` the batch ones (``library``,
``stems``, ``sweep``), both below it, over :mod:`spikesynth.cli_common` (how an error is
said).

User errors (bad patch, bad note, missing file, no audio device) print one clear message and
exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cli_batch, cli_ear
from .cli_common import EXIT_USAGE, fail, warn


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
        controller_events,
        has_program_changes,
        load_programs,
        midi_file_song,
        note_events,
        osc_file_events,
        parse_note,
        release_hanging_notes,
        render_to_file,
    )
    from .patch import PatchError, load_patch
    from .tuning import TuningFileError

    try:
        patch = load_patch(args.patch)
        tuning = _tuning_option(args)
        if tuning is not None:
            patch = patch.with_tuning(tuning)
        if not 8000 <= args.samplerate <= 384000:
            raise RenderError(f"samplerate {args.samplerate} Hz outside 8000..384000")
        if args.tail is not None and not 0 <= args.tail <= 600:
            raise RenderError("--tail must be between 0 and 600 seconds")
        if not 0 < args.max_seconds <= 86400:
            raise RenderError("--max-seconds must be more than 0 and at most 86400")
        if patch.values.get("listen.routing", "off") != "off" and not args.quiet:
            warn(f"{args.patch} listens to an audio input, and a render hears silence: "
                 "play it over a file with `spikesynth process PATCH IN -o OUT`")
        # Controllers first: at one time they apply before the notes that start then.
        song_end = 0  # a MIDI file's End of Track (sample)
        events = controller_events(args.cc, args.bend, args.pressure,
                                   bend_range=patch["pitch_bend_range"],
                                   samplerate=args.samplerate)
        if args.midi:
            song = midi_file_song(args.midi, args.samplerate, max_seconds=args.max_seconds,
                                  warn=warn)
            events += song.events
            song_end = song.end
        if args.osc_file:
            events += osc_file_events(args.osc_file, patch, args.samplerate, warn=warn)
        notes = [parse_note(s) for s in args.note]
        if not notes and not args.midi and not args.osc_file:
            notes = [parse_note("C4")]  # a default: one second of middle C
        events += note_events(notes, args.samplerate)
        events, hanging = release_hanging_notes(events, at=song_end)
        if hanging:
            warn(f"{hanging} note(s) never end: released "
                 f"{'at the end of the file' if args.midi else 'after the last event'}")
        out = args.output or f"{Path(args.patch).stem if args.patch else 'default'}.wav"
        programs = None
        if has_program_changes(events):  # the same programs as play: the patch's folder
            programs = load_programs(patch, args.programs,
                                     warn=lambda m: print(f"spikesynth: {m}", file=sys.stderr))
            if tuning is not None:
                programs = [p if p is None else p.with_tuning(tuning) for p in programs]
        seconds = render_to_file(patch, out, events, samplerate=args.samplerate,
                                 subtype=args.subtype, tail=args.tail, seed=args.seed,
                                 progress=not args.quiet, max_seconds=args.max_seconds,
                                 programs=programs, warn=warn)
    except (PatchError, RenderError, TuningFileError) as e:
        return fail(str(e), 1)
    except KeyboardInterrupt:
        return fail("interrupted: nothing written", 130)
    except OSError as e:
        return fail(f"cannot write {args.output or 'the output'}: {e.strerror or e}", 1)
    if not args.quiet:
        print(f"wrote {out} ({seconds:.2f} s, {args.samplerate} Hz, {args.subtype}, "
              f"patch {patch.name})")
    return 0


def _tuning_option(args):
    """``--scl FILE [--kbm FILE]``: a Tuning for every program, or None (their own)."""
    if args.scl is None and args.kbm is None:
        return None
    from .tuning import load_tuning

    return load_tuning(args.scl, args.kbm)


def _add_tuning_options(p) -> None:
    p.add_argument("--scl", metavar="FILE.scl", default=None,
                   help="Scala scale for every note (overrides the patch's tuning: section)")
    p.add_argument("--kbm", metavar="FILE.kbm", default=None,
                   help="Scala keyboard map (with --scl, or alone: 12-TET on the map)")


def _latency(text: str):
    """``--latency``: ``low``, ``high`` or seconds."""
    if text in ("low", "high"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected low, high or a number of seconds, got {text!r}") from None
    if not 0 <= value <= 2:
        raise argparse.ArgumentTypeError("latency must be between 0 and 2 seconds")
    return value


def _cmd_play(args) -> int:
    """``spikesynth play``: one clear message and a non-zero exit for every known failure."""
    import signal

    from .audio import AudioDeviceError, AudioUnavailable
    from .keys import KeysUnavailable
    from .live import LiveError, LiveSession
    from .midi import MidiPortError, MidiUnavailable
    from .patch import PatchError
    from .tuning import TuningFileError

    try:
        tuning = _tuning_option(args)
    except TuningFileError as e:
        return fail(str(e), 1)
    if args.osc is not None and not 0 <= args.osc <= 65535:
        return fail("--osc must be a UDP port from 0 to 65535")
    if args.channel is not None and not 1 <= args.channel <= 16:
        return fail("--channel must be 1-16")
    if not 8000 <= args.samplerate <= 384000:
        return fail(f"samplerate {args.samplerate} Hz outside 8000..384000")
    if not 0 <= args.blocksize <= 8192:
        return fail("--blocksize must be 0 (the device chooses) up to 8192 frames")
    midi_in = None if args.midi_in.lower() == "off" else args.midi_in
    tap = None
    if args.ui:
        try:
            ui = _ui_modules()
        except ImportError as e:
            return fail(str(e), 1)
        tap = ui.OutputTap()
    session = LiveSession(args.patch, samplerate=args.samplerate, blocksize=args.blocksize,
                          latency=args.latency, device=args.device, hostapi=args.hostapi,
                          midi_in=midi_in, midi_api=args.midi_api, channel=args.channel,
                          keys=args.keys, midi_latency_ms=args.midi_latency,
                          status_interval=args.status_interval, callback=args.callback,
                          output_tap=tap, tuning=tuning, osc_port=args.osc,
                          osc_host=args.osc_host, input_device=args.input)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: session.stop())
    face = None
    try:
        try:
            session.open()
        except MidiUnavailable as e:
            hint = ("; or play without MIDI: --midi-in off" if args.keys
                    else "; choose another backend with --midi-api, or use --midi-in off --keys")
            return fail(f"{e}{hint}", 1)
        except (PatchError, AudioDeviceError, AudioUnavailable, MidiPortError,
                KeysUnavailable, LiveError) as e:
            return fail(str(e), 1)
        if args.ui:
            try:
                face = _start_ui(ui, ui.Bridge.live(session, tap), args)
            except ui.UIServerError as e:
                return fail(str(e), 1)
        session.run()
    except KeyboardInterrupt:
        pass
    finally:
        if face is not None:
            face.stop()
        session.close()
        signal.signal(signal.SIGTERM, previous)
        if args.stats_json:  # for benchmarks/soak.py: the final counters and load percentiles
            import json
            from pathlib import Path

            from .fileio import atomic_output

            stats = dict(session.stats(), load_percentiles={
                str(q): v for q, v in session.load_percentiles().items()})
            with atomic_output(args.stats_json) as tmp:
                Path(tmp).write_text(json.dumps(stats, default=str))
    return 0


class _UIModules:
    """The UI's modules, imported only for ``--ui`` and ``ui`` (they need spikesynth[ui])."""

    def __init__(self):
        try:
            from .ui.bridge import Bridge
            from .ui.server import UIServer, UIServerError
            from .ui.tap import OutputTap
        except ImportError as e:
            raise ImportError(f"the UI needs its extra packages ({e.name} is missing): "
                              "pip install 'spikesynth[ui]'") from None
        self.Bridge, self.UIServer, self.UIServerError = Bridge, UIServer, UIServerError
        self.OutputTap = OutputTap


def _ui_modules() -> _UIModules:
    return _UIModules()


class _Face:
    """A running UI: its server and bridge, stopped together."""

    def __init__(self, server, bridge):
        self.server, self.bridge = server, bridge

    def stop(self):
        try:
            self.server.stop()
        finally:
            self.bridge.close()


def _start_ui(ui, bridge, args) -> _Face:
    """Serve the page, print its one ``UI:`` line, open a browser unless ``--no-browser``."""
    try:
        server = ui.UIServer(bridge, host=args.ui_host, port=args.ui_port)
    except BaseException:
        bridge.close()
        raise
    url = server.start()
    print(f"UI: {url}", flush=True)
    if not args.no_browser:
        import webbrowser

        try:
            webbrowser.open(url, new=2)  # returns False (does nothing) where there is none
        except Exception:  # noqa: BLE001 - no browser is not an error
            pass
    return _Face(server, bridge)


def _cmd_ui(args) -> int:
    """``spikesynth ui``: the page for a patch, with an offline preview and no audio."""
    import signal
    import threading

    from .patch import PatchError

    try:
        ui = _ui_modules()
    except ImportError as e:
        return fail(str(e), 1)
    try:
        bridge = ui.Bridge.preview(args.patch, samplerate=args.samplerate)
        face = _start_ui(ui, bridge, args)
    except (PatchError, ui.UIServerError) as e:
        return fail(str(e), 1)
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        face.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _add_ui_options(p, play: bool) -> None:
    if play:
        p.add_argument("--ui", action="store_true",
                       help="serve a page to shape and watch the sound (prints its URL)")
    p.add_argument("--ui-host", default="127.0.0.1", metavar="ADDRESS",
                   help="address the page is served on (default loopback only)")
    p.add_argument("--ui-port", type=int, default=0, metavar="PORT",
                   help="port of the page (default: any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")


def _cmd_devices(args) -> int:
    """``spikesynth devices``: audio outputs (PortAudio) and MIDI inputs (each backend)."""
    from . import audio, midi

    status = 0
    print("audio output devices (* = default of its host API):")
    try:
        print(audio.describe_devices())
    except audio.AudioUnavailable as e:
        print(f"  unavailable: {e}")
        status = 1
    for api in midi.APIS:
        print(f"MIDI input ports ({api}):")
        try:
            with audio.quiet_stderr():  # libasound / libjack print their own failures
                ports = midi.list_ports(api)
        except midi.MidiUnavailable as e:
            print(f"  unavailable: {e}")
            continue
        print("\n".join(f"  {i}: {name}" for i, name in enumerate(ports)) or "  (none)")
    return status


def _cmd_plot(args) -> int:
    from .offline import RenderError, parse_pitch
    from .patch import PatchError, load_patch
    from .plot import PlotError, plot_voice

    try:
        patch = load_patch(args.patch)
        note = parse_pitch(args.note)
        data = plot_voice(patch, args.output, note=note, seconds=args.seconds,
                          current=args.current)
    except (PatchError, RenderError, PlotError) as e:
        return fail(str(e), 1)
    except KeyboardInterrupt:
        return fail("interrupted: nothing written", 130)
    except OSError as e:
        return fail(f"cannot write {args.output}: {e.strerror or e}", 1)
    spikes = sum(len(s) for s in data["spike_trains"])
    print(f"wrote {args.output} ({patch.name}, {data['seconds']:g} s, {spikes} spikes)")
    return 0


def _cmd_cache_dir(args) -> int:
    from ._cache import CACHE, table_cache_dir

    print(CACHE.path)
    if args.verbose:
        print(f"chosen by {CACHE.chosen_by}", file=sys.stderr)
        print(f"prepared tables: {table_cache_dir() or 'off (SPIKESYNTH_TABLE_CACHE)'}",
              file=sys.stderr)
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
    p.add_argument("-o", "--output",
                   help="output file (.wav, .flac, .aiff; default PATCH.wav here)")
    p.add_argument("--note", action="append", default=[], metavar="PITCH[:VEL[:START[:DUR]]]",
                   help="a note: pitch as MIDI number or name (C4 = 60), velocity (100), "
                        "start (0 s), duration (1 s); repeatable")
    p.add_argument("--midi", metavar="FILE.mid", help="render every channel of a MIDI file")
    p.add_argument("--osc-file", metavar="FILE", default=None,
                   help="render a file of size-prefixed OSC packets (play --osc addresses; "
                        "bundle time tags are seconds from the start, as scsynth -N)")
    p.add_argument("--samplerate", type=int, default=48000, metavar="HZ",
                   help="sample rate (default 48000)")
    p.add_argument("--subtype", choices=("PCM_16", "PCM_24", "FLOAT"), default="PCM_24")
    p.add_argument("--tail", type=float, default=None, metavar="SECONDS",
                   help="render this long after the last note ends (default: until silence)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (renders are deterministic)")
    p.add_argument("--programs", metavar="DIR", default=None,
                   help="program change n selects the n-th patch of DIR (default: the "
                        "patch's folder, as play does)")

    p.add_argument("--max-seconds", type=float, default=600.0, metavar="SECONDS",
                   help="refuse a render longer than this (default 600 s)")
    p.add_argument("--cc", action="append", default=[], metavar="NUMBER:VALUE[:TIME]",
                   help="a control change on channel 1 at TIME s (default 0); repeatable")
    p.add_argument("--bend", action="append", default=[], metavar="SEMITONES[:TIME]",
                   help="pitch bend, within the patch's pitch_bend_range; repeatable")
    p.add_argument("--pressure", action="append", default=[], metavar="VALUE[:TIME]",
                   help="channel pressure (aftertouch) 0-127; repeatable")
    p.add_argument("-q", "--quiet", action="store_true")
    _add_tuning_options(p)
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("plot", help="draw a voice: membrane and states, raster, spectrum")
    p.add_argument("patch", nargs="?", help="patch YAML (default: the bundled default patch)")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .svg, .pdf)")
    p.add_argument("--note", default="60", metavar="PITCH", help="MIDI number or name (C4)")
    p.add_argument("--seconds", type=float, default=None, help="render length (s)")
    p.add_argument("--current", type=float, default=None, metavar="I",
                   help="drive the neuron with this constant current instead of the note")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("check", help="validate patch files")
    p.add_argument("patches", nargs="+", metavar="PATCH")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("play", help="play live: MIDI (and --keys) in, sound card out")
    p.add_argument("patch", nargs="?",
                   help="patch YAML (default: the bundled default); the other patches of its "
                        "folder are programs 0, 1, ... in name order")
    p.add_argument("--device", metavar="NAME|INDEX",
                   help="audio output device (see `spikesynth devices`; default: the default)")
    p.add_argument("--hostapi", metavar="NAME", help="audio host API, e.g. JACK, ALSA")
    p.add_argument("--input", metavar="NAME|INDEX|default", default=None,
                   help="audio input a patch with listen: hears (a duplex stream; on JACK "
                        "the synth gets an input port)")
    p.add_argument("--samplerate", type=int, default=48000, metavar="HZ",
                   help="sample rate (default 48000)")
    p.add_argument("--blocksize", type=int, default=64,
                   help="frames per audio callback (0: the device chooses)")
    p.add_argument("--latency", type=_latency, default="low", metavar="low|high|SECONDS",
                   help="output latency asked of the device")
    p.add_argument("--midi-in", default="all", metavar="PORT|all|none|off",
                   help="existing MIDI ports to connect besides our virtual port "
                        "'spikesynth' (none: only it; off: no MIDI at all)")
    p.add_argument("--midi-api", choices=("alsa", "jack"), default="alsa")
    p.add_argument("--midi-latency", type=float, default=None, metavar="MS",
                   help="MIDI arrival-to-sound latency (default: one block + 3 ms)")
    p.add_argument("--channel", type=int, default=None, metavar="N",
                   help="listen to MIDI channel N (1-16) only (default: all)")
    p.add_argument("--keys", action="store_true",
                   help="play from the computer keyboard too (needs a terminal)")
    p.add_argument("--callback", choices=("auto", "compiled", "python"), default="auto",
                   help="audio callback: 'compiled' runs without the GIL, so other Python "
                        "threads cannot delay the sound; 'python' is the fallback that needs "
                        "the GIL; 'auto' (default) uses the compiled one where numba can build "
                        "it. The start line and the status line (rt/py) say which runs")
    p.add_argument("--status-interval", type=float, default=0.25, metavar="SECONDS",
                   help=argparse.SUPPRESS)
    p.add_argument("--stats-json", default=None, help=argparse.SUPPRESS)
    _add_ui_options(p, play=True)
    _add_tuning_options(p)
    p.add_argument("--osc", type=int, default=None, metavar="PORT",
                   help="listen for OSC (/spikesynth/note_on ...) on this UDP port")
    p.add_argument("--osc-host", default="127.0.0.1", metavar="ADDRESS",
                   help="address OSC listens on (default 127.0.0.1: this machine only)")
    p.set_defaults(func=_cmd_play)

    p = sub.add_parser("ui", help="the play page for a patch, offline (no audio device)")
    p.add_argument("patch", nargs="?", help="patch YAML (default: the bundled default patch)")
    p.add_argument("--samplerate", type=int, default=48000, metavar="HZ",
                   help="sample rate (default 48000)")
    _add_ui_options(p, play=False)
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser("devices", help="list audio output devices and MIDI input ports")
    p.set_defaults(func=_cmd_devices)

    p = sub.add_parser("cache-dir", help="print the directory of the compiled-kernel cache")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also say who chose it (NUMBA_CACHE_DIR or spikesynth) and where "
                        "the prepared tables are kept")
    p.set_defaults(func=_cmd_cache_dir)
    cli_ear.add_parsers(sub)
    cli_batch.add_parsers(sub)
    return parser


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt  # a render killed with SIGTERM cleans up like Ctrl-C


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("render", "plot", "listen", "process", "library", "stems", "sweep"):
        import signal

        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    if getattr(args, "midi_latency", None) is not None and not 0 <= args.midi_latency <= 1000:
        return fail("--midi-latency must be between 0 and 1000 ms")
    return args.func(args)


def entry() -> None:
    """The ``spikesynth`` command: :func:`main`, then exit.

    Before exiting, every object is frozen out of the garbage collector's reach: Python's
    final collection would otherwise walk numba's and LLVM's objects for about a second
    (1.2-2.2 s seen from Ctrl-C to exit of ``play``, most of it there) for memory the
    exit gives back anyway. Only here, never in :func:`main`, which tests call in-process.
    """
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
