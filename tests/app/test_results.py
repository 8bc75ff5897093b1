"""Benchmark and eval results attached to versions, over HTTP on both configurations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import error

from support.hub import Hub, create_model, publish, unique_namespace
from support.onnx_models import linear_model

BENCHMARK = {
    "engine": "zoo",
    "engine_version": "0.1.0",
    "hardware": "Intel Xeon (avx512f)",
    "cores": 4,
    "batch_size": 16,
    "scenario": "sync",
    "throughput": 812.5,
    "latency_mean_ms": 19.7,
    "latency_p50_ms": 19.5,
    "latency_p90_ms": 21.0,
    "latency_p99_ms": 24.25,
    "measured_by": "ci",
}
EVAL = {
    "dataset": "imagenet",
    "split": "validation",
    "metric": "top1_accuracy",
    "value": 0.7612,
    "measured_by": "ci",
}


@pytest.fixture(scope="module")
def model(hub: Hub) -> str:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = {"model.onnx": linear_model(0.5), "model.md": f"# {ns}\n".encode()}
    publish(http, ns, "m", files)
    publish(http, ns, "m", {**files, "model.md": f"# {ns} 2\n".encode()})
    return f"{ns}/m"


def test_results_are_attached_to_their_version(
    hub: Hub, admin: httpx.Client, anon: httpx.Client, model: str
) -> None:
    r = admin.post(f"/models/{model}/versions/1/benchmarks", json=BENCHMARK)
    assert r.status_code == 201, r.text
    bench = r.json()
    assert {k: bench[k] for k in BENCHMARK} == BENCHMARK and bench["id"] and bench["created_at"]
    minimal = {
        "engine": "onnxruntime",
        "hardware": "arm64",
        "cores": 1,
        "batch_size": 1,
        "throughput": 3.5,
    }
    r = admin.post(f"/models/{model}/versions/1/benchmarks", json=minimal)
    assert r.status_code == 201, r.text
    assert r.json()["scenario"] == "sync" and r.json()["latency_p99_ms"] is None
    r = admin.post(f"/models/{model}/versions/latest/evals", json=EVAL)  # an alias works too
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in EVAL} == EVAL

    v1 = anon.get(f"/models/{model}/versions/1").json()
    assert [b["engine"] for b in v1["benchmarks"]] == ["zoo", "onnxruntime"]
    assert v1["benchmarks"][0] == bench
    assert v1["evals"] == []
    v2 = anon.get(f"/models/{model}/versions/2").json()
    assert v2["benchmarks"] == [] and [e["metric"] for e in v2["evals"]] == ["top1_accuracy"]
    assert v2["evals"][0]["value"] == pytest.approx(0.7612)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"throughput": -5.0}, "throughput"),
        ({"throughput": 0}, "throughput"),
        ({"cores": 0}, "cores"),
        ({"batch_size": -1}, "batch_size"),
        ({"latency_p50_ms": -0.1}, "latency_p50_ms"),
        ({"engine": ""}, "engine"),
        ({"hardware": "x" * 201}, "hardware"),
        ({"throughput": "fast"}, "throughput"),
    ],
)
def test_benchmark_validation(
    hub: Hub, admin: httpx.Client, model: str, change: dict[str, Any], field: str
) -> None:
    r = admin.post(f"/models/{model}/versions/1/benchmarks", json={**BENCHMARK, **change})
    err = error(r, 422, "VALIDATION_FAILED")
    assert field in err["message"]
    assert any(p["loc"][-1] == field for p in err["details"]["problems"])


def test_benchmark_missing_field(hub: Hub, admin: httpx.Client, model: str) -> None:
    body = {k: v for k, v in BENCHMARK.items() if k != "hardware"}
    r = admin.post(f"/models/{model}/versions/1/benchmarks", json=body)
    assert "hardware" in error(r, 422, "VALIDATION_FAILED")["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**EVAL, "metric": ""}, "metric"),
        ({**EVAL, "value": "high"}, "value"),
        ({k: v for k, v in EVAL.items() if k != "dataset"}, "dataset"),
    ],
)
def test_eval_validation(
    hub: Hub, admin: httpx.Client, model: str, body: dict[str, Any], field: str
) -> None:
    r = admin.post(f"/models/{model}/versions/1/evals", json=body)
    assert field in error(r, 422, "VALIDATION_FAILED")["message"]


def test_eval_value_nan_is_refused(hub: Hub, admin: httpx.Client, model: str) -> None:
    r = admin.post(
        f"/models/{model}/versions/1/evals",
        content=b'{"dataset": "imagenet", "metric": "top1", "value": NaN}',
        headers={"Content-Type": "application/json"},
    )
    err = error(r, 422, "VALIDATION_FAILED")
    assert "value" in err["message"]


def test_results_need_a_ready_version(hub: Hub, admin: httpx.Client, model: str) -> None:
    err = error(
        admin.post(f"/models/{model}/versions/3/benchmarks", json=BENCHMARK),
        404,
        "VERSION_NOT_FOUND",
    )
    assert "'3'" in err["message"]
    err = error(
        admin.post(f"/models/{model}/versions/nightly/evals", json=EVAL), 404, "VERSION_NOT_FOUND"
    )
    assert "'nightly'" in err["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("benchmarks", b'"throughput": Infinity', "throughput"),
        ("benchmarks", b'"throughput": 10, "latency_p99_ms": Infinity', "latency_p99_ms"),
        ("evals", b'"value": Infinity', "value"),
        ("evals", b'"value": -Infinity', "value"),
    ],
)
def test_infinite_numbers_are_refused(
    hub: Hub,
    admin: httpx.Client,
    anon: httpx.Client,
    model: str,
    path: str,
    body: bytes,
    field: str,
) -> None:
    """JSON cannot carry them back, so storing one would break every later read of the version."""
    base = BENCHMARK if path == "benchmarks" else EVAL
    rest = ", ".join(
        f'"{k}": {v!r}'.replace("'", '"') for k, v in base.items() if f'"{k}"' not in body.decode()
    )
    r = admin.post(
        f"/models/{model}/versions/2/{path}",
        content=b"{" + body + b", " + rest.encode() + b"}",
        headers={"Content-Type": "application/json"},
    )
    err = error(r, 422, "VALIDATION_FAILED")
    assert field in err["message"]
    assert anon.get(f"/models/{model}/versions/2").status_code == 200
