"""The storage layer, run on both backends: the filesystem and S3 (moto, or a real server).

S3 tests share one bucket per module, so every test uses fresh keys (random content or a
random upload id).
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.awsrequest import AWSResponse

from app.storage import (
    FilesystemStorage,
    InvalidKey,
    NotSupported,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageUnavailable,
    TooLarge,
    VerificationFailed,
    blob_key,
    promote_verified,
    staging_key,
    verify_upload,
)
from app.storage.base import CHUNK_SIZE, MiB
from app.storage.s3_presigned import content_disposition
from support.fixtures import S3Target
from support.live import free_port
from support.s3 import SMALL_PART, make_s3_storage, new_bucket_name, remove_bucket, s3_admin


@pytest.fixture(scope="module")
def s3_bucket(s3_target: S3Target) -> Iterator[str]:
    """A fresh bucket for this module, removed afterwards."""
    bucket = new_bucket_name()
    make_s3_storage(s3_target, bucket).ensure_ready()
    try:
        yield bucket
    finally:
        remove_bucket(s3_target, bucket)


@pytest.fixture
def s3_storage(s3_target: S3Target, s3_bucket: str) -> S3Storage:
    """An ``S3Storage`` with a 5 MiB multipart threshold and part size."""
    return make_s3_storage(
        s3_target, s3_bucket, multipart_threshold=SMALL_PART, part_size=SMALL_PART
    )


@pytest.fixture
def fs_storage(tmp_path: Path) -> FilesystemStorage:
    """A ``FilesystemStorage`` in a fresh temporary directory."""
    storage = FilesystemStorage(tmp_path / "store")
    storage.ensure_ready()
    return storage


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each backend in turn: the test runs once on the filesystem and once on S3."""
    name = "fs_storage" if request.param == "filesystem" else "s3_storage"
    backend: Storage = request.getfixturevalue(name)
    return backend


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uid() -> str:
    """A fresh upload id / key namespace: tests share one bucket per module."""
    return secrets.token_hex(8)


def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(storage.read_range(key, start, end))


def stray_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# -- basics ---------------------------------------------------------------------------


def test_backends_implement_the_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)
    assert storage.kind in ("filesystem", "s3")
    storage.check()
    storage.ensure_ready()  # idempotent


def test_write_read_stat_delete_round_trip(storage: Storage) -> None:
    key = staging_key(uid(), sha(b"x"))
    result = storage.write_stream(key, [b"hello ", b"", b"world"])
    assert (result.size, result.sha256) == (11, sha(b"hello world"))
    assert storage.exists(key)
    info = storage.stat(key)
    assert info is not None and info.size == 11
    assert read_all(storage, key) == b"hello world"
    assert storage.hash_object(key) == result
    storage.delete(key)
    assert not storage.exists(key)
    assert storage.stat(key) is None
    storage.delete(key)  # deleting a missing object is fine
    with pytest.raises(ObjectNotFound):
        storage.read_range(key)  # raised by the call, before any iteration
    with pytest.raises(ObjectNotFound):
        storage.hash_object(key)


def test_write_from_a_file_object(storage: Storage) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 123)
    key = blob_key(sha(data))
    assert storage.write_stream(key, io.BytesIO(data)).sha256 == sha(data)
    assert read_all(storage, key) == data


def test_empty_object(storage: Storage) -> None:
    key = blob_key(sha(b""))
    assert storage.write_stream(key, []).size == 0
    assert storage.stat(key) is not None
    assert read_all(storage, key) == b""
    assert storage.hash_object(key).sha256 == sha(b"")


def test_overwrite_replaces_the_object(storage: Storage) -> None:
    key = staging_key(uid(), sha(b"x"))
    storage.write_stream(key, [b"old content"])
    storage.write_stream(key, [b"new"])
    assert read_all(storage, key) == b"new"


