"""``zoo analyze``: what a model's weights really are (sparsity, 4-blocks, quantization, FLOPs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from zoo.cli._common import err, fail_on_errors, human, out, print_json
from zoo.cli._target import local_onnx

if TYPE_CHECKING:
    from zoo.analysis import ModelAnalysis


def _count(n: int) -> str:
    """12_345_678 -> '12.3M' (params and FLOPs are read at a glance, the JSON has them exact)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _layer_table(analysis: ModelAnalysis) -> Table:
    table = Table(title="weighted layers", box=None)
    table.add_column("node", overflow="fold")
    table.add_column("op")
    table.add_column("shape")
    for name in ("params", "sparsity", "block4", "dtype", "FLOPs", "sparse FLOPs"):
        table.add_column(name, justify="right")
    for layer in analysis.layers:
        dtype = f"{layer.dtype}{' per-ch' if layer.per_channel else ''}"
        table.add_row(
            layer.node,
            layer.op_type,
            "x".join(map(str, layer.shape)),
            _count(layer.params),
            f"{layer.sparsity:.1%}",
            f"{layer.block4_sparsity:.1%}",
            dtype,
            "?" if layer.dense_flops is None else _count(layer.dense_flops),
            "?" if layer.sparse_flops is None else _count(layer.sparse_flops),
        )
    return table


def _summary_table(analysis: ModelAnalysis) -> Table:
    table = Table(title="model", box=None, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    dense, sparse = analysis.dense_flops, analysis.sparse_flops
    bound = "" if analysis.flops_complete else " (some layers' shapes unknown: a lower bound)"
    rows = [
        ("parameters", f"{analysis.total_params:,}"),
        ("prunable parameters", f"{analysis.prunable_params:,}"),
        ("sparsity (prunable layers)", f"{analysis.sparsity:.1%}"),
        ("4-block sparsity", f"{analysis.block4_sparsity:.1%}"),
        ("quantized weights", f"{analysis.quantized_fraction:.1%}"),
        ("dense FLOPs (batch 1, 2 per multiply-add)", f"{_count(dense)}{bound}"),
        ("FLOPs skipping zeros", f"{_count(sparse)} ({sparse / dense:.1%})" if dense else "0"),
        ("file size", human(analysis.file_size)),
    ]
    if analysis.unmeasured:
        rows.append(("not measured (external data)", ", ".join(analysis.unmeasured[:5])))
    for row in rows:
        table.add_row(*row)
    return table


def analyze(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A stub, a local .onnx file or a model folder")],
    json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """Measure a model's weights: per-layer sparsity, 4-blocks, quantization and FLOPs."""
    from zoo.analysis import AnalysisError, analyze_model  # onnx: only this command pays for it

    with fail_on_errors():
        path = local_onnx(ctx, target)
    try:
        analysis = analyze_model(path)
    except AnalysisError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from e
    if json:
        print_json(analysis.to_dict())
        return
    if analysis.layers:
        out.print(_layer_table(analysis))
    else:
        out.print("no weighted layers (Conv, Gemm, MatMul, embeddings) with constant weights")
    out.print(_summary_table(analysis))
