"""Everything the page may do to the instrument, and the views it is sent: the UI's one door
into the engine.

All engine access of the UI is here, so that the engine's parameter path and live probe can
replace what this module does today without touching the server or the page:

* **parameters**: :meth:`Bridge.set_param` validates through the patch schema
  (:meth:`spikesynth.patch.Patch.replace`, the same messages as ``spikesynth check``) and
  applies through ``Synth.set_param`` when the engine has it, otherwise by preparing the new
  patch and switching to it (``prepare_patch`` + ``use_patch``: sounding voices retune at the
  next block, an incompatible change fades them first);
* **notes** go through the session's :class:`~spikesynth.events.EventRing`, pushed under the
  lock the MIDI and keyboard inputs share, exactly like MIDI;
* **views** (:meth:`Bridge.view_frame`, format below): the membrane and raster of the most
  recent voice come, live with the compiled callback, from its probe (the audio thread
  traces a copy of that voice and copies the trace into a preallocated ring); otherwise
  (the preview, the Python callback) from :func:`spikesynth.engine.trace_voice` (computed on
  a worker thread for each new patch or note and played back at the real rate); the
  spectrum and meters from
  the live output (:class:`~spikesynth.ui.tap.OutputTap`); in the offline preview
  (``spikesynth ui``) from the traced voice's output.

View message format (one binary websocket message per frame)
-----------------------------------------------------------
``uint32 LE header length H`` | ``H bytes of UTF-8 JSON header`` | zero padding to a multiple
of 4 | ``float32 LE payload``. The header's ``arrays`` maps each array name to ``[offset,
length]`` in float32 elements from the payload start:

* ``membrane`` (membrane potential), ``state`` (0 RESTING, 1 FIRING, 2 REFRACTORY), one value
  a sample over ``membrane_seconds``;
* ``raster``: pairs ``(neuron, time as a fraction of raster_seconds)``;
* ``spectrum``: dB re full scale, bin k at ``k * spectrum_hz`` Hz.

Other header keys: ``type`` ("view"), ``seq``, ``source`` ("probe": live, from the compiled
callback's probe of the most recent voice, :class:`spikesynth.rtprobe.LiveProbe`;
"trace": the last note replayed, in the preview or with the Python callback), ``note``,
``f0`` (Hz, of the most recent note), ``neurons``,
``thresholds`` (levels drawn over the membrane), ``meters`` (``peak_db``/``rms_db`` per
channel), ``status`` (voices, load, xruns, MIDI counts, program).

Threads: every method runs on the UI server's thread or its worker threads (never audio);
changes are serialised by :attr:`Bridge.lock`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import params as P
from ..events import RING_WRITE, SLOT_DATA1, SLOT_DATA2, SLOT_STATUS
from ..patch import SCHEMA, Controller, PatchError, list_patches, load_patch

__all__ = ["Bridge", "Result", "encode_view", "decode_view", "schema_for"]

UNDO_DEPTH = 200
TRACE_SECONDS = 0.3
PROBE_SECONDS = 0.3  # s of the live probe read per view frame (the raster: its last 0.25 s)
STATUS_INTERVAL = 0.2  # s between status refreshes in the views
#: The interpreter's thread switch interval while the page is served live (s): the server
#: thread then holds the GIL at most this long when the audio callback wants it back.
UI_SWITCH_INTERVAL = 0.0001
SPECTRUM_FRAMES = 4096
MAX_SPECTRUM_HZ = 16000.0
RESERVED_CC = (64, 120, 121, 122, 123, 124, 125, 126, 127)
_MODEL_GROUPS = {"spiking": ("membrane", "spring", "firing_ms", "refractory_ms", "softness",
                             "noise"),
                 "lif": ("lif",), "izhikevich": ("izhikevich",), "network": ("network",)}
_SAVE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,80}$")


class Result(NamedTuple):
    """What a change did: ``ok``, and on failure the schema's ``error`` and its ``key``."""

    ok: bool
    error: str = ""
    key: str = ""


def schema_for(patch) -> dict:
    """The full schema (dotted key -> :class:`~spikesynth.patch.Spec`) of ``patch``."""
    from .. import patch as patch_module

    fn = getattr(patch_module, "schema_for", None)  # the engine may move keys into models
    return fn(patch) if fn is not None else SCHEMA


