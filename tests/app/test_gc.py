"""`zoo admin gc`: expired uploads are aborted and staged leftovers deleted; nothing else, not
even an orphaned blob that a commit reuses while gc runs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, select, update

from app.db import make_sessionmaker
from app.gc import collect, delete_orphans
from app.orm import Blob, CompatArchive, Version, VersionStatus, utcnow
from app.storage import Storage, blob_key, staging_key
from app.storage_factory import make_storage
from support.fixtures import CONFIGURATIONS
from support.hub import Hub, create_model, manifest, publish, unique_namespace, upload_blobs
from support.onnx_models import linear_model
from support.paused import OwnHub, in_thread, own_hub


def test_gc_aborts_expired_uploads_and_keeps_the_rest(hub: Hub) -> None:
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    published = publish(http, ns, "m", {"model.md": f"# kept {ns}".encode()})
    old_files = {"model.md": f"# abandoned {ns}".encode()}
    fresh_files = {"model.md": f"# in progress {ns}".encode()}
    old = http.post(f"/models/{ns}/m/versions", json={"files": manifest(old_files)}).json()
    fresh = http.post(f"/models/{ns}/m/versions", json={"files": manifest(fresh_files)}).json()
    upload_blobs(http, old, old_files)
    upload_blobs(http, fresh, fresh_files)
    with hub.sessionmaker() as s:
        s.execute(
            update(Version)
            .where(Version.upload_id == old["upload_id"])
            .values(created_at=utcnow() - timedelta(hours=48))
        )
        s.commit()
    storage = make_storage(hub.settings)
    old_key = staging_key(old["upload_id"], hashlib.sha256(old_files["model.md"]).hexdigest())
    fresh_key = staging_key(fresh["upload_id"], hashlib.sha256(fresh_files["model.md"]).hexdigest())

    dry = collect(hub.sessionmaker, storage, ttl_hours=24, dry_run=True)
    assert old["upload_id"] in dry.expired_uploads
    assert storage.exists(old_key)

    report = collect(hub.sessionmaker, storage, ttl_hours=24)
    assert old["upload_id"] in report.expired_uploads
    assert fresh["upload_id"] not in report.expired_uploads
    assert not storage.exists(old_key)
    assert storage.exists(fresh_key)
    with hub.sessionmaker() as s:
        status = s.scalar(select(Version.status).where(Version.upload_id == old["upload_id"]))
        assert status == VersionStatus.ABORTED
    # The published version and its blob are untouched; the fresh upload still commits.
    card = next(f for f in published["files"] if f["path"] == "model.md")
    assert storage.exists(blob_key(card["sha256"]))
    assert http.post(f"/uploads/{fresh['upload_id']}/commit").json()["number"] == 2
    assert http.post(f"/uploads/{old['upload_id']}/commit").status_code == 409


def _fetch(url: str, token: str) -> bytes:
    """GET ``url``, following the S3 backend's redirect to its presigned URL."""
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    if r.status_code == 302:
        r = httpx.get(r.headers["location"], timeout=60)  # the URL is the grant: no token
    assert r.status_code == 200, r.text
    return r.content


def _download(hub_url: str, token: str, ns: str, path: str) -> bytes:
    """A file of version 1 of ``ns/m``."""
    return _fetch(f"{hub_url}/api/v1/models/{ns}/m/versions/1/files/{path}", token)


def _orphan(storage: Storage, data: bytes) -> str:
    """Bytes under their blob key with no row: what a commit that died after promoting leaves."""
    key = blob_key(hashlib.sha256(data).hexdigest())
    storage.write_stream(key, iter([data]))
    return key


