"""Model endpoints: search, create, read, resolve a stub."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from app.auth import DbSession, OptionalPrincipal, RequiredPrincipal
from app.deps import BaseUrl
from app.errors import (
    Forbidden,
    InvalidCursor,
    InvalidStub,
    ModelExists,
    ModelNotFound,
    Unauthorized,
    VersionNotFound,
    error_responses,
)
from app.models import service
from app.models.schemas import ModelCreate, ModelOut, ModelPage, SortKey
from app.responses import json_response
from app.versions.present import resolve_out
from app.versions.schemas import ResolveOut

router = APIRouter(tags=["models"])


@router.get(
    "/models", response_model=ModelPage, responses=error_responses(InvalidCursor, Unauthorized)
)
def search_models(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in name, stub or description")
    ] = None,
    domain: Annotated[str | None, Query(max_length=100)] = None,
    task: Annotated[str | None, Query(max_length=100)] = None,
    architecture: Annotated[str | None, Query(max_length=100)] = None,
    framework: Annotated[str | None, Query(max_length=100)] = None,
    repo: Annotated[str | None, Query(max_length=100)] = None,
    dataset: Annotated[str | None, Query(max_length=100)] = None,
    sparse_tag: Annotated[str | None, Query(max_length=100)] = None,
    namespace: Annotated[str | None, Query(max_length=64)] = None,
    min_sparsity: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_sparsity: Annotated[float | None, Query(ge=0, le=1)] = None,
    quantized: bool | None = None,
    sort: SortKey = "name",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Search models that have a published version. Follow ``next_cursor`` (or the
    ``Link: rel="next"`` header) for the next page."""
    filters = service.SearchFilters(
        q=q,
        domain=domain,
        task=task,
        architecture=architecture,
        framework=framework,
        repo=repo,
        dataset=dataset,
        sparse_tag=sparse_tag,
        namespace=namespace,
        min_sparsity=min_sparsity,
        max_sparsity=max_sparsity,
        quantized=quantized,
    )
    rows, next_cursor = service.search_models(
        session, principal, filters, sort=sort, limit=limit, cursor=cursor
    )
    page = json_response(ModelPage(items=[ModelOut.of(m) for m in rows], next_cursor=next_cursor))
    if next_cursor:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        url = request.url.replace(query=urlencode([*params, ("cursor", next_cursor)]))
        page.headers["Link"] = f'<{url}>; rel="next"'
    return page


@router.post(
    "/models",
    status_code=201,
    response_model=ModelOut,
    responses=error_responses(Unauthorized, Forbidden, InvalidStub, ModelExists),
)
def create_model(body: ModelCreate, session: DbSession, principal: RequiredPrincipal) -> ModelOut:
    """Create a model (then publish versions into it)."""
    model = service.create_model(session, principal, service.NewModel(**body.model_dump()))
    return ModelOut.of(model)


@router.get(
    "/models/{namespace}/{name}", response_model=ModelOut, responses=error_responses(ModelNotFound)
)
def get_model(
    namespace: str,
    name: str,
    session: DbSession,
    principal: OptionalPrincipal,
) -> ModelOut:
    """One model (private ones answer 404 to callers who may not see them)."""
    return ModelOut.of(service.get_model(session, principal, namespace, name))


@router.get(
    "/resolve",
    response_model=ResolveOut,
    responses=error_responses(InvalidStub, ModelNotFound, VersionNotFound),
)
def resolve(
    stub: Annotated[
        str,
        Query(min_length=1, max_length=600, examples=["zoo:resnet_v1-50-imagenet-pruned90@latest"]),
    ],
    session: DbSession,
    principal: OptionalPrincipal,
    base: BaseUrl,
) -> Response:
    """Resolve any stub form (path, short, namespaced; ``@version``; ``?recipe=``) to the exact
    version and its files."""
    return json_response(resolve_out(session, principal, service.parse(stub), base))
