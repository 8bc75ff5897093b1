"""Linear kernels against a float64 numpy reference, on every shape class they handle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.kernels._reference import linear, prune
from zoo.runtime.kernels import Activation, plan_linear, set_threads
from zoo.runtime.kernels._codegen import LONG_ROW
from zoo.runtime.kernels._dense import dense_linear
from zoo.runtime.kernels._sparse_linear import SERIAL_MAX_WORK, sparse_linear

ACTS = [None, Activation("relu"), Activation("clip", -0.25, 0.5), Activation("leaky_relu", 0.1)]


def _layer(k: int, n: int, sparsity: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = prune(rng.uniform(-0.5, 0.5, (k, n)).astype(np.float32), sparsity, rng)
    return w, rng.uniform(-0.5, 0.5, n).astype(np.float32)


def _x(m: int, k: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (m, k)).astype(np.float32)


def _check(f, x, w, b, act):  # type: ignore[no-untyped-def]
    y = f(x)
    assert y.dtype == np.float32 and y.shape == (x.shape[0], w.shape[1])
    np.testing.assert_allclose(y, linear(x, w, b, act), rtol=1e-4, atol=1e-5)


# batches: 1 and 2 (b1 kernel), 3 (smallest batched), 8, 9, 63, 64, 65, 100, 130 (tiles of
# 64/32/16/8 and padding); K, N odd and not multiples of 4/8/16/64
@pytest.mark.parametrize("m", [1, 2, 3, 8, 9, 63, 64, 65, 100, 130])
@pytest.mark.parametrize(("k", "n"), [(37, 53), (256, 96), (1, 5), (300, 7)])
def test_sparse_linear_matches_reference(m: int, k: int, n: int) -> None:
    w, b = _layer(k, n, 0.9)
    f = sparse_linear(w, b, None)
    _check(f, _x(m, k), w, b, None)
    assert f.kind == ("sparse-csr-b1" if m < 3 else "sparse-csr-batched")


@pytest.mark.parametrize("act", ACTS, ids=lambda a: "none" if a is None else a.kind)
@pytest.mark.parametrize("m", [1, 17, 64])
def test_activation_fused(act: Activation | None, m: int) -> None:
    w, b = _layer(129, 71, 0.85)
    for f in (sparse_linear(w, b, act), dense_linear(w, b, act)):
        _check(f, _x(m, 129), w, b, act)


@pytest.mark.parametrize("m", [1, 5, 64])
def test_empty_rows_and_zero_layer(m: int) -> None:
    w, b = _layer(64, 40, 0.9)
    w[:, ::3] = 0.0  # output features with no weights at all: only the bias
    w[5] = 0.0
    _check(sparse_linear(w, b, None), _x(m, 64), w, b, None)
    zero = np.zeros((64, 40), np.float32)
    f = plan_linear(zero, b, activation=Activation("relu"))
    assert f.kind.startswith("sparse")
    _check(f, _x(m, 64), zero, b, Activation("relu"))
    f = plan_linear(zero, None)
    np.testing.assert_array_equal(f(_x(m, 64)), np.zeros((m, 40), np.float32))


@pytest.mark.parametrize("m", [1, 3, 64])
def test_fully_dense_weight_in_sparse_kernel(m: int) -> None:
    w, b = _layer(200, 33, 0.0)
    _check(sparse_linear(w, b, None), _x(m, 200), w, b, None)


def test_kernel_choice() -> None:
    dense, _ = _layer(64, 64, 0.0)
    sparse, _ = _layer(64, 64, 0.95)
    assert plan_linear(dense, None).kind == "dense-packed"
    assert plan_linear(sparse, None).kind.startswith("sparse-csr")
    assert plan_linear(sparse, None, sparse=False).kind == "dense-packed"


def test_outputs_are_fresh_and_input_untouched() -> None:
    w, b = _layer(48, 24, 0.9)
    for f in (plan_linear(w, b), plan_linear(w, b, sparse=False)):
        for m in (1, 16):
            x = _x(m, 48)
            x0 = x.copy()
            y1 = f(x)
            y2 = f(x * 2)
            assert not np.shares_memory(y1, y2)
            np.testing.assert_array_equal(x, x0)
            _check(f, x, w, b, None)


@pytest.mark.parametrize("act", [None, Activation("relu")], ids=["none", "relu"])
@pytest.mark.parametrize("m", [1, 3, 8, 9, 64, 72, 130])
def test_transposed_output_feeds_the_next_layer_as_it_is(m: int, act: Activation | None) -> None:
    # an MLP's chain: the first layer returns (M, N) as the transpose of a C-contiguous
    # array when M is a multiple of 8, which the second reads without a transpose
    w1, b1 = _layer(37, 53, 0.9)
    w1[:, ::4] = 0.0  # output features with no weights: only the bias
    w2, b2 = _layer(53, 29, 0.9, seed=2)
    f1 = sparse_linear(w1, b1, act, transposed_out=True)
    f2 = sparse_linear(w2, b2, None)
    x = _x(m, 37)
    h = f1(x)
    assert h.shape == (m, 53)
    if m >= 3:  # the batched kernel (a (1, N) array is contiguous both ways)
        assert h.T.flags.c_contiguous == (m % 8 == 0)
    np.testing.assert_allclose(h, linear(x, w1, b1, act), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        f2(h), linear(linear(x, w1, b1, act), w2, b2, None), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("k", [4100, 1000])
def test_large_layer_parallel_path(k: int) -> None:
    # big enough to take the parallel kernels and several passes over batch columns (xT
    # columns per pass: 64 at K = 4100, 0-64, 64-128, 128-192; 128 at K = 1000, 0-128,
    # 128-192 - a last pass cut short; then the 8-wide rest)
    w, b = _layer(k, 300, 0.9)
    x = _x(200, k) * 0.25
    want = linear(x, w, b, None)
    np.testing.assert_allclose(sparse_linear(w, b, None)(x), want, rtol=1e-4, atol=2e-5)
    y = sparse_linear(w, b, None, transposed_out=True)(x)  # each pass writes out (N, M)
    assert y.T.flags.c_contiguous
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("copies", [1, 80], ids=["serial", "parallel"])
def test_b1_short_and_long_rows(m: int, copies: int) -> None:
    # csr_b1 runs a row of LONG_ROW nonzeros or more as one vectorized loop, a shorter one
    # with eight accumulators and a tail: counts on both sides of each bound; 80 copies of
    # the set take the parallel kernel
    rng = np.random.default_rng(7)
    counts = [0, 1, 7, 8, 9, 17, LONG_ROW - 1, LONG_ROW, LONG_ROW + 1, 300, 1000] * copies
    k = 1200
    w = np.zeros((k, len(counts)), np.float32)
    for j, c in enumerate(counts):
        w[rng.choice(k, c, replace=False), j] = rng.uniform(-0.5, 0.5, c)
    b = rng.uniform(-0.5, 0.5, len(counts)).astype(np.float32)
    assert (sum(counts) * m < SERIAL_MAX_WORK) == (copies == 1)
    f = sparse_linear(w, b, None)
    _check(f, _x(m, k), w, b, None)
    assert f.kind == "sparse-csr-b1"
    x = _x(m, k)
    long, other = counts.index(1000), counts.index(300)
    x[0, np.flatnonzero((w[:, long] != 0) & (w[:, other] == 0))[0]] = np.nan
    y = f(x)  # the NaN reaches the long row's output only
    assert np.isnan(y[0, long]) and not np.isnan(y[0, other])


def test_non_contiguous_and_float64_input() -> None:
    w, b = _layer(30, 20, 0.9)
    x = _x(40, 60)[:, ::2]
    _check(plan_linear(w, b), x, w, b, None)
    _check(plan_linear(w, b), x.astype(np.float64), w, b, None)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="2-D"):
        plan_linear(np.zeros(3, np.float32), None)
    with pytest.raises(ValueError, match="bias"):
        plan_linear(np.zeros((3, 4), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="unknown activation kind 'gelu'"):
        Activation("gelu")


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 80),
    k=st.integers(1, 150),
    n=st.integers(1, 90),
    sparsity=st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]),
    act=st.sampled_from(ACTS),
)
def test_random_shapes(m: int, k: int, n: int, sparsity: float, act: Activation | None) -> None:
    w, b = _layer(k, n, sparsity, seed=m * 1000 + k)
    _check(sparse_linear(w, b, act), _x(m, k), w, b, act)
    _check(plan_linear(w, b, activation=act), _x(m, k), w, b, act)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m", [1, 3, 64])
def test_dense_gemm_split_over_threads(threads: int, m: int) -> None:
    # 1500 x 1500: large enough to split - slices of K for few rows, rows for many
    w, b = _layer(1500, 1501, 0.0)
    x = _x(m, 1500) * 0.1
    try:
        set_threads(threads)
        np.testing.assert_allclose(
            plan_linear(w, b, activation=Activation("relu"))(x),
            linear(x, w, b, Activation("relu")),
            rtol=1e-4,
            atol=1e-5,
        )
    finally:
        set_threads(None)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(
    ("m", "k", "n"),
    [(64, 700, 1501), (5, 900, 1000), (130, 300, 97), (3000, 64, 40), (2000, 33, 2000)],
)
def test_matmul_into_splits(threads: int, m: int, k: int, n: int) -> None:
    # wide (N >= M: column blocks on 16-float boundaries, N odd) and tall (row blocks)
    from zoo.runtime.kernels._pool import matmul_into

    rng = np.random.default_rng(m + k + n)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    out = np.full((m, n), np.nan, np.float32)
    try:
        set_threads(threads)
        matmul_into(a, b, out)
    finally:
        set_threads(None)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_matmul_batched_matches_numpy(threads: int) -> None:
    from zoo.runtime.kernels import matmul_batched

    rng = np.random.default_rng(3)
    q = rng.uniform(-1, 1, (1, 128, 12, 64)).astype(np.float32).transpose(0, 2, 1, 3)
    kt = rng.uniform(-1, 1, (1, 128, 12, 64)).astype(np.float32).transpose(0, 2, 3, 1)
    cases = [
        (q, kt),  # attention: (1, 12, 128, 64) @ (1, 12, 64, 128), transposed views
        (rng.uniform(-1, 1, (3, 5, 37, 29)), rng.uniform(-1, 1, (3, 5, 29, 41))),
        (rng.uniform(-1, 1, (7, 129, 65)), rng.uniform(-1, 1, (7, 65, 130))),
        (rng.uniform(-1, 1, (2, 100, 80)), rng.uniform(-1, 1, (80, 90))),  # broadcast
        (rng.uniform(-1, 1, (1, 1, 200, 300)), rng.uniform(-1, 1, (1, 1, 300, 200))),
    ]
    try:
        set_threads(threads)
        for a, b in cases:
            a32, b32 = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
            got = matmul_batched(a32, b32)
            assert got.dtype == np.float32
            np.testing.assert_allclose(
                got, np.matmul(a32.astype(np.float64), b32), rtol=1e-4, atol=1e-4
            )
        a64 = rng.uniform(-1, 1, (4, 50, 60))
        b64 = rng.uniform(-1, 1, (4, 60, 70))
        assert matmul_batched(a64, b64).dtype == np.float64  # other dtypes: plain np.matmul
    finally:
        set_threads(None)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("act", ACTS, ids=lambda a: "none" if a is None else a.kind)
def test_dense_epilogue_on_row_and_column_blocks(threads: int, act: Activation | None) -> None:
    # bias + activation applied by each part of the split GEMM on its own block
    try:
        set_threads(threads)
        for m, k, n in [(2000, 64, 40), (64, 600, 1001)]:  # split by rows / by columns
            w, b = _layer(k, n, 0.0, seed=n)
            x = _x(m, k)
            f = plan_linear(w, b, activation=act)
            _check(f, x, w, b, act)
            _check(plan_linear(w, None, activation=act), x, w, None, act)
    finally:
        set_threads(None)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m", [0, 1, 2, 3, 8, 13, 64, 300])
def test_dense_packed_residual_activation_and_tail_panel(threads: int, m: int) -> None:
    # the packed kernel: 1-row and 8-row tiles (M padded to a multiple of 8), a last panel
    # of 37 - 32 = 5 features, the residual and the activation applied as tiles are written;
    # K x N large enough for the parallel path on 2 threads; 300 rows go in chunks of 64
    k, n = 2100, 1061
    w, b = _layer(k, n, 0.0, seed=m)
    x = _x(m, k) * 0.1
    r = np.random.default_rng(m).uniform(-1, 1, (m, n)).astype(np.float32)
    act = Activation("clip", -0.25, 0.5)
    try:
        set_threads(threads)
        f = dense_linear(w, b, act)
        assert f.kind == "dense-packed"
        got = f(x, r)
    finally:
        set_threads(None)
    want = np.clip(x.astype(np.float64) @ w + b + r, -0.25, 0.5)
    assert got.shape == (m, n) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="residual must have shape"):
        f(x, r[:, :-1])
    with pytest.raises(ValueError, match=r"linear input must be \(M, 2100\)"):
        f(x[:, :-1])


def test_linear_layers_share_one_transpose_buffer_per_thread() -> None:
    # every linear kernel that transposes its input (dense, and sparse at M >= 3) does it
    # into one per-thread work buffer: interleaved layers of different K overwrite it between
    # calls and must still be right, and the buffer is as large as the largest xT, not one
    # per layer (BERT-base at batch 64 kept 25 MB per layer)
    from zoo.runtime.kernels import _buffers

    layers = [
        (sparse_linear, *_layer(300, 96, 0.9, seed=1)),
        (dense_linear, *_layer(200, 40, 0.0, seed=2)),
        (sparse_linear, *_layer(37, 53, 0.85, seed=3)),
    ]
    kernels = [(make(w, b, None), w, b) for make, w, b in layers]
    _buffers._work.buf = None  # grown by earlier tests on this thread
    for m in (70, 13, 70):  # M padded to 72 and 16: padding columns hold the last layer's data
        for f, w, b in kernels:
            x = _x(m, w.shape[0], seed=m)
            _check(f, x, w, b, None)
    buf = _buffers._work.buf
    assert buf.size == 300 * 72  # the largest K x Mp of the three
    assert buf.ctypes.data % _buffers.ALIGN == 0
    assert _buffers.work_buffer(10).ctypes.data == buf.ctypes.data  # reused, not reallocated
