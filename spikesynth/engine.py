"""The plugin: a synth that renders blocks of audio from sample-accurate events.

Lifecycle (as in CLAP/JUCE): ``Synth(patch, samplerate, max_block)`` prepares — the only
place that allocates; ``process*`` renders a block and ``reset()`` clears the sound but keeps
the patch; neither allocates in compiled code on the real-time path
(:meth:`Synth.process_block`, :meth:`Synth.process_ring`).

The layers (imports flow one way):

* :mod:`spikesynth.models` — one module per voice model behind one seam;
* :mod:`spikesynth.voices` — the voice pool and the stealing policy;
* :mod:`spikesynth.master` — DC blocker, gain, safety limiter;
* :mod:`spikesynth.engine_state` — the records the compiled core reads and writes, and
  their slot layouts;
* :mod:`spikesynth.notes` — a note on a voice: start, tuning (bend, glide, vibrato, MPE
  zones), release;
* :mod:`spikesynth.voice_modes` — poly, mono and legato, note priority, glide;
* :mod:`spikesynth.render` — the compiled core (events at their offsets, controllers,
  parameter smoothing, program change), generic over the model;
* :mod:`spikesynth.prepare` — a patch becomes a :class:`~spikesynth.engine_state.Program`;
* this module — :class:`Synth`, the thin plugin around them.

Parameters are apart from the prepared state (as CLAP separates them): each program keeps the
patch's values (``base``) and the synth's own copy that controllers modulate (``params``);
switching to a program restores its values. The main thread never writes into arrays the
audio thread is reading: it prepares new programs and hands over references.
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple

import numpy as np

from . import models
from .dsp import voice as vk
from .dsp.voice import ENV_OFF
from .engine_state import (
    G_ACTIVE,
    G_CARRY,
    G_ENTER,
    G_EVENTS,
    G_IGNORED,
    G_NAN_RESETS,
    G_PARAMS_SET,
    G_PROGRAM_CHANGES,
    G_PROGRAMS,
    G_PROGRAMS_IGNORED,
    G_RETUNE,
    G_RETUNED,
    G_SAMPLE,
    G_SEED,
    G_SLOTS,
    G_SR,
    G_STEALS,
    G_SWITCH,
    G_SWITCH_AT,
    G_UNMAPPED,
    MAX_EVENTS,
    MAX_VOICE_MODS,
    MAX_VOICES,
    N_CHANNEL_FIELDS,
    N_GLIDE_FIELDS,
    N_GLOBALS,
    SWITCH_FADE_MS,
    EngineState,
    Program,
    with_solo,
)
from .events import EVENT_FIELDS, STATUS_PARAM, events_from_list
from .listen import LS_OFFSET, build_listen, listen_downmix, listen_ear, listen_reset
from .master import (
    CEILING,
    M_BYPASS,
    M_LIMITING,
    M_NONFINITE,
    master_latency,
    master_limiter,
    master_reset,
    master_state,
)
from .models.base import N_TABLES, T_FREQ, note_frequency, solo_fields
from .params import P_GAIN_DB, P_NOISE
from .prepare import note_tables, prepare_program
from .render import fade_all, render_block_with, render_ring_with

__all__ = ["CEILING", "ParamChange", "Prepared", "Synth", "note_frequency", "trace_voice"]


class Prepared(NamedTuple):
    """A patch and its prepared program (main thread builds it; references cross threads)."""

    patch: object  # spikesynth.patch.Patch
    program: Program
    listen: object = None  # spikesynth.listen.ListenState (a patch with listen:), or None


class ParamChange(NamedTuple):
    """An event for :meth:`Synth.process`: set parameter ``index`` to ``value`` (musical units)."""

    index: int
    value: float


class _FastCall:
    """Calls a compiled function through its compiled entry point, skipping numba's argument
    typing: about 1.5 µs a call instead of 8 µs for the engine's records (measured), which is
    most of a small block's overhead. Keyed by the types that can vary (the model record's
    class, the output layout); an unseen key goes through the dispatcher once."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.entries = {}

    def __call__(self, key, *args):
        entry = self.entries.get(key)
        if entry is None:
            result = self.dispatcher(*args)  # compiles or loads; then remember the entry
            from numba import typeof

            sig = tuple(typeof(a) for a in args)
            overload = self.dispatcher.overloads.get(sig)
            if overload is not None:
                self.entries[key] = overload.entry_point
            return result
        return entry(*args)


