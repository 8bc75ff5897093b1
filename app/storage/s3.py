"""S3 storage: any S3-compatible store (AWS S3, MinIO, Ceph RGW, Swift s3api) through boto3.

Clients move the bytes directly to and from the store with presigned URLs; the server only
signs, verifies (streaming ``hash_object``) and promotes with server-side copies. Every
boto3/botocore failure is turned into a :mod:`app.storage.errors` exception, chained.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import S3CopyFailedError

from app.storage.base import (
    CHUNK_SIZE,
    HashingCounter,
    MiB,
    ObjectInfo,
    Source,
    WriteResult,
    check_expiry,
    check_range,
    iter_source,
)
from app.storage.errors import ObjectNotFound, StorageError
from app.storage.keys import validate_key, validate_prefix
from app.storage.s3_client import (
    NO_BUCKET_CODES,
    NOT_FOUND_CODES,
    AddressingStyle,
    create_bucket,
    drop_copy_source_if_match,
    ensure_lifecycle_rule,
    error_code,
    make_client,
)
from app.storage.s3_presigned import MAX_PARTS, PresignedTransfers

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

# S3 refuses multipart parts under 5 MiB, except the last.
MIN_PART_SIZE = 5 * MiB
# DeleteObjects takes at most 1000 keys per request.
_DELETE_BATCH = 1000


class S3Storage(PresignedTransfers):
    """Objects in one S3 bucket; see :class:`app.storage.base.Storage` for the contract."""

    kind = "s3"
    supports_presigned_urls = True

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: AddressingStyle = "path",
        presign_expiry_seconds: int = 3600,
        public_endpoint_url: str | None = None,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 64 * MiB,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        abort_incomplete_multipart_days: int = 7,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
        if multipart_threshold < 0:
            raise ValueError(f"multipart_threshold must be >= 0, got {multipart_threshold}")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.presign_expiry_seconds = check_expiry(presign_expiry_seconds)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.abort_incomplete_multipart_days = abort_incomplete_multipart_days
        self._make_client = functools.partial(
            make_client,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            addressing_style=addressing_style,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        )
        self._client = self._make_client(endpoint_url)
        # Presigned URLs embed the host they were signed for: when clients reach the store
        # under another name than the server does (docker-compose: minio:9000 inside,
        # localhost:9000 outside), sign with a client configured on the public endpoint.
        self._presigner = (
            self._make_client(public_endpoint_url) if public_endpoint_url else self._client
        )
        # Set once a store is found to refuse CopySourceIfMatch (see _copy_guarded).
        self._lenient_client: S3Client | None = None
        self._transfer = TransferConfig(
            multipart_threshold=max(multipart_threshold, MIN_PART_SIZE),
            multipart_chunksize=part_size,
            max_concurrency=4,
        )

    def __repr__(self) -> str:
        # Deliberately no credentials here: reprs end up in logs.
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    # -- readiness ---------------------------------------------------------------------

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the bucket answers a HEAD request."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "check bucket") from e

    def ensure_ready(self) -> None:
        """Create the bucket if missing and add a rule expiring stale multipart uploads."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if error_code(e) not in NO_BUCKET_CODES:
                raise self._translate(e, "check bucket") from e
            try:
                create_bucket(self._client, self.bucket)
            except (ClientError, BotoCoreError) as e2:
                raise self._translate(e2, "create bucket") from e2
        except BotoCoreError as e:
            raise self._translate(e, "check bucket") from e
        ensure_lifecycle_rule(self._client, self.bucket, self.abort_incomplete_multipart_days)

    # -- objects -----------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        return self.stat(key) is not None

    def stat(self, key: str) -> ObjectInfo | None:
        """Size of the object at ``key`` (HEAD), or ``None``."""
        validate_key(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if error_code(e) in NOT_FOUND_CODES:
                return None
            raise self._translate(e, "stat", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "stat", key) from e
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            etag=head.get("ETag"),
            modified=head.get("LastModified"),
        )

    def delete(self, key: str) -> None:
        """Delete the object at ``key``; S3 treats a missing object as success."""
        validate_key(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete objects with DeleteObjects, 1000 keys per request."""
        batch: list[str] = []
        for key in keys:
            batch.append(validate_key(key))
            if len(batch) == _DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, page by page (S3 returns them in lexicographic order)."""
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("list", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]

    def write_stream(
        self, key: str, chunks: Source, *, max_bytes: int | None = None
    ) -> WriteResult:
        """One PUT up to ``multipart_threshold`` bytes, a multipart upload beyond.

        Memory is bounded by ``max(multipart_threshold, part_size)`` plus one chunk. The
        object only appears when the PUT or CompleteMultipartUpload succeeds; on any error
        the multipart upload is aborted, so nothing is left at ``key``.
        """
        validate_key(key)
        counter = HashingCounter(key, max_bytes)
        buf = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            for chunk in iter_source(chunks):
                counter.update(chunk)
                buf += chunk
                if upload_id is None and len(buf) > self.multipart_threshold:
                    upload_id = self.create_multipart(key)
                while upload_id is not None and len(buf) >= self.part_size:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buf))
                    del buf[: self.part_size]
            if upload_id is None:
                with self._errors("write", key):
                    self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buf))
            else:
                if buf:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buf))
                with self._errors("complete upload of", key):
                    self._client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            if upload_id is not None:
                self._abort_quietly(key, upload_id)
            raise
        return counter.result()

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """GET with a Range header; ``ObjectNotFound`` is raised before iteration starts."""
        check_range(start, end)
        validate_key(key)
        # A plain GET for the whole object: "bytes=0-" on an empty object is a 416 on S3.
        ranged = bool(start) or end is not None
        try:
            if ranged:
                rng = f"bytes={start}-{'' if end is None else end}"
                response = self._client.get_object(Bucket=self.bucket, Key=key, Range=rng)
            else:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if error_code(e) == "InvalidRange":
                return iter(())  # start is past the end: like the filesystem, yield nothing
            raise self._translate(e, "read", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "read", key) from e
        return self._iter_body(key, response["Body"])

    def local_path(self, key: str) -> None:
        """Always ``None``: objects are not local files (use ``presign_get``)."""
        validate_key(key)
        return None

    def hash_object(self, key: str) -> WriteResult:
        """Size and sha256 of the stored object by one streaming GET."""
        counter = HashingCounter(key, None)
        for chunk in self.read_range(key):
            counter.update(chunk)
        return counter.result()

    def promote(self, src_key: str, dst_key: str) -> None:
        """Server-side copy ``src_key`` to ``dst_key``, then delete ``src_key``.

        boto3's managed copy switches to UploadPartCopy above ``multipart_threshold``, so
        objects over the 5 GB CopyObject limit work too. The destination appears atomically
        when the copy completes.
        """
        validate_key(src_key)
        validate_key(dst_key)
        if self.stat(dst_key) is None:
            source = self.stat(src_key)
            if source is None:
                raise ObjectNotFound(src_key)
            if self._lenient_client is not None:
                self._copy(self._lenient_client, src_key, dst_key)
            else:
                self._copy_guarded(src_key, dst_key, source)
        self.delete(src_key)

    def _copy_guarded(self, src_key: str, dst_key: str, source: ObjectInfo) -> None:
        try:
            self._copy(self._client, src_key, dst_key)
        except S3CopyFailedError as e:
            # The multipart copy sends CopySourceIfMatch with the source's ETag. Swift
            # s3api (2.30) fails that precondition for every object that was itself
            # uploaded in parts, even unchanged. If the source really is unchanged, the
            # store is such a one: from now on copy without the condition.
            if self.stat(src_key) != source:
                raise StorageError(f"{src_key!r} changed while it was being copied") from e
            logger.warning(
                "bucket %r: the store refuses CopySourceIfMatch on unchanged objects that "
                "were uploaded in parts; multipart copies will be made without it",
                self.bucket,
            )
            self._copy(self._unconditional_copier(), src_key, dst_key)

    def _copy(self, client: S3Client, src_key: str, dst_key: str) -> None:
        with self._errors("copy", src_key):
            try:
                client.copy(
                    CopySource={"Bucket": self.bucket, "Key": src_key},
                    Bucket=self.bucket,
                    Key=dst_key,
                    Config=self._transfer,
                )
            except ClientError as e:
                # The managed copy's HEAD reports a missing source as a bare 404.
                if error_code(e) in NOT_FOUND_CODES:
                    raise ObjectNotFound(src_key) from e
                raise

    def _unconditional_copier(self) -> S3Client:
        # A separate client, so that dropping the precondition never affects concurrent
        # copies made through the main one.
        if self._lenient_client is None:
            client = self._make_client(self.endpoint_url)
            drop_copy_source_if_match(client)
            self._lenient_client = client
        return self._lenient_client

    # -- helpers -------------------------------------------------------------------------

    def _upload_part(
        self, key: str, upload_id: str, number: int, buf: bytearray
    ) -> CompletedPartTypeDef:
        if number > MAX_PARTS:
            raise StorageError(f"{key!r} needs more than {MAX_PARTS} parts: raise part_size")
        with self._errors("upload part of", key):
            response = self._client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(buf[: self.part_size]),
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        # Already failing: report the original error, not a failure to clean up after it.
        # The lifecycle rule (or garbage collection) removes what we could not abort.
        try:
            self.abort_multipart(key, upload_id)
        except StorageError as e:
            logger.warning("could not abort multipart upload of %r: %s", key, e)

    def _iter_body(self, key: str, body: StreamingBody) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        except BotoCoreError as e:
            raise self._translate(e, "read", key) from e
        finally:
            body.close()

    def _delete_batch(self, keys: list[str]) -> None:
        with self._errors("delete", keys[0]):
            response = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} object(s), first {first.get('Key')!r}: "
                f"{first.get('Code')}: {first.get('Message')}"
            )
