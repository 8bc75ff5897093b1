"""Run a model's sample inputs through ``zoo.runtime`` and compare with its sample outputs.

The one comparison both sides use: ``zoo verify`` on a user's machine and the hub's
"outputs reproduced" check after a commit, so they can never disagree on what "matches" means.

>>> from zoo.verify import compare_folder
>>> result = compare_folder("resnet50-pruned90/")  # doctest: +SKIP
>>> result.ok, result.max_abs_err  # doctest: +SKIP
(True, 3.1e-06)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.verify.tolerance import Tolerance, output_tolerances

__all__ = ["OutputComparison", "compare_folder", "compare_outputs", "load_samples"]

Sample = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class OutputComparison:
    """The outcome: ``ok`` is None when there was nothing to compare (or the runtime cannot
    run the model), else whether every output of every sample was within tolerance."""

    ok: bool | None
    detail: str
    samples: int = 0
    max_abs_err: float = 0.0
    worst_ratio: float = 0.0  # max |diff| / allowed over every element: <= 1 passes
    tolerances: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what the hub stores as ``meta["outputs_check"]``)."""
        return {
            "ok": self.ok,
            "detail": self.detail,
            "samples": self.samples,
            "max_abs_err": self.max_abs_err,
            "worst_ratio": self.worst_ratio,
            "tolerances": dict(self.tolerances),
            "failures": list(self.failures[:10]),
        }


def load_samples(folder: Path) -> list[dict[str, np.ndarray]]:
    """The arrays of every ``*.npz`` in ``folder``, in file-name order (data only, no pickles)."""
    out = []
    for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        with np.load(path, allow_pickle=False) as data:
            out.append({k: data[k] for k in data.files})
    return out


def _by_name(arrays: Sample, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Name the arrays after the model's inputs/outputs: by key if the keys are those names,
    else by position (SparseZoo's older archives use ``input_0``-style keys)."""
    if set(arrays) <= set(names):
        return dict(arrays)
    return dict(zip(names, arrays.values(), strict=False))


def _compare_one(
    got: np.ndarray, want: np.ndarray, tol: Tolerance, where: str
) -> tuple[float, float, str | None]:
    """(max |diff|, worst diff/allowed, failure message or None) for one output."""
    if got.shape != want.shape:
        return float("inf"), float("inf"), f"{where}: shape {got.shape}, stored {want.shape}"
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    if np.isnan(got64).any() != np.isnan(want64).any():
        return float("inf"), float("inf"), f"{where}: NaN in one output but not the other"
    both = ~(np.isnan(got64) & np.isnan(want64))
    diff = np.abs(got64 - want64)[both]
    allowed = (tol.atol_for(want) + tol.rtol * np.abs(want64))[both]
    if diff.size == 0:
        return 0.0, 0.0, None
    max_abs = float(diff.max())
    ratio = float(np.max(diff / np.maximum(allowed, 1e-30)))
    if ratio <= 1.0:
        return max_abs, ratio, None
    count = int((diff > allowed).sum())
    return (
        max_abs,
        ratio,
        f"{where}: {count}/{diff.size} values off, max |diff| {max_abs:.3g} "
        f"(allowed {float(allowed.max()):.3g})",
    )


def compare_outputs(
    model: str | os.PathLike[str],
    inputs: Sequence[Sample],
    outputs: Sequence[Sample],
    *,
    quantized: bool | None = None,
) -> OutputComparison:
    """Run each sample input through :class:`zoo.runtime.InferenceSession` and compare with the
    stored sample output of the same index (see :mod:`zoo.verify.tolerance` for the bounds).

    ``quantized`` (default: any QDQ/QLinear op in the graph) picks the quantized tolerance.
    """
    if not inputs or not outputs:
        return OutputComparison(None, "no sample inputs and outputs to compare")
    if len(inputs) != len(outputs):
        return OutputComparison(
            False,
            f"{len(inputs)} sample inputs but {len(outputs)} sample outputs: they go in pairs",
        )
    from zoo.analysis.analyze import QUANT_OPS
    from zoo.analysis.load import load_model_safely
    from zoo.runtime import InferenceSession, UnsupportedOperator, ZooRuntimeError

    proto = load_model_safely(model).model
    if quantized is None:
        quantized = any(node.op_type in QUANT_OPS for node in proto.graph.node)
    tolerances = output_tolerances(proto, quantized)
    try:
        session = InferenceSession(model)
    except UnsupportedOperator as e:  # a gap in the runtime, not a defect of the model
        return OutputComparison(None, f"zoo.runtime cannot run this model: {e}")
    except ZooRuntimeError as e:
        return OutputComparison(False, f"zoo.runtime cannot load the model: {e}")
    in_names = [i.name for i in session.get_inputs()]
    out_names = [o.name for o in session.get_outputs()]
    max_abs = worst = 0.0
    failures: list[str] = []
    for index, (feeds, stored) in enumerate(zip(inputs, outputs, strict=True)):
        try:
            got = dict(zip(out_names, session.run(None, _by_name(feeds, in_names)), strict=True))
        except (ZooRuntimeError, ValueError, KeyError) as e:
            return OutputComparison(False, f"sample {index}: the model failed to run: {e}")
        for name, want in _by_name(stored, out_names).items():
            where = f"sample {index}, output '{name}'"
            err, ratio, failure = _compare_one(
                np.asarray(got[name]), np.asarray(want), tolerances[name], where
            )
            max_abs, worst = max(max_abs, err), max(worst, ratio)
            if failure:
                failures.append(failure)
    reasons = {name: t.reason for name, t in tolerances.items()}
    rule = "; ".join(sorted(set(reasons.values())))
    if failures:
        detail = f"{len(failures)} output(s) differ: {failures[0]} [{rule}]"
    else:
        detail = f"{len(inputs)} sample(s) reproduced, max |diff| {max_abs:.3g} [{rule}]"
    return OutputComparison(not failures, detail, len(inputs), max_abs, worst, reasons, failures)


def compare_folder(
    folder: str | os.PathLike[str], onnx_path: str = "model.onnx"
) -> OutputComparison:
    """:func:`compare_outputs` on a model folder in SparseZoo's layout (``model.onnx``,
    ``sample-inputs/*.npz``, ``sample-outputs/*.npz``)."""
    root = Path(folder)
    model = root / onnx_path
    if not model.is_file():
        return OutputComparison(None, f"no {onnx_path} to run")
    return compare_outputs(
        model, load_samples(root / "sample-inputs"), load_samples(root / "sample-outputs")
    )
