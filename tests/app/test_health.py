"""Liveness and readiness probes, on both configurations and on a hub whose storage is broken."""

from __future__ import annotations

from pathlib import Path

import httpx

from app import migrate
from app.config import Settings
from app.main import create_app
from support.hub import Hub
from support.live import live_server


def test_healthz_and_readyz(hub: Hub) -> None:
    r = httpx.get(f"{hub.url}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = httpx.get(f"{hub.url}/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_readyz_names_unusable_storage(tmp_path: Path) -> None:
    root = tmp_path / "not-a-directory"
    root.write_bytes(b"a file where the storage root should be")
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        storage="filesystem",  # type: ignore[call-arg]
        storage_root=root,
    )
    migrate.upgrade(settings)
    app = create_app(settings)
    with live_server(app) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200  # the process is alive
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["storage"].startswith("error:")
        assert str(root) in body["checks"]["storage"]
    app.state.engine.dispose()
