"""The command line: ``spikesynth render | check | play | ui | devices | plot | listen | process |
library | stems | sweep | cache-dir``.

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


def _warn(message: str) -> None:
    print(f"spikesynth: warning: {message}", file=sys.stderr)


def _cmd_render(args) -> int:
    from .offline import (
        RenderError,
        controller_events,
        has_program_changes,
        load_programs,
        midi_file_events,
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
        # Controllers first: at one time they apply before the notes that start then.
        events = controller_events(args.cc, args.bend, args.pressure,
                                   bend_range=patch["pitch_bend_range"],
                                   samplerate=args.samplerate)
        if args.midi:
            events += midi_file_events(args.midi, args.samplerate,
                                       max_seconds=args.max_seconds, warn=_warn)
        if args.osc_file:
            events += osc_file_events(args.osc_file, patch, args.samplerate, warn=_warn)
        notes = [parse_note(s) for s in args.note]
        if not notes and not args.midi and not args.osc_file:
            notes = [parse_note("C4")]  # a default: one second of middle C
        events += note_events(notes, args.samplerate)
        events, hanging = release_hanging_notes(events)
        if hanging:
            _warn(f"{hanging} note(s) never end: released after the last event")
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
                                 programs=programs)
    except (PatchError, RenderError, TuningFileError) as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted: nothing written", 130)
    except OSError as e:
        return _fail(f"cannot write {args.output or 'the output'}: {e.strerror or e}", 1)
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
        return _fail(str(e), 1)
    if args.osc is not None and not 0 <= args.osc <= 65535:
        return _fail("--osc must be a UDP port from 0 to 65535")
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


def _cmd_cache_dir(args) -> int:
    from ._cache import CACHE, table_cache_dir

    print(CACHE.path)
    if args.verbose:
        print(f"chosen by {CACHE.chosen_by}", file=sys.stderr)
        print(f"prepared tables: {table_cache_dir() or 'off (SPIKESYNTH_TABLE_CACHE)'}",
              file=sys.stderr)
    return 0


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
            raise RenderError(f"{args.input}: {e}") from None
        with atomic_output(npz) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **ear.result_arrays(result))
        if not args.no_picture:
            ear.write_listen_figure(result, png, title=Path(args.input).name)
    except (RenderError, PlotError) as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except OSError as e:
        return _fail(f"cannot write {out}: {e.strerror or e}", 1)
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
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted: nothing written", 130)
    except OSError as e:
        return _fail(f"cannot write {args.output}: {e.strerror or e}", 1)
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

# -- library / stems / sweep (spikesynth.batch) -------------------------------------------
def _say(message):
    print(message, file=sys.stderr)


def _run_batch(args, work) -> int:
    """Open the runner for ``--scheduler`` / ``--workers``, run ``work(runner)``, report errors."""
    from .batch import BatchError, open_runner
    from .offline import RenderError
    from .patch import PatchError
    from .sfz import SfzError

    try:
        with open_runner(args.scheduler, args.workers, say=None if args.quiet else _say) \
                as runner:
            if not args.quiet:
                _say(f"rendering {runner.description}")
            return work(runner)
    except (BatchError, PatchError, RenderError, SfzError) as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted: only complete files were written (a library rerun "
                     "resumes)", 130)
    except OSError as e:
        return _fail(f"cannot write {args.output}: {e.strerror or e}", 1)


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
        if not args.quiet:
            print(f"{args.output}: {report.total} samples, {len(report.rendered)} rendered, "
                  f"{report.up_to_date} up to date; "
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
    p.add_argument("--samplerate", type=int, default=48000)
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


def _add_batch_parsers(sub):
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
    p.add_argument("--osc-file", metavar="FILE", default=None,
                   help="render a file of size-prefixed OSC packets (play --osc addresses; "
                        "bundle time tags are seconds from the start, as scsynth -N)")
    p.add_argument("--samplerate", type=int, default=48000)
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
    p.add_argument("--samplerate", type=int, default=48000)
    _add_ui_options(p, play=False)
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser("devices", help="list audio output devices and MIDI input ports")
    p.set_defaults(func=_cmd_devices)

    p = sub.add_parser("cache-dir", help="print the directory of the compiled-kernel cache")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also say who chose it (NUMBA_CACHE_DIR or spikesynth) and where "
                        "the prepared tables are kept")
    p.set_defaults(func=_cmd_cache_dir)
    _add_listen_parser(sub)
    _add_process_parser(sub)
    _add_batch_parsers(sub)
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
        return _fail("--midi-latency must be between 0 and 1000 ms")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
