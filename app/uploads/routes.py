"""Upload endpoints: PUT a blob (filesystem backend), commit, abort."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import anyio
import anyio.from_thread
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from app.auth import DbSession, RequiredPrincipal, require_write
from app.db import release
from app.deps import BaseUrl, SessionFactoryDep, SettingsDep, StorageDep
from app.errors import (
    DigestMismatch,
    Forbidden,
    InvalidArchive,
    InvalidManifest,
    InvalidOnnx,
    SparsityMismatch,
    Unauthorized,
    UploadNotFound,
    UploadNotPending,
    error_responses,
)
from app.orm import Version
from app.responses import json_response
from app.versions import publish, reproduce
from app.versions.present import version_out
from app.versions.schemas import SHA256_PATTERN, UploadCommit, VersionOut

router = APIRouter(
    prefix="/uploads/{upload_id}",
    tags=["uploads"],
    responses=error_responses(Unauthorized, Forbidden, UploadNotFound, UploadNotPending),
)


class BlobReceived(BaseModel):
    """A blob stored at its staging key, verified against the manifest."""

    sha256: str
    size: int


def writable_upload(upload_id: str, session: DbSession, principal: RequiredPrincipal) -> Version:
    """The upload, with its files loaded, if the token may write to its namespace.

    Its read transaction ends here: what follows streams or verifies bytes, for minutes on a
    large model, and must not hold a database connection meanwhile (``db.release``).
    """
    version = publish.get_upload(session, upload_id)
    require_write(principal, version.model.namespace.name)
    session.refresh(version, attribute_names=["files"])
    release(session)
    return version


WritableUpload = Annotated[Version, Depends(writable_upload)]


@router.put(
    "/blobs/{sha256}",
    status_code=201,
    response_model=BlobReceived,
    responses=error_responses(DigestMismatch, InvalidManifest),
)
async def upload_blob(
    sha256: Annotated[str, Path(pattern=SHA256_PATTERN)],
    request: Request,
    version: WritableUpload,
    storage: StorageDep,
) -> BlobReceived:
    """Upload one blob's bytes as the request body (filesystem backend). The bytes are hashed
    while they stream to disk and kept only if size and sha256 match the manifest."""
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes:
        return await stream.__anext__()

    def chunks() -> Iterator[bytes]:
        # Runs in a worker thread: pull each chunk from the event loop as the store writes.
        while True:
            try:
                chunk = anyio.from_thread.run(next_chunk)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk

    result = await anyio.to_thread.run_sync(
        lambda: publish.receive_blob(storage, version, sha256, chunks())
    )
    return BlobReceived(sha256=result.sha256, size=result.size)


@router.post(
    "/commit",
    response_model=VersionOut,
    responses=error_responses(
        DigestMismatch, InvalidOnnx, InvalidArchive, InvalidManifest, SparsityMismatch
    ),
)
def commit_upload(
    version: WritableUpload,
    session: DbSession,
    principal: RequiredPrincipal,
    storage: StorageDep,
    factory: SessionFactoryDep,
    base: BaseUrl,
    settings: SettingsDep,
    body: UploadCommit | None = None,
) -> Response:
    """Verify every blob and make the version ready: it gets the next number and ``latest``."""
    parts = {
        b.sha256: [(p.part_number, p.etag) for p in b.parts]
        for b in (body.multipart if body else [])
    }
    committed = publish.commit_upload(session, factory, storage, principal, version, parts)
    if settings.verify_outputs:  # runs after the commit is durable, off the request's path
        reproduce.schedule(session, factory, storage, committed.id)
    # A Response, not the model: FastAPI would validate a returned model in a worker thread
    # before the transaction ends, and this one holds the model's row lock. With every worker
    # thread taken by downloads of the same model (blocked on that lock to count themselves),
    # that wait never ended: the hub hung. The body is serialized here, in this thread.
    return json_response(version_out(session, committed, base))


@router.delete("", status_code=204)
def abort_upload(
    version: WritableUpload, session: DbSession, principal: RequiredPrincipal, storage: StorageDep
) -> None:
    """Abandon the upload; its staged bytes are deleted and it never becomes visible."""
    publish.abort_upload(session, storage, principal, version)
