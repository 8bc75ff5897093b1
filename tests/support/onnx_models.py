"""Small real ONNX models for registry tests, built with onnx.helper."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_model(sparsity: float = 0.0, seed: int = 0, n_in: int = 16, n_out: int = 8) -> bytes:
    """One Gemm whose weight has exactly round(sparsity * size) zeros."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, (n_in, n_out)).astype(np.float32)
    zeros = round(w.size * sparsity)
    w.ravel()[rng.permutation(w.size)[:zeros]] = 0.0
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def quantized_linear_model(
    sparsity: float = 0.0, seed: int = 0, n_in: int = 16, n_out: int = 8
) -> bytes:
    """DequantizeLinear(int8 weight) -> MatMul; exactly round(sparsity * size) weights equal the
    zero point (what dequantizes to 0.0)."""
    rng = np.random.default_rng(seed)
    wq = rng.integers(1, 127, (n_in, n_out)).astype(np.int8)
    zeros = round(wq.size * sparsity)
    wq.ravel()[rng.permutation(wq.size)[:zeros]] = 0
    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["wq", "scale", "zp"], ["w"], name="dq"),
            helper.make_node("MatMul", ["x", "w"], ["y"], name="fc"),
        ],
        "quantized_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        [
            numpy_helper.from_array(wq, "wq"),
            numpy_helper.from_array(np.array(0.01, dtype=np.float32), "scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "zp"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
