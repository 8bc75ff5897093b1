"""Row-wise float32 kernels: LayerNormalization and Softmax over the last axis, one pass each.

Why: the numpy forms made 5-7 passes over BERT's activations with a temporary array each
(LayerNormalization 0.28 ms per (128, 768) call, Softmax 0.45 ms per (12, 128, 128) call,
together 9% of a 90%-sparse BERT-base run at batch 1, 1 thread). Here a row (768 or 128
floats) is read from memory once and stays in L1 for the remaining passes.

Softmax needs exp; numba's ``np.exp`` is a scalar ``expf`` call that LLVM cannot vectorize,
so ``_exp32`` is the Cephes single-precision exp (range reduction by ln 2, degree-5
polynomial, 2^n put together in the exponent bits): relative error below 2e-7 on the
range softmax uses (arguments <= 0), branch-free so the row loop vectorizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._buffers import empty
from ._numba_env import FASTMATH, kernel, numba

SERIAL_MAX = 1 << 15  # elements below which a parallel launch costs more than it saves
# LayerNormalization alone: BERT-base's (128, 768) took 36 us on one thread and a median
# 71-74 us split over two (a woken worker starts late), so it ran serially up to 1 << 17
# elements. In the model the workers still spin from the previous launch (``_numba_env``),
# and split it wins: 90% BERT-base (12 layers) at batch 1 on 2 threads, A/B in one process,
# 0.972x and 0.987x the time (two runs); dense 1.007x (noise: LayerNorm is 0.5% of it).
LN_SERIAL_MAX = 1 << 15


@intrinsic
def _bits_to_f32(typingctx: Any, bits: Any) -> Any:
    """Reinterpret an int32 as the float32 with the same bits (no conversion)."""
    if not isinstance(bits, types.Integer) or getattr(bits, "bitwidth", 0) != 32:
        return None
    sig = types.float32(bits)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_P0, _P1, _P2 = (
    np.float32(1.9875691500e-4),
    np.float32(1.3981999507e-3),
    np.float32(8.3334519073e-3),
)
_P3, _P4, _P5 = (
    np.float32(4.1665795894e-2),
    np.float32(1.6666665459e-1),
    np.float32(5.0000001201e-1),
)
_EXP_MIN = np.float32(-87.0)  # below: exp underflows (the result is flushed to 0)


@numba.njit(inline="always", fastmath=FASTMATH)
def _exp32(v):  # type: ignore[no-untyped-def]
    # For v <= 0 (softmax's shifted values); NaN in, NaN out.
    x = v if v > _EXP_MIN else _EXP_MIN  # selects, not branches: vectorizable
    n = np.floor(x * _LOG2E + np.float32(0.5))
    r = x - n * _LN2_HI - n * _LN2_LO  # ln 2 in two parts: r exact to float32
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    e = p * r * r + r + np.float32(1.0)
    bits = np.int32((np.int32(n) + np.int32(127)) << np.int32(23))
    scale = _bits_to_f32(bits)  # type: ignore[call-arg, var-annotated]  # 2^n
    res = e * scale if v > _EXP_MIN else np.float32(0.0)
    return res if v == v else v


@numba.njit(inline="always")
def _max8(x):  # type: ignore[no-untyped-def]
    # eight running maxima: independent chains instead of one latency-bound chain
    n = x.size
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = np.float32(-np.inf)
    i = 0
    while i + 8 <= n:
        m0 = max(m0, x[i])
        m1 = max(m1, x[i + 1])
        m2 = max(m2, x[i + 2])
        m3 = max(m3, x[i + 3])
        m4 = max(m4, x[i + 4])
        m5 = max(m5, x[i + 5])
        m6 = max(m6, x[i + 6])
        m7 = max(m7, x[i + 7])
        i += 8
    m = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for j in range(i, n):
        m = max(m, x[j])
    return m


@numba.njit(inline="always")
def _sum8(x):  # type: ignore[no-untyped-def]
    # eight partial sums: independent add chains (and fewer rounding steps than one chain)
    n = x.size
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
    i = 0
    while i + 8 <= n:
        a0 += x[i]
        a1 += x[i + 1]
        a2 += x[i + 2]
        a3 += x[i + 3]
        a4 += x[i + 4]
        a5 += x[i + 5]
        a6 += x[i + 6]
        a7 += x[i + 7]
        i += 8
    s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    for j in range(i, n):
        s += x[j]
    return s


@numba.njit(inline="always")
def _sqdev8(x, mean):  # type: ignore[no-untyped-def]
    n = x.size
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
    i = 0
    while i + 8 <= n:
        d0, d1, d2, d3 = x[i] - mean, x[i + 1] - mean, x[i + 2] - mean, x[i + 3] - mean
        d4, d5, d6, d7 = x[i + 4] - mean, x[i + 5] - mean, x[i + 6] - mean, x[i + 7] - mean
        a0 += d0 * d0
        a1 += d1 * d1
        a2 += d2 * d2
        a3 += d3 * d3
        a4 += d4 * d4
        a5 += d5 * d5
        a6 += d6 * d6
        a7 += d7 * d7
        i += 8
    s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    for j in range(i, n):
        d = x[j] - mean
        s += d * d
    return s


@numba.njit(inline="always", fastmath=FASTMATH)
def _softmax_row(x, y, log):  # type: ignore[no-untyped-def]
    m = _max8(x)
    if m == np.inf or m == -np.inf or m != m:  # the numpy path's inf/nan semantics
        for i in range(x.size):
            y[i] = np.nan
        return
    for i in range(x.size):  # no reduction in this loop: it vectorizes
        y[i] = _exp32(x[i] - m)
    s = _sum8(y)
    if log:
        ls = np.float32(np.log(s))
        for i in range(x.size):
            y[i] = x[i] - m - ls
    else:
        inv = np.float32(1.0) / s
        for i in range(x.size):
            y[i] *= inv


# inputs typed read-only: constants and some feeds are read-only arrays, and numba would not
# accept them for a writable signature (writable arrays are accepted for a read-only one)
_RO2 = types.Array(types.float32, 2, "C", readonly=True)
_RO1 = types.Array(types.float32, 1, "C", readonly=True)
_F2 = types.float32[:, ::1]
_F1 = types.float32[::1]
_SM_SIG = types.void(_RO2, _F2, types.boolean)


@kernel(_SM_SIG, parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _softmax_parallel(x, y, log):  # type: ignore[no-untyped-def]
    for r in numba.prange(x.shape[0]):
        _softmax_row(x[r], y[r], log)


@kernel(_SM_SIG, fastmath=FASTMATH, cache=True, nogil=True)
def _softmax_serial(x, y, log):  # type: ignore[no-untyped-def]
    for r in range(x.shape[0]):
        _softmax_row(x[r], y[r], log)


@numba.njit(inline="always", fastmath=FASTMATH)
def _ln_row(x, scale, bias, eps, y, mean_out, inv_out, r):  # type: ignore[no-untyped-def]
    n = np.float32(x.size)
    mean = _sum8(x) / n
    inv = np.float32(1.0) / np.sqrt(_sqdev8(x, mean) / n + eps)  # two-pass variance
    for i in range(x.size):
        y[i] = (x[i] - mean) * inv * scale[i] + bias[i]
    mean_out[r] = mean
    inv_out[r] = inv


_LN_SIG = types.void(_RO2, _RO1, _RO1, types.float32, _F2, _F1, _F1)


@kernel(_LN_SIG, parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _ln_parallel(x, scale, bias, eps, y, mean, inv):  # type: ignore[no-untyped-def]
    for r in numba.prange(x.shape[0]):
        _ln_row(x[r], scale, bias, eps, y[r], mean, inv, r)


@kernel(_LN_SIG, fastmath=FASTMATH, cache=True, nogil=True)
def _ln_serial(x, scale, bias, eps, y, mean, inv):  # type: ignore[no-untyped-def]
    for r in range(x.shape[0]):
        _ln_row(x[r], scale, bias, eps, y[r], mean, inv, r)


def softmax_rows(x: np.ndarray, log: bool = False) -> np.ndarray:
    """Softmax (or log-softmax) of each row of a C-contiguous float32 (R, D) array.

    A row holding +-inf or NaN gives NaN, like the numpy form (inf - inf).
    """
    y = empty(x.shape)
    fn = _softmax_serial if x.size < SERIAL_MAX else _softmax_parallel
    fn(x, y, log)
    return y


def layer_norm_rows(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mean, inv_std) of LayerNormalization over each row of a float32 (R, D) array;
    ``scale`` and ``bias`` (D,) float32, statistics in float32."""
    r, d = x.shape
    b = np.zeros(d, np.float32) if bias is None else bias
    y = empty(x.shape)
    mean = np.empty(r, np.float32)
    inv = np.empty(r, np.float32)
    fn = _ln_serial if x.size < LN_SERIAL_MAX else _ln_parallel
    fn(x, scale, b, np.float32(eps), y, mean, inv)
    return y, mean, inv
