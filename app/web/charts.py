"""Chart geometry for inline SVG drawn on the server (no chart library, nothing fetched by the
browser). Functions here turn numbers into pixel positions; the templates draw them, so every
label goes through Jinja's escaping."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.web.service import Row

# Layer chart: one horizontal bar per weighted layer.
LABEL_WIDTH = 220
BAR_WIDTH = 360
ROW_HEIGHT = 18
MAX_LAYERS = 300


@dataclass(frozen=True)
class Bar:
    """One layer's bar: its row, width in pixels and what the tooltip says."""

    y: int
    width: float
    label: str
    name: str
    op_type: str
    sparsity: float
    params: int
    quantized: bool


@dataclass(frozen=True)
class LayerChart:
    """The per-layer sparsity of one ONNX file."""

    path: str
    also: list[str]  # other files with the same analysis (deployment/model.onnx, usually)
    bars: list[Bar]
    height: int
    width: int
    omitted: int  # layers past MAX_LAYERS, not drawn
    summary: dict[str, Any]


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def layer_charts(profile: dict[str, Any] | None) -> list[LayerChart]:
    """One chart per analysed file of a version's ``sparsity_profile`` (see zoo.analysis)."""
    charts: list[LayerChart] = []
    drawn: dict[str, LayerChart] = {}
    # Top-level files first: model.onnx is the one a reader means.
    for path, analysis in sorted((profile or {}).items(), key=lambda p: (p[0].count("/"), p[0])):
        if not isinstance(analysis, dict):
            continue
        key = repr(sorted(analysis.items()))
        if key in drawn:  # the same weights published twice: one chart, both names
            drawn[key].also.append(path)
            continue
        layers = [layer for layer in analysis.get("layers", []) if isinstance(layer, dict)]
        bars = []
        for i, layer in enumerate(layers[:MAX_LAYERS]):
            sparsity = float(layer.get("sparsity") or 0.0)
            name = str(layer.get("node") or layer.get("weight") or f"layer {i}")
            bars.append(
                Bar(
                    y=i * ROW_HEIGHT,
                    width=round(BAR_WIDTH * min(max(sparsity, 0.0), 1.0), 1),
                    label=_short(name),
                    name=name,
                    op_type=str(layer.get("op_type", "")),
                    sparsity=sparsity,
                    params=int(layer.get("params") or 0),
                    quantized=bool(layer.get("quantized")),
                )
            )
        summary = {k: v for k, v in analysis.items() if k != "layers"}
        drawn[key] = LayerChart(
            path=path,
            also=[],
            bars=bars,
            height=len(bars) * ROW_HEIGHT + 24,
            width=LABEL_WIDTH + BAR_WIDTH + 70,
            omitted=max(len(layers) - MAX_LAYERS, 0),
            summary=summary,
        )
        charts.append(drawn[key])
    return charts


# Scatter panels of the compare view.
PLOT_W, PLOT_H = 420, 240
MARGIN_L, MARGIN_B, MARGIN_T, MARGIN_R = 64, 44, 12, 16


@dataclass(frozen=True)
class Point:
    """A model in a scatter panel."""

    x: float
    y: float
    label: str
    title: str
    url: str
    quantized: bool
    anchor: str  # "start" (label right of the point) or "end" (left of it, near the edge)


@dataclass(frozen=True)
class Panel:
    """One scatter panel: sparsity across, a measure up."""

    title: str
    y_label: str
    points: list[Point]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    missing: int  # variants without this measure
    width: int = PLOT_W + MARGIN_L + MARGIN_R
    height: int = PLOT_H + MARGIN_T + MARGIN_B
    left: int = MARGIN_L
    top: int = MARGIN_T
    plot_w: int = PLOT_W
    plot_h: int = PLOT_H


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < high:  # the last tick is at or above the highest value
        ticks.append(round(start + len(ticks) * step, 10))
    return ticks


def _panel(
    title: str,
    y_label: str,
    rows: Sequence[Row],
    measure: list[float | None],
    fmt: str,
    scale: float = 1.0,
) -> Panel:
    known = [(r, m) for r, m in zip(rows, measure, strict=True) if m is not None]
    values = [m for _, m in known]
    # Throughput starts at zero, so heights compare as ratios; accuracies differ by a point or
    # two, so their axis zooms on the band the variants occupy.
    floor = 0.0 if fmt == "n" else min(values, default=0.0) * 0.98
    ticks = _nice_ticks(floor, max(values, default=1.0))  # at least two, low < high
    low, high = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return round(MARGIN_T + PLOT_H - (v - low) / (high - low) * PLOT_H, 1)

    def x_of(s: float) -> float:
        return round(MARGIN_L + min(max(s, 0.0), 1.0) * PLOT_W, 1)

    points = [
        Point(
            x=x_of(r.sparsity or 0.0),
            y=y_of(m),
            label=r.sparse_tag or r.name,
            title=f"{r.name}: sparsity {(r.sparsity or 0) * 100:.1f}%, {y_label} "
            + (f"{m * scale:.2f}%" if fmt == "%" else f"{m:,.1f}"),
            url=r.url,
            quantized=r.quantized,
            anchor="end" if (r.sparsity or 0.0) > 0.7 else "start",
        )
        for r, m in known
    ]
    x_ticks = [(x_of(t / 100), f"{t}%") for t in range(0, 101, 20)]
    y_ticks = [(y_of(t), f"{t * scale:g}%" if fmt == "%" else f"{t:,g}") for t in ticks]
    return Panel(title, y_label, points, x_ticks, y_ticks, len(rows) - len(known))


def compare_panels(rows: Sequence[Row]) -> list[Panel]:
    """Sparsity against throughput, and sparsity against accuracy, for the same variants."""
    throughput = [r.throughput for r in rows]
    accuracy = [r.accuracy.fraction if r.accuracy else None for r in rows]
    return [
        _panel("Throughput by sparsity", "throughput (items/s)", rows, throughput, "n"),
        _panel("Accuracy by sparsity", "accuracy", rows, accuracy, "%", scale=100),
    ]
