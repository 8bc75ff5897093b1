"""The authorization matrix across every surface, on both configurations.

Seven callers (anonymous, a read token, write tokens on namespace A and on B, admin, an expired
and a revoked token) x {a public model, a private model in A} x every way in: the JSON API
(models, versions, aliases, resolve, search with its cursor pages), file downloads (GET, HEAD,
Range; S3's presigned redirect followed), the SparseZoo-compatible GraphQL API and its archive
downloads, and the web pages (catalog with facet counts and totals, text search, model and
version pages, compare, lineage). The rules:

- a private model answers 404 (never 403) to callers who may not see it, and is absent from
  every listing, count, facet, suggestion and link they get;
- expired and revoked tokens answer 401 everywhere, public reads included;
- no response echoes the caller's token.

Plus: presigned download URLs expire (``ZOO_PRESIGN_EXPIRY_SECONDS``), and no log line of a
hub logging at DEBUG (uvicorn access log included) holds a token or its hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from app.main import create_app
from app.orm import Model, Namespace
from app.seed import build_seed_model
from support.hub import Hub, create_model, publish, unique_namespace
from support.live import live_server
from support.onnx_models import linear_model

CALLERS = ["anonymous", "read", "write-a", "write-b", "admin", "expired", "revoked"]
# Who may see the private model: any token covering namespace A (the read token covers all).
SEES_PRIVATE = {"read", "write-a", "admin"}
BAD_TOKEN = {"expired", "revoked"}
MODELS = ["pub", "priv"]


@dataclass(frozen=True)
class Subject:
    """One model of the world."""

    key: str
    namespace: str
    name: str
    path_stub: str
    private: bool
    model_id: int


@dataclass(frozen=True)
class World:
    """Namespace A with a public model and a private one derived from it; a public model in B
    derived from the private one; the callers' tokens and clients (on the hub's root URL)."""

    hub: Hub
    a: str
    b: str
    arch: str
    private_dataset: str  # a facet value only the private model has
    models: dict[str, Subject]  # pub, priv, child
    tokens: dict[str, str | None]
    http: dict[str, httpx.Client]
    plain: httpx.Client  # no token: for presigned URLs

    def visible(self, caller: str) -> set[str]:
        """The world's models ``caller`` may see."""
        return {k for k, m in self.models.items() if not m.private or caller in SEES_PRIVATE}


@pytest.fixture(scope="module")
def world(hub: Hub) -> Iterator[World]:
    a, b = unique_namespace(), unique_namespace()
    arch = f"arch{a[1:9]}"
    private_dataset = f"privdata{a[1:9]}"
    admin = hub.client(hub.admin_token)
    models: dict[str, Subject] = {}
    for key, dataset, seed in (("pub", f"pubdata{a[1:9]}", 11), ("priv", private_dataset, 12)):
        # The seed model is 90% sparse, and the sparse tag must say so.
        stub = f"zoo:cv/classification/{arch}/onnx/{a}/{dataset}/pruned90-none"
        private = key == "priv"
        body = create_model(
            admin,
            a,
            name=f"{key}-{a}",
            stub=stub,
            description=f"{key} model of {a}",
            visibility="private" if private else "public",
            base_model=f"zoo:{a}/pub-{a}" if private else None,
        )
        files = {f.path: f.data for f in build_seed_model(seed=seed)}
        files["model.md"] = f"# {key} of {a}\n".encode()
        publish(admin, a, body["name"], files)
        models[key] = Subject(
            key,
            a,
            body["name"],
            stub.removeprefix("zoo:"),
            private,
            _model_id(hub, a, body["name"]),
        )
    # A public model in B derived from the private one (an admin may do that): its base must
    # not give the private model away.
    child = create_model(admin, b, name=f"child-{b}", base_model=f"zoo:{a}/priv-{a}")
    publish(admin, b, child["name"], {"model.onnx": linear_model(0.5, seed=13)})
    models["child"] = Subject(
        "child", b, child["name"], "", False, _model_id(hub, b, child["name"])
    )

    tokens = hub.caller_tokens(a, b)
    with ExitStack() as stack:
        http = {
            caller: stack.enter_context(
                httpx.Client(
                    base_url=hub.url,
                    headers={"Authorization": f"Bearer {t}"} if t else {},
                    timeout=60,
                )
            )
            for caller, t in tokens.items()
        }
        plain = stack.enter_context(httpx.Client(timeout=60))
        yield World(hub, a, b, arch, private_dataset, models, tokens, http, plain)