def _live_keys(patch) -> set:
    """The keys the engine's parameter path (and a controller) can move for ``patch``."""
    from .. import patch as patch_module

    fn = getattr(patch_module, "param_index", None)  # per model, once models own their keys
    keys = set(fn(patch["model"])) if fn is not None else set(P.PARAM_INDEX)
    return {k for k in keys if k in schema_for(patch) and schema_for(patch)[k].controllable}


def _curve(spec) -> str:
    if spec.kind not in ("float", "int") or spec.lo is None:
        return ""
    if getattr(spec, "curve", "linear") == "exp" and spec.lo > 0:
        return "log"
    if spec.lo > 0 and spec.hi / spec.lo >= 100:
        return "log"
    if spec.lo == 0 and spec.hi >= 100:
        return "cube"
    return "linear"


def _group(key: str) -> str:
    return key.split(".")[0] if "." in key else key


def encode_view(header: dict, arrays: dict) -> bytes:
    """Pack a view message (see the module docstring). Thread: any."""
    offsets, chunks, n = {}, [], 0
    for name, values in arrays.items():
        a = np.ascontiguousarray(values, dtype="<f4").ravel()
        offsets[name] = [n, int(a.size)]
        chunks.append(a.tobytes())
        n += a.size
    head = json.dumps(dict(header, arrays=offsets), separators=(",", ":")).encode()
    pad = (-(4 + len(head))) % 4
    return len(head).to_bytes(4, "little") + head + b" " * pad + b"".join(chunks)


def decode_view(message: bytes) -> tuple[dict, dict]:
    """Unpack a view message into (header, {name: float32 array}). Thread: any."""
    h = int.from_bytes(message[:4], "little")
    header = json.loads(message[4:4 + h])
    start = 4 + h + (-(4 + h)) % 4
    payload = np.frombuffer(message[start:], dtype="<f4")
    return header, {k: payload[o:o + n] for k, (o, n) in header["arrays"].items()}


def _db(x: float) -> float:
    return float(20 * np.log10(max(x, 1e-6)))


