"""Assertions that a refused publish left nothing behind: no visible version, no stored blob,
no staged or half-verified object, no row that a reader could reach."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from sqlalchemy import func, select

from app.orm import Blob, File, Model, Namespace, Version, VersionStatus
from app.storage import blob_key, staging_key
from app.storage.keys import VERIFY_PREFIX
from app.storage_factory import make_storage
from support.hub import Hub


def verifying_keys(hub: Hub) -> set[str]:
    """Objects under the private ``verifying/`` prefix (commit's check area) right now."""
    return set(make_storage(hub.settings).list_keys(VERIFY_PREFIX))


def assert_nothing_left(
    hub: Hub,
    http: httpx.Client,
    namespace: str,
    name: str,
    shas: Iterable[str],
    *,
    upload_id: str | None = None,
    verifying_before: set[str] | None = None,
) -> None:
    """Assert the model ``namespace/name`` shows no version and none of ``shas`` is stored.

    Checked three ways: the API (no version listed, ``latest`` is 404), the object store (no
    blob key, no staging key of ``upload_id``, no new ``verifying/`` object since
    ``verifying_before``) and the database (no blob row; no version of the model is ready or
    numbered, and no file row belongs to one). Without ``upload_id`` (refused when the upload
    was opened) the model must have no version row and no file row at all.
    """
    shas = set(shas)
    assert http.get(f"/models/{namespace}/{name}/versions").json() == []
    latest = http.get(f"/models/{namespace}/{name}/versions/latest")
    assert latest.status_code == 404, latest.text

    storage = make_storage(hub.settings)
    for sha in shas:
        assert not storage.exists(blob_key(sha)), f"blob {sha} was stored"
    if upload_id is not None:
        staged = list(storage.list_keys(staging_key(upload_id, "0" * 64).rsplit("/", 1)[0] + "/"))
        assert staged == [], f"staged objects left behind: {staged}"
    if verifying_before is not None:
        assert verifying_keys(hub) <= verifying_before, "a verifying/ object was left behind"

    with hub.sessionmaker() as s:
        assert s.scalar(select(func.count()).where(Blob.sha256.in_(shas))) == 0
        versions = s.scalars(
            select(Version)
            .join(Version.model)
            .join(Model.namespace)
            .where(Namespace.name == namespace, Model.name == name)
        ).all()
        if upload_id is None:
            assert versions == [], "a version row was created"
        for v in versions:
            assert v.status != VersionStatus.READY and v.number is None, (v.status, v.number)
        ready_files = s.scalar(
            select(func.count())
            .select_from(File)
            .join(Version, File.version_id == Version.id)
            .where(File.sha256.in_(shas), Version.status == VersionStatus.READY)
        )
        assert ready_files == 0
