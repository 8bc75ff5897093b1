"""The MaxPool kernel against onnxruntime's MaxPool: pads, strides, dilations, ceil_mode."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from zoo.runtime import InferenceSession

ort = pytest.importorskip("onnxruntime")


def _model(shape: tuple[int, ...], **attrs: object) -> bytes:
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "maxpool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("shape", "attrs"),
    [
        ((1, 64, 112, 112), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((2, 3, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 3], "ceil_mode": 1}),
        ((1, 2, 10, 10), {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2, 0, 1, 2]}),
        ((1, 4, 5, 6), {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}),
        ((1, 4, 5, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
        ((3, 5, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 2]}),
        # 3-wide stride-2 windows (one pass over the outputs whose taps are all inside, the
        # border outputs tap by tap): no left pad, a left pad of 2, odd and even widths,
        # ceil_mode's extra output on the right
        ((1, 3, 6, 7), {"kernel_shape": [3, 3], "strides": [2, 2]}),
        ((1, 3, 6, 8), {"kernel_shape": [2, 3], "strides": [1, 2], "pads": [0, 2, 1, 2]}),
        ((2, 3, 9, 10), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
        ((1, 2, 4, 2), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ],
)
def test_maxpool_matches_onnxruntime(shape: tuple[int, ...], attrs: dict[str, object]) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::7] = -1e30  # a window of very negative inputs still returns them
    data = _model(shape, **attrs)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = InferenceSession(data).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("serial", [True, False])
def test_maxpool_nan_propagates_like_numpy_max(serial: bool) -> None:
    from numpy.lib.stride_tricks import sliding_window_view

    from zoo.runtime.kernels import maxpool2d

    c = 2 if serial else 64  # few outputs: the serial kernel; many: the parallel one
    x = np.random.default_rng(1).standard_normal((1, c, 40, 40)).astype(np.float32)
    x[0, :, 5, 7] = np.nan  # NaN in the middle of windows, before and after other taps
    x[0, :, 20, 0] = np.nan  # at the left border
    got = maxpool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), (20, 20))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(-2, -1))
    np.testing.assert_array_equal(got, want[:, :, :20, :20])
    assert np.isnan(got).sum() == np.isnan(want[:, :, :20, :20]).sum() > 0
