"""Version, file, alias, publish and result bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.input_guards import NoNulBody
from app.models.schemas import ModelOut
from zoo.stubs import MAX_VERSION

SHA256_PATTERN = r"^[0-9a-f]{64}$"
ALIAS_PATTERN = r"^[a-z][a-z0-9._-]{0,63}$"


class FileOut(BaseModel):
    """A file of a version."""

    path: str
    file_type: str
    size: int
    sha256: str
    url: str


class RecipeOut(BaseModel):
    """A recipe of a version, addressable as ``?recipe=<name>``."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    path: str
    sha256: str


class BenchmarkIn(NoNulBody):
    """A benchmark measurement to attach to a version."""

    # JSON has no Infinity/NaN: a stored one would read back as null. Refuse them at the door.
    model_config = ConfigDict(allow_inf_nan=False)

    engine: str = Field(min_length=1, max_length=64, examples=["zoo"])
    engine_version: str = Field(default="", max_length=64)
    hardware: str = Field(min_length=1, max_length=200, examples=["Intel Xeon (avx512f)"])
    cores: int = Field(ge=1, le=4096)
    batch_size: int = Field(ge=1, le=1_000_000)
    scenario: str = Field(default="sync", max_length=32)
    throughput: float = Field(gt=0, description="items per second")
    latency_mean_ms: float | None = Field(default=None, ge=0)
    latency_p50_ms: float | None = Field(default=None, ge=0)
    latency_p90_ms: float | None = Field(default=None, ge=0)
    latency_p99_ms: float | None = Field(default=None, ge=0)
    measured_by: str = Field(default="", max_length=200)


class BenchmarkOut(BenchmarkIn):
    """A stored benchmark result."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime


class EvalIn(NoNulBody):
    """An evaluation result to attach to a version."""

    model_config = ConfigDict(allow_inf_nan=False)

    dataset: str = Field(min_length=1, max_length=200, examples=["imagenet"])
    split: str = Field(default="validation", max_length=64)
    metric: str = Field(min_length=1, max_length=64, examples=["top1_accuracy"])
    value: float
    measured_by: str = Field(default="", max_length=200)


class EvalOut(EvalIn):
    """A stored evaluation result."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime


class VersionSummary(BaseModel):
    """A ready version in a listing."""

    number: int
    created_at: datetime
    committed_at: datetime | None
    message: str
    total_size: int
    file_count: int
    sparsity: float | None
    quantized: bool
    aliases: list[str]
    downloads: int


class VersionOut(VersionSummary):
    """A ready version with everything attached."""

    model: ModelOut
    files: list[FileOut]
    recipes: list[RecipeOut]
    sparsity_profile: dict[str, Any] | None
    meta: dict[str, Any]
    benchmarks: list[BenchmarkOut]
    evals: list[EvalOut]


class ResolveOut(BaseModel):
    """What a stub resolves to."""

    stub: str
    version: VersionOut
    recipe: RecipeOut | None


class ManifestFile(BaseModel):
    """One file to publish."""

    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_PATTERN)


class UploadCreate(NoNulBody):
    """Open a new version: the full list of its files."""

    # A NUL in a file path is refused by the manifest check, as INVALID_PATH naming the path.
    nul_exempt: ClassVar[frozenset[str]] = frozenset({"files"})

    files: list[ManifestFile] = Field(min_length=1)
    message: str = Field(default="", max_length=5000)
    meta: dict[str, Any] = Field(default_factory=dict)


class PartUrl(BaseModel):
    """One presigned part of a multipart upload."""

    part_number: int
    url: str


class BlobTarget(BaseModel):
    """Where (and whether) to send one distinct blob of the manifest."""

    sha256: str
    size: int
    paths: list[str]
    status: Literal["stored", "upload"]
    method: Literal["PUT"] | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    part_size: int | None = None
    parts: list[PartUrl] | None = None
    authenticated: bool = Field(
        default=False, description="True when the URL is the hub's own and needs the token."
    )


class UploadOut(BaseModel):
    """An open upload (a pending version)."""

    upload_id: str
    status: str
    model: str
    blobs: list[BlobTarget]


class CompletedPart(BaseModel):
    """A part the client uploaded: its number and the ETag the store answered."""

    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200)


class CommitBlob(BaseModel):
    """Parts of a multipart blob, for the server to complete."""

    sha256: str = Field(pattern=SHA256_PATTERN)
    parts: list[CompletedPart]


class UploadCommit(NoNulBody):
    """Commit an upload; multipart blobs list their parts."""

    multipart: list[CommitBlob] = Field(default_factory=list)


class AliasSet(BaseModel):
    """Point an alias at a version."""

    version: int = Field(ge=1, le=MAX_VERSION)


class AliasOut(BaseModel):
    """An alias and the version it points at."""

    name: str
    version: int
    updated_at: datetime


class AliasEventOut(BaseModel):
    """One move (or deletion: version None) in an alias's history."""

    name: str
    version: int | None
    created_at: datetime
