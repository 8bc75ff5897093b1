"""The local cache: content-addressed blobs, per-version snapshots of links, alias refs.

    <root>/blobs/<sha256>                                  the bytes, verified, read-only
    <root>/blobs/.incomplete/<sha256>.<pid>.<random>       downloads in flight (process-unique)
    <root>/blobs/.locks/<sha256>.lock                      one lock per blob
    <root>/snapshots/<ns>/<name>/<version>/<path>          relative symlinks into blobs/ (copies
                                                           where links are impossible)
    <root>/snapshots/<ns>/<name>/<version>/.zoo-manifest.json   the version body: a pinned stub
                                                           opens from here with zero requests
    <root>/refs/<ns>/<name>/<alias>                        the version an alias pointed at
    <root>/stubs/<key>                                     path/short stub -> "ns/name"

Every write is a temp file + ``os.replace``, so readers see the old file or the new one,
never half of one. Model file names cannot start with '.', so the manifest never collides.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from zoo._lock import file_lock
from zoo._types import VersionInfo
from zoo.layout import validate_file_path

__all__ = ["MANIFEST", "Cache", "SnapshotEntry", "hash_file"]

MANIFEST = ".zoo-manifest.json"
_CHUNK = 1 << 20


def hash_file(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a process-unique temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _segment(text: str) -> str:
    # Namespaces, names and aliases come from the hub; refuse anything that could walk paths.
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise ValueError(f"unsafe cache path segment {text!r}")
    return text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell: keep its file
    return True


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """One cached version: where it is, how many of its files are present, their size."""

    namespace: str
    name: str
    number: int
    path: Path
    files: int
    present: int
    size: int

    @property
    def stub(self) -> str:
        return f"zoo:{self.namespace}/{self.name}@{self.number}"

    @property
    def complete(self) -> bool:
        return self.present == self.files


class Cache:
    """The cache under ``root`` (``ZOO_CACHE``, default ``~/.cache/zoo``)."""

    def __init__(self, root: Path, lock_timeout: float = 600.0) -> None:
        self.root = root.expanduser()
        self.lock_timeout = lock_timeout

    # -- blobs -------------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / "blobs" / sha256

    def has_blob(self, sha256: str, size: int) -> bool:
        """True if the blob is present with the right size (its hash was checked on the way in;
        ``zoo cache verify`` re-hashes)."""
        try:
            return self.blob_path(sha256).stat().st_size == size
        except FileNotFoundError:
            return False

    def temp_path(self, sha256: str) -> Path:
        """A fresh, process-unique path for a download in flight."""
        incomplete = self.root / "blobs" / ".incomplete"
        incomplete.mkdir(parents=True, exist_ok=True)
        return incomplete / f"{sha256}.{os.getpid()}.{uuid.uuid4().hex[:12]}"

    def lock(self, sha256: str) -> AbstractContextManager[None]:
        """Exclusive lock on one blob, across threads and processes (bounded wait)."""
        path = self.root / "blobs" / ".locks" / f"{sha256}.lock"
        return file_lock(path, self.lock_timeout, what=f"blob {sha256[:12]}")

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot_dir(self, namespace: str, name: str, number: int) -> Path:
        return self.root / "snapshots" / _segment(namespace) / _segment(name) / str(int(number))

    def read_manifest(self, namespace: str, name: str, number: int) -> VersionInfo | None:
        try:
            raw = (self.snapshot_dir(namespace, name, number) / MANIFEST).read_bytes()
            return VersionInfo.from_json(json.loads(raw))
        except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
            return None

    def write_manifest(self, version: VersionInfo) -> None:
        target = self.snapshot_dir(version.namespace, version.name, version.number) / MANIFEST
        atomic_write(target, json.dumps(version.data, sort_keys=True).encode())

    def snapshot_file(self, version: VersionInfo, path: str) -> Path:
        snap = self.snapshot_dir(version.namespace, version.name, version.number)
        return snap / validate_file_path(path)

    def has_file(self, version: VersionInfo, path: str) -> bool:
        """True if the snapshot holds ``path`` and it resolves to a present blob."""
        return self.snapshot_file(version, path).exists()  # exists() follows the link

    def link(self, version: VersionInfo, path: str, sha256: str) -> Path:
        """Put ``path`` of the snapshot in place: a relative link to the blob, else a copy."""
        target = self.snapshot_file(version, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = self.blob_path(sha256)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            try:
                os.symlink(os.path.relpath(blob, target.parent), tmp)
            except (OSError, NotImplementedError):  # no symlinks here (Windows, some mounts)
                shutil.copyfile(blob, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    # -- refs and the stub index ------------------------------------------------------------

    def read_ref(self, namespace: str, name: str, alias: str) -> int | None:
        try:
            text = self.root / "refs" / _segment(namespace) / _segment(name) / _segment(alias)
            return int(text.read_text().strip())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None

    def write_ref(self, namespace: str, name: str, alias: str, number: int) -> None:
        path = self.root / "refs" / _segment(namespace) / _segment(name) / _segment(alias)
        atomic_write(path, f"{int(number)}\n".encode())

    def _stub_key(self, stub_text: str) -> Path:
        return self.root / "stubs" / hashlib.sha256(stub_text.encode()).hexdigest()[:32]

    def read_stub(self, stub_text: str) -> tuple[str, str] | None:
        """The (namespace, name) a path or short stub (without version) resolved to."""
        try:
            data = json.loads(self._stub_key(stub_text).read_bytes())
            return str(data["namespace"]), str(data["name"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def write_stub(self, stub_text: str, namespace: str, name: str) -> None:
        body = {"stub": stub_text, "namespace": namespace, "name": name}
        atomic_write(self._stub_key(stub_text), json.dumps(body).encode())

    # -- inspection and clean-up ------------------------------------------------------------

    def snapshots(self) -> Iterator[SnapshotEntry]:
        """Every cached version, sorted by namespace, name and number."""
        base = self.root / "snapshots"
        for manifest in sorted(base.glob(f"*/*/*/{MANIFEST}")):
            snap = manifest.parent
            try:
                version = VersionInfo.from_json(json.loads(manifest.read_bytes()))
            except (ValueError, KeyError, TypeError):
                continue
            present = [f for f in version.files if (snap / f.path).exists()]
            yield SnapshotEntry(
                namespace=version.namespace,
                name=version.name,
                number=version.number,
                path=snap,
                files=len(version.files),
                present=len(present),
                size=sum(f.size for f in present),
            )

    def remove(self, namespace: str, name: str, number: int | None = None) -> int:
        """Delete the snapshot(s) of a model, then every blob no snapshot links to any more.
        Returns the bytes freed."""
        model_dir = self.root / "snapshots" / _segment(namespace) / _segment(name)
        target = model_dir if number is None else model_dir / str(int(number))
        if target.exists():
            shutil.rmtree(target)
        if number is None:
            shutil.rmtree(self.root / "refs" / namespace / name, ignore_errors=True)
        return self.collect_garbage()

    def collect_garbage(self) -> int:
        """Delete blobs that no snapshot references; returns the bytes freed."""
        used: set[str] = set()
        for manifest in (self.root / "snapshots").glob(f"*/*/*/{MANIFEST}"):
            try:
                version = VersionInfo.from_json(json.loads(manifest.read_bytes()))
            except (ValueError, KeyError, TypeError):
                continue
            used.update(f.sha256 for f in version.files)
        freed = self._remove_abandoned_downloads()
        blobs = self.root / "blobs"
        for blob in blobs.glob("*") if blobs.exists() else []:
            if blob.is_file() and blob.name not in used and len(blob.name) == 64:
                with self.lock(blob.name):
                    freed += blob.stat().st_size
                    blob.unlink(missing_ok=True)
        return freed

    def _remove_abandoned_downloads(self) -> int:
        # Temp files are named <sha>.<pid>.<random>: one whose process is gone was abandoned
        # (a kill -9 mid-download); a live process's download is left alone.
        freed = 0
        incomplete = self.root / "blobs" / ".incomplete"
        for tmp in incomplete.iterdir() if incomplete.exists() else []:
            parts = tmp.name.split(".")
            if len(parts) == 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
                freed += tmp.stat().st_size
                tmp.unlink(missing_ok=True)
        return freed

    def verify(self) -> Iterator[tuple[str, bool]]:
        """Re-hash every blob: yields (sha256, ok). A corrupt blob is deleted, so the next
        download fetches it again (snapshot links to it dangle until then)."""
        blobs = self.root / "blobs"
        for blob in sorted(blobs.glob("*")) if blobs.exists() else []:
            if not blob.is_file() or len(blob.name) != 64:
                continue
            digest, _ = hash_file(blob)
            ok = digest == blob.name
            if not ok:
                with self.lock(blob.name):
                    blob.unlink(missing_ok=True)
            yield blob.name, ok

    def size(self) -> int:
        blobs = self.root / "blobs"
        return (
            sum(b.stat().st_size for b in blobs.glob("*") if b.is_file()) if blobs.exists() else 0
        )
