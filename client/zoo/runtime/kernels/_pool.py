"""Dense GEMMs split over threads, each part a single-threaded sgemm.

The parts run on numba's OpenMP threads when numpy's ``cblas_sgemm`` can be called from
numba (``_cblas``, ``_gemm``): the same threads as every other kernel, which spin briefly
between launches. Otherwise (and for whole images of a batch, ``run_parallel``) they run on
a pool of Python threads that block between tasks, as below.

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
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ._bmm import matmul_stack, stack_offsets
from ._buffers import empty
from ._cblas import NO_TRANS, TRANS, find_sgemm
from ._gemm import NONE1, NONE2, block_epilogue, gemm_parts, gemm_stack

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
    if len(tasks) <= 1 or not isinstance(pool, ThreadPoolExecutor):  # (none: a batch of 0)
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


def _c_float32(a: np.ndarray) -> np.ndarray:
    # the operand as sgemm reads it: C-contiguous float32 (as every caller passes it)
    return np.ascontiguousarray(a, dtype=np.float32)


def _writeable(a: np.ndarray) -> np.ndarray:
    # numba types read-only arrays apart from the kernels' signatures: copy those (a bias
    # that is a model constant; cheap) rather than compile every combination
    return a if a.flags.writeable else a.copy()


@dataclass(frozen=True)
class Epilogue:
    """What a GEMM part applies to its own block of the output right after computing it:
    ``act(out + brow[:, None] + bcol[None, :] + res)`` (empty arrays are left out; ``code``
    as in ``Activation``), by the thread that computed the block, while it is in cache."""

    brow: np.ndarray = field(default_factory=lambda: NONE1)
    bcol: np.ndarray = field(default_factory=lambda: NONE1)
    res: np.ndarray = field(default_factory=lambda: NONE2)
    code: int = 0
    alpha: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        for name in ("brow", "bcol", "res"):
            object.__setattr__(self, name, _writeable(getattr(self, name)))

    def apply(self, out: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
        """Apply to out[r0:r1, c0:c1] on this thread."""
        block_epilogue(out, r0, r1, c0, c1, *self.args())

    def args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.float32, np.float32]:
        """The epilogue arguments of the ``_gemm`` kernels."""
        return (
            self.brow,
            self.bcol,
            self.res,
            self.code,
            np.float32(self.alpha),
            np.float32(self.beta),
        )


NO_EPILOGUE = Epilogue()


def _bounds(spans: list[tuple[int, int]]) -> np.ndarray:
    return np.array([s[0] for s in spans] + [spans[-1][1]], np.int64)


def matmul_into(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, epilogue: Epilogue = NO_EPILOGUE
) -> None:
    """out = a @ b, (M, K) @ (K, N) -> (M, N), split over the threads; all three C-contiguous
    float32. Each part then applies ``epilogue`` to its block of ``out``.

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
        epilogue.apply(out, 0, m, 0, n)
        return
    # column blocks on 16-float (64-byte) boundaries: no cache line is shared by parts
    spans = _spans(n, t, 16) if n >= m else _spans(m, t)
    sgemm = find_sgemm()
    if sgemm is not None:
        a, b = _c_float32(a), _c_float32(b)
        fn, ilp64 = sgemm.gemm, sgemm.ilp64
        gemm_parts(
            fn,
            ilp64,
            a.ctypes.data,
            b.ctypes.data,
            k,
            out,
            n >= m,
            _bounds(spans),
            *epilogue.args(),
        )
    elif n >= m:
        run_parallel([partial(_cols, a, b, out, epilogue, *s) for s in spans])
    else:
        run_parallel([partial(_rows, a, b, out, epilogue, *s) for s in spans])


def _rows(
    x: np.ndarray, w: np.ndarray, out: np.ndarray, epilogue: Epilogue, lo: int, hi: int
) -> None:
    np.matmul(x[lo:hi], w, out=out[lo:hi])
    epilogue.apply(out, lo, hi, 0, out.shape[1])


