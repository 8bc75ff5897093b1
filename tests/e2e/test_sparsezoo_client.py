"""The real ``sparsezoo`` 1.8.1 client, unchanged, pointed at a live OpenZoo hub.

The client pins onnx 1.14 and numpy 1.26, so it lives in a virtualenv of its own, cached under
``~/.cache/openzoo-tests/sparsezoo-1.8.1`` (``OPENZOO_TEST_CACHE`` moves it) so reruns are
fast; its code runs in a subprocess of that virtualenv's python (``sparsezoo_script.py``).
Skipped, saying so, only when PyPI cannot be reached to build that virtualenv.

The hub serves the seed model of ``app.seed`` and a second model with benchmark and eval
results, on both configurations (SQLite + files; PostgreSQL + S3, where downloads are
redirects to presigned URLs the client must follow, ranges included).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.seed import SEED_STUB, build_seed_model, publish_files, seed
from support.hub import Hub, unique_namespace

pytestmark = pytest.mark.slow

SPARSEZOO_VERSION = "1.8.1"
# sparsezoo 1.8.1 allows onnx < 1.15 and numpy < 2; pinned so every run tests the same thing.
PINS = [f"sparsezoo=={SPARSEZOO_VERSION}", "onnx==1.14.1", "numpy==1.26.4"]
SCRIPT = Path(__file__).with_name("sparsezoo_script.py")
BENCHMARKS = [
    # sparsezoo's deployment_package looks up 24 cores at batch 64 and batch 1 by default.
    {"engine": "zoo", "hardware": "Intel Xeon", "cores": 24, "batch_size": 64, "throughput": 812.5},
    {"engine": "zoo", "hardware": "Intel Xeon", "cores": 24, "batch_size": 1, "throughput": 90.0},
]
EVAL = {"dataset": "synthetic", "metric": "top1_accuracy", "value": 0.7612}


def _cache_root() -> Path:
    return Path(os.environ.get("OPENZOO_TEST_CACHE", Path.home() / ".cache" / "openzoo-tests"))


def _pypi_unreachable() -> str | None:
    """Why PyPI cannot be reached, or None if it can."""
    try:
        urllib.request.urlopen("https://pypi.org/simple/sparsezoo/", timeout=15).close()
    except OSError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def sparsezoo_python() -> Path:
    """The python of a virtualenv with sparsezoo 1.8.1, built once and cached."""
    venv = _cache_root() / f"sparsezoo-{SPARSEZOO_VERSION}"
    python = venv / "bin" / "python"
    done = venv / ".openzoo-complete"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (two pytest sessions may start together); the marker is written
    # last, so a half-built virtualenv (an interrupted run) is rebuilt, never used.
    with (venv.parent / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (done.read_text() if done.exists() else "") == " ".join(PINS):
            return python
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PINS],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            reason = _pypi_unreachable()
            if reason is not None:
                pytest.skip(f"PyPI is unreachable, so sparsezoo cannot be installed: {reason}")
            pytest.fail(f"installing {' '.join(PINS)} failed:\n{install.stderr[-4000:]}")
        done.write_text(" ".join(PINS))
    return python


@dataclass(frozen=True)
class Served:
    """What the hub serves to the client: the seed model and a model with results."""

    seed_onnx_sha256: str
    results_path_stub: str
    results_short_stub: str
    results_onnx_sha256: str


@pytest.fixture(scope="module")
def served(hub: Hub) -> Served:
    seed(hub.url, hub.admin_token)  # idempotent: the hub may already have it
    ns = unique_namespace()
    # The sub-architecture keeps the short stub (its repo name) unique on the shared hub.
    path_stub = f"zoo:cv/classification/mlp-{ns}/onnx/openzoo/synthetic/pruned90-none"
    files = build_seed_model(seed=7)
    number = publish_files(hub.url, hub.admin_token, ns, path_stub, files)
    name = f"mlp-{ns}-synthetic-pruned90"
    http = hub.client(hub.admin_token)
    for body in BENCHMARKS:
        r = http.post(f"/models/{ns}/{name}/versions/{number}/benchmarks", json=body)
        assert r.status_code == 201, r.text
    r = http.post(f"/models/{ns}/{name}/versions/{number}/evals", json=EVAL)
    assert r.status_code == 201, r.text
    onnx = {f.path: f.data for f in files}["model.onnx"]
    seed_onnx = {f.path: f.data for f in build_seed_model()}["model.onnx"]
    return Served(
        seed_onnx_sha256=hashlib.sha256(seed_onnx).hexdigest(),
        results_path_stub=path_stub,
        results_short_stub=f"zoo:{name}",
        results_onnx_sha256=hashlib.sha256(onnx).hexdigest(),
    )


def _client_env(hub: Hub, home: Path) -> dict[str, str]:
    """A clean environment: the hub as SparseZoo's API, caches under ``home``, no proxies (the
    hub and the test S3 store are on loopback), no analytics."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "SPARSEZOO_API_URL": hub.url,
        "SPARSEZOO_MODELS_PATH": str(home / "models"),
        "NM_DISABLE_ANALYTICS": "1",
        "NO_PROXY": "*",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="module")