def _model_id(hub: Hub, namespace: str, name: str) -> int:
    """The model's database id (what GraphQL's ``modelId`` takes; the REST API does not show it)."""
    with hub.sessionmaker() as s:
        return int(
            s.scalars(
                select(Model.id)
                .join(Model.namespace)
                .where(Namespace.name == namespace, Model.name == name)
            ).one()
        )


def expected_read(caller: str, private: bool, ok: int = 200) -> int:
    if caller in BAD_TOKEN:
        return 401
    if private and caller not in SEES_PRIVATE:
        return 404
    return ok


def no_echo(world: World, caller: str, r: httpx.Response) -> None:
    """The response holds neither the caller's token nor its hash."""
    token = world.tokens[caller]
    if token is None:
        return
    seen = r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    assert token not in seen and token[4:] not in seen, (caller, r.request.url)
    assert hashlib.sha256(token.encode()).hexdigest() not in seen


# --- requests addressed at one model --------------------------------------------------------

Direct = Callable[[World, httpx.Client, Subject], httpx.Response]


def _fetch(w: World, http: httpx.Client, method: str, url: str, **headers: str) -> httpx.Response:
    """A download as a client makes it: on S3, follow the 302 to the presigned URL (no token)."""
    r = http.request(method, url, headers=headers)
    if r.status_code == 302:
        assert "X-Amz-Signature=" in r.headers["location"]
        r = w.plain.request(method, r.headers["location"], headers=headers)
    return r


def _api(m: Subject, rest: str = "") -> str:
    return f"/api/v1/models/{m.namespace}/{m.name}{rest}"


def _archive(m: Subject) -> str:
    return f"/v2/models/{m.namespace}/{m.name}/versions/1/archives/sample-inputs.tar.gz"


# (action, success status, what a 404 body's code is: JSON code, or None for HTML / HEAD)
DIRECT: dict[str, tuple[Direct, int, str | None]] = {
    "rest model": (lambda w, c, m: c.get(_api(m)), 200, "MODEL_NOT_FOUND"),
    "rest versions": (lambda w, c, m: c.get(_api(m, "/versions")), 200, "MODEL_NOT_FOUND"),
    "rest version 1": (lambda w, c, m: c.get(_api(m, "/versions/1")), 200, "MODEL_NOT_FOUND"),
    "rest version latest": (
        lambda w, c, m: c.get(_api(m, "/versions/latest")),
        200,
        "MODEL_NOT_FOUND",
    ),
    "rest aliases": (lambda w, c, m: c.get(_api(m, "/aliases")), 200, "MODEL_NOT_FOUND"),
    "rest alias history": (
        lambda w, c, m: c.get(_api(m, "/aliases/history")),
        200,
        "MODEL_NOT_FOUND",
    ),
    "resolve namespaced": (
        lambda w, c, m: c.get("/api/v1/resolve", params={"stub": f"zoo:{m.namespace}/{m.name}@1"}),
        200,
        "MODEL_NOT_FOUND",
    ),
    "resolve path stub": (
        lambda w, c, m: c.get("/api/v1/resolve", params={"stub": f"zoo:{m.path_stub}"}),
        200,
        "MODEL_NOT_FOUND",
    ),
    "resolve short stub": (
        lambda w, c, m: c.get("/api/v1/resolve", params={"stub": f"zoo:{m.name}@latest"}),
        200,
        "MODEL_NOT_FOUND",
    ),
    "file get": (
        lambda w, c, m: _fetch(w, c, "GET", _api(m, "/versions/1/files/model.md")),
        200,
        "MODEL_NOT_FOUND",
    ),
    "file get by alias": (
        lambda w, c, m: _fetch(w, c, "GET", _api(m, "/versions/latest/files/model.onnx")),
        200,
        "MODEL_NOT_FOUND",
    ),
    "file head": (
        lambda w, c, m: _fetch(w, c, "HEAD", _api(m, "/versions/1/files/model.onnx")),
        200,
        None,
    ),
    "file range": (
        lambda w, c, m: _fetch(
            w, c, "GET", _api(m, "/versions/1/files/model.onnx"), Range="bytes=0-9"
        ),
        206,
        "MODEL_NOT_FOUND",
    ),
    "file range resume": (
        lambda w, c, m: _fetch(
            w, c, "GET", _api(m, "/versions/1/files/model.onnx"), Range="bytes=10-"
        ),
        206,
        "MODEL_NOT_FOUND",
    ),
    "compat archive get": (
        lambda w, c, m: _fetch(w, c, "GET", _archive(m)),
        200,
        "MODEL_NOT_FOUND",
    ),
    "compat archive head": (lambda w, c, m: _fetch(w, c, "HEAD", _archive(m)), 200, None),
    "compat archive range": (
        lambda w, c, m: _fetch(w, c, "GET", _archive(m), Range="bytes=0-99"),
        206,
        "MODEL_NOT_FOUND",
    ),
    "web model page": (lambda w, c, m: c.get(f"/models/{m.namespace}/{m.name}"), 200, None),
    "web version page": (
        lambda w, c, m: c.get(f"/models/{m.namespace}/{m.name}", params={"version": "1"}),
        200,
        None,
    ),
    "web alias page": (
        lambda w, c, m: c.get(f"/models/{m.namespace}/{m.name}", params={"version": "latest"}),
        200,
        None,
    ),
}