def _cols(
    x: np.ndarray, w: np.ndarray, out: np.ndarray, epilogue: Epilogue, lo: int, hi: int
) -> None:
    np.matmul(x, w[:, lo:hi], out=out[:, lo:hi])
    epilogue.apply(out, 0, out.shape[0], lo, hi)


def matmul_batched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul(a, b) for stacks of matrices, the stack split over the threads.

    Attention's Q @ K^T and P @ V (BERT-base at seq 128: 12 heads of 128 x 64 @ 64 x 128
    and 128 x 128 @ 128 x 64) go to :func:`~._bmm.matmul_stack`, one numba launch with
    register tiles, reading the operands where they lie. Where it does not apply (B's
    matrices larger than half the L2, read-only or oddly strided operands): with numpy's
    cblas_sgemm (``_cblas``) every matrix of the stack is one sgemm call on the operands
    where they lie, a transposed view (K^T) passed as transposed, not copied; without it,
    the split is along the first stack axis with at least two entries, by slicing, over the
    Python pool. Anything else (other dtypes, broadcast stacks, 1-D, small work) is plain
    np.matmul.
    """
    t = threads()
    if (
        a.ndim < 2
        or a.ndim != b.ndim
        or a.shape[:-2] != b.shape[:-2]
        or a.dtype != np.float32
        or b.dtype != np.float32
        or a.shape[-1] != b.shape[-2]
    ):
        return np.asarray(np.matmul(a, b))
    y = matmul_stack(a, b, t)
    if y is not None:
        return y
    if t <= 1 or a.ndim < 3:
        return np.asarray(np.matmul(a, b))
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    axes = [i for i in range(a.ndim - 2) if a.shape[i] >= 2]
    if not axes or a.size // max(1, m * k) * m * k * n < SPLIT_MIN_WORK:
        return np.asarray(np.matmul(a, b))
    out = empty((*a.shape[:-2], m, n))
    sgemm = find_sgemm()
    if sgemm is not None and k > 0:
        a, lda, ta = _operand(a)
        b, ldb, tb = _operand(b)
        pa, pb, pc = _addresses(a), _addresses(b), _addresses(out)
        bounds = _bounds(_spans(pa.size, min(t, pa.size)))
        gemm_stack(sgemm.gemm, sgemm.ilp64, pa, pb, pc, ta, tb, m, n, k, lda, ldb, n, bounds)
        return out
    axis = axes[0]
    spans = _spans(a.shape[axis], min(t, a.shape[axis]))
    pre = (slice(None),) * axis
    run_parallel([partial(_stack, a, b, out, (*pre, slice(lo, hi))) for lo, hi in spans])
    return out


def _operand(x: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(x, leading dimension, CBLAS transpose flag) for the matrices of the stack ``x``: as
    it lies when each matrix is row-major or column-major (a transposed view), else a
    C-contiguous copy."""
    r, c = x.shape[-2:]
    if all(s % 4 == 0 for s in x.strides):
        sr, sc = x.strides[-2] // 4, x.strides[-1] // 4
        if (sc == 1 or c == 1) and (r == 1 or sr >= max(1, c)):
            return x, sr if r > 1 else max(1, c), NO_TRANS
        if (sr == 1 or r == 1) and (c == 1 or sc >= max(1, r)):
            return x, sc if c > 1 else max(1, r), TRANS
    x = np.ascontiguousarray(x)
    return x, max(1, c), NO_TRANS


def _addresses(x: np.ndarray) -> np.ndarray:
    """The address of every matrix of the stack ``x``, in C order of the stack axes."""
    return stack_offsets(x) + np.int64(x.ctypes.data)


def _stack(a: np.ndarray, b: np.ndarray, out: np.ndarray, part: tuple[slice, ...]) -> None:
    np.matmul(a[part], b[part], out=out[part])
