"""Publishing over HTTP on both configurations: open, upload, commit, dedupe, failures."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from app.orm import Version, VersionStatus
from app.storage import blob_key, staging_key
from app.storage_factory import make_storage
from support.hub import Hub, create_model, manifest, publish, unique_namespace, upload_blobs
from support.onnx_models import linear_model


def files_v1(tag: str = "") -> dict[str, bytes]:
    """A small version; ``tag`` makes the card's bytes unique to one test."""
    return {
        "model.onnx": linear_model(0.5),
        "model.md": f"---\nlicense: mit\n---\n# test {tag}\n".encode(),
        "recipe/recipe_original.yaml": b"modifiers: []\n",
    }


def test_publish_then_read(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m1")
    v = publish(http, ns, "m1", files_v1(), message="first")
    assert v["number"] == 1 and v["aliases"] == ["latest"]
    assert v["sparsity"] == pytest.approx(0.5)
    assert [r["name"] for r in v["recipes"]] == ["original"]
    assert {f["path"]: f["file_type"] for f in v["files"]} == {
        "model.onnx": "onnx",
        "model.md": "card",
        "recipe/recipe_original.yaml": "recipe",
    }

    anon = hub.client()
    assert anon.get(f"/models/{ns}/m1").json()["latest_version"] == 1
    listed = anon.get(f"/models/{ns}/m1/versions").json()
    assert [x["number"] for x in listed] == [1]
    got = anon.get(f"/models/{ns}/m1/versions/latest").json()
    assert got["number"] == 1 and got["message"] == "first"
    assert anon.get(f"/models/{ns}/m1/versions/1").json()["files"] == v["files"]


def test_second_version_dedupes_blobs_and_moves_latest(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    publish(http, ns, "m", files_v1())
    files = {**files_v1(), "model.md": b"# changed card\n"}
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    status = {b["paths"][0]: b["status"] for b in r.json()["blobs"]}
    assert status == {
        "model.onnx": "stored",
        "model.md": "upload",
        "recipe/recipe_original.yaml": "stored",
    }
    upload_blobs(http, r.json(), files)
    v2 = http.post(f"/uploads/{r.json()['upload_id']}/commit").json()
    assert v2["number"] == 2
    assert http.get(f"/models/{ns}/m/versions/latest").json()["number"] == 2
    history = http.get(f"/models/{ns}/m/aliases/history").json()
    assert [(e["name"], e["version"]) for e in history] == [("latest", 1), ("latest", 2)]


def test_pending_version_is_invisible_until_commit(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = files_v1()
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    upload_blobs(http, r.json(), files)
    assert http.get(f"/models/{ns}/m/versions").json() == []
    assert (
        http.get(f"/models/{ns}/m/versions/latest").json()["error"]["code"] == "VERSION_NOT_FOUND"
    )
    assert http.get(f"/models/{ns}/m/versions/1").status_code == 404
    assert http.get("/models", params={"namespace": ns}).json()["items"] == []


def test_wrong_bytes_are_refused_and_nothing_kept(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = files_v1(ns)
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    upload = r.json()
    tampered = {p: (b + b"x" if p == "model.md" else b) for p, b in files.items()}
    by_path = {b["paths"][0]: b for b in upload["blobs"]}
    card = by_path["model.md"]
    headers = {"Authorization": http.headers["Authorization"]} if card["authenticated"] else {}
    put = httpx.put(card["url"], content=tampered["model.md"], headers=headers)
    if card["authenticated"]:  # the hub itself checks while it receives
        assert put.status_code == 400 and put.json()["error"]["code"] == "DIGEST_MISMATCH"
    upload_blobs(http, {"blobs": [b for b in upload["blobs"] if b is not card]}, files)
    commit = http.post(f"/uploads/{upload['upload_id']}/commit")
    assert commit.status_code == 400
    assert commit.json()["error"]["code"] == "DIGEST_MISMATCH"
    storage = make_storage(hub.settings)
    sha = card["sha256"]
    assert not storage.exists(blob_key(sha))
    assert not storage.exists(staging_key(upload["upload_id"], sha))
    assert http.get(f"/models/{ns}/m/versions").json() == []
    # The upload stays open: sending the right bytes then committing succeeds.
    upload_blobs(http, {"blobs": [card]}, files)
    assert http.post(f"/uploads/{upload['upload_id']}/commit").json()["number"] == 1


def test_invalid_onnx_fails_the_version(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = {"model.onnx": b"\x08\x07garbage-not-a-model" * 10}
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    upload_blobs(http, r.json(), files)
    commit = http.post(f"/uploads/{r.json()['upload_id']}/commit")
    assert commit.status_code == 400
    assert commit.json()["error"]["code"] == "INVALID_ONNX"
    assert "model.onnx" in commit.json()["error"]["message"]
    again = http.post(f"/uploads/{r.json()['upload_id']}/commit")
    assert again.json()["error"]["code"] == "UPLOAD_NOT_PENDING"
    with hub.sessionmaker() as s:
        v = s.scalar(select(Version).where(Version.upload_id == r.json()["upload_id"]))
        assert v is not None and v.status == VersionStatus.FAILED and v.number is None
    sha = hashlib.sha256(files["model.onnx"]).hexdigest()
    storage = make_storage(hub.settings)
    assert not storage.exists(blob_key(sha))
    assert not storage.exists(staging_key(r.json()["upload_id"], sha))


def test_abort_leaves_nothing(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = {"model.md": b"# only a card " + ns.encode()}
    r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
    upload_blobs(http, r.json(), files)
    assert http.delete(f"/uploads/{r.json()['upload_id']}").status_code == 204
    storage = make_storage(hub.settings)
    sha = hashlib.sha256(files["model.md"]).hexdigest()
    assert not storage.exists(staging_key(r.json()["upload_id"], sha))
    assert http.post(f"/uploads/{r.json()['upload_id']}/commit").status_code == 409


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../escape.onnx", "'..'"),
        ("/etc/passwd", "absolute"),
        ("a\\b.onnx", "backslash"),
        ("a/\x00b", "NUL"),
        ("x" * 300, "longer"),
        ("a//b", "empty"),
        ("./a", "'.'"),
    ],
)
def test_hostile_paths_are_refused(hub: Hub, path: str, reason: str) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    r = http.post(
        f"/models/{ns}/m/versions", json={"files": [{"path": path, "size": 1, "sha256": "0" * 64}]}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "INVALID_PATH"
    assert reason in r.json()["error"]["message"]
    with hub.sessionmaker() as s:
        assert (
            s.scalar(
                select(Version)
                .join(Version.model)
                .where(Version.model_id.is_not(None))
                .where(Version.message == ns)
            )
            is None
        )


def test_manifest_that_lies_about_sizes(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    sha = "a" * 64
    r = http.post(
        f"/models/{ns}/m/versions",
        json={
            "files": [
                {"path": "a.bin", "size": 1, "sha256": sha},
                {"path": "b.bin", "size": 2, "sha256": sha},
            ]
        },
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_MANIFEST"
    r = http.post(
        f"/models/{ns}/m/versions",
        json={
            "files": [
                {"path": "a.bin", "size": 1, "sha256": sha},
                {"path": "a.bin", "size": 1, "sha256": sha},
            ]
        },
    )
    assert r.status_code == 400 and "twice" in r.json()["error"]["message"]


def test_blob_larger_than_declared_is_cut_off(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    files = {"w.bin": b"abc"}
    upload = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)}).json()
    blob = upload["blobs"][0]
    headers = {"Authorization": http.headers["Authorization"]} if blob["authenticated"] else {}
    r = httpx.put(blob["url"], content=b"abcdef" * 1000, headers=headers)
    if blob["authenticated"]:  # the hub stops reading past the declared size
        assert r.status_code == 400 and r.json()["error"]["code"] == "DIGEST_MISMATCH"
    # A presigned PUT cannot limit the size; the commit's check refuses it either way.
    commit = http.post(f"/uploads/{upload['upload_id']}/commit")
    assert commit.status_code == 400 and commit.json()["error"]["code"] == "DIGEST_MISMATCH"


def test_concurrent_commits_get_consecutive_numbers(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    uploads = []
    for i in range(6):
        files = {"model.md": f"# card {i}".encode()}
        r = http.post(f"/models/{ns}/m/versions", json={"files": manifest(files)})
        upload_blobs(http, r.json(), files)
        uploads.append(r.json()["upload_id"])

    def commit(upload_id: str) -> int:
        with httpx.Client(
            base_url=f"{hub.url}/api/v1", headers=dict(http.headers), timeout=60
        ) as c:
            r = c.post(f"/uploads/{upload_id}/commit")
            assert r.status_code == 200, r.text
            return int(r.json()["number"])

    with ThreadPoolExecutor(6) as pool:
        numbers = sorted(pool.map(commit, uploads))
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert http.get(f"/models/{ns}/m/versions/latest").json()["number"] == 6


def test_publishers_cannot_claim_the_hubs_output_check(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    r = http.post(
        f"/models/{ns}/m/versions",
        json={"files": manifest(files_v1(ns)), "meta": {"outputs_reproduced": True}},
    )
    assert r.status_code == 422 and "outputs_reproduced" in r.json()["error"]["message"]
