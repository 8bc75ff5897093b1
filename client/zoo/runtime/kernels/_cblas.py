"""numpy's own ``cblas_sgemm``, found by address so that numba kernels can call it.

Why: a dense GEMM split over threads used to run its parts on a pool of Python threads that
block between calls, while the sparse and elementwise kernels run on numba's OpenMP threads.
Waking a blocked thread costs 45-120 us on these VMs (an empty 2-thread numba launch: 45 us
back to back, 100 us after a 2 ms gap), and a ResNet-50 at batch 1 makes about a hundred
launches. Letting the OpenMP threads spin between launches removes that, but a spinning
OpenMP worker then holds the core the Python pool's thread needs (dense ResNet-50 at batch 1
went from 0.59x to 0.36x onnxruntime). With sgemm callable from numba, every parallel part
of a batch-1 run - GEMM parts included - runs on the OpenMP threads, which can spin.

This module only finds the function (no numba here: ``_numba_env`` asks it whether to let
the OpenMP threads spin before numba starts them). The BLAS is the one numpy itself uses:
the OpenBLAS that threadpoolctl reports under numpy's folder, so it is pinned to 1 thread
by ``set_threads`` like numpy's matmul. Each candidate symbol is checked with a small
product against numpy before it is used; where none is found (numpy built against another
BLAS), the kernels fall back to the Python thread pool (``_pool``) and blocking threads.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from functools import cache

import numpy as np

# (prefix, suffix, 64-bit integers) of the symbols: numpy's wheels ship OpenBLAS built for
# ILP64 with a "scipy_" prefix and a "64_" suffix; other builds export the plain CBLAS names
_SYMBOLS = (
    ("scipy_cblas_", "64_", True),
    ("cblas_", "64_", True),
    ("scipy_cblas_", "", False),
    ("cblas_", "", False),
)
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # the CBLAS enum values


@dataclass(frozen=True)
class Sgemm:
    """The address of ``cblas_sgemm`` and whether its integers are 64-bit."""

    gemm: int
    ilp64: bool


def _numpy_blas_paths() -> list[str]:
    from threadpoolctl import threadpool_info

    root = os.path.dirname(os.path.dirname(np.__file__))  # site-packages (numpy, numpy.libs)
    paths = [
        str(i["filepath"])
        for i in threadpool_info()
        if i.get("internal_api") == "openblas" and str(i.get("filepath", "")).startswith(root)
    ]
    # numpy's own folder first: scipy's OpenBLAS lives beside it and has other symbols
    return sorted(paths, key=lambda p: "numpy" not in os.path.basename(os.path.dirname(p)))


def _works(gemm: int, ilp64: bool) -> bool:
    # a 2x3 @ 3x2 product compared with numpy: a wrong symbol fails here (or returns
    # garbage), not inside a kernel
    it = ctypes.c_int64 if ilp64 else ctypes.c_int32
    i32, f32, ptr = ctypes.c_int32, ctypes.c_float, ctypes.c_void_p
    mm = ctypes.CFUNCTYPE(None, i32, i32, i32, it, it, it, f32, ptr, it, ptr, it, f32, ptr, it)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(6, dtype=np.float32).reshape(3, 2) - 2
    c = np.full((2, 2), np.nan, np.float32)
    ab = (a.ctypes.data, 3, b.ctypes.data, 2)
    mm(gemm)(ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, *ab, 0.0, c.ctypes.data, 2)
    return bool(np.array_equal(c, a @ b))


@cache
def find_sgemm() -> Sgemm | None:
    """numpy's ``cblas_sgemm``, or None (then the GEMMs run on the Python thread pool).

    ``ZOO_NO_CBLAS=1`` forces None (to test and measure the fallback).
    """
    if os.environ.get("ZOO_NO_CBLAS") == "1":
        return None
    for path in _numpy_blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix, ilp64 in _SYMBOLS:
            gemm = getattr(lib, f"{prefix}sgemm{suffix}", None)
            if gemm is None:
                continue
            mm = ctypes.cast(gemm, ctypes.c_void_p).value or 0
            if mm and _works(mm, ilp64):
                return Sgemm(mm, ilp64)
    return None
