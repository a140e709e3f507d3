"""What the live callback leaves for other threads to read: the output tap and the probe.

Both are written by the audio thread (one producer) into rings allocated on main, and read
by any other thread (the UI server) without a lock; the counters are published with release
stores and read with acquire loads (:func:`spikesynth.events.store_release`,
:func:`spikesynth.events.read_acquire`). Nothing here allocates on the audio side.

The output tap
--------------
:func:`spikesynth.events.tap_write` copies each rendered block into a float32 ring of frames
and then advances the ring's frame counter with a release store. The compiled callback calls
it after the render (:meth:`spikesynth.rtcallback.CompiledCallback.attach_tap`); the Python callback
through :class:`spikesynth.ui.tap.OutputTap`, whose reader loads the counter before and
after its copy and drops any frame the callback overwrote meanwhile.

The live probe
--------------
The probe variant of the compiled callback (``play --ui``:
:func:`spikesynth.rtengine.render_engine_probe`) calls :func:`probe_before` and
:func:`probe_after` around the engine's render; :class:`LiveProbe` owns the arrays and reads
them for the UI.

Thread: see each function.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import literal_unroll, njit

from . import engine_state as ES
from .dsp import voice as vk
from .engine_state import ROUTING_VOCODER
from .events import read_acquire, store_release
from .listen import LS_ROUTING, nearest_channel
from .models import voice_trace
from .models.base import note_frequency

__all__ = [
    "LiveProbe",
    "Probe",
    "ProbePart",
    "RtProbeState",
    "probe_after",
    "probe_before",
    "probe_part",
]


# -- the live probe (play --ui): a separate compiled variant ---------------------------------
# The probe shadows the most recent voice: before each block it copies that voice's state (its
# row of V, its noise generator, its row of every per-voice array of the model record) into
# the probe's own arrays, and after the block it runs the seam's tracing variant
# (``voice_trace``) on the copy over the same frames, with the same drive (the ear's, for a
# listening patch). The trace's membrane and state go to a ring, the spikes to another. The
# voices themselves render exactly as without the probe, through the same render_engine;
# the audio path without --ui is a different compiled callback with no probe at all.
PH_FRAMES = 0  # audio (release): frames written to ``Probe.ring``
PH_SPIKES = 1  # audio (release): spikes written to ``Probe.spikes``
PH_SLOT = 2  # audio: the voice slot probed in the last block (-1: none sounds)
PH_NOTE_MILLI = 3  # audio: its note (MIDI number x 1000, bends excluded)
PH_NEURONS = 4  # audio: raster rows of the probed program (1 for a one-neuron model)
PH_SERIAL = 5  # audio: F_AGE of the probed voice (changes with every new note)
N_PROBE_HEADER = 8
PROBE_STATES = 0  # kernel "states" (RESTING/FIRING/REFRACTORY): a spike is FIRING's onset
PROBE_PULSES = 1  # a spike is a sample whose state is 1
PROBE_RASTER = 2  # a spike is a count in the trace's raster columns (networks)


class Probe(NamedTuple):
    """The probe's stream-long arrays (allocated once, on main)."""

    V: np.ndarray  # float64, like EngineState.V: the probed voice's copy (its row only)
    rng: np.ndarray  # uint64, like EngineState.rng
    left: np.ndarray  # float64 (max_block,): the copy's output (discarded)
    right: np.ndarray  # float64 (max_block,)
    drive: np.ndarray  # float64 (max_block,): a listening voice's drive
    ring: np.ndarray  # float32 (capacity, 2): membrane, state per sample
    spikes: np.ndarray  # int64 (capacity, 2): neuron, frame number
    header: np.ndarray  # int64 (N_PROBE_HEADER,): PH_*


class ProbePart(NamedTuple):
    """The probe's arrays for one program: a copy of its model record and the pairs
    (record array, copy) whose first axis is the voice slots."""

    model: tuple  # a copy of Program.model (same type)
    pairs: tuple  # ((real, copy), ...): never empty (a dummy pair pads it)
    trace: np.ndarray  # float64 (max_block, TRACE_FIELDS + raster columns)
    kind: np.ndarray  # int64 (2,): PROBE_*, raster rows


class RtProbeState(NamedTuple):
    """:class:`spikesynth.rtengine.RtState` with the probe."""

    slots: np.ndarray
    header: np.ndarray
    events: np.ndarray
    engine: tuple
    probe: Probe