def _program_type(program):
    """What of a program's type can vary (the compiled engine it needs): its model record's
    class, and whether the mono and legato modes are compiled in."""
    return type(program.model), program.solo is None


# A patch without ``listen:`` renders through the ``_with`` functions too, with ``None`` for
# the input (its listening code compiled out): one compiled entry point per model, where
# ``render_block`` would add a second whole copy of the engine to compile on a first run.
_render_block = _FastCall(render_block_with)  # called with L=None
_render_ring = _FastCall(render_ring_with)  # called with L=None
_render_block_with = _FastCall(render_block_with)  # a patch that listens (spikesynth.listen)
_render_ring_with = _FastCall(render_ring_with)


def _param_row(offset, index, value):
    bits = struct.unpack("<i", struct.pack("<f", float(value)))[0]
    return (int(offset), STATUS_PARAM, int(index), bits)


def param_target(patch, path: str, value: float) -> tuple[int, float]:
    """``(vector index, checked value)`` for setting ``path`` of ``patch`` live; ValueError
    (the schema's message) if it is not a live numeric parameter or out of range.

    Thread: any (pure function of the patch).
    """
    from .patch import SCHEMA, _describe, param_index

    index = param_index(patch["model"]).get(path)
    spec = SCHEMA.get(path)
    if index is None or spec is None or spec.kind not in ("float", "int"):
        raise ValueError(f"{path}: not a numeric parameter of a {patch['model']} patch")
    if not spec.controllable:
        raise ValueError(f"{path}: fixed when the patch is prepared (not live)")
    value = float(value)
    if not (math.isfinite(value) and spec.lo <= value <= spec.hi):
        raise ValueError(f"{path}: expected {_describe(spec)}, got {value:g}")
    return index, value


def prepare(patch, samplerate) -> Prepared:
    """Prepare ``patch`` for any synth at ``samplerate`` (allocates). Thread: main.

    A free function: hosts prepare programs without a synth (e.g. a folder of programs).
    """
    return Prepared(patch, prepare_program(patch, float(samplerate), 2 * MAX_VOICES))


