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

numba's default threading layer on Linux is OpenMP (libgomp), whose worker threads spin
after every parallel region. On a 2-core box that spinning starves whatever runs next -
OpenBLAS's threads in a dense layer, or onnxruntime's: a dense MLP at batch 64 went from
241-280 ms to 24-29 ms with ``OMP_WAIT_POLICY=PASSIVE`` (and the onnxruntime run in the same
process from 62-76 ms to 22-27 ms; ``GOMP_SPINCOUNT=10000`` was 5x slower than PASSIVE on the
sparse MLP at batch 1). So we default it to PASSIVE too. libgomp reads it when numba first
starts its thread pool (the first parallel kernel call, after this import), so it works
unless another library loaded libgomp before - then set it in the environment yourself.

All kernels are compiled eagerly (explicit signatures) inside ``slp_vectorize()`` and cached
on disk (``cache=True``), and the tests compare every one with a float64 dense reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_USER_SLP = os.environ.get("NUMBA_SLP_VECTORIZE")
os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import Any  # noqa: E402

import numba  # noqa: E402
from numba.core import config as _config  # noqa: E402

config: Any = _config  # numba ships no type information

# fastmath: allow fused multiply-add only. fastmath=True also allows reassociation, which
# makes LLVM vectorize the CSR loops into slow gathers.
FASTMATH = {"contract"}


def slp_enabled() -> bool:
    """Whether our kernels are compiled with the SLP vectorizer (for diagnostics)."""
    return _USER_SLP != "0"


@contextmanager
def slp_vectorize() -> Iterator[None]:
    """Compile numba functions inside this block with SLP vectorization on."""
    old = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = 0 if _USER_SLP == "0" else 1
    try:
        yield
    finally:
        config.SLP_VECTORIZE = old


__all__ = ["FASTMATH", "numba", "slp_enabled", "slp_vectorize"]
