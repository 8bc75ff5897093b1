"""Turning versions into API bodies (file URLs, aliases, results)."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.orm import Session

from app.auth import Principal
from app.errors import NotFound
from app.models.schemas import ModelOut
from app.models.service import resolve_model
from app.orm import Model, Version
from app.versions import service
from app.versions.schemas import (
    BenchmarkOut,
    EvalOut,
    FileOut,
    RecipeOut,
    ResolveOut,
    VersionOut,
    VersionSummary,
)
from zoo.stubs import Stub


def file_url(base: str, model: Model, number: int, path: str) -> str:
    """Absolute download URL of one file of a version."""
    return (
        f"{base}/api/v1/models/{model.namespace.name}/{model.name}/versions/{number}"
        f"/files/{quote(path)}"
    )


def version_summary(version: Version, aliases: list[str]) -> VersionSummary:
    assert version.number is not None
    return VersionSummary(
        number=version.number,
        created_at=version.created_at,
        committed_at=version.committed_at,
        message=version.message,
        total_size=version.total_size,
        file_count=len(version.files),
        sparsity=version.sparsity,
        quantized=version.quantized,
        aliases=aliases,
        downloads=version.downloads,
    )


def version_out(session: Session, version: Version, base: str) -> VersionOut:
    """Everything about a ready version."""
    model = version.model
    aliases = service.aliases_of(session, model).get(version.id, [])
    summary = version_summary(version, aliases)
    assert version.number is not None
    return VersionOut(
        **summary.model_dump(),
        model=ModelOut.of(model),
        files=[
            FileOut(
                path=f.path,
                file_type=f.file_type,
                size=f.size,
                sha256=f.sha256,
                url=file_url(base, model, version.number, f.path),
            )
            for f in version.files
        ],
        recipes=[RecipeOut.model_validate(r) for r in version.recipes],
        sparsity_profile=version.sparsity_profile,
        meta=version.meta,
        benchmarks=[BenchmarkOut.model_validate(b) for b in version.benchmarks],
        evals=[EvalOut.model_validate(e) for e in version.evals],
    )


def resolve_out(session: Session, principal: Principal | None, stub: Stub, base: str) -> ResolveOut:
    """Resolve a parsed stub to its exact version (and recipe)."""
    model = resolve_model(session, principal, stub)
    version = service.get_version(session, model, stub.version)
    recipe = None
    if stub.recipe is not None:
        match = [r for r in version.recipes if r.name == stub.recipe]
        if not match:
            names = [r.name for r in version.recipes]
            raise NotFound(
                f"version {version.number} of '{model.namespace.name}/{model.name}' has no recipe "
                f"'{stub.recipe}'" + (f": it has {', '.join(names)}" if names else ": it has none"),
                details={"recipe": stub.recipe, "available": names},
            )
        recipe = RecipeOut.model_validate(match[0])
    exact = f"zoo:{model.namespace.name}/{model.name}@{version.number}"
    return ResolveOut(stub=exact, version=version_out(session, version, base), recipe=recipe)
