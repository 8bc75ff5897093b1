"""Conv kernels against onnxruntime on a single-Conv model: an independent oracle."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.kernels._reference import prune
from zoo.runtime.kernels import Activation, plan_conv2d

ort = pytest.importorskip("onnxruntime")


def _ort_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, **attrs: object) -> np.ndarray:
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"x": x})[0])


@pytest.mark.parametrize(
    ("xs", "ws", "strides", "pads", "dil", "group"),
    [
        ((2, 16, 14, 14), (32, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
        ((1, 3, 32, 32), (16, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),
        ((3, 32, 9, 9), (64, 32, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
        ((2, 12, 10, 11), (12, 1, 3, 3), (1, 2), (0, 1, 2, 1), (1, 1), 12),
        ((1, 8, 12, 12), (8, 4, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 2),
    ],
)
@pytest.mark.parametrize("sparsity", [0.0, 0.9])
def test_matches_onnxruntime(xs, ws, strides, pads, dil, group, sparsity: float) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs).astype(np.float32)
    w = prune(rng.standard_normal(ws).astype(np.float32), sparsity, rng)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    ref = _ort_conv(
        x,
        w,
        b,
        strides=list(strides),
        pads=[pads[0], pads[1], pads[2], pads[3]],
        dilations=list(dil),
        group=group,
    )
    for sparse in (True, False):
        f = plan_conv2d(w, b, strides=strides, pads=pads, dilations=dil, group=group, sparse=sparse)
        np.testing.assert_allclose(f(x), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("xs", "cout", "pads"),
    [
        ((1, 16, 14, 14), 24, (1, 1, 1, 1)),  # batch 1: channel blocks over all threads
        ((3, 5, 17, 12), 7, (0, 2, 1, 0)),  # odd output sizes, uneven pads, a batch
        ((2, 3, 15, 15), 4, (2, 2, 2, 2)),  # pads of 2
        ((1, 8, 9, 9), 8, (0, 0, 0, 0)),  # no padding, odd output
        ((1, 4, 6, 6), 4, (1, 1, 1, 1)),  # 6 rows of 8 positions: a 32-wide tile half garbage
    ],
)
@pytest.mark.parametrize("act", [None, "relu"])
@pytest.mark.parametrize("residual", [False, True])
def test_dense_3x3_matches_onnxruntime(xs, cout, pads, act, residual) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(xs) * 4).astype(np.float32)
    w = rng.standard_normal((cout, xs[1], 3, 3)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    ref = _ort_conv(x, w, b, pads=list(pads))
    r = rng.standard_normal(ref.shape).astype(np.float32) if residual else None
    if r is not None:
        ref = ref + r
    if act == "relu":
        ref = np.maximum(ref, 0)
    f = plan_conv2d(
        w,
        b,
        strides=(1, 1),
        pads=pads,
        dilations=(1, 1),
        group=1,
        activation=None if act is None else Activation(act),
        sparse=False,
    )
    assert f.kind == "dense-tiled-conv"
    for _ in range(2):  # the second call reuses the work buffers
        got = f(x, r)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
