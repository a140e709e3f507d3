"""Subnormal numbers flushed to zero in a stretch of compiled code (the x86 MXCSR FTZ/DAZ bits).

A decaying state that never quite reaches zero (a filter, a membrane potential or a spring
left alone after a sound) ends up in the subnormal range (below 2.2e-308), where each
floating-point operation costs about a hundred times more on x86; a one-pole step such as
``v <- v * leak`` with ``leak`` near 1 even stays there forever (the product rounds back to
``v``). The listening path (:mod:`spikesynth.listen`) holds many such states, so it brackets
its compiled work with::

    saved = flush_denormals_begin()
    ...
    flush_denormals_end(saved)

Between the two, this thread's SSE/AVX arithmetic flushes subnormal results to zero (FTZ)
and reads subnormal operands as zero (DAZ); the end restores the control register as it
was, so code outside (other patches, Python) is untouched. Only values below 2.2e-308 are
affected: for audio, whose output is float32 (smallest subnormal 1.4e-45), that is no
change at all.

On a machine other than x86-64, and in Python (``NUMBA_DISABLE_JIT=1``), both calls do
nothing. Thread: any (the register is per thread).
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

MXCSR_DAZ = 0x0040  # denormals are zero (operands)
MXCSR_FTZ = 0x8000  # flush to zero (results)
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _mxcsr_call(builder, name, pointer):
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(pointer, ir.IntType(8).as_pointer())])


@intrinsic
def _swap_mxcsr(typingctx, bits_on):
    """Set ``bits_on`` in MXCSR; return the previous MXCSR (int64)."""
    if not isinstance(bits_on, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        old = cgutils.alloca_once(builder, i32)
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", old)
        previous = builder.load(old)
        on = builder.trunc(context.cast(builder, args[0], signature.args[0], types.int64), i32)
        new = cgutils.alloca_once(builder, i32)
        builder.store(builder.or_(previous, on), new)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", new)
        return builder.zext(previous, ir.IntType(64))

    return types.int64(bits_on), codegen


@intrinsic
def _load_mxcsr(typingctx, value):
    """Write ``value`` (int64, low 32 bits) to MXCSR."""
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        slot = cgutils.alloca_once(builder, i32)
        v = context.cast(builder, args[0], signature.args[0], types.int64)
        builder.store(builder.trunc(v, i32), slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.void(value), codegen


def flush_denormals_begin():
    """Flush subnormals to zero from here on (this thread); return what to restore.

    Thread: any. In compiled code on x86-64: sets MXCSR's FTZ and DAZ bits and returns the
    previous MXCSR. Elsewhere (and in Python): does nothing, returns -1.
    """
    return -1


def flush_denormals_end(saved):
    """Restore the floating-point control register :func:`flush_denormals_begin` returned.

    Thread: the one that called :func:`flush_denormals_begin`. Does nothing for ``-1``.
    """


@overload(flush_denormals_begin)
def _flush_denormals_begin_overload():
    if X86:
        return lambda: _swap_mxcsr(MXCSR_DAZ | MXCSR_FTZ)
    return lambda: -1


@overload(flush_denormals_end)
def _flush_denormals_end_overload(saved):
    if not isinstance(saved, types.Integer):
        return None
    if X86:
        def impl(saved):
            if saved >= 0:
                _load_mxcsr(saved)
        return impl
    return lambda saved: None
