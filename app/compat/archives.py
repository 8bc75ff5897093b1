"""Sample folders as ``.tar.gz`` archives, the way SparseZoo clients fetch them.

A SparseZoo client downloads ``sample-inputs.tar.gz`` (and ``sample-outputs``, ``-labels``,
``-originals``) and ``deployment.tar.gz`` and unpacks them; OpenZoo stores folders file by
file. Each archive is built once per version, on the first compat request that needs it, and
stored as an ordinary content-addressed blob (``blobs/sha256/<hex>``) recorded in
``compat_archives``.

The build is deterministic (sorted members, fixed owner, mode and times, gzip without a
timestamp), so two requests racing to build the same archive produce the same bytes: both
write the same blob key and the ``(version_id, name)`` unique constraint keeps one row.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import release
from app.errors import ZooError
from app.orm import Blob, CompatArchive, File, Version, utcnow
from app.storage import Storage, blob_key
from app.versions.service import primary_file
from zoo.layout import InvalidFilePath, validate_file_path

# Folder -> SparseZoo file type. ``sample-outputs_<engine>`` folders (outputs recorded by one
# engine) are archived too, as outputs: the client tells them apart by name.
ARCHIVED_FOLDERS = {
    "sample-inputs": "inputs",
    "sample-outputs": "outputs",
    "sample-labels": "labels",
    "sample-originals": "originals",
}
_OUTPUTS_PREFIX = "sample-outputs_"
ARCHIVE_SUFFIX = ".tar.gz"
DEPLOYMENT = "deployment"
# The client copies these from training/ into deployment/ when training/ has all three
# (sparsezoo.model.utils.restructure_request_json); the deployment archive does the same.
NLP_DEPLOYMENT_FILES = frozenset({"config.json", "tokenizer.json", "tokenizer_config.json"})
# Archives up to this size are built in memory; larger ones spill to a temporary file.
_SPOOL_BYTES = 16 * 1024 * 1024
# Fast: an archive is built while a client waits, and the zero runs of sparse weights
# compress well at any level.
_GZIP_LEVEL = 1


@dataclass(frozen=True)
class Plan:
    """What one archive holds: its SparseZoo file type and (member name, file) pairs."""

    file_type: str
    members: list[tuple[str, File]]


def archive_folder(path: str) -> str | None:
    """The archived sample folder ``path`` lies in, or None."""
    top, sep, _ = path.partition("/")
    if not sep:
        return None
    if top in ARCHIVED_FOLDERS or top.startswith(_OUTPUTS_PREFIX):
        return top
    return None


def onnx_file_path(version: Version) -> str | None:
    """The file presented as ``model.onnx`` (the client needs exactly one)."""
    paths = {f.path for f in version.files}
    if "deployment/model.onnx" in paths and "model.onnx" not in paths:
        return "deployment/model.onnx"
    main = primary_file(version)
    return main if main is not None and main.endswith(".onnx") else None


def has_nlp_training_files(version: Version) -> bool:
    """Whether training/ holds config.json, tokenizer.json and tokenizer_config.json."""
    names = {f.path.removeprefix("training/") for f in version.files}
    return names >= NLP_DEPLOYMENT_FILES


def plan_archives(version: Version) -> dict[str, Plan]:
    """Archive name -> plan: one per sample folder, and ``deployment.tar.gz`` (the ONNX file,
    the deployment folder and, for NLP models, the tokenizer and config) when there is an
    ONNX file. SparseZoo clients download ``deployment/`` as that archive."""
    plans: dict[str, Plan] = {}
    by_path = {f.path: f for f in sorted(version.files, key=lambda f: f.path)}
    for path, f in by_path.items():
        folder = archive_folder(path)
        if folder is not None:
            plan = plans.setdefault(
                folder + ARCHIVE_SUFFIX, Plan(ARCHIVED_FOLDERS.get(folder, "outputs"), [])
            )
            plan.members.append((path, f))
    main = onnx_file_path(version)
    if main is not None:
        members = {p: f for p, f in by_path.items() if p.startswith(DEPLOYMENT + "/")}
        members.setdefault(f"{DEPLOYMENT}/model.onnx", by_path[main])
        if has_nlp_training_files(version):
            for name in sorted(NLP_DEPLOYMENT_FILES):
                members.setdefault(f"{DEPLOYMENT}/{name}", by_path[f"training/{name}"])
        plans[DEPLOYMENT + ARCHIVE_SUFFIX] = Plan(DEPLOYMENT, sorted(members.items()))
    return dict(sorted(plans.items()))


def ensure_archives(session: Session, storage: Storage, version: Version) -> list[CompatArchive]:
    """The version's archives, building (and recording) the ones that do not exist yet."""
    plans = plan_archives(version)
    if not plans:
        return []
    existing = _archives(session, version)
    missing = [name for name in plans if name not in {a.name for a in existing}]

    def claim(sha256: str, size: int) -> None:
        # the blob row, as soon as the bytes are in place: see _build
        _insert_ignore(session, Blob, {"sha256": sha256, "size": size}, ["sha256"])

    for name in missing:
        plan = plans[name]
        # Building reads every member from the store and writes the archive (seconds for a
        # large model): not with a connection held, nor, on SQLite, the write lock that the
        # previous archive's rows took. Those rows commit here, complete on their own.
        release(session)
        sha256, size = _build(storage, version, plan.members, claim)
        _insert_ignore(
            session,
            CompatArchive,
            {
                "version_id": version.id,
                "name": name,
                "file_type": plan.file_type,
                "size": size,
                "sha256": sha256,
            },
            ["version_id", "name"],
        )
    return _archives(session, version) if missing else existing


