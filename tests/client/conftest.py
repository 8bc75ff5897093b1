"""Client test fixtures: clients on a live hub with an isolated cache, a published model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.client_helpers import MakeClient, Published, config_for, publish_model
from support.hub import Hub
from zoo import ZooClient


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's token, cache or endpoint."""
    for var in ("ZOO_ENDPOINT", "ZOO_TOKEN", "ZOO_OFFLINE", "ZOO_CACHE", "ZOO_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ZOO_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """``make_client(endpoint, token=None, cache=None, transport=None, offline=False)``."""
    made: list[ZooClient] = []

    def make(
        endpoint: str,
        token: str | None = None,
        cache: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        offline: bool = False,
    ) -> ZooClient:
        cfg = config_for(endpoint, cache or tmp_path / "cache", token).replace(offline=offline)
        c = ZooClient(config=cfg, transport=transport)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def published(hub: Hub, make_client: MakeClient, tmp_path: Path) -> Published:
    """One published model (with a 3 MB extra file, big enough to drop mid-way)."""
    writer = make_client(hub.url, token=hub.admin_token, cache=tmp_path / "writer-cache")
    big = bytes(range(256)) * (3 * 4096)
    return publish_model(hub, writer, tmp_path, {"training/weights.bin": big})
