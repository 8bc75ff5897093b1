"""Engine and the request-scoped session: commit or rollback happens here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def make_engine(settings: Settings) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout so writers queue."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # pool_pre_ping: after a database restart every pooled connection is dead; without the
    # ping the first request to draw one fails (a publish's commit is not retried by the
    # client). The ping is one loopback round trip per checkout, not per query.
    return create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800, pool_pre_ping=True)


def is_unavailable(e: DBAPIError) -> bool:
    """Whether ``e`` means the database is away (down, restarting, connection cut, locked),
    so the same request may succeed in a moment, rather than a bug in a query."""
    return isinstance(e, OperationalError) or e.connection_invalidated


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one session per request; services flush, this commits or rolls back."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        try:
            yield session
            session.commit()
        except DBAPIError as e:
            with suppress(DBAPIError):  # the connection may be gone: nothing to roll back
                session.rollback()
            if not is_unavailable(e):
                raise
            # The transaction did not commit, so the request changed nothing: say so, and that
            # trying again is the fix (the server log has the driver's message).
            log.warning("%s %s: database unavailable: %s", request.method, request.url.path, e.orig)
            raise ServiceUnavailable(
                "the database is unavailable right now (restarting or unreachable); nothing "
                "was changed by this request. Try again in a moment"
            ) from e
        except BaseException:
            session.rollback()
            raise
