"""Fixtures: the S3 endpoint, a PostgreSQL database per session, a live hub per configuration."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from support.databases import fresh_database
from support.hub import Hub, migrate_with_admin
from support.live import free_port, live_server

CONFIGURATIONS = ["sqlite-fs", "postgres-s3"]


@dataclass(frozen=True)
class S3Target:
    """Where S3 tests run and how to sign in."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    is_moto: bool


@pytest.fixture(scope="session")
def s3_target() -> Iterator[S3Target]:
    """A real S3-compatible server from ``ZOO_TEST_S3_ENDPOINT``, else moto in server mode."""
    endpoint = os.environ.get("ZOO_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Target(
            endpoint,
            os.environ["AWS_ACCESS_KEY_ID"],
            os.environ["AWS_SECRET_ACCESS_KEY"],
            os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            False,
        )
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Target(f"http://127.0.0.1:{port}", "testing", "testing", "us-east-1", True)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (dropped afterwards)."""
    server = os.environ.get("ZOO_TEST_DATABASE_URL")
    if not server:
        pytest.skip("postgres-s3 needs ZOO_TEST_DATABASE_URL (CI sets it; see CONTRIBUTING.md)")
    with fresh_database(server) as url:
        yield url


def hub_settings(config: str, tmp: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for one configuration (each backing service fresh for this session)."""
    if config == "sqlite-fs":
        return Settings(data_dir=tmp, database_url=None, storage="filesystem", _env_file=None)  # type: ignore[call-arg]
    url = request.getfixturevalue("postgres_url")
    s3: S3Target = request.getfixturevalue("s3_target")
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp,
        database_url=url,
        storage="s3",
        s3_endpoint_url=s3.endpoint_url,
        s3_bucket=f"zoo-test-{secrets.token_hex(5)}",
        s3_region=s3.region,
        s3_access_key_id=s3.access_key_id,
        s3_secret_access_key=s3.secret_access_key,
    )


@pytest.fixture(scope="session", params=CONFIGURATIONS)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A migrated hub served over HTTP by uvicorn, once per configuration per session."""
    settings = hub_settings(request.param, tmp_path_factory.mktemp(request.param), request)
    admin = migrate_with_admin(settings, "test-admin")
    app = create_app(settings)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    with live_server(app) as url:
        h = Hub(request.param, url, settings, factory, admin)
        yield h
        h.close()
    engine.dispose()
    if settings.storage == "s3":
        from support.s3 import remove_bucket

        remove_bucket(request.getfixturevalue("s3_target"), settings.s3_bucket)