def check_error(r: httpx.Response, status: int, code: str | None) -> None:
    """An error in the surface's shape: JSON ``{"error": ...}`` for the API, an HTML page (with
    the same status) for the web; 401 always names the Bearer scheme."""
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    if r.request.method == "HEAD":
        return
    if r.headers["content-type"].startswith("text/html"):
        assert f"{status}" in r.text
        return
    body = r.json()["error"]
    assert body["code"] == {401: "UNAUTHORIZED"}.get(status, code), body


def _own_hints(world: World, text: str) -> str:
    """An error body with its "did you mean" hints narrowed to this world's models.

    The session's hub also holds every other test's models, and the hints rank them by
    likeness to the stub asked for: a ghost stub and the private one differ in a few letters,
    so third-party hints may rank differently. The world's own hints must match exactly.
    """
    if not text.startswith("{"):
        return text
    body = json.loads(text)
    details = body.get("error", {}).get("details") or {}
    hints = details.get("suggestions")
    if not hints:
        return text
    own = [h for h in hints if world.arch in h or f"/{world.a}/" in h or f":{world.a}/" in h]
    details["suggestions"] = own
    message = body["error"]["message"]
    body["error"]["message"] = message.split("; did you mean ")[0] + f" {own}"
    return json.dumps(body, sort_keys=True)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("action", list(DIRECT))
def test_direct_matrix(world: World, action: str, caller: str, model: str) -> None:
    do, ok, code = DIRECT[action]
    subject = world.models[model]
    r = do(world, world.http[caller], subject)
    status = expected_read(caller, subject.private, ok)
    assert r.status_code == status, (action, caller, model, r.status_code, r.text[:500])
    no_echo(world, caller, r)
    if status >= 400:
        check_error(r, status, code)
    if status == 404:
        # "Did you mean" hints come from visible models only.
        if r.request.method != "HEAD":
            assert subject.name not in json.dumps(_details(r).get("suggestions", []))
        # And the answer is the one a model that does not exist gets, word for word.
        ghost = replace(
            subject,
            name=subject.name.replace("priv-", "gone-"),
            path_stub=subject.path_stub.replace("privdata", "gonedata"),
        )
        g = do(world, world.http[caller], ghost)
        assert g.status_code == 404
        unmasked = g.text.replace("gone-", "priv-").replace("gonedata", "privdata")
        assert _own_hints(world, unmasked) == _own_hints(world, r.text), (r.text, g.text)
        assert set(g.headers) == set(r.headers)


