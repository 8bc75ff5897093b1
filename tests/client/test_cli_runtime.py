"""``zoo analyze`` and ``zoo benchmark`` on a stub (downloaded first) and on a local folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.client_helpers import Published, model_folder
from support.hub import Hub
from zoo.cli import app


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cli-cache"))
    return CliRunner()


def test_analyze_a_stub_measures_the_published_weights(
    hub: Hub, published: Published, run: CliRunner
) -> None:
    r = run.invoke(app, ["--endpoint", hub.url, "analyze", published.stub, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    # The seed model is magnitude-pruned to 90% (its stub says so; the hub measured it too).
    assert data["sparsity"] == pytest.approx(0.9, abs=0.005)
    assert data["sparsity"] == pytest.approx(published.version.sparsity)


def test_benchmark_a_local_folder_with_each_engine(run: CliRunner, tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    for engine in ("zoo", "zoo-dense", "onnxruntime"):
        r = run.invoke(
            app,
            [
                "benchmark",
                str(folder),
                "--seconds",
                "0.2",
                "--warmup",
                "1",
                "--batch-size",
                "3",
                "--engine",
                engine,
                "--json",
            ],
        )
        assert r.exit_code == 0, r.output
        result = json.loads(r.stdout)
        assert result["engine"] == ("onnxruntime" if engine == "onnxruntime" else engine)
        assert result["batch_size"] == 3 and result["iterations"] >= 1
        assert result["items_per_second"] > 0
        assert result["latency_p50_ms"] <= result["latency_p99_ms"]
        assert result["hardware"]["logical_cores"] >= 1
    r = run.invoke(app, ["benchmark", str(folder), "--engine", "tensorrt"])
    assert r.exit_code == 2


def test_benchmark_says_what_it_waits_for_on_a_terminal(
    run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a first run compiles kernels for up to a minute: a terminal shows why it waits (on a
    # pipe, rich prints no spinner, and --json output stays clean: the test above)
    import io

    from rich.console import Console

    import zoo.cli.benchmark as cli_benchmark

    screen = io.StringIO()
    monkeypatch.setattr(cli_benchmark, "err", Console(file=screen, force_terminal=True, width=300))
    folder = model_folder(tmp_path / "[red]models")  # a path that looks like rich markup
    r = run.invoke(app, ["benchmark", str(folder), "--seconds", "0.2"])
    assert r.exit_code == 0, r.output
    shown = screen.getvalue()
    assert "its first run compiles the kernels it needs" in shown
    assert "[red]models" in shown  # printed as it is, not taken for a style
    assert "throughput" in r.stdout


def test_benchmark_a_stub(hub: Hub, published: Published, run: CliRunner) -> None:
    r = run.invoke(app, ["--endpoint", hub.url, "benchmark", published.stub, "--seconds", "0.2"])
    assert r.exit_code == 0, r.output
    assert "items/s" in r.stdout and "p50" in r.stdout