def _archives(session: Session, version: Version) -> list[CompatArchive]:
    return list(
        session.scalars(
            select(CompatArchive)
            .where(CompatArchive.version_id == version.id)
            .order_by(CompatArchive.name)
        )
    )


def _insert_ignore(
    session: Session, table: type[Any], values: dict[str, Any], keys: list[str]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent build may have inserted the row first."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = {"created_at": utcnow(), **values}
    session.execute(insert(table).values(row).on_conflict_do_nothing(index_elements=keys))


@dataclass
class _HashingWriter:
    """A write-only file that hashes and counts what passes to ``sink``."""

    sink: IO[bytes]
    size: int = 0

    def __post_init__(self) -> None:
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _ChunkReader:
    """``read(n)`` over an iterator of byte chunks (what ``tarfile.addfile`` reads from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            rest = self._buffer[self._pos :] + b"".join(self._chunks)
            self._buffer, self._pos = b"", 0
            return rest
        # Refill only when the buffer runs short, so a 1 MiB chunk read 16 KiB at a time is
        # sliced, not copied, on each read.
        while len(self._buffer) - self._pos < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer, self._pos = self._buffer[self._pos :] + chunk, 0
        out = self._buffer[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def _build(
    storage: Storage,
    version: Version,
    members: list[tuple[str, File]],
    claim: Callable[[str, int], None],
) -> tuple[str, int]:
    """Write the archive of ``members`` to its blob key; its sha256 and size.

    ``claim(sha256, size)`` inserts the blob's row (uncommitted) once the bytes are in place;
    from then on gc keeps them (``gc.delete_orphans``). Bytes found in place before the claim
    may be an orphan (a build whose transaction failed) that gc deleted meanwhile: they are
    looked for again after it, and written again if gone. Bytes not found were either never
    there or already deleted by gc, which deletes a key once: the ones written here need no
    second look. (Claiming before writing would hold SQLite's one write lock for the whole
    write.)
    """
    # Members are named by their folder (``sample-inputs/inp-0000.npz``), so plain
    # ``tar xzf`` recreates it; the SparseZoo client keeps only the base name.
    mtime = int((version.committed_at or version.created_at).timestamp())
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        writer = _HashingWriter(spool)
        # mtime=0 and no file name in the gzip header: the same members give the same bytes.
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=writer, mtime=0, compresslevel=_GZIP_LEVEL
            ) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for member, f in members:
                chunks = storage.read_range(blob_key(f.sha256))
                tar.addfile(_member(member, f.size, mtime), _ChunkReader(chunks))
        key = blob_key(writer.hexdigest)

        def store() -> None:
            spool.seek(0)
            written = storage.write_stream(key, spool)
            if (written.sha256, written.size) != (writer.hexdigest, writer.size):
                storage.delete(key)
                raise ZooError(f"archive for {key} changed while it was stored; try again")

        found = storage.exists(key)
        if not found:
            store()
        claim(writer.hexdigest, writer.size)
        if found and not storage.exists(key):  # an orphan that gc deleted before the claim
            store()
    return writer.hexdigest, writer.size


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    """A regular-file member with a safe relative name and no owner, the same on every build."""
    try:
        validate_file_path(name)  # paths were checked at publish; a member must never escape
    except InvalidFilePath as e:
        raise ZooError(f"cannot archive {name!r}: {e}") from e
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
