"""Thread control for the numba kernels and for the BLAS behind numpy."""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

from . import _pool
from ._numba_env import config, numba


def set_threads(n: int | None) -> None:
    """Use ``n`` threads in the kernels (``None``: all cores).

    Process-wide, like ``torch.set_num_threads``; the session calls it once at load. numba's
    parallel kernels get ``n`` threads; dense GEMMs are split into ``n`` parts, each a
    single-threaded BLAS call on one of those threads (or, without a cblas_sgemm numba can
    call, on a pool of ``n`` Python threads), so BLAS itself is pinned to 1 thread (see
    ``_pool``: OpenBLAS's spinning threads were 2-3x slower than 1 thread on a shared 2-core
    box).
    """
    cores = os.cpu_count() or 1
    count = cores if n is None else max(1, min(int(n), config.NUMBA_NUM_THREADS))
    numba.set_num_threads(min(count, config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=1, user_api="blas")
    _pool.configure(count)


set_threads(None)  # at import: BLAS on 1 thread, the kernel threads on all cores
