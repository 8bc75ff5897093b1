"""Garbage collection of abandoned uploads: ``zoo admin gc``.

What it removes, and why it is safe:

- pending uploads older than ``ZOO_UPLOAD_TTL_HOURS``: marked aborted, their staged bytes
  and open multipart uploads deleted (a client that comes back must open a new upload);
- staged objects (``staging/<upload>/...``) of uploads that are no longer pending (committed,
  failed or aborted) or that the database does not know: leftovers of a crash;
- S3 multipart uploads under ``staging/`` whose upload is not pending (S3 keeps their parts,
  and bills for them, until they are aborted; a bucket lifecycle rule does the same where
  the store supports one: Swift's s3api refuses lifecycle rules, so there gc is the cleaner);
- private copies under ``verifying/`` older than the TTL: a commit that crashed (the store or
  the hub died mid-way) between verifying a blob and promoting it;
- orphaned blobs: objects under ``blobs/`` older than the TTL that no blob row names. A commit
  promotes its blobs inside the transaction that inserts their rows, so a commit that failed
  after the promotion (the database went away) leaves them behind.

The age check keeps everything a commit in flight is using: a commit does not take hours.
A blob that any version references always has its row, and is never deleted. An orphan is
deleted only under a claim on its row (``delete_orphans``), so a commit that reuses those very
bytes while gc runs either waits for the deletion (and stores its own copy) or makes gc skip it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.orm import Blob, Version, VersionStatus, utcnow
from app.storage import Storage
from app.storage.keys import BLOB_PREFIX, VERIFY_PREFIX

log = logging.getLogger(__name__)

STAGING = "staging/"


@dataclass
class GcReport:
    """What a collection did (or, with ``dry_run``, would do)."""

    expired_uploads: list[str] = field(default_factory=list)
    staged_objects_deleted: int = 0
    multipart_aborted: int = 0
    verifying_deleted: int = 0
    orphan_blobs_deleted: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.expired_uploads)} expired upload(s) aborted, "
            f"{self.staged_objects_deleted} staged object(s) deleted, "
            f"{self.multipart_aborted} multipart upload(s) aborted, "
            f"{self.verifying_deleted} interrupted verification(s) deleted, "
            f"{self.orphan_blobs_deleted} orphaned blob(s) deleted"
        )


def _upload_of(key: str) -> str:
    return key[len(STAGING) :].split("/", 1)[0]


def collect(
    factory: sessionmaker[Session], storage: Storage, *, ttl_hours: float, dry_run: bool = False
) -> GcReport:
    """Abort expired pending uploads and delete staged leftovers."""
    report = GcReport()
    cutoff = utcnow() - timedelta(hours=ttl_hours)
    # List the store BEFORE reading which uploads are pending: an upload opened after the
    # listing has no listed keys, so nothing of a live upload can be mistaken for a leftover.
    staged = list(storage.list_keys(STAGING))
    multipart = (
        list(storage.list_multipart_uploads(STAGING)) if storage.supports_presigned_urls else []
    )
    verifying = list(storage.list_keys(VERIFY_PREFIX))
    blobs = {k[len(BLOB_PREFIX) :]: k for k in storage.list_keys(BLOB_PREFIX)}
    with factory() as session:
        expired = session.scalars(
            select(Version).where(
                Version.status == VersionStatus.PENDING, Version.created_at < cutoff
            )
        ).all()
        for version in expired:
            report.expired_uploads.append(version.upload_id)
            if dry_run:
                continue
            version.status = VersionStatus.ABORTED
            version.multipart = {}
            version.message = (
                version.message + "\n" if version.message else ""
            ) + f"aborted by gc: pending for more than {ttl_hours} hours"
        if not dry_run:
            session.commit()
        pending = set(
            session.scalars(
                select(Version.upload_id).where(Version.status == VersionStatus.PENDING)
            )
        )
        known = set(session.scalars(select(Blob.sha256)))

    stale = [k for k in staged if _upload_of(k) not in pending]
    report.staged_objects_deleted = len(stale)
    for upload in multipart:
        if _upload_of(upload.key) not in pending:
            report.multipart_aborted += 1
            if not dry_run:
                storage.abort_multipart(upload.key, upload.upload_id)
    if not dry_run:
        storage.delete_many(stale)
    old_verifying = _older_than(storage, verifying, cutoff)
    orphans = _older_than(storage, [k for sha, k in blobs.items() if sha not in known], cutoff)
    report.verifying_deleted = len(old_verifying)
    if dry_run:
        report.orphan_blobs_deleted = len(orphans)
    else:
        storage.delete_many(old_verifying)
        report.orphan_blobs_deleted = delete_orphans(factory, storage, orphans)
    log.info("gc%s: %s", " (dry run)" if dry_run else "", report.summary())
    return report


def delete_orphans(factory: sessionmaker[Session], storage: Storage, keys: list[str]) -> int:
    """Delete the blob objects at ``keys`` that still have no row; how many were deleted.

    Each deletion happens inside a transaction that has inserted the blob's row, and is then
    rolled back: the row is never seen, but while it is there a commit inserting the same row
    (its claim, before it promotes or reuses the bytes: ``publish.commit_upload``) waits for
    this transaction to end, and if the commit inserted it first, this insert waits for the
    commit and then fails: the blob is in use, and is kept. (PostgreSQL waits on the row's
    unique key, SQLite on its one write lock.) Listing the orphans and deleting them without
    it let a commit that reused an orphan's bytes in between lose them.
    """
    deleted = 0
    for key in keys:
        sha = key[len(BLOB_PREFIX) :]
        with factory() as session:
            try:
                session.execute(insert(Blob).values(sha256=sha, size=0, created_at=utcnow()))
            except IntegrityError:
                continue  # a commit has made it a blob again since the listing
            try:
                storage.delete(key)
                deleted += 1
            finally:
                session.rollback()
    return deleted


def _older_than(storage: Storage, keys: list[str], cutoff: datetime) -> list[str]:
    """The keys whose object was last written before ``cutoff`` (unknown age: kept)."""
    old = []
    for key in keys:
        info = storage.stat(key)
        if info is not None and info.modified is not None and info.modified < cutoff:
            old.append(key)
    return old
