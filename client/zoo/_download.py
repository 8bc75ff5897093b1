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
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo._cache import Cache
from zoo._errors import IntegrityError, NetworkError, error_from_response
from zoo._speed import SpeedFloor, TooSlow
from zoo._types import FileInfo, VersionInfo

if TYPE_CHECKING:
    import httpx

    from zoo._http import Http

__all__ = ["DownloadPlan", "fetch_blob", "fetch_version", "plan_download", "select_files"]

ProgressFn = Callable[[int], None]
"""Called with a number of bytes received (negative when a restart discards some)."""

_BUFFER = 1 << 20  # bytes per hand-off from the receiving thread to the hashing thread
_IN_FLIGHT = 8  # hand-offs waiting for the hasher at most: 8 MiB of reusable buffers
# A body with this much left after its first chunk is read off the socket (see _receive_body).
# Not less: that connection is closed afterwards, and a new one (a TLS handshake to a remote
# store) must stay cheap next to the bytes it saves copying.
_RAW_MIN = 4 << 20
_HEAD_START = 1.0  # seconds the biggest file of a version gets to start before the others


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
    http: Http | None,
    cache: Cache,
    plan: DownloadPlan,
    progress: ProgressFn | None = None,
    workers: int = 4,
) -> Path:
    """Fetch every missing blob of ``plan`` (a few in parallel), then link the snapshot.

    Returns the snapshot folder. ``http`` may be None when nothing is missing. A failure of any
    file raises after the others stop; blobs already verified stay in the cache for the next
    attempt.
    """
    unique = {f.sha256: f for f in plan.missing}.values()
    if unique:
        if http is None:
            raise ValueError(f"{len(unique)} blobs to fetch and no HTTP client to fetch them")
        _fetch_blobs(http, cache, list(unique), progress, workers)
    version = plan.version
    cache.write_manifest(version)
    for f in plan.files:
        if not cache.has_file(version, f.path):
            cache.link(version, f.path, f.sha256)
    return cache.snapshot_dir(version.namespace, version.name, version.number)


def _fetch_blobs(
    http: Http, cache: Cache, files: list[FileInfo], progress: ProgressFn | None, workers: int
) -> None:
    """Fetch distinct blobs, the biggest first and the others beside it on ``workers`` threads.

    Biggest first: the long transfer starts at once (in path order, a 500 MB file queued behind
    a few small ones started ~40 ms late). The others wait until its bytes flow: sent together,
    their requests held up its first byte at the same server by another ~25 ms.
    """
    files = sorted(files, key=lambda f: -f.size)
    if len(files) == 1 or workers <= 1:
        for f in files:
            fetch_blob(http, cache, f, progress)
        return
    report = progress or (lambda n: None)
    flowing = threading.Event()

    def first_report(n: int) -> None:
        flowing.set()
        report(n)

    with ThreadPoolExecutor(max_workers=min(workers, len(files)), thread_name_prefix="zoo") as pool:
        futures = [pool.submit(fetch_blob, http, cache, files[0], first_report)]
        futures[0].add_done_callback(lambda _: flowing.set())
        flowing.wait(_HEAD_START)  # at most that long: a slow start must not stall the rest
        futures += [pool.submit(fetch_blob, http, cache, f, report) for f in files[1:]]
        for future in futures:
            future.result()


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
    """The temp file and the running sha256 of one download.

    The receiving thread writes each chunk to the file itself and hands it to a hashing
    thread: hashlib releases the GIL on big buffers, so on two cores the sha256 (about as much
    CPU as receiving and writing together) runs beside the network and the disk, not after.
    :meth:`receive` reads the socket into a few reusable buffers, which go to the file and the
    hasher as they are: no bytes object per chunk, no copy in Python on the way.
    """

    def __init__(self, path: Path, min_speed: float = 0.0, window: float = 60.0) -> None:
        # A server that trickles a byte just inside every read timeout would never time out;
        # so the bytes of each ``window`` seconds must average ``min_speed`` bytes/s too.
        self.floor = SpeedFloor(min_speed, window)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)  # Windows
        self._fd = os.open(path, flags, 0o600)
        self._hasher = hashlib.sha256()
        # (data, length) to hash; a bytearray goes back to the pool once hashed.
        self._todo: queue.Queue[tuple[bytes | bytearray, int] | None] = queue.Queue(_IN_FLIGHT)
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._buffers = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._hash, name="zoo-hash", daemon=True)
        self._thread.start()
        self.size = 0

    def _hash(self) -> None:
        while (item := self._todo.get()) is not None:
            data, length = item
            try:
                if self._error is None:
                    self._hasher.update(memoryview(data)[:length])
            except BaseException as e:  # reported to the receiver on its next write
                self._error = e
            finally:
                if isinstance(data, bytearray):
                    self._free.put(data)
                self._todo.task_done()
        self._todo.task_done()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _append(self, data: bytes | bytearray, length: int) -> None:
        view = memoryview(data)[:length]
        while view:  # os.write may write less than asked
            view = view[os.write(self._fd, view) :]
        self._todo.put((data, length))  # the hasher never sees bytes the file has not got
        self.size += length
        self.floor.add(length)  # after: what came is kept, and a retry resumes after it

    def write(self, chunk: bytes) -> None:
        self._check()
        self._append(chunk, len(chunk))

    def receive(self, sock: socket.socket, count: int, timeout: float, report: ProgressFn) -> None:
        """Read exactly ``count`` more bytes of the body from ``sock``.

        Raises :class:`_Truncated` when the peer closes first, an httpx transport error when
        the socket fails or times out; either way what did arrive is kept (a retry resumes
        after it).
        """
        import httpx

        sock.settimeout(timeout)
        left = count
        while left:
            self._check()
            buf = self._buffer()
            view, got = memoryview(buf), 0
            want = min(len(buf), left)
            try:
                while got < want:
                    n = sock.recv_into(view[got:want])
                    if not n:
                        raise _Truncated(f"the connection closed {left - got} bytes early")
                    got += n
            except TimeoutError as e:
                raise httpx.ReadTimeout(f"timed out: no data for {timeout:g} s") from e
            except OSError as e:
                raise httpx.ReadError(str(e)) from e
            finally:
                if got:
                    self._append(buf, got)
                    report(got)
                else:
                    self._free.put(buf)
            left -= got

    def _buffer(self) -> bytearray:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            if self._buffers < _IN_FLIGHT:
                self._buffers += 1
                return bytearray(_BUFFER)
            return self._free.get()  # every buffer is queued for the hasher: wait for one

    def reset(self) -> None:
        """Discard everything (the server ignored our Range): an empty file, a fresh hash."""
        self._todo.join()
        self._check()
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hasher = hashlib.sha256()
        self.size = 0

    def finish(self) -> str:
        """Wait for the hasher, close the file; the sha256 of what was written."""
        self.close()
        self._check()
        return self._hasher.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _download_to(http: Http, file: FileInfo, tmp: Path, progress: ProgressFn | None) -> None:
    import httpx

    report = progress or (lambda n: None)
    cfg = http.config
    sink = _Sink(tmp, cfg.min_speed, cfg.read_timeout)
    attempt = 0
    try:
        while True:
            have = sink.size
            headers = {"Range": f"bytes={have}-"} if have else {}
            sink.floor.restart()
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
                    _receive_body(r, sink, file, http.config.read_timeout, report)
                if sink.size < file.size:
                    raise _Truncated(f"the body ended at byte {sink.size} of {file.size}")
                break
            except (httpx.TransportError, _Truncated, TooSlow) as e:
                if sink.size > have and not isinstance(e, TooSlow):
                    # Progress was made: a flaky link, not a dead one. Not so for a trickle,
                    # which makes progress too, but would keep the caller waiting for ever.
                    attempt = 0
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


