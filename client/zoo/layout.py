"""The model folder layout (SparseZoo's) and the rules for file paths inside a model.

Shared by the server (manifest validation, file types) and the client (cache snapshots,
publishing), so both sides refuse the same hostile paths.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

__all__ = ["InvalidFilePath", "file_type", "validate_file_path"]

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
# Printable, no separators other than "/", no shell or URL specials that need escaping games.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@,-]*")


class InvalidFilePath(ValueError):
    """A file path that is absolute, escapes its folder or has forbidden characters."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid file path {path!r}: {reason}")
        self.path = path
        self.reason = reason


def validate_file_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a model folder, else raise.

    >>> validate_file_path("deployment/model.onnx")
    'deployment/model.onnx'
    """
    if not path:
        raise InvalidFilePath(path, "it is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidFilePath(path[:80] + "...", f"longer than {MAX_PATH_LENGTH} characters")
    if "\x00" in path:
        raise InvalidFilePath(path, "it contains a NUL byte")
    if "\\" in path:
        raise InvalidFilePath(path, "use '/' as the separator, not backslashes")
    if path.startswith("/"):
        raise InvalidFilePath(path, "absolute paths are not allowed; give it relative to the model")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidFilePath(path, "empty, '.' and '..' segments are not allowed")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidFilePath(path, f"a segment is longer than {MAX_SEGMENT_LENGTH} characters")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidFilePath(
                path, f"segment {segment!r} may only hold letters, digits and _ . + = @ , -"
            )
    return path


_FOLDER_TYPES = {
    "deployment": "deployment",
    "training": "training",
    "recipe": "recipe",
    "sample-inputs": "inputs",
    "sample-outputs": "outputs",
    "sample-labels": "labels",
    "sample-originals": "originals",
    "logs": "logs",
}
_TOP_FILE_TYPES = {
    "model.md": "card",
    "benchmarks.yaml": "benchmark",
    "eval.yaml": "eval",
    "analysis.yaml": "analysis",
    "metrics.yaml": "metrics",
}


def file_type(path: str) -> str:
    """The SparseZoo file type of a path: onnx, deployment, training, recipe, inputs, outputs,
    labels, card, benchmark, eval, ... or ``other``.

    >>> file_type("model.onnx"), file_type("sample-inputs/inp-0000.npz")
    ('onnx', 'inputs')
    """
    parts = PurePosixPath(path).parts
    if len(parts) == 1:
        name = parts[0]
        if name.endswith(".onnx"):
            return "onnx"
        if name.startswith("sample-") and name.endswith((".tar.gz", ".tgz")):
            return _FOLDER_TYPES.get(name.split(".")[0], "other")
        return _TOP_FILE_TYPES.get(name, "other")
    return _FOLDER_TYPES.get(parts[0], "other")
