"""What an analysis found: one :class:`LayerAnalysis` per weighted node, a :class:`ModelAnalysis`
with the totals. Both serialize with ``to_dict()`` (the JSON of ``zoo analyze --json`` and the
``sparsity_profile`` the hub stores per file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LayerAnalysis", "ModelAnalysis"]


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class LayerAnalysis:
    """One weighted node: its weight's size, zeros, 4-blocks, storage and FLOPs.

    ``params`` counts the weight only (``bias_params`` the bias). ``dense_flops`` and
    ``sparse_flops`` are None when activation shapes could not be inferred.

    >>> layer.sparsity, layer.block4_sparsity  # doctest: +SKIP
    (0.9, 0.87)
    """

    node: str
    op_type: str
    weight: str
    shape: tuple[int, ...]
    params: int
    zeros: int
    blocks: int
    zero_blocks: int
    bias_params: int
    dtype: str
    bits: int
    quantized: bool
    per_channel: bool
    prunable: bool
    dense_flops: int | None
    sparse_flops: int | None

    @property
    def sparsity(self) -> float:
        """Fraction of the weight's elements that are zero."""
        return _ratio(self.zeros, self.params)

    @property
    def block4_sparsity(self) -> float:
        """Fraction of blocks of 4 weights along the reduction dimension that are all zero."""
        return _ratio(self.zero_blocks, self.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "op_type": self.op_type,
            "weight": self.weight,
            "shape": list(self.shape),
            "params": self.params,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
            "block4_sparsity": self.block4_sparsity,
            "bias_params": self.bias_params,
            "dtype": self.dtype,
            "bits": self.bits,
            "quantized": self.quantized,
            "per_channel": self.per_channel,
            "prunable": self.prunable,
            "dense_flops": self.dense_flops,
            "sparse_flops": self.sparse_flops,
        }


@dataclass(frozen=True)
class ModelAnalysis:
    """The weighted layers of a model and its totals.

    ``sparsity`` is measured over the prunable layers (every weighted op but embeddings), the
    number SparseZoo's ``prunedNN`` tags speak of. ``total_params`` counts every stored
    parameter once (weights, biases, norms; not quantization scales/zero points or shapes).
    ``unmeasured`` names weighted nodes whose weight was not loaded (external data).

    >>> a = analyze_model("model.onnx")  # doctest: +SKIP
    >>> f"{a.sparsity:.0%} sparse, {a.sparse_flops / a.dense_flops:.0%} of the FLOPs left"
    '90% sparse, 11% of the FLOPs left'
    """

    layers: list[LayerAnalysis] = field(default_factory=list)
    total_params: int = 0
    file_size: int = 0
    quantized: bool = False
    unmeasured: list[str] = field(default_factory=list)

    @property
    def prunable(self) -> list[LayerAnalysis]:
        return [layer for layer in self.layers if layer.prunable]

    @property
    def prunable_params(self) -> int:
        return sum(layer.params for layer in self.prunable)

    @property
    def prunable_zeros(self) -> int:
        return sum(layer.zeros for layer in self.prunable)

    @property
    def sparsity(self) -> float:
        """Fraction of prunable weights that are zero (0 when nothing is prunable)."""
        return _ratio(self.prunable_zeros, self.prunable_params)

    @property
    def block4_sparsity(self) -> float:
        """Fraction of all-zero 4-blocks over the prunable layers."""
        blocks = sum(layer.blocks for layer in self.prunable)
        return _ratio(sum(layer.zero_blocks for layer in self.prunable), blocks)

    @property
    def quantized_fraction(self) -> float:
        """Fraction of prunable weights stored quantized (by parameter count)."""
        quantized = sum(layer.params for layer in self.prunable if layer.quantized)
        return _ratio(quantized, self.prunable_params)

    @property
    def dense_flops(self) -> int:
        """FLOPs (2 per multiply-add) of the weighted layers whose shapes are known."""
        return sum(layer.dense_flops or 0 for layer in self.layers)

    @property
    def sparse_flops(self) -> int:
        """The FLOPs left when multiply-adds with a zero weight are skipped."""
        return sum(layer.sparse_flops or 0 for layer in self.layers)

    @property
    def flops_complete(self) -> bool:
        """Whether every layer's FLOPs are known (else the totals are lower bounds)."""
        return all(layer.dense_flops is not None for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_params": self.total_params,
            "prunable_params": self.prunable_params,
            "prunable_zeros": self.prunable_zeros,
            "sparsity": self.sparsity,
            "block4_sparsity": self.block4_sparsity,
            "quantized": self.quantized,
            "quantized_fraction": self.quantized_fraction,
            "dense_flops": self.dense_flops,
            "sparse_flops": self.sparse_flops,
            "flops_complete": self.flops_complete,
            "flops_unit": "FLOPs (1 multiply-add = 2 FLOPs), batch 1",
            "file_size": self.file_size,
            "unmeasured": list(self.unmeasured),
            "layers": [layer.to_dict() for layer in self.layers],
        }
