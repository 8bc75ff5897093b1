"""Measure the sparsity a model's weights really have (the claim in a stub is not evidence)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto, numpy_helper

__all__ = ["LayerSparsity", "ModelSparsity", "measure_sparsity"]

# Weighted ops and the input index that holds their weight.
WEIGHT_INPUT = {
    "Conv": 1,
    "ConvTranspose": 1,
    "Gemm": 1,
    "MatMul": 1,
    "QLinearConv": 3,
    "QLinearMatMul": 3,
    "ConvInteger": 1,
    "MatMulInteger": 1,
    "Gather": 0,
}
QUANT_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
}


@dataclass(frozen=True, slots=True)
class LayerSparsity:
    """One weighted node: its weight tensor's size, zeros and storage dtype."""

    node: str
    op_type: str
    weight: str
    params: int
    zeros: int
    dtype: str

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


@dataclass(frozen=True, slots=True)
class ModelSparsity:
    """The weighted layers of a model and their totals."""

    layers: list[LayerSparsity] = field(default_factory=list)
    quantized: bool = False

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def zeros(self) -> int:
        return sum(layer.zeros for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """Fraction of weights that are zero over all weighted layers (0 when there are none)."""
        return self.zeros / self.params if self.params else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
            "quantized": self.quantized,
            "layers": [asdict(layer) | {"sparsity": layer.sparsity} for layer in self.layers],
        }


def _constants(model: ModelProto) -> dict[str, np.ndarray]:
    consts = {t.name: t for t in model.graph.initializer if not t.external_data}
    out: dict[str, np.ndarray] = {n: numpy_helper.to_array(t) for n, t in consts.items()}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
    return out


def measure_sparsity(model: ModelProto) -> ModelSparsity:
    """Zeros per weighted node, looking through DequantizeLinear to the stored integer weight.

    A quantized weight counts as zero where it equals its zero point (that is what dequantizes
    to 0.0). Gather counts only when it indexes a constant table (an embedding).
    """
    consts = _constants(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    layers: list[LayerSparsity] = []
    for node in model.graph.node:
        idx = WEIGHT_INPUT.get(node.op_type)
        if idx is None or len(node.input) <= idx:
            continue
        name = node.input[idx]
        zero_point: np.ndarray | int = 0
        prod = producers.get(name)
        if prod is not None and prod.op_type == "DequantizeLinear" and prod.input[0] in consts:
            name = prod.input[0]
            if len(prod.input) > 2 and prod.input[2] in consts:
                zero_point = consts[prod.input[2]]
        if node.op_type in ("QLinearConv", "QLinearMatMul") and len(node.input) > 5:
            zero_point = consts.get(node.input[5], 0)
        weight = consts.get(name)
        if weight is None or weight.ndim < 2:
            continue
        zp = np.asarray(zero_point)
        if zp.ndim == 1 and weight.ndim >= 1 and zp.shape[0] == weight.shape[0]:
            zp = zp.reshape((-1,) + (1,) * (weight.ndim - 1))
        zeros = int(np.count_nonzero(weight == zp))
        layers.append(
            LayerSparsity(
                node.name or name, node.op_type, name, int(weight.size), zeros, str(weight.dtype)
            )
        )
    quantized = any(n.op_type in QUANT_OPS for n in model.graph.node)
    return ModelSparsity(layers, quantized)
