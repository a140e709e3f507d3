"""A power law ``y**c`` (``y > 0``, ``0 < c <= 1``) that the compiler vectorises: the hair cell's.

``libm``'s ``pow`` is a call the loop vectoriser cannot widen, and the ear spent most of its
time there (about 15 ns per positive sample). :func:`pow_positive` computes the same
function from IEEE arithmetic only (bit casts, adds, multiplies, one division), so a loop of
it runs several lanes per instruction:

``y = m 2**e`` with ``m`` in ``[√½, √2)`` (read off the bits); ``ln m = 2 atanh(s)``,
``s = (m - 1)/(m + 1)``, by its series to ``s**23`` (``|s| <= 0.172``: the first term left
out is below 1e-18 of the sum); ``t = c (e ln 2 + ln m)`` with ``ln 2`` split in a high part
(exact products with ``e``) and a low part; ``exp t = 2**k exp r`` with ``k`` the nearest
integer to ``t / ln 2``, ``|r| <= ln(2)/2`` and ``exp r`` by its Taylor series to ``r**14``;
``2**k`` added to the exponent bits.

Accuracy (the tests measure it against ``numpy.power``): for hair-cell inputs (1e-12 ..
3) within 9 units in the last place at ``c = 0.3`` and 40 as ``c`` nears 1 (relative error
about ``|c ln y|`` times 1.6e-16; 1.1e-13 at ``y = 1e-300``). So results differ from
``pow``'s at the level of float rounding, not bit for bit: the ear's spike times move by at
most 1e-15 s (the same spikes), and the ear patches' float32 renders stay bit-identical.
Only for normal ``y`` (``>= 2.2e-308``); the caller handles zero and subnormals.

Thread: any (pure).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LN2_HI = 6.93147180369123816490e-01  # ln 2, high 32 bits: e * LN2_HI is exact for |e| < 2**20
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
INV_LN2 = 1.44269504088896338700e00
SQRT2 = 1.4142135623730951
ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2**52: x + MAGIC rounds x to an integer in the bits
MANTISSA = (1 << 52) - 1
EXPONENT_ONE = 1023 << 52

# 1/(2j+1), j = 1..11: the atanh series 2 (s + s**3/3 + ... + s**23/23).
_ATANH = tuple(1.0 / (2 * j + 1) for j in range(1, 12))
# 1/j!, j = 0..14.
_EXP = tuple(1.0 / float(np.prod(np.arange(1, j + 1, dtype=np.float64))) for j in range(15))
A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11 = _ATANH
(E0, E1, E2, E3, E4, E5, E6, E7, E8, E9, E10, E11, E12, E13, E14) = _EXP


@intrinsic
def _bits_intrinsic(typingctx, x):
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(x), codegen


@intrinsic
def _float_intrinsic(typingctx, b):
    if b != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(b), codegen


def float_bits(x):
    """The IEEE bits of float64 ``x`` as an int64 (a bit cast: free in compiled code)."""
    return int(np.array(x, dtype=np.float64).view(np.int64))


def bits_float(b):
    """The float64 whose IEEE bits are int64 ``b``."""
    return float(np.array(b, dtype=np.int64).view(np.float64))


@overload(float_bits)
def _float_bits_overload(x):
    if x == types.float64:
        return lambda x: _bits_intrinsic(x)
    return None


@overload(bits_float)
def _bits_float_overload(b):
    if b == types.int64:
        return lambda b: _float_intrinsic(b)
    return None


@njit(cache=True, nogil=True, inline="always", error_model="numpy")  # inlined: vectorises
def pow_positive(y, c):
    """``y**c`` for normal ``y > 0`` and ``0 < c <= 1``, within a few ulp, no calls.

    Thread: any (pure). See the module docstring for the method.
    """
    b = float_bits(y)
    e = (b >> 52) - 1023
    m = bits_float((b & MANTISSA) | EXPONENT_ONE)  # in [1, 2)
    big = m > SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    series = A1 + z * (A2 + z * (A3 + z * (A4 + z * (A5 + z * (A6 + z * (
        A7 + z * (A8 + z * (A9 + z * (A10 + z * A11)))))))))
    fe = float(e)
    # c ln y = c (e LN2_HI + (2 s + 2 s z series + e LN2_LO)), the small terms first.
    t = c * (fe * LN2_HI + (2.0 * s + (2.0 * s * z * series + fe * LN2_LO)))
    shifted = t * INV_LN2 + ROUND_MAGIC
    kf = shifted - ROUND_MAGIC  # nearest integer to t / ln 2
    k = float_bits(shifted) - float_bits(ROUND_MAGIC)
    r = (t - kf * LN2_HI) - kf * LN2_LO
    p = E0 + r * (E1 + r * (E2 + r * (E3 + r * (E4 + r * (E5 + r * (E6 + r * (E7 + r * (
        E8 + r * (E9 + r * (E10 + r * (E11 + r * (E12 + r * (E13 + r * E14)))))))))))))
    return bits_float(float_bits(p) + (k << 52))
