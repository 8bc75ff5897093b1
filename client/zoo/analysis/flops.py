"""Activation shapes (ONNX shape inference at batch 1) and the multiply-adds of weighted ops.

FLOP convention: one multiply-add is 2 FLOPs. Only the weight product is counted (the MACs of
Conv, ConvTranspose, Gemm, MatMul and their quantized forms); bias adds, activations and
weightless ops are not. Every weight element takes part in the same number of multiply-adds
(its "uses"), so the FLOPs left when zeros are skipped are ``2 * uses * nonzero_weights``.
"""

from __future__ import annotations

import math

import onnx
from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto, helper

__all__ = ["Shapes", "infer_shapes", "weight_uses"]

Shapes = dict[str, tuple[int, ...]]

# Initializers up to this many elements stay in the copy given to shape inference (shapes, axes,
# scales: data propagation needs their values); bigger ones become typed inputs, so inference
# never copies the weights of a large model.
_KEEP_ELEMENTS = 1024


def infer_shapes(model: ModelProto) -> Shapes:
    """Static shape of every value ONNX shape inference can work out, symbolic dims set to 1.

    Values whose shape stays unknown are left out; inference errors give an empty mapping (the
    FLOPs of such models are reported as unknown, the weights are still measured).
    """
    graph = model.graph
    small: list[TensorProto] = []
    big: list[TensorProto] = []
    for t in graph.initializer:
        external = t.data_location == TensorProto.EXTERNAL
        (big if external or math.prod(t.dims) > _KEEP_ELEMENTS else small).append(t)
    init_names = {t.name for t in graph.initializer}
    inputs = [_batch_one(vi) for vi in graph.input if vi.name not in init_names]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in big]
    stripped = helper.make_graph(
        list(graph.node), graph.name or "g", inputs, list(graph.output), small
    )
    copy = helper.make_model(stripped, opset_imports=list(model.opset_import))
    copy.ir_version = max(model.ir_version, 4)  # IR >= 4: initializers need not be inputs
    copy.functions.extend(model.functions)
    try:
        inferred = onnx.shape_inference.infer_shapes(copy, strict_mode=False, data_prop=True)
    except Exception:  # onnx raises InferenceError, ValidationError or RuntimeError here
        return {}
    shapes: Shapes = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        shape = _static(vi)
        if shape is not None:
            shapes[vi.name] = shape
    for t in graph.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
    return shapes


def _batch_one(vi: ValueInfoProto) -> ValueInfoProto:
    """A copy of a graph input with every symbolic or missing dim set to 1 (batch 1)."""
    out = ValueInfoProto()
    out.CopyFrom(vi)
    if out.type.HasField("tensor_type") and out.type.tensor_type.HasField("shape"):
        for dim in out.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.Clear()
                dim.dim_value = 1
    return out


def _static(vi: ValueInfoProto) -> tuple[int, ...] | None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = vi.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


def weight_uses(
    node: NodeProto, weight_shape: tuple[int, ...], weight_index: int, shapes: Shapes
) -> int | None:
    """How many multiply-adds each weight element takes part in (None if shapes are unknown).

    - Conv (M, C/g, *k) -> Y (N, M, *out): once per output position, ``N * prod(out)``.
    - ConvTranspose (C, M/g, *k), X (N, C, *in): once per input position, ``N * prod(in)``.
    - Gemm / MatMul: ``prod(Y) * K / weight.size`` (for a 2-D weight: the rows of Y).
    """
    op = node.op_type
    size = math.prod(weight_shape)
    if op == "Gather" or size == 0:
        return 0
    if op == "ConvTranspose":
        x = shapes.get(node.input[0])
        return None if x is None or len(x) < 2 else x[0] * math.prod(x[2:])
    y = shapes.get(node.output[0]) if node.output else None
    if y is None:
        return None
    if op in ("Conv", "QLinearConv", "ConvInteger"):
        return y[0] * math.prod(y[2:]) if len(y) >= 2 else None
    if op == "Gemm":
        return y[0] if len(y) == 2 else None
    # MatMul family: (..., M, K) @ (..., K, N) -> (..., M, N); K is the weight's reduction dim.
    is_b = weight_index != 0
    k = weight_shape[-2] if is_b and len(weight_shape) >= 2 else weight_shape[-1]
    macs = math.prod(y) * k
    return macs // size
