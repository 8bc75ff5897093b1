"""Everything the model page shows, read through the API's services: the same visibility rule
(a private model is MODEL_NOT_FOUND to whoever may not see it) and only ready versions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.models.service import get_model, visible
from app.orm import BenchmarkResult, File, Model, Version
from app.storage import Storage
from app.versions import service as versions
from app.versions.present import file_url
from app.web.card import Card, card_for, read_text
from app.web.charts import LayerChart, layer_charts
from app.web.service import Metric, Row, best_accuracy, outputs_reproduced, rows_for, stub_of

MAX_CHILDREN = 100


@dataclass(frozen=True)
class VersionItem:
    """A ready version in the version list."""

    number: int
    aliases: list[str]
    committed_at: str
    message: str
    total_size: int
    sparsity: float | None
    selected: bool


@dataclass(frozen=True)
class FileItem:
    """A file of the shown version."""

    path: str
    file_type: str
    size: int
    sha256: str
    url: str


@dataclass(frozen=True)
class RecipeItem:
    """A recipe and its text (shown as code)."""

    name: str
    path: str
    text: str
    truncated: bool


@dataclass(frozen=True)
class Lineage:
    """The dense base and the models derived from it (pruned, quantized), visible ones only."""

    base: Row | None
    children: list[Row]


@dataclass(frozen=True)
class ModelPage:
    """The model page's data."""

    model: Model
    stub: str
    version: Version
    versions: list[VersionItem]
    files: list[FileItem]
    recipes: list[RecipeItem]
    card: Card | None
    charts: list[LayerChart]
    benchmarks: list[BenchmarkResult]
    evals: list[Metric]
    accuracy: Metric | None
    verified: bool
    lineage: Lineage


def _card_file(files: list[File]) -> File | None:
    return next((f for f in files if f.path == "model.md"), None)


def lineage(session: Session, principal: Principal | None, model: Model) -> Lineage:
    """The family of ``model``: its base (or itself, when it is the base) and the base's
    children. Each member passes ``visible`` so a private relative never shows."""
    root = model
    if model.base_model_id is not None:
        base = session.scalar(
            select(Model).join(Model.namespace).where(Model.id == model.base_model_id)
            .where(visible(principal))
        )  # fmt: skip
        root = base if base is not None else model
    children = session.scalars(
        select(Model)
        .join(Model.namespace)
        .where(Model.base_model_id == root.id, visible(principal))
        .where(Model.latest_version.is_not(None))
        .order_by(Model.sparsity.desc(), Model.name)
        .limit(MAX_CHILDREN)
    ).all()
    if root is model and not children:
        return Lineage(None, [])
    rows = rows_for(session, [root, *children])
    return Lineage(rows[0], rows[1:])


def model_page(
    session: Session,
    storage: Storage,
    principal: Principal | None,
    namespace: str,
    name: str,
    ref: str | None,
) -> ModelPage:
    """The model and one of its ready versions (``ref``: number or alias; default latest)."""
    model = get_model(session, principal, namespace, name)
    version = versions.get_version(session, model, ref)
    aliases = versions.aliases_of(session, model)
    version_list = [
        VersionItem(
            number=v.number or 0,
            aliases=aliases.get(v.id, []),
            committed_at=f"{v.committed_at:%Y-%m-%d %H:%M} UTC" if v.committed_at else "",
            message=v.message,
            total_size=v.total_size,
            sparsity=v.sparsity,
            selected=v.id == version.id,
        )
        for v in versions.ready_versions(session, model)
    ]
    number = version.number or 0
    files = [
        FileItem(f.path, f.file_type, f.size, f.sha256, file_url("", model, number, f.path))
        for f in version.files
    ]
    by_path = {f.path: f for f in version.files}
    recipes = []
    for r in version.recipes:
        f = by_path.get(r.path)
        text, cut = read_text(storage, r.sha256, f.size) if f else ("", False)
        recipes.append(RecipeItem(r.name, r.path, text, cut))
    card_file = _card_file(list(version.files))
    evals = [Metric(e.metric, e.value, e.dataset) for e in version.evals]
    return ModelPage(
        model=model,
        stub=stub_of(model),
        version=version,
        versions=version_list,
        files=files,
        recipes=recipes,
        card=card_for(storage, card_file.sha256, card_file.size) if card_file else None,
        charts=layer_charts(version.sparsity_profile),
        benchmarks=sorted(version.benchmarks, key=lambda b: -b.throughput),
        evals=evals,
        accuracy=best_accuracy(evals),
        verified=outputs_reproduced(version.meta),
        lineage=lineage(session, principal, model),
    )