def test_gc_keeps_an_orphan_that_a_commit_reused_after_the_listing(hub: Hub) -> None:
    # gc lists two orphans as old enough to delete; before it deletes them, a commit publishes
    # one of them again (it finds the bytes in place and keeps them). gc's deletion step must
    # see the row that commit made: before, it deleted both, and the version's file was gone.
    ns = unique_namespace()
    http = hub.client(hub.admin_token)
    create_model(http, ns, name="m")
    storage = make_storage(hub.settings)
    abandoned, reused = f"# abandoned {ns}".encode(), f"# reused {ns}".encode()
    listed = [_orphan(storage, abandoned), _orphan(storage, reused)]
    publish(http, ns, "m", {"model.md": reused})

    assert delete_orphans(hub.sessionmaker, storage, listed) == 1
    assert not storage.exists(listed[0])
    assert storage.exists(listed[1])
    assert _download(hub.url, hub.admin_token, ns, "model.md") == reused
    with hub.sessionmaker() as s:  # gc's claim on the deleted one left no row behind
        assert s.get(Blob, hashlib.sha256(abandoned).hexdigest()) is None


@pytest.fixture(scope="module", params=CONFIGURATIONS)
def paused_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnHub]:
    yield from own_hub(request, tmp_path_factory.mktemp(str(request.param)))


def test_gc_waits_for_a_commit_that_is_reusing_an_orphan(paused_hub: OwnHub) -> None:
    # The commit has claimed the blob (its row, uncommitted) and stops while it promotes; gc,
    # deleting that orphan now, must wait for the commit and then keep the blob.
    hub = paused_hub
    ns = unique_namespace()
    create_model(hub.api, ns, name="m")
    data = f"# reused while gc runs {ns}".encode()
    key = _orphan(hub.storage.inner, data)
    files = {"model.md": data}
    upload = hub.api.post(f"/models/{ns}/m/versions", json={"files": manifest(files)}).json()
    upload_blobs(hub.api, upload, files)
    hub.storage.pause("promote", "verifying/")
    committer, commit = in_thread(lambda: hub.api.post(f"/uploads/{upload['upload_id']}/commit"))
    try:
        assert hub.storage.entered.wait(10), "the commit never promoted its blob"
        factory = make_sessionmaker(hub.app.state.engine)
        gc, deleted = in_thread(lambda: delete_orphans(factory, hub.storage.inner, [key]))
        gc.join(1.5)
        assert gc.is_alive(), f"gc did not wait for the commit: {deleted}"
    finally:
        hub.storage.resume()
        committer.join(60)
    gc.join(60)
    assert commit["value"].status_code == 200, commit["value"].text
    assert deleted == {"value": 0}
    assert hub.storage.inner.exists(key)
    token = hub.api.headers["Authorization"].removeprefix("Bearer ")
    assert _download(hub.url, token, ns, "model.md") == data


def test_an_archive_built_over_an_orphan_that_gc_deletes_meanwhile(paused_hub: OwnHub) -> None:
    # A sample archive is built lazily and stored as a blob. A build whose transaction failed
    # leaves its bytes without rows; the next build finds them in place, and gc deletes them
    # just then: the build must notice and store them again (before: a row naming nothing).
    hub = paused_hub
    ns = unique_namespace()
    create_model(hub.api, ns, name="m")
    publish(hub.api, ns, "m", {"model.onnx": linear_model(0.5)})
    token = hub.api.headers["Authorization"].removeprefix("Bearer ")
    url = f"{hub.url}/v2/models/{ns}/m/versions/1/archives/deployment.tar.gz"
    first = _fetch(url, token)
    sha = hashlib.sha256(first).hexdigest()
    factory = make_sessionmaker(hub.app.state.engine)
    with factory() as s:  # the rows gone, the bytes left
        s.execute(delete(CompatArchive).where(CompatArchive.sha256 == sha))
        s.execute(delete(Blob).where(Blob.sha256 == sha))
        s.commit()
    key = blob_key(sha)
    hub.storage.pause("exists", key, after=True)  # it has found them, gc now deletes them
    builder, rebuilt = in_thread(lambda: _fetch(url, token))
    try:
        assert hub.storage.entered.wait(10), "the build never looked for its bytes"
        assert delete_orphans(factory, hub.storage.inner, [key]) == 1
    finally:
        hub.storage.resume()
        builder.join(60)
    assert rebuilt.get("value") == first, rebuilt.get("error")
    assert hub.storage.inner.exists(key)
    assert _fetch(url, token) == first
