"""A hub of its own whose real store can be stopped inside one call, to order two requests.

Races between requests (a slow commit and a browse, a commit and gc) are tested by pausing one
of them at a known point: ``PausingStorage`` wraps the hub's real store and holds one method,
for keys with a given prefix, until the test lets it go. Nothing is mocked: every call reaches
the store, only later.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.storage import Storage
from support.databases import fresh_database
from support.fixtures import hub_settings
from support.hub import migrate_with_admin
from support.live import live_server
from support.s3 import remove_bucket


class PausingStorage:
    """The hub's store; ``pause(method, prefix)`` makes that method wait for ``resume()``."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._method = ""
        self._prefix = ""
        self._after = False

    def pause(self, method: str, prefix: str = "", *, after: bool = False) -> None:
        """Hold the next calls of ``method`` on keys starting with ``prefix``: before they
        reach the store, or with ``after`` once the store has answered (the answer is then
        returned as it was, however the store changed in the meantime)."""
        self._method, self._prefix, self._after = method, prefix, after
        self.entered.clear()
        self._go.clear()

    def resume(self) -> None:
        self._method = ""
        self._go.set()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            key = next((a for a in args if isinstance(a, str)), "")
            if name != self._method or not key.startswith(self._prefix):
                return attr(*args, **kwargs)
            result = attr(*args, **kwargs) if self._after else None
            self.entered.set()
            self._go.wait(60)
            return result if self._after else attr(*args, **kwargs)

        return call


@dataclass
class OwnHub:
    """A hub served for one test module, with its store wrapped and an admin API client."""

    url: str
    api: httpx.Client
    storage: PausingStorage
    config: str
    app: FastAPI
    settings: Settings


def own_hub(request: pytest.FixtureRequest, tmp: Path, **settings: Any) -> Iterator[OwnHub]:
    """Serve a fresh hub of ``request.param``'s configuration with ``settings`` overridden.

    Its database is its own too (a bucket of its own beside the shared hub's database would
    find blob rows whose bytes are in another bucket).
    """
    config = str(request.param)
    base = hub_settings(config, tmp, request)
    with contextlib.ExitStack() as stack:
        if config != "sqlite-fs":
            server = os.environ["ZOO_TEST_DATABASE_URL"]
            settings = {"database_url": stack.enter_context(fresh_database(server)), **settings}
        yield from _serve(base.model_copy(update=settings), config)
    if base.storage == "s3":
        remove_bucket(request.getfixturevalue("s3_target"), base.s3_bucket)


def _serve(s: Settings, config: str) -> Iterator[OwnHub]:
    admin = migrate_with_admin(s, "own-hub-admin")
    app = create_app(s)
    storage = PausingStorage(app.state.storage)
    app.state.storage = storage
    headers = {"Authorization": f"Bearer {admin}"}
    with (
        live_server(app) as url,
        httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=60) as api,
    ):
        yield OwnHub(url, api, storage, config, app, s)
    storage.resume()
    app.state.engine.dispose()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``fn`` on a thread; the dict gets its result as ``"value"`` (or ``"error"``)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test, which re-raises it
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out
