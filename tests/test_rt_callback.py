"""The compiled PortAudio callback (spikesynth.rtcallback), called directly (no audio device).

The cfunc is called through ctypes with PortAudio's callback signature, exactly as PortAudio
calls it; its output is compared sample for sample with the Python path
(:meth:`spikesynth.engine.Synth.process_ring`) given the same MIDI and the same patch
switches, so the compiled table, the switch protocol and the fade are checked against the
engine's own semantics.
"""

from __future__ import annotations

import ctypes
import gc
import weakref

import numpy as np
import pytest

from spikesynth import rtcallback as rt
from spikesynth import rtengine
from spikesynth.engine import Synth
from spikesynth.events import EventRing
from spikesynth.patch import PATCH_DIR, load_patch

SR = 48000
BLOCK = 64
PA_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong,
                               ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p)


def make(patch="default.yaml"):
    synth = Synth(load_patch(PATCH_DIR / patch), samplerate=SR, max_block=512)
    # The session's programs: the compiled callback holds one program of each voice model.
    synth.set_programs([synth.prepare_patch(load_patch(PATCH_DIR / name))
                        for name in ("default.yaml", "lead.yaml", "lif.yaml")],
                       engine_switches=False)
    synth.warm_up()
    return synth, EventRing(256)


class Compiled:
    """A synth rendered by the compiled callback, called as PortAudio would."""

    def __init__(self, patch="default.yaml"):
        self.synth, self.ring = make(patch)
        self.cb = rtengine.EngineCallback(self.synth, self.ring, samplerate=SR, latency_ns=0,
                                    resync_ns=10**7)
        self.fn = PA_CALLBACK(self.cb.address)
        self.time_info = np.array([0.0, 1.0, 1.002])

    def block(self, frames=BLOCK, flags=0, time_info=True):
        out = np.full((frames, 2), np.nan, dtype=np.float32)
        code = self.fn(None, out.ctypes.data, frames,
                       self.time_info.ctypes.data if time_info else None, flags,
                       self.cb.userdata)
        assert code == 0  # paContinue
        return out


class Python:
    """The same synth rendered by Synth.process_ring (the Python callback's one call)."""

    def __init__(self, patch="default.yaml"):
        self.synth, self.ring = make(patch)

    def block(self, frames=BLOCK):
        out = np.zeros((frames, 2), dtype=np.float32)
        self.synth.process_ring(out, self.ring, 10**12, 0)
        return out


def play(host, script, blocks=300):
    """Render ``blocks`` blocks; ``script[b]`` is run before block ``b``."""
    out = []
    for b in range(blocks):
        if b in script:
            script[b](host)
        out.append(host.block())
    return np.concatenate(out)


def note(status, key, velocity):
    return lambda h: h.ring.push(0, [status, key, velocity])  # stamped long ago: offset 0


def switch(name):
    def do(h):
        prepared = h.synth.prepare_patch(load_patch(PATCH_DIR / name))
        if isinstance(h, Compiled):
            h.cb.use_patch(prepared)
        else:
            h.synth.use_patch(prepared)
    return do


def both(*steps):
    return lambda h: [s(h) for s in steps]


@pytest.mark.parametrize("other", ["lead.yaml", "lif.yaml"])
def test_compiled_callback_matches_the_python_path_across_patch_switches(other):
    """Notes, a switch (``lead``: same model, retune; ``lif``: another model, fade first),
    notes on the new patch, and a switch back: identical samples on both paths."""
    script = {0: both(note(0x90, 60, 100), note(0x90, 64, 90)),
              40: switch(other),
              45: note(0x90, 67, 110),
              120: both(note(0x80, 60, 0), note(0x80, 64, 0)),
              150: switch("default.yaml"),
              160: note(0x90, 72, 100),
              250: note(0x80, 72, 0)}
    compiled = Compiled()
    a = play(compiled, script)
    b = play(Python(), script)
    assert np.isfinite(a).all() and np.abs(a).max() > 0.01
    if other == "lead.yaml":
        np.testing.assert_array_equal(a, b)
    else:  # another model: the compiled path switches at the block the fade ends in, the
        # Python path 4 ms after the request: identical up to the switch, click-free after
        np.testing.assert_array_equal(a[:40 * BLOCK], b[:40 * BLOCK])
        assert np.abs(np.diff(a[:, 0])).max() < 0.25 and np.abs(a[-80 * BLOCK:]).max() > 0.01
    s = compiled.cb.stats()
    assert s["callbacks"] == 300 and s["faults"] == 0
    assert s["patch_switches"] == 2
    assert s["patch_fades"] == (2 if other == "lif.yaml" else 0)
    assert compiled.cb.patch.name == load_patch(PATCH_DIR / "default.yaml").name


