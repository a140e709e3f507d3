"""The play session: patch programs, MIDI and keyboard input, the audio host, hot reload, status.

:class:`LiveSession` wires the pieces of ``spikesynth play`` together::

    MIDI ports ──(MIDI thread: stamp, validate)──┐
    --keys terminal ──(main thread)──────────────┴─→ EventRing ─→ audio callback ─→ sound card
                                                        (compiled, no GIL; see spikesynth.audio)

Threads
-------
* main: :meth:`LiveSession.open`, :meth:`~LiveSession.run` (the status line, or the
  computer keyboard with ``--keys``), :meth:`~LiveSession.close`;
* audio: :class:`spikesynth.audio.AudioHost`'s callback;
* MIDI: :class:`spikesynth.midi.MidiInput`'s thread(s), which call :meth:`ProgramRing.push`;
* ``spikesynth-reload``: the patch watcher (:meth:`LiveSession._watch`);
* ``spikesynth-status`` (``--keys`` only): the status line, since main reads the keys.

Programs
--------
Every ``*.yaml`` file in the folder of the patch being played is a program, in name order
(:func:`spikesynth.patch.list_patches`): program change *n* (0-based) selects the *n*-th.
All of them are loaded, validated and prepared (:meth:`Synth.prepare_patch`) at start-up and
handed to the engine (:meth:`Synth.set_programs`; the compiled callback holds a row per
program). Program change is the engine's own event, as in ``render --midi``: it travels
through the ring like a note and takes effect where a note arriving at that moment would,
at arrival + MIDI latency, at its sample offset inside the block: every voice fades out over
4 ms, then the new program plays the keys still held; notes before it in the stream play on
the old program, notes after it (also those arriving during the fade) on the new one.
:class:`ProgramRing`, which :class:`MidiInput` pushes into instead of the ring, only keeps
the session's books on the MIDI thread (the program that messages sent from now on meet:
the synth's parameter view follows it, for OSC and UI parameters). A program number beyond
the folder's files, or a file that did not validate, is ignored and counted. Files added to
the folder later are not programs until the next start.

Hot reload
----------
The watcher polls every program file's (mtime, size, content hash) every
``reload_interval`` s. A changed file is re-read once its signature has been stable for one
poll (an editor that writes in several steps is not caught half-way), parsed and validated
in a child process with time and memory limits (:mod:`spikesynth.patchworker`), so a change
applies within about two polls plus the round trip and the prepare time: well under 0.5 s.
An empty file is an error like any invalid one; the watcher survives any exception. A valid
file is prepared and, if it is the current program, switched to; an invalid one prints
exactly ``spikesynth check``'s message (``spikesynth: error: FILE:LINE: key: what was
expected``) and the old patch stays.

Garbage collection is frozen and disabled while playing, and the interpreter's thread switch
interval lowered: the compiled callback needs neither, but the Python fallback needs the GIL
for its few lines, and the MIDI thread's stamps are better for it too. Both are restored by
:meth:`LiveSession.close`.

Status line
-----------
:func:`format_status` fits the line to the terminal's width (``shutil.get_terminal_size``,
read at each refresh): the full line, else a short form, else the short form cut, so a
refresh never wraps and never adds a line. It says which audio callback runs (``rt``:
compiled, GIL-free; ``py``: the Python fallback).
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from .events import RING_WRITE, EventRing
from .patch import DEFAULT_PATCH, MAX_PATCH_BYTES, PatchError, list_patches, load_patch
from .startup import PLAY_AFTER_S, DeferredSignals, SlowStartNotice

__all__ = ["LiveError", "LiveSession", "ProgramRing", "format_status", "status_width"]

#: GIL switch interval while playing (s); Python's default is 5 ms, longer than a block.
SWITCH_INTERVAL = 0.0005
_COMPILING = ("compiling the engine of every program and the audio callback: the first start "
              "after an install or an update takes a few minutes of CPU; later starts load it "
              "in a second or two")
#: The JACK MIDI client's name (``--midi-api jack``): the audio client is ``spikesynth``
#: (:data:`spikesynth.audio.CLIENT_NAME`) and JACK client names are unique.
MIDI_JACK_CLIENT = "spikesynth-midi"
LOAD_BIN = 0.001  # callback-load histogram bin (fraction of the block)
LOAD_BINS = 20001  # up to 20 blocks; the last bin holds everything above


class LiveError(RuntimeError):
    """A user-level problem that stops ``play`` (the message says what and what to do)."""


class ProgramRing:
    """The ring as :class:`~spikesynth.midi.MidiInput` sees it: it passes every message on,
    and tells the session of each program change first (the engine switches, at the
    message's sample offset; the session keeps its books).

    Thread: :meth:`push` on the MIDI thread (MidiInput's single producer, under its lock);
    the counters from any thread.

    Parameters
    ----------
    ring : spikesynth.events.EventRing
        The real ring; every message is passed on to it unchanged.
    on_program : callable
        ``on_program(number)`` with the program number 0–127; must be quick and must not
        block (it runs on the MIDI thread).
    """

    def __init__(self, ring, on_program):
        self.ring = ring
        self.on_program = on_program

    def push(self, time_ns: int, message) -> bool:
        """Pass ``message`` to the ring; note it first if it is a program change."""
        try:
            if (len(message) == 2 and 0xC0 <= message[0] <= 0xCF
                    and 0 <= message[1] < 0x80):
                self.on_program(int(message[1]))
        except (TypeError, IndexError, ValueError):
            pass  # malformed: the ring validates and counts it
        return self.ring.push(time_ns, message)

    @property
    def header(self):
        """The ring's header (int64 array, see :mod:`spikesynth.events`)."""
        return self.ring.header

    @property
    def capacity(self) -> int:
        return self.ring.capacity

    @property
    def rejected(self) -> int:
        """Malformed messages the ring refused."""
        return self.ring.rejected

    @property
    def dropped(self) -> int:
        """Messages dropped because the ring was full."""
        return self.ring.dropped

    def pending(self) -> int:
        """Messages waiting in the ring."""
        return self.ring.pending()


def format_status(s: dict, width: int | None = None, extra: str = "") -> str:
    """One status line from :meth:`LiveSession.stats`, at most ``width`` characters.

    Thread: any (pure). The full form when it fits, else a short one, else the short one cut
    at ``width``; ``extra`` (the keyboard's state) is appended when there is room.
    """
    kind = "rt" if s.get("callback") == "compiled" else "py"
    dropped = f" {s['midi_dropped']} dropped" if s.get("midi_dropped") else ""
    full = (f"voices {s['voices_active']:>3}/{s['voices']:<3} "
            f"load {100 * s['load_mean']:5.1f}% mean {100 * s['load_max']:5.1f}% worst "
            f"({kind})  xruns {s['xruns']}  late {s.get('overruns', 0)}  steals {s['steals']}  "
            f"midi {s['midi_received']} in {s['midi_rejected']} rejected{dropped}  "
            f"prog {s['program']} {s['patch']}")
    if extra:
        full += "  | " + extra
    if width is None or len(full) <= width:
        return full
    bad = s["midi_rejected"] + s.get("midi_dropped", 0)
    short = (f"v{s['voices_active']}/{s['voices']} {100 * s['load_mean']:.0f}%"
             f"/{100 * s['load_max']:.0f}% {kind} x{s['xruns']} m{s['midi_received']}"
             f"{'!' + str(bad) if bad else ''} p{s['program']} {s['patch']}")
    if extra and len(short) + 3 + len(extra) <= width:
        short += " | " + extra
    return short[:max(width, 0)]


def status_width(stream) -> int | None:
    """Columns available for the in-place status line on ``stream`` (None: not a terminal).

    One less than the terminal's width: a line that fills the last column makes some
    terminals wrap at the next character. Thread: any.
    """
    try:
        if not stream.isatty():
            return None
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = shutil.get_terminal_size((0, 0)).columns
    if columns <= 0:  # a terminal that does not say its size (a bare pty): no limit
        return None
    return max(columns - 1, 10)


class LiveSession:
    """``spikesynth play``: everything between the MIDI ports and the sound card.

    Thread: main (see the module docstring for the other threads).

    Parameters
    ----------
    patch : str or Path, optional
        The patch to start with (the bundled default when None); its folder's files are the
        programs.
    samplerate, blocksize, latency, device, hostapi
        Audio settings, see :class:`spikesynth.audio.AudioHost` and
        :func:`spikesynth.audio.resolve_output_device`.
    input_device : str or int, optional
        ``play --input``: an audio input (see :func:`spikesynth.audio.resolve_input_device`)
        whose first channel a patch with ``listen:`` hears; None: output only.
    midi_in : str or None
        Existing MIDI ports to connect (``all``, ``none``, a name or an index; see
        :func:`spikesynth.midi.resolve_ports`). None: open no MIDI at all.
    midi_api : {"alsa", "jack"}
    channel : int, optional
        1–16: listen to that channel only (MIDI and ``--keys``). None: omni.
    keys : bool
        Play from the computer keyboard (the terminal on standard input).
    midi_latency_ms : float, optional
        Arrival-to-sound latency for MIDI; default one block + 3 ms.
    status : file
        Where the status line and messages go (standard error).
    status_interval : float
        Seconds between status lines; on a terminal the line is redrawn in place (``\\r``),
        otherwise each is a new line.
    reload_interval : float
        Seconds between patch-file polls.
    callback : {"auto", "compiled", "python"}
        The audio callback (see :class:`spikesynth.audio.AudioHost`).
    """

    def __init__(self, patch=None, *, samplerate: int = 48000, blocksize: int = 64,
                 latency="low", device=None, hostapi: str | None = None,
                 midi_in: str | None = "all", midi_api: str = "alsa",
                 channel: int | None = None, keys: bool = False,
                 midi_latency_ms: float | None = None, status=None,
                 status_interval: float = 0.25, reload_interval: float = 0.1,
                 callback: str = "auto", output_tap=None, tuning=None,
                 osc_port: int | None = None, osc_host: str = "127.0.0.1", input_device=None):
        #: Optional :class:`spikesynth.ui.tap.OutputTap`: a copy of each output block (UI).
        self.output_tap = output_tap
        self.osc_port = osc_port  # UDP port for OSC (None: no OSC), see spikesynth.osc
        self.osc_host = osc_host
        self.osc = None
        self.tuning = tuning  # a Tuning for every program (--scl/--kbm), or None: their own
        self.patch_path = Path(patch) if patch is not None else DEFAULT_PATCH
        self.samplerate = int(samplerate)
        self.blocksize = int(blocksize)
        self.latency = latency
        self.device = device
        self.input_device = input_device  # play --input: a duplex stream (None: output only)
        self.hostapi = hostapi
        self.midi_in = midi_in
        self.midi_api = midi_api
        self.channel = channel
        self.keys = keys
        self.midi_latency_ms = midi_latency_ms
        self.status = status if status is not None else sys.stderr
        self.status_interval = float(status_interval)
        self.reload_interval = float(reload_interval)
        self.callback = callback
        try:
            self.tty = self.status.isatty()
        except (AttributeError, ValueError):
            self.tty = False

        self.synth = None
        self.ring = None
        self.audio = None
        self.midi = None
        self.keyboard = None
        #: Program files in program-number order, and their prepared patches (None: invalid).
        self.paths: list[Path] = []
        self.prepared: list = []
        self.program = 0
        self.program_changes = 0  # applied
        self.program_ignored = 0  # out of range or invalid file
        self.reloads = 0
        self.reload_errors = 0
        self._program_lock = threading.Lock()  # program switches: MIDI vs reload thread
        self._print_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gc_was_enabled = None
        self._switch_interval = None
        self._line_open = False
        self._reported_program = 0
        self._final: dict = {}  # the audio host's last counters, kept after close
        #: Callback loads of the whole run, in bins of LOAD_BIN of the block (main thread).
        self.load_histogram = np.zeros(LOAD_BINS, dtype=np.int64)
        self._loads_seen = 0

    # -- start-up (main) ----------------------------------------------------------------
    def open(self) -> LiveSession:
        """Load the programs, prepare the synth, open MIDI and audio, start. Thread: main.

        Raises :class:`~spikesynth.patch.PatchError`, :class:`LiveError`,
        :class:`spikesynth.audio.AudioUnavailable` / ``AudioDeviceError``,
        :class:`spikesynth.midi.MidiUnavailable` / ``MidiPortError``,
        :class:`spikesynth.keys.KeysUnavailable`; whatever was opened is closed again.
        """
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self):
        from . import audio

        first = self._load_patch(self.patch_path)  # PatchError: nothing else to do
        # Audio and MIDI settings next: a missing device, MIDI backend or port fails before
        # anything slow happens.
        device = audio.resolve_output_device(self.device, self.hostapi)
        audio.check_output_settings(device, self.samplerate)
        input_device = (None if self.input_device is None
                        else audio.resolve_input_device(self.input_device, self.hostapi))
        if self.midi_in is not None and not self.keys:  # with --keys: keyboard only instead
            from .midi import list_ports, resolve_ports

            with audio.quiet_stderr():
                resolve_ports(self.midi_in, list_ports(self.midi_api))
        # The programs' tables, the engine and the callback compile (or load) from here to
        # the audio host: a slow start says so, and a Ctrl-C or SIGTERM then waits for the
        # compile to end (spikesynth.startup).
        with DeferredSignals(), SlowStartNotice(
                lambda text: self._message(f"spikesynth: note: {text}"), _COMPILING,
                PLAY_AFTER_S):
            self._load_programs(first)
            self._prepare_synth(first)
            initial = self.program
            self.ring = EventRing(4096)
            lock = threading.Lock()
            self.synth.live_input = (self.ring, lock)  # set_param (UI, OSC) through the ring
            if self.midi_in is not None:
                from .midi import MidiInput, MidiUnavailable

                try:
                    with audio.quiet_stderr():  # the backend's noise; failures raise with reasons
                        self.midi = MidiInput(ProgramRing(self.ring, self._on_program),
                                              api=self.midi_api, connect=self.midi_in,
                                              channel=self.channel, lock=lock,
                                              **({"client_name": MIDI_JACK_CLIENT}
                                                 if self.midi_api == "jack" else {}))
                except MidiUnavailable as e:
                    if not self.keys:
                        raise
                    self.midi = None
                    self._message(f"spikesynth: note: MIDI input is off ({e}); "
                                  "playing from the keyboard only")
            if self.keys:
                from .keys import KeyboardInput

                self.keyboard = KeyboardInput(self.ring, lock=lock,
                                              channel=self.channel or 1)
            if self.osc_port is not None:
                from .osc import OscInput, OscUnavailable

                try:
                    self.osc = OscInput(self.ring, self.synth, self.osc_port, self.osc_host, lock)
                except (OSError, OscUnavailable) as e:
                    raise LiveError(str(e)) from None
            latency_ns = (None if self.midi_latency_ms is None
                          else int(self.midi_latency_ms * 1e6))
            with self._program_lock:  # a program change meanwhile: the view follows it here
                self.audio = audio.AudioHost(self.synth, self.ring, samplerate=self.samplerate,
                                             blocksize=self.blocksize, latency=self.latency,
                                             device=device, midi_latency_ns=latency_ns,
                                             callback=self.callback,
                                             input_device=input_device,
                                             output_tap=self.output_tap,
                                             probe=self.output_tap is not None)
                if self.program != initial:  # sent before the stream existed: still in the ring
                    self.audio.follow(self.prepared[self.program])
        self._gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.audio.start()
        self._start_thread(self._watch, "spikesynth-reload")
        self._describe_start(device)

    def _prepare_synth(self, first):
        from .engine import Synth

        # Every voice mode compiled in: a reload may change a patch's voice_mode.
        self.synth = Synth(first, samplerate=self.samplerate,
                           max_block=max(4096, self.blocksize), every_voice_mode=True)
        self.synth.use_patch(self.prepared[self.program])
        # Program change is the engine's event (at its sample offset, as offline); the
        # compiled callback holds a row of each program.
        self.synth.set_programs(self.prepared, self.program)
        self.synth.warm_up()  # compiled kernels (or the cache) before the stream starts

    def compile_engine(self, input_channels: int = 0, probe: bool = False) -> None:
        """Compile (or load from the cache) what :meth:`open` would: the engine for every
        program and the compiled audio callback, without audio, MIDI or threads; a later
        ``play`` of the same folder then starts from the cache. ``input_channels``: 1 for a
        listening patch's duplex stream; ``probe``: the callback with the UI's live probe
        (``play --ui``). Thread: main."""
        from . import rtengine

        first = self._load_patch(self.patch_path)
        self._load_programs(first)
        self._prepare_synth(first)
        rtengine.EngineCallback(self.synth, EventRing(16), samplerate=self.samplerate,
                                latency_ns=0, resync_ns=10**7, input_channels=input_channels,
                                probe=probe)

    def _load_patch(self, path):
        """A patch file, in the session's tuning when one was given (``--scl``)."""
        patch = load_patch(path)
        return patch if self.tuning is None else patch.with_tuning(self.tuning)

    def _load_programs(self, first):
        folder = self.patch_path.resolve().parent
        self.paths = list_patches(folder)
        me = self.patch_path.resolve()
        if me not in [p.resolve() for p in self.paths]:  # e.g. a .yml file: program 0 alone
            self.paths = [me]
        self.prepared = [None] * len(self.paths)
        self._signatures = [self._signature(p) for p in self.paths]
        from .engine import prepare

        for i, path in enumerate(self.paths):
            if path.resolve() == me:
                self.program = i
                self.prepared[i] = prepare(first, self.samplerate)
                continue
            try:
                self.prepared[i] = prepare(self._load_patch(path), self.samplerate)
            except PatchError as e:
                self._message(f"spikesynth: warning: program {i} unusable: {e}")
        self._reported_program = self.program

    def _describe_start(self, device):
        from .audio import _sounddevice

        sd = _sounddevice()
        info = sd.query_devices(device)
        api = sd.query_hostapis(info["hostapi"])["name"]
        midi = "no MIDI" if self.midi is None else (
            f"MIDI in {self.midi_api}:{self.midi.port_name}"
            + (f" + {', '.join(self.midi.connected)}" if self.midi.connected else ""))
        if self.osc is not None:
            midi += f"; OSC on {self.osc.host}:{self.osc.port}"
        self._message(
            f"spikesynth: playing {self.audio.patch.name} ({self.paths[self.program].name}, "
            f"program {self.program} of {len(self.paths)}) on {info['name']} [{api}], "
            f"{self.samplerate} Hz, block {self.blocksize}, output latency "
            f"{1e3 * self.audio.output_latency:.1f} ms + look-ahead "
            f"{1e3 * self.audio.synth.latency / self.samplerate:.1f} ms, "
            + (f"input latency {1e3 * self.audio.input_latency:.1f} ms, "
               if self.input_device is not None else "")
            + "MIDI latency "
            f"{self.audio.midi_latency_ns / 1e6:.2f} ms; {midi}; {self._callback_text()}. "
            "Ctrl-C stops.")

    def _callback_text(self) -> str:
        if self.audio.callback_kind == "compiled":
            probe = ", with the UI's probe" if self.audio.probe is not None else ""
            return f"audio callback compiled (GIL-free{probe})"
        return f"audio callback Python ({self.audio.callback_note or 'fallback'})"

    def _start_thread(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- MIDI thread --------------------------------------------------------------------
    def _on_program(self, number: int) -> None:
        """Note a program change sent now. Thread: MIDI (via :class:`ProgramRing`).

        The engine switches at the message's sample offset (it is in the ring); here the
        session's program and the synth's parameter view follow it at once, since every
        message sent after it meets the new program.
        """
        with self._program_lock:
            if number >= len(self.prepared) or self.prepared[number] is None:
                self.program_ignored += 1
                return
            self.program = number
            self.program_changes += 1
            if self.audio is not None:
                self.audio.follow(self.prepared[number])

    @staticmethod
    def _signature(path):
        """(mtime, size, content hash) of a program file, None when it cannot be read."""
        try:
            st = os.stat(path)
            digest = None
            if st.st_size <= MAX_PATCH_BYTES:  # larger ones are refused unread by the worker
                with open(path, "rb") as f:
                    digest = hashlib.blake2b(f.read(MAX_PATCH_BYTES + 1),
                                             digest_size=16).digest()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, digest)

    def _watch(self):
        """Poll the program files and reload changed ones. Thread: ``spikesynth-reload``.

        Survives anything: an exception is reported (and counted in ``reload_errors``) and
        the watching goes on. A changed file is read once it has been the same (time,
        size and content) for two polls; it is parsed and validated in a
        :class:`~spikesynth.patchworker.PatchWorker` child process, so neither a slow nor
        a huge file holds this process's GIL; only a validated patch is prepared here.
        """
        from .patchworker import PatchWorker

        worker = PatchWorker()
        try:
            worker.start()
        except Exception as e:  # no child processes here: validate in this process
            self._message(f"spikesynth: warning: hot reload validates in-process ({e})")
            worker = None
        pending: dict[int, tuple] = {}  # program -> signature seen changing
        try:
            while not self._stop.wait(self.reload_interval):
                try:
                    self._poll_programs(pending, worker)
                except Exception as e:
                    self.reload_errors += 1
                    self._message(f"spikesynth: error: hot reload: {type(e).__name__}: {e} "
                                  f"(still watching)")
        finally:
            if worker is not None:
                worker.close()

    def _poll_programs(self, pending, worker):
        for i, path in enumerate(self.paths):
            sig = self._signature(path)
            if sig == self._signatures[i] and i not in pending:
                continue
            if pending.get(i) != sig:  # still changing (or a first sighting): wait a poll
                pending[i] = sig
                continue
            del pending[i]
            self._signatures[i] = sig
            if sig is None:
                continue  # removed (an editor's rename): the next version is read
            self._reload(i, path, worker)

    def _reload(self, i, path, worker=None):
        if worker is not None:
            patch, error = worker.load(path)
        else:
            try:
                patch, error = load_patch(path), None
            except PatchError as e:
                patch, error = None, str(e)
        if error is None and self.tuning is not None:  # --scl/--kbm: every program's tuning
            patch = patch.with_tuning(self.tuning)
        if error is not None:
            self.reload_errors += 1
            self._message(f"spikesynth: error: {error}")  # exactly as `spikesynth check`
            return
        prepared = self.synth.prepare_patch(patch)
        with self._program_lock:
            current = i == self.program
            if self.audio is not None:  # the callback's row first, then the engine's bank
                if not self.audio.set_program(i, prepared):  # the old version plays on
                    self.reload_errors += 1
                    self._message(f"spikesynth: error: {path}: not taken by the running "
                                  f"stream (started without a {patch['model']} voice of "
                                  "this kind, or stopped); restart play to hear it")
                    return
                if current:
                    self.audio.follow(prepared)
            elif current and self.synth is not None:  # no stream (yet): the synth itself
                self.synth.use_patch(prepared)
            self.prepared[i] = prepared
            self.synth.set_programs(self.prepared)  # program change to it: this one
        self.reloads += 1
        self._message(f"spikesynth: reloaded {path}"
                      + (" (playing)" if current else f" (program {i})"))

    # -- status (main, or spikesynth-status with --keys) ---------------------------------
    @property
    def playing(self) -> int:
        """The program the engine plays (it switches at the program change's sample offset,
        a MIDI latency and the fade after :attr:`program`). Thread: any."""
        return self.audio.program if self.audio is not None else self.program

    def stats(self) -> dict:
        """Everything the status line shows, and more. Thread: any (reads only)."""
        s = dict(self.synth.stats()) if self.synth is not None else {}
        s.update(self.audio.stats() if self.audio is not None else self._final)
        ring = self.ring
        patch = self._patch()
        s["voices"] = int(patch["voices"]) if patch is not None else 0
        s["midi_received"] = int(ring.header[RING_WRITE]) if ring is not None else 0
        s["midi_rejected"] = ring.rejected if ring is not None else 0
        s["midi_dropped"] = ring.dropped if ring is not None else 0
        s["midi_filtered"] = self.midi.filtered if self.midi is not None else 0
        s["osc_received"] = self.osc.received if self.osc is not None else 0
        s["osc_malformed"] = self.osc.malformed if self.osc is not None else 0
        s["program"] = self.playing
        s["patch"] = patch.name if patch is not None else ""
        s["program_changes"] = self.program_changes
        s["program_ignored"] = self.program_ignored
        s["reloads"] = self.reloads
        s["reload_errors"] = self.reload_errors
        return s

    def _patch(self):
        """The patch being played (the audio thread's, once it has switched). Thread: main."""
        audio = self.audio
        if audio is not None:
            return audio.patch
        return self.synth.patch if self.synth is not None else None

    def _message(self, text: str) -> None:
        """Print a line, keeping the in-place status line intact. Thread: any but audio."""
        with self._print_lock:
            try:
                if self._line_open:
                    self.status.write("\r\x1b[K")
                self.status.write(text + "\n")
                self._line_open = False
                self.status.flush()
            except (OSError, ValueError):
                pass

    def show_status(self) -> None:
        """Print the status line once. Thread: main or ``spikesynth-status``."""
        playing = self.playing
        if playing != self._reported_program and 0 <= playing < len(self.prepared):
            self._reported_program = playing
            with self._program_lock:  # a change sent past ProgramRing (OSC): books, view
                if playing != self.program and self.prepared[playing] is not None:
                    self.program = playing
                    if self.audio is not None:
                        self.audio.follow(self.prepared[playing])
            name = self.prepared[playing][0].name
            self._message(f"spikesynth: program {playing}: {name} "
                          f"({self.paths[playing].name})")
        extra = self.keyboard.mapper.status() if self.keyboard is not None else ""
        width = status_width(self.status) if self.tty else None
        line = format_status(self.stats(), width, extra)
        with self._print_lock:
            try:
                if self.tty:
                    self.status.write("\r\x1b[K" + line)
                    self._line_open = True
                else:
                    self.status.write(line + "\n")
                self.status.flush()
            except (OSError, ValueError):
                pass

    def _status_loop(self):
        while not self._stop.wait(self.status_interval):
            self._collect_loads()
            self.show_status()

    def _collect_loads(self) -> None:
        """Add the callbacks since the last call to :attr:`load_histogram`. Thread: the status
        loop's (main or ``spikesynth-status``). Callbacks beyond the host's load history
        (87 s at 64 frames, 48 kHz) between two calls are lost, and counted as not seen."""
        audio = self.audio
        if audio is None:
            return
        count = audio.stats()["callbacks"]
        loads = audio.loads()  # the last min(count, history) loads, by callback index
        history = len(loads)
        new = min(count - self._loads_seen, history)
        if new <= 0:
            return
        idx = np.arange(count - new, count) % history
        bins = np.minimum((loads[idx] / LOAD_BIN).astype(np.int64), LOAD_BINS - 1)
        self.load_histogram += np.bincount(bins, minlength=LOAD_BINS)
        self._loads_seen = count

    def load_percentiles(self, quantiles=(0.5, 0.9, 0.99, 0.999, 1.0)) -> dict:
        """Callback load percentiles of the whole run so far (upper bin edges, fractions of
        the block), from :attr:`load_histogram`. Thread: main."""
        total = int(self.load_histogram.sum())
        if total == 0:
            return {}
        cumulative = np.cumsum(self.load_histogram)
        return {q: float((np.searchsorted(cumulative, q * total) + 1) * LOAD_BIN)
                for q in quantiles}

    def run(self) -> None:
        """Play until :meth:`stop`, Ctrl-C (KeyboardInterrupt propagates) or, with ``--keys``,
        the quit key. Thread: main."""
        if self.keyboard is not None:
            from .keys import HELP

            self._message(HELP)
            self._start_thread(self._status_loop, "spikesynth-status")
            self.keyboard.run()
        else:
            self._status_loop()

    def stop(self) -> None:
        """Make :meth:`run` return soon. Thread: any (also a signal handler)."""
        self._stop.set()
        if self.keyboard is not None:
            self.keyboard.stop()

    # -- shutdown (main) ----------------------------------------------------------------
    def close(self) -> None:
        """Stop the threads, the stream and the MIDI ports; restore GC. Idempotent.

        Thread: main.
        """
        self._stop.set()
        if self.keyboard is not None:
            self.keyboard.stop()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(2.0)
        self._threads = []
        audio, self.audio = self.audio, None
        midi, self.midi = self.midi, None
        osc, self.osc = self.osc, None
        if osc is not None:
            osc.close()
        try:
            if midi is not None:
                midi.close()
        finally:
            try:
                if audio is not None:
                    audio.close()
                    self.audio = audio  # the last callbacks' loads, then the counters
                    self._collect_loads()
                    self.audio = None
                    self._final = audio.stats()
            finally:
                if self._switch_interval is not None:
                    sys.setswitchinterval(self._switch_interval)
                    self._switch_interval = None
                if self._gc_was_enabled is not None:
                    gc.unfreeze()
                    if self._gc_was_enabled:
                        gc.enable()
                    self._gc_was_enabled = None
                if self._line_open:
                    self._message("")

    def __enter__(self) -> LiveSession:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
