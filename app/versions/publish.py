"""Publishing a version: open an upload with a manifest, receive blobs, commit, or abort.

A version is a pending row (an "upload") until commit. Blobs go to staging keys first; only
the server promotes them to ``blobs/sha256/<hex>`` after checking size and sha256, so nothing
unverified is ever served. The version number is assigned at commit, in the same transaction
that flips the status to ready and moves ``latest``: concurrent publishes get consecutive
numbers with no gaps, and a failed or abandoned upload leaves nothing visible.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal, require_write
from app.config import Settings
from app.db import release
from app.errors import (
    DigestMismatch,
    InsufficientStorage,
    InvalidArchive,
    InvalidManifest,
    InvalidOnnx,
    InvalidPath,
    PayloadTooLarge,
    ServiceUnavailable,
    SparsityMismatch,
    UploadNotFound,
    UploadNotPending,
    ValidationFailed,
)
from app.orm import Blob, File, Model, Recipe, Version, VersionStatus, utcnow
from app.storage import (
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    TooLarge,
    VerificationFailed,
    WriteResult,
    blob_key,
    staging_key,
)
from app.storage.base import Source
from app.storage.verify import verify_upload
from app.versions import validation
from app.versions.schemas import BlobTarget, ManifestFile, PartUrl
from app.versions.service import LATEST, move_alias
from zoo.layout import InvalidFilePath, file_type, validate_file_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenedUpload:
    """A pending version and, per distinct blob, where to send it."""

    version: Version
    blobs: list[BlobTarget]


# Written by the hub's own output check (app.versions.reproduce); a publisher may not claim them.
HUB_META_KEYS = frozenset({"outputs_reproduced", "outputs_check"})


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn a failure of the object store into an API error that says what happened: a full
    store is 507 (the operator must free space), any other failure 503 (try again later).
    Whatever was half-written has been undone by the store layer or is left to ``zoo admin gc``.
    """
    try:
        yield
    except TooLarge:
        raise  # the caller's answer: more bytes than the manifest declared
    except StorageFull as e:
        raise InsufficientStorage(
            f"{action}: the hub's storage is full ({e}); nothing of this upload was kept. "
            "Ask the hub's operator to free space, then publish again"
        ) from e
    except StorageError as e:
        raise ServiceUnavailable(
            f"{action}: the hub's object store failed ({e}); nothing was published. "
            "Try again in a moment"
        ) from e


def _quietly(what: str, cleanup: Callable[[], object]) -> None:
    # Clean-up after a failure must not replace the original error: when the store itself is
    # what failed, the clean-up fails too. ``zoo admin gc`` removes what is left behind.
    try:
        cleanup()
    except StorageError as e:
        log.warning("could not %s (zoo admin gc will): %s", what, e)


def check_manifest(files: list[ManifestFile], settings: Settings) -> dict[str, int]:
    """Validate paths, sizes and digests; returns sha256 -> size of the distinct blobs."""
    if len(files) > settings.max_files_per_version:
        raise PayloadTooLarge(
            f"{len(files)} files in one version; the limit is {settings.max_files_per_version}"
        )
    seen: set[str] = set()
    sizes: dict[str, int] = {}
    for f in files:
        try:
            validate_file_path(f.path)
        except InvalidFilePath as e:
            raise InvalidPath(str(e), details={"path": f.path[:1100]}) from e
        if f.path in seen:
            raise InvalidManifest(f"path '{f.path}' appears twice in the manifest")
        seen.add(f.path)
        if f.size > settings.max_file_bytes:
            raise PayloadTooLarge(
                f"file '{f.path}' is {f.size} bytes; the limit is {settings.max_file_bytes}",
                details={"path": f.path, "size": f.size},
            )
        if sizes.setdefault(f.sha256, f.size) != f.size:
            raise InvalidManifest(
                f"sha256 {f.sha256} is declared with two different sizes "
                f"({sizes[f.sha256]} and {f.size}): the manifest lies about one of them"
            )
    if seen and not any(p.endswith(".onnx") for p in seen):
        log.info("publishing a version without an .onnx file")
    return sizes


def _upload_url(settings: Settings, base_url: str, upload_id: str, sha256: str) -> str:
    base = (settings.public_url or base_url).rstrip("/")
    return f"{base}/api/v1/uploads/{upload_id}/blobs/{sha256}"


