"""Presigned URLs and client-driven multipart uploads: how clients move bytes to and from
an S3 store without passing through the API. The base class of :class:`S3Storage`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import MultipartUpload, check_expiry
from app.storage.errors import StorageError
from app.storage.keys import validate_key, validate_prefix
from app.storage.s3_client import error_code, translate_error

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# S3 allows part numbers 1..10000.
MAX_PARTS = 10_000


class PresignedTransfers:
    """Presigning and multipart-upload methods of ``S3Storage``, plus its error handling."""

    # Set by S3Storage.__init__.
    bucket: str
    endpoint_url: str | None
    presign_expiry_seconds: int
    _client: S3Client
    _presigner: S3Client

    def presign_get(
        self,
        key: str,
        *,
        expires: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A GET URL; ``filename``/``content_type`` override the response headers."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": validate_key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        if content_type is not None:
            params["ResponseContentType"] = content_type
        return self._presign("get_object", params, expires)

    def presign_put(self, key: str, *, expires: int | None = None) -> str:
        """A URL for one PUT of the whole object (up to 5 GB)."""
        return self._presign(
            "put_object", {"Bucket": self.bucket, "Key": validate_key(key)}, expires
        )

    def create_multipart(self, key: str) -> str:
        """Start a multipart upload; return its upload id."""
        validate_key(key)
        with self._errors("start multipart upload of", key):
            response = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        return str(response["UploadId"])

    def presign_part(
        self, key: str, upload_id: str, part_number: int, *, expires: int | None = None
    ) -> str:
        """A URL to PUT one part; the response's ETag header goes to ``complete_multipart``."""
        _check_part_number(part_number)
        params = {
            "Bucket": self.bucket,
            "Key": validate_key(key),
            "UploadId": upload_id,
            "PartNumber": part_number,
        }
        return self._presign("upload_part", params, expires)

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the parts (any order in, sorted out); a bad part raises ``StorageError``."""
        validate_key(key)
        if not parts:
            raise ValueError("a multipart upload needs at least one part")
        numbers = [n for n, _ in parts]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"duplicate part numbers in {sorted(numbers)}")
        for n in numbers:
            _check_part_number(n)
        completed: list[CompletedPartTypeDef] = [
            {"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)
        ]
        with self._errors("complete upload of", key):
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": completed},
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abort an upload; an unknown or already finished upload is not an error."""
        validate_key(key)
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as e:
            if error_code(e) not in ("NoSuchUpload", "404"):
                raise self._translate(e, "abort upload of", key) from e
        except BotoCoreError as e:
            raise self._translate(e, "abort upload of", key) from e

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[MultipartUpload]:
        """Unfinished multipart uploads under ``prefix``."""
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_multipart_uploads")
        with self._errors("list multipart uploads under", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    yield MultipartUpload(
                        key=upload["Key"],
                        upload_id=upload["UploadId"],
                        initiated=upload.get("Initiated"),
                    )

    # -- helpers shared with S3Storage -------------------------------------------------

    def _presign(self, operation: str, params: dict[str, Any], expires: int | None) -> str:
        lifetime = check_expiry(self.presign_expiry_seconds if expires is None else expires)
        with self._errors(f"presign {operation} for", params["Key"]):
            url: str = self._presigner.generate_presigned_url(
                operation, Params=params, ExpiresIn=lifetime
            )
        return url

    @contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, action, key) from e

    def _translate(self, e: Exception, action: str, key: str | None = None) -> StorageError:
        where = f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"
        return translate_error(e, where=where, action=action, key=key)


def _check_part_number(n: int) -> None:
    if not 1 <= n <= MAX_PARTS:
        raise ValueError(f"part number must be 1..{MAX_PARTS}, got {n}")


def content_disposition(filename: str) -> str:
    """An ``attachment`` Content-Disposition naming ``filename`` safely (RFC 6266).

    Gives an ASCII fallback ``filename=`` and the exact name as ``filename*=UTF-8''...``;
    control characters (header injection) and path separators are dropped.
    """
    name = (
        "".join(c for c in filename if unicodedata.category(c)[0] != "C" and c not in "/\\").strip()
        or "download"
    )
    ascii_name = "".join(c if c.isascii() and c not in '"%' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