def test_counters_flags_and_oversized_blocks():
    host = Compiled()
    host.block(flags=0x4)  # paOutputUnderflow
    host.block(flags=0x8)  # paOutputOverflow
    host.block(time_info=False)  # a NULL timeInfo is tolerated
    big = host.block(frames=513)  # larger than max_block: silence, counted
    assert (big == 0).all()
    s = host.cb.stats()
    assert (s["xruns"], s["overflows"], s["oversize_blocks"], s["callbacks"]) == (1, 1, 1, 4)
    assert s["frames"] == 3 * BLOCK + 513
    assert s["dac_delay_ns"] == 2_000_000  # outputBufferDacTime - currentTime
    assert 0 <= s["load_max"] < 100 and len(host.cb.loads()) == 4


def test_rows_are_reused_and_old_patch_arrays_released():
    """Hundreds of reloads (new arrays each time): table rows are recycled once the audio
    thread has moved on, and the arrays of a recycled row are freed."""
    host = Compiled()
    base = load_patch(PATCH_DIR / "default.yaml")
    first = None
    for k in range(3 * rt.ROWS):
        prepared = host.synth.prepare_patch(base.replace(gain_db=-6.0 - 0.01 * k))
        if first is None:
            first = weakref.ref(prepared.program.params)
        host.cb.use_patch(prepared)
        host.block()
        del prepared
    gc.collect()
    assert first() is None  # the first reload's params array was dropped
    assert host.cb.stats()["patch_switches"] == 3 * rt.ROWS
    assert host.synth.state.G[0] > 0  # rendered throughout


def test_hot_reloads_replace_program_rows_and_free_the_old_ones():
    """A hot reload (set_program) replaces a program's row in the program map: the program
    playing retunes into it, one not playing does not switch (its next program change plays
    the new row), and a replaced row is recycled, its arrays freed."""
    host = Compiled()  # programs default (playing), lead, lif
    base = load_patch(PATCH_DIR / "default.yaml")
    first = None
    for k in range(rt.ROWS):
        prepared = host.synth.prepare_patch(base.replace(gain_db=-6.0 - 0.01 * k))
        if first is None:
            first = weakref.ref(prepared.program.params)
        host.cb.set_program(k % 2, prepared)
        host.block()
        del prepared
    gc.collect()
    assert first() is None
    s = host.cb.stats()
    assert s["program"] == 0 and s["patch_switches"] == rt.ROWS // 2 and s["faults"] == 0
    assert host.cb.patch["gain_db"] == pytest.approx(-6.0 - 0.01 * (rt.ROWS - 2))


def test_a_switch_waits_while_the_audio_thread_is_stopped():
    """With no callbacks the rows fill up; a request then times out instead of overwriting
    a row the audio thread may still read."""
    host = Compiled()
    base = load_patch(PATCH_DIR / "default.yaml")
    with pytest.raises(TimeoutError):
        for k in range(rt.ROWS + 1):
            host.cb.use_patch(host.synth.prepare_patch(base.replace(gain_db=-1.0 - 0.1 * k)),
                              timeout=0.05)


def test_the_compiled_callback_never_calls_into_python():
    """No GIL, no Python C-API call, in the compiled callback's code (its own LLVM IR)."""
    host = Compiled()
    c = host.cb.rt
    ir = rt.compile_callback(rtengine.render_engine, c.state_layout, c.patch_layout, len(c.table),
                             cache=False).inspect_llvm()  # cached code cannot be inspected
    assert "clock_gettime" in ir and "load atomic" in ir  # it is the callback's code
    for symbol in ("PyGILState_Ensure", "PyEval_RestoreThread", "PyEval_AcquireThread"):
        assert symbol not in ir, symbol


def test_layout_rejects_what_the_callback_cannot_address():
    with pytest.raises(rt.RtUnavailable):
        rt.layout_of((np.zeros((4, 4))[:, 1],))  # not contiguous
    with pytest.raises(rt.RtUnavailable):
        rt.layout_of((np.zeros(3), [1, 2]))  # a list


