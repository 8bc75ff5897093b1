"""Single ops across opsets 10-21 against onnxruntime, with constant weights where the
runtime takes its kernel path (the backend node tests feed weights as inputs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime._op_cases import CASES
from zoo.runtime import InferenceSession

ort = pytest.importorskip("onnxruntime")

_T = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.bool_): TensorProto.BOOL,
    np.dtype(np.int32): TensorProto.INT32,
}


def _build(
    op: str, opset: int, inputs: list[tuple[str, Any, bool]], attrs: dict[str, Any], n_out: int
) -> tuple[Any, dict[str, Any]]:
    feeds = {n: np.asarray(v) for n, v, fed in inputs if n and fed}
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v, fed in inputs if n and not fed]
    outs = [f"y{i}" for i in range(n_out)]
    graph = helper.make_graph(
        [helper.make_node(op, [n for n, _, _ in inputs], outs, name="node", **attrs)],
        "g",
        [helper.make_tensor_value_info(n, _T[v.dtype], v.shape) for n, v in feeds.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9 if opset < 21 else 10
    # onnxruntime wants typed outputs: let ONNX's shape inference fill them in.
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return inferred, feeds


@pytest.mark.parametrize(
    ("op", "opset", "inputs", "attrs", "n_out"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_op_matches_onnxruntime(
    op: str, opset: int, inputs: list[tuple[str, Any, bool]], attrs: dict[str, Any], n_out: int
) -> None:
    model, feeds = _build(op, opset, inputs, attrs, n_out)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    ).run(None, feeds)
    got = InferenceSession(model).run(None, feeds)
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == r.dtype, (g.dtype, r.dtype)
        assert g.shape == r.shape
        if r.dtype.kind in "iub":
            # Integer outputs (quantized ops): allow one unit for float rounding of the scale.
            np.testing.assert_allclose(g.astype(np.int64), r.astype(np.int64), atol=1)
        else:
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