class Synth:
    """The spikesynth engine, a plugin that renders stereo blocks from timed events.

    Parameters
    ----------
    patch : Patch
    samplerate : float
        Hz.
    max_block : int
        Largest block :meth:`process_block` / :meth:`process_ring` will be asked for.
    seed : int
        Seeds the voices' noise (renders are deterministic).
    programs : sequence of Patch, optional
        What program change *n* selects (the *n*-th; ``None``: a program that did not load);
        without it, program changes are ignored (counted in ``programs_ignored``).
    every_voice_mode : bool
        Compile every program with the mono and legato modes
        (:class:`~spikesynth.engine_state.SoloModes`), so that a reload may change a patch's
        ``voice_mode`` without new compiled code (the live session). False: a poly patch's
        engine has no mono code (a faster first render).

    Thread: constructed on main; see each method.
    """

    def __init__(self, patch, samplerate=48000, max_block=4096, seed=0, programs=None,
                 every_voice_mode=False):
        if not 8000 <= samplerate <= 384000:
            raise ValueError(f"samplerate {samplerate} Hz outside 8000..384000")
        if max_block < 1:
            raise ValueError("max_block must be at least 1")
        self.samplerate = float(samplerate)
        self.max_block = int(max_block)
        self.seed = int(seed)
        self.every_voice_mode = bool(every_voice_mode)
        self.n_slots = 2 * MAX_VOICES
        self.state = EngineState(
            V=np.zeros((self.n_slots, vk.N_FIELDS)),
            rng=np.ones(self.n_slots, dtype=np.uint64),
            G=np.zeros(N_GLOBALS),
            C=np.zeros((16, N_CHANNEL_FIELDS)),
            K=np.zeros((16, 128)),
            M=master_state(0.0),
            limiter=master_limiter(self.samplerate),
            mix=np.zeros((2, self.max_block)),
            usable=np.zeros(128),
            tuned=np.zeros(128),
            glide=np.zeros((self.n_slots, N_GLIDE_FIELDS)),
            order=np.zeros((16, 128)),
            saved=np.zeros((MAX_VOICE_MODS, 2)),
        )
        self.events = np.zeros((MAX_EVENTS, EVENT_FIELDS), dtype=np.int32)
        self.rejected = 0  # malformed MIDI seen by process()
        self.faults = 0  # blocks replaced by silence after an exception
        self._carry = np.zeros((0, EVENT_FIELDS), dtype=np.int32)  # offline: held events
        self._queued_params = []  # offline: parameter changes for the next process()
        self.live_input = None  # live: (EventRing, producer lock) for set_param
        self._active = self.prepare_patch(patch)
        self._pending = None  # an incompatible patch waiting for the voices to fade
        self._rendered = None  # the program the last block used
        self._bank = ()
        self.program_number = 0  # the program change number of the program playing
        self.reset()
        if programs is not None:
            bank = [None if p is None else self._active if p is patch else self.prepare_patch(p)
                    for p in programs]
            self.set_programs(bank, next((n for n, p in enumerate(programs) if p is patch), 0))

    # -- main thread ------------------------------------------------------------------------
    def prepare_patch(self, patch) -> Prepared:
        """Prepare a patch for this synth (allocates, may calibrate). Thread: main."""
        return self._fitted(prepare(patch, self.samplerate))

    def _fitted(self, prepared):
        """``prepared`` as this synth plays it: with its ear when the patch listens, and with
        every voice mode compiled in if the synth was asked to. Thread: main."""
        if prepared is None:
            return prepared
        if self.every_voice_mode and prepared.program.solo is None:
            prepared = prepared._replace(program=with_solo(prepared.program))
        if prepared.listen is not None:
            return prepared
        listen = build_listen(prepared.patch, self.samplerate, self.max_block)
        return prepared if listen is None else prepared._replace(listen=listen)

    @property
    def listening(self) -> bool:
        """Whether the current patch hears an input (a ``listen:`` section). Thread: any."""
        return self._active.listen is not None

    def set_programs(self, prepared, current=None, engine_switches=True) -> None:
        """The programs that program change *n* selects (a sequence of :class:`Prepared`;
        ``None`` where a program did not load: a change to it is ignored and counted).

        ``current``: the number of the program playing now (for :attr:`program_number`).
        ``engine_switches`` False: a host switches programs itself and the engine ignores
        program change (counted as ignored); the live session lets the engine switch (at the
        message's sample offset, as offline).
        Thread: main (a new tuple is handed over; only the usable flags are written).
        """
        bank = tuple(self._fitted(p) for p in tuple(prepared)[:128])
        self._bank = bank
        for n in range(128):
            usable = engine_switches and n < len(bank) and bank[n] is not None
            self.state.usable[n] = 1.0 if usable else 0.0
        self.state.G[G_PROGRAMS] = len(bank)
        if current is not None:
            self.program_number = int(current)

    @property
    def programs(self) -> tuple:
        return self._bank

    def use_patch(self, prepared) -> None:
        """Switch to a prepared patch (a hot reload, or a host choosing one). Thread: main.

        The same voice model (and, for networks, the same network and step): sounding voices
        carry on and retune at the next block. Otherwise every voice fades out over
        ``SWITCH_FADE_MS`` first, then the patch switches (no click). The latest request wins.
        """
        prepared = self._fitted(prepared)
        active = self._active
        same = type(active.program.model) is type(prepared.program.model)
        model = models.get(prepared.patch["model"])
        # A listening patch always switches (its channel voices and ear start afresh).
        quiet = active.listen is None and prepared.listen is None
        if (self._pending is None and same and quiet
                and model.compatible(active.patch, prepared.patch)):
            record = model.carry_over(active.program.model, prepared.program.model)
            self._active = prepared._replace(program=prepared.program._replace(model=record))
        else:
            self._pending = prepared

    def follow(self, prepared) -> None:
        """The host's compiled callback now plays ``prepared`` (it switched there, with its
        own fade): this synth's main-thread view follows it (:attr:`patch`, :attr:`params`,
        :meth:`param_target`, so OSC and UI parameters are checked against the patch really
        playing). No effect on sound. Thread: main or MIDI (callers serialise)."""
        self._active = prepared
        self._pending = None

    def set_patch(self, patch) -> None:
        """Prepare and switch to ``patch``. Thread: main."""
        self.use_patch(self.prepare_patch(patch))

    def set_param(self, path: str, value: float) -> None:
        """Set a parameter of the current patch by key path.

        Validated by the patch schema (``ValueError`` with its message otherwise); the change
        reaches the engine as an event, like a controller: live (:attr:`live_input` set by
        the host) through the event ring, applied in the next block; offline at the start of
        the next :meth:`process`. Thread: main, or any but audio when live.
        """
        index, value = self.param_target(path, value)
        if self.live_input is not None:
            import time

            ring, lock = self.live_input
            with lock:  # the ring has one producer at a time: the MIDI input's lock
                ring.push_param(time.monotonic_ns(), index, value)
        else:
            self._queued_params.append((index, value))

    def param_target(self, path: str, value: float) -> tuple[int, float]:
        """``(vector index, checked value)`` for setting ``path``; ValueError if not allowed."""
        return param_target(self.patch, path, value)

    @property
    def patch(self):
        return self._active.patch

    @property
    def prepared(self) -> Prepared:
        """The prepared patch playing now (main thread's view)."""
        return self._active

    @property
    def program(self) -> Program:
        return self._active.program

    @property
    def params(self) -> np.ndarray:
        """The synth's own parameter copy of the current program (controllers modulate it)."""
        return self._active.program.params

    @property
    def latency(self) -> int:
        """The master section's constant delay in samples (the look-ahead limiter's; 66 at
        44.1 kHz, 72 at 48 kHz), the same offline and live. Thread: any."""
        return master_latency(self.samplerate)

    @property
    def bypass_limiter(self) -> bool:
        """Whether the limiter's gain is bypassed (the delay stays). Measurement only: a
        bypassed synth can exceed the ceiling. Thread: main (set between blocks)."""
        return bool(self.state.M[M_BYPASS])

    @bypass_limiter.setter
    def bypass_limiter(self, value: bool) -> None:
        self.state.M[M_BYPASS] = 1.0 if value else 0.0

    def reset(self):
        """Silence every voice and clear DSP state; the patch is kept. Thread: main or audio."""
        S = self.state
        S.V[:] = 0.0
        S.C[:] = 0.0
        S.K[:] = 0.0
        S.tuned[:] = 0.0
        S.glide[:] = 0.0
        S.order[:] = 0.0
        S.G[:] = 0.0
        S.G[G_SR] = self.samplerate
        S.G[G_SLOTS] = self.n_slots
        S.G[G_SEED] = self.seed
        S.G[G_PROGRAMS] = len(self._bank)
        S.G[G_ENTER] = 1.0  # the first block restores the patch's own values
        master_reset(S.M, S.limiter, float(self._active.program.base[P_GAIN_DB]))
        self._carry = self._carry[:0]
        for prepared in (self._active, *self._bank):
            if prepared is None:
                continue
            models.get(prepared.patch["model"]).reset(prepared.program.model)
            if prepared.listen is not None:
                listen_reset(prepared.listen)

    def warm_up(self):
        """Compile (or load from the cache) what the audio thread runs, for every program.

        Thread: main. Leaves the synth reset.
        """
        from .events import EventRing

        out = np.zeros((1, 2), dtype=np.float32)
        ring = EventRing(4)
        seen = set()
        for prepared in (self._active, *self._bank):
            if prepared is None:
                continue
            listen = prepared.listen
            kind = (_program_type(prepared.program), listen is not None)
            if kind in seen:
                continue
            seen.add(kind)
            key = (kind[0], out.dtype.char, True, self.events.dtype.char)
            if listen is None:
                _render_ring(key, out, ring.slots, ring.header, self.events, 0, 0, self.state,
                             prepared.program, None)
                _render_block(key, out, self.events, 0, self.state, prepared.program, None)
            else:
                listen_downmix(np.zeros((1, 2)), listen.input)
                listen_ear(listen, 1)
                _render_ring_with(key, out, ring.slots, ring.header, self.events, 0, 0,
                                  self.state, prepared.program, listen)
                _render_block_with(key, out, self.events, 0, self.state, prepared.program,
                                   listen)
            fade_all(self.state, 1.0)
            self.state.V[:, vk.F_ENV_STAGE] = ENV_OFF  # no voice of one model for the next
        self.reset()

    # -- audio thread -----------------------------------------------------------------------
    def _current(self) -> Program:
        """The program to render, flagging a retune when the main thread swapped it."""
        active = self._active
        if active is not self._rendered:
            self._rendered = active
            self.state.G[G_RETUNE] = 1.0
        return active.program

    def _start_pending(self):
        """A patch the main thread asked for: fade out, then switch (see ``use_patch``)."""
        G = self.state.G
        if self._pending is not None and G[G_SWITCH] == 0.0:
            G[G_SWITCH] = -1.0  # not a program number: the pending patch
            G[G_SWITCH_AT] = G[G_SAMPLE] + math.ceil(max(SWITCH_FADE_MS * 1e-3 * self.samplerate,
                                                          1.0))
            fade_all(self.state, max(SWITCH_FADE_MS * 1e-3 * self.samplerate, 1.0))

    def _switch(self):
        """The fade is over: switch to the requested program or pending patch."""
        G = self.state.G
        target = int(G[G_SWITCH])
        G[G_SWITCH] = 0.0
        if target < 0:
            chosen, self._pending = self._pending, None
        else:
            chosen = self._bank[target - 1]
            self.program_number = target - 1
        self.state.V[:, vk.F_ENV_STAGE] = ENV_OFF
        self._active = chosen
        if chosen.listen is not None:
            listen_reset(chosen.listen)  # the ear from silence, the channel voices restart
        G[G_ENTER] = 1.0

    def _hear(self, frames, audio_in):
        """Copy this block's input (mono) into the ear and run it. Thread: audio."""
        listen = self._active.listen
        if listen is None:
            return None
        if audio_in is None:
            listen.input[:frames] = 0.0
        elif audio_in.ndim == 1:
            listen.input[:frames] = audio_in[:frames]
        elif audio_in.shape[1] == 1:
            listen.input[:frames] = audio_in[:frames, 0]
        else:
            listen_downmix(audio_in[:frames], listen.input)
        listen_ear(listen, frames)
        return listen

    def _render(self, out, events, n_events, ring=None, block_start_ns=0, latency_ns=0,
                audio_in=None):
        """Render all of ``out``, switching programs where a switch falls inside it."""
        G = self.state.G
        frames = out.shape[0]
        pos = 0
        heard = self._hear(frames, audio_in)
        while True:
            self._start_pending()
            program = self._current()
            listen = self._active.listen
            if listen is not heard:
                listen = None  # switched to a listening program inside the block: next one
            part = out[pos:] if pos else out
            key = (_program_type(program), part.dtype.char, part.flags.c_contiguous,
                   events.dtype.char)
            if listen is not None:
                listen.settings[LS_OFFSET] = pos
            if ring is None:
                if listen is None:
                    done = _render_block(key, part, events, n_events, self.state, program, None)
                else:
                    done = _render_block_with(key, part, events, n_events, self.state,
                                              program, listen)
            else:
                start = block_start_ns + int(pos * 1e9 / self.samplerate)
                if listen is None:
                    done = _render_ring(key, part, ring.slots, ring.header, events, start,
                                        latency_ns, self.state, program, None)
                else:
                    done = _render_ring_with(key, part, ring.slots, ring.header, events,
                                             start, latency_ns, self.state, program, listen)
            pos += done
            n_events = int(G[G_CARRY])
            if G[G_SWITCH] != 0.0 and G[G_SAMPLE] >= G[G_SWITCH_AT]:
                self._switch()
                continue  # the rest of the block (also a zero-frame one) on the new program
            if pos >= frames:
                return n_events

    def process_block(self, out, events, n_events, audio_in=None):
        """Render into ``out`` (float32, shape (frames <= max_block, 2)). Thread: audio.

        ``events`` is an int32 array of ``(offset, status, data1, data2)`` rows (see
        :mod:`spikesynth.events`); events held back by a program switch are left at its
        front, and their count returned. ``audio_in`` (float, shape (frames,) or
        (frames, channels), mixed to mono): the input a listening patch hears (None:
        silence; ignored by a patch without ``listen:``). Allocates nothing in compiled code.
        """
        if out.shape[0] > self.max_block:
            raise ValueError(f"block of {out.shape[0]} frames > max_block {self.max_block}")
        return self._render(out, events, n_events, audio_in=audio_in)

    def process_ring(self, out, ring, block_start_ns, latency_ns, audio_in=None):
        """Drain ``ring`` and render one block into ``out``; never raises. Thread: audio.

        Messages play at their arrival time plus ``latency_ns``, at a sample offset inside the
        block that starts at host time ``block_start_ns``. On an internal fault the block is
        silence and :attr:`faults` counts it.
        """
        try:
            if out.shape[0] > self.max_block:  # the host broke its promise: silence, counted
                out.fill(0.0)
                self.faults += 1
                return
            self._render(out, self.events, 0, ring, block_start_ns, latency_ns, audio_in)
        except Exception:  # noqa: BLE001 - the audio thread must never raise
            out.fill(0.0)
            self.faults += 1

    # -- main thread, offline ---------------------------------------------------------------
    def process(self, frames, events=(), audio_in=None):
        """Render ``frames`` frames with ``events`` = ``[(sample_offset, message), ...]``.

        A message is MIDI bytes or a :class:`ParamChange`. Thread: main (allocates the
        returned float32 array of shape (frames, 2)). Malformed MIDI is skipped and counted
        in :attr:`rejected`. Any ``frames`` is allowed (rendered in chunks of ``max_block``);
        a zero-frame call still applies its events. ``audio_in``: ``frames`` samples of
        input, shape (frames,) or (frames, channels), for a patch with ``listen:``.
        """
        frames = int(frames)
        if frames < 0:
            raise ValueError("frames must be >= 0")
        if audio_in is not None:
            audio_in = np.asarray(audio_in, dtype=np.float64)
            if audio_in.shape[0] != frames or audio_in.ndim not in (1, 2):
                raise ValueError(f"audio_in must have {frames} frames (shape (frames,) or "
                                 f"(frames, channels)), got shape {audio_in.shape}")
        out = np.zeros((frames, 2), dtype=np.float32)
        items = list(events)
        params = [(0, ParamChange(i, v)) for i, v in self._queued_params]
        self._queued_params = []
        midi = [(t, m) for t, m in items if not isinstance(m, ParamChange)]
        params += [(t, m) for t, m in items if isinstance(m, ParamChange)]
        evs, n, rejected = events_from_list(midi, max(frames, 1))
        self.rejected += rejected
        evs = evs[:n]
        if params:
            for t, _ in params:
                if not 0 <= int(t) < max(frames, 1):
                    raise ValueError(f"event offset {t} outside block of {frames} frames")
            rows = np.array([_param_row(t, p.index, p.value) for t, p in params],
                            dtype=np.int32)
            evs = np.concatenate([rows, evs])  # parameters first at equal offsets
            evs = evs[np.argsort(evs[:, 0], kind="stable")]
        e = 0
        n = len(evs)
        for start in range(0, max(frames, 1), self.max_block):
            stop = min(start + self.max_block, frames)
            e_end = e
            while e_end < n and evs[e_end, 0] < max(stop, 1):
                e_end += 1
            chunk = evs[e:e_end].copy()
            chunk[:, 0] -= start
            chunk = np.concatenate([self._carry, chunk])
            block_in = None if audio_in is None else audio_in[start:stop]
            held = self.process_block(out[start:stop], chunk, len(chunk), block_in)
            self._carry = chunk[:held].copy()
            e = e_end
        return out

    def stats(self) -> dict:
        """Counters for status lines and tests. Thread: any (reads only)."""
        G = self.state.G
        M = self.state.M
        return {
            "voices_active": int(G[G_ACTIVE]),
            "faults": self.faults,
            "nan_resets": int(G[G_NAN_RESETS]),
            "nonfinite_samples": int(M[M_NONFINITE]),
            "limited_samples": int(M[M_LIMITING]),
            "steals": int(G[G_STEALS]),
            "events_applied": int(G[G_EVENTS]),
            "events_rejected": self.rejected,
            "events_ignored": int(G[G_IGNORED]),
            "params_set": int(G[G_PARAMS_SET]),
            "program_changes": int(G[G_PROGRAM_CHANGES]),
            "programs_ignored": int(G[G_PROGRAMS_IGNORED]),
            "samples": int(G[G_SAMPLE]),
            "unmapped_notes": int(G[G_UNMAPPED]),
            "notes_retuned": int(G[G_RETUNED]),
        }