class Probed(Compiled):
    """The probe variant (play --ui) of the compiled callback."""

    def __init__(self, patch="default.yaml"):
        self.synth, self.ring = make(patch)
        self.cb = rtengine.EngineCallback(self.synth, self.ring, samplerate=SR, latency_ns=0,
                                    resync_ns=10**7, probe=True)
        self.fn = PA_CALLBACK(self.cb.address)
        self.time_info = np.array([0.0, 1.0, 1.002])


@pytest.mark.parametrize("name", ["default.yaml", "sync_ring.yaml"])
def test_the_probe_traces_the_latest_voice_and_leaves_the_sound_alone(name):
    """The probe variant renders the same samples as the callback without it; its membrane
    is the one the seam's tracing variant gives for the same note (the voice traced alone
    from its note-on, :func:`spikesynth.engine.trace_voice`), and its spikes are there."""
    from spikesynth.engine import trace_voice

    script = {0: note(0x90, 57, 100), 20: note(0x90, 64, 100)}
    plain, probed = Compiled(name), Probed(name)
    assert np.array_equal(play(plain, script, 120), play(probed, script, 120))
    # The probe picks its voice before each block: the first block (nothing sounds yet) is
    # not traced, and note 64 (block 20) from block 21 on.
    got = probed.cb.probe.latest(100 * BLOCK)  # blocks 20..119
    assert got["note"] == 64.0 and got["end"] == 119 * BLOCK
    patch = load_patch(PATCH_DIR / name)
    alone = trace_voice(patch, SR, 100 * BLOCK, 64)
    v = got["v"].astype(np.float64)
    # The same neuron, seen from the engine's voice (envelope and the engine's own start):
    # its membrane correlates with the lone voice's sample by sample.
    ref = alone["v"]
    r = np.corrcoef(v[BLOCK:], ref[BLOCK:len(v)])[0, 1]
    assert r > 0.99, r
    assert len(got["spikes"]) > 10
    expected = sum(len(s) for s in alone["spikes"])
    assert abs(len(got["spikes"]) - expected) <= max(2, 0.05 * expected)
    assert got["neurons"] == max(len(alone["spikes"]), 1)


def test_the_compiled_duplex_callback_hears_as_the_python_path():
    """A listening patch (ear_resynth: the ear's 64 channels drive their voices) given the
    same input block by block: PortAudio's interleaved input pointer in the compiled callback,
    ``audio_in`` in ``Synth.process_ring``; the outputs agree sample for sample."""

    def synth():
        s = Synth(load_patch(PATCH_DIR / "ear_resynth.yaml"), samplerate=SR, max_block=512)
        s.warm_up()
        return s, EventRing(16)

    tone = (0.1 * np.sin(2 * np.pi * 440.0 * np.arange(60 * BLOCK) / SR)).astype(np.float32)
    compiled, ring = synth()
    cb = rtengine.EngineCallback(compiled, ring, samplerate=SR, latency_ns=0, resync_ns=10**7,
                           input_channels=1)
    fn = PA_CALLBACK(cb.address)
    python, pring = synth()
    got, want = [], []
    for b in range(60):
        block = np.ascontiguousarray(tone[b * BLOCK:(b + 1) * BLOCK, None])
        out = np.full((BLOCK, 2), np.nan, dtype=np.float32)
        assert fn(block.ctypes.data, out.ctypes.data, BLOCK, None, 0, cb.userdata) == 0
        got.append(out)
        ref = np.zeros((BLOCK, 2), dtype=np.float32)
        python.process_ring(ref, pring, 10**12, 0, block)
        want.append(ref)
    got, want = np.concatenate(got), np.concatenate(want)
    assert np.array_equal(got, want)
    assert np.sqrt(np.mean(got.astype(np.float64) ** 2)) > 1e-3  # the ear made it sound
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    assert fn(None, out.ctypes.data, BLOCK, None, 0x2, cb.userdata) == 0  # no input pointer
    assert cb.stats()["input_overflows"] == 1 and np.isfinite(out).all()


