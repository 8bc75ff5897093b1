"""``verify_model``: every check of ``zoo verify`` on one :class:`zoo.Model`, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._cache import MANIFEST
from zoo._types import VersionInfo
from zoo.verify.bench import check_benchmark
from zoo.verify.checks import (
    Subject,
    check_hashes,
    check_onnx,
    check_outputs,
    check_recipe,
    check_sparsity,
    main_onnx,
)
from zoo.verify.report import VerifyReport

if TYPE_CHECKING:
    from zoo._model import Model

__all__ = ["BENCH_SECONDS", "verify_model"]

BENCH_SECONDS = 1.0


def _folder_files(root: Path) -> list[str]:
    """Every file under ``root`` but hidden ones (the snapshot manifest, temp files)."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            out.append(rel)
    return out


def _card_tag(root: Path) -> str | None:
    """The sparse tag a card's front matter gives (``sparse_tag:`` or inside ``stub:``)."""
    from zoo import stubs
    from zoo.verify.claims import card_front_matter

    card = root / "model.md"
    text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""
    meta = card_front_matter(text)
    if isinstance(meta.get("sparse_tag"), str):
        return str(meta["sparse_tag"])
    try:
        return stubs.parse_stub(str(meta.get("stub") or "")).sparse_tag
    except stubs.InvalidStubError:
        return None


def _version_subject(version: VersionInfo, root: Path, source: str) -> Subject:
    model: dict[str, Any] = version.data.get("model") or {}
    return Subject(
        root=root,
        files=[f.path for f in version.files],
        expected=list(version.files),
        expected_source=source,
        sparse_tag=model.get("sparse_tag") or _card_tag(root),
        benchmarks=list(version.data.get("benchmarks") or []),
    )


def subject_of(model: Model) -> Subject:
    """Download (or open) the model and describe what to check it against."""
    version, client, local = model._version, model._client, model._local
    if version is not None and client is not None:
        root = model.download()  # each blob's sha256 was checked on the way in; checked again
        subject = _version_subject(version, root, f"the manifest of {version.stub}")
        # Hash the blobs themselves: a snapshot link can be fine while its blob was altered.
        subject.hash_paths = {f.path: client.cache.blob_path(f.sha256) for f in version.files}
        return subject
    assert local is not None
    manifest = local / MANIFEST
    if manifest.is_file():  # a snapshot folder of 'zoo download': its manifest came with it
        snapshot = VersionInfo.from_json(json.loads(manifest.read_bytes()))
        subject = _version_subject(snapshot, local, f"{MANIFEST} ({snapshot.stub})")
        extra = sorted(set(_folder_files(local)) - set(subject.files))
        subject.files += extra
        return subject
    return Subject(
        root=local,
        files=_folder_files(local),
        sparse_tag=_card_tag(local),
        benchmarks=model.benchmarks,
    )


def verify_model(
    model: Model, *, strict: bool = False, bench_seconds: float = BENCH_SECONDS
) -> VerifyReport:
    """Check a model's files, ONNX, sample outputs, sparsity claims, recipe and speed.

    ``strict`` turns the benchmark ratio from information into a check (below 0.5x fails);
    ``bench_seconds=0`` skips the benchmark.

    >>> report = verify_model(zoo.Model("./resnet50-pruned90"))  # doctest: +SKIP
    >>> [(c.name, c.status) for c in report.checks]  # doctest: +SKIP
    [('sha256', 'info'), ('onnx', 'pass'), ('outputs', 'pass'), ...]
    """
    subject = subject_of(model)
    report = VerifyReport(model.stub or str(subject.root), strict=strict)
    report.add(check_hashes(subject))
    report.add(check_onnx(subject))
    report.add(check_outputs(subject))
    report.add(check_sparsity(subject))
    report.add(check_recipe(subject))
    report.add(
        check_benchmark(
            main_onnx(subject), subject.benchmarks, seconds=bench_seconds, strict=strict
        )
    )
    return report
