"""``zoo verify`` on tiny models built here: it passes on a truthful model, and fails naming the
check when a sample output, a weight or a file's bytes are wrong. Through the CLI entry point
(--json, exit codes) and through ``Model(...).verify()``; a local folder, a QDQ-quantized
folder, and a published stub on both hub configurations."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from support.client_helpers import MakeClient
from support.hub import Hub, unique_namespace
from support.verify_models import alter_output, densify_weight, write_folder
from zoo import Model
from zoo.cli import app
from zoo.verify import Check, VerifyReport, verify_model

NO_BENCH = ["--bench-seconds", "0"]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cli-cache"))
    return CliRunner()


def verify_json(run: CliRunner, *args: str) -> tuple[int, dict[str, Any]]:
    r = run.invoke(app, [*args, "--json"])
    assert r.exit_code in (0, 1), r.output
    return r.exit_code, json.loads(r.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def failed(report: VerifyReport) -> set[str]:
    return {c.name for c in report.failed}


# -- a local folder ------------------------------------------------------------------------


def test_a_truthful_folder_passes_every_check(run: CliRunner, tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    code, report = verify_json(run, "verify", str(folder), *NO_BENCH)
    assert code == 0 and report["ok"] is True
    assert statuses(report) == {
        "sha256": "info",  # no manifest: the hashes are reported, not checked
        "onnx": "pass",
        "outputs": "pass",
        "sparsity": "pass",
        "recipe": "pass",
        "benchmark": "skip",
    }
    checks = {c["name"]: c for c in report["checks"]}
    assert len(checks["sha256"]["numbers"]["hashes"]) == 9
    assert checks["outputs"]["numbers"]["samples"] == 3
    assert checks["outputs"]["numbers"]["max_abs_err"] < 1e-5
    assert checks["sparsity"]["numbers"]["measured"] == pytest.approx(0.9)
    assert set(checks["sparsity"]["numbers"]["claims"]) == {
        "tag 'pruned90-none'",
        "model.md front matter",
    }
    # The same through the library, with the (1 s) benchmark on this machine.
    result = Model(folder).verify()
    assert result.ok and isinstance(result.checks[0], Check)
    bench = result.checks[-1]
    assert bench.name == "benchmark" and bench.status == "info"
    assert bench.numbers["items_per_second"] > 0
    assert result.to_dict()["ok"] is True


def test_text_output_is_one_line_per_check(run: CliRunner, tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    alter_output(folder)
    r = run.invoke(app, ["verify", str(folder), *NO_BENCH])
    assert r.exit_code == 1
    lines = r.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines[:6]] == [
        "sha256",
        "onnx",
        "outputs",
        "sparsity",
        "recipe",
        "benchmark",
    ]
    assert lines[2].startswith("FAIL  outputs") and "sample 0, output 'logits'" in lines[2]
    assert lines[-1].endswith("FAILED: outputs")


def test_an_altered_sample_output_fails_the_outputs_check(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    alter_output(folder, index=1, delta=1e-3)  # far over rtol 1e-4 / atol 1e-5
    report = verify_model(Model(folder), bench_seconds=0)
    assert failed(report) == {"outputs"}
    outputs = report.checks[2]
    assert "sample 1" in outputs.detail and outputs.numbers["max_abs_err"] > 5e-4


def test_a_changed_weight_fails_outputs_sparsity_and_recipe(run: CliRunner, tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    densify_weight(folder)
    code, report = verify_json(run, "verify", str(folder), *NO_BENCH)
    assert code == 1 and report["ok"] is False
    assert {n for n, s in statuses(report).items() if s == "fail"} == {
        "outputs",
        "sparsity",
        "recipe",
    }
    sparsity = next(c for c in report["checks"] if c["name"] == "sparsity")
    assert sparsity["numbers"]["measured"] < 0.7 and "claimed 90.0%" in sparsity["detail"]


def test_a_recipe_that_does_not_parse_fails(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "recipe" / "recipe_original.yaml").write_text("modifiers: [!GMPruningModifier {")
    report = verify_model(Model(folder), bench_seconds=0)
    assert failed(report) == {"recipe"}
    assert "does not parse" in report.checks[4].detail


def test_a_recipe_with_modifiers_the_demo_parser_lacks_still_parses(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    (folder / "recipe" / "recipe_original.yaml").write_text(
        "version: 1.1.0\ntarget: 0.9\nmodifiers:\n"
        "  - !MagnitudePruningModifier {final_sparsity: eval(target), params: ['re:.*']}\n"
        "  - !QuantizationModifier {start_epoch: 1.0}\n"
    )
    report = verify_model(Model(folder), bench_seconds=0)
    assert report.ok, report.to_dict()
    assert report.checks[4].numbers["recipes"] == {"recipe/recipe_original.yaml": 0.9}


# -- quantized (QDQ) -----------------------------------------------------------------------


def _output_step(folder: Path) -> float:
    """The scale of the DequantizeLinear producing the output, read with onnx (the oracle)."""
    model = onnx.load(str(folder / "model.onnx"))
    [node] = [n for n in model.graph.node if "logits" in n.output]
    assert node.op_type == "DequantizeLinear"
    [scale] = [i for i in model.graph.initializer if i.name == node.input[1]]
    return float(numpy_helper.to_array(scale))


def test_a_qdq_model_passes_within_one_quantization_step(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, quantized=True)
    step = _output_step(folder)
    report = verify_model(Model(folder), bench_seconds=0)
    assert report.ok, report.to_dict()
    outputs = report.checks[2]
    assert "quantized: one step" in outputs.detail and f"{step:.6g}" in outputs.detail
    assert outputs.numbers["max_abs_err"] <= step

    alter_output(folder, delta=0.9 * step)  # another engine's rounding: allowed
    assert verify_model(Model(folder), bench_seconds=0).ok

    alter_output(folder, delta=2.5 * step)  # now 3.4 steps off in total
    report = verify_model(Model(folder), bench_seconds=0)
    assert failed(report) == {"outputs"}
    assert report.checks[2].numbers["worst_ratio"] > 3


# -- a published stub, on both hub configurations -----------------------------------------


def _publish(hub: Hub, make_client: MakeClient, tmp_path: Path) -> tuple[str, Path]:
    writer = make_client(hub.url, token=hub.admin_token, cache=tmp_path / "writer-cache")
    ns = unique_namespace()
    folder = write_folder(tmp_path)
    stub = f"zoo:cv/classification/mlp-tiny/onnx/{ns}/synthetic/pruned90-none"
    version = writer.publish(folder, stub, namespace=ns, message="verify test")
    return version.stub, folder


def test_a_stub_passes_then_a_corrupted_cached_blob_fails(
    hub: Hub, make_client: MakeClient, run: CliRunner, tmp_path: Path
) -> None:
    stub, _ = _publish(hub, make_client, tmp_path)
    reader = make_client(hub.url, cache=tmp_path / "reader-cache")
    model = Model(stub, client=reader)
    report = verify_model(model, bench_seconds=0)
    assert report.ok, report.to_dict()
    assert report.target == stub
    assert report.checks[0].status == "pass"  # sha256 against the version's manifest
    assert report.checks[0].numbers["files"] == 9

    # Through the CLI, on its own cache (ZOO_CACHE of the `run` fixture).
    code, body = verify_json(run, "--endpoint", hub.url, "verify", stub, *NO_BENCH)
    assert code == 0 and statuses(body)["sha256"] == "pass"

    # Flip one byte of a cached blob, keeping its size: the cache still "has" it.
    card = next(f for f in model.files if f.path == "model.md")
    blob = reader.cache.blob_path(card.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-2] ^= 0x01
    blob.write_bytes(bytes(data))
    report = verify_model(Model(stub, client=reader), bench_seconds=0)
    assert failed(report) == {"sha256"}
    assert report.checks[0].numbers["mismatched"] == ["model.md"]
    assert "model.md" in report.checks[0].detail

    # The snapshot folder (it carries .zoo-manifest.json) is checked against that manifest.
    snapshot = reader.cache.snapshot_dir(model._version.namespace, model._version.name, 1)  # type: ignore[union-attr]
    code, body = verify_json(run, "verify", str(snapshot), *NO_BENCH)
    assert code == 1 and statuses(body)["sha256"] == "fail"
    assert ".zoo-manifest.json" in body["checks"][0]["detail"]


def test_strict_benchmark_against_the_stored_result(
    hub: Hub, make_client: MakeClient, run: CliRunner, tmp_path: Path
) -> None:
    stub, _ = _publish(hub, make_client, tmp_path)
    writer = make_client(hub.url, token=hub.admin_token, cache=tmp_path / "writer-2")
    # A stored result no CPU reaches: informative by default, a failure under --strict.
    writer.add_benchmark(
        stub, engine="zoo", hardware="imaginary CPU", cores=2, batch_size=1, throughput=1e12
    )
    writer.add_benchmark(
        stub, engine="zoo", hardware="imaginary CPU", cores=2, batch_size=8, throughput=1.0
    )
    fast = ["--bench-seconds", "0.2"]
    code, body = verify_json(run, "--endpoint", hub.url, "verify", stub, *fast)
    bench = body["checks"][-1]
    assert code == 0 and bench["status"] == "info"
    assert bench["numbers"]["stored_items_per_second"] == 1e12  # same batch size (1) only
    assert bench["numbers"]["ratio"] < 1e-3
    code, body = verify_json(run, "--endpoint", hub.url, "verify", stub, *fast, "--strict")
    assert code == 1 and statuses(body)["benchmark"] == "fail" and body["strict"] is True


def test_sample_arrays_are_compared_by_name_or_position(tmp_path: Path) -> None:
    """SparseZoo's older archives key arrays input_0/output_0: matched by position."""
    folder = write_folder(tmp_path)
    for sub, old, new in (
        ("sample-inputs", "input", "input_0"),
        ("sample-outputs", "logits", "output_0"),
    ):
        for path in sorted((folder / sub).glob("*.npz")):
            with np.load(path) as data:
                array = data[old].copy()
            np.savez(path, **{new: array})
    assert verify_model(Model(folder), bench_seconds=0).ok
