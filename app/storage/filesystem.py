"""Filesystem storage: the embedded default backend, one file per object under a root.

A key maps 1:1 to a relative path under ``root``. Writes go to a process-unique temporary
file in the destination directory (same filesystem, so ``os.replace`` is atomic), are
fsynced, then renamed into place: a reader sees the old object, the new one, or nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.storage.base import (
    CHUNK_SIZE,
    HashingCounter,
    MultipartUpload,
    ObjectInfo,
    Source,
    WriteResult,
    check_range,
    iter_source,
)
from app.storage.errors import (
    NotSupported,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from app.storage.keys import TEMP_PREFIX, validate_key, validate_prefix

# A concurrent delete may prune a directory between our mkdir and our use of it; retry a
# few times instead of failing a perfectly good write.
_DIR_RACE_RETRIES = 5
# A full disk or an exhausted quota: the operator must free space, the client cannot fix it.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class FilesystemStorage:
    """Objects as files under ``root``; no presigned URLs, but ``local_path`` for sendfile."""

    kind = "filesystem"
    supports_presigned_urls = False

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"FilesystemStorage(root={str(self.root)!r})"

    # -- readiness ---------------------------------------------------------------------

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless a file can be created and removed in the root."""
        try:
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX + "probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise StorageUnavailable(f"storage root {str(self.root)!r} is not writable: {e}") from e

    def ensure_ready(self) -> None:
        """Create the root directory if needed."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageUnavailable(f"cannot create storage root {str(self.root)!r}: {e}") from e

    # -- objects -----------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Whether a file is stored at ``key``."""
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectInfo | None:
        """Size of the object at ``key``, or ``None``."""
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise StorageError(f"cannot stat {key!r}: {e}") from e
        modified = datetime.fromtimestamp(st.st_mtime, UTC)
        return ObjectInfo(key=key, size=st.st_size, modified=modified)

    def delete(self, key: str) -> None:
        """Remove the file at ``key`` (missing is fine) and prune emptied directories."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except NotADirectoryError:
            return
        except OSError as e:
            raise StorageError(f"cannot delete {key!r}: {e}") from e
        self._prune_empty_dirs(path.parent)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete every key in ``keys``."""
        for key in keys:
            self.delete(key)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix`` (a plain string prefix, as on S3); temp files are skipped."""
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names, then filter by the full prefix.
        start_dir = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        for dirpath, dirnames, filenames in os.walk(start_dir):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                if name.startswith(TEMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    yield key

    def write_stream(
        self, key: str, chunks: Source, *, max_bytes: int | None = None
    ) -> WriteResult:
        """Write to a temp file, fsync, then rename onto ``key``; see ``Storage.write_stream``."""
        path = self._path(key)
        counter = HashingCounter(key, max_bytes)
        fd, tmp = self._mkstemp(path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                # Errors of the source (including TooLarge) propagate unchanged; only
                # failures of our own file operations become StorageError.
                for chunk in iter_source(chunks):
                    counter.update(chunk)
                    _io(key, f.write, chunk)
                _io(key, f.flush)
                # Durability: the rename must not be able to reach disk before the data.
                _io(key, os.fsync, f.fileno())
            _io(key, self._replace, tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
        return counter.result()

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream a byte range of the file; ``ObjectNotFound`` is raised eagerly."""
        check_range(start, end)
        path = self._path(key)
        # Check now so the caller gets ObjectNotFound before it starts a response; the file
        # is opened inside the generator so an unconsumed iterator leaks no descriptor.
        if not path.is_file():
            raise ObjectNotFound(key)
        return _read_file(key, path, start, end)

    def local_path(self, key: str) -> Path | None:
        """The file backing ``key``, for ``FileResponse``/sendfile, or ``None`` if missing."""
        path = self._path(key)
        return path if path.is_file() else None

    def hash_object(self, key: str) -> WriteResult:
        """Size and sha256 of the file, read in chunks."""
        counter = HashingCounter(key, None)
        for chunk in self.read_range(key):
            counter.update(chunk)
        return counter.result()

    def promote(self, src_key: str, dst_key: str) -> None:
        """Rename ``src_key`` onto ``dst_key``, or drop it if ``dst_key`` already exists."""
        src, dst = self._path(src_key), self._path(dst_key)
        if dst.is_file():
            self.delete(src_key)
            return
        if not src.is_file():
            raise ObjectNotFound(src_key)
        try:
            self._replace(src, dst)
        except FileNotFoundError as e:
            raise ObjectNotFound(src_key) from e
        except OSError as e:
            raise StorageError(f"cannot move {src_key!r} to {dst_key!r}: {e}") from e
        _fsync_dir(dst.parent)
        self._prune_empty_dirs(src.parent)

    # -- presigning: the filesystem backend has none; the API serves the bytes itself ---

    def presign_get(
        self,
        key: str,
        *,
        expires: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """Always ``None``: downloads go through the API (see ``local_path``)."""
        validate_key(key)
        return None

    def presign_put(self, key: str, *, expires: int | None = None) -> str | None:
        """Always ``None``: uploads go through the API's upload endpoint."""
        validate_key(key)
        return None

    def create_multipart(self, key: str) -> str:
        """Not supported: raise ``NotSupported``."""
        raise NotSupported("the filesystem backend has no multipart uploads")

    def presign_part(
        self, key: str, upload_id: str, part_number: int, *, expires: int | None = None
    ) -> str | None:
        """Always ``None``: there are no multipart uploads here."""
        return None

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Not supported: raise ``NotSupported``."""
        raise NotSupported("the filesystem backend has no multipart uploads")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Not supported: raise ``NotSupported``."""
        raise NotSupported("the filesystem backend has no multipart uploads")

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[MultipartUpload]:
        """There are never unfinished multipart uploads here."""
        validate_prefix(prefix)
        return iter(())

    # -- helpers -------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _mkstemp(self, directory: Path) -> tuple[int, str]:
        for attempt in range(_DIR_RACE_RETRIES):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                # mkstemp names are unique across processes and threads (O_EXCL).
                return tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
            except (FileNotFoundError, FileExistsError):
                # The directory was pruned by a concurrent promote mid-way: make it again.
                if attempt == _DIR_RACE_RETRIES - 1:
                    raise
            except OSError as e:
                if e.errno in _NO_SPACE:
                    raise StorageFull(f"no space left in {str(directory)!r}: {e}") from e
                raise StorageError(f"cannot create a file in {str(directory)!r}: {e}") from e
        raise AssertionError("unreachable")

    def _replace(self, src: Path | str, dst: Path) -> None:
        for attempt in range(_DIR_RACE_RETRIES):
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                return
            except (FileNotFoundError, FileExistsError):
                # Either src vanished (caller reports it) or dst's directory was pruned by a
                # concurrent promote: between mkdir's failed os.mkdir and its is_dir() check
                # (FileExistsError), or between mkdir and os.replace (FileNotFoundError).
                if not os.path.exists(src) or attempt == _DIR_RACE_RETRIES - 1:
                    raise

    def _prune_empty_dirs(self, directory: Path) -> None:
        # Staging directories are one per upload; remove them once empty so the tree does
        # not grow forever. rmdir only succeeds on an empty directory, so this is safe.
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _read_file(key: str, path: Path, start: int, end: int | None) -> Iterator[bytes]:
    try:
        f = path.open("rb")
    except (FileNotFoundError, NotADirectoryError) as e:
        raise ObjectNotFound(key) from e
    with f:
        f.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = f.read(size)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _io(key: str, fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise StorageFull(f"no space left to write {key!r}: {e.strerror}") from e
        raise StorageError(f"cannot write {key!r}: {e}") from e


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable. Not every platform/filesystem allows opening a
    # directory; durability is best effort there.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
