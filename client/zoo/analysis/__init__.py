"""ONNX model analysis: per-layer parameters, zeros and quantization of weighted nodes."""

from zoo.analysis.sparsity import LayerSparsity, ModelSparsity, measure_sparsity

__all__ = ["LayerSparsity", "ModelSparsity", "measure_sparsity"]
