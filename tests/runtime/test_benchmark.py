"""benchmark(): result fields, engines, input generation."""

from __future__ import annotations

import pytest

from zoo.runtime import BenchmarkResult, benchmark
from zoo.runtime.benchmark import hardware_info
from zoo.testing.models import mlp

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 3.0GHz
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni
processor\t: 1
model name\t: Example CPU @ 3.0GHz
physical id\t: 0
core id\t\t: 0
"""


@pytest.mark.parametrize("engine", ["zoo", "zoo-dense", "onnxruntime"])
def test_benchmark_reports_throughput_and_latency(engine: str) -> None:
    if engine == "onnxruntime":
        pytest.importorskip("onnxruntime")
    result = benchmark(mlp(hidden=(64,)), batch_size=4, seconds=0.05, warmup=1, engine=engine)
    assert isinstance(result, BenchmarkResult)
    assert result.engine == engine and result.batch_size == 4 and result.iterations >= 1
    assert result.inputs == {"x": [4, 784]}
    assert result.items_per_second > 0
    assert result.latency_p50_ms <= result.latency_p90_ms <= result.latency_p99_ms
    assert result.latency_mean_ms > 0 and result.latency_std_ms >= 0
    assert result.to_dict()["hardware"]["logical_cores"] >= 1


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="zoo-dense"):
        benchmark(mlp(hidden=(8,)), engine="tensorrt")


def test_hardware_info_parses_cpuinfo() -> None:
    info = hardware_info(CPUINFO)
    assert info.cpu_model == "Example CPU @ 3.0GHz"
    assert info.physical_cores == 1
    assert {"avx2", "avx512f", "avx512_vnni"} <= set(info.isa)
