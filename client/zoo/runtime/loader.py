"""Load an ONNX model, reading external-data tensors only from inside the model's folder.

External data is resolved here rather than by ``onnx.load``: a location that is absolute,
walks up with ``..`` or resolves (through symlinks) outside the folder is refused with
:class:`UnsafeExternalData` (the CVE-2024-27318 / CVE-2024-27319 class of path traversal).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from onnx import GraphProto, ModelProto, TensorProto

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
    external = [t for t in _all_tensors(proto.graph) if _is_external(t)]
    if external:
        if base is None:
            raise InvalidModel(
                "the model references external data but was given without a folder; pass the "
                "model's file path instead of bytes or a ModelProto"
            )
        if isinstance(model, ModelProto):  # never mutate the caller's proto
            proto = ModelProto()
            proto.CopyFrom(model)
            external = [t for t in _all_tensors(proto.graph) if _is_external(t)]
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


def _all_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every tensor: initializers, sparse initializers, Constant attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for g in attr.graphs:
                yield from _all_tensors(g)


def safe_external_path(base: Path, location: str) -> Path:
    """Resolve ``location`` under ``base`` or raise :class:`UnsafeExternalData`."""
    if not location:
        raise UnsafeExternalData(location, "the location is empty")
    if (
        os.path.isabs(location)
        or PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
        or location.startswith(("\\", "/"))
    ):
        raise UnsafeExternalData(location, "the location is an absolute path")
    parts = PureWindowsPath(location).parts  # splits on both / and \
    if ".." in parts:
        raise UnsafeExternalData(location, "the location contains '..'")
    root = base.resolve()
    target = (root / location).resolve()
    # resolve() follows symlinks, so a link inside the folder pointing out is caught here.
    if not target.is_relative_to(root):
        raise UnsafeExternalData(location, f"it resolves to {str(target)!r}, outside the folder")
    return target


def _load_external(tensor: TensorProto, base: Path) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    path = safe_external_path(base, location)
    offset = int(info.get("offset", 0) or 0)
    try:
        size = path.stat().st_size
        length = int(info["length"]) if info.get("length") else size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise InvalidModel(
                f"external data for tensor {tensor.name!r} asks bytes {offset}..{offset + length} "
                f"of {location!r}, which has {size} bytes"
            )
        with path.open("rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
    except OSError as e:
        raise InvalidModel(
            f"cannot read external data {location!r} for {tensor.name!r}: {e}"
        ) from e
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT
