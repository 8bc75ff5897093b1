"""Measure and publish the demo catalog through the hub's public API (no database writes).

Each built folder gets ``benchmarks.yaml`` measured by ``zoo.runtime`` on this machine (batch 1
and 64, cached in the folder), then is published with its model card fields, lineage, eval and
benchmark results. A model whose latest version already carries this build's hash is skipped,
so restarting a hub with a built catalog costs one request per model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from zoo._client import ZooClient
from zoo._errors import NotFoundError
from zoo.demo.catalog import BuiltModel

__all__ = ["BENCHMARK_BATCHES", "measure_benchmarks", "publish_catalog"]

BENCHMARK_BATCHES = (1, 64)
BENCHMARKS_FILE = "benchmarks.yaml"


def measure_benchmarks(
    model: BuiltModel,
    *,
    seconds: float = 1.0,
    threads: int | None = None,
    batches: Sequence[int] = BENCHMARK_BATCHES,
) -> list[dict[str, Any]]:
    """``zoo.runtime`` throughput and latency at each batch size, written to benchmarks.yaml
    in the model folder (and read back from there when present: a built folder never changes)."""
    target = model.path / BENCHMARKS_FILE
    if target.exists():
        loaded = yaml.safe_load(target.read_text()) or {}
        return list(loaded.get("benchmarks", []))
    from zoo.runtime import benchmark  # numba and the kernels: only the build pays for them

    results = []
    for batch in batches:
        r = benchmark(
            model.path / "model.onnx", batch_size=batch, seconds=seconds, warmup=1, threads=threads
        )
        results.append(
            {
                "engine": r.engine,
                "engine_version": r.engine_version,
                "hardware": f"{r.hardware.cpu_model} ({' '.join(r.hardware.isa)})",
                "cores": r.threads or r.hardware.logical_cores,
                "batch_size": r.batch_size,
                "scenario": "sync",
                "throughput": r.items_per_second,
                "latency_mean_ms": r.latency_mean_ms,
                "latency_p50_ms": r.latency_p50_ms,
                "latency_p90_ms": r.latency_p90_ms,
                "latency_p99_ms": r.latency_p99_ms,
                "measured_by": "zoo demo build",
            }
        )
    tmp = target.with_name(f".{BENCHMARKS_FILE}.{os.getpid()}")
    tmp.write_text(yaml.safe_dump({"benchmarks": results}, sort_keys=False))
    tmp.replace(target)
    return results


def _already_published(client: ZooClient, namespace: str, model: BuiltModel) -> bool:
    try:
        version = client.resolve(f"zoo:{namespace}/{model.name}@latest")
    except NotFoundError:
        return False
    return bool(version.data.get("meta", {}).get("demo_build") == model.input_hash)


def publish_catalog(
    client: ZooClient,
    models: Sequence[BuiltModel],
    *,
    namespace: str = "openzoo",
    benchmark_seconds: float = 1.0,
    progress: Callable[[str], None] = print,
) -> list[str]:
    """Benchmark and publish ``models`` (bases first, as build_catalog orders them); returns
    the stubs published now (already published ones are skipped)."""
    published = []
    for model in models:
        benchmarks = measure_benchmarks(model, seconds=benchmark_seconds)
        if _already_published(client, namespace, model):
            continue
        fields: dict[str, Any] = {
            "description": model.description,
            "license": model.license,
            "tags": list(model.tags),
        }
        if model.base_model:
            fields["base_model"] = model.base_model
        version = client.publish(
            model.path,
            model.stub,
            namespace=namespace,
            display_name=model.display_name,
            message="published by zoo demo build",
            model_fields=fields,
            meta={"demo_build": model.input_hash, "sparsity_claim": round(model.sparsity, 4)},
        )
        for result in model.eval_results:
            client.add_eval(version.stub, **result)
        for result in benchmarks:
            client.add_benchmark(version.stub, **result)
        published.append(version.stub)
        progress(f"published {model.stub} as {version.stub}")
    return published


def default_build_dir() -> Path:
    """Where ``zoo demo build`` keeps built folders (``ZOO_DEMO_DIR``, else the user cache)."""
    env = os.environ.get("ZOO_DEMO_DIR")
    return Path(env) if env else Path.home() / ".cache" / "zoo" / "demo-build"
