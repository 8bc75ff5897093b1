"""The checks of ``zoo verify``, each a small function from a :class:`Subject` to a :class:`Check`.

A subject is a model folder on disk (a local folder, or a downloaded version's snapshot)
with what is known about it: the manifest it should match, its sparse tag, its benchmarks.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo._cache import hash_file
from zoo._types import FileInfo
from zoo.verify.claims import SPARSITY_TOLERANCE, card_front_matter, card_sparsity, tag_sparsity
from zoo.verify.report import Check, Status

__all__ = [
    "Subject",
    "check_hashes",
    "check_onnx",
    "check_outputs",
    "check_recipe",
    "check_sparsity",
    "main_onnx",
]


@dataclass
class Subject:
    """A model folder to verify.

    ``expected`` is the manifest the files must match (None: only report their hashes);
    ``hash_paths`` maps a manifest path to the file to hash (a downloaded version: the cached
    blob, so a corrupted blob is caught even if its snapshot link looks fine).
    """

    root: Path
    files: list[str]
    expected: list[FileInfo] | None = None
    expected_source: str = ""
    hash_paths: dict[str, Path] = field(default_factory=dict)
    sparse_tag: str | None = None
    benchmarks: list[dict[str, Any]] = field(default_factory=list)
    measured_sparsity: float | None = None  # filled by check_sparsity, reused by check_recipe

    @property
    def card(self) -> dict[str, Any]:
        card = self.root / "model.md"
        return card_front_matter(_text(card)) if card.is_file() else {}

    def paths(self, suffix: str = "", under: str = "") -> list[str]:
        return sorted(p for p in self.files if p.endswith(suffix) and p.startswith(under))


def main_onnx(subject: Subject) -> Path | None:
    """``model.onnx``, else the first top-level .onnx, else ``deployment/model.onnx``."""
    onnx_files = subject.paths(".onnx")
    top = [p for p in onnx_files if "/" not in p]
    for candidate in ("model.onnx", *top, "deployment/model.onnx"):
        if candidate in onnx_files:
            return subject.root / candidate
    return None


def check_hashes(subject: Subject) -> Check:
    """Re-hash every file against the manifest, or report the hashes when there is none."""
    if subject.expected is None:
        hashes = {p: hash_file(subject.root / p)[0] for p in subject.files}
        return Check(
            "sha256",
            "info",
            f"{len(hashes)} files hashed; no manifest to check them against "
            "(a folder from 'zoo download' carries one)",
            {"files": len(hashes), "hashes": hashes},
        )
    bad: list[str] = []
    missing: list[str] = []
    hashes = {}
    for f in subject.expected:
        path = subject.hash_paths.get(f.path, subject.root / f.path)
        if not path.is_file():
            missing.append(f.path)
            continue
        digest, size = hash_file(path)
        hashes[f.path] = digest
        if digest != f.sha256 or size != f.size:
            bad.append(f.path)
    numbers = {"files": len(subject.expected), "mismatched": bad, "missing": missing}
    if bad or missing:
        parts = [f"{len(bad)} differ ({', '.join(bad[:5])})"] if bad else []
        parts += [f"{len(missing)} missing ({', '.join(missing[:5])})"] if missing else []
        return Check(
            "sha256",
            "fail",
            f"{' and '.join(parts)} against {subject.expected_source}: delete the cached copy "
            "('zoo cache verify' drops corrupt blobs) and download again",
            numbers,
        )
    return Check(
        "sha256",
        "pass",
        f"{len(subject.expected)} files match {subject.expected_source}",
        {**numbers, "hashes": hashes},
    )


def check_onnx(subject: Subject) -> Check:
    """The ONNX checker on every .onnx file (loaded with external data from its own folder)."""
    import onnx

    from zoo.analysis import AnalysisError
    from zoo.analysis.load import load_model_safely

    paths = subject.paths(".onnx")
    if not paths:
        return Check("onnx", "fail", "no .onnx file in the model", {"files": 0})
    errors: dict[str, str] = {}
    for path in paths:
        try:
            onnx.checker.check_model(load_model_safely(subject.root / path).model)
        except (AnalysisError, onnx.checker.ValidationError, ValueError, OSError) as e:
            text = str(e).strip()
            errors[path] = text.splitlines()[0] if text else type(e).__name__
    numbers = {"files": len(paths), "errors": errors}
    if errors:
        first = next(iter(errors.items()))
        return Check(
            "onnx", "fail", f"{len(errors)}/{len(paths)} fail: {first[0]}: {first[1]}", numbers
        )
    return Check("onnx", "pass", f"{len(paths)} file(s) pass the ONNX checker", numbers)


def check_outputs(subject: Subject) -> Check:
    """Sample inputs through zoo.runtime vs the stored outputs (:mod:`zoo.verify.outputs`)."""
    from zoo.verify.outputs import compare_outputs, load_samples

    model = main_onnx(subject)
    if model is None:
        return Check("outputs", "skip", "no ONNX model to run")
    try:
        inputs = load_samples(subject.root / "sample-inputs")
        outputs = load_samples(subject.root / "sample-outputs")
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # a damaged npz is a finding
        return Check("outputs", "fail", f"cannot read the sample npz files: {e}")
    from zoo.analysis import AnalysisError

    try:
        result = compare_outputs(model, inputs, outputs)
    except AnalysisError as e:
        return Check("outputs", "fail", f"cannot load the model: {e}")
    status: Status = "skip" if result.ok is None else "pass" if result.ok else "fail"
    return Check("outputs", status, result.detail, result.to_dict())


def _claims(subject: Subject) -> list[tuple[str, float]]:
    claims = []
    tag = tag_sparsity(subject.sparse_tag)
    if tag is not None:
        claims.append((f"tag '{subject.sparse_tag}'", tag))
    card = card_sparsity(subject.card)
    if card is not None:
        claims.append(("model.md front matter", card))
    return claims


def check_sparsity(subject: Subject) -> Check:
    """Measured sparsity of the main model's prunable layers vs every claim (2 points)."""
    from zoo.analysis import AnalysisError, analyze_model

    model = main_onnx(subject)
    if model is None:
        return Check("sparsity", "skip", "no ONNX model to measure")
    try:
        measured = analyze_model(model).sparsity
    except AnalysisError as e:
        return Check("sparsity", "fail", f"cannot measure the weights: {e}")
    subject.measured_sparsity = measured
    claims = _claims(subject)
    numbers: dict[str, Any] = {"measured": measured, "tolerance": SPARSITY_TOLERANCE}
    numbers["claims"] = {source: value for source, value in claims}
    if not claims:
        return Check(
            "sparsity", "info", f"measured {measured:.1%}; nothing claims a sparsity", numbers
        )
    off = [(s, v) for s, v in claims if abs(v - measured) > SPARSITY_TOLERANCE]
    said = ", ".join(f"{v:.1%} ({s})" for s, v in claims)
    if off:
        return Check(
            "sparsity",
            "fail",
            f"measured {measured:.1%}, claimed {said}: more than "
            f"{SPARSITY_TOLERANCE * 100:g} points apart",
            numbers,
        )
    return Check("sparsity", "pass", f"measured {measured:.1%}, claimed {said}", numbers)