@njit(cache=True, nogil=True)
def _copy_rows(pairs, i):
    for pair in literal_unroll(pairs):
        pair[1][i] = pair[0][i]


@njit(cache=True, nogil=True)
def _probe_before(s, part, choose):
    """Choose the most recent sounding voice (none unless ``choose``) and copy its state.
    Thread: audio."""
    P = s.probe
    S = s.engine
    V = S.V
    best = -1
    if choose:
        for i in range(int(S.G[ES.G_TOP])):
            if V[i, vk.F_ENV_STAGE] != vk.ENV_OFF and (best < 0
                                                        or V[i, vk.F_AGE] > V[best, vk.F_AGE]):
                best = i
    P.header[PH_SLOT] = best
    if best < 0:
        return
    for f in range(V.shape[1]):
        P.V[best, f] = V[best, f]
    P.rng[best] = S.rng[best]
    _copy_rows(part.probe.pairs, best)


@njit(cache=True, nogil=True)
def _probe_drive(s, part, L, i, frames):
    """The drive a listening voice ``i`` got in this block (as listen.listen_voices)."""
    P = s.probe
    V = P.V
    solved = V[i, vk.F_DRIVE]
    if L.settings[LS_ROUTING] == ROUTING_VOCODER:
        for n in range(frames):
            P.drive[n] = solved
        return P.drive
    bend = s.engine.C[int(V[i, vk.F_CHANNEL]), ES.C_BEND]
    c = nearest_channel(L.cf_hz, note_frequency(part.program.params, V[i, vk.F_NOTE], bend))
    for n in range(frames):
        P.drive[n] = solved + L.ear_drive[c, n]
    return P.drive


@njit(cache=True, nogil=True)
def _probe_trace(s, part, L, i, frames):
    P = s.probe
    trace = part.probe.trace[:frames]
    trace[:] = 0.0
    if L is None:
        voice_trace(part.probe.model, P.V, i, P.rng, P.left, P.right, 0, frames, None, trace)
    else:
        drive = _probe_drive(s, part, L, i, frames)
        voice_trace(part.probe.model, P.V, i, P.rng, P.left, P.right, 0, frames, drive, trace)
    return trace


@njit(cache=True, nogil=True)
def _probe_after(s, part, frames):
    """Trace the copy over this block and publish it into the rings. Thread: audio."""
    P = s.probe
    H = P.header
    i = H[PH_SLOT]
    if i < 0 or frames == 0:
        return
    trace = _probe_trace(s, part, part.listen, i, frames)
    kind = part.probe.kind[0]
    H[PH_NEURONS] = part.probe.kind[1]
    H[PH_NOTE_MILLI] = np.int64(round(P.V[i, vk.F_NOTE] * 1000.0))
    H[PH_SERIAL] = np.int64(P.V[i, vk.F_AGE])
    first = H[PH_FRAMES]
    mask = P.ring.shape[0] - 1
    was = P.ring[(first - 1) & mask, 1]  # the state before this block
    k = H[PH_SPIKES]
    smask = P.spikes.shape[0] - 1
    for n in range(frames):
        j = (first + n) & mask
        state = trace[n, vk.TR_STATE]
        P.ring[j, 0] = trace[n, vk.TR_V]
        P.ring[j, 1] = state
        if kind == PROBE_RASTER:
            for c in range(vk.TRACE_FIELDS, trace.shape[1]):
                if trace[n, c] > 0.0:
                    P.spikes[k & smask, 0] = c - vk.TRACE_FIELDS
                    P.spikes[k & smask, 1] = first + n
                    k += 1
        elif (state == 1.0 and (kind == PROBE_PULSES or was != 1.0)):
            P.spikes[k & smask, 0] = 0
            P.spikes[k & smask, 1] = first + n
            k += 1
        was = state
    store_release(H, PH_SPIKES, k)
    store_release(H, PH_FRAMES, first + frames)


@njit(cache=True, nogil=True)
def probe_before(s, p, choose):
    """Before a block of bank ``p`` (a ``LiveBank``): choose the voice to probe (none unless
    ``choose``: the voices carry on) and copy its state. Thread: audio."""
    k = 0
    for part in literal_unroll(p.parts):
        if k == p.which[0]:
            _probe_before(s, part, choose)
        k += 1


