"""The ``Storage`` protocol every backend implements, and the small values it returns.

Two backends exist: :class:`app.storage.filesystem.FilesystemStorage` (the embedded default)
and :class:`app.storage.s3.S3Storage` (any S3-compatible store). Code above this layer only
sees ``Storage``; backend-only features are expressed so callers can branch without
``isinstance``: ``presign_*`` return ``None`` and ``local_path`` returns a path only where
that makes sense, and ``supports_presigned_urls`` says whether clients can talk to the
store directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from app.storage.errors import TooLarge

MiB = 1024 * 1024
# Read granularity: large enough to keep syscall/HTTP overhead low, small enough that many
# concurrent downloads stay cheap in memory.
CHUNK_SIZE = 1 * MiB
# SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN_EXPIRY_SECONDS = 7 * 24 * 3600

Source = Iterable[bytes] | BinaryIO


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What ``stat`` knows about a stored object."""

    key: str
    size: int
    # The store's version tag (S3 ETag, quoted as sent); None on the filesystem.
    etag: str | None = None
    # When the object was last written (aware, UTC), if the store says: gc's age check.
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Size and lowercase hex sha256 of bytes written (or read back by ``hash_object``)."""

    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An unfinished multipart upload, as listed for garbage collection."""

    key: str
    upload_id: str
    initiated: datetime | None


@runtime_checkable
class Storage(Protocol):
    """An object store holding immutable, content-addressed blobs and staged uploads.

    Keys are validated by :func:`app.storage.keys.validate_key`; an unsafe key raises
    ``InvalidKey`` before anything touches the store.
    """

    kind: str
    supports_presigned_urls: bool

    def check(self) -> None:
        """Readiness probe: raise ``StorageUnavailable`` if the store cannot be used now."""
        ...

    def ensure_ready(self) -> None:
        """Create what the store needs (directory, bucket, lifecycle rule); idempotent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size, or ``None`` if there is no object at ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Delete the object at ``key``; a missing object is not an error."""
        ...

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several objects (batched where the backend can); missing ones are skipped."""
        ...

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in no guaranteed order."""
        ...

    def write_stream(
        self, key: str, chunks: Source, *, max_bytes: int | None = None
    ) -> WriteResult:
        """Store ``chunks`` at ``key`` atomically, hashing on the way; memory stays bounded.

        Either the whole content ends up at ``key`` or nothing changes there: on any error,
        or when more than ``max_bytes`` arrive (``TooLarge``), no partial object remains.
        """
        ...

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start..end`` (inclusive, like an HTTP Range) of the object.

        ``ObjectNotFound`` is raised by the call itself, not on first iteration, so the HTTP
        layer can answer 404 before it starts a response. ``end`` past the last byte is
        clamped; ``start`` past the end yields nothing.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """A real file path for the object (filesystem backend, for sendfile), else ``None``."""
        ...

    def hash_object(self, key: str) -> WriteResult:
        """Size and sha256 of the stored object, by a streaming read in constant memory."""
        ...

    def promote(self, src_key: str, dst_key: str) -> None:
        """Move a verified object from ``src_key`` to ``dst_key`` (atomic rename / server copy).

        If ``dst_key`` already holds an object (content addressing: same bytes), ``src_key``
        is simply deleted.
        """
        ...

    def presign_get(
        self,
        key: str,
        *,
        expires: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A time-limited download URL, or ``None`` if the backend cannot presign."""
        ...

    def presign_put(self, key: str, *, expires: int | None = None) -> str | None:
        """A time-limited single-request upload URL, or ``None`` if the backend cannot presign."""
        ...

    def create_multipart(self, key: str) -> str:
        """Start a multipart upload to ``key`` and return its upload id."""
        ...

    def presign_part(
        self, key: str, upload_id: str, part_number: int, *, expires: int | None = None
    ) -> str | None:
        """A time-limited URL to PUT part ``part_number`` (1-10000) of a multipart upload."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the uploaded parts, given as ``(part_number, etag)`` pairs."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abandon a multipart upload and free its parts; an unknown upload is not an error."""
        ...

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[MultipartUpload]:
        """Unfinished multipart uploads under ``prefix`` (for garbage collection)."""
        ...


def iter_source(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the bytes of an iterable of chunks or of a binary file object."""
    # A file object is iterable too, but by *lines*: read it in fixed-size chunks instead.
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            yield chunk
        return
    for chunk in source:
        if chunk:
            yield bytes(chunk)


class HashingCounter:
    """Hash and count bytes as they pass, enforcing an optional size limit."""

    def __init__(self, key: str, max_bytes: int | None) -> None:
        self.key = key
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        """Account for ``chunk``; raise ``TooLarge`` once the limit is passed."""
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise TooLarge(self.key, self.max_bytes)
        self._hash.update(chunk)

    def result(self) -> WriteResult:
        """The size and sha256 of everything seen."""
        return WriteResult(size=self.size, sha256=self._hash.hexdigest())


def check_range(start: int, end: int | None) -> None:
    """Reject ranges no HTTP Range header could express."""
    if start < 0:
        raise ValueError(f"range start must be >= 0, got {start}")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before start {start}")


def check_expiry(expires: int) -> int:
    """Return ``expires`` if it is a valid presigned-URL lifetime in seconds."""
    if not 1 <= expires <= MAX_PRESIGN_EXPIRY_SECONDS:
        raise ValueError(
            f"presigned URL expiry must be 1..{MAX_PRESIGN_EXPIRY_SECONDS} seconds, got {expires}"
        )
    return expires
