"""Checks at commit: every .onnx file parses, passes the ONNX checker, keeps its external data
inside the version, and gets analysed (zoo.analysis); a sparsity the stub's tag or the version's
metadata claims must match what the weights show."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from app.errors import InvalidOnnx, SparsityMismatch
from app.orm import Version
from app.storage import Storage, blob_key
from zoo.analysis import analyze_model
from zoo.layout import InvalidFilePath, validate_file_path
from zoo.verify.claims import SPARSITY_TOLERANCE, tag_sparsity


@dataclass(frozen=True)
class VersionReport:
    """What commit learned about a version's ONNX files.

    ``sparsity`` is over the prunable layers of every file; None without a measured one.
    """

    sparsity: float | None
    quantized: bool
    profile: dict[str, Any] | None


@dataclass(frozen=True)
class SparsityClaim:
    """A sparsity someone asserted, and where (shown in the refusal)."""

    value: float
    source: str


def tag_claim(sparse_tag: str | None) -> SparsityClaim | None:
    """The sparsity a SparseZoo tag claims (parsed by ``zoo.verify``, which ``zoo verify`` shares);
    a tag without a number claims nothing.

    ``pruned95_quant-none`` -> 0.95; ``base-none``, ``pruned-none``, ``pruned_quant`` -> None
    """
    value = tag_sparsity(sparse_tag)
    if value is None:
        return None
    return SparsityClaim(value, f"the stub's sparse tag '{sparse_tag}'")


def meta_claim(meta: dict[str, Any]) -> SparsityClaim | None:
    """The ``sparsity`` of a version's metadata: a fraction in [0, 1] or a percentage in (1, 100].

    A value that is neither is refused rather than ignored: it is a claim nobody can check.
    """
    if "sparsity" not in meta or meta["sparsity"] is None:
        return None
    raw = meta["sparsity"]
    text = raw.strip().removesuffix("%") if isinstance(raw, str) else raw
    try:
        value = float(text) if not isinstance(text, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 100.0:  # also catches NaN
        raise SparsityMismatch(
            f"meta 'sparsity' is {str(raw)[:50]!r}: give a fraction in [0, 1] or a percentage "
            "in [0, 100], or leave it out (the hub measures sparsity itself)",
            details={"source": "meta", "claimed": str(raw)[:50]},
        )
    if value > 1.0 or (isinstance(raw, str) and raw.strip().endswith("%")):
        value /= 100
    return SparsityClaim(value, f"meta 'sparsity' ({raw})")


def check_claims(version: Version, measured: float | None) -> None:
    """Refuse a version whose tag or metadata claims a sparsity more than 2 points off."""
    claims = [tag_claim(version.model.sparse_tag), meta_claim(version.meta or {})]
    for claim in claims:
        if claim is None or measured is None:
            continue
        if abs(claim.value - measured) > SPARSITY_TOLERANCE:
            raise SparsityMismatch(
                f"{claim.source} claims {claim.value:.1%} sparsity, but the weights are "
                f"{measured:.1%} sparse over the prunable layers (more than "
                f"{SPARSITY_TOLERANCE * 100:g} percentage points apart): publish the pruned "
                "weights, or fix the claim",
                details={
                    "claimed": claim.value,
                    "measured": measured,
                    "source": claim.source,
                    "tolerance": SPARSITY_TOLERANCE,
                },
            )


def recipe_name(path: str) -> str:
    """The ``?recipe=`` name of a recipe file.

    ``recipe/recipe_transfer_learn.md`` -> ``transfer_learn``;
    ``recipe/original.yaml`` -> ``original``
    """
    stem = PurePosixPath(path).name.split(".")[0]
    return stem.removeprefix("recipe_") or stem


@contextmanager
def _local_copy(storage: Storage, key: str) -> Iterator[Path]:
    path = storage.local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
        target = Path(tmp) / "model.onnx"
        with target.open("wb") as out:
            for chunk in storage.read_range(key):
                out.write(chunk)
        yield target


def _check_external_data(model: onnx.ModelProto, onnx_path: str, paths: set[str]) -> None:
    folder = PurePosixPath(onnx_path).parent
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key != "location":
                continue
            location = entry.value
            try:
                validate_file_path(location)
            except InvalidFilePath as e:
                raise InvalidOnnx(
                    f"{onnx_path}: tensor '{tensor.name}' keeps its data at {location!r}, "
                    f"outside the model's folder ({e.reason})",
                    details={"path": onnx_path, "location": location},
                ) from e
            target = str(folder / location) if str(folder) != "." else location
            if target not in paths:
                raise InvalidOnnx(
                    f"{onnx_path}: tensor '{tensor.name}' keeps its data in '{location}', "
                    "which is not a file of this version: add it to the upload",
                    details={"path": onnx_path, "location": location},
                )


def validate_version(storage: Storage, version: Version, *, keys: dict[str, str]) -> VersionReport:
    """Check every .onnx file of a version whose blobs are verified.

    ``keys`` maps the sha256 of blobs verified in this commit to the private key holding them;
    other blobs are already stored under their blob key.
    """
    paths = {f.path for f in version.files}
    sparsities: list[tuple[int, int]] = []
    unmeasured = False
    quantized = False
    profile: dict[str, Any] = {}
    for f in version.files:
        if f.file_type != "onnx" and not f.path.endswith(".onnx"):
            continue
        key = keys.get(f.sha256) or blob_key(f.sha256)
        with _local_copy(storage, key) as local:
            try:
                model = onnx.load(str(local), load_external_data=False)
            except (DecodeError, ValueError, RuntimeError, OSError) as e:
                raise InvalidOnnx(
                    f"{f.path} is not a readable ONNX model: {e}", details={"path": f.path}
                ) from e
        _check_external_data(model, f.path, paths)
        try:
            onnx.checker.check_model(model)
        except (onnx.checker.ValidationError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InvalidOnnx(
                f"{f.path} fails the ONNX checker: {first}", details={"path": f.path}
            ) from e
        # External data is not loaded here (it is other files of the version): weights kept
        # there are listed as unmeasured in the profile.
        analysis = analyze_model(model, file_size=f.size)
        profile[f.path] = analysis.to_dict()
        quantized = quantized or analysis.quantized
        unmeasured = unmeasured or bool(analysis.unmeasured)
        sparsities.append((analysis.prunable_zeros, analysis.prunable_params))
    if not profile:
        check_claims(version, None)
        return VersionReport(None, False, None)
    zeros = sum(z for z, _ in sparsities)
    params = sum(p for _, p in sparsities)
    # Nothing measured because the weights are external: no number rather than a wrong 0.
    sparsity = zeros / params if params else (None if unmeasured else 0.0)
    check_claims(version, sparsity)
    return VersionReport(sparsity, quantized, profile)