def trace_voice(patch, samplerate=48000, frames=48000, note=60, current=None):
    """Run one voice of ``patch`` alone and return its traces (for tests, plots and study).

    Thread: main (allocates).

    Parameters
    ----------
    note : int
        The voice is tuned for this note (drive solved for its frequency) and starts, like
        a played note, with a spike at sample 0.
    current : array of float, shape (frames,), optional
        Membrane input per sample, overriding the solved drive; the voice then starts at
        rest instead of with a spike.

    Returns
    -------
    dict of arrays, shape (frames,)
        ``v`` membrane, ``state`` (0 RESTING, 1 FIRING, 2 REFRACTORY), ``drive`` spike drive,
        ``spring`` spring output, ``out`` the voice's audio before the master section;
        ``spikes``: a list, per neuron (one for single-neuron voices), of the sample indices
        where it spiked; plus scalars ``period`` (samples), ``drive_level``, ``dc``.
        For the model voices ``state`` is 1 on samples with a spike; for network voices it
        counts network steps and ``v`` is the first neuron's membrane.
    """
    model = models.get(patch["model"])
    record = model.build(patch, 1)
    params = patch.param_vector()
    if current is not None:
        params[P_NOISE] = 0.0  # a given current is not noisy
    sr = float(samplerate)
    tables = note_tables(record, params, sr, getattr(patch, "tuning", None))
    assert tables.shape == (N_TABLES, 128)
    V = np.zeros((1, vk.N_FIELDS))
    rng = np.ones(1, dtype=np.uint64)
    kernels = model.kernels
    _solo_voice(record, V, params, tables, sr, note, kernels)
    drive_in = np.zeros(0)
    if current is None:
        kernels["start"](record, V, 0, params)
    else:
        kernels["rest"](record, V, 0, params)
        drive_in = np.ascontiguousarray(current, dtype=np.float64)
        frames = len(drive_in)
    n_neurons = model.trace_columns(record)
    trace = np.zeros((frames, vk.TRACE_FIELDS + n_neurons))
    left = np.zeros(frames)
    right = np.zeros(frames)
    info = {"period": V[0, vk.F_PERIOD], "drive_level": V[0, vk.F_DRIVE], "dc": V[0, vk.F_DC],
            "t_fire": V[0, vk.F_TFIRE], "t_ref": V[0, vk.F_TREF], "tau": V[0, vk.F_TAU],
            "v_start": V[0, vk.F_VSTART]}
    kernels["trace"](record, V, 0, rng, left, right, 0, frames, drive_in, trace)
    state = trace[:, vk.TR_STATE].astype(np.int8)
    if n_neurons:
        spikes = [np.nonzero(trace[:, vk.TRACE_FIELDS + j])[0] for j in range(n_neurons)]
    elif model.plot.get("states"):
        spikes = [np.nonzero((state[1:] == vk.FIRING) & (state[:-1] != vk.FIRING))[0] + 1]
        if current is None:
            spikes[0] = np.concatenate(([0], spikes[0]))
    else:
        spikes = [np.nonzero(state == 1)[0]]
    return {"v": trace[:, vk.TR_V], "state": state,
            "drive": trace[:, vk.TR_DRIVE], "spring": trace[:, vk.TR_SPRING],
            "out": trace[:, vk.TR_OUT], "spikes": spikes, **info}


def _solo_voice(record, V, params, tables, sr, note, kernels):
    """Row 0 of ``V``: a lone voice tuned to ``note`` (unit gain, flat envelope)."""
    solo_fields(V, 0, note)
    kernels["tune"](record, V, 0, params, tables, sr, tables[T_FREQ, int(note)])
