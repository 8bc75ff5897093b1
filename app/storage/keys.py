"""Object keys: the layout of the store and the rules every key must follow.

Blobs are content-addressed (``blobs/sha256/<hex>``): identical content is stored once.
Uploads land first under ``staging/<upload-id>/<sha256>`` and are promoted to their blob key
only after the server has checked their size and sha256, so a blob key never holds
unverified bytes.
"""

from __future__ import annotations

import re

from app.storage.errors import InvalidKey

BLOB_PREFIX = "blobs/sha256/"
STAGING_PREFIX = "staging/"
# Private keys where uploads are checked (see app.storage.verify); no client gets URLs here.
VERIFY_PREFIX = "verifying/"
# Prefix of the filesystem backend's temporary files; no key may use it so that a temp
# file can never be mistaken for (or collide with) a stored object.
TEMP_PREFIX = ".zoo-tmp-"
# S3's own limit on key length, in UTF-8 bytes.
MAX_KEY_BYTES = 1024

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise InvalidKey.

    A key is a ``/``-separated relative path: not empty, no ``..``, no leading ``/``, no empty
    or ``.`` segment, no backslash, NUL or other control character, at most 1024 UTF-8 bytes.
    """
    _check_text(key, what="key")
    if key.endswith("/"):
        raise InvalidKey(f"invalid key {key!r}: must not end with '/'")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` unchanged if it is a safe listing prefix (may be empty or end in ``/``)."""
    if prefix == "":
        return prefix
    _check_text(prefix.removesuffix("/"), what="prefix")
    return prefix


def blob_key(sha256: str) -> str:
    """The content-addressed key of a blob: ``blobs/sha256/<64 lowercase hex>``."""
    return BLOB_PREFIX + _check_sha256(sha256)


def staging_key(upload_id: str, sha256: str) -> str:
    """Where an upload is staged before verification: ``staging/<upload-id>/<sha256>``."""
    if not isinstance(upload_id, str) or not _UPLOAD_ID_RE.fullmatch(upload_id):
        raise InvalidKey(
            f"invalid upload id {upload_id!r}: use 1-128 characters from A-Z a-z 0-9 _ -"
        )
    return f"{STAGING_PREFIX}{upload_id}/{_check_sha256(sha256)}"


def _check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise InvalidKey(f"invalid sha256 {sha256!r}: expected 64 lowercase hex digits")
    return sha256


def _check_text(key: str, *, what: str) -> None:
    if not isinstance(key, str) or key == "":
        raise InvalidKey(f"invalid {what} {key!r}: must be a non-empty string")
    if key.startswith("/"):
        raise InvalidKey(f"invalid {what} {key!r}: must not start with '/'")
    if ".." in key:
        raise InvalidKey(f"invalid {what} {key!r}: must not contain '..'")
    if "\\" in key:
        raise InvalidKey(f"invalid {what} {key!r}: must not contain a backslash")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidKey(f"invalid {what} {key!r}: must not contain NUL or control characters")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidKey(f"invalid {what} {key!r}: not valid Unicode text") from e
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"invalid {what}: longer than {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if segment in ("", "."):
            raise InvalidKey(f"invalid {what} {key!r}: empty or '.' path segment")
        if segment.startswith(TEMP_PREFIX):
            raise InvalidKey(f"invalid {what} {key!r}: {TEMP_PREFIX!r} is reserved")
