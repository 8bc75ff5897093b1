"""Object storage for blobs and staged uploads: a ``Storage`` protocol and two backends.

``FilesystemStorage`` (the embedded default) keeps objects as files under a root;
``S3Storage`` uses any S3-compatible store and hands clients presigned URLs. Keys come from
:mod:`app.storage.keys`; errors from :mod:`app.storage.errors`.
"""

from typing import TYPE_CHECKING

from app.storage.base import MultipartUpload, ObjectInfo, Storage, WriteResult
from app.storage.errors import (
    InvalidKey,
    NotSupported,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
    TooLarge,
    VerificationFailed,
)
from app.storage.filesystem import FilesystemStorage
from app.storage.keys import blob_key, staging_key, validate_key
from app.storage.s3 import S3Storage
from app.storage.verify import promote_verified, verify_upload

__all__ = [
    "FilesystemStorage",
    "InvalidKey",
    "MultipartUpload",
    "NotSupported",
    "ObjectInfo",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "TooLarge",
    "VerificationFailed",
    "WriteResult",
    "blob_key",
    "promote_verified",
    "staging_key",
    "validate_key",
    "verify_upload",
]

if TYPE_CHECKING:
    # mypy proves here that both backends implement the protocol.
    def _conforms(fs: FilesystemStorage, s3: S3Storage) -> tuple[Storage, Storage]:
        return fs, s3
