"""``zoo search`` and ``zoo info``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from zoo.cli._common import client, fail_on_errors, human, out, print_json


def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="Text in name, stub or description")] = None,
    domain: Annotated[str | None, typer.Option(help="e.g. cv, nlp")] = None,
    task: Annotated[str | None, typer.Option(help="e.g. classification")] = None,
    architecture: Annotated[str | None, typer.Option(help="e.g. resnet_v1")] = None,
    framework: Annotated[str | None, typer.Option()] = None,
    dataset: Annotated[str | None, typer.Option(help="e.g. imagenet")] = None,
    sparse_tag: Annotated[str | None, typer.Option(help="e.g. pruned90-none")] = None,
    namespace: Annotated[str | None, typer.Option()] = None,
    min_sparsity: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    sort: Annotated[
        str, typer.Option(help="name, created, downloads, sparsity; '-' prefix for descending")
    ] = "name",
    limit: Annotated[int, typer.Option(min=1, help="Most results to show")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """Search the hub's models."""
    with fail_on_errors(), client(ctx) as c:
        models = list(
            c.search(
                q=query,
                domain=domain,
                task=task,
                architecture=architecture,
                framework=framework,
                dataset=dataset,
                sparse_tag=sparse_tag,
                namespace=namespace,
                min_sparsity=min_sparsity,
                sort=sort,
                limit=limit,
            )
        )
    if as_json:
        print_json([m.data for m in models])
        return
    if not models:
        out.print("no models match; loosen the filters or try 'zoo search' alone")
        return
    table = Table(box=None)
    # Stubs are copied into commands: fold them whole, never cut them with an ellipsis.
    table.add_column("stub", overflow="fold")
    table.add_column("path stub", overflow="fold")
    for name in ("latest", "sparsity", "downloads"):
        table.add_column(name, justify="right")
    for m in models:
        sparsity = "" if m.sparsity is None else f"{m.sparsity:.0%}"
        latest = "" if m.latest_version is None else str(m.latest_version)
        table.add_row(m.stub, m.path_stub or "", latest, sparsity, str(m.downloads))
    out.print(table)


def info(
    ctx: typer.Context,
    stub: Annotated[str, typer.Argument(help="Any stub: path, short or namespaced, @version")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """Show what a stub resolves to: the version, its files, sparsity and results."""
    with fail_on_errors(), client(ctx) as c:
        version = c.resolve(stub)
    if as_json:
        print_json(version.data)
        return
    model = version.model
    out.print(f"[bold]{version.stub}[/]  {model.display_name}", highlight=False)
    if model.path_stub:
        out.print(f"path stub  {model.path_stub}", highlight=False)
    sparsity = "unknown" if version.sparsity is None else f"{version.sparsity:.1%}"
    out.print(f"sparsity   {sparsity}   size {human(version.total_size)}", highlight=False)
    table = Table(box=None)
    table.add_column("path", overflow="fold")
    for name in ("type", "size", "sha256"):
        table.add_column(name)
    for f in version.files:
        table.add_row(f.path, f.file_type, human(f.size), f.sha256[:16])
    out.print(table)
    for b in version.data.get("benchmarks") or []:
        out.print(
            f"benchmark  {b['engine']} on {b['hardware']} ({b['cores']} cores, batch "
            f"{b['batch_size']}): {b['throughput']:.1f} items/s",
            highlight=False,
        )
    for e in version.data.get("evals") or []:
        out.print(f"eval       {e['dataset']} {e['metric']} = {e['value']}", highlight=False)
