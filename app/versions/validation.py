"""Checks at commit: every .onnx file parses, passes the ONNX checker, keeps its external data
inside the version, and gets its sparsity measured."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from app.errors import InvalidOnnx
from app.orm import Version
from app.storage import Storage, blob_key
from zoo.analysis import measure_sparsity
from zoo.layout import InvalidFilePath, validate_file_path


@dataclass(frozen=True)
class VersionReport:
    """What commit learned about a version's ONNX files."""

    sparsity: float | None
    quantized: bool
    profile: dict[str, Any] | None


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
    sparsities = []
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
        measured = measure_sparsity(model)
        profile[f.path] = measured.to_dict()
        quantized = quantized or measured.quantized
        if measured.params:
            sparsities.append((measured.zeros, measured.params))
    if not profile:
        return VersionReport(None, False, None)
    zeros = sum(z for z, _ in sparsities)
    params = sum(p for _, p in sparsities)
    return VersionReport(zeros / params if params else 0.0, quantized, profile)
