"""``analyze_model``: measure every weighted layer of an ONNX model and sum them up."""

from __future__ import annotations

import math
import os

from onnx import ModelProto, TensorProto

from zoo.analysis.flops import infer_shapes
from zoo.analysis.layers import SPECS, analyze_node, is_unmeasured
from zoo.analysis.load import load_model_safely
from zoo.analysis.report import LayerAnalysis, ModelAnalysis
from zoo.analysis.weights import WeightResolver

__all__ = ["QUANT_OPS", "analyze_model"]

# Any of these in a graph makes the model "quantized" (activations count, not only weights).
QUANT_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulInteger",
        "ConvInteger",
    }
)
# Inputs that hold scales and zero points: quantization parameters, not model parameters.
_QUANT_PARAMS = {
    "QuantizeLinear": (1, 2),
    "DequantizeLinear": (1, 2),
    "QLinearConv": (1, 2, 4, 5, 6, 7),
    "QLinearMatMul": (1, 2, 4, 5, 6, 7),
    "ConvInteger": (2, 3),
    "MatMulInteger": (2, 3),
}
_FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


def analyze_model(
    model: ModelProto | str | os.PathLike[str], *, file_size: int | None = None
) -> ModelAnalysis:
    """Measure a model: per weighted layer params, zeros, 4-blocks, quantization and FLOPs.

    ``model`` is a ModelProto or the path of an .onnx file or model folder; a path is loaded
    with its external data, read only from inside its folder (else :class:`AnalysisError`).
    A ModelProto whose external data is not loaded is analysed without those weights (listed
    in ``unmeasured``). ``file_size`` overrides the size reported for a ModelProto.

    >>> from zoo.analysis import analyze_model
    >>> a = analyze_model("resnet50-pruned95/model.onnx")  # doctest: +SKIP
    >>> round(a.sparsity, 2), a.quantized, a.dense_flops  # doctest: +SKIP
    (0.95, False, 8178589696)
    """
    if isinstance(model, ModelProto):
        proto, size = model, model.ByteSize() if file_size is None else file_size
    else:
        loaded = load_model_safely(model)
        proto, size = loaded.model, loaded.file_size if file_size is None else file_size
    resolver = WeightResolver(proto)
    has_weighted = any(node.op_type in SPECS for node in proto.graph.node)
    shapes = infer_shapes(proto) if has_weighted else {}
    layers: list[LayerAnalysis] = []
    unmeasured: list[str] = []
    for node in proto.graph.node:
        layer = analyze_node(node, resolver, shapes)
        if layer is not None:
            layers.append(layer)
        elif is_unmeasured(node, resolver):
            unmeasured.append(node.name or node.output[0])
    quantized = any(layer.quantized for layer in layers) or any(
        node.op_type in QUANT_OPS for node in proto.graph.node
    )
    return ModelAnalysis(layers, _total_params(proto, resolver), size, quantized, unmeasured)


def _total_params(model: ModelProto, resolver: WeightResolver) -> int:
    """Elements of every stored parameter, each tensor once.

    Counted: floating-point constants, and integer ones that are weights or biases (what a
    DequantizeLinear or weighted op reads). Not counted: scales, zero points and integer shape
    or index constants.
    """
    quant_params: set[str] = set()
    weights: set[str] = set()
    for node in model.graph.node:
        for i in _QUANT_PARAMS.get(node.op_type, ()):
            if i < len(node.input):
                quant_params.add(node.input[i])
        if node.op_type == "DequantizeLinear" and node.input:
            weights.add(node.input[0])
        spec = SPECS.get(node.op_type)
        if spec is not None:
            for i in (*spec.weights, *([spec.bias] if spec.bias is not None else [])):
                if i < len(node.input):
                    weights.add(node.input[i])
    total = 0
    for name, tensor in resolver.tensors.items():
        if name in quant_params:
            continue
        if name in weights or tensor.data_type in _FLOATS:
            total += math.prod(tensor.dims)
    return total
