"""``zoo benchmark``: throughput and latency of a model on this machine, deepsparse-style."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

from zoo.cli._common import err, fail_on_errors, out, print_json
from zoo.cli._target import local_onnx

ENGINES = ("zoo", "zoo-dense", "onnxruntime")


def benchmark(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A stub, a local .onnx file or a model folder")],
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 1,
    engine: Annotated[
        str, typer.Option(help="zoo (sparse kernels), zoo-dense, or onnxruntime (if installed)")
    ] = "zoo",
    seconds: Annotated[float, typer.Option(min=0.1, help="How long to measure")] = 10.0,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs first")] = 2,
    threads: Annotated[int | None, typer.Option(min=1, help="Default: all cores")] = None,
    json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """Run a model repeatedly; print items/s and latency percentiles with the hardware."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    from zoo.runtime import ZooRuntimeError  # numba and the kernels: only this command loads them
    from zoo.runtime import benchmark as run_benchmark

    with fail_on_errors():
        path = local_onnx(ctx, target)
    # a spinner on a terminal only (rich shows nothing otherwise): a model's first run
    # compiles the kernels its plan uses, 1-60 s with nothing else to see
    from rich.markup import escape

    status = (
        f"planning {escape(target)}; its first run compiles the kernels it needs (cached for "
        f"later runs), then {seconds:g} s of measurement"
        if engine != "onnxruntime"
        else f"measuring {escape(target)} for {seconds:g} s"
    )
    try:
        with err.status(status):
            result = run_benchmark(
                path,
                batch_size=batch_size,
                seconds=seconds,
                warmup=warmup,
                threads=threads,
                engine=engine,
            )
    except (ZooRuntimeError, RuntimeError, ValueError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from e
    if json:
        print_json(dataclasses.asdict(result))
        return
    hw = result.hardware
    table = Table(title=f"{target} (batch {result.batch_size})", box=None, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in (
        ("engine", f"{result.engine} {result.engine_version}"),
        ("throughput", f"{result.items_per_second:,.2f} items/s"),
        ("latency mean", f"{result.latency_mean_ms:.3f} ms"),
        (
            "latency p50 / p90 / p99",
            f"{result.latency_p50_ms:.3f} / {result.latency_p90_ms:.3f}"
            f" / {result.latency_p99_ms:.3f} ms",
        ),
        ("latency std", f"{result.latency_std_ms:.3f} ms"),
        ("iterations", f"{result.iterations} in {result.seconds:.1f} s"),
        ("hardware", f"{hw.cpu_model} ({hw.logical_cores} cores, {' '.join(hw.isa)})"),
        ("threads", str(result.threads or hw.logical_cores)),
    ):
        table.add_row(name, value)
    out.print(table)
