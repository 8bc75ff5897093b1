"""Versions, their files, content-addressed blobs, aliases (with history) and recipes."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.orm.base import Base, utcnow

if TYPE_CHECKING:
    from app.orm.models import Model
    from app.orm.results import BenchmarkResult, EvalResult


class VersionStatus(enum.StrEnum):
    """A version is served only when ready; pending ones are open uploads."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    ABORTED = "aborted"


class Blob(Base):
    """Verified content, stored once under ``blobs/sha256/<hex>`` whatever references it."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Version(Base):
    """An immutable set of files. Created pending (an upload); numbered when committed."""

    __tablename__ = "versions"
    __table_args__ = (
        # number is NULL while pending, so only committed versions compete for numbers.
        UniqueConstraint("model_id", "number"),
        Index("ix_versions_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[str] = mapped_column(String(36), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    number: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[VersionStatus] = mapped_column(
        Enum(
            VersionStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=VersionStatus.PENDING,
    )
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    sparsity: Mapped[float | None] = mapped_column(Float)
    quantized: Mapped[bool] = mapped_column(default=False)
    # Per-layer profile measured at commit (zoo.analysis), and free metadata from the publisher.
    sparsity_profile: Mapped[dict[str, Any] | None]
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Multipart uploads opened for this version: {sha256: s3 upload id}.
    multipart: Mapped[dict[str, Any]] = mapped_column(default=dict)
    downloads: Mapped[int] = mapped_column(Integer, default=0)

    model: Mapped[Model] = relationship(back_populates="versions")
    files: Mapped[list[File]] = relationship(
        back_populates="version", order_by="File.path", cascade="all, delete-orphan"
    )
    recipes: Mapped[list[Recipe]] = relationship(
        order_by="Recipe.name", cascade="all, delete-orphan"
    )
    benchmarks: Mapped[list[BenchmarkResult]] = relationship(
        order_by="BenchmarkResult.id", cascade="all, delete-orphan"
    )
    evals: Mapped[list[EvalResult]] = relationship(
        order_by="EvalResult.id", cascade="all, delete-orphan"
    )


class File(Base):
    """A path inside a version, pointing at a blob by digest."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("version_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    path: Mapped[str] = mapped_column(String(1024))
    file_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)

    version: Mapped[Version] = relationship(back_populates="files")


class Alias(Base):
    """A movable name (``latest``, ``stable``, ...) for one ready version of a model."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    model: Mapped[Model] = relationship(back_populates="aliases")
    version: Mapped[Version] = relationship(lazy="joined")


class AliasEvent(Base):
    """Append-only history of alias moves; version_id NULL records a deletion."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recipe(Base):
    """A recipe file of a version (``recipe/<name>.md|yaml``), addressable as ``?recipe=<name>``."""

    __tablename__ = "recipes"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
