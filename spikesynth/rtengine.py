"""The engine behind the render contract of :mod:`spikesynth.rtcallback`: what ``play``'s
compiled PortAudio callback renders.

:func:`render_engine` is :func:`spikesynth.render.render_ring_with` under that contract (a
listening patch first runs its ear over the block's input; a program change returns at the end
of its fade with the program number); :func:`render_engine_probe` is the same with the live
probe of ``play --ui`` around it (:mod:`spikesynth.rtprobe`). :class:`EngineCallback` builds a
:class:`~spikesynth.rtcallback.CompiledCallback` for a :class:`spikesynth.engine.Synth`: one
patch row per program (a :class:`LiveBank` of one prepared program per kind the session
plays, so one compiled callback serves them all) and the engine's switch rules (retune when
the voices carry on, else fade) on the main thread's side.

Thread: :class:`EngineCallback` on main; the compiled functions on the audio thread.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import literal_unroll, njit

from . import engine_state as ES
from . import render as R
from .dsp import voice as vk
from .listen import listen_ear, listen_reset
from .rtcallback import (
    N_PROGRAMS,
    SWITCH_FADE,
    SWITCH_FRESH,
    SWITCH_NONE,
    SWITCH_RETUNE,
    CompiledCallback,
    Rendered,
)
from .rtprobe import LiveProbe, RtProbeState, probe_after, probe_before, probe_part

__all__ = ["EngineCallback", "LiveBank", "LivePart", "RtState", "render_engine",
           "render_engine_probe"]


class RtState(NamedTuple):
    """What lives as long as the stream: the MIDI ring, the event buffer, the engine state."""

    slots: np.ndarray  # ring slots, int64 (capacity, 4)
    header: np.ndarray  # ring header, int64 (4,)
    events: np.ndarray  # int32 (MAX_EVENTS, 4): this block's events
    engine: tuple  # spikesynth.engine_state.EngineState


class LivePart(NamedTuple):
    """One program of a patch row and its ear (``listen:`` patches), or None."""

    program: tuple  # spikesynth.engine_state.Program
    listen: object  # spikesynth.listen.ListenState, or None (the listening code compiled out)
    probe: object = None  # ProbePart (the probe variant, play --ui), or None


class LiveBank(NamedTuple):
    """A patch row: one prepared program per kind the session plays (voice model, and
    whether it listens: a fixed tuple of types, so one compiled callback serves every
    program), and which of them sounds."""

    which: np.ndarray  # int64 (1,): the index in ``parts`` that renders
    parts: tuple  # LivePart, one per kind


@njit(cache=True, nogil=True)
def hear(heard, mono, frames):
    """``mono[:frames]`` = the input block ``heard`` (float32, (frames, channels)) mixed to
    mono; silence when it has no channel. Thread: audio."""
    channels = heard.shape[1]
    for n in range(frames):
        x = 0.0
        for c in range(channels):
            x += heard[n, c]
        mono[n] = x / channels if channels > 0 else 0.0


@njit(cache=True, nogil=True)
def _render_part(out, heard, s, prog, L, block_start_ns, latency_ns, fresh):
    """Render with ``prog``; a listening part first runs the ear over this block's input."""
    if L is not None:
        if fresh:
            listen_reset(L)  # the ear from silence, the channel voices restart
        hear(heard, L.input, out.shape[0])
        listen_ear(L, out.shape[0])
    return R.render_ring_with(out, s.slots, s.header, s.events, block_start_ns, latency_ns,
                              s.engine, prog, L)


