"""The stacked matmul kernel (``_bmm.matmul_stack``) against a float64 numpy reference: the
register tiles and their row and column tails, B read in place or copied (K^T), A with any
strides, rows split into tasks when the stack is short; and where it declines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from zoo.runtime.kernels import set_threads
from zoo.runtime.kernels._bmm import B_MAX_BYTES, matmul_stack


@pytest.fixture(params=[1, 2, 3])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    set_threads(request.param)
    yield request.param
    set_threads(None)


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _check(a: np.ndarray, b: np.ndarray, threads: int) -> None:
    got = matmul_stack(a, b, threads)
    assert got is not None, "the stack kernel declined"
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_attention_shapes(threads: int) -> None:
    # Q @ K^T and P @ V as a BERT layer makes them: strided views of the QKV output
    qkv = _rand(2, 128, 3 * 96, seed=1)
    q = qkv[..., :96].reshape(2, 128, 3, 32).transpose(0, 2, 1, 3)
    kt = qkv[..., 96:192].reshape(2, 128, 3, 32).transpose(0, 2, 3, 1)
    v = qkv[..., 192:].reshape(2, 128, 3, 32).transpose(0, 2, 1, 3)
    _check(q, kt, threads)
    _check(_rand(2, 3, 128, 128, seed=2), v, threads)


@pytest.mark.parametrize(
    ("m", "k", "n"),
    [
        (8, 16, 32),  # one tile
        (13, 7, 45),  # a row tail (5) and a column tail (13)
        (3, 5, 31),  # rows and columns below one tile
        (17, 1, 64),  # K = 1
        (40, 33, 1),  # one column: no tile, the plain loop
        (1, 300, 70),  # one row
        (129, 64, 96),
    ],
)
def test_tiles_and_tails(threads: int, m: int, k: int, n: int) -> None:
    a, b = _rand(5, m, k, seed=m), _rand(5, k, n, seed=n)
    _check(a, b, threads)
    # B with contiguous columns (copied per task), A column-major
    a_cols = np.swapaxes(np.ascontiguousarray(np.swapaxes(a, 1, 2)), 1, 2)
    b_cols = np.swapaxes(np.ascontiguousarray(np.swapaxes(b, 1, 2)), 1, 2)
    _check(a_cols, b_cols, threads)


def test_short_stack_splits_rows(threads: int) -> None:
    # one or two matrices: rows go to tasks of a multiple of 8, each B copied per task
    for stack in (1, 2):
        a = _rand(stack, 100, 40, seed=stack)
        b = np.swapaxes(_rand(stack, 50, 40, seed=stack + 5), 1, 2)
        _check(a, b, threads)
    _check(_rand(70, 30, seed=3), _rand(30, 20, seed=4), threads)  # 2-D


def test_strided_stack_axes(threads: int) -> None:
    # every non-negative stride pattern is read where it lies (negative ones are declined)
    a = _rand(4, 6, 20, 24, seed=7)[:, ::2, ::3, 1::2]  # (4, 3, 7, 12), every axis strided
    b = _rand(4, 3, 24, 40, seed=8)[..., ::2, 5:37]  # (4, 3, 12, 32)
    _check(a, b, threads)
    b0 = np.broadcast_to(_rand(1, 12, 32, seed=9), (4, 12, 32))  # zero stack stride, read-only
    assert matmul_stack(_rand(4, 7, 12), b0, threads) is None


def test_declines() -> None:
    a = _rand(2, 8, 16)
    b = _rand(2, 16, 8)
    assert matmul_stack(a[::-1], b, 2) is None  # a negative stride
    ro = b.copy()
    ro.flags.writeable = False
    assert matmul_stack(a, ro, 2) is None  # read-only: the kernel's signature is mutable
    assert matmul_stack(_rand(2, 0, 16), b, 2) is None  # an empty dimension
    k = 256
    n = B_MAX_BYTES // (4 * k) + 1  # B's matrices past half the L2: sgemm's blocking
    assert matmul_stack(_rand(1, 8, k), _rand(1, k, n), 2) is None
