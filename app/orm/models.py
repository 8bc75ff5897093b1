"""Namespaces and models (an ML model: its stub fields, card metadata and lineage)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.orm.base import Base, utcnow

if TYPE_CHECKING:
    from app.orm.versions import Alias, Version


class Namespace(Base):
    """An owner of models (a user or an organisation); tokens may be limited to some."""

    __tablename__ = "namespaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A model repository: immutable versions under namespace/name, optionally a path stub."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name"),
        Index("ix_models_domain_task", "domain", "task"),
        Index("ix_models_created_at_id", "created_at", "id"),
        Index("ix_models_downloads_id", "downloads", "id"),
        Index("ix_models_sparsity_id", "sparsity", "id"),
        Index("ix_models_name_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), index=True)
    # The repo name: the short (SparseZoo v2) stub keys on it.
    name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    license: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(default=list)
    # Not indexed: two values, an index on it only misleads the planner.
    visibility: Mapped[str] = mapped_column(String(16), default="public")

    # SparseZoo v1 path-stub fields; path_stub is their canonical text, unique when present.
    domain: Mapped[str | None] = mapped_column(String(100))
    task: Mapped[str | None] = mapped_column(String(100))
    architecture: Mapped[str | None] = mapped_column(String(100), index=True)
    sub_architecture: Mapped[str | None] = mapped_column(String(100))
    framework: Mapped[str | None] = mapped_column(String(100), index=True)
    repo: Mapped[str | None] = mapped_column(String(100), index=True)
    dataset: Mapped[str | None] = mapped_column(String(100), index=True)
    training_scheme: Mapped[str | None] = mapped_column(String(100))
    sparse_tag: Mapped[str | None] = mapped_column(String(100), index=True)
    path_stub: Mapped[str | None] = mapped_column(String(512), unique=True)

    base_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Denormalised from the latest ready version so search filters and sorts use an index.
    latest_version: Mapped[int | None] = mapped_column(Integer)
    sparsity: Mapped[float | None] = mapped_column(Float)
    quantized: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)

    namespace: Mapped[Namespace] = relationship(lazy="joined")
    base_model: Mapped[Model | None] = relationship(remote_side=[id], lazy="select")
    versions: Mapped[list[Version]] = relationship(back_populates="model", lazy="select")
    aliases: Mapped[list[Alias]] = relationship(back_populates="model", lazy="select")
