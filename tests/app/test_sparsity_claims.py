"""A sparsity claimed by a stub's tag or a version's metadata must match what the weights show
(within 2 points, over the prunable layers); the API and search show the measured number."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.orm import Version, VersionStatus
from app.storage import blob_key
from app.storage_factory import make_storage
from app.versions.validation import tag_claim
from support.hub import Hub, create_model, manifest, publish, unique_namespace, upload_blobs
from support.onnx_models import linear_model, quantized_linear_model

STUB = "zoo:cv/classification/resnet_v1-50/pytorch/{ns}/imagenet/{tag}"


@pytest.mark.parametrize(
    ("tag", "claim"),
    [
        ("pruned90-none", 0.9),
        ("pruned95_quant-none", 0.95),
        ("12layer_pruned80_quant-none-vnni", 0.8),
        ("14layer_pruned50.4block_quantized", 0.5),  # ".4block" is the structure
        ("pruned-none", None),
        ("pruned_quant-aggressive_94", None),  # 94 is a recovery target, not a sparsity
        ("base-none", None),
        (None, None),
    ],
)
def test_which_tags_claim_a_sparsity(tag: str | None, claim: float | None) -> None:
    found = tag_claim(tag)
    assert (found.value if found else None) == claim


def commit(http: httpx.Client, ns: str, name: str, files: dict[str, bytes], **body: Any) -> Any:
    """Open, upload and commit; the commit's response."""
    r = http.post(f"/models/{ns}/{name}/versions", json={"files": manifest(files), **body})
    assert r.status_code == 201, r.text
    upload_blobs(http, r.json(), files)
    return http.post(f"/uploads/{r.json()['upload_id']}/commit"), r.json()["upload_id"]


def test_stub_that_lies_is_refused_and_nothing_is_visible(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    name = create_model(http, ns, stub=STUB.format(ns=ns, tag="pruned90-none"))["name"]
    files = {"model.onnx": linear_model(0.5, seed=7)}
    r, upload_id = commit(http, ns, name, files)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "SPARSITY_MISMATCH"
    assert "pruned90-none" in error["message"]
    assert "90.0%" in error["message"] and "50.0%" in error["message"]
    assert error["details"]["claimed"] == pytest.approx(0.9)
    assert error["details"]["measured"] == pytest.approx(0.5)

    assert http.post(f"/uploads/{upload_id}/commit").json()["error"]["code"] == (
        "UPLOAD_NOT_PENDING"
    )
    with hub.sessionmaker() as s:
        v = s.scalar(select(Version).where(Version.upload_id == upload_id))
        assert v is not None and v.status == VersionStatus.FAILED and v.number is None
        assert "90.0%" in v.message
    assert http.get(f"/models/{ns}/{name}/versions").json() == []
    assert http.get(f"/models/{ns}/{name}/versions/latest").status_code == 404
    assert http.get("/models", params={"namespace": ns}).json()["items"] == []
    sha = hashlib.sha256(files["model.onnx"]).hexdigest()
    assert not make_storage(hub.settings).exists(blob_key(sha))


@pytest.mark.parametrize(
    ("tag", "model", "measured"),
    [
        ("pruned90-none", linear_model(0.9, seed=1), 115 / 128),
        ("pruned95_quant-none", quantized_linear_model(0.95, seed=1), 122 / 128),
        ("pruned50-none", linear_model(0.515, seed=1), 66 / 128),  # 51.6 %: within 2 points
        ("12layer_pruned80_quant-none-vnni", quantized_linear_model(0.8, seed=1), 102 / 128),
        ("pruned-none", linear_model(0.0, seed=1), 0.0),  # no number: claims nothing
        ("base-none", linear_model(0.3, seed=1), 38 / 128),
    ],
)
def test_truthful_or_silent_stubs_publish(
    hub: Hub, tag: str, model: bytes, measured: float
) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    name = create_model(http, ns, stub=STUB.format(ns=ns, tag=tag))["name"]
    v = publish(http, ns, name, {"model.onnx": model})
    assert v["sparsity"] == pytest.approx(measured)
    assert http.get(f"/models/{ns}/{name}").json()["sparsity"] == pytest.approx(measured)
    profile = v["sparsity_profile"]["model.onnx"]
    assert profile["prunable_params"] == 128 and profile["layers"][0]["params"] == 128


def test_just_over_the_tolerance_is_refused(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    name = create_model(http, ns, stub=STUB.format(ns=ns, tag="pruned50-none"))["name"]
    r, _ = commit(http, ns, name, {"model.onnx": linear_model(0.53, seed=2)})  # 53.1 %
    assert r.status_code == 400 and r.json()["error"]["code"] == "SPARSITY_MISMATCH"
    assert "53.1%" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("claim", "ok"),
    [(0.5, True), (50, True), ("50%", True), (0.9, False), (90, False), ("lots", False)],
)
def test_meta_sparsity_claim_is_checked(hub: Hub, claim: object, ok: bool) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")  # no stub: only the metadata claims anything
    files = {"model.onnx": linear_model(0.5, seed=3)}
    r, _ = commit(http, ns, "m", files, meta={"sparsity": claim})
    if ok:
        assert r.status_code == 200, r.text
        assert r.json()["sparsity"] == pytest.approx(0.5)
        assert r.json()["meta"] == {"sparsity": claim}
        return
    assert r.status_code == 400 and r.json()["error"]["code"] == "SPARSITY_MISMATCH"
    message = r.json()["error"]["message"]
    assert "meta 'sparsity'" in message
    assert ("50.0%" in message) if claim != "lots" else ("percentage" in message)
    assert http.get(f"/models/{ns}/m/versions").json() == []


def test_search_filters_on_the_measured_sparsity(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    # A claim within tolerance: search still sees the measured 51.6 %, never the claim.
    publish(http, ns, "m", {"model.onnx": linear_model(0.515, seed=4)}, meta={"sparsity": 0.5})
    found = http.get("/models", params={"namespace": ns, "min_sparsity": 0.51}).json()["items"]
    assert [m["name"] for m in found] == ["m"]
    assert found[0]["sparsity"] == pytest.approx(66 / 128)
