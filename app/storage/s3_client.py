"""Talking to S3-compatible servers: client configuration, their quirks, bucket set-up and
the mapping of botocore errors onto :mod:`app.storage.errors`.

Kept apart from :mod:`app.storage.s3` (the ``Storage`` semantics) because everything here
is about servers differing from AWS: tested against moto and OpenStack Swift's s3api.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.errors import ObjectNotFound, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import LifecycleRuleOutputTypeDef

logger = logging.getLogger(__name__)

AddressingStyle = Literal["path", "virtual", "auto"]

LIFECYCLE_RULE_ID = "openzoo-abort-incomplete-multipart-uploads"
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
NO_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
DENIED_CODES = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
)


def make_client(
    endpoint_url: str | None,
    *,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    addressing_style: AddressingStyle,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
) -> S3Client:
    """A boto3 S3 client with bounded timeouts and retries, fit for S3-compatible stores.

    Without explicit credentials boto3's usual chain (environment, profile, IAM role) applies.
    """
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": addressing_style},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        # One connection per request thread (anyio runs up to 40 for the sync routes) plus the
        # multipart transfer threads. botocore's default of 10 made a busy hub discard and
        # reopen connections ("Connection pool is full" warnings under the scale-out load).
        max_pool_connections=64,
        # boto3 >= 1.36 adds CRC checksums (aws-chunked trailers) to every upload and to
        # presigned URLs; many S3-compatible stores reject them. Only send them where the
        # API requires a checksum.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )
    for operation in ("DeleteObjects", "PutBucketLifecycleConfiguration"):
        client.meta.events.register(f"before-call.s3.{operation}", _add_content_md5)
    return client


def drop_copy_source_if_match(client: S3Client) -> None:
    """Make ``client``'s UploadPartCopy calls unconditional (see ``S3Storage.promote``)."""
    client.meta.events.register(
        "before-parameter-build.s3.UploadPartCopy", _drop_copy_source_if_match
    )


def error_code(e: ClientError) -> str:
    """The S3 error code of a ``ClientError`` (a bare status such as "404" for HEAD)."""
    return str(e.response.get("Error", {}).get("Code", ""))


def translate_error(e: Exception, *, where: str, action: str, key: str | None) -> StorageError:
    """The storage error for a botocore failure of ``action`` on ``key`` in ``where``."""
    target = f"{action} {key!r}" if key is not None else action
    if isinstance(e, ClientError):
        code = error_code(e)
        message = e.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket" or (key is None and code in NO_BUCKET_CODES):
            return StorageUnavailable(f"{target}: {where} does not exist (run ensure_ready)")
        if code in DENIED_CODES:
            return StorageUnavailable(f"{target}: access to {where} denied ({code})")
        if key is not None and code in NOT_FOUND_CODES:
            return ObjectNotFound(key)
        return StorageError(f"{target} failed on {where}: {code} {message}".rstrip())
    return StorageUnavailable(f"{target} failed: cannot reach {where}: {e}")


def create_bucket(client: S3Client, bucket: str) -> None:
    """Create ``bucket`` in the client's region; one created concurrently is fine."""
    region = client.meta.region_name
    try:
        if region and region != "us-east-1":
            # The stubs list AWS's regions only; other stores (Ceph, Swift) name their own.
            location: Any = {"LocationConstraint": region}
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
        else:
            client.create_bucket(Bucket=bucket)
    except ClientError as e:
        # Another server process may have created it between our HEAD and CREATE.
        if error_code(e) != "BucketAlreadyOwnedByYou":
            raise
    logger.info("created bucket %r", bucket)


def ensure_lifecycle_rule(client: S3Client, bucket: str, days: int) -> None:
    """Add (or update) the rule aborting multipart uploads older than ``days``.

    Keeps the bucket's other rules. A store without lifecycle support only gets a warning:
    garbage collection via ``list_multipart_uploads`` still cleans up.
    """
    rule: LifecycleRuleOutputTypeDef = {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }
    try:
        try:
            existing = client.get_bucket_lifecycle_configuration(Bucket=bucket)
            rules = list(existing.get("Rules", []))
        except ClientError as e:
            if error_code(e) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        if rule in rules:
            return
        # PUT replaces the whole configuration: keep the operator's own rules.
        rules = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID] + [rule]
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        )
    except (ClientError, BotoCoreError) as e:
        # Swift s3api 2.30, for one, answers MalformedXML to any lifecycle configuration.
        logger.warning(
            "bucket %r: could not set the lifecycle rule that aborts incomplete multipart "
            "uploads (%s); rely on garbage collection instead",
            bucket,
            error_code(e) if isinstance(e, ClientError) else type(e).__name__,
        )


def _drop_copy_source_if_match(params: dict[str, Any], **_: Any) -> None:
    params.pop("CopySourceIfMatch", None)


def _add_content_md5(params: dict[str, Any], **_: Any) -> None:
    # boto3 >= 1.36 sends a CRC32 checksum where these APIs require one; stores such as
    # Swift s3api (and older MinIO/Ceph) only accept Content-MD5. AWS accepts both.
    body = params.get("body")
    if isinstance(body, bytes | bytearray):
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        params["headers"]["Content-MD5"] = base64.b64encode(digest).decode("ascii")
