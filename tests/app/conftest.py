"""Shared clients for the API tests: one per role per module, not one per test (an httpx
client builds an SSL context, which costs more than the request it is made for)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.hub import Hub


@pytest.fixture(scope="module")
def anon(hub: Hub) -> httpx.Client:
    """An API client without a token."""
    return hub.client()


@pytest.fixture(scope="module")
def admin(hub: Hub) -> httpx.Client:
    """An API client with the hub's admin token."""
    return hub.client(hub.admin_token)


@pytest.fixture(scope="module")
def plain() -> Iterator[httpx.Client]:
    """A client for absolute URLs (presigned S3 URLs, Link headers), with no hub token."""
    with httpx.Client(timeout=60) as c:
        yield c
