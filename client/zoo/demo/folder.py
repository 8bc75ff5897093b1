"""Write one model folder in SparseZoo's layout from what a builder produced.

The writer, not the builder, decides the facts that a hub checks: it measures the sparsity
with the hub's own analysis (:mod:`zoo.analysis`), derives the sparse tag from that
measurement, computes the sample outputs with onnxruntime (an engine independent of ours)
and validates the stub. A builder cannot claim what its model does not have.
"""

from __future__ import annotations

import importlib
import io
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import yaml

from zoo._publish import short_name
from zoo.stubs import parse_stub, path_stub

__all__ = [
    "Artifacts",
    "BuildError",
    "FolderFacts",
    "Measured",
    "StubParts",
    "measure",
    "run_onnx",
    "write_folder",
]

Array = npt.NDArray[Any]
REPO = "openzoo"
LICENSE = "apache-2.0"
MAX_NAME = 100  # the hub's limit on a model name (the short stub)
TAG_TOLERANCE = 0.02  # the hub refuses a tag more than 2 points from the measured sparsity


class BuildError(RuntimeError):
    """A built model does not meet the catalog's rules (sparsity, stub, outputs)."""


@dataclass(frozen=True)
class StubParts:
    """The stub fields that do not depend on the built weights."""

    domain: str
    task: str
    architecture: str
    sub_architecture: str | None
    framework: str
    dataset: str


@dataclass
class Artifacts:
    """What a builder hands to :func:`write_folder`."""

    model: onnx.ModelProto
    parts: StubParts
    nominal_sparsity: float | None  # None: dense (tag ``base``)
    quantized: bool
    samples: list[dict[str, Array]]
    display_name: str
    description: str
    how_made: str  # markdown paragraphs for the card body
    recipe: str | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    base_stub: str | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict)
    synthetic: bool = False


@dataclass(frozen=True)
class FolderFacts:
    """What the writer measured and decided."""

    stub: str
    name: str
    sparse_tag: str
    sparsity: float
    quantized: bool


@dataclass(frozen=True)
class Measured:
    """Zeros over the prunable weights (every weighted layer but embedding tables)."""

    layers: list[tuple[str, int, int]]  # (weight name, params, zeros)
    quantized: bool

    @property
    def params(self) -> int:
        return sum(p for _, p, _ in self.layers)

    @property
    def zeros(self) -> int:
        return sum(z for _, _, z in self.layers)

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


def measure(model: onnx.ModelProto) -> Measured:
    """The hub's measurement of the prunable weights (what a ``prunedNN`` tag speaks of).

    Uses ``zoo.analysis.analyze_model``; with the older ``measure_sparsity`` API it applies
    the same rule (Gather tables, i.e. embeddings, are not prunable weights).
    """
    analysis: Any = importlib.import_module("zoo.analysis")
    if hasattr(analysis, "analyze_model"):
        a = analysis.analyze_model(model)
        layers = [(x.weight, int(x.params), int(x.zeros)) for x in a.prunable]
        return Measured(layers, bool(a.quantized))
    m = analysis.measure_sparsity(model)
    layers = [(x.weight, int(x.params), int(x.zeros)) for x in m.layers if x.op_type != "Gather"]
    return Measured(layers, bool(m.quantized))


