"""exp, sigmoid and tanh that LLVM can vectorise inside numba loops.

numba compiles ``np.exp``/``np.tanh`` to calls into the C maths library unless the SVML vector
library is installed (it is not here: ``numba -s``), so a loop over 256 gates makes 256 scalar
calls and is never vectorised; in the LSTM step those calls cost more than the matrix product.
These versions are branch-free float32 arithmetic (a Cephes-style expf: range reduction by
ln 2, a degree-6 polynomial, the power of two put into the exponent bits), which the loop
vectoriser turns into AVX code. Their error is a few float32 ulp (tests/model/test_kernels.py).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from model.jit import JIT

_LOG2E = np.float32(1.44269504088896341)
# ln 2 split in two so that n * _LN2_HI is exact for the n that occur.
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
# exp overflows float32 above 88.72 and is subnormal below -87.33; clamped to stay finite and
# normal (sigmoid and tanh only need exp to saturate there).
_HI = np.float32(88.0)
_LO = np.float32(-87.0)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_HALF = np.float32(0.5)
_T_SPLIT = np.float32(0.625)
_T0 = np.float32(-5.70498872745e-3)
_T1 = np.float32(2.06390887954e-2)
_T2 = np.float32(-5.37397155531e-2)
_T3 = np.float32(1.33314422036e-1)
_T4 = np.float32(-3.33332819422e-1)


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits`` (a no-op for the CPU)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@numba.njit(**JIT)
def expf(x):
    """exp of a float32, clamped to [exp(-87), exp(88)]; NaN stays NaN."""
    # Written as selects so that NaN passes through (min/max would turn it into a bound).
    x = _HI if x > _HI else x
    x = _LO if x < _LO else x
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI - n * _LN2_LO
    n = n if n == n else np.float32(0.0)  # int32(NaN) is undefined; r carries the NaN
    p = _P0
    p = p * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    y = p * r * r + r + _ONE
    return y * _float_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


@numba.njit(**JIT)
def sigmoid(x):
    return _ONE / (_ONE + expf(-x))


@numba.njit(**JIT)
def tanh(x):
    # Cephes tanhf: an odd polynomial below 0.625, where 1 - 2 / (exp(2x) + 1) would lose
    # the relative accuracy of small results; both are computed and one is selected (no
    # branch, so the loop stays vectorised).
    z = x * x
    p = _T0
    p = p * z + _T1
    p = p * z + _T2
    p = p * z + _T3
    p = p * z + _T4
    small = p * z * x + x
    large = _ONE - _TWO / (expf(_TWO * abs(x)) + _ONE)
    large = large if x >= 0 else -large
    return small if abs(x) < _T_SPLIT else large
