"""A PortAudio stream callback in compiled code that never takes the GIL.

:func:`compile_callback` turns a compiled render function and two records of arrays into a
numba ``@cfunc`` with PortAudio's ``PaStreamCallback`` signature::

    int callback(const void *input, void *output, unsigned long frameCount,
                 const PaStreamCallbackTimeInfo *timeInfo,
                 PaStreamCallbackFlags statusFlags, void *userData)

:class:`CompiledCallback` owns the ``userData``: one int64 *table* that the main thread builds
and keeps alive. The callback rebuilds every array from the addresses and shapes in the table
(``numba.carray``), so nothing on the audio side is a Python object and the GIL is never
taken (an exception inside the render is caught in compiled code: silence, counted).

The render contract (what an engine provides)
----------------------------------------------
``render(out, heard, block_start_ns, latency_ns, mode, state, patch) -> bool``, an
``@njit(nogil=True)`` function:

* ``out``: float32 array, shape (frames, channels), PortAudio's interleaved output buffer;
* ``heard``: float32 array, shape (frames, input channels), PortAudio's interleaved input
  buffer of a duplex stream (input block *k* arrives with output block *k*); zero channels
  for an output-only stream, or when PortAudio passes no input;
* ``block_start_ns``: host time (``CLOCK_MONOTONIC``, as ``time.monotonic_ns``) of the
  block's first frame, from the frame clock described in :mod:`spikesynth.audio`;
* ``latency_ns``: MIDI arrival-to-sound latency;
* ``mode``: :data:`SWITCH_NONE`; :data:`SWITCH_RETUNE` (first block of a new ``patch`` that
  the sounding voices carry on into); :data:`SWITCH_FADE` (a switch to an incompatible patch
  waits: fade every voice out, leave the MIDI ring alone); :data:`SWITCH_FRESH` (first block
  of a patch after such a fade: clear the voices);
* ``state``: a NamedTuple of arrays that lives as long as the stream (voices, ring, ...);
* ``patch``: a NamedTuple of arrays (fields may be plain tuples of arrays) that the main
  thread switches with :meth:`CompiledCallback.request`;
* returns a :class:`Rendered`: the frames it rendered (all of ``out``, or fewer when the
  engine's own program change is due inside the block: its fade ends there), whether any
  voice still sounds (the callback ends a fade when it is False), and the program to switch
  to at that frame (-1: none). The callback then looks the program's row up in the table's
  program map and renders the rest of the block with it (``SWITCH_FRESH``), so a program
  change sounds at its sample offset, as offline.

Every array must be C-contiguous and of a fixed dtype and rank: the callback is compiled for
the layout of the records it was built from (:func:`layout_of`), and every later ``patch``
must have the same layout (shapes may differ).

Switching without the GIL on the audio side
-------------------------------------------
The table holds ``ROWS`` patch rows and a *program map*: for each program number 0-127 the
row that plays it (-1: none). Program change is the engine's own event (``0xC0`` in the MIDI
ring, at arrival + MIDI latency like a note): at its sample offset the render fades every
voice, returns at the fade's end with the program number, and the callback switches to that
program's row (``H_PROGRAM``, ``H_CURRENT``) for the rest of the block. Events that came after
the program change in the ring play on the new row (the engine carries them through the fade).

The main thread changes rows in two ways, both published with a release store of
``(sequence << 24) | (program << 16) | row`` at ``H_REQUEST`` after the row is written:
:meth:`CompiledCallback.set_program` (a hot reload: the map entry too, itself a release
store) and :meth:`CompiledCallback.request` (another patch for the program playing, as the
UI's edits). The callback loads the request with acquire semantics (:func:`atomic_load`), so
it never sees a row half-written, and takes it as its target (``H_TARGET``) only if it names
the program playing then (a request for a program no longer playing is stale). Each row
carries a compatibility key: a target with the key of the current row switches at the next
block (``SWITCH_RETUNE``); any other waits for a fade (``SWITCH_FADE`` until the render
returns False, then ``SWITCH_FRESH``). The latest request always wins. The callback writes
back the latest sequence it has seen (``H_SEEN``), then the row it renders (``H_CURRENT``)
and its target; the main thread reuses a row (and drops its arrays) only when it is neither
current nor the target, not in the program map, and not named by (or dropped from the map
by) a request at or after ``H_SEEN``, so the audio thread never reads an array that was
freed.

The output tap and the live probe
---------------------------------
:meth:`CompiledCallback.attach_tap` gives the callback a preallocated float32 ring: after the
render it copies the block there (:func:`spikesynth.events.tap_write`) and advances the
ring's frame counter with a release store; a reader on another thread (the UI server) loads
the counter with acquire semantics, copies the frames it wants, and loads the counter again
to drop any frame the callback overwrote meanwhile (:class:`spikesynth.ui.tap.OutputTap`).
One producer, any number of readers, no lock, nothing allocated on the audio side. The live
probe of ``play --ui`` (:func:`spikesynth.rtengine.render_engine_probe`) works the same
way: the tap's copy is :func:`spikesynth.events.tap_write`, the probe lives in
:mod:`spikesynth.rtprobe`.

This module knows nothing of the engine: :mod:`spikesynth.rtengine` puts the engine behind
the render contract.

Thread: :func:`compile_callback` and :class:`CompiledCallback` on main; the compiled callback
on the audio thread; :meth:`CompiledCallback.stats` from any thread.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .events import load_acquire, read_acquire, store_release, tap_write

__all__ = [
    "CompiledCallback",
    "Rendered",
    "RtUnavailable",
    "SWITCH_FADE",
    "SWITCH_FRESH",
    "SWITCH_NONE",
    "SWITCH_RETUNE",
    "compile_callback",
    "layout_of",
]

SWITCH_NONE, SWITCH_RETUNE, SWITCH_FADE, SWITCH_FRESH = 0, 1, 2, 3

# PaStreamCallbackFlags bits (portaudio.h).
PA_INPUT_UNDERFLOW = 0x1
PA_INPUT_OVERFLOW = 0x2
PA_OUTPUT_UNDERFLOW = 0x4
PA_OUTPUT_OVERFLOW = 0x8
PA_CONTINUE = 0

LOAD_HISTORY = 1 << 16  # per-callback loads kept (ppm of the block), as the Python host
LEAK_SHIFT = 4  # the clock anchor follows a late callback by error >> LEAK_SHIFT
N_PROGRAMS = 128  # program numbers in the program map
ROWS = N_PROGRAMS + 64  # patch rows in the table: every program's, and as many for switches
ROW_BITS = 16
PROGRAM_SHIFT = 16  # H_REQUEST: (sequence << SEQ_SHIFT) | (program << PROGRAM_SHIFT) | row
SEQ_SHIFT = 24

# Table header (int64 slots). Written by main before the stream starts unless marked.
H_REQUEST = 0  # main (release): (sequence << ROW_BITS) | row
H_SEEN = 1  # audio: the latest request sequence it has read
H_CURRENT = 2  # audio: the row being rendered
H_FADING = 3  # audio: 1 while a switch waits for the voices to fade
H_SOUNDING = 4  # audio: the render's last return value
H_CALLBACKS = 5  # audio: counters from here ...
H_UNDERFLOWS = 6
H_OVERFLOWS = 7
H_OVERSIZE = 8
H_OVERRUNS = 9
H_RESYNCS = 10
H_FRAMES = 11
H_LOAD_SUM = 12
H_LOAD_MAX = 13
H_FAULTS = 14
H_SWITCHES = 15
H_ANCHOR = 16  # frame clock anchor (ns)
H_LAST_ENTRY = 17  # CLOCK_MONOTONIC ns at the last callback's entry
H_DAC_DELAY = 18  # timeInfo: outputBufferDacTime - currentTime of the last callback (ns)
H_SAMPLERATE = 19  # constants from here (main, before start)
H_MAX_BLOCK = 20
H_LATENCY = 21
H_RESYNC_NS = 22
H_CHANNELS = 23
H_ROW_LEN = 24
H_FADES = 25  # audio: switches that waited for a fade
H_IN_UNDERFLOWS = 26  # audio: PortAudio's input-underflow flag
H_IN_OVERFLOWS = 27  # audio: PortAudio's input-overflow flag
H_IN_CHANNELS = 28  # main, before start: interleaved input channels (0: output only)
H_TAP_CAP = 29  # main: frames in the output tap's ring (a power of two)
H_TAP_HEADER = 30  # main: address of the tap's int64 frame counter
H_TAP_RING = 31  # main (release, last): address of the tap's float32 ring (0: no tap)
H_PROGRAM = 32  # audio (release; main before start): the program playing
H_TARGET = 33  # audio (release): the row the callback switches to (H_CURRENT when none)
H_PROGRAM_SWITCHES = 34  # audio: program changes switched at their sample
H_PROGRAMS_MISSING = 35  # audio: program changes to a program without a row (not switched)
N_HEADER = 40
PROGRAMS_BASE = N_HEADER  # the program map: N_PROGRAMS slots, the row of each program
STATE_BASE = PROGRAMS_BASE + N_PROGRAMS


class Rendered(NamedTuple):
    """What a render under the contract returns (see the module docstring)."""

    frames: int  # frames rendered: all, or fewer when a program switch is due there
    sounding: bool  # any voice still sounds
    program: int  # the program to switch to at ``frames`` (-1: none)


class RtUnavailable(RuntimeError):
    """The compiled callback cannot be used here (the message says why)."""


# -- compiled helpers -------------------------------------------------------------------------
@intrinsic
def _as_pointer(typingctx, address):
    """An integer address as ``void *`` (for ``numba.carray``)."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


