"""Verify an uploaded object and promote it to its blob key, without a check-then-use race.

Checking the staged object and then promoting it leaves a gap: a client that still holds a
presigned PUT (or multipart) URL for the staging key could replace the bytes after the
check and before the copy, putting unverified content at a blob key that other models
share. So the staged object is first moved to a private key no client can write to
(``verifying/<random>``), checked there, and only then promoted.
"""

from __future__ import annotations

import contextlib
import secrets

from app.storage.base import Storage
from app.storage.errors import ObjectNotFound, StorageError, VerificationFailed
from app.storage.keys import VERIFY_PREFIX


def verify_upload(storage: Storage, src_key: str, *, size: int, sha256: str) -> str:
    """Move the upload at ``src_key`` to a private key, check it there, return that key.

    The caller may read the returned key further (e.g. to validate an ONNX file), then
    ``storage.promote(private_key, blob_key(sha256))``, or ``storage.delete`` it. On a
    mismatch raise ``VerificationFailed`` and discard the upload. A missing upload raises
    ``ObjectNotFound``. Leftover ``verifying/`` keys (a crash in between) are garbage.

    Example::

        private = verify_upload(storage, staging_key(upload_id, digest), size=n, sha256=digest)
        check_onnx(storage.read_range(private))
        storage.promote(private, blob_key(digest))
    """
    private = VERIFY_PREFIX + secrets.token_hex(16)
    storage.promote(src_key, private)  # from here on, the uploader cannot change the bytes
    try:
        info = storage.stat(private)
        if info is None:
            raise ObjectNotFound(src_key)
        # A wrong size is rejected without reading the whole object.
        if info.size != size:
            raise VerificationFailed(src_key, f"is {info.size} bytes, the manifest says {size}")
        actual = storage.hash_object(private)
        if (actual.size, actual.sha256) != (size, sha256):
            raise VerificationFailed(
                src_key, f"has sha256 {actual.sha256}, the manifest says {sha256}"
            )
    except BaseException:
        # When the store itself failed, deleting fails too: keep the original error (the
        # leftover private copy is garbage that ``zoo admin gc`` removes).
        with contextlib.suppress(StorageError):
            storage.delete(private)
        raise
    return private


def promote_verified(
    storage: Storage, src_key: str, dst_key: str, *, size: int, sha256: str
) -> None:
    """Move ``src_key`` to ``dst_key`` if it holds exactly ``size`` bytes hashing to ``sha256``.

    On a mismatch raise ``VerificationFailed``; the upload is discarded and nothing appears
    at ``dst_key``. If ``dst_key`` already exists (content addressing: it was verified when
    it was stored), the upload is just deleted. A missing upload raises ``ObjectNotFound``.
    """
    if storage.exists(dst_key):
        storage.delete(src_key)
        return
    private = verify_upload(storage, src_key, size=size, sha256=sha256)
    try:
        storage.promote(private, dst_key)
    finally:
        # After a successful promote this deletes nothing; after a failed one, the copy.
        storage.delete(private)
