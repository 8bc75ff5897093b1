"""Builders of the architecture-scale models: full-size graphs with synthetic weights.

ResNet-50, MobileNetV2 and a BERT-base encoder from :mod:`zoo.testing.models` (seeded random
weights, the op patterns of the real exports), one-shot magnitude pruned by a recipe, one of
them QDQ-quantized. They exist to benchmark and to exercise the hub; they claim no accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnx

from zoo.demo.folder import Artifacts, StubParts
from zoo.demo.recipe import RecipeError, parse_recipe
from zoo.demo.recipes import oneshot_recipe
from zoo.testing import models

if TYPE_CHECKING:
    from zoo.demo.catalog import BuildContext, ModelSpec

__all__ = ["SYNTHETIC", "build_dense", "build_pruned", "build_quant", "prune_all"]

Array = npt.NDArray[Any]
N_SAMPLES = 2


@dataclass(frozen=True)
class SyntheticArch:
    """One architecture-scale model of the catalog."""

    parts: StubParts
    title: str
    summary: str
    build: Callable[[int], onnx.ModelProto]
    samples: Callable[[np.random.Generator], dict[str, Array]]
    embeddings: bool = False


def _image(rng: np.random.Generator) -> dict[str, Array]:
    return {"input": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}


def _tokens(rng: np.random.Generator) -> dict[str, Array]:
    ids = rng.integers(0, 30522, (1, 128), dtype=np.int64)  # (1, seq)
    length = int(rng.integers(32, 129))
    mask = (np.arange(128) < length).astype(np.int64)[None, :]  # padded tail is masked
    return {"input_ids": ids, "attention_mask": mask}


SYNTHETIC = {
    "resnet50": SyntheticArch(
        StubParts("cv", "classification", "resnet_v1", "50", "onnx", "synthetic"),
        "ResNet-50 v1",
        "ResNet-50 v1 (bottleneck blocks 3-4-6-3, stride on the 3x3 conv, Conv + "
        "BatchNormalization + Relu, 1000 classes); input `input` (batch, 3, 224, 224)",
        lambda seed: models.resnet50(seed=seed),
        _image,
    ),
    "mobilenet_v2": SyntheticArch(
        StubParts("cv", "classification", "mobilenet_v2", "1.0", "onnx", "synthetic"),
        "MobileNetV2 1.0",
        "MobileNetV2 width 1.0 (inverted residuals, depthwise 3x3 convs, Relu6 as Clip, "
        "1000 classes); input `input` (batch, 3, 224, 224)",
        lambda seed: models.mobilenet_v2(seed=seed),
        _image,
    ),
    "bert_base": SyntheticArch(
        StubParts("nlp", "feature_extraction", "bert", "base", "onnx", "synthetic"),
        "BERT-base encoder",
        "BERT-base encoder (12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 30522, "
        "sequence 128, LayerNormalization and Erf-GELU as transformers exports them, no "
        "task head); inputs `input_ids` and `attention_mask` (batch, 128) int64, output "
        "`last_hidden_state` (batch, 128, 768)",
        lambda seed: models.bert_encoder(seed=seed),
        _tokens,
        embeddings=True,
    ),
}

SYNTHETIC_NOTE = (
    "The weights are **synthetic** (seeded random, He-initialised) and the model is not "
    "trained: it has the layer shapes, parameter count and op patterns of the real "
    "architecture, for benchmarking and for exercising the hub. It makes **no accuracy claim**."
)


_EMBEDDINGS = (
    "; the word embedding table (a Gather, not a prunable weight) stays dense, as in "
    "SparseML's BERT recipes"
)


def _samples(arch: SyntheticArch, seed: int) -> list[dict[str, Array]]:
    rng = np.random.default_rng(seed + 1000)
    return [arch.samples(rng) for _ in range(N_SAMPLES)]


def prune_all(model: onnx.ModelProto, sparsity: float) -> onnx.ModelProto:
    """Magnitude-prune every prunable weight (Conv, Gemm, MatMul) to ``sparsity``.

    :func:`zoo.testing.models.prune`, which zeroes the smallest |w| of each weight; embedding
    tables (Gather) stay dense, as SparseML's BERT recipes leave them and as the hub's
    measure does not count them.
    """
    return models.prune(model, sparsity)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    # onnxruntime's quantizer logs a warning per BatchNormalization through the root logger
    # ("Axis 1 is out-of-range"); they are expected for unfused BN and drown the build log.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quiet_quantize(
    model: onnx.ModelProto, calibration: Iterable[Mapping[str, Array]]
) -> onnx.ModelProto:
    """:func:`zoo.testing.models.quantize_qdq` (QDQ, per-channel int8 weights), log quiet."""
    with _quiet_root_logger():
        return models.quantize_qdq(model, calibration, per_channel=True)


def build_dense(spec: ModelSpec, ctx: BuildContext) -> Artifacts:
    """The full-size graph with seeded random weights."""
    arch = SYNTHETIC[spec.arch]
    return Artifacts(
        model=arch.build(spec.seed),
        parts=arch.parts,
        nominal_sparsity=None,
        quantized=False,
        samples=_samples(arch, spec.seed),
        display_name=f"{arch.title}, dense (synthetic weights)",
        description=f"{arch.title} at full size with synthetic weights; no accuracy claim.",
        how_made=(
            f"Built offline with `zoo.testing.models` (onnx.helper, opset 17, seed "
            f"{spec.seed}): {arch.summary}.\n\n{SYNTHETIC_NOTE}"
        ),
        tags=["demo", "synthetic", "dense"],
        synthetic=True,
    )


def build_pruned(spec: ModelSpec, ctx: BuildContext) -> Artifacts:
    """One-shot magnitude pruning of the dense base, as its recipe says."""
    assert ctx.base is not None and spec.sparsity is not None
    arch = SYNTHETIC[spec.arch]
    text = oneshot_recipe(spec.sparsity)
    recipe = parse_recipe(text)
    model = onnx.load(str(ctx.base.path / "model.onnx"))
    for m in recipe.pruning:  # executes the recipe: one-shot, so the schedule's end value
        if not m.all_prunable:
            raise RecipeError("one-shot ONNX pruning supports params: __ALL_PRUNABLE__ only")
        model = prune_all(model, m.applied_sparsity(recipe.num_epochs))
    pct = round(spec.sparsity * 100)
    return Artifacts(
        model=model,
        parts=arch.parts,
        nominal_sparsity=spec.sparsity,
        quantized=False,
        samples=_samples(arch, spec.seed),
        display_name=f"{arch.title}, {pct}% pruned (synthetic weights)",
        description=(
            f"{arch.title} at full size, {pct}% unstructured magnitude pruning of synthetic "
            "weights; for sparse-inference benchmarks, no accuracy claim."
        ),
        how_made=(
            f"`{ctx.base.stub}` ({arch.summary}) pruned one-shot by the recipe in "
            f"`recipe/recipe_original.yaml`: in every weighted layer the {pct}% smallest "
            f"|w| are set to zero{_EMBEDDINGS if arch.embeddings else ''}.\n\n{SYNTHETIC_NOTE}"
        ),
        recipe=text,
        tags=["demo", "synthetic", "pruned"],
        base_stub=ctx.base.stub,
        synthetic=True,
    )


def build_quant(spec: ModelSpec, ctx: BuildContext) -> Artifacts:
    """int8 QDQ quantization of the pruned base, calibrated on a few random inputs."""
    import onnxruntime

    assert ctx.base is not None
    arch = SYNTHETIC[spec.arch]
    base = onnx.load(str(ctx.base.path / "model.onnx"))
    n_cal = int(spec.option("calibration", 4))
    calibration = [arch.samples(np.random.default_rng(spec.seed + 2000 + i)) for i in range(n_cal)]
    pct = round((spec.sparsity or 0) * 100)
    return Artifacts(
        model=quiet_quantize(base, calibration),
        parts=arch.parts,
        nominal_sparsity=spec.sparsity,
        quantized=True,
        samples=_samples(arch, spec.seed),
        display_name=f"{arch.title}, {pct}% pruned, int8 quantized (synthetic weights)",
        description=(
            f"{arch.title}, {pct}% pruned and int8 QDQ-quantized, synthetic weights; for "
            "benchmarks of sparse quantized inference, no accuracy claim."
        ),
        how_made=(
            f"`{ctx.base.stub}` quantized with onnxruntime {onnxruntime.__version__} "
            f"`quantize_static`: QDQ format, int8 symmetric per-channel weights, uint8 "
            f"activations, MinMax calibration on {n_cal} random inputs. Zero weights quantize "
            f"to the zero point, so the sparsity survives. The recipe file is the one that "
            f"pruned the base.\n\n{SYNTHETIC_NOTE}"
        ),
        recipe=(ctx.base.path / "recipe" / "recipe_original.yaml").read_text(),
        tags=["demo", "synthetic", "pruned", "quantized"],
        base_stub=ctx.base.stub,
        synthetic=True,
    )
