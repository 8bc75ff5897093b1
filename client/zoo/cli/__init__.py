"""The ``zoo`` command.

Start-up time is part of every command's time (``zoo download`` is benchmarked against curl),
so :func:`main` imports only the module of the command it runs: ``zoo download`` never loads
rich tables, the analysis code or the server package. ``app``, the whole command with every
subcommand (for ``--help``, tests and typer's CliRunner), is built on first access.
"""

from __future__ import annotations

import gc
import importlib
import sys
import types
from collections.abc import Iterable
from typing import Annotated, Any

import typer

from zoo.cli._common import Options

# Subcommand -> (module under zoo.cli, attribute, whether it is a group), in --help order.
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "search": ("search", "search", False),
    "info": ("search", "info", False),
    "download": ("download", "download", False),
    "publish": ("publish", "publish", False),
    "alias": ("publish", "alias", False),
    "login": ("auth", "login", False),
    "logout": ("auth", "logout", False),
    "cache": ("cache", "cache_app", True),
    "analyze": ("analyze", "analyze", False),
    "benchmark": ("benchmark", "benchmark", False),
    "verify": ("verify", "verify", False),
    "demo": ("demo", "demo_app", True),
}
_SERVER_COMMANDS = frozenset({"serve", "admin"})


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


def build_app(commands: Iterable[str] | None = None) -> typer.Typer:
    """The ``zoo`` command with the given subcommands (all of them by default), importing
    only their modules."""
    wanted = set(_COMMANDS if commands is None else commands)
    names = [c for c in _COMMANDS if c in wanted]
    built = typer.Typer(
        name="zoo",
        help="OpenZoo: find, download, verify and publish optimized models.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    built.callback()(_global_options)
    for name in names:
        module, attribute, group = _COMMANDS[name]
        target = getattr(importlib.import_module(f"zoo.cli.{module}"), attribute)
        if group:
            built.add_typer(target, name=name)
        else:
            built.command(name)(target)
    return built


_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    # ``from zoo.cli import app``: the full command, built once, on first use.
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = build_app()
    return _app


def mount_server_commands(target: typer.Typer | None = None) -> bool:
    """Add ``zoo serve`` and ``zoo admin`` (to ``app`` by default) where the server extra is
    installed (``pip install 'openzoo[server]'``); True if they are there."""
    target = target if target is not None else __getattr__("app")
    if any(c.name == "serve" for c in target.registered_commands):
        return True
    try:
        server: Any = importlib.import_module("app.cli")
    except ImportError:
        return False
    target.command("serve")(server.serve)
    target.add_typer(server.admin_app, name="admin")
    return True


def _command_name(args: list[str]) -> str | None:
    """The subcommand ``args`` run (what follows the global options), if any."""
    i = 0
    while i < len(args):
        if args[i] == "--endpoint":
            i += 2
        elif args[i] == "--offline" or args[i].startswith("--endpoint="):
            i += 1
        else:
            return args[i]
    return None


def _skip_httpx_cli() -> None:
    """Keep ``import httpx`` from importing httpx's own command-line tool.

    httpx's ``__init__`` imports ``httpx._main`` (click, rich, pygments: ~90 ms, as much as
    the rest of httpx) whenever those happen to be installed, and falls back to a stub on
    ImportError. A placeholder module without ``main`` takes that documented fallback. Only
    in the `zoo` process, which never runs httpx's CLI; a library user's imports are untouched.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``zoo`` console script."""
    args = sys.argv[1:] if argv is None else argv
    name = _command_name(args)
    if name in _COMMANDS:
        _skip_httpx_cli()
        command = build_app([name])
    elif name in _SERVER_COMMANDS:
        # The server package costs seconds to import (FastAPI, SQLAlchemy, boto3): only the
        # server commands and the full command list pay for it.
        command = build_app([])
        mount_server_commands(command)
    else:  # no command, --help, a typo: the full list (and typer's "did you mean")
        command = __getattr__("app")
        if name is None or name in ("--help", "-h"):
            mount_server_commands(command)
    try:
        command(args=args)
    finally:
        # On exit the interpreter runs full collections over every object of every module it
        # imported (typer brings pydantic): ~50 ms, a fifth of `zoo download`'s start-up. What
        # is alive then goes with the process: freeze it out of those passes. atexit handlers
        # and flushing still run; the commands close what they open (with blocks).
        gc.freeze()


__all__ = ["app", "build_app", "main", "mount_server_commands"]
