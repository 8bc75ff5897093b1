"""x (M, K) -> xT (K, Mp) for the linear kernels, into one work buffer per thread.

Both the packed dense GEMM (``_dense``) and the batched sparse kernel (``_sparse_linear``)
read their input transposed: each k then gives a contiguous row of batch columns.
"""

from __future__ import annotations

import numpy as np

from ._buffers import work_buffer
from ._numba_env import kernel, numba, slp_vectorize

# Below this many elements the transpose runs on the calling thread. It was 1 << 17, so that
# (128, 768), BERT-base's activations at batch 1 (0.02-0.05 ms on one thread), stayed on the
# calling thread; but the sparse layers' workers still spin from the previous launch
# (``_numba_env``), and in the model the split transpose wins: A/B in one process, 2 threads,
# 90% BERT-base (12 layers) at batch 1 0.920x and 0.981x the time (two runs), 90% MLP at
# batch 64 0.979x.
SERIAL_TRANSPOSE_MAX = 1 << 14

with slp_vectorize():

    @numba.njit(inline="always")
    def _transpose_block(x, xt, cb, r8):  # type: ignore[no-untyped-def]
        # xt[j:j+8, :r8] = x[:r8, j:j+8].T for j = 8 * cb. 8x8 blocks with the eight stores
        # of a source row spelled out, so that the SLP vectorizer turns a block into
        # shuffles: 2.2x faster than the scalar 8x8 loops before (1 thread: (64, 4096) 0.30
        # -> 0.13 ms, (128, 3072) 0.44 -> 0.20 ms); a 64-row column of writes 12-16 KB apart
        # maps to one L1 set, hence the small blocks.
        j = cb * 8
        for i in range(0, r8, 8):
            for a in range(8):
                xa = x[i + a]
                ia = i + a
                xt[j, ia] = xa[j]
                xt[j + 1, ia] = xa[j + 1]
                xt[j + 2, ia] = xa[j + 2]
                xt[j + 3, ia] = xa[j + 3]
                xt[j + 4, ia] = xa[j + 4]
                xt[j + 5, ia] = xa[j + 5]
                xt[j + 6, ia] = xa[j + 6]
                xt[j + 7, ia] = xa[j + 7]

    @numba.njit(inline="always")
    def _transpose_edges(x, xt, rr, c, r8, c8):  # type: ignore[no-untyped-def]
        for j in range(c8, c):  # columns past the last full block
            for i in range(rr):
                xt[j, i] = x[i, j]
        for j in range(c8):  # and rows past it
            for i in range(r8, rr):
                xt[j, i] = x[i, j]

    _T_SIG = "void(float32[:, ::1], float32[:, ::1])"

    @kernel(_T_SIG, parallel=True, cache=True, nogil=True)
    def transpose_into(x, xt):  # type: ignore[no-untyped-def]
        # xt[:C, :R] = x[:R, :C].T, R and C clipped to both shapes; the rest of xt is left
        # as it is
        rr = min(x.shape[0], xt.shape[1])
        c = min(x.shape[1], xt.shape[0])
        r8, c8 = rr // 8 * 8, c // 8 * 8
        for cb in numba.prange(c8 // 8):
            _transpose_block(x, xt, cb, r8)
        _transpose_edges(x, xt, rr, c, r8, c8)

    @kernel(_T_SIG, cache=True, nogil=True)
    def transpose_into_serial(x, xt):  # type: ignore[no-untyped-def]
        rr = min(x.shape[0], xt.shape[1])
        c = min(x.shape[1], xt.shape[0])
        r8, c8 = rr // 8 * 8, c // 8 * 8
        for cb in range(c8 // 8):
            _transpose_block(x, xt, cb, r8)
        _transpose_edges(x, xt, rr, c, r8, c8)


def transpose_to_work(x: np.ndarray, mp: int, *, serial: bool) -> np.ndarray:
    """x (M, K) C-contiguous float32 transposed into this thread's shared work buffer
    (``_buffers.work_buffer``) as (K, mp), mp >= M; columns M.. are left as they were
    (another call's data). ``serial``: transpose on the calling thread."""
    k = x.shape[1]
    xt = work_buffer(k * mp).reshape(k, mp)
    (transpose_into_serial if serial else transpose_into)(x, xt)
    return xt
