"""float32 erf and exact (erf) GELU as single parallel passes.

Why: ``math.erf`` through a numba ufunc cost 40 ns per element, GELU's Erf alone was 11% of
a 90%-sparse BERT-base run at batch 1, and torch's GELU pattern (Div, Erf, Add, Mul, Mul)
made five passes over the (seq, 3072) activations. Here erf is the odd rational
approximation x * P(x^2) / Q(x^2) on [-4, 4] (Eigen's / XLA's ``fast_erf`` coefficients;
beyond 4, erf is +-1 in float32): absolute error below 5e-7 against ``math.erf``, and only
multiply-adds and one division, which LLVM vectorizes - the earlier Abramowitz & Stegun
form called the scalar ``expf`` per element (GELU of BERT's (128, 3072): 1.33 ms -> 0.16 ms
measured here), and GELU is one pass.
"""

from __future__ import annotations

import numpy as np

from ._buffers import empty, memory_order
from ._numba_env import FASTMATH, kernel, numba

# numerator (odd powers 1..13) and denominator (even powers 0..8), lowest power first
_A = tuple(
    np.float32(v)
    for v in (
        -1.60960333262415e-02,
        -2.95459980854025e-03,
        -7.34990630326855e-04,
        -5.69250639462346e-05,
        -2.10102402082508e-06,
        2.77068142495902e-08,
        -2.72614225801306e-10,
    )
)
_B = tuple(
    np.float32(v)
    for v in (
        -1.42647390514189e-02,
        -7.37332916720468e-03,
        -1.68282697438203e-03,
        -2.13374055278905e-04,
        -1.45660718464996e-05,
    )
)
_A0, _A1, _A2, _A3, _A4, _A5, _A6 = _A
_B0, _B1, _B2, _B3, _B4 = _B
_FOUR = np.float32(4.0)
_SQRT_HALF = np.float32(0.7071067811865476)

SERIAL_MAX = 1 << 15  # elements below which a parallel launch costs more than it saves


@numba.njit(inline="always", fastmath=FASTMATH)
def _erf32(v):  # type: ignore[no-untyped-def]
    x = v if v < _FOUR else _FOUR  # selects, not branches: the loop stays vectorizable
    x = x if x > -_FOUR else -_FOUR
    x2 = x * x
    p = (((((_A6 * x2 + _A5) * x2 + _A4) * x2 + _A3) * x2 + _A2) * x2 + _A1) * x2 + _A0
    q = (((_B4 * x2 + _B3) * x2 + _B2) * x2 + _B1) * x2 + _B0
    r = x * p / q
    return r if v == v else v  # NaN in, NaN out (the clamps above would give +-1)


_SIG = "void(float32[::1], float32[::1])"
# error_model="numpy": under numba's default ("python") every ``/`` checks for a zero divisor
# to raise ZeroDivisionError, and that branch kept LLVM from vectorizing the serial loops (a
# parallel loop gets the numpy model anyway): GELU of (128, 3072) on one thread 1180 -> 155 us.
# Q(x^2) has no zero on [-4, 4], so nothing changes but the speed.


@kernel(_SIG, parallel=True, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def _erf_parallel(x, out):  # type: ignore[no-untyped-def]
    for i in numba.prange(x.size):
        out[i] = _erf32(x[i])


@kernel(_SIG, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def _erf_serial(x, out):  # type: ignore[no-untyped-def]
    for i in range(x.size):
        out[i] = _erf32(x[i])


@kernel(_SIG, parallel=True, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def _gelu_parallel(x, out):  # type: ignore[no-untyped-def]
    for i in numba.prange(x.size):
        v = x[i]
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + _erf32(v * _SQRT_HALF))


@kernel(_SIG, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def _gelu_serial(x, out):  # type: ignore[no-untyped-def]
    for i in range(x.size):
        v = x[i]
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + _erf32(v * _SQRT_HALF))


def _apply(x: np.ndarray, fns: tuple[object, object]) -> np.ndarray:
    if x.dtype == np.float32 and not x.flags.c_contiguous and x.ndim > 1:
        # a permutation of a C-contiguous array, such as a sparse layer's output handed on in
        # the layout the next sparse layer reads (the transpose of a C-contiguous (N, M)
        # array, and with a batch, that viewed as (B, S, N)): keep that layout rather than
        # copy it. The copy of BERT's (64, 128, 3072) FFN activation read 32 KB apart and
        # took 300 ms per GELU, 27% of a 90%-sparse BERT-base run at batch 64.
        perm = memory_order(x)
        dense = x.transpose(perm)
        if dense.flags.c_contiguous:
            return _apply(dense, fns).transpose(np.argsort(perm))
    src = np.ascontiguousarray(x, dtype=np.float32)
    y = empty(src.shape)
    fn = fns[0] if src.size < SERIAL_MAX else fns[1]
    fn(src.reshape(-1), y.reshape(-1))  # type: ignore[operator]
    return y


def erf_f32(x: np.ndarray) -> np.ndarray:
    """erf of a float32 array -> fresh float32 array (absolute error < 1e-6)."""
    return _apply(x, (_erf_serial, _erf_parallel))


def gelu_f32(x: np.ndarray) -> np.ndarray:
    """x * 0.5 * (1 + erf(x / sqrt(2))) of a float32 array -> fresh float32 array."""
    return _apply(x, (_gelu_serial, _gelu_parallel))
