"""Version endpoints: list, read, open an upload, aliases, benchmark and eval results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.auth import DbSession, OptionalPrincipal, RequiredPrincipal
from app.deps import BaseUrl, SettingsDep, StorageDep
from app.errors import (
    BadRequest,
    Forbidden,
    InvalidManifest,
    InvalidPath,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    VersionNotFound,
    error_responses,
)
from app.models.service import get_model
from app.responses import json_response
from app.versions import publish, service
from app.versions.present import version_out, version_summary
from app.versions.schemas import (
    ALIAS_PATTERN,
    AliasEventOut,
    AliasOut,
    AliasSet,
    BenchmarkIn,
    BenchmarkOut,
    EvalIn,
    EvalOut,
    UploadCreate,
    UploadOut,
    VersionOut,
    VersionSummary,
)

router = APIRouter(
    prefix="/models/{namespace}/{name}", tags=["versions"], responses=error_responses(ModelNotFound)
)
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN)]


@router.get("/versions", response_model=list[VersionSummary])
def list_versions(
    namespace: str, name: str, session: DbSession, principal: OptionalPrincipal
) -> list[VersionSummary]:
    """The model's ready versions, newest first."""
    model = get_model(session, principal, namespace, name)
    aliases = service.aliases_of(session, model)
    return [
        version_summary(v, aliases.get(v.id, [])) for v in service.ready_versions(session, model)
    ]


@router.get(
    "/versions/{ref}", response_model=VersionOut, responses=error_responses(VersionNotFound)
)
def get_version(
    namespace: str,
    name: str,
    ref: str,
    session: DbSession,
    principal: OptionalPrincipal,
    base: BaseUrl,
) -> Response:
    """A version by number or alias, with files, recipes, sparsity, benchmarks and evals."""
    model = get_model(session, principal, namespace, name)
    return json_response(version_out(session, service.get_version(session, model, ref), base))


@router.post(
    "/versions",
    status_code=201,
    response_model=UploadOut,
    responses=error_responses(
        Unauthorized, Forbidden, InvalidPath, InvalidManifest, PayloadTooLarge
    ),
)
def open_upload(
    namespace: str,
    name: str,
    body: UploadCreate,
    session: DbSession,
    principal: RequiredPrincipal,
    storage: StorageDep,
    settings: SettingsDep,
    base: BaseUrl,
) -> UploadOut:
    """Open a new version with its manifest. The answer says, per distinct blob, whether it is
    already stored or where to upload it; then POST /uploads/{upload_id}/commit."""
    model = get_model(session, principal, namespace, name)
    opened = publish.open_upload(
        session,
        storage,
        settings,
        principal,
        model,
        body.files,
        message=body.message,
        meta=body.meta,
        base_url=base,
    )
    return UploadOut(
        upload_id=opened.version.upload_id,
        status=opened.version.status.value,
        model=f"{namespace}/{name}",
        blobs=opened.blobs,
    )


@router.get("/aliases", response_model=list[AliasOut])
def list_aliases(
    namespace: str, name: str, session: DbSession, principal: OptionalPrincipal
) -> list[AliasOut]:
    """Current aliases of the model."""
    model = get_model(session, principal, namespace, name)
    return [
        AliasOut(name=a.name, version=a.version.number or 0, updated_at=a.updated_at)
        for a in sorted(model.aliases, key=lambda a: a.name)
    ]


@router.get("/aliases/history", response_model=list[AliasEventOut])
def alias_history(
    namespace: str, name: str, session: DbSession, principal: OptionalPrincipal
) -> list[AliasEventOut]:
    """Every alias move, oldest first (append-only)."""
    model = get_model(session, principal, namespace, name)
    numbers = {v.id: v.number for v in model.versions}
    return [
        AliasEventOut(
            name=e.name,
            version=numbers.get(e.version_id) if e.version_id else None,
            created_at=e.created_at,
        )
        for e in service.alias_history(session, model)
    ]


@router.put(
    "/aliases/{alias}",
    response_model=AliasOut,
    responses=error_responses(Unauthorized, Forbidden, BadRequest, VersionNotFound),
)
def set_alias(
    namespace: str,
    name: str,
    alias: AliasName,
    body: AliasSet,
    session: DbSession,
    principal: RequiredPrincipal,
) -> AliasOut:
    """Point an alias (e.g. ``stable``) at a version."""
    model = get_model(session, principal, namespace, name)
    row = service.set_alias(session, principal, model, alias, body.version)
    return AliasOut(name=row.name, version=body.version, updated_at=row.updated_at)


@router.delete(
    "/aliases/{alias}",
    status_code=204,
    responses=error_responses(Unauthorized, Forbidden, BadRequest, NotFound),
)
def delete_alias(
    namespace: str, name: str, alias: AliasName, session: DbSession, principal: RequiredPrincipal
) -> None:
    """Delete an alias (``latest`` cannot be deleted)."""
    model = get_model(session, principal, namespace, name)
    service.delete_alias(session, principal, model, alias)


@router.post(
    "/versions/{ref}/benchmarks",
    status_code=201,
    response_model=BenchmarkOut,
    responses=error_responses(Unauthorized, Forbidden, VersionNotFound),
)
def add_benchmark(
    namespace: str,
    name: str,
    ref: str,
    body: BenchmarkIn,
    session: DbSession,
    principal: RequiredPrincipal,
) -> BenchmarkOut:
    """Attach a benchmark result to a version."""
    model = get_model(session, principal, namespace, name)
    version = service.get_version(session, model, ref)
    return BenchmarkOut.model_validate(
        service.add_benchmark(session, principal, version, body.model_dump())
    )


@router.post(
    "/versions/{ref}/evals",
    status_code=201,
    response_model=EvalOut,
    responses=error_responses(Unauthorized, Forbidden, VersionNotFound),
)
def add_eval(
    namespace: str,
    name: str,
    ref: str,
    body: EvalIn,
    session: DbSession,
    principal: RequiredPrincipal,
) -> EvalOut:
    """Attach an evaluation result to a version."""
    model = get_model(session, principal, namespace, name)
    version = service.get_version(session, model, ref)
    return EvalOut.model_validate(service.add_eval(session, principal, version, body.model_dump()))
