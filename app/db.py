"""Engine and the request-scoped session: commit or rollback happens here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def make_engine(settings: Settings) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout so writers queue."""
    url = settings.resolved_database_url
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
    }
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )

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
    return create_engine(url, pool_recycle=1800, pool_pre_ping=True, **pool)


def is_unavailable(e: DBAPIError) -> bool:
    """Whether ``e`` means the database is away (down, restarting, connection cut, locked),
    so the same request may succeed in a moment, rather than a bug in a query."""
    return isinstance(e, OperationalError) or e.connection_invalidated


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def release(session: Session) -> None:
    """End the session's transaction, so its connection goes back to the pool.

    For a request about to move bytes (stream a blob in, verify one in the store, build an
    archive) for seconds or minutes: a session holds its pooled connection (and on SQLite,
    once it has written, the database's one write lock) until its transaction ends, and a few
    large uploads at once took every connection, stalling the whole hub. Loaded objects stay
    usable (``expire_on_commit=False``); the next query begins a new transaction. Call it only
    where what was written so far may commit on its own: what the request writes later
    commits, or rolls back, as usual.
    """
    session.commit()


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
        except PoolTimeout as e:
            session.rollback()
            settings: Settings = request.app.state.settings
            total = settings.db_pool_size + settings.db_max_overflow
            log.warning("%s %s: no free connection: %s", request.method, request.url.path, e)
            raise ServiceUnavailable(
                f"the hub is busy: its {total} database connection{'s' if total != 1 else ''} "
                f"stayed in use for {settings.db_pool_timeout_seconds:g} s; nothing was changed "
                "by this request. Try again in a moment (the operator can raise "
                "ZOO_DB_POOL_SIZE and ZOO_DB_MAX_OVERFLOW)"
            ) from e
        except BaseException:
            session.rollback()
            raise