def open_upload(
    session: Session,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    model: Model,
    files: list[ManifestFile],
    *,
    message: str,
    meta: dict[str, object],
    base_url: str,
) -> OpenedUpload:
    """Create a pending version; answer, per blob, "stored" or where to upload it."""
    require_write(principal, model.namespace.name)
    reserved = sorted(HUB_META_KEYS & set(meta))
    if reserved:
        raise ValidationFailed(
            f"meta key(s) {', '.join(reserved)} are written by the hub when it reproduces the "
            "sample outputs; leave them out"
        )
    sizes = check_manifest(files, settings)
    upload_id = str(uuid.uuid4())
    stored = set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(list(sizes)))))
    paths: dict[str, list[str]] = {}
    for f in files:
        paths.setdefault(f.sha256, []).append(f.path)
    version = Version(
        upload_id=upload_id,
        model_id=model.id,
        status=VersionStatus.PENDING,
        message=message,
        meta=dict(meta),
        created_by=principal.token_id,
        total_size=sum(f.size for f in files),
        files=[
            File(path=f.path, file_type=file_type(f.path), size=f.size, sha256=f.sha256)
            for f in files
        ],
    )
    targets: list[BlobTarget] = []
    multipart: dict[str, str] = {}
    expires = settings.presign_expiry_seconds
    for sha, size in sizes.items():
        target = BlobTarget(sha256=sha, size=size, paths=sorted(paths[sha]), status="upload")
        key = staging_key(upload_id, sha)
        if sha in stored:
            target.status = "stored"
        elif not storage.supports_presigned_urls:
            target.method, target.authenticated = "PUT", True
            target.url = _upload_url(settings, base_url, upload_id, sha)
        elif size <= settings.multipart_threshold_bytes:
            target.method, target.url = "PUT", storage.presign_put(key, expires=expires)
        else:
            part = settings.multipart_part_bytes
            with store_errors(f"starting the upload of blob {sha}"):
                s3_upload = storage.create_multipart(key)
            multipart[sha] = s3_upload
            count = -(-size // part)
            target.method, target.part_size = "PUT", part
            target.parts = [
                PartUrl(
                    part_number=n,
                    url=storage.presign_part(key, s3_upload, n, expires=expires) or "",
                )
                for n in range(1, count + 1)
            ]
        targets.append(target)
    version.multipart = multipart
    session.add(version)
    session.flush()
    return OpenedUpload(version, targets)


def get_upload(session: Session, upload_id: str, *, lock: bool = False) -> Version:
    """A version by upload id (any status); UPLOAD_NOT_FOUND if there is none."""
    try:
        uuid.UUID(upload_id)
    except ValueError as e:
        raise UploadNotFound(f"upload id '{upload_id[:64]}' is not a valid upload id") from e
    version = session.scalar(select(Version).where(Version.upload_id == upload_id))
    if version is None:
        raise UploadNotFound(f"no upload '{upload_id}': open one with POST .../versions")
    return version


def _lock_pending(session: Session, version: Version) -> None:
    # Commit and abort of one upload exclude each other: each re-reads the status under a row
    # lock (PostgreSQL; SQLite serializes writers anyway) held until its transaction ends.
    # Otherwise an abort sent while a slow commit runs (the client timed out) reads "pending"
    # too, and the later of the two overwrites the other's status. A commit takes the lock
    # only after validation: _mark_failed updates the row from another connection.
    session.refresh(version, attribute_names=["status"], with_for_update=True)
    _pending(version)


def _pending(version: Version) -> None:
    if version.status != VersionStatus.PENDING:
        raise UploadNotPending(
            f"upload '{version.upload_id}' is {version.status.value}; open a new one to publish"
        )


def receive_blob(storage: Storage, version: Version, sha256: str, body: Source) -> WriteResult:
    """Store uploaded bytes at the blob's staging key, refusing anything but the declared bytes."""
    _pending(version)
    declared = {f.sha256: f.size for f in version.files}
    if sha256 not in declared:
        raise InvalidManifest(
            f"blob {sha256} is not in the manifest of upload '{version.upload_id}'"
        )
    key = staging_key(version.upload_id, sha256)
    try:
        with store_errors(f"storing blob {sha256}"):
            result = storage.write_stream(key, body, max_bytes=declared[sha256])
    except TooLarge as e:
        raise DigestMismatch(
            f"blob {sha256} is larger than the {declared[sha256]} bytes the manifest declared",
            details={"sha256": sha256, "expected_size": declared[sha256]},
        ) from e
    if result.size != declared[sha256] or result.sha256 != sha256:
        _quietly(f"delete the mismatched upload {key!r}", lambda: storage.delete(key))
        raise DigestMismatch(
            f"uploaded bytes do not match: expected {declared[sha256]} bytes with sha256 {sha256}, "
            f"got {result.size} bytes with sha256 {result.sha256}; upload the file again",
            details={"sha256": sha256, "got_sha256": result.sha256, "got_size": result.size},
        )
    return result


def _insert_blobs(session: Session, rows: Iterable[tuple[str, int]]) -> None:
    """Insert blob rows, ignoring ones a concurrent commit inserted first."""
    values = [{"sha256": s, "size": n, "created_at": utcnow()} for s, n in rows]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Blob).values(values).on_conflict_do_nothing(index_elements=["sha256"]))


