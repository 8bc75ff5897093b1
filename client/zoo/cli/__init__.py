"""The ``zoo`` command."""

from __future__ import annotations

import importlib
from typing import Any

import typer

app = typer.Typer(
    name="zoo",
    help="OpenZoo: find, download, verify and publish optimized models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _server_module() -> Any:
    # zoo never imports the server package at import time: `zoo serve` and `zoo admin` exist
    # only where the server extra is installed (pip install 'openzoo[server]').
    try:
        return importlib.import_module("app.cli")
    except ImportError:
        return None


_server = _server_module()
if _server is not None:
    app.command("serve")(_server.serve)
    app.add_typer(_server.admin_app, name="admin")


def main() -> None:
    """Entry point of the ``zoo`` console script."""
    app()


__all__ = ["app", "main"]
