"""The rules behind the SparseZoo-compatible API: which models a query matches, and how a
version's files are presented so that the ``sparsezoo`` client rebuilds its model folder.

The client (``sparsezoo.model.utils.restructure_request_json``) expects a flat list of files,
each with a display name and a SparseZoo file type:

- ``model.onnx`` (type ``onnx``): the client copies it into ``deployment/`` itself, so a
  ``deployment/model.onnx`` of ours is not listed again;
- ``deployment``, ``training``: loose files of those folders; the client downloads
  ``deployment/`` as ``deployment.tar.gz`` (type ``deployment``) when one is listed;
- ``recipe``: files whose display name starts with ``recipe`` (how the client finds them);
- ``inputs``, ``outputs``, ``labels``, ``originals``: one ``sample-*.tar.gz`` archive each
  (archives are built once per version, see ``app.compat.archives``);
- ``card`` (``model.md``), ``benchmark`` (``benchmarks.yaml``), ``metrics``; ``eval.yaml`` and
  ``analysis.yaml`` as ``benchmarking``, a type the client keeps (it finds them by name).

Files the client would drop anyway (logs, anything unknown) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import Select, and_, case, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from app.auth import Principal
from app.compat import archives
from app.errors import InvalidStub
from app.models.service import parse, visible
from app.orm import Model, Namespace, Version, VersionStatus
from app.storage import Storage
from app.versions.present import file_url

# search_models() asks for every match at once (it sends no limit): the default is generous.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
_TOP_LEVEL_TYPES = {
    "model.md": "card",
    "benchmarks.yaml": "benchmark",
    "benchmark.yaml": "benchmark",
    "metrics.yaml": "metrics",
    "eval.yaml": "benchmarking",
    "analysis.yaml": "benchmarking",
}


@dataclass(frozen=True)
class ModelFilters:
    """The ``models(...)`` arguments, already mapped to our columns (None: no filter)."""

    domain: str | None = None
    task: str | None = None
    architecture: str | None = None
    sub_architecture: str | None = None
    framework: str | None = None
    repo: str | None = None
    dataset: str | None = None
    training_scheme: str | None = None
    sparse_tag: str | None = None
    repo_name: str | None = None
    repo_namespace: str | None = None
    display_name: str | None = None
    stub: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class FileEntry:
    """One file as the SparseZoo client sees it."""

    display_name: str
    file_type: str
    size: int
    sha256: str
    url: str
    path: str  # where it comes from: a path in the version, or the archive's name


@dataclass(frozen=True)
class Found:
    """A matching model and its latest ready version (the one a SparseZoo stub means)."""

    model: Model
    version: Version


_COLUMNS = (
    "domain",
    "task",
    "architecture",
    "sub_architecture",
    "framework",
    "repo",
    "dataset",
    "training_scheme",
    "sparse_tag",
    "display_name",
)


def find_models(
    session: Session,
    principal: Principal | None,
    filters: ModelFilters,
    *,
    limit: int,
    offset: int,
    with_files: bool,
    with_results: bool,
) -> list[Found]:
    """Visible models with a ready version that match every given filter.

    A SparseZoo v1 stub cannot say "no sub-architecture": ``resnet_v1`` is sent without one,
    and would match ``resnet_v1-50`` too. Models without the fields the query left out come
    first, so the client (which takes the first answer) gets the exact stub.
    """
    query = (
        select(Model, Version)
        .join(Model.namespace)
        .options(contains_eager(Model.namespace))
        .join(
            Version,
            and_(
                Version.model_id == Model.id,
                Version.number == Model.latest_version,
                Version.status == VersionStatus.READY,
            ),
        )
        .where(visible(principal))
    )
    for column in _COLUMNS:
        value = getattr(filters, column)
        if value is not None:
            query = query.where(getattr(Model, column) == value)
    if filters.repo_name is not None:
        query = query.where(Model.name == filters.repo_name)
    if filters.repo_namespace is not None:
        query = query.where(Namespace.name == filters.repo_namespace)
    if filters.model_id is not None:
        if not filters.model_id.isdigit() or len(filters.model_id) > 18:
            return []
        query = query.where(Model.id == int(filters.model_id))
    if filters.stub is not None:
        query = _where_stub(query, filters.stub)
    loads = []
    if with_files:
        loads.append(selectinload(Version.files))
    if with_results:
        loads += [selectinload(Version.benchmarks), selectinload(Version.evals)]
    order = []
    if filters.sub_architecture is None:
        order.append(case((Model.sub_architecture.is_(None), 0), else_=1))
    if filters.training_scheme is None:
        order.append(case((Model.training_scheme.is_(None), 0), else_=1))
    rows = session.execute(
        query.options(*loads)
        .order_by(*order, Namespace.name, Model.name, Model.id)
        .limit(max(1, min(limit, MAX_LIMIT)))
        .offset(max(0, offset))
    ).all()
    return [Found(model, version) for model, version in rows]


_Query = Select[Model, Version]


def _where_stub(query: _Query, text: str) -> _Query:
    stub = parse(text)
    if stub.version is not None or stub.recipe is not None:
        raise InvalidStub(
            f"stub '{text[:300]}' names a version or recipe; the models query takes the model's "
            "stub only (it always answers the latest version)"
        )
    if stub.form == "path":
        return query.where(Model.path_stub == stub.path)
    if stub.form == "namespaced":
        return query.where(Namespace.name == stub.namespace, Model.name == stub.repo_name)
    return query.where(Model.name == stub.repo_name)


def stub_of(model: Model) -> str:
    """The stub a SparseZoo client can use: the path stub, else the short one."""
    return f"zoo:{model.path_stub}" if model.path_stub else f"zoo:{model.name}"


def list_files(session: Session, storage: Storage, version: Version, base: str) -> list[FileEntry]:
    """The version's files the way the SparseZoo client expects them (see the module doc)."""
    model = version.model
    assert version.number is not None
    number = version.number

    def entry(path: str, display: str, file_type: str, size: int, sha256: str) -> FileEntry:
        return FileEntry(
            display, file_type, size, sha256, file_url(base, model, number, path), path
        )

    out: list[FileEntry] = []
    main = archives.onnx_file_path(version)
    # The client copies the NLP files from training/ into deployment/ itself and asserts
    # each name appears once in the listing: ours are then not listed twice.
    nlp = archives.has_nlp_training_files(version)
    for f in version.files:
        top, _, rest = f.path.partition("/")
        name = PurePosixPath(f.path).name
        if f.path == main:
            out.append(entry(f.path, "model.onnx", "onnx", f.size, f.sha256))
        elif not rest:
            file_type = "onnx" if top.endswith(".onnx") else _TOP_LEVEL_TYPES.get(top)
            if file_type is not None:
                out.append(entry(f.path, top, file_type, f.size, f.sha256))
        elif top == "deployment":
            # The client adds model.onnx to deployment/ itself (and the NLP files, see above).
            if rest != "model.onnx" and not (nlp and rest in archives.NLP_DEPLOYMENT_FILES):
                out.append(entry(f.path, rest, "deployment", f.size, f.sha256))
        elif top == "training":
            out.append(entry(f.path, rest, "training", f.size, f.sha256))
        elif top == "recipe":
            display = name if name.startswith("recipe") else f"recipe_{name}"
            out.append(entry(f.path, display, "recipe", f.size, f.sha256))
    for archive in archives.ensure_archives(session, storage, version):
        out.append(
            FileEntry(
                archive.name,
                archive.file_type,
                archive.size,
                archive.sha256,
                archive_url(base, model, number, archive.name),
                archive.name,
            )
        )
    return out


