"""Helpers for the storage tests: S3 stores on the session's S3 target, throwaway buckets.

The S3 target itself is the ``s3_target`` fixture of ``support.fixtures``: a real server when
``ZOO_TEST_S3_ENDPOINT`` is set (CI: Swift's s3api), else moto in server mode.
"""

from __future__ import annotations

import secrets
from typing import Any

import boto3

from app.storage import S3Storage
from app.storage.base import MiB
from support.fixtures import S3Target

# S3's smallest allowed multipart part: the tests use it so the multipart path runs on
# ~11 MiB of data instead of hundreds.
SMALL_PART = 5 * MiB


def make_s3_storage(target: S3Target, bucket: str, **options: Any) -> S3Storage:
    """An ``S3Storage`` on ``target`` with short timeouts, so a broken server fails fast."""
    options.setdefault("connect_timeout", 2.0)
    options.setdefault("read_timeout", 30.0)
    return S3Storage(
        bucket,
        endpoint_url=target.endpoint_url,
        region=target.region,
        access_key_id=target.access_key_id,
        secret_access_key=target.secret_access_key,
        **options,
    )


def s3_admin(target: S3Target) -> Any:
    """A plain boto3 client for inspection and clean-up behind the storage's back."""
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint_url,
        region_name=target.region,
        aws_access_key_id=target.access_key_id,
        aws_secret_access_key=target.secret_access_key,
    )


def new_bucket_name() -> str:
    """A random, valid bucket name."""
    return f"zoo-test-{secrets.token_hex(6)}"


def remove_bucket(target: S3Target, bucket: str) -> None:
    """Abort uploads, delete every object, then the bucket itself."""
    storage = make_s3_storage(target, bucket)
    for upload in storage.list_multipart_uploads():
        storage.abort_multipart(upload.key, upload.upload_id)
    storage.delete_many(list(storage.list_keys()))
    s3_admin(target).delete_bucket(Bucket=bucket)
