"""Recycled output arrays: a session hands released intermediates back for reuse.

Why: a fresh array above glibc's mmap threshold (at most 32 MB) is mapped anew and
page-faulted on every call. At batch 64 a ResNet-50 activation is 50-200 MB, and the faults
(kernel time zeroing pages) cost as much as the convs themselves: 10 s of system time
against 9.6 s of user time over a profiled run. onnxruntime avoids it with an arena; this
is ours: ``InferenceSession.run`` activates its :class:`BufferPool`, gives back every
intermediate it releases, and kernels allocate their outputs with :func:`empty`.

An array is only taken back when nothing else can see it: it owns its data (or is one of
:func:`aligned`'s views, or a reshaped or axis-permuted view of a whole array, whose base
nothing else holds) and the pool's caller holds the only reference (so views of live
arrays, feeds, constants and anything a callback kept are never reused). Kept arrays are
found by size and dtype, and handed out reshaped.

Every array :func:`empty` makes starts on a 64-byte boundary (:func:`aligned`): numpy's
large arrays start 16 or 48 bytes past a cache line, so each 64-byte load of a register
tile straddled two lines.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

MIN_BYTES = 1 << 20  # smaller arrays come from malloc's heap, already faulted in
_PER_SHAPE = 2  # arrays kept per (shape, dtype): more is memory that is rarely reused
ALIGN = 64  # bytes: one cache line, one AVX-512 register


def aligned(shape: tuple[int, ...], dtype: Any = np.float32, *, zero: bool = False) -> np.ndarray:
    """A new C-contiguous array of ``shape`` whose data starts on a 64-byte boundary.

    It is a view of a uint8 array ``ALIGN`` bytes longer (its ``base``, referenced by
    nothing else), which :meth:`BufferPool.give` recognises as an allocation of its own.
    Measured, 1 thread, 90% sparse direct 1x1 conv reading an aligned input instead of one
    16 or 48 bytes off (ResNet-50 shapes): 64->256 at 56x56 0.31 -> 0.29 ms, 256->64 at 56x56
    0.25 -> 0.215, 128->512 at 28x28 0.29 -> 0.22; the 14x14 and 7x7 maps and the padded 3x3
    convs (their own aligned work buffers) unchanged. Whole models on 2 threads, A/B in one
    process (a session each), the time aligned against unaligned: 90% ResNet-50 0.985x and
    0.987x at batch 1, 0.943x at batch 64; 90% MLP at batch 64 0.846x and 0.873x (each sparse
    layer's transposed output, the next one's input, is read a 64-float row at a time), at
    batch 1 1.007x; 90% BERT-base 0.996x and 1.002x; the dense models 0.999-1.013x.
    """
    # on every kernel's output, so kept cheap: 2 us a call (np.prod, .ctypes and a view
    # reshaped took 6 us, np.empty alone 0.2)
    dt = np.dtype(dtype)
    raw = (np.zeros if zero else np.empty)(math.prod(shape) * dt.itemsize + ALIGN, np.uint8)
    start = -raw.__array_interface__["data"][0] % ALIGN
    return np.ndarray(shape, dt, raw, start)


_work = threading.local()


def work_buffer(size: int) -> np.ndarray:
    """A flat float32 work array of ``size`` elements, 64-byte aligned, from one buffer per
    thread that every linear kernel shares for its transposed input (xT), grown to the
    largest request and kept for the thread's life; its contents are left from the last
    use. One buffer per layer instead (a ``Scratch`` each) kept an (K, M) xT alive for every
    layer: at batch 64 (M = 8192), 25 MB for each of BERT-base's 36 linears that transpose
    their input, where a shared one is at most 100 MB (K = 3072).

    The caller must be done with it before it calls another kernel that uses it.
    """
    buf: np.ndarray | None = getattr(_work, "buf", None)
    if buf is None or buf.size < size:
        buf = _work.buf = None  # the old one goes before the larger one is allocated
        buf = _work.buf = aligned((size,), np.float32)
    return buf[:size]


def memory_order(array: np.ndarray) -> list[int]:
    """``array``'s axes from the largest stride to the smallest: ``array.transpose`` of it is
    C-contiguous when ``array`` only permutes the axes of a dense block of memory."""
    return sorted(range(array.ndim), key=lambda a: -array.strides[a])


def _sole_owner(array: np.ndarray) -> bool:
    """Whether ``array`` owns its memory, or is an :func:`aligned` view (or a view of all of
    an array's memory) of a base no one else references."""
    if array.flags.owndata:
        return True
    base = array.base
    # 3 references to base: array's, this local variable and getrefcount's argument
    return (
        type(base) is np.ndarray
        and base.flags.owndata
        and (
            # aligned()'s uint8 allocation, or a whole array seen through another shape
            (base.dtype == np.uint8 and base.ndim == 1 and base.nbytes == array.nbytes + ALIGN)
            or base.nbytes == array.nbytes
        )
        and sys.getrefcount(base) == 3
    )


class BufferPool:
    """Released arrays by (shape, dtype), up to ``max_bytes`` in all."""

    def __init__(self, max_bytes: int = 1 << 31) -> None:
        self.max_bytes = max_bytes
        self._free: dict[tuple[int, str], list[np.ndarray]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def give(self, array: Any) -> None:
        """Take ``array`` back for reuse if it is a plain array no one else references.

        Pass it as a temporary (``pool.give(values.pop(name))``): a caller's local variable
        counts as a reference and keeps it out. A view that only permutes the axes of a
        whole array (a sparse layer's transposed output, and what GELU made of it) is taken
        back as that array: before, each was a fresh mapping page-faulted on every run (two
        of 100 MB per layer for BERT-base at batch 64). A/B in one process, 90% sparse at
        batch 64, time with / without: BERT-base (2 layers) 0.980x and 0.933x, MLP 0.979x.
        """
        # 2 references: this function's argument and getrefcount's own
        if type(array) is not np.ndarray or array.nbytes < MIN_BYTES or sys.getrefcount(array) > 2:
            return
        if not array.flags.c_contiguous:
            # rebinding drops the view itself: its base is then held only by the new view
            array = array.transpose(memory_order(array))
            if not array.flags.c_contiguous:
                return
        if not _sole_owner(array):
            return
        key = (array.size, array.dtype.str)
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < _PER_SHAPE and self._bytes + array.nbytes <= self.max_bytes:
                free.append(array)
                self._bytes += array.nbytes

    def take(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray | None:
        """A released array of ``shape`` and ``dtype`` (contents undefined), or None.

        Arrays are kept by size: a released (3072, 64, 128) serves a (3072, 8192) request.
        """
        with self._lock:
            free = self._free.get((math.prod(shape), dtype.str))
            if not free:
                return None
            array = free.pop()
            self._bytes -= array.nbytes
        return array.reshape(shape)

    def clear(self) -> None:
        """Drop every kept array."""
        with self._lock:
            self._free.clear()
            self._bytes = 0


_active = threading.local()


@contextmanager
def recycling(pool: BufferPool | None) -> Iterator[None]:
    """Make :func:`empty` on this thread draw from ``pool`` inside the block."""
    old = getattr(_active, "pool", None)
    _active.pool = pool
    try:
        yield
    finally:
        _active.pool = old


def empty(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """``np.empty(shape, dtype)`` on a 64-byte boundary, reusing a released array of the
    active pool if one fits."""
    pool: BufferPool | None = getattr(_active, "pool", None)
    dt = np.dtype(dtype)
    if pool is not None:
        shape = tuple(int(s) for s in shape)
        array = pool.take(shape, dt)
        if array is not None:
            return array
    return aligned(shape, dt)
