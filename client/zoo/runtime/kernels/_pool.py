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


def _spans(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b, (M, K) @ (K, N) -> (M, N), splitting the rows of ``a`` over the pool.

    ``out`` must be C-contiguous; each part writes its own contiguous row block.
    """
    m, k = a.shape
    parts = min(threads(), m) if m * k * b.shape[1] >= SPLIT_MIN_WORK else 1
    if parts <= 1:
        np.matmul(a, b, out=out)
        return
    run_parallel([partial(_rows, a, b, out, *s) for s in _spans(m, parts)])


def matmul_split(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w, (M, K) @ (K, N) -> fresh (M, N), split over the pool.

    Many rows: each worker takes a block of rows of x. Few rows (M < 2 * threads): each
    takes a contiguous block of rows of w (a slice of K) and the partial products are
    summed - at M = 1 the GEMM streams the weight from memory, and contiguous row blocks
    stream faster than the strided column blocks of the earlier split by N (2 threads,
    ms: 4096x4096 1.12 -> 1.02, 4096x1000 0.40 -> 0.22, 1024x4096 0.24 -> 0.21).

    Not done: letting OpenBLAS use 2 threads per call instead (``threadpoolctl`` limit
    raised around the call). On the shared box it was faster in one run (MLP at batch 64:
    27 -> 21 ms) and much slower in the next (42 ms; BERT 164 -> 270 ms).
    """
    m, k = x.shape
    n = w.shape[1]
    out = empty((m, n))
    t = threads()
    if t <= 1 or m * k * n < SPLIT_MIN_WORK:
        np.matmul(x, w, out=out)
    elif m >= 2 * t:
        spans = _spans(m, t)
        run_parallel([partial(_rows, x, w, out, *s) for s in spans])
    else:
        spans = _spans(k, t)
        parts = [out] + [np.empty((m, n), np.float32) for _ in spans[1:]]
        run_parallel([partial(_ks, x, w, p, *s) for p, s in zip(parts, spans, strict=True)])
        for p in parts[1:]:
            np.add(out, p, out=out)
    return out


def _rows(x: np.ndarray, w: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    np.matmul(x[lo:hi], w, out=out[lo:hi])


def _ks(x: np.ndarray, w: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    np.matmul(x[:, lo:hi], w[lo:hi], out=out)