def report(
    hub: Hub,
    served: Served,
    sparsezoo_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Run the user code once per hub; every test below reads its report."""
    home = tmp_path_factory.mktemp("sparsezoo-home")
    spec = {
        "path_stub": SEED_STUB,
        "short_stub": served.results_short_stub,
        "domain": "cv",
        "sub_domain": "classification",
        "missing_stub": "zoo:cv/classification/mlp-nope/onnx/openzoo/synthetic/pruned90-none",
        "download_dir": str(home / "downloads"),
    }
    run = subprocess.run(
        [str(sparsezoo_python), str(SCRIPT), json.dumps(spec)],
        env=_client_env(hub, home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-8000:]}"
    yield json.loads(run.stdout.strip().splitlines()[-1])


def test_path_stub_downloads_a_model_that_runs(served: Served, report: dict[str, Any]) -> None:
    got = report["path_stub"]
    assert got["onnx_sha256"] == served.seed_onnx_sha256  # onnx.load + checker passed too
    assert got["sample_inputs"] == [["input"]]
    assert got["outputs_match"] is True  # onnxruntime on the samples gives the sample outputs
    assert got["deployment"] == ["model.onnx"]
    assert got["deployment_onnx_sha256"] == served.seed_onnx_sha256


def test_short_stub_downloads_the_whole_folder(served: Served, report: dict[str, Any]) -> None:
    got = report["short_stub"]
    assert got["onnx_sha256"] == served.results_onnx_sha256
    assert set(got["files"]) >= {
        "model.onnx",
        "model.md",
        "recipe_original.yaml",
        "deployment/model.onnx",
        "sample-inputs/inp-0000.npz",
        "sample-outputs/out-0000.npz",
    }


def test_results_reach_the_client(report: dict[str, Any]) -> None:
    got = report["short_stub"]
    assert [(t["batch_size"], t["num_cores"], t["recorded_value"]) for t in got["throughput"]] == [
        (64, 24, 812.5),
        (1, 24, 90.0),
    ]
    assert {t["recorded_units"] for t in got["throughput"]} == {"items/seconds"}
    [validation] = got["validation"]
    assert validation["recorded_units"] == "top1 accuracy"
    assert validation["recorded_value"] == pytest.approx(76.12)
    assert (validation["dataset_name"], validation["dataset_type"]) == ("synthetic", "upstream")


def test_search_models_lists_the_stubs(served: Served, report: dict[str, Any]) -> None:
    assert {SEED_STUB, served.results_path_stub} <= set(report["search"])


def test_unknown_stub_gives_the_clients_own_error(report: dict[str, Any]) -> None:
    assert report["missing"] is not None
    assert report["missing"].startswith("No matching models found with stub")


def test_the_downloads_were_counted(hub: Hub, report: dict[str, Any]) -> None:
    model = httpx.get(f"{hub.url}/api/v1/models/openzoo/mlp-tiny-synthetic-pruned90", timeout=30)
    assert model.json()["downloads"] >= 1
