"""ONNX model analysis: per-layer parameters, zeros, 4-block sparsity, quantization and FLOPs.

The numbers a hub shows and checks claims against are measured here, from the weights; a
``pruned90`` in a stub is not evidence. One multiply-add counts as 2 FLOPs, at batch 1.

>>> from zoo.analysis import analyze_model
>>> a = analyze_model("model.onnx")  # doctest: +SKIP
>>> a.sparsity, a.block4_sparsity, a.dense_flops, a.sparse_flops  # doctest: +SKIP
(0.9, 0.72, 8178589696, 917504000)
>>> a.to_dict()["layers"][0]["op_type"]  # doctest: +SKIP
'Conv'
"""

from zoo.analysis.analyze import analyze_model
from zoo.analysis.load import AnalysisError
from zoo.analysis.report import LayerAnalysis, ModelAnalysis

__all__ = ["AnalysisError", "LayerAnalysis", "ModelAnalysis", "analyze_model"]
