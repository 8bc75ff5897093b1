"""Model rules and queries: visibility, creation from stubs, search with keyset pagination."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true, tuple_
from sqlalchemy.orm import Session, contains_eager

from app.auth import Principal, require_write
from app.errors import InvalidCursor, InvalidStub, ModelExists, ModelNotFound
from app.orm import Model, Namespace
from zoo.stubs import InvalidStubError, Stub, parse_stub


def visible(principal: Principal | None) -> ColumnElement[bool]:
    """SQL condition: the models this caller may see (private ones only in covered namespaces)."""
    if principal is None:
        return Model.visibility == "public"
    if principal.is_admin or principal.namespaces is None:
        return true()
    return or_(Model.visibility == "public", Namespace.name.in_(sorted(principal.namespaces)))


def shown_base(model: Model) -> Model | None:
    """The base model to name in ``model``'s body, or None when some caller who may see
    ``model`` may not see its base.

    A body is the same for everyone who sees the model, so the base is named only when that
    whole audience also sees it: the base is public, or both are private in one namespace (a
    token that sees one sees the other). A public model derived from a private one would
    otherwise give the private model's name away (the web's lineage, drawn per caller, still
    shows it to those who may see it).
    """
    base = model.base_model
    if base is None or base.visibility == "public":
        return base
    if model.visibility == "private" and base.namespace_id == model.namespace_id:
        return base
    return None


def _base_query(principal: Principal | None) -> Select[Model]:
    # contains_eager: the join that filters also loads the namespace (no second join).
    return (
        select(Model)
        .join(Model.namespace)
        .options(contains_eager(Model.namespace))
        .where(visible(principal))
    )


def get_model(session: Session, principal: Principal | None, namespace: str, name: str) -> Model:
    """The model, or MODEL_NOT_FOUND, also when it is private and the caller may not see it."""
    model = session.scalar(
        _base_query(principal).where(Namespace.name == namespace, Model.name == name)
    )
    if model is None:
        raise ModelNotFound(
            f"no model '{namespace}/{name}': search with 'zoo search' or GET /api/v1/models"
        )
    return model


def parse(text: str) -> Stub:
    """Parse a stub from a request; the error names the bad part."""
    try:
        return parse_stub(text, require_prefix=False)
    except InvalidStubError as e:
        raise InvalidStub(str(e), details={"stub": text[:600], "part": e.part}) from e


def short_name(stub: Stub) -> str:
    """The SparseZoo v2 short name of a path stub: ARCH[-SUB]-DATASET[-SCHEME]-TAG (no '-none')."""
    tag = stub.sparse_tag or ""
    tag = tag.removesuffix("-none")
    parts = [stub.architecture, stub.sub_architecture, stub.dataset, stub.training_scheme, tag]
    return "-".join(p for p in parts if p)


def _namespace(session: Session, name: str) -> Namespace:
    ns = session.scalar(select(Namespace).where(Namespace.name == name))
    if ns is None:
        ns = Namespace(name=name)
        session.add(ns)
        session.flush()
    return ns


@dataclass(frozen=True)
class NewModel:
    """What creating a model needs (the validated request body)."""

    namespace: str
    name: str | None
    stub: str | None
    display_name: str
    description: str
    license: str | None
    tags: Sequence[str]
    visibility: str
    base_model: str | None


def create_model(session: Session, principal: Principal, new: NewModel) -> Model:
    """Create a model in a namespace the token may write to."""
    require_write(principal, new.namespace)
    fields: dict[str, Any] = {}
    name = new.name
    if new.stub is not None:
        stub = parse(new.stub)
        if stub.form != "path":
            raise InvalidStub(
                f"stub '{new.stub}' is not a path stub: give DOMAIN/TASK/ARCH/FRAMEWORK/REPO/"
                "DATASET/SPARSE_TAG, or leave 'stub' out and give 'name'",
                details={"stub": new.stub},
            )
        if stub.version is not None or stub.recipe is not None:
            raise InvalidStub(f"stub '{new.stub}' names a version or recipe; a model stub cannot")
        fields = {
            k: getattr(stub, k)
            for k in (
                "domain",
                "task",
                "architecture",
                "sub_architecture",
                "framework",
                "repo",
                "dataset",
                "training_scheme",
                "sparse_tag",
            )
        }
        fields["path_stub"] = stub.path
        name = name or short_name(stub)
        clash = session.scalar(select(Model).where(Model.path_stub == stub.path))
        if clash is not None:
            raise ModelExists(
                f"a model with stub 'zoo:{stub.path}' already exists",
                details={"stub": f"zoo:{stub.path}"},
            )
    if not name:
        raise InvalidStub("give the model a 'name' or a path 'stub' to derive it from")
    parse(f"zoo:{new.namespace}/{name}")  # the name must be usable as a short stub
    ns = _namespace(session, new.namespace)
    if session.scalar(select(Model.id).where(Model.namespace_id == ns.id, Model.name == name)):
        raise ModelExists(
            f"model '{new.namespace}/{name}' already exists",
            details={"model": f"{new.namespace}/{name}"},
        )
    base_id = None
    if new.base_model:
        base_id = resolve_model(session, principal, parse(new.base_model)).id
    model = Model(
        namespace=ns,
        name=name,
        display_name=new.display_name or name,
        description=new.description,
        license=new.license,
        tags=list(new.tags),
        visibility=new.visibility,
        base_model_id=base_id,
        **fields,
    )
    session.add(model)
    session.flush()
    return model


def resolve_model(session: Session, principal: Principal | None, stub: Stub) -> Model:
    """The model a stub names (any form), or MODEL_NOT_FOUND with the closest stubs suggested."""
    query = _base_query(principal)
    if stub.form == "path":
        found = session.scalars(query.where(Model.path_stub == stub.path)).all()
    elif stub.form == "namespaced":
        found = session.scalars(
            query.where(Namespace.name == stub.namespace, Model.name == stub.repo_name)
        ).all()
    else:
        found = session.scalars(query.where(Model.name == stub.repo_name)).all()
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(f"zoo:{m.namespace.name}/{m.name}" for m in found)
        raise ModelNotFound(
            f"short stub 'zoo:{stub.repo_name}' is in several namespaces ({names}): "
            "use the namespaced form zoo:NAMESPACE/NAME",
            details={"candidates": [f"zoo:{m.namespace.name}/{m.name}" for m in found]},
        )
    suggestions = closest_stubs(session, principal, stub)
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise ModelNotFound(
        f"no model matches stub '{stub.without_version()}'{hint}",
        details={"stub": str(stub), "suggestions": suggestions},
    )


def closest_stubs(
    session: Session, principal: Principal | None, stub: Stub, n: int = 3
) -> list[str]:
    """Up to ``n`` visible stubs that look like ``stub`` (for 'did you mean' hints).

    difflib costs ~50 us per candidate, so the pool is narrowed in SQL first: models sharing
    the stub's leading word (its architecture, usually), topped up with the most downloaded.
    """
    import difflib

    if stub.form == "path":
        target = f"zoo:{stub.path}"
        lead = stub.architecture or ""
    else:
        target = (
            f"zoo:{stub.namespace}/{stub.repo_name}"
            if stub.form == "namespaced"
            else f"zoo:{stub.repo_name}"
        )
        lead = (stub.repo_name or "").split("-")[0]
    columns = select(Namespace.name, Model.name, Model.path_stub).join(Model.namespace)
    columns = columns.where(visible(principal))
    rows = (
        list(
            session.execute(
                columns.where(Model.name.startswith(lead, autoescape=True)).limit(_SUGGESTION_POOL)
            ).all()
        )
        if lead
        else []
    )
    rows += session.execute(columns.order_by(Model.downloads.desc()).limit(_SUGGESTION_POOL)).all()
    if stub.form == "path":
        pool = {f"zoo:{p}" for _, _, p in rows if p}
    elif stub.form == "namespaced":
        pool = {f"zoo:{ns}/{nm}" for ns, nm, _ in rows}
    else:
        pool = {f"zoo:{nm}" for _, nm, _ in rows}
    return difflib.get_close_matches(target, sorted(pool), n=n, cutoff=0.6)


_SUGGESTION_POOL = 150


# --- search -------------------------------------------------------------------------------

_SORT_COLUMNS: dict[str, Any] = {
    "name": Model.name,
    "created": Model.created_at,
    "downloads": Model.downloads,
    # Models without a measured sparsity sort below every measured one.
    "sparsity": func.coalesce(Model.sparsity, -1.0),
}


@dataclass(frozen=True)
class SearchFilters:
    """The filters of GET /models (all optional, combined with AND)."""

    q: str | None = None
    domain: str | None = None
    task: str | None = None
    architecture: str | None = None
    framework: str | None = None
    repo: str | None = None
    dataset: str | None = None
    sparse_tag: str | None = None
    namespace: str | None = None
    min_sparsity: float | None = None
    max_sparsity: float | None = None
    quantized: bool | None = None


_MAX_INT = 2**63 - 1


def _encode_cursor(sort: str, value: Any, model_id: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "i": model_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("s") != sort:
            raise ValueError("cursor made for another sort")
        # Bounded like the database's 64-bit integers: a forged huge number must not reach it.
        if type(data.get("i")) is not int or not 0 <= data["i"] <= _MAX_INT:
            raise ValueError("bad id")
        value: Any = data.get("v")
        key = sort.lstrip("-")
        if key == "created":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("cursor time without a zone")
        elif key == "name" and not isinstance(value, str):
            raise ValueError("bad name")
        elif key in ("downloads", "sparsity") and (
            type(value) not in (int, float) or not math.isfinite(value) or abs(value) > _MAX_INT
        ):
            raise ValueError("bad number")
        return value, data["i"]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise InvalidCursor(
            f"cursor {cursor[:40]!r} is not valid for sort '{sort}': start again without 'cursor'"
        ) from e


def search_models(
    session: Session,
    principal: Principal | None,
    filters: SearchFilters,
    *,
    sort: str = "name",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Model], str | None]:
    """One page of visible models with at least one ready version, and the next page's cursor."""
    query = _base_query(principal).where(Model.latest_version.is_not(None))
    for field in ("domain", "task", "architecture", "framework", "repo", "dataset", "sparse_tag"):
        value = getattr(filters, field)
        if value is not None:
            query = query.where(getattr(Model, field) == value)
    if filters.namespace is not None:
        query = query.where(Namespace.name == filters.namespace)
    if filters.min_sparsity is not None:
        query = query.where(Model.sparsity >= filters.min_sparsity)
    if filters.max_sparsity is not None:
        query = query.where(Model.sparsity <= filters.max_sparsity)
    if filters.quantized is not None:
        query = query.where(Model.quantized.is_(filters.quantized))
    if filters.q:
        q = filters.q
        query = query.where(
            or_(
                Model.name.icontains(q, autoescape=True),
                Model.display_name.icontains(q, autoescape=True),
                Model.description.icontains(q, autoescape=True),
                Model.path_stub.icontains(q, autoescape=True),
            )
        )
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    column = _SORT_COLUMNS[key]
    if cursor is not None:
        value, last_id = _decode_cursor(cursor, sort)
        pair = tuple_(column, Model.id)
        query = query.where(
            pair < tuple_(value, last_id) if descending else pair > tuple_(value, last_id)
        )
    order = (column.desc(), Model.id.desc()) if descending else (column.asc(), Model.id.asc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        last_value = {
            "name": last.name,
            "created": last.created_at,
            "downloads": last.downloads,
            "sparsity": last.sparsity if last.sparsity is not None else -1.0,
        }[key]
        next_cursor = _encode_cursor(sort, last_value, last.id)
    return rows, next_cursor