@intrinsic
def _address(typingctx, pointer):
    """A ``void *`` as an integer (0 for NULL)."""
    sig = types.int64(pointer)

    def codegen(context, builder, signature, args):
        return builder.ptrtoint(args[0], ir.IntType(64))

    return sig, codegen


@njit(cache=True, nogil=True)
def _publish(table, index, value):
    store_release(table, index, value)


def _clock_id() -> int:
    """The ``clock_gettime`` clock id behind ``time.monotonic_ns``, or raise."""
    info = time.get_clock_info("monotonic")
    if "CLOCK_MONOTONIC" not in info.implementation or not hasattr(time, "CLOCK_MONOTONIC"):
        raise RtUnavailable(f"time.monotonic is {info.implementation}, not clock_gettime")
    return int(time.CLOCK_MONOTONIC)


@intrinsic
def _clock_ns(typingctx, clock_id):
    """``clock_gettime(clock_id)`` in ns, calling libc directly (no Python, no GIL)."""
    sig = types.int64(clock_id)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        timespec = ir.LiteralStructType([i64, i64])
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), timespec.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        ts = cgutils.alloca_once(builder, timespec)
        cid = context.cast(builder, args[0], signature.args[0], types.int32)
        builder.call(fn, [cid, ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


# -- record layouts ---------------------------------------------------------------------------
class Leaf(NamedTuple):
    """One array of a record: where it sits and what the callback rebuilds."""

    path: tuple  # field indices from the record's root
    dtype: np.dtype
    ndim: int


class Scalar(NamedTuple):
    """A number in a record (``int`` as int64, ``float`` as float64), kept in the table."""

    path: tuple
    kind: str  # "int" or "float"


class Nothing(NamedTuple):
    """``None`` in a record (an optional part: the compiled code prunes it)."""

    path: tuple


def layout_of(record) -> tuple:
    """The structure of a record of arrays: a nested tuple of :class:`Leaf` (arrays),
    :class:`Scalar` (Python or numpy ints and floats), :class:`Nothing` (None), and the
    record's own class at each level; hashable, used as the compiled callback's key.
    Thread: any.

    Raises :class:`RtUnavailable` for anything else, or an array that is not C-contiguous.
    """

    def walk(node, path):
        if isinstance(node, np.ndarray):
            if not node.flags.c_contiguous:
                raise RtUnavailable(f"array at {path} is not C-contiguous")
            return Leaf(path, node.dtype, node.ndim)
        if node is None:
            return Nothing(path)
        if isinstance(node, (int, np.integer)) and not isinstance(node, (bool, np.bool_)):
            return Scalar(path, "int")
        if isinstance(node, (float, np.floating)):
            return Scalar(path, "float")
        if isinstance(node, tuple):
            cls = type(node) if hasattr(node, "_fields") else tuple
            return (cls, tuple(walk(x, path + (i,)) for i, x in enumerate(node)))
        raise RtUnavailable(f"{type(node).__name__} at {path} is not an array, a number or "
                            "a tuple")

    return walk(record, ())


_LEAVES = (Leaf, Scalar, Nothing)


def _leaves(layout):
    if isinstance(layout, _LEAVES):
        return [layout]
    return [leaf for child in layout[1] for leaf in _leaves(child)]


def _width(leaf) -> int:
    """Table slots of one leaf: address and shape, one number, or none."""
    if isinstance(leaf, Leaf):
        return 1 + leaf.ndim
    return 1 if isinstance(leaf, Scalar) else 0


def _arrays(record):
    if isinstance(record, np.ndarray):
        return [record]
    if not isinstance(record, tuple):
        return []
    return [a for x in record for a in _arrays(x)]


def _scalars(record):
    if isinstance(record, tuple):
        return [v for x in record for v in _scalars(x)]
    return [] if record is None or isinstance(record, np.ndarray) else [record]


def _row_len(layout) -> int:
    return sum(_width(leaf) for leaf in _leaves(layout))


def _pack(record, out) -> None:
    """Write each array's address and shape, and each number, into ``out`` (int64) in leaf
    order (a float as its float64 bits: the callback reads the table as float64 there)."""
    k = 0

    def walk(node):
        nonlocal k
        if isinstance(node, np.ndarray):
            out[k] = node.ctypes.data
            out[k + 1:k + 1 + node.ndim] = node.shape
            k += 1 + node.ndim
        elif node is None:
            pass
        elif isinstance(node, (float, np.floating)):
            out[k] = np.array([node], dtype=np.float64).view(np.int64)[0]
            k += 1
        elif isinstance(node, (int, np.integer)):
            out[k] = int(node)
            k += 1
        else:
            for x in node:
                walk(x)

    walk(record)


def _rebuild_source(layout, base, names, lines, prefix):
    """Source lines that rebuild ``layout`` from the table at offset ``base`` (an expression);
    ``t`` is the table as int64, ``tf`` the same memory as float64."""
    counter = [0]

    def emit(node):
        if isinstance(node, Nothing):
            return "None"
        if isinstance(node, Scalar):
            k = counter[0]
            counter[0] += 1
            return f"{'t' if node.kind == 'int' else 'tf'}[{base} + {k}]"
        if isinstance(node, Leaf):
            k = counter[0]
            counter[0] += 1 + node.ndim
            dt = f"_dt_{node.dtype.name}"
            names[dt] = node.dtype.type
            shape = ", ".join(f"t[{base} + {k + 1 + d}]" for d in range(node.ndim))
            var = f"{prefix}{k}"
            lines.append(f"    {var} = carray(_as_pointer(t[{base} + {k}]), ({shape},), {dt})")
            return var
        cls, children = node
        parts = [emit(c) for c in children]
        if cls is tuple:
            return "(" + "".join(p + ", " for p in parts) + ")"
        cname = "_cls_" + f"{cls.__module__}.{cls.__qualname__}".replace(".", "_")
        names[cname] = cls
        return f"{cname}({', '.join(parts)})"

    return emit(layout)


_COMPILED: dict = {}
#: The globals of each generated callback module, by source hash (read by that module).
_GENERATED: dict = {}
_SIGNATURE = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong,
                        types.voidptr)


def _cache_dir():
    import os
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikesynth" / "rtcallback"


def _prune(folder, keep, days: float = 30.0) -> None:
    """Remove generated callbacks not written or used for ``days`` (old code versions)."""
    limit = time.time() - days * 86400.0
    for old in folder.glob("cb_*.py"):
        try:
            if old != keep and max(old.stat().st_mtime, old.stat().st_atime) < limit:
                old.unlink()
        except OSError:
            pass


def _load_cfunc(src, names, label, cache=True):
    """Compile the generated callback ``src``; from a file, so numba's cache keeps it.

    The file only holds the source: its globals (the render function, record classes,
    dtypes, the clock) come from :data:`_GENERATED`. Without a writable cache folder the
    source is compiled in memory (about 4 s at every start).
    """
    import hashlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    names = dict(names, _CACHE=bool(cache))  # the generated source's own helper, cached too
    # numba's cache does not notice a change in a function the callback calls: key the file
    # by the package's sources too, so a stale compiled engine is never loaded.
    h = hashlib.sha1(src.encode())
    h.update(repr(sorted((k, v) for k, v in names.items() if isinstance(v, int))).encode())
    package = Path(__file__).resolve().parent
    for f in sorted(package.rglob("*.py")):
        h.update(f.read_bytes())
    digest = h.hexdigest()[:16]
    _GENERATED[digest] = names
    text = (f"# generated by spikesynth.rtcallback ({label}); safe to delete\n"
            "from numba import cfunc\n"
            "from spikesynth.rtcallback import _GENERATED, _SIGNATURE\n"
            f"globals().update(_GENERATED[{digest!r}])\n\n"
            + src + "\n\n\ncallback = cfunc(_SIGNATURE, nopython=True, cache=True)(_callback)\n")
    try:
        if not cache:
            raise OSError("not cached")
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"cb_{digest}.py"
        if not path.exists() or path.read_text() != text:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            _prune(folder, keep=path)
        spec = importlib.util.spec_from_file_location(f"spikesynth_rtcallback_{digest}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # numba finds the function's module (caching)
        spec.loader.exec_module(module)
        return module.callback
    except OSError:
        namespace = dict(names, _CACHE=False)  # no file: nothing numba could cache
        exec(compile(src, f"<spikesynth.rtcallback {label}>", "exec"), namespace)
        return cfunc(_SIGNATURE, nopython=True)(namespace["_callback"])


def compile_callback(render, state_layout, patch_layout, table_len, cache=True):
    """The ``@cfunc`` PortAudio callback for ``render`` over these layouts (kept per process,
    and in numba's cache on disk unless ``cache`` is False). Thread: main. Returns the numba
    ``CFunc`` (its ``.address`` is the pointer)."""
    key = (render, state_layout, patch_layout, table_len, cache)
    if key in _COMPILED:
        return _COMPILED[key]
    clock_id = _clock_id()
    names = {"carray": carray, "_as_pointer": _as_pointer, "_address": _address, "np": np,
             "njit": njit,
             "_render": render, "_clock_ns": _clock_ns, "_tap_write": tap_write,
             # the ring's acquire/release accesses (spikesynth.events), by these names here
             "atomic_load": load_acquire, "atomic_store": store_release}
    state_base = STATE_BASE
    rows_base = state_base + _row_len(state_layout)
    row_len = 1 + _row_len(patch_layout)  # the compatibility key, then the arrays
    loads_base = rows_base + ROWS * row_len
    assert loads_base + LOAD_HISTORY == table_len
    spec_lines: list[str] = []
    state_expr = _rebuild_source(state_layout, state_base, names, spec_lines, "s")
    patch_lines: list[str] = []
    patch_expr = _rebuild_source(patch_layout, "row_at + 1", names, patch_lines, "p")
    g = {"ROWS_BASE": rows_base, "ROW_LEN": row_len, "LOADS": loads_base,
         "TABLE_LEN": table_len, "CLOCK_ID": clock_id,
         "MASK": LOAD_HISTORY - 1, "ROW_MASK": (1 << ROW_BITS) - 1,
         "PROGRAM_MASK": (1 << (SEQ_SHIFT - PROGRAM_SHIFT)) - 1}
    g.update({k: v for k, v in globals().items() if k.startswith(("H_", "SWITCH_", "PA_"))})
    g["LEAK_SHIFT"] = LEAK_SHIFT
    g["ROW_BITS"] = ROW_BITS
    g.update(PROGRAM_SHIFT=PROGRAM_SHIFT, SEQ_SHIFT=SEQ_SHIFT, N_PROGRAMS=N_PROGRAMS,
             PROGRAMS_BASE=PROGRAMS_BASE)
    names.update(g)
    src = "\n".join([
        # a row's patch record, rebuilt from the table (a function: a loop in the callback
        # may rebuild it again after a program change)
        "@njit(nogil=True, cache=_CACHE)",
        "def _patch_at(t, tf, row_at):",
        *patch_lines,
        f"    return {patch_expr}",
        "",
        "",
        "def _callback(inp, output, frames, time_info, flags, user):",
        "    t = carray(user, (TABLE_LEN,), np.int64)",
        "    tf = carray(user, (TABLE_LEN,), np.float64)",
        "    entry = _clock_ns(CLOCK_ID)",
        "    nframes = np.int64(frames)",
        "    channels = t[H_CHANNELS]",
        "    out = carray(output, (nframes, channels), np.float32)",
        # the input block (interleaved float32); none: zero channels (the render hears silence)
        "    if t[H_IN_CHANNELS] > 0 and _address(inp) != 0:",
        "        heard = carray(inp, (nframes, t[H_IN_CHANNELS]), np.float32)",
        "    else:",
        "        heard = carray(user, (nframes, 0), np.float32)",
        "    if flags & PA_INPUT_UNDERFLOW:",
        "        t[H_IN_UNDERFLOWS] += 1",
        "    if flags & PA_INPUT_OVERFLOW:",
        "        t[H_IN_OVERFLOWS] += 1",
        "    lost = False",
        "    if flags & PA_OUTPUT_UNDERFLOW:",
        "        t[H_UNDERFLOWS] += 1",
        "        lost = True",
        "    if flags & PA_OUTPUT_OVERFLOW:",
        "        t[H_OVERFLOWS] += 1",
        "    if _address(time_info) != 0:",
        "        ti = carray(time_info, (3,), np.float64)",
        "        t[H_DAC_DELAY] = np.int64((ti[2] - ti[1]) * 1e9)",
        "    t[H_LAST_ENTRY] = entry",
        "    sr = t[H_SAMPLERATE]",
        "    start = t[H_ANCHOR] + t[H_FRAMES] * 1000000000 // sr",
        "    error = entry - start",
        "    if error < 0 or error > t[H_RESYNC_NS] or (lost and error > 0):",
        "        t[H_ANCHOR] += error",
        "        start = entry",
        "        if error > 0:",
        "            t[H_RESYNCS] += 1",
        "    else:",
        "        t[H_ANCHOR] += error >> LEAK_SHIFT",
        # the patch switch: the latest request for the program playing, its row, the fade
        "    request = atomic_load(t, H_REQUEST)",
        "    seq = request >> SEQ_SHIFT",
        "    if seq != t[H_SEEN]:",
        "        if ((request >> PROGRAM_SHIFT) & PROGRAM_MASK) == t[H_PROGRAM]:",
        "            atomic_store(t, H_TARGET, request & ROW_MASK)",
        "        atomic_store(t, H_SEEN, seq)",
        "    current = t[H_CURRENT]",
        "    wanted = t[H_TARGET]",
        "    mode = SWITCH_NONE",
        "    if wanted != current:",
        "        if t[H_FADING] == 0 and (t[ROWS_BASE + wanted * ROW_LEN]",
        "                                 == t[ROWS_BASE + current * ROW_LEN]):",
        "            mode = SWITCH_RETUNE",
        "        elif t[H_FADING] != 0 and t[H_SOUNDING] == 0:",
        "            mode = SWITCH_FRESH",
        "            t[H_FADING] = 0",
        "        else:",
        "            mode = SWITCH_FADE",
        "            if t[H_FADING] == 0:",
        "                t[H_FADES] += 1",
        "            t[H_FADING] = 1",
        "        if mode != SWITCH_FADE:",
        "            atomic_store(t, H_CURRENT, wanted)",
        "            current = wanted",
        "            t[H_SWITCHES] += 1",
        *spec_lines,
        "    if nframes <= t[H_MAX_BLOCK]:",
        "        try:",
        "            pos = 0",
        "            while True:",
        "                r = _render(out[pos:], heard[pos:], start + np.int64(pos * 1e9 / sr),",
        f"                            t[H_LATENCY], mode, {state_expr},",
        "                            _patch_at(t, tf, ROWS_BASE + current * ROW_LEN))",
        "                pos += r.frames",
        "                t[H_SOUNDING] = 1 if r.sounding else 0",
        "                if r.program < 0 or r.program >= N_PROGRAMS:",
        "                    break",
        # the engine's program change is due here: the rest of the block on its row
        "                row = atomic_load(t, PROGRAMS_BASE + r.program)",
        "                if row >= 0:",
        "                    atomic_store(t, H_CURRENT, row)",
        "                    atomic_store(t, H_TARGET, row)",
        "                    atomic_store(t, H_PROGRAM, r.program)",
        "                    current = row",
        "                    t[H_PROGRAM_SWITCHES] += 1",
        "                else:",
        "                    t[H_PROGRAMS_MISSING] += 1",
        "                t[H_FADING] = 0",
        "                mode = SWITCH_FRESH",
        "        except Exception:",
        "            out[:] = 0.0",
        "            t[H_FAULTS] += 1",
        "    else:",
        "        out[:] = 0.0",
        "        t[H_OVERSIZE] += 1",
        # the output tap (the UI's views): a copy of the block, published by a release store
        "    tap = atomic_load(t, H_TAP_RING)",
        "    if tap != 0:",
        "        _tap_write(out, carray(_as_pointer(tap), (t[H_TAP_CAP], channels), np.float32),",
        "                   carray(_as_pointer(t[H_TAP_HEADER]), (1,), np.int64))",
        "    t[H_FRAMES] += nframes",
        "    if nframes > 0:",
        "        done = _clock_ns(CLOCK_ID)",
        "        load = (done - entry) * sr // (nframes * 1000)",
        "        t[LOADS + (t[H_CALLBACKS] & MASK)] = load",
        "        t[H_LOAD_SUM] += load",
        "        if load > t[H_LOAD_MAX]:",
        "            t[H_LOAD_MAX] = load",
        "        if load > 1000000:",
        "            t[H_OVERRUNS] += 1",
        "    atomic_store(t, H_CALLBACKS, t[H_CALLBACKS] + 1)",
        "    return PA_CONTINUE",
    ])
    compiled = _load_cfunc(src, names, render.__name__, cache)
    compiled.source = src
    _COMPILED[key] = compiled
    return compiled


class CompiledCallback:
    """The table behind a compiled callback, and the main thread's side of it.

    Thread: constructed and :meth:`request`-ed on main (or any one thread at a time: the
    caller serialises requests); :meth:`stats` from any thread.

    Parameters
    ----------
    render : numba dispatcher
        See the module docstring.
    state : NamedTuple of arrays
        Kept alive by this object for as long as it lives.
    patch : NamedTuple of arrays
        The first patch (row 0).
    key : int
        ``patch``'s compatibility key (requests with the same key switch without a fade).
    samplerate : int
        Hz (the frame clock).
    max_block : int
        Largest block the render accepts; larger ones are silence, counted.
    latency_ns, resync_ns : int
        See :class:`spikesynth.audio.AudioHost`.
    channels : int
        Interleaved output channels.
    input_channels : int
        Interleaved input channels of a duplex stream (0: output only; the render then gets
        a block of zero channels).
    """

    def __init__(self, render, state, patch, key, *, tag=None, program=0, samplerate, max_block,
                 latency_ns, resync_ns, channels=2, input_channels=0):
        self.state_layout = layout_of(state)
        self.patch_layout = layout_of(patch)
        self.state_base = STATE_BASE
        self.rows_base = self.state_base + _row_len(self.state_layout)
        self.row_len = 1 + _row_len(self.patch_layout)
        self.loads_base = self.rows_base + ROWS * self.row_len
        n = self.loads_base + LOAD_HISTORY
        self.table = np.zeros(n, dtype=np.int64)
        t = self.table
        t[H_SAMPLERATE] = int(samplerate)
        t[H_MAX_BLOCK] = int(max_block)
        t[H_LATENCY] = int(latency_ns)
        t[H_RESYNC_NS] = int(resync_ns)
        t[H_CHANNELS] = int(channels)
        t[H_IN_CHANNELS] = int(input_channels)
        t[H_ROW_LEN] = self.row_len
        self._tap = None
        t[H_ANCHOR] = 1 << 62  # the first callback's entry sets it (it jumps down)
        _pack(state, t[self.state_base:self.rows_base])
        self._state = state
        self._rows: list = [None] * ROWS  # row -> (record, key, signature), kept alive
        self._row_seq = [-1] * ROWS  # the latest request sequence that named each row
        self._seq = 0
        self._write_row(0, patch, key, tag)
        self._row_seq[0] = 0
        if not 0 <= program < N_PROGRAMS:
            raise ValueError(f"program {program} outside 0..{N_PROGRAMS - 1}")
        #: The program map as main wrote it: the row of each program (-1: none).
        self._programs = [-1] * N_PROGRAMS
        self._programs[program] = 0
        t[PROGRAMS_BASE:PROGRAMS_BASE + N_PROGRAMS] = -1
        t[PROGRAMS_BASE + program] = 0
        t[H_PROGRAM] = program
        t[H_REQUEST] = program << PROGRAM_SHIFT  # sequence 0, row 0: nothing new
        self.function = compile_callback(render, self.state_layout, self.patch_layout, n)

    @property
    def address(self) -> int:
        """The ``PaStreamCallback *`` to give PortAudio."""
        return self.function.address

    @property
    def userdata(self) -> int:
        """The ``void *userData`` to give PortAudio (the table's address)."""
        return self.table.ctypes.data

    def attach_tap(self, ring, header) -> None:
        """Copy every output block into ``ring`` (float32, (capacity, channels), capacity a
        power of two), advancing ``header[0]`` (int64) as
        :func:`spikesynth.events.tap_write` does.

        Thread: main, before the stream starts or while it runs (the ring's address is
        published last, with a release store). The arrays are kept alive here.
        """
        ring = np.asarray(ring)
        cap = ring.shape[0]
        if (ring.dtype != np.float32 or ring.ndim != 2 or ring.shape[1] != self.table[H_CHANNELS]
                or cap & (cap - 1) or not ring.flags.c_contiguous):
            raise ValueError("the tap ring must be C-contiguous float32 (2**k, channels)")
        if header.dtype != np.int64 or header.shape[0] < 1:
            raise ValueError("the tap header must be int64 (>= 1,)")
        tap_write(np.zeros((0, ring.shape[1]), np.float32), ring, header)  # compiled now
        self._tap = (ring, header)
        self.table[H_TAP_CAP] = cap
        self.table[H_TAP_HEADER] = header.ctypes.data
        _publish(self.table, H_TAP_RING, ring.ctypes.data)

    def _write_row(self, row, patch, key, tag=None):
        at = self.rows_base + row * self.row_len
        self.table[at] = int(key)
        _pack(patch, self.table[at + 1:at + self.row_len])
        self._rows[row] = [patch, int(key), self._signature(patch, key), tag]

    @staticmethod
    def _signature(patch, key):
        return ((int(key),) + tuple((a.ctypes.data, a.shape) for a in _arrays(patch))
                + tuple(_scalars(patch)))

    def _free_rows(self):
        seen = int(read_acquire(self.table, H_SEEN))
        current = int(read_acquire(self.table, H_CURRENT))  # after H_SEEN: see the docstring
        target = int(read_acquire(self.table, H_TARGET))
        mapped = set(self._programs)
        latest = self._seq
        free = []
        for row in range(ROWS):
            if (row == current or row == target or row in mapped
                    or self._row_seq[row] >= seen or self._row_seq[row] == latest):
                continue
            free.append(row)
        return free

    def _take_row(self, patch, key, tag, timeout) -> int:
        """A row holding ``patch``: the one that already does, else a free one, written."""
        if layout_of(patch) != self.patch_layout:
            raise ValueError("the patch arrays do not have the callback's layout")
        sig = self._signature(patch, key)
        row = next((r for r in range(ROWS) if self._rows[r] is not None
                    and self._rows[r][2] == sig), None)
        if row is not None:
            self._rows[row][3] = tag
            return row
        deadline = time.monotonic() + timeout
        while True:
            free = self._free_rows()
            if free:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the audio callback does not take patch switches")
            time.sleep(0.001)
        row = free[0]
        self._rows[row] = None  # drop the old arrays only once the row is unused
        self._write_row(row, patch, key, tag)
        return row

    def _publish_request(self, program, row) -> int:
        self._seq += 1
        self._row_seq[row] = self._seq
        _publish(self.table, H_REQUEST,
                 (self._seq << SEQ_SHIFT) | (int(program) << PROGRAM_SHIFT) | row)
        return self._seq

    @property
    def playing(self) -> int:
        """The program the callback plays (it switches at each program change's sample).
        Thread: any."""
        return int(read_acquire(self.table, H_PROGRAM))

    def request(self, patch, key, tag=None, timeout: float = 1.0) -> int:
        """Ask the callback to switch the program playing to ``patch`` (same layout) at its
        next block; the program map is left as it is (a program change to this program later
        plays the map's row). ``tag`` is any object kept with the row (see :meth:`current`).

        The request names the program playing now; if the callback has switched to another
        program by the time it sees the request, the request is stale and ignored.

        Thread: main or any other (callers serialise requests). Returns the row used. Raises
        :class:`ValueError` for another layout, :class:`TimeoutError` when the audio thread
        has not consumed earlier requests within ``timeout`` s and no row is free (a stopped
        stream).
        """
        row = self._take_row(patch, key, tag, timeout)
        self._publish_request(self.playing, row)
        return row

    def set_program(self, program, patch, key, tag=None, timeout: float = 1.0) -> int:
        """Program ``program`` is now ``patch``: its row in the program map (a program change
        to it plays this row), and, if it is the program playing, the callback switches to it
        as :meth:`request` does. Thread: as :meth:`request`. Returns the row used."""
        if not 0 <= program < N_PROGRAMS:
            raise ValueError(f"program {program} outside 0..{N_PROGRAMS - 1}")
        row = self._take_row(patch, key, tag, timeout)
        old = self._programs[program]
        self._programs[program] = row
        _publish(self.table, PROGRAMS_BASE + program, row)
        seq = self._publish_request(program, row)
        if old >= 0 and old != row:
            self._row_seq[old] = max(self._row_seq[old], seq)  # read until seq is seen
        return row

    def current(self):
        """The ``tag`` of the patch the callback renders (or fades) now. Thread: main."""
        row = self._rows[int(read_acquire(self.table, H_CURRENT))]
        return row[3] if row is not None else None

    def requested(self):
        """The ``tag`` of the row the callback is heading to. Thread: main."""
        row = self._rows[int(read_acquire(self.table, H_TARGET))]
        return row[3] if row is not None else None

    def loads(self) -> np.ndarray:
        """Recent per-callback loads (fractions of the block duration, a copy). Thread: any."""
        n = min(int(self.table[H_CALLBACKS]), LOAD_HISTORY)
        return self.table[self.loads_base:self.loads_base + n].astype(np.float64) * 1e-6

    def stats(self) -> dict:
        """The callback's counters. Thread: any (reads only)."""
        t = self.table
        n = int(t[H_CALLBACKS])
        return {
            "callbacks": n,
            "xruns": int(t[H_UNDERFLOWS]),
            "overflows": int(t[H_OVERFLOWS]),
            "oversize_blocks": int(t[H_OVERSIZE]),
            "overruns": int(t[H_OVERRUNS]),
            "clock_resyncs": int(t[H_RESYNCS]),
            "frames": int(t[H_FRAMES]),
            "load_mean": int(t[H_LOAD_SUM]) / n * 1e-6 if n else 0.0,
            "load_max": int(t[H_LOAD_MAX]) * 1e-6,
            "faults": int(t[H_FAULTS]),
            "patch_switches": int(t[H_SWITCHES]),
            "patch_fades": int(t[H_FADES]),
            "program": int(t[H_PROGRAM]),
            "program_switches": int(t[H_PROGRAM_SWITCHES]),
            "programs_missing": int(t[H_PROGRAMS_MISSING]),
            "input_overflows": int(t[H_IN_OVERFLOWS]),
            "input_underflows": int(t[H_IN_UNDERFLOWS]),
            "dac_delay_ns": int(t[H_DAC_DELAY]),
            "last_callback_ns": int(t[H_LAST_ENTRY]),
        }
