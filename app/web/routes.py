"""Web pages: parse the request, call a service, render a template. Errors render as HTML pages
with the API's status codes (a private model is a 404 page, a bad token a 401 page)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app.auth import DbSession, Principal, optional_principal
from app.deps import StorageDep, base_url
from app.errors import ZooError
from app.web import charts, service
from app.web.facets import SPARSITY_STEPS
from app.web.model_page import model_page
from app.web.query import SORTS, CatalogQuery

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

# Everything a page uses comes from the hub itself: no CDN, no inline script, so the hub works
# offline and a card that slipped something past the sanitiser still could not run it. A page
# depends on the token it was asked with (private models): caches must key on it.
PAGE_HEADERS = {
    "Vary": "Authorization",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _asset_version() -> str:
    """A hash of the static files, appended to their URLs so browsers refetch after a change."""
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def filesize(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def percent(value: float | None, digits: int = 1) -> str:
    """``0.9`` -> ``90.0%``; None -> ``—``."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def number(value: float | int | None) -> str:
    """``1234.5`` -> ``1,234.5``; None -> ``—``."""
    if value is None:
        return "—"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def breakable(stub: str) -> Markup:
    """A stub that may wrap after each '/' (``<wbr>``) rather than mid-word."""
    return Markup("/<wbr>").join(stub.split("/"))  # join() escapes each part


templates.env.filters.update(filesize=filesize, percent=percent, number=number, breakable=breakable)
templates.env.globals.update(asset_version=_asset_version())


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A page with its security and caching headers."""
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=PAGE_HEADERS
    )


def _page(
    request: Request, session: DbSession, build: Callable[[Principal | None], Response]
) -> Response:
    """Authenticate like the API (``Authorization: Bearer``), build the page, and render any
    ZooError as an error page with its status."""
    try:
        return build(optional_principal(request, session))
    except ZooError as e:
        context = {"status": e.status, "code": e.code, "message": e.message}
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else {}
        response = render(request, "error.html", context, status_code=e.status)
        response.headers.update(headers)
        return response


@router.get("/")
def catalog_page(request: Request, session: DbSession) -> Response:
    """The catalog: search, facets with counts, sort, cursor pages."""

    def build(principal: Principal | None) -> Response:
        query = CatalogQuery.parse(request.query_params)
        page = service.catalog(session, principal, query)
        return render(
            request,
            "catalog.html",
            {
                "query": query,
                "page": page,
                "sorts": SORTS,
                "steps": SPARSITY_STEPS,
                "next_url": query.url(cursor=page.next_cursor) if page.next_cursor else None,
            },
        )

    return _page(request, session, build)


@router.get("/models/{namespace}/{name}")
def model_detail_page(
    namespace: str, name: str, request: Request, session: DbSession, storage: StorageDep
) -> Response:
    """One model: card, versions, files, recipes, sparsity chart, results, lineage."""

    def build(principal: Principal | None) -> Response:
        ref = request.query_params.get("version") or None
        page = model_page(session, storage, principal, namespace, name, ref)
        return render(request, "model.html", {"page": page, "base_url": base_url(request)})

    return _page(request, session, build)


@router.get("/compare")
def compare_page(request: Request, session: DbSession) -> Response:
    """The variants of one architecture: sparsity against throughput and accuracy."""

    def build(principal: Principal | None) -> Response:
        architecture = (request.query_params.get("architecture") or "").strip()[:100]
        dataset = (request.query_params.get("dataset") or "").strip()[:100] or None
        if not architecture:
            choices = service.architectures(session, principal)
            return render(request, "compare.html", {"comparison": None, "choices": choices})
        comparison = service.compare(session, principal, architecture, dataset)
        context = {
            "comparison": comparison,
            "dataset": dataset,
            "panels": charts.compare_panels(comparison.rows),
        }
        return render(request, "compare.html", context)

    return _page(request, session, build)


def install(app: FastAPI) -> None:
    """Serve the pages and their static files from ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
