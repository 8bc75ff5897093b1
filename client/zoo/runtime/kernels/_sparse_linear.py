"""Sparse linear kernels: y = act(x @ W + b) over the CSR form of W^T, skipping zeros.

Two kernels (source in ``_generated/csr_linear.py``), both parallel over output features n:

* ``sparse-csr-b1`` (M < BATCHED_MIN_M): for each n and each input row m, a dot product of
  the row's nonzeros with x[m, indices]: a row of ``LONG_ROW`` (128) nonzeros or more in
  one loop that LLVM vectorizes with gathers (its sum reassociated), a shorter one with
  eight scalar accumulators that break the FMA dependency chain; uint16 column indices
  halve index traffic (K <= 65536). The 90% MLP at batch 1, A/B in one process on 2
  threads: eight accumulators instead of four 0.964x the time (95%: 0.916x), then the long
  rows vectorized 0.900x (80%: 0.946x, 95%: 0.972x; 1 thread 0.950x). The vectorized loop
  alone was slower on short rows (95%: 51 nonzeros per row of the first layer), and the
  eight accumulators compiled with reassociation gained nothing.
* ``sparse-csr-batched``: x transposed to (K, Mp) (Mp = M rounded up to 8), then per n a
  register tile of 64/32/16/8 batch columns: each nonzero w[n, k] does
  acc[0:64] += w * xT[k, b0:b0+64] - four AVX-512 FMAs from one contiguous row of xT;
  tiles of 16 consecutive n are buffered and written out together (see ``_codegen``).
  Its ``transposed_out`` form writes each tile straight into out (N, Mp) - xT of the next
  sparse layer, which then skips its transpose (an MLP's chain of layers).

CPU time per call, 1 thread, 90% sparse, against onnxruntime's dense Gemm on the same box:
1024x4096 / 4096x4096 / 4096x1000 at M = 1: 3.0x / 5.5x / 3.4x; at M = 64: 3.6x / 4.9x / 4.0x;
BERT's 768x768 / 768x3072 / 3072x768 at M = 128: 2.3x / 2.8x / 3.3x.
"""

from __future__ import annotations

import numpy as np

from ._activation import Activation, activation_code
from ._buffers import empty
from ._codegen import PREFETCH_AHEAD
from ._numba_env import slp_vectorize
from ._transpose import SERIAL_TRANSPOSE_MAX, transpose_to_work
from ._types import Kernel

with slp_vectorize():
    from ._generated.csr_linear import TILED, TILED_T, csr_b1, csr_b1_serial

# Measured (90% sparse 4096x4096, 1 thread): the b1 kernel vs the batched kernel
# crosses over at M = 3 (b1 0.57/1.25/2.00 ms at M = 1/2/3, batched 1.8 ms flat up to M = 8).
BATCHED_MIN_M = 3
# Below this many multiply-adds a call runs on one thread: a parallel launch costs 5-200 us.
SERIAL_MAX_WORK = 1 << 17
# Not done: running K in blocks so that the (K_BLOCK, 64) slice of xT stays in L2 measured no
# faster (CPU time, 1 thread; unblocked / 2048 / 1024 / 512: 4096x4096 at M = 64 8.6 / 8.2 /
# 10.3 / 11.5 ms; 768x3072 at M = 128 2.7 / 3.3 / 2.6 / 2.3 ms). Prefetching xT rows helps more.


# The bytes of xT one pass of the batched kernel reads (half the 1 MB L2): more batch
# columns than fit go in several passes, each over all output features. A 90%-sparse
# BERT-base (2 layers) at batch 64, M = 8192 rows, A/B in one process over 8 rounds: 1.12x
# onnxruntime in passes, 1.01x in one pass; per layer, 768x3072 145-177 ms against 187-194,
# 3072x768 189-211 against 250-281. M <= 128 (a batch of one sequence) fits in one pass.
BATCH_COLUMNS_L2 = 1 << 19


class CSR:
    """W^T (N, K) in CSR with uint16 column indices, built once at plan time."""

    def __init__(self, weight: np.ndarray) -> None:
        wt = np.ascontiguousarray(np.asarray(weight, dtype=np.float32).T)  # (N, K)
        mask = wt != 0
        self.shape = wt.shape
        self.indptr = np.zeros(wt.shape[0] + 1, np.int64)
        np.cumsum(mask.sum(axis=1), out=self.indptr[1:])
        rows, cols = np.nonzero(mask)  # row-major order: each row's nonzeros are contiguous
        # padded: the batched kernel prefetches the row of the nonzero PREFETCH_AHEAD later
        self.indices = np.zeros(len(cols) + PREFETCH_AHEAD, np.uint16)
        self.indices[: len(cols)] = cols
        self.values = np.ascontiguousarray(wt[rows, cols])
        self.nnz = int(self.indptr[-1])