def test_a_switch_in_the_compiled_callback_moves_the_synths_parameter_view():
    """With the compiled callback the host switches programs there; the synth's own view
    (what OSC and UI parameters are checked against) must follow, or a /param for the new
    voice model would be refused (or land on another model's index)."""
    from types import SimpleNamespace

    from spikesynth.audio import AudioHost

    synth = Synth(load_patch(None), 48000, 256)
    izh = synth.prepare_patch(load_patch(PATCH_DIR / "izhikevich_rs.yaml"))
    taken = []
    host = SimpleNamespace(rt=SimpleNamespace(use_patch=taken.append), synth=synth)
    with pytest.raises(ValueError):
        synth.param_target("izhikevich.current", 12.0)  # not a key of the default patch
    assert AudioHost.use_patch(host, izh) and taken == [izh]
    index, value = synth.param_target("izhikevich.current", 12.0)
    assert synth.patch["model"] == "izhikevich" and value == 12.0


def test_a_program_change_sounds_at_its_sample_inside_the_block():
    """Live program change is the engine's event: a 0xC0 in the ring, due mid-block, fades
    the voices from its own sample (not the block's), the new program's row plays from the
    fade's end, and a note sent just after it plays there. The frame clock is pinned (the
    callback's anchor set before each call, as a steady sound card keeps it), so messages land
    on known frames: block sizes 64 and 256 give the same samples, and the same as the
    engine's Python path (Synth.process_ring) given the same block times."""
    import time

    from spikesynth.analysis import cents, estimate_f0
    from spikesynth.engine_state import SWITCH_FADE_MS

    a = load_patch(PATCH_DIR / "default.yaml")
    b = a.replace(transpose=3.0)  # three semitones up: note 64 at 392 Hz
    due = 24037  # mid-block at 64 (37) and 256 (229)
    frames = 44032
    base = time.monotonic_ns() - 10**10  # block starts in the past: the clock never resyncs

    def at(frame):  # a host time that lands on ``frame`` (offset = int((t - start) * sr))
        return base + frame * 10**9 // SR + 10_000

    def render(kind, block, change=True):
        synth = Synth(a, samplerate=SR, max_block=512)
        synth.set_programs([synth.prepare_patch(a), synth.prepare_patch(b)], 0)
        synth.warm_up()
        ring = EventRing(64)
        ring.push(at(0), [0x90, 57, 100])
        ring.push(at(due - 1), [0x80, 57, 0])  # released just before: not restarted
        if change:
            ring.push(at(due), [0xC0, 1])
            ring.push(at(due), [0x90, 64, 100])  # the same frame, after the change
        out = []
        if kind == "compiled":
            cb = rtengine.EngineCallback(synth, ring, samplerate=SR, latency_ns=0,
                                   resync_ns=10**15)
            fn = PA_CALLBACK(cb.address)
            for _ in range(0, frames, block):
                cb.rt.table[rt.H_ANCHOR] = base  # each block starts at base + its frame / SR
                o = np.full((block, 2), np.nan, dtype=np.float32)
                assert fn(None, o.ctypes.data, block, None, 0, cb.userdata) == 0
                out.append(o)
            return np.concatenate(out), synth, cb.stats()
        for f in range(0, frames, block):
            o = np.zeros((block, 2), dtype=np.float32)
            synth.process_ring(o, ring, base + f * 10**9 // SR, 0)
            out.append(o)
        return np.concatenate(out), synth, None

    got, synth, stats = render("compiled", 256)
    assert stats["program"] == 1 and stats["program_switches"] == 1 and stats["faults"] == 0
    assert stats["patch_fades"] == 0  # the engine's own fade, not a host switch
    np.testing.assert_array_equal(render("compiled", 64)[0], got)
    np.testing.assert_array_equal(render("python", 256)[0], got)
    # From the audio: the change is heard from its own sample (the look-ahead later) ...
    lag = synth.latency
    plain = render("compiled", 256, change=False)[0]
    first = int(np.argmax(np.any(got != plain, axis=1)))
    assert due + lag <= first <= due + lag + 1, (first, due + lag)
    x = got[:, 0].astype(np.float64)
    f_old = estimate_f0(x[due + lag - 12000:due + lag], SR, 220.0)
    assert abs(cents(f_old, 220.0)) < 5.0, f_old  # program 0 up to it
    # ... silent at the fade's end, then note 64 on program 1 (b's tuning: 392 Hz, not 330).
    switch = due + lag + int(np.ceil(SWITCH_FADE_MS * 1e-3 * SR))
    assert np.abs(got[switch - 8:switch]).max() < 0.02
    assert np.abs(got[switch:switch + 960]).max() > 0.05
    f_new = estimate_f0(x[switch + 2400:switch + 16800], SR, 392.0)
    assert abs(cents(f_new, 440.0 * 2 ** (-2 / 12))) < 5.0, f_new  # note 67
