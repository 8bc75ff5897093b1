"""The GraphQL schema SparseZoo clients query (``POST /v2/graphql``), in strawberry types.

One root field, ``models(...)``, with the arguments the ``sparsezoo`` client builds from a
stub (``domain, task, architecture, subArchitecture, framework, repo, sourceDataset,
sparseTag`` for a path stub; ``repoName`` for a short one) and the fields it reads
(``modelId stub files(version: 2) {...} benchmarkResults {...} trainingResults {...}
repoName repoNamespace ...``). Unknown arguments and fields are GraphQL validation errors.

Database and storage work is done once per query, in a worker thread (see ``Query.models``):
the nested fields only read what that work produced, so no resolver touches the session
concurrently or blocks the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, NewType

import strawberry
from graphql import GraphQLError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from strawberry.extensions import MaskErrors
from strawberry.fastapi import BaseContext
from strawberry.schema.config import StrawberryConfig
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from app.auth import Principal
from app.compat import archives, service
from app.errors import BadRequest, ZooError
from app.models.service import shown_base
from app.orm import BenchmarkResult as BenchmarkRow
from app.orm import EvalResult as EvalRow
from app.storage import Storage

# GraphQL's Int is 32-bit; file sizes are not.
Long = NewType("Long", int)


class CompatContext(BaseContext):
    """What the resolvers need from the request: the session, the caller, storage, base URL."""

    def __init__(
        self, session: Session, principal: Principal | None, storage: Storage, base_url: str
    ) -> None:
        super().__init__()
        self.session = session
        self.principal = principal
        self.storage = storage
        self.base_url = base_url
        # Root fields of one query resolve concurrently (``{ a: models ... b: models ... }``)
        # and a Session is not for concurrent use: they take turns.
        self.session_lock = threading.Lock()


Info = strawberry.Info[CompatContext, None]


@strawberry.type(description="A file of a model, as the sparsezoo client downloads it.")
class File:
    display_name: str = strawberry.field(description="File name in the model folder.")
    download_url: str = strawberry.field(description="Absolute URL; HEAD and Range work.")
    file_size: Long
    file_type: str = strawberry.field(
        description="SparseZoo file type: onnx, deployment, training, recipe, card, inputs, "
        "outputs, labels, originals, benchmark, benchmarking, metrics."
    )
    model_id: strawberry.ID
    path: str = strawberry.field(
        description="Where the bytes come from in the OpenZoo version (or the archive name)."
    )
    sha256: str


@strawberry.type(description="A benchmark measurement (throughput in items/seconds).")
class BenchmarkResult:
    batch_size: int
    device_info: str
    num_cores: int
    recorded_units: str
    recorded_value: float
    engine: str
    engine_version: str
    scenario: str
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    measured_by: str


@strawberry.type(description="An evaluation result (accuracy-like metrics in percent).")
class TrainingResult:
    dataset_name: str
    dataset_type: str = strawberry.field(description="upstream (training data) or downstream.")
    recorded_units: str
    recorded_value: float
    split: str
    measured_by: str


def _list_files(root: Model, version: int = 2) -> list[File]:
    if version not in (1, 2):
        raise BadRequest(f"files(version: {version}): this hub serves listing version 2")
    return root._files


@strawberry.type(description="A model and its latest version, the way SparseZoo described one.")
class Model:
    model_id: strawberry.ID
    stub: str = strawberry.field(description="Path stub if the model has one, else short stub.")
    path_stub: str | None
    short_stub: str
    namespaced_stub: str
    display_name: str
    description: str
    license: str | None
    tags: list[str]
    domain: str | None
    task: str | None
    sub_domain: str | None = strawberry.field(description="SparseZoo's older name for task.")
    architecture: str | None
    sub_architecture: str | None
    framework: str | None
    repo: str | None
    source_dataset: str | None
    dataset: str | None
    training_scheme: str | None
    training_dataset: str | None = strawberry.field(
        description="The short stub's TRAIN_DATASET slot: our training scheme."
    )
    sparse_tag: str | None
    repo_name: str
    repo_namespace: str
    base_model: str | None
    version: int = strawberry.field(description="The version served: the latest.")
    sparsity: float | None
    quantized: bool
    downloads: int
    created_at: datetime
    updated_at: datetime
    model_onnx_size_bytes: Long | None
    model_onnx_size_compressed_bytes: Long | None = strawberry.field(
        description="Not measured by OpenZoo: always null (the client treats it as unknown)."
    )
    benchmark_results: list[BenchmarkResult]
    training_results: list[TrainingResult]
    _files: strawberry.Private[list[File]]
    files: list[File] = strawberry.field(
        resolver=_list_files,
        description="The files; version is the listing format, 2 (1 lists the same).",
    )


@dataclass(frozen=True)
class _Wants:
    files: bool
    results: bool


def _field_names(selections: list[SelectedField | FragmentSpread | InlineFragment]) -> set[str]:
    """Names of the fields selected at this level, looking through fragments."""
    names: set[str] = set()
    for s in selections:
        if isinstance(s, SelectedField):
            names.add(s.name)
        else:
            names |= _field_names(s.selections)
    return names


def _wants(info: Info) -> _Wants:
    names = _field_names([s for f in info.selected_fields for s in f.selections])
    return _Wants(
        files=bool(names & {"files", "modelOnnxSizeBytes"}),
        results=bool(names & {"benchmarkResults", "trainingResults"}),
    )


def _benchmark(row: BenchmarkRow) -> BenchmarkResult:
    return BenchmarkResult(
        batch_size=row.batch_size,
        device_info=row.hardware,
        num_cores=row.cores,
        recorded_units="items/seconds",
        recorded_value=row.throughput,
        engine=row.engine,
        engine_version=row.engine_version,
        scenario=row.scenario,
        latency_mean_ms=row.latency_mean_ms,
        latency_p50_ms=row.latency_p50_ms,
        latency_p90_ms=row.latency_p90_ms,
        latency_p99_ms=row.latency_p99_ms,
        measured_by=row.measured_by,
    )


def _training(found: service.Found, row: EvalRow) -> TrainingResult:
    return TrainingResult(
        dataset_name=row.dataset,
        dataset_type=service.dataset_type(found.model, row.dataset),
        recorded_units=service.recorded_units(row.metric),
        recorded_value=service.recorded_value(row.metric, row.value),
        split=row.split,
        measured_by=row.measured_by,
    )


def _model(ctx: CompatContext, found: service.Found, wants: _Wants) -> Model:
    """Everything the query asked for about one model, built while the session is ours."""
    m, v = found.model, found.version
    model_id = strawberry.ID(str(m.id))
    files: list[File] = []
    onnx_size = None
    if wants.files:
        entries = service.list_files(ctx.session, ctx.storage, v, ctx.base_url)
        files = [
            File(
                display_name=e.display_name,
                download_url=e.url,
                file_size=Long(e.size),
                file_type=e.file_type,
                model_id=model_id,
                path=e.path,
                sha256=e.sha256,
            )
            for e in entries
        ]
        onnx_path = archives.onnx_file_path(v)
        onnx_size = next((Long(f.size) for f in v.files if f.path == onnx_path), None)
    base = shown_base(m)
    return Model(
        model_id=model_id,
        stub=service.stub_of(m),
        path_stub=f"zoo:{m.path_stub}" if m.path_stub else None,
        short_stub=f"zoo:{m.name}",
        namespaced_stub=f"zoo:{m.namespace.name}/{m.name}",
        display_name=m.display_name,
        description=m.description,
        license=m.license,
        tags=list(m.tags),
        domain=m.domain,
        task=m.task,
        sub_domain=m.task,
        architecture=m.architecture,
        sub_architecture=m.sub_architecture,
        framework=m.framework,
        repo=m.repo,
        source_dataset=m.dataset,
        dataset=m.dataset,
        training_scheme=m.training_scheme,
        training_dataset=m.training_scheme,
        sparse_tag=m.sparse_tag,
        repo_name=m.name,
        repo_namespace=m.namespace.name,
        base_model=f"zoo:{base.namespace.name}/{base.name}" if base is not None else None,
        version=v.number or 0,
        sparsity=v.sparsity,
        quantized=v.quantized,
        downloads=m.downloads,
        created_at=m.created_at,
        updated_at=m.updated_at,
        model_onnx_size_bytes=onnx_size,
        model_onnx_size_compressed_bytes=None,
        benchmark_results=[_benchmark(b) for b in v.benchmarks] if wants.results else [],
        training_results=[_training(found, e) for e in v.evals] if wants.results else [],
        _files=files,
    )


async def _models(
    info: Info,
    domain: str | None = None,
    task: str | None = None,
    sub_domain: str | None = None,
    architecture: str | None = None,
    sub_architecture: str | None = None,
    framework: str | None = None,
    repo: str | None = None,
    source_dataset: str | None = None,
    dataset: str | None = None,
    training_dataset: str | None = None,
    training_scheme: str | None = None,
    sparse_tag: str | None = None,
    repo_name: str | None = None,
    repo_namespace: str | None = None,
    display_name: str | None = None,
    stub: str | None = None,
    model_id: strawberry.ID | None = None,
    release_version: Annotated[
        str | None, strawberry.argument(description="Accepted; OpenZoo has no releases.")
    ] = None,
    limit: int = service.DEFAULT_LIMIT,
    offset: int = 0,
) -> list[Model]:
    filters = service.ModelFilters(
        domain=domain,
        task=task if task is not None else sub_domain,
        architecture=architecture,
        sub_architecture=sub_architecture,
        framework=framework,
        repo=repo,
        dataset=source_dataset if source_dataset is not None else dataset,
        training_scheme=training_scheme if training_scheme is not None else training_dataset,
        sparse_tag=sparse_tag,
        repo_name=repo_name,
        repo_namespace=repo_namespace,
        display_name=display_name,
        stub=stub,
        model_id=str(model_id) if model_id is not None else None,
    )
    ctx, wants = info.context, _wants(info)

    # Blocking work (SQL, building archives) runs in one worker thread, start to end.
    def work() -> list[Model]:
        with ctx.session_lock:
            return [_model(ctx, f, wants) for f in find()]

    def find() -> list[service.Found]:
        return service.find_models(
            ctx.session,
            ctx.principal,
            filters,
            limit=limit,
            offset=offset,
            with_files=wants.files,
            with_results=wants.results,
        )

    return await run_in_threadpool(work)


@strawberry.type
class Query:
    models: list[Model] = strawberry.field(
        resolver=_models,
        description="Models matching every given argument, each with its latest version.",
    )


def _mask(error: GraphQLError) -> bool:
    """Hide unexpected exceptions' text (it may hold internals); our own errors are for users."""
    original = error.original_error
    return original is not None and not isinstance(original, ZooError)


schema = strawberry.Schema(
    query=Query,
    config=StrawberryConfig(
        scalar_map={
            Long: strawberry.scalar(
                name="Long",
                description="A 64-bit integer (byte sizes can exceed GraphQL's 32-bit Int).",
                serialize=int,
                parse_value=int,
            )
        }
    ),
    extensions=[lambda: MaskErrors(should_mask_error=_mask, error_message="internal server error")],
)
