"""Throughput and latency benchmark, reported the way ``deepsparse.benchmark`` does.

Example::

    from zoo.runtime import benchmark
    result = benchmark("model.onnx", batch_size=16, seconds=10)
    print(f"{result.items_per_second:.1f} items/s, p99 {result.latency_p99_ms:.2f} ms")
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from onnx import ModelProto

from zoo.runtime.errors import ZooRuntimeError
from zoo.runtime.graph import ValueSpec
from zoo.runtime.loader import ModelSource, load_model
from zoo.runtime.registry import Array
from zoo.runtime.session import InferenceSession

__all__ = ["ENGINES", "BenchmarkResult", "HardwareInfo", "benchmark", "hardware_info"]

ENGINES = ("zoo", "zoo-dense", "onnxruntime")
# ISA flags worth reporting: they decide which BLAS / sparse code paths a CPU can run.
_ISA = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "asimd",
    "sve",
)


@dataclass(frozen=True)
class HardwareInfo:
    """The CPU the benchmark ran on."""

    cpu_model: str
    logical_cores: int
    physical_cores: int | None
    isa: tuple[str, ...]
    machine: str


@dataclass(frozen=True)
class BenchmarkResult:
    """Throughput and latency of one engine on one model (latencies in milliseconds)."""

    engine: str
    engine_version: str
    batch_size: int
    iterations: int
    seconds: float
    items_per_second: float
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_std_ms: float
    threads: int | None
    hardware: HardwareInfo
    inputs: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``zoo benchmark --json`` and result uploads)."""
        return asdict(self)


def hardware_info(cpuinfo: str | None = None) -> HardwareInfo:
    """CPU model, core counts and ISA flags (from /proc/cpuinfo on Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model = ""
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    physical = core = ""
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Model Name", "cpu model") and not model:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
    return HardwareInfo(
        cpu_model=model or platform.processor() or "unknown",
        logical_cores=os.cpu_count() or 1,
        physical_cores=len(cores) or None,
        isa=tuple(f for f in _ISA if f in flags),
        machine=platform.machine(),
    )


def _random_input(spec: ValueSpec, batch_size: int, rng: np.random.Generator) -> Array:
    """An input for ``spec``: the first dynamic dim is the batch, other dynamic dims are 1."""
    shape = [
        d if isinstance(d, int) and d > 0 else (batch_size if i == 0 else 1)
        for i, d in enumerate(spec.shape)
    ]
    dtype = spec.dtype or np.dtype(np.float32)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    # Integers in {0, 1}: valid token ids, masks and indices for any model.
    return rng.integers(0, 2, shape).astype(dtype)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _runner(
    model: ModelSource, engine: str, threads: int | None, sparse: bool
) -> tuple[Callable[[Mapping[str, Array]], Any], list[ValueSpec], str]:
    if engine in ("zoo", "zoo-dense"):
        sess = InferenceSession(model, sparse=sparse and engine == "zoo", threads=threads)
        return (lambda feeds: sess.run(None, feeds)), sess.get_inputs(), _version("openzoo")
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ZooRuntimeError(
            "engine 'onnxruntime' needs the onnxruntime package: pip install onnxruntime"
        ) from e
    proto = load_model(model)  # checks external data the same way before onnxruntime reads it
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
    source: str | bytes = (
        str(model) if isinstance(model, str | os.PathLike) else proto.SerializeToString()
    )
    ort_sess = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    init = {t.name for t in proto.graph.initializer}
    from zoo.runtime.graph import value_specs

    specs = value_specs(proto.graph, init)[0]
    return (lambda feeds: ort_sess.run(None, dict(feeds))), specs, str(ort.__version__)


def benchmark(
    model: ModelSource | ModelProto,
    *,
    batch_size: int = 1,
    seconds: float = 10.0,
    warmup: int = 2,
    threads: int | None = None,
    sparse: bool = True,
    engine: str = "zoo",
    inputs: Mapping[str, Array] | None = None,
    seed: int = 0,
) -> BenchmarkResult:
    """Run ``model`` repeatedly for ``seconds`` after ``warmup`` runs; report items/s and latency.

    ``engine`` is ``"zoo"`` (sparse-aware), ``"zoo-dense"`` (dense kernels only) or
    ``"onnxruntime"`` (if installed). Inputs are random, shaped from the model's inputs with
    the dynamic batch dim set to ``batch_size``, unless ``inputs`` are given.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if batch_size < 1 or seconds <= 0 or warmup < 0:
        raise ValueError("batch_size must be >= 1, seconds > 0 and warmup >= 0")
    run, specs, version = _runner(model, engine, threads, sparse)
    rng = np.random.default_rng(seed)
    feeds = (
        dict(inputs)
        if inputs is not None
        else {s.name: _random_input(s, batch_size, rng) for s in specs}
    )
    for _ in range(warmup):
        run(feeds)
    latencies: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        run(feeds)
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        if t1 - start >= seconds:
            break
    total = time.perf_counter() - start
    ms = np.asarray(latencies) * 1e3
    return BenchmarkResult(
        engine=engine,
        engine_version=version,
        batch_size=batch_size,
        iterations=len(latencies),
        seconds=total,
        items_per_second=batch_size * len(latencies) / total,
        latency_mean_ms=float(ms.mean()),
        latency_p50_ms=float(np.percentile(ms, 50)),
        latency_p90_ms=float(np.percentile(ms, 90)),
        latency_p99_ms=float(np.percentile(ms, 99)),
        latency_std_ms=float(ms.std()),
        threads=threads,
        hardware=hardware_info(),
        inputs={k: list(np.shape(v)) for k, v in feeds.items()},
    )
