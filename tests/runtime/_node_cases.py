"""Select the ONNX backend node tests this runtime is expected to pass, with skip reasons.

The cases come from ``onnx.backend.test`` (models + inputs + expected outputs written by the
ONNX project): an oracle no one here wrote.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import GraphProto, TensorProto

# The operators the runtime promises (the brief's list); tests using anything else are skipped.
REQUIRED_OPS = frozenset(
    [
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "Relu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Clip",
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Erf",
        "Softmax",
        "LogSoftmax",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Sqrt",
        "Exp",
        "Log",
        "Neg",
        "Abs",
        "Reciprocal",
        "Where",
        "Equal",
        "Less",
        "Greater",
        "Not",
        "And",
        "Or",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "Flatten",
        "Reshape",
        "Transpose",
        "Concat",
        "Split",
        "Slice",
        "Squeeze",
        "Unsqueeze",
        "Gather",
        "GatherElements",
        "Shape",
        "Size",
        "Cast",
        "Expand",
        "Tile",
        "Pad",
        "Resize",
        "ConstantOfShape",
        "Constant",
        "Range",
        "ReduceMean",
        "ReduceSum",
        "ReduceMax",
        "Identity",
        "Dropout",
        "TopK",
        "ArgMax",
        "Einsum",
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeLinear",
    ]
)

_NARROW_TYPES = {
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.FLOAT8E4M3FN: "float8",
    TensorProto.FLOAT8E4M3FNUZ: "float8",
    TensorProto.FLOAT8E5M2: "float8",
    TensorProto.FLOAT8E5M2FNUZ: "float8",
    TensorProto.INT4: "int4",
    TensorProto.UINT4: "uint4",
}
for _name in ("FLOAT4E2M1", "FLOAT8E8M0", "INT2", "UINT2"):
    if hasattr(TensorProto, _name):
        _NARROW_TYPES[getattr(TensorProto, _name)] = _name.lower()


@dataclass(frozen=True)
class NodeCase:
    """One backend test: the case itself and, when skipped, the grouped reason."""

    name: str
    case: Any
    skip: str | None


def _ops(graph: GraphProto) -> set[str]:
    ops = set()
    for node in graph.node:
        ops.add(
            node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        )
        for attr in node.attribute:
            if attr.HasField("g"):
                ops |= _ops(attr.g)
    return ops


def _elem_types(graph: GraphProto) -> set[int]:
    types = set()
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        if vi.type.HasField("tensor_type"):
            types.add(vi.type.tensor_type.elem_type)
    for init in graph.initializer:
        types.add(init.data_type)
    for node in graph.node:
        for attr in node.attribute:
            if attr.name in ("to", "output_dtype") and attr.i:
                types.add(attr.i)
            if attr.HasField("t"):
                types.add(attr.t.data_type)
    return types


# Known gaps, each with the reason it is out of scope (grouped by reason in the report).
KNOWN_GAPS: dict[str, str] = {
    "test_training_dropout": "Dropout in training mode is random; the runtime is inference-only",
}


def _skip_reason(case: Any, implemented: set[str]) -> str | None:
    graph = case.model.graph
    for vi in [*graph.input, *graph.output]:
        if not vi.type.HasField("tensor_type"):
            return "sequence/optional/map values are not tensors: out of scope"
    narrow = sorted({_NARROW_TYPES[t] for t in _elem_types(graph) if t in _NARROW_TYPES})
    if narrow:
        return (
            f"{'/'.join(narrow)} tensors are not supported by the runtime (numpy has no such dtype)"
        )
    ops = _ops(graph)
    outside = sorted(ops - REQUIRED_OPS - implemented)
    if outside:
        return "uses operators outside the runtime's op list"
    for prefix, reason in KNOWN_GAPS.items():
        if case.name.startswith(prefix):
            return reason
    return None


@functools.cache
def node_cases() -> tuple[NodeCase, ...]:
    """All backend node tests, sorted by name, each with its skip reason (None = run it)."""
    from onnx.backend.test.loader import load_model_tests

    from zoo.runtime.registry import available

    # Generating the cases runs onnx's own numpy code, which warns on inf/nan arithmetic.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    implemented = set(available())
    return tuple(
        NodeCase(c.name, c, _skip_reason(c, implemented))
        for c in sorted(cases, key=lambda c: c.name)
    )
