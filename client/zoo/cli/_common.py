"""What every command shares: the client from the global options, error exits, progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from zoo._client import ZooClient
from zoo._config import ZooConfig
from zoo._errors import InvalidStubError, ModelNotFoundError, ZooError

# Also ``out`` and ``err``, made on first use (see ``__getattr__``).
__all__ = [
    "Options",
    "byte_progress",
    "client",
    "fail_on_errors",
    "human",
    "print_json",
]

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Console:
    # ``out`` (stdout) and ``err`` (stderr), rich consoles made on first use: importing rich
    # costs more start-up time than `zoo download --quiet` spends printing.
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _consoles:
        from rich.console import Console

        if name == "err":
            _consoles[name] = Console(stderr=True)
        else:
            # Piped output is read by tools (grep, awk): no wrapping at 80 columns.
            _consoles[name] = Console() if sys.stdout.isatty() else Console(width=240)
    return _consoles[name]


@dataclass
class Options:
    """Global options (``zoo --endpoint URL --offline COMMAND``)."""

    endpoint: str | None = None
    offline: bool | None = None


def client(ctx: typer.Context) -> ZooClient:
    """A client for this invocation: global options over the environment."""
    opts = ctx.find_object(Options) or Options()
    config = ZooConfig.from_env(endpoint=opts.endpoint, offline=opts.offline or None)
    return ZooClient(config=config)


@contextmanager
def fail_on_errors() -> Iterator[None]:
    """Turn client errors into exit 1 with the message (no traceback), bad stubs into exit 2."""
    try:
        yield
    except InvalidStubError as e:
        raise typer.BadParameter(str(e), param_hint="STUB") from e
    except ZooError as e:
        err = __getattr__("err")
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        shown = isinstance(e, ModelNotFoundError) and any(s in str(e) for s in e.suggestions)
        if isinstance(e, ModelNotFoundError) and e.suggestions and not shown:
            err.print("did you mean: " + ", ".join(e.suggestions), highlight=False)
        raise typer.Exit(1) from e
    except KeyboardInterrupt:
        __getattr__("err").print("interrupted; nothing partial was kept in the cache")
        raise typer.Exit(130) from None


def show_progress(quiet: bool) -> bool:
    """Progress bars only for a person watching: a terminal, and no --quiet."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def byte_progress(enabled: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bytes progress bar on stderr; yields the callback that advances it (thread-safe)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=__getattr__("err"),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def human(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def print_json(data: Any) -> None:
    """JSON for scripts on stdout (never mixed with progress, which goes to stderr)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
