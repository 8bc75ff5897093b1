"""Model request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.input_guards import NoNulBody
from app.models.service import shown_base
from app.orm import Model

# A model name is a short stub: one stub segment (see zoo.stubs).
NAME_PATTERN = r"^[a-z0-9_](?:[a-z0-9_.-]{0,98}[a-z0-9_])?$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class ModelCreate(NoNulBody):
    """Create a model. Give a SparseZoo path stub to index it by its fields; ``name`` defaults
    to the short (v2) stub derived from them."""

    namespace: str = Field(pattern=NAMESPACE_PATTERN, examples=["openzoo"])
    name: str | None = Field(
        default=None, pattern=NAME_PATTERN, examples=["resnet_v1-50-imagenet-pruned90"]
    )
    stub: str | None = Field(
        default=None,
        max_length=512,
        examples=["zoo:cv/classification/resnet_v1-50/pytorch/openzoo/imagenet/pruned90-none"],
    )
    display_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=20_000)
    license: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)
    visibility: Literal["public", "private"] = "public"
    base_model: str | None = Field(
        default=None, max_length=512, description="The model this one derives from: a stub."
    )


class ModelOut(BaseModel):
    """A model as the API shows it."""

    namespace: str
    name: str
    stub: str
    short_stub: str
    path_stub: str | None
    display_name: str
    description: str
    license: str | None
    tags: list[str]
    visibility: str
    domain: str | None
    task: str | None
    architecture: str | None
    sub_architecture: str | None
    framework: str | None
    repo: str | None
    dataset: str | None
    training_scheme: str | None
    sparse_tag: str | None
    base_model: str | None
    latest_version: int | None
    sparsity: float | None = Field(description="Measured on the latest version's weights (0..1).")
    quantized: bool
    downloads: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, m: Model) -> ModelOut:
        base = shown_base(m)
        return cls(
            namespace=m.namespace.name,
            name=m.name,
            stub=f"zoo:{m.namespace.name}/{m.name}",
            short_stub=f"zoo:{m.name}",
            path_stub=f"zoo:{m.path_stub}" if m.path_stub else None,
            display_name=m.display_name,
            description=m.description,
            license=m.license,
            tags=list(m.tags),
            visibility=m.visibility,
            domain=m.domain,
            task=m.task,
            architecture=m.architecture,
            sub_architecture=m.sub_architecture,
            framework=m.framework,
            repo=m.repo,
            dataset=m.dataset,
            training_scheme=m.training_scheme,
            sparse_tag=m.sparse_tag,
            base_model=f"zoo:{base.namespace.name}/{base.name}" if base else None,
            latest_version=m.latest_version,
            sparsity=m.sparsity,
            quantized=m.quantized,
            downloads=m.downloads,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


class ModelPage(BaseModel):
    """One page of search results; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ModelOut]
    next_cursor: str | None


SortKey = Literal[
    "name", "-name", "created", "-created", "downloads", "-downloads", "sparsity", "-sparsity"
]
