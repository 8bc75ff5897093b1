"""Typed views of the hub's JSON bodies (the raw body stays available as ``.data``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FileInfo", "ModelInfo", "VersionInfo"]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file of a version: where it sits in the model folder, its size and sha256."""

    path: str
    size: int
    sha256: str
    file_type: str = "other"
    url: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileInfo:
        return cls(
            path=str(d["path"]),
            size=int(d["size"]),
            sha256=str(d["sha256"]),
            file_type=str(d.get("file_type") or "other"),
            url=str(d.get("url") or ""),
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model as the hub lists it (``zoo search``, ``ZooClient.get_model``)."""

    namespace: str
    name: str
    stub: str
    path_stub: str | None
    display_name: str
    description: str
    latest_version: int | None
    sparsity: float | None
    quantized: bool
    downloads: int
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelInfo:
        return cls(
            namespace=str(d["namespace"]),
            name=str(d["name"]),
            stub=str(d.get("stub") or f"zoo:{d['namespace']}/{d['name']}"),
            path_stub=d.get("path_stub"),
            display_name=str(d.get("display_name") or d["name"]),
            description=str(d.get("description") or ""),
            latest_version=d.get("latest_version"),
            sparsity=d.get("sparsity"),
            quantized=bool(d.get("quantized")),
            downloads=int(d.get("downloads") or 0),
            data=d,
        )


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A ready version with its files, recipes, sparsity and results."""

    namespace: str
    name: str
    number: int
    files: tuple[FileInfo, ...]
    sparsity: float | None
    data: dict[str, Any] = field(repr=False, compare=False)

    @property
    def stub(self) -> str:
        """The exact stub of this version, ``zoo:NS/NAME@N``."""
        return f"zoo:{self.namespace}/{self.name}@{self.number}"

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def model(self) -> ModelInfo:
        return ModelInfo.from_json(self.data["model"])

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VersionInfo:
        model = d["model"]
        return cls(
            namespace=str(model["namespace"]),
            name=str(model["name"]),
            number=int(d["number"]),
            files=tuple(FileInfo.from_json(f) for f in d.get("files") or []),
            sparsity=d.get("sparsity"),
            data=d,
        )