def run_onnx(
    model: onnx.ModelProto | bytes, feeds: Sequence[Mapping[str, Array]], *, threads: int = 1
) -> list[dict[str, Array]]:
    """Outputs of onnxruntime on each feed, keyed by the graph's output names."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: "unused initializer" notes are not news here
    data = model if isinstance(model, bytes) else model.SerializeToString()
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(names, dict(feed)), strict=True)) for feed in feeds]


def sparse_tag(measured: float, nominal: float | None, quantized: bool) -> str:
    """``base-none`` for dense, else ``prunedNN[_quant]-none`` with NN from the measurement."""
    if nominal is None:
        return "base_quant-none" if quantized else "base-none"
    if abs(measured - nominal) > TAG_TOLERANCE:
        raise BuildError(
            f"measured sparsity {measured:.2%} is more than {TAG_TOLERANCE:.0%} from the "
            f"recipe's {nominal:.0%}: check which layers the recipe prunes"
        )
    return f"pruned{round(measured * 100)}{'_quant' if quantized else ''}-none"


def make_stub(parts: StubParts, tag: str) -> tuple[str, str]:
    """The path stub text and its short name, both checked the way the hub checks them."""
    stub = path_stub(
        domain=parts.domain,
        task=parts.task,
        architecture=parts.architecture,
        sub_architecture=parts.sub_architecture,
        framework=parts.framework,
        repo=REPO,
        dataset=parts.dataset,
        sparse_tag=tag,
    )
    text = str(stub)
    name = short_name(parse_stub(text))
    if len(name) > MAX_NAME:
        raise BuildError(f"short name {name!r} is longer than {MAX_NAME} characters")
    return text, name


def _npz(arrays: Mapping[str, Array]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _card(a: Artifacts, facts: FolderFacts, measured: Measured) -> str:
    front: dict[str, Any] = {
        "domain": a.parts.domain,
        "task": a.parts.task,
        "architecture": a.parts.architecture,
        "sub_architecture": a.parts.sub_architecture,
        "framework": a.parts.framework,
        "repo": REPO,
        "dataset": a.parts.dataset,
        "sparse_tag": facts.sparse_tag,
        "license": LICENSE,
        "display_name": a.display_name,
        "stub": facts.stub,
        "base_model": a.base_stub,
        "tags": a.tags,
        "sparsity": round(facts.sparsity, 4),
        "quantized": facts.quantized,
        "synthetic_weights": a.synthetic,
    }
    front |= {e["metric"]: e["value"] for e in a.evals}
    front = {k: v for k, v in front.items() if v is not None}
    dense_layers = [name for name, _, zeros in measured.layers if zeros == 0]
    facts_md = [
        f"- Stub: `{facts.stub}` (short: `zoo:{facts.name}`)",
        f"- Prunable layers: {len(measured.layers)}, weights {measured.params:,}, zeros "
        f"{measured.zeros:,}: **{facts.sparsity:.2%} sparse** (measured on `model.onnx` by "
        "`zoo.analysis`; embedding tables are not counted)",
    ]
    if facts.sparsity > 0 and dense_layers:
        facts_md.append(f"- Left dense: {', '.join(f'`{n}`' for n in dense_layers[:8])}")
    facts_md += [
        f"- {e['metric']} on {e['dataset']} ({e['split']}): **{e['value']:.4f}**, measured by "
        f"{e.get('measured_by', 'the builder')}"
        for e in a.evals
    ]
    if a.synthetic:
        facts_md.append("- Weights are synthetic (seeded random): **no accuracy is claimed**.")
    facts_md.append(
        "- Sample outputs (`sample-outputs/`) were computed by onnxruntime on `sample-inputs/`."
    )
    body = "\n".join(facts_md)
    return (
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n"
        f"# {a.display_name}\n\n{a.description}\n\n## How it was made\n\n{a.how_made.strip()}\n\n"
        f"## Facts\n\n{body}\n"
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    # The deployment copy is byte-identical: a hard link saves the space of big models.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_folder(folder: Path, a: Artifacts, *, threads: int = 1) -> FolderFacts:
    """Write every file of the model folder; return the measured facts."""
    measured = measure(a.model)
    tag = sparse_tag(measured.sparsity, a.nominal_sparsity, a.quantized)
    stub, name = make_stub(a.parts, tag)
    if a.quantized != measured.quantized:
        raise BuildError(f"{name}: quantized={a.quantized} but the graph says otherwise")
    facts = FolderFacts(stub, name, tag, measured.sparsity, measured.quantized)
    onnx.checker.check_model(a.model)
    data = a.model.SerializeToString()
    outputs = run_onnx(data, a.samples, threads=threads)

    files: dict[str, bytes] = {}
    for i, (inp, out) in enumerate(zip(a.samples, outputs, strict=True)):
        files[f"sample-inputs/inp-{i:04d}.npz"] = _npz(inp)
        files[f"sample-outputs/out-{i:04d}.npz"] = _npz(out)
    if a.recipe is not None:
        files["recipe/recipe_original.yaml"] = a.recipe.encode()
    if a.evals:
        files["eval.yaml"] = yaml.safe_dump({"evals": a.evals}, sort_keys=False).encode()
    files["model.md"] = _card(a, facts, measured).encode()
    files |= a.extra_files
    (folder / "deployment").mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(data)
    _link_or_copy(folder / "model.onnx", folder / "deployment" / "model.onnx")
    for path, content in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return facts
