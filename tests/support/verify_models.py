"""Tiny model folders in SparseZoo's layout, built from scratch, for ``zoo verify`` and the
hub's "outputs reproduced" check: a 90%-sparse two-layer MLP (fp32, or QDQ int8 through
onnxruntime's quantize_static), sample outputs from onnxruntime (the oracle), a GMP recipe
and a card whose front matter tells the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SPARSITY = 0.9
RECIPE = """\
version: 1.1.0
modifiers:
  - !GMPruningModifier
    init_sparsity: 0.05
    final_sparsity: {final}
    start_epoch: 0.0
    end_epoch: 5.0
    update_frequency: 1.0
    params: __ALL_PRUNABLE__
"""
CARD = """\
---
sparse_tag: pruned90-none
sparsity: {sparsity}
---
# Tiny MLP, 90% pruned
"""


def _sparse(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    w = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    w.ravel()[rng.permutation(w.size)[: round(w.size * SPARSITY)]] = 0.0
    return w


def mlp(seed: int = 0) -> onnx.ModelProto:
    """x (batch, 32) -> Gemm 32x20 -> Relu -> Gemm 20x10 -> y; both weights exactly 90% zeros."""
    rng = np.random.default_rng(seed)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], name="fc2"),
        ],
        "tiny_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(_sparse(rng, (32, 20)), "w1"),
            numpy_helper.from_array(rng.uniform(-0.1, 0.1, 20).astype(np.float32), "b1"),
            numpy_helper.from_array(_sparse(rng, (20, 10)), "w2"),
            numpy_helper.from_array(rng.uniform(-0.1, 0.1, 10).astype(np.float32), "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _inputs(seed: int, count: int = 3) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed + 100)
    return [{"input": rng.standard_normal((1, 32)).astype(np.float32)} for _ in range(count)]


def quantize(model: onnx.ModelProto, folder: Path, seed: int = 0) -> onnx.ModelProto:
    """QDQ int8 (per-tensor, symmetric weights) by onnxruntime's quantize_static."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime has no stubs
        def __init__(self) -> None:
            self._it = iter(_inputs(seed + 1, 16))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    src, dst = folder / "fp32.onnx", folder / "int8.onnx"
    onnx.save(model, src)
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ)
    quantized = onnx.load(str(dst))
    src.unlink()
    dst.unlink()
    return quantized


def write_folder(root: Path, *, seed: int = 0, quantized: bool = False) -> Path:
    """A model folder: model.onnx, sample-inputs/outputs (onnxruntime's answers), a recipe,
    a card. Returns the folder."""
    folder = root / f"tiny-mlp-{seed}{'-int8' if quantized else ''}"
    for sub in ("sample-inputs", "sample-outputs", "recipe"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    model = mlp(seed)
    if quantized:
        model = quantize(model, folder, seed)
    onnx.save(model, folder / "model.onnx")
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for i, feeds in enumerate(_inputs(seed)):
        (logits,) = session.run(None, feeds)
        np.savez(folder / "sample-inputs" / f"inp-{i:04d}.npz", input=feeds["input"])
        np.savez(folder / "sample-outputs" / f"out-{i:04d}.npz", logits=logits)
    (folder / "recipe" / "recipe_original.yaml").write_text(RECIPE.format(final=SPARSITY))
    (folder / "model.md").write_text(CARD.format(sparsity=SPARSITY))
    return folder


def alter_output(folder: Path, index: int = 0, delta: float = 0.5) -> None:
    """Shift one value of one stored sample output (the model no longer reproduces it)."""
    path = folder / "sample-outputs" / f"out-{index:04d}.npz"
    with np.load(path) as data:
        logits = data["logits"].copy()
    logits.ravel()[0] += delta
    np.savez(path, logits=logits)


def densify_weight(folder: Path) -> None:
    """Fill fc1's zeros with small values: the weights stop being 90% sparse (same outputs no
    longer, and the claims become false)."""
    model = onnx.load(str(folder / "model.onnx"))
    for i, init in enumerate(model.graph.initializer):
        if init.name == "w1":
            w = numpy_helper.to_array(init).copy()
            w[w == 0] = 0.05
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(w, "w1"))
    onnx.save(model, folder / "model.onnx")
