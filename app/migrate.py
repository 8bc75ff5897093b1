"""Run the Alembic migrations from code (``zoo serve`` and the tests use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from app.config import Settings
from app.db import make_engine

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    """An Alembic config bound to ``url`` that does not reconfigure the caller's logging."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


# Any fixed number: every process that migrates a database agrees on it.
_MIGRATION_LOCK_KEY = 0x7A6F6F  # "zoo"


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision``; the only way the server creates tables.

    On PostgreSQL the upgrade runs in one transaction holding an advisory lock: hub replicas
    that start together (each ``zoo serve`` migrates at boot) take turns, and the later ones
    find the schema at head. Without it they raced to create the same tables and one crashed
    with a UniqueViolation.
    """
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(url), revision)
        return
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            # Released at commit, when the migrated schema becomes visible to the next waiter.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn  # migrations/env.py runs on this connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def downgrade(settings: Settings, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` drops everything)."""
    command.downgrade(alembic_config(settings.resolved_database_url), revision)
