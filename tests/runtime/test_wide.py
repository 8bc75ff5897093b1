"""Conv outputs left uncropped (``kernels.Wide``) between convs, checked against onnxruntime.

The chain below has every way a Wide is read: a 1x1 conv computing on it in place, a fused
residual, a padded and strided conv copying from it, MaxPool and GlobalAveragePool reading
it, a non-conv op (Sigmoid) and a graph output getting the cropped array. A second chain
has a conv written inside the zero frame of its reader's padding, which reads it as its
padded input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import ModelProto, TensorProto, helper, numpy_helper

from zoo.runtime import InferenceSession
from zoo.runtime.kernels import Wide, _direct_conv, plane_means
from zoo.runtime.kernels._wide import residual_args
from zoo.runtime.ops import pool as pool_ops

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(11)


def _weight(shape: tuple[int, ...], sparsity: float) -> np.ndarray:
    w = (RNG.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    w[RNG.random(shape) < sparsity] = 0
    return w


def _chain(sparsity: tuple[float, float, float, float], hw: tuple[int, int]) -> ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["a0"], pads=[1, 1, 1, 1], name="c1"),
        helper.make_node("Relu", ["a0"], ["a"]),
        helper.make_node("Conv", ["a", "w2"], ["b"], name="c2"),  # 1x1 on a Wide, in place
        helper.make_node("Conv", ["b", "w3"], ["c0"], name="c3"),
        helper.make_node("Add", ["c0", "a"], ["c1s"]),  # residual: a Wide
        helper.make_node("Relu", ["c1s"], ["c"]),
        helper.make_node("Conv", ["c", "w4"], ["d"], pads=[1, 1, 1, 1], strides=[2, 2], name="c4"),
        helper.make_node(
            "MaxPool", ["a"], ["e"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4
        ),
        helper.make_node("Sigmoid", ["b"], ["f"]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),  # reads a Wide's pixels
    ]
    inits = {
        "w1": _weight((24, 16, 3, 3), sparsity[0]),
        "b1": RNG.standard_normal(24).astype(np.float32),
        "w2": _weight((24, 24, 1, 1), sparsity[1]),
        "w3": _weight((24, 24, 1, 1), sparsity[2]),
        "w4": _weight((16, 24, 3, 3), sparsity[3]),
    }
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16, *hw])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "cdefg"],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# per conv: all dense, all sparse, and a sparse 3x3 conv's Wide read by dense 1x1 convs
@pytest.mark.parametrize(
    "sparsity", [(0.0,) * 4, (0.9,) * 4, (0.9, 0.0, 0.0, 0.9)], ids=["dense", "sparse", "mixed"]
)
@pytest.mark.parametrize("hw", [(13, 11), (7, 7)])
@pytest.mark.parametrize("batch", [1, 3])
def test_convs_pass_uncropped_outputs_and_match_onnxruntime(
    sparsity: tuple[float, float, float, float],
    hw: tuple[int, int],
    batch: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _chain(sparsity, hw)
    sess = InferenceSession(model, threads=2)
    means: list[Wide] = []

    def spy(x: Wide) -> np.ndarray:
        means.append(x)
        return plane_means(x)

    monkeypatch.setattr(pool_ops, "plane_means", spy)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    seen: dict[str, Any] = {}
    x1 = RNG.standard_normal((batch, 16, *hw)).astype(np.float32)
    got1 = sess.run(None, {"x": x1}, on_step=lambda i, v: seen.update(v))
    for g, r in zip(got1, ref.run(None, {"x": x1}), strict=True):
        assert type(g) is np.ndarray and g.flags.c_contiguous
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    if batch == 1:
        # the 3x3 conv's output keeps its garbage columns (rows of W + 2 padding); the 1x1
        # conv computes on them in place, so its output has the same row stride (the dense
        # 1x1 too on the sparse conv's rows: 13 x 13 positions, which it rounds up to 192)
        a, b = seen["a"], seen["b"]
        assert isinstance(a, Wide) and isinstance(b, Wide)
        assert a.shape == b.shape == (1, 24, *hw)
        assert (a.wq, b.wq) == (hw[1] + 2, hw[1] + 2)
        assert means and means[0].wq == hw[1] + 2  # GlobalAveragePool read a's rows as they are
    # outputs are copies: the next run, which rewrites the kernels' buffers, leaves them be
    kept = [g.copy() for g in got1]
    x2 = RNG.standard_normal(x1.shape).astype(np.float32)
    got2 = sess.run(None, {"x": x2})
    for g, k in zip(got1, kept, strict=True):
        np.testing.assert_array_equal(g, k)
    for g, r in zip(got2, ref.run(None, {"x": x2}), strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


def test_wide_crops_to_a_new_array_and_checks_residual_shapes() -> None:
    flat = np.arange(2 * 3 * 16, dtype=np.float32).reshape(2, 3, 16)
    wide = Wide(flat, ho=3, wq=5, wo=4)
    want = flat[:, :, :15].reshape(2, 3, 3, 5)[..., :4]
    got = np.asarray(wide)
    np.testing.assert_array_equal(got, want)
    assert got.flags.c_contiguous and not np.shares_memory(got, flat)
    res, rg = residual_args(wide, (2, 3, 3, 4), np.zeros((0, 1, 1), np.float32))
    assert res is flat and rg.tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match=r"residual must have shape \(2, 3, 3, 5\)"):
        residual_args(wide, (2, 3, 3, 5), np.zeros((0, 1, 1), np.float32))
    with pytest.raises(ValueError, match="not a wide conv layout"):
        Wide(flat, ho=4, wq=5, wo=4)  # 4 rows of 5 do not fit in a plane of 16


def test_plane_means_skip_the_garbage_and_read_from_the_offset() -> None:
    # garbage columns and positions past the pixels hold inf and NaN: left out, not
    # multiplied by zero (which would give NaN)
    buf = np.full(2 * 3 * 24 + 8, np.inf, np.float32)
    flat = buf[:144].reshape(2, 3, 24)
    flat[:, :, 20:] = np.nan
    wide = Wide(flat, ho=3, wq=5, wo=4, frame=(1, 1, 1, 0), buffer=buf)
    pixels = np.random.default_rng(3).standard_normal((2, 3, 3, 4)).astype(np.float32)
    wide.view()[...] = pixels
    np.testing.assert_allclose(plane_means(wide), pixels.mean(axis=(2, 3)), rtol=1e-6, atol=1e-6)
    wide.view()[1, 2, 0, 3] = np.inf  # a pixel that is inf gives inf, one NaN gives NaN
    wide.view()[0, 1, 2, 0] = np.nan
    got = plane_means(wide)
    assert got[1, 2] == np.inf and np.isnan(got[0, 1])
    assert np.isfinite(np.delete(got.reshape(-1), [1, 5])).all()


def _framed_chain(sparsity: float, hw: tuple[int, int], pads: list[int]) -> ModelProto:
    # c1 pads its left by 2 and right by 1, so its rows are W + 3 wide and its output is
    # W + 1 wide; c2 (1x1, relu) computes in place on those rows; c3 pads by ``pads``
    # (left + right = 2: its padded width is W + 3 too), so c2 writes inside c3's zero
    # frame and c3 reads that as its padded input; c4 (1x1) reads c3's Wide in place
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 2, 1, 1], name="c1"),
        helper.make_node("Conv", ["a", "w2", "b2"], ["b0"], name="c2"),
        helper.make_node("Relu", ["b0"], ["b"]),
        helper.make_node("Conv", ["b", "w3", "b3"], ["c"], pads=pads, name="c3"),
        helper.make_node("Conv", ["c", "w4"], ["d"], name="c4"),
    ]
    inits = {
        "w1": _weight((16, 8, 3, 3), sparsity),
        "w2": _weight((24, 16, 1, 1), sparsity),
        # a bias, so that anything but zeros in the frame would show in c3's border pixels
        "b2": RNG.standard_normal(24).astype(np.float32),
        "w3": _weight((24, 24, 3, 3), sparsity),
        "b3": RNG.standard_normal(24).astype(np.float32),
        "w4": _weight((8, 24, 1, 1), sparsity),
    }
    graph = helper.make_graph(
        nodes,
        "framed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, *hw])],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("sparsity", [0.0, 0.9], ids=["dense", "sparse"])
@pytest.mark.parametrize("hw", [(13, 11), (7, 7)])
@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 2, 2, 0], [2, 0, 1, 2]])
@pytest.mark.parametrize("batch", [1, 3])
def test_conv_written_inside_its_readers_zero_frame(
    sparsity: float,
    hw: tuple[int, int],
    pads: list[int],
    batch: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _framed_chain(sparsity, hw, pads)
    sess = InferenceSession(model, threads=2)
    assert any("zero frame: c2 -> c3" in f for f in sess.plan.fusions)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    copies = []
    prepare = _direct_conv.DirectConv.prepare

    def counted(self: Any, x: np.ndarray, lay: Any, parts: int = 1) -> np.ndarray:
        copies.append(self.geo.pads)
        return prepare(self, x, lay, parts)

    monkeypatch.setattr(_direct_conv.DirectConv, "prepare", counted)
    seen: dict[str, Any] = {}
    for _ in range(2):  # the second run finds the frame as the first one left it
        x = RNG.standard_normal((batch, 8, *hw)).astype(np.float32)
        seen.clear()
        copies.clear()
        (got,) = sess.run(None, {"x": x}, on_step=lambda i, v: seen.update(v))
        np.testing.assert_allclose(got, ref.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
        if batch == 1:
            b = seen["b"]
            assert isinstance(b, Wide) and b.frame == tuple(pads)
            assert b.wq == hw[1] + 3 and b.offset == pads[0] * b.wq + pads[1]
            assert copies == [(1, 2, 1, 1)]  # only c1 copies its input into a padded layout
        else:  # one image at a time through the plain layouts
            assert (1, 2, 1, 1) in copies and tuple(pads) in copies


def test_framed_wide_crops_from_its_offset() -> None:
    buf = np.arange(2 * 24 + 8, dtype=np.float32)
    flat = buf[:48].reshape(1, 2, 24)
    wide = Wide(flat, ho=3, wq=5, wo=4, frame=(1, 1, 1, 0), buffer=buf)  # offset 1 * 5 + 1
    want = flat[:, :, 6:21].reshape(1, 2, 3, 5)[..., :4]
    np.testing.assert_array_equal(np.asarray(wide), want)
    # a residual read from a framed Wide is its cropped copy (the kernels take no offset)
    res, rg = residual_args(wide, (1, 2, 3, 4), np.zeros((0, 1, 1), np.float32))
    np.testing.assert_array_equal(res.reshape(1, 2, 3, 4), want)
    assert rg.tolist() == [3, 4, 4]
    with pytest.raises(ValueError, match="not a wide conv layout"):
        Wide(flat, ho=4, wq=5, wo=4, frame=(1, 1, 1, 0))  # 4 rows of 5 from 6 do not fit in 24
