"""Build the configured Storage backend from Settings."""

from __future__ import annotations

from app.config import Settings
from app.storage import FilesystemStorage, S3Storage, Storage


def make_storage(settings: Settings) -> Storage:
    """The filesystem backend (embedded default) or S3, as ``ZOO_STORAGE`` says."""
    if settings.storage == "filesystem":
        return FilesystemStorage(settings.resolved_storage_root)
    secret = settings.s3_secret_access_key
    return S3Storage(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        addressing_style=settings.s3_addressing_style,
        presign_expiry_seconds=settings.presign_expiry_seconds,
        public_endpoint_url=settings.s3_public_endpoint_url,
        multipart_threshold=settings.multipart_threshold_bytes,
        part_size=settings.multipart_part_bytes,
    )
