"""``zoo publish`` and ``zoo alias``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli._common import byte_progress, client, fail_on_errors, out, print_json, show_progress


def publish(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The model folder (model.onnx, recipe/, ...)")],
    stub: Annotated[
        str,
        typer.Option("--stub", help="A path stub, zoo:NS/NAME, or a short name with --namespace"),
    ],
    namespace: Annotated[str | None, typer.Option("--namespace", help="Namespace")] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="What changed")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """Publish a folder as a new version (the model is created if missing); blobs the hub
    already has are not sent again."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    bar = byte_progress(
        show_progress(quiet), f"publish {folder.name}", sum(p.stat().st_size for p in files)
    )
    with fail_on_errors(), client(ctx) as c, bar as advance:
        version = c.publish(folder, stub, namespace=namespace, message=message, progress=advance)
    if as_json:
        print_json(version.data)
    else:
        out.print(f"published {version.stub}", highlight=False)


def alias(
    ctx: typer.Context,
    stub: Annotated[str, typer.Argument(help="The model (any stub form)")],
    name: Annotated[str, typer.Argument(help="The alias, e.g. stable")],
    version: Annotated[int, typer.Argument(min=1, help="The version number it points at")],
) -> None:
    """Point an alias of a model at a version."""
    with fail_on_errors(), client(ctx) as c:
        c.set_alias(stub, name, version)
    out.print(f"{name} -> {version}")
