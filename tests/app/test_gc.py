"""`zoo admin gc`: expired uploads are aborted and staged leftovers deleted; nothing else."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, update

from app.gc import collect
from app.orm import Version, VersionStatus, utcnow
from app.storage import blob_key, staging_key
from app.storage_factory import make_storage
from support.hub import Hub, create_model, manifest, publish, unique_namespace, upload_blobs


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
