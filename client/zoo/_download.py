"""Verified downloads into the cache: one blob at a time, and a version's files in parallel.

A blob streams into a process-unique temp file and is hashed while it streams; it is renamed
into ``blobs/`` only when size and sha256 match, so the cache never holds a partial or corrupt
blob. A dropped connection resumes with ``Range`` (a 200 where 206 was asked restarts from
zero); connection errors, 429 and 5xx are retried with backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpcore._sync.http11

from zoo._cache import Cache
from zoo._errors import IntegrityError, NetworkError, error_from_response
from zoo._types import FileInfo, VersionInfo

# httpcore reads sockets 64 KiB at a time; a model download is hundreds of MB, and each read
# costs a trip through httpx, the sink queue and the hasher. 1 MiB reads cut that overhead
# 16-fold. It is a class attribute, so it applies to every httpcore connection of the process.
httpcore._sync.http11.HTTP11Connection.READ_NUM_BYTES = max(
    httpcore._sync.http11.HTTP11Connection.READ_NUM_BYTES, 1 << 20
)

if TYPE_CHECKING:
    import httpx

    from zoo._http import Http

__all__ = ["DownloadPlan", "fetch_blob", "fetch_version", "plan_download", "select_files"]

ProgressFn = Callable[[int], None]
"""Called with a number of bytes received (negative when a restart discards some)."""

_CHUNK = 1 << 20


class _Truncated(Exception):
    """The body ended before the expected size (a dropped connection without an error)."""


@dataclass(frozen=True, slots=True)
class DownloadPlan:
    """What a download of a version would do (``zoo download --dry-run`` prints it)."""

    version: VersionInfo
    files: tuple[FileInfo, ...]  # selected by include/exclude
    missing: tuple[FileInfo, ...]  # selected and not yet in the cache

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def fetch_bytes(self) -> int:
        """Bytes to fetch: each missing distinct blob once."""
        return sum({f.sha256: f.size for f in self.missing}.values())


def select_files(
    files: Sequence[FileInfo], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[FileInfo, ...]:
    """Files whose path matches one ``include`` glob (all if none) and no ``exclude`` glob.

    >>> fs = [FileInfo("model.onnx", 1, "a" * 64), FileInfo("training/x.pt", 1, "b" * 64)]
    >>> [f.path for f in select_files(fs, exclude=["training/*"])]
    ['model.onnx']
    """

    def matches(path: str, pattern: str) -> bool:
        # "deployment" and "deployment/" select a whole folder, like a glob of "deployment/*".
        folder = pattern.rstrip("/")
        return fnmatch.fnmatchcase(path, pattern) or path.startswith(folder + "/")

    return tuple(
        f
        for f in files
        if (not include or any(matches(f.path, p) for p in include))
        and not any(matches(f.path, p) for p in exclude)
    )


def plan_download(
    cache: Cache, version: VersionInfo, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> DownloadPlan:
    files = select_files(version.files, include, exclude)
    missing = tuple(f for f in files if not cache.has_blob(f.sha256, f.size))
    return DownloadPlan(version, files, missing)


def fetch_version(
    http: Http,
    cache: Cache,
    plan: DownloadPlan,
    progress: ProgressFn | None = None,
    workers: int = 4,
) -> Path:
    """Fetch every missing blob of ``plan`` (a few in parallel), then link the snapshot.

    Returns the snapshot folder. A failure of any file raises after the others stop; blobs
    already verified stay in the cache for the next attempt.
    """
    unique = {f.sha256: f for f in plan.missing}
    if len(unique) <= 1 or workers <= 1:
        for f in unique.values():
            fetch_blob(http, cache, f, progress)
    else:
        with ThreadPoolExecutor(
            max_workers=min(workers, len(unique)), thread_name_prefix="zoo"
        ) as pool:
            futures = [pool.submit(fetch_blob, http, cache, f, progress) for f in unique.values()]
            for future in futures:
                future.result()
    version = plan.version
    cache.write_manifest(version)
    for f in plan.files:
        if not cache.has_file(version, f.path):
            cache.link(version, f.path, f.sha256)
    return cache.snapshot_dir(version.namespace, version.name, version.number)


def fetch_blob(
    http: Http, cache: Cache, file: FileInfo, progress: ProgressFn | None = None
) -> Path:
    """The cached blob of ``file``, downloaded and verified first if it is missing.

    Holds the blob's lock while downloading: a second process (or thread) asking for the same
    blob waits, then finds it in place and downloads nothing.
    """
    final = cache.blob_path(file.sha256)
    if cache.has_blob(file.sha256, file.size):
        return final
    http.guard(f"{file.path} (sha256 {file.sha256[:12]})")
    with cache.lock(file.sha256):
        if cache.has_blob(file.sha256, file.size):  # another process finished it meanwhile
            return final
        tmp = cache.temp_path(file.sha256)
        try:
            _download_to(http, file, tmp, progress)
            os.chmod(tmp, 0o444)  # blobs are shared by snapshots: guard them against edits
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
    return final


class _Sink:
    """Writes and hashes a download on a helper thread, so the next chunk is read from the
    socket while the previous one is written and hashed (all three release the GIL; on two
    cores this is most of the difference between us and curl)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed by finish()/close()
        self._hasher = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)  # <= 4 MiB in flight
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="zoo-sink", daemon=True)
        self._thread.start()
        self.size = 0

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            try:
                if chunk is None:
                    return
                if self._error is None:
                    self._file.write(chunk)
                    self._hasher.update(chunk)
            except BaseException as e:  # reported to the reader on its next write
                self._error = e
            finally:
                self._queue.task_done()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, chunk: bytes) -> None:
        self._check()
        self._queue.put(chunk)
        self.size += len(chunk)

    def reset(self) -> None:
        """Discard everything (the server ignored our Range): an empty file, a fresh hash."""
        self._queue.join()
        self._check()
        self._file.seek(0)
        self._file.truncate()
        self._hasher = hashlib.sha256()
        self.size = 0

    def finish(self) -> str:
        """Wait for the helper, close the file; the sha256 of what was written."""
        self.close()
        self._check()
        return self._hasher.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._file.close()


