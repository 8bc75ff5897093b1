"""Checks at commit: every .onnx file parses, passes the ONNX checker, keeps its external data
inside the version, and gets analysed (zoo.analysis); a sparsity the stub's tag or the version's
metadata claims must match what the weights show; every tar archive (``.tar``, ``.tar.gz``,
``.tgz``) reads, and holds only regular files and folders whose names stay inside the folder it
is extracted into (SparseZoo clients extract published archives)."""

from __future__ import annotations

import math
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from app.errors import InvalidArchive, InvalidOnnx, SparsityMismatch
from app.orm import Version
from app.storage import Storage, blob_key
from zoo._external_data import all_tensors
from zoo.analysis import analyze_model
from zoo.layout import InvalidFilePath, validate_file_path
from zoo.verify.claims import SPARSITY_TOLERANCE, tag_sparsity


@dataclass(frozen=True)
class VersionReport:
    """What commit learned about a version's ONNX files.

    ``sparsity`` is over the prunable layers of every file; None without a measured one.
    """

    sparsity: float | None
    quantized: bool
    profile: dict[str, Any] | None


@dataclass(frozen=True)
class SparsityClaim:
    """A sparsity someone asserted, and where (shown in the refusal)."""

    value: float
    source: str


def tag_claim(sparse_tag: str | None) -> SparsityClaim | None:
    """The sparsity a SparseZoo tag claims (parsed by ``zoo.verify``, which ``zoo verify`` shares);
    a tag without a number claims nothing.

    ``pruned95_quant-none`` -> 0.95; ``base-none``, ``pruned-none``, ``pruned_quant`` -> None
    """
    value = tag_sparsity(sparse_tag)
    if value is None:
        return None
    return SparsityClaim(value, f"the stub's sparse tag '{sparse_tag}'")


def meta_claim(meta: dict[str, Any]) -> SparsityClaim | None:
    """The ``sparsity`` of a version's metadata: a fraction in [0, 1] or a percentage in (1, 100].

    A value that is neither is refused rather than ignored: it is a claim nobody can check.
    """
    if "sparsity" not in meta or meta["sparsity"] is None:
        return None
    raw = meta["sparsity"]
    text = raw.strip().removesuffix("%") if isinstance(raw, str) else raw
    try:
        value = float(text) if not isinstance(text, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 100.0:  # also catches NaN
        raise SparsityMismatch(
            f"meta 'sparsity' is {str(raw)[:50]!r}: give a fraction in [0, 1] or a percentage "
            "in [0, 100], or leave it out (the hub measures sparsity itself)",
            details={"source": "meta", "claimed": str(raw)[:50]},
        )
    if value > 1.0 or (isinstance(raw, str) and raw.strip().endswith("%")):
        value /= 100
    return SparsityClaim(value, f"meta 'sparsity' ({raw})")


def check_claims(version: Version, measured: float | None) -> None:
    """Refuse a version whose tag or metadata claims a sparsity more than 2 points off."""
    claims = [tag_claim(version.model.sparse_tag), meta_claim(version.meta or {})]
    for claim in claims:
        if claim is None or measured is None:
            continue
        if abs(claim.value - measured) > SPARSITY_TOLERANCE:
            raise SparsityMismatch(
                f"{claim.source} claims {claim.value:.1%} sparsity, but the weights are "
                f"{measured:.1%} sparse over the prunable layers (more than "
                f"{SPARSITY_TOLERANCE * 100:g} percentage points apart): publish the pruned "
                "weights, or fix the claim",
                details={
                    "claimed": claim.value,
                    "measured": measured,
                    "source": claim.source,
                    "tolerance": SPARSITY_TOLERANCE,
                },
            )


def recipe_name(path: str) -> str:
    """The ``?recipe=`` name of a recipe file.

    ``recipe/recipe_transfer_learn.md`` -> ``transfer_learn``;
    ``recipe/original.yaml`` -> ``original``
    """
    stem = PurePosixPath(path).name.split(".")[0]
    return stem.removeprefix("recipe_") or stem


@contextmanager
def _local_copy(storage: Storage, key: str) -> Iterator[Path]:
    path = storage.local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
        target = Path(tmp) / "model.onnx"
        with target.open("wb") as out:
            for chunk in storage.read_range(key):
                out.write(chunk)
        yield target


def _tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor that can keep external data: the graph's (initializers, sparse initializers,
    node attributes, subgraphs) and those of the model's local functions."""
    yield from all_tensors(model.graph)
    for function in model.functions:
        yield from all_tensors(onnx.GraphProto(node=function.node))


def _check_external_data(model: onnx.ModelProto, onnx_path: str, paths: set[str]) -> None:
    folder = PurePosixPath(onnx_path).parent
    # Not only initializers: a Constant node's tensor, a sparse initializer or a tensor in a
    # subgraph or function can name a location too, and onnx.load follows every one of them.
    for tensor in _tensors(model):
        for entry in tensor.external_data:
            if entry.key != "location":
                continue
            location = entry.value
            try:
                validate_file_path(location)
            except InvalidFilePath as e:
                raise InvalidOnnx(
                    f"{onnx_path}: tensor '{tensor.name}' keeps its data at {location!r}, "
                    f"outside the model's folder ({e.reason})",
                    details={"path": onnx_path, "location": location},
                ) from e
            target = str(folder / location) if str(folder) != "." else location
            if target not in paths:
                raise InvalidOnnx(
                    f"{onnx_path}: tensor '{tensor.name}' keeps its data in '{location}', "
                    "which is not a file of this version: add it to the upload",
                    details={"path": onnx_path, "location": location},
                )


TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def _unsafe_member(member: tarfile.TarInfo) -> str | None:
    """Why extracting ``member`` is unsafe, or None (a regular file or folder inside the root)."""
    name = member.name
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).drive
    ):
        return "its name is an absolute path"
    if ".." in PureWindowsPath(name).parts:  # splits on both '/' and '\\'
        return "its name has a '..' component, which walks out of the extraction folder"
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        return f"it is {kind} (to {member.linkname!r}); archive the file itself"
    if member.ischr() or member.isblk():
        return "it is a device file"
    if member.isfifo():
        return "it is a FIFO"
    if not (member.isreg() or member.isdir()):
        return f"it is neither a regular file nor a folder (tar type {member.type!r})"
    return None


def check_archive(path: str, local: Path) -> None:
    """Refuse a tar archive that does not read or holds a member unsafe to extract.

    The member named in the error is the first bad one, in archive order.
    """
    try:
        with tarfile.open(local, mode="r:*") as tar:
            for member in tar:
                reason = _unsafe_member(member)
                if reason is not None:
                    raise InvalidArchive(
                        f"{path}: member {member.name[:300]!r} is unsafe to extract: {reason}",
                        details={"path": path, "member": member.name[:300]},
                    )
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise InvalidArchive(
            f"{path} is not a readable tar archive ({e or type(e).__name__}): publish a valid "
            "archive, or give the file a name that does not end in .tar, .tar.gz or .tgz",
            details={"path": path},
        ) from e


def _run_checker(model: onnx.ModelProto) -> None:
    """``onnx.checker.check_model``, also for a model that keeps weights in external data.

    The checker insists that each external file exists, as a regular file next to the model.
    Those files are other files of the version (``_check_external_data`` made sure of it, and
    that their locations stay inside the folder), so empty stand-ins are enough: without them
    every model with external data failed with "... should be stored in w.bin, but it is not
    regular file".
    """
    locations = {
        entry.value
        for tensor in _tensors(model)
        for entry in tensor.external_data
        if entry.key == "location"
    }
    if not locations:
        onnx.checker.check_model(model)
        return
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
        for location in locations:
            stand_in = Path(tmp, location)
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.touch()
        # No file of a version starts with '.', so this name cannot be one of the locations.
        target = Path(tmp, ".model.onnx")
        target.write_bytes(model.SerializeToString())
        onnx.checker.check_model(str(target))


def validate_version(storage: Storage, version: Version, *, keys: dict[str, str]) -> VersionReport:
    """Check every .onnx file of a version whose blobs are verified.

    ``keys`` maps the sha256 of blobs verified in this commit to the private key holding them;
    other blobs are already stored under their blob key.
    """
    paths = {f.path for f in version.files}
    sparsities: list[tuple[int, int]] = []
    unmeasured = False
    quantized = False
    profile: dict[str, Any] = {}
    for f in version.files:
        if f.path.endswith(TAR_SUFFIXES):
            with _local_copy(storage, keys.get(f.sha256) or blob_key(f.sha256)) as local:
                check_archive(f.path, local)
            continue
        if f.file_type != "onnx" and not f.path.endswith(".onnx"):
            continue
        key = keys.get(f.sha256) or blob_key(f.sha256)
        with _local_copy(storage, key) as local:
            try:
                model = onnx.load(str(local), load_external_data=False)
            except (DecodeError, ValueError, RuntimeError, OSError) as e:
                raise InvalidOnnx(
                    f"{f.path} is not a readable ONNX model: {e}", details={"path": f.path}
                ) from e
        _check_external_data(model, f.path, paths)
        try:
            _run_checker(model)
        except (onnx.checker.ValidationError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InvalidOnnx(
                f"{f.path} fails the ONNX checker: {first}", details={"path": f.path}
            ) from e
        # External data is not loaded here (it is other files of the version): weights kept
        # there are listed as unmeasured in the profile.
        analysis = analyze_model(model, file_size=f.size)
        profile[f.path] = analysis.to_dict()
        quantized = quantized or analysis.quantized
        unmeasured = unmeasured or bool(analysis.unmeasured)
        sparsities.append((analysis.prunable_zeros, analysis.prunable_params))
    if not profile:
        check_claims(version, None)
        return VersionReport(None, False, None)
    zeros = sum(z for z, _ in sparsities)
    params = sum(p for _, p in sparsities)
    # Nothing measured because the weights are external: no number rather than a wrong 0.
    sparsity = zeros / params if params else (None if unmeasured else 0.0)
    check_claims(version, sparsity)
    return VersionReport(sparsity, quantized, profile)
