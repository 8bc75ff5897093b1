"""``zoo verify``: check a model against its own claims, one line per check."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from zoo._model import Model
from zoo.cli._common import client, fail_on_errors, out, print_json

_STYLE = {"pass": "green", "fail": "bold red", "skip": "dim", "info": "cyan"}


def verify(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A stub (downloaded first) or a model folder")],
    json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail when this machine runs under 0.5x the benchmark")
    ] = False,
    bench_seconds: Annotated[
        float, typer.Option("--bench-seconds", min=0.0, help="Benchmark time; 0 skips it")
    ] = 1.0,
) -> None:
    """Re-hash the files, run the ONNX checker, reproduce the sample outputs, compare sparsity
    with the tag, card and recipe, and time the model. Exit 1 when a check fails."""
    from zoo.verify import verify_model  # onnx and the runtime: only this command loads them

    with fail_on_errors(), ExitStack() as stack:
        if Path(target).is_dir():
            model = Model(Path(target))
        elif target.startswith("zoo:"):
            model = Model(target, client=stack.enter_context(client(ctx)))
        else:
            raise typer.BadParameter(
                f"{target!r} is neither a model folder nor a stub (zoo:...)", param_hint="TARGET"
            )
        report = verify_model(model, strict=strict, bench_seconds=bench_seconds)
    if json:
        print_json(report.to_dict())
    else:
        for check in report.checks:
            status = f"[{_STYLE[check.status]}]{check.status.upper():<4}[/]"
            out.print(f"{status}  {check.name:<9}  {escape(check.detail)}", highlight=False)
        verdict = "ok" if report.ok else "FAILED: " + ", ".join(c.name for c in report.failed)
        out.print(f"{report.target}: {verdict}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)
