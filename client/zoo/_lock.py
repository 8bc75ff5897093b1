"""An inter-process file lock with a timeout that cannot go stale.

``flock``/``LockFileEx`` locks belong to the open file: the kernel drops them when the
holder exits or crashes, so a leftover lock file never blocks anyone (unlike "the file exists"
locks). Lock files are left in place on purpose: deleting one while another process waits
on it would let two processes hold "the" lock at once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo._errors import CacheLockTimeout

__all__ = ["file_lock"]

_POLL = 0.05

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def file_lock(path: Path, timeout: float, what: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed), waiting at most ``timeout`` s.

    Threads of one process exclude each other too: each call opens its own descriptor.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise CacheLockTimeout(
                    f"another process has held the cache lock {path} for over {timeout:.0f} s "
                    f"({what or 'a download'}); wait for it to finish, or stop it and retry"
                )
            time.sleep(_POLL)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)
