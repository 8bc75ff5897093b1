"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is the one error shape, ``{"error": {"code", "message", "details"}}``, with
    this status and code; return the inner object."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return dict(body["error"])