def _details(r: httpx.Response) -> dict[str, object]:
    if not r.headers["content-type"].startswith("application/json"):
        return {}
    return dict(r.json()["error"]["details"])


@pytest.mark.parametrize("caller", CALLERS)
def test_suggestions_never_name_a_hidden_model(world: World, caller: str) -> None:
    priv = world.models["priv"]
    for stub in (f"zoo:{priv.namespace}/{priv.name}x", f"zoo:{priv.path_stub}x"):
        r = world.http[caller].get("/api/v1/resolve", params={"stub": stub})
        no_echo(world, caller, r)
        if caller in BAD_TOKEN:
            assert r.status_code == 401
            continue
        assert r.status_code == 404, r.text
        if caller not in SEES_PRIVATE:
            assert priv.name not in json.dumps(_details(r)["suggestions"])
            assert priv.path_stub not in json.dumps(_details(r)["suggestions"])


# --- listings, counts and facets ------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What a listing showed of the world: its models (None: the listing names none), the total
    it claims (None: it states none), and the raw bodies (to look for leaks in)."""

    models: set[str] | None
    total: int | None
    bodies: list[str]


Listing = Callable[[World, httpx.Client], httpx.Response | Seen]


def _keys(world: World, pairs: list[tuple[str, str]]) -> set[str]:
    """World model keys for (namespace, name) pairs; other tests' models are ignored."""
    by_name = {(m.namespace, m.name): k for k, m in world.models.items()}
    return {by_name[p] for p in pairs if p in by_name}


