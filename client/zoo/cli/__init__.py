"""The ``zoo`` command."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer

from zoo.cli import analyze, auth, benchmark, cache, demo, download, publish, search, verify
from zoo.cli._common import Options

app = typer.Typer(
    name="zoo",
    help="OpenZoo: find, download, verify and publish optimized models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Hub URL (default: ZOO_ENDPOINT)")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Never touch the network (ZOO_OFFLINE=1)")
    ] = False,
) -> None:
    """OpenZoo: find, download, verify and publish optimized models."""
    ctx.obj = Options(endpoint=endpoint, offline=offline or None)


app.command("search")(search.search)
app.command("info")(search.info)
app.command("download")(download.download)
app.command("publish")(publish.publish)
app.command("alias")(publish.alias)
app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.add_typer(cache.cache_app, name="cache")
app.command("analyze")(analyze.analyze)
app.command("benchmark")(benchmark.benchmark)
app.command("verify")(verify.verify)
app.add_typer(demo.demo_app, name="demo")


_SERVER_COMMANDS = frozenset({"serve", "admin"})
_mounted = False


def mount_server_commands() -> bool:
    """Add ``zoo serve`` and ``zoo admin`` where the server extra is installed
    (``pip install 'openzoo[server]'``); True if they are there."""
    global _mounted
    if _mounted:
        return True
    try:
        server: Any = importlib.import_module("app.cli")
    except ImportError:
        return False
    app.command("serve")(server.serve)
    app.add_typer(server.admin_app, name="admin")
    _mounted = True
    return True


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``zoo`` console script."""
    args = sys.argv[1:] if argv is None else argv
    # The server package costs seconds to import (FastAPI, SQLAlchemy, boto3): only the server
    # commands and the top-level command list pay for it, never `zoo download`.
    if not args or set(args) & _SERVER_COMMANDS or args[0] in ("--help", "-h"):
        mount_server_commands()
    app(args=args)


__all__ = ["app", "main", "mount_server_commands"]
