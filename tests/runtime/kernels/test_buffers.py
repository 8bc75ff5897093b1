"""The kernels' output arrays: 64-byte aligned, recycled by the session's pool, never shared."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.runtime.kernels._buffers import ALIGN, MIN_BYTES, BufferPool, aligned, empty, recycling

BIG = (64, 56, 56)  # 800 KB of float32: below MIN_BYTES
HUGE = (256, 56, 56)  # 3.2 MB: pooled


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int64])
@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), BIG, HUGE, (2, 0, 7)])
def test_empty_starts_on_a_cache_line(shape: tuple[int, ...], dtype: type) -> None:
    for pool in (None, BufferPool()):
        with recycling(pool):
            a = empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert a.flags.writeable
        if a.size:
            assert a.ctypes.data % ALIGN == 0
    z = aligned(shape, dtype, zero=True)
    assert z.shape == shape and not z.any() and (z.size == 0 or z.ctypes.data % ALIGN == 0)


F32 = np.dtype(np.float32)


def test_the_pool_takes_aligned_arrays_back_and_hands_them_out_again() -> None:
    pool = BufferPool()
    with recycling(pool):
        held = [empty(HUGE)]
        address = held[0].ctypes.data
        pool.give(held.pop())  # a temporary, as the session passes them
        b = empty(HUGE)
        assert b.ctypes.data == address  # the same memory, from the pool
        assert b.ctypes.data % ALIGN == 0
        assert pool.take(HUGE, F32) is None  # it had only the one
        held = [b]
        del b
        pool.give(held.pop())
        again = pool.take(HUGE, F32)
        assert again is not None and again.ctypes.data == address


def test_the_pool_refuses_what_someone_else_can_still_see() -> None:
    pool = BufferPool()
    held = [empty(HUGE)]
    view = held[0][1:]  # a live view of its memory, through the same base
    pool.give(held.pop())
    assert pool.take(HUGE, F32) is None
    del view

    kept = empty(HUGE)  # a caller's variable is a reference too
    pool.give(kept)
    assert pool.take(HUGE, F32) is None

    # a part of an aligned allocation, and a view of an array zoo did not make
    pool.give(aligned((2 * HUGE[0], *HUGE[1:]))[: HUGE[0]])
    pool.give(np.ones((HUGE[0] + 1, *HUGE[1:]), np.float32)[1:])
    assert pool.take(HUGE, F32) is None

    # arrays below MIN_BYTES are not kept (malloc serves them without page faults)
    assert empty(BIG).nbytes < MIN_BYTES
    pool.give(empty(BIG))
    assert pool.take(BIG, F32) is None

    # and a plain numpy array that owns its memory still is
    pool.give(np.empty(HUGE, np.float32))
    assert pool.take(HUGE, F32) is not None


def test_a_permuted_view_of_a_whole_array_is_taken_back_as_that_array() -> None:
    # a sparse layer's transposed output (and GELU's result in the same layout) is a view;
    # at batch 64 BERT made two fresh 100 MB arrays per layer of them, page-faulted anew
    pool = BufferPool()
    with recycling(pool):
        for make in (lambda: empty((3072, 512)).T, lambda: np.empty((3072, 512), np.float32).T):
            held = [make().reshape(8, 64, 3072)]  # (B * S, N) seen as (B, S, N)
            address = held[0].ctypes.data
            assert not held[0].flags.c_contiguous and not held[0].T.flags.c_contiguous
            pool.give(held.pop())
            b = empty((3072, 512))  # the same memory, for any shape of its size
            assert b.ctypes.data == address and b.flags.c_contiguous
            held = [b.T]
            del b
            pool.give(held.pop())  # given back a second time, through its transpose
            c = pool.take((512, 3072), F32)
            assert c is not None and c.ctypes.data == address and c.shape == (512, 3072)


def test_a_permuted_view_is_refused_while_its_array_is_seen() -> None:
    pool = BufferPool()
    y = empty((3072, 512))
    pool.give(y.T)  # y itself is still referenced
    assert pool.take((512, 3072), F32) is None
    strided = [empty((3072, 1024))[:, ::2].T]  # not a whole array: every other column
    pool.give(strided.pop())
    assert pool.take((512, 3072), F32) is None
    part = [empty((3072, 1024))[:, :512].T]  # permutes the axes of a part only
    pool.give(part.pop())
    assert pool.take((512, 3072), F32) is None
