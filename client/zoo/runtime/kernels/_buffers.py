"""Recycled output arrays: a session hands released intermediates back for reuse.

Why: a fresh array above glibc's mmap threshold (at most 32 MB) is mapped anew and
page-faulted on every call. At batch 64 a ResNet-50 activation is 50-200 MB, and the faults
(kernel time zeroing pages) cost as much as the convs themselves: 10 s of system time
against 9.6 s of user time over a profiled run. onnxruntime avoids it with an arena; this
is ours: ``InferenceSession.run`` activates its :class:`BufferPool`, gives back every
intermediate it releases, and kernels allocate their outputs with :func:`empty`.

An array is only taken back when nothing else can see it: it owns its data and the pool's
caller holds the only reference (so views, feeds, constants and anything a callback kept
are never reused).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

MIN_BYTES = 1 << 20  # smaller arrays come from malloc's heap, already faulted in
_PER_SHAPE = 2  # arrays kept per (shape, dtype): more is memory that is rarely reused


class BufferPool:
    """Released arrays by (shape, dtype), up to ``max_bytes`` in all."""

    def __init__(self, max_bytes: int = 1 << 31) -> None:
        self.max_bytes = max_bytes
        self._free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def give(self, array: Any) -> None:
        """Take ``array`` back for reuse if it is a plain array no one else references.

        Pass it as a temporary (``pool.give(values.pop(name))``): a caller's local variable
        counts as a reference and keeps it out.
        """
        # 2 references: this function's argument and getrefcount's own
        if (
            type(array) is not np.ndarray
            or array.nbytes < MIN_BYTES
            or not array.flags.owndata
            or not array.flags.c_contiguous
            or sys.getrefcount(array) > 2
        ):
            return
        key = (array.shape, array.dtype.str)
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < _PER_SHAPE and self._bytes + array.nbytes <= self.max_bytes:
                free.append(array)
                self._bytes += array.nbytes

    def take(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray | None:
        """A released array of exactly ``shape`` and ``dtype`` (contents undefined), or None."""
        with self._lock:
            free = self._free.get((shape, dtype.str))
            if not free:
                return None
            array = free.pop()
            self._bytes -= array.nbytes
            return array

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
    """``np.empty(shape, dtype)``, reusing a released array of the active pool if one fits."""
    pool: BufferPool | None = getattr(_active, "pool", None)
    dt = np.dtype(dtype)
    if pool is not None:
        shape = tuple(int(s) for s in shape)
        array = pool.take(shape, dt)
        if array is not None:
            return array
    return np.empty(shape, dt)