def test_ranges(storage: Storage) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 17)
    n = len(data)
    key = blob_key(sha(data))
    storage.write_stream(key, [data])
    cases = {
        "first byte": (0, 0, data[:1]),
        "last byte": (n - 1, n - 1, data[-1:]),
        "middle, across chunks": (1000, CHUNK_SIZE + 5000, data[1000 : CHUNK_SIZE + 5001]),
        "whole, explicit": (0, n - 1, data),
        "whole, open": (0, None, data),
        "suffix, open": (n - 10, None, data[-10:]),
        "end past the end is clamped": (n - 5, n + 100, data[-5:]),
        "start past the end is empty": (n + 5, None, b""),
    }
    for name, (start, end, expected) in cases.items():
        assert read_all(storage, key, start, end) == expected, name


def test_invalid_ranges_are_rejected(storage: Storage) -> None:
    key = staging_key(uid(), sha(b"x"))
    storage.write_stream(key, [b"abc"])
    with pytest.raises(ValueError):
        storage.read_range(key, -1)
    with pytest.raises(ValueError):
        storage.read_range(key, 2, 1)


def test_list_keys_filters_by_prefix(storage: Storage) -> None:
    ns = f"list-{uid()}"
    keys = [f"{ns}/a/1", f"{ns}/a/2", f"{ns}/ab/1", f"{ns}/b/1"]
    for key in keys:
        storage.write_stream(key, [b"."])
    assert sorted(storage.list_keys(f"{ns}/a/")) == keys[:2]
    assert sorted(storage.list_keys(f"{ns}/a")) == keys[:3]  # a plain string prefix, as on S3
    assert sorted(storage.list_keys(f"{ns}/")) == keys
    assert list(storage.list_keys(f"{ns}/missing/")) == []
    storage.delete_many(keys)
    assert list(storage.list_keys(f"{ns}/")) == []


# -- content addressing and promotion -----------------------------------------------------


def test_promote_moves_a_staged_upload_to_its_blob_key(storage: Storage) -> None:
    data = os.urandom(4096)
    staged, blob = staging_key(uid(), sha(data)), blob_key(sha(data))
    storage.write_stream(staged, [data])
    assert storage.hash_object(staged).sha256 == sha(data)
    storage.promote(staged, blob)
    assert not storage.exists(staged)
    assert read_all(storage, blob) == data


def test_promote_onto_an_existing_blob_keeps_one_copy(storage: Storage) -> None:
    data = os.urandom(4096)
    blob = blob_key(sha(data))
    storage.write_stream(blob, [data])
    for _ in range(2):
        staged = staging_key(uid(), sha(data))
        storage.write_stream(staged, [data])
        storage.promote(staged, blob)
        assert not storage.exists(staged)
    assert list(storage.list_keys(blob)) == [blob]
    assert storage.hash_object(blob).sha256 == sha(data)