def _rest_pages(w: World, c: httpx.Client, **params: str) -> httpx.Response | Seen:
    """Every cursor page of a REST search, one model per page: each page must hold exactly one
    model, and the last must say so (a trailing empty page would count a hidden model)."""
    pairs: list[tuple[str, str]] = []
    bodies: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        query = {**params, "limit": "1", **({"cursor": cursor} if cursor else {})}
        r = c.get("/api/v1/models", params=query)
        if r.status_code != 200:
            return r
        bodies.append(r.text)
        page = r.json()
        assert len(page["items"]) == 1 or (not pairs and not page["items"]), page
        pairs += [(m["namespace"], m["name"]) for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert 'rel="next"' in r.headers["link"]
    return Seen(_keys(w, pairs), len(pairs), bodies)


def _gql(w: World, c: httpx.Client, args: str) -> httpx.Response | Seen:
    query = f"{{ models({args}) {{ repoName repoNamespace modelId stub baseModel }} }}"
    r = c.post("/v2/graphql", json={"query": query})
    if r.status_code != 200:
        return r
    body = r.json()
    assert "errors" not in body, body
    found = body["data"]["models"]
    pairs = [(m["repoNamespace"], m["repoName"]) for m in found]
    return Seen(_keys(w, pairs), len(found), [r.text])


def _gql_offsets(w: World, c: httpx.Client) -> httpx.Response | Seen:
    """``limit``/``offset`` pages: the hidden model takes no slot."""
    keys: set[str] = set()
    bodies: list[str] = []
    count = 0
    for offset in range(4):
        seen = _gql(w, c, f'repoNamespace: "{w.a}", limit: 1, offset: {offset}')
        if not isinstance(seen, Seen):
            return seen
        assert seen.models is not None and seen.total is not None
        keys |= seen.models
        count += seen.total
        bodies += seen.bodies
    return Seen(keys, count, bodies)


_ROW = re.compile(r'<a class="model-name" href="/models/([^/"]+)/([^/"]+)"')
_TOTAL = re.compile(r'<h2 id="results-title">([\d,]+) models?</h2>')


def _option_count(html: str, value: str) -> int:
    """The count a facet option shows (``value (N)``), 0 when the option is absent."""
    found = re.findall(
        rf'<option value="{re.escape(value)}"[^>]*>{re.escape(value)} \(([\d,]+)', html
    )
    assert len(found) <= 1, found
    return int(found[0].replace(",", "")) if found else 0


def _catalog(w: World, c: httpx.Client, **params: str) -> httpx.Response | Seen:
    """A catalog page: its rows, its total, and its facet counts, which must agree."""
    r = c.get("/", params=params)
    if r.status_code != 200:
        return r
    html = r.text
    keys = _keys(w, _ROW.findall(html))
    match = _TOTAL.search(html)
    assert match, html[:2000]
    total = int(match.group(1).replace(",", ""))
    if params:  # narrowed to the world: every facet count is about the world's models
        priv = int("priv" in keys)
        assert _option_count(html, w.arch) == len(keys), html
        if params.get("dataset") is None:
            assert _option_count(html, w.private_dataset) == priv, html
    return Seen(keys, total, [html])


def _catalog_pages(w: World, c: httpx.Client) -> httpx.Response | Seen:
    """The catalog one row per page, following its "Next page" links: each page holds one row,
    and there is no trailing empty page (it would count a hidden model)."""
    pairs: list[tuple[str, str]] = []
    bodies: list[str] = []
    url = f"/?namespace={w.a}&limit=1"
    for _ in range(10):
        r = c.get(url)
        if r.status_code != 200:
            return r
        bodies.append(r.text)
        rows = _ROW.findall(r.text)
        assert len(rows) == 1, (url, rows)
        pairs += rows
        link = re.search(r'<a href="([^"]+)" rel="next">', r.text)
        if link is None:
            break
        url = unescape(link.group(1))
    return Seen(_keys(w, pairs), len(pairs), bodies)


def _compare(w: World, c: httpx.Client) -> httpx.Response | Seen:
    r = c.get("/compare", params={"architecture": w.arch})
    if r.status_code != 200:
        return r
    keys = _keys(w, _ROW.findall(r.text))
    match = re.search(r'<p class="lead">(\d+) variants?', r.text)
    assert match, r.text[:2000]
    return Seen(keys, int(match.group(1)), [r.text])


def _compare_choices(w: World, c: httpx.Client) -> httpx.Response | Seen:
    r = c.get("/compare")
    if r.status_code != 200:
        return r
    return Seen(None, _option_count(r.text, w.arch), [r.text])


# listing -> (action, the world models it matches when the caller sees everything)
LISTINGS: dict[str, tuple[Listing, set[str]]] = {
    "rest search namespace": (lambda w, c: _rest_pages(w, c, namespace=w.a), {"pub", "priv"}),
    "rest search text": (lambda w, c: _rest_pages(w, c, q=f"model of {w.a}"), {"pub", "priv"}),
    "rest search architecture": (
        lambda w, c: _rest_pages(w, c, architecture=w.arch),
        {"pub", "priv"},
    ),
    "rest search dataset": (lambda w, c: _rest_pages(w, c, dataset=w.private_dataset), {"priv"}),
    "rest search sorted": (
        lambda w, c: _rest_pages(w, c, namespace=w.a, sort="-sparsity"),
        {"pub", "priv"},
    ),
    "graphql repoNamespace": (lambda w, c: _gql(w, c, f'repoNamespace: "{w.a}"'), {"pub", "priv"}),
    "graphql repo": (lambda w, c: _gql(w, c, f'repo: "{w.a}"'), {"pub", "priv"}),
    "graphql architecture": (lambda w, c: _gql(w, c, f'architecture: "{w.arch}"'), {"pub", "priv"}),
    "graphql dataset": (
        lambda w, c: _gql(w, c, f'sourceDataset: "{w.private_dataset}"'),
        {"priv"},
    ),
    "graphql namespaced stub": (
        lambda w, c: _gql(w, c, f'stub: "zoo:{w.a}/{w.models["priv"].name}"'),
        {"priv"},
    ),
    "graphql path stub": (
        lambda w, c: _gql(w, c, f'stub: "zoo:{w.models["priv"].path_stub}"'),
        {"priv"},
    ),
    "graphql short stub": (
        lambda w, c: _gql(w, c, f'repoName: "{w.models["priv"].name}"'),
        {"priv"},
    ),
    "graphql modelId": (
        lambda w, c: _gql(w, c, f'modelId: "{w.models["priv"].model_id}"'),
        {"priv"},
    ),
    "graphql offsets": (_gql_offsets, {"pub", "priv"}),
    "web catalog namespace": (lambda w, c: _catalog(w, c, namespace=w.a), {"pub", "priv"}),
    "web catalog text": (lambda w, c: _catalog(w, c, q=f"model of {w.a}"), {"pub", "priv"}),
    "web catalog architecture": (lambda w, c: _catalog(w, c, architecture=w.arch), {"pub", "priv"}),
    "web catalog dataset": (lambda w, c: _catalog(w, c, dataset=w.private_dataset), {"priv"}),
    "web catalog pages": (_catalog_pages, {"pub", "priv"}),
    "web compare": (_compare, {"pub", "priv"}),
    "web compare choices": (_compare_choices, {"pub", "priv"}),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("listing", list(LISTINGS))
def test_listing_matrix(world: World, listing: str, caller: str) -> None:
    do, matches = LISTINGS[listing]
    seen = do(world, world.http[caller])
    if caller in BAD_TOKEN:
        assert isinstance(seen, httpx.Response), seen
        assert seen.status_code == 401, seen.text[:500]
        check_error(seen, 401, None)
        no_echo(world, caller, seen)
        return
    assert isinstance(seen, Seen), (seen.status_code, seen.text[:500])
    expected = matches & world.visible(caller)
    if seen.models is not None:
        assert seen.models == expected, (listing, caller)
    assert seen.total == len(expected), (listing, caller, seen.total)
    priv = world.models["priv"]
    for body in seen.bodies:
        if caller not in SEES_PRIVATE:
            assert priv.name not in body and priv.path_stub not in body, (listing, caller)
        token = world.tokens[caller]
        assert token is None or token not in body


@pytest.mark.parametrize("caller", CALLERS)
def test_unfiltered_catalog_hides_private_models(world: World, caller: str) -> None:
    """The front page (every model, every facet value): nothing of the private model shows."""
    r = world.http[caller].get("/")
    no_echo(world, caller, r)
    if caller in BAD_TOKEN:
        assert r.status_code == 401
        return
    assert r.status_code == 200
    if caller not in SEES_PRIVATE:
        assert world.private_dataset not in r.text
        assert world.models["priv"].name not in r.text
    r = world.http[caller].get("/compare", params={"architecture": world.arch, "dataset": ""})
    assert r.status_code == 200
    assert (world.models["priv"].name in r.text) == (caller in SEES_PRIVATE)


@pytest.mark.parametrize("caller", CALLERS)
def test_graphql_file_links_work_for_those_who_see_them(world: World, caller: str) -> None:
    """Every file and archive URL a listing hands out downloads with the same token."""
    http = world.http[caller]
    query = (
        f'{{ models(repoNamespace: "{world.a}") {{ repoName files(version: 2) '
        "{ downloadUrl fileType } } }"
    )
    r = http.post("/v2/graphql", json={"query": query})
    no_echo(world, caller, r)
    if caller in BAD_TOKEN:
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        return
    listed = {m["repoName"]: m["files"] for m in r.json()["data"]["models"]}
    assert set(listed) == {world.models[k].name for k in world.visible(caller) - {"child"}}
    for files in listed.values():
        assert {f["fileType"] for f in files} >= {"onnx", "inputs", "card"}
        for f in files:
            assert _fetch(world, http, "HEAD", f["downloadUrl"]).status_code == 200
    # And the private model's links, taken from someone who may see them, stay closed.
    if caller not in SEES_PRIVATE:
        admin = world.http["admin"].post("/v2/graphql", json={"query": query}).json()
        priv = next(m for m in admin["data"]["models"] if m["repoName"].startswith("priv-"))
        for f in priv["files"]:
            assert http.head(f["downloadUrl"]).status_code == 404


# --- lineage: a public model derived from a private one ---------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_lineage_never_names_a_hidden_base(world: World, caller: str) -> None:
    """``base_model`` is shown only when every caller who sees the model may see the base (the
    field is the same for all of them); the web lineage is drawn per caller."""
    http = world.http[caller]
    child, priv, pub = world.models["child"], world.models["priv"], world.models["pub"]
    hidden = f"{priv.namespace}/{priv.name}"
    responses = [
        http.get(_api(child)),
        http.get(_api(child, "/versions/1")),
        http.get("/api/v1/resolve", params={"stub": f"zoo:{child.namespace}/{child.name}"}),
        http.get("/api/v1/models", params={"namespace": child.namespace}),
        http.post(
            "/v2/graphql",
            json={"query": f'{{ models(repoNamespace: "{child.namespace}") {{ baseModel }} }}'},
        ),
    ]
    for r in responses:
        no_echo(world, caller, r)
        if caller in BAD_TOKEN:
            assert r.status_code == 401
            continue
        assert r.status_code == 200, r.text
        assert hidden not in r.text, (caller, r.request.url)
    if caller in BAD_TOKEN:
        return
    assert http.get(_api(child)).json()["base_model"] is None
    # A private model's public base is shown (everyone who sees it may see the base).
    if caller in SEES_PRIVATE:
        assert http.get(_api(priv)).json()["base_model"] == f"zoo:{pub.namespace}/{pub.name}"
    # The web draws the family per caller: the private member shows only to those who see it.
    for page in (f"/models/{child.namespace}/{child.name}", f"/models/{pub.namespace}/{pub.name}"):
        html = http.get(page).text
        assert (f'href="/models/{hidden}"' in html) == (caller in SEES_PRIVATE), (caller, page)


# --- what caches may keep ---------------------------------------------------------------------

# Downloads of a pinned version (never changes): hub path for a model.
PINNED: dict[str, Callable[[Subject], str]] = {
    "file": lambda m: _api(m, "/versions/1/files/model.onnx"),
    "archive": _archive,
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("caller", sorted(SEES_PRIVATE))
@pytest.mark.parametrize("download", list(PINNED))
def test_shared_caches_never_keep_private_bytes(
    world: World, download: str, caller: str, model: str, method: str
) -> None:
    """A pinned download is cacheable for a year, but only a public model's by shared caches
    (``public``); a private model's is ``private``, or a proxy would serve it to anyone. S3's
    redirect is a short-lived grant: ``no-store``."""
    subject = world.models[model]
    r = world.http[caller].request(method, PINNED[download](subject))
    assert r.status_code in (200, 302), r.text
    cache = r.headers["cache-control"]
    if r.status_code == 302:
        assert cache == "no-store"
        return
    scope = "private" if subject.private else "public"
    assert cache == f"{scope}, max-age=31536000, immutable"


def test_a_base_model_reference_needs_sight_of_the_base(world: World) -> None:
    """Deriving from a model one may not see is "no such model" (404), not "forbidden"."""
    priv = world.models["priv"]
    body = {
        "namespace": world.b,
        "name": "derived",
        "base_model": f"zoo:{priv.namespace}/{priv.name}",
    }
    r = world.http["write-b"].post("/api/v1/models", json=body)
    assert r.status_code == 404 and r.json()["error"]["code"] == "MODEL_NOT_FOUND", r.text
    assert world.http["admin"].get(f"/api/v1/models/{world.b}/derived").status_code == 404


# --- presigned URLs expire -------------------------------------------------------------------


@pytest.mark.slow
def test_presigned_urls_expire(world: World, s3_target_is_moto: bool) -> None:
    """The S3 backend hands out presigned URLs that live ``presign_expiry_seconds``; the store
    refuses them after that. The filesystem backend streams bytes itself (no URL to leak)."""
    hub, pub = world.hub, world.models["pub"]
    path = _api(pub, "/versions/1/files/model.onnx")
    if hub.settings.storage == "filesystem":
        r = world.http["anonymous"].get(path)
        assert r.status_code == 200 and "location" not in r.headers
        return
    # The hub's own URLs carry its configured lifetime.
    r = world.http["anonymous"].get(path)
    assert r.status_code == 302
    url = r.headers["location"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [
        str(hub.settings.presign_expiry_seconds)
    ]
    # A hub on the same database and bucket with a 2-second lifetime.
    short = hub.settings.model_copy(update={"presign_expiry_seconds": 2})
    with live_server(create_app(short)) as base, httpx.Client(base_url=base, timeout=60) as c:
        r = c.get(path)
        assert r.status_code == 302
        url = r.headers["location"]
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["2"]
        assert world.plain.get(url).status_code == 200
        time.sleep(3.5)
        r = world.plain.get(url)
        if r.status_code == 200 and s3_target_is_moto:
            pytest.skip(
                "moto served an expired URL (it does not check X-Amz-Expires); CI's S3 does"
            )
        assert r.status_code == 403, r.text
        assert "expired" in r.text.lower()


@pytest.fixture
def s3_target_is_moto(hub: Hub, request: pytest.FixtureRequest) -> bool:
    """Whether the S3 configuration runs on moto (no real S3 server configured)."""
    if hub.settings.storage != "s3":
        return False
    return bool(request.getfixturevalue("s3_target").is_moto)


# --- tokens in no log line ---------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.mark.slow
def test_tokens_appear_in_no_log_line(world: World) -> None:
    """A hub logging everything at DEBUG (its own loggers, uvicorn's access log, libraries;
    SQLAlchemy echo off as configured): every surface, every caller, good and bad tokens and
    malformed headers. No line holds a token or its hash, and no response echoes them."""
    hub = world.hub
    capture = _Capture()
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "app"]
    with live_server(create_app(hub.settings)) as base:
        # uvicorn configures its loggers when the server starts: take them over after that.
        saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
        for n in names:
            logging.getLogger(n).setLevel(logging.DEBUG)
        logging.getLogger("uvicorn.access").propagate = True
        logging.getLogger("uvicorn").propagate = True
        logging.getLogger().addHandler(capture)
        secrets = [t for t in world.tokens.values() if t] + ["zoo_" + "s3cr3t" * 7]
        try:
            with ExitStack() as stack:
                for caller, token in [*world.tokens.items(), ("unknown", secrets[-1])]:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    c = stack.enter_context(
                        httpx.Client(base_url=base, headers=headers, timeout=60)
                    )
                    w = replace(
                        world,
                        http={**world.http, caller: c},
                        tokens={**world.tokens, caller: token},
                    )
                    responses = _exercise(w, c)
                    for r in responses:
                        no_echo(w, caller, r)
                # Malformed headers carrying a secret, and places the hub does not read tokens
                # from (query string, cookie): never echoed, never logged, never accepted.
                secret = secrets[0]
                plain = stack.enter_context(httpx.Client(base_url=base, timeout=60))
                priv = world.models["priv"]
                for header in (f"Token {secret}", secret, f"Basic {secret}", f"Bearer  {secret} x"):
                    r = plain.get(_api(priv), headers={"Authorization": header})
                    assert r.status_code == 401 and secret not in r.text
                r = plain.get(_api(priv), headers={"Cookie": f"token={secret}; session={secret}"})
                assert r.status_code == 404 and secret not in r.text
                # A token pasted into a URL: uvicorn's access log records query strings
                # verbatim, so the hub masks token-shaped text in every log record it makes.
                r = plain.get(_api(priv), params={"token": secret, "next": f"x{secret}"})
                assert r.status_code == 404 and secret not in r.text
        finally:
            logging.getLogger().removeHandler(capture)
            for n, (level, propagate) in saved.items():
                logging.getLogger(n).setLevel(level)
                logging.getLogger(n).propagate = propagate
    assert any("uvicorn.access" in line for line in capture.lines), "the access log was not seen"
    assert len(capture.lines) > 100
    for secret in secrets:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        for line in capture.lines:
            assert secret not in line and secret[4:20] not in line, line
            assert digest not in line, line


def _exercise(w: World, c: httpx.Client) -> list[httpx.Response]:
    out: list[httpx.Response] = []
    for do, _, _ in DIRECT.values():
        for key in MODELS:
            out.append(do(w, c, w.models[key]))
    for do_listing, _ in LISTINGS.values():
        seen = do_listing(w, c)
        if isinstance(seen, httpx.Response):
            out.append(seen)
    out.append(c.post("/api/v1/models", json={"namespace": w.a, "name": "x" * 300}))
    out.append(c.post("/v2/graphql", json={"query": "{ models(bogus: 1) { stub } }"}))
    return out