def sparse_linear(
    weight: np.ndarray,
    bias: np.ndarray | None,
    act_: Activation | None,
    *,
    transposed_out: bool = False,
) -> Kernel:
    """Plan a sparse linear layer; ``weight`` (K, N) with K <= 65536. A ``residual`` (M, N)
    given to the kernel is added after the activation: pass one only without activation.

    The batched path reads its input as xT (K, M): an input that is already the transpose
    of a C-contiguous (K, M) array with M a multiple of 8 (what ``transposed_out`` returns)
    is used as it is, with no transpose. ``transposed_out``: return (M, N) as the transpose
    of a C-contiguous (N, M) array when M is a multiple of 8 - the planner asks for it
    when the only reader is another sparse layer (an MLP's chain). Per layer, 2 threads,
    batch 64, 90%: 1024x4096 1.21 -> 0.88 ms, 4096x4096 4.65 -> 3.12, 4096x1000 1.29 -> 0.92
    (the transposes and the buffered row stores are gone).
    """
    k, n = weight.shape
    if k > 65536:
        raise ValueError(f"sparse linear needs K <= 65536 (uint16 indices), got K={k}")
    csr = CSR(weight)
    ip, ix, vals = csr.indptr, csr.indices, csr.values
    b = np.zeros(n, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    code, alpha, beta = activation_code(act_)
    fa, fb = np.float32(alpha), np.float32(beta)

    def run(x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        y = compute(np.asarray(x, dtype=np.float32))
        if residual is not None:  # (M, N); planned only for a layer without activation
            np.add(y, residual, out=y)
        return y

    def compute(x: np.ndarray) -> np.ndarray:
        m = x.shape[0]
        par = 0 if csr.nnz * m < SERIAL_MAX_WORK else 1
        if m < BATCHED_MIN_M:
            kern.kind = "sparse-csr-b1"
            out = np.empty((m, n), np.float32)
            (csr_b1_serial, csr_b1)[par](
                np.ascontiguousarray(x), ip, ix, vals, b, code, fa, fb, out
            )
            return out
        kern.kind = "sparse-csr-batched"
        if m % 8 == 0 and x.T.flags.c_contiguous:
            mp, xt = m, x.T  # a previous layer's transposed output: already xT
        else:
            mp = (m + 7) // 8 * 8
            # (M, K) -> (K, Mp): each nonzero then reads a contiguous row slice of xT.
            # Padding columns may hold another call's or layer's data (the buffer is shared):
            # they only feed the sliced-off output rows.
            x = np.ascontiguousarray(x)
            xt = transpose_to_work(x, mp, serial=x.size < SERIAL_TRANSPOSE_MAX)
        xf = xt.reshape(-1)
        transposed = transposed_out and mp == m
        # padding rows (columns, transposed) are computed, then sliced off
        out = empty((n, mp)) if transposed else empty((mp, n))
        kernels = TILED_T if transposed else TILED
        full = mp // 64 * 64
        # batch columns in passes whose xT slice (K, cols) stays in L2: the kernel walks
        # every column for each block of output features, so with BERT's M = 64 * 128 rows
        # the whole 25 MB xT came from memory once per block (see BATCH_COLUMNS_L2)
        cols = max(64, BATCH_COLUMNS_L2 // (4 * k) // 64 * 64)
        for c0 in range(0, full, cols):
            kernels[64][1 - par](
                xf, mp, ip, ix, vals, b, c0, min(full, c0 + cols), code, fa, fb, out
            )
        lo = full
        for w in (32, 16, 8):  # the remainder (a multiple of 8) as 32 + 16 + 8
            if mp - lo >= w:
                kernels[w][1 - par](xf, mp, ip, ix, vals, b, lo, lo + w, code, fa, fb, out)
                lo += w
        if transposed:
            return out.T
        return out if mp == m else out[:m]  # unsliced, it can be recycled (_buffers)

    kern = Kernel(run, "sparse-csr-b1")
    return kern
