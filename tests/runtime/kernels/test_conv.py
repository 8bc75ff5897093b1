"""Conv kernels against a float64 numpy reference and against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.kernels._reference import activate, conv2d, prune
from zoo.runtime.kernels import Activation, plan_conv2d, set_threads
from zoo.runtime.kernels._dense import dense_conv
from zoo.runtime.kernels._dense_direct import dense_direct_conv
from zoo.runtime.kernels._direct_conv import DirectConv, direct_conv
from zoo.runtime.kernels._types import ConvGeometry

# (x shape, weight shape, strides, pads (t, l, b, r), dilations, group)
CASES = [
    ((1, 3, 9, 9), (4, 3, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1, H*W not % 8
    ((2, 16, 8, 8), (32, 16, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1, no copy path
    ((2, 16, 7, 9), (24, 16, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),  # 1x1 stride 2
    ((3, 5, 11, 13), (7, 5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # 3x3
    ((2, 5, 9, 11), (7, 5, 3, 3), (1, 1), (1, 0, 2, 1), (1, 1), 1),  # asymmetric pads
    ((2, 6, 14, 15), (9, 6, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),  # 3x3 stride 2
    ((1, 4, 13, 12), (5, 4, 3, 3), (2, 1), (0, 1, 1, 0), (2, 1), 1),  # mixed stride, dilation
    ((2, 3, 12, 12), (5, 3, 3, 2), (1, 2), (2, 2, 2, 2), (2, 3), 1),  # dilations, kW != kH
    ((1, 3, 30, 29), (8, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),  # 7x7 stride 2 (stem)
    ((2, 8, 10, 10), (12, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),  # grouped
    ((2, 8, 10, 10), (8, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),  # depthwise
    ((3, 6, 11, 9), (12, 1, 3, 3), (2, 2), (1, 0, 1, 2), (1, 1), 6),  # depthwise x2, stride 2
    ((1, 2, 3, 3), (3, 2, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1 output
    ((1, 4, 5, 5), (3, 4, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),  # kernel = input size
    ((65, 3, 4, 5), (5, 3, 2, 2), (1, 1), (0, 0, 1, 1), (1, 1), 1),  # batch not % tiles
]
ACTS = [None, Activation("relu"), Activation("clip", 0.0, 0.3), Activation("leaky_relu", 0.2)]


def _case(case, sparsity: float, seed: int = 0):  # type: ignore[no-untyped-def]
    xs, ws, strides, pads, dil, group = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, xs).astype(np.float32)
    w = prune(rng.uniform(-0.5, 0.5, ws).astype(np.float32), sparsity, rng)
    b = rng.uniform(-0.5, 0.5, ws[0]).astype(np.float32)
    return x, w, b, dict(strides=strides, pads=pads, dilations=dil, group=group)


def _geo(w: np.ndarray, kw: dict) -> ConvGeometry:  # type: ignore[type-arg]
    return ConvGeometry(w.shape[2:], kw["strides"], kw["pads"], kw["dilations"], kw["group"])


def _check(y: np.ndarray, x, w, b, kw, act=None) -> None:  # type: ignore[no-untyped-def]
    ref = conv2d(x, w, b, act=act, **kw)
    assert y.dtype == np.float32 and y.shape == ref.shape and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
@pytest.mark.parametrize("sparsity", [0.0, 0.9])
def test_all_kernels_match_reference(case, sparsity: float) -> None:  # type: ignore[no-untyped-def]
    x, w, b, kw = _case(case, sparsity)
    geo = _geo(w, kw)
    _check(direct_conv(w, b, geo, None)(x), x, w, b, kw)
    _check(direct_conv(w, b, geo, None, keep_zeros=True)(x), x, w, b, kw)
    _check(dense_conv(w, b, geo, None)(x), x, w, b, kw)
    if geo.group == 1:
        _check(dense_direct_conv(w, b, geo, None)(x), x, w, b, kw)
    f = plan_conv2d(w, b, **kw)
    _check(f(x), x, w, b, kw)
    _check(f(x), x, w, b, kw)  # second call: reused work buffers


@pytest.mark.parametrize("act", ACTS, ids=lambda a: "none" if a is None else a.kind)
@pytest.mark.parametrize("sparse", [True, False])
def test_activation_fused(act: Activation | None, sparse: bool) -> None:
    x, w, b, kw = _case(CASES[5], 0.9)
    f = plan_conv2d(w, b, activation=act, sparse=sparse, **kw)
    _check(f(x), x, w, b, kw, act)


def test_kernel_choice() -> None:
    _, w, b, kw = _case(CASES[5], 0.0)  # 3x3 stride 2
    assert plan_conv2d(w, b, **kw).kind == "dense-tiled-conv"
    assert (
        plan_conv2d(prune(w, 0.95, np.random.default_rng(0)), b, **kw).kind == "sparse-direct-conv"
    )
    assert plan_conv2d(prune(w, 0.95, np.random.default_rng(0)), b, sparse=False, **kw).kind == (
        "dense-tiled-conv"
    )
    _, w, b, kw = _case(CASES[3], 0.0)  # 3x3 stride 1 (Winograd's until it was removed)
    assert plan_conv2d(w, b, **kw).kind == "dense-tiled-conv"
    _, w, b, kw = _case(CASES[10], 0.0)
    assert plan_conv2d(w, b, **kw).kind == "dense-direct-conv"
    _, w, b, kw = _case(CASES[9], 0.0)  # 4 groups of 3 channels: im2col + sgemm per group
    assert plan_conv2d(w, b, **kw).kind == "dense-im2col"


def test_zero_weights_and_empty_channels() -> None:
    x, w, b, kw = _case(CASES[3], 0.9)
    w[::2] = 0.0  # output channels with no weights: only the bias
    _check(plan_conv2d(w, b, **kw)(x), x, w, b, kw)
    zero = np.zeros_like(w)
    _check(plan_conv2d(zero, b, **kw)(x), x, zero, b, kw)
    _check(plan_conv2d(zero, None, **kw)(x), x, zero, None, kw)


def test_input_size_change_and_fresh_outputs() -> None:
    x, w, b, kw = _case(CASES[5], 0.9)
    for sparse in (True, False):
        f = plan_conv2d(w, b, sparse=sparse, **kw)
        y1 = f(x)
        x2 = x[:1, :, :9, :10].copy()
        _check(f(x2), x2, w, b, kw)
        y3 = f(x)
        assert not np.shares_memory(y1, y3)
        np.testing.assert_array_equal(y1, y3)


def test_bad_arguments() -> None:
    w = np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="4-D"):
        plan_conv2d(w[0], None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1)
    with pytest.raises(ValueError, match="group 3"):
        plan_conv2d(w, None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=3)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    cg=st.integers(1, 5),
    og=st.integers(1, 6),
    group=st.sampled_from([1, 1, 2, 3]),
    hw=st.tuples(st.integers(3, 17), st.integers(3, 17)),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*[st.integers(0, 2)] * 4),
    sparsity=st.sampled_from([0.0, 0.7, 0.95]),
)
def test_random_geometry(n, cg, og, group, hw, k, strides, dil, pads, sparsity) -> None:  # type: ignore[no-untyped-def]
    ext = [(k[i] - 1) * dil[i] + 1 for i in range(2)]
    if hw[0] + pads[0] + pads[2] < ext[0] or hw[1] + pads[1] + pads[3] < ext[1]:
        return  # empty output: not a valid conv
    case = ((n, cg * group, *hw), (og * group, cg, *k), strides, pads, dil, group)
    x, w, b, kw = _case(case, sparsity)
    geo = _geo(w, kw)
    _check(direct_conv(w, b, geo, None)(x), x, w, b, kw)
    _check(dense_conv(w, b, geo, None)(x), x, w, b, kw)
    if group == 1:
        _check(dense_direct_conv(w, b, geo, None)(x), x, w, b, kw)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_dense_conv_split_over_threads(threads: int, n: int) -> None:
    # big enough that batch 1 splits its GEMM by output channels; batches split by image
    x, w, b, kw = _case(((n, 32, 32, 32), (64, 32, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1), 0.0)
    x1, w1, b1, kw1 = _case(((n, 64, 32, 32), (96, 64, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1), 0.0)
    try:
        set_threads(threads)
        _check(plan_conv2d(w, b, **kw)(x), x, w, b, kw)
        _check(plan_conv2d(w1, b1, **kw1)(x1), x1, w1, b1, kw1)
    finally:
        set_threads(None)


# big enough per image (nonzeros x positions >= SERIAL_MAX_WORK) for the one-image-per-worker
# batch path of the direct conv; 2x2 stride 2 also crops garbage columns
BATCH_PATH = [
    ((3, 32, 28, 28), (64, 32, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((4, 32, 20, 20), (48, 32, 2, 2), (2, 2), (0, 0, 1, 1), (1, 1), 1),
    ((3, 12, 20, 20), (13, 12, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),  # 13: not % 8 rows
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", BATCH_PATH, ids=range(len(BATCH_PATH)))
@pytest.mark.parametrize("act", [None, Activation("relu")], ids=["none", "relu"])
@pytest.mark.parametrize("sparse", [True, False])
def test_residual_then_activation(case, act, sparse: bool, threads: int) -> None:  # type: ignore[no-untyped-def]
    x, w, b, kw = _case(case, 0.7)
    f = plan_conv2d(w, b, activation=act, sparse=sparse, **kw)
    res = np.random.default_rng(1).uniform(-1, 1, f(x).shape).astype(np.float32)
    try:
        set_threads(threads)
        _check(f(x), x, w, b, kw, act)  # no residual: the activation as before
        want = conv2d(x, w, b, **kw) + res
        want = want if act is None else np.maximum(want, 0)
        np.testing.assert_allclose(f(x, res), want, rtol=1e-4, atol=1e-5)
    finally:
        set_threads(None)
    with pytest.raises(ValueError, match="residual"):
        f(x, res[:, :1])


# batch 1, large enough to run in parallel: residual and activation inside the sparse kernel
# (with garbage columns: stride 2, 7x7 on 28x28; without: 1x1) and in the dense GEMM's parts
BATCH1 = [
    ((1, 32, 28, 28), (64, 32, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    ((1, 64, 20, 20), (80, 64, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((1, 16, 28, 28), (48, 16, 7, 7), (1, 1), (3, 3, 3, 3), (1, 1), 1),
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", BATCH1, ids=range(len(BATCH1)))
@pytest.mark.parametrize("act", ACTS, ids=lambda a: "none" if a is None else a.kind)
@pytest.mark.parametrize("sparse", [True, False])
def test_residual_and_activation_batch1(case, act, threads: int, sparse: bool) -> None:  # type: ignore[no-untyped-def]
    x, w, b, kw = _case(case, 0.9 if sparse else 0.0)
    f = plan_conv2d(w, b, activation=act, **kw)
    assert (f.kind == "sparse-direct-conv") == sparse
    res = np.random.default_rng(2).uniform(-1, 1, f(x).shape).astype(np.float32)
    try:
        set_threads(threads)
        _check(f(x), x, w, b, kw, act)
        want = conv2d(x, w, b, **kw) + res
        np.testing.assert_allclose(f(x, res), activate(want, act), rtol=1e-4, atol=1e-5)
    finally:
        set_threads(None)


def test_direct_conv_work_buffers_are_cache_line_aligned() -> None:
    # the direct conv's padded input and cropped output start on a 64-byte boundary (numpy's
    # large arrays start 16 or 48 bytes past one): the kernel's 64-byte tile loads then do not
    # straddle two cache lines where the tap offsets are multiples of 16 floats
    from zoo.runtime.kernels._types import Scratch

    scratch = Scratch()
    for shape in [(1, 3), (1, 12345), (2, 64, 3249), (4, 1 << 18)]:
        buf = scratch.get("x", shape)
        assert buf.shape == shape and buf.dtype == np.float32 and buf.flags.c_contiguous
        assert buf.ctypes.data % 64 == 0 and not buf.any()
        buf[...] = 1.0
        assert scratch.get("x", shape) is buf  # reused while the shape stays
    # and the conv through them still matches the reference (padded, stride 2 phases, crop)
    x, w, b, kw = _case(((1, 32, 28, 28), (64, 32, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1), 0.9)
    f = plan_conv2d(w, b, **kw)
    _check(f(x), x, w, b, kw)
    _check(f(x), x, w, b, kw)


@pytest.mark.parametrize(
    "case",
    [
        ((1, 40, 14, 14), (24, 40, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # ResNet's 14x14 1x1
        ((3, 20, 7, 7), (16, 20, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 7x7, a batch
        ((2, 12, 13, 11), (8, 12, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),  # four phases
    ],
)
def test_each_input_channel_plane_starts_on_a_cache_line(case) -> None:  # type: ignore[no-untyped-def]
    # a 1x1 conv on a 14x14 map read channel ci at ci * 196 floats, so three in four of its
    # 64-byte tile loads straddled two cache lines; the planes are rounded up to 16 floats
    x, w, b, kw = _case(case, 0.9)
    k = w.shape[2:]
    dc = DirectConv(w, _geo(w, kw), keep_zeros=False)
    lay = dc.layout(*x.shape[1:])
    assert lay.plane % 16 == 0 and lay.hq * lay.wq <= lay.plane < lay.hq * lay.wq + 16
    if k == (1, 1):
        assert lay.plane > x.shape[2] * x.shape[3]  # these sizes are not multiples of 16
        assert (lay.offs % 16 == 0).all()  # every tap's first load is aligned
        assert dc.prepare(x, lay).ctypes.data % 64 == 0
    f = plan_conv2d(w, b, **kw)
    _check(f(x), x, w, b, kw)
    _check(f(x), x, w, b, kw)  # the padding between planes stays zero between calls


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("sparsity", "stride", "k", "kind"),
    [
        (0.9, 1, 3, "sparse-direct-conv"),
        (0.0, 1, 3, "dense-tiled-conv"),
        (0.0, 2, 3, "dense-tiled-conv"),
        (0.0, 1, 1, "dense-tiled-conv"),
    ],
)
def test_a_batch_of_zero_images(
    threads: int, sparsity: float, stride: int, k: int, kind: str
) -> None:
    # (onnxruntime answers an empty batch with an empty output; the batch path's thread pool
    # raised IndexError on 2 threads)
    rng = np.random.default_rng(0)
    w = prune(rng.standard_normal((32, 16, k, k)).astype(np.float32), sparsity, rng)
    p = k // 2
    try:
        set_threads(threads)
        kern = plan_conv2d(
            w, None, strides=(stride, stride), pads=(p,) * 4, dilations=(1, 1), group=1
        )
        y = kern(np.zeros((0, 16, 20, 20), np.float32))
    finally:
        set_threads(None)
    assert kern.kind == kind
    assert y.shape == (0, 32, 20 // stride, 20 // stride) and y.dtype == np.float32


def test_dense_tiled_conv_takes_one_group_and_its_channels() -> None:
    x, w, b, kw = _case(CASES[9], 0.0)  # grouped
    with pytest.raises(ValueError, match="one group, got 4"):
        dense_direct_conv(w, b, _geo(w, kw), None)
    x, w, b, kw = _case(CASES[3], 0.0)
    f = dense_direct_conv(w, b, _geo(w, kw), None)
    with pytest.raises(ValueError, match="has 4 channels, the weight expects 5"):
        f(x[:, :4])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(
    ("xs", "ws", "strides", "pads"),
    [
        ((1, 300, 9, 11), (37, 300, 3, 3), (1, 1), (1, 1, 1, 1)),
        ((3, 260, 7, 7), (29, 260, 1, 1), (1, 1), (0, 0, 0, 0)),  # images split over tasks
        ((2, 200, 12, 13), (19, 200, 3, 3), (2, 2), (1, 0, 1, 2)),  # stride phases
    ],
    ids=["3x3", "1x1 batch", "3x3 stride 2"],
)
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_input_channel_blocks(xs, ws, strides, pads, sparsity: float, threads: int) -> None:  # type: ignore[no-untyped-def]
    # enough input channels for several blocks (DirectConv._blocks), and rows with empty
    # segments: one with no nonzero at all (it gets the bias), one with none in the first
    # blocks (block 0 must still start it from the bias), one with none in the last ones
    set_threads(threads)
    try:
        rng = np.random.default_rng(int(sparsity * 100) + xs[1])
        x = rng.uniform(-1, 1, xs).astype(np.float32)
        w = prune(rng.uniform(-0.5, 0.5, ws).astype(np.float32), sparsity, rng)
        w[3] = 0
        w[5, : xs[1] // 2] = 0
        w[7, xs[1] // 3 :] = 0
        b = rng.uniform(-0.5, 0.5, ws[0]).astype(np.float32)
        kw = dict(strides=strides, pads=pads, dilations=(1, 1), group=1)
        geo = _geo(w, kw)
        lay = DirectConv(w, geo, False).layout(*xs[1:])
        assert lay.segptr.shape[0] > 1, "one block only: the test no longer covers blocks"
        for act in (None, Activation("relu")):
            _check(direct_conv(w, b, geo, act)(x), x, w, b, kw, act)
    finally:
        set_threads(None)
