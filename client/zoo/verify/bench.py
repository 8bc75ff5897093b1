"""The benchmark check: a short run on this machine against the stored result for the nearest
hardware. Machines differ, so the ratio is information unless ``strict`` asks for a floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.verify.report import Check

__all__ = ["STRICT_MIN_RATIO", "check_benchmark", "nearest_benchmark"]

# Under --strict, this machine must reach half the stored throughput: a slower model than
# claimed by 2x is not noise.
STRICT_MIN_RATIO = 0.5


def nearest_benchmark(
    stored: list[dict[str, Any]], *, batch_size: int, cpu_model: str, cores: int, engine: str
) -> dict[str, Any] | None:
    """The stored result to compare with: same batch size; then the same CPU model, the same
    core count and the same engine, in that order of preference."""
    same_batch = [
        b for b in stored if b.get("batch_size") == batch_size and _throughput(b) is not None
    ]
    if not same_batch:
        return None

    def score(b: dict[str, Any]) -> tuple[bool, bool, bool]:
        hardware = str(b.get("hardware") or "")
        same_cpu = bool(cpu_model) and cpu_model.lower() in hardware.lower()
        return same_cpu, b.get("cores") == cores, str(b.get("engine") or "").startswith(engine)

    return max(same_batch, key=score)


def _throughput(b: dict[str, Any]) -> float | None:
    value = b.get("throughput", b.get("items_per_second"))
    return float(value) if isinstance(value, int | float) and value > 0 else None


def check_benchmark(
    model: Path | None, stored: list[dict[str, Any]], *, seconds: float, strict: bool
) -> Check:
    """Run ``zoo.runtime.benchmark`` (batch 1) for ``seconds`` and compare with ``stored``."""
    if model is None:
        return Check("benchmark", "skip", "no ONNX model to run")
    if seconds <= 0:
        return Check("benchmark", "skip", "not run (benchmark time 0)")
    from zoo.runtime import ZooRuntimeError, benchmark

    try:
        result = benchmark(model, batch_size=1, seconds=seconds, warmup=1)
    except (ZooRuntimeError, RuntimeError, ValueError) as e:
        return Check("benchmark", "fail" if strict else "info", f"the model failed to run: {e}")
    hw = result.hardware
    numbers: dict[str, Any] = {
        "items_per_second": result.items_per_second,
        "latency_mean_ms": result.latency_mean_ms,
        "hardware": hw.cpu_model,
        "cores": hw.logical_cores,
        "batch_size": 1,
    }
    here = f"{result.items_per_second:,.1f} items/s on {hw.cpu_model} ({hw.logical_cores} cores)"
    ref = nearest_benchmark(
        stored, batch_size=1, cpu_model=hw.cpu_model, cores=hw.logical_cores, engine="zoo"
    )
    if ref is None:
        return Check("benchmark", "info", f"{here}; no stored batch-1 result to compare", numbers)
    ref_tp = _throughput(ref)
    assert ref_tp is not None  # nearest_benchmark keeps only results with a throughput
    ratio = result.items_per_second / ref_tp
    numbers.update(
        ratio=ratio,
        stored_items_per_second=ref_tp,
        stored_hardware=ref.get("hardware"),
        stored_cores=ref.get("cores"),
        stored_engine=ref.get("engine"),
    )
    detail = (
        f"{here}: {ratio:.2f}x the stored {ref_tp:,.1f} items/s "
        f"({ref.get('engine')}, {ref.get('hardware')}, {ref.get('cores')} cores)"
    )
    if not strict:
        return Check("benchmark", "info", detail, numbers)
    if ratio < STRICT_MIN_RATIO:
        return Check("benchmark", "fail", f"{detail}; below {STRICT_MIN_RATIO}x", numbers)
    return Check("benchmark", "pass", detail, numbers)
