"""Tokens and access rules over HTTP on both configurations.

The matrix: seven callers x {public, private model in namespace A} x every read and write
route. A private model answers 404 (never 403) to callers who may not see it, so its
existence does not leak; writes without a token answer 401 with ``WWW-Authenticate``, with
the wrong scope or namespace 403; expired and revoked tokens are 401 everywhere, even on
public reads (a bad token is never treated as anonymous).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from api_helpers import error
from sqlalchemy import select

from app.orm import Token
from support.hub import Hub, create_model, manifest, publish, unique_namespace
from support.onnx_models import linear_model

CALLERS = ["anonymous", "read", "write-a", "write-b", "admin", "expired", "revoked"]


@dataclass(frozen=True)
class World:
    """Namespace A with a public and a private model (one version each), and the callers."""

    a: str
    b: str
    tokens: dict[str, str | None]
    clients: dict[str, httpx.Client]


@pytest.fixture(scope="module")
def world(hub: Hub) -> World:
    a, b = unique_namespace(), unique_namespace()
    http = hub.client(hub.admin_token)
    files = {"model.onnx": linear_model(0.5), "model.md": f"# {a}\n".encode()}
    for name, visibility in (("pub", "public"), ("priv", "private")):
        create_model(http, a, name=name, visibility=visibility, description=a)
        publish(http, a, name, files)
    tokens = hub.caller_tokens(a, b)
    return World(a, b, tokens, {caller: hub.client(t) for caller, t in tokens.items()})


# --- the matrix ---------------------------------------------------------------------------

# Who may see the private model: any token covering namespace A (the read token covers all).
SEES_PRIVATE = {"read", "write-a", "admin"}
WRITES_A = {"write-a", "admin"}
BAD_TOKEN = {"expired", "revoked"}


def expected_read(caller: str, private: bool) -> int:
    if caller in BAD_TOKEN:
        return 401
    if private and caller not in SEES_PRIVATE:
        return 404
    return 200


def expected_write(caller: str, private: bool, ok: int) -> int:
    if caller == "anonymous" or caller in BAD_TOKEN:
        return 401
    if private and caller not in SEES_PRIVATE:
        return 404  # hidden, so not even "forbidden"
    if caller not in WRITES_A:
        return 403
    return ok


Action = Callable[[httpx.Client, str, str], httpx.Response]

READS: dict[str, Action] = {
    "get model": lambda c, ns, m: c.get(f"/models/{ns}/{m}"),
    "list versions": lambda c, ns, m: c.get(f"/models/{ns}/{m}/versions"),
    "get version": lambda c, ns, m: c.get(f"/models/{ns}/{m}/versions/1"),
    "list aliases": lambda c, ns, m: c.get(f"/models/{ns}/{m}/aliases"),
    "get file": lambda c, ns, m: c.get(f"/models/{ns}/{m}/versions/1/files/model.md"),
    "head file": lambda c, ns, m: c.head(f"/models/{ns}/{m}/versions/1/files/model.md"),
    "resolve": lambda c, ns, m: c.get("/resolve", params={"stub": f"zoo:{ns}/{m}@1"}),
}

WRITES: dict[str, tuple[Action, int]] = {
    "publish": (
        lambda c, ns, m: c.post(
            f"/models/{ns}/{m}/versions", json={"files": manifest({"model.md": b"# matrix\n"})}
        ),
        201,
    ),
    "set alias": (
        lambda c, ns, m: c.put(f"/models/{ns}/{m}/aliases/stable", json={"version": 1}),
        200,
    ),
    "benchmark": (
        lambda c, ns, m: c.post(
            f"/models/{ns}/{m}/versions/1/benchmarks",
            json={
                "engine": "zoo",
                "hardware": "test cpu",
                "cores": 2,
                "batch_size": 1,
                "throughput": 100.0,
            },
        ),
        201,
    ),
    "eval": (
        lambda c, ns, m: c.post(
            f"/models/{ns}/{m}/versions/1/evals",
            json={"dataset": "imagenet", "metric": "top1", "value": 0.7},
        ),
        201,
    ),
}


def check_status(r: httpx.Response, status: int, caller: str) -> None:
    assert r.status_code == status, (caller, r.status_code, r.text)
    if r.request.method == "HEAD" or status < 400:
        return
    code = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "MODEL_NOT_FOUND"}[status]
    error(r, status, code)
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("action", list(READS))
def test_read_matrix(hub: Hub, plain: httpx.Client, world: World, action: str, caller: str) -> None:
    http = world.clients[caller]
    for model, private in (("pub", False), ("priv", True)):
        r = READS[action](http, world.a, model)
        if r.status_code == 302:  # S3: the file is behind a presigned redirect
            r = plain.get(r.headers["location"])
        check_status(r, expected_read(caller, private), caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("action", list(WRITES))
def test_write_matrix(hub: Hub, world: World, action: str, caller: str) -> None:
    do, ok = WRITES[action]
    http = world.clients[caller]
    for model, private in (("pub", False), ("priv", True)):
        r = do(http, world.a, model)
        status = expected_write(caller, private, ok)
        check_status(r, status, caller)
        if status == 403:
            assert world.a in r.json()["error"]["message"]


@pytest.mark.parametrize("caller", CALLERS)
def test_search_matrix(hub: Hub, world: World, caller: str) -> None:
    r = world.clients[caller].get("/models", params={"namespace": world.a})
    if caller in BAD_TOKEN:
        check_status(r, 401, caller)
        return
    assert r.status_code == 200, r.text
    names = sorted(m["name"] for m in r.json()["items"])
    assert names == (["priv", "pub"] if caller in SEES_PRIVATE else ["pub"])
    # A text search that matches both finds only what the caller may see, too.
    r = world.clients[caller].get("/models", params={"q": world.a, "limit": 200})
    assert len(r.json()["items"]) == (2 if caller in SEES_PRIVATE else 1)


def test_write_token_cannot_create_models_elsewhere(hub: Hub, world: World) -> None:
    http = world.clients["write-b"]
    err = error(http.post("/models", json={"namespace": world.a, "name": "x"}), 403, "FORBIDDEN")
    assert f"'{world.a}'" in err["message"] and "writer-b" in err["message"]
    assert http.post("/models", json={"namespace": world.b, "name": "x"}).status_code == 201
    reader = world.clients["read"]
    error(reader.post("/models", json={"namespace": world.b, "name": "y"}), 403, "FORBIDDEN")


def test_write_token_cannot_commit_into_other_namespaces(
    hub: Hub, anon: httpx.Client, world: World
) -> None:
    writer = world.clients["write-a"]
    upload = writer.post(
        f"/models/{world.a}/pub/versions", json={"files": manifest({"model.md": b"# other\n"})}
    ).json()
    other = world.clients["write-b"]
    error(other.post(f"/uploads/{upload['upload_id']}/commit"), 403, "FORBIDDEN")
    error(other.delete(f"/uploads/{upload['upload_id']}"), 403, "FORBIDDEN")
    error(anon.post(f"/uploads/{upload['upload_id']}/commit"), 401, "UNAUTHORIZED")
    assert writer.delete(f"/uploads/{upload['upload_id']}").status_code == 204


# --- bad credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Token zoo_abc", "zoo_abc", "Bearer zoo_not-a-real-token"],
)
def test_malformed_or_unknown_authorization(hub: Hub, world: World, header: str) -> None:
    with httpx.Client(base_url=f"{hub.url}/api/v1", headers={"Authorization": header}) as c:
        for r in (
            c.get(f"/models/{world.a}/pub"),
            c.get("/models"),
            c.post(f"/models/{world.a}/pub/versions", json={"files": []}),
        ):
            err = error(r, 401, "UNAUTHORIZED")
            assert r.headers["www-authenticate"] == "Bearer"
            assert "Bearer" in err["message"] or "not valid" in err["message"]


def test_expired_and_revoked_tokens_say_why(hub: Hub, world: World) -> None:
    for caller, word in (("expired", "expired"), ("revoked", "revoked")):
        err = error(world.clients[caller].get("/models"), 401, "UNAUTHORIZED")
        assert word in err["message"]


# --- token administration -----------------------------------------------------------------


def test_token_lifecycle(hub: Hub, admin: httpx.Client) -> None:
    ns = unique_namespace()
    r = admin.post(
        "/tokens",
        json={"name": "ci", "scopes": ["write", "read"], "namespaces": [ns], "expires_in_days": 30},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["token"]
    assert secret.startswith("zoo_") and created["prefix"] == secret[:10]
    assert created["scopes"] == ["read", "write"] and created["namespaces"] == [ns]
    assert created["expires_at"] is not None and created["revoked_at"] is None

    # Only the sha256 of the secret is stored; nothing in the row holds the secret itself.
    with hub.sessionmaker() as s:
        row = s.scalar(select(Token).where(Token.id == created["id"]))
        assert row is not None
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        values = [str(getattr(row, c.key)) for c in Token.__table__.columns]
        assert not any(secret in v for v in values)
        assert not any(secret[10:20] in v for v in values)

    listed = admin.get("/tokens").json()
    mine = [t for t in listed if t["id"] == created["id"]]
    assert len(mine) == 1 and "token" not in mine[0]
    assert all("token" not in t and "token_hash" not in t for t in listed)

    writer = hub.client(secret)
    assert writer.post("/models", json={"namespace": ns, "name": "m"}).status_code == 201
    r = admin.delete(f"/tokens/{created['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    err = error(writer.post("/models", json={"namespace": ns, "name": "m2"}), 401, "UNAUTHORIZED")
    assert "'ci'" in err["message"] and "revoked" in err["message"]
    # Revoking twice keeps the first time.
    again = admin.delete(f"/tokens/{created['id']}").json()
    assert again["revoked_at"] == r.json()["revoked_at"]


@pytest.mark.parametrize("caller", ["anonymous", "read", "write-a", "expired", "revoked"])
def test_token_endpoints_are_admin_only(hub: Hub, world: World, caller: str) -> None:
    http = world.clients[caller]
    status = 401 if caller in {"anonymous", *BAD_TOKEN} else 403
    code = "UNAUTHORIZED" if status == 401 else "FORBIDDEN"
    for r in (
        http.post("/tokens", json={"name": "x", "scopes": ["admin"]}),
        http.get("/tokens"),
        http.delete("/tokens/1"),
    ):
        err = error(r, status, code)
        if status == 403:
            assert "'admin'" in err["message"]


def test_token_validation(hub: Hub, admin: httpx.Client) -> None:
    err = error(
        admin.post("/tokens", json={"name": "x", "scopes": ["root"]}), 422, "VALIDATION_FAILED"
    )
    assert "'root'" in err["message"]
    err = error(admin.post("/tokens", json={"name": "x", "scopes": []}), 422, "VALIDATION_FAILED")
    assert "scopes" in err["message"]
    err = error(
        admin.post("/tokens", json={"name": "x", "scopes": ["read"], "expires_in_days": 0}),
        422,
        "VALIDATION_FAILED",
    )
    assert "expires_in_days" in err["message"]
    err = error(admin.delete("/tokens/987654321"), 404, "TOKEN_NOT_FOUND")
    assert "987654321" in err["message"]
