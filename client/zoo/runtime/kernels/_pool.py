"""Dense GEMMs split over our own worker threads, each calling single-threaded sgemm.

Why not OpenBLAS's threads: they busy-wait. On a 2-core machine shared with other work
(CI, other processes), a 2-thread OpenBLAS sgemm (64x4096 @ 4096x4096) took 108-193 ms
against 41-69 ms on 1 thread, while splitting the GEMM in two halves over two Python
threads that block (not spin) while waiting took 51-68 ms - never worse than 1 thread, and
twice as fast when the cores are free. So ``set_threads(n)`` pins BLAS to 1 thread and
sizes this pool to n; numpy releases the GIL inside matmul.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import numpy as np

from ._buffers import empty

# Below this many multiply-adds a split costs more (two thread hand-offs, ~20-50 us) than
# it saves.
SPLIT_MIN_WORK = 1 << 21

_state: dict[str, object] = {"threads": 1, "pool": None}


def configure(threads: int) -> None:
    """Use ``threads`` workers (the caller's thread counts as one)."""
    old = _state["pool"]
    _state["threads"] = threads
    _state["pool"] = ThreadPoolExecutor(threads - 1, "zoo-gemm") if threads > 1 else None
    if isinstance(old, ThreadPoolExecutor):
        old.shutdown(wait=False)


def threads() -> int:
    """The configured worker count."""
    n = _state["threads"]
    return n if isinstance(n, int) else 1


def run_parallel(tasks: Sequence[Callable[[], None]]) -> None:
    """Run ``tasks`` on the pool and the calling thread; return when all are done."""
    pool = _state["pool"]
    if len(tasks) == 1 or not isinstance(pool, ThreadPoolExecutor):
        for t in tasks:
            t()
        return
    futures: list[Future[None]] = [pool.submit(t) for t in tasks[1:]]
    tasks[0]()
    for f in futures:
        f.result()


def _spans(n: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    # ``parts`` near-equal spans of range(n), inner boundaries on multiples of ``align``
    step = -(-n // parts)
    step = -(-step // align) * align
    return [(i, min(n, i + step)) for i in range(0, n, step)]


# finish(out, r0, r1, c0, c1): an epilogue over the block out[r0:r1, c0:c1], called by the
# thread that computed the block, right after its GEMM
Finish = Callable[[np.ndarray, int, int, int, int], None]


def matmul_into(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, finish: Finish | None = None
) -> None:
    """out = a @ b, (M, K) @ (K, N) -> (M, N), split over the pool; ``out`` C-contiguous.
    Each part then calls ``finish`` on its block of ``out``, if given.

    The split is along the larger operand: by columns of ``b`` (each part writes the same
    rows, its own column block) when N >= M, else by rows of ``a``. sgemm packs all of
    the operand that is not split in every part, so splitting the smaller one doubles the
    packing of the large one. CPU time of both parts, 1 thread, ms, (M, K, N), split M ->
    split N: (64, 4096, 4096) 35.0 -> 27.8 (unsplit 27.3); (128, 768, 3072) 7.9 -> 7.1;
    (64, 576, 3136), a ResNet-50 3x3 conv at batch 1, 3.16 -> 2.81; the other way,
    (512, 4608, 49), split M 3.47, split N 4.31. With 2 threads the MLP's 4096x4096 layer
    at batch 64 went from 18.0-19.7 to 14.1-15.8 ms.
    """
    m, k = a.shape
    n = b.shape[1]
    t = threads()
    if t <= 1 or m * k * n < SPLIT_MIN_WORK:
        np.matmul(a, b, out=out)
        if finish is not None:
            finish(out, 0, m, 0, n)
    elif n >= m:
        # column blocks on 16-float (64-byte) boundaries: no cache line is shared by parts
        run_parallel([partial(_cols, a, b, out, finish, *s) for s in _spans(n, t, 16)])
    else:
        run_parallel([partial(_rows, a, b, out, finish, *s) for s in _spans(m, t)])


def matmul_split(x: np.ndarray, w: np.ndarray, finish: Finish | None = None) -> np.ndarray:
    """x @ w, (M, K) @ (K, N) -> fresh (M, N), split over the pool, then ``finish`` (see
    :func:`matmul_into`) over the result.

    Many rows: :func:`matmul_into`. Few rows (M < 2 * threads): each part takes a
    contiguous block of rows of w (a slice of K) and the partial products are summed - at
    M = 1 the GEMM streams the weight from memory, and contiguous row blocks stream faster
    than the strided column blocks of a split by N (2 threads, ms: 4096x4096 1.12 -> 1.02,
    4096x1000 0.40 -> 0.22, 1024x4096 0.24 -> 0.21).

    Not done: letting OpenBLAS use 2 threads per call instead (``threadpoolctl`` limit
    raised around the call). On the shared box it was faster in one run (MLP at batch 64:
    27 -> 21 ms) and much slower in the next (42 ms; BERT 164 -> 270 ms).
    """
    m, k = x.shape
    n = w.shape[1]
    out = empty((m, n))
    t = threads()
    if t <= 1 or m * k * n < SPLIT_MIN_WORK or m >= 2 * t:
        matmul_into(x, w, out, finish)
    else:
        spans = _spans(k, t)
        parts = [out] + [np.empty((m, n), np.float32) for _ in spans[1:]]
        run_parallel([partial(_ks, x, w, p, *s) for p, s in zip(parts, spans, strict=True)])
        for p in parts[1:]:
            np.add(out, p, out=out)
        if finish is not None:
            finish(out, 0, m, 0, n)
    return out


def _rows(
    x: np.ndarray, w: np.ndarray, out: np.ndarray, finish: Finish | None, lo: int, hi: int
) -> None:
    np.matmul(x[lo:hi], w, out=out[lo:hi])
    if finish is not None:
        finish(out, lo, hi, 0, out.shape[1])


def _cols(
    x: np.ndarray, w: np.ndarray, out: np.ndarray, finish: Finish | None, lo: int, hi: int
) -> None:
    np.matmul(x, w[:, lo:hi], out=out[:, lo:hi])
    if finish is not None:
        finish(out, 0, out.shape[0], lo, hi)


def _ks(x: np.ndarray, w: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    np.matmul(x[:, lo:hi], w[lo:hi], out=out)


def matmul_batched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul(a, b) for stacks of matrices, the stack split over the pool.

    Attention's Q @ K^T and P @ V (BERT-base at seq 128: 12 heads, 7.8 of 100 ms of the
    90%-sparse model on 1 thread) otherwise run on one thread, as BLAS is pinned to 1. The
    split is along the first stack axis with at least two entries, by slicing (no reshape:
    the operands are often transposed views, which a reshape would copy). Anything else
    (other dtypes, broadcast stacks, 2-D, small work) is plain np.matmul.
    """
    t = threads()
    if (
        t <= 1
        or a.ndim < 3
        or a.shape[:-2] != b.shape[:-2]
        or a.dtype != np.float32
        or b.dtype != np.float32
        or a.shape[-1] != b.shape[-2]
    ):
        return np.asarray(np.matmul(a, b))
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    axes = [i for i in range(a.ndim - 2) if a.shape[i] >= 2]
    if not axes or a.size // max(1, m * k) * m * k * n < SPLIT_MIN_WORK:
        return np.asarray(np.matmul(a, b))
    axis = axes[0]
    out = empty((*a.shape[:-2], m, n))
    spans = _spans(a.shape[axis], min(t, a.shape[axis]))
    pre = (slice(None),) * axis
    run_parallel([partial(_stack, a, b, out, (*pre, slice(lo, hi))) for lo, hi in spans])
    return out


def _stack(a: np.ndarray, b: np.ndarray, out: np.ndarray, part: tuple[slice, ...]) -> None:
    np.matmul(a[part], b[part], out=out[part])
