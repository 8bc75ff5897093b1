"""compat archives: sample folders served as .tar.gz to SparseZoo clients

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:08:54.696966

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add compat_archives (one row per archive built for a version, pointing at a blob)."""
    op.create_table(
        "compat_archives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("file_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_compat_archives_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compat_archives")),
        sa.UniqueConstraint("version_id", "name", name=op.f("uq_compat_archives_version_id_name")),
    )
    with op.batch_alter_table("compat_archives", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_compat_archives_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    """Drop compat_archives (the archive blobs stay in storage; they are content-addressed)."""
    with op.batch_alter_table("compat_archives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compat_archives_sha256"))

    op.drop_table("compat_archives")
