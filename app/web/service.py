"""What the pages show, gathered with the API's own services (``search_models``, ``get_model``,
``get_version``, ``visible``) plus a few batched look-ups: one query per kind of data for a whole
page of models, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.models.service import SearchFilters, search_models, visible
from app.orm import BenchmarkResult, EvalResult, Model, Version
from app.web.facets import Facets, facet_counts
from app.web.query import CatalogQuery

# Metrics shown as "accuracy" in listings, best first; a fraction in [0, 1] reads as percent.
ACCURACY_METRICS = ("top1_accuracy", "accuracy", "f1", "exact_match", "map", "map@0.5", "top5")
_PERCENT_LIKE = ("accuracy", "f1", "recall", "precision", "exact_match", "map", "top1", "top5")
COMPARE_LIMIT = 200


@dataclass(frozen=True)
class Metric:
    """An eval result as shown: ``76.12%`` for accuracy-like fractions."""

    metric: str
    value: float
    dataset: str

    @property
    def shown(self) -> str:
        key = self.metric.lower()
        if any(m in key for m in _PERCENT_LIKE) and 0.0 <= self.value <= 1.0:
            return f"{self.value * 100:.2f}%"
        return f"{self.value:.4g}"

    @property
    def fraction(self) -> float | None:
        """The value in [0, 1] when it is accuracy-like (for charts), else None."""
        key = self.metric.lower()
        if any(m in key for m in _PERCENT_LIKE):
            return self.value if self.value <= 1.0 else self.value / 100
        return None


@dataclass(frozen=True)
class Row:
    """One model in a listing, with its latest version's numbers."""

    namespace: str
    name: str
    display_name: str
    stub: str  # the path stub when there is one (SparseZoo's), else the namespaced one
    architecture: str | None
    task: str | None
    dataset: str | None
    sparse_tag: str | None
    sparsity: float | None
    quantized: bool
    downloads: int
    created_at: datetime
    latest_version: int | None
    size: int | None
    throughput: float | None
    accuracy: Metric | None
    verified: bool

    @property
    def url(self) -> str:
        return f"/models/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class CatalogPage:
    """One page of the catalog and its filter panel."""

    rows: list[Row]
    next_cursor: str | None
    facets: Facets


def stub_of(model: Model) -> str:
    """The stub a user copies: the path stub (unique, SparseZoo's form) or the namespaced one."""
    if model.path_stub:
        return f"zoo:{model.path_stub}"
    return f"zoo:{model.namespace.name}/{model.name}"


def outputs_reproduced(meta: dict[str, Any] | None) -> bool:
    """Whether the publisher's metadata says the sample outputs were reproduced."""
    return bool(meta and meta.get("outputs_reproduced") is True)


def best_accuracy(evals: Sequence[Metric]) -> Metric | None:
    """The headline eval result: the first metric of ACCURACY_METRICS present, else None."""
    by_metric = {e.metric.lower(): e for e in evals}
    for name in ACCURACY_METRICS:
        if name in by_metric:
            return by_metric[name]
    return None


def rows_for(session: Session, models: Sequence[Model]) -> list[Row]:
    """Listing rows for ``models``: latest versions, best throughput and evals in 3 queries."""
    ids = [m.id for m in models]
    latest = {
        model_id: (version_id, size, meta)
        for version_id, model_id, size, meta in session.execute(
            select(Version.id, Version.model_id, Version.total_size, Version.meta)
            .join(Model, Model.id == Version.model_id)
            .where(Version.model_id.in_(ids), Version.number == Model.latest_version)
        )
    }
    version_ids = [v for v, _, _ in latest.values()]
    throughput: dict[int, float] = dict(
        session.execute(
            select(BenchmarkResult.version_id, func.max(BenchmarkResult.throughput))
            .where(BenchmarkResult.version_id.in_(version_ids))
            .group_by(BenchmarkResult.version_id)
        ).all()
    )
    evals: dict[int, list[Metric]] = defaultdict(list)
    for version_id, metric, value, dataset in session.execute(
        select(EvalResult.version_id, EvalResult.metric, EvalResult.value, EvalResult.dataset)
        .where(EvalResult.version_id.in_(version_ids))
        .order_by(EvalResult.id)
    ):
        evals[version_id].append(Metric(metric, value, dataset))
    rows = []
    for m in models:
        version_id, size, meta = latest.get(m.id, (None, None, None))
        rows.append(
            Row(
                namespace=m.namespace.name,
                name=m.name,
                display_name=m.display_name or m.name,
                stub=stub_of(m),
                architecture=m.architecture,
                task=m.task,
                dataset=m.dataset,
                sparse_tag=m.sparse_tag,
                sparsity=m.sparsity,
                quantized=m.quantized,
                downloads=m.downloads,
                created_at=m.created_at,
                latest_version=m.latest_version,
                size=size,
                throughput=throughput.get(version_id) if version_id is not None else None,
                accuracy=best_accuracy(evals.get(version_id, [])) if version_id else None,
                verified=outputs_reproduced(meta),
            )
        )
    return rows


def catalog(session: Session, principal: Principal | None, query: CatalogQuery) -> CatalogPage:
    """A page of the catalog: the API's search, the rows' numbers and the facet counts."""
    models, next_cursor = search_models(
        session,
        principal,
        query.filters(),
        sort=query.sort,
        limit=query.limit,
        cursor=query.cursor,
    )
    return CatalogPage(
        rows_for(session, models), next_cursor, facet_counts(session, principal, query)
    )


@dataclass(frozen=True)
class Comparison:
    """The variants of one architecture side by side."""

    architecture: str
    rows: list[Row]
    truncated: bool  # more variants exist than COMPARE_LIMIT


def architectures(session: Session, principal: Principal | None) -> list[tuple[str, int]]:
    """Visible architectures with published models, and how many each has (most first)."""
    stmt = (
        select(Model.architecture, func.count())
        .join(Model.namespace)
        .where(visible(principal), Model.latest_version.is_not(None))
        .where(Model.architecture.is_not(None))
        .group_by(Model.architecture)
    )
    pairs = [(str(a), int(n)) for a, n in session.execute(stmt)]
    return sorted(pairs, key=lambda an: (-an[1], an[0]))


def compare(
    session: Session, principal: Principal | None, architecture: str, dataset: str | None = None
) -> Comparison:
    """Every visible variant of ``architecture`` (optionally on one dataset), densest first."""
    filters = SearchFilters(architecture=architecture, dataset=dataset)
    models, more = search_models(session, principal, filters, sort="sparsity", limit=COMPARE_LIMIT)
    return Comparison(architecture, rows_for(session, models), more is not None)
