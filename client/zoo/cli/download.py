"""``zoo download``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zoo.cli import _common
from zoo.cli._common import (
    byte_progress,
    client,
    fail_on_errors,
    human,
    print_json,
    show_progress,
)


def download(
    ctx: typer.Context,
    stub: Annotated[str, typer.Argument(help="What to download, e.g. zoo:ns/name@3")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Copy the files here (default: cache only)")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Only paths matching this glob")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip paths matching this glob")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be fetched, fetch nothing")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """Download a model version into the verified cache (and optionally a folder)."""
    with fail_on_errors(), client(ctx) as c:
        plan = c.plan(stub, include or (), exclude or ())
        missing = {f.path for f in plan.missing}
        if dry_run:
            rows = [
                {
                    "path": f.path,
                    "size": f.size,
                    "sha256": f.sha256,
                    "cached": f.path not in missing,
                }
                for f in plan.files
            ]
            if as_json:
                print_json(
                    {"stub": plan.version.stub, "files": rows, "fetch_bytes": plan.fetch_bytes}
                )
                return
            out = _common.out  # rich is imported here, not for every download
            for r in rows:
                state = "cached" if r["cached"] else "fetch "
                size = human(float(str(r["size"])))
                out.print(f"{state}  {size:>10}  {r['path']}", highlight=False)
            out.print(
                f"{plan.version.stub}: {len(plan.files)} files, {human(plan.total_bytes)}; "
                f"would fetch {len(missing)} ({human(plan.fetch_bytes)})",
                highlight=False,
            )
            return
        with byte_progress(show_progress(quiet), plan.version.stub, plan.fetch_bytes) as advance:
            path = c.download(
                plan.version.stub,
                include=include or (),
                exclude=exclude or (),
                directory=directory,
                progress=advance,
            )
    if as_json:
        print_json(
            {"stub": plan.version.stub, "path": str(path), "fetched_bytes": plan.fetch_bytes}
        )
    else:
        sys.stdout.write(f"{path}\n")  # a path as it is: no rich markup, wrapping or emoji
