"""The API's documentation page, ``/docs`` (Swagger UI), served by the hub itself.

FastAPI's built-in pages load Swagger UI and ReDoc from a CDN, so on a hub without internet
access (self-hosted behind a firewall, or air-gapped) they stayed blank. fastapi-offline ships
Swagger UI in its package (version 5, which renders FastAPI's OpenAPI 3.1; the
``swagger-ui-bundle`` package's Swagger UI 4.15 does not) and serves it from the app.

There is no ``/redoc``: even from the package, ReDoc fetches its logo from cdn.redoc.ly on
every view (a request to another site that a private hub should not make).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

DOCS_ASSETS = "/static-docs"  # where Swagger UI's script, style and icon are served


def api_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose /docs needs nothing but the hub.

    Swagger UI's validator badge is turned off: by default it sends the spec's URL to
    validator.swagger.io, a request to another site that an offline hub cannot make and a
    private one should not.
    """
    return FastAPIOffline(
        static_url=DOCS_ASSETS,
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},
        **kwargs,
    )
