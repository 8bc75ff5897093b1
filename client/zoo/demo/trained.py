"""Builders of the models trained for real: a small CNN and an MLP on scikit-learn's digits.

Dense training, then gradual magnitude pruning with fine-tuning (each run executes its recipe),
then int8 QDQ post-training quantization of a pruned model. Accuracy is always measured with
onnxruntime on the exported ONNX file, on a held-out split the training never sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnx

from zoo.demo.folder import Artifacts, BuildError, StubParts, measure, run_onnx
from zoo.demo.recipe import parse_recipe
from zoo.demo.recipes import dense_recipe, pruning_recipe

if TYPE_CHECKING:
    from zoo.demo.catalog import BuildContext, ModelSpec

__all__ = ["ARCHS", "Digits", "build_dense", "build_pruned", "build_quant", "load_digits"]

SPLIT_SEED = 0
N_SAMPLES = 4  # sample-inputs files per model
BATCH = 64  # 21 steps per epoch: tiny nets are step-overhead bound, fewer bigger steps win
DATASET_NOTE = (
    "scikit-learn's `load_digits` (8x8 greyscale handwritten digits, 1,797 images, 10 classes; "
    "the UCI *Optical Recognition of Handwritten Digits* test set, CC BY 4.0), pixel values "
    "scaled to [0, 1], split 75/25 stratified with seed 0: 1,347 training images, 450 held out"
)


@dataclass(frozen=True)
class Arch:
    """A trainable architecture of the catalog."""

    parts: StubParts
    title: str
    summary: str
    prune_params: tuple[str, ...] | str  # what the pruning recipe lists

    def shape(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(N, 64) flat pixels -> the net's input layout."""
        return x.reshape(-1, 1, 8, 8) if self.parts.architecture == "cnn" else x


ARCHS = {
    "cnn": Arch(
        StubParts("cv", "classification", "cnn", "small", "pytorch", "digits"),
        "Small CNN",
        "three 3x3 convolutions (16, 32, 64 channels, ReLU, two max-pools) and two linear "
        "layers (256-128-10); input `input` (batch, 1, 8, 8), output `logits` (batch, 10)",
        # The first conv (144 weights, one input channel) stays dense: pruning it starves
        # every later layer; it is 0.25 % of the weights, so the tag still rounds true.
        ("features.2.weight", "features.5.weight", "classifier.1.weight", "classifier.3.weight"),
    ),
    "mlp": Arch(
        StubParts("cv", "classification", "mlp", "small", "pytorch", "digits"),
        "Small MLP",
        "a 64-256-128-10 perceptron with ReLU; input `input` (batch, 64), output "
        "`logits` (batch, 10)",
        "__ALL_PRUNABLE__",
    ),
}