@njit(cache=True, nogil=True)
def render_engine(out, heard, block_start_ns, latency_ns, mode, s, p):
    """:func:`spikesynth.render.render_ring_with` under the render contract; ``heard`` is
    what a listening patch hears. Thread: audio.

    A program change in the ring fades the voices at its sample offset (the engine's own
    event); when the fade ends inside ``out`` this returns there with the program number
    (:class:`Rendered`), and the callback renders the rest with that program's row."""
    S = s.engine
    G = S.G
    if mode == SWITCH_FRESH:
        for i in range(int(G[ES.G_TOP])):
            S.V[i, vk.F_ENV_STAGE] = vk.ENV_OFF
        G[ES.G_ENTER] = 1.0  # the program's own values; the keys still held restart
    elif mode == SWITCH_RETUNE:
        G[ES.G_RETUNE] = 1.0
    elif mode == SWITCH_FADE and G[ES.G_SWITCH] == 0.0:
        R.fade_all(S, max(ES.SWITCH_FADE_MS * 1e-3 * G[ES.G_SR], 1.0))
    frames = out.shape[0]
    done = 0
    k = 0
    for part in literal_unroll(p.parts):
        if k == p.which[0]:
            done = _render_part(out, heard, s, part.program, part.listen, block_start_ns,
                                latency_ns, mode == SWITCH_FRESH)
        k += 1
    program = np.int64(-1)
    if G[ES.G_SWITCH] > 0.0 and G[ES.G_SAMPLE] >= G[ES.G_SWITCH_AT]:
        program = np.int64(G[ES.G_SWITCH]) - 1  # the fade is over: the host switches here
        G[ES.G_SWITCH] = 0.0
    else:
        for n in range(done, frames):  # nothing else stops a render early: defensive
            out[n, 0] = 0.0
            out[n, 1] = 0.0
        done = frames
    return Rendered(np.int64(done), G[ES.G_ACTIVE] != 0.0, program)


@njit(cache=True, nogil=True)
def render_engine_probe(out, heard, block_start_ns, latency_ns, mode, s, p):
    """:func:`render_engine` with the live probe around it (``play --ui``; the probe is
    :func:`spikesynth.rtprobe.probe_before` and :func:`~spikesynth.rtprobe.probe_after`).
    Thread: audio."""
    probe_before(s, p, mode == SWITCH_NONE or mode == SWITCH_FADE)
    rendered = render_engine(out, heard, block_start_ns, latency_ns, mode, s, p)
    probe_after(s, p, rendered.frames)
    return rendered


def engine_state(synth, ring) -> RtState:
    """The stream-long arrays of ``synth`` and ``ring``. Thread: main."""
    return RtState(ring.slots, ring.header, synth.events, synth.state)


