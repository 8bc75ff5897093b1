"""Server settings, read once from ``ZOO_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server can be configured with. Built once and passed down, never re-read."""

    model_config = SettingsConfigDict(env_prefix="ZOO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded defaults keep their data (SQLite file, filesystem blobs).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/zoo.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host:5432/db",
    )
    db_pool_size: int = Field(
        default=10, ge=1, description="Database connections kept open (per hub process)."
    )
    db_max_overflow: int = Field(
        default=20, ge=0, description="Connections opened beyond the pool under load."
    )
    db_pool_timeout_seconds: float = Field(
        default=30, gt=0, description="How long a request waits for a free connection."
    )
    storage: Literal["filesystem", "s3"] = "filesystem"
    storage_root: Path | None = Field(
        default=None, description="Filesystem backend root; default <data_dir>/storage."
    )
    s3_bucket: str = "openzoo"
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="Host that presigned URLs name, when clients see the store elsewhere.",
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    presign_expiry_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    multipart_threshold_bytes: int = Field(default=64 * 1024 * 1024, ge=5 * 1024 * 1024)
    multipart_part_bytes: int = Field(default=64 * 1024 * 1024, ge=5 * 1024 * 1024)

    max_file_bytes: int = Field(default=16 * 1024**3, description="Largest single file accepted.")
    max_files_per_version: int = 10_000
    max_json_body_bytes: int = Field(default=4 * 1024 * 1024)
    upload_ttl_hours: int = Field(
        default=24, description="Pending uploads older than this are gc'd."
    )

    verify_outputs: bool = Field(
        default=False,
        description="After each commit, run the version's sample inputs through zoo.runtime in "
        "the background and record in its meta whether the sample outputs were reproduced.",
    )

    public_url: str | None = Field(
        default=None, description="Base URL the hub is reached at (for absolute links)."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'zoo.db').resolve()}"

    @cached_property
    def resolved_storage_root(self) -> Path:
        return (self.storage_root or self.data_dir / "storage").resolve()
