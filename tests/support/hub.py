"""A hub under test: one configuration (SQLite + filesystem, or PostgreSQL + S3), migrated by
Alembic, served over real HTTP, with helpers to mint tokens and publish model folders."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.tokens.service import create_token


@dataclass
class Hub:
    """A running hub: its URL, settings, a session factory and an admin token."""

    name: str
    url: str
    settings: Settings
    sessionmaker: sessionmaker[Session]
    admin_token: str
    _clients: list[httpx.Client] = field(default_factory=list)

    def token(
        self,
        scopes: list[str],
        namespaces: list[str] | None = None,
        expires_in_days: float | None = None,
        name: str = "test",
    ) -> str:
        """Mint a token straight in the database (only the first admin token needs this path)."""
        with self.sessionmaker() as s:
            _, secret = create_token(
                s, name=name, scopes=scopes, namespaces=namespaces, expires_in_days=expires_in_days
            )
            s.commit()
        return secret

    def mark_outputs_reproduced(self, namespace: str, name: str, number: int) -> None:
        """Record what the hub's output check writes (publishers cannot set it themselves)."""
        from sqlalchemy import select

        from app.orm import Model, Namespace, Version

        with self.sessionmaker() as s:
            version = s.scalars(
                select(Version)
                .join(Version.model)
                .join(Model.namespace)
                .where(Namespace.name == namespace, Model.name == name, Version.number == number)
            ).one()
            version.meta = {**version.meta, "outputs_reproduced": True}
            s.commit()

    def caller_tokens(self, a: str, b: str) -> dict[str, str | None]:
        """One token per kind of caller, for authorization tests over namespaces ``a`` and
        ``b``: anonymous (None), read (all namespaces), a writer of each, admin, expired and
        revoked (a real token deleted through the API)."""
        admin = self.client(self.admin_token)
        revoked = admin.post("/tokens", json={"name": "revoked", "scopes": ["admin"]}).json()
        assert admin.delete(f"/tokens/{revoked['id']}").status_code == 200
        return {
            "anonymous": None,
            "read": self.token(["read"], name="reader"),
            "write-a": self.token(["read", "write"], [a], name="writer-a"),
            "write-b": self.token(["read", "write"], [b], name="writer-b"),
            "admin": self.admin_token,
            "expired": self.token(["admin"], expires_in_days=-1, name="expired"),
            "revoked": revoked["token"],
        }

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client on the API, authenticated with ``token`` if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)
        self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()


def unique_namespace() -> str:
    """A namespace no other test uses (tests share one hub per configuration)."""
    return f"t{uuid.uuid4().hex[:12]}"


def manifest(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    return [
        {"path": p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
        for p, b in files.items()
    ]


def upload_blobs(http: httpx.Client, upload: dict[str, Any], files: Mapping[str, bytes]) -> None:
    """Send every blob the hub asked for: to the hub (token) or to a presigned URL (no token)."""
    by_sha = {hashlib.sha256(b).hexdigest(): b for b in files.values()}
    for blob in upload["blobs"]:
        if blob["status"] == "stored":
            continue
        data = by_sha[blob["sha256"]]
        if blob.get("parts"):
            raise AssertionError("tests publish small files; multipart is tested in test_storage")
        headers = dict(blob["headers"])
        if blob["authenticated"]:
            headers["Authorization"] = http.headers["Authorization"]
        r = httpx.put(blob["url"], content=data, headers=headers, timeout=60)
        assert r.status_code in (200, 201), r.text


def publish(
    http: httpx.Client, namespace: str, name: str, files: Mapping[str, bytes], **body: Any
) -> dict[str, Any]:
    """Open, upload and commit a version; returns the committed version's body."""
    r = http.post(f"/models/{namespace}/{name}/versions", json={"files": manifest(files), **body})
    assert r.status_code == 201, r.text
    upload = r.json()
    upload_blobs(http, upload, files)
    r = http.post(f"/uploads/{upload['upload_id']}/commit")
    assert r.status_code == 200, r.text
    return dict(r.json())


def create_model(http: httpx.Client, namespace: str, **fields: Any) -> dict[str, Any]:
    r = http.post("/models", json={"namespace": namespace, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def migrate_with_admin(settings: Settings, name: str) -> str:
    """Migrate the database of ``settings``; the secret of a new admin token named ``name``."""
    migrate.upgrade(settings)
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as s:
            _, token = create_token(s, name=name, scopes=["admin"])
            s.commit()
    finally:
        engine.dispose()
    return token
