"""Import numba with LLVM's SLP vectorizer enabled for the kernels of this package.

The batched sparse kernels keep 8-64 accumulators in scalar variables and rely on LLVM's
SLP vectorizer to pack them into AVX-512 registers (3.7x onnxruntime at batch 64 with it,
about 1x without). numba turns SLP off by default since a miscompilation (numba#8705), and
reads ``NUMBA_SLP_VECTORIZE`` only when numba is first imported. So:

* we set the environment variable before importing numba (respecting a user's explicit
  ``NUMBA_SLP_VECTORIZE=0``), which works when this package is the first to import numba;
* ``slp_vectorize()`` additionally flips ``numba.config.SLP_VECTORIZE`` while *our* kernels
  compile, because numba reads that attribute per compilation (``CPUCodegen._pass_builder``)
  - this covers processes that imported numba before us, without changing other code.

numba's default threading layer on Linux is OpenMP (libgomp). Its worker threads either
sleep after a parallel region (``OMP_WAIT_POLICY=PASSIVE``) or spin for a while first. Waking
a sleeping worker costs 45-120 us on these VMs, about a hundred times per ResNet-50 at batch
1, so the workers spin for ``SPIN_COUNT`` iterations (``GOMP_SPINCOUNT``, about 0.5 ms here)
and then sleep. This is safe only because every parallel part of a run is on these threads,
the dense GEMMs included (``_cblas``, ``_gemm``): when the GEMM parts ran on Python threads, a
spinning worker held the core they needed (dense MLP at batch 64: 241-280 ms spinning, 24-29
ms passive; libgomp's default spin is 300000 iterations, ~13 ms). So where numpy's
cblas_sgemm is not found (the GEMMs fall back to Python threads), the default is PASSIVE as
before. A user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is left alone. libgomp reads
them when numba first starts its thread pool (``set_threads`` at import, after this module),
so this works unless another library loaded libgomp before - then set them yourself.

Each kernel has an explicit signature (a call with other types is an error, not a new
compilation) and is cached on disk (``cache=True``); the tests compare every one with a
float64 dense reference. ``kernel`` defers the compilation to the kernel's first call: a
model compiles only the kernels its plan uses. All of them took 74 s on a cold cache here
(then 1-2 s to load), most of it in kernels that a given model never calls: the batched
sparse linear ones for a CNN, the convs for an MLP or BERT.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_USER_SLP = os.environ.get("NUMBA_SLP_VECTORIZE")
os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")
# how long numba's OpenMP workers spin after a parallel region before they sleep (libgomp
# spin iterations, ~45 ns each here: 10000 ~ 0.5 ms); see the module docstring
SPIN_COUNT = 10000
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    from ._cblas import find_sgemm  # numpy and ctypes only: numba is not imported yet

    if find_sgemm() is not None:
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from typing import Any  # noqa: E402

import numba  # noqa: E402
from numba.core import config as _config  # noqa: E402

config: Any = _config  # numba ships no type information

# fastmath: allow fused multiply-add only. fastmath=True also allows reassociation, which
# makes LLVM vectorize the CSR loops into gathers (slow on the Zen 4).
FASTMATH = {"contract"}
# reassociation too, for the batch-1 CSR kernel's long rows (``_codegen.LONG_ROW``), whose
# sum LLVM then vectorizes with gathers - faster on the Zen 5. Nothing is assumed about NaN
# or inf: they still propagate.
REDUCE_FASTMATH = {"reassoc", "contract"}


def slp_enabled() -> bool:
    """Whether our kernels are compiled with the SLP vectorizer (for diagnostics)."""
    return _USER_SLP != "0"


@contextmanager
def slp_vectorize() -> Iterator[None]:
    """Compile numba functions inside this block with SLP vectorization on."""
    with _slp(0 if _USER_SLP == "0" else 1):
        yield


@contextmanager
def _slp(value: int) -> Iterator[None]:
    old = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = value
    try:
        yield
    finally:
        config.SLP_VECTORIZE = old


_COMPILING = threading.Lock()


class LazyKernel:
    """A numba kernel with an explicit signature, compiled (or loaded from numba's cache) on
    its first call instead of at import.

    The SLP setting in force where the kernel is defined (inside ``slp_vectorize()`` or not)
    is the one it compiles with. Compilations take one lock (numba compiles one function at
    a time anyway, and the SLP setting is global): threads that call a kernel first at the
    same time (a batch's images on the Python pool) wait for one compilation. Jitted code
    cannot call it: a kernel that other kernels call stays a plain ``numba.njit``.
    """

    def __init__(self, fn: Callable[..., Any], signature: Any, options: dict[str, Any]) -> None:
        self.py_func = fn
        self.signature = signature
        self._options = options
        self._slp = int(config.SLP_VECTORIZE)
        self._compiled: Any = None
        functools.update_wrapper(self, fn)

    @property
    def compiled(self) -> bool:
        """Whether the first call (or :meth:`dispatcher`) has compiled it."""
        return self._compiled is not None

    def dispatcher(self) -> Any:
        """The numba dispatcher, compiled now if it was not yet."""
        with _COMPILING:
            if self._compiled is None:
                with _slp(self._slp):
                    self._compiled = numba.njit(self.signature, **self._options)(self.py_func)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        compiled = self._compiled
        return (compiled if compiled is not None else self.dispatcher())(*args)


def kernel(signature: Any, **options: Any) -> Callable[[Callable[..., Any]], LazyKernel]:
    """``numba.njit(signature, **options)``, compiled on the first call (:class:`LazyKernel`)."""

    def decorate(fn: Callable[..., Any]) -> LazyKernel:
        return LazyKernel(fn, signature, options)

    return decorate


__all__ = [
    "FASTMATH",
    "REDUCE_FASTMATH",
    "LazyKernel",
    "kernel",
    "numba",
    "slp_enabled",
    "slp_vectorize",
]