def _download_to(http: Http, file: FileInfo, tmp: Path, progress: ProgressFn | None) -> None:
    import httpx

    report = progress or (lambda n: None)
    sink = _Sink(tmp)
    attempt = 0
    try:
        while True:
            have = sink.size
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with http.stream_get(file.url, headers) as r:
                    status = r.status_code
                    if status in (429, 500, 502, 503, 504) and attempt < http.config.max_retries:
                        delay = http.backoff(attempt, r)
                        attempt += 1
                        http.sleep(delay)
                        continue
                    if status >= 400 and not (status == 416 and have):
                        r.read()
                        raise error_from_response(r)
                    if have and not (status == 206 and _range_start(r) == have):
                        # A 200 where 206 was asked (Range ignored), a 416 or a wrong range:
                        # start over from zero, cleanly.
                        sink.reset()
                        report(-have)
                        if status != 200:
                            raise _Truncated(f"HTTP {status} for bytes={have}-; restarting")
                    # No chunk_size: a fixed size would buffer, and lose what a drop cuts off.
                    for chunk in r.iter_bytes():
                        if sink.size + len(chunk) > file.size:
                            raise IntegrityError(
                                f"{file.path}: the server sent more than the {file.size} bytes "
                                "the hub declared; nothing was kept, try again"
                            )
                        sink.write(chunk)
                        report(len(chunk))
                if sink.size < file.size:
                    raise _Truncated(f"the body ended at byte {sink.size} of {file.size}")
                break
            except (httpx.TransportError, _Truncated) as e:
                if sink.size > have:
                    attempt = 0  # progress was made: this is a flaky link, not a dead one
                if attempt >= http.config.max_retries:
                    raise NetworkError(
                        f"downloading {file.path} failed after {attempt + 1} attempts at byte "
                        f"{sink.size} of {file.size} ({e}); run the command again to retry"
                    ) from e
                http.sleep(http.backoff(attempt))
                attempt += 1
        size = sink.size
        digest = sink.finish()
    finally:
        sink.close()
    if size != file.size or digest != file.sha256:
        raise IntegrityError(
            f"{file.path}: received {size} bytes with sha256 {digest[:16]}..., expected "
            f"{file.size} bytes with sha256 {file.sha256[:16]}...; the bytes were corrupted in "
            "transit or in storage and were not kept; try again, and tell the hub's operator "
            "if it repeats"
        )


def _range_start(response: httpx.Response) -> int | None:
    # Content-Range: bytes START-END/SIZE
    value = response.headers.get("content-range", "")
    unit, _, spec = value.partition(" ")
    first, _, _ = spec.partition("-")
    return int(first) if unit == "bytes" and first.isdigit() else None
