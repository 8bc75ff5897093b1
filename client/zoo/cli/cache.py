"""``zoo cache ls|rm|verify``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from zoo._client import parse
from zoo.cli._common import client, err, fail_on_errors, human, out, print_json

cache_app = typer.Typer(help="Inspect and clean the local cache.", no_args_is_help=True)


@cache_app.command("ls")
def ls(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """List cached versions."""
    with fail_on_errors(), client(ctx) as c:
        entries = list(c.cache.snapshots())
        total = c.cache.size()
        root = c.cache.root
    if as_json:
        print_json(
            [
                {
                    "stub": e.stub,
                    "path": str(e.path),
                    "files": e.files,
                    "present": e.present,
                    "size": e.size,
                }
                for e in entries
            ]
        )
        return
    table = Table(box=None)
    table.add_column("stub", overflow="fold")
    table.add_column("files")
    table.add_column("size")
    table.add_column("path", overflow="fold")
    for e in entries:
        table.add_row(e.stub, f"{e.present}/{e.files}", human(e.size), str(e.path))
    out.print(table)
    out.print(f"{len(entries)} versions, {human(total)} of blobs in {root}", highlight=False)


@cache_app.command("rm")
def rm(
    ctx: typer.Context,
    stub: Annotated[str, typer.Argument(help="zoo:NS/NAME (every version) or zoo:NS/NAME@N")],
) -> None:
    """Remove a model's (or one version's) snapshot and the blobs nothing else uses."""
    with fail_on_errors(), client(ctx) as c:
        s = parse(stub)
        if s.form != "namespaced" or s.version_is_alias:
            raise typer.BadParameter("use zoo:NS/NAME or zoo:NS/NAME@N", param_hint="STUB")
        assert s.namespace is not None and s.repo_name is not None
        number = s.version if isinstance(s.version, int) else None
        freed = c.cache.remove(s.namespace, s.repo_name, number)
    out.print(f"removed {stub}; freed {human(freed)}", highlight=False)


@cache_app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Re-hash every cached blob; corrupt ones are deleted (exit 1 if any was found)."""
    bad = 0
    count = 0
    with fail_on_errors(), client(ctx) as c:
        for sha, ok in c.cache.verify():
            count += 1
            if not ok:
                bad += 1
                err.print(f"[red]corrupt[/] blob {sha} deleted; download again to restore it")
    out.print(f"{count} blobs checked, {bad} corrupt", highlight=False)
    if bad:
        raise typer.Exit(1)
