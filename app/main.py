"""The FastAPI application: ``create_app(settings)`` wires routers, storage, database, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response

from app import health
from app.api_docs import api_app
from app.compat.routes import router as compat_router
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.errors import (
    PayloadTooLarge,
    declare_implicit_errors,
    install_error_handlers,
    render_error,
)
from app.files.routes import router as files_router
from app.input_guards import install_input_guards
from app.log_redaction import install as install_log_redaction
from app.models.routes import router as models_router
from app.storage import StorageError
from app.storage_factory import make_storage
from app.tokens.routes import router as tokens_router
from app.uploads.routes import router as uploads_router
from app.versions.routes import router as versions_router
from app.web.routes import install as install_web

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the hub. Settings are read once here (from ``ZOO_*``) unless given."""
    settings = settings or Settings()
    install_log_redaction()
    engine = make_engine(settings)
    storage = make_storage(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            storage.ensure_ready()
        except StorageError as e:
            # Serve anyway: /readyz answers 503 naming the store until it works (a store that is
            # down at boot must not crash-loop the API; the probe is where that is reported).
            log.error("storage is not ready: %s", e)
        yield
        engine.dispose()

    app = api_app(
        title="OpenZoo",
        version="0.1.0",
        summary="A self-hostable hub for optimized (pruned and quantized) models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.storage = storage
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_json_bodies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Blob uploads stream with their own per-file limit; every other body is small JSON.
        if "/blobs/" not in request.url.path:
            length = request.headers.get("content-length")
            if (
                length is not None
                and length.isdigit()
                and int(length) > settings.max_json_body_bytes
            ):
                return render_error(
                    PayloadTooLarge.status,
                    PayloadTooLarge.code,
                    f"request body of {length} bytes is over the "
                    f"{settings.max_json_body_bytes}-byte limit",
                )
        return await call_next(request)

    api = APIRouter(prefix=API_PREFIX)
    for router in (models_router, versions_router, files_router, uploads_router, tokens_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(compat_router)
    install_web(app)
    install_input_guards(app, max_body_bytes=settings.max_json_body_bytes)
    declare_implicit_errors(app)
    return app
