"""Fixtures shared by the hardening tests (the fault tests' clients)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zoo import ZooClient


@pytest.fixture
def clients() -> Iterator[list[ZooClient]]:
    """Clients a test made (each with an explicit config, no environment); closed afterwards."""
    made: list[ZooClient] = []
    yield made
    for c in made:
        c.close()