def check_recipe(subject: Subject) -> Check:
    """Every recipe parses; the main one's final sparsity matches the weights (2 points)."""
    from zoo.verify.recipe import recipe_target

    paths = [p for p in subject.paths(under="recipe/") if p.endswith((".yaml", ".yml", ".md"))]
    if not paths:
        return Check("recipe", "skip", "no recipe/ in the model")
    targets = {p: recipe_target(_text(subject.root / p)) for p in paths}
    errors = {p: t.error for p, t in targets.items() if t.error}
    numbers: dict[str, Any] = {
        "recipes": {p: t.sparsity for p, t in targets.items()},
        "measured": subject.measured_sparsity,
        "tolerance": SPARSITY_TOLERANCE,
    }
    if errors:
        path, error = next(iter(errors.items()))
        return Check("recipe", "fail", f"{path} does not parse: {error}", numbers)
    main = _main_recipe(paths)
    target = targets[main].sparsity
    if target is None:
        return Check(
            "recipe", "pass", f"{len(paths)} recipe(s) parse; {main} prunes nothing", numbers
        )
    if subject.measured_sparsity is None:
        return Check(
            "recipe", "info", f"{main} targets {target:.1%}; weights not measured", numbers
        )
    measured = subject.measured_sparsity
    detail = f"{main} targets {target:.1%}, weights are {measured:.1%}"
    if abs(target - measured) > SPARSITY_TOLERANCE:
        return Check("recipe", "fail", f"{detail}: more than 2 points apart", numbers)
    return Check("recipe", "pass", detail, numbers)


def _text(path: Path) -> str:
    # A damaged byte must show up as a parse failure here, not as a crash.
    return path.read_text(encoding="utf-8", errors="replace")


def _main_recipe(paths: Sequence[str]) -> str:
    for p in paths:
        if p.rsplit("/", 1)[-1].split(".")[0].removeprefix("recipe_") == "original":
            return p
    return paths[0]
