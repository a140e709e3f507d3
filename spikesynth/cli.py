"""The command line: ``spikesynth render | check | play | ui | devices | plot``.

Top of the import graph.

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

    if args.channel is not None and not 1 <= args.channel <= 16:
        return _fail("--channel must be 1-16")
    if not 8000 <= args.samplerate <= 384000:
        return _fail(f"samplerate {args.samplerate} Hz outside 8000..384000")
    if not 0 <= args.blocksize <= 8192:
        return _fail("--blocksize must be 0 (the device chooses) up to 8192 frames")
    midi_in = None if args.midi_in.lower() == "off" else args.midi_in
    tap = None
    if args.ui:
        try:
            ui = _ui_modules()
        except ImportError as e:
            return _fail(str(e), 1)
        tap = ui.OutputTap()
    session = LiveSession(args.patch, samplerate=args.samplerate, blocksize=args.blocksize,
                          latency=args.latency, device=args.device, hostapi=args.hostapi,
                          midi_in=midi_in, midi_api=args.midi_api, channel=args.channel,
                          keys=args.keys, midi_latency_ms=args.midi_latency,
                          status_interval=args.status_interval, output_tap=tap)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: session.stop())
    face = None
    try:
        try:
            session.open()
        except MidiUnavailable as e:
            hint = ("; or play without MIDI: --midi-in off" if args.keys
                    else "; choose another backend with --midi-api, or use --midi-in off --keys")
            return _fail(f"{e}{hint}", 1)
        except (PatchError, AudioDeviceError, AudioUnavailable, MidiPortError,
                KeysUnavailable, LiveError) as e:
            return _fail(str(e), 1)
        if args.ui:
            try:
                face = _start_ui(ui, ui.Bridge.live(session, tap), args)
            except ui.UIServerError as e:
                return _fail(str(e), 1)
        session.run()
    except KeyboardInterrupt:
        pass
    finally:
        if face is not None:
            face.stop()
        session.close()
        signal.signal(signal.SIGTERM, previous)
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
        return _fail(str(e), 1)
    try:
        bridge = ui.Bridge.preview(args.patch, samplerate=args.samplerate)
        face = _start_ui(ui, bridge, args)
    except (PatchError, ui.UIServerError) as e:
        return _fail(str(e), 1)
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
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted: nothing written", 130)
    except OSError as e:
        return _fail(f"cannot write {args.output}: {e.strerror or e}", 1)
    spikes = sum(len(s) for s in data["spike_trains"])
    print(f"wrote {args.output} ({patch.name}, {data['seconds']:g} s, {spikes} spikes)")
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
    p.add_argument("--samplerate", type=int, default=48000)
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
    p.add_argument("--status-interval", type=float, default=0.25, metavar="SECONDS",
                   help=argparse.SUPPRESS)
    _add_ui_options(p, play=True)
    p.set_defaults(func=_cmd_play)

    p = sub.add_parser("ui", help="the play page for a patch, offline (no audio device)")
    p.add_argument("patch", nargs="?", help="patch YAML (default: the bundled default patch)")
    p.add_argument("--samplerate", type=int, default=48000)
    _add_ui_options(p, play=False)
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser("devices", help="list audio output devices and MIDI input ports")
    p.set_defaults(func=_cmd_devices)
    return parser


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt  # a render killed with SIGTERM cleans up like Ctrl-C


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("render", "plot"):
        import signal

        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    if getattr(args, "midi_latency", None) is not None and not 0 <= args.midi_latency <= 1000:
        return _fail("--midi-latency must be between 0 and 1000 ms")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
