"""Errors raised by the object-storage layer.

The hierarchy::

    StorageError                 any failure of the storage layer
    ├── StorageUnavailable       the store cannot be reached or used (network, permissions, bucket)
    ├── StorageFull              the store has no space left for a write (disk full, quota)
    ├── ObjectNotFound           no object at the key
    ├── TooLarge                 a write went past its max_bytes limit
    ├── VerificationFailed       an upload's size or sha256 differs from its manifest
    ├── InvalidKey               a key that could escape the store or is malformed (also ValueError)
    └── NotSupported             the backend has no such operation (multipart on the filesystem)

Backend exceptions (OSError, botocore's ClientError, ...) are chained with ``raise ... from e``
so the original cause stays in the traceback; messages name the key, never any credential.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every storage-layer error."""


class StorageUnavailable(StorageError):
    """The store cannot be reached or used: network down, bucket missing, permission denied."""


class StorageFull(StorageError):
    """The store has no space left (ENOSPC, a quota): the write was undone, nothing remains."""


class ObjectNotFound(StorageError):
    """There is no object at the given key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at key {key!r}")
        self.key = key


class TooLarge(StorageError):
    """A write went past its ``max_bytes`` limit; nothing was stored."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"object for key {key!r} is larger than the limit of {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes


class VerificationFailed(StorageError):
    """An uploaded object's size or sha256 differs from what its manifest declared."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"upload {key!r} {problem}; upload the file again")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """A key is malformed or could escape the store (``..``, leading ``/``, backslash, NUL)."""


class NotSupported(StorageError):
    """The backend does not offer this operation (e.g. multipart uploads on the filesystem)."""