def _receive_body(
    r: httpx.Response, sink: _Sink, file: FileInfo, timeout: float, report: ProgressFn
) -> None:
    """Append the body of ``r`` to ``sink``.

    httpx hands over each chunk after three copies (h11's buffer, a slice, ``bytes()``) and a
    fresh allocation; for a big body that costs about as much CPU as curl spends in total. So
    the first chunk comes through httpx (which empties h11's buffer of whatever arrived with
    the headers: h11 hands over all it holds, up to Content-Length, as one Data event) and the
    rest, whose length Content-Length tells, straight from the socket. The connection is then
    closed rather than reused: httpx never saw the end of that body.
    """
    sock = _plain_socket(r)
    length = r.headers.get("content-length", "")
    left = int(length) if length.isdigit() else -1  # -1: unknown, httpx reads to the end
    # No chunk_size: a fixed size would buffer, and lose what a drop cuts off.
    for chunk in r.iter_bytes():
        if sink.size + len(chunk) > file.size:
            raise IntegrityError(
                f"{file.path}: the server sent more than the {file.size} bytes the hub "
                "declared; nothing was kept, try again"
            )
        sink.write(chunk)
        report(len(chunk))
        left -= len(chunk)
        # Never past the declared size, whatever Content-Length says: the sha256 judges what
        # came. A body shorter than declared ends early, and the retry resumes after it.
        want = min(left, file.size - sink.size)
        if sock is not None and want >= _RAW_MIN:
            sink.receive(sock, want, timeout, report)
            return


def _plain_socket(r: httpx.Response) -> socket.socket | None:
    """The socket that carries the body of ``r`` as plain bytes, or None (then httpx reads it).

    Only for an HTTP/1.1 body without content coding; under TLS only when the socket is the
    SSLSocket itself (TLS through an HTTPS proxy wraps a socket that carries ciphertext).
    """
    import ssl

    if r.http_version != "HTTP/1.1" or r.headers.get("content-encoding", "identity") != "identity":
        return None
    stream = r.extensions.get("network_stream")
    if stream is None:
        return None
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return None
    if stream.get_extra_info("ssl_object") is not None and not isinstance(sock, ssl.SSLSocket):
        return None
    return sock


def _range_start(response: httpx.Response) -> int | None:
    # Content-Range: bytes START-END/SIZE
    value = response.headers.get("content-range", "")
    unit, _, spec = value.partition(" ")
    first, _, _ = spec.partition("-")
    return int(first) if unit == "bytes" and first.isdigit() else None
