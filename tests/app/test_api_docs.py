"""/docs on a hub with no internet access: every asset it loads comes from the hub.

(The same pages in a real browser that may reach nothing but the hub: tests/e2e.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from support.hub import Hub


@pytest.fixture(scope="module")
def site(hub: Hub) -> Iterator[httpx.Client]:
    """A client on the hub's root (the pages), not on /api/v1."""
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        yield c


class _Refs(HTMLParser):
    """The URLs a page loads: ``src`` of scripts, ``href`` of stylesheets and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        url = a.get("src") if tag == "script" else a.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


def _refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.urls


def test_docs_page_loads_only_from_the_hub(site: httpx.Client) -> None:
    script = "swagger-ui-bundle.js"
    r = site.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    # no other site anywhere in the page: not a CDN, not a font service, not a validator
    assert "http://" not in r.text and "https://" not in r.text, r.text
    refs = _refs(r.text)
    assert any(u.endswith(script) for u in refs), refs
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in refs:
        assert url.startswith("/static-docs/"), url
        asset = site.get(url)
        assert asset.status_code == 200, url
        kind = next(v for k, v in kinds.items() if url.endswith(k))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url
    js = site.get(next(u for u in refs if u.endswith(script))).text
    assert "SwaggerUIBundle" in js


def test_no_redoc_page(site: httpx.Client) -> None:
    # ReDoc fetches its logo from cdn.redoc.ly even when served locally (see app/api_docs.py)
    assert site.get("/redoc").status_code == 404


def test_swagger_ui_is_version_5_and_sends_nothing_to_its_validator(site: httpx.Client) -> None:
    # Swagger UI 4 cannot render FastAPI's OpenAPI 3.1 (a blank page with an error); its
    # validator badge would send the spec's URL to validator.swagger.io
    html = site.get("/docs").text
    assert '"validatorUrl": null' in html
    js = site.get("/static-docs/swagger-ui-bundle.js").text
    assert site.get("/openapi.json").json()["openapi"].startswith("3.1")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.\d+"', js)
    assert version is not None and int(version.group(1)) >= 5, version


def test_oauth2_redirect_page_is_served(site: httpx.Client) -> None:
    r = site.get("/docs/oauth2-redirect")
    assert r.status_code == 200 and "oauth2" in r.text.lower()


def test_docs_assets_do_not_escape_their_directory(site: httpx.Client) -> None:
    # the assets' folder is fastapi-offline's package: its Python source sits one level up
    r = site.get("/static-docs/%2e%2e/core.py")
    assert r.status_code == 404 and "FastAPIOffline" not in r.text
