"""The recipe texts the demo catalog runs; each is stored verbatim with the model it made."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["dense_recipe", "oneshot_recipe", "pruning_recipe"]


def dense_recipe(epochs: int, *, init_lr: float = 0.05, final_lr: float = 0.0005) -> str:
    """Dense training from scratch: a cosine learning-rate decay over ``epochs``."""
    return f"""# Dense training on scikit-learn's digits (OpenZoo demo catalog), SGD + Nesterov.
version: 1.1.0
num_epochs: {float(epochs)}
modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: eval(num_epochs)
  - !LearningRateFunctionModifier
    lr_func: cosine
    init_lr: {init_lr}
    final_lr: {final_lr}
    start_epoch: 0.0
    end_epoch: eval(num_epochs)
"""


def pruning_recipe(
    final_sparsity: float,
    params: Sequence[str] | str,
    *,
    epochs: int,
    pruning_epochs: int,
    init_lr: float = 0.01,
    final_lr: float = 0.0001,
) -> str:
    """Gradual magnitude pruning from the dense weights, then fine-tuning with masks fixed.

    Masks are updated once per epoch from epoch 0 to ``pruning_epochs`` on SparseML's cubic
    schedule (fast early, gentle near the end, where each step costs the most accuracy).
    """
    if isinstance(params, str):
        params_yaml = params
    else:
        params_yaml = "\n" + "".join(f"      - {p}\n" for p in params).rstrip("\n")
    return f"""# Gradual magnitude pruning to {final_sparsity:.0%}, then fine-tuning (OpenZoo demo).
version: 1.1.0
num_epochs: {float(epochs)}
pruning_end_epoch: {float(pruning_epochs)}
training_modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: eval(num_epochs)
  - !LearningRateFunctionModifier
    lr_func: cosine
    init_lr: {init_lr}
    final_lr: {final_lr}
    start_epoch: 0.0
    end_epoch: eval(num_epochs)
pruning_modifiers:
  - !GMPruningModifier
    init_sparsity: 0.05
    final_sparsity: {final_sparsity}
    start_epoch: 0.0
    end_epoch: eval(pruning_end_epoch)
    update_frequency: 1.0
    params: {params_yaml}
    leave_enabled: true
    inter_func: cubic
    mask_type: unstructured
"""


def oneshot_recipe(sparsity: float) -> str:
    """One-shot magnitude pruning (start_epoch == end_epoch): no training, synthetic weights."""
    return f"""# One-shot magnitude pruning to {sparsity:.0%}, synthetic weights (OpenZoo demo).
# For ONNX graphs __ALL_PRUNABLE__ is every Conv, Gemm and MatMul weight, each pruned to the
# same fraction of smallest |w|; embedding tables (Gather) stay dense.
version: 1.1.0
modifiers:
  - !GMPruningModifier
    init_sparsity: {sparsity}
    final_sparsity: {sparsity}
    start_epoch: 0.0
    end_epoch: 0.0
    update_frequency: -1.0
    params: __ALL_PRUNABLE__
"""
