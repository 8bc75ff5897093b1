"""Which nodes carry weights, where their weight is, and what each one measures.

Per op: the input that holds the weight, the bias, and (for the integer ops) the weight's zero
point; the dimension the weight is reduced over (where SparseML's 4-blocks lie); and whether
pruning recipes prune it (embeddings are weighted but not pruned).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from onnx import NodeProto

from zoo.analysis.flops import Shapes, weight_uses
from zoo.analysis.report import LayerAnalysis
from zoo.analysis.weights import Quantization, Resolved, WeightResolver, bits_of, broadcast_along

__all__ = ["SPECS", "OpSpec", "analyze_node", "block4"]

_CONV = ("Conv", "QLinearConv", "ConvInteger")
_MATMUL = ("MatMul", "QLinearMatMul", "MatMulInteger")


@dataclass(frozen=True)
class OpSpec:
    """Where a weighted op keeps its weight (first constant of ``weights``), bias, zero point."""

    weights: tuple[int, ...]
    bias: int | None = None
    zero_point: int | None = None
    scale: int | None = None
    prunable: bool = True


SPECS: dict[str, OpSpec] = {
    "Conv": OpSpec((1,), bias=2),
    "ConvTranspose": OpSpec((1,), bias=2),
    "Gemm": OpSpec((1,), bias=2),
    "MatMul": OpSpec((1, 0)),  # x @ W, or W @ x
    "QLinearConv": OpSpec((3,), bias=8, zero_point=5, scale=4),
    "QLinearMatMul": OpSpec((3,), zero_point=5, scale=4),
    "ConvInteger": OpSpec((1,), zero_point=3),
    "MatMulInteger": OpSpec((1,), zero_point=3),
    "Gather": OpSpec((0,), prunable=False),  # an embedding table, indexed by token ids
}


def reduction_axis(node: NodeProto, index: int, ndim: int) -> int:
    """The weight dimension summed over (input channels / K); 4-blocks run along it.

    Conv (M, C/g, *k) -> 1; ConvTranspose (C, M/g, *k) -> 0; Gemm B (K, N) -> 0, or 1 with
    transB (N, K); MatMul B (..., K, N) -> -2, A (..., M, K) -> -1; embedding (V, H) -> H.
    """
    op = node.op_type
    if op in _CONV:
        return 1
    if op == "ConvTranspose":
        return 0
    if op == "Gemm":
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        return 1 if trans_b else 0
    if op == "Gather":
        return ndim - 1
    return ndim - 1 if index == 0 else ndim - 2


def block4(zero: npt.NDArray[np.bool_], axis: int) -> tuple[int, int]:
    """(blocks, all-zero blocks) of 4 consecutive weights along ``axis``.

    As SparseML's FourBlockMaskCreator: the axis moves last, is padded to a multiple of 4, and
    the rest is cut into rows of 4. A padded block is all-zero when its real weights are.

    >>> block4(np.array([[True, True, True, True, False, True]]), axis=1)
    (2, 1)
    """
    moved = np.moveaxis(zero, axis, -1)
    pad = -moved.shape[-1] % 4
    if pad:
        filler = np.ones((*moved.shape[:-1], pad), dtype=bool)
        moved = np.concatenate([moved, filler], axis=-1)
    blocks = moved.reshape(-1, 4).all(axis=1)  # (n_blocks,)
    return int(blocks.size), int(np.count_nonzero(blocks))


def _weight(node: NodeProto, spec: OpSpec, resolver: WeightResolver) -> tuple[int, Resolved] | None:
    for index in spec.weights:
        if len(node.input) <= index:
            continue
        found = resolver.resolve(node.input[index])
        if found is not None:
            return index, found
    return None


def _op_quantization(
    node: NodeProto, spec: OpSpec, weight: Resolved, axis: int, resolver: WeightResolver
) -> tuple[npt.NDArray[np.bool_], Quantization]:
    """Zero mask and storage of a weight quantized by the op itself (QLinear*, *Integer)."""
    zp = scale = None
    if spec.zero_point is not None and len(node.input) > spec.zero_point:
        zp = resolver.array(node.input[spec.zero_point])
    if spec.scale is not None and len(node.input) > spec.scale:
        scale = resolver.array(node.input[spec.scale])
    values = weight.values
    zero = values == 0 if zp is None else values == broadcast_along(zp, values.shape, axis)
    channels = max(scale.size if scale is not None else 1, zp.size if zp is not None else 1)
    quant = Quantization(weight.dtype, bits_of(weight.dtype), per_channel=channels > 1)
    return np.asarray(zero), quant


def analyze_node(node: NodeProto, resolver: WeightResolver, shapes: Shapes) -> LayerAnalysis | None:
    """The layer a node is, or None when it has no constant weight of rank >= 2."""
    spec = SPECS.get(node.op_type)
    if spec is None:
        return None
    found = _weight(node, spec, resolver)
    if found is None:
        return None
    index, weight = found
    values = weight.values
    if values.ndim < 2:
        return None
    if node.op_type == "Gather":
        is_table = weight.quant is not None or np.issubdtype(values.dtype, np.floating)
        if not is_table or len(node.input) < 2 or resolver.is_constant(node.input[1]):
            return None  # a constant gather (shape arithmetic), not an embedding lookup
    zero, quant = weight.zero, weight.quant
    if spec.zero_point is not None:
        # Per-channel zero points: per output channel for convs, per column (N) for matmuls.
        channel_axis = 0 if node.op_type in _CONV else values.ndim - 1
        zero, quant = _op_quantization(node, spec, weight, channel_axis, resolver)
    params = int(values.size)
    zeros = int(np.count_nonzero(zero))
    blocks, zero_blocks = block4(zero, reduction_axis(node, index, values.ndim))
    bias_params = 0
    if spec.bias is not None and len(node.input) > spec.bias:
        bias = resolver.resolve(node.input[spec.bias])
        bias_params = 0 if bias is None else int(bias.values.size)
    uses = weight_uses(node, tuple(values.shape), index, shapes)
    return LayerAnalysis(
        node=node.name or node.output[0],
        op_type=node.op_type,
        weight=weight.source,
        shape=tuple(int(d) for d in values.shape),
        params=params,
        zeros=zeros,
        blocks=blocks,
        zero_blocks=zero_blocks,
        bias_params=bias_params,
        dtype=weight.dtype,
        bits=quant.bits if quant else bits_of(weight.dtype),
        quantized=quant is not None,
        per_channel=quant.per_channel if quant else False,
        prunable=spec.prunable,
        dense_flops=None if uses is None else 2 * uses * params,
        sparse_flops=None if uses is None else 2 * uses * (params - zeros),
    )


def is_unmeasured(node: NodeProto, resolver: WeightResolver) -> bool:
    """A weighted node whose weight is stored as external data that was not loaded."""
    spec = SPECS.get(node.op_type)
    if spec is None:
        return False
    return any(i < len(node.input) and node.input[i] in resolver.unreadable for i in spec.weights)
