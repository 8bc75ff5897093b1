"""Archives built for the SparseZoo-compatible API (``app.compat``).

SparseZoo clients fetch sample folders (``sample-inputs/`` ...) as one ``.tar.gz`` each. The
hub builds each archive once per version, stores it as an ordinary content-addressed blob and
records it here; versions are immutable, so a recorded archive never goes stale.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.orm.base import Base, utcnow


class CompatArchive(Base):
    """One archive of a version's folder, e.g. ``sample-inputs.tar.gz``, pointing at a blob."""

    __tablename__ = "compat_archives"
    # The unique pair is what makes a lazy build safe under concurrency: two requests that
    # build the same archive at once insert the same row, and the second insert is a no-op.
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    name: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