@njit(cache=True, nogil=True)
def probe_after(s, p, frames):
    """After a block of ``frames`` frames of bank ``p``: trace the copy, publish. Thread: audio."""
    k = 0
    for part in literal_unroll(p.parts):
        if k == p.which[0]:
            _probe_after(s, part, frames)
        k += 1


def _copy_record(node, pairs):
    """A copy of a record of arrays; ``pairs`` receives each (array, its copy) in order."""
    if isinstance(node, np.ndarray):
        copy = node.copy()
        pairs.append((node, copy))
        return copy
    if isinstance(node, tuple):
        items = [_copy_record(x, pairs) for x in node]
        return type(node)(*items) if hasattr(node, "_fields") else tuple(items)
    return node


def probe_part(program, model, n_slots, max_block) -> ProbePart:
    """The probe's copy of ``program``'s model record (``model``: its
    :class:`spikesynth.models.base.VoiceModel`) and its trace buffer. Thread: main."""
    record = program.model
    copied: list = []
    copy = _copy_record(record, copied)
    pairs = tuple((a, b) for a, b in copied if a.ndim >= 1 and a.shape[0] == n_slots)
    if not pairs:
        pairs = ((np.zeros(n_slots), np.zeros(n_slots)),)
    columns = int(model.trace_columns(record))
    if columns:
        kind = PROBE_RASTER
    else:
        kind = PROBE_STATES if model.plot.get("states") else PROBE_PULSES
    return ProbePart(copy, pairs, np.zeros((max_block, vk.TRACE_FIELDS + columns)),
                     np.array([kind, max(columns, 1)], dtype=np.int64))


class LiveProbe:
    """The probe's arrays and the UI's reader of them.

    Thread: constructed on main; written by the audio thread; :meth:`latest` from any other
    (the UI server). Parameters: a warmed-up :class:`spikesynth.engine.Synth`.
    """

    def __init__(self, synth, capacity: int = 1 << 15, spikes: int = 1 << 14):
        S = synth.state
        mb = synth.max_block
        self.arrays = Probe(np.zeros_like(S.V), np.ones_like(S.rng), np.zeros(mb), np.zeros(mb),
                            np.zeros(mb), np.zeros((capacity, 2), dtype=np.float32),
                            np.zeros((spikes, 2), dtype=np.int64),
                            np.zeros(N_PROBE_HEADER, dtype=np.int64))
        self.arrays.header[PH_SLOT] = -1
        self.capacity = capacity
        self.samplerate = float(synth.samplerate)

    @property
    def frames(self) -> int:
        """Frames traced so far. Thread: any."""
        return int(read_acquire(self.arrays.header, PH_FRAMES))

    def latest(self, frames: int) -> dict | None:
        """The last ``frames`` traced frames (at most the ring's capacity): ``v`` and
        ``state`` (float32 arrays), ``spikes`` (int array (k, 2): neuron, frame from the
        window's start), ``neurons``, ``note`` (MIDI, fractional), ``serial`` (changes with
        each new note), ``end`` (frames traced so far); None before anything was traced.

        Frames the audio thread overwrote during the copy are dropped from the window's
        start (the counters are loaded with acquire semantics before and after). Thread: any.
        """
        a = self.arrays
        H = a.header
        end = int(read_acquire(H, PH_FRAMES))
        if end == 0:
            return None
        spikes_end = int(read_acquire(H, PH_SPIKES))
        frames = min(int(frames), end, self.capacity)
        first = end - frames
        data = a.ring[np.arange(first, end) & (self.capacity - 1)]
        cap = a.spikes.shape[0]
        k0 = max(spikes_end - cap, 0)
        spikes = a.spikes[np.arange(k0, spikes_end) & (cap - 1)].copy()
        now = int(read_acquire(H, PH_FRAMES))
        lapped = min(max(now - self.capacity - first, 0), frames)
        now_spikes = int(read_acquire(H, PH_SPIKES))
        spikes = spikes[max(now_spikes - cap - k0, 0):]
        data, first = data[lapped:], first + lapped
        spikes = spikes[(spikes[:, 1] >= first) & (spikes[:, 1] < end)]
        spikes[:, 1] -= first
        return {"v": data[:, 0], "state": data[:, 1], "spikes": spikes,
                "neurons": int(H[PH_NEURONS]), "note": int(H[PH_NOTE_MILLI]) / 1000.0,
                "serial": int(H[PH_SERIAL]), "slot": int(H[PH_SLOT]), "end": end}
