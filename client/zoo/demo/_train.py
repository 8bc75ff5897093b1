"""Torch side of the trained demo models: the nets, a training loop that executes a recipe,
and the ONNX export. Imported lazily (``import zoo.demo`` must work without torch)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnx
import torch
from torch import nn

from zoo.demo.recipe import GMPruningModifier, Recipe, RecipeError

__all__ = ["PRUNABLE", "TrainLog", "export_onnx", "make_net", "prunable_params", "run_recipe"]

PRUNABLE = (nn.Conv2d, nn.Linear)
OPSET = 17


class SmallCNN(nn.Module):
    """3 convs + 2 linears for 8x8 grey images; ``input`` (N, 1, 8, 8) -> ``logits`` (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),  # (N, 16, 8, 8); 144 weights, kept dense
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),  # (N, 32, 8, 8)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 32, 4, 4)
            nn.Conv2d(32, 64, 3, padding=1),  # (N, 64, 4, 4)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 64, 2, 2)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, 256)
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # type: ignore[no-any-return]


class SmallMLP(nn.Module):
    """64-256-128-10 perceptron; ``input`` (N, 64) -> ``logits`` (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # type: ignore[no-any-return]


def make_net(arch: str, seed: int) -> nn.Module:
    """A freshly initialised net (``cnn`` or ``mlp``), deterministic for ``seed``."""
    torch.manual_seed(seed)
    nets: dict[str, Callable[[], nn.Module]] = {"cnn": SmallCNN, "mlp": SmallMLP}
    return nets[arch]()


def prunable_params(net: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of Conv/Linear layers by parameter name (``features.2.weight``)."""
    return {
        f"{name}.weight": module.weight
        for name, module in net.named_modules()
        if isinstance(module, PRUNABLE)
    }


def _select(net: nn.Module, modifier: GMPruningModifier, index: int) -> dict[str, torch.Tensor]:
    available = prunable_params(net)
    chosen = {n: p for n, p in available.items() if modifier.selects(n)}
    for p in modifier.params:
        # Each explicit entry must hit something: a typo would silently leave a layer dense.
        single = GMPruningModifier(0.0, 0.0, 0.0, 0.0, 1.0, (p,))
        if not single.all_prunable and not any(single.selects(n) for n in available):
            raise RecipeError(
                f"GMPruningModifier #{index + 1}: params entry {p!r} matches no prunable weight; "
                f"available: {', '.join(available)}"
            )
    return chosen


def _magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """1 where |w| is among the largest (1 - sparsity) fraction, 0 elsewhere (exactly k zeros)."""
    k = round(w.numel() * sparsity)
    mask = torch.ones(w.numel(), dtype=w.dtype)
    if k:
        # A stable sort breaks ties by position, so already-pruned zeros stay pruned first.
        order = torch.argsort(w.detach().abs().flatten(), stable=True)
        mask[order[:k]] = 0
    return mask.view_as(w)


@dataclass
class TrainLog:
    """What a recipe run did: per-epoch loss and the mask updates (epoch, sparsity)."""

    losses: list[float]
    updates: list[tuple[float, float]]


def run_recipe(
    net: nn.Module,
    recipe: Recipe,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    *,
    seed: int,
    batch_size: int = 32,
    default_lr: float = 0.01,
) -> TrainLog:
    """Train ``net`` on (x, y) for ``recipe.num_epochs``, executing every modifier.

    LR modifiers set the rate per step; each GMP modifier recomputes its masks at its update
    epochs (sparsity from the schedule at that epoch) and applies them after every optimizer
    step (while enabled), so pruned weights stay exactly zero. Updates due at the very end
    (``end_epoch == num_epochs``) run after the last step.
    """
    gmp = [(m, _select(net, m, i)) for i, m in enumerate(recipe.pruning)]
    pending = [list(m.update_epochs()) for m, _ in gmp]
    masks: list[dict[str, torch.Tensor]] = [{} for _ in gmp]
    log = TrainLog([], [])

    def update_masks(epoch: float) -> None:
        for i, (m, params) in enumerate(gmp):
            while pending[i] and pending[i][0] <= epoch + 1e-9:
                t = pending[i].pop(0)
                s = m.sparsity_at(t)
                masks[i] = {n: _magnitude_mask(p, s) for n, p in params.items()}
                log.updates.append((t, s))
            enabled = m.leave_enabled or epoch < m.end_epoch
            if masks[i] and enabled:
                with torch.no_grad():
                    for n, p in params.items():
                        p.mul_(masks[i][n])

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(
        net.parameters(), lr=default_lr, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    loss_fn = nn.CrossEntropyLoss()
    epochs = int(np.ceil(recipe.num_epochs))
    steps = max(1, int(np.ceil(len(xt) / batch_size)))
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for step in range(steps):
            t = epoch + step / steps  # fractional epoch, as SparseML schedules it
            update_masks(t)
            for group in opt.param_groups:
                group["lr"] = recipe.lr_at(t, default_lr)
            idx = order[step * batch_size : (step + 1) * batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])  # (B, 10) logits vs (B,) labels
            loss.backward()
            opt.step()
            update_masks(t)  # re-apply: the step moved pruned weights off zero
            total += loss.item() * len(idx)
        log.losses.append(total / len(xt))
    update_masks(float(epochs))
    net.eval()
    return log


def export_onnx(net: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    """TorchScript-based export (simpler graphs than dynamo's), dynamic batch, checked.

    torch >= 2.9 defaults to the dynamo exporter (needs onnxscript); ``dynamo=False`` keeps
    the TorchScript one, which warns that it is deprecated: expected here, so silenced.
    """
    buf = io.BytesIO()
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    return model


def zero_count(net: nn.Module) -> int:
    """Zeros over all prunable weights (compared with the ONNX count after export)."""
    return sum(int((p == 0).sum()) for p in prunable_params(net).values())


def predict(net: nn.Module, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Argmax class of each row (torch's view, checked against onnxruntime's)."""
    with torch.no_grad():
        return net(torch.from_numpy(x)).argmax(dim=1).numpy()  # type: ignore[no-any-return]


def state_bytes(net: nn.Module) -> bytes:
    """The state dict as ``torch.save`` bytes (``training/model.pt``)."""
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def load_state(net: nn.Module, data: bytes) -> None:
    """Load ``state_bytes`` output (weights only: never unpickle code)."""
    net.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
