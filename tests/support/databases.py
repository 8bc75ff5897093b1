"""Throw-away PostgreSQL databases on the test server (``ZOO_TEST_DATABASE_URL``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url


def _admin_conninfo(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


@contextmanager
def fresh_database(server_url: str, prefix: str = "zoo_test") -> Iterator[str]:
    """A new, empty database on the server of ``server_url``; dropped (forcibly) afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