@dataclass(frozen=True)
class Digits:
    """The fixed split: float32 pixels (N, 64) in [0, 1] and int64 labels (N,)."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]


def load_digits(seed: int = SPLIT_SEED) -> Digits:
    """scikit-learn's digits (shipped inside the package: no download), split 75/25."""
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    data = sk_load()
    x = (np.asarray(data.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(data.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return Digits(x_tr, y_tr, x_te, y_te)


def accuracy(model: onnx.ModelProto, arch: Arch, digits: Digits, threads: int) -> float:
    """Top-1 accuracy of the ONNX model under onnxruntime on the held-out split."""
    (out,) = run_onnx(model, [{"input": arch.shape(digits.x_test)}], threads=threads)
    return float(np.mean(out["logits"].argmax(axis=1) == digits.y_test))


def _eval(value: float, digits: Digits) -> dict[str, Any]:
    import onnxruntime

    return {
        "dataset": "digits",
        "split": "held_out",
        "metric": "top1_accuracy",
        "value": round(value, 6),
        "measured_by": f"onnxruntime {onnxruntime.__version__} on {len(digits.y_test)} images",
    }


def _samples(arch: Arch, digits: Digits) -> list[dict[str, Any]]:
    return [{"input": arch.shape(digits.x_test[i : i + 1])} for i in range(N_SAMPLES)]


def _train(spec: ModelSpec, ctx: BuildContext, recipe_text: str) -> tuple[Artifacts, float]:
    """Run ``recipe_text`` on the net (from the base's weights if any), export and evaluate."""
    import torch

    from zoo.demo import _train

    torch.set_num_threads(ctx.threads)
    arch, digits = ARCHS[spec.arch], load_digits()
    recipe = parse_recipe(recipe_text)
    net = _train.make_net(spec.arch, spec.seed)
    if ctx.base is not None:
        _train.load_state(net, (ctx.base.path / "training" / "model.pt").read_bytes())
    log = _train.run_recipe(net, recipe, arch.shape(digits.x_train), digits.y_train, seed=spec.seed)
    model = _train.export_onnx(net, torch.from_numpy(arch.shape(digits.x_test[:1])))
    # Zeros must survive export one for one (no folding may densify a pruned weight).
    onnx_zeros, torch_zeros = measure(model).zeros, _train.zero_count(net)
    if onnx_zeros != torch_zeros:
        raise BuildError(f"{spec.id}: {torch_zeros} zero weights in torch, {onnx_zeros} in ONNX")
    acc = accuracy(model, arch, digits, ctx.threads)
    torch_acc = float(np.mean(_train.predict(net, arch.shape(digits.x_test)) == digits.y_test))
    if abs(acc - torch_acc) > 0.01:  # one engine disagreeing with the other is a bug
        raise BuildError(f"{spec.id}: onnxruntime accuracy {acc:.4f}, torch {torch_acc:.4f}")
    schedule = ", ".join(f"{s:.1%}@{t:g}" for t, s in log.updates) or "none"
    how = (
        f"Trained with PyTorch on {DATASET_NOTE}. The net: {arch.summary}.\n\n"
        f"The recipe in `recipe/recipe_original.yaml` is the exact text the builder parsed and "
        f"executed ({recipe.num_epochs:g} epochs, batch {BATCH}, SGD momentum 0.9 Nesterov, weight "
        f"decay 1e-4, seed {spec.seed}). Mask updates (sparsity@epoch): {schedule}. Final "
        f"training loss {log.losses[-1]:.4f}. Exported with torch.onnx (TorchScript exporter, "
        f"opset {_train.OPSET}, dynamic batch); `training/model.pt` holds the PyTorch weights."
    )
    art = Artifacts(
        model=model,
        parts=arch.parts,
        nominal_sparsity=spec.sparsity,
        quantized=False,
        samples=_samples(arch, digits),
        display_name="",
        description="",
        how_made=how,
        recipe=recipe_text,
        evals=[_eval(acc, digits)],
        extra_files={"training/model.pt": _train.state_bytes(net)},
    )
    return art, acc


def build_dense(spec: ModelSpec, ctx: BuildContext) -> Artifacts:
    """Dense training from scratch with :func:`dense_recipe`."""
    arch = ARCHS[spec.arch]
    art, acc = _train(spec, ctx, dense_recipe(int(spec.option("epochs", 20))))
    art.display_name = f"{arch.title}, digits, dense"
    art.description = (
        f"A {arch.title} trained for real on scikit-learn's digits; "
        f"{acc:.2%} top-1 on the held-out split. The base of the pruned variants."
    )
    art.tags = ["demo", "trained", "dense", "digits"]
    return art


def build_pruned(spec: ModelSpec, ctx: BuildContext) -> Artifacts:
    """Gradual magnitude pruning + fine-tuning of the dense base's weights."""
    assert ctx.base is not None and spec.sparsity is not None
    arch = ARCHS[spec.arch]
    text = pruning_recipe(
        spec.sparsity,
        arch.prune_params,
        epochs=int(spec.option("epochs", 16)),
        pruning_epochs=int(spec.option("pruning_epochs", 10)),
    )
    art, acc = _train(spec, ctx, text)
    pct = round(spec.sparsity * 100)
    art.display_name = f"{arch.title}, digits, {pct}% pruned"
    art.description = (
        f"The dense {arch.title} pruned to {pct}% unstructured sparsity by gradual "
        f"magnitude pruning with fine-tuning; {acc:.2%} top-1 on the held-out split "
        f"(dense: {ctx.base.eval_results[0]['value']:.2%})."
    )
    art.tags = ["demo", "trained", "pruned", "digits"]
    art.base_stub = ctx.base.stub
    return art


def build_quant(spec: ModelSpec, ctx: BuildContext) -> Artifacts:
    """int8 QDQ post-training quantization of the pruned base, calibrated on training images."""
    import onnxruntime

    from zoo.demo.synthetic import quiet_quantize

    assert ctx.base is not None
    arch, digits = ARCHS[spec.arch], load_digits()
    base = onnx.load(str(ctx.base.path / "model.onnx"))
    n_cal = int(spec.option("calibration", 256))
    cal = [
        {"input": arch.shape(digits.x_train[i : i + 32])} for i in range(0, n_cal, 32)
    ]  # (32, ...) batches of training images, never held-out ones
    model = quiet_quantize(base, cal)
    acc = accuracy(model, arch, digits, ctx.threads)
    base_acc = ctx.base.eval_results[0]["value"]
    how = (
        f"`{ctx.base.stub}` quantized after training with onnxruntime "
        f"{onnxruntime.__version__} `quantize_static`: QDQ format, int8 symmetric per-channel "
        f"weights, uint8 activations, MinMax calibration on the first {n_cal} training images "
        f"of {DATASET_NOTE}. Zero weights quantize to the zero point, so the sparsity "
        f"survives. The recipe file is the pruning recipe that made the base weights; "
        f"quantization itself ran no recipe."
    )
    pct = round((spec.sparsity or 0) * 100)
    return Artifacts(
        model=model,
        parts=arch.parts,
        nominal_sparsity=spec.sparsity,
        quantized=True,
        samples=_samples(arch, digits),
        display_name=f"{arch.title}, digits, {pct}% pruned, int8 quantized",
        description=(
            f"The {pct}% pruned {arch.title} with int8 QDQ quantization; {acc:.2%} "
            f"top-1 on the held-out split (float base: {base_acc:.2%})."
        ),
        how_made=how,
        recipe=(ctx.base.path / "recipe" / "recipe_original.yaml").read_text(),
        evals=[_eval(acc, digits)],
        tags=["demo", "trained", "pruned", "quantized", "digits"],
        base_stub=ctx.base.stub,
    )
