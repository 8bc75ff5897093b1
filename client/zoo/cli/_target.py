"""Turn a command's ``STUB|PATH`` argument into a local ONNX file."""

from __future__ import annotations

from pathlib import Path

import typer

from zoo._model import Model
from zoo.cli._common import client


def local_onnx(ctx: typer.Context, target: str) -> Path:
    """A local .onnx file or model folder as given, or a stub's ``model.onnx`` (downloaded into
    the verified cache on first use). Raise client errors for ``fail_on_errors`` to report."""
    path = Path(target)
    if path.is_dir():
        return Model(path).onnx_model  # the folder's model.onnx, as for a downloaded stub
    if path.exists():
        return path
    if not target.startswith("zoo:"):
        raise typer.BadParameter(
            f"{target!r} is neither a local file or folder nor a stub (zoo:...)",
            param_hint="TARGET",
        )
    with client(ctx) as zoo_client:
        return Model(target, client=zoo_client).onnx_model
