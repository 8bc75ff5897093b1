"""Reading ONNX external data only from inside the model's folder (onnx and the stdlib only).

``onnx.load`` follows an external-data ``location`` wherever it points (the CVE-2024-27318 /
CVE-2024-27319 class of path traversal). The runtime's loader and the analysis both read
external tensors through :func:`read_external` instead, and wrap its errors in their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from onnx import GraphProto, TensorProto

__all__ = ["ExternalDataError", "UnsafeLocation", "all_tensors", "read_external", "safe_location"]


class UnsafeLocation(ValueError):
    """An external-data location that is empty, absolute, or leads outside the folder."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"unsafe external data location {location!r}: {reason}")
        self.location = location
        self.reason = reason


class ExternalDataError(ValueError):
    """External data that cannot be read (missing file, offset/length past its end)."""


def all_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every tensor: initializers, sparse initializers, tensor attributes, subgraphs."""
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
                yield from all_tensors(attr.g)
            for g in attr.graphs:
                yield from all_tensors(g)


def safe_location(base: Path, location: str) -> Path:
    """``location`` resolved under ``base``, or :class:`UnsafeLocation`."""
    if not location:
        raise UnsafeLocation(location, "the location is empty")
    if (
        os.path.isabs(location)
        or PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
        or location.startswith(("\\", "/"))
    ):
        raise UnsafeLocation(location, "the location is an absolute path")
    if ".." in PureWindowsPath(location).parts:  # splits on both / and \
        raise UnsafeLocation(location, "the location contains '..': it walks out of the folder")
    root = base.resolve()
    target = (root / location).resolve()
    # resolve() follows symlinks, so a link inside the folder pointing out is caught here.
    if not target.is_relative_to(root):
        raise UnsafeLocation(location, f"it resolves to {str(target)!r}, outside the folder")
    return target


def read_external(tensor: TensorProto, base: Path) -> Path:
    """Load ``tensor``'s external bytes from under ``base`` into ``raw_data``; the file read."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    path = safe_location(base, location)
    try:
        size = path.stat().st_size
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise ExternalDataError(
                f"external data for tensor {tensor.name!r} asks bytes {offset}..{offset + length} "
                f"of {location!r}, which has {size} bytes"
            )
        with path.open("rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
    except (OSError, ValueError) as e:
        if isinstance(e, ExternalDataError):
            raise
        raise ExternalDataError(
            f"cannot read external data {location!r} for {tensor.name!r}: {e}"
        ) from e
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT
    return path