def _mark_failed(factory: sessionmaker[Session], version_id: int, reason: str) -> None:
    # The request's own transaction is rolled back when the error propagates, so the failure is
    # recorded in a transaction of its own: the upload must not stay pending after it failed.
    with factory() as s:
        s.execute(
            update(Version)
            .where(Version.id == version_id)
            .values(status=VersionStatus.FAILED, message=reason[:5000])
        )
        s.commit()


def commit_upload(
    session: Session,
    factory: sessionmaker[Session],
    storage: Storage,
    principal: Principal,
    version: Version,
    multipart_parts: dict[str, list[tuple[int, str]]],
) -> Version:
    """Verify every blob, validate ONNX files, then number the version and make it ready."""
    model = version.model
    require_write(principal, model.namespace.name)
    _pending(version)
    sizes = {f.sha256: f.size for f in version.files}
    stored = set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(list(sizes)))))
    to_verify = [s for s in sizes if s not in stored]
    # No connection held while the store verifies (hashes every byte of) the new blobs.
    release(session)

    # Each upload moves to a private key before it is hashed, so a client still holding a
    # presigned URL cannot swap the bytes between the check and the promotion.
    verified: dict[str, str] = {}
    try:
        with store_errors(f"committing upload '{version.upload_id}'"):
            for sha in to_verify:
                if _promoted_earlier(storage, version, sha):
                    continue
                verified[sha] = _verify_blob(storage, version, sha, sizes[sha], multipart_parts)
            report = validation.validate_version(storage, version, keys=verified)
    except (InvalidOnnx, InvalidArchive, SparsityMismatch) as e:
        _quietly("delete verified copies", lambda: storage.delete_many(verified.values()))
        _quietly("delete staged blobs", lambda: _discard_staged(storage, version, to_verify))
        _mark_failed(factory, version.id, e.message)
        raise
    except BaseException:
        # The upload stays pending (the client may commit again once the store is back); the
        # private copies are garbage either way.
        _quietly("delete verified copies", lambda: storage.delete_many(verified.values()))
        raise

    # The blob rows before the promotions: they commit with the rest of this transaction, so
    # no reader sees a row whose bytes are not in place yet. Uncommitted, each row is also this
    # commit's claim on its blob key: gc deletes an orphaned blob (bytes without a row) only
    # while its own claim on that row is in place (gc.delete_orphans), so the two wait for each
    # other. Before, an old orphan with this commit's bytes could be deleted by a gc that
    # listed it just before this commit reused it: a version whose file was gone.
    def promote_verified() -> None:
        for sha, key in verified.items():
            storage.promote(key, blob_key(sha))  # kept as it is if the bytes are there

    try:
        _insert_blobs(session, ((s, sizes[s]) for s in to_verify))
    except BaseException:
        # The database failed (went away, or stayed locked): promote anyway, unclaimed, as
        # before, so that a retry of this commit finds the bytes in place (their staged copies
        # are gone); the retry's own insert claims them and checks that they are still there.
        _quietly("promote verified blobs", promote_verified)
        raise
    with store_errors(f"committing upload '{version.upload_id}'"):
        promote_verified()
        for sha in to_verify:
            # promoted by an earlier attempt of this commit: gc may have removed it since, if
            # that attempt is older than the TTL (once the insert above has returned, it can't)
            if sha not in verified and not storage.exists(blob_key(sha)):
                paths = [f.path for f in version.files if f.sha256 == sha]
                raise DigestMismatch(
                    f"blob {sha} (for {', '.join(paths)}) is no longer stored: upload it "
                    "again, then commit again",
                    details={"sha256": sha, "paths": paths},
                )

    # Claim the upload with its row lock before numbering it: a second commit of the same
    # upload running at once (a retry) waits here until the first ends, then finds it no longer
    # pending. The check at the top alone let both pass, and the second numbered the version
    # again, one past the first, leaving a gap.
    claimed = session.execute(
        update(Version)
        .where(Version.id == version.id, Version.status == VersionStatus.PENDING)
        .values(committed_at=utcnow())
        .returning(Version.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if claimed is None:
        raise UploadNotPending(
            f"upload '{version.upload_id}' was committed or closed by another request while "
            "this one ran; list the versions to see it, or open a new upload to publish"
        )

    version.recipes = [
        Recipe(name=validation.recipe_name(f.path), path=f.path, sha256=f.sha256)
        for f in version.files
        if f.file_type == "recipe"
    ]
    version.sparsity, version.quantized = report.sparsity, report.quantized
    version.sparsity_profile = report.profile
    version.multipart = {}
    # Only now, with nothing left that could fail slowly: an abort that arrived meanwhile
    # (a client that timed out) wins, or waits for this transaction and is refused.
    _lock_pending(session, version)
    # The atomic increment takes the model row's write lock (PostgreSQL row lock, SQLite's
    # database lock) until this transaction ends, so concurrent commits number in sequence.
    number = session.execute(
        update(Model)
        .where(Model.id == model.id)
        .values(
            latest_version=func.coalesce(Model.latest_version, 0) + 1,
            sparsity=report.sparsity,
            quantized=report.quantized,
            updated_at=utcnow(),
        )
        .returning(Model.latest_version)
    ).scalar_one()
    version.number = number
    version.status = VersionStatus.READY
    version.committed_at = utcnow()
    session.flush()
    session.refresh(model)
    move_alias(session, model, LATEST, version, principal.token_id)
    return version


def _promoted_earlier(storage: Storage, version: Version, sha: str) -> bool:
    # An earlier commit of this upload verified and promoted the blob, then failed before its
    # transaction committed (the database went away): the staged copy is gone, the blob is in
    # place. Blob keys are only ever written with verified bytes, so it needs no new check.
    return not storage.exists(staging_key(version.upload_id, sha)) and storage.exists(blob_key(sha))


def _verify_blob(
    storage: Storage,
    version: Version,
    sha: str,
    size: int,
    multipart_parts: dict[str, list[tuple[int, str]]],
) -> str:
    """Complete a multipart upload if needed, then verify the staged blob; its private key."""
    key = staging_key(version.upload_id, sha)
    paths = [f.path for f in version.files if f.sha256 == sha]
    s3_upload = version.multipart.get(sha)
    if s3_upload and not storage.exists(key):
        parts = multipart_parts.get(sha)
        if not parts:
            raise InvalidManifest(
                f"blob {sha} was uploaded in parts: list them (part_number, etag) in 'multipart'"
            )
        storage.complete_multipart(key, s3_upload, sorted(parts))
    try:
        return verify_upload(storage, key, size=size, sha256=sha)
    except ObjectNotFound as e:
        raise DigestMismatch(
            f"blob {sha} (for {', '.join(paths)}) was never uploaded: upload it, then commit again",
            details={"sha256": sha, "paths": paths},
        ) from e
    except VerificationFailed as e:
        raise DigestMismatch(
            f"uploaded bytes for {', '.join(paths)} do not match the manifest: {e}, "
            "then commit again",
            details={"sha256": sha, "paths": paths},
        ) from e


def _discard_staged(storage: Storage, version: Version, shas: Iterable[str]) -> None:
    storage.delete_many(staging_key(version.upload_id, s) for s in shas)


def abort_upload(
    session: Session, storage: Storage, principal: Principal, version: Version
) -> None:
    """Abandon a pending upload: staged bytes and multipart parts are deleted."""
    require_write(principal, version.model.namespace.name)
    _lock_pending(session, version)
    # The abort is recorded even when the store cannot be cleaned right now (it may be the
    # very failure the client is giving up on): gc deletes staged objects and multipart
    # uploads of every upload that is no longer pending.
    for sha, s3_upload in version.multipart.items():
        key = staging_key(version.upload_id, sha)
        abort = functools.partial(storage.abort_multipart, key, s3_upload)
        _quietly(f"abort the multipart upload of {key!r}", abort)
    shas = {f.sha256 for f in version.files}
    _quietly("delete staged blobs", lambda: _discard_staged(storage, version, shas))
    version.status = VersionStatus.ABORTED
    version.multipart = {}
    session.flush()