class EngineCallback:
    """A :class:`CompiledCallback` for a :class:`spikesynth.engine.Synth` and its ring, with
    the engine's patch-switch rules (``Synth.use_patch``) on the main thread's side.

    Program change is the engine's event: the callback switches to the program's row at its
    sample (see the module docstring); the rows of the synth's programs are written here at
    construction and by :meth:`set_program` (hot reload).

    Thread: constructed on main; :meth:`use_patch`, :meth:`set_program` on main or another
    thread (callers serialise).

    Parameters
    ----------
    synth : spikesynth.engine.Synth
        Warmed up; its current prepared patch is the first one (program
        ``synth.program_number``), and its programs (:meth:`Synth.set_programs`) are the
        program map: program change *n* plays the *n*-th.
    ring : spikesynth.events.EventRing
    samplerate, max_block, latency_ns, resync_ns, input_channels : int
        See :class:`CompiledCallback`.
    probe : bool
        Compile the variant with the live probe (:func:`render_engine_probe`; ``play --ui``)
        and read it through :attr:`probe` (:mod:`spikesynth.rtprobe`).
    """

    def __init__(self, synth, ring, *, samplerate, latency_ns, resync_ns, input_channels=0,
                 probe=False):
        from . import models

        self._models = models
        self._synth = synth
        #: The live probe's reader (:class:`spikesynth.rtprobe.LiveProbe`), or None: the
        #: callback without probe.
        self.probe = LiveProbe(synth) if probe else None
        prepared = synth.prepared
        kinds: dict = {}
        for p in (prepared, *[q for q in synth.programs if q is not None]):
            kinds.setdefault(self._kind(p), p)
        self._kinds = list(kinds)
        self._bank = [self._part(kinds[k]) for k in self._kinds]
        self._keys: list = []  # one representative prepared patch per compatibility class
        self._requested = prepared
        programs = tuple(synth.programs)[:N_PROGRAMS]
        playing = int(synth.program_number) if 0 <= synth.program_number < N_PROGRAMS else 0
        #: The prepared patch last given for each program (the source of a carry-over).
        self._latest = {playing: prepared}
        state = engine_state(synth, ring)
        if self.probe is not None:
            state = RtProbeState(*state, self.probe.arrays)
        self.rt = CompiledCallback(render_engine_probe if probe else render_engine,
                                   state,
                                   self._row(prepared), self._key(prepared), tag=prepared,
                                   program=playing,
                                   samplerate=samplerate, max_block=synth.max_block,
                                   latency_ns=latency_ns, resync_ns=resync_ns,
                                   input_channels=input_channels)
        for number, other in enumerate(programs):
            if other is not None and number != playing:
                self.set_program(number, other)

    @staticmethod
    def _kind(prepared):
        # the model, whether the mono modes are compiled in (Synth(every_voice_mode=True)
        # gives every program them), and whether it listens
        return (type(prepared.program.model), prepared.program.solo is None,
                prepared.listen is not None)

    def _part(self, prepared) -> LivePart:
        if self.probe is None:
            return LivePart(prepared.program, prepared.listen)
        model = self._models.get(prepared.patch["model"])
        return LivePart(prepared.program, prepared.listen,
                        probe_part(prepared.program, model, self._synth.n_slots,
                                   self._synth.max_block))

    def _row(self, prepared) -> LiveBank:
        index = self._kinds.index(self._kind(prepared))
        self._bank[index] = self._part(prepared)
        return LiveBank(np.array([index], dtype=np.int64), tuple(self._bank))

    def _compatible(self, old, new) -> bool:
        """Whether the voices carry on into ``new`` (a listening patch always starts afresh:
        its ear and channel voices, as ``Synth.use_patch``)."""
        model = self._models.get(new.patch["model"])
        return (type(old.program.model) is type(new.program.model)
                and old.listen is None and new.listen is None
                and model.compatible(old.patch, new.patch))

    def _key(self, prepared) -> int:
        for k, other in enumerate(self._keys):
            if self._compatible(other, prepared):
                return k
        self._keys.append(prepared)
        return len(self._keys) - 1

    def _checked(self, prepared, last):
        """``prepared`` with this synth's ear, and carrying ``last``'s running state on when
        the voices carry on into it (a network's); ValueError for a kind not in the stream."""
        prepared = self._synth._fitted(prepared)
        if self._kind(prepared) not in self._kinds:
            raise ValueError(f"voice model {prepared.patch['model']} "
                             f"{'listening ' if prepared.listen is not None else ''}"
                             f"{'with the mono modes ' if prepared.program.solo else ''}"
                             "is not in this stream")
        if last is not None and self._compatible(last, prepared):
            model = self._models.get(prepared.patch["model"])
            record = model.carry_over(last.program.model, prepared.program.model)
            prepared = type(prepared)(prepared.patch, prepared.program._replace(model=record))
        return prepared

    def use_patch(self, prepared, timeout: float = 1.0) -> None:
        """Switch the program playing to a prepared patch, as ``Synth.use_patch`` does
        (retune or fade); the program map keeps the program's own patch.

        Raises :class:`TimeoutError` when the audio thread takes no switches (stopped), and
        ``ValueError`` for a voice model the stream was not opened with.
        """
        playing = self.rt.playing
        prepared = self._checked(prepared, self._latest.get(playing, self._requested))
        self.rt.request(self._row(prepared), self._key(prepared), tag=prepared,
                        timeout=timeout)
        self._requested = self._latest[playing] = prepared

    def set_program(self, number: int, prepared, timeout: float = 1.0) -> None:
        """Program ``number`` is now ``prepared`` (a hot reload): a program change to it plays
        it, and if it is playing the voices retune or fade into it. Raises as
        :meth:`use_patch`."""
        prepared = self._checked(prepared, self._latest.get(number))
        self.rt.set_program(number, self._row(prepared), self._key(prepared), tag=prepared,
                            timeout=timeout)
        self._latest[number] = prepared

    @property
    def playing(self) -> int:
        """The program the audio thread plays. Thread: any."""
        return self.rt.playing

    @property
    def patch(self):
        """The :class:`~spikesynth.patch.Patch` the audio thread renders now."""
        current = self.rt.current()
        return (current if current is not None else self._requested).patch

    @property
    def address(self) -> int:
        return self.rt.address

    @property
    def userdata(self) -> int:
        return self.rt.userdata

    def stats(self) -> dict:
        return self.rt.stats()

    def loads(self):
        return self.rt.loads()

