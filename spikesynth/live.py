"""The play session: patch programs, MIDI and keyboard input, the audio host, hot reload, status.

:class:`LiveSession` wires the pieces of ``spikesynth play`` together::

    MIDI ports ──(MIDI thread: stamp, validate)──┐
    --keys terminal ──(main thread)──────────────┼─→ EventRing ─→ audio callback ─→ sound card
                                                 ┘      (Synth.process_ring, one nogil call)

Threads
-------
* main: :meth:`LiveSession.open`, :meth:`~LiveSession.run` (the status line, or the
  computer keyboard with ``--keys``), :meth:`~LiveSession.close`;
* audio: :class:`spikesynth.audio.AudioHost`'s callback;
* MIDI: :class:`spikesynth.midi.MidiInput`'s thread(s), which push into the ring;
* ``spikesynth-reload``: the patch watcher (:meth:`LiveSession._watch`);
* ``spikesynth-status`` (``--keys`` only): the status line, since main reads the keys.

Programs
--------
Every ``*.yaml`` file in the folder of the patch being played is a program, in name order
(:func:`spikesynth.patch.list_patches`): program change *n* (0-based) selects the *n*-th.
All of them are loaded, validated and prepared (:func:`spikesynth.engine.prepare`) at
start-up and handed to the engine (:meth:`Synth.set_programs`). Program change is an engine
event, as in ``render --midi``: at its sample offset every voice fades out (4 ms), then the
engine switches, restoring the program's own values and restarting the keys still held; MIDI
arriving during the fade plays on the new program. A program number beyond the folder's
files, or a file that did not validate, is ignored and counted. Files added to the folder
later are not programs until the next start.

Hot reload
----------
The watcher polls every program file's (mtime, size) every ``reload_interval`` s. A changed
file is re-read once its signature has been stable for one poll (an editor that writes in
several steps is not caught half-way), so a change applies within about two polls plus the
prepare time (a few ms): well under 0.5 s. A valid file is prepared and, if it is the current
program, switched to; an invalid one prints exactly ``spikesynth check``'s message
(``spikesynth: error: FILE:LINE: key: what was expected``) and the old patch stays.

Garbage collection is frozen and disabled while playing (the callback creates no cyclic
garbage, and a collection could stall the audio thread, which needs the GIL for its few
Python lines); both are restored by :meth:`LiveSession.close`. The interpreter's thread
switch interval is lowered at the same time, so that no other thread holds the GIL for
long when the audio callback wants it.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path

from .events import RING_WRITE, EventRing
from .patch import DEFAULT_PATCH, PatchError, list_patches, load_patch

__all__ = ["LiveError", "LiveSession", "format_status"]

#: GIL switch interval while playing (s); Python's default is 5 ms, longer than a block.
SWITCH_INTERVAL = 0.0005


class LiveError(RuntimeError):
    """A user-level problem that stops ``play`` (the message says what and what to do)."""


def format_status(s: dict) -> str:
    """One status line from :meth:`LiveSession.stats`. Thread: any (pure)."""
    return (f"voices {s['voices_active']:>3}/{s['voices']:<3} "
            f"load {100 * s['load_mean']:5.1f}% mean {100 * s['load_max']:5.1f}% worst  "
            f"xruns {s['xruns']}  steals {s['steals']}  "
            f"midi {s['midi_received']} in {s['midi_rejected']} rejected"
            f"{' ' + str(s['midi_dropped']) + ' dropped' if s['midi_dropped'] else ''}  "
            f"prog {s['program']} {s['patch']}")


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
    """

    def __init__(self, patch=None, *, samplerate: int = 48000, blocksize: int = 64,
                 latency="low", device=None, hostapi: str | None = None,
                 midi_in: str | None = "all", midi_api: str = "alsa",
                 channel: int | None = None, keys: bool = False,
                 midi_latency_ms: float | None = None, status=None,
                 status_interval: float = 0.25, reload_interval: float = 0.1,
                 input_device=None):
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
        self.program = 0  # the program playing (the engine switches on program change)
        self.reloads = 0
        self.reload_errors = 0
        self._program_lock = threading.Lock()  # the program list: reload vs other threads
        self._print_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gc_was_enabled = None
        self._switch_interval = None
        self._line_open = False
        self._reported_program = 0
        self._final: dict = {}  # the audio host's last counters, kept after close

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
        from .engine import Synth

        first = load_patch(self.patch_path)  # PatchError: nothing else to do
        self._load_programs(first)
        # Audio settings first: a missing device fails before anything slow happens.
        device = audio.resolve_output_device(self.device, self.hostapi)
        input_device = (None if self.input_device is None
                        else audio.resolve_input_device(self.input_device, self.hostapi))
        max_block = max(4096, self.blocksize)
        self.synth = Synth(first, samplerate=self.samplerate, max_block=max_block)
        self.synth.use_patch(self.prepared[self.program])
        # Program change is an engine event: the engine switches at its sample offset.
        self.synth.set_programs(self.prepared, self.program)
        self.synth.warm_up()  # compiled kernels (or the cache) of every program
        self.ring = EventRing(4096)
        lock = threading.Lock()
        if self.midi_in is not None:
            from .midi import MidiInput

            with audio.quiet_stderr():  # the backend's own noise; failures raise with reasons
                self.midi = MidiInput(self.ring, api=self.midi_api, connect=self.midi_in,
                                      channel=self.channel, lock=lock)
        if self.keys:
            from .keys import KeyboardInput

            self.keyboard = KeyboardInput(self.ring, lock=lock,
                                          channel=self.channel or 1)
        latency_ns = (None if self.midi_latency_ms is None
                      else int(self.midi_latency_ms * 1e6))
        self.audio = audio.AudioHost(self.synth, self.ring, samplerate=self.samplerate,
                                     blocksize=self.blocksize, latency=self.latency,
                                     device=device, midi_latency_ns=latency_ns,
                                     input_device=input_device)
        self._gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.audio.start()
        self._start_thread(self._watch, "spikesynth-reload")
        self._describe_start(device)

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
                self.prepared[i] = prepare(load_patch(path), self.samplerate)
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
        self._message(
            f"spikesynth: playing {self.synth.patch.name} ({self.paths[self.program].name}, "
            f"program {self.program} of {len(self.paths)}) on {info['name']} [{api}], "
            f"{self.samplerate} Hz, block {self.blocksize}, output latency "
            f"{1e3 * self.audio.output_latency:.1f} ms, "
            + (f"input latency {1e3 * self.audio.input_latency:.1f} ms, "
               if self.input_device is not None else "")
            + "MIDI latency "
            f"{self.audio.midi_latency_ns / 1e6:.2f} ms; {midi}. Ctrl-C stops.")

    def _start_thread(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- reload thread ------------------------------------------------------------------
    @staticmethod
    def _signature(path):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _watch(self):
        """Poll the program files and reload changed ones. Thread: ``spikesynth-reload``."""
        pending: dict[int, tuple] = {}  # program -> signature seen changing
        while not self._stop.wait(self.reload_interval):
            for i, path in enumerate(self.paths):
                sig = self._signature(path)
                if sig == self._signatures[i] and i not in pending:
                    continue
                if pending.get(i) != sig:  # still changing (or a first sighting): wait a poll
                    pending[i] = sig
                    continue
                del pending[i]
                self._signatures[i] = sig
                self._reload(i, path)

    def _reload(self, i, path):
        try:
            prepared = self.synth.prepare_patch(load_patch(path))
        except PatchError as e:
            self.reload_errors += 1
            self._message(f"spikesynth: error: {e}")  # exactly as `spikesynth check`
            return
        with self._program_lock:
            self.prepared[i] = prepared
            current = i == self.synth.program_number
            self.synth.set_programs(self.prepared)
            if current:
                self.synth.use_patch(prepared)
        self.reloads += 1
        self._message(f"spikesynth: reloaded {path}"
                      + (" (playing)" if current else f" (program {i})"))

    # -- status (main, or spikesynth-status with --keys) ---------------------------------
    def stats(self) -> dict:
        """Everything the status line shows, and more. Thread: any (reads only)."""
        s = dict(self.synth.stats()) if self.synth is not None else {}
        s.update(self.audio.stats() if self.audio is not None else self._final)
        ring = self.ring
        s["voices"] = int(self.synth.patch["voices"]) if self.synth is not None else 0
        s["midi_received"] = int(ring.header[RING_WRITE]) if ring is not None else 0
        s["midi_rejected"] = ring.rejected if ring is not None else 0
        s["midi_dropped"] = ring.dropped if ring is not None else 0
        s["midi_filtered"] = self.midi.filtered if self.midi is not None else 0
        if self.synth is not None:
            self.program = self.synth.program_number
        s["program"] = self.program
        s["patch"] = self.synth.patch.name if self.synth is not None else ""
        s["program_changes"] = s.get("program_changes", 0)
        s["program_ignored"] = s.pop("programs_ignored", 0)
        s["reloads"] = self.reloads
        s["reload_errors"] = self.reload_errors
        return s

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
        if self.program != self._reported_program:
            self._reported_program = self.program
            self._message(f"spikesynth: program {self.program}: {self.synth.patch.name} "
                          f"({self.paths[self.program].name})")
        line = format_status(self.stats())
        if self.keyboard is not None:
            line += "  | " + self.keyboard.mapper.status()
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
            self.show_status()

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
        try:
            if midi is not None:
                midi.close()
        finally:
            try:
                if audio is not None:
                    final = audio.stats()
                    audio.close()
                    self._final = final
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