class Bridge:
    """The UI's handle on a live session (``play --ui``) or a patch file (``ui``, preview).

    Build one with :meth:`live` or :meth:`preview`. Thread: the UI server's threads.
    """

    def __init__(self, *, path: Path, patch, samplerate: float, synth=None, session=None,
                 tap=None, ring=None, input_lock=None, channel: int = 1):
        self.samplerate = float(samplerate)
        self.synth = synth
        self.session = session
        self.tap = tap
        self.ring = ring
        self.input_lock = input_lock or threading.Lock()
        self.channel = int(channel)
        self.lock = threading.RLock()  # serialises changes (parameters, programs, saves)
        self._tickets = itertools.count(1)
        self._latest: dict = {}  # setting -> ticket of its newest request
        self.folder = Path(path).resolve().parent
        self._path = Path(path).resolve()
        self._patch = patch  # preview only; live reads the synth
        self._base = self._edited = None
        if synth is not None:
            self._base = self._edited = self._engine_patch()
        self._programs = None  # preview: the folder's files, listed once per save
        self.undo_stack: list = []
        self.learning: str | None = None
        self.version = 0  # bumped on every change the page should redraw for
        self._seen_patch = None
        # Notes seen (from the ring, or the preview's keyboard).
        self.note = 69
        self.note_on_at = time.monotonic()
        self.held: set[int] = set()
        self._ring_seen = int(ring.header[RING_WRITE]) if ring is not None else 0
        self.cc_seen = 0
        # Traces, computed on a worker thread.
        self._trace = None  # (patch, note, trace dict)
        self._trace_want = threading.Event()
        self._trace_stop = threading.Event()
        self._trace_error = ""
        self._trace_thread = threading.Thread(target=self._trace_loop, daemon=True,
                                              name="spikesynth-ui-trace")
        self._trace_thread.start()
        self._meter_seen = tap.written if tap is not None else 0
        self._offset = 0
        self._last_frame = time.monotonic()
        self.seq = 0
        self._status, self._status_at = None, -1.0
        self._viewers = 0
        self._switch_saved = None

    # -- construction (main) ------------------------------------------------------------
    @classmethod
    def live(cls, session, tap) -> Bridge:
        """For an opened :class:`spikesynth.live.LiveSession`. Thread: main."""
        lock = None
        for source in (session.midi, session.keyboard):
            if source is not None:
                lock = source.lock
                break
        return cls(path=session.paths[session.program], patch=None,
                   samplerate=session.samplerate, synth=session.synth, session=session,
                   tap=tap, ring=session.ring, input_lock=lock, channel=session.channel or 1)

    @classmethod
    def preview(cls, path=None, samplerate: float = 48000) -> Bridge:
        """For a patch file, without audio. Raises :class:`PatchError`. Thread: main."""
        from ..patch import DEFAULT_PATCH

        path = Path(path) if path is not None else DEFAULT_PATCH
        return cls(path=path, patch=load_patch(path), samplerate=samplerate)

    def views_opened(self) -> None:
        """A page started receiving views. Thread: UI server.

        Live, the first one lowers the interpreter's thread switch interval to
        :data:`UI_SWITCH_INTERVAL`, so that the server thread, busy with the views, makes
        the audio callback wait less for the GIL; the last one to close restores it.
        """
        self._viewers += 1
        if self._viewers == 1 and self.session is not None:
            self._switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_saved, UI_SWITCH_INTERVAL))

    def views_closed(self) -> None:
        """A page stopped receiving views. Thread: UI server."""
        self._viewers -= 1
        if self._viewers == 0:
            self.all_notes_off()  # a closed page leaves no note hanging
            if self._switch_saved is not None:
                sys.setswitchinterval(self._switch_saved)
                self._switch_saved = None

    def close(self) -> None:
        """Stop the trace worker. Thread: main."""
        self._trace_stop.set()
        self._trace_want.set()
        self._trace_thread.join(2.0)

    # -- the patch ----------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "live" if self.synth is not None else "preview"

    @property
    def patch(self):
        """The current patch: live, the engine's with the page's changes. Thread: any.

        ``Synth.set_param`` moves the engine's parameters without making a new patch, so
        the page's values are kept here (:attr:`_edited`) until the engine's patch itself
        changes (a program change, a reload, a prepared switch), which starts afresh.
        """
        if self.synth is None:
            return self._patch
        current = self._engine_patch()
        if current is not self._base:
            self._base, self._edited = current, current
        return self._edited

    def _engine_patch(self):
        """The patch the audio thread plays: the host's (with the compiled callback the
        synth object does not switch), else the synth's."""
        audio = getattr(self.session, "audio", None)
        return audio.patch if audio is not None else self.synth.patch

    @property
    def path(self) -> Path:
        """The file the current program was loaded from (save writes here)."""
        if self.session is not None:
            return Path(self.session.paths[self._program_number()]).resolve()
        return self._path

    def _program_number(self) -> int:
        """Live: the program playing (the session switches programs)."""
        return int(self.session.program)

    def programs(self) -> list[Path]:
        if self.session is not None:
            return [Path(p).resolve() for p in self.session.paths]
        if self._programs is None:  # the folder as it is now (a save-as adds a file)
            paths = [p.resolve() for p in list_patches(self.folder)]
            self._programs = paths if self._path in paths else paths + [self._path]
        return self._programs

    def controls(self) -> list[dict]:
        """One description per setting of the current patch, for the page's controls."""
        patch = self.patch
        model = patch["model"]
        mine = _MODEL_GROUPS.get(model, ())
        others = {g for m, gs in _MODEL_GROUPS.items() if m != model for g in gs}
        live = _live_keys(patch)
        out = []
        for key, spec in schema_for(patch).items():
            group = _group(key)
            value = patch.values[key]
            out.append({
                "key": key, "kind": spec.kind, "value": value, "default": spec.default,
                "lo": spec.lo, "hi": spec.hi, "unit": spec.unit, "doc": spec.doc,
                "choices": list(spec.choices), "curve": _curve(spec),
                "controllable": key in live,
                "group": group,
                "relevant": group in mine or group not in others,
            })
        return out

    def state(self) -> dict:
        """Everything the page shows besides the views (JSON-ready). Thread: any."""
        from .patchfile import controllers_raw

        patch = self.patch
        programs = self.programs()
        path = self.path
        return {
            "type": "state", "mode": self.mode, "version": self.version,
            "name": patch.name, "file": path.name, "folder": str(self.folder),
            "model": patch["model"], "controls": self.controls(),
            "controllers": controllers_raw(patch),
            "programs": [p.name for p in programs],
            "program": programs.index(path) if path in programs else -1,
            "can_undo": bool(self.undo_stack), "learning": self.learning,
        }

    def _changed(self, new_patch, record: bool = True) -> None:
        if record:
            self.undo_stack.append(self.patch)
            del self.undo_stack[:-UNDO_DEPTH]
        self.version += 1

    def _apply(self, new_patch, path: str | None = None, value=None) -> None:
        """Make ``new_patch`` the sounding patch (the engine's parameter path)."""
        if self.synth is None:
            self._patch = new_patch
            return
        self.patch  # noqa: B018 - notice an engine-side change before this one
        setter = getattr(self.synth, "set_param", None)
        if (setter is not None and path is not None and isinstance(value, (int, float))
                and path in _live_keys(new_patch)):
            try:
                setter(path, float(value))  # the engine's parameter path (smoothed there)
                self._edited = new_patch
                return
            except ValueError:
                pass  # not live for this model: prepare the patch instead
        prepared = self.synth.prepare_patch(new_patch)
        lock = getattr(self.session, "_program_lock", None) or threading.Lock()
        with lock:
            audio = getattr(self.session, "audio", None)
            if audio is not None:  # the host switches (the compiled callback's patch rows)
                audio.use_patch(prepared)
            else:
                self.synth.use_patch(prepared)
            # Until a fading switch completes the engine still reports the old patch.
            self._base, self._edited = self._engine_patch(), new_patch

    def set_param(self, path: str, value) -> Result:
        """Set one setting, validated by the schema. Thread: UI server (worker).

        Requests for the same setting that queue up behind a slow change (a slider dragged
        faster than patches prepare) collapse into the newest: older ones return ok unapplied.
        """
        ticket = next(self._tickets)
        self._latest[path if isinstance(path, str) else ""] = ticket
        with self.lock:
            if self._latest.get(path if isinstance(path, str) else "") != ticket:
                return Result(True)  # a newer value for this setting is waiting
            patch = self.patch
            spec = schema_for(patch).get(path) if isinstance(path, str) else None
            if spec is None:
                return Result(False, f"unknown setting {path!r}", str(path))
            if spec.kind in ("float", "int") and isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    pass
            if spec.kind == "int" and isinstance(value, float) and value.is_integer():
                value = int(value)
            try:
                new = patch.replace(**{path.replace(".", "__"): value})
            except PatchError as e:
                return Result(False, e.message, e.key or path)
            if new.values == patch.values:
                return Result(True)
            self._changed(new)
            self._apply(new, path, value)
            return Result(True)

    def set_controllers(self, items) -> Result:
        """Replace the CC mappings (a list of ``{cc|source, param, min, max, curve}``)."""
        with self.lock:
            patch = self.patch
            if not isinstance(items, list):
                return Result(False, "expected a list of controller mappings", "controllers")
            controllers = []
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    return Result(False, "expected a mapping", f"controllers[{i}]")
                src = item.get("cc", P.SOURCE_NAMES.get(item.get("source"), -1))
                controllers.append(Controller(src if isinstance(src, int) else -1,
                                              item.get("param"), item.get("min"),
                                              item.get("max"), item.get("curve", "linear")))
            try:
                new = dataclasses.replace(patch, controllers=controllers).replace()
            except (PatchError, KeyError, TypeError) as e:
                if isinstance(e, PatchError):
                    return Result(False, e.message, e.key or "controllers")
                return Result(False, f"bad controller mapping: {e}", "controllers")
            self._changed(new)
            self._apply(new)
            return Result(True)

    def learn(self, path: str | None) -> Result:
        """Arm MIDI learn for ``path`` (None: disarm); the next CC moved maps to it."""
        if path is not None and path not in _live_keys(self.patch):
            return Result(False, "this setting cannot follow a MIDI controller", str(path))
        self.learning = path
        self.version += 1
        return Result(True)

    def _learned(self, cc: int) -> None:
        path, self.learning = self.learning, None
        spec = schema_for(self.patch)[path]
        from .patchfile import controllers_raw

        items = [c for c in controllers_raw(self.patch) if c.get("cc") != cc]
        items.append({"cc": cc, "param": path, "min": spec.lo, "max": spec.hi,
                      "curve": "exp" if _curve(spec) == "log" else "linear"})
        self.set_controllers(items)

    def undo(self) -> Result:
        """Go back to the patch before the last change. Thread: UI server (worker)."""
        with self.lock:
            if not self.undo_stack:
                return Result(False, "nothing to undo")
            previous = self.undo_stack.pop()
            self._apply(previous)
            self.version += 1
            return Result(True)

    def select_program(self, index: int) -> Result:
        """Switch to program ``index`` of the folder. Thread: UI server (worker)."""
        with self.lock:
            programs = self.programs()
            if not isinstance(index, int) or not 0 <= index < len(programs):
                return Result(False, f"no program {index!r}")
            if self.session is not None:
                before = self._program_number()
                # As a MIDI program change does (ProgramRing): the session's books first, then
                # the message into the event ring, where the engine switches at its offset.
                self.session._on_program(index)
                if self._program_number() != index:
                    return Result(False, f"program {index} did not load ({programs[index].name})")
                with self.input_lock:
                    self.ring.push(time.monotonic_ns(), bytes([0xC0 | (self.channel - 1), index]))
                if before != index:
                    self.undo_stack.clear()
            else:
                try:
                    self._patch = load_patch(programs[index])
                except PatchError as e:
                    return Result(False, str(e))
                self._path = programs[index]
                self.undo_stack.clear()
            self.version += 1
            return Result(True)

    def save(self, name: str | None = None) -> Result:
        """Save the current patch to its file, or as ``name`` in the programs' folder.

        Comments and key order are kept (:mod:`spikesynth.ui.patchfile`), the result is
        validated as ``check`` does, and the file is written atomically. Only plain file
        names inside the folder are accepted. Thread: UI server (worker).
        """
        from .patchfile import write_patch

        with self.lock:
            if name is None:
                target = self.path
            else:
                name = str(name).strip()
                if not name.endswith(".yaml"):
                    name += ".yaml"
                if not _SAVE_NAME.match(name) or "/" in name or "\\" in name or ".." in name:
                    return Result(False, "a patch file name: letters, digits, _ - . and "
                                  "spaces, ending in .yaml", "file")
                target = self.folder / name
            target = target.resolve()
            if target.parent != self.folder or target.suffix != ".yaml":
                return Result(False, "patches can only be saved in the programs' folder "
                              f"{self.folder}", "file")
            try:
                base = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
                write_patch(self.patch, target, original_text=base)
            except PatchError as e:
                return Result(False, str(e), e.key or "")
            except OSError as e:
                return Result(False, f"cannot write {target}: {e.strerror or e}", "file")
            if self.session is None:
                self._path = target
                self._programs = None
            self.version += 1
            return Result(True)

    # -- notes --------------------------------------------------------------------------
    def play(self, note: int, velocity: int, on: bool) -> Result:
        """A note from the page's keyboard, through the event ring like MIDI."""
        if not (isinstance(note, int) and 0 <= note < 128 and isinstance(velocity, int)):
            return Result(False, "expected a MIDI note 0-127 and a velocity 1-127")
        velocity = min(max(velocity, 1), 127)
        if on:
            self.held.add(note)
        else:
            self.held.discard(note)
        if self.ring is None:  # preview: the views follow the note
            if on:
                self._noted(note)
            return Result(True)
        status = (0x90 if on else 0x80) | (self.channel - 1)
        with self.input_lock:
            self.ring.push(time.monotonic_ns(), bytes([status, note, velocity if on else 0]))
        return Result(True)

    def all_notes_off(self) -> None:
        for note in list(self.held):
            self.play(note, 1, False)

    def _noted(self, note: int) -> None:
        self.note = note
        self.note_on_at = time.monotonic()
        self._trace_want.set()

    def poll_input(self) -> None:
        """Read the messages that went through the ring since the last call (notes for the
        views, CCs for MIDI learn). A racy read of slots the audio thread only reads."""
        ring = self.ring
        if ring is None:
            return
        write = int(ring.header[RING_WRITE])
        start = max(self._ring_seen, write - ring.capacity)
        mask = ring.capacity - 1
        for i in range(start, write):
            slot = ring.slots[i & mask]
            kind = int(slot[SLOT_STATUS]) & 0xF0
            if kind == 0x90 and slot[SLOT_DATA2] > 0:
                self._noted(int(slot[SLOT_DATA1]))
            elif kind == 0xB0:
                self.cc_seen += 1
                cc = int(slot[SLOT_DATA1])
                if self.learning is not None and cc not in RESERVED_CC:
                    self._learned(cc)
        self._ring_seen = write

    # -- traces (worker thread) ---------------------------------------------------------
    def _trace_loop(self):
        from ..engine import trace_voice

        while not self._trace_stop.is_set():
            self._trace_want.wait(0.2)
            self._trace_want.clear()
            if self._trace_stop.is_set():
                return
            patch, note = self.patch, self.note
            done = self._trace
            if done is not None and done[0] is patch and done[1] == note:
                continue
            try:
                trace = trace_voice(patch, self.samplerate, int(TRACE_SECONDS * self.samplerate),
                                    note)
                self._trace_error = ""
            except Exception as e:  # noqa: BLE001 - a view failing must not stop the UI
                self._trace_error = f"cannot trace this voice: {e}"
                continue
            self._trace = (patch, note, trace)

    # -- views (server thread) ----------------------------------------------------------
    def status(self) -> dict:
        """Voices, load, xruns, MIDI counts, program. Thread: UI server."""
        if self.session is None:
            return {"mode": "preview", "voices_active": len(self.held),
                    "voices": int(self.patch["voices"]), "load_mean": 0.0, "load_p99": 0.0,
                    "load_max": 0.0, "xruns": 0, "midi_received": 0, "midi_rejected": 0,
                    "midi_dropped": 0, "program": self.state_program(), "patch": self.patch.name}
        s = self.session.stats()
        keep = ("voices_active", "voices", "load_mean", "load_max", "xruns", "midi_received",
                "midi_rejected", "midi_dropped", "program", "patch", "steals", "faults",
                "callbacks")
        out = {k: s.get(k, 0) for k in keep}
        out["mode"] = "live"
        out["load_p99"] = self.load_stats(since=max(int(s.get("callbacks", 0)) - 1500, 0))["p99"]
        out["cc_seen"] = self.cc_seen
        return out

    def state_program(self) -> int:
        programs = self.programs()
        return programs.index(self.path) if self.path in programs else -1

    def load_stats(self, since: int = 0) -> dict:
        """Callback load percentiles over the callbacks from number ``since`` on."""
        audio = getattr(self.session, "audio", None)
        if audio is None:
            return {"callbacks": 0, "count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
        n, loads = audio.loads_since(since)
        if not loads.size:
            return {"callbacks": n, "count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
        return {"callbacks": n, "count": int(loads.size),
                "p50": float(np.percentile(loads, 50)), "p99": float(np.percentile(loads, 99)),
                "max": float(loads.max())}

    def _audio_window(self, trace):
        """(spectrum frames mono, meter frames stereo) from the output, or the trace."""
        if self.tap is not None:
            written = self.tap.written
            fresh = min(max(written - self._meter_seen, 256), self.tap.capacity)
            self._meter_seen = written
            data = self.tap.latest(max(SPECTRUM_FRAMES, fresh))
            return data[-SPECTRUM_FRAMES:].mean(axis=1), data[-fresh:]
        if trace is None:
            silent = np.zeros(SPECTRUM_FRAMES)
            return silent, np.zeros((256, 2))
        gain = 10 ** (self.patch["gain_db"] / 20)
        out = trace["out"][-SPECTRUM_FRAMES:] * gain
        if not self.held:
            out = out * 0.0
        return out, np.stack([out, out], axis=1)

    def view_frame(self) -> bytes:
        """The next view message (see the module docstring). Thread: UI server."""
        self.poll_input()
        now = time.monotonic()
        dt, self._last_frame = now - self._last_frame, now
        trace_entry = self._trace
        probe = self._probe()
        if probe is None and (trace_entry is None or trace_entry[0] is not self.patch
                              or trace_entry[1] != self.note):
            self._trace_want.set()  # no live probe: replay the last note's trace
        trace = trace_entry[2] if trace_entry is not None else None
        sr = self.samplerate
        header = {"type": "view", "seq": self.seq, "source": "trace", "note": self.note,
                  "f0": float(self._f0(self.note)), "error": self._trace_error,
                  "version": self.version}
        self.seq += 1
        arrays = {}
        if now - self._status_at >= STATUS_INTERVAL:  # the status changes slowly: 5 a second
            self._status, self._status_at = self.status(), now
        status = self._status
        sounding = status["voices_active"] > 0 or bool(self.held)
        live = probe.latest(int(PROBE_SECONDS * sr)) if probe is not None else None
        if live is not None:
            self._probe_view(header, arrays, live)
        elif trace is not None:
            period = float(trace.get("period") or 0.0)
            period = period if np.isfinite(period) and period > 0 else sr / header["f0"]
            n = len(trace["v"])
            window = int(min(max(6 * period, 0.005 * sr), 0.04 * sr, n // 2))
            if sounding:
                self._offset = (self._offset + int(dt * sr)) % max(n - window, 1)
            a = self._offset
            v = trace["v"][a:a + window]
            arrays["membrane"] = v
            arrays["state"] = trace["state"][a:a + window]
            header["membrane_seconds"] = window / sr
            spikes = trace["spikes"]
            header["neurons"] = len(spikes)
            raster_window = min(max(window, int(0.25 * sr)), n)
            r0 = min(a, n - raster_window)
            pairs = []
            for j, s in enumerate(spikes):
                s = np.asarray(s)
                s = s[(s >= r0) & (s < r0 + raster_window)]
                pairs.append(np.stack([np.full(s.size, j), (s - r0) / raster_window], axis=1))
            arrays["raster"] = np.concatenate(pairs) if pairs else np.zeros((0, 2))
            header["raster_seconds"] = raster_window / sr
            p = self.patch
            header["thresholds"] = ([p["membrane.threshold_high"], p["membrane.threshold_low"]]
                                    if p["model"] == "spiking" else [])
        mono, meter = self._audio_window(trace)
        w = np.hanning(len(mono))
        spectrum = np.abs(np.fft.rfft(mono * w)) * (2.0 / w.sum())
        hz = sr / len(mono)
        top = int(min(MAX_SPECTRUM_HZ, sr / 2) / hz)
        arrays["spectrum"] = 20 * np.log10(spectrum[:top] + 1e-7)
        header["spectrum_hz"] = hz
        peak = np.abs(meter).max(axis=0) if len(meter) else np.zeros(2)
        rms = np.sqrt(np.mean(np.square(meter, dtype=np.float64), axis=0))
        header["meters"] = {"peak_db": [_db(x) for x in peak], "rms_db": [_db(x) for x in rms]}
        header["status"] = status
        return encode_view(header, arrays)

    def _probe(self):
        """The live probe of the compiled callback (play --ui), or None."""
        audio = getattr(self.session, "audio", None)
        return getattr(audio, "probe", None)

    def _probe_view(self, header, arrays, live) -> None:
        """Membrane, states and raster of the most recent voice, from the audio thread's
        probe (the last :data:`PROBE_SECONDS`)."""
        sr = self.samplerate
        v, state, spikes = live["v"], live["state"], live["spikes"]
        n = len(v)
        f0 = self.patch["a4"] * 2.0 ** ((live["note"] + self.patch["transpose"] - 69) / 12.0)
        window = int(min(max(6 * sr / max(f0, 1.0), 0.005 * sr), 0.04 * sr, n))
        arrays["membrane"] = v[n - window:]
        arrays["state"] = state[n - window:]
        header["membrane_seconds"] = window / sr
        header["source"] = "probe"
        header["note"] = int(round(live["note"]))
        header["f0"] = float(f0)
        header["neurons"] = live["neurons"]
        raster_window = min(int(0.25 * sr), n)
        r0 = n - raster_window
        keep = spikes[spikes[:, 1] >= r0]
        arrays["raster"] = (np.stack([keep[:, 0], (keep[:, 1] - r0) / raster_window], axis=1)
                            if len(keep) else np.zeros((0, 2)))
        header["raster_seconds"] = raster_window / sr
        p = self.patch
        header["thresholds"] = ([p["membrane.threshold_high"], p["membrane.threshold_low"]]
                                if p["model"] == "spiking" else [])

    def _f0(self, note: int) -> float:
        p = self.patch
        return p["a4"] * 2.0 ** ((note + p["transpose"] - 69) / 12.0)