def archive_url(base: str, model: Model, number: int, name: str) -> str:
    """Absolute download URL of an archive built for a version."""
    return f"{base}/v2/models/{model.namespace.name}/{model.name}/versions/{number}/archives/{name}"


# --- results ------------------------------------------------------------------------------

# Metrics the client compares as accuracies (sparsezoo.deployment_package): SparseZoo recorded
# them in percent; our eval results hold fractions (0.7612), so those are scaled.
_PERCENT_METRICS = ("accuracy", "f1", "recall", "precision", "exact_match", "map")


def recorded_units(metric: str) -> str:
    """``top1_accuracy`` -> ``top1 accuracy``: SparseZoo's spelling of a metric."""
    return metric.replace("_", " ").strip()


def recorded_value(metric: str, value: float) -> float:
    """The value in SparseZoo's convention: accuracy-like fractions become percentages."""
    key = metric.lower().replace("-", "_").replace(" ", "_")
    if any(m in key for m in _PERCENT_METRICS) and 0.0 <= value <= 1.0:
        return round(value * 100.0, 6)
    return value


def dataset_type(model: Model, dataset: str) -> str:
    """``upstream`` for results on the data the model was trained on, else ``downstream``."""
    return "upstream" if model.dataset is not None and dataset == model.dataset else "downstream"