def test_promote_of_a_missing_source(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.promote(staging_key(uid(), sha(b"a")), blob_key(sha(b"a" + os.urandom(8))))


def test_promote_verified_accepts_a_matching_upload(storage: Storage) -> None:
    data = os.urandom(3000)
    staged, blob = staging_key(uid(), sha(data)), blob_key(sha(data))
    storage.write_stream(staged, [data])
    promote_verified(storage, staged, blob, size=len(data), sha256=sha(data))
    assert not storage.exists(staged)
    assert read_all(storage, blob) == data
    assert list(storage.list_keys("verifying/")) == []
    # Again with the blob already stored: the duplicate upload is just dropped.
    storage.write_stream(staged, [data])
    promote_verified(storage, staged, blob, size=len(data), sha256=sha(data))
    assert not storage.exists(staged)


@pytest.mark.parametrize("lie", ["size", "sha256"])
def test_promote_verified_rejects_a_mismatching_upload(storage: Storage, lie: str) -> None:
    data = os.urandom(3000)
    claimed = os.urandom(3000) if lie == "sha256" else data + b"!"
    staged, blob = staging_key(uid(), sha(claimed)), blob_key(sha(claimed))
    storage.write_stream(staged, [data])
    with pytest.raises(VerificationFailed, match="upload the file again"):
        promote_verified(storage, staged, blob, size=len(claimed), sha256=sha(claimed))
    assert not storage.exists(blob)
    assert not storage.exists(staged)
    assert [k for k in storage.list_keys("verifying/")] == []


def test_verify_upload_hands_back_a_private_copy(storage: Storage) -> None:
    data = os.urandom(3000)
    staged = staging_key(uid(), sha(data))
    storage.write_stream(staged, [data])
    private = verify_upload(storage, staged, size=len(data), sha256=sha(data))
    assert private.startswith("verifying/")
    assert not storage.exists(staged)
    # A client still holding an upload URL for the staging key changes nothing any more.
    storage.write_stream(staged, [b"swapped after the check"])
    assert read_all(storage, private) == data
    storage.promote(private, blob_key(sha(data)))
    assert read_all(storage, blob_key(sha(data))) == data


def test_promote_verified_of_a_missing_upload(storage: Storage) -> None:
    digest = sha(os.urandom(8))
    with pytest.raises(ObjectNotFound):
        promote_verified(
            storage, staging_key(uid(), digest), blob_key(digest), size=8, sha256=digest
        )


# -- atomicity and limits -------------------------------------------------------------------


def failing_source(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"\xab" * MiB
        sent += MiB
    raise RuntimeError("client went away")


@pytest.mark.parametrize("size", [MiB, SMALL_PART + 2 * MiB], ids=["single-put", "multipart"])
def test_failed_write_leaves_nothing(storage: Storage, size: int) -> None:
    ns = uid()
    key = staging_key(ns, sha(b"x"))
    with pytest.raises(RuntimeError, match="client went away"):
        storage.write_stream(key, failing_source(size))
    assert not storage.exists(key)
    assert list(storage.list_keys(f"staging/{ns}/")) == []
    assert list(storage.list_multipart_uploads(f"staging/{ns}/")) == []
    if isinstance(storage, FilesystemStorage):
        assert stray_files(storage.root) == []


def test_failed_overwrite_keeps_the_previous_object(storage: Storage) -> None:
    key = staging_key(uid(), sha(b"x"))
    storage.write_stream(key, [b"previous"])
    with pytest.raises(RuntimeError):
        storage.write_stream(key, failing_source(MiB))
    assert read_all(storage, key) == b"previous"


@pytest.mark.parametrize("size", [1000, SMALL_PART + MiB], ids=["single-put", "multipart"])
def test_max_bytes_exceeded_stores_nothing(storage: Storage, size: int) -> None:
    ns = uid()
    key = staging_key(ns, sha(b"x"))
    data = os.urandom(size)
    with pytest.raises(TooLarge):
        storage.write_stream(key, io.BytesIO(data), max_bytes=size - 1)
    assert not storage.exists(key)
    assert list(storage.list_keys(f"staging/{ns}/")) == []
    assert list(storage.list_multipart_uploads(f"staging/{ns}/")) == []
    if isinstance(storage, FilesystemStorage):
        assert stray_files(storage.root) == []
    assert storage.write_stream(key, io.BytesIO(data), max_bytes=size).size == size


def test_multipart_write_and_promote(storage: Storage) -> None:
    data = os.urandom(11 * MiB + 4321)  # three parts of 5 MiB, 5 MiB and the rest on S3
    staged, blob = staging_key(uid(), sha(data)), blob_key(sha(data))
    result = storage.write_stream(staged, io.BytesIO(data))
    assert (result.size, result.sha256) == (len(data), sha(data))
    # promote uses boto3's managed copy, which goes multipart (UploadPartCopy) here too.
    storage.promote(staged, blob)
    assert storage.hash_object(blob) == result
    assert read_all(storage, blob, 5 * MiB - 1, 5 * MiB) == data[5 * MiB - 1 : 5 * MiB + 1]


# -- keys -------------------------------------------------------------------------------

BAD_KEYS = ["", "/abs", "a/../b", "..", "a\\b", "a\x00b", "a\nb", "a//b", "a/", "./a", "a/./b"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected_before_touching_the_store(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.write_stream(key, [b"x"])
    for call in (storage.exists, storage.stat, storage.delete, storage.read_range):
        with pytest.raises(InvalidKey):
            call(key)
    with pytest.raises(InvalidKey):
        storage.promote(key, "ok")
    with pytest.raises(InvalidKey):
        storage.presign_get(key)


@pytest.mark.parametrize(
    "make",
    [
        lambda: blob_key("A" * 64),
        lambda: blob_key("a" * 63),
        lambda: blob_key("../" + "a" * 61),
        lambda: staging_key("../up", "a" * 64),
        lambda: staging_key("up/load", "a" * 64),
        lambda: staging_key("", "a" * 64),
    ],
)
def test_key_builders_validate(make: Callable[[], str]) -> None:
    with pytest.raises(ValueError):  # InvalidKey is a ValueError
        make()


def test_key_builders() -> None:
    assert blob_key("0" * 64) == "blobs/sha256/" + "0" * 64
    assert staging_key("up-1", "f" * 64) == "staging/up-1/" + "f" * 64


# -- filesystem specifics --------------------------------------------------------------------


def test_filesystem_local_path_and_no_presigning(fs_storage: FilesystemStorage) -> None:
    key = staging_key(uid(), sha(b"x"))
    assert fs_storage.local_path(key) is None
    fs_storage.write_stream(key, [b"bytes"])
    path = fs_storage.local_path(key)
    assert path is not None and path.read_bytes() == b"bytes"
    assert not fs_storage.supports_presigned_urls
    assert fs_storage.presign_get(key) is None
    assert fs_storage.presign_put(key) is None
    assert list(fs_storage.list_multipart_uploads()) == []
    with pytest.raises(NotSupported):
        fs_storage.create_multipart(key)


def test_filesystem_delete_prunes_empty_directories(fs_storage: FilesystemStorage) -> None:
    ns = uid()
    key = staging_key(ns, sha(b"x"))
    fs_storage.write_stream(key, [b"x"])
    fs_storage.promote(key, blob_key(sha(b"x")))
    assert not (fs_storage.root / "staging" / ns).exists()


def test_filesystem_check_fails_when_root_is_unusable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    with pytest.raises(StorageUnavailable, match="not writable"):
        FilesystemStorage(not_a_dir).check()
    with pytest.raises(StorageUnavailable):
        FilesystemStorage(not_a_dir / "sub").ensure_ready()


# -- S3 specifics: presigned URLs, multipart, readiness ---------------------------------------


def test_promote_copes_with_stores_refusing_copy_source_if_match(s3_storage: S3Storage) -> None:
    # Swift s3api fails CopySourceIfMatch on objects uploaded in parts; imitate it here so
    # the fallback is tested on moto too.
    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if "x-amz-copy-source-if-match" not in params["headers"]:
            return None
        error = {"Code": "PreconditionFailed", "Message": "At least one of the preconditions"}
        return AWSResponse(params["url"], 412, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 412},
        }

    s3_storage._client.meta.events.register("before-call.s3.UploadPartCopy", refuse)
    data = os.urandom(SMALL_PART + MiB)
    staged, blob = staging_key(uid(), sha(data)), blob_key(sha(data))
    s3_storage.write_stream(staged, [data])
    s3_storage.promote(staged, blob)
    assert s3_storage.hash_object(blob).sha256 == sha(data)
    assert not s3_storage.exists(staged)


def test_presigned_get(s3_storage: S3Storage) -> None:
    data = os.urandom(1000)
    key = blob_key(sha(data))
    s3_storage.write_stream(key, [data])
    url = s3_storage.presign_get(
        key, expires=60, filename="model.onnx", content_type="application/octet-stream"
    )
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert 'filename="model.onnx"' in response.headers["content-disposition"]
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]


def test_expired_presigned_get_is_refused(s3_storage: S3Storage, s3_target: S3Target) -> None:
    key = staging_key(uid(), sha(b"x"))
    s3_storage.write_stream(key, [b"secret bytes"])
    url = s3_storage.presign_get(key, expires=1)
    time.sleep(2)
    if s3_target.is_moto:
        pytest.skip("moto does not check presigned-URL expiry; run with ZOO_TEST_S3_ENDPOINT")
    assert httpx.get(url).status_code == 403


def test_presigned_put_then_verify(s3_storage: S3Storage) -> None:
    data = os.urandom(70_000)
    key = staging_key(uid(), sha(data))
    response = httpx.put(s3_storage.presign_put(key, expires=60), content=data)
    assert response.status_code == 200, response.text
    assert s3_storage.hash_object(key).sha256 == sha(data)


def test_presigned_multipart_upload(s3_storage: S3Storage) -> None:
    data = os.urandom(SMALL_PART + MiB)
    ns = uid()
    key = staging_key(ns, sha(data))
    upload_id = s3_storage.create_multipart(key)
    assert [u.upload_id for u in s3_storage.list_multipart_uploads(f"staging/{ns}/")] == [upload_id]
    parts = []
    for number, piece in ((2, data[SMALL_PART:]), (1, data[:SMALL_PART])):  # any order
        url = s3_storage.presign_part(key, upload_id, number, expires=60)
        response = httpx.put(url, content=piece, timeout=60)
        assert response.status_code == 200, response.text
        parts.append((number, response.headers["etag"]))
    s3_storage.complete_multipart(key, upload_id, parts)
    assert s3_storage.hash_object(key).sha256 == sha(data)
    assert list(s3_storage.list_multipart_uploads(f"staging/{ns}/")) == []


def test_abort_multipart_upload(s3_storage: S3Storage) -> None:
    ns = uid()
    key = staging_key(ns, sha(b"x"))
    upload_id = s3_storage.create_multipart(key)
    s3_storage.abort_multipart(key, upload_id)
    assert list(s3_storage.list_multipart_uploads(f"staging/{ns}/")) == []
    assert not s3_storage.exists(key)


def test_presigned_urls_use_the_public_endpoint(s3_target: S3Target) -> None:
    storage = make_s3_storage(
        s3_target, "bucket", public_endpoint_url="http://zoo-files.example:9000"
    )
    url = storage.presign_get(blob_key("0" * 64))
    assert url.startswith("http://zoo-files.example:9000/bucket/blobs/sha256/")
    assert "X-Amz-Signature=" in url


def test_check_fails_fast_on_an_unreachable_endpoint(s3_target: S3Target) -> None:
    storage = S3Storage(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="id",
        secret_access_key="not-in-messages",
        connect_timeout=0.5,
        max_attempts=1,
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="cannot reach") as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert "not-in-messages" not in str(caught.value)
    assert "not-in-messages" not in repr(storage)


def test_check_fails_on_a_missing_bucket(s3_target: S3Target) -> None:
    with pytest.raises(StorageUnavailable, match="does not exist"):
        make_s3_storage(s3_target, new_bucket_name()).check()


def test_ensure_ready_creates_the_bucket_and_lifecycle_rule(s3_target: S3Target) -> None:
    bucket = new_bucket_name()
    storage = make_s3_storage(s3_target, bucket)
    try:
        storage.ensure_ready()
        storage.ensure_ready()  # idempotent: existing bucket, existing rule
        storage.check()
        if s3_target.is_moto:  # Swift s3api has no lifecycle support: ensure_ready warns
            rules = s3_admin(s3_target).get_bucket_lifecycle_configuration(Bucket=bucket)
            assert [r["ID"] for r in rules["Rules"]] == [
                "openzoo-abort-incomplete-multipart-uploads"
            ]
    finally:
        remove_bucket(s3_target, bucket)


def test_content_disposition_is_safe() -> None:
    value = content_disposition('re"port\r\nX-Evil: 1/ü.onnx')
    assert "\r" not in value and "\n" not in value
    assert value.startswith('attachment; filename="re_portX-Evil: 1_.onnx"')
    assert "filename*=UTF-8''re%22portX-Evil%3A%201%C3%BC.onnx" in value
