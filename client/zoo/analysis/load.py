"""Load a model for analysis without letting it read files outside its own folder.

``onnx.load`` follows an external-data ``location`` wherever it points, so a downloaded model
could make us read ``/etc/passwd`` or ``../../secret`` (CVE-2024-27318 / CVE-2024-27319). We parse
with ``load_external_data=False`` and read each external tensor ourselves, after checking that
its location resolves (through symlinks) inside the model's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import ModelProto, TensorProto

from zoo._external_data import ExternalDataError, UnsafeLocation, all_tensors, read_external

__all__ = ["AnalysisError", "LoadedModel", "find_model_file", "load_model_safely"]


class AnalysisError(ValueError):
    """A model cannot be analysed: unreadable, not ONNX, or unsafe external data."""


@dataclass(frozen=True)
class LoadedModel:
    """A parsed model with its external data read, and its size on disk (bytes)."""

    model: ModelProto
    path: Path
    file_size: int


def find_model_file(target: Path) -> Path:
    """The .onnx file to analyse: ``target`` itself, or the main model of a model folder.

    A SparseZoo folder keeps ``model.onnx`` at its root and a copy in ``deployment/``; any other
    folder must hold exactly one .onnx file.
    """
    if not target.is_dir():
        return target
    for candidate in (target / "model.onnx", target / "deployment" / "model.onnx"):
        if candidate.is_file():
            return candidate
    found = sorted(target.rglob("*.onnx"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise AnalysisError(f"no .onnx file in folder {str(target)!r}")
    names = ", ".join(str(p.relative_to(target)) for p in found[:10])
    raise AnalysisError(
        f"folder {str(target)!r} holds several .onnx files ({names}): give the file to analyse"
    )


def load_model_safely(path: str | os.PathLike[str]) -> LoadedModel:
    """Parse ``path`` (a file or model folder) and read its external data from inside its folder.

    >>> loaded = load_model_safely("resnet50/model.onnx")  # doctest: +SKIP
    >>> loaded.file_size  # the .onnx file plus its external data files  # doctest: +SKIP
    102548392
    """
    file = find_model_file(Path(path))
    try:
        model = onnx.load(str(file), load_external_data=False)
    except FileNotFoundError as e:
        raise AnalysisError(f"no such file: {str(file)!r}") from e
    except Exception as e:  # protobuf raises DecodeError and friends
        raise AnalysisError(f"{str(file)!r} is not a readable ONNX model: {e}") from e
    base = file.resolve().parent
    size = file.stat().st_size
    seen: set[Path] = set()
    for tensor in all_tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        target = _read_external(tensor, base)
        if target not in seen:
            seen.add(target)
            size += target.stat().st_size
    return LoadedModel(model, file, size)


def _read_external(tensor: TensorProto, base: Path) -> Path:
    try:
        return read_external(tensor, base)
    except UnsafeLocation as e:
        raise AnalysisError(f"external data {e.location!r} refused: {e.reason}") from e
    except ExternalDataError as e:
        raise AnalysisError(str(e)) from e
