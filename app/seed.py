"""A first model for a fresh hub, built locally and published through the public HTTP API.

The full demo catalog (trained models, architecture-scale ones) is ``zoo demo build``; this
seed makes sure a new hub has one real, checkable model to browse from the first start.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from app.models.service import short_name
from zoo.stubs import parse_stub

log = logging.getLogger(__name__)

SEED_NAMESPACE = "openzoo"
SEED_STUB = "zoo:cv/classification/mlp-tiny/onnx/openzoo/synthetic/pruned90-none"


@dataclass(frozen=True)
class SeedFile:
    """One file of the seed model."""

    path: str
    data: bytes


def _prune(weight: np.ndarray, sparsity: float) -> np.ndarray:
    """Unstructured magnitude pruning: zero the smallest |w| until ``sparsity`` is reached."""
    k = round(weight.size * sparsity)
    flat = np.abs(weight).ravel()
    threshold = np.partition(flat, k - 1)[k - 1] if k else -1.0
    return np.where(np.abs(weight) <= threshold, 0.0, weight).astype(np.float32)


def build_seed_model(seed: int = 0, sparsity: float = 0.9) -> list[SeedFile]:
    """A 64-256-10 MLP classifier, magnitude-pruned, with card, recipe and sample data.

    Sample outputs come from onnx's ReferenceEvaluator, an engine independent of ours.
    """
    rng = np.random.default_rng(seed)
    w1 = _prune(rng.standard_normal((64, 256)).astype(np.float32) * 0.1, sparsity)
    b1 = (rng.standard_normal(256) * 0.01).astype(np.float32)
    w2 = _prune(rng.standard_normal((256, 10)).astype(np.float32) * 0.1, sparsity)
    b2 = (rng.standard_normal(10) * 0.01).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["h_relu"], name="relu1"),
            helper.make_node("Gemm", ["h_relu", "w2", "b2"], ["logits"], name="fc2"),
        ],
        "mlp_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(a, n)
            for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="openzoo-seed"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    model_bytes = model.SerializeToString()

    x = rng.standard_normal((1, 64)).astype(np.float32)
    outputs = cast(list[Any], ReferenceEvaluator(model).run(None, {"input": x}))
    y = np.asarray(outputs[0])

    def npz(**arrays: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    card = f"""---
domain: cv
task: classification
architecture: mlp
sub_architecture: tiny
framework: onnx
repo: openzoo
dataset: synthetic
sparse_tag: pruned{round(sparsity * 100)}-none
license: apache-2.0
---
# MLP tiny, {round(sparsity * 100)}% pruned (synthetic weights)

A 64-256-10 multilayer perceptron with random weights, magnitude-pruned to
{round(sparsity * 100)}% unstructured sparsity. It makes no accuracy claim: it exists so a new
hub has a real ONNX model whose sparsity, checksums and sample outputs can be checked.
"""
    recipe = f"""version: 1.1.0
modifiers:
  - !GMPruningModifier
    init_sparsity: 0.0
    final_sparsity: {sparsity}
    start_epoch: 0.0
    end_epoch: 1.0
    update_frequency: 1.0
    params: ["w1", "w2"]
"""
    return [
        SeedFile("model.onnx", model_bytes),
        SeedFile("deployment/model.onnx", model_bytes),
        SeedFile("model.md", card.encode()),
        SeedFile("recipe/recipe_original.yaml", recipe.encode()),
        SeedFile("sample-inputs/inp-0000.npz", npz(input=x)),
        SeedFile("sample-outputs/out-0000.npz", npz(logits=y)),
    ]


def publish_files(
    base_url: str,
    token: str,
    namespace: str,
    stub: str,
    files: list[SeedFile],
    **model_fields: object,
) -> int:
    """Create the model (if needed) and publish ``files`` as a new version over HTTP."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        r = http.post("/api/v1/models", json={"namespace": namespace, "stub": stub, **model_fields})
        if r.status_code == 201:
            name = r.json()["name"]
        elif r.json().get("error", {}).get("code") == "MODEL_EXISTS":
            name = short_name(parse_stub(stub))
        else:
            r.raise_for_status()
        manifest = [
            {"path": f.path, "size": len(f.data), "sha256": hashlib.sha256(f.data).hexdigest()}
            for f in files
        ]
        r = http.post(f"/api/v1/models/{namespace}/{name}/versions", json={"files": manifest})
        r.raise_for_status()
        upload = r.json()
        by_sha = {hashlib.sha256(f.data).hexdigest(): f.data for f in files}
        for blob in upload["blobs"]:
            if blob["status"] == "stored":
                continue
            put_headers = headers if blob["authenticated"] else {}
            httpx.put(
                blob["url"], content=by_sha[blob["sha256"]], headers=put_headers, timeout=60
            ).raise_for_status()
        r = http.post(f"/api/v1/uploads/{upload['upload_id']}/commit")
        r.raise_for_status()
        return int(r.json()["number"])


def wait_ready(base_url: str, timeout: float = 30.0) -> None:
    """Poll /readyz until the hub answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"hub at {base_url} not ready after {timeout}s")


def seed(base_url: str, token: str) -> None:
    """Publish the seed model unless the hub already has it."""
    r = httpx.get(f"{base_url}/api/v1/resolve", params={"stub": SEED_STUB}, timeout=10)
    if r.status_code == 200:
        log.info("seed model already published: %s", SEED_STUB)
        return
    number = publish_files(
        base_url,
        token,
        SEED_NAMESPACE,
        SEED_STUB,
        build_seed_model(),
        display_name="MLP tiny, 90% pruned (synthetic)",
        license="apache-2.0",
        description="A small real ONNX model to browse, download and verify.",
    )
    log.info("published %s@%d", SEED_STUB, number)


def write_seed_folder(directory: Path) -> None:
    """Write the seed model as a local model folder (for tests and offline use)."""
    for f in build_seed_model():
        target = directory / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
