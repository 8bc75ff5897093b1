"""The ``zoo`` command through its entry point: output, --json, exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.client_helpers import Published, model_folder
from support.hub import Hub, unique_namespace
from zoo.cli import app

ZOO = str(Path(sys.executable).parent / "zoo")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cli-cache"))
    return CliRunner()


def test_search_and_info_json(hub: Hub, published: Published, run: CliRunner) -> None:
    r = run.invoke(
        app, ["--endpoint", hub.url, "search", "--namespace", published.namespace, "--json"]
    )
    assert r.exit_code == 0, r.output
    [item] = json.loads(r.stdout)
    assert item["path_stub"] == published.path_stub
    r = run.invoke(app, ["--endpoint", hub.url, "search", "--namespace", published.namespace])
    assert r.exit_code == 0 and published.version.name in r.stdout
    r = run.invoke(app, ["--endpoint", hub.url, "info", published.path_stub, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["number"] == 1
    r = run.invoke(app, ["--endpoint", hub.url, "info", published.stub])
    assert r.exit_code == 0 and "model.onnx" in r.stdout


def test_download_dry_run_then_download_then_cache(
    hub: Hub, published: Published, run: CliRunner, tmp_path: Path
) -> None:
    base = ["--endpoint", hub.url]
    r = run.invoke(
        app, [*base, "download", published.stub, "--dry-run", "--json", "--exclude", "training/*"]
    )
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert "training/weights.bin" not in {f["path"] for f in plan["files"]}
    assert plan["fetch_bytes"] > 0 and not any(f["cached"] for f in plan["files"])

    r = run.invoke(
        app, [*base, "download", published.stub, "--quiet", "--dir", str(tmp_path / "o")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "model.onnx").is_file()
    r = run.invoke(app, [*base, "download", published.stub, "--dry-run"])
    assert "would fetch 0" in r.stdout

    r = run.invoke(app, ["cache", "ls", "--json"])
    [entry] = json.loads(r.stdout)
    assert entry["stub"] == published.stub and entry["present"] == entry["files"]
    r = run.invoke(app, ["cache", "verify"])
    assert r.exit_code == 0 and "0 corrupt" in r.stdout

    blob = next(p for p in (tmp_path / "cli-cache" / "blobs").iterdir() if p.is_file())
    blob.chmod(0o644)
    blob.write_bytes(b"rotten")
    r = run.invoke(app, ["cache", "verify"])
    assert r.exit_code == 1 and "1 corrupt" in r.stdout
    assert not blob.exists()

    r = run.invoke(app, ["cache", "rm", f"zoo:{published.namespace}/{published.version.name}"])
    assert r.exit_code == 0, r.output
    assert json.loads(run.invoke(app, ["cache", "ls", "--json"]).stdout) == []
    assert [p for p in (tmp_path / "cli-cache" / "blobs").iterdir() if p.is_file()] == []


def test_publish_and_login(
    hub: Hub, run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_path = tmp_path / "conf" / "token"
    monkeypatch.setenv("ZOO_TOKEN_PATH", str(token_path))
    r = run.invoke(app, ["login"], input=hub.admin_token + "\n")
    assert r.exit_code == 0, r.output
    assert token_path.read_text().strip() == hub.admin_token
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600

    ns = unique_namespace()
    folder = model_folder(tmp_path)
    args = ["--endpoint", hub.url, "publish", str(folder), "--stub", f"zoo:{ns}/cli-model"]
    r = run.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["number"] == 1
    r = run.invoke(app, args)
    assert r.exit_code == 0 and f"zoo:{ns}/cli-model@2" in r.stdout
    r = run.invoke(app, ["--endpoint", hub.url, "alias", f"zoo:{ns}/cli-model", "stable", "1"])
    assert r.exit_code == 0, r.output

    r = run.invoke(app, ["logout"])
    assert r.exit_code == 0 and not token_path.exists()
    r = run.invoke(app, args)
    assert r.exit_code == 1 and "zoo login" in r.stderr


def test_failures_exit_1_with_a_message_and_no_traceback(
    hub: Hub, published: Published, run: CliRunner
) -> None:
    typo = published.path_stub.replace("pruned90", "pruned95")
    r = run.invoke(app, ["--endpoint", hub.url, "info", typo])
    assert r.exit_code == 1
    assert "did you mean" in r.stderr and published.path_stub in r.stderr
    assert "Traceback" not in r.output
    r = run.invoke(app, ["--endpoint", "http://127.0.0.1:9", "info", "zoo:a/b@1"])
    assert r.exit_code == 1 and "cannot reach" in r.stderr
    r = run.invoke(app, ["--offline", "download", "zoo:a/b@1"])
    assert r.exit_code == 1 and "offline" in r.stderr


def test_usage_errors_exit_2(run: CliRunner) -> None:
    assert run.invoke(app, ["download"]).exit_code == 2
    assert run.invoke(app, ["search", "--min-sparsity", "3"]).exit_code == 2
    r = run.invoke(app, ["info", "zoo:a/b/c"])
    assert r.exit_code == 2 and "segments" in r.output


def test_the_installed_command(hub: Hub, published: Published, tmp_path: Path) -> None:
    env = {**os.environ, "ZOO_ENDPOINT": hub.url, "ZOO_CACHE": str(tmp_path / "c")}
    r = subprocess.run(
        [ZOO, "download", published.stub, "--json"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal: no progress bars
    assert Path(json.loads(r.stdout)["path"], "model.onnx").is_file()
    r = subprocess.run([ZOO, "info", "nonsense"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
