"""Load an ONNX model, reading external-data tensors only from inside the model's folder.

External data is resolved here rather than by ``onnx.load``: a location that is absolute,
walks up with ``..`` or resolves (through symlinks) outside the folder is refused with
:class:`UnsafeExternalData` (the CVE-2024-27318 / CVE-2024-27319 class of path traversal).
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import ModelProto, TensorProto

from zoo._external_data import (
    ExternalDataError,
    UnsafeLocation,
    all_tensors,
    read_external,
    safe_location,
)
from zoo.runtime.errors import InvalidModel, UnsafeExternalData

__all__ = ["ModelSource", "load_model", "safe_external_path"]

ModelSource = str | os.PathLike[str] | bytes | ModelProto


def load_model(model: ModelSource) -> ModelProto:
    """Parse ``model`` (path, serialized bytes or ModelProto) with its external data loaded.

    A ModelProto or bytes carry no folder: external tensors in them must already be loaded.
    """
    if isinstance(model, ModelProto):
        proto, base = model, None
    elif isinstance(model, bytes | bytearray):
        proto, base = _parse(bytes(model), "<bytes>"), None
    else:
        path = Path(model)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InvalidModel(f"cannot read model file {str(path)!r}: {e}") from e
        proto, base = _parse(data, str(path)), path.resolve().parent
    external = [t for t in all_tensors(proto.graph) if _is_external(t)]
    if external:
        if base is None:
            raise InvalidModel(
                "the model references external data but was given without a folder; pass the "
                "model's file path instead of bytes or a ModelProto"
            )
        if isinstance(model, ModelProto):  # never mutate the caller's proto
            proto = ModelProto()
            proto.CopyFrom(model)
            external = [t for t in all_tensors(proto.graph) if _is_external(t)]
        for tensor in external:
            _load_external(tensor, base)
    return proto


def _parse(data: bytes, where: str) -> ModelProto:
    try:
        return onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise InvalidModel(f"{where} is not a valid ONNX model: {e}") from e


def _is_external(tensor: TensorProto) -> bool:
    return bool(tensor.HasField("data_location") and tensor.data_location == TensorProto.EXTERNAL)


def safe_external_path(base: Path, location: str) -> Path:
    """Resolve ``location`` under ``base`` or raise :class:`UnsafeExternalData`."""
    try:
        return safe_location(base, location)
    except UnsafeLocation as e:
        raise UnsafeExternalData(location, e.reason) from e


def _load_external(tensor: TensorProto, base: Path) -> None:
    try:
        read_external(tensor, base)
    except UnsafeLocation as e:
        raise UnsafeExternalData(e.location, e.reason) from e
    except ExternalDataError as e:
        raise InvalidModel(str(e)) from e
