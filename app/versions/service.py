"""Reading versions, aliases (with history), benchmark and eval results."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from app.auth import Principal, require_write
from app.errors import BadRequest, NotFound, ValidationFailed, VersionNotFound
from app.orm import (
    Alias,
    AliasEvent,
    BenchmarkResult,
    EvalResult,
    Model,
    Version,
    VersionStatus,
)
from zoo.stubs import MAX_VERSION

LATEST = "latest"
RESERVED_ALIASES = frozenset({"history"})


def ready_versions(session: Session, model: Model) -> Sequence[Version]:
    """The model's ready versions, newest first."""
    return session.scalars(
        select(Version)
        .where(Version.model_id == model.id, Version.status == VersionStatus.READY)
        .order_by(Version.number.desc())
    ).all()


def get_version(session: Session, model: Model, ref: str | int | None) -> Version:
    """A ready version by number or alias (None means ``latest``); VERSION_NOT_FOUND otherwise."""
    if ref is None:
        ref = LATEST
    # ASCII digits only: str.isdigit() is also true for '²', which int() refuses; and the
    # length is checked before int() (which refuses more than 4300 digits).
    shown = ref[:20] if isinstance(ref, str) else "of that number"
    if isinstance(ref, str) and ref.isascii() and ref.isdigit():
        ref = int(ref) if len(ref) <= len(str(MAX_VERSION)) else 0
    if isinstance(ref, int) and not 1 <= ref <= MAX_VERSION:
        # Numbers are 32-bit columns: a larger one must not reach the database (500 there).
        raise VersionNotFound(
            f"model '{model.namespace.name}/{model.name}' has no version {shown}: version "
            f"numbers go from 1 to {MAX_VERSION}"
        )
    # One query for the version and its files (what every caller reads); collections that
    # are often empty load in one query each instead of lazily one by one.
    query = select(Version).options(
        joinedload(Version.files),
        selectinload(Version.recipes),
        selectinload(Version.benchmarks),
        selectinload(Version.evals),
    )
    if isinstance(ref, int):
        query = query.where(Version.model_id == model.id, Version.number == ref)
    else:
        query = query.join(Alias, Alias.version_id == Version.id).where(
            Alias.model_id == model.id, Alias.name == ref
        )
    version = session.scalars(query.where(Version.status == VersionStatus.READY)).unique().first()
    if version is None or version.status != VersionStatus.READY:
        have = [v.number for v in ready_versions(session, model)[:10]]
        hint = f"it has versions {have}" if have else "it has no published version yet"
        raise VersionNotFound(
            f"model '{model.namespace.name}/{model.name}' has no version '{ref}': {hint}",
            details={"version": str(ref), "available": have},
        )
    return version


def aliases_of(session: Session, model: Model) -> dict[int, list[str]]:
    """version id -> alias names, for one model."""
    out: dict[int, list[str]] = {}
    for alias in session.scalars(
        select(Alias).where(Alias.model_id == model.id).order_by(Alias.name)
    ):
        out.setdefault(alias.version_id, []).append(alias.name)
    return out


def move_alias(
    session: Session, model: Model, name: str, version: Version, token_id: int | None
) -> Alias:
    """Point alias ``name`` at ``version`` and record the move in the history."""
    alias = session.scalar(select(Alias).where(Alias.model_id == model.id, Alias.name == name))
    if alias is None:
        alias = Alias(model_id=model.id, name=name, version_id=version.id)
        session.add(alias)
    else:
        alias.version_id = version.id
        alias.version = version
    session.add(AliasEvent(model_id=model.id, name=name, version_id=version.id, token_id=token_id))
    session.flush()
    return alias


def set_alias(
    session: Session, principal: Principal, model: Model, name: str, number: int
) -> Alias:
    """Point a user alias at a ready version (``latest`` is moved by publishing only)."""
    require_write(principal, model.namespace.name)
    if name == LATEST:
        raise BadRequest(
            "'latest' moves by itself when a version is published; choose another name"
        )
    if name in RESERVED_ALIASES:
        raise BadRequest(f"'{name}' is reserved (GET .../aliases/{name} is the alias history)")
    return move_alias(session, model, name, get_version(session, model, number), principal.token_id)


def delete_alias(session: Session, principal: Principal, model: Model, name: str) -> None:
    """Remove a user alias (the history keeps a deletion record)."""
    require_write(principal, model.namespace.name)
    if name == LATEST:
        raise BadRequest("'latest' cannot be deleted")
    alias = session.scalar(select(Alias).where(Alias.model_id == model.id, Alias.name == name))
    if alias is None:
        raise NotFound(f"model '{model.namespace.name}/{model.name}' has no alias '{name}'")
    session.delete(alias)
    session.add(
        AliasEvent(model_id=model.id, name=name, version_id=None, token_id=principal.token_id)
    )
    session.flush()


def alias_history(session: Session, model: Model) -> Sequence[AliasEvent]:
    """Every alias move of a model, oldest first."""
    return session.scalars(
        select(AliasEvent).where(AliasEvent.model_id == model.id).order_by(AliasEvent.id)
    ).all()


def add_benchmark(
    session: Session, principal: Principal, version: Version, fields: dict[str, object]
) -> BenchmarkResult:
    """Attach a benchmark result to a ready version."""
    require_write(principal, version.model.namespace.name)
    row = BenchmarkResult(version_id=version.id, **fields)
    session.add(row)
    session.flush()
    return row


def add_eval(
    session: Session, principal: Principal, version: Version, fields: dict[str, object]
) -> EvalResult:
    """Attach an eval result to a ready version."""
    require_write(principal, version.model.namespace.name)
    value = fields.get("value")
    if isinstance(value, float) and value != value:  # NaN is not a result
        raise ValidationFailed("eval value must be a number, not NaN")
    row = EvalResult(version_id=version.id, **fields)
    session.add(row)
    session.flush()
    return row


def primary_file(version: Version) -> str | None:
    """The file whose fetch counts as a download of the version: model.onnx, else the first .onnx,
    else the first file. Counting one file makes "downloads" mean versions fetched, not files."""
    paths = [f.path for f in version.files]
    if "model.onnx" in paths:
        return "model.onnx"
    onnx = [p for p in paths if p.endswith(".onnx")]
    candidates = onnx or paths
    return candidates[0] if candidates else None


def count_download(session: Session, version: Version) -> None:
    """Atomically add one download to the version and its model."""
    session.execute(
        update(Version).where(Version.id == version.id).values(downloads=Version.downloads + 1)
    )
    session.execute(
        update(Model).where(Model.id == version.model_id).values(downloads=Model.downloads + 1)
    )
