"""SparseZoo-compatible endpoints: ``POST /v2/graphql`` and the archives its listings point at.

Point the ``sparsezoo`` client (1.x) at the hub with ``SPARSEZOO_API_URL=<hub URL>`` and its
``Model("zoo:...")`` and ``search_models(...)`` work unchanged.
"""

from __future__ import annotations

import json

from cross_web import HTTPException as CrossWebHTTPException
from fastapi import APIRouter, Request, Response
from strawberry.fastapi import GraphQLRouter

from app.auth import DbSession, OptionalPrincipal
from app.compat import archives
from app.compat.schema import CompatContext, schema
from app.deps import BaseUrl, SettingsDep, StorageDep
from app.errors import FileNotFound, ModelNotFound, VersionNotFound, error_responses
from app.files.routes import blob_response, cache_control
from app.input_guards import find_nul
from app.models.service import get_model
from app.versions import service as versions

PREFIX = "/v2"


def get_context(
    session: DbSession, principal: OptionalPrincipal, storage: StorageDep, base: BaseUrl
) -> CompatContext:
    """The resolvers' context. The session is the request's (app.db commits or rolls back)."""
    return CompatContext(session, principal, storage, base)


class _GraphQLRouter(GraphQLRouter[CompatContext, None]):
    """strawberry's router, refusing undecodable bodies and NUL characters with a 400.

    strawberry turns only ``json.JSONDecodeError`` into a 400: a body that is not UTF-8 or nests
    past the parser's recursion limit raised out of the view as a 500, and a NUL in a query or
    its variables reached PostgreSQL (which cannot store it) and failed there.
    """

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except UnicodeDecodeError as e:
            raise CrossWebHTTPException(
                400, f"the request body is not UTF-8 ({e.reason} at byte {e.start}): send JSON"
            ) from e
        except RecursionError as e:
            raise CrossWebHTTPException(
                400, "the request body's JSON nests too deeply to parse"
            ) from e
        where = find_nul(decoded)
        if where is not None:
            raise CrossWebHTTPException(
                400, f"{where} holds a NUL character (\\u0000), which no field accepts; remove it"
            )
        return decoded


graphql = _GraphQLRouter(
    schema,
    context_getter=get_context,
    # Queries change nothing a GET could leak or cache wrongly, but SparseZoo only POSTs:
    # one way in keeps the surface small. GET serves the GraphiQL page for people.
    allow_queries_via_get=False,
    tags=["sparsezoo"],
)

router = APIRouter(prefix=PREFIX, tags=["sparsezoo"])
router.include_router(graphql, prefix="/graphql")

_ARCHIVE = "/models/{namespace}/{name}/versions/{number}/archives/{archive}"
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/gzip": {}}},
    206: {"description": "Partial content (Range)"},
    302: {"description": "Redirect to a short-lived presigned URL (S3 backend)"},
    **error_responses(ModelNotFound, VersionNotFound, FileNotFound),
}


@router.head(_ARCHIVE, operation_id="head_compat_archive", responses=_RESPONSES)
@router.get(_ARCHIVE, operation_id="download_compat_archive", responses=_RESPONSES)
def download_archive(
    namespace: str,
    name: str,
    number: int,
    archive: str,
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """A sample folder of a version as ``.tar.gz`` (built on first use, then stored)."""
    model = get_model(session, principal, namespace, name)
    version = versions.get_version(session, model, number)
    found = [a for a in archives.ensure_archives(session, storage, version) if a.name == archive]
    if not found:
        raise FileNotFound(
            f"version {version.number} of '{namespace}/{name}' has no archive '{archive[:300]}'",
            details={"archive": archive[:300]},
        )
    row = found[0]
    headers = {
        "ETag": f'"{row.sha256}"',
        "X-Zoo-Version": str(version.number),
        "X-Zoo-Sha256": row.sha256,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control(model, pinned=True),
    }
    return blob_response(
        request,
        storage,
        settings,
        sha256=row.sha256,
        size=row.size,
        name=archive,
        headers=headers,
        media_type="application/gzip",
    )
