"""``zoo demo build``: build the demo catalog offline and publish it through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli._common import client, err, fail_on_errors, out

demo_app = typer.Typer(
    help="The demo catalog: real models built on this machine.", no_args_is_help=True
)


@demo_app.command("build")
def build(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Build folder (default ZOO_DEMO_DIR or ~/.cache/zoo/demo-build)"
        ),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Build only these model ids (and their bases)")
    ] = None,
    namespace: Annotated[str, typer.Option(help="Namespace to publish into")] = "openzoo",
    publish: Annotated[
        bool,
        typer.Option("--publish/--no-publish", help="Publish to the hub (needs a write token)"),
    ] = True,
) -> None:
    """Train/build the demo models (cached), benchmark them with zoo.runtime, publish them."""
    try:
        from zoo.demo import build_catalog
        from zoo.demo.publish import default_build_dir, publish_catalog
    except ImportError as e:  # pragma: no cover - depends on the install
        err.print(
            f"[bold red]error:[/] the demo needs its extra: pip install 'openzoo[demo]' ({e})"
        )
        raise typer.Exit(1) from e
    models = build_catalog(
        out_dir or default_build_dir(),
        only=only or None,
        progress=lambda s: err.print(s, highlight=False),
    )
    out.print(f"{len(models)} models built in {out_dir or default_build_dir()}")
    if publish:
        with fail_on_errors(), client(ctx) as zoo_client:
            stubs = publish_catalog(
                zoo_client,
                models,
                namespace=namespace,
                progress=lambda s: err.print(s, highlight=False),
            )
        out.print(f"{len(stubs)} published, {len(models) - len(stubs)} already on the hub")
